/* error: the text and names of shmbus's error codes, generated from the one
 * table in include/shmbus/error.h. */
#include <errno.h>
#include <string.h>

#include "shmbus/error.h"

#define SHMBUS__STR(x) #x
#define SHMBUS__XSTR(x) SHMBUS__STR(x)

const char *shmbus_version(void) {
  return SHMBUS__XSTR(SHMBUS_VERSION_MAJOR) "." SHMBUS__XSTR(SHMBUS_VERSION_MINOR) "." SHMBUS__XSTR(
      SHMBUS_VERSION_PATCH);
}

/* The errno values shmbus itself returns, with their names. strerror() is
 * not used: it is not guaranteed thread-safe and its text varies by libc. */
#define SHMBUS__ERRNO_TABLE(XX)                                                \
  XX(EAGAIN, "no message available yet")                                       \
  XX(EMSGSIZE, "receive buffer is smaller than the message")                   \
  XX(EINVAL, "invalid argument")                                               \
  XX(ENOMEM, "out of memory")                                                  \
  XX(ENOSPC, "no space left for shared memory")                                \
  XX(EBADF, "bad file descriptor")                                             \
  XX(EACCES, "permission denied")                                              \
  XX(EPERM, "operation not permitted")                                         \
  XX(EMFILE, "too many open files: the process reached its descriptor limit (RLIMIT_NOFILE)") \
  XX(ENFILE, "too many open files in system")                                  \
  XX(ENOSYS, "function not supported by this kernel")                          \
  XX(EOVERFLOW, "value too large")                                             \
  XX(ETIMEDOUT, "timed out")                                                   \
  XX(EINTR, "interrupted")                                                     \
  XX(EBUSY, "resource busy")                                                   \
  XX(ENOENT, "no such file or directory")                                      \
  XX(EEXIST, "already exists")                                                 \
  XX(EPIPE, "broken pipe")                                                     \
  XX(ECONNREFUSED, "connection refused")                                       \
  XX(ECONNRESET, "connection reset")                                           \
  XX(EPROTO, "protocol error")                                                 \
  XX(ENODEV, "no such device")                                                 \
  XX(EFBIG, "file too large")                                                 \
  XX(ENAMETOOLONG, "name or path too long")                                    \
  XX(EBADMSG, "malformed message or payload")                                  \
  XX(EBADFD, "descriptor is in a bad state (a wake-up event lost O_NONBLOCK)") \
  XX(EIO, "input/output error")                                                \
  XX(EINPROGRESS, "work in progress: call again")                              \
  XX(ENOTDIR, "not a directory")                                               \
  XX(EISDIR, "is a directory")                                                 \
  XX(EROFS, "read-only file system")                                           \
  XX(ELOOP, "too many levels of symbolic links")                               \
  XX(ENOTSOCK, "not a socket")                                                 \
  XX(ENOTCONN, "not connected")                                                \
  XX(EADDRINUSE, "address already in use")                                     \
  XX(ESRCH, "no such process")                                                 \
  XX(ENXIO, "no such device or address")                                      \
  XX(ENOTSUP, "not supported by this system")                                  \
  XX(E2BIG, "argument list too long")

const char *shmbus_strerror(int code) {
  switch (code) {
#define SHMBUS__ERR_CASE(name, off, msg)                                       \
  case SHMBUS_##name:                                                          \
    return msg;
    SHMBUS_ERRNO_MAP(SHMBUS__ERR_CASE)
#undef SHMBUS__ERR_CASE
#define SHMBUS__ERRNO_CASE(name, msg)                                          \
  case -name:                                                                  \
    return msg;
    SHMBUS__ERRNO_TABLE(SHMBUS__ERRNO_CASE)
#undef SHMBUS__ERRNO_CASE
  case 0:
    return "success";
  default:
    return "unknown error";
  }
}

const char *shmbus_err_name(int code) {
  switch (code) {
#define SHMBUS__NAME_CASE(name, off, msg)                                      \
  case SHMBUS_##name:                                                          \
    return "SHMBUS_" #name;
    SHMBUS_ERRNO_MAP(SHMBUS__NAME_CASE)
#undef SHMBUS__NAME_CASE
#define SHMBUS__ERRNO_NAME(name, msg)                                          \
  case -name:                                                                  \
    return #name;
    SHMBUS__ERRNO_TABLE(SHMBUS__ERRNO_NAME)
#undef SHMBUS__ERRNO_NAME
  case 0:
    return "OK";
  default:
    return "UNKNOWN";
  }
}
