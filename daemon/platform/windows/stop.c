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
 * (src/platform/loop.h, level-triggered).
 *
 * As a Windows service (`--service`, host_service_run) the service control
 * manager's dispatcher has the process's first thread; the daemon runs on
 * the service's thread, and the manager's controls come on the first:
 * SERVICE_CONTROL_STOP and SERVICE_CONTROL_SHUTDOWN report stop pending
 * and set the same event (or, before the daemon made it, have
 * host_stop_open set it at once). The service reports start pending, then
 * running on the daemon's READY=1 (host_notify_manager), stop pending on
 * STOPPING=1, and stopped with the daemon's exit status. The event's
 * handle is read and replaced under a lock, since the control handler
 * runs on another thread than the daemon. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

#include <windows.h>
#include <winsvc.h>

#include "host.h"
#include "platform/platform.h"
#include "platform/windows/win.h"

/* How long a closing console, a logoff or a shutdown waits for the daemon
 * (Windows ends the process after about 5 s anyway). */
#define STOP_CLOSE_WAIT_MS 4500

/* stop_why when the service control manager asked (no CTRL_* event). */
#define STOP_WHY_SERVICE 0x100

static HANDLE stop_event;      /* the stop request; NULL when none (stop_lock) */
static HANDLE stop_done;       /* set by host_stop_close: the handler may return */
static volatile LONG stop_why; /* what set it: a CTRL_* event + 1, STOP_WHY_SERVICE, or 0 */
static SRWLOCK stop_lock = SRWLOCK_INIT; /* stop_event against the service's handler */

/* The service (host_service_run): its status handle (NULL when the daemon
 * is no service) and what it last reported, under svc_lock. */
