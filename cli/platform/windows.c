/* cli_os on Windows: see cli_os.h.
 *
 * Stopping: what SIGINT and SIGTERM do on Linux, two ways.
 *   - A console control handler (Ctrl+C, Ctrl+Break, the console closing),
 *     for the user at the console.
 *   - A named stop event, for another process (a script, shmbus-bench
 *     tools, a test), which on Linux sends SIGTERM: `cli_signal_fd` creates
 *     the manual-reset event `Local\shmbus-cli-stop-<pid>` (this process's
 *     id in decimal) with a descriptor granting this user alone, and
 *     refuses to run if it existed already (someone else made it and could
 *     set it or keep it from us). Another process of the same user in the
 *     same session opens it by the pid (EVENT_MODIFY_STATE) and sets it;
 *     console control events would not do: they reach only the processes
 *     that share the sender's console, and a process started without one
 *     (DETACHED_PROCESS, a service's child) has none. The event is made
 *     before the verb opens the bus, so a stopper that has seen the verb
 *     subscribe finds it; one that comes earlier retries while the process
 *     runs (docs/windows.md, "Stopping shmbus.exe from another process").
 * Both set cli_stopping, set the event (what cli_wait waits for) and write
 * a byte to a loopback socket whose other end is cli_signal_fd's
 * descriptor: libuv polls sockets on Windows (uv_poll_init takes a C
 * runtime descriptor wrapping one), so the verbs that run a libuv loop
 * watch it as they watch the signal pipe on Linux. The named event reaches
 * them through a registered wait (a thread-pool wait, as libuv cannot
 * wait on an event). */
#include <winsock2.h>
#include <windows.h>

#include <psapi.h>

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>
#include <wchar.h>

#include "cli.h"
#include "platform/loop.h"
#include "platform/platform.h"
/* The backend's wait on a control connection (a zero-byte overlapped
 * read), for cli_wait_events, which waits on more handles than
 * shmbus__wait_readable takes. */
#include "platform/windows/win.h"

volatile sig_atomic_t cli_stopping = 0;

/* The named stop event (manual-reset): set by a stopper or by the control
 * handler; cli_wait waits for it. */
static HANDLE cli_stop_event;
/* The registered wait on it that tells the verbs' loops. */
static HANDLE cli_stop_wait;
/* The socket the stop writes to. */
static SOCKET cli_stop_wsock = INVALID_SOCKET;

uint64_t cli_now_ns(void) {
  return shmbus__clock_mono_ns();
}

/* A stop, however it came: the flag, the event, a byte for the loops (on
 * a non-blocking socket: one byte is enough, a full socket means one is
 * there). Runs on the control handler's or the thread pool's thread. */
static void cli_stop_now(void) {
  char c = 1;

  cli_stopping = 1;
  (void)SetEvent(cli_stop_event);
  (void)send(cli_stop_wsock, &c, 1, 0);
}

static BOOL WINAPI cli_on_ctrl(DWORD type) {
  if (type != CTRL_C_EVENT && type != CTRL_BREAK_EVENT && type != CTRL_CLOSE_EVENT)
    return FALSE;
  cli_stop_now();
  return TRUE;
}

/* The registered wait's callback: another process set the stop event. */
static void CALLBACK cli_on_stop_event(void *arg, BOOLEAN timed_out) {
  (void)arg;
  if (!timed_out)
    cli_stop_now();
}

/* Creates the named stop event (see the top of this file); 0, or -1 after
 * saying why. */
