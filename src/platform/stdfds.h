/* stdfds: a program's first call, so that its standard descriptors are
 * never taken by anything it opens later.
 *
 * A program started with descriptor 0, 1 or 2 closed (by a CI runner
 * without standard input, by `prog <&-`, or by a parent whose descriptor
 * there was close-on-exec) gets that number for the first descriptor it
 * opens: an eventfd, a socket, libuv's signal pipe. libuv then aborts when
 * it closes it (it refuses to close 0-2), and a log line written to
 * "stderr" goes into a socket. shmbusd, shmbus, shmbus-bridge and
 * shmbus-bench call this first; the library itself does not (it is not
 * its business to touch a process's descriptors).
 *
 * Header-only, so the programs that use only the public API (the bridge,
 * the bench) need nothing of the library's internals. */
#ifndef SHMBUS_PLATFORM_STDFDS_H
#define SHMBUS_PLATFORM_STDFDS_H

#ifndef _WIN32
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#endif

/* Opens the null device on each of 0, 1 and 2 that is closed. Returns 0,
 * or a negative errno-style code if one could not be opened. On Windows a
 * console program's standard handles may be absent without harm: 0. */
static inline int shmbus__stdfds_open(void) {
#ifndef _WIN32
  for (int fd = 0; fd <= 2; fd++) {
    int n;
    if (fcntl(fd, F_GETFD) != -1 || errno != EBADF)
      continue;
    /* The lowest free number: fd itself, those below it being open. Not
     * close-on-exec: it stands for a standard descriptor. */
    if ((n = open("/dev/null", O_RDWR)) < 0)
      return -errno;
    if (n != fd) {
      (void)close(n);
      return -EBADF;
    }
  }
#endif
  return 0;
}

#endif
