/* discover: topic watches (include/shmbus/discover.h) on a bus. The bus's
 * modules call in here at four points: an event of a watch arrived
 * (peer_events.c), the bus reconnected to a (maybe new) daemon, it
 * processed what the daemon sent (reconnect.c), the bus closes (bus.c). */
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

/* Renews the watches a reconnect could not renew (at most once a second
 * each); the bus calls it whenever it handled what the daemon sent. */
void shmbus__discover_retry(shmbus_bus *bus);

/* Frees every watch of the bus (the bus closes). */
void shmbus__discover_close_all(shmbus_bus *bus);

#endif /* SHMBUS_DISCOVER_INTERNAL_H */
