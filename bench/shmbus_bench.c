/* shmbus-bench: fan-out and latency of shmbus between processes, side by
 * side with other transports measured in the same run, and what the bus
 * costs around them (publish, idle: costs.c).
 *
 *   fanout   one publisher process, N subscriber processes, for every
 *            combination of the listed subscriber counts, message sizes,
 *            modes, wait modes and rates: delivered messages/s and GB/s,
 *            loss, one-way latency percentiles (from a send timestamp in
 *            each message), CPU time per delivered message, and who ran
 *            where: each process's share of the sending window on a CPU
 *            and waiting on a run queue for one (/proc, see fan_sched).
 *   latency  ping-pong between two processes: one-way latency and half
 *            the round trip, per size and wait mode.
 *   publish  ns per publish with 0, 1 and 8 busy-polling subscribers.
 *   idle     the daemon holding 1,000 topics: memory, CPU, wake-ups.
 *   tools    a publisher alone and with the CLI's echo, hz or bw attached
 *            (tools.c).
 *
 * The program starts its own shmbusd on a fresh private bus directory and
 * uses the public API only. With --peers, every configuration also runs
 * over a unix-domain-socket fan-out, ZeroMQ PUB/SUB over ipc:// (when
 * built with libzmq), iceoryx 2.0 with a RouDi of its own (when built with
 * its C binding; see xport_iox.h) and the physical baselines (a cold memcpy of the
 * same size; raw eventfd and cache-line ping-pongs), transports taking
 * turns within each repetition so drift hits all alike.
 *
 * Every count is checked: for each subscriber, received + lost must equal
 * published (lost: shmbus's own count, or the sequence gaps of a peer).
 * Exit status: 0 whatever the timings; 1 if a run fails or a count does
 * not add up; 2 on a bad argument.
 *
 * Linux and Windows. Windows has no fork: a child is this program again
 * (job_start, child_main: the same arguments give the same rows, and the
 * job names its row), with the memory it shares with the parent inherited
 * (bp_map_shared); fanout and latency run there with shmbus, the memcpy
 * baseline and the named-pipe, cache-line and named-event ping-pongs
 * (platform/xport_windows.c), the other peers are skipped with a note,
 * publish and idle run (costs.c), --plot runs gnuplot.exe, and tools says
 * it is not available (docs/windows.md). */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifndef _WIN32
#include <sys/prctl.h>
#include <sys/wait.h>
#endif

#include "benchproc.h"
#include "benchutil.h"
#include "costs.h"
#include "tools.h"
#include "shmbus/shmbus.h"
#include "xport.h"
#include "xport_iox.h"
#include "xport_bridge.h"
#include "platform/stdfds.h"
#include "xport_nats.h"
#include "xport_shmbus.h"

#ifndef SHMBUS_BENCH_BUILD_TYPE
#define SHMBUS_BENCH_BUILD_TYPE ""
#endif
#ifndef SHMBUSD_PATH
#define SHMBUSD_PATH "shmbusd"
#endif

#define PROG "shmbus-bench"
#define MAX_LIST 16u
#define MAX_REPS 50u
#define FAN_SAMPLES (1u << 22) /* latency samples kept per fan-out run, all subscribers */
#define LAT_MAX_RT 4000000u    /* most round trips one latency run keeps */
#define LAT_WARMUP 1000u       /* round trips not kept at the start of a latency run */
#define IDLE_TIMEOUT_MS BX_IDLE_TIMEOUT_MS /* a receiver that hears nothing this long failed */
#define HELLO_TIMEOUT_MS 10000u

/* ---- options ----------------------------------------------------------- */

enum cmd { CMD_FANOUT, CMD_LATENCY };
enum fmt { FMT_MD, FMT_CSV, FMT_JSON };

struct opts {
  enum cmd cmd;
  unsigned subs[MAX_LIST], nsubs;
  size_t sizes[MAX_LIST];
  unsigned nsizes;
  bool modes[2]; /* reliable? values listed */
  unsigned nmodes;
  enum bx_wait waits[3];
  unsigned nwaits;
  double rates[MAX_LIST];
  unsigned nrates;
  unsigned burst_us; /* --burst: with --rate, sleep at least this long when ahead (0: spin) */
  double duration;   /* s, 0: by count */
  uint64_t count;    /* messages (fanout) / round trips (latency), 0: by duration */
  unsigned reps;
  unsigned slots; /* shmbus ring slots, 0: by size */
  bool pin, peers, touch;
  enum fmt fmt;
  const char *plot;
  const char *daemon;
  bool bridge;             /* the bridge subcommand: a fan-out of NATS and shmbus-bridge rows */
  const char *bridge_prog; /* --bridge or $SHMBUS_BRIDGE, NULL: none */
};

/* The report's name of the subcommand. */
static const char *cmd_name(const struct opts *o) {
  return o->bridge ? "bridge" : (o->cmd == CMD_FANOUT ? "fanout" : "latency");
}

static const char *wait_name(enum bx_wait w) {
  return w == BX_EVENT ? "event" : (w == BX_UV ? "uv" : "spin");
}

static _Noreturn void bad_usage(const char *fmt, const char *arg) {
  fprintf(stderr, PROG ": ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, " (see " PROG " --help)\n");
  exit(2);
}

static double parse_num(const char *s, const char *opt, double lo, double hi) {
  char *end;
  double v;
  errno = 0;
  v = strtod(s, &end);
  if (*s == '\0' || end == s || errno != 0 || isnan(v))
    bad_usage("bad number for %s", opt);
  /* Size suffixes: k, K, M (powers of 1024 for sizes, of 1000 for rates). */
  if (*end == 'k' || *end == 'K')
    v *= strcmp(opt, "--size") == 0 ? 1024.0 : 1000.0, end++;
  else if (*end == 'M')
    v *= strcmp(opt, "--size") == 0 ? 1048576.0 : 1e6, end++;
  if (*end != '\0' || v < lo || v > hi)
    bad_usage("bad number for %s", opt);
  return v;
}

/* Splits a comma-separated list; calls back with each item. */
static unsigned split_list(const char *arg, const char *opt, char items[][32]) {
  unsigned n = 0;
  const char *p = arg;
  if (arg == NULL)
    bad_usage("%s needs a value", opt);
  while (*p != '\0') {
    size_t len = strcspn(p, ",");
    if (len == 0 || len >= 32 || n >= MAX_LIST)
      bad_usage("bad list for %s", opt);
    memcpy(items[n], p, len);
    items[n++][len] = '\0';
    p += len;
    if (*p == ',')
      p++;
  }
  if (n == 0)
    bad_usage("%s needs a value", opt);
  return n;
}

static void usage(FILE *f) {
  fprintf(f,
          "Usage: " PROG " fanout  [options]\n"
          "       " PROG " latency [options]\n"
          "       " PROG " bridge  [--bridge PATH] [fanout options]\n"
          "       " PROG " publish [--quick] [--pin] [--rounds N] [--daemon PATH]\n"
          "       " PROG " idle    [--quick] [--window-ms N] [--daemon PATH]\n"
          "       " PROG " tools   [--quick] [--count N] [--rate LIST] [--readers LIST]\n"
          "\n"
          "Measures shmbus between processes (its own shmbusd on a private bus directory, the\n"
          "public API), optionally next to other transports in the same run. Prints a markdown\n"
          "report with the machine's description; exit status 0 whatever the timings, 1 if a\n"
          "run fails or counts do not add up, 2 on a bad argument.\n"
          "\n"
          "fanout: one publisher, N subscriber processes; messages/s and GB/s per subscriber and\n"
          "in total, loss %%, one-way latency p50/p99/p99.9/max, CPU time per delivered message;\n"
          "and who ran where: each process's share of the sending window on a CPU and waiting\n"
          "on a run queue for one, preemptions, migrations (from /proc; a second table, and\n"
          "the sched_* fields of --csv and --json).\n"
          "latency: ping-pong between two processes; one-way latency and half the round trip.\n"
          "bridge: a fan-out from bus A to subscribers on bus B (a second shmbusd) through\n"
          "shmbus-bridge --export on A, a nats-server and shmbus-bridge --import on B, next to\n"
          "plain NATS publishers and subscribers of the same sizes in the same run (core NATS\n"
          "lossy, JetStream reliable); the last columns give the bridge's p50 latency and\n"
          "throughput relative to plain NATS. Defaults: --subs 1, --size 64,256,4096,65536,\n"
          "--mode lossy,reliable. Needs libnats at build time and nats-server at run time.\n"
          "\n"
          "Lists are comma-separated; every combination is measured.\n");
  fprintf(f,
          "  --subs LIST        subscriber processes (fanout; default 1,2,4,8; at most %u)\n"
          "  --size LIST        message bytes, >= %zu, suffixes k and M (default\n"
          "                     64,4096,65536,1048576)\n"
          "  --mode LIST        lossy and/or reliable subscribers (default lossy)\n"
          "  --wait LIST        event (block on the eventfd), uv (libuv loop), spin (busy-poll)\n"
          "                     (default uv)\n"
          "  --duration S       seconds per run (default fanout 1, latency: by count)\n"
          "  --count N          messages per fanout run, round trips per latency run (latency\n"
          "                     default 100000); with --duration, whichever comes first\n"
          "  --rate LIST        fanout messages/s, 0 = as fast as possible (default 0), e.g.\n"
          "                     0,10k,100k\n"
          "  --burst US         with --rate, a publisher ahead of time sleeps at least US µs,\n"
          "                     then sends what is due at once: pacing that leaves the CPU\n"
          "                     to the rest (default 0: each message at its time, spinning\n"
          "                     when the next is due within 2 µs)\n"
          "  --reps N           repetitions; transports take turns in each (default 3); the\n"
          "                     report gives medians\n"
          "  --pin              publisher / A on CPU 0, subscribers / B on CPUs 1.. in turn\n"
          "  --slots N          shmbus ring slots, a power of two (default: 4096, fewer for\n"
          "                     big messages, at most 4 MiB of payload)\n"
          "  --touch            fanout subscribers read every byte of each message they get\n"
          "                     (by default they read its header only)\n"
          "  --peers            also measure the other transports: unix-domain sockets, ZeroMQ\n"
          "                     PUB/SUB over ipc:// (if built with libzmq), iceoryx 2.0 (if\n"
          "                     built with its C binding; starts its own iox-roudi from $PATH,\n"
          "                     skipped with a note when another RouDi runs: iceoryx 2.0 has\n"
          "                     one per machine), NATS (fanout, if built with libnats: a\n"
          "                     nats-server of its own from $SHMBUS_NATS_SERVER or $PATH; core\n"
          "                     NATS for lossy, JetStream for reliable), cold memcpy (fanout),\n"
          "                     raw eventfd and cache-line ping-pongs (latency)\n"
          "  --csv | --json     machine-readable output on stdout instead of markdown\n"
          "  --plot FILE.png    also draw the results with gnuplot (needs gnuplot in $PATH)\n"
          "  --daemon PATH      the shmbusd to start (default " SHMBUSD_PATH ")\n"
          "  --bridge PATH      bridge: the shmbus-bridge program (default $SHMBUS_BRIDGE, else\n"
          "                     the one built with this program, if any; without one, the\n"
          "                     bridge rows are skipped with a note); with SHMBUS_BENCH_KEEP\n"
          "                     set, each bridge run's directory (the bridges' logs and\n"
          "                     stats) is kept and named on stderr\n"
          "  --help             this text\n"
          "\n",
          BX_MAX_SUBS, BX_MIN_SIZE);
  costs_usage(f);
  tools_usage(f);
}

static void parse(int argc, char **argv, struct opts *o) {
  char items[MAX_LIST][32];
  bool have_sizes = false;
  unsigned i, n;
  int a;

  memset(o, 0, sizeof(*o));
  o->daemon = SHMBUSD_PATH;
  if (argc < 2)
    bad_usage("needs a subcommand: fanout, latency, publish, idle or tools%s", "");
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
    usage(stdout);
    exit(0);
  }
  if (strcmp(argv[1], "fanout") == 0)
    o->cmd = CMD_FANOUT;
  else if (strcmp(argv[1], "bridge") == 0)
    o->cmd = CMD_FANOUT, o->bridge = true;
  else if (strcmp(argv[1], "latency") == 0)
    o->cmd = CMD_LATENCY;
  else
    bad_usage("unknown subcommand '%s'", argv[1]);
  o->subs[0] = 1, o->subs[1] = 2, o->subs[2] = 4, o->subs[3] = 8, o->nsubs = 4;
  o->modes[0] = false, o->nmodes = 1;
  o->bridge_prog = getenv("SHMBUS_BRIDGE");
#ifdef SHMBUS_BRIDGE_PATH
  if (o->bridge_prog == NULL || o->bridge_prog[0] == '\0')
    o->bridge_prog = SHMBUS_BRIDGE_PATH;
#endif
  if (o->bridge) {
    o->nsubs = 1;
    o->modes[1] = true, o->nmodes = 2;
  }
  o->waits[0] = BX_UV, o->nwaits = 1;
  o->rates[0] = 0, o->nrates = 1;
  o->reps = 3;
  for (a = 2; a < argc; a++) {
    const char *opt = argv[a], *val = a + 1 < argc ? argv[a + 1] : NULL;
    if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
      usage(stdout);
      exit(0);
    } else if (strcmp(opt, "--pin") == 0) {
      o->pin = true;
    } else if (strcmp(opt, "--peers") == 0) {
      o->peers = true;
    } else if (strcmp(opt, "--touch") == 0) {
      o->touch = true;
    } else if (strcmp(opt, "--csv") == 0) {
      o->fmt = FMT_CSV;
    } else if (strcmp(opt, "--json") == 0) {
      o->fmt = FMT_JSON;
    } else if (strcmp(opt, "--subs") == 0) {
      n = split_list(val, opt, items), a++;
      for (i = 0; i < n; i++)
        o->subs[i] = (unsigned)parse_num(items[i], opt, 1, BX_MAX_SUBS);
      o->nsubs = n;
    } else if (strcmp(opt, "--size") == 0) {
      n = split_list(val, opt, items), a++;
      for (i = 0; i < n; i++)
        o->sizes[i] = (size_t)parse_num(items[i], opt, BX_MIN_SIZE, 64.0 * 1048576);
      o->nsizes = n;
      have_sizes = true;
    } else if (strcmp(opt, "--mode") == 0) {
      n = split_list(val, opt, items), a++;
      for (i = 0; i < n && i < 2; i++) {
        if (strcmp(items[i], "lossy") != 0 && strcmp(items[i], "reliable") != 0)
          bad_usage("--mode takes lossy and/or reliable, not '%s'", items[i]);
        o->modes[i] = strcmp(items[i], "reliable") == 0;
      }
      o->nmodes = i;
    } else if (strcmp(opt, "--wait") == 0) {
      n = split_list(val, opt, items), a++;
      for (i = 0; i < n && i < 3; i++) {
        if (strcmp(items[i], "event") == 0)
          o->waits[i] = BX_EVENT;
        else if (strcmp(items[i], "uv") == 0)
          o->waits[i] = BX_UV;
        else if (strcmp(items[i], "spin") == 0)
          o->waits[i] = BX_SPIN;
        else
          bad_usage("--wait takes event, uv and/or spin, not '%s'", items[i]);
      }
      o->nwaits = i;
    } else if (strcmp(opt, "--rate") == 0) {
      n = split_list(val, opt, items), a++;
      for (i = 0; i < n; i++)
        o->rates[i] = parse_num(items[i], opt, 0, 1e9);
      o->nrates = n;
    } else if (strcmp(opt, "--burst") == 0) {
      if (val == NULL)
        bad_usage("%s needs a value", opt);
      double us = parse_num(val, opt, 0, 1e6);
      if (us != (double)(unsigned)us)
        bad_usage("--burst takes whole microseconds, not '%s'", val);
      o->burst_us = (unsigned)us, a++;
    } else if (strcmp(opt, "--duration") == 0) {
      if (val == NULL)
        bad_usage("%s needs a value", opt);
      o->duration = parse_num(val, opt, 0.001, 3600), a++;
    } else if (strcmp(opt, "--count") == 0) {
      if (val == NULL)
        bad_usage("%s needs a value", opt);
      o->count = (uint64_t)parse_num(val, opt, 1, 1e12), a++;
    } else if (strcmp(opt, "--slots") == 0) {
      unsigned v;
      if (val == NULL)
        bad_usage("%s needs a value", opt);
      v = (unsigned)parse_num(val, opt, 2, 16777216), a++;
      if ((v & (v - 1)) != 0)
        bad_usage("%s needs a power of two", opt);
      o->slots = v;
    } else if (strcmp(opt, "--reps") == 0) {
      if (val == NULL)
        bad_usage("%s needs a value", opt);
      o->reps = (unsigned)parse_num(val, opt, 1, MAX_REPS), a++;
    } else if (strcmp(opt, "--plot") == 0) {
      if (val == NULL || val[0] == '\0')
        bad_usage("%s needs a file name", opt);
      o->plot = val, a++;
    } else if (strcmp(opt, "--bridge") == 0 && o->bridge) {
      if (val == NULL || val[0] == '\0')
        bad_usage("%s needs a path", opt);
      o->bridge_prog = val, a++;
    } else if (strcmp(opt, "--daemon") == 0) {
      if (val == NULL || val[0] == '\0')
        bad_usage("%s needs a path", opt);
      o->daemon = val, a++;
    } else {
      bad_usage("unknown argument '%s'", opt);
    }
  }
  if (!have_sizes) {
    static const size_t def[] = {64, 4096, 65536, 1048576};
    static const size_t def_bridge[] = {64, 256, 4096, 65536};
    memcpy(o->sizes, o->bridge ? def_bridge : def, sizeof(def));
    o->nsizes = 4;
  }
  if (o->cmd == CMD_FANOUT && o->duration == 0 && o->count == 0)
    o->duration = 1.0;
  if (o->cmd == CMD_LATENCY && o->count == 0 && o->duration == 0)
    o->count = 100000;
  if (o->cmd == CMD_LATENCY && o->count > LAT_MAX_RT)
    bad_usage("--count for latency is at most 4000000%s", "");
  if (o->burst_us != 0) {
    bool paced = false;
    for (unsigned r = 0; r < o->nrates; r++)
      paced |= o->rates[r] > 0;
    if (o->cmd != CMD_FANOUT || !paced)
      bad_usage("--burst paces a fanout or bridge --rate: give a rate above 0%s", "");
  }
}

