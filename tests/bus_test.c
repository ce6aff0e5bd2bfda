/* The public topic API against a real shmbusd, with real processes.
 * Children report through pipes and exit codes; only the parent (the
 * Criterion test process) asserts. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "bus.h"
#include "daemonutil.h"
#include "rawclient.h"
#include "platform/platform.h"
#include "shmbus/uv.h"
#include "testutil.h"

static struct du_daemon d;

static void setup(void) {
  memset(&d, 0, sizeof(d));
  du_start(&d);
}

static void teardown(void) {
  du_stop(&d);
}

TestSuite(bus, .init = setup, .fini = teardown, .timeout = 60);
TestSuite(trust, .timeout = 60);

/* What a subscriber child reports to the parent. */
struct report {
  uint64_t received, lost, bad, last_seq;
  int32_t err;
};

/* ---- simple API behaviour --------------------------------------------- */

Test(bus, publish_and_receive_in_one_process) {
  shmbus_bus *bus = du_bus(&d);
  struct shmbus_msg_info info;
  shmbus_pub *pub;
  shmbus_sub *sub;
  char buf[64];
  int rv;

  cr_assert_eq(shmbus_sub_open(bus, "t/one", NULL, &sub), 0);
  cr_assert_eq(shmbus_pub_open(bus, "t/one", NULL, &pub), 0);
  cr_assert_eq(shmbus_sub_try_recv(sub, buf, sizeof(buf), &info), -EAGAIN);
  cr_assert_eq(shmbus_pub_publish(pub, "hello", 6), 0);
  rv = shmbus_sub_recv(sub, buf, sizeof(buf), &info, 1000);
  cr_assert_eq(rv, 6);
  cr_assert_str_eq(buf, "hello");
  cr_assert_eq(info.len, 6);
  cr_assert_gt(info.ts_ns, 0);
  cr_assert_eq(shmbus_sub_recv(sub, buf, sizeof(buf), &info, 50), -ETIMEDOUT);
  shmbus_bus_close(bus);
}

/* shmbus_pub_id is the id stamped into the publisher's messages: two
 * publishers on one topic tell theirs apart (what a bridge needs). */
Test(bus, pub_id_names_the_messages_of_a_publisher) {
  shmbus_bus *bus = du_bus(&d);
  struct shmbus_msg_info info;
  shmbus_pub *p1, *p2;
  shmbus_sub *sub;
  char buf[16];

  cr_assert_eq(shmbus_pub_id(NULL), 0);
  cr_assert_eq(shmbus_sub_open(bus, "t/ids", NULL, &sub), 0);
  cr_assert_eq(shmbus_pub_open(bus, "t/ids", NULL, &p1), 0);
  cr_assert_eq(shmbus_pub_open(bus, "t/ids", NULL, &p2), 0);
  cr_assert_neq(shmbus_pub_id(p1), shmbus_pub_id(p2));
  cr_assert_eq(shmbus_pub_publish(p1, "a", 1), 0);
  cr_assert_eq(shmbus_pub_publish(p2, "b", 1), 0);
  cr_assert_eq(shmbus_sub_recv(sub, buf, sizeof(buf), &info, 1000), 1);
  cr_assert_eq(buf[0], 'a');
  cr_assert_eq(info.pub_id, shmbus_pub_id(p1));
  cr_assert_eq(shmbus_sub_recv(sub, buf, sizeof(buf), &info, 1000), 1);
  cr_assert_eq(buf[0], 'b');
  cr_assert_eq(info.pub_id, shmbus_pub_id(p2));
  shmbus_bus_close(bus);
}

Test(bus, errors_are_clear) {
  struct shmbus_topic_opts a = {64, 128, 8, 4, false};
  struct shmbus_topic_opts b = {128, 128, 8, 4, false};
  struct shmbus_topic_opts half = {64, 0, 0, 0, false};
  shmbus_bus *bus = du_bus(&d);
  shmbus_pub *pub, *pub2;
  char big[200] = {0};

  cr_assert_eq(shmbus_pub_open(bus, "bad//name", NULL, &pub), SHMBUS_EBADNAME);
  cr_assert_eq(shmbus_pub_open(bus, "", NULL, &pub), SHMBUS_EBADNAME);
  cr_assert_eq(shmbus_pub_open(bus, "$sys/stats", NULL, &pub), SHMBUS_EBADNAME);
  cr_assert_eq(shmbus_pub_open(bus, "t/half", &half, &pub), SHMBUS_EPARAM);
  cr_assert_eq(shmbus_pub_open(bus, "t/p", &a, &pub), 0);
  cr_assert_eq(shmbus_pub_open(bus, "t/p", &b, &pub2), SHMBUS_EMISMATCH);
  cr_assert_eq(shmbus_pub_open(bus, "t/p", &a, &pub2), 0, "same parameters are accepted");
  cr_assert_eq(shmbus_pub_max_size(pub), 128);
  cr_assert_eq(shmbus_pub_publish(pub, big, sizeof(big)), SHMBUS_ETOOBIG);
  shmbus_pub_close(pub2);
  shmbus_bus_close(bus);
}

Test(bus, no_daemon_and_no_autostart) {
  struct shmbus_bus_opts o;
  shmbus_bus *bus;

  shmbus_bus_opts_init(&o);
  o.dir = "/tmp/shmbus-test-no-such-dir";
  o.autostart = 0;
  cr_assert_eq(shmbus_bus_open(&bus, &o), SHMBUS_ENODAEMON);
  setenv("SHMBUS_NO_AUTOSTART", "1", 1);
  o.autostart = SHMBUS_AUTOSTART_DEFAULT;
  o.daemon_path = SHMBUSD_PATH;
  cr_assert_eq(shmbus_bus_open(&bus, &o), SHMBUS_ENODAEMON);
  unsetenv("SHMBUS_NO_AUTOSTART");
}

Test(bus, autostart_starts_a_daemon) {
  struct shmbus_bus_opts o;
  shmbus_bus *bus;
  shmbus_pub *pub;
  char dir[64], cmd[128];
  int rv;

  snprintf(dir, sizeof(dir), "/tmp/shmbus-test-XXXXXX");
  cr_assert_not_null(mkdtemp(dir));
  shmbus_bus_opts_init(&o);
  o.dir = dir;
  o.autostart = 1;
  o.daemon_path = SHMBUSD_PATH;
  rv = shmbus_bus_open(&bus, &o);
  cr_assert_eq(rv, 0, "autostart: %s", shmbus_strerror(rv));
  cr_assert_eq(shmbus_pub_open(bus, "t/auto", NULL, &pub), 0);
  cr_assert_eq(shmbus_pub_publish(pub, "x", 1), 0);
  /* Stop the daemon we started: it answers `stop` from its own uid. */
  cr_assert(bus->session.daemon_pid > 0);
  kill((pid_t)bus->session.daemon_pid, SIGTERM);
  shmbus_bus_close(bus);
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  (void)!system(cmd);
}

/* ---- across processes ----------------------------------------------------- */

/* A child that subscribes, tells the parent it listens, receives `count`
 * self-checking messages with blocking recv, and reports. */
static int child_recv(const char *topic, bool reliable, uint32_t history, uint64_t count, int out) {
  struct shmbus_sub_opts so = {0};
  struct report rep = {0};
  struct shmbus_sub_stats st;
  shmbus_bus *bus;
  shmbus_sub *sub;
  struct shmbus_bus_opts o;
  unsigned char buf[4096];
  int rv;

  du_opts(&d, &o);
  so.reliable = reliable;
  so.history = history;
  if ((rv = shmbus_bus_open(&bus, &o)) < 0 || (rv = shmbus_sub_open(bus, topic, &so, &sub)) < 0) {
    rep.err = rv;
    (void)!write(out, &rep, sizeof(rep));
    return 1;
  }
  (void)!write(out, &rep, sizeof(rep)); /* listening */
  while (rep.received < count) {
    uint32_t pub;
    uint64_t seq;
    rv = shmbus_sub_recv(sub, buf, sizeof(buf), NULL, 10000);
    if (rv < 0) {
      rep.err = rv;
      break;
    }
    if (tu_check(buf, (size_t)rv, &pub, &seq) != 0)
      rep.bad++;
    rep.last_seq = seq;
    rep.received++;
    if (seq + 1 == count)
      break;
  }
  shmbus_sub_stats(sub, &st);
  rep.received = st.received;
  rep.lost = st.lost;
  (void)!write(out, &rep, sizeof(rep));
  shmbus_bus_close(bus);
  return 0;
}

static pid_t spawn_receiver(const char *topic, bool reliable, uint32_t history, uint64_t count,
                            int *rfd) {
  int p[2];
  pid_t pid;
  struct report rep;

  cr_assert_eq(pipe(p), 0);
  pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    close(p[0]);
    _exit(child_recv(topic, reliable, history, count, p[1]));
  }
  close(p[1]);
  du_read(p[0], &rep, sizeof(rep));
  cr_assert_eq(rep.err, 0, "child subscribe: %s", shmbus_strerror(rep.err));
  *rfd = p[0];
  return pid;
}

