/* costs: two measurements of what shmbus costs around the data path,
 * subcommands of shmbus-bench (shmbus_bench.c dispatches to them), each
 * with a shmbusd of its own on a private bus directory.
 *
 *   publish  ns per shmbus_pub_publish of 64 B, timed in batches of 256,
 *            with 0, 1 and 8 subscriber processes that busy-poll
 *            shmbus_sub_try_recv (lossy, awake: nobody sleeps, so no
 *            publish wakes anyone); also split by whether a subscriber kept
 *            up with the publisher (its cursor within a few slots of head
 *            after the batch, read through the publisher's own mapping).
 *   idle     A client process opens 1,000 topics (995 small ones of 16
 *            slots x 64 B, 5 of the default size), one publisher each, and
 *            then does nothing. The daemon's RssAnon is read from
 *            /proc/PID/status with 0 topics (fresh), with the 1,000 and
 *            after they closed; over an idle window (default 3 s) its CPU
 *            time (utime+stime from /proc/PID/stat, and the scheduler's
 *            nanosecond count from /proc/PID/schedstat) and its context
 *            switches (every thread's /proc/.../status): each voluntary
 *            switch is one time the daemon went to sleep, so the count is
 *            its wake-ups.
 *
 * Method for publish: the three configurations run in time-based segments
 * (at least a given time and a given count), one per round; each round
 * runs them in a new shuffled order (a fixed-seed shuffle), so drift of
 * the machine hits all alike. The first round is a warm-up and is thrown
 * away. Each segment starts fresh processes, connections and topics. The
 * costs are the median, p10 and p90 of the batches.
 *
 * (One-way latency, asleep in libuv and busy-polling, next to eventfd and
 * cache-line baselines, is shmbus-bench latency --wait uv,spin --peers.)
 *
 * Nothing is pinned unless --pin is given (the publisher on CPU 0, the
 * subscribers on CPUs 1.. in turn; the daemon is never pinned). The
 * program reports; it never fails because of a timing. It exits 1 when
 * the daemon or an operation of the bus fails, 2 on a bad argument.
 * Linux only (/proc, CPU affinity). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "atomics.h"
#include "benchproc.h"
#include "benchutil.h"
#include "bus.h" /* internal: the publisher's view of head and cursors, read between batches */
#include "costs.h"
#include "shmbus/shmbus.h"

#ifndef SHMBUS_BENCH_BUILD_TYPE
#define SHMBUS_BENCH_BUILD_TYPE ""
#endif
#ifndef SHMBUSD_PATH
#define SHMBUSD_PATH "shmbusd"
#endif

#define PROG "shmbus-bench"
#define MSG_SIZE 64u
#define MAX_SUBS 8u            /* subscriber processes in the widest publish configuration */
#define PUB_BATCH 256u         /* publishes per timed batch */
#define PUB_MIN_BATCHES 20u    /* fewest timed batches per publish segment */
#define FANOUT_SLOTS 4096u     /* ring of the publish topic */
#define IDLE_TOPICS 1000u      /* topics the idle client opens */
#define IDLE_DEFAULT_TOPICS 5u /* of which this many have the daemon's default size */
#define SETTLE_MS 100u         /* after the idle client is ready, before the window opens */
/* A subscriber whose cursor is at most this far behind head after a batch
 * kept up with the publisher: it polls the slot the publisher writes next. */
#define NEAR_LAG 16u
/* Fewest batches in a split (keeping up / behind) whose median the report
 * gives. */
#define MIN_SPLIT 20u
#define NPUB 3u /* publish configurations: 0, 1 and MAX_SUBS subscribers */

/* Batches of one publish configuration: ns per publish, one entry each. */
struct series {
  double *v;
  unsigned n;
  unsigned cap;
  double p10, median, p90;
};

/* One publish configuration. */
struct pub_result {
  struct series all;
  struct series near; /* batches after which some subscriber was within NEAR_LAG of head */
  struct series far;  /* ... after which every subscriber was further behind */
  double *seg_med;    /* per kept segment: median of its batches */
  unsigned nseg;
  uint64_t received; /* by all subscribers of kept segments, over whole segments */
  uint64_t lost;
  unsigned warmup_timeouts; /* segments timed before every subscriber had received */
  double seg_lo, seg_hi;
};

