/* ring_bench: in-process micro-benchmarks of the ring's data path.
 *
 * What it measures, on a real region (two sealed memfds, made by
 * shmbus__region_create) with 4096 slots whose capacity is the payload size:
 *
 *   publish    shmbus__ring_publish (copy) with 0, 1 and 4 lossy subscribers
 *              busy-polling shmbus__ring_recv in other threads, none of them
 *              asleep, so the publisher never waits and never wakes anyone.
 *              Timing starts once every reader has received a message.
 *   recv       shmbus__ring_recv (copy) of messages already waiting: publish a
 *              batch (not timed), then time receiving that batch.
 *   view       the same with shmbus__ring_view_begin + view_end (the payload
 *              is not touched: that cost belongs to the caller).
 *   memcpy-in  memcpy of the same source buffer into the same slots a publish
 *              would write next (one lap old), then the batch is published
 *              untimed so that the next timed batch again meets one-lap-old
 *              slots. The baseline for publish with 0 subscribers, run in
 *              the same segment, batch for batch in turns with it.
 *   memcpy-out publish a batch (not timed), then memcpy its payloads out of
 *              the slots into the same buffer recv copies into. The baseline
 *              for recv (copy), paired with it in the same way.
 * Both baselines call memcpy through a non-inlined function, as the ring
 * does, so that for 64 B the comparison is call against call.
 *
 * Method: a batch is a fixed number of operations timed as a whole with
 * clock_gettime(CLOCK_MONOTONIC). Each round visits every configuration
 * (payload size x operation) for one segment of timed batches, at least
 * `batches` of them and at least `segment_ms` long, so that every segment
 * reaches the same steady state (the ring cycling through the caches as
 * under a steady publisher, every subscriber thread given CPU time by the
 * scheduler). Each round runs the configurations in a new shuffled order,
 * so that drift of the machine (frequency, neighbours) hits all of them
 * alike and none always inherits the caches of the same predecessor. The
 * first round is a warm-up and is thrown away. Reported: the median of the
 * batches' per-operation times, and their 10th and 90th percentiles.
 *
 * Nothing is pinned unless --pin is given (publisher on CPU 0, readers on
 * CPUs 1.. in turn). The report names the CPU, the number of CPUs, the
 * kernel and the load average, since all of them move the numbers.
 *
 * The program reports; it never fails because of a timing. It exits 1 only
 * when an operation of the ring fails, since then there is nothing to time.
 * Linux only (it reads /proc/cpuinfo and sets CPU affinity on request). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"
#include "region.h"
#include "ring.h"
#include "shmbus/error.h"

#ifndef SHMBUS_BENCH_BUILD_TYPE
#define SHMBUS_BENCH_BUILD_TYPE ""
#endif

#define SLOTS 4096u
#define MAX_READERS 4u
#define N_SIZES 3u
/* Longest wait for every reader to receive its first message. */
#define WARMUP_MAX_NS 200000000u
/* A reader whose cursor is at most this far behind head after a batch kept
 * up with the publisher: it polls the slot the publisher writes next. */
#define NEAR_LAG 16u
/* Fewest batches in a split whose median the report gives. */
#define MIN_SPLIT 20u

/* What one configuration does. */
enum kind {
  K_PUB0,       /* publish, no subscriber */
  K_PUB1,       /* publish, 1 busy-polling lossy subscriber thread */
  K_PUB4,       /* publish, 4 busy-polling lossy subscriber threads */
  K_MEMCPY_IN,  /* memcpy into the next slots */
  K_RECV,       /* recv (copy) of waiting messages */
  K_VIEW,       /* view_begin + view_end of waiting messages */
  K_MEMCPY_OUT, /* memcpy out of the slots of waiting messages */
  K_COUNT
};

struct stats {
  double p10, median, p90;
};

struct result {
  double *v;    /* ns per operation, one entry per timed batch */
  unsigned n;   /* entries used */
  unsigned cap; /* entries allocated */
  /* Subscriber threads (K_PUB1, K_PUB4): messages they received and lost,
   * summed over all of them and all rounds; errors they met. */
  uint64_t received;
  uint64_t lost;
  unsigned warmup_timeouts; /* segments timed before every reader had received */
  int reader_error;
  struct stats st; /* of v, computed once at the end */
};

/* One payload size: its own region, publisher and buffers. */
struct size_ctx {
  size_t size;
  uint32_t batch; /* operations per timed batch */
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  unsigned char *src; /* what publishes copy in: private, 64-byte aligned */
  unsigned char *dst; /* where recv and memcpy-out copy to */
  unsigned char *reader_buf[MAX_READERS];
  struct result res[K_COUNT];
  /* K_PUB1 ([0]) and K_PUB4 ([1]) batches again, split by whether some
   * reader kept up with the publisher during the batch (see seg_publish). */
  struct result near[2];
  struct result far[2];
};

