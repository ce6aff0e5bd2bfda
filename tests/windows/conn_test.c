/* conn_test: the control channel of the Windows backend (conn.c): named
 * pipes in message mode between real processes, handles passed both ways
 * (pulled by the daemon's end, pushed by it), the peer's identity, waiting
 * on a connection, sending without blocking, malformed messages refused
 * with nothing leaked, and starting a daemon with its ready signal.
 *
 * The "daemon" here is this program holding the server end of a pipe made
 * by shmbus__win_pipe_create; the client is a child process using the
 * library's calls. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include "platform/platform.h"
#include "platform/windows/win.h"
#include "wintest.h"

#define SIZE (64u * 1024u)
#define ROUNDS 1000
/* A bound for a broken test, never a synchronisation. */
#define LONG_MS 60000

/* What a message of the numbered stream carries: its length and bytes. */
static size_t msg_len(unsigned seq) {
  return 1 + (seq * 37u) % 4000u;
}
static uint8_t msg_byte(unsigned seq, size_t i) {
  return (uint8_t)(seq * 7u + i * 13u + 1u);
}
static uint8_t pattern(size_t i) {
  return (uint8_t)(i * 29u + 3u);
}

static void endpoint(char *out, size_t cap) {
  char name[96];
  wintest_unique_name(name, sizeof(name), "");
  snprintf(out, cap, "C:\\%s\\shmbusd.sock", name);
}

/* Waits (bounded) until a client connects to the server end `pipe`. */
static int server_accept(HANDLE pipe) {
  OVERLAPPED ov;
  DWORD n, err;
  int ok = 0;

  memset(&ov, 0, sizeof(ov));
  ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
  if (ConnectNamedPipe(pipe, &ov)) {
    ok = 1;
  } else if ((err = GetLastError()) == ERROR_PIPE_CONNECTED) {
    ok = 1;
  } else if (err == ERROR_IO_PENDING) {
    if (WaitForSingleObject(ov.hEvent, LONG_MS) == WAIT_OBJECT_0)
      ok = GetOverlappedResult(pipe, &ov, &n, FALSE) ? 1 : 0;
    else {
      CancelIoEx(pipe, &ov);
      (void)GetOverlappedResult(pipe, &ov, &n, TRUE);
    }
  }
  CloseHandle(ov.hEvent);
  return ok;
}

/* A connected pair in this process: *srv the daemon's end, *cli ours. */
static int pair(HANDLE *srv, HANDLE *cli) {
  char ep[160];
  endpoint(ep, sizeof(ep));
  if (shmbus__win_pipe_create(ep, true, false, srv) != 0)
    return 0;
  if (shmbus__unix_connect(ep, cli) != 0) {
    CloseHandle(*srv);
    return 0;
  }
  return server_accept(*srv);
}

/* Receives one message, waiting (bounded) for it. */
static int recv_wait(HANDLE conn, void *buf, size_t cap, HANDLE *h, unsigned max, unsigned *nh,
                     bool *cut) {
  int rv;
  for (;;) {
    rv = shmbus__sock_recv(conn, buf, cap, h, max, nh, cut);
    if (rv != -EAGAIN)
      return rv;
    if ((rv = shmbus__wait_readable(&conn, 1, LONG_MS)) <= 0)
      return rv == 0 ? -ETIMEDOUT : rv;
  }
}

/* Writes raw bytes on a connection (overlapped), as a hostile peer would. */
static int raw_write(HANDLE h, const void *buf, DWORD len) {
  OVERLAPPED ov;
  DWORD n = 0;
  int ok;
  memset(&ov, 0, sizeof(ov));
  ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
  ok = (WriteFile(h, buf, len, NULL, &ov) || GetLastError() == ERROR_IO_PENDING) &&
       GetOverlappedResult(h, &ov, &n, TRUE) && n == len;
  CloseHandle(ov.hEvent);
  return ok;
}

/* The access a handle was granted (NtQueryObject's basic information), or
 * 0. */
static DWORD handle_access(HANDLE h) {
  typedef LONG(NTAPI * query_fn)(HANDLE, int, void *, ULONG, ULONG *);
  query_fn query =
      (query_fn)(void (*)(void))GetProcAddress(GetModuleHandleA("ntdll.dll"), "NtQueryObject");
  ULONG basic[14], got = 0;
  return query != NULL && query(h, 0, basic, sizeof(basic), &got) >= 0 ? basic[1] : 0;
}

