/* discover: topic watches. See include/shmbus/discover.h for the API and
 * docs/protocol.md ("Discovery") for the messages.
 *
 * How a watch stays right. The watch asks the daemon to report changes
 * (`watch`, answered by `ok`), then lists what exists with a snapshot
 * (the same request, and the same permission filter, as `shmbus ls`). The
 * daemon handles one request at a time and sends on one socket in order,
 * so every topic_up/topic_down event that arrives before the snapshot's
 * reply is already reflected in the snapshot, and every event after it is
 * news. The watch therefore applies events as they come and lets the
 * snapshot overwrite whatever they said. The same two steps renew a watch
 * after a reconnect, when events may have been missed: the snapshot is the
 * truth, and the difference from what the caller was told is reported.
 *
 * The state is one entry per topic name the watch knows, with two bits:
 * `present` (what the daemon says now) and `reported` (what the caller was
 * last told). An entry whose bits differ sits once in a FIFO of changes to
 * report; taking a change reports the entry's state now, so a topic that
 * appeared and went away before the caller looked is never reported, and
 * the memory a watch holds is bounded by the matching topics, whatever the
 * caller's pace.
 *
 * Thread-safety: the bus's (one thread at a time). */
#include "discover.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "pattern.h"
#include "platform/platform.h"
#include "shmbus/discover.h"
#include "shmbus/error.h"
#include "shmbus/msgpack.h"

/* Changes delivered to a loop's callback per turn. */
#define DISCOVER_UV_BATCH 1024u
/* How often a blocking shmbus_watch_next looks for the daemon while the
 * bus is disconnected (the bus backs off reconnects by itself). */
#define DISCOVER_RETRY_MS 50
/* How often a watch that could not be renewed is tried again. */
#define DISCOVER_RETRY_NS 1000000000ull

struct discover_entry {
  struct discover_entry *hnext; /* hash chain */
  struct discover_entry *qnext; /* FIFO of changes, while queued */
  bool present;                 /* the daemon's latest word */
  bool reported;                /* what the caller was last told */
  bool queued;                  /* on the FIFO */
  bool mark;                    /* listed by the snapshot being applied */
  char name[];
};

struct shmbus_watch {
  shmbus_bus *bus;
  struct shmbus_watch *next; /* the bus's list */
  uint32_t id;               /* the watch number the daemon knows it by */
  bool synced;               /* the daemon knows it and the listing was applied */
  uint64_t retry_ns;         /* !synced: renew it again from then on */
  struct discover_entry **buckets;
  size_t nbuckets; /* a power of two */
  size_t nentries;
  size_t npresent; /* entries reported present */
  struct discover_entry *qhead;
  struct discover_entry *qtail;
  /* Delivery from an event loop (uv.c, shmbus_uv_watch_start), or NULL. */
  const struct shmbus__watch_loop_ops *loop;
  struct shmbus__uv_watch *loop_state;
  shmbus_uv_watch_cb cb;
  void *arg;
  bool *gone; /* set to true when the watch is freed during a delivery */
  char pattern[SHMBUS__TOPIC_MAX + 1];
};

/* ---- the entries ---------------------------------------------------------- */

static uint32_t discover_hash(const char *s) {
  uint32_t h = 2166136261u; /* FNV-1a */

  while (*s != '\0')
    h = (h ^ (uint8_t)*s++) * 16777619u;
  return h;
}

static struct discover_entry *discover_find(const shmbus_watch *w, const char *name) {
  struct discover_entry *e;

  for (e = w->buckets[discover_hash(name) & (w->nbuckets - 1)]; e != NULL; e = e->hnext)
    if (strcmp(e->name, name) == 0)
      return e;
  return NULL;
}

/* Doubles the table once it holds more entries than buckets. A failed
 * allocation keeps the old table (longer chains, still correct). */
