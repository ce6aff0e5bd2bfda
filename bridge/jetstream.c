/* jetstream: --reliable (docs/bridge.md, "Delivery"). The stream (found,
 * checked or created), the exporter's asynchronous publishes with a bounded
 * window and their acknowledgements (libnats's threads), resends, and the
 * importer's durable consumers. With --reliable the NATS connection runs
 * on libnats's own threads (not the loop): JetStream's API calls are
 * requests that wait for their reply, which a loop blocked in the call
 * could not read. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

/* How long JetStream API requests and a publish's acknowledgement wait, ms. */
#define JS_WAIT_MS 5000
/* The duplicate window of a stream the bridge creates, and the age it
 * keeps messages for (ns). */
#define JS_DUP_WINDOW_NS (120ll * 1000 * 1000 * 1000)
#define JS_MAX_AGE_NS (24ll * 3600 * 1000 * 1000 * 1000)
/* How often the loop resends what failed, ms. */
#define JS_RESEND_MS 100
/* Unacknowledged deliveries a consumer of the importer has at most, and
 * how long the server waits for an acknowledgement before redelivering. */
#define JS_MAX_ACK_PENDING 1024
#define JS_ACK_WAIT_NS (10ll * 1000 * 1000 * 1000)
/* Negative acknowledgements sent at most at once (js_nak_unacked). */
#define JS_NAK_MAX 65536u
/* How long a stopping importer waits for the server to see that its
 * consumer has no subscriber any more, ms. */
#define JS_UNBOUND_WAIT_MS 2000
/* How long the bridge keeps asking for a stream's replicas while the
 * cluster cannot place them yet (bridge_js_start), ms. */
#define JS_PLACE_WAIT_MS 30000

static void js_resume(struct bridge *b, bool always);

/* ---- the stream -------------------------------------------------------- */

void bridge_js_stream_name(const char *prefix, char *out, size_t cap) {
  size_t i;

  snprintf(out, cap, "%s", prefix);
  for (i = 0; out[i] != '\0'; i++)
    if (out[i] == '.')
      out[i] = '_';
}

/* Whether the subject filter `f` covers every subject "P.>" (P: prefix
 * tokens). */
static bool js_filter_covers(const char *f, const char *prefix) {
  char fb[BRIDGE_SUBJECT_MAX], pb[BRIDGE_SUBJECT_MAX];
  char *fs = NULL, *ps = NULL, *ft, *pt;

  if (strlen(f) >= sizeof(fb) || strlen(prefix) >= sizeof(pb))
    return false;
  strcpy(fb, f);
  strcpy(pb, prefix);
  ft = strtok_r(fb, ".", &fs);
  pt = strtok_r(pb, ".", &ps);
  for (; ft != NULL;
       ft = strtok_r(NULL, ".", &fs), pt = pt != NULL ? strtok_r(NULL, ".", &ps) : NULL) {
    if (strcmp(ft, ">") == 0)
      return true; /* the rest, at least one token: P.> has one after P */
    if (pt == NULL)
      return false; /* a token of P.>'s wildcard part matched by less than '>' */
    if (strcmp(ft, "*") != 0 && strcmp(ft, pt) != 0)
      return false;
  }
  return false;
}

/* The stream's subjects cover P.>? */
static bool js_stream_covers(const jsStreamInfo *si, const char *prefix) {
  int i;

  if (si == NULL || si->Config == NULL)
    return false;
  for (i = 0; i < si->Config->SubjectsLen; i++)
    if (si->Config->Subjects[i] != NULL && js_filter_covers(si->Config->Subjects[i], prefix))
      return true;
  return false;
}

/* How many NATS servers the connection knows of: those of --nats and
 * those the cluster told it about (the client URLs of the nodes its server
 * has routes to); 1 at least. */
static int js_known_servers(struct bridge *b) {
  char **srv = NULL;
  int n = 0, i;

  if (natsConnection_GetServers(b->nc, &srv, &n) != NATS_OK)
    return 1;
  for (i = 0; i < n; i++)
    free(srv[i]);
  free(srv);
  return n > 0 ? n : 1;
}

