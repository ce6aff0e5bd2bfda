/* shmbus-soak: a bounded soak test. A daemon, publishers and subscribers
 * on a reliable and a lossy topic run for a given time while random
 * participants (the daemon too) are killed with SIGKILL and restarted.
 * Then everything stops, and the invariants are checked:
 *
 * - every payload intact (checksums), no message twice or out of order;
 * - reliable: a surviving subscriber got every message each publisher
 *   committed after the subscriber joined, in order, without a gap (a
 *   publisher killed mid-publish leaves one seq uncommitted: counted lost,
 *   never delivered; that is the only loss allowed, at most one per kill);
 * - lossy: a surviving subscriber's received + lost == head - joined;
 * - the daemon's descriptors and private memory flat: sampled while the
 *   system is settled (every participant open, nothing killed for 300 ms),
 *   from 10 s into the last daemon's life to the end.
 *
 * Run by scripts/soak.sh; see docs/testing.md. Not a ctest: it takes
 * minutes. Exit status 0 (PASS) or 1 (FAIL), 2 for bad usage. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "atomics.h"
#include "bus.h"
#include "procutil.h"
#include "testutil.h"

#ifndef SHMBUSD_PATH
#error "SHMBUSD_PATH must name the shmbusd binary"
#endif

#define SK_NPUB 4      /* publisher slots: 0-1 on the reliable topic, 2-3 on the lossy one */
#define SK_NSUB 5      /* subscriber slots: 0-2 reliable (topic R), 3-4 lossy (topic L) */
#define SK_GENS 16384u /* publisher generations (one per start) */
#define SK_MSG_MAX 256u

static const char *const sk_topics[2] = {"soak/reliable", "soak/lossy"};
static const struct shmbus_topic_opts sk_topic = {64, SK_MSG_MAX, 8, 8, false};

/* ---- shared state (one anonymous shared mapping, made before any fork) -- */

struct sk_pubgen {
  _Atomic uint64_t done;     /* messages committed (stored after each commit) */
  _Atomic uint32_t start;    /* epoch when it started publishing; 0: not yet */
  _Atomic uint32_t finished; /* 1: stopped on request; done is exact */
  uint32_t topic;            /* 0 reliable, 1 lossy */
  _Atomic uint32_t killed;   /* 1: killed by the driver */
};

struct sk_seen {
  uint64_t count; /* messages of this publisher generation received */
  uint64_t first;
  uint64_t last;
};

struct sk_sub {
  _Atomic uint32_t ready;    /* opened */
  _Atomic uint32_t reported; /* final numbers below are valid */
  uint32_t join;             /* epoch after opening */
  uint32_t topic;
  bool reliable;
  uint64_t received, lost, head, joined; /* final */
  struct sk_seen seen[SK_GENS];
};

struct sk_shared {
  _Atomic uint32_t epoch;
  _Atomic uint32_t stop;
  _Atomic uint32_t ngens;
  _Atomic uint64_t bad;    /* payloads failing their checksum */
  _Atomic uint64_t order;  /* a message twice, out of order, or a gap where none may be */
  _Atomic uint64_t errors; /* unexpected error codes */
  _Atomic uint32_t pub_ready[SK_NPUB];
  struct sk_pubgen gens[SK_GENS];
  struct sk_sub subs[SK_NSUB];
};

static struct sk_shared *sk;
static char sk_dir[64];
static int sk_verbose;

static uint64_t sk_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sk_sleep_us(unsigned us) {
  struct timespec ts = {us / 1000000u, (long)(us % 1000000u) * 1000};
  nanosleep(&ts, NULL);
}

static void sk_error(const char *what, int rv) {
  atomic_fetch_add(&sk->errors, 1);
  fprintf(stderr, "soak: pid %d: %s: %s\n", (int)getpid(), what, shmbus_strerror(rv));
}

/* Opens a bus, retrying while the daemon is down (it is restarted). */
static shmbus_bus *sk_bus(void) {
  struct shmbus_bus_opts o;
  shmbus_bus *bus = NULL;
  uint64_t deadline = sk_now_ms() + 30000;
  int rv;

  shmbus_bus_opts_init(&o);
  o.dir = sk_dir;
  o.autostart = 0;
  while ((rv = shmbus_bus_open(&bus, &o)) < 0) {
    if (sk_now_ms() > deadline) {
      sk_error("bus_open", rv);
      _exit(3);
    }
    sk_sleep_us(10000);
  }
  return bus;
}

