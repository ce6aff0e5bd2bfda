/* bus: the public topic API (include/shmbus/bus.h) over the daemon
 * session (session.c), the regions (region.c) and the ring (ring.c).
 * See bus.h for what each object owns. */
#include "bus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/platform.h"
#include "shmbus/error.h"

#define BUS_BACKOFF_MIN_MS 10u
#define BUS_BACKOFF_MAX_MS 1000u

/* ---- events from the daemon ------------------------------------------- */


/* A publisher learns a subscriber's member file from its peer_join: map it
 * (read-only) if it is new, and rescan the reliable cursors. */
static void bus_learn_member(struct shmbus__handle *h, uint32_t g, shmbus__shm_handle fd) {
  uint32_t m = h->wake.per != 0 ? g / h->wake.per : SHMBUS__MAX_MEMBERS;

  if (h->role != SHMBUS__WIRE_PUB || m >= SHMBUS__MAX_MEMBERS ||
      h->region.ring.members[m].hdr != NULL)
    return;
  if (shmbus__region_map_member(&h->region, m, fd) == 0)
    shmbus__ring_pub_rescan(&((shmbus_pub *)h)->ring);
}

/* A publisher that knows no subscriber in member file m any more (not its
 * own) unmaps it: the daemon drops the file once that uid has no
 * participant, and may give its number to another uid's new file, which
 * then comes with the next peer_join. The table's tickets go with it. */
static void bus_forget_member(struct shmbus__handle *h, uint32_t g) {
  uint32_t m = h->wake.per != 0 ? g / h->wake.per : SHMBUS__MAX_MEMBERS;

  if (h->role != SHMBUS__WIRE_PUB || m >= SHMBUS__MAX_MEMBERS || m == h->member ||
      h->region.ring.members[m].hdr == NULL)
    return;
  if (!shmbus__notify_table_empty(&h->wake, m))
    return;
  shmbus__notify_table_free(&h->wake, m);
  if (shmbus__region_unmap_member(&h->region, m) == 0)
    shmbus__ring_pub_rescan(&((shmbus_pub *)h)->ring);
}

/* A reply that came after its request timed out: if it attached a record
 * for us, give it back (fire and forget; the `ok` is dropped too). */
static void bus_late_reply(shmbus_bus *bus, const struct shmbus__msg *ev) {
  struct shmbus__msg req;
  if (ev->type != SHMBUS__MSG_OPENED || !shmbus__handle_ok(bus->session.sock))
    return;
  shmbus__msg_init(&req, SHMBUS__MSG_CLOSE, bus->session.next_id++);
  if (bus->session.next_id == 0)
    bus->session.next_id = 1;
  req.topic_id = ev->topic_id;
  req.role = ev->role;
  req.index = ev->index;
  (void)shmbus__proto_send(bus->session.sock, &req);
}

static void bus_on_event(void *ctx, struct shmbus__msg *ev) {
  shmbus_bus *bus = ctx;
  struct shmbus__handle *h;

  if (ev->type != SHMBUS__MSG_PEER_JOIN && ev->type != SHMBUS__MSG_PEER_LEAVE) {
    bus_late_reply(bus, ev);
    shmbus__msg_close_fds(ev);
    return;
  }
  for (h = bus->handles; h != NULL; h = h->next) {
    if (h->topic_id != ev->topic_id || h->role == ev->role)
      continue;
    if (ev->type == SHMBUS__MSG_PEER_JOIN && ev->nfds >= 1) {
      shmbus__event_handle fd;
      if (ev->nfds == 2)
        bus_learn_member(h, ev->index, ev->fds[1]);
      if (shmbus__fd_dup(ev->fds[0], &fd) == 0)
        shmbus__notify_set(&h->wake, ev->index, fd);
      if (h->pending_peers > 0)
        h->pending_peers--;
    } else if (ev->type == SHMBUS__MSG_PEER_LEAVE) {
      shmbus__notify_set(&h->wake, ev->index, SHMBUS__OS_HANDLE_INVALID);
      bus_forget_member(h, ev->index);
    }
    /* The peer table changed: a wake-up that found no fd before may find
     * one now (sleeping subscribers and waiting publishers alike), and
     * nothing else would retry it (the lost wake-up of issue 11). */
    if (h->wake.pending || ev->type == SHMBUS__MSG_PEER_JOIN)
      shmbus__notify_wake(&h->wake, &h->region.ring);
  }
  shmbus__msg_close_fds(ev);
}

/* ---- connection and re-registration ------------------------------------ */


/* After `opened`, the daemon sends `peers` peer_join events at once: wait
 * for them, so that a publisher knows every subscriber before it returns. */
