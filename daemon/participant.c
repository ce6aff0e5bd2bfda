/* participant: one connection and what the daemon keeps about it. See
 * participant.h. */
#include "participant.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platform/platform.h"
#include "server.h"
#include "shmbus/error.h"

/* The send buffer asked for each connection: room for the bursts of peer
 * events an open can cause. The system caps it (net.core.wmem_max). */
#define PARTICIPANT_SNDBUF (1 << 20)

int participant_open(struct server *srv, host_sock_t sock, const struct host_peer *peer,
                     shmbus__watch_cb on_event, shmbus__watch_cb on_exit, struct participant **out,
                     char *text, size_t textlen) {
  struct participant *p;
  host_sock_t proc;
  int rv;

  *out = NULL;
  /* Best effort: a larger send buffer absorbs bursts of peer events. */
  host_sock_set_sndbuf(sock, PARTICIPANT_SNDBUF);
  if ((p = calloc(1, sizeof(*p))) == NULL) {
    (void)snprintf(text, textlen, "out of memory");
    return -ENOMEM;
  }
  p->srv = srv;
  p->sock = sock;
  p->peer = *peer; /* it owns the identity from here (participant.h) */
  p->uid = host_peer_uid(peer);
  p->on_event = on_event;
  p->accepted_ns = shmbus__clock_mono_ns();
  quota_rate_init(&p->bucket, config_limits(srv->cfg), p->accepted_ns);
  p->id = srv->next_id++;
  if (srv->next_id == 0)
    srv->next_id = 1;
  (void)snprintf(p->name, sizeof(p->name), "?");
  if ((rv = shmbus__watch_init(srv->loop, &p->poll, sock)) < 0) {
    log_warn("accept: cannot watch a client socket: %s", uv_strerror(rv));
    free(p);
    (void)snprintf(text, textlen, "cannot watch the connection");
    return -ENOMEM;
  }
  SHMBUS__WATCH_DATA(&p->poll) = p;
  p->next = srv->participants;
  if (srv->participants != NULL)
    srv->participants->prev = p;
  srv->participants = p;
  srv->nparticipants++;
  srv->nohello++;
  *out = p;
  if ((rv = shmbus__watch_start(&p->poll, SHMBUS__WATCH_CONN, on_event)) < 0) {
    log_warn("accept: cannot watch a client socket: %s", uv_strerror(rv));
    participant_kill(p, NULL);
    return 0;
  }
  if ((proc = host_peer_process(&p->peer)) == HOST_SOCK_INVALID)
    return 0;
  /* Its process's end: a watch that cannot be made leaves the socket's
   * end to tell its death (logged: the hole that watch closes is open for
   * this participant). */
  if ((rv = shmbus__watch_init(srv->loop, &p->proc, proc)) < 0) {
    participant_log(p, LOG_WARNING, "cannot watch its process: %s", uv_strerror(rv));
    return 0;
  }
  SHMBUS__WATCH_DATA(&p->proc) = p;
  p->proc_init = true;
  if ((rv = shmbus__watch_start(&p->proc, SHMBUS__WATCH_PROCESS, on_exit)) < 0)
    participant_log(p, LOG_WARNING, "cannot watch its process: %s", uv_strerror(rv));
  return 0;
}

void participant_log(const struct participant *p, enum host_log_level level, const char *fmt, ...) {
  char line[768], who[HOST_UID_TEXT_MAX];
  va_list ap;

  va_start(ap, fmt);
  (void)vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  /* "uid N"; on Windows "user S-1-5-...": the number is the host's. */
  host_uid_text(p->uid, who, sizeof(who));
  log_printf(level, "client %u (pid %d, %s, %s): %s", p->id, (int)host_peer_pid(&p->peer), who,
             p->name, line);
}

void participant_kill(struct participant *p, const char *why) {
  struct server *srv = p->srv;

  if (p->dead)
    return;
  p->dead = true;
  (void)shmbus__watch_stop(&p->poll);
  if (p->proc_init)
    (void)shmbus__watch_stop(&p->proc);
  /* A process that exits closes its connection (and ends): routine, so
   * debug. */
  if (why != NULL)
    participant_log(p,
                    strcmp(why, "connection closed") == 0 || strcmp(why, PARTICIPANT_EXITED) == 0
                        ? LOG_DEBUG
                        : LOG_INFO,
                    "disconnected: %s", why);
  p->kill_next = srv->kill_list;
  srv->kill_list = p;
}

