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
 * exported from the shared library. Programs that link the static library
 * define SHMBUS_STATIC_DEFINE (CMake's shmbus::shmbus_static does); the
 * library's own build defines SHMBUS_BUILDING (for Windows DLL exports). */
#if defined(SHMBUS_STATIC_DEFINE)
#define SHMBUS_API
#elif defined(_WIN32)
#if defined(SHMBUS_BUILDING)
#define SHMBUS_API __declspec(dllexport)
#else
#define SHMBUS_API __declspec(dllimport)
#endif
#elif defined(__GNUC__)
#define SHMBUS_API __attribute__((visibility("default")))
#else
#define SHMBUS_API
#endif

/* Marks a function whose result must not be ignored: a compiler that can
 * check it warns when a caller drops it (GCC, Clang, MSVC with /analyze);
 * others ignore the mark. */
#if defined(__GNUC__)
#define SHMBUS_MUST_CHECK __attribute__((warn_unused_result))
#elif defined(_MSC_VER)
#define SHMBUS_MUST_CHECK _Check_return_
#else
#define SHMBUS_MUST_CHECK
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
