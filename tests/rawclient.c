/* Raw protocol clients for tests against a real shmbusd. See rawclient.h. */
#define _GNU_SOURCE
#include "rawclient.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "platform/platform.h"
#include "shmbus/error.h"

#ifndef SHMBUSD_PATH
#error "SHMBUSD_PATH must name the daemon binary"
#endif

/* Assertions usable in forked children too: Criterion must only hear from
 * its own worker process (with --full-stats even passing assertions talk
 * to the runner), so a failing check in a child prints and exits with 99,
 * and in the test process it fails the test. Passing checks say nothing. */
bool dt_in_child = false;

const char *dt_daemon_path = SHMBUSD_PATH;

__attribute__((format(printf, 3, 4), noreturn)) void dt_fail(const char *file, int line,
                                                             const char *fmt, ...) {
  char msg[1024];
  va_list ap;

  va_start(ap, fmt);
  (void)vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (dt_in_child) {
    fprintf(stderr, "%s:%d: (child %d) %s\n", file, line, (int)getpid(), msg);
    _exit(99);
  }
  cr_assert_fail("%s:%d: %s", file, line, msg);
  abort(); /* not reached: cr_assert_fail ends the test */
}

/* ---- daemon processes ------------------------------------------------------- */

int dt_scale(void) {
  const char *w = getenv("SHMBUSD_WRAPPER");
  return w != NULL && w[0] != '\0' ? 20 : 1;
}

int dt_timeout_ms(void) {
  return 5000 * dt_scale();
}

uint64_t dt_now_ms(void) {
  return shmbus__clock_mono_ns() / 1000000u;
}

void dt_init(struct dt_daemon *d) {
  memset(d, 0, sizeof(*d));
  snprintf(d->tmp, sizeof(d->tmp), "/tmp/shmbusd-test-XXXXXX");
  DT_ASSERT((mkdtemp(d->tmp)) != NULL, "mkdtemp: %s", strerror(errno));
  snprintf(d->dir, sizeof(d->dir), "%s/bus", d->tmp);
  snprintf(d->sock, sizeof(d->sock), "%s/shmbusd.sock", d->dir);
  snprintf(d->log, sizeof(d->log), "%s/daemon.log", d->tmp);
}

/* Starts a daemon on d's directory with `extra` arguments. Returns its pid
 * and, in *ready_rd, the read end of its ready pipe. */
