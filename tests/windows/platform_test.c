/* platform_test: the Windows backend (src/platform/windows/) against the
 * platform contract (src/platform/platform.h), with real processes where
 * the contract speaks of them: a section and an event handed to another
 * process by DuplicateHandle (how the daemon will pass them instead of
 * SCM_RIGHTS), checked, mapped read-only and signalled there; wake-ups
 * between two processes counted exactly. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include "platform/platform.h"
#include "wintest.h"

#define SIZE (256u * 1024u)
#define PING_ROUNDS 1000

static uint8_t pattern(size_t i) {
  return (uint8_t)(i * 13 + 5);
}

/* ---- the child ------------------------------------------------------------ */

/* child use-handles, then "SHM EVENT" (hex) on stdin: handle values in
 * this process's table, put there by the parent. Checks the section (size
 * SIZE), maps it read-only, checks every byte, tries a writable mapping
 * (must fail), then checks and signals the event. Exit 0, or 10 + step. */
static int child_use_handles(const char *shm_s, const char *ev_s) {
  shmbus__shm_handle shm = (shmbus__shm_handle)(uintptr_t)strtoull(shm_s, NULL, 16);
  shmbus__event_handle ev = (shmbus__event_handle)(uintptr_t)strtoull(ev_s, NULL, 16);
  uint64_t size = 0;
  const uint8_t *p;
  void *w;
  size_t i;

  if (shmbus__shm_check(shm, SIZE, &size) != 0 || size != SIZE)
    return 10;
  if (shmbus__shm_map(shm, size, false, (void **)&p) != 0)
    return 11;
  for (i = 0; i < SIZE; i++)
    if (p[i] != pattern(i))
      return 12;
  if (shmbus__shm_map(shm, size, true, &w) != -EACCES)
    return 13;
  if (!shmbus__event_check(ev))
    return 14;
  if (shmbus__event_signal(ev) != 0)
    return 15;
  shmbus__shm_unmap((void *)p, size);
  shmbus__fd_close(shm);
  shmbus__fd_close(ev);
  return 0;
}

/* child ping, then "THEIRS MINE" on stdin (the parent's event first):
 * PING_ROUNDS times, signals the parent and waits for its answer. */
static int child_ping(const char *parent_s, const char *mine_s) {
  shmbus__event_handle parent = (shmbus__event_handle)(uintptr_t)strtoull(parent_s, NULL, 16);
  shmbus__event_handle mine = (shmbus__event_handle)(uintptr_t)strtoull(mine_s, NULL, 16);
  int i;

  if (!shmbus__event_check(parent) || !shmbus__event_check(mine))
    return 10;
  for (i = 0; i < PING_ROUNDS; i++) {
    if (shmbus__event_signal(parent) != 0)
      return 11;
    /* 60 s bounds a broken test; it is not a synchronisation. */
    if (shmbus__wait_readable(&mine, 1, 60000) != 1)
      return 12;
  }
  return 0;
}

static int child_main(int argc, char **argv) {
  char a[32], b[32];
  if (argc >= 1 && scanf("%31s %31s", a, b) != 2)
    return 9;
  if (argc >= 1 && strcmp(argv[0], "use-handles") == 0)
    return child_use_handles(a, b);
  if (argc >= 1 && strcmp(argv[0], "ping") == 0)
    return child_ping(a, b);
  return 2;
}

/* ---- tests ------------------------------------------------------------------ */

