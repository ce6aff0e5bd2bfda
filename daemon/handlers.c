/* handlers: one function per request a participant may send (docs/
 * protocol.md): hello, open, adopt, close, status, snapshot, remove, stop,
 * watch and unwatch.
 * See handlers.h. */
#include "handlers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "faults.h"
#include "layout.h"
#include "log.h"
#include "membership.h"
#include "peers.h"
#include "platform/platform.h"
#include "proto.h"
#include "quota.h"
#include "shmbus/error.h"
#include "timers.h"
#include "watch.h"

/* The most topics the daemon holds. */
#define HANDLERS_MAX_TOPICS 65536u

static const char *handlers_role_name(uint32_t role) {
  return role == SHMBUS__ROLE_PUB ? "pub" : "sub";
}

/* The participant's process id, for the log. */
static int handlers_pid(const struct participant *p) {
  return (int)host_peer_pid(&p->peer);
}

/* Checks what open and adopt have in common: role, name, the $sys rule,
 * the eventfd, the permission. Returns true to go on; false after it
 * answered (error, or violation and disconnect). */
static bool handlers_check(struct server *srv, struct participant *p, struct shmbus__msg *m,
                           shmbus__event_handle eventfd) {
  const struct config_limits *lim = config_limits(srv->cfg);
  char text[SHMBUS__TEXT_MAX + 1];
  char why[300];
  int rv;

  if (m->role != SHMBUS__ROLE_PUB && m->role != SHMBUS__ROLE_SUB) {
    participant_violation(p, m->id, -EPROTO, "role must be \"pub\" or \"sub\"");
    return false;
  }
  if ((rv = shmbus__topic_validate(m->topic, true)) < 0) {
    participant_error(p, m->id, rv, "invalid topic name \"%s\"", m->topic);
    return false;
  }
  if (strncmp(m->topic, "$sys/", 5) == 0 && m->role == SHMBUS__ROLE_PUB) {
    participant_log(p, LOG_NOTICE, "publishing to %s refused", m->topic);
    participant_error(p, m->id, SHMBUS_EDENIED,
                      "$sys/ topics are published by the daemon only; subscribe instead");
    return false;
  }
  /* The eventfd is written by the daemon (wake-ups) and passed to peers:
   * it must really be one, and non-blocking so a write never waits. */
  if (!shmbus__event_check(eventfd) || !host_fd_nonblocking(eventfd)) {
    participant_error(p, m->id, -EINVAL, "the descriptor passed must be a non-blocking eventfd");
    return false;
  }
  if (!access_role(srv, p, m->topic, m->role, false, why, sizeof(why))) {
    participant_error(p, m->id, SHMBUS_EDENIED, "%s on \"%s\" denied by %s",
                      handlers_role_name(m->role), m->topic, why);
    return false;
  }
  if ((rv = quota_records(lim, p->nparts, text, sizeof(text))) < 0) {
    participant_log(p, LOG_NOTICE, "%s", text);
    participant_error(p, m->id, rv, "%s", text);
    return false;
  }
  return true;
}

/* The bytes of the region `p` describes (data + one member file); 0 when the
 * parameters are invalid (registry_create says so then). */
static uint64_t handlers_region_bytes(const struct shmbus__params *p) {
  struct shmbus__layout l;

  if (shmbus__layout_compute(p, shmbus__page_size(), &l) < 0)
    return 0;
  return l.data_size + l.member_size;
}

/* Checks the limits on creating a topic with parameters `want` for `p`:
 * the maximum region size, its topic and memory quotas, and its uid's
 * retained quotas for a retained topic (unless trusted). Returns true to
 * go on; false after it answered with an error. */
