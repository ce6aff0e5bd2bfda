/* shmbus: the command-line tool. Dispatches to the verbs and holds what
 * they share (see cli.h). */
#include <errno.h>
#include <unistd.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "platform/stdfds.h"

/* The verbs: one line each (a verb without help text is listed by name). */
static const struct main_verb {
  const char *name;
  int (*fn)(int, char **);
  const char *synopsis; /* "pub TOPIC [TEXT]" */
  const char *help;     /* what it does, lines joined by "\n" */
} main_verbs[] = {
    {"pub", cli_pub, "pub TOPIC [TEXT]",
     "publish TEXT, each line of stdin, --json, --file, or\n"
     "synthetic payloads (--count N --size BYTES)"},
    {"echo", cli_echo, "echo TOPIC...",
     "print messages as they arrive; a PATTERN such as\n'sensors/**' takes present and future "
     "topics"},
    {"hz", cli_hz, "hz TOPIC...", "publish rate and intervals, once a second"},
    {"bw", cli_bw, "bw TOPIC...", "bandwidth and message sizes, once a second"},
    {"metrics", cli_metrics, "metrics",
     "statistics as OpenMetrics text; --listen serves\nPrometheus, --textfile node_exporter"},
    {"ls", cli_ls, "ls", "topics with parameters, publishers, subscribers, rate"},
    {"stat", cli_stat, "stat TOPIC", "per subscriber: name, pid, lag, received, lost"},
    {"daemon", cli_daemon, "daemon status|stop", "ask the bus daemon how it is, or to stop"},
    {"config", cli_config, "config check FILE", "check a shmbusd permission file"},
    {"topic", cli_topic, "topic rm TOPIC", "remove a topic by name (ends its retention)"},
    {"record", cli_record, "record -o F TOPIC...",
     "record topics (and patterns: present and future\ntopics) into the MCAP file F"},
    {"play", cli_play, "play FILE", "republish an MCAP recording with its timing"},
};

static void main_usage(FILE *f) {
  size_t i;

  fprintf(f, "usage: shmbus [BUS OPTIONS] VERB [OPTIONS] [ARGS]\n"
             "\n"
             "The command-line tool of shmbus, the shared-memory publish/subscribe bus.\n"
             "\n"
             "verbs:\n");
  for (i = 0; i < sizeof(main_verbs) / sizeof(main_verbs[0]); i++) {
    const struct main_verb *v = &main_verbs[i];
    const char *h = v->help != NULL ? v->help : "";
    const char *syn = v->synopsis != NULL ? v->synopsis : v->name;
    /* The first line of help beside the synopsis, the others below it. */
    fprintf(f, "  %-20s  ", syn);
    for (; *h != '\0'; h++) {
      fputc(*h, f);
      if (*h == '\n')
        fprintf(f, "%24s", "");
    }
    fputc('\n', f);
  }
  fprintf(f, "\n"
             "bus options, before the verb or after it (every verb that talks to the "
             "daemon):\n" CLI_OS_DIR_HELP_MAIN
             "  --system              the system-wide bus, " CLI_SYSTEM_DIR ", never autostarted\n"
             "  --name NAME           this participant's name in `shmbus stat`\n"
             "  --no-autostart        never start shmbusd\n"
             "\n"
             "A short option means the same in every verb that has it: -j --json, -n --count,\n"
             "-q --quiet, -i --interval, -t --timeout, -w --wait-subs, -h --help (and, in\n"
             "the one verb that has each, -f -s -r -l in pub, -x -R -H -v in echo, -u -g -o\n"
             "in config, -o --output and -d --duration in record).\n"
             "`shmbus VERB --help` describes each verb; man shmbus(1) has everything.\n"
             "\n"
             "Only pub, echo, record and play start a daemon when none runs (autostart), and\n"
             "only on the default per-user bus; they say so on stderr when they do.\n"
             "\n"
             "exit status: 0 success; 1 error (the bus or daemon refused, bad input, I/O);\n"
             "2 bad command line; 3 `echo --timeout` ended without receiving anything.\n"
             "\n"
             "environment: SHMBUS_DIR (bus directory), SHMBUS_NO_AUTOSTART=1 (never start\n"
             "shmbusd), SHMBUS_DAEMON (the shmbusd to start), SHMBUS_IDLE_EXIT (seconds an\n"
             "autostarted shmbusd stays idle before it exits; 0: never; default 60).\n");
}

struct cli_bus_args cli_global = {NULL, NULL, SHMBUS_AUTOSTART_DEFAULT, false};

/* Takes the bus options before the verb. Returns the index of the verb,
 * or -1 (help or version printed: exit 0), or -2 (message printed: exit 2). */
