/* discover: topic watches (include/shmbus/discover.h) on a bus. The bus
 * (bus.c) calls in here at three points: an event of a watch arrived, the
 * bus reconnected to a (maybe new) daemon, the bus closes. */
#ifndef SHMBUS_DISCOVER_INTERNAL_H
#define SHMBUS_DISCOVER_INTERNAL_H

#include "proto.h"
#include "shmbus/bus.h"

/* Handles a topic_up or topic_down event. Takes the message's fds (it has
 * none by its type). */
void shmbus__discover_event(shmbus_bus *bus, struct shmbus__msg *ev);

/* After a reconnect: renews every watch with the daemon and reports the
 * difference. Failures are retried on the next shmbus_watch_next (or the
 * next reconnect). */
void shmbus__discover_reconnected(shmbus_bus *bus);

/* Frees every watch of the bus (the bus closes). */
void shmbus__discover_close_all(shmbus_bus *bus);

#endif /* SHMBUS_DISCOVER_INTERNAL_H */