/* ---- results ------------------------------------------------------------ */

/* Metrics of a row; per repetition, then the median (counts: the sum). */
enum {
  M_PUB,    /* fanout: published messages/s */
  M_SUB,    /* delivered messages/s per subscriber (mean over subscribers) */
  M_SUB_GB, /* GB/s per subscriber */
  M_TOT,    /* delivered messages/s, all subscribers */
  M_TOT_GB, /* GB/s, all subscribers */
  M_LOSS,   /* % of published not delivered, all subscribers */
  M_P50,    /* one-way latency, µs */
  M_P99,
  M_P999,
  M_MAX,
  M_HALF50, /* latency: RTT/2 p50, µs */
  M_HALF99,
  M_SAME,      /* latency: % of round trips with A and B on the same CPU */
  M_CPU,       /* CPU ns per delivered message (fanout) or per round trip (latency) */
  M_WAKE,      /* wake-ups (voluntary context switches, every process) per delivered
                  message (fanout) or per round trip (latency) */
  M_PUBLISHED, /* counts: summed over repetitions */
  M_RECEIVED,
  M_LOST,
  M_SAMPLES,
  M_RATIO,    /* shmbus ÷ this, filled at the end */
  M_P50_X,    /* bridge: this p50 ÷ plain NATS's p50, filled at the end */
  M_TPUT_PCT, /* bridge: this delivered /s per sub as % of plain NATS's */
  /* Scheduling (fanout), from /proc over the publisher's sending window;
   * NAN where not measured (memcpy, the daemon of a peer, no /proc). */
  M_S_WIN,      /* the window, ms */
  M_S_PUB_CPU,  /* publisher on a CPU, % of the window */
  M_S_PUB_WAIT, /* publisher runnable but waiting on a run queue, % of the window */
  M_S_SUB_CPU,  /* the same for the subscribers, their mean */
  M_S_SUB_WAIT,
  M_S_DMN_CPU,   /* shmbusd on a CPU, % of the window (shmbus rows) */
  M_S_CPU_SUM,   /* publisher + subscribers + shmbusd on a CPU, % (of 100 x CPUs) */
  M_S_WAIT_SUM,  /* publisher + subscribers + shmbusd waiting on a run queue, % */
  M_S_INVOL,     /* involuntary switches (preemptions) of publisher and subscribers
                    per 1,000 delivered messages */
  M_S_MIGR,      /* moves to another CPU of publisher and subscribers, per s */
  M_S_PUB_SLICE, /* publisher's mean time on a CPU per turn, µs */
  M_S_SUB_SLICE, /* subscribers' (all turns of all of them) */
  M_COUNT
};

struct row {
  const struct bx_ops *x; /* NULL: memcpy */
  const char *xname;
  enum bx_wait wait;
  bool reliable;
  unsigned subs;
  size_t size;
  double rate;
  double rep[MAX_REPS][M_COUNT];
  unsigned nrep;
  double m[M_COUNT];
  bool ok;          /* every count added up */
  bool skipped;     /* not measured: see note */
  const char *note; /* why skipped */
};

static struct row *rows;
static unsigned nrows;
static long n_cpus;
static unsigned run_id;
static bool sched_avail;      /* /proc has the scheduler's counters (bu_sched_available) */
static unsigned sched_failed; /* fan-out runs whose counters could not be read */
static int sched_err;         /* why, the last time */

/* ---- shared with the children ------------------------------------------- */

struct sub_slot {
  _Alignas(64) _Atomic uint32_t ready; /* the subscriber is open */
  _Atomic uint32_t seen;               /* it received a HELLO (or anything) */
  _Atomic uint32_t done;               /* it received END and reported */
  int32_t error;
  uint64_t received; /* data messages */
  int64_t lost_own;  /* the transport's own count of lost messages, -1: none */
  uint64_t gaps;     /* sequence numbers skipped, the tail up to END's total included */
  uint64_t disorder; /* sequence numbers that went backwards or repeated */
  uint64_t total;    /* END's total */
  uint64_t cpu_ns;
  uint64_t nvcsw;  /* voluntary context switches while receiving */
  uint64_t end_ns; /* when END arrived */
  uint64_t nsamples, max_ns;
  uint64_t checksum;     /* --touch: keeps the reads from being optimised away */
  pid_t pid;             /* the subscriber's process, set before `ready` */
  struct bu_sched sched; /* what the scheduler did with it in the sending window */
};

struct ctl {
  _Alignas(64) _Atomic uint32_t pub_open;
  _Atomic uint32_t b_ready;
  int32_t pub_error;
  uint64_t t_start, t_stop, published, pub_cpu_ns;
  uint64_t rts, b_cpu_ns;
  uint64_t pub_nvcsw, b_nvcsw; /* voluntary context switches: publisher (or A), B */
  uint64_t same_cpu;           /* latency: round trips during which A and B ran on one CPU */
  /* Fan-out scheduling, written by the publisher (daemon_pid: by the parent). */
  pid_t daemon_pid;      /* shmbusd, whose counters are read too; 0: none */
  int32_t sched_error;   /* 0, or why the counters could not be read */
  uint64_t sched_win_ns; /* from before the first reading to after the last */
  struct bu_sched pub_sched, dmn_sched;
  struct sub_slot subs[BX_MAX_SUBS];
};

static struct ctl *ctl;
static uint32_t *samples; /* fanout: FAN_SAMPLES; latency: [0, LAT_MAX_RT) one-way, then RTT */
static size_t samples_len;

/* ctl and samples, shared with the children (in this order: a Windows
 * child maps its parent's sections by the order of the calls). */
static void map_all(const struct opts *o) {
  ctl = bp_map_shared(sizeof(*ctl));
  samples_len = (o->cmd == CMD_FANOUT ? FAN_SAMPLES : 2 * (size_t)LAT_MAX_RT) * sizeof(*samples);
  samples = bp_map_shared(samples_len);
}

static void fill_payload(unsigned char *buf, size_t size) {
  size_t i;
  for (i = 0; i < size; i++)
    buf[i] = (unsigned char)(i * 131u + 7u);
}

static void wait_flag(const _Atomic uint32_t *f, unsigned n, size_t stride, const char *what) {
  uint64_t end = bu_now_ns() + 30000000000u;
  for (;;) {
    unsigned i, all = 0;
    for (i = 0; i < n; i++)
      all += atomic_load_explicit(
          (const _Atomic uint32_t *)(const void *)((const char *)f + i * stride),
          memory_order_acquire);
    if (all == n)
      return;
    if (bu_now_ns() > end)
      bp_die(what, -ETIMEDOUT);
    bu_sleep_ms(1);
  }
}

/* ---- fanout: a subscriber ----------------------------------------------- */

struct fan_sub {
  struct sub_slot *slot;
  bool touch;
  uint64_t sum;  /* --touch: every 8-byte word of every message, added up */
  uint32_t *res; /* reservoir of latency samples, ns */
  uint64_t cap, next_seq;
  uint64_t rnd;
  volatile bool ended;
};

/* The high 64 bits of a * b. */
static uint64_t mul_hi(uint64_t a, uint64_t b) {
  __extension__ typedef unsigned __int128 u128;
  return (uint64_t)(((u128)a * b) >> 64);
}

