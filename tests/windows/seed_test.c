/* seed_test: the seed's scenario on Windows with the real programs, under
 * Wine: shmbusd.exe, and the examples seed_writer.exe and seed_reader.exe
 * (examples/), all from the folder this program runs from (build-windows/bin);
 * then reliable fan-out through the library with the daemon: two
 * subscriber processes in libuv loops (src/uv.c, woken by their named
 * events through src/platform/windows/loop.c) receive every one of
 * FANOUT_N messages in order from a publisher held back by them; a lossy
 * subscriber's accounting is exact (received + lost == published); a
 * subscriber that writes into its slot dies of an access violation and the
 * message stays as published.
 *
 * A private bus (a fresh directory, named to the programs by SHMBUS_DIR);
 * the writer starts the daemon itself (autostart finds shmbusd.exe beside
 * it), publishes one message and stays; the reader, started once the writer
 * said it published, opens the topic by name and reads the message through
 * history. The daemon is then stopped through the API and its process
 * waited for; the bus directory is removed. Every step waits on an event
 * (a line on a pipe, a process's exit), never on time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include <shmbus/shmbus.h>
#include <shmbus/uv.h>
#include <uv.h>

#include "winproc.h"
#include "wintest.h"

#define FANOUT_N 20000
#define FANOUT_TOPIC "fan/out"

static int test_seed_exchange(void) {
  char dir[MAX_PATH], line[256];
  struct winproc w, r;
  DWORD put;
  long code;
  int rv;

  WT_CHECK(winproc_bus_dir_make(dir, sizeof(dir)), "bus directory");
  /* The daemon the writer starts stays until it is stopped. */
  SetEnvironmentVariableA("SHMBUS_IDLE_EXIT", "0");
  WT_CHECK(winproc_start(&w, "shmbus-example-seed-writer.exe", "", true), "start the writer");
  winproc_read_line(&w, line, sizeof(line));
  WT_CHECK(strstr(line, "published \"Message from first process.\"") != NULL, "writer said: %s",
           line);
  WT_CHECK(winproc_start(&r, "shmbus-example-seed-reader.exe", "--timeout 30000", false),
           "start the reader");
  winproc_read_line(&r, line, sizeof(line));
  code = winproc_wait(&r);
  WT_CHECK(code == 0, "reader exit %ld: %s", code, line);
  WT_CHECK(strstr(line, "received \"Message from first process.\" from seed/message") != NULL,
           "reader said: %s", line);
  WT_CHECK(WriteFile(w.in_w, "stop\n", 5, &put, NULL) && put == 5, "tell the writer to stop");
  code = winproc_wait(&w);
  WT_CHECK(code == 0, "writer exit %ld", code);
  rv = winproc_bus_end(dir);
  WT_CHECK(rv == 0, "stopping the daemon: %s", shmbus_strerror(rv));
  return WINTEST_PASS;
}

/* ---- reliable fan-out ------------------------------------------------------ */

/* What message `seq` carries: its number and a mix of it. */
static void fanout_payload(uint32_t seq, uint32_t out[2]) {
  out[0] = seq;
  out[1] = seq * 2654435761u ^ 0x5eedu;
}

struct fanout_sub {
  uv_loop_t loop;
  uv_timer_t bound;
  uint32_t expected; /* the next message's number */
  int failed;        /* 0, or the step that went wrong */
};

static void fanout_on_msg(shmbus_sub *sub, const void *data, size_t len,
                          const struct shmbus_msg_info *info, void *arg) {
  struct fanout_sub *f = arg;
  uint32_t want[2];

  (void)info;
  fanout_payload(f->expected, want);
  if (len != sizeof(want) || memcmp(data, want, sizeof(want)) != 0) {
    f->failed = 20;
    (void)shmbus_uv_sub_stop(sub);
    uv_stop(&f->loop);
    return;
  }
  /* The loop stops after this callback, once the read has ended (so the
   * subscriber's counters include this message). */
  if (++f->expected == FANOUT_N)
    uv_stop(&f->loop);
}

static void fanout_on_bound(uv_timer_t *t) {
  struct fanout_sub *f = t->data;
  f->failed = 21;
  uv_stop(&f->loop);
}

/* child sub: a reliable subscriber of FANOUT_TOPIC on the bus SHMBUS_DIR
 * names, in a libuv loop, until FANOUT_N messages came in order. Exit 0,
 * or the step that failed. */
