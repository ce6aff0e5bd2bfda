/* timers: the daemon's work that is not an answer to a request. Repairs
 * of publisher records whose owner died between claim and commit (H2 in
 * docs/security.md: in budgeted steps, on the next loop turn or backing
 * off), sweeps of records adopted after a restart whose process never came
 * back, the reconciliation of shared records with the registry, and the
 * hello timeout (M7). Each runs only while there is something to do; the
 * schedule calls start them and are cheap when they already run.
 *
 * Thread-safety: single-threaded, on the daemon's loop. */
#ifndef SHMBUSD_TIMERS_H
#define SHMBUSD_TIMERS_H

#include "server.h"

/* Initialises the timers' handles and starts reconciliation. Returns 0 or
 * a libuv error; timers_close closes what was initialised either way. */
int timers_init(struct server *srv);

/* Closes every timer (shutdown). */
void timers_close(struct server *srv);

/* Arms the repair on the next loop turn when one is pending. */
void timers_schedule_repair(struct server *srv);

/* Starts the once-a-second sweep when records wait for their owners. */
void timers_schedule_sweep(struct server *srv);

/* Starts the hello timeout while some connection has not said hello. */
void timers_schedule_hello(struct server *srv);

#endif /* SHMBUSD_TIMERS_H */
