/* topicset: subscriptions to a set of patterns. See topicset.h. */
#include "topicset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* The history of a subscriber to a topic that appeared after the start:
 * everything still in its ring (the library clamps it to the ring). */
#define TOPICSET_WHOLE_RING (1u << 24)

/* Pacing: messages a second a topic is read at most while they come
 * faster (topicset.h). */
#define TOPICSET_PACE_RATE 200000u

struct topicset_watch {
  struct topicset *set;
  shmbus_watch *w;
};

/* Sampling mode: a topic's reader between two periods. In pacing mode
 * the same record paces a topic that libuv delivers (`pacing`). */
struct topicset_sampler {
  struct topicset_topic *t;
  cli_event_watch *wake; /* on the subscriber's wake-up event while it sleeps, else NULL */
  unsigned char *buf;
  size_t cap;
  uint32_t batch; /* messages read per period at most: the ring's slots */
  bool pacing;    /* pacing mode: delivered by libuv while it keeps up */
  bool behind;    /* pacing: lapped while reading; read by the timer, not libuv */
  bool have_seq;  /* pacing: next_seq holds the seq after the last message */
  uint64_t next_seq;
  uint64_t lap_ns;     /* pacing: when libuv's delivery last skipped seqs, 0 never */
  uint64_t period_seq; /* pacing, behind: next_seq when the last period's reading ended */
  uint64_t vol_ns;     /* pacing: when the last pace_max messages from libuv began */
  uint32_t vol_n;      /* pacing: messages from libuv since vol_ns */
};

struct topicset {
  shmbus_bus *bus;
  uv_loop_t *loop;
  const char *verb;
  struct shmbus_sub_opts so;
  struct topicset_cbs cbs;
  struct topicset_topic **topics;
  size_t ntopics;
  size_t cap;
  struct topicset_watch **watches; /* each allocated alone: it is a callback's argument */
  size_t nwatches;
  bool stopped;
  unsigned sample_ms; /* 0: woken per message */
  unsigned pace_us;   /* pacing mode's period, 0: no pacing */
  uint32_t pace_max;  /* pacing: messages read per period at most */
  uv_timer_t *tick;   /* sampling: reads the busy topics every sample_ms;
                       * pacing: the topics that fell behind every pace_us */
};

bool topicset_is_pattern(const char *s) {
  return strchr(s, '*') != NULL;
}

size_t topicset_count(const struct topicset *ts) {
  return ts->ntopics;
}

struct topicset_topic *topicset_at(const struct topicset *ts, size_t i) {
  return i < ts->ntopics ? ts->topics[i] : NULL;
}

void topicset_topic_stats(const struct topicset_topic *t, uint64_t *received, uint64_t *lost) {
  struct shmbus_sub_stats st = {0, 0, 0};

  if (t->sub != NULL)
    shmbus_sub_stats(t->sub, &st);
  *received = t->received + st.received;
  *lost = t->lost + st.lost;
}

void topicset_totals(const struct topicset *ts, uint64_t *received, uint64_t *lost) {
  size_t i;

  *received = *lost = 0;
  for (i = 0; i < ts->ntopics; i++) {
    uint64_t r, l;
    topicset_topic_stats(ts->topics[i], &r, &l);
    *received += r;
    *lost += l;
  }
}

static struct topicset_topic *topicset_find(const struct topicset *ts, const char *name) {
  size_t i;

  for (i = 0; i < ts->ntopics; i++)
    if (strcmp(ts->topics[i]->name, name) == 0)
      return ts->topics[i];
  return NULL;
}

static struct topicset_topic *topicset_new_topic(struct topicset *ts, const char *name) {
  struct topicset_topic *t;
  size_t len = strlen(name);

  if (ts->ntopics == ts->cap) {
    size_t n = ts->cap > 0 ? ts->cap * 2 : 16;
    struct topicset_topic **nt = realloc(ts->topics, n * sizeof(*nt));
    if (nt == NULL)
      return NULL;
    ts->topics = nt;
    ts->cap = n;
  }
  if ((t = calloc(1, sizeof(*t) + len + 1)) == NULL)
    return NULL;
  t->set = ts;
  t->name = memcpy((char *)(t + 1), name, len + 1);
  t->index = ts->ntopics;
  ts->topics[ts->ntopics++] = t;
  return t;
}

