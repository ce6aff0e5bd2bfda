/* rate: what `shmbus hz` and `shmbus bw` share. Per topic, a window of the
 * last N messages (publish time, sequence number, size, as the messages
 * carry them), statistics over it, and the tool itself: subscriptions to
 * topics and patterns (cli/topicset.c, lossy), one report per period per
 * topic, text or JSON lines, --count reports.
 *
 * Times are the messages' own timestamps (the publisher's CLOCK_MONOTONIC
 * at publish), not the time they were read: a slow reader, a large message
 * or a batch read does not bend the numbers. The rate is the topic's
 * publish rate: sequence numbers spanned over the time spanned (messages
 * this lossy reader missed count, as published). Intervals are between
 * consecutive sequence numbers only (a missed message would make a longer
 * interval than the topic has). The bandwidth is the mean size of the
 * messages read at that rate. The tools read in sampling mode
 * (topicset_sample): a busy topic every 10 ms, so they never cost a fast
 * publisher a wake-up. */
#ifndef SHMBUS_CLI_RATE_H
#define SHMBUS_CLI_RATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rate_sample {
  uint64_t ts_ns;
  uint64_t seq;
  uint32_t size;
};

/* The last `cap` messages of one topic. */
struct rate_window {
  struct rate_sample *s;
  size_t cap;
  size_t n;       /* samples held, <= cap */
  size_t next;    /* where the next one goes */
  uint64_t fresh; /* messages since the last report */
};

struct rate_stats {
  size_t n;                           /* samples in the window */
  double span_s;                      /* newest minus oldest publish time */
  double rate_hz;                     /* sequence numbers spanned / span_s */
  double mean_s, min_s, max_s, std_s; /* intervals between consecutive sequence numbers */
  double bytes_per_s;                 /* size_mean * rate_hz */
  double size_mean;
  uint32_t size_min, size_max;
};

/* Returns 0 or -ENOMEM. */
int rate_window_init(struct rate_window *w, size_t cap);
void rate_window_free(struct rate_window *w);
void rate_window_add(struct rate_window *w, uint64_t ts_ns, uint64_t seq, uint32_t size);
/* Computes the statistics; false with fewer than two samples or a zero
 * time span (nothing to say yet). */
bool rate_window_stats(const struct rate_window *w, struct rate_stats *st);

/* The tools: `shmbus hz` (bw false) and `shmbus bw` (bw true). */
int cli_rate_tool(int argc, char **argv, bool bw);

#endif /* SHMBUS_CLI_RATE_H */
