/* The bridge's NATS headers (bridge/headers.c): a message built by
 * bridge_hdr_msg, through the header block it writes itself or through
 * libnats's header API, reads back through libnats's public API exactly as
 * written, at the limits of every field and for payloads from empty to
 * larger than the block buffer had room for. No server: the messages are
 * only built and read (tests/bridge_test.c sends them through real ones). */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
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

/* ---- the header block parsed directly (bridge_hdr_parse) ---------------- */

/* Parses the `len` bytes at s from a buffer of exactly that size (so that
 * ASan sees any read past the block: it is not NUL-terminated). */
static int parse_exact(const char *s, size_t len, struct bridge_hdr *h) {
  char *p = malloc(len > 0 ? len : 1);
  int rv;

  cr_assert_not_null(p);
  memcpy(p, s, len);
  rv = bridge_hdr_parse(p, len, h);
  free(p);
  return rv;
}

static int parse_str(const char *s, struct bridge_hdr *h) {
  return parse_exact(s, strlen(s), h);
}

#define BLK_GOOD                                                                                   \
  "NATS/1.0\r\nShmbus-Origin: a-b_C9\r\nShmbus-Topic: t/x\r\nShmbus-Seq: 42\r\n"                   \
  "Shmbus-Time: 12345\r\n\r\n"

Test(bridge_headers, well_formed_blocks_parse) {
  /* Ours; libnats's encoding of a map (any order, other headers among
   * them); spaces and tabs around values, none after the colon. */
  static const char *const good[] = {
      BLK_GOOD,
      "NATS/1.0\r\nShmbus-Time: 12345\r\nNats-Msg-Id: a-b_C9/t/x/42\r\nShmbus-Seq: 42\r\n"
      "Shmbus-Topic: t/x\r\nX-Other: v\xc3\xa9 \t v\r\nShmbus-Origin: a-b_C9\r\n\r\n",
      "NATS/1.0\r\nShmbus-Origin:a-b_C9\r\nShmbus-Topic:\t t/x \t\r\nShmbus-Seq:42  \r\n"
      "Shmbus-Time:   12345\r\nEmpty:\r\n\r\n",
  };
  struct bridge_hdr h;
  size_t i;

  for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    memset(&h, 0x55, sizeof(h));
    cr_assert_eq(parse_str(good[i], &h), 0, "block %zu", i);
    cr_assert_str_eq(h.origin, "a-b_C9");
    cr_assert_str_eq(h.topic, "t/x");
    cr_assert_eq(h.seq, 42);
    cr_assert_eq(h.ts_ns, 12345);
  }
  /* The limits: 0, UINT64_MAX, a 64-byte name, a 255-byte topic. */
  {
    char blk[1024], origin[BRIDGE_NAME_MAX + 1], topic[256];
    memset(origin, 'o', BRIDGE_NAME_MAX);
    origin[BRIDGE_NAME_MAX] = '\0';
    memset(topic, 'x', 255);
    topic[255] = '\0';
    snprintf(blk, sizeof(blk),
             "NATS/1.0\r\nShmbus-Origin: %s\r\nShmbus-Topic: %s\r\nShmbus-Seq: 0\r\n"
             "Shmbus-Time: 18446744073709551615\r\n\r\n",
             origin, topic);
    cr_assert_eq(parse_str(blk, &h), 0);
    cr_assert_str_eq(h.origin, origin);
    cr_assert_str_eq(h.topic, topic);
    cr_assert_eq(h.seq, 0);
    cr_assert_eq(h.ts_ns, UINT64_MAX);
  }
}

Test(bridge_headers, every_truncation_is_refused) {
  static const char blk[] = BLK_GOOD;
  struct bridge_hdr h;
  size_t n;

  for (n = 0; n < sizeof(blk) - 1; n++)
    cr_assert_eq(parse_exact(blk, n, &h), -EBADMSG, "the first %zu bytes", n);
  cr_assert_eq(parse_exact(blk, sizeof(blk) - 1, &h), 0);
}