/* The idle-daemon measurement. */
struct idle_result {
  long rss_anon0, rss_shmem0, vm_rss0; /* kB, fresh daemon (0 topics) */
  long rss_anon1, rss_shmem1, vm_rss1; /* kB, with the topics open */
  long rss_anon2;                      /* kB, after the client closed them */
  double open_ms;                      /* time the client took to open them all */
  double window_s;                     /* measured window */
  long ticks;                          /* utime+stime over the window, clock ticks */
  long clk_tck;
  uint64_t sched_ns;      /* scheduler run time over the window */
  long vol_cs, nonvol_cs; /* context switches over the window */
  int threads;
  int fds; /* daemon's open descriptors with the topics */
};

struct options {
  bool quick;
  bool pin;
  unsigned rounds;    /* publish: measured rounds, after one warm-up round */
  unsigned pub_ms;    /* publish: segment length */
  unsigned window_ms; /* idle: the window */
  const char *daemon;
};

/* What a fan-out subscriber process reports; one line each, written by it. */
struct sub_slot {
  _Alignas(64) _Atomic uint32_t ready; /* 1 once its subscriber is open */
  _Atomic uint32_t seen;               /* 1 once it received a message */
  uint64_t received;                   /* written before it exits */
  uint64_t lost;
};

/* Shared with every child through a MAP_SHARED anonymous mapping made
 * before the first fork. Each line has one writer. */
struct shared {
  _Alignas(64) _Atomic uint32_t stop; /* the parent: fan-out subscribers stop */
  struct sub_slot subs[MAX_SUBS];
};

static struct shared *sh;
static long n_cpus;

/* ---- small helpers ---------------------------------------------------- */

static const struct shmbus_topic_opts fanout_topic = {FANOUT_SLOTS, MSG_SIZE, 16, 2, false};

static shmbus_sub *sub_open(shmbus_bus *bus, const char *topic,
                            const struct shmbus_topic_opts *to) {
  struct shmbus_sub_opts so;
  shmbus_sub *sub;
  int rv;
  memset(&so, 0, sizeof(so));
  so.topic = *to;
  if ((rv = shmbus_sub_open(bus, topic, &so, &sub)) < 0)
    bp_die("shmbus_sub_open", rv);
  return sub;
}

static shmbus_pub *pub_open(shmbus_bus *bus, const char *topic,
                            const struct shmbus_topic_opts *to) {
  shmbus_pub *pub;
  int rv;
  if ((rv = shmbus_pub_open(bus, topic, to, &pub)) < 0)
    bp_die("shmbus_pub_open", rv);
  return pub;
}

static void publish(shmbus_pub *pub, const void *m, size_t len) {
  int rv;
  if ((rv = shmbus_pub_publish(pub, m, len)) < 0)
    bp_die("shmbus_pub_publish", rv);
}

/* ---- /proc ------------------------------------------------------------- */

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

/* ---- idle daemon ------------------------------------------------------------ */

/* The idle client: opens the topics, says so, then waits (asleep in read)
 * until the parent closes the pipe. */
static int idle_client(int ready_fd, int hold_fd) {
  static const struct shmbus_topic_opts small = {16, 64, 4, 2, false};
  struct rlimit rl;
  shmbus_bus *bus;
  shmbus_pub *pub;
  char name[64], c;
  unsigned i;
  int rv;

  /* Three descriptors per topic (two memory files and an eventfd). */
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
  bus = bp_bus_open("bench-idle");
  for (i = 0; i < IDLE_TOPICS; i++) {
    snprintf(name, sizeof(name), "idle/%s/%04u", i < IDLE_DEFAULT_TOPICS ? "default" : "small", i);
    if ((rv = shmbus_pub_open(bus, name, i < IDLE_DEFAULT_TOPICS ? NULL : &small, &pub)) < 0)
      bp_die("idle client: shmbus_pub_open", rv);
  }
  bp_signal_ready(ready_fd);
  while (read(hold_fd, &c, 1) < 0 && errno == EINTR)
    ;
  shmbus_bus_close(bus);
  return 0;
}