static int bus_await_peers(shmbus_bus *bus, struct shmbus__handle *h) {
  int rv;
  while (h->pending_peers > 0) {
    if ((rv = shmbus__session_wait_event(&bus->session, bus->session.timeout_ms)) < 0)
      return rv;
    if (rv == 0)
      return -ETIMEDOUT;
  }
  return 0;
}

static void bus_params_to_msg(const struct shmbus__params *p, struct shmbus__msg *m) {
  m->params = *p;
  m->has |= SHMBUS__HAS_PARAMS;
}

/* Checks an `opened` reply against what we asked and what we hold. */
static int bus_check_opened(const struct shmbus__msg *r, uint32_t role, uint32_t fds) {
  if (r->type != SHMBUS__MSG_OPENED || r->role != role || r->nfds != fds ||
      !(r->has & SHMBUS__HAS_PARAMS))
    return -EPROTO;
  return 0;
}

/* Re-registers one handle with a new daemon (docs/protocol.md, restart). */
static int bus_adopt(shmbus_bus *bus, struct shmbus__handle *h) {
  struct shmbus__msg req;
  struct shmbus__msg reply;
  int rv;

  shmbus__msg_init(&req, SHMBUS__MSG_ADOPT, 0);
  memcpy(req.topic, h->topic, sizeof(req.topic));
  req.role = h->role;
  req.index = h->index;
  bus_params_to_msg(&h->params, &req);
  req.fds[0] = h->data_fd;
  req.fds[1] = h->ctrl_fd;
  req.fds[2] = h->event_fd;
  req.nfds = 3;
  if ((rv = shmbus__session_request(&bus->session, &req, &reply)) < 0)
    return rv;
  rv = bus_check_opened(&reply, h->role, 2);
  shmbus__msg_close_fds(&reply); /* we keep using our own mappings and fds */
  if (rv < 0)
    return rv;
  /* Peer fds we know stay valid (the peers' eventfds did not change);
   * the new daemon's peer_join events replace or add to them. */
  h->topic_id = reply.topic_id;
  h->pending_peers = reply.peers;
  return bus_await_peers(bus, h);
}

/* Wake-ups that could not be delivered while peers were unknown were put
 * back; deliver them now that peers are known again. */
static void bus_redeliver(struct shmbus__handle *h) {
  if (h->role == SHMBUS__WIRE_PUB)
    shmbus__pub_wake_sleepers((shmbus_pub *)h);
  else
    shmbus__sub_wake_publishers((shmbus_sub *)h);
}

static int bus_reopen(shmbus_bus *bus, struct shmbus__handle *h);

/* True while a loan or an in-place read points into the handle's mapping. */
static bool bus_busy(const struct shmbus__handle *h) {
  if (h->role == SHMBUS__WIRE_PUB)
    return ((const shmbus_pub *)h)->ring.loaned;
  return ((const shmbus_sub *)h)->ring.viewing;
}

static int bus_reconnect(shmbus_bus *bus) {
  struct shmbus__handle *h;
  int rv;

  if ((rv = shmbus__session_connect(&bus->session)) < 0)
    return rv;
  for (h = bus->handles; h != NULL; h = h->next) {
    rv = bus_adopt(bus, h);
    if (rv == 0 || !shmbus__handle_ok(bus->session.sock) || rv == -ETIMEDOUT) {
      if (rv < 0)
        goto fail;
      continue;
    }
    /* The daemon answered but cannot adopt this record (it re-created
     * the topic, or never knew it): open the topic afresh, now or, if
     * that fails too or the handle is busy, later. One such handle never
     * costs the others their adopted records. */
    if (bus_busy(h) || bus_reopen(bus, h) < 0) {
      if (!shmbus__handle_ok(bus->session.sock))
        goto fail;
      if (!h->orphan) {
        h->orphan = true;
        bus->orphans++;
      }
    }
  }
  for (h = bus->handles; h != NULL; h = h->next)
    bus_redeliver(h);
  return 0;

fail:
  shmbus__session_close(&bus->session);
  return rv;
}

/* Re-opens the handles a new daemon could not take back, when it is time.
 * A handle in the middle of a loan or an in-place read waits: its old
 * mapping is still in use. */
static void bus_retry_orphans(shmbus_bus *bus) {
  struct shmbus__handle *h;
  bool left = false;

  if (bus->orphans == 0 || shmbus__clock_mono_ns() < bus->orphan_retry_ns)
    return;
  for (h = bus->handles; h != NULL && shmbus__handle_ok(bus->session.sock); h = h->next) {
    if (!h->orphan)
      continue;
    if (!bus_busy(h) && bus_reopen(bus, h) == 0) {
      h->orphan = false;
      bus->orphans--;
    } else {
      left = true;
    }
  }
  if (left)
    bus->orphan_retry_ns = shmbus__clock_mono_ns() + (uint64_t)BUS_BACKOFF_MAX_MS * 1000000u;
}

