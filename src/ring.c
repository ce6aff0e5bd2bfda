/* ring: sequenced slots shared by many publishers and many subscribers.
 *
 * The protocol, in the order things happen:
 *
 * Claim. A publisher takes the next sequence number s from `head`: with one
 * fetch-add when no reliable subscriber is attached, or with a CAS that
 * first checks there is room when one is. Slot index is s & mask. Before the
 * claim it stores CLAIMING in its record's `inflight`, after it the seq, so
 * that a repairer can tell what a dead publisher held.
 *
 * Take the slot. The slot's commit word is (seq << 2) | state. The publisher
 * waits while the word says BUSY for an older seq (a slower publisher still
 * writes the previous lap), then CASes the word to BUSY(s). If the word
 * already shows s or a newer seq, a faster publisher lapped this claim (or a
 * repairer skipped it): readers count s as lost, and the publisher claims
 * again.
 *
 * Commit. The publisher writes length, id, timestamp and payload, then
 * stores COMMITTED(s) with release (seq_cst, for the sleep protocol below).
 *
 * Read. A subscriber with cursor c loads the word of slot c & mask with
 * acquire (pairing with the commit), copies, issues an acquire fence and
 * reloads the word: if it changed, a publisher overwrote the slot while it
 * was being copied and the copy is discarded (seqlock). A word for an older
 * seq means "nothing yet"; SKIPPED(c) is a loss; a newer seq means this
 * subscriber was lapped: it jumps ahead from `head` and counts exactly the
 * seqs it jumped over as lost. Every seq from joining on is thus counted
 * once, as received or as lost. After each message the subscriber stores its
 * cursor with release: it has finished with every seq below.
 *
 * Reliable subscribers. A publisher may write seq s only when every reliable
 * cursor is > s - slot_count. It caches a lower bound of the slowest
 * reliable cursor (`min_cursor`) and rescans the records only when s reaches
 * min_cursor + slot_count or when some member file's `gen` changed: once
 * per lap while readers keep up, so amortised O(1) per publish (plus one
 * load per member file, i.e. per uid, never per subscriber). A joining
 * reliable subscriber publishes its record, increments its file's `gen`
 * (seq_cst) and only then reads `head` (seq_cst) to choose its start; a
 * publisher claims (seq_cst RMW on head) and only then reads each `gen`
 * (seq_cst). In the single total order of these operations, either the
 * publisher sees the new gen and rescans, or the subscriber sees the claim
 * and starts after it.
 *
 * Deadline. A publisher held back by one reliable record for longer than
 * the effective deadline (pub.c keeps the clock, on the EFULL path only)
 * demotes that record privately: its rescans skip it until its cursor
 * moves, so it overwrites what that subscriber has not read. The
 * subscriber finds itself lapped exactly as a lossy one does and counts
 * the loss (and `demoted`).
 *
 * Sleep (tickets; nobody writes another uid's memory). A subscriber about
 * to block increments its record's `sleep_ticket`, sets its bit in its own
 * member file's `sleepers` and the word's bit in `sleep_summary` (seq_cst
 * RMWs), then reloads its slot word (seq_cst). A publisher stores the
 * commit word (seq_cst) and then loads each member file's `sleep_summary`
 * (seq_cst): either it sees the bit and wakes the subscriber, or the
 * subscriber sees the commit and does not sleep. Publishers never clear
 * the bits: each one signals an (index, ticket) pair at most once and
 * remembers it privately; the subscriber clears its own bit on its next
 * read (and the summary bit when its word is empty, re-setting it if a
 * neighbour's bit appeared meanwhile). A forged bit or ticket therefore
 * costs a publisher a load per change, never a syscall. While nobody
 * sleeps, a commit costs one load per member file of lines nobody writes.
 *
 * Sleep epoch. After its two bits, a subscriber going to sleep increments
 * its member file's `sleep_epoch` (seq_cst RMW). A publisher remembers,
 * per member file, the epoch it read (seq_cst, after its summary load)
 * before a scan that signalled every sleeper it found; while the summary
 * is non-zero and the epoch unchanged, every bit set belongs to a sleeper
 * it already signalled on that ticket, and it skips the scan. A sleeper
 * whose reload missed the commit incremented the epoch before that
 * reload, hence before the commit and the publisher's epoch load in the
 * total order: the publisher sees a new epoch and scans. Without this, a
 * publisher rescanned the bitmap on every commit from its signal until
 * the woken subscriber ran and cleared its bit (25 scans per signal in a
 * profile). A forged epoch only concerns the forger's own uid.
 *
 * Peer epoch. A publisher can only signal a sleeper whose eventfd it
 * learnt from a peer_join on its socket, and reads its socket only when
 * its own member file's `peer_epoch` moved. The daemon sends the
 * peer_joins about a newcomer to the existing members, then increments
 * the epoch (seq_cst RMW), and only then answers the newcomer, so a
 * subscriber sleeps after the increment. A publisher loads the epoch
 * (seq_cst) before each publish and again after its seq_cst commit store.
 * A newcomer whose reload missed the commit set its bit before the commit
 * in the total order, and after the increment (it had its answer): the
 * load after the commit sees the increment, the publisher reads its
 * socket and finds the peer_join (sent before it), then scans. Without
 * the load after the commit, the last message of a burst could find the
 * newcomer's bit without its eventfd (or not find it: another uid's
 * member file comes with the peer_join) and nothing would retry. A
 * peer_join the daemon owed to a full socket and sends later is followed
 * by the same increment and by the daemon waking the topic's sleepers
 * itself (daemon/peers.c): the publisher may have published for the last
 * time before it came.
 *
 * Wake thresholds. A subscriber may ask to be woken only once several
 * messages wait (shmbus_sub_opts.wake_after = K): before its new ticket it
 * stores `wake_seq` = cursor + K - 1 in its record (relaxed; 0 means "the
 * next commit"), and the seq_cst RMWs of the ticket's bits release it. A
 * publisher that finds the bit loads the ticket (acquire) and then
 * wake_seq (relaxed: ordered after the acquire loads that read what the
 * RMWs released, so it is this ticket's threshold or a later ticket's).
 * If the seq it committed is below wake_seq it does not signal and does
 * not remember the ticket as signalled: a later commit that reaches the
 * threshold signals it. It also remembers, per member file, the lowest
 * threshold it deferred, and does not skip the file's scan (sleep epoch)
 * once its seq reaches that. No wake-up is lost for good: a sleep with a
 * threshold is always bounded by the subscriber's own timer
 * (wake_within_us), because the threshold alone cannot promise a signal
 * (with several publishers, seq W may be committed before the bit is set
 * while the reload at the cursor still sees nothing, and later commits of
 * lower seqs defer; and fewer than K messages may come at all). When a
 * timer period ends with nothing to read, the subscriber's next sleep has
 * no threshold (wake_seq 0) and no timer: an idle subscriber sleeps
 * without timers, and the sleep-protocol argument above applies to it
 * unchanged. A forged wake_seq only delays the wake-ups of the forger's
 * own uid's subscribers (whose timers bound them).
 *
 * Waiting for room is the mirror image in the data file: a publisher
 * increments its `wait_ticket`, sets its `pub_waiters` bit and summary
 * bit, re-checks and blocks; a reliable subscriber, after each cursor
 * store (seq_cst fence), loads `pub_wait_summary` and signals each waiting
 * (publisher, ticket) once; the publisher clears its own bit on its next
 * claim.
 *
 * Repair. When a publisher dies, the daemon turns the seq it held (BUSY or
 * never taken) into SKIPPED, so neither readers nor other publishers wait
 * for it forever. */
#include "ring.h"

#include <errno.h>
#include <string.h>

#include "shmbus/error.h"

#define RING_NONE UINT64_MAX

static struct shmbus__slot *ring_slot(const struct shmbus__ring *r, uint64_t seq) {
  return (struct shmbus__slot *)(r->slots + (seq & r->mask) * r->slot_stride);
}

static unsigned char *ring_payload(struct shmbus__slot *slot) {
  return (unsigned char *)slot + SHMBUS__SLOT_HDR_SIZE;
}

/* Payload copies race with a publisher that laps the reader, by design: the
 * seqlock re-check discards such a copy. ThreadSanitizer cannot see that,
 * so these two functions are named in tests/tsan.supp. */
/* An empty message may come with a NULL buffer (a zero-byte receive asks
 * only for the length); memcpy must not see NULL even for 0 bytes. */
__attribute__((noinline)) static void ring_copy_out(void *dst, const void *src, size_t n) {
  if (n != 0)
    memcpy(dst, src, n);
}

__attribute__((noinline)) static void ring_copy_in(void *dst, const void *src, size_t n) {
  if (n != 0)
    memcpy(dst, src, n);
}

