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
