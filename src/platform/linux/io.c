/* Events, waiting, the daemon's socket and starting the daemon, on Linux.
 * See platform.h for the contract. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../platform.h"
#include "linux_fd.h"

extern char **environ;

int shmbus__event_open(int *fd) {
  int e = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (e < 0)
    return -errno;
  *fd = e;
  return 0;
}

int shmbus__event_signal(int fd) {
  uint64_t one = 1;
  int fl;

  /* The file status flags live in the open file description, which the
   * event's owner shares: if it cleared O_NONBLOCK and filled the counter,
   * our write would block until it reads. Refuse such an event. A flag
   * cleared between this check and the write still blocks us: the
   * residual risk docs/security.md describes. */
  if ((fl = fcntl(fd, F_GETFL)) < 0)
    return -errno;
  if ((fl & O_NONBLOCK) == 0)
    return -EBADFD;
  /* EAGAIN means the counter is saturated: the reader will wake anyway. */
  if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
    return -errno;
  return 0;
}

void shmbus__event_drain(int fd) {
  uint64_t v;
  /* Non-blocking: EAGAIN just means it was not signalled. */
  (void)!read(fd, &v, sizeof(v));
}

bool shmbus__event_check(int fd) {
  char target[64];

  return shmbus__linux_fd_describe(fd, target, sizeof(target)) == 0 &&
         strcmp(target, "anon_inode:[eventfd]") == 0;
}

int shmbus__wait_readable(const int *fds, unsigned n, int timeout_ms) {
  struct pollfd p[4];
  uint64_t deadline = 0;
  unsigned i;
  int rv;
  int mask = 0;

  if (n == 0 || n > 4)
    return -EINVAL;
  for (i = 0; i < n; i++) {
    p[i].fd = fds[i];
    p[i].events = POLLIN;
    p[i].revents = 0;
  }
  if (timeout_ms > 0)
    deadline = shmbus__clock_mono_ns() + (uint64_t)timeout_ms * 1000000u;
  for (;;) {
    rv = poll(p, n, timeout_ms);
    if (rv >= 0)
      break;
    if (errno != EINTR)
      return -errno;
    if (timeout_ms > 0) {
      uint64_t now = shmbus__clock_mono_ns();
      timeout_ms = now >= deadline ? 0 : (int)((deadline - now + 999999u) / 1000000u);
    }
  }
  for (i = 0; i < n; i++)
    if (p[i].revents != 0)
      mask |= 1 << i;
  return mask;
}

int shmbus__unix_connect(const char *path, int *fd_out) {
  struct sockaddr_un sa;
  int fd;
  int rv;

  if (strlen(path) >= sizeof(sa.sun_path))
    return -ENAMETOOLONG;
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path, strlen(path) + 1);
  fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -errno;
  /* A unix-socket connect completes at once or fails (no EINPROGRESS for
   * a listening peer, EAGAIN when its backlog is full). */
  if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    rv = -errno;
    close(fd);
    return rv;
  }
  *fd_out = fd;
  return 0;
}

/* Starts `path` with argv, its stdin/stdout/stderr on /dev/null and
 * `ready_fd` passed as fd 3, and reaps the direct child once it exits.
 * Returns 0 when that child exited 0, its exit status (> 0; 128 + the
 * signal when killed) when it did not, or -errno when it could not start. */
static int io_spawn(const char *path, char *const argv[], int ready_fd) {
  posix_spawn_file_actions_t fa;
  pid_t pid;
  int status;
  int rv;

  if ((rv = posix_spawn_file_actions_init(&fa)) != 0)
    return -rv;
  /* dup2 onto fd 3 clears close-on-exec for the ready pipe only. */
  if ((rv = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)) != 0 ||
      (rv = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0)) != 0 ||
      (rv = posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0)) != 0 ||
      (rv = posix_spawn_file_actions_adddup2(&fa, ready_fd, 3)) != 0)
    goto done;
  if (strchr(path, '/') != NULL)
    rv = posix_spawn(&pid, path, &fa, NULL, argv, environ);
  else
    rv = posix_spawnp(&pid, path, &fa, NULL, argv, environ);
  if (rv != 0)
    goto done;
  /* The daemon forks into the background and its first process exits
   * once the daemon listens (0) or failed (its status); reap it so no
   * zombie is left in our process. */
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  posix_spawn_file_actions_destroy(&fa);
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 0;
done:
  posix_spawn_file_actions_destroy(&fa);
  return -rv;
}

