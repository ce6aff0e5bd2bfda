/* shmbus-bridge between two buses (two shmbusd in two bus directories,
 * standing for two hosts) through real nats-server processes
 * (tests/natsfix.c): every byte and sequence across the bridge, a pattern
 * that finds a topic created later, no echo between bridges both ways, a
 * bridge killed and restarted, the NATS server gone and back, 100,000
 * messages through a 3-node cluster, and foreign or malformed messages on
 * the subjects refused and counted.
 *
 * Synchronisation: a path is ready when a message went through it (the
 * test publishes a probe until it arrives, each wait bounded); the
 * bridges' counts are read from the stats lines they print on SIGUSR1.
 * Core NATS is lossy: the streams are sent in windows, each waited for on
 * the far side, so that no queue overflows; a loss then fails the test. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemonutil.h"
#include "natsfix.h"
#include "shmbus/shmbus.h"

/* A bridge process and its log (stdout and stderr). */
struct br {
  pid_t pid;
  char log[192];
  const char *name;
  const char *args[16];
  int nargs;
};

static struct du_daemon da, db;
static struct natsfix_cluster nc_c;
static char logdir[64];
static struct br *brs[8];
static int nbrs;
/* The bus of the publishers on bus A, handled while the test waits on bus
 * B (recv_on). */
static shmbus_bus *pub_bus;

static void setup(void) {
  memset(&da, 0, sizeof(da));
  memset(&db, 0, sizeof(db));
  memset(&nc_c, 0, sizeof(nc_c));
  nbrs = 0;
  pub_bus = NULL;
  du_start(&da);
  du_start(&db);
  snprintf(logdir, sizeof(logdir), "/tmp/shmbus-bridge-test-XXXXXX");
  cr_assert_not_null(mkdtemp(logdir));
}

static void teardown(void) {
  int i;

  for (i = 0; i < nbrs; i++)
    if (brs[i]->pid > 0) {
      kill(brs[i]->pid, SIGKILL);
      (void)du_wait(brs[i]->pid);
      brs[i]->pid = 0;
    }
  /* A server a test stopped (SIGSTOP) and did not continue. */
  for (i = 0; i < NATSFIX_MAX_NODES; i++)
    if (nc_c.node[i].pid > 0)
      (void)kill(nc_c.node[i].pid, SIGCONT);
  natsfix_cluster_stop(&nc_c);
  du_stop(&da);
  du_stop(&db);
  du_rmtree(logdir);
  nats_CloseAndWait(5000);
}

TestSuite(bridge, .init = setup, .fini = teardown, .timeout = 600);

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap(void) {
  struct timespec ts = {0, 5 * 1000 * 1000};
  nanosleep(&ts, NULL);
}

/* While the test waits on bus B, the publishers' bus is handled: a
 * publisher learns from its daemon how to wake a subscriber that
 * joined lately, and hears it only while its bus is processed (a program
 * that waits in its own loop does; this test waits on the other bus). */

/* Receives on `sub` within timeout_ms, handling pub_bus meanwhile. */
static int recv_on(shmbus_sub *sub, void *buf, size_t cap, int timeout_ms) {
  int64_t end = now_ms() + timeout_ms;
  int rv;

  for (;;) {
    rv = shmbus_sub_recv(sub, buf, cap, NULL, 20);
    if (rv != -ETIMEDOUT || now_ms() >= end)
      return rv;
    if (pub_bus != NULL)
      (void)shmbus_bus_process(pub_bus);
  }
}

static void cluster(int nodes) {
  int rv = natsfix_cluster_start(&nc_c, nodes, false);
  cr_assert_eq(rv, 0, "natsfix_cluster_start(%d): %s (%s)", nodes, strerror(-rv), nc_c.err);
}

/* ---- bridge processes ------------------------------------------------- */

static void br_print_log(const struct br *b) {
  char line[512];
  FILE *f = fopen(b->log, "r");

  if (f == NULL)
    return;
  fprintf(stderr, "---- log of bridge %s ----\n", b->name);
  while (fgets(line, sizeof(line), f) != NULL)
    fputs(line, stderr);
  fclose(f);
}

/* Starts (again) the bridge with its arguments. */
static void br_run(struct br *b) {
  pid_t pid = fork();

  cr_assert_geq(pid, 0);
  if (pid == 0) {
    const char *argv[24];
    int n = 0, i, fd = open(b->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
      _exit(127);
    /* Started without standard input, as CI starts the tests: the bridge
     * must not let a descriptor it opens take number 0 (libuv aborts when
     * it closes one of 0-2). */
    if (fd != 0)
      close(fd);
    close(0);
    argv[n++] = SHMBUS_BRIDGE_PATH;
    for (i = 0; i < b->nargs; i++)
      argv[n++] = b->args[i];
    argv[n] = NULL;
    execv(SHMBUS_BRIDGE_PATH, (char *const *)argv);
    _exit(127);
  }
  b->pid = pid;
}

/* A bridge named `name` on bus d, to `urls`, with more arguments (NULL
 * ended). */
static struct br *br_start(const char *name, const struct du_daemon *d, const char *urls, ...) {
  struct br *b = calloc(1, sizeof(*b));
  const char *a;
  va_list ap;

  cr_assert_not_null(b);
  cr_assert_lt(nbrs, 8);
  brs[nbrs++] = b;
  b->name = name;
  snprintf(b->log, sizeof(b->log), "%s/%s.log", logdir, name);
  b->args[b->nargs++] = "--nats";
  b->args[b->nargs++] = urls;
  b->args[b->nargs++] = "--dir";
  b->args[b->nargs++] = d->dir;
  b->args[b->nargs++] = "--name";
  b->args[b->nargs++] = name;
  va_start(ap, urls);
  while ((a = va_arg(ap, const char *)) != NULL && b->nargs < 16)
    b->args[b->nargs++] = a;
  va_end(ap);
  br_run(b);
  return b;
}

/* SIGTERM: it must exit 0 (a sanitizer's report makes it fail). */
static void br_stop(struct br *b) {
  int st;

  cr_assert_eq(kill(b->pid, SIGTERM), 0);
  st = du_wait(b->pid);
  b->pid = 0;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
    br_print_log(b);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "bridge %s ended with status %#x", b->name, st);
}

static void br_kill(struct br *b) {
  cr_assert_eq(kill(b->pid, SIGKILL), 0);
  (void)du_wait(b->pid);
  b->pid = 0;
}

/* Occurrences of `needle` in the bridge's log. */
static int log_count(const struct br *b, const char *needle) {
  char line[1024];
  int n = 0;
  FILE *f = fopen(b->log, "r");

  if (f == NULL)
    return 0;
  while (fgets(line, sizeof(line), f) != NULL)
    if (strstr(line, needle) != NULL)
      n++;
  fclose(f);
  return n;
}

/* Waits (bounded, 30 s) until the log holds `needle` at least n times. */
static void log_wait(const struct br *b, const char *needle, int n) {
  int64_t end = now_ms() + 30000;

  while (log_count(b, needle) < n) {
    if (now_ms() > end || waitpid(b->pid, NULL, WNOHANG) != 0) {
      br_print_log(b);
      cr_assert_fail("bridge %s: no \"%s\" (x%d) in its log", b->name, needle, n);
    }
    nap();
  }
}

/* The value of `key` in the last stats line of `what` ("topic=NAME" or
 * "nats=" for the totals), or -1. */
static int64_t stat_last(const struct br *b, const char *what, const char *key) {
  char line[1024], want[300], k[64];
  int64_t v = -1;
  FILE *f = fopen(b->log, "r");

  if (f == NULL)
    return -1;
  snprintf(want, sizeof(want), "stats: %s%s", what, strchr(what, '=')[1] == '\0' ? "" : " ");
  snprintf(k, sizeof(k), " %s=", key);
  while (fgets(line, sizeof(line), f) != NULL) {
    char *p;
    if (strstr(line, want) == NULL || (p = strstr(line, k)) == NULL)
      continue;
    v = strtoll(p + strlen(k), NULL, 10);
  }
  fclose(f);
  return v;
}

/* Asks for stats (SIGUSR1) until `key` of `what` is `want` (bounded). */
static void stat_wait(const struct br *b, const char *what, const char *key, int64_t want) {
  int64_t end = now_ms() + 30000, v = -1;

  for (;;) {
    int before = log_count(b, "stats: nats=");
    cr_assert_eq(kill(b->pid, SIGUSR1), 0);
    log_wait(b, "stats: nats=", before + 1);
    if ((v = stat_last(b, what, key)) == want)
      return;
    if (now_ms() > end)
      break;
  }
  br_print_log(b);
  cr_assert_fail("bridge %s: %s %s is %" PRId64 ", not %" PRId64, b->name, what, key, v, want);
}

/* ---- traffic ---------------------------------------------------------- */

static unsigned char *seen;
static uint64_t seen_n;
static void js_dump(void);

/* On a failure: every bridge's stats and log on stderr; in an unordered
 * stream (rstream with mids), which messages are missing, and the
 * importer's consumer as the server sees it. */
