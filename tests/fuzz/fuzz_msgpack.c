/* libFuzzer target: msgpack payloads (include/shmbus/msgpack.h). Payloads
 * come from shared memory any publisher writes, so they are untrusted.
 *
 * Properties checked on every input:
 * - shmbus_msgpack_unpack never crashes, never reads outside the input,
 *   never leaks, and answers 0, -EBADMSG or -ENOMEM only;
 * - what it accepts passed the shape check and is exactly one object;
 * - packing an accepted object gives at most as many bytes as the input
 *   (msgpack-c packs the shortest forms), those bytes unpack again, and
 *   packing that gives the same bytes (so NaN needs no special case).
 * Built as fuzz_msgpack (libFuzzer) and fuzz_msgpack_replay (a ctest over
 * tests/fuzz/corpus/msgpack/), like the other targets. */
#include <errno.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"
#include "shmbus/msgpack.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fm_check(int cond) {
  if (!cond)
    abort();
}

/* Packs `o` into a fresh sbuffer the caller destroys. */
static void fm_pack(const msgpack_object *o, msgpack_sbuffer *sb) {
  msgpack_packer pk;
  msgpack_sbuffer_init(sb);
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  fm_check(msgpack_pack_object(&pk, *o) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  msgpack_unpacked up, up2;
  msgpack_sbuffer a, b;
  size_t off = 0;
  int rv;

  msgpack_unpacked_init(&up);
  rv = shmbus_msgpack_unpack(data, size, &up);
  fm_check(rv == 0 || rv == -EBADMSG || rv == -ENOMEM);
  if (rv != 0) {
    fm_check(up.zone == NULL);
    return 0;
  }
  fm_check(shmbus__msgpack_scan(data, size, &off, SHMBUS_MSGPACK_MAX_DEPTH) == 0 && off == size);
  fm_pack(&up.data, &a);
  fm_check(a.size <= size);
  msgpack_unpacked_init(&up2);
  fm_check(shmbus_msgpack_unpack(a.data, a.size, &up2) == 0);
  fm_pack(&up2.data, &b);
  fm_check(a.size == b.size && memcmp(a.data, b.data, a.size) == 0);
  msgpack_sbuffer_destroy(&a);
  msgpack_sbuffer_destroy(&b);
  msgpack_unpacked_destroy(&up);
  msgpack_unpacked_destroy(&up2);
  return 0;
}
