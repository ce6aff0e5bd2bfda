/* seen: what a reliable importer published of one origin's topic, by the
 * origin's sequence numbers, so that a delivery it published already (a
 * redelivery after a lost acknowledgement, a message the stream holds
 * twice) is dropped and every other one is published, however late.
 *
 * Every seq below `low` counts as published, except the gaps remembered
 * as given up; from `low` on, a bit per seq for BRIDGE_SEEN_WINDOW seqs.
 * A seq further ahead moves the window: the seqs it leaves behind without
 * their bit (never delivered yet: a gap in what the origin exported, or a
 * message that will come late, as JetStream redelivers what a consumer
 * leader's change lost once its ack wait ran out) are remembered as given
 * up, up to BRIDGE_SEEN_GAPS ranges; a given-up seq that comes later is
 * published then. Beyond that many ranges the oldest is forgotten and
 * counted (bridge_seen_forgotten): a seq of a forgotten range would be
 * taken for a duplicate. Not thread-safe: the importer's loop owns it. */
#ifndef SHMBUS_BRIDGE_SEEN_H
#define SHMBUS_BRIDGE_SEEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BRIDGE_SEEN_WINDOW (1u << 16)
#define BRIDGE_SEEN_GAPS 4096u

struct bridge_seen;

/* A new record for an origin whose first delivery is `seq`: `low` is put
 * half a window back, so that what a previous run left unacknowledged and
 * is redelivered out of order still finds its place. The origin's name is
 * copied (at most `BRIDGE_NAME_MAX` bytes are kept by the caller's check).
 * NULL when out of memory. */
struct bridge_seen *bridge_seen_new(const char *origin, uint64_t seq);
void bridge_seen_free(struct bridge_seen *o);
const char *bridge_seen_origin(const struct bridge_seen *o);

/* Whether seq was published already (or counts as such). */
bool bridge_seen_has(const struct bridge_seen *o, uint64_t seq);
/* Records seq as published. */
void bridge_seen_add(struct bridge_seen *o, uint64_t seq);
/* Given-up ranges forgotten (the table was full, or out of memory). */
uint64_t bridge_seen_forgotten(const struct bridge_seen *o);

#endif
