/* host_test: the daemon's host layer on Windows (daemon/platform/windows/)
 * against daemon/platform/host.h, with real processes: the bus directory
 * and its lock held against another process, the pipe listener accepting
 * clients (each on an instance of its own) and telling who they are, the
 * ready signal through shmbus__daemon_spawn, liveness of processes, users
 * and the log. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include "host.h"
#include "platform/platform.h"
#include "wintest.h"

/* A bound for a broken test, never a synchronisation. */
#define LONG_MS 60000

static void temp_path(char *out, size_t cap) {
  char dir[MAX_PATH], name[96];
  DWORD n = GetTempPathA(sizeof(dir), dir);
  if (n == 0 || n >= sizeof(dir))
    snprintf(dir, sizeof(dir), "C:\\");
  wintest_unique_name(name, sizeof(name), "");
  snprintf(out, cap, "%s%s", dir, name);
}

/* ---- the children ----------------------------------------------------------- */

/* child lock PATH: 0 if it took the lock, 1 if another process holds it. */
static int child_lock(const char *path) {
  struct host_lock l;
  int rv = host_lock_take(path, false, &l);
  host_lock_release(&l);
  return rv == 0 ? 0 : rv == -EBUSY ? 1 : 2;
}

/* child client ENDPOINT: sends "hi", waits for "ho". */
static int child_client(const char *ep) {
  shmbus__conn_handle c;
  shmbus__os_handle h[1];
  char buf[16];
  unsigned nh;
  bool cut;
  int rv;

  if (shmbus__unix_connect(ep, &c) != 0)
    return 10;
  if (shmbus__sock_send(c, "hi", 2, NULL, 0) != 2)
    return 11;
  while ((rv = shmbus__sock_recv(c, buf, sizeof(buf), h, 1, &nh, &cut)) == -EAGAIN)
    if (shmbus__wait_readable(&c, 1, LONG_MS) <= 0)
      return 12;
  if (rv != 2 || memcmp(buf, "ho", 2) != 0)
    return 13;
  shmbus__fd_close(c);
  return 0;
}

/* child ready --ready-fd N: what shmbus__daemon_spawn starts; detaches as
 * the daemon does, then says ready. */
static int child_ready(int argc, char **argv) {
  struct host_ready r;
  char err[200];

  if (argc != 3 || strcmp(argv[1], "--ready-fd") != 0)
    return 20;
  if (host_ready_from_arg(argv[2], &r, err, sizeof(err)) != 0)
    return 21;
  if (host_daemonize(1, &r) != 0)
    return 22;
  host_ready_signal(&r);
  return 0;
}

static int child_main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[0], "lock") == 0)
    return child_lock(argv[1]);
  if (argc == 2 && strcmp(argv[0], "client") == 0)
    return child_client(argv[1]);
  if (argc >= 1 && strcmp(argv[0], "ready") == 0)
    return child_ready(argc, argv);
  return 2;
}

/* ---- the tests -------------------------------------------------------------- */