static void fan_on_msg(void *arg, const void *data, size_t len, uint64_t ts_ns) {
  struct fan_sub *s = arg;
  struct sub_slot *sl = s->slot;
  uint64_t t = bu_now_ns(), ns;
  struct bx_hdr h;
  if (len < sizeof(h)) {
    sl->disorder++;
    return;
  }
  memcpy(&h, data, sizeof(h));
  if (h.kind == BX_HELLO) {
    atomic_store_explicit(&sl->seen, 1, memory_order_release);
    return;
  }
  if (h.kind == BX_END) {
    if (!s->ended) {
      sl->total = h.total;
      sl->end_ns = t;
      s->ended = true;
    }
    return;
  }
  if (s->touch) {
    const unsigned char *p = data;
    size_t i;
    uint64_t w, sum = 0;
    for (i = 0; i + 8 <= len; i += 8) {
      memcpy(&w, p + i, 8);
      sum += w;
    }
    s->sum += sum;
  }
  if (h.seq < s->next_seq)
    sl->disorder++;
  else
    sl->gaps += h.seq - s->next_seq;
  s->next_seq = h.seq + 1;
  sl->received++;
  if (ts_ns == 0)
    ts_ns = h.ts_ns;
  ns = t > ts_ns ? t - ts_ns : 0;
  if (ns > sl->max_ns)
    sl->max_ns = ns;
  /* Reservoir sampling (Algorithm R): uniform over everything received. */
  if (sl->nsamples < s->cap) {
    s->res[sl->nsamples++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
  } else {
    /* A uniform index below `received` by multiply-shift (no division). */
    uint64_t j = mul_hi(bu_next_random(&s->rnd), sl->received);
    if (j < s->cap)
      s->res[j] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
  }
}

static int fan_subscriber(const struct bx_ops *x, const struct bx_run *run, unsigned idx,
                          bool touch) {
  struct fan_sub s;
  struct bx_ep ep;
  uint64_t c0, w0;
  int rv;

  memset(&s, 0, sizeof(s));
  s.slot = &ctl->subs[idx];
  s.cap = FAN_SAMPLES / run->nsubs;
  s.res = samples + (size_t)idx * s.cap;
  s.rnd = 0x9e3779b97f4a7c15u + idx;
  s.touch = touch;
  if (x->flags & BX_F_PUB_FIRST)
    wait_flag(&ctl->pub_open, 1, 0, "publisher open");
  if ((rv = bx_open(&ep, x, run, BX_SUB, idx, fan_on_msg, &s)) < 0)
    bp_die("subscriber open", rv);
  c0 = bu_cpu_ns();
  w0 = bu_nvcsw();
  s.slot->pid = getpid();
  /* Pairs with the publisher's acquire in wait_flag: it reads pid after. */
  atomic_store_explicit(&s.slot->ready, 1, memory_order_release);
  rv = bx_recv_until(&ep, &s.ended, IDLE_TIMEOUT_MS);
  s.slot->cpu_ns = bu_cpu_ns() - c0;
  s.slot->nvcsw = bu_nvcsw() - w0;
  if (rv < 0)
    bp_die("subscriber receive", rv);
  s.slot->gaps += s.slot->total > s.next_seq ? s.slot->total - s.next_seq : 0;
  s.slot->lost_own = x->lost(&ep);
  s.slot->checksum = s.sum;
  bx_close(&ep);
  atomic_store_explicit(&s.slot->done, 1, memory_order_release);
  return 0;
}

/* ---- fanout: the publisher ------------------------------------------------ */

/* A child's end: _exit (no atexit handlers, nothing of the parent's state
 * torn down twice), but exit() for a transport whose library must
 * unregister in its static destructors (iceoryx: its runtime tells RouDi). */
static _Noreturn void child_exit(const struct bx_ops *x, int rv) {
  if (x != NULL && (x->flags & BX_F_EXIT))
    exit(rv);
  _exit(rv);
}

static void sleep_until(uint64_t t) {
  bu_sleep_until_ns(t);
}

static void send_or_die(struct bx_ep *ep, const void *m, size_t len, bool must) {
  int rv = ep->ops->send(ep, m, len, must);
  if (rv < 0)
    bp_die("send", rv);
}

static void set_kind(unsigned char *buf, uint32_t kind, uint64_t seq, uint64_t total) {
  struct bx_hdr h;
  memset(&h, 0, sizeof(h));
  h.kind = kind;
  h.seq = seq;
  h.total = total;
  h.ts_ns = bu_now_ns();
  memcpy(buf, &h, sizeof(h));
}

/* Reads the scheduler's counters of every process of the run (the caller,
 * the subscribers, shmbusd if ctl names it) into s[0], s[1..nsubs],
 * s[nsubs + 1]. Returns 0 or the first -errno. */
static int sched_read_all(unsigned nsubs, struct bu_sched *s) {
  unsigned i;
  int rv;
  if ((rv = bu_sched_read(getpid(), &s[0])) < 0)
    return rv;
  for (i = 0; i < nsubs; i++)
    if ((rv = bu_sched_read(ctl->subs[i].pid, &s[1 + i])) < 0)
      return rv;
  if (ctl->daemon_pid > 0 && (rv = bu_sched_read(ctl->daemon_pid, &s[1 + nsubs])) < 0)
    return rv;
  return 0;
}

/* Sends HELLO until every subscriber has seen one (their subscriptions
 * are in place), for transports that subscribe asynchronously. */
static void hello_all(struct bx_ep *ep, unsigned char *buf, unsigned nsubs) {
  uint64_t end = bu_now_ns() + (uint64_t)HELLO_TIMEOUT_MS * 1000000u;
  for (;;) {
    unsigned i, all = 0;
    for (i = 0; i < nsubs; i++)
      all += atomic_load_explicit(&ctl->subs[i].seen, memory_order_acquire);
    if (all == nsubs)
      return;
    if (bu_now_ns() > end)
      bp_die("subscribers never heard HELLO", -ETIMEDOUT);
    set_kind(buf, BX_HELLO, 0, 0);
    send_or_die(ep, buf, ep->run->size, false);
    bu_sleep_ms(1);
  }
}

static int fan_publisher(const struct bx_ops *x, const struct bx_run *run, const struct opts *o,
                         double rate) {
  unsigned char *buf = malloc(run->size);
  uint64_t t0, c0, w0, seq, dur = (uint64_t)(o->duration * 1e9), period = 0, end;
  uint64_t paced = 0; /* sleeps of the pacing (--rate): not wake-ups of the transport */
  uint64_t sw0, sw1;  /* the scheduling window's edges */
  struct bu_sched s0[BX_MAX_SUBS + 2], s1[BX_MAX_SUBS + 2];
  int serr;
  unsigned i;
  struct bx_ep ep;
  struct bx_hdr h;
  bool stamps;
  int rv;

  if (buf == NULL)
    bp_die("malloc", -ENOMEM);
  fill_payload(buf, run->size);
#ifndef _WIN32
  (void)prctl(PR_SET_TIMERSLACK, 1UL);
#endif
  if (x->flags & BX_F_PUB_FIRST) {
    if ((rv = bx_open(&ep, x, run, BX_PUB, 0, NULL, NULL)) < 0)
      bp_die("publisher open", rv);
    atomic_store_explicit(&ctl->pub_open, 1, memory_order_release);
    wait_flag(&ctl->subs[0].ready, run->nsubs, sizeof(struct sub_slot), "subscribers open");
  } else {
    wait_flag(&ctl->subs[0].ready, run->nsubs, sizeof(struct sub_slot), "subscribers open");
    if ((rv = bx_open(&ep, x, run, BX_PUB, 0, NULL, NULL)) < 0)
      bp_die("publisher open", rv);
  }
  if (x->flags & BX_F_HELLO)
    hello_all(&ep, buf, run->nsubs);
  if (rate > 0)
    period = (uint64_t)(1e9 / rate);
  memset(&h, 0, sizeof(h));
  h.kind = BX_DATA;
  /* The scheduling window: every process's counters just before the first
   * send and just after the last (outside the timed loop). */
  sw0 = bu_now_ns();
  serr = sched_read_all(run->nsubs, s0);
  c0 = bu_cpu_ns();
  w0 = bu_nvcsw();
  t0 = bu_now_ns();
  /* A transport that stamps messages itself (shmbus: ts_ns, read just
   * before its copy) needs no stamp of ours; flat out, the clock is then
   * read for the duration only every 64 messages. */
  stamps = (x->flags & BX_F_STAMPS) != 0 && period == 0;
  for (seq = 0;; seq++) {
    uint64_t now = stamps && (seq & 63) != 0 ? t0 : bu_now_ns();
    if ((o->count != 0 && seq >= o->count) || (dur != 0 && now - t0 >= dur))
      break;
    if (period != 0 && now < t0 + seq * period && o->burst_us != 0) {
      /* Ahead: away for a burst's time, then what is due goes at once. */
      sleep_until(t0 + seq * period + (uint64_t)o->burst_us * 1000u);
      paced++;
      now = bu_now_ns();
    } else if (period != 0 && now < t0 + seq * period) {
      uint64_t due = t0 + seq * period;
      if (due - now > 2000) {
        sleep_until(due);
        paced++;
      }
      while ((now = bu_now_ns()) < due)
        ;
    }
    h.seq = seq;
    h.ts_ns = now;
    memcpy(buf, &h, sizeof(h));
    send_or_die(&ep, buf, run->size, false);
  }
  ctl->t_start = t0;
  ctl->t_stop = bu_now_ns();
  ctl->published = seq;
  /* Before END: the wait for the subscribers below sleeps on purpose. */
  w0 = bu_nvcsw() - w0;
  ctl->pub_nvcsw = w0 > paced ? w0 - paced : 0;
  if (serr == 0)
    serr = sched_read_all(run->nsubs, s1);
  sw1 = bu_now_ns();
  if (serr == 0) {
    bu_sched_since(&s0[0], &s1[0], &ctl->pub_sched);
    for (i = 0; i < run->nsubs; i++)
      bu_sched_since(&s0[1 + i], &s1[1 + i], &ctl->subs[i].sched);
    if (ctl->daemon_pid > 0)
      bu_sched_since(&s0[1 + run->nsubs], &s1[1 + run->nsubs], &ctl->dmn_sched);
    ctl->sched_win_ns = sw1 - sw0;
  }
  ctl->sched_error = serr;
  /* END: once (it is the newest message, which a lossy shmbus subscriber
   * always gets, and a sent frame on a socket), or again every
   * millisecond for a transport that may drop it. */
  end = bu_now_ns() + (uint64_t)IDLE_TIMEOUT_MS * 1000000u * 3;
  set_kind(buf, BX_END, 0, seq);
  send_or_die(&ep, buf, run->size, true);
  for (;;) {
    unsigned all = 0;
    for (i = 0; i < run->nsubs; i++)
      all += atomic_load_explicit(&ctl->subs[i].done, memory_order_acquire);
    if (all == run->nsubs)
      break;
    if (bu_now_ns() > end)
      bp_die("subscribers did not finish", -ETIMEDOUT);
    bu_sleep_ms(1);
    if (x->flags & BX_F_HELLO)
      send_or_die(&ep, buf, run->size, true);
  }
  ctl->pub_cpu_ns = bu_cpu_ns() - c0;
  bx_close(&ep);
  free(buf);
  return 0;
}

/* ---- fanout: the memcpy baseline ----------------------------------------- */

/* Copies `size` bytes from one pool to another, both at least twice the
 * last-level cache (so neither side is in cache), for the run's duration
 * or count; in a child, like the transports. */
static size_t memcpy_pool_bytes(size_t size) {
  size_t llc = bu_llc_bytes(), pool = 2 * (llc != 0 ? llc : ((size_t)32 << 20));
  if (pool < (size_t)64 << 20)
    pool = (size_t)64 << 20;
  if (pool < 4 * size)
    pool = 4 * size;
  return pool;
}

static int memcpy_child(size_t size, const struct opts *o) {
  size_t pool = memcpy_pool_bytes(size), stride = (size + 63) & ~(size_t)63, slots = pool / stride;
  unsigned char *src = malloc(pool), *dst = malloc(pool);
  uint64_t t0, c0, n, dur = (uint64_t)(o->duration * 1e9);
  if (src == NULL || dst == NULL)
    bp_die("malloc", -ENOMEM);
  memset(src, 0x5a, pool);
  memset(dst, 0xa5, pool);
  c0 = bu_cpu_ns();
  t0 = bu_now_ns();
  for (n = 0;; n++) {
    size_t k = (size_t)(n % slots);
    if ((o->count != 0 && n >= o->count) || (dur != 0 && (n & 15) == 0 && bu_now_ns() - t0 >= dur))
      break;
    memcpy(dst + k * stride, src + k * stride, size);
    __asm__ __volatile__("" : : "r"(dst) : "memory");
  }
  ctl->t_start = t0;
  ctl->t_stop = bu_now_ns();
  ctl->published = n;
  ctl->pub_cpu_ns = bu_cpu_ns() - c0;
  ctl->subs[0].received = n;
  free(src);
  free(dst);
  return 0;
}

/* ---- the processes of a run -------------------------------------------------- */

static int lat_a(const struct bx_ops *x, const struct bx_run *run, const struct opts *o);
static int lat_b(const struct bx_ops *x, const struct bx_run *run);

/* What a child process of a run does. On Linux it is forked with the run
 * at hand; on Windows it is this program again (bp_spawn_self), which
 * builds the same rows from the same arguments and the run from the job
 * (child_main). */
enum job_role { JOB_SUB, JOB_PUB, JOB_MEMCPY, JOB_A, JOB_B };
struct job {
  enum job_role role;
  unsigned row;    /* its row, an index in rows */
  unsigned idx;    /* subscriber number */
  int cpu;         /* --pin: the CPU to run on, else -1 */
  unsigned run_id; /* the run's id (topic names) */
};

static int main_argc;
static char **main_argv;

/* A run's parameters for row r; what prepare() adds is not in them. */
static void make_run(struct bx_run *run, const struct row *r, const struct opts *o, unsigned id) {
  memset(run, 0, sizeof(*run));
  run->latency = o->cmd == CMD_LATENCY;
  run->nsubs = run->latency ? 1 : r->subs;
  run->slots = o->slots;
  run->size = r->size;
  run->reliable = r->reliable;
  run->wait = r->wait;
  run->touch = !run->latency && o->touch;
  run->id = id;
  run->dir = bp_bus_dir();
}

static int job_run(const struct job *j, const struct bx_run *run, const struct opts *o) {
  const struct row *r = &rows[j->row];
  bu_pin(j->cpu);
  switch (j->role) {
  case JOB_SUB:
    return fan_subscriber(r->x, run, j->idx, o->touch);
  case JOB_PUB:
    return fan_publisher(r->x, run, o, r->rate);
  case JOB_MEMCPY:
    return memcpy_child(r->size, o);
  case JOB_A:
    return lat_a(r->x, run, o);
  case JOB_B:
    return lat_b(r->x, run);
  }
  return 1;
}

/* Starts the child process of job j; returns its pid. */
static pid_t job_start(const struct job *j, const struct bx_run *run, const struct opts *o) {
#ifndef _WIN32
  pid_t pid = bp_fork();
  if (pid == 0)
    child_exit(rows[j->row].x, job_run(j, run, o));
  return pid;
#else
  char a[5][24];
  const char *v[5] = {a[0], a[1], a[2], a[3], a[4]};
  (void)run;
  (void)o;
  snprintf(a[0], sizeof(a[0]), "%d", (int)j->role);
  snprintf(a[1], sizeof(a[1]), "%u", j->row);
  snprintf(a[2], sizeof(a[2]), "%u", j->idx);
  snprintf(a[3], sizeof(a[3]), "%d", j->cpu);
  snprintf(a[4], sizeof(a[4]), "%u", j->run_id);
  return bp_spawn_self(v, 5, main_argc, main_argv);
#endif
}

/* ---- fanout: one run ------------------------------------------------------- */

static void reset_ctl(void) {
  memset(ctl, 0, sizeof(*ctl));
}

static void check_status(int status, const char *who) {
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, PROG ": %s failed (%s)\n", who,
            status == -1 ? "timed out, killed" : "see above");
    bp_die("run", -EPROTO);
  }
}

