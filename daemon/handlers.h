/* handlers: the daemon's answer to each request (docs/protocol.md). The
 * dispatcher checks what every request shares (a request type a
 * participant may send, a non-zero id, the rate limit, hello first, the
 * descriptor count), sends the peer events owed first so that a reply
 * never overtakes them, and calls the handler of the type. A handler that
 * cannot grant a request answers `error` and the connection stays; a
 * protocol violation is answered and disconnects.
 *
 * Thread-safety: single-threaded, on the daemon's loop. */
#ifndef SHMBUSD_HANDLERS_H
#define SHMBUSD_HANDLERS_H

#include "participant.h"
#include "proto.h"
#include "server.h"

/* Handles one decoded message from `p`. The descriptors it carries that
 * a handler keeps are set to -1 in `m`; the caller closes the others. */
void handlers_dispatch(struct server *srv, struct participant *p, struct shmbus__msg *m);

/* Connects discovery (watch.h) to the registry and the participants: the
 * registry's on_name hook and the watch set's ops. Called by server_init. */
void handlers_watch_init(struct server *srv);

#endif /* SHMBUSD_HANDLERS_H */