/* Says so when the stream has fewer replicas than it could (3 at most):
 * such a stream stops while one of its nodes is down. */
static void js_few_replicas(struct bridge *b, int r) {
  int known = js_known_servers(b);

  if (r < 3 && r < known)
    bridge_log("JetStream: stream %s has %d replica%s while the connection knows %d servers: "
               "it stops while one of its nodes is down",
               b->stream, r, r == 1 ? "" : "s", known);
}

/* Binds to the stream if it exists: NATS_OK (it covers the subjects),
 * NATS_INVALID_ARG (it does not: logged), or the lookup's status
 * (NATS_NOT_FOUND...). */
static natsStatus js_stream_bind(struct bridge *b, const char *subj, jsErrCode *ec) {
  jsStreamInfo *si = NULL;
  natsStatus s = js_GetStreamInfo(&si, b->js, b->stream, NULL, ec);
  bool ok;
  int r;

  if (s != NATS_OK)
    return s;
  ok = js_stream_covers(si, b->o.prefix);
  r = si->Config != NULL ? (int)si->Config->Replicas : 0;
  jsStreamInfo_Destroy(si);
  if (!ok) {
    bridge_log("JetStream: stream %s does not cover %s: give it that subject, or another "
               "--stream or --subject-prefix",
               b->stream, subj);
    return NATS_INVALID_ARG;
  }
  bridge_log("JetStream: stream %s (%d replicas) covers %s", b->stream, r, subj);
  js_few_replicas(b, r);
  return NATS_OK;
}

int bridge_js_start(struct bridge *b) {
  jsOptions jo;
  jsStreamInfo *si = NULL;
  jsErrCode ec = 0;
  natsStatus s;
  char subj[BRIDGE_SUBJECT_MAX + 2];
  int64_t now = nats_Now();

  if (b->js == NULL) {
    if (jsOptions_Init(&jo) != NATS_OK)
      return -ENOMEM;
    jo.Wait = JS_WAIT_MS;
    jo.PublishAsync.AckHandler = bridge_js_on_ack;
    jo.PublishAsync.AckHandlerClosure = b;
    if ((s = natsConnection_JetStream(&b->js, b->nc, &jo)) != NATS_OK) {
      b->js = NULL;
      bridge_log("JetStream: %s", natsStatus_GetText(s));
      return -EIO;
    }
  }
  if (b->js_place_until == 0)
    b->js_place_until = now + JS_PLACE_WAIT_MS;
  if (b->o.stream != NULL)
    snprintf(b->stream, sizeof(b->stream), "%s", b->o.stream);
  else
    bridge_js_stream_name(b->o.prefix, b->stream, sizeof(b->stream));
  snprintf(subj, sizeof(subj), "%s.>", b->o.prefix);
  s = js_stream_bind(b, subj, &ec);
  if (s == NATS_OK)
    return 0;
  if (s == NATS_INVALID_ARG)
    return -EINVAL;
  if (s != NATS_NOT_FOUND) {
    bridge_log("JetStream: stream %s: %s (error %d)", b->stream, natsStatus_GetText(s), (int)ec);
    return -EIO;
  }
  if (b->o.stream != NULL) {
    bridge_log("JetStream: stream %s not found (--stream binds to an existing stream)", b->stream);
    return -ENOENT;
  }
  /* Replicated on as many nodes as the cluster has, 3 at most: try 3,
   * then fewer while the server says there are not enough. A request that
   * timed out (a loaded cluster) may still have made the stream: it is
   * looked for, and asked again with as many replicas, twice at most.
   *
   * A cluster that has just started may not know all its nodes yet: its
   * metadata leader places a stream only on the members of its metadata
   * group it has heard from, and answers "no suitable peers for
   * placement" (error 10005) to 3 replicas on 3 nodes for a moment (with
   * nats-server 2.10, sometimes for minutes: a group formed without one
   * node). Taken at once for a cluster of fewer nodes, that makes a
   * stream of 2 replicas, which stops (no quorum) as soon as one of its 2
   * nodes fails. So while the connection knows of at least as many
   * servers as the replicas asked for, that answer is waited out:
   * bridge_js_start returns -EAGAIN (the caller asks again a moment later,
   * its loop free meanwhile) for JS_PLACE_WAIT_MS at most before it tries
   * fewer, and a stream with fewer replicas than known servers is logged. */
  for (int r = 3, timeouts = 0; r >= 1; r--) {
    jsStreamConfig cfg;
    const char *subjects[1] = {subj};
    jsErrCode bec = 0;
    natsStatus bs;
    const char *why;
    char whyb[256];
    if (jsStreamConfig_Init(&cfg) != NATS_OK)
      return -ENOMEM;
    cfg.Name = b->stream;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = r;
    cfg.Duplicates = JS_DUP_WINDOW_NS;
    cfg.MaxAge = JS_MAX_AGE_NS;
    si = NULL;
    ec = 0;
    s = js_AddStream(&si, b->js, &cfg, NULL, &ec);
    jsStreamInfo_Destroy(si);
    if (s == NATS_OK) {
      bridge_log("JetStream: created stream %s for %s, %d replicas, file storage", b->stream, subj,
                 r);
      js_few_replicas(b, r);
      return 0;
    }
    /* The server's words, before the next call replaces them. */
    why = nats_GetLastError(NULL);
    snprintf(whyb, sizeof(whyb), "%s", why != NULL ? why : natsStatus_GetText(s));
    /* Another bridge may have created it meanwhile. */
    if ((bs = js_stream_bind(b, subj, &bec)) == NATS_OK)
      return 0;
    if (bs == NATS_INVALID_ARG)
      return -EINVAL;
    if (s == NATS_TIMEOUT && timeouts++ < 2) {
      bridge_log("JetStream: creating stream %s with %d replicas timed out; asking again",
                 b->stream, r);
      r++;
      continue;
    }
    if (ec == JSClusterNoPeersErr && r <= js_known_servers(b) && now < b->js_place_until) {
      if (!b->js_place_waiting)
        bridge_log("JetStream: stream %s with %d replicas: %s (error %d); the connection knows "
                   "%d servers: asking again for %d s while the cluster gets to know its nodes",
                   b->stream, r, whyb, (int)ec, js_known_servers(b), JS_PLACE_WAIT_MS / 1000);
      b->js_place_waiting = true;
      return -EAGAIN;
    }
    if (r > 1)
      bridge_log("JetStream: stream %s with %d replicas: %s (error %d); trying fewer", b->stream, r,
                 whyb, (int)ec);
    else
      bridge_log("JetStream: cannot create stream %s: %s (error %d)", b->stream, whyb, (int)ec);
  }
  return -EIO;
}