static void discover_grow(shmbus_watch *w) {
  struct discover_entry **nb;
  size_t n = w->nbuckets * 2;
  size_t i;

  if (w->nentries <= w->nbuckets || (nb = calloc(n, sizeof(*nb))) == NULL)
    return;
  for (i = 0; i < w->nbuckets; i++) {
    struct discover_entry *e = w->buckets[i];
    while (e != NULL) {
      struct discover_entry *next = e->hnext;
      size_t b = discover_hash(e->name) & (n - 1);
      e->hnext = nb[b];
      nb[b] = e;
      e = next;
    }
  }
  free(w->buckets);
  w->buckets = nb;
  w->nbuckets = n;
}

static struct discover_entry *discover_add(shmbus_watch *w, const char *name) {
  size_t len = strlen(name);
  struct discover_entry *e = calloc(1, sizeof(*e) + len + 1);
  size_t b;

  if (e == NULL)
    return NULL;
  memcpy(e->name, name, len + 1);
  b = discover_hash(name) & (w->nbuckets - 1);
  e->hnext = w->buckets[b];
  w->buckets[b] = e;
  w->nentries++;
  discover_grow(w);
  return e;
}

/* Unlinks and frees an entry that is not queued. */
static void discover_del(shmbus_watch *w, struct discover_entry *e) {
  struct discover_entry **pp = &w->buckets[discover_hash(e->name) & (w->nbuckets - 1)];

  while (*pp != e)
    pp = &(*pp)->hnext;
  *pp = e->hnext;
  w->nentries--;
  free(e);
}

static void discover_kick(shmbus_watch *w);

/* Records the daemon's word on one entry and queues it if the caller must
 * hear of it. */
static void discover_set(shmbus_watch *w, struct discover_entry *e, bool present) {
  e->present = present;
  if (e->present == e->reported || e->queued) {
    if (!e->present && !e->reported && !e->queued)
      discover_del(w, e);
    return;
  }
  e->queued = true;
  e->qnext = NULL;
  if (w->qtail != NULL)
    w->qtail->qnext = e;
  else
    w->qhead = e;
  w->qtail = e;
  discover_kick(w);
}

/* Takes the next change. Returns true with *ev filled, false if none. */
static bool discover_pop(shmbus_watch *w, struct shmbus_topic_event *ev) {
  struct discover_entry *e;

  while ((e = w->qhead) != NULL) {
    bool changed;
    w->qhead = e->qnext;
    if (w->qhead == NULL)
      w->qtail = NULL;
    e->queued = false;
    changed = e->present != e->reported;
    if (changed) {
      ev->change = e->present ? SHMBUS_TOPIC_APPEARED : SHMBUS_TOPIC_GONE;
      memcpy(ev->topic, e->name, strlen(e->name) + 1);
      e->reported = e->present;
      if (e->present)
        w->npresent++;
      else
        w->npresent--;
    }
    if (!e->present && !e->reported)
      discover_del(w, e);
    if (changed)
      return true;
  }
  return false;
}

/* ---- talking to the daemon ---------------------------------------------------- */

/* The name of a snapshot's topic map, if it has a proper one. */
static bool discover_topic_name(const msgpack_object *t, char *out) {
  uint32_t i;

  if (t->type != MSGPACK_OBJECT_MAP)
    return false;
  for (i = 0; i < t->via.map.size; i++) {
    const msgpack_object_kv *kv = &t->via.map.ptr[i];
    if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size != 4 ||
        memcmp(kv->key.via.str.ptr, "name", 4) != 0)
      continue;
    if (kv->val.type != MSGPACK_OBJECT_STR || kv->val.via.str.size > SHMBUS__TOPIC_MAX)
      return false;
    memcpy(out, kv->val.via.str.ptr, kv->val.via.str.size);
    out[kv->val.via.str.size] = '\0';
    /* Untrusted: a name must be a topic name to be matched or reported. */
    return memchr(out, '\0', kv->val.via.str.size) == NULL &&
           shmbus__topic_validate(out, true) == 0;
  }
  return false;
}

