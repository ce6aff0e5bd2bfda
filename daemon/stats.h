/* stats: the daemon's $sys/stats topic. The daemon creates it at start (8
 * slots of 64 KiB, retained) and is its only publisher. Once a second, and
 * only while someone subscribes, it publishes one msgpack map describing
 * every topic and participant:
 *
 *   {"ts_ns": u64, "topics": [{"name", "topic_id", "slots", "slot_size",
 *     "max_subs", "max_pubs", "head", "repair"?,
 *     "pubs": [{"index", "pid", "client", "name", "published"}],
 *     "subs": [{"index", "pid", "client", "name", "reliable", "cursor",
 *               "lag", "received", "lost"}]}],
 *    "truncated": bool}
 *
 * The same map answers the `snapshot` request (docs/protocol.md), which
 * `shmbus ls` and `shmbus stat` use: stats_encode is the one encoder for
 * both.
 *
 * Counters come from the shared records, which participants write: they are
 * clamped to what the topic's head makes possible. Topics that do not fit in
 * one slot are left out and "truncated" is true.
 *
 * Thread-safety: single-threaded (the daemon's loop). */
#ifndef SHMBUSD_STATS_H
#define SHMBUSD_STATS_H

#include <stdbool.h>
#include <uv.h>

#include "registry.h"
#include "ring.h"

#define STATS_TOPIC "$sys/stats"
#define STATS_SLOTS 8u
#define STATS_SLOT_SIZE (64u * 1024u)
#define STATS_MAX_SUBS 64u

struct stats {
  struct registry *reg;
  struct registry_topic *topic;
  struct shmbus__ring_pub pub; /* the daemon's publisher record */
  uv_timer_t timer;
  bool timer_init;
  bool running;
};

/* Creates $sys/stats in `reg` and its timer on `loop`. Returns 0 or a
 * negative code (the topic could not be created). */
int stats_init(struct stats *st, uv_loop_t *loop, struct registry *reg);

/* Starts the 1 Hz timer when the topic has subscribers, stops it when it
 * has none. Call after every open or close on the topic. */
void stats_update(struct stats *st);

/* Who looks (a `snapshot` request, docs/security.md M4): `topic` says
 * whether the viewer may see a topic at all (it may subscribe to it);
 * `part` whether it may see who a participant is (pid, client, name; a
 * participant it may not see is listed with pid 0, client 0 and name "").
 * NULL callbacks allow everything (the daemon's own $sys/stats). */
struct stats_view {
  bool (*topic)(void *ctx, const struct registry_topic *t);
  bool (*part)(void *ctx, const struct registry_part *p);
  void *ctx;
};

/* Encodes the map above for every topic of `reg`, or only the one named
 * `only` (NULL: all), into buf[0..cap), as `view` (NULL: everything) may
 * see it. Topics that do not fit are left out ("truncated": true); a topic
 * whose dead publishers are being repaired has "repair": {"start", "next",
 * "end"} (the seqs of the hole scan; all 0 before it began). Returns the
 * length, 0 when cap cannot even hold the frame (64 bytes always do).
 * *ntopics gets the number of topics encoded and *truncated whether some
 * were left out; both may be NULL. At most `max_topics` topics are
 * examined (0: no limit): the rest count as truncated. */
size_t stats_encode(const struct registry *reg, const char *only, const struct stats_view *view,
                    void *buf, size_t cap, uint32_t *ntopics, bool *truncated);

/* Publishes one snapshot now. Returns 0, SHMBUS_EFULL (a reliable
 * subscriber lags: this second is skipped) or another negative code. */
int stats_publish(struct stats *st);

/* Stops and closes the timer (the loop must run once more to finish the
 * close) and releases the daemon's publisher record. */
void stats_close(struct stats *st);

#endif /* SHMBUSD_STATS_H */
