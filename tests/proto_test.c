/* Tests of the control protocol (src/proto.c): encoding and decoding of
 * every message type, every bound the decoder enforces on untrusted input,
 * every truncation of a valid message, topic names, and the datagram socket
 * layer with real descriptors. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "proto.h"
#include "shmbus/error.h"

/* ---- helpers --------------------------------------------------------------- */

static const struct shmbus__params test_params = {256, 1024, 64, 16};

/* A message of `type` with every field it carries set to a distinctive
 * value (and no fds). */
static struct shmbus__msg full_msg(uint32_t type) {
  struct shmbus__msg m;
  uint32_t id = type == SHMBUS__MSG_PEER_JOIN || type == SHMBUS__MSG_PEER_LEAVE ||
                        type == SHMBUS__MSG_TOPIC_UP || type == SHMBUS__MSG_TOPIC_DOWN
                    ? 0
                    : 1000 + type;

  shmbus__msg_init(&m, type, id);
  switch (type) {
  case SHMBUS__MSG_HELLO:
    strcpy(m.name, "client-name");
    break;
  case SHMBUS__MSG_WELCOME:
    m.client_id = 7;
    m.daemon_pid = 4242;
    break;
  case SHMBUS__MSG_OPEN:
    strcpy(m.topic, "sensors/imu.0");
    m.role = SHMBUS__ROLE_SUB;
    m.has = SHMBUS__HAS_PARAMS;
    m.params = test_params;
    m.reliable = true;
    m.history = 17;
    m.retain = true;
    break;
  case SHMBUS__MSG_OPENED:
    m.topic_id = 42;
    m.role = SHMBUS__ROLE_PUB;
    m.index = 3;
    m.has = SHMBUS__HAS_PARAMS;
    m.params = test_params;
    m.peers = 5;
    break;
  case SHMBUS__MSG_ADOPT:
    strcpy(m.topic, "$sys/stats");
    m.role = SHMBUS__ROLE_SUB;
    m.index = 9;
    m.has = SHMBUS__HAS_PARAMS;
    m.params = test_params;
    break;
  case SHMBUS__MSG_CLOSE:
  case SHMBUS__MSG_PEER_JOIN:
  case SHMBUS__MSG_PEER_LEAVE:
    m.topic_id = 11;
    m.role = SHMBUS__ROLE_SUB;
    m.index = 4095;
    break;
  case SHMBUS__MSG_ERROR:
    m.code = SHMBUS_EMISMATCH;
    strcpy(m.text, "topic exists with other parameters");
    break;
  case SHMBUS__MSG_SNAPSHOT:
    strcpy(m.filter, "sensors/imu.0");
    break;
  case SHMBUS__MSG_REMOVE:
    strcpy(m.topic, "sensors/imu.0");
    break;
  case SHMBUS__MSG_WATCH:
    m.watch_id = 7;
    strcpy(m.pattern, "sensors/**/temp");
    break;
  case SHMBUS__MSG_UNWATCH:
    m.watch_id = 0xffffffffu;
    break;
  case SHMBUS__MSG_TOPIC_UP:
  case SHMBUS__MSG_TOPIC_DOWN:
    m.watch_id = 3;
    strcpy(m.topic, "sensors/imu.0");
    break;
  case SHMBUS__MSG_SNAPSHOT_REPLY:
    m.size = (1ull << 33) + 7;
    break;
  case SHMBUS__MSG_STATUS_REPLY:
    m.daemon_pid = 99;
    m.topics = 3;
    m.clients = 12;
    m.uptime_ms = (1ull << 40) + 5;
    break;
  default:
    break;
  }
  return m;
}

static void assert_msg_eq(const struct shmbus__msg *a, const struct shmbus__msg *b) {
  cr_assert_eq(a->type, b->type);
  cr_assert_eq(a->id, b->id);
  cr_assert_eq(a->has, b->has);
  cr_assert_eq(a->role, b->role);
  cr_assert_eq(a->topic_id, b->topic_id);
  cr_assert_eq(a->index, b->index);
  cr_assert_eq(a->history, b->history);
  cr_assert_eq(a->peers, b->peers);
  cr_assert_eq(a->client_id, b->client_id);
  cr_assert_eq(a->daemon_pid, b->daemon_pid);
  cr_assert_eq(a->topics, b->topics);
  cr_assert_eq(a->clients, b->clients);
  cr_assert_eq(a->uptime_ms, b->uptime_ms);
  cr_assert_eq(a->size, b->size);
  cr_assert_str_eq(a->filter, b->filter);
  cr_assert_eq(a->watch_id, b->watch_id);
  cr_assert_str_eq(a->pattern, b->pattern);
  cr_assert_eq(a->code, b->code);
  cr_assert_eq(a->reliable, b->reliable);
  cr_assert_eq(a->retain, b->retain);
  cr_assert_eq(memcmp(&a->params, &b->params, sizeof(a->params)), 0);
  cr_assert_str_eq(a->topic, b->topic);
  cr_assert_str_eq(a->name, b->name);
  cr_assert_str_eq(a->text, b->text);
}

/* Encodes m, decodes the result into a fresh struct and compares. */
static void round_trip(const struct shmbus__msg *m) {
  char buf[SHMBUS__PROTO_MAX_MSG];
  struct shmbus__msg out;
  int n, rv;

  n = shmbus__proto_encode(m, buf, sizeof(buf));
  cr_assert_gt(n, 0, "encode type %u: %s", m->type, shmbus_strerror(n));
  shmbus__msg_init(&out, SHMBUS__MSG_NONE, 0);
  rv = shmbus__proto_decode(buf, (size_t)n, &out);
  cr_assert_eq(rv, 0, "decode type %u: %s", m->type, shmbus_strerror(rv));
  assert_msg_eq(&out, m);
  cr_assert_eq(out.nfds, 0);
}

/* ---- round trips -------------------------------------------------------- */

Test(proto, round_trip_every_type) {
  uint32_t t;

  for (t = SHMBUS__MSG_NONE + 1; t < SHMBUS__MSG_TYPE_COUNT; t++) {
    struct shmbus__msg m = full_msg(t);
    round_trip(&m);
  }
}

Test(proto, round_trip_extremes) {
  struct shmbus__msg m;

  m = full_msg(SHMBUS__MSG_OPEN);
  memset(m.topic, 'a', SHMBUS__TOPIC_MAX);
  m.topic[SHMBUS__TOPIC_MAX] = '\0';
  m.history = UINT32_MAX;
  m.params.slot_count = UINT32_MAX;
  m.params.max_pubs = 0;
  m.id = UINT32_MAX;
  round_trip(&m);

  /* An open without params travels without them and says so. */
  m = full_msg(SHMBUS__MSG_OPEN);
  m.has = 0;
  memset(&m.params, 0, sizeof(m.params));
  m.reliable = false;
  m.retain = false;
  m.history = 0;
  round_trip(&m);

  m = full_msg(SHMBUS__MSG_HELLO);
  memset(m.name, 'n', SHMBUS__NAME_MAX);
  m.name[SHMBUS__NAME_MAX] = '\0';
  round_trip(&m);
  m.name[0] = '\0';
  round_trip(&m);

  m = full_msg(SHMBUS__MSG_ERROR);
  memset(m.text, 'x', SHMBUS__TEXT_MAX);
  m.text[SHMBUS__TEXT_MAX] = '\0';
  m.code = INT32_MIN;
  round_trip(&m);
  m.code = -1;
  m.text[0] = '\0';
  m.id = 0; /* an error answering an unreadable request */
  round_trip(&m);

  m = full_msg(SHMBUS__MSG_STATUS_REPLY);
  m.uptime_ms = UINT64_MAX;
  m.daemon_pid = UINT32_MAX;
  round_trip(&m);
  m.uptime_ms = 0;
  round_trip(&m);

  m = full_msg(SHMBUS__MSG_PEER_JOIN);
  m.role = SHMBUS__ROLE_PUB;
  m.topic_id = UINT32_MAX;
  round_trip(&m);
}

