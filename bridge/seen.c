/* seen: what a reliable importer published. See seen.h. */
#include "seen.h"

#include <stdlib.h>
#include <string.h>

/* A run of given-up seqs, [from, to). */
struct seen_gap {
  uint64_t from, to;
};

struct bridge_seen {
  uint64_t low;
  uint64_t bits[BRIDGE_SEEN_WINDOW / 64];
  /* The given-up ranges, all below `low`, disjoint, in ascending order: a
   * ring of `cap` entries (grown up to BRIDGE_SEEN_GAPS), the oldest at
   * `first`. */
  struct seen_gap *gaps;
  size_t first, n, cap;
  uint64_t forgotten;
  char origin[]; /* NUL-terminated */
};

static bool seen_bit(const struct bridge_seen *o, uint64_t seq) {
  return (o->bits[(seq % BRIDGE_SEEN_WINDOW) / 64] >> (seq % 64)) & 1u;
}

static void seen_set(struct bridge_seen *o, uint64_t seq, bool on) {
  uint64_t m = (uint64_t)1 << (seq % 64);

  if (on)
    o->bits[(seq % BRIDGE_SEEN_WINDOW) / 64] |= m;
  else
    o->bits[(seq % BRIDGE_SEEN_WINDOW) / 64] &= ~m;
}

/* The i-th oldest given-up range. */
static struct seen_gap *gap_at(const struct bridge_seen *o, size_t i) {
  return &o->gaps[(o->first + i) % o->cap];
}

struct bridge_seen *bridge_seen_new(const char *origin, uint64_t seq) {
  size_t len = strlen(origin);
  struct bridge_seen *o = calloc(1, sizeof(*o) + len + 1);

  if (o == NULL)
    return NULL;
  memcpy(o->origin, origin, len + 1);
  o->low = seq >= BRIDGE_SEEN_WINDOW / 2 ? seq - BRIDGE_SEEN_WINDOW / 2 : 0;
  return o;
}

/* Frees the record and its ranges; NULL is a no-op. */
void bridge_seen_free(struct bridge_seen *o) {
  if (o == NULL)
    return;
  free(o->gaps);
  free(o);
}

/* The origin's name, as given to bridge_seen_new. */
const char *bridge_seen_origin(const struct bridge_seen *o) {
  return o->origin;
}

/* Ranges forgotten so far (seen.h). */
uint64_t bridge_seen_forgotten(const struct bridge_seen *o) {
  return o->forgotten;
}

/* Drops the oldest given-up range (counted as forgotten). */
static void gap_forget_oldest(struct bridge_seen *o) {
  o->first = (o->first + 1) % o->cap;
  o->n--;
  o->forgotten++;
}

/* Grows the ring (doubling, up to BRIDGE_SEEN_GAPS). False if it may not
 * or cannot (out of memory). */
static bool gap_grow(struct bridge_seen *o) {
  struct seen_gap *g;
  size_t ncap, i;

  if (o->cap >= BRIDGE_SEEN_GAPS)
    return false;
  ncap = o->cap > 0 ? o->cap * 2 : 16;
  if ((g = malloc(ncap * sizeof(*g))) == NULL)
    return false;
  for (i = 0; i < o->n; i++)
    g[i] = *gap_at(o, i);
  free(o->gaps);
  o->gaps = g;
  o->first = 0;
  o->cap = ncap;
  return true;
}

/* Makes room for one more range at the end: grows the ring, else forgets
 * the oldest. False if there is still no room (out of memory with nothing
 * to forget). */
static bool gap_room(struct bridge_seen *o) {
  if (o->n < o->cap || gap_grow(o))
    return true;
  if (o->n == 0)
    return false;
  gap_forget_oldest(o);
  return true;
}

