/* hello_sub: the second half. Started after hello_pub has exited, it opens
 * the same topic by name, asks for the last message (history 1) and prints
 * it.
 *
 *   shmbus-example-hello-sub [--topic NAME] [--timeout MS] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shmbus/shmbus.h>

int main(int argc, char **argv) {
  const char *topic = "demo/hello";
  struct shmbus_sub_opts so = {0};
  int timeout = 2000;
  char text[256];
  shmbus_bus *bus;
  shmbus_sub *sub;
  int i, rv;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc)
      topic = argv[++i];
    else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
      timeout = atoi(argv[++i]);
    else {
      printf("usage: shmbus-example-hello-sub [--topic NAME] [--timeout MS]\n");
      return strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }
  so.history = 1; /* the last message published before we came */
  if ((rv = shmbus_bus_open(&bus, NULL)) < 0 || (rv = shmbus_sub_open(bus, topic, &so, &sub)) < 0) {
    fprintf(stderr, "hello_sub: %s\n", shmbus_strerror(rv));
    return 1;
  }
  rv = shmbus_sub_recv(sub, text, sizeof(text) - 1, NULL, timeout);
  if (rv < 0) {
    fprintf(stderr, "hello_sub: %s\n", shmbus_strerror(rv));
    shmbus_bus_close(bus);
    return 1;
  }
  text[rv] = '\0';
  printf("received \"%s\" from %s\n", text, topic);
  shmbus_bus_close(bus);
  return 0;
}
