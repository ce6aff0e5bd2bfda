/* cli_test: the command-line tool on Windows (shmbus.exe), under Wine,
 * with the real daemon (shmbusd.exe) on a private bus:
 *   - the seed's scenario with `shmbus pub` and `shmbus echo`: a first
 *     process publishes a message and stays; a second, started once the
 *     message is known to be published, reads it through history;
 *   - `ls`, `stat` and `daemon status|stop` against that bus;
 *   - two reliable `shmbus echo` subscribers receive every one of 20,000
 *     synthetic payloads of `shmbus pub --count --size` (sequence and
 *     checksum checked by echo), nothing lost;
 *   - `shmbus echo --sample`, which reads a topic every period while
 *     messages come and sleeps on the subscriber's wake-up event once a
 *     period found none (a registered wait that wakes its libuv loop): it
 *     prints the messages of its history, then of two batches published
 *     after it printed the previous one (and went idle), each once and in
 *     order, and its count.
 * Every step waits on an event (a line on a pipe, a message, a process's
 * end), never on time. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include <shmbus/shmbus.h>

#include "winproc.h"
#include "wintest.h"

#define SEED_TEXT "Message from first process."
#define CLI_N 20000

/* The pid in "... started shmbusd (pid N) ...", or 0. */
static DWORD cli_autostart_pid(const char *line) {
  const char *p = strstr(line, "started shmbusd (pid ");
  return p != NULL ? (DWORD)strtoul(p + strlen("started shmbusd (pid "), NULL, 10) : 0;
}

/* Runs shmbus.exe with `args` to its end; its first line in `line`.
 * Returns its exit code. */
static long cli_run(const char *args, char *line, size_t cap) {
  struct winproc p;

  line[0] = '\0';
  if (!winproc_start(&p, "shmbus.exe", args, false))
    return -2;
  winproc_read_line(&p, line, cap);
  return winproc_wait(&p);
}

/* The end of a test: `shmbus daemon stop` stops the bus's daemon (whose
 * process is `daemon`, which this closes), and the bus directory goes. */
static int cli_daemon_stop(HANDLE daemon, const char *dir) {
  char line[512];
  long code = cli_run("daemon stop", line, sizeof(line));

  WT_CHECK(code == 0 && strstr(line, "stopped shmbusd") != NULL, "daemon stop exit %ld: %s", code,
           line);
  WT_CHECK(WaitForSingleObject(daemon, WINPROC_LONG_MS) == WAIT_OBJECT_0, "the daemon ended");
  CloseHandle(daemon);
  winproc_bus_dir_remove(dir);
  return WINTEST_PASS;
}