static double median_of(double *v, unsigned n) {
  qsort(v, n, sizeof(*v), bu_cmp_double);
  return bu_pct_double(v, n, 0.5);
}

/* Percentiles of the samples v[0..n) into m[M_P50..M_MAX] (µs); max exact. */
static void set_pcts(double *m, uint32_t *v, size_t n, uint64_t max_ns) {
  qsort(v, n, sizeof(*v), bu_cmp_u32);
  m[M_P50] = bu_pct_u32(v, n, 0.50) / 1e3;
  m[M_P99] = bu_pct_u32(v, n, 0.99) / 1e3;
  m[M_P999] = bu_pct_u32(v, n, 0.999) / 1e3;
  m[M_MAX] = (double)max_ns / 1e3;
  m[M_SAMPLES] = (double)n;
}

/* Mean time on a CPU per turn, µs; NAN for a process that never ran. */
static double sched_turn_us(uint64_t run_ns, uint64_t turns) {
  if (run_ns == 0)
    return NAN;
  return (double)run_ns / (double)(turns > 0 ? turns : 1) / 1e3;
}

/* The scheduling metrics of a fan-out run from what its publisher read
 * (NAN when it could not: counted, and the report says why). */
static void fan_sched(const struct row *r, double *m, uint64_t recv) {
  double win = (double)ctl->sched_win_ns, subs_cpu = 0, subs_wait = 0;
  uint64_t invol = ctl->pub_sched.nivcsw, run = 0, slices = 0;
  int64_t migr = ctl->pub_sched.migrations;
  unsigned i;
  if (ctl->sched_error < 0 || win <= 0) {
    sched_failed++;
    sched_err = ctl->sched_error < 0 ? ctl->sched_error : -EPROTO;
    return;
  }
  for (i = 0; i < r->subs; i++) {
    const struct bu_sched *s = &ctl->subs[i].sched;
    subs_cpu += 100.0 * (double)s->run_ns / win;
    subs_wait += 100.0 * (double)s->wait_ns / win;
    invol += s->nivcsw;
    run += s->run_ns;
    slices += s->slices;
    migr = migr < 0 || s->migrations < 0 ? -1 : migr + s->migrations;
  }
  m[M_S_WIN] = win / 1e6;
  m[M_S_PUB_CPU] = 100.0 * (double)ctl->pub_sched.run_ns / win;
  m[M_S_PUB_WAIT] = 100.0 * (double)ctl->pub_sched.wait_ns / win;
  m[M_S_SUB_CPU] = subs_cpu / r->subs;
  m[M_S_SUB_WAIT] = subs_wait / r->subs;
  m[M_S_CPU_SUM] = m[M_S_PUB_CPU] + subs_cpu;
  m[M_S_WAIT_SUM] = m[M_S_PUB_WAIT] + subs_wait;
  if (ctl->daemon_pid > 0) {
    m[M_S_DMN_CPU] = 100.0 * (double)ctl->dmn_sched.run_ns / win;
    m[M_S_CPU_SUM] += m[M_S_DMN_CPU];
    m[M_S_WAIT_SUM] += 100.0 * (double)ctl->dmn_sched.wait_ns / win;
  }
  m[M_S_INVOL] = recv > 0 ? 1000.0 * (double)invol / (double)recv : NAN;
  m[M_S_MIGR] = migr >= 0 ? (double)migr / (win / 1e9) : NAN;
  /* A process that ran the whole window without a switch had one turn. */
  m[M_S_PUB_SLICE] = sched_turn_us(ctl->pub_sched.run_ns, ctl->pub_sched.slices);
  m[M_S_SUB_SLICE] = sched_turn_us(run, slices);
}

static void fan_run(struct row *r, const struct opts *o) {
  struct bx_run run;
  double *m = r->rep[r->nrep];
  pid_t pids[BX_MAX_SUBS], pub;
  unsigned i;
  uint64_t recv = 0, lost = 0, end = 0, cpu, wake, max_ns = 0;
  size_t n = 0;
  int rv;

  memset(m, 0, sizeof(double) * M_COUNT);
  for (i = M_S_WIN; i <= M_S_SUB_SLICE; i++)
    m[i] = NAN;
  reset_ctl();
  if (r->x == NULL) { /* memcpy */
    struct job j = {JOB_MEMCPY, (unsigned)(r - rows), 0, o->pin ? 0 : -1, 0};
    pub = job_start(&j, NULL, o);
    check_status(bp_wait_for(pub, (unsigned)(o->duration * 1000) + 60000), "memcpy");
    {
      double s = (double)(ctl->t_stop - ctl->t_start) / 1e9;
      m[M_PUB] = m[M_SUB] = m[M_TOT] = (double)ctl->published / s;
      m[M_SUB_GB] = m[M_TOT_GB] = m[M_SUB] * (double)r->size / 1e9;
      m[M_CPU] = (double)ctl->pub_cpu_ns / (double)ctl->published;
      m[M_PUBLISHED] = m[M_RECEIVED] = (double)ctl->published;
    }
    r->nrep++;
    return;
  }
  make_run(&run, r, o, ++run_id);
  if (r->x->prepare != NULL && (rv = r->x->prepare(&run)) < 0)
    bp_die("prepare", rv);
  ctl->daemon_pid = r->x == &bx_shmbus ? bp_daemon_pid() : 0;
  for (i = 0; i < r->subs; i++) {
    struct job j = {JOB_SUB, (unsigned)(r - rows), i,
                    o->pin ? (int)((1 + i) % (unsigned)n_cpus) : -1, run.id};
    pids[i] = job_start(&j, &run, o);
  }
  {
    struct job j = {JOB_PUB, (unsigned)(r - rows), 0, o->pin ? 0 : -1, run.id};
    pub = job_start(&j, &run, o);
  }
  check_status(bp_wait_for(pub, (unsigned)(o->duration * 1000) + 120000), "publisher");
  for (i = 0; i < r->subs; i++)
    check_status(bp_wait_for(pids[i], 15000), "subscriber");
  if (r->x->unprepare != NULL)
    r->x->unprepare(&run);

  cpu = ctl->pub_cpu_ns;
  wake = ctl->pub_nvcsw;
  for (i = 0; i < r->subs; i++) {
    struct sub_slot *s = &ctl->subs[i];
    uint64_t l = s->lost_own >= 0 ? (uint64_t)s->lost_own : s->gaps;
    size_t cap = FAN_SAMPLES / r->subs;
    recv += s->received;
    lost += l;
    cpu += s->cpu_ns;
    wake += s->nvcsw;
    if (s->end_ns > end)
      end = s->end_ns;
    if (s->max_ns > max_ns)
      max_ns = s->max_ns;
    if (s->received + l != ctl->published || s->total != ctl->published || s->disorder != 0 ||
        (s->lost_own >= 0 && (uint64_t)s->lost_own != s->gaps)) {
      r->ok = false;
      fprintf(stderr,
              PROG ": %s subscriber %u: received %" PRIu64 " + lost %" PRIu64
                   " != published %" PRIu64 " (END said %" PRIu64 ", gaps %" PRIu64
                   ", out of order %" PRIu64 ")\n",
              r->xname, i, s->received, l, ctl->published, s->total, s->gaps, s->disorder);
    }
    /* Gather every subscriber's samples at the front. */
    memmove(samples + n, samples + (size_t)i * cap, s->nsamples * sizeof(*samples));
    n += s->nsamples;
  }
  {
    double secs = (double)((end > ctl->t_stop ? end : ctl->t_stop) - ctl->t_start) / 1e9;
    double pub_secs = (double)(ctl->t_stop - ctl->t_start) / 1e9;
    m[M_PUB] = pub_secs > 0 ? (double)ctl->published / pub_secs : 0;
    m[M_TOT] = secs > 0 ? (double)recv / secs : 0;
    m[M_SUB] = m[M_TOT] / r->subs;
    m[M_TOT_GB] = m[M_TOT] * (double)r->size / 1e9;
    m[M_SUB_GB] = m[M_SUB] * (double)r->size / 1e9;
    m[M_LOSS] = ctl->published > 0 ? 100.0 * (double)lost / ((double)ctl->published * r->subs) : 0;
    m[M_CPU] = recv > 0 ? (double)cpu / (double)recv : 0;
    m[M_WAKE] = !bu_nvcsw_available() ? NAN : recv > 0 ? (double)wake / (double)recv : 0;
    m[M_PUBLISHED] = (double)ctl->published;
    m[M_RECEIVED] = (double)recv;
    m[M_LOST] = (double)lost;
    set_pcts(m, samples, n, max_ns);
  }
  fan_sched(r, m, recv);
  r->nrep++;
}

/* ---- latency ----------------------------------------------------------------- */

struct pp_side {
  struct bx_ep *ep;
  unsigned char *buf;
  volatile bool got, ended;
  uint64_t want_seq, echo_ns;
  int b_cpu;
  bool hello_ack;
  int error;
};

/* B: answer each ping with a message of the same size carrying the
 * one-way time it measured. */
static void b_on_msg(void *arg, const void *data, size_t len, uint64_t ts_ns) {
  struct pp_side *b = arg;
  uint64_t t = bu_now_ns();
  struct bx_hdr h;
  int rv;
  if (len < sizeof(h)) {
    b->error = -EPROTO;
    b->ended = true;
    return;
  }
  memcpy(&h, data, sizeof(h));
  if (h.kind == BX_END) {
    b->ended = true;
    return;
  }
  if (h.kind == BX_HELLO)
    h.kind = BX_HELLO_ACK;
  else
    h.echo_ns = t > (ts_ns != 0 ? ts_ns : h.ts_ns) ? t - (ts_ns != 0 ? ts_ns : h.ts_ns) : 0;
  h.cpu = bu_current_cpu();
  memcpy(b->buf, &h, sizeof(h));
  if ((rv = b->ep->ops->send(b->ep, b->buf, b->ep->run->size, true)) < 0) {
    b->error = rv;
    b->ended = true;
  }
}

static void a_on_msg(void *arg, const void *data, size_t len, uint64_t ts_ns) {
  struct pp_side *a = arg;
  struct bx_hdr h;
  (void)ts_ns;
  if (len < sizeof(h))
    return;
  memcpy(&h, data, sizeof(h));
  if (h.kind == BX_HELLO_ACK) {
    a->hello_ack = true;
    return;
  }
  if (h.kind == BX_DATA && h.seq == a->want_seq) {
    a->echo_ns = h.echo_ns;
    a->b_cpu = h.cpu;
    a->got = true;
  }
}

