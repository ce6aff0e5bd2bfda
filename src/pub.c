/* pub: the publisher API that never blocks. See pub.h; the blocking
 * calls are in wait.c. */
#include "pub.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "handle.h"
#include "platform/platform.h"
#include "shmbus/error.h"

int shmbus_pub_open(shmbus_bus *bus, const char *topic, const struct shmbus_topic_opts *opts,
                    shmbus_pub **out) {
  struct shmbus__handle want;
  struct shmbus__handle *h;
  int rv;

  if (bus == NULL || topic == NULL || out == NULL)
    return -EINVAL;
  memset(&want, 0, sizeof(want));
  if ((rv = shmbus__handle_want_params(opts, &want)) < 0)
    return rv;
  if ((rv = shmbus__handle_open(bus, topic, SHMBUS__ROLE_PUB, &want, sizeof(shmbus_pub), &h)) < 0)
    return rv;
  *out = (shmbus_pub *)h;
  return 0;
}

void shmbus__pub_wake_sleepers(shmbus_pub *pub) {
  shmbus__notify_wake(&pub->h.wake, &pub->h.region.ring);
}

static int pub_after_commit(shmbus_pub *pub, int rv) {
  /* The seq just committed: sleepers whose wake threshold lies beyond it
   * are left to their timers (notify.c). */
  if (rv >= 0)
    pub->h.wake.seq = pub->ring.loan_seq;
  /* The peer epoch again, after the seq_cst commit store (ring.c, "Peer
   * epoch"): a subscriber that joined while we published and went to
   * sleep without seeing this commit was announced to us before the
   * epoch moved. One load of a line only the daemon writes; the socket is
   * read (and every sleeper scanned) only when it moved. Without it, the
   * last message of a burst could leave that sleeper asleep until we
   * publish again. */
  if (rv >= 0)
    shmbus__handle_check_peers(&pub->h);
  if (rv == 1)
    shmbus__pub_wake_sleepers(pub);
  return rv < 0 ? rv : 0;
}

/* The smallest non-zero of three bounds, 0 when all are 0. */
static uint32_t pub_min_deadline(uint32_t a, uint32_t b, uint32_t c) {
  uint32_t v = 0;
  if (a != 0)
    v = a;
  if (b != 0 && (v == 0 || b < v))
    v = b;
  if (c != 0 && (v == 0 || c < v))
    v = c;
  return v;
}

/* The EFULL path (only there is the clock read): tracks how long the record
 * that holds us back has done so without reading. Returns 1 when its
 * deadline ran out and it was demoted (publish again: there is room), 0
 * otherwise; *until_ns (may be NULL) receives when the deadline ends (0:
 * none). */
int shmbus__pub_on_full(shmbus_pub *pub, uint64_t *until_ns) {
  uint32_t g;
  uint32_t rec_ms;
  uint32_t ms;
  uint64_t cursor;
  uint64_t now;

  if (until_ns != NULL)
    *until_ns = 0;
  if (!shmbus__ring_pub_blocker(&pub->ring, &g, &cursor, &rec_ms))
    return 0;
  ms = pub_min_deadline(rec_ms, pub->deadline_ms, pub->h.deadline_cap);
  if (ms == 0)
    return 0;
  now = shmbus__clock_mono_ns();
  if (!pub->full_armed || pub->full_g != g || pub->full_cursor != cursor) {
    pub->full_armed = true;
    pub->full_g = g;
    pub->full_cursor = cursor;
    pub->full_since_ns = now;
  }
  if (now - pub->full_since_ns < (uint64_t)ms * 1000000u) {
    if (until_ns != NULL)
      *until_ns = pub->full_since_ns + (uint64_t)ms * 1000000u;
    return 0;
  }
  pub->full_armed = false;
  return shmbus__ring_pub_demote(&pub->ring, g) == 0 ? 1 : 0;
}

int shmbus_pub_publish(shmbus_pub *pub, const void *data, size_t len) {
  int rv;

  if (pub == NULL || (data == NULL && len > 0))
    return -EINVAL;
  shmbus__handle_check_peers(&pub->h);
  rv = shmbus__ring_publish(&pub->ring, data, len, shmbus__clock_mono_ns());
  if (rv == SHMBUS_EFULL && shmbus__pub_on_full(pub, NULL) == 1)
    rv = shmbus__ring_publish(&pub->ring, data, len, shmbus__clock_mono_ns());
  return pub_after_commit(pub, rv);
}

/* shmbus_pub_publish_batch(_at): ts_ns NULL stamps every message with the
 * clock as it is published. */
