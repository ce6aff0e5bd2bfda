/* crash_test: what happens to the others when a participant or the daemon
 * dies on Windows, under Wine, with real processes and the real daemon
 * (shmbusd.exe) on a private bus:
 *   - publisher_killed_mid_message: a publisher process holds a slot it
 *     loaned (half written, not committed) and is ended with
 *     TerminateProcess; the daemon sees its connection end, repairs the
 *     slot, and the subscribers (reliable and lossy) go on: every message
 *     committed before and published after arrives, in order and whole,
 *     and the dead publisher's claim is counted as one loss;
 *   - publisher_killed_while_its_pipe_lives: the same death, but the
 *     publisher first duplicated its end of the daemon's pipe into a
 *     helper process that lives on (DuplicateHandle): the pipe stays
 *     open, and the daemon, which waits on the publisher's process
 *     handle too, still sees the death and repairs the slot while the
 *     helper holds the pipe; the pipe's late end, when the helper is
 *     ended, changes nothing (the daemon goes on serving and stops
 *     cleanly);
 *   - daemon_killed_and_restarted: the daemon is ended with TerminateProcess
 *     while a publisher, an in-process reliable subscriber and a reliable
 *     `shmbus echo` process exchange 300 messages; the data path goes on
 *     without it, a new daemon is started on the bus, the participants
 *     reconnect, it adopts the topic (a new subscriber reads the last
 *     message through history), and nothing is lost;
 *   - malformed_control_messages: raw clients of the daemon's pipe send
 *     what the protocol does not allow (a bad magic, too many handles, a
 *     length that is not the message's, reserved bits, a handle value that
 *     is not the sender's, handles pushed by a client, a payload that is
 *     not msgpack, an oversized message); each is refused (the daemon ends
 *     that connection) and the daemon goes on serving.
 * Every step waits on an event (a line on a pipe, a message, a process's
 * end, the daemon's ready event), never on time: the waits are bounded
 * by WINPROC_LONG_MS for a broken test. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include <shmbus/shmbus.h>

#include "winproc.h"
#include "wintest.h"

#define CT_TOPIC_PUB "crash/pub"
#define CT_TOPIC_DAEMON "crash/daemon"
#define CT_N 5         /* messages before and after the publisher's death */
#define CT_TRAFFIC 300 /* messages across the daemon's death */

static const struct shmbus_topic_opts ct_topic = {16, 256, 8, 8, false};

/* Receives one message within the bound and checks it is `want`. */
static int ct_expect(shmbus_sub *sub, const char *want) {
  struct shmbus_msg_info info;
  char buf[300];
  int rv = shmbus_sub_recv(sub, buf, sizeof(buf) - 1, &info, WINPROC_LONG_MS);

  if (rv < 0) {
    wintest_note("expected \"%s\": %s", want, shmbus_strerror(rv));
    return -1;
  }
  buf[rv] = '\0';
  if (strcmp(buf, want) != 0) {
    wintest_note("expected \"%s\", got \"%s\"", want, buf);
    return -1;
  }
  return 0;
}

/* ---- a publisher killed mid-message -------------------------------------- */

/* The child: publishes CT_N messages, loans a slot and writes half of it,
 * says so, and waits (for its input, which never comes) to be killed. */
/* A child publisher: opens the bus, publishes CT_N messages ("child N")
 * and loans a slot it half writes, as it will die holding. Returns 0, or 1
 * after printing why. */
static int child_publish_and_loan(shmbus_bus **bus) {
  shmbus_pub *pub = NULL;
  char text[32];
  void *buf;
  int rv, i;

  if ((rv = winproc_bus_open(bus, NULL, 0, NULL)) < 0 ||
      (rv = shmbus_pub_open(*bus, CT_TOPIC_PUB, &ct_topic, &pub)) < 0) {
    printf("open: %s\n", shmbus_strerror(rv));
    return 1;
  }
  for (i = 0; i < CT_N; i++) {
    snprintf(text, sizeof(text), "child %d", i);
    if ((rv = shmbus_pub_publish(pub, text, strlen(text))) < 0) {
      printf("publish: %s\n", shmbus_strerror(rv));
      return 1;
    }
  }
  if ((rv = shmbus_pub_loan(pub, 64, &buf)) < 0) {
    printf("loan: %s\n", shmbus_strerror(rv));
    return 1;
  }
  memset(buf, 'X', 32);
  return 0;
}

