/* shmbus-bridge: the state its modules share (one libuv loop, one bus,
 * one NATS connection). Everything here is used from the loop's thread
 * only, except what says otherwise: libnats calls its message and
 * connection callbacks from threads of its own, and those hand over
 * through import.c's queue (a mutex and a uv_async) and atomics. */
#ifndef SHMBUS_BRIDGE_H
#define SHMBUS_BRIDGE_H

#include <nats/nats.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "headers.h"
#include "shmbus/shmbus.h"
#include "shmbus/uv.h"
#include "subject.h"

/* One topic the bridge handles, in either direction. */
struct bridge_topic {
  char name[256];
  char subject[BRIDGE_SUBJECT_MAX];
  shmbus_sub *sub; /* export: the local subscription, NULL if none */
  shmbus_pub *pub; /* import: the local publisher, NULL if none */
  struct bridge *b;
  uint64_t exported;       /* messages published to NATS */
  uint64_t export_failed;  /* publishes libnats refused (its buffer full while disconnected) */
  uint64_t export_lost;    /* of earlier subscribers (before the topic went away) */
  uint64_t skipped_own;    /* local messages our importer published: not sent back */
  uint64_t imported;       /* published on the local bus */
  uint64_t import_dropped; /* not published: a reliable local subscriber held the topic back */
  uint64_t import_too_big; /* larger than the local topic's slot size */
};

/* Counts of messages refused before they had a topic. */
struct bridge_refused {
  uint64_t subject; /* a subject that decodes to no topic or matches no --import */
  uint64_t headers; /* missing or malformed headers, or a topic header that is not the subject's */
  uint64_t own;     /* our own origin, coming back from NATS (not an error) */
};

struct bridge_opts {
  const char *nats_urls;
  const char *dir;
  bool system;
  const char **exports;
  int nexports;
  const char **imports;
  int nimports;
  const char *prefix;
  bool reliable;
  const char *stream;
  const char *name;
  unsigned stats_interval_s; /* 0: on SIGUSR1 only */
};

struct bridge_import;

struct bridge {
  struct bridge_opts o;
  uv_loop_t *loop;
  shmbus_bus *bus;
  natsConnection *nc;
  struct bridge_topic **topics;
  size_t ntopics, cap;
  struct bridge_refused refused;
  shmbus_watch **watches;
  size_t nwatches;
  struct bridge_import *imp;
  atomic_int nats_state; /* 0 connecting, 1 connected, 2 disconnected, 3 closed */
  atomic_llong rtt_us;   /* the last NATS round trip measured, -1 unknown */
  bool stopping;
};

/* ---- main.c: logging ---------------------------------------------------- */

/* One line on stderr: "shmbus-bridge: ..." (callable from any thread). */
void bridge_log(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* ---- stats.c ----------------------------------------------------------- */

/* The topic named `name`, created (all counts 0) if new; NULL when out of
 * memory or the name has no subject. */
struct bridge_topic *bridge_topic_get(struct bridge *b, const char *name);
/* The topic named `name`, or NULL. */
struct bridge_topic *bridge_topic_find(const struct bridge *b, const char *name);
/* Prints the stats: a totals line and one line per topic. */
void bridge_stats_print(struct bridge *b);
/* Frees every topic (their handles must be closed already). */
void bridge_topics_free(struct bridge *b);

/* ---- export.c ---------------------------------------------------------- */

/* Starts exporting every --export pattern. Returns 0 or a negative code
 * (logged). */
int bridge_export_start(struct bridge *b);
/* Stops: closes the watches and the subscribers. */
void bridge_export_stop(struct bridge *b);

/* ---- import.c ---------------------------------------------------------- */

/* Subscribes to the subjects of every --import pattern. Returns 0 or a
 * negative code (logged). */
int bridge_import_start(struct bridge *b);
/* Unsubscribes, drops what is queued, closes the publishers. */
void bridge_import_stop(struct bridge *b);
/* Frees the rest, once no libnats thread can call the handler any more
 * (after nats_CloseAndWait). Run the loop afterwards. */
void bridge_import_free(struct bridge *b);
/* Messages waiting in the hand-over queue from libnats's threads, and
 * those dropped because it was full (any thread). */
void bridge_import_queue_stats(struct bridge *b, size_t *queued, uint64_t *dropped);

#endif /* SHMBUS_BRIDGE_H */
