/* shmbus: the command-line tool. Dispatches to the verbs and holds what
 * they share (see cli.h). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static void main_usage(FILE *f) {
  fprintf(f, "usage: shmbus VERB [OPTIONS] [ARGS]\n"
             "\n"
             "The command-line tool of shmbus, the shared-memory publish/subscribe bus.\n"
             "\n"
             "verbs:\n"
             "  pub TOPIC [TEXT]      publish TEXT, each line of stdin, --json, --file, or\n"
             "                        synthetic payloads (--count N --size BYTES)\n"
             "  echo TOPIC            print messages as they arrive\n"
             "  ls                    topics with parameters, publishers, subscribers, rate\n"
             "  stat TOPIC            per subscriber: name, pid, lag, received, lost\n"
             "  daemon status|stop    ask the bus daemon how it is, or to stop\n"
             "  config check FILE     check a shmbusd permission file\n"
             "\n"
             "`shmbus VERB --help` describes each verb; man shmbus(1) has everything.\n"
             "\n"
             "exit status: 0 success; 1 error (the bus or daemon refused, bad input, I/O);\n"
             "2 bad command line; 3 `echo --timeout` ended without receiving anything.\n"
             "\n"
             "environment: SHMBUS_DIR (bus directory), SHMBUS_NO_AUTOSTART=1 (never start\n"
             "shmbusd), SHMBUS_DAEMON (the shmbusd to start).\n");
}

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    int (*fn)(int, char **);
  } verbs[] = {{"pub", cli_pub},   {"echo", cli_echo},     {"ls", cli_ls},
               {"stat", cli_stat}, {"daemon", cli_daemon}, {"config", cli_config}};
  size_t i;

  if (argc < 2) {
    main_usage(stderr);
    return CLI_EXIT_USAGE;
  }
  if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
      strcmp(argv[1], "help") == 0) {
    main_usage(stdout);
    return CLI_EXIT_OK;
  }
  if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
    printf("shmbus %s\n", shmbus_version());
    return CLI_EXIT_OK;
  }
  for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
    if (strcmp(argv[1], verbs[i].name) == 0)
      return verbs[i].fn(argc - 1, argv + 1);
  fprintf(stderr, "shmbus: unknown verb \"%s\" (see shmbus --help)\n", argv[1]);
  return CLI_EXIT_USAGE;
}

/* ---- shared helpers ---------------------------------------------------- */

void cli_bus_args_init(struct cli_bus_args *a) {
  a->dir = NULL;
  a->name = NULL;
  a->autostart = SHMBUS_AUTOSTART_DEFAULT;
}

static int cli_topic_arg(const char *verb, struct shmbus_topic_opts *t, int code, const char *arg);

int cli_common_arg(const char *verb, struct cli_bus_args *a, struct shmbus_topic_opts *topic,
                   int code, const char *arg) {
  switch (code) {
  case 0x100:
    a->dir = arg;
    return 1;
  case 0x101:
    a->name = arg;
    return 1;
  case 0x102:
    a->autostart = 0;
    return 1;
  default:
    return topic != NULL ? cli_topic_arg(verb, topic, code, arg) : 0;
  }
}

int cli_other_arg(const char *verb, struct cli_bus_args *a, struct shmbus_topic_opts *topic,
                  int code, const char *arg) {
  int rv = cli_common_arg(verb, a, topic, code, arg);
  if (rv > 0)
    return 0;
  return rv < 0 ? CLI_EXIT_USAGE : cli_usage_error(verb);
}

static int cli_topic_arg(const char *verb, struct shmbus_topic_opts *t, int code, const char *arg) {
  switch (code) {
  case 0x110:
    if (!cli_parse_u32(verb, "--slots", arg, 2, 1u << 24, &t->slots))
      return -1;
    if ((t->slots & (t->slots - 1)) != 0) {
      cli_err(verb, "--slots must be a power of two, not %u", t->slots);
      return -1;
    }
    return 1;
  case 0x111:
    return cli_parse_u32(verb, "--slot-size", arg, 1, 64u << 20, &t->slot_size) ? 1 : -1;
  case 0x112:
    return cli_parse_u32(verb, "--max-subs", arg, 1, 4096, &t->max_subs) ? 1 : -1;
  case 0x113:
    return cli_parse_u32(verb, "--max-pubs", arg, 1, 1024, &t->max_pubs) ? 1 : -1;
  case 0x114:
    t->retain = true;
    return 1;
  default:
    return 0;
  }
}

void cli_topic_finish(struct shmbus_topic_opts *t) {
  if (t->slots == 0 && t->slot_size == 0 && t->max_subs == 0 && t->max_pubs == 0)
    return;
  /* The daemon's defaults (docs/protocol.md). */
  if (t->slots == 0)
    t->slots = 256;
  if (t->slot_size == 0)
    t->slot_size = 1024;
  if (t->max_subs == 0)
    t->max_subs = 64;
  if (t->max_pubs == 0)
    t->max_pubs = 16;
}