static int child_loaner(void) {
  shmbus_bus *bus = NULL;

  if (child_publish_and_loan(&bus) != 0)
    return 1;
  printf("loaned\n");
  fflush(stdout);
  (void)getchar();
  return 0;
}

/* The subscribers of the publisher-death tests: reliable [0], lossy [1]. */
static int ct_subscribe(shmbus_bus *bus, shmbus_sub *sub[2]) {
  struct shmbus_sub_opts so;
  int rv, k;

  for (k = 0; k < 2; k++) {
    memset(&so, 0, sizeof(so));
    so.topic = ct_topic;
    so.reliable = k == 0;
    rv = shmbus_sub_open(bus, CT_TOPIC_PUB, &so, &sub[k]);
    WT_CHECK(rv == 0, "subscribe (%s): %s", k == 0 ? "reliable" : "lossy", shmbus_strerror(rv));
  }
  return WINTEST_PASS;
}

/* Both subscribers get the child publisher's CT_N messages. */
static int ct_expect_child(shmbus_sub *sub[2]) {
  char want[32];
  int i, k;

  for (k = 0; k < 2; k++)
    for (i = 0; i < CT_N; i++) {
      snprintf(want, sizeof(want), "child %d", i);
      WT_CHECK(ct_expect(sub[k], want) == 0, "subscriber %d, message %d before the death", k, i);
    }
  return WINTEST_PASS;
}

/* The child publisher dies holding its loaned slot; the survivors go on:
 * another publisher (*pub), every message checked. The subscribers get
 * past the dead claim only once the daemon repaired it: nothing committed
 * lost, only the dead publisher's claim. */
static int ct_kill_and_go_on(shmbus_bus *bus, struct winproc *child, shmbus_sub *sub[2],
                             shmbus_pub **pub) {
  struct shmbus_sub_stats st;
  struct shmbus_msg_info info;
  char want[32], line[64];
  long code;
  int rv, i, k;

  WT_CHECK(TerminateProcess(child->process, 9), "TerminateProcess");
  code = winproc_wait(child);
  WT_CHECK(code == 9, "publisher exit %ld", code);
  rv = shmbus_pub_open(bus, CT_TOPIC_PUB, &ct_topic, pub);
  WT_CHECK(rv == 0, "publish: %s", shmbus_strerror(rv));
  for (i = 0; i < CT_N; i++) {
    snprintf(want, sizeof(want), "parent %d", i);
    rv = shmbus_pub_publish(*pub, want, strlen(want));
    WT_CHECK(rv == 0, "publish %d: %s", i, shmbus_strerror(rv));
  }
  for (k = 0; k < 2; k++) {
    for (i = 0; i < CT_N; i++) {
      snprintf(want, sizeof(want), "parent %d", i);
      WT_CHECK(ct_expect(sub[k], want) == 0, "subscriber %d, message %d after the death", k, i);
    }
    WT_CHECK(shmbus_sub_try_recv(sub[k], line, sizeof(line), &info) == -EAGAIN, "nothing more");
    shmbus_sub_stats(sub[k], &st);
    WT_CHECK(st.received == 2 * CT_N && st.lost == 1, "subscriber %d: received %llu lost %llu", k,
             (unsigned long long)st.received, (unsigned long long)st.lost);
  }
  return WINTEST_PASS;
}