static void dump_all(void) {
  int i;

  if (seen != NULL) {
    uint64_t k, from = 0, ranges = 0, missing = 0;
    bool in = false;
    for (k = 0; k <= seen_n; k++) {
      bool miss = k < seen_n && !seen[k];
      if (miss && !in)
        from = k;
      else if (!miss && in && ranges++ < 64)
        fprintf(stderr, "bridge_test: missing %" PRIu64 "..%" PRIu64 " (%" PRIu64 ")\n", from,
                k - 1, k - from);
      if (miss)
        missing++;
      in = miss;
    }
    fprintf(stderr, "bridge_test: %" PRIu64 " missing in %" PRIu64 " ranges\n", missing, ranges);
  }
  if (nc_c.jetstream) {
    js_dump();
    natsfix_dump_logs(&nc_c, 30);
  }

  for (i = 0; i < nbrs; i++)
    if (brs[i]->pid > 0) {
      int before = log_count(brs[i], "stats: nats=");
      if (kill(brs[i]->pid, SIGUSR1) == 0)
        for (int64_t end = now_ms() + 2000;
             log_count(brs[i], "stats: nats=") <= before && now_ms() < end;)
          nap();
    }
  for (i = 0; i < nbrs; i++)
    br_print_log(brs[i]);
}

static const struct shmbus_topic_opts big_topic = {
    .slots = 4096, .slot_size = 2048, .max_subs = 8, .max_pubs = 4};

/* Publishes on `pub` until `sub` (on the other bus) receives a message:
 * the whole path is up. Drains what follows. */
static void probe(shmbus_pub *pub, shmbus_sub *sub) {
  int64_t end = now_ms() + 30000;
  char buf[64];

  for (;;) {
    cr_assert_eq(shmbus_pub_publish(pub, "probe", 5), 0);
    if (recv_on(sub, buf, sizeof(buf), 100) == 5)
      break;
    cr_assert_lt(now_ms(), end, "nothing came across the bridge in 30 s");
  }
  while (recv_on(sub, buf, sizeof(buf), 200) >= 0) {
  }
}

/* Message i: its length and bytes, a function of i alone. */
static size_t msg_len(uint64_t i, size_t max) {
  return 8 + (size_t)((i * 7919u) % (max - 8 + 1));
}

static void msg_fill(uint64_t i, unsigned char *p, size_t len) {
  size_t j;

  memcpy(p, &i, 8);
  for (j = 8; j < len; j++)
    p[j] = (unsigned char)(i * 131u + j * 7u);
}

static void msg_check(uint64_t i, const unsigned char *p, int len, size_t max) {
  unsigned char want[4096];
  uint64_t got;

  cr_assert_geq(len, 8, "message %" PRIu64 ": %d", i, len);
  memcpy(&got, p, 8);
  cr_assert_eq(got, i, "expected message %" PRIu64 ", got %" PRIu64, i, got);
  cr_assert_eq((size_t)len, msg_len(i, max), "message %" PRIu64 ": length", i);
  msg_fill(i, want, (size_t)len);
  cr_assert_eq(memcmp(p, want, (size_t)len), 0, "message %" PRIu64 ": bytes differ", i);
}

/* Sends n messages (lengths 8..max) from pub, in windows of w, each
 * window received whole and in order by every sub before the next. */
static void stream(shmbus_pub *pub, shmbus_sub **subs, int nsubs, uint64_t n, uint64_t w,
                   size_t max) {
  unsigned char buf[4096];
  uint64_t i, k;
  int s;

  for (i = 0; i < n; i += w) {
    uint64_t end = i + w < n ? i + w : n;
    for (k = i; k < end; k++) {
      size_t len = msg_len(k, max);
      int rv;
      msg_fill(k, buf, len);
      rv = shmbus_pub_publish(pub, buf, len);
      cr_assert_eq(rv, 0, "publish %" PRIu64 ": %s", k, shmbus_strerror(rv));
    }
    for (s = 0; s < nsubs; s++)
      for (k = i; k < end; k++) {
        int rv = recv_on(subs[s], buf, sizeof(buf), 10000);
        if (rv < 0)
          dump_all();
        cr_assert_geq(rv, 0, "subscriber %d, message %" PRIu64 ": %s", s, k, shmbus_strerror(rv));
        msg_check(k, buf, rv, max);
      }
  }
  for (s = 0; s < nsubs; s++) {
    struct shmbus_sub_stats st;
    shmbus_sub_stats(subs[s], &st);
    cr_assert_eq(st.lost, 0);
  }
}

static shmbus_pub *pub_on(shmbus_bus *bus, const char *topic) {
  shmbus_pub *p = NULL;
  int rv = shmbus_pub_open(bus, topic, &big_topic, &p);
  cr_assert_eq(rv, 0, "pub %s: %s", topic, shmbus_strerror(rv));
  return p;
}

static shmbus_sub *sub_on(shmbus_bus *bus, const char *topic) {
  struct shmbus_sub_opts so = {.topic = big_topic};
  shmbus_sub *s = NULL;
  int rv = shmbus_sub_open(bus, topic, &so, &s);
  cr_assert_eq(rv, 0, "sub %s: %s", topic, shmbus_strerror(rv));
  return s;
}

/* ---- the tests ---------------------------------------------------------- */

/* The lossy pair on one NATS node: bus A's topics under t/ exported, bus B's
 * imported, and a warm-up topic (t/warm) probed through them. */
struct lpair {
  shmbus_bus *a, *b;
  shmbus_sub *w;
  shmbus_pub *pw;
  struct br *ex, *im;
};

static void lpair_start(struct lpair *l) {
  cluster(1);
  l->ex = br_start("ex", &da, natsfix_urls(&nc_c), "--export", "t/**", NULL);
  l->im = br_start("im", &db, natsfix_urls(&nc_c), "--import", "t/**", NULL);
  l->a = du_bus(&da);
  pub_bus = l->a;
  l->b = du_bus(&db);
  l->w = sub_on(l->b, "t/warm");
  l->pw = pub_on(l->a, "t/warm");
  probe(l->pw, l->w);
}

static void lpair_end(struct lpair *l) {
  pub_bus = NULL;
  shmbus_bus_close(l->a);
  shmbus_bus_close(l->b);
  br_stop(l->ex);
  br_stop(l->im);
}

/* Two subscribers on bus B get every message of a publisher on bus A,
 * every byte and in order; the bridges count them. */
Test(bridge, fan_out_every_byte_and_sequence) {
  struct lpair l;
  shmbus_sub *subs[2];

  lpair_start(&l);
  subs[0] = sub_on(l.b, "t/data");
  subs[1] = sub_on(l.b, "t/data");
  stream(pub_on(l.a, "t/data"), subs, 2, 5000, 256, 2000);
  stat_wait(l.ex, "topic=t/data", "exported", 5000);
  stat_wait(l.im, "topic=t/data", "imported", 5000);
  cr_assert_eq(stat_last(l.im, "nats=", "refused_headers"), 0);
  lpair_end(&l);
}

static uint64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Publishes 50 messages on `pub` stamped 10 s and more in the past, and one
 * stamped as it is published; `sub`, on the other bus, sees each message's
 * stamp as it was on A (Shmbus-Time there and back, on one host's clocks:
 * within 20 ms), not the moment the importer published it, and never one
 * ahead of its clock. */
static void stamps_cross(shmbus_pub *pub, shmbus_sub *sub) {
  enum { N = 51 };
  const uint64_t ms = 1000000u, ago = 10000 * ms;
  struct shmbus_pub_msg msgs[N];
  uint64_t idx[N], ts[N], now = mono_ns(), base = now > 2 * ago ? now - ago : now / 2;
  uint64_t before, published, got;
  int64_t end;

  for (int i = 0; i < N; i++) {
    idx[i] = (uint64_t)i;
    msgs[i].data = &idx[i];
    msgs[i].len = sizeof(idx[i]);
    ts[i] = i < N - 1 ? base + (uint64_t)i * ms + 7 : 0;
  }
  before = mono_ns();
  cr_assert_eq(shmbus_pub_publish_batch_at(pub, msgs, ts, N), N);
  published = mono_ns();
  end = now_ms() + 10000;
  for (int i = 0; i < N;) {
    struct shmbus_msg_info info;
    uint64_t after;
    int rv = shmbus_sub_recv(sub, &got, sizeof(got), &info, 20);
    if (rv == -ETIMEDOUT) {
      cr_assert_lt(now_ms(), end, "message %d never came", i);
      (void)shmbus_bus_process(pub_bus);
      continue;
    }
    after = mono_ns();
    cr_assert_eq(rv, (int)sizeof(got), "message %d: %d", i, rv);
    cr_assert_eq(got, (uint64_t)i, "message %d came as %" PRIu64, i, got);
    cr_assert_leq(info.ts_ns, after, "message %d: stamp %" PRIu64 " ahead of the clock", i,
                  info.ts_ns);
    if (i < N - 1)
      cr_assert(info.ts_ns + 20 * ms >= ts[i] && info.ts_ns <= ts[i] + 20 * ms,
                "message %d: stamped %" PRIu64 " on A, %" PRIu64 " on B", i, ts[i], info.ts_ns);
    else
      cr_assert(info.ts_ns + 20 * ms >= before && info.ts_ns <= published + 20 * ms,
                "message %d: stamped %" PRIu64 " on B, published in [%" PRIu64 ", %" PRIu64 "]", i,
                info.ts_ns, before, published);
    i++;
  }
}

/* Lossy: the moment a message was published on A is its stamp on B. */
Test(bridge, a_message_keeps_its_moment_across) {
  struct lpair l;
  shmbus_sub *s;

  lpair_start(&l);
  s = sub_on(l.b, "t/time");
  stamps_cross(pub_on(l.a, "t/time"), s);
  stat_wait(l.im, "topic=t/time", "imported", 51);
  cr_assert_eq(stat_last(l.im, "nats=", "refused_headers"), 0);
  cr_assert_eq(stat_last(l.im, "nats=", "stamps_replaced"), 0);
  lpair_end(&l);
}

/* A topic that appears on A after the bridge started is exported, from
 * its first message on (the exporter reads the new topic's ring from its
 * start). */
