/* seed_test: the seed's scenario on Windows with the real programs, under
 * Wine: shmbusd.exe, and the examples seed_writer.exe and seed_reader.exe
 * (examples/), all from the folder this program runs from (build-windows/bin).
 *
 * A private bus (a fresh directory, named to the programs by SHMBUS_DIR);
 * the writer starts the daemon itself (autostart finds shmbusd.exe beside
 * it), publishes one message and stays; the reader, started once the writer
 * said it published, opens the topic by name and reads the message through
 * history. The daemon is then stopped through the API and its process
 * waited for; the bus directory is removed. Every step waits on an event
 * (a line on a pipe, a process's exit), never on time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include <shmbus/shmbus.h>

#include "wintest.h"

/* A bound for a broken test, never a synchronisation. */
#define LONG_MS 60000

static char bin_dir[MAX_PATH];

/* The folder of this program (the examples and shmbusd.exe are there). */
static void find_bin_dir(void) {
  char *slash;
  GetModuleFileNameA(NULL, bin_dir, sizeof(bin_dir));
  if ((slash = strrchr(bin_dir, '\\')) != NULL)
    *slash = '\0';
}

struct proc {
  HANDLE process;
  HANDLE in_w;  /* its standard input, or NULL */
  HANDLE out_r; /* its standard output and error */
};

/* Starts bin_dir\exe with `args`, its standard output and error on a pipe
 * and, when `with_input`, its standard input on another. */
static bool proc_start(struct proc *p, const char *exe, const char *args, bool with_input) {
  SECURITY_ATTRIBUTES inherit = {sizeof(inherit), NULL, TRUE};
  HANDLE out_w = NULL, in_r = NULL;
  STARTUPINFOA si;
  PROCESS_INFORMATION pi;
  char path[MAX_PATH + 64], cmd[2 * MAX_PATH + 256];
  BOOL ok;

  memset(p, 0, sizeof(*p));
  snprintf(path, sizeof(path), "%s\\%s", bin_dir, exe);
  snprintf(cmd, sizeof(cmd), "\"%s\" %s", path, args);
  if (!CreatePipe(&p->out_r, &out_w, &inherit, 0))
    return false;
  SetHandleInformation(p->out_r, HANDLE_FLAG_INHERIT, 0);
  if (with_input) {
    if (!CreatePipe(&in_r, &p->in_w, &inherit, 0))
      return false;
    SetHandleInformation(p->in_w, HANDLE_FLAG_INHERIT, 0);
  } else {
    in_r = CreateFileA("NUL", GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, &inherit,
                       OPEN_EXISTING, 0, NULL);
  }
  memset(&si, 0, sizeof(si));
  si.cb = sizeof(si);
  si.dwFlags = STARTF_USESTDHANDLES;
  si.hStdInput = in_r;
  si.hStdOutput = out_w;
  si.hStdError = out_w;
  ok = CreateProcessA(path, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi);
  CloseHandle(out_w);
  CloseHandle(in_r);
  if (!ok)
    return false;
  CloseHandle(pi.hThread);
  p->process = pi.hProcess;
  return true;
}

/* Reads its output up to a newline or its end into buf. */
static size_t proc_read_line(struct proc *p, char *buf, size_t cap) {
  size_t n = 0;
  DWORD got;
  char c;

  while (n + 1 < cap && ReadFile(p->out_r, &c, 1, &got, NULL) && got == 1) {
    buf[n++] = c;
    if (c == '\n')
      break;
  }
  buf[n] = '\0';
  return n;
}

/* Waits for its end (bounded) and returns its exit code, -1 on timeout. */
static long proc_wait(struct proc *p) {
  DWORD code = (DWORD)-1;
  if (WaitForSingleObject(p->process, LONG_MS) != WAIT_OBJECT_0 ||
      !GetExitCodeProcess(p->process, &code)) {
    TerminateProcess(p->process, 99);
    code = (DWORD)-1;
  }
  CloseHandle(p->process);
  if (p->in_w != NULL)
    CloseHandle(p->in_w);
  CloseHandle(p->out_r);
  return (long)code;
}

