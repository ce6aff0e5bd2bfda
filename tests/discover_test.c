/* discover: topic patterns (pure) and watches against a real shmbusd:
 * a watch lists what exists, then reports a topic created later (by
 * another process), a topic dropped when its last participant leaves, a
 * topic removed by name, and never a topic its uid may not subscribe to
 * (a real process of uid 65534 on a system bus); a watch survives a
 * daemon restart and reports the difference; libuv delivery.
 *
 * Every wait is on an event (a change, a pipe, a child's exit) with a
 * bound that only detects a hang. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "daemonutil.h"
#include "rawclient.h"
#include "shmbus/discover.h"
#include "shmbus/shmbus.h"
#include "shmbus/uv.h"
#include "testutil.h"

#define DT_WAIT_MS 10000 /* a change that has not come by then is lost */

/* ---- patterns ------------------------------------------------------------ */

TestSuite(pattern);

Test(pattern, grammar) {
  static const char *const good[] = {"a",    "a/b",        "*",       "**",   "a/*",       "a/**",
                                     "**/x", "a/*/c/**/d", "$sys/**", "$sys", "a.b-c_d/E9"};
  static const char *const bad[] = {"",   "/",     "a/",     "/a",    "a//b",   "a*",
                                    "*a", "a/b*",  "***",    "a/**x", "a/?",    "a/#",
                                    ">",  "a/./b", "a/../b", "a b",   "*/$sys", "$*"};
  char big[300];
  size_t i;

  for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    cr_expect_eq(shmbus_pattern_check(good[i]), 0, "\"%s\" is a pattern", good[i]);
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    cr_expect_eq(shmbus_pattern_check(bad[i]), SHMBUS_EBADPATTERN, "\"%s\" is no pattern", bad[i]);
  cr_expect_eq(shmbus_pattern_check(NULL), SHMBUS_EBADPATTERN);
  memset(big, 'a', sizeof(big));
  big[256] = '\0';
  cr_expect_eq(shmbus_pattern_check(big), SHMBUS_EBADPATTERN, "more than 255 bytes");
  big[255] = '\0';
  cr_expect_eq(shmbus_pattern_check(big), 0, "255 bytes");
  cr_expect_str_neq(shmbus_strerror(SHMBUS_EBADPATTERN), "unknown error");
}

Test(pattern, matching) {
  static const struct {
    const char *pattern, *topic;
    int match;
  } cases[] = {
      {"a", "a", 1},
      {"a", "b", 0},
      {"a", "a/b", 0},
      {"a/b", "a/b", 1},
      {"*", "a", 1},
      {"*", "a/b", 0},
      {"a/*", "a/b", 1},
      {"a/*", "a", 0},
      {"a/*", "a/b/c", 0},
      {"a/**", "a", 1},
      {"a/**", "a/b", 1},
      {"a/**", "a/b/c/d", 1},
      {"a/**", "b/a", 0},
      {"**", "x/y/z", 1},
      {"**/z", "z", 1},
      {"**/z", "x/y/z", 1},
      {"**/z", "x/z/y", 0},
      {"a/**/b", "a/b", 1},
      {"a/**/b", "a/x/y/b", 1},
      {"a/**/b", "a/x/y/c", 0},
      {"a/*/c", "a/b/c", 1},
      {"a/*/c", "a/b/d/c", 0},
      {"**/**", "a", 1},
      {"*/**/*", "a", 0},
      {"*/**/*", "a/b", 1},
      {"sensors/*/temp", "sensors/imu/temp", 1},
      {"**", "$sys/stats", 0},
      {"*/stats", "$sys/stats", 0},
      {"$sys/**", "$sys/stats", 1},
      {"$sys/*", "$sys/stats", 1},
      {"x/**", "x/$y", -1} /* not a topic name */,
      {"ab", "abc", 0},
      {"abc", "ab", 0},
  };
  size_t i;

  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    int want = cases[i].match < 0 ? SHMBUS_EBADNAME : cases[i].match;
    cr_expect_eq(shmbus_pattern_match(cases[i].pattern, cases[i].topic), want,
                 "\"%s\" vs \"%s\": want %d", cases[i].pattern, cases[i].topic, want);
  }
  cr_expect_eq(shmbus_pattern_match("a*", "a"), SHMBUS_EBADPATTERN);
}