/* Retries an open while the daemon goes away under it. */
#define SK_RETRY(call, what)                                                                       \
  do {                                                                                             \
    uint64_t dl_ = sk_now_ms() + 30000;                                                            \
    int rv_;                                                                                       \
    while ((rv_ = (call)) < 0) {                                                                   \
      if ((rv_ != SHMBUS_EDISCONNECTED && rv_ != SHMBUS_ENODAEMON && rv_ != -ETIMEDOUT) ||         \
          sk_now_ms() > dl_) {                                                                     \
        sk_error(what, rv_);                                                                       \
        _exit(3);                                                                                  \
      }                                                                                            \
      sk_sleep_us(10000);                                                                          \
      (void)shmbus_bus_process(bus);                                                               \
    }                                                                                              \
  } while (0)

static size_t sk_len(uint32_t g, uint64_t seq) {
  return TU_MIN_PAYLOAD + (size_t)((seq * 7u + g) % (SK_MSG_MAX - TU_MIN_PAYLOAD + 1));
}

/* ---- publishers ------------------------------------------------------------ */

static void sk_pub_main(unsigned slot, uint32_t g) {
  struct sk_pubgen *pg = &sk->gens[g];
  unsigned char buf[SK_MSG_MAX];
  shmbus_bus *bus = sk_bus();
  shmbus_pub *pub;
  uint64_t seq = 0;

  SK_RETRY(shmbus_pub_open(bus, sk_topics[pg->topic], &sk_topic, &pub), "pub_open");
  atomic_store(&pg->start, atomic_fetch_add(&sk->epoch, 1) + 1);
  atomic_store(&sk->pub_ready[slot], 1);
  while (!atomic_load(&sk->stop)) {
    size_t len = sk_len(g, seq);
    int rv;
    tu_fill(buf, len, g, seq);
    rv = shmbus_pub_publish(pub, buf, len);
    if (rv == SHMBUS_EFULL) {
      (void)shmbus_pub_wait(pub, 100);
      continue;
    }
    if (rv < 0) {
      sk_error("publish", rv);
      _exit(3);
    }
    atomic_store(&pg->done, ++seq);
    if (seq % 16 == 0)
      sk_sleep_us(500); /* ~25k messages/s each at most: leave CPU to the others */
  }
  atomic_store(&pg->finished, 1);
  shmbus_bus_close(bus);
  _exit(0);
}

/* ---- subscribers ----------------------------------------------------------- */

static bool sk_all_finished(void) {
  uint32_t n = atomic_load(&sk->ngens);
  uint32_t g;
  for (g = 0; g < n; g++)
    if (!atomic_load(&sk->gens[g].finished) && !atomic_load(&sk->gens[g].killed))
      return false;
  return true;
}

static void sk_check(struct sk_sub *s, const unsigned char *buf, int len) {
  uint32_t g;
  uint64_t seq;
  struct sk_seen *e;

  if (tu_check(buf, (size_t)len, &g, &seq) != 0 || g >= SK_GENS) {
    atomic_fetch_add(&sk->bad, 1);
    return;
  }
  e = &s->seen[g];
  if (e->count == 0) {
    /* A reliable subscriber that joined before this publisher started
     * must see its first message. */
    if (s->reliable && atomic_load(&sk->gens[g].start) > s->join && seq != 0) {
      fprintf(stderr, "soak: reliable sub: publisher gen %u starts at seq %" PRIu64 "\n", g, seq);
      atomic_fetch_add(&sk->order, 1);
    }
    e->first = seq;
  } else if (s->reliable ? seq != e->last + 1 : seq <= e->last) {
    fprintf(stderr, "soak: %s sub: publisher gen %u: seq %" PRIu64 " after %" PRIu64 "\n",
            s->reliable ? "reliable" : "lossy", g, seq, e->last);
    atomic_fetch_add(&sk->order, 1);
  }
  e->last = seq;
  e->count++;
}

