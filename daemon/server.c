/* server: clients and the control protocol. See server.h and
 * docs/protocol.md. */
#define _GNU_SOURCE
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "faults.h"
#include "layout.h"
#include "log.h"
#include "platform/platform.h"
#include "proto.h"
#include "shmbus/error.h"

/* Limits that keep one client (or many) from exhausting the daemon. */
#define SERVER_MAX_CLIENTS 4096u
/* A hard cap above the configurable `records` limit. */
#define SERVER_MAX_PARTS_PER_CLIENT 65536u
#define SERVER_MAX_TOPICS 65536u
/* Datagrams handled per readable event before the others get a turn (the
 * poll is level-triggered: the rest is handled on the next iteration). */
#define SERVER_BATCH 64
/* The send buffer asked for each client socket: room for the bursts of
 * peer events an open can cause. The kernel caps it at net.core.wmem_max. */
#define SERVER_SNDBUF (1 << 20)
#define SERVER_REPAIR_MAX_DELAY_MS 1000u
/* Reconciliation: records compared per tick, and the tick. A topic of
 * 4096 subscribers in 16 member files is gone through in about 26 s; the
 * default topic (64 x 16 + 16 records, most member files absent) at once. */
#define SERVER_RECONCILE_BUDGET 256u
#define SERVER_RECONCILE_MS 100u
/* The system bus's default bound on a publisher's wait for one reliable
 * subscriber (docs/design.md, "Reliable deadline"). */

struct client {
  uv_poll_t poll; /* first: the poll handle's data is the client */
  struct server *srv;
  struct client *prev; /* srv->clients */
  struct client *next;
  struct client *kill_next; /* srv->kill_list, once dead */
  struct registry_part *parts;
  size_t nparts;
  gid_t *groups; /* supplementary groups, looked up on first need */
  size_t ngroups;
  int fd;
  uint32_t id;
  pid_t pid;
  uid_t uid;
  gid_t gid;
  bool groups_known;
  bool hello;
  bool dead;
  bool writable; /* also watched for room: peer events are owed (L2) */
  /* Quotas (see struct config_limits): topics this client created that
   * still exist and their bytes; a token bucket of control messages. */
  uint64_t ntopics;
  uint64_t bytes;
  double tokens;
  uint64_t tokens_ns;
  uint64_t accepted_ns; /* for the hello timeout */
  /* Snapshot replies sent that may still sit unread in its socket (each
   * holds a memory file there): reset once its socket is empty. */
  uint32_t unread_snaps;
  uint64_t unread_bytes;
  char name[SHMBUS__NAME_MAX + 1];
};

/* What the retained topics a uid created hold (M6 in docs/security.md):
 * they outlive the creator's connection, so they are charged to its uid. */
struct server_uid {
  uid_t uid;
  uint64_t retained;
  uint64_t bytes;
};

/* The soft RLIMIT_NOFILE (what the errors name when descriptors run
 * out); 0 if unknown. */
static uint64_t server_nofile(void) {
  struct rlimit rl;

  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
    return 0;
  return (uint64_t)rl.rlim_cur;
}

static const char *server_role_name(uint32_t role) {
  return role == SHMBUS__WIRE_PUB ? "pub" : "sub";
}

/* ---- disconnecting ---------------------------------------------------- */

/* Marks a client dead: nothing more is read from or sent to it, and its
 * records are released at the end of the current event (server_reap). */
static void server_kill(struct client *c, const char *why) {
  struct server *srv = c->srv;

  if (c->dead)
    return;
  c->dead = true;
  (void)uv_poll_stop(&c->poll);
  /* A process that exits closes its connection: routine, so debug. */
  if (why != NULL)
    log_printf(strcmp(why, "connection closed") == 0 ? LOG_DEBUG : LOG_INFO,
               "client %u (pid %d, %s): disconnected: %s", c->id, (int)c->pid, c->name, why);
  c->kill_next = srv->kill_list;
  srv->kill_list = c;
}

static void server_client_closed(uv_handle_t *h) {
  struct client *c = h->data;

  /* Counted until its descriptor is closed, so that a status reply never
   * reports a client gone while its socket is still open. */
  c->srv->nclients--;
  shmbus__fd_close(c->fd);
  free(c->groups);
  free(c);
}

/* Unlinks a client from the server and closes it; the memory goes in the
 * close callback. Its parts must have been released (or the registry must
 * be about to be freed, at shutdown). */
static void server_close_client(struct client *c) {
  struct server *srv = c->srv;

  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    srv->clients = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  c->prev = c->next = NULL;
  if (!c->hello) {
    c->hello = true; /* counted once */
    srv->nohello--;
  }
  uv_close((uv_handle_t *)&c->poll, server_client_closed);
}

/* ---- sending ---------------------------------------------------------- */

/* Sends one message to a client. A full socket means the client does not
 * read: it is disconnected (the daemon never waits for a client and keeps
 * no queue for one). Returns 0 or a negative code (the client is dead). */
static int server_send(struct client *c, const struct shmbus__msg *m) {
  int rv;

  if (c->dead)
    return -EPIPE;
  rv = shmbus__proto_send(c->fd, m);
  if (rv == 0)
    return 0;
  if (rv == -EAGAIN) {
    log_warn("client %u (pid %d, %s): its socket is full (it does not read); disconnecting", c->id,
             (int)c->pid, c->name);
    server_kill(c, NULL);
  } else if (rv == -EPIPE || rv == -ECONNRESET) {
    server_kill(c, "connection closed");
  } else {
    log_warn("client %u (pid %d, %s): send failed: %s", c->id, (int)c->pid, c->name,
             shmbus_strerror(rv));
    server_kill(c, NULL);
  }
  return rv;
}

