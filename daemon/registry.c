/* registry: topics, participants, and what the daemon does to shared
 * memory on their behalf. See registry.h. */
#define _GNU_SOURCE
#include "registry.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "log.h"
#include "notify.h"
#include "platform/platform.h"
#include "proto.h"
#include "shmbus/error.h"

#define REGISTRY_MIN_BUCKETS 64u

static uint32_t registry_hash(const char *s) {
  uint32_t h = 2166136261u; /* FNV-1a */
  while (*s != '\0') {
    h ^= (unsigned char)*s++;
    h *= 16777619u;
  }
  return h;
}

int registry_init(struct registry *reg) {
  uint64_t seed = 0;

  memset(reg, 0, sizeof(*reg));
  reg->buckets = calloc(REGISTRY_MIN_BUCKETS, sizeof(*reg->buckets));
  if (reg->buckets == NULL)
    return -ENOMEM;
  reg->nbuckets = REGISTRY_MIN_BUCKETS;
  reg->next_topic_id = 1;
  /* Publisher ids are stamped into slots. Starting at a random point keeps
   * ours apart from those of a previous daemon's records we may adopt. */
  (void)shmbus__random64(&seed);
  reg->next_pub_id = (uint32_t)(seed & 0x7fffffffu) | 1u;
  return 0;
}

static void registry_free_part(struct registry_part *p) {
  shmbus__fd_close(p->eventfd);
  free(p->peers_owed);
  free(p);
}

static void registry_free_topic(struct registry_topic *t) {
  struct registry_part *p;
  struct registry_part *next;

  for (p = t->parts; p != NULL; p = next) {
    next = p->next;
    registry_free_part(p);
  }
  for (p = t->dying; p != NULL; p = next) {
    next = p->next;
    registry_free_part(p);
  }
  for (p = t->fixing; p != NULL; p = next) {
    next = p->next;
    registry_free_part(p);
  }
  free(t->job);
  shmbus__region_close(&t->region);
  free(t);
}

void registry_free(struct registry *reg) {
  size_t i;

  for (i = 0; i < reg->nbuckets; i++) {
    struct registry_topic *t = reg->buckets[i];
    while (t != NULL) {
      struct registry_topic *next = t->hnext;
      registry_free_topic(t);
      t = next;
    }
  }
  while (reg->detached != NULL) {
    struct registry_topic *next = reg->detached->hnext;
    registry_free_topic(reg->detached);
    reg->detached = next;
  }
  free(reg->buckets);
  memset(reg, 0, sizeof(*reg));
}

struct registry_topic *registry_find(struct registry *reg, const char *name) {
  uint32_t h = registry_hash(name);
  struct registry_topic *t;

  for (t = reg->buckets[h & (reg->nbuckets - 1)]; t != NULL; t = t->hnext)
    if (t->hash == h && strcmp(t->name, name) == 0)
      return t;
  return NULL;
}

/* Doubles the table when it is fuller than one topic per bucket. A failed
 * allocation keeps the old table: lookups get slower, nothing breaks. */
static void registry_grow(struct registry *reg) {
  struct registry_topic **nb;
  size_t n = reg->nbuckets * 2;
  size_t i;

  if (reg->ntopics <= reg->nbuckets || (nb = calloc(n, sizeof(*nb))) == NULL)
    return;
  for (i = 0; i < reg->nbuckets; i++) {
    struct registry_topic *t = reg->buckets[i];
    while (t != NULL) {
      struct registry_topic *next = t->hnext;
      t->hnext = nb[t->hash & (n - 1)];
      nb[t->hash & (n - 1)] = t;
      t = next;
    }
  }
  free(reg->buckets);
  reg->buckets = nb;
  reg->nbuckets = n;
}

static struct registry_topic *registry_new_topic(struct registry *reg, const char *name) {
  size_t len = strlen(name);
  struct registry_topic *t = calloc(1, sizeof(*t) + len + 1);

  if (t == NULL)
    return NULL;
  memcpy(t->name, name, len + 1);
  t->reg = reg;
  t->hash = registry_hash(name);
  t->region.data_fd = SHMBUS__OS_HANDLE_INVALID;
  t->region.ctrl_fd = SHMBUS__OS_HANDLE_INVALID;
  t->topic_id = reg->next_topic_id++;
  if (reg->next_topic_id == 0)
    reg->next_topic_id = 1;
  return t;
}

static void registry_insert(struct registry *reg, struct registry_topic *t) {
  size_t b = t->hash & (reg->nbuckets - 1);
  t->hnext = reg->buckets[b];
  reg->buckets[b] = t;
  reg->ntopics++;
  registry_grow(reg);
  if (reg->on_name != NULL)
    reg->on_name(reg->drop_ctx, t, true);
}

static void registry_params_of(const struct shmbus__ring *r, struct shmbus__params *p) {
  p->slot_count = r->slot_count;
  p->slot_capacity = r->slot_capacity;
  p->max_subs = r->max_subs;
  p->max_pubs = r->max_pubs;
}

