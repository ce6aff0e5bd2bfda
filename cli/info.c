/* shmbus ls and shmbus stat: the daemon's view of topics and participants,
 * from the `snapshot` request (shmbus_bus_snapshot), which answers with
 * the same map as $sys/stats; it is turned into JSON values here and read
 * from there. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "shmbus/msgpack.h"

/* Takes a snapshot as a JSON value (the caller json_decref's it), or
 * prints why not and returns NULL. */
static json_t *info_snapshot(const char *verb, shmbus_bus *bus, const char *topic) {
  msgpack_unpacked up;
  json_t *v = NULL;
  void *data = NULL;
  size_t len = 0;
  int rv;

  if ((rv = shmbus_bus_snapshot(bus, topic, &data, &len)) < 0) {
    if (rv == -ENOENT && topic != NULL)
      cli_err(verb, "unknown topic \"%s\": no such topic on this daemon", topic);
    else
      cli_fail(verb, bus, rv, "cannot get the daemon's snapshot");
    return NULL;
  }
  msgpack_unpacked_init(&up);
  if ((rv = shmbus_msgpack_unpack(data, len, &up)) < 0)
    cli_err(verb, "the daemon's snapshot is not readable: %s", shmbus_strerror(rv));
  else if ((v = cli_json_from_msgpack(&up.data)) == NULL ||
           !json_is_array(json_object_get(v, "topics")))
    cli_err(verb, "the daemon's snapshot has no topic list");
  msgpack_unpacked_destroy(&up);
  shmbus_snapshot_free(data);
  if (v != NULL && !json_is_array(json_object_get(v, "topics"))) {
    json_decref(v);
    v = NULL;
  }
  return v;
}

static json_int_t info_int(const json_t *o, const char *key) {
  const json_t *v = json_object_get(o, key);
  return json_is_integer(v) ? json_integer_value(v) : 0;
}

static const char *info_str(const json_t *o, const char *key) {
  const json_t *v = json_object_get(o, key);
  return json_is_string(v) ? json_string_value(v) : "";
}

/* The topic named `name` in a snapshot, or NULL. */
static json_t *info_find(const json_t *snap, const char *name) {
  json_t *t;
  size_t i;

  json_array_foreach(json_object_get(snap, "topics"), i, t) {
    if (strcmp(info_str(t, "name"), name) == 0)
      return t;
  }
  return NULL;
}

