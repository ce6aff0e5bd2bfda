/* linux_fd: what the Linux backend asks /proc about its descriptors.
 * Private to src/platform/linux/: the contract says what a check is for
 * (shmbus__shm_check, shmbus__event_check), never how Linux answers it. */
#ifndef SHMBUS_PLATFORM_LINUX_FD_H
#define SHMBUS_PLATFORM_LINUX_FD_H

#include <stddef.h>

/* What a descriptor is, as the kernel names it (the target of
 * /proc/self/fd/N: "/memfd:NAME (deleted)", "anon_inode:[eventfd]",
 * "pipe:[123]", a path...), NUL-terminated in buf (truncated to cap - 1
 * bytes). Returns 0, -EBADF for a closed descriptor, -ENOTSUP when /proc
 * is not mounted, or another -errno. */
int shmbus__linux_fd_describe(int fd, char *buf, size_t cap);

/* A /proc/self/fd lookup failed with ENOENT: -EBADF for a closed
 * descriptor, -ENOTSUP when there is no /proc at all (a chroot, a
 * container without it), which must not read as a corrupted region. */
int shmbus__linux_proc_enoent(void);

#endif /* SHMBUS_PLATFORM_LINUX_FD_H */
