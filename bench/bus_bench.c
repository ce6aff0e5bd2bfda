/* bus_bench: the public API with a real daemon, process against process,
 * each number next to a baseline measured in the same run.
 *
 * The program starts its own shmbusd (--foreground --dir <fresh temporary
 * directory> --ready-fd), connects to it with autostart off, and stops it
 * with SIGTERM at the end. What it measures:
 *
 *   idle daemon  A client process opens 1,000 topics (995 small ones of 16
 *                slots x 64 B, 5 of the default size), one publisher each,
 *                and then does nothing. The daemon's RssAnon is read from
 *                /proc/PID/status with 0 topics (fresh) and with the 1,000;
 *                then, over an idle window (default 3 s), its CPU time
 *                (utime+stime from /proc/PID/stat, and the scheduler's
 *                nanosecond count from /proc/PID/schedstat) and its
 *                context switches (every thread's /proc/.../status): each
 *                voluntary switch is one time the daemon went to sleep, so
 *                the count is its wake-ups.
 *   uv latency   Ping-pong between two processes, both asleep in a libuv
 *                loop between messages. A publishes 64 B on one topic; B,
 *                woken by shmbus_uv_sub_start, notes its receive time
 *                minus the message's timestamp (shmbus_msg_info.ts_ns, the
 *                publisher's CLOCK_MONOTONIC time) and publishes a 64 B ack
 *                on a second topic; A sends the next ping only after it got
 *                the ack. Reported: round trip / 2, and B's receive time
 *                minus the send timestamp. Baseline: the same ping-pong with
 *                two eventfds (inherited across fork) watched with uv_poll
 *                in both processes, the 64 B messages copied through a
 *                shared page.
 *   spin latency The same ping-pong with both processes busy-polling
 *                shmbus_sub_try_recv. Baseline: two processes spinning on
 *                one 64-byte-aligned cache line per direction in a
 *                MAP_SHARED anonymous mapping (a sequence number, the send
 *                timestamp and the measured one-way time).
 *   publish      ns per shmbus_pub_publish of 64 B, timed in batches of 256,
 *                with 0, 1 and 8 subscriber processes that busy-poll
 *                shmbus_sub_try_recv (lossy, awake: nobody sleeps, so no
 *                publish wakes anyone).
 *
 * Method, as in ring_bench.c: every configuration runs in time-based
 * segments (at least a given time and a given count), one per round; each
 * round runs the configurations in a new shuffled order (a fixed-seed
 * shuffle), so drift of the machine hits shmbus and its baseline alike. The
 * first round is a warm-up and is thrown away, and so are the first round
 * trips of every segment. Each segment starts fresh processes, connections
 * and topics. Latency percentiles are over every kept round trip of the
 * configuration during which A and B ran on different CPUs (each notes
 * sched_getcpu(); unpinned, the scheduler often runs both on one CPU, where
 * a wake-up is only a context switch, and those round trips are reported
 * apart); publish costs are the median, p10 and p90 of the batches, also
 * split by whether a subscriber kept up with the publisher.
 *
 * Nothing is pinned unless --pin is given (A / the publisher on CPU 0, B /
 * the subscribers on CPUs 1.. in turn; the daemon is never pinned). The
 * report names the CPU, the number of CPUs, the kernel and the load average.
 *
 * The program reports; it never fails because of a timing. It exits 1 when
 * the daemon or an operation of the bus fails, 2 on a bad argument.
 * Linux only (/proc, eventfd, CPU affinity, PR_SET_PDEATHSIG). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "benchproc.h"
#include "benchutil.h"
#include "atomics.h"
#include "bus.h" /* internal: the publisher's view of head and cursors, read between batches */
#include "shmbus/shmbus.h"
#include "shmbus/uv.h"

#ifndef SHMBUS_BENCH_BUILD_TYPE
#define SHMBUS_BENCH_BUILD_TYPE ""
#endif
#ifndef SHMBUSD_PATH
#define SHMBUSD_PATH "shmbusd"
#endif

#define MSG_SIZE 64u
#define MAX_SUBS 8u         /* subscriber processes in the widest publish configuration */
#define PUB_BATCH 256u      /* publishes per timed batch */
#define PUB_MIN_BATCHES 20u /* fewest timed batches per publish segment */
#define FANOUT_SLOTS 4096u  /* ring of the publish topic */
#define PINGPONG_SLOTS 64u  /* rings of the ping and pong topics */
#define UV_WARMUP 200u      /* round trips discarded at the start of a uv segment */
#define SPIN_WARMUP 2000u   /* ... of a spin segment */
#define UV_MAX_RT 60000u    /* most round trips kept per segment (memory bound) */
#define SPIN_MAX_RT 100000u
#define SPIN_YIELD 16384u      /* pauses before a spinning ping-pong side yields once */
#define IDLE_TOPICS 1000u      /* topics the idle client opens */
#define IDLE_DEFAULT_TOPICS 5u /* of which this many have the daemon's default size */
#define SETTLE_MS 100u         /* after the idle client is ready, before the window opens */
#define WATCHDOG_MS 10000u     /* a peer that stays silent this long past the segment end failed */
#define STOP_SEQ UINT64_MAX    /* sequence number that ends a ping-pong */
/* A subscriber whose cursor is at most this far behind head after a batch
 * kept up with the publisher: it polls the slot the publisher writes next. */
#define NEAR_LAG 16u
/* Fewest batches in a split (keeping up / behind) whose median the report
 * gives. */
#define MIN_SPLIT 20u
/* Fewest different-CPU round trips for a segment's median to count. */
#define MIN_SEG_RT 100u

/* ---- configurations ---------------------------------------------------- */

enum cfg {
  C_UV_BUS,    /* shmbus ping-pong, both sides asleep in libuv */
  C_UV_EFD,    /* baseline: eventfd + uv_poll */
  C_SPIN_BUS,  /* shmbus ping-pong, both sides busy-polling */
  C_SPIN_LINE, /* baseline: cache-line ping-pong */
  C_PUB0,      /* publish, no subscriber */
  C_PUB1,      /* publish, 1 busy-polling subscriber process */
  C_PUB8,      /* publish, 8 busy-polling subscriber processes */
  C_COUNT
};

/* A growable array of samples in ns. uint32_t: nothing here lasts 4 s. */
struct vec {
  uint32_t *v;
  size_t n;
  size_t cap;
};

struct pct {
  double p50, p90, p99, max;
};

/* One latency configuration, over every kept segment. Index [0]: round
 * trips during which A and B ran on different CPUs (a wake-up crosses
 * CPUs); [1]: on the same CPU (the scheduler put both there, and a wake-up
 * is a context switch). */
