/* benchproc: the processes of a benchmark run. A parent that starts its own
 * shmbusd on a fresh private bus directory, forks children that die with
 * it, reaps them, and fails loudly (a benchmark that cannot run has
 * nothing to report). Used by shmbus-bus-bench and shmbus-bench. */
#ifndef SHMBUS_BENCHPROC_H
#define SHMBUS_BENCHPROC_H

#include <stdbool.h>
#include <sys/types.h>

#include "shmbus/shmbus.h"

/* Call once at the start of main, in the parent: `prog` names the program
 * in messages. */
void bp_init(const char *prog);

/* A failure: prints what failed and shmbus_strerror(rv). In a child, exits
 * with status 1; in the parent, also stops the daemon (its log stays in the
 * bus directory) and exits 1. */
_Noreturn void bp_die(const char *what, int rv);
_Noreturn void bp_die_errno(const char *what);

/* True in the parent bp_init ran in. */
bool bp_is_parent(void);

/* Forks a child that gets SIGKILL when the parent dies. Returns the child's
 * pid in the parent, 0 in the child. */
pid_t bp_fork(void);

/* Waits for a child; dies unless it exited with status 0. */
void bp_reap(pid_t pid, const char *who);

/* Waits for a child at most timeout_ms, then kills it (SIGKILL) and reaps
 * it. Returns its wait status, or -1 if it had to be killed. */
int bp_wait_for(pid_t pid, unsigned timeout_ms);

/* Starts `path` --foreground --dir <new mkdtemp directory> --ready-fd 3 and
 * waits for its ready byte; its stderr goes to shmbusd.log there. */
void bp_daemon_start(const char *path);
/* The daemon's pid, or -1 when none runs. */
pid_t bp_daemon_pid(void);
/* The bus directory of the daemon (valid after bp_daemon_start). */
const char *bp_bus_dir(void);
/* SIGTERM, then waits up to 5 s (SIGKILL after that). *status: the
 * daemon's wait status. */
void bp_daemon_stop(int *status);
/* Removes the bus directory and what the daemon left in it. */
void bp_dir_remove(void);

/* Opens a bus connection to our daemon (autostart off); dies on failure. */
shmbus_bus *bp_bus_open(const char *name);

/* Waits (up to 30 s) until `fd` gives one byte: the peer is ready. */
void bp_await_ready(int fd, const char *who);
/* Writes that byte and closes `fd`. */
void bp_signal_ready(int fd);

#endif
