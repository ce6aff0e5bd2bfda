/* sub: the subscriber API that never blocks. See sub.h; the blocking
 * calls are in wait.c. */
#include "sub.h"

#include <errno.h>
#include <string.h>

#include "atomics.h"
#include "handle.h"
#include "platform/platform.h"
#include "shmbus/error.h"

/* The stay awake before sleeping (shmbus__sub_linger): starts with the
 * estimate at its clamp, so a subscriber spins only once messages have
 * come close together. */
static void sub_spin_init(shmbus_sub *sub, uint32_t spin_us) {
  if (spin_us == SHMBUS_SPIN_NEVER)
    sub->spin_ns = 0;
  else
    sub->spin_ns = (spin_us != 0 ? spin_us : SHMBUS_SPIN_DEFAULT_US) * 1000u;
  sub->gap_ns = (uint64_t)sub->spin_ns * 4u;
  sub->empty_ns = 0;
  sub->skip = 0;
  sub->backoff = 1;
}

/* Wake thresholds (shmbus__sub_sleep). */
static void sub_wake_init(shmbus_sub *sub, const struct shmbus_sub_opts *opts) {
  uint32_t after = opts != NULL ? opts->wake_after : 0;

  sub->wake_after = after > 1 ? after : 0;
  sub->wake_within_ns = sub->wake_after != 0 ? (uint64_t)opts->wake_within_us * 1000u : 0;
  sub->flowing = false;
  sub->timer_due_ns = 0;
  sub->timer_wakeups = 0;
}

/* A message came after a wait found nothing: its publisher's stamp minus
 * that moment is how long staying awake would have taken to get it. The
 * estimate is the mean of it and the previous estimate, each sample
 * clamped to 4 spin bounds, so one long pause stops the spinning at once
 * and a few close messages start it again. A stamp more than 4 bounds
 * before that moment is not when the message was published here (a
 * moment given with shmbus_pub_publish_batch_at: a bridged message's
 * origin) and teaches nothing. The stamp is untrusted: a forged one can
 * make the subscriber stay awake, never longer than its bound per sleep. */
static inline void sub_learn(shmbus_sub *sub, uint64_t ts_ns) {
  uint64_t gap;
  uint64_t clamp = (uint64_t)sub->spin_ns * 4u;

  if (sub->empty_ns == 0)
    return;
  if (ts_ns < sub->empty_ns && sub->empty_ns - ts_ns > clamp) {
    sub->empty_ns = 0;
    return;
  }
  gap = ts_ns > sub->empty_ns ? ts_ns - sub->empty_ns : 0;
  if (gap > clamp)
    gap = clamp;
  sub->gap_ns = (sub->gap_ns + gap) / 2u;
  sub->empty_ns = 0;
}

/* A message was delivered: messages flow (the next sleep may ask for a
 * threshold) and the waiting ones are read (the next threshold sleep
 * starts a new timer period). */
static inline void sub_got(shmbus_sub *sub, uint64_t ts_ns) {
  sub_learn(sub, ts_ns);
  sub->flowing = true;
  sub->timer_due_ns = 0;
}

bool shmbus__sub_sleep(shmbus_sub *sub, uint64_t *due_ns) {
  uint32_t after = sub->flowing ? sub->wake_after : 1;
  /* At most a quarter of the ring (the topic's, which a reconnect may
   * change): a lossy subscriber is woken with three quarters of the ring
   * left before a publisher could lap it (time to be scheduled on a busy
   * host), a reliable one long before its publishers must wait for room. */
  uint32_t most = sub->h.region.ring.slot_count / 4u;

  if (after > most)
    after = most;
  *due_ns = 0;
  if (after > 1) {
    /* The period runs from the first sleep after the last message read,
     * however often the wait is interrupted (the daemon's socket). */
    if (sub->timer_due_ns == 0)
      sub->timer_due_ns = shmbus__clock_mono_ns() + sub->wake_within_ns;
    *due_ns = sub->timer_due_ns;
  }
  return shmbus__ring_sub_arm_after(&sub->ring, after);
}

void shmbus__sub_timer_fired(shmbus_sub *sub) {
  sub->timer_wakeups++;
  sub->timer_due_ns = 0;
  /* A whole period without a message: the stream has stopped. The next
   * sleep asks for a signal at the next message, and has no timer. */
  if (!shmbus__ring_sub_ready(&sub->ring))
    sub->flowing = false;
}

bool shmbus__sub_linger(shmbus_sub *sub) {
  uint64_t now = shmbus__clock_mono_ns();
  uint64_t budget;
  uint64_t end;
  unsigned i;

  /* Remembered even when we do not spin: the next message's stamp tells
   * how long it would have taken (sub_learn). */
  if (sub->empty_ns == 0)
    sub->empty_ns = now;
  if (sub->spin_ns == 0 || sub->gap_ns >= sub->spin_ns)
    return false;
  /* Staying awake was in vain lately: the next message came only after we
   * slept, however close its stamp. That is what a publisher on our own
   * CPU looks like (a ping-pong on one CPU: it can only run once we
   * sleep), so back off exponentially before trying again. */
  if (sub->skip > 0) {
    sub->skip--;
    return false;
  }
  /* Twice the estimate, plus a microsecond for the clock's own cost. */
  budget = sub->gap_ns * 2u + 1000u;
  if (budget > sub->spin_ns)
    budget = sub->spin_ns;
  end = now + budget;
  for (i = 1;; i++) {
    if (shmbus__ring_sub_ready(&sub->ring)) {
      sub->backoff = 1;
      return true;
    }
    shmbus__cpu_relax();
    /* The clock (vDSO, tens of ns) every 16 polls. */
    if ((i & 15u) == 0 && shmbus__clock_mono_ns() >= end) {
      sub->skip = sub->backoff;
      if (sub->backoff < 8u)
        sub->backoff *= 2u;
      return false;
    }
  }
}

