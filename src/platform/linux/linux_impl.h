/* linux_impl.h: what the platform contract's opaque types are on Linux.
 * Included by platform.h only; see there for what each type stands for.
 *
 * On Linux every OS object shmbus uses is a file descriptor: a shared-memory
 * object is a sealed memfd, a wake-up event an eventfd, a control connection
 * a SOCK_SEQPACKET unix socket. They are all passed between processes with
 * SCM_RIGHTS. The role-specific names are aliases of one descriptor type, so
 * the Linux build gains no conversions; a backend whose objects differ
 * (Windows: HANDLEs, named pipes) defines them as it needs. */
#ifndef SHMBUS_PLATFORM_LINUX_IMPL_H
#define SHMBUS_PLATFORM_LINUX_IMPL_H

#include <stdint.h>

/* An OS handle: a file descriptor. */
typedef int shmbus__os_handle;

/* The value of a handle that holds nothing. Every valid descriptor is
 * non-negative; code outside the platform compares with this constant or
 * uses shmbus__handle_ok, never with 0. */
#define SHMBUS__OS_HANDLE_INVALID (-1)

/* A shared-memory object: a sealed memfd. */
typedef shmbus__os_handle shmbus__shm_handle;
/* A wake-up event: a non-blocking eventfd. */
typedef shmbus__os_handle shmbus__event_handle;
/* A control connection: a non-blocking SOCK_SEQPACKET unix socket. */
typedef shmbus__os_handle shmbus__conn_handle;

/* Who is at the other end of a control connection (SO_PEERCRED). */
struct shmbus__peer_id {
  uint32_t uid;
  uint32_t gid;
  int32_t pid;
};

/* The longest control endpoint (a socket path, NUL included): sun_path. */
#define SHMBUS__ENDPOINT_MAX 108

/* Paths: the directory separator (as a character and a string), the
 * separator of a search list ($PATH), and the end of an executable's name. */
#define SHMBUS__PATH_SEP '/'
#define SHMBUS__PATH_SEP_STR "/"
#define SHMBUS__PATH_LIST_SEP ':'
#define SHMBUS__EXE_SUFFIX ""

/* The system-wide bus directory. */
#define SHMBUS__PLATFORM_SYSTEM_DIR "/run/shmbus"

#endif /* SHMBUS_PLATFORM_LINUX_IMPL_H */