static void sk_sub_main(unsigned slot) {
  struct sk_sub *s = &sk->subs[slot];
  struct shmbus_sub_opts so = {.reliable = s->reliable, .topic = sk_topic};
  struct shmbus_sub_stats st;
  unsigned char buf[SK_MSG_MAX];
  shmbus_bus *bus = sk_bus();
  shmbus_sub *sub;
  uint64_t n = 0;
  unsigned quiet = 0;

  memset(s->seen, 0, sizeof(s->seen));
  SK_RETRY(shmbus_sub_open(bus, sk_topics[s->topic], &so, &sub), "sub_open");
  s->join = atomic_fetch_add(&sk->epoch, 1) + 1;
  atomic_store(&s->ready, 1);
  for (;;) {
    int rv = shmbus_sub_recv(sub, buf, sizeof(buf), NULL, 200);
    if (rv == -ETIMEDOUT) {
      /* The end: publishers stopped and everything was read. */
      if (atomic_load(&sk->stop) && sk_all_finished() && ++quiet >= 5)
        break;
      continue;
    }
    if (rv < 0) {
      sk_error("recv", rv);
      _exit(3);
    }
    quiet = 0;
    sk_check(s, buf, rv);
    /* Lossy subscribers are slow now and then, so they get lapped. */
    if (!s->reliable && ++n % 4096 == 0)
      sk_sleep_us(5000);
  }
  shmbus_sub_stats(sub, &st);
  s->received = st.received;
  s->lost = st.lost;
  s->head = shmbus__load_seq_cst(&sub->h.region.ring.hdr->head);
  s->joined = shmbus__load_relaxed(&sub->ring.rec->joined);
  atomic_store(&s->reported, 1);
  shmbus_bus_close(bus);
  _exit(0);
}

/* ---- the driver ------------------------------------------------------------ */

struct sk_stats {
  unsigned pub_kills[2], sub_kills, daemon_kills, pub_starts, sub_starts, unexpected_exits;
};

static pid_t sk_daemon = 0;
static pid_t sk_pubs[SK_NPUB];
static uint32_t sk_pub_gen[SK_NPUB];
static pid_t sk_subs[SK_NSUB];

static void sk_start_daemon(void) {
  /* Quiet unless asked: the daemon logs every crash it repairs. */
  if ((sk_daemon = pu_start_daemon(SHMBUSD_PATH, sk_dir, NULL, !sk_verbose)) < 0) {
    fprintf(stderr, "soak: shmbusd did not start\n");
    exit(1);
  }
}

static int sk_wait(pid_t pid) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
    ;
  return st;
}

static void sk_start_pub(unsigned slot, struct sk_stats *stats) {
  uint32_t g = atomic_fetch_add(&sk->ngens, 1);
  pid_t pid;

  if (g >= SK_GENS) {
    fprintf(stderr, "soak: more than %u publisher starts\n", SK_GENS);
    exit(1);
  }
  sk->gens[g].topic = slot < SK_NPUB / 2 ? 0 : 1;
  atomic_store(&sk->pub_ready[slot], 0);
  pid = fork();
  if (pid == 0)
    sk_pub_main(slot, g);
  sk_pubs[slot] = pid;
  sk_pub_gen[slot] = g;
  stats->pub_starts++;
}

static void sk_start_sub(unsigned slot, struct sk_stats *stats) {
  struct sk_sub *s = &sk->subs[slot];
  pid_t pid;

  atomic_store(&s->ready, 0);
  atomic_store(&s->reported, 0);
  s->topic = slot < 3 ? 0 : 1;
  s->reliable = slot < 3;
  pid = fork();
  if (pid == 0)
    sk_sub_main(slot);
  sk_subs[slot] = pid;
  stats->sub_starts++;
}

static void sk_kill(pid_t pid) {
  kill(pid, SIGKILL);
  (void)sk_wait(pid);
}

static bool sk_settled(void) {
  unsigned i;
  for (i = 0; i < SK_NPUB; i++)
    if (!atomic_load(&sk->pub_ready[i]))
      return false;
  for (i = 0; i < SK_NSUB; i++)
    if (!atomic_load(&sk->subs[i].ready))
      return false;
  return true;
}

