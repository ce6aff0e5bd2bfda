/* The lost wake-up of a late-joining subscriber: a publisher that
 * publishes and then never calls into the library again must still wake
 * every subscriber that was asleep before its last message, although it
 * may not have known that subscriber's eventfd when it published
 * (docs/design.md, "Who knows whose eventfd; the lost wake-up").
 *
 * Each test starts its own shmbusd. Subscribers run in threads on buses of
 * their own (a bus is used by one thread at a time); the publisher's bus is
 * never processed by the test after the last message: only the library's
 * own publish path and the daemon may deliver the wake-up. The tests never
 * sleep to synchronise: they wait for a subscriber's sleeper bit in shared
 * memory or for its open to return. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus.h"
#include "daemonutil.h"
#include "ring.h"
#include "testutil.h"

static struct du_daemon d;
/* A child the test holds (SIGSTOP): killed if the test fails. */
static pid_t lw_child;

static void teardown(void) {
  if (lw_child > 0) {
    kill(lw_child, SIGKILL);
    du_wait(lw_child);
    lw_child = 0;
  }
  if (d.pid != 0) {
    kill(d.pid, SIGCONT); /* a test that failed while the daemon was stopped */
    du_stop(&d);
  }
}

TestSuite(latewake, .fini = teardown, .timeout = 120);

/* A subscriber in a thread: opens `topic` on a bus of its own, says so,
 * and waits (blocking, one long timeout) for one message. */
struct lw_sub {
  const char *topic;
  shmbus_bus *bus;
  shmbus_sub *sub;
  _Atomic int opened; /* 1: open, `index` valid; -1: failed (err) */
  uint32_t index;     /* its global record index */
  int err;
  int rv;             /* the receive's result */
  uint64_t v;         /* what it received */
  int timeout;        /* of the receive, ms */
  uint64_t waited_ns; /* how long the receive took */
};

static void *lw_sub_main(void *arg) {
  struct lw_sub *s = arg;
  struct shmbus_bus_opts o;
  uint64_t t0;
  int rv;

  du_opts(&d, &o);
  if ((rv = shmbus_bus_open(&s->bus, &o)) < 0 ||
      (rv = shmbus_sub_open(s->bus, s->topic, NULL, &s->sub)) < 0) {
    s->err = rv;
    atomic_store_explicit(&s->opened, -1, memory_order_release);
    return NULL;
  }
  s->index = s->sub->ring.index;
  /* Release: the test that sees `opened` sees `index`. */
  atomic_store_explicit(&s->opened, 1, memory_order_release);
  t0 = shmbus__clock_mono_ns();
  s->rv = shmbus_sub_recv(s->sub, &s->v, sizeof(s->v), NULL, s->timeout);
  s->waited_ns = shmbus__clock_mono_ns() - t0;
  return NULL;
}

static void lw_sub_close(struct lw_sub *s) {
  if (s->sub != NULL)
    shmbus_sub_close(s->sub);
  if (s->bus != NULL)
    shmbus_bus_close(s->bus);
}

/* Waits (bounded, 30 s) until the subscriber's open returned. */
static void lw_wait_opened(struct lw_sub *s) {
  uint64_t end = shmbus__clock_mono_ns() + 30000000000u;
  int o;

  while ((o = atomic_load_explicit(&s->opened, memory_order_acquire)) == 0) {
    cr_assert_lt(shmbus__clock_mono_ns(), end, "the subscriber's open never returned");
    sched_yield();
  }
  cr_assert_eq(o, 1, "subscriber open: %s", shmbus_strerror(s->err));
}

/* Waits (bounded, 30 s) until subscriber record g sleeps: its bit is set
 * in the publisher's view. Reads shared memory only: the publisher's bus
 * is not processed (its socket keeps what the daemon sent). */
