/* Process helpers for tests and the soak driver: starting shmbusd and
 * waiting until it listens, and what /proc says about a process (its open
 * descriptors and private memory, to check that the daemon leaks
 * neither). No test framework inside: plain return codes. */
#ifndef SHMBUS_PROCUTIL_H
#define SHMBUS_PROCUTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* A process's resource use at one moment. */
struct pu_sample {
  int fds;                   /* entries in /proc/<pid>/fd */
  uint64_t rss_anon_kb;      /* RssAnon in /proc/<pid>/status: heap and other private memory */
  uint64_t private_dirty_kb; /* Private_Dirty in /proc/<pid>/smaps_rollup (includes shared
                              * memory only this process maps, such as an unused topic) */
};

/* Fills *s for `pid`. Returns 0, or -errno (the process is gone, or /proc
 * is not mounted). */
int pu_sample(pid_t pid, struct pu_sample *s);

/* Starts the daemon at `path` in the foreground on bus directory `dir`
 * with one extra argument (or NULL), and waits (no timeout: it reports or
 * exits) until it listens, through its --ready-fd. `quiet` sends its log
 * to /dev/null. Returns its pid, or -1 if it exited instead. */
pid_t pu_start_daemon(const char *path, const char *dir, const char *extra, bool quiet);

#endif
