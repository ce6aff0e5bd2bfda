/* Wake-ups against a real shmbusd: a sleeping subscriber is woken by a
 * single message, every time, and the counters of struct shmbus_pub_stats
 * and struct shmbus_sub_stats say exactly how many wake-ups it took.
 *
 * The subscriber runs in a thread on a bus of its own (a bus is used by
 * one thread at a time). The test never sleeps to synchronise: before each
 * message it waits until the subscriber reported the previous one, its
 * sleeper bit is set again in shared memory, and its thread blocks in the
 * kernel (wake_blocked). The bit alone is not enough: the subscriber sets
 * it before it reloads its slot, and a message published between the two
 * is read at that reload, without a wake-up (src/ring.c, "Sleep"). That
 * is the sleep protocol working, not a lost wake-up, but the test then
 * counted one signal or wake-up too few, and with a wake threshold the
 * subscriber's next sleep counted its K messages from one message
 * further (the flake of wake_after_k_messages_in_libuv: "round 198,
 * message 7: 199 signals"). */
/* syscall(SYS_gettid): the subscriber thread's id in /proc. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
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

static void wake_abandon(void);

static void teardown(void) {
  wake_abandon();
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
  uint64_t total;       /* messages to wait for, when not WAKE_ROUNDS rounds */
  uint64_t bad;         /* messages out of order or of the wrong content */
  int err;
  struct shmbus_sub_stats st;
  _Atomic long tid; /* the subscriber thread's kernel id, 0 until it runs */
  uv_async_t stop;  /* libuv: ends the loop from another thread (teardown) */
  bool uv;          /* the subscriber runs a libuv loop */
  bool running;     /* its thread was started and not joined yet */
  pthread_t thread;
};

/* The subscriber of the test running now, for the teardown: a failed
 * assertion leaves the test function with the thread still running on
 * the loop and bus it was given. Static storage, so that nothing it uses
 * lies on the stack of a function that has returned. */
static struct wake_sub wake_w;

/* Whether the subscriber thread blocks in the kernel now (state S in
 * /proc/self/task/<tid>/stat: its poll, epoll_wait or the like). Seen
 * after its sleeper bit of this sleep, it tells that the thread went past
 * the reload of its slot, which has no blocking call before it: whatever
 * is published from now on is read only after a wake-up (src/ring.c,
 * "Sleep"). */
static bool wake_blocked(struct wake_sub *w) {
  long tid = atomic_load_explicit(&w->tid, memory_order_relaxed);
  char path[64];
  char line[512];
  char *p;
  FILE *f;
  bool rv = false;

  if (tid == 0)
    return false;
  snprintf(path, sizeof(path), "/proc/self/task/%ld/stat", tid);
  if ((f = fopen(path, "r")) == NULL)
    return false;
  if (fgets(line, sizeof(line), f) != NULL && (p = strrchr(line, ')')) != NULL)
    rv = p[1] == ' ' && p[2] == 'S';
  fclose(f);
  return rv;
}

static void wake_stop_cb(uv_async_t *a) {
  uv_stop(a->loop);
}

/* Starts the subscriber thread; libuv's async handle (made here, on the
 * loop's thread before it runs) lets the teardown end its loop. */
static void wake_run(struct wake_sub *w, bool uv, void *(*fn)(void *)) {
  w->uv = uv;
  if (uv) {
    cr_assert_eq(uv_async_init(&w->loop, &w->stop, wake_stop_cb), 0);
    uv_unref((uv_handle_t *)&w->stop); /* the loop ends without it */
  }
  cr_assert_eq(pthread_create(&w->thread, NULL, fn, w), 0);
  w->running = true;
}

static void wake_join(struct wake_sub *w) {
  cr_assert_eq(pthread_join(w->thread, NULL), 0);
  w->running = false;
}

/* After the last uv_run of the loop's thread: closes the async handle and
 * runs the close callbacks. */
static void wake_loop_close(struct wake_sub *w) {
  uv_close((uv_handle_t *)&w->stop, NULL);
  (void)uv_run(&w->loop, UV_RUN_DEFAULT); /* the close callbacks */
  cr_assert_eq(uv_loop_close(&w->loop), 0);
}

/* The teardown after a failed assertion: a loop thread is stopped and
 * joined (left running, it used the loop while the test exited: libuv's
 * assertion in uv__io_poll); a blocking one, in a receive bounded by its
 * timeout and touching only static and heap memory, is left to the
 * process's exit. */
static void wake_abandon(void) {
  struct wake_sub *w = &wake_w;

  if (!w->running)
    return;
  w->running = false;
  if (w->uv) {
    (void)uv_async_send(&w->stop);
    (void)pthread_join(w->thread, NULL);
  } else {
    (void)pthread_detach(w->thread);
  }
}