static void ring_backoff(const struct shmbus__ring *r, unsigned spins) {
  if (r->backoff != NULL)
    r->backoff(spins);
  else
    shmbus__cpu_relax();
}

/* ---- layout ---------------------------------------------------------- */

int shmbus__ring_view_build(struct shmbus__ring *r, const struct shmbus__params *p, uint64_t page,
                            void *data, uint64_t data_len) {
  struct shmbus__layout l;
  int rv;

  if ((rv = shmbus__layout_compute(p, page, &l)) < 0)
    return rv;
  if (data == NULL || data_len != l.data_size)
    return SHMBUS_EBADREGION;
  memset(r, 0, sizeof(*r));
  r->hdr = data;
  r->pubs = (struct shmbus__pub_rec *)((unsigned char *)data + l.pubs_offset);
  r->slots = (unsigned char *)data + l.slots_offset;
  r->mask = (uint64_t)p->slot_count - 1;
  r->slot_count = p->slot_count;
  r->slot_capacity = p->slot_capacity;
  r->slot_stride = l.slot_stride;
  r->max_subs = p->max_subs;
  r->max_pubs = p->max_pubs;
  r->bitmap_words = l.bitmap_words;
  r->member_size = l.member_size;
  r->layout = l;
  return 0;
}

int shmbus__ring_view_add_member(struct shmbus__ring *r, uint32_t m, void *member, uint64_t len,
                                 bool own) {
  struct shmbus__ring_member *mb;

  if (m >= SHMBUS__MAX_MEMBERS || member == NULL)
    return -EINVAL;
  if (len != r->member_size)
    return SHMBUS_EBADREGION;
  mb = &r->members[m];
  r->view_gen++;
  if (mb->hdr == NULL)
    r->mapped[r->n_mapped++] = member;
  else
    for (uint32_t k = 0; k < r->n_mapped; k++)
      if (r->mapped[k] == mb->hdr)
        r->mapped[k] = member;
  mb->hdr = member;
  mb->sleepers = (shmbus__a64 *)((unsigned char *)member + SHMBUS__BITMAP_OFFSET);
  mb->subs = (struct shmbus__sub_rec *)((unsigned char *)member + SHMBUS__SUBS_OFFSET);
  if (m >= r->n_members)
    r->n_members = m + 1;
  if (own) {
    r->own = m;
    r->ctrl = mb->hdr;
    r->sleepers = mb->sleepers;
    r->subs = mb->subs;
  }
  return 0;
}

int shmbus__ring_view_remove_member(struct shmbus__ring *r, uint32_t m) {
  uint32_t k;

  if (m >= SHMBUS__MAX_MEMBERS || r->members[m].hdr == NULL || (r->ctrl != NULL && m == r->own))
    return -EINVAL;
  for (k = 0; k < r->n_mapped; k++)
    if (r->mapped[k] == r->members[m].hdr) {
      r->mapped[k] = r->mapped[--r->n_mapped];
      break;
    }
  r->view_gen++;
  memset(&r->members[m], 0, sizeof(r->members[m]));
  return 0;
}

int shmbus__ring_member_check(const struct shmbus__ring *r, const void *member, uint64_t len,
                              uint32_t *m, uint32_t *uid) {
  return shmbus__layout_check_member(member, len, &r->layout, r->hdr->nonce, m, uid);
}

int shmbus__ring_view_init(struct shmbus__ring *r, void *data, uint64_t data_len, void *ctrl,
                           uint64_t ctrl_len, uint64_t page) {
  struct shmbus__layout l;
  uint32_t m;
  uint32_t uid;
  int rv;

  if (ctrl == NULL)
    return SHMBUS_EBADREGION;
  if ((rv = shmbus__layout_check_data(data, data_len, page, &l)) < 0)
    return rv;
  if ((rv = shmbus__ring_view_build(r, &l.params, page, data, data_len)) < 0)
    return SHMBUS_EBADREGION;
  if ((rv = shmbus__ring_member_check(r, ctrl, ctrl_len, &m, &uid)) < 0)
    return rv;
  return shmbus__ring_view_add_member(r, m, ctrl, ctrl_len, true);
}

struct shmbus__sub_rec *shmbus__ring_sub_rec(const struct shmbus__ring *r, uint32_t g) {
  uint32_t m = g / r->max_subs;
  if (m >= r->n_members || r->members[m].hdr == NULL)
    return NULL;
  return &r->members[m].subs[g % r->max_subs];
}

/* ---- publishers ------------------------------------------------------ */

static bool ring_is_demoted(const struct shmbus__ring_pub *pub, uint32_t g) {
  uint32_t k;
  for (k = 0; k < pub->n_demoted; k++)
    if (pub->demoted[k].g == g)
      return true;
  return false;
}

/* Recomputes the lower bound of reliable cursors over every member file
 * the view maps. Each file's gen is loaded before its records, so a join
 * after that load is seen through a changed gen next time. Demoted records
 * are skipped (and dropped from the list once their cursor moved). */
static void ring_rescan(struct shmbus__ring_pub *pub) {
  const struct shmbus__ring *r = pub->ring;
  uint64_t min = RING_NONE;
  uint64_t dmin = RING_NONE;
  uint32_t blocker = 0;
  uint32_t m;
  uint32_t i;
  uint32_t k;

  /* Pairs with the joining subscribers' seq_cst gen increments, made
   * after their records: every gen before any record. */
  pub->view_gen = r->view_gen;
  for (k = 0; k < r->n_mapped; k++)
    pub->gen[k] = shmbus__load_acquire(&r->mapped[k]->gen);
  for (m = 0; m < r->n_members; m++) {
    const struct shmbus__ring_member *mb = &r->members[m];
    if (mb->hdr == NULL)
      continue;
    for (i = 0; i < r->max_subs; i++) {
      const struct shmbus__sub_rec *s = &mb->subs[i];
      uint32_t g = m * r->max_subs + i;
      uint64_t c;
      /* Pairs with the subscriber's release store of RELIABLE in attach: a
       * record seen RELIABLE has its initial cursor visible. */
      if (shmbus__load_acquire(&s->state) != SHMBUS__SUB_RELIABLE)
        continue;
      /* Pairs with the subscriber's release store of its cursor: it has
       * finished reading every seq below the value seen here. */
      c = shmbus__load_acquire(&s->cursor);
      if (pub->n_demoted != 0 && ring_is_demoted(pub, g)) {
        if (c < dmin)
          dmin = c;
        continue;
      }
      if (c < min) {
        min = c;
        blocker = g;
      }
    }
  }
  /* Drop demoted records that read again or are no longer reliable. */
  for (k = 0; k < pub->n_demoted;) {
    struct shmbus__sub_rec *rec = shmbus__ring_sub_rec(r, pub->demoted[k].g);
    if (rec == NULL || shmbus__load_acquire(&rec->state) != SHMBUS__SUB_RELIABLE ||
        shmbus__load_acquire(&rec->cursor) != pub->demoted[k].cursor) {
      pub->demoted[k] = pub->demoted[--pub->n_demoted];
      continue;
    }
    k++;
  }
  pub->min_cursor = min;
  pub->blocker = blocker;
  pub->demoted_min = pub->n_demoted != 0 ? dmin : RING_NONE;
}

/* Whether any mapped member file's gen differs from the one the last
 * rescan saw. One load per member file. */
static inline bool ring_gen_moved(const struct shmbus__ring_pub *pub, bool seq_cst) {
  const struct shmbus__ring *r = pub->ring;
  uint32_t n = r->n_mapped;
  uint32_t k;

  /* Member files came or went (process-local): the gens are of others. */
  if (pub->view_gen != r->view_gen)
    return true;
  /* One member file (one uid) is the common case: no loop. */
  if (n == 1)
    return (seq_cst ? shmbus__load_seq_cst(&r->mapped[0]->gen)
                    : shmbus__load_acquire(&r->mapped[0]->gen)) != pub->gen[0];
  for (k = 0; k < n; k++) {
    /* seq_cst after a claim: pairs with the joining subscriber's seq_cst
     * gen increment (see the top); acquire before it: as in rescan. */
    uint64_t g = seq_cst ? shmbus__load_seq_cst(&r->mapped[k]->gen)
                         : shmbus__load_acquire(&r->mapped[k]->gen);
    if (g != pub->gen[k])
      return true;
  }
  return false;
}

/* True while writing seq s would overwrite a seq a reliable subscriber
 * (as cached) has not read. A cursor beyond s (even a bogus one) never
 * blocks. */
static bool ring_blocked(const struct shmbus__ring_pub *pub, uint64_t s) {
  return pub->min_cursor != RING_NONE && s >= pub->min_cursor &&
         s - pub->min_cursor >= pub->ring->slot_count;
}

