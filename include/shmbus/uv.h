/* shmbus: libuv integration. Subscribers deliver messages to a callback
 * from a uv_loop_t the caller owns; publishers get a "writable again"
 * callback; the daemon connection is watched (and re-established) from the
 * same loop.
 *
 * Everything here runs on the loop's thread, which must be the thread that
 * uses the bus (see shmbus/bus.h). The loop must outlive the handles started
 * on it: close them (or the bus), then run the loop once more so libuv can
 * finish closing its handles, then close the loop.
 *
 * This header names libuv's loop type only, and does not include <uv.h>:
 * a program that calls libuv includes <uv.h> itself (under strict C11 that
 * needs _POSIX_C_SOURCE, for libuv's pthread types), while one that only
 * passes a loop along compiles with -std=c11 -pedantic as it is. Link
 * libuv either way (pkg-config shmbus and shmbus::shmbus bring it). */
#ifndef SHMBUS_UV_H
#define SHMBUS_UV_H

#include "shmbus/bus.h"

#ifdef __cplusplus
extern "C" {
#endif

/* libuv's loop, as <uv.h> declares it (C11 allows repeating a typedef of
 * the same type, so including both headers in either order is fine). */
typedef struct uv_loop_s uv_loop_t;

/* Called for each message. `data` is valid only during the call (for a
 * reliable subscriber it points into shared memory, for a lossy one into a
 * private copy). The callback may close the subscriber or the bus. */
typedef void (*shmbus_uv_msg_cb)(shmbus_sub *sub, const void *data, size_t len,
                                 const struct shmbus_msg_info *info, void *arg);

/* Called once per shmbus_uv_pub_on_writable, from the loop, when a publish
 * would not get SHMBUS_EFULL: after room became available, or on the next
 * loop iteration when there was room already (a publish need not have
 * failed first). */
typedef void (*shmbus_uv_writable_cb)(shmbus_pub *pub, void *arg);

/* Watches the bus connection from `loop`: control messages are handled as
 * they arrive, and a lost daemon is reconnected with backoff (10 ms doubling
 * to 1 s) from a timer. Returns 0, SHMBUS_ESTATE if already started. */
SHMBUS_API int shmbus_uv_bus_start(shmbus_bus *bus, uv_loop_t *loop);

/* Delivers the subscriber's messages to `cb` from `loop`: its wake-up
 * event (shmbus_sub_fd; an eventfd on Linux) is watched by a uv_poll
 * handle; each wake-up drains the ring in batches (at most 256 messages
 * before yielding to the loop). Returns 0, SHMBUS_ESTATE if already
 * started (see shmbus_uv_sub_stop for a start after a stop). On failure
 * `cb` is never called. */
SHMBUS_API int shmbus_uv_sub_start(shmbus_sub *sub, uv_loop_t *loop, shmbus_uv_msg_cb cb,
                                   void *arg);

/* As shmbus_uv_sub_start, but a lossy subscriber's callback gets the
 * message in place too (`data` points into the shared slot, as for a
 * reliable one) instead of a private copy: no copy of each message, which
 * for large messages is most of what a subscriber costs. A publisher may
 * overwrite the slot while the callback reads it, so the callback must
 * read what it needs first, then call shmbus_uv_sub_intact and trust what
 * it read only if that returns 0; a message overwritten meanwhile counts
 * as lost, not received (struct shmbus_sub_stats). For a reliable
 * subscriber it is shmbus_uv_sub_start (shmbus_uv_sub_intact always says
 * 0). Added after 0.1. */
SHMBUS_API int shmbus_uv_sub_start_inplace(shmbus_sub *sub, uv_loop_t *loop, shmbus_uv_msg_cb cb,
                                           void *arg);

/* From the callback of an in-place delivery: 0 if the message being
 * delivered is intact up to now (everything read before this call is
 * valid), SHMBUS_EOVERRUN if a publisher overwrote it (discard what was
 * read); SHMBUS_ESTATE outside such a callback, -EINVAL for NULL. No
 * syscall. The last answer decides how the message counts: received after
 * 0 (even if the slot is overwritten after the call), lost after
 * SHMBUS_EOVERRUN; without a call, whether it was intact when the callback
 * returned. Added after 0.1. */
SHMBUS_API int shmbus_uv_sub_intact(const shmbus_sub *sub);

/* Stops delivering. Returns 0 (also when not started). Called from the
 * subscriber's own callback, it takes effect when the callback returns:
 * the message being delivered is finished first (a reliable read is ended
 * and counted as received), and no other message follows.
 *
 * Delivery may start again on the same subscriber and loop from anywhere
 * on the loop's thread: outside uv_run, or from any callback (a timer's,
 * a uv_async's, another subscriber's, also while this subscriber's own
 * wake-up is pending: it is not lost). Called from the subscriber's own
 * callback after shmbus_uv_sub_stop, shmbus_uv_sub_start (or _inplace)
 * calls the stop off: delivery goes on after the callback returns, with
 * the new callback and argument, and without an error callback until
 * shmbus_uv_sub_on_error sets one (as after any start); there it returns
 * SHMBUS_ESTATE for another loop. Messages follow in order either way;
 * none is delivered twice. */
SHMBUS_API int shmbus_uv_sub_stop(shmbus_sub *sub);

/* Called once when delivery stopped because of an error (the shared
 * memory holds what a publisher should not have written: SHMBUS_ECORRUPT;
 * or the wake-up descriptor failed). Normal outcomes (no message yet,
 * losses) never stop delivery. The subscriber stays open: the callback
 * may close it, or reopen the topic. */
typedef void (*shmbus_uv_error_cb)(shmbus_sub *sub, int code, void *arg);

/* Sets the error callback of a started subscriber (`arg` is the one given
 * to shmbus_uv_sub_start). Without one, a subscriber that stopped on an
 * error only says so through shmbus_uv_sub_error. Returns 0, or
 * SHMBUS_ESTATE when delivery was not started. */
SHMBUS_API int shmbus_uv_sub_on_error(shmbus_sub *sub, shmbus_uv_error_cb cb);

/* The error that stopped delivery (a negative code), or 0 while it runs
 * or when it was not started. */
SHMBUS_API int shmbus_uv_sub_error(const shmbus_sub *sub);

/* Arms a one-shot "writable again" callback: `cb` runs from `loop` once a
 * publish would no longer get SHMBUS_EFULL (at once, on the next loop
 * iteration, if there is room already). Re-arm after each call. */
SHMBUS_API int shmbus_uv_pub_on_writable(shmbus_pub *pub, uv_loop_t *loop, shmbus_uv_writable_cb cb,
                                         void *arg);

#ifdef __cplusplus
}
#endif

#endif /* SHMBUS_UV_H */
