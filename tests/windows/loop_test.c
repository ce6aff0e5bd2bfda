/* loop_test: watching handles from a libuv loop on Windows
 * (src/platform/loop.h, src/platform/windows/loop.c), what src/uv.c uses
 * for a subscriber's event and the bus's connection.
 *   - An event signalled by another process wakes the loop once per signal
 *     (a ping-pong: the child signals, waits for the answer), counted
 *     exactly; stopping the watch stops the callbacks and the loop ends.
 *   - A control connection: each message sent wakes the loop (through the
 *     zero-byte read), every message is received whole and in order, the
 *     peer hanging up wakes it too, and closing the watch cancels the read
 *     before the pipe is closed.
 *   - A watch stopped again and again while another thread sets its event
 *     (the process survives; no callback of a stopped watch). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include "platform/loop.h"
#include "platform/platform.h"
#include "platform/windows/win.h"
#include "wintest.h"

#define ROUNDS 1000
#define MESSAGES 200
/* A bound for a broken test, never a synchronisation. */
#define LONG_MS 60000

/* ---- the child ------------------------------------------------------------ */

/* child ping, then "THEIRS MINE" (hex handle values put into this process
 * by the parent) on stdin: ROUNDS times, signals the parent's event and
 * waits for the answer on its own. Exit 0, or 10 + step. */
static int child_ping(void) {
  char a[32], b[32];
  shmbus__event_handle parent, mine;
  int i;

  if (scanf("%31s %31s", a, b) != 2)
    return 9;
  parent = (shmbus__event_handle)(uintptr_t)strtoull(a, NULL, 16);
  mine = (shmbus__event_handle)(uintptr_t)strtoull(b, NULL, 16);
  if (!shmbus__event_check(parent) || !shmbus__event_check(mine))
    return 10;
  for (i = 0; i < ROUNDS; i++) {
    if (shmbus__event_signal(parent) != 0)
      return 11;
    if (shmbus__wait_readable(&mine, 1, LONG_MS) != 1)
      return 12;
  }
  return 0;
}

static int child_main(int argc, char **argv) {
  if (argc >= 1 && strcmp(argv[0], "ping") == 0)
    return child_ping();
  return 2;
}

/* Starts "child VERB" with two handles duplicated into it, their values
 * written to its standard input. */
