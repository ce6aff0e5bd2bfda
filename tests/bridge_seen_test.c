/* bridge/seen.c: what a reliable importer published. Each test checks the
 * record against a plain bitmap of what was published: a delivery is a
 * duplicate exactly when it was published before, however late it comes
 * (within BRIDGE_SEEN_GAPS given-up ranges). */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

/* The module itself, with its malloc failing on request (the growth of
 * its range table). */
static int malloc_fails_in = -1; /* the malloc that fails: 0 the next, -1 none */

static void *seen_test_malloc(size_t n) {
  if (malloc_fails_in >= 0 && malloc_fails_in-- == 0)
    return NULL;
  return malloc(n);
}

#define malloc seen_test_malloc
#include "seen.c"
#undef malloc

#define W ((uint64_t)BRIDGE_SEEN_WINDOW)

/* Delivers seq: asserts the record's verdict against the model, then
 * publishes it (model and record) unless it was a duplicate. */
static void deliver(struct bridge_seen *o, unsigned char *model, uint64_t seq) {
  bool dup = model[seq] != 0;

  cr_assert_eq(bridge_seen_has(o, seq), dup, "seq %llu: duplicate? record %d, model %d",
               (unsigned long long)seq, !dup, dup);
  if (!dup) {
    bridge_seen_add(o, seq);
    model[seq] = 1;
    cr_assert(bridge_seen_has(o, seq), "seq %llu not recorded", (unsigned long long)seq);
  }
}

Test(bridge_seen, in_order_each_once_then_duplicates) {
  struct bridge_seen *o = bridge_seen_new("a", 0);
  unsigned char *model = calloc(3 * W, 1);
  uint64_t s;

  cr_assert_not_null(o);
  cr_assert_str_eq(bridge_seen_origin(o), "a");
  for (s = 0; s < 3 * W; s++)
    deliver(o, model, s);
  for (s = 2 * W; s < 3 * W; s += 97)
    deliver(o, model, s); /* duplicates */
  cr_assert_eq(bridge_seen_forgotten(o), 0);
  free(model);
  bridge_seen_free(o);
}

/* The case a JetStream consumer makes after its leader changed: a few
 * messages lost in transit are redelivered once the ack wait ran out,
 * long after the window moved past them. */
Test(bridge_seen, a_run_delivered_after_the_window_moved_is_published_once) {
  struct bridge_seen *o = bridge_seen_new("a", 0);
  unsigned char *model = calloc(4 * W, 1);
  uint64_t s;

  for (s = 0; s < 4 * W - 100; s++)
    if (s < 25589 || s > 25815)
      deliver(o, model, s);
  for (s = 25589; s <= 25815; s++)
    cr_assert_not(bridge_seen_has(o, s), "seq %llu taken for a duplicate", (unsigned long long)s);
  /* Redelivered out of order, then each again. */
  for (s = 25815; s >= 25589; s--)
    deliver(o, model, s);
  for (s = 25589; s <= 25815; s++)
    deliver(o, model, s);
  for (s = 4 * W - 100; s < 4 * W; s++)
    deliver(o, model, s);
  cr_assert_eq(bridge_seen_forgotten(o), 0);
  free(model);
  bridge_seen_free(o);
}

/* The first delivery puts the floor half a window back: below it counts as
 * published (a previous run's), above it not. */
Test(bridge_seen, the_first_seq_puts_the_floor_half_a_window_back) {
  struct bridge_seen *o = bridge_seen_new("a", 100000);

  cr_assert(bridge_seen_has(o, 100000 - W / 2 - 1));
  cr_assert_not(bridge_seen_has(o, 100000 - W / 2));
  cr_assert_not(bridge_seen_has(o, 100000));
  bridge_seen_add(o, 100000);
  cr_assert(bridge_seen_has(o, 100000));
  cr_assert_not(bridge_seen_has(o, 99999));
  bridge_seen_free(o);
  o = bridge_seen_new("b", 3);
  cr_assert_not(bridge_seen_has(o, 0));
  bridge_seen_free(o);
}

