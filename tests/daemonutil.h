/* Helpers for tests that need a real shmbusd: each test starts its own
 * daemon on a private bus directory, waits until it listens (through the
 * daemon's --ready-fd, not with sleeps), and stops it at the end. */
#ifndef SHMBUS_DAEMONUTIL_H
#define SHMBUS_DAEMONUTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "shmbus/shmbus.h"

struct shmbus__session;

struct du_daemon {
  char dir[64];                   /* private bus directory */
  pid_t pid;                      /* the daemon, 0 when not running */
  const char *extra;              /* an extra argument for the daemon, or NULL */
  struct shmbus__session *status; /* du_status's connection, kept open; NULL before */
};

/* Makes a fresh bus dir and starts a daemon in the foreground on it;
 * fails the test if it does not come up within 10 s. */
void du_start(struct du_daemon *d);
/* du_start with fault point `fault` armed in the daemon (SHMBUSD_FAULT=
 * <point>[:<n>], daemon/faults.h), and not in what the test starts later. */
void du_start_fault(struct du_daemon *d, const char *fault);
/* Starts a daemon again on the same dir (after a kill). */
void du_restart(struct du_daemon *d);
/* SIGKILLs the daemon and reaps it. */
void du_kill(struct du_daemon *d);
/* SIGTERMs the daemon, checks that it exits with status 0, removes the
 * directory. */
void du_stop(struct du_daemon *d);

/* A daemon per test for suites that need just one: use du_suite_start and
 * du_suite_stop as the suite's .init and .fini, and du_suite as the daemon. */
extern struct du_daemon du_suite;
void du_suite_start(void);
void du_suite_stop(void);

/* Bus options for this daemon: its dir, no autostart. */
void du_opts(const struct du_daemon *d, struct shmbus_bus_opts *o);
/* Opens a bus on this daemon or fails the test. */
shmbus_bus *du_bus(const struct du_daemon *d);

/* Reads exactly n bytes from fd (fails the test on EOF or error). */
void du_read(int fd, void *buf, size_t n);
void du_write(int fd, const void *buf, size_t n);

/* Asks the daemon for its status: *clients (not counting the connection
 * that asks) and *topics, either may be NULL. The asking connection is
 * opened on first use and kept until the daemon is stopped, killed or
 * restarted, so it does not come and go in the daemon's counts. Fails the
 * test if the daemon does not answer. */
void du_status(struct du_daemon *d, uint32_t *clients, uint32_t *topics);
/* Waits (bounded, 10 s) until the daemon serves exactly `clients` clients
 * besides the one asking: it noticed every crash before. */
void du_wait_clients(struct du_daemon *d, uint32_t clients);

/* A copy of shmbusd that any uid may run, for tests that start a daemon
 * as another uid: the build tree may lie under a home of mode 0700 (/root,
 * /home/x) that uid 65534 cannot enter. Makes a fresh directory
 * /tmp/shmbus-bin-XXXXXX of mode 0755 (owned by the caller) into `dir` and
 * copies the daemon there, with its path into `path`. Fails the test if it
 * cannot. Remove `dir` with du_rmtree (a test's .fini, so a failed test
 * leaves nothing behind either). */
void du_private_daemon(char *dir, size_t dircap, char *path, size_t pathcap);

/* Removes the directory tree at `dir` (whoever owns the files in it, as
 * far as the caller may); a missing tree is fine. */
void du_rmtree(const char *dir);

/* Waits for child `pid`; returns its wait status. */
int du_wait(pid_t pid);

#endif
