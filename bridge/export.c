/* export: local topics matching the --export patterns, present and future
 * (one watch per pattern), each read by a lossy subscriber from the loop
 * and published to its NATS subject with the bridge's headers. A message
 * our own importer published on the topic (its publisher id is the
 * importer's) is not sent back. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge.h"

/* The history of a subscriber to a topic that appeared after the start:
 * everything still in its ring (the library clamps it), so a publisher
 * that creates a topic and publishes at once loses nothing to the time
 * the watch takes. */
#define EXPORT_WHOLE_RING (1u << 24)

void bridge_spent_free(struct bridge *b) {
  size_t i;

  for (i = 0; i < b->nspent; i++)
    natsMsg_Destroy(b->spent[i]);
  b->nspent = 0;
  b->spent_bytes = 0;
}

void bridge_spent_add(struct bridge *b, natsMsg *m, size_t len) {
  if (bridge_msg_free_direct()) {
    bridge_msg_free(m); /* no collector thread: at once, while it is in the cache */
    return;
  }
  b->spent[b->nspent++] = m;
  b->spent_bytes += len;
  if (b->nspent == BRIDGE_SPENT_MAX || b->spent_bytes >= BRIDGE_SPENT_BYTES)
    bridge_spent_free(b);
}

/* Whether reading may go on: libnats's output buffer holds at most `max`
 * bytes, or the connection is not up (publishes then go to libnats's
 * reconnect buffer, which has a bound of its own: export_failed). */
static bool export_buffer_below(struct bridge *b, size_t max) {
  int n;

  if (atomic_load_explicit(&b->nats_state, memory_order_relaxed) != NATS_CONNECTED)
    return true;
  n = natsConnection_Buffered(b->nc);
  return n < 0 || (size_t)n <= max;
}

static void export_on_msg(shmbus_sub *sub, const void *data, size_t len,
                          const struct shmbus_msg_info *info, void *arg);
static void export_on_error(shmbus_sub *sub, int code, void *arg);

/* The loop, after its I/O phase (or the safety timer): reading starts
 * again once the buffer has drained. */
static void export_resume_maybe(struct bridge *b) {
  size_t i;

  if (b->export_nwaiting == 0 || b->stopping || !export_buffer_below(b, BRIDGE_EXPORT_LOW))
    return;
  for (i = 0; i < b->ntopics; i++) {
    struct bridge_topic *t = b->topics[i];
    int rv;
    if (!t->export_waiting)
      continue;
    t->export_waiting = false;
    if (t->sub == NULL)
      continue;
    /* What the ring overwrote meanwhile counts as the subscriber's loss. */
    if ((rv = shmbus_uv_sub_start(t->sub, b->loop, export_on_msg, t)) < 0 ||
        (rv = shmbus_uv_sub_on_error(t->sub, export_on_error)) < 0)
      bridge_log("export of \"%s\" stopped: cannot read it again: %s", t->name,
                 shmbus_strerror(rv));
  }
  b->export_nwaiting = 0;
  (void)uv_check_stop(b->export_check);
  (void)uv_timer_stop(b->export_timer);
}

static void export_on_check(uv_check_t *c) {
  export_resume_maybe(c->data);
}

static void export_on_timer(uv_timer_t *tm) {
  export_resume_maybe(tm->data);
}

/* From t's message callback: stops reading t while libnats's buffer holds
 * more than BRIDGE_EXPORT_HIGH. */
static void export_wait_maybe(struct bridge_topic *t) {
  struct bridge *b = t->b;

  if (t->export_waiting || b->export_check == NULL || export_buffer_below(b, BRIDGE_EXPORT_HIGH))
    return;
  /* From its own callback: takes effect when the callback returns. */
  if (shmbus_uv_sub_stop(t->sub) < 0)
    return;
  t->export_waiting = true;
  t->export_waits++;
  if (b->export_nwaiting++ == 0) {
    (void)uv_check_start(b->export_check, export_on_check);
    (void)uv_timer_start(b->export_timer, export_on_timer, BRIDGE_EXPORT_RECHECK_MS,
                         BRIDGE_EXPORT_RECHECK_MS);
  }
}

