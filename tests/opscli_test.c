/* The operator's tools (issue 15) as programs against a real daemon:
 * `shmbus echo` of patterns (topics that exist and topics created later),
 * its verbose, JSON-lines and --format output; `shmbus hz` and `shmbus bw`
 * measured against `shmbus pub --rate`; `shmbus metrics` checked with
 * promtool and over HTTP. Ordering comes from `pub --wait-subs` (the
 * publisher waits until the subscriber found its topic) and from waiting
 * for processes, never from sleeps. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cliutil.h"

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
  cr_assert_str_eq(echo.out, "p/old: old one\np/new/deep: hello\np/new/deep: hello\np: top\n");
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
  cr_assert_eq(CU_RUN(&pub, "pub", "v/a", "--wait-subs", "2", "plain text"), 0, "pub: %s",
               pub.err);
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

  cu_start(&hz, (const char *const[]){"hz", "h/**", "--json", "--count", "3", NULL});
  cu_start(&bw, (const char *const[]){"bw", "h/**", "--json", "--count", "3", NULL});
  /* Five seconds at 500/s: the tools report three times meanwhile. */
  cu_start(&pub, (const char *const[]){"pub", "h/rate", "--wait-subs", "2", "--rate", "500",
                                       "--count", "2500", "--size", "1000", "--slot-size", "1024",
                                       NULL});
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
