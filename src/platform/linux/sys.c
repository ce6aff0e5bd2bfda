/* Clocks, randomness, scheduling and the default bus directory on Linux.
 * See platform.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "../platform.h"
#include "../../atomics.h"

static uint64_t sys_clock_ns(clockid_t id) {
  struct timespec ts;
  /* Cannot fail for these clocks with a valid pointer. */
  (void)clock_gettime(id, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t shmbus__clock_mono_ns(void) {
  return sys_clock_ns(CLOCK_MONOTONIC);
}

uint64_t shmbus__clock_real_ns(void) {
  return sys_clock_ns(CLOCK_REALTIME);
}

int shmbus__random64(uint64_t *out) {
  ssize_t n;
  do
    n = getrandom(out, sizeof(*out), 0);
  while (n < 0 && errno == EINTR);
  if (n < 0)
    return -errno;
  return n == (ssize_t)sizeof(*out) ? 0 : -EIO;
}

void shmbus__spin_backoff(unsigned spins) {
  if (spins < 64)
    shmbus__cpu_relax();
  else
    (void)sched_yield();
}

void shmbus__sleep_ms(unsigned ms) {
  struct timespec ts = {(time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L};
  if (ms == 0)
    (void)sched_yield();
  else
    (void)nanosleep(&ts, NULL); /* EINTR: ends early, as documented */
}

const char *shmbus__program_name(void) {
  extern char *program_invocation_short_name;
  return program_invocation_short_name != NULL ? program_invocation_short_name : "shmbus";
}

int shmbus__default_bus_dir(char *out, size_t cap) {
  const char *env = getenv("XDG_RUNTIME_DIR");
  int n;

  if (env != NULL && env[0] == '/')
    n = snprintf(out, cap, "%s/shmbus", env);
  else
    n = snprintf(out, cap, "/tmp/shmbus-%u", (unsigned)getuid());
  return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}
