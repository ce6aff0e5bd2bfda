/* The shmbus command-line tool: the real binary (SHMBUS_CLI_PATH) against
 * a real daemon. Ordering comes from `pub --wait-subs` (the publisher waits
 * until the echo is attached) and from waiting for processes, never from
 * sleeps. Outputs go to files in a private directory and are read after
 * the process ended. */
#define _GNU_SOURCE /* memmem */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemonutil.h"
#include "procutil.h"

#ifndef SHMBUS_CLI_PATH
#error "SHMBUS_CLI_PATH must name the shmbus binary"
#endif

static struct du_daemon d;
static char work[64];         /* outputs, inputs, config files */
static char saved_path[4096]; /* $PATH, which some tests change */

static void setup(void) {
  const char *path = getenv("PATH");

  snprintf(saved_path, sizeof(saved_path), "%s", path != NULL ? path : "/usr/bin:/bin");
  memset(&d, 0, sizeof(d));
  snprintf(work, sizeof(work), "/tmp/shmbus-clitest-XXXXXX");
  cr_assert_not_null(mkdtemp(work));
  du_start(&d);
  setenv("SHMBUS_DIR", d.dir, 1);
  setenv("SHMBUS_NO_AUTOSTART", "1", 1);
}

static void teardown(void) {
  setenv("PATH", saved_path, 1);
  unsetenv("LD_LIBRARY_PATH");
  du_stop(&d);
  du_rmtree(work);
}

TestSuite(cli, .init = setup, .fini = teardown, .timeout = 60);

/* Criterion does not run .fini for a skipped test: clean up first. */
#define cli_skip(...)                                                                              \
  do {                                                                                             \
    teardown();                                                                                    \
    cr_skip_test(__VA_ARGS__);                                                                     \
  } while (0)

/* One run of the tool. */
struct run {
  pid_t pid;
  char out_path[128];
  char err_path[128];
  char *out; /* what it wrote, NUL-terminated (after run_wait) */
  size_t out_len;
  char *err;
  int status; /* exit status, or 128 + signal */
};

static int run_counter;

/* Starts `exe ARGS...` (argv[0] "shmbus") with stdin from `in_path`
 * (NULL: /dev/null). */
static void run_start_exe(struct run *r, const char *exe, const char *in_path,
                          const char *const *args) {
  char *argv[32];
  int n = 0;

  memset(r, 0, sizeof(*r));
  run_counter++;
  snprintf(r->out_path, sizeof(r->out_path), "%s/out.%d", work, run_counter);
  snprintf(r->err_path, sizeof(r->err_path), "%s/err.%d", work, run_counter);
  argv[n++] = "shmbus";
  while (*args != NULL && n < 31)
    argv[n++] = (char *)*args++;
  argv[n] = NULL;
  r->pid = fork();
  cr_assert_geq(r->pid, 0);
  if (r->pid == 0) {
    int in = open(in_path != NULL ? in_path : "/dev/null", O_RDONLY);
    int out = open(r->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(r->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0 || err < 0)
      _exit(126);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    execv(exe, argv);
    _exit(127);
  }
}

/* Starts `shmbus ARGS...` with stdin from `in_path` (NULL: /dev/null). */
static void run_start(struct run *r, const char *in_path, const char *const *args) {
  run_start_exe(r, SHMBUS_CLI_PATH, in_path, args);
}

static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long n;

  cr_assert_not_null(f, "open %s", path);
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = malloc((size_t)n + 1);
  cr_assert_not_null(buf);
  cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
  buf[n] = '\0';
  fclose(f);
  if (len != NULL)
    *len = (size_t)n;
  return buf;
}

static int run_wait(struct run *r) {
  int st = du_wait(r->pid);
  r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r->out = slurp(r->out_path, &r->out_len);
  r->err = slurp(r->err_path, NULL);
  return r->status;
}

static void run_free(struct run *r) {
  free(r->out);
  free(r->err);
}

/* Runs to the end; returns the exit status. */
#define RUN(r, in, ...)                                                                            \
  (run_start((r), (in), (const char *const[]){__VA_ARGS__, NULL}), run_wait(r))

/* Writes `len` bytes to a file in the work dir; returns its path (static). */
static const char *put_file(const char *name, const void *data, size_t len) {
  static char path[128];
  FILE *f;

  snprintf(path, sizeof(path), "%s/%s", work, name);
  f = fopen(path, "wb");
  cr_assert_not_null(f);
  cr_assert_eq(fwrite(data, 1, len, f), len);
  fclose(f);
  return path;
}

/* Parses echo's summary line. */
static void echo_summary(const struct run *r, unsigned long long *recv, unsigned long long *lost,
                         unsigned long long *errs) {
  const char *p = strstr(r->err, "received ");
  cr_assert_not_null(p, "no summary in: %s", r->err);
  cr_assert_eq(sscanf(p, "received %llu lost %llu checksum errors %llu", recv, lost, errs), 3,
               "summary: %s", p);
}

static void pub_summary(const struct run *r, unsigned long long *published,
                        unsigned long long *waits) {
  const char *p = strstr(r->err, "published ");
  cr_assert_not_null(p, "no summary in: %s", r->err);
  cr_assert_eq(sscanf(p, "published %llu waits %llu", published, waits), 2, "summary: %s", p);
}

/* ---- round trips ----------------------------------------------------------- */

Test(cli, text_round_trip) {
  struct run echo, pub;
  unsigned long long r, l, e;

  run_start(&echo, NULL, (const char *const[]){"echo", "t/text", "--count", "2", NULL});
  cr_assert_eq(
      RUN(&pub, NULL, "pub", "t/text", "--wait-subs", "1", "--count", "2", "hello, shmbus"), 0,
      "pub: %s", pub.err);
  cr_assert_eq(run_wait(&echo), 0, "echo: %s", echo.err);
  cr_assert_str_eq(echo.out, "hello, shmbus\nhello, shmbus\n");
  echo_summary(&echo, &r, &l, &e);
  cr_assert_eq(r, 2);
  cr_assert_eq(l, 0);
  cr_assert_eq(e, 0);
  cr_assert_not_null(strstr(pub.err, "published 2 waits 0"), "%s", pub.err);
  run_free(&echo);
  run_free(&pub);
}

