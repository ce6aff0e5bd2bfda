/* Unit tests of the sequenced-slot ring (src/ring.c), in one process and one
 * thread. Each test makes a real region (memfds) and drives publishers and
 * subscribers by hand, so every interleaving it checks is deterministic.
 * Where a test needs a publisher to wait for something, it installs its own
 * backoff hook in the ring view: the hook runs at the exact point where the
 * publisher would wait, and does what another process would have done. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

/* ---- helpers ------------------------------------------------------------ */

/* A check for helpers that run thousands of times per test: it reports only
 * a failure. (A passing cr_assert is an event streamed to the runner under
 * --full-stats, which ctest uses; tens of thousands of them cost a minute.) */
#define RT_CHECK(cond, ...)                                                                        \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      cr_assert_fail(__VA_ARGS__);                                                                 \
  } while (0)

/* Length of the self-checking payload for `seq`: varies, so that a stale
 * length would be noticed, and fits any ring with capacity >= 64. */
static size_t rt_len(uint64_t seq) {
  return TU_MIN_PAYLOAD + (size_t)(seq % 29u);
}

static uint64_t rt_head(const struct shmbus__ring *r) {
  return shmbus__load_seq_cst(&r->hdr->head);
}

static struct shmbus__slot *rt_slot(const struct shmbus__ring *r, uint64_t seq) {
  return (struct shmbus__slot *)(r->slots + (seq & r->mask) * r->slot_stride);
}

static uint64_t rt_word(const struct shmbus__ring *r, uint64_t seq) {
  return shmbus__load_acquire(&rt_slot(r, seq)->word);
}

/* Publishes one self-checking message and returns the seq it got. In one
 * thread a publish takes the head it finds, so the seq is known before the
 * call and can be written into the payload. */
static uint64_t rt_publish(struct shmbus__ring_pub *pub) {
  unsigned char buf[64];
  uint64_t seq = rt_head(pub->ring);
  size_t len = rt_len(seq);
  int rv;

  tu_fill(buf, len, pub->pub_id, seq);
  rv = shmbus__ring_publish(pub, buf, len, seq + 1000);
  RT_CHECK(rv == 0 || rv == 1, "publish seq %llu: %s", (unsigned long long)seq,
           shmbus_strerror(rv));
  RT_CHECK(rt_head(pub->ring) == seq + 1, "publish of seq %llu claimed more than one seq",
           (unsigned long long)seq);
  return seq;
}

static void rt_publish_n(struct shmbus__ring_pub *pub, uint64_t n) {
  uint64_t i;
  for (i = 0; i < n; i++)
    rt_publish(pub);
}

/* Receives one message made by rt_publish and checks that its bytes, length,
 * seq, publisher id and timestamp all agree. Returns recv's result. */
static int rt_recv(struct shmbus__ring_sub *sub, struct shmbus_msg_info *info) {
  unsigned char buf[64];
  uint32_t pub_id;
  uint64_t seq;
  int rv;

  memset(info, 0xa5, sizeof(*info));
  rv = shmbus__ring_recv(sub, buf, sizeof(buf), info);
  if (rv < 0)
    return rv;
  RT_CHECK((size_t)rv == rt_len(info->seq) && info->len == (uint32_t)rv,
           "seq %llu: recv %d, info.len %u, want %zu", (unsigned long long)info->seq, rv, info->len,
           rt_len(info->seq));
  RT_CHECK(tu_check(buf, (size_t)rv, &pub_id, &seq) == 0, "payload of seq %llu is damaged",
           (unsigned long long)info->seq);
  RT_CHECK(seq == info->seq, "payload written for seq %llu delivered as %llu",
           (unsigned long long)seq, (unsigned long long)info->seq);
  RT_CHECK(pub_id == info->pub_id, "seq %llu: pub_id %u in the slot, %u in the payload",
           (unsigned long long)seq, info->pub_id, pub_id);
  RT_CHECK(info->ts_ns == info->seq + 1000, "seq %llu: timestamp %llu", (unsigned long long)seq,
           (unsigned long long)info->ts_ns);
  return rv;
}

/* Receives until -EAGAIN; returns how many messages came. Checks that seqs
 * only go up and that every gap between them was counted as lost. */
static uint64_t rt_drain(struct shmbus__ring_sub *sub) {
  struct shmbus_msg_info info;
  uint64_t n = 0;
  int rv;

  for (;;) {
    uint64_t cursor = sub->cursor;
    uint64_t lost = sub->lost;
    rv = rt_recv(sub, &info);
    if (rv == -EAGAIN)
      break;
    RT_CHECK(rv >= 0, "recv: %s", shmbus_strerror(rv));
    RT_CHECK(info.seq >= cursor, "seq %llu delivered at cursor %llu", (unsigned long long)info.seq,
             (unsigned long long)cursor);
    RT_CHECK(sub->lost - lost == info.seq - cursor, "a jump from %llu to %llu counted %llu lost",
             (unsigned long long)cursor, (unsigned long long)info.seq,
             (unsigned long long)(sub->lost - lost));
    RT_CHECK(sub->cursor == info.seq + 1, "cursor %llu after seq %llu",
             (unsigned long long)sub->cursor, (unsigned long long)info.seq);
    n++;
  }
  return n;
}

/* received + lost covers every seq from joining to the cursor, in the
 * handle and in the shared record the daemon reads. */
static void rt_assert_accounted(const struct shmbus__ring_sub *sub) {
  uint64_t joined = shmbus__load_relaxed(&sub->rec->joined);
  RT_CHECK(sub->received + sub->lost == sub->cursor - joined,
           "received %llu + lost %llu != cursor %llu - joined %llu",
           (unsigned long long)sub->received, (unsigned long long)sub->lost,
           (unsigned long long)sub->cursor, (unsigned long long)joined);
  RT_CHECK(shmbus__load_relaxed(&sub->rec->received) == sub->received &&
               shmbus__load_relaxed(&sub->rec->lost) == sub->lost &&
               shmbus__load_relaxed(&sub->rec->cursor) == sub->cursor,
           "the shared record does not mirror the handle");
}

static uint64_t rt_rand(uint64_t *state) {
  uint64_t x = *state;
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  *state = x;
  return x;
}

/* A backoff hook that fails the test: installed where a publisher must not
 * wait, it turns a hang into a clear failure. */
static void rt_backoff_forbidden(unsigned spins) {
  cr_assert_fail("publisher waited (spin %u) where it should have returned", spins);
}

/* ---- basic order ---------------------------------------------------------- */

Test(ring, publish_then_receive_in_order) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;
  struct shmbus_msg_info info;
  char buf[64];
  int i, rv;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 7, 1), 0);
  cr_assert_eq(shmbus__ring_recv(&sub, buf, sizeof(buf), &info), -EAGAIN);
  for (i = 0; i < 5; i++) {
    snprintf(buf, sizeof(buf), "msg %d", i);
    cr_assert_eq(shmbus__ring_publish(&pub, buf, strlen(buf) + 1, 100 + i), 0);
  }
  for (i = 0; i < 5; i++) {
    char want[16];
    snprintf(want, sizeof(want), "msg %d", i);
    rv = shmbus__ring_recv(&sub, buf, sizeof(buf), &info);
    cr_assert_eq(rv, (int)strlen(want) + 1);
    cr_assert_str_eq(buf, want);
    cr_assert_eq(info.seq, (uint64_t)i);
    cr_assert_eq(info.pub_id, 7);
    cr_assert_eq(info.ts_ns, (uint64_t)(100 + i));
  }
  cr_assert_eq(shmbus__ring_recv(&sub, buf, sizeof(buf), &info), -EAGAIN);
  cr_assert_eq(sub.received, 5);
  cr_assert_eq(sub.lost, 0);
  shmbus__ring_sub_detach(&sub);
  shmbus__ring_pub_detach(&pub);
  shmbus__region_close(&rg);
}

Test(ring, sub_ready_follows_the_slot_word) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;
  struct shmbus_msg_info info;
  void *p;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  cr_assert_not(shmbus__ring_sub_ready(&sub));
  /* A slot being written (BUSY for the cursor's seq) is not ready yet. */
  cr_assert_eq(shmbus__ring_loan(&pub, 8, &p), 0);
  cr_assert_not(shmbus__ring_sub_ready(&sub));
  cr_assert_eq(shmbus__ring_recv(&sub, NULL, 0, &info), -EAGAIN);
  /* A cancelled seq is "ready": recv has something to do (count it). */
  cr_assert_eq(shmbus__ring_cancel(&pub), 0);
  cr_assert(shmbus__ring_sub_ready(&sub));
  rt_publish(&pub);
  cr_assert_eq(rt_recv(&sub, &info), (int)rt_len(1));
  cr_assert_eq(info.seq, 1);
  cr_assert_eq(sub.lost, 1);
  cr_assert_not(shmbus__ring_sub_ready(&sub));
  shmbus__region_close(&rg);
}

/* ---- wraparound and lossy subscribers ------------------------------------ */

Test(ring, wraparound_over_many_laps_loses_nothing) {
  static const uint32_t sizes[] = {2, 4, 8, 64};
  size_t k;

  for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
    struct shmbus__region rg;
    struct shmbus__ring_pub pub;
    struct shmbus__ring_sub sub;
    uint64_t rnd = 0x9e3779b97f4a7c15ull + k;
    uint64_t total = 0;
    uint32_t n = sizes[k];

    tu_region(&rg, n, 64, 4, 4);
    cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
    cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 3, 1), 0);
    /* Bursts of 1..n messages, each read back before the next: the
     * subscriber is never more than a ring behind, so nothing is lost
     * however many times the seqs wrap around the slots. */
    while (total < 200ull * n) {
      uint64_t burst = 1 + rt_rand(&rnd) % n;
      rt_publish_n(&pub, burst);
      cr_assert_eq(rt_drain(&sub), burst);
      total += burst;
    }
    cr_assert_eq(sub.received, total);
    cr_assert_eq(sub.lost, 0);
    cr_assert_eq(sub.cursor, rt_head(&rg.ring));
    rt_assert_accounted(&sub);
    cr_assert_eq(shmbus__load_relaxed(&pub.rec->published), total);
    shmbus__region_close(&rg);
  }
}