static void idle_measure(struct idle_result *r, const struct options *o) {
  int ready[2], hold[2];
  long ticks0, cs0, ncs0;
  uint64_t t0, t1, s0;
  pid_t pid;

  r->clk_tck = sysconf(_SC_CLK_TCK);
  r->rss_anon0 = pid_status(bp_daemon_pid(), "RssAnon");
  r->rss_shmem0 = pid_status(bp_daemon_pid(), "RssShmem");
  r->vm_rss0 = pid_status(bp_daemon_pid(), "VmRSS");
  if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(hold, O_CLOEXEC) != 0)
    bp_die_errno("pipe2");
  t0 = bu_now_ns();
  pid = bp_fork();
  if (pid == 0) {
    close(ready[0]);
    close(hold[1]);
    _exit(idle_client(ready[1], hold[0]));
  }
  close(ready[1]);
  close(hold[0]);
  bp_await_ready(ready[0], "the idle client");
  r->open_ms = (double)(bu_now_ns() - t0) / 1e6;
  close(ready[0]);
  bu_sleep_ms(SETTLE_MS);

  r->rss_anon1 = pid_status(bp_daemon_pid(), "RssAnon");
  r->rss_shmem1 = pid_status(bp_daemon_pid(), "RssShmem");
  r->vm_rss1 = pid_status(bp_daemon_pid(), "VmRSS");
  r->fds = pid_fd_count(bp_daemon_pid());
  ticks0 = pid_cpu_ticks(bp_daemon_pid());
  s0 = pid_sched_ns(bp_daemon_pid());
  cs0 = pid_threads_sum(bp_daemon_pid(), "voluntary_ctxt_switches", NULL);
  ncs0 = pid_threads_sum(bp_daemon_pid(), "nonvoluntary_ctxt_switches", NULL);
  t0 = bu_now_ns();
  bu_sleep_ms(o->window_ms);
  t1 = bu_now_ns();
  r->ticks = pid_cpu_ticks(bp_daemon_pid()) - ticks0;
  r->sched_ns = pid_sched_ns(bp_daemon_pid()) - s0;
  r->vol_cs = pid_threads_sum(bp_daemon_pid(), "voluntary_ctxt_switches", &r->threads) - cs0;
  r->nonvol_cs = pid_threads_sum(bp_daemon_pid(), "nonvoluntary_ctxt_switches", NULL) - ncs0;
  r->window_s = (double)(t1 - t0) / 1e9;

  close(hold[1]); /* the client closes its topics and exits */
  bp_reap(pid, "the idle client");
  bu_sleep_ms(SETTLE_MS);
  r->rss_anon2 = pid_status(bp_daemon_pid(), "RssAnon");
}

/* ---- publish cost with busy subscribers -------------------------------------- */

/* Untimed, after a batch: whether some subscriber kept up, i.e. its cursor
 * is within NEAR_LAG of head, read through the publisher's own mapping of
 * the topic (internal ring fields; relaxed: a sample, any recent value
 * will do). */
static bool some_sub_near(const shmbus_pub *pub) {
  const struct shmbus__ring *r = &pub->h.region.ring;
  uint64_t h = shmbus__load_relaxed(&r->hdr->head);
  uint32_t i;
  for (i = 0; i < r->max_subs; i++)
    if (shmbus__load_relaxed(&r->subs[i].state) == SHMBUS__SUB_LOSSY &&
        h - shmbus__load_relaxed(&r->subs[i].cursor) <= NEAR_LAG)
      return true;
  return false;
}

