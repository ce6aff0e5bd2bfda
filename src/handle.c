/* handle: a publisher's or subscriber's lifecycle on a bus: opening a
 * topic (the daemon's `open`, mapping the region, taking the record),
 * re-opening it on a new daemon's region, and closing. See handle.h. */
#include "handle.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/platform.h"
#include "pub.h"
#include "shmbus/error.h"
#include "sub.h"

static void handle_unmap(struct shmbus__handle *h);

static void handle_free(struct shmbus__handle *h) {
  handle_unmap(h);
  shmbus__fd_close(h->event_fd);
  free(h);
}

static void handle_unlink(struct shmbus__handle *h) {
  struct shmbus__handle **pp;
  for (pp = &h->bus->handles; *pp != NULL; pp = &(*pp)->next) {
    if (*pp == h) {
      *pp = h->next;
      return;
    }
  }
}

/* After `opened`, the daemon sends `peers` peer_join events at once: wait
 * for them, so that a publisher knows every subscriber before it returns. */
int shmbus__handle_await_peers(shmbus_bus *bus, struct shmbus__handle *h) {
  int rv;
  while (h->pending_peers > 0) {
    if ((rv = shmbus__session_wait_event(&bus->session, bus->session.timeout_ms)) < 0)
      return rv;
    if (rv == 0)
      return -ETIMEDOUT;
  }
  return 0;
}

/* After the awaiting of peers that follows an attach: reads every event
 * already queued on the socket. The attach loaded h->epoch_seen after the
 * `opened` reply, so it may count the increment of a peer that joined (or
 * left) since: its peer_join was sent before that increment, after the
 * reply, and the reply's peer count did not include it. Left unread, it
 * would wait for the next increment, which may never come: a publisher
 * that then finds the newcomer's sleeper bit has no eventfd to signal
 * (the exporting bridge of the bridge benchmark, which subscribes as soon
 * as the publisher creates the topic, slept until the publisher left).
 * Every event whose increment that load saw is in the socket by now. */
static int handle_read_queued(shmbus_bus *bus) {
  return shmbus__session_drain(&bus->session);
}

void shmbus__handle_params_to_msg(const struct shmbus__params *p, struct shmbus__msg *m) {
  m->params = *p;
  m->has |= SHMBUS__HAS_PARAMS;
}

/* Checks an `opened` reply against what we asked and what we hold. */
int shmbus__handle_check_opened(const struct shmbus__msg *r, uint32_t role, uint32_t fds) {
  if (r->type != SHMBUS__MSG_OPENED || r->role != role || r->nfds != fds ||
      !(r->has & SHMBUS__HAS_PARAMS))
    return -EPROTO;
  return 0;
}

/* Wake-ups that could not be delivered while peers were unknown were put
 * back; deliver them now that peers are known again. */
void shmbus__handle_redeliver(struct shmbus__handle *h) {
  if (h->role == SHMBUS__ROLE_PUB)
    shmbus__pub_wake_sleepers((shmbus_pub *)h);
  else
    shmbus__sub_wake_publishers((shmbus_sub *)h);
}

/* True while a loan or an in-place read points into the handle's mapping. */
bool shmbus__handle_busy(const struct shmbus__handle *h) {
  if (h->role == SHMBUS__ROLE_PUB)
    return ((const shmbus_pub *)h)->ring.loaned;
  return ((const shmbus_sub *)h)->ring.viewing;
}

void shmbus__handle_close(struct shmbus__handle *h) {
  shmbus_bus *bus = h->bus;
  struct shmbus__msg req;
  struct shmbus__msg reply;
  bool daemon_did = false;

  if (h->role == SHMBUS__ROLE_PUB && ((shmbus_pub *)h)->ring.loaned)
    (void)shmbus__ring_cancel(&((shmbus_pub *)h)->ring);
  if (h->bus->loop != NULL)
    h->bus->loop->handle_release(h);
  handle_unlink(h);
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
    if (h->role == SHMBUS__ROLE_PUB)
      shmbus__ring_pub_detach(&((shmbus_pub *)h)->ring);
    else
      shmbus__ring_sub_detach(&((shmbus_sub *)h)->ring);
  }
  handle_free(h);
}

