#define _GNU_SOURCE
#include "daemonutil.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "session.h"
#include "procutil.h"

#ifndef SHMBUSD_PATH
#error "SHMBUSD_PATH must name the shmbusd binary"
#endif

/* Drops du_status's connection (the daemon it talked to is going). */
static void du_status_close(struct du_daemon *d) {
  if (d->status != NULL) {
    shmbus__session_close(d->status);
    free(d->status);
    d->status = NULL;
  }
}

static void du_spawn(struct du_daemon *d) {
  d->pid = pu_start_daemon(SHMBUSD_PATH, d->dir, d->extra, false);
  cr_assert_gt(d->pid, 0, "shmbusd did not come up");
}

void du_start(struct du_daemon *d) {
  d->status = NULL;
  snprintf(d->dir, sizeof(d->dir), "/tmp/shmbus-test-XXXXXX");
  cr_assert_not_null(mkdtemp(d->dir));
  du_spawn(d);
}

void du_start_fault(struct du_daemon *d, const char *fault) {
  cr_assert_eq(setenv("SHMBUSD_FAULT", fault, 1), 0);
  du_start(d);
  cr_assert_eq(unsetenv("SHMBUSD_FAULT"), 0);
}

void du_restart(struct du_daemon *d) {
  du_status_close(d);
  du_spawn(d);
}

int du_wait(pid_t pid) {
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  return status;
}

void du_kill(struct du_daemon *d) {
  du_status_close(d);
  if (d->pid > 0) {
    kill(d->pid, SIGKILL);
    du_wait(d->pid);
    d->pid = 0;
  }
}

void du_stop(struct du_daemon *d) {
  char cmd[128];

  du_status_close(d);
  if (d->pid > 0) {
    int status;
    kill(d->pid, SIGTERM);
    status = du_wait(d->pid);
    d->pid = 0;
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "shmbusd exit status %d", status);
  }
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
  (void)!system(cmd);
}

struct du_daemon du_suite;

void du_suite_start(void) {
  memset(&du_suite, 0, sizeof(du_suite));
  du_start(&du_suite);
}

void du_suite_stop(void) {
  du_stop(&du_suite);
}

void du_opts(const struct du_daemon *d, struct shmbus_bus_opts *o) {
  shmbus_bus_opts_init(o);
  o->dir = d->dir;
  o->autostart = 0;
}

shmbus_bus *du_bus(const struct du_daemon *d) {
  struct shmbus_bus_opts o;
  shmbus_bus *bus = NULL;
  int rv;
  du_opts(d, &o);
  rv = shmbus_bus_open(&bus, &o);
  cr_assert_eq(rv, 0, "bus_open: %s", shmbus_strerror(rv));
  return bus;
}

void du_read(int fd, void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, (char *)buf + got, n - got);
    if (r < 0 && errno == EINTR)
      continue;
    cr_assert_gt(r, 0, "short read from a child");
    got += (size_t)r;
  }
}

void du_write(int fd, const void *buf, size_t n) {
  cr_assert_eq(write(fd, buf, n), (ssize_t)n);
}

/* A status connection holds no records, so no event is expected; any that
 * comes is dropped. */
static void du_drop_event(void *ctx, struct shmbus__msg *ev) {
  (void)ctx;
  shmbus__msg_close_fds(ev);
}

void du_status(struct du_daemon *d, uint32_t *clients, uint32_t *topics) {
  struct shmbus__msg req;
  struct shmbus__msg rep;
  int rv;

  if (d->status == NULL) {
    d->status = calloc(1, sizeof(*d->status));
    cr_assert_not_null(d->status);
    rv = shmbus__session_init(d->status, d->dir, "du_status", 0, NULL, 5000, du_drop_event, NULL);
    cr_assert_eq(rv, 0, "conn_init: %s", shmbus_strerror(rv));
    rv = shmbus__session_connect(d->status);
    cr_assert_eq(rv, 0, "status connect: %s", shmbus_strerror(rv));
  }
  shmbus__msg_init(&req, SHMBUS__MSG_STATUS, 0);
  rv = shmbus__session_request(d->status, &req, &rep);
  cr_assert_eq(rv, 0, "status: %s", shmbus_strerror(rv));
  shmbus__msg_close_fds(&rep);
  cr_assert_eq(rep.type, SHMBUS__MSG_STATUS_REPLY);
  if (clients != NULL)
    *clients = rep.clients - 1; /* not counting this connection */
  if (topics != NULL)
    *topics = rep.topics;
}

void du_wait_clients(struct du_daemon *d, uint32_t clients) {
  struct timespec t0;
  struct timespec t1;
  uint32_t n;

  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (;;) {
    du_status(d, &n, NULL);
    if (n == clients)
      return;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert_lt(t1.tv_sec - t0.tv_sec, 10, "the daemon still serves %u clients, not %u", n,
                 clients);
  }
}

void du_private_daemon(char *dir, size_t dircap, char *path, size_t pathcap) {
  char buf[1 << 16];
  int in, out;
  ssize_t n;

  cr_assert_lt((size_t)snprintf(dir, dircap, "/tmp/shmbus-bin-XXXXXX"), dircap);
  cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
  /* mkdtemp makes it 0700: other uids must be able to enter it. */
  cr_assert_eq(chmod(dir, 0755), 0, "chmod %s: %s", dir, strerror(errno));
  cr_assert_lt((size_t)snprintf(path, pathcap, "%s/shmbusd", dir), pathcap);
  in = open(SHMBUSD_PATH, O_RDONLY | O_CLOEXEC);
  cr_assert_geq(in, 0, "open %s: %s", SHMBUSD_PATH, strerror(errno));
  out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0755);
  cr_assert_geq(out, 0, "create %s: %s", path, strerror(errno));
  while ((n = read(in, buf, sizeof(buf))) != 0) {
    if (n < 0 && errno == EINTR)
      continue;
    cr_assert_gt(n, 0, "read %s: %s", SHMBUSD_PATH, strerror(errno));
    cr_assert_eq(write(out, buf, (size_t)n), n, "write %s: %s", path, strerror(errno));
  }
  /* The umask may have taken bits off the mode open gave. */
  cr_assert_eq(fchmod(out, 0755), 0);
  cr_assert_eq(close(out), 0, "close %s: %s", path, strerror(errno));
  close(in);
}

static int du_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  (void)remove(path);
  return 0; /* carry on: remove what can be removed */
}

void du_rmtree(const char *dir) {
  if (dir != NULL && dir[0] != '\0')
    (void)nftw(dir, du_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}
