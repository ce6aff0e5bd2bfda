/* paths: where a bus lives. Shared by the library and the daemon so both
 * resolve the same directory the same way (docs/protocol.md, Transport). */
#ifndef SHMBUS_PATHS_H
#define SHMBUS_PATHS_H

#include <stdbool.h>
#include <stddef.h>

#define SHMBUS__SOCK_NAME "shmbusd.sock"
#define SHMBUS__LOCK_NAME "shmbusd.lock"
#define SHMBUS__SYSTEM_DIR "/run/shmbus"

/* Resolves the bus directory into out: `explicit_dir` if non-NULL and
 * non-empty, else $SHMBUS_DIR, else /run/shmbus when `system`, else
 * $XDG_RUNTIME_DIR/shmbus, else /tmp/shmbus-<uid>. *is_default (may be
 * NULL) tells whether it is one of the last two, the default per-user bus:
 * the only directory autostart may create (a mistyped --dir or $SHMBUS_DIR
 * must not silently start a private daemon). Returns 0, or -ENAMETOOLONG
 * when it does not fit (a socket path must fit sun_path). */
int shmbus__bus_dir(const char *explicit_dir, bool system, char *out, size_t cap,
                    bool *is_default);

/* Joins dir and name into out (for the socket and lock paths). Returns 0
 * or -ENAMETOOLONG. */
int shmbus__bus_path(const char *dir, const char *name, char *out, size_t cap);

#endif /* SHMBUS_PATHS_H */