static void publish_checked(shmbus_pub *pub, uint64_t from, uint64_t to, size_t size) {
  unsigned char buf[4096];
  uint64_t i;
  int rv;
  for (i = from; i < to; i++) {
    tu_fill(buf, size, 1, i);
    while ((rv = shmbus_pub_publish(pub, buf, size)) == SHMBUS_EFULL)
      cr_assert_eq(shmbus_pub_wait(pub, 5000), 0, "publisher never became writable");
    cr_assert_eq(rv, 0, "publish: %s", shmbus_strerror(rv));
  }
}

Test(bus, reliable_subscribers_in_other_processes_get_everything) {
  struct shmbus_topic_opts to = {16, 256, 8, 4, false};
  const uint64_t count = 20000;
  shmbus_bus *bus = du_bus(&d);
  shmbus_pub *pub;
  int fds[3];
  pid_t pids[3];
  int i;

  cr_assert_eq(shmbus_pub_open(bus, "t/rel", &to, &pub), 0);
  for (i = 0; i < 3; i++)
    pids[i] = spawn_receiver("t/rel", i < 2, 0, count, &fds[i]);
  publish_checked(pub, 0, count, 64);
  for (i = 0; i < 3; i++) {
    struct report rep;
    du_read(fds[i], &rep, sizeof(rep));
    cr_assert_eq(rep.err, 0, "child %d: %s", i, shmbus_strerror(rep.err));
    cr_assert_eq(rep.bad, 0);
    cr_assert_eq(rep.received + rep.lost, count, "child %d: %lu + %lu", i,
                 (unsigned long)rep.received, (unsigned long)rep.lost);
    if (i < 2)
      cr_assert_eq(rep.lost, 0, "reliable subscriber %d lost %lu", i, (unsigned long)rep.lost);
    cr_assert_eq(du_wait(pids[i]), 0);
    close(fds[i]);
  }
  shmbus_bus_close(bus);
}

Test(bus, late_joiner_reads_history_after_publisher_left) {
  struct shmbus_topic_opts to = {16, 256, 8, 4, true};
  shmbus_bus *bus = du_bus(&d);
  shmbus_pub *pub;
  shmbus_sub *sub;
  struct shmbus_sub_opts so = {0};
  char buf[64];
  int rv;

  cr_assert_eq(shmbus_pub_open(bus, "t/hello", &to, &pub), 0);
  cr_assert_eq(shmbus_pub_publish(pub, "first", 6), 0);
  cr_assert_eq(shmbus_pub_publish(pub, "second", 7), 0);
  shmbus_bus_close(bus); /* the publisher is gone; the topic is retained */

  bus = du_bus(&d);
  so.history = 1;
  cr_assert_eq(shmbus_sub_open(bus, "t/hello", &so, &sub), 0);
  rv = shmbus_sub_recv(sub, buf, sizeof(buf), NULL, 1000);
  cr_assert_eq(rv, 7);
  cr_assert_str_eq(buf, "second");
  cr_assert_eq(shmbus_sub_try_recv(sub, buf, sizeof(buf), NULL), -EAGAIN);
  shmbus_bus_close(bus);
}

/* ---- libuv fan-out ----------------------------------------------------- */

struct uv_child {
  uv_loop_t loop;
  uint64_t count, got, bad;
};

static void uv_child_msg(shmbus_sub *sub, const void *data, size_t len,
                         const struct shmbus_msg_info *info, void *arg) {
  struct uv_child *c = arg;
  uint32_t pub;
  uint64_t seq;
  (void)sub;
  (void)info;
  if (tu_check(data, len, &pub, &seq) != 0)
    c->bad++;
  c->got++;
  if (seq + 1 == c->count)
    uv_stop(&c->loop);
}

static int child_uv(const char *topic, bool reliable, uint64_t count, int out) {
  struct shmbus_sub_opts so = {0};
  struct report rep = {0};
  struct shmbus_sub_stats st;
  struct shmbus_bus_opts o;
  struct uv_child c = {0};
  shmbus_bus *bus;
  shmbus_sub *sub;
  int rv;

  c.count = count;
  so.reliable = reliable;
  du_opts(&d, &o);
  uv_loop_init(&c.loop);
  if ((rv = shmbus_bus_open(&bus, &o)) < 0 || (rv = shmbus_sub_open(bus, topic, &so, &sub)) < 0 ||
      (rv = shmbus_uv_bus_start(bus, &c.loop)) < 0 ||
      (rv = shmbus_uv_sub_start(sub, &c.loop, uv_child_msg, &c)) < 0) {
    rep.err = rv;
    (void)!write(out, &rep, sizeof(rep));
    return 1;
  }
  (void)!write(out, &rep, sizeof(rep));
  uv_run(&c.loop, UV_RUN_DEFAULT);
  shmbus_sub_stats(sub, &st);
  rep.received = st.received;
  rep.lost = st.lost;
  rep.bad = c.bad;
  (void)!write(out, &rep, sizeof(rep));
  shmbus_bus_close(bus);
  uv_run(&c.loop, UV_RUN_DEFAULT);
  rv = uv_loop_close(&c.loop);
  return rv == 0 ? 0 : 2; /* 2: a libuv handle was left open */
}

Test(bus, uv_fan_out_to_eight_subscribers) {
  struct shmbus_topic_opts to = {256, 512, 16, 4, false};
  const uint64_t count = 5000;
  shmbus_bus *bus = du_bus(&d);
  shmbus_pub *pub;
  int fds[8];
  pid_t pids[8];
  int i;

  cr_assert_eq(shmbus_pub_open(bus, "t/fan", &to, &pub), 0);
  for (i = 0; i < 8; i++) {
    int p[2];
    struct report rep;
    cr_assert_eq(pipe(p), 0);
    pids[i] = fork();
    if (pids[i] == 0) {
      close(p[0]);
      _exit(child_uv("t/fan", i % 2 == 0, count, p[1]));
    }
    close(p[1]);
    du_read(p[0], &rep, sizeof(rep));
    cr_assert_eq(rep.err, 0, "uv child %d: %s", i, shmbus_strerror(rep.err));
    fds[i] = p[0];
  }
  publish_checked(pub, 0, count, 100);
  for (i = 0; i < 8; i++) {
    struct report rep;
    du_read(fds[i], &rep, sizeof(rep));
    cr_assert_eq(rep.bad, 0, "child %d saw corrupted payloads", i);
    cr_assert_eq(rep.received + rep.lost, count, "child %d: %lu + %lu", i,
                 (unsigned long)rep.received, (unsigned long)rep.lost);
    if (i % 2 == 0)
      cr_assert_eq(rep.lost, 0, "reliable uv subscriber %d lost messages", i);
    cr_assert_eq(du_wait(pids[i]), 0, "uv child %d exit", i);
    close(fds[i]);
  }
  shmbus_bus_close(bus);
}

/* ---- crashes ------------------------------------------------------------ */

Test(bus, killed_reliable_subscriber_stops_holding_publisher_back) {
  struct shmbus_topic_opts to = {8, 64, 4, 2, false};
  shmbus_bus *bus = du_bus(&d);
  shmbus_pub *pub;
  unsigned char buf[64];
  int fd, i;
  pid_t pid;

  cr_assert_eq(shmbus_pub_open(bus, "t/kill", &to, &pub), 0);
  /* The child subscribes reliably and then waits for more than we send. */
  pid = spawn_receiver("t/kill", true, 0, 1000000, &fd);
  kill(pid, SIGSTOP);
  for (i = 0; i < 8; i++) {
    tu_fill(buf, 64, 1, (uint64_t)i);
    cr_assert_eq(shmbus_pub_publish(pub, buf, 64), 0);
  }
  cr_assert_eq(shmbus_pub_publish(pub, buf, 64), SHMBUS_EFULL,
               "a stopped reliable subscriber holds");
  cr_assert_eq(shmbus_pub_wait(pub, 50), -ETIMEDOUT);
  kill(pid, SIGKILL);
  du_wait(pid);
  close(fd);
  /* The daemon sees the socket close, evicts the record, wakes us. */
  cr_assert_eq(shmbus_pub_wait(pub, 5000), 0);
  for (i = 0; i < 100; i++)
    cr_assert_eq(shmbus_pub_publish(pub, buf, 64), 0);
  shmbus_bus_close(bus);
}