/* ---- the children ----------------------------------------------------------- */

/* child client ENDPOINT SERVER_PID: connects, checks who serves, sends
 * "hello" with a section (pattern) and an event, receives "welcome" with
 * the server's event and signals it, sends ROUNDS numbered messages, and
 * closes. Exit 0, or the failed step. */
static int child_client(const char *ep, const char *server_pid) {
  struct shmbus__peer_id id;
  shmbus__conn_handle c;
  shmbus__shm_handle shm;
  shmbus__event_handle ev;
  shmbus__os_handle hs[2], got[4];
  static uint8_t buf[4096];
  unsigned nh, seq;
  bool cut;
  uint8_t *p;
  size_t i;
  int rv;

  if (shmbus__unix_connect(ep, &c) != 0)
    return 10;
  if (shmbus__peer_identity(c, &id) != 0 || id.pid != atoi(server_pid))
    return 11;
  if (!shmbus__peer_trusted(&id))
    return 12;
  if (shmbus__shm_create("test", SIZE, &shm) != 0 || shmbus__shm_map(shm, SIZE, true, (void **)&p))
    return 13;
  for (i = 0; i < SIZE; i++)
    p[i] = pattern(i);
  if (shmbus__event_open(&ev) != 0)
    return 14;
  hs[0] = shm;
  hs[1] = ev;
  if (shmbus__sock_send(c, "hello", 5, hs, 2) != 5)
    return 15;
  /* Ours to close at once, as after sendmsg. */
  shmbus__fd_close(shm);
  shmbus__fd_close(ev);
  rv = recv_wait(c, buf, sizeof(buf), got, 4, &nh, &cut);
  if (rv != 7 || memcmp(buf, "welcome", 7) != 0 || nh != 1 || cut)
    return 16;
  if (!shmbus__event_check(got[0]) || shmbus__event_signal(got[0]) != 0)
    return 17;
  shmbus__fd_close(got[0]);
  for (seq = 0; seq < ROUNDS; seq++) {
    for (i = 0; i < msg_len(seq); i++)
      buf[i] = msg_byte(seq, i);
    while ((rv = shmbus__sock_send(c, buf, msg_len(seq), NULL, 0)) == -EAGAIN)
      Sleep(0); /* the server reads; yield, this is not a wait for an event */
    if (rv != (int)msg_len(seq))
      return 18;
  }
  shmbus__shm_unmap(p, SIZE);
  shmbus__fd_close(c);
  return 0;
}

/* child fake-daemon MODE ... --ready-fd N: what shmbus__daemon_spawn
 * starts. ready: sets the event and exits 0; fail: exits 7; silent: exits
 * 0 without it; hang NAME: waits for the named event NAME (bounded);
 * args A...: sets it if its arguments are exactly the expected ones. */
static int child_fake_daemon(int argc, char **argv) {
  static const char *const expect[] = {"a b", "c\"d", "e\\", "\\\\x\"", "", "tail\\\\"};
  HANDLE ready, stop;
  int i;

  if (argc < 3 || strcmp(argv[argc - 2], "--ready-fd") != 0)
    return 20;
  ready = (HANDLE)(uintptr_t)strtoull(argv[argc - 1], NULL, 10);
  if (strcmp(argv[1], "fail") == 0)
    return 7;
  if (strcmp(argv[1], "silent") == 0)
    return 0;
  if (strcmp(argv[1], "hang") == 0) {
    stop = OpenEventA(SYNCHRONIZE, FALSE, argv[2]);
    if (stop == NULL)
      return 21;
    return WaitForSingleObject(stop, LONG_MS) == WAIT_OBJECT_0 ? 0 : 22;
  }
  if (strcmp(argv[1], "args") == 0) {
    if (argc != 2 + 6 + 2)
      return 23;
    for (i = 0; i < 6; i++)
      if (strcmp(argv[2 + i], expect[i]) != 0)
        return 24 + i;
  }
  return SetEvent(ready) ? 0 : 30;
}

static int child_main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[0], "client") == 0)
    return child_client(argv[1], argv[2]);
  if (argc >= 1 && strcmp(argv[0], "fake-daemon") == 0)
    return child_fake_daemon(argc, argv);
  return 2;
}

/* ---- the tests -------------------------------------------------------------- */

