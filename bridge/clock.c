/* clock: stamps between a host's monotonic clock and the wall clock
 * (clock.h). */
#include "clock.h"

#include <time.h>

/* A clock's ns; false only for a clock the system lacks (both are POSIX
 * and Linux's). */
static bool bclock_ns(clockid_t id, uint64_t *ns) {
  struct timespec ts;

  if (clock_gettime(id, &ts) != 0)
    return false;
  *ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
  return true;
}

/* The wall clock, and the monotonic clock at the same moment: the middle
 * of two monotonic reads around it. A thread preempted in between would
 * make that moment uncertain by as long as it was away: up to three tries,
 * keeping the narrowest, done at once when under 10 us. A failed read
 * leaves the last one (or none: valid stays false). */
static void bclock_read(struct bridge_clock *c) {
  uint64_t best = UINT64_MAX;

  for (int i = 0; i < 3 && best > 10000; i++) {
    uint64_t m1, r, m2;
    if (!bclock_ns(CLOCK_MONOTONIC, &m1) || !bclock_ns(CLOCK_REALTIME, &r) ||
        !bclock_ns(CLOCK_MONOTONIC, &m2))
      return;
    if (m2 >= m1 && m2 - m1 < best) {
      best = m2 - m1;
      c->mono_ns = m1 + (m2 - m1) / 2;
      c->real_ns = r;
      c->valid = true;
    }
  }
}

void bridge_clock_update(struct bridge_clock *c, uint64_t now_ms) {
  c->reread = false;
  if (c->valid && c->at_ms == now_ms)
    return;
  bclock_read(c);
  c->at_ms = now_ms;
}

uint64_t bridge_clock_to_real(const struct bridge_clock *c, uint64_t mono_ns) {
  /* real = mono + (real_ns - mono_ns), kept in unsigned range. */
  if (mono_ns == 0 || !c->valid)
    return 0;
  if (c->real_ns >= c->mono_ns) {
    uint64_t off = c->real_ns - c->mono_ns;
    return mono_ns <= UINT64_MAX - off ? mono_ns + off : 0;
  }
  return mono_ns > c->mono_ns - c->real_ns ? mono_ns - (c->mono_ns - c->real_ns) : 0;
}

uint64_t bridge_clock_to_mono(struct bridge_clock *c, uint64_t real_ns) {
  if (!c->valid || (real_ns > c->real_ns && !c->reread)) {
    bclock_read(c); /* at_ms stays: this read is newer than that loop time's */
    c->reread = true;
  }
  /* mono = real - (real_ns - mono_ns): the moment's distance back from
   * the last read, taken from that read's monotonic time. */
  if (!c->valid || real_ns > c->real_ns || c->real_ns - real_ns >= c->mono_ns) {
    c->replaced++;
    return c->valid && c->mono_ns != 0 ? c->mono_ns : 1;
  }
  return c->mono_ns - (c->real_ns - real_ns);
}
