/* service_test: shmbusd.exe as a Windows service, under Wine, through
 * Wine's service control manager (services.exe) and the same calls `sc`
 * makes:
 *   - service_start_and_stop: a service created with
 *     `shmbusd.exe --service --dir DIR` starts (the manager runs it, it
 *     reports running once it serves), a client uses its bus, and the
 *     manager's stop control stops it cleanly: the service reports stopped
 *     with exit code 0, its process exits 0 and its pipe is gone;
 *   - service_flag_outside_the_manager: `--service` in a process the
 *     manager did not start is refused with a sentence, status 1.
 * Waits are on the manager's notification (NotifyServiceStatusChange) and
 * on processes, bounded by WINPROC_LONG_MS for a broken test; in a fresh
 * prefix Wine's manager, still busy, may fail the notification call (the
 * wait then looks at the state every 20 ms, with a note) and time out the
 * first start (tried once more, with a note). Under Wine
 * the service runs as the Wine user, like the test; on Windows a service
 * runs as LocalSystem by default and would serve another user's bus (a
 * client of this test could not use it), so this test is Wine's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>
#include <winsvc.h>

#include <shmbus/shmbus.h>

#include "winproc.h"
#include "wintest.h"

/* NotifyServiceStatusChange's callback: the notification is ours again. */
static void CALLBACK sv_notified(void *arg) {
  (void)arg;
}

/* Waits until the service is in `state` (a SERVICE_NOTIFY_* mask), on the
 * manager's notification; 0, or -1 when it did not come in time. */
static int sv_wait_state(SC_HANDLE svc, DWORD mask, DWORD state, SERVICE_STATUS_PROCESS *st) {
  SERVICE_NOTIFYW n;
  ULONGLONG until = GetTickCount64() + WINPROC_LONG_MS;
  bool noted = false;
  DWORD got, err;

  for (;;) {
    if (!QueryServiceStatusEx(svc, SC_STATUS_PROCESS_INFO, (BYTE *)st, sizeof(*st), &got))
      return -1;
    if (st->dwCurrentState == state)
      return 0;
    if (GetTickCount64() >= until)
      return -1;
    memset(&n, 0, sizeof(n));
    n.dwVersion = SERVICE_NOTIFY_STATUS_CHANGE;
    n.pfnNotifyCallback = sv_notified;
    if ((err = NotifyServiceStatusChangeW(svc, mask, &n)) != ERROR_SUCCESS) {
      /* Wine's manager, busy in a fresh prefix, has failed the call
       * (RPC_S_CALL_FAILED_DNE): look again a little later, bounded. */
      if (!noted)
        wintest_note("NotifyServiceStatusChange failed (%lu): polling the state",
                     (unsigned long)err);
      noted = true;
      Sleep(20);
      continue;
    }
    /* The callback comes as an APC to this thread. */
    if (SleepEx((DWORD)(until - GetTickCount64()), TRUE) != WAIT_IO_COMPLETION)
      return -1;
  }
}

