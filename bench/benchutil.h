/* benchutil: what both benchmarks need to describe the machine and to
 * shuffle and sort their samples. */
#ifndef SHMBUS_BENCHUTIL_H
#define SHMBUS_BENCHUTIL_H

#include <stddef.h>
#include <stdint.h>

/* The CPU model (with family and model numbers) from /proc/cpuinfo. */
void bu_cpu_model(char *out, size_t cap);
/* The 1, 5 and 15 minute load averages from /proc/loadavg. */
void bu_load_average(char *out, size_t cap);
/* qsort comparator for doubles. */
int bu_cmp_double(const void *a, const void *b);
/* xorshift64*: a fixed-seed sequence for shuffling rounds. */
uint64_t bu_next_random(uint64_t *x);

/* Parses a command-line count in 1..100000 for option `opt`; on anything
 * else prints why (as `prog`) and exits with status 2 (bad usage). */
unsigned bu_parse_count(const char *prog, const char *s, const char *opt);

#endif
