/* Wake-ups against a real shmbusd: a sleeping subscriber is woken by a
 * single message, every time, and the counters of struct shmbus_pub_stats
 * and struct shmbus_sub_stats say exactly how many wake-ups it took.
 *
 * The subscriber runs in a thread on a bus of its own (a bus is used by
 * one thread at a time). The test never sleeps to synchronise: before each
 * message it waits until the subscriber reported the previous one and its
 * sleeper bit is set again in shared memory, i.e. until it is really
 * asleep (or about to be: the bit is set before it blocks). */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <uv.h>

#include "bus.h"
#include "daemonutil.h"
#include "ring.h"
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

TestSuite(wake, .init = setup, .fini = teardown, .timeout = 120);

#define WAKE_ROUNDS 200u

struct wake_sub {
  shmbus_bus *bus;
  shmbus_sub *sub;
  uv_loop_t loop;
  _Atomic uint64_t got; /* messages received, in order */
  uint64_t burst;       /* messages per burst before each single one */
  uint64_t bad;         /* messages out of order or of the wrong content */
  int err;
  struct shmbus_sub_stats st;
};

/* Messages the subscriber waits for: WAKE_ROUNDS single ones and a burst
 * before each. */
static uint64_t wake_total(const struct wake_sub *w) {
  return WAKE_ROUNDS * (w->burst + 1);
}

static void wake_check(struct wake_sub *w, const void *data, size_t len) {
  uint64_t v;
  uint64_t want = atomic_load_explicit(&w->got, memory_order_relaxed);

  if (len != sizeof(v)) {
    w->bad++;
  } else {
    memcpy(&v, data, sizeof(v));
    w->bad += v != want;
  }
  /* Release: the parent that sees the count sees our cleared sleeper bit
   * (the receive cleared it before). */
  atomic_store_explicit(&w->got, want + 1, memory_order_release);
}

static void *wake_blocking(void *arg) {
  struct wake_sub *w = arg;
  uint64_t v;
  int rv;

  while (atomic_load_explicit(&w->got, memory_order_relaxed) < wake_total(w)) {
    rv = shmbus_sub_recv(w->sub, &v, sizeof(v), NULL, 30000);
    if (rv < 0) {
      w->err = rv;
      break;
    }
    wake_check(w, &v, (size_t)rv);
  }
  return NULL;
}

static void wake_uv_msg(shmbus_sub *sub, const void *data, size_t len,
                        const struct shmbus_msg_info *info, void *arg) {
  struct wake_sub *w = arg;
  (void)info;
  wake_check(w, data, len);
  (void)sub;
  /* The loop stops after this callback, once its in-place read (reliable)
   * has ended; the thread stops delivery then. */
  if (atomic_load_explicit(&w->got, memory_order_relaxed) == wake_total(w))
    uv_stop(&w->loop);
}

static void *wake_uv(void *arg) {
  struct wake_sub *w = arg;

  if ((w->err = shmbus_uv_sub_start(w->sub, &w->loop, wake_uv_msg, w)) == 0) {
    (void)uv_run(&w->loop, UV_RUN_DEFAULT);
    w->err = shmbus_uv_sub_stop(w->sub);
  }
  return NULL;
}

/* Waits until the subscriber has received `n` messages and sleeps again
 * (its bit is set in the publisher's view of the topic). Bounded: 30 s. */
static void wake_until_asleep(struct wake_sub *w, shmbus_pub *pub, uint64_t n) {
  uint64_t end = shmbus__clock_mono_ns() + 30000000000u;

  while (atomic_load_explicit(&w->got, memory_order_acquire) < n ||
         !shmbus__ring_any_sleeper(&pub->h.region.ring)) {
    cr_assert_lt(shmbus__clock_mono_ns(), end, "the subscriber never went to sleep (%llu of %llu)",
                 (unsigned long long)atomic_load(&w->got), (unsigned long long)n);
    (void)shmbus_bus_process(pub->h.bus);
    sched_yield();
  }
}

