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

#include "bridge.h"

/* The history of a subscriber to a topic that appeared after the start:
 * everything still in its ring (the library clamps it), so a publisher
 * that creates a topic and publishes at once loses nothing to the time
 * the watch takes. */
#define EXPORT_WHOLE_RING (1u << 24)

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
  if (natsMsg_Create(&m, t->subject, NULL, data, (int)len) != NATS_OK) {
    t->export_failed++;
    return;
  }
  memset(&h, 0, sizeof(h));
  strcpy(h.origin, b->o.name);
  strcpy(h.topic, t->name);
  h.seq = info->seq;
  h.ts_ns = info->ts_ns;
  if (bridge_hdr_set(m, &h, NULL) < 0) {
    natsMsg_Destroy(m);
    t->export_failed++;
    return;
  }
  s = natsConnection_PublishMsg(b->nc, m);
  natsMsg_Destroy(m);
  if (s != NATS_OK)
    t->export_failed++;
  else
    t->exported++;
}

static void export_on_error(shmbus_sub *sub, int code, void *arg) {
  struct bridge_topic *t = arg;

  (void)sub;
  bridge_log("export of \"%s\" stopped: %s", t->name, shmbus_strerror(code));
}

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
  if ((rv = shmbus_sub_open(b->bus, name, &so, &t->sub)) < 0) {
    t->sub = NULL;
    bridge_log("cannot subscribe to \"%s\": %s", name, shmbus_strerror(rv));
    return;
  }
  if ((rv = shmbus_uv_sub_start(t->sub, b->loop, export_on_msg, t)) < 0 ||
      (rv = shmbus_uv_sub_on_error(t->sub, export_on_error)) < 0) {
    bridge_log("cannot read \"%s\" from the loop: %s", name, shmbus_strerror(rv));
    shmbus_sub_close(t->sub);
    t->sub = NULL;
    return;
  }
  bridge_log("exporting \"%s\" to %s", name, t->subject);
}

static void export_unsubscribe(struct bridge *b, const char *name) {
  struct bridge_topic *t = bridge_topic_find(b, name);
  struct shmbus_sub_stats st;

  if (t == NULL || t->sub == NULL)
    return;
  shmbus_sub_stats(t->sub, &st);
  t->export_lost += st.lost;
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

int bridge_export_start(struct bridge *b) {
  int i, rv;

  if (b->o.nexports == 0)
    return 0;
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
  for (i = 0; i < b->ntopics; i++) {
    struct bridge_topic *t = b->topics[i];
    if (t->sub != NULL) {
      struct shmbus_sub_stats st;
      shmbus_sub_stats(t->sub, &st);
      t->export_lost += st.lost;
      shmbus_sub_close(t->sub);
      t->sub = NULL;
    }
  }
}