static void export_on_msg(shmbus_sub *sub, const void *data, size_t len,
                          const struct shmbus_msg_info *info, void *arg) {
  struct bridge_topic *t = arg;
  struct bridge *b = t->b;
  struct bridge_hdr h;
  natsMsg *m = NULL;
  natsStatus s;

  (void)sub;
  if (b->stopping)
    return;
  /* What our importer brought in stays here. */
  if (t->pub != NULL && info->pub_id == shmbus_pub_id(t->pub)) {
    t->skipped_own++;
    return;
  }
  if (b->o.reliable) {
    /* A restarted exporter: what the stream has already (but a window,
     * de-duplicated by the server) is not sent again. */
    if (t->resume_check) {
      /* The first message since the restart: what lies between the
       * stream's last and it was overwritten in the ring while no exporter
       * read the topic (nothing held its publishers back). Counted lost. */
      t->resume_check = false;
      if (info->seq > t->resume_last + 1) {
        uint64_t gap = info->seq - t->resume_last - 1;
        t->export_lost += gap;
        bridge_log("\"%s\": seqs %" PRIu64 " to %" PRIu64 " were overwritten in the ring while "
                   "no exporter read it: %" PRIu64 " messages lost (counted in export_lost)",
                   t->name, t->resume_last + 1, info->seq - 1, gap);
      }
    }
    if (info->seq < t->resume_from)
      return;
    if (bridge_js_export(t, data, len, info) < 0)
      t->export_failed++;
    else
      t->exported++;
    return;
  }
  strcpy(h.origin, b->o.name);
  strcpy(h.topic, t->name);
  h.seq = info->seq;
  bridge_clock_update(&b->clock, uv_now(b->loop));
  h.ts_ns = bridge_clock_to_real(&b->clock, info->ts_ns);
  if (bridge_hdr_msg(&m, t->subject, &h, NULL, data, len, &b->hbuf) < 0) {
    t->export_failed++;
    return;
  }
  s = natsConnection_PublishMsg(b->nc, m);
  bridge_spent_add(b, m, len);
  if (s != NATS_OK)
    t->export_failed++;
  else
    t->exported++;
  b->export_unchecked += len + 128; /* the header block and HPUB line, about */
  if (b->export_unchecked >= BRIDGE_EXPORT_CHECK) {
    b->export_unchecked = 0;
    export_wait_maybe(t);
  }
}

static void export_on_error(shmbus_sub *sub, int code, void *arg) {
  struct bridge_topic *t = arg;

  (void)sub;
  bridge_log("export of \"%s\" stopped: %s", t->name, shmbus_strerror(code));
}

static int export_reliable_start(struct bridge *b, struct bridge_topic *t);
static void export_reliable_stop(struct bridge_topic *t);

static void export_subscribe(struct bridge *b, const char *name, bool late) {
  struct shmbus_sub_opts so;
  struct bridge_topic *t;
  int rv;

  if ((t = bridge_topic_get(b, name)) == NULL) {
    bridge_log("cannot export \"%s\": out of memory", name);
    return;
  }
  if (t->sub != NULL)
    return; /* matched by another pattern too */
  memset(&so, 0, sizeof(so));
  so.history = late ? EXPORT_WHOLE_RING : 0;
  if (b->o.reliable) {
    /* A reliable subscriber: the topic's publishers wait for the bridge
     * (and so for JetStream's window) instead of overwriting. After a
     * restart, from the first message the stream may not have. */
    so.reliable = true;
    if (bridge_js_last_seq(b, t, &t->resume_last)) {
      /* Again from the last one stored, less a window: what the previous
       * exporter had in flight (the server drops what it has). */
      t->resume_from =
          t->resume_last >= BRIDGE_JS_WINDOW ? t->resume_last + 1 - BRIDGE_JS_WINDOW : 0;
      t->resume_check = true;
      so.history = EXPORT_WHOLE_RING;
      bridge_log("\"%s\": the stream has it up to seq %" PRIu64 " at least; sending again from "
                 "%" PRIu64 " (what the ring still holds)",
                 name, t->resume_last, t->resume_from);
    }
  }
  if ((rv = shmbus_sub_open(b->bus, name, &so, &t->sub)) < 0) {
    t->sub = NULL;
    bridge_log("cannot subscribe to \"%s\": %s", name, shmbus_strerror(rv));
    return;
  }
  if (b->o.reliable) {
    if ((rv = export_reliable_start(b, t)) < 0) {
      bridge_log("cannot read \"%s\" from the loop: %s", name, shmbus_strerror(rv));
      export_reliable_stop(t);
      shmbus_sub_close(t->sub);
      t->sub = NULL;
      return;
    }
  } else if ((rv = shmbus_uv_sub_start(t->sub, b->loop, export_on_msg, t)) < 0 ||
             (rv = shmbus_uv_sub_on_error(t->sub, export_on_error)) < 0) {
    bridge_log("cannot read \"%s\" from the loop: %s", name, shmbus_strerror(rv));
    shmbus_sub_close(t->sub);
    t->sub = NULL;
    return;
  }
  bridge_log("exporting \"%s\" to %s%s", name, t->subject, b->o.reliable ? " (reliable)" : "");
}

