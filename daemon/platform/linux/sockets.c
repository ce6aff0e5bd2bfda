/* sockets: the daemon's listening socket, its connections and who is at
 * the other end of one, on Linux (host.h): a SOCK_SEQPACKET unix socket,
 * SO_PEERCRED. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "host.h"

/* Not in every system's headers yet (Debian 12's kernel headers are
 * Linux 6.1's): the kernel's numbers where they are the generic ones.
 * SO_PEERPIDFD (Linux 6.5) is 77 where the socket options follow
 * asm-generic (not on alpha, mips, parisc, sparc: there only the headers'
 * own value is used); pidfd_open (Linux 5.3) is 434 everywhere but alpha.
 * A kernel without them answers ENOPROTOOPT or ENOSYS. */
#if defined(SO_PEERPIDFD)
#define SOCKETS_SO_PEERPIDFD SO_PEERPIDFD
#elif defined(__x86_64__) || defined(__i386__) || defined(__aarch64__) || defined(__arm__) ||      \
    defined(__riscv) || defined(__s390__) || defined(__powerpc__) || defined(__loongarch__)
#define SOCKETS_SO_PEERPIDFD 77
#endif
#if defined(SYS_pidfd_open)
#define SOCKETS_NR_PIDFD_OPEN SYS_pidfd_open
#elif !defined(__alpha__)
#define SOCKETS_NR_PIDFD_OPEN 434
#endif

_Static_assert(HOST_PATH_MAX == sizeof(((struct sockaddr_un *)0)->sun_path),
               "HOST_PATH_MAX is sun_path's size");

int host_listen(const char *path, bool system, host_sock_t *sock, bool *replaced, char *err,
                size_t errlen) {
  struct sockaddr_un sa;
  struct stat st;
  mode_t mode = system ? 0666 : 0600;
  mode_t old;
  size_t n = strlen(path);
  int fd;
  int rv;
  int e;

  *sock = -1;
  *replaced = false;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  if (n >= sizeof(sa.sun_path)) {
    snprintf(err, errlen, "socket path too long: %s", path);
    return -ENAMETOOLONG;
  }
  memcpy(sa.sun_path, path, n + 1);
  if (lstat(path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      snprintf(err, errlen, "%s exists and is not a socket; refusing to replace it", path);
      return -EEXIST;
    }
    if (unlink(path) != 0) {
      e = errno;
      snprintf(err, errlen, "cannot remove the stale socket %s: %s", path, strerror(e));
      return -e;
    }
    *replaced = true;
  }
  fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    e = errno;
    snprintf(err, errlen, "socket: %s", strerror(e));
    return -e;
  }
  /* The umask decides the mode bind gives the file: make it right from
   * the start, then set it explicitly. */
  old = umask(0777 & ~mode);
  rv = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
  e = errno;
  umask(old);
  if (rv != 0) {
    snprintf(err, errlen, "cannot bind %s: %s", path, strerror(e));
    close(fd);
    return -e;
  }
  if (chmod(path, mode) != 0 || listen(fd, SOMAXCONN) != 0) {
    e = errno;
    snprintf(err, errlen, "cannot listen on %s: %s", path, strerror(e));
    (void)unlink(path);
    close(fd);
    return -e;
  }
  *sock = fd;
  return 0;
}

int host_unlisten(const char *path) {
  if (unlink(path) != 0 && errno != ENOENT)
    return -errno;
  return 0;
}

