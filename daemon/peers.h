/* peers: peer_join and peer_leave, the events that tell a record's owner
 * about the records of the other role on its topic (docs/protocol.md).
 *
 * Peer events are L2 in docs/security.md: subscriber churn can fill the
 * socket of an honest participant that reads a little later. Rather than
 * drop it, the daemon then owes it the events: one bit per peer record
 * index of the part they concern, set for every event it could not send
 * and for every later one (so they stay in order), and watches the socket
 * for room. Once there is room it sends, for each owed index, the state
 * that is true now: peer_join with the eventfd of the live peer at that
 * index, or peer_leave. Any number of joins and leaves of one index thus
 * cost one event, and what the daemon keeps is bounded by the record
 * count.
 *
 * Thread-safety: single-threaded, on the daemon's loop. */
#ifndef SHMBUSD_PEERS_H
#define SHMBUSD_PEERS_H

#include <stdbool.h>
#include <stdint.h>

#include "participant.h"
#include "registry.h"

/* Sends peer_join (SHMBUS__MSG_PEER_JOIN) or peer_leave about `about` to
 * `to`'s owner, or owes it when the owner's socket is full or events are
 * owed already. */
void peers_send(struct registry_part *to, uint32_t type, const struct registry_part *about);

/* Sends what `p` is owed, as far as its socket takes it. Returns true
 * when nothing is owed any more (then its socket is no longer watched for
 * room). */
bool peers_flush(struct participant *p);

#endif /* SHMBUSD_PEERS_H */
