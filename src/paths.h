/* paths: where a bus lives. Shared by the library and the daemon so both
 * resolve the same directory the same way (docs/protocol.md, Transport). */
#ifndef SHMBUS_PATHS_H
#define SHMBUS_PATHS_H

#include <stdbool.h>
#include <stddef.h>

#include "platform/platform.h"

#define SHMBUS__SOCK_NAME "shmbusd.sock"
#define SHMBUS__LOCK_NAME "shmbusd.lock"
#define SHMBUS__SYSTEM_DIR SHMBUS__PLATFORM_SYSTEM_DIR

/* Resolves the bus directory into out: `explicit_dir` if non-NULL and
 * non-empty, else $SHMBUS_DIR, else the system directory when `system`
 * (/run/shmbus on Linux), else the platform's default per-user directory
 * (shmbus__default_bus_dir). *is_default (may be NULL) tells whether it is
 * the last, the default per-user bus:
 * the only directory autostart may create (a mistyped --dir or $SHMBUS_DIR
 * must not silently start a private daemon). Returns 0, or -ENAMETOOLONG
 * when it does not fit (a socket path must fit SHMBUS__ENDPOINT_MAX). */
int shmbus__bus_dir(const char *explicit_dir, bool system, char *out, size_t cap, bool *is_default);

/* Joins dir and name into out (for the socket and lock paths). Returns 0
 * or -ENAMETOOLONG. */
int shmbus__bus_path(const char *dir, const char *name, char *out, size_t cap);

#endif /* SHMBUS_PATHS_H */
