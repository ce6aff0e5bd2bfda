/* The daemon's quotas and rate limit (daemon/quota.c), as pure functions:
 * every decision and every boundary, without a daemon or a clock. The same
 * rules against a real shmbusd are in limits_test.c. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "quota.h"
#include "shmbus/error.h"

#define MS (UINT64_C(1000000))

static struct config_limits quota_lim(void) {
  struct config_limits lim;

  memset(&lim, 0, sizeof(lim));
  return lim;
}

Test(quota, no_rate_means_every_request_passes) {
  struct config_limits lim = quota_lim();
  struct quota_bucket b;
  char text[256] = "";

  quota_rate_init(&b, &lim, 0);
  for (int i = 0; i < 100000; i++)
    cr_assert_eq(quota_rate_take(&b, &lim, 0, text, sizeof(text)), QUOTA_RATE_OK);
  cr_assert_str_empty(text);
}

/* A full bucket takes `burst` requests at once; then each request is
 * refused (the first of the episode says so), and one that keeps sending
 * down to -burst is flooding. */
Test(quota, bucket_takes_the_burst_then_refuses_then_finds_a_flood) {
  struct config_limits lim = quota_lim();
  struct quota_bucket b;
  char text[256];
  int i;

  lim.rate = 100;
  lim.burst = 10;
  quota_rate_init(&b, &lim, 5 * MS);
  for (i = 0; i < 10; i++)
    cr_assert_eq(quota_rate_take(&b, &lim, 5 * MS, text, sizeof(text)), QUOTA_RATE_OK, "%d", i);
  cr_assert_eq(quota_rate_take(&b, &lim, 5 * MS, text, sizeof(text)), QUOTA_RATE_REFUSED_FIRST);
  cr_assert(strstr(text, "limit \"rate\"") != NULL, "%s", text);
  cr_assert(strstr(text, "more than 100 control messages per second") != NULL, "%s", text);
  for (i = 0; i < 9; i++)
    cr_assert_eq(quota_rate_take(&b, &lim, 5 * MS, text, sizeof(text)), QUOTA_RATE_REFUSED, "%d",
                 i);
  cr_assert_eq(quota_rate_take(&b, &lim, 5 * MS, text, sizeof(text)), QUOTA_RATE_FLOOD);
  cr_assert(strstr(text, "kept sending while over the rate limit") != NULL, "%s", text);
  cr_assert(strstr(text, "disconnected") != NULL, "%s", text);
}

/* Tokens come back at `rate` a second, never beyond `burst`. */
Test(quota, bucket_refills_at_the_rate_up_to_the_burst) {
  struct config_limits lim = quota_lim();
  struct quota_bucket b;
  char text[256];
  int i;

  lim.rate = 100;
  lim.burst = 10;
  quota_rate_init(&b, &lim, 0);
  for (i = 0; i < 10; i++)
    cr_assert_eq(quota_rate_take(&b, &lim, 0, text, sizeof(text)), QUOTA_RATE_OK);
  /* 50 ms at 100/s: 5 tokens, the fifth request of them takes the last. */
  for (i = 0; i < 5; i++)
    cr_assert_eq(quota_rate_take(&b, &lim, 50 * MS, text, sizeof(text)), QUOTA_RATE_OK, "%d", i);
  cr_assert_eq(quota_rate_take(&b, &lim, 50 * MS, text, sizeof(text)), QUOTA_RATE_REFUSED_FIRST);
  /* An hour later the bucket is full again: exactly `burst` tokens. */
  for (i = 0; i < 10; i++)
    cr_assert_eq(quota_rate_take(&b, &lim, 3600000 * MS, text, sizeof(text)), QUOTA_RATE_OK);
  cr_assert_neq(quota_rate_take(&b, &lim, 3600000 * MS, text, sizeof(text)), QUOTA_RATE_OK);
}

/* A time before the last one adds nothing (and does not underflow into
 * a huge refill). */
