/* peer_events: the daemon's events for a bus. See peer_events.h. */
#include "peer_events.h"

#include "bus.h"
#include "discover.h"
#include "notify.h"
#include "platform/platform.h"

/* A publisher learns a subscriber's member file from its peer_join: map it
 * (read-only) if it is new, and rescan the reliable cursors. */
static void peer_learn_member(struct shmbus__handle *h, uint32_t g, shmbus__shm_handle fd) {
  uint32_t m = h->wake.per != 0 ? g / h->wake.per : SHMBUS__MAX_MEMBERS;

  if (h->role != SHMBUS__ROLE_PUB || m >= SHMBUS__MAX_MEMBERS ||
      h->region.ring.members[m].hdr != NULL)
    return;
  if (shmbus__region_map_member(&h->region, m, fd) == 0)
    shmbus__ring_pub_rescan(&((shmbus_pub *)h)->ring);
}

/* A publisher that knows no subscriber in member file m any more (not its
 * own) unmaps it: the daemon drops the file once that uid has no
 * participant, and may give its number to another uid's new file, which
 * then comes with the next peer_join. The table's tickets go with it. */
static void peer_forget_member(struct shmbus__handle *h, uint32_t g) {
  uint32_t m = h->wake.per != 0 ? g / h->wake.per : SHMBUS__MAX_MEMBERS;

  if (h->role != SHMBUS__ROLE_PUB || m >= SHMBUS__MAX_MEMBERS || m == h->member ||
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
static void peer_late_reply(shmbus_bus *bus, const struct shmbus__msg *ev) {
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

void shmbus__peer_event(void *ctx, struct shmbus__msg *ev) {
  shmbus_bus *bus = ctx;
  struct shmbus__handle *h;

  if (ev->type == SHMBUS__MSG_TOPIC_UP || ev->type == SHMBUS__MSG_TOPIC_DOWN) {
    shmbus__discover_event(bus, ev);
    return;
  }
  if (ev->type != SHMBUS__MSG_PEER_JOIN && ev->type != SHMBUS__MSG_PEER_LEAVE) {
    peer_late_reply(bus, ev);
    shmbus__msg_close_fds(ev);
    return;
  }
  for (h = bus->handles; h != NULL; h = h->next) {
    if (h->topic_id != ev->topic_id || h->role == ev->role)
      continue;
    if (ev->type == SHMBUS__MSG_PEER_JOIN && ev->nfds >= 1) {
      shmbus__event_handle fd;
      if (ev->nfds == 2)
        peer_learn_member(h, ev->index, ev->fds[1]);
      if (shmbus__fd_dup(ev->fds[0], &fd) == 0)
        shmbus__notify_set(&h->wake, ev->index, fd);
      if (h->pending_peers > 0)
        h->pending_peers--;
    } else if (ev->type == SHMBUS__MSG_PEER_LEAVE) {
      shmbus__notify_set(&h->wake, ev->index, SHMBUS__OS_HANDLE_INVALID);
      peer_forget_member(h, ev->index);
    }
    /* The peer table changed: a wake-up that found no fd before may find
     * one now (sleeping subscribers and waiting publishers alike), and
     * nothing else would retry it (the lost wake-up of issue 11). */
    if (h->wake.pending || ev->type == SHMBUS__MSG_PEER_JOIN)
      shmbus__notify_wake(&h->wake, &h->region.ring);
  }
  shmbus__msg_close_fds(ev);
}
