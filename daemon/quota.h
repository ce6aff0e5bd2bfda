/* quota: the daemon's quotas and rate limit as pure functions (M5, M6, M7
 * in docs/security.md). Each check takes the limits (struct
 * config_limits, 0 meaning none) and the usage it judges, and returns 0,
 * or the error code the request gets with the sentence it gets in `text`:
 * formatted once, sent to the participant and written to the log as is.
 * Nothing here reads a clock, a socket or the registry, so every rule is
 * unit-tested (tests/quota_test.c).
 *
 * Thread-safety: none needed; the functions touch only their arguments. */
#ifndef SHMBUSD_QUOTA_H
#define SHMBUSD_QUOTA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* Hard caps above the configurable limits. */
#define QUOTA_MAX_PARTICIPANTS 4096u
#define QUOTA_MAX_RECORDS 65536u

/* What one participant (or one uid) holds that a quota counts. */
struct quota_usage {
  uint64_t topics; /* topics created that still exist (retained ones, for a uid) */
  uint64_t bytes;  /* bytes of their regions */
};

/* The token bucket of control messages: `rate` tokens a second, up to
 * `burst`. */
struct quota_bucket {
  double tokens;
  uint64_t at_ns; /* when `tokens` was last brought up to date */
};

/* What quota_rate_take decided. */
enum quota_rate {
  QUOTA_RATE_OK = 0,        /* handle the request */
  QUOTA_RATE_REFUSED,       /* refuse it with SHMBUS_EQUOTA */
  QUOTA_RATE_REFUSED_FIRST, /* the same, the first refusal of an episode (log it) */
  QUOTA_RATE_FLOOD          /* refuse it and disconnect: it kept sending, refused */
};

/* A full bucket at `now_ns`. */
void quota_rate_init(struct quota_bucket *b, const struct config_limits *lim, uint64_t now_ns);

/* Takes a token for one request at `now_ns`. A request with no token left
 * is refused and still costs one, so the balance goes negative; a
 * participant that keeps sending while refused, down to -burst, is
 * flooding. With `rate` 0 every request passes. `text` gets the sentence
 * of a refusal. */
enum quota_rate quota_rate_take(struct quota_bucket *b, const struct config_limits *lim,
                                uint64_t now_ns, char *text, size_t textlen);

/* Takes `n` more tokens at once (work beyond one request's: a snapshot of
 * many topics). */
void quota_rate_charge(struct quota_bucket *b, uint64_t n);

/* Whether a participant holding `nparts` records may hold one more (limit
 * `records`, under QUOTA_MAX_RECORDS). Returns 0 or SHMBUS_EQUOTA. */
int quota_records(const struct config_limits *lim, size_t nparts, char *text, size_t textlen);

/* What creating a topic asks for. */
struct quota_create {
  const char *topic;
  uint64_t bytes;                                /* its region (data and one member file) */
  uint32_t slots, slot_size, max_subs, max_pubs; /* for the sentence */
  const struct quota_usage *own;                 /* the creator's topics and bytes */
  const struct quota_usage *uid;                 /* its uid's retained topics; NULL: not charged */
  uint32_t uid_number;                           /* for the sentence */
};

/* Whether the topic may be created: its region under `region`
 * (SHMBUS_ELIMIT), the creator under `topics` and `memory`, and, for a
 * retained topic charged to a uid, the uid under `retained` and
 * `retained_memory` (SHMBUS_EQUOTA). Returns 0 or the code. */
int quota_create(const struct config_limits *lim, const struct quota_create *q, char *text,
                 size_t textlen);

/* Whether a participant with `unread` snapshot replies still unread may
 * get another (limit `unread`). Returns 0 or SHMBUS_EQUOTA. */
int quota_unread(const struct config_limits *lim, uint32_t unread, char *text, size_t textlen);

/* Whether uid `uid`, whose connections leave `bytes` of snapshot replies
 * unread, may get one of `len` more (limit `unread_bytes`; the caller
 * exempts the owner and root). Returns 0 or SHMBUS_EQUOTA. */
int quota_unread_bytes(const struct config_limits *lim, uint32_t uid, uint64_t bytes, uint64_t len,
                       char *text, size_t textlen);

/* How many participants the daemon serves at most: the `clients` limit,
 * under QUOTA_MAX_PARTICIPANTS and under half of `nofile` (the descriptor
 * limit, 0: unknown), at least 1. */
uint64_t quota_max_participants(const struct config_limits *lim, uint64_t nofile);

/* Who asks to connect, and how many are there. */
struct quota_admission {
  uint64_t cap;       /* quota_max_participants */
  uint64_t nofile;    /* for the sentence */
  uint64_t connected; /* participants now */
  uint64_t of_uid;    /* of those, the ones of the same uid */
  uint32_t uid;
  uint32_t owner; /* the daemon's uid */
  bool trusted;   /* the owner or root */
  bool system;    /* the system bus: `connections` applies */
};

/* M7, admission: all slots taken (-EMFILE); the last `reserved` slots
 * are kept for the owner and root; on the system bus one other uid may
 * hold at most `connections` (SHMBUS_EQUOTA). Returns 0 or the code. */
int quota_admit(const struct config_limits *lim, const struct quota_admission *a, char *text,
                size_t textlen);

/* A reliable subscriber's deadline (ms, 0: none) as the daemon records
 * it: `want`, capped by the bus's `cap` (0: no cap). */
uint32_t quota_deadline(uint32_t cap, uint32_t want);

#endif /* SHMBUSD_QUOTA_H */
