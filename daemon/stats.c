/* stats: $sys/stats, published once a second while subscribed. See
 * stats.h. */
#include "stats.h"

#include <errno.h>
#include <msgpack.h>
#include <string.h>

#include "host.h"
#include "log.h"
#include "platform/platform.h"
#include "proto.h"
#include "shmbus/error.h"

/* Room kept at the end of the slot for the "truncated" entry (10 + 1
 * bytes), so it always fits after the topics. */
#define STATS_TAIL 16u

/* A fixed buffer for the msgpack packer: the loaned slot itself, so a
 * snapshot costs no heap. Writes that do not fit set `overflow` and are
 * dropped; the caller rolls back to the last whole topic. */
struct stats_buf {
  unsigned char *p;
  size_t len;
  size_t cap;
  bool overflow;
};

static int stats_write(void *data, const char *buf, size_t len) {
  struct stats_buf *b = data;

  if (b->overflow || len > b->cap - b->len) {
    b->overflow = true;
    return -1;
  }
  memcpy(b->p + b->len, buf, len);
  b->len += len;
  return 0;
}

static void stats_key(msgpack_packer *pk, const char *k) {
  (void)msgpack_pack_str_with_body(pk, k, strlen(k));
}

static void stats_kv_u64(msgpack_packer *pk, const char *k, uint64_t v) {
  stats_key(pk, k);
  (void)msgpack_pack_uint64(pk, v);
}

static uint64_t stats_clamp(uint64_t v, uint64_t max) {
  return v > max ? max : v;
}

/* The participant's name: its client's, "shmbusd" for the daemon's own
 * record, "" for a record whose owner has not come back after a restart. */
static void stats_name(msgpack_packer *pk, const struct registry_part *p) {
  const char *name = p->name != NULL                                            ? p->name
                     : p->client_id == 0 && p->pid == (uint32_t)host_self_pid() ? "shmbusd"
                                                                                : "";
  stats_key(pk, "name");
  (void)msgpack_pack_str_with_body(pk, name, strlen(name));
}

/* Who a participant is (index, pid, client, name), or only its index for
 * a viewer that may not know. */
static void stats_who(msgpack_packer *pk, const struct registry_part *p,
                      const struct stats_view *v) {
  stats_kv_u64(pk, "index", p->index);
  if (v == NULL || v->part == NULL || v->part(v->ctx, p)) {
    stats_kv_u64(pk, "pid", p->pid);
    stats_kv_u64(pk, "client", p->client_id);
    stats_name(pk, p);
    return;
  }
  stats_kv_u64(pk, "pid", 0);
  stats_kv_u64(pk, "client", 0);
  stats_key(pk, "name");
  (void)msgpack_pack_str_with_body(pk, "", 0);
}

static uint64_t stats_members(const struct shmbus__ring *r) {
  uint64_t n = 0;
  uint32_t m;
  for (m = 0; m < r->n_members; m++)
    n += r->members[m].hdr != NULL;
  return n;
}

/* Packs one topic. Counters read from shared memory are clamped: nobody
 * can have published, received or lost more than the head says. */
