/* discover: topic watches (include/shmbus/discover.h) on a bus. The bus's
 * modules call in here at four points: an event of a watch arrived
 * (peer_events.c), the bus reconnected to a (maybe new) daemon, it
 * processed what the daemon sent (reconnect.c), the bus closes (bus.c). */
#ifndef SHMBUS_DISCOVER_INTERNAL_H
#define SHMBUS_DISCOVER_INTERNAL_H

#include <stdint.h>

#include "proto.h"
#include "shmbus/bus.h"
#include "shmbus/discover.h"

struct shmbus__uv_watch;

/* An event-loop integration attached to a watch (uv.c, after
 * shmbus_uv_watch_start), as struct shmbus__loop_ops is for a bus: the
 * core calls it through these hooks only and never includes the loop's
 * library. */
struct shmbus__watch_loop_ops {
  /* Run shmbus__discover_turn for the watch from the loop in `delay_ms`
   * ms (0: on the next iteration), unless a turn is scheduled already. */
  void (*schedule)(shmbus_watch *w, struct shmbus__uv_watch *state, uint64_t delay_ms);
  /* The watch is being freed: release the loop's state for it. */
  void (*release)(shmbus_watch *w, struct shmbus__uv_watch *state);
};

/* Handles a topic_up or topic_down event. Takes the message's fds (it has
 * none by its type). */
void shmbus__discover_event(shmbus_bus *bus, struct shmbus__msg *ev);

/* After a reconnect: renews every watch with the daemon and reports the
 * difference. Failures are retried on the next shmbus_watch_next (or the
 * next reconnect). */
void shmbus__discover_reconnected(shmbus_bus *bus);

/* Renews the watches a reconnect could not renew (at most once a second
 * each); the bus calls it whenever it handled what the daemon sent. */
void shmbus__discover_retry(shmbus_bus *bus);

/* The bus of a watch (for the loop integration's checks). */
shmbus_bus *shmbus__discover_bus(const shmbus_watch *w);

/* Attaches a loop integration that delivers the watch's changes to `cb`
 * (shmbus_uv_watch_start). Returns 0, or SHMBUS_ESTATE if one is attached
 * already. */
int shmbus__discover_attach(shmbus_watch *w, const struct shmbus__watch_loop_ops *ops,
                            struct shmbus__uv_watch *state, shmbus_uv_watch_cb cb, void *arg);

/* One turn of an attached watch, from its loop: renews it if that is due,
 * delivers up to a batch of changes to its callback, and schedules the
 * next turn if one is needed. The watch may be closed by the callback. */
void shmbus__discover_turn(shmbus_watch *w);

/* Frees every watch of the bus (the bus closes). */
void shmbus__discover_close_all(shmbus_bus *bus);

#endif /* SHMBUS_DISCOVER_INTERNAL_H */
