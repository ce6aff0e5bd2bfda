/* platform: the contract between shmbus and the operating system. Every
 * OS-specific call (memory files, mappings, clocks, randomness, scheduling)
 * goes through these functions, implemented once per OS under
 * src/platform/<os>/. Nothing outside src/platform/ includes an OS header
 * for these jobs or tests an OS macro.
 *
 * All functions return 0 (or a documented non-negative value) on success
 * and a negative errno-style code on failure; none of them aborts. They are
 * thread-safe. File descriptors they create are close-on-exec. */
#ifndef SHMBUS_PLATFORM_H
#define SHMBUS_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Creates an anonymous shared-memory file of exactly `size` bytes, with its
 * pages reserved now (so running out of memory is an error here, never a
 * SIGBUS later) and sealed against growing, shrinking and further sealing.
 * Its mode is 0400, so that a read-only descriptor passed to another
 * process cannot be reopened read-write through /proc.
 * `debug_name` shows up in /proc/<pid>/fd; it has no other meaning. On
 * success *fd is a read-write descriptor the caller owns. Errors: -ENOMEM,
 * -ENOSPC when memory is short, -EMFILE, -ENOSYS without kernel support. */
int shmbus__shm_create(const char *debug_name, uint64_t size, int *fd);

/* Checks that `fd` is a sealed shared-memory file as made by
 * shmbus__shm_create (a memfd that cannot shrink under a mapping, every
 * page reserved) and returns its size. This is what makes a descriptor
 * received from another process safe to map. Errors: -EBADF,
 * SHMBUS_EBADREGION for anything else (a regular or tmpfs file, an O_PATH
 * descriptor, a directory, a pipe, a socket, an unsealed or sparse memfd,
 * a size out of range). The caller still checks the exact size. */
int shmbus__shm_check(int fd, uint64_t *size);

/* Opens a new read-only descriptor for the same memory file as `fd`. A
 * mapping of it can never be made writable: this is what keeps subscribers
 * from writing the slot area. The caller owns *ro_fd. */
int shmbus__shm_reopen_readonly(int fd, int *ro_fd);

/* Maps `size` bytes of `fd` shared, read-write or read-only. The mapping
 * stays valid after `fd` is closed, until shmbus__shm_unmap. */
int shmbus__shm_map(int fd, uint64_t size, bool writable, void **addr);
void shmbus__shm_unmap(void *addr, uint64_t size);

/* Duplicates `fd` (close-on-exec); the caller owns *out. */
int shmbus__fd_dup(int fd, int *out);

/* What a descriptor is, as the kernel names it (on Linux the target of
 * /proc/self/fd/N: "/memfd:NAME (deleted)", "anon_inode:[eventfd]",
 * "pipe:[123]", a path...), NUL-terminated in buf (truncated to cap - 1
 * bytes). Returns 0 or -errno (-EBADF for a closed descriptor),
 * SHMBUS_ENOPROC when /proc is not mounted. */
int shmbus__fd_describe(int fd, char *buf, size_t cap);

/* Closes a descriptor, ignoring EINTR (on Linux the fd is gone anyway). */
void shmbus__fd_close(int fd);
/* 1 if both descriptors refer to the same file (device and inode), 0 if
 * not, negative on error. */
int shmbus__fd_same_file(int a, int b);

/* The system page size. */
uint64_t shmbus__page_size(void);

/* Monotonic and wall clocks in nanoseconds. */
uint64_t shmbus__clock_mono_ns(void);
uint64_t shmbus__clock_real_ns(void);

/* 64 random bits from the kernel. */
int shmbus__random64(uint64_t *out);

/* Backoff for spin loops: pauses the CPU for the first spins, then gives
 * the CPU away so a descheduled peer can finish. */
void shmbus__spin_backoff(unsigned spins);

#endif /* SHMBUS_PLATFORM_H */

/* ---- wake-up events (eventfd on Linux) -------------------------------- */

