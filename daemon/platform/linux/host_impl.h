/* host_impl: the Linux definitions of the opaque types of host.h. Only
 * daemon/platform/host.h includes this file; only daemon/platform/linux/
 * looks inside the structs. */
#ifndef SHMBUSD_HOST_IMPL_H
#define SHMBUSD_HOST_IMPL_H

#include <stdbool.h>
#include <stdint.h>

/* A socket handle: a file descriptor (libuv's uv_os_sock_t on Linux, so the
 * daemon watches it with uv_poll, through src/platform/loop.h). */
typedef int host_sock_t;
#define HOST_SOCK_INVALID (-1)

/* A participant's wake-up event: its eventfd. */
typedef int host_event_t;

/* The printf format checks of the log calls (glibc's printf). */
#define HOST_PRINTF_FORMAT printf

/* The longest socket path, with its NUL (sizeof sockaddr_un.sun_path). */
#define HOST_PATH_MAX 108

/* SO_PEERCRED's view of a peer, and a pidfd of its process (which
 * host_peer_release closes) when the kernel gives one: `pidfd_ok` tells
 * (a peer zeroed by memset holds none, not descriptor 0). */
struct host_peer {
  int32_t pid;
  uint32_t uid;
  uint32_t gid;
  int pidfd;
  bool pidfd_ok;
};

/* A user or a group a rule names: its uid or gid. */
struct host_principal {
  uint32_t id;
};

/* An flock(2)ed file; fd -1 when none is held. */
struct host_lock {
  int fd;
};

/* The write end of a pipe whose reader waits for one byte; -1 if none. */
struct host_ready {
  int fd;
};

#endif /* SHMBUSD_HOST_IMPL_H */
