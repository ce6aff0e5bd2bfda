/* Helpers for tests of the shmbus command-line tool (the real binary,
 * SHMBUS_CLI_PATH) against a real daemon: each test gets its own daemon
 * and a private work directory; a run's stdout and stderr go to files in
 * it and are read after the process ended. tests/cli_test.c has its own
 * copies of these (older); new CLI tests (opscli, record) use this file. */
#ifndef SHMBUS_TESTS_CLIUTIL_H
#define SHMBUS_TESTS_CLIUTIL_H

#include <stddef.h>
#include <sys/types.h>

#include "daemonutil.h"

extern struct du_daemon cu_daemon;
extern char cu_work[64];

/* Suite .init / .fini: a daemon, $SHMBUS_DIR on it, no autostart, and the
 * work directory; removed at the end. */
void cu_setup(void);
void cu_teardown(void);

struct cu_run {
  pid_t pid;
  char out_path[128];
  char err_path[128];
  char *out; /* what it wrote, NUL-terminated (after cu_wait) */
  size_t out_len;
  char *err;
  int status; /* exit status, or 128 + signal */
};

/* Starts `shmbus ARGS...` (NULL-terminated) with stdin from /dev/null. */
void cu_start(struct cu_run *r, const char *const *args);
/* The same on the bus in `dir` (its SHMBUS_DIR; NULL: the environment's),
 * for tests with more than one daemon. */
void cu_start_on(struct cu_run *r, const char *dir, const char *const *args);
/* Waits for it, reads its outputs; returns the exit status. */
int cu_wait(struct cu_run *r);
void cu_free(struct cu_run *r);
/* Sends `sig` to a running run. */
void cu_signal(struct cu_run *r, int sig);

#define CU_RUN(r, ...) (cu_start((r), (const char *const[]){__VA_ARGS__, NULL}), cu_wait(r))
#define CU_START_ON(r, dir, ...) cu_start_on((r), (dir), (const char *const[]){__VA_ARGS__, NULL})
#define CU_RUN_ON(r, dir, ...) (CU_START_ON(r, dir, __VA_ARGS__), cu_wait(r))

/* Reads a whole file (malloc'd, NUL-terminated). */
char *cu_slurp(const char *path, size_t *len);

#endif
