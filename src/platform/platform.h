/* platform: the contract between shmbus and the operating system.
 *
 * Everything OS-specific the library does (shared memory, wake-up events,
 * waiting, the control connection and the passing of handles over it, the
 * identity of the peer, paths, starting the daemon, clocks, randomness,
 * scheduling) goes through the calls below. Each OS implements them once,
 * under src/platform/<os>/, and defines the opaque types in its own
 * implementation header (src/platform/linux/linux_impl.h). Nothing outside
 * src/platform/ includes an OS header for these jobs or tests an OS macro;
 * this header is the only place that chooses the OS.
 *
 * The types:
 *   shmbus__os_handle     any OS handle (Linux: an int descriptor; Windows:
 *                         a HANDLE), SHMBUS__OS_HANDLE_INVALID when empty;
 *   shmbus__shm_handle    a shared-memory object (a sealed memfd);
 *   shmbus__event_handle  a wake-up event (an eventfd);
 *   shmbus__conn_handle   a control connection to the daemon (a unix
 *                         socket), which also carries handles;
 *   struct shmbus__peer_id  who is at the other end of a connection (uid,
 *                         gid, pid; a SID on Windows);
 *   SHMBUS__ENDPOINT_MAX  the room a control endpoint's name needs (a socket
 *                         path; a pipe name), NUL included;
 *   SHMBUS__PATH_SEP(_STR), SHMBUS__PATH_LIST_SEP, SHMBUS__EXE_SUFFIX
 *                         how paths are spelled ('/', ':', "" on Linux);
 *   SHMBUS__PLATFORM_SYSTEM_DIR  the system-wide bus directory.
 * Code outside the platform treats them as opaque: it copies them, stores
 * them, compares them with SHMBUS__OS_HANDLE_INVALID (shmbus__handle_ok),
 * and passes them back here; it never does arithmetic on them or hands
 * them to the C library.
 *
 * Rules for every call, unless its comment says otherwise:
 *   - It returns 0 (or a documented non-negative value) on success and a
 *     negative errno-style code on failure (OS errors are translated, never
 *     passed raw); none aborts, none logs. Calls that cannot fail say so.
 *   - It is thread-safe: it keeps no state of its own.
 *   - Handles it creates belong to the caller, are not inherited by
 *     programs the process starts (close-on-exec), and survive fork(): the
 *     child holds its own copies of the same objects (Linux descriptors
 *     are shared open file descriptions, so the child must not change
 *     their flags). Mappings are inherited by a forked child.
 *   - A handle received from another process is untrusted until the check
 *     call for its kind (shmbus__shm_check, shmbus__event_check) accepts it.
 */
#ifndef SHMBUS_PLATFORM_H
#define SHMBUS_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#include "windows/win_impl.h"
#else
#include "linux/linux_impl.h"
#endif

/* ---- handles ---------------------------------------------------------- */

/* True if `h` holds an OS object (is not SHMBUS__OS_HANDLE_INVALID). */
static inline bool shmbus__handle_ok(shmbus__os_handle h) {
  return h != SHMBUS__OS_HANDLE_INVALID;
}

/* Closes a handle; SHMBUS__OS_HANDLE_INVALID is ignored. Cannot fail (an
 * interrupted close has closed the handle anyway on Linux). */
void shmbus__fd_close(shmbus__os_handle h);

/* Duplicates `h` into *out (not inherited by started programs); the caller
 * owns *out. Errors: -EBADF, -EMFILE. */
int shmbus__fd_dup(shmbus__os_handle h, shmbus__os_handle *out);

/* 1 if both handles refer to the same shared-memory object, 0 if not,
 * negative on error (-EBADF). */
int shmbus__fd_same_file(shmbus__os_handle a, shmbus__os_handle b);

/* ---- shared memory ------------------------------------------------------- */

/* Creates an anonymous shared-memory object of exactly `size` bytes, with
 * its pages reserved now (running out of memory is an error here, never a
 * fault later) and fixed in size for its whole life. A read-only handle
 * made from it (shmbus__shm_reopen_readonly) and passed to another process
 * can never be turned into a writable one. `debug_name` is shown by the
 * system's tools (on Linux in /proc/<pid>/fd); it has no other meaning.
 * On success *shm is a read-write handle the caller owns. Errors: -EINVAL
 * (size 0 or larger than the system can map), -ENOMEM, -ENOSPC when memory
 * is short, -EMFILE, -ENOSYS without kernel support. */
