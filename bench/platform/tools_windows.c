/* tools_os on Windows (see tools_os.h). A reader is shmbus.exe started with
 * CreateProcess in the benchmark's kill-on-close job (platform/win_proc.h),
 * and stopped as another process stops it on Windows, where there is no
 * SIGTERM: it sets the CLI's named stop event, `Local\shmbus-cli-stop-<pid>`
 * (cli/platform/windows.c, docs/windows.md), then waits for its end, whose
 * exit code must be 0; GetProcessTimes gives its CPU time.
 *
 * The controls (a busy loop, a 64 MiB read loop), forked on Linux, are this
 * program again here: `shmbus-bench tools --control busy|stream READY
 * STOP`, READY and STOP being the values of two events it inherits (made
 * for it, not inheritable again once it runs). It sets READY once its
 * memory is ready, and a registered wait on STOP sets the flag its loop
 * looks at, as SIGTERM's handler does on Linux; then it exits 0. */
#include <windows.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "benchproc.h"
#include "benchutil.h"
#include "platform/win_proc.h"
#include "tools_os.h"

/* How long a reader may take to make its stop event after its start, and
 * to end after it was set; the bench dies after that. */
#define TL_STOP_TIMEOUT_MS 30000u
/* How long a stopper that finds no event yet waits for the reader's end
 * before it looks again. */
#define TL_STOP_RETRY_MS 10u

#define TL_CMDLINE_MAX 32768u

const char *tl_os_system(void) {
  return "";
}

int tl_os_cli_find(const char *path, char *out, size_t cap) {
  DWORD attr;

  bp_win_resolve_beside(path, out, cap);
  if (strlen(out) + 1 >= cap)
    return -ENAMETOOLONG;
  attr = GetFileAttributesA(out);
  if (attr == INVALID_FILE_ATTRIBUTES)
    return -ENOENT;
  if ((attr & FILE_ATTRIBUTE_DIRECTORY) != 0)
    return -EISDIR;
  return 0;
}

/* 100 ns units into ns. */
static uint64_t tl_filetime_ns(const FILETIME *t) {
  ULARGE_INTEGER v;
  v.LowPart = t->dwLowDateTime;
  v.HighPart = t->dwHighDateTime;
  return v.QuadPart * 100u;
}

uint64_t tl_os_cpu_ns(void) {
  return bu_cpu_ns();
}

static _Noreturn void tl_die_win(const char *what) {
  DWORD e = GetLastError();
  fprintf(stderr, "shmbus-bench tools: %s: Windows error %lu\n", what, (unsigned long)e);
  bp_die(what, e == ERROR_ACCESS_DENIED ? -EACCES : e == ERROR_FILE_NOT_FOUND ? -ENOENT : -EIO);
}

/* In a control: set by the registered wait on its stop event. */
static volatile sig_atomic_t tl_ctrl_stop;

static void CALLBACK tl_ctrl_on_stop(void *arg, BOOLEAN timed_out) {
  (void)arg;
  if (!timed_out)
    tl_ctrl_stop = 1;
}

/* An event handle value from the command line: a handle of this process
 * that can be waited on (a forged value fails here, never later). */
static HANDLE tl_ctrl_handle(const char *s) {
  unsigned long long v;
  char *end;
  HANDLE h;
  DWORD flags;

  errno = 0;
  v = strtoull(s, &end, 10);
  if (end == s || *end != '\0' || errno != 0 || v == 0 || v > (uintptr_t)-1)
    return NULL;
  h = (HANDLE)(uintptr_t)v;
  if (!GetHandleInformation(h, &flags) || WaitForSingleObject(h, 0) == WAIT_FAILED)
    return NULL;
  return h;
}

