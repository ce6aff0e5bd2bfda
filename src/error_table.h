/* error_table: the errno values shmbus itself returns, with their texts.
 * Beside SHMBUS_ERRNO_MAP (the bus's own codes, include/shmbus/error.h) it
 * generates shmbus_strerror() and shmbus_err_name() (src/error.c), and the
 * list tests/error_test.c checks; a check makes sure that every errno code the
 * sources return is here (tests/check_errnos.sh). Internal: the public API
 * documents the codes, not this table. */
#ifndef SHMBUS_ERROR_TABLE_H
#define SHMBUS_ERROR_TABLE_H

#include <errno.h>

/* EBADFD is Linux's (a wake-up event that lost O_NONBLOCK). Windows' CRT
 * lacks it and nothing there returns it; 77 is Linux's value and no other
 * code in the CRT's errno.h, so the table builds everywhere. */
#ifndef EBADFD
#define EBADFD 77
#endif

/* XX(NAME, text). strerror() is not used: it is not guaranteed
 * thread-safe and its text varies by libc. */
#define SHMBUS__ERRNO_TABLE(XX)                                                                    \
  XX(EAGAIN, "no message available yet")                                                           \
  XX(EMSGSIZE, "receive buffer is smaller than the message")                                       \
  XX(EINVAL, "invalid argument")                                                                   \
  XX(ENOMEM, "out of memory")                                                                      \
  XX(ENOSPC, "no space left for shared memory")                                                    \
  XX(EBADF, "bad file descriptor")                                                                 \
  XX(EACCES, "permission denied")                                                                  \
  XX(EPERM, "operation not permitted")                                                             \
  XX(EMFILE, "too many open files: the process reached its descriptor limit (RLIMIT_NOFILE)")      \
  XX(ENFILE, "too many open files in system")                                                      \
  XX(ENOSYS, "function not supported by this kernel")                                              \
  XX(EOVERFLOW, "value too large")                                                                 \
  XX(ETIMEDOUT, "timed out")                                                                       \
  XX(EINTR, "interrupted")                                                                         \
  XX(EBUSY, "resource busy")                                                                       \
  XX(ENOENT, "no such file or directory")                                                          \
  XX(EEXIST, "already exists")                                                                     \
  XX(EPIPE, "broken pipe")                                                                         \
  XX(ECONNREFUSED, "connection refused")                                                           \
  XX(ECONNRESET, "connection reset")                                                               \
  XX(EPROTO, "protocol error")                                                                     \
  XX(ENODEV, "no such device")                                                                     \
  XX(EFBIG, "file too large")                                                                      \
  XX(ENAMETOOLONG, "name or path too long")                                                        \
  XX(EBADMSG, "malformed message or payload")                                                      \
  XX(EBADFD, "descriptor is in a bad state (a wake-up event lost O_NONBLOCK)")                     \
  XX(EIO, "input/output error")                                                                    \
  XX(EINPROGRESS, "work in progress: call again")                                                  \
  XX(ENOTDIR, "not a directory")                                                                   \
  XX(EISDIR, "is a directory")                                                                     \
  XX(EROFS, "read-only file system")                                                               \
  XX(ELOOP, "too many levels of symbolic links")                                                   \
  XX(ENOTSOCK, "not a socket")                                                                     \
  XX(ENOTCONN, "not connected")                                                                    \
  XX(EADDRINUSE, "address already in use")                                                         \
  XX(ESRCH, "no such process")                                                                     \
  XX(ENXIO, "no such device or address")                                                           \
  XX(ENOTSUP, "not supported by this system")                                                      \
  XX(E2BIG, "argument list too long")

#endif /* SHMBUS_ERROR_TABLE_H */