static void stats_pack_topic(msgpack_packer *pk, const struct registry_topic *t,
                             const struct stats_view *v) {
  const struct shmbus__ring *r = &t->region.ring;
  uint64_t head = shmbus__ring_head(r);
  const struct registry_part *p;

  bool repair = t->fixing != NULL || t->dying != NULL;

  (void)msgpack_pack_map(pk, repair ? 12 : 11);
  stats_key(pk, "name");
  (void)msgpack_pack_str_with_body(pk, t->name, strlen(t->name));
  /* Records reconciliation put right since the topic was created, and
   * how many uids take part (member files). */
  stats_kv_u64(pk, "repaired", t->repaired);
  stats_kv_u64(pk, "members", stats_members(r));
  stats_kv_u64(pk, "topic_id", t->topic_id);
  stats_kv_u64(pk, "slots", r->slot_count);
  stats_kv_u64(pk, "slot_size", r->slot_capacity);
  stats_kv_u64(pk, "max_subs", r->max_subs);
  stats_kv_u64(pk, "max_pubs", r->max_pubs);
  stats_kv_u64(pk, "head", head);
  if (repair) {
    bool scan = t->job != NULL && t->fixing != NULL && t->job->phase == 1;
    stats_key(pk, "repair");
    (void)msgpack_pack_map(pk, 3);
    stats_kv_u64(pk, "start", scan ? t->job->start : 0);
    stats_kv_u64(pk, "next", scan ? t->job->next : 0);
    stats_kv_u64(pk, "end", scan ? t->job->end : 0);
  }
  stats_key(pk, "pubs");
  (void)msgpack_pack_array(pk, t->n_pubs);
  for (p = t->parts; p != NULL; p = p->next) {
    if (p->role != SHMBUS__ROLE_PUB)
      continue;
    (void)msgpack_pack_map(pk, 5);
    stats_who(pk, p, v);
    stats_kv_u64(pk, "published", stats_clamp(shmbus__ring_pub_published(r, p->index), head));
  }
  stats_key(pk, "subs");
  (void)msgpack_pack_array(pk, t->n_subs);
  for (p = t->parts; p != NULL; p = p->next) {
    struct shmbus__sub_counters cnt;
    uint64_t cursor;
    if (p->role != SHMBUS__ROLE_SUB)
      continue;
    /* The part's index was checked when it was registered; its member file
     * is mapped as long as the topic lives (else the counters read 0). */
    shmbus__ring_sub_counters(r, p->index, &cnt);
    cursor = stats_clamp(cnt.cursor, head);
    (void)msgpack_pack_map(pk, 10);
    stats_who(pk, p, v);
    stats_key(pk, "reliable");
    (void)(p->reliable ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
    stats_kv_u64(pk, "cursor", cursor);
    stats_kv_u64(pk, "lag", head - cursor);
    stats_kv_u64(pk, "received", stats_clamp(cnt.received, head));
    stats_kv_u64(pk, "lost", stats_clamp(cnt.lost, head));
    stats_kv_u64(pk, "demoted", stats_clamp(cnt.demoted, head));
  }
}

size_t stats_encode(const struct registry *reg, const char *only, const struct stats_view *view,
                    void *buf, size_t cap, uint32_t *ntopics, bool *truncated) {
  struct stats_buf b;
  msgpack_packer pk;
  uint32_t count = 0;
  bool cut = false;
  size_t count_at;
  size_t i;

  b.p = buf;
  b.len = 0;
  b.cap = cap > STATS_TAIL ? cap - STATS_TAIL : 0;
  b.overflow = false;
  msgpack_packer_init(&pk, &b, stats_write);
  (void)msgpack_pack_map(&pk, 3);
  stats_kv_u64(&pk, "ts_ns", shmbus__clock_real_ns());
  stats_key(&pk, "topics");
  /* The topic count is known only at the end: reserve an array32 header
   * (valid msgpack even for small counts) and patch it. */
  count_at = b.len;
  (void)stats_write(&b, "\xdd\0\0\0\0", 5);
  if (b.overflow)
    return 0; /* not even the header fits */
  for (i = 0; i < reg->nbuckets && !cut; i++) {
    const struct registry_topic *t;
    for (t = reg->buckets[i]; t != NULL; t = t->hnext) {
      size_t mark = b.len;
      if (only != NULL && strcmp(only, t->name) != 0)
        continue;
      if (view != NULL && view->topic != NULL && !view->topic(view->ctx, t))
        continue;
      stats_pack_topic(&pk, t, view);
      if (b.overflow) {
        b.len = mark;
        cut = true;
        break;
      }
      count++;
    }
  }
  b.p[count_at + 1] = (unsigned char)(count >> 24);
  b.p[count_at + 2] = (unsigned char)(count >> 16);
  b.p[count_at + 3] = (unsigned char)(count >> 8);
  b.p[count_at + 4] = (unsigned char)count;
  b.cap = cap;
  b.overflow = false;
  stats_key(&pk, "truncated");
  (void)(cut ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
  if (ntopics != NULL)
    *ntopics = count;
  if (truncated != NULL)
    *truncated = cut;
  return b.len;
}

int stats_publish(struct stats *st) {
  size_t len;
  void *slot;
  int rv;

  if ((rv = shmbus__ring_loan(&st->pub, STATS_SLOT_SIZE, &slot)) < 0)
    return rv;
  len = stats_encode(st->reg, NULL, NULL, slot, STATS_SLOT_SIZE, NULL, NULL);
  if ((rv = shmbus__ring_commit(&st->pub, len, shmbus__clock_mono_ns())) < 0)
    return rv;
  if (rv > 0)
    registry_wake_sleepers(st->topic);
  return 0;
}

static void stats_on_timer(uv_timer_t *timer) {
  struct stats *st = timer->data;
  int rv = stats_publish(st);

  /* A full ring means a reliable subscriber of the statistics lags: skip
   * this second rather than wait. */
  if (rv < 0 && rv != SHMBUS_EFULL)
    log_warn("$sys/stats: publishing failed: %s", shmbus_strerror(rv));
}

int stats_init(struct stats *st, uv_loop_t *loop, struct registry *reg) {
  struct shmbus__params p = {STATS_SLOTS, STATS_SLOT_SIZE, STATS_MAX_SUBS, 1};
  struct registry_part *part;
  int rv;

  memset(st, 0, sizeof(*st));
  st->reg = reg;
  if ((rv = registry_create(reg, STATS_TOPIC, &p, true, true, &st->topic)) < 0)
    return rv;
  rv = registry_attach(reg, st->topic, SHMBUS__ROLE_PUB, false, 0, 0, (uint32_t)host_self_pid(),
                       shmbus__self_uid(), SHMBUS__OS_HANDLE_INVALID, &part);
  if (rv < 0)
    return rv;
  if ((rv = shmbus__ring_pub_adopt(&st->topic->region.ring, &st->pub, part->index)) < 0)
    return rv;
  /* The daemon never waits for a subscriber: a reliable one that is behind
   * makes the loan answer SHMBUS_EFULL (that second's snapshot is skipped),
   * and one that joins in the instant of a claim (or forged its record)
   * loses that snapshot instead of holding the daemon's loop. */
  st->pub.race_wait_max = 0;
  if ((rv = uv_timer_init(loop, &st->timer)) < 0)
    return rv;
  st->timer.data = st;
  st->timer_init = true;
  return 0;
}

void stats_update(struct stats *st) {
  if (!st->timer_init)
    return;
  if (st->topic->n_subs > 0 && !st->running) {
    /* First snapshot at once, so a new reader need not wait a second;
     * then one per second, never more often. */
    if (uv_timer_start(&st->timer, stats_on_timer, 0, 1000) == 0)
      st->running = true;
  } else if (st->topic->n_subs == 0 && st->running) {
    (void)uv_timer_stop(&st->timer);
    st->running = false;
  }
}

void stats_close(struct stats *st) {
  if (st->timer_init && !uv_is_closing((uv_handle_t *)&st->timer))
    uv_close((uv_handle_t *)&st->timer, NULL);
  st->running = false;
  if (st->pub.rec != NULL)
    shmbus__ring_pub_detach(&st->pub);
}
