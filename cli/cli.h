/* The shmbus command-line tool: what its verbs share. Each verb lives in
 * its own file (pub.c, echo.c, info.c, admin.c) and is entered through
 * cli_<verb>(argc, argv), with argv[0] the verb's name; it returns the
 * process's exit status (CLI_EXIT_*).
 *
 * The tool uses the public API only (include/shmbus/), plus the daemon's
 * config parser (daemon/config.h) for `config check`.
 *
 * A verb's argv[0] is "shmbus VERB", so getopt's own messages name the
 * program too. Adding a verb: a file with cli_<verb>, its prototype below,
 * one line in main.c's table. */
#ifndef SHMBUS_CLI_H
#define SHMBUS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>

#include "platform/cli_os.h"
#include "shmbus/shmbus.h"

/* Exit statuses, documented in `shmbus --help` and shmbus(1). */
enum {
  CLI_EXIT_OK = 0,
  CLI_EXIT_ERROR = 1,   /* the bus or the daemon said no, I/O failed, bad input */
  CLI_EXIT_USAGE = 2,   /* bad command line */
  CLI_EXIT_NOTHING = 3, /* echo --timeout: nothing was received */
};

/* The system-wide bus (shmbusd --system). */
#define CLI_SYSTEM_DIR CLI_OS_SYSTEM_DIR

/* Options every verb that talks to the daemon takes, after the verb or
 * before it (`shmbus --dir X ls`: cli_global holds those). */
struct cli_bus_args {
  const char *dir;  /* --dir */
  const char *name; /* --name */
  int autostart;    /* --no-autostart: 0; else SHMBUS_AUTOSTART_DEFAULT */
  bool system;      /* --system: CLI_SYSTEM_DIR, never autostart */
};

/* The bus options given before the verb; cli_bus_args_init starts from
 * them. */
extern struct cli_bus_args cli_global;

/* getopt_long entries and the help text of those options. Short options
 * mean one thing in every verb (see shmbus --help); these have none. */
#define CLI_BUS_LONGOPTS                                                                           \
  {"dir", required_argument, NULL, 0x100}, {"name", required_argument, NULL, 0x101},               \
      {"no-autostart", no_argument, NULL, 0x102}, {                                                \
    "system", no_argument, NULL, 0x103                                                             \
  }
#define CLI_BUS_HELP                                                                               \
  CLI_OS_DIR_HELP                                                                                  \
  "      --system         the system-wide bus, " CLI_SYSTEM_DIR " (never autostarted)\n"           \
  "      --name NAME      this participant's name, shown by `shmbus stat` (default: shmbus)\n"     \
  "      --no-autostart   never start shmbusd (also: SHMBUS_NO_AUTOSTART=1)\n"                     \
  "                       (these four may also come before the verb)\n"

/* Topic parameters (--slots, --slot-size, --max-subs, --max-pubs,
 * --retain) for the verbs that may create a topic. */
#define CLI_TOPIC_LONGOPTS                                                                         \
  {"slots", required_argument, NULL, 0x110}, {"slot-size", required_argument, NULL, 0x111},        \
      {"max-subs", required_argument, NULL, 0x112}, {"max-pubs", required_argument, NULL, 0x113},  \
  {                                                                                                \
    "retain", no_argument, NULL, 0x114                                                             \
  }
#define CLI_TOPIC_HELP                                                                             \
  "      --slots N        ring slots of a new topic, a power of two (default 256)\n"               \
  "      --slot-size B    largest message of a new topic in bytes, K/M suffixes\n"                 \
  "                       (default 1024, at most 64M)\n"                                           \
  "      --max-subs N     subscribers a new topic takes (default 64)\n"                            \
  "      --max-pubs N     publishers a new topic takes (default 16)\n"                             \
  "      --retain         keep the new topic while nobody uses it\n"                               \
  "                       (stating any of the four sizes makes the open check them all against\n"  \
  "                       an existing topic; the unstated ones take their defaults)\n"

/* The end of the getopt_long table of a verb that may create a topic:
 * --quiet (-q), --help (-h), the topic and bus options, the terminator.
 * cli_verb_arg handles them. */
#define CLI_VERB_LONGOPTS                                                                          \
  {"quiet", no_argument, NULL, 'q'}, {"help", no_argument, NULL, 'h'}, CLI_TOPIC_LONGOPTS,         \
      CLI_BUS_LONGOPTS, {                                                                          \
    NULL, 0, NULL, 0                                                                               \
  }

/* Fills the unstated sizes with the defaults when any was stated. */
void cli_topic_finish(struct shmbus_topic_opts *t);

/* Handles an option of CLI_BUS_LONGOPTS, or of CLI_TOPIC_LONGOPTS when
 * `topic` is not NULL: 1 handled, 0 not one of them, -1 bad value (message
 * printed). */