static void wake_set_tid(struct wake_sub *w) {
  atomic_store_explicit(&w->tid, (long)syscall(SYS_gettid), memory_order_relaxed);
}

/* Messages the subscriber waits for: WAKE_ROUNDS single ones and a burst
 * before each. */
static uint64_t wake_total(const struct wake_sub *w) {
  if (w->total != 0)
    return w->total;
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

  wake_set_tid(w);
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

  wake_set_tid(w);
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
         !shmbus__ring_any_sleeper(&pub->h.region.ring) || !wake_blocked(w)) {
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
  struct wake_sub *w = &wake_w;
  shmbus_bus *bus = du_bus(&d);
  shmbus_pub *pub;
  uint64_t r;

  memset(w, 0, sizeof(*w));
  w->burst = burst;
  w->bus = du_bus(&d);
  cr_assert_eq(shmbus_pub_open(bus, "t/wake", NULL, &pub), 0);
  cr_assert_eq(shmbus_sub_open(w->bus, "t/wake", &so, &w->sub), 0);
  cr_assert_eq(shmbus_pub_wait_subs(pub, 1, 10000), 1);
  if (uv) {
    cr_assert_eq(uv_loop_init(&w->loop), 0);
    cr_assert_eq(shmbus_uv_bus_start(w->bus, &w->loop), 0);
  }
  wake_run(w, uv, uv ? wake_uv : wake_blocking);
  for (r = 0; r < WAKE_ROUNDS; r++) {
    uint64_t i = r * (burst + 1), k;
    wake_until_asleep(w, pub, i);
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
      wake_until_asleep(w, pub, i + burst);
    k = i + burst;
    cr_assert_eq(shmbus_pub_publish(pub, &k, sizeof(k)), 0);
  }
  wake_join(w);
  /* The thread is done with its bus (the last in-place read ended after
   * the callback): its counts are final. */
  shmbus_sub_stats(w->sub, &w->st);
  cr_assert_eq(w->err, 0, "%s", shmbus_strerror(w->err));
  cr_assert_eq(atomic_load(&w->got), wake_total(w));
  cr_assert_eq(w->bad, 0);
  cr_assert_eq(w->st.received, wake_total(w));
  cr_assert_eq(w->st.lost, 0);
  shmbus_pub_stats(pub, &ps);
  cr_assert_eq(ps.published, wake_total(w));
  if (burst == 0) {
    /* One signal per message (the subscriber slept before each), and
     * each woke it once. */
    cr_assert_eq(ps.wakeups_sent, WAKE_ROUNDS, "signals sent: %llu",
                 (unsigned long long)ps.wakeups_sent);
    cr_assert_eq(w->st.wakeups, WAKE_ROUNDS, "wake-ups received: %llu",
                 (unsigned long long)w->st.wakeups);
    cr_assert_eq(ps.wakeups, 0);
  } else {
    /* At least the single messages' signals (the subscriber slept before
     * each); a signal is never received twice. */
    cr_assert_geq(ps.wakeups_sent, WAKE_ROUNDS);
    cr_assert_leq(w->st.wakeups, ps.wakeups_sent);
  }
  shmbus_sub_close(w->sub);
  shmbus_bus_close(w->bus);
  if (uv)
    wake_loop_close(w);
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

/* ---- wake thresholds (shmbus_sub_opts.wake_after, wake_within_us) ---- */

/* The subscriber's record in the publisher's view: the test watches its
 * sleeper bit and wake threshold to know how it sleeps. */
static bool wake_armed(shmbus_pub *pub, const struct wake_sub *w, uint64_t *wake_seq) {
  const struct shmbus__ring *r = &pub->h.region.ring;
  uint32_t g = w->sub->ring.index;

  if (!shmbus__ring_sub_sleeping(r, g))
    return false;
  *wake_seq = shmbus__ring_sub_wake_seq(r, g);
  return true;
}

/* Waits until the subscriber has received `n` messages and sleeps again,
 * with a wake threshold (`threshold`) or without. A threshold must lie at
 * or beyond seq n: the bit and threshold of the sleep that just ended stay
 * until the subscriber arms again, and taking them for the new sleep let
 * the test publish early (the subscriber then read the first message of
 * the round before arming, and its threshold moved one message further).
 * Bounded: 30 s. */
static void wake_until_armed(struct wake_sub *w, shmbus_pub *pub, uint64_t n, bool threshold) {
  uint64_t end = shmbus__clock_mono_ns() + 30000000000u;
  uint64_t ws = 0;

  while (atomic_load_explicit(&w->got, memory_order_acquire) < n || !wake_armed(pub, w, &ws) ||
         (ws != 0) != threshold || (threshold && ws < n) || !wake_blocked(w)) {
    cr_assert_lt(shmbus__clock_mono_ns(), end,
                 "the subscriber never slept %s a threshold (%llu of %llu)",
                 threshold ? "with" : "without", (unsigned long long)atomic_load(&w->got),
                 (unsigned long long)n);
    (void)shmbus_bus_process(pub->h.bus);
    sched_yield();
  }
}

static void wake_publish(shmbus_pub *pub, uint64_t v) {
  int rv;
  while ((rv = shmbus_pub_publish(pub, &v, sizeof(v))) == SHMBUS_EFULL)
    cr_assert_eq(shmbus_pub_wait(pub, 30000), 0);
  cr_assert_eq(rv, 0, "%s", shmbus_strerror(rv));
}

static uint64_t wake_signals(shmbus_pub *pub) {
  struct shmbus_pub_stats ps;
  shmbus_pub_stats(pub, &ps);
  return ps.wakeups_sent;
}

static void wake_start(struct wake_sub *w, shmbus_pub **pub, const struct shmbus_sub_opts *so,
                       bool uv, const char *topic) {
  w->bus = du_bus(&d);
  cr_assert_eq(shmbus_sub_open(w->bus, topic, so, &w->sub), 0);
  cr_assert_eq(shmbus_pub_open(du_bus(&d), topic, NULL, pub), 0);
  cr_assert_eq(shmbus_pub_wait_subs(*pub, 1, 10000), 1);
  if (uv) {
    cr_assert_eq(uv_loop_init(&w->loop), 0);
    cr_assert_eq(shmbus_uv_bus_start(w->bus, &w->loop), 0);
  }
  wake_run(w, uv, uv ? wake_uv : wake_blocking);
}

static void wake_finish(struct wake_sub *w, shmbus_pub *pub, bool uv) {
  shmbus_bus *bus = pub->h.bus;

  wake_join(w);
  shmbus_sub_stats(w->sub, &w->st);
  cr_assert_eq(w->err, 0, "%s", shmbus_strerror(w->err));
  cr_assert_eq(atomic_load(&w->got), wake_total(w));
  cr_assert_eq(w->bad, 0);
  cr_assert_eq(w->st.received, wake_total(w));
  cr_assert_eq(w->st.lost, 0);
  shmbus_sub_close(w->sub);
  shmbus_bus_close(w->bus);
  if (uv)
    wake_loop_close(w);
  shmbus_bus_close(bus);
}

#define WAKE_AFTER 8u

/* A paced publisher (one message at a time) and a subscriber that asked
 * to be woken after WAKE_AFTER messages: the first message wakes it at
 * once (it was idle), then every WAKE_AFTER-th and no other, each waking
 * it once; the timer (a minute) never ends a sleep. */
static void wake_after_rounds(bool uv, bool reliable) {
  struct shmbus_sub_opts so = {.reliable = reliable,
                               .spin_us = SHMBUS_SPIN_NEVER,
                               .wake_after = WAKE_AFTER,
                               .wake_within_us = SHMBUS_WAKE_WITHIN_MAX_US};
  struct wake_sub *w = &wake_w;
  shmbus_pub *pub;
  uint64_t r, k;

  memset(w, 0, sizeof(*w));
  w->total = 1 + WAKE_ROUNDS * WAKE_AFTER;
  wake_start(w, &pub, &so, uv, "t/after");
  wake_until_armed(w, pub, 0, false);
  wake_publish(pub, 0);
  cr_assert_eq(wake_signals(pub), 1, "an idle subscriber is woken by the first message");
  for (r = 0; r < WAKE_ROUNDS; r++) {
    wake_until_armed(w, pub, 1 + r * WAKE_AFTER, true);
    for (k = 0; k < WAKE_AFTER; k++) {
      wake_publish(pub, 1 + r * WAKE_AFTER + k);
      cr_assert_eq(wake_signals(pub), k + 1 < WAKE_AFTER ? 1 + r : 2 + r,
                   "round %llu, message %llu: %llu signals", (unsigned long long)r,
                   (unsigned long long)k, (unsigned long long)wake_signals(pub));
    }
  }
  cr_assert_eq(wake_signals(pub), 1 + WAKE_ROUNDS);
  wake_finish(w, pub, uv);
  /* WAKE_AFTER messages per wake-up, each signal received once. */
  cr_assert_eq(w->st.wakeups, 1 + WAKE_ROUNDS, "wake-ups: %llu", (unsigned long long)w->st.wakeups);
  cr_assert_eq(w->st.timer_wakeups, 0);
}

Test(wake, wake_after_k_messages) {
  wake_after_rounds(false, false);
}

Test(wake, wake_after_k_messages_reliable) {
  wake_after_rounds(false, true);
}

Test(wake, wake_after_k_messages_in_libuv) {
  wake_after_rounds(true, false);
}

Test(wake, wake_after_k_messages_in_libuv_reliable) {
  wake_after_rounds(true, true);
}

#define WAKE_TIMER_ROUNDS 10u

/* Fewer messages than the threshold still come, by the timer: after a
 * first message (which wakes the idle subscriber at once), each round
 * sends one message to the subscriber sleeping with a threshold it will
 * not reach. Its timer period (50 ms) ends the sleep and delivers it; no
 * signal is sent for it. Should the test be slower than the period, the
 * period ends empty first and the message wakes the subscriber at once
 * (counted, and the next round tries again). Either way each round takes
 * exactly one timer wake-up. At the end, an empty period makes the
 * subscriber sleep without a threshold, and the last message wakes it by
 * a signal at once. Nothing is asserted on time. */
static void wake_within_rounds(bool uv, bool reliable) {
  struct shmbus_sub_opts so = {.reliable = reliable,
                               .spin_us = SHMBUS_SPIN_NEVER,
                               .wake_after = 1000000,
                               .wake_within_us = 50000};
  struct wake_sub *w = &wake_w;
  shmbus_pub *pub;
  uint64_t r, before, sent, deferred = 0;

  memset(w, 0, sizeof(*w));
  w->total = WAKE_TIMER_ROUNDS + 2;
  wake_start(w, &pub, &so, uv, "t/within");
  wake_until_armed(w, pub, 0, false);
  wake_publish(pub, 0);
  cr_assert_eq(wake_signals(pub), 1);
  for (r = 0; r < WAKE_TIMER_ROUNDS; r++) {
    uint64_t ws = 0;
    /* Asleep again, with a threshold or (the period ended meanwhile)
     * without. */
    uint64_t end = shmbus__clock_mono_ns() + 30000000000u;
    while (atomic_load_explicit(&w->got, memory_order_acquire) < 1 + r ||
           !wake_armed(pub, w, &ws) || !wake_blocked(w))
      cr_assert_lt(shmbus__clock_mono_ns(), end, "the subscriber never went to sleep");
    before = wake_signals(pub);
    wake_publish(pub, 1 + r);
    deferred += wake_signals(pub) == before;
  }
  wake_until_armed(w, pub, 1 + WAKE_TIMER_ROUNDS, false);
  before = wake_signals(pub);
  wake_publish(pub, 1 + WAKE_TIMER_ROUNDS);
  cr_assert_eq(wake_signals(pub), before + 1, "after an empty period, a message wakes at once");
  sent = wake_signals(pub);
  wake_finish(w, pub, uv); /* closes the publisher */
  cr_assert_gt(deferred, 0, "no message was left to the timer in %u rounds", WAKE_TIMER_ROUNDS);
  /* Signals went only to sleeps without a threshold (each received
   * once); each round and the last empty period took one timer wake-up. */
  cr_assert_eq(w->st.wakeups, sent);
  cr_assert_eq(sent, 2 + WAKE_TIMER_ROUNDS - deferred);
  cr_assert_eq(w->st.timer_wakeups, WAKE_TIMER_ROUNDS + 1, "timer wake-ups: %llu (deferred %llu)",
               (unsigned long long)w->st.timer_wakeups, (unsigned long long)deferred);
}

Test(wake, fewer_than_wake_after_come_by_the_timer) {
  wake_within_rounds(false, false);
}

Test(wake, fewer_than_wake_after_come_by_the_timer_reliable) {
  wake_within_rounds(false, true);
}

Test(wake, fewer_than_wake_after_come_by_the_timer_in_libuv) {
  wake_within_rounds(true, false);
}

/* Options are checked: a threshold needs a period within bounds. */
Test(wake, wake_threshold_options) {
  struct shmbus_sub_opts so = {.wake_after = 4};
  shmbus_bus *bus = du_bus(&d);
  shmbus_sub *sub;

  cr_assert_eq(shmbus_sub_open(bus, "t/opts", &so, &sub), -EINVAL);
  so.wake_within_us = SHMBUS_WAKE_WITHIN_MAX_US + 1;
  cr_assert_eq(shmbus_sub_open(bus, "t/opts", &so, &sub), -EINVAL);
  so.wake_within_us = SHMBUS_WAKE_WITHIN_MAX_US;
  cr_assert_eq(shmbus_sub_open(bus, "t/opts", &so, &sub), 0);
  shmbus_sub_close(sub);
  so.wake_after = 1; /* off: no period needed */
  so.wake_within_us = 0;
  cr_assert_eq(shmbus_sub_open(bus, "t/opts", &so, &sub), 0);
  shmbus_bus_close(bus);
}

/* A publisher flat out against a subscriber with a threshold: every
 * message is received in order or counted lost (lossy), received (reliable),
 * including the last few, which fewer than wake_after follow (the timer
 * brings them). */
#define WAKE_STRESS_N 200000u

struct wake_stress {
  shmbus_sub *sub;
  uv_loop_t loop;
  bool reliable;
  uint64_t next; /* the lowest value still expected */
  uint64_t got;
  uint64_t bad;
  int err;
};

static void wake_stress_check(struct wake_stress *s, const void *data, size_t len) {
  uint64_t v;

  if (len != sizeof(v)) {
    s->bad++;
    return;
  }
  memcpy(&v, data, sizeof(v));
  /* In order, and without gaps when reliable. */
  if (v < s->next || (s->reliable && v != s->next))
    s->bad++;
  s->next = v + 1;
  s->got++;
}

static void *wake_stress_blocking(void *arg) {
  struct wake_stress *s = arg;
  uint64_t v;
  int rv;

  while (s->next < WAKE_STRESS_N) {
    if ((rv = shmbus_sub_recv(s->sub, &v, sizeof(v), NULL, 30000)) < 0) {
      s->err = rv;
      break;
    }
    wake_stress_check(s, &v, (size_t)rv);
  }
  return NULL;
}

static void wake_stress_msg(shmbus_sub *sub, const void *data, size_t len,
                            const struct shmbus_msg_info *info, void *arg) {
  struct wake_stress *s = arg;
  (void)sub;
  (void)info;
  wake_stress_check(s, data, len);
  if (s->next >= WAKE_STRESS_N)
    uv_stop(&s->loop);
}

static void *wake_stress_uv(void *arg) {
  struct wake_stress *s = arg;

  if ((s->err = shmbus_uv_sub_start(s->sub, &s->loop, wake_stress_msg, s)) == 0) {
    (void)uv_run(&s->loop, UV_RUN_DEFAULT);
    s->err = shmbus_uv_sub_stop(s->sub);
  }
  return NULL;
}

static void wake_stress(bool uv, bool reliable) {
  struct shmbus_sub_opts so = {.reliable = reliable, .wake_after = 32, .wake_within_us = 1000};
  struct shmbus_sub_stats st;
  struct wake_stress s;
  shmbus_bus *sbus = du_bus(&d);
  shmbus_bus *bus = du_bus(&d);
  shmbus_pub *pub;
  pthread_t t;
  uint64_t i;

  memset(&s, 0, sizeof(s));
  s.reliable = reliable;
  cr_assert_eq(shmbus_sub_open(sbus, "t/stress", &so, &s.sub), 0);
  cr_assert_eq(shmbus_pub_open(bus, "t/stress", NULL, &pub), 0);
  cr_assert_eq(shmbus_pub_wait_subs(pub, 1, 10000), 1);
  if (uv) {
    cr_assert_eq(uv_loop_init(&s.loop), 0);
    cr_assert_eq(shmbus_uv_bus_start(sbus, &s.loop), 0);
  }
  cr_assert_eq(pthread_create(&t, NULL, uv ? wake_stress_uv : wake_stress_blocking, &s), 0);
  for (i = 0; i < WAKE_STRESS_N; i++)
    wake_publish(pub, i);
  cr_assert_eq(pthread_join(t, NULL), 0);
  shmbus_sub_stats(s.sub, &st);
  cr_assert_eq(s.err, 0, "%s", shmbus_strerror(s.err));
  cr_assert_eq(s.bad, 0);
  cr_assert_eq(st.received, s.got);
  cr_assert_eq(st.received + st.lost, WAKE_STRESS_N, "received %llu + lost %llu",
               (unsigned long long)st.received, (unsigned long long)st.lost);
  if (reliable)
    cr_assert_eq(st.lost, 0);
  shmbus_sub_close(s.sub);
  shmbus_bus_close(sbus);
  if (uv) {
    (void)uv_run(&s.loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&s.loop), 0);
  }
  shmbus_bus_close(bus);
}