Test(bridge_headers, malformed_blocks_are_refused) {
  static const char *const bad[] = {
      "",
      "NATS/1.0",
      "NATS/1.0\r\n",
      "NATS/1.0\r\n\r\n", /* no headers */
      /* a status line (libnats would take it) */
      "NATS/1.0 503\r\nShmbus-Origin: a\r\nShmbus-Topic: t\r\nShmbus-Seq: 1\r\nShmbus-Time: "
      "1\r\n\r\n",
      "NATS/1.1\r\nShmbus-Origin: a\r\nShmbus-Topic: t\r\nShmbus-Seq: 1\r\nShmbus-Time: 1\r\n\r\n",
      "nats/1.0\r\nShmbus-Origin: a\r\nShmbus-Topic: t\r\nShmbus-Seq: 1\r\nShmbus-Time: 1\r\n\r\n",
      /* no empty line at the end; bytes after it */
      "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Topic: t\r\nShmbus-Seq: 1\r\nShmbus-Time: 1\r\n",
      "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Topic: t\r\nShmbus-Seq: 1\r\nShmbus-Time: 1\r\n\r\nx",
      "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Topic: t\r\nShmbus-Seq: 1\r\nShmbus-Time: "
      "1\r\n\r\n\r\n",
      /* bare LF, bare CR, a control byte, DEL */
      "NATS/1.0\nShmbus-Origin: a\nShmbus-Topic: t\nShmbus-Seq: 1\nShmbus-Time: 1\n\n",
      "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Topic: t\rx\r\nShmbus-Seq: 1\r\nShmbus-Time: "
      "1\r\n\r\n",
      "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Topic: t\x01\r\nShmbus-Seq: 1\r\nShmbus-Time: "
      "1\r\n\r\n",
      "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Topic: t\x7f\r\nShmbus-Seq: 1\r\nShmbus-Time: "
      "1\r\n\r\n",
      /* a line without a colon, an empty name, a space in a name, a folded line */
      "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Topic: t\r\nShmbus-Seq: 1\r\nShmbus-Time: "
      "1\r\nX\r\n\r\n",
      "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Topic: t\r\nShmbus-Seq: 1\r\nShmbus-Time: 1\r\n: "
      "v\r\n\r\n",
      "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus Topic: t\r\nShmbus-Seq: 1\r\nShmbus-Time: 1\r\n\r\n",
      "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Topic: t\r\n x\r\nShmbus-Seq: 1\r\nShmbus-Time: "
      "1\r\n\r\n",
      /* each of ours missing, repeated (even with the same value), or named in
       * another case */
      "NATS/1.0\r\nShmbus-Topic: t\r\nShmbus-Seq: 1\r\nShmbus-Time: 1\r\n\r\n",
      "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Seq: 1\r\nShmbus-Time: 1\r\n\r\n",
      "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Topic: t\r\nShmbus-Time: 1\r\n\r\n",
      "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Topic: t\r\nShmbus-Seq: 1\r\n\r\n",
      "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Origin: a\r\nShmbus-Topic: t\r\nShmbus-Seq: 1\r\n"
      "Shmbus-Time: 1\r\n\r\n",
      "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Topic: t\r\nShmbus-Topic: u\r\nShmbus-Seq: 1\r\n"
      "Shmbus-Time: 1\r\n\r\n",
      "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Topic: t\r\nShmbus-Seq: 1\r\nShmbus-Seq: 1\r\n"
      "Shmbus-Time: 1\r\n\r\n",
      "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Topic: t\r\nShmbus-Seq: 1\r\nShmbus-Time: 1\r\n"
      "Shmbus-Time: 2\r\n\r\n",
      "NATS/1.0\r\nshmbus-origin: a\r\nShmbus-Topic: t\r\nShmbus-Seq: 1\r\nShmbus-Time: 1\r\n\r\n",
      /* bad values: an origin that is no name (empty, 65 bytes, a space
       * inside); numbers that are not plain decimals (empty, a sign, a
       * leading zero, a space or a letter inside, 2^64, 21 digits) */
      "NATS/1.0\r\nShmbus-Origin:\r\nShmbus-Topic: t\r\nShmbus-Seq: 1\r\nShmbus-Time: 1\r\n\r\n",
      "NATS/1.0\r\nShmbus-Origin: "
      "ooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooooo\r\n"
      "Shmbus-Topic: t\r\nShmbus-Seq: 1\r\nShmbus-Time: 1\r\n\r\n",
      "NATS/1.0\r\nShmbus-Origin: a b\r\nShmbus-Topic: t\r\nShmbus-Seq: 1\r\nShmbus-Time: "
      "1\r\n\r\n",
      "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Topic: t\r\nShmbus-Seq:\r\nShmbus-Time: 1\r\n\r\n",
      "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Topic: t\r\nShmbus-Seq: +1\r\nShmbus-Time: 1\r\n\r\n",
      "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Topic: t\r\nShmbus-Seq: -1\r\nShmbus-Time: 1\r\n\r\n",
      "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Topic: t\r\nShmbus-Seq: 01\r\nShmbus-Time: 1\r\n\r\n",
      "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Topic: t\r\nShmbus-Seq: 1 2\r\nShmbus-Time: "
      "1\r\n\r\n",
      "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Topic: t\r\nShmbus-Seq: 12a\r\nShmbus-Time: "
      "1\r\n\r\n",
      "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Topic: t\r\nShmbus-Seq: 1\r\n"
      "Shmbus-Time: 18446744073709551616\r\n\r\n",
      "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Topic: t\r\nShmbus-Seq: 1\r\n"
      "Shmbus-Time: 100000000000000000000\r\n\r\n",
  };
  struct bridge_hdr h;
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    cr_assert_eq(parse_str(bad[i], &h), -EBADMSG, "block %zu was taken", i);
  /* A NUL anywhere (strings above cannot carry one). */
  {
    static const char blk[] = BLK_GOOD;
    char copy[sizeof(blk)];
    size_t k;
    for (k = 0; k < sizeof(blk) - 1; k++) {
      memcpy(copy, blk, sizeof(blk));
      copy[k] = '\0';
      cr_assert_eq(parse_exact(copy, sizeof(blk) - 1, &h), -EBADMSG, "a NUL at %zu", k);
    }
  }
  /* A topic of 256 bytes. */
  {
    char blk[1024], topic[257];
    memset(topic, 'x', 256);
    topic[256] = '\0';
    snprintf(blk, sizeof(blk),
             "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Topic: %s\r\nShmbus-Seq: 1\r\n"
             "Shmbus-Time: 1\r\n\r\n",
             topic);
    cr_assert_eq(parse_str(blk, &h), -EBADMSG);
  }
}