/* ---- export ------------------------------------------------------------ */

/* Counts a failed publish (any thread); logs the 1st, 2nd, 4th, 8th...
 * with its reason (each is sent again). */
static void js_failed_log(struct bridge *b, const char *why) {
  unsigned long long n = atomic_fetch_add_explicit(&b->js_failed, 1, memory_order_relaxed) + 1;

  if ((n & (n - 1)) == 0)
    bridge_log("JetStream: a publish failed (%s); sending it again (%llu failures so far)", why, n);
}

/* libnats's thread: the server's answer to one publish. */
void bridge_js_on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure) {
  struct bridge *b = closure;
  long long inflight;

  (void)js;
  if (pa == NULL || pae != NULL) {
    /* Sent again by the loop (the same Nats-Msg-Id): still in flight. */
    uv_mutex_lock(&b->js_lock);
    if (b->resend_n < b->resend_cap) {
      b->resend[b->resend_n++] = msg;
      msg = NULL;
    }
    uv_mutex_unlock(&b->js_lock);
    js_failed_log(b, pae != NULL && pae->ErrText != NULL ? pae->ErrText
                     : pae != NULL                       ? natsStatus_GetText(pae->Err)
                                                         : "no acknowledgement");
    if (msg != NULL) {
      /* Cannot happen (the queue holds the whole window); counted lost. */
      atomic_fetch_sub_explicit(&b->js_inflight, 1, memory_order_relaxed);
      atomic_fetch_add_explicit(&b->js_lost, 1, memory_order_relaxed);
      natsMsg_Destroy(msg);
    }
    return;
  }
  if (pa->Duplicate)
    atomic_fetch_add_explicit(&b->js_dup, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&b->js_acked, 1, memory_order_relaxed);
  inflight = atomic_fetch_sub_explicit(&b->js_inflight, 1, memory_order_acq_rel) - 1;
  natsMsg_Destroy(msg);
  /* The loop resumes the local topics once half the window is free. */
  if (inflight == BRIDGE_JS_WINDOW / 2 && atomic_load_explicit(&b->js_paused, memory_order_acquire))
    (void)uv_async_send(b->js_wake);
}

