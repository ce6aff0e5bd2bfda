/* import: NATS subjects of the --import patterns, published on the local
 * bus with one local publisher per topic (opened on first use, which
 * creates the topic with the daemon's default parameters if it is new).
 *
 * Lossy: the connection runs on the loop, so libnats reads the socket and
 * queues each message on its (synchronous) subscription from the loop's
 * I/O phase. A check handle, which libuv runs right after that phase,
 * takes what the subscriptions hold and publishes each run of messages of
 * one topic with one shmbus_pub_publish_batch_at (stamped with the
 * original moments, clock.h; a sleeping local subscriber
 * is woken once per run, not per message). No thread is involved; a
 * subscription bounds what waits (IMPORT_QUEUE_CAP) and counts what it
 * drops.
 *
 * --reliable: the connection runs on libnats's threads, which call the
 * message handler: the handler only queues the message (a bounded ring
 * under a mutex) and wakes the loop (uv_async_send); the loop publishes in
 * order and acknowledges. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "seen.h"
#include "shmbus/discover.h"

/* How long a stopping importer waits for libnats to hand over what it
 * holds for a reliable subscription (bridge_import_stop), ms. */
#define IMPORT_DRAIN_MS 2000

/* Messages the hand-over queue (--reliable) or a subscription (lossy)
 * holds at most (lossy: more are dropped and counted). */
#define IMPORT_QUEUE_CAP 65536u
/* Messages handled per loop wake-up (per subscription, lossy) before
 * yielding to the loop. */
#define IMPORT_BATCH 256u

struct bridge_import {
  struct bridge *b;
  natsSubscription **subs;
  size_t nsubs;
  uv_async_t *wake;
  uv_mutex_t lock; /* guards the ring and `dropped` */
  natsMsg **ring;
  size_t head, count;
  uint64_t dropped;
  bool closed;    /* stopping: the handler drops what it gets */
  bool held;      /* --reliable: the head message waits for room on its topic */
  uint64_t pokes; /* --reliable: retries of a held message by the timer */

  uv_check_t *drain;    /* lossy: reads the subscriptions after each I/O phase */
  uv_idle_t *busy;      /* lossy: started while a subscription holds more than a batch */
  uint64_t sub_dropped; /* lossy: what the subscriptions dropped (their last count) */
  size_t sub_pending;   /* lossy: what they held (their last count) */
  /* The subject of the last message accepted and its topic: the next
   * message on it skips decoding it and matching the patterns. */
  char last_subject[BRIDGE_SUBJECT_MAX];
  struct bridge_topic *last_topic;
};

/* --reliable: the record of what `origin` had published on topic t
 * (seen.h), created at `seq` if new; NULL when out of memory. */
static struct bridge_seen *seen_get(struct bridge_topic *t, const char *origin, uint64_t seq) {
  struct bridge_seen *o, **n;
  size_t i;

  for (i = 0; i < t->nseen; i++)
    if (strcmp(bridge_seen_origin(t->seen[i]), origin) == 0)
      return t->seen[i];
  if ((o = bridge_seen_new(origin, seq)) == NULL)
    return NULL;
  if ((n = realloc(t->seen, (t->nseen + 1) * sizeof(*n))) == NULL) {
    bridge_seen_free(o);
    return NULL;
  }
  t->seen = n;
  t->seen[t->nseen++] = o;
  return o;
}

void bridge_topic_seen_free(struct bridge_topic *t) {
  size_t i;

  for (i = 0; i < t->nseen; i++)
    bridge_seen_free(t->seen[i]);
  free(t->seen);
}

void bridge_import_poke(struct bridge *b) {
  struct bridge_import *imp = b->imp;

  if (imp == NULL)
    return;
  if (imp->held) {
    imp->held = false;
    imp->pokes++;
  }
  (void)uv_async_send(imp->wake);
}

