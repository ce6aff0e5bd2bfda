/* winproc: see winproc.h. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <windows.h>

#include <shmbus/shmbus.h>

#include "winproc.h"
#include "wintest.h"

char winproc_bin_dir[MAX_PATH];

/* The folder of this program (the examples and shmbusd.exe are there). */
void winproc_find_bin_dir(void) {
  char *slash;
  GetModuleFileNameA(NULL, winproc_bin_dir, sizeof(winproc_bin_dir));
  if ((slash = strrchr(winproc_bin_dir, '\\')) != NULL)
    *slash = '\0';
}

/* Starts winproc_bin_dir\exe with `args`, its standard output and error on a pipe
 * and, when `with_input`, its standard input on another. */
bool winproc_start(struct winproc *p, const char *exe, const char *args, bool with_input) {
  SECURITY_ATTRIBUTES inherit = {sizeof(inherit), NULL, TRUE};
  HANDLE out_w = NULL, in_r = NULL;
  STARTUPINFOA si;
  PROCESS_INFORMATION pi;
  char path[MAX_PATH + 64], cmd[2 * MAX_PATH + 256];
  BOOL ok;

  memset(p, 0, sizeof(*p));
  snprintf(path, sizeof(path), "%s\\%s", winproc_bin_dir, exe);
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

/* Reads its output up to a newline, or up to the process's end, into buf.
 * The end of the process, not the end of the pipe: under Wine, a daemon the
 * program autostarted inherits its standard handles (Wine ignores
 * PROC_THREAD_ATTRIBUTE_HANDLE_LIST), so the pipe stays open as long as that
 * daemon runs. Waiting on the process handle between reads is how it sees
 * the end; the wait is the synchronisation, its 20 ms bound only how often
 * it looks at the pipe again. */
size_t winproc_read_line(struct winproc *p, char *buf, size_t cap) {
  size_t n = 0;
  DWORD got, avail;
  char c;
  ULONGLONG deadline = GetTickCount64() + WINPROC_LONG_MS;

  while (n + 1 < cap) {
    if (!PeekNamedPipe(p->out_r, NULL, 0, NULL, &avail, NULL))
      break; /* broken pipe: the end */
    if (avail == 0) {
      if (WaitForSingleObject(p->process, 20) != WAIT_OBJECT_0) {
        if (GetTickCount64() >= deadline)
          break; /* alive but silent for a minute: the caller's check fails */
        continue;
      }
      if (!PeekNamedPipe(p->out_r, NULL, 0, NULL, &avail, NULL) || avail == 0)
        break; /* it ended and said nothing more */
    }
    if (!ReadFile(p->out_r, &c, 1, &got, NULL) || got != 1)
      break;
    buf[n++] = c;
    if (c == '\n')
      break;
  }
  buf[n] = '\0';
  return n;
}

/* Waits for its end (bounded) and returns its exit code, -1 on timeout. */
long winproc_wait(struct winproc *p) {
  DWORD code = (DWORD)-1;
  if (WaitForSingleObject(p->process, WINPROC_LONG_MS) != WAIT_OBJECT_0 ||
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
bool winproc_bus_dir_make(char *dir, size_t cap) {
  char tmp[MAX_PATH], name[96];
  if (GetTempPathA(sizeof(tmp), tmp) == 0)
    return false;
  wintest_unique_name(name, sizeof(name), "");
  snprintf(dir, cap, "%s%s", tmp, name);
  return CreateDirectoryA(dir, NULL) && SetEnvironmentVariableA("SHMBUS_DIR", dir);
}

int winproc_bus_open(shmbus_bus **bus, const char *dir, int autostart, const char *name) {
  struct shmbus_bus_opts o;

  shmbus_bus_opts_init(&o);
  o.dir = dir;
  o.autostart = autostart;
  /* Wine on a loaded machine can be slow to answer: a bound, not a wait. */
  o.timeout_ms = WINPROC_LONG_MS;
  o.name = name;
  return shmbus_bus_open(bus, &o);
}

int winproc_daemon_start(struct winproc *d, const char *dir, bool foreground) {
  SECURITY_ATTRIBUTES inherit = {sizeof(inherit), NULL, TRUE};
  HANDLE ready = CreateEventW(&inherit, TRUE, FALSE, NULL);
  HANDLE both[2];
  char args[2 * MAX_PATH];
  DWORD w;

  if (ready == NULL)
    return -1;
  snprintf(args, sizeof(args), "%s--dir \"%s\" --ready-fd %llu", foreground ? "--foreground " : "",
           dir, (unsigned long long)(uintptr_t)ready);
  if (!winproc_start(d, "shmbusd.exe", args, false)) {
    CloseHandle(ready);
    return -1;
  }
  both[0] = ready;
  both[1] = d->process;
  w = WaitForMultipleObjects(2, both, FALSE, WINPROC_LONG_MS);
  CloseHandle(ready);
  return w == WAIT_OBJECT_0 ? 1 : w == WAIT_OBJECT_0 + 1 ? 0 : -1;
}

/* <prefix><dir>\shmbusd.sock, with \ / : turned into - after the prefix. */
static void winproc_endpoint_name(const char *prefix, const char *dir, char *out, size_t cap) {
  size_t i, n;

  n = (size_t)snprintf(out, cap, "%s", prefix);
  if (n >= cap)
    return;
  snprintf(out + n, cap - n, "%s\\shmbusd.sock", dir);
  for (i = n; out[i] != '\0'; i++)
    if (out[i] == '\\' || out[i] == '/' || out[i] == ':')
      out[i] = '-';
}

void winproc_pipe_name(const char *dir, char *out, size_t cap) {
  winproc_endpoint_name("\\\\.\\pipe\\shmbus-", dir, out, cap);
}

void winproc_stop_event_name(const char *dir, char *out, size_t cap) {
  winproc_endpoint_name("Local\\shmbus-stop-", dir, out, cap);
}

/* Stops the bus's daemon through the API and waits for its process. */
int winproc_daemon_stop(const char *dir) {
  struct shmbus_daemon_status st;
  shmbus_bus *bus = NULL;
  HANDLE d;
  int rv;

  ULONGLONG t0 = GetTickCount64();
  if ((rv = winproc_bus_open(&bus, dir, 0, NULL)) < 0) {
    wintest_note("connecting to stop the daemon: %s after %llu ms (%s)", shmbus_strerror(rv),
                 GetTickCount64() - t0, shmbus_bus_last_error(NULL));
    return rv;
  }
  if ((rv = shmbus_bus_daemon_status(bus, &st)) < 0) {
    wintest_note("asking the daemon's status: %s after %llu ms", shmbus_strerror(rv),
                 GetTickCount64() - t0);
    shmbus_bus_close(bus);
    return rv;
  }
  d = OpenProcess(SYNCHRONIZE, FALSE, st.pid);
  if ((rv = shmbus_bus_daemon_stop(bus)) < 0)
    wintest_note("asking daemon %lu to stop: %s", (unsigned long)st.pid, shmbus_strerror(rv));
  shmbus_bus_close(bus);
  if (d != NULL) {
    if (rv == 0 && WaitForSingleObject(d, WINPROC_LONG_MS) != WAIT_OBJECT_0) {
      wintest_note("daemon %lu agreed to stop and did not end", (unsigned long)st.pid);
      rv = -ETIMEDOUT;
    }
    CloseHandle(d);
  }
  return rv;
}

/* Removes the bus directory and what the daemon left in it (its lock). */
void winproc_bus_dir_remove(const char *dir) {
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

int winproc_bus_end(const char *dir) {
  int rv = winproc_daemon_stop(dir);
  winproc_bus_dir_remove(dir);
  return rv;
}