static int test_dir_and_lock(void) {
  char dir[MAX_PATH], lock[MAX_PATH + 16], file[MAX_PATH + 16], args[MAX_PATH + 32], err[300],
      buf[32];
  struct host_lock l;
  HANDLE h;
  DWORD n;
  int rv;

  temp_path(dir, sizeof(dir));
  WT_CHECK((rv = host_dir_prepare(dir, false, err, sizeof(err))) == 0, "prepare: %d %s", rv, err);
  WT_CHECK((rv = host_dir_prepare(dir, false, err, sizeof(err))) == 0, "again: %d %s", rv, err);
  snprintf(file, sizeof(file), "%s\\file", dir);
  h = CreateFileA(file, GENERIC_WRITE, 0, NULL, CREATE_NEW, 0, NULL);
  WT_CHECK(h != INVALID_HANDLE_VALUE, "a file");
  CloseHandle(h);
  WT_CHECK((rv = host_dir_prepare(file, false, err, sizeof(err))) == -ENOTDIR, "a file: %d", rv);

  snprintf(lock, sizeof(lock), "%s\\shmbusd.lock", dir);
  WT_CHECK(host_lock_take(lock, false, &l) == 0, "lock");
  snprintf(args, sizeof(args), "lock %s", lock);
  WT_CHECK(wintest_join(wintest_spawn(args, NULL)) == 1, "another process took the lock");
  WT_CHECK(host_lock_write_pid(&l) == 0, "write pid");
  h = CreateFileA(lock, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL, OPEN_EXISTING, 0,
                  NULL);
  WT_CHECK(h != INVALID_HANDLE_VALUE, "open the lock file");
  memset(buf, 0, sizeof(buf));
  WT_CHECK(ReadFile(h, buf, sizeof(buf) - 1, &n, NULL), "the pid cannot be read");
  CloseHandle(h);
  WT_CHECK(strtoul(buf, NULL, 10) == GetCurrentProcessId(), "pid %s", buf);
  host_lock_release(&l);
  WT_CHECK(wintest_join(wintest_spawn(args, NULL)) == 0, "the lock was not released");
  DeleteFileA(lock);
  DeleteFileA(file);
  WT_CHECK(RemoveDirectoryA(dir), "remove");
  return WINTEST_PASS;
}

static int test_listen_accept(void) {
  char ep[MAX_PATH + 16], err[300], args[MAX_PATH + 32], buf[16];
  host_sock_t lst, conn;
  struct host_peer peer;
  shmbus__os_handle h[1];
  shmbus__conn_handle c;
  HANDLE child;
  DWORD pid;
  unsigned nh, round;
  bool replaced, cut;
  int rv;

  temp_path(ep, sizeof(ep));
  strcat(ep, "\\shmbusd.sock");
  WT_CHECK((rv = host_listen(ep, false, &lst, &replaced, err, sizeof(err))) == 0, "listen: %d %s",
           rv, err);
  WT_CHECK(host_accept(lst, &conn) == -EAGAIN, "nobody there");
  snprintf(args, sizeof(args), "client %s", ep);
  /* Two clients one after the other: each gets an instance of its own. */
  for (round = 0; round < 2; round++) {
    WT_CHECK((child = wintest_spawn(args, &pid)) != NULL, "spawn");
    WT_CHECK(WaitForSingleObject(lst, LONG_MS) == WAIT_OBJECT_0, "the listener never woke");
    WT_CHECK((rv = host_accept(lst, &conn)) == 0, "accept: %d", rv);
    WT_CHECK(host_peer_get(conn, &peer) == 0, "peer");
    WT_CHECK(host_peer_pid(&peer) == (int32_t)pid, "pid %d, child %lu", host_peer_pid(&peer),
             (unsigned long)pid);
    WT_CHECK(host_peer_uid(&peer) == host_self_uid(), "uid %u", host_peer_uid(&peer));
    while ((rv = shmbus__sock_recv(conn, buf, sizeof(buf), h, 1, &nh, &cut)) == -EAGAIN)
      WT_CHECK(shmbus__wait_readable(&conn, 1, LONG_MS) == 1, "no message");
    WT_CHECK(rv == 2 && memcmp(buf, "hi", 2) == 0, "hi: %d", rv);
    WT_CHECK(shmbus__sock_send(conn, "ho", 2, NULL, 0) == 2, "ho");
    WT_CHECK(wintest_join(child) == 0, "client failed");
    host_sock_close(conn);
    WT_CHECK(host_accept(lst, &conn) == -EAGAIN, "a second client from nowhere");
  }
  WT_CHECK(host_unlisten(ep) == 0, "unlisten");
  WT_CHECK((rv = shmbus__unix_connect(ep, &c)) == -ENOENT, "connected after unlisten: %d", rv);
  WT_CHECK(host_accept(lst, &conn) == -EAGAIN, "accepted after unlisten");
  WT_CHECK((rv = shmbus__unix_connect(ep, &c)) == -ENOENT, "an instance came back: %d", rv);
  host_sock_close(lst);
  /* Listening again works once the first listener is closed. */
  WT_CHECK(host_listen(ep, false, &lst, &replaced, err, sizeof(err)) == 0, "listen again");
  host_sock_close(lst);
  host_sock_set_sndbuf(lst, 1 << 20);
  return WINTEST_PASS;
}