static int fanout_sub(unsigned i) {
  struct sub_slot *s = &sh->subs[i];
  shmbus_bus *bus = bp_bus_open("bench-sub");
  shmbus_sub *sub = sub_open(bus, "bench/fanout", &fanout_topic);
  struct shmbus_sub_stats st;
  struct shmbus_msg_info info;
  unsigned char buf[MSG_SIZE];
  bool seen = false;

  /* Release: pairs with the parent's acquire load; nothing more to order. */
  atomic_store_explicit(&s->ready, 1, memory_order_release);
  /* The stop flag sits on a line only the parent writes, once. */
  while (!atomic_load_explicit(&sh->stop, memory_order_relaxed)) {
    int rv = shmbus_sub_try_recv(sub, buf, sizeof(buf), &info);
    if (rv == -EAGAIN) {
      shmbus__cpu_relax();
    } else if (rv < 0) {
      bp_die("subscriber: shmbus_sub_try_recv", rv);
    } else if (!seen) {
      seen = true;
      atomic_store_explicit(&s->seen, 1, memory_order_relaxed);
    }
  }
  shmbus_sub_stats(sub, &st);
  s->received = st.received;
  s->lost = st.lost;
  shmbus_bus_close(bus);
  return 0;
}

static double time_batch(shmbus_pub *pub, const unsigned char *src) {
  uint64_t t0, t1;
  unsigned i;
  int rv = 0;
  t0 = bu_now_ns();
  for (i = 0; i < PUB_BATCH; i++)
    if ((rv = shmbus_pub_publish(pub, src, MSG_SIZE)) < 0)
      break;
  t1 = bu_now_ns();
  if (rv < 0)
    bp_die("shmbus_pub_publish", rv);
  return (double)(t1 - t0) / PUB_BATCH;
}

static void series_add(struct series *r, double ns) {
  if (r->n == r->cap) {
    unsigned cap = r->cap != 0 ? 2 * r->cap : 1024;
    double *v = realloc(r->v, cap * sizeof(*v));
    if (v == NULL)
      bp_die("realloc", -ENOMEM);
    r->v = v;
    r->cap = cap;
  }
  r->v[r->n++] = ns;
}

static void seg_publish(unsigned nsubs, struct pub_result *res, const struct options *o,
                        bool keep) {
  static unsigned char src[MSG_SIZE];
  pid_t pids[MAX_SUBS];
  shmbus_bus *bus;
  shmbus_pub *pub;
  uint64_t t_end;
  unsigned i, b, all, first = res->all.n;

  atomic_store(&sh->stop, 0);
  for (i = 0; i < MAX_SUBS; i++) {
    atomic_store(&sh->subs[i].ready, 0);
    atomic_store(&sh->subs[i].seen, 0);
    sh->subs[i].received = sh->subs[i].lost = 0;
  }
  for (i = 0; i < nsubs; i++) {
    pids[i] = bp_fork();
    if (pids[i] == 0) {
      bu_pin(o->pin ? (int)((1 + i) % (unsigned)n_cpus) : -1);
      _exit(fanout_sub(i));
    }
  }
  bus = bp_bus_open("bench-pub");
  pub = pub_open(bus, "bench/fanout", &fanout_topic);
  memset(src, 0x5a, sizeof(src));
  /* Two laps untimed: every page of the slot area is mapped and written. */
  for (i = 0; i < 2 * FANOUT_SLOTS; i++)
    publish(pub, src, sizeof(src));
  t_end = bu_now_ns() + 30000000000u;
  for (;;) {
    for (i = 0, all = 0; i < nsubs; i++)
      all += atomic_load_explicit(&sh->subs[i].ready, memory_order_acquire);
    if (all == nsubs)
      break;
    if (bu_now_ns() > t_end)
      bp_die("subscribers did not open", -ETIMEDOUT);
    bu_sleep_ms(1);
  }
  /* Warm-up: publish until every subscriber has received something, so
   * all of them really poll before anything is timed (on 2 CPUs a runnable
   * process may wait some milliseconds for its turn). */
  t_end = bu_now_ns() + 500000000u;
  for (;;) {
    (void)time_batch(pub, src);
    for (i = 0, all = 0; i < nsubs; i++)
      all += atomic_load_explicit(&sh->subs[i].seen, memory_order_relaxed);
    if (all == nsubs)
      break;
    if (bu_now_ns() > t_end) {
      res->warmup_timeouts += keep;
      break;
    }
    sched_yield();
  }
  t_end = bu_now_ns() + (uint64_t)o->pub_ms * 1000000u;
  for (b = 0; b < PUB_MIN_BATCHES || bu_now_ns() < t_end; b++) {
    double ns = time_batch(pub, src);
    if (keep) {
      series_add(&res->all, ns);
      if (nsubs > 0)
        series_add(some_sub_near(pub) ? &res->near : &res->far, ns);
    }
  }
  atomic_store(&sh->stop, 1);
  for (i = 0; i < nsubs; i++)
    bp_reap(pids[i], "a subscriber");
  if (keep) {
    unsigned n = res->all.n - first;
    double *seg = malloc(n * sizeof(*seg));
    double *sm = realloc(res->seg_med, (res->nseg + 1) * sizeof(*sm));
    if (seg == NULL || sm == NULL)
      bp_die("malloc", -ENOMEM);
    memcpy(seg, res->all.v + first, n * sizeof(*seg));
    qsort(seg, n, sizeof(*seg), bu_cmp_double);
    res->seg_med = sm;
    res->seg_med[res->nseg++] = bu_pct_double(seg, n, 0.5);
    free(seg);
    for (i = 0; i < nsubs; i++) {
      res->received += sh->subs[i].received;
      res->lost += sh->subs[i].lost;
    }
  }
  shmbus_bus_close(bus);
}