static void ring_pub_init(struct shmbus__ring *r, struct shmbus__ring_pub *pub,
                          struct shmbus__pub_rec *rec, uint32_t index, uint32_t pub_id) {
  memset(pub, 0, sizeof(*pub));
  pub->ring = r;
  pub->rec = rec;
  pub->index = index;
  pub->pub_id = pub_id;
  pub->race_wait_max = SHMBUS__RING_RACE_WAIT;
  pub->demoted_min = RING_NONE;
  pub->wait_ticket = shmbus__load_relaxed(&rec->wait_ticket);
  ring_rescan(pub);
}

int shmbus__ring_pub_attach(struct shmbus__ring *r, struct shmbus__ring_pub *pub, uint32_t pub_id,
                            uint32_t pid) {
  uint32_t i;

  for (i = 0; i < r->max_pubs; i++) {
    struct shmbus__pub_rec *rec = &r->pubs[i];
    uint32_t expected = SHMBUS__PUB_FREE;
    /* acq_rel: acquire the previous owner's (or repairer's) last writes to
     * the record, release ours below to whoever reads ACTIVE. */
    if (!shmbus__cas_acq_rel(&rec->state, &expected, SHMBUS__PUB_ACTIVE))
      continue;
    shmbus__store_relaxed(&rec->pid, pid);
    shmbus__store_relaxed(&rec->pub_id, pub_id);
    shmbus__store_relaxed(&rec->inflight, SHMBUS__INFLIGHT_IDLE);
    shmbus__store_relaxed(&rec->published, 0);
    shmbus__store_relaxed(&rec->overtaken, 0);
    ring_pub_init(r, pub, rec, i, pub_id);
    return 0;
  }
  return SHMBUS_ENOSLOT;
}

void shmbus__ring_pub_rescan(struct shmbus__ring_pub *pub) {
  ring_rescan(pub);
}

/* Clears our own pub_waiters bit, and the summary bit when the word is
 * empty; a neighbour that set its bit meanwhile gets the summary back. */
static void ring_wait_done(struct shmbus__ring_pub *pub) {
  struct shmbus__data_hdr *h = pub->ring->hdr;
  uint32_t w = pub->index / 64;

  pub->waiting = false;
  /* seq_cst: ordered with the neighbours' seq_cst bit-then-summary RMWs,
   * so the reload below sees a bit whose summary RMW our clear may race. */
  shmbus__fetch_and_seq_cst(&h->pub_waiters[w], ~(UINT64_C(1) << (pub->index % 64)));
  if (shmbus__load_seq_cst(&h->pub_waiters[w]) != 0)
    return;
  shmbus__fetch_and_seq_cst(&h->pub_wait_summary, ~(UINT64_C(1) << w));
  if (shmbus__load_seq_cst(&h->pub_waiters[w]) != 0)
    shmbus__fetch_or_seq_cst(&h->pub_wait_summary, UINT64_C(1) << w);
}

/* Claims a seq. Returns 0 with *seq, or SHMBUS_EFULL without claiming. */
static int ring_claim(struct shmbus__ring_pub *pub, uint64_t *seq) {
  struct shmbus__ring *r = pub->ring;
  uint64_t s;
  unsigned spins = 0;

  if (pub->waiting)
    ring_wait_done(pub);
  /* A reliable subscriber that joined since our last look (it may start
   * far back, with history) must be seen before we choose fetch-add, or we
   * would claim a seq without room and have to wait instead of answering
   * EFULL. The check after the claim still covers a join that races with
   * the claim itself. */
  if (ring_gen_moved(pub, false))
    ring_rescan(pub);
  /* Relaxed: the seq_cst RMW on head below releases it, and a repairer
   * that sees our claim in head then sees CLAIMING or what follows. */
  shmbus__store_relaxed(&pub->rec->inflight, SHMBUS__INFLIGHT_CLAIMING);
  if (pub->min_cursor == RING_NONE) {
    /* seq_cst: pairs with a joining reliable subscriber (see the top). */
    s = shmbus__fetch_add_seq_cst(&r->hdr->head, 1);
  } else {
    s = shmbus__load_relaxed(&r->hdr->head);
    for (;;) {
      if (ring_blocked(pub, s)) {
        ring_rescan(pub);
        if (ring_blocked(pub, s)) {
          shmbus__store_relaxed(&pub->rec->inflight, SHMBUS__INFLIGHT_IDLE);
          return SHMBUS_EFULL;
        }
      }
      /* seq_cst: as the fetch-add above. On failure s is the new head. */
      if (shmbus__cas_seq_cst(&r->hdr->head, &s, s + 1))
        break;
    }
  }
  shmbus__store_relaxed(&pub->rec->inflight, s);

  /* seq_cst: pairs with the joining subscriber's seq_cst gen increment. */
  if (ring_gen_moved(pub, true))
    ring_rescan(pub);
  /* Only after a join raced with this claim: the seq is ours, so wait for
   * the newcomer to read (it is live: the daemon evicts dead ones). But not
   * forever: a subscriber that does not read, or one that forged its
   * record, would hang us. After race_wait_max rounds we write anyway, as
   * for a lossy subscriber: the newcomer finds a newer seq in that slot and
   * counts what it missed as lost (docs/design.md). */
  while (ring_blocked(pub, s)) {
    if (spins >= pub->race_wait_max) {
      pub->race_gave_up++;
      break;
    }
    ring_backoff(r, ++spins);
    ring_rescan(pub);
  }
  /* A demoted record (deadline) that this claim laps. */
  if (pub->demoted_min != RING_NONE && s >= pub->demoted_min &&
      s - pub->demoted_min >= r->slot_count)
    pub->deadline_overwrites++;
  *seq = s;
  return 0;
}

/* Takes slot(s) for writing. Returns 0, 1 when the claim was overtaken
 * (the slot already shows s or a newer seq), or SHMBUS_ECORRUPT when the
 * slot shows a seq nobody has claimed yet. */
static int ring_take_slot(struct shmbus__ring_pub *pub, uint64_t s) {
  struct shmbus__ring *r = pub->ring;
  struct shmbus__slot *slot = ring_slot(r, s);
  unsigned spins = 0;
  /* Acquire: pairs with the previous holder's commit (release), so its
   * payload writes are done before ours start. */
  uint64_t w = shmbus__load_acquire(&slot->word);

  for (;;) {
    uint64_t ws = SHMBUS__WORD_SEQ(w);
    bool same_lane = (ws & r->mask) == (s & r->mask);

    if (w != 0 && same_lane && ws >= s) {
      /* Overtaken: a faster publisher claimed ws, a lap or more after s,
       * or a repairer skipped s. Either way ws was claimed, so head is
       * beyond it. A word beyond head was forged or corrupted: claiming
       * again would chase it for up to 2^62 claims. Acquire: the word we
       * read (acquire) was written after its claim, a seq_cst RMW on head,
       * so head reads at least ws + 1 here if the word is genuine. */
      if (ws > s && ws >= shmbus__load_acquire(&r->hdr->head))
        return SHMBUS_ECORRUPT;
      return 1;
    }
    if (w != 0 && same_lane && SHMBUS__WORD_STATE(w) == SHMBUS__SLOT_BUSY) {
      /* A slower publisher still writes the previous lap (or died there and
       * awaits repair). */
      ring_backoff(r, ++spins);
      w = shmbus__load_acquire(&slot->word);
      continue;
    }
    /* Empty, an older seq, or a word that does not belong to this slot
     * (corrupted): take it. acq_rel as the load above. */
    if (shmbus__cas_acq_rel(&slot->word, &w, SHMBUS__WORD(s, SHMBUS__SLOT_BUSY)))
      break;
  }
  /* Orders BUSY before the payload writes: a reader whose copy saw any of
   * them sees BUSY (or later) on its re-check (its acquire fence pairs). */
  shmbus__fence_release();
  return 0;
}

int shmbus__ring_loan(struct shmbus__ring_pub *pub, size_t len, void **payload) {
  uint64_t s;
  int rv;

  if (pub->loaned)
    return SHMBUS_ESTATE;
  if (len > pub->ring->slot_capacity)
    return SHMBUS_ETOOBIG;
  for (;;) {
    if ((rv = ring_claim(pub, &s)) < 0)
      return rv;
    if ((rv = ring_take_slot(pub, s)) == 0)
      break;
    if (rv < 0) {
      /* Holds nothing: s stays unwritten; readers find the same word. */
      shmbus__store_release(&pub->rec->inflight, SHMBUS__INFLIGHT_IDLE);
      return rv;
    }
    pub->overtaken++;
    shmbus__store_relaxed(&pub->rec->overtaken, pub->overtaken);
  }
  pub->loaned = true;
  pub->loan_seq = s;
  *payload = ring_payload(ring_slot(pub->ring, s));
  return 0;
}