/* Applies a snapshot (the daemon's msgpack map) as the truth about the
 * watch's topics. Returns 0, -EPROTO (not a snapshot), -ENOMEM. */
static int discover_apply(shmbus_watch *w, const void *data, size_t len) {
  char name[SHMBUS__TOPIC_MAX + 1];
  const msgpack_object *topics = NULL;
  msgpack_unpacked up;
  size_t b;
  uint32_t i;
  int rv;

  msgpack_unpacked_init(&up);
  if ((rv = shmbus_msgpack_unpack(data, len, &up)) < 0) {
    rv = rv == -ENOMEM ? rv : -EPROTO;
    goto out;
  }
  if (up.data.type == MSGPACK_OBJECT_MAP)
    for (i = 0; i < up.data.via.map.size; i++) {
      const msgpack_object_kv *kv = &up.data.via.map.ptr[i];
      if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == 6 &&
          memcmp(kv->key.via.str.ptr, "topics", 6) == 0)
        topics = &kv->val;
    }
  if (topics == NULL || topics->type != MSGPACK_OBJECT_ARRAY) {
    rv = -EPROTO;
    goto out;
  }
  for (b = 0; b < w->nbuckets; b++)
    for (struct discover_entry *e = w->buckets[b]; e != NULL; e = e->hnext)
      e->mark = false;
  for (i = 0; i < topics->via.array.size; i++) {
    struct discover_entry *e;
    if (!discover_topic_name(&topics->via.array.ptr[i], name) ||
        !shmbus__pattern_match(w->pattern, name))
      continue;
    if ((e = discover_find(w, name)) == NULL && (e = discover_add(w, name)) == NULL) {
      rv = -ENOMEM;
      goto out;
    }
    e->mark = true;
  }
  /* Now every entry's state is its mark. discover_set may free the entry
   * it is given, so the chain's next is taken first. */
  for (b = 0; b < w->nbuckets; b++) {
    struct discover_entry *e = w->buckets[b];
    while (e != NULL) {
      struct discover_entry *next = e->hnext;
      discover_set(w, e, e->mark);
      e = next;
    }
  }
  rv = 0;
out:
  msgpack_unpacked_destroy(&up);
  return rv;
}

/* Registers the watch with the daemon and applies its listing. */
static int discover_sync(shmbus_watch *w) {
  shmbus_bus *bus = w->bus;
  struct shmbus__msg req;
  struct shmbus__msg reply;
  void *data = NULL;
  size_t len = 0;
  int rv;

  w->synced = false;
  w->retry_ns = shmbus__clock_mono_ns() + DISCOVER_RETRY_NS;
  if (!shmbus__handle_ok(bus->session.sock))
    return SHMBUS_EDISCONNECTED;
  shmbus__msg_init(&req, SHMBUS__MSG_WATCH, 0);
  req.watch_id = w->id;
  memcpy(req.pattern, w->pattern, sizeof(req.pattern));
  if ((rv = shmbus__session_request(&bus->session, &req, &reply)) < 0)
    return rv;
  shmbus__msg_close_fds(&reply);
  if (reply.type != SHMBUS__MSG_OK)
    return -EPROTO;
  /* Connected still (checked, so the snapshot never reconnects from here). */
  if (!shmbus__handle_ok(bus->session.sock))
    return SHMBUS_EDISCONNECTED;
  if ((rv = shmbus_bus_snapshot(bus, NULL, &data, &len)) < 0)
    return rv;
  rv = discover_apply(w, data, len);
  free(data);
  if (rv == 0)
    w->synced = true;
  return rv;
}

/* discover_sync, and when it fails, a retry from the loop if the watch
 * delivers there (nothing else would call the bus then). */
static int discover_sync_or_retry(shmbus_watch *w) {
  int rv = discover_sync(w);

  if (rv < 0)
    discover_kick(w);
  return rv;
}