/* --reliable: the topic is read here rather than by shmbus_uv_sub_start,
 * so that reading can stop while JetStream's window is full and go on
 * when it is not: what stays unread holds the topic's publishers back. */
void bridge_export_drain(struct bridge_topic *t) {
  struct bridge *b = t->b;
  struct shmbus_msg_info info;
  int rv;

  while (t->sub != NULL && !b->stopping &&
         !atomic_load_explicit(&b->js_paused, memory_order_acquire)) {
    rv = shmbus_sub_try_recv(t->sub, t->buf, t->bufcap, &info);
    if (rv == -EAGAIN) {
      if ((rv = shmbus_sub_arm(t->sub)) == 1)
        return; /* a publisher signals the event */
      if (rv == 0)
        continue;
    }
    if (rv < 0) {
      bridge_log("export of \"%s\" stopped: %s", t->name, shmbus_strerror(rv));
      (void)uv_poll_stop(t->poll);
      return;
    }
    export_on_msg(t->sub, t->buf, (size_t)rv, &info, t);
  }
}

static void export_on_poll(uv_poll_t *p, int status, int events) {
  struct bridge_topic *t = p->data;
  uint64_t v;

  (void)events;
  if (status < 0) {
    bridge_log("export of \"%s\" stopped: %s", t->name, uv_strerror(status));
    (void)uv_poll_stop(p);
    return;
  }
  /* Reset the event (a non-blocking eventfd), then read. */
  while (read(shmbus_sub_fd(t->sub), &v, sizeof(v)) > 0) {
  }
  bridge_export_drain(t);
}

/* Opens the reliable reading of t->sub. Returns 0 or a negative code. */
static int export_reliable_start(struct bridge *b, struct bridge_topic *t) {
  t->bufcap = shmbus_sub_max_size(t->sub);
  if ((t->buf = malloc(t->bufcap > 0 ? t->bufcap : 1)) == NULL ||
      (t->poll = calloc(1, sizeof(*t->poll))) == NULL)
    return -ENOMEM;
  if (uv_poll_init(b->loop, t->poll, shmbus_sub_fd(t->sub)) != 0) {
    free(t->poll);
    t->poll = NULL;
    return -EIO;
  }
  t->poll->data = t;
  if (uv_poll_start(t->poll, UV_READABLE, export_on_poll) != 0)
    return -EIO;
  bridge_export_drain(t);
  return 0;
}

/* Closes what export_reliable_start opened (before the subscriber). */
static void export_reliable_stop(struct bridge_topic *t) {
  if (t->poll != NULL)
    uv_close((uv_handle_t *)t->poll, (uv_close_cb)free);
  t->poll = NULL;
  free(t->buf);
  t->buf = NULL;
}

/* A topic whose reading waits for libnats's buffer holds unread messages
 * that its subscriber counts neither received nor lost until it reads
 * again. When the topic goes (or the bridge ends) they are counted lost
 * here, in place (no copy), so that exported + lost == published holds
 * at the end too. Those a publisher overwrites meanwhile the library
 * counts itself (shmbus_sub_view_end's SHMBUS_EOVERRUN). */
static void export_discard_unread(struct bridge_topic *t) {
  struct shmbus_view v;

  if (!t->export_waiting || t->sub == NULL)
    return;
  while (shmbus_sub_view(t->sub, &v) == 0)
    if (shmbus_sub_view_end(t->sub, &v) == 0)
      t->export_lost++;
}

