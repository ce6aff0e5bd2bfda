/* sub: the subscriber calls that never block (try_recv, arm, in-place
 * reads, counts) and what the rest of the library asks of a subscriber:
 * wake the publishers waiting for room.
 *
 * Thread-safety: one thread at a time per subscriber (the bus's). */
#ifndef SHMBUS_SUB_H
#define SHMBUS_SUB_H

#include "bus.h"

/* Wakes the publishers that wait for room, after a reliable read (each
 * wait ticket once; notify.c). */
void shmbus__sub_wake_publishers(shmbus_sub *sub);

#endif /* SHMBUS_SUB_H */