static int test_seed_cli(void) {
  char dir[MAX_PATH], line[512], text[256];
  struct winproc pub, echo;
  struct shmbus_sub_opts so;
  struct shmbus_msg_info info;
  shmbus_bus *bus = NULL;
  shmbus_sub *sub = NULL;
  DWORD put, dpid;
  HANDLE daemon;
  long code;
  int rv;

  WT_CHECK(winproc_bus_dir_make(dir, sizeof(dir)), "bus directory");
  /* The daemon pub starts stays until it is stopped. */
  SetEnvironmentVariableA("SHMBUS_IDLE_EXIT", "0");
  /* The first process: publishes each line of its input, and stays
   * attached until its input ends. It starts the daemon and says so. */
  WT_CHECK(winproc_start(&pub, "shmbus.exe", "pub seed/message", true), "start shmbus pub");
  winproc_read_line(&pub, line, sizeof(line));
  WT_CHECK((dpid = cli_autostart_pid(line)) != 0, "pub said: %s", line);
  WT_CHECK((daemon = OpenProcess(SYNCHRONIZE, FALSE, dpid)) != NULL, "open the daemon %lu",
           (unsigned long)dpid);
  WT_CHECK(WriteFile(pub.in_w, SEED_TEXT "\n", sizeof(SEED_TEXT), &put, NULL) &&
               put == sizeof(SEED_TEXT),
           "hand pub the message");
  /* A witness in this process learns that the message is published (from
   * history if it came first, live otherwise). */
  rv = winproc_bus_open(&bus, dir, 0, "cli_test");
  WT_CHECK(rv == 0, "open the bus: %s", shmbus_strerror(rv));
  memset(&so, 0, sizeof(so));
  so.history = 1;
  rv = shmbus_sub_open(bus, "seed/message", &so, &sub);
  WT_CHECK(rv == 0, "witness subscribes: %s", shmbus_strerror(rv));
  rv = shmbus_sub_recv(sub, text, sizeof(text) - 1, &info, WINPROC_LONG_MS);
  WT_CHECK(rv == (int)strlen(SEED_TEXT) && memcmp(text, SEED_TEXT, (size_t)rv) == 0,
           "witness got %d: %s", rv, rv >= 0 ? shmbus_strerror(0) : shmbus_strerror(rv));

  /* The second process, started later, reads it through history. */
  WT_CHECK(winproc_start(&echo, "shmbus.exe", "echo --history 1 --count 1 seed/message", false),
           "start shmbus echo");
  winproc_read_line(&echo, line, sizeof(line));
  WT_CHECK(strcmp(line, SEED_TEXT "\n") == 0 || strcmp(line, SEED_TEXT "\r\n") == 0,
           "echo printed: %s", line);
  winproc_read_line(&echo, line, sizeof(line));
  WT_CHECK(strstr(line, "received 1 lost 0 checksum errors 0") != NULL, "echo said: %s", line);
  code = winproc_wait(&echo);
  WT_CHECK(code == 0, "echo exit %ld", code);

  /* What the other verbs see meanwhile: the topic, its participants. */
  code = cli_run("ls", line, sizeof(line));
  WT_CHECK(code == 0 && strstr(line, "TOPIC") != NULL, "ls exit %ld: %s", code, line);
  code = cli_run("ls --json", line, sizeof(line));
  WT_CHECK(code == 0, "ls --json exit %ld: %s", code, line);
  code = cli_run("stat seed/message", line, sizeof(line));
  WT_CHECK(code == 0 && strstr(line, "seed/message") != NULL, "stat exit %ld: %s", code, line);
  code = cli_run("daemon status", line, sizeof(line));
  WT_CHECK(code == 0 && cli_autostart_pid(line) == 0 && strstr(line, "shmbusd pid") != NULL,
           "daemon status exit %ld: %s", code, line);
  WT_CHECK(strtoul(strstr(line, "shmbusd pid ") + 12, NULL, 10) == dpid, "another daemon: %s",
           line);

  shmbus_sub_close(sub);
  shmbus_bus_close(bus);
  /* Its input ends: pub says what it did and leaves. */
  CloseHandle(pub.in_w);
  pub.in_w = NULL;
  winproc_read_line(&pub, line, sizeof(line));
  WT_CHECK(strstr(line, "published 1 waits 0") != NULL, "pub said: %s", line);
  code = winproc_wait(&pub);
  WT_CHECK(code == 0, "pub exit %ld", code);

  return cli_daemon_stop(daemon, dir);
}

static int test_reliable_cli(void) {
  char dir[MAX_PATH], line[512], args[256];
  struct winproc sub[2], pub;
  DWORD dpid;
  HANDLE daemon;
  long code;
  int i;

  WT_CHECK(winproc_bus_dir_make(dir, sizeof(dir)), "bus directory");
  SetEnvironmentVariableA("SHMBUS_IDLE_EXIT", "0");
  /* The first subscriber starts the daemon (and says so); the second
   * finds it. */
  snprintf(args, sizeof(args), "echo --reliable --quiet --count %d fan/cli", CLI_N);
  WT_CHECK(winproc_start(&sub[0], "shmbus.exe", args, false), "start echo 1");
  winproc_read_line(&sub[0], line, sizeof(line));
  WT_CHECK((dpid = cli_autostart_pid(line)) != 0, "echo 1 said: %s", line);
  WT_CHECK((daemon = OpenProcess(SYNCHRONIZE, FALSE, dpid)) != NULL, "open the daemon");
  WT_CHECK(winproc_start(&sub[1], "shmbus.exe", args, false), "start echo 2");
  /* pub waits until both are attached, then publishes CLI_N synthetic
   * payloads (publisher, sequence, checksum), held back by the two. */
  snprintf(args, sizeof(args), "pub --wait-subs 2 --count %d --size 64 fan/cli", CLI_N);
  WT_CHECK(winproc_start(&pub, "shmbus.exe", args, false), "start pub");
  winproc_read_line(&pub, line, sizeof(line));
  WT_CHECK(strncmp(line, "published 20000 waits ", 22) == 0, "pub said: %s", line);
  code = winproc_wait(&pub);
  WT_CHECK(code == 0, "pub exit %ld", code);
  for (i = 0; i < 2; i++) {
    winproc_read_line(&sub[i], line, sizeof(line));
    WT_CHECK(strstr(line, "received 20000 lost 0 checksum errors 0") != NULL, "echo %d said: %s",
             i + 1, line);
    code = winproc_wait(&sub[i]);
    WT_CHECK(code == 0, "echo %d exit %ld", i + 1, code);
  }
  return cli_daemon_stop(daemon, dir);
}