static int pub_batch(shmbus_pub *pub, const struct shmbus_pub_msg *msgs, const uint64_t *ts_ns,
                     size_t n) {
  bool wake = false;
  size_t i;
  int rv = 0;

  if (pub == NULL || (msgs == NULL && n > 0) || n > INT_MAX)
    return -EINVAL;
  for (i = 0; i < n; i++)
    if (msgs[i].data == NULL && msgs[i].len > 0)
      return -EINVAL;
  shmbus__handle_check_peers(&pub->h);
  for (i = 0; i < n; i++) {
    uint64_t ts = ts_ns != NULL ? ts_ns[i] : 0;
    rv = shmbus__ring_publish(&pub->ring, msgs[i].data, msgs[i].len,
                              ts != 0 ? ts : shmbus__clock_mono_ns());
    if (rv == SHMBUS_EFULL && shmbus__pub_on_full(pub, NULL) == 1)
      rv = shmbus__ring_publish(&pub->ring, msgs[i].data, msgs[i].len,
                                ts != 0 ? ts : shmbus__clock_mono_ns());
    if (rv < 0)
      break;
    /* 1: a subscriber sleeps; it is signalled once, below. */
    wake |= rv == 1;
  }
  if (i == 0)
    return n == 0 ? 0 : rv;
  /* As after one publish (pub_after_commit), for the last seq committed. */
  (void)pub_after_commit(pub, wake ? 1 : 0);
  return (int)i;
}

int shmbus_pub_publish_batch(shmbus_pub *pub, const struct shmbus_pub_msg *msgs, size_t n) {
  return pub_batch(pub, msgs, NULL, n);
}

int shmbus_pub_publish_batch_at(shmbus_pub *pub, const struct shmbus_pub_msg *msgs,
                                const uint64_t *ts_ns, size_t n) {
  if (ts_ns == NULL && n > 0)
    return -EINVAL;
  return pub_batch(pub, msgs, ts_ns, n);
}

int shmbus_pub_loan(shmbus_pub *pub, size_t len, void **buf) {
  int rv;

  if (pub == NULL || buf == NULL)
    return -EINVAL;
  shmbus__handle_check_peers(&pub->h);
  rv = shmbus__ring_loan(&pub->ring, len, buf);
  if (rv == SHMBUS_EFULL && shmbus__pub_on_full(pub, NULL) == 1)
    rv = shmbus__ring_loan(&pub->ring, len, buf);
  return rv;
}

int shmbus_pub_set_deadline(shmbus_pub *pub, uint32_t ms) {
  if (pub == NULL)
    return -EINVAL;
  pub->deadline_ms = ms;
  return 0;
}

uint64_t shmbus_pub_deadline_overwrites(const shmbus_pub *pub) {
  return pub != NULL ? pub->ring.deadline_overwrites : 0;
}

int shmbus_pub_commit(shmbus_pub *pub, size_t len) {
  if (pub == NULL)
    return -EINVAL;
  return pub_after_commit(pub, shmbus__ring_commit(&pub->ring, len, shmbus__clock_mono_ns()));
}

int shmbus_pub_cancel(shmbus_pub *pub) {
  if (pub == NULL)
    return -EINVAL;
  return pub_after_commit(pub, shmbus__ring_cancel(&pub->ring));
}

size_t shmbus_pub_max_size(const shmbus_pub *pub) {
  return pub != NULL ? pub->h.region.ring.slot_capacity : 0;
}

int shmbus_pub_subscribers(shmbus_pub *pub) {
  if (pub == NULL)
    return -EINVAL;
  (void)shmbus_bus_process(pub->h.bus);
  return shmbus__notify_count(&pub->h.wake);
}

uint64_t shmbus_pub_published(const shmbus_pub *pub) {
  return pub != NULL ? pub->ring.published : 0;
}

uint32_t shmbus_pub_id(const shmbus_pub *pub) {
  return pub != NULL ? pub->ring.pub_id : 0;
}

void shmbus_pub_stats(const shmbus_pub *pub, struct shmbus_pub_stats *stats) {
  if (stats == NULL)
    return;
  stats->published = pub != NULL ? pub->ring.published : 0;
  stats->deadline_overwrites = pub != NULL ? pub->ring.deadline_overwrites : 0;
  stats->wakeups_sent = pub != NULL ? pub->h.wake.signals : 0;
  stats->wakeups = pub != NULL ? pub->h.woken : 0;
}

void shmbus_pub_close(shmbus_pub *pub) {
  if (pub != NULL)
    shmbus__handle_close(&pub->h);
}
