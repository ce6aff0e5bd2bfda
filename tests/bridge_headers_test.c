/* The bridge's NATS headers (bridge/headers.c): a message built by
 * bridge_hdr_msg, through the header block it writes itself or through
 * libnats's header API, reads back through libnats's public API exactly as
 * written, at the limits of every field and for payloads from empty to
 * larger than the block buffer had room for. No server: the messages are
 * only built and read (tests/bridge_test.c sends them through real ones). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "headers.h"

/* libnats started and stopped as the bridge does (its collector thread
 * frees destroyed messages; stopped, it has freed them all). */
static void setup(void) {
  cr_assert_eq(nats_Open(-1), NATS_OK);
}

static void teardown(void) {
  cr_assert_eq(nats_CloseAndWait(10000), NATS_OK);
}

TestSuite(bridge_headers, .init = setup, .fini = teardown);

/* Builds a message and checks everything it carries. */
static void build_and_read(struct bridge_hdr_buf *buf, const char *subject,
                           const struct bridge_hdr *h, const char *msg_id, size_t len) {
  unsigned char *data = malloc(len > 0 ? len : 1);
  struct bridge_hdr back;
  const char *id = NULL;
  natsMsg *m = NULL;
  size_t i;

  cr_assert_not_null(data);
  for (i = 0; i < len; i++)
    data[i] = (unsigned char)(i * 131 + len);
  cr_assert_eq(bridge_hdr_msg(&m, subject, h, msg_id, data, len, buf), 0);
  cr_assert_not_null(m);
  cr_assert_str_eq(natsMsg_GetSubject(m), subject);
  cr_assert_null(natsMsg_GetReply(m));
  cr_assert_eq(natsMsg_GetDataLength(m), (int)len);
  cr_assert(len == 0 || memcmp(natsMsg_GetData(m), data, len) == 0, "payload of %zu bytes", len);
  memset(&back, 0x55, sizeof(back));
  cr_assert_eq(bridge_hdr_get(m, &back), 0);
  cr_assert_str_eq(back.origin, h->origin);
  cr_assert_str_eq(back.topic, h->topic);
  cr_assert_eq(back.seq, h->seq);
  cr_assert_eq(back.ts_ns, h->ts_ns);
  if (msg_id != NULL) {
    cr_assert_eq(natsMsgHeader_Get(m, "Nats-Msg-Id", &id), NATS_OK);
    cr_assert_str_eq(id, msg_id);
  } else {
    cr_assert_eq(natsMsgHeader_Get(m, "Nats-Msg-Id", &id), NATS_NOT_FOUND);
  }
  natsMsg_Destroy(m);
  free(data);
}

/* On the libnats versions the block was checked with (Debian 12's 3.4.1,
 * Debian 13's 3.10.1), the bridge writes it itself: the start-up check
 * passed, so messages are built in one allocation. */
Test(bridge_headers, the_block_is_written_directly_with_a_known_libnats) {
  int v = nats_GetVersionNumber();

  if (v >= 0x030400 && v <= 0x030AFF)
    cr_assert(bridge_hdr_fast(), "libnats %s: the header block's start-up check failed",
              nats_GetVersion());
  else
    cr_assert_not(bridge_hdr_fast(), "libnats %s is not one the block was checked with",
                  nats_GetVersion());
}

Test(bridge_headers, every_field_reads_back_at_its_limits) {
  static const size_t sizes[] = {0, 1, 256, 4096, 70000, 100};
  struct bridge_hdr_buf buf = {0};
  struct bridge_hdr h;
  char id[300];
  size_t i;

  memset(&h, 0, sizeof(h));
  strcpy(h.origin, "a");
  strcpy(h.topic, "t");
  h.seq = 0;
  h.ts_ns = 0;
  build_and_read(&buf, "shmbus.t", &h, NULL, 0);

  /* The longest names, the largest numbers, an id. */
  memset(h.origin, 'o', BRIDGE_NAME_MAX);
  h.origin[BRIDGE_NAME_MAX] = '\0';
  memset(h.topic, 'x', sizeof(h.topic) - 1);
  for (i = 1; i < sizeof(h.topic) - 1; i += 2)
    h.topic[i] = '/';
  h.topic[sizeof(h.topic) - 1] = '\0';
  h.seq = UINT64_MAX;
  h.ts_ns = UINT64_MAX - 1;
  memset(id, 'i', sizeof(id) - 1);
  id[sizeof(id) - 1] = '\0';
  for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    build_and_read(&buf, "shmbus.x.x", &h, NULL, sizes[i]);
    build_and_read(&buf, "shmbus.x.x", &h, id, sizes[i]);
  }
  /* Numbers of every length. */
  for (h.seq = 1, i = 0; i < 20; i++, h.seq *= 10) {
    h.ts_ns = h.seq - 1;
    build_and_read(&buf, "shmbus.x.x", &h, "id", 16);
  }
  bridge_hdr_buf_free(&buf);
  cr_assert_null(buf.p);
  bridge_hdr_buf_free(&buf); /* twice is harmless */
}

Test(bridge_headers, a_payload_libnats_cannot_take_is_refused) {
  struct bridge_hdr_buf buf = {0};
  struct bridge_hdr h;
  natsMsg *m = (natsMsg *)&h;

  memset(&h, 0, sizeof(h));
  strcpy(h.origin, "a");
  strcpy(h.topic, "t");
  cr_assert_eq(bridge_hdr_msg(&m, "shmbus.t", &h, NULL, "", (size_t)1 << 31, &buf), -EINVAL);
  cr_assert_null(m);
  cr_assert_null(buf.p);
}
