/* tools: `shmbus-bench tools`, what the CLI's watchers cost a publisher
 * (issue 15: "hz, bw and echo of a topic cost the publishers nothing
 * measurable"; issue 13: wake thresholds).
 *
 * One publisher in this process (the public API) publishes a fixed number
 * of messages flat out or at a fixed rate, alone and with one of the real
 * CLI binaries attached as a lossy reader: `shmbus echo -q` (its defaults:
 * a wake threshold, and reading by periods a publisher it cannot keep up
 * with), `shmbus echo -q --latency-us 0` (woken for every message, reading
 * all the time: what echo did before), `shmbus hz`, `shmbus bw` (their output
 * to /dev/null). Readers take turns within each repetition, one further
 * each time, so drift hits all alike; the report gives medians and, per
 * rate, each reader's ratio to the publisher alone, measured in the same
 * run: its rate (messages / wall time) and its CPU time per message
 * (CLOCK_PROCESS_CPUTIME_ID: this process has no other thread), with the
 * eventfd writes it made (shmbus_pub_stats.wakeups_sent) per message.
 *
 * Two controls that do not read the bus at all stand in for a reader:
 * `busy`, a process spinning in a loop of register arithmetic, and
 * `stream`, a process reading through 64 MiB (twice this machine's L3)
 * over and over. Whatever they cost the publisher is the host's (a CPU
 * whose sibling is busy, shared caches and memory bandwidth), not the
 * bus's: a reader that costs a publisher no more than `busy` costs it
 * nothing through shared memory.
 *
 * Every run uses a topic of its own on the benchmark's private daemon. A
 * reader is started, attached (the publisher waits for its subscriber),
 * and stopped after the last message as a user stops it (SIGTERM on Linux,
 * its named stop event on Windows: platform/tools_os.h); echo's summary
 * line (received, lost) is read from its stderr and must add up to what
 * was published since it joined; a control is stopped the same way
 * (SIGTERM; on Windows an event it inherited). */
#define _GNU_SOURCE
#include "tools.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomics.h"
#include "benchproc.h"
#include "benchutil.h"
#include "bus.h" /* internal: the subscribers' cursors in the publisher's view, after a run */
#include "platform/tools_os.h"
#include "shmbus/shmbus.h"

#ifndef SHMBUSD_PATH
#define SHMBUSD_PATH "shmbusd"
#endif

#define TL_PROG "shmbus-bench tools"
#define TL_MAX_RATES 8u
#define TL_MAX_REPS 50u

enum tl_reader { TL_NONE, TL_ECHO, TL_ECHO_EACH, TL_HZ, TL_BW, TL_BUSY, TL_STREAM, TL_NREADERS };

static const char *const tl_names[TL_NREADERS] = {"none", "echo", "echo-each", "hz",
                                                  "bw",   "busy", "stream"};
static const char *const tl_shown[TL_NREADERS] = {"(publisher alone)",
                                                  "`echo -q`",
                                                  "`echo -q --latency-us 0`",
                                                  "`hz`",
                                                  "`bw`",
                                                  "control: a busy loop",
                                                  "control: a 64 MiB read loop"};

struct tl_opts {
  uint64_t count;
  double rates[TL_MAX_RATES];
  unsigned nrates;
  size_t size;
  unsigned reps;
  bool readers[TL_NREADERS];
  unsigned step_us;
  const char *daemon;
  const char *cli;
};

/* One run's figures. */
struct tl_run {
  double rate;       /* messages per second of wall time */
  double cpu_ns;     /* the publisher's CPU per message */
  double wakeups;    /* eventfd writes per message */
  double reader_ns;  /* the reader's CPU (whole life) per message */
  uint64_t received; /* echo: what its summary says */
  uint64_t lost;
};

static _Noreturn void tl_usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, TL_PROG ": ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, " (see shmbus-bench --help)\n");
  exit(2);
}