static int test_shm_create_check_map(void) {
  shmbus__shm_handle shm, ro, dup;
  uint64_t size = 0;
  uint8_t *p;
  const uint8_t *q;
  void *w;
  int rv;

  WT_CHECK((rv = shmbus__shm_create("test", SIZE, &shm)) == 0, "create: %d", rv);
  WT_CHECK(shmbus__handle_ok(shm), "invalid handle");
  WT_CHECK((rv = shmbus__shm_check(shm, SIZE, &size)) == 0, "check: %d", rv);
  WT_CHECK(size == SIZE, "size %llu", (unsigned long long)size);
  WT_CHECK(shmbus__shm_check(shm, SIZE - 1, &size) == -EINVAL, "a size above max_size passed");
  WT_CHECK(shmbus__shm_map(shm, SIZE, true, (void **)&p) == 0, "map rw");
  p[0] = 0x5a;
  p[SIZE - 1] = 0xa5;
  WT_CHECK((rv = shmbus__shm_reopen_readonly(shm, &ro)) == 0, "reopen: %d", rv);
  WT_CHECK((rv = shmbus__shm_check(ro, SIZE, &size)) == 0, "check ro: %d", rv);
  WT_CHECK((rv = shmbus__shm_map(ro, SIZE, true, &w)) == -EACCES, "rw map of ro: %d", rv);
  WT_CHECK(shmbus__shm_map(ro, SIZE, false, (void **)&q) == 0, "map ro");
  WT_CHECK(q[0] == 0x5a && q[SIZE - 1] == 0xa5, "the views differ");
  /* Same object or not. */
  rv = shmbus__fd_same_file(shm, ro);
  wintest_note("fd_same_file(section, its read-only handle) = %d", rv);
  if (rv != -ENOSYS) {
    WT_CHECK(rv == 1, "same_file %d", rv);
    WT_CHECK(shmbus__fd_dup(shm, &dup) == 0, "dup");
    WT_CHECK(shmbus__fd_same_file(shm, dup) == 1, "dup not the same");
    shmbus__fd_close(dup);
  }
  shmbus__shm_unmap((void *)q, SIZE);
  shmbus__shm_unmap(p, SIZE);
  shmbus__fd_close(ro);
  shmbus__fd_close(shm);
  return WINTEST_PASS;
}

static int test_shm_check_refuses_foreign(void) {
  shmbus__shm_handle shm;
  shmbus__event_handle ev;
  HANDLE file, fmap, reserved;
  char path[MAX_PATH], dir[MAX_PATH];
  uint64_t size;
  int rv;

  WT_CHECK(shmbus__shm_create("x", 0, &shm) == -EINVAL, "size 0 accepted");
  /* An event is not a section. */
  WT_CHECK(shmbus__event_open(&ev) == 0, "event_open");
  WT_CHECK((rv = shmbus__shm_check(ev, SIZE, &size)) == -EINVAL, "an event passed: %d", rv);
  shmbus__fd_close(ev);
  /* A section over a real file is not memory of ours. */
  WT_CHECK(GetTempPathA(sizeof(dir), dir) > 0 && GetTempFileNameA(dir, "shm", 0, path) != 0,
           "temp file");
  file = CreateFileA(path, GENERIC_READ | GENERIC_WRITE, 0, NULL, CREATE_ALWAYS,
                     FILE_FLAG_DELETE_ON_CLOSE, NULL);
  WT_CHECK(file != INVALID_HANDLE_VALUE, "CreateFile");
  fmap = CreateFileMappingA(file, NULL, PAGE_READWRITE, 0, 65536, NULL);
  WT_CHECK(fmap != NULL, "file mapping");
  rv = shmbus__shm_check(fmap, SIZE, &size);
  CloseHandle(fmap);
  CloseHandle(file);
  WT_CHECK(rv == -EINVAL, "a file's mapping passed: %d", rv);
  /* Reserved, not committed: could fault later. */
  reserved =
      CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE | SEC_RESERVE, 0, 65536, NULL);
  WT_CHECK(reserved != NULL, "SEC_RESERVE mapping");
  rv = shmbus__shm_check(reserved, SIZE, &size);
  CloseHandle(reserved);
  WT_CHECK(rv == -EINVAL, "a reserved section passed: %d", rv);
  /* A closed handle. */
  WT_CHECK(shmbus__shm_create("x", 4096, &shm) == 0, "create");
  shmbus__fd_close(shm);
  WT_CHECK((rv = shmbus__shm_check(shm, SIZE, &size)) == -EBADF, "a closed handle: %d", rv);
  return WINTEST_PASS;
}