/* A child that exited by itself before the end is a failure (it reported
 * why on stderr); it is started again. */
static void sk_reap(struct sk_stats *stats) {
  pid_t pid;
  int st;
  unsigned i;

  while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
    stats->unexpected_exits++;
    fprintf(stderr, "soak: pid %d exited early (status %d)\n", (int)pid, st);
    if (pid == sk_daemon) {
      sk_start_daemon();
      continue;
    }
    for (i = 0; i < SK_NPUB; i++)
      if (sk_pubs[i] == pid) {
        atomic_store(&sk->gens[sk_pub_gen[i]].killed, 1);
        sk_start_pub(i, stats);
      }
    for (i = 0; i < SK_NSUB; i++)
      if (sk_subs[i] == pid)
        sk_start_sub(i, stats);
  }
}

struct sk_sample {
  uint64_t t_ms;
  struct pu_sample s;
};

static void sk_usage(FILE *f) {
  fprintf(f, "usage: shmbus-soak [--seconds N] [--seed N] [--verbose]\n"
             "Runs shmbusd, 4 publishers and 5 subscribers on a reliable and a lossy topic for N\n"
             "seconds (default 120), killing and restarting random participants and the daemon,\n"
             "then checks that nothing committed was lost, losses are counted exactly, payloads\n"
             "are intact, and the daemon's descriptors and memory stayed flat.\n"
             "Exit status: 0 PASS, 1 FAIL, 2 bad usage.\n");
}