static int test_service_start_and_stop(void) {
  char dir[MAX_PATH], pipe[3 * MAX_PATH], name[64], cmd[4 * MAX_PATH];
  SERVICE_STATUS_PROCESS st;
  SERVICE_STATUS ss;
  struct shmbus_daemon_status ds;
  SC_HANDLE scm, svc;
  shmbus_bus *bus = NULL;
  HANDLE proc, h;
  DWORD code;
  int rv;

  WT_CHECK(winproc_bus_dir_make(dir, sizeof(dir)), "bus dir");
  winproc_pipe_name(dir, pipe, sizeof(pipe));
  snprintf(name, sizeof(name), "shmbusd-test-%lu", (unsigned long)GetCurrentProcessId());
  snprintf(cmd, sizeof(cmd), "\"%s\\shmbusd.exe\" --service --dir \"%s\"", winproc_bin_dir, dir);
  WT_CHECK((scm = OpenSCManagerA(NULL, NULL, SC_MANAGER_CONNECT | SC_MANAGER_CREATE_SERVICE)) !=
               NULL,
           "the service control manager");
  svc =
      CreateServiceA(scm, name, name, SERVICE_ALL_ACCESS, SERVICE_WIN32_OWN_PROCESS,
                     SERVICE_DEMAND_START, SERVICE_ERROR_NORMAL, cmd, NULL, NULL, NULL, NULL, NULL);
  WT_CHECK(svc != NULL, "sc create %s", name);
  /* Wine's manager gives a service process 10 s to reach its dispatcher
   * (ServicesPipeTimeout); once, on a loaded machine, a first start took
   * longer: a second try says so in the report. */
  if (!StartServiceA(svc, 0, NULL)) {
    WT_CHECK(GetLastError() == ERROR_SERVICE_REQUEST_TIMEOUT, "sc start %s", name);
    wintest_note("the first start timed out (ERROR_SERVICE_REQUEST_TIMEOUT): starting again");
    WT_CHECK(StartServiceA(svc, 0, NULL), "sc start %s, again", name);
  }
  WT_CHECK(sv_wait_state(svc, SERVICE_NOTIFY_RUNNING | SERVICE_NOTIFY_STOPPED, SERVICE_RUNNING,
                         &st) == 0,
           "the service is not running: state %lu, exit %lu/%lu", (unsigned long)st.dwCurrentState,
           (unsigned long)st.dwWin32ExitCode, (unsigned long)st.dwServiceSpecificExitCode);
  WT_CHECK((proc = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE,
                               st.dwProcessId)) != NULL,
           "the service's process %lu", (unsigned long)st.dwProcessId);
  /* It serves the bus (running is reported once it listens). */
  WT_CHECK((rv = winproc_bus_open(&bus, dir, 0, NULL)) == 0, "open: %s", shmbus_strerror(rv));
  WT_CHECK((rv = shmbus_bus_daemon_status(bus, &ds)) == 0, "status: %s", shmbus_strerror(rv));
  WT_CHECK(ds.pid == st.dwProcessId, "the daemon is pid %u, the service %lu", (unsigned)ds.pid,
           (unsigned long)st.dwProcessId);
  shmbus_bus_close(bus);

  /* sc stop: the daemon shuts down as on its stop event. */
  WT_CHECK(ControlService(svc, SERVICE_CONTROL_STOP, &ss), "sc stop %s", name);
  WT_CHECK(WaitForSingleObject(proc, WINPROC_LONG_MS) == WAIT_OBJECT_0, "the service did not end");
  WT_CHECK(GetExitCodeProcess(proc, &code) && code == 0, "the service's process exited %lu",
           (unsigned long)code);
  CloseHandle(proc);
  WT_CHECK(sv_wait_state(svc, SERVICE_NOTIFY_STOPPED, SERVICE_STOPPED, &st) == 0,
           "the service is not stopped: state %lu", (unsigned long)st.dwCurrentState);
  WT_CHECK(st.dwWin32ExitCode == NO_ERROR, "exit %lu/%lu", (unsigned long)st.dwWin32ExitCode,
           (unsigned long)st.dwServiceSpecificExitCode);
  h = CreateFileA(pipe, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
  WT_CHECK(h == INVALID_HANDLE_VALUE && GetLastError() == ERROR_FILE_NOT_FOUND,
           "the pipe %s is still there", pipe);
  WT_CHECK(DeleteService(svc), "sc delete %s", name);
  CloseServiceHandle(svc);
  CloseServiceHandle(scm);
  winproc_bus_dir_remove(dir);
  return WINTEST_PASS;
}

static int test_service_flag_outside_the_manager(void) {
  char dir[MAX_PATH], args[2 * MAX_PATH], out[4096];
  struct winproc d;
  size_t n = 0, got;
  long code;

  WT_CHECK(winproc_bus_dir_make(dir, sizeof(dir)), "bus dir");
  snprintf(args, sizeof(args), "--service --foreground --dir \"%s\"", dir);
  WT_CHECK(winproc_start(&d, "shmbusd.exe", args, false), "start");
  out[0] = '\0';
  while (n + 1 < sizeof(out) && (got = winproc_read_line(&d, out + n, sizeof(out) - n)) > 0)
    n += got;
  WT_CHECK((code = winproc_wait(&d)) == 1, "shmbusd --service exited %ld: %s", code, out);
  WT_CHECK(strstr(out, "not started by the service control manager") != NULL, "it said: %s", out);
  winproc_bus_dir_remove(dir);
  return WINTEST_PASS;
}

static const struct wintest tests[] = {
    {"service_start_and_stop", test_service_start_and_stop},
    {"service_flag_outside_the_manager", test_service_flag_outside_the_manager},
};

int main(int argc, char **argv) {
  winproc_find_bin_dir();
  return wintest_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]), NULL);
}
