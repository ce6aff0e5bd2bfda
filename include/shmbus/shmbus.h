/* shmbus: the umbrella header. Include this one.
 *
 * shmbus is a publish/subscribe bus for processes on one host whose data
 * path is shared memory. This release contains the foundation (error codes
 * and version); the topic API arrives with the daemon. */
#ifndef SHMBUS_SHMBUS_H
#define SHMBUS_SHMBUS_H

#include "shmbus/error.h"
#include "shmbus/version.h"

#endif /* SHMBUS_SHMBUS_H */