/* Ends a loan with COMMITTED or SKIPPED; returns whether anyone sleeps. */
static int ring_finish(struct shmbus__ring_pub *pub, unsigned state, size_t len, uint64_t ts_ns) {
  struct shmbus__ring *r = pub->ring;
  struct shmbus__slot *slot = ring_slot(r, pub->loan_seq);
  bool sleepers;

  shmbus__store_relaxed(&slot->len, (uint32_t)len);
  shmbus__store_relaxed(&slot->pub_id, pub->pub_id);
  shmbus__store_relaxed(&slot->ts_ns, ts_ns);
  /* Release: pairs with the reader's acquire load of the word; seq_cst: is
   * ordered before the summary loads below (sleep protocol). */
  shmbus__store_seq_cst(&slot->word, SHMBUS__WORD(pub->loan_seq, state));
  sleepers = shmbus__ring_any_sleeper(r);
  /* Release: a repairer that sees IDLE sees the commit above. */
  shmbus__store_release(&pub->rec->inflight, SHMBUS__INFLIGHT_IDLE);
  pub->loaned = false;
  return sleepers;
}

int shmbus__ring_commit(struct shmbus__ring_pub *pub, size_t len, uint64_t ts_ns) {
  if (!pub->loaned)
    return SHMBUS_ESTATE;
  if (len > pub->ring->slot_capacity)
    return SHMBUS_ETOOBIG;
  pub->published++;
  shmbus__store_relaxed(&pub->rec->published, pub->published);
  return ring_finish(pub, SHMBUS__SLOT_COMMITTED, len, ts_ns);
}

int shmbus__ring_cancel(struct shmbus__ring_pub *pub) {
  if (!pub->loaned)
    return SHMBUS_ESTATE;
  return ring_finish(pub, SHMBUS__SLOT_SKIPPED, 0, 0);
}

int shmbus__ring_publish(struct shmbus__ring_pub *pub, const void *buf, size_t len,
                         uint64_t ts_ns) {
  void *p;
  int rv;

  if ((rv = shmbus__ring_loan(pub, len, &p)) < 0)
    return rv;
  ring_copy_in(p, buf, len);
  return shmbus__ring_commit(pub, len, ts_ns);
}

int shmbus__ring_pub_adopt(struct shmbus__ring *r, struct shmbus__ring_pub *pub, uint32_t index) {
  struct shmbus__pub_rec *rec;

  if (index >= r->max_pubs)
    return -EINVAL;
  rec = &r->pubs[index];
  /* Acquire: pairs with the attaching process's CAS and record writes. */
  if (shmbus__load_acquire(&rec->state) != SHMBUS__PUB_ACTIVE)
    return SHMBUS_ESTATE;
  ring_pub_init(r, pub, rec, index, shmbus__load_relaxed(&rec->pub_id));
  pub->published = shmbus__load_relaxed(&rec->published);
  pub->overtaken = shmbus__load_relaxed(&rec->overtaken);
  return 0;
}

bool shmbus__ring_pub_arm(struct shmbus__ring_pub *pub) {
  struct shmbus__ring *r = pub->ring;
  uint32_t w = pub->index / 64;

  /* A new ticket for this wait, before the bit (released by the seq_cst
   * RMW below): a subscriber that sees the bit sees the ticket. */
  shmbus__store_relaxed(&pub->rec->wait_ticket, ++pub->wait_ticket);
  pub->waiting = true;
  /* seq_cst RMWs before the reloads in the rescan below (a seq_cst fence
   * makes the order explicit): pairs with the reliable subscriber's fence
   * between its cursor store and its summary load (ring_advance). */
  shmbus__fetch_or_seq_cst(&r->hdr->pub_waiters[w], UINT64_C(1) << (pub->index % 64));
  shmbus__fetch_or_seq_cst(&r->hdr->pub_wait_summary, UINT64_C(1) << w);
  shmbus__fence_seq_cst();
  ring_rescan(pub);
  return ring_blocked(pub, shmbus__load_acquire(&r->hdr->head));
}

bool shmbus__ring_pub_blocker(const struct shmbus__ring_pub *pub, uint32_t *g, uint64_t *cursor,
                              uint32_t *deadline_ms) {
  struct shmbus__sub_rec *rec;

  if (pub->min_cursor == RING_NONE)
    return false;
  rec = shmbus__ring_sub_rec(pub->ring, pub->blocker);
  *g = pub->blocker;
  *cursor = pub->min_cursor;
  /* Relaxed: the daemon wrote it at attach; any value is only a bound. */
  *deadline_ms = rec != NULL ? shmbus__load_relaxed(&rec->deadline_ms) : 0;
  return true;
}

int shmbus__ring_pub_demote(struct shmbus__ring_pub *pub, uint32_t g) {
  struct shmbus__sub_rec *rec = shmbus__ring_sub_rec(pub->ring, g);

  if (rec == NULL)
    return -EINVAL;
  if (ring_is_demoted(pub, g))
    return 0;
  if (pub->n_demoted >= SHMBUS__RING_MAX_DEMOTED)
    return SHMBUS_ENOSLOT;
  pub->demoted[pub->n_demoted].g = g;
  /* Acquire: as in rescan. */
  pub->demoted[pub->n_demoted].cursor = shmbus__load_acquire(&rec->cursor);
  pub->n_demoted++;
  ring_rescan(pub);
  return 0;
}

void shmbus__ring_pub_detach(struct shmbus__ring_pub *pub) {
  if (pub->rec == NULL)
    return;
  if (pub->loaned)
    (void)shmbus__ring_cancel(pub);
  if (pub->waiting)
    ring_wait_done(pub);
  /* Release: the next owner's acquire CAS sees our last record writes. */
  shmbus__store_release(&pub->rec->state, SHMBUS__PUB_FREE);
  pub->rec = NULL;
}

/* ---- subscribers ----------------------------------------------------- */

static void ring_advance(struct shmbus__ring_sub *sub, uint64_t cursor, uint64_t received,
                         uint64_t lost) {
  sub->cursor = cursor;
  sub->received += received;
  sub->lost += lost;
  /* Release: pairs with the publisher's acquire load in ring_rescan: every
   * read of a seq below `cursor` is done before a publisher reuses it. */
  shmbus__store_release(&sub->rec->cursor, cursor);
  shmbus__store_relaxed(&sub->rec->received, sub->received);
  shmbus__store_relaxed(&sub->rec->lost, sub->lost);
  if (sub->reliable) {
    /* Only reliable subscribers make room that publishers wait for. The
     * fence orders the cursor store before the summary load; it pairs with
     * the waiting publisher's seq_cst fetch_or then cursor reload
     * (shmbus__ring_pub_arm): either it sees our cursor, or we
     * see its bit. */
    shmbus__fence_seq_cst();
    if (shmbus__load_relaxed(&sub->ring->hdr->pub_wait_summary) != 0)
      sub->pubs_waiting = true;
  }
}

static uint64_t ring_history(const struct shmbus__ring *r, uint64_t head, uint32_t history) {
  uint64_t back = history;
  if (back > r->slot_count)
    back = r->slot_count;
  if (back > head)
    back = head;
  return head - back;
}

int shmbus__ring_sub_attach_member(struct shmbus__ring *r, uint32_t m, struct shmbus__ring_sub *sub,
                                   bool reliable, uint32_t history, uint32_t pid) {
  struct shmbus__ring_member *mb;
  uint32_t i;

  if (m >= r->n_members || r->members[m].hdr == NULL)
    return -EINVAL;
  mb = &r->members[m];
  for (i = 0; i < r->max_subs; i++) {
    struct shmbus__sub_rec *rec = &mb->subs[i];
    uint32_t expected = SHMBUS__SUB_FREE;
    uint64_t start;

    /* acq_rel: as in pub_attach. */
    if (!shmbus__cas_acq_rel(&rec->state, &expected, SHMBUS__SUB_JOINING))
      continue;
    shmbus__store_relaxed(&rec->pid, pid);
    shmbus__store_relaxed(&rec->received, 0);
    shmbus__store_relaxed(&rec->lost, 0);
    shmbus__store_relaxed(&rec->sleeps, 0);
    shmbus__store_relaxed(&rec->demoted, 0);
    /* Acquire: pairs with nothing in particular; head only orders claims. */
    start = ring_history(r, shmbus__load_acquire(&r->hdr->head), history);
    if (reliable) {
      uint64_t later;
      shmbus__store_relaxed(&rec->cursor, start);
      /* Release: a publisher that sees RELIABLE sees the cursor above. */
      shmbus__store_release(&rec->state, SHMBUS__SUB_RELIABLE);
      /* seq_cst: pairs with the publisher's seq_cst load of gen after its
       * claim; then the seq_cst load of head below (see the top). */
      shmbus__fetch_add_seq_cst(&mb->hdr->gen, 1);
      later = ring_history(r, shmbus__load_seq_cst(&r->hdr->head), history);
      if (later > start)
        start = later;
    } else {
      shmbus__store_release(&rec->state, SHMBUS__SUB_LOSSY);
    }
    shmbus__store_relaxed(&rec->joined, start);
    memset(sub, 0, sizeof(*sub));
    sub->ring = r;
    sub->rec = rec;
    sub->index = m * r->max_subs + i;
    sub->reliable = reliable;
    sub->sleep_ticket = shmbus__load_relaxed(&rec->sleep_ticket);
    ring_advance(sub, start, 0, 0);
    return 0;
  }
  return SHMBUS_ENOSLOT;
}

