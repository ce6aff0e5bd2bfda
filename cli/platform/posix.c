/* cli_os on Linux (POSIX): see cli_os.h. These are the calls the verbs
 * made themselves before the Windows port; behaviour is unchanged. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "cli.h"

uint64_t cli_now_ns(void) {
  struct timespec ts;

  (void)clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The write end of the pipe the signal handler writes to. */
static int cli_sig_wfd = -1;

volatile sig_atomic_t cli_stopping = 0;

static void cli_on_signal(int sig) {
  int saved = errno;
  char c = (char)sig;

  cli_stopping = 1;
  (void)!write(cli_sig_wfd, &c, 1);
  errno = saved;
}

int cli_signal_fd(const char *verb) {
  struct sigaction sa;
  int p[2];

  if (pipe(p) != 0 || fcntl(p[1], F_SETFL, O_NONBLOCK) != 0 ||
      fcntl(p[0], F_SETFD, FD_CLOEXEC) != 0 || fcntl(p[1], F_SETFD, FD_CLOEXEC) != 0) {
    cli_err(verb, "pipe: %s", strerror(errno));
    return -1;
  }
  cli_sig_wfd = p[1];
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = cli_on_signal;
  sigemptyset(&sa.sa_mask);
  (void)sigaction(SIGINT, &sa, NULL);
  (void)sigaction(SIGTERM, &sa, NULL);
  return p[0];
}

uint32_t cli_os_uid(void) {
  return geteuid();
}

uint32_t cli_os_gid(void) {
  return getegid();
}

int cli_wait(int stop_fd, shmbus_bus *bus, int timeout_ms) {
  struct pollfd p[2];
  nfds_t n = 0;
  int bus_at = -1;
  int rv, ready = 0;

  if (stop_fd >= 0)
    p[n++] = (struct pollfd){stop_fd, POLLIN, 0};
  if (bus != NULL && shmbus_bus_fd(bus) >= 0) {
    bus_at = (int)n;
    p[n++] = (struct pollfd){shmbus_bus_fd(bus), POLLIN, 0};
  }
  if ((rv = poll(p, n, timeout_ms)) < 0)
    return -errno;
  if (stop_fd >= 0 && p[0].revents != 0)
    ready |= CLI_WAIT_STOP;
  if (bus_at >= 0 && p[bus_at].revents != 0)
    ready |= CLI_WAIT_BUS;
  return ready;
}

void cli_sleep_until_ns(uint64_t due_ns) {
  struct timespec ts;

  ts.tv_sec = (time_t)(due_ns / 1000000000u);
  ts.tv_nsec = (long)(due_ns % 1000000000u);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
    if (cli_stopping)
      return;
}

ssize_t cli_getline(char **line, size_t *cap, FILE *f) {
  return getline(line, cap, f);
}

int cli_open_read(const char *path) {
  return strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
}

int cli_uv_poll_event(uv_loop_t *loop, uv_poll_t *handle, shmbus_os_fd_t ev) {
  return uv_poll_init(loop, handle, ev);
}

void cli_event_reset(shmbus_os_fd_t ev) {
  uint64_t v;

  if (read(ev, &v, sizeof(v)) < 0) {
    /* Nothing to reset (another wake-up took it): fine. */
  }
}