void shmbus__discover_event(shmbus_bus *bus, struct shmbus__msg *ev) {
  shmbus_watch *w;
  struct discover_entry *e;
  bool up = ev->type == SHMBUS__MSG_TOPIC_UP;

  shmbus__msg_close_fds(ev);
  for (w = bus->watches; w != NULL && w->id != ev->watch_id; w = w->next)
    ;
  /* A watch closed meanwhile, or a daemon that reports what was not asked. */
  if (w == NULL || !shmbus__pattern_match(w->pattern, ev->topic))
    return;
  e = discover_find(w, ev->topic);
  if (e == NULL && up && (e = discover_add(w, ev->topic)) == NULL) {
    /* Out of memory: renew the watch later, which lists again. */
    w->synced = false;
    return;
  }
  if (e != NULL)
    discover_set(w, e, up);
}

void shmbus__discover_reconnected(shmbus_bus *bus) {
  shmbus_watch *w;

  for (w = bus->watches; w != NULL && shmbus__handle_ok(bus->session.sock); w = w->next)
    (void)discover_sync_or_retry(w);
}

void shmbus__discover_retry(shmbus_bus *bus) {
  shmbus_watch *w;
  uint64_t now;

  for (w = bus->watches; w != NULL && w->synced; w = w->next)
    ;
  if (w == NULL)
    return; /* the usual case: nothing to do, no clock read */
  now = shmbus__clock_mono_ns();
  for (w = bus->watches; w != NULL && shmbus__handle_ok(bus->session.sock); w = w->next)
    if (!w->synced && now >= w->retry_ns)
      (void)discover_sync_or_retry(w);
}

/* ---- the API -------------------------------------------------------------------- */

int shmbus_watch_open(shmbus_bus *bus, const char *pattern, shmbus_watch **out) {
  shmbus_watch *w;
  int rv;

  if (bus == NULL || out == NULL)
    return -EINVAL;
  if ((rv = shmbus__pattern_validate(pattern)) < 0)
    return rv;
  if (!shmbus__handle_ok(bus->session.sock) && (rv = shmbus_bus_process(bus)) < 0)
    return rv;
  if ((w = calloc(1, sizeof(*w))) == NULL)
    return -ENOMEM;
  w->nbuckets = 64;
  if ((w->buckets = calloc(w->nbuckets, sizeof(*w->buckets))) == NULL) {
    free(w);
    return -ENOMEM;
  }
  memcpy(w->pattern, pattern, strlen(pattern) + 1);
  w->bus = bus;
  if (++bus->next_watch_id == 0)
    bus->next_watch_id = 1;
  w->id = bus->next_watch_id;
  /* On the list before the request, so its events find it. */
  w->next = bus->watches;
  bus->watches = w;
  if ((rv = discover_sync(w)) < 0) {
    shmbus_watch_close(w);
    return rv;
  }
  *out = w;
  return 0;
}

int shmbus_watch_next(shmbus_watch *w, struct shmbus_topic_event *ev, int timeout_ms) {
  uint64_t deadline = 0;

  if (w == NULL || ev == NULL || timeout_ms < -1)
    return -EINVAL;
  if (w->loop != NULL)
    return SHMBUS_ESTATE;
  if (timeout_ms > 0)
    deadline = shmbus__clock_mono_ns() + (uint64_t)timeout_ms * 1000000u;
  for (;;) {
    shmbus_bus *bus = w->bus;
    uint64_t now;
    int wait_ms;
    int rv;

    if (discover_pop(w, ev))
      return 0;
    /* Also renews the watch if a reconnect could not (once a second). */
    (void)shmbus_bus_process(bus);
    if (discover_pop(w, ev))
      return 0;
    if (timeout_ms == 0)
      return -EAGAIN;
    now = shmbus__clock_mono_ns();
    if (timeout_ms > 0 && now >= deadline)
      return -ETIMEDOUT;
    wait_ms = timeout_ms < 0 ? -1 : (int)((deadline - now + 999999u) / 1000000u);
    if (shmbus__handle_ok(bus->session.sock) && w->synced) {
      if ((rv = shmbus__wait_readable(&bus->session.sock, 1, wait_ms)) < 0)
        return rv;
    } else {
      /* No socket to wait on: look again a little later. */
      shmbus__sleep_ms(wait_ms >= 0 && wait_ms < DISCOVER_RETRY_MS ? (unsigned)wait_ms
                                                                   : DISCOVER_RETRY_MS);
    }
  }
}