static int lat_b(const struct bx_ops *x, const struct bx_run *run) {
  struct pp_side b;
  struct bx_ep ep;
  uint64_t c0, w0;
  int rv;
  memset(&b, 0, sizeof(b));
  b.ep = &ep;
  if ((b.buf = malloc(run->size)) == NULL)
    bp_die("malloc", -ENOMEM);
  fill_payload(b.buf, run->size);
  if ((rv = bx_open(&ep, x, run, BX_B, 0, b_on_msg, &b)) < 0)
    bp_die("B open", rv);
  c0 = bu_cpu_ns();
  w0 = bu_nvcsw();
  atomic_store_explicit(&ctl->b_ready, 1, memory_order_release);
  rv = bx_recv_until(&ep, &b.ended, IDLE_TIMEOUT_MS);
  ctl->b_cpu_ns = bu_cpu_ns() - c0;
  ctl->b_nvcsw = bu_nvcsw() - w0;
  if (rv < 0 || b.error < 0)
    bp_die("B receive", rv < 0 ? rv : b.error);
  bx_close(&ep);
  free(b.buf);
  return 0;
}

static int lat_a(const struct bx_ops *x, const struct bx_run *run, const struct opts *o) {
  struct pp_side a;
  struct bx_ep ep;
  struct bx_hdr h;
  uint64_t c0, w0, t0, start, i, kept = 0, dur = (uint64_t)(o->duration * 1e9);
  uint64_t max_kept = o->count != 0 ? o->count : LAT_MAX_RT;
  uint32_t *ow = samples, *rtt = samples + LAT_MAX_RT;
  int rv;

  memset(&a, 0, sizeof(a));
  a.ep = &ep;
  if ((a.buf = malloc(run->size)) == NULL)
    bp_die("malloc", -ENOMEM);
  fill_payload(a.buf, run->size);
  if ((rv = bx_open(&ep, x, run, BX_A, 0, a_on_msg, &a)) < 0)
    bp_die("A open", rv);
  wait_flag(&ctl->b_ready, 1, 0, "B open");
  if (x->flags & BX_F_HELLO) {
    uint64_t end = bu_now_ns() + (uint64_t)HELLO_TIMEOUT_MS * 1000000u;
    while (!a.hello_ack) {
      if (bu_now_ns() > end)
        bp_die("A: no answer to HELLO", -ETIMEDOUT);
      set_kind(a.buf, BX_HELLO, 0, 0);
      send_or_die(&ep, a.buf, run->size, true);
      bu_sleep_ms(1);
      if ((rv = ep.ops->poll(&ep, a_on_msg, &a)) < 0)
        bp_die("A poll", rv);
      if (ep.loop != NULL)
        (void)uv_run(ep.loop, UV_RUN_NOWAIT);
    }
  }
  memset(&h, 0, sizeof(h));
  h.kind = BX_DATA;
  c0 = bu_cpu_ns();
  w0 = bu_nvcsw();
  start = bu_now_ns();
  for (i = 0; kept < max_kept; i++) {
    uint64_t t1;
    if (dur != 0 && i >= LAT_WARMUP && bu_now_ns() - start >= dur)
      break;
    h.seq = i;
    a.want_seq = i;
    a.got = false;
    t0 = bu_now_ns();
    h.ts_ns = t0;
    memcpy(a.buf, &h, sizeof(h));
    send_or_die(&ep, a.buf, run->size, true);
    if ((rv = bx_recv_until(&ep, &a.got, IDLE_TIMEOUT_MS)) < 0)
      bp_die("A receive", rv);
    t1 = bu_now_ns();
    if (i >= LAT_WARMUP) {
      ow[kept] = a.echo_ns > UINT32_MAX ? UINT32_MAX : (uint32_t)a.echo_ns;
      rtt[kept] = t1 - t0 > UINT32_MAX ? UINT32_MAX : (uint32_t)(t1 - t0);
      kept++;
      ctl->same_cpu += bu_current_cpu() == a.b_cpu;
    }
  }
  ctl->pub_cpu_ns = bu_cpu_ns() - c0;
  ctl->pub_nvcsw = bu_nvcsw() - w0;
  ctl->rts = kept;
  ctl->published = i;
  set_kind(a.buf, BX_END, 0, i);
  send_or_die(&ep, a.buf, run->size, true);
  if (x->flags & BX_F_HELLO) { /* END may be dropped: repeat until B is gone */
    while (bp_parent_alive() && !atomic_load(&ctl->subs[0].done)) {
      bu_sleep_ms(1);
      send_or_die(&ep, a.buf, run->size, true);
    }
  }
  bx_close(&ep);
  free(a.buf);
  return 0;
}

static void lat_run(struct row *r, const struct opts *o) {
  struct bx_run run;
  double *m = r->rep[r->nrep];
  uint32_t *ow = samples, *rtt = samples + LAT_MAX_RT;
  uint64_t max_ns = 0, i;
  pid_t a, b;
  int rv, st;

  memset(m, 0, sizeof(double) * M_COUNT);
  reset_ctl();
  make_run(&run, r, o, ++run_id);
  if (r->x->prepare != NULL && (rv = r->x->prepare(&run)) < 0)
    bp_die("prepare", rv);
  {
    struct job jb = {JOB_B, (unsigned)(r - rows), 0, o->pin ? (int)(1 % n_cpus) : -1, run.id};
    struct job ja = {JOB_A, (unsigned)(r - rows), 0, o->pin ? 0 : -1, run.id};
    b = job_start(&jb, &run, o);
    a = job_start(&ja, &run, o);
  }
  /* A ends when it has its round trips; B when END arrives. */
  st = bp_wait_for(b, (unsigned)(o->duration * 1000) + 600000);
  atomic_store(&ctl->subs[0].done, 1);
  check_status(st, "B");
  check_status(bp_wait_for(a, 15000), "A");
  if (r->x->unprepare != NULL)
    r->x->unprepare(&run);
  for (i = 0; i < ctl->rts; i++)
    if (ow[i] > max_ns)
      max_ns = ow[i];
  set_pcts(m, ow, ctl->rts, max_ns);
  qsort(rtt, ctl->rts, sizeof(*rtt), bu_cmp_u32);
  m[M_HALF50] = bu_pct_u32(rtt, ctl->rts, 0.50) / 2e3;
  m[M_HALF99] = bu_pct_u32(rtt, ctl->rts, 0.99) / 2e3;
  m[M_CPU] = ctl->rts > 0 ? (double)(ctl->pub_cpu_ns + ctl->b_cpu_ns) / (double)ctl->published : 0;
  m[M_WAKE] = !bu_nvcsw_available() ? NAN
              : ctl->published > 0
                  ? (double)(ctl->pub_nvcsw + ctl->b_nvcsw) / (double)ctl->published
                  : 0;
  m[M_PUBLISHED] = m[M_RECEIVED] = (double)ctl->rts;
  m[M_SAME] = ctl->rts > 0 ? 100.0 * (double)ctl->same_cpu / (double)ctl->rts : 0;
  r->nrep++;
}

/* ---- the rows and their order -------------------------------------------- */

static struct row *add_row(const struct bx_ops *x, const char *name, enum bx_wait w, bool rel,
                           unsigned subs, size_t size, double rate) {
  struct row *r = &rows[nrows++];
  memset(r, 0, sizeof(*r));
  r->x = x;
  r->xname = name;
  r->wait = w;
  r->reliable = rel;
  r->subs = subs;
  r->size = size;
  r->rate = rate;
  r->ok = true;
  if (x != NULL && x->missing != NULL)
    r->note = x->missing();
  else if (x != NULL && (x->flags & BX_F_SPIN_ONLY) && w != BX_SPIN)
    r->note = "busy-polling only (--wait spin)";
  if (r->note == NULL && x != NULL && x->max_size != 0 && size > x->max_size)
    r->note = x->size_note;
  r->skipped = r->note != NULL;
  return r;
}

/* One group per configuration: shmbus first, then its peers. */
static void build_rows(const struct opts *o, unsigned *group_len) {
  unsigned w, md, ra, si, su, p, g = 0, npeers = 0;
  unsigned max;
  unsigned need = o->cmd == CMD_FANOUT ? BX_F_FANOUT : BX_F_LATENCY;
  while (bx_peers[npeers] != NULL)
    npeers++;
  /* shmbus, its peers and the memcpy baseline, per configuration. */
  max = o->nwaits * o->nmodes * o->nrates * o->nsizes * o->nsubs * (npeers + 2);
  if ((rows = calloc(max, sizeof(*rows))) == NULL)
    bp_die("calloc", -ENOMEM);
  for (w = 0; w < o->nwaits; w++)
    for (md = 0; md < o->nmodes; md++)
      for (ra = 0; ra < (o->cmd == CMD_FANOUT ? o->nrates : 1); ra++)
        for (si = 0; si < o->nsizes; si++)
          for (su = 0; su < (o->cmd == CMD_FANOUT ? o->nsubs : 1); su++) {
            unsigned first = nrows;
            unsigned subs = o->cmd == CMD_FANOUT ? o->subs[su] : 1;
            double rate = o->cmd == CMD_FANOUT ? o->rates[ra] : 0;
            if (o->bridge) { /* plain NATS first: the bridge is compared with it */
              add_row(&bx_nats, "nats", o->waits[w], o->modes[md], subs, o->sizes[si], rate);
              add_row(&bx_bridge, "bridge", o->waits[w], o->modes[md], subs, o->sizes[si], rate);
              group_len[g++] = nrows - first;
              continue;
            }
            add_row(&bx_shmbus, "shmbus", o->waits[w], o->modes[md], subs, o->sizes[si], rate);
            for (p = 0; o->peers && p < npeers; p++)
              if (bx_peers[p]->flags & need)
                add_row(bx_peers[p], bx_peers[p]->name, o->waits[w], o->modes[md], subs,
                        o->sizes[si], rate);
            if (o->peers && o->cmd == CMD_FANOUT && rate == 0)
              add_row(NULL, "memcpy (cold)", o->waits[w], o->modes[md], subs, o->sizes[si], 0);
            group_len[g++] = nrows - first;
          }
}

static void finish_rows(void) {
  unsigned i, k, j, nv;
  for (i = 0; i < nrows; i++) {
    struct row *r = &rows[i];
    double v[MAX_REPS];
    if (r->nrep == 0)
      continue;
    for (k = 0; k < M_COUNT; k++) {
      if (k >= M_PUBLISHED && k <= M_SAMPLES) {
        r->m[k] = 0;
        for (j = 0; j < r->nrep; j++)
          r->m[k] += r->rep[j][k];
        continue;
      }
      /* The median of what was measured (NAN: not measured). */
      for (nv = 0, j = 0; j < r->nrep; j++)
        if (!isnan(r->rep[j][k]))
          v[nv++] = r->rep[j][k];
      r->m[k] = nv > 0 ? median_of(v, nv) : NAN;
    }
  }
}

/* shmbus's ratio to each row of its group: delivered messages/s per
 * subscriber (fanout; GB/s against memcpy) or p50 one-way latency. */
static void set_ratios(const struct opts *o, const unsigned *group_len, unsigned ngroups) {
  unsigned g, i, first = 0;
  for (g = 0; g < ngroups; first += group_len[g++]) {
    const struct row *s = &rows[first];
    for (i = first; i < first + group_len[g]; i++) {
      struct row *r = &rows[i];
      double a, b;
      if (r->nrep == 0 || s->nrep == 0)
        continue;
      if (o->bridge) {
        r->m[M_P50_X] = s->m[M_P50] > 0 ? r->m[M_P50] / s->m[M_P50] : 0;
        r->m[M_TPUT_PCT] = s->m[M_SUB] > 0 ? 100 * r->m[M_SUB] / s->m[M_SUB] : 0;
        continue;
      }
      if (o->cmd == CMD_FANOUT)
        a = s->m[M_SUB], b = r->m[M_SUB];
      else
        a = s->m[M_P50], b = r->m[M_P50];
      r->m[M_RATIO] = b > 0 ? a / b : 0;
    }
  }
}

/* ---- output ---------------------------------------------------------------- */

struct col {
  const char *key, *title;
  int metric; /* -1: a text column */
  int prec;
  unsigned in; /* fan_cols: the subcommands that show it (C_FANOUT, C_BRIDGE), C_SCHED */
};

/* The fan-out's columns. The bridge subcommand shows them too, compared
 * with plain NATS instead of shmbus and without the totals over
 * subscribers. */
#define C_FANOUT 1u
#define C_BRIDGE 2u
#define C_BOTH (C_FANOUT | C_BRIDGE)
/* The scheduling columns: the fan-out's second markdown table ("who ran
 * where"), and at the end of its CSV and JSON rows, where /proc has them. */
