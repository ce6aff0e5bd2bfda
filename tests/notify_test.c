/* Unit tests of the wake-up module (src/notify.c) on a real region (memfds)
 * with real wake-up events: the peer directory's bookkeeping, that an owner
 * is signalled once per ticket (and again after it armed again), that a bit
 * whose owner is not known yet stays pending without a signal, and the
 * questions the daemon asks about each participant. Whether an event was
 * signalled is asked of the kernel with a zero timeout: nothing here waits
 * for time to pass. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "notify.h"
#include "platform/platform.h"
#include "testutil.h"

/* 1 if `ev` is signalled now (and resets it), 0 if not. */
static int nt_signalled(shmbus__event_handle ev) {
  int rv = shmbus__wait_readable(&ev, 1, 0);

  cr_assert_geq(rv, 0, "wait_readable: %s", shmbus_strerror(rv));
  if (rv != 0)
    shmbus__event_drain(ev);
  return rv != 0;
}

/* A new event, and a duplicate of it for the directory (which takes it). */
static shmbus__event_handle nt_event(shmbus__event_handle *dup) {
  shmbus__event_handle ev;

  cr_assert_eq(shmbus__event_open(&ev), 0);
  cr_assert_eq(shmbus__fd_dup(ev, dup), 0);
  return ev;
}

/* Two lossy subscribers of one region, a (pid 1) and b (pid b_pid), whose
 * owners wake through ev_a and ev_b: in a sleepers' directory that holds
 * duplicates of both. */
struct nt_pair {
  struct shmbus__region rg;
  struct shmbus__ring_sub a, b;
  struct shmbus__notify n;
  shmbus__event_handle ev_a, ev_b;
};