static int child_sub(void) {
  static struct fanout_sub f;
  struct shmbus_sub_opts so;
  struct shmbus_sub_stats st;
  shmbus_bus *bus = NULL;
  shmbus_sub *sub = NULL;

  memset(&so, 0, sizeof(so));
  so.reliable = true;
  if (uv_loop_init(&f.loop) != 0 || uv_timer_init(&f.loop, &f.bound) != 0)
    return 10;
  f.bound.data = &f;
  if (shmbus_bus_open(&bus, NULL) != 0)
    return 11;
  if (shmbus_sub_open(bus, FANOUT_TOPIC, &so, &sub) != 0)
    return 12;
  if (shmbus_uv_bus_start(bus, &f.loop) != 0 ||
      shmbus_uv_sub_start(sub, &f.loop, fanout_on_msg, &f) != 0)
    return 13;
  /* A bound for a broken test, not a synchronisation. */
  (void)uv_timer_start(&f.bound, fanout_on_bound, 4 * WINPROC_LONG_MS, 0);
  (void)uv_run(&f.loop, UV_RUN_DEFAULT);
  shmbus_sub_stats(sub, &st);
  if (f.failed == 0 && (f.expected != FANOUT_N || st.received != FANOUT_N || st.lost != 0)) {
    fprintf(stderr, "subscriber: %u in order, received %llu, lost %llu of %u\n", f.expected,
            (unsigned long long)st.received, (unsigned long long)st.lost, (unsigned)FANOUT_N);
    f.failed = 14;
  }
  /* Closing the bus closes the subscriber; libuv then closes its handles. */
  shmbus_bus_close(bus);
  uv_close((uv_handle_t *)&f.bound, NULL);
  (void)uv_run(&f.loop, UV_RUN_DEFAULT);
  if (f.failed == 0 && uv_loop_close(&f.loop) != 0)
    f.failed = 15;
  return f.failed;
}

static int bus_private(char *dir, size_t cap, shmbus_bus **bus);

static int test_fanout_reliable(void) {
  struct shmbus_topic_opts to = {64, 64, 4, 1, false};
  shmbus_bus *bus = NULL;
  shmbus_pub *pub = NULL;
  char dir[MAX_PATH];
  HANDLE child[2];
  uint32_t seq, payload[2];
  uint64_t full = 0;
  long code;
  int rv, i;

  rv = bus_private(dir, sizeof(dir), &bus);
  WT_CHECK(rv == 0, "bus open (autostart): %s (%s)", shmbus_strerror(rv),
           shmbus_bus_last_error(NULL));
  rv = shmbus_pub_open(bus, FANOUT_TOPIC, &to, &pub);
  WT_CHECK(rv == 0, "pub open: %s", shmbus_strerror(rv));
  for (i = 0; i < 2; i++)
    WT_CHECK((child[i] = wintest_spawn("sub", NULL)) != NULL, "spawn subscriber %d", i);
  rv = shmbus_pub_wait_subs(pub, 2, WINPROC_LONG_MS);
  WT_CHECK(rv >= 2, "the subscribers did not attach: %s", shmbus_strerror(rv));
  for (seq = 0; seq < FANOUT_N; seq++) {
    fanout_payload(seq, payload);
    while ((rv = shmbus_pub_publish(pub, payload, sizeof(payload))) == SHMBUS_EFULL) {
      full++;
      rv = shmbus_pub_wait(pub, WINPROC_LONG_MS);
      WT_CHECK(rv == 0, "held back for good at %u: %s", seq, shmbus_strerror(rv));
    }
    WT_CHECK(rv == 0, "publish %u: %s", seq, shmbus_strerror(rv));
  }
  for (i = 0; i < 2; i++) {
    code = wintest_join(child[i]);
    WT_CHECK(code == 0, "subscriber %d failed at step %ld", i, code);
  }
  wintest_note("%u messages to 2 reliable subscribers, held back %llu times", (unsigned)FANOUT_N,
               (unsigned long long)full);
  shmbus_pub_close(pub);
  shmbus_bus_close(bus);
  rv = winproc_bus_end(dir);
  WT_CHECK(rv == 0, "stopping the daemon: %s", shmbus_strerror(rv));
  return WINTEST_PASS;
}

/* ---- lossy accounting ----------------------------------------------------------- */

#define LOSSY_TOPIC "lossy/count"

struct lossy_sub {
  uv_loop_t loop;
  uv_timer_t bound;
  uint64_t delivered;
  uint32_t last; /* the last number seen, UINT32_MAX before the first */
  int failed;
};