int cli_common_arg(const char *verb, struct cli_bus_args *a, struct shmbus_topic_opts *topic,
                   int code, const char *arg);

/* What a verb's getopt loop does with an option it does not know itself:
 * CLI_EXIT_USAGE after a message, or 0 when cli_common_arg took it. */
int cli_other_arg(const char *verb, struct cli_bus_args *a, struct shmbus_topic_opts *topic,
                  int code, const char *arg);
void cli_bus_args_init(struct cli_bus_args *a);

/* The `default:` of the option switch of a verb whose table ends with
 * CLI_VERB_LONGOPTS: -q sets *quiet, -h prints `usage` to stdout, the
 * rest goes to cli_other_arg. Returns -1 to go on, or the exit status to
 * return now (CLI_EXIT_OK after -h, CLI_EXIT_USAGE after a message). */
int cli_verb_arg(const char *verb, struct cli_bus_args *a, struct shmbus_topic_opts *topic,
                 int code, const char *arg, bool *quiet, void (*usage)(FILE *));

/* Opens the bus, or prints why not (naming the bus directory, and what to
 * do when no daemon runs) and returns NULL. `autostart` overrides a->autostart
 * when >= 0 (verbs that only inspect never start a daemon). */
shmbus_bus *cli_bus_open(const char *verb, const struct cli_bus_args *a, int autostart);

/* Prints "shmbus VERB: WHAT: <reason>" to stderr, where the reason is the
 * daemon's text when it gave one, else shmbus_strerror(rv). */
void cli_fail(const char *verb, shmbus_bus *bus, int rv, const char *fmt, ...)
    __attribute__((format(CLI_PRINTF_FORMAT, 4, 5)));

/* Prints "shmbus VERB: message" to stderr. */
void cli_err(const char *verb, const char *fmt, ...)
    __attribute__((format(CLI_PRINTF_FORMAT, 2, 3)));

/* Parses a whole unsigned number within [min, max]; false (and a message)
 * for anything else. */
bool cli_parse_u64(const char *verb, const char *opt, const char *s, uint64_t min, uint64_t max,
                   uint64_t *out);
bool cli_parse_u32(const char *verb, const char *opt, const char *s, uint32_t min, uint32_t max,
                   uint32_t *out);
/* Parses a byte count with an optional K, M or G suffix (binary: 1K is
 * 1024) within [min, max]; false (and a message) for anything else. */
bool cli_parse_size(const char *verb, const char *opt, const char *s, uint64_t min, uint64_t max,
                    uint64_t *out);
/* Parses a non-negative decimal number (seconds, hertz). */
bool cli_parse_seconds(const char *verb, const char *opt, const char *s, double *out);
/* Parses one of the keywords in `names` (NULL-terminated): *out is its
 * index; false (and "OPT takes a, b or c, not \"S\"") for anything else. */
bool cli_parse_choice(const char *verb, const char *opt, const char *s, const char *const *names,
                      int *out);

/* Prints the "unknown option" / "missing argument" hint and returns
 * CLI_EXIT_USAGE. */
int cli_usage_error(const char *verb);

/* For a topic name the daemon keeps to itself ($sys/...): prints why it
 * cannot be used to `what` (publish to, ...) and returns true. */
bool cli_reserved_topic(const char *verb, const char *topic, const char *what);

/* Makes SIGINT and SIGTERM write a byte to a pipe instead of killing the
 * process, so a loop can end cleanly (and print its summary): returns the
 * pipe's read end to poll, or -1 after printing why not. Call once. On
 * Windows: Ctrl+C and the process's named stop event, which another
 * process sets (cli/platform/windows.c), write to a socket instead. */
int cli_signal_fd(const char *verb);

/* Set by that handler: a loop that cannot poll the pipe checks this. */
extern volatile sig_atomic_t cli_stopping;

/* A monotonic clock in nanoseconds. (These three: cli/platform/.) */
uint64_t cli_now_ns(void);

/* The verbs. */
int cli_pub(int argc, char **argv);
int cli_echo(int argc, char **argv);
int cli_ls(int argc, char **argv);
int cli_stat(int argc, char **argv);
int cli_daemon(int argc, char **argv);
int cli_config(int argc, char **argv);
int cli_topic(int argc, char **argv);   /* topic.c */
int cli_hz(int argc, char **argv);      /* hz.c, rate.c */
int cli_bw(int argc, char **argv);      /* bw.c, rate.c */
int cli_metrics(int argc, char **argv); /* metrics.c, http.c */
int cli_record(int argc, char **argv);  /* record.c */
int cli_play(int argc, char **argv);    /* play.c */

#endif /* SHMBUS_CLI_H */