Test(wake, threshold_stress) {
  wake_stress(false, false);
}

Test(wake, threshold_stress_reliable) {
  wake_stress(false, true);
}

Test(wake, threshold_stress_in_libuv) {
  wake_stress(true, false);
}

Test(wake, threshold_stress_in_libuv_reliable) {
  wake_stress(true, true);
}

/* The end of every burst on a tiny ring, as `shmbus echo` sees it: a lossy
 * libuv subscriber with echo's threshold (wake_after clamped to a quarter
 * of 8 slots, i.e. 2; a 5 ms period) and bursts of 1 to 23 messages, each
 * waited for before the next: the last message of each burst, which
 * fewer than the threshold may follow, must arrive (by a signal or by the
 * timer); every message is received or counted lost. The subscriber never
 * stays awake polling, so it sleeps at the end of every burst. The wait
 * is bounded (10 s a burst) and never a sleep. */
#define TINY_BURSTS 1000u

struct tiny_sub {
  shmbus_sub *sub;
  uv_loop_t loop;
  _Atomic uint64_t high; /* the highest value received, plus one */
  uint64_t stop_at;      /* the number of messages sent in all */
  uint64_t bad;          /* out of order or of the wrong size */
  int err;
};

static void tiny_msg(shmbus_sub *sub, const void *data, size_t len,
                     const struct shmbus_msg_info *info, void *arg) {
  struct tiny_sub *s = arg;
  uint64_t v = 0;
  (void)info;

  if (len != sizeof(v)) {
    s->bad++;
    return;
  }
  memcpy(&v, data, sizeof(v));
  s->bad += v < atomic_load_explicit(&s->high, memory_order_relaxed);
  /* Release: the main thread that sees it publishes the next burst. */
  atomic_store_explicit(&s->high, v + 1, memory_order_release);
  (void)sub;
  if (v + 1 == s->stop_at)
    uv_stop(&s->loop);
}