Test(cli, stdin_lines_round_trip) {
  struct run echo, pub;
  const char *in = put_file("lines", "first line\nsecond\n\nfourth, after an empty one\n", 45);

  run_start(&echo, NULL, (const char *const[]){"echo", "t/lines", "--count", "4", NULL});
  cr_assert_eq(RUN(&pub, in, "pub", "t/lines", "--wait-subs", "1"), 0, "pub: %s", pub.err);
  cr_assert_eq(run_wait(&echo), 0, "echo: %s", echo.err);
  cr_assert_str_eq(echo.out, "first line\nsecond\n\nfourth, after an empty one\n");
  run_free(&echo);
  run_free(&pub);
}

Test(cli, json_round_trip_through_msgpack) {
  const char *doc = "{\"name\": \"imu\", \"v\": [1, -2, 2.5, \"s\\u00e9\", null, true, false],"
                    " \"nested\": {\"deep\": {\"n\": 18446744073709}}, \"empty\": []}";
  struct run echo, pub;
  json_error_t je;
  json_t *want, *got;

  run_start(&echo, NULL, (const char *const[]){"echo", "t/json", "--json", "--count", "1", NULL});
  cr_assert_eq(RUN(&pub, NULL, "pub", "t/json", "--wait-subs", "1", "--json", doc), 0, "pub: %s",
               pub.err);
  cr_assert_eq(run_wait(&echo), 0, "echo: %s", echo.err);
  want = json_loads(doc, 0, &je);
  cr_assert_not_null(want);
  got = json_loads(echo.out, 0, &je);
  cr_assert_not_null(got, "echo printed no JSON: %s (%s)", echo.out, je.text);
  cr_assert(json_equal(want, got), "sent %s, got %s", doc, echo.out);
  /* One line per message. */
  cr_assert_eq(strchr(echo.out, '\n'), echo.out + strlen(echo.out) - 1);
  json_decref(want);
  json_decref(got);
  run_free(&echo);
  run_free(&pub);
}

Test(cli, binary_round_trip_raw_and_hex) {
  unsigned char bin[300];
  struct run echo_raw, echo_hex, pub;
  const char *path;
  char hex[sizeof(bin) * 2 + 2];
  size_t i;

  for (i = 0; i < sizeof(bin); i++)
    bin[i] = (unsigned char)(i * 7 + 3);
  path = put_file("bin", bin, sizeof(bin));
  for (i = 0; i < sizeof(bin); i++)
    snprintf(hex + 2 * i, 3, "%02x", bin[i]);
  strcat(hex, "\n");
  /* 300 bytes: larger than the default slot size is not needed, but the
   * topic is created with a stated size by whoever comes first. */
  run_start(
      &echo_raw, NULL,
      (const char *const[]){"echo", "t/bin", "--raw", "--count", "1", "--slot-size", "512", NULL});
  run_start(
      &echo_hex, NULL,
      (const char *const[]){"echo", "t/bin", "--hex", "--count", "1", "--slot-size", "512", NULL});
  cr_assert_eq(
      RUN(&pub, NULL, "pub", "t/bin", "--wait-subs", "2", "--slot-size", "512", "--file", path), 0,
      "pub: %s", pub.err);
  cr_assert_eq(run_wait(&echo_raw), 0, "echo: %s", echo_raw.err);
  cr_assert_eq(run_wait(&echo_hex), 0, "echo: %s", echo_hex.err);
  cr_assert_eq(echo_raw.out_len, sizeof(bin));
  cr_assert_eq(memcmp(echo_raw.out, bin, sizeof(bin)), 0);
  cr_assert_str_eq(echo_hex.out, hex);
  run_free(&echo_raw);
  run_free(&echo_hex);
  run_free(&pub);
}

/* ---- synthetic payloads ---------------------------------------------------- */

/* A lossy echo on a small ring: whatever it loses, it counts, and what it
 * gets is intact. */
Test(cli, synthetic_lossy_accounts_for_everything) {
  unsigned long long r, l, e, p, w;
  struct run echo, pub;

  run_start(&echo, NULL,
            (const char *const[]){"echo", "t/syn", "--quiet", "--until-last", "--slots", "8",
                                  "--slot-size", "128", NULL});
  cr_assert_eq(RUN(&pub, NULL, "pub", "t/syn", "--wait-subs", "1", "--count", "20000", "--size",
                   "100", "--slots", "8", "--slot-size", "128"),
               0, "pub: %s", pub.err);
  cr_assert_eq(run_wait(&echo), 0, "echo: %s", echo.err);
  cr_assert_eq(echo.out_len, 0, "--quiet printed: %s", echo.out);
  echo_summary(&echo, &r, &l, &e);
  pub_summary(&pub, &p, &w);
  cr_assert_eq(p, 20000);
  cr_assert_eq(w, 0, "nobody reliable, yet the publisher waited");
  cr_assert_eq(r + l, p, "received %llu + lost %llu != published %llu", r, l, p);
  cr_assert_gt(r, 0);
  cr_assert_eq(e, 0);
  run_free(&echo);
  run_free(&pub);
}

Test(cli, synthetic_reliable_loses_nothing) {
  unsigned long long r, l, e, p, w;
  struct run echo, pub;

  run_start(&echo, NULL,
            (const char *const[]){"echo", "t/rel", "--quiet", "--until-last", "--reliable",
                                  "--slots", "8", "--slot-size", "128", NULL});
  cr_assert_eq(RUN(&pub, NULL, "pub", "t/rel", "--wait-subs", "1", "--count", "20000", "--size",
                   "128", "--slots", "8", "--slot-size", "128"),
               0, "pub: %s", pub.err);
  cr_assert_eq(run_wait(&echo), 0, "echo: %s", echo.err);
  echo_summary(&echo, &r, &l, &e);
  pub_summary(&pub, &p, &w);
  cr_assert_eq(p, 20000);
  cr_assert_eq(r, 20000);
  cr_assert_eq(l, 0);
  cr_assert_eq(e, 0);
  run_free(&echo);
  run_free(&pub);
}

/* echo prints a synthetic payload as a description and checks it. */
Test(cli, synthetic_payload_is_described) {
  struct run echo, pub;

  run_start(&echo, NULL, (const char *const[]){"echo", "t/desc", "--until-last", NULL});
  cr_assert_eq(RUN(&pub, NULL, "pub", "t/desc", "--wait-subs", "1", "--count", "2", "--size", "40"),
               0, "pub: %s", pub.err);
  cr_assert_eq(run_wait(&echo), 0, "echo: %s", echo.err);
  cr_assert_not_null(strstr(echo.out, "seq 0 of 2, 40 bytes, checksum ok\n"), "%s", echo.out);
  cr_assert_not_null(strstr(echo.out, "seq 1 of 2, 40 bytes, checksum ok\n"), "%s", echo.out);
  run_free(&echo);
  run_free(&pub);
}