Test(quota, bucket_ignores_a_time_that_goes_back) {
  struct config_limits lim = quota_lim();
  struct quota_bucket b;
  char text[256];

  lim.rate = 1000;
  lim.burst = 1;
  quota_rate_init(&b, &lim, 1000 * MS);
  cr_assert_eq(quota_rate_take(&b, &lim, 1000 * MS, text, sizeof(text)), QUOTA_RATE_OK);
  cr_assert_eq(quota_rate_take(&b, &lim, 10 * MS, text, sizeof(text)), QUOTA_RATE_REFUSED_FIRST);
}

/* burst 0 counts as 1: the bucket starts empty, one refusal is allowed,
 * the next request is a flood. */
Test(quota, zero_burst_counts_as_one) {
  struct config_limits lim = quota_lim();
  struct quota_bucket b;
  char text[256];

  lim.rate = 10;
  lim.burst = 0;
  quota_rate_init(&b, &lim, 0);
  cr_assert_eq(quota_rate_take(&b, &lim, 0, text, sizeof(text)), QUOTA_RATE_REFUSED_FIRST);
  cr_assert_eq(quota_rate_take(&b, &lim, 0, text, sizeof(text)), QUOTA_RATE_FLOOD);
}

/* Extra work (a snapshot of many topics) costs more tokens. */
Test(quota, charge_takes_tokens_at_once) {
  struct config_limits lim = quota_lim();
  struct quota_bucket b;
  char text[256];

  lim.rate = 1;
  lim.burst = 5;
  quota_rate_init(&b, &lim, 0);
  quota_rate_charge(&b, 4);
  cr_assert_eq(quota_rate_take(&b, &lim, 0, text, sizeof(text)), QUOTA_RATE_OK);
  cr_assert_eq(quota_rate_take(&b, &lim, 0, text, sizeof(text)), QUOTA_RATE_REFUSED_FIRST);
}

Test(quota, records_limit_and_hard_cap) {
  struct config_limits lim = quota_lim();
  char text[256];

  lim.records = 2;
  cr_assert_eq(quota_records(&lim, 0, text, sizeof(text)), 0);
  cr_assert_eq(quota_records(&lim, 1, text, sizeof(text)), 0);
  cr_assert_eq(quota_records(&lim, 2, text, sizeof(text)), SHMBUS_EQUOTA);
  cr_assert(strstr(text, "holds 2 publisher and subscriber records") != NULL, "%s", text);
  cr_assert(strstr(text, "\"records\" is 2") != NULL, "%s", text);
  /* 0 is no limit, but the hard cap holds; so it does above a larger limit. */
  lim.records = 0;
  cr_assert_eq(quota_records(&lim, QUOTA_MAX_RECORDS - 1, text, sizeof(text)), 0);
  cr_assert_eq(quota_records(&lim, QUOTA_MAX_RECORDS, text, sizeof(text)), SHMBUS_EQUOTA);
  lim.records = UINT64_MAX;
  cr_assert_eq(quota_records(&lim, QUOTA_MAX_RECORDS, text, sizeof(text)), SHMBUS_EQUOTA);
  cr_assert(strstr(text, "\"records\" is 65536") != NULL, "%s", text);
}

static struct quota_create quota_req(const struct quota_usage *own, const struct quota_usage *uid,
                                     uint64_t bytes) {
  struct quota_create q = {"a/topic", bytes, 64, 1024, 16, 4, own, uid, 1000};
  return q;
}

Test(quota, create_region_is_a_limit_not_a_quota) {
  struct config_limits lim = quota_lim();
  struct quota_usage own = {0, 0};
  struct quota_create q = quota_req(&own, NULL, 4096);
  char text[256];

  lim.region = 4096;
  cr_assert_eq(quota_create(&lim, &q, text, sizeof(text)), 0);
  q.bytes = 4097;
  cr_assert_eq(quota_create(&lim, &q, text, sizeof(text)), SHMBUS_ELIMIT);
  cr_assert(strstr(text, "limit \"region\" is 4096 bytes") != NULL, "%s", text);
  cr_assert(strstr(text, "slots=64 slot_size=1024 max_subs=16 max_pubs=4") != NULL, "%s", text);
}