pid_t dt_spawn(const struct dt_daemon *d, const char *const *extra, int *ready_rd) {
  int p[2];
  pid_t pid;

  DT_ASSERT((pipe2(p, O_CLOEXEC)) == (0), "%s", "pipe2(p, O_CLOEXEC) == 0");
  pid = fork();
  DT_ASSERT((pid) >= (0), "fork: %s", strerror(errno));
  if (pid == 0) {
    char *argv[64];
    char fdbuf[16];
    char wrap[512];
    int argc = 0;
    int logfd;
    int rfd;
    const char *w = getenv("SHMBUSD_WRAPPER");

    /* The daemon must not outlive a failed test. */
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    logfd = open(d->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (logfd >= 0)
      (void)dup2(logfd, 2);
    /* The write end becomes a plain (inheritable) descriptor. */
    rfd = dup(p[1]);
    if (rfd < 0)
      _exit(120);
    snprintf(fdbuf, sizeof(fdbuf), "%d", rfd);
    if (w != NULL && w[0] != '\0') {
      char *save = NULL;
      char *tok;
      snprintf(wrap, sizeof(wrap), "%s", w);
      for (tok = strtok_r(wrap, " ", &save); tok != NULL && argc < 32;
           tok = strtok_r(NULL, " ", &save))
        argv[argc++] = tok;
    }
    argv[argc++] = (char *)dt_daemon_path;
    argv[argc++] = (char *)"--foreground";
    argv[argc++] = (char *)"--verbose";
    argv[argc++] = (char *)"--dir";
    argv[argc++] = (char *)d->dir;
    argv[argc++] = (char *)"--ready-fd";
    argv[argc++] = fdbuf;
    while (extra != NULL && *extra != NULL && argc < 62)
      argv[argc++] = (char *)*extra++;
    argv[argc] = NULL;
    execvp(argv[0], argv);
    _exit(127);
  }
  close(p[1]);
  *ready_rd = p[0];
  return pid;
}

/* Waits for the ready byte. Returns true if it came, false on EOF (the
 * daemon exited without getting ready). */
bool dt_wait_ready(int fd) {
  struct pollfd pfd = {fd, POLLIN, 0};
  char b;
  ssize_t n;
  int rv;

  do
    rv = poll(&pfd, 1, dt_timeout_ms() * 2);
  while (rv < 0 && errno == EINTR);
  DT_ASSERT((rv) == (1), "the daemon did not get ready in time");
  do
    n = read(fd, &b, 1);
  while (n < 0 && errno == EINTR);
  close(fd);
  return n == 1;
}

void dt_dump_log(const struct dt_daemon *d) {
  char buf[4096];
  ssize_t n;
  int fd = open(d->log, O_RDONLY | O_CLOEXEC);

  if (fd < 0)
    return;
  fprintf(stderr, "---- %s ----\n", d->log);
  while ((n = read(fd, buf, sizeof(buf))) > 0)
    fwrite(buf, 1, (size_t)n, stderr);
  close(fd);
}

void dt_start_with(struct dt_daemon *d, const char *const *extra) {
  int rd;

  d->pid = dt_spawn(d, extra, &rd);
  if (!dt_wait_ready(rd)) {
    dt_dump_log(d);
    DT_ASSERT(false, "the daemon exited before it was ready");
  }
}

void dt_start(struct dt_daemon *d) {
  dt_init(d);
  dt_start_with(d, NULL);
}

int dt_wait_exit(pid_t pid) {
  int status;
  pid_t r;

  do
    r = waitpid(pid, &status, 0);
  while (r < 0 && errno == EINTR);
  DT_ASSERT((r) == (pid), "waitpid: %s", strerror(errno));
  return status;
}

/* Stops the daemon with SIGTERM and checks it exits 0. */
void dt_stop(struct dt_daemon *d) {
  int status;

  DT_ASSERT((kill(d->pid, SIGTERM)) == (0), "%s", "kill(d->pid, SIGTERM) == 0");
  status = dt_wait_exit(d->pid);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    dt_dump_log(d);
  DT_ASSERT(WIFEXITED(status), "the daemon was killed by signal %d", WTERMSIG(status));
  DT_ASSERT((WEXITSTATUS(status)) == (0), "the daemon exited with status %d", WEXITSTATUS(status));
  d->pid = 0;
}

static int dt_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

void dt_cleanup(struct dt_daemon *d) {
  (void)nftw(d->tmp, dt_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- raw clients -------------------------------------------------------- */

uint32_t dt_next_id = 1;

int dt_connect(const struct dt_daemon *d) {
  int fd = -1;
  int rv = shmbus__unix_connect(d->sock, &fd);

  DT_ASSERT((rv) == (0), "connect %s: %s", d->sock, strerror(-rv));
  return fd;
}

/* Receives one message, waiting at most the test timeout. Returns 0,
 * -ETIMEDOUT, or what proto_recv said (-EPIPE at EOF). */
int dt_recv(int fd, struct shmbus__msg *m) {
  uint64_t deadline = dt_now_ms() + (uint64_t)dt_timeout_ms();

  for (;;) {
    struct pollfd pfd = {fd, POLLIN, 0};
    uint64_t now;
    int rv = shmbus__proto_recv(fd, m);
    if (rv != -EAGAIN)
      return rv;
    now = dt_now_ms();
    if (now >= deadline)
      return -ETIMEDOUT;
    (void)poll(&pfd, 1, (int)(deadline - now));
  }
}

/* Receives the next message, which must be of `type`. */
void dt_expect(int fd, uint32_t type, struct shmbus__msg *m) {
  int rv = dt_recv(fd, m);

  DT_ASSERT((rv) == (0), "recv: %s", shmbus_strerror(rv));
  if (m->type == SHMBUS__MSG_ERROR && type != SHMBUS__MSG_ERROR)
    DT_ASSERT(false, "expected type %u, got error %s: %s", type, shmbus_err_name(m->code), m->text);
  DT_ASSERT((m->type) == (type), "expected message type %u, got %u", type, m->type);
}

/* Receives the reply to request `id`, dropping peer events that come
 * before it (a client with records gets them whenever peers come and go). */
void dt_reply(int fd, uint32_t id, struct shmbus__msg *r) {
  for (;;) {
    int rv = dt_recv(fd, r);
    DT_ASSERT((rv) == (0), "recv: %s", shmbus_strerror(rv));
    if (r->id == id)
      return;
    DT_ASSERT(r->type == SHMBUS__MSG_PEER_JOIN || r->type == SHMBUS__MSG_PEER_LEAVE,
              "expected the reply to request %u, got type %u id %u", id, r->type, r->id);
    shmbus__msg_close_fds(r);
  }
}

void dt_send(int fd, const struct shmbus__msg *m) {
  int rv = shmbus__proto_send(fd, m);
  DT_ASSERT((rv) == (0), "send: %s", shmbus_strerror(rv));
}

/* Expects an error reply with `code`, then the daemon hanging up. */
void dt_expect_error_and_eof(int fd, int code) {
  struct shmbus__msg m;
  int rv;

  dt_expect(fd, SHMBUS__MSG_ERROR, &m);
  DT_ASSERT((m.code) == (code), "expected %s, got %s (%s)", shmbus_err_name(code),
            shmbus_err_name(m.code), m.text);
  rv = dt_recv(fd, &m);
  DT_ASSERT((rv) == (-EPIPE), "expected the daemon to hang up, got %s", shmbus_strerror(rv));
}

struct shmbus__msg dt_hello(int fd) {
  struct shmbus__msg m;
  struct shmbus__msg r;

  shmbus__msg_init(&m, SHMBUS__MSG_HELLO, dt_next_id++);
  strcpy(m.name, "daemon_test");
  dt_send(fd, &m);
  dt_expect(fd, SHMBUS__MSG_WELCOME, &r);
  DT_ASSERT((r.id) == (m.id), "%s", "r.id == m.id");
  return r;
}

int dt_client(const struct dt_daemon *d) {
  int fd = dt_connect(d);
  (void)dt_hello(fd);
  return fd;
}

struct shmbus__msg dt_status(int fd) {
  struct shmbus__msg m;
  struct shmbus__msg r;

  shmbus__msg_init(&m, SHMBUS__MSG_STATUS, dt_next_id++);
  dt_send(fd, &m);
  dt_reply(fd, m.id, &r);
  DT_ASSERT((r.type) == (SHMBUS__MSG_STATUS_REPLY), "%s", "r.type == SHMBUS__MSG_STATUS_REPLY");
  return r;
}

/* Sends `open`; returns 0 with *rec filled (fds kept), or the error code. */
int dt_open_ex(int fd, const char *topic, uint32_t role, const struct dt_open_args *a,
               struct dt_rec *rec, char *text) {
  struct shmbus__msg m;
  struct shmbus__msg r;
  int efd;

  memset(rec, 0, sizeof(*rec));
  rec->data_fd = rec->ctrl_fd = rec->efd = -1;
  shmbus__region_init(&rec->rg);
  DT_ASSERT((shmbus__event_open(&efd)) == (0), "%s", "shmbus__event_open(&efd) == 0");
  shmbus__msg_init(&m, SHMBUS__MSG_OPEN, dt_next_id++);
  snprintf(m.topic, sizeof(m.topic), "%s", topic);
  m.role = role;
  if (a != NULL) {
    if (a->params != NULL) {
      m.has |= SHMBUS__HAS_PARAMS;
      m.params = *a->params;
    }
    m.reliable = a->reliable;
    m.history = a->history;
    m.retain = a->retain;
    m.deadline_ms = a->deadline_ms;
  }
  m.fds[0] = efd;
  m.nfds = 1;
  dt_send(fd, &m);
  dt_reply(fd, m.id, &r);
  if (r.type == SHMBUS__MSG_ERROR) {
    close(efd);
    if (text != NULL)
      strcpy(text, r.text);
    DT_ASSERT((r.code) < (0), "%s", "r.code < 0");
    return r.code;
  }
  DT_ASSERT((r.type) == (SHMBUS__MSG_OPENED), "%s", "r.type == SHMBUS__MSG_OPENED");
  DT_ASSERT((r.nfds) == (2u), "%s", "r.nfds == 2u");
  DT_ASSERT(r.has & SHMBUS__HAS_PARAMS, "%s", "r.has & SHMBUS__HAS_PARAMS");
  rec->topic_id = r.topic_id;
  rec->role = r.role;
  rec->index = r.index;
  rec->peers = r.peers;
  rec->params = r.params;
  rec->member = r.member;
  rec->deadline_cap = r.deadline_ms;
  rec->data_fd = r.fds[0];
  rec->ctrl_fd = r.fds[1];
  rec->efd = efd;
  return 0;
}

int dt_open(int fd, const char *topic, uint32_t role, const struct shmbus__params *p,
            struct dt_rec *rec) {
  struct dt_open_args a = {p, false, 0, false, 0};
  return dt_open_ex(fd, topic, role, &a, rec, NULL);
}

/* Maps a record's region and builds its ring handle, as the library does:
 * from the parameters in the daemon's reply, never the headers. */
void dt_map(struct dt_rec *rec) {
  int rv = shmbus__region_attach(&rec->rg, &rec->params, rec->data_fd, rec->ctrl_fd, rec->member,
                                 rec->role);
  DT_ASSERT((rv) == (0), "region_attach: %s", shmbus_strerror(rv));
  if (rec->role == SHMBUS__ROLE_PUB)
    rv = shmbus__ring_pub_adopt(&rec->rg.ring, &rec->pub, rec->index);
  else
    rv = shmbus__ring_sub_adopt(&rec->rg.ring, &rec->sub, rec->index);
  DT_ASSERT((rv) == (0), "adopt record %u: %s", rec->index, shmbus_strerror(rv));
}

void dt_rec_close(struct dt_rec *rec) {
  shmbus__region_close(&rec->rg);
  shmbus__fd_close(rec->data_fd);
  shmbus__fd_close(rec->ctrl_fd);
  shmbus__fd_close(rec->efd);
  rec->data_fd = rec->ctrl_fd = rec->efd = -1;
}

int dt_close_req(int fd, const struct dt_rec *rec) {
  struct shmbus__msg m;
  struct shmbus__msg r;

  shmbus__msg_init(&m, SHMBUS__MSG_CLOSE, dt_next_id++);
  m.topic_id = rec->topic_id;
  m.role = rec->role;
  m.index = rec->index;
  dt_send(fd, &m);
  dt_reply(fd, m.id, &r);
  if (r.type == SHMBUS__MSG_ERROR)
    return r.code;
  DT_ASSERT((r.type) == (SHMBUS__MSG_OK), "%s", "r.type == SHMBUS__MSG_OK");
  return 0;
}

void dt_publish_str(struct dt_rec *p, const char *s) {
  int rv = shmbus__ring_publish(&p->pub, s, strlen(s), 0);
  DT_ASSERT((rv) >= (0), "publish: %s", shmbus_strerror(rv));
}

/* Receives the next message on a subscriber, sleeping on its eventfd (the
 * daemon or nobody wakes it: the tests' publishers never do). */
int dt_sub_recv_wait(struct dt_rec *s, char *buf, size_t cap) {
  uint64_t deadline = dt_now_ms() + (uint64_t)dt_timeout_ms();
  struct shmbus_msg_info info;

  for (;;) {
    int rv = shmbus__ring_recv(&s->sub, buf, cap - 1, &info);
    if (rv >= 0) {
      buf[rv] = '\0';
      return rv;
    }
    DT_ASSERT((rv) == (-EAGAIN), "recv: %s", shmbus_strerror(rv));
    if (dt_now_ms() >= deadline)
      return -ETIMEDOUT;
    if (shmbus__ring_sub_arm(&s->sub)) {
      struct pollfd pfd = {s->efd, POLLIN, 0};
      (void)poll(&pfd, 1, (int)(deadline - dt_now_ms()));
      shmbus__event_drain(s->efd);
    }
  }
}

/* Waits until the daemon's log contains `needle` at least `count` times;
 * status round trips on `fd` let the daemon run between looks. With fd < 0
 * (no daemon running) it looks once. */
void dt_wait_log(const struct dt_daemon *d, int fd, const char *needle, int count) {
  uint64_t deadline = dt_now_ms() + (uint64_t)dt_timeout_ms();
  /* Woken by the daemon's writes to its log (inotify), not by polling it
   * with requests: a tight loop of status requests would run into the
   * daemon's request-rate limit. The watch is set before each read, so a
   * write between the read and the wait is not missed. */
  int ifd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);

  DT_ASSERT(ifd >= 0, "inotify_init1: %s", strerror(errno));
  DT_ASSERT(inotify_add_watch(ifd, d->log, IN_MODIFY) >= 0, "inotify_add_watch %s: %s", d->log,
            strerror(errno));
  for (;;) {
    static char buf[1 << 20];
    ssize_t n;
    int found = 0;
    int lfd = open(d->log, O_RDONLY | O_CLOEXEC);
    if (lfd >= 0) {
      n = read(lfd, buf, sizeof(buf) - 1);
      close(lfd);
      if (n > 0) {
        char *p = buf;
        buf[n] = '\0';
        while ((p = strstr(p, needle)) != NULL) {
          found++;
          p += strlen(needle);
        }
      }
    }
    if (found >= count) {
      close(ifd);
      return;
    }
    DT_ASSERT(fd >= 0 && dt_now_ms() < deadline, "the daemon never logged \"%s\"", needle);
    {
      struct pollfd pfd = {ifd, POLLIN, 0};
      char ev[4096];
      uint64_t now = dt_now_ms();
      (void)poll(&pfd, 1, now < deadline ? (int)(deadline - now) : 0);
      while (read(ifd, ev, sizeof(ev)) > 0) {
      }
    }
  }
}

/* The daemon's open descriptors. */
int dt_fd_count(pid_t pid) {
  char path[64];
  int n = 0;
  DIR *dir;
  struct dirent *e;

  snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
  dir = opendir(path);
  DT_ASSERT((dir) != NULL, "%s", "dir != NULL");
  while ((e = readdir(dir)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(dir);
  return n;
}

/* Waits until the daemon serves exactly `n` clients. */
void dt_wait_clients(int fd, uint32_t n) {
  uint64_t deadline = dt_now_ms() + (uint64_t)dt_timeout_ms();

  while (dt_status(fd).clients != n)
    DT_ASSERT((dt_now_ms()) < (deadline), "the daemon still serves %u clients",
              dt_status(fd).clients);
}

void dt_write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  DT_ASSERT((f) != NULL, "%s", "f != NULL");
  fputs(text, f);
  DT_ASSERT((fclose(f)) == (0), "%s", "fclose(f) == 0");
}

void dt_start_system(struct dt_daemon *d, const char *rules, const char *const *extra) {
  const char *args[16] = {"--system", "--config", d->cfg};
  int n = 3;

  dt_init(d);
  DT_ASSERT(chmod(d->tmp, 0755) == 0, "chmod %s: %s", d->tmp, strerror(errno));
  snprintf(d->cfg, sizeof(d->cfg), "%s/rules.conf", d->tmp);
  dt_write_file(d->cfg, rules);
  while (extra != NULL && *extra != NULL && n < 15)
    args[n++] = *extra++;
  args[n] = NULL;
  dt_start_with(d, args);
}

void dt_become_nobody(void) {
  if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
    _exit(70);
}

void dt_pack_open(msgpack_sbuffer *sb, const char *topic) {
  msgpack_packer pk;

  msgpack_sbuffer_init(sb);
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 5);
  msgpack_pack_str_with_body(&pk, "v", 1);
  msgpack_pack_uint32(&pk, 1);
  msgpack_pack_str_with_body(&pk, "t", 1);
  msgpack_pack_str_with_body(&pk, "open", 4);
  msgpack_pack_str_with_body(&pk, "id", 2);
  msgpack_pack_uint32(&pk, 42);
  msgpack_pack_str_with_body(&pk, "topic", 5);
  msgpack_pack_str_with_body(&pk, topic, strlen(topic));
  msgpack_pack_str_with_body(&pk, "role", 4);
  msgpack_pack_str_with_body(&pk, "sub", 3);
}
