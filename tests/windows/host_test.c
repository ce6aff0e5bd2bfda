/* host_test: the daemon's host layer on Windows (daemon/platform/windows/)
 * against daemon/platform/host.h, with real processes: the bus directory
 * and its lock held against another process, the pipe listener accepting
 * clients (each on an instance of its own) and telling who they are, the
 * ready signal through shmbus__daemon_spawn, liveness of processes, users
 * and the log, the config's rules naming users and groups by SID, matched
 * against a real client's token, and the numbers users are compared by
 * (one per SID, never the relative id alone). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>
#include <sddl.h>

#include "config.h"
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

/* The number of S-1-5-21-1-2-3-1000 (0x80000000 | FNV-1a of its binary
 * form, folded to 32 bits), and two SIDs whose numbers meet (found by
 * trying S-1-5-21-7-8-9-N from N = 0 on: both get 4219102122). */
#define SID_1000_NUMBER 2231581994u
#define COLLIDE_A "S-1-5-21-7-8-9-4786"
#define COLLIDE_B "S-1-5-21-7-8-9-10027"

/* The number of the user named `text` (a SID string): 0 with *n or the
 * error. */
static int number_of(const char *text, uint32_t *n) {
  struct host_principal p;
  int rv;

  if ((rv = host_principal_user(text, &p)) < 0)
    return rv;
  return host_principal_number(&p, n);
}

/* Users are compared by number everywhere in the daemon (`uid`): each SID
 * has its own, whatever its relative id. */
static int test_user_numbers(void) {
  char other[96], other2[96], want[128], t[HOST_UID_TEXT_MAX], *self_sid = NULL;
  struct host_peer self;
  struct host_principal none;
  uint32_t rid, own, n1, n1b, n2, n3, sys;
  int rv;

  WT_CHECK((rv = host_peer_self(&self)) == 0, "self: %d", rv);
  WT_CHECK(ConvertSidToStringSidA((PSID)self.sid, &self_sid), "SID to string");
  rid = *GetSidSubAuthority((PSID)self.sid, *GetSidSubAuthorityCount((PSID)self.sid) - 1);
  /* Our own SID: its relative id, what the library writes into the member
   * file a region starts with (shmbus__self_uid) and the owner's number. */
  WT_CHECK((rv = number_of(self_sid, &own)) == 0, "own: %d", rv);
  WT_CHECK(own == host_self_uid() && own == rid && host_peer_uid(&self) == own,
           "own %u, self %u, rid %u, peer %u", own, host_self_uid(), rid, host_peer_uid(&self));
  /* The same relative id in two other domains: two other users. */
  snprintf(other, sizeof(other), "S-1-5-21-1-2-3-%u", (unsigned)rid);
  snprintf(other2, sizeof(other2), "S-1-5-21-4-5-6-%u", (unsigned)rid);
  WT_CHECK((rv = number_of(other, &n1)) == 0, "%s: %d", other, rv);
  WT_CHECK((rv = number_of(other2, &n2)) == 0, "%s: %d", other2, rv);
  WT_CHECK(n1 != own && n2 != own && n1 != n2, "own %u, %s %u, %s %u", own, other, n1, other2, n2);
  WT_CHECK((n1 & 0x80000000u) != 0 && (n2 & 0x80000000u) != 0, "a number that may be an id");
  WT_CHECK(!host_uid_is_superuser(n1) && !host_uid_is_superuser(n2), "a domain user is SYSTEM");
  /* The same SID, again and written otherwise: the same number. */
  WT_CHECK(number_of(other, &n1b) == 0 && n1b == n1, "%s again: %u, was %u", other, n1b, n1);
  snprintf(want, sizeof(want), "s-1-5-21-1-2-3-%u", (unsigned)rid);
  WT_CHECK(number_of(want, &n1b) == 0 && n1b == n1, "%s: %u, was %u", want, n1b, n1);
  WT_CHECK(number_of(self_sid, &n3) == 0 && n3 == own, "own again: %u", n3);
  /* The number of a SID does not depend on who came first: it is a hash,
   * which a restarted daemon needs to adopt the member files. Known values
   * (FNV-1a of the binary SID), so that a change shows here. */
  WT_CHECK(number_of("S-1-5-21-1-2-3-1000", &n3) == 0 && n3 == SID_1000_NUMBER,
           "S-1-5-21-1-2-3-1000: %u, expected %u", n3, (unsigned)SID_1000_NUMBER);
  /* LocalSystem: the superuser. */
  WT_CHECK(number_of("S-1-5-18", &sys) == 0 && sys == 18 && host_uid_is_superuser(sys),
           "SYSTEM: %u", sys);
  /* Two SIDs whose hashes meet: the second is refused, never confused. */
  WT_CHECK(number_of(COLLIDE_A, &n3) == 0, "%s", COLLIDE_A);
  WT_CHECK((rv = number_of(COLLIDE_B, &n2)) == -EEXIST, "%s: %d (%u, %u)", COLLIDE_B, rv, n3, n2);
  WT_CHECK(number_of(COLLIDE_A, &n2) == 0 && n2 == n3, "%s again", COLLIDE_A);
  memset(&none, 0, sizeof(none));
  WT_CHECK(host_principal_number(&none, &n3) == -EINVAL, "no SID");
  /* How the log and the replies name them. */
  host_uid_text(own, t, sizeof(t));
  snprintf(want, sizeof(want), "user %s", self_sid);
  WT_CHECK(strcmp(t, want) == 0, "own: %s", t);
  host_uid_text(n1, t, sizeof(t));
  snprintf(want, sizeof(want), "user %s", other);
  WT_CHECK(strcmp(t, want) == 0, "other: %s", t);
  host_uid_text(18, t, sizeof(t));
  WT_CHECK(strcmp(t, "user S-1-5-18") == 0, "SYSTEM: %s", t);
  host_uid_text(12345, t, sizeof(t));
  WT_CHECK(strcmp(t, "uid 12345") == 0, "unknown: %s", t);
  host_uid_text(own, t, 8);
  WT_CHECK(strlen(t) == 7, "truncated: %s", t);
  LocalFree(self_sid);
  host_peer_release(&self);
  return WINTEST_PASS;
}