static bool handlers_may_create(struct server *srv, struct participant *p,
                                const struct shmbus__msg *m, const struct shmbus__params *want) {
  struct quota_create q = {m->topic,
                           handlers_region_bytes(want),
                           want->slot_count,
                           want->slot_capacity,
                           want->max_subs,
                           want->max_pubs,
                           &p->usage,
                           NULL,
                           p->uid};
  char text[SHMBUS__TEXT_MAX + 1];
  int rv;

  if (m->retain && !access_trusted(srv, p->uid)) {
    /* Retained topics outlive the connection: charged to the uid. */
    struct server_account *u = server_account(srv, p->uid);
    if (u == NULL) {
      participant_error(p, m->id, -ENOMEM, "out of memory");
      return false;
    }
    q.uid = &u->usage;
  }
  if ((rv = quota_create(config_limits(srv->cfg), &q, text, sizeof(text))) < 0) {
    participant_log(p, LOG_NOTICE, "%s", text);
    participant_error(p, m->id, rv, "%s", text);
    return false;
  }
  return true;
}

/* The token bucket of control messages (quota_rate_take). Returns true to
 * handle the request; false after it refused it (and disconnected a
 * participant that floods). */
static bool handlers_rate_ok(struct server *srv, struct participant *p,
                             const struct shmbus__msg *m) {
  char text[SHMBUS__TEXT_MAX + 1];

  switch (quota_rate_take(&p->bucket, config_limits(srv->cfg), shmbus__clock_mono_ns(), text,
                          sizeof(text))) {
  case QUOTA_RATE_OK:
    return true;
  case QUOTA_RATE_FLOOD:
    participant_log(p, LOG_WARNING, "%s", text);
    participant_error(p, m->id, SHMBUS_EQUOTA, "%s", text);
    participant_kill(p, NULL);
    return false;
  case QUOTA_RATE_REFUSED_FIRST: /* once per episode */
    participant_log(p, LOG_NOTICE, "%s", text);
    break;
  case QUOTA_RATE_REFUSED:
    break;
  }
  participant_error(p, m->id, SHMBUS_EQUOTA, "%s", text);
  return false;
}

