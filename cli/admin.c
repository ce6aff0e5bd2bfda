/* shmbus daemon status|stop and shmbus config check. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "host.h"

/* Where shmbusd --system reads its rules (daemon/main.c). */
#define CONFIG_SYSTEM_FILE "/etc/shmbus/shmbusd.conf"

/* ---- daemon ---------------------------------------------------------------- */

static void daemon_usage(FILE *f) {
  fprintf(f, "usage: shmbus daemon status|stop [OPTIONS]\n"
             "\n"
             "  status               print the daemon's pid, uptime, topics and clients\n"
             "  stop                 ask the daemon to stop and wait until it is gone;\n"
             "                       running participants keep their topics and a new\n"
             "                       daemon adopts them\n"
             "\n"
             "  -j, --json           status as JSON: {\"pid\", \"uptime_ms\", \"topics\",\n"
             "                       \"clients\"}\n" CLI_BUS_HELP
             "  -h, --help           show this help\n"
             "\n"
             "Never starts a daemon. Exit status: 0 ok, 1 error (no daemon, or it refused),\n"
             "2 bad usage.\n");
}

/* After the daemon agreed to stop: waits (at most 5 s) until it closed our
 * connection, which it does after removing its socket (so the reconnect
 * that shmbus_bus_process tries then finds no daemon: autostart is off). */
static bool daemon_wait_gone(shmbus_bus *bus) {
  uint64_t end = cli_now_ns() + 5000000000u;

  for (;;) {
    uint64_t now = cli_now_ns();
    if (shmbus_bus_fd(bus) == SHMBUS_OS_FD_INVALID)
      return true;
    if (now >= end)
      return false;
    if (cli_wait(-1, bus, (int)((end - now) / 1000000u) + 1) > 0)
      (void)shmbus_bus_process(bus);
  }
}

int cli_daemon(int argc, char **argv) {
  static const struct option longopts[] = {{"json", no_argument, NULL, 'j'},
                                           {"help", no_argument, NULL, 'h'},
                                           CLI_BUS_LONGOPTS,
                                           {NULL, 0, NULL, 0}};
  struct cli_bus_args ba;
  struct shmbus_daemon_status st;
  bool as_json = false;
  shmbus_bus *bus = NULL;
  const char *what;
  int status = CLI_EXIT_ERROR;
  int c, rv;

  cli_bus_args_init(&ba);
  optind = 1;
  while ((c = getopt_long(argc, argv, "jJh", longopts, NULL)) != -1) {
    switch (c) {
    case 'j':
    case 'J': /* the old spelling, still taken */
      as_json = true;
      break;
    case 'h':
      daemon_usage(stdout);
      return CLI_EXIT_OK;
    default:
      if ((rv = cli_other_arg("daemon", &ba, NULL, c, optarg)) != 0)
        return rv;
      break;
    }
  }
  if (argc - optind != 1 ||
      (strcmp(argv[optind], "status") != 0 && strcmp(argv[optind], "stop") != 0)) {
    cli_err("daemon", "say status or stop");
    return cli_usage_error("daemon");
  }
  what = argv[optind];
  if ((bus = cli_bus_open("daemon", &ba, 0)) == NULL)
    goto out;
  if ((rv = shmbus_bus_daemon_status(bus, &st)) < 0) {
    cli_fail("daemon", bus, rv, "status");
    goto out;
  }
  if (strcmp(what, "status") == 0) {
    if (as_json)
      printf("{\"pid\": %u, \"uptime_ms\": %llu, \"topics\": %u, \"clients\": %u}\n", st.pid,
             (unsigned long long)st.uptime_ms, st.topics, st.clients);
    else
      printf("shmbusd pid %u, up %.1f s, %u topic%s, %u client%s (this one included)\n", st.pid,
             (double)st.uptime_ms / 1000.0, st.topics, st.topics == 1 ? "" : "s", st.clients,
             st.clients == 1 ? "" : "s");
    status = CLI_EXIT_OK;
    goto out;
  }
  if ((rv = shmbus_bus_daemon_stop(bus)) < 0) {
    cli_fail("daemon", bus, rv, "stop");
    goto out;
  }
  if (!daemon_wait_gone(bus)) {
    cli_err("daemon", "shmbusd (pid %u) agreed to stop but is still there after 5 s", st.pid);
    goto out;
  }
  printf("stopped shmbusd (pid %u)\n", st.pid);
  status = CLI_EXIT_OK;

out:
  shmbus_bus_close(bus);
  return status;
}

/* ---- config ---------------------------------------------------------------- */