int tl_os_control_main(int argc, char **argv) {
  HANDLE ready, stop, wait = NULL;
  uint64_t *mem;
  bool stream;

  if (argc < 3 || strcmp(argv[2], "--control") != 0)
    return -1;
  if (argc != 6 || (strcmp(argv[3], "busy") != 0 && strcmp(argv[3], "stream") != 0) ||
      (ready = tl_ctrl_handle(argv[4])) == NULL || (stop = tl_ctrl_handle(argv[5])) == NULL) {
    fprintf(stderr, "shmbus-bench tools: --control is for the benchmark's own children\n");
    return 2;
  }
  stream = argv[3][0] == 's';
  /* Not for the processes it might start (none): only ours. */
  (void)SetHandleInformation(ready, HANDLE_FLAG_INHERIT, 0);
  (void)SetHandleInformation(stop, HANDLE_FLAG_INHERIT, 0);
  if (!RegisterWaitForSingleObject(&wait, stop, tl_ctrl_on_stop, NULL, INFINITE,
                                   WT_EXECUTEONLYONCE)) {
    fprintf(stderr, "shmbus-bench tools: RegisterWaitForSingleObject: Windows error %lu\n",
            (unsigned long)GetLastError());
    return 126;
  }
  if (tl_control_setup(stream, &mem) < 0 || !SetEvent(ready))
    return 126;
  CloseHandle(ready);
  tl_control_loop(stream, mem, &tl_ctrl_stop);
  /* Waits for the callback if it runs, so that nothing runs at the exit. */
  (void)UnregisterWaitEx(wait, INVALID_HANDLE_VALUE);
  CloseHandle(stop);
  return 0;
}

struct tl_proc tl_os_ctrl_start(bool stream) {
  SECURITY_ATTRIBUTES inherit = {sizeof(inherit), NULL, TRUE};
  struct tl_proc p = {-1, NULL, NULL};
  char exe[MAX_PATH], num[2][32], *cmd, *c, *end;
  HANDLE ready, both[2];
  DWORD len, pid, w;

  len = GetModuleFileNameA(NULL, exe, sizeof(exe));
  if (len == 0 || len >= sizeof(exe))
    tl_die_win("GetModuleFileName");
  ready = CreateEventW(&inherit, TRUE, FALSE, NULL);
  p.stop = CreateEventW(&inherit, TRUE, FALSE, NULL);
  if (ready == NULL || p.stop == NULL)
    tl_die_win("a control's events");
  snprintf(num[0], sizeof(num[0]), "%llu", (unsigned long long)(uintptr_t)ready);
  snprintf(num[1], sizeof(num[1]), "%llu", (unsigned long long)(uintptr_t)p.stop);
  if ((cmd = malloc(TL_CMDLINE_MAX)) == NULL)
    bp_die("malloc", -ENOMEM);
  c = cmd;
  end = cmd + TL_CMDLINE_MAX;
  *c = '\0';
  if (!bp_win_cmd_put(&c, end, exe) || !bp_win_cmd_put(&c, end, "tools") ||
      !bp_win_cmd_put(&c, end, "--control") ||
      !bp_win_cmd_put(&c, end, stream ? "stream" : "busy") || !bp_win_cmd_put(&c, end, num[0]) ||
      !bp_win_cmd_put(&c, end, num[1]))
    bp_die("the control's command line", -E2BIG);
  p.handle = bp_win_start(exe, cmd, NULL, &pid);
  p.pid = (long)pid;
  free(cmd);
  /* Ours alone from now on: the next child must not inherit them. */
  if (!SetHandleInformation(p.stop, HANDLE_FLAG_INHERIT, 0))
    tl_die_win("SetHandleInformation");
  both[0] = ready;
  both[1] = p.handle;
  w = WaitForMultipleObjects(2, both, FALSE, TL_STOP_TIMEOUT_MS);
  CloseHandle(ready);
  if (w != WAIT_OBJECT_0) {
    fprintf(stderr, "shmbus-bench tools: a control (pid %ld) %s\n", p.pid,
            w == WAIT_OBJECT_0 + 1 ? "ended before it ran" : "did not say it runs");
    bp_die("start a control", w == WAIT_TIMEOUT ? -ETIMEDOUT : -EIO);
  }
  return p;
}

struct tl_proc tl_os_reader_start(const char *cli, char *const *args, const char *err_path) {
  SECURITY_ATTRIBUTES inherit = {sizeof(inherit), NULL, TRUE};
  struct tl_proc p = {-1, NULL, NULL};
  STARTUPINFOA si;
  HANDLE err, nul;
  char *cmd, *c, *end;
  DWORD pid;