static void participant_closed(uv_handle_t *h) {
  struct participant *p = h->data;

  /* The last of its watches' close callbacks: both have stopped waiting
   * on the socket and the process handle, which may be closed now. */
  if (--p->closing > 0)
    return;
  /* Counted until its socket is closed, so that a status reply never
   * reports a participant gone while its socket is still open. */
  p->srv->nparticipants--;
  host_sock_close(p->sock);
  host_peer_release(&p->peer);
  free(p->groups);
  free(p);
}

void participant_close(struct participant *p) {
  struct server *srv = p->srv;

  if (p->prev != NULL)
    p->prev->next = p->next;
  else
    srv->participants = p->next;
  if (p->next != NULL)
    p->next->prev = p->prev;
  p->prev = p->next = NULL;
  if (!p->hello) {
    p->hello = true; /* counted once */
    srv->nohello--;
  }
  watch_drop_client(&srv->watches, p);
  /* Each close stops its wait before it returns (loop.h); the handles
   * themselves are closed in the last callback (participant.h). */
  p->closing = p->proc_init ? 2 : 1;
  shmbus__watch_close(&p->poll, participant_closed);
  if (p->proc_init)
    shmbus__watch_close(&p->proc, participant_closed);
}

int participant_send(struct participant *p, const struct shmbus__msg *m) {
  int rv;

  if (p->dead)
    return -EPIPE;
  rv = shmbus__proto_send(p->sock, m);
  if (rv == 0)
    return 0;
  if (rv == -EAGAIN) {
    participant_log(p, LOG_WARNING, "its socket is full (it does not read); disconnecting");
    participant_kill(p, NULL);
  } else if (rv == -EPIPE || rv == -ECONNRESET) {
    participant_kill(p, "connection closed");
  } else {
    participant_log(p, LOG_WARNING, "send failed: %s", shmbus_strerror(rv));
    participant_kill(p, NULL);
  }
  return rv;
}

void participant_error(struct participant *p, uint32_t id, int code, const char *fmt, ...) {
  struct shmbus__msg m;
  va_list ap;

  shmbus__msg_init(&m, SHMBUS__MSG_ERROR, id);
  m.code = code;
  va_start(ap, fmt);
  (void)vsnprintf(m.text, sizeof(m.text), fmt, ap);
  va_end(ap);
  (void)participant_send(p, &m);
}

void participant_violation(struct participant *p, uint32_t id, int code, const char *what) {
  participant_log(p, LOG_NOTICE, "protocol violation: %s", what);
  participant_error(p, id, code, "%s", what);
  participant_kill(p, NULL);
}

void participant_watch(struct participant *p, bool writable) {
  int rv;

  if (p->dead || p->writable == writable)
    return;
  p->writable = writable;
  rv = shmbus__watch_start(&p->poll, writable ? SHMBUS__WATCH_CONN_WRITABLE : SHMBUS__WATCH_CONN,
                           p->on_event);
  if (rv < 0) {
    participant_log(p, LOG_WARNING, "cannot watch its socket: %s", uv_strerror(rv));
    participant_kill(p, NULL);
  }
}

void participant_set_name(struct participant *p, const char *name) {
  size_t i;

  for (i = 0; i + 1 < sizeof(p->name) && name[i] != '\0'; i++)
    p->name[i] = name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?';
  p->name[i] = '\0';
}

void participant_groups(struct participant *p) {
  if (p->groups_known)
    return;
  p->groups_known = true;
  if (host_user_groups(p->uid, host_peer_gid(&p->peer), &p->groups, &p->ngroups) < 0) {
    p->groups = NULL;
    p->ngroups = 0;
  }
}

void participant_unread_refresh(struct participant *p) {
  if (p->unread_snaps == 0 || p->dead)
    return;
  if (host_sock_drained(p->sock) == 1) {
    p->unread_snaps = 0;
    p->unread_bytes = 0;
  }
}

void participant_add_part(struct participant *p, struct registry_part *part) {
  part->owner = p;
  part->client_id = p->id;
  part->name = p->name;
  part->owner_next = p->parts;
  p->parts = part;
  p->nparts++;
}

void participant_remove_part(struct participant *p, struct registry_part *part) {
  struct registry_part **pp;

  for (pp = &p->parts; *pp != NULL; pp = &(*pp)->owner_next)
    if (*pp == part) {
      *pp = part->owner_next;
      p->nparts--;
      break;
    }
  part->owner_next = NULL;
  part->name = NULL; /* the participant's memory */
}
