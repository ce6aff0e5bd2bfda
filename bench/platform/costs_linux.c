/* costs_os on Linux: from /proc, as costs.c read it before the Windows
 * port. See costs_os.h. */
#include <dirent.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "costs_os.h"

const char costs_os_name[] = "Linux";
const char costs_os_handles_name[] = "descriptors";
const char costs_os_cpu_what[] = "utime+stime";
const char costs_os_daemon_stop[] = "on SIGTERM";

/* The value of "key:" in a /proc status file, in its unit (kB for sizes);
 * -1 if absent. */
static long proc_status_field(const char *path, const char *key) {
  FILE *f = fopen(path, "r");
  char line[256];
  size_t kl = strlen(key);
  long v = -1;
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof(line), f) != NULL) {
    if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
      v = strtol(line + kl + 1, NULL, 10);
      break;
    }
  }
  fclose(f);
  return v;
}

static long pid_status(pid_t pid, const char *key) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  return proc_status_field(path, key);
}

/* Sums a status field over every thread of pid; *threads gets their count. */
static long pid_threads_sum(pid_t pid, const char *key, int *threads) {
  char path[320];
  DIR *d;
  struct dirent *e;
  long sum = 0;
  int n = 0;
  snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
  if ((d = opendir(path)) == NULL)
    return -1;
  while ((e = readdir(d)) != NULL) {
    long v;
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof(path), "/proc/%d/task/%s/status", (int)pid, e->d_name);
    if ((v = proc_status_field(path, key)) >= 0) {
      sum += v;
      n++;
    }
  }
  closedir(d);
  if (threads != NULL)
    *threads = n;
  return sum;
}

/* utime+stime of the whole process, in clock ticks (/proc/PID/stat fields
 * 14 and 15, counted after the command name, which may hold spaces). */
static long pid_cpu_ticks(pid_t pid) {
  char path[64], buf[1024];
  FILE *f;
  char *p;
  unsigned long ut = 0, st = 0;
  int field;
  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  if ((f = fopen(path, "r")) == NULL)
    return -1;
  p = fgets(buf, sizeof(buf), f);
  fclose(f);
  if (p == NULL || (p = strrchr(buf, ')')) == NULL)
    return -1;
  /* After ") " comes field 3 (state). */
  for (field = 3, p += 2; *p != '\0' && field < 14; p++)
    if (*p == ' ')
      field++;
  if (sscanf(p, "%lu %lu", &ut, &st) != 2)
    return -1;
  return (long)(ut + st);
}

/* The scheduler's run time of every thread, in ns (first field of each
 * /proc/PID/task/TID/schedstat); 0 if the kernel does not keep it. */
static uint64_t pid_sched_ns(pid_t pid) {
  char path[320];
  DIR *d;
  struct dirent *e;
  uint64_t sum = 0;
  snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
  if ((d = opendir(path)) == NULL)
    return 0;
  while ((e = readdir(d)) != NULL) {
    FILE *f;
    unsigned long long v;
    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof(path), "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
    if ((f = fopen(path, "r")) == NULL)
      continue;
    if (fscanf(f, "%llu", &v) == 1)
      sum += v;
    fclose(f);
  }
  closedir(d);
  return sum;
}

static int pid_fd_count(pid_t pid) {
  char path[64];
  DIR *d;
  struct dirent *e;
  int n = 0;
  snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
  if ((d = opendir(path)) == NULL)
    return -1;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n;
}

const char *costs_os_mem_name(enum costs_mem m) {
  switch (m) {
  case COSTS_MEM_PRIVATE:
    return "RssAnon";
  case COSTS_MEM_SHARED:
    return "RssShmem";
  default:
    return "VmRSS";
  }
}

long costs_os_mem_kb(pid_t pid, enum costs_mem m) {
  return pid_status(pid, costs_os_mem_name(m));
}

int costs_os_handles(pid_t pid) {
  return pid_fd_count(pid);
}

long costs_os_cpu(pid_t pid) {
  return pid_cpu_ticks(pid);
}

long costs_os_cpu_hz(void) {
  return sysconf(_SC_CLK_TCK);
}

bool costs_os_sched_ns(pid_t pid, uint64_t *ns) {
  *ns = pid_sched_ns(pid);
  return true;
}

long costs_os_ctx_switches(pid_t pid, bool voluntary, int *threads) {
  return pid_threads_sum(pid, voluntary ? "voluntary_ctxt_switches" : "nonvoluntary_ctxt_switches",
                         threads);
}

void costs_os_init(void) {
  signal(SIGPIPE, SIG_IGN);
}

void costs_os_raise_fd_limit(void) {
  struct rlimit rl;

  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
}

void costs_os_yield(void) {
  (void)sched_yield();
}
