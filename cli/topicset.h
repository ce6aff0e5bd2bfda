/* topicset: the CLI's subscription to a set of topic patterns, present and
 * future (echo, hz, bw, record). Each pattern with a wildcard is a watch
 * (include/shmbus/discover.h): every matching topic that exists or appears
 * later gets a subscriber, and a topic removed by name loses it. A pattern
 * without wildcards is one topic, subscribed to at once (and created with
 * the given topic parameters if it does not exist yet), as `shmbus echo
 * TOPIC` always did. A topic that several patterns match is subscribed to
 * once.
 *
 * Everything runs on a libuv loop the caller owns and runs: the set starts
 * the bus on it (shmbus_uv_bus_start) and delivers each message to the
 * on_msg callback. The caller adds its own handles (timers, signals) to
 * the same loop, and ends by topicset_close, then shmbus_bus_close, then
 * one more uv_run so libuv can finish closing.
 *
 * Messages of topics that appear after the set started are taken from the
 * start of what is still in their ring (a publisher that creates a topic
 * and publishes at once loses nothing to the time the watch takes); the
 * topics there at the start get `history` from the options.
 *
 * Thread-safety: the loop's thread only. */
#ifndef SHMBUS_CLI_TOPICSET_H
#define SHMBUS_CLI_TOPICSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "shmbus/shmbus.h"
#include "shmbus/uv.h"

struct topicset;

/* One topic of the set. Owned by the set; valid until topicset_close
 * (also after the topic went away: then sub is NULL). */
struct topicset_topic {
  struct topicset *set;
  const char *name;
  shmbus_sub *sub;   /* NULL while not subscribed (gone, or the open failed) */
  size_t index;      /* its position: topicset_at(set, index) == this */
  void *user;        /* the verb's own data; the set never touches it */
  uint64_t received; /* of earlier subscribers of this name (before a removal) */
  uint64_t lost;
  struct topicset_sampler *sampler; /* the set's, in sampling and pacing mode */
};

struct topicset_cbs {
  /* Each message, as shmbus_uv_msg_cb delivers it (`data` valid during the
   * call). Required. */
  void (*on_msg)(struct topicset_topic *t, const void *data, size_t len,
                 const struct shmbus_msg_info *info, void *arg);
  /* A topic joined the set (subscribed: appeared = true) or left it (it
   * was removed by name; appeared = false). May be NULL. */
  void (*on_topic)(struct topicset_topic *t, bool appeared, void *arg);
  void *arg;
};

/* Makes an empty set on `bus` and `loop` (starting the bus on the loop if
 * it is not yet). `so` are the options of every subscriber (copied): its
 * `topic` parameters apply to literal topics only; `verb` names the CLI
 * verb in messages. Returns 0 with *out, or a negative code after printing
 * why. */
int topicset_open(struct topicset **out, shmbus_bus *bus, uv_loop_t *loop, const char *verb,
                  const struct shmbus_sub_opts *so, const struct topicset_cbs *cbs);

/* Sampling mode, for tools that look at a topic rather than consume it
 * (hz, bw): lossy subscribers are read every `ms` milliseconds while
 * messages come (everything still in the ring, the rest counted lost) and
 * wait on their wake-up only after a period without any. A busy publisher
 * then never makes a syscall to wake this reader, and the reader costs a
 * few wake-ups a second however fast the topic is. Without it (the
 * default) each subscriber is woken as messages arrive (echo, record).
 * Call before topicset_add. Returns 0, -EINVAL (ms 0 or above 1000, or
 * a mode chosen already) or -ENOMEM. */
int topicset_sample(struct topicset *ts, unsigned ms);

/* Pacing mode, for a reader that shows what it can of a topic (echo):
 * lossy subscribers are delivered by libuv as messages come (as without
 * it) while the reader keeps up. One that the publishers lap twice within
 * `us` microseconds (it skipped seqs twice while reading) gains nothing
 * by reading on, and one that reads more than a period's share of 200,000
 * messages a second within a period (fast enough to follow them closely)
 * costs them its loads on the lines they write next: either way its
 * delivery stops, and a timer reads it every `us` (a millisecond at
 * least): what its ring holds, until the publishers lap it again, a
 * period's share at most. Once a period finds nothing more to read, and
 * reading all that was published in it took the reader under a tenth of
 * the period, libuv delivers it again. A publisher the reader cannot keep
 * up with then pays for a period's share of reads, not for a reader
 * loading each slot line right after it wrote it (bench/README.md, "What
 * echo costs a flat-out publisher"); the reader loses more, and counts
 * it. Reliable subscribers are never paced. Call before topicset_add; not
 * with topicset_sample. Returns 0, -EINVAL (us 0 or above 60 s, or a
 * mode chosen already) or -ENOMEM. */
int topicset_pace(struct topicset *ts, unsigned us);

/* Adds a topic name or a pattern. Returns 0, or a negative code after
 * printing why (a bad pattern, a denied or failed subscription of a
 * literal topic, a daemon without discovery). The matching topics that
 * exist are subscribed to before it returns; their on_topic callbacks run
 * from here. */
int topicset_add(struct topicset *ts, const char *pattern);

/* True if `s` has a wildcard (a pattern, not one topic name). */
bool topicset_is_pattern(const char *s);

/* The topics the set has had, subscribed or gone, in the order they came. */
size_t topicset_count(const struct topicset *ts);
struct topicset_topic *topicset_at(const struct topicset *ts, size_t i);

/* Messages received and lost by topic `t` since the set subscribed to it
 * (all its subscribers, through removals). */
void topicset_topic_stats(const struct topicset_topic *t, uint64_t *received, uint64_t *lost);

/* The sums over every topic. */
void topicset_totals(const struct topicset *ts, uint64_t *received, uint64_t *lost);

/* Stops every delivery at once (from a callback too: no further on_msg
 * call), and every watch. The set keeps its counts. */
void topicset_stop(struct topicset *ts);

/* Stops, closes the subscribers and watches, frees the set. NULL is a
 * no-op. Run the loop once more afterwards. */
void topicset_close(struct topicset *ts);

/* Closes every handle still open on a libuv loop (the verb's own, and
 * what the library leaves to close after shmbus_bus_close), runs the loop
 * until they are closed, and closes it. */
void cli_loop_close(uv_loop_t *loop);

#endif /* SHMBUS_CLI_TOPICSET_H */