static int cli_stop_event_make(const char *verb) {
  SECURITY_ATTRIBUTES sa;
  wchar_t name[64];
  DWORD err;
  int rv;

  (void)_snwprintf(name, sizeof(name) / sizeof(name[0]), L"Local\\shmbus-cli-stop-%lu",
                   (unsigned long)GetCurrentProcessId());
  name[sizeof(name) / sizeof(name[0]) - 1] = L'\0';
  if ((rv = shmbus__win_owner_only(&sa)) < 0) {
    cli_err(verb, "cannot make the stop event's descriptor: %s", strerror(-rv));
    return -1;
  }
  cli_stop_event = CreateEventW(&sa, TRUE, FALSE, name);
  err = GetLastError();
  LocalFree(sa.lpSecurityDescriptor);
  if (cli_stop_event == NULL) {
    cli_err(verb, "cannot create the stop event %ls: %s", name, strerror(-shmbus__win_error(err)));
    return -1;
  }
  /* Made by someone else before we ran (this process's id is new): it
   * could be set by them, or kept unset; not ours to use. */
  if (err == ERROR_ALREADY_EXISTS) {
    CloseHandle(cli_stop_event);
    cli_stop_event = NULL;
    cli_err(verb, "the stop event %ls exists already (another process made it): not starting",
            name);
    return -1;
  }
  if (!RegisterWaitForSingleObject(&cli_stop_wait, cli_stop_event, cli_on_stop_event, NULL,
                                   INFINITE, WT_EXECUTEONLYONCE)) {
    cli_err(verb, "RegisterWaitForSingleObject on the stop event: error %lu",
            (unsigned long)GetLastError());
    CloseHandle(cli_stop_event);
    cli_stop_event = NULL;
    return -1;
  }
  return 0;
}

/* A connected pair of loopback TCP sockets, not inherited by children:
 * s[0] reads, s[1] writes. The listener takes one connection and checks
 * that it is our own (another local process could connect first). */
static int cli_socket_pair(SOCKET s[2]) {
  struct sockaddr_in a, mine, peer;
  int alen = sizeof(a), mlen = sizeof(mine), plen = sizeof(peer);
  SOCKET l;
  BOOL yes = TRUE;
  u_long nb = 1;

  s[0] = s[1] = INVALID_SOCKET;
  l = WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0, WSA_FLAG_NO_HANDLE_INHERIT);
  if (l == INVALID_SOCKET)
    return -1;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (setsockopt(l, SOL_SOCKET, SO_EXCLUSIVEADDRUSE, (const char *)&yes, sizeof(yes)) != 0 ||
      bind(l, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(l, 1) != 0 ||
      getsockname(l, (struct sockaddr *)&a, &alen) != 0)
    goto fail;
  s[1] = WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0, WSA_FLAG_NO_HANDLE_INHERIT);
  if (s[1] == INVALID_SOCKET || connect(s[1], (struct sockaddr *)&a, sizeof(a)) != 0)
    goto fail;
  if ((s[0] = accept(l, (struct sockaddr *)&peer, &plen)) == INVALID_SOCKET ||
      getsockname(s[1], (struct sockaddr *)&mine, &mlen) != 0 || peer.sin_port != mine.sin_port ||
      peer.sin_addr.s_addr != mine.sin_addr.s_addr)
    goto fail;
  (void)SetHandleInformation((HANDLE)s[0], HANDLE_FLAG_INHERIT, 0);
  /* The handler must never block on a full socket. */
  if (ioctlsocket(s[1], FIONBIO, &nb) != 0)
    goto fail;
  closesocket(l);
  return 0;
fail:
  closesocket(l);
  if (s[0] != INVALID_SOCKET)
    closesocket(s[0]);
  if (s[1] != INVALID_SOCKET)
    closesocket(s[1]);
  s[0] = s[1] = INVALID_SOCKET;
  return -1;
}

int cli_signal_fd(const char *verb) {
  WSADATA wsa;
  SOCKET s[2];
  int fd;

  if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0 || cli_socket_pair(s) != 0) {
    cli_err(verb, "a loopback socket pair for Ctrl+C: error %d", WSAGetLastError());
    return -1;
  }
  if ((fd = _open_osfhandle((intptr_t)s[0], _O_RDONLY | _O_BINARY)) < 0) {
    cli_err(verb, "_open_osfhandle: %s", strerror(errno));
    closesocket(s[0]);
    closesocket(s[1]);
    return -1;
  }
  /* The socket first: a stopper may set the event as soon as it exists. */
  cli_stop_wsock = s[1];
  if (cli_stop_event_make(verb) < 0)
    return -1;
  if (!SetConsoleCtrlHandler(cli_on_ctrl, TRUE)) {
    cli_err(verb, "SetConsoleCtrlHandler: error %lu", (unsigned long)GetLastError());
    return -1;
  }
  return fd;
}

/* The number the daemon's rules and its own host layer use for this user
 * (shmbus__self_uid: the relative id of the token's user SID). */
uint32_t cli_os_uid(void) {
  return shmbus__self_uid();
}

uint32_t cli_os_gid(void) {
  return 0;
}