/* Opens a non-blocking, close-on-exec wake-up event; the caller owns *fd. */
int shmbus__event_open(int *fd);
/* Signals the event (adds 1). A full counter is fine. Returns 0, or
 * -EBADFD without writing when the event is no longer non-blocking (its
 * owner, who shares the file flags, cleared O_NONBLOCK: a write could
 * block), or another -errno. */
int shmbus__event_signal(int fd);
/* Resets the event to unsignalled; never blocks. */
void shmbus__event_drain(int fd);
/* True if `fd` is a wake-up event as made by shmbus__event_open. */
bool shmbus__event_check(int fd);

/* Waits until fds[i] is readable (or hung up) for any i < n, at most
 * timeout_ms (-1: forever). Returns a bit mask of the ready fds (0 on
 * timeout) or a negative errno; EINTR is retried with the time left. */
int shmbus__wait_readable(const int *fds, unsigned n, int timeout_ms);

/* ---- the daemon's socket --------------------------------------------- */

/* Connects a non-blocking, close-on-exec SOCK_SEQPACKET unix socket to
 * `path`. Returns 0 with *fd, or -ENOENT/-ECONNREFUSED when no daemon
 * listens there, or another -errno. */
int shmbus__unix_connect(const char *path, int *fd);

/* Starts `path` (searched in $PATH when it has no '/') with argv, its
 * stdin/stdout/stderr on /dev/null and `ready_fd` passed as fd 3, and
 * reaps the direct child once it exits (the daemon detaches itself).
 * Returns 0 when that child exited 0, its exit status (> 0; 128 + the
 * signal when killed) when it did not, or -errno when it could not start. */
int shmbus__spawn_daemon(const char *path, char *const argv[], int ready_fd);

/* The absolute path of the file this library's code was loaded from (the
 * shared library, or the program a static library is linked into), and of
 * the running program (/proc/self/exe on Linux). Return 0, or -errno
 * (-ENOENT when the system cannot tell), or -ENAMETOOLONG. */
int shmbus__library_file(char *out, size_t cap);
int shmbus__program_file(char *out, size_t cap);

/* True if `path` is a regular file this process may execute. */
bool shmbus__is_executable(const char *path);

/* False only when nothing exists at `path` (ENOENT, ENOTDIR). */
bool shmbus__path_exists(const char *path);

/* Sends one datagram of `len` bytes with `nfds` descriptors attached
 * (SCM_RIGHTS; the caller keeps its copies), without blocking and without
 * SIGPIPE. Returns the number of bytes sent; -EAGAIN when the receiver is
 * not reading (socket full, no buffer space, too many descriptors in
 * flight); -EPIPE when the peer is gone; another -errno. */
int shmbus__sock_send(int sock, const void *buf, size_t len, const int *fds, unsigned nfds);

/* Receives one datagram without blocking into buf (cap bytes) and takes
 * the descriptors attached to it (close-on-exec): up to `max` go to fds[]
 * with their count in *nfds, the caller owns them; any beyond `max` are
 * closed and reported as truncation. *truncated is set when the datagram
 * or its descriptors did not fit. Returns the datagram's length (0: the
 * peer closed the stream); -EAGAIN when none is waiting; -EPIPE when the
 * connection was reset; -EMFILE when descriptors were attached but this
 * process's descriptor table is full (RLIMIT_NOFILE: the datagram is
 * consumed and lost); another -errno (then no descriptors are held). */
int shmbus__sock_recv(int sock, void *buf, size_t cap, int *fds, unsigned max, unsigned *nfds,
                      bool *truncated);

/* The user id of the process at the other end of a connected unix socket
 * (SO_PEERCRED), and our own effective user id. */
int shmbus__peer_uid(int sock, uint32_t *uid);
uint32_t shmbus__self_uid(void);

/* Creates a close-on-exec pipe. */
int shmbus__pipe(int fds[2]);

/* The program's short name (for the default client name). Static string. */
const char *shmbus__program_name(void);