Test(ring, lossy_subscriber_lapped_counts_exact_loss) {
  static const uint32_t sizes[] = {2, 4, 8, 16, 64, 256};
  size_t k;

  for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
    uint32_t n = sizes[k];
    uint64_t extras[] = {1, n / 2 + 1, 3ull * n + 5};
    size_t e;

    for (e = 0; e < sizeof(extras) / sizeof(extras[0]); e++) {
      struct shmbus__region rg;
      struct shmbus__ring_pub pub;
      struct shmbus__ring_sub sub;
      struct shmbus_msg_info info;
      uint64_t published = n + extras[e];
      uint64_t target = published - n + n / 4;

      tu_region(&rg, n, 64, 4, 4);
      cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
      cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 5, 1), 0);
      rt_publish_n(&pub, published);
      /* The slot at cursor 0 holds a newer seq: the subscriber jumps to a
       * quarter ring past the oldest slot still in the ring, and counts
       * every seq it jumped over. */
      cr_assert_eq(rt_recv(&sub, &info), (int)rt_len(target));
      cr_assert_eq(info.seq, target, "ring %u, %llu published: landed on %llu, want %llu", n,
                   (unsigned long long)published, (unsigned long long)info.seq,
                   (unsigned long long)target);
      cr_assert_eq(sub.lost, target);
      cr_assert_eq(sub.received, 1);
      cr_assert_eq(rt_drain(&sub), published - target - 1);
      cr_assert_eq(sub.received + sub.lost, published);
      cr_assert_eq(sub.cursor, published);
      rt_assert_accounted(&sub);
      shmbus__region_close(&rg);
    }
  }
}

Test(ring, lossy_subscriber_lapped_midstream_counts_from_its_cursor) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;
  struct shmbus_msg_info info;
  const uint32_t n = 16;

  tu_region(&rg, n, 64, 4, 4);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 5, 1), 0);
  /* Joins at 10, reads 3, then falls behind by exactly a ring: still no
   * loss, the oldest slot still holds its seq. */
  rt_publish_n(&pub, 10);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__load_relaxed(&sub.rec->joined), 10);
  rt_publish_n(&pub, 3);
  cr_assert_eq(rt_drain(&sub), 3);
  rt_publish_n(&pub, n);
  cr_assert_eq(rt_recv(&sub, &info), (int)rt_len(13));
  cr_assert_eq(info.seq, 13);
  cr_assert_eq(sub.lost, 0);
  /* Now one more than a ring behind (cursor 14, head 30): lapped. */
  rt_publish_n(&pub, 2);
  cr_assert_eq(rt_head(&rg.ring), 31);
  cr_assert_eq(rt_recv(&sub, &info), (int)rt_len(31 - n + n / 4));
  cr_assert_eq(info.seq, 31 - n + n / 4);
  cr_assert_eq(sub.lost, info.seq - 14);
  rt_drain(&sub);
  cr_assert_eq(sub.cursor, 31);
  cr_assert_eq(sub.received + sub.lost, 31 - 10, "counts start at joining, not at 0");
  rt_assert_accounted(&sub);
  shmbus__region_close(&rg);
}

Test(ring, lossy_random_schedule_accounts_every_seq) {
  static const uint32_t sizes[] = {2, 4, 8, 32, 128};
  size_t k;

  for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
    struct shmbus__region rg;
    struct shmbus__ring_pub pub;
    struct shmbus__ring_sub subs[3];
    uint64_t rnd = 0x2545f4914f6cdd1dull * (k + 1);
    uint32_t n = sizes[k];
    int round, j;

    tu_region(&rg, n, 64, 4, 4);
    cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 9, 1), 0);
    for (j = 0; j < 3; j++)
      cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &subs[j], false, 0, 1), 0);
    /* Three readers at different speeds: some keep up, some are lapped
     * once or many times; each must account for every seq. */
    for (round = 0; round < 300; round++) {
      rt_publish_n(&pub, rt_rand(&rnd) % (3u * n));
      for (j = 0; j < 3; j++) {
        uint64_t reads = rt_rand(&rnd) % (uint64_t)(n * (j + 1));
        struct shmbus_msg_info info;
        while (reads-- > 0) {
          uint64_t cursor = subs[j].cursor;
          uint64_t lost = subs[j].lost;
          int rv = rt_recv(&subs[j], &info);
          if (rv == -EAGAIN)
            break;
          RT_CHECK(rv >= 0, "recv: %s", shmbus_strerror(rv));
          RT_CHECK(subs[j].lost - lost == info.seq - cursor, "jump %llu -> %llu miscounted",
                   (unsigned long long)cursor, (unsigned long long)info.seq);
        }
        rt_assert_accounted(&subs[j]);
      }
    }
    for (j = 0; j < 3; j++) {
      rt_drain(&subs[j]);
      cr_assert_eq(subs[j].cursor, rt_head(&rg.ring));
      cr_assert_eq(subs[j].received + subs[j].lost, rt_head(&rg.ring));
      rt_assert_accounted(&subs[j]);
    }
    shmbus__region_close(&rg);
  }
}

/* ---- reliable subscribers ------------------------------------------------ */

/* Checks that `pub` is refused exactly now, without claiming anything, by
 * both the copy and the zero-copy call. */
static void rt_assert_full(struct shmbus__ring_pub *pub) {
  unsigned char buf[32] = {0};
  uint64_t head = rt_head(pub->ring);
  void *p = NULL;

  cr_assert_eq(shmbus__ring_publish(pub, buf, sizeof(buf), 0), SHMBUS_EFULL);
  cr_assert_eq(rt_head(pub->ring), head, "EFULL claimed nothing");
  cr_assert_eq(shmbus__load_relaxed(&pub->rec->inflight), SHMBUS__INFLIGHT_IDLE);
  cr_assert_eq(shmbus__ring_loan(pub, sizeof(buf), &p), SHMBUS_EFULL);
  cr_assert_null(p);
  cr_assert_not(pub->loaned);
  cr_assert_eq(rt_head(pub->ring), head);
  /* The slot the next seq would use still holds the unread message. */
  cr_assert_eq(SHMBUS__WORD_SEQ(rt_word(pub->ring, head)), head - pub->ring->slot_count);
}

static void rt_reliable_full(uint32_t n, bool pub_first) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;
  struct shmbus_msg_info info;
  int lap;

  tu_region(&rg, n, 64, 4, 4);
  if (pub_first)
    cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, true, 0, 1), 0);
  if (!pub_first)
    cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  rg.ring.backoff = rt_backoff_forbidden;
  for (lap = 0; lap < 3; lap++) {
    uint64_t base = rt_head(&rg.ring);
    /* Room for exactly slot_count unread messages. */
    rt_publish_n(&pub, n);
    rt_assert_full(&pub);
    /* Reading one frees exactly one slot. */
    cr_assert_eq(rt_recv(&sub, &info), (int)rt_len(base));
    cr_assert_eq(info.seq, base);
    rt_publish(&pub);
    rt_assert_full(&pub);
    cr_assert_eq(rt_drain(&sub), n);
  }
  cr_assert_eq(sub.lost, 0, "a reliable subscriber loses nothing");
  cr_assert_eq(sub.received, 3ull * (n + 1));
  rt_assert_accounted(&sub);
  shmbus__region_close(&rg);
}

Test(ring, reliable_full_at_exactly_slot_count_unread) {
  rt_reliable_full(2, true);
  rt_reliable_full(2, false);
  rt_reliable_full(8, true);
  rt_reliable_full(8, false);
  rt_reliable_full(64, false);
}

Test(ring, lossy_subscriber_alongside_reliable_never_blocks) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub lossy, rel;
  const uint32_t n = 8;
  int lap;

  tu_region(&rg, n, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &lossy, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &rel, true, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  rg.ring.backoff = rt_backoff_forbidden;
  /* The lossy one never reads; only the reliable one decides when the
   * ring is full. */
  for (lap = 0; lap < 10; lap++) {
    rt_publish_n(&pub, n);
    cr_assert_eq(rt_drain(&rel), n);
  }
  rt_publish_n(&pub, n);
  rt_assert_full(&pub);
  cr_assert_eq(rt_drain(&rel), n);
  rt_drain(&lossy);
  cr_assert_gt(lossy.lost, 0);
  cr_assert_eq(lossy.received + lossy.lost, 11ull * n);
  rt_assert_accounted(&lossy);
  cr_assert_eq(rel.lost, 0);
  cr_assert_eq(rel.received, 11ull * n);
  shmbus__region_close(&rg);
}

Test(ring, reliable_detach_unblocks_for_good) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub rel;
  const uint32_t n = 4;
  uint64_t i;

  tu_region(&rg, n, 64, 4, 4);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &rel, true, 0, 1), 0);
  rt_publish_n(&pub, n);
  rt_assert_full(&pub);
  shmbus__ring_sub_detach(&rel);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.subs[0].state), SHMBUS__SUB_FREE);
  for (i = 0; i < 50ull * n; i++)
    rt_publish(&pub);
  /* With no reliable subscriber left it is back on the fetch-add path. */
  cr_assert_eq(pub.min_cursor, UINT64_MAX);
  shmbus__region_close(&rg);
}

Test(ring, evicting_a_reliable_subscriber_unblocks) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub rel, lossy;
  const uint32_t n = 4;

  tu_region(&rg, n, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &lossy, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &rel, true, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  rt_publish_n(&pub, n);
  rt_assert_full(&pub);
  /* Out-of-range indices are ignored, not written. */
  shmbus__ring_evict_sub(&rg.ring, 4);
  shmbus__ring_evict_sub(&rg.ring, UINT32_MAX);
  rt_assert_full(&pub);
  /* The daemon evicts the (dead) reliable one; the lossy one stays. */
  shmbus__ring_evict_sub(&rg.ring, rel.index);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.subs[rel.index].state), SHMBUS__SUB_FREE);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.subs[lossy.index].state), SHMBUS__SUB_LOSSY);
  rt_publish_n(&pub, 10ull * n);
  rt_drain(&lossy);
  cr_assert_eq(lossy.received + lossy.lost, 11ull * n);
  shmbus__region_close(&rg);
}

Test(ring, slowest_of_two_reliable_subscribers_gates) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub fast, slow;
  struct shmbus_msg_info info;
  const uint32_t n = 8;

  tu_region(&rg, n, 64, 4, 4);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &fast, true, 0, 1), 0);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &slow, true, 0, 1), 0);
  rt_publish_n(&pub, n);
  rt_assert_full(&pub);
  /* The fast one reading everything does not help. */
  cr_assert_eq(rt_drain(&fast), n);
  rt_assert_full(&pub);
  /* Each read by the slow one frees exactly one slot. */
  cr_assert_eq(rt_recv(&slow, &info), (int)rt_len(0));
  rt_publish(&pub);
  rt_assert_full(&pub);
  cr_assert_eq(rt_recv(&slow, &info), (int)rt_len(1));
  cr_assert_eq(rt_recv(&slow, &info), (int)rt_len(2));
  rt_publish_n(&pub, 2);
  rt_assert_full(&pub);
  /* Now the roles swap: the formerly fast one is the slowest, with 3
   * unread. */
  cr_assert_eq(rt_drain(&slow), n);
  rt_publish_n(&pub, n - 3);
  rt_assert_full(&pub);
  cr_assert_eq(rt_drain(&fast), n);
  cr_assert_eq(rt_drain(&slow), n - 3);
  rt_publish_n(&pub, n);
  rt_assert_full(&pub);
  cr_assert_eq(fast.lost + slow.lost, 0);
  shmbus__region_close(&rg);
}