/* Publishes `m` (taking it), or queues it for a resend. */
static void js_send(struct bridge *b, natsMsg *m) {
  jsPubOptions po;
  natsStatus s;

  (void)jsPubOptions_Init(&po);
  po.MaxWait = JS_WAIT_MS;
  s = js_PublishMsgAsync(b->js, &m, &po);
  if (s == NATS_OK)
    return;
  if (s == NATS_MAX_PAYLOAD) {
    /* Larger than the server's max_payload: it never will go; counted as
     * lost (rather than holding the topics back for ever). */
    bridge_log("JetStream: a message on %s exceeds the server's max_payload: dropped "
               "(counted as lost)",
               natsMsg_GetSubject(m));
    atomic_fetch_sub_explicit(&b->js_inflight, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->js_lost, 1, memory_order_relaxed);
    natsMsg_Destroy(m);
    return;
  }
  js_failed_log(b, natsStatus_GetText(s));
  uv_mutex_lock(&b->js_lock);
  if (b->resend_n < b->resend_cap) {
    b->resend[b->resend_n++] = m; /* always room: every message in flight fits */
    m = NULL;
  }
  uv_mutex_unlock(&b->js_lock);
  if (m != NULL) {
    atomic_fetch_sub_explicit(&b->js_inflight, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&b->js_lost, 1, memory_order_relaxed);
    natsMsg_Destroy(m);
  }
}

int bridge_js_export(struct bridge_topic *t, const void *data, size_t len,
                     const struct shmbus_msg_info *info) {
  struct bridge *b = t->b;
  struct bridge_hdr h;
  char id[BRIDGE_NAME_MAX + 300];
  natsMsg *m = NULL;

  strcpy(h.origin, b->o.name);
  strcpy(h.topic, t->name);
  h.seq = info->seq;
  bridge_clock_update(&b->clock, uv_now(b->loop));
  h.ts_ns = bridge_clock_to_real(&b->clock, info->ts_ns);
  snprintf(id, sizeof(id), "%s/%s/%" PRIu64, b->o.name, t->name, info->seq);
  /* The header block written directly where libnats allows it (one
   * allocation per message rather than a map: headers.h). */
  if (bridge_hdr_msg(&m, t->subject, &h, id, data, len, &b->hbuf) < 0)
    return -ENOMEM;
  if (atomic_fetch_add_explicit(&b->js_inflight, 1, memory_order_acq_rel) + 1 >= BRIDGE_JS_WINDOW)
    bridge_js_pause(b);
  js_send(b, m);
  return 0;
}

void bridge_js_pause(struct bridge *b) {
  if (atomic_load_explicit(&b->js_paused, memory_order_relaxed))
    return;
  /* The readers (bridge_export_drain) stop at the flag. */
  atomic_store_explicit(&b->js_paused, true, memory_order_release);
  b->js_pauses++;
  /* An acknowledgement may have come before the flag was seen. */
  if (atomic_load_explicit(&b->js_inflight, memory_order_acquire) <= BRIDGE_JS_WINDOW / 2)
    (void)uv_async_send(b->js_wake);
}

/* Resumes reading the topics if the window allows; `always`: reads them
 * even if they were not held back (the timer's safety net against a
 * wake-up that never came). */
static void js_resume(struct bridge *b, bool always) {
  size_t i;

  if (b->stopping)
    return;
  if (atomic_load_explicit(&b->js_paused, memory_order_acquire)) {
    if (atomic_load_explicit(&b->js_inflight, memory_order_acquire) > BRIDGE_JS_WINDOW / 2)
      return;
    atomic_store_explicit(&b->js_paused, false, memory_order_release);
  } else if (!always) {
    return;
  }
  for (i = 0; i < b->ntopics; i++)
    if (b->topics[i]->sub != NULL)
      bridge_export_drain(b->topics[i]);
}