struct options {
  bool quick;
  bool pin;
  unsigned rounds;     /* measured rounds, after one warm-up round */
  unsigned batches;    /* at least this many timed batches per segment */
  unsigned segment_ms; /* and at least this long: one segment = one configuration in one round */
};

struct reader {
  pthread_t thread;
  struct shmbus__ring_sub sub;
  unsigned char *buf;
  size_t cap;
  int cpu; /* CPU to pin to, or -1 */
  int error;
};

/* Set by the main thread to end a segment; readers poll it (relaxed: it only
 * has to arrive eventually, and join orders the rest). */
static atomic_bool reader_stop;
/* Readers that started polling; the main thread waits for all of them. */
static atomic_uint readers_ready;

static long n_cpus;

/* ---- small helpers ---------------------------------------------------- */

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The baselines' copy: a call to memcpy that the compiler cannot inline or
 * shrink, as ring_copy_in/ring_copy_out in ring.c. */
__attribute__((noinline)) static void bench_copy(void *dst, const void *src, size_t n) {
  memcpy(dst, src, n);
}

static unsigned char *slot_payload(const struct shmbus__ring *r, uint64_t seq) {
  return r->slots + (seq & r->mask) * r->slot_stride + SHMBUS__SLOT_HDR_SIZE;
}

static uint64_t ring_head(const struct shmbus__ring *r) {
  /* Relaxed: only this thread publishes; any value is ours. */
  return atomic_load_explicit(&r->hdr->head, memory_order_relaxed);
}

static void pin_thread(pthread_t t, int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  (void)pthread_setaffinity_np(t, sizeof(set), &set);
}

static void fail(const char *what, int rv) {
  fprintf(stderr, "shmbus-ring-bench: %s: %s (%s)\n", what, shmbus_strerror(rv),
          shmbus_err_name(rv));
  exit(1);
}

static void *xaligned(size_t n) {
  void *p = NULL;
  if (posix_memalign(&p, 64, n) != 0) {
    fprintf(stderr, "shmbus-ring-bench: out of memory\n");
    exit(1);
  }
  memset(p, 0x5a, n);
  return p;
}

/* xorshift64: the shuffle of the rounds needs no quality, only a fixed
 * sequence. */

/* Percentile q in [0,1] of sorted v[0..n), interpolated between ranks. */
static double percentile(const double *v, unsigned n, double q) {
  double pos;
  unsigned i;
  if (n == 0)
    return 0.0;
  pos = q * (double)(n - 1);
  i = (unsigned)pos;
  if (i + 1 >= n)
    return v[n - 1];
  return v[i] + (pos - (double)i) * (v[i + 1] - v[i]);
}

static struct stats result_stats(const struct result *r) {
  struct stats s = {0, 0, 0};
  double *v;
  if (r->n == 0)
    return s;
  v = malloc(r->n * sizeof(*v));
  if (v == NULL)
    return s;
  memcpy(v, r->v, r->n * sizeof(*v));
  qsort(v, r->n, sizeof(*v), bu_cmp_double);
  s.p10 = percentile(v, r->n, 0.10);
  s.median = percentile(v, r->n, 0.50);
  s.p90 = percentile(v, r->n, 0.90);
  free(v);
  return s;
}

static void record(struct result *r, double ns_per_op, bool keep) {
  if (!keep)
    return;
  if (r->n == r->cap) {
    unsigned cap = r->cap != 0 ? 2 * r->cap : 1024;
    double *v = realloc(r->v, cap * sizeof(*v));
    if (v == NULL)
      fail("realloc", -ENOMEM);
    r->v = v;
    r->cap = cap;
  }
  r->v[r->n++] = ns_per_op;
}

/* ---- the operations ----------------------------------------------------- */

static void publish_n(struct size_ctx *z, uint32_t n) {
  uint32_t i;
  int rv;
  for (i = 0; i < n; i++)
    if ((rv = shmbus__ring_publish(&z->pub, z->src, z->size, 0)) < 0)
      fail("publish", rv);
}

/* One timed batch of publishes. ts_ns is 0: no clock read inside the loop. */
static double time_publish(struct size_ctx *z) {
  uint64_t t0, t1;
  uint32_t i;
  int rv = 0;

  t0 = now_ns();
  for (i = 0; i < z->batch; i++)
    if ((rv = shmbus__ring_publish(&z->pub, z->src, z->size, 0)) < 0)
      break;
  t1 = now_ns();
  if (rv < 0)
    fail("publish", rv);
  return (double)(t1 - t0) / z->batch;
}

/* One timed batch of memcpy into the slots the next publishes will write
 * (one lap old, as for a publish); then the batch is published untimed over
 * them, to move head past them. */
