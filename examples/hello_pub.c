/* hello_pub: the first half of the classic named-shared-memory pattern.
 * It publishes one text message on a retained topic and exits; the topic
 * (and the message, in its ring) stays on the bus. Run hello_sub afterwards:
 * it starts later and still reads the message through history.
 *
 *   shmbus-example-hello-pub [TEXT] [--topic NAME] */
#include <stdio.h>
#include <string.h>

#include <shmbus/shmbus.h>

int main(int argc, char **argv) {
  const char *topic = "demo/hello";
  const char *text = "Hello from the first process";
  struct shmbus_topic_opts to = {16, 256, 8, 4, true}; /* retain: outlives us */
  shmbus_bus *bus;
  shmbus_pub *pub;
  int i, rv;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc)
      topic = argv[++i];
    else if (strcmp(argv[i], "--help") == 0) {
      printf("usage: shmbus-example-hello-pub [TEXT] [--topic NAME]\n");
      return 0;
    } else
      text = argv[i];
  }
  if ((rv = shmbus_bus_open(&bus, NULL)) < 0 || (rv = shmbus_pub_open(bus, topic, &to, &pub)) < 0 ||
      (rv = shmbus_pub_publish(pub, text, strlen(text) + 1)) < 0) {
    fprintf(stderr, "hello_pub: %s\n", shmbus_strerror(rv));
    return 1;
  }
  printf("published \"%s\" on %s\n", text, topic);
  shmbus_bus_close(bus);
  return 0;
}