int bridge_import_reconnected(struct bridge *b) {
  struct bridge_import *imp = b->imp;
  int rv = 0;

  if (imp == NULL || !b->o.reliable || b->stopping)
    return 0;
  /* Each consumer once: one that did not answer is asked again, with the
   * rest, at the caller's next try (a repeated negative acknowledgement
   * only brings the same messages again, dropped as duplicates). */
  for (size_t i = 0; i < imp->nsubs; i++) {
    int r = bridge_js_reconnected(b, (int)i);
    if (r < 0)
      rv = r;
  }
  return rv;
}

uint64_t bridge_import_pokes(const struct bridge *b) {
  return b->imp != NULL ? b->imp->pokes : 0;
}

void bridge_import_queue_stats(struct bridge *b, size_t *queued, uint64_t *dropped) {
  struct bridge_import *imp = b->imp;

  *queued = 0;
  *dropped = 0;
  if (imp == NULL)
    return;
  uv_mutex_lock(&imp->lock);
  if (!b->o.reliable && !imp->closed) {
    /* The subscriptions' counts (their own locks); a closed one keeps the
     * last ones read. */
    uint64_t d = 0;
    size_t q = 0, i;
    bool ok = true;
    for (i = 0; i < imp->nsubs && ok; i++) {
      int64_t sd = 0;
      int sq = 0;
      ok = natsSubscription_GetPending(imp->subs[i], &sq, NULL) == NATS_OK &&
           natsSubscription_GetDropped(imp->subs[i], &sd) == NATS_OK;
      q += sq > 0 ? (size_t)sq : 0;
      d += sd > 0 ? (uint64_t)sd : 0;
    }
    if (ok) {
      imp->sub_pending = q;
      imp->sub_dropped = d;
    }
  }
  *queued = imp->count + imp->sub_pending;
  *dropped = imp->dropped + imp->sub_dropped;
  uv_mutex_unlock(&imp->lock);
}

/* --reliable, libnats's thread: queue, wake the loop. */
static void import_on_nats(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *arg) {
  struct bridge_import *imp = arg;
  bool wake = false;

  (void)nc;
  (void)sub;
  uv_mutex_lock(&imp->lock);
  if (imp->closed) {
    /* Dropped below. */
  } else if (imp->count == IMPORT_QUEUE_CAP) {
    imp->dropped++;
  } else {
    imp->ring[(imp->head + imp->count) % IMPORT_QUEUE_CAP] = msg;
    wake = imp->count++ == 0;
    msg = NULL;
  }
  uv_mutex_unlock(&imp->lock);
  if (msg != NULL)
    natsMsg_Destroy(msg);
  if (wake)
    (void)uv_async_send(imp->wake);
}

static bool import_matches(const struct bridge *b, const char *topic) {
  int i;

  for (i = 0; i < b->o.nimports; i++)
    if (shmbus_pattern_match(b->o.imports[i], topic) == 1)
      return true;
  return false;
}

/* Checks one message: the topic it is published on (its publisher open),
 * its headers in *h; or NULL when it is refused (counted). */
static struct bridge_topic *import_check(struct bridge *b, natsMsg *msg, struct bridge_hdr *h) {
  struct bridge_import *imp = b->imp;
  const char *subject = natsMsg_GetSubject(msg);
  char topic[256];
  struct bridge_topic *t = NULL;
  int len = natsMsg_GetDataLength(msg);
  int rv;