static double time_memcpy_in(struct size_ctx *z) {
  const struct shmbus__ring *r = &z->rg.ring;
  uint64_t h = ring_head(r);
  uint64_t t0, t1;
  uint32_t i;

  t0 = now_ns();
  for (i = 0; i < z->batch; i++)
    bench_copy(slot_payload(r, h + i), z->src, z->size);
  t1 = now_ns();
  publish_n(z, z->batch);
  return (double)(t1 - t0) / z->batch;
}

/* Publishes a batch untimed, then times copying its payloads out. */
static double time_memcpy_out(struct size_ctx *z) {
  const struct shmbus__ring *r = &z->rg.ring;
  uint64_t h = ring_head(r);
  uint64_t t0, t1;
  uint32_t i;

  publish_n(z, z->batch);
  t0 = now_ns();
  for (i = 0; i < z->batch; i++)
    bench_copy(z->dst, slot_payload(r, h + i), z->size);
  t1 = now_ns();
  return (double)(t1 - t0) / z->batch;
}

static void *reader_main(void *arg) {
  struct reader *rd = arg;
  struct shmbus_msg_info info;

  atomic_fetch_add_explicit(&readers_ready, 1, memory_order_relaxed);
  while (!atomic_load_explicit(&reader_stop, memory_order_relaxed)) {
    int rv = shmbus__ring_recv(&rd->sub, rd->buf, rd->cap, &info);
    if (rv == -EAGAIN) {
      shmbus__cpu_relax();
    } else if (rv < 0) {
      rd->error = rv;
      break;
    }
  }
  return NULL;
}

/* Publish batches while `nsubs` lossy subscribers busy-poll in threads of
 * their own: at least `batches` of them and for at least seg_ns, timed from
 * when every reader has received a message. */
static void seg_publish(struct size_ctx *z, unsigned nsubs, struct result *res, unsigned batches,
                        uint64_t seg_ns, bool keep, bool pin) {
  struct reader rd[MAX_READERS];
  uint64_t t_end;
  unsigned i, b;
  int rv;

  atomic_store(&reader_stop, false);
  atomic_store(&readers_ready, 0);
  for (i = 0; i < nsubs; i++) {
    memset(&rd[i], 0, sizeof(rd[i]));
    rd[i].buf = z->reader_buf[i];
    rd[i].cap = z->size;
    rd[i].cpu = pin ? (int)((1 + i) % (unsigned)n_cpus) : -1;
    if ((rv = shmbus__ring_sub_attach(&z->rg.ring, &rd[i].sub, false, 0, (uint32_t)getpid())) < 0)
      fail("sub_attach", rv);
    if ((rv = pthread_create(&rd[i].thread, NULL, reader_main, &rd[i])) != 0)
      fail("pthread_create", -rv);
    if (rd[i].cpu >= 0)
      pin_thread(rd[i].thread, rd[i].cpu);
  }
  while (atomic_load(&readers_ready) < nsubs)
    sched_yield();
  /* Warm-up: publish until every reader has received something, so that
   * all of them are really polling before anything is timed (on a small
   * machine a runnable thread may wait a few milliseconds for a CPU). */
  t_end = now_ns() + WARMUP_MAX_NS;
  for (;;) {
    bool all = true;
    publish_n(z, z->batch);
    for (i = 0; i < nsubs; i++)
      if (atomic_load_explicit(&rd[i].sub.rec->received, memory_order_relaxed) == 0)
        all = false;
    if (all)
      break;
    if (now_ns() > t_end) {
      res->warmup_timeouts += keep;
      break;
    }
    sched_yield();
  }
  t_end = now_ns() + seg_ns;
  for (b = 0; b < batches || now_ns() < t_end; b++) {
    double ns;
    uint64_t h;
    bool near = false;

    if (nsubs == 0) {
      /* Paired with its baseline, batch by batch, in turns. */
      if (b % 2 == 0) {
        record(res, time_publish(z), keep);
        record(&z->res[K_MEMCPY_IN], time_memcpy_in(z), keep);
      } else {
        record(&z->res[K_MEMCPY_IN], time_memcpy_in(z), keep);
        record(res, time_publish(z), keep);
      }
      continue;
    }
    ns = time_publish(z);
    h = ring_head(&z->rg.ring);
    record(res, ns, keep);
    /* Not timed: did a reader keep up? Relaxed: the cursor is only a
     * sample, any recent value will do. */
    for (i = 0; i < nsubs; i++)
      if (h - atomic_load_explicit(&rd[i].sub.rec->cursor, memory_order_relaxed) <= NEAR_LAG)
        near = true;
    record(near ? &z->near[nsubs > 1] : &z->far[nsubs > 1], ns, keep);
  }
  atomic_store(&reader_stop, true);
  for (i = 0; i < nsubs; i++) {
    pthread_join(rd[i].thread, NULL);
    if (keep) {
      res->received += rd[i].sub.received;
      res->lost += rd[i].sub.lost;
    }
    if (rd[i].error != 0)
      res->reader_error = rd[i].error;
    shmbus__ring_sub_detach(&rd[i].sub);
  }
}