/* ---- rules by SID ------------------------------------------------------------ */

/* Whether this process's token lists `sid_text` among its groups at all,
 * and whether enabled and not deny-only (*usable). */
static bool token_has_group(const char *sid_text, bool *usable) {
  char buf[8192];
  TOKEN_GROUPS *tg = (TOKEN_GROUPS *)(void *)buf;
  PSID want = NULL;
  HANDLE tok;
  DWORD len, i;
  bool found = false;

  *usable = false;
  if (!ConvertStringSidToSidA(sid_text, &want))
    return false;
  if (OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok)) {
    if (GetTokenInformation(tok, TokenGroups, tg, sizeof(buf), &len))
      for (i = 0; i < tg->GroupCount; i++)
        if (EqualSid(tg->Groups[i].Sid, want)) {
          found = true;
          *usable = (tg->Groups[i].Attributes & SE_GROUP_ENABLED) != 0 &&
                    (tg->Groups[i].Attributes & SE_GROUP_USE_FOR_DENY_ONLY) == 0;
        }
    CloseHandle(tok);
  }
  LocalFree(want);
  return found;
}

/* Loads `text` as a config file; 0 with *cfg, or the error with `err`. */
static int load_rules(const char *text, struct config **cfg, char *err, size_t errlen) {
  char path[MAX_PATH];
  FILE *f;
  int rv;

  temp_path(path, sizeof(path));
  strcat(path, ".conf");
  if ((f = fopen(path, "w")) == NULL)
    return -EIO;
  fputs(text, f);
  fclose(f);
  rv = config_load(path, host_self_uid(), cfg, err, errlen);
  (void)DeleteFileA(path);
  return rv;
}

/* Whether `cred` may do `op` on `topic` by a rule (1), is refused by one
 * (0), or meets none (-1). */
static int decide(const struct config *cfg, const char *topic, unsigned op,
                  const struct config_cred *cred) {
  char why[300];
  return config_decide(cfg, topic, op, cred, why, sizeof(why));
}