/* Many "**" cost time linear in their number, not exponential. */
Test(pattern, many_double_stars_stay_cheap) {
  char p[256];
  char t[256];
  size_t i;

  for (i = 0; i + 3 < 250; i += 3)
    memcpy(p + i, "**/", 3);
  memcpy(p + i, "b", 2);
  for (i = 0; i + 2 < 250; i += 2)
    memcpy(t + i, "a/", 2);
  memcpy(t + i, "c", 2);
  cr_assert_eq(shmbus_pattern_match(p, t), 0);
  t[i] = 'b';
  cr_assert_eq(shmbus_pattern_match(p, t), 1);
}

/* ---- watches on a per-user bus -------------------------------------------------- */

static struct du_daemon d;

static void setup(void) {
  memset(&d, 0, sizeof(d));
  du_start(&d);
}

static void teardown(void) {
  du_stop(&d);
}

TestSuite(discover, .init = setup, .fini = teardown, .timeout = 120);

static void expect_change(shmbus_watch *w, int change, const char *topic) {
  struct shmbus_topic_event ev;
  int rv = shmbus_watch_next(w, &ev, DT_WAIT_MS);

  cr_assert_eq(rv, 0, "waiting for %s %s: %s", change == SHMBUS_TOPIC_APPEARED ? "+" : "-", topic,
               shmbus_strerror(rv));
  cr_assert_eq(ev.change, change, "%s: change %d, want %d", ev.topic, ev.change, change);
  cr_assert_str_eq(ev.topic, topic);
}

static void expect_nothing(shmbus_watch *w) {
  struct shmbus_topic_event ev;
  int rv = shmbus_watch_next(w, &ev, 0);

  cr_assert_eq(rv, -EAGAIN, "unexpected change %d on %s", ev.change, rv == 0 ? ev.topic : "");
}

/* A child process that opens its own bus, publishes on `topic`, and keeps
 * it until its stdin pipe closes. Returns the pid; `*hold` is the pipe's
 * write end (close it to let the child go). Waits until it opened. */
static pid_t publisher_child(const char *topic, int *hold) {
  int ready[2];
  int go[2];
  char c;
  pid_t pid;

  cr_assert_eq(pipe(ready), 0);
  cr_assert_eq(pipe(go), 0);
  pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    shmbus_bus *bus;
    shmbus_pub *pub;
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    close(ready[0]);
    close(go[1]);
    bus = du_bus(&d);
    if (shmbus_pub_open(bus, topic, NULL, &pub) < 0)
      _exit(2);
    if (write(ready[1], "r", 1) != 1)
      _exit(3);
    while (read(go[0], &c, 1) > 0)
      ;
    shmbus_bus_close(bus);
    _exit(0);
  }
  close(ready[1]);
  close(go[0]);
  cr_assert_eq(read(ready[0], &c, 1), 1, "the publisher child did not open");
  close(ready[0]);
  *hold = go[1];
  return pid;
}

Test(discover, lists_then_reports_later_topics_and_their_end) {
  shmbus_bus *bus = du_bus(&d);
  shmbus_bus *other = du_bus(&d);
  shmbus_watch *w;
  shmbus_pub *before;
  shmbus_pub *later;
  shmbus_pub *elsewhere;
  int hold;
  pid_t kid;

  cr_assert_eq(shmbus_pub_open(other, "sensors/a", NULL, &before), 0);
  cr_assert_eq(shmbus_watch_open(bus, "sensors/**", &w), 0);
  cr_assert_str_eq(shmbus_watch_pattern(w), "sensors/**");
  expect_change(w, SHMBUS_TOPIC_APPEARED, "sensors/a");
  expect_nothing(w);
  cr_assert_eq(shmbus_watch_count(w), 1);

  /* Created later, by another process; a non-matching one in between. */
  cr_assert_eq(shmbus_pub_open(other, "elsewhere/x", NULL, &elsewhere), 0);
  kid = publisher_child("sensors/b/c", &hold);
  expect_change(w, SHMBUS_TOPIC_APPEARED, "sensors/b/c");
  cr_assert_eq(shmbus_pub_open(other, "sensors/later", NULL, &later), 0);
  expect_change(w, SHMBUS_TOPIC_APPEARED, "sensors/later");
  cr_assert_eq(shmbus_watch_count(w), 3);

  /* The child exits: its topic loses its last participant. */
  close(hold);
  cr_assert_eq(du_wait(kid), 0);
  expect_change(w, SHMBUS_TOPIC_GONE, "sensors/b/c");
  /* Closed in this process. */
  shmbus_pub_close(later);
  expect_change(w, SHMBUS_TOPIC_GONE, "sensors/later");
  /* Removed by name while in use. */
  cr_assert_eq(shmbus_bus_topic_remove(other, "sensors/a"), 0);
  expect_change(w, SHMBUS_TOPIC_GONE, "sensors/a");
  cr_assert_eq(shmbus_watch_count(w), 0);
  expect_nothing(w);
  shmbus_pub_close(before);
  shmbus_pub_close(elsewhere);
  shmbus_watch_close(w);
  shmbus_bus_close(other);
  shmbus_bus_close(bus);
}