Test(bridge, pattern_picks_up_a_topic_created_later) {
  struct lpair l;
  shmbus_sub *s;

  lpair_start(&l);
  log_wait(l.ex, "exporting \"t/warm\"", 1);
  cr_assert_eq(log_count(l.ex, "t/late/x"), 0);
  s = sub_on(l.b, "t/late/x");
  stream(pub_on(l.a, "t/late/x"), &s, 1, 200, 200, 1000); /* no probe: nothing may be lost */
  log_wait(l.ex, "exporting \"t/late/x\" to shmbus.t.late.x", 1);
  lpair_end(&l);
}

/* Two bridges export and import the same pattern, one per bus: what is
 * published on one bus reaches the other once and never comes back. */
Test(bridge, no_echo_between_bridges_both_ways) {
  shmbus_bus *a, *b;
  shmbus_sub *sa, *sb, *sab, *sbb, *s;
  shmbus_pub *pa, *pb;
  struct br *ba, *bb;
  char buf[64];

  cluster(1);
  ba = br_start("A", &da, natsfix_urls(&nc_c), "--export", "t/**", "--import", "t/**", NULL);
  bb = br_start("B", &db, natsfix_urls(&nc_c), "--export", "t/**", "--import", "t/**", NULL);
  a = du_bus(&da);
  pub_bus = a;
  b = du_bus(&db);
  s = sub_on(b, "t/warm");
  probe(pub_on(a, "t/warm"), s);
  s = sub_on(a, "t/warm2");
  pub_bus = b;
  probe(pub_on(b, "t/warm2"), s);
  pub_bus = a;

  /* A to B, then B to A, each seen once on both buses. */
  sa = sub_on(a, "t/loop");
  sb = sub_on(b, "t/loop");
  pa = pub_on(a, "t/loop");
  stream(pa, &sb, 1, 100, 100, 64);
  for (int i = 0; i < 100; i++)
    cr_assert_geq(recv_on(sa, buf, sizeof(buf), 5000), 0); /* its own */
  pb = pub_on(b, "t/back");
  sab = sub_on(a, "t/back");
  sbb = sub_on(b, "t/back");
  pub_bus = b;
  stream(pb, &sab, 1, 100, 100, 64);
  pub_bus = a;
  for (int i = 0; i < 100; i++)
    cr_assert_geq(recv_on(sbb, buf, sizeof(buf), 5000), 0);

  /* Each bridge saw what it imported on its bus and did not send it
   * back; each got its own messages back from NATS and dropped them. */
  stat_wait(bb, "topic=t/loop", "skipped_own", 100);
  stat_wait(ba, "topic=t/back", "skipped_own", 100);
  cr_assert_eq(stat_last(bb, "topic=t/loop", "exported"), 0);
  cr_assert_eq(stat_last(ba, "topic=t/back", "exported"), 0);
  stat_wait(ba, "topic=t/loop", "exported", 100);
  stat_wait(bb, "topic=t/back", "exported", 100);
  cr_assert_eq(stat_last(ba, "topic=t/loop", "imported"), 0);
  cr_assert_eq(stat_last(bb, "topic=t/back", "imported"), 0);
  /* Every message came back to its origin once, and was dropped. */
  cr_assert_geq(stat_last(ba, "nats=", "own_origin"), 100);
  cr_assert_geq(stat_last(bb, "nats=", "own_origin"), 100);
  /* Nothing more on either bus than what was published. */
  cr_assert_eq(shmbus_sub_try_recv(sa, buf, sizeof(buf), NULL), -EAGAIN);
  cr_assert_eq(shmbus_sub_try_recv(sb, buf, sizeof(buf), NULL), -EAGAIN);
  cr_assert_eq(shmbus_sub_try_recv(sab, buf, sizeof(buf), NULL), -EAGAIN);
  cr_assert_eq(shmbus_sub_try_recv(sbb, buf, sizeof(buf), NULL), -EAGAIN);
  pub_bus = NULL;
  shmbus_bus_close(a);
  shmbus_bus_close(b);
  br_stop(ba);
  br_stop(bb);
}

/* The importing bridge and then the exporting one are killed (SIGKILL)
 * and started again: the path comes back, and carries every byte. */
Test(bridge, a_bridge_killed_and_restarted) {
  struct lpair l;
  shmbus_sub *s;
  shmbus_pub *p;

  lpair_start(&l);
  s = sub_on(l.b, "t/data");
  p = pub_on(l.a, "t/data");
  stream(p, &s, 1, 500, 100, 1500);

  br_kill(l.im);
  br_run(l.im);
  log_wait(l.im, "bus open", 2);
  probe(l.pw, l.w);
  stream(p, &s, 1, 500, 100, 1500);

  br_kill(l.ex);
  br_run(l.ex);
  log_wait(l.ex, "bus open", 2);
  probe(l.pw, l.w);
  stream(p, &s, 1, 500, 100, 1500);
  lpair_end(&l);
}

/* The NATS server goes away for a while and comes back on the same port:
 * both bridges say so, reconnect, and carry messages again. */
Test(bridge, nats_gone_a_while_and_back) {
  struct lpair l;
  shmbus_sub *s;

  lpair_start(&l);
  cr_assert_eq(natsfix_node_kill(&nc_c, 0), 0);
  log_wait(l.ex, "NATS: disconnected", 1);
  log_wait(l.im, "NATS: disconnected", 1);
  /* Messages published meanwhile may be lost (lossy); the bridge lives. */
  for (int i = 0; i < 100; i++)
    cr_assert_eq(shmbus_pub_publish(l.pw, "meanwhile", 9), 0);
  cr_assert_eq(natsfix_node_restart(&nc_c, 0), 0, "%s", nc_c.err);
  log_wait(l.ex, "NATS: reconnected", 1);
  log_wait(l.im, "NATS: reconnected", 1);
  probe(l.pw, l.w);
  s = sub_on(l.b, "t/data");
  stream(pub_on(l.a, "t/data"), &s, 1, 1000, 250, 1000);
  lpair_end(&l);
}

/* A server that stops reading (SIGSTOP): the exporter's output fills the
 * socket, then libnats's buffer, and the exporter stops reading the topic
 * (buffer_waits) instead of buffering without bound; what its ring
 * overwrote meanwhile is counted lost, so that exported + lost is what was
 * published. The server back, the export goes on: every byte of what
 * follows arrives. */
/* Stops the only server and floods t/flood on bus A until the exporter
 * stops reading it (buffer_waits > 0). Returns the publisher; *published
 * counts what it published. */
static shmbus_pub *flood_until_waiting(struct lpair *l, unsigned char *buf, size_t len,
                                       uint64_t *published) {
  shmbus_pub *p = pub_on(l->a, "t/flood");
  int64_t end;

  memset(buf, 0x5a, len);
  /* The exporter reads the topic from its first message. */
  cr_assert_eq(shmbus_pub_publish(p, buf, len), 0);
  (*published)++;
  log_wait(l->ex, "exporting \"t/flood\"", 1);
  cr_assert_eq(kill(nc_c.node[0].pid, SIGSTOP), 0);
  end = now_ms() + 60000;
  for (;;) {
    int before = log_count(l->ex, "stats: nats=");
    /* 8 MB a round, at the exporter's pace (its ring drops the rest). */
    for (int i = 0; i < 4096; i++) {
      cr_assert_eq(shmbus_pub_publish(p, buf, len), 0);
      (*published)++;
      if (i % 256 == 255) {
        (void)shmbus_bus_process(l->a);
        nap();
      }
    }
    cr_assert_eq(kill(l->ex->pid, SIGUSR1), 0);
    log_wait(l->ex, "stats: nats=", before + 1);
    if (stat_last(l->ex, "topic=t/flood", "buffer_waits") > 0)
      return p;
    if (now_ms() > end) {
      br_print_log(l->ex);
      cr_assert_fail("the exporter never waited for libnats's buffer (%" PRIu64 " published)",
                     *published);
    }
  }
}

Test(bridge, a_stalled_server_holds_the_export_back_and_it_goes_on) {
  static unsigned char buf[2000];
  struct lpair l;
  shmbus_pub *p;
  shmbus_sub *s;
  uint64_t published = 0;
  int64_t end, exported = -1, lost = -1;

  lpair_start(&l);
  p = flood_until_waiting(&l, buf, sizeof(buf), &published);
  /* Waiting (the server still stopped), the exporter reads nothing: twice
   * the ring more is overwritten. */
  for (int i = 0; i < 2 * 4096; i++) {
    cr_assert_eq(shmbus_pub_publish(p, buf, sizeof(buf)), 0);
    published++;
  }
  cr_assert_eq(kill(nc_c.node[0].pid, SIGCONT), 0);
  /* Everything published was read or counted lost, once the export went on. */
  end = now_ms() + 30000;
  for (;;) {
    int before = log_count(l.ex, "stats: nats=");
    cr_assert_eq(kill(l.ex->pid, SIGUSR1), 0);
    log_wait(l.ex, "stats: nats=", before + 1);
    exported = stat_last(l.ex, "topic=t/flood", "exported");
    lost = stat_last(l.ex, "topic=t/flood", "export_lost");
    if (exported >= 0 && lost >= 0 && (uint64_t)(exported + lost) == published)
      break;
    if (now_ms() > end) {
      br_print_log(l.ex);
      cr_assert_fail("exported %" PRId64 " + lost %" PRId64 " != published %" PRIu64, exported,
                     lost, published);
    }
    nap();
  }
  cr_assert_gt(lost, 0, "a stalled export lost nothing of %" PRIu64 "?", published);
  cr_assert_eq(stat_last(l.ex, "topic=t/flood", "export_failed"), 0);
  /* And the path works as before. */
  probe(l.pw, l.w);
  s = sub_on(l.b, "t/after");
  stream(pub_on(l.a, "t/after"), &s, 1, 2000, 250, 2000);
  lpair_end(&l);
}