static void handlers_open(struct server *srv, struct participant *p, struct shmbus__msg *m) {
  struct shmbus__params want = {REGISTRY_DEFAULT_SLOTS, REGISTRY_DEFAULT_SLOT_SIZE,
                                REGISTRY_DEFAULT_MAX_SUBS, REGISTRY_DEFAULT_MAX_PUBS};
  struct registry_topic *t;
  struct registry_part *part;
  bool created = false;
  int rv;

  if (!handlers_check(srv, p, m, m->fds[0]))
    return;
  if (m->has & SHMBUS__HAS_PARAMS)
    want = m->params;
  if ((t = registry_find(&srv->reg, m->topic)) == NULL) {
    if (strncmp(m->topic, "$sys/", 5) == 0) {
      participant_error(p, m->id, -ENOENT, "\"%s\" is not a topic of this daemon", m->topic);
      return;
    }
    if (srv->reg.ntopics >= HANDLERS_MAX_TOPICS) {
      participant_error(p, m->id, -ENOSPC, "the daemon has %u topics, the limit",
                        HANDLERS_MAX_TOPICS);
      return;
    }
    {
      char why[300];
      /* M6: using a topic is not creating it. Creating chooses the
       * parameters everyone must then use, and retaining keeps the memory
       * after everyone left: each needs its own permission. */
      if (!access_may(srv, p, m->topic, CONFIG_OP_CREATE, false, why, sizeof(why))) {
        participant_error(p, m->id, SHMBUS_EDENIED,
                          "topic \"%s\" does not exist and this uid may not create it (denied "
                          "by %s); it is created by one allowed to (its publishers, by default)",
                          m->topic, why);
        return;
      }
      if (m->retain && !access_may(srv, p, m->topic, CONFIG_OP_RETAIN, false, why, sizeof(why))) {
        participant_error(p, m->id, SHMBUS_EDENIED,
                          "this uid may not create \"%s\" retained (denied by %s)", m->topic, why);
        return;
      }
    }
    if (!handlers_may_create(srv, p, m, &want))
      return;
    rv = registry_create(&srv->reg, m->topic, &want, m->retain, false, &t);
    if (rv < 0) {
      if (rv == SHMBUS_EPARAM)
        participant_error(p, m->id, rv,
                          "invalid parameters slots=%u slot_size=%u max_subs=%u max_pubs=%u "
                          "(slots a power of two in 2..2^24, slot_size 1..64 MiB, max_subs "
                          "1..4096, max_pubs 1..1024, region at most 64 GiB)",
                          want.slot_count, want.slot_capacity, want.max_subs, want.max_pubs);
      else if (rv == -EMFILE || rv == -ENFILE)
        participant_error(p, m->id, rv,
                          "cannot create topic \"%s\": the daemon is out of file descriptors "
                          "(RLIMIT_NOFILE %llu)",
                          m->topic, (unsigned long long)host_nofile_limit());
      else if (rv == -ENOMEM || rv == -ENOSPC || rv == -EFBIG)
        participant_error(p, m->id, rv,
                          "cannot create topic \"%s\": the system has no room for its %llu "
                          "bytes of shared memory (%s)",
                          m->topic, (unsigned long long)handlers_region_bytes(&want),
                          shmbus_strerror(rv));
      else
        participant_error(p, m->id, rv, "cannot create topic \"%s\": %s", m->topic,
                          shmbus_strerror(rv));
      if (rv != SHMBUS_EPARAM)
        log_warn("topic %s: cannot create: %s", m->topic, shmbus_strerror(rv));
      return;
    }
    created = true;
    t->creator_id = p->id;
    t->creator_uid = p->uid;
    t->has_creator = true;
    p->usage.topics++;
    p->usage.bytes += t->bytes;
    if (m->retain && !access_trusted(srv, p->uid)) {
      struct server_account *u = server_account(srv, p->uid); /* exists: handlers_may_create */
      if (u != NULL) {
        u->usage.topics++;
        u->usage.bytes += t->bytes;
        t->uid_charged = true;
      }
    }
    FAULT_POINT(FAULT_OPEN_AFTER_CREATE);
    log_info("topic %s: created by client %u (pid %d): slots=%u slot_size=%u max_subs=%u "
             "max_pubs=%u%s",
             t->name, p->id, handlers_pid(p), want.slot_count, want.slot_capacity, want.max_subs,
             want.max_pubs, m->retain ? ", retained" : "");
  } else if ((m->has & SHMBUS__HAS_PARAMS) && !registry_params_equal(&want, &t->params)) {
    participant_error(p, m->id, SHMBUS_EMISMATCH,
                      "topic \"%s\" exists with slots=%u slot_size=%u max_subs=%u max_pubs=%u; "
                      "the open asked for slots=%u slot_size=%u max_subs=%u max_pubs=%u",
                      t->name, t->params.slot_count, t->params.slot_capacity, t->params.max_subs,
                      t->params.max_pubs, want.slot_count, want.slot_capacity, want.max_subs,
                      want.max_pubs);
    return;
  }
  rv = registry_attach(&srv->reg, t, m->role, m->reliable, m->history,
                       quota_deadline(membership_deadline_cap(srv), m->deadline_ms),
                       (uint32_t)handlers_pid(p), p->uid, m->fds[0], &part);
  if (rv < 0) {
    if (rv == SHMBUS_ENOSLOT)
      participant_error(p, m->id, rv, "topic \"%s\" has no free %s record (max_%s %u)", t->name,
                        m->role == SHMBUS__ROLE_PUB ? "publisher" : "subscriber",
                        m->role == SHMBUS__ROLE_PUB ? "pubs" : "subs",
                        m->role == SHMBUS__ROLE_PUB ? t->params.max_pubs : t->params.max_subs);
    else if (rv == SHMBUS_ELIMIT)
      participant_error(p, m->id, rv,
                        "topic \"%s\" has participants of %u uids already, the most one topic "
                        "can have",
                        t->name, SHMBUS__MAX_MEMBERS);
    else if (rv == SHMBUS_ESTATE)
      participant_error(p, m->id, rv,
                        "topic \"%s\" was adopted from subscribers only after a restart; "
                        "publishers can open it once one of its publishers reconnected",
                        t->name);
    else
      participant_error(p, m->id, rv, "cannot attach a record: %s", shmbus_strerror(rv));
    if (created)
      (void)registry_maybe_drop(&srv->reg, t);
    return;
  }
  m->fds[0] = SHMBUS__OS_HANDLE_INVALID; /* the part owns the eventfd now */
  participant_add_part(p, part);
  log_debug("topic %s: client %u (pid %d) opened %s record %u%s", t->name, p->id, handlers_pid(p),
            handlers_role_name(part->role), part->index, part->reliable ? " (reliable)" : "");
  membership_join(srv, p, m->id, part);
}