/* ---- output ------------------------------------------------------------------ */

static double ratio(double a, double b) {
  return b > 0 ? a / b : 0.0;
}

static const char *verdict(bool ok) {
  return ok ? "met" : "NOT met";
}

static void finish_series(struct series *r) {
  if (r->n == 0)
    return;
  qsort(r->v, r->n, sizeof(*r->v), bu_cmp_double);
  r->p10 = bu_pct_double(r->v, r->n, 0.10);
  r->median = bu_pct_double(r->v, r->n, 0.50);
  r->p90 = bu_pct_double(r->v, r->n, 0.90);
}

static void finish_pub(struct pub_result *r) {
  finish_series(&r->all);
  finish_series(&r->near);
  finish_series(&r->far);
  if (r->nseg == 0)
    return;
  qsort(r->seg_med, r->nseg, sizeof(*r->seg_med), bu_cmp_double);
  r->seg_lo = r->seg_med[0];
  r->seg_hi = r->seg_med[r->nseg - 1];
}

/* A cell of the split table: r's statistics and its share of r + other. */
static void split_cell(char *out, size_t cap, const struct series *r, const struct series *other) {
  double share = 100.0 * ratio((double)r->n, (double)(r->n + other->n));
  if (r->n < MIN_SPLIT)
    snprintf(out, cap, "- (%.0f%%)", share);
  else
    snprintf(out, cap, "%.1f (%.1f–%.1f), %.0f%%", r->median, r->p10, r->p90, share);
}

/* The header both reports start with: the machine and the run. */
static void print_header(const char *what, const struct options *o, double elapsed_s,
                         const char *load_before, const char *load_after) {
  struct utsname u;
  char cpu[384];
  const char *bt = SHMBUS_BENCH_BUILD_TYPE;

  bu_cpu_model(cpu, sizeof(cpu));
  if (uname(&u) != 0)
    memset(&u, 0, sizeof(u));
  printf("# shmbus-bench %s\n\n", what);
  printf("cpu: %s, %ld online CPUs; kernel: %s %s %s; compiler: %s; bench -O2, library "
         "build type %s; pinning %s\n\n",
         cpu, n_cpus, u.sysname, u.release, u.machine,
#ifdef __VERSION__
         __VERSION__,
#else
         "unknown",
#endif
         bt[0] != '\0' ? bt : "none",
         o->pin ? "on (the publisher on CPU 0, the subscribers on CPUs 1..)" : "off");
  printf("daemon: %s; run took %.1f s%s; load average before %s, after %s.\n\n", o->daemon,
         elapsed_s, o->quick ? " [--quick]" : "", load_before, load_after);
}

static void print_daemon_status(int daemon_status) {
  if (!WIFEXITED(daemon_status) || WEXITSTATUS(daemon_status) != 0)
    printf("- The daemon did not stop cleanly on SIGTERM (%s %d).\n",
           WIFEXITED(daemon_status) ? "exit status" : "signal",
           WIFEXITED(daemon_status) ? WEXITSTATUS(daemon_status) : WTERMSIG(daemon_status));
  else
    printf("- The daemon stopped cleanly on SIGTERM (exit status 0).\n");
}

