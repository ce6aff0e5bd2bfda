/* libFuzzer target: the control-protocol decoder (untrusted input from any
 * process that can reach the daemon's socket, or from the daemon).
 *
 * Properties checked on every input:
 * - decoding never crashes, never reads outside the buffer, never leaks
 *   (ASan/UBSan/LeakSanitizer in the fuzz build);
 * - what decodes is well-formed: a known type, NUL-terminated strings,
 *   a topic name the validator accepts where the type carries one;
 * - round trip: a decoded message encodes again, that encoding decodes to
 *   the same message, and encoding that gives the same bytes (the encoder
 *   is canonical, so the daemon and clients never disagree on a message).
 * A property that fails aborts, which libFuzzer reports as a crash.
 *
 * Built with clang -fsanitize=fuzzer for fuzzing (scripts/fuzz.sh), and
 * with any compiler plus tests/fuzz/replay.c as a ctest that replays the
 * corpus in tests/fuzz/corpus/proto/. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "shmbus/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fp_check(int cond) {
  if (!cond)
    abort();
}

static void fp_check_str(const char *s, size_t cap) {
  fp_check(memchr(s, '\0', cap) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct shmbus__msg m;
  struct shmbus__msg m2;
  unsigned char buf[SHMBUS__PROTO_MAX_MSG];
  unsigned char buf2[SHMBUS__PROTO_MAX_MSG];
  int n;
  int n2;
  int rv;

  shmbus__msg_init(&m, SHMBUS__MSG_NONE, 0);
  rv = shmbus__proto_decode(data, size, &m);
  /* The fds are the caller's: decoding never touches them. */
  fp_check(m.nfds == 0 && m.fds[0] == -1 && m.fds[1] == -1 && m.fds[2] == -1);
  if (rv != 0) {
    fp_check(rv == -EPROTO || rv == SHMBUS_EPROTOVER || rv == -ENOMEM);
    return 0;
  }
  fp_check(m.type > SHMBUS__MSG_NONE && m.type < SHMBUS__MSG_TYPE_COUNT);
  fp_check_str(m.topic, sizeof(m.topic));
  fp_check_str(m.name, sizeof(m.name));
  fp_check_str(m.text, sizeof(m.text));
  fp_check_str(m.filter, sizeof(m.filter));
  if (m.type == SHMBUS__MSG_OPEN || m.type == SHMBUS__MSG_ADOPT)
    fp_check(shmbus__topic_validate(m.topic, true) == 0);

  n = shmbus__proto_encode(&m, buf, sizeof(buf));
  fp_check(n > 0);
  shmbus__msg_init(&m2, SHMBUS__MSG_NONE, 0);
  fp_check(shmbus__proto_decode(buf, (size_t)n, &m2) == 0);
  fp_check(memcmp(&m, &m2, sizeof(m)) == 0);
  n2 = shmbus__proto_encode(&m2, buf2, sizeof(buf2));
  fp_check(n2 == n && memcmp(buf, buf2, (size_t)n) == 0);
  return 0;
}