#define C_SCHED 4u
static const struct col fan_cols[] = {
    {"transport", "transport", -1, 0, C_BOTH},
    {"wait", "wait", -1, 0, C_BOTH},
    {"mode", "mode", -1, 0, C_BOTH},
    {"subs", "subs", -1, 0, C_BOTH},
    {"size", "size B", -1, 0, C_BOTH},
    {"rate", "rate /s", -1, 0, C_BOTH},
    {"published_per_s", "published /s", M_PUB, 0, C_BOTH},
    {"delivered_per_s_per_sub", "delivered /s per sub", M_SUB, 0, C_BOTH},
    {"gbps_per_sub", "GB/s per sub", M_SUB_GB, 3, C_BOTH},
    {"delivered_per_s_total", "delivered /s total", M_TOT, 0, C_FANOUT},
    {"gbps_total", "GB/s total", M_TOT_GB, 3, C_FANOUT},
    {"loss_pct", "loss %", M_LOSS, 2, C_BOTH},
    {"p50_us", "p50 µs", M_P50, 2, C_BOTH},
    {"p99_us", "p99 µs", M_P99, 2, C_BOTH},
    {"p999_us", "p99.9 µs", M_P999, 2, C_BOTH},
    {"max_us", "max µs", M_MAX, 1, C_BOTH},
    {"cpu_ns_per_msg", "CPU ns/msg", M_CPU, 0, C_BOTH},
    {"wakeups_per_msg", "wake-ups/msg", M_WAKE, 3, C_BOTH},
    {"published", "published", M_PUBLISHED, 0, C_BOTH},
    {"received", "received", M_RECEIVED, 0, C_BOTH},
    {"lost", "lost", M_LOST, 0, C_BOTH},
    {"counts_ok", "recv+lost=pub", -1, 0, C_BOTH},
    {"shmbus_ratio", "shmbus ÷ this", M_RATIO, 2, C_FANOUT},
    {"p50_vs_nats", "p50 ÷ NATS's", M_P50_X, 2, C_BRIDGE},
    {"throughput_pct_of_nats", "delivered /s, % of NATS's", M_TPUT_PCT, 0, C_BRIDGE},
    {"sched_window_ms", "window ms", M_S_WIN, 0, C_SCHED},
    {"sched_pub_cpu_pct", "pub on-CPU %", M_S_PUB_CPU, 1, C_SCHED},
    {"sched_pub_wait_pct", "pub run-queue wait %", M_S_PUB_WAIT, 1, C_SCHED},
    {"sched_subs_cpu_pct", "subs on-CPU % (mean)", M_S_SUB_CPU, 1, C_SCHED},
    {"sched_subs_wait_pct", "subs run-queue wait % (mean)", M_S_SUB_WAIT, 1, C_SCHED},
    {"sched_daemon_cpu_pct", "shmbusd on-CPU %", M_S_DMN_CPU, 1, C_SCHED},
    {"sched_cpu_sum_pct", "on-CPU sum %", M_S_CPU_SUM, 1, C_SCHED},
    {"sched_wait_sum_pct", "run-queue wait sum %", M_S_WAIT_SUM, 1, C_SCHED},
    {"sched_invol_per_1k_msgs", "involuntary switches /1k msgs", M_S_INVOL, 3, C_SCHED},
    {"sched_migrations_per_s", "migrations /s", M_S_MIGR, 0, C_SCHED},
    {"sched_pub_slice_us", "pub µs per turn", M_S_PUB_SLICE, 1, C_SCHED},
    {"sched_subs_slice_us", "subs µs per turn", M_S_SUB_SLICE, 1, C_SCHED},
};

static const struct col lat_cols[] = {
    {"transport", "transport", -1, 0},
    {"wait", "wait", -1, 0},
    {"mode", "mode", -1, 0},
    {"size", "size B", -1, 0},
    {"round_trips", "round trips", M_RECEIVED, 0},
    {"p50_us", "one-way p50 µs", M_P50, 2},
    {"p99_us", "p99 µs", M_P99, 2},
    {"p999_us", "p99.9 µs", M_P999, 2},
    {"max_us", "max µs", M_MAX, 1},
    {"rtt_half_p50_us", "RTT/2 p50 µs", M_HALF50, 2},
    {"rtt_half_p99_us", "RTT/2 p99 µs", M_HALF99, 2},
    {"same_cpu_pct", "same CPU %", M_SAME, 0},
    {"cpu_ns_per_rt", "CPU ns/round trip", M_CPU, 0},
    {"wakeups_per_rt", "wake-ups/round trip", M_WAKE, 2},
    {"shmbus_ratio", "shmbus ÷ this", M_RATIO, 2},
};

/* The columns of the subcommand's table: lat_cols, or those of fan_cols
 * that the fan-out or the bridge shows; with `sched`, the fan-out's
 * scheduling columns after them (when /proc has them). */
static const struct col *cols_of(const struct opts *o, bool sched, size_t *n) {
  static struct col picked[sizeof(fan_cols) / sizeof(fan_cols[0])];
  unsigned in = o->bridge ? C_BRIDGE : C_FANOUT;
  size_t i;
  if (o->cmd != CMD_FANOUT) {
    *n = sizeof(lat_cols) / sizeof(lat_cols[0]);
    return lat_cols;
  }
  if (sched && sched_avail && !o->bridge)
    in |= C_SCHED;
  for (*n = 0, i = 0; i < sizeof(fan_cols) / sizeof(fan_cols[0]); i++)
    if ((fan_cols[i].in & in) != 0)
      picked[(*n)++] = fan_cols[i];
  return picked;
}

/* The text of a non-metric column. */
static void text_cell(const struct row *r, const char *key, char *out, size_t cap) {
  if (strcmp(key, "transport") == 0)
    snprintf(out, cap, "%s", r->xname);
  else if (strcmp(key, "wait") == 0)
    snprintf(out, cap, "%s", r->x == NULL ? "-" : wait_name(r->wait));
  else if (strcmp(key, "mode") == 0)
    snprintf(out, cap, "%s", r->x == NULL ? "-" : (r->reliable ? "reliable" : "lossy"));
  else if (strcmp(key, "subs") == 0)
    snprintf(out, cap, "%u", r->x == NULL ? 1 : r->subs);
  else if (strcmp(key, "size") == 0)
    snprintf(out, cap, "%zu", r->size);
  else if (strcmp(key, "rate") == 0)
    snprintf(out, cap, "%.0f", r->rate);
  else if (strcmp(key, "counts_ok") == 0)
    snprintf(out, cap, "%s", r->ok ? "yes" : "NO");
  else
    out[0] = '\0';
}

/* The fan-out's second table: for each measured row, which share of the
 * sending window each process spent on a CPU and waiting for one. */
static void print_sched_table(void) {
  static const char *const ids[] = {"transport", "wait", "mode", "subs", "size", "rate"};
  size_t c, k;
  unsigned i;
  printf("\nScheduling: who ran where (from /proc, over the publisher's sending window; "
         "%ld CPUs = %ld %%):\n\n|",
         n_cpus, 100 * n_cpus);
  for (c = 0; c < sizeof(fan_cols) / sizeof(fan_cols[0]); c++) {
    bool id = false;
    for (k = 0; k < sizeof(ids) / sizeof(ids[0]); k++)
      id |= strcmp(fan_cols[c].key, ids[k]) == 0;
    if (fan_cols[c].metric == M_S_CPU_SUM)
      printf(" %s (of %ld) |", fan_cols[c].title, 100 * n_cpus);
    else if (id || (fan_cols[c].in & C_SCHED) != 0)
      printf(" %s |", fan_cols[c].title);
  }
  printf("\n|");
  for (c = 0; c < 6 + (size_t)(M_S_SUB_SLICE - M_S_WIN + 1); c++)
    printf("---|");
  printf("\n");
  for (i = 0; i < nrows; i++) {
    const struct row *r = &rows[i];
    if (r->skipped || r->x == NULL || r->nrep == 0)
      continue;
    printf("|");
    for (c = 0; c < sizeof(fan_cols) / sizeof(fan_cols[0]); c++) {
      char t[64];
      bool id = false;
      for (k = 0; k < sizeof(ids) / sizeof(ids[0]); k++)
        id |= strcmp(fan_cols[c].key, ids[k]) == 0;
      if (id) {
        text_cell(r, fan_cols[c].key, t, sizeof(t));
        printf(" %s |", t);
      } else if ((fan_cols[c].in & C_SCHED) != 0) {
        double v = r->m[fan_cols[c].metric];
        if (isnan(v))
          printf(" - |");
        else
          printf(" %.*f |", fan_cols[c].prec, v);
      }
    }
    printf("\n");
  }
}

struct machine {
  char cpu[384], kernel[256], load0[64], load1[64];
  long cpus;
  size_t llc;
  double secs;
};

/* The row of transport `name` in the group of shmbus row `s` (same
 * configuration), or NULL. */
static const struct row *peer_of(const struct row *s, const char *name) {
  const struct row *r;
  for (r = s + 1; r < rows + nrows && r->x != &bx_shmbus; r++)
    if (strcmp(r->xname, name) == 0 && !r->skipped && r->nrep > 0)
      return r;
  return NULL;
}

static const char *verdict(bool ok) {
  return ok ? "met" : "NOT met";
}

/* The targets, for whichever of their configurations this run
 * measured. */
static void print_targets(const struct opts *o) {
  const struct row *s;
  bool any = false;
  for (s = rows; s < rows + nrows; s++) {
    const struct row *p;
    if (s->x != &bx_shmbus || s->nrep == 0)
      continue;
    if (o->cmd == CMD_FANOUT && s->rate == 0) {
      if (s->size == 64 && !s->reliable && s->wait == BX_UV && s->subs <= 4 &&
          (p = peer_of(s, "zeromq")) != NULL) {
        double need = s->subs == 1 ? 10 : 5;
        printf("- 64 B lossy uv, %u sub: shmbus %.0f/s per sub (loss %.1f %%) vs ZeroMQ %.0f/s "
               "(loss %.1f %%) = %.1fx, target >= %.0fx with lower loss -> %s\n",
               s->subs, s->m[M_SUB], s->m[M_LOSS], p->m[M_SUB], p->m[M_LOSS], p->m[M_RATIO], need,
               verdict(p->m[M_RATIO] >= need && s->m[M_LOSS] < p->m[M_LOSS]));
        any = true;
      }
      if (s->size == 64 && s->reliable && s->subs == 1) {
        printf("- 64 B reliable, 1 sub (%s): %.2f M/s per sub, loss %.1f %%, target >= 3 M/s "
               "-> %s\n",
               wait_name(s->wait), s->m[M_SUB] / 1e6, s->m[M_LOSS],
               verdict(s->m[M_SUB] >= 3e6 && s->m[M_LOST] == 0));
        any = true;
      }
      if (s->size == 1048576 && (p = peer_of(s, "memcpy (cold)")) != NULL) {
        printf("- 1 MiB, %s %s, %u sub: %.2f GB/s per sub vs cold memcpy %.2f GB/s = %.0f %%, "
               "target >= 70 %% -> %s\n",
               s->reliable ? "reliable" : "lossy", wait_name(s->wait), s->subs, s->m[M_SUB_GB],
               p->m[M_SUB_GB], 100 * s->m[M_SUB_GB] / p->m[M_SUB_GB],
               verdict(s->m[M_SUB_GB] >= 0.7 * p->m[M_SUB_GB]));
        any = true;
      }
    }
    if (o->cmd == CMD_LATENCY && s->size == 64) {
      const char *peer =
          s->wait == BX_SPIN ? bx_line.name : (s->wait == BX_UV ? bx_efd.name : NULL);
      double lim = s->wait == BX_SPIN ? 2.0 : 1.15;
      if (peer != NULL && (p = peer_of(s, peer)) != NULL) {
        printf("- 64 B one-way p50, %s: shmbus %.3f µs vs %s %.3f µs = %.2fx (RTT/2: %.2fx), "
               "target <= %.2fx -> %s\n",
               wait_name(s->wait), s->m[M_P50], peer, p->m[M_P50], p->m[M_RATIO],
               p->m[M_HALF50] > 0 ? s->m[M_HALF50] / p->m[M_HALF50] : 0, lim,
               verdict(p->m[M_RATIO] <= lim));
        any = true;
      }
    }
  }
  if (!any)
    printf("- (none of the targets' configurations in this run)\n");
}

/* The bridge's targets, for the 256 B rows this run measured. */
static void print_bridge_targets(void) {
  bool any = false;
  unsigned i;
  for (i = 0; i + 1 < nrows; i++) {
    const struct row *n = &rows[i], *b = &rows[i + 1];
    if (n->x != &bx_nats || b->x != &bx_bridge || n->size != 256 || n->nrep == 0 || b->nrep == 0)
      continue;
    printf("- 256 B %s %s, %u sub: p50 %.1f µs vs NATS %.1f µs = %.2fx (target <= 1.3x) -> %s; "
           "%.0f/s vs %.0f/s = %.0f %% (target >= 70 %%) -> %s\n",
           b->reliable ? "reliable" : "lossy", wait_name(b->wait), b->subs, b->m[M_P50],
           n->m[M_P50], b->m[M_P50_X], verdict(b->m[M_P50_X] <= 1.3), b->m[M_SUB], n->m[M_SUB],
           b->m[M_TPUT_PCT], verdict(b->m[M_TPUT_PCT] >= 70));
    any = true;
  }
  if (!any)
    printf("- (no 256 B pair of plain NATS and bridge rows in this run)\n");
}