/* The bridge ends while its export waits for a stalled server: what it
 * did not read is counted lost in its last stats (exported + lost ==
 * published at the end too, not only once it reads again). */
Test(bridge, a_bridge_ended_while_its_export_waits_counts_what_it_did_not_read) {
  static unsigned char buf[2000];
  struct lpair l;
  shmbus_pub *p;
  uint64_t published = 0;
  int64_t exported, lost;

  lpair_start(&l);
  p = flood_until_waiting(&l, buf, sizeof(buf), &published);
  /* Less than a ring more: left unread, not overwritten. */
  for (int i = 0; i < 1000; i++) {
    cr_assert_eq(shmbus_pub_publish(p, buf, sizeof(buf)), 0);
    published++;
  }
  br_stop(l.ex);
  cr_assert_eq(kill(nc_c.node[0].pid, SIGCONT), 0);
  exported = stat_last(l.ex, "topic=t/flood", "exported");
  lost = stat_last(l.ex, "topic=t/flood", "export_lost");
  cr_assert(exported >= 0 && lost >= 1000 && (uint64_t)(exported + lost) == published,
            "at the end: exported %" PRId64 " + lost %" PRId64 " != published %" PRIu64, exported,
            lost, published);
  pub_bus = NULL;
  shmbus_bus_close(l.a);
  shmbus_bus_close(l.b);
  br_stop(l.im);
}

/* 100,000 messages from bus A to bus B through a 3-node cluster, the
 * bridges on different nodes (the messages cross a route): none lost,
 * every byte checked. */
Test(bridge, hundred_thousand_through_a_3_node_cluster) {
  shmbus_bus *a, *b;
  shmbus_sub *s;
  shmbus_pub *p;
  struct br *ex, *im;

  cluster(3);
  ex = br_start("ex", &da, nc_c.node[0].url, "--export", "t/**", NULL);
  im = br_start("im", &db, nc_c.node[2].url, "--import", "t/**", NULL);
  a = du_bus(&da);
  pub_bus = a;
  b = du_bus(&db);
  s = sub_on(b, "t/warm");
  probe(pub_on(a, "t/warm"), s);
  s = sub_on(b, "t/data");
  p = pub_on(a, "t/data");
  stream(p, &s, 1, 100000, 1000, 256);
  stat_wait(ex, "topic=t/data", "exported", 100000);
  stat_wait(im, "topic=t/data", "imported", 100000);
  cr_assert_eq(stat_last(ex, "topic=t/data", "export_lost"), 0);
  cr_assert_eq(stat_last(im, "nats=", "queue_dropped"), 0);
  pub_bus = NULL;
  shmbus_bus_close(a);
  shmbus_bus_close(b);
  br_stop(ex);
  br_stop(im);
}

/* ---- --reliable (JetStream) ------------------------------------------------ */

static void jcluster(int nodes) {
  int rv = natsfix_cluster_start(&nc_c, nodes, true);
  cr_assert_eq(rv, 0, "natsfix_cluster_start(%d, jetstream): %s (%s)", nodes, strerror(-rv),
               nc_c.err);
}

/* A reliable subscriber: the importer waits for it rather than losing. */
static shmbus_sub *rsub_on(shmbus_bus *bus, const char *topic) {
  struct shmbus_sub_opts so = {.topic = big_topic, .reliable = true};
  shmbus_sub *s = NULL;
  int rv = shmbus_sub_open(bus, topic, &so, &s);
  cr_assert_eq(rv, 0, "sub %s: %s", topic, shmbus_strerror(rv));
  return s;
}

/* rstream's received messages when order is not checked: seen[i] = 1
 * (declared above dump_all). */

/* msg_check (message i, the got-th received), with every bridge's log
 * first when it would fail; without order, each index at most once. */
static void rcheck(uint64_t i, const unsigned char *p, int len, size_t max) {
  uint64_t v = UINT64_MAX;

  if (len >= 8)
    memcpy(&v, p, 8);
  if (seen != NULL) {
    if (v >= seen_n || seen[v]) {
      dump_all();
      cr_assert_fail("message %" PRIu64 " (the %" PRIu64 "th received) %s", v, i,
                     v >= seen_n ? "was never sent" : "came twice");
    }
    seen[v] = 1;
    msg_check(v, p, len, max);
    return;
  }
  if (v != i)
    dump_all();
  msg_check(i, p, len, max);
}

/* Something done once the publisher has sent `at` messages (a kill...). */
struct mid {
  uint64_t at;
  void (*fn)(void);
};

/* Sends n messages (lengths 8..max) from pub while receiving them on sub
 * (reliable, on the other bus): every one exactly once, in order, every
 * byte checked. The publisher is held back by the exporter (SHMBUS_EFULL)
 * and runs at most `ahead` messages before the receiver. Each `mids`
 * entry runs when the publisher reaches its count. The receiver's waits
 * are bounded (no progress for 90 s fails). */
static void rstream(shmbus_pub *pub, shmbus_sub *sub, uint64_t n, size_t max, uint64_t ahead,
                    struct mid *mids, int nmids) {
  unsigned char buf[4096];
  uint64_t sent = 0, got = 0;
  int64_t last = now_ms();
  int m = 0;

  /* Across a failure, order is not kept (a resend, a redelivery): every
   * message still comes exactly once. */
  if (nmids > 0) {
    seen = calloc(n, 1);
    cr_assert_not_null(seen);
    seen_n = n;
  }

  while (got < n) {
    bool progress = false;
    int rv;
    /* The publisher hears of subscribers that joined (a restarted
     * exporter) while its bus is handled, as a program's loop would. */
    if (pub_bus != NULL)
      (void)shmbus_bus_process(pub_bus);
    while (m < nmids && sent == mids[m].at) {
      mids[m].fn();
      m++;
      last = now_ms();
    }
    while (sent < n && sent - got < ahead && !(m < nmids && sent == mids[m].at)) {
      size_t len = msg_len(sent, max);
      msg_fill(sent, buf, len);
      rv = shmbus_pub_publish(pub, buf, len);
      if (rv == SHMBUS_EFULL)
        break;
      cr_assert_eq(rv, 0, "publish %" PRIu64 ": %s", sent, shmbus_strerror(rv));
      sent++;
      progress = true;
    }
    while ((rv = shmbus_sub_try_recv(sub, buf, sizeof(buf), NULL)) >= 0) {
      rcheck(got, buf, rv, max);
      got++;
      progress = true;
    }
    cr_assert_eq(rv, -EAGAIN, "receive: %s", shmbus_strerror(rv));
    if (!progress) {
      /* Nothing to do: wait for a message (bounded), the publishers' bus
       * handled meanwhile. */
      rv = recv_on(sub, buf, sizeof(buf), 50);
      if (rv >= 0) {
        rcheck(got, buf, rv, max);
        got++;
        progress = true;
      } else {
        cr_assert_eq(rv, -ETIMEDOUT, "receive: %s", shmbus_strerror(rv));
      }
    }
    if (progress)
      last = now_ms();
    if (now_ms() - last > 90000) {
      dump_all();
      cr_assert_fail("no progress for 90 s: sent %" PRIu64 ", received %" PRIu64, sent, got);
    }
  }
  free(seen);
  seen = NULL;
}

/* After the stream: nothing more comes (no duplicate), however long the
 * bridges run; they are stopped first (what was in flight is done). */
static void nothing_more(shmbus_sub *sub) {
  unsigned char buf[4096];
  int rv = shmbus_sub_try_recv(sub, buf, sizeof(buf), NULL);

  cr_assert_eq(rv, -EAGAIN, "a message more than sent (%d bytes, first 8: %" PRIu64 ")", rv,
               rv >= 8 ? *(uint64_t *)(void *)buf : 0);
}

/* 100,000 messages from bus A to bus B through JetStream on a 3-node
 * cluster (bridges on different nodes), reliable subscribers at both
 * ends: none lost, none twice, every byte checked. */
Test(bridge, reliable_hundred_thousand_through_a_3_node_cluster) {
  shmbus_bus *a, *b;
  shmbus_sub *s;
  shmbus_pub *p;
  struct br *ex, *im;

  jcluster(3);
  a = du_bus(&da);
  pub_bus = a;
  b = du_bus(&db);
  s = rsub_on(b, "t/data");
  p = pub_on(a, "t/data");
  /* The exporter creates the stream, the importer finds it. */
  ex = br_start("ex", &da, nc_c.node[0].url, "--export", "t/**", "--reliable", NULL);
  log_wait(ex, "exporting \"t/data\"", 1);
  im = br_start("im", &db, nc_c.node[2].url, "--import", "t/**", "--reliable", NULL);
  log_wait(im, "subscribed to", 1);
  rstream(p, s, 100000, 256, 20000, NULL, 0);
  stat_wait(ex, "topic=t/data", "exported", 100000);
  stat_wait(ex, "reliable stream=", "in_flight", 0);
  stat_wait(im, "topic=t/data", "imported", 100000);
  cr_assert_eq(stat_last(ex, "reliable stream=", "lost"), 0);
  cr_assert_eq(stat_last(ex, "topic=t/data", "export_lost"), 0);
  cr_assert_eq(stat_last(im, "nats=", "import_dropped"), 0);
  br_stop(ex);
  br_stop(im);
  nothing_more(s);
  /* Made with 3 replicas, by this request or (a loaded cluster answering
   * late) found made after it timed out. */
  cr_assert_eq(log_count(ex, "created stream shmbus for shmbus.>, 3 replicas") +
                   log_count(ex, "stream shmbus (3 replicas) covers shmbus.>"),
               1, "the exporter's log does not say the stream has 3 replicas");
  pub_bus = NULL;
  shmbus_bus_close(a);
  shmbus_bus_close(b);
}

