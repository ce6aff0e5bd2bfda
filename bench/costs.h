/* costs: the publish and idle subcommands of shmbus-bench (costs.c). */
#ifndef SHMBUS_BENCH_COSTS_H
#define SHMBUS_BENCH_COSTS_H

#include <stdio.h>

/* Runs `shmbus-bench publish|idle [options]`: argv[1] is the subcommand.
 * Returns the exit status. */
int costs_main(int argc, char **argv);

/* A child process of publish or idle on Windows, where a child is this
 * program again (bp_child): main hands it the job bp_child_init found
 * when the parent's subcommand (the argument after the job) is publish or
 * idle. Returns the child's exit status. */
int costs_child(char **job, unsigned n);

/* Prints the two subcommands' part of --help. */
void costs_usage(FILE *f);

#endif /* SHMBUS_BENCH_COSTS_H */