static void topicset_fall_behind(struct topicset_sampler *sm);

/* Pacing: whether seqs were skipped before `seq` (the publishers lapped
 * the reader, or a dead publisher's seq was abandoned). */
static bool topicset_gap(struct topicset_sampler *sm, uint64_t seq) {
  bool gap = sm->have_seq && seq != sm->next_seq;

  sm->have_seq = true;
  sm->next_seq = seq + 1;
  return gap;
}

static void topicset_on_msg(shmbus_sub *sub, const void *data, size_t len,
                            const struct shmbus_msg_info *info, void *arg) {
  struct topicset_topic *t = arg;
  struct topicset_sampler *sm = t->sampler;

  (void)sub;
  if (t->set->stopped)
    return;
  t->set->cbs.on_msg(t, data, len, info, t->set->cbs.arg);
  /* Pacing: a second lap within a period means the publishers outrun
   * this reader while it reads. Reading on would take a CPU for ever and
   * still lose most messages; read a period's share per period instead. */
  if (sm == NULL || !sm->pacing || t->set->stopped)
    return;
  if (topicset_gap(sm, info->seq)) {
    uint64_t now = cli_now_ns();
    if (sm->lap_ns != 0 && now - sm->lap_ns < (uint64_t)t->set->pace_us * 1000u)
      topicset_fall_behind(sm);
    else
      sm->lap_ns = now;
  }
  /* More than a period's share within a period: a reader fast enough to
   * follow the publishers would load each slot line right after they
   * wrote it. Read by periods instead (the clock is read once per share). */
  if (!sm->behind && ++sm->vol_n >= t->set->pace_max) {
    uint64_t now = cli_now_ns();
    if (now - sm->vol_ns < (uint64_t)t->set->pace_us * 1000u)
      topicset_fall_behind(sm);
    sm->vol_ns = now;
    sm->vol_n = 0;
  }
}

static void topicset_on_error(shmbus_sub *sub, int code, void *arg) {
  struct topicset_topic *t = arg;

  (void)sub;
  cli_err(t->set->verb, "\"%s\": delivery stopped: %s", t->name, shmbus_strerror(code));
}

/* ---- sampling mode ------------------------------------------------------ */

static void topicset_free_handle(uv_handle_t *h) {
  free(h);
}

/* Stops waiting on the wake-up event (the watch goes; the event stays
 * the subscriber's). */
static void topicset_unwake(struct topicset_sampler *sm) {
  if (sm->wake != NULL) {
    cli_event_watch_close(sm->wake);
    sm->wake = NULL;
  }
}

static void topicset_sampler_free(struct topicset_sampler *sm) {
  if (sm == NULL)
    return;
  topicset_unwake(sm);
  free(sm->buf);
  free(sm);
}

/* Reads what is in the ring (a ring's worth at most). Returns the number
 * of messages, or a negative code (delivery stops for this topic). */
static int topicset_read(struct topicset_sampler *sm) {
  struct topicset_topic *t = sm->t;
  struct topicset *ts = t->set;
  uint32_t n;

  for (n = 0; n < sm->batch && !ts->stopped && t->sub != NULL; n++) {
    struct shmbus_msg_info info;
    int rv = shmbus_sub_try_recv(t->sub, sm->buf, sm->cap, &info);
    if (rv == -EAGAIN)
      break;
    if (rv < 0) {
      cli_err(ts->verb, "\"%s\": delivery stopped: %s", t->name, shmbus_strerror(rv));
      return rv;
    }
    ts->cbs.on_msg(t, sm->buf, (size_t)rv, &info, ts->cbs.arg);
  }
  return (int)n;
}

static void topicset_on_wake(void *arg);

/* A period without messages: sleep on the wake-up event (a publisher
 * signals it). */
