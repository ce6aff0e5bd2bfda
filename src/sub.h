/* sub: the subscriber calls that never block (try_recv, arm, in-place
 * reads, counts) and what the rest of the library asks of a subscriber:
 * wake the publishers waiting for room.
 *
 * Thread-safety: one thread at a time per subscriber (the bus's). */
#ifndef SHMBUS_SUB_H
#define SHMBUS_SUB_H

#include <stdbool.h>

#include "bus.h"

/* Wakes the publishers that wait for room, after a reliable read (each
 * wait ticket once; notify.c). */
void shmbus__sub_wake_publishers(shmbus_sub *sub);

/* Called by the library's waits (shmbus_sub_recv, the libuv drain) when
 * they found nothing, before they arm and sleep: stays awake, polling the
 * slot at the cursor, for a bounded time adapted to how soon messages
 * have come after "nothing" lately (never when they came later than the
 * subscriber's spin bound: an idle subscriber sleeps at once). Returns
 * true when something is ready (receive again), false when the caller
 * should arm and sleep. No syscall. */
bool shmbus__sub_linger(shmbus_sub *sub);

#endif /* SHMBUS_SUB_H */
