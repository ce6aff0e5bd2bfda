/* The operator's tools (issue 15) as programs against a real daemon:
 * `shmbus echo` of patterns (topics that exist and topics created later),
 * its verbose, JSON-lines and --format output; `shmbus hz` and `shmbus bw`
 * measured against `shmbus pub --rate`; `shmbus metrics` checked with
 * promtool and over HTTP. Ordering comes from `pub --wait-subs` (the
 * publisher waits until the subscriber found its topic) and from waiting
 * for processes, never from sleeps. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cliutil.h"
#include "shmbus/shmbus.h"

TestSuite(opscli, .init = cu_setup, .fini = cu_teardown, .timeout = 120);

/* Splits output into lines (in place); returns the count. */
static size_t lines(char *s, char **out, size_t max) {
  size_t n = 0;
  char *save = NULL;
  char *l;

  for (l = strtok_r(s, "\n", &save); l != NULL && n < max; l = strtok_r(NULL, "\n", &save))
    out[n++] = l;
  return n;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- echo of patterns ------------------------------------------------------- */

Test(opscli, echo_pattern_picks_up_topics_created_later) {
  struct cu_run echo, p1, p2, p3;

  /* p/old exists before echo starts; the others are created after. */
  cu_start(&p1, (const char *const[]){"pub", "p/old", "--wait-subs", "1", "old one", NULL});
  cu_start(&echo, (const char *const[]){"echo", "p/**", "--count", "4", NULL});
  cr_assert_eq(cu_wait(&p1), 0, "pub: %s", p1.err);
  cr_assert_eq(CU_RUN(&p2, "pub", "p/new/deep", "--wait-subs", "1", "--count", "2", "hello"), 0,
               "pub: %s", p2.err);
  cr_assert_eq(CU_RUN(&p3, "pub", "other/x", "not for us"), 0);
  cu_free(&p3);
  cr_assert_eq(CU_RUN(&p3, "pub", "p", "--wait-subs", "1", "top"), 0, "pub: %s", p3.err);
  cr_assert_eq(cu_wait(&echo), 0, "echo: %s", echo.err);
  {
    /* Each topic has its own ring and subscriber: the order between
     * topics is the order of their wake-ups, which a loaded machine may
     * swap. Within a topic it is the publish order. */
    static const char *const want[] = {"p/new/deep: hello", "p/new/deep: hello", "p/old: old one",
                                       "p: top"};
    char *l[8];
    size_t n = lines(echo.out, l, 8), i;
    cr_assert_eq(n, 4, "%s", echo.out);
    qsort(l, n, sizeof(l[0]), cmp_str);
    for (i = 0; i < n; i++)
      cr_assert_str_eq(l[i], want[i]);
  }
  cr_assert_not_null(strstr(echo.err, "received 4 lost 0 checksum errors 0"), "%s", echo.err);
  cu_free(&echo);
  cu_free(&p1);
  cu_free(&p2);
  cu_free(&p3);
}

Test(opscli, echo_verbose_json_lines_and_format) {
  struct cu_run echo, fmt, pub, js;
  char *l[8];
  json_t *v;
  json_error_t je;
  size_t n, i;

  cu_start(&echo, (const char *const[]){"echo", "v/*", "--count", "2", "-v", "--json", NULL});
  cu_start(&fmt, (const char *const[]){"echo", "v/a", "v/b", "--count", "2", "--format",
                                       "%t|%s|%n|%m|%%", NULL});
  cr_assert_eq(CU_RUN(&pub, "pub", "v/a", "--wait-subs", "2", "plain text"), 0, "pub: %s", pub.err);
  cr_assert_eq(CU_RUN(&js, "pub", "v/b", "--wait-subs", "2", "--json", "{\"k\":[1,2]}"), 0,
               "pub: %s", js.err);
  cr_assert_eq(cu_wait(&echo), 0, "echo: %s", echo.err);
  cr_assert_eq(cu_wait(&fmt), 0, "echo: %s", fmt.err);
  n = lines(echo.out, l, 8);
  cr_assert_eq(n, 2, "%s", echo.out);
  for (i = 0; i < n; i++) {
    v = json_loads(l[i], 0, &je);
    cr_assert_not_null(v, "not JSON: %s (%s)", l[i], je.text);
    cr_assert(json_is_integer(json_object_get(v, "seq")));
    cr_assert(json_is_integer(json_object_get(v, "pub")));
    cr_assert(json_integer_value(json_object_get(v, "ts_ns")) > 0);
    /* Two topics, two subscribers: either may be delivered first. */
    if (strcmp(json_string_value(json_object_get(v, "topic")), "v/a") == 0) {
      cr_assert_str_eq(json_string_value(json_object_get(v, "payload")), "plain text");
      cr_assert_eq(json_integer_value(json_object_get(v, "size")), 10);
    } else {
      json_t *want = json_loads("{\"k\":[1,2]}", 0, NULL);
      cr_assert_str_eq(json_string_value(json_object_get(v, "topic")), "v/b");
      cr_assert_eq(json_integer_value(json_object_get(v, "size")), 6);
      cr_assert(json_equal(json_object_get(v, "payload"), want), "%s", l[i]);
      json_decref(want);
    }
    json_decref(v);
  }
  n = lines(fmt.out, l, 8);
  cr_assert_eq(n, 2);
  if (strncmp(l[0], "v/b", 3) == 0) {
    char *t = l[0];
    l[0] = l[1];
    l[1] = t;
  }
  cr_assert_str_eq(l[0], "v/a|0|10|plain text|%");
  cr_assert_str_eq(l[1], "v/b|0|6|{\"k\":[1,2]}|%");
  cu_free(&echo);
  cu_free(&fmt);
  cu_free(&pub);
  cu_free(&js);
}

Test(opscli, echo_refuses_bad_patterns_and_formats) {
  struct cu_run r;

  cr_assert_eq(CU_RUN(&r, "echo", "sens*"), 2);
  cr_assert_not_null(strstr(r.err, "not a topic pattern"), "%s", r.err);
  cu_free(&r);
  cr_assert_eq(CU_RUN(&r, "echo", "a/**x/b"), 2);
  cu_free(&r);
  cr_assert_eq(CU_RUN(&r, "echo", "a", "--format", "%q"), 2);
  cu_free(&r);
}

/* ---- hz and bw -------------------------------------------------------------- */

/* The last JSON report of `out` that has `key`; its value. */
static double last_report(char *out, const char *key, json_t **row) {
  char *l[64];
  size_t n = lines(out, l, 64);
  double v = -1;
  size_t i;

  for (i = 0; i < n; i++) {
    json_error_t je;
    json_t *o = json_loads(l[i], 0, &je);
    cr_assert_not_null(o, "not a JSON line: %s (%s)", l[i], je.text);
    if (json_is_number(json_object_get(o, key))) {
      v = json_number_value(json_object_get(o, key));
      if (*row != NULL)
        json_decref(*row);
      *row = o;
    } else {
      json_decref(o);
    }
  }
  return v;
}

Test(opscli, hz_and_bw_measure_a_500_hz_publisher) {
  struct cu_run hz, bw, pub;
  json_t *hrow = NULL, *brow = NULL;
  double rate, bps;

  /* The last report covers the last 2500 messages, 5 s: a publisher that
   * the machine holds up for a while (then catches up: pub keeps an
   * absolute schedule) moves the numbers by that while over 5 s. */
  cu_start(&hz,
           (const char *const[]){"hz", "h/**", "--json", "--count", "6", "--window", "2500", NULL});
  cu_start(&bw,
           (const char *const[]){"bw", "h/**", "--json", "--count", "6", "--window", "2500", NULL});
  /* Seven seconds at 500/s: the tools report six times meanwhile. */
  cu_start(&pub,
           (const char *const[]){"pub", "h/rate", "--wait-subs", "2", "--rate", "500", "--count",
                                 "3500", "--size", "1000", "--slot-size", "1024", NULL});
  cr_assert_eq(cu_wait(&hz), 0, "hz: %s", hz.err);
  cr_assert_eq(cu_wait(&bw), 0, "bw: %s", bw.err);
  cr_assert_eq(cu_wait(&pub), 0, "pub: %s", pub.err);
  rate = last_report(hz.out, "rate_hz", &hrow);
  cr_assert_not_null(hrow, "no rate in: %s", hz.out);
  cr_assert_str_eq(json_string_value(json_object_get(hrow, "topic")), "h/rate");
  cr_assert(rate > 500 * 0.97 && rate < 500 * 1.03, "hz says %.3f Hz, the publisher 500", rate);
  cr_assert(json_number_value(json_object_get(hrow, "mean_s")) > 0.002 * 0.97);
  cr_assert(json_number_value(json_object_get(hrow, "min_s")) <=
            json_number_value(json_object_get(hrow, "max_s")));
  cr_assert(json_is_integer(json_object_get(hrow, "lost")));
  bps = last_report(bw.out, "bytes_per_s", &brow);
  cr_assert_not_null(brow, "no bandwidth in: %s", bw.out);
  cr_assert(bps > 500000 * 0.97 && bps < 500000 * 1.03, "bw says %.0f B/s, the publisher 500000",
            bps);
  cr_assert_eq(json_integer_value(json_object_get(brow, "min_size")), 1000);
  cr_assert_eq(json_integer_value(json_object_get(brow, "max_size")), 1000);
  json_decref(hrow);
  json_decref(brow);
  cu_free(&hz);
  cu_free(&bw);
  cu_free(&pub);
}

Test(opscli, hz_text_and_usage) {
  struct cu_run r, pub;

  cr_assert_eq(CU_RUN(&r, "hz"), 2);
  cu_free(&r);
  cr_assert_eq(CU_RUN(&r, "bw", "x*"), 2);
  cu_free(&r);
  cr_assert_eq(CU_RUN(&r, "hz", "--help"), 0);
  cr_assert_not_null(strstr(r.out, "usage: shmbus hz"));
  cu_free(&r);
  cu_start(&r, (const char *const[]){"hz", "t/text", "--count", "2", "--interval", "0.2", NULL});
  cr_assert_eq(CU_RUN(&pub, "pub", "t/text", "--wait-subs", "1", "--count", "50", "--rate", "100",
                      "--size", "64"),
               0, "pub: %s", pub.err);
  cr_assert_eq(cu_wait(&r), 0, "hz: %s", r.err);
  /* Each line names the topic and ends with its losses. */
  cr_assert_not_null(strstr(r.out, "t/text: "), "%s", r.out);
  cr_assert_not_null(strstr(r.out, " lost 0\n"), "%s", r.out);
  cu_free(&r);
  cu_free(&pub);
}

/* ---- metrics ---------------------------------------------------------------- */

/* Criterion does not run .fini for a skipped test: clean up first. */
#define ops_skip(...)                                                                              \
  do {                                                                                             \
    cu_teardown();                                                                                 \
    cr_skip_test(__VA_ARGS__);                                                                     \
  } while (0)

/* A participant with known numbers: named with a quote and a backslash
 * (label escaping), 5 published on m/t, 3 of them received, 2 behind. */
static shmbus_bus *metrics_fixture(void) {
  struct shmbus_bus_opts o;
  shmbus_bus *bus;
  shmbus_pub *pub;
  shmbus_sub *sub;
  char buf[64];
  int i;

  du_opts(&cu_daemon, &o);
  o.name = "we\"ird\\name";
  cr_assert_eq(shmbus_bus_open(&bus, &o), 0);
  cr_assert_eq(shmbus_sub_open(bus, "m/t", NULL, &sub), 0);
  cr_assert_eq(shmbus_pub_open(bus, "m/t", NULL, &pub), 0);
  for (i = 0; i < 5; i++)
    cr_assert_eq(shmbus_pub_publish(pub, "x", 1), 0);
  for (i = 0; i < 3; i++)
    cr_assert_eq(shmbus_sub_try_recv(sub, buf, sizeof(buf), NULL), 1);
  return bus;
}

static const char metrics_sub_labels[] =
    "{topic=\"m/t\",index=\"0\",name=\"we\\\"ird\\\\name\",reliable=\"false\"}";

/* Runs a program with `in` on its stdin; returns its exit status and its
 * stdout+stderr in *out (malloc'd). */
static int run_with_input(const char *const *argv, const char *in, size_t inlen, char **out) {
  char path[128];
  FILE *f;
  int st;
  pid_t pid;

  snprintf(path, sizeof(path), "%s/filter.out", cu_work);
  f = fopen(path, "w");
  cr_assert_not_null(f);
  fclose(f);
  {
    char inpath[128];
    snprintf(inpath, sizeof(inpath), "%s/filter.in", cu_work);
    f = fopen(inpath, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(in, 1, inlen, f), inlen);
    fclose(f);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
      int i = open(inpath, O_RDONLY);
      int o = open(path, O_WRONLY | O_TRUNC);
      if (i < 0 || o < 0)
        _exit(126);
      dup2(i, 0);
      dup2(o, 1);
      dup2(o, 2);
      execvp(argv[0], (char *const *)argv);
      _exit(127);
    }
  }
  st = du_wait(pid);
  *out = cu_slurp(path, NULL);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static bool have_program(const char *name) {
  char cmd[256];
  snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
  return system(cmd) == 0;
}

/* The reference OpenMetrics parser (python3-prometheus-client), strict:
 * it rejects what the spec rejects (a counter sample without _total, a
 * bad escape, no # EOF). */
static const char om_check[] =
    "import sys\n"
    "from prometheus_client.openmetrics.parser import text_string_to_metric_families as p\n"
    "fams = list(p(sys.stdin.read()))\n"
    "print('families', len(fams))\n";

Test(opscli, metrics_are_valid_openmetrics_and_pass_promtool) {
  struct cu_run om, prom;
  shmbus_bus *bus;
  char want[256];
  char *out;

  if (!have_program("promtool"))
    ops_skip("promtool is not installed (Debian package prometheus; scripts/deps.sh --test)");
  if (system("/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null") != 0)
    ops_skip("python3-prometheus-client is not installed (scripts/deps.sh --test)");
  bus = metrics_fixture();
  cr_assert_eq(CU_RUN(&om, "metrics"), 0, "metrics: %s", om.err);
  cr_assert_eq(CU_RUN(&prom, "metrics", "--format", "prometheus"), 0, "metrics: %s", prom.err);
  /* The numbers, with the label escaped. */
  cr_assert_not_null(strstr(om.out, "shmbus_up 1\n"), "%s", om.out);
  cr_assert_not_null(strstr(om.out, "shmbus_topic_published_total{topic=\"m/t\"} 5\n"), "%s",
                     om.out);
  snprintf(want, sizeof(want), "shmbus_subscriber_received_total%s 3\n", metrics_sub_labels);
  cr_assert_not_null(strstr(om.out, want), "no %s in %s", want, om.out);
  snprintf(want, sizeof(want), "shmbus_subscriber_lag%s 2\n", metrics_sub_labels);
  cr_assert_not_null(strstr(om.out, want), "no %s in %s", want, om.out);
  cr_assert_not_null(strstr(om.out, "# TYPE shmbus_topic_published counter\n"));
  cr_assert_str_eq(om.out + om.out_len - 6, "# EOF\n");
  /* Prometheus's format: the counter's TYPE names the sample, no EOF. */
  cr_assert_not_null(strstr(prom.out, "# TYPE shmbus_topic_published_total counter\n"));
  cr_assert_null(strstr(prom.out, "# EOF"));
  cr_assert_eq(run_with_input((const char *const[]){"promtool", "check", "metrics", NULL}, prom.out,
                              prom.out_len, &out),
               0, "promtool: %s", out);
  free(out);
  cr_assert_eq(run_with_input((const char *const[]){"/usr/bin/python3", "-c", om_check, NULL},
                              om.out, om.out_len, &out),
               0, "OpenMetrics parser: %s", out);
  free(out);
  shmbus_bus_close(bus);
  cu_free(&om);
  cu_free(&prom);
}

Test(opscli, metrics_textfile_is_written_atomically) {
  struct cu_run r;
  char path[160];
  char *text;
  shmbus_bus *bus = metrics_fixture();

  snprintf(path, sizeof(path), "%s/shmbus.prom", cu_work);
  cr_assert_eq(CU_RUN(&r, "metrics", "--textfile", path), 0, "metrics: %s", r.err);
  cr_assert_eq(r.out_len, 0);
  text = cu_slurp(path, NULL);
  cr_assert_not_null(strstr(text, "# TYPE shmbus_topic_published_total counter\n"), "%s", text);
  cr_assert_not_null(strstr(text, "shmbus_topic_published_total{topic=\"m/t\"} 5\n"));
  free(text);
  {
    /* Nothing but the file: the temporary one was renamed. */
    DIR *d = opendir(cu_work);
    struct dirent *de;
    cr_assert_not_null(d);
    while ((de = readdir(d)) != NULL)
      cr_assert_null(strstr(de->d_name, ".tmp."), "left behind: %s", de->d_name);
    closedir(d);
  }
  /* A directory that does not exist: an error, nothing written. */
  snprintf(path, sizeof(path), "%s/no/such/dir/x.prom", cu_work);
  cu_free(&r);
  cr_assert_eq(CU_RUN(&r, "metrics", "--textfile", path), 1);
  cr_assert_not_null(strstr(r.err, "cannot create"), "%s", r.err);
  cu_free(&r);
  shmbus_bus_close(bus);
}

/* ---- metrics over HTTP: a real socket ------------------------------------------------ */

static int tcp_connect(const struct sockaddr_in *a) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  cr_assert_geq(fd, 0);
  cr_assert_eq(connect(fd, (const struct sockaddr *)a, sizeof(*a)), 0, "connect: %s",
               strerror(errno));
  return fd;
}