static int test_event_signal_wait_drain(void) {
  shmbus__event_handle ev[2];
  HANDLE manual;
  int rv;

  WT_CHECK(shmbus__event_open(&ev[0]) == 0 && shmbus__event_open(&ev[1]) == 0, "event_open");
  WT_CHECK(shmbus__event_check(ev[0]), "our event refused");
  WT_CHECK(shmbus__wait_readable(ev, 2, 0) == 0, "ready before a signal");
  /* Signals coalesce; the wait reports the event and takes its signal. */
  WT_CHECK(shmbus__event_signal(ev[1]) == 0 && shmbus__event_signal(ev[1]) == 0, "signal");
  WT_CHECK((rv = shmbus__wait_readable(ev, 2, -1)) == 2, "mask %d", rv);
  WT_CHECK((rv = shmbus__wait_readable(ev, 2, 0)) == 0, "still ready: %d", rv);
  WT_CHECK(shmbus__event_signal(ev[0]) == 0 && shmbus__event_signal(ev[1]) == 0, "signal");
  WT_CHECK((rv = shmbus__wait_readable(ev, 2, 1000)) == 3, "both: mask %d", rv);
  /* Drain resets. */
  WT_CHECK(shmbus__event_signal(ev[0]) == 0, "signal");
  shmbus__event_drain(ev[0]);
  WT_CHECK(shmbus__wait_readable(ev, 1, 0) == 0, "drain did not reset");
  WT_CHECK(shmbus__wait_readable(ev, 0, 0) == -EINVAL, "n = 0 accepted");
  WT_CHECK(shmbus__wait_readable(ev, 5, 0) == -EINVAL, "n = 5 accepted");
  /* A manual-reset event, a section, a closed handle: not wake-up events. */
  manual = CreateEventA(NULL, TRUE, FALSE, NULL);
  WT_CHECK(manual != NULL, "CreateEvent");
  WT_CHECK(!shmbus__event_check(manual), "a manual-reset event passed");
  CloseHandle(manual);
  shmbus__fd_close(ev[1]);
  WT_CHECK(!shmbus__event_check(ev[1]), "a closed handle passed");
  shmbus__fd_close(ev[0]);
  return WINTEST_PASS;
}

/* Starts "child VERB" and pushes handles[0..n) into it by DuplicateHandle,
 * the way the daemon will pass them instead of SCM_RIGHTS; their values in
 * the child follow on its stdin, one hex number each. Only the stdin pipe
 * is inherited. Returns the child's process handle, or NULL. */
