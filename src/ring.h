/* ring: the sequenced-slot ring of one topic. Pure memory: no syscalls, no
 * allocation; it works on memory the region module mapped and validated, so
 * it can be unit-tested on plain buffers. The protocol is described at the
 * top of ring.c and in docs/design.md.
 *
 * Thread-safety: a struct shmbus__ring (the view) is read-only after
 * shmbus__ring_view_init and may be shared by threads. A publisher or a
 * subscriber handle is used by one thread at a time; any number of handles,
 * in any threads or processes, may work on the same ring at once.
 * Across fork(): handles are plain memory; a child must not keep using a
 * parent's handle (it would share its records), it attaches its own. */
#ifndef SHMBUS_RING_H
#define SHMBUS_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"
#include "shmbus/bus.h" /* struct shmbus_msg_info */

/* One member file as a view sees it (layout.h). */
struct shmbus__ring_member {
  struct shmbus__member_hdr *hdr; /* NULL: not mapped in this view */
  shmbus__a64 *sleepers;
  struct shmbus__sub_rec *subs;
};

/* A process-local view of one topic's ring: the data file and the member
 * files this process maps. Pointers into the mappings; the view does not
 * own them. Every parameter here came from a trusted source (the daemon's
 * reply, or the creator's own computation), never from shared memory. */
struct shmbus__ring {
  struct shmbus__data_hdr *hdr; /* read-only mapping for subscribers */
  struct shmbus__pub_rec *pubs;
  unsigned char *slots;
  /* This process's own member file (its uid's): the epoch it watches, and
   * where its subscribers keep their records. */
  struct shmbus__member_hdr *ctrl;
  shmbus__a64 *sleepers;
  struct shmbus__sub_rec *subs;
  uint32_t own;       /* m of the own member file */
  uint32_t n_members; /* members[] may be mapped below this */
  struct shmbus__ring_member members[SHMBUS__MAX_MEMBERS];
  /* The mapped member headers, densely, in the order they were added
   * (append-only): what a publisher loads on each publish. */
  uint32_t n_mapped;
  struct shmbus__member_hdr *mapped[SHMBUS__MAX_MEMBERS];
  uint32_t view_gen; /* incremented whenever mapped[] changes (process-local) */
  uint64_t mask;     /* slot_count - 1 */
  uint32_t slot_count;
  uint32_t slot_capacity;
  uint32_t slot_stride;
  uint32_t max_subs;
  uint32_t max_pubs;
  uint32_t bitmap_words;
  uint64_t member_size;
  struct shmbus__layout layout; /* what the parameters give (view_build) */
  /* Called while a publisher waits for a slot that another publisher holds
   * or for a reliable subscriber after a join race; NULL means spin with a
   * CPU pause. The region module installs one that yields the CPU. */
  void (*backoff)(unsigned spins);
};

/* Reliable records a publisher stopped waiting for (its deadline ran out),
 * at most this many at once. */
#define SHMBUS__RING_MAX_DEMOTED 8u

struct shmbus__ring_pub {
  struct shmbus__ring *ring;
  struct shmbus__pub_rec *rec;
  uint32_t index;                    /* record index */
  uint32_t pub_id;                   /* stamped into slots */
  uint64_t gen[SHMBUS__MAX_MEMBERS]; /* gen of ring->mapped[k] when min_cursor was computed */
  uint32_t view_gen;                 /* ring->view_gen then */
  uint64_t min_cursor;               /* lower bound of reliable cursors; UINT64_MAX: none */
  uint32_t blocker;                  /* global index of the record min_cursor came from */
  uint64_t wait_ticket;              /* mirrors rec->wait_ticket */
  bool waiting;                      /* our pub_waiters bit is set */
  /* Reliable records this publisher no longer waits for (deadline): their
   * global index and the cursor they had then. A record leaves the list
   * once its cursor moves (it read again) or it stops being reliable. */
  uint32_t n_demoted;
  struct {
    uint32_t g;
    uint64_t cursor;
  } demoted[SHMBUS__RING_MAX_DEMOTED];
  uint64_t demoted_min;         /* slowest demoted cursor at the last rescan; UINT64_MAX: none */
  uint64_t deadline_overwrites; /* claims that overwrote what a demoted record had not read */
  uint64_t loan_seq;            /* seq held by an open loan */
  bool loaned;
  uint64_t published;
  uint64_t overtaken;
  /* The most backoff rounds a claim waits for a reliable subscriber that
   * joined in the same instant (see shmbus__ring_loan). After that the
   * message overwrites the slot that subscriber has not read yet (it counts
   * the message lost) rather than wait any longer: a subscriber that never
   * reads, or forges its record, cannot hang the publisher. Attach and
   * adopt set SHMBUS__RING_RACE_WAIT; the daemon's own publisher uses 0. */
  uint32_t race_wait_max;
  uint64_t race_gave_up; /* how many times the wait above ran out */
};

