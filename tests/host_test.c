/* The daemon's platform layer (daemon/platform/host.h) against the real
 * kernel: the bus directory's checks, the lock, listening and accepting,
 * the peer identity, process liveness, users and groups, the ready
 * channel. Each test works in its own mkdtemp directory and removes it. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host.h"

static char host_dir[64];

static void host_setup(void) {
  snprintf(host_dir, sizeof(host_dir), "/tmp/shmbus-hosttest-XXXXXX");
  cr_assert_not_null(mkdtemp(host_dir), "mkdtemp: %s", strerror(errno));
}

static void host_teardown(void) {
  char cmd[128];

  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", host_dir);
  cr_assert_eq(system(cmd), 0);
}

TestSuite(host, .init = host_setup, .fini = host_teardown);

static void host_path(char *out, size_t cap, const char *name) {
  snprintf(out, cap, "%s/%s", host_dir, name);
}

Test(host, dir_prepare_creates_with_its_mode_whatever_the_umask) {
  char dir[128], err[256];
  struct stat st;
  mode_t old = umask(0);

  host_path(dir, sizeof(dir), "bus");
  cr_assert_eq(host_dir_prepare(dir, false, err, sizeof(err)), 0, "%s", err);
  umask(old);
  cr_assert_eq(lstat(dir, &st), 0);
  cr_assert_eq(st.st_mode & 0777, 0700);
  /* An existing one that passes the checks is fine. */
  cr_assert_eq(host_dir_prepare(dir, false, err, sizeof(err)), 0, "%s", err);
}

Test(host, dir_prepare_refuses_links_files_and_open_modes) {
  char dir[128], link[128], file[128], err[256];
  int fd;

  host_path(dir, sizeof(dir), "open");
  cr_assert_eq(mkdir(dir, 0700), 0);
  cr_assert_eq(chmod(dir, 0770), 0);
  cr_assert_eq(host_dir_prepare(dir, false, err, sizeof(err)), -EPERM);
  cr_assert_not_null(strstr(err, "writable by its group or by others"), "%s", err);
  cr_assert_eq(chmod(dir, 0700), 0);
  host_path(link, sizeof(link), "link");
  cr_assert_eq(symlink(dir, link), 0);
  cr_assert_eq(host_dir_prepare(link, false, err, sizeof(err)), -ENOTDIR);
  host_path(file, sizeof(file), "file");
  cr_assert_geq(fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600), 0);
  close(fd);
  cr_assert_eq(host_dir_prepare(file, false, err, sizeof(err)), -ENOTDIR);
  cr_assert_not_null(strstr(err, "is not a directory"), "%s", err);
}

/* The lock is per open file: a second take, from this process or from a
 * child, finds it held; once released, it can be taken again. */
Test(host, lock_is_exclusive_until_released) {
  struct host_lock a, b;
  char path[128];
  pid_t pid;
  int st;

  host_path(path, sizeof(path), "lock");
  host_lock_none(&a);
  host_lock_release(&a); /* harmless when not held */
  cr_assert_eq(host_lock_take(path, false, &a), 0);
  cr_assert_eq(host_lock_take(path, false, &b), -EBUSY);
  pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    struct host_lock c;
    _exit(host_lock_take(path, false, &c) == -EBUSY ? 0 : 1);
  }
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child could take a held lock");
  cr_assert_eq(host_lock_write_pid(&a), 0);
  host_lock_release(&a);
  cr_assert_eq(host_lock_take(path, false, &b), 0);
  host_lock_release(&b);
}

Test(host, lock_does_not_follow_a_link) {
  struct host_lock l;
  char path[128], target[128];

  host_path(target, sizeof(target), "elsewhere");
  host_path(path, sizeof(path), "lock");
  cr_assert_eq(symlink(target, path), 0);
  cr_assert_eq(host_lock_take(path, false, &l), -ELOOP);
  cr_assert_eq(access(target, F_OK), -1, "the link's target was created");
}

/* Listening replaces a stale socket, refuses another kind of file; what
 * it accepts carries the connecting process's identity. */