void cli_err(const char *verb, const char *fmt, ...) {
  va_list ap;

  fprintf(stderr, "shmbus %s: ", verb);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

void cli_fail(const char *verb, shmbus_bus *bus, int rv, const char *fmt, ...) {
  const char *why = bus != NULL ? shmbus_bus_last_error(bus) : "";
  va_list ap;

  fprintf(stderr, "shmbus %s: ", verb);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  if (why[0] != '\0')
    fprintf(stderr, ": %s: %s\n", shmbus_strerror(rv), why);
  else
    fprintf(stderr, ": %s\n", shmbus_strerror(rv));
}

shmbus_bus *cli_bus_open(const char *verb, const struct cli_bus_args *a, int autostart) {
  struct shmbus_bus_opts o;
  shmbus_bus *bus = NULL;
  const char *dir;
  int rv;

  shmbus_bus_opts_init(&o);
  o.dir = a->dir;
  o.name = a->name != NULL ? a->name : "shmbus";
  o.autostart = autostart >= 0 ? autostart : a->autostart;
  if ((rv = shmbus_bus_open(&bus, &o)) == 0)
    return bus;
  dir = a->dir != NULL ? a->dir : getenv("SHMBUS_DIR");
  if (rv == SHMBUS_ENODAEMON) {
    cli_err(verb, "no bus daemon is running%s%s and autostart is %s; start one with `shmbusd`%s",
            dir != NULL ? " on " : "", dir != NULL ? dir : "",
            o.autostart == 0 ? "off for this command" : "disabled (SHMBUS_NO_AUTOSTART=1)",
            o.autostart == 0 ? "" : " or unset SHMBUS_NO_AUTOSTART");
  } else {
    cli_err(verb, "cannot connect to the bus daemon%s%s: %s", dir != NULL ? " on " : "",
            dir != NULL ? dir : "", shmbus_strerror(rv));
  }
  return NULL;
}

bool cli_parse_u64(const char *verb, const char *opt, const char *s, uint64_t min, uint64_t max,
                   uint64_t *out) {
  unsigned long long v;
  char *end;

  errno = 0;
  v = strtoull(s, &end, 10);
  if (s[0] == '\0' || s[0] == '-' || *end != '\0' || errno != 0 || v < min || v > max) {
    cli_err(verb, "%s needs a whole number in %llu..%llu, not \"%s\"", opt, (unsigned long long)min,
            (unsigned long long)max, s);
    return false;
  }
  *out = v;
  return true;
}

bool cli_parse_u32(const char *verb, const char *opt, const char *s, uint32_t min, uint32_t max,
                   uint32_t *out) {
  uint64_t v;

  if (!cli_parse_u64(verb, opt, s, min, max, &v))
    return false;
  *out = (uint32_t)v;
  return true;
}

bool cli_parse_seconds(const char *verb, const char *opt, const char *s, double *out) {
  double v;
  char *end;

  errno = 0;
  v = strtod(s, &end);
  if (s[0] == '\0' || *end != '\0' || errno != 0 || !(v >= 0) || v > 1e9) {
    cli_err(verb, "%s needs a number >= 0, not \"%s\"", opt, s);
    return false;
  }
  *out = v;
  return true;
}

int cli_usage_error(const char *verb) {
  fprintf(stderr, "shmbus %s: see shmbus %s --help\n", verb, verb);
  return CLI_EXIT_USAGE;
}

uint64_t cli_now_ns(void) {
  struct timespec ts;

  (void)clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The write end of the pipe the signal handler writes to. */
static int cli_sig_wfd = -1;

volatile sig_atomic_t cli_stopping = 0;

static void cli_on_signal(int sig) {
  int saved = errno;
  char c = (char)sig;

  cli_stopping = 1;
  (void)!write(cli_sig_wfd, &c, 1);
  errno = saved;
}

int cli_signal_fd(const char *verb) {
  struct sigaction sa;
  int p[2];

  if (pipe(p) != 0 || fcntl(p[1], F_SETFL, O_NONBLOCK) != 0 ||
      fcntl(p[0], F_SETFD, FD_CLOEXEC) != 0 || fcntl(p[1], F_SETFD, FD_CLOEXEC) != 0) {
    cli_err(verb, "pipe: %s", strerror(errno));
    return -1;
  }
  cli_sig_wfd = p[1];
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = cli_on_signal;
  sigemptyset(&sa.sa_mask);
  (void)sigaction(SIGINT, &sa, NULL);
  (void)sigaction(SIGTERM, &sa, NULL);
  return p[0];
}
