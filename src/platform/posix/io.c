/* Events, waiting, the daemon's socket and starting the daemon, on Linux.
 * See platform.h for the contract. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../platform.h"

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
  char path[64];
  char target[64];
  ssize_t n;

  snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
  n = readlink(path, target, sizeof(target) - 1);
  if (n < 0)
    return false;
  target[n] = '\0';
  return strcmp(target, "anon_inode:[eventfd]") == 0;
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

int shmbus__spawn_daemon(const char *path, char *const argv[], int ready_fd) {
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
  /* The daemon forks into the background and its first process exits at
   * once; reap it so no zombie is left in our process. */
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
done:
  posix_spawn_file_actions_destroy(&fa);
  return -rv;
}

int shmbus__peer_uid(int sock, uint32_t *uid) {
  struct ucred cred;
  socklen_t len = sizeof(cred);
  if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
    return -errno;
  *uid = (uint32_t)cred.uid;
  return 0;
}

uint32_t shmbus__self_uid(void) {
  return (uint32_t)geteuid();
}

int shmbus__pipe(int fds[2]) {
  return pipe2(fds, O_CLOEXEC) == 0 ? 0 : -errno;
}
