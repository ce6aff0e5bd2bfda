/* shmbus bw: the bandwidth of topics. The tool is cli/rate.c's. */
#include "cli.h"
#include "rate.h"

int cli_bw(int argc, char **argv) {
  return cli_rate_tool(argc, argv, true);
}