static int main_global_opts(int argc, char **argv) {
  int i = 1;

  while (i < argc && argv[i][0] == '-') {
    const char *a = argv[i];
    const char *val = NULL;
    size_t n = strcspn(a, "=");
    bool takes = strncmp(a, "--dir", n) == 0 && n == 5    ? true
                 : strncmp(a, "--name", n) == 0 && n == 6 ? true
                                                          : false;

    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      main_usage(stdout);
      return -1;
    }
    if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
      printf("shmbus %s\n", shmbus_version());
      return -1;
    }
    if (takes) {
      if (a[n] == '=') {
        val = a + n + 1;
      } else if (i + 1 < argc) {
        val = argv[++i];
      } else {
        fprintf(stderr, "shmbus: option '%s' requires an argument (see shmbus --help)\n", a);
        return -2;
      }
      if (n == 5)
        cli_global.dir = val;
      else
        cli_global.name = val;
    } else if (strcmp(a, "--system") == 0) {
      cli_global.system = true;
    } else if (strcmp(a, "--no-autostart") == 0) {
      cli_global.autostart = 0;
    } else {
      fprintf(stderr,
              "shmbus: unrecognized option '%s' before the verb; only --dir, --system, --name\n"
              "and --no-autostart go there (see shmbus --help)\n",
              a);
      return -2;
    }
    i++;
  }
  return i;
}

int main(int argc, char **argv) {
  static char argv0[64];
  size_t i;
  int v;

  /* First: nothing opened later may take a closed standard descriptor. */
  if (shmbus__stdfds_open() < 0)
    return CLI_EXIT_ERROR;
  if ((v = main_global_opts(argc, argv)) < 0)
    return v == -1 ? CLI_EXIT_OK : CLI_EXIT_USAGE;
  if (v >= argc) {
    main_usage(stderr);
    return CLI_EXIT_USAGE;
  }
  if (strcmp(argv[v], "help") == 0) {
    main_usage(stdout);
    return CLI_EXIT_OK;
  }
  for (i = 0; i < sizeof(main_verbs) / sizeof(main_verbs[0]); i++)
    if (strcmp(argv[v], main_verbs[i].name) == 0) {
      /* getopt names argv[0] in its messages: "shmbus pub: ...". */
      snprintf(argv0, sizeof(argv0), "shmbus %s", main_verbs[i].name);
      argv[v] = argv0;
      return main_verbs[i].fn(argc - v, argv + v);
    }
  fprintf(stderr, "shmbus: unknown verb \"%s\" (see shmbus --help)\n", argv[v]);
  return CLI_EXIT_USAGE;
}

/* ---- shared helpers ---------------------------------------------------- */