static uint64_t rnd(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

/* Random schedules: seqs never delivered (gaps in what the origin
 * exported), delivered late by up to two windows, and again. */
Test(bridge_seen, random_schedules_match_the_model) {
  const uint64_t n = 6 * W;
  unsigned char *model = malloc(n);
  uint64_t *late = malloc(n * sizeof(*late));
  uint64_t x = 0x9e3779b97f4a7c15ull;
  int round;

  cr_assert(model != NULL && late != NULL);
  for (round = 0; round < 8; round++) {
    struct bridge_seen *o = bridge_seen_new("r", 0);
    uint64_t s, nlate = 0, i;
    memset(model, 0, n);
    for (s = 0; s < n; s++) {
      uint64_t r = rnd(&x) % 1000;
      if (r < 5) {
        continue; /* never comes */
      } else if (r < 10) {
        late[nlate++] = s; /* comes later */
      } else {
        deliver(o, model, s);
        if (r < 15)
          deliver(o, model, s); /* at once again */
      }
      /* The late ones come up to two windows later, in any order. */
      while (nlate > 0 && (rnd(&x) % 64 == 0 || s - late[0] > 2 * W)) {
        i = nlate > 1 ? rnd(&x) % nlate : 0;
        if (s - late[0] > 2 * W)
          i = 0;
        deliver(o, model, late[i]);
        if (rnd(&x) % 4 == 0)
          deliver(o, model, late[i]);
        memmove(&late[i], &late[i + 1], (nlate - i - 1) * sizeof(*late));
        nlate--;
      }
    }
    while (nlate > 0)
      deliver(o, model, late[--nlate]);
    cr_assert_eq(bridge_seen_forgotten(o), 0, "round %d", round);
    bridge_seen_free(o);
  }
  free(late);
  free(model);
}

/* More given-up runs than the table holds: the oldest are forgotten and
 * counted (each of those seqs would now be taken for a duplicate); the
 * newer ones are still published when they come. */
Test(bridge_seen, beyond_the_table_the_oldest_runs_are_forgotten) {
  const uint64_t runs = BRIDGE_SEEN_GAPS + 10;
  struct bridge_seen *o = bridge_seen_new("f", 0);
  uint64_t s;

  /* Every odd seq below 2 * runs never comes; then the window moves past
   * them all. */
  for (s = 0; s < 2 * runs; s += 2)
    bridge_seen_add(o, s);
  bridge_seen_add(o, 2 * runs + 3 * W);
  cr_assert_eq(bridge_seen_forgotten(o), 10);
  for (s = 1; s < 20; s += 2)
    cr_assert(bridge_seen_has(o, s), "forgotten seq %llu", (unsigned long long)s);
  for (s = 21; s < 2 * runs; s += 2)
    cr_assert_not(bridge_seen_has(o, s), "seq %llu", (unsigned long long)s);
  /* The last odd seq and everything up to the window are one run. */
  cr_assert_not(bridge_seen_has(o, 2 * runs));
  cr_assert_not(bridge_seen_has(o, 2 * runs + 1));
  /* A late one from the middle of that run splits it: the table is full,
   * so the oldest run left goes. */
  bridge_seen_add(o, 2 * runs + 100);
  cr_assert_eq(bridge_seen_forgotten(o), 11);
  cr_assert(bridge_seen_has(o, 21));
  cr_assert(bridge_seen_has(o, 2 * runs + 100));
  cr_assert_not(bridge_seen_has(o, 2 * runs + 99));
  cr_assert_not(bridge_seen_has(o, 2 * runs + 101));
  cr_assert_not(bridge_seen_has(o, 23));
  /* Late single-seq runs taken out of the table one by one. */
  for (s = 23; s < 2 * runs; s += 2) {
    bridge_seen_add(o, s);
    cr_assert(bridge_seen_has(o, s));
  }
  cr_assert_not(bridge_seen_has(o, 2 * runs));
  cr_assert_eq(bridge_seen_forgotten(o), 11);
  bridge_seen_free(o);
}

/* A full table whose oldest run is the one split: its lower half goes. */
Test(bridge_seen, splitting_the_oldest_run_of_a_full_table_forgets_its_lower_half) {
  struct bridge_seen *o = bridge_seen_new("g", 0);
  uint64_t s, base = 1000;

  /* Run 0: [0, 1000); then single seqs base+1, base+3, ... */
  bridge_seen_add(o, base);
  for (s = base + 2; s < base + 2 * (BRIDGE_SEEN_GAPS - 1); s += 2)
    bridge_seen_add(o, s);
  bridge_seen_add(o, base + 2 * BRIDGE_SEEN_GAPS + W);
  cr_assert_eq(bridge_seen_forgotten(o), 0);
  cr_assert_not(bridge_seen_has(o, 500));
  bridge_seen_add(o, 500);
  cr_assert_eq(bridge_seen_forgotten(o), 1);
  cr_assert(bridge_seen_has(o, 499), "the lower half is forgotten");
  cr_assert(bridge_seen_has(o, 500));
  cr_assert_not(bridge_seen_has(o, 501));
  cr_assert_not(bridge_seen_has(o, 999));
  bridge_seen_free(o);
}

Test(bridge_seen, free_null) {
  bridge_seen_free(NULL);
}

/* A split that needs a bigger table when malloc fails: the oldest range
 * is forgotten and the upper half goes right after the lower one, so the
 * ranges stay in order (8, 9 and 10 stay unpublished). */
Test(bridge_seen, a_split_without_memory_keeps_the_ranges_in_order) {
  struct bridge_seen *o = bridge_seen_new("a", 0);
  uint64_t s;

  for (s = 3; s <= 59; s += 4)
    bridge_seen_add(o, s);
  bridge_seen_add(o, 60 + W); /* 16 ranges: [0,3) [4,7) ... [56,59) [60,61) */
  malloc_fails_in = 0;
  bridge_seen_add(o, 5);
  malloc_fails_in = -1;
  cr_assert_eq(bridge_seen_forgotten(o), 1);
  for (s = 0; s < 3; s++)
    cr_assert(bridge_seen_has(o, s), "forgotten seq %llu", (unsigned long long)s);
  cr_assert(bridge_seen_has(o, 3));
  cr_assert_not(bridge_seen_has(o, 4));
  cr_assert(bridge_seen_has(o, 5));
  cr_assert_not(bridge_seen_has(o, 6));
  for (s = 8; s <= 10; s++)
    cr_assert_not(bridge_seen_has(o, s), "seq %llu", (unsigned long long)s);
  for (s = 8; s <= 10; s++)
    bridge_seen_add(o, s);
  for (s = 8; s <= 10; s++)
    cr_assert(bridge_seen_has(o, s), "seq %llu", (unsigned long long)s);
  cr_assert_not(bridge_seen_has(o, 12));
  bridge_seen_free(o);
}

/* The last seqs there are (a header may say any): the floor never wraps
 * to 0, so what was published stays published. */
Test(bridge_seen, the_floor_never_wraps) {
  struct bridge_seen *o = bridge_seen_new("a", 1);
  uint64_t s;

  for (s = 1; s <= 100000; s++)
    bridge_seen_add(o, s);
  bridge_seen_add(o, UINT64_MAX);
  for (s = UINT64_MAX - 65535; s < UINT64_MAX; s++)
    bridge_seen_add(o, s);
  cr_assert(bridge_seen_has(o, 50000));
  cr_assert(bridge_seen_has(o, 99999));
  cr_assert(bridge_seen_has(o, UINT64_MAX));
  cr_assert(bridge_seen_has(o, UINT64_MAX - 1));
  cr_assert_not(bridge_seen_has(o, 100001), "never published");
  bridge_seen_free(o);
}

/* Seqs two windows apart: each message moves the window a word at a
 * time (all clear), and every seq between them is one given-up run. */
Test(bridge_seen, far_apart_seqs_are_one_run_each) {
  struct bridge_seen *o = bridge_seen_new("a", 0);
  uint64_t i;

  for (i = 0; i < 1000; i++)
    bridge_seen_add(o, i * 2 * W);
  cr_assert_eq(bridge_seen_forgotten(o), 0);
  for (i = 0; i + 1 < 1000; i++) {
    cr_assert(bridge_seen_has(o, i * 2 * W));
    cr_assert_not(bridge_seen_has(o, i * 2 * W + 1));
    cr_assert_not(bridge_seen_has(o, (i + 1) * 2 * W - 1));
  }
  bridge_seen_free(o);
}
