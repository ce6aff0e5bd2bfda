/* membership: records joining and leaving, reaping the dead. See
 * membership.h. */
#include "membership.h"

#include <errno.h>

#include "faults.h"
#include "log.h"
#include "peers.h"
#include "platform/platform.h"
#include "proto.h"
#include "shmbus/error.h"
#include "timers.h"

static const char *membership_role_name(uint32_t role) {
  return role == SHMBUS__ROLE_PUB ? "pub" : "sub";
}

void membership_leave(struct server *srv, struct registry_part *part) {
  struct registry_topic *t = part->topic;
  struct registry_part *q;
  bool is_stats = t == srv->stats.topic;

  log_debug("topic %s: %s record %u of pid %u leaves", t->name, membership_role_name(part->role),
            part->index, part->pid);
  for (q = t->parts; q != NULL; q = q->next)
    if (q != part && q->role != part->role)
      peers_send(q, SHMBUS__MSG_PEER_LEAVE, part);
  if (registry_detach(&srv->reg, part) > 0)
    timers_schedule_repair(srv);
  registry_bump_epoch(t);
  if (is_stats)
    stats_update(&srv->stats);
  (void)registry_maybe_drop(&srv->reg, t);
}

void membership_join(struct server *srv, struct participant *p, uint32_t id,
                     struct registry_part *part) {
  struct registry_topic *t = part->topic;
  struct registry_part *q;
  struct shmbus__msg m;
  shmbus__shm_handle data_fd = SHMBUS__OS_HANDLE_INVALID;
  int rv;

  shmbus__msg_init(&m, SHMBUS__MSG_OPENED, id);
  m.topic_id = t->topic_id;
  m.role = part->role;
  m.index = part->index;
  m.member = part->member;
  m.deadline_ms = membership_deadline_cap(srv);
  m.has = SHMBUS__HAS_PARAMS;
  m.params = t->params;
  for (q = t->parts; q != NULL; q = q->next)
    if (q->role != part->role && shmbus__handle_ok(q->eventfd))
      m.peers++;
  if (part->role == SHMBUS__ROLE_PUB) {
    /* The region keeps its read-write fds; sending does not take them. */
    m.fds[0] = t->region.data_fd;
  } else {
    /* A subscriber gets a read-only data fd: it cannot map the slots
     * writable, so it cannot forge messages. */
    if ((rv = shmbus__region_data_fd_ro(&t->region, &data_fd)) < 0) {
      log_err("topic %s: cannot make subscriber descriptors: %s", t->name, shmbus_strerror(rv));
      participant_error(p, id, rv, "cannot make subscriber descriptors: %s", shmbus_strerror(rv));
      participant_remove_part(p, part);
      membership_leave(srv, part);
      return;
    }
    m.fds[0] = data_fd;
  }
  /* The participant's own uid's member file, read-write: only this uid's
   * participants (and the daemon) ever get it writable. */
  m.fds[1] = t->region.members[part->member].fd;
  m.nfds = 2;
  /* Existing members first: whatever the newcomer does once it has its
   * reply, its peers can already wake it or be woken by it. Then the
   * epochs move (seq_cst), and only then does the newcomer get its reply:
   * it can sleep (or wait for room) only after the increment, and a peer
   * that loads its epoch after its next commit (or read) sees it and reads
   * the peer_join on its socket (src/ring.c, "Peer epoch"). An increment
   * before the events would be worthless: a peer that saw it and read its
   * socket before they were sent would not read it again until the
   * second increment, which may come after its last publish (the lost
   * wake-up of a late-joining subscriber). A peer_join owed to a full
   * socket is sent later by peers_flush, which increments and wakes. */
  for (q = t->parts; q != NULL; q = q->next)
    if (q != part && q->role != part->role)
      peers_send(q, SHMBUS__MSG_PEER_JOIN, part);
  registry_bump_epoch(t);
  FAULT_POINT(FAULT_OPEN_BEFORE_REPLY);
  FAULT_POINT(FAULT_STOP_BEFORE_REPLY);
  rv = participant_send(p, &m);
  shmbus__fd_close(data_fd);
  if (rv < 0)
    return; /* dead: the reaper releases the record */
  FAULT_POINT(FAULT_OPEN_AFTER_REPLY);
  /* The newcomer's own peers; it waits for them before its open returns,
   * and the second increment tells it of any owed to its full socket. */
  for (q = t->parts; q != NULL && !p->dead; q = q->next)
    if (q->role != part->role && shmbus__handle_ok(q->eventfd))
      peers_send(part, SHMBUS__MSG_PEER_JOIN, q);
  registry_bump_epoch(t);
  if (t == srv->stats.topic)
    stats_update(&srv->stats);
}

/* Gives a dropped topic's quota back to its creator, if still connected. */
void membership_on_drop(void *ctx, const struct registry_topic *t) {
  struct server *srv = ctx;
  struct participant *p;

  if (t->uid_charged) {
    struct server_account *u = server_account(srv, t->creator_uid);
    if (u != NULL) {
      u->usage.topics--;
      u->usage.bytes -= t->bytes;
    }
  }
  if (t->creator_id == 0)
    return;
  for (p = srv->participants; p != NULL; p = p->next)
    if (p->id == t->creator_id) {
      p->usage.topics--;
      p->usage.bytes -= t->bytes;
      return;
    }
}

/* A part's eventfd was made blocking by its owner: a hostile or broken
 * client. Disconnect it (its records are released at the end of the
 * event); the others must not wait on it. */
void membership_on_tampered(void *ctx, struct registry_part *part) {
  struct participant *p = part->owner;

  (void)ctx;
  if (p != NULL)
    participant_kill(p, "it made its wake-up eventfd blocking");
}

/* Releases the records of every client that died during this event. A
 * release may send peer events that kill more clients: loop until none. */
void membership_reap(struct server *srv) {
  while (srv->kill_list != NULL && !srv->stopping) {
    struct participant *p = srv->kill_list;
    srv->kill_list = p->kill_next;
    p->kill_next = NULL;
    while (p->parts != NULL) {
      struct registry_part *part = p->parts;
      participant_remove_part(p, part);
      membership_leave(srv, part);
    }
    participant_close(p);
  }
}

/* The bus's bound on a publisher's wait for one reliable subscriber (ms,
 * 0: none): the `deadline_ms` limit on the system bus (read on every use,
 * so a SIGHUP reload applies to later opens), none on a per-user bus. */
uint32_t membership_deadline_cap(const struct server *srv) {
  uint64_t ms = srv->system ? config_limits(srv->cfg)->deadline_ms : 0;
  return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}