/* Default bound of a publisher's wait for a reliable joiner: 2^20 backoff
 * rounds (64 pauses, then sched_yield), about a second on an idle CPU. */
#define SHMBUS__RING_RACE_WAIT (1u << 20)

struct shmbus__ring_sub {
  struct shmbus__ring *ring;
  struct shmbus__sub_rec *rec;
  uint32_t index; /* global index: m * max_subs + record */
  bool reliable;
  uint64_t cursor; /* next seq to read; mirrors rec->cursor */
  uint64_t received;
  uint64_t lost;
  uint64_t view_word; /* commit word seen by an open in-place read */
  bool viewing;
  bool armed;            /* our sleeper bit is set */
  uint64_t sleep_ticket; /* mirrors rec->sleep_ticket */
  uint64_t demoted;      /* times this reliable subscriber was lapped */
  /* Set by a reliable subscriber's reads when a publisher waits for room:
   * the caller wakes them (shmbus__ring_scan_pub_waiters) and clears it. */
  bool pubs_waiting;
};

/* An in-place read. `data` points into the read-only slot area and is only
 * meaningful if shmbus__ring_view_end() then returns 0. */
struct shmbus__ring_view {
  const void *data;
  struct shmbus_msg_info info;
};

/* Builds a view of the data file from trusted parameters (the daemon's
 * reply, or the creator's own): never reads a header. Returns 0, or
 * SHMBUS_EBADREGION when the mapping is not exactly as large as the
 * parameters say, SHMBUS_EPARAM for bad parameters. */
int shmbus__ring_view_build(struct shmbus__ring *ring, const struct shmbus__params *p,
                            uint64_t page, void *data, uint64_t data_len);
/* Adds member file m (mapping of `len` bytes) to a view; `own` makes it
 * the view's own member file. Never reads its header. Returns 0, -EINVAL
 * (m out of range), SHMBUS_EBADREGION (size not as the layout says). */
int shmbus__ring_view_add_member(struct shmbus__ring *ring, uint32_t m, void *member, uint64_t len,
                                 bool own);

/* Removes member file m from a view (not the own one): its records are no
 * longer looked at. -EINVAL for the own file or one not mapped. Any
 * publisher handle on this view must rescan (shmbus__ring_pub_rescan). */
int shmbus__ring_view_remove_member(struct shmbus__ring *ring, uint32_t m);

/* For adoption after a daemon restart (and tests), where nothing but the
 * memory says what it is: validates the data header and one member header
 * against each other and against the sizes mapped, then builds the view
 * as above with that member as its own. Everything is read as untrusted
 * input: returns SHMBUS_EBADREGION or SHMBUS_EVERSION, never reads out of
 * bounds. */
int shmbus__ring_view_init(struct shmbus__ring *ring, void *data, uint64_t data_len, void *ctrl,
                           uint64_t ctrl_len, uint64_t page);
/* Validates a member header found in memory against a view (nonce, sizes:
 * shmbus__layout_check_member) and returns its m and uid.
 * SHMBUS_EBADREGION / SHMBUS_EVERSION. */
int shmbus__ring_member_check(const struct shmbus__ring *ring, const void *member, uint64_t len,
                              uint32_t *m, uint32_t *uid);

/* Publishers. attach takes a free publisher record (SHMBUS_ENOSLOT if none).
 * `pub_id` is stamped into every message; `pid` is informational. */
