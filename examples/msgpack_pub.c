/* msgpack_pub: publishes a msgpack map built with msgpack-c's packer,
 * {"sensor": "imu0", "seq": N, "accel": [x, y, z]}, N times; `shmbus echo
 * TOPIC` prints it as JSON, msgpack_sub decodes it.
 *
 *   shmbus-example-msgpack-pub [--topic NAME] [--count N] [--wait-subs N] */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmbus/msgpack.h>
#include <shmbus/shmbus.h>

int main(int argc, char **argv) {
  const char *topic = "demo/msgpack";
  unsigned long count = 3, wait_subs = 0, i;
  msgpack_sbuffer sb;
  msgpack_packer pk;
  shmbus_bus *bus;
  shmbus_pub *pub;
  int a, rv;

  for (a = 1; a < argc; a++) {
    if (strcmp(argv[a], "--topic") == 0 && a + 1 < argc)
      topic = argv[++a];
    else if (strcmp(argv[a], "--count") == 0 && a + 1 < argc)
      count = strtoul(argv[++a], NULL, 10);
    else if (strcmp(argv[a], "--wait-subs") == 0 && a + 1 < argc)
      wait_subs = strtoul(argv[++a], NULL, 10);
    else {
      printf("usage: shmbus-example-msgpack-pub [--topic NAME] [--count N] [--wait-subs N]\n");
      return strcmp(argv[a], "--help") == 0 ? 0 : 2;
    }
  }
  if ((rv = shmbus_bus_open(&bus, NULL)) < 0 ||
      (rv = shmbus_pub_open(bus, topic, NULL, &pub)) < 0 ||
      (wait_subs > 0 && (rv = shmbus_pub_wait_subs(pub, (uint32_t)wait_subs, 5000)) < 0)) {
    fprintf(stderr, "msgpack_pub: %s\n", shmbus_strerror(rv));
    return 1;
  }
  msgpack_sbuffer_init(&sb);
  for (i = 0; i < count; i++) {
    /* Build the map with the packer, then publish its bytes. */
    msgpack_sbuffer_clear(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str_with_body(&pk, "sensor", 6);
    msgpack_pack_str_with_body(&pk, "imu0", 4);
    msgpack_pack_str_with_body(&pk, "seq", 3);
    msgpack_pack_uint64(&pk, i);
    msgpack_pack_str_with_body(&pk, "accel", 5);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_double(&pk, 0.01 * (double)i);
    msgpack_pack_double(&pk, -0.02);
    msgpack_pack_double(&pk, 9.81);
    if ((rv = shmbus_pub_publish(pub, sb.data, sb.size)) < 0) {
      fprintf(stderr, "msgpack_pub: %s\n", shmbus_strerror(rv));
      break;
    }
  }
  /* An object you already hold (here: unpacked from the last message) is
   * published with shmbus_pub_publish_msgpack, packed straight into the
   * slot. */
  if (rv == 0 && count > 0) {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    if (shmbus_msgpack_unpack(sb.data, sb.size, &up) == 0)
      rv = shmbus_pub_publish_msgpack(pub, &up.data);
    msgpack_unpacked_destroy(&up);
  }
  printf("published %lu msgpack maps to %s\n", (unsigned long)shmbus_pub_published(pub), topic);
  msgpack_sbuffer_destroy(&sb);
  shmbus_bus_close(bus);
  return rv < 0 ? 1 : 0;
}