  if (imp->last_topic != NULL && strcmp(subject, imp->last_subject) == 0) {
    t = imp->last_topic;
    strcpy(topic, t->name);
  } else if (bridge_topic_from_subject(b->o.prefix, subject, topic, sizeof(topic)) < 0 ||
             !import_matches(b, topic)) {
    b->refused.subject++;
    return NULL;
  }
  if (bridge_hdr_get(msg, h) < 0 || strcmp(h->topic, topic) != 0 || len < 0) {
    b->refused.headers++;
    return NULL;
  }
  if (strcmp(h->origin, b->o.name) == 0) {
    b->refused.own++; /* what we exported, coming back */
    return NULL;
  }
  if (t == NULL) {
    if ((t = bridge_topic_get(b, topic)) == NULL) {
      b->refused.subject++;
      return NULL;
    }
    if (strlen(subject) < sizeof(imp->last_subject)) {
      strcpy(imp->last_subject, subject);
      imp->last_topic = t;
    }
  }
  if (t->pub == NULL) {
    if ((rv = shmbus_pub_open(b->bus, topic, NULL, &t->pub)) < 0) {
      t->pub = NULL;
      if (t->import_dropped++ == 0)
        bridge_log("cannot publish on \"%s\": %s (its messages are dropped)", topic,
                   shmbus_strerror(rv));
      return NULL;
    }
    bridge_log("importing %s to \"%s\"", natsMsg_GetSubject(msg), topic);
  }
  if ((size_t)len > shmbus_pub_max_size(t->pub)) {
    if (t->import_too_big++ == 0)
      bridge_log("\"%s\": a message of %d bytes exceeds the topic's slot size %zu: dropped "
                 "(counted as too_big)",
                 topic, len, shmbus_pub_max_size(t->pub));
    return NULL;
  }
  return t;
}

/* --reliable: checks one message and publishes it on the local bus.
 * Returns 1 when it must be held (the topic is full: try again when
 * writable), else 0 (published, or refused and counted). */
static int import_one(struct bridge *b, natsMsg *msg) {
  struct bridge_hdr h;
  struct bridge_topic *t;
  const char *data = natsMsg_GetData(msg);
  int len = natsMsg_GetDataLength(msg);
  int rv;

  if ((t = import_check(b, msg, &h)) == NULL)
    return 0;
  {
    struct bridge_seen *o = seen_get(t, h.origin, h.seq);
    uint64_t forgotten;
    if (o == NULL)
      return 1; /* out of memory: later */
    if (bridge_seen_has(o, h.seq)) {
      t->import_dup++;
      return 0;
    }
    {
      struct shmbus_pub_msg m = {data != NULL ? data : "", (size_t)len};
      uint64_t replaced = b->clock.replaced;
      uint64_t ts = bridge_clock_to_mono(&b->clock, h.ts_ns);
      rv = shmbus_pub_publish_batch_at(t->pub, &m, &ts, 1);
      if (rv == SHMBUS_EFULL)
        b->clock.replaced = replaced; /* held: counted when it is published */
    }
    if (rv == SHMBUS_EFULL)
      return 1;
    if (rv < 0) {
      t->import_dropped++;
      return 0;
    }
    forgotten = bridge_seen_forgotten(o);
    bridge_seen_add(o, h.seq);
    if (forgotten == 0 && bridge_seen_forgotten(o) > 0)
      bridge_log("\"%s\" from %s: more than %u runs of sequence numbers never delivered; "
                 "forgetting the oldest (one of those delivered later would be taken for a "
                 "duplicate)",
                 t->name, h.origin, BRIDGE_SEEN_GAPS);
    t->imported++;
    return 0;
  }
}

/* Lossy: publishes msgs[0..n-1] of topic t. A message that cannot be
 * published is dropped and counted (SHMBUS_EFULL: a reliable local
 * subscriber holds the topic back); the rest go on. */
static void import_publish_run(struct bridge_topic *t, const struct shmbus_pub_msg *msgs,
                               const uint64_t *ts, size_t n) {
  size_t i = 0;

  while (i < n) {
    int rv = shmbus_pub_publish_batch_at(t->pub, msgs + i, ts + i, n - i);
    if (rv > 0) {
      t->imported += (uint64_t)rv;
      i += (size_t)rv;
    } else {
      t->import_dropped++; /* msgs[i] could not be published */
      i++;
    }
  }
}

/* Lossy: checks msgs[0..n-1] and publishes them in order, each run of
 * messages of one topic together; then gives them to the spent list. */