bool registry_params_equal(const struct shmbus__params *a, const struct shmbus__params *b) {
  return a->slot_count == b->slot_count && a->slot_capacity == b->slot_capacity &&
         a->max_subs == b->max_subs && a->max_pubs == b->max_pubs;
}

int registry_create(struct registry *reg, const char *name, const struct shmbus__params *p,
                    bool retain, bool sys, struct registry_topic **out) {
  struct registry_topic *t = registry_new_topic(reg, name);
  int rv;

  if (t == NULL)
    return -ENOMEM;
  if ((rv = shmbus__region_create(&t->region, p, name)) < 0) {
    free(t);
    return rv;
  }
  t->params = *p;
  t->bytes = t->region.data_len + t->region.ctrl_len;
  /* The nonce was written by us a moment ago; it identifies the region
   * when participants adopt it after a restart. */
  t->nonce = t->region.ring.hdr->nonce;
  t->retain = retain;
  t->sys = sys;
  t->data_rw = true;
  registry_insert(reg, t);
  *out = t;
  return 0;
}

static void registry_unlink_part(struct registry_part **head, struct registry_part *p) {
  if (p->prev != NULL)
    p->prev->next = p->next;
  else
    *head = p->next;
  if (p->next != NULL)
    p->next->prev = p->prev;
  p->prev = p->next = NULL;
}

static void registry_push_part(struct registry_part **head, struct registry_part *p) {
  p->prev = NULL;
  p->next = *head;
  if (*head != NULL)
    (*head)->prev = p;
  *head = p;
}

static void registry_add_part(struct registry_topic *t, struct registry_part *p) {
  p->topic = t;
  registry_push_part(&t->parts, p);
  if (p->role == SHMBUS__ROLE_PUB)
    t->n_pubs++;
  else
    t->n_subs++;
}

/* Publishers and subscribers of the topic a record index is known for
 * (live or dying), as bitmaps: bit i of words[i / 64]. */
static void registry_known(const struct registry_topic *t, uint32_t role, uint64_t *words,
                           size_t nwords) {
  const struct registry_part *p;
  const struct registry_part *lists[3] = {t->parts, t->dying, t->fixing};
  size_t l;

  memset(words, 0, nwords * sizeof(*words));
  for (l = 0; l < 3; l++)
    for (p = lists[l]; p != NULL; p = p->next)
      if (p->role == role && p->index / 64 < nwords)
        words[p->index / 64] |= UINT64_C(1) << (p->index % 64);
}

int registry_member(struct registry_topic *t, uint32_t uid) {
  struct shmbus__region *rg = &t->region;
  uint32_t m;
  int free_m = -1;
  int rv;

  for (m = 0; m < SHMBUS__MAX_MEMBERS; m++) {
    if (rg->members[m].map != NULL && rg->members[m].uid == uid)
      return (int)m;
    if (rg->members[m].map == NULL && free_m < 0)
      free_m = (int)m;
  }
  if (free_m < 0)
    return SHMBUS_ELIMIT;
  if (!shmbus__handle_ok(rg->data_fd))
    return SHMBUS_ESTATE;
  if ((rv = shmbus__region_add_member(rg, (uint32_t)free_m, uid, t->name)) < 0)
    return rv;
  /* Not charged to the creator's quota (t->bytes): the creator pays for
   * the data file and one member file; other uids' files are bounded by
   * SHMBUS__MAX_MEMBERS and go when their uid leaves. */
  log_debug("topic %s: member file %d for uid %u", t->name, free_m, uid);
  return free_m;
}

int registry_attach(struct registry *reg, struct registry_topic *t, uint32_t role, bool reliable,
                    uint32_t history, uint32_t deadline_ms, uint32_t pid, uint32_t uid,
                    shmbus__event_handle eventfd, struct registry_part **out) {
  struct registry_part *p;
  int rv;

  if (role == SHMBUS__ROLE_PUB && !t->data_rw)
    return SHMBUS_ESTATE;
  if ((p = calloc(1, sizeof(*p))) == NULL)
    return -ENOMEM;
  p->role = role;
  p->pid = pid;
  p->uid = uid;
  p->eventfd = SHMBUS__OS_HANDLE_INVALID;
  if ((rv = registry_member(t, uid)) < 0)
    goto fail;
  p->member = (uint32_t)rv;
  if (role == SHMBUS__ROLE_PUB) {
    struct shmbus__ring_pub h;
    uint32_t pub_id = reg->next_pub_id++;
    if (reg->next_pub_id == 0)
      reg->next_pub_id = 1;
    if ((rv = shmbus__ring_pub_attach(&t->region.ring, &h, pub_id, pid)) < 0)
      goto fail;
    p->index = h.index;
  } else {
    struct shmbus__ring_sub h;
    if ((rv = shmbus__ring_sub_attach_member(&t->region.ring, p->member, &h, reliable, history,
                                             pid)) < 0)
      goto fail;
    p->index = h.index;
    p->reliable = reliable;
    p->deadline_ms = reliable ? deadline_ms : 0;
    /* Published to publishers with the record's state, by the daemon's
     * later gen/epoch increments; any value is only a bound. */
    shmbus__ring_sub_set_deadline(&t->region.ring, h.index, p->deadline_ms);
  }
  p->eventfd = eventfd;
  registry_add_part(t, p);
  *out = p;
  return 0;

fail:
  free(p);
  return rv;
}