/* A late reader finds the message in history while the publisher lingers. */
Test(cli, history_after_linger) {
  struct run pub, echo, ls;

  cr_assert_eq(RUN(&pub, NULL, "pub", "t/hist", "--retain", "--slots", "4", "--slot-size", "64",
                   "--max-subs", "4", "--max-pubs", "2", "remember me"),
               0, "pub: %s", pub.err);
  cr_assert_eq(RUN(&echo, NULL, "echo", "t/hist", "--history", "1", "--count", "1"), 0, "echo: %s",
               echo.err);
  cr_assert_str_eq(echo.out, "remember me\n");
  cr_assert_eq(RUN(&ls, NULL, "ls", "--interval", "0"), 0, "ls: %s", ls.err);
  cr_assert_not_null(strstr(ls.out, "t/hist"), "%s", ls.out);
  run_free(&pub);
  run_free(&echo);
  run_free(&ls);
}

/* ---- ls and stat ----------------------------------------------------------- */

static json_t *parse_json(const struct run *r) {
  json_error_t je;
  json_t *v = json_loads(r->out, 0, &je);
  cr_assert_not_null(v, "not JSON (%s at line %d): %s", je.text, je.line, r->out);
  return v;
}

static json_t *find_topic(json_t *list, const char *name) {
  json_t *t;
  size_t i;
  json_array_foreach(list, i, t) {
    if (strcmp(json_string_value(json_object_get(t, "name")), name) == 0)
      return t;
  }
  return NULL;
}

static json_int_t jint(const json_t *o, const char *k) {
  const json_t *v = json_object_get(o, k);
  cr_assert(json_is_integer(v), "%s is not an integer", k);
  return json_integer_value(v);
}

Test(cli, ls_and_stat_json) {
  struct run echo, pub, ls, st;
  json_t *v, *t, *subs, *s;

  /* A subscriber named "watcher" stays attached; 3 messages are published
   * once it is. */
  run_start(&echo, NULL,
            (const char *const[]){"echo", "t/ls", "--name", "watcher", "--count", "1000", "--slots",
                                  "16", "--slot-size", "256", NULL});
  /* Both state the parameters: whichever comes first creates the topic. */
  cr_assert_eq(RUN(&pub, NULL, "pub", "t/ls", "--wait-subs", "1", "--count", "3", "--slots", "16",
                   "--slot-size", "256", "x"),
               0, "pub: %s", pub.err);

  cr_assert_eq(RUN(&ls, NULL, "ls", "--json", "--interval", "0.05"), 0, "ls: %s", ls.err);
  v = parse_json(&ls);
  t = find_topic(json_object_get(v, "topics"), "t/ls");
  cr_assert_not_null(t, "t/ls not listed: %s", ls.out);
  cr_assert_eq(jint(t, "slots"), 16);
  cr_assert_eq(jint(t, "slot_size"), 256);
  cr_assert_eq(jint(t, "max_subs"), 64);
  cr_assert_eq(jint(t, "publishers"), 0);
  cr_assert_eq(jint(t, "subscribers"), 1);
  cr_assert_eq(jint(t, "published"), 3);
  cr_assert(json_is_real(json_object_get(t, "rate_hz")));
  cr_assert_float_eq(json_real_value(json_object_get(t, "rate_hz")), 0.0, 1e-9,
                     "nothing was published between the snapshots");
  cr_assert_not_null(find_topic(json_object_get(v, "topics"), "$sys/stats"));
  json_decref(v);

  cr_assert_eq(RUN(&st, NULL, "stat", "t/ls", "--json"), 0, "stat: %s", st.err);
  v = parse_json(&st);
  cr_assert_str_eq(json_string_value(json_object_get(v, "name")), "t/ls");
  cr_assert_eq(jint(v, "head"), 3);
  subs = json_object_get(v, "subs");
  cr_assert_eq(json_array_size(subs), 1);
  s = json_array_get(subs, 0);
  cr_assert_str_eq(json_string_value(json_object_get(s, "name")), "watcher");
  cr_assert_eq(jint(s, "pid"), echo.pid);
  cr_assert_eq(jint(s, "lost"), 0);
  /* The echo may not have read everything yet: what it has not is lag. */
  cr_assert_eq(jint(s, "received") + jint(s, "lag"), 3);
  cr_assert(json_is_false(json_object_get(s, "reliable")));
  cr_assert_eq(json_array_size(json_object_get(v, "pubs")), 0);
  json_decref(v);

  /* Ctrl-C: the echo ends cleanly and still prints its summary. */
  kill(echo.pid, SIGINT);
  cr_assert_eq(run_wait(&echo), 0, "echo: %s", echo.err);
  cr_assert_not_null(strstr(echo.err, "received 3 lost 0 checksum errors 0"), "%s", echo.err);
  run_free(&echo);
  run_free(&pub);
  run_free(&ls);
  run_free(&st);
}

Test(cli, daemon_status_and_stop) {
  struct run st, stop, again;
  char want[64];

  cr_assert_eq(RUN(&st, NULL, "daemon", "status", "--json"), 0, "%s", st.err);
  snprintf(want, sizeof(want), "{\"pid\": %d,", (int)d.pid);
  cr_assert_eq(strncmp(st.out, want, strlen(want)), 0, "%s", st.out);
  cr_assert_eq(RUN(&stop, NULL, "daemon", "stop"), 0, "%s", stop.err);
  cr_assert_not_null(strstr(stop.out, "stopped shmbusd"));
  /* It is gone: status now says so, and does not start one. */
  cr_assert_eq(RUN(&again, NULL, "daemon", "status"), 1);
  cr_assert_not_null(strstr(again.err, "no bus daemon is running"), "%s", again.err);
  run_free(&st);
  run_free(&stop);
  run_free(&again);
}

Test(cli, config_check) {
  const char *good = "# comment\nallow pub sensors/** uid:0\ndeny any ** *\n";
  const char *bad = "allow pub sensors/** uid:0\nallow publish x *\n";
  char good_path[128], bad_path[128];
  struct run ok, deny, broken;

  snprintf(good_path, sizeof(good_path), "%s", put_file("good.conf", good, strlen(good)));
  snprintf(bad_path, sizeof(bad_path), "%s", put_file("bad.conf", bad, strlen(bad)));
  cr_assert_eq(RUN(&ok, NULL, "config", "check", good_path), 0, "%s", ok.err);
  cr_assert_not_null(strstr(ok.out, "2 rules, valid"), "%s", ok.out);
  cr_assert_eq(RUN(&deny, NULL, "config", "check", good_path, "sub", "sensors/a", "--uid", "0"), 1);
  cr_assert_not_null(strstr(deny.out, "deny sub on \"sensors/a\""), "%s", deny.out);
  cr_assert_not_null(strstr(deny.out, "good.conf:3"), "%s", deny.out);
  cr_assert_eq(RUN(&broken, NULL, "config", "check", bad_path), 1);
  cr_assert_not_null(strstr(broken.err, "bad.conf:2"), "%s", broken.err);
  run_free(&ok);
  run_free(&deny);
  run_free(&broken);
}