int shmbus_bus_process(shmbus_bus *bus) {
  uint64_t gen;
  int rv;

  if (bus == NULL)
    return -EINVAL;
  gen = bus->session.gen;
  if (shmbus__handle_ok(bus->session.sock)) {
    rv = shmbus__session_drain(&bus->session);
    if (rv == 0) {
      bus_retry_orphans(bus);
      goto out;
    }
    /* The daemon went away: retry at once, then back off. */
    bus->retry_at_ns = 0;
    bus->backoff_ms = BUS_BACKOFF_MIN_MS;
  }
  if (shmbus__clock_mono_ns() < bus->retry_at_ns) {
    rv = SHMBUS_EDISCONNECTED;
    goto out;
  }
  rv = bus_reconnect(bus);
  if (rv == 0) {
    bus->backoff_ms = BUS_BACKOFF_MIN_MS;
  } else {
    bus->retry_at_ns = shmbus__clock_mono_ns() + (uint64_t)bus->backoff_ms * 1000000u;
    bus->backoff_ms = bus->backoff_ms * 2 > BUS_BACKOFF_MAX_MS ? BUS_BACKOFF_MAX_MS
                                                               : bus->backoff_ms * 2;
    rv = SHMBUS_EDISCONNECTED;
  }
out:
  /* A new connection needs a new watch, a lost one a timer (uv.c). */
  if (bus->session.gen != gen || !shmbus__handle_ok(bus->session.sock))
    shmbus__uv_bus_changed(bus);
  return rv;
}

static void bus_on_closing(void *ctx) {
  shmbus__uv_bus_closing(ctx);
}

void shmbus_bus_opts_init(struct shmbus_bus_opts *o) {
  memset(o, 0, sizeof(*o));
  o->autostart = SHMBUS_AUTOSTART_DEFAULT;
}

int shmbus_bus_open(shmbus_bus **out, const struct shmbus_bus_opts *opts) {
  struct shmbus_bus_opts defaults;
  shmbus_bus *bus;
  int rv;

  if (out == NULL)
    return -EINVAL;
  if (opts == NULL) {
    shmbus_bus_opts_init(&defaults);
    opts = &defaults;
  }
  bus = calloc(1, sizeof(*bus));
  if (bus == NULL)
    return -ENOMEM;
  bus->backoff_ms = BUS_BACKOFF_MIN_MS;
  if ((rv = shmbus__session_init(&bus->session, opts->dir, opts->name, opts->autostart,
                              opts->daemon_path, opts->timeout_ms, bus_on_event, bus)) < 0)
    goto fail;
  bus->session.on_closing = bus_on_closing;
  if ((rv = shmbus__session_connect(&bus->session)) < 0)
    goto fail;
  *out = bus;
  return 0;

fail:
  shmbus__session_close(&bus->session);
  free(bus);
  return rv;
}

int shmbus_bus_fd(const shmbus_bus *bus) {
  return bus != NULL ? bus->session.sock : -1;
}

bool shmbus_bus_connected(const shmbus_bus *bus) {
  return bus != NULL && shmbus__handle_ok(bus->session.sock);
}

const char *shmbus_bus_last_error(const shmbus_bus *bus) {
  return bus != NULL ? bus->session.last_error : shmbus__session_open_error();
}

static void bus_handle_close(struct shmbus__handle *h);

void shmbus_bus_close(shmbus_bus *bus) {
  if (bus == NULL)
    return;
  while (bus->handles != NULL)
    bus_handle_close(bus->handles);
  shmbus__uv_bus_release(bus);
  shmbus__session_close(&bus->session);
  free(bus);
}

/* ---- handles ------------------------------------------------------------ */

static void bus_unmap(struct shmbus__handle *h);

static void bus_handle_free(struct shmbus__handle *h) {
  bus_unmap(h);
  shmbus__fd_close(h->event_fd);
  free(h);
}

static void bus_unlink(struct shmbus__handle *h) {
  struct shmbus__handle **pp;
  for (pp = &h->bus->handles; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == h) {
      *pp = h->next;
      return;
    }
  }
}

