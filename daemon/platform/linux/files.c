/* files: the bus directory and its lock on Linux (host.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host.h"

int host_dir_prepare(const char *dir, bool system, char *err, size_t errlen) {
  mode_t mode = system ? 0755 : 0700;
  struct stat st;
  int e;

  if (mkdir(dir, mode) == 0) {
    /* mkdir applies the umask; the mode is part of the contract. */
    if (chmod(dir, mode) != 0) {
      e = errno;
      snprintf(err, errlen, "cannot set the mode of %s: %s", dir, strerror(e));
      return -e;
    }
  } else if (errno != EEXIST) {
    e = errno;
    snprintf(err, errlen, "cannot create the bus directory %s: %s", dir, strerror(e));
    return -e;
  }
  if (lstat(dir, &st) != 0) {
    e = errno;
    snprintf(err, errlen, "cannot inspect %s: %s", dir, strerror(e));
    return -e;
  }
  if (!S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "%s is not a directory", dir);
    return -ENOTDIR;
  }
  if (st.st_uid != geteuid()) {
    snprintf(err, errlen, "%s belongs to uid %u, not to this daemon's uid %u", dir,
             (unsigned)st.st_uid, (unsigned)geteuid());
    return -EPERM;
  }
  if ((st.st_mode & 022) != 0) {
    snprintf(err, errlen,
             "%s is writable by its group or by others (mode %03o); refusing to use it", dir,
             (unsigned)(st.st_mode & 0777));
    return -EPERM;
  }
  return 0;
}

int host_lock_take(const char *path, bool system, struct host_lock *lock) {
  int fd;
  int e;

  lock->fd = -1;
  /* O_NOFOLLOW: a link planted in the directory cannot redirect the lock. */
  fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, system ? 0644 : 0600);
  if (fd < 0)
    return -errno;
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    e = errno;
    close(fd);
    return e == EWOULDBLOCK ? -EBUSY : -e;
  }
  lock->fd = fd;
  return 0;
}

void host_lock_none(struct host_lock *lock) {
  lock->fd = -1;
}

int host_lock_write_pid(struct host_lock *lock) {
  char buf[32];
  int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
  ssize_t w;

  if (lock->fd < 0)
    return -EBADF;
  if (ftruncate(lock->fd, 0) != 0)
    return -errno;
  do
    w = pwrite(lock->fd, buf, (size_t)n, 0);
  while (w < 0 && errno == EINTR);
  if (w < 0)
    return -errno;
  return w == n ? 0 : -EIO; /* a short write to a local file: the disk is full */
}

void host_lock_release(struct host_lock *lock) {
  if (lock->fd >= 0)
    close(lock->fd); /* releases the lock */
  lock->fd = -1;
}

FILE *host_config_open(const char *path) {
  return fopen(path, "re");
}

long host_getline(char **line, size_t *cap, FILE *f) {
  return (long)getline(line, cap, f);
}