Test(host, listen_accept_and_peer_identity) {
  char path[128], file[128], err[256];
  struct sockaddr_un sa;
  struct host_peer peer;
  host_sock_t l, l2, c;
  bool replaced;
  struct stat st;
  int fd;

  host_path(path, sizeof(path), "sock");
  cr_assert_eq(host_listen(path, false, &l, &replaced, err, sizeof(err)), 0, "%s", err);
  cr_assert(!replaced);
  cr_assert_eq(lstat(path, &st), 0);
  cr_assert(S_ISSOCK(st.st_mode));
  cr_assert_eq(st.st_mode & 0777, 0600);
  cr_assert_eq(host_accept(l, &c), -EAGAIN);
  cr_assert_geq(fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0), 0);
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  cr_assert_lt(strlen(path), sizeof(sa.sun_path));
  memcpy(sa.sun_path, path, strlen(path) + 1);
  cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "%s", strerror(errno));
  cr_assert_eq(host_accept(l, &c), 0);
  cr_assert_eq(host_peer_get(c, &peer), 0);
  cr_assert_eq(host_peer_pid(&peer), (int32_t)getpid());
  cr_assert_eq(host_peer_uid(&peer), (uint32_t)geteuid());
  cr_assert_eq(host_peer_gid(&peer), (uint32_t)getegid());
  cr_assert_eq(host_sock_error(c), 0);
  cr_assert_eq(host_sock_drained(c), 1);
  cr_assert_eq(fcntl(c, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  cr_assert(host_fd_nonblocking(c));
  cr_assert(!host_fd_nonblocking(fd));
  cr_assert(!host_fd_nonblocking(-1));
  close(fd);
  host_sock_close(c);
  host_sock_close(l);
  /* The file is still there (a dead daemon's): replaced. */
  cr_assert_eq(host_listen(path, true, &l2, &replaced, err, sizeof(err)), 0, "%s", err);
  cr_assert(replaced);
  cr_assert_eq(lstat(path, &st), 0);
  cr_assert_eq(st.st_mode & 0777, 0666);
  host_sock_close(l2);
  cr_assert_eq(host_unlisten(path), 0);
  cr_assert_eq(host_unlisten(path), 0, "nothing there is fine");
  host_path(file, sizeof(file), "file");
  cr_assert_geq(fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600), 0);
  close(fd);
  cr_assert_eq(host_listen(file, false, &l, &replaced, err, sizeof(err)), -EEXIST);
  cr_assert_not_null(strstr(err, "is not a socket"), "%s", err);
}

Test(host, listen_refuses_a_path_too_long) {
  char path[HOST_PATH_MAX + 16], err[256];
  host_sock_t l;
  bool replaced;

  memset(path, 'a', sizeof(path) - 1);
  path[0] = '/';
  path[sizeof(path) - 1] = '\0';
  cr_assert_eq(host_listen(path, false, &l, &replaced, err, sizeof(err)), -ENAMETOOLONG);
}

/* A process that exited and was reaped is gone; this one, pid 1 (alive,
 * perhaps not ours to signal) and impossible ids are judged right. */
Test(host, pid_liveness) {
  pid_t pid = fork();
  int st;

  cr_assert_geq(pid, 0);
  if (pid == 0)
    _exit(0);
  cr_assert_eq(waitpid(pid, &st, 0), pid);
  cr_assert(host_pid_gone((uint32_t)pid));
  cr_assert(!host_pid_gone((uint32_t)getpid()));
  cr_assert(!host_pid_gone(1));
  cr_assert(host_pid_gone(0));
  cr_assert(host_pid_gone((uint32_t)INT_MAX + 1u));
  cr_assert(host_pid_gone(UINT32_MAX));
  cr_assert_eq(host_self_pid(), (int32_t)getpid());
  cr_assert_eq(host_self_uid(), (uint32_t)geteuid());
}