static void *tiny_thread(void *arg) {
  struct tiny_sub *s = arg;

  if ((s->err = shmbus_uv_sub_start(s->sub, &s->loop, tiny_msg, s)) == 0) {
    (void)uv_run(&s->loop, UV_RUN_DEFAULT);
    s->err = shmbus_uv_sub_stop(s->sub);
  }
  return NULL;
}

static uint64_t tiny_burst(uint64_t r) {
  return 1 + (r * 7) % 23;
}

Test(wake, threshold_on_a_tiny_ring_delivers_the_end_of_every_burst) {
  struct shmbus_sub_opts so = {.topic = {.slots = 8, .slot_size = 64, .max_subs = 4, .max_pubs = 2},
                               .spin_us = SHMBUS_SPIN_NEVER, /* it sleeps after every burst */
                               .wake_after = UINT32_MAX,
                               .wake_within_us = 5000};
  struct shmbus_sub_stats st;
  struct tiny_sub s;
  shmbus_bus *sbus = du_bus(&d);
  shmbus_bus *bus = du_bus(&d);
  shmbus_pub *pub;
  pthread_t t;
  uint64_t v = 0, r, k;

  memset(&s, 0, sizeof(s));
  for (r = 0; r < TINY_BURSTS; r++)
    s.stop_at += tiny_burst(r);
  cr_assert_eq(shmbus_sub_open(sbus, "t/tiny", &so, &s.sub), 0);
  cr_assert_eq(shmbus_pub_open(bus, "t/tiny", &so.topic, &pub), 0);
  cr_assert_eq(shmbus_pub_wait_subs(pub, 1, 10000), 1);
  cr_assert_eq(uv_loop_init(&s.loop), 0);
  cr_assert_eq(shmbus_uv_bus_start(sbus, &s.loop), 0);
  cr_assert_eq(pthread_create(&t, NULL, tiny_thread, &s), 0);
  for (r = 0; r < TINY_BURSTS; r++) {
    uint64_t end;
    for (k = 0; k < tiny_burst(r); k++, v++)
      cr_assert_eq(shmbus_pub_publish(pub, &v, sizeof(v)), 0);
    end = shmbus__clock_mono_ns() + 10000000000u;
    while (atomic_load_explicit(&s.high, memory_order_acquire) < v) {
      cr_assert_lt(shmbus__clock_mono_ns(), end,
                   "burst %llu: the subscriber has %llu of %llu and was never woken",
                   (unsigned long long)r, (unsigned long long)atomic_load(&s.high),
                   (unsigned long long)v);
      sched_yield();
    }
  }
  /* The thread stops its loop after the last message: its counts are
   * final then. */
  cr_assert_eq(pthread_join(t, NULL), 0);
  shmbus_sub_stats(s.sub, &st);
  cr_assert_eq(s.err, 0, "%s", shmbus_strerror(s.err));
  cr_assert_eq(s.bad, 0);
  cr_assert_eq(st.received + st.lost, v, "received %llu + lost %llu != %llu",
               (unsigned long long)st.received, (unsigned long long)st.lost, (unsigned long long)v);
  cr_log_info("tiny ring: received %llu, lost %llu, timer wake-ups %llu, wake-ups %llu",
              (unsigned long long)st.received, (unsigned long long)st.lost,
              (unsigned long long)st.timer_wakeups, (unsigned long long)st.wakeups);
  shmbus_sub_close(s.sub);
  shmbus_bus_close(sbus);
  (void)uv_run(&s.loop, UV_RUN_DEFAULT); /* the close callbacks */
  cr_assert_eq(uv_loop_close(&s.loop), 0);
  shmbus_bus_close(bus);
}