/* The most arguments shmbus__daemon_spawn passes on, its own included. */
#define IO_SPAWN_MAX_ARGS 32

int shmbus__daemon_spawn(const char *path, const char *const args[], int timeout_ms) {
  char *argv[IO_SPAWN_MAX_ARGS];
  char ready_opt[] = "--ready-fd";
  char ready_val[] = "3";
  unsigned n = 0;
  int p[2];
  int rv;

  /* posix_spawn takes char *const[] but never writes the strings. */
  while (args[n] != NULL) {
    if (n + 3 > IO_SPAWN_MAX_ARGS)
      return -E2BIG;
    argv[n] = (char *)(uintptr_t)args[n];
    n++;
  }
  argv[n++] = ready_opt;
  argv[n++] = ready_val;
  argv[n] = NULL;
  if ((rv = shmbus__pipe(p)) < 0)
    return rv;
  rv = io_spawn(path, argv, p[1]);
  shmbus__fd_close(p[1]);
  /* The first process exits once the daemon is ready, so its byte is
   * there already; wait a bounded time anyway, for a daemon that does not
   * detach. A daemon that exits without writing closes the pipe: readable
   * too, and then the status above says what happened. */
  if (rv == 0) {
    int w = shmbus__wait_readable(&p[0], 1, timeout_ms);
    rv = w == 0 ? -ETIMEDOUT : w < 0 ? w : 0;
  }
  shmbus__fd_close(p[0]);
  return rv;
}

/* Makes `path` absolute and free of symlinks into out. */
static int io_realpath(const char *path, char *out, size_t cap) {
  char buf[PATH_MAX];

  if (realpath(path, buf) == NULL)
    return -errno;
  if (strlen(buf) >= cap)
    return -ENAMETOOLONG;
  memcpy(out, buf, strlen(buf) + 1);
  return 0;
}

/* An object of the library's own, whose address names the file it was
 * loaded from (ISO C has no conversion of a function pointer for dladdr). */
static const char io_anchor = 0;

int shmbus__library_file(char *out, size_t cap) {
  Dl_info info;

  /* A main program
   * found through $PATH may be reported by its bare name: then unknown. */
  if (dladdr(&io_anchor, &info) == 0 || info.dli_fname == NULL ||
      strchr(info.dli_fname, '/') == NULL)
    return -ENOENT;
  return io_realpath(info.dli_fname, out, cap);
}

int shmbus__program_file(char *out, size_t cap) {
  return io_realpath("/proc/self/exe", out, cap);
}

bool shmbus__path_exists(const char *path) {
  struct stat st;

  return lstat(path, &st) == 0 || (errno != ENOENT && errno != ENOTDIR);
}