struct lat_result {
  struct vec rtt[2];    /* round-trip times */
  struct vec oneway[2]; /* B's receive time minus A's send timestamp */
  /* Per kept segment, in round order: median of round trip / 2 over its
   * different-CPU round trips; 0 if it had fewer than MIN_SEG_RT. */
  struct vec seg_p50;
  struct pct half[2]; /* of rtt / 2, computed at the end */
  struct pct ow[2];   /* of oneway */
  double seg_lo, seg_hi;
};

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
  unsigned rounds; /* measured rounds, after one warm-up round */
  unsigned uv_ms;  /* segment lengths */
  unsigned spin_ms;
  unsigned pub_ms;
  unsigned uv_min; /* fewest kept round trips per uv segment */
  unsigned spin_min;
  unsigned window_ms; /* idle window */
  const char *daemon;
};

/* The ping-pong message, 64 B as the targets say. */
struct msg {
  uint64_t seq;
  uint64_t ts_ns;     /* send time (baselines; shmbus carries its own) */
  uint64_t oneway_ns; /* filled in by B: its receive time minus the send time */
  int32_t cpu;        /* filled in by B: the CPU it received on */
  unsigned char fill[MSG_SIZE - 28];
};
_Static_assert(sizeof(struct msg) == MSG_SIZE, "64-byte message");

/* One direction of the cache-line baseline: one line, written by one side. */
struct line {
  _Alignas(64) _Atomic uint64_t seq;
  _Atomic uint64_t ts_ns;
  _Atomic uint64_t oneway_ns;
  _Atomic int32_t cpu; /* B's line: the CPU it received on */
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
  struct line ping;                   /* A */
  struct line pong;                   /* B */
  _Alignas(64) struct msg efd_msg[2]; /* [0] written by A, [1] by B (eventfd baseline) */
};

static struct shared *sh;
static long n_cpus;
static double clock_cost_ns;

/* ---- small helpers ---------------------------------------------------- */

