/* registry: the daemon's topics and the participants on them.
 *
 * A topic is a region (two memory files the daemon created, or adopted from
 * participants after a restart) plus the list of participant records the
 * daemon attached or adopted in it. A participant ("part") is one ring
 * record held by one client: a publisher record or a subscriber record,
 * with the eventfd the client registered for it. The daemon keeps record
 * indices, never ring handles, so a topic's mappings may be replaced (a
 * publisher adopting a topic first known read-only) without touching parts.
 *
 * Topics are found by name in a hash table that grows with them (O(1)
 * expected). Nothing here is per-topic large: a topic costs its struct and
 * its name; the regions are shared memory, not the daemon's heap.
 *
 * What this module does to shared memory: attaches records for clients,
 * evicts subscriber records and repairs publisher records when their owner
 * leaves, wakes sleeping subscribers and waiting publishers through their
 * eventfds, and reclaims records nobody adopted after a restart (the
 * orphan sweep). Everything read from shared memory is treated as untrusted.
 *
 * What it does not do: talk to clients. The server sends peer_join and
 * peer_leave events and then bumps the topic's peer_epoch here.
 *
 * Thread-safety: single-threaded, like the whole daemon. */
#ifndef SHMBUSD_REGISTRY_H
#define SHMBUSD_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "region.h"
#include "ring.h"

struct registry_topic;

/* One ring record held on behalf of a client (or of the daemon itself). */
struct registry_part {
  struct registry_topic *topic;
  void *owner;                      /* its struct participant; NULL: the daemon or nobody */
  struct registry_part *owner_next; /* the owner's list of parts */
  struct registry_part *prev;       /* the topic's list (parts or dying) */
  struct registry_part *next;
  uint32_t role;        /* SHMBUS__ROLE_PUB or SHMBUS__ROLE_SUB */
  uint32_t index;       /* record index in the ring (subscribers: global, m * max_subs + i) */
  uint32_t member;      /* m of the owner's uid's member file */
  uint32_t uid;         /* from the connection's peer identity (host_peer_get) */
  uint32_t deadline_ms; /* subscribers: what the daemon wrote into the record */
  uint32_t pid;         /* from the connection's peer identity */
  uint32_t client_id;   /* the owner's participant id ($sys/stats "client"); 0: the daemon */
  const char *name;     /* the owner's name, for stats (the owner's memory); NULL: none */
  shmbus__event_handle eventfd; /* the owner's wake-up event; invalid for none */
  bool reliable;                /* subscribers */
  bool tampered;                /* its eventfd was found blocking: never written again */
  /* The server's: peer events owed to this part's owner whose socket was
   * full, as a bitmap by peer record index (NULL: none owed). Freed with
   * the part. */
  uint64_t *peers_owed;
};

struct registry_topic {
  struct registry *reg;               /* the registry it belongs to */
  struct registry_topic *hnext;       /* hash chain */
  struct registry_topic *repair_next; /* registry.repairs, while dying != NULL */
  struct registry_topic *sweep_next;  /* registry.sweeps, while sweeping */
  struct registry_part *parts;        /* live participants */
  struct registry_part *dying;        /* publishers gone, waiting for repair */
  struct registry_part *fixing;       /* publishers gone whose repair `job` runs */
  struct shmbus__region region;       /* keeps data_fd (read-only if !data_rw) and ctrl_fd */
  struct shmbus__params params;
  uint64_t nonce;
  uint64_t sweep_until_ns; /* orphan sweep: reclaim every unadopted record after this */
  uint64_t bytes;          /* data + control file: what the creator is charged */
  uint32_t creator_id;     /* the client that created it (quotas); 0: the daemon or adopted */
  uint32_t creator_uid;    /* its uid, if has_creator (removal, retained quota) */
  bool has_creator;        /* created through an open, not adopted nor the daemon's */
  bool uid_charged;        /* counted in its creator uid's retained quota (the server's) */
  bool detached;           /* removed by name (registry_remove): off the table, on `detached` */
  uint32_t topic_id;
  uint32_t hash;
  uint64_t repaired; /* records reconciliation put right (stats) */
  uint32_t n_pubs;   /* live parts by role */
  uint32_t n_subs;
  bool retain;    /* kept without participants */
  bool sys;       /* a daemon topic ($sys/...) */
  bool data_rw;   /* the daemon maps the data file read-write (can attach and repair) */
  bool repairing; /* on registry.repairs */
  bool sweeping;  /* on registry.sweeps */
  /* The repair in progress (shmbus__ring_repair_step), or NULL; and
   * whether it ran out of budget (it goes on on the next loop turn). */
  struct shmbus__ring_repair_job *job;
  bool repair_now;
  char name[];
};