static int test_publisher_killed_mid_message(void) {
  char dir[MAX_PATH], line[256];
  struct winproc child;
  shmbus_bus *bus = NULL;
  shmbus_sub *sub[2] = {NULL, NULL};
  shmbus_pub *pub = NULL;
  int rv;

  WT_CHECK(winproc_bus_dir_make(dir, sizeof(dir)), "bus directory");
  SetEnvironmentVariableA("SHMBUS_IDLE_EXIT", "0");
  /* This process starts the daemon (shmbusd.exe beside it). */
  rv = winproc_bus_open(&bus, dir, 1, NULL);
  WT_CHECK(rv == 0, "open the bus: %s", shmbus_strerror(rv));
  WT_CHECK(ct_subscribe(bus, sub) == WINTEST_PASS, "subscribers");
  WT_CHECK(winproc_start(&child, "crash_test.exe", "child loaner", true), "start the publisher");
  winproc_read_line(&child, line, sizeof(line));
  WT_CHECK(strcmp(line, "loaned\n") == 0 || strcmp(line, "loaned\r\n") == 0, "publisher said: %s",
           line);
  WT_CHECK(ct_expect_child(sub) == WINTEST_PASS, "the child's messages");
  /* It dies holding the slot. */
  WT_CHECK(ct_kill_and_go_on(bus, &child, sub, &pub) == WINTEST_PASS, "after the death");
  shmbus_pub_close(pub);
  shmbus_sub_close(sub[0]);
  shmbus_sub_close(sub[1]);
  shmbus_bus_close(bus);
  rv = winproc_bus_end(dir);
  WT_CHECK(rv == 0, "stopping the daemon: %s", shmbus_strerror(rv));
  return WINTEST_PASS;
}

/* ---- a publisher killed while a copy of its pipe lives on ---------------- */

/* The helper: holds whatever handles it was given (its parent duplicates
 * its pipe to the daemon into it) until the test process `argv[0]` ends,
 * or until the test ends it. */
static int child_holder(int argc, char **argv) {
  HANDLE test;

  if (argc < 1 ||
      (test = OpenProcess(SYNCHRONIZE, FALSE, (DWORD)strtoul(argv[0], NULL, 10))) == NULL)
    return 1;
  (void)WaitForSingleObject(test, INFINITE);
  CloseHandle(test);
  return 0;
}

/* The publisher: as child_loaner, but before it says so it starts the
 * helper (told the test's pid, argv[0]) and duplicates its end of the
 * daemon's pipe into it; it says "loaned <helper's pid>". */
static int child_duper(int argc, char **argv) {
  shmbus_bus *bus = NULL;
  char text[64];
  HANDLE holder, copy = NULL;
  DWORD holder_pid;

  if (argc < 1)
    return 2;
  if (child_publish_and_loan(&bus) != 0)
    return 1;
  snprintf(text, sizeof(text), "holder %s", argv[0]);
  if ((holder = wintest_spawn(text, &holder_pid)) == NULL) {
    printf("cannot start the helper: error %lu\n", (unsigned long)GetLastError());
    return 1;
  }
  /* The copy is the helper's: this process never closes it. */
  if (!DuplicateHandle(GetCurrentProcess(), (HANDLE)shmbus_bus_fd(bus), holder, &copy, 0, FALSE,
                       DUPLICATE_SAME_ACCESS)) {
    printf("DuplicateHandle: error %lu\n", (unsigned long)GetLastError());
    return 1;
  }
  printf("loaned %lu\n", (unsigned long)holder_pid);
  fflush(stdout);
  (void)getchar();
  return 0;
}