Test(ring, bogus_reliable_cursor_beyond_head_never_blocks) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub rel;

  tu_region(&rg, 4, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &rel, true, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  /* A broken subscriber writes nonsense into its record: a cursor beyond
   * head cannot mean "unread", so it must not hold publishers back (nor
   * make them compute a negative distance). */
  shmbus__store_release(&rel.rec->cursor, UINT64_MAX - 1);
  shmbus__fetch_add_seq_cst(&rg.ring.ctrl->gen, 1);
  rg.ring.backoff = rt_backoff_forbidden;
  rt_publish_n(&pub, 40);
  shmbus__region_close(&rg);
}

/* ---- history -------------------------------------------------------------- */

static void rt_history(uint32_t n, uint64_t published, uint32_t history, bool reliable) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;
  struct shmbus_msg_info info;
  uint64_t want = history;
  uint64_t i;

  if (want > n)
    want = n;
  if (want > published)
    want = published;
  tu_region(&rg, n, 64, 4, 4);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 2, 1), 0);
  rt_publish_n(&pub, published);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, reliable, history, 1), 0);
  cr_assert_eq(shmbus__load_relaxed(&sub.rec->joined), published - want);
  for (i = 0; i < want; i++) {
    cr_assert_eq(rt_recv(&sub, &info), (int)rt_len(published - want + i));
    cr_assert_eq(info.seq, published - want + i, "ring %u, %llu published, history %u", n,
                 (unsigned long long)published, history);
  }
  cr_assert_eq(rt_recv(&sub, &info), -EAGAIN);
  cr_assert_eq(sub.lost, 0);
  cr_assert_eq(sub.received, want);
  rt_assert_accounted(&sub);
  shmbus__region_close(&rg);
}

Test(ring, history_gives_the_last_n_clamped) {
  rt_history(8, 20, 0, false);
  rt_history(8, 20, 1, false);
  rt_history(8, 20, 3, false);
  rt_history(8, 20, 7, false);
  rt_history(8, 20, 8, false);      /* exactly the ring */
  rt_history(8, 20, 9, false);      /* clamped to the ring */
  rt_history(8, 20, 100000, false); /* clamped to the ring */
  rt_history(8, 5, 3, false);
  rt_history(8, 5, 5, false);
  rt_history(8, 5, 6, false); /* clamped to what was published */
  rt_history(8, 0, 4, false); /* nothing published: starts at 0 */
  rt_history(2, 3, UINT32_MAX, false);
}

Test(ring, reliable_history_is_kept_and_gates) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;
  struct shmbus_msg_info info;
  const uint32_t n = 8;

  rt_history(8, 20, 3, true);
  rt_history(8, 5, 6, true);

  /* With history 3 at head 20 the subscriber starts at 17: the publisher
   * may add n - 3 messages before the oldest unread one would be
   * overwritten. */
  tu_region(&rg, n, 64, 4, 4);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 2, 1), 0);
  rt_publish_n(&pub, 20);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, true, 3, 1), 0);
  rg.ring.backoff = rt_backoff_forbidden;
  rt_publish_n(&pub, n - 3);
  rt_assert_full(&pub);
  cr_assert_eq(rt_recv(&sub, &info), (int)rt_len(17));
  cr_assert_eq(info.seq, 17);
  rt_publish(&pub);
  rt_assert_full(&pub);
  cr_assert_eq(rt_drain(&sub), n);
  cr_assert_eq(sub.lost, 0);
  shmbus__region_close(&rg);
}

/* Regression: a reliable subscriber that joins with history >= slot_count
 * on a ring that has wrapped starts exactly a ring behind head. A publisher
 * attached before the join must see the join before it claims (it checks
 * gen first) and answer SHMBUS_EFULL, not claim and then wait for the
 * subscriber, which in one thread (an event loop) never ends. The backoff
 * hook below turns such a hang into a failure. */
Test(ring, reliable_history_full_ring_returns_efull_not_wait) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;
  unsigned char buf[32] = {0};
  const uint32_t n = 8;

  tu_region(&rg, n, 64, 4, 4);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 2, 1), 0);
  rt_publish_n(&pub, 20);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, true, n, 1), 0);
  cr_assert_eq(shmbus__load_relaxed(&sub.rec->joined), 20 - n);
  rg.ring.backoff = rt_backoff_forbidden;
  cr_assert_eq(shmbus__ring_publish(&pub, buf, sizeof(buf), 0), SHMBUS_EFULL);
  cr_assert_eq(rt_head(&rg.ring), 20);
  shmbus__region_close(&rg);
}

/* ---- zero copy -------------------------------------------------------------- */

Test(ring, loan_commit_roundtrip) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;
  struct shmbus_msg_info info;
  unsigned char buf[128];
  void *p = NULL;

  tu_region(&rg, 8, 100, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 42, 1), 0);
  cr_assert_eq(shmbus__ring_loan(&pub, 100, &p), 0);
  cr_assert_not_null(p);
  /* The loan points into the slot for seq 0, right after its header. */
  cr_assert_eq((unsigned char *)p, (unsigned char *)rt_slot(&rg.ring, 0) + SHMBUS__SLOT_HDR_SIZE);
  cr_assert_eq(rt_word(&rg.ring, 0), SHMBUS__WORD(0, SHMBUS__SLOT_BUSY));
  cr_assert_eq(shmbus__load_relaxed(&pub.rec->inflight), 0);
  /* Not visible before commit. */
  cr_assert_eq(shmbus__ring_recv(&sub, buf, sizeof(buf), &info), -EAGAIN);
  /* The whole capacity is writable; commit a shorter message. */
  memset(p, 0x5a, 100);
  tu_fill(p, 77, 42, 0);
  cr_assert_eq(shmbus__ring_commit(&pub, 77, 555), 0);
  cr_assert_not(pub.loaned);
  cr_assert_eq(shmbus__load_relaxed(&pub.rec->inflight), SHMBUS__INFLIGHT_IDLE);
  cr_assert_eq(shmbus__load_relaxed(&pub.rec->published), 1);
  cr_assert_eq(shmbus__ring_recv(&sub, buf, sizeof(buf), &info), 77);
  cr_assert_eq(info.seq, 0);
  cr_assert_eq(info.pub_id, 42);
  cr_assert_eq(info.ts_ns, 555);
  cr_assert_eq(info.len, 77);
  {
    uint32_t id;
    uint64_t seq;
    cr_assert_eq(tu_check(buf, 77, &id, &seq), 0);
    cr_assert_eq(id, 42);
    cr_assert_eq(seq, 0);
  }
  /* A full-capacity loan committed at full capacity. */
  cr_assert_eq(shmbus__ring_loan(&pub, 100, &p), 0);
  tu_fill(p, 100, 42, 1);
  cr_assert_eq(shmbus__ring_commit(&pub, 100, 0), 0);
  cr_assert_eq(shmbus__ring_recv(&sub, buf, sizeof(buf), &info), 100);
  shmbus__region_close(&rg);
}

Test(ring, loan_misuse_is_refused_without_side_effects) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;
  struct shmbus_msg_info info;
  unsigned char buf[64] = {0};
  void *p = NULL;
  void *q = NULL;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  cr_assert_eq(shmbus__ring_commit(&pub, 1, 0), SHMBUS_ESTATE, "commit without a loan");
  cr_assert_eq(shmbus__ring_cancel(&pub), SHMBUS_ESTATE, "cancel without a loan");
  cr_assert_eq(rt_head(&rg.ring), 0);
  cr_assert_eq(shmbus__ring_loan(&pub, 65, &p), SHMBUS_ETOOBIG);
  cr_assert_eq(rt_head(&rg.ring), 0, "a refused loan claims nothing");
  cr_assert_eq(shmbus__ring_loan(&pub, 10, &p), 0);
  cr_assert_eq(shmbus__ring_loan(&pub, 10, &q), SHMBUS_ESTATE, "second loan while one is open");
  cr_assert_null(q);
  cr_assert_eq(shmbus__ring_publish(&pub, buf, 10, 0), SHMBUS_ESTATE, "publish during a loan");
  cr_assert_eq(rt_head(&rg.ring), 1, "only the first loan claimed");
  /* A commit longer than the slot is refused; the loan stays open. */
  cr_assert_eq(shmbus__ring_commit(&pub, 65, 0), SHMBUS_ETOOBIG);
  cr_assert(pub.loaned);
  cr_assert_eq(rt_word(&rg.ring, 0), SHMBUS__WORD(0, SHMBUS__SLOT_BUSY));
  cr_assert_eq(shmbus__ring_recv(&sub, buf, sizeof(buf), &info), -EAGAIN);
  memcpy(p, "in place", 9);
  cr_assert_eq(shmbus__ring_commit(&pub, 9, 0), 0);
  cr_assert_eq(shmbus__ring_commit(&pub, 9, 0), SHMBUS_ESTATE, "commit twice");
  cr_assert_eq(shmbus__ring_recv(&sub, buf, sizeof(buf), &info), 9);
  cr_assert_str_eq((char *)buf, "in place");
  cr_assert_eq(shmbus__load_relaxed(&pub.rec->published), 1);
  shmbus__region_close(&rg);
}

Test(ring, publish_larger_than_capacity_claims_nothing) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;
  struct shmbus_msg_info info;
  unsigned char buf[256] = {0};

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  cr_assert_eq(shmbus__ring_publish(&pub, buf, 65, 0), SHMBUS_ETOOBIG);
  cr_assert_eq(shmbus__ring_publish(&pub, buf, SIZE_MAX, 0), SHMBUS_ETOOBIG);
  cr_assert_eq(rt_head(&rg.ring), 0);
  cr_assert_eq(rt_word(&rg.ring, 0), 0);
  cr_assert_eq(shmbus__load_relaxed(&pub.rec->inflight), SHMBUS__INFLIGHT_IDLE);
  cr_assert_not(pub.loaned);
  /* Exactly the capacity is fine, and nothing was lost to the refusals. */
  cr_assert_eq(shmbus__ring_publish(&pub, buf, 64, 0), 0);
  cr_assert_eq(shmbus__ring_recv(&sub, buf, sizeof(buf), &info), 64);
  cr_assert_eq(info.seq, 0);
  cr_assert_eq(sub.lost, 0);
  shmbus__region_close(&rg);
}

Test(ring, cancelled_loan_counts_as_one_loss) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub, rel;
  struct shmbus_msg_info info;
  void *p;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &rel, true, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  rt_publish(&pub);
  cr_assert_eq(shmbus__ring_loan(&pub, 30, &p), 0);
  memset(p, 0xee, 30);
  cr_assert_eq(shmbus__ring_cancel(&pub), 0);
  cr_assert_not(pub.loaned);
  cr_assert_eq(rt_word(&rg.ring, 1), SHMBUS__WORD(1, SHMBUS__SLOT_SKIPPED));
  cr_assert_eq(shmbus__load_relaxed(&pub.rec->published), 1, "a cancel is not a publish");
  rt_publish(&pub);
  /* Both kinds of subscriber skip it and count it, once. */
  cr_assert_eq(rt_recv(&sub, &info), (int)rt_len(0));
  cr_assert_eq(rt_recv(&sub, &info), (int)rt_len(2));
  cr_assert_eq(info.seq, 2);
  cr_assert_eq(sub.lost, 1);
  cr_assert_eq(sub.received, 2);
  cr_assert_eq(rt_drain(&rel), 2);
  cr_assert_eq(rel.lost, 1);
  rt_assert_accounted(&sub);
  rt_assert_accounted(&rel);
  shmbus__region_close(&rg);
}