/* ---- errors a user can act on ----------------------------------------------- */

Test(cli, error_permission_denied_names_the_rule) {
  const char *rules = "deny pub secret/** *\n";
  char arg[160];
  struct run pub;

  du_stop(&d);
  snprintf(arg, sizeof(arg), "--config=%s", put_file("deny.conf", rules, strlen(rules)));
  d.extra = arg;
  du_start(&d);
  setenv("SHMBUS_DIR", d.dir, 1);
  cr_assert_eq(RUN(&pub, NULL, "pub", "secret/plans", "hi"), 1);
  cr_assert_not_null(strstr(pub.err, "permission denied"), "%s", pub.err);
  cr_assert_not_null(strstr(pub.err, "deny.conf:1"), "%s", pub.err);
  run_free(&pub);
}

Test(cli, error_no_daemon_and_autostart_disabled) {
  struct run pub;
  char empty[160];

  snprintf(empty, sizeof(empty), "%s/nobus", work);
  cr_assert_eq(mkdir(empty, 0700), 0);
  setenv("SHMBUS_DIR", empty, 1);
  cr_assert_eq(RUN(&pub, NULL, "pub", "t/x", "hi"), 1);
  cr_assert_not_null(strstr(pub.err, "no bus daemon is running"), "%s", pub.err);
  cr_assert_not_null(strstr(pub.err, "autostart is disabled"), "%s", pub.err);
  run_free(&pub);
}

Test(cli, error_payload_too_large_gives_the_limit) {
  struct run pub;

  cr_assert_eq(RUN(&pub, NULL, "pub", "t/small", "--slot-size", "16", "seventeen bytes!!"), 1);
  cr_assert_not_null(strstr(pub.err, "a message of 17 bytes"), "%s", pub.err);
  cr_assert_not_null(strstr(pub.err, "slot size is 16 bytes"), "%s", pub.err);
  run_free(&pub);
}

Test(cli, error_malformed_json_gives_the_position) {
  struct run pub;

  cr_assert_eq(RUN(&pub, NULL, "pub", "t/j", "--json", "{\"a\": 1,\n \"b\": }"), 1);
  cr_assert_not_null(strstr(pub.err, "malformed JSON: line 2, column"), "%s", pub.err);
  run_free(&pub);
}

Test(cli, error_unknown_topic) {
  struct run st;

  cr_assert_eq(RUN(&st, NULL, "stat", "no/such/topic"), 1);
  cr_assert_not_null(strstr(st.err, "unknown topic \"no/such/topic\""), "%s", st.err);
  run_free(&st);
}

Test(cli, echo_timeout_without_messages_exits_3) {
  struct run echo;

  cr_assert_eq(RUN(&echo, NULL, "echo", "t/silent", "--timeout", "0.1"), 3);
  cr_assert_not_null(strstr(echo.err, "received 0 lost 0 checksum errors 0"), "%s", echo.err);
  run_free(&echo);
}

Test(cli, usage_errors_exit_2) {
  struct run a, b, c, h;

  cr_assert_eq(RUN(&a, NULL, "pub"), 2);
  cr_assert_eq(RUN(&b, NULL, "echo", "t", "--count", "many"), 2);
  cr_assert_not_null(strstr(b.err, "--count"), "%s", b.err);
  cr_assert_eq(RUN(&c, NULL, "frobnicate"), 2);
  cr_assert_eq(RUN(&h, NULL, "pub", "--help"), 0);
  cr_assert_not_null(strstr(h.out, "--wait-subs"));
  run_free(&a);
  run_free(&b);
  run_free(&c);
  run_free(&h);
}

Test(cli, wait_subs_gives_up_after_wait_timeout) {
  struct run pub;

  cr_assert_eq(RUN(&pub, NULL, "pub", "t/lonely", "--wait-subs", "2", "--wait-timeout", "0.1", "x"),
               1);
  cr_assert_not_null(strstr(pub.err, "0 of 2 subscribers attached to \"t/lonely\""), "%s", pub.err);
  cr_assert_not_null(strstr(pub.err, "published 0 waits 0"), "%s", pub.err);
  run_free(&pub);
}

/* Ctrl-C while pub waits: it stops, and still prints its summary. */
Test(cli, pub_interrupted_prints_its_summary) {
  shmbus_bus *bus = du_bus(&d);
  shmbus_sub *stats;
  static char tick[64 * 1024];
  struct run pub;
  bool attached = false;

  run_start(&pub, NULL, (const char *const[]){"pub", "t/intr", "--wait-subs", "1", "x", NULL});
  /* Until the daemon lists it (the handler is set before it connects):
   * between looks, wait for the daemon's next $sys/stats message, an event
   * it publishes once a second while someone subscribes. */
  cr_assert_eq(shmbus_sub_open(bus, "$sys/stats", NULL, &stats), 0);
  for (int i = 0; i < 10 && !attached; i++) {
    void *data;
    size_t len;
    if (shmbus_bus_snapshot(bus, "t/intr", &data, &len) == 0) {
      attached = memmem(data, len, "published", 9) != NULL; /* a publisher record */
      shmbus_snapshot_free(data);
    }
    if (!attached)
      cr_assert_gt(shmbus_sub_recv(stats, tick, sizeof(tick), NULL, 5000), 0,
                   "no $sys/stats message");
  }
  cr_assert(attached, "the publisher never attached");
  kill(pub.pid, SIGINT);
  cr_assert_eq(run_wait(&pub), 1, "%s", pub.err);
  cr_assert_not_null(strstr(pub.err, "interrupted"), "%s", pub.err);
  cr_assert_not_null(strstr(pub.err, "published 0 waits 0"), "%s", pub.err);
  run_free(&pub);
  shmbus_sub_close(stats);
  shmbus_bus_close(bus);
}

/* ---- options: the same everywhere, before or after the verb ----------------- */