int registry_register(struct registry *reg, struct registry_topic *t, uint32_t role, uint32_t index,
                      uint32_t pid, shmbus__event_handle eventfd, struct registry_part **out,
                      char *text, size_t textlen) {
  struct shmbus__ring *r = &t->region.ring;
  uint64_t known[SHMBUS__MAX_SUBS * SHMBUS__MAX_MEMBERS / 64];
  struct registry_part *p;
  uint32_t rec_pid;
  bool reliable = false;

  if (role == SHMBUS__ROLE_PUB) {
    uint32_t id;
    if (index >= r->max_pubs) {
      snprintf(text, textlen, "publisher index %u out of range (max_pubs %u)", index, r->max_pubs);
      return -EINVAL;
    }
    if (shmbus__ring_pub_owner(r, index, &rec_pid, &id) != SHMBUS__PUB_ACTIVE) {
      snprintf(text, textlen, "publisher record %u is not in use", index);
      return SHMBUS_ESTATE;
    }
    /* Keep our own ids above the adopted ones: pub ids identify writers
     * in slots and in statistics. */
    if (id >= reg->next_pub_id && id < UINT32_MAX)
      reg->next_pub_id = id + 1;
  } else {
    uint32_t st;
    if (shmbus__ring_sub_rec(r, index) == NULL) {
      snprintf(text, textlen, "subscriber index %u is not in a member file of this topic", index);
      return -EINVAL;
    }
    st = shmbus__ring_sub_owner(r, index, &rec_pid);
    if (st != SHMBUS__SUB_LOSSY && st != SHMBUS__SUB_RELIABLE) {
      snprintf(text, textlen, "subscriber record %u is not in use", index);
      return SHMBUS_ESTATE;
    }
    reliable = st == SHMBUS__SUB_RELIABLE;
  }
  if (rec_pid != pid) {
    snprintf(text, textlen, "%s record %u belongs to pid %u, not to pid %u",
             role == SHMBUS__ROLE_PUB ? "publisher" : "subscriber", index, rec_pid, pid);
    return SHMBUS_ESTATE;
  }
  registry_known(t, role, known, sizeof(known) / sizeof(known[0]));
  if (known[index / 64] & (UINT64_C(1) << (index % 64))) {
    snprintf(text, textlen, "%s record %u is already held by a participant",
             role == SHMBUS__ROLE_PUB ? "publisher" : "subscriber", index);
    return SHMBUS_ESTATE;
  }
  if ((p = calloc(1, sizeof(*p))) == NULL)
    return -ENOMEM;
  p->role = role;
  p->index = index;
  p->pid = pid;
  p->reliable = reliable;
  p->member = role == SHMBUS__ROLE_SUB ? index / r->max_subs : t->region.ring.own;
  if (role == SHMBUS__ROLE_SUB)
    p->deadline_ms = shmbus__ring_sub_deadline(r, index);
  p->eventfd = eventfd;
  registry_add_part(t, p);
  *out = p;
  return 0;
}

static void registry_sweep_remove(struct registry *reg, struct registry_topic *t) {
  struct registry_topic **pp;

  if (!t->sweeping)
    return;
  for (pp = &reg->sweeps; *pp != NULL; pp = &(*pp)->sweep_next)
    if (*pp == t) {
      *pp = t->sweep_next;
      break;
    }
  t->sweep_next = NULL;
  t->sweeping = false;
}

static void registry_repair_remove(struct registry *reg, struct registry_topic *t) {
  struct registry_topic **pp;

  if (!t->repairing)
    return;
  for (pp = &reg->repairs; *pp != NULL; pp = &(*pp)->repair_next)
    if (*pp == t) {
      *pp = t->repair_next;
      break;
    }
  t->repair_next = NULL;
  t->repairing = false;
}