/* A fresh private bus directory, named in SHMBUS_DIR for the programs. */
static bool bus_dir_make(char *dir, size_t cap) {
  char tmp[MAX_PATH], name[96];
  if (GetTempPathA(sizeof(tmp), tmp) == 0)
    return false;
  wintest_unique_name(name, sizeof(name), "");
  snprintf(dir, cap, "%s%s", tmp, name);
  return CreateDirectoryA(dir, NULL) && SetEnvironmentVariableA("SHMBUS_DIR", dir);
}

/* Stops the bus's daemon through the API and waits for its process. */
static int daemon_stop(const char *dir) {
  struct shmbus_bus_opts o;
  struct shmbus_daemon_status st;
  shmbus_bus *bus = NULL;
  HANDLE d;
  int rv;

  shmbus_bus_opts_init(&o);
  o.autostart = 0;
  o.dir = dir; /* SetEnvironmentVariable does not reach this process's getenv */
  if ((rv = shmbus_bus_open(&bus, &o)) < 0)
    return rv;
  if ((rv = shmbus_bus_daemon_status(bus, &st)) < 0) {
    shmbus_bus_close(bus);
    return rv;
  }
  d = OpenProcess(SYNCHRONIZE, FALSE, st.pid);
  rv = shmbus_bus_daemon_stop(bus);
  shmbus_bus_close(bus);
  if (d != NULL) {
    if (rv == 0 && WaitForSingleObject(d, LONG_MS) != WAIT_OBJECT_0)
      rv = -ETIMEDOUT;
    CloseHandle(d);
  }
  return rv;
}

/* Removes the bus directory and what the daemon left in it (its lock). */
static void bus_dir_remove(const char *dir) {
  char pattern[MAX_PATH + 4], file[2 * MAX_PATH];
  WIN32_FIND_DATAA fd;
  HANDLE f;

  snprintf(pattern, sizeof(pattern), "%s\\*", dir);
  if ((f = FindFirstFileA(pattern, &fd)) != INVALID_HANDLE_VALUE) {
    do {
      if (strcmp(fd.cFileName, ".") != 0 && strcmp(fd.cFileName, "..") != 0) {
        snprintf(file, sizeof(file), "%s\\%s", dir, fd.cFileName);
        DeleteFileA(file);
      }
    } while (FindNextFileA(f, &fd));
    FindClose(f);
  }
  RemoveDirectoryA(dir);
}

static int test_seed_exchange(void) {
  char dir[MAX_PATH], line[256];
  struct proc w, r;
  DWORD put;
  long code;
  int rv;

  WT_CHECK(bus_dir_make(dir, sizeof(dir)), "bus directory");
  /* The daemon the writer starts stays until it is stopped. */
  SetEnvironmentVariableA("SHMBUS_IDLE_EXIT", "0");
  WT_CHECK(proc_start(&w, "shmbus-example-seed-writer.exe", "", true), "start the writer");
  proc_read_line(&w, line, sizeof(line));
  WT_CHECK(strstr(line, "published \"Message from first process.\"") != NULL, "writer said: %s",
           line);
  WT_CHECK(proc_start(&r, "shmbus-example-seed-reader.exe", "--timeout 30000", false),
           "start the reader");
  proc_read_line(&r, line, sizeof(line));
  code = proc_wait(&r);
  WT_CHECK(code == 0, "reader exit %ld: %s", code, line);
  WT_CHECK(strstr(line, "received \"Message from first process.\" from seed/message") != NULL,
           "reader said: %s", line);
  WT_CHECK(WriteFile(w.in_w, "stop\n", 5, &put, NULL) && put == 5, "tell the writer to stop");
  code = proc_wait(&w);
  WT_CHECK(code == 0, "writer exit %ld", code);
  rv = daemon_stop(dir);
  WT_CHECK(rv == 0, "stopping the daemon: %s", shmbus_strerror(rv));
  bus_dir_remove(dir);
  return WINTEST_PASS;
}

static const struct wintest tests[] = {
    {"seed_exchange", test_seed_exchange},
};

static int child_main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  return 2;
}

int main(int argc, char **argv) {
  find_bin_dir();
  return wintest_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]), child_main);
}