static int test_publisher_killed_while_its_pipe_lives(void) {
  char dir[MAX_PATH], line[256], args[64];
  struct winproc child;
  shmbus_bus *bus = NULL;
  shmbus_sub *sub[2] = {NULL, NULL};
  shmbus_pub *pub = NULL;
  HANDLE holder = NULL;
  unsigned long holder_pid = 0;
  int rv, k;

  WT_CHECK(winproc_bus_dir_make(dir, sizeof(dir)), "bus directory");
  SetEnvironmentVariableA("SHMBUS_IDLE_EXIT", "0");
  rv = winproc_bus_open(&bus, dir, 1, NULL);
  WT_CHECK(rv == 0, "open the bus: %s", shmbus_strerror(rv));
  WT_CHECK(ct_subscribe(bus, sub) == WINTEST_PASS, "subscribers");
  /* The helper waits for this process's end: a failed test leaves
   * nothing behind. */
  snprintf(args, sizeof(args), "child duper %lu", (unsigned long)GetCurrentProcessId());
  WT_CHECK(winproc_start(&child, "crash_test.exe", args, true), "start the publisher");
  winproc_read_line(&child, line, sizeof(line));
  WT_CHECK(sscanf(line, "loaned %lu", &holder_pid) == 1 && holder_pid != 0, "publisher said: %s",
           line);
  holder = OpenProcess(SYNCHRONIZE | PROCESS_TERMINATE, FALSE, (DWORD)holder_pid);
  WT_CHECK(holder != NULL, "open the helper %lu", holder_pid);
  WT_CHECK(ct_expect_child(sub) == WINTEST_PASS, "the child's messages");
  /* It dies holding the slot; the helper holds its pipe. The subscribers
   * get past the dead claim only once the daemon has repaired it: it
   * judged the publisher dead by its process. */
  WT_CHECK(ct_kill_and_go_on(bus, &child, sub, &pub) == WINTEST_PASS, "after the death");
  /* All of that while the pipe lived. */
  WT_CHECK(WaitForSingleObject(holder, 0) == WAIT_TIMEOUT, "the helper still holds the pipe");
  /* The pipe's late end: the daemon has nothing more to do with it. */
  WT_CHECK(TerminateProcess(holder, 0), "end the helper");
  WT_CHECK(WaitForSingleObject(holder, WINPROC_LONG_MS) == WAIT_OBJECT_0, "the helper's end");
  CloseHandle(holder);
  rv = shmbus_pub_publish(pub, "after", 5);
  WT_CHECK(rv == 0, "publish after: %s", shmbus_strerror(rv));
  for (k = 0; k < 2; k++)
    WT_CHECK(ct_expect(sub[k], "after") == 0, "subscriber %d after the pipe's end", k);
  shmbus_pub_close(pub);
  shmbus_sub_close(sub[0]);
  shmbus_sub_close(sub[1]);
  shmbus_bus_close(bus);
  rv = winproc_bus_end(dir);
  WT_CHECK(rv == 0, "stopping the daemon: %s", shmbus_strerror(rv));
  return WINTEST_PASS;
}

/* ---- the daemon killed and restarted under traffic ----------------------- */

/* Publishes messages [from, to) ("m N"), reading along with `rel` (which
 * holds the publisher back) and checking each of its messages. */
static int ct_traffic(shmbus_pub *pub, shmbus_sub *rel, uint32_t from, uint32_t to,
                      uint32_t *next) {
  struct shmbus_msg_info info;
  char text[32], buf[64], want[32];
  uint32_t i;
  int rv;

  for (i = from; i < to; i++) {
    snprintf(text, sizeof(text), "m %u", i);
    for (;;) {
      if ((rv = shmbus_pub_publish(pub, text, strlen(text))) != SHMBUS_EFULL)
        break;
      /* Room: our reader reads what it can, the other one (the echo
       * process) reads on its own; wait for it. */
      while ((rv = shmbus_sub_try_recv(rel, buf, sizeof(buf) - 1, &info)) >= 0) {
        buf[rv] = '\0';
        snprintf(want, sizeof(want), "m %u", *next);
        if (strcmp(buf, want) != 0) {
          wintest_note("reliable subscriber: expected \"%s\", got \"%s\"", want, buf);
          return -1;
        }
        (*next)++;
      }
      if (rv != -EAGAIN) {
        wintest_note("reliable subscriber: %s", shmbus_strerror(rv));
        return -1;
      }
      if ((rv = shmbus_pub_wait(pub, WINPROC_LONG_MS)) < 0) {
        wintest_note("waiting for room: %s", shmbus_strerror(rv));
        return -1;
      }
    }
    if (rv < 0) {
      wintest_note("publish %u: %s", i, shmbus_strerror(rv));
      return -1;
    }
  }
  return 0;
}

