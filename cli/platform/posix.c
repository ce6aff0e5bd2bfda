/* cli_os on Linux (POSIX): see cli_os.h. These are the calls the verbs
 * made themselves before the Windows port; behaviour is unchanged. */
#define _GNU_SOURCE /* open_memstream */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
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

/* A uv_poll handle on the eventfd, first so that the handle the close
 * callback gets is the watch. */
struct cli_event_watch {
  uv_poll_t poll;
  int fd;
  cli_event_cb cb;
  void *arg;
};

static void cli_event_on_poll(uv_poll_t *p, int status, int events) {
  struct cli_event_watch *w = (struct cli_event_watch *)p;
  uint64_t v;

  (void)status;
  (void)events;
  /* Reset the eventfd (non-blocking); nothing to reset when another
   * wake-up took it: fine. */
  if (read(w->fd, &v, sizeof(v)) < 0) {
  }
  w->cb(w->arg);
}

static void cli_event_free(uv_handle_t *h) {
  free(h);
}

int cli_event_watch_start(uv_loop_t *loop, shmbus_os_fd_t ev, cli_event_cb cb, void *arg,
                          cli_event_watch **out) {
  struct cli_event_watch *w = malloc(sizeof(*w));
  int rv;

  if (w == NULL)
    return -ENOMEM;
  if ((rv = uv_poll_init(loop, &w->poll, ev)) < 0) {
    free(w);
    return rv;
  }
  w->fd = ev;
  w->cb = cb;
  w->arg = arg;
  if ((rv = uv_poll_start(&w->poll, UV_READABLE, cli_event_on_poll)) < 0) {
    uv_close((uv_handle_t *)&w->poll, cli_event_free);
    return rv;
  }
  *out = w;
  return 0;
}

void cli_event_watch_close(cli_event_watch *w) {
  uv_close((uv_handle_t *)&w->poll, cli_event_free);
}

int cli_wait_events(int stop_fd, shmbus_bus *bus, const shmbus_os_fd_t *ev, size_t n,
                    int timeout_ms) {
  struct pollfd stack[16], *p = stack;
  nfds_t np = 0;
  int rv, ready = 0;

  if (n + 2 > sizeof(stack) / sizeof(stack[0]) && (p = malloc((n + 2) * sizeof(*p))) == NULL)
    return -ENOMEM;
  for (size_t i = 0; i < n; i++)
    p[np++] = (struct pollfd){ev[i], POLLIN, 0};
  p[np++] = (struct pollfd){stop_fd, POLLIN, 0};
  p[np] = (struct pollfd){shmbus_bus_fd(bus), POLLIN, 0};
  if (p[np].fd >= 0)
    np++;
  rv = poll(p, np, timeout_ms);
  if (rv < 0 && errno != EINTR) {
    rv = -errno;
    goto out;
  }
  for (size_t i = 0; i < n; i++) {
    if (p[i].revents != 0) {
      uint64_t v;
      (void)!read(p[i].fd, &v, sizeof(v));
      ready |= CLI_WAIT_EVENT;
    }
  }
  if (p[n].revents != 0)
    ready |= CLI_WAIT_STOP;
  if (np > n + 1 && p[n + 1].revents != 0)
    ready |= CLI_WAIT_BUS;
  rv = ready;
out:
  if (p != stack)
    free(p);
  return rv;
}

uint64_t cli_realtime_ns(void) {
  struct timespec rt;

  (void)clock_gettime(CLOCK_REALTIME, &rt);
  return (uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec;
}

int cli_thread_start(pthread_t *t, void *(*fn)(void *), void *arg) {
  sigset_t block, old;
  int rv;

  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  rv = pthread_create(t, NULL, fn, arg);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return rv;
}

int cli_open_write(const char *path) {
  return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

int cli_fsync(int fd) {
  return fsync(fd);
}

int cli_map_file(const char *verb, const char *path, const void **map, size_t *len) {
  struct stat sb;
  void *m;
  int fd;

  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) != 0) {
    cli_err(verb, "cannot open %s: %s", path, strerror(errno));
    goto fail;
  }
  if (!S_ISREG(sb.st_mode)) {
    cli_err(verb, "%s is not a regular file", path);
    goto fail;
  }
  if ((uint64_t)sb.st_size > SIZE_MAX || sb.st_size == 0) {
    cli_err(verb, "%s is %s", path, sb.st_size == 0 ? "empty" : "too large to map");
    goto fail;
  }
  if ((m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0)) == MAP_FAILED) {
    cli_err(verb, "cannot map %s: %s", path, strerror(errno));
    goto fail;
  }
  /* The mapping keeps the file. */
  close(fd);
  *map = m;
  *len = (size_t)sb.st_size;
  return 0;

fail:
  if (fd >= 0)
    close(fd);
  return -1;
}

void cli_unmap_file(const void *map, size_t len) {
  if (map != NULL)
    munmap((void *)map, len);
}

FILE *cli_memstream(char **buf, size_t *len) {
  return open_memstream(buf, len);
}

int cli_memstream_close(FILE *f, char **buf, size_t *len) {
  (void)buf;
  (void)len;
  return fclose(f) == 0 ? 0 : -1;
}

bool cli_process_resources(uint32_t pid, uint64_t *rss, uint64_t *fds) {
  char path[64], line[256];
  struct dirent *de;
  FILE *f;
  DIR *d;
  bool found = false;

  snprintf(path, sizeof(path), "/proc/%u/status", pid);
  if ((f = fopen(path, "r")) == NULL)
    return false;
  while (fgets(line, sizeof(line), f) != NULL)
    if (sscanf(line, "VmRSS: %" SCNu64 " kB", rss) == 1) {
      *rss *= 1024;
      found = true;
    }
  fclose(f);
  snprintf(path, sizeof(path), "/proc/%u/fd", pid);
  if (!found || (d = opendir(path)) == NULL)
    return false;
  *fds = 0;
  while ((de = readdir(d)) != NULL)
    if (de->d_name[0] != '.')
      (*fds)++;
  closedir(d);
  return true;
}

int cli_write_file_atomic(const char *verb, const char *path, const void *data, size_t len) {
  const char *text = data;
  char tmp[4096];
  size_t off = 0;
  int fd;

  if (snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path) >= (int)sizeof(tmp)) {
    cli_err(verb, "%s: path too long", path);
    return -ENAMETOOLONG;
  }
  if ((fd = mkstemp(tmp)) < 0) {
    cli_err(verb, "cannot create a file beside %s: %s", path, strerror(errno));
    return -errno;
  }
  /* node_exporter runs as another user: the file is world-readable, like
   * the metrics it holds. */
  if (fchmod(fd, 0644) != 0)
    goto fail;
  while (off < len) {
    ssize_t n = write(fd, text + off, len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      goto fail;
    off += (size_t)n;
  }
  if (fsync(fd) != 0)
    goto fail;
  if (close(fd) != 0) {
    fd = -1;
    goto fail;
  }
  fd = -1;
  if (rename(tmp, path) != 0)
    goto fail;
  return 0;

fail:
  cli_err(verb, "cannot write %s: %s", path, strerror(errno));
  if (fd >= 0)
    close(fd);
  (void)unlink(tmp);
  return -EIO;
}

void cli_stdout_binary(void) {
}