static void topicset_sleep(struct topicset_sampler *sm) {
  struct topicset *ts = sm->t->set;

  if (sm->wake != NULL || sm->t->sub == NULL || shmbus_sub_arm(sm->t->sub) != 1)
    return; /* a message came meanwhile: it stays busy */
  if (cli_event_watch_start(ts->loop, shmbus_sub_fd(sm->t->sub), topicset_on_wake, sm, &sm->wake) <
      0)
    sm->wake = NULL; /* no watch: it stays busy, read every period */
}

static void topicset_on_tick(uv_timer_t *h) {
  struct topicset *ts = h->data;
  bool busy = false;
  size_t i;

  for (i = 0; i < ts->ntopics && !ts->stopped; i++) {
    struct topicset_sampler *sm = ts->topics[i]->sampler;
    int n;
    if (sm == NULL || sm->wake != NULL || ts->topics[i]->sub == NULL)
      continue;
    if ((n = topicset_read(sm)) > 0)
      busy = true;
    else if (n == 0)
      topicset_sleep(sm);
    if (sm->wake == NULL && n >= 0)
      busy = true;
  }
  if (!busy || ts->stopped)
    (void)uv_timer_stop(h);
}

/* Reads every period from now on (the timer runs while a topic is busy). */
static void topicset_busy(struct topicset *ts) {
  if (!ts->stopped && !uv_is_active((uv_handle_t *)ts->tick))
    (void)uv_timer_start(ts->tick, topicset_on_tick, ts->sample_ms, ts->sample_ms);
}

static void topicset_on_wake(void *arg) {
  struct topicset_sampler *sm = arg;

  /* The event is reset (cli_event_watch_start): read at once and go on
   * with the periods. */
  topicset_unwake(sm);
  (void)topicset_read(sm);
  topicset_busy(sm->t->set);
}

/* The set's timer, for sampling or pacing mode: 0 or -ENOMEM. */
static int topicset_tick_init(struct topicset *ts) {
  if ((ts->tick = malloc(sizeof(*ts->tick))) == NULL)
    return -ENOMEM;
  if (uv_timer_init(ts->loop, ts->tick) < 0) {
    free(ts->tick);
    ts->tick = NULL;
    return -ENOMEM;
  }
  ts->tick->data = ts;
  return 0;
}

int topicset_sample(struct topicset *ts, unsigned ms) {
  if (ms == 0 || ms > 1000 || ts->tick != NULL)
    return -EINVAL;
  if (topicset_tick_init(ts) != 0)
    return -ENOMEM;
  ts->sample_ms = ms;
  return 0;
}

/* ---- pacing mode ------------------------------------------------------- */

/* Reads a topic that fell behind: what the ring holds, until the
 * publishers lap the reader again (a seq gap after the first message of
 * the period: the first one's gap is the period's own loss). Returns 1
 * when the reader can keep up again, 0 when it is still behind, or a
 * negative code (delivery stops for this topic).
 *
 * Keeping up: the period's reading found nothing more (the publishers
 * paused, or they are slow), and reading everything they published since
 * the last period would have taken this reader less than a tenth of the
 * period at the speed it just read. A reader that needs more than that
 * follows them closely while it can, its loads on the very slot lines
 * they write next; and a publisher that was only descheduled for a
 * moment would otherwise hand the reader back to libuv, to be chased
 * and lapped again. */