static void handlers_adopt(struct server *srv, struct participant *p, struct shmbus__msg *m) {
  struct registry_topic *t;
  struct registry_part *part;
  char text[SHMBUS__TEXT_MAX + 1];
  int rv;

  if (!handlers_check(srv, p, m, m->fds[2]))
    return;
  /* Adopting an unknown topic creates it from the region the client
   * passes, and whoever made that region can write its slots. On the
   * system bus, where clients are different users, only one allowed to
   * create it may do that (by default its publishers); subscribers adopt
   * after it. */
  if (srv->system && registry_find(&srv->reg, m->topic) == NULL &&
      !access_may(srv, p, m->topic, CONFIG_OP_CREATE, true, text, sizeof(text))) {
    participant_error(p, m->id, SHMBUS_EDENIED,
                      "\"%s\" is not known yet and this uid may not create it (%s): after a "
                      "restart it is re-created by one that may (its publishers, by default); "
                      "adopt again once one has",
                      m->topic, text);
    return;
  }
  text[0] = '\0';
  rv = registry_adopt(&srv->reg, m->topic, m->role, p->uid, &m->fds[0], &m->fds[1],
                      (m->has & SHMBUS__HAS_PARAMS) ? &m->params : NULL, shmbus__clock_mono_ns(),
                      &t, text, sizeof(text));
  if (rv < 0) {
    participant_log(p, LOG_NOTICE, "adopt of %s refused: %s", m->topic, text);
    participant_error(p, m->id, rv, "%s", text);
    return;
  }
  timers_schedule_sweep(srv);
  rv = registry_register(&srv->reg, t, m->role, m->index, (uint32_t)handlers_pid(p), m->fds[2],
                         &part, text, sizeof(text));
  if (rv < 0) {
    participant_log(p, LOG_NOTICE, "adopt of %s refused: %s", m->topic, text);
    participant_error(p, m->id, rv, "%s", text);
    (void)registry_maybe_drop(&srv->reg, t);
    return;
  }
  m->fds[2] = SHMBUS__OS_HANDLE_INVALID;
  /* Its own uid's member file, which the adopt just passed (or an earlier
   * one of the same uid did). A subscriber's record must lie in it. */
  rv = registry_member(t, p->uid);
  if (rv < 0 || (part->role == SHMBUS__ROLE_SUB && part->member != (uint32_t)rv)) {
    char who[HOST_UID_TEXT_MAX];
    host_uid_text(p->uid, who, sizeof(who));
    participant_error(p, m->id, SHMBUS_EDENIED, "record %u is not in the member file of %s",
                      part->index, who);
    (void)registry_detach(&srv->reg, part);
    (void)registry_maybe_drop(&srv->reg, t);
    return;
  }
  part->member = (uint32_t)rv;
  part->uid = p->uid;
  participant_add_part(p, part);
  log_info("topic %s: client %u (pid %d) adopted %s record %u", t->name, p->id, handlers_pid(p),
           handlers_role_name(part->role), part->index);
  membership_join(srv, p, m->id, part);
}

static void handlers_close(struct server *srv, struct participant *p, struct shmbus__msg *m) {
  struct registry_part *part;
  struct shmbus__msg ok;

  for (part = p->parts; part != NULL; part = part->owner_next)
    if (part->topic->topic_id == m->topic_id && part->role == m->role && part->index == m->index)
      break;
  if (part == NULL) {
    participant_error(p, m->id, -ENOENT, "this client holds no %s record %u on topic %u",
                      handlers_role_name(m->role), m->index, m->topic_id);
    return;
  }
  participant_remove_part(p, part);
  membership_leave(srv, part);
  shmbus__msg_init(&ok, SHMBUS__MSG_OK, m->id);
  (void)participant_send(p, &ok);
}