/* Publishes "sample N" for N in [from, to). */
static int cli_sample_publish(shmbus_pub *pub, int from, int to) {
  char text[32];
  int i, rv;

  for (i = from; i < to; i++) {
    snprintf(text, sizeof(text), "sample %d", i);
    if ((rv = shmbus_pub_publish(pub, text, strlen(text))) < 0)
      return rv;
  }
  return 0;
}

/* Reads echo's lines "sample N" for N in [from, to). */
static int cli_sample_expect(struct winproc *echo, int from, int to) {
  char line[512], want[32];
  int i;

  for (i = from; i < to; i++) {
    snprintf(want, sizeof(want), "sample %d", i);
    winproc_read_line(echo, line, sizeof(line));
    line[strcspn(line, "\r\n")] = '\0';
    WT_CHECK(strcmp(line, want) == 0, "echo --sample printed \"%s\", not \"%s\"", line, want);
  }
  return WINTEST_PASS;
}

static int test_sample_cli(void) {
  char dir[MAX_PATH], line[512];
  struct winproc echo;
  shmbus_bus *bus = NULL;
  shmbus_pub *pub = NULL;
  long code;
  int rv;

  WT_CHECK(winproc_bus_dir_make(dir, sizeof(dir)), "bus directory");
  SetEnvironmentVariableA("SHMBUS_IDLE_EXIT", "0");
  rv = winproc_bus_open(&bus, dir, 1, "cli_test");
  WT_CHECK(rv == 0, "open the bus: %s", shmbus_strerror(rv));
  rv = shmbus_pub_open(bus, "sample/t", NULL, &pub);
  WT_CHECK(rv == 0, "publisher: %s", shmbus_strerror(rv));
  WT_CHECK((rv = cli_sample_publish(pub, 0, 2)) == 0, "publish: %s", shmbus_strerror(rv));
  /* echo reads the two through history in its first period, then finds
   * the ring empty and sleeps on its event; each batch after that wakes
   * it (or a period still reads it, if it came first: the same lines). */
  WT_CHECK(winproc_start(&echo, "shmbus.exe",
                         "echo --sample 5 --history 2 --count 6 --timeout 60 sample/t", false),
           "start shmbus echo --sample");
  if ((rv = cli_sample_expect(&echo, 0, 2)) != WINTEST_PASS)
    return rv;
  WT_CHECK((rv = cli_sample_publish(pub, 2, 4)) == 0, "publish: %s", shmbus_strerror(rv));
  if ((rv = cli_sample_expect(&echo, 2, 4)) != WINTEST_PASS)
    return rv;
  WT_CHECK((rv = cli_sample_publish(pub, 4, 6)) == 0, "publish: %s", shmbus_strerror(rv));
  if ((rv = cli_sample_expect(&echo, 4, 6)) != WINTEST_PASS)
    return rv;
  winproc_read_line(&echo, line, sizeof(line));
  WT_CHECK(strstr(line, "received 6 lost 0") != NULL, "echo said: %s", line);
  code = winproc_wait(&echo);
  WT_CHECK(code == 0, "echo exit %ld", code);
  shmbus_pub_close(pub);
  shmbus_bus_close(bus);
  rv = winproc_bus_end(dir);
  WT_CHECK(rv == 0, "stop the daemon: %s", shmbus_strerror(rv));
  return WINTEST_PASS;
}

static const struct wintest tests[] = {
    {"seed_cli", test_seed_cli},
    {"reliable_cli", test_reliable_cli},
    {"sample_cli", test_sample_cli},
};

int main(int argc, char **argv) {
  winproc_find_bin_dir();
  return wintest_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]), NULL);
}