static void import_publish_lossy(struct bridge *b, natsMsg **msgs, size_t n) {
  struct shmbus_pub_msg run[IMPORT_BATCH];
  uint64_t ts[IMPORT_BATCH];
  struct bridge_topic *cur = NULL;
  size_t i, nrun = 0;

  /* A batch: the clocks' difference as of this loop iteration (a wall
   * clock set since is taken into account). */
  bridge_clock_update(&b->clock, uv_now(b->loop));

  for (i = 0; i < n; i++) {
    struct bridge_hdr h;
    struct bridge_topic *t = import_check(b, msgs[i], &h);
    const char *data;
    if (t == NULL)
      continue; /* refused, counted: the run goes on */
    if (t != cur && nrun > 0) {
      import_publish_run(cur, run, ts, nrun);
      nrun = 0;
    }
    cur = t;
    data = natsMsg_GetData(msgs[i]);
    run[nrun].data = data != NULL ? data : "";
    run[nrun].len = (size_t)natsMsg_GetDataLength(msgs[i]);
    ts[nrun] = bridge_clock_to_mono(&b->clock, h.ts_ns);
    nrun++;
  }
  if (nrun > 0)
    import_publish_run(cur, run, ts, nrun);
  for (i = 0; i < n; i++)
    bridge_spent_add(b, msgs[i], (size_t)natsMsg_GetDataLength(msgs[i]));
}

/* Lossy: takes up to a batch from one subscription and publishes it.
 * Returns whether it holds more. */
static bool import_drain_sub(struct bridge *b, natsSubscription *sub) {
  natsMsg *msgs[IMPORT_BATCH];
  size_t n = 0;
  int pending = 0, tries = 0;

  if (natsSubscription_GetPending(sub, &pending, NULL) != NATS_OK || pending <= 0)
    return false;
  while (n < IMPORT_BATCH && n < (size_t)pending && tries++ < 2 * (int)IMPORT_BATCH) {
    natsStatus s = natsSubscription_NextMsg(&msgs[n], sub, 0);
    if (s == NATS_OK)
      n++;
    else if (s != NATS_SLOW_CONSUMER) /* said once after a drop: the next call goes on */
      break;
  }
  import_publish_lossy(b, msgs, n);
  /* More, unless nothing could be taken (the subscription closing): the
   * loop must not spin on it. */
  return n > 0 && (size_t)pending > n;
}

static void import_on_idle(uv_idle_t *h) {
  (void)h; /* the loop does not sleep: the check handle goes on reading */
}

/* Lossy: after each I/O phase (where libnats read the socket), what the
 * subscriptions hold. */
static void import_on_check(uv_check_t *c) {
  struct bridge_import *imp = c->data;
  bool more = false;
  size_t i;

  if (imp->b->stopping)
    return;
  for (i = 0; i < imp->nsubs; i++)
    if (import_drain_sub(imp->b, imp->subs[i]))
      more = true;
  if (more)
    (void)uv_idle_start(imp->busy, import_on_idle);
  else
    (void)uv_idle_stop(imp->busy);
}

static void import_on_writable(shmbus_pub *pub, void *arg) {
  struct bridge_import *imp = arg;

  (void)pub;
  imp->held = false;
  (void)uv_async_send(imp->wake);
}

/* --reliable: in order, one at a time; the head message stays queued
 * (unacknowledged) while its topic is full, and the rest waits behind it. */
static void import_on_wake_reliable(struct bridge_import *imp) {
  struct bridge *b = imp->b;
  size_t n;

  /* A batch: the clocks' difference as of this loop iteration. */
  bridge_clock_update(&b->clock, uv_now(b->loop));
  for (n = 0; n < IMPORT_BATCH && !imp->held && !b->stopping; n++) {
    natsMsg *msg;
    bool again = false;
    uv_mutex_lock(&imp->lock);
    msg = imp->count > 0 ? imp->ring[imp->head] : NULL;
    uv_mutex_unlock(&imp->lock);
    if (msg == NULL)
      return;
    if (import_one(b, msg) == 1) {
      char topic[256];
      struct bridge_topic *t;
      imp->held = true;
      if (bridge_topic_from_subject(b->o.prefix, natsMsg_GetSubject(msg), topic, sizeof(topic)) ==
              0 &&
          (t = bridge_topic_find(b, topic)) != NULL && t->pub != NULL &&
          shmbus_uv_pub_on_writable(t->pub, b->loop, import_on_writable, imp) == 0)
        return;
      /* No writable callback (out of memory): the next delivery tries again. */
      imp->held = false;
      return;
    }
    /* Acknowledged only now that it is on the local bus (or refused). A
     * lost acknowledgement means a redelivery, recognised as a duplicate. */
    (void)bridge_js_ack(b, msg, &again);
    if (again)
      b->js_redelivered++;
    uv_mutex_lock(&imp->lock);
    imp->head = (imp->head + 1) % IMPORT_QUEUE_CAP;
    imp->count--;
    uv_mutex_unlock(&imp->lock);
    natsMsg_Destroy(msg);
  }
  if (n == IMPORT_BATCH)
    (void)uv_async_send(imp->wake); /* the rest on the next iteration */
}