static int topicset_read_paced(struct topicset_sampler *sm) {
  struct topicset_topic *t = sm->t;
  struct topicset *ts = t->set;
  uint64_t t0 = cli_now_ns();
  uint64_t since = sm->period_seq;
  uint32_t n;

  for (n = 0; n < ts->pace_max; n++) {
    struct shmbus_msg_info info;
    bool gap;
    int rv;
    if (ts->stopped || t->sub == NULL)
      return 0;
    if ((rv = shmbus_sub_try_recv(t->sub, sm->buf, sm->cap, &info)) == -EAGAIN) {
      uint64_t took = cli_now_ns() - t0;
      uint64_t published = sm->next_seq - since;
      sm->period_seq = sm->next_seq;
      /* published * (took / n) < period / 10, without a division. */
      return n == 0 || published * took < (uint64_t)n * ts->pace_us * 100u ? 1 : 0;
    }
    if (rv < 0) {
      cli_err(ts->verb, "\"%s\": delivery stopped: %s", t->name, shmbus_strerror(rv));
      return rv;
    }
    gap = topicset_gap(sm, info.seq);
    ts->cbs.on_msg(t, sm->buf, (size_t)rv, &info, ts->cbs.arg);
    if (gap && n > 0)
      break;
  }
  sm->period_seq = sm->next_seq;
  return 0;
}

/* Hands a topic that caught up back to libuv's delivery. */
static int topicset_deliver(struct topicset_topic *t) {
  struct topicset *ts = t->set;
  int rv;

  if ((rv = shmbus_uv_sub_start(t->sub, ts->loop, topicset_on_msg, t)) < 0 ||
      (rv = shmbus_uv_sub_on_error(t->sub, topicset_on_error)) < 0) {
    cli_err(ts->verb, "cannot deliver \"%s\" from the loop: %s", t->name, shmbus_strerror(rv));
    return rv;
  }
  return 0;
}

static void topicset_on_pace(uv_timer_t *h) {
  struct topicset *ts = h->data;
  bool behind = false;
  size_t i;

  for (i = 0; i < ts->ntopics && !ts->stopped; i++) {
    struct topicset_sampler *sm = ts->topics[i]->sampler;
    int rv;
    if (sm == NULL || !sm->behind || ts->topics[i]->sub == NULL)
      continue;
    if ((rv = topicset_read_paced(sm)) == 0) {
      behind = true;
      continue;
    }
    /* Caught up (or failed: then delivery stops for this topic, as
     * libuv's does on an error). */
    sm->behind = false;
    sm->lap_ns = 0;
    sm->vol_ns = cli_now_ns();
    sm->vol_n = 0;
    if (rv == 1 && !ts->stopped)
      (void)topicset_deliver(ts->topics[i]);
  }
  if (!behind || ts->stopped)
    (void)uv_timer_stop(h);
}

/* From libuv's delivery callback: stop it (once the callback returned)
 * and read the topic from the timer. */
static void topicset_fall_behind(struct topicset_sampler *sm) {
  struct topicset *ts = sm->t->set;
  uint64_t ms = (ts->pace_us + 999u) / 1000u;

  (void)shmbus_uv_sub_stop(sm->t->sub);
  sm->behind = true;
  sm->period_seq = sm->next_seq;
  if (!uv_is_active((uv_handle_t *)ts->tick))
    (void)uv_timer_start(ts->tick, topicset_on_pace, ms, ms);
}

int topicset_pace(struct topicset *ts, unsigned us) {
  if (us == 0 || us > 60000000u || ts->tick != NULL)
    return -EINVAL;
  if (topicset_tick_init(ts) != 0)
    return -ENOMEM;
  ts->pace_us = us;
  ts->pace_max = (uint32_t)((uint64_t)us * TOPICSET_PACE_RATE / 1000000u);
  if (ts->pace_max == 0)
    ts->pace_max = 1;
  return 0;
}

/* Starts reading a new subscriber in sampling mode. */
static int topicset_sampler_start(struct topicset *ts, struct topicset_topic *t) {
  struct topicset_sampler *sm = calloc(1, sizeof(*sm));

  if (sm == NULL)
    return -ENOMEM;
  sm->t = t;
  sm->cap = shmbus_sub_max_size(t->sub);
  if ((sm->buf = malloc(sm->cap > 0 ? sm->cap : 1)) == NULL) {
    free(sm);
    return -ENOMEM;
  }
  sm->batch = 1u << 16; /* a period's reading is bounded, a ring's slots or this */
  t->sampler = sm;
  if (ts->pace_us > 0)
    sm->pacing = true; /* libuv delivers; the timer reads only once it fell behind */
  else
    topicset_busy(ts);
  return 0;
}

