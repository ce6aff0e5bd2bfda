/* headers: what a bridged message carries besides its payload, as NATS
 * message headers (docs/bridge.md, "What a message carries"):
 *   Shmbus-Origin  the exporting bridge's --name (loop prevention)
 *   Shmbus-Topic   the topic on the origin bus
 *   Shmbus-Seq     the message's sequence number in that topic (decimal)
 *   Shmbus-Time    its publish time there, ns of the origin host's
 *                  CLOCK_MONOTONIC (decimal)
 * and, with --reliable, Nats-Msg-Id for JetStream's de-duplication.
 * Parsing trusts nothing: a header missing, repeated with another value,
 * too long or not a number makes the message foreign. */
#ifndef SHMBUS_BRIDGE_HEADERS_H
#define SHMBUS_BRIDGE_HEADERS_H

#include <nats/nats.h>
#include <stdint.h>

#define BRIDGE_NAME_MAX 64

/* What the headers of a message say. */
struct bridge_hdr {
  char origin[BRIDGE_NAME_MAX + 1];
  char topic[256];
  uint64_t seq;
  uint64_t ts_ns;
};

/* Sets the headers of `msg`; msg_id NULL for none. Returns 0 or -ENOMEM. */
int bridge_hdr_set(natsMsg *msg, const struct bridge_hdr *h, const char *msg_id);

/* Reads the headers of `msg` into *h. Returns 0, or -EBADMSG when they are
 * missing or malformed. */
int bridge_hdr_get(natsMsg *msg, struct bridge_hdr *h);

/* Returns 0 if `name` can be a bridge's name (an origin, a durable
 * consumer's name): 1..64 bytes of [A-Za-z0-9_-]; else -EINVAL. */
int bridge_name_check(const char *name);

#endif /* SHMBUS_BRIDGE_HEADERS_H */
