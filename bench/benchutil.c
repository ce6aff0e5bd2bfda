/* benchutil: see benchutil.h. What asks the OS is for Linux here; on
 * Windows, platform/windows.c has it. */
#define _GNU_SOURCE
#include "benchutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <sched.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>
#endif

#ifndef _WIN32
void bu_cpu_model(char *out, size_t cap) {
  FILE *f = fopen("/proc/cpuinfo", "r");
  char line[512];
  char model[256] = "unknown CPU";
  int family = -1, mod = -1;

  if (f != NULL) {
    while (fgets(line, sizeof(line), f) != NULL) {
      char *colon = strchr(line, ':');
      if (colon == NULL)
        continue;
      if (strncmp(line, "model name", 10) == 0 && strcmp(model, "unknown CPU") == 0) {
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
          v++;
        v[strcspn(v, "\n")] = '\0';
        snprintf(model, sizeof(model), "%s", v);
      } else if (strncmp(line, "cpu family", 10) == 0 && family < 0) {
        family = atoi(colon + 1);
      } else if (strncmp(line, "model\t", 6) == 0 && mod < 0) {
        mod = atoi(colon + 1);
      }
    }
    fclose(f);
  }
  if (family >= 0 && mod >= 0)
    snprintf(out, cap, "%s (family %d, model %d)", model, family, mod);
  else
    snprintf(out, cap, "%s", model);
}

void bu_load_average(char *out, size_t cap) {
  FILE *f = fopen("/proc/loadavg", "r");
  double a = 0, b = 0, c = 0;
  if (f != NULL && fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
    snprintf(out, cap, "%.2f %.2f %.2f", a, b, c);
  else
    snprintf(out, cap, "unknown");
  if (f != NULL)
    fclose(f);
}

void bu_kernel(char *out, size_t cap) {
  struct utsname u;
  if (uname(&u) == 0)
    snprintf(out, cap, "%s %s %s", u.sysname, u.release, u.machine);
  else
    snprintf(out, cap, "unknown");
}

size_t bu_llc_bytes(void) {
  size_t best = 0;
  unsigned i;
  for (i = 0; i < 8; i++) {
    char path[96], buf[64];
    FILE *f;
    snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu0/cache/index%u/size", i);
    if ((f = fopen(path, "r")) == NULL)
      break;
    if (fgets(buf, sizeof(buf), f) != NULL) {
      char *end;
      unsigned long v = strtoul(buf, &end, 10);
      size_t bytes = *end == 'K' ? v << 10 : (*end == 'M' ? v << 20 : v);
      if (bytes > best)
        best = bytes;
    }
    fclose(f);
  }
  return best;
}
#endif

int bu_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int bu_cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

double bu_pct_u32(const uint32_t *v, size_t n, double q) {
  double pos;
  size_t i;
  if (n == 0)
    return 0.0;
  pos = q * (double)(n - 1);
  i = (size_t)pos;
  if (i + 1 >= n)
    return v[n - 1];
  return v[i] + (pos - (double)i) * ((double)v[i + 1] - (double)v[i]);
}

double bu_pct_double(const double *v, size_t n, double q) {
  double pos;
  size_t i;
  if (n == 0)
    return 0.0;
  pos = q * (double)(n - 1);
  i = (size_t)pos;
  if (i + 1 >= n)
    return v[n - 1];
  return v[i] + (pos - (double)i) * (v[i + 1] - v[i]);
}

#ifndef _WIN32
uint64_t bu_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bu_sleep_ms(unsigned ms) {
  struct timespec ts = {(time_t)(ms / 1000u), (long)(ms % 1000u) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

void bu_sleep_until_ns(uint64_t t) {
  struct timespec ts = {(time_t)(t / 1000000000u), (long)(t % 1000000000u)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
    ;
}

int bu_current_cpu(void) {
  return sched_getcpu();
}

long bu_online_cpus(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n < 1 ? 1 : n;
}

uint64_t bu_cpu_ns(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0)
    return 0;
  return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000u +
         (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000u;
}

uint64_t bu_nvcsw(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0)
    return 0;
  return (uint64_t)ru.ru_nvcsw;
}

void bu_pin(int cpu) {
  cpu_set_t set;
  if (cpu < 0)
    return;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  (void)sched_setaffinity(0, sizeof(set), &set);
}

void bu_spin_step(unsigned *spins) {
  if (++*spins % 16384u == 0) {
    sched_yield();
  } else {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
  }
}
#endif

uint64_t bu_next_random(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

unsigned bu_parse_count(const char *prog, const char *s, const char *opt) {
  char *end;
  unsigned long v;
  errno = 0;
  v = strtoul(s != NULL ? s : "", &end, 10);
  if (s == NULL || *s == '\0' || *end != '\0' || errno != 0 || v == 0 || v > 100000) {
    fprintf(stderr, "%s: %s needs a count in 1..100000\n", prog, opt);
    exit(2);
  }
  return (unsigned)v;
}