int shmbus__ring_pub_attach(struct shmbus__ring *ring, struct shmbus__ring_pub *pub,
                            uint32_t pub_id, uint32_t pid);
void shmbus__ring_pub_detach(struct shmbus__ring_pub *pub);

/* Builds a handle for publisher record `index`, which another process (the
 * daemon) attached on our behalf. Returns 0, -EINVAL for an index out of
 * range, SHMBUS_ESTATE when the record is not in use. */
int shmbus__ring_pub_adopt(struct shmbus__ring *ring, struct shmbus__ring_pub *pub, uint32_t index);

/* Waiting for room, publisher side (arming, as shmbus_sub_arm does for a
 * subscriber): takes a new wait ticket, sets the
 * publisher's waiter bit, then re-checks. Returns true if the ring is still
 * full behind a reliable subscriber (block on the publisher's wake-up fd),
 * false if there is room now. A reliable subscriber that reads signals the
 * new ticket once; the publisher clears its own bit on its next claim. */
bool shmbus__ring_pub_arm(struct shmbus__ring_pub *pub);

/* A view gained member files: forget cached cursors, rescan. */
void shmbus__ring_pub_rescan(struct shmbus__ring_pub *pub);

/* Deadline (publisher side; pure memory, the caller keeps the clock): the
 * record that holds the publisher back now (global index), its cursor and
 * the deadline it asks for (ms, 0: none). Returns false when no reliable
 * record holds it back. */
bool shmbus__ring_pub_blocker(const struct shmbus__ring_pub *pub, uint32_t *g, uint64_t *cursor,
                              uint32_t *deadline_ms);
/* Stops waiting for record g (its deadline ran out): this publisher
 * overwrites what it has not read until its cursor moves. Returns 0, or
 * SHMBUS_ENOSLOT when too many records are demoted already. */
int shmbus__ring_pub_demote(struct shmbus__ring_pub *pub, uint32_t g);

/* Zero copy: claims the next sequence number and the slot for it, and
 * returns in *payload a pointer to slot_capacity writable bytes. Returns 0,
 * SHMBUS_ETOOBIG when len > capacity, SHMBUS_EFULL when a reliable
 * subscriber has not read the slot yet (nothing was claimed),
 * SHMBUS_ESTATE when a loan is already open, or SHMBUS_ECORRUPT when the
 * slot holds a sequence number beyond head (shared memory was corrupted;
 * the claimed seq is left unwritten, and readers report the same word as
 * corrupt). Never waits for subscribers, except when a reliable one joins
 * (with history reaching back a whole ring) in the instant of the claim:
 * then it waits for it to read, at most pub->race_wait_max backoff rounds. */
int shmbus__ring_loan(struct shmbus__ring_pub *pub, size_t len, void **payload);
/* Commits the open loan with `len` bytes (<= capacity) and timestamp. Returns
 * 1 when some subscriber may be asleep (call shmbus__ring_scan_sleepers and
 * wake them), 0 when nobody sleeps, or SHMBUS_ETOOBIG/SHMBUS_ESTATE. */
int shmbus__ring_commit(struct shmbus__ring_pub *pub, size_t len, uint64_t ts_ns);
/* Gives up the open loan: readers skip its seq and count it lost. */
int shmbus__ring_cancel(struct shmbus__ring_pub *pub);
/* Copy: loan + memcpy + commit. Same results as loan and commit. */
int shmbus__ring_publish(struct shmbus__ring_pub *pub, const void *buf, size_t len, uint64_t ts_ns);

/* Subscribers. attach takes a free subscriber record (of the view's own
 * member file; attach_member: of member file m); the subscriber starts
 * `history` messages back (clamped to the ring and to what was published).
 * A reliable subscriber holds publishers back from overwriting what it has
 * not read; a lossy one never does. */
int shmbus__ring_sub_attach(struct shmbus__ring *ring, struct shmbus__ring_sub *sub, bool reliable,
                            uint32_t history, uint32_t pid);
int shmbus__ring_sub_attach_member(struct shmbus__ring *ring, uint32_t m,
                                   struct shmbus__ring_sub *sub, bool reliable, uint32_t history,
                                   uint32_t pid);
