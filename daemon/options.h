/* options: shmbusd's command line. Parses it into struct options, prints
 * --help and --version. Pure: it opens nothing and starts nothing; main
 * acts on the result. */
#ifndef SHMBUSD_OPTIONS_H
#define SHMBUSD_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Exit statuses shmbusd documents (--help, shmbusd(8)). */
#define OPTIONS_EXIT_ERROR 1
#define OPTIONS_EXIT_USAGE 2
#define OPTIONS_EXIT_LOCKED 3
/* The system bus's config file when --config does not name one. */
#define OPTIONS_SYSTEM_CONFIG "/etc/shmbus/shmbusd.conf"

struct options {
  bool foreground;
  bool system;
  bool verbose;
  bool service; /* --service: started by Windows' service control manager */
  const char *dir;
  const char *config;
  const char *ready_arg; /* --ready-fd's text (a checked number); NULL: none */
  double idle_exit;      /* --idle-exit seconds; 0: never */
  char *limits[16];      /* --limit NAME=VALUE, in order; point into argv */
  size_t nlimits;
};

/* Prints the usage text to `f`. */
void options_usage(FILE *f);

/* Parses argv into *o (which points into argv). Returns 0, or
 * OPTIONS_EXIT_USAGE after it explained the mistake on stderr. --help and
 * --version print and exit the process with status 0. */
int options_parse(int argc, char **argv, struct options *o);

#endif /* SHMBUSD_OPTIONS_H */