static void nt_pair_open(struct nt_pair *p, uint32_t b_pid) {
  shmbus__event_handle dup;

  memset(p, 0, sizeof(*p));
  tu_region(&p->rg, 16, 64, 4, 2);
  cr_assert_eq(shmbus__ring_sub_attach(&p->rg.ring, &p->a, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_sub_attach(&p->rg.ring, &p->b, false, 0, b_pid), 0);
  shmbus__notify_init(&p->n, SHMBUS__NOTIFY_SLEEPERS, 4);
  cr_assert_eq(p->n.seq, UINT64_MAX, "a new directory knows no seq");
  p->ev_a = nt_event(&dup);
  shmbus__notify_set(&p->n, p->a.index, dup);
  p->ev_b = nt_event(&dup);
  shmbus__notify_set(&p->n, p->b.index, dup);
}

static void nt_pair_close(struct nt_pair *p) {
  shmbus__notify_free(&p->n);
  shmbus__ring_sub_detach(&p->a);
  shmbus__ring_sub_detach(&p->b);
  shmbus__fd_close(p->ev_a);
  shmbus__fd_close(p->ev_b);
  shmbus__region_close(&p->rg);
}

Test(notify, directory_bookkeeping) {
  struct shmbus__notify n = {0};
  shmbus__event_handle dup;
  shmbus__event_handle ev = nt_event(&dup);
  shmbus__event_handle other;

  shmbus__notify_init(&n, SHMBUS__NOTIFY_SLEEPERS, 4);
  cr_assert_eq(n.n, 4u * SHMBUS__MAX_MEMBERS, "sleepers live in every member file");
  cr_assert_eq(shmbus__notify_count(&n), 0);
  cr_assert(shmbus__notify_table_empty(&n, 1));
  /* Record 5 is record 1 of member file 1. */
  shmbus__notify_set(&n, 5, dup);
  cr_assert_eq(shmbus__notify_count(&n), 1);
  cr_assert_not(shmbus__notify_table_empty(&n, 1));
  cr_assert(shmbus__notify_table_empty(&n, 0));
  /* Out of range: the directory takes the event and closes it at once. */
  cr_assert_eq(shmbus__event_open(&other), 0);
  shmbus__notify_set(&n, n.n, other);
  cr_assert_eq(shmbus__notify_count(&n), 1);
  cr_assert_eq(shmbus__fd_same_file(other, ev), -EBADF, "the out-of-range event was closed");
  /* Forgetting the owner empties the table, which can then be freed. */
  shmbus__notify_set(&n, 5, SHMBUS__OS_HANDLE_INVALID);
  cr_assert(shmbus__notify_table_empty(&n, 1));
  shmbus__notify_table_free(&n, 1);
  cr_assert_null(n.tabs[1].ev);
  cr_assert_eq(shmbus__notify_count(&n), 0);
  shmbus__notify_free(&n);
  cr_assert_eq(n.n, 0u);
  shmbus__fd_close(ev);
}

Test(notify, sleepers_are_signalled_once_per_ticket) {
  struct shmbus__region rg;
  struct shmbus__ring_sub sub;
  struct shmbus__notify n = {0};
  shmbus__event_handle dup;
  shmbus__event_handle ev;

  tu_region(&rg, 16, 64, 4, 2);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  shmbus__notify_init(&n, SHMBUS__NOTIFY_SLEEPERS, 4);
  ev = nt_event(&dup);

  /* Asleep, but its owner is not known yet: pending, nothing signalled. */
  cr_assert(shmbus__ring_sub_arm(&sub), "nothing published: the subscriber may sleep");
  cr_assert(shmbus__notify_any(&rg.ring, SHMBUS__NOTIFY_SLEEPERS));
  cr_assert(shmbus__notify_waiting(&rg.ring, SHMBUS__NOTIFY_SLEEPERS, sub.index));
  shmbus__notify_wake(&n, &rg.ring);
  cr_assert(n.pending);
  cr_assert_eq(nt_signalled(ev), 0);

  /* The peer_join came: the next scan signals it, once for this ticket. */
  shmbus__notify_set(&n, sub.index, dup);
  shmbus__notify_wake(&n, &rg.ring);
  cr_assert_not(n.pending);
  cr_assert_eq(nt_signalled(ev), 1);
  shmbus__notify_wake(&n, &rg.ring);
  cr_assert_eq(nt_signalled(ev), 0, "the same ticket is not signalled twice");

  /* It goes to sleep again: a new ticket, signalled again. */
  shmbus__ring_sub_disarm(&sub);
  cr_assert_not(shmbus__notify_waiting(&rg.ring, SHMBUS__NOTIFY_SLEEPERS, sub.index));
  cr_assert(shmbus__ring_sub_arm(&sub));
  shmbus__notify_wake(&n, &rg.ring);
  cr_assert_eq(nt_signalled(ev), 1);

  /* The daemon's way: it asks about the participant and signals it. */
  cr_assert_eq(shmbus__notify_signal(ev), 0);
  cr_assert_eq(nt_signalled(ev), 1);

  shmbus__notify_free(&n);
  shmbus__ring_sub_detach(&sub);
  shmbus__fd_close(ev);
  shmbus__region_close(&rg);
}

/* The sleep epoch: while it stays, a scan that signalled every sleeper is
 * not repeated (a bit set without going to sleep the proper way, i.e.
 * without the epoch, is not looked at); a real sleep moves it, and so does
 * a new owner in the directory. */
Test(notify, unchanged_sleep_epoch_skips_the_scan) {
  struct nt_pair p;
  shmbus__event_handle dup_b;
  uint64_t e;

  nt_pair_open(&p, 2);

  e = shmbus__ring_sleep_epoch(&p.rg.ring, 0);
  cr_assert(shmbus__ring_sub_arm(&p.a));
  cr_assert_eq(shmbus__ring_sleep_epoch(&p.rg.ring, 0), e + 1, "a sleep moves the epoch");
  shmbus__notify_wake(&p.n, &p.rg.ring);
  cr_assert_eq(nt_signalled(p.ev_a), 1);
  cr_assert_eq(p.n.signals, 1);
  cr_assert(p.n.scanned[0]);

  /* b's bit appears without the epoch (not a proper sleep): skipped. */
  shmbus__fetch_or_seq_cst(&p.rg.ring.sleepers[0], UINT64_C(1) << (p.b.index % 4));
  shmbus__notify_wake(&p.n, &p.rg.ring);
  cr_assert_eq(nt_signalled(p.ev_b), 0, "the epoch did not move: no scan");
  /* b goes to sleep properly: the epoch moves, the scan finds it. */
  cr_assert(shmbus__ring_sub_arm(&p.b));
  shmbus__notify_wake(&p.n, &p.rg.ring);
  cr_assert_eq(nt_signalled(p.ev_b), 1);
  cr_assert_eq(nt_signalled(p.ev_a), 0, "a's ticket was signalled already");
  cr_assert_eq(p.n.signals, 2);

  /* A new owner forgets the epochs. */
  shmbus__fetch_add_seq_cst(&p.b.rec->sleep_ticket, 1);
  shmbus__notify_wake(&p.n, &p.rg.ring);
  cr_assert_eq(nt_signalled(p.ev_b), 0);
  shmbus__notify_set(&p.n, p.b.index, SHMBUS__OS_HANDLE_INVALID);
  cr_assert_eq(shmbus__fd_dup(p.ev_b, &dup_b), 0);
  shmbus__notify_set(&p.n, p.b.index, dup_b);
  shmbus__notify_wake(&p.n, &p.rg.ring);
  cr_assert_eq(nt_signalled(p.ev_b), 1, "rescanned after the directory changed");

  nt_pair_close(&p);
}

Test(notify, waiting_publishers_are_signalled_once_per_ticket) {
  struct shmbus__region rg;
  struct shmbus__ring_sub sub;
  struct shmbus__ring_pub pub;
  struct shmbus__notify n = {0};
  unsigned char msg[8] = {0};
  struct shmbus_msg_info info;
  shmbus__event_handle dup;
  shmbus__event_handle ev;
  uint32_t i;

  tu_region(&rg, 16, 64, 4, 2);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, true, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 7, 1), 0);
  shmbus__notify_init(&n, SHMBUS__NOTIFY_PUB_WAITERS, 2);
  cr_assert_eq(n.n, 2u, "publisher records live in the data file only");
  ev = nt_event(&dup);
  shmbus__notify_set(&n, pub.index, dup);

  /* Fill the ring behind the reliable subscriber: the publisher waits. */
  for (i = 0; i < 16; i++)
    cr_assert_geq(shmbus__ring_publish(&pub, msg, sizeof(msg), i), 0);
  cr_assert_eq(shmbus__ring_publish(&pub, msg, sizeof(msg), 16), SHMBUS_EFULL);
  cr_assert(shmbus__ring_pub_arm(&pub), "still full: the publisher may block");
  cr_assert(shmbus__notify_waiting(&rg.ring, SHMBUS__NOTIFY_PUB_WAITERS, pub.index));

  /* The subscriber reads: one signal for this wait ticket. */
  cr_assert_eq(shmbus__ring_recv(&sub, msg, sizeof(msg), &info), (int)sizeof(msg));
  shmbus__notify_wake(&n, &rg.ring);
  cr_assert_eq(nt_signalled(ev), 1);
  shmbus__notify_wake(&n, &rg.ring);
  cr_assert_eq(nt_signalled(ev), 0, "the same ticket is not signalled twice");

  shmbus__notify_free(&n);
  shmbus__ring_pub_detach(&pub);
  shmbus__ring_sub_detach(&sub);
  shmbus__fd_close(ev);
  shmbus__region_close(&rg);
}