void shmbus__ring_sub_detach(struct shmbus__ring_sub *sub);

/* Builds a handle for subscriber record `index` (global), attached by the daemon on
 * our behalf (cursor, counters and reliability come from the record).
 * Returns 0, -EINVAL, or SHMBUS_ESTATE when the record is not in use. */
int shmbus__ring_sub_adopt(struct shmbus__ring *ring, struct shmbus__ring_sub *sub, uint32_t index);

/* Copies the next message into buf. Returns its length, -EAGAIN when there
 * is none yet, -EMSGSIZE when cap is too small (info->len says how much is
 * needed; the message stays), or SHMBUS_ECORRUPT. Messages it finds
 * overwritten or skipped are added to sub->lost and skipped. */
int shmbus__ring_recv(struct shmbus__ring_sub *sub, void *buf, size_t cap,
                      struct shmbus_msg_info *info);

/* In-place read: fills *view with a pointer into the slot. Returns 0,
 * -EAGAIN, or SHMBUS_ECORRUPT. The caller must call shmbus__ring_view_end
 * before the next read and trust what it read only if that returns 0. */
int shmbus__ring_view_begin(struct shmbus__ring_sub *sub, struct shmbus__ring_view *view);
/* Ends an in-place read. Returns 0 if the message was intact while it was
 * read (it counts as received), SHMBUS_EOVERRUN if a publisher overwrote it
 * meanwhile (it counts as lost; discard what was read). */
__attribute__((warn_unused_result)) int shmbus__ring_view_end(struct shmbus__ring_sub *sub,
                                                              const struct shmbus__ring_view *view);

/* During an in-place read: whether the message is still intact (nothing
 * overwrote its slot since view_begin). Loads only; view_end decides and
 * counts. */
bool shmbus__ring_view_intact(const struct shmbus__ring_sub *sub);
/* Ends an in-place read that shmbus__ring_view_intact confirmed: it counts
 * as received whatever happened to the slot since (what was read before
 * the confirmation was whole). A newer message now in the slot is found
 * by the next read, which counts what it jumps over as lost. */
void shmbus__ring_view_end_confirmed(struct shmbus__ring_sub *sub);

/* Returns true if a message (or a skip) is ready at the cursor. */
bool shmbus__ring_sub_ready(const struct shmbus__ring_sub *sub);

/* Sleep protocol, subscriber side (the internal half of shmbus_sub_arm):
 * takes a new sleep ticket, sets the
 * subscriber's sleeper bit, then re-checks the ring. Returns true if the
 * caller may block on its wake-up fd; false if a message arrived meanwhile
 * (read it instead). The bit stays set until the subscriber's next read
 * (or shmbus__ring_sub_disarm) clears it. */
bool shmbus__ring_sub_arm(struct shmbus__ring_sub *sub);
/* As shmbus__ring_sub_arm, with a wake threshold: publishers signal this
 * sleep only once they commit seq cursor + after - 1 or later (after
 * messages wait); 0 or 1: the next commit. The caller must bound the sleep
 * with a timer of its own when after > 1 (fewer messages may come, and a
 * publisher that committed a later seq before the bit was set saw no
 * sleeper). */
bool shmbus__ring_sub_arm_after(struct shmbus__ring_sub *sub, uint32_t after);
/* Clears the subscriber's own sleeper bit (and its summary bit when the
 * word is empty). Reads call it; cheap when the bit is not set. */
void shmbus__ring_sub_disarm(struct shmbus__ring_sub *sub);

/* Wake-up scans (one routine for both directions). For each set bit of a
 * bitmap, bounds-checked against the record count (a forged bit beyond it
 * is ignored), calls fn with the global index and the owner's current
 * ticket: sleepers of member file m (sleep tickets), or publishers waiting
 * for room (wait tickets). The caller signals each (index, ticket) at most
 * once. Loads only; nothing is written. */
typedef void (*shmbus__ring_scan_fn)(void *ctx, uint32_t index, uint64_t ticket);
void shmbus__ring_scan_sleepers(const struct shmbus__ring *ring, uint32_t m,
                                shmbus__ring_scan_fn fn, void *ctx);
