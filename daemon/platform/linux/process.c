/* process: this process and others on Linux (host.h): ids, liveness,
 * the descriptor limit, signals, detaching, the ready channel and
 * systemd's notification socket. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "host.h"

int32_t host_self_pid(void) {
  return (int32_t)getpid();
}

uint32_t host_self_uid(void) {
  return (uint32_t)geteuid();
}

bool host_uid_is_superuser(uint32_t uid) {
  return uid == 0;
}

bool host_pid_gone(uint32_t pid) {
  if (pid == 0 || pid > (uint32_t)INT_MAX)
    return true;
  /* Signal 0 only asks whether the process exists: EPERM means it does. */
  return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

void host_sleep_ms(uint64_t ms) {
  struct timespec ts;

  ts.tv_sec = (time_t)(ms / 1000u);
  ts.tv_nsec = (long)(ms % 1000u) * 1000000L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

void host_crash(void) {
  (void)raise(SIGKILL);
  _exit(137); /* not reached: SIGKILL cannot be caught */
}

void host_stop(void) {
  /* Returns once continued (SIGSTOP cannot be caught). */
  (void)raise(SIGSTOP);
}

uint64_t host_nofile_limit(void) {
  struct rlimit rl;

  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
    return 0;
  return (uint64_t)rl.rlim_cur;
}

int host_nofile_raise(void) {
  struct rlimit rl;

  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return -errno;
  if (rl.rlim_cur >= rl.rlim_max)
    return 0;
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
    return -errno;
  return 0;
}

host_sock_t host_spare_take(void) {
  return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

void host_spare_release(host_sock_t spare) {
  if (spare >= 0)
    (void)close(spare);
}

/* The signals the loop handles (stop, stop, reload). */
static void process_held(sigset_t *set) {
  sigemptyset(set);
  sigaddset(set, SIGTERM);
  sigaddset(set, SIGINT);
  sigaddset(set, SIGHUP);
}

void host_signals_hold(void) {
  sigset_t held;

  /* Sends use MSG_NOSIGNAL; this covers every other write (syslog's
   * socket might raise it). */
  signal(SIGPIPE, SIG_IGN);
  /* A memory file beyond RLIMIT_FSIZE must fail its ftruncate with EFBIG
   * (an error for that one topic), not kill the daemon with SIGXFSZ. */
  signal(SIGXFSZ, SIG_IGN);
  process_held(&held);
  (void)sigprocmask(SIG_BLOCK, &held, NULL);
}

void host_signals_release(void) {
  sigset_t held;

  process_held(&held);
  (void)sigprocmask(SIG_UNBLOCK, &held, NULL);
}

int host_ready_from_arg(const char *arg, struct host_ready *ready, char *err, size_t errlen) {
  char *end;
  long v;

  ready->fd = -1;
  errno = 0;
  v = strtol(arg, &end, 10);
  if (errno != 0 || *end != '\0' || end == arg || v < 0 || v > 65535) {
    snprintf(err, errlen, "--ready-fd needs a descriptor number, not \"%s\"", arg);
    return -EINVAL;
  }
  /* Close-on-exec: nothing the daemon might start inherits it. */
  if (fcntl((int)v, F_SETFD, FD_CLOEXEC) != 0) {
    snprintf(err, errlen, "--ready-fd %ld: %s", v, strerror(errno));
    return -EINVAL;
  }
  ready->fd = (int)v;
  return 0;
}

void host_ready_none(struct host_ready *ready) {
  ready->fd = -1;
}

void host_ready_signal(struct host_ready *ready) {
  ssize_t n;

  if (ready->fd < 0)
    return;
  do
    n = write(ready->fd, "R", 1);
  while (n < 0 && errno == EINTR);
  host_ready_close(ready);
}

void host_ready_close(struct host_ready *ready) {
  if (ready->fd >= 0)
    (void)close(ready->fd);
  ready->fd = -1;
}

int host_daemonize(int fail_status, struct host_ready *ready) {
  int p[2];
  pid_t pid;
  int fd;

  ready->fd = -1;
  if (pipe2(p, O_CLOEXEC) != 0)
    return -errno;
  if ((pid = fork()) < 0) {
    int e = errno;
    close(p[0]);
    close(p[1]);
    return -e;
  }
  if (pid > 0) {
    /* The starter's side: wait for the first child (it exits once it
     * forked again), then for the daemon's byte or EOF. */
    char b;
    ssize_t n;
    close(p[1]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
      ;
    do
      n = read(p[0], &b, 1);
    while (n < 0 && errno == EINTR);
    _exit(n == 1 ? 0 : fail_status);
  }
  close(p[0]);
  if (setsid() < 0)
    _exit(fail_status);
  if ((pid = fork()) < 0)
    _exit(fail_status);
  if (pid > 0)
    _exit(0);
  if (chdir("/") != 0)
    _exit(fail_status);
  if ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
    _exit(fail_status);
  if (dup2(fd, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
    _exit(fail_status);
  if (fd > 2)
    close(fd);
  ready->fd = p[1];
  return 0;
}

int host_notify_manager(const char *msg, char *err, size_t errlen) {
  const char *e = getenv("NOTIFY_SOCKET");
  struct sockaddr_un sa;
  socklen_t len;
  size_t n;
  ssize_t sent;
  int fd;
  int rv;

  if (e == NULL || e[0] == '\0')
    return 0;
  n = strlen(e);
  if ((e[0] != '/' && e[0] != '@') || n < 2 || n >= sizeof(sa.sun_path)) {
    snprintf(err, errlen, "NOTIFY_SOCKET=%s is not a unix socket path or @name; not notifying", e);
    return -EINVAL;
  }
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, e, n);
  if (e[0] == '@')
    sa.sun_path[0] = '\0'; /* abstract: no terminating NUL, the length says */
  len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (e[0] == '/' ? 1 : 0));
  if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0) {
    rv = -errno;
    snprintf(err, errlen, "NOTIFY_SOCKET: socket: %s", strerror(-rv));
    return rv;
  }
  do
    sent = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
  while (sent < 0 && errno == EINTR);
  rv = sent < 0 ? -errno : 0;
  if (rv < 0)
    snprintf(err, errlen, "cannot notify %s: %s", e, strerror(-rv));
  close(fd);
  return rv;
}
