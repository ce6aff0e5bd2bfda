/* bus: the objects behind the public topic API (include/shmbus/bus.h):
 * the bus, its handles, publishers and subscribers. bus.c owns the bus's
 * lifecycle; the other modules of the API each do one job on these
 * objects (docs/design.md, the map of the code):
 *   handle.c       opening, re-opening and closing a handle;
 *   peer_events.c  the daemon's events (peers joining and leaving);
 *   reconnect.c    processing the session, reconnecting after a daemon
 *                  restart, adopting records, re-opening orphans;
 *   pub.c, sub.c   the publisher and subscriber calls that never block;
 *   wait.c         the calls that block.
 * An event-loop integration (uv.c) attaches through struct
 * shmbus__loop_ops; the core never calls it otherwise.
 *
 * A bus owns its connection to the daemon and a list of handles
 * (publishers and subscribers). Each handle owns its topic's mappings (the
 * data file, its own uid's member file and, for a publisher, the member
 * files of the subscribers' uids), the two fds it got from the daemon (kept
 * to re-register after a daemon restart), its own eventfd, and its peer
 * table: a publisher keeps the subscribers' eventfds (to wake sleepers), a
 * subscriber the publishers' (to wake publishers waiting for room),
 * indexed by global record index, each beside the last ticket this handle
 * signalled for that record (ring.c, the ticket protocol). */
#ifndef SHMBUS_BUS_INTERNAL_H
#define SHMBUS_BUS_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "notify.h"
#include "session.h"
#include "region.h"
#include "ring.h"
#include "shmbus/bus.h"

struct shmbus__handle;
struct shmbus__uv_handle;
struct shmbus__uv_bus;

/* An event-loop integration attached to a bus (uv.c, when the caller
 * started a bus or a handle on a libuv loop). The core calls it through
 * these hooks only, so that it neither includes nor links the loop's
 * library; a bus without one has bus->loop == NULL. */
struct shmbus__loop_ops {
  /* The bus's socket changed (reconnected or lost). */
  void (*bus_changed)(shmbus_bus *bus);
  /* The bus's socket is about to be closed (while it is still valid). */
  void (*bus_closing)(shmbus_bus *bus);
  /* The bus is being freed: release its loop state. */
  void (*bus_release)(shmbus_bus *bus);
  /* A handle is being closed: release its loop state (its event handle
   * stays the handle's, which closes it right after). */
  void (*handle_release)(struct shmbus__handle *h);
};

struct shmbus__handle {
  shmbus_bus *bus;
  struct shmbus__handle *next; /* the bus's list */
  uint32_t role;               /* SHMBUS__ROLE_PUB or SHMBUS__ROLE_SUB */
  uint32_t topic_id;           /* the daemon's id; changes after a restart */
  uint32_t index;              /* our ring record */
  uint32_t pending_peers;      /* peer_join events still expected after opened */
  char topic[SHMBUS__TOPIC_MAX + 1];
  struct shmbus__params params;
  struct shmbus__region region;
  shmbus__shm_handle data_fd;
  shmbus__shm_handle ctrl_fd; /* the own member file */
  shmbus__event_handle event_fd;
  uint32_t member;       /* m of the own member file */
  uint32_t deadline_cap; /* the daemon's bound on reliable waits, ms; 0: none */
  /* The peers to wake: a publisher's directory holds the subscribers'
   * events (one table per member file), a subscriber's the publishers'. */
  struct shmbus__notify wake;
  uint64_t woken;      /* waits of the library (wait.c, uv.c) that this handle's event ended */
  uint64_t epoch_seen; /* own member file's peer_epoch when we last read the socket */
  struct shmbus__uv_handle *uv;
  bool orphan; /* a new daemon could not take it back: re-open later */
  /* What the caller asked for, to open the topic again if a new daemon
   * cannot adopt it (it re-created the topic meanwhile). */
  struct {
    bool reliable;
    bool retain;
    bool has_params;
    uint32_t history;
    uint32_t deadline_ms;
    struct shmbus__params params;
  } want;
};

struct shmbus_pub {
  struct shmbus__handle h;
  struct shmbus__ring_pub ring;
  uint32_t deadline_ms; /* shmbus_pub_set_deadline; 0: none */
  /* The current EFULL episode: which record holds us back, at which
   * cursor, since when (CLOCK_MONOTONIC ns). Read on the EFULL path only. */
  bool full_armed;
  uint32_t full_g;
  uint64_t full_cursor;
  uint64_t full_since_ns;
};

struct shmbus_sub {
  struct shmbus__handle h;
  struct shmbus__ring_sub ring;
  /* The bounded, adaptive stay awake before sleeping (sub.c). */
  uint64_t empty_ns; /* when a wait last found nothing; 0 once a message came */
  uint64_t gap_ns;   /* the estimated time from "nothing" to the next message */
  uint32_t spin_ns;  /* the longest stay awake; 0: never */
  uint32_t skip;     /* sleeps still to take without staying awake (after a vain one) */
  uint32_t backoff;  /* the next `skip` after a vain stay awake: 1, 2, 4, 8 */
  /* Wake thresholds (sub.c, shmbus__sub_sleep): a sleep while messages
   * flow asks publishers for a signal only once wake_after messages wait,
   * and is bounded by a timer of wake_within_ns. */
  uint32_t wake_after;     /* 0 or 1: thresholds off */
  bool flowing;            /* a message came since the last empty timer period */
  uint64_t wake_within_ns; /* the timer's period */
  uint64_t timer_due_ns;   /* when the current threshold sleep's timer ends; 0: none */
  uint64_t timer_wakeups;  /* threshold sleeps that the timer ended */
};

struct shmbus_bus {
  struct shmbus__session session;
  struct shmbus__handle *handles;
  uint64_t retry_at_ns; /* next reconnect attempt while disconnected */
  uint32_t backoff_ms;
  uint32_t orphans;                    /* handles with orphan set */
  uint64_t orphan_retry_ns;            /* next attempt to re-open them */
  const struct shmbus__loop_ops *loop; /* NULL: no event loop attached */
  struct shmbus__uv_bus *uv;           /* uv.c's state, NULL without */
  struct shmbus_watch *watches;        /* discover.c's list */
  uint32_t next_watch_id;              /* never 0 */
};

#endif /* SHMBUS_BUS_INTERNAL_H */