static int test_daemon_killed_and_restarted(void) {
  char dir[MAX_PATH], line[256], want[32], args[256];
  struct winproc da, db, echo;
  struct shmbus_sub_opts so;
  struct shmbus_sub_stats st;
  struct shmbus_daemon_status ds;
  shmbus_bus *bus = NULL;
  shmbus_sub *rel = NULL, *late = NULL;
  shmbus_pub *pub = NULL;
  uint32_t next = 0;
  ULONGLONG end;
  long code;
  int rv;

  WT_CHECK(winproc_bus_dir_make(dir, sizeof(dir)), "bus directory");
  WT_CHECK(winproc_daemon_start(&da, dir, false) == 1, "start the first daemon");
  rv = winproc_bus_open(&bus, dir, 0, NULL);
  WT_CHECK(rv == 0, "open the bus: %s", shmbus_strerror(rv));
  memset(&so, 0, sizeof(so));
  so.topic = ct_topic;
  so.reliable = true;
  rv = shmbus_sub_open(bus, CT_TOPIC_DAEMON, &so, &rel);
  WT_CHECK(rv == 0, "subscribe: %s", shmbus_strerror(rv));
  rv = shmbus_pub_open(bus, CT_TOPIC_DAEMON, &ct_topic, &pub);
  WT_CHECK(rv == 0, "publish: %s", shmbus_strerror(rv));
  snprintf(args, sizeof(args), "echo --reliable --quiet --no-autostart --count %d %s", CT_TRAFFIC,
           CT_TOPIC_DAEMON);
  WT_CHECK(winproc_start(&echo, "shmbus.exe", args, false), "start shmbus echo");
  rv = shmbus_pub_wait_subs(pub, 2, WINPROC_LONG_MS);
  WT_CHECK(rv >= 2, "both subscribers attached: %d", rv);

  WT_CHECK(ct_traffic(pub, rel, 0, 100, &next) == 0, "traffic before");
  /* The daemon dies; the data path goes on without it. */
  WT_CHECK(TerminateProcess(da.process, 9), "TerminateProcess the daemon");
  code = winproc_wait(&da);
  WT_CHECK(code == 9, "daemon exit %ld", code);
  WT_CHECK(ct_traffic(pub, rel, 100, 200, &next) == 0, "traffic without a daemon");
  /* A new daemon; the participants reconnect and it adopts their records. */
  WT_CHECK(winproc_daemon_start(&db, dir, false) == 1, "start the second daemon");
  WT_CHECK(ct_traffic(pub, rel, 200, CT_TRAFFIC, &next) == 0, "traffic after");
  winproc_read_line(&echo, line, sizeof(line));
  WT_CHECK(strstr(line, "received 300 lost 0 checksum errors 0") != NULL, "echo said: %s", line);
  code = winproc_wait(&echo);
  WT_CHECK(code == 0, "echo exit %ld", code);
  while (next < CT_TRAFFIC) {
    snprintf(want, sizeof(want), "m %u", next);
    WT_CHECK(ct_expect(rel, want) == 0, "reliable subscriber, the rest");
    next++;
  }
  shmbus_sub_stats(rel, &st);
  WT_CHECK(st.received == CT_TRAFFIC && st.lost == 0, "reliable: received %llu lost %llu",
           (unsigned long long)st.received, (unsigned long long)st.lost);
  /* This process reconnects to the new daemon (the library retries with
   * its backoff while it waits; the bounded receive is that wait). */
  end = GetTickCount64() + WINPROC_LONG_MS;
  while (!(shmbus_bus_process(bus) == 0 && shmbus_bus_connected(bus)) && GetTickCount64() < end)
    (void)shmbus_sub_recv(rel, line, sizeof(line), NULL, 50);
  rv = shmbus_bus_daemon_status(bus, &ds);
  WT_CHECK(rv == 0, "status from the new daemon: %s", shmbus_strerror(rv));
  WT_CHECK(ds.pid == GetProcessId(db.process), "status from daemon %u, started %lu", ds.pid,
           (unsigned long)GetProcessId(db.process));
  /* It adopted the topic: its ring, with the last message, is the one a
   * new subscriber opens. */
  memset(&so, 0, sizeof(so));
  so.history = 1;
  rv = shmbus_sub_open(bus, CT_TOPIC_DAEMON, &so, &late);
  WT_CHECK(rv == 0, "a new subscriber: %s", shmbus_strerror(rv));
  snprintf(want, sizeof(want), "m %u", CT_TRAFFIC - 1);
  WT_CHECK(ct_expect(late, want) == 0, "the last message through history");
  shmbus_sub_close(late);
  shmbus_sub_close(rel);
  shmbus_pub_close(pub);
  shmbus_bus_close(bus);
  rv = winproc_daemon_stop(dir);
  WT_CHECK(rv == 0, "stopping the daemon: %s", shmbus_strerror(rv));
  code = winproc_wait(&db);
  WT_CHECK(code == 0, "second daemon exit %ld", code);
  winproc_bus_dir_remove(dir);
  return WINTEST_PASS;
}

