/* costs: the publish and idle subcommands of shmbus-bench (costs.c). */
#ifndef SHMBUS_BENCH_COSTS_H
#define SHMBUS_BENCH_COSTS_H

#include <stdio.h>

/* Runs `shmbus-bench publish|idle [options]`: argv[1] is the subcommand.
 * Returns the exit status. */
int costs_main(int argc, char **argv);

/* Prints the two subcommands' part of --help. */
void costs_usage(FILE *f);

#endif /* SHMBUS_BENCH_COSTS_H */