static void bus_handle_close(struct shmbus__handle *h) {
  shmbus_bus *bus = h->bus;
  struct shmbus__msg req;
  struct shmbus__msg reply;
  bool daemon_did = false;

  if (h->role == SHMBUS__WIRE_PUB && ((shmbus_pub *)h)->ring.loaned)
    (void)shmbus__ring_cancel(&((shmbus_pub *)h)->ring);
  shmbus__uv_handle_release(h);
  bus_unlink(h);
  if (h->orphan)
    bus->orphans--;
  if (shmbus__handle_ok(bus->session.sock)) {
    shmbus__msg_init(&req, SHMBUS__MSG_CLOSE, 0);
    req.topic_id = h->topic_id;
    req.role = h->role;
    req.index = h->index;
    int rv = shmbus__session_request(&bus->session, &req, &reply);
    if (rv == 0)
      shmbus__msg_close_fds(&reply);
    /* Once the daemon has the request (even if its answer is late) it
     * releases the record itself. */
    daemon_did = rv == 0 || rv == -ETIMEDOUT || rv == SHMBUS_ESTATE;
  }
  /* Without a daemon, release the record ourselves. Never both: the
   * daemon may hand a freed record to someone else at once. */
  if (!daemon_did) {
    if (h->role == SHMBUS__WIRE_PUB)
      shmbus__ring_pub_detach(&((shmbus_pub *)h)->ring);
    else
      shmbus__ring_sub_detach(&((shmbus_sub *)h)->ring);
  }
  bus_handle_free(h);
}

/* Copies topic options into h->want: all four parameters or none. */
static int bus_want_params(const struct shmbus_topic_opts *o, struct shmbus__handle *h) {
  uint32_t set;
  if (o == NULL)
    return 0;
  set = (o->slots != 0) + (o->slot_size != 0) + (o->max_subs != 0) + (o->max_pubs != 0);
  h->want.retain = o->retain;
  if (set == 0)
    return 0;
  if (set != 4)
    return SHMBUS_EPARAM; /* all four or none, as documented */
  h->want.params.slot_count = o->slots;
  h->want.params.slot_capacity = o->slot_size;
  h->want.params.max_subs = o->max_subs;
  h->want.params.max_pubs = o->max_pubs;
  h->want.has_params = true;
  return 0;
}

/* Releases what an attach gave a handle: peers, mappings, the topic fds. */
static void bus_unmap(struct shmbus__handle *h) {
  shmbus__notify_free(&h->wake);
  shmbus__region_close(&h->region);
  shmbus__fd_close(h->data_fd);
  shmbus__fd_close(h->ctrl_fd);
  h->data_fd = h->ctrl_fd = SHMBUS__OS_HANDLE_INVALID;
}

/* Gives a record the daemon attached for us back to it. */
static void bus_release_record(shmbus_bus *bus, const struct shmbus__handle *h) {
  struct shmbus__msg req;
  struct shmbus__msg reply;
  if (!shmbus__handle_ok(bus->session.sock))
    return;
  shmbus__msg_init(&req, SHMBUS__MSG_CLOSE, 0);
  req.topic_id = h->topic_id;
  req.role = h->role;
  req.index = h->index;
  if (shmbus__session_request(&bus->session, &req, &reply) == 0)
    shmbus__msg_close_fds(&reply);
}

/* Adopts ring record h->index into `pub` or `sub` (by role). */
static int bus_adopt_record(struct shmbus__handle *h, struct shmbus__ring *ring,
                            struct shmbus__ring_pub *pub, struct shmbus__ring_sub *sub) {
  if (h->role == SHMBUS__WIRE_PUB)
    return shmbus__ring_pub_adopt(ring, pub, h->index);
  return shmbus__ring_sub_adopt(ring, sub, h->index);
}

/* Sends `open` for h (topic, role, want and event_fd set) and maps what
 * the daemon hands back: fds, region, peer table, record index. On
 * failure h holds no mapping and the daemon no record. */