void tools_usage(FILE *f) {
  fputs("tools: what the CLI's watchers cost a publisher. It publishes --count messages\n"
        "flat out and at each --rate, alone and with each reader attached (the real\n"
        "binaries, lossy): echo -q (its defaults), echo -q --latency-us 0 (woken per\n"
        "message, reading all the time), hz, bw; and two controls that do not read the\n"
        "bus. Reports the publisher's rate and CPU ns per message\n"
        "side by side with their ratio to the publisher alone, and its eventfd writes per\n"
        "message.\n"
        "  --count N          messages per run (default 2000000; --quick 200000)\n"
        "  --rate LIST        messages/s, 0 = as fast as possible (default 0,100k)\n"
        "  --size B           message bytes (default 64)\n"
        "  --reps N           repetitions, readers taking turns (default 3; --quick 1)\n"
        "  --readers LIST     of none,echo,echo-each,hz,bw,busy,stream (default all):\n"
        "                     busy and stream are controls that do not read the bus (a\n"
        "                     process spinning, one reading 64 MiB over and over)\n"
        "  --step-us N        at a rate, publish what is due every N us, sleeping between\n"
        "                     (default 50)\n"
        "  --cli PATH         the shmbus binary (default the one built beside this)\n",
        f);
}

static double tl_num(const char *s, const char *opt, double lo, double hi) {
  char *end;
  double v;
  double mul = 1;

  if (s == NULL)
    tl_usage_error("%s needs a value", opt);
  errno = 0;
  v = strtod(s, &end);
  if (*end == 'k')
    mul = 1e3, end++;
  else if (*end == 'M')
    mul = 1e6, end++;
  v *= mul;
  if (end == s || *end != '\0' || errno != 0 || !(v >= lo && v <= hi))
    tl_usage_error("bad value for %s", opt);
  return v;
}

static void tl_parse(int argc, char **argv, struct tl_opts *o) {
  bool quick = false;
  bool counted = false, repped = false;
  int a;

  memset(o, 0, sizeof(*o));
  o->count = 2000000;
  o->rates[0] = 0, o->rates[1] = 100000, o->nrates = 2;
  o->size = 64;
  o->reps = 3;
  o->step_us = 50;
  for (a = 0; a < TL_NREADERS; a++)
    o->readers[a] = true;
  o->daemon = SHMBUSD_PATH;
#ifdef SHMBUS_CLI_PATH
  o->cli = SHMBUS_CLI_PATH;
#endif
  for (a = 2; a < argc; a++) {
    const char *opt = argv[a], *val = a + 1 < argc ? argv[a + 1] : NULL;
    if (strcmp(opt, "--quick") == 0) {
      quick = true;
    } else if (strcmp(opt, "--count") == 0) {
      o->count = (uint64_t)tl_num(val, opt, 1000, 1e9), a++;
      counted = true;
    } else if (strcmp(opt, "--reps") == 0) {
      o->reps = (unsigned)tl_num(val, opt, 1, TL_MAX_REPS), a++;
      repped = true;
    } else if (strcmp(opt, "--step-us") == 0) {
      o->step_us = (unsigned)tl_num(val, opt, 1, 1000000), a++;
    } else if (strcmp(opt, "--size") == 0) {
      o->size = (size_t)tl_num(val, opt, 8, 1 << 20), a++;
    } else if (strcmp(opt, "--rate") == 0 || strcmp(opt, "--readers") == 0) {
      char buf[256], *save = NULL, *tok;
      bool rates = opt[2] == 'r' && opt[3] == 'a';
      if (val == NULL || strlen(val) >= sizeof(buf))
        tl_usage_error("%s needs a list", opt);
      strcpy(buf, val), a++;
      if (rates)
        o->nrates = 0;
      else
        memset(o->readers, 0, sizeof(o->readers));
      for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        if (rates) {
          if (o->nrates == TL_MAX_RATES)
            tl_usage_error("%s: too many rates", opt);
          o->rates[o->nrates++] = tl_num(tok, opt, 0, 1e8);
        } else {
          unsigned k;
          for (k = 0; k < TL_NREADERS && strcmp(tok, tl_names[k]) != 0; k++)
            ;
          if (k == TL_NREADERS)
            tl_usage_error("unknown reader '%s'", tok);
          o->readers[k] = true;
        }
      }
      if (rates && o->nrates == 0)
        tl_usage_error("%s needs a list", opt);
    } else if (strcmp(opt, "--cli") == 0 || strcmp(opt, "--daemon") == 0) {
      if (val == NULL)
        tl_usage_error("%s needs a path", opt);
      *(opt[2] == 'c' ? &o->cli : &o->daemon) = val, a++;
    } else {
      tl_usage_error("unknown option '%s'", opt);
    }
  }
  if (quick) {
    if (!counted)
      o->count = 200000;
    if (!repped)
      o->reps = 1;
  }
  if (o->cli == NULL)
    tl_usage_error("%s", "built without the CLI: say --cli PATH");
  o->readers[TL_NONE] = true; /* the reference every ratio needs */
}