Test(bus, publisher_killed_mid_message_is_repaired) {
  shmbus_bus *bus = du_bus(&d);
  struct shmbus_sub_stats st;
  struct shmbus_msg_info info;
  shmbus_sub *sub;
  shmbus_pub *pub;
  unsigned char buf[64];
  int p[2], rv;
  pid_t pid;

  cr_assert_eq(shmbus_sub_open(bus, "t/crash", NULL, &sub), 0);
  cr_assert_eq(pipe(p), 0);
  pid = fork();
  if (pid == 0) {
    struct shmbus_bus_opts o;
    shmbus_bus *cb;
    shmbus_pub *cp;
    void *slot;
    close(p[0]);
    du_opts(&d, &o);
    if (shmbus_bus_open(&cb, &o) < 0 || shmbus_pub_open(cb, "t/crash", NULL, &cp) < 0 ||
        shmbus_pub_publish(cp, "before", 7) < 0 || shmbus_pub_loan(cp, 8, &slot) < 0)
      _exit(1);
    memcpy(slot, "half", 4);
    (void)!write(p[1], "L", 1);
    raise(SIGKILL); /* between claim and commit */
    _exit(2);
  }
  close(p[1]);
  du_read(p[0], buf, 1);
  close(p[0]);
  cr_assert(WIFSIGNALED(du_wait(pid)));
  rv = shmbus_sub_recv(sub, buf, sizeof(buf), &info, 1000);
  cr_assert_eq(rv, 7);
  cr_assert_str_eq((char *)buf, "before");
  /* Another publisher goes on; the abandoned slot is skipped once the
   * daemon repaired it, and counted lost. */
  cr_assert_eq(shmbus_pub_open(bus, "t/crash", NULL, &pub), 0);
  cr_assert_eq(shmbus_pub_publish(pub, "after", 6), 0);
  rv = shmbus_sub_recv(sub, buf, sizeof(buf), &info, 5000);
  cr_assert_eq(rv, 6, "recv after repair: %s", shmbus_strerror(rv));
  cr_assert_str_eq((char *)buf, "after");
  shmbus_sub_stats(sub, &st);
  cr_assert_eq(st.received, 2);
  cr_assert_eq(st.lost, 1);
  shmbus_bus_close(bus);
}

Test(bus, daemon_restart_loses_nothing_in_reliable_mode) {
  struct shmbus_topic_opts to = {64, 256, 8, 4, false};
  const uint64_t count = 30000;
  shmbus_bus *bus = du_bus(&d);
  shmbus_pub *pub;
  struct report rep;
  int fd;
  pid_t pid;

  cr_assert_eq(shmbus_pub_open(bus, "t/restart", &to, &pub), 0);
  pid = spawn_receiver("t/restart", true, 0, count, &fd);
  publish_checked(pub, 0, count / 3, 64);
  du_kill(&d);
  /* The data path keeps working without a daemon. */
  publish_checked(pub, count / 3, 2 * count / 3, 64);
  du_restart(&d);
  /* Both sides reconnect and re-register by themselves. */
  while (shmbus_bus_process(bus) != 0)
    cr_assert_eq(shmbus__wait_readable(&fd, 1, 10), 0, "child reported early");
  publish_checked(pub, 2 * count / 3, count, 64);
  du_read(fd, &rep, sizeof(rep));
  cr_assert_eq(rep.err, 0, "child: %s", shmbus_strerror(rep.err));
  cr_assert_eq(rep.bad, 0);
  cr_assert_eq(rep.lost, 0);
  cr_assert_eq(rep.received, count);
  cr_assert_eq(du_wait(pid), 0);
  close(fd);
  shmbus_bus_close(bus);
}

/* After a restart the new daemon makes $sys/stats anew, so it cannot adopt
 * the old subscription: the library opens the topic again by itself and the
 * subscriber goes on receiving the new daemon's statistics. */
Test(bus, subscription_the_new_daemon_cannot_adopt_is_reopened) {
  shmbus_bus *bus = du_bus(&d);
  shmbus_sub *sub;
  char buf[65536];
  int rv;

  cr_assert_eq(shmbus_sub_open(bus, "$sys/stats", NULL, &sub), 0);
  rv = shmbus_sub_recv(sub, buf, sizeof(buf), NULL, 5000);
  cr_assert_gt(rv, 0, "first stats: %s", shmbus_strerror(rv));
  du_kill(&d);
  du_restart(&d);
  /* The blocking receive notices the lost daemon, reconnects, re-opens. */
  rv = shmbus_sub_recv(sub, buf, sizeof(buf), NULL, 10000);
  cr_assert_gt(rv, 0, "stats after restart: %s", shmbus_strerror(rv));
  cr_assert(shmbus_bus_connected(bus));
  shmbus_bus_close(bus);
}

/* A subscriber that only ever polls try_recv must still read the events
 * the daemon sends it (publishers coming and going), or its socket fills
 * and the daemon drops it. Its reliable record must survive the churn. */
Test(bus, polling_subscriber_survives_publisher_churn) {
  struct shmbus_topic_opts to = {8, 64, 4, 4, false};
  struct shmbus_sub_opts so = {.reliable = true, .topic = to};
  shmbus_bus *bus = du_bus(&d);
  shmbus_bus *other = du_bus(&d);
  shmbus_sub *sub;
  shmbus_pub *pub;
  char buf[64];
  int i, rv;

  cr_assert_eq(shmbus_sub_open(bus, "t/churn", &so, &sub), 0);
  for (i = 0; i < 1000; i++) {
    cr_assert_eq(shmbus_pub_open(other, "t/churn", &to, &pub), 0);
    shmbus_pub_close(pub);
    cr_assert_eq(shmbus_sub_try_recv(sub, buf, sizeof(buf), NULL), -EAGAIN);
  }
  cr_assert(shmbus_bus_connected(bus));
  cr_assert_eq(shmbus_pub_open(other, "t/churn", &to, &pub), 0);
  for (i = 0; i < 8; i++)
    cr_assert_eq(shmbus_pub_publish(pub, "x", 1), 0);
  cr_assert_eq(shmbus_pub_publish(pub, "x", 1), SHMBUS_EFULL, "the reliable record still holds");
  rv = shmbus_sub_try_recv(sub, buf, sizeof(buf), NULL);
  cr_assert_eq(rv, 1);
  shmbus_bus_close(other);
  shmbus_bus_close(bus);
}

/* Stopping libuv delivery leaves the subscriber whole: its eventfd still
 * works for a blocking receive, and delivery can start again. */
static void count_msg(shmbus_sub *sub, const void *data, size_t len,
                      const struct shmbus_msg_info *info, void *arg) {
  (void)sub;
  (void)data;
  (void)len;
  (void)info;
  ++*(int *)arg;
}

Test(bus, uv_stop_keeps_the_subscriber_usable) {
  shmbus_bus *bus = du_bus(&d);
  shmbus_sub *sub;
  shmbus_pub *pub;
  uv_loop_t loop;
  char buf[16];
  int got = 0;

  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(shmbus_sub_open(bus, "t/uvstop", NULL, &sub), 0);
  cr_assert_eq(shmbus_pub_open(bus, "t/uvstop", NULL, &pub), 0);
  cr_assert_eq(shmbus_uv_sub_start(sub, &loop, count_msg, &got), 0);
  cr_assert_eq(shmbus_uv_sub_stop(sub), 0);
  cr_assert_geq(shmbus_sub_fd(sub), 0);
  cr_assert_eq(shmbus_pub_publish(pub, "one", 4), 0);
  cr_assert_eq(shmbus_sub_recv(sub, buf, sizeof(buf), NULL, 2000), 4);
  cr_assert_eq(shmbus_uv_sub_start(sub, &loop, count_msg, &got), 0);
  cr_assert_eq(shmbus_pub_publish(pub, "two", 4), 0);
  while (got == 0)
    uv_run(&loop, UV_RUN_ONCE);
  cr_assert_eq(got, 1);
  shmbus_bus_close(bus);
  uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&loop), 0, "a libuv handle was left open");
}

/* A subscriber living only in its libuv loop reconnects by itself (from
 * the loop's timer) after the daemon is killed and restarted, and a
 * reliable one loses nothing meanwhile. */
struct uv_restart {
  uv_loop_t loop;
  uint64_t got, bad, want;
};

static void uv_restart_msg(shmbus_sub *sub, const void *data, size_t len,
                           const struct shmbus_msg_info *info, void *arg) {
  struct uv_restart *c = arg;
  uint32_t pub;
  uint64_t seq;
  (void)sub;
  (void)info;
  if (tu_check(data, len, &pub, &seq) != 0 || seq != c->got)
    c->bad++;
  if (++c->got == c->want)
    uv_stop(&c->loop);
}