/* One message per round, each sent to a subscriber that is asleep: each
 * must wake it (nothing lost, nothing late), with exactly one signal. With
 * `burst`, each round first sends `burst` messages flat out (the
 * subscriber learns that messages come close together and stays awake
 * between them), then, once it has them all and sleeps, a single one: the
 * stay awake must never swallow the wake-up. */
static void wake_rounds_opts(bool uv, bool reliable, uint32_t spin_us, uint64_t burst) {
  struct shmbus_sub_opts so = {.reliable = reliable, .spin_us = spin_us};
  struct shmbus_pub_stats ps;
  struct wake_sub w;
  shmbus_bus *bus = du_bus(&d);
  shmbus_pub *pub;
  pthread_t t;
  uint64_t r;

  memset(&w, 0, sizeof(w));
  w.burst = burst;
  w.bus = du_bus(&d);
  cr_assert_eq(shmbus_pub_open(bus, "t/wake", NULL, &pub), 0);
  cr_assert_eq(shmbus_sub_open(w.bus, "t/wake", &so, &w.sub), 0);
  cr_assert_eq(shmbus_pub_wait_subs(pub, 1, 10000), 1);
  if (uv) {
    cr_assert_eq(uv_loop_init(&w.loop), 0);
    cr_assert_eq(shmbus_uv_bus_start(w.bus, &w.loop), 0);
  }
  cr_assert_eq(pthread_create(&t, NULL, uv ? wake_uv : wake_blocking, &w), 0);
  for (r = 0; r < WAKE_ROUNDS; r++) {
    uint64_t i = r * (burst + 1), k;
    wake_until_asleep(&w, pub, i);
    for (k = 0; k < burst; k++) {
      uint64_t v = i + k;
      int rv;
      /* A reliable ring may be full: wait for room (the subscriber's
       * signal, counted in ps.wakeups). */
      while ((rv = shmbus_pub_publish(pub, &v, sizeof(v))) == SHMBUS_EFULL)
        cr_assert_eq(shmbus_pub_wait(pub, 30000), 0);
      cr_assert_eq(rv, 0);
    }
    if (burst != 0)
      wake_until_asleep(&w, pub, i + burst);
    k = i + burst;
    cr_assert_eq(shmbus_pub_publish(pub, &k, sizeof(k)), 0);
  }
  cr_assert_eq(pthread_join(t, NULL), 0);
  /* The thread is done with its bus (the last in-place read ended after
   * the callback): its counts are final. */
  shmbus_sub_stats(w.sub, &w.st);
  cr_assert_eq(w.err, 0, "%s", shmbus_strerror(w.err));
  cr_assert_eq(atomic_load(&w.got), wake_total(&w));
  cr_assert_eq(w.bad, 0);
  cr_assert_eq(w.st.received, wake_total(&w));
  cr_assert_eq(w.st.lost, 0);
  shmbus_pub_stats(pub, &ps);
  cr_assert_eq(ps.published, wake_total(&w));
  if (burst == 0) {
    /* One signal per message (the subscriber slept before each), and
     * each woke it once. */
    cr_assert_eq(ps.wakeups_sent, WAKE_ROUNDS, "signals sent: %llu",
                 (unsigned long long)ps.wakeups_sent);
    cr_assert_eq(w.st.wakeups, WAKE_ROUNDS, "wake-ups received: %llu",
                 (unsigned long long)w.st.wakeups);
    cr_assert_eq(ps.wakeups, 0);
  } else {
    /* At least the single messages' signals (the subscriber slept before
     * each); a signal is never received twice. */
    cr_assert_geq(ps.wakeups_sent, WAKE_ROUNDS);
    cr_assert_leq(w.st.wakeups, ps.wakeups_sent);
  }
  shmbus_sub_close(w.sub);
  shmbus_bus_close(w.bus);
  if (uv) {
    (void)uv_run(&w.loop, UV_RUN_DEFAULT); /* the close callbacks */
    cr_assert_eq(uv_loop_close(&w.loop), 0);
  }
  shmbus_bus_close(bus);
}

