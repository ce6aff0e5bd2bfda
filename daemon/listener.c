/* listener: accepting connections and reading participants' requests.
 * See listener.h. */
#include "listener.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "access.h"
#include "handlers.h"
#include "log.h"
#include "membership.h"
#include "participant.h"
#include "peers.h"
#include "proto.h"
#include "quota.h"
#include "shmbus/error.h"
#include "timers.h"

/* Datagrams handled per readable event, and connections accepted per
 * event, before the others get a turn (the polls are level-triggered: the
 * rest is handled on the next iteration). */
#define LISTENER_BATCH 64

/* Reads and handles one batch of a participant's requests, up to its
 * connection's end. */
static void listener_read(struct participant *p) {
  struct server *srv = p->srv;
  int i;

  /* Readable or hung up: recv tells which. */
  for (i = 0; i < LISTENER_BATCH && !p->dead && !srv->stopping; i++) {
    struct shmbus__msg m;
    int rv;

    shmbus__msg_init(&m, SHMBUS__MSG_NONE, 0);
    rv = shmbus__proto_recv(p->sock, &m);
    if (rv == -EAGAIN)
      break;
    if (rv == -EPROTO) {
      participant_violation(p, 0, -EPROTO, "malformed message");
      break;
    }
    if (rv == SHMBUS_EPROTOVER) {
      /* The decoder read the id when it could: echo it. */
      participant_violation(p, m.id, SHMBUS_EPROTOVER, "this daemon speaks protocol version 1");
      break;
    }
    if (rv < 0) {
      participant_kill(p, rv == -EPIPE        ? "connection closed"
                          : rv == -ECONNRESET ? "connection closed (it went away with messages "
                                                "it had not read)"
                                              : shmbus_strerror(rv));
      break;
    }
    handlers_dispatch(srv, p, &m);
    shmbus__msg_close_fds(&m); /* whatever the handler did not take */
  }
}

/* A participant's socket is readable, hung up, has room (when it is owed
 * peer events) or has an error. */
static void listener_on_participant(shmbus__watch *h, int status, int events) {
  struct participant *p = SHMBUS__WATCH_DATA(h);
  struct server *srv = p->srv;

  if (status < 0) {
    /* libuv reports EPOLLERR as UV_EBADF: the socket has an error, most
     * often the participant went away with messages it never read. Say
     * that, with the socket's own error, rather than "bad file
     * descriptor". */
    int err = host_sock_error(p->sock);
    char why[128];
    if (err == ECONNRESET || (err == 0 && status == UV_EBADF))
      snprintf(why, sizeof(why), "connection closed (it went away with messages it had not read)");
    else if (err != 0)
      snprintf(why, sizeof(why), "connection error: %s", strerror(err));
    else
      snprintf(why, sizeof(why), "connection error: %s", uv_strerror(status));
    participant_kill(p, why);
    membership_reap(srv);
    return;
  }
  if ((events & UV_WRITABLE) && p->writable)
    (void)peers_flush(p);
  listener_read(p);
  membership_reap(srv);
}

/* A participant's process has ended (its connection may live on: another
 * process may hold a copy of it). What it sent before its end waits in
 * its connection: one batch of that is handled as when the connection
 * ends (the rest could come from the holder of the copy, which is not the
 * participant), then it is disconnected, which releases and repairs its
 * records exactly as its connection's end does (membership_reap). Its
 * connection's end, when it comes later, finds it gone. */
static void listener_on_exit(shmbus__watch *h, int status, int events) {
  struct participant *p = SHMBUS__WATCH_DATA(h);
  struct server *srv = p->srv;

  (void)events;
  if (p->dead)
    return;
  if (status < 0) {
    /* The watch failed (Windows: its wait could not be registered
     * again): the connection's end still tells the death. */
    participant_log(p, LOG_WARNING, "cannot watch its process any more: %s", uv_strerror(status));
    (void)shmbus__watch_stop(h);
    return;
  }
  /* No read may be pending on the connection while it is read (Windows:
   * the watch's zero-byte read); the participant dies below anyway. */
  (void)shmbus__watch_stop(&p->poll);
  listener_read(p);
  participant_kill(p, PARTICIPANT_EXITED);
  membership_reap(srv);
}

/* Refuses a connection we cannot serve: tells why when possible, closes. */
static void listener_refuse(host_sock_t sock, int code, const char *text) {
  struct shmbus__msg m;

  shmbus__msg_init(&m, SHMBUS__MSG_ERROR, 0);
  m.code = code;
  snprintf(m.text, sizeof(m.text), "%s", text);
  (void)shmbus__proto_send(sock, &m);
  host_sock_close(sock);
}

/* M7: admission (quota_admit), with the participants of the peer's uid
 * counted on the system bus. Returns 0, or an error code with a sentence
 * in `text` (which the refused connection receives). */
static int listener_admit(struct server *srv, const struct host_peer *peer, char *text,
                          size_t textlen) {
  const struct config_limits *lim = config_limits(srv->cfg);
  uint32_t uid = host_peer_uid(peer);
  struct quota_admission a;
  struct participant *p;

  memset(&a, 0, sizeof(a));
  a.nofile = host_nofile_limit();
  a.cap = quota_max_participants(lim, a.nofile);
  a.connected = srv->nparticipants;
  a.uid = uid;
  a.owner = srv->owner;
  a.trusted = access_trusted(srv, uid);
  a.system = srv->system;
  if (srv->system && lim->connections != 0)
    for (p = srv->participants; p != NULL; p = p->next)
      if (p->uid == uid && !p->dead)
        a.of_uid++;
  return quota_admit(lim, &a, text, textlen);
}