static void server_send_error(struct client *c, uint32_t id, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void server_send_error(struct client *c, uint32_t id, int code, const char *fmt, ...) {
  struct shmbus__msg m;
  va_list ap;

  shmbus__msg_init(&m, SHMBUS__MSG_ERROR, id);
  m.code = code;
  va_start(ap, fmt);
  (void)vsnprintf(m.text, sizeof(m.text), fmt, ap);
  va_end(ap);
  (void)server_send(c, &m);
}

/* Answers a malformed or out-of-order message and disconnects. */
static void server_violation(struct client *c, uint32_t id, int code, const char *what) {
  log_notice("client %u (pid %d, %s): protocol violation: %s", c->id, (int)c->pid, c->name, what);
  server_send_error(c, id, code, "%s", what);
  server_kill(c, NULL);
}

/* Peer events (L2 in docs/security.md). Subscriber churn can fill the
 * socket of an honest client that reads a little later. Rather than drop
 * it, the daemon then owes it the events: one bit per peer record index
 * of the part they concern, set for every event it could not send and
 * for every later one (so they stay in order), and watches the socket for
 * room. Once there is room it sends, for each owed index, the state that
 * is true now: peer_join with the eventfd of the live peer at that index,
 * or peer_leave. Any number of joins and leaves of one index thus cost
 * one event, and what the daemon keeps is bounded by the record count. */

static void server_watch(struct client *c, bool writable);

/* Which peers a part's owner is owed events about: the other role's. */
static uint32_t server_peer_slots(const struct registry_part *to) {
  const struct shmbus__ring *r = &to->topic->region.ring;
  /* Subscriber indices are global: m * max_subs + i over the member files. */
  return to->role == SHMBUS__WIRE_PUB ? r->max_subs * SHMBUS__MAX_MEMBERS : r->max_pubs;
}

/* Sends one peer event about record `index` of `role` on `to`'s topic:
 * join with the eventfd of `about` (the live peer at that index), or
 * leave (`about` NULL). A peer_join about a subscriber carries its uid's
 * member file, read-only: publishers map it to see that uid's records
 * (docs/protocol.md). Returns server_send's code, except that a full
 * socket is -EAGAIN and does not disconnect. */
static int server_peer_event(struct client *c, const struct registry_part *to, uint32_t type,
                             uint32_t role, uint32_t index, const struct registry_part *about) {
  struct shmbus__msg m;
  int member_fd = -1;
  int rv;

  shmbus__msg_init(&m, type, 0);
  m.topic_id = to->topic->topic_id;
  m.role = role;
  m.index = index;
  if (type == SHMBUS__MSG_PEER_JOIN) {
    FAULT_DELAY(FAULT_DELAY_PEER_JOIN);
    m.fds[0] = about->eventfd;
    m.nfds = 1;
    if (role == SHMBUS__WIRE_SUB) {
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
  rv = shmbus__proto_send(c->fd, &m);
  if (rv != 0 && rv != -EAGAIN)
    rv = server_send(c, &m); /* the same failure again, handled there */
  shmbus__fd_close(member_fd);
  return rv;
}

/* Records that `to`'s owner is owed the state of peer `index`. */
static void server_owe_peer(struct client *c, struct registry_part *to, uint32_t index) {
  uint32_t n = server_peer_slots(to);

  if (index >= n)
    return;
  if (to->peers_owed == NULL) {
    if ((to->peers_owed = calloc((n + 63) / 64, sizeof(uint64_t))) == NULL) {
      log_warn("client %u (pid %d, %s): out of memory for its owed peer events; disconnecting",
               c->id, (int)c->pid, c->name);
      server_kill(c, NULL);
      return;
    }
    log_info("client %u (pid %d, %s): its socket is full; peer events on %s are coalesced until "
             "it reads",
             c->id, (int)c->pid, c->name, to->topic->name);
  }
  to->peers_owed[index / 64] |= UINT64_C(1) << (index % 64);
  server_watch(c, true);
}

/* Sends what `c` is owed, as far as its socket takes it. Returns true
 * when nothing is owed any more. */
static bool server_flush_peers(struct client *c) {
  struct registry_part *p;
  bool clean = true;

  for (p = c->parts; p != NULL && !c->dead; p = p->owner_next) {
    uint32_t n;
    uint32_t i;
    bool sent = false;
    if (p->peers_owed == NULL)
      continue;
    n = server_peer_slots(p);
    for (i = 0; i < n && !c->dead; i++) {
      const struct registry_part *q;
      int rv;
      if ((p->peers_owed[i / 64] & (UINT64_C(1) << (i % 64))) == 0)
        continue;
      for (q = p->topic->parts; q != NULL; q = q->next)
        if (q->role != p->role && q->index == i && q->eventfd >= 0)
          break;
      rv = server_peer_event(c, p, q != NULL ? SHMBUS__MSG_PEER_JOIN : SHMBUS__MSG_PEER_LEAVE,
                             p->role == SHMBUS__WIRE_PUB ? SHMBUS__WIRE_SUB : SHMBUS__WIRE_PUB, i,
                             q);
      if (rv < 0)
        break;
      p->peers_owed[i / 64] &= ~(UINT64_C(1) << (i % 64));
      sent = true;
    }
    if (sent)
      registry_bump_epoch(p->topic); /* its publishers look at their sockets */
    if (i < n) {
      clean = false;
      continue;
    }
    free(p->peers_owed);
    p->peers_owed = NULL;
  }
  if (clean && !c->dead) {
    log_info("client %u (pid %d, %s): caught up with its peer events", c->id, (int)c->pid, c->name);
    server_watch(c, false);
  }
  return clean;
}

/* Sends peer_join or peer_leave about `about` to `to`'s owner, or owes it
 * (above) when the owner's socket is full or events are owed already. */
static void server_send_peer(struct registry_part *to, uint32_t type,
                             const struct registry_part *about) {
  struct client *c = to->owner;
  int rv;

  if (c == NULL || c->dead)
    return;
  if (to->peers_owed == NULL) {
    rv = server_peer_event(c, to, type, about->role, about->index,
                           type == SHMBUS__MSG_PEER_JOIN ? about : NULL);
    if (rv != -EAGAIN)
      return;
  }
  server_owe_peer(c, to, about->index);
}

/* ---- timers --------------------------------------------------------- */

static void server_reap(struct server *srv);

static void server_repair_turn(struct server *srv);

static void server_on_repair(uv_timer_t *t) {
  server_repair_turn(t->data);
}

static void server_on_repair_idle(uv_idle_t *h) {
  server_repair_turn(h->data);
}

/* One step of every pending repair. A repair that only ran out of budget
 * (a huge lap, H2 in docs/security.md) continues on the next loop turn,
 * after the daemon polled its sockets, through the idle handle (a 0 ms
 * timer restarted from its own callback could run again in the same
 * timer phase, without I/O in between); one that waits for a live
 * publisher between claim and commit backs off, up to once a second. */
static void server_repair_turn(struct server *srv) {
  bool now = false;

  if (srv->stopping)
    return;
  if (registry_repair_pending(&srv->reg, &now) == 0) {
    (void)uv_idle_stop(&srv->repair_idle);
    (void)uv_timer_stop(&srv->repair_timer);
    srv->repair_delay_ms = 0;
  } else if (now) {
    (void)uv_timer_stop(&srv->repair_timer);
    (void)uv_idle_start(&srv->repair_idle, server_on_repair_idle);
    srv->repair_delay_ms = 0;
  } else {
    (void)uv_idle_stop(&srv->repair_idle);
    srv->repair_delay_ms = srv->repair_delay_ms == 0 ? 1 : srv->repair_delay_ms * 2;
    if (srv->repair_delay_ms > SERVER_REPAIR_MAX_DELAY_MS)
      srv->repair_delay_ms = SERVER_REPAIR_MAX_DELAY_MS;
    (void)uv_timer_start(&srv->repair_timer, server_on_repair, srv->repair_delay_ms, 0);
  }
  server_reap(srv);
}

/* Arms the repair on the next loop turn when one is pending (also while
 * another one backs off: a new one must not wait for that timer); the
 * turn then decides between going on and backing off. */
static void server_schedule_repair(struct server *srv) {
  if (srv->reg.repairs == NULL || srv->stopping || uv_is_active((uv_handle_t *)&srv->repair_idle))
    return;
  (void)uv_idle_start(&srv->repair_idle, server_on_repair_idle);
}

/* M7: a connection that does not say hello within `hello_ms` is told so
 * and closed: idle connections cannot hold the daemon's slots. One timer
 * for all, running while some connection has not said hello. */
static void server_on_hello(uv_timer_t *t) {
  struct server *srv = t->data;
  uint64_t limit_ms = config_limits(srv->cfg)->hello_ms;
  uint64_t now = shmbus__clock_mono_ns();
  struct client *c;

  for (c = srv->clients; c != NULL && limit_ms != 0; c = c->next) {
    struct shmbus__msg m;
    if (c->hello || c->dead || (now - c->accepted_ns) / 1000000u < limit_ms)
      continue;
    shmbus__msg_init(&m, SHMBUS__MSG_ERROR, 0);
    m.code = -ETIMEDOUT;
    snprintf(m.text, sizeof(m.text),
             "no hello within %llu ms of connecting (the daemon's limit \"hello_ms\")",
             (unsigned long long)limit_ms);
    (void)server_send(c, &m);
    server_kill(c, "no hello in time");
  }
  server_reap(srv);
  if (srv->nohello == 0 || limit_ms == 0)
    (void)uv_timer_stop(&srv->hello_timer);
}

static void server_schedule_hello(struct server *srv) {
  uint64_t limit_ms = config_limits(srv->cfg)->hello_ms;
  uint64_t period;

  if (!srv->hello_init || srv->stopping || limit_ms == 0 ||
      uv_is_active((uv_handle_t *)&srv->hello_timer))
    return;
  /* A quarter of the limit: a silent connection goes between 1 and 1.25
   * times the limit after it connected. */
  period = limit_ms / 4 != 0 ? limit_ms / 4 : 1;
  (void)uv_timer_start(&srv->hello_timer, server_on_hello, period, period);
}

static void server_on_sweep(uv_timer_t *t) {
  struct server *srv = t->data;

  if (registry_sweep(&srv->reg, shmbus__clock_mono_ns()) == 0)
    (void)uv_timer_stop(&srv->sweep_timer);
  server_schedule_repair(srv);
  server_reap(srv);
}

static void server_schedule_sweep(struct server *srv) {
  if (srv->reg.sweeps == NULL || srv->stopping || uv_is_active((uv_handle_t *)&srv->sweep_timer))
    return;
  /* Once a second: records of dead processes go at the next tick, those of
   * live processes that never adopt them at the end of the window. */
  (void)uv_timer_start(&srv->sweep_timer, server_on_sweep, 1000, 1000);
}

static void server_on_reconcile(uv_timer_t *t) {
  struct server *srv = t->data;

  if (registry_reconcile(&srv->reg, SERVER_RECONCILE_BUDGET) > 0)
    stats_update(&srv->stats);
  server_schedule_repair(srv);
  server_reap(srv);
}

/* The bus's bound on a publisher's wait for one reliable subscriber (ms,
 * 0: none): the `deadline_ms` limit on the system bus (read on every use,
 * so a SIGHUP reload applies to later opens), none on a per-user bus. */
static uint32_t server_deadline_cap(const struct server *srv) {
  uint64_t ms = srv->system ? config_limits(srv->cfg)->deadline_ms : 0;
  return ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
}

/* A reliable subscriber's deadline as the daemon records it: its own,
 * capped by the bus's (0 means none on either side). */
static uint32_t server_deadline(const struct server *srv, uint32_t want) {
  uint32_t cap = server_deadline_cap(srv);
  if (cap == 0)
    return want;
  return want == 0 || want > cap ? cap : want;
}

/* ---- joining and leaving -------------------------------------------- */

/* Releases one part (close, or its owner is gone): tells the peers of the
 * other role, detaches the record, and bumps the epoch. May drop the topic.
 * The part must already be off its owner's list. */
static void server_part_leave(struct server *srv, struct registry_part *part) {
  struct registry_topic *t = part->topic;
  struct registry_part *q;
  bool is_stats = t == srv->stats.topic;

  log_debug("topic %s: %s record %u of pid %u leaves", t->name, server_role_name(part->role),
            part->index, part->pid);
  for (q = t->parts; q != NULL; q = q->next)
    if (q != part && q->role != part->role)
      server_send_peer(q, SHMBUS__MSG_PEER_LEAVE, part);
  if (registry_detach(&srv->reg, part) > 0)
    server_schedule_repair(srv);
  registry_bump_epoch(t);
  if (is_stats)
    stats_update(&srv->stats);
  (void)registry_maybe_drop(&srv->reg, t);
}

static void server_client_add_part(struct client *c, struct registry_part *p) {
  p->owner = c;
  p->client_id = c->id;
  p->name = c->name;
  p->owner_next = c->parts;
  c->parts = p;
  c->nparts++;
}

static void server_client_remove_part(struct client *c, struct registry_part *p) {
  struct registry_part **pp;

  for (pp = &c->parts; *pp != NULL; pp = &(*pp)->owner_next)
    if (*pp == p) {
      *pp = p->owner_next;
      c->nparts--;
      break;
    }
  p->owner_next = NULL;
  p->name = NULL; /* the client's memory */
}

/* After a record was attached or adopted for `c`: tells the other
 * participants first (so that the newcomer's peers know its eventfd
 * before it can sleep or wait on them), then answers `opened` with the
 * topic's fds and the number of peers that follow, sends those peers, and
 * bumps the epochs. */
static void server_joined(struct server *srv, struct client *c, uint32_t id,
                          struct registry_part *part) {
  struct registry_topic *t = part->topic;
  struct registry_part *q;
  struct shmbus__msg m;
  int data_fd = -1;
  int rv;

  shmbus__msg_init(&m, SHMBUS__MSG_OPENED, id);
  m.topic_id = t->topic_id;
  m.role = part->role;
  m.index = part->index;
  m.member = part->member;
  m.deadline_ms = server_deadline_cap(srv);
  m.has = SHMBUS__HAS_PARAMS;
  m.params = t->params;
  for (q = t->parts; q != NULL; q = q->next)
    if (q->role != part->role && q->eventfd >= 0)
      m.peers++;
  if (part->role == SHMBUS__WIRE_PUB) {
    /* The region keeps its read-write fds; sending does not take them. */
    m.fds[0] = t->region.data_fd;
  } else {
    /* A subscriber gets a read-only data fd: it cannot map the slots
     * writable, so it cannot forge messages. */
    if ((rv = shmbus__region_data_fd_ro(&t->region, &data_fd)) < 0) {
      log_err("topic %s: cannot make subscriber descriptors: %s", t->name, shmbus_strerror(rv));
      server_send_error(c, id, rv, "cannot make subscriber descriptors: %s", shmbus_strerror(rv));
      server_client_remove_part(c, part);
      server_part_leave(srv, part);
      return;
    }
    m.fds[0] = data_fd;
  }
  /* The participant's own uid's member file, read-write: only this uid's
   * participants (and the daemon) ever get it writable. */
  m.fds[1] = t->region.members[part->member].fd;
  m.nfds = 2;
  /* Existing members first: whatever the newcomer does once it has its
   * reply, its peers can already wake it or be woken by it. The epochs
   * move before the events too (and again after them), so whoever reads
   * one of them also sees a new epoch; a participant that looked between
   * the two bumps reads its socket again after the second. */
  registry_bump_epoch(t);
  for (q = t->parts; q != NULL; q = q->next)
    if (q != part && q->role != part->role)
      server_send_peer(q, SHMBUS__MSG_PEER_JOIN, part);
  FAULT_POINT(FAULT_OPEN_BEFORE_REPLY);
  rv = server_send(c, &m);
  shmbus__fd_close(data_fd);
  if (rv < 0)
    return; /* dead: the reaper releases the record */
  FAULT_POINT(FAULT_OPEN_AFTER_REPLY);
  for (q = t->parts; q != NULL && !c->dead; q = q->next)
    if (q->role != part->role && q->eventfd >= 0)
      server_send_peer(part, SHMBUS__MSG_PEER_JOIN, q);
  registry_bump_epoch(t);
  if (t == srv->stats.topic)
    stats_update(&srv->stats);
}

/* ---- requests ------------------------------------------------------- */

/* Looks up the supplementary groups of the client's user once. A failed
 * lookup leaves only the primary gid: a group rule then does not match. */
static void server_client_groups(struct client *c) {
  struct passwd pw;
  struct passwd *res = NULL;
  char buf[4096];
  int n = 32;
  gid_t *g = NULL;

  if (c->groups_known)
    return;
  c->groups_known = true;
  if (getpwuid_r(c->uid, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
    return;
  for (int tries = 0; tries < 4; tries++) {
    int want = n;
    gid_t *ng = realloc(g, (size_t)n * sizeof(*g));
    if (ng == NULL)
      break;
    g = ng;
    if (getgrouplist(pw.pw_name, c->gid, g, &n) >= 0) {
      c->groups = g;
      c->ngroups = (size_t)n;
      return;
    }
    if (n <= want) /* no progress: give up */
      break;
  }
  free(g);
}

static const char *server_op_name(unsigned op) {
  switch (op) {
  case CONFIG_OP_PUB:
    return "pub";
  case CONFIG_OP_SUB:
    return "sub";
  case CONFIG_OP_CREATE:
    return "create";
  case CONFIG_OP_RETAIN:
    return "retain";
  default:
    return "remove";
  }
}

/* Whether `c` is the bus owner or root: they may do everything. */
static bool server_trusted(const struct server *srv, const struct client *c) {
  return c->uid == srv->owner || c->uid == 0;
}

/* Permission check for `op` (CONFIG_OP_*) on `topic`, with the reason in
 * `why`; a denial is logged unless `quiet`. The first matching rule
 * decides; without one, the owner and root may do everything, and others
 * may create what they may publish (publishing implies creating,
 * subscribing does not), nothing else. Removal by the topic's creator is
 * the caller's business (server_remove). */
static bool server_may(struct server *srv, struct client *c, const char *topic, unsigned op,
                       bool quiet, char *why, size_t whylen) {
  struct config_cred cred;
  bool ok;
  int d;

  if (config_uses_groups(srv->cfg))
    server_client_groups(c);
  cred.uid = c->uid;
  cred.gid = c->gid;
  cred.groups = c->groups;
  cred.ngroups = c->ngroups;
  d = config_decide(srv->cfg, topic, op, &cred, why, whylen);
  if (d >= 0) {
    ok = d == 1;
  } else if (server_trusted(srv, c)) {
    ok = true;
  } else if (op == CONFIG_OP_CREATE) {
    char pwhy[300];
    ok = server_may(srv, c, topic, CONFIG_OP_PUB, true, pwhy, sizeof(pwhy));
    /* %.200s: the rule's FILE:LINE, shortened to fit `why`. */
    (void)snprintf(why, whylen, "default policy (create follows pub, %s by %.200s)",
                   ok ? "allowed" : "denied", pwhy);
  } else {
    ok = false;
  }
  if (!ok && !quiet)
    log_notice("client %u (pid %d, uid %u, %s): %s on %s denied by %s", c->id, (int)c->pid,
               (unsigned)c->uid, c->name, server_op_name(op), topic, why);
  return ok;
}

static bool server_permitted(struct server *srv, struct client *c, const char *topic, uint32_t role,
                             bool quiet, char *why, size_t whylen) {
  return server_may(srv, c, topic, role == SHMBUS__WIRE_PUB ? CONFIG_OP_PUB : CONFIG_OP_SUB, quiet,
                    why, whylen);
}

/* Checks what open and adopt have in common: role, name, the $sys rule,
 * the eventfd, the permission. Returns true to go on; false after it
 * answered (error, or violation and disconnect). */
static bool server_check_request(struct server *srv, struct client *c, struct shmbus__msg *m,
                                 int eventfd) {
  const struct config_limits *lim = config_limits(srv->cfg);
  char why[300];
  int fl;
  int rv;

  if (m->role != SHMBUS__WIRE_PUB && m->role != SHMBUS__WIRE_SUB) {
    server_violation(c, m->id, -EPROTO, "role must be \"pub\" or \"sub\"");
    return false;
  }
  if ((rv = shmbus__topic_validate(m->topic, true)) < 0) {
    server_send_error(c, m->id, rv, "invalid topic name \"%s\"", m->topic);
    return false;
  }
  if (strncmp(m->topic, "$sys/", 5) == 0 && m->role == SHMBUS__WIRE_PUB) {
    log_notice("client %u (pid %d, %s): publishing to %s refused", c->id, (int)c->pid, c->name,
               m->topic);
    server_send_error(c, m->id, SHMBUS_EDENIED,
                      "$sys/ topics are published by the daemon only; subscribe instead");
    return false;
  }
  /* The eventfd is written by the daemon (wake-ups) and passed to peers:
   * it must really be one, and non-blocking so a write never waits. */
  fl = fcntl(eventfd, F_GETFL);
  if (!shmbus__event_check(eventfd) || fl < 0 || (fl & O_NONBLOCK) == 0) {
    server_send_error(c, m->id, -EINVAL, "the descriptor passed must be a non-blocking eventfd");
    return false;
  }
  if (!server_permitted(srv, c, m->topic, m->role, false, why, sizeof(why))) {
    server_send_error(c, m->id, SHMBUS_EDENIED, "%s on \"%s\" denied by %s",
                      server_role_name(m->role), m->topic, why);
    return false;
  }
  if (c->nparts >= SERVER_MAX_PARTS_PER_CLIENT ||
      (lim->records != 0 && c->nparts >= lim->records)) {
    log_notice("client %u (pid %d, %s): quota: holds %zu records (limit records %llu)", c->id,
               (int)c->pid, c->name, c->nparts,
               (unsigned long long)(lim->records != 0 ? lim->records
                                                      : (uint64_t)SERVER_MAX_PARTS_PER_CLIENT));
    server_send_error(c, m->id, SHMBUS_EQUOTA,
                      "quota: this client holds %zu publisher and subscriber records; the "
                      "daemon's limit \"records\" is %llu",
                      c->nparts,
                      (unsigned long long)(lim->records != 0
                                               ? lim->records
                                               : (uint64_t)SERVER_MAX_PARTS_PER_CLIENT));
    return false;
  }
  return true;
}

/* The bytes of the region `p` describes (data + one member file); 0 when the
 * parameters are invalid (registry_create says so then). */
static uint64_t server_region_bytes(const struct shmbus__params *p) {
  struct shmbus__layout l;

  if (shmbus__layout_compute(p, shmbus__page_size(), &l) < 0)
    return 0;
  return l.data_size + l.member_size;
}

/* The account of `uid`, created on first use; NULL when out of memory. */
static struct server_uid *server_uid_acct(struct server *srv, uid_t uid) {
  struct server_uid *u;
  size_t i;

  for (i = 0; i < srv->nuids; i++)
    if (srv->uids[i].uid == uid)
      return &srv->uids[i];
  if ((u = realloc(srv->uids, (srv->nuids + 1) * sizeof(*u))) == NULL)
    return NULL;
  srv->uids = u;
  u = &srv->uids[srv->nuids++];
  u->uid = uid;
  u->retained = 0;
  u->bytes = 0;
  return u;
}

/* Checks the limits on creating a topic with parameters `p` for `c`: the
 * maximum region size and the client's topic and memory quotas. Returns
 * true to go on; false after it answered with an error. */
static bool server_may_create(struct server *srv, struct client *c, const struct shmbus__msg *m,
                              const struct shmbus__params *p) {
  const struct config_limits *lim = config_limits(srv->cfg);
  uint64_t bytes = server_region_bytes(p);

  if (lim->region != 0 && bytes > lim->region) {
    log_notice("client %u (pid %d, %s): topic %s: region of %llu bytes refused (limit region "
               "%llu)",
               c->id, (int)c->pid, c->name, m->topic, (unsigned long long)bytes,
               (unsigned long long)lim->region);
    server_send_error(c, m->id, SHMBUS_ELIMIT,
                      "topic \"%s\" would need a region of %llu bytes; the daemon's limit "
                      "\"region\" is %llu bytes (slots=%u slot_size=%u max_subs=%u max_pubs=%u)",
                      m->topic, (unsigned long long)bytes, (unsigned long long)lim->region,
                      p->slot_count, p->slot_capacity, p->max_subs, p->max_pubs);
    return false;
  }
  if (lim->topics != 0 && c->ntopics >= lim->topics) {
    log_notice("client %u (pid %d, %s): quota: created %llu topics (limit topics %llu)", c->id,
               (int)c->pid, c->name, (unsigned long long)c->ntopics,
               (unsigned long long)lim->topics);
    server_send_error(c, m->id, SHMBUS_EQUOTA,
                      "quota: this client created %llu topics that still exist; the daemon's "
                      "limit \"topics\" is %llu",
                      (unsigned long long)c->ntopics, (unsigned long long)lim->topics);
    return false;
  }
  if (lim->memory != 0 && (bytes > lim->memory || c->bytes > lim->memory - bytes)) {
    log_notice("client %u (pid %d, %s): quota: %llu bytes of regions plus %llu (limit memory "
               "%llu)",
               c->id, (int)c->pid, c->name, (unsigned long long)c->bytes, (unsigned long long)bytes,
               (unsigned long long)lim->memory);
    server_send_error(c, m->id, SHMBUS_EQUOTA,
                      "quota: the topics this client created hold %llu bytes of shared memory; "
                      "\"%s\" needs %llu more; the daemon's limit \"memory\" is %llu bytes",
                      (unsigned long long)c->bytes, m->topic, (unsigned long long)bytes,
                      (unsigned long long)lim->memory);
    return false;
  }
  if (m->retain && !server_trusted(srv, c)) {
    /* Retained topics outlive the connection: charged to the uid. */
    struct server_uid *u = server_uid_acct(srv, c->uid);
    if (u == NULL) {
      server_send_error(c, m->id, -ENOMEM, "out of memory");
      return false;
    }
    if ((lim->retained != 0 && u->retained >= lim->retained) ||
        (lim->retained_memory != 0 &&
         (bytes > lim->retained_memory || u->bytes > lim->retained_memory - bytes))) {
      log_notice("client %u (pid %d, uid %u, %s): quota: uid holds %llu retained topics of %llu "
                 "bytes (limits retained %llu, retained_memory %llu)",
                 c->id, (int)c->pid, (unsigned)c->uid, c->name, (unsigned long long)u->retained,
                 (unsigned long long)u->bytes, (unsigned long long)lim->retained,
                 (unsigned long long)lim->retained_memory);
      server_send_error(c, m->id, SHMBUS_EQUOTA,
                        "quota: uid %u created %llu retained topics holding %llu bytes; \"%s\" "
                        "needs %llu more; the daemon's limits \"retained\" and "
                        "\"retained_memory\" are %llu and %llu (shmbus topic rm frees them)",
                        (unsigned)c->uid, (unsigned long long)u->retained,
                        (unsigned long long)u->bytes, m->topic, (unsigned long long)bytes,
                        (unsigned long long)lim->retained,
                        (unsigned long long)lim->retained_memory);
      return false;
    }
  }
  return true;
}

/* Gives a dropped topic's quota back to its creator, if still connected. */
static void server_on_drop(void *ctx, const struct registry_topic *t) {
  struct server *srv = ctx;
  struct client *c;

  if (t->uid_charged) {
    struct server_uid *u = server_uid_acct(srv, t->creator_uid);
    if (u != NULL) {
      u->retained--;
      u->bytes -= t->bytes;
    }
  }
  if (t->creator_id == 0)
    return;
  for (c = srv->clients; c != NULL; c = c->next)
    if (c->id == t->creator_id) {
      c->ntopics--;
      c->bytes -= t->bytes;
      return;
    }
}

/* A part's eventfd was made blocking by its owner: a hostile or broken
 * client. Disconnect it (its records are released at the end of the
 * event); the others must not wait on it. */
static void server_on_tampered(void *ctx, struct registry_part *p) {
  struct client *c = p->owner;

  (void)ctx;
  if (c != NULL)
    server_kill(c, "it made its wake-up eventfd blocking");
}

/* The token bucket of control messages: `rate` tokens a second, up to
 * `burst`. A request with no token left is refused with SHMBUS_EQUOTA
 * and still costs one, so the balance goes negative; a client that keeps
 * sending while refused, down to -burst, is flooding and is disconnected.
 * Returns true to handle the request. */
static bool server_rate_ok(struct server *srv, struct client *c, const struct shmbus__msg *m) {
  const struct config_limits *lim = config_limits(srv->cfg);
  uint64_t now = shmbus__clock_mono_ns();
  double burst = lim->burst != 0 ? (double)lim->burst : 1.0;

  if (lim->rate == 0)
    return true;
  c->tokens += (double)(now - c->tokens_ns) * 1e-9 * (double)lim->rate;
  if (c->tokens > burst)
    c->tokens = burst;
  c->tokens_ns = now;
  c->tokens -= 1.0;
  if (c->tokens >= 0.0)
    return true;
  if (c->tokens < -burst) {
    log_warn("client %u (pid %d, %s): quota: kept sending while over the rate limit (%llu/s, "
             "burst %llu); disconnecting",
             c->id, (int)c->pid, c->name, (unsigned long long)lim->rate,
             (unsigned long long)lim->burst);
    server_send_error(c, m->id, SHMBUS_EQUOTA,
                      "quota: flooding: more than %llu control messages beyond the limit "
                      "\"rate\" of %llu per second; disconnected",
                      (unsigned long long)lim->burst, (unsigned long long)lim->rate);
    server_kill(c, NULL);
    return false;
  }
  if (c->tokens > -2.0) /* once per episode */
    log_notice("client %u (pid %d, %s): quota: over the rate limit (%llu/s, burst %llu)", c->id,
               (int)c->pid, c->name, (unsigned long long)lim->rate, (unsigned long long)lim->burst);
  server_send_error(c, m->id, SHMBUS_EQUOTA,
                    "quota: more than %llu control messages per second (limit \"rate\", burst "
                    "%llu); slow down",
                    (unsigned long long)lim->rate, (unsigned long long)lim->burst);
  return false;
}

static void server_open(struct server *srv, struct client *c, struct shmbus__msg *m) {
  struct shmbus__params want = {REGISTRY_DEFAULT_SLOTS, REGISTRY_DEFAULT_SLOT_SIZE,
                                REGISTRY_DEFAULT_MAX_SUBS, REGISTRY_DEFAULT_MAX_PUBS};
  struct registry_topic *t;
  struct registry_part *part;
  bool created = false;
  int rv;

  if (!server_check_request(srv, c, m, m->fds[0]))
    return;
  if (m->has & SHMBUS__HAS_PARAMS)
    want = m->params;
  if ((t = registry_find(&srv->reg, m->topic)) == NULL) {
    if (strncmp(m->topic, "$sys/", 5) == 0) {
      server_send_error(c, m->id, -ENOENT, "\"%s\" is not a topic of this daemon", m->topic);
      return;
    }
    if (srv->reg.ntopics >= SERVER_MAX_TOPICS) {
      server_send_error(c, m->id, -ENOSPC, "the daemon has %u topics, the limit",
                        SERVER_MAX_TOPICS);
      return;
    }
    {
      char why[300];
      /* M6: using a topic is not creating it. Creating chooses the
       * parameters everyone must then use, and retaining keeps the memory
       * after everyone left: each needs its own permission. */
      if (!server_may(srv, c, m->topic, CONFIG_OP_CREATE, false, why, sizeof(why))) {
        server_send_error(c, m->id, SHMBUS_EDENIED,
                          "topic \"%s\" does not exist and this uid may not create it (denied "
                          "by %s); it is created by one allowed to (its publishers, by default)",
                          m->topic, why);
        return;
      }
      if (m->retain && !server_may(srv, c, m->topic, CONFIG_OP_RETAIN, false, why, sizeof(why))) {
        server_send_error(c, m->id, SHMBUS_EDENIED,
                          "this uid may not create \"%s\" retained (denied by %s)", m->topic, why);
        return;
      }
    }
    if (!server_may_create(srv, c, m, &want))
      return;
    rv = registry_create(&srv->reg, m->topic, &want, m->retain, false, &t);
    if (rv < 0) {
      if (rv == SHMBUS_EPARAM)
        server_send_error(c, m->id, rv,
                          "invalid parameters slots=%u slot_size=%u max_subs=%u max_pubs=%u "
                          "(slots a power of two in 2..2^24, slot_size 1..64 MiB, max_subs "
                          "1..4096, max_pubs 1..1024, region at most 64 GiB)",
                          want.slot_count, want.slot_capacity, want.max_subs, want.max_pubs);
      else if (rv == -EMFILE || rv == -ENFILE)
        server_send_error(c, m->id, rv,
                          "cannot create topic \"%s\": the daemon is out of file descriptors "
                          "(RLIMIT_NOFILE %llu)",
                          m->topic, (unsigned long long)server_nofile());
      else if (rv == -ENOMEM || rv == -ENOSPC || rv == -EFBIG)
        server_send_error(c, m->id, rv,
                          "cannot create topic \"%s\": the system has no room for its %llu "
                          "bytes of shared memory (%s)",
                          m->topic, (unsigned long long)server_region_bytes(&want),
                          shmbus_strerror(rv));
      else
        server_send_error(c, m->id, rv, "cannot create topic \"%s\": %s", m->topic,
                          shmbus_strerror(rv));
      if (rv != SHMBUS_EPARAM)
        log_warn("topic %s: cannot create: %s", m->topic, shmbus_strerror(rv));
      return;
    }
    created = true;
    t->creator_id = c->id;
    t->creator_uid = (uint32_t)c->uid;
    t->has_creator = true;
    c->ntopics++;
    c->bytes += t->bytes;
    if (m->retain && !server_trusted(srv, c)) {
      struct server_uid *u = server_uid_acct(srv, c->uid); /* exists: server_may_create */
      if (u != NULL) {
        u->retained++;
        u->bytes += t->bytes;
        t->uid_charged = true;
      }
    }
    FAULT_POINT(FAULT_OPEN_AFTER_CREATE);
    log_info("topic %s: created by client %u (pid %d): slots=%u slot_size=%u max_subs=%u "
             "max_pubs=%u%s",
             t->name, c->id, (int)c->pid, want.slot_count, want.slot_capacity, want.max_subs,
             want.max_pubs, m->retain ? ", retained" : "");
  } else if ((m->has & SHMBUS__HAS_PARAMS) && !registry_params_equal(&want, &t->params)) {
    server_send_error(c, m->id, SHMBUS_EMISMATCH,
                      "topic \"%s\" exists with slots=%u slot_size=%u max_subs=%u max_pubs=%u; "
                      "the open asked for slots=%u slot_size=%u max_subs=%u max_pubs=%u",
                      t->name, t->params.slot_count, t->params.slot_capacity, t->params.max_subs,
                      t->params.max_pubs, want.slot_count, want.slot_capacity, want.max_subs,
                      want.max_pubs);
    return;
  }
  rv = registry_attach(&srv->reg, t, m->role, m->reliable, m->history,
                       server_deadline(srv, m->deadline_ms), (uint32_t)c->pid, (uint32_t)c->uid,
                       m->fds[0], &part);
  if (rv < 0) {
    if (rv == SHMBUS_ENOSLOT)
      server_send_error(c, m->id, rv, "topic \"%s\" has no free %s record (max_%s %u)", t->name,
                        m->role == SHMBUS__WIRE_PUB ? "publisher" : "subscriber",
                        m->role == SHMBUS__WIRE_PUB ? "pubs" : "subs",
                        m->role == SHMBUS__WIRE_PUB ? t->params.max_pubs : t->params.max_subs);
    else if (rv == SHMBUS_ELIMIT)
      server_send_error(c, m->id, rv,
                        "topic \"%s\" has participants of %u uids already, the most one topic "
                        "can have",
                        t->name, SHMBUS__MAX_MEMBERS);
    else if (rv == SHMBUS_ESTATE)
      server_send_error(c, m->id, rv,
                        "topic \"%s\" was adopted from subscribers only after a restart; "
                        "publishers can open it once one of its publishers reconnected",
                        t->name);
    else
      server_send_error(c, m->id, rv, "cannot attach a record: %s", shmbus_strerror(rv));
    if (created)
      (void)registry_maybe_drop(&srv->reg, t);
    return;
  }
  m->fds[0] = -1; /* the part owns the eventfd now */
  server_client_add_part(c, part);
  log_debug("topic %s: client %u (pid %d) opened %s record %u%s", t->name, c->id, (int)c->pid,
            server_role_name(part->role), part->index, part->reliable ? " (reliable)" : "");
  server_joined(srv, c, m->id, part);
}

static void server_adopt(struct server *srv, struct client *c, struct shmbus__msg *m) {
  struct registry_topic *t;
  struct registry_part *part;
  char text[SHMBUS__TEXT_MAX + 1];
  int rv;

  if (!server_check_request(srv, c, m, m->fds[2]))
    return;
  /* Adopting an unknown topic creates it from the region the client
   * passes, and whoever made that region can write its slots. On the
   * system bus, where clients are different users, only one allowed to
   * create it may do that (by default its publishers); subscribers adopt
   * after it. */
  if (srv->system && registry_find(&srv->reg, m->topic) == NULL &&
      !server_may(srv, c, m->topic, CONFIG_OP_CREATE, true, text, sizeof(text))) {
    server_send_error(c, m->id, SHMBUS_EDENIED,
                      "\"%s\" is not known yet and this uid may not create it (%s): after a "
                      "restart it is re-created by one that may (its publishers, by default); "
                      "adopt again once one has",
                      m->topic, text);
    return;
  }
  text[0] = '\0';
  rv = registry_adopt(&srv->reg, m->topic, m->role, (uint32_t)c->uid, &m->fds[0], &m->fds[1],
                      (m->has & SHMBUS__HAS_PARAMS) ? &m->params : NULL, shmbus__clock_mono_ns(),
                      &t, text, sizeof(text));
  if (rv < 0) {
    log_notice("client %u (pid %d, %s): adopt of %s refused: %s", c->id, (int)c->pid, c->name,
               m->topic, text);
    server_send_error(c, m->id, rv, "%s", text);
    return;
  }
  server_schedule_sweep(srv);
  rv = registry_register(&srv->reg, t, m->role, m->index, (uint32_t)c->pid, m->fds[2], &part, text,
                         sizeof(text));
  if (rv < 0) {
    log_notice("client %u (pid %d, %s): adopt of %s refused: %s", c->id, (int)c->pid, c->name,
               m->topic, text);
    server_send_error(c, m->id, rv, "%s", text);
    (void)registry_maybe_drop(&srv->reg, t);
    return;
  }
  m->fds[2] = -1;
  /* Its own uid's member file, which the adopt just passed (or an earlier
   * one of the same uid did). A subscriber's record must lie in it. */
  rv = registry_member(t, (uint32_t)c->uid);
  if (rv < 0 || (part->role == SHMBUS__WIRE_SUB && part->member != (uint32_t)rv)) {
    server_send_error(c, m->id, SHMBUS_EDENIED,
                      "record %u is not in the member file of uid %u", part->index,
                      (unsigned)c->uid);
    (void)registry_detach(&srv->reg, part);
    (void)registry_maybe_drop(&srv->reg, t);
    return;
  }
  part->member = (uint32_t)rv;
  part->uid = (uint32_t)c->uid;
  server_client_add_part(c, part);
  log_info("topic %s: client %u (pid %d) adopted %s record %u", t->name, c->id, (int)c->pid,
           server_role_name(part->role), part->index);
  server_joined(srv, c, m->id, part);
}

static void server_close_req(struct server *srv, struct client *c, struct shmbus__msg *m) {
  struct registry_part *p;
  struct shmbus__msg ok;

  for (p = c->parts; p != NULL; p = p->owner_next)
    if (p->topic->topic_id == m->topic_id && p->role == m->role && p->index == m->index)
      break;
  if (p == NULL) {
    server_send_error(c, m->id, -ENOENT, "this client holds no %s record %u on topic %u",
                      server_role_name(m->role), m->index, m->topic_id);
    return;
  }
  server_client_remove_part(c, p);
  server_part_leave(srv, p);
  shmbus__msg_init(&ok, SHMBUS__MSG_OK, m->id);
  (void)server_send(c, &ok);
}

static void server_status(struct server *srv, struct client *c, struct shmbus__msg *m) {
  struct shmbus__msg r;

  shmbus__msg_init(&r, SHMBUS__MSG_STATUS_REPLY, m->id);
  r.daemon_pid = (uint32_t)getpid();
  r.topics = (uint32_t)srv->reg.ntopics;
  r.clients = (uint32_t)srv->nclients;
  r.uptime_ms = (shmbus__clock_mono_ns() - srv->start_ns) / 1000000u;
  (void)server_send(c, &r);
}

/* The largest snapshot the daemon builds (and a client accepts). */
#define SERVER_SNAPSHOT_MAX (64u << 20)

/* M4: a snapshot shows a uid only the topics it may subscribe to (the
 * owner and root see all), and who the participants are only where they
 * are of its own uid. */
static bool server_view_topic(void *ctx, const struct registry_topic *t) {
  struct client *c = ctx;
  char why[300];

  if (server_trusted(c->srv, c))
    return true;
  return server_permitted(c->srv, c, t->name, SHMBUS__WIRE_SUB, true, why, sizeof(why));
}

static bool server_view_part(void *ctx, const struct registry_part *p) {
  struct client *c = ctx;
  const struct client *o = p->owner;

  return server_trusted(c->srv, c) || (o != NULL && o->uid == c->uid);
}

/* Forgets the snapshot replies `c` has read: its socket holds nothing we
 * sent any more (SIOCOUTQ: the bytes of our datagrams it has not
 * received; the memory files they carry are pinned until then). */
static void server_unread_refresh(struct client *c) {
  int queued = 0;

  if (c->unread_snaps == 0 || c->dead)
    return;
  if (ioctl(c->fd, SIOCOUTQ, &queued) == 0 && queued == 0) {
    c->unread_snaps = 0;
    c->unread_bytes = 0;
  }
}

/* M5: how much `c` may leave unread. One client: at most `unread` replies;
 * one uid (not the owner nor root): at most `unread_bytes` of them over
 * all its connections. Returns true to go on; false after it answered. */
static bool server_unread_ok(struct server *srv, struct client *c, const struct shmbus__msg *m,
                             size_t len) {
  const struct config_limits *lim = config_limits(srv->cfg);
  uint64_t bytes = 0;
  struct client *o;

  server_unread_refresh(c);
  if (lim->unread != 0 && c->unread_snaps >= lim->unread) {
    log_notice("client %u (pid %d, %s): quota: %u snapshot replies unread (limit unread %llu)",
               c->id, (int)c->pid, c->name, c->unread_snaps, (unsigned long long)lim->unread);
    server_send_error(c, m->id, SHMBUS_EQUOTA,
                      "quota: %u snapshot replies sent to this client are still unread; the "
                      "daemon's limit \"unread\" is %llu: read them first",
                      c->unread_snaps, (unsigned long long)lim->unread);
    return false;
  }
  if (lim->unread_bytes == 0 || server_trusted(srv, c))
    return true;
  for (o = srv->clients; o != NULL; o = o->next)
    if (o->uid == c->uid) {
      server_unread_refresh(o);
      bytes += o->unread_bytes;
    }
  if (len > lim->unread_bytes || bytes > lim->unread_bytes - len) {
    log_notice("client %u (pid %d, uid %u, %s): quota: uid leaves %llu bytes of snapshots unread "
               "(limit unread_bytes %llu)",
               c->id, (int)c->pid, (unsigned)c->uid, c->name, (unsigned long long)bytes,
               (unsigned long long)lim->unread_bytes);
    server_send_error(c, m->id, SHMBUS_EQUOTA,
                      "quota: the connections of uid %u leave %llu bytes of snapshot replies "
                      "unread; this one needs %zu more; the daemon's limit \"unread_bytes\" is "
                      "%llu",
                      (unsigned)c->uid, (unsigned long long)bytes, len,
                      (unsigned long long)lim->unread_bytes);
    return false;
  }
  return true;
}

/* The largest snapshot the daemon builds (and a client accepts). */
#define SERVER_SNAPSHOT_MAX (64u << 20)
/* A snapshot costs one more request token per this many topics examined,
 * so that the rate limit bounds the daemon's work for it (M5). */
#define SERVER_SNAPSHOT_TOPICS_PER_TOKEN 256u

/* Answers `snapshot`: the stats map (stats_encode) for every topic or the
 * one named by `filter`, as this client may see them, too big for a
 * datagram, so it travels in a sealed memory file attached to the reply.
 * Built on demand: no timer. */
static void server_snapshot(struct server *srv, struct client *c, struct shmbus__msg *m) {
  const char *only = m->filter[0] != '\0' ? m->filter : NULL;
  struct stats_view view = {server_view_topic, server_view_part, c};
  struct registry_topic *t = only != NULL ? registry_find(&srv->reg, only) : NULL;
  struct shmbus__msg r;
  size_t cap = 64u * 1024u;
  unsigned char *buf = NULL;
  bool truncated = true;
  uint32_t n = 0;
  size_t len = 0;
  void *map;
  int fd = -1;
  int rv;

  if (only != NULL && (t == NULL || !server_view_topic(c, t))) {
    /* The same answer whether it does not exist or may not be seen. */
    server_send_error(c, m->id, -ENOENT, "no topic \"%s\" on this daemon that you may see", only);
    return;
  }
  if (only == NULL)
    c->tokens -= (double)(srv->reg.ntopics / SERVER_SNAPSHOT_TOPICS_PER_TOKEN);
  /* Encode into a heap buffer, doubling it until everything fits. */
  while (truncated && cap <= SERVER_SNAPSHOT_MAX) {
    unsigned char *nb = realloc(buf, cap);
    if (nb == NULL) {
      rv = -ENOMEM;
      goto fail;
    }
    buf = nb;
    len = stats_encode(&srv->reg, only, &view, buf, cap, &n, &truncated);
    cap *= 2;
  }
  if (!server_unread_ok(srv, c, m, len)) {
    free(buf);
    return;
  }
  if ((rv = shmbus__shm_create("shmbus-snapshot", len, &fd)) < 0)
    goto fail;
  if ((rv = shmbus__shm_map(fd, len, true, &map)) < 0)
    goto fail;
  memcpy(map, buf, len);
  shmbus__shm_unmap(map, len);
  shmbus__msg_init(&r, SHMBUS__MSG_SNAPSHOT_REPLY, m->id);
  r.size = len;
  r.fds[0] = fd;
  r.nfds = 1;
  if (server_send(c, &r) == 0) {
    c->unread_snaps++;
    c->unread_bytes += len;
  }
  shmbus__fd_close(fd);
  free(buf);
  return;

fail:
  log_warn("client %u (pid %d, %s): snapshot failed: %s", c->id, (int)c->pid, c->name,
           shmbus_strerror(rv));
  server_send_error(c, m->id, rv, "cannot build the snapshot: %s", shmbus_strerror(rv));
  shmbus__fd_close(fd);
  free(buf);
}

/* `shmbus topic rm` (M6): the topic loses its name and its retention. Its
 * creator's uid, the owner, root, and whoever a `remove` rule allows may.
 * Participants still attached keep their records and mappings and go on
 * among themselves; a later open of the name creates a new topic. */
static void server_remove(struct server *srv, struct client *c, struct shmbus__msg *m) {
  struct registry_topic *t;
  struct shmbus__msg ok;
  char why[300];
  uint32_t nparts;
  int rv;

  if ((rv = shmbus__topic_validate(m->topic, true)) < 0) {
    server_send_error(c, m->id, rv, "invalid topic name \"%s\"", m->topic);
    return;
  }
  t = registry_find(&srv->reg, m->topic);
  if (t == NULL || !server_view_topic(c, t)) {
    server_send_error(c, m->id, -ENOENT, "no topic \"%s\" on this daemon that you may see",
                      m->topic);
    return;
  }
  if (t->sys) {
    server_send_error(c, m->id, SHMBUS_EDENIED, "\"%s\" is the daemon's own topic", m->topic);
    return;
  }
  if (!(t->has_creator && t->creator_uid == (uint32_t)c->uid) &&
      !server_may(srv, c, m->topic, CONFIG_OP_REMOVE, false, why, sizeof(why))) {
    server_send_error(c, m->id, SHMBUS_EDENIED,
                      "remove \"%s\" denied by %s (its creator's uid, the owner, root, or a "
                      "`remove` rule may)",
                      m->topic, why);
    return;
  }
  nparts = t->n_pubs + t->n_subs;
  log_notice("client %u (pid %d, uid %u, %s): removed topic %s (%u participant(s) keep it until "
             "they close)",
             c->id, (int)c->pid, (unsigned)c->uid, c->name, t->name, nparts);
  (void)registry_remove(&srv->reg, t);
  shmbus__msg_init(&ok, SHMBUS__MSG_OK, m->id);
  (void)server_send(c, &ok);
}

static void server_stop_req(struct server *srv, struct client *c, struct shmbus__msg *m) {
  struct shmbus__msg ok;

  if (c->uid != srv->owner && c->uid != 0) {
    log_notice("client %u (pid %d, uid %u): stop refused", c->id, (int)c->pid, (unsigned)c->uid);
    server_send_error(c, m->id, SHMBUS_EDENIED, "only uid %u or root may stop this daemon",
                      (unsigned)srv->owner);
    return;
  }
  log_notice("client %u (pid %d, uid %u, %s) asked the daemon to stop", c->id, (int)c->pid,
             (unsigned)c->uid, c->name);
  shmbus__msg_init(&ok, SHMBUS__MSG_OK, m->id);
  (void)server_send(c, &ok);
  if (srv->on_stop != NULL)
    srv->on_stop(srv);
  else
    server_shutdown(srv);
}

/* Keeps the client's self-chosen name for the log, with anything that is
 * not printable ASCII replaced: it must not forge log lines. */
static void server_set_name(struct client *c, const char *name) {
  size_t i;

  for (i = 0; i + 1 < sizeof(c->name) && name[i] != '\0'; i++)
    c->name[i] = name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?';
  c->name[i] = '\0';
}

static void server_dispatch(struct server *srv, struct client *c, struct shmbus__msg *m) {
  bool request = m->type == SHMBUS__MSG_HELLO || m->type == SHMBUS__MSG_OPEN ||
                 m->type == SHMBUS__MSG_ADOPT || m->type == SHMBUS__MSG_CLOSE ||
                 m->type == SHMBUS__MSG_STATUS || m->type == SHMBUS__MSG_STOP ||
                 m->type == SHMBUS__MSG_SNAPSHOT || m->type == SHMBUS__MSG_REMOVE;

  if (!request) {
    server_violation(c, m->id, -EPROTO, "not a request a client may send");
    return;
  }
  if (m->id == 0) {
    server_violation(c, 0, -EPROTO, "a request needs a non-zero id");
    return;
  }
  if (!server_rate_ok(srv, c, m))
    return;
  /* Events owed go first, so that a reply does not overtake them (a
   * client that has its reply then knows its peers). */
  if (c->writable)
    (void)server_flush_peers(c);
  /* The decoder enforces the descriptor count of each type; checked here
   * again because the handlers index m->fds by it. */
  if (m->nfds != shmbus__msg_fd_count(m->type, m->role)) {
    server_violation(c, m->id, -EPROTO, "wrong number of descriptors for the message type");
    return;
  }
  if (!c->hello) {
    if (m->type != SHMBUS__MSG_HELLO) {
      server_violation(c, m->id, SHMBUS_ESTATE, "the first message must be hello");
      return;
    }
    struct shmbus__msg w;
    c->hello = true;
    srv->nohello--;
    server_set_name(c, m->name);
    log_debug("client %u (pid %d, uid %u): hello from \"%s\"", c->id, (int)c->pid, (unsigned)c->uid,
              c->name);
    shmbus__msg_init(&w, SHMBUS__MSG_WELCOME, m->id);
    w.client_id = c->id;
    w.daemon_pid = (uint32_t)getpid();
    (void)server_send(c, &w);
    return;
  }
  switch (m->type) {
  case SHMBUS__MSG_HELLO:
    server_violation(c, m->id, SHMBUS_ESTATE, "hello was already sent");
    break;
  case SHMBUS__MSG_OPEN:
    server_open(srv, c, m);
    break;
  case SHMBUS__MSG_ADOPT:
    server_adopt(srv, c, m);
    break;
  case SHMBUS__MSG_CLOSE:
    server_close_req(srv, c, m);
    break;
  case SHMBUS__MSG_STATUS:
    server_status(srv, c, m);
    break;
  case SHMBUS__MSG_STOP:
    server_stop_req(srv, c, m);
    break;
  case SHMBUS__MSG_SNAPSHOT:
    server_snapshot(srv, c, m);
    break;
  case SHMBUS__MSG_REMOVE:
    server_remove(srv, c, m);
    break;
  default:
    break;
  }
}

/* ---- client sockets ------------------------------------------------- */

static void server_on_client(uv_poll_t *h, int status, int events);

/* Watches a client's socket for requests, and also for room when it is
 * owed peer events. */
static void server_watch(struct client *c, bool writable) {
  int rv;

  if (c->dead || c->writable == writable)
    return;
  c->writable = writable;
  rv = uv_poll_start(&c->poll, UV_READABLE | UV_DISCONNECT | (writable ? UV_WRITABLE : 0),
                     server_on_client);
  if (rv < 0) {
    log_warn("client %u (pid %d, %s): cannot watch its socket: %s", c->id, (int)c->pid, c->name,
             uv_strerror(rv));
    server_kill(c, NULL);
  }
}

static void server_on_client(uv_poll_t *h, int status, int events) {
  struct client *c = h->data;
  struct server *srv = c->srv;
  int i;

  if (status < 0) {
    /* libuv reports EPOLLERR as UV_EBADF: the socket has an error, most
     * often the client went away with messages it never read. Say that,
     * with the socket's own error, rather than "bad file descriptor". */
    int err = 0;
    socklen_t len = sizeof(err);
    char why[128];
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
      err = 0;
    if (err == ECONNRESET || (err == 0 && status == UV_EBADF))
      snprintf(why, sizeof(why), "connection closed (it went away with messages it had not read)");
    else if (err != 0)
      snprintf(why, sizeof(why), "connection error: %s", strerror(err));
    else
      snprintf(why, sizeof(why), "connection error: %s", uv_strerror(status));
    server_kill(c, why);
    server_reap(srv);
    return;
  }
  if ((events & UV_WRITABLE) && c->writable)
    (void)server_flush_peers(c);
  /* Readable or hung up: recv tells which. */
  for (i = 0; i < SERVER_BATCH && !c->dead && !srv->stopping; i++) {
    struct shmbus__msg m;
    int rv;

    shmbus__msg_init(&m, SHMBUS__MSG_NONE, 0);
    rv = shmbus__proto_recv(c->fd, &m);
    if (rv == -EAGAIN)
      break;
    if (rv == -EPROTO) {
      server_violation(c, 0, -EPROTO, "malformed message");
      break;
    }
    if (rv == SHMBUS_EPROTOVER) {
      /* The decoder read the id when it could: echo it. */
      server_violation(c, m.id, SHMBUS_EPROTOVER, "this daemon speaks protocol version 1");
      break;
    }
    if (rv < 0) {
      server_kill(c, rv == -EPIPE        ? "connection closed"
                     : rv == -ECONNRESET ? "connection closed (it went away with messages it "
                                           "had not read)"
                                         : shmbus_strerror(rv));
      break;
    }
    server_dispatch(srv, c, &m);
    shmbus__msg_close_fds(&m); /* whatever the handler did not take */
  }
  server_reap(srv);
}

/* Releases the records of every client that died during this event. A
 * release may send peer events that kill more clients: loop until none. */
static void server_reap(struct server *srv) {
  while (srv->kill_list != NULL && !srv->stopping) {
    struct client *c = srv->kill_list;
    srv->kill_list = c->kill_next;
    c->kill_next = NULL;
    while (c->parts != NULL) {
      struct registry_part *p = c->parts;
      server_client_remove_part(c, p);
      server_part_leave(srv, p);
    }
    server_close_client(c);
  }
}

/* Refuses a connection we cannot serve: tells why when possible, closes. */
static void server_refuse(int fd, int code, const char *text) {
  struct shmbus__msg m;

  shmbus__msg_init(&m, SHMBUS__MSG_ERROR, 0);
  m.code = code;
  snprintf(m.text, sizeof(m.text), "%s", text);
  (void)shmbus__proto_send(fd, &m);
  shmbus__fd_close(fd);
}

/* How many clients the daemon serves at most: the `clients` limit, below
 * the hard cap and below half the descriptors it may open (each client
 * costs its socket plus the eventfds of its records and the memory files
 * of the topics it creates). */
static uint64_t server_max_clients(const struct server *srv) {
  uint64_t cap = config_limits(srv->cfg)->clients;
  uint64_t nofile = server_nofile();

  if (cap == 0 || cap > SERVER_MAX_CLIENTS)
    cap = SERVER_MAX_CLIENTS;
  if (nofile != 0 && cap > nofile / 2)
    cap = nofile / 2;
  return cap != 0 ? cap : 1;
}

/* M7: admission. The last `reserved` connection slots are kept for the
 * owner and root, so that nobody else can lock them out (their `daemon
 * status` must work); on the system bus, one other uid may hold at most
 * `connections`. Returns 0, or an error code with a sentence in `text`
 * (which the refused client receives). */
static int server_admit(struct server *srv, const struct ucred *cred, char *text, size_t textlen) {
  const struct config_limits *lim = config_limits(srv->cfg);
  uint64_t cap = server_max_clients(srv);
  uint64_t reserved = lim->reserved < cap ? lim->reserved : cap - 1;
  bool trusted = cred->uid == srv->owner || cred->uid == 0;
  uint64_t n = 0;
  struct client *c;

  if (srv->nclients >= cap) {
    log_warn("connection from pid %d uid %u refused: %zu clients, the limit (clients %llu, "
             "RLIMIT_NOFILE %llu)",
             (int)cred->pid, (unsigned)cred->uid, srv->nclients, (unsigned long long)cap,
             (unsigned long long)server_nofile());
    snprintf(text, textlen,
             "the daemon serves %zu clients, its limit (\"clients\", or half its "
             "RLIMIT_NOFILE of %llu)",
             srv->nclients, (unsigned long long)server_nofile());
    return -EMFILE;
  }
  if (trusted)
    return 0;
  if (srv->nclients >= cap - reserved) {
    log_notice("connection from pid %d uid %u refused: %zu clients; the last %llu slots are kept "
               "for uid %u and root (limit reserved)",
               (int)cred->pid, (unsigned)cred->uid, srv->nclients, (unsigned long long)reserved,
               (unsigned)srv->owner);
    snprintf(text, textlen,
             "quota: the daemon serves %zu clients; its last %llu connections (limit "
             "\"reserved\") are kept for its owner and root",
             srv->nclients, (unsigned long long)reserved);
    return SHMBUS_EQUOTA;
  }
  if (!srv->system || lim->connections == 0)
    return 0;
  for (c = srv->clients; c != NULL; c = c->next)
    if (c->uid == cred->uid && !c->dead)
      n++;
  if (n < lim->connections)
    return 0;
  log_notice("connection from pid %d uid %u refused: quota: %llu connections (limit connections "
             "%llu)",
             (int)cred->pid, (unsigned)cred->uid, (unsigned long long)n,
             (unsigned long long)lim->connections);
  snprintf(text, textlen,
           "quota: uid %u has %llu connections to the system bus (limit \"connections\")",
           (unsigned)cred->uid, (unsigned long long)n);
  return SHMBUS_EQUOTA;
}

static void server_accept_one(struct server *srv, int fd) {
  struct ucred cred;
  socklen_t len = sizeof(cred);
  struct client *c;
  int sndbuf = SERVER_SNDBUF;
  char text[SHMBUS__TEXT_MAX + 1];
  int rv;

  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred)) {
    log_warn("accept: SO_PEERCRED failed: %s", strerror(errno));
    shmbus__fd_close(fd);
    return;
  }
  if (!srv->system && cred.uid != srv->owner && cred.uid != 0) {
    log_notice("connection from pid %d uid %u refused: this is the per-user bus of uid %u",
               (int)cred.pid, (unsigned)cred.uid, (unsigned)srv->owner);
    server_refuse(fd, SHMBUS_EDENIED, "this is a per-user bus of another user");
    return;
  }
  if ((rv = server_admit(srv, &cred, text, sizeof(text))) < 0) {
    server_refuse(fd, rv, text);
    return;
  }
  /* Best effort: a larger send buffer absorbs bursts of peer events. */
  (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
  if ((c = calloc(1, sizeof(*c))) == NULL) {
    server_refuse(fd, -ENOMEM, "out of memory");
    return;
  }
  c->srv = srv;
  c->fd = fd;
  c->pid = cred.pid;
  c->uid = cred.uid;
  c->gid = cred.gid;
  c->tokens = (double)config_limits(srv->cfg)->burst;
  c->tokens_ns = shmbus__clock_mono_ns();
  c->accepted_ns = c->tokens_ns;
  c->id = srv->next_client_id++;
  if (srv->next_client_id == 0)
    srv->next_client_id = 1;
  snprintf(c->name, sizeof(c->name), "?");
  if ((rv = uv_poll_init(srv->loop, &c->poll, fd)) < 0) {
    log_warn("accept: cannot watch a client socket: %s", uv_strerror(rv));
    free(c);
    server_refuse(fd, -ENOMEM, "cannot watch the connection");
    return;
  }
  c->poll.data = c;
  c->next = srv->clients;
  if (srv->clients != NULL)
    srv->clients->prev = c;
  srv->clients = c;
  srv->nclients++;
  srv->nohello++;
  server_schedule_hello(srv);
  if ((rv = uv_poll_start(&c->poll, UV_READABLE | UV_DISCONNECT, server_on_client)) < 0) {
    log_warn("accept: cannot watch a client socket: %s", uv_strerror(rv));
    server_kill(c, NULL);
    return;
  }
  log_debug("client %u connected: pid %d uid %u gid %u", c->id, (int)c->pid, (unsigned)c->uid,
            (unsigned)c->gid);
}

static void server_pause_accept(struct server *srv);

static void server_on_listen(uv_poll_t *h, int status, int events) {
  struct server *srv = h->data;
  int i;

  (void)events;
  if (status < 0) {
    log_err("listening socket: %s", uv_strerror(status));
    return;
  }
  for (i = 0; i < SERVER_BATCH && !srv->stopping; i++) {
    int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      server_accept_one(srv, fd);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      break;
    if (errno == EMFILE || errno == ENFILE) {
      /* Out of descriptors. The listening socket would stay readable and
       * the loop spin: give the spare descriptor back, take the
       * connection, close it (the client sees the daemon hang up), and
       * keep the spare again. Without a spare, stop accepting for a
       * second. */
      log_warn("out of file descriptors (RLIMIT_NOFILE %llu, %zu clients): refusing a connection",
               (unsigned long long)server_nofile(), srv->nclients);
      if (srv->spare_fd >= 0) {
        shmbus__fd_close(srv->spare_fd);
        fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        bool took = fd >= 0;
        if (took) {
          /* Tell it why before closing (server_refuse closes fd). */
          char text[SHMBUS__TEXT_MAX + 1];
          snprintf(text, sizeof(text),
                   "the daemon is out of file descriptors (RLIMIT_NOFILE %llu); try later",
                   (unsigned long long)server_nofile());
          server_refuse(fd, -EMFILE, text);
        }
        srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (took && srv->spare_fd >= 0)
          continue;
      }
      server_pause_accept(srv);
      break;
    }
    log_err("accept: %s", strerror(errno));
    server_pause_accept(srv);
    break;
  }
  server_reap(srv);
}

static void server_on_resume(uv_timer_t *t) {
  struct server *srv = t->data;

  if (srv->spare_fd < 0)
    srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (!srv->stopping)
    (void)uv_poll_start(&srv->listen_poll, UV_READABLE, server_on_listen);
}

/* Stops accepting for a second (accept keeps failing: do not spin). */
static void server_pause_accept(struct server *srv) {
  (void)uv_poll_stop(&srv->listen_poll);
  (void)uv_timer_start(&srv->accept_timer, server_on_resume, 1000, 0);
}

/* ---- lifecycle ------------------------------------------------------ */

int server_init(struct server *srv, uv_loop_t *loop, int listen_fd, const char *sock_path,
                bool system, struct config *cfg, const char *config_path, bool config_default) {
  int rv;

  memset(srv, 0, sizeof(*srv));
  srv->loop = loop;
  srv->listen_fd = listen_fd;
  srv->spare_fd = -1;
  snprintf(srv->sock_path, sizeof(srv->sock_path), "%s", sock_path);
  srv->system = system;
  srv->owner = geteuid();
  srv->cfg = cfg;
  srv->config_path = config_path;
  srv->config_default = config_default;
  srv->next_client_id = 1;
  srv->start_ns = shmbus__clock_mono_ns();
  if ((rv = registry_init(&srv->reg)) < 0)
    return rv;
  srv->reg.on_drop = server_on_drop;
  srv->reg.on_tampered = server_on_tampered;
  srv->reg.drop_ctx = srv;
  if ((rv = stats_init(&srv->stats, loop, &srv->reg)) < 0) {
    log_err("cannot create %s: %s", STATS_TOPIC, shmbus_strerror(rv));
    return rv;
  }
  if ((rv = uv_timer_init(loop, &srv->repair_timer)) < 0)
    return rv;
  srv->repair_timer.data = srv;
  srv->repair_init = true;
  if ((rv = uv_idle_init(loop, &srv->repair_idle)) < 0)
    return rv;
  srv->repair_idle.data = srv;
  srv->repair_idle_init = true;
  if ((rv = uv_timer_init(loop, &srv->sweep_timer)) < 0)
    return rv;
  srv->sweep_timer.data = srv;
  srv->sweep_init = true;
  if ((rv = uv_timer_init(loop, &srv->hello_timer)) < 0)
    return rv;
  srv->hello_timer.data = srv;
  srv->hello_init = true;
  if ((rv = uv_timer_init(loop, &srv->reconcile_timer)) < 0)
    return rv;
  srv->reconcile_timer.data = srv;
  srv->reconcile_init = true;
  (void)uv_timer_start(&srv->reconcile_timer, server_on_reconcile, SERVER_RECONCILE_MS,
                       SERVER_RECONCILE_MS);
  if ((rv = uv_timer_init(loop, &srv->accept_timer)) < 0)
    return rv;
  srv->accept_timer.data = srv;
  srv->accept_init = true;
  srv->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if ((rv = uv_poll_init(loop, &srv->listen_poll, listen_fd)) < 0)
    return rv;
  srv->listen_poll.data = srv;
  srv->listen_init = true;
  if ((rv = uv_poll_start(&srv->listen_poll, UV_READABLE, server_on_listen)) < 0)
    return rv;
  return 0;
}

int server_apply_limits(const struct server *srv, struct config *cfg, char *err, size_t errlen) {
  size_t i;
  int rv;

  for (i = 0; i < srv->nlimit_args; i++)
    if ((rv = config_limit_override(cfg, srv->limit_args[i], err, errlen)) < 0)
      return rv;
  return 0;
}

void server_reload(struct server *srv) {
  struct config *cfg = NULL;
  char err[512];
  int rv;

  if (srv->config_path == NULL) {
    log_info("reload: no config file (default policy: only uid %u and root)", (unsigned)srv->owner);
    return;
  }
  rv = config_load(srv->config_path, srv->owner, &cfg, err, sizeof(err));
  if (rv == -ENOENT && srv->config_default) {
    if ((cfg = config_new_default(srv->owner)) == NULL) {
      log_err("reload: out of memory; keeping the current rules");
      return;
    }
    log_notice("reload: %s does not exist; default policy (only root) applies", srv->config_path);
  } else if (rv < 0) {
    log_err("reload: %s; keeping the current rules", err);
    return;
  } else {
    log_notice("reload: %zu rule(s) from %s", config_rule_count(cfg), srv->config_path);
  }
  if (server_apply_limits(srv, cfg, err, sizeof(err)) < 0) {
    log_err("reload: %s; keeping the current rules", err);
    config_free(cfg);
    return;
  }
  config_free(srv->cfg);
  srv->cfg = cfg;
}

void server_shutdown(struct server *srv) {
  struct client *c;

  if (srv->stopping)
    return;
  srv->stopping = true;
  if (srv->listen_init && !uv_is_closing((uv_handle_t *)&srv->listen_poll))
    uv_close((uv_handle_t *)&srv->listen_poll, NULL);
  /* Remove the name first, so that no new client finds a socket nobody
   * accepts on; we still hold the lock, so it is ours to remove. */
  if (srv->sock_path[0] != '\0' && unlink(srv->sock_path) != 0 && errno != ENOENT)
    log_warn("cannot remove %s: %s", srv->sock_path, strerror(errno));
  /* Clients keep their records: they adopt them into the next daemon. */
  srv->kill_list = NULL;
  while ((c = srv->clients) != NULL) {
    c->dead = true;
    server_close_client(c);
  }
  stats_close(&srv->stats);
  if (srv->repair_init && !uv_is_closing((uv_handle_t *)&srv->repair_timer))
    uv_close((uv_handle_t *)&srv->repair_timer, NULL);
  if (srv->repair_idle_init && !uv_is_closing((uv_handle_t *)&srv->repair_idle))
    uv_close((uv_handle_t *)&srv->repair_idle, NULL);
  if (srv->sweep_init && !uv_is_closing((uv_handle_t *)&srv->sweep_timer))
    uv_close((uv_handle_t *)&srv->sweep_timer, NULL);
  if (srv->hello_init && !uv_is_closing((uv_handle_t *)&srv->hello_timer))
    uv_close((uv_handle_t *)&srv->hello_timer, NULL);
  if (srv->reconcile_init && !uv_is_closing((uv_handle_t *)&srv->reconcile_timer))
    uv_close((uv_handle_t *)&srv->reconcile_timer, NULL);
  if (srv->accept_init && !uv_is_closing((uv_handle_t *)&srv->accept_timer))
    uv_close((uv_handle_t *)&srv->accept_timer, NULL);
}

void server_free(struct server *srv) {
  registry_free(&srv->reg);
  free(srv->uids);
  srv->uids = NULL;
  srv->nuids = 0;
  config_free(srv->cfg);
  srv->cfg = NULL;
  shmbus__fd_close(srv->listen_fd);
  srv->listen_fd = -1;
  shmbus__fd_close(srv->spare_fd);
  srv->spare_fd = -1;
}