/* Every byte of a good block replaced by each of a set of values: the
 * parser refuses, or takes fields that obey its rules (never a crash, never
 * a read past the block: ASan). */
Test(bridge_headers, every_byte_changed_is_refused_or_read_within_the_rules) {
  static const char blk[] = BLK_GOOD;
  static const unsigned char vals[] = {0x00, '\r', '\n', ':',  ' ',  '\t', '0', '9',
                                       'a',  '/',  '-',  0x7f, 0x80, 0xff, 0x01};
  char copy[sizeof(blk)];
  struct bridge_hdr h;
  size_t k, v;

  for (k = 0; k < sizeof(blk) - 1; k++)
    for (v = 0; v < sizeof(vals); v++) {
      memcpy(copy, blk, sizeof(blk));
      copy[k] = (char)vals[v];
      memset(&h, 0x55, sizeof(h));
      if (parse_exact(copy, sizeof(blk) - 1, &h) == 0) {
        cr_assert_eq(bridge_name_check(h.origin), 0, "byte %zu = %#x: origin", k, vals[v]);
        cr_assert_lt(strlen(h.topic), sizeof(h.topic));
        cr_assert_null(memchr(h.topic, '\r', strlen(h.topic)));
        cr_assert_null(memchr(h.topic, '\n', strlen(h.topic)));
      }
    }
}

/* Received messages (libnats builds them with natsMsg_create, with a
 * reply subject for JetStream deliveries): their block is read where it
 * lies, strictly; one without headers is refused; a message whose headers
 * were set through libnats's API (no block) is read through its map. */
typedef natsStatus (*create_fn)(natsMsg **msg, const char *subject, int subject_len,
                                const char *reply, int reply_len, const char *buf, int buf_len,
                                int hdr_len);

