/* Shared-memory files on Linux: memfd_create with seals. See platform.h for
 * the contract. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../platform.h"
#include "linux_fd.h"

#define SHM_REQUIRED_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

int shmbus__shm_create(const char *debug_name, uint64_t size, int *fd_out) {
  int fd;
  int rv;

  if (size == 0 || size > (uint64_t)INT64_MAX || size > (uint64_t)SIZE_MAX)
    return -EINVAL;
  fd = memfd_create(debug_name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0)
    return -errno;
  if (ftruncate(fd, (off_t)size) != 0) {
    rv = -errno;
    goto fail;
  }
  /* Reserve every page now: a mapping of a sparse file would raise SIGBUS
   * on first touch when memory runs out; fallocate fails cleanly instead. */
  do
    rv = posix_fallocate(fd, 0, (off_t)size);
  while (rv == EINTR);
  if (rv != 0) {
    rv = -rv;
    goto fail;
  }
  if (fcntl(fd, F_ADD_SEALS, SHM_REQUIRED_SEALS) != 0) {
    rv = -errno;
    goto fail;
  }
  /* A memory file starts with mode 0777, and anyone who holds a descriptor
   * of it can open /proc/self/fd/N again with the rights the mode grants:
   * a subscriber could turn its read-only descriptor into a read-write one
   * and forge slots. With 0400, reopening can only give read access (to
   * the owner), and descriptors passed on keep the access they had. */
  if (fchmod(fd, 0400) != 0) {
    rv = -errno;
    goto fail;
  }
  *fd_out = fd;
  return 0;

fail:
  shmbus__fd_close(fd);
  return rv;
}

/* 1 if `fd` is a memfd: its /proc link reads "/memfd:NAME (deleted)".
 * Regular files, tmpfs files, O_PATH descriptors, pipes and sockets read
 * otherwise (0). -ENOTSUP when /proc cannot tell. */
static int shm_is_memfd(int fd) {
  char target[256];
  int rv = shmbus__linux_fd_describe(fd, target, sizeof(target));

  if (rv == -ENOTSUP)
    return rv;
  return rv == 0 && strncmp(target, "/memfd:", 7) == 0;
}

int shmbus__linux_proc_enoent(void) {
  struct stat st;

  return stat("/proc/self/fd", &st) == 0 ? -EBADF : -ENOTSUP;
}

int shmbus__shm_check(int fd, uint64_t max_size, uint64_t *size) {
  struct stat st;
  int memfd;
  int seals;

  if (fstat(fd, &st) != 0)
    return -errno;
  if ((memfd = shm_is_memfd(fd)) < 0)
    return memfd;
  if (memfd == 0)
    return -EINVAL;
  if (!S_ISREG(st.st_mode) || st.st_size <= 0 || (uint64_t)st.st_size > max_size)
    return -EINVAL;
  /* Every page must be there already (shmbus__shm_create reserves them):
   * a sparse file would make our writes allocate memory charged to us, and
   * fault with SIGBUS when there is none. */
  if ((uint64_t)st.st_blocks * 512u < (uint64_t)st.st_size)
    return -EINVAL;
  seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) != (F_SEAL_SHRINK | F_SEAL_GROW))
    return -EINVAL;
  *size = (uint64_t)st.st_size;
  return 0;
}

int shmbus__shm_reopen_readonly(int fd, int *ro_fd) {
  char path[64];
  int nfd;

  /* Opening the /proc link gives a new open file description with the
   * access mode we ask for; the kernel refuses PROT_WRITE mappings of it. */
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  nfd = open(path, O_RDONLY | O_CLOEXEC);
  if (nfd < 0)
    return errno == ENOENT ? shmbus__linux_proc_enoent() : -errno;
  *ro_fd = nfd;
  return 0;
}

int shmbus__shm_map(int fd, uint64_t size, bool writable, void **addr) {
  void *p =
      mmap(NULL, (size_t)size, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED)
    return -errno;
  *addr = p;
  return 0;
}

void shmbus__shm_unmap(void *addr, uint64_t size) {
  if (addr != NULL)
    (void)munmap(addr, (size_t)size);
}

int shmbus__fd_dup(int fd, int *out) {
  int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (nfd < 0)
    return -errno;
  *out = nfd;
  return 0;
}

int shmbus__linux_fd_describe(int fd, char *buf, size_t cap) {
  char path[64];
  ssize_t n;

  if (cap == 0)
    return -EINVAL;
  snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  n = readlink(path, buf, cap - 1);
  if (n < 0)
    return errno == ENOENT ? shmbus__linux_proc_enoent() : -errno;
  buf[n] = '\0';
  return 0;
}

int shmbus__fd_same_file(int a, int b) {
  struct stat sa;
  struct stat sb;

  if (fstat(a, &sa) != 0 || fstat(b, &sb) != 0)
    return -errno;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

void shmbus__fd_close(int fd) {
  if (fd >= 0)
    (void)close(fd);
}

uint64_t shmbus__page_size(void) {
  long v = sysconf(_SC_PAGESIZE);
  return v > 0 ? (uint64_t)v : 4096u;
}
