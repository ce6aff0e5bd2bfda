/* shmbus: the umbrella header. Include this one.
 *
 * shmbus is a publish/subscribe bus for processes on one host whose data
 * path is shared memory. The topic API is in shmbus/bus.h; the libuv
 * integration, which needs <uv.h>, in shmbus/uv.h (include it yourself). */
#ifndef SHMBUS_SHMBUS_H
#define SHMBUS_SHMBUS_H

#include "shmbus/bus.h"
#include "shmbus/discover.h"
#include "shmbus/error.h"
#include "shmbus/version.h"

#endif /* SHMBUS_SHMBUS_H */