static int info_dump(json_t *v) {
  int rv = json_dumpf(v, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
  putchar('\n');
  return rv == 0 ? CLI_EXIT_OK : CLI_EXIT_ERROR;
}

/* Waits up to `seconds`; returns true early when signalled (SIGINT or
 * SIGTERM wrote to the pipe). */
static bool info_wait(int sig_fd, double seconds) {
  uint64_t end = cli_now_ns() + (uint64_t)(seconds * 1e9);

  for (;;) {
    uint64_t now = cli_now_ns();
    if (now >= end)
      return false;
    if (cli_wait(sig_fd, NULL, (int)((end - now + 999999u) / 1000000u)) > 0)
      return true;
  }
}

/* ---- ls ------------------------------------------------------------------ */

static void ls_usage(FILE *f) {
  fprintf(f, "usage: shmbus ls [OPTIONS]\n"
             "\n"
             "Lists the daemon's topics: parameters, publishers, subscribers, messages\n"
             "published and the message rate. The rate is measured over --interval: ls\n"
             "takes two snapshots that far apart (the daemon keeps no timer for this).\n"
             "\n"
             "  -j, --json           one JSON document: {\"topics\": [{\"name\", \"topic_id\",\n"
             "                       \"slots\", \"slot_size\", \"max_subs\", \"max_pubs\",\n"
             "                       \"published\", \"publishers\", \"subscribers\",\n"
             "                       \"rate_hz\"}]} (rate_hz is null with --interval 0)\n"
             "  -i, --interval S     seconds between the two snapshots (default 0.5; 0: one\n"
             "                       snapshot, no rate)\n" CLI_BUS_HELP
             "  -h, --help           show this help\n"
             "\n"
             "ls never starts a daemon. Exit status: 0 ok, 1 error, 2 bad usage.\n");
}

int cli_ls(int argc, char **argv) {
  static const struct option longopts[] = {{"json", no_argument, NULL, 'j'},
                                           {"interval", required_argument, NULL, 'i'},
                                           {"help", no_argument, NULL, 'h'},
                                           CLI_BUS_LONGOPTS,
                                           {NULL, 0, NULL, 0}};
  struct cli_bus_args ba;
  double interval = 0.5;
  bool as_json = false;
  shmbus_bus *bus = NULL;
  json_t *first = NULL, *second = NULL, *out = NULL, *list;
  json_t *t;
  int status = CLI_EXIT_ERROR;
  size_t i;
  int c, rv;

  cli_bus_args_init(&ba);
  optind = 1;
  while ((c = getopt_long(argc, argv, "jJi:h", longopts, NULL)) != -1) {
    switch (c) {
    case 'j':
    case 'J': /* the old spelling, still taken */
      as_json = true;
      break;
    case 'i':
      if (!cli_parse_seconds("ls", "--interval", optarg, &interval))
        return CLI_EXIT_USAGE;
      break;
    case 'h':
      ls_usage(stdout);
      return CLI_EXIT_OK;
    default:
      if ((rv = cli_other_arg("ls", &ba, NULL, c, optarg)) != 0)
        return rv;
      break;
    }
  }
  if (optind != argc) {
    cli_err("ls", "no arguments expected");
    return cli_usage_error("ls");
  }
  if ((bus = cli_bus_open("ls", &ba, 0)) == NULL)
    goto out;
  if ((first = info_snapshot("ls", bus, NULL)) == NULL)
    goto out;
  if (interval > 0) {
    info_wait(-1, interval);
    if ((second = info_snapshot("ls", bus, NULL)) == NULL)
      goto out;
  }
  /* The table, from the later snapshot; rates from the difference. */
  out = json_object();
  list = json_array();
  json_object_set_new(out, "topics", list);
  json_array_foreach(json_object_get(second != NULL ? second : first, "topics"), i, t) {
    json_t *row = json_object();
    const char *name = info_str(t, "name");
    json_t *before = second != NULL ? info_find(first, name) : NULL;
    json_t *rate = json_null();
    if (before != NULL) {
      double dt = (double)(info_int(second, "ts_ns") - info_int(first, "ts_ns")) / 1e9;
      json_int_t dh = info_int(t, "head") - info_int(before, "head");
      rate = json_real(dt > 0 && dh >= 0 ? (double)dh / dt : 0.0);
    } else if (second != NULL) {
      rate = json_real(0.0); /* the topic is new: nothing to compare with */
    }
    json_object_set_new(row, "name", json_string(name));
    json_object_set_new(row, "topic_id", json_integer(info_int(t, "topic_id")));
    json_object_set_new(row, "slots", json_integer(info_int(t, "slots")));
    json_object_set_new(row, "slot_size", json_integer(info_int(t, "slot_size")));
    json_object_set_new(row, "max_subs", json_integer(info_int(t, "max_subs")));
    json_object_set_new(row, "max_pubs", json_integer(info_int(t, "max_pubs")));
    json_object_set_new(row, "published", json_integer(info_int(t, "head")));
    json_object_set_new(row, "publishers",
                        json_integer((json_int_t)json_array_size(json_object_get(t, "pubs"))));
    json_object_set_new(row, "subscribers",
                        json_integer((json_int_t)json_array_size(json_object_get(t, "subs"))));
    json_object_set_new(row, "rate_hz", rate);
    json_array_append_new(list, row);
  }
  if (as_json) {
    status = info_dump(out);
    goto out;
  }
  printf("%-32s %8s %9s %4s %4s %10s %10s\n", "TOPIC", "SLOTS", "SLOT_SIZE", "PUBS", "SUBS",
         "PUBLISHED", "RATE/s");
  json_array_foreach(list, i, t) {
    const json_t *rate = json_object_get(t, "rate_hz");
    char rbuf[32];
    if (json_is_real(rate))
      snprintf(rbuf, sizeof(rbuf), "%.1f", json_real_value(rate));
    else
      snprintf(rbuf, sizeof(rbuf), "-");
    printf("%-32s %8lld %9lld %4lld %4lld %10lld %10s\n", info_str(t, "name"),
           (long long)info_int(t, "slots"), (long long)info_int(t, "slot_size"),
           (long long)info_int(t, "publishers"), (long long)info_int(t, "subscribers"),
           (long long)info_int(t, "published"), rbuf);
  }
  status = CLI_EXIT_OK;

out:
  json_decref(first);
  json_decref(second);
  json_decref(out);
  shmbus_bus_close(bus);
  return status;
}

/* ---- stat ---------------------------------------------------------------- */

static void stat_usage(FILE *f) {
  fprintf(f,
          "usage: shmbus stat [OPTIONS] TOPIC\n"
          "\n"
          "Shows one topic: its parameters and messages published, then per subscriber\n"
          "its name, pid, lag (messages published it has not read yet), received and\n"
          "lost, and per publisher its name, pid and messages published.\n"
          "\n"
          "  -j, --json           the topic as one JSON document: {\"name\", \"topic_id\",\n"
          "                       \"slots\", \"slot_size\", \"max_subs\", \"max_pubs\", \"head\",\n"
          "                       \"pubs\": [{\"index\", \"pid\", \"client\", \"name\",\n"
          "                       \"published\"}], \"subs\": [{\"index\", \"pid\", \"client\",\n"
          "                       \"name\", \"reliable\", \"cursor\", \"lag\", \"received\",\n"
          "                       \"lost\"}]}\n"
          "      --watch          refresh every --interval seconds (Ctrl-C ends): like top\n"
          "                       on a terminal, one report after another (a blank line\n"
          "                       between them) into a pipe or file\n"
          "  -i, --interval S     seconds between refreshes (default 1)\n" CLI_BUS_HELP
          "  -h, --help           show this help\n"
          "\n"
          "stat never starts a daemon. Exit status: 0 ok, 1 error (an unknown topic too),\n"
          "2 bad usage.\n");
}

static void stat_print(const json_t *t) {
  const json_t *p;
  size_t i;

  printf("topic %s  slots %lld  slot_size %lld  max_subs %lld  max_pubs %lld  published %lld"
         "  uids %lld  repaired %lld\n",
         info_str(t, "name"), (long long)info_int(t, "slots"), (long long)info_int(t, "slot_size"),
         (long long)info_int(t, "max_subs"), (long long)info_int(t, "max_pubs"),
         (long long)info_int(t, "head"), (long long)info_int(t, "members"),
         (long long)info_int(t, "repaired"));
  printf("\n%-20s %8s %8s %10s %12s %10s %8s\n", "SUBSCRIBER", "PID", "RELIABLE", "LAG", "RECEIVED",
         "LOST", "DEMOTED");
  json_array_foreach(json_object_get(t, "subs"), i, p) {
    printf("%-20s %8lld %8s %10lld %12lld %10lld %8lld\n", info_str(p, "name"),
           (long long)info_int(p, "pid"),
           json_is_true(json_object_get(p, "reliable")) ? "yes" : "no",
           (long long)info_int(p, "lag"), (long long)info_int(p, "received"),
           (long long)info_int(p, "lost"), (long long)info_int(p, "demoted"));
  }
  printf("\n%-20s %8s %10s\n", "PUBLISHER", "PID", "PUBLISHED");
  json_array_foreach(json_object_get(t, "pubs"), i, p) {
    printf("%-20s %8lld %10lld\n", info_str(p, "name"), (long long)info_int(p, "pid"),
           (long long)info_int(p, "published"));
  }
}

int cli_stat(int argc, char **argv) {
  static const struct option longopts[] = {{"json", no_argument, NULL, 'j'},
                                           {"watch", no_argument, NULL, 0x200},
                                           {"interval", required_argument, NULL, 'i'},
                                           {"help", no_argument, NULL, 'h'},
                                           CLI_BUS_LONGOPTS,
                                           {NULL, 0, NULL, 0}};
  struct cli_bus_args ba;
  double interval = 1;
  bool as_json = false, watch = false, first = true;
  bool tty = isatty(STDOUT_FILENO) != 0;
  shmbus_bus *bus = NULL;
  const char *topic;
  int sig_fd = -1;
  int status = CLI_EXIT_ERROR;
  int c, rv;

  cli_bus_args_init(&ba);
  optind = 1;
  while ((c = getopt_long(argc, argv, "jJwi:h", longopts, NULL)) != -1) {
    switch (c) {
    case 'j':
    case 'J': /* the old spelling, still taken */
      as_json = true;
      break;
    case 0x200:
      watch = true;
      break;
    case 'w':
      /* Once short for --watch; -w is pub's --wait-subs now (a short
       * option means one thing in every verb). */
      cli_err("stat", "-w is not an option of stat any more: say --watch");
      return CLI_EXIT_USAGE;
    case 'i':
      if (!cli_parse_seconds("stat", "--interval", optarg, &interval) || interval <= 0) {
        if (interval <= 0)
          cli_err("stat", "--interval must be more than 0");
        return CLI_EXIT_USAGE;
      }
      break;
    case 'h':
      stat_usage(stdout);
      return CLI_EXIT_OK;
    default:
      if ((rv = cli_other_arg("stat", &ba, NULL, c, optarg)) != 0)
        return rv;
      break;
    }
  }
  if (argc - optind != 1) {
    cli_err("stat", argc - optind < 1 ? "which topic? (shmbus stat TOPIC)" : "one topic only");
    return cli_usage_error("stat");
  }
  topic = argv[optind];
  if (watch && (sig_fd = cli_signal_fd("stat")) < 0)
    return CLI_EXIT_ERROR;
  if ((bus = cli_bus_open("stat", &ba, 0)) == NULL)
    goto out;
  for (;;) {
    json_t *snap = info_snapshot("stat", bus, topic);
    json_t *t = snap != NULL ? info_find(snap, topic) : NULL;
    if (t == NULL) {
      if (snap != NULL)
        cli_err("stat", "unknown topic \"%s\": no such topic on this daemon", topic);
      json_decref(snap);
      goto out;
    }
    /* Home and clear make a refreshing screen on a terminal; anywhere
     * else they would be junk in the data, so reports are just separated. */
    if (watch && !as_json && tty)
      fputs("\033[H\033[2J", stdout);
    else if (watch && !first)
      putchar('\n');
    first = false;
    if (as_json)
      (void)info_dump(t);
    else
      stat_print(t);
    fflush(stdout);
    json_decref(snap);
    if (!watch || info_wait(sig_fd, interval))
      break;
  }
  status = CLI_EXIT_OK;

out:
  shmbus_bus_close(bus);
  return status;
}
