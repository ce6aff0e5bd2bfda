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
  uint32_t id = type == SHMBUS__MSG_PEER_JOIN || type == SHMBUS__MSG_PEER_LEAVE ? 0 : 1000 + type;

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
    m.role = SHMBUS__WIRE_SUB;
    m.has = SHMBUS__HAS_PARAMS;
    m.params = test_params;
    m.reliable = true;
    m.history = 17;
    m.retain = true;
    break;
  case SHMBUS__MSG_OPENED:
    m.topic_id = 42;
    m.role = SHMBUS__WIRE_PUB;
    m.index = 3;
    m.has = SHMBUS__HAS_PARAMS;
    m.params = test_params;
    m.peers = 5;
    break;
  case SHMBUS__MSG_ADOPT:
    strcpy(m.topic, "$sys/stats");
    m.role = SHMBUS__WIRE_SUB;
    m.index = 9;
    m.has = SHMBUS__HAS_PARAMS;
    m.params = test_params;
    break;
  case SHMBUS__MSG_CLOSE:
  case SHMBUS__MSG_PEER_JOIN:
  case SHMBUS__MSG_PEER_LEAVE:
    m.topic_id = 11;
    m.role = SHMBUS__WIRE_SUB;
    m.index = 4095;
    break;
  case SHMBUS__MSG_ERROR:
    m.code = SHMBUS_EMISMATCH;
    strcpy(m.text, "topic exists with other parameters");
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
  m.role = SHMBUS__WIRE_PUB;
  m.topic_id = UINT32_MAX;
  round_trip(&m);
}

Test(proto, fd_counts) {
  cr_assert_eq(shmbus__msg_fd_count(SHMBUS__MSG_OPEN, SHMBUS__WIRE_PUB), 1);
  cr_assert_eq(shmbus__msg_fd_count(SHMBUS__MSG_OPEN, SHMBUS__WIRE_SUB), 1);
  cr_assert_eq(shmbus__msg_fd_count(SHMBUS__MSG_OPENED, SHMBUS__WIRE_SUB), 2);
  cr_assert_eq(shmbus__msg_fd_count(SHMBUS__MSG_ADOPT, SHMBUS__WIRE_PUB), 3);
  cr_assert_eq(shmbus__msg_fd_count(SHMBUS__MSG_PEER_JOIN, SHMBUS__WIRE_PUB), 1);
  cr_assert_eq(shmbus__msg_fd_count(SHMBUS__MSG_PEER_LEAVE, SHMBUS__WIRE_PUB), 0);
  cr_assert_eq(shmbus__msg_fd_count(SHMBUS__MSG_HELLO, 0), 0);
  cr_assert_eq(shmbus__msg_fd_count(SHMBUS__MSG_NONE, 0), 0);
  cr_assert_eq(shmbus__msg_fd_count(SHMBUS__MSG_TYPE_COUNT, 0), 0);
}
