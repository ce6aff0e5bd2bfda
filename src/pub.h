/* pub: the publisher calls that never block (publish, loan, commit,
 * cancel, deadlines, counts) and what the rest of the library asks of a
 * publisher: wake its sleeping subscribers, and handle the EFULL path.
 *
 * Thread-safety: one thread at a time per publisher (the bus's). */
#ifndef SHMBUS_PUB_H
#define SHMBUS_PUB_H

#include <stdint.h>

#include "bus.h"

/* Wakes the subscribers whose sleeper bits a commit found (each sleep
 * ticket once; notify.c). */
void shmbus__pub_wake_sleepers(shmbus_pub *pub);

/* The EFULL path (only there is the clock read): tracks how long the record
 * that holds us back has done so without reading. Returns 1 when its
 * deadline ran out and it was demoted (publish again: there is room), 0
 * otherwise; *until_ns (may be NULL) receives when the deadline ends (0:
 * none). */
int shmbus__pub_on_full(shmbus_pub *pub, uint64_t *until_ns);

#endif /* SHMBUS_PUB_H */