int shmbus__ring_sub_attach(struct shmbus__ring *r, struct shmbus__ring_sub *sub, bool reliable,
                            uint32_t history, uint32_t pid) {
  if (r->ctrl == NULL)
    return -EINVAL;
  return shmbus__ring_sub_attach_member(r, r->own, sub, reliable, history, pid);
}

/* Clears sleeper bit g and, when its word is empty, the summary bit; a
 * neighbour that set its bit meanwhile gets the summary back. */
static void ring_clear_sleeper(struct shmbus__ring *r, uint32_t g) {
  struct shmbus__ring_member *mb = &r->members[g / r->max_subs];
  uint32_t i = g % r->max_subs;
  uint32_t w = i / 64;

  /* seq_cst: ordered with the neighbours' seq_cst bit-then-summary RMWs
   * (shmbus__ring_sub_arm), so the reloads below see a bit whose summary RMW our
   * clear may race with; release for our last cursor store, too. */
  shmbus__fetch_and_seq_cst(&mb->sleepers[w], ~(UINT64_C(1) << (i % 64)));
  if (shmbus__load_seq_cst(&mb->sleepers[w]) != 0)
    return;
  shmbus__fetch_and_seq_cst(&mb->hdr->sleep_summary, ~(UINT64_C(1) << w));
  if (shmbus__load_seq_cst(&mb->sleepers[w]) != 0)
    shmbus__fetch_or_seq_cst(&mb->hdr->sleep_summary, UINT64_C(1) << w);
}

static void ring_release_sub(struct shmbus__ring *r, uint32_t g) {
  struct shmbus__sub_rec *rec = shmbus__ring_sub_rec(r, g);
  uint32_t old;

  if (rec == NULL)
    return;
  old = shmbus__load_relaxed(&rec->state);
  ring_clear_sleeper(r, g);
  /* Release: the next owner's acquire CAS sees our last writes. */
  shmbus__store_release(&rec->state, SHMBUS__SUB_FREE);
  /* seq_cst: tells publishers to rescan, so they drop back to fetch-add
   * once no reliable subscriber is left. */
  if (old == SHMBUS__SUB_RELIABLE)
    shmbus__fetch_add_seq_cst(&r->members[g / r->max_subs].hdr->gen, 1);
}

int shmbus__ring_member_sanitize(struct shmbus__ring *r, uint32_t m) {
  struct shmbus__ring_member *mb;
  uint64_t keep_words;
  uint64_t keep_bits;
  uint32_t w;
  int changed = 0;

  if (m >= r->n_members || r->members[m].hdr == NULL)
    return 0;
  mb = &r->members[m];
  keep_words = r->bitmap_words >= 64 ? UINT64_MAX : (UINT64_C(1) << r->bitmap_words) - 1;
  keep_bits = r->max_subs % 64 == 0 ? UINT64_MAX : (UINT64_C(1) << (r->max_subs % 64)) - 1;
  /* seq_cst, as the owners' own clears (ring_clear_sleeper). */
  if (shmbus__load_relaxed(&mb->hdr->sleep_summary) & ~keep_words) {
    shmbus__fetch_and_seq_cst(&mb->hdr->sleep_summary, keep_words);
    changed = 1;
  }
  w = r->bitmap_words - 1;
  if (shmbus__load_relaxed(&mb->sleepers[w]) & ~keep_bits) {
    shmbus__fetch_and_seq_cst(&mb->sleepers[w], keep_bits);
    changed = 1;
  }
  for (w = r->bitmap_words; w < SHMBUS__MAX_SUBS / 64; w++)
    if (shmbus__load_relaxed(&mb->sleepers[w]) != 0) {
      shmbus__store_relaxed(&mb->sleepers[w], 0);
      changed = 1;
    }
  return changed;
}

int shmbus__ring_sub_restore(struct shmbus__ring *r, uint32_t g, bool reliable, uint32_t pid,
                             uint32_t deadline_ms) {
  struct shmbus__sub_rec *rec = shmbus__ring_sub_rec(r, g);
  uint32_t want = reliable ? SHMBUS__SUB_RELIABLE : SHMBUS__SUB_LOSSY;
  int changed = 0;

  if (rec == NULL)
    return 0;
  if (shmbus__load_relaxed(&rec->pid) != pid) {
    shmbus__store_relaxed(&rec->pid, pid);
    changed = 1;
  }
  if (shmbus__load_relaxed(&rec->deadline_ms) != deadline_ms) {
    shmbus__store_relaxed(&rec->deadline_ms, deadline_ms);
    changed = 1;
  }
  /* Acquire: pairs with whoever stored the state last. */
  if (shmbus__load_acquire(&rec->state) != want) {
    /* Release: a publisher that sees the state sees the fields above. */
    shmbus__store_release(&rec->state, want);
    /* seq_cst: publishers rescan (see ring_release_sub). */
    shmbus__fetch_add_seq_cst(&r->members[g / r->max_subs].hdr->gen, 1);
    changed = 1;
  }
  return changed;
}

int shmbus__ring_sub_adopt(struct shmbus__ring *r, struct shmbus__ring_sub *sub, uint32_t index) {
  struct shmbus__sub_rec *rec = shmbus__ring_sub_rec(r, index);
  uint32_t st;

  if (rec == NULL)
    return -EINVAL;
  /* Acquire: pairs with the attaching process's release store of state. */
  st = shmbus__load_acquire(&rec->state);
  if (st != SHMBUS__SUB_LOSSY && st != SHMBUS__SUB_RELIABLE)
    return SHMBUS_ESTATE;
  memset(sub, 0, sizeof(*sub));
  sub->ring = r;
  sub->rec = rec;
  sub->index = index;
  sub->reliable = st == SHMBUS__SUB_RELIABLE;
  sub->cursor = shmbus__load_acquire(&rec->cursor);
  sub->received = shmbus__load_relaxed(&rec->received);
  sub->lost = shmbus__load_relaxed(&rec->lost);
  sub->demoted = shmbus__load_relaxed(&rec->demoted);
  sub->sleep_ticket = shmbus__load_relaxed(&rec->sleep_ticket);
  return 0;
}

void shmbus__ring_sub_detach(struct shmbus__ring_sub *sub) {
  if (sub->rec == NULL)
    return;
  ring_release_sub(sub->ring, sub->index);
  sub->rec = NULL;
}

void shmbus__ring_evict_sub(struct shmbus__ring *r, uint32_t index) {
  ring_release_sub(r, index);
}

/* The subscriber was lapped: jump ahead from head and count the seqs jumped
 * over as lost. Lands a quarter ring ahead of the oldest slot, so that a
 * publisher running flat out does not lap it again at once. */
static int ring_lapped(struct shmbus__ring_sub *sub) {
  const struct shmbus__ring *r = sub->ring;
  uint64_t c = sub->cursor;
  /* Acquire: pairs with nothing; any head value at least as new as the
   * slot word we saw satisfies the checks below. */
  uint64_t h = shmbus__load_acquire(&r->hdr->head);
  uint64_t target;

  /* A slot showing a seq beyond c implies head > c + slot_count. */
  if (h <= c || h - c <= r->slot_count)
    return SHMBUS_ECORRUPT;
  target = h - r->slot_count + (r->slot_count >> 2);
  if (sub->reliable) {
    /* Only a publisher's deadline (or a join race it gave up) laps a
     * reliable subscriber: count it, for stats and `shmbus stat`. */
    sub->demoted++;
    shmbus__store_relaxed(&sub->rec->demoted, sub->demoted);
  }
  ring_advance(sub, target, 0, target - c);
  return 0;
}

/* Finds the next message at or after the cursor, skipping (and counting)
 * skipped and overwritten seqs. Returns 0 with the slot and its word. */