bool shmbus__is_executable(const char *path) {
  struct stat st;

  return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* Room for the most descriptors a caller of shmbus__sock_recv asks for;
 * more than that in one datagram is truncation. */
#define SOCK_MAX_FDS 16u

/* Ancillary room for SOCK_MAX_FDS descriptors, aligned for cmsghdr. */
union sock_ctl {
  char buf[CMSG_SPACE(sizeof(int) * SOCK_MAX_FDS)];
  struct cmsghdr align;
};

/* One datagram of `len` bytes at buf, with `ctllen` bytes of ancillary
 * room at ctl (NULL, 0: none). */
static void sock_msghdr(struct msghdr *mh, struct iovec *iov, void *buf, size_t len, void *ctl,
                        size_t ctllen) {
  memset(mh, 0, sizeof(*mh));
  iov->iov_base = buf;
  iov->iov_len = len;
  mh->msg_iov = iov;
  mh->msg_iovlen = 1;
  mh->msg_control = ctl;
  mh->msg_controllen = ctllen;
}

int shmbus__sock_send(int sock, const void *buf, size_t len, const int *fds, unsigned nfds) {
  union sock_ctl ctl;
  struct msghdr mh;
  struct cmsghdr *cm;
  struct iovec iov;
  ssize_t sent;

  if (nfds > SOCK_MAX_FDS)
    return -EINVAL;
  memset(&ctl, 0, sizeof(ctl));
  sock_msghdr(&mh, &iov, (void *)buf, len, nfds > 0 ? ctl.buf : NULL,
              nfds > 0 ? CMSG_SPACE(sizeof(int) * nfds) : 0);
  if (nfds > 0) {
    cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
  }
  do
    sent = sendmsg(sock, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR);
  if (sent < 0) {
    switch (errno) {
    case EWOULDBLOCK:
#if EAGAIN != EWOULDBLOCK
    case EAGAIN:
#endif
    /* No buffer space and too many descriptors in flight both mean the
     * receiver is not reading: the same situation as a full socket. */
    case ENOBUFS:
    case ETOOMANYREFS:
      return -EAGAIN;
    case ENOTCONN:
      return -EPIPE;
    default:
      return -errno;
    }
  }
  return (int)sent;
}

int shmbus__sock_recv(int sock, void *buf, size_t cap, int *fds, unsigned max, unsigned *nfds,
                      bool *truncated) {
  union sock_ctl ctl;
  struct msghdr mh;
  struct cmsghdr *cm;
  struct iovec iov;
  unsigned n = 0, i, cnt;
  ssize_t got;
  int fd;

  *nfds = 0;
  *truncated = false;
  memset(&ctl, 0, sizeof(ctl));
  sock_msghdr(&mh, &iov, buf, cap, ctl.buf, sizeof(ctl.buf));
  do
    got = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  while (got < 0 && errno == EINTR);
  if (got < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return -EAGAIN;
    if (errno == ECONNRESET)
      return -EPIPE;
    return -errno;
  }
  /* Take every descriptor, whatever follows: the kernel installed them in
   * our table, so each one is either handed out or closed here. */
  for (cm = CMSG_FIRSTHDR(&mh); cm != NULL; cm = CMSG_NXTHDR(&mh, cm)) {
    if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
      continue;
    cnt = (unsigned)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
    for (i = 0; i < cnt; i++) {
      memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
      if (n < max) {
        fds[n++] = fd;
      } else {
        (void)close(fd);
        *truncated = true;
      }
    }
  }
  if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))
    *truncated = true;
  /* The kernel also cuts the descriptors short (MSG_CTRUNC) when our
   * table is full: that is our descriptor limit, not a peer's mistake,
   * and must be said as such. A full table refuses one more. */
  if (mh.msg_flags & MSG_CTRUNC) {
    int probe = fcntl(sock, F_DUPFD_CLOEXEC, 0);
    if (probe >= 0) {
      (void)close(probe);
    } else if (errno == EMFILE) {
      for (i = 0; i < n; i++)
        (void)close(fds[i]);
      *truncated = false;
      return -EMFILE;
    }
  }
  *nfds = n;
  return (int)got;
}

int shmbus__peer_identity(int sock, struct shmbus__peer_id *id) {
  struct ucred cred;
  socklen_t len = sizeof(cred);

  if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return -errno;
  id->uid = (uint32_t)cred.uid;
  id->gid = (uint32_t)cred.gid;
  id->pid = (int32_t)cred.pid;
  return 0;
}

int shmbus__peer_uid(int sock, uint32_t *uid) {
  struct shmbus__peer_id id = {0};
  int rv;

  if ((rv = shmbus__peer_identity(sock, &id)) < 0)
    return rv;
  *uid = id.uid;
  return 0;
}

bool shmbus__peer_trusted(const struct shmbus__peer_id *id) {
  return id->uid == shmbus__self_uid() || id->uid == 0;
}

uint32_t shmbus__self_uid(void) {
  return (uint32_t)geteuid();
}

int shmbus__pipe(int fds[2]) {
  return pipe2(fds, O_CLOEXEC) == 0 ? 0 : -errno;
}