int registry_adopt(struct registry *reg, const char *name, uint32_t role, uint32_t uid,
                   shmbus__shm_handle *data_fd, shmbus__shm_handle *ctrl_fd,
                   const struct shmbus__params *want, uint64_t now_ns, struct registry_topic **out,
                   char *text, size_t textlen) {
  struct shmbus__region tmp;
  struct shmbus__params have;
  struct registry_topic *t;
  uint32_t m;
  uint32_t file_uid;
  uint64_t nonce;
  int rv;

  /* After a restart the memory is the only source: headers are validated
   * here, once; what they say is kept privately from then on. */
  rv = shmbus__region_open(&tmp, *data_fd, *ctrl_fd, (enum shmbus__role)role);
  if (rv < 0) {
    snprintf(text, textlen, "the descriptors passed are not a usable shmbus region: %s%s",
             shmbus_strerror(rv),
             rv == -EACCES ? " (a publisher must pass its read-write data descriptor)" : "");
    return rv;
  }
  registry_params_of(&tmp.ring, &have);
  nonce = tmp.ring.hdr->nonce;
  m = tmp.ring.own;
  file_uid = tmp.members[m].uid;
  if (file_uid != uid) {
    /* Each uid passes its own member file: one of another uid would let it
     * claim that uid's records. */
    snprintf(text, textlen, "the member file passed belongs to uid %u, not to uid %u", file_uid,
             uid);
    rv = SHMBUS_EDENIED;
    goto fail;
  }
  if (want != NULL && !registry_params_equal(want, &have)) {
    snprintf(text, textlen,
             "adopt states slots=%u slot_size=%u max_subs=%u max_pubs=%u but the region has "
             "slots=%u slot_size=%u max_subs=%u max_pubs=%u",
             want->slot_count, want->slot_capacity, want->max_subs, want->max_pubs, have.slot_count,
             have.slot_capacity, have.max_subs, have.max_pubs);
    rv = SHMBUS_EMISMATCH;
    goto fail;
  }
  if ((t = registry_find(reg, name)) != NULL) {
    uint32_t m2;
    uint32_t uid2;
    if (t->nonce != nonce) {
      snprintf(text, textlen,
               "topic \"%s\" is already known with another region (it was created anew); "
               "open it again",
               name);
      rv = SHMBUS_EMISMATCH;
      goto fail;
    }
    shmbus__region_close(&tmp);
    /* This uid's member file, unless known already (then it must be the
     * very same file). */
    rv = shmbus__region_adopt_member(&t->region, ctrl_fd, &m2, &uid2);
    if (rv < 0) {
      snprintf(text, textlen, "member file %u of topic \"%s\" is known as another file", m, name);
      return rv;
    }
    if (role == SHMBUS__ROLE_PUB && !t->data_rw) {
      /* The first read-write descriptor: from now on the daemon can attach
       * publishers and repair this topic. Parts keep indices, not
       * pointers into the old mappings, so swapping the view is safe. */
      if ((rv = shmbus__region_upgrade_data(&t->region, data_fd)) < 0) {
        snprintf(text, textlen, "the data descriptor is not this topic's: %s", shmbus_strerror(rv));
        return rv;
      }
      t->data_rw = true;
      log_info("topic %s: adopted read-write from a publisher", t->name);
    }
    *out = t;
    return 0;
  }
  if (strncmp(name, "$sys/", 5) == 0) {
    snprintf(text, textlen, "\"%s\" is not a topic of this daemon", name);
    rv = -ENOENT;
    goto fail;
  }
  if ((t = registry_new_topic(reg, name)) == NULL) {
    rv = -ENOMEM;
    goto fail;
  }
  t->region = tmp;
  t->region.members[m].fd = *ctrl_fd;
  t->region.ctrl_fd = *ctrl_fd;
  *ctrl_fd = SHMBUS__OS_HANDLE_INVALID;
  t->region.data_fd = *data_fd; /* read-only unless a publisher adopted */
  *data_fd = SHMBUS__OS_HANDLE_INVALID;
  t->params = have;
  t->nonce = nonce;
  t->bytes = t->region.data_len + t->region.layout.member_size;
  /* Whether the creator asked to retain the topic is not in the region;
   * an adopted topic lives as long as its participants. */
  t->retain = false;
  t->data_rw = role == SHMBUS__ROLE_PUB;
  t->sweep_until_ns = now_ns + REGISTRY_SWEEP_WINDOW_NS;
  t->sweeping = true;
  t->sweep_next = reg->sweeps;
  reg->sweeps = t;
  registry_insert(reg, t);
  log_info("topic %s: adopted (slots=%u slot_size=%u max_subs=%u max_pubs=%u, %s)", t->name,
           have.slot_count, have.slot_capacity, have.max_subs, have.max_pubs,
           t->data_rw ? "read-write" : "read-only until a publisher adopts it");
  *out = t;
  return 0;

fail:
  shmbus__region_close(&tmp);
  return rv;
}

/* Wakes a part through its eventfd without blocking. Clients register
 * non-blocking eventfds, but the file status flags are shared with them:
 * one that cleared O_NONBLOCK since (and filled the counter) could make a
 * write block the daemon. shmbus__notify_signal refuses such an fd; the
 * part is marked and its owner disconnected by the server. What remains is
 * the window between that check and the write (docs/security.md). */
static void registry_signal(struct registry_part *p) {
  struct registry *reg = p->topic->reg;

  if (!shmbus__handle_ok(p->eventfd) || p->tampered)
    return;
  if (shmbus__notify_signal(p->eventfd) == -EBADFD) {
    p->tampered = true;
    log_warn("topic %s: the eventfd of %s record %u (pid %u) was made blocking; not waking it",
             p->topic->name, p->role == SHMBUS__ROLE_PUB ? "publisher" : "subscriber", p->index,
             p->pid);
    if (reg->on_tampered != NULL)
      reg->on_tampered(reg->drop_ctx, p);
  }
}