  /* The reader's bus, as SHMBUS_DIR and SHMBUS_NO_AUTOSTART tell it: set
   * in our own environment, which CreateProcess passes on (ours opens the
   * bus by its directory, and never autostarts). */
  if (!SetEnvironmentVariableA("SHMBUS_DIR", bp_bus_dir()) ||
      !SetEnvironmentVariableA("SHMBUS_NO_AUTOSTART", "1"))
    tl_die_win("SetEnvironmentVariable");
  err = CreateFileA(err_path, GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_DELETE, &inherit,
                    CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
  if (err == INVALID_HANDLE_VALUE)
    tl_die_win("create the reader's log");
  nul = CreateFileA("NUL", GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE,
                    &inherit, OPEN_EXISTING, 0, NULL);
  if (nul == INVALID_HANDLE_VALUE)
    tl_die_win("open NUL");
  if ((cmd = malloc(TL_CMDLINE_MAX)) == NULL)
    bp_die("malloc", -ENOMEM);
  c = cmd;
  end = cmd + TL_CMDLINE_MAX;
  *c = '\0';
  for (; *args != NULL; args++)
    if (!bp_win_cmd_put(&c, end, *args))
      bp_die("the reader's command line", -E2BIG);
  memset(&si, 0, sizeof(si));
  si.cb = sizeof(si);
  si.dwFlags = STARTF_USESTDHANDLES;
  si.hStdInput = nul;
  si.hStdOutput = nul;
  si.hStdError = err;
  p.handle = bp_win_start(cli, cmd, &si, &pid);
  p.pid = (long)pid;
  free(cmd);
  CloseHandle(err);
  CloseHandle(nul);
  return p;
}

/* Sets the stop event of reader `p`. The reader makes it at its start,
 * before it opens the bus (so once it has subscribed, it is there); a
 * reader that has not made it yet is waited for: the stopper looks again
 * every TL_STOP_RETRY_MS while the process runs, so a stop asked right
 * after the start is not lost. */
static void tl_stop_event_set(const struct tl_proc *p) {
  wchar_t name[64];
  uint64_t end = bu_now_ns() + (uint64_t)TL_STOP_TIMEOUT_MS * 1000000u;

  (void)_snwprintf(name, sizeof(name) / sizeof(name[0]), L"Local\\shmbus-cli-stop-%lu",
                   (unsigned long)p->pid);
  name[sizeof(name) / sizeof(name[0]) - 1] = L'\0';
  for (;;) {
    HANDLE ev = OpenEventW(EVENT_MODIFY_STATE, FALSE, name);
    DWORD w;
    if (ev != NULL) {
      BOOL ok = SetEvent(ev);
      DWORD e = GetLastError();
      CloseHandle(ev);
      if (!ok) {
        SetLastError(e);
        tl_die_win("SetEvent on the reader's stop event");
      }
      return;
    }
    if (GetLastError() != ERROR_FILE_NOT_FOUND)
      tl_die_win("open the reader's stop event");
    w = WaitForSingleObject(p->handle, TL_STOP_RETRY_MS);
    if (w == WAIT_OBJECT_0)
      return; /* it ended first: its exit code says how */
    if (w != WAIT_TIMEOUT)
      tl_die_win("wait for the reader");
    if (bu_now_ns() > end) {
      fprintf(stderr, "shmbus-bench tools: the reader (pid %ld) made no stop event in %u ms\n",
              p->pid, TL_STOP_TIMEOUT_MS);
      bp_die("stop the reader", -ETIMEDOUT);
    }
  }
}

uint64_t tl_os_reader_stop(struct tl_proc *p) {
  FILETIME created, exited, kernel, user;
  DWORD w, code;

  if (p->stop != NULL) {
    /* A control: the event it inherited. */
    if (!SetEvent(p->stop))
      tl_die_win("SetEvent on a control's stop event");
    CloseHandle(p->stop);
    p->stop = NULL;
  } else {
    tl_stop_event_set(p);
  }
  w = WaitForSingleObject(p->handle, TL_STOP_TIMEOUT_MS);
  if (w == WAIT_TIMEOUT) {
    fprintf(stderr, "shmbus-bench tools: the reader (pid %ld) did not end in %u ms once stopped\n",
            p->pid, TL_STOP_TIMEOUT_MS);
    (void)TerminateProcess(p->handle, 9);
    (void)WaitForSingleObject(p->handle, INFINITE);
    bp_die("stop the reader", -ETIMEDOUT);
  }
  if (w != WAIT_OBJECT_0)
    tl_die_win("wait for the reader");
  if (!GetExitCodeProcess(p->handle, &code))
    tl_die_win("GetExitCodeProcess");
  if (code != 0) {
    fprintf(stderr, "shmbus-bench tools: a reader ended with exit code %lu\n", (unsigned long)code);
    bp_die("reader", -EIO);
  }
  if (!GetProcessTimes(p->handle, &created, &exited, &kernel, &user))
    tl_die_win("GetProcessTimes");
  CloseHandle(p->handle);
  p->handle = NULL;
  p->pid = -1;
  return tl_filetime_ns(&kernel) + tl_filetime_ns(&user);
}