static void handlers_status(struct server *srv, struct participant *p, struct shmbus__msg *m) {
  struct shmbus__msg r;

  shmbus__msg_init(&r, SHMBUS__MSG_STATUS_REPLY, m->id);
  r.daemon_pid = (uint32_t)host_self_pid();
  r.topics = (uint32_t)srv->reg.ntopics;
  r.clients = (uint32_t)srv->nparticipants;
  r.uptime_ms = (shmbus__clock_mono_ns() - srv->start_ns) / 1000000u;
  (void)participant_send(p, &r);
}

/* M5: how much `p` may leave unread. One participant: at most `unread`
 * replies; one uid (not the owner nor root): at most `unread_bytes` of
 * them over all its connections. Returns true to go on; false after it
 * answered. */
static bool handlers_unread_ok(struct server *srv, struct participant *p,
                               const struct shmbus__msg *m, size_t len) {
  const struct config_limits *lim = config_limits(srv->cfg);
  char text[SHMBUS__TEXT_MAX + 1];
  uint64_t bytes = 0;
  struct participant *o;
  int rv;

  participant_unread_refresh(p);
  rv = quota_unread(lim, p->unread_snaps, text, sizeof(text));
  if (rv == 0 && lim->unread_bytes != 0 && !access_trusted(srv, p->uid)) {
    for (o = srv->participants; o != NULL; o = o->next)
      if (o->uid == p->uid) {
        participant_unread_refresh(o);
        bytes += o->unread_bytes;
      }
    rv = quota_unread_bytes(lim, p->uid, bytes, len, text, sizeof(text));
  }
  if (rv < 0) {
    participant_log(p, LOG_NOTICE, "%s", text);
    participant_error(p, m->id, rv, "%s", text);
    return false;
  }
  return true;
}

/* The largest snapshot the daemon builds (and a client accepts). */
#define HANDLERS_SNAPSHOT_MAX (64u << 20)
/* A snapshot costs one more request token per this many topics examined,
 * so that the rate limit bounds the daemon's work for it (M5). */
#define HANDLERS_SNAPSHOT_TOPICS_PER_TOKEN 256u

/* Answers `snapshot`: the stats map (stats_encode) for every topic or the
 * one named by `filter`, as this client may see them, too big for a
 * datagram, so it travels in a sealed memory file attached to the reply.
 * Built on demand: no timer. */