Test(discover, a_change_undone_before_it_was_taken_is_not_reported) {
  shmbus_bus *bus = du_bus(&d);
  shmbus_bus *other = du_bus(&d);
  shmbus_watch *w;
  shmbus_pub *p;
  shmbus_pub *marker;

  cr_assert_eq(shmbus_watch_open(bus, "t/*", &w), 0);
  expect_nothing(w);
  cr_assert_eq(shmbus_pub_open(other, "t/flap", NULL, &p), 0);
  shmbus_pub_close(p);
  cr_assert_eq(shmbus_pub_open(other, "t/marker", NULL, &marker), 0);
  /* The flap came before the marker; it cancelled out. */
  expect_change(w, SHMBUS_TOPIC_APPEARED, "t/marker");
  expect_nothing(w);
  shmbus_watch_close(w);
  shmbus_bus_close(other);
  shmbus_bus_close(bus);
}

Test(discover, bad_patterns_and_sys_topics) {
  shmbus_bus *bus = du_bus(&d);
  shmbus_watch *w = NULL;
  shmbus_watch *sys = NULL;
  struct shmbus_topic_event ev;

  cr_assert_eq(shmbus_watch_open(bus, "sensors*", &w), SHMBUS_EBADPATTERN);
  cr_assert_eq(shmbus_watch_open(bus, "a//b", &w), SHMBUS_EBADPATTERN);
  cr_assert_eq(shmbus_watch_open(bus, NULL, &w), SHMBUS_EBADPATTERN);
  cr_assert_null(w);
  /* "**" does not show the daemon's own topics; "$sys/ **" does. */
  cr_assert_eq(shmbus_watch_open(bus, "**", &w), 0);
  expect_nothing(w);
  cr_assert_eq(shmbus_watch_open(bus, "$sys/**", &sys), 0);
  expect_change(sys, SHMBUS_TOPIC_APPEARED, "$sys/stats");
  cr_assert_eq(shmbus_watch_next(w, &ev, 0), -EAGAIN);
  shmbus_watch_close(sys);
  shmbus_watch_close(w);
  shmbus_bus_close(bus);
}

Test(discover, the_daemon_limits_watches_per_connection) {
  shmbus_bus *bus = du_bus(&d);
  shmbus_watch *w[65];
  int i;

  for (i = 0; i < 64; i++)
    cr_assert_eq(shmbus_watch_open(bus, "a/**", &w[i]), 0, "watch %d", i);
  cr_assert_eq(shmbus_watch_open(bus, "a/**", &w[64]), SHMBUS_EQUOTA);
  shmbus_watch_close(w[0]);
  cr_assert_eq(shmbus_watch_open(bus, "a/**", &w[0]), 0, "room again after a close");
  for (i = 0; i < 64; i++)
    shmbus_watch_close(w[i]);
  shmbus_bus_close(bus);
}

Test(discover, a_watch_survives_a_daemon_restart) {
  shmbus_bus *bus = du_bus(&d);
  shmbus_watch *w;
  shmbus_pub *kept;
  int hold;
  pid_t kid;

  cr_assert_eq(shmbus_pub_open(bus, "r/kept", NULL, &kept), 0);
  kid = publisher_child("r/gone", &hold);
  cr_assert_eq(shmbus_watch_open(bus, "r/*", &w), 0);
  {
    /* Both, in either order. */
    struct shmbus_topic_event a, b;
    cr_assert_eq(shmbus_watch_next(w, &a, DT_WAIT_MS), 0);
    cr_assert_eq(shmbus_watch_next(w, &b, DT_WAIT_MS), 0);
    cr_assert(strcmp(a.topic, b.topic) != 0);
  }
  du_kill(&d);
  /* While no daemon runs, the child leaves: nobody reports it. */
  close(hold);
  cr_assert_eq(du_wait(kid), 0);
  du_restart(&d);
  /* The bus reconnects; the new daemon adopts r/kept only. */
  expect_change(w, SHMBUS_TOPIC_GONE, "r/gone");
  expect_nothing(w);
  cr_assert_eq(shmbus_watch_count(w), 1);
  shmbus_pub_close(kept);
  expect_change(w, SHMBUS_TOPIC_GONE, "r/kept");
  shmbus_watch_close(w);
  shmbus_bus_close(bus);
}