Test(host, users_and_groups) {
  uint32_t *groups = NULL;
  size_t n = 0, i;
  uint32_t id;
  bool primary = false;

  cr_assert_eq(host_user_id("root", &id), 0);
  cr_assert_eq(id, 0);
  cr_assert_eq(host_group_id("root", &id), 0);
  cr_assert_eq(id, 0);
  cr_assert_eq(host_user_id("no-such-user-shmbus-test", &id), -ENOENT);
  cr_assert_eq(host_group_id("no-such-group-shmbus-test", &id), -ENOENT);
  cr_assert_eq(host_user_id("", &id), -ENOENT);
  /* The number a user is compared by is its uid, named "uid N". */
  {
    struct host_principal p;
    char t[HOST_UID_TEXT_MAX];
    cr_assert_eq(host_principal_user("root", &p), 0);
    id = 7;
    cr_assert_eq(host_principal_number(&p, &id), 0);
    cr_assert_eq(id, 0);
    cr_assert_eq(host_principal_uid(4321, &p), 0);
    cr_assert_eq(host_principal_number(&p, &id), 0);
    cr_assert_eq(id, 4321);
    host_uid_text(1000, t, sizeof(t));
    cr_assert_str_eq(t, "uid 1000");
    host_uid_text(UINT32_MAX - 1, t, sizeof(t));
    cr_assert_str_eq(t, "uid 4294967294");
  }
  cr_assert_eq(host_user_groups(0, 0, &groups, &n), 0);
  for (i = 0; i < n; i++)
    primary |= groups[i] == 0;
  cr_assert(primary, "the primary group is among the %zu groups", n);
  free(groups);
  cr_assert_eq(host_user_groups(4000000000u, 0, &groups, &n), -ENOENT);
  cr_assert_null(groups);
}

/* The ready channel: one byte, then closed; closing without it is EOF. */
Test(host, ready_channel) {
  struct host_ready r;
  char arg[16], err[256], b;
  int p[2];

  cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
  cr_assert_eq(fcntl(p[1], F_SETFD, 0), 0);
  snprintf(arg, sizeof(arg), "%d", p[1]);
  cr_assert_eq(host_ready_from_arg(arg, &r, err, sizeof(err)), 0, "%s", err);
  cr_assert_eq(fcntl(p[1], F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  host_ready_signal(&r);
  host_ready_signal(&r); /* already closed: nothing */
  cr_assert_eq(read(p[0], &b, 1), 1);
  cr_assert_eq(b, 'R');
  cr_assert_eq(read(p[0], &b, 1), 0, "the channel is closed after the byte");
  close(p[0]);
  cr_assert_eq(host_ready_from_arg("x3", &r, err, sizeof(err)), -EINVAL);
  cr_assert_not_null(strstr(err, "descriptor number"), "%s", err);
  cr_assert_eq(host_ready_from_arg("999", &r, err, sizeof(err)), -EINVAL);
  host_ready_none(&r);
  host_ready_signal(&r);
  host_ready_close(&r);
}

Test(host, descriptor_limit_and_spare) {
  host_sock_t s;

  cr_assert_eq(host_nofile_raise(), 0);
  cr_assert_gt(host_nofile_limit(), 0);
  s = host_spare_take();
  cr_assert_neq(s, HOST_SOCK_INVALID);
  host_spare_release(s);
  host_spare_release(HOST_SOCK_INVALID);
}

Test(host, manager_notification_without_and_with_a_bad_socket) {
  char err[256] = "";

  cr_assert_eq(unsetenv("NOTIFY_SOCKET"), 0);
  cr_assert_eq(host_notify_manager("READY=1", err, sizeof(err)), 0);
  cr_assert_eq(setenv("NOTIFY_SOCKET", "relative/path", 1), 0);
  cr_assert_eq(host_notify_manager("READY=1", err, sizeof(err)), -EINVAL);
  cr_assert_not_null(strstr(err, "not a unix socket path"), "%s", err);
  cr_assert_eq(setenv("NOTIFY_SOCKET", "/nonexistent/shmbus-notify", 1), 0);
  cr_assert_eq(host_notify_manager("READY=1", err, sizeof(err)), -ENOENT);
  cr_assert_eq(unsetenv("NOTIFY_SOCKET"), 0);
}