static void handlers_snapshot(struct server *srv, struct participant *p, struct shmbus__msg *m) {
  const char *only = m->filter[0] != '\0' ? m->filter : NULL;
  struct stats_view view = {access_view_topic, access_view_part, p};
  struct registry_topic *t = only != NULL ? registry_find(&srv->reg, only) : NULL;
  struct shmbus__msg r;
  size_t cap = 64u * 1024u;
  unsigned char *buf = NULL;
  bool truncated = true;
  uint32_t n = 0;
  size_t len = 0;
  void *map;
  shmbus__shm_handle fd = SHMBUS__OS_HANDLE_INVALID;
  int rv;

  if (only != NULL && (t == NULL || !access_view_topic(p, t))) {
    /* The same answer whether it does not exist or may not be seen. */
    participant_error(p, m->id, -ENOENT, "no topic \"%s\" on this daemon that you may see", only);
    return;
  }
  if (only == NULL)
    quota_rate_charge(&p->bucket, srv->reg.ntopics / HANDLERS_SNAPSHOT_TOPICS_PER_TOKEN);
  /* Encode into a heap buffer, doubling it until everything fits. */
  while (truncated && cap <= HANDLERS_SNAPSHOT_MAX) {
    unsigned char *nb = realloc(buf, cap);
    if (nb == NULL) {
      rv = -ENOMEM;
      goto fail;
    }
    buf = nb;
    len = stats_encode(&srv->reg, only, &view, buf, cap, &n, &truncated);
    cap *= 2;
  }
  if (!handlers_unread_ok(srv, p, m, len)) {
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
  if (participant_send(p, &r) == 0) {
    p->unread_snaps++;
    p->unread_bytes += len;
  }
  shmbus__fd_close(fd);
  free(buf);
  return;

fail:
  participant_log(p, LOG_WARNING, "snapshot failed: %s", shmbus_strerror(rv));
  participant_error(p, m->id, rv, "cannot build the snapshot: %s", shmbus_strerror(rv));
  shmbus__fd_close(fd);
  free(buf);
}

/* `shmbus topic rm` (M6): the topic loses its name and its retention. Its
 * creator's uid, the owner, root, and whoever a `remove` rule allows may.
 * Participants still attached keep their records and mappings and go on
 * among themselves; a later open of the name creates a new topic. */
static void handlers_remove(struct server *srv, struct participant *p, struct shmbus__msg *m) {
  struct registry_topic *t;
  struct shmbus__msg ok;
  char why[300];
  uint32_t nparts;
  int rv;

  if ((rv = shmbus__topic_validate(m->topic, true)) < 0) {
    participant_error(p, m->id, rv, "invalid topic name \"%s\"", m->topic);
    return;
  }
  t = registry_find(&srv->reg, m->topic);
  if (t == NULL || !access_view_topic(p, t)) {
    participant_error(p, m->id, -ENOENT, "no topic \"%s\" on this daemon that you may see",
                      m->topic);
    return;
  }
  if (t->sys) {
    participant_error(p, m->id, SHMBUS_EDENIED, "\"%s\" is the daemon's own topic", m->topic);
    return;
  }
  if (!(t->has_creator && t->creator_uid == p->uid) &&
      !access_may(srv, p, m->topic, CONFIG_OP_REMOVE, false, why, sizeof(why))) {
    participant_error(p, m->id, SHMBUS_EDENIED,
                      "remove \"%s\" denied by %s (its creator's uid, the owner, root, or a "
                      "`remove` rule may)",
                      m->topic, why);
    return;
  }
  nparts = t->n_pubs + t->n_subs;
  participant_log(p, LOG_NOTICE, "removed topic %s (%u participant(s) keep it until they close)",
                  t->name, nparts);
  (void)registry_remove(&srv->reg, t);
  shmbus__msg_init(&ok, SHMBUS__MSG_OK, m->id);
  (void)participant_send(p, &ok);
}

static void handlers_stop(struct server *srv, struct participant *p, struct shmbus__msg *m) {
  struct shmbus__msg ok;

  if (!access_trusted(srv, p->uid)) {
    char who[HOST_UID_TEXT_MAX];
    host_uid_text(srv->owner, who, sizeof(who));
    participant_log(p, LOG_NOTICE, "stop refused");
    participant_error(p, m->id, SHMBUS_EDENIED, "only %s or root may stop this daemon", who);
    return;
  }
  participant_log(p, LOG_NOTICE, "asked the daemon to stop");
  shmbus__msg_init(&ok, SHMBUS__MSG_OK, m->id);
  (void)participant_send(p, &ok);
  if (srv->on_stop != NULL)
    srv->on_stop(srv);
  else
    server_shutdown(srv);
}

/* Discovery (watch.h): the daemon's side is who may see what and how an
 * event reaches a participant; the rest is watch.c's. A participant sees
 * the topics it may subscribe to, as in a snapshot (access_view_topic). */
static bool handlers_watch_may_see(void *ctx, void *client, const char *name) {
  struct participant *p = client;
  char why[300];

  (void)ctx;
  return access_trusted(p->srv, p->uid) ||
         access_role(p->srv, p, name, SHMBUS__ROLE_SUB, true, why, sizeof(why));
}

static void handlers_watch_send(void *ctx, void *client, const struct shmbus__msg *m) {
  (void)ctx;
  (void)participant_send(client, m);
}

static void handlers_on_name(void *ctx, const struct registry_topic *t, bool up) {
  struct server *srv = ctx;

  watch_notify(&srv->watches, t->name, up);
}

void handlers_watch_init(struct server *srv) {
  srv->reg.on_name = handlers_on_name;
  srv->watches.ops.may_see = handlers_watch_may_see;
  srv->watches.ops.send = handlers_watch_send;
  srv->watches.ops.ctx = srv;
}

/* `watch` and `unwatch` (docs/protocol.md, "Discovery"). */
static void handlers_watch(struct server *srv, struct participant *p, struct shmbus__msg *m) {
  struct shmbus__msg ok;
  int rv;

  if (m->type == SHMBUS__MSG_WATCH)
    rv = watch_add(&srv->watches, p, m->watch_id, m->pattern);
  else
    rv = watch_remove(&srv->watches, p, m->watch_id);
  if (rv == SHMBUS_EQUOTA) {
    participant_error(p, m->id, rv, "at most %u watches per connection", WATCH_MAX_PER_CLIENT);
    return;
  }
  if (rv == -ENOENT) {
    participant_error(p, m->id, rv, "no watch %u on this connection", (unsigned)m->watch_id);
    return;
  }
  if (rv < 0) {
    participant_error(p, m->id, rv, "cannot add the watch: %s", shmbus_strerror(rv));
    return;
  }
  shmbus__msg_init(&ok, SHMBUS__MSG_OK, m->id);
  (void)participant_send(p, &ok);
}

void handlers_dispatch(struct server *srv, struct participant *p, struct shmbus__msg *m) {
  bool request = m->type == SHMBUS__MSG_HELLO || m->type == SHMBUS__MSG_OPEN ||
                 m->type == SHMBUS__MSG_ADOPT || m->type == SHMBUS__MSG_CLOSE ||
                 m->type == SHMBUS__MSG_STATUS || m->type == SHMBUS__MSG_STOP ||
                 m->type == SHMBUS__MSG_SNAPSHOT || m->type == SHMBUS__MSG_REMOVE ||
                 m->type == SHMBUS__MSG_WATCH || m->type == SHMBUS__MSG_UNWATCH;

  if (!request) {
    participant_violation(p, m->id, -EPROTO, "not a request a client may send");
    return;
  }
  if (m->id == 0) {
    participant_violation(p, 0, -EPROTO, "a request needs a non-zero id");
    return;
  }
  if (!handlers_rate_ok(srv, p, m))
    return;
  /* Events owed go first, so that a reply does not overtake them (a
   * client that has its reply then knows its peers). */
  if (p->writable)
    (void)peers_flush(p);
  /* The decoder enforces the descriptor count of each type; checked here
   * again because the handlers index m->fds by it. */
  if (m->nfds != shmbus__msg_fd_count(m->type, m->role)) {
    participant_violation(p, m->id, -EPROTO, "wrong number of descriptors for the message type");
    return;
  }
  if (!p->hello) {
    if (m->type != SHMBUS__MSG_HELLO) {
      participant_violation(p, m->id, SHMBUS_ESTATE, "the first message must be hello");
      return;
    }
    struct shmbus__msg w;
    p->hello = true;
    srv->nohello--;
    participant_set_name(p, m->name);
    participant_log(p, LOG_DEBUG, "hello");
    shmbus__msg_init(&w, SHMBUS__MSG_WELCOME, m->id);
    w.client_id = p->id;
    w.daemon_pid = (uint32_t)host_self_pid();
    (void)participant_send(p, &w);
    return;
  }
  switch (m->type) {
  case SHMBUS__MSG_HELLO:
    participant_violation(p, m->id, SHMBUS_ESTATE, "hello was already sent");
    break;
  case SHMBUS__MSG_OPEN:
    handlers_open(srv, p, m);
    break;
  case SHMBUS__MSG_ADOPT:
    handlers_adopt(srv, p, m);
    break;
  case SHMBUS__MSG_CLOSE:
    handlers_close(srv, p, m);
    break;
  case SHMBUS__MSG_STATUS:
    handlers_status(srv, p, m);
    break;
  case SHMBUS__MSG_STOP:
    handlers_stop(srv, p, m);
    break;
  case SHMBUS__MSG_SNAPSHOT:
    handlers_snapshot(srv, p, m);
    break;
  case SHMBUS__MSG_REMOVE:
    handlers_remove(srv, p, m);
    break;
  case SHMBUS__MSG_WATCH:
  case SHMBUS__MSG_UNWATCH:
    handlers_watch(srv, p, m);
    break;
  default:
    break;
  }
}
