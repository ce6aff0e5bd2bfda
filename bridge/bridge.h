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

#include "clock.h"
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
  uint64_t exported;         /* messages published to NATS */
  uint64_t export_failed;    /* publishes libnats refused (its buffer full while disconnected) */
  uint64_t export_lost;      /* of earlier subscribers, and overwritten before a restart */
  uint64_t skipped_own;      /* local messages our importer published: not sent back */
  uint64_t imported;         /* published on the local bus */
  uint64_t import_dropped;   /* not published: a reliable local subscriber held the topic back */
  uint64_t import_too_big;   /* larger than the local topic's slot size */
  uint64_t import_dup;       /* --reliable: delivered again, already published here: dropped */
  uint64_t resume_from;      /* --reliable export: the first seq to send (a restart) */
  uint64_t resume_last;      /* --reliable export: the stream's last seq of ours (a restart) */
  bool resume_check;         /* --reliable export: the next message is the first since then */
  struct bridge_seen **seen; /* --reliable import: what each origin had published (import.c) */
  size_t nseen;
  uint64_t export_waits; /* lossy export: times reading waited for libnats's output buffer */
  bool export_waiting;   /* lossy export: reading stopped until that buffer empties */
  uv_poll_t *poll;       /* --reliable export: the subscriber's wake-up event */
  void *buf;             /* --reliable export: one message (the slot size) */
  size_t bufcap;
};

/* --reliable: messages the exporter has in flight at most (published to
 * JetStream, not yet acknowledged); the local topics are held back (their
 * subscribers stopped) while it is full, until half of it is free. */
#define BRIDGE_JS_WINDOW 1024

/* Lossy: the NATS messages done with (published, or imported), kept to be destroyed together,
 * at most this many or BRIDGE_SPENT_BYTES of payload. libnats hands each
 * destroyed message to a collector thread of its own, which it wakes when
 * its queue was empty: destroyed one by one at a moderate rate, that is a
 * thread wake-up (two context switches) per message. Where the bridge can
 * free a message itself (bridge_msg_free_direct), it does so at once
 * instead, and keeps none. */
#define BRIDGE_SPENT_MAX 64
#define BRIDGE_SPENT_BYTES ((size_t)1 << 20)

/* Lossy export: what libnats's output buffer may hold (bytes the socket has
 * not taken) before the exporter stops reading its local topics, and what
 * it holds at most when reading starts again. libnats's buffer has no
 * bound of its own, and after each partial write it moves what is left to
 * its start (memmove): an exporter that reads faster than the server
 * takes spent a third of its time so, on ever more buffered messages
 * (each later, and most dropped downstream). Stopped, a topic's ring
 * drops the oldest instead, counted as the subscriber's loss
 * (export_lost), and costs the exporter nothing. The buffer is looked at
 * every BRIDGE_EXPORT_CHECK bytes published. */
#define BRIDGE_EXPORT_HIGH ((size_t)256 << 10)
#define BRIDGE_EXPORT_LOW ((size_t)32 << 10)
#define BRIDGE_EXPORT_CHECK ((size_t)16 << 10)
/* While waiting, the buffer is also looked at this often (ms): a safety
 * net for a connection that went away meanwhile. */
#define BRIDGE_EXPORT_RECHECK_MS 10

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

/* The values of struct bridge's nats_state. */
enum { NATS_CONNECTING = 0, NATS_CONNECTED = 1, NATS_DISCONNECTED = 2, NATS_CLOSED = 3 };

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
  /* NATS_CONNECTING and the rest (below); written by libnats's callbacks
   * (its threads) and the loop, read by the loop: relaxed, a state to act
   * on at the next check, no data is published with it. */
  atomic_int nats_state;
  atomic_llong rtt_us; /* the last NATS round trip measured, -1 unknown */
  bool stopping;
  /* --reliable (jetstream.c). */
  jsCtx *js;
  char stream[BRIDGE_SUBJECT_MAX];
  atomic_llong js_inflight; /* published, not yet acknowledged (or waiting for a resend) */
  atomic_ullong js_acked;   /* acknowledged by the stream */
  atomic_ullong js_dup;     /* of those, duplicates the stream had already (Nats-Msg-Id) */
  atomic_ullong js_failed;  /* publish errors and timeouts (each sent again) */
  atomic_ullong js_resent;  /* sends again */
  atomic_ullong js_lost;    /* could not be kept for a resend (never expected) */
  atomic_bool js_paused;    /* the local topics are held back */
  uint64_t js_pauses;       /* times the window was full */
  uint64_t js_redelivered;  /* import: deliveries the server says are not the first */
  uv_mutex_t js_lock;       /* guards resend[] and resend_n */
  bool js_lock_init;
  natsMsg **resend, **resend_tmp;
  size_t resend_n, resend_cap;
  uv_async_t *js_wake;
  uv_timer_t *js_timer;
  atomic_bool js_reconnected; /* set by libnats's reconnected callback, taken by the loop */
  uint64_t js_resweep_until;  /* the loop: asking the consumers again until then (uv_now) */
  int64_t js_place_until;     /* creating the stream: when to stop waiting for placement (ms) */
  bool js_place_waiting;      /* ... and that the wait was logged */
  /* Lossy (export.c): messages done with, destroyed in batches. */
  natsMsg *spent[BRIDGE_SPENT_MAX];
  size_t nspent, spent_bytes;
  struct bridge_hdr_buf hbuf; /* export: where its messages are built (the loop's thread) */
  struct bridge_clock clock;  /* Shmbus-Time to and from stamps (the loop's thread) */
  /* Lossy export (export.c): waiting for libnats's output buffer. */
  size_t export_unchecked;  /* bytes published since the buffer was last looked at */
  size_t export_nwaiting;   /* topics whose reading is stopped */
  uv_check_t *export_check; /* after each I/O phase (where libnats writes): resume? */
  uv_timer_t *export_timer; /* ... and every BRIDGE_EXPORT_RECHECK_MS */
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
/* At the end, before the last stats: what the topics whose reading waits
 * for libnats's buffer have not read is counted lost (export_lost). */