/* ---- libuv ------------------------------------------------------------------- */

struct uv_seen {
  int n;
  char topics[8][256];
  int changes[8];
  uv_loop_t *loop;
};

static void on_change(shmbus_watch *w, const struct shmbus_topic_event *ev, void *arg) {
  struct uv_seen *s = arg;

  (void)w;
  if (s->n < 8) {
    memcpy(s->topics[s->n], ev->topic, sizeof(ev->topic));
    s->changes[s->n] = ev->change;
  }
  s->n++;
  uv_stop(s->loop);
}

static void on_hang(uv_timer_t *t) {
  (void)t;
  cr_assert_fail("no change came");
}

static void run_until(struct uv_seen *s, int n) {
  uv_timer_t hang;

  cr_assert_eq(uv_timer_init(s->loop, &hang), 0);
  cr_assert_eq(uv_timer_start(&hang, on_hang, DT_WAIT_MS, 0), 0);
  while (s->n < n)
    (void)uv_run(s->loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t *)&hang, NULL);
  (void)uv_run(s->loop, UV_RUN_NOWAIT);
}

Test(discover, delivers_to_a_libuv_loop) {
  uv_loop_t loop;
  struct uv_seen s;
  shmbus_bus *bus = du_bus(&d);
  shmbus_bus *other = du_bus(&d);
  shmbus_watch *w;
  shmbus_pub *p1;
  shmbus_pub *p2;
  struct shmbus_topic_event ev;

  memset(&s, 0, sizeof(s));
  s.loop = &loop;
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(shmbus_pub_open(other, "u/first", NULL, &p1), 0);
  cr_assert_eq(shmbus_watch_open(bus, "u/**", &w), 0);
  cr_assert_eq(shmbus_uv_watch_start(w, &loop, on_change, &s), SHMBUS_ESTATE,
               "the bus must be on the loop first");
  cr_assert_eq(shmbus_uv_bus_start(bus, &loop), 0);
  cr_assert_eq(shmbus_uv_watch_start(w, &loop, on_change, &s), 0);
  cr_assert_eq(shmbus_uv_watch_start(w, &loop, on_change, &s), SHMBUS_ESTATE);
  cr_assert_eq(shmbus_watch_next(w, &ev, 0), SHMBUS_ESTATE);
  run_until(&s, 1);
  cr_assert_str_eq(s.topics[0], "u/first");
  cr_assert_eq(shmbus_pub_open(other, "u/second", NULL, &p2), 0);
  run_until(&s, 2);
  cr_assert_str_eq(s.topics[1], "u/second");
  cr_assert_eq(s.changes[1], SHMBUS_TOPIC_APPEARED);
  shmbus_pub_close(p2);
  run_until(&s, 3);
  cr_assert_str_eq(s.topics[2], "u/second");
  cr_assert_eq(s.changes[2], SHMBUS_TOPIC_GONE);
  shmbus_bus_close(other);
  shmbus_bus_close(bus);
  (void)uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&loop), 0);
}

/* ---- permissions: a real process of another uid --------------------------------- */

static struct dt_daemon sysd;
static pid_t perm_kid;

static void perm_fini(void) {
  if (perm_kid > 0) {
    (void)kill(perm_kid, SIGKILL);
    (void)waitpid(perm_kid, NULL, 0);
  }
  if (sysd.pid > 0) {
    (void)kill(sysd.pid, SIGKILL);
    (void)waitpid(sysd.pid, NULL, 0);
  }
  if (sysd.tmp[0] != '\0')
    dt_cleanup(&sysd);
}

TestSuite(discover_perm, .fini = perm_fini, .timeout = 120);

/* Uid 65534 may subscribe to public/... only. Its watch of everything
 * lists public/a (not secret/b), then reports public/c and public/zz
 * created later, never secret/d. Exit status: 0 fine, else what broke. */