Test(ring, detach_with_an_open_loan_cancels_it) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub, other;
  struct shmbus__ring_sub sub;
  struct shmbus_msg_info info;
  void *p;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &other, 2, 1), 0);
  cr_assert_eq(shmbus__ring_loan(&pub, 30, &p), 0);
  shmbus__ring_pub_detach(&pub);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.pubs[0].state), SHMBUS__PUB_FREE);
  cr_assert_eq(rt_word(&rg.ring, 0), SHMBUS__WORD(0, SHMBUS__SLOT_SKIPPED));
  rt_publish(&other);
  cr_assert_eq(rt_recv(&sub, &info), (int)rt_len(1));
  cr_assert_eq(info.pub_id, 2);
  cr_assert_eq(sub.lost, 1);
  /* Detach twice is harmless. */
  shmbus__ring_pub_detach(&pub);
  shmbus__region_close(&rg);
}

/* ---- in-place reads --------------------------------------------------------- */

Test(ring, view_reads_in_place) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;
  struct shmbus__ring_view view;
  uint32_t id;
  uint64_t seq;
  int i;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 11, 1), 0);
  cr_assert_eq(shmbus__ring_view_begin(&sub, &view), -EAGAIN);
  cr_assert_not(sub.viewing);
  /* Start after a few laps, so the slots are reused ones. */
  for (i = 0; i < 5; i++) {
    rt_publish_n(&pub, 4);
    cr_assert_eq(rt_drain(&sub), 4);
  }
  rt_publish_n(&pub, 5);
  for (i = 0; i < 5; i++) {
    cr_assert_eq(shmbus__ring_view_begin(&sub, &view), 0);
    cr_assert_eq(view.info.seq, 20u + (unsigned)i);
    cr_assert_eq(view.info.len, rt_len(view.info.seq));
    cr_assert_eq(view.info.pub_id, 11);
    cr_assert_eq(view.info.ts_ns, view.info.seq + 1000);
    /* The data is the slot itself, not a copy. */
    cr_assert_eq((const unsigned char *)view.data,
                 (unsigned char *)rt_slot(&rg.ring, view.info.seq) + SHMBUS__SLOT_HDR_SIZE);
    cr_assert_eq(tu_check(view.data, view.info.len, &id, &seq), 0);
    cr_assert_eq(seq, view.info.seq);
    cr_assert_eq(shmbus__ring_view_end(&sub, &view), 0);
    cr_assert_eq(sub.cursor, view.info.seq + 1);
  }
  cr_assert_eq(shmbus__ring_view_begin(&sub, &view), -EAGAIN);
  cr_assert_eq(sub.received, 25);
  cr_assert_eq(sub.lost, 0);
  rt_assert_accounted(&sub);
  shmbus__region_close(&rg);
}

Test(ring, view_misuse_is_refused) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;
  struct shmbus__ring_view view, view2, bogus;
  struct shmbus_msg_info info;
  unsigned char buf[64];

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  rt_publish_n(&pub, 2);
  memset(&bogus, 0, sizeof(bogus));
  cr_assert_eq(shmbus__ring_view_end(&sub, &bogus), SHMBUS_ESTATE, "end without begin");
  cr_assert_eq(shmbus__ring_view_begin(&sub, &view), 0);
  cr_assert_eq(shmbus__ring_recv(&sub, buf, sizeof(buf), &info), SHMBUS_ESTATE,
               "recv while a view is open");
  cr_assert_eq(shmbus__ring_view_begin(&sub, &view2), SHMBUS_ESTATE, "two views at once");
  bogus.info.seq = view.info.seq + 1;
  cr_assert_eq(shmbus__ring_view_end(&sub, &bogus), SHMBUS_ESTATE, "end of another view");
  cr_assert_eq(sub.cursor, 0);
  cr_assert_eq(sub.received, 0);
  cr_assert_eq(shmbus__ring_view_end(&sub, &view), 0);
  cr_assert_eq(shmbus__ring_view_end(&sub, &view), SHMBUS_ESTATE, "end twice");
  cr_assert_eq(rt_recv(&sub, &info), (int)rt_len(1));
  cr_assert_eq(sub.received, 2);
  shmbus__region_close(&rg);
}

Test(ring, view_overwritten_before_end_is_an_overrun) {
  static const uint32_t sizes[] = {2, 8, 32};
  size_t k;

  for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
    struct shmbus__region rg;
    struct shmbus__ring_pub pub;
    struct shmbus__ring_sub sub;
    struct shmbus__ring_view view;
    struct shmbus_msg_info info;
    uint32_t n = sizes[k];
    uint64_t target;

    tu_region(&rg, n, 64, 4, 4);
    cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
    cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
    rt_publish(&pub);
    cr_assert_eq(shmbus__ring_view_begin(&sub, &view), 0);
    cr_assert_eq(view.info.seq, 0);
    /* A publisher laps the slot under the open view. */
    rt_publish_n(&pub, n);
    cr_assert_eq(shmbus__ring_view_end(&sub, &view), SHMBUS_EOVERRUN);
    cr_assert_not(sub.viewing);
    /* The viewed message is lost, and the subscriber moved on the way a
     * lapped one does. */
    target = (n + 1) - n + n / 4;
    cr_assert_eq(sub.received, 0);
    cr_assert_eq(sub.lost, target);
    cr_assert_eq(sub.cursor, target);
    cr_assert_eq(rt_recv(&sub, &info), (int)rt_len(target));
    cr_assert_eq(info.seq, target);
    rt_drain(&sub);
    cr_assert_eq(sub.received + sub.lost, n + 1);
    rt_assert_accounted(&sub);
    shmbus__region_close(&rg);
  }
}

Test(ring, view_of_the_oldest_slot_survives_a_full_lap_minus_one) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;
  struct shmbus__ring_view view;
  const uint32_t n = 8;

  tu_region(&rg, n, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  rt_publish(&pub);
  cr_assert_eq(shmbus__ring_view_begin(&sub, &view), 0);
  /* n - 1 more messages fill the other slots; the viewed one is intact. */
  rt_publish_n(&pub, n - 1);
  cr_assert_eq(shmbus__ring_view_end(&sub, &view), 0);
  cr_assert_eq(rt_drain(&sub), n - 1);
  cr_assert_eq(sub.lost, 0);
  shmbus__region_close(&rg);
}

/* ---- receive buffers and lengths ------------------------------------------- */

Test(ring, recv_small_buffer_reports_size_and_keeps_the_message) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;
  struct shmbus_msg_info info;
  unsigned char buf[64];
  unsigned char msg[40];

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  tu_fill(msg, sizeof(msg), 1, 0);
  cr_assert_eq(shmbus__ring_publish(&pub, msg, sizeof(msg), 0), 0);
  memset(buf, 0x77, sizeof(buf));
  info.len = 0;
  cr_assert_eq(shmbus__ring_recv(&sub, buf, 39, &info), -EMSGSIZE);
  cr_assert_eq(info.len, 40);
  cr_assert_eq(buf[0], 0x77, "nothing copied");
  cr_assert_eq(shmbus__ring_recv(&sub, buf, 0, &info), -EMSGSIZE);
  cr_assert_eq(info.len, 40);
  cr_assert_eq(sub.cursor, 0);
  cr_assert_eq(sub.received + sub.lost, 0);
  cr_assert(shmbus__ring_sub_ready(&sub));
  cr_assert_eq(shmbus__ring_recv(&sub, buf, 40, &info), 40);
  cr_assert_eq(memcmp(buf, msg, 40), 0);
  cr_assert_eq(sub.received, 1);
  shmbus__region_close(&rg);
}

Test(ring, zero_length_messages) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;
  struct shmbus__ring_view view;
  struct shmbus_msg_info info;
  unsigned char buf[8] = {1, 2, 3};
  void *p;

  tu_region(&rg, 4, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  cr_assert_eq(shmbus__ring_publish(&pub, buf, 0, 7), 0);
  cr_assert_eq(shmbus__ring_loan(&pub, 0, &p), 0);
  cr_assert_eq(shmbus__ring_commit(&pub, 0, 8), 0);
  /* An empty message is a message: it is delivered, not "nothing yet". */
  cr_assert_eq(shmbus__ring_recv(&sub, buf, 0, &info), 0);
  cr_assert_eq(info.seq, 0);
  cr_assert_eq(info.len, 0);
  cr_assert_eq(info.ts_ns, 7);
  cr_assert_eq(buf[0], 1);
  cr_assert_eq(shmbus__ring_view_begin(&sub, &view), 0);
  cr_assert_eq(view.info.len, 0);
  cr_assert_eq(view.info.ts_ns, 8);
  cr_assert_eq(shmbus__ring_view_end(&sub, &view), 0);
  cr_assert_eq(shmbus__ring_recv(&sub, buf, sizeof(buf), &info), -EAGAIN);
  cr_assert_eq(sub.received, 2);
  shmbus__region_close(&rg);
}

/* ---- records ------------------------------------------------------------------- */

Test(ring, subscriber_records_run_out_and_are_reused) {
  struct shmbus__region rg;
  struct shmbus__ring_sub subs[5];
  struct shmbus__ring_sub extra;
  int i;

  tu_region(&rg, 8, 64, 5, 4);
  for (i = 0; i < 5; i++) {
    cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &subs[i], i % 2 == 0, 0, 100 + i), 0);
    cr_assert_eq(subs[i].index, (uint32_t)i);
    cr_assert_eq(shmbus__load_relaxed(&rg.ring.subs[i].pid), 100u + i);
    cr_assert_eq(shmbus__load_relaxed(&rg.ring.subs[i].state),
                 i % 2 == 0 ? SHMBUS__SUB_RELIABLE : SHMBUS__SUB_LOSSY);
  }
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &extra, false, 0, 1), SHMBUS_ENOSLOT);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &extra, true, 0, 1), SHMBUS_ENOSLOT);
  shmbus__ring_sub_detach(&subs[3]);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.subs[3].state), SHMBUS__SUB_FREE);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &extra, true, 0, 1), 0);
  cr_assert_eq(extra.index, 3);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &subs[3], false, 0, 1), SHMBUS_ENOSLOT);
  shmbus__ring_evict_sub(&rg.ring, 0);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &subs[0], false, 0, 1), 0);
  cr_assert_eq(subs[0].index, 0);
  shmbus__region_close(&rg);
}

