/* config: who may publish or subscribe to what. A config file is a list of
 * rules, one per line:
 *
 *   allow|deny  pub|sub|any|create|retain|remove  PATTERN  WHO...
 *
 * (`any` means pub and sub.) When no rule matches, the default policy
 * decides: pub, sub, retain and remove only for the bus owner (the daemon's
 * uid) and root; create for whoever may publish the topic (publishing
 * implies creating, subscribing does not); removing a topic is also allowed
 * to the uid that created it (decided by the server, not here). A
 * config_decide answer of "no rule" lets the server apply those.
 *
 * PATTERN is a topic name whose segments may be `*` (exactly one segment)
 * or `**` (any number of segments, zero included). WHO is `*`, `uid:N`,
 * `gid:N`, `user:NAME` or `group:NAME`; names are resolved when the file is
 * loaded (on Windows to SIDs: NAME is an account name, `DOMAIN\name`, a
 * well-known name or a SID string `S-1-...`; `uid:N` and `gid:N` are
 * refused there). `#` starts a comment. The first rule whose operation, pattern and
 * one of whose WHO entries match decides; when none matches, the default
 * policy allows only the bus owner (the daemon's uid) and root.
 *
 * A line `limit NAME VALUE` sets one of the per-client limits instead (see
 * struct config_limits; sizes take a K, M or G suffix, powers of 1024).
 *
 * A config is immutable once loaded: a reload builds a new one and the
 * caller swaps them, so a broken file never replaces a working one.
 * Thread-safety: load/free are not thread-safe; check is pure. */
#ifndef SHMBUSD_CONFIG_H
#define SHMBUSD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Operations a rule applies to (the rule verbs pub, sub, create, retain,
 * remove; `any` is pub and sub). */
enum {
  CONFIG_OP_PUB = 1,
  CONFIG_OP_SUB = 2,
  CONFIG_OP_CREATE = 4, /* create a topic and choose its parameters */
  CONFIG_OP_RETAIN = 8, /* create it retained (kept without participants) */
  CONFIG_OP_REMOVE = 16 /* `shmbus topic rm` a topic someone else created */
};

struct config;

/* Per-client limits: what one connection may hold or do. The defaults are
 * far above normal use and exist so that one client cannot exhaust the
 * daemon or the machine's shared memory for the others. 0 means no limit
 * (for each, the daemon's hard caps still apply). */
struct config_limits {
  uint64_t topics;       /* topics this client created that still exist */
  uint64_t records;      /* publisher and subscriber records it holds */
  uint64_t memory;       /* bytes of the regions of the topics it created */
  uint64_t region;       /* bytes of one topic's region (data + control file) */
  uint64_t rate;         /* control messages per second, sustained */
  uint64_t burst;        /* control messages in a burst above the rate */
  uint64_t connections;  /* system bus: connections of one uid (not the owner, not root) */
  uint64_t clients;      /* connections in all; the last `reserved` of them only for owner/root */
  uint64_t reserved;     /* connections kept for the owner and root */
  uint64_t hello_ms;     /* a connection must send hello within this many ms */
  uint64_t unread;       /* snapshot replies one client may leave unread */
  uint64_t unread_bytes; /* bytes of unread snapshot replies of one uid (not owner/root) */
  uint64_t retained;     /* retained topics one uid created that still exist */
  uint64_t retained_memory; /* bytes of the retained topics one uid created */
  uint64_t deadline_ms; /* system bus: the longest a publisher waits for one reliable subscriber */
};

#define CONFIG_LIMIT_TOPICS 1024u
#define CONFIG_LIMIT_RECORDS 4096u
#define CONFIG_LIMIT_MEMORY (16ull << 30)
#define CONFIG_LIMIT_REGION (4ull << 30)
#define CONFIG_LIMIT_RATE 2000u
#define CONFIG_LIMIT_BURST 10000u
#define CONFIG_LIMIT_CONNECTIONS 1024u
#define CONFIG_LIMIT_CLIENTS 4096u
#define CONFIG_LIMIT_RESERVED 64u
#define CONFIG_LIMIT_HELLO_MS 5000u
#define CONFIG_LIMIT_UNREAD 4u
#define CONFIG_LIMIT_UNREAD_BYTES (64ull << 20)
#define CONFIG_LIMIT_RETAINED 64u
#define CONFIG_LIMIT_RETAINED_MEMORY (1ull << 30)
#define CONFIG_LIMIT_DEADLINE_MS 10000u

/* The default limits. */
void config_limits_default(struct config_limits *l);

/* Sets limit `name` (the field names of struct config_limits) from
 * `value` (a decimal number; memory, region, unread_bytes and
 * retained_memory take a K/M/G suffix).
 * Returns 0, or -EINVAL with a sentence in `err`. */
int config_limit_set(struct config_limits *l, const char *name, const char *value, char *err,
                     size_t errlen);

/* Applies "NAME=VALUE" (the daemon's --limit) to cfg's limits. Returns 0,
 * or -EINVAL with a sentence in `err`. */
int config_limit_override(struct config *cfg, const char *arg, char *err, size_t errlen);

/* The limits of a loaded config (the defaults where it sets none). */
const struct config_limits *config_limits(const struct config *cfg);

struct host_peer;

/* Who asks: the peer identity of its connection (host_peer_get), plus the
 * groups of its user (host_user_groups). `groups` and `peer` are borrowed
 * for the call. The rules compare users and groups as the OS names them
 * (host_principal_is_user, host_principal_has_member): Linux the numbers,
 * Windows the SIDs of `peer` (NULL: no connection, no user or group rule
 * matches there). */
struct config_cred {
  uint32_t uid;
  uint32_t gid;
  const uint32_t *groups;
  size_t ngroups;
  const struct host_peer *peer;
};

/* Loads `path`. Returns 0 with a new config in *out (free with
 * config_free), or a negative errno: -ENOENT when the file does not exist,
 * -EINVAL for a syntax error, an unknown user or group, ... In every error
 * case `err` holds a sentence naming file:line. `owner` is the uid the
 * default policy allows besides root. */
int config_load(const char *path, uint32_t owner, struct config **out, char *err, size_t errlen);

/* An empty config (only the default policy) for `owner`. NULL when out of
 * memory. */
struct config *config_new_default(uint32_t owner);

/* Frees a config; NULL is fine. */
void config_free(struct config *cfg);

/* Whether `cred` may do `op` (CONFIG_OP_PUB or _SUB) on `topic`. Writes
 * into `why` the rule that decided ("FILE:LINE") or "default policy". */
bool config_check(const struct config *cfg, const char *topic, unsigned op,
                  const struct config_cred *cred, char *why, size_t whylen);

/* Like config_check, but says when no rule matched: returns 1 (allowed
 * by a rule), 0 (denied by a rule) or -1 (no rule matched; `why` says
 * "default policy" and the caller applies its default). */
int config_decide(const struct config *cfg, const char *topic, unsigned op,
                  const struct config_cred *cred, char *why, size_t whylen);

/* The number of rules (for the log after a load). */
size_t config_rule_count(const struct config *cfg);

/* Whether any rule names a group (then callers need the groups of a
 * client; otherwise they can skip looking them up). */
bool config_uses_groups(const struct config *cfg);

#endif /* SHMBUSD_CONFIG_H */