static int test_pid_gone(void) {
  HANDLE child;
  DWORD pid;

  WT_CHECK(!host_pid_gone((uint32_t)host_self_pid()), "we are gone");
  WT_CHECK(host_pid_gone(0), "pid 0 lives");
  /* The handle held keeps the id from being reused while we look. */
  WT_CHECK((child = wintest_spawn("nothing", &pid)) != NULL, "spawn");
  WT_CHECK(WaitForSingleObject(child, LONG_MS) == WAIT_OBJECT_0, "child did not end");
  WT_CHECK(host_pid_gone(pid), "an ended process lives");
  CloseHandle(child);
  return WINTEST_PASS;
}

static int test_ready_spawn(void) {
  char exe[MAX_PATH], err[200], arg[32];
  const char *argv[] = {exe, "child", "ready", NULL};
  struct host_ready r;
  HANDLE mutex;
  int rv;

  WT_CHECK(GetModuleFileNameA(NULL, exe, sizeof(exe)) > 0, "own path");
  WT_CHECK((rv = shmbus__daemon_spawn(exe, argv, LONG_MS)) == 0, "ready: %d", rv);
  WT_CHECK(host_ready_from_arg("3x", &r, err, sizeof(err)) == -EINVAL, "3x");
  WT_CHECK(host_ready_from_arg("", &r, err, sizeof(err)) == -EINVAL, "empty");
  WT_CHECK((mutex = CreateMutexW(NULL, FALSE, NULL)) != NULL, "mutex");
  snprintf(arg, sizeof(arg), "%llu", (unsigned long long)(uintptr_t)mutex);
  WT_CHECK(host_ready_from_arg(arg, &r, err, sizeof(err)) == -EINVAL, "a mutex is no ready event");
  CloseHandle(mutex);
  host_ready_none(&r);
  host_ready_signal(&r);
  host_ready_close(&r);
  return WINTEST_PASS;
}

static int test_users_and_log(void) {
  char name[256], t[64];
  DWORD n = sizeof(name);
  uint32_t uid = 0, gid = 0;
  int rv;

  WT_CHECK(GetUserNameA(name, &n), "user name");
  WT_CHECK((rv = host_user_id(name, &uid)) == 0, "user %s: %d", name, rv);
  WT_CHECK(uid == host_self_uid(), "uid %u, self %u", uid, host_self_uid());
  WT_CHECK(host_user_id("shmbus-no-such-user", &uid) == -ENOENT, "unknown user");
  WT_CHECK(host_group_id("shmbus-no-such-group", &gid) == -ENOENT, "unknown group");
  if ((rv = host_group_id("Administrators", &gid)) == 0)
    wintest_note("group Administrators: %u", gid);
  else
    wintest_note("group Administrators: %d", rv);
  WT_CHECK(!host_uid_is_superuser(uid), "we are the superuser");
  WT_CHECK(host_uid_is_superuser(18), "SYSTEM is not");
  host_log_time(t, sizeof(t));
  WT_CHECK(strlen(t) == 23 && t[4] == '-' && t[10] == ' ' && t[19] == '.', "time %s", t);
  host_syslog_open();
  host_syslog_write(HOST_LOG_NOTICE, "host_test: a line in the event log");
  host_syslog_close();
  WT_CHECK(host_nofile_raise() == 0, "nofile");
  return WINTEST_PASS;
}

static const struct wintest tests[] = {
    {"dir_and_lock", test_dir_and_lock},   {"listen_accept", test_listen_accept},
    {"pid_gone", test_pid_gone},           {"ready_spawn", test_ready_spawn},
    {"users_and_log", test_users_and_log},
};

int main(int argc, char **argv) {
  return wintest_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]), child_main);
}
