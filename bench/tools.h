/* tools: the tools subcommand of shmbus-bench (tools.c): what the CLI's
 * watchers (echo, hz, bw) cost a publisher. */
#ifndef SHMBUS_BENCH_TOOLS_H
#define SHMBUS_BENCH_TOOLS_H

#include <stdio.h>

/* Runs `shmbus-bench tools [options]` (argv[1] is "tools"). Returns the
 * exit status. */
int tools_main(int argc, char **argv);

/* Prints the subcommand's part of --help. */
void tools_usage(FILE *f);

#endif /* SHMBUS_BENCH_TOOLS_H */