/* --reliable: the moment a message was published on A is its stamp on B. */
Test(bridge, reliable_a_message_keeps_its_moment_across) {
  shmbus_bus *a, *b;
  shmbus_sub *s;
  shmbus_pub *p;
  struct br *ex, *im;

  jcluster(1);
  a = du_bus(&da);
  pub_bus = a;
  b = du_bus(&db);
  s = rsub_on(b, "t/time");
  p = pub_on(a, "t/time");
  ex = br_start("ex", &da, natsfix_urls(&nc_c), "--export", "t/**", "--reliable", NULL);
  log_wait(ex, "exporting \"t/time\"", 1);
  im = br_start("im", &db, natsfix_urls(&nc_c), "--import", "t/**", "--reliable", NULL);
  log_wait(im, "subscribed to", 1);
  stamps_cross(p, s);
  stat_wait(im, "topic=t/time", "imported", 51);
  cr_assert_eq(stat_last(im, "nats=", "refused_headers"), 0);
  cr_assert_eq(stat_last(im, "nats=", "stamps_replaced"), 0);
  br_stop(ex);
  br_stop(im);
  pub_bus = NULL;
  shmbus_bus_close(a);
  shmbus_bus_close(b);
}

/* The reliable pair for the failure tests: bus A's t/data to bus B's
 * (a reliable subscriber), both bridges given every node. */
static struct br *rex, *rim;
static shmbus_bus *ra, *rb;

/* The exporter `ex` (started on a 3-node cluster) made or found the stream
 * with 3 replicas: a node failure leaves a quorum. */
static void three_replicas(const struct br *ex) {
  int n = log_count(ex, "created stream shmbus for shmbus.>, 3 replicas") +
          log_count(ex, "stream shmbus (3 replicas) covers shmbus.>");

  if (n != 1)
    br_print_log(ex);
  cr_assert_eq(n, 1, "the exporter's log does not say the stream has 3 replicas");
}

static void rpair(shmbus_pub **p, shmbus_sub **s) {
  jcluster(3);
  ra = du_bus(&da);
  pub_bus = ra;
  rb = du_bus(&db);
  *s = rsub_on(rb, "t/data");
  *p = pub_on(ra, "t/data");
  rex = br_start("ex", &da, natsfix_urls(&nc_c), "--export", "t/**", "--reliable", NULL);
  log_wait(rex, "exporting \"t/data\"", 1);
  three_replicas(rex);
  rim = br_start("im", &db, natsfix_urls(&nc_c), "--import", "t/**", "--reliable", NULL);
  log_wait(rim, "subscribed to", 1);
}

/* After the stream: the bridges stopped (SIGTERM, exit 0), nothing more on
 * bus B, nothing lost by the exporter. */
static void rdone(shmbus_sub *s) {
  stat_wait(rex, "reliable stream=", "in_flight", 0);
  cr_assert_eq(stat_last(rex, "reliable stream=", "lost"), 0);
  br_stop(rex);
  br_stop(rim);
  nothing_more(s);
  pub_bus = NULL;
  shmbus_bus_close(ra);
  shmbus_bus_close(rb);
}

/* The node a bridge's log says it is connected to (the last line), or -1. */
static int br_node(const struct br *b) {
  char line[1024], url[64] = "";
  FILE *f = fopen(b->log, "r");
  int i;

  if (f == NULL)
    return -1;
  while (fgets(line, sizeof(line), f) != NULL) {
    char *p = strstr(line, "connected to ");
    if (p != NULL && strstr(line, "disconnected") == NULL)
      sscanf(p + 13, "%63s", url);
  }
  fclose(f);
  for (i = 0; i < nc_c.nodes; i++)
    if (strcmp(url, nc_c.node[i].url) == 0)
      return i;
  return -1;
}

/* On a failure: the stream "shmbus" and the importer's consumer "im" as
 * the cluster sees them (best effort, nothing asserted). */
static void js_dump(void) {
  natsConnection *nc = NULL;
  natsOptions *o = NULL;
  jsCtx *js = NULL;
  jsStreamInfo *si = NULL;
  jsConsumerInfo *ci = NULL;
  jsErrCode ec = 0;
  const char *urls[NATSFIX_MAX_NODES];
  int n = 0;

  for (int i = 0; i < nc_c.nodes; i++)
    if (nc_c.node[i].pid > 0)
      urls[n++] = nc_c.node[i].url;
  if (n == 0 || natsOptions_Create(&o) != NATS_OK)
    return;
  if (natsOptions_SetServers(o, urls, n) != NATS_OK || natsConnection_Connect(&nc, o) != NATS_OK ||
      natsConnection_JetStream(&js, nc, NULL) != NATS_OK) {
    fprintf(stderr, "bridge_test: JetStream state unknown (no connection)\n");
    goto out;
  }
  if (js_GetStreamInfo(&si, js, "shmbus", NULL, &ec) == NATS_OK) {
    fprintf(stderr,
            "bridge_test: stream shmbus: %" PRId64 " replicas, msgs %" PRIu64 " first %" PRIu64
            " last %" PRIu64 " leader %s\n",
            si->Config != NULL ? si->Config->Replicas : -1, si->State.Msgs, si->State.FirstSeq,
            si->State.LastSeq,
            si->Cluster != NULL && si->Cluster->Leader != NULL ? si->Cluster->Leader : "?");
    for (int i = 0; si->Cluster != NULL && i < si->Cluster->ReplicasLen; i++) {
      const jsPeerInfo *pi = si->Cluster->Replicas[i];
      fprintf(stderr, "bridge_test:   replica %s current %d offline %d lag %" PRIu64 "\n",
              pi->Name != NULL ? pi->Name : "?", (int)pi->Current, (int)pi->Offline, pi->Lag);
    }
    jsStreamInfo_Destroy(si);
  } else {
    fprintf(stderr, "bridge_test: stream shmbus: no answer (error %d)\n", (int)ec);
  }
  if (js_GetConsumerInfo(&ci, js, "shmbus", "im", NULL, &ec) == NATS_OK) {
    fprintf(stderr,
            "bridge_test: consumer im: delivered c%" PRIu64 "/s%" PRIu64 " ack floor c%" PRIu64
            "/s%" PRIu64 " ack pending %" PRId64 " redelivered %" PRId64 " pending %" PRIu64
            " push bound %d leader %s\n",
            ci->Delivered.Consumer, ci->Delivered.Stream, ci->AckFloor.Consumer,
            ci->AckFloor.Stream, ci->NumAckPending, ci->NumRedelivered, ci->NumPending,
            (int)ci->PushBound,
            ci->Cluster != NULL && ci->Cluster->Leader != NULL ? ci->Cluster->Leader : "?");
    jsConsumerInfo_Destroy(ci);
  }
out:
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  natsOptions_Destroy(o);
}

/* The node that leads the stream "shmbus" (its server name nK), or -1. */
static int stream_leader(void) {
  natsConnection *nc = NULL;
  natsOptions *o = NULL;
  jsCtx *js = NULL;
  jsStreamInfo *si = NULL;
  jsErrCode ec = 0;
  int node = -1;
  const char *urls[NATSFIX_MAX_NODES];

  for (int i = 0; i < nc_c.nodes; i++)
    urls[i] = nc_c.node[i].url;
  cr_assert_eq(natsOptions_Create(&o), NATS_OK);
  cr_assert_eq(natsOptions_SetServers(o, urls, nc_c.nodes), NATS_OK);
  cr_assert_eq(natsConnection_Connect(&nc, o), NATS_OK);
  cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
  if (js_GetStreamInfo(&si, js, "shmbus", NULL, &ec) == NATS_OK) {
    if (si->Cluster != NULL && si->Cluster->Leader != NULL)
      node = natsfix_node_index(&nc_c, si->Cluster->Leader);
    jsStreamInfo_Destroy(si);
  }
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
  natsOptions_Destroy(o);
  return node;
}

static int killed = -1;

static void kill_exporters_node(void) {
  killed = br_node(rex);
  cr_assert_geq(killed, 0, "the exporter's node is unknown");
  fprintf(stderr, "bridge_test: killing n%d, the exporter's node\n", killed);
  cr_assert_eq(natsfix_node_kill(&nc_c, killed), 0);
}

static void kill_stream_leader(void) {
  killed = stream_leader();
  cr_assert_geq(killed, 0, "no stream leader");
  fprintf(stderr, "bridge_test: killing n%d, the stream's leader\n", killed);
  cr_assert_eq(natsfix_node_kill(&nc_c, killed), 0);
}

/* Starts the killed node again. With nats-server 2.10.27 (Debian 13), a
 * restarted node sometimes stays not current (its /healthz) for more than
 * natsfix's 60 s: "not current with the meta leader" (3 of 27 runs of the
 * nodes-killed test in the Debian 13 root, the node killed second), or
 * "stream ... is not current: group node unhealthy" (1 of 15 runs of the
 * stream-leader test). It runs, and the stream keeps its quorum on the
 * other 2 nodes, which is what the tests need of it: that is logged and
 * the test goes on. */