Test(bus, uv_subscriber_reconnects_after_daemon_restart) {
  struct shmbus_topic_opts to = {64, 128, 4, 4, false};
  const uint64_t count = 3000;
  shmbus_bus *bus = du_bus(&d);
  shmbus_pub *pub;
  struct report rep;
  int p[2];
  pid_t pid;

  cr_assert_eq(shmbus_pub_open(bus, "t/uvre", &to, &pub), 0);
  cr_assert_eq(pipe(p), 0);
  pid = fork();
  if (pid == 0) {
    struct shmbus_sub_opts so = {.reliable = true};
    struct shmbus_bus_opts o;
    struct uv_restart c = {.want = count};
    struct report r = {0};
    shmbus_bus *cb;
    shmbus_sub *cs;
    close(p[0]);
    du_opts(&d, &o);
    uv_loop_init(&c.loop);
    if (shmbus_bus_open(&cb, &o) < 0 || shmbus_sub_open(cb, "t/uvre", &so, &cs) < 0 ||
        shmbus_uv_bus_start(cb, &c.loop) < 0 ||
        shmbus_uv_sub_start(cs, &c.loop, uv_restart_msg, &c) < 0)
      _exit(1);
    (void)!write(p[1], &r, sizeof(r));
    uv_run(&c.loop, UV_RUN_DEFAULT);
    /* Everything arrived; now the connection must come back by itself. */
    while (!shmbus_bus_connected(cb))
      uv_run(&c.loop, UV_RUN_ONCE);
    r.received = c.got;
    r.bad = c.bad;
    shmbus_sub_stats(cs, &(struct shmbus_sub_stats){0});
    (void)!write(p[1], &r, sizeof(r));
    shmbus_bus_close(cb);
    uv_run(&c.loop, UV_RUN_DEFAULT);
    _exit(uv_loop_close(&c.loop) == 0 ? 0 : 2);
  }
  close(p[1]);
  du_read(p[0], &rep, sizeof(rep));
  publish_checked(pub, 0, count / 2, 64);
  du_kill(&d);
  du_restart(&d);
  publish_checked(pub, count / 2, count, 64);
  du_read(p[0], &rep, sizeof(rep));
  cr_assert_eq(rep.received, count);
  cr_assert_eq(rep.bad, 0, "messages out of order or corrupted");
  cr_assert_eq(du_wait(pid), 0, "uv child exit");
  close(p[0]);
  shmbus_bus_close(bus);
}

/* ---- trust boundaries in shared memory (issue 11) ------------------------ */

/* These start their own daemons: a system bus where an attacker of another
 * uid (65534) subscribes with a raw client and scribbles over every byte it
 * can write, or a per-user bus with a test fault armed. */

static struct dt_daemon tr_sys;

static void tr_opts(const char *dir, struct shmbus_bus_opts *o) {
  shmbus_bus_opts_init(o);
  o->dir = dir;
  o->autostart = 0;
}

/* A reliable root subscriber in a child on `dir`: subscribes, says so on
 * `out`, receives `count` self-checking messages, reports. */
static int tr_child_recv(const char *dir, const char *topic, uint64_t count, int out) {
  struct shmbus_sub_opts so = {0};
  struct report rep = {0};
  struct shmbus_sub_stats st;
  struct shmbus_bus_opts o;
  shmbus_bus *bus;
  shmbus_sub *sub;
  unsigned char buf[4096];
  int rv;

  tr_opts(dir, &o);
  so.reliable = true;
  if ((rv = shmbus_bus_open(&bus, &o)) < 0 || (rv = shmbus_sub_open(bus, topic, &so, &sub)) < 0) {
    rep.err = rv;
    (void)!write(out, &rep, sizeof(rep));
    return 1;
  }
  (void)!write(out, &rep, sizeof(rep));
  while (rep.received < count) {
    uint32_t pub;
    uint64_t seq = 0;
    if ((rv = shmbus_sub_recv(sub, buf, sizeof(buf), NULL, 20000)) < 0) {
      rep.err = rv;
      break;
    }
    if (tu_check(buf, (size_t)rv, &pub, &seq) != 0)
      rep.bad++;
    rep.received++;
    if (seq + 1 == count)
      break;
  }
  shmbus_sub_stats(sub, &st);
  rep.received = st.received;
  rep.lost = st.lost;
  (void)!write(out, &rep, sizeof(rep));
  shmbus_bus_close(bus);
  return 0;
}

static pid_t tr_spawn_recv(const char *dir, const char *topic, uint64_t count, int *rfd) {
  struct report rep;
  int p[2];
  pid_t pid;

  cr_assert_eq(pipe(p), 0);
  pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    close(p[0]);
    _exit(tr_child_recv(dir, topic, count, p[1]));
  }
  close(p[1]);
  du_read(p[0], &rep, sizeof(rep));
  cr_assert_eq(rep.err, 0, "child subscribe: %s", shmbus_strerror(rep.err));
  *rfd = p[0];
  return pid;
}

/* The attacker: as uid 65534, subscribes to each topic in `topics` and
 * applies `scribble` to the member file it was given read-write (the only
 * memory it can write), then reports on `out` and waits for a byte on `in`
 * before it exits (closing its connection: its forgeries outlive it). */
typedef void (*tr_scribble_fn)(struct dt_rec *rec);

static void tr_attacker(const char *const *topics, tr_scribble_fn scribble, int in, int out) {
  struct dt_rec rec[4];
  char c = 1;
  int fd;
  int i;

  dt_in_child = true;
  dt_become_nobody();
  fd = dt_client(&tr_sys);
  for (i = 0; topics[i] != NULL; i++) {
    DT_ASSERT(dt_open(fd, topics[i], SHMBUS__ROLE_SUB, NULL, &rec[i]) == 0, "open %s", topics[i]);
    dt_map(&rec[i]);
    scribble(&rec[i]);
  }
  du_write(out, &c, 1);
  du_read(in, &c, 1);
  _exit(0);
}

static pid_t tr_spawn_attacker(const char *const *topics, tr_scribble_fn scribble, int *go) {
  int to[2];
  int from[2];
  char c;
  pid_t pid;

  cr_assert_eq(pipe(to), 0);
  cr_assert_eq(pipe(from), 0);
  pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    close(to[1]);
    close(from[0]);
    tr_attacker(topics, scribble, to[0], from[1]);
  }
  close(to[0]);
  close(from[1]);
  du_read(from[0], &c, 1);
  close(from[0]);
  *go = to[1];
  return pid;
}

static void tr_zero(struct dt_rec *rec) {
  memset(rec->rg.ctrl, 0, rec->rg.ctrl_len);
}

/* H1: a subscriber of another uid zeroes every byte it can write (its
 * member file, magic included). Nobody's open may depend on it: the
 * topic and the retained $sys/stats stay openable, and data flows. */
Test(trust, zeroed_shared_memory_stops_nobody_from_opening, .timeout = 60) {
  static const char *const topics[] = {"h1/t", "$sys/stats", NULL};
  struct shmbus_sub_opts so = {0};
  struct shmbus_bus_opts o;
  shmbus_bus *bus;
  shmbus_pub *pub;
  shmbus_sub *sub;
  shmbus_sub *stats;
  char buf[4096];
  int go;
  pid_t att;

  if (geteuid() != 0)
    cr_skip_test("needs root to run the attacker as another uid");
  dt_start_system(&tr_sys, "allow sub h1/** *\nallow sub $sys/** *\n", NULL);
  /* Subscribing does not create a topic on the system bus: root does. */
  tr_opts(tr_sys.dir, &o);
  cr_assert_eq(shmbus_bus_open(&bus, &o), 0);
  cr_assert_eq(shmbus_pub_open(bus, "h1/t", NULL, &pub), 0);
  att = tr_spawn_attacker(topics, tr_zero, &go);
  cr_assert_eq(shmbus_sub_open(bus, "h1/t", NULL, &sub), 0, "the topic stays openable");
  cr_assert_eq(shmbus_pub_publish(pub, "still here", 11), 0);
  cr_assert_eq(shmbus_sub_recv(sub, buf, sizeof(buf), NULL, 10000), 11);
  cr_assert_str_eq(buf, "still here");
  so.history = 1;
  cr_assert_eq(shmbus_sub_open(bus, "$sys/stats", &so, &stats), 0, "$sys/stats stays openable");
  cr_assert_gt(shmbus_sub_recv(stats, buf, sizeof(buf), NULL, 10000), 0);
  du_write(go, "x", 1);
  cr_assert_eq(dt_wait_exit(att), 0);
  shmbus_bus_close(bus);
  dt_stop(&tr_sys);
  dt_cleanup(&tr_sys);
}

/* Every byte the attacker can write, set to what hurts most: every record
 * reliable at cursor 0 (holding publishers back; taking every free
 * record), every sleeper and summary bit set (a flood of forged bits,
 * also beyond max_subs), tickets moving. */