/* ---- malformed control messages -------------------------------------------- */

/* The message header of conn.c. */
struct ct_header {
  uint32_t magic;
  uint32_t len;
  uint8_t mode;
  uint8_t nh;
  uint16_t reserved;
  uint32_t reserved2;
};
#define CT_MAGIC 0x57424853u

/* Sends `msg` on a fresh raw connection, then reads until the daemon
 * ends the connection (what it answered first is skipped). Returns 0 when
 * it did within the bound, -1 otherwise. */
static int ct_raw_refused(const char *pipe, const void *msg, DWORD len) {
  HANDLE h = CreateFileA(pipe, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                         FILE_FLAG_OVERLAPPED, NULL);
  OVERLAPPED ov;
  char buf[512];
  DWORD n, mode = PIPE_READMODE_MESSAGE;
  int rv = -1;

  if (h == INVALID_HANDLE_VALUE) {
    wintest_note("connect: error %lu", (unsigned long)GetLastError());
    return -1;
  }
  (void)SetNamedPipeHandleState(h, &mode, NULL, NULL);
  memset(&ov, 0, sizeof(ov));
  ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
  if (!WriteFile(h, msg, len, NULL, &ov) && GetLastError() != ERROR_IO_PENDING) {
    wintest_note("send: error %lu", (unsigned long)GetLastError());
    goto out;
  }
  if (WaitForSingleObject(ov.hEvent, WINPROC_LONG_MS) != WAIT_OBJECT_0 ||
      !GetOverlappedResult(h, &ov, &n, FALSE)) {
    wintest_note("send: not taken (error %lu)", (unsigned long)GetLastError());
    goto out;
  }
  for (;;) {
    BOOL ok;
    (void)ResetEvent(ov.hEvent);
    ok = ReadFile(h, buf, sizeof(buf), NULL, &ov);
    if (!ok && GetLastError() != ERROR_IO_PENDING && GetLastError() != ERROR_MORE_DATA) {
      rv = GetLastError() == ERROR_BROKEN_PIPE || GetLastError() == ERROR_PIPE_NOT_CONNECTED ? 0
                                                                                             : -1;
      break;
    }
    if (WaitForSingleObject(ov.hEvent, WINPROC_LONG_MS) != WAIT_OBJECT_0) {
      wintest_note("the daemon kept the connection open");
      (void)CancelIoEx(h, &ov);
      (void)GetOverlappedResult(h, &ov, &n, TRUE);
      break;
    }
    if (!GetOverlappedResult(h, &ov, &n, FALSE) && GetLastError() != ERROR_MORE_DATA) {
      rv = GetLastError() == ERROR_BROKEN_PIPE || GetLastError() == ERROR_PIPE_NOT_CONNECTED ? 0
                                                                                             : -1;
      if (rv < 0)
        wintest_note("read: error %lu", (unsigned long)GetLastError());
      break;
    }
  }
out:
  CloseHandle(ov.hEvent);
  CloseHandle(h);
  return rv;
}