void shmbus__ring_scan_pub_waiters(const struct shmbus__ring *ring, shmbus__ring_scan_fn fn,
                                   void *ctx);
/* Whether anyone may sleep in any member file this view maps (one load per
 * member file). */
bool shmbus__ring_any_sleeper(const struct shmbus__ring *ring);

/* Whether one record's bit is set (the daemon wakes the parts it knows). */
bool shmbus__ring_sub_sleeping(const struct shmbus__ring *ring, uint32_t g);

/* Member file m's sleep epoch (seq_cst load; 0 when it is not mapped):
 * incremented by each of its subscribers going to sleep (see the top of
 * ring.c). */
uint64_t shmbus__ring_sleep_epoch(const struct shmbus__ring *ring, uint32_t m);
bool shmbus__ring_pub_waiting(const struct shmbus__ring *ring, uint32_t i);
/* Global subscriber g's wake threshold (the lowest seq whose commit wakes
 * it; 0: any), read after its bit and ticket (untrusted: a forged one only
 * delays a wake-up of the forger's own uid, which its timer bounds); 0
 * when g is not mapped. */
uint64_t shmbus__ring_sub_wake_seq(const struct shmbus__ring *ring, uint32_t g);

/* The record of global subscriber index g, or NULL when g is out of range
 * or its member file is not mapped in this view. */
struct shmbus__sub_rec *shmbus__ring_sub_rec(const struct shmbus__ring *ring, uint32_t g);

/* Whether the own member header's peer_epoch moved since `*seen` (and records
 * the new value): the daemon sent peer_join/peer_leave messages. A seq_cst
 * load: a publisher calls it after its commit too (ring.c, "Peer epoch"). */
bool shmbus__ring_peers_changed(const struct shmbus__ring *ring, uint64_t *seen);
/* The own member header's peer_epoch now (seq_cst, as above: events sent
 * before the daemon's increment are on the socket). 0 when the view has
 * no own member file. */
uint64_t shmbus__ring_peer_epoch(const struct shmbus__ring *ring);
/* Moves peer_epoch of member file m on (the daemon, after it queued
 * peer_join/peer_leave messages; seq_cst: pairs with the loads above and
 * takes its place in the sleep protocol's total order). Nothing when m is
 * not mapped. */
void shmbus__ring_bump_peer_epoch(struct shmbus__ring *ring, uint32_t m);

/* ---- what records say, for the daemon's bookkeeping and statistics ----
 * Records are written by their owners, any participant of the topic: what
 * these return is untrusted (a state, a pid or a count anyone could have
 * written) and only ever compared, logged or clamped by the caller. */

/* Publisher record i's state (SHMBUS__PUB_FREE when i is out of range)
 * and, read after it, its owner's pid and pub_id (either pointer may be
 * NULL). Acquire on the state: pairs with the owner's CAS that took the
 * record, so pid and pub_id are the ones written before it. */
uint32_t shmbus__ring_pub_owner(const struct shmbus__ring *ring, uint32_t i, uint32_t *pid,
                                uint32_t *pub_id);
/* Subscriber record g's state (SHMBUS__SUB_FREE when g is out of range or
 * its member file is not mapped) and, read after it, its owner's pid (may
 * be NULL). Acquire on the state: pairs with the release store of whoever
 * stored it last. */
uint32_t shmbus__ring_sub_owner(const struct shmbus__ring *ring, uint32_t g, uint32_t *pid);

/* Subscriber record g's reliable deadline in ms (0: none or no record),
 * and setting it (the daemon, for a record it attached; relaxed: it is
 * published with the record by the daemon's later epoch increments, and
 * any value is only a bound). */
uint32_t shmbus__ring_sub_deadline(const struct shmbus__ring *ring, uint32_t g);
void shmbus__ring_sub_set_deadline(struct shmbus__ring *ring, uint32_t g, uint32_t ms);

/* The head: the next seq a publisher will claim (acquire; it orders claims
 * only). */
uint64_t shmbus__ring_head(const struct shmbus__ring *ring);