static void lw_wait_asleep(const shmbus_pub *pub, uint32_t g) {
  uint64_t end = shmbus__clock_mono_ns() + 30000000000u;

  while (!shmbus__ring_sub_sleeping(&pub->h.region.ring, g)) {
    cr_assert_lt(shmbus__clock_mono_ns(), end, "the subscriber never went to sleep");
    sched_yield();
  }
}

/* A backlog of peer events about a reused record. Subscribers come and go
 * on record 0 while the publisher does not read its socket; then the late
 * subscriber takes record 0 and sleeps, and the publisher publishes one
 * message and never calls again. Its publish reads the whole backlog at
 * once: the peer_join of a subscriber since gone comes first, with the
 * sleeper's bit already set, so it signals the sleeper's ticket through
 * that stale eventfd. Before the fix it remembered the ticket as
 * signalled and never signalled the same ticket through the sleeper's own
 * eventfd (the peer_join that came next): the sleeper slept until its
 * timeout. Deterministic: nothing here races. */
Test(latewake, a_sleeper_on_a_reused_record_is_woken_after_a_backlog_of_peer_events) {
  struct shmbus_topic_opts to = {16, 64, 4, 2, false};
  struct lw_sub s = {.topic = "lw/reused", .timeout = 20000};
  struct shmbus_sub_stats st;
  shmbus_bus *bp;
  shmbus_bus *bc;
  shmbus_pub *pub;
  shmbus_sub *churn;
  pthread_t th;
  uint64_t v = 42;
  unsigned i;

  memset(&d, 0, sizeof(d));
  du_start(&d);
  bp = du_bus(&d);
  cr_assert_eq(shmbus_pub_open(bp, s.topic, &to, &pub), 0);
  bc = du_bus(&d);
  for (i = 0; i < 3; i++) {
    cr_assert_eq(shmbus_sub_open(bc, s.topic, NULL, &churn), 0, "churn %u", i);
    cr_assert_eq(churn->ring.index, 0u, "the subscribers share record 0");
    shmbus_sub_close(churn);
  }
  cr_assert_eq(pthread_create(&th, NULL, lw_sub_main, &s), 0);
  lw_wait_opened(&s);
  cr_assert_eq(s.index, 0u, "the late subscriber takes record 0 too");
  lw_wait_asleep(pub, s.index);
  cr_assert_eq(shmbus_pub_publish(pub, &v, sizeof(v)), 0);
  /* From here on the publisher's bus is left alone. */
  cr_assert_eq(pthread_join(th, NULL), 0);
  cr_assert_eq(s.rv, (int)sizeof(v), "the sleeper was not woken: %s", shmbus_strerror(s.rv));
  cr_assert_eq(s.v, v);
  /* Woken by a signal, not found at the end of its timeout. */
  shmbus_sub_stats(s.sub, &st);
  cr_assert_geq(st.wakeups, 1, "the sleeper found the message only when its wait timed out");
  lw_sub_close(&s);
  shmbus_bus_close(bc);
  shmbus_pub_close(pub);
  shmbus_bus_close(bp);
  du_stop(&d);
  d.pid = 0;
}

/* A subscriber that joins while a publisher publishes flat out, with
 * every peer_join delayed (delay_peer_join) so that the publisher reads
 * its socket between the daemon's steps: the publisher stops right after
 * the subscriber's open returned (and 0 to 3 more messages) and never
 * calls again until the subscriber has a message. A smoke test of the
 * order of announcements, epoch increment and answer (docs/design.md,
 * "Who knows whose eventfd"): the window it guards (a publisher's last
 * commit between a newcomer's sleep and the daemon's increment, under the
 * old order) is too narrow to hit on demand, so this does not reproduce
 * it deterministically; the argument in the design does the proving. */
#define LW_ROUNDS 40u

