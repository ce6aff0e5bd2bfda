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
 *
 * Linux and Windows: the child processes are bp_child's (forked on Linux,
 * this program again on Windows: costs_child), the memory they share with
 * the parent bp_map_shared's, and what is read of the daemon's process
 * goes through platform/costs_os.h. Windows has no counterpart of the
 * scheduler's run time or of voluntary context switches (wake-ups): the
 * idle report says "not available on Windows" there. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atomics.h"
#include "benchproc.h"
#include "benchutil.h"
#include "bus.h" /* internal: the publisher's view of head and cursors, read between batches */
#include "costs.h"
#include "platform/costs_os.h"
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
  long mem0[3];    /* KiB, fresh daemon (0 topics), by enum costs_mem; -1: not available */
  long mem1[3];    /* KiB, with the topics open */
  long mem2;       /* KiB, private, after the client closed them */
  double open_ms;  /* time the client took to open them all */
  double window_s; /* measured window */
  long ticks;      /* CPU time over the window, in 1/clk_tck s; -1: not readable */
  long clk_tck;
  bool has_sched;
  uint64_t sched_ns;      /* scheduler run time over the window */
  long vol_cs, nonvol_cs; /* context switches over the window; -1: not available */
  int threads;            /* -1: not available */
  int fds;                /* daemon's open descriptors (handles) with the topics */
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

/* Shared with every child (bp_map_shared, made before the first child).
 * Each line has one writer. */
struct shared {
  _Alignas(64) _Atomic uint32_t stop;       /* the parent: fan-out subscribers stop */
  _Atomic uint32_t idle_release;            /* the parent: the idle client closes its topics */
  _Alignas(64) _Atomic uint32_t idle_ready; /* the idle client: its topics are open */
  struct sub_slot subs[MAX_SUBS];
};

/* The program's arguments (bp_child passes them to a child on Windows). */
static int main_argc;
static char **main_argv;
static int costs_job(char **job, unsigned n);

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

/* ---- idle daemon ------------------------------------------------------------ */

/* The idle client: opens the topics, says so, then waits until the
 * parent releases it (looking every 50 ms: it is not the process
 * measured), or its parent is gone. */
static int idle_client(void) {
  static const struct shmbus_topic_opts small = {16, 64, 4, 2, false};
  shmbus_bus *bus;
  shmbus_pub *pub;
  char name[64];
  unsigned i;
  int rv;

  costs_os_raise_fd_limit();
  bus = bp_bus_open("bench-idle");
  for (i = 0; i < IDLE_TOPICS; i++) {
    snprintf(name, sizeof(name), "idle/%s/%04u", i < IDLE_DEFAULT_TOPICS ? "default" : "small", i);
    if ((rv = shmbus_pub_open(bus, name, i < IDLE_DEFAULT_TOPICS ? NULL : &small, &pub)) < 0)
      bp_die("idle client: shmbus_pub_open", rv);
  }
  /* Release: the topics are open before the parent measures. */
  atomic_store_explicit(&sh->idle_ready, 1, memory_order_release);
  while (!atomic_load_explicit(&sh->idle_release, memory_order_acquire) && bp_parent_alive())
    bu_sleep_ms(50);
  shmbus_bus_close(bus);
  return 0;
}

/* The daemon's three memory figures now. */
static void idle_mem(long mem[3]) {
  unsigned m;
  for (m = 0; m < 3; m++)
    mem[m] = costs_os_mem_kb(bp_daemon_pid(), (enum costs_mem)m);
}

/* b - a, or -1 when either is not available. */
static long since(long a, long b) {
  return a < 0 || b < 0 ? -1 : b - a;
}