Test(bridge_headers, received_messages_are_read_from_their_block) {
  static const char good[] = BLK_GOOD;
  /* A folded line: libnats's map would take it, the strict parser not. */
  static const char folded[] = "NATS/1.0\r\nShmbus-Origin: a\r\nShmbus-Topic: t\r\n x\r\n"
                               "Shmbus-Seq: 1\r\nShmbus-Time: 1\r\n\r\n";
  const char *replies[] = {NULL, "$JS.ACK.s.c.1.2.3.4.0"};
  struct bridge_hdr h;
  create_fn create = NULL;
  natsMsg *m = NULL;
  char buf[512];
  int v = nats_GetVersionNumber(), i;

  cr_assert_eq(bridge_hdr_fast_read(), bridge_hdr_fast());
  if (v >= 0x030400 && v <= 0x030AFF)
    cr_assert(bridge_hdr_fast_read(), "libnats %s: the raw block's start-up check failed",
              nats_GetVersion());
  /* Through the map: headers set with libnats's API. */
  cr_assert_eq(natsMsg_Create(&m, "shmbus.t.x", NULL, "p", 1), NATS_OK);
  cr_assert_eq(natsMsgHeader_Set(m, "Shmbus-Origin", "o"), NATS_OK);
  cr_assert_eq(natsMsgHeader_Set(m, "Shmbus-Topic", "t/x"), NATS_OK);
  cr_assert_eq(natsMsgHeader_Set(m, "Shmbus-Seq", "7"), NATS_OK);
  cr_assert_eq(natsMsgHeader_Set(m, "Shmbus-Time", "8"), NATS_OK);
  cr_assert_eq(bridge_hdr_get(m, &h), 0);
  cr_assert_str_eq(h.origin, "o");
  cr_assert_eq(h.seq, 7);
  cr_assert_eq(h.ts_ns, 8);
  natsMsg_Destroy(m);
  m = NULL;
  /* No headers at all. */
  cr_assert_eq(natsMsg_Create(&m, "shmbus.t.x", "reply", "p", 1), NATS_OK);
  cr_assert_eq(bridge_hdr_get(m, &h), -EBADMSG);
  natsMsg_Destroy(m);
  if (!bridge_hdr_fast_read())
    cr_skip_test("libnats %s: the block is not read directly", nats_GetVersion());
  {
    void *sym = dlsym(RTLD_DEFAULT, "natsMsg_create");
    cr_assert_not_null(sym);
    memcpy(&create, &sym, sizeof(create));
  }
  for (i = 0; i < 2; i++) {
    int rl = replies[i] != NULL ? (int)strlen(replies[i]) : 0;
    /* Good, with payloads of 0 and 3 bytes. */
    memcpy(buf, good, sizeof(good) - 1);
    memcpy(buf + sizeof(good) - 1, "abc", 3);
    for (int pl = 0; pl <= 3; pl += 3) {
      m = NULL;
      cr_assert_eq(create(&m, "shmbus.t.x", 10, replies[i], rl, buf, (int)sizeof(good) - 1 + pl,
                          (int)sizeof(good) - 1),
                   NATS_OK);
      memset(&h, 0x55, sizeof(h));
      cr_assert_eq(bridge_hdr_get(m, &h), 0);
      cr_assert_str_eq(h.origin, "a-b_C9");
      cr_assert_str_eq(h.topic, "t/x");
      cr_assert_eq(h.seq, 42);
      cr_assert_eq(h.ts_ns, 12345);
      cr_assert_eq(natsMsg_GetDataLength(m), pl);
      natsMsg_Destroy(m);
    }
    /* Folded: refused (read from the block, not through the map). */
    m = NULL;
    cr_assert_eq(create(&m, "shmbus.t.x", 10, replies[i], rl, folded, (int)sizeof(folded) - 1,
                        (int)sizeof(folded) - 1),
                 NATS_OK);
    cr_assert_eq(bridge_hdr_get(m, &h), -EBADMSG);
    natsMsg_Destroy(m);
    /* A subject with a NUL inside (the block would seem to start in it). */
    m = NULL;
    cr_assert_eq(create(&m, "shmbus.t\0x", 10, replies[i], rl, good, (int)sizeof(good) - 1,
                        (int)sizeof(good) - 1),
                 NATS_OK);
    cr_assert_eq(bridge_hdr_get(m, &h), i == 0 ? -EBADMSG : 0);
    natsMsg_Destroy(m);
  }
}
