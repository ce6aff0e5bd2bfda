/* handle: a publisher's or subscriber's lifecycle on a bus (opening,
 * re-opening after a daemon restart, closing), and what the other API
 * modules share about handles.
 *
 * Thread-safety and fork: the bus's (one thread at a time; a forked child
 * must not use the bus or its handles). */
#ifndef SHMBUS_HANDLE_H
#define SHMBUS_HANDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"

/* Opens a handle of `size` bytes (a shmbus_pub or shmbus_sub, whose first
 * member is the handle) on `topic` for `role` (SHMBUS__ROLE_PUB/SUB), with
 * h->want copied from `want`: sends `open`, maps the region the daemon
 * hands back, takes the record, links the handle into the bus and waits
 * for the peers the daemon announced. On success *out is the bus's until
 * shmbus__handle_close. Errors: SHMBUS_EBADNAME, the daemon's refusals,
 * -ETIMEDOUT, -ENOMEM, what mapping the region gives. */
int shmbus__handle_open(shmbus_bus *bus, const char *topic, uint32_t role,
                        const struct shmbus__handle *want, size_t size,
                        struct shmbus__handle **out);

/* Copies topic options into h->want: all four parameters or none
 * (SHMBUS_EPARAM). `o` may be NULL. */
int shmbus__handle_want_params(const struct shmbus_topic_opts *o, struct shmbus__handle *h);

/* Closes a handle: cancels an open loan, detaches the event loop, gives
 * the record back (through the daemon, or itself without one), unmaps and
 * frees. */
void shmbus__handle_close(struct shmbus__handle *h);

/* A new daemon could not adopt h's record (it knows the topic under
 * another region, or not at all): opens the topic afresh and moves h onto
 * it. The old mapping stays in use until the new one is ready. */
int shmbus__handle_reopen(shmbus_bus *bus, struct shmbus__handle *h);

/* After `opened` or `adopted`, the daemon sends h->pending_peers peer_join
 * events at once: waits for them, so that a publisher knows every
 * subscriber before it returns. 0, -ETIMEDOUT, or the session's error. */
int shmbus__handle_await_peers(shmbus_bus *bus, struct shmbus__handle *h);

/* Puts the topic parameters into a request. */
void shmbus__handle_params_to_msg(const struct shmbus__params *p, struct shmbus__msg *m);

/* Checks an `opened` reply against what we asked (role) and what it must
 * carry (fds handles, the parameters). 0 or -EPROTO. */
int shmbus__handle_check_opened(const struct shmbus__msg *r, uint32_t role, uint32_t fds);

/* Wake-ups that could not be delivered while peers were unknown were put
 * back; delivers them now that peers are known again. */
void shmbus__handle_redeliver(struct shmbus__handle *h);

/* True while a loan or an in-place read points into the handle's mapping
 * (it cannot move to another region now). */
bool shmbus__handle_busy(const struct shmbus__handle *h);

/* Reads the daemon's socket when the topic's peer epoch moved (a peer
 * joined or left): the only syscall a publish may need besides wake-ups.
 * Inline: it is on the hot path of every publish and receive. */
static inline void shmbus__handle_check_peers(struct shmbus__handle *h) {
  if (shmbus__ring_peers_changed(&h->region.ring, &h->epoch_seen))
    (void)shmbus_bus_process(h->bus);
}

#endif /* SHMBUS_HANDLE_H */