static void idle_measure(struct idle_result *r, const struct options *o) {
  char *job[1] = {"idle"};
  long ticks0, cs0, ncs0;
  uint64_t t0, t1, s0 = 0, s1 = 0, t_end;
  pid_t pid;

  r->clk_tck = costs_os_cpu_hz();
  idle_mem(r->mem0);
  atomic_store(&sh->idle_ready, 0);
  atomic_store(&sh->idle_release, 0);
  t0 = bu_now_ns();
  pid = bp_child(costs_job, job, 1, main_argc, main_argv);
  /* Acquire: pairs with the client's release once its topics are open. */
  t_end = t0 + 30000000000u;
  while (!atomic_load_explicit(&sh->idle_ready, memory_order_acquire)) {
    if (bu_now_ns() > t_end)
      bp_die("the idle client did not open its topics", -ETIMEDOUT);
    bu_sleep_ms(1);
  }
  r->open_ms = (double)(bu_now_ns() - t0) / 1e6;
  bu_sleep_ms(SETTLE_MS);

  idle_mem(r->mem1);
  r->fds = costs_os_handles(bp_daemon_pid());
  ticks0 = costs_os_cpu(bp_daemon_pid());
  r->has_sched = costs_os_sched_ns(bp_daemon_pid(), &s0);
  cs0 = costs_os_ctx_switches(bp_daemon_pid(), true, NULL);
  ncs0 = costs_os_ctx_switches(bp_daemon_pid(), false, NULL);
  t0 = bu_now_ns();
  bu_sleep_ms(o->window_ms);
  t1 = bu_now_ns();
  r->ticks = since(ticks0, costs_os_cpu(bp_daemon_pid()));
  r->has_sched = costs_os_sched_ns(bp_daemon_pid(), &s1) && r->has_sched;
  r->sched_ns = s1 - s0;
  r->vol_cs = since(cs0, costs_os_ctx_switches(bp_daemon_pid(), true, &r->threads));
  r->nonvol_cs = since(ncs0, costs_os_ctx_switches(bp_daemon_pid(), false, NULL));
  r->window_s = (double)(t1 - t0) / 1e9;

  /* The client closes its topics and exits. */
  atomic_store_explicit(&sh->idle_release, 1, memory_order_release);
  bp_reap(pid, "the idle client");
  bu_sleep_ms(SETTLE_MS);
  r->mem2 = costs_os_mem_kb(bp_daemon_pid(), COSTS_MEM_PRIVATE);
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
    char idx[16], cpu[16];
    char *job[3] = {"sub", idx, cpu};
    snprintf(idx, sizeof(idx), "%u", i);
    snprintf(cpu, sizeof(cpu), "%d", o->pin ? (int)((1 + i) % (unsigned)n_cpus) : -1);
    pids[i] = bp_child(costs_job, job, 3, main_argc, main_argv);
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
    costs_os_yield();
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
  char cpu[384], kernel[256];
  const char *bt = SHMBUS_BENCH_BUILD_TYPE;

  bu_cpu_model(cpu, sizeof(cpu));
  bu_kernel(kernel, sizeof(kernel));
  printf("# shmbus-bench %s\n\n", what);
  printf("cpu: %s, %ld online CPUs; kernel: %s; compiler: %s; bench -O2, library "
         "build type %s; pinning %s\n\n",
         cpu, n_cpus, kernel,
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
    printf("- The daemon did not stop cleanly %s (%s %d).\n", costs_os_daemon_stop,
           WIFEXITED(daemon_status) ? "exit status" : "signal",
           WIFEXITED(daemon_status) ? WEXITSTATUS(daemon_status) : WTERMSIG(daemon_status));
  else
    printf("- The daemon stopped cleanly %s (exit status 0).\n", costs_os_daemon_stop);
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
         n_cpus < (long)MAX_SUBS + 1 ? " (see the note on CPUs)" : "");
  printf("\n## Notes\n\n");
  if (n_cpus < (long)MAX_SUBS + 1)
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

/* A figure in KiB, or that it is not available here. */
static const char *kib_cell(char *out, size_t cap, long kb) {
  if (kb < 0)
    snprintf(out, cap, "not available on %s", costs_os_name);
  else
    snprintf(out, cap, "%ld KiB", kb);
  return out;
}

static void print_idle(const struct idle_result *idle) {
  bool cs_known = idle->vol_cs >= 0;
  bool idle_cpu_ok =
      idle->ticks == 0 && (!cs_known || (double)idle->vol_cs <= idle->window_s + 1.0);
  char c[3][64], na[64];
  unsigned m;

  snprintf(na, sizeof(na), "not available on %s", costs_os_name);
  printf("## Idle daemon with %u topics open (%u of 16 slots x 64 B, %u of the default "
         "256 x 1 KiB; one publisher each, from one client)\n\n",
         IDLE_TOPICS, IDLE_TOPICS - IDLE_DEFAULT_TOPICS, IDLE_DEFAULT_TOPICS);
  printf("| daemon state | %s | %s | %s |\n|---|---|---|---|\n",
         costs_os_mem_name(COSTS_MEM_PRIVATE), costs_os_mem_name(COSTS_MEM_SHARED),
         costs_os_mem_name(COSTS_MEM_RESIDENT));
  for (m = 0; m < 3; m++)
    kib_cell(c[m], sizeof(c[m]), idle->mem0[m]);
  printf("| fresh, 0 topics | %s | %s | %s |\n", c[0], c[1], c[2]);
  for (m = 0; m < 3; m++)
    kib_cell(c[m], sizeof(c[m]), idle->mem1[m]);
  printf("| %u topics open | %s | %s | %s |\n", IDLE_TOPICS, c[0], c[1], c[2]);
  printf("| after they closed | %s | | |\n\n", kib_cell(c[0], sizeof(c[0]), idle->mem2));
  printf("Opening the %u topics took %.0f ms (%.1f µs each); the daemon then held %d %s and ",
         IDLE_TOPICS, idle->open_ms, 1e3 * idle->open_ms / IDLE_TOPICS, idle->fds,
         costs_os_handles_name);
  if (idle->threads >= 0)
    printf("ran %d thread(s).", idle->threads);
  else
    printf("ran a number of threads %s.", na);
  printf(" Over an idle window of %.2f s (after %u ms of settling): CPU time %ld ticks of "
         "%ld/s (%s), ",
         idle->window_s, SETTLE_MS, idle->ticks, idle->clk_tck, costs_os_cpu_what);
  if (idle->has_sched)
    printf("%.3f ms by schedstat; ", (double)idle->sched_ns / 1e6);
  else
    printf("the scheduler's run time %s; ", na);
  if (cs_known)
    printf("%ld voluntary context switches (wake-ups), %ld involuntary.\n", idle->vol_cs,
           idle->nonvol_cs);
  else
    printf("context switches (wake-ups) %s.\n", na);
  printf("\n## Targets\n\n");
  printf("- idle daemon %s < 4 MiB with %u topics: %s -> %s\n",
         costs_os_mem_name(COSTS_MEM_PRIVATE), IDLE_TOPICS,
         kib_cell(c[0], sizeof(c[0]), idle->mem1[COSTS_MEM_PRIVATE]),
         idle->mem1[COSTS_MEM_PRIVATE] < 0 ? "unknown"
                                           : verdict(idle->mem1[COSTS_MEM_PRIVATE] < 4096));
  if (cs_known && idle->has_sched)
    printf("- no CPU while idle (nothing firing more often than once a second): %ld ticks, "
           "%.3f ms, %ld wake-ups in %.2f s -> %s\n",
           idle->ticks, (double)idle->sched_ns / 1e6, idle->vol_cs, idle->window_s,
           verdict(idle_cpu_ok));
  else
    printf("- no CPU while idle: %ld ticks in %.2f s (wake-ups %s) -> %s\n", idle->ticks,
           idle->window_s, na, verdict(idle_cpu_ok));
  printf("\n## Notes\n\n");
  if (cs_known)
    printf("- RssAnon is the daemon's private memory (heap); the topics' shared memory shows in "
           "RssShmem only for the pages the daemon touched (headers and records). A voluntary "
           "context switch is the daemon going to sleep, so over an idle window it counts "
           "wake-ups; ticks have a resolution of 1/%ld s, schedstat of 1 ns.\n",
           idle->clk_tck);
  else
    printf("- Private bytes are the daemon's private memory (heap and its own views' committed "
           "private pages); the working set counts the pages it touched, the topics' sections "
           "included. %s keeps no count of a process's voluntary context switches (a "
           "thread's count includes preemptions), so the daemon's wake-ups are not counted; "
           "CPU time has a resolution of 1/%ld s as reported (the system charges it per "
           "clock tick).\n",
           costs_os_name, idle->clk_tck);
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

  costs_os_init();
  bp_init(PROG);
  main_argc = argc;
  main_argv = argv;
  n_cpus = bu_online_cpus();
  memset(pub, 0, sizeof(pub));
  memset(&idle, 0, sizeof(idle));
  sh = bp_map_shared(sizeof(*sh)); /* zero-filled; the children's first section */

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
  bp_unmap_shared(sh, sizeof(*sh));
  return 0;
}

/* A child's job (bp_child): "sub <i> <cpu>" (a fan-out subscriber) or
 * "idle" (the idle client). Returns its exit status. */
static int costs_job(char **job, unsigned n) {
  unsigned i;
  int cpu;

  if (n == 1 && strcmp(job[0], "idle") == 0)
    return idle_client();
  if (n == 3 && strcmp(job[0], "sub") == 0 && sscanf(job[1], "%u", &i) == 1 && i < MAX_SUBS &&
      sscanf(job[2], "%d", &cpu) == 1) {
    bu_pin(cpu);
    return fanout_sub(i);
  }
  bp_die("the child's job", -EINVAL);
}

int costs_child(char **job, unsigned n) {
  n_cpus = bu_online_cpus();
  sh = bp_map_shared(sizeof(*sh)); /* the parent's first section */
  return costs_job(job, n);
}