Test(latewake, a_publisher_that_stops_right_after_a_join_wakes_the_newcomer) {
  struct shmbus_topic_opts to = {64, 64, 4, 2, false};
  shmbus_bus *bp;
  shmbus_pub *pub;
  unsigned r;

  memset(&d, 0, sizeof(d));
  du_start_fault(&d, "delay_peer_join:20");
  bp = du_bus(&d);
  cr_assert_eq(shmbus_pub_open(bp, "lw/race", &to, &pub), 0);
  for (r = 0; r < LW_ROUNDS; r++) {
    struct lw_sub s = {.topic = "lw/race", .timeout = 20000};
    pthread_t th;
    uint64_t v = 0;
    int o;
    int k;

    cr_assert_eq(pthread_create(&th, NULL, lw_sub_main, &s), 0);
    /* Publish until the subscriber's open returned, then a few more. */
    while ((o = atomic_load_explicit(&s.opened, memory_order_acquire)) == 0) {
      cr_assert_eq(shmbus_pub_publish(pub, &v, sizeof(v)), 0);
      v++;
    }
    cr_assert_eq(o, 1, "subscriber open: %s", shmbus_strerror(s.err));
    for (k = 0; k < (int)(r % 4); k++) {
      cr_assert_eq(shmbus_pub_publish(pub, &v, sizeof(v)), 0);
      v++;
    }
    /* The publisher's bus is left alone until the subscriber has its
     * message (or its 20 s timeout ran out). */
    cr_assert_eq(pthread_join(th, NULL), 0);
    cr_assert_eq(s.rv, (int)sizeof(uint64_t), "round %u: the newcomer was not woken: %s", r,
                 shmbus_strerror(s.rv));
    {
      struct shmbus_sub_stats st;
      shmbus_sub_stats(s.sub, &st);
      /* A message found at once, or after a signal: never at the end of
       * the timeout (the wait was at least 20 s then). */
      cr_assert(st.wakeups > 0 || s.waited_ns < 10000000000u,
                "round %u: the newcomer found the message only when its wait timed out", r);
    }
    lw_sub_close(&s);
  }
  shmbus_pub_close(pub);
  shmbus_bus_close(bp);
  du_stop(&d);
  d.pid = 0;
}

/* Waits (bounded, 30 s) until child `pid` stopped; fails the test if it
 * ended or did not stop. */
static void lw_wait_stopped(pid_t pid, const char *what) {
  uint64_t end = shmbus__clock_mono_ns() + 30000000000u;
  int st = 0;
  pid_t r;

  while ((r = waitpid(pid, &st, WUNTRACED | WNOHANG)) == 0) {
    cr_assert_lt(shmbus__clock_mono_ns(), end, "%s never stopped", what);
    sched_yield();
  }
  cr_assert_eq(r, pid, "waitpid on %s: %s", what, strerror(errno));
  cr_assert(WIFSTOPPED(st), "%s ended (status %d) instead of stopping", what, st);
}

/* The publisher of lw_opener_joined_after_the_reply, in a child process:
 * creates the topic, says so ('o'), publishes one message when told ('p'),
 * says so ('d'), and then never calls into the library until told to end.
 * Reports by its exit status: 0, or the step that failed. */
static int lw_opener_main(const char *topic, int out, int in) {
  struct shmbus_topic_opts to = {16, 64, 4, 2, false};
  struct shmbus_bus_opts o;
  shmbus_bus *bus;
  shmbus_pub *pub;
  uint64_t v = 42;
  char c;

  du_opts(&d, &o);
  if (shmbus_bus_open(&bus, &o) < 0)
    return 10;
  if (shmbus_pub_open(bus, topic, &to, &pub) < 0)
    return 11;
  c = 'o';
  if (write(out, &c, 1) != 1)
    return 12;
  if (read(in, &c, 1) != 1 || c != 'p')
    return 13;
  if (shmbus_pub_publish(pub, &v, sizeof(v)) < 0)
    return 14;
  c = 'd';
  if (write(out, &c, 1) != 1)
    return 15;
  if (read(in, &c, 1) != 1 || c != 'x')
    return 16;
  shmbus_pub_close(pub);
  shmbus_bus_close(bus);
  return 0;
}