Test(proto, fd_counts) {
  cr_assert_eq(shmbus__msg_fd_count(SHMBUS__MSG_OPEN, SHMBUS__ROLE_PUB), 1);
  cr_assert_eq(shmbus__msg_fd_count(SHMBUS__MSG_OPEN, SHMBUS__ROLE_SUB), 1);
  cr_assert_eq(shmbus__msg_fd_count(SHMBUS__MSG_OPENED, SHMBUS__ROLE_SUB), 2);
  cr_assert_eq(shmbus__msg_fd_count(SHMBUS__MSG_ADOPT, SHMBUS__ROLE_PUB), 3);
  cr_assert_eq(shmbus__msg_fd_count(SHMBUS__MSG_PEER_JOIN, SHMBUS__ROLE_PUB), 1);
  cr_assert_eq(shmbus__msg_fd_count(SHMBUS__MSG_PEER_LEAVE, SHMBUS__ROLE_PUB), 0);
  cr_assert_eq(shmbus__msg_fd_count(SHMBUS__MSG_HELLO, 0), 0);
  cr_assert_eq(shmbus__msg_fd_count(SHMBUS__MSG_NONE, 0), 0);
  cr_assert_eq(shmbus__msg_fd_count(SHMBUS__MSG_TYPE_COUNT, 0), 0);
}

/* ---- encoder errors ------------------------------------------------------ */