/* ---- in-place delivery for lossy subscribers in libuv ----------------- */

#define INPLACE_N 20000u
#define INPLACE_SIZE 4096u

struct inplace_sub {
  shmbus_sub *sub;
  uv_loop_t loop;
  uint64_t intact;  /* callbacks whose message shmbus_uv_sub_intact confirmed */
  uint64_t overrun; /* callbacks told SHMBUS_EOVERRUN */
  uint64_t torn;    /* confirmed messages whose bytes disagree: must stay 0 */
  uint64_t last;    /* the highest value seen */
  int bad_state;    /* what shmbus_uv_sub_intact said outside a callback */
  int err;
};

/* Each message is its value repeated: a torn one mixes two values. */
static void inplace_msg(shmbus_sub *sub, const void *data, size_t len,
                        const struct shmbus_msg_info *info, void *arg) {
  struct inplace_sub *s = arg;
  uint64_t first, w;
  bool same = len == INPLACE_SIZE;
  size_t i;
  (void)info;

  memcpy(&first, data, sizeof(first));
  for (i = 0; same && i + 8 <= len; i += 8) {
    memcpy(&w, (const unsigned char *)data + i, 8);
    same = w == first;
  }
  /* Read first, then ask: only a confirmed read is trusted. */
  if (shmbus_uv_sub_intact(sub) != 0) {
    s->overrun++;
    return;
  }
  s->intact++;
  s->torn += !same;
  if (first > s->last)
    s->last = first;
  if (first == INPLACE_N - 1)
    uv_stop(&s->loop);
}

