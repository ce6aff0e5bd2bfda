/* quota: quotas and the rate limit, pure. See quota.h. */
#include "quota.h"

#include <errno.h>
#include <stdio.h>

#include "shmbus/error.h"

void quota_rate_init(struct quota_bucket *b, const struct config_limits *lim, uint64_t now_ns) {
  b->tokens = (double)lim->burst;
  b->at_ns = now_ns;
}

enum quota_rate quota_rate_take(struct quota_bucket *b, const struct config_limits *lim,
                                uint64_t now_ns, char *text, size_t textlen) {
  double burst = lim->burst != 0 ? (double)lim->burst : 1.0;

  if (lim->rate == 0)
    return QUOTA_RATE_OK;
  /* A clock that went back (it cannot: monotonic) adds nothing. */
  if (now_ns > b->at_ns)
    b->tokens += (double)(now_ns - b->at_ns) * 1e-9 * (double)lim->rate;
  if (b->tokens > burst)
    b->tokens = burst;
  b->at_ns = now_ns;
  b->tokens -= 1.0;
  if (b->tokens >= 0.0)
    return QUOTA_RATE_OK;
  if (b->tokens < -burst) {
    (void)snprintf(text, textlen,
                   "quota: flooding: kept sending while over the rate limit, more than %llu "
                   "control messages beyond the limit \"rate\" of %llu per second; disconnected",
                   (unsigned long long)lim->burst, (unsigned long long)lim->rate);
    return QUOTA_RATE_FLOOD;
  }
  (void)snprintf(text, textlen,
                 "quota: more than %llu control messages per second (limit \"rate\", burst "
                 "%llu); slow down",
                 (unsigned long long)lim->rate, (unsigned long long)lim->burst);
  /* The first refusal leaves the balance in (-2, -1]: later ones go lower. */
  return b->tokens > -2.0 ? QUOTA_RATE_REFUSED_FIRST : QUOTA_RATE_REFUSED;
}

void quota_rate_charge(struct quota_bucket *b, uint64_t n) {
  b->tokens -= (double)n;
}

int quota_records(const struct config_limits *lim, size_t nparts, char *text, size_t textlen) {
  uint64_t max =
      lim->records != 0 && lim->records < QUOTA_MAX_RECORDS ? lim->records : QUOTA_MAX_RECORDS;

  if (nparts < max)
    return 0;
  (void)snprintf(text, textlen,
                 "quota: this client holds %zu publisher and subscriber records; the daemon's "
                 "limit \"records\" is %llu",
                 nparts, (unsigned long long)max);
  return SHMBUS_EQUOTA;
}

/* Whether `used` plus `more` bytes go beyond `limit` (0: none), without
 * overflowing. */
static bool quota_over(uint64_t limit, uint64_t used, uint64_t more) {
  return limit != 0 && (more > limit || used > limit - more);
}

int quota_create(const struct config_limits *lim, const struct quota_create *q, char *text,
                 size_t textlen) {
  if (lim->region != 0 && q->bytes > lim->region) {
    (void)snprintf(text, textlen,
                   "topic \"%s\" would need a region of %llu bytes; the daemon's limit "
                   "\"region\" is %llu bytes (slots=%u slot_size=%u max_subs=%u max_pubs=%u)",
                   q->topic, (unsigned long long)q->bytes, (unsigned long long)lim->region,
                   q->slots, q->slot_size, q->max_subs, q->max_pubs);
    return SHMBUS_ELIMIT;
  }
  if (lim->topics != 0 && q->own->topics >= lim->topics) {
    (void)snprintf(text, textlen,
                   "quota: this client created %llu topics that still exist; the daemon's limit "
                   "\"topics\" is %llu",
                   (unsigned long long)q->own->topics, (unsigned long long)lim->topics);
    return SHMBUS_EQUOTA;
  }
  if (quota_over(lim->memory, q->own->bytes, q->bytes)) {
    (void)snprintf(text, textlen,
                   "quota: the topics this client created hold %llu bytes of shared memory; "
                   "\"%s\" needs %llu more; the daemon's limit \"memory\" is %llu bytes",
                   (unsigned long long)q->own->bytes, q->topic, (unsigned long long)q->bytes,
                   (unsigned long long)lim->memory);
    return SHMBUS_EQUOTA;
  }
  if (q->uid != NULL && ((lim->retained != 0 && q->uid->topics >= lim->retained) ||
                         quota_over(lim->retained_memory, q->uid->bytes, q->bytes))) {
    (void)snprintf(text, textlen,
                   "quota: uid %u created %llu retained topics holding %llu bytes; \"%s\" needs "
                   "%llu more; the daemon's limits \"retained\" and \"retained_memory\" are %llu "
                   "and %llu (shmbus topic rm frees them)",
                   (unsigned)q->uid_number, (unsigned long long)q->uid->topics,
                   (unsigned long long)q->uid->bytes, q->topic, (unsigned long long)q->bytes,
                   (unsigned long long)lim->retained, (unsigned long long)lim->retained_memory);
    return SHMBUS_EQUOTA;
  }
  return 0;
}

