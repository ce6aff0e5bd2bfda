/* session: one participant's session with shmbusd over its control
 * connection. Connecting (and starting the daemon when allowed), the hello
 * handshake, requests that wait for their reply, and reading events, all
 * over the control protocol of src/proto.h. It knows nothing of topics:
 * whoever owns the session (the bus, src/bus.c) handles events through a
 * callback. (The daemon calls the other end of a session a client.)
 *
 * Thread-safety: one thread at a time (the bus's).
 * Across fork(): the child must not use it. */
#ifndef SHMBUS_SESSION_H
#define SHMBUS_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "platform/platform.h"
#include "proto.h"

/* Receives every event (any message that is not the awaited reply). It
 * takes ownership of the message's fds (close them or keep them). */
typedef void (*shmbus__session_event_fn)(void *ctx, struct shmbus__msg *ev);

struct shmbus__session {
  shmbus__conn_handle sock;             /* the socket, invalid while disconnected */
  uint32_t next_id;                     /* request ids, never 0 */
  uint32_t client_id;                   /* from welcome: the daemon's id for this session */
  uint32_t daemon_pid;                  /* from welcome */
  int timeout_ms;                       /* per request, and for an autostarted daemon */
  int autostart;                        /* 1 or 0 (resolved from the options) */
  char dir[SHMBUS__ENDPOINT_MAX];       /* bus directory */
  char sock_path[SHMBUS__ENDPOINT_MAX]; /* dir/shmbusd.sock: the endpoint */
  char name[SHMBUS__NAME_MAX + 1];
  char daemon_path[256]; /* given by the options or $SHMBUS_DAEMON; "" to search */
  bool daemon_from_env;  /* daemon_path came from $SHMBUS_DAEMON */
  bool dir_default;      /* dir is the default per-user bus (autostart may create it) */
  shmbus__session_event_fn on_event;
  /* Called just before the socket is closed (while its fd is still
   * valid), so a watcher on it can be removed first. May be NULL. */
  void (*on_closing)(void *ctx);
  void *ctx;
  uint64_t gen; /* changes on every connect and every close */
  /* The text of the last `error` reply to a request ("" after a request
   * that got another answer or none). */
  char last_error[SHMBUS__TEXT_MAX + 1];
};

/* Fills the connection's settings; does not connect. dir/name/daemon_path
 * may be NULL for their defaults (see shmbus_bus_opts). Returns 0 or
 * -ENAMETOOLONG. */
int shmbus__session_init(struct shmbus__session *c, const char *dir, const char *name,
                         int autostart, const char *daemon_path, int timeout_ms,
                         shmbus__session_event_fn on_event, void *ctx);

/* Connects, starting the daemon if nobody listens and autostart is on, and
 * says hello. Returns 0; SHMBUS_ENODAEMON; SHMBUS_EDENIED; -ETIMEDOUT. */
int shmbus__session_connect(struct shmbus__session *c);

/* Sends `req` (its fds are not taken) and waits for the reply with its id,
 * handing other messages to on_event meanwhile. On success *reply holds the
 * reply and its fds (the caller owns them); an `error` reply is turned into
 * its code (and the text is left in reply->text and c->last_error). A lost connection gives
 * SHMBUS_EDISCONNECTED and closes the socket; so does a reply lost to our own
 * descriptor limit, which gives -EMFILE (and says so in c->last_error). */
int shmbus__session_request(struct shmbus__session *c, struct shmbus__msg *req,
                            struct shmbus__msg *reply);

/* Reads every waiting message without blocking and hands it to on_event.
 * Returns 0, or SHMBUS_EDISCONNECTED when the daemon went away, or -EMFILE
 * when a message was lost to our descriptor limit (the socket is closed
 * either way). */
int shmbus__session_drain(struct shmbus__session *c);

/* Waits up to timeout_ms for one message and hands it to on_event. Returns
 * 1 if one was handled, 0 on timeout, or SHMBUS_EDISCONNECTED. */
int shmbus__session_wait_event(struct shmbus__session *c, int timeout_ms);

/* How long an autostarted daemon stays without clients and retained
 * topics before it exits (shmbusd --idle-exit), unless $SHMBUS_IDLE_EXIT
 * says otherwise. */
#define SHMBUS__AUTOSTART_IDLE_S "60"

/* More about why the calling thread's last shmbus__session_connect failed
 * (e.g. every place autostart looked for shmbusd), or "". Thread-local;
 * valid until the thread's next connect. */
const char *shmbus__session_open_error(void);

/* Closes the socket (the connection can connect again). */
void shmbus__session_close(struct shmbus__session *c);

#endif /* SHMBUS_SESSION_H */