/* The daemon wakes only the parts it knows, each through its own eventfd:
 * O(parts), whatever the bitmaps say; it never clears anyone's bit (the
 * owners do, ring.c). Which bit means what is src/notify.c's business. */
static void registry_wake(struct registry_topic *t, enum shmbus__notify_kind kind) {
  const struct shmbus__ring *r = &t->region.ring;
  uint32_t role = kind == SHMBUS__NOTIFY_SLEEPERS ? SHMBUS__ROLE_SUB : SHMBUS__ROLE_PUB;
  struct registry_part *p;

  if (!shmbus__notify_any(r, kind))
    return;
  for (p = t->parts; p != NULL; p = p->next)
    if (p->role == role && shmbus__notify_waiting(r, kind, p->index))
      registry_signal(p);
}

void registry_wake_sleepers(struct registry_topic *t) {
  registry_wake(t, SHMBUS__NOTIFY_SLEEPERS);
}

void registry_wake_pub_waiters(struct registry_topic *t) {
  registry_wake(t, SHMBUS__NOTIFY_PUB_WAITERS);
}

void registry_bump_epoch(struct registry_topic *t) {
  struct shmbus__ring *r = &t->region.ring;
  uint32_t m;

  /* seq_cst (shmbus__ring_bump_peer_epoch): orders the peer_join/
   * peer_leave datagrams we queued before the new epoch; pairs with the
   * seq_cst load in shmbus__ring_peers_changed, after which a participant
   * reads its socket and finds them, and has its place in the sleep
   * protocol's total order (src/ring.c, "Peer epoch"). Every member file:
   * each participant watches its own uid's. */
  for (m = 0; m < r->n_members; m++)
    if (t->region.members[m].writable)
      shmbus__ring_bump_peer_epoch(r, m);
}

/* Queues `t` on registry.repairs (once). */
static void registry_repair_queue(struct registry *reg, struct registry_topic *t) {
  if (t->repairing)
    return;
  t->repairing = true;
  t->repair_next = reg->repairs;
  reg->repairs = t;
}

/* Moves the publishers waiting in `dying` into the job and (re)starts it
 * with every dead publisher of the topic at once, so that two dead
 * publishers holding neighbouring slots do not wait for each other.
 * Returns 0 or a negative code. */
static int registry_repair_start(struct registry_topic *t) {
  uint32_t dead[SHMBUS__MAX_PUBS];
  struct registry_part *p;
  size_t n = 0;

  if (t->job == NULL && (t->job = malloc(sizeof(*t->job))) == NULL)
    return -ENOMEM;
  while ((p = t->dying) != NULL) {
    registry_unlink_part(&t->dying, p);
    registry_push_part(&t->fixing, p);
  }
  for (p = t->fixing; p != NULL && n < SHMBUS__MAX_PUBS; p = p->next)
    dead[n++] = p->index;
  return shmbus__ring_repair_begin(&t->region.ring, t->job, dead, n);
}

/* One step of the repair of `t`'s dead publishers (shmbus__ring_repair_step,
 * at most REGISTRY_REPAIR_BUDGET slots). Returns 0 when nothing is left
 * (parts freed, sleepers woken), 1 when it must be retried later (a live
 * publisher is in the way), 2 when it ran out of budget (continue on the
 * next loop turn). */
static int registry_try_repair(struct registry *reg, struct registry_topic *t) {
  struct registry_part *p;
  struct registry_part *next;
  int rv;

  t->repair_now = false;
  if (t->fixing == NULL && t->dying == NULL) {
    registry_repair_remove(reg, t);
    return 0;
  }
  if (!t->data_rw) {
    /* Cannot write the slot area: wait for a publisher to adopt. Parts of
     * publishers exist only with a read-write mapping, so this is a
     * safety net, not a path taken. */
    registry_repair_queue(reg, t);
    return 1;
  }
  if (t->fixing == NULL && (rv = registry_repair_start(t)) < 0)
    goto failed;
  rv = shmbus__ring_repair_step(&t->region.ring, t->job, REGISTRY_REPAIR_BUDGET);
  if (rv == -EAGAIN && t->dying != NULL) {
    /* Perhaps waiting for a publisher that died since the job began:
     * start over with it included. */
    if ((rv = registry_repair_start(t)) < 0)
      goto failed;
    rv = shmbus__ring_repair_step(&t->region.ring, t->job, REGISTRY_REPAIR_BUDGET);
  }
  if (rv == -EAGAIN || rv == -EINPROGRESS) {
    if (rv == -EAGAIN)
      log_debug("topic %s: repair must wait for a live publisher between claim and commit",
                t->name);
    t->repair_now = rv == -EINPROGRESS;
    registry_repair_queue(reg, t);
    return rv == -EINPROGRESS ? 2 : 1;
  }
  if (rv < 0)
    goto failed;
  for (p = t->fixing; p != NULL; p = next) {
    next = p->next;
    log_printf(t->job->repaired > 0 ? LOG_INFO : LOG_DEBUG,
               "topic %s: publisher record %u (pid %u) released, %llu slot(s) repaired", t->name,
               p->index, p->pid, (unsigned long long)t->job->repaired);
    registry_free_part(p);
  }
  t->fixing = NULL;
  /* Subscribers may sleep on a slot the dead publisher held: it is
   * SKIPPED now, so wake them to move on. */
  registry_wake_sleepers(t);
  if (t->dying != NULL) {
    /* More died while this job ran: their turn, on the next loop turn. */
    t->repair_now = true;
    registry_repair_queue(reg, t);
    return 2;
  }
  free(t->job);
  t->job = NULL;
  registry_repair_remove(reg, t);
  return 0;

failed:
  for (p = t->fixing; p != NULL; p = next) {
    next = p->next;
    log_err("topic %s: repair of publisher record %u failed: %s", t->name, p->index,
            shmbus_strerror(rv));
    registry_free_part(p);
  }
  t->fixing = NULL;
  free(t->job);
  t->job = NULL;
  if (t->dying != NULL) {
    registry_repair_queue(reg, t);
    return 1;
  }
  registry_repair_remove(reg, t);
  return 0;
}

