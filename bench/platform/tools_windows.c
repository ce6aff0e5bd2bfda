/* tools_os on Windows (see tools_os.h). A reader is shmbus.exe started with
 * CreateProcess in the benchmark's kill-on-close job (platform/win_proc.h),
 * and stopped as another process stops it on Windows, where there is no
 * SIGTERM: it sets the CLI's named stop event, `Local\shmbus-cli-stop-<pid>`
 * (cli/platform/windows.c, docs/windows.md), then waits for its end, whose
 * exit code must be 0; GetProcessTimes gives its CPU time.
 *
 * The controls (a busy loop, a 64 MiB read loop) are forked with SIGTERM
 * on Linux; here they would be this program again (--bench-child), which
 * shmbus_bench.c's main does not dispatch to tools: the report says they
 * are not available. */
#include <windows.h>

#include <errno.h>
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

const char *tl_os_no_controls(void) {
  return "not available on Windows (they would be this program started again, "
         "which the tools subcommand does not do)";
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

struct tl_proc tl_os_ctrl_start(bool stream) {
  (void)stream;
  bp_die("the controls are not available on Windows", -ENOTSUP);
}

static _Noreturn void tl_die_win(const char *what) {
  DWORD e = GetLastError();
  fprintf(stderr, "shmbus-bench tools: %s: Windows error %lu\n", what, (unsigned long)e);
  bp_die(what, e == ERROR_ACCESS_DENIED ? -EACCES : e == ERROR_FILE_NOT_FOUND ? -ENOENT : -EIO);
}

struct tl_proc tl_os_reader_start(const char *cli, char *const *args, const char *err_path) {
  SECURITY_ATTRIBUTES inherit = {sizeof(inherit), NULL, TRUE};
  struct tl_proc p = {-1, NULL};
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

  tl_stop_event_set(p);
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