Test(ring, publisher_records_run_out_and_are_reused) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pubs[3];
  struct shmbus__ring_pub extra;
  struct shmbus__ring_sub sub;
  int i;

  tu_region(&rg, 8, 64, 4, 3);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  for (i = 0; i < 3; i++) {
    cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pubs[i], 10u + i, 200u + i), 0);
    cr_assert_eq(pubs[i].index, (uint32_t)i);
    cr_assert_eq(shmbus__load_relaxed(&rg.ring.pubs[i].pid), 200u + i);
    cr_assert_eq(shmbus__load_relaxed(&rg.ring.pubs[i].pub_id), 10u + i);
  }
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &extra, 99, 1), SHMBUS_ENOSLOT);
  rt_publish_n(&pubs[1], 3);
  shmbus__ring_pub_detach(&pubs[1]);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &extra, 99, 1), 0);
  cr_assert_eq(extra.index, 1);
  /* The new owner starts with fresh statistics and its own id. */
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.pubs[1].published), 0);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.pubs[1].pub_id), 99);
  rt_publish(&extra);
  cr_assert_eq(rt_drain(&sub), 4);
  shmbus__region_close(&rg);
}

Test(ring, interleaved_publishers_stamp_their_ids) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pubs[3];
  struct shmbus__ring_sub sub;
  struct shmbus_msg_info info;
  uint32_t expect_id[64];
  uint64_t rnd = 12345;
  int i;

  tu_region(&rg, 64, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  for (i = 0; i < 3; i++)
    cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pubs[i], 1000u * (i + 1), 1), 0);
  for (i = 0; i < 60; i++) {
    int who = (int)(rt_rand(&rnd) % 3);
    uint64_t seq = rt_publish(&pubs[who]);
    expect_id[seq] = pubs[who].pub_id;
  }
  for (i = 0; i < 60; i++) {
    cr_assert_eq(rt_recv(&sub, &info), (int)rt_len((uint64_t)i));
    cr_assert_eq(info.seq, (uint64_t)i);
    cr_assert_eq(info.pub_id, expect_id[i], "seq %d: pub_id %u, want %u", i, info.pub_id,
                 expect_id[i]);
  }
  cr_assert_eq(pubs[0].published + pubs[1].published + pubs[2].published, 60);
  shmbus__region_close(&rg);
}

/* ---- sleep protocol -------------------------------------------------------------- */

/* Collects what a wake-up scan reports: (index, ticket) pairs. */
struct rt_scan {
  unsigned n;
  uint32_t g[256];
  uint64_t ticket[256];
};

static void rt_scan_cb(void *ctx, uint32_t g, uint64_t ticket) {
  struct rt_scan *sc = ctx;
  if (sc->n < 256) {
    sc->g[sc->n] = g;
    sc->ticket[sc->n] = ticket;
  }
  sc->n++;
}

static struct rt_scan rt_sleepers(const struct shmbus__ring *r) {
  struct rt_scan sc;
  memset(&sc, 0, sizeof(sc));
  shmbus__ring_scan_sleepers(r, 0, rt_scan_cb, &sc);
  return sc;
}

Test(ring, sleep_bit_carries_a_new_ticket_and_the_owner_clears_it) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub other, sub;
  struct shmbus_msg_info info;
  struct rt_scan sc;
  char c;

  tu_region(&rg, 8, 64, 8, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &other, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  /* Nobody asleep: commits say so, and a scan finds nothing. */
  cr_assert_eq(shmbus__ring_publish(&pub, "a", 1, 0), 0);
  cr_assert_eq(rt_sleepers(&rg.ring).n, 0);
  cr_assert_eq(shmbus__ring_recv(&sub, &c, 1, &info), 1);
  /* Empty ring: it may sleep, and its bit (index 1) is set with ticket 1. */
  cr_assert(shmbus__ring_sub_arm(&sub));
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.sleepers[0]), UINT64_C(1) << 1);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.ctrl->sleep_summary), 1);
  cr_assert_eq(shmbus__load_relaxed(&sub.rec->sleeps), 1);
  /* The next commit sees a sleeper; scans report it, as often as asked,
   * with the same ticket: publishers never clear it, they remember. */
  cr_assert_eq(shmbus__ring_publish(&pub, "b", 1, 0), 1);
  sc = rt_sleepers(&rg.ring);
  cr_assert_eq(sc.n, 1);
  cr_assert_eq(sc.g[0], 1);
  cr_assert_eq(sc.ticket[0], 1);
  sc = rt_sleepers(&rg.ring);
  cr_assert_eq(sc.n, 1);
  cr_assert_eq(sc.ticket[0], 1, "the same sleep, the same ticket");
  /* The owner's next read clears its bit and the summary. */
  cr_assert_eq(shmbus__ring_recv(&sub, &c, 1, &info), 1);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.sleepers[0]), 0);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.ctrl->sleep_summary), 0);
  cr_assert_eq(shmbus__ring_publish(&pub, "c", 1, 0), 0, "quiet again");
  /* A message is waiting: do not sleep (the bit is set until the read). */
  cr_assert_not(shmbus__ring_sub_arm(&sub));
  cr_assert_eq(rt_sleepers(&rg.ring).ticket[0], 2, "a new ticket for a new arming");
  cr_assert_eq(shmbus__ring_recv(&sub, &c, 1, &info), 1);
  /* A cancel wakes sleepers too: readers must see the skip. */
  cr_assert(shmbus__ring_sub_arm(&sub));
  {
    void *p;
    cr_assert_eq(shmbus__ring_loan(&pub, 1, &p), 0);
    cr_assert_eq(shmbus__ring_cancel(&pub), 1);
  }
  shmbus__region_close(&rg);
}

/* M1: a forged bit beyond max_subs, or in a summary word beyond the
 * bitmap, is never reported (and never indexes a record). */
Test(ring, forged_sleeper_and_waiter_bits_beyond_the_records_are_ignored) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct rt_scan sc;
  uint32_t w;

  tu_region(&rg, 8, 64, 70, 3);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  for (w = 0; w < rg.ring.bitmap_words; w++)
    shmbus__store_relaxed(&rg.ring.sleepers[w], UINT64_MAX);
  shmbus__store_relaxed(&rg.ring.ctrl->sleep_summary, UINT64_MAX);
  shmbus__store_relaxed(&rg.ring.hdr->pub_waiters[0], UINT64_MAX);
  shmbus__store_relaxed(&rg.ring.hdr->pub_wait_summary, UINT64_MAX);
  sc = rt_sleepers(&rg.ring);
  cr_assert_eq(sc.n, 70, "one per record, none beyond max_subs");
  for (w = 0; w < 70; w++)
    cr_assert_lt(sc.g[w], 70);
  memset(&sc, 0, sizeof(sc));
  shmbus__ring_scan_pub_waiters(&rg.ring, rt_scan_cb, &sc);
  cr_assert_eq(sc.n, 3, "one per publisher record, none beyond max_pubs");
  cr_assert_not(shmbus__ring_sub_sleeping(&rg.ring, 70));
  cr_assert_not(shmbus__ring_pub_waiting(&rg.ring, 3));
  cr_assert_null(shmbus__ring_sub_rec(&rg.ring, 70 * SHMBUS__MAX_MEMBERS));
  /* The daemon's reconciliation clears what no record owns. */
  cr_assert_eq(shmbus__ring_member_sanitize(&rg.ring, 0), 1);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.sleepers[1]), (UINT64_C(1) << 6) - 1);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.ctrl->sleep_summary), 3);
  cr_assert_eq(shmbus__ring_member_sanitize(&rg.ring, 0), 0, "nothing left to clear");
  shmbus__region_close(&rg);
}

Test(ring, sleep_prepare_sees_a_skip_or_a_lap_as_ready) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub, lapped;
  void *p;

  tu_region(&rg, 4, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &lapped, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  /* A slot being written is not a reason to stay awake... */
  cr_assert_eq(shmbus__ring_loan(&pub, 1, &p), 0);
  cr_assert(shmbus__ring_sub_arm(&sub));
  /* ...but a skipped one is: recv has to count it. */
  cr_assert_eq(shmbus__ring_cancel(&pub), 1);
  cr_assert_not(shmbus__ring_sub_arm(&sub));
  rt_publish_n(&pub, 8);
  cr_assert_not(shmbus__ring_sub_arm(&lapped));
  shmbus__region_close(&rg);
}

Test(ring, sleep_bits_beyond_64_subscribers_use_the_right_word) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  static struct shmbus__ring_sub subs[130];
  struct rt_scan sc;
  uint32_t i;

  tu_region(&rg, 8, 64, 130, 4);
  cr_assert_eq(rg.ring.bitmap_words, 3);
  for (i = 0; i < 130; i++)
    cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &subs[i], false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  cr_assert(shmbus__ring_sub_arm(&subs[129]));
  cr_assert(shmbus__ring_sub_arm(&subs[64]));
  cr_assert(shmbus__ring_sub_arm(&subs[63]));
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.sleepers[0]), UINT64_C(1) << 63);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.sleepers[1]), UINT64_C(1) << 0);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.sleepers[2]), UINT64_C(1) << 1);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.ctrl->sleep_summary), 7);
  cr_assert_eq(shmbus__ring_publish(&pub, "x", 1, 0), 1);
  sc = rt_sleepers(&rg.ring);
  cr_assert_eq(sc.n, 3);
  cr_assert_eq(sc.g[0], 63);
  cr_assert_eq(sc.g[1], 64);
  cr_assert_eq(sc.g[2], 129);
  /* Each wakes and reads: word by word, the summary empties. */
  {
    char c;
    struct shmbus_msg_info info;
    cr_assert_eq(shmbus__ring_recv(&subs[63], &c, 1, &info), 1);
    cr_assert_eq(shmbus__load_relaxed(&rg.ring.ctrl->sleep_summary), 6);
    cr_assert_eq(shmbus__ring_recv(&subs[64], &c, 1, &info), 1);
    cr_assert_eq(shmbus__load_relaxed(&rg.ring.ctrl->sleep_summary), 4);
    /* A neighbour in word 2 still sleeps: the summary bit stays. */
    cr_assert(shmbus__ring_sub_arm(&subs[128]) == false);
    cr_assert_eq(shmbus__ring_recv(&subs[129], &c, 1, &info), 1);
    cr_assert_eq(shmbus__load_relaxed(&rg.ring.sleepers[2]), UINT64_C(1) << 0);
    cr_assert_eq(shmbus__load_relaxed(&rg.ring.ctrl->sleep_summary), 4);
    cr_assert_eq(shmbus__ring_recv(&subs[128], &c, 1, &info), 1);
    cr_assert_eq(shmbus__load_relaxed(&rg.ring.ctrl->sleep_summary), 0);
  }
  shmbus__region_close(&rg);
}