static void print_publish(const struct pub_result *pub, const struct options *o) {
  const struct pub_result *p0 = &pub[0], *p1 = &pub[1], *p8 = &pub[2];
  double r_pub = ratio(p8->all.median, p1->all.median);
  double r_near = p1->near.n >= MIN_SPLIT && p8->near.n >= MIN_SPLIT
                      ? ratio(p8->near.median, p1->near.median)
                      : 0.0;
  unsigned i;

  printf("%u measured rounds (+1 warm-up), configurations shuffled per round; segments of "
         "%u ms (>= %u batches of %u).\n\n",
         o->rounds, o->pub_ms, PUB_MIN_BATCHES, PUB_BATCH);
  printf("## Publish cost, 64 B, with busy-polling (awake) lossy subscriber processes: "
         "ns per shmbus_pub_publish\n\n");
  printf("| subscribers | median (p10–p90) | per round, min–max | batches | / 1 sub | "
         "received per subscriber and segment | lost | received share |\n");
  printf("|---|---|---|---|---|---|---|---|\n");
  for (i = 0; i < NPUB; i++) {
    const struct pub_result *r = &pub[i];
    unsigned n = i == 0 ? 0 : (i == 1 ? 1 : MAX_SUBS);
    printf("| %u | %.1f (%.1f–%.1f) | %.1f–%.1f | %u | %.2f | ", n, r->all.median, r->all.p10,
           r->all.p90, r->seg_lo, r->seg_hi, r->all.n, ratio(r->all.median, p1->all.median));
    if (n == 0)
      printf("- | - | - |\n");
    else
      printf("%.0f | %.0f | %.0f%% |\n", (double)r->received / (n * o->rounds),
             (double)r->lost / (n * o->rounds),
             100.0 * ratio((double)r->received, (double)(r->received + r->lost)));
  }
  printf("\nReceived and lost count from when a subscriber opened to when it was told to stop "
         "(warm-up included); a lossy subscriber a ring behind skips ahead and counts what it "
         "missed.\n\n");
  printf("By whether a subscriber kept up (after each batch, untimed: some subscriber's cursor "
         "within %u of head, so it polls the very slot the publisher writes next), ns per "
         "publish, median (p10–p90), share of batches:\n\n",
         NEAR_LAG);
  printf("| subscribers | one keeping up | all behind |\n|---|---|---|\n");
  for (i = 1; i < NPUB; i++) {
    char c[2][96];
    split_cell(c[0], sizeof(c[0]), &pub[i].near, &pub[i].far);
    split_cell(c[1], sizeof(c[1]), &pub[i].far, &pub[i].near);
    printf("| %u | %s | %s |\n", i == 1 ? 1 : MAX_SUBS, c[0], c[1]);
  }
  printf("\n## Target\n\n");
  printf("- publish with 8 awake subscribers within 1.2x of 1: all batches %.1f vs %.1f ns "
         "= %.2fx",
         p8->all.median, p1->all.median, r_pub);
  if (r_near > 0)
    printf(", a subscriber keeping up %.1f vs %.1f ns = %.2fx", p8->near.median, p1->near.median,
           r_near);
  else
    printf(", a subscriber keeping up: too few batches to compare");
  printf(" -> %s%s\n", verdict(r_pub <= 1.2 && r_near <= 1.2),
         n_cpus < MAX_SUBS + 1 ? " (see the note on CPUs)" : "");
  printf("\n## Notes\n\n");
  if (n_cpus < MAX_SUBS + 1)
    printf("- This machine has %ld online CPUs, so the publisher and %u spinning subscriber "
           "processes time-share them: at any moment at most %ld subscriber(s) poll next to "
           "the publisher, and a batch that spans a preemption counts whole (p90). What the "
           "8-sub row adds over the 1-sub row here is that sharing, not 8 concurrent readers; "
           "the received share shows how much each subscriber kept up (lossy subscribers that "
           "fall a ring behind skip ahead and count what they missed: received + lost = "
           "published since they joined). It needs >= %u CPUs to mean what the target "
           "means.\n",
           n_cpus, MAX_SUBS, n_cpus - 1, MAX_SUBS + 1);
  printf("- Batches of %u publishes, timed whole; every publish reads the clock for its "
         "timestamp. Two laps of the %u-slot ring are written before timing, and timing "
         "starts once every subscriber received a message%s.\n",
         PUB_BATCH, FANOUT_SLOTS,
         p0->warmup_timeouts + p1->warmup_timeouts + p8->warmup_timeouts != 0
             ? " (some segments started before every subscriber had: see warm-up timeouts)"
             : "");
}

