/* seed_writer: the first process of the named-shared-memory pattern that
 * shmbus grew from. On Windows that pattern is a process that creates a
 * named mapping and writes a message into it, then stays, because the
 * section is freed when its last handle closes; a second process, started
 * later, opens the mapping by name and reads the message.
 *
 * Here the name is a topic, and the writer publishes one message on it and
 * stays while the topic lives through it (the topic is not retained: like
 * the section, it goes when its last user goes). Run seed_reader meanwhile:
 * it opens the topic by name and reads the message through history.
 *
 * The writer says "published" on standard output once the message is on
 * the bus, then stays until its standard input ends (Ctrl+D; Ctrl+Z, Enter
 * on Windows; or the end of a pipe) or a line "stop" arrives.
 *
 *   shmbus-example-seed-writer [TEXT] [--topic NAME]
 *
 * Portable C: only the public API and the C library. */
#include <stdio.h>
#include <string.h>

#include <shmbus/shmbus.h>

int main(int argc, char **argv) {
  const char *topic = "seed/message";
  const char *text = "Message from first process.";
  /* 16 slots of up to 4 KiB; not retained: the topic lives while we do. */
  struct shmbus_topic_opts to = {16, 4096, 8, 4, false};
  shmbus_bus *bus = NULL;
  shmbus_pub *pub;
  char line[64];
  int i, rv;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc)
      topic = argv[++i];
    else if (strcmp(argv[i], "--help") == 0) {
      printf("usage: shmbus-example-seed-writer [TEXT] [--topic NAME]\n"
             "Publishes TEXT on topic NAME (default seed/message) and stays until\n"
             "standard input ends or says \"stop\". Run shmbus-example-seed-reader meanwhile.\n");
      return 0;
    } else if (argv[i][0] == '-' && argv[i][1] == '-') {
      fprintf(stderr, "seed_writer: unknown option %s (see --help)\n", argv[i]);
      return 2;
    } else
      text = argv[i];
  }
  if ((rv = shmbus_bus_open(&bus, NULL)) < 0 || (rv = shmbus_pub_open(bus, topic, &to, &pub)) < 0 ||
      (rv = shmbus_pub_publish(pub, text, strlen(text) + 1)) < 0) {
    fprintf(stderr, "seed_writer: %s\n", shmbus_strerror(rv));
    shmbus_bus_close(bus);
    return 1;
  }
  printf("published \"%s\" on %s; staying until stdin ends or says stop\n", text, topic);
  fflush(stdout);
  /* The stay: the topic, and the message in its ring, live while this
   * process holds its publisher. */
  while (fgets(line, sizeof(line), stdin) != NULL)
    if (strncmp(line, "stop", 4) == 0)
      break;
  shmbus_bus_close(bus);
  return 0;
}
