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

/* Called by the library's waits instead of shmbus_sub_arm: arms, with the
 * subscriber's wake threshold while messages flow (shmbus_sub_opts.
 * wake_after). Returns true when the caller may sleep, false when a
 * message arrived meanwhile (receive again). *due_ns receives when the
 * caller must wake by itself (CLOCK_MONOTONIC ns; 0: no timer, sleep until
 * signalled) and then call shmbus__sub_timer_fired. No syscall. */
bool shmbus__sub_sleep(shmbus_sub *sub, uint64_t *due_ns);

/* A threshold sleep's timer ended it (counted in timer_wakeups). When
 * nothing came during the period, the next sleep has no threshold. */
void shmbus__sub_timer_fired(shmbus_sub *sub);

#endif /* SHMBUS_SUB_H */
