/* listener: the daemon's listening socket and its connections' events.
 * It accepts connections (in batches; when descriptors run out it uses a
 * spare one to take a connection and refuse it, or pauses for a second
 * rather than spin), decides admission (per-user bus: the owner and root
 * only; quota_admit), makes each accepted connection a participant, and
 * reads the requests on participants' sockets (a batch per readable event)
 * for handlers. Every event ends by reaping the participants that died.
 *
 * Thread-safety: single-threaded, on the daemon's loop. */
#ifndef SHMBUSD_LISTENER_H
#define SHMBUSD_LISTENER_H

#include "server.h"

/* Starts watching srv->listen_sock, and takes the spare descriptor.
 * Returns 0 or a libuv error; listener_close closes what was started. */
int listener_start(struct server *srv);

/* Stops listening: closes the watcher and the resume timer, and removes
 * the socket file so that no new participant finds a socket nobody
 * accepts on. */
void listener_close(struct server *srv);

#endif /* SHMBUSD_LISTENER_H */