/* Moves `sub` to head without copying (untimed): in-place reads. */
static void skip_to_head(struct shmbus__ring_sub *sub) {
  struct shmbus__ring_view view;
  int rv;
  while ((rv = shmbus__ring_view_begin(sub, &view)) == 0)
    if ((rv = shmbus__ring_view_end(sub, &view)) < 0)
      break;
  if (rv != -EAGAIN)
    fail("view", rv);
}

/* Publishes a batch untimed, then times receiving it (copy or in place)
 * with `sub`. */
static double time_recv(struct size_ctx *z, struct shmbus__ring_sub *sub, bool in_place) {
  struct shmbus_msg_info info;
  struct shmbus__ring_view view;
  uint64_t t0, t1;
  uint32_t i;
  int rv = 0;

  publish_n(z, z->batch);
  if (in_place) {
    t0 = now_ns();
    for (i = 0; i < z->batch; i++) {
      if ((rv = shmbus__ring_view_begin(sub, &view)) < 0)
        break;
      if ((rv = shmbus__ring_view_end(sub, &view)) < 0)
        break;
    }
    t1 = now_ns();
  } else {
    t0 = now_ns();
    for (i = 0; i < z->batch; i++)
      if ((rv = shmbus__ring_recv(sub, z->dst, z->size, &info)) < 0)
        break;
    t1 = now_ns();
  }
  if (rv < 0)
    fail(in_place ? "view" : "recv", rv);
  return (double)(t1 - t0) / z->batch;
}

/* Receive batches of waiting messages. The copying kind is paired with its
 * baseline (memcpy-out), batch by batch, in turns; the subscriber's cursor
 * is moved past the baseline's batch untimed. */
static void seg_recv(struct size_ctx *z, bool in_place, struct result *res, unsigned batches,
                     uint64_t t_end, bool keep) {
  struct shmbus__ring_sub sub;
  unsigned b;
  int rv;

  if ((rv = shmbus__ring_sub_attach(&z->rg.ring, &sub, false, 0, (uint32_t)getpid())) < 0)
    fail("sub_attach", rv);
  for (b = 0; b < batches || now_ns() < t_end; b++) {
    if (in_place) {
      record(res, time_recv(z, &sub, true), keep);
      continue;
    }
    if (b % 2 == 0)
      record(res, time_recv(z, &sub, false), keep);
    record(&z->res[K_MEMCPY_OUT], time_memcpy_out(z), keep);
    skip_to_head(&sub);
    if (b % 2 == 1)
      record(res, time_recv(z, &sub, false), keep);
  }
  if (sub.lost != 0)
    fail("recv lost messages of a batch that fits the ring", SHMBUS_ECORRUPT);
  shmbus__ring_sub_detach(&sub);
}

/* Runs configuration k of z for at least o->batches timed batches and at
 * least o->segment_ms. Every segment lasts about as long, so each reaches
 * the same steady state (a small ring cycles through the cache as it would
 * under a steady publisher; threads get CPU time from the scheduler). */
static void run_segment(struct size_ctx *z, enum kind k, const struct options *o, bool keep) {
  struct result *res = &z->res[k];
  uint64_t seg_ns = (uint64_t)o->segment_ms * 1000000u;
  uint64_t t_end = now_ns() + seg_ns;

  switch (k) {
  case K_PUB0:
    seg_publish(z, 0, res, o->batches, seg_ns, keep, o->pin);
    break;
  case K_PUB1:
    seg_publish(z, 1, res, o->batches, seg_ns, keep, o->pin);
    break;
  case K_PUB4:
    seg_publish(z, 4, res, o->batches, seg_ns, keep, o->pin);
    break;
  case K_RECV:
    seg_recv(z, false, res, o->batches, t_end, keep);
    break;
  case K_VIEW:
    seg_recv(z, true, res, o->batches, t_end, keep);
    break;
  case K_MEMCPY_IN:  /* paired with K_PUB0 */
  case K_MEMCPY_OUT: /* paired with K_RECV */
  case K_COUNT:
    break;
  }
}

/* ---- set-up -------------------------------------------------------------- */