static void print_markdown(const struct opts *o, const struct machine *mc) {
#ifdef _WIN32
  static const char no_proc_why[] = "Windows";
#else
  static const char no_proc_why[] = "a kernel without CONFIG_SCHED_INFO?";
#endif
  size_t nc, c;
  char pacing[96] = "";
  const struct col *cols = cols_of(o, false, &nc);
  unsigned i;
  bool any_skipped = false, all_ok = true;

  printf("# shmbus-bench %s\n\n", cmd_name(o));
  printf("machine: %s, %ld online CPUs, last-level cache %zu KiB; kernel %s; library build "
         "type %s; pinning %s; load average before %s, after %s; run took %.1f s.\n\n",
         mc->cpu, mc->cpus, mc->llc >> 10, mc->kernel,
         SHMBUS_BENCH_BUILD_TYPE[0] != '\0' ? SHMBUS_BENCH_BUILD_TYPE : "none",
         o->pin ? "on" : "off", mc->load0, mc->load1, mc->secs);
  for (i = 0; i < o->nrates; i++)
    if (o->rates[i] > 0 && o->burst_us != 0)
      snprintf(pacing, sizeof(pacing),
               "; --rate paced in bursts (asleep at least %u µs when ahead)", o->burst_us);
    else if (o->rates[i] > 0)
      snprintf(pacing, sizeof(pacing), "; --rate paced message by message");
  if (o->cmd == CMD_FANOUT)
    printf("Per run: %s %g%s; %u repetition(s), medians shown (counts summed); subscribers "
           "read %s%s.\n\n",
           o->duration > 0 ? "duration" : "count", o->duration > 0 ? o->duration : (double)o->count,
           o->duration > 0 ? " s" : " messages", o->reps,
           o->touch ? "every byte (--touch)" : "the header of each message only", pacing);
  else
    printf("Per run: %" PRIu64 " round trips kept%s after %u warm-up; %u repetition(s), "
           "medians shown.\n\n",
           o->count, o->duration > 0 ? " (or the duration)" : "", LAT_WARMUP, o->reps);
  printf("|");
  for (c = 0; c < nc; c++)
    printf(" %s |", cols[c].title);
  printf("\n|");
  for (c = 0; c < nc; c++)
    printf("---|");
  printf("\n");
  for (i = 0; i < nrows; i++) {
    const struct row *r = &rows[i];
    if (r->skipped) {
      any_skipped = true;
      continue;
    }
    all_ok &= r->ok;
    printf("|");
    for (c = 0; c < nc; c++) {
      char t[64];
      if (cols[c].metric < 0) {
        text_cell(r, cols[c].key, t, sizeof(t));
        printf(" %s |", t);
      } else if (r->x == NULL && (cols[c].metric >= M_LOSS && cols[c].metric <= M_MAX)) {
        printf(" - |");
      } else if (cols[c].metric == M_RATIO && r->x == &bx_shmbus) {
        printf(" |");
      } else if ((cols[c].metric == M_P50_X || cols[c].metric == M_TPUT_PCT) &&
                 r->x != &bx_bridge) {
        printf(" |");
      } else if (isnan(r->m[cols[c].metric])) {
        printf(" n/a |"); /* not available here (the notes say why) */
      } else {
        printf(" %.*f |", cols[c].prec, r->m[cols[c].metric]);
      }
    }
    printf("\n");
  }
  if (o->bridge) {
    printf("\nTargets (issue 16: the bridge adds at most 1.3x to plain NATS's one-way p50 and "
           "keeps at least 70 %% of its throughput, 256 B, lossy and reliable):\n\n");
    print_bridge_targets();
  } else {
    printf("\nTargets (shmbus ÷ peer as in the last column):\n\n");
    print_targets(o);
    if (o->cmd == CMD_FANOUT && sched_avail)
      print_sched_table();
  }
  printf("\nNotes:\n\n");
  if (any_skipped) {
    for (i = 0; i < nrows; i++)
      if (rows[i].skipped && (i == 0 || !rows[i - 1].skipped || rows[i - 1].x != rows[i].x ||
                              rows[i - 1].note != rows[i].note)) {
        unsigned j;
        bool dup = false;
        for (j = 0; j < i; j++)
          dup |= rows[j].skipped && rows[j].x == rows[i].x && rows[j].note == rows[i].note;
        if (!dup)
          printf("- %s skipped: %s.\n", rows[i].xname, rows[i].note);
      }
  }
  if (o->cmd == CMD_FANOUT) {
    printf("- Counts: for every subscriber of every run, received + lost = published (lost: "
           "shmbus's own count, checked against the sequence gaps; for the peers, the gaps): "
           "%s.\n",
           all_ok ? "all add up" : "SOME DO NOT (see stderr)");
    printf(
        "- Delivered /s: messages a subscriber received divided by the time from the first "
        "send to the last subscriber's END; per sub is the mean over subscribers. Latency: "
        "the receiver's CLOCK_MONOTONIC minus the send time (shmbus: its own ts_ns stamp, "
        "read inside shmbus_pub_publish before the copy; peers: written into the message "
        "just before the send call), over a uniform sample of at most %u per run (reservoir; exact "
        "sort), max exact. CPU ns/msg: user+system time of the publisher and all subscribers "
        "(getrusage) over the run, per delivered message. Wake-ups/msg: voluntary context "
        "switches (getrusage) of the publisher while it published (less the sleeps of --rate's "
        "pacing) and of every subscriber "
        "while it received, per delivered message: each is a process going to sleep and being "
        "woken (for shmbus, about the publisher's eventfd signals, shmbus_pub_stats' "
        "wakeups_sent, per delivered message); 0 while nobody sleeps.\n",
        FAN_SAMPLES);
    if (!o->bridge && sched_avail)
      printf(
          "- Scheduling: the publisher reads, just before its first send and just after its "
          "last, every thread's /proc/PID/task/TID/schedstat (time on a CPU, time runnable but "
          "waiting on a run queue, turns on a CPU), status (voluntary and involuntary context "
          "switches) and sched (se.nr_migrations) of itself, each subscriber and (shmbus rows) "
          "shmbusd; the differences are over that window (window ms: from before the first "
          "reading to after the last). On-CPU %% and run-queue wait %%: of the window, per "
          "process (a process with several busy threads can exceed 100 %%); subs: the mean over "
          "subscribers. On-CPU sum: publisher + subscribers + shmbusd against the %ld %% that "
          "%ld CPUs give; run-queue wait sum: the same processes' waits, so sum + wait sum is "
          "the CPU they wanted. Involuntary switches (preemptions) of publisher and subscribers "
          "per 1,000 delivered messages; migrations /s: their moves to another CPU; µs per turn: "
          "time on a CPU per turn (schedstat's third field), the publisher's and the "
          "subscribers' together. The kernel adds a running or waiting stint to these counters "
          "when it ends, so each edge may miss a few ms (under 1 %% of a 1 s window). Brokers of "
          "the peers (nats-server, RouDi) are not counted; '-': not measured.\n",
          100 * n_cpus, n_cpus);
    if (!o->bridge && !sched_avail)
      printf("- Scheduling: not measured (no readable /proc/self/schedstat: %s), so there is no "
             "table of who ran where.\n",
             no_proc_why);
    if (!o->bridge && sched_avail && sched_failed > 0)
      printf("- Scheduling: the counters could not be read in %u run(s) (%s): those runs are "
             "left out of the medians.\n",
             sched_failed, shmbus_strerror(sched_err));
    if (o->bridge)
      printf("- bridge: the publisher on bus A (this run's shmbusd), shmbus-bridge --export on "
             "A, a nats-server of its own (one node, JetStream), shmbus-bridge --import on bus B "
             "(a second shmbusd), the subscribers on B; started afresh for every run, readiness "
             "by HELLO probes. nats: plain libnats publishers and subscribers on one nats-server "
             "(core NATS for lossy; for reliable a file-backed JetStream stream, asynchronous "
             "publish with %d in flight, a push consumer per subscriber acknowledging every "
             "message). Latency: the publisher's stamp in the message against the subscriber's "
             "clock (one host). The last columns: the bridge's p50 over NATS's, and its "
             "delivered /s per subscriber as a share of NATS's.\n",
             BXN_WINDOW);
    if (o->peers)
      printf("- memcpy (cold): one process copying messages of the size between two pools of "
             "%zu MiB (each more than the last-level cache), one copy per delivered message: "
             "the physical floor for a subscriber that receives a copy. Its ratio column is "
             "shmbus's delivered /s per subscriber over its copies /s.\n",
             memcpy_pool_bytes(o->sizes[0]) >> 20);
  } else {
    printf("- One-way: B's CLOCK_MONOTONIC when its receive returned minus the send time "
           "(shmbus: its ts_ns stamp; peers: written into the ping); RTT/2: half of A's round trip "
           "(send to the answer's arrival). CPU ns per "
           "round trip: A's and B's user+system time. Wake-ups per round trip: A's and B's "
           "voluntary context switches (getrusage), i.e. times one of them slept and was woken; "
           "2 when both sleep for every message, 0 when both busy-poll.\n");
    printf("- Same CPU %%: round trips during which A and B ran on one CPU (sched_getcpu on "
           "both sides). Unpinned, the scheduler often puts a woken process on its waker's CPU "
           "(sockets ask for that), and a wake-up is then a context switch of a few µs rather "
           "than a cross-CPU wake-up: compare transports at the same share, or use --pin.\n");
  }
  if (n_cpus < 3)
    printf("- This machine has %ld CPUs: the publisher and subscribers (or A and B and the "
           "daemon) share them, so with more busy processes than CPUs the numbers measure the "
           "scheduler as much as the transport, and busy-polling subscribers take CPU from the "
           "publisher.\n",
           n_cpus);
  printf("- Percentiles are exact over stored samples (sorted), no histogram library: Debian "
         "has no HdrHistogram for C.\n");
#ifdef _WIN32
  printf("- Windows: wake-ups are not counted (Windows keeps no count of a process's voluntary "
         "context switches): those columns say n/a, not available on Windows (empty in CSV, null "
         "in JSON). CPU time: GetProcessTimes. Numbers measured under Wine say nothing about "
         "Windows.\n");
#endif
}

static void print_csv(const struct opts *o, const struct machine *mc) {
  size_t nc, c;
  const struct col *cols = cols_of(o, true, &nc);
  unsigned i;
  printf("# shmbus-bench %s; cpu: %s; cpus: %ld; kernel: %s; burst_us: %u\n", cmd_name(o), mc->cpu,
         mc->cpus, mc->kernel, o->burst_us);
  for (c = 0; c < nc; c++)
    printf("%s%s", c ? "," : "", cols[c].key);
  printf("\n");
  for (i = 0; i < nrows; i++) {
    const struct row *r = &rows[i];
    if (r->skipped)
      continue;
    for (c = 0; c < nc; c++) {
      char t[64];
      if (cols[c].metric < 0)
        text_cell(r, cols[c].key, t, sizeof(t));
      else if (isnan(r->m[cols[c].metric])) /* not measured: an empty cell */
        t[0] = '\0';
      else
        snprintf(t, sizeof(t), "%.*f", cols[c].prec + 1, r->m[cols[c].metric]);
      printf("%s\"%s\"", c ? "," : "", t);
    }
    printf("\n");
  }
}

static int print_json(const struct opts *o, const struct machine *mc) {
  size_t nc, c;
  const struct col *cols = cols_of(o, true, &nc);
  json_t *root = json_object(), *arr = json_array(), *skipped = json_array();
  unsigned i;
  int rv;
  json_object_set_new(root, "tool", json_string("shmbus-bench"));
  json_object_set_new(root, "subcommand", json_string(cmd_name(o)));
  json_object_set_new(root, "machine",
                      json_pack("{s:s, s:I, s:s, s:I, s:s, s:s}", "cpu", mc->cpu, "cpus",
                                (json_int_t)mc->cpus, "kernel", mc->kernel, "llc_bytes",
                                (json_int_t)mc->llc, "load_before", mc->load0, "load_after",
                                mc->load1));
  json_object_set_new(root, "params",
                      json_pack("{s:f, s:I, s:i, s:i, s:b, s:b, s:b, s:i}", "duration_s",
                                o->duration, "count", (json_int_t)o->count, "reps", (int)o->reps,
                                "slots", (int)o->slots, "pin", o->pin, "peers", o->peers, "touch",
                                o->touch, "burst_us", (int)o->burst_us));
  for (i = 0; i < nrows; i++) {
    const struct row *r = &rows[i];
    json_t *jr;
    if (r->skipped) {
      json_array_append_new(skipped,
                            json_pack("{s:s, s:s}", "transport", r->xname, "why", r->note));
      continue;
    }
    jr = json_object();
    for (c = 0; c < nc; c++) {
      const char *k = cols[c].key;
      char t[64];
      if (cols[c].metric >= 0 && isnan(r->m[cols[c].metric])) {
        json_object_set_new(jr, k, json_null()); /* not measured */
      } else if (cols[c].metric >= 0) {
        json_object_set_new(jr, k, json_real(r->m[cols[c].metric]));
      } else if (strcmp(k, "subs") == 0 || strcmp(k, "size") == 0 || strcmp(k, "rate") == 0) {
        text_cell(r, k, t, sizeof(t));
        json_object_set_new(jr, k, json_integer(strtoll(t, NULL, 10)));
      } else if (strcmp(k, "counts_ok") == 0) {
        json_object_set_new(jr, k, json_boolean(r->ok));
      } else {
        text_cell(r, k, t, sizeof(t));
        json_object_set_new(jr, k, json_string(t));
      }
    }
    json_object_set_new(jr, "repetitions", json_integer(r->nrep));
    json_array_append_new(arr, jr);
  }
  json_object_set_new(root, "rows", arr);
  json_object_set_new(root, "skipped", skipped);
  rv = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  printf("\n");
  json_decref(root);
  return rv;
}

