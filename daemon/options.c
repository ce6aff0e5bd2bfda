/* options: shmbusd's command line. See options.h. */
#define _GNU_SOURCE
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "paths.h"
#include "proto.h"
#include "shmbus/version.h"

void options_usage(FILE *f) {
  fprintf(
      f,
      "usage: shmbusd [--foreground] [--system] [--dir DIR] [--config FILE]\n"
      "               [--limit NAME=VALUE]... [--ready-fd N] [--idle-exit S]\n"
      "               [--service] [--verbose] [--help] [--version]\n"
      "\n"
      "The shmbus bus daemon: hands out shared-memory topics to local processes.\n"
      "\n"
      "  -f, --foreground  stay in the foreground and log to stderr (default: detach,\n"
      "                    log to syslog)\n"
      "  -s, --system      run the system-wide bus (" SHMBUS__SYSTEM_DIR ", socket open to all,\n"
      "                    access decided by the config file)\n"
      "  -d, --dir DIR     bus directory (default: $SHMBUS_DIR, else " SHMBUS__SYSTEM_DIR " for\n"
      "                    --system, else $XDG_RUNTIME_DIR/shmbus, else /tmp/shmbus-UID)\n"
      "  -c, --config FILE permission rules (default for --system: " OPTIONS_SYSTEM_CONFIG ";\n"
      "                    without a file only the owner and root may use the bus)\n"
      "  -l, --limit NAME=VALUE\n"
      "                    a per-client limit, over the config file's `limit` lines\n"
      "                    (repeatable; 0 = none): topics (created, default %u),\n"
      "                    records (held, %u), memory (bytes of regions created,\n"
      "                    %lluG), region (bytes of one topic, %lluG), rate (control\n"
      "                    messages per second, %u), burst (%u), connections (of\n"
      "                    one uid on the system bus, %u), deadline_ms (system bus:\n"
      "                    the longest a publisher waits for one reliable\n"
      "                    subscriber, %u), and more in shmbusd(8); sizes take K/M/G\n"
      "  -r, --ready-fd N  write one byte to descriptor N once the socket accepts\n"
      "                    connections, then close it\n"
      "  -i, --idle-exit S exit after S seconds without clients and without topics\n"
      "                    (retained ones included); the library's autostart passes\n"
      "                    it (default: stay until stopped)\n"
      "      --service     Windows: run as a service of the service control manager\n"
      "                    (`sc create ... binPath= \"shmbusd.exe --service ...\"`); its\n"
      "                    stop and the system's shutdown stop the daemon cleanly\n"
      "  -v, --verbose     log debug messages too\n"
      "  -h, --help        show this help\n"
      "  -V, --version     show the version\n"
      "\n"
      "Signals: SIGTERM/SIGINT stop cleanly, SIGHUP reloads the config.\n"
      "With $NOTIFY_SOCKET set (systemd Type=notify) it sends READY=1 once it\n"
      "listens and STOPPING=1 when it stops. Man page: shmbusd(8).\n"
      "Exit status: 0 stopped cleanly, 1 error, 2 bad usage, 3 another shmbusd owns the\n"
      "bus directory.\n",
      CONFIG_LIMIT_TOPICS, CONFIG_LIMIT_RECORDS, CONFIG_LIMIT_MEMORY >> 30,
      CONFIG_LIMIT_REGION >> 30, CONFIG_LIMIT_RATE, CONFIG_LIMIT_BURST, CONFIG_LIMIT_CONNECTIONS,
      CONFIG_LIMIT_DEADLINE_MS);
}

int options_parse(int argc, char **argv, struct options *o) {
  static const struct option longopts[] = {
      {"foreground", no_argument, NULL, 'f'},     {"system", no_argument, NULL, 's'},
      {"dir", required_argument, NULL, 'd'},      {"config", required_argument, NULL, 'c'},
      {"ready-fd", required_argument, NULL, 'r'}, {"limit", required_argument, NULL, 'l'},
      {"verbose", no_argument, NULL, 'v'},        {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},        {"idle-exit", required_argument, NULL, 'i'},
      {"service", no_argument, NULL, 'S'},        {NULL, 0, NULL, 0}};
  int ch;

  memset(o, 0, sizeof(*o));
  while ((ch = getopt_long(argc, argv, "fsd:c:l:r:i:vhV", longopts, NULL)) != -1) {
    switch (ch) {
    case 'f':
      o->foreground = true;
      break;
    case 's':
      o->system = true;
      break;
    case 'd':
      o->dir = optarg;
      break;
    case 'c':
      o->config = optarg;
      break;
    case 'r': {
      char *end;
      long v;
      errno = 0;
      v = strtol(optarg, &end, 10);
      if (errno != 0 || *end != '\0' || end == optarg || v < 0 || v > 65535) {
        fprintf(stderr, "shmbusd: --ready-fd needs a descriptor number, not \"%s\"\n", optarg);
        return OPTIONS_EXIT_USAGE;
      }
      o->ready_arg = optarg;
      break;
    }
    case 'i': {
      char *end;
      double v;
      errno = 0;
      v = strtod(optarg, &end);
      if (errno != 0 || *end != '\0' || end == optarg || !(v > 0) || v > 86400.0 * 365) {
        fprintf(stderr, "shmbusd: --idle-exit needs a number of seconds > 0, not \"%s\"\n", optarg);
        return OPTIONS_EXIT_USAGE;
      }
      o->idle_exit = v;
      break;
    }
    case 'l':
      if (o->nlimits == sizeof(o->limits) / sizeof(o->limits[0])) {
        fprintf(stderr, "shmbusd: too many --limit options\n");
        return OPTIONS_EXIT_USAGE;
      }
      o->limits[o->nlimits++] = optarg;
      break;
    case 'v':
      o->verbose = true;
      break;
    case 'S':
      o->service = true;
      break;
    case 'h':
      options_usage(stdout);
      exit(0);
    case 'V':
      printf("shmbusd %s (protocol %u)\n", shmbus_version(), SHMBUS__PROTO_VERSION);
      exit(0);
    default:
      options_usage(stderr);
      return OPTIONS_EXIT_USAGE;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "shmbusd: unexpected argument \"%s\"\n", argv[optind]);
    options_usage(stderr);
    return OPTIONS_EXIT_USAGE;
  }
  return 0;
}
