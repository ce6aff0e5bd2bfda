/* membership: a record joins its topic (the reply `opened` with the
 * topic's descriptors, and the peer events that go with it, in the order
 * that lets nobody sleep on a peer it does not know yet) or leaves it (a
 * `close`, or its owner is gone); the participants that died during an
 * event are reaped at its end. Also the registry's hooks: a dropped topic
 * gives its quota back, a tampered eventfd disconnects its owner.
 *
 * Thread-safety: single-threaded, on the daemon's loop. */
#ifndef SHMBUSD_MEMBERSHIP_H
#define SHMBUSD_MEMBERSHIP_H

#include <stdint.h>

#include "participant.h"
#include "registry.h"
#include "server.h"

/* After a record was attached or adopted for `p`: tells the other
 * participants first (so that the newcomer's peers know its eventfd
 * before it can sleep or wait on them), then answers request `id` with
 * `opened`, sends the newcomer its peers, and bumps the epochs. */
void membership_join(struct server *srv, struct participant *p, uint32_t id,
                     struct registry_part *part);

/* Releases one part: tells the peers of the other role, detaches the
 * record, and bumps the epoch. May drop the topic. The part must already
 * be off its owner's list. */
void membership_leave(struct server *srv, struct registry_part *part);

/* Releases the records of every participant that died during this event
 * and closes it. A release may send peer events that kill more: loops
 * until none. Every event handler ends with it. */
void membership_reap(struct server *srv);

/* The registry's hooks (struct registry's on_drop and on_tampered, ctx
 * the server). */
void membership_on_drop(void *ctx, const struct registry_topic *t);
void membership_on_tampered(void *ctx, struct registry_part *part);

/* The bus's bound on a publisher's wait for one reliable subscriber (ms,
 * 0: none): the `deadline_ms` limit on the system bus (read on every use,
 * so a SIGHUP reload applies to later opens), none on a per-user bus. */
uint32_t membership_deadline_cap(const struct server *srv);

#endif /* SHMBUSD_MEMBERSHIP_H */