/* The controls' memory: twice a 32 MiB L3. */
#define TL_STREAM_BYTES (64u << 20)

int tl_control_setup(bool stream, uint64_t **mem) {
  size_t words = TL_STREAM_BYTES / sizeof(uint64_t);

  *mem = NULL;
  if (!stream)
    return 0;
  if ((*mem = malloc(TL_STREAM_BYTES)) == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < words; i++)
    (*mem)[i] = i;
  return 0;
}

void tl_control_loop(bool stream, uint64_t *mem, volatile sig_atomic_t *stop) {
  volatile uint64_t sink = 0;
  size_t words = TL_STREAM_BYTES / sizeof(uint64_t);

  while (!*stop) {
    uint64_t acc = sink;
    if (stream) {
      /* A read stream a cache line apart: the hardware prefetchers see a
       * stride and keep the memory bus busy. */
      for (size_t i = 0; i < words && !*stop; i += 8)
        acc += mem[i];
    } else {
      for (unsigned i = 0; i < 1000000u; i++)
        acc = acc * 6364136223846793005ull + 1442695040888963407ull;
    }
    sink = acc;
  }
  free(mem);
}

/* Starts reader `r` on `topic`; its stdout goes to the null device, its
 * stderr to `err_path`. */
static struct tl_proc tl_reader_start(const struct tl_opts *o, enum tl_reader r, const char *topic,
                                      const char *err_path) {
  char *echo[] = {"shmbus", "echo", "-q", (char *)topic, NULL};
  char *each[] = {"shmbus", "echo", "-q", "--latency-us", "0", (char *)topic, NULL};
  char *hz[] = {"shmbus", "hz", (char *)topic, NULL};
  char *bw[] = {"shmbus", "bw", (char *)topic, NULL};
  char **args = r == TL_ECHO ? echo : r == TL_ECHO_EACH ? each : r == TL_HZ ? hz : bw;

  return tl_os_reader_start(o->cli, args, err_path);
}

/* Untimed, after the last message: waits (up to 10 s) until every
 * subscriber of the topic has read up to head, so that a reader stopped
 * then accounts for every message (relaxed loads through the publisher's
 * mapping: a late value only makes it wait a little longer). */
static void tl_until_read(const shmbus_pub *pub) {
  const struct shmbus__ring *r = &pub->h.region.ring;
  uint64_t end = bu_now_ns() + 10000000000u;

  for (;;) {
    uint64_t h = shmbus__load_relaxed(&r->hdr->head);
    bool behind = false;
    uint32_t m, i;
    for (m = 0; m < r->n_members; m++)
      for (i = 0; r->members[m].hdr != NULL && i < r->max_subs; i++) {
        const struct shmbus__sub_rec *rec = &r->members[m].subs[i];
        uint32_t st = shmbus__load_relaxed(&rec->state);
        if ((st == SHMBUS__SUB_LOSSY || st == SHMBUS__SUB_RELIABLE) &&
            shmbus__load_relaxed(&rec->cursor) < h)
          behind = true;
      }
    if (!behind)
      return;
    if (bu_now_ns() > end)
      bp_die("the reader never caught up", -ETIMEDOUT);
    bu_sleep_ms(1);
  }
}

/* echo's summary line: "received R lost L checksum errors E". */
static void tl_echo_summary(const char *path, struct tl_run *out) {
  char line[256];
  bool found = false;
  FILE *f = fopen(path, "r");

  if (f == NULL)
    bp_die_errno("open echo's log");
  while (fgets(line, sizeof(line), f) != NULL) {
    unsigned long long rc, lo, ck;
    if (sscanf(line, "received %llu lost %llu checksum errors %llu", &rc, &lo, &ck) == 3) {
      out->received = rc;
      out->lost = lo;
      found = true;
    }
  }
  fclose(f);
  if (!found) {
    fprintf(stderr, TL_PROG ": echo printed no summary (see %s)\n", path);
    bp_die("echo", -EIO);
  }
}