int shmbus__shm_create(const char *debug_name, uint64_t size, shmbus__shm_handle *shm);

/* Checks that `shm` is a shared-memory object as made by shmbus__shm_create
 * (on Linux a memfd sealed against shrinking and growing, every page
 * reserved) of 1..max_size bytes, and returns its size. This is what makes
 * a handle received from another process safe to map; the caller still
 * checks the exact size it expects. Errors: -EBADF (closed); -EINVAL for
 * anything else (a regular or tmpfs file, a directory, a pipe, a socket, an
 * unsealed or sparse object, a size out of range); -ENOTSUP when the system
 * cannot tell (Linux: /proc is not mounted). */
int shmbus__shm_check(shmbus__shm_handle shm, uint64_t max_size, uint64_t *size);

/* Opens a new read-only handle for the same object as `shm`. A mapping of
 * it can never be made writable: this is what keeps subscribers from
 * writing the slot area. The caller owns *ro. Errors: -EBADF; -ENOTSUP when
 * the system cannot do it (Linux: /proc is not mounted); -EMFILE. */
int shmbus__shm_reopen_readonly(shmbus__shm_handle shm, shmbus__shm_handle *ro);

/* Maps `size` bytes of `shm` shared, read-write or read-only. The mapping
 * stays valid after the handle is closed, until shmbus__shm_unmap, and is
 * inherited by a forked child. Errors: -EACCES (a writable mapping of a
 * read-only handle), -ENOMEM. */
int shmbus__shm_map(shmbus__shm_handle shm, uint64_t size, bool writable, void **addr);
/* Unmaps what shmbus__shm_map mapped (NULL: nothing). Cannot fail. */
void shmbus__shm_unmap(void *addr, uint64_t size);

/* The granularity of mappings (the page size). Cannot fail. */
uint64_t shmbus__page_size(void);

/* ---- wake-up events ------------------------------------------------------- */

/* Opens a wake-up event: a counter that any process holding it can signal
 * without blocking and whose owner can wait for (shmbus__wait_readable).
 * The caller owns *ev. Errors: -EMFILE, -ENOMEM. */
int shmbus__event_open(shmbus__event_handle *ev);

/* Signals the event. An event already signalled stays signalled (a full
 * counter is fine). Never blocks: returns -EBADFD without signalling when
 * signalling could block (on Linux: its owner, who shares the file flags,
 * cleared O_NONBLOCK), or another negative code. */
int shmbus__event_signal(shmbus__event_handle ev);

/* Resets the event to unsignalled; never blocks. Cannot fail. */
void shmbus__event_drain(shmbus__event_handle ev);

/* True if `ev` (received from another process) is a wake-up event as made
 * by shmbus__event_open, so that signalling it cannot block or act on
 * another kind of object. */
bool shmbus__event_check(shmbus__event_handle ev);

/* Waits until handles[i] is readable, signalled or hung up for any i < n
 * (n <= 4; events and connections), at most timeout_ms (-1: forever).
 * Returns a bit mask of the ready handles (0 on timeout) or a negative
 * code (-EINVAL for n out of range); an interruption is retried with the
 * time left. */
int shmbus__wait_readable(const shmbus__os_handle *handles, unsigned n, int timeout_ms);

/* ---- the control connection --------------------------------------------- */

/* Connects a non-blocking control connection to the daemon's endpoint
 * `path` (on Linux a SOCK_SEQPACKET unix socket). Returns 0 with *conn
 * (the caller owns it), or -ENOENT/-ECONNREFUSED when no daemon listens
 * there, -ENAMETOOLONG when `path` does not fit SHMBUS__ENDPOINT_MAX, or
 * another negative code. */
int shmbus__unix_connect(const char *path, shmbus__conn_handle *conn);

/* Sends one message of `len` bytes with `nh` handles attached (the caller
 * keeps its own), without blocking and without a signal. Returns the
 * number of bytes sent; -EAGAIN when the receiver is not reading (full,
 * no buffer space, too many handles in flight); -EPIPE when the peer is
 * gone; -EINVAL for more than 16 handles; another negative code. */
int shmbus__sock_send(shmbus__conn_handle conn, const void *buf, size_t len,
                      const shmbus__os_handle *handles, unsigned nh);