static int bus_attach(shmbus_bus *bus, struct shmbus__handle *h) {
  struct shmbus__msg req;
  struct shmbus__msg reply;
  int rv;

  shmbus__msg_init(&req, SHMBUS__MSG_OPEN, 0);
  memcpy(req.topic, h->topic, sizeof(req.topic));
  req.role = h->role;
  req.reliable = h->want.reliable;
  req.history = h->want.history;
  req.retain = h->want.retain;
  req.deadline_ms = h->want.deadline_ms;
  if (h->want.has_params)
    bus_params_to_msg(&h->want.params, &req);
  req.fds[0] = h->event_fd;
  req.nfds = 1;
  if ((rv = shmbus__session_request(&bus->session, &req, &reply)) < 0)
    return rv;
  if ((rv = bus_check_opened(&reply, h->role, 2)) < 0) {
    shmbus__msg_close_fds(&reply);
    return rv;
  }
  h->data_fd = reply.fds[0];
  h->ctrl_fd = reply.fds[1];
  h->topic_id = reply.topic_id;
  h->index = reply.index;
  h->params = reply.params;
  h->pending_peers = reply.peers;
  h->member = reply.member;
  h->deadline_cap = reply.deadline_ms;
  /* The daemon's reply is the only source of the topic's parameters: the
   * region is checked against them (sizes, seals), never its headers. */
  if (h->role == SHMBUS__WIRE_SUB &&
      (reply.params.max_subs == 0 || reply.index / reply.params.max_subs != reply.member)) {
    rv = -EPROTO;
    goto fail;
  }
  if ((rv = shmbus__region_attach(&h->region, &h->params, h->data_fd, h->ctrl_fd, h->member,
                                  h->role == SHMBUS__WIRE_PUB ? SHMBUS__ROLE_PUBLISHER
                                                              : SHMBUS__ROLE_SUBSCRIBER)) < 0)
    goto fail;
  if (h->role == SHMBUS__WIRE_PUB)
    shmbus__notify_init(&h->wake, SHMBUS__NOTIFY_SLEEPERS, h->params.max_subs);
  else
    shmbus__notify_init(&h->wake, SHMBUS__NOTIFY_PUB_WAITERS, h->params.max_pubs);
  /* Events sent before this epoch are read by the awaiting of peers that
   * follows (the accessor's acquire pairs with the daemon's increment). */
  h->epoch_seen = shmbus__ring_peer_epoch(&h->region.ring);
  return 0;

fail:
  bus_release_record(bus, h);
  bus_unmap(h);
  return rv;
}

/* A new daemon could not adopt h's record (it knows the topic under
 * another region, or not at all): open the topic afresh and move h onto
 * it. The old mapping stays in use until the new one is ready. */
static int bus_reopen(shmbus_bus *bus, struct shmbus__handle *h) {
  struct shmbus__handle fresh;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;
  int rv;

  memset(&fresh, 0, sizeof(fresh));
  fresh.bus = bus;
  fresh.role = h->role;
  fresh.data_fd = fresh.ctrl_fd = SHMBUS__OS_HANDLE_INVALID;
  fresh.event_fd = h->event_fd;
  fresh.want = h->want;
  memcpy(fresh.topic, h->topic, sizeof(fresh.topic));
  if ((rv = bus_attach(bus, &fresh)) < 0)
    return rv;
  if ((rv = bus_adopt_record(&fresh, &fresh.region.ring, &pub, &sub)) < 0) {
    bus_release_record(bus, &fresh);
    bus_unmap(&fresh);
    return rv;
  }
  /* Leave the old region cleanly: a reliable record left there would hold
   * back publishers that have not moved yet. */
  if (h->role == SHMBUS__WIRE_PUB)
    shmbus__ring_pub_detach(&((shmbus_pub *)h)->ring);
  else
    shmbus__ring_sub_detach(&((shmbus_sub *)h)->ring);
  bus_unmap(h);
  h->region = fresh.region;
  h->data_fd = fresh.data_fd;
  h->ctrl_fd = fresh.ctrl_fd;
  h->wake = fresh.wake;
  h->member = fresh.member;
  h->deadline_cap = fresh.deadline_cap;
  h->topic_id = fresh.topic_id;
  h->index = fresh.index;
  h->params = fresh.params;
  h->pending_peers = fresh.pending_peers;
  h->epoch_seen = fresh.epoch_seen;
  /* The ring handles point at the view they were made with: re-point. */
  if (h->role == SHMBUS__WIRE_PUB) {
    pub.ring = &h->region.ring;
    ((shmbus_pub *)h)->ring = pub;
  } else {
    sub.ring = &h->region.ring;
    ((shmbus_sub *)h)->ring = sub;
  }
  return bus_await_peers(bus, h);
}

/* Opens a handle of `size` bytes (a shmbus_pub or shmbus_sub) on `topic`
 * for `role`, with h->want taken from `want`. */
static int bus_handle_open(shmbus_bus *bus, const char *topic, uint32_t role,
                           const struct shmbus__handle *want, size_t size,
                           struct shmbus__handle **out) {
  struct shmbus__handle *h;
  int rv;

  if (strlen(topic) > SHMBUS__TOPIC_MAX)
    return SHMBUS_EBADNAME;
  if ((rv = shmbus__topic_validate(topic, role == SHMBUS__WIRE_SUB)) < 0)
    return rv;
  if (!shmbus__handle_ok(bus->session.sock) && (rv = shmbus_bus_process(bus)) < 0)
    return rv;
  h = calloc(1, size);
  if (h == NULL)
    return -ENOMEM;
  h->bus = bus;
  h->role = role;
  h->data_fd = h->ctrl_fd = SHMBUS__OS_HANDLE_INVALID;
  h->want = want->want;
  memcpy(h->topic, topic, strlen(topic) + 1);
  if ((rv = shmbus__event_open(&h->event_fd)) < 0)
    goto fail;
  if ((rv = bus_attach(bus, h)) < 0)
    goto fail;
  if ((rv = bus_adopt_record(h, &h->region.ring, &((shmbus_pub *)h)->ring,
                             &((shmbus_sub *)h)->ring)) < 0) {
    bus_release_record(bus, h);
    goto fail;
  }
  h->next = bus->handles;
  bus->handles = h;
  if ((rv = bus_await_peers(bus, h)) < 0) {
    bus_handle_close(h);
    return rv;
  }
  *out = h;
  return 0;

fail:
  bus_handle_free(h);
  return rv;
}