Test(quota, create_counts_topics_and_memory) {
  struct config_limits lim = quota_lim();
  struct quota_usage own = {2, 1000};
  struct quota_create q = quota_req(&own, NULL, 24);
  char text[256];

  lim.topics = 3;
  lim.memory = 1024;
  cr_assert_eq(quota_create(&lim, &q, text, sizeof(text)), 0); /* 1000 + 24 = 1024 fits */
  q.bytes = 25;
  cr_assert_eq(quota_create(&lim, &q, text, sizeof(text)), SHMBUS_EQUOTA);
  cr_assert(strstr(text, "\"memory\" is 1024 bytes") != NULL, "%s", text);
  own.topics = 3;
  q.bytes = 1;
  cr_assert_eq(quota_create(&lim, &q, text, sizeof(text)), SHMBUS_EQUOTA);
  cr_assert(strstr(text, "created 3 topics") != NULL, "%s", text);
  cr_assert(strstr(text, "\"topics\" is 3") != NULL, "%s", text);
}

/* Sums near the top of uint64_t must not wrap into a pass. */
Test(quota, create_memory_does_not_overflow) {
  struct config_limits lim = quota_lim();
  struct quota_usage own = {0, UINT64_MAX - 10};
  struct quota_create q = quota_req(&own, NULL, 100);
  char text[256];

  lim.memory = UINT64_MAX - 5;
  cr_assert_eq(quota_create(&lim, &q, text, sizeof(text)), SHMBUS_EQUOTA);
  own.bytes = 0;
  q.bytes = UINT64_MAX;
  cr_assert_eq(quota_create(&lim, &q, text, sizeof(text)), SHMBUS_EQUOTA);
}

/* A retained topic charged to a uid counts against `retained` and
 * `retained_memory`; one not charged (trusted creator: uid NULL) does not. */
Test(quota, create_retained_is_charged_to_the_uid) {
  struct config_limits lim = quota_lim();
  struct quota_usage own = {0, 0};
  struct quota_usage uid = {1, 100};
  struct quota_create q = quota_req(&own, &uid, 50);
  char text[256];

  lim.retained = 2;
  lim.retained_memory = 150;
  cr_assert_eq(quota_create(&lim, &q, text, sizeof(text)), 0);
  uid.topics = 2;
  cr_assert_eq(quota_create(&lim, &q, text, sizeof(text)), SHMBUS_EQUOTA);
  cr_assert(strstr(text, "uid 1000 created 2 retained topics") != NULL, "%s", text);
  cr_assert(strstr(text, "\"retained\"") != NULL, "%s", text);
  uid.topics = 0;
  q.bytes = 51;
  cr_assert_eq(quota_create(&lim, &q, text, sizeof(text)), SHMBUS_EQUOTA);
  q.uid = NULL;
  cr_assert_eq(quota_create(&lim, &q, text, sizeof(text)), 0);
}

Test(quota, unread_replies_and_bytes) {
  struct config_limits lim = quota_lim();
  char text[256];

  cr_assert_eq(quota_unread(&lim, 1000, text, sizeof(text)), 0); /* no limit */
  lim.unread = 4;
  cr_assert_eq(quota_unread(&lim, 3, text, sizeof(text)), 0);
  cr_assert_eq(quota_unread(&lim, 4, text, sizeof(text)), SHMBUS_EQUOTA);
  cr_assert(strstr(text, "\"unread\" is 4") != NULL, "%s", text);
  cr_assert_eq(quota_unread_bytes(&lim, 7, UINT64_MAX, UINT64_MAX, text, sizeof(text)), 0);
  lim.unread_bytes = 4096;
  cr_assert_eq(quota_unread_bytes(&lim, 7, 4000, 96, text, sizeof(text)), 0);
  cr_assert_eq(quota_unread_bytes(&lim, 7, 4000, 97, text, sizeof(text)), SHMBUS_EQUOTA);
  cr_assert(strstr(text, "uid 7 leave 4000 bytes") != NULL, "%s", text);
  cr_assert(strstr(text, "\"unread_bytes\" is 4096") != NULL, "%s", text);
  cr_assert_eq(quota_unread_bytes(&lim, 7, 0, 4097, text, sizeof(text)), SHMBUS_EQUOTA);
  cr_assert_eq(quota_unread_bytes(&lim, 7, UINT64_MAX, 1, text, sizeof(text)), SHMBUS_EQUOTA);
}