void bridge_export_discard_waiting(struct bridge *b);

/* --reliable: reads what waits on a topic while the window has room. */
void bridge_export_drain(struct bridge_topic *t);
/* Lossy: destroys `m` (with `len` bytes of payload): at once where
 * bridge_msg_free frees directly, else later, with others
 * (BRIDGE_SPENT_MAX), from the loop's thread. */
void bridge_spent_add(struct bridge *b, natsMsg *m, size_t len);
/* Destroys what bridge_spent_add kept (before libnats stops its threads). */
void bridge_spent_free(struct bridge *b);

/* ---- jetstream.c (--reliable) ------------------------------------------- */

/* The stream's name without --stream: the prefix with each '.' as '_'. */
void bridge_js_stream_name(const char *prefix, char *out, size_t cap);
/* The JetStream context and the stream: bound with --stream (it must
 * cover P.>), else found or created. Blocks (requests). Returns 0, -EAGAIN
 * when the cluster cannot place the stream's replicas yet (call it again
 * in a moment: BRIDGE_JS_PLACE_RETRY_MS), or a negative code (logged). */
#define BRIDGE_JS_PLACE_RETRY_MS 250
int bridge_js_start(struct bridge *b);
/* The loop's side of the exporter: the resend timer, the resume wake-up. */
int bridge_js_loop_start(struct bridge *b);
/* Publishes one local message to the stream (asynchronously, with its
 * Nats-Msg-Id); holds the local topics back when the window is full.
 * Returns 0 or -ENOMEM. */
int bridge_js_export(struct bridge_topic *t, const void *data, size_t len,
                     const struct shmbus_msg_info *info);
void bridge_js_pause(struct bridge *b);
/* libnats's acknowledgement handler (any thread). */
void bridge_js_on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure);
/* Whether the stream holds a message of ours for the topic (a restarted
 * exporter); then *last is the seq of the last one stored. Blocks (a
 * request). */
bool bridge_js_last_seq(struct bridge *b, const struct bridge_topic *t, uint64_t *last);
/* Subscribes to the durable push consumer of `filter` (the k-th subject of
 * the imports), created if missing. Returns 0 or a negative code (logged). */
int bridge_js_subscribe(struct bridge *b, const char *filter, int k, natsMsgHandler cb, void *arg,
                        natsSubscription **sub);
/* After the subscription of the k-th consumer was unsubscribed (stopping):
 * waits (bounded) until the server sees no subscriber, then puts what the
 * consumer delivered and did not have acknowledged back on its redelivery
 * queue for the next run (jetstream.c says why). Blocks. */
void bridge_js_unsubscribed(struct bridge *b, int k);
/* After the connection came back (a NATS node failed, a network cut): asks
 * the k-th consumer again for what it delivered and did not have
 * acknowledged (jetstream.c says why). Blocks (1 s at most). Returns 0, or
 * a negative code when the consumer could not be asked (try again). */
int bridge_js_reconnected(struct bridge *b, int k);
/* Acknowledges a delivery (to its $JS.ACK reply subject); *redelivered
 * says whether the server had delivered it before. Returns 0, -EBADMSG
 * (no JetStream reply subject) or -EIO. */
int bridge_js_ack(struct bridge *b, natsMsg *msg, bool *redelivered);
/* Waits (bounded) for what is in flight, closes the loop's handles. */
void bridge_js_stop(struct bridge *b);
/* Frees the rest, after nats_CloseAndWait. */
/* Releases the JetStream context (after natsConnection_Close, before the
 * connection is destroyed); bridge_js_free then frees the rest. */
void bridge_js_release(struct bridge *b);
void bridge_js_free(struct bridge *b);

/* ---- import.c ---------------------------------------------------------- */

/* Subscribes to the subjects of every --import pattern. Returns 0 or a
 * negative code (logged). */
int bridge_import_start(struct bridge *b);
/* Unsubscribes, drops what is queued, closes the publishers. */
void bridge_import_stop(struct bridge *b);
/* Frees the rest, once no libnats thread can call the handler any more
 * (after nats_CloseAndWait). Run the loop afterwards. */
void bridge_import_free(struct bridge *b);
/* Frees a topic's record of what it imported (--reliable). */
void bridge_topic_seen_free(struct bridge_topic *t);
/* --reliable: retries a message held for room on its topic (the resend
 * timer calls it: a safety net for the writable callback); the count of
 * such retries. */
void bridge_import_poke(struct bridge *b);
uint64_t bridge_import_pokes(const struct bridge *b);
/* --reliable, the loop: the connection came back; each consumer is asked
 * again for what it left unacknowledged (bridge_js_reconnected). Returns 0,
 * or a negative code when one could not be asked (try again). */
int bridge_import_reconnected(struct bridge *b);
/* Messages waiting in the hand-over queue from libnats's threads, and
 * those dropped because it was full (any thread). */
void bridge_import_queue_stats(struct bridge *b, size_t *queued, uint64_t *dropped);

#endif /* SHMBUS_BRIDGE_H */
