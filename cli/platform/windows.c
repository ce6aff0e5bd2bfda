/* cli_os on Windows: see cli_os.h.
 *
 * Stopping: a console control handler (Ctrl+C, Ctrl+Break, the console
 * closing) takes the place of SIGINT and SIGTERM. It sets cli_stopping,
 * sets a manual-reset event (what cli_wait waits for) and writes a byte to
 * a loopback socket whose other end is cli_signal_fd's descriptor: libuv
 * polls sockets on Windows (uv_poll_init takes a C runtime descriptor
 * wrapping one), so the verbs that run a libuv loop watch it as they watch
 * the signal pipe on Linux. */
#include <winsock2.h>
#include <windows.h>

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli.h"
#include "platform/platform.h"

volatile sig_atomic_t cli_stopping = 0;

/* Set by the control handler; cli_wait waits for it. */
static HANDLE cli_stop_event;
/* The socket the control handler writes to. */
static SOCKET cli_stop_wsock = INVALID_SOCKET;

uint64_t cli_now_ns(void) {
  return shmbus__clock_mono_ns();
}

static BOOL WINAPI cli_on_ctrl(DWORD type) {
  char c = 1;

  if (type != CTRL_C_EVENT && type != CTRL_BREAK_EVENT && type != CTRL_CLOSE_EVENT)
    return FALSE;
  cli_stopping = 1;
  (void)SetEvent(cli_stop_event);
  (void)send(cli_stop_wsock, &c, 1, 0);
  return TRUE;
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

  if ((cli_stop_event = CreateEventW(NULL, TRUE, FALSE, NULL)) == NULL) {
    cli_err(verb, "CreateEvent: error %lu", (unsigned long)GetLastError());
    return -1;
  }
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
  cli_stop_wsock = s[1];
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

int cli_uv_poll_event(uv_loop_t *loop, uv_poll_t *handle, shmbus_os_fd_t ev) {
  (void)loop;
  (void)handle;
  (void)ev;
  return UV_ENOTSUP;
}

void cli_event_reset(shmbus_os_fd_t ev) {
  (void)ev;
}

/* ---- verbs not ported yet ------------------------------------------------ */

/* metrics (an HTTP listener, a textfile), record and play (MCAP files with
 * zstd and zlib, memory-mapped input) are left out of the Windows build. */
static int cli_not_ported(const char *verb) {
  cli_err(verb, "not available on Windows yet (see docs/windows.md)");
  return CLI_EXIT_ERROR;
}

int cli_metrics(int argc, char **argv) {
  (void)argc;
  (void)argv;
  return cli_not_ported("metrics");
}

int cli_record(int argc, char **argv) {
  (void)argc;
  (void)argv;
  return cli_not_ported("record");
}

int cli_play(int argc, char **argv) {
  (void)argc;
  (void)argv;
  return cli_not_ported("play");
}
