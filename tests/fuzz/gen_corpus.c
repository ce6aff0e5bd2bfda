/* Writes the seed corpus of the fuzz targets: one file per valid control
 * message (every type, with and without optional fields) in
 * <dir>/proto/, and valid region images (several parameter sets, with
 * messages in the slots) in <dir>/region/. Run by
 * `scripts/fuzz.sh --regen-corpus`; the output is committed. */
#define _DEFAULT_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "layout.h"
#include "proto.h"
#include "ring.h"

static void gc_write(const char *dir, const char *sub, const char *name, const void *p, size_t n) {
  char path[512];
  FILE *f;

  snprintf(path, sizeof(path), "%s/%s", dir, sub);
  (void)mkdir(path, 0755);
  snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
  if ((f = fopen(path, "wb")) == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
    perror(path);
    exit(1);
  }
}

static void gc_msg(const char *dir, const char *name, const struct shmbus__msg *m) {
  unsigned char buf[SHMBUS__PROTO_MAX_MSG];
  int n = shmbus__proto_encode(m, buf, sizeof(buf));
  if (n < 0) {
    fprintf(stderr, "gen_corpus: %s does not encode\n", name);
    exit(1);
  }
  gc_write(dir, "proto", name, buf, (size_t)n);
}

static void gc_proto(const char *dir) {
  struct shmbus__msg m;
  const struct shmbus__params p = {256, 1024, 64, 16};

  shmbus__msg_init(&m, SHMBUS__MSG_HELLO, 1);
  strcpy(m.name, "sensor-reader");
  gc_msg(dir, "hello", &m);
  shmbus__msg_init(&m, SHMBUS__MSG_OPEN, 2);
  strcpy(m.topic, "sensors/imu/0");
  m.role = SHMBUS__ROLE_PUB;
  gc_msg(dir, "open_pub", &m);
  m.role = SHMBUS__ROLE_SUB;
  m.reliable = true;
  m.history = 8;
  m.retain = true;
  m.params = p;
  m.has = SHMBUS__HAS_PARAMS;
  gc_msg(dir, "open_sub_params", &m);
  shmbus__msg_init(&m, SHMBUS__MSG_ADOPT, 3);
  strcpy(m.topic, "a/b");
  m.role = SHMBUS__ROLE_SUB;
  m.index = 5;
  m.params = p;
  m.has = SHMBUS__HAS_PARAMS;
  gc_msg(dir, "adopt", &m);
  shmbus__msg_init(&m, SHMBUS__MSG_CLOSE, 4);
  m.topic_id = 9;
  m.role = SHMBUS__ROLE_PUB;
  m.index = 1;
  gc_msg(dir, "close", &m);
  shmbus__msg_init(&m, SHMBUS__MSG_STATUS, 5);
  gc_msg(dir, "status", &m);
  shmbus__msg_init(&m, SHMBUS__MSG_STOP, 6);
  gc_msg(dir, "stop", &m);
  shmbus__msg_init(&m, SHMBUS__MSG_SNAPSHOT, 7);
  gc_msg(dir, "snapshot", &m);
  strcpy(m.filter, "sensors/imu/0");
  gc_msg(dir, "snapshot_filter", &m);
  shmbus__msg_init(&m, SHMBUS__MSG_SNAPSHOT_REPLY, 7);
  m.size = 12345;
  gc_msg(dir, "snapshot_reply", &m);
  shmbus__msg_init(&m, SHMBUS__MSG_WELCOME, 1);
  m.client_id = 7;
  m.daemon_pid = 1234;
  gc_msg(dir, "welcome", &m);
  shmbus__msg_init(&m, SHMBUS__MSG_OPENED, 2);
  m.topic_id = 3;
  m.role = SHMBUS__ROLE_SUB;
  m.index = 2;
  m.params = p;
  m.has = SHMBUS__HAS_PARAMS;
  m.peers = 2;
  gc_msg(dir, "opened", &m);
  shmbus__msg_init(&m, SHMBUS__MSG_OK, 4);
  gc_msg(dir, "ok", &m);
  shmbus__msg_init(&m, SHMBUS__MSG_ERROR, 2);
  m.code = -22;
  strcpy(m.text, "invalid parameters");
  gc_msg(dir, "error", &m);
  shmbus__msg_init(&m, SHMBUS__MSG_STATUS_REPLY, 5);
  m.daemon_pid = 1234;
  m.topics = 3;
  m.clients = 2;
  m.uptime_ms = 123456789;
  gc_msg(dir, "status_reply", &m);
  shmbus__msg_init(&m, SHMBUS__MSG_PEER_JOIN, 0);
  m.topic_id = 3;
  m.role = SHMBUS__ROLE_PUB;
  m.index = 0;
  gc_msg(dir, "peer_join", &m);
  m.type = SHMBUS__MSG_PEER_LEAVE;
  gc_msg(dir, "peer_leave", &m);
  shmbus__msg_init(&m, SHMBUS__MSG_WATCH, 6);
  m.watch_id = 1;
  strcpy(m.pattern, "sensors/**/temp");
  gc_msg(dir, "watch", &m);
  shmbus__msg_init(&m, SHMBUS__MSG_UNWATCH, 7);
  m.watch_id = 1;
  gc_msg(dir, "unwatch", &m);
  shmbus__msg_init(&m, SHMBUS__MSG_TOPIC_UP, 0);
  m.watch_id = 1;
  strcpy(m.topic, "sensors/imu/temp");
  gc_msg(dir, "topic_up", &m);
  m.type = SHMBUS__MSG_TOPIC_DOWN;
  gc_msg(dir, "topic_down", &m);
}

