/* msgpack payload helpers (include/shmbus/msgpack.h): publishing objects,
 * receiving them with their zone, and hostile payloads, against a real
 * daemon. */
#include <criterion/criterion.h>
#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "daemonutil.h"
#include "shmbus/msgpack.h"

TestSuite(msgpack, .init = du_suite_start, .fini = du_suite_stop, .timeout = 60);

/* Packs {"k": [1, "two", 3.5], "bin": <3 bytes>} into sb. */
static void pack_sample(msgpack_sbuffer *sb) {
  msgpack_packer pk;
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, 2);
  msgpack_pack_str_with_body(&pk, "k", 1);
  msgpack_pack_array(&pk, 3);
  msgpack_pack_int(&pk, 1);
  msgpack_pack_str_with_body(&pk, "two", 3);
  msgpack_pack_double(&pk, 3.5);
  msgpack_pack_str_with_body(&pk, "bin", 3);
  msgpack_pack_bin_with_body(&pk, "\x00\x01\x02", 3);
}

static bool same_object(const msgpack_object *a, const msgpack_object *b) {
  return msgpack_object_equal(*a, *b);
}

Test(msgpack, publish_object_and_receive_it_with_its_zone) {
  shmbus_bus *bus = du_bus(&du_suite);
  struct shmbus_msg_info info;
  msgpack_sbuffer sb;
  msgpack_unpacked want, got;
  shmbus_pub *pub;
  shmbus_sub *sub;
  int rv;

  cr_assert_eq(shmbus_sub_open(bus, "mp/a", NULL, &sub), 0);
  cr_assert_eq(shmbus_pub_open(bus, "mp/a", NULL, &pub), 0);
  msgpack_sbuffer_init(&sb);
  pack_sample(&sb);
  msgpack_unpacked_init(&want);
  cr_assert_eq(shmbus_msgpack_unpack(sb.data, sb.size, &want), 0);

  /* Twice: packed into the slot from an object, and as sbuffer bytes. */
  cr_assert_eq(shmbus_pub_publish_msgpack(pub, &want.data), 0);
  cr_assert_eq(shmbus_pub_publish(pub, sb.data, sb.size), 0);
  msgpack_unpacked_init(&got);
  for (int i = 0; i < 2; i++) {
    rv = shmbus_sub_recv_msgpack(sub, &got, &info, 1000);
    cr_assert_eq(rv, (int)sb.size, "recv: %s", shmbus_strerror(rv));
    cr_assert_eq(info.len, sb.size);
    cr_assert(same_object(&got.data, &want.data));
    cr_assert_not_null(got.zone);
  }
  /* The object outlives the sbuffer it came from: it lives in the zone. */
  msgpack_sbuffer_destroy(&sb);
  cr_assert(same_object(&got.data, &want.data));
  cr_assert_eq(shmbus_sub_try_recv_msgpack(sub, &got, &info), -EAGAIN);
  cr_assert_eq(shmbus_sub_recv_msgpack(sub, &got, &info, 10), -ETIMEDOUT);
  msgpack_unpacked_destroy(&got);
  msgpack_unpacked_destroy(&want);
  shmbus_bus_close(bus);
}

Test(msgpack, object_too_big_publishes_nothing) {
  struct shmbus_topic_opts t = {4, 16, 4, 4, false};
  shmbus_bus *bus = du_bus(&du_suite);
  struct shmbus_sub_stats st;
  msgpack_object o;
  shmbus_pub *pub;
  shmbus_sub *sub;
  char big[40];

  memset(big, 'x', sizeof(big));
  cr_assert_eq(shmbus_sub_open(bus, "mp/small", &(struct shmbus_sub_opts){.topic = t}, &sub), 0);
  cr_assert_eq(shmbus_pub_open(bus, "mp/small", &t, &pub), 0);
  o.type = MSGPACK_OBJECT_STR;
  o.via.str.ptr = big;
  o.via.str.size = sizeof(big);
  cr_assert_eq(shmbus_pub_publish_msgpack(pub, &o), SHMBUS_ETOOBIG);
  o.via.str.size = 10; /* 11 bytes packed: fits */
  cr_assert_eq(shmbus_pub_publish_msgpack(pub, &o), 0);
  cr_assert_eq(shmbus_pub_published(pub), 1);
  {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    cr_assert_eq(shmbus_sub_recv_msgpack(sub, &up, NULL, 1000), 11);
    cr_assert_eq(up.data.type, MSGPACK_OBJECT_STR);
    msgpack_unpacked_destroy(&up);
  }
  shmbus_sub_stats(sub, &st);
  cr_assert_eq(st.lost, 0, "the refused object must not cost a lost message");
  shmbus_bus_close(bus);
}

/* Payloads that are not one well-formed object within the limits. */
Test(msgpack, hostile_payloads_are_refused) {
  static const struct {
    const char *what;
    const char *bytes;
    size_t len;
  } bad[] = {
      {"empty", "", 0},
      {"array32 claiming 4 billion entries", "\xdd\xff\xff\xff\xff", 5},
      {"map32 claiming 4 billion entries", "\xdf\xff\xff\xff\xff\x01", 6},
      {"str32 longer than the payload",
       "\xdb\x00\x00\x10\x00"
       "abc",
       8},
      {"truncated float64", "\xcb\x00\x00", 3},
      {"never-used byte 0xc1", "\xc1", 1},
      {"two objects", "\x01\x02", 2},
  };
  shmbus_bus *bus = du_bus(&du_suite);
  struct shmbus_msg_info info;
  msgpack_unpacked up;
  shmbus_pub *pub;
  shmbus_sub *sub;
  unsigned char deep[64];
  size_t i;

  msgpack_unpacked_init(&up);
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    cr_assert_eq(shmbus_msgpack_unpack(bad[i].bytes, bad[i].len, &up), -EBADMSG, "%s", bad[i].what);
  /* 40 nested arrays: deeper than the limit. */
  memset(deep, 0x91, 40);
  deep[40] = 0x01;
  cr_assert_eq(shmbus_msgpack_unpack(deep, 41, &up), -EBADMSG);
  cr_assert_eq(shmbus_msgpack_unpack(deep + 40 - 30, 31, &up), 0, "30 deep is fine");

  /* Through a topic: refused, consumed, and the next message is fine. */
  cr_assert_eq(shmbus_sub_open(bus, "mp/bad", NULL, &sub), 0);
  cr_assert_eq(shmbus_pub_open(bus, "mp/bad", NULL, &pub), 0);
  cr_assert_eq(shmbus_pub_publish(pub, "\xdd\xff\xff\xff\xff", 5), 0);
  cr_assert_eq(shmbus_pub_publish(pub, "", 0), 0);
  cr_assert_eq(shmbus_pub_publish(pub, "\x2a", 1), 0);
  cr_assert_eq(shmbus_sub_recv_msgpack(sub, &up, &info, 1000), -EBADMSG);
  cr_assert_eq(info.seq, 0);
  cr_assert_eq(shmbus_sub_recv_msgpack(sub, &up, &info, 1000), -EBADMSG);
  cr_assert_eq(info.seq, 1);
  cr_assert_eq(shmbus_sub_recv_msgpack(sub, &up, &info, 1000), 1);
  cr_assert_eq(up.data.type, MSGPACK_OBJECT_POSITIVE_INTEGER);
  cr_assert_eq(up.data.via.u64, 42);
  msgpack_unpacked_destroy(&up);
  shmbus_bus_close(bus);
}