static void vec_push(struct vec *x, uint64_t ns) {
  if (x->n == x->cap) {
    size_t cap = x->cap != 0 ? 2 * x->cap : 4096;
    uint32_t *v = realloc(x->v, cap * sizeof(*v));
    if (v == NULL)
      bp_die("realloc", -ENOMEM);
    x->v = v;
    x->cap = cap;
  }
  x->v[x->n++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

/* Sorts x in place and gives its percentiles, each multiplied by `scale`. */
static struct pct vec_pct(struct vec *x, double scale) {
  struct pct p = {0, 0, 0, 0};
  if (x->n == 0)
    return p;
  qsort(x->v, x->n, sizeof(*x->v), bu_cmp_u32);
  p.p50 = scale * bu_pct_u32(x->v, x->n, 0.50);
  p.p90 = scale * bu_pct_u32(x->v, x->n, 0.90);
  p.p99 = scale * bu_pct_u32(x->v, x->n, 0.99);
  p.max = scale * x->v[x->n - 1];
  return p;
}

static const struct shmbus_topic_opts pingpong_topic = {PINGPONG_SLOTS, MSG_SIZE, 4, 4, false};
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

/* Spin-wait step shared by both spinning ping-pongs, shmbus and baseline
 * alike: pause, and yield once in a while so that a peer preempted on the
 * same CPU gets to run (unpinned, the scheduler may briefly put both there). */
static void spin_step(unsigned *spins) {
  if (++*spins % SPIN_YIELD == 0)
    sched_yield();
  else
    shmbus__cpu_relax();
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
  bus = bp_bus_open("bus-bench-idle");
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

/* ---- latency: the A side's bookkeeping ------------------------------------ */

struct pingpong {
  struct vec *rtt; /* this segment's samples */
  struct vec *ow;
  struct vec *same; /* 1: A and B were on the same CPU, else 0 */
  uint64_t seg_ns;  /* the segment lasts at least this long from the first ping */
  uint64_t t_end;   /* ... that is, until then (set when B is ready) */
  unsigned warmup;  /* round trips not recorded */
  unsigned min_rt;  /* and at least this many recorded */
  unsigned max_rt;  /* at most this many */
  unsigned done;    /* round trips so far, warm-up included */
  uint64_t seq;
  uint64_t t0; /* A's time just before it sent seq */
  bool failed;
};

/* Records a round trip that ended at t1; B received on `b_cpu`. Returns
 * true when the segment is complete. */
static bool pp_record(struct pingpong *pp, uint64_t t1, uint64_t oneway, int b_cpu) {
  if (++pp->done > pp->warmup) {
    vec_push(pp->rtt, t1 - pp->t0);
    vec_push(pp->ow, oneway);
    vec_push(pp->same, sched_getcpu() == b_cpu);
  }
  return (pp->rtt->n >= pp->min_rt && t1 >= pp->t_end) || pp->rtt->n >= pp->max_rt;
}

/* How long A's loop may wait for B: the rest of the segment plus a margin. */
static uint64_t watchdog_ms(const struct pingpong *pp) {
  uint64_t now = bu_now_ns();
  return (pp->t_end > now ? (pp->t_end - now) / 1000000u : 0) + WATCHDOG_MS;
}

static uint64_t oneway_of(uint64_t t_recv, uint64_t ts) {
  return t_recv > ts ? t_recv - ts : 0;
}

/* ---- latency: shmbus in libuv ------------------------------------------- */

struct uv_side {
  uv_loop_t *loop;
  shmbus_pub *pub;
  struct pingpong *pp; /* A only */
  int error;
};

/* B: a ping arrived; note the one-way time and answer. */
static void b_bus_on_ping(shmbus_sub *sub, const void *data, size_t len,
                          const struct shmbus_msg_info *info, void *arg) {
  struct uv_side *b = arg;
  uint64_t t = bu_now_ns();
  struct msg m;
  int rv;
  (void)sub;
  if (len != sizeof(m)) {
    b->error = -EPROTO;
    uv_stop(b->loop);
    return;
  }
  memcpy(&m, data, sizeof(m));
  if (m.seq == STOP_SEQ) {
    uv_stop(b->loop);
    return;
  }
  m.oneway_ns = oneway_of(t, info->ts_ns);
  m.cpu = sched_getcpu();
  if ((rv = shmbus_pub_publish(b->pub, &m, sizeof(m))) < 0) {
    b->error = rv;
    uv_stop(b->loop);
  }
}

static void a_stop(struct uv_side *a, int error) {
  a->error = error;
  uv_stop(a->loop);
}

/* A: the ack arrived; record, then send the next ping (or the stop). */
static void a_bus_on_pong(shmbus_sub *sub, const void *data, size_t len,
                          const struct shmbus_msg_info *info, void *arg) {
  struct uv_side *a = arg;
  struct pingpong *pp = a->pp;
  uint64_t t1 = bu_now_ns();
  struct msg m;
  int rv;
  (void)sub;
  (void)info;
  if (len != sizeof(m)) {
    a_stop(a, -EPROTO);
    return;
  }
  memcpy(&m, data, sizeof(m));
  if (m.seq != pp->seq) {
    a_stop(a, -EPROTO);
    return;
  }
  if (pp_record(pp, t1, m.oneway_ns, m.cpu)) {
    m.seq = STOP_SEQ;
    a_stop(a, shmbus_pub_publish(a->pub, &m, sizeof(m)));
    return;
  }
  m.seq = ++pp->seq;
  pp->t0 = bu_now_ns();
  if ((rv = shmbus_pub_publish(a->pub, &m, sizeof(m))) < 0)
    a_stop(a, rv);
}

static void watchdog_fired(uv_timer_t *t) {
  struct uv_side *a = t->data;
  a_stop(a, -ETIMEDOUT);
}

static void close_cb_none(uv_handle_t *h) {
  (void)h;
}

static int b_uv_bus(int ready_fd) {
  struct uv_side b = {0};
  uv_loop_t loop;
  shmbus_bus *bus;
  shmbus_sub *sub;
  int rv;

  if ((rv = uv_loop_init(&loop)) < 0)
    bp_die("uv_loop_init", rv);
  b.loop = &loop;
  bus = bp_bus_open("bus-bench-b");
  sub = sub_open(bus, "bench/uv/ping", &pingpong_topic);
  b.pub = pub_open(bus, "bench/uv/pong", &pingpong_topic);
  if ((rv = shmbus_uv_bus_start(bus, &loop)) < 0 ||
      (rv = shmbus_uv_sub_start(sub, &loop, b_bus_on_ping, &b)) < 0)
    bp_die("uv start", rv);
  bp_signal_ready(ready_fd);
  (void)uv_run(&loop, UV_RUN_DEFAULT);
  shmbus_bus_close(bus);
  (void)uv_run(&loop, UV_RUN_DEFAULT);
  (void)uv_loop_close(&loop);
  if (b.error != 0)
    bp_die("B", b.error);
  return 0;
}

static void a_uv_bus(struct pingpong *pp, int ready_fd) {
  struct uv_side a = {0};
  struct msg m;
  uv_loop_t loop;
  uv_timer_t watchdog;
  shmbus_bus *bus;
  shmbus_sub *sub;
  int rv;

  if ((rv = uv_loop_init(&loop)) < 0)
    bp_die("uv_loop_init", rv);
  a.loop = &loop;
  a.pp = pp;
  bus = bp_bus_open("bus-bench-a");
  sub = sub_open(bus, "bench/uv/pong", &pingpong_topic);
  a.pub = pub_open(bus, "bench/uv/ping", &pingpong_topic);
  if ((rv = shmbus_uv_bus_start(bus, &loop)) < 0 ||
      (rv = shmbus_uv_sub_start(sub, &loop, a_bus_on_pong, &a)) < 0)
    bp_die("uv start", rv);
  (void)uv_timer_init(&loop, &watchdog);
  watchdog.data = &a;
  bp_await_ready(ready_fd, "B");
  pp->t_end = bu_now_ns() + pp->seg_ns;
  (void)uv_timer_start(&watchdog, watchdog_fired, watchdog_ms(pp), 0);
  memset(&m, 0, sizeof(m));
  m.seq = pp->seq = 1;
  pp->t0 = bu_now_ns();
  publish(a.pub, &m, sizeof(m));
  (void)uv_run(&loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&watchdog, close_cb_none);
  shmbus_bus_close(bus);
  (void)uv_run(&loop, UV_RUN_DEFAULT);
  (void)uv_loop_close(&loop);
  if (a.error != 0)
    bp_die("A (shmbus uv)", a.error);
}

/* ---- latency: eventfd + uv_poll baseline ----------------------------------- */

struct efd_side {
  uv_loop_t *loop;
  int in_fd;  /* our eventfd: the peer signals it */
  int out_fd; /* the peer's */
  struct pingpong *pp;
  int error;
};

static void efd_signal(int fd) {
  uint64_t one = 1;
  if (write(fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
    bp_die_errno("eventfd write");
}

static bool efd_drain(int fd) {
  uint64_t v;
  return read(fd, &v, sizeof(v)) == (ssize_t)sizeof(v);
}

static void b_efd_readable(uv_poll_t *p, int status, int events) {
  struct efd_side *b = p->data;
  uint64_t t;
  struct msg m;
  (void)status;
  (void)events;
  if (!efd_drain(b->in_fd))
    return; /* spurious */
  t = bu_now_ns();
  /* Pairs with A's release fence before its eventfd write. */
  atomic_thread_fence(memory_order_acquire);
  memcpy(&m, &sh->efd_msg[0], sizeof(m));
  if (m.seq == STOP_SEQ) {
    uv_stop(b->loop);
    return;
  }
  m.oneway_ns = oneway_of(t, m.ts_ns);
  m.cpu = sched_getcpu();
  memcpy(&sh->efd_msg[1], &m, sizeof(m));
  /* The ack's bytes before the signal; pairs with A's acquire fence. */
  atomic_thread_fence(memory_order_release);
  efd_signal(b->out_fd);
}

static void a_efd_send(struct efd_side *a, uint64_t seq) {
  struct msg m;
  memset(&m, 0, sizeof(m));
  m.seq = seq;
  a->pp->t0 = bu_now_ns();
  m.ts_ns = a->pp->t0;
  memcpy(&sh->efd_msg[0], &m, sizeof(m));
  atomic_thread_fence(memory_order_release);
  efd_signal(a->out_fd);
}

static void a_efd_readable(uv_poll_t *p, int status, int events) {
  struct efd_side *a = p->data;
  struct pingpong *pp = a->pp;
  uint64_t t1;
  struct msg m;
  (void)status;
  (void)events;
  if (!efd_drain(a->in_fd))
    return;
  t1 = bu_now_ns();
  atomic_thread_fence(memory_order_acquire);
  memcpy(&m, &sh->efd_msg[1], sizeof(m));
  if (m.seq != pp->seq) {
    a->error = -EPROTO;
    uv_stop(a->loop);
    return;
  }
  if (pp_record(pp, t1, m.oneway_ns, m.cpu)) {
    a_efd_send(a, STOP_SEQ);
    uv_stop(a->loop);
    return;
  }
  a_efd_send(a, ++pp->seq);
}

static void efd_watchdog_fired(uv_timer_t *t) {
  struct efd_side *a = t->data;
  a->error = -ETIMEDOUT;
  uv_stop(a->loop);
}

/* Both sides of the baseline: one loop, one uv_poll on the incoming
 * eventfd. A (pp != NULL) also starts the exchange and a watchdog. */
static void efd_side_run(struct efd_side *s, int ready_fd) {
  uv_loop_t loop;
  uv_poll_t poll_h;
  uv_timer_t watchdog;
  int rv;

  if ((rv = uv_loop_init(&loop)) < 0)
    bp_die("uv_loop_init", rv);
  s->loop = &loop;
  if ((rv = uv_poll_init(&loop, &poll_h, s->in_fd)) < 0)
    bp_die("uv_poll_init", rv);
  poll_h.data = s;
  if ((rv = uv_poll_start(&poll_h, UV_READABLE, s->pp != NULL ? a_efd_readable : b_efd_readable)) <
      0)
    bp_die("uv_poll_start", rv);
  if (s->pp != NULL) {
    (void)uv_timer_init(&loop, &watchdog);
    watchdog.data = s;
    bp_await_ready(ready_fd, "B");
    s->pp->t_end = bu_now_ns() + s->pp->seg_ns;
    (void)uv_timer_start(&watchdog, efd_watchdog_fired, watchdog_ms(s->pp), 0);
    s->pp->seq = 1;
    a_efd_send(s, 1);
  } else {
    bp_signal_ready(ready_fd);
  }
  (void)uv_run(&loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&poll_h, close_cb_none);
  if (s->pp != NULL)
    uv_close((uv_handle_t *)&watchdog, close_cb_none);
  (void)uv_run(&loop, UV_RUN_DEFAULT);
  (void)uv_loop_close(&loop);
  if (s->error != 0)
    bp_die(s->pp != NULL ? "A (eventfd)" : "B (eventfd)", s->error);
}

/* ---- latency: busy-polling shmbus ------------------------------------------- */

static int b_spin_bus(int ready_fd) {
  shmbus_bus *bus = bp_bus_open("bus-bench-b");
  shmbus_sub *sub = sub_open(bus, "bench/spin/ping", &pingpong_topic);
  shmbus_pub *pub = pub_open(bus, "bench/spin/pong", &pingpong_topic);
  struct shmbus_msg_info info;
  struct msg m;
  unsigned spins = 0;

  bp_signal_ready(ready_fd);
  for (;;) {
    int rv = shmbus_sub_try_recv(sub, &m, sizeof(m), &info);
    uint64_t t;
    if (rv == -EAGAIN) {
      spin_step(&spins);
      continue;
    }
    t = bu_now_ns();
    if (rv != (int)sizeof(m))
      bp_die("B: shmbus_sub_try_recv", rv < 0 ? rv : -EPROTO);
    if (m.seq == STOP_SEQ)
      break;
    m.oneway_ns = oneway_of(t, info.ts_ns);
    m.cpu = sched_getcpu();
    publish(pub, &m, sizeof(m));
  }
  shmbus_bus_close(bus);
  return 0;
}

static void a_spin_bus(struct pingpong *pp, int ready_fd) {
  shmbus_bus *bus = bp_bus_open("bus-bench-a");
  shmbus_sub *sub = sub_open(bus, "bench/spin/pong", &pingpong_topic);
  shmbus_pub *pub = pub_open(bus, "bench/spin/ping", &pingpong_topic);
  uint64_t deadline;
  struct shmbus_msg_info info;
  struct msg m;

  bp_await_ready(ready_fd, "B");
  pp->t_end = bu_now_ns() + pp->seg_ns;
  deadline = pp->t_end + (uint64_t)WATCHDOG_MS * 1000000u;
  memset(&m, 0, sizeof(m));
  for (pp->seq = 1;; pp->seq++) {
    unsigned spins = 0;
    int rv;
    uint64_t t1;
    m.seq = pp->seq;
    pp->t0 = bu_now_ns();
    publish(pub, &m, sizeof(m));
    while ((rv = shmbus_sub_try_recv(sub, &m, sizeof(m), &info)) == -EAGAIN) {
      spin_step(&spins);
      if (spins % SPIN_YIELD == 0 && bu_now_ns() > deadline)
        bp_die("A (shmbus spin): no answer", -ETIMEDOUT);
    }
    t1 = bu_now_ns();
    if (rv != (int)sizeof(m) || m.seq != pp->seq)
      bp_die("A: shmbus_sub_try_recv", rv < 0 ? rv : -EPROTO);
    if (pp_record(pp, t1, m.oneway_ns, m.cpu))
      break;
  }
  m.seq = STOP_SEQ;
  publish(pub, &m, sizeof(m));
  shmbus_bus_close(bus);
}

/* ---- latency: cache-line ping-pong baseline ------------------------------- */

/* B answers every new ping sequence number on its own line. The timestamp
 * and the one-way time travel in the same line as the sequence number. */
static int b_spin_line(int ready_fd) {
  uint64_t last = 0;
  bp_signal_ready(ready_fd);
  for (;;) {
    unsigned spins = 0;
    uint64_t s, t;
    /* Acquire: pairs with A's release store of seq; ts_ns is then A's. */
    while ((s = atomic_load_explicit(&sh->ping.seq, memory_order_acquire)) == last)
      spin_step(&spins);
    t = bu_now_ns();
    if (s == STOP_SEQ)
      break;
    atomic_store_explicit(&sh->pong.cpu, sched_getcpu(), memory_order_relaxed);
    atomic_store_explicit(&sh->pong.oneway_ns,
                          oneway_of(t, atomic_load_explicit(&sh->ping.ts_ns, memory_order_relaxed)),
                          memory_order_relaxed);
    /* Release: the one-way time before the sequence number A waits for. */
    atomic_store_explicit(&sh->pong.seq, s, memory_order_release);
    last = s;
  }
  return 0;
}

static void a_spin_line(struct pingpong *pp, int ready_fd) {
  uint64_t deadline;
  bp_await_ready(ready_fd, "B");
  pp->t_end = bu_now_ns() + pp->seg_ns;
  deadline = pp->t_end + (uint64_t)WATCHDOG_MS * 1000000u;
  for (pp->seq = 1;; pp->seq++) {
    unsigned spins = 0;
    uint64_t t1;
    pp->t0 = bu_now_ns();
    atomic_store_explicit(&sh->ping.ts_ns, pp->t0, memory_order_relaxed);
    /* Release: the timestamp before the sequence number B waits for. */
    atomic_store_explicit(&sh->ping.seq, pp->seq, memory_order_release);
    /* Acquire: pairs with B's release store; oneway_ns is then B's. */
    while (atomic_load_explicit(&sh->pong.seq, memory_order_acquire) != pp->seq) {
      spin_step(&spins);
      if (spins % SPIN_YIELD == 0 && bu_now_ns() > deadline)
        bp_die("A (cache line): no answer", -ETIMEDOUT);
    }
    t1 = bu_now_ns();
    if (pp_record(pp, t1, atomic_load_explicit(&sh->pong.oneway_ns, memory_order_relaxed),
                  atomic_load_explicit(&sh->pong.cpu, memory_order_relaxed)))
      break;
  }
  atomic_store_explicit(&sh->ping.seq, STOP_SEQ, memory_order_release);
}

/* ---- latency segments ------------------------------------------------------- */

/* One segment of latency configuration k: fork B, play A here. */
static void seg_latency(enum cfg k, struct lat_result *res, const struct options *o, bool keep) {
  static struct vec rtt, ow, same, cross;
  struct pingpong pp;
  int ready[2];
  int efd[2] = {-1, -1}; /* [0] A -> B, [1] B -> A (eventfd baseline) */
  bool uv = k == C_UV_BUS || k == C_UV_EFD;
  pid_t pid;

  rtt.n = ow.n = same.n = cross.n = 0;
  memset(&pp, 0, sizeof(pp));
  pp.rtt = &rtt;
  pp.ow = &ow;
  pp.same = &same;
  pp.warmup = uv ? UV_WARMUP : SPIN_WARMUP;
  pp.min_rt = uv ? o->uv_min : o->spin_min;
  pp.max_rt = uv ? UV_MAX_RT : SPIN_MAX_RT;
  if (pp.max_rt < pp.min_rt)
    pp.max_rt = pp.min_rt;
  if (k == C_SPIN_LINE) {
    atomic_store(&sh->ping.seq, 0);
    atomic_store(&sh->pong.seq, 0);
  }
  if (k == C_UV_EFD) {
    efd[0] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    efd[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd[0] < 0 || efd[1] < 0)
      bp_die_errno("eventfd");
  }
  if (pipe2(ready, O_CLOEXEC) != 0)
    bp_die_errno("pipe2");
  pid = bp_fork();
  if (pid == 0) {
    close(ready[0]);
    bu_pin(o->pin ? (int)(1 % n_cpus) : -1);
    switch (k) {
    case C_UV_BUS:
      _exit(b_uv_bus(ready[1]));
    case C_UV_EFD: {
      struct efd_side b = {NULL, efd[0], efd[1], NULL, 0};
      efd_side_run(&b, ready[1]);
      _exit(0);
    }
    case C_SPIN_BUS:
      _exit(b_spin_bus(ready[1]));
    default:
      _exit(b_spin_line(ready[1]));
    }
  }
  close(ready[1]);
  pp.seg_ns = (uint64_t)(uv ? o->uv_ms : o->spin_ms) * 1000000u;
  switch (k) {
  case C_UV_BUS:
    a_uv_bus(&pp, ready[0]);
    break;
  case C_UV_EFD: {
    struct efd_side a = {NULL, efd[1], efd[0], &pp, 0};
    efd_side_run(&a, ready[0]);
    break;
  }
  case C_SPIN_BUS:
    a_spin_bus(&pp, ready[0]);
    break;
  default:
    a_spin_line(&pp, ready[0]);
    break;
  }
  close(ready[0]);
  bp_reap(pid, "B");
  if (efd[0] >= 0) {
    close(efd[0]);
    close(efd[1]);
  }
  if (!keep)
    return;
  {
    size_t i;
    for (i = 0; i < rtt.n; i++) {
      vec_push(&res->rtt[same.v[i]], rtt.v[i]);
      vec_push(&res->oneway[same.v[i]], ow.v[i]);
      if (!same.v[i])
        vec_push(&cross, rtt.v[i]);
    }
  }
  if (cross.n >= MIN_SEG_RT) {
    struct pct p = vec_pct(&cross, 0.5);
    vec_push(&res->seg_p50, (uint64_t)(p.p50 + 0.5));
  } else {
    vec_push(&res->seg_p50, 0);
  }
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
  shmbus_bus *bus = bp_bus_open("bus-bench-sub");
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
  bus = bp_bus_open("bus-bench-pub");
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

/* The cost of one clock_gettime(CLOCK_MONOTONIC) here: the ping-pongs read
 * the clock a few times per round trip (shmbus's publish once more per
 * message than the baselines, for the message timestamp). */
static double measure_clock_cost(void) {
  double best = 1e9;
  unsigned r, i;
  for (r = 0; r < 5; r++) {
    uint64_t t0 = bu_now_ns(), t1;
    volatile uint64_t sink = 0;
    for (i = 0; i < 100000; i++)
      sink += bu_now_ns();
    t1 = bu_now_ns();
    (void)sink;
    if ((double)(t1 - t0) / 100000.0 < best)
      best = (double)(t1 - t0) / 100000.0;
  }
  return best;
}

static double ratio(double a, double b) {
  return b > 0 ? a / b : 0.0;
}

static const char *verdict(bool ok) {
  return ok ? "met" : "NOT met";
}

static void finish_lat(struct lat_result *r) {
  size_t i;
  for (i = 0; i < 2; i++) {
    r->half[i] = vec_pct(&r->rtt[i], 0.5);
    r->ow[i] = vec_pct(&r->oneway[i], 1.0);
  }
  r->seg_lo = r->seg_hi = 0;
  for (i = 0; i < r->seg_p50.n; i++) {
    double v = r->seg_p50.v[i];
    if (v == 0)
      continue;
    if (r->seg_lo == 0 || v < r->seg_lo)
      r->seg_lo = v;
    if (v > r->seg_hi)
      r->seg_hi = v;
  }
}

/* The ratio of a's to b's segment medians, round by round (both ran in
 * the same round, a few seconds apart at most): median, min and max over
 * the rounds where both had enough different-CPU round trips. Returns how
 * many rounds counted. */
static size_t paired_ratio(const struct lat_result *a, const struct lat_result *b, double *med,
                           double *lo, double *hi) {
  size_t n = a->seg_p50.n < b->seg_p50.n ? a->seg_p50.n : b->seg_p50.n;
  double *v = malloc((n + 1) * sizeof(*v));
  size_t i, k = 0;
  *med = *lo = *hi = 0;
  if (v == NULL)
    return 0;
  for (i = 0; i < n; i++)
    if (a->seg_p50.v[i] != 0 && b->seg_p50.v[i] != 0)
      v[k++] = (double)a->seg_p50.v[i] / b->seg_p50.v[i];
  if (k > 0) {
    qsort(v, k, sizeof(*v), bu_cmp_double);
    *med = bu_pct_double(v, k, 0.5);
    *lo = v[0];
    *hi = v[k - 1];
  }
  free(v);
  return k;
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

/* One latency table: two rows (shmbus, baseline) over the round trips with
 * A and B on different CPUs, their ratio, then the same-CPU remainder and
 * the round-by-round ratio; in µs with `prec` decimals. */
static void print_lat_table(const struct lat_result *bus, const struct lat_result *base,
                            const char *bus_name, const char *base_name, int prec) {
  const struct lat_result *rows[2] = {bus, base};
  const char *names[2] = {bus_name, base_name};
  double med, lo, hi;
  size_t rounds;
  unsigned i;
  printf("| configuration | round trips: different CPUs / all | RTT/2 p50 | p90 | p99 | max | "
         "one-way (timestamps) "
         "p50 | p90 | p99 | max | RTT/2 p50 per round, min–max |\n");
  printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (i = 0; i < 2; i++) {
    const struct lat_result *r = rows[i];
    const struct pct *h = &r->half[0], *w = &r->ow[0];
    printf(
        "| %s | %zu / %zu | %.*f | %.*f | %.*f | %.*f | %.*f | %.*f | %.*f | %.*f | %.*f–%.*f |\n",
        names[i], r->rtt[0].n, r->rtt[0].n + r->rtt[1].n, prec, h->p50 / 1e3, prec, h->p90 / 1e3,
        prec, h->p99 / 1e3, prec, h->max / 1e3, prec, w->p50 / 1e3, prec, w->p90 / 1e3, prec,
        w->p99 / 1e3, prec, w->max / 1e3, prec, r->seg_lo / 1e3, prec, r->seg_hi / 1e3);
  }
  printf("| shmbus / baseline | | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | |\n",
         ratio(bus->half[0].p50, base->half[0].p50), ratio(bus->half[0].p90, base->half[0].p90),
         ratio(bus->half[0].p99, base->half[0].p99), ratio(bus->half[0].max, base->half[0].max),
         ratio(bus->ow[0].p50, base->ow[0].p50), ratio(bus->ow[0].p90, base->ow[0].p90),
         ratio(bus->ow[0].p99, base->ow[0].p99), ratio(bus->ow[0].max, base->ow[0].max));
  rounds = paired_ratio(bus, base, &med, &lo, &hi);
  printf("\nRound trips with A and B on different CPUs (as each saw with sched_getcpu). "
         "Round by round, shmbus RTT/2 p50 / baseline RTT/2 p50: median %.2f, min %.2f, max "
         "%.2f over %zu rounds. Same CPU (left out above): shmbus %.1f%% of its round trips",
         med, lo, hi, rounds,
         100.0 * ratio((double)bus->rtt[1].n, (double)(bus->rtt[0].n + bus->rtt[1].n)));
  if (bus->rtt[1].n > 0)
    printf(" (RTT/2 p50 %.*f µs)", prec, bus->half[1].p50 / 1e3);
  printf(", baseline %.1f%%",
         100.0 * ratio((double)base->rtt[1].n, (double)(base->rtt[0].n + base->rtt[1].n)));
  if (base->rtt[1].n > 0)
    printf(" (RTT/2 p50 %.*f µs)", prec, base->half[1].p50 / 1e3);
  printf(".\n");
}

static void print_report(struct lat_result *lat, struct pub_result *pub,
                         const struct idle_result *idle, const struct options *o, double elapsed_s,
                         const char *load_before, const char *load_after, int daemon_status) {
  struct utsname u;
  char cpu[384];
  const char *bt = SHMBUS_BENCH_BUILD_TYPE;
  const struct pub_result *p0 = &pub[C_PUB0 - C_PUB0], *p1 = &pub[C_PUB1 - C_PUB0],
                          *p8 = &pub[C_PUB8 - C_PUB0];
  double r_uv = ratio(lat[C_UV_BUS].half[0].p50, lat[C_UV_EFD].half[0].p50);
  double r_spin = ratio(lat[C_SPIN_BUS].half[0].p50, lat[C_SPIN_LINE].half[0].p50);
  double r_pub = ratio(p8->all.median, p1->all.median);
  double r_near = p1->near.n >= MIN_SPLIT && p8->near.n >= MIN_SPLIT
                      ? ratio(p8->near.median, p1->near.median)
                      : 0.0;
  bool idle_cpu_ok = idle->ticks == 0 && (double)idle->vol_cs <= idle->window_s + 1.0;
  unsigned i;

  bu_cpu_model(cpu, sizeof(cpu));
  if (uname(&u) != 0)
    memset(&u, 0, sizeof(u));
  printf("# shmbus bus benchmarks (daemon, public API, processes)\n\n");
  printf("cpu: %s, %ld online CPUs; kernel: %s %s %s; compiler: %s; bench -O2, library "
         "build type %s; pinning %s; clock_gettime(CLOCK_MONOTONIC) %.1f ns\n\n",
         cpu, n_cpus, u.sysname, u.release, u.machine,
#ifdef __VERSION__
         __VERSION__,
#else
         "unknown",
#endif
         bt[0] != '\0' ? bt : "none",
         o->pin ? "on (A and the publisher on CPU 0, B and the subscribers on CPUs 1..)" : "off",
         clock_cost_ns);
  printf("daemon: %s; %u measured rounds (+1 warm-up), configurations shuffled per round; "
         "segments: uv %u ms (>= %u kept round trips), spin %u ms (>= %u), publish %u ms "
         "(>= %u batches of %u)%s; run took %.1f s; load average before %s, after %s.\n\n",
         o->daemon, o->rounds, o->uv_ms, o->uv_min, o->spin_ms, o->spin_min, o->pub_ms,
         PUB_MIN_BATCHES, PUB_BATCH, o->quick ? " [--quick]" : "", elapsed_s, load_before,
         load_after);

  printf("## 1. One-way latency, 64 B, both sides asleep in libuv between messages: µs\n\n");
  print_lat_table(&lat[C_UV_BUS], &lat[C_UV_EFD], "shmbus: shmbus_uv_sub_start",
                  "baseline: eventfd + uv_poll", 2);

  printf("\n## 2. One-way latency, 64 B, both sides busy-polling: µs\n\n");
  print_lat_table(&lat[C_SPIN_BUS], &lat[C_SPIN_LINE], "shmbus: shmbus_sub_try_recv spin",
                  "baseline: cache-line ping-pong", 3);

  printf("\n## 3. Publish cost, 64 B, with busy-polling (awake) lossy subscriber processes: "
         "ns per shmbus_pub_publish\n\n");
  printf("| subscribers | median (p10–p90) | per round, min–max | batches | / 1 sub | "
         "received per subscriber and segment | lost | received share |\n");
  printf("|---|---|---|---|---|---|---|---|\n");
  for (i = 0; i < 3; i++) {
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
  for (i = 1; i < 3; i++) {
    char c[2][96];
    split_cell(c[0], sizeof(c[0]), &pub[i].near, &pub[i].far);
    split_cell(c[1], sizeof(c[1]), &pub[i].far, &pub[i].near);
    printf("| %u | %s | %s |\n", i == 1 ? 1 : MAX_SUBS, c[0], c[1]);
  }

  printf("\n## 4. Idle daemon with %u topics open (%u of 16 slots x 64 B, %u of the default "
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
  {
    double pm[2], lo, hi;
    (void)paired_ratio(&lat[C_UV_BUS], &lat[C_UV_EFD], &pm[0], &lo, &hi);
    (void)paired_ratio(&lat[C_SPIN_BUS], &lat[C_SPIN_LINE], &pm[1], &lo, &hi);
    printf("- 1. uv one-way within 1.15x of eventfd + uv_poll (different CPUs): RTT/2 p50 %.2f vs "
           "%.2f µs = %.2fx (timestamps: %.2fx; round by round: median %.2fx) -> %s\n",
           lat[C_UV_BUS].half[0].p50 / 1e3, lat[C_UV_EFD].half[0].p50 / 1e3, r_uv,
           ratio(lat[C_UV_BUS].ow[0].p50, lat[C_UV_EFD].ow[0].p50), pm[0], verdict(r_uv <= 1.15));
    printf("- 2. busy-poll one-way within 2x of the cache-line ping-pong: RTT/2 p50 %.3f vs %.3f "
           "µs = %.2fx (timestamps: %.2fx; round by round: median %.2fx) -> %s\n",
           lat[C_SPIN_BUS].half[0].p50 / 1e3, lat[C_SPIN_LINE].half[0].p50 / 1e3, r_spin,
           ratio(lat[C_SPIN_BUS].ow[0].p50, lat[C_SPIN_LINE].ow[0].p50), pm[1],
           verdict(r_spin <= 2.0));
  }
  printf("- 3. publish with 8 awake subscribers within 1.2x of 1: all batches %.1f vs %.1f ns "
         "= %.2fx",
         p8->all.median, p1->all.median, r_pub);
  if (r_near > 0)
    printf(", a subscriber keeping up %.1f vs %.1f ns = %.2fx", p8->near.median, p1->near.median,
           r_near);
  else
    printf(", a subscriber keeping up: too few batches to compare");
  printf(" -> %s%s\n", verdict(r_pub <= 1.2 && r_near <= 1.2),
         n_cpus < MAX_SUBS + 1 ? " (see the note on CPUs)" : "");
  printf("- 4a. idle daemon RssAnon < 4 MiB with %u topics: %ld KiB -> %s\n", IDLE_TOPICS,
         idle->rss_anon1, verdict(idle->rss_anon1 >= 0 && idle->rss_anon1 < 4096));
  printf("- 4b. no CPU while idle (nothing firing more often than once a second): %ld ticks, "
         "%.3f ms, %ld wake-ups in %.2f s -> %s\n",
         idle->ticks, (double)idle->sched_ns / 1e6, idle->vol_cs, idle->window_s,
         verdict(idle_cpu_ok));

  printf("\n## Notes\n\n");
  printf("- Latency: A sends only after it got the previous ack, so one message is in flight. "
         "RTT/2 is half of A's round trip (clock before its send to clock after the ack "
         "arrived); the timestamp column is B's clock when its callback (or poll loop) got the "
         "message minus the send time: for shmbus the message's ts_ns, taken inside "
         "shmbus_pub_publish, for the baselines the time written just before the eventfd "
         "write or the release store. Both clocks are CLOCK_MONOTONIC on one machine. The "
         "first %u (uv) or %u (spin) round trips of each segment and the whole first round "
         "are discarded.\n",
         UV_WARMUP, SPIN_WARMUP);
  printf("- Same or different CPUs: A notes sched_getcpu() when the ack arrives, B when the "
         "ping arrives. Unpinned, the scheduler often runs both on one CPU (a wake-up then "
         "makes the woken process run next on the waker's CPU: a context switch of a few µs, "
         "no cross-CPU wake-up); how often varies from segment to segment and run to run. "
         "The tables hold only round trips on different CPUs, the case the targets are "
         "about; the sentence under each gives the share and median of the rest. The "
         "per-round column and the round-by-round ratio show drift: each round runs every "
         "configuration once, in a shuffled order. --pin keeps A and B apart.\n");
  printf("- uv: each process runs uv_run; in shmbus's case the subscriber's eventfd is a "
         "uv_poll handle inside the library (plus the bus socket, which stays quiet), and "
         "every wake-up is one eventfd write by the publisher that found the subscriber's "
         "sleeper bit. The baseline copies the same 64 B through a shared page and writes "
         "the peer's eventfd; nothing else.\n");
  printf("- Spin: both sides pause between polls and call sched_yield every %u polls (the "
         "same in both rows), so a peer preempted on the same CPU gets to run; unpinned, "
         "the scheduler can briefly place both on one CPU, which shows in p99 and max. "
         "What a cache line costs to move between the two CPUs depends on where the host "
         "runs them (in a VM two vCPUs may be siblings of one core, or on different cores) "
         "and can change during a run: see the per-round column. "
         "shmbus's publish reads the clock once per message for ts_ns (%.0f ns here) and "
         "copies 64 B in and out; the baseline moves one cache line per direction.\n",
         SPIN_YIELD, clock_cost_ns);
  if (n_cpus < MAX_SUBS + 1)
    printf("- Publish: this machine has %ld online CPUs, so the publisher and %u spinning "
           "subscriber processes time-share them: at any moment at most %ld subscriber(s) "
           "poll next to the publisher, and a batch that spans a preemption counts whole "
           "(p90). What the 8-sub row adds over the 1-sub row here is that sharing, not 8 "
           "concurrent readers; the received share shows how much each subscriber kept up "
           "(lossy subscribers that fall a ring behind skip ahead and count what they "
           "missed: received + lost = published since they joined). It needs >= %u CPUs "
           "to mean what the target means.\n",
           n_cpus, MAX_SUBS, n_cpus - 1, MAX_SUBS + 1);
  printf("- Publish: batches of %u publishes, timed whole; every publish reads the clock for "
         "its timestamp. Two laps of the %u-slot ring are written before timing, and "
         "timing starts once every subscriber received a message%s.\n",
         PUB_BATCH, FANOUT_SLOTS,
         p0->warmup_timeouts + p1->warmup_timeouts + p8->warmup_timeouts != 0
             ? " (some segments started before every subscriber had: see warm-up timeouts)"
             : "");
  printf("- Idle: RssAnon is the daemon's private memory (heap); the topics' shared memory "
         "shows in RssShmem only for the pages the daemon touched (headers and records). "
         "A voluntary context switch is the daemon going to sleep, so over an idle window "
         "it counts wake-ups; ticks have a resolution of 1/%ld s, schedstat of 1 ns.\n",
         idle->clk_tck);
  if (!WIFEXITED(daemon_status) || WEXITSTATUS(daemon_status) != 0)
    printf("- The daemon did not stop cleanly on SIGTERM (%s %d).\n",
           WIFEXITED(daemon_status) ? "exit status" : "signal",
           WIFEXITED(daemon_status) ? WEXITSTATUS(daemon_status) : WTERMSIG(daemon_status));
  else
    printf("- The daemon stopped cleanly on SIGTERM (exit status 0).\n");
}

/* ---- main ---------------------------------------------------------------------- */

static void usage(FILE *f) {
  fprintf(f, "Usage: shmbus-bus-bench [--quick] [--pin] [--rounds N] [--window-ms N]\n"
             "                        [--daemon PATH]\n"
             "\n"
             "Benchmarks of the public shmbus API between processes, with a shmbusd of its\n"
             "own: one-way latency asleep in libuv (vs eventfd + uv_poll) and busy-polling\n"
             "(vs a cache-line ping-pong), publish cost with 1 and 8 awake subscribers, and\n"
             "an idle daemon holding 1,000 topics. Prints markdown.\n"
             "\n"
             "  --quick         a short run (under 15 s), for smoke tests; numbers are rough\n"
             "  --pin           pin A and the publisher to CPU 0, B and subscribers to CPUs 1..\n"
             "  --rounds N      measured rounds (default 20; --quick: 3)\n"
             "  --window-ms N   idle window for the daemon (default 3000; --quick: 1000)\n"
             "  --daemon PATH   the shmbusd to start (default: the one built with this program,\n"
             "                  " SHMBUSD_PATH ")\n"
             "  --help          this text\n"
             "\n"
             "Default run: about 35 s. Exit status 0 whatever the timings; 1 if the daemon\n"
             "or a bus operation fails; 2 on a bad argument.\n");
}

int main(int argc, char **argv) {
  struct options o;
  struct lat_result lat[C_PUB0];
  struct pub_result pub[C_COUNT - C_PUB0];
  struct idle_result idle;
  unsigned rounds = 0, window_ms = 0, r, k;
  unsigned order[C_COUNT];
  uint64_t rnd = 0x9e3779b97f4a7c15u;
  char load_before[64], load_after[64];
  uint64_t t_start;
  int daemon_status = 0;
  int a;

  memset(&o, 0, sizeof(o));
  o.daemon = SHMBUSD_PATH;
  for (a = 1; a < argc; a++) {
    if (strcmp(argv[a], "--quick") == 0) {
      o.quick = true;
    } else if (strcmp(argv[a], "--pin") == 0) {
      o.pin = true;
    } else if (strcmp(argv[a], "--rounds") == 0) {
      rounds = bu_parse_count("shmbus-bus-bench", a + 1 < argc ? argv[++a] : NULL, "--rounds");
    } else if (strcmp(argv[a], "--window-ms") == 0) {
      window_ms =
          bu_parse_count("shmbus-bus-bench", a + 1 < argc ? argv[++a] : NULL, "--window-ms");
    } else if (strcmp(argv[a], "--daemon") == 0) {
      if (a + 1 >= argc || argv[a + 1][0] == '\0') {
        fprintf(stderr, "shmbus-bus-bench: --daemon needs a path\n");
        return 2;
      }
      o.daemon = argv[++a];
    } else if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "shmbus-bus-bench: unknown argument '%s'\n", argv[a]);
      usage(stderr);
      return 2;
    }
  }
  o.rounds = rounds != 0 ? rounds : (o.quick ? 3 : 20);
  o.window_ms = window_ms != 0 ? window_ms : (o.quick ? 1000 : 3000);
  o.uv_ms = o.quick ? 80 : 300;
  o.spin_ms = o.quick ? 30 : 100;
  o.pub_ms = o.quick ? 60 : 250;
  o.uv_min = o.quick ? 300 : 1000;
  o.spin_min = o.quick ? 2000 : 10000;

  signal(SIGPIPE, SIG_IGN);
  bp_init("shmbus-bus-bench");
  n_cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (n_cpus < 1)
    n_cpus = 1;
  memset(lat, 0, sizeof(lat));
  memset(pub, 0, sizeof(pub));
  memset(&idle, 0, sizeof(idle));
  sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sh == MAP_FAILED)
    bp_die_errno("mmap");
  memset(sh, 0, sizeof(*sh));

  bu_load_average(load_before, sizeof(load_before));
  t_start = bu_now_ns();
  bp_daemon_start(o.daemon); /* before pinning: the daemon runs anywhere */
  idle_measure(&idle, &o);
  if (o.pin)
    bu_pin(0);
  clock_cost_ns = measure_clock_cost();

  /* Round 0 warms up and is not kept. Each round runs the configurations
   * in a new order (a fixed-seed shuffle, so runs are alike). */
  for (k = 0; k < C_COUNT; k++)
    order[k] = k;
  for (r = 0; r <= o.rounds; r++) {
    for (k = C_COUNT - 1; k > 0; k--) {
      unsigned j = (unsigned)(bu_next_random(&rnd) % (k + 1)), t = order[k];
      order[k] = order[j];
      order[j] = t;
    }
    for (k = 0; k < C_COUNT; k++) {
      enum cfg c = (enum cfg)order[k];
      if (c < C_PUB0)
        seg_latency(c, &lat[c], &o, r > 0);
      else
        seg_publish(c == C_PUB0 ? 0 : (c == C_PUB1 ? 1 : MAX_SUBS), &pub[c - C_PUB0], &o, r > 0);
    }
  }
  bp_daemon_stop(&daemon_status);
  bp_dir_remove();

  for (k = 0; k < C_PUB0; k++)
    finish_lat(&lat[k]);
  for (k = 0; k < C_COUNT - C_PUB0; k++)
    finish_pub(&pub[k]);
  bu_load_average(load_after, sizeof(load_after));
  print_report(lat, pub, &idle, &o, (double)(bu_now_ns() - t_start) / 1e9, load_before, load_after,
               daemon_status);
  for (k = 0; k < C_PUB0; k++) {
    free(lat[k].rtt[0].v);
    free(lat[k].rtt[1].v);
    free(lat[k].oneway[0].v);
    free(lat[k].oneway[1].v);
    free(lat[k].seg_p50.v);
  }
  for (k = 0; k < C_COUNT - C_PUB0; k++) {
    free(pub[k].all.v);
    free(pub[k].near.v);
    free(pub[k].far.v);
    free(pub[k].seg_med);
  }
  return 0;
}
