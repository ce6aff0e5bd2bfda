/* client: the connection to shmbusd. See client.h. */
#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paths.h"
#include "platform/platform.h"
#include "shmbus/error.h"

#ifndef SHMBUS_DAEMON_INSTALL_PATH
#define SHMBUS_DAEMON_INSTALL_PATH "shmbusd"
#endif

static int client_copy(char *dst, size_t cap, const char *src) {
  int n = snprintf(dst, cap, "%s", src);
  return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int shmbus__conn_init(struct shmbus__conn *c, const char *dir, const char *name, int autostart,
                      const char *daemon_path, int timeout_ms, shmbus__event_fn on_event,
                      void *ctx) {
  const char *env;
  int rv;

  memset(c, 0, sizeof(*c));
  c->fd = -1;
  c->next_id = 1;
  c->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
  c->on_event = on_event;
  c->ctx = ctx;
  if (autostart < 0) {
    env = getenv("SHMBUS_NO_AUTOSTART");
    autostart = !(env != NULL && strcmp(env, "1") == 0);
  }
  c->autostart = autostart != 0;
  if ((rv = shmbus__bus_dir(dir, false, c->dir, sizeof(c->dir))) < 0)
    return rv;
  if ((rv = shmbus__bus_path(c->dir, SHMBUS__SOCK_NAME, c->sock_path, sizeof(c->sock_path))) < 0)
    return rv;
  /* A longer name is cut, as the API documents. */
  snprintf(c->name, sizeof(c->name), "%s", name != NULL ? name : shmbus__program_name());
  if (daemon_path == NULL) {
    env = getenv("SHMBUS_DAEMON");
    daemon_path = env != NULL && env[0] != '\0' ? env : SHMBUS_DAEMON_INSTALL_PATH;
  }
  return client_copy(c->daemon_path, sizeof(c->daemon_path), daemon_path);
}

void shmbus__conn_close(struct shmbus__conn *c) {
  if (c->fd < 0)
    return;
  if (c->on_closing != NULL)
    c->on_closing(c->ctx);
  shmbus__fd_close(c->fd);
  c->fd = -1;
  c->gen++;
}

/* Starts the daemon and waits until it listens (it writes one byte to the
 * ready pipe) or exits (EOF: another daemon won the race to start, or it
 * failed). Either way the caller just tries to connect again. */
static int client_autostart(struct shmbus__conn *c) {
  char *argv[] = {c->daemon_path, "--dir", c->dir, "--ready-fd", "3", NULL};
  int p[2];
  int rv;

  if ((rv = shmbus__pipe(p)) < 0)
    return rv;
  rv = shmbus__spawn_daemon(c->daemon_path, argv, p[1]);
  shmbus__fd_close(p[1]);
  if (rv == 0) {
    rv = shmbus__wait_readable(&p[0], 1, c->timeout_ms);
    if (rv == 0)
      rv = -ETIMEDOUT;
    else if (rv > 0)
      rv = 0;
  }
  shmbus__fd_close(p[0]);
  return rv;
}

static int client_hello(struct shmbus__conn *c) {
  struct shmbus__msg req;
  struct shmbus__msg reply;
  int rv;

  shmbus__msg_init(&req, SHMBUS__MSG_HELLO, 0);
  snprintf(req.name, sizeof(req.name), "%s", c->name);
  if ((rv = shmbus__conn_request(c, &req, &reply)) < 0)
    return rv;
  if (reply.type != SHMBUS__MSG_WELCOME) {
    shmbus__msg_close_fds(&reply);
    shmbus__conn_close(c);
    return -EPROTO;
  }
  c->client_id = reply.client_id;
  c->daemon_pid = reply.daemon_pid;
  return 0;
}

int shmbus__conn_connect(struct shmbus__conn *c) {
  uint32_t uid;
  int rv;

  shmbus__conn_close(c);
  rv = shmbus__unix_connect(c->sock_path, &c->fd);
  if ((rv == -ENOENT || rv == -ECONNREFUSED) && c->autostart) {
    if ((rv = client_autostart(c)) < 0)
      return rv;
    rv = shmbus__unix_connect(c->sock_path, &c->fd);
  }
  if (rv == -ENOENT || rv == -ECONNREFUSED)
    return SHMBUS_ENODAEMON;
  if (rv < 0)
    return rv;
  c->gen++;
  /* Only our own daemon or root's may hand us shared memory: another
   * user could otherwise squat the bus directory with a socket of theirs
   * and read (or forge) everything we publish. */
  if ((rv = shmbus__peer_uid(c->fd, &uid)) < 0 || (uid != shmbus__self_uid() && uid != 0)) {
    shmbus__conn_close(c);
    return rv < 0 ? rv : SHMBUS_EDENIED;
  }
  return client_hello(c);
}

/* A receive failed: anything but "nothing waiting" ends the connection. */
static int client_lost(struct shmbus__conn *c) {
  shmbus__conn_close(c);
  return SHMBUS_EDISCONNECTED;
}

int shmbus__conn_drain(struct shmbus__conn *c) {
  struct shmbus__msg ev;
  int rv;

  if (c->fd < 0)
    return SHMBUS_EDISCONNECTED;
  for (;;) {
    rv = shmbus__proto_recv(c->fd, &ev);
    if (rv == -EAGAIN)
      return 0;
    if (rv < 0)
      return client_lost(c);
    c->on_event(c->ctx, &ev);
  }
}

int shmbus__conn_wait_event(struct shmbus__conn *c, int timeout_ms) {
  struct shmbus__msg ev;
  int rv;

  if (c->fd < 0)
    return SHMBUS_EDISCONNECTED;
  rv = shmbus__proto_recv(c->fd, &ev);
  if (rv == -EAGAIN) {
    if ((rv = shmbus__wait_readable(&c->fd, 1, timeout_ms)) <= 0)
      return rv;
    rv = shmbus__proto_recv(c->fd, &ev);
    if (rv == -EAGAIN)
      return 0;
  }
  if (rv < 0)
    return client_lost(c);
  c->on_event(c->ctx, &ev);
  return 1;
}

int shmbus__conn_request(struct shmbus__conn *c, struct shmbus__msg *req,
                         struct shmbus__msg *reply) {
  uint64_t deadline;
  int rv;

  c->last_error[0] = '\0';
  if (c->fd < 0)
    return SHMBUS_EDISCONNECTED;
  req->id = c->next_id++;
  if (c->next_id == 0)
    c->next_id = 1;
  rv = shmbus__proto_send(c->fd, req);
  if (rv == -EAGAIN)
    rv = -ETIMEDOUT; /* the daemon does not read: as good as gone */
  if (rv < 0) {
    if (rv != -EINVAL && rv != -EMSGSIZE)
      return client_lost(c);
    return rv;
  }
  deadline = shmbus__clock_mono_ns() + (uint64_t)c->timeout_ms * 1000000u;
  for (;;) {
    uint64_t now;
    rv = shmbus__proto_recv(c->fd, reply);
    if (rv == 0) {
      if (reply->id == req->id)
        break;
      c->on_event(c->ctx, reply);
      continue;
    }
    if (rv != -EAGAIN)
      return client_lost(c);
    now = shmbus__clock_mono_ns();
    if (now >= deadline)
      return -ETIMEDOUT;
    if ((rv = shmbus__wait_readable(&c->fd, 1, (int)((deadline - now) / 1000000u) + 1)) < 0)
      return rv;
  }
  if (reply->type == SHMBUS__MSG_ERROR) {
    memcpy(c->last_error, reply->text, sizeof(c->last_error));
    shmbus__msg_close_fds(reply);
    return reply->code < 0 ? reply->code : -EPROTO;
  }
  return 0;
}