void cli_bus_args_init(struct cli_bus_args *a) {
  *a = cli_global;
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
  case 0x103:
    a->system = true;
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

int cli_verb_arg(const char *verb, struct cli_bus_args *a, struct shmbus_topic_opts *topic,
                 int code, const char *arg, bool *quiet, void (*usage)(FILE *)) {
  int rv;

  switch (code) {
  case 'q':
    *quiet = true;
    return -1;
  case 'h':
    usage(stdout);
    return CLI_EXIT_OK;
  default:
    rv = cli_other_arg(verb, a, topic, code, arg);
    return rv != 0 ? rv : -1;
  }
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
  case 0x111: {
    uint64_t v;
    if (!cli_parse_size(verb, "--slot-size", arg, 1, 64u << 20, &v))
      return -1;
    t->slot_size = (uint32_t)v;
    return 1;
  }
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

/* The bus directory the library will use (for messages). */
static const char *cli_dir_of(const struct cli_bus_args *a) {
  const char *dir = a->dir != NULL ? a->dir : getenv("SHMBUS_DIR");
  return dir != NULL && dir[0] != '\0' ? dir : NULL;
}

shmbus_bus *cli_bus_open(const char *verb, const struct cli_bus_args *a, int autostart) {
  struct shmbus_bus_opts o;
  shmbus_bus *bus = NULL;
  const char *dir;
  const char *why;
  int rv;

  if (a->system && a->dir != NULL && strcmp(a->dir, CLI_SYSTEM_DIR) != 0) {
    cli_err(verb, "--system is the bus in %s: give it or --dir %s, not both", CLI_SYSTEM_DIR,
            a->dir);
    return NULL;
  }
  shmbus_bus_opts_init(&o);
  o.dir = a->system ? CLI_SYSTEM_DIR : a->dir;
  o.name = a->name != NULL ? a->name : "shmbus";
  o.autostart = autostart >= 0 ? autostart : a->autostart;
  if (a->system)
    o.autostart = 0; /* the system bus is the service manager's to start */
  dir = a->system ? CLI_SYSTEM_DIR : cli_dir_of(a);
  /* First without starting anything, so that a daemon this command starts
   * is said out loud: one that nobody else talks to is a mistake to see. */
  if (o.autostart != 0) {
    int want = o.autostart;
    o.autostart = 0;
    rv = shmbus_bus_open(&bus, &o);
    o.autostart = want;
    if (rv == 0)
      return bus;
    if (rv == SHMBUS_ENODAEMON) {
      if ((rv = shmbus_bus_open(&bus, &o)) == 0) {
        struct shmbus_daemon_status st;
        if (shmbus_bus_daemon_status(bus, &st) == 0)
          cli_err(verb,
                  "no bus daemon was running%s%s: started shmbusd (pid %u), which exits after "
                  "a while without users (for the system bus say --system)",
                  dir != NULL ? " on " : "", dir != NULL ? dir : "", st.pid);
        return bus;
      }
    }
  } else if ((rv = shmbus_bus_open(&bus, &o)) == 0) {
    return bus;
  }
  why = shmbus_bus_last_error(NULL);
  if (rv == SHMBUS_ENODAEMON && a->system) {
    cli_err(verb, "no system bus daemon is running on %s; start it with " CLI_OS_SYSTEM_START,
            CLI_SYSTEM_DIR);
  } else if (rv == SHMBUS_ENODAEMON && dir != NULL && access(dir, F_OK) != 0 && errno == ENOENT) {
    cli_err(verb,
            "the bus directory %s does not exist: no daemon runs there (a typo in --dir "
            "or $SHMBUS_DIR?)",
            dir);
  } else if (rv == SHMBUS_ENODAEMON) {
    cli_err(verb, "no bus daemon is running%s%s and autostart is %s; start one with `shmbusd`%s",
            dir != NULL ? " on " : "", dir != NULL ? dir : "",
            o.autostart == 0 ? "off for this command" : "disabled (SHMBUS_NO_AUTOSTART=1)",
            o.autostart == 0 ? "" : " or unset SHMBUS_NO_AUTOSTART");
  } else if (why[0] != '\0') {
    cli_err(verb, "cannot connect to the bus daemon%s%s: %s", dir != NULL ? " on " : "",
            dir != NULL ? dir : "", why);
  } else {
    cli_err(verb, "cannot connect to the bus daemon%s%s: %s", dir != NULL ? " on " : "",
            dir != NULL ? dir : "", shmbus_strerror(rv));
  }
  return NULL;
}

bool cli_reserved_topic(const char *verb, const char *topic, const char *what) {
  if (strncmp(topic, "$sys/", 5) != 0)
    return false;
  cli_err(verb,
          "cannot %s \"%s\": names starting with $sys/ are reserved for the daemon's own "
          "topics",
          what, topic);
  return true;
}

bool cli_parse_size(const char *verb, const char *opt, const char *s, uint64_t min, uint64_t max,
                    uint64_t *out) {
  unsigned long long v;
  unsigned shift = 0;
  char *end;

  errno = 0;
  v = strtoull(s, &end, 10);
  if (end != s && (*end == 'K' || *end == 'k'))
    shift = 10;
  else if (end != s && (*end == 'M' || *end == 'm'))
    shift = 20;
  else if (end != s && (*end == 'G' || *end == 'g'))
    shift = 30;
  if (shift != 0)
    end++;
  if (s[0] == '\0' || s[0] == '-' || end == s || *end != '\0' || errno != 0 ||
      v > (UINT64_MAX >> shift) || (v << shift) < min || (v << shift) > max) {
    cli_err(verb, "%s needs a size in %llu..%llu bytes (K, M, G suffixes: 1K = 1024), not \"%s\"",
            opt, (unsigned long long)min, (unsigned long long)max, s);
    return false;
  }
  *out = (uint64_t)v << shift;
  return true;
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

bool cli_parse_choice(const char *verb, const char *opt, const char *s, const char *const *names,
                      int *out) {
  char list[256];
  size_t n = 0, len = 0;

  for (n = 0; names[n] != NULL; n++) {
    if (strcmp(s, names[n]) == 0) {
      *out = (int)n;
      return true;
    }
  }
  /* "a", "a or b", "a, b or c". */
  list[0] = '\0';
  for (size_t i = 0; i < n && len < sizeof(list); i++) {
    int w = snprintf(list + len, sizeof(list) - len, "%s%s",
                     i == 0 ? "" : (i + 1 == n ? " or " : ", "), names[i]);
    if (w < 0)
      break;
    len += (size_t)w;
  }
  cli_err(verb, "%s takes %s, not \"%s\"", opt, list, s);
  return false;
}

int cli_usage_error(const char *verb) {
  fprintf(stderr, "shmbus %s: see shmbus %s --help\n", verb, verb);
  return CLI_EXIT_USAGE;
}