static void tr_forge(struct dt_rec *rec) {
  struct shmbus__ring *r = &rec->rg.ring;
  struct shmbus__member_hdr *h = r->ctrl;
  uint32_t i;

  for (i = 0; i < r->max_subs; i++) {
    struct shmbus__sub_rec *s = &r->subs[i];
    if (r->own * r->max_subs + i == rec->index)
      continue;
    shmbus__store_relaxed(&s->cursor, 0);
    shmbus__store_relaxed(&s->pid, 1);
    shmbus__store_relaxed(&s->sleep_ticket, 1000 + i);
    shmbus__store_release(&s->state, SHMBUS__SUB_RELIABLE);
  }
  memset((void *)r->sleepers, 0xff, SHMBUS__SUBS_OFFSET - SHMBUS__BITMAP_OFFSET);
  shmbus__store_relaxed(&h->sleep_summary, UINT64_MAX);
  shmbus__fetch_add_seq_cst(&h->gen, 1);
  h->magic = 0;
  h->max_subs = UINT32_MAX;
  h->member = UINT32_MAX;
}

/* M1, M2 (across uids), M3, L1: the attacker forges records and bits in
 * everything it can write, then exits. A reliable subscriber and a
 * publisher of another uid open after it (no ENOSLOT), and the publisher
 * gets every message through to the subscriber (nothing lost): the
 * forged reliable records stop holding it back once the daemon's
 * reconciliation frees them (shown in its log and stats). An ASan build
 * of this test reads every forged index. */
Test(trust, forged_records_and_bits_of_another_uid_harm_nobody, .timeout = 60) {
  static const char *const topics[] = {"m/t", NULL};
  struct shmbus_topic_opts to = {16, 128, 8, 4, false};
  const uint64_t count = 2000;
  struct shmbus_bus_opts o;
  struct report rep;
  shmbus_bus *bus;
  shmbus_pub *pub;
  shmbus_sub *probe;
  int go, rfd, cfd;
  pid_t att, rcv;

  if (geteuid() != 0)
    cr_skip_test("needs root to run the attacker as another uid");
  dt_start_system(&tr_sys, "allow sub m/** *\n", NULL);
  tr_opts(tr_sys.dir, &o);
  cr_assert_eq(shmbus_bus_open(&bus, &o), 0);
  /* The topic is created with small parameters by its publisher's uid. */
  cr_assert_eq(shmbus_sub_open(bus, "m/t", &(struct shmbus_sub_opts){.topic = to}, &probe), 0);
  att = tr_spawn_attacker(topics, tr_forge, &go);
  rcv = tr_spawn_recv(tr_sys.dir, "m/t", count, &rfd);
  cr_assert_eq(shmbus_pub_open(bus, "m/t", &to, &pub), 0);
  /* While the forger is there, reconciliation frees what it forged. */
  publish_checked(pub, 0, count / 2, 64);
  cfd = dt_client(&tr_sys);
  dt_wait_log(&tr_sys, cfd, "is held by no participant", 1);
  dt_wait_log(&tr_sys, cfd, "had sleeper bits beyond its records; cleared", 1);
  /* The forger goes (M3): its uid's member file goes with it, and with it
   * whatever it forged since. */
  du_write(go, "x", 1);
  cr_assert_eq(dt_wait_exit(att), 0);
  dt_wait_log(&tr_sys, cfd, "(uid 65534) released", 1);
  publish_checked(pub, count / 2, count, 64);
  du_read(rfd, &rep, sizeof(rep));
  cr_assert_eq(rep.err, 0, "receiver: %s", shmbus_strerror(rep.err));
  cr_assert_eq(rep.bad, 0);
  cr_assert_eq(rep.received, count);
  cr_assert_eq(rep.lost, 0);
  cr_assert_eq(du_wait(rcv), 0);
  close(cfd);
  close(rfd);
  shmbus_bus_close(bus);
  dt_stop(&tr_sys);
  dt_cleanup(&tr_sys);
}

/* M2 within one uid (accidents: the same uid could ptrace): a
 * co-subscriber downgrades a reliable subscriber's record to lossy, and
 * another frees it; the daemon restores both from its registry. */
Test(trust, changed_record_of_a_registered_subscriber_is_restored, .timeout = 60) {
  struct dt_open_args rel = {NULL, true, 0, false, 0};
  static const struct shmbus__params small = {16, 64, 8, 4};
  struct dt_rec victim;
  struct dt_rec co;
  struct shmbus__sub_rec *rec;
  uint32_t i;
  int fd;

  rel.params = &small;
  dt_start(&tr_sys);
  fd = dt_client(&tr_sys);
  cr_assert_eq(dt_open_ex(fd, "m2/t", SHMBUS__ROLE_SUB, &rel, &victim, NULL), 0);
  cr_assert_eq(dt_open(fd, "m2/t", SHMBUS__ROLE_SUB, &small, &co), 0);
  dt_map(&co);
  rec = shmbus__ring_sub_rec(&co.rg.ring, victim.index);
  cr_assert_not_null(rec, "the same uid: the same member file");
  shmbus__store_release(&rec->state, SHMBUS__SUB_LOSSY);
  dt_wait_log(&tr_sys, fd, "was changed by someone else; restored", 1);
  cr_assert_eq(shmbus__load_acquire(&rec->state), SHMBUS__SUB_RELIABLE);
  shmbus__store_release(&rec->state, SHMBUS__SUB_FREE);
  dt_wait_log(&tr_sys, fd, "was changed by someone else; restored", 2);
  cr_assert_eq(shmbus__load_acquire(&rec->state), SHMBUS__SUB_RELIABLE);
  /* Records nobody holds are freed (and their sleeper bits cleared). */
  for (i = 0; i < co.rg.ring.max_subs; i++)
    if (i != victim.index && i != co.index)
      shmbus__store_release(&co.rg.ring.subs[i].state, SHMBUS__SUB_RELIABLE);
  dt_wait_log(&tr_sys, fd, "is held by no participant", 6);
  for (i = 0; i < co.rg.ring.max_subs; i++)
    if (i != victim.index && i != co.index)
      cr_assert_eq(shmbus__load_acquire(&co.rg.ring.subs[i].state), SHMBUS__SUB_FREE);
  dt_rec_close(&co);
  dt_rec_close(&victim);
  close(fd);
  dt_stop(&tr_sys);
  dt_cleanup(&tr_sys);
}

/* The lost wake-up: with every peer_join delayed (SHMBUSD_FAULT, a test
 * hook), a publisher that fills the ring and waits, and a reliable libuv
 * subscriber that reads and sleeps before it knows the publisher's
 * eventfd, must never stall: the subscriber signals the waiting publisher
 * once the peer_join arrives. Bounded by the publisher's 5 s wait per
 * EFULL (it failed there before the fix). */
Test(trust, delayed_peer_join_never_stalls_a_reliable_uv_subscriber, .timeout = 60) {
  struct shmbus_topic_opts to = {16, 128, 4, 2, true};
  const uint64_t count = 400;
  struct report rep;
  shmbus_bus *bus;
  shmbus_pub *pub;
  int p[2];
  pid_t pid;

  memset(&d, 0, sizeof(d));
  du_start_fault(&d, "delay_peer_join:300");
  /* The topic exists (retained) before either side opens it; the bus that
   * created it is closed before the fork, so the child inherits none of it. */
  bus = du_bus(&d);
  cr_assert_eq(shmbus_pub_open(bus, "lw/t", &to, &pub), 0);
  shmbus_pub_close(pub);
  shmbus_bus_close(bus);
  cr_assert_eq(pipe(p), 0);
  pid = fork();
  if (pid == 0) {
    close(p[0]);
    _exit(child_uv("lw/t", true, count, p[1]));
  }
  close(p[1]);
  bus = du_bus(&d);
  du_read(p[0], &rep, sizeof(rep));
  cr_assert_eq(rep.err, 0, "uv child: %s", shmbus_strerror(rep.err));
  cr_assert_eq(shmbus_pub_open(bus, "lw/t", &to, &pub), 0);
  publish_checked(pub, 0, count, 64);
  du_read(p[0], &rep, sizeof(rep));
  cr_assert_eq(rep.bad, 0);
  cr_assert_eq(rep.received, count);
  cr_assert_eq(rep.lost, 0);
  cr_assert_eq(du_wait(pid), 0);
  close(p[0]);
  shmbus_bus_close(bus);
  du_stop(&d);
}

/* The reliable deadline: a SIGSTOPped reliable subscriber that asked for
 * 200 ms holds the publisher back for that long, then the publisher goes
 * on and overwrites; resumed, the subscriber counts what it missed (lost,
 * demoted) and received + lost still adds up. */
