/* shmbus hz: the publish rate of topics. The tool is cli/rate.c's. */
#include "cli.h"
#include "rate.h"

int cli_hz(int argc, char **argv) {
  return cli_rate_tool(argc, argv, false);
}
