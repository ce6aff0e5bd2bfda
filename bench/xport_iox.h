/* xport_iox: Eclipse iceoryx 2.0 (its C binding) as a peer of shmbus-bench,
 * with the RouDi daemon it needs started and stopped by the benchmark.
 *
 * iceoryx 2.0 has one RouDi per machine: fixed names in /dev/shm
 * (iceoryx_mgmt, a segment named after the user's group) and /tmp (the
 * socket `roudi`, the locks roudi.lock and iox-unique-roudi.lock), no
 * domain or prefix to make an instance private. The benchmark therefore
 * starts its own RouDi only when none runs, and skips the peer with a note
 * (never sharing or stopping another one) when one does. */
#ifndef SHMBUS_BENCH_XPORT_IOX_H
#define SHMBUS_BENCH_XPORT_IOX_H

#include <stdbool.h>
#include <stddef.h>

#include "xport.h"

extern const struct bx_ops bx_iox;

/* In the parent, once, before the rows are built (bx_iox.missing() reports
 * what this found): checks that the peer can run, writes a RouDi
 * configuration whose memory pools hold every listed message size for the
 * largest subscriber count (lossy or reliable), starts iox-roudi with it and
 * waits until it accepts clients. RouDi is stopped, and its files removed,
 * at exit (atexit), or by bx_iox_teardown(). `slots`: the run's --slots (0:
 * by size), which also bounds iceoryx's subscriber queues. */
void bx_iox_setup(bool latency, const size_t *sizes, unsigned nsizes, const unsigned *subs,
                  unsigned nsubs, unsigned slots);
void bx_iox_teardown(void);

#endif