static int ring_locate(struct shmbus__ring_sub *sub, struct shmbus__slot **slotp, uint64_t *wordp) {
  const struct shmbus__ring *r = sub->ring;
  int rv;

  for (;;) {
    uint64_t c = sub->cursor;
    struct shmbus__slot *slot = ring_slot(r, c);
    /* Acquire: pairs with the publisher's commit store. */
    uint64_t w = shmbus__load_acquire(&slot->word);
    uint64_t ws = SHMBUS__WORD_SEQ(w);
    unsigned st = SHMBUS__WORD_STATE(w);

    if (w == 0 || ws < c)
      return -EAGAIN;
    if (st == SHMBUS__SLOT_EMPTY || (ws & r->mask) != (c & r->mask))
      return SHMBUS_ECORRUPT;
    if (ws == c) {
      if (st == SHMBUS__SLOT_BUSY)
        return -EAGAIN;
      if (st == SHMBUS__SLOT_SKIPPED) {
        ring_advance(sub, c + 1, 0, 1);
        continue;
      }
      *slotp = slot;
      *wordp = w;
      return 0;
    }
    if ((rv = ring_lapped(sub)) < 0)
      return rv;
  }
}

static void ring_fill_info(const struct shmbus__slot *slot, uint64_t seq, uint32_t len,
                           struct shmbus_msg_info *info) {
  info->seq = seq;
  info->len = len;
  info->pub_id = shmbus__load_relaxed(&slot->pub_id);
  info->ts_ns = shmbus__load_relaxed(&slot->ts_ns);
}

/* Re-check after a copy or an in-place read: true if the slot still holds
 * the word seen before (seqlock). */
static bool ring_still(const struct shmbus__slot *slot, uint64_t w) {
  /* Pairs with the release fence in ring_take_slot: if the copy saw any
   * byte of a newer message, the reload below sees its BUSY word. */
  shmbus__fence_acquire();
  /* Acquire too: if the word changed, a later head load must see at least
   * the claim of the seq now in the slot (ring_lapped relies on it). */
  return shmbus__load_acquire(&slot->word) == w;
}

int shmbus__ring_recv(struct shmbus__ring_sub *sub, void *buf, size_t cap,
                      struct shmbus_msg_info *info) {
  struct shmbus__slot *slot;
  uint64_t w;
  uint32_t len;
  int rv;

  if (sub->viewing)
    return SHMBUS_ESTATE;
  if (sub->armed)
    shmbus__ring_sub_disarm(sub);
  for (;;) {
    if ((rv = ring_locate(sub, &slot, &w)) < 0)
      return rv;
    len = shmbus__load_relaxed(&slot->len);
    if (len > sub->ring->slot_capacity) {
      if (ring_still(slot, w))
        return SHMBUS_ECORRUPT;
    } else if (len > cap) {
      if (ring_still(slot, w)) {
        info->len = len;
        return -EMSGSIZE;
      }
    } else {
      struct shmbus_msg_info got;
      /* Header fields before the re-check, like the payload: after it, a
       * lapping publisher may already have rewritten them. */
      ring_fill_info(slot, sub->cursor, len, &got);
      ring_copy_out(buf, ring_payload(slot), len);
      if (ring_still(slot, w)) {
        *info = got;
        ring_advance(sub, sub->cursor + 1, 1, 0);
        return (int)len;
      }
    }
    /* Overwritten while we looked: a lap. */
    if ((rv = ring_lapped(sub)) < 0)
      return rv;
  }
}

int shmbus__ring_view_begin(struct shmbus__ring_sub *sub, struct shmbus__ring_view *view) {
  struct shmbus__slot *slot;
  uint64_t w;
  uint32_t len;
  int rv;

  if (sub->viewing)
    return SHMBUS_ESTATE;
  if (sub->armed)
    shmbus__ring_sub_disarm(sub);
  for (;;) {
    if ((rv = ring_locate(sub, &slot, &w)) < 0)
      return rv;
    len = shmbus__load_relaxed(&slot->len);
    if (len <= sub->ring->slot_capacity)
      break;
    if (ring_still(slot, w))
      return SHMBUS_ECORRUPT;
    if ((rv = ring_lapped(sub)) < 0)
      return rv;
  }
  view->data = ring_payload(slot);
  ring_fill_info(slot, sub->cursor, len, &view->info);
  sub->view_word = w;
  sub->viewing = true;
  return 0;
}

int shmbus__ring_view_end(struct shmbus__ring_sub *sub, const struct shmbus__ring_view *view) {
  struct shmbus__slot *slot;
  int rv;

  if (!sub->viewing || view->info.seq != sub->cursor)
    return SHMBUS_ESTATE;
  sub->viewing = false;
  slot = ring_slot(sub->ring, sub->cursor);
  if (ring_still(slot, sub->view_word)) {
    ring_advance(sub, sub->cursor + 1, 1, 0);
    return 0;
  }
  if ((rv = ring_lapped(sub)) < 0)
    return rv;
  return SHMBUS_EOVERRUN;
}

/* True if the word at the cursor holds something recv would act on. */
bool shmbus__ring_view_intact(const struct shmbus__ring_sub *sub) {
  /* Acquire fence and reload, as view_end: a byte of a newer message seen
   * by the reader implies the BUSY word here. */
  return sub->viewing && ring_still(ring_slot(sub->ring, sub->cursor), sub->view_word);
}

void shmbus__ring_view_end_confirmed(struct shmbus__ring_sub *sub) {
  if (!sub->viewing)
    return;
  sub->viewing = false;
  ring_advance(sub, sub->cursor + 1, 1, 0);
}

static bool ring_word_ready(const struct shmbus__ring_sub *sub, uint64_t w) {
  uint64_t ws = SHMBUS__WORD_SEQ(w);
  if (w == 0 || ws < sub->cursor)
    return false;
  return !(ws == sub->cursor && SHMBUS__WORD_STATE(w) == SHMBUS__SLOT_BUSY);
}

bool shmbus__ring_sub_ready(const struct shmbus__ring_sub *sub) {
  /* Acquire: pairs with the publisher's commit store. */
  return ring_word_ready(sub, shmbus__load_acquire(&ring_slot(sub->ring, sub->cursor)->word));
}

bool shmbus__ring_sub_arm(struct shmbus__ring_sub *sub) {
  return shmbus__ring_sub_arm_after(sub, 1);
}

bool shmbus__ring_sub_arm_after(struct shmbus__ring_sub *sub, uint32_t after) {
  struct shmbus__ring *r = sub->ring;
  struct shmbus__ring_member *mb = &r->members[sub->index / r->max_subs];
  uint32_t i = sub->index % r->max_subs;

  /* The threshold of this sleep, before its ticket and bit: the seq_cst
   * RMWs below release both, so a publisher that sees the bit sees the
   * threshold of this ticket (or of a later one). */
  shmbus__store_relaxed(&sub->rec->wake_seq, after > 1 ? sub->cursor + after - 1 : 0);
  /* A new ticket for this sleep, before the bit: the seq_cst RMW below
   * releases it, so a publisher that sees the bit sees the ticket. */
  shmbus__store_relaxed(&sub->rec->sleep_ticket, ++sub->sleep_ticket);
  sub->armed = true;
  /* seq_cst RMWs, then a seq_cst load: pairs with the publisher's seq_cst
   * commit store and summary load (see the top). Bit first, summary
   * second, so a publisher that sees the summary bit finds our bit. */
  shmbus__fetch_or_seq_cst(&mb->sleepers[i / 64], UINT64_C(1) << (i % 64));
  shmbus__fetch_or_seq_cst(&mb->hdr->sleep_summary, UINT64_C(1) << (i / 64));
  /* After the bits, before the reload: a publisher that reads the new
   * epoch finds our bit and ticket; one whose commit we miss below reads
   * it (its epoch load follows its commit in the total order). */
  shmbus__fetch_add_seq_cst(&mb->hdr->sleep_epoch, 1);
  shmbus__store_relaxed(&sub->rec->sleeps, shmbus__load_relaxed(&sub->rec->sleeps) + 1);
  return !ring_word_ready(sub, shmbus__load_seq_cst(&ring_slot(r, sub->cursor)->word));
}

void shmbus__ring_sub_disarm(struct shmbus__ring_sub *sub) {
  if (!sub->armed || sub->rec == NULL)
    return;
  sub->armed = false;
  ring_clear_sleeper(sub->ring, sub->index);
}

/* The one scan behind every wake-up: for each bit set in words[0..nwords)
 * (as the summary says), bounds-checked against `limit` records, calls fn
 * with the index (plus `base`) and the owner's ticket. */
