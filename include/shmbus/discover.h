/* shmbus: topic discovery. A watch lists the topics whose names match a
 * pattern and then keeps reporting matching topics as they appear and
 * disappear. The daemon pushes the changes to watchers only: a bus without
 * watches costs nothing, and a watch costs nothing while no topic changes.
 *
 * Patterns are made of whole '/'-separated segments:
 *   - a literal segment matches itself ("sensors/imu/0" is a pattern that
 *     matches one topic);
 *   - "*" matches exactly one segment ("sensors/ * /temp", without the spaces);
 *   - "**" matches any number of segments, none included ("sensors/ **"
 *     matches "sensors", "sensors/imu" and "sensors/imu/0").
 * Anything else, such as "sens*" or "a/ **x", an empty segment or more
 * than 255 bytes, is SHMBUS_EBADPATTERN. Wildcards never match a first
 * segment starting with '$': the daemon's own topics ("$sys/stats") match
 * only a pattern that names "$sys" itself ("$sys/ **").
 *
 * Permissions apply: a watch reports only the topics the calling uid may
 * subscribe to (what `shmbus ls` shows that uid).
 *
 * Thread-safety: a watch belongs to its bus (see shmbus/bus.h): one thread
 * at a time. Across fork(): the child must not use it. */
#ifndef SHMBUS_DISCOVER_H
#define SHMBUS_DISCOVER_H

#include "shmbus/bus.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shmbus_watch shmbus_watch;

/* libuv's loop, as <uv.h> declares it (see shmbus/uv.h). */
typedef struct uv_loop_s uv_loop_t;

/* What happened to a topic. */
enum shmbus_topic_change {
  SHMBUS_TOPIC_APPEARED = 1, /* it exists now (or did when the watch listed it) */
  SHMBUS_TOPIC_GONE = 2      /* it was dropped or removed */
};

/* One change, as a watch reports it. */
struct shmbus_topic_event {
  int change;      /* enum shmbus_topic_change */
  char topic[256]; /* the topic's name, NUL-terminated */
};

/* Returns 0 if `pattern` is a valid pattern, else SHMBUS_EBADPATTERN. */
SHMBUS_API int shmbus_pattern_check(const char *pattern);

/* Returns 1 if topic name `topic` matches `pattern`, 0 if not, or
 * SHMBUS_EBADPATTERN / SHMBUS_EBADNAME. Pure: no bus involved. */
SHMBUS_API int shmbus_pattern_match(const char *pattern, const char *topic);

/* Starts watching the topics that match `pattern`. The topics that exist
 * now are reported first, each as SHMBUS_TOPIC_APPEARED, then every change.
 * On success *watch is owned by the caller (shmbus_watch_close) and valid
 * until then or until its bus is closed. After the daemon restarts, the
 * watch is renewed with the bus: it then reports the difference between
 * what it had reported and what the new daemon has.
 * Errors: SHMBUS_EBADPATTERN, SHMBUS_EQUOTA (the daemon's limit of watches
 * per connection, 64), SHMBUS_EDISCONNECTED, -ETIMEDOUT, -ENOMEM, and
 * -EPROTO from a daemon that does not know watches (older than 0.2). */
SHMBUS_API int shmbus_watch_open(shmbus_bus *bus, const char *pattern, shmbus_watch **watch);

/* Takes the next change into *ev. Waits for one up to timeout_ms (-1:
 * forever; 0: only handles what the daemon already sent). Returns 0, or
 * -EAGAIN (timeout_ms 0 and no change), -ETIMEDOUT, SHMBUS_ESTATE (the
 * watch delivers to a libuv callback), -EINVAL. A change that a later one
 * undoes before it was taken is not reported (a topic that appeared and
 * went away meanwhile). While the daemon is away it waits for it to come
 * back (the bus reconnects by itself). */
SHMBUS_API int shmbus_watch_next(shmbus_watch *watch, struct shmbus_topic_event *ev,
                                 int timeout_ms);

/* The number of matching topics the watch has reported as present (and
 * not gone since). */
SHMBUS_API size_t shmbus_watch_count(const shmbus_watch *watch);

/* The watch's pattern (owned by the watch). */
SHMBUS_API const char *shmbus_watch_pattern(const shmbus_watch *watch);

/* Called from the loop for each change. `ev` is valid during the call. The
 * callback may close the watch, other watches, or the bus. */
typedef void (*shmbus_uv_watch_cb)(shmbus_watch *watch, const struct shmbus_topic_event *ev,
                                   void *arg);

/* Delivers the watch's changes to `cb` from `loop` (the bus must be
 * watched from the same loop: shmbus_uv_bus_start). Changes already known
 * are delivered on the next loop iteration. Returns 0, SHMBUS_ESTATE (the
 * bus is not started on a loop, or the watch is started already), -ENOMEM.
 * On failure `cb` is never called. After shmbus_watch_close or closing the
 * bus, run the loop once more so libuv can finish closing. */
SHMBUS_API int shmbus_uv_watch_start(shmbus_watch *watch, uv_loop_t *loop, shmbus_uv_watch_cb cb,
                                     void *arg);

/* Stops watching: the daemon stops reporting to it; changes not taken are
 * dropped. Frees the watch. NULL is a no-op. */
SHMBUS_API void shmbus_watch_close(shmbus_watch *watch);

#ifdef __cplusplus
}
#endif

#endif /* SHMBUS_DISCOVER_H */
