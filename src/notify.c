/* notify: waking the owners of waiting bits. See notify.h. */
#include "notify.h"

#include <stdlib.h>
#include <string.h>

/* Forgets the epochs: the next wake scans every member file. */
static void notify_rescan(struct shmbus__notify *n) {
  memset(n->scanned, 0, sizeof(n->scanned));
}

/* The table slot of global record g; allocates the table on first use.
 * NULL when g is out of range or memory is short. */

static struct shmbus__notify_tab *notify_tab(struct shmbus__notify *n, uint32_t g, bool alloc) {
  struct shmbus__notify_tab *t;
  uint32_t i;

  if (n->per == 0 || g >= n->n)
    return NULL;
  t = &n->tabs[g / n->per];
  if (t->ev == NULL && alloc) {
    t->ev = malloc(sizeof(*t->ev) * n->per);
    t->signalled = calloc(n->per, sizeof(*t->signalled));
    if (t->ev == NULL || t->signalled == NULL) {
      free(t->ev);
      free(t->signalled);
      t->ev = NULL;
      t->signalled = NULL;
      return NULL;
    }
    for (i = 0; i < n->per; i++)
      t->ev[i] = SHMBUS__OS_HANDLE_INVALID;
  }
  return t->ev != NULL ? t : NULL;
}

void shmbus__notify_init(struct shmbus__notify *n, enum shmbus__notify_kind kind, uint32_t per) {
  n->kind = kind;
  n->per = per;
  /* Sleepers live in every member file, publisher records in one place. */
  n->n = kind == SHMBUS__NOTIFY_SLEEPERS ? per * SHMBUS__MAX_MEMBERS : per;
  n->pending = false;
  n->seq = UINT64_MAX;
  notify_rescan(n);
}

void shmbus__notify_set(struct shmbus__notify *n, uint32_t g, shmbus__event_handle ev) {
  struct shmbus__notify_tab *t = notify_tab(n, g, shmbus__handle_ok(ev));

  /* A new owner may be asleep on a ticket a skipped scan would miss. */
  notify_rescan(n);
  if (t == NULL) {
    shmbus__fd_close(ev);
    return;
  }
  shmbus__fd_close(t->ev[g % n->per]);
  t->ev[g % n->per] = ev;
  /* A new owner (or none) of record g has not been signalled on any
   * ticket: the ticket remembered was signalled to the previous owner's
   * event. Records are reused and their sleep tickets carry on, so a
   * publisher that reads a backlog of events at once (a peer_join of a
   * subscriber since gone, then the one of the sleeper that holds the
   * record now) signals the sleeper's ticket through the stale event
   * first; kept, that ticket would stop the signal through the new one,
   * and the sleeper would sleep until the next sleep ticket (the lost
   * wake-up of a late-joining subscriber; latewake_test). Tickets start
   * at 1: 0 is never a sleep's. */
  t->signalled[g % n->per] = 0;
}

bool shmbus__notify_table_empty(const struct shmbus__notify *n, uint32_t m) {
  const struct shmbus__notify_tab *t;
  uint32_t i;

  if (m >= SHMBUS__MAX_MEMBERS)
    return true;
  t = &n->tabs[m];
  for (i = 0; t->ev != NULL && i < n->per; i++)
    if (shmbus__handle_ok(t->ev[i]))
      return false;
  return true;
}

void shmbus__notify_table_free(struct shmbus__notify *n, uint32_t m) {
  struct shmbus__notify_tab *t;
  uint32_t i;

  if (m >= SHMBUS__MAX_MEMBERS)
    return;
  notify_rescan(n);
  t = &n->tabs[m];
  for (i = 0; t->ev != NULL && i < n->per; i++)
    shmbus__fd_close(t->ev[i]);
  free(t->ev);
  free(t->signalled);
  t->ev = NULL;
  t->signalled = NULL;
}

int shmbus__notify_count(const struct shmbus__notify *n) {
  uint32_t m;
  uint32_t i;
  int count = 0;

  for (m = 0; m < SHMBUS__MAX_MEMBERS; m++)
    for (i = 0; n->tabs[m].ev != NULL && i < n->per; i++)
      count += shmbus__handle_ok(n->tabs[m].ev[i]);
  return count;
}

