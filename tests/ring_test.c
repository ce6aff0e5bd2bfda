#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "testutil.h"

Test(ring, publish_then_receive_in_order) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;
  struct shmbus__msg_info info;
  char buf[64];
  int i, rv;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 7, 1), 0);
  cr_assert_eq(shmbus__ring_recv(&sub, buf, sizeof(buf), &info), -EAGAIN);
  for (i = 0; i < 5; i++) {
    snprintf(buf, sizeof(buf), "msg %d", i);
    cr_assert_eq(shmbus__ring_publish(&pub, buf, strlen(buf) + 1, 100 + i), 0);
  }
  for (i = 0; i < 5; i++) {
    char want[16];
    snprintf(want, sizeof(want), "msg %d", i);
    rv = shmbus__ring_recv(&sub, buf, sizeof(buf), &info);
    cr_assert_eq(rv, (int)strlen(want) + 1);
    cr_assert_str_eq(buf, want);
    cr_assert_eq(info.seq, (uint64_t)i);
    cr_assert_eq(info.pub_id, 7);
    cr_assert_eq(info.ts_ns, (uint64_t)(100 + i));
  }
  cr_assert_eq(shmbus__ring_recv(&sub, buf, sizeof(buf), &info), -EAGAIN);
  cr_assert_eq(sub.received, 5);
  cr_assert_eq(sub.lost, 0);
  shmbus__ring_sub_detach(&sub);
  shmbus__ring_pub_detach(&pub);
  shmbus__region_close(&rg);
}