/* Drops member file m when no participant of its uid is left (not the
 * region's own, which the daemon's own records use): every record still
 * in use there is evicted first (publishers that still map the file until
 * their peer_leave arrives see only free records), then the file goes.
 * So a topic never fills up with member files of uids long gone, and a
 * process of that uid that kept a mapping writes to nobody's memory. */
static void registry_release_member(struct registry_topic *t, uint32_t m) {
  struct shmbus__ring *r = &t->region.ring;
  const struct registry_part *p;
  const struct registry_part *lists[2] = {t->parts, t->dying};
  bool woke = false;
  uint32_t i;
  size_t l;

  if (m >= SHMBUS__MAX_MEMBERS || m == r->own || r->members[m].hdr == NULL ||
      !t->region.members[m].writable)
    return;
  for (l = 0; l < 2; l++)
    for (p = lists[l]; p != NULL; p = p->next)
      if (p->member == m)
        return;
  for (i = 0; i < r->max_subs; i++) {
    uint32_t st = shmbus__ring_sub_owner(r, m * r->max_subs + i, NULL);
    if (st != SHMBUS__SUB_FREE || shmbus__ring_sub_sleeping(r, m * r->max_subs + i)) {
      woke |= st == SHMBUS__SUB_RELIABLE;
      shmbus__ring_evict_sub(r, m * r->max_subs + i);
    }
  }
  log_debug("topic %s: member file %u (uid %u) released: no participant of that uid left", t->name,
            m, t->region.members[m].uid);
  (void)shmbus__region_unmap_member(&t->region, m);
  if (woke)
    registry_wake_pub_waiters(t);
}

int registry_detach(struct registry *reg, struct registry_part *part) {
  struct registry_topic *t = part->topic;
  struct shmbus__ring *r = &t->region.ring;

  registry_unlink_part(&t->parts, part);
  if (part->role == SHMBUS__ROLE_SUB) {
    uint32_t m = part->member;
    t->n_subs--;
    shmbus__ring_evict_sub(r, part->index);
    log_debug("topic %s: subscriber record %u (pid %u) released", t->name, part->index, part->pid);
    /* A reliable subscriber may have held publishers back; they wait on
     * their eventfds for room that is there now. */
    if (part->reliable)
      registry_wake_pub_waiters(t);
    registry_free_part(part);
    registry_release_member(t, m);
    return 0;
  }
  t->n_pubs--;
  shmbus__fd_close(part->eventfd);
  part->eventfd = SHMBUS__OS_HANDLE_INVALID;
  part->owner = NULL;
  registry_push_part(&t->dying, part);
  {
    uint32_t m = part->member;
    int rv = registry_try_repair(reg, t); /* may free part */
    if (rv == 0)
      registry_release_member(t, m);
    return rv;
  }
}

size_t registry_repair_pending(struct registry *reg, bool *now) {
  struct registry_topic *t = reg->repairs;
  size_t n = 0;

  if (now != NULL)
    *now = false;
  while (t != NULL) {
    struct registry_topic *next = t->repair_next;
    int rv = registry_try_repair(reg, t);
    if (rv != 0)
      n++;
    if (rv == 2 && now != NULL)
      *now = true;
    t = next;
  }
  return n;
}

/* Whether a pid read from shared memory is no longer a live process. A
 * pid that cannot be one (0, or beyond pid_t) counts as dead; signal 0
 * only asks whether the process exists and sends nothing. */
static bool registry_pid_dead(uint32_t pid) {
  return host_pid_gone(pid);
}

