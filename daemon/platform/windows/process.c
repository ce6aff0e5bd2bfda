/* process: processes, limits, starting up and the ready signal on Windows
 * (host.h).
 *
 * Windows has no fork: the library's autostart starts shmbusd.exe itself
 * without a console (DETACHED_PROCESS) and waits for the ready event it
 * passes with --ready-fd (its handle value; the daemon inherits that one
 * handle only). host_daemonize therefore only lets go of the console and
 * the standard streams; a daemon started by hand in a console without
 * --foreground keeps that console's window waiting (use `start /b`). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include "host.h"
#include "platform/platform.h"
#include "platform/windows/win.h"

/* NtQueryEvent's EventBasicInformation: the check that a handle value is
 * an event. */
struct process_event_basic {
  int type;
  LONG state;
};
typedef LONG(NTAPI *process_query_event_fn)(HANDLE, int, void *, ULONG, ULONG *);

int32_t host_self_pid(void) {
  return (int32_t)GetCurrentProcessId();
}

uint32_t host_self_uid(void) {
  return shmbus__self_uid();
}

bool host_uid_is_superuser(uint32_t uid) {
  /* LocalSystem, S-1-5-18: its relative id is 18, which no account of a
   * machine or domain has (theirs start at 500). */
  return uid == 18;
}

bool host_pid_gone(uint32_t pid) {
  HANDLE h;
  DWORD w;

  /* 0 is the idle process, never a participant. */
  if (pid == 0)
    return true;
  if ((h = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid)) == NULL)
    return GetLastError() == ERROR_INVALID_PARAMETER; /* no such process; denied: alive */
  /* A process that ended but whose object lives on (someone holds a
   * handle) is gone too. */
  w = WaitForSingleObject(h, 0);
  CloseHandle(h);
  return w == WAIT_OBJECT_0;
}

void host_sleep_ms(uint64_t ms) {
  while (ms > 0) {
    DWORD step = ms > 0x7fffffffu ? 0x7fffffffu : (DWORD)ms;
    Sleep(step);
    ms -= step;
  }
}

void host_stop(void) {
  (void)SuspendThread(GetCurrentThread());
}

void host_crash(void) {
  /* No handlers, no flushing: the status of an access violation. */
  for (;;)
    TerminateProcess(GetCurrentProcess(), 0xC0000005u);
}

uint64_t host_nofile_limit(void) {
  /* Handles have no soft limit on Windows (about 16 million each). */
  return 0;
}

int host_nofile_raise(void) {
  return 0;
}

host_sock_t host_spare_take(void) {
  HANDLE h = CreateFileW(L"NUL", GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                         OPEN_EXISTING, 0, NULL);
  return h == INVALID_HANDLE_VALUE ? HOST_SOCK_INVALID : h;
}

void host_spare_release(host_sock_t spare) {
  if (spare != HOST_SOCK_INVALID && spare != NULL)
    CloseHandle(spare);
}

void host_signals_hold(void) {
  /* No signals on Windows: nothing kills the daemon for an error it
   * handles itself (a broken pipe is an error code). Stopping it cleanly
   * (Ctrl+C in a console, a service stop) is the loop's, through
   * SetConsoleCtrlHandler: not ported yet (docs/windows.md). */
}

void host_signals_release(void) {
}

int host_ready_from_arg(const char *arg, struct host_ready *ready, char *err, size_t errlen) {
  static process_query_event_fn query;
  struct process_event_basic info;
  unsigned long long v;
  ULONG got = 0;
  char *end;
  HANDLE h;

  ready->event = NULL;
  errno = 0;
  v = strtoull(arg, &end, 10);
  if (errno != 0 || end == arg || *end != '\0' || v == 0 || v > (unsigned long long)UINTPTR_MAX) {
    snprintf(err, errlen, "--ready-fd %s: not a handle value", arg);
    return -EINVAL;
  }
  h = (HANDLE)(uintptr_t)v;
  /* Whatever the value names must be an event we may set: signalling
   * anything else would act on an object that is not a ready signal. */
  if (query == NULL)
    query = (process_query_event_fn)(void (*)(void))shmbus__win_ntdll("NtQueryEvent");
  if (query == NULL || query(h, 0, &info, sizeof(info), &got) < 0) {
    snprintf(err, errlen, "--ready-fd %s: not an event handle of this process", arg);
    return -EINVAL;
  }
  /* Not passed on to programs the daemon starts. */
  (void)SetHandleInformation(h, HANDLE_FLAG_INHERIT, 0);
  ready->event = h;
  return 0;
}

void host_ready_none(struct host_ready *ready) {
  ready->event = NULL;
}

void host_ready_signal(struct host_ready *ready) {
  if (ready->event != NULL)
    (void)SetEvent(ready->event);
  host_ready_close(ready);
}

void host_ready_close(struct host_ready *ready) {
  /* The starter also waits for our process: exiting without the signal
   * tells it that start-up failed. */
  if (ready->event != NULL)
    CloseHandle(ready->event);
  ready->event = NULL;
}

int host_daemonize(int fail_status, struct host_ready *ready) {
  HANDLE nul;

  (void)fail_status, (void)ready;
  /* No fork: this process goes on as the daemon. It lets go of the
   * console (a console's Ctrl+C and closing no longer reach it) and puts
   * its standard streams on the null device. */
  (void)FreeConsole();
  nul = CreateFileW(L"NUL", GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
                    OPEN_EXISTING, 0, NULL);
  if (nul == INVALID_HANDLE_VALUE)
    return shmbus__win_error(GetLastError());
  (void)SetStdHandle(STD_INPUT_HANDLE, nul);
  (void)SetStdHandle(STD_OUTPUT_HANDLE, nul);
  (void)SetStdHandle(STD_ERROR_HANDLE, nul);
  if (freopen("NUL", "r", stdin) == NULL || freopen("NUL", "w", stdout) == NULL ||
      freopen("NUL", "w", stderr) == NULL)
    return -EIO;
  return 0;
}