static int test_connect_missing(void) {
  char ep[400];
  shmbus__conn_handle c;

  endpoint(ep, sizeof(ep));
  WT_CHECK(shmbus__unix_connect(ep, &c) == -ENOENT, "no daemon: -ENOENT");
  memset(ep, 'x', 300);
  ep[300] = '\0';
  WT_CHECK(shmbus__unix_connect(ep, &c) == -ENAMETOOLONG, "a long endpoint");
  return WINTEST_PASS;
}

/* A second first instance fails: another daemon, or a squatter, holds the
 * name. Wine 8 does not enforce FILE_FLAG_FIRST_PIPE_INSTANCE. */
static int test_first_pipe_instance(void) {
  char ep[160];
  HANDLE a, b;
  int rv;

  endpoint(ep, sizeof(ep));
  WT_CHECK(shmbus__win_pipe_create(ep, true, false, &a) == 0, "create");
  rv = shmbus__win_pipe_create(ep, true, false, &b);
  if (rv == 0 && wintest_under_wine()) {
    wintest_note("a second FILE_FLAG_FIRST_PIPE_INSTANCE of a name: created");
    CloseHandle(a);
    CloseHandle(b);
    return WINTEST_WINE_ONLY_SKIP;
  }
  WT_CHECK(rv == -EADDRINUSE, "second first instance: %d", rv);
  WT_CHECK(shmbus__win_pipe_create(ep, false, false, &b) == 0, "second instance");
  CloseHandle(a);
  CloseHandle(b);
  return WINTEST_PASS;
}

/* A client process and this "daemon": identities both ways, a section and
 * an event pulled from the client, an event pushed to it, then ROUNDS
 * messages each checked byte by byte, then the client's end closing. */
static int test_exchange_with_client_process(void) {
  char ep[160], args[300];
  static uint8_t buf[4096];
  struct shmbus__peer_id id, self;
  shmbus__os_handle got[4], hs[1];
  shmbus__event_handle mine;
  HANDLE srv, child;
  DWORD child_pid;
  uint64_t size = 0;
  const uint8_t *p;
  unsigned nh, seq;
  bool cut;
  size_t i;
  int rv;

  endpoint(ep, sizeof(ep));
  WT_CHECK(shmbus__win_pipe_create(ep, true, false, &srv) == 0, "create");
  snprintf(args, sizeof(args), "client %s %lu", ep, (unsigned long)GetCurrentProcessId());
  WT_CHECK((child = wintest_spawn(args, &child_pid)) != NULL, "spawn");
  WT_CHECK(server_accept(srv), "accept");
  WT_CHECK(shmbus__peer_identity(srv, &id) == 0, "peer identity");
  WT_CHECK(id.pid == (int32_t)child_pid, "peer pid %d, child %lu", id.pid,
           (unsigned long)child_pid);
  WT_CHECK(shmbus__win_self_identity(&self) == 0, "self");
  WT_CHECK(id.sid_len == self.sid_len && memcmp(id.sid, self.sid, id.sid_len) == 0, "peer SID");
  WT_CHECK(shmbus__peer_trusted(&id), "trusted");

  rv = recv_wait(srv, buf, sizeof(buf), got, 4, &nh, &cut);
  WT_CHECK(rv == 5 && memcmp(buf, "hello", 5) == 0 && nh == 2 && !cut, "hello: %d, %u", rv, nh);
  WT_CHECK(shmbus__shm_check(got[0], SIZE, &size) == 0 && size == SIZE, "section checked");
  WT_CHECK(shmbus__shm_map(got[0], SIZE, false, (void **)&p) == 0, "map");
  for (i = 0; i < SIZE; i++)
    WT_CHECK(p[i] == pattern(i), "byte %zu", i);
  shmbus__shm_unmap((void *)p, SIZE);
  WT_CHECK(shmbus__event_check(got[1]), "event checked");
  shmbus__fd_close(got[0]);
  shmbus__fd_close(got[1]);

  WT_CHECK(shmbus__event_open(&mine) == 0, "event");
  hs[0] = mine;
  WT_CHECK(shmbus__sock_send(srv, "welcome", 7, hs, 1) == 7, "welcome");
  WT_CHECK(shmbus__wait_readable(&mine, 1, LONG_MS) == 1, "the client signalled our event");
  shmbus__fd_close(mine);

  for (seq = 0; seq < ROUNDS; seq++) {
    rv = recv_wait(srv, buf, sizeof(buf), got, 4, &nh, &cut);
    WT_CHECK(rv == (int)msg_len(seq) && nh == 0 && !cut, "message %u: %d", seq, rv);
    for (i = 0; i < msg_len(seq); i++)
      WT_CHECK(buf[i] == msg_byte(seq, i), "message %u byte %zu", seq, i);
  }
  rv = recv_wait(srv, buf, sizeof(buf), got, 4, &nh, &cut);
  WT_CHECK(rv == 0, "end of the connection: %d", rv);
  WT_CHECK(wintest_join(child) == 0, "client failed");
  CloseHandle(srv);
  return WINTEST_PASS;
}