Test(cli, bus_options_before_the_verb) {
  struct run ls, bad;

  unsetenv("SHMBUS_DIR");
  cr_assert_eq(RUN(&ls, NULL, "--dir", d.dir, "--no-autostart", "ls", "--json", "--interval", "0"),
               0, "%s", ls.err);
  cr_assert_not_null(strstr(ls.out, "$sys/stats"), "%s", ls.out);
  cr_assert_eq(RUN(&bad, NULL, "--count", "3", "ls"), 2);
  cr_assert_not_null(strstr(bad.err, "shmbus: unrecognized option '--count' before the verb"), "%s",
                     bad.err);
  run_free(&ls);
  run_free(&bad);
}

Test(cli, getopt_messages_name_the_program) {
  struct run a, b;

  cr_assert_eq(RUN(&a, NULL, "echo", "--frobnicate", "t"), 2);
  cr_assert_not_null(strstr(a.err, "shmbus echo: unrecognized option '--frobnicate'"), "%s", a.err);
  cr_assert_eq(RUN(&b, NULL, "pub", "t", "--count"), 2);
  cr_assert_not_null(strstr(b.err, "shmbus pub: option '--count' requires an argument"), "%s",
                     b.err);
  run_free(&a);
  run_free(&b);
}

/* -j is --json in every verb (-J still taken); -r and -w mean --rate and
 * --wait-subs, in pub only: echo and stat refuse them with the long name. */
Test(cli, short_options_mean_one_thing) {
  struct run j, jj, r, w;

  cr_assert_eq(RUN(&j, NULL, "daemon", "status", "-j"), 0, "%s", j.err);
  cr_assert_not_null(strstr(j.out, "\"uptime_ms\""), "%s", j.out);
  cr_assert_eq(RUN(&jj, NULL, "ls", "-J", "-i", "0"), 0, "%s", jj.err);
  cr_assert_not_null(strstr(jj.out, "\"topics\""), "%s", jj.out);
  cr_assert_eq(RUN(&r, NULL, "echo", "-r", "t"), 2);
  cr_assert_not_null(strstr(r.err, "--reliable"), "%s", r.err);
  cr_assert_eq(RUN(&w, NULL, "stat", "-w", "t"), 2);
  cr_assert_not_null(strstr(w.err, "--watch"), "%s", w.err);
  run_free(&j);
  run_free(&jj);
  run_free(&r);
  run_free(&w);
}

Test(cli, sizes_take_k_m_g) {
  struct run pub, st, big;
  json_t *v;

  cr_assert_eq(RUN(&pub, NULL, "pub", "t/kilo", "--slot-size", "4K", "--retain", "x"), 0, "%s",
               pub.err);
  cr_assert_eq(RUN(&st, NULL, "stat", "t/kilo", "--json"), 0, "%s", st.err);
  v = json_loads(st.out, 0, NULL);
  cr_assert_not_null(v, "%s", st.out);
  cr_assert_eq(json_integer_value(json_object_get(v, "slot_size")), 4096, "%s", st.out);
  json_decref(v);
  /* Above the largest slot: a range error, not "not a number". */
  cr_assert_eq(RUN(&big, NULL, "pub", "t/giga", "--slot-size", "1G", "x"), 2);
  cr_assert_not_null(strstr(big.err, "1..67108864"), "%s", big.err);
  run_free(&pub);
  run_free(&st);
  run_free(&big);
}

/* --system is taken by every verb, config too (the system bus's file,
 * owned by root). */
Test(cli, config_check_takes_system) {
  const char *rules = "allow sub news/** *\n";
  const char *path = put_file("sys.conf", rules, strlen(rules));
  struct run a, b;

  cr_assert_eq(RUN(&a, NULL, "--system", "config", "check", path, "sub", "news/x", "--uid", "5"), 0,
               "%s", a.err);
  cr_assert_not_null(strstr(a.out, "decided by"), "%s", a.out);
  /* Owner root: uid 5 may not publish (default policy), root may. */
  cr_assert_eq(RUN(&b, NULL, "config", "check", "--system", path, "pub", "news/x", "--uid", "5"), 1,
               "%s", b.out);
  run_free(&a);
  run_free(&b);
}

Test(cli, sys_topics_are_reserved_for_the_daemon) {
  struct run pub;

  cr_assert_eq(RUN(&pub, NULL, "pub", "$sys/mine", "x"), 1);
  cr_assert_not_null(strstr(pub.err, "reserved for the daemon"), "%s", pub.err);
  run_free(&pub);
}

Test(cli, pub_file_refuses_directories_and_endless_input) {
  struct run dir, zero, small;

  cr_assert_eq(RUN(&dir, NULL, "pub", "t/f", "--file", work), 1);
  cr_assert_not_null(strstr(dir.err, "is a directory"), "%s", dir.err);
  /* Read up to the largest message and no further (not until memory runs
   * out): the process ends with its own message, not a signal. */
  cr_assert_eq(RUN(&zero, NULL, "pub", "t/f", "-f", "/dev/zero"), 1);
  cr_assert_not_null(strstr(zero.err, "more than the 67108864 bytes"), "%s", zero.err);
  cr_assert_eq(RUN(&small, NULL, "pub", "t/f", "-f", "/dev/zero", "--slot-size", "1K"), 1);
  cr_assert_not_null(strstr(small.err, "more than the 1024 bytes"), "%s", small.err);
  run_free(&dir);
  run_free(&zero);
  run_free(&small);
}