/* A region image as fuzz_region.c reads it: data header (768 B), the first
 * 2048 B of the member file (header, sleepers, first records), then the
 * data file from offset 768 (waiters, records, slots) up to `keep` bytes.
 * A subscriber sleeps in each image, so the wake-up scans have bits. */
static void gc_region(const char *dir, const char *name, const struct shmbus__params *p,
                      unsigned msgs, size_t keep) {
  struct shmbus__layout l;
  struct shmbus__ring r;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;
  unsigned char *data;
  unsigned char *ctrl;
  unsigned char *img;
  size_t n;
  size_t mn;
  unsigned i;

  if (shmbus__layout_compute(p, 4096, &l) != 0)
    exit(1);
  data = aligned_alloc(4096, l.data_size);
  ctrl = aligned_alloc(4096, l.member_size);
  memset(data, 0, l.data_size);
  memset(ctrl, 0, l.member_size);
  shmbus__layout_format_data(data, &l, 0x5eed5eed5eed5eedull, 0);
  shmbus__layout_format_member(ctrl, &l, 0x5eed5eed5eed5eedull, 0, 0);
  if (shmbus__ring_view_init(&r, data, l.data_size, ctrl, l.member_size, 4096) != 0 ||
      shmbus__ring_pub_attach(&r, &pub, 1, 1) != 0 ||
      shmbus__ring_sub_attach(&r, &sub, false, 0, 1) != 0)
    exit(1);
  for (i = 0; i < msgs; i++) {
    char text[32];
    snprintf(text, sizeof(text), "message %u", i);
    (void)shmbus__ring_publish(&pub, text, strlen(text) < p->slot_capacity ? strlen(text) : 1, 0);
  }
  (void)shmbus__ring_sub_arm(&sub);
  n = l.data_size - SHMBUS__DATA_HDR_SIZE < keep ? l.data_size - SHMBUS__DATA_HDR_SIZE : keep;
  mn = l.member_size < 2048 ? l.member_size : 2048;
  img = calloc(1, SHMBUS__DATA_HDR_SIZE + 2048 + n);
  memcpy(img, data, SHMBUS__DATA_HDR_SIZE);
  memcpy(img + SHMBUS__DATA_HDR_SIZE, ctrl, mn);
  memcpy(img + SHMBUS__DATA_HDR_SIZE + 2048, data + SHMBUS__DATA_HDR_SIZE, n);
  gc_write(dir, "region", name, img, SHMBUS__DATA_HDR_SIZE + 2048 + n);
  free(img);
  free(data);
  free(ctrl);
}

int main(int argc, char **argv) {
  const struct shmbus__params tiny = {2, 8, 1, 1};
  const struct shmbus__params small = {4, 32, 2, 2};
  const struct shmbus__params wide = {8, 64, 70, 3};

  if (argc != 2) {
    fprintf(stderr, "usage: gen_corpus DIR\n");
    return 2;
  }
  (void)mkdir(argv[1], 0755);
  gc_proto(argv[1]);
  gc_region(argv[1], "tiny_empty", &tiny, 0, 4096);
  gc_region(argv[1], "tiny_lapped", &tiny, 5, 4096);
  gc_region(argv[1], "small_three", &small, 3, 4096);
  gc_region(argv[1], "wide_headers_only", &wide, 0, 0);
  gc_region(argv[1], "wide_nine", &wide, 9, 4096);
  return 0;
}