/* Counters of one record (relaxed loads: statistics, no ordering). */
struct shmbus__sub_counters {
  uint64_t cursor;
  uint64_t received;
  uint64_t lost;
  uint64_t demoted;
};
/* Publisher record i's published count (0 when out of range). */
uint64_t shmbus__ring_pub_published(const struct shmbus__ring *ring, uint32_t i);
/* Subscriber record g's counters (all 0 when there is no such record). */
void shmbus__ring_sub_counters(const struct shmbus__ring *ring, uint32_t g,
                               struct shmbus__sub_counters *out);

/* Repair after publishers died (they must really be dead: the caller, the
 * daemon, knows from their sockets). `dead` lists their record indices.
 * Every seq such a publisher held between claim and commit becomes SKIPPED,
 * so readers skip it and count it lost; then the records are freed. Returns
 * the number of slots repaired, or -EAGAIN when a live publisher was itself
 * between claim and commit and the question of who owns a hole must wait
 * (call again shortly). */
int shmbus__ring_repair(struct shmbus__ring *ring, const uint32_t *dead, size_t n_dead);

/* The same repair, resumable, for a caller (the daemon) that must not spend
 * unbounded time on one topic: shmbus__ring_repair_begin records which
 * publishers died, and each shmbus__ring_repair_step examines at most
 * `budget` slots of the lap a dead publisher may have left holes in, then
 * returns. The cost of the whole repair is O(slots + max_pubs), whatever
 * the number of publishers. Between steps the job keeps the position the
 * scan reached, the head it ends at, and the seqs live publishers held
 * when it began (any later claim gets a seq at or above that head, outside
 * the scan). The caller owns the job (about 16 KiB: allocate it); the
 * dead records stay ACTIVE until the step that returns 0 frees them. */
struct shmbus__ring_repair_job {
  uint64_t next;     /* hole scan: the next seq to examine */
  uint64_t end;      /* hole scan: head when it began (exclusive) */
  uint64_t start;    /* hole scan: its first seq */
  uint64_t repaired; /* slots turned SKIPPED so far */
  uint32_t phase;    /* 0: seqs the dead held; 1: hole scan; 2: done */
  uint32_t n_dead;
  uint32_t n_live;
  uint32_t dead[SHMBUS__MAX_PUBS];
  uint64_t live[SHMBUS__MAX_PUBS]; /* sorted */
};

/* Starts a job for the `n_dead` records in `dead`. Returns 0, or -EINVAL
 * for an index out of range or too many. */
int shmbus__ring_repair_begin(struct shmbus__ring *ring, struct shmbus__ring_repair_job *job,
                              const uint32_t *dead, size_t n_dead);

/* Advances the job by at most `budget` slots of the hole scan (0 counts as
 * 1). Returns 0 when the repair is complete (job->repaired slots, records
 * freed), -EINPROGRESS when the budget ran out (call again, e.g. on the
 * next loop turn), or -EAGAIN when a live publisher is between claim and
 * commit on a slot the repair must decide about (call again shortly; the
 * position is kept). */
int shmbus__ring_repair_step(struct shmbus__ring *ring, struct shmbus__ring_repair_job *job,
                             uint64_t budget);

/* Removes subscriber record `index` (global; the daemon does this when its
 * process is gone): it no longer holds reliable publishers back. */
void shmbus__ring_evict_sub(struct shmbus__ring *ring, uint32_t index);

/* Reconciliation (daemon): clears sleeper bits beyond max_subs and summary
 * bits beyond the bitmap in member file m (nobody's bits: forged).
 * Returns 1 if anything was cleared. */
int shmbus__ring_member_sanitize(struct shmbus__ring *ring, uint32_t m);

/* Reconciliation (daemon): puts a registered subscriber record back into
 * the state the daemon knows (LOSSY or RELIABLE) with `pid` and
 * `deadline_ms`. Returns 1 if anything had been changed, 0 if not. */
int shmbus__ring_sub_restore(struct shmbus__ring *ring, uint32_t g, bool reliable, uint32_t pid,
                             uint32_t deadline_ms);

#endif /* SHMBUS_RING_H */