static void js_on_wake(uv_async_t *a) {
  js_resume(a->data, false);
}

/* The loop: resends what failed, then resumes if the window allows. */
static void js_on_timer(uv_timer_t *tm) {
  struct bridge *b = tm->data;
  natsMsg **batch;
  size_t n, i;

  if (b->stopping)
    return;
  uv_mutex_lock(&b->js_lock);
  n = b->resend_n;
  batch = b->resend_tmp;
  memcpy(batch, b->resend, n * sizeof(*batch));
  b->resend_n = 0;
  uv_mutex_unlock(&b->js_lock);
  for (i = 0; i < n; i++) {
    atomic_fetch_add_explicit(&b->js_resent, 1, memory_order_relaxed);
    js_send(b, batch[i]);
  }
  js_resume(b, true);
  bridge_import_poke(b);
  /* After a reconnect: the importer's consumers asked again (until they
   * answer, within the ack wait: later, what the server bug dropped is
   * gone anyway). */
  if (atomic_exchange_explicit(&b->js_reconnected, false, memory_order_acq_rel))
    b->js_resweep_until = uv_now(b->loop) + JS_ACK_WAIT_NS / 1000000;
  if (b->js_resweep_until != 0) {
    if (bridge_import_reconnected(b) == 0 || uv_now(b->loop) >= b->js_resweep_until)
      b->js_resweep_until = 0;
  }
}

int bridge_js_loop_start(struct bridge *b) {
  /* Every message in flight may wait for a resend at once, plus those the
   * ack handler queues while the loop swaps the queue. */
  b->resend_cap = 2 * BRIDGE_JS_WINDOW + 16;
  if ((b->resend = calloc(b->resend_cap, sizeof(*b->resend))) == NULL ||
      (b->resend_tmp = calloc(b->resend_cap, sizeof(*b->resend_tmp))) == NULL ||
      (b->js_wake = calloc(1, sizeof(*b->js_wake))) == NULL ||
      (b->js_timer = calloc(1, sizeof(*b->js_timer))) == NULL)
    return -ENOMEM;
  if (uv_mutex_init(&b->js_lock) != 0)
    return -ENOMEM;
  b->js_lock_init = true;
  if (uv_async_init(b->loop, b->js_wake, js_on_wake) != 0)
    return -ENOMEM;
  b->js_wake->data = b;
  uv_unref((uv_handle_t *)b->js_wake);
  if (uv_timer_init(b->loop, b->js_timer) != 0) {
    free(b->js_timer);
    b->js_timer = NULL;
    return -ENOMEM;
  }
  b->js_timer->data = b;
  uv_unref((uv_handle_t *)b->js_timer);
  if (uv_timer_start(b->js_timer, js_on_timer, JS_RESEND_MS, JS_RESEND_MS) != 0)
    return -ENOMEM;
  return 0;
}

bool bridge_js_last_seq(struct bridge *b, const struct bridge_topic *t, uint64_t *last) {
  natsMsg *m = NULL;
  struct bridge_hdr h;
  jsErrCode ec = 0;
  bool found = false;

  *last = 0;
  if (js_GetLastMsg(&m, b->js, b->stream, t->subject, NULL, &ec) != NATS_OK)
    return false;
  if (bridge_hdr_get(m, &h) == 0 && strcmp(h.origin, b->o.name) == 0 &&
      strcmp(h.topic, t->name) == 0) {
    found = true;
    *last = h.seq;
  }
  natsMsg_Destroy(m);
  return found;
}