/* Remembers [from, to) as given up; it lies above every range so far. */
static void gap_append(struct bridge_seen *o, uint64_t from, uint64_t to) {
  if (o->n > 0 && gap_at(o, o->n - 1)->to == from) {
    gap_at(o, o->n - 1)->to = to;
    return;
  }
  if (!gap_room(o)) {
    o->forgotten++;
    return;
  }
  *gap_at(o, o->n) = (struct seen_gap){from, to};
  o->n++;
}

/* The index of the range holding seq, or o->n if none does. */
static size_t gap_find(const struct bridge_seen *o, uint64_t seq) {
  size_t lo = 0, hi = o->n;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const struct seen_gap *g = gap_at(o, mid);
    if (seq < g->from)
      hi = mid;
    else if (seq >= g->to)
      lo = mid + 1;
    else
      return mid;
  }
  return o->n;
}

/* Takes seq out of range k (it was published after all). */
static void gap_remove(struct bridge_seen *o, size_t k, uint64_t seq) {
  struct seen_gap *g = gap_at(o, k);
  uint64_t to = g->to;
  size_t i;

  if (seq == g->from && seq + 1 == to) {
    /* The range goes: the newer ones move down one place. */
    for (i = k; i + 1 < o->n; i++)
      *gap_at(o, i) = *gap_at(o, i + 1);
    o->n--;
  } else if (seq == g->from) {
    g->from++;
  } else if (seq + 1 == to) {
    g->to--;
  } else {
    /* Split in two: [from, seq) stays at k, [seq + 1, to) goes after it. */
    g->to = seq;
    if (o->n == o->cap && !gap_grow(o)) {
      /* Full (or out of memory): forget the oldest range. If that is k,
       * its lower half, and the upper half takes its place. */
      if (k == 0) {
        *gap_at(o, 0) = (struct seen_gap){seq + 1, to};
        o->forgotten++;
        return;
      }
      gap_forget_oldest(o);
      k--;
    }
    for (i = o->n; i > k + 1; i--)
      *gap_at(o, i) = *gap_at(o, i - 1);
    *gap_at(o, k + 1) = (struct seen_gap){seq + 1, to};
    o->n++;
  }
}

bool bridge_seen_has(const struct bridge_seen *o, uint64_t seq) {
  if (seq < o->low)
    return gap_find(o, seq) == o->n;
  return seq - o->low < BRIDGE_SEEN_WINDOW && seen_bit(o, seq);
}

void bridge_seen_add(struct bridge_seen *o, uint64_t seq) {
  if (seq < o->low) {
    size_t k = gap_find(o, seq);
    if (k < o->n)
      gap_remove(o, k, seq);
    return;
  }
  if (seq - o->low >= BRIDGE_SEEN_WINDOW) {
    /* Move the window so that seq is its last: every seq it leaves behind
     * without its bit is given up. */
    uint64_t nl = seq - BRIDGE_SEEN_WINDOW + 1;
    uint64_t end = nl - o->low >= BRIDGE_SEEN_WINDOW ? o->low + BRIDGE_SEEN_WINDOW : nl;
    uint64_t s = o->low;
    while (s < end) {
      /* A whole word at a time where it is all set or all clear. */
      if (s % 64 == 0 && end - s >= 64) {
        uint64_t *w = &o->bits[(s % BRIDGE_SEEN_WINDOW) / 64];
        if (*w == UINT64_MAX || *w == 0) {
          if (*w == 0)
            gap_append(o, s, s + 64);
          *w = 0;
          s += 64;
          continue;
        }
      }
      if (seen_bit(o, s))
        seen_set(o, s, false);
      else
        gap_append(o, s, s + 1);
      s++;
    }
    if (end < nl)
      gap_append(o, end, nl);
    o->low = nl;
  }
  seen_set(o, seq, true);
  /* The last seq there is stays in the window (low never wraps to 0). */
  while (o->low != UINT64_MAX && seen_bit(o, o->low)) {
    seen_set(o, o->low, false);
    o->low++;
  }
}
