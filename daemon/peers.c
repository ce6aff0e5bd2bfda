/* peers: peer events and the events owed. See peers.h. */
#include "peers.h"

#include <errno.h>
#include <stdlib.h>

#include "faults.h"
#include "layout.h"
#include "platform/platform.h"
#include "shmbus/error.h"

/* Which peers a part's owner is owed events about: the other role's. */
static uint32_t peers_slots(const struct registry_part *to) {
  const struct shmbus__ring *r = &to->topic->region.ring;
  /* Subscriber indices are global: m * max_subs + i over the member files. */
  return to->role == SHMBUS__ROLE_PUB ? r->max_subs * SHMBUS__MAX_MEMBERS : r->max_pubs;
}

/* Sends one peer event about record `index` of `role` on `to`'s topic:
 * join with the eventfd of `about` (the live peer at that index), or
 * leave (`about` NULL). A peer_join about a subscriber carries its uid's
 * member file, read-only: publishers map it to see that uid's records
 * (docs/protocol.md). Returns participant_send's code, except that a full
 * socket is -EAGAIN and does not disconnect. */
static int peers_event(struct participant *p, const struct registry_part *to, uint32_t type,
                       uint32_t role, uint32_t index, const struct registry_part *about) {
  struct shmbus__msg m;
  shmbus__shm_handle member_fd = SHMBUS__OS_HANDLE_INVALID;
  int rv;

  shmbus__msg_init(&m, type, 0);
  m.topic_id = to->topic->topic_id;
  m.role = role;
  m.index = index;
  if (type == SHMBUS__MSG_PEER_JOIN) {
    FAULT_DELAY(FAULT_DELAY_PEER_JOIN);
    m.fds[0] = about->eventfd;
    m.nfds = 1;
    if (role == SHMBUS__ROLE_SUB) {
      rv = shmbus__region_member_fd_ro(&about->topic->region, about->member, &member_fd);
      if (rv < 0) {
        log_err("topic %s: cannot pass member file %u: %s", about->topic->name, about->member,
                shmbus_strerror(rv));
        return rv;
      }
      m.fds[1] = member_fd;
      m.nfds = 2;
    }
  }
  rv = shmbus__proto_send(p->sock, &m);
  if (rv != 0 && rv != -EAGAIN)
    rv = participant_send(p, &m); /* the same failure again, handled there */
  shmbus__fd_close(member_fd);
  return rv;
}

/* Records that `to`'s owner is owed the state of peer `index`. */
static void peers_owe(struct participant *p, struct registry_part *to, uint32_t index) {
  uint32_t n = peers_slots(to);

  if (index >= n)
    return;
  if (to->peers_owed == NULL) {
    if ((to->peers_owed = calloc((n + 63) / 64, sizeof(uint64_t))) == NULL) {
      participant_log(p, LOG_WARNING, "out of memory for its owed peer events; disconnecting");
      participant_kill(p, NULL);
      return;
    }
    participant_log(p, LOG_INFO,
                    "its socket is full; peer events on %s are coalesced until it reads",
                    to->topic->name);
  }
  to->peers_owed[index / 64] |= UINT64_C(1) << (index % 64);
  participant_watch(p, true);
}

bool peers_flush(struct participant *p) {
  struct registry_part *part;
  bool clean = true;

  for (part = p->parts; part != NULL && !p->dead; part = part->owner_next) {
    uint32_t n;
    uint32_t i;
    bool sent = false;
    if (part->peers_owed == NULL)
      continue;
    n = peers_slots(part);
    for (i = 0; i < n && !p->dead; i++) {
      const struct registry_part *q;
      int rv;
      if ((part->peers_owed[i / 64] & (UINT64_C(1) << (i % 64))) == 0)
        continue;
      for (q = part->topic->parts; q != NULL; q = q->next)
        if (q->role != part->role && q->index == i && shmbus__handle_ok(q->eventfd))
          break;
      rv = peers_event(p, part, q != NULL ? SHMBUS__MSG_PEER_JOIN : SHMBUS__MSG_PEER_LEAVE,
                       part->role == SHMBUS__ROLE_PUB ? SHMBUS__ROLE_SUB : SHMBUS__ROLE_PUB, i, q);
      if (rv < 0)
        break;
      part->peers_owed[i / 64] &= ~(UINT64_C(1) << (i % 64));
      sent = true;
    }
    if (sent) {
      /* Its owner looks at its socket (seq_cst increment after the
       * sends). A peer_join sent only now may come after the owner's last
       * publish or read, and a newcomer may have gone to sleep (or to
       * wait for room) in the meantime, announced to everybody but this
       * owner: nothing would wake it until the owner calls again. So the
       * daemon wakes the topic's sleepers (a publisher's events) or
       * waiting publishers (a subscriber's) itself, after the increment:
       * its loads are seq_cst, so either it sees the newcomer's bit, or
       * the newcomer set it after the increment, and then an owner's
       * commit it missed is followed by the owner's epoch load, which
       * sees the increment, reads the socket and finds the peer_join
       * (src/ring.c, "Peer epoch"). A spurious wake-up costs a sleeper a
       * look at its slot; flushes happen only for slow readers. */
      registry_bump_epoch(part->topic);
      if (part->role == SHMBUS__ROLE_PUB)
        registry_wake_sleepers(part->topic);
      else
        registry_wake_pub_waiters(part->topic);
    }
    if (i < n) {
      clean = false;
      continue;
    }
    free(part->peers_owed);
    part->peers_owed = NULL;
  }
  if (clean && !p->dead) {
    participant_log(p, LOG_INFO, "caught up with its peer events");
    participant_watch(p, false);
  }
  return clean;
}

void peers_send(struct registry_part *to, uint32_t type, const struct registry_part *about) {
  struct participant *p = to->owner;
  int rv;

  if (p == NULL || p->dead)
    return;
  if (to->peers_owed == NULL) {
    rv = peers_event(p, to, type, about->role, about->index,
                     type == SHMBUS__MSG_PEER_JOIN ? about : NULL);
    if (rv != -EAGAIN)
      return;
  }
  peers_owe(p, to, about->index);
}
