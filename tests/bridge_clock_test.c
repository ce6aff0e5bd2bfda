/* The bridge's stamps across hosts (bridge/clock.c): a local stamp to the
 * wall clock and back is the same moment; a moment the local clock cannot
 * hold (ahead of it, before its zero, nonsense) becomes the import's time,
 * never 0 and never ahead of the clock. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <time.h>

#include "clock.h"

static uint64_t clock_now(clockid_t id) {
  struct timespec ts;
  cr_assert_eq(clock_gettime(id, &ts), 0);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_now(void) {
  return clock_now(CLOCK_MONOTONIC);
}

static uint64_t real_now(void) {
  return clock_now(CLOCK_REALTIME);
}

Test(bridge_clock, a_past_stamp_goes_to_the_wall_clock_and_back) {
  struct bridge_clock c = {0};
  uint64_t before = mono_now(), real, back;

  bridge_clock_update(&c, 1);
  cr_assert(c.valid);
  cr_assert_geq(c.mono_ns, before);
  for (uint64_t ago = 0; ago < 5000000000u && ago < before; ago += 999999937u) {
    uint64_t stamp = before - ago;
    real = bridge_clock_to_real(&c, stamp);
    cr_assert_eq(real, stamp + (c.real_ns - c.mono_ns));
    back = bridge_clock_to_mono(&c, real);
    cr_assert_eq(back, stamp, "%" PRIu64 " ns ago: back as %" PRIu64, ago, back);
  }
  cr_assert_eq(bridge_clock_to_real(&c, 0), 0, "an unset stamp stays unset");
  cr_assert_eq(bridge_clock_to_real(&c, UINT64_MAX), 0, "nonsense is not wrapped around");
  cr_assert_eq(c.replaced, 0);
}

/* A moment after the last read (a message published since) reads the
 * clocks again and is kept; within one batch only once: the next such
 * moment is the import time, counted; a new batch reads again. */
Test(bridge_clock, a_newer_moment_reads_again_once_per_batch) {
  struct bridge_clock c = {0};
  uint64_t m0, real, got, before, after;

  bridge_clock_update(&c, 1);
  m0 = c.mono_ns;
  while (mono_now() == m0)
    ;
  before = mono_now();
  real = real_now(); /* newer than the read */
  cr_assert_gt(real, c.real_ns);
  got = bridge_clock_to_mono(&c, real);
  after = mono_now();
  cr_assert_gt(c.mono_ns, m0, "not read again");
  cr_assert(got + 1000000 >= before && got <= after,
            "kept as %" PRIu64 ", not within 1 ms of [%" PRIu64 ", %" PRIu64 "]", got, before,
            after);
  cr_assert_eq(c.replaced, 0);
  /* Newer again, same batch: no more reads; the last read stands for it. */
  m0 = c.mono_ns;
  while (mono_now() == m0)
    ;
  real = real_now();
  got = bridge_clock_to_mono(&c, real);
  cr_assert_eq(c.mono_ns, m0, "read twice in one batch");
  cr_assert_eq(got, m0);
  cr_assert_eq(c.replaced, 1);
  /* A new batch at the same loop time may read once more. */
  bridge_clock_update(&c, 1);
  cr_assert_eq(c.mono_ns, m0, "read again at the same loop time");
  got = bridge_clock_to_mono(&c, real_now());
  cr_assert_gt(c.mono_ns, m0, "a new batch did not read again");
  cr_assert_eq(c.replaced, 1);
}

Test(bridge_clock, the_loop_time_decides_when_the_clocks_are_read) {
  struct bridge_clock c = {0};
  uint64_t m;

  bridge_clock_update(&c, 7);
  m = c.mono_ns;
  bridge_clock_update(&c, 7);
  cr_assert_eq(c.mono_ns, m, "read again within one loop time");
  while (mono_now() == m)
    ;
  bridge_clock_update(&c, 8);
  cr_assert_gt(c.mono_ns, m, "not read again at a new loop time");
}

Test(bridge_clock, what_the_local_clock_cannot_hold_is_the_import_time) {
  struct bridge_clock c = {0};
  uint64_t before, after, got;

  bridge_clock_update(&c, 1);
  before = mono_now();
  /* Ahead of the clock (a sender's wall clock ahead, or a lie): read again,
   * then now. */
  got = bridge_clock_to_mono(&c, c.real_ns + 3600000000000u);
  after = mono_now();
  cr_assert(got >= before && got <= after, "%" PRIu64 " not in [%" PRIu64 ", %" PRIu64 "]", got,
            before, after);
  /* Before this host's monotonic zero, and 0 (not set): now, never 0. */
  for (int i = 0; i < 3; i++) {
    const uint64_t moments[3] = {0, 1, c.real_ns - c.mono_ns};
    before = c.mono_ns;
    got = bridge_clock_to_mono(&c, moments[i]);
    cr_assert_eq(got, before, "moment %d: %" PRIu64 ", not the last read %" PRIu64, i, got, before);
    cr_assert_neq(got, 0);
  }
  cr_assert_eq(c.replaced, 4);
  /* One ns after the zero is kept. */
  got = bridge_clock_to_mono(&c, c.real_ns - c.mono_ns + 1);
  cr_assert_eq(got, 1);
}

/* Clocks read by hand: the conversions are pure arithmetic on them. */
Test(bridge_clock, conversions_are_exact_on_given_readings) {
  struct bridge_clock c = {.at_ms = 5, .valid = true, .mono_ns = 1000, .real_ns = 1000000};

  cr_assert_eq(bridge_clock_to_real(&c, 1), 999001);
  cr_assert_eq(bridge_clock_to_real(&c, 1000), 1000000);
  cr_assert_eq(bridge_clock_to_mono(&c, 999001), 1);
  cr_assert_eq(bridge_clock_to_mono(&c, 999500), 500);
  cr_assert_eq(bridge_clock_to_mono(&c, 1000000), 1000);
  cr_assert_eq(bridge_clock_to_mono(&c, 999000), 1000, "the zero itself: the last read");
  cr_assert_eq(c.replaced, 1);
  /* A wall clock behind the monotonic one (set to 1970): still exact. */
  c = (struct bridge_clock){.at_ms = 5, .valid = true, .mono_ns = 5000, .real_ns = 3000};
  cr_assert_eq(bridge_clock_to_real(&c, 4000), 2000);
  cr_assert_eq(bridge_clock_to_real(&c, 2000), 0, "before the epoch");
  cr_assert_eq(bridge_clock_to_mono(&c, 2000), 4000);
  /* Clocks never read: nothing to convert with. */
  c = (struct bridge_clock){0};
  cr_assert_eq(bridge_clock_to_real(&c, 4000), 0);
}
