/* xport_shmbus: shmbus itself as a transport of shmbus-bench (bx_shmbus,
 * the `shmbus` rows), and the shmbus endpoint it is made of, which the
 * bridge's rows (xport_bridge.c) open on their two buses as well.
 *
 * An endpoint holds one bus connection, a subscriber (every role but
 * BX_PUB) and a publisher (every role but BX_SUB). It sends with
 * shmbus_pub_publish, waiting on a full reliable ring (shmbus_pub_wait,
 * or spinning in BX_SPIN); it receives by copy into a buffer of run->size
 * bytes. A received message's ts_ns is shmbus's own stamp when the
 * endpoint's ops have BX_F_STAMPS, else 0: then the receiver reads the
 * sender's stamp in the message (the bridge's rows, whose stamp on bus B
 * is the importing bridge's). */
#ifndef SHMBUS_BENCH_XPORT_SHMBUS_H
#define SHMBUS_BENCH_XPORT_SHMBUS_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "shmbus/shmbus.h"
#include "xport.h"

extern const struct bx_ops bx_shmbus;

/* The topic of run r: r->slots slots, or (r->slots 0) as many as fit in
 * 16 MiB of payload, from 8 to 4096; room for the run's subscribers and
 * extra_subs more (the bridge's exporter), and two publishers. */
struct shmbus_topic_opts bxs_topic(const struct bx_run *r, unsigned extra_subs);

/* Makes ep (in BX_PUB, BX_SUB, BX_A or BX_B) an endpoint on `bus`: its
 * subscriber on t_in unless it is BX_PUB, its publisher on t_out unless
 * it is BX_SUB, both with bxs_topic(ep->run, extra_subs). The endpoint
 * owns `bus` from this call on, failed or not: bxs_close closes it. A
 * negative error leaves ep->impl for bxs_close to free (or NULL). */
int bxs_open_on(struct bx_ep *ep, shmbus_bus *bus, const char *t_out, const char *t_in,
                unsigned extra_subs);

/* The struct bx_ops calls of an endpoint opened by bxs_open_on. */
int bxs_send(struct bx_ep *ep, const void *data, size_t len, bool must);
int bxs_poll(struct bx_ep *ep, bx_msg_fn fn, void *ctx);
int bxs_wait(struct bx_ep *ep, bx_msg_fn fn, void *ctx, int timeout_ms);
/* Starts the bus and the subscriber on `loop`, delivering copies to the
 * callback bx_open was given (ep->fn, ep->ctx; fn and ctx are unused). */
int bxs_uv_start_copy(struct bx_ep *ep, uv_loop_t *loop, bx_msg_fn fn, void *ctx);
void bxs_close(struct bx_ep *ep);

#endif