static void tl_one(const struct tl_opts *o, enum tl_reader r, double rate, unsigned id,
                   unsigned char *buf, struct tl_run *out) {
  char topic[64], err_path[512];
  struct shmbus_pub_stats ps0, ps1;
  shmbus_bus *bus;
  shmbus_pub *pub;
  uint64_t n = 0, t0, t1, c0, c1, joined_at = 0;
  struct tl_proc proc = {-1, NULL, NULL};
  int rv;

  memset(out, 0, sizeof(*out));
  snprintf(topic, sizeof(topic), "bench/tools/%u", id);
  snprintf(err_path, sizeof(err_path), "%s/reader-%u.log", bp_bus_dir(), id);
  bus = bp_bus_open("tools-bench-pub");
  /* The topic exists before the reader comes: hz and bw only look. */
  if ((rv = shmbus_pub_open(bus, topic, NULL, &pub)) < 0)
    bp_die("open the publisher", rv);
  if (r == TL_BUSY || r == TL_STREAM) {
    proc = tl_os_ctrl_start(r == TL_STREAM);
  } else if (r != TL_NONE) {
    proc = tl_reader_start(o, r, topic, err_path);
    if ((rv = shmbus_pub_wait_subs(pub, 1, 30000)) < 0)
      bp_die("wait for the reader", rv);
  }
  shmbus_pub_stats(pub, &ps0);
  joined_at = ps0.published;
  t0 = bu_now_ns();
  c0 = tl_os_cpu_ns();
  while (n < o->count) {
    if (rate > 0) {
      /* Paced in steps of step_us: publish what is due, then sleep until
       * the next step (a sleep per message would cost the publisher more
       * than the bus). */
      uint64_t now = bu_now_ns();
      uint64_t due = (uint64_t)((double)(now - t0) * 1e-9 * rate) + 1;
      if (due > o->count)
        due = o->count;
      if (n >= due) {
        uint64_t next = t0 + (uint64_t)((double)n * 1e9 / rate);
        bu_sleep_until_ns(next > now + o->step_us * 1000u ? next : now + o->step_us * 1000u);
        continue;
      }
      while (n < due) {
        memcpy(buf, &n, sizeof(n));
        if ((rv = shmbus_pub_publish(pub, buf, o->size)) < 0)
          bp_die("publish", rv);
        n++;
      }
    } else {
      memcpy(buf, &n, sizeof(n));
      if ((rv = shmbus_pub_publish(pub, buf, o->size)) < 0)
        bp_die("publish", rv);
      n++;
    }
  }
  c1 = tl_os_cpu_ns();
  t1 = bu_now_ns();
  shmbus_pub_stats(pub, &ps1);
  out->rate = (double)n / ((double)(t1 - t0) / 1e9);
  out->cpu_ns = (double)(c1 - c0) / (double)n;
  out->wakeups = (double)(ps1.wakeups_sent - ps0.wakeups_sent) / (double)n;
  if (proc.pid > 0) {
    if (r != TL_BUSY && r != TL_STREAM)
      tl_until_read(pub);
    out->reader_ns = (double)tl_os_reader_stop(&proc) / (double)n;
    if (r == TL_ECHO || r == TL_ECHO_EACH) {
      tl_echo_summary(err_path, out);
      /* It joined before the first message (wait_subs), so it accounts
       * for every one. */
      if (out->received + out->lost != ps1.published - joined_at) {
        fprintf(stderr, TL_PROG ": echo received %" PRIu64 " + lost %" PRIu64 " != %" PRIu64 "\n",
                out->received, out->lost, ps1.published - joined_at);
        bp_die("echo's counts", -EIO);
      }
    }
  }
  (void)remove(err_path);
  shmbus_bus_close(bus);
}

static double tl_median(double *v, unsigned n) {
  qsort(v, n, sizeof(*v), bu_cmp_double);
  return bu_pct_double(v, n, 0.5);
}