/* A send that does not fit says -EAGAIN and writes nothing: every message
 * before it arrives whole and in order, and sending works again after the
 * reader caught up. */
static int test_send_full_pipe(void) {
  static uint8_t buf[4096];
  HANDLE srv, cli, h[1];
  unsigned sent, seq, nh;
  bool cut;
  size_t i;
  int rv;

  WT_CHECK(pair(&srv, &cli), "pair");
  for (sent = 0; sent < 10000; sent++) {
    for (i = 0; i < 3000; i++)
      buf[i] = msg_byte(sent, i);
    if ((rv = shmbus__sock_send(cli, buf, 3000, NULL, 0)) == -EAGAIN)
      break;
    WT_CHECK(rv == 3000, "send %u: %d", sent, rv);
  }
  WT_CHECK(sent > 0 && sent < 10000, "the pipe never filled (%u)", sent);
  wintest_note("%u messages of 3000 bytes fit the pipe", sent);
  for (seq = 0; seq < sent; seq++) {
    rv = shmbus__sock_recv(srv, buf, sizeof(buf), h, 1, &nh, &cut);
    WT_CHECK(rv == 3000 && !cut, "message %u: %d", seq, rv);
    for (i = 0; i < 3000; i++)
      WT_CHECK(buf[i] == msg_byte(seq, i), "message %u byte %zu", seq, i);
  }
  WT_CHECK(shmbus__sock_recv(srv, buf, sizeof(buf), h, 1, &nh, &cut) == -EAGAIN, "more came");
  WT_CHECK(shmbus__sock_send(cli, "again", 5, NULL, 0) == 5, "send after");
  WT_CHECK(shmbus__sock_recv(srv, buf, sizeof(buf), h, 1, &nh, &cut) == 5, "recv after");
  /* A message longer than the receiver's buffer is cut, the rest dropped. */
  WT_CHECK(shmbus__sock_send(cli, buf, 3000, NULL, 0) == 3000, "long");
  WT_CHECK(shmbus__sock_send(cli, "next", 4, NULL, 0) == 4, "next");
  WT_CHECK(shmbus__sock_recv(srv, buf, 100, h, 1, &nh, &cut) == 100 && cut, "cut");
  WT_CHECK(shmbus__sock_recv(srv, buf, sizeof(buf), h, 1, &nh, &cut) == 4 && !cut &&
               memcmp(buf, "next", 4) == 0,
           "the next message whole");
  WT_CHECK(shmbus__sock_send(cli, buf, 20000, NULL, 0) == -EINVAL, "over the largest message");
  CloseHandle(cli);
  WT_CHECK(shmbus__sock_recv(srv, buf, sizeof(buf), h, 1, &nh, &cut) == 0, "peer gone: 0");
  WT_CHECK(shmbus__sock_send(srv, "x", 1, NULL, 0) == -EPIPE, "send to a gone peer");
  CloseHandle(srv);
  return WINTEST_PASS;
}

/* Waiting on a connection: nothing there times out; a message, an event
 * beside it, and the peer's going each wake the wait. */