static void size_init(struct size_ctx *z, size_t size, uint32_t batch) {
  struct shmbus__params p;
  char name[32];
  unsigned i;
  int rv;

  memset(z, 0, sizeof(*z));
  z->size = size;
  z->batch = batch;
  p.slot_count = SLOTS;
  p.slot_capacity = (uint32_t)size;
  p.max_subs = 8;
  p.max_pubs = 2;
  snprintf(name, sizeof(name), "bench-%zu", size);
  if ((rv = shmbus__region_create(&z->rg, &p, name)) < 0)
    fail("region_create", rv);
  if ((rv = shmbus__ring_pub_attach(&z->rg.ring, &z->pub, 1, (uint32_t)getpid())) < 0)
    fail("pub_attach", rv);
  z->src = xaligned(size);
  z->dst = xaligned(size);
  for (i = 0; i < MAX_READERS; i++)
    z->reader_buf[i] = xaligned(size);
  /* Two laps: every page of the slot area is mapped and every slot has been
   * written once, so no timed operation meets a page fault. */
  publish_n(z, 2 * SLOTS);
}

static void size_close(struct size_ctx *z) {
  unsigned i, k;
  shmbus__ring_pub_detach(&z->pub);
  shmbus__region_close(&z->rg);
  free(z->src);
  free(z->dst);
  for (i = 0; i < MAX_READERS; i++)
    free(z->reader_buf[i]);
  for (k = 0; k < K_COUNT; k++)
    free(z->res[k].v);
  for (k = 0; k < 2; k++) {
    free(z->near[k].v);
    free(z->far[k].v);
  }
}

/* ---- output -------------------------------------------------------------- */

static const char *size_label(size_t size) {
  switch (size) {
  case 64:
    return "64 B";
  case 4096:
    return "4 KiB";
  case 65536:
    return "64 KiB";
  default:
    return "?";
  }
}

static void cell(char *out, size_t cap, const struct result *r) {
  const struct stats s = r->st;
  if (r->n == 0)
    snprintf(out, cap, "-");
  else
    snprintf(out, cap, "%.1f (%.1f–%.1f)", s.median, s.p10, s.p90);
}

static double ratio(double a, double b) {
  return b > 0 ? a / b : 0.0;
}

static double med(const struct result *r) {
  return r->st.median;
}

/* Whether a split of batches (keeping up / behind) holds enough batches for
 * its median to mean something. */
static bool enough(const struct result *r) {
  return r->n >= MIN_SPLIT;
}

/* A cell of the split table: r's statistics and its share of r + other. */
static void split_cell(char *out, size_t cap, const struct result *r, const struct result *other) {
  double share = 100.0 * ratio((double)r->n, (double)(r->n + other->n));
  if (!enough(r))
    snprintf(out, cap, "- (%.0f%%)", share);
  else
    snprintf(out, cap, "%.1f (%.1f–%.1f), %.0f%%", r->st.median, r->st.p10, r->st.p90, share);
}

static const char *verdict(bool ok) {
  return ok ? "met" : "NOT met";
}

/* The first three fields of /proc/loadavg: other work on the machine
 * disturbs every number here, so the report says how busy it was. */

