/* notify: waking the owners of waiting bits, for the library and the
 * daemon alike.
 *
 * Whoever sleeps on a topic says so in shared memory before it sleeps
 * (ring.c, the ticket protocol): a subscriber sets its sleeper bit and
 * waits for messages, a publisher that found the ring full sets its
 * waiting bit and waits for room. Whoever makes progress takes those bits
 * and signals their owners' wake-up events: a publisher after a commit
 * wakes sleeping subscribers, a reliable subscriber after a read wakes
 * waiting publishers, and the daemon wakes both when a peer leaves, a
 * record is reclaimed or the deadline sweep runs. This module is that one
 * routine.
 *
 * A participant keeps a directory of its peers' events by global record
 * index (struct shmbus__notify, filled from the daemon's peer_join events)
 * and signals each owner once per ticket: a sleeper that went to sleep
 * again has a new ticket and is signalled again, one still asleep on the
 * same ticket is not (no syscall storms). A member file whose sleep epoch
 * has not moved since a scan that signalled every sleeper is not scanned
 * again (ring.c, "Sleep epoch"). The bits are untrusted: a forged
 * bit costs a load and a compare, never a signal to someone unknown. The
 * daemon keeps its own list of the participants it knows and asks
 * shmbus__notify_waiting about each (O(participants), whatever the bitmaps
 * say), then signals with shmbus__notify_signal.
 *
 * Thread-safety: a directory is used by one thread at a time (its bus's).
 * Across fork(): the child must not use a directory it inherited (the
 * events are shared with the parent's). */
#ifndef SHMBUS_NOTIFY_H
#define SHMBUS_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "layout.h"
#include "platform/platform.h"
#include "ring.h"

/* Whose bits a directory (or a question) is about. */
enum shmbus__notify_kind {
  SHMBUS__NOTIFY_SLEEPERS = 1,   /* subscribers asleep, waiting for messages */
  SHMBUS__NOTIFY_PUB_WAITERS = 2 /* publishers waiting for room */
};

/* The peers of one member file (publishers' directories: sleepers) or the
 * publisher records (subscribers' directories): their events (invalid:
 * not known yet) and the last ticket signalled, by record. Allocated when
 * the first peer of the table is known. */
struct shmbus__notify_tab {
  shmbus__event_handle *ev;
  uint64_t *signalled;
};

/* A directory of peers to wake. Zeroed memory is an empty directory of no
 * records; shmbus__notify_init sizes it. */
struct shmbus__notify {
  struct shmbus__notify_tab tabs[SHMBUS__MAX_MEMBERS];
  uint32_t per; /* records per table: max_subs (sleepers) or max_pubs */
  uint32_t n;   /* global indices below this are valid */
  bool pending; /* a bit was seen whose owner's event is not known yet */
  enum shmbus__notify_kind kind;
  uint64_t signals; /* signals sent through this directory (wake-ups); only grows */
  /* Sleepers: per member file, the sleep epoch read before the last scan
   * that signalled every sleeper it found (valid when `scanned` says so);
   * while it stays the same, the scan is skipped. */
  bool missed;       /* the current scan left a sleeper unsignalled */
  uint64_t view_gen; /* the ring view's view_gen they were read in (files may change) */
  bool scanned[SHMBUS__MAX_MEMBERS];
  uint64_t epoch[SHMBUS__MAX_MEMBERS];
  /* Sleepers: wake thresholds. `seq` is the highest seq the owner of the
   * directory has committed (UINT64_MAX, the default: signal every
   * sleeper); a sleeper whose threshold (ring.c, "Wake thresholds") lies
   * beyond it is deferred, not signalled. defer[m] is the lowest threshold
   * the last scan of member file m deferred (UINT64_MAX: none); a skipped
   * scan must not skip it, so the scan runs again once seq reaches it. */
  uint64_t seq;
  uint64_t defer[SHMBUS__MAX_MEMBERS];
  const struct shmbus__ring *ring; /* during a wake: the ring scanned */
};

/* Sizes an empty directory for a topic's parameters: sleepers in every
 * member file (SHMBUS__NOTIFY_SLEEPERS, `per` = max_subs) or the
 * publisher records (SHMBUS__NOTIFY_PUB_WAITERS, `per` = max_pubs). */
void shmbus__notify_init(struct shmbus__notify *n, enum shmbus__notify_kind kind, uint32_t per);

/* Records that global record g's owner wakes through `ev`, which the
 * directory takes (and closes when replaced, cleared or freed; also at
 * once when g is out of range or memory is short). An invalid `ev` forgets
 * the owner of g. */
void shmbus__notify_set(struct shmbus__notify *n, uint32_t g, shmbus__event_handle ev);

/* True if the directory knows no owner in table m (a member file). */
bool shmbus__notify_table_empty(const struct shmbus__notify *n, uint32_t m);

/* Frees table m (its owners must be forgotten already). */
void shmbus__notify_table_free(struct shmbus__notify *n, uint32_t m);

/* How many owners the directory knows. */
int shmbus__notify_count(const struct shmbus__notify *n);

/* Closes every event the directory holds; keeps its size and tables. */
void shmbus__notify_clear(struct shmbus__notify *n);

/* Closes every event and frees the tables; the directory is empty and of
 * no records afterwards (shmbus__notify_init sizes it again). */
void shmbus__notify_free(struct shmbus__notify *n);

/* Takes the bits of the directory's kind in `ring` and signals each owner
 * once per ticket (sleepers: each whose wake threshold n->seq reached). A bit whose owner is not
 * known yet sets n->pending (without a syscall): call again once a peer_join taught the owner. */
void shmbus__notify_wake(struct shmbus__notify *n, const struct shmbus__ring *ring);

/* Whether global record g's bit of `kind` is set (the daemon asks about
 * each participant it knows). */
bool shmbus__notify_waiting(const struct shmbus__ring *ring, enum shmbus__notify_kind kind,
                            uint32_t g);

/* Whether any bit of `kind` may be set (a cheap first look, one load per
 * member file for sleepers; always true for publisher waiters). */
bool shmbus__notify_any(const struct shmbus__ring *ring, enum shmbus__notify_kind kind);

/* Signals one owner's event without blocking. 0; -EBADFD when the event
 * was made blocking by its owner (not signalled: the caller stops waking
 * it and reports the owner); another negative code. */
int shmbus__notify_signal(shmbus__event_handle ev);

#endif /* SHMBUS_NOTIFY_H */