void bridge_js_stop(struct bridge *b) {
  jsPubOptions po;
  long long left;

  if (b->js != NULL && b->o.nexports > 0) {
    /* What is in flight gets its acknowledgement, a while at most; a
     * restart sends again what did not (de-duplicated by the server). */
    (void)jsPubOptions_Init(&po);
    po.MaxWait = JS_WAIT_MS;
    (void)js_PublishAsyncComplete(b->js, &po);
    left = atomic_load_explicit(&b->js_inflight, memory_order_acquire);
    if (left > 0)
      bridge_log("JetStream: %lld messages still unacknowledged at exit", left);
  }
  /* A handle never initialised (setup failed first) has no loop. */
  if (b->js_timer != NULL && b->js_timer->loop != NULL)
    uv_close((uv_handle_t *)b->js_timer, (uv_close_cb)free);
  else
    free(b->js_timer);
  if (b->js_wake != NULL && b->js_wake->loop != NULL)
    uv_close((uv_handle_t *)b->js_wake, (uv_close_cb)free);
  else
    free(b->js_wake);
  b->js_timer = NULL;
  b->js_wake = NULL;
}

void bridge_js_release(struct bridge *b) {
  jsCtx_Destroy(b->js);
}

/* After nats_CloseAndWait: no ack handler can run. */
void bridge_js_free(struct bridge *b) {
  size_t i;

  b->js = NULL;
  for (i = 0; i < b->resend_n; i++)
    natsMsg_Destroy(b->resend[i]);
  free(b->resend);
  free(b->resend_tmp);
  b->resend = b->resend_tmp = NULL;
  b->resend_n = 0;
  if (b->js_lock_init)
    uv_mutex_destroy(&b->js_lock);
  b->js_lock_init = false;
}

/* ---- import ------------------------------------------------------------ */

/* The durable consumer of the k-th subject of the imports: --name for
 * the first, --name-K for the K-th after it (an import pattern may need
 * two filters). */
static void js_durable_name(const struct bridge *b, int k, char *out, size_t cap) {
  if (k == 0)
    snprintf(out, cap, "%s", b->o.name);
  else
    snprintf(out, cap, "%s-%d", b->o.name, k + 1);
}

/* Asks the consumer `durable` to deliver again, at once, every message it
 * has delivered and not had acknowledged: a negative acknowledgement
 * ("-NAK") to each stream sequence number between its ack floor and the
 * last it delivered (those acknowledged already, or not pending, are
 * ignored by the server). Blocks (a request, a flush).
 *
 * Why: nats-server 2.10 (up to 2.11.8) loses a message that a push
 * consumer delivers for the first time while its delivery subject has no
 * subscriber anywhere (an importer stopping, restarting or reconnecting):
 * the failed delivery takes its delivery count from 0 down to 2^64 - 1,
 * and with MaxDeliver unlimited (-1, which the server keeps as 2^64 - 1)
 * the next ack-wait check finds it at its maximum of deliveries and drops
 * it from the pending set without moving the ack floor; it is never
 * delivered again (fixed in nats-server 2.11.9 and 2.12.0: "Consumer
 * MaxDeliver underflow"). A negative acknowledgement puts it on the
 * consumer's redelivery queue, which the ack-wait check leaves alone and
 * which is served first once a subscriber is there: it counts the
 * delivery again from the wrapped value back to 1. Harmless on servers
 * without the bug (what is pending comes again sooner, dropped here as a
 * duplicate if it had been published). `wait_ms`: how long the requests
 * wait (0: JS_WAIT_MS). Returns the count asked for, or -EIO. */