static void print_report(struct size_ctx *sz, const struct options *o, double elapsed_s,
                         const char *load_before, const char *load_after) {
  struct utsname u;
  char cpu[384];
  char c[K_COUNT][64];
  unsigned i, k;
  const char *bt = SHMBUS_BENCH_BUILD_TYPE;

  bu_cpu_model(cpu, sizeof(cpu));
  if (uname(&u) != 0)
    memset(&u, 0, sizeof(u));
  printf("# shmbus ring micro-benchmarks\n\n");
  printf("cpu: %s, %ld online CPUs; kernel: %s %s %s; compiler: %s; bench -O2, library "
         "build type %s; pinning %s\n\n",
         cpu, n_cpus, u.sysname, u.release, u.machine,
#ifdef __VERSION__
         __VERSION__,
#else
         "unknown",
#endif
         bt[0] != '\0' ? bt : "none", o->pin ? "on (publisher CPU 0, readers CPU 1..)" : "off");
  {
    unsigned lo = UINT32_MAX, hi = 0;
    for (i = 0; i < N_SIZES; i++)
      for (k = 0; k < K_COUNT; k++) {
        lo = sz[i].res[k].n < lo ? sz[i].res[k].n : lo;
        hi = sz[i].res[k].n > hi ? sz[i].res[k].n : hi;
      }
    printf("%u measured rounds (+1 warm-up) x one segment of >= %u batches and >= %u ms per "
           "configuration%s: %u to %u batches per configuration; ops per batch: 64 B %u, "
           "4 KiB %u, 64 KiB %u; ring of %u slots per payload size; run took %.1f s; "
           "load average before %s, after %s.\n\n",
           o->rounds, o->batches, o->segment_ms, o->quick ? " [--quick]" : "", lo, hi, sz[0].batch,
           sz[1].batch, sz[2].batch, SLOTS, elapsed_s, load_before, load_after);
  }

  printf("## Publish (shmbus__ring_publish, copy): ns/op, median (p10–p90)\n\n");
  printf("| payload | 0 subs | 1 sub | 4 subs | 4-sub / 1-sub | memcpy-in | "
         "publish (0 subs) / memcpy |\n");
  printf("|---|---|---|---|---|---|---|\n");
  for (i = 0; i < N_SIZES; i++) {
    struct size_ctx *z = &sz[i];
    for (k = 0; k < K_COUNT; k++)
      cell(c[k], sizeof(c[k]), &z->res[k]);
    printf("| %s | %s | %s | %s | %.2f | %s | %.2f |\n", size_label(z->size), c[K_PUB0], c[K_PUB1],
           c[K_PUB4], ratio(med(&z->res[K_PUB4]), med(&z->res[K_PUB1])), c[K_MEMCPY_IN],
           ratio(med(&z->res[K_PUB0]), med(&z->res[K_MEMCPY_IN])));
  }

  printf("\n## Receive with data waiting: ns/op, median (p10–p90)\n\n");
  printf("| payload | recv (copy) | view_begin + view_end | memcpy-out | recv / memcpy |\n");
  printf("|---|---|---|---|---|\n");
  for (i = 0; i < N_SIZES; i++) {
    struct size_ctx *z = &sz[i];
    for (k = 0; k < K_COUNT; k++)
      cell(c[k], sizeof(c[k]), &z->res[k]);
    printf("| %s | %s | %s | %s | %.2f |\n", size_label(z->size), c[K_RECV], c[K_VIEW],
           c[K_MEMCPY_OUT], ratio(med(&z->res[K_RECV]), med(&z->res[K_MEMCPY_OUT])));
  }

  printf("\n## Publish with subscribers, by whether a reader kept up: ns/op, median "
         "(p10–p90), share of batches\n\n");
  printf("| payload | 1 sub, keeping up | 1 sub, behind | 4 subs, one keeping up | "
         "4 subs, all behind | 4-sub / 1-sub, keeping up |\n");
  printf("|---|---|---|---|---|---|\n");
  for (i = 0; i < N_SIZES; i++) {
    struct size_ctx *z = &sz[i];
    char n1[80], f1[80], n4[80], f4[80], r[16];
    split_cell(n1, sizeof(n1), &z->near[0], &z->far[0]);
    split_cell(f1, sizeof(f1), &z->far[0], &z->near[0]);
    split_cell(n4, sizeof(n4), &z->near[1], &z->far[1]);
    split_cell(f4, sizeof(f4), &z->far[1], &z->near[1]);
    if (enough(&z->near[0]) && enough(&z->near[1]))
      snprintf(r, sizeof(r), "%.2f", ratio(med(&z->near[1]), med(&z->near[0])));
    else
      snprintf(r, sizeof(r), "-");
    printf("| %s | %s | %s | %s | %s | %s |\n", size_label(z->size), n1, f1, n4, f4, r);
  }

  {
    struct size_ctx *s64 = &sz[0], *s64k = &sz[2];
    double p0 = med(&s64->res[K_PUB0]), p1 = med(&s64->res[K_PUB1]), p4 = med(&s64->res[K_PUB4]);
    bool pub_ok = p0 < 100 && p1 < 100 && p4 < 100, ratio_ok = true;
    double in = ratio(med(&s64k->res[K_PUB0]), med(&s64k->res[K_MEMCPY_IN]));
    double out = ratio(med(&s64k->res[K_RECV]), med(&s64k->res[K_MEMCPY_OUT]));

    printf("\n## Targets (medians)\n\n");
    printf("- 64 B publish < 100 ns: 0 subs %.1f, 1 sub %.1f, 4 subs %.1f", p0, p1, p4);
    for (k = 0; k < 2; k++) {
      if (!enough(&s64->near[k]))
        continue;
      printf(", %s keeping up %.1f", k == 0 ? "1 sub" : "4 subs", med(&s64->near[k]));
      pub_ok = pub_ok && med(&s64->near[k]) < 100;
    }
    printf(" -> %s\n", verdict(pub_ok));
    printf("- 4 subs within 1.2x of 1 sub, all batches:");
    for (i = 0; i < N_SIZES; i++) {
      double r41 = ratio(med(&sz[i].res[K_PUB4]), med(&sz[i].res[K_PUB1]));
      printf("%s %s %.2f", i == 0 ? "" : ",", size_label(sz[i].size), r41);
      ratio_ok = ratio_ok && r41 <= 1.2;
    }
    printf("; reader keeping up:");
    for (i = 0; i < N_SIZES; i++) {
      if (enough(&sz[i].near[0]) && enough(&sz[i].near[1])) {
        double r41 = ratio(med(&sz[i].near[1]), med(&sz[i].near[0]));
        printf("%s %s %.2f", i == 0 ? "" : ",", size_label(sz[i].size), r41);
        ratio_ok = ratio_ok && r41 <= 1.2;
      } else {
        printf("%s %s -", i == 0 ? "" : ",", size_label(sz[i].size));
      }
    }
    printf(" -> %s%s\n", verdict(ratio_ok), n_cpus < 5 ? " (see the note on CPUs)" : "");
    printf("- 64 B receive < 100 ns: recv %.1f, view %.1f -> %s\n", med(&s64->res[K_RECV]),
           med(&s64->res[K_VIEW]),
           verdict(med(&s64->res[K_RECV]) < 100 && med(&s64->res[K_VIEW]) < 100));
    printf("- 64 KiB within 1.5x of memcpy: copy-in %.2f (%.1f GB/s vs %.1f GB/s), copy-out %.2f "
           "(%.1f GB/s vs %.1f GB/s) -> %s\n",
           in, 65536.0 / med(&s64k->res[K_PUB0]), 65536.0 / med(&s64k->res[K_MEMCPY_IN]), out,
           65536.0 / med(&s64k->res[K_RECV]), 65536.0 / med(&s64k->res[K_MEMCPY_OUT]),
           verdict(in <= 1.5 && out <= 1.5));
  }

  printf("\n## Notes\n\n");
  if (n_cpus < 5)
    printf("- This machine has %ld online CPUs. With 4 subscriber threads plus the publisher, "
           "5 busy threads time-share %ld CPUs: the publisher runs only part of the time and a "
           "batch that spans a preemption is counted whole, which shows in p90 and, when "
           "batches are long, in the median. The 4-sub / 1-sub ratio here measures that "
           "sharing as much as the ring; it needs >= 5 CPUs to mean what the target means.\n",
           n_cpus, n_cpus);
  printf("- Subscriber threads are lossy and busy-poll shmbus__ring_recv; none sleeps, so a "
         "commit never wakes anyone. A reader slower than the publisher is lapped and skips "
         "ahead; the share of the messages published during its segments that each reader "
         "got (received / (received + lost)):");
  for (i = 0; i < N_SIZES; i++) {
    const struct result *r1 = &sz[i].res[K_PUB1], *r4 = &sz[i].res[K_PUB4];
    printf("%s %s: 1 sub %.0f%%, 4 subs %.0f%%", i == 0 ? "" : ";", size_label(sz[i].size),
           100.0 * ratio((double)r1->received, (double)(r1->received + r1->lost)),
           100.0 * ratio((double)r4->received, (double)(r4->received + r4->lost)));
    if (r1->reader_error != 0 || r4->reader_error != 0)
      printf(" (reader error: %s)",
             shmbus_strerror(r1->reader_error ? r1->reader_error : r4->reader_error));
    if (r1->warmup_timeouts + r4->warmup_timeouts != 0)
      printf(" (%u segments started before every reader ran)",
             r1->warmup_timeouts + r4->warmup_timeouts);
  }
  printf(".\n");
  printf("- Split table: after each timed batch (untimed) the bench compares every reader's "
         "cursor with head; a reader within %u messages of head kept up, i.e. it polls the "
         "slot the publisher writes next. Rows with readers are dominated by cache lines moving "
         "between CPUs (a slot line a reader has read must be taken back before the "
         "publisher's CAS and commit on it), whose cost depends on where the CPUs sit (and, in "
         "a VM, on where the host runs them): expect these rows to vary between runs far more "
         "than the single-thread rows. Unpinned, the scheduler may also run a reader on the "
         "publisher's CPU, where it never reads during a batch; --pin keeps them apart.\n",
         NEAR_LAG);
  printf("- The memcpy ratio only has a target at 64 KiB; at 64 B and 4 KiB it mostly shows the "
         "ring's fixed cost per message (claim, slot CAS, seq_cst commit) next to a tiny copy.\n");
  printf("- Publishes pass ts_ns = 0 (no clock read in the timed loop). The view row does not "
         "read the payload. memcpy-in writes the same one-lap-old slots a publish writes; "
         "memcpy-out reads the slots of the batch just published, as recv does; each baseline "
         "runs in its operation's segments, batch for batch in turns with it, and calls memcpy "
         "out of line, as the ring does.\n");
  printf("- Batches are timed whole with CLOCK_MONOTONIC; per-op = batch time / ops. Rounds "
         "run the configurations in a new shuffled order each, so drift and neighbours affect "
         "all of them alike.\n");
}