static int test_wait_on_connection(void) {
  HANDLE srv, cli, both[2], h[1];
  shmbus__event_handle ev;
  char buf[16];
  unsigned nh;
  bool cut;

  WT_CHECK(pair(&srv, &cli), "pair");
  WT_CHECK(shmbus__wait_readable(&srv, 1, 50) == 0, "nothing there, yet readable");
  WT_CHECK(shmbus__event_open(&ev) == 0, "event");
  both[0] = ev;
  both[1] = srv;
  WT_CHECK(shmbus__event_signal(ev) == 0, "signal");
  WT_CHECK(shmbus__wait_readable(both, 2, LONG_MS) == 1, "the event alone");
  WT_CHECK(shmbus__sock_send(cli, "m", 1, NULL, 0) == 1, "send");
  WT_CHECK(shmbus__wait_readable(both, 2, LONG_MS) == 2, "the connection alone");
  /* The wait took nothing: the message is still there. */
  WT_CHECK(shmbus__wait_readable(&srv, 1, 0) == 1, "still readable");
  WT_CHECK(shmbus__sock_recv(srv, buf, sizeof(buf), h, 1, &nh, &cut) == 1, "recv");
  WT_CHECK(shmbus__wait_readable(&srv, 1, 0) == 0, "read, yet readable");
  /* The other direction too (the client waits for the daemon's reply). */
  WT_CHECK(shmbus__sock_send(srv, "r", 1, NULL, 0) == 1, "reply");
  WT_CHECK(shmbus__wait_readable(&cli, 1, LONG_MS) == 1, "client woken");
  WT_CHECK(shmbus__sock_recv(cli, buf, sizeof(buf), h, 1, &nh, &cut) == 1, "client recv");
  CloseHandle(cli);
  WT_CHECK(shmbus__wait_readable(&srv, 1, LONG_MS) == 1, "hang-up wakes");
  WT_CHECK(shmbus__sock_recv(srv, buf, sizeof(buf), h, 1, &nh, &cut) == 0, "hang-up reads 0");
  shmbus__fd_close(ev);
  CloseHandle(srv);
  return WINTEST_PASS;
}

struct raw_msg {
  uint32_t magic, len;
  uint8_t mode, nh;
  uint16_t reserved;
  uint32_t reserved2;
  uint64_t values[18];
  char payload[8];
};

/* Sends `m` with `nv` values and `plen` bytes of payload as raw bytes. */
static int raw_send(HANDLE cli, struct raw_msg *m, unsigned nv, unsigned plen) {
  char buf[sizeof(*m)];
  size_t n = 16 + nv * 8u;
  memcpy(buf, m, 16);
  memcpy(buf + 16, m->values, nv * 8u);
  memcpy(buf + n, m->payload, plen);
  return raw_write(cli, buf, (DWORD)(n + plen));
}

/* Malformed messages from a hostile client are refused (-EPROTO), take
 * and leave no handle, do not close the daemon's own handles they name,
 * and the connection reads the next good message. */
