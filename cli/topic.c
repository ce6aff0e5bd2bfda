/* shmbus topic rm TOPIC: removes a topic by name (docs/operations.md). */
#include <getopt.h>
#include <string.h>

#include "cli.h"

static void topic_usage(FILE *f) {
  fprintf(f, "usage: shmbus topic rm TOPIC [OPTIONS]\n"
             "\n"
             "Removes TOPIC by name: it is no longer retained, and the next open of the\n"
             "name creates a new topic with the parameters that open states (this ends a\n"
             "topic created with the wrong parameters). Participants still attached keep\n"
             "the old topic among themselves until they close it. Allowed to the uid that\n"
             "created the topic, the daemon's owner, root, and a `remove` rule.\n"
             "\n" CLI_BUS_HELP "  -h, --help           show this help\n"
             "\n"
             "Never starts a daemon. Exit status: 0 removed, 1 error (no such topic, or the\n"
             "daemon refused), 2 bad usage.\n");
}

int cli_topic(int argc, char **argv) {
  static const struct option longopts[] = {
      {"help", no_argument, NULL, 'h'}, CLI_BUS_LONGOPTS, {NULL, 0, NULL, 0}};
  struct cli_bus_args ba;
  shmbus_bus *bus = NULL;
  int status = CLI_EXIT_ERROR;
  int c, rv;

  cli_bus_args_init(&ba);
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    if (c == 'h') {
      topic_usage(stdout);
      return CLI_EXIT_OK;
    }
    if ((rv = cli_other_arg("topic", &ba, NULL, c, optarg)) != 0)
      return rv;
  }
  if (argc - optind != 2 || strcmp(argv[optind], "rm") != 0) {
    cli_err("topic", "usage: shmbus topic rm TOPIC");
    return cli_usage_error("topic");
  }
  if ((bus = cli_bus_open("topic", &ba, 0)) == NULL)
    goto out;
  if ((rv = shmbus_bus_topic_remove(bus, argv[optind + 1])) < 0) {
    cli_fail("topic", bus, rv, "rm %s", argv[optind + 1]);
    goto out;
  }
  printf("removed %s\n", argv[optind + 1]);
  status = CLI_EXIT_OK;

out:
  shmbus_bus_close(bus);
  return status;
}