static void config_usage(FILE *f) {
  fprintf(f, "usage: shmbus config check FILE [pub|sub TOPIC [--uid N] [--gid N]]\n"
             "       shmbus config check --system [FILE] [pub|sub TOPIC ...]\n"
             "\n"
             "Loads a shmbusd permission file as the daemon would (same parser) and reports\n"
             "the first error with its line, or how many rules it has. Given pub|sub and a\n"
             "TOPIC, also says whether that request would be allowed, and by which rule, for\n"
             "--uid/--gid (default: yours; supplementary groups are not considered).\n"
             "\n"
             "  -u, --uid N          the requester's uid\n"
             "  -g, --gid N          the requester's primary gid\n"
             "  -o, --owner N        the bus owner, whom the default policy allows\n"
             "                       (default: your uid; root with --system)\n"
             "      --system         the system bus's file, " CONFIG_SYSTEM_FILE "\n"
             "                       (when FILE is not given), owned by root\n"
             "  -h, --help           show this help\n"
             "\n"
             "Exit status: 0 the file is valid (and the request allowed), 1 it is not (or\n"
             "the request is denied), 2 bad usage.\n");
}

int cli_config(int argc, char **argv) {
  static const struct option longopts[] = {
      {"uid", required_argument, NULL, 'u'},   {"gid", required_argument, NULL, 'g'},
      {"owner", required_argument, NULL, 'o'}, {"system", no_argument, NULL, 0x103},
      {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
  struct config_cred cred = {cli_os_uid(), cli_os_gid(), NULL, 0, NULL};
  struct host_peer self;
  bool self_known = false, ids_given = false;
  uint32_t owner = cli_os_uid(), v;
  bool system = cli_global.system, owner_set = false;
  const char *file, *op = NULL, *topic = NULL;
  struct config *cfg = NULL;
  char err[512], why[300];
  int c, rv, nargs;

  optind = 1;
  while ((c = getopt_long(argc, argv, "u:g:o:h", longopts, NULL)) != -1) {
    switch (c) {
    case 'u':
      if (!cli_parse_u32("config", "--uid", optarg, 0, UINT32_MAX - 1, &v))
        return CLI_EXIT_USAGE;
      cred.uid = v;
      ids_given = true;
      break;
    case 'g':
      if (!cli_parse_u32("config", "--gid", optarg, 0, UINT32_MAX - 1, &v))
        return CLI_EXIT_USAGE;
      cred.gid = v;
      ids_given = true;
      break;
    case 'o':
      if (!cli_parse_u32("config", "--owner", optarg, 0, UINT32_MAX - 1, &owner))
        return CLI_EXIT_USAGE;
      owner_set = true;
      break;
    case 0x103:
      system = true;
      break;
    case 'h':
      config_usage(stdout);
      return CLI_EXIT_OK;
    default:
      return cli_usage_error("config");
    }
  }
  nargs = argc - optind;
  /* check FILE [pub|sub TOPIC]; with --system FILE may be left out. */
  if (nargs >= 1 && strcmp(argv[optind], "check") == 0 && system &&
      (nargs == 1 || (nargs == 3 && (strcmp(argv[optind + 1], "pub") == 0 ||
                                     strcmp(argv[optind + 1], "sub") == 0)))) {
    file = CONFIG_SYSTEM_FILE;
    if (nargs == 3) {
      op = argv[optind + 1];
      topic = argv[optind + 2];
    }
  } else if ((nargs == 2 || nargs == 4) && strcmp(argv[optind], "check") == 0 &&
             (nargs == 2 || strcmp(argv[optind + 2], "pub") == 0 ||
              strcmp(argv[optind + 2], "sub") == 0)) {
    file = argv[optind + 1];
    if (nargs == 4) {
      op = argv[optind + 2];
      topic = argv[optind + 3];
    }
  } else {
    cli_err("config", "usage: shmbus config check FILE [pub|sub TOPIC]");
    return cli_usage_error("config");
  }
  /* The system daemon runs as root: its default policy allows root. */
  if (system && !owner_set)
    owner = 0;
  if ((rv = config_load(file, owner, &cfg, err, sizeof(err))) < 0) {
    cli_err("config", "%s", err);
    return CLI_EXIT_ERROR;
  }
  printf("%s: %zu rule%s, valid\n", file, config_rule_count(cfg),
         config_rule_count(cfg) == 1 ? "" : "s");
  rv = CLI_EXIT_OK;
  if (op != NULL) {
    bool ok;
    /* Without --uid/--gid the requester is this process: where rules
     * compare SIDs (Windows), its token's user and groups. */
    memset(&self, 0, sizeof(self));
    if (!ids_given && host_peer_self(&self) == 0) {
      self_known = true;
      cred.peer = &self;
    }
    ok = config_check(cfg, topic, strcmp(op, "pub") == 0 ? CONFIG_OP_PUB : CONFIG_OP_SUB, &cred,
                      why, sizeof(why));
    printf("%s %s on \"%s\" for uid %u gid %u: decided by %s\n", ok ? "allow" : "deny", op, topic,
           (unsigned)cred.uid, (unsigned)cred.gid, why);
    rv = ok ? CLI_EXIT_OK : CLI_EXIT_ERROR;
  }
  if (self_known)
    host_peer_release(&self);
  config_free(cfg);
  return rv;
}