/* ---- publishers --------------------------------------------------------- */

int shmbus_pub_open(shmbus_bus *bus, const char *topic, const struct shmbus_topic_opts *opts,
                    shmbus_pub **out) {
  struct shmbus__handle want;
  struct shmbus__handle *h;
  int rv;

  if (bus == NULL || topic == NULL || out == NULL)
    return -EINVAL;
  memset(&want, 0, sizeof(want));
  if ((rv = bus_want_params(opts, &want)) < 0)
    return rv;
  if ((rv = bus_handle_open(bus, topic, SHMBUS__WIRE_PUB, &want, sizeof(shmbus_pub), &h)) < 0)
    return rv;
  *out = (shmbus_pub *)h;
  return 0;
}

void shmbus__pub_wake_sleepers(shmbus_pub *pub) {
  shmbus__notify_wake(&pub->h.wake, &pub->h.region.ring);
}

void shmbus__sub_wake_publishers(shmbus_sub *sub) {
  sub->ring.pubs_waiting = false;
  shmbus__notify_wake(&sub->h.wake, &sub->h.region.ring);
}

/* Reads the daemon's socket when the topic's peer epoch moved (a peer
 * joined or left): the only syscall a publish may need besides wake-ups. */
static void bus_check_peers(struct shmbus__handle *h) {
  if (shmbus__ring_peers_changed(&h->region.ring, &h->epoch_seen))
    (void)shmbus_bus_process(h->bus);
}

static int bus_after_commit(shmbus_pub *pub, int rv) {
  if (rv == 1)
    shmbus__pub_wake_sleepers(pub);
  return rv < 0 ? rv : 0;
}

/* The smallest non-zero of three bounds, 0 when all are 0. */
static uint32_t bus_min_deadline(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t v = 0;
  if (a != 0)
    v = a;
  if (b != 0 && (v == 0 || b < v))
    v = b;
  if (c != 0 && (v == 0 || c < v))
    v = c;
  return v;
}

/* The EFULL path (only there is the clock read): tracks how long the record
 * that holds us back has done so without reading. Returns 1 when its
 * deadline ran out and it was demoted (publish again: there is room), 0
 * otherwise; *until_ns (may be NULL) receives when the deadline ends (0:
 * none). */
static int bus_on_full(shmbus_pub *pub, uint64_t *until_ns) {
  uint32_t g;
  uint32_t rec_ms;
  uint32_t ms;
  uint64_t cursor;
  uint64_t now;

  if (until_ns != NULL)
    *until_ns = 0;
  if (!shmbus__ring_pub_blocker(&pub->ring, &g, &cursor, &rec_ms))
    return 0;
  ms = bus_min_deadline(rec_ms, pub->deadline_ms, pub->h.deadline_cap);
  if (ms == 0)
    return 0;
  now = shmbus__clock_mono_ns();
  if (!pub->full_armed || pub->full_g != g || pub->full_cursor != cursor) {
    pub->full_armed = true;
    pub->full_g = g;
    pub->full_cursor = cursor;
    pub->full_since_ns = now;
  }
  if (now - pub->full_since_ns < (uint64_t)ms * 1000000u) {
    if (until_ns != NULL)
      *until_ns = pub->full_since_ns + (uint64_t)ms * 1000000u;
    return 0;
  }
  pub->full_armed = false;
  return shmbus__ring_pub_demote(&pub->ring, g) == 0 ? 1 : 0;
}

int shmbus_pub_publish(shmbus_pub *pub, const void *data, size_t len) {
  int rv;

  if (pub == NULL || (data == NULL && len > 0))
    return -EINVAL;
  bus_check_peers(&pub->h);
  rv = shmbus__ring_publish(&pub->ring, data, len, shmbus__clock_mono_ns());
  if (rv == SHMBUS_EFULL && bus_on_full(pub, NULL) == 1)
    rv = shmbus__ring_publish(&pub->ring, data, len, shmbus__clock_mono_ns());
  return bus_after_commit(pub, rv);
}

