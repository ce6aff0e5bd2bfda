/* xport_bridge: shmbus across NATS through shmbus-bridge, as a transport
 * of shmbus-bench (the `bridge` subcommand). A message published on bus A
 * (the benchmark's own shmbusd) travels through `shmbus-bridge --export`
 * on A, a nats-server, and `shmbus-bridge --import` on bus B (a second
 * shmbusd in a directory of its own) to the subscribers on B:
 *
 *   publisher -> bus A -> bridge --export -> nats-server -> bridge --import
 *             -> bus B -> subscribers
 *
 * For each run, prepare() starts bus B's daemon, a fresh one-node
 * nats-server with JetStream (tests/natsfix.c) and the two bridges
 * (--reliable for reliable runs), and unprepare() stops them all and
 * removes their directory. The bridges' logs go to files there, and are
 * printed when a bridge did not exit cleanly. Readiness is the HELLO
 * exchange (BX_F_HELLO): the publisher repeats HELLO until every
 * subscriber on B has heard one, so the export has picked up the topic
 * and the import has subscribed. The one-way latency is the publisher's
 * stamp in the message (the bridge carries the payload unchanged) against
 * the subscriber's clock: one host, one CLOCK_MONOTONIC. */
#ifndef SHMBUS_BENCH_XPORT_BRIDGE_H
#define SHMBUS_BENCH_XPORT_BRIDGE_H

#include "xport.h"

extern const struct bx_ops bx_bridge;

/* In the parent, before the rows are built: the shmbus-bridge program
 * (NULL: none given, the rows are skipped with a note) and the shmbusd
 * that runs bus B. */
void bx_bridge_setup(const char *bridge_path, const char *daemon_path);

#endif