void shmbus__notify_clear(struct shmbus__notify *n) {
  uint32_t m;
  uint32_t i;

  notify_rescan(n);
  for (m = 0; m < SHMBUS__MAX_MEMBERS; m++) {
    for (i = 0; n->tabs[m].ev != NULL && i < n->per; i++) {
      shmbus__fd_close(n->tabs[m].ev[i]);
      n->tabs[m].ev[i] = SHMBUS__OS_HANDLE_INVALID;
    }
  }
}

void shmbus__notify_free(struct shmbus__notify *n) {
  uint32_t m;

  for (m = 0; m < SHMBUS__MAX_MEMBERS; m++)
    shmbus__notify_table_free(n, m);
  n->n = 0;
  n->per = 0;
  n->pending = false;
  notify_rescan(n);
}

/* One bit the ring's scan found set: record g's owner waits with `ticket`
 * (a sleep or wait ticket). Signals it once per ticket; a bit whose
 * owner's event is not known yet stays pending (no syscall: the event
 * comes with a peer_join, after which the caller scans again). */
static void notify_one(void *ctx, uint32_t g, uint64_t ticket) {
  struct shmbus__notify *n = ctx;
  struct shmbus__notify_tab *t = notify_tab(n, g, false);
  uint32_t i;

  if (t == NULL) {
    n->pending = true;
    n->missed = true;
    return;
  }
  i = g % n->per;
  if (t->signalled[i] == ticket)
    return;
  if (n->kind == SHMBUS__NOTIFY_SLEEPERS) {
    /* A wake threshold not reached yet: leave the sleeper to its timer
     * (not a miss: the file's scan may be skipped until seq reaches the
     * lowest such threshold). */
    uint64_t want = shmbus__ring_sub_wake_seq(n->ring, g);
    if (want > n->seq) {
      uint32_t m = g / n->per;
      if (want < n->defer[m])
        n->defer[m] = want;
      return;
    }
  }
  if (!shmbus__handle_ok(t->ev[i])) {
    n->pending = true;
    n->missed = true;
    return;
  }
  if (shmbus__event_signal(t->ev[i]) == 0) {
    t->signalled[i] = ticket;
    n->signals++;
  } else {
    n->missed = true;
  }
}

void shmbus__notify_wake(struct shmbus__notify *n, const struct shmbus__ring *ring) {
  uint32_t m;

  /* Bounds are checked by the ring's scan; a forged bit costs a load and
   * a compare. */
  n->pending = false;
  if (n->kind == SHMBUS__NOTIFY_SLEEPERS) {
    /* A member file mapped anew has epochs of its own. */
    if (n->view_gen != ring->view_gen) {
      notify_rescan(n);
      n->view_gen = ring->view_gen;
    }
    n->ring = ring;
    for (m = 0; m < ring->n_members && m < SHMBUS__MAX_MEMBERS; m++) {
      uint64_t epoch = shmbus__ring_sleep_epoch(ring, m);
      if (n->scanned[m] && n->epoch[m] == epoch &&
          (n->defer[m] == UINT64_MAX || n->seq < n->defer[m]))
        continue; /* every sleeper there was signalled on its ticket or waits for more */
      n->missed = false;
      n->defer[m] = UINT64_MAX;
      shmbus__ring_scan_sleepers(ring, m, notify_one, n);
      n->epoch[m] = epoch;
      n->scanned[m] = !n->missed;
    }
  } else {
    shmbus__ring_scan_pub_waiters(ring, notify_one, n);
  }
}

bool shmbus__notify_waiting(const struct shmbus__ring *ring, enum shmbus__notify_kind kind,
                            uint32_t g) {
  return kind == SHMBUS__NOTIFY_SLEEPERS ? shmbus__ring_sub_sleeping(ring, g)
                                         : shmbus__ring_pub_waiting(ring, g);
}

bool shmbus__notify_any(const struct shmbus__ring *ring, enum shmbus__notify_kind kind) {
  return kind == SHMBUS__NOTIFY_SLEEPERS ? shmbus__ring_any_sleeper(ring) : true;
}

int shmbus__notify_signal(shmbus__event_handle ev) {
  return shmbus__event_signal(ev);
}