int shmbus_pub_loan(shmbus_pub *pub, size_t len, void **buf) {
  int rv;

  if (pub == NULL || buf == NULL)
    return -EINVAL;
  bus_check_peers(&pub->h);
  rv = shmbus__ring_loan(&pub->ring, len, buf);
  if (rv == SHMBUS_EFULL && bus_on_full(pub, NULL) == 1)
    rv = shmbus__ring_loan(&pub->ring, len, buf);
  return rv;
}

int shmbus_pub_set_deadline(shmbus_pub *pub, uint32_t ms) {
  if (pub == NULL)
    return -EINVAL;
  pub->deadline_ms = ms;
  return 0;
}

uint64_t shmbus_pub_deadline_overwrites(const shmbus_pub *pub) {
  return pub != NULL ? pub->ring.deadline_overwrites : 0;
}

int shmbus_pub_commit(shmbus_pub *pub, size_t len) {
  if (pub == NULL)
    return -EINVAL;
  return bus_after_commit(pub, shmbus__ring_commit(&pub->ring, len, shmbus__clock_mono_ns()));
}

int shmbus_pub_cancel(shmbus_pub *pub) {
  if (pub == NULL)
    return -EINVAL;
  return bus_after_commit(pub, shmbus__ring_cancel(&pub->ring));
}

/* Waits for `fd` or the daemon's socket until `deadline_ns` (0: forever).
 * Returns 1 when fd fired, 0 for anything else, -ETIMEDOUT at the end. */
static int bus_wait(shmbus_bus *bus, shmbus__event_handle fd, uint64_t deadline_ns) {
  shmbus__os_handle fds[2] = {fd, bus->session.sock};
  int timeout = -1;
  int rv;

  if (deadline_ns != 0) {
    uint64_t now = shmbus__clock_mono_ns();
    if (now >= deadline_ns)
      return -ETIMEDOUT;
    timeout = (int)((deadline_ns - now + 999999u) / 1000000u);
  }
  /* While disconnected, wake up now and then to try to reconnect. */
  if (!shmbus__handle_ok(bus->session.sock) && (timeout < 0 || timeout > (int)bus->backoff_ms))
    timeout = (int)bus->backoff_ms;
  if ((rv = shmbus__wait_readable(fds, shmbus__handle_ok(bus->session.sock) ? 2 : 1, timeout)) < 0)
    return rv;
  if (rv & 2 || !shmbus__handle_ok(bus->session.sock))
    (void)shmbus_bus_process(bus);
  if (rv & 1) {
    shmbus__event_drain(fd);
    return 1;
  }
  return 0;
}

static uint64_t bus_deadline(int timeout_ms) {
  return timeout_ms < 0 ? 0 : shmbus__clock_mono_ns() + (uint64_t)timeout_ms * 1000000u + 1;
}

int shmbus_pub_wait(shmbus_pub *pub, int timeout_ms) {
  uint64_t deadline = bus_deadline(timeout_ms);
  int rv;

  if (pub == NULL)
    return -EINVAL;
  for (;;) {
    uint64_t until;
    uint64_t wake;
    if (!shmbus__ring_pub_wait_prepare(&pub->ring))
      return 0;
    /* A reliable subscriber's deadline may end before ours. */
    if (bus_on_full(pub, &until) == 1)
      return 0;
    wake = until != 0 && (deadline == 0 || until < deadline) ? until : deadline;
    rv = bus_wait(pub->h.bus, pub->h.event_fd, wake);
    if (rv == -ETIMEDOUT && wake != deadline)
      continue; /* the subscriber's deadline, not ours: demote it above */
    if (rv < 0)
      return rv;
  }
}

size_t shmbus_pub_max_size(const shmbus_pub *pub) {
  return pub != NULL ? pub->h.region.ring.slot_capacity : 0;
}


int shmbus_pub_subscribers(shmbus_pub *pub) {
  if (pub == NULL)
    return -EINVAL;
  (void)shmbus_bus_process(pub->h.bus);
  return shmbus__notify_count(&pub->h.wake);
}

int shmbus_pub_wait_subs(shmbus_pub *pub, uint32_t n, int timeout_ms) {
  uint64_t deadline = bus_deadline(timeout_ms);
  int rv;

  if (pub == NULL)
    return -EINVAL;
  for (;;) {
    (void)shmbus_bus_process(pub->h.bus);
    if ((rv = shmbus__notify_count(&pub->h.wake)) >= 0 && (uint32_t)rv >= n)
      return rv;
    /* peer_join events arrive on the daemon's socket, which bus_wait
     * watches (and reads); the publisher's own eventfd only adds an early
     * turn of the loop. */
    if ((rv = bus_wait(pub->h.bus, pub->h.event_fd, deadline)) < 0)
      return rv;
  }
}

