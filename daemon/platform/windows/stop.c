/* stop: stopping the daemon on Windows (host.h), where there is no SIGTERM.
 *
 * A manual-reset event per bus, named after the endpoint as its pipe is
 * (`Local\shmbus-stop-<endpoint>`, `Global\` for the system bus), with a
 * descriptor that grants the daemon's user alone: another process of that
 * user sets it (host_stop_request), the counterpart of `kill -TERM`. A
 * console control handler sets it too (Ctrl+C, Ctrl+Break, the console
 * closing, the user logging off, the system shutting down); for the last
 * three Windows ends the process once the handler returns, so the handler
 * waits (a few seconds at most, Windows' own bound) until the daemon has
 * shut down (host_stop_close). The daemon's loop watches the event
 * (src/platform/loop.h, level-triggered). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

#include <windows.h>

#include "host.h"
#include "platform/platform.h"
#include "platform/windows/win.h"

/* How long a closing console, a logoff or a shutdown waits for the daemon
 * (Windows ends the process after about 5 s anyway). */
#define STOP_CLOSE_WAIT_MS 4500

static HANDLE stop_event;      /* the stop request; NULL when none */
static HANDLE stop_done;       /* set by host_stop_close: the handler may return */
static volatile LONG stop_why; /* what set it: a CTRL_* event + 1, or 0 */

/* The event's name for endpoint `path` into `out` (`cap` characters). */
static int stop_name(const char *path, bool system, wchar_t *out, size_t cap) {
  static const wchar_t pipe_prefix[] = L"\\\\.\\pipe\\shmbus-";
  wchar_t pipe[260];
  const wchar_t *ns = system ? L"Global\\shmbus-stop-" : L"Local\\shmbus-stop-";
  int rv;

  /* The pipe's name, whose part after the prefix has no backslash. */
  if ((rv = shmbus__win_pipe_name(path, pipe, sizeof(pipe) / sizeof(pipe[0]))) < 0)
    return rv;
  if (wcsncmp(pipe, pipe_prefix, wcslen(pipe_prefix)) != 0)
    return -EINVAL;
  if (wcslen(ns) + wcslen(pipe) - wcslen(pipe_prefix) + 1 > cap)
    return -ENAMETOOLONG;
  (void)_snwprintf(out, cap, L"%ls%ls", ns, pipe + wcslen(pipe_prefix));
  out[cap - 1] = L'\0';
  return 0;
}

static BOOL WINAPI stop_on_console(DWORD type) {
  HANDLE ev = stop_event, done = stop_done;

  if (ev == NULL)
    return FALSE;
  switch (type) {
  case CTRL_C_EVENT:
  case CTRL_BREAK_EVENT:
    (void)InterlockedCompareExchange(&stop_why, (LONG)type + 1, 0);
    (void)SetEvent(ev);
    return TRUE;
  case CTRL_CLOSE_EVENT:
  case CTRL_LOGOFF_EVENT:
  case CTRL_SHUTDOWN_EVENT:
    (void)InterlockedCompareExchange(&stop_why, (LONG)type + 1, 0);
    (void)SetEvent(ev);
    /* Returning lets Windows end the process: first let it shut down. */
    if (done != NULL)
      (void)WaitForSingleObject(done, STOP_CLOSE_WAIT_MS);
    return TRUE;
  default:
    return FALSE;
  }
}

int host_stop_open(const char *path, bool system, host_sock_t *stop, char *err, size_t errlen) {
  SECURITY_ATTRIBUTES sa;
  wchar_t name[300];
  DWORD e;
  int rv;

  *stop = HOST_SOCK_INVALID;
  if (stop_event != NULL) {
    snprintf(err, errlen, "the stop event is open already");
    return -EBUSY;
  }
  if ((rv = stop_name(path, system, name, sizeof(name) / sizeof(name[0]))) < 0) {
    snprintf(err, errlen, "no stop event name for %s: %s", path, strerror(-rv));
    return rv;
  }
  if ((rv = shmbus__win_owner_only(&sa)) < 0) {
    snprintf(err, errlen, "cannot make the stop event's descriptor: %s", strerror(-rv));
    return rv;
  }
  stop_event = CreateEventW(&sa, TRUE, FALSE, name);
  e = GetLastError();
  LocalFree(sa.lpSecurityDescriptor);
  if (stop_event == NULL) {
    rv = shmbus__win_error(e);
    snprintf(err, errlen, "cannot create the stop event of %s: %s", path, strerror(-rv));
    return rv;
  }
  /* We hold the bus's lock, so a live event of that name is not a
   * daemon's of this bus: someone made it first, and could set it. */
  if (e == ERROR_ALREADY_EXISTS) {
    CloseHandle(stop_event);
    stop_event = NULL;
    snprintf(err, errlen,
             "the stop event of %s exists already (someone else made it): not starting", path);
    return -EEXIST;
  }
  if (stop_done != NULL)
    (void)ResetEvent(stop_done);
  else if ((stop_done = CreateEventW(NULL, TRUE, FALSE, NULL)) == NULL) {
    rv = shmbus__win_error(GetLastError());
    CloseHandle(stop_event);
    stop_event = NULL;
    snprintf(err, errlen, "cannot create an event: %s", strerror(-rv));
    return rv;
  }
  stop_why = 0;
  /* Ctrl+C reaches us even when the starter disabled it for its process
   * group; our handler comes before libuv's (the last added is called
   * first), so a console's closing stops the daemon rather than reload it
   * (libuv calls that SIGHUP). A daemon without a console gets none of
   * these. */
  (void)SetConsoleCtrlHandler(NULL, FALSE);
  if (!SetConsoleCtrlHandler(stop_on_console, TRUE)) {
    rv = shmbus__win_error(GetLastError());
    host_stop_close(stop_event);
    snprintf(err, errlen, "cannot handle the console's Ctrl+C: %s", strerror(-rv));
    return rv;
  }
  *stop = stop_event;
  return 0;
}

const char *host_stop_reason(void) {
  switch (stop_why) {
  case CTRL_C_EVENT + 1:
    return "Ctrl+C";
  case CTRL_BREAK_EVENT + 1:
    return "Ctrl+Break";
  case CTRL_CLOSE_EVENT + 1:
    return "the console is closing";
  case CTRL_LOGOFF_EVENT + 1:
    return "the user logs off";
  case CTRL_SHUTDOWN_EVENT + 1:
    return "the system shuts down";
  default:
    return "the stop event";
  }
}

void host_stop_close(host_sock_t stop) {
  if (stop == HOST_SOCK_INVALID || stop == NULL || stop != stop_event)
    return;
  (void)SetConsoleCtrlHandler(stop_on_console, FALSE);
  /* A handler waiting for us may return now. */
  (void)SetEvent(stop_done);
  CloseHandle(stop_event);
  stop_event = NULL;
  /* stop_done stays open: a handler that copied it may still wait on it,
   * and the process is about to end. */
}

int host_stop_request(const char *path, bool system) {
  wchar_t name[300];
  HANDLE ev;
  int rv;

  if ((rv = stop_name(path, system, name, sizeof(name) / sizeof(name[0]))) < 0)
    return rv;
  if ((ev = OpenEventW(EVENT_MODIFY_STATE, FALSE, name)) == NULL)
    return GetLastError() == ERROR_FILE_NOT_FOUND ? -ENOENT : shmbus__win_error(GetLastError());
  rv = SetEvent(ev) ? 0 : shmbus__win_error(GetLastError());
  CloseHandle(ev);
  return rv;
}