static int test_malformed_control_messages(void) {
  char dir[MAX_PATH], pipe[2 * MAX_PATH];
  unsigned char msg[32 * 1024];
  struct ct_header hd;
  struct shmbus_daemon_status ds;
  shmbus_bus *bus = NULL;
  int rv, i;

  WT_CHECK(winproc_bus_dir_make(dir, sizeof(dir)), "bus directory");
  SetEnvironmentVariableA("SHMBUS_IDLE_EXIT", "0");
  rv = winproc_bus_open(&bus, dir, 1, NULL);
  WT_CHECK(rv == 0, "open the bus: %s", shmbus_strerror(rv));
  winproc_pipe_name(dir, pipe, sizeof(pipe));

  for (i = 0; i < 8; i++) {
    DWORD len = sizeof(hd) + 8;
    memset(msg, 0, sizeof(msg));
    hd.magic = CT_MAGIC;
    hd.len = 8;
    hd.mode = 0;
    hd.nh = 0;
    hd.reserved = 0;
    hd.reserved2 = 0;
    switch (i) {
    case 0: /* not our magic */
      hd.magic = 0x41414141u;
      break;
    case 1: /* more handles than a message may carry */
      hd.mode = 2;
      hd.nh = 17;
      break;
    case 2: /* a length that is not the message's */
      hd.len = 100;
      break;
    case 3: /* reserved bits set */
      hd.reserved2 = 1;
      break;
    case 4: /* a handle value that is no handle of ours */
      hd.mode = 2;
      hd.nh = 1;
      len = sizeof(hd) + 8 + 8;
      memset(msg + sizeof(hd), 0xee, 8);
      break;
    case 5: /* handles pushed by a client: only the daemon pushes */
      hd.mode = 1;
      hd.nh = 1;
      len = sizeof(hd) + 8 + 8;
      memset(msg + sizeof(hd), 0, 8);
      msg[sizeof(hd)] = 4;
      break;
    case 6: /* a payload that is not a message of the protocol */
      break;
    case 7: /* larger than any message may be */
      hd.len = sizeof(msg) - sizeof(hd);
      len = sizeof(msg);
      break;
    }
    memcpy(msg, &hd, sizeof(hd));
    if (i != 7)
      memset(msg + len - 8, 0xc1, 8); /* 0xc1: never used in msgpack */
    WT_CHECK(ct_raw_refused(pipe, msg, len) == 0, "malformed message %d not refused", i);
    /* The daemon goes on serving. */
    rv = shmbus_bus_daemon_status(bus, &ds);
    WT_CHECK(rv == 0, "status after malformed message %d: %s", i, shmbus_strerror(rv));
  }
  /* Only this client is left. */
  WT_CHECK(ds.clients == 1, "clients: %u", ds.clients);
  shmbus_bus_close(bus);
  rv = winproc_bus_end(dir);
  WT_CHECK(rv == 0, "stopping the daemon: %s", shmbus_strerror(rv));
  return WINTEST_PASS;
}

static const struct wintest tests[] = {
    {"publisher_killed_mid_message", test_publisher_killed_mid_message},
    {"publisher_killed_while_its_pipe_lives", test_publisher_killed_while_its_pipe_lives},
    {"daemon_killed_and_restarted", test_daemon_killed_and_restarted},
    {"malformed_control_messages", test_malformed_control_messages},
};

static int child_main(int argc, char **argv) {
  if (argc >= 1 && strcmp(argv[0], "loaner") == 0)
    return child_loaner();
  if (argc >= 1 && strcmp(argv[0], "duper") == 0)
    return child_duper(argc - 1, argv + 1);
  if (argc >= 1 && strcmp(argv[0], "holder") == 0)
    return child_holder(argc - 1, argv + 1);
  return 2;
}

int main(int argc, char **argv) {
  winproc_find_bin_dir();
  return wintest_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]), child_main);
}