static HANDLE spawn_with_handles(const char *verb, const shmbus__os_handle *handles, unsigned n) {
  SECURITY_ATTRIBUTES inherit = {sizeof(inherit), NULL, TRUE};
  HANDLE in_r, in_w, dup, self = GetCurrentProcess();
  STARTUPINFOA si;
  PROCESS_INFORMATION pi;
  char exe[MAX_PATH], cmd[2 * MAX_PATH], line[160];
  int len = 0;
  unsigned i;
  DWORD w;

  if (n > 8 || !CreatePipe(&in_r, &in_w, &inherit, 0))
    return NULL;
  SetHandleInformation(in_w, HANDLE_FLAG_INHERIT, 0);
  GetModuleFileNameA(NULL, exe, sizeof(exe));
  snprintf(cmd, sizeof(cmd), "\"%s\" child %s", exe, verb);
  memset(&si, 0, sizeof(si));
  si.cb = sizeof(si);
  si.dwFlags = STARTF_USESTDHANDLES;
  si.hStdInput = in_r;
  si.hStdOutput = GetStdHandle(STD_OUTPUT_HANDLE);
  si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
  if (!CreateProcessA(exe, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) {
    CloseHandle(in_r);
    CloseHandle(in_w);
    return NULL;
  }
  CloseHandle(in_r);
  CloseHandle(pi.hThread);
  for (i = 0; i < n; i++) {
    if (!DuplicateHandle(self, handles[i], pi.hProcess, &dup, 0, FALSE, DUPLICATE_SAME_ACCESS))
      dup = NULL; /* the child fails on it */
    len += snprintf(line + len, sizeof(line) - (size_t)len, "%llx ",
                    (unsigned long long)(uintptr_t)dup);
  }
  line[len - 1] = '\n';
  (void)WriteFile(in_w, line, (DWORD)len, &w, NULL);
  CloseHandle(in_w);
  return pi.hProcess;
}

/* The section (its read-only handle, as a subscriber gets it) and the
 * event go to another process, which checks, maps, reads and signals; this
 * process wakes on the signal. */
static int test_handles_to_another_process(void) {
  shmbus__shm_handle shm, ro;
  shmbus__event_handle ev;
  HANDLE child;
  uint8_t *p;
  size_t i;
  int rv;
  long code;

  WT_CHECK(shmbus__shm_create("test", SIZE, &shm) == 0, "create");
  WT_CHECK(shmbus__shm_map(shm, SIZE, true, (void **)&p) == 0, "map");
  for (i = 0; i < SIZE; i++)
    p[i] = pattern(i);
  WT_CHECK(shmbus__shm_reopen_readonly(shm, &ro) == 0, "reopen");
  WT_CHECK(shmbus__event_open(&ev) == 0, "event_open");
  child = spawn_with_handles("use-handles", (shmbus__os_handle[]){ro, ev}, 2);
  WT_CHECK(child != NULL, "spawn");
  /* Woken by the child's signal, or by its exit when it failed first. */
  rv = shmbus__wait_readable((shmbus__os_handle[]){ev, child}, 2, 60000);
  code = wintest_join(child);
  WT_CHECK(code == 0, "the child failed at step %ld", code);
  WT_CHECK(rv > 0 && (rv & 1), "no wake-up from the child (mask %d)", rv);
  shmbus__shm_unmap(p, SIZE);
  shmbus__fd_close(ro);
  shmbus__fd_close(shm);
  shmbus__fd_close(ev);
  return WINTEST_PASS;
}

/* Wake-ups between two processes through the backend alone: the child
 * signals the parent's event, the parent counts the wake-up and signals
 * the child's; PING_ROUNDS rounds, every one seen exactly once, none
 * lost (a lost one would be a 60 s timeout) and none extra. */
static int test_wakeup_ping_pong(void) {
  shmbus__event_handle mine, theirs;
  HANDLE child;
  long code, woken = 0, i;
  int rv = 0;

  WT_CHECK(shmbus__event_open(&mine) == 0 && shmbus__event_open(&theirs) == 0, "event_open");
  child = spawn_with_handles("ping", (shmbus__os_handle[]){mine, theirs}, 2);
  WT_CHECK(child != NULL, "spawn");
  for (i = 0; i < PING_ROUNDS; i++) {
    /* The child's exit ends the wait too: a failed child is no hang. */
    rv = shmbus__wait_readable((shmbus__os_handle[]){mine, child}, 2, 60000);
    if (rv != 1)
      break;
    woken++;
    if ((rv = shmbus__event_signal(theirs)) != 0)
      break;
  }
  code = wintest_join(child);
  WT_CHECK(code == 0, "the child failed at step %ld (round %ld, mask %d)", code, woken, rv);
  WT_CHECK(woken == PING_ROUNDS, "%ld wake-ups of %d", woken, PING_ROUNDS);
  WT_CHECK(shmbus__wait_readable(&mine, 1, 0) == 0, "a wake-up too many");
  shmbus__fd_close(mine);
  shmbus__fd_close(theirs);
  return WINTEST_PASS;
}

static int test_clocks_random_names(void) {
  uint64_t a, b, r1 = 0, r2 = 0;
  char buf[1024];
  a = shmbus__clock_mono_ns();
  b = shmbus__clock_mono_ns();
  WT_CHECK(b >= a, "monotonic clock went back");
  /* After 2020-01-01 and before 2200. */
  a = shmbus__clock_real_ns();
  WT_CHECK(a > 1577836800ull * 1000000000ull && a < 7258118400ull * 1000000000ull,
           "real clock %llu", (unsigned long long)a);
  WT_CHECK(shmbus__random64(&r1) == 0 && shmbus__random64(&r2) == 0 && r1 != r2, "random64");
  shmbus__spin_backoff(0);
  shmbus__spin_backoff(1000);
  WT_CHECK(strcmp(shmbus__program_name(), "platform_test") == 0, "program name %s",
           shmbus__program_name());
  WT_CHECK(shmbus__program_file(buf, sizeof(buf)) == 0, "program_file");
  WT_CHECK(strstr(buf, "platform_test.exe") != NULL, "program file %s", buf);
  WT_CHECK(shmbus__is_executable(buf), "%s not executable", buf);
  WT_CHECK(shmbus__path_exists(buf), "%s does not exist", buf);
  WT_CHECK(shmbus__library_file(buf, sizeof(buf)) == 0, "library_file");
  WT_CHECK(strstr(buf, "platform_test.exe") != NULL, "library file %s", buf);
  WT_CHECK(shmbus__program_file(buf, 8) == -ENAMETOOLONG, "a short buffer");
  WT_CHECK(!shmbus__path_exists("C:\\shmbus-no-such\\file"), "a missing path exists");
  WT_CHECK(!shmbus__is_executable("C:\\windows"), "a directory is executable");
  WT_CHECK(shmbus__default_bus_dir(buf, sizeof(buf)) == 0, "default_bus_dir");
  wintest_note("default bus dir %s, uid %u, page size %llu", buf, (unsigned)shmbus__self_uid(),
               (unsigned long long)shmbus__page_size());
  WT_CHECK(shmbus__default_bus_dir(buf, 4) == -ENAMETOOLONG, "a short buffer");
  WT_CHECK(shmbus__page_size() >= 4096, "page size");
  return WINTEST_PASS;
}

static int test_pipe(void) {
  shmbus__os_handle p[2];
  char buf[8];
  DWORD n;
  WT_CHECK(shmbus__pipe(p) == 0, "pipe");
  WT_CHECK(WriteFile(p[1], "ready", 5, &n, NULL) && n == 5, "write");
  WT_CHECK(ReadFile(p[0], buf, sizeof(buf), &n, NULL) && n == 5 && memcmp(buf, "ready", 5) == 0,
           "read");
  shmbus__fd_close(p[1]);
  WT_CHECK(!ReadFile(p[0], buf, sizeof(buf), &n, NULL) && GetLastError() == ERROR_BROKEN_PIPE,
           "no end of file");
  shmbus__fd_close(p[0]);
  return WINTEST_PASS;
}

/* The control channel has its own test (conn_test.c); here only that a
 * bus nobody serves says so. */
static int test_connection_none(void) {
  shmbus__conn_handle c;
  WT_CHECK(shmbus__unix_connect("C:\\shmbus-none\\shmbusd.sock", &c) == -ENOENT, "connect");
  return WINTEST_PASS;
}

static const struct wintest tests[] = {
    {"shm_create_check_map", test_shm_create_check_map},
    {"shm_check_refuses_foreign", test_shm_check_refuses_foreign},
    {"event_signal_wait_drain", test_event_signal_wait_drain},
    {"handles_to_another_process", test_handles_to_another_process},
    {"wakeup_ping_pong", test_wakeup_ping_pong},
    {"clocks_random_names", test_clocks_random_names},
    {"pipe", test_pipe},
    {"connection_none", test_connection_none},
};

int main(int argc, char **argv) {
  return wintest_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]), child_main);
}