int shmbus_sub_open(shmbus_bus *bus, const char *topic, const struct shmbus_sub_opts *opts,
                    shmbus_sub **out) {
  struct shmbus__handle want;
  struct shmbus__handle *h;
  int rv;

  if (bus == NULL || topic == NULL || out == NULL)
    return -EINVAL;
  memset(&want, 0, sizeof(want));
  if (opts != NULL) {
    want.want.reliable = opts->reliable;
    want.want.history = opts->history;
    want.want.deadline_ms = opts->deadline_ms;
    if ((rv = shmbus__handle_want_params(&opts->topic, &want)) < 0)
      return rv;
  }
  if (opts != NULL && opts->spin_us > SHMBUS_SPIN_MAX_US && opts->spin_us != SHMBUS_SPIN_NEVER)
    return -EINVAL;
  if (opts != NULL && opts->wake_after > 1 &&
      (opts->wake_within_us == 0 || opts->wake_within_us > SHMBUS_WAKE_WITHIN_MAX_US))
    return -EINVAL;
  if ((rv = shmbus__handle_open(bus, topic, SHMBUS__ROLE_SUB, &want, sizeof(shmbus_sub), &h)) < 0)
    return rv;
  *out = (shmbus_sub *)h;
  sub_spin_init(*out, opts != NULL ? opts->spin_us : 0);
  sub_wake_init(*out, opts);
  return 0;
}

void shmbus__sub_wake_publishers(shmbus_sub *sub) {
  sub->ring.pubs_waiting = false;
  shmbus__notify_wake(&sub->h.wake, &sub->h.region.ring);
}

int shmbus_sub_try_recv(shmbus_sub *sub, void *buf, size_t cap, struct shmbus_msg_info *info) {
  struct shmbus_msg_info ri;
  int rv;

  if (sub == NULL || (buf == NULL && cap > 0))
    return -EINVAL;
  /* Subscribers read their socket too when peers came or went, so events
   * never pile up there while they only poll. */
  shmbus__handle_check_peers(&sub->h);
  rv = shmbus__ring_recv(&sub->ring, buf, cap, &ri);
  if (sub->ring.pubs_waiting)
    shmbus__sub_wake_publishers(sub);
  if (rv >= 0)
    sub_got(sub, ri.ts_ns);
  if ((rv >= 0 || rv == -EMSGSIZE) && info != NULL)
    *info = ri;
  return rv;
}

int shmbus_sub_arm(shmbus_sub *sub) {
  if (sub == NULL)
    return -EINVAL;
  return shmbus__ring_sub_arm(&sub->ring) ? 1 : 0;
}

int shmbus_sub_view(shmbus_sub *sub, struct shmbus_view *view) {
  struct shmbus__ring_view rv_;
  int rv;

  if (sub == NULL || view == NULL)
    return -EINVAL;
  shmbus__handle_check_peers(&sub->h);
  if ((rv = shmbus__ring_view_begin(&sub->ring, &rv_)) < 0)
    return rv;
  view->data = rv_.data;
  view->info = rv_.info;
  sub_got(sub, rv_.info.ts_ns);
  return 0;
}

int shmbus_sub_view_end(shmbus_sub *sub, const struct shmbus_view *view) {
  struct shmbus__ring_view rv_;
  int rv;

  if (sub == NULL || view == NULL)
    return -EINVAL;
  rv_.data = view->data;
  rv_.info.seq = view->info.seq;
  rv_.info.ts_ns = view->info.ts_ns;
  rv_.info.pub_id = view->info.pub_id;
  rv_.info.len = view->info.len;
  rv = shmbus__ring_view_end(&sub->ring, &rv_);
  if (sub->ring.pubs_waiting)
    shmbus__sub_wake_publishers(sub);
  return rv;
}

void shmbus_sub_stats(const shmbus_sub *sub, struct shmbus_sub_stats *stats) {
  if (stats == NULL)
    return;
  stats->received = sub != NULL ? sub->ring.received : 0;
  stats->lost = sub != NULL ? sub->ring.lost : 0;
  stats->demoted = sub != NULL ? sub->ring.demoted : 0;
  stats->wakeups = sub != NULL ? sub->h.woken : 0;
  stats->signals = sub != NULL ? sub->h.wake.signals : 0;
  stats->timer_wakeups = sub != NULL ? sub->timer_wakeups : 0;
}

shmbus_os_fd_t shmbus_sub_fd(const shmbus_sub *sub) {
  return sub != NULL ? sub->h.event_fd : SHMBUS_OS_FD_INVALID;
}

size_t shmbus_sub_max_size(const shmbus_sub *sub) {
  return sub != NULL ? sub->h.region.ring.slot_capacity : 0;
}

void shmbus_sub_close(shmbus_sub *sub) {
  if (sub != NULL)
    shmbus__handle_close(&sub->h);
}