static void *inplace_thread(void *arg) {
  struct inplace_sub *s = arg;

  if ((s->err = shmbus_uv_sub_start_inplace(s->sub, &s->loop, inplace_msg, s)) == 0) {
    (void)uv_run(&s->loop, UV_RUN_DEFAULT);
    s->err = shmbus_uv_sub_stop(s->sub);
  }
  return NULL;
}

/* A publisher flat out over a small ring of large slots, a lossy libuv
 * subscriber reading in place: it is lapped often, sometimes while its
 * callback reads; every message it confirms is whole, every one it was
 * told about was counted once (received: confirmed; lost: overwritten or
 * skipped), nothing is copied for it. */
Test(wake, lossy_in_place_delivery_in_libuv) {
  struct shmbus_sub_opts so = {
      .topic = {.slots = 8, .slot_size = INPLACE_SIZE, .max_subs = 4, .max_pubs = 2}};
  struct shmbus_sub_stats st;
  struct inplace_sub s;
  shmbus_bus *sbus = du_bus(&d);
  shmbus_bus *bus = du_bus(&d);
  static uint64_t buf[INPLACE_SIZE / 8];
  shmbus_pub *pub;
  pthread_t t;
  uint64_t i, k;

  memset(&s, 0, sizeof(s));
  int rv = shmbus_sub_open(sbus, "t/inplace", &so, &s.sub);
  cr_assert_eq(rv, 0, "%s", shmbus_strerror(rv));
  cr_assert_eq(shmbus_uv_sub_intact(s.sub), SHMBUS_ESTATE, "not inside a callback");
  cr_assert_eq(shmbus_uv_sub_intact(NULL), -EINVAL);
  cr_assert_eq(shmbus_pub_open(bus, "t/inplace", &so.topic, &pub), 0);
  cr_assert_eq(shmbus_pub_wait_subs(pub, 1, 10000), 1);
  cr_assert_eq(uv_loop_init(&s.loop), 0);
  cr_assert_eq(shmbus_uv_bus_start(sbus, &s.loop), 0);
  cr_assert_eq(pthread_create(&t, NULL, inplace_thread, &s), 0);
  for (i = 0; i < INPLACE_N; i++) {
    for (k = 0; k < INPLACE_SIZE / 8; k++)
      buf[k] = i;
    cr_assert_eq(shmbus_pub_publish(pub, buf, sizeof(buf)), 0);
  }
  cr_assert_eq(pthread_join(t, NULL), 0);
  shmbus_sub_stats(s.sub, &st);
  cr_assert_eq(s.err, 0, "%s", shmbus_strerror(s.err));
  cr_assert_eq(s.torn, 0, "%llu confirmed messages were torn", (unsigned long long)s.torn);
  cr_assert_eq(s.last, INPLACE_N - 1);
  cr_assert_eq(st.received, s.intact, "received %llu, confirmed %llu",
               (unsigned long long)st.received, (unsigned long long)s.intact);
  cr_assert_eq(st.received + st.lost, INPLACE_N, "received %llu + lost %llu",
               (unsigned long long)st.received, (unsigned long long)st.lost);
  cr_log_info("in place: %llu confirmed, %llu overwritten while read, %llu lost",
              (unsigned long long)s.intact, (unsigned long long)s.overrun,
              (unsigned long long)st.lost);
  shmbus_sub_close(s.sub);
  shmbus_bus_close(sbus);
  (void)uv_run(&s.loop, UV_RUN_DEFAULT);
  cr_assert_eq(uv_loop_close(&s.loop), 0);
  shmbus_bus_close(bus);
}

