/* benchutil: see benchutil.h. What asks the OS is for Linux here; on
 * Windows, platform/windows.c has it. */
#define _GNU_SOURCE
#include "benchutil.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <dirent.h>
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

bool bu_nvcsw_available(void) {
  return true;
}

uint64_t bu_nvcsw(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0)
    return 0;
  return (uint64_t)ru.ru_nvcsw;
}

/* Reads a small /proc file into buf (NUL-terminated). Returns its length
 * or -errno. */
static ssize_t sched_slurp(const char *path, char *buf, size_t cap) {
  FILE *f = fopen(path, "r");
  size_t n;
  int err;
  if (f == NULL)
    return -errno;
  n = fread(buf, 1, cap - 1, f);
  err = ferror(f) ? (errno != 0 ? -errno : -EIO) : 0;
  fclose(f);
  if (err < 0)
    return err;
  buf[n] = '\0';
  return (ssize_t)n;
}

/* The unsigned number after `key` at the start of a line of `text`, past
 * the blanks and the colon that follow the key; -EPROTO if there is no such
 * line or no number. */
static int sched_field(const char *text, const char *key, uint64_t *v) {
  size_t klen = strlen(key);
  const char *p = text;
  while (p != NULL && *p != '\0') {
    if (strncmp(p, key, klen) == 0) {
      char *end;
      unsigned long long x;
      p += klen;
      while (*p == ' ' || *p == '\t' || *p == ':')
        p++;
      if (*p < '0' || *p > '9')
        return -EPROTO;
      errno = 0;
      x = strtoull(p, &end, 10);
      if (errno != 0)
        return -EPROTO;
      *v = (uint64_t)x;
      return 0;
    }
    if ((p = strchr(p, '\n')) != NULL)
      p++;
  }
  return -EPROTO;
}

/* One thread's counters, added to *out. Returns 0, -ENOENT when the thread
 * ended meanwhile, or another -errno. */
static int sched_thread(pid_t pid, const char *tid, struct bu_sched *out) {
  char path[96], buf[8192];
  unsigned long long run, wait, slices;
  uint64_t vol, invol, migr = 0;
  bool have_migr;
  ssize_t n;
  int rv;

  snprintf(path, sizeof(path), "/proc/%d/task/%s/schedstat", (int)pid, tid);
  if ((n = sched_slurp(path, buf, sizeof(buf))) < 0)
    return (int)n;
  if (sscanf(buf, "%llu %llu %llu", &run, &wait, &slices) != 3)
    return -EPROTO;
  snprintf(path, sizeof(path), "/proc/%d/task/%s/status", (int)pid, tid);
  if ((n = sched_slurp(path, buf, sizeof(buf))) < 0)
    return (int)n;
  if ((rv = sched_field(buf, "voluntary_ctxt_switches", &vol)) < 0 ||
      (rv = sched_field(buf, "nonvoluntary_ctxt_switches", &invol)) < 0)
    return rv;
  /* .../sched is there when the kernel has scheduler debugging; without
   * it the migrations are unknown and the rest stands. */
  snprintf(path, sizeof(path), "/proc/%d/task/%s/sched", (int)pid, tid);
  n = sched_slurp(path, buf, sizeof(buf));
  have_migr = n >= 0 && sched_field(buf, "se.nr_migrations", &migr) == 0;
  if (!have_migr) {
    /* Gone, or never there: the thread's directory tells which. */
    snprintf(path, sizeof(path), "/proc/%d/task/%s", (int)pid, tid);
    if (access(path, F_OK) != 0)
      return -ENOENT;
    out->migrations = -1;
  } else if (out->migrations >= 0) {
    out->migrations += (int64_t)migr;
  }
  out->run_ns += run;
  out->wait_ns += wait;
  out->slices += slices;
  out->nvcsw += vol;
  out->nivcsw += invol;
  out->threads++;
  return 0;
}

int bu_sched_read(pid_t pid, struct bu_sched *out) {
  char path[64];
  DIR *d;
  struct dirent *e;
  int rv = 0;

  memset(out, 0, sizeof(*out));
  if (pid <= 0)
    return -ESRCH;
  snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
  if ((d = opendir(path)) == NULL)
    return errno == ENOENT ? -ESRCH : -errno;
  errno = 0;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9')
      continue;
    rv = sched_thread(pid, e->d_name, out);
    if (rv == -ENOENT || rv == -ESRCH) /* the thread ended while we read it */
      rv = 0;
    if (rv < 0)
      break;
    errno = 0;
  }
  if (rv == 0 && e == NULL && errno != 0)
    rv = -errno;
  closedir(d);
  if (rv == 0 && out->threads == 0)
    rv = -ESRCH; /* every thread ended: the process is gone */
  return rv;
}

bool bu_sched_available(void) {
  return access("/proc/self/schedstat", R_OK) == 0;
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

void bu_sched_since(const struct bu_sched *a, const struct bu_sched *b, struct bu_sched *d) {
  d->run_ns = b->run_ns > a->run_ns ? b->run_ns - a->run_ns : 0;
  d->wait_ns = b->wait_ns > a->wait_ns ? b->wait_ns - a->wait_ns : 0;
  d->slices = b->slices > a->slices ? b->slices - a->slices : 0;
  d->nvcsw = b->nvcsw > a->nvcsw ? b->nvcsw - a->nvcsw : 0;
  d->nivcsw = b->nivcsw > a->nivcsw ? b->nivcsw - a->nivcsw : 0;
  if (a->migrations < 0 || b->migrations < 0)
    d->migrations = -1;
  else
    d->migrations = b->migrations > a->migrations ? b->migrations - a->migrations : 0;
  d->threads = b->threads;
}

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