/* --reliable: the handler queued messages, or a held one may go on. */
static void import_on_wake(uv_async_t *a) {
  import_on_wake_reliable(a->data);
}

static void import_free_handle(uv_handle_t *h) {
  free(h);
}

int bridge_import_start(struct bridge *b) {
  struct bridge_import *imp;
  int i;

  if (b->o.nimports == 0)
    return 0;
  if ((imp = calloc(1, sizeof(*imp))) == NULL)
    return -ENOMEM;
  imp->b = b;
  if ((imp->ring = calloc(IMPORT_QUEUE_CAP, sizeof(*imp->ring))) == NULL ||
      (imp->subs = calloc((size_t)b->o.nimports * 2, sizeof(*imp->subs))) == NULL ||
      (imp->wake = malloc(sizeof(*imp->wake))) == NULL) {
    free(imp->ring);
    free(imp->subs);
    free(imp);
    return -ENOMEM;
  }
  if (uv_mutex_init(&imp->lock) != 0) {
    free(imp->wake);
    free(imp->ring);
    free(imp->subs);
    free(imp);
    return -ENOMEM;
  }
  if (uv_async_init(b->loop, imp->wake, import_on_wake) != 0) {
    uv_mutex_destroy(&imp->lock);
    free(imp->wake);
    free(imp->ring);
    free(imp->subs);
    free(imp);
    return -ENOMEM;
  }
  imp->wake->data = imp;
  /* A wake-up only: it does not keep the loop running by itself. */
  uv_unref((uv_handle_t *)imp->wake);
  b->imp = imp;
  if (!b->o.reliable) {
    /* Lossy: the subscriptions are read from the loop (see the top). Like
     * the wake-up, neither handle keeps the loop running by itself. */
    uv_check_t *c = malloc(sizeof(*c));
    uv_idle_t *d = malloc(sizeof(*d));
    if (c == NULL || d == NULL || uv_check_init(b->loop, c) != 0) {
      free(c);
      free(d);
      return -ENOMEM;
    }
    c->data = imp;
    imp->drain = c;
    uv_unref((uv_handle_t *)c);
    if (uv_idle_init(b->loop, d) != 0) {
      free(d);
      return -ENOMEM;
    }
    d->data = imp;
    imp->busy = d;
    uv_unref((uv_handle_t *)d);
    if (uv_check_start(c, import_on_check) != 0)
      return -EIO;
  }
  for (i = 0; i < b->o.nimports; i++) {
    char subj[2][BRIDGE_SUBJECT_MAX];
    int n = bridge_subject_filters(b->o.prefix, b->o.imports[i], subj, sizeof(subj[0])), k;
    if (n < 0) {
      bridge_log("cannot import \"%s\": %s", b->o.imports[i], shmbus_strerror(n));
      return n;
    }
    for (k = 0; k < n; k++) {
      natsSubscription *s = NULL;
      natsStatus st;
      if (b->o.reliable) {
        int rv = bridge_js_subscribe(b, subj[k], (int)imp->nsubs, import_on_nats, imp, &s);
        if (rv < 0)
          return rv;
        (void)natsSubscription_SetPendingLimits(s, -1, -1);
        imp->subs[imp->nsubs++] = s;
        bridge_log("subscribed to %s for \"%s\" (reliable)", subj[k], b->o.imports[i]);
        continue;
      }
      st = natsConnection_SubscribeSync(&s, b->nc, subj[k]);
      if (st != NATS_OK) {
        bridge_log("cannot subscribe to %s: %s", subj[k], natsStatus_GetText(st));
        return -EIO;
      }
      /* What waits for the loop: more is dropped and counted (queue_dropped). */
      (void)natsSubscription_SetPendingLimits(s, (int)IMPORT_QUEUE_CAP, -1);
      imp->subs[imp->nsubs++] = s;
      bridge_log("subscribed to %s for \"%s\"", subj[k], b->o.imports[i]);
    }
  }
  return 0;
}