static void listener_accept_one(struct server *srv, host_sock_t sock) {
  struct host_peer peer;
  struct participant *p;
  char text[SHMBUS__TEXT_MAX + 1];
  int rv;

  if ((rv = host_peer_get(sock, &peer)) < 0) {
    log_warn("accept: cannot tell who connected: %s", strerror(-rv));
    host_sock_close(sock);
    return;
  }
  if (!srv->system && !access_trusted(srv, host_peer_uid(&peer))) {
    log_notice("connection from pid %d uid %u refused: this is the per-user bus of uid %u",
               (int)host_peer_pid(&peer), (unsigned)host_peer_uid(&peer), (unsigned)srv->owner);
    listener_refuse(sock, SHMBUS_EDENIED, "this is a per-user bus of another user");
    host_peer_release(&peer);
    return;
  }
  if ((rv = listener_admit(srv, &peer, text, sizeof(text))) < 0) {
    log_printf(rv == -EMFILE ? LOG_WARNING : LOG_NOTICE,
               "connection from pid %d uid %u refused: %s", (int)host_peer_pid(&peer),
               (unsigned)host_peer_uid(&peer), text);
    listener_refuse(sock, rv, text);
    host_peer_release(&peer);
    return;
  }
  if ((rv = participant_open(srv, sock, &peer, listener_on_participant, listener_on_exit, &p, text,
                             sizeof(text))) < 0) {
    listener_refuse(sock, rv, text);
    host_peer_release(&peer);
    return;
  }
  timers_schedule_hello(srv);
  /* `peer` is the participant's now (p->peer): not released here. */
  log_debug("client %u connected: pid %d uid %u gid %u", p->id, (int)host_peer_pid(&p->peer),
            (unsigned)host_peer_uid(&p->peer), (unsigned)host_peer_gid(&p->peer));
}

static void listener_on_listen(shmbus__watch *h, int status, int events);

static void listener_on_resume(uv_timer_t *t) {
  struct server *srv = t->data;

  if (srv->spare == HOST_SOCK_INVALID)
    srv->spare = host_spare_take();
  if (!srv->stopping)
    (void)shmbus__watch_start(&srv->listen_poll, SHMBUS__WATCH_LEVEL, listener_on_listen);
}

/* Stops accepting for a second (accept keeps failing: do not spin). */
static void listener_pause(struct server *srv) {
  (void)shmbus__watch_stop(&srv->listen_poll);
  (void)uv_timer_start(&srv->accept_timer, listener_on_resume, 1000, 0);
}

static void listener_on_listen(shmbus__watch *h, int status, int events) {
  struct server *srv = SHMBUS__WATCH_DATA(h);
  int i;

  (void)events;
  if (status < 0) {
    log_err("listening socket: %s", uv_strerror(status));
    return;
  }
  for (i = 0; i < LISTENER_BATCH && !srv->stopping; i++) {
    host_sock_t sock;
    int rv = host_accept(srv->listen_sock, &sock);
    if (rv == 0) {
      listener_accept_one(srv, sock);
      continue;
    }
    if (rv == -EAGAIN)
      break;
    if (rv == -EMFILE || rv == -ENFILE) {
      /* Out of descriptors. The listening socket would stay readable and
       * the loop spin: give the spare descriptor back, take the
       * connection, refuse it (the participant sees the daemon hang up),
       * and keep the spare again. Without a spare, stop accepting for a
       * second. */
      log_warn("out of file descriptors (RLIMIT_NOFILE %llu, %zu clients): refusing a connection",
               (unsigned long long)host_nofile_limit(), srv->nparticipants);
      if (srv->spare != HOST_SOCK_INVALID) {
        bool took;
        host_spare_release(srv->spare);
        srv->spare = HOST_SOCK_INVALID;
        took = host_accept(srv->listen_sock, &sock) == 0;
        if (took) {
          char text[SHMBUS__TEXT_MAX + 1];
          snprintf(text, sizeof(text),
                   "the daemon is out of file descriptors (RLIMIT_NOFILE %llu); try later",
                   (unsigned long long)host_nofile_limit());
          listener_refuse(sock, -EMFILE, text);
        }
        srv->spare = host_spare_take();
        if (took && srv->spare != HOST_SOCK_INVALID)
          continue;
      }
      listener_pause(srv);
      break;
    }
    log_err("accept: %s", strerror(-rv));
    listener_pause(srv);
    break;
  }
  membership_reap(srv);
}

int listener_start(struct server *srv) {
  int rv;

  if ((rv = uv_timer_init(srv->loop, &srv->accept_timer)) < 0)
    return rv;
  srv->accept_timer.data = srv;
  srv->accept_init = true;
  srv->spare = host_spare_take();
  if ((rv = shmbus__watch_init(srv->loop, &srv->listen_poll, srv->listen_sock)) < 0)
    return rv;
  SHMBUS__WATCH_DATA(&srv->listen_poll) = srv;
  srv->listen_init = true;
  return shmbus__watch_start(&srv->listen_poll, SHMBUS__WATCH_LEVEL, listener_on_listen);
}

void listener_close(struct server *srv) {
  int rv;

  if (srv->listen_init && !uv_is_closing((uv_handle_t *)&srv->listen_poll))
    shmbus__watch_close(&srv->listen_poll, NULL);
  if (srv->accept_init && !uv_is_closing((uv_handle_t *)&srv->accept_timer))
    uv_close((uv_handle_t *)&srv->accept_timer, NULL);
  /* We still hold the lock, so the name is ours to remove. */
  if (srv->sock_path[0] != '\0' && (rv = host_unlisten(srv->sock_path)) < 0)
    log_warn("cannot remove %s: %s", srv->sock_path, strerror(-rv));
}
