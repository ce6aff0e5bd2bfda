/* tools_os on Linux (see tools_os.h): the readers and controls are forked
 * (bp_fork: they die with the benchmark), stopped with SIGTERM and reaped
 * with wait4, whose rusage is their CPU time. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchproc.h"
#include "tools_os.h"

const char *tl_os_system(void) {
  return "Linux ";
}

int tl_os_control_main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  return -1; /* controls are forked */
}

int tl_os_cli_find(const char *path, char *out, size_t cap) {
  if (access(path, X_OK) != 0)
    return -errno;
  if ((size_t)snprintf(out, cap, "%s", path) >= cap)
    return -ENAMETOOLONG;
  return 0;
}

uint64_t tl_os_cpu_ns(void) {
  struct timespec ts;
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
    bp_die_errno("clock_gettime");
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static volatile sig_atomic_t tl_ctrl_stop;

static void tl_ctrl_on_term(int sig) {
  (void)sig;
  tl_ctrl_stop = 1;
}

/* A control's life, in the child: says it runs (a byte on `ready`), then
 * spins or streams until SIGTERM, and exits 0 as a reader does. */
static _Noreturn void tl_ctrl_run(bool stream, int ready) {
  struct sigaction sa;
  uint64_t *mem;

  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = tl_ctrl_on_term;
  if (sigaction(SIGTERM, &sa, NULL) != 0)
    _exit(126);
  if (tl_control_setup(stream, &mem) < 0)
    _exit(126);
  if (write(ready, "r", 1) != 1)
    _exit(126);
  close(ready);
  tl_control_loop(stream, mem, &tl_ctrl_stop);
  _exit(0);
}

struct tl_proc tl_os_ctrl_start(bool stream) {
  struct tl_proc p = {-1, NULL, NULL};
  int fds[2];
  char c;
  pid_t pid;
  ssize_t n;

  if (pipe(fds) != 0)
    bp_die_errno("pipe");
  if ((pid = bp_fork()) == 0) {
    close(fds[0]);
    tl_ctrl_run(stream, fds[1]);
  }
  close(fds[1]);
  do
    n = read(fds[0], &c, 1);
  while (n < 0 && errno == EINTR);
  if (n != 1)
    bp_die("start a control", -EIO);
  close(fds[0]);
  p.pid = pid;
  return p;
}

struct tl_proc tl_os_reader_start(const char *cli, char *const *args, const char *err_path) {
  struct tl_proc p = {-1, NULL, NULL};
  int errfd, nullfd;
  pid_t pid;

  if ((errfd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
    bp_die_errno("open the reader's log");
  if ((nullfd = open("/dev/null", O_WRONLY)) < 0)
    bp_die_errno("open /dev/null");
  if ((pid = bp_fork()) == 0) {
    dup2(nullfd, 1);
    dup2(errfd, 2);
    setenv("SHMBUS_DIR", bp_bus_dir(), 1);
    setenv("SHMBUS_NO_AUTOSTART", "1", 1);
    execv(cli, args);
    _exit(127);
  }
  close(errfd);
  close(nullfd);
  p.pid = pid;
  return p;
}

uint64_t tl_os_reader_stop(struct tl_proc *p) {
  struct rusage ru;
  int status;
  pid_t w;

  if (kill((pid_t)p->pid, SIGTERM) != 0)
    bp_die_errno("kill the reader");
  do
    w = wait4((pid_t)p->pid, &status, 0, &ru);
  while (w < 0 && errno == EINTR);
  if (w != (pid_t)p->pid)
    bp_die_errno("wait for the reader");
  p->pid = -1;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "shmbus-bench tools: a reader ended with status %d\n", status);
    bp_die("reader", -EIO);
  }
  return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000u +
         (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000u;
}