int host_accept(host_sock_t listener, host_sock_t *conn) {
  int fd;

  /* A signal, or a connection that went away before it was taken: the
   * next one may be waiting. */
  do
    fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
  while (fd < 0 && (errno == EINTR || errno == ECONNABORTED));
  *conn = fd;
  if (fd >= 0)
    return 0;
  return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

void host_sock_close(host_sock_t sock) {
  if (sock >= 0)
    (void)close(sock); /* on Linux the descriptor is gone even on EINTR */
}

void host_sock_set_sndbuf(host_sock_t sock, int bytes) {
  (void)setsockopt(sock, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
}

int host_sock_error(host_sock_t sock) {
  int err = 0;
  socklen_t len = sizeof(err);

  if (getsockopt(sock, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
    return 0;
  return err;
}

int host_sock_drained(host_sock_t sock) {
  int queued = 0;

  /* SIOCOUTQ: the bytes of our datagrams the peer has not received yet. */
  if (ioctl(sock, SIOCOUTQ, &queued) != 0)
    return -errno;
  return queued == 0;
}

bool host_fd_nonblocking(host_event_t fd) {
  int fl = fcntl(fd, F_GETFL);

  return fl >= 0 && (fl & O_NONBLOCK) != 0;
}

/* A pidfd of the peer's process, for the daemon's liveness watch
 * (host_peer_process), or -1 when the kernel gives none.
 *
 * SO_PEERPIDFD (Linux 6.5) names the very process that connected, whatever
 * happened since. Before it, pidfd_open (Linux 5.3) on SO_PEERCRED's pid:
 * if that process died and its id went to another process in between, the
 * pidfd names the newcomer, and the participant is judged dead when the
 * newcomer ends or its socket's last copy closes, whichever comes first;
 * both happen after the participant's own death, so the judgement is
 * late, never wrong. A pid of 0 (the peer is in a pid namespace the
 * daemon cannot see) gets no pidfd. Without either call (ENOSYS,
 * ENOPROTOOPT, EINVAL), or without a descriptor to spare (EMFILE), the
 * participant is judged by its socket alone, as before Linux 5.3. */
static int sockets_peer_pidfd(host_sock_t conn, int32_t pid) {
  int fd = -1;

#ifdef SOCKETS_SO_PEERPIDFD
  socklen_t len = sizeof(fd);
  if (getsockopt(conn, SOL_SOCKET, SOCKETS_SO_PEERPIDFD, &fd, &len) != 0 || len != sizeof(fd))
    fd = -1;
#else
  (void)conn;
#endif
#ifdef SOCKETS_NR_PIDFD_OPEN
  if (fd < 0 && pid > 0)
    fd = (int)syscall(SOCKETS_NR_PIDFD_OPEN, (pid_t)pid, 0u);
#else
  (void)pid;
#endif
  if (fd < 0)
    return -1;
  /* Both calls make it close-on-exec already; make sure. */
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    (void)close(fd);
    return -1;
  }
  return fd;
}

int host_peer_get(host_sock_t conn, struct host_peer *peer) {
  struct ucred cred;
  socklen_t len = sizeof(cred);

  memset(peer, 0, sizeof(*peer));
  peer->pidfd = -1;
  if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return -errno;
  if (len != sizeof(cred))
    return -EPROTO;
  peer->pid = (int32_t)cred.pid;
  peer->uid = (uint32_t)cred.uid;
  peer->gid = (uint32_t)cred.gid;
  if ((peer->pidfd = sockets_peer_pidfd(conn, peer->pid)) >= 0)
    peer->pidfd_ok = true;
  return 0;
}

int host_peer_self(struct host_peer *peer) {
  memset(peer, 0, sizeof(*peer));
  peer->pidfd = -1;
  peer->pid = (int32_t)getpid();
  peer->uid = (uint32_t)geteuid();
  peer->gid = (uint32_t)getegid();
  return 0;
}

void host_peer_release(struct host_peer *peer) {
  if (peer->pidfd_ok)
    (void)close(peer->pidfd);
  peer->pidfd = -1;
  peer->pidfd_ok = false;
}

host_sock_t host_peer_process(const struct host_peer *peer) {
  return peer->pidfd_ok ? peer->pidfd : HOST_SOCK_INVALID;
}

uint32_t host_peer_uid(const struct host_peer *peer) {
  return peer->uid;
}

uint32_t host_peer_gid(const struct host_peer *peer) {
  return peer->gid;
}

int32_t host_peer_pid(const struct host_peer *peer) {
  return peer->pid;
}