/* --watch into a pipe: reports one after another, no terminal codes. */
Test(cli, stat_watch_into_a_pipe_is_plain_text) {
  struct run pub;
  char buf[16384];
  size_t len = 0;
  int p[2], st, reports = 0;
  pid_t pid;

  cr_assert_eq(RUN(&pub, NULL, "pub", "t/watched", "--retain", "x"), 0, "%s", pub.err);
  cr_assert_eq(pipe(p), 0);
  pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    dup2(p[1], 1);
    close(p[0]);
    close(p[1]);
    execl(SHMBUS_CLI_PATH, "shmbus", "stat", "t/watched", "--watch", "--interval", "0.01",
          (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  /* Until two reports came (or the pipe closed): then stop it. */
  while (reports < 2 && len < sizeof(buf) - 1) {
    ssize_t n = read(p[0], buf + len, sizeof(buf) - 1 - len);
    if (n < 0 && errno == EINTR)
      continue;
    cr_assert_gt(n, 0, "stat --watch ended early");
    len += (size_t)n;
    buf[len] = '\0';
    reports = 0;
    for (const char *q = buf; (q = strstr(q, "topic t/watched")) != NULL; q++)
      reports++;
  }
  kill(pid, SIGTERM);
  st = du_wait(pid);
  close(p[0]);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "stat --watch: status %d", st);
  cr_assert_null(memchr(buf, '\033', len), "escape codes in a pipe: %s", buf);
  run_free(&pub);
}

/* Ctrl-C during --rate's pacing ends pub at once, with its summary. */
Test(cli, pub_rate_pacing_stops_on_ctrl_c) {
  struct run echo, pub;
  unsigned long long r, l, e, n, w;

  run_start(&echo, NULL, (const char *const[]){"echo", "t/slow", "--count", "1", NULL});
  /* One message now, the next due in 1000 s. */
  run_start(&pub, NULL,
            (const char *const[]){"pub", "t/slow", "--wait-subs", "1", "--rate", "0.001", "--count",
                                  "2", "x", NULL});
  cr_assert_eq(run_wait(&echo), 0, "%s", echo.err);
  echo_summary(&echo, &r, &l, &e);
  cr_assert_eq(r, 1);
  /* The first message was published: pub paces (or is about to). */
  kill(pub.pid, SIGINT);
  cr_assert_eq(run_wait(&pub), 1, "%s", pub.err);
  cr_assert_not_null(strstr(pub.err, "interrupted"), "%s", pub.err);
  pub_summary(&pub, &n, &w);
  cr_assert_eq(n, 1);
  run_free(&echo);
  run_free(&pub);
}

/* ---- the bus directory and autostart ----------------------------------------- */

Test(cli, mistyped_dir_is_an_error_that_names_it) {
  struct run pub, ls;
  char typo[160];
  struct stat st;

  snprintf(typo, sizeof(typo), "%s/no-such-bus", work);
  unsetenv("SHMBUS_NO_AUTOSTART");
  cr_assert_eq(RUN(&pub, NULL, "pub", "--dir", typo, "t/x", "hi"), 1);
  cr_assert_not_null(strstr(pub.err, typo), "%s", pub.err);
  cr_assert_not_null(strstr(pub.err, "does not exist"), "%s", pub.err);
  cr_assert_eq(RUN(&ls, NULL, "--dir", typo, "ls"), 1);
  cr_assert_not_null(strstr(ls.err, "does not exist"), "%s", ls.err);
  /* Nothing was created, nothing started. */
  cr_assert_neq(stat(typo, &st), 0);
  run_free(&pub);
  run_free(&ls);
}

Test(cli, system_option_never_autostarts) {
  struct run ls;
  struct stat st;

  if (stat("/run/shmbus/shmbusd.sock", &st) == 0)
    cli_skip("a system bus runs on this machine");
  unsetenv("SHMBUS_NO_AUTOSTART");
  cr_assert_eq(RUN(&ls, NULL, "pub", "--system", "t/x", "hi"), 1);
  cr_assert_not_null(strstr(ls.err, "no system bus daemon is running on /run/shmbus"), "%s",
                     ls.err);
  cr_assert_neq(stat("/run/shmbus/shmbusd.sock", &st), 0);
  run_free(&ls);
}

/* A tree laid out as installed, in a temp dir: <tree>/bin/shmbus and,
 * unless `without_daemon`, <tree>/bin/shmbusd; <tree>/bus exists. */
static void make_tree(char *tree, size_t cap, bool without_daemon) {
  char cmd[512];

  snprintf(tree, cap, "%s/tree", work);
  snprintf(cmd, sizeof(cmd),
           "mkdir -p '%s/bin' '%s/bus' && chmod 700 '%s/bus' && cp '%s' '%s/bin/shmbus'%s%s%s%s",
           tree, tree, tree, SHMBUS_CLI_PATH, tree, without_daemon ? "" : " && cp '",
           without_daemon ? "" : SHMBUSD_PATH, without_daemon ? "" : "' '",
           without_daemon ? "" : tree);
  if (!without_daemon)
    strncat(cmd, "/bin/shmbusd'", sizeof(cmd) - strlen(cmd) - 1);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
}

/* The daemon's pid, from the lock file it writes. */
/* The program a daemon process runs: /proc/PID/exe, or under valgrind
 * (which runs the daemon too, SHMBUS_UNDER_VALGRIND) the first argument of
 * its command line that names a shmbusd. */
static void daemon_program(pid_t pid, char *buf, size_t cap) {
  char path[64];
  ssize_t n;

  snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
  n = readlink(path, buf, cap - 1);
  cr_assert_gt(n, 0);
  buf[n] = '\0';
  if (getenv("SHMBUS_UNDER_VALGRIND") != NULL) {
    char cmd[4096];
    int fd;
    size_t off = 0;
    snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    cr_assert_geq(fd, 0);
    n = read(fd, cmd, sizeof(cmd) - 1);
    close(fd);
    cr_assert_gt(n, 0);
    cmd[n] = '\0';
    while (off < (size_t)n) {
      const char *a = cmd + off;
      size_t len = strlen(a);
      if (len >= 8 && strcmp(a + len - 8, "/shmbusd") == 0) {
        snprintf(buf, cap, "%s", a);
        return;
      }
      off += len + 1;
    }
  }
}

static pid_t tree_daemon_pid(const char *tree) {
  char path[256];
  char *text;
  long pid;

  snprintf(path, sizeof(path), "%s/bus/shmbusd.lock", tree);
  text = slurp(path, NULL);
  pid = strtol(text, NULL, 10);
  free(text);
  cr_assert_gt(pid, 0);
  return (pid_t)pid;
}

Test(cli, autostart_finds_the_daemon_beside_the_program_and_it_exits_when_idle) {
  struct run pub, stop;
  char tree[160], exe[192], link[256], want[256], bus[192];
  struct pollfd pfd;
  pid_t pid;
  int fd;

  if (getenv("SHMBUS_UNDER_VALGRIND") != NULL)
    cli_skip("valgrind 3.19 does not implement pidfd_open, which this test waits with "
             "(covered by the plain and sanitizer runs)");

  make_tree(tree, sizeof(tree), false);
  snprintf(exe, sizeof(exe), "%s/bin/shmbus", tree);
  snprintf(bus, sizeof(bus), "%s/bus", tree);
  unsetenv("SHMBUS_NO_AUTOSTART");
  unsetenv("SHMBUS_DAEMON");
  setenv("SHMBUS_DIR", bus, 1);
  setenv("PATH", "/nonexistent", 1);
  /* 1. It stays (SHMBUS_IDLE_EXIT=0): it is the copy beside the program. */
  setenv("SHMBUS_IDLE_EXIT", "0", 1);
  run_start_exe(&pub, exe, NULL, (const char *const[]){"pub", "t/auto", "x", NULL});
  cr_assert_eq(run_wait(&pub), 0, "%s", pub.err);
  cr_assert_not_null(strstr(pub.err, "started shmbusd"), "%s", pub.err);
  pid = tree_daemon_pid(tree);
  daemon_program(pid, want, sizeof(want));
  snprintf(link, sizeof(link), "%s/bin/shmbusd", tree);
  cr_assert_str_eq(want, link);
  run_start_exe(&stop, exe, NULL, (const char *const[]){"daemon", "stop", NULL});
  cr_assert_eq(run_wait(&stop), 0, "%s", stop.err);
  run_free(&pub);
  run_free(&stop);
  /* 2. With an idle time, it exits once its last client left. */
  setenv("SHMBUS_IDLE_EXIT", "0.2", 1);
  run_start_exe(&pub, exe, NULL, (const char *const[]){"pub", "t/auto", "x", NULL});
  cr_assert_eq(run_wait(&pub), 0, "%s", pub.err);
  pid = tree_daemon_pid(tree);
  fd = (int)syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0 && errno == ESRCH)
    return; /* gone already */
  cr_assert_geq(fd, 0, "pidfd_open: %s", strerror(errno));
  pfd = (struct pollfd){fd, POLLIN, 0};
  /* A bound against a hang only: the daemon exits ~0.2 s after pub did. */
  cr_assert_eq(poll(&pfd, 1, 60000), 1, "the autostarted daemon did not exit when idle");
  close(fd);
  snprintf(link, sizeof(link), "%s/bus/shmbusd.sock", tree);
  cr_assert_neq(access(link, F_OK), 0, "it left its socket behind");
  run_free(&pub);
}

