/* seed_reader: the second process of the named-shared-memory pattern (see
 * seed_writer.c). Started after seed_writer published, it opens the topic
 * by name, asks for the last message published before it came (history 1)
 * and prints it.
 *
 *   shmbus-example-seed-reader [--topic NAME] [--timeout MS]
 *
 * Exits 0 with the message, 1 when none came within the timeout (is
 * seed_writer running?) or on an error. Portable C: only the public API
 * and the C library. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmbus/shmbus.h>

int main(int argc, char **argv) {
  const char *topic = "seed/message";
  struct shmbus_sub_opts so = {0};
  struct shmbus_msg_info info;
  int timeout = 2000;
  char text[4097];
  shmbus_bus *bus = NULL;
  shmbus_sub *sub;
  int i, rv;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc)
      topic = argv[++i];
    else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
      timeout = atoi(argv[++i]);
    else {
      printf("usage: shmbus-example-seed-reader [--topic NAME] [--timeout MS]\n"
             "Reads the last message published on topic NAME (default seed/message).\n");
      return strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }
  so.history = 1; /* the message published before we came */
  if ((rv = shmbus_bus_open(&bus, NULL)) < 0 || (rv = shmbus_sub_open(bus, topic, &so, &sub)) < 0) {
    fprintf(stderr, "seed_reader: %s\n", shmbus_strerror(rv));
    shmbus_bus_close(bus);
    return 1;
  }
  rv = shmbus_sub_recv(sub, text, sizeof(text) - 1, &info, timeout);
  if (rv < 0) {
    fprintf(stderr, "seed_reader: %s%s\n", shmbus_strerror(rv),
            rv == -ETIMEDOUT ? " (is seed_writer running?)" : "");
    shmbus_bus_close(bus);
    return 1;
  }
  text[rv] = '\0'; /* the writer sends a NUL too; a foreign publisher may not */
  printf("received \"%s\" from %s (message %llu)\n", text, topic, (unsigned long long)info.seq);
  shmbus_bus_close(bus);
  return 0;
}
