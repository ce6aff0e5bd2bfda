/* watch: the daemon's side of topic discovery (docs/protocol.md,
 * "Discovery"). A client registers watches (a number it chose and a
 * pattern); whenever a topic gets a name (created, or adopted after a
 * restart) or loses it (dropped, or removed by `shmbus topic rm`), every
 * watch whose pattern matches and whose client may see the topic gets one
 * topic_up or topic_down event.
 *
 * Costs: nothing while nobody watches (one pointer test per topic
 * change); otherwise one pattern match per watch per topic change. A
 * client holds at most WATCH_MAX_PER_CLIENT watches. Events are sent like
 * every other message of the daemon: a client whose socket is full is
 * disconnected (it renews its watches when it reconnects, and its library
 * reports the difference).
 *
 * The server owns the clients; this module knows them as opaque pointers
 * and reaches them through the callbacks of struct watch_ops.
 *
 * Thread-safety: single-threaded, like the whole daemon. */
#ifndef SHMBUSD_WATCH_H
#define SHMBUSD_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

#define WATCH_MAX_PER_CLIENT 64u

struct watch;

/* How the module reaches a client. */
struct watch_ops {
  /* May `client` see topic `name` (subscribe to it)? */
  bool (*may_see)(void *ctx, void *client, const char *name);
  /* Sends an event to `client` (disconnecting it when its socket is full). */
  void (*send)(void *ctx, void *client, const struct shmbus__msg *m);
  void *ctx;
};

struct watch_set {
  struct watch *head;
  size_t n;
  struct watch_ops ops;
};

/* Starts or replaces `client`'s watch number `id` with `pattern` (valid:
 * the decoder checked it). Returns 0, SHMBUS_EQUOTA (too many), -ENOMEM. */
int watch_add(struct watch_set *s, void *client, uint32_t id, const char *pattern);

/* Ends `client`'s watch `id`. Returns 0 or -ENOENT. */
int watch_remove(struct watch_set *s, void *client, uint32_t id);

/* Ends every watch of `client` (it is gone). */
void watch_drop_client(struct watch_set *s, void *client);

/* Tells the watchers that topic `name` appeared (`up`) or went away. */
void watch_notify(struct watch_set *s, const char *name, bool up);

/* Frees every watch (shutdown). */
void watch_free_all(struct watch_set *s);

#endif /* SHMBUSD_WATCH_H */
