/* winproc: what the Windows tests that run the real programs share:
 * starting a program of build-windows/bin with its output on a pipe,
 * reading its lines, waiting for its end, a private bus directory, opening
 * it, starting its daemon by hand, the names of the daemon's pipe and stop
 * event, and stopping that daemon through the API. */
#ifndef SHMBUS_WINPROC_H
#define SHMBUS_WINPROC_H

#include <stdbool.h>
#include <stddef.h>

#include <windows.h>

#include <shmbus/shmbus.h>

/* A bound for a broken test, never a synchronisation. */
#define WINPROC_LONG_MS 60000

/* The folder of the running test program (the programs are there). */
extern char winproc_bin_dir[MAX_PATH];
void winproc_find_bin_dir(void);

struct winproc {
  HANDLE process;
  HANDLE in_w;  /* its standard input, or NULL */
  HANDLE out_r; /* its standard output and error */
};

/* Starts bin_dir\\exe with `args`, its standard output and error on one
 * pipe and, when `with_input`, its standard input on another (else NUL). */
bool winproc_start(struct winproc *p, const char *exe, const char *args, bool with_input);

/* Reads its output up to a newline, or up to the process's end, into buf
 * (NUL-terminated); returns the length. */
size_t winproc_read_line(struct winproc *p, char *buf, size_t cap);

/* Waits for its end (bounded) and returns its exit code, -1 on timeout;
 * closes its handles. */
long winproc_wait(struct winproc *p);

/* A fresh private bus directory, named in SHMBUS_DIR for the programs. */
bool winproc_bus_dir_make(char *dir, size_t cap);

/* Opens the bus `dir` in this process (SetEnvironmentVariable does not
 * reach its getenv), autostarting a daemon or not (shmbus_bus_opts'
 * autostart: 1, 0 or SHMBUS_AUTOSTART_DEFAULT), as `name` (NULL: the
 * library's default), waiting at most WINPROC_LONG_MS for the daemon. */
int winproc_bus_open(shmbus_bus **bus, const char *dir, int autostart, const char *name);

/* Starts shmbusd.exe on `dir` as autostart does (an inherited ready event
 * named by --ready-fd), with --foreground (its log on d's pipe) or not,
 * and waits for its ready event or its end. Returns 1 once it is ready, 0
 * if it ended first, -1 on a failure of the test. */
int winproc_daemon_start(struct winproc *d, const char *dir, bool foreground);

/* The daemon's pipe for bus `dir` (\\.\pipe\shmbus-<endpoint>) and its
 * stop event (Local\shmbus-stop-<endpoint>), the endpoint being
 * <dir>\shmbusd.sock with \ / : turned into - (src/platform/windows/conn.c,
 * daemon/platform/windows/stop.c): derived here on their own, so that a
 * test sees a change of those names. */
void winproc_pipe_name(const char *dir, char *out, size_t cap);
void winproc_stop_event_name(const char *dir, char *out, size_t cap);

/* Stops the bus's daemon through the API and waits for its process. */
int winproc_daemon_stop(const char *dir);

/* Removes the bus directory and what the daemon left in it (its lock). */
void winproc_bus_dir_remove(const char *dir);

/* The end of a test's bus: winproc_daemon_stop, then
 * winproc_bus_dir_remove; returns what stopping the daemon returned. */
int winproc_bus_end(const char *dir);

#endif /* SHMBUS_WINPROC_H */
