/* clock: stamps between a host's monotonic clock and the wall clock
 * (clock.h). */
#include "clock.h"

#include <time.h>

static uint64_t clock_ns(clockid_t id) {
  struct timespec ts;

  /* Fails only for a clock the system lacks; both are POSIX and Linux's. */
  if (clock_gettime(id, &ts) != 0)
    return 0;
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The wall clock, and the monotonic clock at the same moment: the middle
 * of two monotonic reads around it. A thread preempted in between would
 * make that moment uncertain by as long as it was away: up to three tries,
 * keeping the narrowest, done at once when under 10 us. */
static void clock_read(struct bridge_clock *c) {
  uint64_t best = UINT64_MAX;

  for (int i = 0; i < 3 && best > 10000; i++) {
    uint64_t m1 = clock_ns(CLOCK_MONOTONIC);
    uint64_t r = clock_ns(CLOCK_REALTIME);
    uint64_t m2 = clock_ns(CLOCK_MONOTONIC);
    if (m2 >= m1 && m2 - m1 < best) {
      best = m2 - m1;
      c->mono_ns = m1 + (m2 - m1) / 2;
      c->real_ns = r;
    }
  }
  c->valid = true;
}

void bridge_clock_update(struct bridge_clock *c, uint64_t now_ms) {
  if (c->valid && c->at_ms == now_ms)
    return;
  clock_read(c);
  c->at_ms = now_ms;
}

uint64_t bridge_clock_to_real(const struct bridge_clock *c, uint64_t mono_ns) {
  /* real = mono + (real_ns - mono_ns), kept in unsigned range. */
  if (mono_ns == 0)
    return 0;
  if (c->real_ns >= c->mono_ns) {
    uint64_t off = c->real_ns - c->mono_ns;
    return mono_ns <= UINT64_MAX - off ? mono_ns + off : 0; /* a stamp of nonsense */
  }
  return mono_ns > c->mono_ns - c->real_ns ? mono_ns - (c->mono_ns - c->real_ns) : 0;
}

uint64_t bridge_clock_to_mono(struct bridge_clock *c, uint64_t real_ns) {
  if (!c->valid || real_ns > c->real_ns)
    clock_read(c); /* at_ms stays: this read is newer than that loop time's */
  /* mono = real - (real_ns - mono_ns): the moment's distance back from
   * the last read, taken from that read's monotonic time. */
  if (real_ns > c->real_ns || c->real_ns - real_ns >= c->mono_ns)
    return c->mono_ns != 0 ? c->mono_ns : 1; /* ahead of the clock, or before its zero */
  return c->mono_ns - (c->real_ns - real_ns);
}
