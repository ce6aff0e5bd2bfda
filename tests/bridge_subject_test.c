/* The bridge's topic <-> subject mapping (bridge/subject.c): reversible,
 * canonical, and refusing what the bridge never writes. Pure. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "shmbus/error.h"
#include "subject.h"

static void round_trip(const char *topic, const char *want_subject) {
  char subj[BRIDGE_SUBJECT_MAX], back[256];
  int n = bridge_subject_from_topic("shmbus", topic, subj, sizeof(subj));

  cr_assert_geq(n, 0, "%s: %d", topic, n);
  cr_assert_str_eq(subj, want_subject);
  cr_assert_eq((size_t)n, strlen(subj));
  n = bridge_topic_from_subject("shmbus", subj, back, sizeof(back));
  cr_assert_geq(n, 0, "%s: %d", subj, n);
  cr_assert_str_eq(back, topic);
}

Test(bridge_subject, topics_map_to_subjects_and_back) {
  round_trip("a", "shmbus.a");
  round_trip("a/b/c", "shmbus.a.b.c");
  round_trip("sensors/imu.0/x-y_z", "shmbus.sensors.imu%2E0.x-y_z");
  round_trip("$sys/stats", "shmbus.%24sys.stats");
  round_trip("a/.b./c..d", "shmbus.a.%2Eb%2E.c%2E%2Ed");
}

Test(bridge_subject, every_topic_byte_round_trips) {
  /* Every byte a topic name may hold, in one segment and across two. */
  const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-";
  char topic[256], subj[BRIDGE_SUBJECT_MAX], back[256];
  size_t i;

  for (i = 0; alphabet[i] != '\0'; i++) {
    snprintf(topic, sizeof(topic), "x%cy/z%c%c", alphabet[i], alphabet[i], alphabet[i]);
    cr_assert_geq(bridge_subject_from_topic("p.q", topic, subj, sizeof(subj)), 0, "%s", topic);
    cr_assert_null(strchr(subj + 4, '*'));
    cr_assert_geq(bridge_topic_from_subject("p.q", subj, back, sizeof(back)), 0, "%s", subj);
    cr_assert_str_eq(back, topic);
  }
}

Test(bridge_subject, the_longest_topic_fits) {
  char topic[256], subj[BRIDGE_SUBJECT_MAX], back[256];

  memset(topic, '.', 255);
  topic[0] = 'a';
  topic[1] = '/';
  topic[2] = 'b';
  topic[255] = '\0';
  /* "b...": a segment may hold dots, not be "." or ".." only. */
  cr_assert_geq(bridge_subject_from_topic("shmbus", topic, subj, sizeof(subj)), 0);
  cr_assert_geq(bridge_topic_from_subject("shmbus", subj, back, sizeof(back)), 0);
  cr_assert_str_eq(back, topic);
  cr_assert_eq(bridge_subject_from_topic("shmbus", topic, subj, 20), -ENAMETOOLONG);
}

Test(bridge_subject, bad_topics_are_refused) {
  char subj[BRIDGE_SUBJECT_MAX];

  cr_assert_eq(bridge_subject_from_topic("shmbus", "", subj, sizeof(subj)), SHMBUS_EBADNAME);
  cr_assert_eq(bridge_subject_from_topic("shmbus", "a//b", subj, sizeof(subj)), SHMBUS_EBADNAME);
  cr_assert_eq(bridge_subject_from_topic("shmbus", "a/*", subj, sizeof(subj)), SHMBUS_EBADNAME);
  cr_assert_eq(bridge_subject_from_topic("shmbus", "a b", subj, sizeof(subj)), SHMBUS_EBADNAME);
}

Test(bridge_subject, foreign_subjects_are_refused) {
  static const char *const bad[] = {
      "shmbus",       "shmbus.",       "shmbusx.a",   "other.a",    "shmbus.a..b",
      "shmbus.a.",    "shmbus.a%2eb",  "shmbus.a%2",  "shmbus.a%",  "shmbus.%41",
      "shmbus.a%2Fb", "shmbus.a%25b",  "shmbus.a%00", "shmbus.a b", "shmbus.a*",
      "shmbus.%2E",   "shmbus.%2E%2E", "shmbus.a.>",  "shmbus.a+b", "shmbus.a%ZZ",
  };
  char back[256];
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    cr_assert_lt(bridge_topic_from_subject("shmbus", bad[i], back, sizeof(back)), 0, "%s", bad[i]);
}

Test(bridge_subject, prefixes) {
  cr_assert_eq(bridge_prefix_check("shmbus"), 0);
  cr_assert_eq(bridge_prefix_check("site-1.shmbus_x"), 0);
  cr_assert_lt(bridge_prefix_check(""), 0);
  cr_assert_lt(bridge_prefix_check("a..b"), 0);
  cr_assert_lt(bridge_prefix_check(".a"), 0);
  cr_assert_lt(bridge_prefix_check("a."), 0);
  cr_assert_lt(bridge_prefix_check("a.*"), 0);
  cr_assert_lt(bridge_prefix_check("a>"), 0);
  cr_assert_lt(bridge_prefix_check("$JS"), 0);
}

Test(bridge_subject, patterns_become_subscriptions) {
  char out[2][BRIDGE_SUBJECT_MAX];

  cr_assert_eq(bridge_subject_filters("P", "a/b", out, sizeof(out[0])), 1);
  cr_assert_str_eq(out[0], "P.a.b");
  cr_assert_eq(bridge_subject_filters("P", "a/*/c.d", out, sizeof(out[0])), 1);
  cr_assert_str_eq(out[0], "P.a.*.c%2Ed");
  cr_assert_eq(bridge_subject_filters("P", "a/**", out, sizeof(out[0])), 2);
  cr_assert_str_eq(out[0], "P.a.>");
  cr_assert_str_eq(out[1], "P.a");
  cr_assert_eq(bridge_subject_filters("P", "**", out, sizeof(out[0])), 1);
  cr_assert_str_eq(out[0], "P.>");
  /* "**" inside: '>' from there on; the rest is checked per message. */
  cr_assert_eq(bridge_subject_filters("P", "a/**/z", out, sizeof(out[0])), 1);
  cr_assert_str_eq(out[0], "P.a.>");
  cr_assert_eq(bridge_subject_filters("P", "a/b*", out, sizeof(out[0])), SHMBUS_EBADPATTERN);
}