int main(int argc, char **argv) {
  static const struct option opts[] = {{"seconds", required_argument, NULL, 's'},
                                       {"seed", required_argument, NULL, 'r'},
                                       {"verbose", no_argument, NULL, 'v'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  struct sk_stats stats = {0};
  struct sk_sample first = {0}, last = {0}, minmax_lo = {0}, minmax_hi = {0};
  uint64_t seconds = 120, seed = (uint64_t)time(NULL);
  uint64_t t0, end, quiet_from, next_event, last_event, daemon_since, next_daemon_kill;
  uint64_t settled_samples = 0, checked_gens = 0, reliable_fail = 0, lossy_fail = 0;
  uint64_t published[2] = {0, 0}, holes = 0;
  bool have_first = false, pass = true;
  unsigned i;
  int c;
  char cmd[128];

  while ((c = getopt_long(argc, argv, "s:r:vh", opts, NULL)) != -1) {
    switch (c) {
    case 's':
      seconds = strtoull(optarg, NULL, 10);
      break;
    case 'r':
      seed = strtoull(optarg, NULL, 10);
      break;
    case 'v':
      sk_verbose = 1;
      break;
    case 'h':
      sk_usage(stdout);
      return 0;
    default:
      sk_usage(stderr);
      return 2;
    }
  }
  if (optind != argc || seconds < 10) {
    sk_usage(stderr);
    return 2;
  }
  srandom((unsigned)seed);
  sk = mmap(NULL, sizeof(*sk), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (sk == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  snprintf(sk_dir, sizeof(sk_dir), "/tmp/shmbus-soak-XXXXXX");
  if (mkdtemp(sk_dir) == NULL) {
    perror("mkdtemp");
    return 1;
  }
  printf("soak: %" PRIu64 " s, seed %" PRIu64 ", bus %s\n", seconds, seed, sk_dir);
  fflush(stdout);

  sk_start_daemon();
  t0 = sk_now_ms();
  end = t0 + seconds * 1000u;
  /* The daemon is not killed in the last 40%: its last life is long
   * enough to show whether its memory and descriptors stay flat. */
  quiet_from = t0 + seconds * 600u;
  daemon_since = t0;
  next_daemon_kill = t0 + 20000 + (uint64_t)(random() % 20000);
  for (i = 0; i < SK_NSUB; i++)
    sk_start_sub(i, &stats);
  for (i = 0; i < SK_NPUB; i++)
    sk_start_pub(i, &stats);
  last_event = next_event = sk_now_ms() + 1000;

  while (sk_now_ms() < end) {
    uint64_t now;
    sk_sleep_us(20000);
    sk_reap(&stats);
    now = sk_now_ms();
    if (now >= next_event) {
      long r = random() % 100;
      if (now >= next_daemon_kill && now < quiet_from) {
        sk_kill(sk_daemon);
        stats.daemon_kills++;
        sk_start_daemon();
        daemon_since = sk_now_ms();
        have_first = false;
        next_daemon_kill = now + 20000 + (uint64_t)(random() % 20000);
      } else if (r < 50) {
        unsigned slot = (unsigned)(random() % SK_NPUB);
        atomic_store(&sk->gens[sk_pub_gen[slot]].killed, 1);
        sk_kill(sk_pubs[slot]);
        stats.pub_kills[sk->gens[sk_pub_gen[slot]].topic]++;
        sk_start_pub(slot, &stats);
      } else {
        unsigned slot = (unsigned)(random() % SK_NSUB);
        sk_kill(sk_subs[slot]);
        stats.sub_kills++;
        sk_start_sub(slot, &stats);
      }
      last_event = sk_now_ms();
      next_event = last_event + 200 + (uint64_t)(random() % 1300);
    }
    /* Settled: everyone open and nothing killed for 300 ms, so the daemon
     * has noticed every death. Sample from 10 s into its life. */
    if (sk_settled() && now > last_event + 300 && now > daemon_since + 10000) {
      struct sk_sample smp = {now, {0}};
      if (pu_sample(sk_daemon, &smp.s) == 0) {
        if (!have_first) {
          first = last = minmax_lo = minmax_hi = smp;
          have_first = true;
        }
        last = smp;
        if (smp.s.fds < minmax_lo.s.fds)
          minmax_lo.s.fds = smp.s.fds;
        if (smp.s.fds > minmax_hi.s.fds)
          minmax_hi.s.fds = smp.s.fds;
        if (smp.s.rss_anon_kb > minmax_hi.s.rss_anon_kb)
          minmax_hi.s.rss_anon_kb = smp.s.rss_anon_kb;
        settled_samples++;
      }
    }
  }

  /* The end: publishers stop (exactly counted), subscribers drain. */
  atomic_store(&sk->stop, 1);
  for (i = 0; i < SK_NPUB; i++) {
    int st = sk_wait(sk_pubs[i]);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "soak: publisher %u ended with status %d\n", i, st);
      pass = false;
    }
  }
  for (i = 0; i < SK_NSUB; i++) {
    int st = sk_wait(sk_subs[i]);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || !atomic_load(&sk->subs[i].reported)) {
      fprintf(stderr, "soak: subscriber %u ended with status %d\n", i, st);
      pass = false;
    }
  }
  kill(sk_daemon, SIGTERM);
  {
    int st = sk_wait(sk_daemon);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      fprintf(stderr, "soak: shmbusd ended with status %d\n", st);
      pass = false;
    }
  }
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", sk_dir);
  (void)!system(cmd);

  /* Completeness for the subscribers that lived to the end. */
  for (i = 0; i < SK_NSUB; i++) {
    struct sk_sub *s = &sk->subs[i];
    uint32_t g;
    if (!s->reliable) {
      if (s->received + s->lost != s->head - s->joined) {
        fprintf(stderr,
                "soak: lossy subscriber %u: received %" PRIu64 " + lost %" PRIu64
                " != head %" PRIu64 " - joined %" PRIu64 "\n",
                i, s->received, s->lost, s->head, s->joined);
        lossy_fail++;
      }
      continue;
    }
    if (s->lost > holes)
      holes = s->lost;
    for (g = 0; g < atomic_load(&sk->ngens); g++) {
      struct sk_pubgen *pg = &sk->gens[g];
      const struct sk_seen *e = &s->seen[g];
      uint64_t done = atomic_load(&pg->done);
      bool killed = atomic_load(&pg->killed);
      uint64_t want_last_lo, want_last_hi;
      if (pg->topic != s->topic || done == 0)
        continue;
      checked_gens++;
      /* A killed publisher may have committed one more than it counted. */
      want_last_lo = done - 1;
      want_last_hi = killed ? done : done - 1;
      if (atomic_load(&pg->start) > s->join) {
        /* Started after the subscriber joined: all of it, from seq 0. */
        if (e->count == 0 || e->first != 0 || e->count != e->last + 1 || e->last < want_last_lo ||
            e->last > want_last_hi) {
          fprintf(stderr,
                  "soak: reliable subscriber %u, publisher gen %u (%s, %" PRIu64
                  " committed): got %" PRIu64 " messages, seqs %" PRIu64 "..%" PRIu64 "\n",
                  i, g, killed ? "killed" : "finished", done, e->count, e->first, e->last);
          reliable_fail++;
        }
      } else if (e->count > 0 && (e->last < want_last_lo || e->last > want_last_hi)) {
        /* Started before: its tail, through its last committed message. */
        fprintf(stderr,
                "soak: reliable subscriber %u, publisher gen %u: last seq %" PRIu64 ", %" PRIu64
                " committed\n",
                i, g, e->last, done);
        reliable_fail++;
      }
    }
  }
  for (i = 0; i < atomic_load(&sk->ngens); i++)
    published[sk->gens[i].topic] += atomic_load(&sk->gens[i].done);

  printf("events: %u publisher kills (%u reliable topic, %u lossy), %u subscriber kills, %u "
         "daemon kills, %u publisher and %u subscriber starts, %u unexpected exits\n",
         stats.pub_kills[0] + stats.pub_kills[1], stats.pub_kills[0], stats.pub_kills[1],
         stats.sub_kills, stats.daemon_kills, stats.pub_starts, stats.sub_starts,
         stats.unexpected_exits);
  printf("messages: %" PRIu64 " committed on the reliable topic, %" PRIu64 " on the lossy one\n",
         published[0], published[1]);
  for (i = 0; i < SK_NSUB; i++) {
    const struct sk_sub *s = &sk->subs[i];
    printf("  final subscriber %u (%s): received %" PRIu64 ", lost %" PRIu64 ", head %" PRIu64
           ", joined at %" PRIu64 "\n",
           i, s->reliable ? "reliable" : "lossy", s->received, s->lost, s->head, s->joined);
  }
  printf("checks: checksum errors %" PRIu64 ", order/gap errors %" PRIu64
         ", unexpected error codes %" PRIu64 "\n",
         (uint64_t)atomic_load(&sk->bad), (uint64_t)atomic_load(&sk->order),
         (uint64_t)atomic_load(&sk->errors));
  printf("  reliable completeness: %" PRIu64 " (subscriber, publisher generation) pairs checked, "
         "%" PRIu64 " failed; most holes left by killed publishers in one subscriber (counted "
         "lost) %" PRIu64 " <= kills %u\n",
         checked_gens, reliable_fail, holes, stats.pub_kills[0]);
  printf("  lossy accounting (received + lost == head - joined): %" PRIu64 " failed\n", lossy_fail);
  if (have_first)
    printf("daemon (last life, %" PRIu64 " settled samples over %.0f s): descriptors %d -> %d "
           "(min %d, max %d); RssAnon %" PRIu64 " -> %" PRIu64 " kB (max %" PRIu64
           "); Private_Dirty %" PRIu64 " -> %" PRIu64 " kB\n",
           settled_samples, (double)(last.t_ms - first.t_ms) / 1000.0, first.s.fds, last.s.fds,
           minmax_lo.s.fds, minmax_hi.s.fds, first.s.rss_anon_kb, last.s.rss_anon_kb,
           minmax_hi.s.rss_anon_kb, first.s.private_dirty_kb, last.s.private_dirty_kb);
  else
    printf("daemon: no settled sample (run longer)\n");

  if (atomic_load(&sk->bad) || atomic_load(&sk->order) || atomic_load(&sk->errors) ||
      stats.unexpected_exits || reliable_fail || lossy_fail || holes > stats.pub_kills[0])
    pass = false;
  /* Flat: the same descriptors at every settled moment, and heap growth
   * within 256 KiB (allocator noise; a leak per crash or per connection,
   * thousands of them, would exceed it). */
  if (!have_first || minmax_lo.s.fds != minmax_hi.s.fds ||
      last.s.rss_anon_kb > first.s.rss_anon_kb + 256)
    pass = false;
  printf("RESULT: %s\n", pass ? "PASS" : "FAIL");
  return pass ? 0 : 1;
}