/* Subscribes to topic `name` (found by a watch or named literally). */
static int topicset_subscribe(struct topicset *ts, const char *name, bool literal, bool late) {
  struct topicset_topic *t = topicset_find(ts, name);
  struct shmbus_sub_opts so = ts->so;
  int rv;

  if (t != NULL && t->sub != NULL)
    return 0; /* matched by another pattern too */
  if (!literal)
    memset(&so.topic, 0, sizeof(so.topic)); /* take the topic as it is */
  if (late)
    so.history = TOPICSET_WHOLE_RING;
  if (t == NULL && (t = topicset_new_topic(ts, name)) == NULL) {
    cli_err(ts->verb, "out of memory");
    return -ENOMEM;
  }
  if ((rv = shmbus_sub_open(ts->bus, name, &so, &t->sub)) < 0) {
    t->sub = NULL;
    cli_fail(ts->verb, ts->bus, rv, "cannot subscribe to \"%s\"", name);
    return rv;
  }
  if (ts->sample_ms > 0 && !so.reliable) {
    if ((rv = topicset_sampler_start(ts, t)) < 0) {
      cli_err(ts->verb, "out of memory for \"%s\"", name);
      shmbus_sub_close(t->sub);
      t->sub = NULL;
      return rv;
    }
  } else {
    /* Pacing: the pacer first, so that it is there for the first
     * message libuv delivers. */
    if (ts->pace_us > 0 && !so.reliable && (rv = topicset_sampler_start(ts, t)) < 0) {
      cli_err(ts->verb, "out of memory for \"%s\"", name);
      shmbus_sub_close(t->sub);
      t->sub = NULL;
      return rv;
    }
    if ((rv = topicset_deliver(t)) < 0) {
      topicset_sampler_free(t->sampler);
      t->sampler = NULL;
      shmbus_sub_close(t->sub);
      t->sub = NULL;
      return rv;
    }
  }
  if (ts->cbs.on_topic != NULL)
    ts->cbs.on_topic(t, true, ts->cbs.arg);
  return 0;
}

/* A topic was removed by name: its subscriber is on the old, nameless
 * topic now. Keep its counts, let it go; a new topic of the name will
 * appear again. */
static void topicset_unsubscribe(struct topicset *ts, const char *name) {
  struct topicset_topic *t = topicset_find(ts, name);
  struct shmbus_sub_stats st;

  if (t == NULL || t->sub == NULL)
    return;
  shmbus_sub_stats(t->sub, &st);
  t->received += st.received;
  t->lost += st.lost;
  topicset_sampler_free(t->sampler);
  t->sampler = NULL;
  shmbus_sub_close(t->sub);
  t->sub = NULL;
  if (ts->cbs.on_topic != NULL)
    ts->cbs.on_topic(t, false, ts->cbs.arg);
}

static void topicset_on_change(shmbus_watch *w, const struct shmbus_topic_event *ev, void *arg) {
  struct topicset_watch *tw = arg;

  (void)w;
  if (tw->set->stopped)
    return;
  if (ev->change == SHMBUS_TOPIC_APPEARED)
    (void)topicset_subscribe(tw->set, ev->topic, false, true);
  else
    topicset_unsubscribe(tw->set, ev->topic);
}

int topicset_open(struct topicset **out, shmbus_bus *bus, uv_loop_t *loop, const char *verb,
                  const struct shmbus_sub_opts *so, const struct topicset_cbs *cbs) {
  struct topicset *ts;
  int rv;

  if ((rv = shmbus_uv_bus_start(bus, loop)) < 0 && rv != SHMBUS_ESTATE) {
    cli_err(verb, "cannot watch the bus from the loop: %s", shmbus_strerror(rv));
    return rv;
  }
  if ((ts = calloc(1, sizeof(*ts))) == NULL) {
    cli_err(verb, "out of memory");
    return -ENOMEM;
  }
  ts->bus = bus;
  ts->loop = loop;
  ts->verb = verb;
  if (so != NULL)
    ts->so = *so;
  ts->cbs = *cbs;
  *out = ts;
  return 0;
}