Test(quota, max_participants_follows_limit_cap_and_descriptors) {
  struct config_limits lim = quota_lim();

  cr_assert_eq(quota_max_participants(&lim, 0), QUOTA_MAX_PARTICIPANTS);
  lim.clients = 100000;
  cr_assert_eq(quota_max_participants(&lim, 0), QUOTA_MAX_PARTICIPANTS);
  lim.clients = 10;
  cr_assert_eq(quota_max_participants(&lim, 0), 10);
  cr_assert_eq(quota_max_participants(&lim, 1024), 10);
  cr_assert_eq(quota_max_participants(&lim, 12), 6);
  cr_assert_eq(quota_max_participants(&lim, 1), 1);
}

static struct quota_admission quota_adm(uint64_t connected, bool trusted, bool system) {
  struct quota_admission a = {10, 1024, connected, 0, 1000, 500, trusted, system};
  return a;
}

Test(quota, admission_keeps_reserved_slots_for_owner_and_root) {
  struct config_limits lim = quota_lim();
  struct quota_admission a;
  char text[256];

  lim.reserved = 3;
  a = quota_adm(6, false, false);
  cr_assert_eq(quota_admit(&lim, &a, text, sizeof(text)), 0);
  a.connected = 7;
  cr_assert_eq(quota_admit(&lim, &a, text, sizeof(text)), SHMBUS_EQUOTA);
  cr_assert(strstr(text, "its last 3 connections (limit \"reserved\") are kept") != NULL, "%s",
            text);
  a.trusted = true;
  cr_assert_eq(quota_admit(&lim, &a, text, sizeof(text)), 0);
  a.connected = 9;
  cr_assert_eq(quota_admit(&lim, &a, text, sizeof(text)), 0);
  /* All taken: nobody, trusted or not. */
  a.connected = 10;
  cr_assert_eq(quota_admit(&lim, &a, text, sizeof(text)), -EMFILE);
  cr_assert(strstr(text, "RLIMIT_NOFILE of 1024") != NULL, "%s", text);
  /* More reserved than slots: `reserved` is capped at cap - 1, so a
   * stranger still gets the first slot, and only that one. */
  lim.reserved = 100;
  a = quota_adm(0, false, false);
  cr_assert_eq(quota_admit(&lim, &a, text, sizeof(text)), 0);
  a.connected = 1;
  cr_assert_eq(quota_admit(&lim, &a, text, sizeof(text)), SHMBUS_EQUOTA);
}

Test(quota, admission_counts_connections_per_uid_on_the_system_bus_only) {
  struct config_limits lim = quota_lim();
  struct quota_admission a;
  char text[256];

  lim.connections = 2;
  a = quota_adm(2, false, true);
  a.of_uid = 1;
  cr_assert_eq(quota_admit(&lim, &a, text, sizeof(text)), 0);
  a.of_uid = 2;
  cr_assert_eq(quota_admit(&lim, &a, text, sizeof(text)), SHMBUS_EQUOTA);
  cr_assert(strstr(text, "uid 1000 has 2 connections to the system bus (limit \"connections\" is "
                         "2)") != NULL,
            "%s", text);
  a.trusted = true;
  cr_assert_eq(quota_admit(&lim, &a, text, sizeof(text)), 0);
  a = quota_adm(2, false, false);
  a.of_uid = 2;
  cr_assert_eq(quota_admit(&lim, &a, text, sizeof(text)), 0);
}

Test(quota, deadline_is_capped_by_the_bus) {
  cr_assert_eq(quota_deadline(0, 0), 0);
  cr_assert_eq(quota_deadline(0, 500), 500);
  cr_assert_eq(quota_deadline(1000, 0), 1000);
  cr_assert_eq(quota_deadline(1000, 500), 500);
  cr_assert_eq(quota_deadline(1000, 5000), 1000);
}
