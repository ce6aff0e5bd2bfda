/* benchproc: see benchproc.h. Linux only (PR_SET_PDEATHSIG). */
#define _GNU_SOURCE
#include "benchproc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchutil.h"

static const char *prog_name = "bench";
static pid_t parent_pid;
static pid_t daemon_pid = -1;
static char bus_dir[64];
static char daemon_log[128];

void bp_init(const char *prog) {
  prog_name = prog;
  parent_pid = getpid();
}

bool bp_is_parent(void) {
  return getpid() == parent_pid;
}

void bp_die(const char *what, int rv) {
  fprintf(stderr, "%s[%d]: %s: %s (%s)\n", prog_name, (int)getpid(), what, shmbus_strerror(rv),
          shmbus_err_name(rv));
  if (!bp_is_parent())
    _exit(1);
  if (daemon_pid > 0) {
    int status;
    bp_daemon_stop(&status);
    fprintf(stderr, "%s: daemon log kept in %s\n", prog_name, daemon_log);
  }
  exit(1);
}

void bp_die_errno(const char *what) {
  bp_die(what, -errno);
}

pid_t bp_fork(void) {
  pid_t pid;
  fflush(NULL);
  pid = fork();
  if (pid < 0)
    bp_die_errno("fork");
  if (pid == 0) {
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent_pid)
      _exit(1);
  }
  return pid;
}

void *bp_map_shared(size_t len) {
  void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED)
    bp_die_errno("mmap");
  return p;
}

void bp_unmap_shared(void *p, size_t len) {
  (void)munmap(p, len);
}

pid_t bp_child(int (*fn)(char **job, unsigned n), char **job, unsigned n, int argc, char **argv) {
  pid_t pid = bp_fork();

  (void)argc;
  (void)argv;
  if (pid == 0)
    _exit(fn(job, n));
  return pid;
}

bool bp_parent_alive(void) {
  pid_t pp = getppid();
  return pp > 1 && kill(pp, 0) == 0;
}

void bp_reap(pid_t pid, const char *who) {
  int status;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR)
      bp_die_errno("waitpid");
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "%s: %s (pid %d) failed: %s %d\n", prog_name, who, (int)pid,
            WIFEXITED(status) ? "exit status" : "signal",
            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    bp_die("child process", -EPROTO);
  }
}

int bp_wait_for(pid_t pid, unsigned timeout_ms) {
  uint64_t end = bu_now_ns() + (uint64_t)timeout_ms * 1000000u;
  int status;
  for (;;) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid)
      return status;
    if (r < 0 && errno != EINTR)
      bp_die_errno("waitpid");
    if (bu_now_ns() > end) {
      (void)kill(pid, SIGKILL);
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
      return -1;
    }
    bu_sleep_ms(1);
  }
}

void bp_daemon_start(const char *path) {
  int p[2];
  struct pollfd pfd;
  char c;
  int rv;

  snprintf(bus_dir, sizeof(bus_dir), "/tmp/shmbus-bench-XXXXXX");
  if (mkdtemp(bus_dir) == NULL)
    bp_die_errno("mkdtemp");
  snprintf(daemon_log, sizeof(daemon_log), "%s/shmbusd.log", bus_dir);
  if (pipe2(p, O_CLOEXEC) != 0)
    bp_die_errno("pipe2");
  fflush(NULL);
  daemon_pid = fork();
  if (daemon_pid < 0)
    bp_die_errno("fork");
  if (daemon_pid == 0) {
    int log = open(daemon_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (log < 0 || null < 0)
      _exit(127);
    (void)dup2(null, 0);
    (void)dup2(null, 1);
    (void)dup2(log, 2);
    /* The ready descriptor must be 3 and survive exec. */
    if (p[1] == 3)
      (void)fcntl(3, F_SETFD, 0);
    else if (dup2(p[1], 3) != 3)
      _exit(127);
    execl(path, path, "--foreground", "--dir", bus_dir, "--ready-fd", "3", (char *)NULL);
    fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
    _exit(127);
  }
  close(p[1]);
  pfd.fd = p[0];
  pfd.events = POLLIN;
  do
    rv = poll(&pfd, 1, 10000);
  while (rv < 0 && errno == EINTR);
  if (rv <= 0 || read(p[0], &c, 1) != 1) {
    fprintf(stderr, "%s: %s did not report ready (see %s)\n", prog_name, path, daemon_log);
    close(p[0]);
    bp_die("daemon start", rv == 0 ? -ETIMEDOUT : -EPIPE);
  }
  close(p[0]);
}

pid_t bp_daemon_pid(void) {
  return daemon_pid;
}

const char *bp_bus_dir(void) {
  return bus_dir;
}

void bp_daemon_stop(int *status) {
  uint64_t end;
  pid_t pid = daemon_pid;
  if (pid <= 0)
    return;
  daemon_pid = -1;
  (void)kill(pid, SIGTERM);
  end = bu_now_ns() + 5000000000u;
  for (;;) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR))
      return;
    if (bu_now_ns() > end) {
      (void)kill(pid, SIGKILL);
      (void)waitpid(pid, status, 0);
      return;
    }
    bu_sleep_ms(5);
  }
}

void bp_dir_remove(void) {
  DIR *d = opendir(bus_dir);
  struct dirent *e;
  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
      (void)unlinkat(dirfd(d), e->d_name, 0);
  closedir(d);
  (void)rmdir(bus_dir);
}

shmbus_bus *bp_bus_open(const char *name) {
  struct shmbus_bus_opts bo;
  shmbus_bus *bus;
  int rv;
  shmbus_bus_opts_init(&bo);
  bo.dir = bus_dir;
  bo.name = name;
  bo.autostart = 0;
  if ((rv = shmbus_bus_open(&bus, &bo)) < 0)
    bp_die("shmbus_bus_open", rv);
  return bus;
}

void bp_await_ready(int fd, const char *who) {
  struct pollfd p = {fd, POLLIN, 0};
  char c;
  int rv;
  do
    rv = poll(&p, 1, 30000);
  while (rv < 0 && errno == EINTR);
  if (rv <= 0 || read(fd, &c, 1) != 1) {
    fprintf(stderr, "%s: %s did not get ready\n", prog_name, who);
    bp_die("await_ready", rv == 0 ? -ETIMEDOUT : -EPIPE);
  }
}

void bp_signal_ready(int fd) {
  if (write(fd, "r", 1) != 1)
    bp_die_errno("write ready");
  close(fd);
}

/* ---- gnuplot (--plot) ------------------------------------------------------ */

bool bp_gnuplot_find(const char **need) {
  const char *path = getenv("PATH");
  char buf[4096];
  while (path != NULL && *path != '\0') {
    size_t len = strcspn(path, ":");
    snprintf(buf, sizeof(buf), "%.*s/%s", (int)len, path, "gnuplot");
    if (access(buf, X_OK) == 0)
      return true;
    path += len;
    if (*path == ':')
      path++;
  }
  *need = "gnuplot in $PATH (Debian: apt-get install gnuplot-nox)";
  return false;
}

FILE *bp_gnuplot_open(void) {
  return popen("gnuplot", "w");
}

int bp_gnuplot_close(FILE *g) {
  int st = pclose(g);
  if (st == -1)
    return -errno;
  return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}