static void lossy_on_msg(shmbus_sub *sub, const void *data, size_t len,
                         const struct shmbus_msg_info *info, void *arg) {
  struct lossy_sub *f = arg;
  uint32_t got[2], want[2];

  (void)sub;
  (void)info;
  if (len != sizeof(got)) {
    f->failed = 20;
    uv_stop(&f->loop);
    return;
  }
  memcpy(got, data, sizeof(got));
  fanout_payload(got[0], want);
  /* A lossy subscriber may miss messages, never see one twice, out of
   * order, or torn. */
  if (memcmp(got, want, sizeof(got)) != 0 || (f->last != UINT32_MAX && got[0] <= f->last)) {
    f->failed = 21;
    uv_stop(&f->loop);
    return;
  }
  f->last = got[0];
  f->delivered++;
  if (got[0] == FANOUT_N - 1)
    uv_stop(&f->loop); /* the last one: it is never overwritten */
}

static void lossy_on_bound(uv_timer_t *t) {
  struct lossy_sub *f = t->data;
  f->failed = 22;
  uv_stop(&f->loop);
}

/* child lossy: a lossy subscriber of LOSSY_TOPIC in a libuv loop until the
 * last of FANOUT_N messages; then received + lost must be FANOUT_N and
 * received what the callback saw. Prints "received N lost N". */
static int child_lossy(void) {
  static struct lossy_sub f;
  struct shmbus_sub_stats st;
  shmbus_bus *bus = NULL;
  shmbus_sub *sub = NULL;

  f.last = UINT32_MAX;
  if (uv_loop_init(&f.loop) != 0 || uv_timer_init(&f.loop, &f.bound) != 0)
    return 10;
  f.bound.data = &f;
  if (shmbus_bus_open(&bus, NULL) != 0 || shmbus_sub_open(bus, LOSSY_TOPIC, NULL, &sub) != 0)
    return 11;
  if (shmbus_uv_bus_start(bus, &f.loop) != 0 ||
      shmbus_uv_sub_start(sub, &f.loop, lossy_on_msg, &f) != 0)
    return 12;
  (void)uv_timer_start(&f.bound, lossy_on_bound, 4 * WINPROC_LONG_MS, 0);
  (void)uv_run(&f.loop, UV_RUN_DEFAULT);
  shmbus_sub_stats(sub, &st);
  printf("received %llu lost %llu\n", (unsigned long long)st.received, (unsigned long long)st.lost);
  fflush(stdout);
  if (f.failed == 0 && (st.received != f.delivered || st.received + st.lost != FANOUT_N))
    f.failed = 13;
  shmbus_bus_close(bus);
  uv_close((uv_handle_t *)&f.bound, NULL);
  (void)uv_run(&f.loop, UV_RUN_DEFAULT);
  return f.failed;
}

/* Opens a bus on a fresh private directory (autostarting its daemon; the
 * children find it in SHMBUS_DIR). */
static int bus_private(char *dir, size_t cap, shmbus_bus **bus) {
  if (!winproc_bus_dir_make(dir, cap))
    return -EIO;
  return winproc_bus_open(bus, dir, SHMBUS_AUTOSTART_DEFAULT, NULL);
}

static int test_lossy_accounting(void) {
  struct shmbus_topic_opts to = {16, 64, 4, 1, false};
  shmbus_bus *bus = NULL;
  shmbus_pub *pub = NULL;
  char dir[MAX_PATH], args[32], line[128];
  struct winproc child;
  uint32_t seq, payload[2];
  long code;
  int rv;

  rv = bus_private(dir, sizeof(dir), &bus);
  WT_CHECK(rv == 0, "bus open (autostart): %s (%s)", shmbus_strerror(rv),
           shmbus_bus_last_error(NULL));
  rv = shmbus_pub_open(bus, LOSSY_TOPIC, &to, &pub);
  WT_CHECK(rv == 0, "pub open: %s", shmbus_strerror(rv));
  snprintf(args, sizeof(args), "child lossy");
  WT_CHECK(winproc_start(&child, "seed_test.exe", args, false), "spawn the subscriber");
  rv = shmbus_pub_wait_subs(pub, 1, WINPROC_LONG_MS);
  WT_CHECK(rv >= 1, "the subscriber did not attach: %s", shmbus_strerror(rv));
  /* As fast as it goes: a lossy subscriber never holds the publisher. */
  for (seq = 0; seq < FANOUT_N; seq++) {
    fanout_payload(seq, payload);
    rv = shmbus_pub_publish(pub, payload, sizeof(payload));
    WT_CHECK(rv == 0, "publish %u: %s", seq, shmbus_strerror(rv));
  }
  winproc_read_line(&child, line, sizeof(line));
  code = winproc_wait(&child);
  WT_CHECK(code == 0, "the subscriber failed at step %ld: %s", code, line);
  wintest_note("%u published, the subscriber %s", (unsigned)FANOUT_N, line);
  shmbus_pub_close(pub);
  shmbus_bus_close(bus);
  rv = winproc_bus_end(dir);
  WT_CHECK(rv == 0, "stopping the daemon: %s", shmbus_strerror(rv));
  return WINTEST_PASS;
}