static void registry_sweep_topic(struct registry *reg, struct registry_topic *t, bool final) {
  struct shmbus__ring *r = &t->region.ring;
  uint64_t known[SHMBUS__MAX_SUBS * SHMBUS__MAX_MEMBERS / 64];
  bool woke_pubs = false;
  bool orphans = false;
  uint32_t i;

  registry_known(t, SHMBUS__ROLE_SUB, known, sizeof(known) / sizeof(known[0]));
  for (i = 0; i < r->n_members * r->max_subs; i++) {
    uint32_t st;
    uint32_t pid;
    /* The pid is read after the state (shmbus__ring_sub_owner), so it is
     * the owner's. A record whose member file is not mapped reads FREE. */
    st = shmbus__ring_sub_owner(r, i, &pid);
    if (st == SHMBUS__SUB_FREE || (known[i / 64] & (UINT64_C(1) << (i % 64))))
      continue;
    if (!final && !registry_pid_dead(pid))
      continue;
    log_info("topic %s: subscriber record %u (pid %u) was not adopted%s; evicted", t->name, i, pid,
             final ? " in time" : " and its process is gone");
    shmbus__ring_evict_sub(r, i);
    woke_pubs |= st == SHMBUS__SUB_RELIABLE;
  }
  if (woke_pubs)
    registry_wake_pub_waiters(t);
  if (!t->data_rw)
    return; /* publishers cannot be repaired without a read-write mapping */
  registry_known(t, SHMBUS__ROLE_PUB, known, sizeof(known) / sizeof(known[0]));
  for (i = 0; i < r->max_pubs; i++) {
    struct registry_part *p;
    uint32_t pid;
    /* As for subscribers above. */
    if (shmbus__ring_pub_owner(r, i, &pid, NULL) != SHMBUS__PUB_ACTIVE ||
        (known[i / 64] & (UINT64_C(1) << (i % 64))))
      continue;
    if (!final && !registry_pid_dead(pid))
      continue;
    if ((p = calloc(1, sizeof(*p))) == NULL)
      continue; /* try again at the next sweep */
    log_info("topic %s: publisher record %u (pid %u) was not adopted%s; repairing", t->name, i, pid,
             final ? " in time" : " and its process is gone");
    p->role = SHMBUS__ROLE_PUB;
    p->index = i;
    p->pid = pid;
    p->eventfd = SHMBUS__OS_HANDLE_INVALID;
    p->topic = t;
    registry_push_part(&t->dying, p);
    orphans = true;
  }
  if (orphans)
    (void)registry_try_repair(reg, t);
}

size_t registry_sweep(struct registry *reg, uint64_t now_ns) {
  struct registry_topic *t = reg->sweeps;
  size_t n = 0;

  while (t != NULL) {
    struct registry_topic *next = t->sweep_next;
    bool final = now_ns >= t->sweep_until_ns;
    registry_sweep_topic(reg, t, final);
    if (final)
      registry_sweep_remove(reg, t);
    else
      n++;
    t = next;
  }
  return n;
}

/* The registered part of `role` with record `index`, or NULL. */
static struct registry_part *registry_part_at(const struct registry_topic *t, uint32_t role,
                                              uint32_t index) {
  struct registry_part *p;
  for (p = t->parts; p != NULL; p = p->next)
    if (p->role == role && p->index == index)
      return p;
  for (p = t->dying; p != NULL; p = p->next)
    if (p->role == role && p->index == index)
      return p;
  return NULL;
}

/* Reconciles records [*pos, *pos + budget) of `t` (subscriber records of
 * every member file first, then publisher records). Returns how many were
 * looked at; *fixed counts what was put right. */
