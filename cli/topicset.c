/* topicset: subscriptions to a set of patterns. See topicset.h. */
#include "topicset.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The history of a subscriber to a topic that appeared after the start:
 * everything still in its ring (the library clamps it to the ring). */
#define TOPICSET_WHOLE_RING (1u << 24)

struct topicset_watch {
  struct topicset *set;
  shmbus_watch *w;
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

static void topicset_on_msg(shmbus_sub *sub, const void *data, size_t len,
                            const struct shmbus_msg_info *info, void *arg) {
  struct topicset_topic *t = arg;

  (void)sub;
  if (t->set->stopped)
    return;
  t->set->cbs.on_msg(t, data, len, info, t->set->cbs.arg);
}

static void topicset_on_error(shmbus_sub *sub, int code, void *arg) {
  struct topicset_topic *t = arg;

  (void)sub;
  cli_err(t->set->verb, "\"%s\": delivery stopped: %s", t->name, shmbus_strerror(code));
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
  if ((rv = shmbus_uv_sub_start(t->sub, ts->loop, topicset_on_msg, t)) < 0 ||
      (rv = shmbus_uv_sub_on_error(t->sub, topicset_on_error)) < 0) {
    cli_err(ts->verb, "cannot deliver \"%s\" from the loop: %s", name, shmbus_strerror(rv));
    shmbus_sub_close(t->sub);
    t->sub = NULL;
    return rv;
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
  for (i = 0; i < ts->ntopics; i++)
    if (ts->topics[i]->sub != NULL)
      (void)shmbus_uv_sub_stop(ts->topics[i]->sub);
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
    shmbus_sub_close(ts->topics[i]->sub);
    free(ts->topics[i]);
  }
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