static void print_idle(const struct idle_result *idle) {
  bool idle_cpu_ok = idle->ticks == 0 && (double)idle->vol_cs <= idle->window_s + 1.0;

  printf("## Idle daemon with %u topics open (%u of 16 slots x 64 B, %u of the default "
         "256 x 1 KiB; one publisher each, from one client)\n\n",
         IDLE_TOPICS, IDLE_TOPICS - IDLE_DEFAULT_TOPICS, IDLE_DEFAULT_TOPICS);
  printf("| daemon state | RssAnon | RssShmem | VmRSS |\n|---|---|---|---|\n");
  printf("| fresh, 0 topics | %ld KiB | %ld KiB | %ld KiB |\n", idle->rss_anon0, idle->rss_shmem0,
         idle->vm_rss0);
  printf("| %u topics open | %ld KiB | %ld KiB | %ld KiB |\n", IDLE_TOPICS, idle->rss_anon1,
         idle->rss_shmem1, idle->vm_rss1);
  printf("| after they closed | %ld KiB | | |\n\n", idle->rss_anon2);
  printf("Opening the %u topics took %.0f ms (%.1f µs each); the daemon then held %d "
         "descriptors and ran %d thread(s). Over an idle window of %.2f s (after %u ms of "
         "settling): CPU time %ld ticks of %ld/s (utime+stime), %.3f ms by schedstat; "
         "%ld voluntary context switches (wake-ups), %ld involuntary.\n",
         IDLE_TOPICS, idle->open_ms, 1e3 * idle->open_ms / IDLE_TOPICS, idle->fds, idle->threads,
         idle->window_s, SETTLE_MS, idle->ticks, idle->clk_tck, (double)idle->sched_ns / 1e6,
         idle->vol_cs, idle->nonvol_cs);
  printf("\n## Targets\n\n");
  printf("- idle daemon RssAnon < 4 MiB with %u topics: %ld KiB -> %s\n", IDLE_TOPICS,
         idle->rss_anon1, verdict(idle->rss_anon1 >= 0 && idle->rss_anon1 < 4096));
  printf("- no CPU while idle (nothing firing more often than once a second): %ld ticks, "
         "%.3f ms, %ld wake-ups in %.2f s -> %s\n",
         idle->ticks, (double)idle->sched_ns / 1e6, idle->vol_cs, idle->window_s,
         verdict(idle_cpu_ok));
  printf("\n## Notes\n\n");
  printf("- RssAnon is the daemon's private memory (heap); the topics' shared memory shows in "
         "RssShmem only for the pages the daemon touched (headers and records). A voluntary "
         "context switch is the daemon going to sleep, so over an idle window it counts "
         "wake-ups; ticks have a resolution of 1/%ld s, schedstat of 1 ns.\n",
         idle->clk_tck);
}

/* ---- entry -------------------------------------------------------------------- */

void costs_usage(FILE *f) {
  fprintf(f, "publish: ns per shmbus_pub_publish of 64 B with 0, 1 and 8 busy-polling subscriber\n"
             "processes, split by whether a subscriber kept up (about 10 s).\n"
             "idle: the daemon holding 1,000 topics: its memory, descriptors, CPU time and\n"
             "wake-ups over an idle window (about 5 s).\n"
             "  --quick            a short run for smoke tests; numbers are rough\n"
             "  --pin              (publish) publisher on CPU 0, subscribers on CPUs 1.. in turn\n"
             "  --rounds N         (publish) measured rounds (default 20; --quick: 3)\n"
             "  --window-ms N      (idle) the idle window (default 3000; --quick: 1000)\n"
             "  --daemon PATH      the shmbusd to start (default " SHMBUSD_PATH ")\n"
             "They print markdown only.\n");
}

