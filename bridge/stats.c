/* stats: the bridge's topics and their counts, and the stats lines.
 * See bridge.h. The lines go to stderr, like the log (docs/bridge.md,
 * "Stats"):
 *   shmbus-bridge: stats: nats=STATE rtt_us=N topics=N exported=N
 *     export_dropped=N imported=N import_dropped=N refused_subject=N
 *     refused_headers=N own_origin=N queue_dropped=N in_flight=N
 *     stamps_replaced=N
 *   shmbus-bridge: stats: topic=NAME exported=N export_lost=N
 *     export_failed=N skipped_own=N imported=N import_dropped=N too_big=N
 * and with --reliable, after the totals line:
 *   shmbus-bridge: stats: reliable stream=NAME in_flight=N acked=N
 *     duplicates_acked=N failed=N resent=N lost=N window_full=N
 *     redelivered=N duplicates_dropped=N held_retries=N
 * (per topic, duplicates_dropped=N is added to its line). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"

struct bridge_topic *bridge_topic_find(const struct bridge *b, const char *name) {
  size_t i;

  /* The last topic found first: messages come in runs of one topic. */
  for (i = b->ntopics; i-- > 0;)
    if (strcmp(b->topics[i]->name, name) == 0)
      return b->topics[i];
  return NULL;
}

struct bridge_topic *bridge_topic_get(struct bridge *b, const char *name) {
  struct bridge_topic *t = bridge_topic_find(b, name);

  if (t != NULL)
    return t;
  if (strlen(name) >= sizeof(t->name))
    return NULL;
  if (b->ntopics == b->cap) {
    size_t n = b->cap > 0 ? b->cap * 2 : 16;
    struct bridge_topic **nt = realloc(b->topics, n * sizeof(*nt));
    if (nt == NULL)
      return NULL;
    b->topics = nt;
    b->cap = n;
  }
  if ((t = calloc(1, sizeof(*t))) == NULL)
    return NULL;
  if (bridge_subject_from_topic(b->o.prefix, name, t->subject, sizeof(t->subject)) < 0) {
    free(t);
    return NULL;
  }
  strcpy(t->name, name);
  t->b = b;
  b->topics[b->ntopics++] = t;
  return t;
}

void bridge_topics_free(struct bridge *b) {
  size_t i;

  for (i = 0; i < b->ntopics; i++) {
    bridge_topic_seen_free(b->topics[i]);
    free(b->topics[i]);
  }
  free(b->topics);
  b->topics = NULL;
  b->ntopics = b->cap = 0;
}

static uint64_t bridge_lost(const struct bridge_topic *t) {
  struct shmbus_sub_stats st = {0};

  if (t->sub != NULL)
    shmbus_sub_stats(t->sub, &st);
  return t->export_lost + st.lost;
}

void bridge_stats_print(struct bridge *b) {
  static const char *const states[] = {"connecting", "connected", "disconnected", "closed"};
  uint64_t exported = 0, edrop = 0, imported = 0, idrop = 0;
  int st = atomic_load_explicit(&b->nats_state, memory_order_relaxed);
  uint64_t qdrop;
  size_t i, queued;

  bridge_import_queue_stats(b, &queued, &qdrop);
  for (i = 0; i < b->ntopics; i++) {
    const struct bridge_topic *t = b->topics[i];
    exported += t->exported;
    edrop += bridge_lost(t) + t->export_failed;
    imported += t->imported;
    idrop += t->import_dropped + t->import_too_big;
  }
  fprintf(stderr,
          "shmbus-bridge: stats: nats=%s rtt_us=%lld topics=%zu exported=%" PRIu64
          " export_dropped=%" PRIu64 " imported=%" PRIu64 " import_dropped=%" PRIu64
          " refused_subject=%" PRIu64 " refused_headers=%" PRIu64 " own_origin=%" PRIu64
          " queue_dropped=%" PRIu64 " in_flight=%zu stamps_replaced=%" PRIu64 "\n",
          states[st >= 0 && st < 4 ? st : 0],
          (long long)atomic_load_explicit(&b->rtt_us, memory_order_relaxed), b->ntopics, exported,
          edrop, imported, idrop, b->refused.subject, b->refused.headers, b->refused.own, qdrop,
          queued, b->clock.replaced);
  if (b->o.reliable) {
    uint64_t dups = 0;
    for (i = 0; i < b->ntopics; i++)
      dups += b->topics[i]->import_dup;
    fprintf(stderr,
            "shmbus-bridge: stats: reliable stream=%s in_flight=%lld acked=%" PRIu64
            " duplicates_acked=%" PRIu64 " failed=%" PRIu64 " resent=%" PRIu64 " lost=%" PRIu64
            " window_full=%" PRIu64 " redelivered=%" PRIu64 " duplicates_dropped=%" PRIu64
            " held_retries=%" PRIu64 "\n",
            b->stream, (long long)atomic_load_explicit(&b->js_inflight, memory_order_relaxed),
            (uint64_t)atomic_load_explicit(&b->js_acked, memory_order_relaxed),
            (uint64_t)atomic_load_explicit(&b->js_dup, memory_order_relaxed),
            (uint64_t)atomic_load_explicit(&b->js_failed, memory_order_relaxed),
            (uint64_t)atomic_load_explicit(&b->js_resent, memory_order_relaxed),
            (uint64_t)atomic_load_explicit(&b->js_lost, memory_order_relaxed), b->js_pauses,
            b->js_redelivered, dups, bridge_import_pokes(b));
  }
  for (i = 0; i < b->ntopics; i++) {
    const struct bridge_topic *t = b->topics[i];
    fprintf(stderr,
            "shmbus-bridge: stats: topic=%s exported=%" PRIu64 " export_lost=%" PRIu64
            " export_failed=%" PRIu64 " skipped_own=%" PRIu64 " imported=%" PRIu64
            " import_dropped=%" PRIu64 " too_big=%" PRIu64 " duplicates_dropped=%" PRIu64
            " buffer_waits=%" PRIu64 "\n",
            t->name, t->exported, bridge_lost(t), t->export_failed, t->skipped_own, t->imported,
            t->import_dropped, t->import_too_big, t->import_dup, t->export_waits);
  }
  fflush(stderr);
}