Test(ring, detach_clears_the_subscribers_own_sleeper_bit) {
  struct shmbus__region rg;
  static struct shmbus__ring_sub subs[130];
  uint32_t i;

  tu_region(&rg, 8, 64, 130, 4);
  for (i = 0; i < 130; i++)
    cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &subs[i], false, 0, 1), 0);
  /* Detaching clears the subscriber's own bit, so no one wakes a record
   * that may be reused by someone else. */
  cr_assert(shmbus__ring_sub_arm(&subs[100]));
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.sleepers[1]), UINT64_C(1) << (100 - 64));
  shmbus__ring_sub_detach(&subs[100]);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.sleepers[1]), 0);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.ctrl->sleep_summary), 0);
  shmbus__region_close(&rg);
}

/* ---- repair ------------------------------------------------------------------------ */

Test(ring, repair_skips_an_open_loan_of_a_dead_publisher) {
  struct shmbus__region rg;
  struct shmbus__ring_pub dead, live;
  struct shmbus__ring_sub sub, rel;
  uint32_t idx;
  void *p;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &rel, true, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &live, 1, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &dead, 2, 1), 0);
  rt_publish(&live);
  /* The dead one claimed seq 1 and never committed. */
  cr_assert_eq(shmbus__ring_loan(&dead, 10, &p), 0);
  cr_assert_eq(shmbus__load_relaxed(&dead.rec->inflight), 1);
  rt_publish_n(&live, 2);
  /* Readers stall at the hole. */
  cr_assert_eq(rt_drain(&sub), 1);
  cr_assert_eq(sub.cursor, 1);
  cr_assert_eq(rt_drain(&rel), 1);
  idx = dead.index;
  cr_assert_eq(shmbus__ring_repair(&rg.ring, &idx, 1), 1);
  cr_assert_eq(rt_word(&rg.ring, 1), SHMBUS__WORD(1, SHMBUS__SLOT_SKIPPED));
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.pubs[idx].state), SHMBUS__PUB_FREE);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.pubs[idx].inflight), SHMBUS__INFLIGHT_IDLE);
  /* Both readers go on, counting the hole once. */
  cr_assert_eq(rt_drain(&sub), 2);
  cr_assert_eq(sub.lost, 1);
  cr_assert_eq(rt_drain(&rel), 2);
  cr_assert_eq(rel.lost, 1);
  rt_assert_accounted(&sub);
  rt_assert_accounted(&rel);
  /* Repairing again is a no-op; the freed record can be taken again. */
  cr_assert_eq(shmbus__ring_repair(&rg.ring, &idx, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &dead, 3, 1), 0);
  cr_assert_eq(dead.index, idx);
  shmbus__region_close(&rg);
}

Test(ring, repair_of_an_idle_or_committed_publisher_loses_nothing) {
  struct shmbus__region rg;
  struct shmbus__ring_pub a, b;
  struct shmbus__ring_sub sub;
  uint32_t dead[2];
  uint64_t seq;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &a, 1, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &b, 2, 1), 0);
  rt_publish(&a);
  seq = rt_publish(&b);
  /* b died after its commit store but before it recorded IDLE. */
  shmbus__store_relaxed(&b.rec->inflight, seq);
  dead[0] = a.index;
  dead[1] = b.index;
  cr_assert_eq(shmbus__ring_repair(&rg.ring, dead, 2), 0);
  cr_assert_eq(rt_word(&rg.ring, seq), SHMBUS__WORD(seq, SHMBUS__SLOT_COMMITTED));
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.pubs[0].state), SHMBUS__PUB_FREE);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.pubs[1].state), SHMBUS__PUB_FREE);
  cr_assert_eq(rt_drain(&sub), 2);
  cr_assert_eq(sub.lost, 0);
  shmbus__region_close(&rg);
}

Test(ring, repair_fills_the_hole_of_a_publisher_that_died_claiming) {
  struct shmbus__region rg;
  struct shmbus__ring_pub dead, live;
  struct shmbus__ring_sub sub;
  uint32_t idx;
  uint64_t hole;
  int i;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &live, 1, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &dead, 2, 1), 0);
  /* Several laps first, so the hole's slot holds an older committed seq. */
  for (i = 0; i < 3; i++) {
    rt_publish_n(&live, 7);
    cr_assert_eq(rt_drain(&sub), 7);
  }
  /* The dead one announced CLAIMING, did its fetch-add, and died before
   * storing the seq it got. */
  shmbus__store_relaxed(&dead.rec->inflight, SHMBUS__INFLIGHT_CLAIMING);
  hole = shmbus__fetch_add_seq_cst(&rg.ring.hdr->head, 1);
  cr_assert_eq(hole, 21);
  rt_publish_n(&live, 3);
  cr_assert_eq(rt_drain(&sub), 0, "readers stall at the hole");
  cr_assert_eq(sub.cursor, hole);
  idx = dead.index;
  cr_assert_eq(shmbus__ring_repair(&rg.ring, &idx, 1), 1);
  cr_assert_eq(rt_word(&rg.ring, hole), SHMBUS__WORD(hole, SHMBUS__SLOT_SKIPPED));
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.pubs[idx].state), SHMBUS__PUB_FREE);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.pubs[idx].inflight), SHMBUS__INFLIGHT_IDLE);
  cr_assert_eq(rt_drain(&sub), 3);
  cr_assert_eq(sub.lost, 1);
  cr_assert_eq(sub.received + sub.lost, rt_head(&rg.ring));
  /* The committed messages around the hole were left alone. */
  cr_assert_eq(rt_word(&rg.ring, hole - 1), SHMBUS__WORD(hole - 1, SHMBUS__SLOT_COMMITTED));
  cr_assert_eq(rt_word(&rg.ring, hole + 1), SHMBUS__WORD(hole + 1, SHMBUS__SLOT_COMMITTED));
  shmbus__region_close(&rg);
}

Test(ring, repair_of_a_claiming_publisher_without_a_hole_changes_nothing) {
  struct shmbus__region rg;
  struct shmbus__ring_pub dead, live;
  struct shmbus__ring_sub sub;
  uint32_t idx;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &live, 1, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &dead, 2, 1), 0);
  rt_publish_n(&live, 5);
  /* Died after announcing CLAIMING, before its fetch-add. */
  shmbus__store_relaxed(&dead.rec->inflight, SHMBUS__INFLIGHT_CLAIMING);
  idx = dead.index;
  cr_assert_eq(shmbus__ring_repair(&rg.ring, &idx, 1), 0);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.pubs[idx].state), SHMBUS__PUB_FREE);
  cr_assert_eq(rt_drain(&sub), 5);
  cr_assert_eq(sub.lost, 0);
  shmbus__region_close(&rg);
}

Test(ring, repair_waits_while_a_live_publisher_is_claiming) {
  struct shmbus__region rg;
  struct shmbus__ring_pub dead, live;
  struct shmbus__ring_sub sub;
  uint32_t idx;
  uint64_t hole;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &live, 1, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &dead, 2, 1), 0);
  rt_publish_n(&live, 2);
  shmbus__store_relaxed(&dead.rec->inflight, SHMBUS__INFLIGHT_CLAIMING);
  hole = shmbus__fetch_add_seq_cst(&rg.ring.hdr->head, 1);
  rt_publish(&live);
  /* The live one is itself between CLAIMING and its seq: the hole could be
   * its own, so the repairer must not touch anything yet. */
  shmbus__store_relaxed(&live.rec->inflight, SHMBUS__INFLIGHT_CLAIMING);
  idx = dead.index;
  cr_assert_eq(shmbus__ring_repair(&rg.ring, &idx, 1), -EAGAIN);
  cr_assert_eq(rt_word(&rg.ring, hole), 0, "nothing repaired yet");
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.pubs[idx].state), SHMBUS__PUB_ACTIVE,
               "the record is kept for the retry");
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.pubs[idx].inflight), SHMBUS__INFLIGHT_CLAIMING);
  /* The live one got past its claim: the retry repairs. */
  shmbus__store_relaxed(&live.rec->inflight, SHMBUS__INFLIGHT_IDLE);
  cr_assert_eq(shmbus__ring_repair(&rg.ring, &idx, 1), 1);
  cr_assert_eq(rt_word(&rg.ring, hole), SHMBUS__WORD(hole, SHMBUS__SLOT_SKIPPED));
  cr_assert_eq(rt_drain(&sub), 3);
  cr_assert_eq(sub.lost, 1);
  shmbus__region_close(&rg);
}

Test(ring, repair_leaves_a_seq_a_live_publisher_holds) {
  struct shmbus__region rg;
  struct shmbus__ring_pub dead, live;
  struct shmbus__ring_sub sub;
  uint32_t idx;
  uint64_t hole, held, lost;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &live, 1, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &dead, 2, 1), 0);
  rt_publish_n(&live, 10);
  rt_drain(&sub);
  lost = sub.lost;
  /* Two unwritten seqs below head: the dead one's, and one the live
   * publisher claimed and has not taken the slot for yet. */
  shmbus__store_relaxed(&dead.rec->inflight, SHMBUS__INFLIGHT_CLAIMING);
  hole = shmbus__fetch_add_seq_cst(&rg.ring.hdr->head, 1);
  held = shmbus__fetch_add_seq_cst(&rg.ring.hdr->head, 1);
  shmbus__store_relaxed(&live.rec->inflight, held);
  idx = dead.index;
  cr_assert_eq(shmbus__ring_repair(&rg.ring, &idx, 1), 1);
  cr_assert_eq(rt_word(&rg.ring, hole), SHMBUS__WORD(hole, SHMBUS__SLOT_SKIPPED));
  cr_assert_eq(SHMBUS__WORD_SEQ(rt_word(&rg.ring, held)), held - 8,
               "the live publisher's seq is untouched");
  cr_assert_eq(SHMBUS__WORD_STATE(rt_word(&rg.ring, held)), SHMBUS__SLOT_COMMITTED);
  cr_assert_eq(rt_drain(&sub), 0);
  cr_assert_eq(sub.cursor, held, "readers wait for the live publisher");
  cr_assert_eq(sub.lost, lost + 1);
  shmbus__region_close(&rg);
}

Test(ring, repair_rejects_an_out_of_range_index_before_touching_anything) {
  struct shmbus__region rg;
  struct shmbus__ring_pub dead;
  uint32_t bad[2];
  void *p;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &dead, 2, 1), 0);
  cr_assert_eq(shmbus__ring_loan(&dead, 1, &p), 0);
  bad[0] = dead.index;
  bad[1] = 4;
  cr_assert_eq(shmbus__ring_repair(&rg.ring, bad, 2), -EINVAL);
  bad[1] = UINT32_MAX;
  cr_assert_eq(shmbus__ring_repair(&rg.ring, bad, 2), -EINVAL);
  cr_assert_eq(rt_word(&rg.ring, 0), SHMBUS__WORD(0, SHMBUS__SLOT_BUSY));
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.pubs[dead.index].state), SHMBUS__PUB_ACTIVE);
  /* An empty list is not an error. */
  cr_assert_eq(shmbus__ring_repair(&rg.ring, bad, 0), 0);
  shmbus__region_close(&rg);
}

