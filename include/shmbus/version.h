/* shmbus: version numbers and the export macro.
 *
 * Versioning policy: semantic versioning of the public API in include/. The
 * shared library's SOVERSION is the major version; the shared-memory layout
 * has its own version (checked in every region header) and the control
 * protocol has its own version (checked in every control message).
 */
#ifndef SHMBUS_VERSION_H
#define SHMBUS_VERSION_H

#define SHMBUS_VERSION_MAJOR 0
#define SHMBUS_VERSION_MINOR 1
#define SHMBUS_VERSION_PATCH 0

/* Symbols are hidden by default; only declarations marked SHMBUS_API are
 * exported from the shared library. */
#if defined(SHMBUS_STATIC_DEFINE)
#define SHMBUS_API
#elif defined(__GNUC__)
#define SHMBUS_API __attribute__((visibility("default")))
#else
#define SHMBUS_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Returns the library's version as "MAJOR.MINOR.PATCH". Static string. */
SHMBUS_API const char *shmbus_version(void);

#ifdef __cplusplus
}
#endif

#endif /* SHMBUS_VERSION_H */