struct registry {
  struct registry_topic **buckets;
  size_t nbuckets; /* power of two */
  size_t ntopics;
  uint32_t next_topic_id;
  uint32_t next_pub_id;
  struct registry_topic *repairs; /* topics with dying publishers */
  struct registry_topic *sweeps;  /* topics adopted recently */
  /* Removed topics that still have participants, chained by hnext. */
  struct registry_topic *detached;
  /* Reconciliation's place: the bucket and topic id it works on, and the
   * record position within that topic. */
  size_t rc_bucket;
  uint32_t rc_topic_id;
  uint32_t rc_pos;
  /* Called with each topic registry_maybe_drop is about to free (the
   * server gives its creator's quota back); may be NULL. */
  void (*on_drop)(void *ctx, const struct registry_topic *t);
  /* Called when a part's eventfd was found blocking (its owner cleared
   * O_NONBLOCK on the shared file description, which could make a writer
   * block): the daemon did not write it; the server disconnects the owner.
   * May be NULL. */
  void (*on_tampered)(void *ctx, struct registry_part *p);
  /* Called when a topic gets its name (created or adopted: up) and when
   * it loses it (dropped, or removed by name: !up), for discovery; may be
   * NULL. */
  void (*on_name)(void *ctx, const struct registry_topic *t, bool up);
  void *drop_ctx; /* ctx for the three */
};

/* Defaults for an open that states no parameters (docs/protocol.md). */
#define REGISTRY_DEFAULT_SLOTS 256u
#define REGISTRY_DEFAULT_SLOT_SIZE 1024u
#define REGISTRY_DEFAULT_MAX_SUBS 64u
#define REGISTRY_DEFAULT_MAX_PUBS 16u

/* How long after a topic was adopted its unadopted records may still be
 * claimed by a reconnecting live process. */
#define REGISTRY_SWEEP_WINDOW_NS (60ull * 1000000000ull)

/* Initialises an empty registry. Returns 0 or -ENOMEM. */
int registry_init(struct registry *reg);

/* Frees every topic and part: closes regions and eventfds. Shared records
 * are left as they are (a restarted daemon adopts them). */
void registry_free(struct registry *reg);

/* The topic called `name`, or NULL. */
struct registry_topic *registry_find(struct registry *reg, const char *name);

/* Creates a topic with a new region. Returns 0 with *out, SHMBUS_EPARAM,
 * -ENOMEM, -ENOSPC (shared memory short), -EMFILE. */
int registry_create(struct registry *reg, const char *name, const struct shmbus__params *p,
                    bool retain, bool sys, struct registry_topic **out);

/* Adopts a region a participant passes after a restart: validates it as
 * `role` would map it (SHMBUS__ROLE_*), checks it against a topic already
 * known by that name (same nonce) or creates the topic from it, and takes
 * the fds it keeps (then sets *data_fd / *ctrl_fd to
 * SHMBUS__OS_HANDLE_INVALID). A publisher's read-write data fd upgrades a
 * topic known read-only. `want` (may be NULL) are the parameters the
 * participant states. Returns 0 with *out, or an error with a sentence in
 * `text`. */
int registry_adopt(struct registry *reg, const char *name, uint32_t role, uint32_t uid,
                   shmbus__shm_handle *data_fd, shmbus__shm_handle *ctrl_fd,
                   const struct shmbus__params *want, uint64_t now_ns, struct registry_topic **out,
                   char *text, size_t textlen);

/* The member file of `uid` in `t`, created when the uid is new to the
 * topic. Returns m, or SHMBUS_ELIMIT (SHMBUS__MAX_MEMBERS uids take part
 * already), SHMBUS_ESTATE (an adopted topic cannot create files), or a
 * memory error. */
