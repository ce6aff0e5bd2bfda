/* host_impl: the Windows definitions of the opaque types of host.h. Only
 * daemon/platform/host.h includes this file; only daemon/platform/windows/
 * looks inside the structs. It does not include <windows.h>: a HANDLE is
 * a void *. */
#ifndef SHMBUSD_HOST_IMPL_H
#define SHMBUSD_HOST_IMPL_H

#include <stdint.h>

/* A connection: the server end of a named pipe in message mode, a HANDLE.
 * The listener is not a pipe: it is the event that is signalled when a
 * client has connected to the waiting pipe instance (sockets.c), which
 * the daemon's loop waits for (a registered wait and uv_async_send, as for
 * a subscriber's event: libuv cannot poll a HANDLE). */
typedef void *host_sock_t;
#define HOST_SOCK_INVALID ((void *)(intptr_t)-1)

/* A participant's wake-up event: an event HANDLE. */
typedef void *host_event_t;

/* The printf format checks of the log calls: mingw-w64's C99 stdio
 * (__USE_MINGW_ANSI_STDIO, which the build sets), not msvcrt's. */
#define HOST_PRINTF_FORMAT gnu_printf

/* The longest endpoint path, with its NUL (a pipe name has 256 characters
 * at most; see shmbus__win_pipe_name). */
#define HOST_PATH_MAX 260

/* Who is at the other end of a connection: the process id the pipe gives
 * and the token it captured when the client connected: its user SID and
 * its groups (only those enabled and not deny-only, as SIDs one after the
 * other in `groups`, malloc'd), and a handle of its process
 * (host_peer_release frees and closes them). `uid` is the
 * user SID's number (users.c: one per SID, never its relative id alone),
 * which every comparison of users by `uid` uses; the rules compare SIDs
 * (users.c). `gid` is 0. */
struct host_peer {
  int32_t pid;
  uint32_t uid;
  uint32_t gid;
  uint8_t sid_len;
  uint8_t sid[68];
  uint32_t ngroups;
  uint32_t groups_len; /* bytes in `groups` */
  uint8_t *groups;
  /* The client's process (SYNCHRONIZE and query), held for the life of
   * the connection so that its id names that process until then (the
   * control channel's pull opens it by id); NULL when it may not be
   * opened (another user's, at a higher integrity). */
  void *process;
};

/* A user or a group a rule names: its SID (SECURITY_MAX_SID_SIZE bytes at
 * most). */
struct host_principal {
  uint8_t len;
  uint8_t sid[68];
};

/* The lock file, locked with LockFileEx; NULL when none is held. */
struct host_lock {
  void *file;
};

/* The ready event the starter waits for (inherited, its value given by
 * --ready-fd); NULL when none. */
struct host_ready {
  void *event;
};

#endif /* SHMBUSD_HOST_IMPL_H */