static void ring_scan(const shmbus__a64 *summary, const shmbus__a64 *words, uint32_t nwords,
                      uint32_t limit, uint32_t base, const shmbus__a64 *tickets, size_t stride,
                      shmbus__ring_scan_fn fn, void *ctx) {
  /* Acquire: pairs with the owners' seq_cst bit-then-summary RMWs. */
  uint64_t sum = shmbus__load_acquire(summary);

  while (sum != 0) {
    uint32_t w = (uint32_t)__builtin_ctzll(sum);
    uint64_t bits;
    sum &= sum - 1;
    if (w >= nwords)
      break; /* forged summary bits beyond the bitmap */
    /* Acquire: a bit seen set has its owner's ticket visible. */
    bits = shmbus__load_acquire(&words[w]);
    while (bits != 0) {
      uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(bits);
      const shmbus__a64 *t;
      bits &= bits - 1;
      if (i >= limit)
        break; /* a forged bit beyond the records: ignored */
      t = (const shmbus__a64 *)((const unsigned char *)tickets + (size_t)i * stride);
      fn(ctx, base + i, shmbus__load_acquire(t));
    }
  }
}

void shmbus__ring_scan_sleepers(const struct shmbus__ring *r, uint32_t m, shmbus__ring_scan_fn fn,
                                void *ctx) {
  const struct shmbus__ring_member *mb;

  if (m >= r->n_members || r->members[m].hdr == NULL)
    return;
  mb = &r->members[m];
  ring_scan(&mb->hdr->sleep_summary, mb->sleepers, r->bitmap_words, r->max_subs, m * r->max_subs,
            &mb->subs[0].sleep_ticket, sizeof(struct shmbus__sub_rec), fn, ctx);
}

void shmbus__ring_scan_pub_waiters(const struct shmbus__ring *r, shmbus__ring_scan_fn fn,
                                   void *ctx) {
  ring_scan(&r->hdr->pub_wait_summary, r->hdr->pub_waiters, (r->max_pubs + 63) / 64, r->max_pubs, 0,
            &r->pubs[0].wait_ticket, sizeof(struct shmbus__pub_rec), fn, ctx);
}

bool shmbus__ring_any_sleeper(const struct shmbus__ring *r) {
  uint64_t any = 0;
  uint32_t k;

  if (r->n_mapped == 1) /* the common case: no loop */
    return shmbus__load_seq_cst(&r->mapped[0]->sleep_summary) != 0;
  for (k = 0; k < r->n_mapped; k++)
    /* seq_cst: after the seq_cst commit store (sleep protocol). */
    any |= shmbus__load_seq_cst(&r->mapped[k]->sleep_summary);
  return any != 0;
}

uint64_t shmbus__ring_sleep_epoch(const struct shmbus__ring *r, uint32_t m) {
  if (m >= r->n_members || r->members[m].hdr == NULL)
    return 0;
  /* seq_cst: after the seq_cst commit store and summary load. */
  return shmbus__load_seq_cst(&r->members[m].hdr->sleep_epoch);
}

uint64_t shmbus__ring_sub_wake_seq(const struct shmbus__ring *r, uint32_t g) {
  const struct shmbus__sub_rec *rec = shmbus__ring_sub_rec(r, g);

  /* Relaxed: read after the acquire loads of the sleeper's bit and ticket,
   * which the sleeper's seq_cst RMWs released after this store. */
  return rec != NULL ? shmbus__load_relaxed(&rec->wake_seq) : 0;
}

bool shmbus__ring_sub_sleeping(const struct shmbus__ring *r, uint32_t g) {
  uint32_t m = g / r->max_subs;
  uint32_t i = g % r->max_subs;

  if (m >= r->n_members || r->members[m].hdr == NULL)
    return false;
  /* Acquire: pairs with the subscriber's seq_cst RMW of its bit. */
  return (shmbus__load_acquire(&r->members[m].sleepers[i / 64]) >> (i % 64)) & 1u;
}

bool shmbus__ring_pub_waiting(const struct shmbus__ring *r, uint32_t i) {
  if (i >= r->max_pubs)
    return false;
  /* Acquire: pairs with the publisher's seq_cst RMW of its bit. */
  return (shmbus__load_acquire(&r->hdr->pub_waiters[i / 64]) >> (i % 64)) & 1u;
}

bool shmbus__ring_peers_changed(const struct shmbus__ring *r, uint64_t *seen) {
  /* seq_cst (at least acquire): pairs with the daemon's seq_cst increment
   * after it sent the peer messages, so reading the socket afterwards
   * finds them. seq_cst because a publisher also loads it after its
   * seq_cst commit store (pub.c): a subscriber that went to sleep after
   * the daemon's increment (it had its `opened` reply, sent after it) and
   * whose reload missed the commit set its bit before the commit in the
   * total order, so this load, after the commit, sees the increment
   * (docs/design.md, "Who knows whose eventfd"). On x86 and arm64 it
   * costs what an acquire load costs. */
  uint64_t e;

  if (r->ctrl == NULL)
    return false;
  e = shmbus__load_seq_cst(&r->ctrl->peer_epoch);
  if (e == *seen)
    return false;
  *seen = e;
  return true;
}

uint64_t shmbus__ring_peer_epoch(const struct shmbus__ring *r) {
  /* seq_cst: as in shmbus__ring_peers_changed. */
  return r->ctrl != NULL ? shmbus__load_seq_cst(&r->ctrl->peer_epoch) : 0;
}

void shmbus__ring_bump_peer_epoch(struct shmbus__ring *r, uint32_t m) {
  /* seq_cst (a release at least): orders the peer messages the daemon
   * queued before the new epoch, and pairs with the seq_cst loads of
   * shmbus__ring_peers_changed; seq_cst so that it also has its place in
   * the total order of the sleep protocol (a publisher's load after its
   * commit, a sleeper's bit set after its `opened` reply). */
  if (m < r->n_members && r->members[m].hdr != NULL)
    shmbus__fetch_add_seq_cst(&r->members[m].hdr->peer_epoch, 1);
}

/* ---- what records say ------------------------------------------------ */

uint32_t shmbus__ring_pub_owner(const struct shmbus__ring *r, uint32_t i, uint32_t *pid,
                                uint32_t *pub_id) {
  uint32_t st;

  if (i >= r->max_pubs)
    return SHMBUS__PUB_FREE;
  /* Acquire: pairs with the attaching process's CAS of state. */
  st = shmbus__load_acquire(&r->pubs[i].state);
  if (pid != NULL)
    *pid = shmbus__load_relaxed(&r->pubs[i].pid);
  if (pub_id != NULL)
    *pub_id = shmbus__load_relaxed(&r->pubs[i].pub_id);
  return st;
}

uint32_t shmbus__ring_sub_owner(const struct shmbus__ring *r, uint32_t g, uint32_t *pid) {
  const struct shmbus__sub_rec *rec = shmbus__ring_sub_rec(r, g);
  uint32_t st;

  if (rec == NULL) {
    if (pid != NULL)
      *pid = 0;
    return SHMBUS__SUB_FREE;
  }
  /* Acquire: pairs with the release store of whoever stored it last. */
  st = shmbus__load_acquire(&rec->state);
  if (pid != NULL)
    *pid = shmbus__load_relaxed(&rec->pid);
  return st;
}

uint32_t shmbus__ring_sub_deadline(const struct shmbus__ring *r, uint32_t g) {
  const struct shmbus__sub_rec *rec = shmbus__ring_sub_rec(r, g);

  return rec != NULL ? shmbus__load_relaxed(&rec->deadline_ms) : 0;
}

void shmbus__ring_sub_set_deadline(struct shmbus__ring *r, uint32_t g, uint32_t ms) {
  struct shmbus__sub_rec *rec = shmbus__ring_sub_rec(r, g);

  if (rec != NULL)
    shmbus__store_relaxed(&rec->deadline_ms, ms);
}

uint64_t shmbus__ring_head(const struct shmbus__ring *r) {
  /* Acquire: pairs with nothing in particular; head only orders claims. */
  return shmbus__load_acquire(&r->hdr->head);
}

uint64_t shmbus__ring_pub_published(const struct shmbus__ring *r, uint32_t i) {
  return i < r->max_pubs ? shmbus__load_relaxed(&r->pubs[i].published) : 0;
}

void shmbus__ring_sub_counters(const struct shmbus__ring *r, uint32_t g,
                               struct shmbus__sub_counters *out) {
  const struct shmbus__sub_rec *rec = shmbus__ring_sub_rec(r, g);

  if (rec == NULL) {
    out->cursor = out->received = out->lost = out->demoted = 0;
    return;
  }
  out->cursor = shmbus__load_relaxed(&rec->cursor);
  out->received = shmbus__load_relaxed(&rec->received);
  out->lost = shmbus__load_relaxed(&rec->lost);
  out->demoted = shmbus__load_relaxed(&rec->demoted);
}

