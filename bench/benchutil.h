/* benchutil: what the benchmarks need to describe the machine, read the
 * clock and CPU time, and shuffle and sort their samples. */
#ifndef SHMBUS_BENCHUTIL_H
#define SHMBUS_BENCHUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The CPU model (with family and model numbers) from /proc/cpuinfo. */
void bu_cpu_model(char *out, size_t cap);
/* The 1, 5 and 15 minute load averages from /proc/loadavg. */
void bu_load_average(char *out, size_t cap);
/* "sysname release machine" from uname(2). */
void bu_kernel(char *out, size_t cap);
/* The largest CPU cache (the last level) in bytes, from sysfs; 0 if unknown. */
size_t bu_llc_bytes(void);
/* qsort comparators. */
int bu_cmp_double(const void *a, const void *b);
int bu_cmp_u32(const void *a, const void *b);
/* Percentile q in [0,1] of sorted v[0..n), interpolated between ranks; 0
 * for n == 0. */
double bu_pct_u32(const uint32_t *v, size_t n, double q);
double bu_pct_double(const double *v, size_t n, double q);
/* xorshift64*: a fixed-seed sequence for shuffling rounds. */
uint64_t bu_next_random(uint64_t *x);

/* CLOCK_MONOTONIC in ns. */
uint64_t bu_now_ns(void);
/* Sleeps ms milliseconds (restarted after signals). */
void bu_sleep_ms(unsigned ms);
/* Sleeps until bu_now_ns() reaches t (at least; the timer's slack after). */
void bu_sleep_until_ns(uint64_t t);
/* The CPU the caller runs on now (sched_getcpu; GetCurrentProcessorNumber),
 * -1 if unknown. */
int bu_current_cpu(void);
/* Online CPUs, at least 1. */
long bu_online_cpus(void);
/* CPU time (user + system) of the calling process so far, in ns. */
uint64_t bu_cpu_ns(void);
/* Voluntary context switches of this process so far (getrusage): each is
 * the process going to sleep and, later, a wake-up. */
uint64_t bu_nvcsw(void);
/* Whether bu_nvcsw counts: false where the system keeps no such count
 * (Windows); the reports then say the wake-ups are not available. */
bool bu_nvcsw_available(void);
/* What the scheduler did with a process, summed over its threads: the
 * kernel's counters since each thread started (subtract two readings for a
 * window; bu_sched_since does). */
struct bu_sched {
  uint64_t run_ns;    /* on a CPU (/proc/PID/task/TID/schedstat, 1st field) */
  uint64_t wait_ns;   /* runnable, waiting on a run queue for a CPU (2nd field) */
  uint64_t slices;    /* times it was given a CPU (3rd field) */
  uint64_t nvcsw;     /* voluntary context switches (status): it went to sleep */
  uint64_t nivcsw;    /* involuntary ones (status): it was preempted */
  int64_t migrations; /* moves to another CPU (se.nr_migrations in .../sched); -1 when
                       * that file is not readable for some thread */
  unsigned threads;   /* threads read */
};
/* Reads `pid`'s counters from /proc. A thread that ends while it is read is
 * left out. Returns 0, or -errno: -ENOENT/-ESRCH when the process is gone
 * or the kernel keeps no schedstat, -EPROTO when a file does not parse,
 * -ENOSYS where there is no /proc (Windows). */
int bu_sched_read(pid_t pid, struct bu_sched *out);
/* *d = b - a, counter by counter (0 where a counter went backwards: a
 * thread ended between the readings); migrations -1 if either is. */
void bu_sched_since(const struct bu_sched *a, const struct bu_sched *b, struct bu_sched *d);
/* Whether bu_sched_read can work here: /proc/self/schedstat is readable. */
bool bu_sched_available(void);
/* Pins the calling process to `cpu`; no-op for cpu < 0. */
void bu_pin(int cpu);
/* One step of a busy-wait: a pause, and every 16384th step a
 * sched_yield, so that a peer preempted on the same CPU gets to run. */
void bu_spin_step(unsigned *spins);

/* Parses a command-line count in 1..100000 for option `opt`; on anything
 * else prints why (as `prog`) and exits with status 2 (bad usage). */
unsigned bu_parse_count(const char *prog, const char *s, const char *opt);

#endif