/* Wake thresholds: a sleeper that asked to be woken once 4 messages wait
 * (cursor 0: seq 3) is deferred by commits of seqs 0..2 (and the scans in
 * between may be skipped: its threshold is remembered), signalled by the
 * commit of seq 3, once; a sleeper beside it without a threshold is
 * signalled at once. A directory that knows no seq (UINT64_MAX) signals
 * everyone. */
Test(notify, a_sleeper_with_a_threshold_is_deferred_until_it_is_reached) {
  struct nt_pair p;
  uint64_t s;

  nt_pair_open(&p, 1);

  cr_assert(shmbus__ring_sub_arm_after(&p.a, 4));
  cr_assert_eq(shmbus__ring_sub_wake_seq(&p.rg.ring, p.a.index), 3);
  for (s = 0; s < 3; s++) {
    p.n.seq = s;
    shmbus__notify_wake(&p.n, &p.rg.ring);
    cr_assert_eq(nt_signalled(p.ev_a), 0, "seq %llu: below the threshold", (unsigned long long)s);
  }
  cr_assert_eq(p.n.defer[0], 3);
  /* b sleeps without a threshold (and moves the epoch): signalled now. */
  cr_assert(shmbus__ring_sub_arm(&p.b));
  cr_assert_eq(shmbus__ring_sub_wake_seq(&p.rg.ring, p.b.index), 0);
  shmbus__notify_wake(&p.n, &p.rg.ring);
  cr_assert_eq(nt_signalled(p.ev_b), 1);
  cr_assert_eq(nt_signalled(p.ev_a), 0);
  p.n.seq = 3;
  shmbus__notify_wake(&p.n, &p.rg.ring);
  cr_assert_eq(nt_signalled(p.ev_a), 1, "the threshold is reached");
  cr_assert_eq(nt_signalled(p.ev_b), 0, "b's ticket was signalled already");
  p.n.seq = 4;
  shmbus__notify_wake(&p.n, &p.rg.ring);
  cr_assert_eq(nt_signalled(p.ev_a), 0, "once per ticket");
  cr_assert_eq(p.n.defer[0], UINT64_MAX);

  /* Without a known seq, every sleeper is signalled. */
  shmbus__ring_sub_disarm(&p.a);
  cr_assert(shmbus__ring_sub_arm_after(&p.a, 1000));
  p.n.seq = UINT64_MAX;
  shmbus__notify_wake(&p.n, &p.rg.ring);
  cr_assert_eq(nt_signalled(p.ev_a), 1);

  nt_pair_close(&p);
}