/* ---- repair ---------------------------------------------------------- */

/* Turns seq s into SKIPPED unless it was committed or overtaken. Returns 1
 * if it wrote, 0 if nothing was needed, -EAGAIN if the slot is BUSY with an
 * older seq (a live publisher still writes the previous lap). */
static int ring_repair_seq(struct shmbus__ring *r, uint64_t s) {
  struct shmbus__slot *slot = ring_slot(r, s);
  /* Acquire: pairs with commit stores; CAS below as in ring_take_slot. */
  uint64_t w = shmbus__load_acquire(&slot->word);

  for (;;) {
    uint64_t ws = SHMBUS__WORD_SEQ(w);
    bool same_lane = (ws & r->mask) == (s & r->mask);
    unsigned st = SHMBUS__WORD_STATE(w);

    if (w != 0 && same_lane && ws > s)
      return 0;
    if (w != 0 && same_lane && ws == s && st != SHMBUS__SLOT_BUSY)
      return 0;
    if (w != 0 && same_lane && ws < s && st == SHMBUS__SLOT_BUSY)
      return -EAGAIN;
    if (shmbus__cas_acq_rel(&slot->word, &w, SHMBUS__WORD(s, SHMBUS__SLOT_SKIPPED)))
      return 1;
  }
}

static bool ring_is_dead(const uint32_t *dead, size_t n, uint32_t i) {
  size_t k;
  for (k = 0; k < n; k++)
    if (dead[k] == i)
      return true;
  return false;
}

/* Whether seq s is in the sorted set live[0..n) (binary search). */
static bool ring_live_holds(const uint64_t *live, uint32_t n, uint64_t s) {
  uint32_t lo = 0;
  uint32_t hi = n;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (live[mid] == s)
      return true;
    if (live[mid] < s)
      lo = mid + 1;
    else
      hi = mid;
  }
  return false;
}

static void ring_sort_u64(uint64_t *v, uint32_t n) {
  /* Insertion sort of at most max_pubs values, once per repair: O(n^2)
   * with n <= 1024 is a million compares at worst, far below one scan of
   * a large lap, and needs no allocation. */
  for (uint32_t i = 1; i < n; i++) {
    uint64_t x = v[i];
    uint32_t j = i;
    while (j > 0 && v[j - 1] > x) {
      v[j] = v[j - 1];
      j--;
    }
    v[j] = x;
  }
}

int shmbus__ring_repair_begin(struct shmbus__ring *r, struct shmbus__ring_repair_job *job,
                              const uint32_t *dead, size_t n_dead) {
  size_t k;

  if (n_dead > SHMBUS__MAX_PUBS)
    return -EINVAL;
  for (k = 0; k < n_dead; k++)
    if (dead[k] >= r->max_pubs)
      return -EINVAL;
  job->next = job->end = job->start = 0;
  job->repaired = 0;
  job->phase = 0;
  job->n_live = 0;
  job->n_dead = (uint32_t)n_dead;
  if (n_dead != 0)
    memcpy(job->dead, dead, n_dead * sizeof(*dead));
  return 0;
}

/* Phase 0: the seqs the dead publishers said they held. A dead publisher
 * may wait on a slot that another dead one holds BUSY (one lap older):
 * repairing the older first frees the younger. So go round while a pass
 * makes progress, and answer "again" only for a slot that stays BUSY, i.e.
 * that a live publisher holds. At most n_dead passes of n_dead records.
 * Returns 1 when a dead publisher died while claiming (holes to scan), 0
 * when not, -EAGAIN. */
static int ring_repair_seqs(struct shmbus__ring *r, struct shmbus__ring_repair_job *job) {
  bool holes = false;
  uint32_t k;
  int rv;

  for (;;) {
    size_t resolved = 0;
    size_t pending = 0;
    holes = false;
    for (k = 0; k < job->n_dead; k++) {
      struct shmbus__pub_rec *rec = &r->pubs[job->dead[k]];
      uint64_t f = shmbus__load_acquire(&rec->inflight);
      if (f == SHMBUS__INFLIGHT_IDLE)
        continue;
      if (f == SHMBUS__INFLIGHT_CLAIMING) {
        holes = true;
        continue;
      }
      rv = ring_repair_seq(r, f);
      if (rv == -EAGAIN) {
        pending++;
        continue;
      }
      job->repaired += (uint64_t)rv;
      resolved++;
      shmbus__store_relaxed(&rec->inflight, SHMBUS__INFLIGHT_IDLE);
    }
    if (pending == 0)
      return holes ? 1 : 0;
    if (resolved == 0)
      return -EAGAIN;
  }
}

/* Starts the hole scan. A dead publisher died after announcing CLAIMING
 * but maybe before saying which seq it got: every hole below head that no
 * live publisher holds is then abandoned. The live publishers' seqs are
 * read once here, after head, so the scan costs O(slots + max_pubs)
 * rather than O(slots * max_pubs): a publisher claiming after the head
 * load below gets a seq at or above it, outside the scan. */
static int ring_repair_scan_begin(struct shmbus__ring *r, struct shmbus__ring_repair_job *job) {
  /* seq_cst: a publisher whose claim is included in h stored CLAIMING
   * before it (released by its seq_cst RMW), so the loads below see
   * CLAIMING, its seq, or IDLE after its commit. */
  uint64_t h = shmbus__load_seq_cst(&r->hdr->head);
  uint32_t n = 0;
  uint32_t i;

  for (i = 0; i < r->max_pubs; i++) {
    uint64_t f;
    /* Acquire: pairs with the attaching process's release store of state. */
    if (ring_is_dead(job->dead, job->n_dead, i) ||
        shmbus__load_acquire(&r->pubs[i].state) != SHMBUS__PUB_ACTIVE)
      continue;
    /* seq_cst: see the head load above. */
    f = shmbus__load_seq_cst(&r->pubs[i].inflight);
    if (f == SHMBUS__INFLIGHT_CLAIMING)
      return -EAGAIN; /* its seq is not known yet: ask again */
    if (f != SHMBUS__INFLIGHT_IDLE)
      job->live[n++] = f;
  }
  ring_sort_u64(job->live, n);
  job->n_live = n;
  job->start = job->next = h > r->slot_count ? h - r->slot_count : 0;
  job->end = h;
  job->phase = 1;
  return 0;
}

int shmbus__ring_repair_step(struct shmbus__ring *r, struct shmbus__ring_repair_job *job,
                             uint64_t budget) {
  uint64_t s;
  uint32_t k;
  int rv;

  if (budget == 0)
    budget = 1;
  if (job->phase == 0) {
    if ((rv = ring_repair_seqs(r, job)) < 0)
      return rv;
    if (rv == 0)
      job->phase = 2;
    else if ((rv = ring_repair_scan_begin(r, job)) < 0)
      return rv;
  }
  if (job->phase == 1) {
    for (s = job->next; s < job->end && budget > 0; s++, budget--) {
      /* Acquire: pairs with commit stores (as in ring_repair_seq). */
      uint64_t w = shmbus__load_acquire(&ring_slot(r, s)->word);
      uint64_t ws = SHMBUS__WORD_SEQ(w);
      if (w != 0 && (ws & r->mask) == (s & r->mask) && ws >= s)
        continue;
      if (ring_live_holds(job->live, job->n_live, s))
        continue;
      if ((rv = ring_repair_seq(r, s)) < 0) {
        job->next = s; /* resume here */
        return rv;
      }
      job->repaired += (uint64_t)rv;
    }
    job->next = s;
    if (s < job->end)
      return -EINPROGRESS;
    job->phase = 2;
  }
  for (k = 0; k < job->n_dead; k++) {
    struct shmbus__pub_rec *rec = &r->pubs[job->dead[k]];
    shmbus__store_relaxed(&rec->inflight, SHMBUS__INFLIGHT_IDLE);
    /* Release: the next owner's acquire CAS sees the repair. */
    shmbus__store_release(&rec->state, SHMBUS__PUB_FREE);
  }
  job->n_dead = 0; /* a second call after completion frees nothing again */
  return 0;
}

int shmbus__ring_repair(struct shmbus__ring *r, const uint32_t *dead, size_t n_dead) {
  /* The one-shot form: a whole job without a budget. The job is large for
   * a stack (16 KiB) but this is not called on deep stacks. */
  struct shmbus__ring_repair_job job;
  int rv;

  if ((rv = shmbus__ring_repair_begin(r, &job, dead, n_dead)) < 0)
    return rv;
  rv = shmbus__ring_repair_step(r, &job, UINT64_MAX);
  if (rv < 0)
    return rv;
  return job.repaired > (uint64_t)INT32_MAX ? INT32_MAX : (int)job.repaired;
}