static long long js_nak_unacked(struct bridge *b, const char *durable, int wait_ms) {
  jsConsumerInfo *ci = NULL;
  jsErrCode ec = 0;
  jsOptions jo;
  char subj[BRIDGE_SUBJECT_MAX + BRIDGE_NAME_MAX + 96];
  uint64_t from, to, dseq, seq;
  long long n = 0;
  natsStatus s;

  if (jsOptions_Init(&jo) != NATS_OK)
    return -ENOMEM;
  jo.Wait = wait_ms > 0 ? wait_ms : JS_WAIT_MS;
  s = js_GetConsumerInfo(&ci, b->js, b->stream, durable, &jo, &ec);

  if (s != NATS_OK) {
    bridge_log("JetStream: consumer %s: %s (error %d)", durable, natsStatus_GetText(s), (int)ec);
    return -EIO;
  }
  from = ci->AckFloor.Stream + 1;
  to = ci->Delivered.Stream;
  dseq = ci->Delivered.Consumer;
  if (ci->NumAckPending <= 0 || to < from || dseq <= ci->AckFloor.Consumer) {
    jsConsumerInfo_Destroy(ci);
    return 0;
  }
  jsConsumerInfo_Destroy(ci);
  if (to - from >= JS_NAK_MAX) {
    bridge_log("JetStream: consumer %s: %" PRIu64 " messages between its ack floor and its last "
               "delivery; asking again for the first %u",
               durable, to - from + 1, JS_NAK_MAX);
    to = from + JS_NAK_MAX - 1;
  }
  for (seq = from; seq <= to; seq++) {
    snprintf(subj, sizeof(subj), "$JS.ACK.%s.%s.1.%" PRIu64 ".%" PRIu64 ".0.0", b->stream, durable,
             seq, dseq);
    if (natsConnection_Publish(b->nc, subj, "-NAK", 4) != NATS_OK)
      return -EIO;
    n++;
  }
  if (natsConnection_FlushTimeout(b->nc, jo.Wait) != NATS_OK)
    return -EIO;
  return n;
}

int bridge_js_subscribe(struct bridge *b, const char *filter, int k, natsMsgHandler cb, void *arg,
                        natsSubscription **sub) {
  char durable[BRIDGE_NAME_MAX + 16], deliver[BRIDGE_NAME_MAX + 64];
  jsConsumerConfig cc;
  jsConsumerInfo *ci = NULL;
  jsErrCode ec = 0;
  natsStatus s;

  js_durable_name(b, k, durable, sizeof(durable));
  snprintf(deliver, sizeof(deliver), "_shmbus_deliver.%s", durable);
  s = js_GetConsumerInfo(&ci, b->js, b->stream, durable, NULL, &ec);
  if (s == NATS_OK) {
    bool same = ci->Config != NULL && ci->Config->FilterSubject != NULL &&
                strcmp(ci->Config->FilterSubject, filter) == 0 &&
                ci->Config->DeliverSubject != NULL;
    jsConsumerInfo_Destroy(ci);
    if (!same) {
      bridge_log("JetStream: consumer %s of stream %s exists with another filter or is not a "
                 "push consumer: delete it or use another --name",
                 durable, b->stream);
      return -EEXIST;
    }
    bridge_log("JetStream: resuming durable consumer %s (%s)", durable, filter);
    /* What the last run left unacknowledged comes first (and what a
     * server with the bug above would drop is saved, if its ack wait has
     * not expired yet: a stop settles it, a crash may not). */
    (void)js_nak_unacked(b, durable, 0);
  } else if (s == NATS_NOT_FOUND) {
    (void)jsConsumerConfig_Init(&cc);
    cc.Durable = durable;
    cc.DeliverSubject = deliver;
    cc.FilterSubject = filter;
    cc.AckPolicy = js_AckExplicit;
    cc.DeliverPolicy = js_DeliverAll;
    cc.AckWait = JS_ACK_WAIT_NS;
    cc.MaxAckPending = JS_MAX_ACK_PENDING;
    ci = NULL;
    if ((s = js_AddConsumer(&ci, b->js, b->stream, &cc, NULL, &ec)) != NATS_OK) {
      bridge_log("JetStream: cannot create consumer %s: %s (error %d)", durable,
                 nats_GetLastError(NULL), (int)ec);
      return -EIO;
    }
    jsConsumerInfo_Destroy(ci);
    bridge_log("JetStream: created durable consumer %s (%s)", durable, filter);
  } else {
    bridge_log("JetStream: consumer %s: %s (error %d)", durable, natsStatus_GetText(s), (int)ec);
    return -EIO;
  }
  /* A plain subscription to the consumer's delivery subject: the library
   * never deletes the consumer, and acknowledgements go to each message's
   * reply subject (bridge_js_ack). */
  if ((s = natsConnection_Subscribe(sub, b->nc, deliver, cb, arg)) != NATS_OK) {
    bridge_log("JetStream: cannot subscribe to %s (consumer %s): %s", deliver, durable,
               natsStatus_GetText(s));
    return -EIO;
  }
  return 0;
}