int cli_wait(int stop_fd, shmbus_bus *bus, int timeout_ms) {
  shmbus__os_handle h[2];
  unsigned n = 0;
  int bus_at = -1;
  int rv, ready = 0;

  if (stop_fd >= 0 && cli_stop_event != NULL)
    h[n++] = cli_stop_event;
  if (bus != NULL && shmbus_bus_fd(bus) != SHMBUS_OS_FD_INVALID) {
    bus_at = (int)n;
    h[n++] = shmbus_bus_fd(bus);
  }
  if (n == 0) {
    Sleep(timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms);
    return 0;
  }
  if ((rv = shmbus__wait_readable(h, n, timeout_ms)) < 0)
    return rv;
  if (stop_fd >= 0 && cli_stop_event != NULL && (rv & 1) != 0)
    ready |= CLI_WAIT_STOP;
  if (bus_at >= 0 && (rv & (1 << bus_at)) != 0)
    ready |= CLI_WAIT_BUS;
  return ready;
}

void cli_sleep_until_ns(uint64_t due_ns) {
  /* Windows sleeps in timer ticks (1 to 15.6 ms): the last millisecond
   * gives the CPU away until the time has come. */
  for (;;) {
    uint64_t now = cli_now_ns();
    if (cli_stopping || now >= due_ns)
      return;
    if (due_ns - now >= 2000000u)
      Sleep(1);
    else
      (void)SwitchToThread();
  }
}

ssize_t cli_getline(char **line, size_t *cap, FILE *f) {
  size_t n = 0;
  int c;

  if (*line == NULL || *cap == 0) {
    free(*line);
    *cap = 128;
    if ((*line = malloc(*cap)) == NULL) {
      *cap = 0;
      errno = ENOMEM;
      return -1;
    }
  }
  while ((c = getc(f)) != EOF) {
    if (n + 2 > *cap) {
      size_t ncap = *cap * 2;
      char *nl = realloc(*line, ncap);
      if (nl == NULL) {
        errno = ENOMEM;
        return -1;
      }
      *line = nl;
      *cap = ncap;
    }
    (*line)[n++] = (char)c;
    if (c == '\n')
      break;
  }
  (*line)[n] = '\0';
  return n == 0 ? -1 : (ssize_t)n;
}

int cli_open_read(const char *path) {
  if (strcmp(path, "-") == 0) {
    (void)_setmode(0, _O_BINARY);
    return 0;
  }
  return _open(path, _O_RDONLY | _O_BINARY | _O_NOINHERIT);
}

/* The library's watch of an event from a libuv loop (a registered wait
 * that wakes the loop: src/platform/windows/loop.c), first so that the
 * handle the close callback gets is the watch. The event is auto-reset:
 * the registered wait took the signal before the loop runs the callback,
 * so there is nothing to reset here. */
struct cli_event_watch {
  shmbus__watch watch;
  cli_event_cb cb;
  void *arg;
};

static void cli_event_on_watch(shmbus__watch *sw, int status, int events) {
  struct cli_event_watch *w = (struct cli_event_watch *)sw;

  (void)events;
  /* A failed wait (status < 0) also calls back: the caller reads the ring
   * and goes on reading every period, as without a watch. */
  (void)status;
  w->cb(w->arg);
}

static void cli_event_free(uv_handle_t *h) {
  free(h);
}

int cli_event_watch_start(uv_loop_t *loop, shmbus_os_fd_t ev, cli_event_cb cb, void *arg,
                          cli_event_watch **out) {
  struct cli_event_watch *w = malloc(sizeof(*w));
  int rv;

  if (w == NULL)
    return -ENOMEM;
  if ((rv = shmbus__watch_init(loop, &w->watch, ev)) < 0) {
    free(w);
    return rv;
  }
  w->cb = cb;
  w->arg = arg;
  if ((rv = shmbus__watch_start(&w->watch, SHMBUS__WATCH_EVENT, cli_event_on_watch)) < 0) {
    shmbus__watch_close(&w->watch, cli_event_free);
    return rv;
  }
  *out = w;
  return 0;
}

void cli_event_watch_close(cli_event_watch *w) {
  shmbus__watch_close(&w->watch, cli_event_free);
}

/* ---- record, play, metrics ---------------------------------------------- */

/* A Win32 error as a sentence (FormatMessage, without its line end), into
 * buf. */
