/* The seed example (examples/seed_writer.c, seed_reader.c) as a user runs
 * it: two real programs against a real daemon. The writer says "published"
 * on its stdout once the message is on the bus; the reader starts only
 * after that line arrived, so ordering comes from the programs themselves,
 * never from sleeps. */
#define _GNU_SOURCE /* pipe2 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemonutil.h"

#if !defined(SEED_WRITER_PATH) || !defined(SEED_READER_PATH)
#error "SEED_WRITER_PATH and SEED_READER_PATH must name the seed example programs"
#endif

static struct du_daemon d;

static void setup(void) {
  memset(&d, 0, sizeof(d));
  du_start(&d);
  setenv("SHMBUS_DIR", d.dir, 1);
  setenv("SHMBUS_NO_AUTOSTART", "1", 1);
}

static void teardown(void) {
  du_stop(&d);
}

TestSuite(seed, .init = setup, .fini = teardown, .timeout = 60);

/* A program started with pipes on stdin (when in_w is not NULL), stdout
 * and stderr. */
struct prog {
  pid_t pid;
  int in_w;  /* its stdin, or -1 (then /dev/null) */
  int out_r; /* its stdout */
  int err_r; /* its stderr */
};

static void prog_start(struct prog *p, bool with_stdin, const char *path, const char *const *args) {
  int in[2] = {-1, -1}, out[2], err[2];
  char *argv[16];
  int n = 0;

  argv[n++] = (char *)path;
  while (*args != NULL && n < 15)
    argv[n++] = (char *)*args++;
  argv[n] = NULL;
  if (with_stdin)
    cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
  cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
  cr_assert_eq(pipe2(err, O_CLOEXEC), 0);
  p->pid = fork();
  cr_assert_geq(p->pid, 0);
  if (p->pid == 0) {
    int null = open("/dev/null", O_RDONLY);
    if (null < 0 || dup2(with_stdin ? in[0] : null, 0) < 0 || dup2(out[1], 1) < 0 ||
        dup2(err[1], 2) < 0)
      _exit(126);
    execv(path, argv);
    _exit(127);
  }
  if (with_stdin)
    close(in[0]);
  close(out[1]);
  close(err[1]);
  p->in_w = in[1];
  p->out_r = out[0];
  p->err_r = err[0];
}

/* Reads one line (up to and without '\n') from fd into buf; fails the test
 * on end of file before it. */
static void read_line(int fd, char *buf, size_t cap, const char *who) {
  size_t n = 0;
  for (;;) {
    char c;
    ssize_t r = read(fd, &c, 1);
    if (r < 0 && errno == EINTR)
      continue;
    cr_assert_eq(r, 1, "%s ended before writing a line (read so far: \"%.*s\")", who, (int)n, buf);
    if (c == '\n')
      break;
    cr_assert_lt(n + 1, cap, "%s: line too long", who);
    buf[n++] = c;
  }
  buf[n] = '\0';
}

/* Reads fd to its end into buf (NUL-terminated, truncated to cap - 1). */
static void read_all(int fd, char *buf, size_t cap) {
  size_t n = 0;
  for (;;) {
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r < 0 && errno == EINTR)
      continue;
    cr_assert_geq(r, 0, "read: %s", strerror(errno));
    if (r == 0 || (n += (size_t)r) == cap - 1)
      break;
  }
  buf[n] = '\0';
}

/* Waits for the program to exit; returns its exit status (128 + signal
 * when killed) with its stdout and stderr in out and err. */