static uint32_t registry_reconcile_topic(struct registry *reg, struct registry_topic *t,
                                         uint32_t *pos, uint32_t budget, size_t *fixed) {
  struct shmbus__ring *r = &t->region.ring;
  uint32_t nsubs = SHMBUS__MAX_MEMBERS * r->max_subs;
  uint32_t done = 0;
  bool woke_pubs = false;
  bool orphans = false;

  for (; done < budget && *pos < nsubs + r->max_pubs; (*pos)++, done++) {
    uint32_t i = *pos;
    if (i < nsubs) {
      struct registry_part *p;
      uint32_t rec_pid;
      uint32_t st;
      if (shmbus__ring_sub_rec(r, i) == NULL || !t->region.members[i / r->max_subs].writable) {
        /* A member file not mapped: skip the rest of it. */
        *pos = (i / r->max_subs + 1) * r->max_subs - 1;
        continue;
      }
      if (i % r->max_subs == 0 && shmbus__ring_member_sanitize(r, i / r->max_subs) > 0) {
        log_notice("topic %s: member file %u had sleeper bits beyond its records; cleared", t->name,
                   i / r->max_subs);
        t->repaired++;
        (*fixed)++;
      }
      p = registry_part_at(t, SHMBUS__ROLE_SUB, i);
      st = shmbus__ring_sub_owner(r, i, &rec_pid);
      if (p != NULL) {
        if (shmbus__ring_sub_restore(r, i, p->reliable, p->pid, p->deadline_ms) > 0) {
          log_notice("topic %s: subscriber record %u (pid %u) was changed by someone else; "
                     "restored",
                     t->name, i, p->pid);
          t->repaired++;
          (*fixed)++;
        }
      } else if (st != SHMBUS__SUB_FREE || shmbus__ring_sub_sleeping(r, i)) {
        log_notice("topic %s: subscriber record %u is held by no participant (pid %u says "
                   "the record); freed",
                   t->name, i, rec_pid);
        woke_pubs |= st == SHMBUS__SUB_RELIABLE;
        shmbus__ring_evict_sub(r, i);
        t->repaired++;
        (*fixed)++;
      }
    } else if (t->data_rw) {
      uint32_t k = i - nsubs;
      struct registry_part *p;
      uint32_t pub_pid;
      if (shmbus__ring_pub_owner(r, k, &pub_pid, NULL) != SHMBUS__PUB_ACTIVE ||
          registry_part_at(t, SHMBUS__ROLE_PUB, k) != NULL)
        continue;
      if ((p = calloc(1, sizeof(*p))) == NULL)
        continue; /* next round */
      log_notice("topic %s: publisher record %u is held by no participant; repairing", t->name, k);
      p->role = SHMBUS__ROLE_PUB;
      p->index = k;
      p->pid = pub_pid;
      p->eventfd = SHMBUS__OS_HANDLE_INVALID;
      p->topic = t;
      registry_push_part(&t->dying, p);
      orphans = true;
      t->repaired++;
      (*fixed)++;
    }
  }
  if (woke_pubs)
    registry_wake_pub_waiters(t);
  if (orphans)
    (void)registry_try_repair(reg, t);
  return done;
}

size_t registry_reconcile(struct registry *reg, uint32_t budget) {
  size_t fixed = 0;
  size_t visited = 0;

  while (budget > 0 && visited <= reg->nbuckets) {
    struct registry_topic *t;
    if (reg->rc_bucket >= reg->nbuckets) {
      reg->rc_bucket = 0;
      reg->rc_topic_id = 0;
      reg->rc_pos = 0;
    }
    /* The topic we were on, or the first of the bucket when it is gone. */
    for (t = reg->buckets[reg->rc_bucket]; t != NULL; t = t->hnext)
      if (reg->rc_topic_id == 0 || t->topic_id == reg->rc_topic_id)
        break;
    if (t == NULL && reg->rc_topic_id != 0) {
      reg->rc_topic_id = 0;
      reg->rc_pos = 0;
      continue;
    }
    if (t == NULL) {
      reg->rc_bucket++;
      visited++;
      continue;
    }
    reg->rc_topic_id = t->topic_id;
    if (!t->sweeping && !t->repairing) {
      uint32_t n = registry_reconcile_topic(reg, t, &reg->rc_pos, budget, &fixed);
      budget = n < budget ? budget - n : 0;
      if (budget == 0 &&
          reg->rc_pos < SHMBUS__MAX_MEMBERS * t->region.ring.max_subs + t->region.ring.max_pubs)
        break;
    } else {
      budget--;
    }
    /* Next topic in the chain, or the next bucket. */
    reg->rc_pos = 0;
    if (t->hnext != NULL) {
      reg->rc_topic_id = t->hnext->topic_id;
    } else {
      reg->rc_topic_id = 0;
      reg->rc_bucket++;
      visited++;
    }
  }
  return fixed;
}

bool registry_maybe_drop(struct registry *reg, struct registry_topic *t) {
  struct registry_topic **pp;

  if (t->parts != NULL || t->retain || t->sys)
    return false;
  /* Nobody participates any more: a pending repair no longer matters to
   * anyone, and the memory goes away with the last mapping. */
  registry_repair_remove(reg, t);
  registry_sweep_remove(reg, t);
  for (pp = t->detached ? &reg->detached : &reg->buckets[t->hash & (reg->nbuckets - 1)];
       *pp != NULL; pp = &(*pp)->hnext)
    if (*pp == t) {
      *pp = t->hnext;
      break;
    }
  if (!t->detached) {
    reg->ntopics--;
    if (reg->on_name != NULL)
      reg->on_name(reg->drop_ctx, t, false);
  }
  log_debug("topic %s: dropped (no participant left)", t->name);
  if (reg->on_drop != NULL)
    reg->on_drop(reg->drop_ctx, t);
  registry_free_topic(t);
  return true;
}

bool registry_remove(struct registry *reg, struct registry_topic *t) {
  struct registry_topic **pp;

  t->retain = false;
  if (registry_maybe_drop(reg, t))
    return true;
  if (t->detached)
    return false;
  for (pp = &reg->buckets[t->hash & (reg->nbuckets - 1)]; *pp != NULL; pp = &(*pp)->hnext)
    if (*pp == t) {
      *pp = t->hnext;
      break;
    }
  reg->ntopics--;
  if (reg->on_name != NULL)
    reg->on_name(reg->drop_ctx, t, false);
  t->detached = true;
  t->hnext = reg->detached;
  reg->detached = t;
  return false;
}