/* ---- a subscriber writing its slots --------------------------------------------- */

#define SCRIBBLE_TOPIC "seed/scribble"
#define SCRIBBLE_TEXT "not yours to change"

/* child scribble: views the message in place, as a subscriber, then writes
 * into the slot. The view is read-only: the write must kill this process
 * (STATUS_ACCESS_VIOLATION); exit 0 would say it went through. */
static int child_scribble(void) {
  struct shmbus_sub_opts so;
  struct shmbus_view v;
  shmbus_bus *bus = NULL;
  shmbus_sub *sub = NULL;
  int rv;

  memset(&so, 0, sizeof(so));
  so.history = 1;
  if (shmbus_bus_open(&bus, NULL) != 0 || shmbus_sub_open(bus, SCRIBBLE_TOPIC, &so, &sub) != 0)
    return 10;
  if ((rv = shmbus_sub_view(sub, &v)) != 0)
    return 11;
  if (v.info.len != sizeof(SCRIBBLE_TEXT) || memcmp(v.data, SCRIBBLE_TEXT, v.info.len) != 0)
    return 12;
  /* Casting the const away on purpose: what a broken or hostile subscriber
   * would do. */
  ((volatile char *)(uintptr_t)v.data)[0] = 'X';
  return 0;
}

static int test_subscriber_cannot_write(void) {
  struct shmbus_topic_opts to = {16, 64, 4, 1, false};
  struct shmbus_sub_opts so;
  shmbus_bus *bus = NULL;
  shmbus_pub *pub = NULL;
  shmbus_sub *sub = NULL;
  struct shmbus_msg_info info;
  char dir[MAX_PATH], text[64];
  HANDLE child;
  long code;
  int rv;

  rv = bus_private(dir, sizeof(dir), &bus);
  WT_CHECK(rv == 0, "bus open (autostart): %s (%s)", shmbus_strerror(rv),
           shmbus_bus_last_error(NULL));
  rv = shmbus_pub_open(bus, SCRIBBLE_TOPIC, &to, &pub);
  WT_CHECK(rv == 0, "pub open: %s", shmbus_strerror(rv));
  rv = shmbus_pub_publish(pub, SCRIBBLE_TEXT, sizeof(SCRIBBLE_TEXT));
  WT_CHECK(rv == 0, "publish: %s", shmbus_strerror(rv));
  WT_CHECK((child = wintest_spawn("scribble", NULL)) != NULL, "spawn");
  code = wintest_join(child);
  WT_CHECK((unsigned long)code == 0xC0000005ul,
           "the subscriber's write ended it with %#lx, not "
           "STATUS_ACCESS_VIOLATION",
           (unsigned long)code);
  /* The slot is as published. */
  memset(&so, 0, sizeof(so));
  so.history = 1;
  rv = shmbus_sub_open(bus, SCRIBBLE_TOPIC, &so, &sub);
  WT_CHECK(rv == 0, "sub open: %s", shmbus_strerror(rv));
  rv = shmbus_sub_recv(sub, text, sizeof(text), &info, WINPROC_LONG_MS);
  WT_CHECK(rv == (int)sizeof(SCRIBBLE_TEXT) && memcmp(text, SCRIBBLE_TEXT, (size_t)rv) == 0,
           "the message changed (%d bytes)", rv);
  shmbus_sub_close(sub);
  shmbus_pub_close(pub);
  shmbus_bus_close(bus);
  rv = winproc_bus_end(dir);
  WT_CHECK(rv == 0, "stopping the daemon: %s", shmbus_strerror(rv));
  return WINTEST_PASS;
}

/* ---- the examples that start their own subscribers (uv_spawn) ------------ */

/* Runs the example and reads `n` lines of its output into lines[]; checks
 * its exit code 0. */
static int example_lines(const char *exe, const char *args, char lines[][256], int n) {
  struct winproc p;
  long code;
  int i;

  WT_CHECK(winproc_start(&p, exe, args, false), "start %s", exe);
  for (i = 0; i < n; i++)
    if (winproc_read_line(&p, lines[i], 256) <= 0) {
      /* What it said before it stopped (its stderr comes on the same
       * pipe) and how it ended: all there is to tell a failure by. */
      code = winproc_wait(&p);
      WT_CHECK(false, "%s: line %d missing; it exited %ld; line 1: %s", exe, i + 1, code,
               i > 0 ? lines[0] : "(none)");
    }
  code = winproc_wait(&p);
  WT_CHECK(code == 0, "%s exit %ld; last line: %s", exe, code, lines[n - 1]);
  return WINTEST_PASS;
}