static const char *win_errtext(DWORD err, char *buf, size_t cap) {
  DWORD n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, err,
                           MAKELANGID(LANG_ENGLISH, SUBLANG_DEFAULT), buf, (DWORD)cap, NULL);
  while (n > 0 &&
         (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == '.' || buf[n - 1] == ' '))
    buf[--n] = '\0';
  if (n == 0)
    snprintf(buf, cap, "error %lu", (unsigned long)err);
  return buf;
}

/* `path` (in the code page of the program's arguments, as the C runtime's
 * narrow calls take it) as a wide string, malloc'd; NULL with errno set. */
static wchar_t *win_wide(const char *path) {
  int n = MultiByteToWideChar(CP_ACP, 0, path, -1, NULL, 0);
  wchar_t *w;

  if (n <= 0) {
    errno = EINVAL;
    return NULL;
  }
  if ((w = malloc((size_t)n * sizeof(*w))) == NULL) {
    errno = ENOMEM;
    return NULL;
  }
  if (MultiByteToWideChar(CP_ACP, 0, path, -1, w, n) != n) {
    free(w);
    errno = EINVAL;
    return NULL;
  }
  return w;
}

int cli_wait_events(int stop_fd, shmbus_bus *bus, const shmbus_os_fd_t *ev, size_t n,
                    int timeout_ms) {
  HANDLE h[MAXIMUM_WAIT_OBJECTS];
  struct shmbus__win_conn_wait cw;
  DWORD nh = 0, w, timeout = timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms;
  int stop_at = -1, bus_at = -1, ev_at, ready = 0, rv = 0;
  bool armed = false;
  size_t nev = n;

  cw.pending = false;
  cw.ov.hEvent = NULL;
  if (stop_fd >= 0 && cli_stop_event != NULL) {
    stop_at = (int)nh;
    h[nh++] = cli_stop_event;
  }
  if (bus != NULL && shmbus_bus_fd(bus) != SHMBUS_OS_FD_INVALID) {
    /* The pipe is not signalled by a message: a zero-byte read is. */
    rv = shmbus__win_conn_wait_arm(shmbus_bus_fd(bus), &cw);
    armed = true;
    if (rv < 0)
      goto out;
    if (rv == 1) {
      ready |= CLI_WAIT_BUS;
      timeout = 0;
    } else {
      bus_at = (int)nh;
      h[nh++] = cw.ov.hEvent;
    }
    rv = 0;
  }
  ev_at = (int)nh;
  if (nev > MAXIMUM_WAIT_OBJECTS - nh) {
    /* The others are looked at when the wait ends, at least every 10 ms. */
    nev = MAXIMUM_WAIT_OBJECTS - nh;
    if (timeout > 10)
      timeout = 10;
  }
  for (size_t i = 0; i < nev; i++)
    h[nh++] = ev[i];
  if (nh == 0) {
    if (ready == 0)
      Sleep(timeout);
    goto out;
  }
  w = WaitForMultipleObjects(nh, h, FALSE, timeout);
  if (w == WAIT_FAILED) {
    rv = shmbus__win_error(GetLastError());
  } else if (w < WAIT_OBJECT_0 + nh) {
    /* The lowest ready index is reported; the others that are ready are
     * found without waiting (which resets the subscribers' auto-reset
     * events that fired: their rings are drained next). */
    for (DWORD i = w - WAIT_OBJECT_0; i < nh; i++) {
      if (i != w - WAIT_OBJECT_0 && WaitForSingleObject(h[i], 0) != WAIT_OBJECT_0)
        continue;
      if ((int)i == stop_at)
        ready |= CLI_WAIT_STOP;
      else if ((int)i == bus_at)
        ready |= CLI_WAIT_BUS;
      else if ((int)i >= ev_at)
        ready |= CLI_WAIT_EVENT;
    }
  } else if (w != WAIT_TIMEOUT) {
    rv = -EIO; /* an abandoned mutex: not a handle given here */
  }
out:
  if (armed)
    shmbus__win_conn_wait_disarm(shmbus_bus_fd(bus), &cw);
  return rv < 0 ? rv : ready;
}

