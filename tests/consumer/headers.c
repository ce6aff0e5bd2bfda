/* consumer: every public header, in a program built outside the tree with
 * -std=c11 -pedantic -Werror and no feature-test macro (README, "Installing
 * and packaging"). It also round-trips a msgpack object through
 * shmbus_msgpack_unpack, so the program links msgpack-c the way the
 * installed package says it must (pkg-config Requires, CMake targets). */
#include <shmbus/bus.h>
#include <shmbus/error.h>
#include <shmbus/msgpack.h>
#include <shmbus/shmbus.h>
#include <shmbus/uv.h>
#include <shmbus/version.h>

#include <stdio.h>
#include <string.h>

int main(void) {
  msgpack_sbuffer sbuf;
  msgpack_packer pk;
  msgpack_unpacked out;
  char expect[32];
  int rv;

  snprintf(expect, sizeof(expect), "%d.%d.%d", SHMBUS_VERSION_MAJOR, SHMBUS_VERSION_MINOR,
           SHMBUS_VERSION_PATCH);
  if (strcmp(shmbus_version(), expect) != 0) {
    fprintf(stderr, "headers: library %s, headers %s\n", shmbus_version(), expect);
    return 1;
  }
  msgpack_sbuffer_init(&sbuf);
  msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 2);
  msgpack_pack_int(&pk, 42);
  msgpack_pack_str(&pk, 5);
  msgpack_pack_str_body(&pk, "hello", 5);
  msgpack_unpacked_init(&out);
  rv = shmbus_msgpack_unpack(sbuf.data, sbuf.size, &out);
  msgpack_sbuffer_destroy(&sbuf);
  if (rv != 0 || out.data.type != MSGPACK_OBJECT_ARRAY || out.data.via.array.size != 2 ||
      out.data.via.array.ptr[0].via.u64 != 42) {
    fprintf(stderr, "headers: msgpack round trip: %s\n", shmbus_strerror(rv));
    msgpack_unpacked_destroy(&out);
    return 1;
  }
  msgpack_unpacked_destroy(&out);
  /* A hostile payload: an array that claims more elements than bytes. */
  msgpack_unpacked_init(&out);
  rv = shmbus_msgpack_unpack("\xdd\xff\xff\xff\xff", 5, &out);
  msgpack_unpacked_destroy(&out);
  if (rv != -EBADMSG) {
    fprintf(stderr, "headers: hostile payload gave %d, not -EBADMSG\n", rv);
    return 1;
  }
  printf("headers: shmbus %s, msgpack round trip ok, %s\n", shmbus_version(),
         shmbus_strerror(SHMBUS_EFULL));
  return 0;
}