/* Two publishers die together (say, two threads of one killed process):
 * the first held seq 0 (BUSY), the second had claimed seq 4 on the same
 * slot and was waiting for the first. Returns the ring with both records
 * still ACTIVE, for the repair tests below. */
static void rt_two_dead(struct shmbus__region *rg, struct shmbus__ring_pub *blocker,
                        struct shmbus__ring_pub *waiter, struct shmbus__ring_sub *sub) {
  struct shmbus__ring_pub live;
  uint64_t s;
  void *p;

  tu_region(rg, 4, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg->ring, sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg->ring, blocker, 1, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg->ring, waiter, 2, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg->ring, &live, 3, 1), 0);
  cr_assert_eq(shmbus__ring_loan(blocker, 1, &p), 0);
  rt_publish_n(&live, 3);
  /* What ring_claim leaves behind in the waiter before it spins in
   * ring_take_slot: its seq recorded, the slot still BUSY(0). */
  shmbus__store_relaxed(&waiter->rec->inflight, SHMBUS__INFLIGHT_CLAIMING);
  s = shmbus__fetch_add_seq_cst(&rg->ring.hdr->head, 1);
  cr_assert_eq(s, 4);
  shmbus__store_relaxed(&waiter->rec->inflight, s);
  cr_assert_eq(rt_word(&rg->ring, 4), SHMBUS__WORD(0, SHMBUS__SLOT_BUSY));
  shmbus__ring_pub_detach(&live);
}

Test(ring, repair_of_two_dead_publishers_blocker_listed_first) {
  struct shmbus__region rg;
  struct shmbus__ring_pub blocker, waiter;
  struct shmbus__ring_sub sub;
  uint32_t dead[2];

  rt_two_dead(&rg, &blocker, &waiter, &sub);
  dead[0] = blocker.index;
  dead[1] = waiter.index;
  cr_assert_eq(shmbus__ring_repair(&rg.ring, dead, 2), 2);
  cr_assert_eq(rt_word(&rg.ring, 4), SHMBUS__WORD(4, SHMBUS__SLOT_SKIPPED));
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.pubs[dead[0]].state), SHMBUS__PUB_FREE);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.pubs[dead[1]].state), SHMBUS__PUB_FREE);
  /* The reader stuck at seq 0 now finds slot 0 holding seq 4: to it, a
   * lap. It moves on and accounts for every seq up to head. */
  rt_drain(&sub);
  cr_assert_eq(sub.cursor, 5);
  cr_assert_eq(sub.received + sub.lost, 5);
  cr_assert_geq(sub.lost, 2);
  rt_assert_accounted(&sub);
  shmbus__region_close(&rg);
}

/* Regression: with the two dead publishers listed waiter first, repair
 * must not answer -EAGAIN because the waiter's slot is BUSY for an older
 * seq: the blocker is in the same dead list, and repairing it frees the
 * waiter's slot. */
Test(ring, repair_of_two_dead_publishers_waiter_listed_first) {
  struct shmbus__region rg;
  struct shmbus__ring_pub blocker, waiter;
  struct shmbus__ring_sub sub;
  uint32_t dead[2];
  int attempt, rv = -EAGAIN;

  rt_two_dead(&rg, &blocker, &waiter, &sub);
  dead[0] = waiter.index;
  dead[1] = blocker.index;
  for (attempt = 0; attempt < 3 && rv == -EAGAIN; attempt++)
    rv = shmbus__ring_repair(&rg.ring, dead, 2);
  cr_assert_eq(rv, 2, "repair: %s after %d attempts", shmbus_err_name(rv), attempt);
  rt_drain(&sub);
  cr_assert_eq(sub.cursor, 5);
  shmbus__region_close(&rg);
}

/* State for backoff hooks that play the part of another process. */
static struct {
  struct shmbus__ring *ring;
  struct shmbus__ring_pub *helper;
  uint32_t dead;
  int calls;
  int depth;
  int repaired;
} rt_hook;

/* Called while a publisher waits on a slot the dead publisher left BUSY:
 * the daemon repairs it. */
static void rt_backoff_repair(unsigned spins) {
  (void)spins;
  rt_hook.calls++;
  cr_assert_eq(rt_hook.repaired, 0, "still waiting after the repair");
  rt_hook.repaired = shmbus__ring_repair(rt_hook.ring, &rt_hook.dead, 1);
  cr_assert_eq(rt_hook.repaired, 1);
}

Test(ring, publisher_waiting_on_a_dead_busy_slot_goes_on_after_repair) {
  struct shmbus__region rg;
  struct shmbus__ring_pub dead, live;
  struct shmbus__ring_sub sub;
  const uint32_t n = 4;
  void *p;

  tu_region(&rg, n, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &dead, 2, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &live, 1, 1), 0);
  cr_assert_eq(shmbus__ring_loan(&dead, 1, &p), 0);
  rt_publish_n(&live, n - 1);
  memset(&rt_hook, 0, sizeof(rt_hook));
  rt_hook.ring = &rg.ring;
  rt_hook.dead = dead.index;
  rg.ring.backoff = rt_backoff_repair;
  /* Seq n lands on the dead one's BUSY slot: the live publisher waits
   * (its hook runs the repair), then takes the slot. */
  cr_assert_eq(rt_publish(&live), n);
  cr_assert_eq(rt_hook.calls, 1);
  cr_assert_eq(rt_word(&rg.ring, n), SHMBUS__WORD(n, SHMBUS__SLOT_COMMITTED));
  cr_assert_eq(live.overtaken, 0);
  rt_drain(&sub);
  cr_assert_eq(sub.received + sub.lost, n + 1);
  rt_assert_accounted(&sub);
  shmbus__region_close(&rg);
}

/* Called while publisher A waits on the dead publisher's BUSY slot. At the
 * first call (A waits) a helper publisher runs a whole lap, which ends on
 * the same slot; at the nested call (the helper waits) the daemon repairs.
 * The helper then takes the slot for a newer seq than A's claim, so A finds
 * itself overtaken. */
static void rt_backoff_overtake(unsigned spins) {
  (void)spins;
  rt_hook.calls++;
  if (rt_hook.depth == 0) {
    uint32_t i;
    rt_hook.depth++;
    for (i = 0; i < rt_hook.ring->slot_count; i++)
      rt_publish(rt_hook.helper);
    rt_hook.depth--;
  } else {
    rt_hook.repaired = shmbus__ring_repair(rt_hook.ring, &rt_hook.dead, 1);
    cr_assert_eq(rt_hook.repaired, 1);
  }
}

Test(ring, overtaken_claim_is_retried_and_counted_lost_by_readers) {
  struct shmbus__region rg;
  struct shmbus__ring_pub dead, helper, a;
  struct shmbus__ring_sub early, late;
  struct shmbus_msg_info info;
  unsigned char buf[64];
  const uint32_t n = 4;
  void *p;

  tu_region(&rg, n, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &early, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &dead, 1, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &helper, 2, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &a, 3, 1), 0);
  cr_assert_eq(shmbus__ring_loan(&dead, 1, &p), 0); /* seq 0, never committed */
  rt_publish_n(&helper, n - 1);                     /* seqs 1..3 */
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &late, false, 0, 1), 0);
  cr_assert_eq(late.cursor, n);
  memset(&rt_hook, 0, sizeof(rt_hook));
  rt_hook.ring = &rg.ring;
  rt_hook.helper = &helper;
  rt_hook.dead = dead.index;
  rg.ring.backoff = rt_backoff_overtake;
  /* A claims seq 4 (slot 0, BUSY(0)) and waits; meanwhile the helper
   * publishes 5..8, seq 8 taking slot 0 after the repair. A must not
   * write seq 4 over seq 8: it claims again and gets 9. */
  tu_fill(buf, rt_len(9), a.pub_id, 9);
  cr_assert_eq(shmbus__ring_publish(&a, buf, rt_len(9), 9 + 1000), 0);
  cr_assert_eq(rt_hook.calls, 2);
  cr_assert_eq(rt_hook.repaired, 1);
  cr_assert_eq(a.overtaken, 1);
  cr_assert_eq(shmbus__load_relaxed(&a.rec->overtaken), 1);
  cr_assert_eq(a.published, 1);
  cr_assert_eq(rt_head(&rg.ring), 10);
  cr_assert_eq(rt_word(&rg.ring, 8), SHMBUS__WORD(8, SHMBUS__SLOT_COMMITTED));
  cr_assert_eq(rt_word(&rg.ring, 9), SHMBUS__WORD(9, SHMBUS__SLOT_COMMITTED));
  /* Readers account for seq 4 (never written) like any other lost seq. */
  rt_drain(&late);
  cr_assert_eq(late.received + late.lost, 10 - n);
  rt_assert_accounted(&late);
  rt_drain(&early);
  cr_assert_eq(early.received + early.lost, 10);
  rt_assert_accounted(&early);
  cr_assert_eq(shmbus__ring_recv(&early, buf, sizeof(buf), &info), -EAGAIN);
  shmbus__region_close(&rg);
}

/* ---- corruption ---------------------------------------------------------------- */

/* Every way to read the slot at the cursor must report the corruption and
 * leave the subscriber where it was. */
static void rt_assert_corrupt(struct shmbus__ring_sub *sub) {
  struct shmbus__ring_view view;
  struct shmbus_msg_info info;
  unsigned char buf[64];
  uint64_t cursor = sub->cursor;

  cr_assert_eq(shmbus__ring_recv(sub, buf, sizeof(buf), &info), SHMBUS_ECORRUPT);
  cr_assert_eq(shmbus__ring_view_begin(sub, &view), SHMBUS_ECORRUPT);
  cr_assert_not(sub->viewing);
  cr_assert_eq(shmbus__ring_recv(sub, buf, sizeof(buf), &info), SHMBUS_ECORRUPT, "and again");
  cr_assert_eq(sub->cursor, cursor);
  cr_assert_eq(sub->received + sub->lost, cursor - shmbus__load_relaxed(&sub->rec->joined));
}

Test(ring, slot_word_from_another_lane_is_corrupt) {
  struct shmbus__region rg;
  struct shmbus__ring_sub sub;
  struct shmbus__ring_pub pub;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  rt_publish_n(&pub, 3);
  /* Writes go through the creator's writable mapping: slot 1 claims to
   * hold seq 10, which belongs to slot 2. */
  shmbus__store_release(&rt_slot(&rg.ring, 1)->word, SHMBUS__WORD(10, SHMBUS__SLOT_COMMITTED));
  {
    struct shmbus_msg_info info;
    cr_assert_eq(rt_recv(&sub, &info), (int)rt_len(0));
  }
  rt_assert_corrupt(&sub);
  shmbus__region_close(&rg);
}