int costs_main(int argc, char **argv) {
  bool publish = strcmp(argv[1], "publish") == 0;
  struct options o;
  struct pub_result pub[NPUB];
  struct idle_result idle;
  unsigned rounds = 0, window_ms = 0, r, k;
  unsigned order[NPUB];
  uint64_t rnd = 0x9e3779b97f4a7c15u;
  char load_before[64], load_after[64];
  uint64_t t_start;
  int daemon_status = 0;
  int a;

  memset(&o, 0, sizeof(o));
  o.daemon = SHMBUSD_PATH;
  for (a = 2; a < argc; a++) {
    if (strcmp(argv[a], "--quick") == 0) {
      o.quick = true;
    } else if (strcmp(argv[a], "--pin") == 0 && publish) {
      o.pin = true;
    } else if (strcmp(argv[a], "--rounds") == 0 && publish) {
      rounds = bu_parse_count(PROG, a + 1 < argc ? argv[++a] : NULL, "--rounds");
    } else if (strcmp(argv[a], "--window-ms") == 0 && !publish) {
      window_ms = bu_parse_count(PROG, a + 1 < argc ? argv[++a] : NULL, "--window-ms");
    } else if (strcmp(argv[a], "--daemon") == 0) {
      if (a + 1 >= argc || argv[a + 1][0] == '\0') {
        fprintf(stderr, PROG ": --daemon needs a path\n");
        return 2;
      }
      o.daemon = argv[++a];
    } else if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
      costs_usage(stdout);
      return 0;
    } else {
      fprintf(stderr, PROG " %s: unknown argument '%s' (see " PROG " --help)\n", argv[1], argv[a]);
      return 2;
    }
  }
  o.rounds = rounds != 0 ? rounds : (o.quick ? 3 : 20);
  o.window_ms = window_ms != 0 ? window_ms : (o.quick ? 1000 : 3000);
  o.pub_ms = o.quick ? 60 : 250;

  signal(SIGPIPE, SIG_IGN);
  bp_init(PROG);
  n_cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (n_cpus < 1)
    n_cpus = 1;
  memset(pub, 0, sizeof(pub));
  memset(&idle, 0, sizeof(idle));
  sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED)
    bp_die_errno("mmap");
  memset(sh, 0, sizeof(*sh));

  bu_load_average(load_before, sizeof(load_before));
  t_start = bu_now_ns();
  bp_daemon_start(o.daemon); /* before pinning: the daemon runs anywhere */
  if (!publish) {
    idle_measure(&idle, &o);
  } else {
    if (o.pin)
      bu_pin(0);
    /* Round 0 warms up and is not kept. Each round runs the configurations
     * in a new order (a fixed-seed shuffle, so runs are alike). */
    for (k = 0; k < NPUB; k++)
      order[k] = k;
    for (r = 0; r <= o.rounds; r++) {
      for (k = NPUB - 1; k > 0; k--) {
        unsigned j = (unsigned)(bu_next_random(&rnd) % (k + 1)), t = order[k];
        order[k] = order[j];
        order[j] = t;
      }
      for (k = 0; k < NPUB; k++)
        seg_publish(order[k] == 0 ? 0 : (order[k] == 1 ? 1 : MAX_SUBS), &pub[order[k]], &o, r > 0);
    }
  }
  bp_daemon_stop(&daemon_status);
  bp_dir_remove();

  for (k = 0; k < NPUB; k++)
    finish_pub(&pub[k]);
  bu_load_average(load_after, sizeof(load_after));
  print_header(publish ? "publish" : "idle", &o, (double)(bu_now_ns() - t_start) / 1e9, load_before,
               load_after);
  if (publish)
    print_publish(pub, &o);
  else
    print_idle(&idle);
  print_daemon_status(daemon_status);
  for (k = 0; k < NPUB; k++) {
    free(pub[k].all.v);
    free(pub[k].near.v);
    free(pub[k].far.v);
    free(pub[k].seg_med);
  }
  (void)munmap(sh, sizeof(*sh));
  return 0;
}