Test(proto, encode_refuses_what_the_decoder_would) {
  char buf[SHMBUS__PROTO_MAX_MSG];
  struct shmbus__msg m;

  shmbus__msg_init(&m, SHMBUS__MSG_NONE, 1);
  cr_assert_eq(shmbus__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
  m.type = SHMBUS__MSG_TYPE_COUNT;
  cr_assert_eq(shmbus__proto_encode(&m, buf, sizeof(buf)), -EINVAL);

  m = full_msg(SHMBUS__MSG_OPEN);
  m.id = 0; /* a request needs an id */
  cr_assert_eq(shmbus__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
  m = full_msg(SHMBUS__MSG_PEER_JOIN);
  m.id = 5; /* an event carries 0 */
  cr_assert_eq(shmbus__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
  m = full_msg(SHMBUS__MSG_OPEN);
  m.role = 0;
  cr_assert_eq(shmbus__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
  m.role = 3;
  cr_assert_eq(shmbus__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
  m = full_msg(SHMBUS__MSG_OPEN);
  strcpy(m.topic, "a//b");
  cr_assert_eq(shmbus__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
  m.topic[0] = '\0';
  cr_assert_eq(shmbus__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
  m = full_msg(SHMBUS__MSG_ERROR);
  m.code = 0;
  cr_assert_eq(shmbus__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
  m.code = 5;
  cr_assert_eq(shmbus__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
  /* Strings without their NUL inside the field. */
  m = full_msg(SHMBUS__MSG_HELLO);
  memset(m.name, 'n', sizeof(m.name));
  cr_assert_eq(shmbus__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
  m = full_msg(SHMBUS__MSG_ERROR);
  memset(m.text, 't', sizeof(m.text));
  cr_assert_eq(shmbus__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
  m = full_msg(SHMBUS__MSG_OPEN);
  memset(m.topic, 'a', sizeof(m.topic));
  cr_assert_eq(shmbus__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
  /* A watch's pattern follows the pattern grammar; an event's topic is a
   * topic name. */
  m = full_msg(SHMBUS__MSG_WATCH);
  strcpy(m.pattern, "sens*");
  cr_assert_eq(shmbus__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
  m.pattern[0] = '\0';
  cr_assert_eq(shmbus__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
  m = full_msg(SHMBUS__MSG_TOPIC_UP);
  strcpy(m.topic, "a/*");
  cr_assert_eq(shmbus__proto_encode(&m, buf, sizeof(buf)), -EINVAL);
}

Test(proto, encode_every_short_buffer_is_emsgsize) {
  char buf[SHMBUS__PROTO_MAX_MSG], small[SHMBUS__PROTO_MAX_MSG];
  uint32_t t;
  int n, cap;

  for (t = SHMBUS__MSG_NONE + 1; t < SHMBUS__MSG_TYPE_COUNT; t++) {
    struct shmbus__msg m = full_msg(t);
    n = shmbus__proto_encode(&m, buf, sizeof(buf));
    cr_assert_gt(n, 0);
    for (cap = 0; cap < n; cap++)
      cr_assert_eq(shmbus__proto_encode(&m, cap == 0 ? NULL : small, (size_t)cap), -EMSGSIZE,
                   "type %u cap %d", t, cap);
    cr_assert_eq(shmbus__proto_encode(&m, small, (size_t)n), n);
    cr_assert_eq(memcmp(small, buf, (size_t)n), 0);
  }
}

/* ---- a msgpack builder for hand-made (often broken) messages ------------- */

enum tv_kind {
  TV_U = 1, /* unsigned integer */
  TV_I,     /* signed integer (packed as int64) */
  TV_S,     /* string (NUL-terminated) */
  TV_SN,    /* string of explicit length (may hold NUL) */
  TV_REP,   /* string of `n` times the character `u` */
  TV_T,     /* true */
  TV_F,     /* false */
  TV_NIL,
  TV_DBL,
  TV_BIN,
  TV_ARR,  /* array [1, 2, 3] */
  TV_NEST, /* `n` nested arrays around a 1 */
  TV_MAP,  /* map {"a": 1} */
};

struct tv {
  int kind;
  uint64_t u;
  int64_t i;
  const char *s;
  size_t n;
};

struct tkv {
  const char *key; /* NULL ends a list */
  struct tv v;
};

/* One line per value reads better than the formatter's layout. */
/* clang-format off */
#define U(x) {TV_U, .u = (x)}
#define I(x) {TV_I, .i = (x)}
#define S(x) {TV_S, .s = (x)}
#define SN(x, len) {TV_SN, .s = (x), .n = (len)}
#define REP(c, len) {TV_REP, .u = (c), .n = (len)}
#define T_ {TV_T}
#define F_ {TV_F}
#define NIL {TV_NIL}
#define DBL {TV_DBL}
#define BIN(x) {TV_BIN, .s = (x), .n = sizeof(x) - 1}
#define ARR {TV_ARR}
#define NEST(d) {TV_NEST, .n = (d)}
#define MAP {TV_MAP}
#define HDR(t, id) {"v", U(1)}, {"t", S(t)}, {"id", U(id)}
#define PARAMS {"slots", U(256)}, {"slot_size", U(1024)}, {"max_subs", U(64)}, {"max_pubs", U(16)}
/* clang-format on */

static void tv_pack(msgpack_packer *pk, const struct tv *v) {
  size_t i;
  switch (v->kind) {
  case TV_U:
    msgpack_pack_uint64(pk, v->u);
    break;
  case TV_I:
    msgpack_pack_int64(pk, v->i);
    break;
  case TV_S:
    msgpack_pack_str_with_body(pk, v->s, strlen(v->s));
    break;
  case TV_SN:
    msgpack_pack_str_with_body(pk, v->s, v->n);
    break;
  case TV_REP:
    msgpack_pack_str(pk, v->n);
    for (i = 0; i < v->n; i++) {
      char c = (char)v->u;
      msgpack_pack_str_body(pk, &c, 1);
    }
    break;
  case TV_T:
    msgpack_pack_true(pk);
    break;
  case TV_F:
    msgpack_pack_false(pk);
    break;
  case TV_NIL:
    msgpack_pack_nil(pk);
    break;
  case TV_DBL:
    msgpack_pack_double(pk, 1.5);
    break;
  case TV_BIN:
    msgpack_pack_bin_with_body(pk, v->s, v->n);
    break;
  case TV_ARR:
    msgpack_pack_array(pk, 3);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, 2);
    msgpack_pack_int(pk, 3);
    break;
  case TV_NEST:
    for (i = 0; i < v->n; i++)
      msgpack_pack_array(pk, 1);
    msgpack_pack_int(pk, 1);
    break;
  case TV_MAP:
    msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "a", 1);
    msgpack_pack_int(pk, 1);
    break;
  default:
    cr_assert_fail("bad test value kind %d", v->kind);
  }
}

/* Packs a map of the given pairs into sb (initialised here). */
static void tkv_build(msgpack_sbuffer *sb, const struct tkv *kv) {
  msgpack_packer pk;
  size_t n = 0;

  msgpack_sbuffer_init(sb);
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  while (kv[n].key != NULL)
    n++;
  msgpack_pack_map(&pk, n);
  for (; kv->key != NULL; kv++) {
    msgpack_pack_str_with_body(&pk, kv->key, strlen(kv->key));
    tv_pack(&pk, &kv->v);
  }
}

static int tkv_decode(const struct tkv *kv, struct shmbus__msg *m) {
  msgpack_sbuffer sb;
  int rv;

  tkv_build(&sb, kv);
  shmbus__msg_init(m, SHMBUS__MSG_NONE, 0);
  rv = shmbus__proto_decode(sb.data, sb.size, m);
  msgpack_sbuffer_destroy(&sb);
  return rv;
}

struct tcase {
  const char *what;
  int expect;
  struct tkv kv[24];
};

static void run_cases(const struct tcase *c, size_t n) {
  struct shmbus__msg m;
  size_t i;
  int rv;

  for (i = 0; i < n; i++) {
    rv = tkv_decode(c[i].kv, &m);
    cr_expect_eq(rv, c[i].expect, "%s: got %d (%s), want %d", c[i].what, rv, shmbus_err_name(rv),
                 c[i].expect);
  }
}

#define NCASES(a) (sizeof(a) / sizeof((a)[0]))

/* ---- decoder: what is accepted -------------------------------------------- */

Test(proto, decode_accepts_minimal_and_tolerant_forms) {
  /* clang-format off */
  static const struct tcase ok[] = {
      {"status", 0, {HDR("status", 1)}},
      {"keys in any order", 0, {{"role", S("pub")}, {"id", U(3)}, {"topic", S("a")}, {"t", S("open")}, {"v", U(1)}}},
      {"open without optional keys", 0, {HDR("open", 1), {"topic", S("a/b")}, {"role", S("sub")}}},
      {"unknown keys of any type are ignored", 0,
       {HDR("hello", 1), {"name", S("x")}, {"future", ARR}, {"f2", MAP}, {"f3", DBL}, {"f4", NIL},
        {"f5", BIN("\x00\x01")}, {"f6", NEST(2)}, {"f7", I(-5)}}},
      {"keys of other types are ignored", 0, {HDR("hello", 1), {"name", S("x")}, {"topic", U(5)}, {"code", S("?")}}},
      {"small ints in signed encodings", 0, {{"v", I(1)}, {"t", S("close")}, {"id", I(9)}, {"topic_id", I(0)}, {"role", S("pub")}, {"index", I(2)}}},
      {"error without text", 0, {HDR("error", 1), {"code", I(-71)}}},
      {"error code INT32_MIN", 0, {HDR("error", 1), {"code", I(INT32_MIN)}, {"text", S("")}}},
      {"error with id 0", 0, {HDR("error", 0), {"code", I(-71)}}},
      {"u32 max", 0, {HDR("welcome", UINT32_MAX), {"client_id", U(UINT32_MAX)}, {"daemon_pid", U(UINT32_MAX)}}},
      {"u64 max", 0, {HDR("status_reply", 1), {"daemon_pid", U(1)}, {"topics", U(0)}, {"clients", U(0)}, {"uptime_ms", U(UINT64_MAX)}}},
      {"name of 63 bytes", 0, {HDR("hello", 1), {"name", REP('n', 63)}}},
      {"topic of 255 bytes", 0, {HDR("open", 1), {"topic", REP('a', 255)}, {"role", S("pub")}}},
      {"text of 255 bytes", 0, {HDR("error", 1), {"code", I(-1)}, {"text", REP('t', 255)}}},
      {"$sys topic (the daemon decides)", 0, {HDR("open", 1), {"topic", S("$sys/stats")}, {"role", S("sub")}}},
      {"nesting up to the limit in an unknown key", 0, {HDR("ok", 1), {"x", NEST(3)}}},
  };
  /* clang-format on */
  run_cases(ok, NCASES(ok));
}

Test(proto, decode_fills_only_the_message_and_keeps_fds) {
  static const struct tkv kv[] = {
      HDR("hello", 8), {"name", S("me")}, {"topic", S("ignored")}, {"client_id", U(3)}, {NULL}};
  msgpack_sbuffer sb;
  struct shmbus__msg m;

  tkv_build(&sb, kv);
  memset(&m, 0x5a, sizeof(m));
  m.fds[0] = 7;
  m.fds[1] = 8;
  m.fds[2] = 9;
  m.nfds = 3;
  cr_assert_eq(shmbus__proto_decode(sb.data, sb.size, &m), 0);
  msgpack_sbuffer_destroy(&sb);
  cr_assert_eq(m.type, SHMBUS__MSG_HELLO);
  cr_assert_eq(m.id, 8);
  cr_assert_str_eq(m.name, "me");
  cr_assert_str_eq(m.topic, "");
  cr_assert_eq(m.client_id, 0);
  cr_assert_eq(m.has, 0);
  cr_assert_eq(m.fds[0], 7);
  cr_assert_eq(m.fds[2], 9);
  cr_assert_eq(m.nfds, 3);
}

Test(proto, decode_other_version) {
  static const struct tkv v2[] = {
      {"v", U(2)}, {"t", S("hello2")}, {"id", U(77)}, {"name", U(1)}, {NULL}};
  static const struct tkv v0[] = {{"v", U(0)}, {"t", S("hello")}, {"id", S("x")}, {NULL}};
  static const struct tkv vbig[] = {{"v", U(UINT64_MAX)}, {NULL}};
  static const struct tkv vneg[] = {
      {"v", I(-1)}, {"t", S("hello")}, {"id", U(1)}, {"name", S("a")}, {NULL}};
  static const struct tkv vstr[] = {
      {"v", S("1")}, {"t", S("hello")}, {"id", U(1)}, {"name", S("a")}, {NULL}};
  static const struct tkv vnil[] = {
      {"v", NIL}, {"t", S("hello")}, {"id", U(1)}, {"name", S("a")}, {NULL}};
  struct shmbus__msg m;

  /* A well-formed map with another version: EPROTOVER, and the id when it
   * reads as one, so the daemon can answer the request. */
  cr_assert_eq(tkv_decode(v2, &m), SHMBUS_EPROTOVER);
  cr_assert_eq(m.id, 77);
  cr_assert_eq(tkv_decode(v0, &m), SHMBUS_EPROTOVER);
  cr_assert_eq(m.id, 0);
  /* The header keys must still all be there. */
  cr_assert_eq(tkv_decode(vbig, &m), -EPROTO);
  cr_assert_eq(tkv_decode(vneg, &m), -EPROTO);
  cr_assert_eq(tkv_decode(vstr, &m), -EPROTO);
  cr_assert_eq(tkv_decode(vnil, &m), -EPROTO);
}

/* ---- decoder: what is refused ---------------------------------------------- */

Test(proto, decode_rejects_bad_headers) {
  /* clang-format off */
  static const struct tcase bad[] = {
      {"empty map", -EPROTO, {{NULL}}},
      {"no v", -EPROTO, {{"t", S("status")}, {"id", U(1)}}},
      {"no t", -EPROTO, {{"v", U(1)}, {"id", U(1)}}},
      {"no id", -EPROTO, {{"v", U(1)}, {"t", S("status")}}},
      {"v twice", -EPROTO, {HDR("status", 1), {"v", U(1)}}},
      {"t twice", -EPROTO, {HDR("status", 1), {"t", S("status")}}},
      {"id twice", -EPROTO, {HDR("status", 1), {"id", U(1)}}},
      {"unknown t", -EPROTO, {HDR("bogus", 1)}},
      {"empty t", -EPROTO, {HDR("", 1)}},
      {"t with NUL", -EPROTO, {{"v", U(1)}, {"t", SN("ok\0", 3)}, {"id", U(1)}}},
      {"t prefix", -EPROTO, {HDR("statu", 1)}},
      {"t as int", -EPROTO, {{"v", U(1)}, {"t", U(1)}, {"id", U(1)}}},
      {"t as bin", -EPROTO, {{"v", U(1)}, {"t", BIN("ok")}, {"id", U(1)}}},
      {"id negative", -EPROTO, {{"v", U(1)}, {"t", S("status")}, {"id", I(-1)}}},
      {"id over u32", -EPROTO, {HDR("status", 1ull << 32)}},
      {"id as str", -EPROTO, {{"v", U(1)}, {"t", S("status")}, {"id", S("1")}}},
      {"id as float", -EPROTO, {{"v", U(1)}, {"t", S("status")}, {"id", DBL}}},
      {"request with id 0", -EPROTO, {HDR("status", 0)}},
      {"hello with id 0", -EPROTO, {HDR("hello", 0), {"name", S("a")}}},
      {"event with an id", -EPROTO, {HDR("peer_leave", 1), {"topic_id", U(1)}, {"role", S("pub")}, {"index", U(0)}}},
  };
  /* clang-format on */
  run_cases(bad, NCASES(bad));
}

Test(proto, decode_rejects_missing_required_keys) {
  /* clang-format off */
  static const struct tcase bad[] = {
      {"hello without name", -EPROTO, {HDR("hello", 1)}},
      {"welcome without client_id", -EPROTO, {HDR("welcome", 1), {"daemon_pid", U(1)}}},
      {"welcome without daemon_pid", -EPROTO, {HDR("welcome", 1), {"client_id", U(1)}}},
      {"open without topic", -EPROTO, {HDR("open", 1), {"role", S("pub")}}},
      {"open without role", -EPROTO, {HDR("open", 1), {"topic", S("a")}}},
      {"opened without peers", -EPROTO, {HDR("opened", 1), {"topic_id", U(1)}, {"role", S("pub")}, {"index", U(0)}, PARAMS}},
      {"opened without params", -EPROTO, {HDR("opened", 1), {"topic_id", U(1)}, {"role", S("pub")}, {"index", U(0)}, {"peers", U(0)}}},
      {"opened without index", -EPROTO, {HDR("opened", 1), {"topic_id", U(1)}, {"role", S("pub")}, {"peers", U(0)}, PARAMS}},
      {"opened without topic_id", -EPROTO, {HDR("opened", 1), {"role", S("pub")}, {"index", U(0)}, {"peers", U(0)}, PARAMS}},
      {"adopt without index", -EPROTO, {HDR("adopt", 1), {"topic", S("a")}, {"role", S("pub")}, PARAMS}},
      {"adopt without params", -EPROTO, {HDR("adopt", 1), {"topic", S("a")}, {"role", S("pub")}, {"index", U(0)}}},
      {"close without topic_id", -EPROTO, {HDR("close", 1), {"role", S("pub")}, {"index", U(0)}}},
      {"close without role", -EPROTO, {HDR("close", 1), {"topic_id", U(1)}, {"index", U(0)}}},
      {"error without code", -EPROTO, {HDR("error", 1), {"text", S("x")}}},
      {"status_reply without uptime", -EPROTO, {HDR("status_reply", 1), {"daemon_pid", U(1)}, {"topics", U(0)}, {"clients", U(0)}}},
      {"status_reply without clients", -EPROTO, {HDR("status_reply", 1), {"daemon_pid", U(1)}, {"topics", U(0)}, {"uptime_ms", U(0)}}},
      {"peer_join without index", -EPROTO, {HDR("peer_join", 0), {"topic_id", U(1)}, {"role", S("pub")}}},
      {"peer_leave without role", -EPROTO, {HDR("peer_leave", 0), {"topic_id", U(1)}, {"index", U(0)}}},
      {"open with 3 of 4 params", -EPROTO, {HDR("open", 1), {"topic", S("a")}, {"role", S("pub")}, {"slots", U(256)}, {"slot_size", U(1)}, {"max_subs", U(1)}}},
      {"open with 1 of 4 params", -EPROTO, {HDR("open", 1), {"topic", S("a")}, {"role", S("pub")}, {"max_pubs", U(1)}}},
  };
  /* clang-format on */
  run_cases(bad, NCASES(bad));
}

Test(proto, decode_rejects_bad_values) {
  /* clang-format off */
  static const struct tcase bad[] = {
      {"name of 64 bytes", -EPROTO, {HDR("hello", 1), {"name", REP('n', 64)}}},
      {"name with NUL", -EPROTO, {HDR("hello", 1), {"name", SN("a\0b", 3)}}},
      {"name of only NUL", -EPROTO, {HDR("hello", 1), {"name", SN("\0", 1)}}},
      {"name as bin", -EPROTO, {HDR("hello", 1), {"name", BIN("ab")}}},
      {"name as int", -EPROTO, {HDR("hello", 1), {"name", U(1)}}},
      {"name as nil", -EPROTO, {HDR("hello", 1), {"name", NIL}}},
      {"name twice", -EPROTO, {HDR("hello", 1), {"name", S("a")}, {"name", S("b")}}},
      {"topic of 256 bytes", -EPROTO, {HDR("open", 1), {"topic", REP('a', 256)}, {"role", S("pub")}}},
      {"topic of 4000 bytes", -EPROTO, {HDR("open", 1), {"topic", REP('a', 4000)}, {"role", S("pub")}}},
      {"topic with NUL", -EPROTO, {HDR("open", 1), {"topic", SN("a\0b", 3)}, {"role", S("pub")}}},
      {"topic with trailing NUL", -EPROTO, {HDR("open", 1), {"topic", SN("ab\0", 3)}, {"role", S("pub")}}},
      {"empty topic", -EPROTO, {HDR("open", 1), {"topic", S("")}, {"role", S("pub")}}},
      {"invalid topic", -EPROTO, {HDR("adopt", 1), {"topic", S("a//b")}, {"role", S("pub")}, {"index", U(0)}, PARAMS}},
      {"topic with space", -EPROTO, {HDR("open", 1), {"topic", S("a b")}, {"role", S("pub")}}},
      {"topic as array", -EPROTO, {HDR("open", 1), {"topic", ARR}, {"role", S("pub")}}},
      {"text of 256 bytes", -EPROTO, {HDR("error", 1), {"code", I(-1)}, {"text", REP('t', 256)}}},
      {"text with NUL", -EPROTO, {HDR("error", 1), {"code", I(-1)}, {"text", SN("bad\0news", 8)}}},
      {"role unknown", -EPROTO, {HDR("open", 1), {"topic", S("a")}, {"role", S("both")}}},
      {"role upper case", -EPROTO, {HDR("open", 1), {"topic", S("a")}, {"role", S("PUB")}}},
      {"role as int", -EPROTO, {HDR("open", 1), {"topic", S("a")}, {"role", U(1)}}},
      {"role with NUL", -EPROTO, {HDR("open", 1), {"topic", S("a")}, {"role", SN("pub\0", 4)}}},
      {"u32 over", -EPROTO, {HDR("close", 1), {"topic_id", U(1ull << 32)}, {"role", S("pub")}, {"index", U(0)}}},
      {"u32 max u64", -EPROTO, {HDR("close", 1), {"topic_id", U(UINT64_MAX)}, {"role", S("pub")}, {"index", U(0)}}},
      {"u32 negative", -EPROTO, {HDR("close", 1), {"topic_id", I(-1)}, {"role", S("pub")}, {"index", U(0)}}},
      {"u32 most negative", -EPROTO, {HDR("close", 1), {"topic_id", I(INT64_MIN)}, {"role", S("pub")}, {"index", U(0)}}},
      {"u32 as float", -EPROTO, {HDR("close", 1), {"topic_id", DBL}, {"role", S("pub")}, {"index", U(0)}}},
      {"u32 as bool", -EPROTO, {HDR("close", 1), {"topic_id", T_}, {"role", S("pub")}, {"index", U(0)}}},
      {"u32 as str", -EPROTO, {HDR("close", 1), {"topic_id", S("1")}, {"role", S("pub")}, {"index", U(0)}}},
      {"u32 as nil", -EPROTO, {HDR("close", 1), {"topic_id", NIL}, {"role", S("pub")}, {"index", U(0)}}},
      {"param over", -EPROTO, {HDR("open", 1), {"topic", S("a")}, {"role", S("pub")}, {"slots", U(1ull << 32)}, {"slot_size", U(1)}, {"max_subs", U(1)}, {"max_pubs", U(1)}}},
      {"param negative", -EPROTO, {HDR("open", 1), {"topic", S("a")}, {"role", S("pub")}, {"slots", U(2)}, {"slot_size", I(-1)}, {"max_subs", U(1)}, {"max_pubs", U(1)}}},
      {"history negative", -EPROTO, {HDR("open", 1), {"topic", S("a")}, {"role", S("sub")}, {"history", I(-3)}}},
      {"u64 negative", -EPROTO, {HDR("status_reply", 1), {"daemon_pid", U(1)}, {"topics", U(0)}, {"clients", U(0)}, {"uptime_ms", I(-1)}}},
      {"u64 as float", -EPROTO, {HDR("status_reply", 1), {"daemon_pid", U(1)}, {"topics", U(0)}, {"clients", U(0)}, {"uptime_ms", DBL}}},
      {"bool as int", -EPROTO, {HDR("open", 1), {"topic", S("a")}, {"role", S("sub")}, {"reliable", U(1)}}},
      {"bool as nil", -EPROTO, {HDR("open", 1), {"topic", S("a")}, {"role", S("sub")}, {"retain", NIL}}},
      {"code zero", -EPROTO, {HDR("error", 1), {"code", U(0)}}},
      {"code positive", -EPROTO, {HDR("error", 1), {"code", U(5)}}},
      {"code below INT32_MIN", -EPROTO, {HDR("error", 1), {"code", I((int64_t)INT32_MIN - 1)}}},
      {"code INT64_MIN", -EPROTO, {HDR("error", 1), {"code", I(INT64_MIN)}}},
      {"code as str", -EPROTO, {HDR("error", 1), {"code", S("-1")}}},
      {"code as float", -EPROTO, {HDR("error", 1), {"code", DBL}}},
      {"known key with a nested value", -EPROTO, {HDR("hello", 1), {"name", MAP}}},
  };
  /* clang-format on */
  run_cases(bad, NCASES(bad));
}

/* Raw byte strings: shapes the builder cannot make. */
struct rcase {
  const char *what;
  const char *bytes;
  size_t len;
};
/* clang-format off */
#define RAW(w, b) {w, b, sizeof(b) - 1}
/* clang-format on */
/* Decodes a string literal (which may hold NUL bytes). */
#define DECODE_LIT(lit, m) shmbus__proto_decode(lit, sizeof(lit) - 1, m)

/* The minimal valid "ok": {"v":1,"t":"ok","id":1}. */
#define OK_MAP "\x83\xa1v\x01\xa1t\xa2ok\xa2id\x01"
#define OK_BODY "\xa1v\x01\xa1t\xa2ok\xa2id\x01"

Test(proto, decode_rejects_bad_shapes) {
  /* clang-format off */
  static const struct rcase bad[] = {
      RAW("empty", ""),
      RAW("nil", "\xc0"),
      RAW("int", "\x01"),
      RAW("str", "\xa2ok"),
      RAW("array", "\x93\x01\x02\x03"),
      RAW("array holding the map", "\x91" OK_MAP),
      RAW("never-used byte", "\xc1"),
      RAW("never-used byte as a value", "\x84" OK_BODY "\xa1x\xc1"),
      RAW("trailing byte", OK_MAP "\x00"),
      RAW("trailing nil", OK_MAP "\xc0"),
      RAW("two maps", OK_MAP OK_MAP),
      RAW("non-string key", "\x84" OK_BODY "\x01\x01"),
      RAW("nil key", "\x84" OK_BODY "\xc0\x01"),
      RAW("bin key", "\x84" OK_BODY "\xc4\x01x\x01"),
      RAW("array key", "\x84" OK_BODY "\x91\x01\x01"),
      RAW("map16 declaring more than it has", "\xde\x00\x05" OK_BODY),
      RAW("map32 declaring 2^32-1 entries", "\xdf\xff\xff\xff\xff" OK_BODY),
      RAW("array32 declaring 2^32-1 items", "\x84" OK_BODY "\xa1x\xdd\xff\xff\xff\xff\x01"),
      RAW("map32 value declaring 2^32-1", "\x84" OK_BODY "\xa1x\xdf\xff\xff\xff\xff\x01\x01"),
      RAW("str32 longer than the buffer", "\x84" OK_BODY "\xa1x\xdb\xff\xff\xff\xff" "ab"),
      RAW("bin32 longer than the buffer", "\x84" OK_BODY "\xa1x\xc6\x00\x00\x10\x00" "ab"),
      RAW("ext32 longer than the buffer", "\x84" OK_BODY "\xa1x\xc9\x00\x00\x10\x00\x01" "ab"),
      RAW("fixext16 cut", "\x84" OK_BODY "\xa1x\xd8\x01" "abc"),
      RAW("uint64 cut", "\x84" OK_BODY "\xa1x\xcf\x00\x00"),
      RAW("depth 5", "\x84" OK_BODY "\xa1x\x91\x91\x91\x91\x01"),
      RAW("depth 30", "\x84" OK_BODY "\xa1x\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x01"),
      RAW("depth 40 maps", "\x84" OK_BODY "\xa1x\x81\xa1x\x81\xa1x\x81\xa1x\x81\xa1x\x81\xa1x\x81\xa1x\x81\xa1x\x81\xa1x\x81\xa1x\x01"),
  };
  /* clang-format on */
  struct shmbus__msg m;
  size_t i;
  int rv;

  for (i = 0; i < NCASES(bad); i++) {
    rv = shmbus__proto_decode(bad[i].bytes, bad[i].len, &m);
    cr_expect_eq(rv, -EPROTO, "%s: got %d", bad[i].what, rv);
  }
  /* The well-formed base of the cases above really is accepted, with
   * unknown exotic values (ext, fixext, bin, float) ignored. */
  cr_assert_eq(shmbus__proto_decode(OK_MAP, sizeof(OK_MAP) - 1, &m), 0);
  cr_assert_eq(m.type, SHMBUS__MSG_OK);
  cr_assert_eq(DECODE_LIT("\x84" OK_BODY "\xa1x\xd8\x01"
                          "0123456789abcdef",
                          &m),
               0);
  cr_assert_eq(DECODE_LIT("\x84" OK_BODY "\xa1x\xc7\x02\x05"
                          "ab",
                          &m),
               0);
  cr_assert_eq(DECODE_LIT("\x84" OK_BODY "\xa1x\xca\x00\x00\x00\x00", &m), 0);
  cr_assert_eq(DECODE_LIT("\x84" OK_BODY "\xa1x\x91\x91\x91\x01", &m), 0);
  cr_assert_eq(shmbus__proto_decode(NULL, 0, &m), -EPROTO);
}

/* Builds {"v":1,"t":"ok","id":1, k0..: 0} with `entries` entries in all. */
static void many_entries(msgpack_sbuffer *sb, unsigned entries) {
  msgpack_packer pk;
  unsigned i;
  char key[16];

  msgpack_sbuffer_init(sb);
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_map(&pk, entries);
  msgpack_pack_str_with_body(&pk, "v", 1);
  msgpack_pack_uint32(&pk, 1);
  msgpack_pack_str_with_body(&pk, "t", 1);
  msgpack_pack_str_with_body(&pk, "ok", 2);
  msgpack_pack_str_with_body(&pk, "id", 2);
  msgpack_pack_uint32(&pk, 1);
  for (i = 3; i < entries; i++) {
    int n = snprintf(key, sizeof(key), "k%u", i);
    msgpack_pack_str_with_body(&pk, key, (size_t)n);
    msgpack_pack_nil(&pk);
  }
}

Test(proto, decode_entry_and_size_limits) {
  msgpack_sbuffer sb;
  struct shmbus__msg m;
  char big[SHMBUS__PROTO_MAX_MSG + 1];

  many_entries(&sb, 64);
  cr_assert_eq(shmbus__proto_decode(sb.data, sb.size, &m), 0);
  msgpack_sbuffer_destroy(&sb);
  many_entries(&sb, 65);
  cr_assert_eq(shmbus__proto_decode(sb.data, sb.size, &m), -EPROTO);
  msgpack_sbuffer_destroy(&sb);
  many_entries(&sb, 1000);
  cr_assert_eq(shmbus__proto_decode(sb.data, sb.size, &m), -EPROTO);
  msgpack_sbuffer_destroy(&sb);

  /* More than a datagram can hold is refused before it is looked at. */
  memset(big, 0, sizeof(big));
  memcpy(big, OK_MAP, sizeof(OK_MAP) - 1);
  cr_assert_eq(shmbus__proto_decode(big, sizeof(big), &m), -EPROTO);
}

/* ---- truncation and mutation ------------------------------------------------- */

Test(proto, every_truncation_is_an_error) {
  char buf[SHMBUS__PROTO_MAX_MSG], *copy;
  struct shmbus__msg m;
  uint32_t t;
  int n, len, rv;

  for (t = SHMBUS__MSG_NONE + 1; t < SHMBUS__MSG_TYPE_COUNT; t++) {
    struct shmbus__msg src = full_msg(t);
    n = shmbus__proto_encode(&src, buf, sizeof(buf));
    cr_assert_gt(n, 0);
    for (len = 0; len < n; len++) {
      /* A heap copy of exactly `len` bytes, so that ASan and valgrind see
       * any read beyond the datagram. */
      copy = malloc(len > 0 ? (size_t)len : 1);
      cr_assert_not_null(copy);
      memcpy(copy, buf, (size_t)len);
      rv = shmbus__proto_decode(copy, (size_t)len, &m);
      free(copy);
      cr_assert_lt(rv, 0, "type %u cut at %d of %d decoded", t, len, n);
    }
  }
}

/* A small deterministic generator, so failures reproduce. */
static uint64_t rng_next(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

Test(proto, random_mutations_never_crash) {
  char buf[SHMBUS__PROTO_MAX_MSG], *copy;
  struct shmbus__msg m, back;
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  unsigned iter, j, flips, accepted = 0;
  uint32_t t;
  int n, len, rv;

  for (iter = 0; iter < 20000; iter++) {
    struct shmbus__msg src;
    t = 1 + (uint32_t)(rng_next(&seed) % (SHMBUS__MSG_TYPE_COUNT - 1));
    src = full_msg(t);
    n = shmbus__proto_encode(&src, buf, sizeof(buf));
    cr_assert_gt(n, 0);
    len = n;
    flips = 1 + (unsigned)(rng_next(&seed) % 4);
    for (j = 0; j < flips; j++) {
      uint64_t r = rng_next(&seed);
      switch (r % 4) {
      case 0: /* flip a bit */
        buf[(r >> 8) % (uint64_t)len] ^= (char)(1u << ((r >> 40) % 8));
        break;
      case 1: /* set a byte to an interesting value */
        buf[(r >> 8) % (uint64_t)len] = "\x00\xff\xc1\xdf\xdd\xdb\x7f\x80\x9f\xa0"[(r >> 40) % 10];
        break;
      case 2: /* cut */
        len = 1 + (int)((r >> 8) % (uint64_t)len);
        break;
      default: /* grow by a random byte */
        if (len < (int)sizeof(buf))
          buf[len++] = (char)(r >> 16);
        break;
      }
    }
    copy = malloc((size_t)len);
    cr_assert_not_null(copy);
    memcpy(copy, buf, (size_t)len);
    rv = shmbus__proto_decode(copy, (size_t)len, &m);
    free(copy);
    cr_assert(rv == 0 || rv == -EPROTO || rv == SHMBUS_EPROTOVER, "rv %d", rv);
    if (rv == 0) {
      /* Whatever is accepted is a valid message: it encodes again, to
       * something that decodes to the same message. */
      accepted++;
      n = shmbus__proto_encode(&m, buf, sizeof(buf));
      cr_assert_gt(n, 0, "re-encode of an accepted mutation: %d", n);
      cr_assert_eq(shmbus__proto_decode(buf, (size_t)n, &back), 0);
      assert_msg_eq(&back, &m);
    }
  }
  cr_log_info("%u of 20000 mutations decoded", accepted);
}

/* ---- topic names --------------------------------------------------------------- */

Test(proto, topic_names) {
  /* clang-format off */
  static const struct {
    const char *name;
    int user; /* allow_sys = false */
    int sys;  /* allow_sys = true */
  } cases[] = {
      {"a", 0, 0},
      {"sensors/imu.0", 0, 0},
      {"A-Z_a-z.0-9/x", 0, 0},
      {"a/b/c/d/e/f/g", 0, 0},
      {"...", 0, 0},
      {"-", 0, 0},
      {"$sys", SHMBUS_EBADNAME, 0},
      {"$sys/stats", SHMBUS_EBADNAME, 0},
      {"$sys/clients/42", SHMBUS_EBADNAME, 0},
      {"$system", 0, 0},       /* only the "$sys" segment is reserved */
      {"$other/x", 0, 0},      /* '$' may start the first segment */
      {"sys/stats", 0, 0},
      {"", SHMBUS_EBADNAME, SHMBUS_EBADNAME},
      {"/", SHMBUS_EBADNAME, SHMBUS_EBADNAME},
      {"/a", SHMBUS_EBADNAME, SHMBUS_EBADNAME},
      {"a/", SHMBUS_EBADNAME, SHMBUS_EBADNAME},
      {"a//b", SHMBUS_EBADNAME, SHMBUS_EBADNAME},
      {"$sys/", SHMBUS_EBADNAME, SHMBUS_EBADNAME},
      {"a/$b", SHMBUS_EBADNAME, SHMBUS_EBADNAME},
      {"a$", SHMBUS_EBADNAME, SHMBUS_EBADNAME},
      {"$$", SHMBUS_EBADNAME, SHMBUS_EBADNAME},
      {"/$sys", SHMBUS_EBADNAME, SHMBUS_EBADNAME},
      {"a b", SHMBUS_EBADNAME, SHMBUS_EBADNAME},
      {"a\tb", SHMBUS_EBADNAME, SHMBUS_EBADNAME},
      {"a*", SHMBUS_EBADNAME, SHMBUS_EBADNAME},
      {"a/#", SHMBUS_EBADNAME, SHMBUS_EBADNAME},
      {"a+b", SHMBUS_EBADNAME, SHMBUS_EBADNAME},
      {"a\\b", SHMBUS_EBADNAME, SHMBUS_EBADNAME},
      {"caf\xc3\xa9", SHMBUS_EBADNAME, SHMBUS_EBADNAME},
      {"\xff", SHMBUS_EBADNAME, SHMBUS_EBADNAME},
  };
  /* clang-format on */
  char name[SHMBUS__TOPIC_MAX + 2];
  size_t i;

  for (i = 0; i < NCASES(cases); i++) {
    cr_expect_eq(shmbus__topic_validate(cases[i].name, false), cases[i].user, "\"%s\" user",
                 cases[i].name);
    cr_expect_eq(shmbus__topic_validate(cases[i].name, true), cases[i].sys, "\"%s\" sys",
                 cases[i].name);
  }
  cr_assert_eq(shmbus__topic_validate(NULL, true), SHMBUS_EBADNAME);
  memset(name, 'a', sizeof(name));
  name[SHMBUS__TOPIC_MAX] = '\0';
  cr_assert_eq(shmbus__topic_validate(name, false), 0);
  name[SHMBUS__TOPIC_MAX] = 'a';
  name[SHMBUS__TOPIC_MAX + 1] = '\0';
  cr_assert_eq(shmbus__topic_validate(name, false), SHMBUS_EBADNAME);
}

/* ---- the socket ------------------------------------------------------------------ */

static void sock_pair(int sv[2]) {
  cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0, "socketpair: %s",
               strerror(errno));
}

/* Open descriptors of this process, as /proc/self/fd lists them. */
static int fd_count(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;

  cr_assert_not_null(d);
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1; /* the directory's own fd */
}

static int make_memfd(size_t size) {
  int fd = memfd_create("proto-test", MFD_CLOEXEC);
  cr_assert_geq(fd, 0, "memfd_create: %s", strerror(errno));
  cr_assert_eq(ftruncate(fd, (off_t)size), 0);
  return fd;
}

static int make_eventfd(void) {
  int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  cr_assert_geq(fd, 0, "eventfd: %s", strerror(errno));
  return fd;
}

static void assert_same_file(int a, int b) {
  struct stat sa, sb;
  cr_assert_eq(fstat(a, &sa), 0);
  cr_assert_eq(fstat(b, &sb), 0);
  cr_assert_eq(sa.st_dev, sb.st_dev);
  cr_assert_eq(sa.st_ino, sb.st_ino);
}

/* eventfds share one anonymous inode, so st_ino cannot tell them apart:
 * a count written to one must be read from the other. */
static void assert_same_eventfd(int sent, int got) {
  eventfd_t v = 0;
  cr_assert_eq(eventfd_write(got, 5), 0);
  cr_assert_eq(eventfd_read(sent, &v), 0);
  cr_assert_eq(v, 5);
}

/* sendmsg without any of proto's checks. */
static ssize_t raw_send(int sock, const void *data, size_t len, const int *fds, unsigned nfds) {
  union {
    char buf[CMSG_SPACE(sizeof(int) * 32)];
    struct cmsghdr align;
  } ctl;
  struct iovec iov = {(void *)data, len};
  struct msghdr mh;
  struct cmsghdr *cm;

  cr_assert_leq(nfds, 32);
  memset(&mh, 0, sizeof(mh));
  memset(&ctl, 0, sizeof(ctl));
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  if (nfds > 0) {
    mh.msg_control = ctl.buf;
    mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
    cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
  }
  return sendmsg(sock, &mh, MSG_NOSIGNAL);
}

static int encode_full(uint32_t type, char *buf) {
  struct shmbus__msg m = full_msg(type);
  int n = shmbus__proto_encode(&m, buf, SHMBUS__PROTO_MAX_MSG);
  cr_assert_gt(n, 0);
  return n;
}

Test(proto, send_recv_every_type_with_real_fds) {
  struct shmbus__msg m, out;
  uint32_t t, i, want;
  int sv[2], efd;

  sock_pair(sv);
  for (t = SHMBUS__MSG_NONE + 1; t < SHMBUS__MSG_TYPE_COUNT; t++) {
    m = full_msg(t);
    want = shmbus__msg_fd_count(t, m.role);
    /* Memory files of different sizes, and an eventfd last where the type
     * carries one (open, adopt, peer_join). */
    for (i = 0; i < want; i++)
      m.fds[i] = make_memfd(4096 * (i + 1));
    efd = -1;
    if (t == SHMBUS__MSG_OPEN || t == SHMBUS__MSG_ADOPT || t == SHMBUS__MSG_PEER_JOIN) {
      close(m.fds[want - 1]);
      efd = make_eventfd();
      m.fds[want - 1] = efd;
    }
    m.nfds = want;
    cr_assert_eq(shmbus__proto_send(sv[0], &m), 0, "send type %u", t);

    memset(&out, 0x5a, sizeof(out));
    cr_assert_eq(shmbus__proto_recv(sv[1], &out), 0, "recv type %u", t);
    assert_msg_eq(&out, &m);
    cr_assert_eq(out.nfds, want);
    for (i = 0; i < SHMBUS__PROTO_MAX_FDS; i++) {
      if (i >= want) {
        cr_assert_eq(out.fds[i], -1);
        continue;
      }
      cr_assert_geq(out.fds[i], 0);
      cr_assert_neq(out.fds[i], m.fds[i]);
      cr_assert(fcntl(out.fds[i], F_GETFD) & FD_CLOEXEC, "received fds are close-on-exec");
      if (m.fds[i] == efd)
        assert_same_eventfd(m.fds[i], out.fds[i]);
      else
        assert_same_file(m.fds[i], out.fds[i]);
    }
    shmbus__msg_close_fds(&out);
    cr_assert_eq(out.nfds, 0);
    for (i = 0; i < SHMBUS__PROTO_MAX_FDS; i++)
      cr_assert_eq(out.fds[i], -1);
    shmbus__msg_close_fds(&m);
  }
  cr_assert_eq(shmbus__proto_recv(sv[1], &out), -EAGAIN);
  close(sv[0]);
  close(sv[1]);
}

Test(proto, send_checks_the_fd_count) {
  struct shmbus__msg m, out;
  int sv[2], fd;

  sock_pair(sv);
  fd = make_memfd(4096);
  m = full_msg(SHMBUS__MSG_OPEN); /* needs 1 */
  cr_assert_eq(shmbus__proto_send(sv[0], &m), -EINVAL);
  m.nfds = 2;
  m.fds[0] = m.fds[1] = fd;
  cr_assert_eq(shmbus__proto_send(sv[0], &m), -EINVAL);
  m.nfds = 1;
  m.fds[0] = -1;
  cr_assert_eq(shmbus__proto_send(sv[0], &m), -EINVAL);
  m = full_msg(SHMBUS__MSG_HELLO); /* needs 0 */
  m.nfds = 1;
  m.fds[0] = fd;
  cr_assert_eq(shmbus__proto_send(sv[0], &m), -EINVAL);
  m = full_msg(SHMBUS__MSG_ADOPT); /* needs 3 */
  m.nfds = 2;
  m.fds[0] = m.fds[1] = fd;
  cr_assert_eq(shmbus__proto_send(sv[0], &m), -EINVAL);
  m.nfds = 4; /* more than the struct holds */
  cr_assert_eq(shmbus__proto_send(sv[0], &m), -EINVAL);
  m = full_msg(SHMBUS__MSG_HELLO);
  m.type = SHMBUS__MSG_TYPE_COUNT;
  cr_assert_eq(shmbus__proto_send(sv[0], &m), -EINVAL);
  /* An encoding error comes back as is, and nothing is sent. */
  m = full_msg(SHMBUS__MSG_HELLO);
  m.id = 0;
  cr_assert_eq(shmbus__proto_send(sv[0], &m), -EINVAL);
  cr_assert_eq(shmbus__proto_recv(sv[1], &out), -EAGAIN);
  close(fd);
  close(sv[0]);
  close(sv[1]);
}

/* Sends `bytes` with `nfds` fresh memfds attached (closing our copies),
 * then expects recv to fail with `expect` and to leave no descriptor
 * behind. */
static void expect_refused(int sv[2], const void *bytes, size_t len, unsigned nfds, int expect) {
  struct shmbus__msg out;
  int fds[32], before, rv;
  unsigned i;

  before = fd_count();
  for (i = 0; i < nfds; i++)
    fds[i] = make_memfd(4096);
  cr_assert_eq(raw_send(sv[0], bytes, len, fds, nfds), (ssize_t)len, "raw send: %s",
               strerror(errno));
  for (i = 0; i < nfds; i++)
    close(fds[i]);
  cr_assert_eq(fd_count(), before);
  rv = shmbus__proto_recv(sv[1], &out);
  cr_assert_eq(rv, expect, "%zu bytes, %u fds: got %s, want %s", len, nfds, shmbus_err_name(rv),
               shmbus_err_name(expect));
  cr_assert_eq(fd_count(), before, "every fd received with a refused datagram is closed");
  cr_assert_eq(out.nfds, 0);
  for (i = 0; i < SHMBUS__PROTO_MAX_FDS; i++)
    cr_assert_eq(out.fds[i], -1);
}

Test(proto, recv_refuses_wrong_fd_counts_and_closes_them) {
  char buf[SHMBUS__PROTO_MAX_MSG];
  int sv[2], n;

  sock_pair(sv);
  n = encode_full(SHMBUS__MSG_HELLO, buf);
  expect_refused(sv, buf, (size_t)n, 1, -EPROTO);
  expect_refused(sv, buf, (size_t)n, 3, -EPROTO);
  n = encode_full(SHMBUS__MSG_OPEN, buf);
  expect_refused(sv, buf, (size_t)n, 0, -EPROTO);
  expect_refused(sv, buf, (size_t)n, 2, -EPROTO);
  expect_refused(sv, buf, (size_t)n, 4, -EPROTO);
  n = encode_full(SHMBUS__MSG_ADOPT, buf);
  expect_refused(sv, buf, (size_t)n, 2, -EPROTO);
  expect_refused(sv, buf, (size_t)n, 11, -EPROTO); /* fills the control buffer exactly */
  expect_refused(sv, buf, (size_t)n, 12, -EPROTO); /* MSG_CTRUNC: the kernel drops the rest */
  expect_refused(sv, buf, (size_t)n, 32, -EPROTO);
  n = encode_full(SHMBUS__MSG_PEER_JOIN, buf);
  expect_refused(sv, buf, (size_t)n, 0, -EPROTO);
  n = encode_full(SHMBUS__MSG_OPENED, buf);
  expect_refused(sv, buf, (size_t)n, 1, -EPROTO);
  expect_refused(sv, buf, (size_t)n, 3, -EPROTO);

  /* A malformed message with the right number of fds loses them too. */
  expect_refused(sv, "\x91\x01", 2, 1, -EPROTO);
  /* So does one of another version. */
  expect_refused(sv, "\x83\xa1v\x02\xa1t\xa4open\xa2id\x05", 15, 1, SHMBUS_EPROTOVER);

  /* The socket still works afterwards. */
  n = encode_full(SHMBUS__MSG_OK, buf);
  cr_assert_eq(raw_send(sv[0], buf, (size_t)n, NULL, 0), n);
  {
    struct shmbus__msg out;
    cr_assert_eq(shmbus__proto_recv(sv[1], &out), 0);
    cr_assert_eq(out.type, SHMBUS__MSG_OK);
  }
  close(sv[0]);
  close(sv[1]);
}

Test(proto, recv_other_version_reports_the_id) {
  static const char v2[] = "\x83\xa1v\x02\xa1t\xa5hello\xa2id\x2a";
  struct shmbus__msg out;
  int sv[2];

  sock_pair(sv);
  cr_assert_eq(raw_send(sv[0], v2, sizeof(v2) - 1, NULL, 0), (ssize_t)sizeof(v2) - 1);
  cr_assert_eq(shmbus__proto_recv(sv[1], &out), SHMBUS_EPROTOVER);
  cr_assert_eq(out.id, 42);
  close(sv[0]);
  close(sv[1]);
}

/* {"v":1,"t":"ok","id":1,"x":"aaa..."} of exactly `total` bytes. */
static void padded_ok(char *buf, size_t total) {
  static const char head[] = "\x84" OK_BODY "\xa1x\xdb"; /* str32 */
  size_t hl = sizeof(head) - 1, sl;

  cr_assert_gt(total, hl + 4);
  sl = total - hl - 4;
  memcpy(buf, head, hl);
  buf[hl] = (char)(sl >> 24);
  buf[hl + 1] = (char)(sl >> 16);
  buf[hl + 2] = (char)(sl >> 8);
  buf[hl + 3] = (char)sl;
  memset(buf + hl + 4, 'a', sl);
}

Test(proto, recv_sizes) {
  static char big[8192];
  struct shmbus__msg out;
  int sv[2];

  sock_pair(sv);
  /* The largest datagram the protocol allows is read whole. */
  padded_ok(big, SHMBUS__PROTO_MAX_MSG);
  cr_assert_eq(raw_send(sv[0], big, SHMBUS__PROTO_MAX_MSG, NULL, 0), SHMBUS__PROTO_MAX_MSG);
  cr_assert_eq(shmbus__proto_recv(sv[1], &out), 0);
  cr_assert_eq(out.type, SHMBUS__MSG_OK);
  /* One byte more is cut by the kernel (MSG_TRUNC) and refused. */
  padded_ok(big, SHMBUS__PROTO_MAX_MSG + 1);
  expect_refused(sv, big, SHMBUS__PROTO_MAX_MSG + 1, 0, -EPROTO);
  padded_ok(big, sizeof(big));
  expect_refused(sv, big, sizeof(big), 0, -EPROTO);
  memset(big, 0, sizeof(big));
  expect_refused(sv, big, sizeof(big), 0, -EPROTO);
  expect_refused(sv, big, sizeof(big), 2, -EPROTO);
  /* The cut datagram is gone whole: the next one reads normally. */
  padded_ok(big, 100);
  cr_assert_eq(raw_send(sv[0], big, 100, NULL, 0), 100);
  cr_assert_eq(shmbus__proto_recv(sv[1], &out), 0);
  cr_assert_eq(shmbus__proto_recv(sv[1], &out), -EAGAIN);
  close(sv[0]);
  close(sv[1]);
}

Test(proto, recv_nothing_waiting_and_peer_closed) {
  char buf[SHMBUS__PROTO_MAX_MSG];
  struct shmbus__msg m, out;
  int sv[2], n;

  sock_pair(sv);
  cr_assert_eq(shmbus__proto_recv(sv[1], &out), -EAGAIN);
  cr_assert_eq(shmbus__proto_recv(sv[1], &out), -EAGAIN);

  /* What was sent before the peer closed is still delivered, then EPIPE. */
  n = encode_full(SHMBUS__MSG_STATUS, buf);
  cr_assert_eq(raw_send(sv[0], buf, (size_t)n, NULL, 0), n);
  close(sv[0]);
  cr_assert_eq(shmbus__proto_recv(sv[1], &out), 0);
  cr_assert_eq(out.type, SHMBUS__MSG_STATUS);
  cr_assert_eq(shmbus__proto_recv(sv[1], &out), -EPIPE);
  cr_assert_eq(shmbus__proto_recv(sv[1], &out), -EPIPE);

  /* Sending to a closed peer is EPIPE, without SIGPIPE killing the test. */
  m = full_msg(SHMBUS__MSG_OK);
  cr_assert_eq(shmbus__proto_send(sv[1], &m), -EPIPE);
  close(sv[1]);

  /* A zero-length datagram reads as the end of the stream; its fds are
   * closed all the same. */
  sock_pair(sv);
  expect_refused(sv, "", 0, 2, -EPIPE);
  close(sv[0]);
  close(sv[1]);

  /* Not a socket. */
  cr_assert_eq(shmbus__proto_recv(-1, &out), -EBADF);
  m = full_msg(SHMBUS__MSG_OK);
  cr_assert_eq(shmbus__proto_send(-1, &m), -EBADF);
}

Test(proto, send_to_a_full_socket_is_eagain) {
  struct shmbus__msg m, out;
  int sv[2], rv = 0;
  unsigned sent = 0, got = 0;

  sock_pair(sv);
  m = full_msg(SHMBUS__MSG_ERROR);
  while (sent < 1000000 && (rv = shmbus__proto_send(sv[0], &m)) == 0)
    sent++;
  cr_assert_eq(rv, -EAGAIN, "after %u sends: %d", sent, rv);
  cr_assert_gt(sent, 0);
  while (shmbus__proto_recv(sv[1], &out) == 0)
    got++;
  cr_assert_eq(got, sent);
  cr_assert_eq(shmbus__proto_send(sv[0], &m), 0, "room again once read");
  close(sv[0]);
  close(sv[1]);
}

Test(proto, msg_init_and_close_fds) {
  struct shmbus__msg m;
  int before = fd_count();

  shmbus__msg_init(&m, SHMBUS__MSG_ADOPT, 3);
  cr_assert_eq(m.type, SHMBUS__MSG_ADOPT);
  cr_assert_eq(m.id, 3);
  cr_assert_eq(m.nfds, 0);
  cr_assert_eq(m.fds[0], -1);
  cr_assert_eq(m.fds[2], -1);
  m.fds[0] = make_memfd(4096);
  m.fds[2] = make_eventfd();
  m.nfds = 3;
  shmbus__msg_close_fds(&m);
  cr_assert_eq(fd_count(), before);
  cr_assert_eq(m.nfds, 0);
  cr_assert_eq(m.fds[0], -1);
  cr_assert_eq(m.fds[2], -1);
  shmbus__msg_close_fds(&m); /* idempotent */
}