void bridge_import_stop(struct bridge *b) {
  struct bridge_import *imp = b->imp;
  size_t i;

  if (imp == NULL)
    return;
  /* The server stops sending (a durable consumer stays, unacknowledged
   * messages are redelivered to the next run). The subscriptions are
   * destroyed only once the connection is closed and libnats's threads
   * have stopped (bridge_import_free): destroying one here let libnats's
   * reader thread, which was handing it a message at that moment, lock a
   * freed mutex (a SEGV in natsConn_processMsg under ASan, about 1 run in
   * 5 of the importer-restart test, and a leak of the message). */
  if (imp->drain != NULL)
    (void)uv_check_stop(imp->drain);
  if (imp->busy != NULL)
    (void)uv_idle_stop(imp->busy);
  /* The handler drops what it gets from now on. */
  uv_mutex_lock(&imp->lock);
  imp->closed = true;
  uv_mutex_unlock(&imp->lock);
  /* Reliable ones drained, not just unsubscribed: libnats hands the
   * handler every message it holds for the subscription before closing it. Closed with
   * messages still queued inside libnats, a subscription leaked one
   * (LeakSanitizer, the importer-restart test stopping a reliable
   * importer with about 1,000 unacknowledged). The handler runs on
   * libnats's thread and takes only imp->lock, so waiting here, on the
   * loop, cannot deadlock. */
  for (i = 0; i < imp->nsubs; i++) {
    /* Lossy subscriptions are synchronous: nobody would take what a
     * drain hands over; unsubscribed, their queues go with them. */
    if (!b->o.reliable || natsSubscription_Drain(imp->subs[i]) != NATS_OK ||
        natsSubscription_WaitForDrainCompletion(imp->subs[i], IMPORT_DRAIN_MS) != NATS_OK)
      (void)natsSubscription_Unsubscribe(imp->subs[i]);
  }
  uv_mutex_lock(&imp->lock);
  while (imp->count > 0) {
    natsMsg_Destroy(imp->ring[imp->head]);
    imp->head = (imp->head + 1) % IMPORT_QUEUE_CAP;
    imp->count--;
  }
  uv_mutex_unlock(&imp->lock);
  /* What the consumers delivered and we did not acknowledge waits on
   * their redelivery queues for the next run (a nats-server 2.10 bug could
   * drop it otherwise: jetstream.c). */
  if (b->o.reliable)
    for (i = 0; i < imp->nsubs; i++)
      bridge_js_unsubscribed(b, (int)i);
  for (i = 0; i < b->ntopics; i++) {
    shmbus_pub_close(b->topics[i]->pub);
    b->topics[i]->pub = NULL;
  }
}

/* After nats_CloseAndWait: no libnats thread touches the subscriptions. */
void bridge_import_free(struct bridge *b) {
  struct bridge_import *imp = b->imp;
  size_t i;

  if (imp == NULL)
    return;
  for (i = 0; i < imp->nsubs; i++)
    natsSubscription_Destroy(imp->subs[i]);
  free(imp->subs);
  uv_close((uv_handle_t *)imp->wake, import_free_handle);
  if (imp->drain != NULL)
    uv_close((uv_handle_t *)imp->drain, import_free_handle);
  if (imp->busy != NULL)
    uv_close((uv_handle_t *)imp->busy, import_free_handle);
  uv_mutex_destroy(&imp->lock);
  free(imp->ring);
  free(imp);
  b->imp = NULL;
}
