/* benchproc: the processes of a benchmark run. A parent that starts its own
 * shmbusd on a fresh private bus directory, forks children that die with
 * it, reaps them, and fails loudly (a benchmark that cannot run has
 * nothing to report). Used by shmbus-bus-bench and shmbus-bench.
 *
 * benchproc.c implements it on Linux; platform/windows.c on Windows, where
 * there is no fork: a child is the program started again (bp_spawn_self,
 * bp_child_init), and the memory it shares with its parent is a section
 * it inherits (bp_map_shared). */
#ifndef SHMBUS_BENCHPROC_H
#define SHMBUS_BENCHPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
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

#ifndef _WIN32
#include <sys/wait.h> /* the child's status (bp_wait_for), read with its macros */

/* Forks a child that gets SIGKILL when the parent dies. Returns the child's
 * pid in the parent, 0 in the child. */
pid_t bp_fork(void);
#else
/* Windows has no fork. A child is this program again, started with
 *   <program> --bench-child <handles> <bus directory> <n> <job...> <args...>
 * where <job...> are the n strings of `job` (what the child is to do) and
 * <args...> the parent's argv[1..argc) (what it was asked to do); it gets
 * the parent's standard output and error, the sections of bp_map_shared and
 * a handle of its parent, and dies with the parent (a job object). Returns
 * the child's process id. */
pid_t bp_spawn_self(const char *const *job, unsigned n, int argc, char **argv);
/* In main, before anything else: when argv[1] is --bench-child, takes over
 * what the parent passed (its handles, the bus directory), sets *job to the
 * first job string and *njob to their count, and returns the index in argv
 * of the parent's argv[1] (its args follow up to argc). Returns 0 when this
 * is not a child. Dies (status 1) on a command line it did not write. */
int bp_child_init(int argc, char **argv, char ***job, unsigned *njob);

/* A child's status as bp_wait_for returns it, read with the POSIX macros:
 * its exit code below 256 is an exit; a larger one (an NTSTATUS such as
 * STATUS_ACCESS_VIOLATION) or TerminateProcess is a death, WTERMSIG 9. */
#define WIFEXITED(s) (((s)&0x7f) == 0)
#define WEXITSTATUS(s) (((s) >> 8) & 0xff)
#define WTERMSIG(s) ((s)&0x7f)
#endif

/* Starts a child process that runs fn(job, n) and exits with what it
 * returns, on both systems: on Linux fn runs in a fork (bp_fork); on
 * Windows the child is this program again (bp_spawn_self with job and the
 * parent's argc, argv), whose main must hand the job that bp_child_init
 * gives it to the same fn. Returns the child's pid. */
pid_t bp_child(int (*fn)(char **job, unsigned n), char **job, unsigned n, int argc, char **argv);

/* Memory shared with the children, zero-filled: MAP_SHARED anonymous memory
 * on Linux (forked children see it), a section on the paging file on
 * Windows whose handle bp_spawn_self passes on. In a Windows child, the
 * n-th call maps the parent's n-th section instead (of the same length:
 * the child makes the same calls in the same order). Dies on failure. */
void *bp_map_shared(size_t len);
void bp_unmap_shared(void *p, size_t len);

/* In a child: whether its parent still runs. */
bool bp_parent_alive(void);

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

/* --plot's gnuplot, which reads its script on its standard input.
 * bp_gnuplot_find: whether it is a program in the PATH (Linux: `gnuplot`,
 * executable, in $PATH's :-separated directories; Windows: `gnuplot.exe`
 * in %PATH%'s ;-separated ones, quotes around a directory allowed); if not,
 * *need says what is needed, for the error ("gnuplot in $PATH (Debian:
 * ...)"). bp_gnuplot_open starts the one found (after bp_gnuplot_find)
 * with a pipe to its standard input (popen; Windows: _popen, binary, the
 * program by its full path); NULL with errno set on failure.
 * bp_gnuplot_close closes that pipe and waits for gnuplot: 0 when it
 * exited with status 0, -EIO when it did not, or a negative errno. */
bool bp_gnuplot_find(const char **need);
FILE *bp_gnuplot_open(void);
int bp_gnuplot_close(FILE *g);

/* Waits (up to 30 s) until `fd` gives one byte: the peer is ready. */
void bp_await_ready(int fd, const char *who);
/* Writes that byte and closes `fd`. */
void bp_signal_ready(int fd);

#endif