int topicset_add(struct topicset *ts, const char *pattern) {
  struct topicset_watch **nw;
  struct topicset_watch *tw;
  struct shmbus_topic_event ev;
  int rv;

  if (!topicset_is_pattern(pattern))
    return topicset_subscribe(ts, pattern, true, false);
  if ((rv = shmbus_pattern_check(pattern)) < 0) {
    cli_err(ts->verb,
            "\"%s\" is not a topic pattern: segments are names, '*' (one segment) or '**' (any "
            "number); e.g. sensors/*/temp, sensors/**",
            pattern);
    return rv;
  }
  if ((nw = realloc(ts->watches, (ts->nwatches + 1) * sizeof(*nw))) == NULL) {
    cli_err(ts->verb, "out of memory");
    return -ENOMEM;
  }
  ts->watches = nw;
  tw = calloc(1, sizeof(*tw));
  if (tw == NULL) {
    cli_err(ts->verb, "out of memory");
    return -ENOMEM;
  }
  tw->set = ts;
  if ((rv = shmbus_watch_open(ts->bus, pattern, &tw->w)) < 0) {
    if (rv == -EPROTO)
      cli_fail(ts->verb, ts->bus, rv,
               "cannot watch \"%s\" (does the daemon predate topic discovery? it needs shmbusd "
               "0.2 or later)",
               pattern);
    else
      cli_fail(ts->verb, ts->bus, rv, "cannot watch \"%s\"", pattern);
    free(tw);
    return rv;
  }
  /* What exists now: subscribed here, with the caller's history. */
  while (shmbus_watch_next(tw->w, &ev, 0) == 0)
    if (ev.change == SHMBUS_TOPIC_APPEARED)
      (void)topicset_subscribe(ts, ev.topic, false, false);
  if ((rv = shmbus_uv_watch_start(tw->w, ts->loop, topicset_on_change, tw)) < 0) {
    cli_err(ts->verb, "cannot watch \"%s\" from the loop: %s", pattern, shmbus_strerror(rv));
    shmbus_watch_close(tw->w);
    free(tw);
    return rv;
  }
  ts->watches[ts->nwatches++] = tw;
  return 0;
}

void topicset_stop(struct topicset *ts) {
  size_t i;

  if (ts == NULL || ts->stopped)
    return;
  ts->stopped = true;
  if (ts->tick != NULL)
    (void)uv_timer_stop(ts->tick);
  for (i = 0; i < ts->ntopics; i++) {
    if (ts->topics[i]->sampler != NULL)
      topicset_unwake(ts->topics[i]->sampler);
    /* Sampled topics were never started: a no-op for them. */
    if (ts->topics[i]->sub != NULL)
      (void)shmbus_uv_sub_stop(ts->topics[i]->sub);
  }
}

void topicset_close(struct topicset *ts) {
  size_t i;

  if (ts == NULL)
    return;
  topicset_stop(ts);
  for (i = 0; i < ts->nwatches; i++) {
    shmbus_watch_close(ts->watches[i]->w);
    free(ts->watches[i]);
  }
  for (i = 0; i < ts->ntopics; i++) {
    topicset_sampler_free(ts->topics[i]->sampler);
    shmbus_sub_close(ts->topics[i]->sub);
    free(ts->topics[i]);
  }
  if (ts->tick != NULL)
    uv_close((uv_handle_t *)ts->tick, topicset_free_handle);
  free(ts->watches);
  free(ts->topics);
  free(ts);
}

static void topicset_close_one(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

void cli_loop_close(uv_loop_t *loop) {
  /* Close first, then run: a handle still open is the verb's (on its
   * stack or in its structs: nothing to free), and none of its callbacks
   * may run any more (what they used may be gone). Handles the library
   * is closing already finish in the same run. */
  uv_walk(loop, topicset_close_one, NULL);
  (void)uv_run(loop, UV_RUN_DEFAULT);
  (void)uv_loop_close(loop);
}