size_t shmbus_watch_count(const shmbus_watch *w) {
  return w != NULL ? w->npresent : 0;
}

const char *shmbus_watch_pattern(const shmbus_watch *w) {
  return w != NULL ? w->pattern : "";
}

/* ---- delivery from an event loop ------------------------------------------------ */

shmbus_bus *shmbus__discover_bus(const shmbus_watch *w) {
  return w->bus;
}

void shmbus__discover_turn(shmbus_watch *w) {
  struct shmbus_topic_event ev;
  unsigned n;

  if (!w->synced && shmbus__handle_ok(w->bus->session.sock) &&
      shmbus__clock_mono_ns() >= w->retry_ns)
    (void)discover_sync(w);
  for (n = 0; n < DISCOVER_UV_BATCH; n++) {
    bool gone = false;
    if (!discover_pop(w, &ev))
      break;
    w->gone = &gone;
    w->cb(w, &ev, w->arg);
    if (gone)
      return;
    w->gone = NULL;
  }
  /* More than a batch: the rest on the next iteration; or a renewal to
   * try again. */
  discover_kick(w);
}

/* Schedules a turn on the loop (at once) if the watch delivers there and
 * has something to deliver, or a renewal (in a second) if it needs one. */
static void discover_kick(shmbus_watch *w) {
  if (w->loop == NULL)
    return;
  if (w->qhead != NULL)
    w->loop->schedule(w, w->loop_state, 0);
  else if (!w->synced)
    w->loop->schedule(w, w->loop_state, DISCOVER_RETRY_NS / 1000000u);
}

int shmbus__discover_attach(shmbus_watch *w, const struct shmbus__watch_loop_ops *ops,
                            struct shmbus__uv_watch *state, shmbus_uv_watch_cb cb, void *arg) {
  if (w->loop != NULL)
    return SHMBUS_ESTATE;
  w->loop = ops;
  w->loop_state = state;
  w->cb = cb;
  w->arg = arg;
  discover_kick(w);
  return 0;
}

/* ---- closing ------------------------------------------------------------------------- */

void shmbus_watch_close(shmbus_watch *w) {
  shmbus_bus *bus;
  shmbus_watch **pp;
  size_t b;

  if (w == NULL)
    return;
  bus = w->bus;
  for (pp = &bus->watches; *pp != NULL; pp = &(*pp)->next)
    if (*pp == w) {
      *pp = w->next;
      break;
    }
  /* Tell the daemon without waiting: its `ok` arrives later and is
   * dropped like any reply nobody waits for. A failure here only means
   * the connection is gone, and the watch with it. */
  if (shmbus__handle_ok(bus->session.sock)) {
    struct shmbus__msg req;
    shmbus__msg_init(&req, SHMBUS__MSG_UNWATCH, bus->session.next_id++);
    if (bus->session.next_id == 0)
      bus->session.next_id = 1;
    req.watch_id = w->id;
    (void)shmbus__proto_send(bus->session.sock, &req);
  }
  if (w->gone != NULL)
    *w->gone = true;
  if (w->loop != NULL)
    w->loop->release(w, w->loop_state);
  for (b = 0; b < w->nbuckets; b++) {
    struct discover_entry *e = w->buckets[b];
    while (e != NULL) {
      struct discover_entry *next = e->hnext;
      free(e);
      e = next;
    }
  }
  free(w->buckets);
  free(w);
}

void shmbus__discover_close_all(shmbus_bus *bus) {
  while (bus->watches != NULL)
    shmbus_watch_close(bus->watches);
}