static int perm_watcher(int ready_fd, int go_fd) {
  struct shmbus_bus_opts o;
  struct shmbus_topic_event ev;
  shmbus_bus *bus;
  shmbus_watch *w;
  char c;
  int seen = 0;

  dt_become_nobody();
  shmbus_bus_opts_init(&o);
  o.dir = sysd.dir;
  o.autostart = 0;
  if (shmbus_bus_open(&bus, &o) < 0)
    return 10;
  if (shmbus_watch_open(bus, "**", &w) < 0)
    return 11;
  if (shmbus_watch_next(w, &ev, DT_WAIT_MS) < 0 || strcmp(ev.topic, "public/a") != 0)
    return 12;
  if (shmbus_watch_next(w, &ev, 0) != -EAGAIN)
    return 13;
  if (write(ready_fd, "r", 1) != 1 || read(go_fd, &c, 1) != 1)
    return 14;
  for (;;) {
    if (shmbus_watch_next(w, &ev, DT_WAIT_MS) < 0)
      return 15;
    if (strncmp(ev.topic, "public/", 7) != 0)
      return 16; /* a topic it may not see */
    seen++;
    if (strcmp(ev.topic, "public/zz") == 0)
      break;
  }
  shmbus_bus_close(bus);
  return seen == 2 ? 0 : 17;
}

Test(discover_perm, a_uid_discovers_only_what_it_may_subscribe_to) {
  static const char rules[] = "allow any ** uid:0\n"
                              "allow sub public/** uid:65534\n";
  shmbus_pub *p[4];
  struct shmbus_bus_opts o;
  shmbus_bus *bus;
  int ready[2];
  int go[2];
  char c;
  int status;

  if (geteuid() != 0)
    cr_skip_test("needs root to run a watcher as another uid");
  dt_start_system(&sysd, rules, NULL);
  shmbus_bus_opts_init(&o);
  o.dir = sysd.dir;
  o.autostart = 0;
  cr_assert_eq(shmbus_bus_open(&bus, &o), 0);
  cr_assert_eq(shmbus_pub_open(bus, "public/a", NULL, &p[0]), 0);
  cr_assert_eq(shmbus_pub_open(bus, "secret/b", NULL, &p[1]), 0);
  cr_assert_eq(pipe(ready), 0);
  cr_assert_eq(pipe(go), 0);
  perm_kid = fork();
  cr_assert_geq(perm_kid, 0);
  if (perm_kid == 0) {
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    _exit(perm_watcher(ready[1], go[0]));
  }
  cr_assert_eq(read(ready[0], &c, 1), 1, "the watcher did not list");
  cr_assert_eq(shmbus_pub_open(bus, "secret/d", NULL, &p[2]), 0);
  cr_assert_eq(shmbus_pub_open(bus, "public/c", NULL, &p[3]), 0);
  shmbus_pub_close(p[2]);
  cr_assert_eq(shmbus_pub_open(bus, "public/zz", NULL, &p[2]), 0);
  cr_assert_eq(write(go[1], "g", 1), 1);
  status = du_wait(perm_kid);
  perm_kid = 0;
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "watcher status %d", status);
  shmbus_bus_close(bus);
  dt_stop(&sysd);
  dt_cleanup(&sysd);
  sysd.tmp[0] = '\0';
}

/* A watch that delivers to a loop is renewed when the bus reconnects from
 * that loop, and reports what changed while the daemon was away. */
Test(discover, a_libuv_watch_survives_a_daemon_restart) {
  uv_loop_t loop;
  struct uv_seen s;
  shmbus_bus *bus = du_bus(&d);
  shmbus_watch *w;
  shmbus_pub *kept;
  int hold;
  pid_t kid;

  memset(&s, 0, sizeof(s));
  s.loop = &loop;
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(shmbus_pub_open(bus, "q/kept", NULL, &kept), 0);
  kid = publisher_child("q/gone", &hold);
  cr_assert_eq(shmbus_watch_open(bus, "q/*", &w), 0);
  cr_assert_eq(shmbus_uv_bus_start(bus, &loop), 0);
  cr_assert_eq(shmbus_uv_watch_start(w, &loop, on_change, &s), 0);
  run_until(&s, 2);
  du_kill(&d);
  close(hold);
  cr_assert_eq(du_wait(kid), 0);
  du_restart(&d);
  /* The loop notices the lost connection, reconnects, renews the watch. */
  run_until(&s, 3);
  cr_assert_str_eq(s.topics[2], "q/gone");
  cr_assert_eq(s.changes[2], SHMBUS_TOPIC_GONE);
  cr_assert_eq(shmbus_watch_count(w), 1);
  shmbus_bus_close(bus);
  (void)uv_run(&loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&loop), 0);
}