static void wake_rounds(bool uv, bool reliable) {
  wake_rounds_opts(uv, reliable, SHMBUS_SPIN_NEVER, 0);
}

Test(wake, a_sleeping_subscriber_is_woken_by_every_single_message) {
  wake_rounds(false, false);
}

Test(wake, a_sleeping_reliable_subscriber_is_woken_by_every_single_message) {
  wake_rounds(false, true);
}

Test(wake, a_sleeping_uv_subscriber_is_woken_by_every_single_message) {
  wake_rounds(true, false);
}

/* While the subscriber keeps up (nobody sleeps), publishing signals
 * nobody; NULL handles give zeros. */
Test(wake, nobody_asleep_no_signal) {
  struct shmbus_pub_stats ps;
  struct shmbus_sub_stats ss;
  shmbus_bus *bus = du_bus(&d);
  shmbus_pub *pub;
  shmbus_sub *sub;
  uint64_t i, v;

  cr_assert_eq(shmbus_sub_open(bus, "t/awake", NULL, &sub), 0);
  cr_assert_eq(shmbus_pub_open(bus, "t/awake", NULL, &pub), 0);
  for (i = 0; i < 1000; i++) {
    cr_assert_eq(shmbus_pub_publish(pub, &i, sizeof(i)), 0);
    cr_assert_eq(shmbus_sub_try_recv(sub, &v, sizeof(v), NULL), (int)sizeof(v));
    cr_assert_eq(v, i);
  }
  shmbus_pub_stats(pub, &ps);
  shmbus_sub_stats(sub, &ss);
  cr_assert_eq(ps.published, 1000);
  cr_assert_eq(ps.wakeups_sent, 0);
  cr_assert_eq(ss.received, 1000);
  cr_assert_eq(ss.wakeups, 0);
  shmbus_pub_stats(NULL, &ps);
  cr_assert_eq(ps.published + ps.wakeups_sent + ps.wakeups + ps.deadline_overwrites, 0);
  shmbus_pub_stats(pub, NULL);
  shmbus_bus_close(bus);
}

/* The stay awake (spin_us) never swallows a wake-up: after bursts that
 * taught the subscriber to stay awake, a single message still wakes it. */
Test(wake, staying_awake_never_loses_a_wake_up) {
  wake_rounds_opts(false, false, SHMBUS_SPIN_MAX_US, 64);
}

Test(wake, staying_awake_never_loses_a_wake_up_reliable) {
  wake_rounds_opts(false, true, 0, 64);
}

Test(wake, staying_awake_never_loses_a_wake_up_in_libuv) {
  wake_rounds_opts(true, false, 1000, 64);
}

Test(wake, staying_awake_never_loses_a_wake_up_in_libuv_reliable) {
  wake_rounds_opts(true, true, 0, 300);
}

/* The bound is checked. */
Test(wake, spin_bound_out_of_range) {
  struct shmbus_sub_opts so = {.spin_us = SHMBUS_SPIN_MAX_US + 1};
  shmbus_bus *bus = du_bus(&d);
  shmbus_sub *sub;

  cr_assert_eq(shmbus_sub_open(bus, "t/spin", &so, &sub), -EINVAL);
  so.spin_us = SHMBUS_SPIN_MAX_US;
  cr_assert_eq(shmbus_sub_open(bus, "t/spin", &so, &sub), 0);
  shmbus_sub_close(sub);
  so.spin_us = SHMBUS_SPIN_NEVER;
  cr_assert_eq(shmbus_sub_open(bus, "t/spin", &so, &sub), 0);
  shmbus_bus_close(bus);
}