Test(trust, stopped_reliable_subscriber_lets_a_publisher_go_after_its_deadline, .timeout = 60) {
  struct shmbus_topic_opts to = {16, 128, 4, 2, false};
  const uint64_t count = 200;
  struct shmbus_sub_opts so = {0};
  struct shmbus_sub_stats st;
  struct report rep = {0};
  shmbus_bus *bus;
  shmbus_pub *pub;
  int p[2];
  int status;
  pid_t pid;

  memset(&d, 0, sizeof(d));
  du_start(&d);
  bus = du_bus(&d);
  cr_assert_eq(shmbus_pub_open(bus, "dl/t", &to, &pub), 0);
  cr_assert_eq(pipe(p), 0);
  pid = fork();
  if (pid == 0) {
    struct shmbus_bus_opts o;
    shmbus_bus *cb;
    shmbus_sub *sub;
    unsigned char buf[256];
    uint64_t seq = 0;
    uint32_t pubid;
    int rv;
    close(p[0]);
    du_opts(&d, &o);
    so.reliable = true;
    so.deadline_ms = 200;
    if ((rv = shmbus_bus_open(&cb, &o)) < 0 || (rv = shmbus_sub_open(cb, "dl/t", &so, &sub)) < 0) {
      rep.err = rv;
      (void)!write(p[1], &rep, sizeof(rep));
      _exit(1);
    }
    (void)!write(p[1], &rep, sizeof(rep));
    raise(SIGSTOP); /* the parent sees it stopped (waitpid), then publishes */
    while (seq + 1 < count) {
      if ((rv = shmbus_sub_recv(sub, buf, sizeof(buf), NULL, 20000)) < 0) {
        rep.err = rv;
        break;
      }
      if (tu_check(buf, (size_t)rv, &pubid, &seq) != 0)
        rep.bad++;
    }
    shmbus_sub_stats(sub, &st);
    rep.received = st.received;
    rep.lost = st.lost;
    rep.last_seq = st.demoted;
    (void)!write(p[1], &rep, sizeof(rep));
    shmbus_bus_close(cb);
    _exit(0);
  }
  close(p[1]);
  du_read(p[0], &rep, sizeof(rep));
  cr_assert_eq(rep.err, 0, "child subscribe: %s", shmbus_strerror(rep.err));
  cr_assert_eq(waitpid(pid, &status, WUNTRACED), pid);
  cr_assert(WIFSTOPPED(status));
  cr_assert_eq(shmbus_pub_wait_subs(pub, 1, 10000), 1);
  publish_checked(pub, 0, count, 64);
  cr_assert_gt(shmbus_pub_deadline_overwrites(pub), 0, "it overwrote what the stopped one missed");
  cr_assert_eq(kill(pid, SIGCONT), 0);
  du_read(p[0], &rep, sizeof(rep));
  cr_assert_eq(rep.err, 0, "child: %s", shmbus_strerror(rep.err));
  cr_assert_eq(rep.bad, 0);
  cr_assert_eq(rep.received + rep.lost, count, "%lu + %lu", (unsigned long)rep.received,
               (unsigned long)rep.lost);
  cr_assert_gt(rep.lost, 0);
  cr_assert_geq(rep.last_seq, 1, "demoted at least once");
  cr_assert_eq(du_wait(pid), 0);
  close(p[0]);
  shmbus_bus_close(bus);
  du_stop(&d);
}

/* Stopping and starting libuv delivery again on the same subscriber and
 * loop, from every place a program may do it: the subscriber's own
 * callback, a timer's, a uv_async's, another subscriber's (while this
 * one's wake-up may be pending in the same poll batch), and outside
 * uv_run. A publisher idle handle keeps publishing (so wake-ups arrive
 * while delivery restarts); every message arrives once, in order. */
enum restart_from { RS_OWN, RS_TIMER, RS_ASYNC, RS_OTHER, RS_OUTSIDE };

struct restart {
  uv_loop_t loop;
  uv_idle_t publish;
  uv_timer_t timer;
  uv_async_t async;
  shmbus_sub *sub, *other;
  shmbus_pub *pub, *opub;
  enum restart_from from;
  bool reliable;
  uint64_t sent, got, next, bad, want, restarts;
  int err;
};

static void restart_msg(shmbus_sub *sub, const void *data, size_t len,
                        const struct shmbus_msg_info *info, void *arg);

static void restart_now(struct restart *c) {
  int rv;
  if ((rv = shmbus_uv_sub_stop(c->sub)) < 0 && c->err == 0)
    c->err = rv;
  if ((rv = shmbus_uv_sub_start(c->sub, &c->loop, restart_msg, c)) < 0 && c->err == 0)
    c->err = rv;
  if (c->err != 0)
    uv_stop(&c->loop);
  c->restarts++;
}

static void restart_timer(uv_timer_t *t) {
  restart_now(t->data);
}

static void restart_async(uv_async_t *a) {
  restart_now(a->data);
}

static void restart_msg(shmbus_sub *sub, const void *data, size_t len,
                        const struct shmbus_msg_info *info, void *arg) {
  struct restart *c = arg;
  uint32_t pub;
  uint64_t seq;
  (void)sub;
  (void)info;
  /* A lossy subscriber may miss messages (counted in its stats), never
   * see one twice or out of order. */
  if (tu_check(data, len, &pub, &seq) != 0 || seq < c->next || (c->reliable && seq != c->next))
    c->bad++;
  c->next = seq + 1;
  c->got++;
  if (c->next == c->want) {
    uv_stop(&c->loop);
    return;
  }
  if (c->got % 7 != 0)
    return;
  switch (c->from) {
  case RS_OWN:
    restart_now(c);
    break;
  case RS_TIMER:
    (void)uv_timer_start(&c->timer, restart_timer, 0, 0);
    break;
  case RS_ASYNC:
    (void)uv_async_send(&c->async);
    break;
  case RS_OTHER:
    (void)shmbus_pub_publish(c->opub, "x", 1);
    break;
  case RS_OUTSIDE:
    uv_stop(&c->loop);
    break;
  }
}

static void restart_other_msg(shmbus_sub *sub, const void *data, size_t len,
                              const struct shmbus_msg_info *info, void *arg) {
  (void)sub;
  (void)data;
  (void)len;
  (void)info;
  restart_now(arg);
}

static void restart_publish(uv_idle_t *idle) {
  struct restart *c = idle->data;
  char buf[32];
  int i;
  for (i = 0; i < 3 && c->sent < c->want; i++) {
    tu_fill(buf, sizeof(buf), 1, c->sent);
    if (shmbus_pub_publish(c->pub, buf, sizeof(buf)) != 0)
      break;
    c->sent++;
  }
  if (c->sent == c->want)
    (void)uv_idle_stop(idle);
}

static void restart_run(enum restart_from from, bool reliable, bool inplace) {
  struct shmbus_topic_opts to = {64, 64, 4, 4, false};
  struct shmbus_sub_opts so = {.reliable = reliable, .topic = to};
  shmbus_bus *bus = du_bus(&d);
  struct restart c = {.from = from, .reliable = reliable, .want = 3000};

  cr_assert_eq(uv_loop_init(&c.loop), 0);
  cr_assert_eq(shmbus_sub_open(bus, "t/restart", &so, &c.sub), 0);
  cr_assert_eq(shmbus_pub_open(bus, "t/restart", &to, &c.pub), 0);
  cr_assert_eq(shmbus_sub_open(bus, "t/restart-other", NULL, &c.other), 0);
  cr_assert_eq(shmbus_pub_open(bus, "t/restart-other", NULL, &c.opub), 0);
  cr_assert_eq(uv_idle_init(&c.loop, &c.publish), 0);
  cr_assert_eq(uv_timer_init(&c.loop, &c.timer), 0);
  cr_assert_eq(uv_async_init(&c.loop, &c.async, restart_async), 0);
  c.publish.data = c.timer.data = c.async.data = &c;
  cr_assert_eq(uv_idle_start(&c.publish, restart_publish), 0);
  if (inplace)
    cr_assert_eq(shmbus_uv_sub_start_inplace(c.sub, &c.loop, restart_msg, &c), 0);
  else
    cr_assert_eq(shmbus_uv_sub_start(c.sub, &c.loop, restart_msg, &c), 0);
  cr_assert_eq(shmbus_uv_sub_start(c.other, &c.loop, restart_other_msg, &c), 0);
  while (c.next < c.want && c.err == 0) {
    uv_run(&c.loop, UV_RUN_DEFAULT);
    if (from == RS_OUTSIDE && c.next < c.want)
      restart_now(&c);
  }
  cr_assert_eq(c.err, 0, "restart: %s", shmbus_strerror(c.err));
  cr_assert_eq(c.bad, 0, "%" PRIu64 " messages out of order", c.bad);
  cr_assert_gt(c.restarts, 100);
  {
    struct shmbus_sub_stats st;
    shmbus_sub_stats(c.sub, &st);
    cr_assert_eq(st.received, c.got);
    cr_assert_eq(st.received + st.lost, c.want);
    if (reliable)
      cr_assert_eq(st.lost, 0);
  }
  shmbus_bus_close(bus);
  uv_close((uv_handle_t *)&c.publish, NULL);
  uv_close((uv_handle_t *)&c.timer, NULL);
  uv_close((uv_handle_t *)&c.async, NULL);
  uv_run(&c.loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&c.loop), 0, "a libuv handle was left open");
}

