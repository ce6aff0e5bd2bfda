/* shmbus: error codes.
 *
 * Every function in shmbus that can fail returns an int: 0 or a non-negative
 * count on success, a negative code on failure. Where an errno value fits,
 * the code is the negated errno (for example -ENOMEM or -EAGAIN); conditions
 * that are specific to the bus have their own codes in the range
 * SHMBUS__ERR_BASE - 99 .. SHMBUS__ERR_BASE, well away from any errno value.
 *
 * shmbus_strerror() turns any code (bus-specific or errno) into a sentence,
 * and shmbus_err_name() into its symbolic name. Both are thread-safe and
 * return pointers to static strings that stay valid for the life of the
 * process; the caller never frees them.
 */
#ifndef SHMBUS_ERROR_H
#define SHMBUS_ERROR_H

#include <errno.h>

#include "shmbus/version.h"

#ifdef __cplusplus
extern "C" {
#endif

#define SHMBUS__ERR_BASE (-1000)

/* The bus-specific codes: XX(NAME, offset, message). The table generates the
 * enum below and the text returned by shmbus_strerror(). Hot-path outcomes
 * (EAGAIN, EFULL) are normal results, not failures: callers branch on them
 * and never need to log them. */
#define SHMBUS_ERRNO_MAP(XX)                                                                       \
  XX(EBADREGION, 0, "shared region is corrupted, truncated or not a shmbus region")                \
  XX(EVERSION, 1, "shared region layout version is not supported")                                 \
  XX(ETOOBIG, 2, "message is larger than the topic's slot capacity")                               \
  XX(EFULL, 3, "ring is full: a reliable subscriber has not read yet (would block)")               \
  XX(EOVERRUN, 4, "message was overwritten while it was being read; it counts as lost")            \
  XX(ENOSLOT, 5, "topic has no free publisher or subscriber record")                               \
  XX(ECORRUPT, 6, "slot contents in shared memory are inconsistent")                               \
  XX(EMISMATCH, 7, "topic exists with other parameters")                                           \
  XX(EBADNAME, 8, "invalid topic name")                                                            \
  XX(EPARAM, 9, "invalid topic parameters")                                                        \
  XX(ESTATE, 10, "call not allowed in the object's current state")                                 \
  XX(EDENIED, 11, "permission denied by the bus configuration")                                    \
  XX(ENODAEMON, 12, "no bus daemon is running and autostart is disabled")                          \
  XX(EPROTOVER, 13, "bus daemon speaks another protocol version")                                  \
  XX(EDISCONNECTED, 14, "connection to the bus daemon was lost")                                   \
  XX(EQUOTA, 15,                                                                                   \
     "a per-client limit of the bus daemon was reached (topics, records, memory or request rate)") \
  XX(ELIMIT, 16, "topic's shared memory would exceed the bus daemon's maximum region size")        \
  XX(ENOPROC, 17,                                                                                  \
     "the system cannot check or reopen shared memory (on Linux: /proc is not mounted)")           \
  XX(EBADPATTERN, 18, "invalid topic pattern (whole segments; '*' is one segment, '**' any number)")

/* The bus-specific codes. The hot-path outcomes -EAGAIN (no message yet) and
 * -EMSGSIZE (receive buffer too small) are plain errno values. */
typedef enum {
#define SHMBUS__ERR_ENUM(name, off, msg) SHMBUS_##name = SHMBUS__ERR_BASE - (off),
  SHMBUS_ERRNO_MAP(SHMBUS__ERR_ENUM)
#undef SHMBUS__ERR_ENUM
      SHMBUS_EAGAIN = -EAGAIN /* no message available yet (normal outcome) */
} shmbus_errno_t;

/* Returns a sentence describing `code` (a negative shmbus or errno code).
 * Unknown codes give "unknown error". The string is static; never free it. */
SHMBUS_API const char *shmbus_strerror(int code);

/* Returns the symbolic name of `code`, e.g. "SHMBUS_EFULL" or "ENOMEM";
 * "UNKNOWN" when it has none. The string is static; never free it. */
SHMBUS_API const char *shmbus_err_name(int code);

#ifdef __cplusplus
}
#endif

#endif /* SHMBUS_ERROR_H */