static int test_malformed_refused(void) {
  HANDLE srv, cli, got[4], ev, weak, mutex, copy, self = GetCurrentProcess();
  struct raw_msg m;
  DWORD before, after, granted;
  char buf[64];
  unsigned nh, k;
  bool cut;
  int rv;

  WT_CHECK(pair(&srv, &cli), "pair");
  WT_CHECK(shmbus__event_open(&ev) == 0, "event");
  WT_CHECK((mutex = CreateMutexW(NULL, FALSE, NULL)) != NULL, "mutex");
  WT_CHECK(DuplicateHandle(self, ev, self, &weak, SYNCHRONIZE, FALSE, 0), "weak event");
  WT_CHECK(GetProcessHandleCount(self, &before), "handle count");
  for (k = 0; k < 11; k++) {
    memset(&m, 0, sizeof(m));
    m.magic = 0x57424853u;
    m.len = 2;
    memcpy(m.payload, "ok", 2);
    switch (k) {
    case 0: /* too short for a header */
      WT_CHECK(raw_write(cli, "abc", 3), "write");
      break;
    case 1: /* not our magic */
      m.magic = 0x12345678u;
      WT_CHECK(raw_send(cli, &m, 0, 2), "write");
      break;
    case 2: /* more handles than a message carries */
      m.mode = 2;
      m.nh = 17;
      WT_CHECK(raw_send(cli, &m, 17, 2), "write");
      break;
    case 3: /* a length that is not the message's */
      m.len = 5;
      WT_CHECK(raw_send(cli, &m, 0, 2), "write");
      break;
    case 4: /* handles counted but no mode to take them */
      m.nh = 1;
      m.values[0] = (uint64_t)(uintptr_t)ev;
      WT_CHECK(raw_send(cli, &m, 1, 2), "write");
      break;
    case 5: /* "pushed" into the daemon: a value naming the daemon's own event */
      m.mode = 1;
      m.nh = 1;
      m.values[0] = (uint64_t)(uintptr_t)ev;
      WT_CHECK(raw_send(cli, &m, 1, 2), "write");
      break;
    case 6: /* a value that is no handle of the sender */
      m.mode = 2;
      m.nh = 1;
      m.values[0] = 0x7ffff0u;
      WT_CHECK(raw_send(cli, &m, 1, 2), "write");
      break;
    case 7: /* a handle of the wrong type: a mutex (an in-flight copy) */
      WT_CHECK(DuplicateHandle(self, mutex, self, &copy, 0, FALSE, DUPLICATE_SAME_ACCESS), "dup");
      m.mode = 2;
      m.nh = 1;
      m.values[0] = (uint64_t)(uintptr_t)copy;
      WT_CHECK(raw_send(cli, &m, 1, 2), "write");
      break;
    case 8: /* an event without the access to query or signal it */
      WT_CHECK(DuplicateHandle(self, weak, self, &copy, 0, FALSE, DUPLICATE_SAME_ACCESS), "dup");
      m.mode = 2;
      m.nh = 1;
      m.values[0] = (uint64_t)(uintptr_t)copy;
      WT_CHECK(raw_send(cli, &m, 1, 2), "write");
      break;
    case 9: /* a good event, then a pipe handle: all or nothing */
      WT_CHECK(DuplicateHandle(self, ev, self, &copy, 0, FALSE, DUPLICATE_SAME_ACCESS), "dup");
      m.values[0] = (uint64_t)(uintptr_t)copy;
      WT_CHECK(DuplicateHandle(self, cli, self, &copy, 0, FALSE, DUPLICATE_SAME_ACCESS), "dup");
      m.values[1] = (uint64_t)(uintptr_t)copy;
      m.mode = 2;
      m.nh = 2;
      WT_CHECK(raw_send(cli, &m, 2, 2), "write");
      break;
    case 10: /* reserved bits set */
      m.reserved = 1;
      WT_CHECK(raw_send(cli, &m, 0, 2), "write");
      break;
    }
    rv = recv_wait(srv, buf, sizeof(buf), got, 4, &nh, &cut);
    WT_CHECK(rv == -EPROTO && nh == 0, "case %u: %d, %u handles", k, rv, nh);
    WT_CHECK(shmbus__event_check(ev), "case %u closed the daemon's own event", k);
    WT_CHECK(GetProcessHandleCount(self, &after), "handle count");
    WT_CHECK(after == before, "case %u: %lu handles, %lu before", k, (unsigned long)after,
             (unsigned long)before);
    /* The connection goes on. */
    WT_CHECK(shmbus__sock_send(cli, "good", 4, NULL, 0) == 4, "good");
    rv = recv_wait(srv, buf, sizeof(buf), got, 4, &nh, &cut);
    WT_CHECK(rv == 4 && memcmp(buf, "good", 4) == 0, "case %u: the next message %d", k, rv);
  }
  /* An empty message is skipped (it never is one of ours). */
  WT_CHECK(raw_write(cli, "", 0), "empty");
  WT_CHECK(shmbus__sock_send(cli, "good", 4, NULL, 0) == 4, "good");
  rv = recv_wait(srv, buf, sizeof(buf), got, 4, &nh, &cut);
  WT_CHECK(rv == 4 && memcmp(buf, "good", 4) == 0, "after an empty message: %d", rv);
  /* A client end takes nothing by pulling: its daemon pushes. */
  memset(&m, 0, sizeof(m));
  m.magic = 0x57424853u;
  m.mode = 2;
  m.nh = 1;
  m.values[0] = (uint64_t)(uintptr_t)ev;
  WT_CHECK(raw_send(srv, &m, 1, 0), "write");
  rv = recv_wait(cli, buf, sizeof(buf), got, 4, &nh, &cut);
  WT_CHECK(rv == -EPROTO && nh == 0, "a pull from the daemon: %d", rv);
  WT_CHECK(shmbus__event_check(ev), "the pull closed our event");
  /* A "daemon" pushing a value that is not a section or an event (here a
   * mutex of the client's): refused, and the client's mutex left open. */
  m.mode = 1;
  m.values[0] = (uint64_t)(uintptr_t)mutex;
  WT_CHECK(raw_send(srv, &m, 1, 0), "write");
  rv = recv_wait(cli, buf, sizeof(buf), got, 4, &nh, &cut);
  WT_CHECK(rv == -EPROTO && nh == 0, "a pushed mutex: %d", rv);
  WT_CHECK(WaitForSingleObject(mutex, 0) == WAIT_OBJECT_0 && ReleaseMutex(mutex),
           "the pushed value's handle was closed");
  /* A good handle keeps only the access the library uses. */
  WT_CHECK(shmbus__sock_send(cli, "ev", 2, &ev, 1) == 2, "send an event");
  rv = recv_wait(srv, buf, sizeof(buf), got, 4, &nh, &cut);
  WT_CHECK(rv == 2 && nh == 1 && shmbus__event_check(got[0]), "event received");
  WT_CHECK((granted = handle_access(got[0])) != 0 &&
               (granted & ~(DWORD)(0x0001 | EVENT_MODIFY_STATE | SYNCHRONIZE)) == 0,
           "the received event has access 0x%lx", (unsigned long)granted);
  shmbus__fd_close(got[0]);
  /* More handles than the receiver takes: the rest closed, said cut. */
  {
    HANDLE four[4] = {ev, ev, ev, ev};
    WT_CHECK(shmbus__sock_send(cli, "ev", 2, four, 4) == 2, "send four");
    rv = recv_wait(srv, buf, sizeof(buf), got, 2, &nh, &cut);
    WT_CHECK(rv == 2 && nh == 2 && cut, "two of four: %d %u", rv, nh);
    shmbus__fd_close(got[0]);
    shmbus__fd_close(got[1]);
  }
  WT_CHECK(GetProcessHandleCount(self, &after) && after == before, "handles leaked: %lu, %lu",
           (unsigned long)after, (unsigned long)before);
  CloseHandle(weak);
  CloseHandle(mutex);
  shmbus__fd_close(ev);
  CloseHandle(cli);
  CloseHandle(srv);
  return WINTEST_PASS;
}