/* A program linked to the shared library, from a tree laid out as
 * installed elsewhere: <tree>/lib/libshmbus.so.0, <tree>/bin/shmbusd, the
 * program in <tree>/app/x/ (nothing beside it). Autostart finds the daemon
 * from the library's place, ../bin. */
Test(cli, autostart_finds_the_daemon_beside_the_shared_library) {
  char build[128], example[192], lib[192], tree[160], cmd[2048], prog[192], bus[192];
  char link[256], got[256];
  struct run pub;
  struct pollfd pfd;
  char *slash;
  pid_t pid;
  int fd;

  if (getenv("SHMBUS_UNDER_VALGRIND") != NULL)
    cli_skip("valgrind 3.19 does not implement pidfd_open, which this test waits with "
             "(covered by the plain and sanitizer runs)");

  /* The build tree: SHMBUS_CLI_PATH is <build>/cli/shmbus. */
  snprintf(build, sizeof(build), "%s", SHMBUS_CLI_PATH);
  for (int i = 0; i < 2 && (slash = strrchr(build, '/')) != NULL; i++)
    *slash = '\0';
  snprintf(example, sizeof(example), "%s/examples/shmbus-example-hello-pub", build);
  snprintf(lib, sizeof(lib), "%s/libshmbus.so.0", build);
  if (access(example, X_OK) != 0 || access(lib, R_OK) != 0)
    cli_skip("no shared library and example in this build (%s)", build);
  snprintf(tree, sizeof(tree), "%s/inst", work);
  snprintf(cmd, sizeof(cmd),
           "mkdir -p '%s/lib' '%s/bin' '%s/app/x' '%s/bus' && chmod 700 '%s/bus' && "
           "cp -L '%s' '%s/lib/' && cp '%s' '%s/bin/shmbusd' && cp '%s' '%s/app/x/hello-pub'",
           tree, tree, tree, tree, tree, lib, tree, SHMBUSD_PATH, tree, example, tree);
  cr_assert_eq(system(cmd), 0, "%s", cmd);
  snprintf(prog, sizeof(prog), "%s/app/x/hello-pub", tree);
  snprintf(bus, sizeof(bus), "%s/bus", tree);
  snprintf(cmd, sizeof(cmd), "%s/lib", tree);
  /* The build's RUNPATH yields to LD_LIBRARY_PATH: the copy is loaded. */
  setenv("LD_LIBRARY_PATH", cmd, 1);
  unsetenv("SHMBUS_NO_AUTOSTART");
  unsetenv("SHMBUS_DAEMON");
  setenv("SHMBUS_DIR", bus, 1);
  setenv("SHMBUS_IDLE_EXIT", "0", 1);
  setenv("PATH", "/nonexistent", 1);
  run_start_exe(&pub, prog, NULL, (const char *const[]){"--topic", "t/lib", "hi", NULL});
  cr_assert_eq(run_wait(&pub), 0, "%s", pub.err);
  pid = tree_daemon_pid(tree);
  daemon_program(pid, got, sizeof(got));
  snprintf(link, sizeof(link), "%s/bin/shmbusd", tree);
  cr_assert_str_eq(got, link);
  /* Not our child: stop it and wait on a pidfd. */
  fd = (int)syscall(SYS_pidfd_open, pid, 0);
  cr_assert_geq(fd, 0, "pidfd_open: %s", strerror(errno));
  cr_assert_eq(kill(pid, SIGTERM), 0);
  pfd = (struct pollfd){fd, POLLIN, 0};
  cr_assert_eq(poll(&pfd, 1, 60000), 1, "the daemon did not stop");
  close(fd);
  run_free(&pub);
}

Test(cli, autostart_names_every_place_it_looked) {
  struct run pub;
  char tree[160], exe[192], bus[192], place[256];

  make_tree(tree, sizeof(tree), true);
  snprintf(exe, sizeof(exe), "%s/bin/shmbus", tree);
  snprintf(bus, sizeof(bus), "%s/bus", tree);
  unsetenv("SHMBUS_NO_AUTOSTART");
  unsetenv("SHMBUS_DAEMON");
  setenv("SHMBUS_DIR", bus, 1);
  setenv("PATH", "/nonexistent", 1);
  run_start_exe(&pub, exe, NULL, (const char *const[]){"pub", "t/auto", "x", NULL});
  cr_assert_eq(run_wait(&pub), 1, "%s", pub.err);
  snprintf(place, sizeof(place), "%s/bin/shmbusd", tree);
  cr_assert_not_null(strstr(pub.err, place), "%s", pub.err);
  cr_assert_not_null(strstr(pub.err, "$PATH (/nonexistent)"), "%s", pub.err);
  cr_assert_not_null(strstr(pub.err, "SHMBUS_DAEMON"), "%s", pub.err);
  run_free(&pub);
  /* A daemon named by $SHMBUS_DAEMON is the only one tried, by name. */
  setenv("SHMBUS_DAEMON", "/nonexistent/shmbusd", 1);
  run_start_exe(&pub, exe, NULL, (const char *const[]){"pub", "t/auto", "x", NULL});
  cr_assert_eq(run_wait(&pub), 1, "%s", pub.err);
  cr_assert_not_null(strstr(pub.err, "/nonexistent/shmbusd (from $SHMBUS_DAEMON)"), "%s", pub.err);
  run_free(&pub);
}