Test(bus, uv_restart_from_own_callback) {
  restart_run(RS_OWN, false, false);
}
Test(bus, uv_restart_from_own_callback_reliable) {
  restart_run(RS_OWN, true, false);
}
Test(bus, uv_restart_from_own_callback_inplace) {
  restart_run(RS_OWN, false, true);
}
Test(bus, uv_restart_from_timer) {
  restart_run(RS_TIMER, false, false);
}
Test(bus, uv_restart_from_timer_reliable) {
  restart_run(RS_TIMER, true, false);
}
Test(bus, uv_restart_from_async) {
  restart_run(RS_ASYNC, false, false);
}
Test(bus, uv_restart_from_async_reliable) {
  restart_run(RS_ASYNC, true, false);
}
Test(bus, uv_restart_from_another_subscriber) {
  restart_run(RS_OTHER, false, false);
}
Test(bus, uv_restart_from_another_subscriber_reliable) {
  restart_run(RS_OTHER, true, false);
}
Test(bus, uv_restart_from_outside_the_loop) {
  restart_run(RS_OUTSIDE, false, false);
}
Test(bus, uv_restart_from_outside_the_loop_reliable) {
  restart_run(RS_OUTSIDE, true, false);
}

/* ---- reliable subscribers that come and go ------------------------------ */

/* What the bridge's exporter does across restarts: a reliable subscriber
 * holds the publisher back, closes (a clean exit), the publisher runs on
 * freely, and the next reliable subscriber opens with the whole ring as
 * history and must read everything from the oldest slot on to the newest,
 * then everything published after it; three times, on one topic. */
Test(bus, reliable_subscribers_come_and_go_with_history) {
  struct shmbus_topic_opts to = {64, 256, 8, 4, false};
  struct shmbus_sub_opts so = {.reliable = true, .history = 64};
  shmbus_bus *bus = du_bus(&d), *sbus;
  shmbus_pub *pub;
  shmbus_sub *sub;
  unsigned char buf[256];
  uint64_t next = 0;

  cr_assert_eq(shmbus_pub_open(bus, "t/relay", &to, &pub), 0);
  for (int round = 0; round < 3; round++) {
    uint64_t want, seq = 0;
    uint32_t id;
    int rv;
    sbus = du_bus(&d);
    cr_assert_eq(shmbus_sub_open(sbus, "t/relay", &so, &sub), 0);
    /* History: the last min(64, next) messages, in order. */
    want = next >= 64 ? next - 64 : 0;
    while ((rv = shmbus_sub_try_recv(sub, buf, sizeof(buf), NULL)) >= 0) {
      cr_assert_eq(tu_check(buf, (size_t)rv, &id, &seq), 0);
      cr_assert_eq(seq, want, "round %d: history gave seq %" PRIu64 ", not %" PRIu64, round, seq,
                   want);
      want++;
    }
    cr_assert_eq(rv, -EAGAIN);
    cr_assert_eq(want, next, "round %d: history ended at %" PRIu64 " of %" PRIu64, round, want,
                 next);
    /* Held back: the ring fills (64 slots), then EFULL until we read. */
    for (int k = 0; k < 1000; k++) {
      tu_fill(buf, 64, 1, next);
      rv = shmbus_pub_publish(pub, buf, 64);
      if (rv == SHMBUS_EFULL) {
        rv = shmbus_sub_try_recv(sub, buf, sizeof(buf), NULL);
        cr_assert_geq(rv, 0, "round %d: EFULL with nothing to read: %s", round,
                      shmbus_strerror(rv));
        cr_assert_eq(tu_check(buf, (size_t)rv, &id, &seq), 0);
        cr_assert_eq(seq, want, "round %d: got %" PRIu64 ", not %" PRIu64, round, seq, want);
        want++;
        continue;
      }
      cr_assert_eq(rv, 0, "publish: %s", shmbus_strerror(rv));
      next++;
    }
    /* Closed with up to 64 unread: the publisher is free again. */
    shmbus_bus_close(sbus);
    for (int k = 0; k < 500; k++) {
      tu_fill(buf, 64, 1, next);
      cr_assert_eq(shmbus_pub_publish(pub, buf, 64), 0, "round %d: held back after the close",
                   round);
      next++;
    }
  }
  shmbus_bus_close(bus);
}

/* ---- batches ------------------------------------------------------------- */

/* Whether the subscriber's wake-up descriptor is readable now (signalled). */
static bool sub_signalled(shmbus_sub *sub) {
  struct pollfd p = {.fd = shmbus_sub_fd(sub), .events = POLLIN};
  return poll(&p, 1, 0) == 1;
}

/* A batch signals a sleeping subscriber once, after its last message, and
 * an awake one never; every message arrives, in order, each checked. */
Test(bus, a_batch_signals_each_sleeper_once) {
  struct shmbus_topic_opts to = {256, 256, 8, 4, false};
  shmbus_bus *bus = du_bus(&d);
  shmbus_pub *pub;
  shmbus_sub *sub;
  struct shmbus_pub_stats st;
  struct shmbus_pub_msg msgs[100];
  unsigned char data[100][64], buf[256];
  uint64_t next = 0, seq;
  uint32_t id;
  int rv;

  cr_assert_eq(shmbus_pub_open(bus, "t/batch", &to, &pub), 0);
  cr_assert_eq(shmbus_sub_open(bus, "t/batch", NULL, &sub), 0);
  for (int round = 0; round < 3; round++) {
    bool sleeping = round != 1; /* round 1: the subscriber stays awake */
    uint64_t sent_before;
    shmbus_pub_stats(pub, &st);
    sent_before = st.wakeups_sent;
    cr_assert_eq(shmbus_sub_try_recv(sub, buf, sizeof(buf), NULL), -EAGAIN);
    if (sleeping)
      cr_assert_eq(shmbus_sub_arm(sub), 1, "round %d: not armed", round);
    for (int i = 0; i < 100; i++) {
      tu_fill(data[i], sizeof(data[i]), 1, next + (uint64_t)i);
      msgs[i].data = data[i];
      msgs[i].len = sizeof(data[i]);
    }
    cr_assert_eq(shmbus_pub_publish_batch(pub, msgs, 100), 100);
    shmbus_pub_stats(pub, &st);
    cr_assert_eq(st.wakeups_sent - sent_before, sleeping ? 1 : 0, "round %d: %" PRIu64 " signals",
                 round, st.wakeups_sent - sent_before);
    cr_assert_eq(sub_signalled(sub), sleeping, "round %d", round);
    for (int i = 0; i < 100; i++) {
      rv = shmbus_sub_try_recv(sub, buf, sizeof(buf), NULL);
      cr_assert_eq(rv, 64, "round %d, message %d: %d", round, i, rv);
      cr_assert_eq(tu_check(buf, (size_t)rv, &id, &seq), 0);
      cr_assert_eq(seq, next, "round %d: got %" PRIu64 ", not %" PRIu64, round, seq, next);
      next++;
    }
    if (sleeping) /* the signal is consumed by the wait it ends */
      while (sub_signalled(sub))
        (void)!read(shmbus_sub_fd(sub), &seq, sizeof(seq));
  }
  shmbus_bus_close(bus);
}

/* A batch that meets a full ring (a reliable subscriber behind) publishes
 * what fits and says how many; the next call reports SHMBUS_EFULL; bad
 * arguments publish nothing. */
Test(bus, a_batch_stops_at_a_full_ring) {
  struct shmbus_topic_opts to = {16, 256, 8, 4, false};
  struct shmbus_sub_opts so = {.reliable = true};
  shmbus_bus *bus = du_bus(&d);
  shmbus_pub *pub;
  shmbus_sub *sub;
  struct shmbus_pub_msg msgs[20];
  unsigned char data[20][32], buf[256];
  uint64_t seq;
  uint32_t id;

  cr_assert_eq(shmbus_pub_open(bus, "t/batchfull", &to, &pub), 0);
  cr_assert_eq(shmbus_sub_open(bus, "t/batchfull", &so, &sub), 0);
  for (int i = 0; i < 20; i++) {
    tu_fill(data[i], sizeof(data[i]), 1, (uint64_t)i);
    msgs[i].data = data[i];
    msgs[i].len = sizeof(data[i]);
  }
  cr_assert_eq(shmbus_pub_publish_batch(NULL, msgs, 1), -EINVAL);
  cr_assert_eq(shmbus_pub_publish_batch(pub, NULL, 1), -EINVAL);
  msgs[3].data = NULL;
  cr_assert_eq(shmbus_pub_publish_batch(pub, msgs, 20), -EINVAL);
  msgs[3].data = data[3];
  cr_assert_eq(shmbus_pub_publish_batch(pub, msgs, 0), 0);
  cr_assert_eq(shmbus_pub_published(pub), 0, "a refused batch published");
  cr_assert_eq(shmbus_pub_publish_batch(pub, msgs, 20), 16);
  cr_assert_eq(shmbus_pub_publish_batch(pub, msgs + 16, 4), SHMBUS_EFULL);
  for (uint64_t i = 0; i < 16; i++) {
    int rv = shmbus_sub_try_recv(sub, buf, sizeof(buf), NULL);
    cr_assert_eq(rv, 32);
    cr_assert_eq(tu_check(buf, (size_t)rv, &id, &seq), 0);
    cr_assert_eq(seq, i);
  }
  cr_assert_eq(shmbus_pub_publish_batch(pub, msgs + 16, 4), 4);
  for (uint64_t i = 16; i < 20; i++) {
    int rv = shmbus_sub_try_recv(sub, buf, sizeof(buf), NULL);
    cr_assert_eq(rv, 32);
    cr_assert_eq(tu_check(buf, (size_t)rv, &id, &seq), 0);
    cr_assert_eq(seq, i);
  }
  shmbus_bus_close(bus);
}

