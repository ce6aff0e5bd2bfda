/* What /proc says about another process: its open descriptors and its
 * private memory. Used by the crash tests and the soak driver to check that
 * the daemon leaks neither. No test framework inside: plain return codes. */
#ifndef SHMBUS_PROCUTIL_H
#define SHMBUS_PROCUTIL_H

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

#endif