/* ---- main ------------------------------------------------------------------ */

static void usage(FILE *f) {
  fprintf(f,
          "Usage: shmbus-ring-bench [--quick] [--pin] [--rounds N] [--batches N] [--segment-ms N]\n"
          "\n"
          "In-process micro-benchmarks of the shmbus ring (publish, recv, in-place view)\n"
          "against plain memcpy, for 64 B, 4 KiB and 64 KiB payloads. Prints markdown.\n"
          "\n"
          "  --quick         a short run (under 2 s), for smoke tests; numbers are rough\n"
          "  --pin           pin the publisher to CPU 0 and subscriber threads to CPUs 1..\n"
          "  --rounds N      measured rounds (default 60; --quick: 4)\n"
          "  --batches N     at least N timed batches per configuration per round\n"
          "                  (default 8; --quick: 2)\n"
          "  --segment-ms N  and at least N ms per configuration per round\n"
          "                  (default 25; --quick: 10)\n"
          "  --help          this text\n"
          "\n"
          "Default run: about 25 s. Exit status 0 whatever the timings; 1 if a ring\n"
          "operation fails; 2 on a bad argument.\n");
}

int main(int argc, char **argv) {
  static const size_t sizes[N_SIZES] = {64, 4096, 65536};
  static const uint32_t batch_ops[N_SIZES] = {1000, 250, 50};
  struct options o = {false, false, 0, 0, 0};
  struct size_ctx sz[N_SIZES];
  unsigned rounds = 0, batches = 0, segment_ms = 0;
  char load_before[64], load_after[64];
  unsigned r, i, k, n_cfg = 0;
  unsigned order[N_SIZES * K_COUNT];
  uint64_t rnd = 0x9e3779b97f4a7c15u;
  uint64_t t_start;
  int a;

  for (a = 1; a < argc; a++) {
    if (strcmp(argv[a], "--quick") == 0) {
      o.quick = true;
    } else if (strcmp(argv[a], "--pin") == 0) {
      o.pin = true;
    } else if (strcmp(argv[a], "--rounds") == 0) {
      rounds = bu_parse_count("shmbus-ring-bench", a + 1 < argc ? argv[++a] : NULL, "--rounds");
    } else if (strcmp(argv[a], "--batches") == 0) {
      batches = bu_parse_count("shmbus-ring-bench", a + 1 < argc ? argv[++a] : NULL, "--batches");
    } else if (strcmp(argv[a], "--segment-ms") == 0) {
      segment_ms =
          bu_parse_count("shmbus-ring-bench", a + 1 < argc ? argv[++a] : NULL, "--segment-ms");
    } else if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "shmbus-ring-bench: unknown argument '%s'\n", argv[a]);
      usage(stderr);
      return 2;
    }
  }
  o.rounds = rounds != 0 ? rounds : (o.quick ? 4 : 60);
  o.batches = batches != 0 ? batches : (o.quick ? 2 : 8);
  o.segment_ms = segment_ms != 0 ? segment_ms : (o.quick ? 10 : 25);

  n_cpus = sysconf(_SC_NPROCESSORS_ONLN);
  if (n_cpus < 1)
    n_cpus = 1;
  if (o.pin)
    pin_thread(pthread_self(), 0);

  bu_load_average(load_before, sizeof(load_before));
  t_start = now_ns();
  for (i = 0; i < N_SIZES; i++)
    size_init(&sz[i], sizes[i], batch_ops[i]);

  /* Round 0 warms up and is not kept. Each round runs the configurations in
   * a new order (a fixed-seed shuffle, so runs are alike): no configuration
   * always follows the same one and inherits its cache state. */
  for (k = 0; k < N_SIZES * K_COUNT; k++)
    if (k % K_COUNT != K_MEMCPY_IN && k % K_COUNT != K_MEMCPY_OUT) /* run paired */
      order[n_cfg++] = k;
  for (r = 0; r <= o.rounds; r++) {
    for (k = n_cfg - 1; k > 0; k--) {
      unsigned j = (unsigned)(bu_next_random(&rnd) % (k + 1)), t = order[k];
      order[k] = order[j];
      order[j] = t;
    }
    for (k = 0; k < n_cfg; k++)
      run_segment(&sz[order[k] / K_COUNT], (enum kind)(order[k] % K_COUNT), &o, r > 0);
  }

  for (i = 0; i < N_SIZES; i++) {
    for (k = 0; k < K_COUNT; k++)
      sz[i].res[k].st = result_stats(&sz[i].res[k]);
    for (k = 0; k < 2; k++) {
      sz[i].near[k].st = result_stats(&sz[i].near[k]);
      sz[i].far[k].st = result_stats(&sz[i].far[k]);
    }
  }
  {
    double elapsed = (double)(now_ns() - t_start) / 1e9;
    bu_load_average(load_after, sizeof(load_after));
    print_report(sz, &o, elapsed, load_before, load_after);
  }
  for (i = 0; i < N_SIZES; i++)
    size_close(&sz[i]);
  return 0;
}