/* ---- stopping delivery from the callback, at the end of a batch -------- */

/* The libuv drain delivers at most a batch of messages per turn of the
 * loop (256, uv.c) and then continues from its idle handle. A callback
 * that stops delivery, or closes its subscriber, on the last message of a
 * batch must leave nothing behind: the drain used to start the idle
 * handle again after the stop had closed it, and a closed handle that is
 * active keeps the loop alive for ever (shmbus echo --until-last spun at
 * 100 % CPU in its final uv_run, after printing its summary, and a test
 * timed out). So for every stop position around one and two batches, the
 * loop must end once the bus is closed too. */
struct batch_stop {
  shmbus_sub *sub;
  uint64_t stop_at; /* the message (1-based) whose callback stops */
  uint64_t got;
  uint64_t bad;
  bool close; /* close the subscriber instead of stopping delivery */
};

static void batch_stop_msg(shmbus_sub *sub, const void *data, size_t len,
                           const struct shmbus_msg_info *info, void *arg) {
  struct batch_stop *b = arg;
  uint64_t v = 0;
  (void)info;

  memcpy(&v, data, len == sizeof(v) ? sizeof(v) : 0);
  b->bad += len != sizeof(v) || v != b->got || b->got >= b->stop_at;
  if (++b->got != b->stop_at)
    return;
  if (b->close) {
    shmbus_sub_close(sub);
    b->sub = NULL;
  } else {
    cr_assert_eq(shmbus_uv_sub_stop(sub), 0);
  }
}