static void restart_killed(void) {
  int rv = natsfix_node_restart(&nc_c, killed);

  if (rv == -ETIMEDOUT && nc_c.node[killed].pid > 0 &&
      (strstr(nc_c.err, "JetStream is not current with the meta leader") != NULL ||
       strstr(nc_c.err, "is not current: group node unhealthy") != NULL)) {
    fprintf(stderr,
            "bridge_test: n%d runs again but is not current after 60 s (nats-server 2.10); going "
            "on with the other 2 nodes\n",
            killed);
    return;
  }
  cr_assert_eq(rv, 0, "%s", nc_c.err);
}

/* --reliable, a NATS node killed mid-stream (the one the exporter is
 * connected to), back later; then the stream's leader killed, back later:
 * 100,000 messages, none lost, none twice, every byte checked. Each kill
 * leaves 2 of the stream's 3 replicas (rpair checks it has 3): a quorum.
 * It once stalled on Debian 13 ("no progress for 90 s: sent 62118,
 * received 57406", the stream holding exactly those 57,406): nats-server
 * 2.10 had formed the cluster's JetStream metadata group without one of
 * the 3 nodes (natsfix now starts such a cluster again), the exporter was
 * refused 3 replicas and made the stream with 2, and the second kill left
 * it without a quorum until the node came back, which the test does only
 * once 20,000 more messages have been sent.
 * Still disabled with libnats 3.5 or later (Debian 13, nats-server
 * 2.10.27): with 3 replicas, that server does not always recover from the
 * first kill and restart. In the Debian 13 root, 6 of 40 runs failed that
 * way: 4 times the node killed second (the stream's and the metadata
 * leader) stayed "not current with the meta leader" for more than 60 s
 * after its restart (restart_killed now goes on then), and twice the
 * other two found no metadata leader and no stream leader after the
 * second kill (everything from the 56,264th or 56,668th message missing;
 * once the node restarted first was still not current). Debian 12
 * (nats-server 2.9) runs it. */
#if NATS_VERSION_NUMBER >= 0x030500
#define NODES_KILLED_SERVER_RECOVERY false
#else
#define NODES_KILLED_SERVER_RECOVERY true
#endif
Test(bridge, reliable_nats_nodes_killed_mid_stream, .disabled = !NODES_KILLED_SERVER_RECOVERY) {
  shmbus_pub *p;
  shmbus_sub *s;
  struct mid mids[] = {{20000, kill_exporters_node},
                       {40000, restart_killed},
                       {60000, kill_stream_leader},
                       {80000, restart_killed}};

  rpair(&p, &s);
  rstream(p, s, 100000, 256, 8000, mids, 4);
  stat_wait(rim, "topic=t/data", "imported", 100000);
  rdone(s);
}

/* --reliable, the case as it reads: one NATS node, the stream's
 * leader, killed mid-stream and started again later: 100,000 messages,
 * none lost, none twice, every byte checked. The leader's kill makes the
 * other two elect a new one while the exporter's publishes wait; the
 * node's restart makes it catch up from them. It runs with every server
 * version (the test above, two kills in a row, only where the server
 * recovers from them). */
Test(bridge, reliable_nats_stream_leader_killed_mid_stream) {
  shmbus_pub *p;
  shmbus_sub *s;
  struct mid mids[] = {{30000, kill_stream_leader}, {60000, restart_killed}};

  rpair(&p, &s);
  rstream(p, s, 100000, 256, 8000, mids, 2);
  stat_wait(rim, "topic=t/data", "imported", 100000);
  rdone(s);
}

/* The logs are appended to across restarts: each waits for one line more. */
static void stop_restart_exporter(void) {
  int n = log_count(rex, "exporting \"t/data\"");

  br_stop(rex);
  br_run(rex);
  log_wait(rex, "exporting \"t/data\"", n + 1);
}

static void stop_restart_importer(void) {
  int n = log_count(rim, "subscribed to");

  br_stop(rim);
  br_run(rim);
  log_wait(rim, "subscribed to", n + 1);
}

/* --reliable, the exporter stopped mid-stream (SIGTERM) and started again,
 * twice: it goes on where the stream left off; none lost, none twice.
 * While no exporter runs, nothing holds the publisher back: the topic's
 * ring (4,096 slots) must still hold what the stream lacks when the next
 * exporter starts, so the publisher runs at most 2,000 messages ahead of
 * bus B (beyond the ring, what was overwritten is lost: the next test). */
Test(bridge, reliable_exporter_stopped_and_restarted_mid_stream) {
  shmbus_pub *p;
  shmbus_sub *s;
  struct mid mids[] = {{15000, stop_restart_exporter}, {35000, stop_restart_exporter}};

  rpair(&p, &s);
  rstream(p, s, 50000, 256, 2000, mids, 2);
  cr_assert_eq(log_count(rex, "sending again from"), 2);
  cr_assert_eq(log_count(rex, "overwritten in the ring"), 0);
  cr_assert_eq(stat_last(rex, "topic=t/data", "export_lost"), 0);
  rdone(s);
}

/* --reliable, the exporter stopped while the publisher runs on further
 * than the topic's ring holds: the restarted exporter counts exactly what
 * was overwritten (export_lost, a log line) and sends what the ring still
 * has; bus B gets each of those once, in order. */
Test(bridge, reliable_exporter_restart_counts_what_the_ring_lost) {
  unsigned char buf[4096];
  shmbus_pub *p;
  shmbus_sub *s;
  uint64_t first, i;
  int rv;

  rpair(&p, &s);
  rstream(p, s, 3000, 256, 1000, NULL, 0);
  stat_wait(rex, "reliable stream=", "in_flight", 0);
  br_stop(rex);
  /* No reliable subscriber on bus A now: nothing holds the publisher. */
  for (i = 3000; i < 13000; i++) {
    size_t len = msg_len(i, 256);
    msg_fill(i, buf, len);
    cr_assert_eq(shmbus_pub_publish(p, buf, len), 0, "publish %" PRIu64, i);
  }
  br_run(rex);
  log_wait(rex, "exporting \"t/data\"", 2);
  rv = recv_on(s, buf, sizeof(buf), 30000);
  cr_assert_geq(rv, 8, "nothing came after the restart: %s", shmbus_strerror(rv));
  memcpy(&first, buf, sizeof(first));
  /* The ring holds its last 4,096 messages at most: the rest is lost. */
  cr_assert(first > 3000 && first <= 13000 - 4096, "first after the restart: %" PRIu64, first);
  msg_check(first, buf, rv, 256);
  stat_wait(rex, "topic=t/data", "export_lost", (int64_t)(first - 3000));
  cr_assert_eq(log_count(rex, "messages lost (counted in export_lost)"), 1);
  for (i = first + 1; i < 13000; i++) {
    rv = recv_on(s, buf, sizeof(buf), 10000);
    cr_assert_geq(rv, 0, "message %" PRIu64 ": %s", i, shmbus_strerror(rv));
    msg_check(i, buf, rv, 256);
  }
  rdone(s);
}

/* --reliable, the importer stopped mid-stream (SIGTERM) and started again,
 * twice: its durable consumer redelivers what it had not acknowledged;
 * none lost, none twice. */
/* With nats-server 2.10 (Debian 13) a push consumer's first delivery to
 * nobody (the importer stopping or starting) was dropped for good at its
 * ack wait; the importer asks for those again (docs/bridge.md, "A
 * nats-server 2.10 bug"). Without that, a few hundred of the 50,000 were
 * lost in about half the runs. */
Test(bridge, reliable_importer_stopped_and_restarted_mid_stream) {
  shmbus_pub *p;
  shmbus_sub *s;
  struct mid mids[] = {{15000, stop_restart_importer}, {35000, stop_restart_importer}};

  rpair(&p, &s);
  rstream(p, s, 50000, 256, 8000, mids, 2);
  cr_assert_eq(log_count(rim, "resuming durable consumer im "), 2);
  rdone(s);
}

/* ---- foreign and malformed messages ----------------------------------- */

static natsConnection *nats_client(void) {
  natsConnection *nc = NULL;
  natsStatus s = natsConnection_ConnectTo(&nc, nc_c.node[0].url);
  cr_assert_eq(s, NATS_OK, "connect: %s", natsStatus_GetText(s));
  return nc;
}

/* Publishes one message with the headers given as key, value pairs (NULL
 * ended; a key given twice is added twice). */
static void nats_send(natsConnection *nc, const char *subject, const void *data, int len, ...) {
  natsMsg *m = NULL;
  const char *k;
  va_list ap;

  cr_assert_eq(natsMsg_Create(&m, subject, NULL, data, len), NATS_OK);
  va_start(ap, len);
  while ((k = va_arg(ap, const char *)) != NULL) {
    const char *v = va_arg(ap, const char *);
    cr_assert_eq(natsMsgHeader_Add(m, k, v), NATS_OK);
  }
  va_end(ap);
  cr_assert_eq(natsConnection_PublishMsg(nc, m), NATS_OK);
  natsMsg_Destroy(m);
}

#define GOODT(topic, origin, seq, time)                                                            \
  "Shmbus-Origin", origin, "Shmbus-Topic", topic, "Shmbus-Seq", seq, "Shmbus-Time", time
#define GOOD(topic, origin, seq) GOODT(topic, origin, seq, "12345")

/* Messages on the bridge's subjects that it did not write, or wrote
 * wrongly, are refused and counted by kind; a well-formed one of another
 * origin goes through; none crashes the bridge. A Shmbus-Time this host's
 * clock cannot hold (1970, 0, 2^64 - 1, an hour ahead) makes the import's
 * time the stamp, counted. */