int quota_unread(const struct config_limits *lim, uint32_t unread, char *text, size_t textlen) {
  if (lim->unread == 0 || unread < lim->unread)
    return 0;
  (void)snprintf(text, textlen,
                 "quota: %u snapshot replies sent to this client are still unread; the daemon's "
                 "limit \"unread\" is %llu: read them first",
                 unread, (unsigned long long)lim->unread);
  return SHMBUS_EQUOTA;
}

int quota_unread_bytes(const struct config_limits *lim, uint32_t uid, uint64_t bytes, uint64_t len,
                       char *text, size_t textlen) {
  if (!quota_over(lim->unread_bytes, bytes, len))
    return 0;
  (void)snprintf(text, textlen,
                 "quota: the connections of uid %u leave %llu bytes of snapshot replies unread; "
                 "this one needs %llu more; the daemon's limit \"unread_bytes\" is %llu",
                 (unsigned)uid, (unsigned long long)bytes, (unsigned long long)len,
                 (unsigned long long)lim->unread_bytes);
  return SHMBUS_EQUOTA;
}

uint64_t quota_max_participants(const struct config_limits *lim, uint64_t nofile) {
  uint64_t cap = lim->clients;

  if (cap == 0 || cap > QUOTA_MAX_PARTICIPANTS)
    cap = QUOTA_MAX_PARTICIPANTS;
  /* Each participant costs its socket, its pidfd (the liveness watch,
   * participant.h; best effort: without a descriptor to spare it is
   * judged by its socket alone), the eventfds of its records and the
   * memory files of the topics it creates. */
  if (nofile != 0 && cap > nofile / 2)
    cap = nofile / 2;
  return cap != 0 ? cap : 1;
}

int quota_admit(const struct config_limits *lim, const struct quota_admission *a, char *text,
                size_t textlen) {
  uint64_t cap = a->cap != 0 ? a->cap : 1;
  uint64_t reserved = lim->reserved < cap ? lim->reserved : cap - 1;

  if (a->connected >= cap) {
    (void)snprintf(text, textlen,
                   "the daemon serves %llu clients, its limit (\"clients\" %llu, or half its "
                   "RLIMIT_NOFILE of %llu)",
                   (unsigned long long)a->connected, (unsigned long long)cap,
                   (unsigned long long)a->nofile);
    return -EMFILE;
  }
  if (a->trusted)
    return 0;
  if (a->connected >= cap - reserved) {
    (void)snprintf(text, textlen,
                   "quota: the daemon serves %llu clients; its last %llu connections (limit "
                   "\"reserved\") are kept for its owner (uid %u) and root",
                   (unsigned long long)a->connected, (unsigned long long)reserved,
                   (unsigned)a->owner);
    return SHMBUS_EQUOTA;
  }
  if (!a->system || lim->connections == 0 || a->of_uid < lim->connections)
    return 0;
  (void)snprintf(text, textlen,
                 "quota: uid %u has %llu connections to the system bus (limit \"connections\" is "
                 "%llu)",
                 (unsigned)a->uid, (unsigned long long)a->of_uid,
                 (unsigned long long)lim->connections);
  return SHMBUS_EQUOTA;
}

uint32_t quota_deadline(uint32_t cap, uint32_t want) {
  if (cap == 0)
    return want;
  return want == 0 || want > cap ? cap : want;
}