static void batch_stop_round(uint64_t stop_at, bool reliable, bool close) {
  struct shmbus_sub_opts so = {
      .reliable = reliable,
      .topic = {.slots = 1024, .slot_size = 64, .max_subs = 4, .max_pubs = 2}};
  struct batch_stop b;
  shmbus_bus *sbus = du_bus(&d);
  shmbus_bus *bus = du_bus(&d);
  shmbus_pub *pub;
  uv_loop_t loop;
  char topic[64];
  uint64_t i;
  int turns;

  memset(&b, 0, sizeof(b));
  b.stop_at = stop_at;
  b.close = close;
  snprintf(topic, sizeof(topic), "t/batch/%llu/%d%d", (unsigned long long)stop_at, reliable, close);
  cr_assert_eq(shmbus_sub_open(sbus, topic, &so, &b.sub), 0);
  cr_assert_eq(shmbus_pub_open(bus, topic, &so.topic, &pub), 0);
  /* More than stop_at messages wait before delivery starts: the first
   * drains deliver whole batches. */
  for (i = 0; i < stop_at + 8; i++)
    cr_assert_eq(shmbus_pub_publish(pub, &i, sizeof(i)), 0);
  cr_assert_eq(uv_loop_init(&loop), 0);
  cr_assert_eq(shmbus_uv_bus_start(sbus, &loop), 0);
  cr_assert_eq(shmbus_uv_sub_start(b.sub, &loop, batch_stop_msg, &b), 0);
  /* Turns until the callback stopped delivery (each turn delivers a batch
   * at most), then a few more: nothing is delivered after the stop. */
  for (turns = 0; b.got < stop_at && turns < 64; turns++)
    (void)uv_run(&loop, UV_RUN_NOWAIT);
  for (turns = 0; turns < 4; turns++)
    (void)uv_run(&loop, UV_RUN_NOWAIT);
  cr_assert_eq(b.got, stop_at, "stop at %llu: %llu delivered", (unsigned long long)stop_at,
               (unsigned long long)b.got);
  cr_assert_eq(b.bad, 0);
  /* Without the subscriber's and the bus's handles nothing may keep the
   * loop alive. */
  shmbus_sub_close(b.sub);
  shmbus_bus_close(sbus);
  for (turns = 0; uv_loop_alive(&loop) && turns < 16; turns++)
    (void)uv_run(&loop, UV_RUN_NOWAIT);
  cr_assert(!uv_loop_alive(&loop),
            "stop at %llu (%s, %s): the loop stays alive with no handle of ours open",
            (unsigned long long)stop_at, reliable ? "reliable" : "lossy",
            close ? "closed" : "stopped");
  cr_assert_eq(uv_loop_close(&loop), 0);
  shmbus_bus_close(bus);
}

static void batch_stop_rounds(bool reliable, bool close) {
  /* Around one and two batches of 256 (and the first message). */
  static const uint64_t at[] = {1, 255, 256, 257, 511, 512, 513};
  size_t k;

  for (k = 0; k < sizeof(at) / sizeof(at[0]); k++)
    batch_stop_round(at[k], reliable, close);
}

Test(wake, stop_from_the_callback_at_the_end_of_a_batch) {
  batch_stop_rounds(false, false);
}

Test(wake, stop_from_the_callback_at_the_end_of_a_batch_reliable) {
  batch_stop_rounds(true, false);
}

Test(wake, close_from_the_callback_at_the_end_of_a_batch) {
  batch_stop_rounds(false, true);
}