/* Receives one message without blocking into buf (cap bytes) and takes the
 * handles attached to it: up to `max` go to handles[] with their count in
 * *nh, the caller owns them; any beyond `max` are closed and reported as
 * truncation. *truncated is set when the message or its handles did not
 * fit. Returns the message's length (0: the peer closed the connection);
 * -EAGAIN when none is waiting; -EPIPE when the connection was reset;
 * -EMFILE when handles were attached but this process cannot hold more
 * (the message is consumed and lost); another negative code (then no
 * handles are held). */
int shmbus__sock_recv(shmbus__conn_handle conn, void *buf, size_t cap, shmbus__os_handle *handles,
                      unsigned max, unsigned *nh, bool *truncated);

/* Who is at the other end of a connected control connection, as the OS
 * vouches for it (not as the peer says). Errors: -EBADF, -ENOTCONN. */
int shmbus__peer_identity(shmbus__conn_handle conn, struct shmbus__peer_id *id);

/* The peer's user id alone (the daemon's policy is written in uids). */
int shmbus__peer_uid(shmbus__conn_handle conn, uint32_t *uid);

/* True if a daemon running as `id` may serve this process: the same user,
 * or the system's administrator (uid 0 on Linux). Anyone else could have
 * squatted the bus directory to read or forge what we publish. */
bool shmbus__peer_trusted(const struct shmbus__peer_id *id);

/* Our own effective user id. Cannot fail. */
uint32_t shmbus__self_uid(void);

/* Creates a one-way pipe, p[0] to read, p[1] to write (for ready signals
 * between processes). Errors: -EMFILE, -ENFILE. */
int shmbus__pipe(shmbus__os_handle p[2]);

/* ---- paths ---------------------------------------------------------------- */

/* The default per-user bus directory into out (on Linux
 * $XDG_RUNTIME_DIR/shmbus when that variable holds an absolute path, else
 * /tmp/shmbus-<uid>). Returns 0 or -ENAMETOOLONG. The system-wide
 * directory is SHMBUS__PLATFORM_SYSTEM_DIR. */
int shmbus__default_bus_dir(char *out, size_t cap);

/* The absolute path of the file this library's code was loaded from (the
 * shared library, or the program a static library is linked into), and of
 * the running program. Return 0, or -ENOENT when the system cannot tell,
 * or -ENAMETOOLONG. */
int shmbus__library_file(char *out, size_t cap);
int shmbus__program_file(char *out, size_t cap);

/* True if `path` is a regular file this process may execute. */
bool shmbus__is_executable(const char *path);

/* False only when nothing exists at `path` (no such file, or a component
 * is not a directory). */
bool shmbus__path_exists(const char *path);

/* ---- starting the daemon ------------------------------------------------- */

/* Starts the daemon program `path` (searched in the program search path
 * when it has no directory part) with the arguments args[] (NULL-ended,
 * args[0] the program's name), its standard input and outputs on the null
 * device, and this platform's ready signal: on Linux a pipe passed as fd 3
 * with `--ready-fd 3` appended to the arguments, which the daemon writes
 * once it accepts connections. Waits for the started process to exit (the
 * daemon detaches itself, and its first process exits once it is ready or
 * has failed) and then up to timeout_ms for the ready signal. Leaves no
 * child to reap. Returns 0 when the daemon reported ready; its first
 * process's exit status (> 0; 128 + the signal when killed) when that was
 * not 0; -ETIMEDOUT when it exited 0 but did not report ready in time; or
 * another negative code when it could not be started (-ENOENT, -EACCES,
 * -EMFILE, -E2BIG for too many arguments). */
int shmbus__daemon_spawn(const char *path, const char *const args[], int timeout_ms);

/* ---- the process ------------------------------------------------------- */

/* The program's short name (for the default participant name). A static
 * string; cannot fail. */
const char *shmbus__program_name(void);

/* Monotonic and wall clocks in nanoseconds. Cannot fail. */
uint64_t shmbus__clock_mono_ns(void);
uint64_t shmbus__clock_real_ns(void);

/* 64 random bits from the OS's generator (never a seeded PRNG). Errors:
 * -EIO, -ENOSYS. */
int shmbus__random64(uint64_t *out);

/* Backoff for spin loops: pauses the CPU for the first spins, then gives
 * the CPU away so a descheduled peer can finish. Cannot fail. */
void shmbus__spin_backoff(unsigned spins);

/* Sleeps about `ms` milliseconds (0: gives the CPU away). For retry loops
 * with nothing to wait on; an interrupted sleep ends early. Cannot fail. */
void shmbus__sleep_ms(unsigned ms);

#endif /* SHMBUS_PLATFORM_H */