/* Copies topic options into h->want: all four parameters or none. */
int shmbus__handle_want_params(const struct shmbus_topic_opts *o, struct shmbus__handle *h) {
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
static void handle_unmap(struct shmbus__handle *h) {
  shmbus__notify_free(&h->wake);
  shmbus__region_close(&h->region);
  shmbus__fd_close(h->data_fd);
  shmbus__fd_close(h->ctrl_fd);
  h->data_fd = h->ctrl_fd = SHMBUS__OS_HANDLE_INVALID;
}

/* Gives a record the daemon attached for us back to it. */
static void handle_release_record(shmbus_bus *bus, const struct shmbus__handle *h) {
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
static int handle_adopt_record(struct shmbus__handle *h, struct shmbus__ring *ring,
                               struct shmbus__ring_pub *pub, struct shmbus__ring_sub *sub) {
  if (h->role == SHMBUS__ROLE_PUB)
    return shmbus__ring_pub_adopt(ring, pub, h->index);
  return shmbus__ring_sub_adopt(ring, sub, h->index);
}

/* Sends `open` for h (topic, role, want and event_fd set) and maps what
 * the daemon hands back: fds, region, peer table, record index. On
 * failure h holds no mapping and the daemon no record. */
static int handle_attach(shmbus_bus *bus, struct shmbus__handle *h) {
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
    shmbus__handle_params_to_msg(&h->want.params, &req);
  req.fds[0] = h->event_fd;
  req.nfds = 1;
  if ((rv = shmbus__session_request(&bus->session, &req, &reply)) < 0)
    return rv;
  if ((rv = shmbus__handle_check_opened(&reply, h->role, 2)) < 0) {
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
  if (h->role == SHMBUS__ROLE_SUB &&
      (reply.params.max_subs == 0 || reply.index / reply.params.max_subs != reply.member)) {
    rv = -EPROTO;
    goto fail;
  }
  if ((rv = shmbus__region_attach(&h->region, &h->params, h->data_fd, h->ctrl_fd, h->member,
                                  h->role)) < 0)
    goto fail;
  if (h->role == SHMBUS__ROLE_PUB)
    shmbus__notify_init(&h->wake, SHMBUS__NOTIFY_SLEEPERS, h->params.max_subs);
  else
    shmbus__notify_init(&h->wake, SHMBUS__NOTIFY_PUB_WAITERS, h->params.max_pubs);
  /* Events sent before this epoch are read by the awaiting of peers and
   * handle_read_queued, which follow (the accessor's seq_cst load pairs
   * with the daemon's increment). */
  h->epoch_seen = shmbus__ring_peer_epoch(&h->region.ring);
  return 0;

fail:
  handle_release_record(bus, h);
  handle_unmap(h);
  return rv;
}

/* A new daemon could not adopt h's record (it knows the topic under
 * another region, or not at all): open the topic afresh and move h onto
 * it. The old mapping stays in use until the new one is ready. */
int shmbus__handle_reopen(shmbus_bus *bus, struct shmbus__handle *h) {
  struct shmbus__handle fresh;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;
  int rv;

  memset(&fresh, 0, sizeof(fresh));
  fresh.bus = bus;
  fresh.role = h->role;
  fresh.data_fd = fresh.ctrl_fd = SHMBUS__OS_HANDLE_INVALID;
  shmbus__region_init(&fresh.region);
  fresh.event_fd = h->event_fd;
  fresh.want = h->want;
  memcpy(fresh.topic, h->topic, sizeof(fresh.topic));
  if ((rv = handle_attach(bus, &fresh)) < 0)
    return rv;
  if ((rv = handle_adopt_record(&fresh, &fresh.region.ring, &pub, &sub)) < 0) {
    handle_release_record(bus, &fresh);
    handle_unmap(&fresh);
    return rv;
  }
  /* Leave the old region cleanly: a reliable record left there would hold
   * back publishers that have not moved yet. */
  if (h->role == SHMBUS__ROLE_PUB)
    shmbus__ring_pub_detach(&((shmbus_pub *)h)->ring);
  else
    shmbus__ring_sub_detach(&((shmbus_sub *)h)->ring);
  handle_unmap(h);
  h->region = fresh.region;
  h->data_fd = fresh.data_fd;
  h->ctrl_fd = fresh.ctrl_fd;
  /* The wake-up count is the handle's, whatever region it is on. */
  fresh.wake.signals = h->wake.signals;
  h->wake = fresh.wake;
  h->member = fresh.member;
  h->deadline_cap = fresh.deadline_cap;
  h->topic_id = fresh.topic_id;
  h->index = fresh.index;
  h->params = fresh.params;
  h->pending_peers = fresh.pending_peers;
  h->epoch_seen = fresh.epoch_seen;
  /* The ring handles point at the view they were made with: re-point. */
  if (h->role == SHMBUS__ROLE_PUB) {
    pub.ring = &h->region.ring;
    ((shmbus_pub *)h)->ring = pub;
  } else {
    sub.ring = &h->region.ring;
    ((shmbus_sub *)h)->ring = sub;
  }
  if ((rv = shmbus__handle_await_peers(bus, h)) < 0)
    return rv;
  return handle_read_queued(bus);
}

/* Opens a handle of `size` bytes (a shmbus_pub or shmbus_sub) on `topic`
 * for `role`, with h->want taken from `want`. */
int shmbus__handle_open(shmbus_bus *bus, const char *topic, uint32_t role,
                        const struct shmbus__handle *want, size_t size,
                        struct shmbus__handle **out) {
  struct shmbus__handle *h;
  int rv;

  if (strlen(topic) > SHMBUS__TOPIC_MAX)
    return SHMBUS_EBADNAME;
  if ((rv = shmbus__topic_validate(topic, role == SHMBUS__ROLE_SUB)) < 0)
    return rv;
  if (!shmbus__handle_ok(bus->session.sock) && (rv = shmbus_bus_process(bus)) < 0)
    return rv;
  h = calloc(1, size);
  if (h == NULL)
    return -ENOMEM;
  h->bus = bus;
  h->role = role;
  h->data_fd = h->ctrl_fd = SHMBUS__OS_HANDLE_INVALID;
  /* Not left zeroed: an open that fails before the region is mapped
   * closes it, and a zeroed region's handles are descriptor 0 (the
   * caller's standard input, closed before this). */
  shmbus__region_init(&h->region);
  h->want = want->want;
  memcpy(h->topic, topic, strlen(topic) + 1);
  if ((rv = shmbus__event_open(&h->event_fd)) < 0)
    goto fail;
  if ((rv = handle_attach(bus, h)) < 0)
    goto fail;
  if ((rv = handle_adopt_record(h, &h->region.ring, &((shmbus_pub *)h)->ring,
                                &((shmbus_sub *)h)->ring)) < 0) {
    handle_release_record(bus, h);
    goto fail;
  }
  h->next = bus->handles;
  bus->handles = h;
  if ((rv = shmbus__handle_await_peers(bus, h)) < 0 || (rv = handle_read_queued(bus)) < 0) {
    shmbus__handle_close(h);
    return rv;
  }
  *out = h;
  return 0;

fail:
  handle_free(h);
  return rv;
}