void bridge_js_unsubscribed(struct bridge *b, int k) {
  char durable[BRIDGE_NAME_MAX + 16];
  int64_t end = nats_Now() + JS_UNBOUND_WAIT_MS;
  bool bound = true;
  long long n;

  /* Disconnected: nothing to ask (the server saw the subscriber go). */
  if (atomic_load_explicit(&b->nats_state, memory_order_relaxed) != NATS_CONNECTED ||
      natsConnection_FlushTimeout(b->nc, JS_WAIT_MS) != NATS_OK)
    return;
  js_durable_name(b, k, durable, sizeof(durable));
  /* Until the server has seen that nobody subscribes: it stops delivering
   * then, and what is put back on its redelivery queue waits for the next
   * subscriber (asked before, a message could go out again to nobody, and
   * that failure is what the bug above needs). */
  while (bound && nats_Now() < end) {
    jsConsumerInfo *ci = NULL;
    jsErrCode ec = 0;
    if (js_GetConsumerInfo(&ci, b->js, b->stream, durable, NULL, &ec) != NATS_OK)
      return;
    bound = ci->PushBound;
    jsConsumerInfo_Destroy(ci);
    if (bound)
      nats_Sleep(10);
  }
  if (bound) {
    bridge_log("JetStream: consumer %s still has a subscriber after %d ms; its unacknowledged "
               "messages are left to its ack wait",
               durable, JS_UNBOUND_WAIT_MS);
    return;
  }
  if ((n = js_nak_unacked(b, durable, 0)) > 0)
    bridge_log("JetStream: consumer %s: %lld unacknowledged messages queued for the next run",
               durable, n);
}

int bridge_js_reconnected(struct bridge *b, int k) {
  char durable[BRIDGE_NAME_MAX + 16];
  long long n;

  /* Cut off from NATS, the importer's subscription was gone for a while:
   * the consumer may have delivered to nobody meanwhile, which the
   * nats-server 2.10 bug above turns into a loss at the message's ack
   * wait. What it left unacknowledged is asked for again now, well within
   * the ack wait; what comes twice is dropped as a duplicate. The requests
   * wait 1 s at most (the loop waits with them); the caller asks again
   * while the consumer does not answer (its leader moving, say). */
  if (atomic_load_explicit(&b->nats_state, memory_order_relaxed) != NATS_CONNECTED)
    return -EAGAIN;
  js_durable_name(b, k, durable, sizeof(durable));
  if ((n = js_nak_unacked(b, durable, 1000)) < 0)
    return (int)n;
  if (n > 0)
    bridge_log("JetStream: consumer %s: %lld unacknowledged messages asked for again after the "
               "reconnect",
               durable, n);
  return 0;
}

/* The delivery count in a JetStream acknowledgement subject, 0 when it
 * has none. Two formats (nats-server's ADR-15):
 *   $JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>
 *   $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>
 *           .<time>.<pending>[.<token>...]
 * that is 9 tokens, or 11 and more (the count sits at index 4 or 6). */
static uint64_t js_ack_delivered(const char *r) {
  const char *tok[12], *p;
  int n = 0, at;
  char *end;
  unsigned long long v;

  for (p = r; n < 12; p++) {
    tok[n++] = p;
    if ((p = strchr(p, '.')) == NULL)
      break;
  }
  if (n == 9 && p == NULL)
    at = 4;
  else if (n >= 11)
    at = 6;
  else
    return 0;
  if (tok[at][0] < '0' || tok[at][0] > '9')
    return 0;
  errno = 0;
  v = strtoull(tok[at], &end, 10);
  if (errno != 0 || *end != '.')
    return 0;
  return (uint64_t)v;
}

int bridge_js_ack(struct bridge *b, natsMsg *msg, bool *redelivered) {
  const char *r = natsMsg_GetReply(msg);

  *redelivered = false;
  if (r == NULL || strncmp(r, "$JS.ACK.", 8) != 0)
    return -EBADMSG;
  *redelivered = js_ack_delivered(r) > 1;
  return natsConnection_Publish(b->nc, r, "+ACK", 4) == NATS_OK ? 0 : -EIO;
}