Test(ring, slot_word_with_empty_state_and_a_seq_is_corrupt) {
  struct shmbus__region rg;
  struct shmbus__ring_sub sub;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  shmbus__store_release(&rt_slot(&rg.ring, 0)->word, SHMBUS__WORD(8, SHMBUS__SLOT_EMPTY));
  rt_assert_corrupt(&sub);
  shmbus__region_close(&rg);
}

Test(ring, empty_state_with_the_cursors_own_seq_is_corrupt) {
  struct shmbus__region rg;
  struct shmbus__ring_sub sub;
  struct shmbus__ring_pub pub;
  struct shmbus_msg_info info;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  rt_publish_n(&pub, 3);
  cr_assert_eq(rt_recv(&sub, &info), (int)rt_len(0));
  /* The word names the right seq but no state a publisher ever writes: it
   * must not pass for a committed message. */
  shmbus__store_release(&rt_slot(&rg.ring, 1)->word, SHMBUS__WORD(1, SHMBUS__SLOT_EMPTY));
  rt_assert_corrupt(&sub);
  cr_assert_eq(sub.received, 1);
  shmbus__region_close(&rg);
}

Test(ring, foreign_lane_word_is_corrupt_even_when_a_lap_is_plausible) {
  struct shmbus__region rg;
  struct shmbus__ring_sub sub;
  struct shmbus__ring_pub pub;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  /* The subscriber really is lapped (head 20, cursor 0), so the head check
   * alone would accept a jump; the word in slot 0 names seq 17, which lives
   * in slot 1. */
  rt_publish_n(&pub, 20);
  shmbus__store_release(&rt_slot(&rg.ring, 0)->word, SHMBUS__WORD(17, SHMBUS__SLOT_COMMITTED));
  rt_assert_corrupt(&sub);
  cr_assert_eq(sub.lost, 0, "no jump on a word that cannot be trusted");
  shmbus__region_close(&rg);
}

Test(ring, newer_seq_without_a_matching_head_is_corrupt) {
  struct shmbus__region rg;
  struct shmbus__ring_sub sub;
  struct shmbus__ring_pub pub;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  rt_publish(&pub);
  /* Slot 0 claims a lap ahead (seq 8) but head is 1: no real lap can look
   * like this, so the subscriber must not jump on its word. */
  shmbus__store_release(&rt_slot(&rg.ring, 0)->word, SHMBUS__WORD(8, SHMBUS__SLOT_COMMITTED));
  rt_assert_corrupt(&sub);
  cr_assert_eq(sub.lost, 0);
  shmbus__region_close(&rg);
}

/* An empty message published from NULL and received into NULL (a
 * zero-byte receive): no memcpy with a NULL pointer (UBSan found one,
 * through the msgpack helpers' length probe). */
Test(ring, empty_message_to_and_from_null_buffers) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;
  struct shmbus_msg_info info;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  cr_assert_eq(shmbus__ring_publish(&pub, NULL, 0, 0), 0);
  cr_assert_eq(shmbus__ring_recv(&sub, NULL, 0, &info), 0);
  cr_assert_eq(info.len, 0);
  cr_assert_eq(sub.received, 1);
  shmbus__region_close(&rg);
}

/* Found by tests/fuzz/fuzz_region.c: a slot word in the publisher's lane
 * naming a seq far beyond head made every claim look overtaken, so the
 * publisher claimed again and again (up to 2^62 times). It must report the
 * corruption after one claim instead. */
Test(ring, publisher_facing_a_word_beyond_head_reports_corruption) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;
  unsigned char buf[64];
  void *p;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  rt_publish(&pub); /* seq 0 */
  shmbus__store_release(&rt_slot(&rg.ring, 1)->word,
                        SHMBUS__WORD((UINT64_C(1) << 40) + 1, SHMBUS__SLOT_COMMITTED));
  tu_fill(buf, 32, pub.pub_id, 1);
  cr_assert_eq(shmbus__ring_publish(&pub, buf, 32, 0), SHMBUS_ECORRUPT);
  cr_assert_eq(rt_head(&rg.ring), 2, "one claim");
  cr_assert_eq(shmbus__load_relaxed(&pub.rec->inflight), SHMBUS__INFLIGHT_IDLE);
  cr_assert_not(pub.loaned);
  /* The next claim (seq 2, another slot) works. */
  cr_assert_eq(shmbus__ring_loan(&pub, 32, &p), 0);
  cr_assert_eq(shmbus__ring_cancel(&pub), 0);
  cr_assert_eq(pub.overtaken, 0);
  /* The reader gets seq 0, then reports the same word. */
  {
    struct shmbus_msg_info info;
    cr_assert_eq(rt_recv(&sub, &info), (int)rt_len(0));
  }
  rt_assert_corrupt(&sub);
  shmbus__region_close(&rg);
}

Test(ring, length_beyond_capacity_is_corrupt) {
  static const uint32_t lens[] = {65, 1000, UINT32_MAX};
  size_t k;

  for (k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
    struct shmbus__region rg;
    struct shmbus__ring_sub sub;
    struct shmbus__ring_pub pub;
    struct shmbus_msg_info info;
    unsigned char big[256];

    tu_region(&rg, 8, 64, 4, 4);
    cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
    cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
    rt_publish_n(&pub, 2);
    /* A valid committed word with a length no slot can hold: a copy would
     * read past the slot, so it must be refused even with room to spare in
     * the caller's buffer. */
    shmbus__store_relaxed(&rt_slot(&rg.ring, 0)->len, lens[k]);
    cr_assert_eq(shmbus__ring_recv(&sub, big, sizeof(big), &info), SHMBUS_ECORRUPT);
    rt_assert_corrupt(&sub);
    cr_assert_eq(sub.received, 0);
    shmbus__region_close(&rg);
  }
}

Test(ring, garbage_head_makes_a_lapped_reader_jump_without_crashing) {
  struct shmbus__region rg;
  struct shmbus__ring_sub sub;
  struct shmbus_msg_info info;
  unsigned char buf[64];
  uint64_t h = UINT64_C(1) << 62;
  uint64_t target = h - 8 + 2;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  shmbus__store_seq_cst(&rg.ring.hdr->head, h);
  shmbus__store_release(&rt_slot(&rg.ring, 0)->word, SHMBUS__WORD(8, SHMBUS__SLOT_COMMITTED));
  /* A head this far ahead is indistinguishable from a very long lap: the
   * reader jumps, counts, and finds nothing at its new cursor. */
  cr_assert_eq(shmbus__ring_recv(&sub, buf, sizeof(buf), &info), -EAGAIN);
  cr_assert_eq(sub.cursor, target);
  cr_assert_eq(sub.lost, target);
  rt_assert_accounted(&sub);
  shmbus__region_close(&rg);
}

Test(ring, publisher_takes_a_slot_whose_word_belongs_to_another_lane) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  rt_publish(&pub);
  /* A BUSY word from another lane is garbage, not a slower publisher: the
   * publisher must not wait for it forever. */
  shmbus__store_release(&rt_slot(&rg.ring, 1)->word, SHMBUS__WORD(8, SHMBUS__SLOT_BUSY));
  rg.ring.backoff = rt_backoff_forbidden;
  rt_publish(&pub);
  cr_assert_eq(rt_word(&rg.ring, 1), SHMBUS__WORD(1, SHMBUS__SLOT_COMMITTED));
  cr_assert_eq(rt_drain(&sub), 2);
  shmbus__region_close(&rg);
}

/* ---- accessors --------------------------------------------------------- */

/* What the daemon and its statistics read of the records goes through the
 * ring's accessors: owner state and pid, pub_id, deadline, head, counters,
 * the peer epoch; out-of-range indices read as free and zero. */
Test(ring, accessors_report_what_the_records_say) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;
  struct shmbus__sub_counters cnt;
  unsigned char buf[64];
  uint32_t pid = 0;
  uint32_t id = 0;
  uint64_t epoch;

  tu_region(&rg, 16, 64, 4, 2);
  cr_assert_eq(shmbus__ring_pub_owner(&rg.ring, 0, &pid, &id), SHMBUS__PUB_FREE);
  cr_assert_eq(shmbus__ring_sub_owner(&rg.ring, 0, &pid), SHMBUS__SUB_FREE);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 42, 4242), 0);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, true, 0, 777), 0);
  cr_assert_eq(shmbus__ring_pub_owner(&rg.ring, pub.index, &pid, &id), SHMBUS__PUB_ACTIVE);
  cr_assert_eq(pid, 4242u);
  cr_assert_eq(id, 42u);
  cr_assert_eq(shmbus__ring_sub_owner(&rg.ring, sub.index, &pid), SHMBUS__SUB_RELIABLE);
  cr_assert_eq(pid, 777u);
  cr_assert_eq(shmbus__ring_pub_owner(&rg.ring, 2, NULL, NULL), SHMBUS__PUB_FREE, "out of range");
  cr_assert_eq(shmbus__ring_sub_owner(&rg.ring, 4 * SHMBUS__MAX_MEMBERS, &pid), SHMBUS__SUB_FREE);
  cr_assert_eq(pid, 0u);

  shmbus__ring_sub_set_deadline(&rg.ring, sub.index, 1500);
  cr_assert_eq(shmbus__ring_sub_deadline(&rg.ring, sub.index), 1500u);
  cr_assert_eq(shmbus__ring_sub_deadline(&rg.ring, 4 * SHMBUS__MAX_MEMBERS), 0u);

  rt_publish_n(&pub, 3);
  cr_assert_eq(shmbus__ring_head(&rg.ring), 3u);
  cr_assert_eq(shmbus__ring_pub_published(&rg.ring, pub.index), 3u);
  cr_assert_eq(shmbus__ring_recv(&sub, buf, sizeof(buf), &(struct shmbus_msg_info){0}),
               (int)rt_len(0));
  shmbus__ring_sub_counters(&rg.ring, sub.index, &cnt);
  cr_assert_eq(cnt.cursor, 1u);
  cr_assert_eq(cnt.received, 1u);
  cr_assert_eq(cnt.lost, 0u);
  shmbus__ring_sub_counters(&rg.ring, 4 * SHMBUS__MAX_MEMBERS, &cnt);
  cr_assert_eq(cnt.cursor + cnt.received + cnt.lost + cnt.demoted, 0u);

  epoch = shmbus__ring_peer_epoch(&rg.ring);
  shmbus__ring_bump_peer_epoch(&rg.ring, rg.ring.own);
  cr_assert_eq(shmbus__ring_peer_epoch(&rg.ring), epoch + 1);
  cr_assert(shmbus__ring_peers_changed(&rg.ring, &epoch));
  shmbus__ring_bump_peer_epoch(&rg.ring, SHMBUS__MAX_MEMBERS); /* not mapped: nothing */
  cr_assert_eq(shmbus__ring_peer_epoch(&rg.ring), epoch);

  shmbus__ring_sub_detach(&sub);
  shmbus__ring_pub_detach(&pub);
  shmbus__region_close(&rg);
}
