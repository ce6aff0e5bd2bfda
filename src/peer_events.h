/* peer_events: what the daemon tells a bus between requests. peer_join
 * and peer_leave update the handles' wake-up directories (notify.c) and,
 * for a publisher, the member files of its subscribers' uids; a reply that
 * came after its request timed out gives back the record it attached.
 *
 * Thread-safety and fork: the bus's (one thread at a time; a forked child
 * must not use the bus). */
#ifndef SHMBUS_PEER_EVENTS_H
#define SHMBUS_PEER_EVENTS_H

#include "proto.h"

/* The bus's session event callback (shmbus__session_event_fn; ctx is the
 * bus). Takes the event's handles. */
void shmbus__peer_event(void *ctx, struct shmbus__msg *ev);

#endif /* SHMBUS_PEER_EVENTS_H */