int tools_main(int argc, char **argv) {
  static struct tl_run runs[TL_MAX_RATES][TL_NREADERS][TL_MAX_REPS];
  struct tl_opts o;
  char cpu[256], kernel[256], load0[64], load1[64], cli[1024];
  unsigned rep, ri, k, id = 0;
  unsigned char *buf;
  uint64_t t_start;
  int dstatus = 0, rv;

  if ((rv = tl_os_control_main(argc, argv)) >= 0)
    return rv;
  tl_parse(argc, argv, &o);
  if ((rv = tl_os_cli_find(o.cli, cli, sizeof(cli))) < 0) {
    fprintf(stderr, TL_PROG ": %s: %s\n", o.cli, strerror(-rv));
    return 2;
  }
  o.cli = cli;
  bp_init(TL_PROG);
  if ((buf = calloc(1, o.size)) == NULL)
    bp_die("malloc", -ENOMEM);
  bu_cpu_model(cpu, sizeof(cpu));
  bu_kernel(kernel, sizeof(kernel));
  bu_load_average(load0, sizeof(load0));
  t_start = bu_now_ns();
  bp_daemon_start(o.daemon);
  {
    /* Untimed: the first run of a process pays for its page faults and
     * cold caches, which would flatter every reader against it. */
    struct tl_run warm;
    tl_one(&o, TL_NONE, 0, id++, buf, &warm);
  }
  for (rep = 0; rep < o.reps; rep++)
    for (ri = 0; ri < o.nrates; ri++)
      for (k = 0; k < TL_NREADERS; k++) {
        enum tl_reader r = (enum tl_reader)((k + rep) % TL_NREADERS);
        if (o.readers[r])
          tl_one(&o, r, o.rates[ri], id++, buf, &runs[ri][r][rep]);
      }
  bp_daemon_stop(&dstatus);
  bp_dir_remove();
  bu_load_average(load1, sizeof(load1));
  free(buf);

  printf("# shmbus-bench tools\n\n");
  printf("%s, %ld CPUs, %s%s; load average %s before, %s after; %.1f s; %" PRIu64
         " messages of %zu B per run, %u repetition%s (medians)\n\n",
         cpu, bu_online_cpus(), tl_os_system(), kernel, load0, load1,
         (double)(bu_now_ns() - t_start) / 1e9, o.count, o.size, o.reps, o.reps == 1 ? "" : "s");
  printf("| rate | reader | publisher msg/s | vs alone | publisher CPU ns/msg | vs alone | "
         "wake-ups sent/msg | reader CPU ns/msg | reader received (lost) |\n");
  printf("|---|---|---:|---:|---:|---:|---:|---:|---|\n");
  for (ri = 0; ri < o.nrates; ri++) {
    double base_rate = 0, base_cpu = 0;
    for (k = 0; k < TL_NREADERS; k++) {
      double rate[TL_MAX_REPS], cpu_ns[TL_MAX_REPS], wk[TL_MAX_REPS], rd[TL_MAX_REPS];
      double mr, mc, mw, md;
      uint64_t got = 0, lost = 0;
      char rate_s[32], recv_s[64], rd_s[32] = "";
      if (!o.readers[k])
        continue;
      for (rep = 0; rep < o.reps; rep++) {
        const struct tl_run *x = &runs[ri][k][rep];
        rate[rep] = x->rate, cpu_ns[rep] = x->cpu_ns, wk[rep] = x->wakeups, rd[rep] = x->reader_ns;
        got += x->received, lost += x->lost;
      }
      mr = tl_median(rate, o.reps), mc = tl_median(cpu_ns, o.reps);
      mw = tl_median(wk, o.reps), md = tl_median(rd, o.reps);
      if (k == TL_NONE)
        base_rate = mr, base_cpu = mc;
      if (o.rates[ri] > 0)
        snprintf(rate_s, sizeof(rate_s), "%.0f/s", o.rates[ri]);
      else
        snprintf(rate_s, sizeof(rate_s), "flat out");
      if (k == TL_ECHO || k == TL_ECHO_EACH)
        snprintf(recv_s, sizeof(recv_s), "%.1f %% (%.1f %%)",
                 100.0 * (double)got / (double)(got + lost + (got + lost == 0)),
                 100.0 * (double)lost / (double)(got + lost + (got + lost == 0)));
      else
        snprintf(recv_s, sizeof(recv_s), "%s",
                 k == TL_NONE || k == TL_BUSY || k == TL_STREAM ? "" : "(samples)");
      if (k != TL_NONE)
        snprintf(rd_s, sizeof(rd_s), "%.1f", md);
      printf("| %s | %s | %.0f | %.3f | %.1f | %.3f | %.4f | %s | %s |\n", rate_s, tl_shown[k], mr,
             base_rate > 0 ? mr / base_rate : 0, mc, base_cpu > 0 ? mc / base_cpu : 0, mw, rd_s,
             recv_s);
    }
  }
  printf("\nAt a rate, the publisher publishes what is due every %u µs and sleeps between. ",
         o.step_us);
  printf("vs alone: the publisher's rate (CPU) with the reader over its rate (CPU) alone in the "
         "same run; the target is a rate of at least 0.98 and CPU at most 1.02. Reader CPU is "
         "its whole life (start-up included) per message published. The daemon %s.\n",
         WIFEXITED(dstatus) && WEXITSTATUS(dstatus) == 0 ? "stopped cleanly"
                                                         : "did not stop cleanly");
  fflush(stdout);
  return 0;
}