static int test_peer_trusted(void) {
  struct shmbus__peer_id id;
  DWORD len;

  memset(&id, 0, sizeof(id));
  WT_CHECK(!shmbus__peer_trusted(&id), "nobody is trusted");
  WT_CHECK(shmbus__win_self_identity(&id) == 0 && shmbus__peer_trusted(&id), "we are");
  WT_CHECK(id.uid == shmbus__self_uid(), "uid %u, self %u", id.uid, shmbus__self_uid());
  len = sizeof(id.sid);
  WT_CHECK(CreateWellKnownSid(WinLocalSystemSid, NULL, id.sid, &len), "SYSTEM");
  id.sid_len = (uint8_t)len;
  WT_CHECK(shmbus__peer_trusted(&id), "SYSTEM is");
  len = sizeof(id.sid);
  WT_CHECK(CreateWellKnownSid(WinBuiltinAdministratorsSid, NULL, id.sid, &len), "Administrators");
  id.sid_len = (uint8_t)len;
  WT_CHECK(!shmbus__peer_trusted(&id), "Administrators is not");
  id.sid_len = 3;
  WT_CHECK(!shmbus__peer_trusted(&id), "a bad length");
  return WINTEST_PASS;
}

static int test_daemon_spawn(void) {
  char exe[MAX_PATH], stop_name[96];
  HANDLE stop;
  const char *ready[] = {exe, "child", "fake-daemon", "ready", NULL};
  const char *fail[] = {exe, "child", "fake-daemon", "fail", NULL};
  const char *silent[] = {exe, "child", "fake-daemon", "silent", NULL};
  const char *hang[] = {exe, "child", "fake-daemon", "hang", stop_name, NULL};
  const char *args[] = {exe,       "child", "fake-daemon", "args", "a b", "c\"d", "e\\",
                        "\\\\x\"", "",      "tail\\\\",    NULL};
  const char *missing[] = {"C:\\shmbus-no-such\\shmbusd.exe", NULL};
  int rv;

  WT_CHECK(GetModuleFileNameA(NULL, exe, sizeof(exe)) > 0, "own path");
  WT_CHECK((rv = shmbus__daemon_spawn(exe, ready, LONG_MS)) == 0, "ready: %d", rv);
  WT_CHECK((rv = shmbus__daemon_spawn(exe, args, LONG_MS)) == 0, "arguments quoted: %d", rv);
  WT_CHECK((rv = shmbus__daemon_spawn(exe, fail, LONG_MS)) == 7, "fail: %d", rv);
  WT_CHECK((rv = shmbus__daemon_spawn(exe, silent, LONG_MS)) == -ETIMEDOUT, "silent: %d", rv);
  WT_CHECK((rv = shmbus__daemon_spawn(missing[0], missing, 1000)) == -ENOENT, "missing: %d", rv);
  wintest_unique_name(stop_name, sizeof(stop_name), "Local\\");
  WT_CHECK((stop = CreateEventA(NULL, TRUE, FALSE, stop_name)) != NULL, "stop event");
  /* Waits out its short timeout: the daemon never says ready. */
  WT_CHECK((rv = shmbus__daemon_spawn(exe, hang, 200)) == -ETIMEDOUT, "hang: %d", rv);
  SetEvent(stop);
  CloseHandle(stop);
  return WINTEST_PASS;
}