/* A stamped batch: each message carries the stamp given; 0 stands for the
 * clock at publish; no stamps refuses it. */
Test(bus, a_stamped_batch_keeps_its_stamps) {
  struct shmbus_topic_opts to = {16, 256, 8, 4, false};
  shmbus_bus *bus = du_bus(&d);
  shmbus_pub *pub;
  shmbus_sub *sub;
  struct shmbus_pub_msg msgs[4];
  const uint64_t ts[4] = {42, UINT64_MAX, 0, 7};
  unsigned char data[4][32], buf[256];
  struct shmbus_msg_info info;
  uint64_t lo, hi;

  cr_assert_eq(shmbus_pub_open(bus, "t/stamped", &to, &pub), 0);
  cr_assert_eq(shmbus_sub_open(bus, "t/stamped", NULL, &sub), 0);
  for (int i = 0; i < 4; i++) {
    tu_fill(data[i], sizeof(data[i]), 1, (uint64_t)i);
    msgs[i].data = data[i];
    msgs[i].len = sizeof(data[i]);
  }
  cr_assert_eq(shmbus_pub_publish_batch_at(pub, msgs, NULL, 4), -EINVAL);
  cr_assert_eq(shmbus_pub_publish_batch_at(pub, NULL, ts, 4), -EINVAL);
  cr_assert_eq(shmbus_pub_publish_batch_at(NULL, msgs, ts, 4), -EINVAL);
  cr_assert_eq(shmbus_pub_publish_batch_at(pub, msgs, NULL, 0), 0);
  cr_assert_eq(shmbus_pub_published(pub), 0, "a refused batch published");
  lo = shmbus__clock_mono_ns();
  cr_assert_eq(shmbus_pub_publish_batch_at(pub, msgs, ts, 4), 4);
  hi = shmbus__clock_mono_ns();
  for (int i = 0; i < 4; i++) {
    uint64_t seq;
    uint32_t id;
    int rv = shmbus_sub_try_recv(sub, buf, sizeof(buf), &info);
    cr_assert_eq(rv, 32);
    cr_assert_eq(tu_check(buf, (size_t)rv, &id, &seq), 0);
    cr_assert_eq(seq, (uint64_t)i);
    cr_assert_eq(info.seq, (uint64_t)i);
    if (ts[i] != 0)
      cr_assert_eq(info.ts_ns, ts[i], "message %d: stamp %" PRIu64, i, info.ts_ns);
    else
      cr_assert(info.ts_ns >= lo && info.ts_ns <= hi,
                "message %d: stamp %" PRIu64 " not in [%" PRIu64 ", %" PRIu64 "]", i, info.ts_ns,
                lo, hi);
  }
  cr_assert_eq(shmbus_sub_try_recv(sub, buf, sizeof(buf), NULL), -EAGAIN);
  shmbus_bus_close(bus);
}

/* ---- a late subscriber with history behind a running publisher ---------- */

struct hist_child {
  uv_loop_t loop;
  uv_timer_t bound;
  uint64_t count, got, last;
  bool done;
};

static void hist_msg(shmbus_sub *sub, const void *data, size_t len,
                     const struct shmbus_msg_info *info, void *arg) {
  struct hist_child *c = arg;
  uint32_t pub;
  uint64_t seq;
  (void)sub;
  (void)info;
  if (tu_check(data, len, &pub, &seq) == 0) {
    c->got++;
    c->last = seq;
    if (seq + 1 == c->count) {
      c->done = true;
      uv_stop(&c->loop);
    }
  }
}

static void hist_bound(uv_timer_t *t) {
  uv_stop(t->loop); /* a bound for a broken run, never a synchronisation */
}

/* The child: a lossy libuv subscriber that joins while the publisher runs,
 * with the whole ring as history (what the bridge's exporter does); it
 * must be woken for every later message, up to the last. */
static int hist_child_run(const char *topic, uint64_t count, int out) {
  struct shmbus_sub_opts so = {.history = 1u << 24};
  struct report rep = {0};
  struct shmbus_sub_stats st;
  struct shmbus_bus_opts o;
  struct hist_child c = {0};
  shmbus_bus *bus;
  shmbus_sub *sub;
  int rv;

  c.count = count;
  du_opts(&d, &o);
  uv_loop_init(&c.loop);
  uv_timer_init(&c.loop, &c.bound);
  uv_timer_start(&c.bound, hist_bound, 20000, 0);
  if ((rv = shmbus_bus_open(&bus, &o)) < 0 || (rv = shmbus_sub_open(bus, topic, &so, &sub)) < 0 ||
      (rv = shmbus_uv_bus_start(bus, &c.loop)) < 0 ||
      (rv = shmbus_uv_sub_start(sub, &c.loop, hist_msg, &c)) < 0) {
    rep.err = rv;
    (void)!write(out, &rep, sizeof(rep));
    return 1;
  }
  uv_run(&c.loop, UV_RUN_DEFAULT);
  shmbus_sub_stats(sub, &st);
  rep.received = st.received;
  rep.lost = st.lost;
  rep.last_seq = c.last;
  rep.err = c.done ? 0 : -ETIMEDOUT;
  (void)!write(out, &rep, sizeof(rep));
  shmbus_bus_close(bus);
  return 0;
}

Test(bus, late_uv_subscriber_with_history_is_woken_to_the_end) {
  struct shmbus_topic_opts to = {4096, 256, 8, 4, false};
  const uint64_t count = 4000;
  shmbus_bus *bus = du_bus(&d);
  shmbus_pub *pub;
  struct report rep;
  unsigned char buf[64];
  int p[2];
  pid_t pid = -1;

  cr_assert_eq(shmbus_pub_open(bus, "t/hist", &to, &pub), 0);
  cr_assert_eq(pipe(p), 0);
  for (uint64_t i = 0; i < count; i++) {
    struct timespec gap = {0, 100000}; /* a paced publisher: 10,000/s */
    if (i == 200) {
      pid = fork();
      cr_assert_geq(pid, 0);
      if (pid == 0) {
        close(p[0]);
        _exit(hist_child_run("t/hist", count, p[1]));
      }
      close(p[1]);
    }
    tu_fill(buf, sizeof(buf), 1, i);
    cr_assert_eq(shmbus_pub_publish(pub, buf, sizeof(buf)), 0);
    nanosleep(&gap, NULL);
  }
  du_read(p[0], &rep, sizeof(rep));
  cr_assert_eq(rep.err, 0,
               "the late subscriber stopped at seq %" PRIu64 " (received %" PRIu64 ", lost %" PRIu64
               ")",
               rep.last_seq, rep.received, rep.lost);
  cr_assert_eq(rep.received + rep.lost, count);
  cr_assert_eq(du_wait(pid), 0);
  close(p[0]);
  shmbus_bus_close(bus);
}

/* An open the daemon refuses (other parameters) leaves the caller's
 * descriptors alone: it used to close descriptor 0 (the handle's region,
 * still zeroed, was closed on the way out), the caller's standard input. */
Test(bus, a_refused_open_closes_none_of_the_callers_descriptors) {
  struct shmbus_topic_opts a = {64, 128, 8, 4, false};
  struct shmbus_topic_opts b = {128, 128, 8, 4, false};
  shmbus_bus *bus = du_bus(&d);
  shmbus_pub *pub, *pub2;

  /* Descriptor 0 open (when the runner has no standard input, on the null
   * device). */
  if (fcntl(0, F_GETFD) == -1)
    cr_assert_eq(open("/dev/null", O_RDONLY), 0);
  cr_assert_eq(shmbus_pub_open(bus, "t/refused", &a, &pub), 0);
  cr_assert_eq(shmbus_pub_open(bus, "t/refused", &b, &pub2), SHMBUS_EMISMATCH);
  cr_assert_neq(fcntl(0, F_GETFD), -1, "descriptor 0 was closed by the refused open");
  shmbus_bus_close(bus);
}