Test(bridge, malformed_and_foreign_messages_are_refused_and_counted) {
  static char big[5000];
  natsConnection *nc;
  shmbus_bus *b;
  shmbus_sub *s;
  struct br *im;
  char buf[64];
  int64_t rx = 0;
  uint64_t t0 = mono_ns();
  int rv;

  cluster(1);
  im = br_start("im", &db, natsfix_urls(&nc_c), "--import", "t/**", NULL);
  b = du_bus(&db);
  {
    struct shmbus_sub_opts so = {0}; /* the daemon's default topic: 1024-byte slots */
    cr_assert_eq(shmbus_sub_open(b, "t/x", &so, &s), 0);
  }
  nc = nats_client();
  /* Well-formed messages until one arrives: the importer is subscribed. */
  for (int64_t end = now_ms() + 30000;;) {
    nats_send(nc, "shmbus.t.x", "ok", 2, GOOD("t/x", "test", "1"), NULL);
    if (shmbus_sub_recv(s, buf, sizeof(buf), NULL, 100) == 2) {
      rx++;
      break;
    }
    cr_assert_lt(now_ms(), end, "the importer never delivered");
  }
  /* The foreign and the malformed, then a good one that ends the run
   * (one connection: NATS keeps their order, and so does the bridge). */
  nats_send(nc, "shmbus.t.x", "none", 4, NULL);
  nats_send(nc, "shmbus.t.x", "topic", 5, GOOD("t/y", "test", "2"), NULL);
  nats_send(nc, "shmbus.t.x", "seq", 3, GOOD("t/x", "test", "12a"), NULL);
  nats_send(nc, "shmbus.t.x", "origin", 6, GOOD("t/x", "bad name!", "3"), NULL);
  nats_send(nc, "shmbus.t.x", "twice", 5, GOOD("t/x", "test", "3"), "Shmbus-Seq", "4", NULL);
  nats_send(nc, "shmbus.t.a%2e", "escape", 6, GOOD("t/a.", "test", "5"), NULL);
  nats_send(nc, "shmbus.t.%zz", "escape", 6, GOOD("t/x", "test", "6"), NULL);
  nats_send(nc, "shmbus.t.x", "own", 3, GOOD("t/x", "im", "7"), NULL);
  memset(big, 'b', sizeof(big));
  nats_send(nc, "shmbus.t.x", big, (int)sizeof(big), GOOD("t/x", "test", "8"), NULL);
  {
    struct timespec ts;
    char ahead[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(ahead, sizeof(ahead), "%" PRIu64,
             ((uint64_t)ts.tv_sec + 3600u) * 1000000000u + (uint64_t)ts.tv_nsec);
    nats_send(nc, "shmbus.t.x", "ok", 2, GOODT("t/x", "test", "10", "0"), NULL);
    nats_send(nc, "shmbus.t.x", "ok", 2, GOODT("t/x", "test", "11", "18446744073709551615"), NULL);
    nats_send(nc, "shmbus.t.x", "ok", 2, GOODT("t/x", "test", "12", ahead), NULL);
  }
  nats_send(nc, "shmbus.t.x", "end", 3, GOOD("t/x", "test", "9"), NULL);
  for (;;) {
    struct shmbus_msg_info info;
    rv = shmbus_sub_recv(s, buf, sizeof(buf), &info, 10000);
    cr_assert_geq(rv, 0, "the last message never came: %s", shmbus_strerror(rv));
    rx++;
    cr_assert(info.ts_ns >= t0 && info.ts_ns <= mono_ns(),
              "stamp %" PRIu64 " is not the import's time (from %" PRIu64 ")", info.ts_ns, t0);
    if (rv == 3 && memcmp(buf, "end", 3) == 0)
      break;
    cr_assert(rv == 2 && memcmp(buf, "ok", 2) == 0, "a refused message came through");
  }
  stat_wait(im, "nats=", "imported", rx);
  stat_wait(im, "nats=", "stamps_replaced", rx);
  cr_assert_eq(stat_last(im, "nats=", "refused_headers"), 5);
  cr_assert_eq(stat_last(im, "nats=", "refused_subject"), 2);
  cr_assert_eq(stat_last(im, "nats=", "own_origin"), 1);
  cr_assert_eq(stat_last(im, "topic=t/x", "too_big"), 1);
  cr_assert_eq(shmbus_sub_try_recv(s, buf, sizeof(buf), NULL), -EAGAIN);
  natsConnection_Destroy(nc);
  shmbus_bus_close(b);
  br_stop(im);
}

/* A raw NATS client on node 0 (INFO read, CONNECT with headers sent): it
 * writes header blocks that libnats's API cannot (status lines, folded or
 * LF-only lines, control bytes). */
static void raw_write(int fd, const void *p, size_t n) {
  const char *c = p;

  while (n > 0) {
    ssize_t w = write(fd, c, n);
    cr_assert_gt(w, 0, "write to nats-server: %s", strerror(errno));
    c += w;
    n -= (size_t)w;
  }
}

/* One line from the server (its end cut off). */
static void raw_line(int fd, char *line, size_t cap) {
  size_t n = 0;

  for (;;) {
    char ch;
    ssize_t r = read(fd, &ch, 1);
    cr_assert_eq(r, 1, "read from nats-server: %s", r < 0 ? strerror(errno) : "closed");
    if (ch == '\n')
      break;
    if (ch != '\r' && n + 1 < cap)
      line[n++] = ch;
  }
  line[n] = '\0';
}

static int raw_connect(void) {
  static const char connect_line[] =
      "CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"name\":\"raw\"}\r\n";
  struct sockaddr_in a;
  char line[4096];
  int fd = socket(AF_INET, SOCK_STREAM, 0);

  cr_assert_geq(fd, 0);
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons(nc_c.node[0].port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0, "connect: %s", strerror(errno));
  raw_line(fd, line, sizeof(line));
  cr_assert(strncmp(line, "INFO ", 5) == 0, "the server said \"%s\"", line);
  raw_write(fd, connect_line, sizeof(connect_line) - 1);
  return fd;
}

static void raw_hpub(int fd, const char *subject, const char *hdr, const char *payload) {
  char head[256];
  size_t hl = strlen(hdr), pl = strlen(payload);
  int n = snprintf(head, sizeof(head), "HPUB %s %zu %zu\r\n", subject, hl, hl + pl);

  raw_write(fd, head, (size_t)n);
  raw_write(fd, hdr, hl);
  raw_write(fd, payload, pl);
  raw_write(fd, "\r\n", 2);
}

/* Waits until the server has processed everything sent before (PING,
 * PONG); an -ERR fails. */
static void raw_sync(int fd) {
  char line[4096];

  raw_write(fd, "PING\r\n", 6);
  for (;;) {
    raw_line(fd, line, sizeof(line));
    cr_assert(strncmp(line, "-ERR", 4) != 0, "nats-server: %s", line);
    if (strcmp(line, "PONG") == 0)
      return;
  }
}

#define RAW_GOOD(seq)                                                                              \
  "NATS/1.0\r\nShmbus-Origin: test\r\nShmbus-Topic: t/x\r\nShmbus-Seq: " seq                       \
  "\r\nShmbus-Time: 12345\r\n\r\n"

/* Header blocks as they come over the wire, not as libnats writes them:
 * the importer parses them strictly (docs/bridge.md, "Where the time
 * goes"), so blocks libnats's own header map would take (a status line, a
 * folded line, a line ended by LF alone, a control byte in a value) are
 * refused and counted, as is a header given twice; good ones go through. */
Test(bridge, header_blocks_on_the_wire_are_read_strictly) {
  static const char *const bad[] = {
      "NATS/1.0 503\r\nShmbus-Origin: test\r\nShmbus-Topic: t/x\r\nShmbus-Seq: 2\r\n"
      "Shmbus-Time: 1\r\n\r\n",
      "NATS/1.0\r\nX-A: a\r\n b\r\nShmbus-Origin: test\r\nShmbus-Topic: t/x\r\nShmbus-Seq: 3\r\n"
      "Shmbus-Time: 1\r\n\r\n",
      "NATS/1.0\r\nX-A: a\nShmbus-Origin: test\r\nShmbus-Topic: t/x\r\nShmbus-Seq: 4\r\n"
      "Shmbus-Time: 1\r\n\r\n",
      "NATS/1.0\r\nX-A: a\x01z\r\nShmbus-Origin: test\r\nShmbus-Topic: t/x\r\nShmbus-Seq: 5\r\n"
      "Shmbus-Time: 1\r\n\r\n",
      "NATS/1.0\r\nShmbus-Origin: test\r\nShmbus-Topic: t/x\r\nShmbus-Seq: 6\r\nShmbus-Seq: 6\r\n"
      "Shmbus-Time: 1\r\n\r\n",
  };
  shmbus_bus *b;
  shmbus_sub *s;
  struct br *im;
  char buf[64];
  int64_t rx = 0;
  size_t i;
  int fd, rv;

  cluster(1);
  im = br_start("im", &db, natsfix_urls(&nc_c), "--import", "t/**", NULL);
  b = du_bus(&db);
  {
    struct shmbus_sub_opts so = {0};
    cr_assert_eq(shmbus_sub_open(b, "t/x", &so, &s), 0);
  }
  fd = raw_connect();
  for (int64_t end = now_ms() + 30000;;) {
    raw_hpub(fd, "shmbus.t.x", RAW_GOOD("1"), "ok");
    raw_sync(fd);
    if (shmbus_sub_recv(s, buf, sizeof(buf), NULL, 100) == 2) {
      rx++;
      break;
    }
    cr_assert_lt(now_ms(), end, "the importer never delivered");
  }
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    raw_hpub(fd, "shmbus.t.x", bad[i], "bad");
  /* Other headers around ours, spaces and tabs around values: good. */
  raw_hpub(fd, "shmbus.t.x",
           "NATS/1.0\r\nNats-Msg-Id: x\r\nShmbus-Time:\t12345 \r\nShmbus-Seq:7\r\n"
           "Shmbus-Topic:  t/x\r\nX-B: \xc3\xa9\r\nShmbus-Origin: test\r\n\r\n",
           "ok");
  raw_hpub(fd, "shmbus.t.x", RAW_GOOD("8"), "end");
  raw_sync(fd);
  for (;;) {
    rv = shmbus_sub_recv(s, buf, sizeof(buf), NULL, 10000);
    cr_assert_geq(rv, 0, "the last message never came: %s", shmbus_strerror(rv));
    rx++;
    if (rv == 3 && memcmp(buf, "end", 3) == 0)
      break;
    cr_assert(rv == 2 && memcmp(buf, "ok", 2) == 0, "a refused message came through");
  }
  stat_wait(im, "nats=", "imported", rx);
  cr_assert_eq(stat_last(im, "nats=", "refused_headers"), (int64_t)(sizeof(bad) / sizeof(bad[0])));
  cr_assert_eq(shmbus_sub_try_recv(s, buf, sizeof(buf), NULL), -EAGAIN);
  close(fd);
  shmbus_bus_close(b);
  br_stop(im);
}

/* ---- the command line and a late NATS --------------------------------- */

/* Runs the bridge with `args` (NULL ended), its output into `out`;
 * returns its exit status. */
static int br_oneshot(char *out, size_t cap, ...) {
  const char *argv[16];
  char path[128];
  int n = 0, st;
  const char *a;
  va_list ap;
  pid_t pid;
  FILE *f;
  size_t got;

  argv[n++] = SHMBUS_BRIDGE_PATH;
  va_start(ap, cap);
  while ((a = va_arg(ap, const char *)) != NULL && n < 15)
    argv[n++] = a;
  va_end(ap);
  argv[n] = NULL;
  snprintf(path, sizeof(path), "%s/oneshot.out", logdir);
  pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
      _exit(127);
    execv(SHMBUS_BRIDGE_PATH, (char *const *)argv);
    _exit(127);
  }
  st = du_wait(pid);
  cr_assert_not_null(f = fopen(path, "r"));
  got = fread(out, 1, cap - 1, f);
  out[got] = '\0';
  fclose(f);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

Test(bridge, command_line) {
  char out[8192];

  cr_assert_eq(br_oneshot(out, sizeof(out), "--help", NULL), 0);
  cr_assert_not_null(strstr(out, "usage: shmbus-bridge --nats URL"));
  cr_assert_eq(br_oneshot(out, sizeof(out), "--version", NULL), 0);
  cr_assert_not_null(strstr(out, "shmbus-bridge "));
  cr_assert_eq(br_oneshot(out, sizeof(out), "--export", "a/**", NULL), 2);
  cr_assert_not_null(strstr(out, "--nats URL is required"), "%s", out);
  cr_assert_eq(br_oneshot(out, sizeof(out), "--nats", "nats://127.0.0.1:1", NULL), 2);
  cr_assert_not_null(strstr(out, "nothing to do"), "%s", out);
  cr_assert_eq(br_oneshot(out, sizeof(out), "--nats", "x", "--export", "a/b*", NULL), 2);
  cr_assert_not_null(strstr(out, "is not a topic pattern"), "%s", out);
  cr_assert_eq(br_oneshot(out, sizeof(out), "--nats", "x", "--export", "a", "--subject-prefix",
                          "a..b", NULL),
               2);
  cr_assert_eq(br_oneshot(out, sizeof(out), "--nats", "x", "--export", "a", "--name", "a.b", NULL),
               2);
  cr_assert_eq(
      br_oneshot(out, sizeof(out), "--nats", "x", "--export", "a", "--dir", "/x", "--system", NULL),
      2);
  cr_assert_eq(br_oneshot(out, sizeof(out), "--nats", "x", "--export", "a", "--stream", "S", NULL),
               2);
  cr_assert_eq(br_oneshot(out, sizeof(out), "--nats", "x", "--export", "a", "--reliable",
                          "--stream", "a.b", NULL),
               2);
  cr_assert_eq(
      br_oneshot(out, sizeof(out), "--nats", "x", "--export", "a", "--stats-interval", "0", NULL),
      2);
  cr_assert_eq(br_oneshot(out, sizeof(out), "--nats", "x", "--export", "a", "extra", NULL), 2);
  /* A bus directory that does not exist: an error, said. */
  {
    char none[96];
    snprintf(none, sizeof(none), "%s/none", logdir);
    cr_assert_eq(br_oneshot(out, sizeof(out), "--nats", "nats://127.0.0.1:1", "--dir", none,
                            "--export", "a", NULL),
                 1);
  }
  cr_assert_not_null(strstr(out, "cannot open the bus"), "%s", out);
}

/* A bridge started while no NATS server answers keeps trying, with a line
 * per attempt, and works once one is there. */
Test(bridge, starts_before_nats) {
  shmbus_bus *a, *b;
  shmbus_sub *s;
  struct br *ex, *im;

  cluster(1);
  cr_assert_eq(natsfix_node_kill(&nc_c, 0), 0);
  ex = br_start("ex", &da, natsfix_urls(&nc_c), "--export", "t/**", "--stats-interval", "1", NULL);
  im = br_start("im", &db, natsfix_urls(&nc_c), "--import", "t/**", NULL);
  log_wait(ex, "NATS: cannot connect", 2);
  log_wait(im, "NATS: cannot connect", 2);
  cr_assert_eq(natsfix_node_restart(&nc_c, 0), 0, "%s", nc_c.err);
  log_wait(ex, "NATS: connected to", 1);
  log_wait(im, "NATS: connected to", 1);
  a = du_bus(&da);
  pub_bus = a;
  b = du_bus(&db);
  s = sub_on(b, "t/warm");
  probe(pub_on(a, "t/warm"), s);
  /* --stats-interval prints without a signal. */
  log_wait(ex, "stats: topic=t/warm exported=", 1);
  pub_bus = NULL;
  shmbus_bus_close(a);
  shmbus_bus_close(b);
  br_stop(ex);
  br_stop(im);
}

/* ---- the lossy importer's batches ------------------------------------------ */

/* The importer publishes what it reads in runs of one topic: messages of
 * three topics interleaved, with refused ones among them, arrive each on
 * its topic, every one, in order, byte for byte; the refused are counted. */
Test(bridge, interleaved_topics_arrive_in_order_each_on_its_own) {
  static const char *const topics[3] = {"t/i0", "t/i1", "t/i2"};
  static const char *const subjects[3] = {"shmbus.t.i0", "shmbus.t.i1", "shmbus.t.i2"};
  const int per = 2000;
  natsConnection *nc;
  shmbus_bus *b;
  shmbus_sub *s[3];
  struct br *im;
  char buf[64], want[64], seq[24];
  int refused = 0, k, i;

  cluster(1);
  im = br_start("im", &db, natsfix_urls(&nc_c), "--import", "t/**", NULL);
  b = du_bus(&db);
  for (k = 0; k < 3; k++)
    s[k] = sub_on(b, topics[k]);
  nc = nats_client();
  /* Until one arrives: the importer is subscribed. */
  for (int64_t end = now_ms() + 30000;;) {
    nats_send(nc, subjects[0], "ok", 2, GOOD("t/i0", "test", "1"), NULL);
    if (shmbus_sub_recv(s[0], buf, sizeof(buf), NULL, 100) == 2)
      break;
    cr_assert_lt(now_ms(), end, "the importer never delivered");
  }
  /* One connection: NATS keeps the order, in bursts the importer reads together. */
  for (i = 0; i < per; i++)
    for (k = 0; k < 3; k++) {
      int n = snprintf(buf, sizeof(buf), "%d:%d", k, i);
      snprintf(seq, sizeof(seq), "%d", i + 2);
      nats_send(nc, subjects[k], buf, n, GOOD(topics[k], "test", seq), NULL);
      if ((i + k) % 7 == 0) {
        nats_send(nc, subjects[k], "foreign", 7, NULL); /* no headers */
        refused++;
      }
    }
  cr_assert_eq(natsConnection_FlushTimeout(nc, 10000), NATS_OK);
  for (k = 0; k < 3; k++)
    for (i = 0; i < per; i++) {
      int n = snprintf(want, sizeof(want), "%d:%d", k, i);
      int rv = shmbus_sub_recv(s[k], buf, sizeof(buf), NULL, 10000);
      if (k == 0 && rv == 2 && memcmp(buf, "ok", 2) == 0) {
        i--; /* a warm-up message that came after the first */
        continue;
      }
      cr_assert_eq(rv, n, "%s: message %d: %d (%s)", topics[k], i, rv,
                   rv < 0 ? shmbus_strerror(rv) : "another length");
      cr_assert(memcmp(buf, want, (size_t)n) == 0, "%s: message %d: %.*s", topics[k], i, n, buf);
    }
  for (k = 0; k < 3; k++)
    cr_assert_eq(shmbus_sub_try_recv(s[k], buf, sizeof(buf), NULL), -EAGAIN);
  stat_wait(im, "topic=t/i1", "imported", per);
  stat_wait(im, "topic=t/i2", "imported", per);
  stat_wait(im, "nats=", "refused_headers", refused);
  cr_assert_eq(stat_last(im, "nats=", "queue_dropped"), 0);
  natsConnection_Destroy(nc);
  for (k = 0; k < 3; k++)
    shmbus_sub_close(s[k]);
  shmbus_bus_close(b);
  br_stop(im);
}