int registry_member(struct registry_topic *t, uint32_t uid);

/* Attaches a new record for a client of `uid`: a publisher record with a
 * daemon-unique pub_id, or a subscriber record (reliable, history,
 * deadline_ms) in its uid's member file. Takes `eventfd` on success.
 * Returns 0 with *out (owner NULL: the caller sets it), SHMBUS_ENOSLOT,
 * SHMBUS_ELIMIT, SHMBUS_ESTATE (publisher on a topic known read-only),
 * -ENOMEM. */
int registry_attach(struct registry *reg, struct registry_topic *t, uint32_t role, bool reliable,
                    uint32_t history, uint32_t deadline_ms, uint32_t pid, uint32_t uid,
                    shmbus__event_handle eventfd, struct registry_part **out);

/* Registers an existing record (adopt): checks that record `index` of
 * `role` is in use, was attached for `pid` and is not registered yet.
 * Takes `eventfd` on success. Returns 0 with *out, -EINVAL (index out of
 * range), SHMBUS_ESTATE with a sentence in `text`, -ENOMEM. */
int registry_register(struct registry *reg, struct registry_topic *t, uint32_t role, uint32_t index,
                      uint32_t pid, shmbus__event_handle eventfd, struct registry_part **out,
                      char *text, size_t textlen);

/* Releases a part whose owner closed it or is gone: a subscriber record is
 * evicted (and publishers waiting for room behind it are woken), a
 * publisher record is repaired and freed (and sleeping subscribers woken).
 * The part is unlinked from its topic (not from its owner's list: the
 * caller does that first) and freed, or parked until the repair succeeds.
 * Returns 0, or 1 when a repair is pending (call registry_repair_pending
 * soon). */
int registry_detach(struct registry *reg, struct registry_part *part);

/* The slots one repair step examines before the daemon serves others
 * again (docs/security.md, H2): a repair of a huge lap is spread over
 * loop turns. */
#define REGISTRY_REPAIR_BUDGET 4096u

/* Advances pending repairs by one step each (at most
 * REGISTRY_REPAIR_BUDGET slots per topic). Returns how many topics still
 * wait; *now (may be NULL) says whether one of them only ran out of
 * budget, so the caller should continue on the next loop turn rather than
 * back off. */
size_t registry_repair_pending(struct registry *reg, bool *now);

/* Reclaims records of adopted topics that no participant adopted: those of
 * dead processes at once, every one once the sweep window is over. Returns
 * how many topics are still being swept. */
size_t registry_sweep(struct registry *reg, uint64_t now_ns);

/* Reconciliation: compares up to `budget` records (subscriber records in
 * every member file, then publisher records) with the registry, resuming
 * where the last call stopped: frees records no live participant holds
 * (and their sleeper bits), restores registered records whose state, pid
 * or deadline was changed, and counts each repair in the topic's
 * `repaired`. Topics being swept after a restart are left to the sweep.
 * Returns how many records were put right. */
size_t registry_reconcile(struct registry *reg, uint32_t budget);

/* Drops `t` if nobody participates and it is not retained (nor a daemon
 * topic). Returns true if it was dropped (t is freed). */
bool registry_maybe_drop(struct registry *reg, struct registry_topic *t);

/* Removes `t` by name (`shmbus topic rm`): it is no longer retained, and a
 * later open of its name creates a new topic. Participants still attached
 * keep theirs, off the name table, until the last one leaves (then it is
 * dropped as usual). Returns true if it was dropped at once (t is freed). */
bool registry_remove(struct registry *reg, struct registry_topic *t);

/* Increments the topic's peer_epoch after peer events were sent. */
void registry_bump_epoch(struct registry_topic *t);

/* Wakes every sleeping subscriber / every publisher waiting for room that
 * the daemon knows, through their eventfds. */
void registry_wake_sleepers(struct registry_topic *t);
void registry_wake_pub_waiters(struct registry_topic *t);

/* Whether two parameter sets are equal. */
bool registry_params_equal(const struct shmbus__params *a, const struct shmbus__params *b);

#endif /* SHMBUSD_REGISTRY_H */