static SERVICE_STATUS_HANDLE svc_handle;
static SERVICE_STATUS svc_status;
static SRWLOCK svc_lock = SRWLOCK_INIT;
static bool svc_stop_asked; /* a stop came before the stop event existed (stop_lock) */
static int (*svc_run)(void *arg);
static void *svc_arg;
static int svc_exit = 1;

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
  AcquireSRWLockExclusive(&stop_lock);
  stop_event = CreateEventW(&sa, TRUE, FALSE, name);
  e = GetLastError();
  /* A service stop that came while the daemon started stops it now. */
  if (stop_event != NULL && e != ERROR_ALREADY_EXISTS && svc_stop_asked)
    (void)SetEvent(stop_event);
  ReleaseSRWLockExclusive(&stop_lock);
  LocalFree(sa.lpSecurityDescriptor);
  if (stop_event == NULL) {
    rv = shmbus__win_error(e);
    snprintf(err, errlen, "cannot create the stop event of %s: %s", path, strerror(-rv));
    return rv;
  }
  /* We hold the bus's lock, so a live event of that name is not a
   * daemon's of this bus: someone made it first, and could set it. */
  if (e == ERROR_ALREADY_EXISTS) {
    AcquireSRWLockExclusive(&stop_lock);
    CloseHandle(stop_event);
    stop_event = NULL;
    ReleaseSRWLockExclusive(&stop_lock);
    snprintf(err, errlen,
             "the stop event of %s exists already (someone else made it): not starting", path);
    return -EEXIST;
  }
  if (stop_done != NULL)
    (void)ResetEvent(stop_done);
  else if ((stop_done = CreateEventW(NULL, TRUE, FALSE, NULL)) == NULL) {
    rv = shmbus__win_error(GetLastError());
    AcquireSRWLockExclusive(&stop_lock);
    CloseHandle(stop_event);
    stop_event = NULL;
    ReleaseSRWLockExclusive(&stop_lock);
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
  case STOP_WHY_SERVICE:
    return "the service control manager";
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
  AcquireSRWLockExclusive(&stop_lock);
  CloseHandle(stop_event);
  stop_event = NULL;
  ReleaseSRWLockExclusive(&stop_lock);
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

/* ---- the Windows service ------------------------------------------------ */

/* Reports `state` to the service control manager (with `code`, the
 * daemon's exit status, once stopped). A state is never reported twice,
 * and nothing comes after stopped. */
static void svc_report(DWORD state, int code) {
  static DWORD checkpoint;

  AcquireSRWLockExclusive(&svc_lock);
  if (svc_handle != NULL && svc_status.dwCurrentState != SERVICE_STOPPED &&
      (svc_status.dwCurrentState != state || state == SERVICE_STOP_PENDING)) {
    svc_status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
    svc_status.dwCurrentState = state;
    svc_status.dwControlsAccepted =
        state == SERVICE_RUNNING ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN : 0;
    svc_status.dwWin32ExitCode = code == 0 ? NO_ERROR : ERROR_SERVICE_SPECIFIC_ERROR;
    svc_status.dwServiceSpecificExitCode = (DWORD)code;
    /* Pending states say they progress, and how long the next step may
     * take (the daemon's start and shutdown take well under that). */
    svc_status.dwCheckPoint =
        state == SERVICE_START_PENDING || state == SERVICE_STOP_PENDING ? ++checkpoint : 0;
    svc_status.dwWaitHint =
        state == SERVICE_START_PENDING || state == SERVICE_STOP_PENDING ? 10000 : 0;
    (void)SetServiceStatus(svc_handle, &svc_status);
  }
  ReleaseSRWLockExclusive(&svc_lock);
}

/* The manager's controls, on the dispatcher's thread (the process's
 * first). */
static DWORD WINAPI svc_on_control(DWORD control, DWORD type, void *data, void *ctx) {
  (void)type, (void)data, (void)ctx;
  switch (control) {
  case SERVICE_CONTROL_STOP:
  case SERVICE_CONTROL_SHUTDOWN:
    (void)InterlockedCompareExchange(&stop_why, STOP_WHY_SERVICE, 0);
    svc_report(SERVICE_STOP_PENDING, 0);
    AcquireSRWLockExclusive(&stop_lock);
    if (stop_event != NULL)
      (void)SetEvent(stop_event);
    else
      svc_stop_asked = true;
    ReleaseSRWLockExclusive(&stop_lock);
    return NO_ERROR;
  case SERVICE_CONTROL_INTERROGATE:
    return NO_ERROR;
  default:
    return ERROR_CALL_NOT_IMPLEMENTED;
  }
}

/* The service's thread: the daemon. */
static void WINAPI svc_main(DWORD argc, wchar_t **argv) {
  SERVICE_STATUS_HANDLE h;

  (void)argc, (void)argv; /* the daemon takes the process's command line */
  /* The name is not looked at for a service of its own process. */
  if ((h = RegisterServiceCtrlHandlerExW(L"shmbusd", svc_on_control, NULL)) == NULL)
    return;
  AcquireSRWLockExclusive(&svc_lock);
  svc_handle = h;
  ReleaseSRWLockExclusive(&svc_lock);
  svc_report(SERVICE_START_PENDING, 0);
  svc_exit = svc_run(svc_arg);
  svc_report(SERVICE_STOPPED, svc_exit);
}

int host_service_run(bool service, int (*run)(void *arg), void *arg) {
  SERVICE_TABLE_ENTRYW table[] = {{(wchar_t *)L"shmbusd", svc_main}, {NULL, NULL}};
  DWORD e;

  if (!service)
    return run(arg);
  svc_run = run;
  svc_arg = arg;
  /* Returns once the service has reported that it stopped. */
  if (!StartServiceCtrlDispatcherW(table)) {
    e = GetLastError();
    if (e == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT)
      fprintf(stderr, "shmbusd: --service: this process was not started by the service control "
                      "manager (install it with `sc create`, start it with `sc start`)\n");
    else
      fprintf(stderr, "shmbusd: --service: cannot reach the service control manager (error %lu)\n",
              (unsigned long)e);
    return 1;
  }
  return svc_exit;
}

int host_notify_manager(const char *msg, char *err, size_t errlen) {
  (void)err, (void)errlen;
  /* The messages of sd_notify that have a service state: the rest
   * (MAINPID=...) the manager knows itself. Nothing when no service. */
  if (strncmp(msg, "READY=1", 7) == 0)
    svc_report(SERVICE_RUNNING, 0);
  else if (strncmp(msg, "STOPPING=1", 10) == 0)
    svc_report(SERVICE_STOP_PENDING, 0);
  return 0;
}
