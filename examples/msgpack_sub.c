/* msgpack_sub: receives msgpack payloads as objects and prints each with
 * msgpack-c's printer. The object and everything it points to live in the
 * msgpack_unpacked's zone, which the next receive replaces.
 *
 *   shmbus-example-msgpack-sub [--topic NAME] [--count N] [--timeout MS] */
#include <errno.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmbus/msgpack.h>
#include <shmbus/shmbus.h>

int main(int argc, char **argv) {
  const char *topic = "demo/msgpack";
  unsigned long count = 4, got = 0;
  int timeout = 5000;
  struct shmbus_msg_info info;
  msgpack_unpacked up;
  shmbus_bus *bus;
  shmbus_sub *sub;
  int a, rv;

  for (a = 1; a < argc; a++) {
    if (strcmp(argv[a], "--topic") == 0 && a + 1 < argc)
      topic = argv[++a];
    else if (strcmp(argv[a], "--count") == 0 && a + 1 < argc)
      count = strtoul(argv[++a], NULL, 10);
    else if (strcmp(argv[a], "--timeout") == 0 && a + 1 < argc)
      timeout = atoi(argv[++a]);
    else {
      printf("usage: shmbus-example-msgpack-sub [--topic NAME] [--count N] [--timeout MS]\n");
      return strcmp(argv[a], "--help") == 0 ? 0 : 2;
    }
  }
  if ((rv = shmbus_bus_open(&bus, NULL)) < 0 ||
      (rv = shmbus_sub_open(bus, topic, NULL, &sub)) < 0) {
    fprintf(stderr, "msgpack_sub: %s\n", shmbus_strerror(rv));
    return 1;
  }
  msgpack_unpacked_init(&up);
  while (got < count) {
    rv = shmbus_sub_recv_msgpack(sub, &up, &info, timeout);
    if (rv == -EBADMSG) {
      fprintf(stderr, "msgpack_sub: message %llu is not msgpack; skipped\n",
              (unsigned long long)info.seq);
      continue;
    }
    if (rv < 0) {
      fprintf(stderr, "msgpack_sub: %s\n", shmbus_strerror(rv));
      break;
    }
    printf("seq %llu: ", (unsigned long long)info.seq);
    msgpack_object_print(stdout, up.data);
    putchar('\n');
    got++;
  }
  msgpack_unpacked_destroy(&up);
  shmbus_bus_close(bus);
  return got == count ? 0 : 1;
}
