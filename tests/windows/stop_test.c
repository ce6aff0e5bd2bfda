/* stop_test: stopping the daemon on Windows without the control protocol,
 * under Wine, with real processes and the real daemon (shmbusd.exe) on a
 * private bus:
 *   - stop_event: another process sets the bus's named stop event
 *     (`Local\shmbus-stop-<endpoint>`, daemon/platform/windows/stop.c, the
 *     counterpart of SIGTERM); the daemon logs why, exits 0, and leaves
 *     nothing behind it that names the bus: its pipe and its stop event are
 *     gone, its lock is free (a new daemon starts on the bus), and the API's
 *     `daemon stop` still stops that one;
 *   - stop_event_squatted: a stop event of that name that exists before the
 *     daemon (someone else's, who could stop it at will) makes the daemon
 *     refuse to start, with a sentence, exit status 1.
 * Ctrl+C and a console's closing set the same event through a console
 * control handler; Wine runs these tests without a console, so they are
 * not exercised here (docs/windows.md). Every step waits on an event (the
 * daemon's ready event, a process's end), never on time: the waits are
 * bounded by WINPROC_LONG_MS for a broken test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include <shmbus/shmbus.h>

#include "winproc.h"
#include "wintest.h"

/* Reads everything the program wrote until it ended into `buf`. */
static void st_read_all(struct winproc *d, char *buf, size_t cap) {
  size_t n = 0, got;

  buf[0] = '\0';
  while (n + 1 < cap && (got = winproc_read_line(d, buf + n, cap - n)) > 0)
    n += got;
}

/* child stop EVENT: sets the stop event named EVENT; 0 when it did. */
static int child_stop(const char *name) {
  HANDLE ev = OpenEventA(EVENT_MODIFY_STATE, FALSE, name);
  int rv;

  if (ev == NULL)
    return 10;
  rv = SetEvent(ev) ? 0 : 11;
  CloseHandle(ev);
  return rv;
}

static int test_stop_event(void) {
  char dir[MAX_PATH], name[3 * MAX_PATH], pipe[3 * MAX_PATH], args[4 * MAX_PATH], log[8192];
  struct winproc d;
  shmbus_bus *bus = NULL;
  shmbus_pub *pub = NULL;
  HANDLE child, h;
  DWORD pid;
  long code;
  int rv;

  WT_CHECK(winproc_bus_dir_make(dir, sizeof(dir)), "bus dir");
  winproc_stop_event_name(dir, name, sizeof(name));
  winproc_pipe_name(dir, pipe, sizeof(pipe));
  WT_CHECK(winproc_daemon_start(&d, dir, true) == 1, "the daemon did not start");
  /* It serves: a client opens a topic. */
  WT_CHECK((rv = winproc_bus_open(&bus, dir, 0, NULL)) == 0, "open: %s", shmbus_strerror(rv));
  WT_CHECK((rv = shmbus_pub_open(bus, "stop/t", NULL, &pub)) == 0, "pub: %s", shmbus_strerror(rv));
  shmbus_pub_close(pub);
  shmbus_bus_close(bus);

  /* Another process sets the stop event. */
  snprintf(args, sizeof(args), "stop \"%s\"", name);
  WT_CHECK((child = wintest_spawn(args, &pid)) != NULL, "spawn");
  WT_CHECK((code = wintest_join(child)) == 0, "the stop event of %s: child %ld", name, code);
  st_read_all(&d, log, sizeof(log));
  WT_CHECK((code = winproc_wait(&d)) == 0, "the daemon exited %ld; its log:\n%s", code, log);
  WT_CHECK(strstr(log, "the stop event: shutting down") != NULL, "its log:\n%s", log);
  WT_CHECK(strstr(log, "stopped") != NULL, "its log:\n%s", log);

  /* Nothing of it is left: no pipe, no stop event, the lock free. */
  h = CreateFileA(pipe, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
  WT_CHECK(h == INVALID_HANDLE_VALUE && GetLastError() == ERROR_FILE_NOT_FOUND,
           "the pipe %s is still there (%lu)", pipe, (unsigned long)GetLastError());
  h = OpenEventA(SYNCHRONIZE, FALSE, name);
  WT_CHECK(h == NULL && GetLastError() == ERROR_FILE_NOT_FOUND, "the stop event is still there");
  WT_CHECK(winproc_daemon_start(&d, dir, true) == 1, "a new daemon did not start on the bus");
  /* The protocol's stop still works. */
  WT_CHECK((rv = winproc_daemon_stop(dir)) == 0, "daemon stop: %s", shmbus_strerror(rv));
  st_read_all(&d, log, sizeof(log));
  WT_CHECK((code = winproc_wait(&d)) == 0, "the daemon exited %ld; its log:\n%s", code, log);
  /* The owner's check passed by the SID's number; the log names the SID. */
  WT_CHECK(strstr(log, ", user S-1-") != NULL && strstr(log, "asked the daemon to stop") != NULL,
           "its log:\n%s", log);
  winproc_bus_dir_remove(dir);
  return WINTEST_PASS;
}

static int test_stop_event_squatted(void) {
  char dir[MAX_PATH], name[3 * MAX_PATH], log[8192];
  struct winproc d;
  HANDLE squat;
  long code;

  WT_CHECK(winproc_bus_dir_make(dir, sizeof(dir)), "bus dir");
  winproc_stop_event_name(dir, name, sizeof(name));
  WT_CHECK((squat = CreateEventA(NULL, TRUE, FALSE, name)) != NULL, "squat");
  WT_CHECK(winproc_daemon_start(&d, dir, true) == 0,
           "the daemon started beside a squatted stop event");
  st_read_all(&d, log, sizeof(log));
  WT_CHECK((code = winproc_wait(&d)) == 1, "the daemon exited %ld; its log:\n%s", code, log);
  WT_CHECK(strstr(log, "exists already") != NULL, "its log:\n%s", log);
  CloseHandle(squat);
  /* Once the name is free, the daemon starts. */
  WT_CHECK(winproc_daemon_start(&d, dir, true) == 1, "the daemon did not start");
  WT_CHECK(winproc_daemon_stop(dir) == 0, "daemon stop");
  st_read_all(&d, log, sizeof(log));
  WT_CHECK((code = winproc_wait(&d)) == 0, "the daemon exited %ld", code);
  winproc_bus_dir_remove(dir);
  return WINTEST_PASS;
}

static const struct wintest tests[] = {
    {"stop_event", test_stop_event},
    {"stop_event_squatted", test_stop_event_squatted},
};

static int child_main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[0], "stop") == 0)
    return child_stop(argv[1]);
  return 2;
}

int main(int argc, char **argv) {
  winproc_find_bin_dir();
  return wintest_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]), child_main);
}