/* The daemon's end keeps a message that does not fit in flight: the send
 * says it went, the next one is -EAGAIN (nothing overtakes it), the
 * write's event (shmbus__win_conn_write_wait) is set once the client has
 * read enough, every message arrives whole and in order, the one in
 * flight included, and sending works again. A write still in flight when
 * the daemon closes its end (shmbus__win_conn_forget) is cancelled. */
static int test_server_keeps_write_in_flight(void) {
  static uint8_t buf[4096];
  HANDLE srv, cli, h[1], ev = NULL;
  unsigned sent, seq, nh;
  bool cut;
  size_t i;
  int rv;

  WT_CHECK(pair(&srv, &cli), "pair");
  WT_CHECK(shmbus__win_conn_write_wait(srv, &ev) == 0, "a write in flight on a fresh pipe");
  for (sent = 0; sent < 10000; sent++) {
    for (i = 0; i < 3000; i++)
      buf[i] = msg_byte(sent, i);
    if ((rv = shmbus__sock_send(srv, buf, 3000, NULL, 0)) == -EAGAIN)
      break;
    WT_CHECK(rv == 3000, "send %u: %d", sent, rv);
  }
  WT_CHECK(sent > 0 && sent < 10000, "the pipe never filled (%u)", sent);
  WT_CHECK(shmbus__win_conn_write_wait(srv, &ev) == 1 && ev != NULL, "no write in flight");
  WT_CHECK(WaitForSingleObject(ev, 0) == WAIT_TIMEOUT, "the write in flight ended unread");
  WT_CHECK(shmbus__sock_send(srv, "later", 5, NULL, 0) == -EAGAIN, "a send overtook it");
  for (seq = 0; seq < sent; seq++) {
    rv = recv_wait(cli, buf, sizeof(buf), h, 1, &nh, &cut);
    WT_CHECK(rv == 3000 && !cut, "message %u: %d", seq, rv);
    for (i = 0; i < 3000; i++)
      WT_CHECK(buf[i] == msg_byte(seq, i), "message %u byte %zu", seq, i);
  }
  WT_CHECK(WaitForSingleObject(ev, LONG_MS) == WAIT_OBJECT_0, "the write never ended");
  CloseHandle(ev);
  WT_CHECK(shmbus__win_conn_write_wait(srv, NULL) == 0, "still in flight");
  WT_CHECK(shmbus__sock_send(srv, "again", 5, NULL, 0) == 5, "send after");
  WT_CHECK(recv_wait(cli, buf, sizeof(buf), h, 1, &nh, &cut) == 5 && memcmp(buf, "again", 5) == 0,
           "recv after");
  /* Full again, then closed with a write in flight: cancelled, and the
   * client reads what the pipe held, then sees the end. */
  for (sent = 0; sent < 10000; sent++)
    if ((rv = shmbus__sock_send(srv, buf, 3000, NULL, 0)) == -EAGAIN)
      break;
  WT_CHECK(shmbus__win_conn_write_wait(srv, NULL) == 1, "no write in flight");
  shmbus__win_conn_forget(srv);
  WT_CHECK(shmbus__win_conn_write_wait(srv, NULL) == 0, "forgotten, still in flight");
  CloseHandle(srv);
  for (seq = 0; seq < sent + 1; seq++)
    if ((rv = recv_wait(cli, buf, sizeof(buf), h, 1, &nh, &cut)) <= 0)
      break;
  WT_CHECK(rv <= 0, "more than was sent came");
  wintest_note("%u of %u messages in the pipe when its server closed it", seq, sent);
  CloseHandle(cli);
  return WINTEST_PASS;
}

static const struct wintest tests[] = {
    {"connect_missing", test_connect_missing},
    {"first_pipe_instance", test_first_pipe_instance},
    {"exchange_with_client_process", test_exchange_with_client_process},
    {"send_full_pipe", test_send_full_pipe},
    {"server_keeps_write_in_flight", test_server_keeps_write_in_flight},
    {"wait_on_connection", test_wait_on_connection},
    {"malformed_refused", test_malformed_refused},
    {"peer_trusted", test_peer_trusted},
    {"daemon_spawn", test_daemon_spawn},
};

int main(int argc, char **argv) {
  return wintest_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]), child_main);
}