uint64_t cli_realtime_ns(void) {
  FILETIME ft;
  uint64_t t;

  /* 100 ns units since 1601-01-01; the Unix epoch is 11644473600 s later. */
  GetSystemTimePreciseAsFileTime(&ft);
  t = ((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
  return (t - 116444736000000000ull) * 100u;
}

int cli_thread_start(pthread_t *t, void *(*fn)(void *), void *arg) {
  /* No signals to keep away from it: Ctrl+C comes to a handler thread. */
  return pthread_create(t, NULL, fn, arg);
}

int cli_open_write(const char *path) {
  wchar_t *w = win_wide(path);
  int fd;

  if (w == NULL)
    return -1;
  fd = _wopen(w, _O_WRONLY | _O_CREAT | _O_TRUNC | _O_BINARY | _O_NOINHERIT, _S_IREAD | _S_IWRITE);
  free(w);
  return fd;
}

int cli_fsync(int fd) {
  HANDLE h = (HANDLE)_get_osfhandle(fd);

  if (h == INVALID_HANDLE_VALUE) {
    errno = EBADF;
    return -1;
  }
  /* On a pipe FlushFileBuffers waits for the reader: only files. */
  if (GetFileType(h) != FILE_TYPE_DISK) {
    errno = EINVAL;
    return -1;
  }
  if (!FlushFileBuffers(h)) {
    errno = -shmbus__win_error(GetLastError());
    return -1;
  }
  return 0;
}

int cli_map_file(const char *verb, const char *path, const void **map, size_t *len) {
  HANDLE f = INVALID_HANDLE_VALUE, m = NULL;
  LARGE_INTEGER size;
  wchar_t *w;
  void *v;
  char why[256];

  if ((w = win_wide(path)) == NULL) {
    cli_err(verb, "cannot open %s: %s", path, strerror(errno));
    return -1;
  }
  /* A recorder may still be writing it: share everything. */
  f = CreateFileW(w, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                  OPEN_EXISTING, FILE_ATTRIBUTE_NORMAL, NULL);
  free(w);
  if (f == INVALID_HANDLE_VALUE) {
    cli_err(verb, "cannot open %s: %s", path, win_errtext(GetLastError(), why, sizeof(why)));
    return -1;
  }
  if (GetFileType(f) != FILE_TYPE_DISK) {
    cli_err(verb, "%s is not a regular file", path);
    goto fail;
  }
  if (!GetFileSizeEx(f, &size)) {
    cli_err(verb, "cannot open %s: %s", path, win_errtext(GetLastError(), why, sizeof(why)));
    goto fail;
  }
  if ((uint64_t)size.QuadPart > SIZE_MAX || size.QuadPart == 0) {
    cli_err(verb, "%s is %s", path, size.QuadPart == 0 ? "empty" : "too large to map");
    goto fail;
  }
  /* The view keeps the section, and the section the file. */
  if ((m = CreateFileMappingW(f, NULL, PAGE_READONLY, 0, 0, NULL)) == NULL ||
      (v = MapViewOfFile(m, FILE_MAP_READ, 0, 0, (SIZE_T)size.QuadPart)) == NULL) {
    cli_err(verb, "cannot map %s: %s", path, win_errtext(GetLastError(), why, sizeof(why)));
    goto fail;
  }
  CloseHandle(m);
  CloseHandle(f);
  *map = v;
  *len = (size_t)size.QuadPart;
  return 0;

fail:
  if (m != NULL)
    CloseHandle(m);
  CloseHandle(f);
  return -1;
}

void cli_unmap_file(const void *map, size_t len) {
  (void)len;
  if (map != NULL)
    (void)UnmapViewOfFile(map);
}

FILE *cli_memstream(char **buf, size_t *len) {
  wchar_t dir[MAX_PATH + 1], name[MAX_PATH + 1];
  FILE *f;
  DWORD n;

  *buf = NULL;
  *len = 0;
  /* The C runtime has no open_memstream: a temporary file, deleted when
   * it is closed (the "D" mode), which the cache mostly keeps in memory
   * ("T"). */
  n = GetTempPathW(MAX_PATH + 1, dir);
  if (n == 0 || n > MAX_PATH || GetTempFileNameW(dir, L"shm", 0, name) == 0)
    return NULL;
  if ((f = _wfopen(name, L"w+bTD")) == NULL)
    (void)DeleteFileW(name);
  return f;
}

int cli_memstream_close(FILE *f, char **buf, size_t *len) {
  __int64 n;
  char *p = NULL;

  *buf = NULL;
  *len = 0;
  if (fflush(f) != 0 || ferror(f) || (n = _ftelli64(f)) < 0 || (uint64_t)n >= SIZE_MAX ||
      fseek(f, 0, SEEK_SET) != 0 || (p = malloc((size_t)n + 1)) == NULL ||
      fread(p, 1, (size_t)n, f) != (size_t)n) {
    free(p);
    fclose(f);
    return -1;
  }
  p[n] = '\0';
  *buf = p;
  *len = (size_t)n;
  return fclose(f) == 0 ? 0 : -1;
}

bool cli_process_resources(uint32_t pid, uint64_t *rss, uint64_t *fds) {
  PROCESS_MEMORY_COUNTERS pmc;
  DWORD handles = 0;
  HANDLE p;
  bool ok;

  /* Windows keeps no descriptor table: the handle count takes its place
   * (clients' pipes, sections, events, and the rest a process holds). */
  p = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_VM_READ, FALSE, pid);
  if (p == NULL)
    return false;
  memset(&pmc, 0, sizeof(pmc));
  pmc.cb = sizeof(pmc);
  ok = K32GetProcessMemoryInfo(p, &pmc, sizeof(pmc)) && GetProcessHandleCount(p, &handles);
  CloseHandle(p);
  if (!ok)
    return false;
  *rss = (uint64_t)pmc.WorkingSetSize;
  *fds = handles;
  return true;
}

int cli_write_file_atomic(const char *verb, const char *path, const void *data, size_t len) {
  static unsigned counter;
  const char *p = data;
  char tmp[4096], why[256];
  wchar_t *wtmp = NULL, *wpath = NULL;
  HANDLE h = INVALID_HANDLE_VALUE;
  DWORD err = 0;
  size_t off = 0;

  /* A name of this process's own beside the file (the same folder: the
   * rename stays on one volume). */
  for (int tries = 0; tries < 100 && h == INVALID_HANDLE_VALUE; tries++) {
    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%lu.%u", path, (unsigned long)GetCurrentProcessId(),
                 counter++) >= (int)sizeof(tmp)) {
      cli_err(verb, "%s: path too long", path);
      return -ENAMETOOLONG;
    }
    free(wtmp);
    if ((wtmp = win_wide(tmp)) == NULL) {
      cli_err(verb, "cannot create a file beside %s: %s", path, strerror(errno));
      return -EINVAL;
    }
    h = CreateFileW(wtmp, GENERIC_WRITE, 0, NULL, CREATE_NEW, FILE_ATTRIBUTE_NORMAL, NULL);
    if (h == INVALID_HANDLE_VALUE && (err = GetLastError()) != ERROR_FILE_EXISTS)
      break;
  }
  if (h == INVALID_HANDLE_VALUE) {
    cli_err(verb, "cannot create a file beside %s: %s", path, win_errtext(err, why, sizeof(why)));
    free(wtmp);
    return shmbus__win_error(err);
  }
  while (off < len) {
    DWORD want = len - off > (1u << 30) ? (1u << 30) : (DWORD)(len - off), done = 0;
    if (!WriteFile(h, p + off, want, &done, NULL) || done == 0)
      goto fail;
    off += done;
  }
  if (!FlushFileBuffers(h))
    goto fail;
  if (!CloseHandle(h)) {
    h = INVALID_HANDLE_VALUE;
    goto fail;
  }
  h = INVALID_HANDLE_VALUE;
  if ((wpath = win_wide(path)) == NULL) {
    SetLastError(ERROR_INVALID_NAME);
    goto fail;
  }
  /* Replaces the old file in one step; write-through: done when the move
   * is on the disk. */
  if (!MoveFileExW(wtmp, wpath, MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH))
    goto fail;
  free(wtmp);
  free(wpath);
  return 0;

fail:
  err = GetLastError();
  cli_err(verb, "cannot write %s: %s", path, win_errtext(err, why, sizeof(why)));
  if (h != INVALID_HANDLE_VALUE)
    CloseHandle(h);
  (void)DeleteFileW(wtmp);
  free(wtmp);
  free(wpath);
  return -EIO;
}

void cli_stdout_binary(void) {
  (void)fflush(stdout);
  (void)_setmode(_fileno(stdout), _O_BINARY);
}