static int test_rules_by_sid(void) {
  char ep[MAX_PATH], err[512], args[MAX_PATH + 16], rules[4096], user[256], domain[256];
  char *self_sid = NULL, *gsid;
  const char *in_group = NULL, *out_group = NULL;
  static const char *const maybe_in[] = {"S-1-1-0", "S-1-5-11", "S-1-5-32-545", "S-1-5-4"};
  static const char *const maybe_out[] = {"S-1-5-32-551", "S-1-5-32-549", "S-1-5-32-548"};
  struct host_peer peer, self;
  struct config *cfg = NULL;
  struct config_cred cred;
  host_sock_t lst, conn;
  SID_NAME_USE use;
  DWORD pid, ulen = sizeof(user), dlen = sizeof(domain), off, glen;
  HANDLE child;
  bool replaced, usable, admin_usable;
  unsigned i;
  int rv;

  /* A real client's identity, as the daemon takes it. */
  temp_path(ep, sizeof(ep));
  strcat(ep, "\\shmbusd.sock");
  WT_CHECK((rv = host_listen(ep, false, &lst, &replaced, err, sizeof(err))) == 0, "listen: %d", rv);
  snprintf(args, sizeof(args), "client %s", ep);
  WT_CHECK((child = wintest_spawn(args, &pid)) != NULL, "spawn");
  WT_CHECK(WaitForSingleObject(lst, LONG_MS) == WAIT_OBJECT_0, "the listener never woke");
  WT_CHECK((rv = host_accept(lst, &conn)) == 0, "accept: %d", rv);
  WT_CHECK((rv = host_peer_get(conn, &peer)) == 0, "peer: %d", rv);
  {
    shmbus__os_handle h[1];
    char buf[16];
    unsigned nh;
    bool cut;
    while ((rv = shmbus__sock_recv(conn, buf, sizeof(buf), h, 1, &nh, &cut)) == -EAGAIN)
      WT_CHECK(shmbus__wait_readable(&conn, 1, LONG_MS) == 1, "no message");
    WT_CHECK(shmbus__sock_send(conn, "ho", 2, NULL, 0) == 2, "ho");
  }
  WT_CHECK(wintest_join(child) == 0, "client failed");
  host_sock_close(conn);
  host_sock_close(lst);
  /* The identity holds the client's process: its end is seen through the
   * handle, and its id still names it (not reused) until released. */
  WT_CHECK(peer.process != NULL, "the client's process is not held");
  WT_CHECK(WaitForSingleObject(peer.process, 0) == WAIT_OBJECT_0, "the ended client lives");
  {
    HANDLE again = OpenProcess(SYNCHRONIZE, FALSE, pid);
    WT_CHECK(again != NULL, "the held client's id names nothing (%lu)",
             (unsigned long)GetLastError());
    WT_CHECK(WaitForSingleObject(again, 0) == WAIT_OBJECT_0, "its id names another process");
    CloseHandle(again);
  }
  WT_CHECK(host_pid_gone(pid), "an ended client lives");

  WT_CHECK((rv = host_peer_self(&self)) == 0, "self: %d", rv);
  WT_CHECK(self.sid_len == peer.sid_len && memcmp(self.sid, peer.sid, peer.sid_len) == 0,
           "the client is not our user");
  WT_CHECK(ConvertSidToStringSidA((PSID)peer.sid, &self_sid), "SID to string");
  WT_CHECK(LookupAccountSidA(NULL, (PSID)peer.sid, user, &ulen, domain, &dlen, &use),
           "account of %s", self_sid);
  wintest_note("user %s\\%s, %s, %u groups that count:", domain, user, self_sid,
               (unsigned)peer.ngroups);
  for (off = 0; off + 8 <= peer.groups_len; off += glen) {
    glen = GetLengthSid((PSID)(peer.groups + off));
    if (ConvertSidToStringSidA((PSID)(peer.groups + off), &gsid)) {
      wintest_note("  group %s", gsid);
      LocalFree(gsid);
    }
  }
  WT_CHECK(off == peer.groups_len && peer.ngroups > 0, "groups: %u bytes", peer.groups_len);
  (void)token_has_group("S-1-5-32-544", &admin_usable);
  wintest_note("Administrators (S-1-5-32-544) %s", admin_usable ? "counts" : "does not count");
  for (i = 0; i < sizeof(maybe_in) / sizeof(maybe_in[0]) && in_group == NULL; i++)
    if (token_has_group(maybe_in[i], &usable) && usable)
      in_group = maybe_in[i];
  for (i = 0; i < sizeof(maybe_out) / sizeof(maybe_out[0]) && out_group == NULL; i++)
    if (!token_has_group(maybe_out[i], &usable))
      out_group = maybe_out[i];
  WT_CHECK(in_group != NULL && out_group != NULL, "no group to test with");
  wintest_note("a group we are in: %s; one we are not in: %s", in_group, out_group);

  /* The same relative id in another domain is another user. */
  snprintf(rules, sizeof(rules),
           "allow pub mine/sid user:%s\n"
           "allow pub mine/name user:%s\n"
           "allow pub mine/domain user:%s\\%s\n"
           "allow pub other/rid user:S-1-5-21-1-2-3-%u\n"
           "allow sub grp/in group:%s   # by SID\n"
           "allow sub grp/out group:%s\n"
           "deny sub grp/name group:Everyone\n",
           self_sid, user, domain, user, (unsigned)peer.uid, in_group, out_group);
  WT_CHECK((rv = load_rules(rules, &cfg, err, sizeof(err))) == 0, "load: %d %s", rv, err);
  memset(&cred, 0, sizeof(cred));
  cred.uid = host_peer_uid(&peer);
  cred.peer = &peer;
  WT_CHECK(decide(cfg, "mine/sid", CONFIG_OP_PUB, &cred) == 1, "our SID");
  WT_CHECK(decide(cfg, "mine/name", CONFIG_OP_PUB, &cred) == 1, "our name");
  WT_CHECK(decide(cfg, "mine/domain", CONFIG_OP_PUB, &cred) == 1, "DOMAIN\\name");
  WT_CHECK(decide(cfg, "other/rid", CONFIG_OP_PUB, &cred) == -1, "our relative id elsewhere");
  WT_CHECK(decide(cfg, "grp/in", CONFIG_OP_SUB, &cred) == 1, "a group of our token");
  WT_CHECK(decide(cfg, "grp/out", CONFIG_OP_SUB, &cred) == -1, "a group not in our token");
  if (token_has_group("S-1-1-0", &usable) && usable)
    WT_CHECK(decide(cfg, "grp/name", CONFIG_OP_SUB, &cred) == 0, "Everyone by name");
  /* Without a connection's identity, no user or group rule matches. */
  cred.peer = NULL;
  WT_CHECK(decide(cfg, "mine/sid", CONFIG_OP_PUB, &cred) == -1, "matched without an identity");
  WT_CHECK(decide(cfg, "grp/in", CONFIG_OP_SUB, &cred) == -1, "matched without an identity");
  config_free(cfg);

  /* What the parser refuses, with a sentence. */
  cfg = NULL;
  WT_CHECK(load_rules("allow pub a user:shmbus-no-such-user\n", &cfg, err, sizeof(err)) ==
                   -EINVAL &&
               strstr(err, ":1: unknown user \"shmbus-no-such-user\"") != NULL,
           "unknown user: %s", err);
  WT_CHECK(load_rules("allow pub a group:shmbus-no-such-group\n", &cfg, err, sizeof(err)) ==
                   -EINVAL &&
               strstr(err, "unknown group") != NULL,
           "unknown group: %s", err);
  snprintf(rules, sizeof(rules), "# ours\nallow pub a group:%s\n", user);
  WT_CHECK(load_rules(rules, &cfg, err, sizeof(err)) == -EINVAL && strstr(err, ":2: \"") != NULL &&
               strstr(err, "is not a group") != NULL,
           "a user as a group: %s", err);
  WT_CHECK(load_rules("allow pub a user:S-1-x\n", &cfg, err, sizeof(err)) == -EINVAL &&
               strstr(err, "is not a user") != NULL,
           "a bad SID: %s", err);
  WT_CHECK(load_rules("allow pub a uid:1000\n", &cfg, err, sizeof(err)) == -EINVAL &&
               strstr(err, "use user:NAME") != NULL,
           "uid:N: %s", err);
  WT_CHECK(load_rules("allow pub a gid:545\n", &cfg, err, sizeof(err)) == -EINVAL &&
               strstr(err, "use group:NAME") != NULL,
           "gid:N: %s", err);
  WT_CHECK(cfg == NULL, "a config from a bad file");
  LocalFree(self_sid);
  host_peer_release(&self);
  host_peer_release(&peer);
  WT_CHECK(peer.process == NULL && peer.groups == NULL, "released");
  host_peer_release(&peer); /* twice is harmless */
  return WINTEST_PASS;
}

static const struct wintest tests[] = {
    {"dir_and_lock", test_dir_and_lock},   {"listen_accept", test_listen_accept},
    {"pid_gone", test_pid_gone},           {"ready_spawn", test_ready_spawn},
    {"users_and_log", test_users_and_log}, {"rules_by_sid", test_rules_by_sid},
    {"user_numbers", test_user_numbers},
};

int main(int argc, char **argv) {
  return wintest_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]), child_main);
}
