/* xport_nats: NATS as a peer of shmbus-bench, through a nats-server of
 * its own (one node with JetStream, on free loopback ports, in a private
 * directory: tests/natsfix.c) that the benchmark starts and stops.
 *
 *   lossy     core NATS publish/subscribe: the publisher never waits; a
 *             subscriber that falls behind loses messages (libnats's
 *             pending limits, the server's slow-consumer handling);
 *   reliable  JetStream: a file-backed stream with interest retention per
 *             run, the publisher publishes asynchronously with at most
 *             BXN_WINDOW acknowledgements outstanding, each subscriber has
 *             its own push consumer and acknowledges every message.
 *
 * Built when CMake finds libnats (SHMBUS_HAVE_NATS); without it, or
 * without nats-server, the peer is skipped with a note. */
#ifndef SHMBUS_BENCH_XPORT_NATS_H
#define SHMBUS_BENCH_XPORT_NATS_H

#include <stdbool.h>

#include "xport.h"

/* Asynchronous JetStream publishes in flight at most (the publisher waits
 * for acknowledgements beyond it). */
#define BXN_WINDOW 256

/* NATS's default max_payload: larger messages are skipped with a note. */
#define BXN_MAX_SIZE ((size_t)1 << 20)

extern const struct bx_ops bx_nats;

/* In the parent, once, before the rows are built (bx_nats.missing()
 * reports what this found): starts the server and waits until it is
 * ready. Stopped, and its directory removed, by bx_nats_teardown() or at
 * exit. */
void bx_nats_setup(void);
void bx_nats_teardown(void);

/* The server's URL after a successful bx_nats_setup, else NULL. */
const char *bx_nats_url(void);

#endif