/* Sends a request and reads the whole answer (the server closes). */
static char *http_get(const struct sockaddr_in *a, const char *req, size_t reqlen) {
  int fd = tcp_connect(a);
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  ssize_t n;

  cr_assert_not_null(buf);
  cr_assert_eq(send(fd, req, reqlen, MSG_NOSIGNAL), (ssize_t)reqlen);
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    cr_assert_eq(poll(&p, 1, 20000), 1, "the server did not answer");
    n = read(fd, buf + len, cap - len - 1);
    if (n <= 0)
      break; /* the end, or a reset after a refused request */
    len += (size_t)n;
    if (len + 1 == cap) {
      cap *= 2;
      buf = realloc(buf, cap);
      cr_assert_not_null(buf);
    }
  }
  buf[len] = '\0';
  close(fd);
  return buf;
}

Test(opscli, metrics_over_http) {
  static const char om_req[] = "GET /metrics HTTP/1.1\r\nHost: t\r\n"
                               "Accept: application/openmetrics-text; version=1.0.0\r\n\r\n";
  static const char plain_req[] = "GET /metrics?x=1 HTTP/1.0\r\n\r\n";
  struct sockaddr_in a;
  char line[256];
  char *resp;
  char *big;
  size_t n = 0;
  int errp[2];
  int silent;
  int st;
  pid_t pid;
  shmbus_bus *bus = metrics_fixture();

  /* The tool's stderr through a pipe: it says where it listens. */
  cr_assert_eq(pipe(errp), 0);
  pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    int nul = open("/dev/null", O_RDWR);
    dup2(nul, 0);
    dup2(nul, 1);
    dup2(errp[1], 2);
    close(errp[0]);
    execl(SHMBUS_CLI_PATH, "shmbus", "metrics", "--listen", "127.0.0.1:0", "--count", "2",
          (char *)NULL);
    _exit(127);
  }
  close(errp[1]);
  for (;;) {
    struct pollfd p = {errp[0], POLLIN, 0};
    char c;
    cr_assert_eq(poll(&p, 1, 20000), 1, "metrics did not say where it listens");
    cr_assert_eq(read(errp[0], &c, 1), 1, "metrics ended: %.*s", (int)n, line);
    if (c == '\n')
      break;
    cr_assert_lt(n, sizeof(line) - 1);
    line[n++] = c;
  }
  line[n] = '\0';
  {
    unsigned port;
    cr_assert_eq(sscanf(line, "shmbus metrics: listening on http://127.0.0.1:%u/metrics", &port), 1,
                 "%s", line);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }
  /* A client that connects and says nothing does not hold the others up. */
  silent = tcp_connect(&a);
  /* Not found, and not a method: no scrape. */
  resp = http_get(&a, "GET /other HTTP/1.1\r\n\r\n", 23);
  cr_assert(strncmp(resp, "HTTP/1.1 404 ", 13) == 0, "%s", resp);
  free(resp);
  resp = http_get(&a, "POST /metrics HTTP/1.1\r\n\r\n", 26);
  cr_assert(strncmp(resp, "HTTP/1.1 405 ", 13) == 0, "%s", resp);
  cr_assert_not_null(strstr(resp, "Allow: GET, HEAD\r\n"));
  free(resp);
  resp = http_get(&a, "garbage\r\n\r\n", 11);
  cr_assert(strncmp(resp, "HTTP/1.1 400 ", 13) == 0, "%s", resp);
  free(resp);
  /* A head larger than the limit, never ending: 431. */
  big = malloc(20000);
  cr_assert_not_null(big);
  memcpy(big, "GET /metrics HTTP/1.1\r\nX: ", 26);
  memset(big + 26, 'a', 20000 - 26);
  resp = http_get(&a, big, 9000);
  cr_assert(strncmp(resp, "HTTP/1.1 431 ", 13) == 0, "%s", resp);
  free(resp);
  free(big);
  /* The scrapes: OpenMetrics when asked for, Prometheus's format else. */
  resp = http_get(&a, om_req, sizeof(om_req) - 1);
  cr_assert(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", resp);
  cr_assert_not_null(strstr(resp, "\r\nContent-Type: application/openmetrics-text; "
                                  "version=1.0.0; charset=utf-8\r\n"),
                     "%s", resp);
  cr_assert_not_null(strstr(resp, "shmbus_topic_published_total{topic=\"m/t\"} 5\n"));
  cr_assert_str_eq(resp + strlen(resp) - 6, "# EOF\n");
  free(resp);
  resp = http_get(&a, plain_req, sizeof(plain_req) - 1);
  cr_assert(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0, "%s", resp);
  cr_assert_not_null(strstr(resp, "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
                     "%s", resp);
  cr_assert_not_null(strstr(resp, "# TYPE shmbus_topic_published_total counter\n"));
  free(resp);
  /* --count 2: it stops after the second scrape, whatever the silent one
   * does. */
  st = du_wait(pid);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
  close(silent);
  close(errp[0]);
  shmbus_bus_close(bus);
}

/* Pacing (echo's default): a flood that echo cannot keep up with while it
 * prints (a 16-slot ring, a publisher flat out) laps it, so it reads by
 * periods; what comes slowly afterwards is printed, every message, once
 * the reader caught up and libuv delivers again. Whatever it missed it
 * counts: received + lost == published, intact. */
Test(opscli, echo_after_a_flood_prints_each_later_message) {
  struct cu_run echo, flood, slow;
  unsigned long long r = 0, l = 0, e = 0;
  const char *p;
  size_t n;

  cu_start(&echo, (const char *const[]){"echo", "pace/t", "--timeout", "2", "--slots", "16", NULL});
  cr_assert_eq(CU_RUN(&flood, "pub", "pace/t", "--wait-subs", "1", "--count", "100000", "--size",
                      "64", "--slots", "16"),
               0, "pub: %s", flood.err);
  cr_assert_eq(
      CU_RUN(&slow, "pub", "pace/t", "--count", "3", "--rate", "50", "--slots", "16", "tick"), 0,
      "pub: %s", slow.err);
  cr_assert_eq(cu_wait(&echo), 0, "echo: %s", echo.err);
  n = strlen(echo.out);
  cr_assert(n >= 15 && strcmp(echo.out + n - 15, "tick\ntick\ntick\n") == 0, "ends with: %s",
            echo.out + (n > 200 ? n - 200 : 0));
  p = strstr(echo.err, "received ");
  cr_assert_not_null(p, "%s", echo.err);
  cr_assert_eq(sscanf(p, "received %llu lost %llu checksum errors %llu", &r, &l, &e), 3);
  cr_assert_eq(r + l, 100003, "received %llu + lost %llu", r, l);
  cr_assert_eq(e, 0);
  cu_free(&echo);
  cu_free(&flood);
  cu_free(&slow);
}

/* Sampling mode: read every few ms while busy, woken only when idle. A
 * slow publisher's messages all arrive (the reader sleeps between them);
 * a fast one's are counted, received + lost == published. */
Test(opscli, echo_sample_reads_and_counts) {
  struct cu_run echo, pub, fast, fecho;
  unsigned long long r = 0, l = 0, e = 0;
  const char *p;

  cu_start(&echo, (const char *const[]){"echo", "s/slow", "--sample", "5", "--count", "3", NULL});
  cr_assert_eq(
      CU_RUN(&pub, "pub", "s/slow", "--wait-subs", "1", "--count", "3", "--rate", "50", "tick"), 0,
      "pub: %s", pub.err);
  cr_assert_eq(cu_wait(&echo), 0, "echo: %s", echo.err);
  cr_assert_str_eq(echo.out, "tick\ntick\ntick\n");
  /* It ends a second after the last message it read: by then it has read
   * what the ring still held and counted the rest. */
  cu_start(&fecho, (const char *const[]){"echo", "s/fast", "--sample", "5", "--quiet", "--timeout",
                                         "1", "--slots", "64", NULL});
  cr_assert_eq(CU_RUN(&fast, "pub", "s/fast", "--wait-subs", "1", "--count", "200000", "--size",
                      "64", "--slots", "64"),
               0, "pub: %s", fast.err);
  cr_assert_eq(cu_wait(&fecho), 0, "echo: %s", fecho.err);
  p = strstr(fecho.err, "received ");
  cr_assert_not_null(p, "%s", fecho.err);
  cr_assert_eq(sscanf(p, "received %llu lost %llu checksum errors %llu", &r, &l, &e), 3);
  cr_assert_eq(r + l, 200000, "received %llu + lost %llu", r, l);
  cr_assert_eq(e, 0);
  cu_free(&echo);
  cu_free(&pub);
  cu_free(&fast);
  cu_free(&fecho);
}
