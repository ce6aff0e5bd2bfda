/* server: the daemon's side of the control protocol (docs/protocol.md),
 * put together. It owns the registry, $sys/stats, the listening socket,
 * the participants (the processes connected to the daemon) and the
 * timers; the work is done by the modules below it:
 *
 *   listener     accepting connections, admission, reading requests
 *   timers       repairs, sweeps, reconciliation, the hello timeout
 *   reload       SIGHUP: the config file again, the command line's limits
 *   handlers     one function per request (open, adopt, close, ...)
 *   membership   a record joins or leaves a topic; the dead are reaped
 *   peers        peer_join / peer_leave, and the events owed (L2)
 *   access       who may do what (config rules, owner and root)
 *   participant  one connection: identity, records, sending, killing
 *   quota        the quotas and the rate limit, pure
 *
 * Everything a participant sends is untrusted: a malformed datagram or a
 * message out of order gets an `error` and the connection is closed; a
 * request that cannot be granted gets an `error` and the connection stays.
 * Each participant has quotas (struct config_limits): topics created,
 * records held, region bytes created, and a token bucket of control
 * messages; a request beyond one gets SHMBUS_EQUOTA (a region above the
 * maximum size SHMBUS_ELIMIT), and one that keeps sending far beyond the
 * rate is disconnected. The daemon never blocks on a participant and never
 * queues for one: a participant whose socket is full when the daemon
 * answers or sends it an event is disconnected (peer events excepted: they
 * are owed, see peers.h).
 *
 * A participant that goes away (closes its socket, crashes, is killed, or
 * is disconnected) releases all its records exactly as if it had sent
 * `close` for each. Disconnections found while the daemon is busy with
 * something else (sending peer events to many participants) are deferred
 * to the end of the current event, so no list is ever changed under an
 * iteration.
 *
 * On shutdown, participants are closed without releasing their records:
 * their processes keep running on the data path and adopt their records
 * into the next daemon.
 *
 * Thread-safety: single-threaded, on the daemon's loop. */
#ifndef SHMBUSD_SERVER_H
#define SHMBUSD_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "host.h"
#include "platform/loop.h"
#include "quota.h"
#include "registry.h"
#include "stats.h"
#include "watch.h"

struct participant;
struct server_account;

struct server {
  uv_loop_t *loop;
  host_sock_t listen_sock;
  shmbus__watch listen_poll;
  bool listen_init;
  host_sock_t spare; /* kept open to refuse connections cleanly when out of descriptors */
  char sock_path[HOST_PATH_MAX];
  bool system;    /* system bus: any uid may connect, the config decides */
  uint32_t owner; /* the daemon's uid */
  struct config *cfg;
  const char *config_path; /* NULL: nothing to reload */
  bool config_default;     /* config_path is the system default: a missing file is fine */
  struct registry reg;
  struct stats stats;
  struct participant *participants;
  size_t nparticipants;
  struct participant *kill_list;
  struct watch_set watches; /* discovery (watch.h) */
  uv_timer_t repair_timer;
  uint64_t repair_delay_ms;
  bool repair_init;
  uv_idle_t repair_idle; /* a repair continues on the next loop turn */
  bool repair_idle_init;
  uv_timer_t sweep_timer;
  bool sweep_init;
  uv_timer_t hello_timer; /* closes connections that do not say hello in time */
  bool hello_init;
  size_t nohello;                  /* participants that have not said hello yet */
  struct server_account *accounts; /* retained topics per creator uid */
  size_t naccounts;
  uv_timer_t reconcile_timer; /* compares shared records with the registry */
  bool reconcile_init;
  uv_timer_t accept_timer; /* resumes accepting after running out of descriptors */
  bool accept_init;
  char *const *limit_args; /* --limit NAME=VALUE from the command line, over the file's */
  size_t nlimit_args;
  uint32_t next_id; /* the next participant's id */
  uint64_t start_ns;
  bool stopping;
  /* Called when a participant sent `stop` and may: the owner of the loop
   * shuts everything down (server_shutdown and its own handles). */
  void (*on_stop)(struct server *srv);
  void *data; /* for on_stop */
};

/* What the retained topics a uid created hold (M6 in docs/security.md):
 * they outlive the creator's connection, so they are charged to its uid. */
struct server_account {
  uint32_t uid;
  struct quota_usage usage;
};

/* Sets up the registry, $sys/stats, the timers and the listening socket's
 * watcher. Takes `listen_sock` and `cfg` (freed by server_free). Returns 0
 * or a negative code; on failure call server_free. */
int server_init(struct server *srv, uv_loop_t *loop, host_sock_t listen_sock, const char *sock_path,
                bool system, struct config *cfg, const char *config_path, bool config_default);

/* The account of `uid`, created on first use; NULL when out of memory. */
struct server_account *server_account(struct server *srv, uint32_t uid);

/* Starts a clean shutdown: stops listening, removes the socket file, and
 * closes every participant and timer. The loop then runs out; call
 * server_free after it returned. Safe to call twice. */
void server_shutdown(struct server *srv);

/* Frees what is left once the loop stopped: topics, regions, config. */
void server_free(struct server *srv);

#endif /* SHMBUSD_SERVER_H */