/* Starts an example on a private bus (its daemon autostarted beside it,
 * told never to exit when idle) and reads `n` lines of its output into
 * lines[]; checks its exit code 0. The daemon is stopped whatever
 * happened: left running, it would hold the test's output pipe (Wine
 * gives it the example's standard handles) and the test would end only
 * at ctest's timeout. */
static int run_example(const char *exe, const char *args, char lines[][256], int n) {
  char dir[MAX_PATH];
  int rv, result;

  WT_CHECK(winproc_bus_dir_make(dir, sizeof(dir)), "bus directory");
  SetEnvironmentVariableA("SHMBUS_IDLE_EXIT", "0");
  result = example_lines(exe, args, lines, n);
  rv = winproc_daemon_stop(dir);
  winproc_bus_dir_remove(dir);
  if (result != WINTEST_PASS)
    return result;
  WT_CHECK(rv == 0, "stopping the daemon: %s", shmbus_strerror(rv));
  return WINTEST_PASS;
}

/* uv_fanout: a publisher, three subscriber processes (the program started
 * again), each in a libuv loop; the reliable one gets all 20,000, each
 * lossy one accounts for all of them; every checksum right. */
static int test_example_uv_fanout(void) {
  char lines[5][256];
  int i, subs = 0;

  if (run_example("shmbus-example-uv-fanout.exe", "--subs 3 --messages 20000", lines, 5) !=
      WINTEST_PASS)
    return WINTEST_FAIL;
  WT_CHECK(strstr(lines[0], "3 subscribers listening on \"demo/fanout\"") != NULL, "%s", lines[0]);
  for (i = 1; i < 5; i++) {
    unsigned long long got, lost, bad;
    int id, pid;
    char kind[16];
    if (sscanf(lines[i],
               "subscriber %d (%15[a-z], pid %d): received %llu lost %llu checksum errors %llu",
               &id, kind, &pid, &got, &lost, &bad) == 6) {
      WT_CHECK(got + lost == 20000 && bad == 0, "%s", lines[i]);
      WT_CHECK(strcmp(kind, id == 0 ? "reliable" : "lossy") == 0, "%s", lines[i]);
      if (id == 0)
        WT_CHECK(lost == 0, "the reliable subscriber lost: %s", lines[i]);
      subs++;
    } else {
      WT_CHECK(strstr(lines[i], "publisher: published 20000; every subscriber accounted for "
                                "every message") != NULL,
               "%s", lines[i]);
    }
  }
  WT_CHECK(subs == 3, "%d subscriber lines", subs);
  return WINTEST_PASS;
}

/* reliable: the logger (the program started again) gets all 20,000 in
 * order from a publisher in a libuv loop held back by it. */
static int test_example_reliable(void) {
  char lines[2][256];
  int i, logger = 0;

  if (run_example("shmbus-example-reliable.exe", "--messages 20000", lines, 2) != WINTEST_PASS)
    return WINTEST_FAIL;
  for (i = 0; i < 2; i++)
    if (strstr(lines[i], "logger (reliable, pid ") == lines[i]) {
      WT_CHECK(strstr(lines[i], "): received 20000 lost 0, all in order") != NULL, "%s", lines[i]);
      logger++;
    } else {
      WT_CHECK(strstr(lines[i], "published 20000, waited for the logger") != NULL, "%s", lines[i]);
    }
  WT_CHECK(logger == 1, "no logger line");
  return WINTEST_PASS;
}

static const struct wintest tests[] = {
    {"seed_exchange", test_seed_exchange},
    {"example_uv_fanout", test_example_uv_fanout},
    {"example_reliable", test_example_reliable},
    {"fanout_reliable", test_fanout_reliable},
    {"lossy_accounting", test_lossy_accounting},
    {"subscriber_cannot_write", test_subscriber_cannot_write},
};

static int child_main(int argc, char **argv) {
  if (argc >= 1 && strcmp(argv[0], "sub") == 0)
    return child_sub();
  if (argc >= 1 && strcmp(argv[0], "lossy") == 0)
    return child_lossy();
  if (argc >= 1 && strcmp(argv[0], "scribble") == 0)
    return child_scribble();
  return 2;
}

int main(int argc, char **argv) {
  winproc_find_bin_dir();
  return wintest_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]), child_main);
}