/* ---- plot -------------------------------------------------------------------- */

/* `s` as a gnuplot string in single quotes (a quote in it doubled). */
static void gp_quoted(FILE *g, const char *s) {
  fputc('\'', g);
  for (; *s != '\0'; s++) {
    if (*s == '\'')
      fputc('\'', g);
    fputc(*s, g);
  }
  fputc('\'', g);
}

/* gnuplot reads the script and the data (inline data blocks) on a pipe.
 * fanout: delivered messages/s per subscriber against subscribers, one line
 * per transport and size, and p50/p99/p99.9 against subscribers; latency:
 * p50/p99/p99.9 per transport and size. The first --wait, --mode and
 * --rate only. */
static int plot(const struct opts *o, const char *file) {
  FILE *g = bp_gnuplot_open();
  const struct row *f = &rows[0];
  unsigned i, j, nser = 0;
  struct {
    const char *name;
    size_t size;
  } ser[64];
  if (g == NULL)
    return -errno;
  for (i = 0; i < nrows; i++) {
    const struct row *r = &rows[i];
    bool seen = false;
    if (r->skipped || r->nrep == 0 || r->wait != f->wait || r->reliable != f->reliable ||
        r->rate != f->rate)
      continue;
    for (j = 0; j < nser; j++)
      seen |= ser[j].name == r->xname && ser[j].size == r->size;
    if (!seen && nser < 64) {
      ser[nser].name = r->xname;
      ser[nser++].size = r->size;
    }
  }
  fprintf(g, "set terminal pngcairo size 1400,560 font ',10'\nset output ");
  gp_quoted(g, file);
  fprintf(g, "\n");
  for (j = 0; j < nser; j++) {
    fprintf(g, "$d%u << EOD\n", j);
    for (i = 0; i < nrows; i++) {
      const struct row *r = &rows[i];
      if (r->skipped || r->nrep == 0 || r->wait != f->wait || r->reliable != f->reliable ||
          r->rate != f->rate || r->xname != ser[j].name || r->size != ser[j].size)
        continue;
      fprintf(g, "%u %g %g %g %g\n", r->subs, r->m[M_SUB], r->m[M_P50], r->m[M_P99], r->m[M_P999]);
    }
    fprintf(g, "EOD\n");
  }
  fprintf(g, "set multiplot layout 1,2 title 'shmbus-bench %s, wait %s, %s%s'\n",
          o->cmd == CMD_FANOUT ? "fanout" : "latency", wait_name(f->wait),
          f->reliable ? "reliable" : "lossy", f->rate > 0 ? ", fixed rate" : "");
  fprintf(g, "set grid\nset key outside bottom center horizontal maxrows 4\nset logscale y\n");
  if (o->cmd == CMD_FANOUT) {
    /* Colour: the transport; point type: the size. */
    unsigned lc[64], pt[64], nn = 0, nz = 0;
    const char *names[64];
    size_t sizes[64];
    for (j = 0; j < nser; j++) {
      unsigned k;
      for (k = 0; k < nn && names[k] != ser[j].name; k++)
        ;
      if (k == nn)
        names[nn++] = ser[j].name;
      lc[j] = k + 1;
      for (k = 0; k < nz && sizes[k] != ser[j].size; k++)
        ;
      if (k == nz)
        sizes[nz++] = ser[j].size;
      pt[j] = k + 4;
    }
    fprintf(g, "set logscale x 2\nset xlabel 'subscribers'\nset ylabel 'delivered messages/s "
               "per subscriber'\nset title 'throughput (colour: transport, points: size)'\n"
               "plot ");
    for (j = 0; j < nser; j++)
      fprintf(g, "%s$d%u using 1:2 with linespoints lc %u pt %u title '%s %zu B'", j ? ", " : "", j,
              lc[j], pt[j], ser[j].name, ser[j].size);
    fprintf(g, "\nset ylabel 'one-way latency, µs'\nset title 'latency p50 (solid), p99 "
               "(dashed)'\nplot ");
    for (j = 0; j < nser; j++)
      if (strcmp(ser[j].name, "memcpy (cold)") != 0)
        fprintf(g,
                "%s$d%u using 1:3 with linespoints lc %u pt %u dt 1 title '%s %zu B', $d%u using "
                "1:4 with lines lc %u dt 2 notitle",
                j ? ", " : "", j, lc[j], pt[j], ser[j].name, ser[j].size, j, lc[j]);
    fprintf(g, "\n");
  } else {
    fprintf(g, "unset logscale x\nset style data histograms\nset style histogram clustered\n"
               "set style fill solid 0.8 border -1\nset boxwidth 0.9\nset xtics rotate by -30\n"
               "set ylabel 'one-way latency, µs'\nset title 'one-way latency p50 / p99 / p99.9'\n"
               "$all << EOD\n");
    for (j = 0; j < nser; j++)
      for (i = 0; i < nrows; i++) {
        const struct row *r = &rows[i];
        if (!r->skipped && r->nrep > 0 && r->wait == f->wait && r->xname == ser[j].name &&
            r->size == ser[j].size)
          fprintf(g, "\"%s %zu B\" %g %g %g %g\n", r->xname, r->size, r->m[M_P50], r->m[M_P99],
                  r->m[M_P999], r->m[M_CPU]);
      }
    fprintf(g, "EOD\nplot $all using 2:xtic(1) title 'p50', '' using 3 title 'p99', '' using 4 "
               "title 'p99.9'\n");
    fprintf(g, "set title 'CPU per round trip'\nset ylabel 'ns'\nplot $all using 5:xtic(1) "
               "notitle with boxes\n");
  }
  fprintf(g, "unset multiplot\n");
  return bp_gnuplot_close(g);
}

/* ---- main ------------------------------------------------------------------ */

static void progress(unsigned done, unsigned total, const struct row *r, unsigned rep,
                     unsigned reps, double est_s, uint64_t t_start) {
  static uint64_t last;
  uint64_t now = bu_now_ns();
  bool tty = isatty(2);
  if (est_s < 3.0 || (!tty && now - last < 5000000000u && done < total))
    return;
  last = now;
  fprintf(stderr, "%s[%u/%u] %.0f s: %s %s %s subs=%u size=%zu rep %u/%u%s", tty ? "\r" : "", done,
          total, (double)(now - t_start) / 1e9, r->xname, wait_name(r->wait),
          r->reliable ? "reliable" : "lossy", r->subs, r->size, rep + 1, reps,
          tty ? "\033[K" : "\n");
  if (tty && done == total)
    fprintf(stderr, "\n");
}

#ifdef _WIN32
/* A child process on Windows (job_start): the rows from the parent's
 * arguments, the shared memory from the parent, the run from the job. */
static int child_main(int argc, char **argv) {
  struct opts o;
  struct job j;
  struct bx_run run;
  unsigned group_len[4096], njob, role;
  char **jv;
  int first = bp_child_init(argc, argv, &jv, &njob);

  /* A child of publish or idle (costs.c's bp_child). */
  if (first < argc && (strcmp(argv[first], "publish") == 0 || strcmp(argv[first], "idle") == 0))
    return costs_child(jv, njob);
  memset(&j, 0, sizeof(j));
  if (njob != 5 || sscanf(jv[0], "%u", &role) != 1 || role > JOB_B ||
      sscanf(jv[1], "%u", &j.row) != 1 || sscanf(jv[2], "%u", &j.idx) != 1 ||
      sscanf(jv[3], "%d", &j.cpu) != 1 || sscanf(jv[4], "%u", &j.run_id) != 1)
    bp_die("the child's job arguments", -EINVAL);
  j.role = (enum job_role)role;
  /* parse() skips its argv[0]: the job's last string stands in for it. */
  parse(argc - first + 1, argv + first - 1, &o);
  build_rows(&o, group_len);
  if (j.row >= nrows || rows[j.row].skipped || j.idx >= BX_MAX_SUBS)
    bp_die("the child's row", -EINVAL);
  n_cpus = bu_online_cpus();
  map_all(&o);
  make_run(&run, &rows[j.row], &o, j.run_id);
  child_exit(rows[j.row].x, job_run(&j, &run, &o));
}
#endif

int main(int argc, char **argv) {
  struct opts o;
  struct machine mc;
  unsigned group_len[4096], ngroups = 0, rep, i, g, done = 0, total = 0;
  uint64_t t_start;
  double est;
  int dstatus = 0, rv = 0;
  bool all_ok = true;
  const char *need = NULL;

  if (shmbus__stdfds_open() < 0) /* before anything opens a descriptor */
    return 1;

#ifdef _WIN32
  if (argc >= 2 && strcmp(argv[1], "--bench-child") == 0)
    return child_main(argc, argv);
#endif
  main_argc = argc;
  main_argv = argv;
  if (argc >= 2 && (strcmp(argv[1], "publish") == 0 || strcmp(argv[1], "idle") == 0))
    return costs_main(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "tools") == 0)
    return tools_main(argc, argv);
  parse(argc, argv, &o);
  if (o.plot != NULL && !bp_gnuplot_find(&need)) {
    fprintf(stderr, PROG ": --plot needs %s\n", need);
    return 2;
  }
#ifndef _WIN32
  signal(SIGPIPE, SIG_IGN);
#endif
  bp_init(PROG);
  n_cpus = bu_online_cpus();
  sched_avail = bu_sched_available();
  memset(&mc, 0, sizeof(mc));
  bu_cpu_model(mc.cpu, sizeof(mc.cpu));
  bu_kernel(mc.kernel, sizeof(mc.kernel));
  bu_load_average(mc.load0, sizeof(mc.load0));
  mc.cpus = n_cpus;
  mc.llc = bu_llc_bytes();

  {
    unsigned cfgs =
        o.nwaits * o.nmodes * o.nsizes * (o.cmd == CMD_FANOUT ? o.nrates * o.nsubs : 1u);
    if (cfgs > sizeof(group_len) / sizeof(group_len[0]))
      bad_usage("too many combinations%s", "");
  }
  if (o.peers) /* starts iceoryx's RouDi, or notes why its peer is skipped */
    bx_iox_setup(o.cmd == CMD_LATENCY, o.sizes, o.nsizes, o.subs, o.nsubs, o.slots);
  if ((o.peers && o.cmd == CMD_FANOUT) || o.bridge) /* starts a nats-server, or notes why not */
    bx_nats_setup();
  if (o.bridge)
    bx_bridge_setup(o.bridge_prog, o.daemon);
  build_rows(&o, group_len);
  for (i = 0; i < nrows; i++)
    total += rows[i].skipped ? 0 : o.reps;
  for (g = 0, i = 0; i < nrows; g++)
    i += group_len[g];
  ngroups = g;
  est = (double)total * (o.duration > 0 ? o.duration + 0.2 : 1.0);

  map_all(&o);
  t_start = bu_now_ns();
  bp_daemon_start(o.daemon);

  /* Each repetition runs every configuration; within a configuration the
   * transports take turns, starting one further each repetition. */
  for (rep = 0; rep < o.reps; rep++) {
    unsigned first = 0;
    for (g = 0; g < ngroups; first += group_len[g++]) {
      unsigned k;
      for (k = 0; k < group_len[g]; k++) {
        struct row *r = &rows[first + (k + rep) % group_len[g]];
        if (r->skipped)
          continue;
        if (o.cmd == CMD_FANOUT)
          fan_run(r, &o);
        else
          lat_run(r, &o);
        progress(++done, total, r, rep, o.reps, est, t_start);
      }
    }
  }
  bp_daemon_stop(&dstatus);
  bp_dir_remove();
  bx_iox_teardown();
  bx_nats_teardown();
  mc.secs = (double)(bu_now_ns() - t_start) / 1e9;
  bu_load_average(mc.load1, sizeof(mc.load1));
  finish_rows();
  set_ratios(&o, group_len, ngroups);
  for (i = 0; i < nrows; i++)
    all_ok &= rows[i].ok;

  if (o.fmt == FMT_CSV)
    print_csv(&o, &mc);
  else if (o.fmt == FMT_JSON)
    rv = print_json(&o, &mc);
  else
    print_markdown(&o, &mc);
  fflush(stdout);
  if (rv < 0)
    bp_die("json output", -EIO);
  if (o.plot != NULL && (rv = plot(&o, o.plot)) < 0) {
    fprintf(stderr, PROG ": gnuplot failed to draw %s\n", o.plot);
    return 1;
  }
  free(rows);
  bp_unmap_shared(samples, samples_len);
  bp_unmap_shared(ctl, sizeof(*ctl));
  if (!all_ok) {
    fprintf(stderr, PROG ": some counts did not add up (received + lost != published)\n");
    return 1;
  }
  return 0;
}