void bridge_export_discard_waiting(struct bridge *b) {
  size_t i;

  for (i = 0; i < b->ntopics; i++)
    export_discard_unread(b->topics[i]);
}

static void export_unsubscribe(struct bridge *b, const char *name) {
  struct bridge_topic *t = bridge_topic_find(b, name);
  struct shmbus_sub_stats st;

  if (t == NULL || t->sub == NULL)
    return;
  if (t->export_waiting) {
    export_discard_unread(t);
    t->export_waiting = false;
    if (--b->export_nwaiting == 0) {
      (void)uv_check_stop(b->export_check);
      (void)uv_timer_stop(b->export_timer);
    }
  }
  shmbus_sub_stats(t->sub, &st);
  t->export_lost += st.lost;
  export_reliable_stop(t);
  shmbus_sub_close(t->sub);
  t->sub = NULL;
  bridge_log("\"%s\" went away: no longer exported", name);
}

static void export_on_change(shmbus_watch *w, const struct shmbus_topic_event *ev, void *arg) {
  struct bridge *b = arg;

  (void)w;
  if (b->stopping)
    return;
  if (ev->change == SHMBUS_TOPIC_APPEARED)
    export_subscribe(b, ev->topic, true);
  else
    export_unsubscribe(b, ev->topic);
}

static void export_free_handle(uv_handle_t *h) {
  free(h);
}

int bridge_export_start(struct bridge *b) {
  int i, rv;

  if (b->o.nexports == 0)
    return 0;
  if (!b->o.reliable) {
    /* Waiting for libnats's output buffer (BRIDGE_EXPORT_HIGH). Neither
     * handle keeps the loop running by itself. */
    uv_check_t *c = malloc(sizeof(*c));
    uv_timer_t *tm = malloc(sizeof(*tm));
    if (c == NULL || tm == NULL || uv_check_init(b->loop, c) != 0) {
      free(c);
      free(tm);
      return -ENOMEM;
    }
    c->data = b;
    uv_unref((uv_handle_t *)c);
    b->export_check = c;
    if (uv_timer_init(b->loop, tm) != 0) {
      free(tm);
      return -ENOMEM;
    }
    tm->data = b;
    uv_unref((uv_handle_t *)tm);
    b->export_timer = tm;
  }
  if ((b->watches = calloc((size_t)b->o.nexports, sizeof(*b->watches))) == NULL)
    return -ENOMEM;
  for (i = 0; i < b->o.nexports; i++) {
    struct shmbus_topic_event ev;
    shmbus_watch *w;
    if ((rv = shmbus_watch_open(b->bus, b->o.exports[i], &w)) < 0) {
      bridge_log("cannot watch \"%s\": %s", b->o.exports[i], shmbus_strerror(rv));
      return rv;
    }
    b->watches[b->nwatches++] = w;
    /* What exists now: from now on (no history). */
    while (shmbus_watch_next(w, &ev, 0) == 0)
      if (ev.change == SHMBUS_TOPIC_APPEARED)
        export_subscribe(b, ev.topic, false);
    if ((rv = shmbus_uv_watch_start(w, b->loop, export_on_change, b)) < 0) {
      bridge_log("cannot watch \"%s\" from the loop: %s", b->o.exports[i], shmbus_strerror(rv));
      return rv;
    }
  }
  return 0;
}

void bridge_export_stop(struct bridge *b) {
  size_t i;

  for (i = 0; i < b->nwatches; i++)
    shmbus_watch_close(b->watches[i]);
  free(b->watches);
  b->watches = NULL;
  b->nwatches = 0;
  if (b->export_check != NULL)
    uv_close((uv_handle_t *)b->export_check, export_free_handle);
  if (b->export_timer != NULL)
    uv_close((uv_handle_t *)b->export_timer, export_free_handle);
  b->export_check = NULL;
  b->export_timer = NULL;
  b->export_nwaiting = 0;
  bridge_spent_free(b);
  bridge_hdr_buf_free(&b->hbuf);
  for (i = 0; i < b->ntopics; i++) {
    struct bridge_topic *t = b->topics[i];
    if (t->sub != NULL) {
      struct shmbus_sub_stats st;
      shmbus_sub_stats(t->sub, &st);
      t->export_lost += st.lost;
      export_reliable_stop(t);
      shmbus_sub_close(t->sub);
      t->sub = NULL;
    }
  }
}