static HANDLE spawn_with_handles(const char *verb, HANDLE a, HANDLE b) {
  SECURITY_ATTRIBUTES inherit = {sizeof(inherit), NULL, TRUE};
  HANDLE in_r, in_w, da = NULL, db = NULL, self = GetCurrentProcess();
  STARTUPINFOA si;
  PROCESS_INFORMATION pi;
  char exe[MAX_PATH], cmd[2 * MAX_PATH], line[80];
  DWORD w;
  int len;

  if (!CreatePipe(&in_r, &in_w, &inherit, 0))
    return NULL;
  SetHandleInformation(in_w, HANDLE_FLAG_INHERIT, 0);
  GetModuleFileNameA(NULL, exe, sizeof(exe));
  snprintf(cmd, sizeof(cmd), "\"%s\" child %s", exe, verb);
  memset(&si, 0, sizeof(si));
  si.cb = sizeof(si);
  si.dwFlags = STARTF_USESTDHANDLES;
  si.hStdInput = in_r;
  si.hStdOutput = GetStdHandle(STD_OUTPUT_HANDLE);
  si.hStdError = GetStdHandle(STD_ERROR_HANDLE);
  if (!CreateProcessA(exe, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) {
    CloseHandle(in_r);
    CloseHandle(in_w);
    return NULL;
  }
  CloseHandle(in_r);
  CloseHandle(pi.hThread);
  /* A failed duplication leaves NULL, which the child refuses. */
  (void)DuplicateHandle(self, a, pi.hProcess, &da, 0, FALSE, DUPLICATE_SAME_ACCESS);
  (void)DuplicateHandle(self, b, pi.hProcess, &db, 0, FALSE, DUPLICATE_SAME_ACCESS);
  len = snprintf(line, sizeof(line), "%llx %llx\n", (unsigned long long)(uintptr_t)da,
                 (unsigned long long)(uintptr_t)db);
  (void)WriteFile(in_w, line, (DWORD)len, &w, NULL);
  CloseHandle(in_w);
  return pi.hProcess;
}

/* ---- an event ------------------------------------------------------------------ */

struct ev_state {
  uv_loop_t loop;
  shmbus__watch watch;
  uv_timer_t bound;
  shmbus__event_handle mine, theirs;
  long woken, closed;
  int error;
  bool timed_out;
};

static void ev_closed(uv_handle_t *h) {
  struct ev_state *s = h->data;
  s->closed++;
}

static void ev_on_signal(shmbus__watch *w, int status, int events) {
  struct ev_state *s = SHMBUS__WATCH_DATA(w);
  (void)events;
  if (status < 0) {
    s->error = status;
    shmbus__watch_close(w, ev_closed);
    uv_close((uv_handle_t *)&s->bound, NULL);
    return;
  }
  /* The wait took the event's signal already; draining is harmless. */
  shmbus__event_drain(s->mine);
  if (++s->woken == ROUNDS) {
    /* Stopped: no more callbacks, and the loop may end. */
    (void)shmbus__watch_stop(w);
    (void)uv_timer_stop(&s->bound);
  }
  if (shmbus__event_signal(s->theirs) != 0)
    s->error = -EIO;
}

static void ev_on_bound(uv_timer_t *t) {
  struct ev_state *s = t->data;
  s->timed_out = true;
  (void)shmbus__watch_stop(&s->watch);
}

static int test_event_watch(void) {
  static struct ev_state s; /* the loop and its handles outlive the callbacks */
  HANDLE child;
  long code;

  memset(&s, 0, sizeof(s));
  WT_CHECK(shmbus__event_open(&s.mine) == 0 && shmbus__event_open(&s.theirs) == 0, "event_open");
  WT_CHECK(uv_loop_init(&s.loop) == 0, "uv_loop_init");
  WT_CHECK(shmbus__watch_init(&s.loop, &s.watch, s.mine) == 0, "watch_init");
  SHMBUS__WATCH_DATA(&s.watch) = &s;
  WT_CHECK(uv_timer_init(&s.loop, &s.bound) == 0, "uv_timer_init");
  s.bound.data = &s;
  WT_CHECK(uv_timer_start(&s.bound, ev_on_bound, LONG_MS, 0) == 0, "uv_timer_start");
  WT_CHECK(shmbus__watch_start(&s.watch, SHMBUS__WATCH_EVENT, ev_on_signal) == 0, "watch_start");
  child = spawn_with_handles("ping", s.mine, s.theirs);
  WT_CHECK(child != NULL, "spawn");
  /* Ends when the watch is stopped and the timer too: a stopped watch does
   * not keep the loop alive. */
  WT_CHECK(uv_run(&s.loop, UV_RUN_DEFAULT) == 0, "uv_run");
  code = wintest_join(child);
  WT_CHECK(code == 0, "the child failed at step %ld", code);
  WT_CHECK(!s.timed_out, "timed out after %ld wake-ups", s.woken);
  WT_CHECK(s.error == 0, "error %d", s.error);
  WT_CHECK(s.woken == ROUNDS, "%ld wake-ups of %d", s.woken, ROUNDS);
  /* Stopped: a signal now calls nobody. */
  WT_CHECK(shmbus__event_signal(s.mine) == 0, "signal");
  WT_CHECK(uv_run(&s.loop, UV_RUN_NOWAIT) == 0, "uv_run after stop");
  WT_CHECK(s.woken == ROUNDS, "a callback after stop");
  shmbus__watch_close(&s.watch, ev_closed);
  uv_close((uv_handle_t *)&s.bound, NULL);
  WT_CHECK(uv_run(&s.loop, UV_RUN_DEFAULT) == 0, "uv_run to close");
  WT_CHECK(s.closed == 1, "close callback ran %ld times", s.closed);
  WT_CHECK(uv_loop_close(&s.loop) == 0, "uv_loop_close: a handle left");
  shmbus__fd_close(s.mine);
  shmbus__fd_close(s.theirs);
  return WINTEST_PASS;
}

/* ---- stopping a watch while its event is set -------------------------------- */

#define STOP_ROUNDS 20000

struct storm {
  shmbus__event_handle ev;
  volatile LONG done;
  long signals;
};

/* Another thread of the test: sets the event as fast as it can, as
 * publishers set a subscriber's while it stops watching. */
static DWORD WINAPI storm_main(void *arg) {
  struct storm *st = arg;
  while (InterlockedCompareExchange(&st->done, 0, 0) == 0) {
    if (shmbus__event_signal(st->ev) != 0)
      return 1;
    st->signals++;
  }
  return 0;
}

static void storm_on_signal(shmbus__watch *w, int status, int events) {
  long *calls = SHMBUS__WATCH_DATA(w);
  (void)status;
  (void)events;
  (*calls)++;
}

static void storm_closed(uv_handle_t *h) {
  (void)h;
}

/* A watch started and stopped again and again while another thread sets its
 * event: every stop unregisters a wait that may be firing at that moment.
 * Wine's blocking UnregisterWaitEx(..., INVALID_HANDLE_VALUE) crashed the
 * process on that race (loop.c, "Teardown"); the loop never runs while the
 * watch is started, so a stopped watch's callback is never called. */
static int test_stop_while_signalled(void) {
  static uv_loop_t loop;
  static shmbus__watch watch;
  static struct storm st;
  long calls = 0;
  DWORD code = 1;
  HANDLE thread;
  int i, rv = 0;

  memset(&st, 0, sizeof(st));
  WT_CHECK(shmbus__event_open(&st.ev) == 0, "event_open");
  WT_CHECK(uv_loop_init(&loop) == 0, "uv_loop_init");
  WT_CHECK(shmbus__watch_init(&loop, &watch, st.ev) == 0, "watch_init");
  SHMBUS__WATCH_DATA(&watch) = &calls;
  thread = CreateThread(NULL, 0, storm_main, &st, 0, NULL);
  WT_CHECK(thread != NULL, "CreateThread");
  for (i = 0; i < STOP_ROUNDS && rv == 0; i++)
    if ((rv = shmbus__watch_start(&watch, SHMBUS__WATCH_EVENT, storm_on_signal)) == 0)
      rv = shmbus__watch_stop(&watch);
  InterlockedExchange(&st.done, 1);
  (void)WaitForSingleObject(thread, INFINITE);
  (void)GetExitCodeThread(thread, &code);
  CloseHandle(thread);
  WT_CHECK(rv == 0, "round %d: error %d", i, rv);
  WT_CHECK(code == 0, "the signalling thread failed");
  WT_CHECK(uv_run(&loop, UV_RUN_NOWAIT) == 0, "uv_run");
  WT_CHECK(calls == 0, "%ld callbacks of a stopped watch", calls);
  shmbus__watch_close(&watch, storm_closed);
  WT_CHECK(uv_run(&loop, UV_RUN_DEFAULT) == 0, "uv_run to close");
  WT_CHECK(uv_loop_close(&loop) == 0, "uv_loop_close: a handle left");
  shmbus__fd_close(st.ev);
  wintest_note("%d start/stop rounds under %ld signals", STOP_ROUNDS, st.signals);
  return WINTEST_PASS;
}

/* ---- a connection ------------------------------------------------------------ */

/* Waits (bounded) until a client connects to the server end `pipe`. */
static int server_accept(HANDLE pipe) {
  OVERLAPPED ov;
  DWORD n, err;
  int ok = 0;

  memset(&ov, 0, sizeof(ov));
  ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
  if (ConnectNamedPipe(pipe, &ov) || (err = GetLastError()) == ERROR_PIPE_CONNECTED) {
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

struct conn_state {
  uv_loop_t loop;
  shmbus__watch watch;
  uv_timer_t sender;
  HANDLE srv, cli;
  unsigned sent, received;
  long wakeups;
  bool hung_up, closed;
  int error;
};

static void conn_closed(uv_handle_t *h) {
  struct conn_state *s = h->data;
  s->closed = true;
}

static void conn_fail(struct conn_state *s, int code) {
  if (s->error == 0)
    s->error = code;
  uv_close((uv_handle_t *)&s->sender, NULL);
  shmbus__watch_close(&s->watch, conn_closed);
}

/* The server end is readable: everything waiting, then the hang-up. */
static void conn_on_readable(shmbus__watch *w, int status, int events) {
  struct conn_state *s = SHMBUS__WATCH_DATA(w);
  unsigned char buf[64];
  unsigned nh = 0;
  bool cut = false;
  int rv;

  (void)events;
  s->wakeups++;
  if (status < 0) {
    conn_fail(s, status);
    return;
  }
  for (;;) {
    rv = shmbus__sock_recv(s->srv, buf, sizeof(buf), NULL, 0, &nh, &cut);
    if (rv == -EAGAIN)
      return;
    if (rv == 0 || rv == -EPIPE) {
      s->hung_up = true;
      /* The watch's read is cancelled before the pipe goes. */
      uv_close((uv_handle_t *)&s->sender, NULL);
      shmbus__watch_close(w, conn_closed);
      shmbus__fd_close(s->srv);
      s->srv = SHMBUS__OS_HANDLE_INVALID;
      return;
    }
    if (rv != 8 || cut || memcmp(buf, "message", 7) != 0 || buf[7] != (unsigned char)s->received) {
      conn_fail(s, rv < 0 ? rv : -EPROTO);
      return;
    }
    s->received++;
  }
}

/* From the loop's own timer: one message each turn, then the hang-up. */
static void conn_on_send(uv_timer_t *t) {
  struct conn_state *s = t->data;
  unsigned char msg[8] = {'m', 'e', 's', 's', 'a', 'g', 'e', 0};
  int rv;

  if (s->sent == MESSAGES) {
    if (s->received == MESSAGES) {
      (void)uv_timer_stop(t);
      shmbus__fd_close(s->cli); /* the server end's watch sees the hang-up */
      s->cli = SHMBUS__OS_HANDLE_INVALID;
    }
    return;
  }
  msg[7] = (unsigned char)s->sent;
  if ((rv = shmbus__sock_send(s->cli, msg, sizeof(msg), NULL, 0)) != (int)sizeof(msg)) {
    conn_fail(s, rv < 0 ? rv : -EIO);
    return;
  }
  s->sent++;
}

static int test_conn_watch(void) {
  static struct conn_state s;
  char name[96], ep[160];
  uint64_t t0;

  memset(&s, 0, sizeof(s));
  wintest_unique_name(name, sizeof(name), "");
  snprintf(ep, sizeof(ep), "C:\\%s\\shmbusd.sock", name);
  WT_CHECK(shmbus__win_pipe_create(ep, true, false, &s.srv) == 0, "pipe_create");
  WT_CHECK(shmbus__unix_connect(ep, &s.cli) == 0, "connect");
  WT_CHECK(server_accept(s.srv), "accept");
  WT_CHECK(uv_loop_init(&s.loop) == 0, "uv_loop_init");
  WT_CHECK(shmbus__watch_init(&s.loop, &s.watch, s.srv) == 0, "watch_init");
  SHMBUS__WATCH_DATA(&s.watch) = &s;
  WT_CHECK(shmbus__watch_start(&s.watch, SHMBUS__WATCH_CONN, conn_on_readable) == 0, "watch_start");
  WT_CHECK(uv_timer_init(&s.loop, &s.sender) == 0, "uv_timer_init");
  s.sender.data = &s;
  /* Every millisecond: the messages come while the loop waits. */
  WT_CHECK(uv_timer_start(&s.sender, conn_on_send, 1, 1) == 0, "uv_timer_start");
  t0 = shmbus__clock_mono_ns();
  WT_CHECK(uv_run(&s.loop, UV_RUN_DEFAULT) == 0, "uv_run");
  WT_CHECK(s.error == 0, "error %d after %u sent, %u received", s.error, s.sent, s.received);
  WT_CHECK(s.sent == MESSAGES && s.received == MESSAGES, "%u sent, %u received", s.sent,
           s.received);
  WT_CHECK(s.hung_up, "the hang-up was not seen");
  WT_CHECK(s.closed, "the close callback did not run");
  WT_CHECK(uv_loop_close(&s.loop) == 0, "uv_loop_close: a handle left");
  wintest_note("%u messages, %ld wake-ups, %llu ms", s.received, s.wakeups,
               (unsigned long long)((shmbus__clock_mono_ns() - t0) / 1000000u));
  shmbus__fd_close(s.srv);
  shmbus__fd_close(s.cli);
  return WINTEST_PASS;
}

static const struct wintest tests[] = {
    {"event_watch", test_event_watch},
    {"conn_watch", test_conn_watch},
    {"stop_while_signalled", test_stop_while_signalled},
};

int main(int argc, char **argv) {
  return wintest_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]), child_main);
}
