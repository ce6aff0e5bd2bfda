/* server: the listening socket, the clients, and the control protocol
 * (docs/protocol.md) on the daemon's side.
 *
 * Every client is a SOCK_SEQPACKET connection watched with uv_poll (libuv
 * has no stream type for SEQPACKET). Everything a client sends is untrusted:
 * a malformed datagram or a message out of order gets an `error` and the
 * connection is closed; a request that cannot be granted gets an `error`
 * and the connection stays. Each client has quotas (struct config_limits):
 * topics created, records held, region bytes created, and a token bucket
 * of control messages; a request beyond one gets SHMBUS_EQUOTA (a region
 * above the maximum size SHMBUS_ELIMIT), and a client that keeps sending
 * far beyond the rate is disconnected. The daemon never blocks on a client and never
 * queues for one: a client whose socket is full when the daemon answers or
 * sends it an event is disconnected.
 *
 * A client that goes away (closes its socket, crashes, is killed, or is
 * disconnected) releases all its records exactly as if it had sent `close`
 * for each. Disconnections found while the daemon is busy with something
 * else (sending peer events to many clients) are deferred to the end of the
 * current event, so no list is ever changed under an iteration.
 *
 * On shutdown, clients are closed without releasing their records: their
 * processes keep running on the data path and adopt their records into the
 * next daemon.
 *
 * Thread-safety: single-threaded, on the daemon's loop. */
#ifndef SHMBUSD_SERVER_H
#define SHMBUSD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>
#include <uv.h>

#include "config.h"
#include "registry.h"
#include "stats.h"

struct client;
struct server_uid;

struct server {
  uv_loop_t *loop;
  int listen_fd;
  uv_poll_t listen_poll;
  bool listen_init;
  int spare_fd; /* kept open to refuse connections cleanly when out of fds */
  char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  bool system; /* system bus: any uid may connect, the config decides */
  uid_t owner; /* the daemon's uid */
  struct config *cfg;
  const char *config_path; /* NULL: nothing to reload */
  bool config_default;     /* config_path is the system default: a missing file is fine */
  struct registry reg;
  struct stats stats;
  struct client *clients;
  size_t nclients;
  struct client *kill_list;
  uv_timer_t repair_timer;
  uint64_t repair_delay_ms;
  bool repair_init;
  uv_idle_t repair_idle; /* a repair continues on the next loop turn */
  bool repair_idle_init;
  uv_timer_t sweep_timer;
  bool sweep_init;
  uv_timer_t hello_timer; /* closes connections that do not say hello in time */
  bool hello_init;
  size_t nohello;          /* clients that have not said hello yet */
  struct server_uid *uids; /* retained topics per creator uid */
  size_t nuids;
  uv_timer_t reconcile_timer; /* compares shared records with the registry */
  bool reconcile_init;
  uv_timer_t accept_timer; /* resumes accepting after running out of fds */
  bool accept_init;
  char *const *limit_args; /* --limit NAME=VALUE from the command line, over the file's */
  size_t nlimit_args;
  uint32_t next_client_id;
  uint64_t start_ns;
  bool stopping;
  /* Called when a client sent `stop` and may: the owner of the loop shuts
   * everything down (server_shutdown and its own handles). */
  void (*on_stop)(struct server *srv);
  void *data; /* for on_stop */
};

/* Sets up the registry, $sys/stats, the timers and the listening socket's
 * watcher. Takes `listen_fd` and `cfg` (freed by server_free). Returns 0 or
 * a negative code; on failure call server_free. */
int server_init(struct server *srv, uv_loop_t *loop, int listen_fd, const char *sock_path,
                bool system, struct config *cfg, const char *config_path, bool config_default);

/* Applies the command line's limits (srv->limit_args) to `cfg`. Returns
 * 0, or -EINVAL with a sentence in `err`. */
int server_apply_limits(const struct server *srv, struct config *cfg, char *err, size_t errlen);

/* Reloads the config file (SIGHUP). A file that does not load leaves the
 * current rules in place; the log says why. */
void server_reload(struct server *srv);

/* Starts a clean shutdown: stops listening, removes the socket file, and
 * closes every client and timer. The loop then runs out; call server_free
 * after it returned. Safe to call twice. */
void server_shutdown(struct server *srv);

/* Frees what is left once the loop stopped: topics, regions, config. */
void server_free(struct server *srv);

#endif /* SHMBUSD_SERVER_H */