uint64_t shmbus_pub_published(const shmbus_pub *pub) {
  return pub != NULL ? pub->ring.published : 0;
}

void shmbus_pub_close(shmbus_pub *pub) {
  if (pub != NULL)
    bus_handle_close(&pub->h);
}

/* ---- subscribers ------------------------------------------------------- */

int shmbus_sub_open(shmbus_bus *bus, const char *topic, const struct shmbus_sub_opts *opts,
                    shmbus_sub **out) {
  struct shmbus__handle want;
  struct shmbus__handle *h;
  int rv;

  if (bus == NULL || topic == NULL || out == NULL)
    return -EINVAL;
  memset(&want, 0, sizeof(want));
  if (opts != NULL) {
    want.want.reliable = opts->reliable;
    want.want.history = opts->history;
    want.want.deadline_ms = opts->deadline_ms;
    if ((rv = bus_want_params(&opts->topic, &want)) < 0)
      return rv;
  }
  if ((rv = bus_handle_open(bus, topic, SHMBUS__WIRE_SUB, &want, sizeof(shmbus_sub), &h)) < 0)
    return rv;
  *out = (shmbus_sub *)h;
  return 0;
}


int shmbus_sub_try_recv(shmbus_sub *sub, void *buf, size_t cap, struct shmbus_msg_info *info) {
  struct shmbus_msg_info ri;
  int rv;

  if (sub == NULL || (buf == NULL && cap > 0))
    return -EINVAL;
  /* Subscribers read their socket too when peers came or went, so events
   * never pile up there while they only poll. */
  bus_check_peers(&sub->h);
  rv = shmbus__ring_recv(&sub->ring, buf, cap, &ri);
  if (sub->ring.pubs_waiting)
    shmbus__sub_wake_publishers(sub);
  if ((rv >= 0 || rv == -EMSGSIZE) && info != NULL)
    *info = ri;
  return rv;
}

int shmbus_sub_arm(shmbus_sub *sub) {
  if (sub == NULL)
    return -EINVAL;
  return shmbus__ring_sleep_prepare(&sub->ring) ? 1 : 0;
}

int shmbus_sub_recv(shmbus_sub *sub, void *buf, size_t cap, struct shmbus_msg_info *info,
                    int timeout_ms) {
  uint64_t deadline = bus_deadline(timeout_ms);
  int rv;

  for (;;) {
    rv = shmbus_sub_try_recv(sub, buf, cap, info);
    if (rv != -EAGAIN)
      return rv;
    if (!shmbus__ring_sleep_prepare(&sub->ring))
      continue;
    if ((rv = bus_wait(sub->h.bus, sub->h.event_fd, deadline)) < 0)
      return rv;
  }
}

int shmbus_sub_view(shmbus_sub *sub, struct shmbus_view *view) {
  struct shmbus__ring_view rv_;
  int rv;

  if (sub == NULL || view == NULL)
    return -EINVAL;
  bus_check_peers(&sub->h);
  if ((rv = shmbus__ring_view_begin(&sub->ring, &rv_)) < 0)
    return rv;
  view->data = rv_.data;
  view->info = rv_.info;
  return 0;
}

int shmbus_sub_view_end(shmbus_sub *sub, const struct shmbus_view *view) {
  struct shmbus__ring_view rv_;
  int rv;

  if (sub == NULL || view == NULL)
    return -EINVAL;
  rv_.data = view->data;
  rv_.info.seq = view->info.seq;
  rv_.info.ts_ns = view->info.ts_ns;
  rv_.info.pub_id = view->info.pub_id;
  rv_.info.len = view->info.len;
  rv = shmbus__ring_view_end(&sub->ring, &rv_);
  if (sub->ring.pubs_waiting)
    shmbus__sub_wake_publishers(sub);
  return rv;
}

void shmbus_sub_stats(const shmbus_sub *sub, struct shmbus_sub_stats *stats) {
  if (stats == NULL)
    return;
  stats->received = sub != NULL ? sub->ring.received : 0;
  stats->lost = sub != NULL ? sub->ring.lost : 0;
  stats->demoted = sub != NULL ? sub->ring.demoted : 0;
}

int shmbus_sub_fd(const shmbus_sub *sub) {
  return sub != NULL ? sub->h.event_fd : -1;
}

size_t shmbus_sub_max_size(const shmbus_sub *sub) {
  return sub != NULL ? sub->h.region.ring.slot_capacity : 0;
}

void shmbus_sub_close(shmbus_sub *sub) {
  if (sub != NULL)
    bus_handle_close(&sub->h);
}
