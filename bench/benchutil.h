/* benchutil: what the benchmarks need to describe the machine, read the
 * clock and CPU time, and shuffle and sort their samples. */
#ifndef SHMBUS_BENCHUTIL_H
#define SHMBUS_BENCHUTIL_H

#include <stddef.h>
#include <stdint.h>

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
/* Pins the calling process to `cpu`; no-op for cpu < 0. */
void bu_pin(int cpu);
/* One step of a busy-wait: a pause, and every 16384th step a
 * sched_yield, so that a peer preempted on the same CPU gets to run. */
void bu_spin_step(unsigned *spins);

/* Parses a command-line count in 1..100000 for option `opt`; on anything
 * else prints why (as `prog`) and exits with status 2 (bad usage). */
unsigned bu_parse_count(const char *prog, const char *s, const char *opt);

#endif