/* ---- shmbusd and systemd ------------------------------------------------------ */

/* Receives one datagram from `fd` (bounded wait against a hang). */
static void recv_notify(int fd, char *buf, size_t cap) {
  struct pollfd p = {fd, POLLIN, 0};
  ssize_t n;

  cr_assert_eq(poll(&p, 1, 30000), 1, "no notification from shmbusd");
  n = recv(fd, buf, cap - 1, 0);
  cr_assert_gt(n, 0);
  buf[n] = '\0';
}

static void notify_round(const char *name, bool abstract) {
  struct sockaddr_un sa;
  socklen_t len;
  char buf[256], dir[160];
  pid_t pid;
  int fd, st;

  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", name);
  len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name) + (abstract ? 0 : 1));
  if (abstract)
    sa.sun_path[0] = '\0';
  fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  cr_assert_geq(fd, 0);
  cr_assert_eq(bind(fd, (struct sockaddr *)&sa, len), 0, "bind %s: %s", name, strerror(errno));
  setenv("NOTIFY_SOCKET", name, 1);
  snprintf(dir, sizeof(dir), "%s/notified-%d", work, abstract);
  pid = pu_start_daemon(SHMBUSD_PATH, dir, NULL, true);
  unsetenv("NOTIFY_SOCKET");
  cr_assert_gt(pid, 0);
  recv_notify(fd, buf, sizeof(buf));
  cr_assert_eq(strncmp(buf, "READY=1", 7), 0, "%s", buf);
  snprintf(dir, sizeof(dir), "MAINPID=%d", (int)pid);
  cr_assert_not_null(strstr(buf, dir), "%s", buf);
  kill(pid, SIGTERM);
  recv_notify(fd, buf, sizeof(buf));
  cr_assert_str_eq(buf, "STOPPING=1");
  st = du_wait(pid);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
  close(fd);
}

Test(cli, shmbusd_notifies_systemd_ready_and_stopping) {
  char path[128], abs[64];

  snprintf(path, sizeof(path), "%s/notify.sock", work);
  notify_round(path, false);
  snprintf(abs, sizeof(abs), "@shmbus-test-notify-%d", (int)getpid());
  notify_round(abs, true);
}

/* A daemon started by hand with --idle-exit exits once idle (0); a bad
 * value is a usage error (2). */
Test(cli, shmbusd_idle_exit) {
  char dir[160];
  pid_t pid;
  int st;

  snprintf(dir, sizeof(dir), "%s/idle", work);
  pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 2);
    execl(SHMBUSD_PATH, "shmbusd", "--foreground", "--dir", dir, "--idle-exit", "soon",
          (char *)NULL);
    _exit(127);
  }
  st = du_wait(pid);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %d", st);
  /* Nobody connects: it exits by itself, cleanly, socket removed. */
  pid = pu_start_daemon(SHMBUSD_PATH, dir, "--idle-exit=0.05", true);
  cr_assert_gt(pid, 0);
  st = du_wait(pid);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
  snprintf(dir, sizeof(dir), "%s/idle/shmbusd.sock", work);
  cr_assert_neq(access(dir, F_OK), 0, "socket left behind");
}

/* ---- messages that name the real cause --------------------------------------- */

/* Without /proc the library cannot check a region: it says so, instead
 * of calling the region corrupted. */
Test(cli, no_proc_says_proc) {
  struct run pub;
  char out[128], err[128];
  char *text;
  pid_t pid;
  int st;

  if (geteuid() != 0)
    cli_skip("needs root to hide /proc in a mount namespace");
  if (getenv("SHMBUS_UNDER_VALGRIND") != NULL)
    cli_skip("valgrind itself needs /proc (it cannot run the CLI without it)");
  snprintf(out, sizeof(out), "%s/noproc.out", work);
  snprintf(err, sizeof(err), "%s/noproc.err", work);
  pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (e < 0)
      _exit(126);
    dup2(e, 2);
    if (unshare(CLONE_NEWNS) != 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("none", "/proc", "tmpfs", 0, NULL) != 0)
      _exit(125); /* no namespaces here */
    execl(SHMBUS_CLI_PATH, "shmbus", "pub", "t/noproc", "x", (char *)NULL);
    _exit(127);
  }
  st = du_wait(pid);
  cr_assert(WIFEXITED(st));
  if (WEXITSTATUS(st) == 125)
    cli_skip("cannot make a mount namespace without /proc");
  text = slurp(err, NULL);
  cr_assert_eq(WEXITSTATUS(st), 1, "%s", text);
  cr_assert_not_null(strstr(text, "/proc is not mounted"), "%s", text);
  cr_assert_null(strstr(text, "corrupted"), "%s", text);
  free(text);
  (void)pub;
  (void)out;
}

/* A process at its descriptor limit loses the daemon's reply with the
 * topic's memory: the error says so, not "connection lost". */
Test(cli, descriptor_limit_is_named) {
  shmbus_bus *bus = du_bus(&d);
  struct rlimit rl = {64, 64};
  shmbus_sub *sub = NULL;
  int held[64];
  int n = 0, rv;

  if (getenv("SHMBUS_UNDER_VALGRIND") != NULL)
    cli_skip("valgrind keeps descriptors of its own above the limit and refuses a lower "
             "RLIMIT_NOFILE");
  cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
  /* Fill the table, then free one slot: the subscriber's eventfd takes
   * it, and the reply's descriptors find none. */
  while (n < 64 && (held[n] = dup(0)) >= 0)
    n++;
  cr_assert_eq(errno, EMFILE);
  cr_assert_gt(n, 0);
  close(held[--n]);
  rv = shmbus_sub_open(bus, "t/fds", NULL, &sub);
  cr_assert_eq(rv, -EMFILE, "sub_open: %s", shmbus_strerror(rv));
  cr_assert_not_null(strstr(shmbus_strerror(rv), "RLIMIT_NOFILE"));
  cr_assert_not_null(strstr(shmbus_bus_last_error(bus), "descriptor limit"), "%s",
                     shmbus_bus_last_error(bus));
  while (n > 0)
    close(held[--n]);
  shmbus_bus_close(bus);
}