static int prog_wait(struct prog *p, char *out, size_t outcap, char *err, size_t errcap) {
  int st;
  read_all(p->out_r, out, outcap);
  read_all(p->err_r, err, errcap);
  st = du_wait(p->pid);
  close(p->out_r);
  close(p->err_r);
  if (p->in_w >= 0)
    close(p->in_w);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The seed's scenario: a first process publishes and stays; a second,
 * started later, opens the topic by name and reads the message through
 * history. When the writer goes, so does the topic (it was not retained),
 * as the seed's section goes with its last handle. */
Test(seed, writer_then_reader) {
  struct prog w, r;
  char line[256], out[1024], err[1024];
  uint32_t topics_with, topics_without;

  prog_start(&w, true, SEED_WRITER_PATH, (const char *const[]){NULL});
  read_line(w.out_r, line, sizeof(line), "seed_writer");
  cr_assert(strncmp(line, "published \"Message from first process.\" on seed/message", 55) == 0,
            "%s", line);
  du_status(&d, NULL, &topics_with);

  prog_start(&r, false, SEED_READER_PATH, (const char *const[]){NULL});
  cr_assert_eq(prog_wait(&r, out, sizeof(out), err, sizeof(err)), 0, "reader: %s", err);
  cr_assert_str_eq(out, "received \"Message from first process.\" from seed/message (message 0)\n");

  /* A second reader, later still, reads the same message. */
  prog_start(&r, false, SEED_READER_PATH, (const char *const[]){NULL});
  cr_assert_eq(prog_wait(&r, out, sizeof(out), err, sizeof(err)), 0, "reader: %s", err);
  cr_assert(strstr(out, "Message from first process.") != NULL, "%s", out);

  /* Told to stop (its stdin ends), the writer leaves with status 0, and
   * the daemon drops the topic once nobody holds it. */
  close(w.in_w);
  w.in_w = -1;
  cr_assert_eq(prog_wait(&w, out, sizeof(out), err, sizeof(err)), 0, "writer: %s", err);
  du_wait_clients(&d, 0);
  du_status(&d, NULL, &topics_without);
  cr_assert_eq(topics_without, topics_with - 1, "topics: %u with the writer, %u after", topics_with,
               topics_without);

  /* Now a reader finds nothing, and says why. */
  prog_start(&r, false, SEED_READER_PATH, (const char *const[]){"--timeout", "0", NULL});
  cr_assert_eq(prog_wait(&r, out, sizeof(out), err, sizeof(err)), 1, "reader: %s", out);
  cr_assert(strstr(err, "is seed_writer running?") != NULL, "%s", err);
}

/* Text and topic from the command line; a line "stop" ends the writer. */
Test(seed, text_topic_and_stop_line) {
  struct prog w, r;
  char line[256], out[1024], err[1024];

  prog_start(&w, true, SEED_WRITER_PATH,
             (const char *const[]){"--topic", "seed/other", "a text of my own", NULL});
  read_line(w.out_r, line, sizeof(line), "seed_writer");
  cr_assert(strstr(line, "\"a text of my own\" on seed/other") != NULL, "%s", line);
  prog_start(&r, false, SEED_READER_PATH, (const char *const[]){"--topic", "seed/other", NULL});
  cr_assert_eq(prog_wait(&r, out, sizeof(out), err, sizeof(err)), 0, "reader: %s", err);
  cr_assert_str_eq(out, "received \"a text of my own\" from seed/other (message 0)\n");
  cr_assert_eq(write(w.in_w, "stop\n", 5), 5);
  cr_assert_eq(prog_wait(&w, out, sizeof(out), err, sizeof(err)), 0, "writer: %s", err);
}

/* Wrong arguments: a clear usage error, status 2. */
Test(seed, bad_arguments) {
  struct prog p;
  char out[1024], err[1024];

  prog_start(&p, false, SEED_WRITER_PATH, (const char *const[]){"--bogus", NULL});
  cr_assert_eq(prog_wait(&p, out, sizeof(out), err, sizeof(err)), 2);
  cr_assert(strstr(err, "unknown option --bogus") != NULL, "%s", err);
  prog_start(&p, false, SEED_READER_PATH, (const char *const[]){"--bogus", NULL});
  cr_assert_eq(prog_wait(&p, out, sizeof(out), err, sizeof(err)), 2);
  cr_assert(strstr(out, "usage:") != NULL, "%s", out);
}