/* A subscriber that joins between the daemon's `opened` reply to a
 * topic's creator (a publisher) and the creator's reading of it: the
 * daemon sends the creator the newcomer's peer_join and moves the peer
 * epoch before the creator has loaded the epoch, and the reply counted no
 * peer. The creator's open must still read that peer_join: before the fix
 * its open loaded the moved epoch, waited for no peer and returned with
 * the peer_join unread; its publish saw an unchanged epoch, found the
 * sleeper's bit without an eventfd, and the subscriber slept until the
 * creator left (the bridge benchmark's exporter, which subscribes as soon
 * as a topic appears, lost everything). Deterministic: the daemon stops
 * itself before the reply (stop-before-reply), the test holds the creator
 * (SIGSTOP) while the subscriber joins, and waits for the subscriber's
 * sleeper bit before the creator publishes. */
Test(latewake, a_subscriber_that_joins_before_the_creator_reads_its_reply_is_woken) {
  struct lw_sub s = {.topic = "lw/creator", .timeout = 20000};
  struct shmbus_sub_stats st;
  int to_child[2], from_child[2];
  pthread_t th;
  pid_t pid;
  int status;
  char c;

  memset(&d, 0, sizeof(d));
  setenv("SHMBUSD_FAULT", "stop-before-reply", 1);
  du_start(&d);
  unsetenv("SHMBUSD_FAULT");
  cr_assert_eq(pipe(to_child), 0);
  cr_assert_eq(pipe(from_child), 0);
  pid = fork();
  cr_assert_geq(pid, 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    close(to_child[1]);
    close(from_child[0]);
    _exit(lw_opener_main(s.topic, from_child[1], to_child[0]));
  }
  lw_child = pid;
  close(to_child[0]);
  close(from_child[1]);
  /* The daemon created the topic for the child and stopped before its
   * reply; hold the child, then let the daemon send the reply. */
  lw_wait_stopped(d.pid, "the daemon (at stop-before-reply)");
  cr_assert_eq(kill(pid, SIGSTOP), 0);
  lw_wait_stopped(pid, "the creator");
  cr_assert_eq(kill(d.pid, SIGCONT), 0);
  /* The subscriber joins: its open returns after the daemon sent the
   * creator its peer_join and moved the epoch. */
  cr_assert_eq(pthread_create(&th, NULL, lw_sub_main, &s), 0);
  lw_wait_opened(&s);
  cr_assert_eq(kill(pid, SIGCONT), 0);
  du_read(from_child[0], &c, 1);
  cr_assert_eq(c, 'o');
  /* Asleep (its own view of its own bit), then one message. */
  {
    uint64_t end = shmbus__clock_mono_ns() + 30000000000u;
    while (!shmbus__ring_sub_sleeping(&s.sub->h.region.ring, s.index)) {
      cr_assert_lt(shmbus__clock_mono_ns(), end, "the subscriber never went to sleep");
      sched_yield();
    }
  }
  c = 'p';
  du_write(to_child[1], &c, 1);
  du_read(from_child[0], &c, 1);
  cr_assert_eq(c, 'd');
  /* The creator does not call into the library until the subscriber has
   * its message (or its 20 s timeout ran out). */
  cr_assert_eq(pthread_join(th, NULL), 0);
  c = 'x';
  du_write(to_child[1], &c, 1);
  status = du_wait(pid);
  lw_child = 0;
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the creator failed (status %d)",
            status);
  cr_assert_eq(s.rv, (int)sizeof(uint64_t), "the subscriber was not woken: %s",
               shmbus_strerror(s.rv));
  cr_assert_eq(s.v, 42u);
  shmbus_sub_stats(s.sub, &st);
  cr_assert_geq(st.wakeups, 1, "the subscriber found the message only when its wait timed out");
  close(to_child[1]);
  close(from_child[0]);
  lw_sub_close(&s);
  du_stop(&d);
  d.pid = 0;
}
