/* shmbus metrics: the bus's statistics as OpenMetrics text (or the older
 * Prometheus text format), printed, served over HTTP for Prometheus, or
 * written atomically for node_exporter's textfile collector.
 *
 * The numbers come from a snapshot (the `snapshot` request, the same view
 * as `shmbus ls`: a uid sees the topics it may subscribe to) and the
 * daemon's status, taken at each scrape; nothing is kept in between. The
 * daemon's own resources (resident memory, open descriptors) are read from
 * /proc/PID when this process may (the daemon's uid or root); on Windows
 * its working set and handle count (cli_process_resources). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli.h"
#include "http.h"
#include "json.h"
#include "shmbus/msgpack.h"
#include "topicset.h"

#define VERB "metrics"

#define METRICS_OM_TYPE "application/openmetrics-text; version=1.0.0; charset=utf-8"
#define METRICS_PROM_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* The two text formats differ in two places: a counter's TYPE and HELP
 * lines name the family without `_total` in OpenMetrics and the sample
 * name with it in the Prometheus format, and OpenMetrics ends with
 * "# EOF". */
enum metrics_format { METRICS_OPENMETRICS, METRICS_PROMETHEUS };

struct metrics_out {
  FILE *f;
  enum metrics_format fmt;
};

/* A label value, escaped as both formats want it: backslash, double quote
 * and line feed. */
static void metrics_label(FILE *f, const char *name, const char *value, bool first) {
  fprintf(f, "%s%s=\"", first ? "" : ",", name);
  for (; *value != '\0'; value++) {
    if (*value == '\\')
      fputs("\\\\", f);
    else if (*value == '"')
      fputs("\\\"", f);
    else if (*value == '\n')
      fputs("\\n", f);
    else
      fputc(*value, f);
  }
  fputc('"', f);
}

/* The TYPE and HELP lines of a family. `help` has no backslash, quote or
 * line feed. */
static void metrics_family(struct metrics_out *o, const char *name, const char *type,
                           const char *help) {
  bool counter = strcmp(type, "counter") == 0;
  const char *suffix = counter && o->fmt == METRICS_PROMETHEUS ? "_total" : "";

  fprintf(o->f, "# TYPE %s%s %s\n# HELP %s%s %s\n", name, suffix, type, name, suffix, help);
}

static json_int_t metrics_int(const json_t *o, const char *key) {
  const json_t *v = json_object_get(o, key);
  return json_is_integer(v) ? json_integer_value(v) : 0;
}

static const char *metrics_str(const json_t *o, const char *key) {
  const json_t *v = json_object_get(o, key);
  return json_is_string(v) ? json_string_value(v) : "";
}

/* One sample per topic of a value of the topic map. */
static void metrics_per_topic(struct metrics_out *o, const json_t *topics, const char *name,
                              const char *type, const char *help, const char *key,
                              const char *which) {
  const json_t *t;
  size_t i;
  bool counter = strcmp(type, "counter") == 0;

  metrics_family(o, name, type, help);
  json_array_foreach(topics, i, t) {
    json_int_t v;
    if (strcmp(which, "pubs") == 0)
      v = (json_int_t)json_array_size(json_object_get(t, "pubs"));
    else if (strcmp(which, "subs") == 0)
      v = (json_int_t)json_array_size(json_object_get(t, "subs"));
    else
      v = metrics_int(t, key);
    fprintf(o->f, "%s%s{", name, counter ? "_total" : "");
    metrics_label(o->f, "topic", metrics_str(t, "name"), true);
    fprintf(o->f, "} %lld\n", (long long)v);
  }
}

/* One sample per subscriber (or publisher) record. */
static void metrics_per_record(struct metrics_out *o, const json_t *topics, const char *role,
                               const char *name, const char *type, const char *help,
                               const char *key) {
  const json_t *t;
  size_t i;
  bool counter = strcmp(type, "counter") == 0;

  metrics_family(o, name, type, help);
  json_array_foreach(topics, i, t) {
    const json_t *r;
    size_t j;
    json_array_foreach(json_object_get(t, role), j, r) {
      char index[24];
      snprintf(index, sizeof(index), "%lld", (long long)metrics_int(r, "index"));
      fprintf(o->f, "%s%s{", name, counter ? "_total" : "");
      metrics_label(o->f, "topic", metrics_str(t, "name"), true);
      metrics_label(o->f, "index", index, false);
      metrics_label(o->f, "name", metrics_str(r, "name"), false);
      if (strcmp(role, "subs") == 0)
        metrics_label(o->f, "reliable",
                      json_is_true(json_object_get(r, "reliable")) ? "true" : "false", false);
      fprintf(o->f, "} %lld\n", (long long)metrics_int(r, key));
    }
  }
}

/* Renders the bus's statistics. Returns a malloc'd text and its length
 * (NULL only when out of memory); *up says whether the daemon answered
 * (if not, the text says so with shmbus_up 0, and why went to stderr). */
static char *metrics_render(shmbus_bus *bus, enum metrics_format fmt, size_t *len, bool *up) {
  struct shmbus_daemon_status st;
  struct metrics_out o = {NULL, fmt};
  msgpack_unpacked mp;
  json_t *snap = NULL;
  const json_t *topics = NULL;
  void *data = NULL;
  size_t dlen = 0;
  char *text = NULL;
  uint64_t rss = 0, fds = 0;
  bool ok = false;
  int rv;

  if ((o.f = cli_memstream(&text, len)) == NULL) {
    cli_err(VERB, "out of memory");
    return NULL;
  }
  (void)shmbus_bus_process(bus);
  if ((rv = shmbus_bus_daemon_status(bus, &st)) < 0) {
    cli_fail(VERB, bus, rv, "the daemon did not answer");
  } else if ((rv = shmbus_bus_snapshot(bus, NULL, &data, &dlen)) < 0) {
    cli_fail(VERB, bus, rv, "cannot get the daemon's snapshot");
  } else {
    msgpack_unpacked_init(&mp);
    if ((rv = shmbus_msgpack_unpack(data, dlen, &mp)) < 0)
      cli_err(VERB, "the daemon's snapshot is not readable: %s", shmbus_strerror(rv));
    else if ((snap = cli_json_from_msgpack(&mp.data)) == NULL ||
             !json_is_array(topics = json_object_get(snap, "topics")))
      cli_err(VERB, "the daemon's snapshot has no topic list");
    else
      ok = true;
    msgpack_unpacked_destroy(&mp);
    free(data);
  }

  metrics_family(&o, "shmbus_up", "gauge", "1 if the bus daemon answered this scrape, else 0.");
  fprintf(o.f, "shmbus_up %d\n", ok ? 1 : 0);
  if (ok) {
    metrics_family(&o, "shmbus_daemon_uptime_seconds", "gauge", "Seconds since shmbusd started.");
    fprintf(o.f, "shmbus_daemon_uptime_seconds %.3f\n", (double)st.uptime_ms / 1000.0);
    metrics_family(&o, "shmbus_daemon_topics", "gauge",
                   "Topics the daemon holds, its own $sys topics included.");
    fprintf(o.f, "shmbus_daemon_topics %u\n", st.topics);
    metrics_family(&o, "shmbus_daemon_clients", "gauge",
                   "Connections to the daemon, this exporter's included.");
    fprintf(o.f, "shmbus_daemon_clients %u\n", st.clients);
    metrics_family(&o, "shmbus_daemon_process_id", "gauge", "The daemon's process id.");
    fprintf(o.f, "shmbus_daemon_process_id %u\n", st.pid);
    if (cli_process_resources(st.pid, &rss, &fds)) {
      metrics_family(&o, "shmbus_daemon_resident_memory_bytes", "gauge",
                     "The daemon's resident memory (its heap; topic regions are shared memory).");
      fprintf(o.f, "shmbus_daemon_resident_memory_bytes %" PRIu64 "\n", rss);
      metrics_family(&o, "shmbus_daemon_open_fds", "gauge",
                     "Descriptors the daemon holds (clients, memory files, eventfds).");
      fprintf(o.f, "shmbus_daemon_open_fds %" PRIu64 "\n", fds);
    }
    metrics_family(&o, "shmbus_snapshot_truncated", "gauge",
                   "1 if the daemon's snapshot was cut at its size limit.");
    fprintf(o.f, "shmbus_snapshot_truncated %d\n",
            json_is_true(json_object_get(snap, "truncated")) ? 1 : 0);
    metrics_family(&o, "shmbus_topics", "gauge",
                   "Topics this uid may see (the ones labelled below).");
    fprintf(o.f, "shmbus_topics %zu\n", json_array_size(topics));
    metrics_per_topic(&o, topics, "shmbus_topic_published", "counter",
                      "Messages published on the topic since it was created.", "head", "");
    metrics_per_topic(&o, topics, "shmbus_topic_publishers", "gauge",
                      "Publishers attached to the topic.", NULL, "pubs");
    metrics_per_topic(&o, topics, "shmbus_topic_subscribers", "gauge",
                      "Subscribers attached to the topic.", NULL, "subs");
    metrics_per_topic(&o, topics, "shmbus_topic_slots", "gauge", "Ring slots of the topic.",
                      "slots", "");
    metrics_per_topic(&o, topics, "shmbus_topic_slot_size_bytes", "gauge",
                      "Largest message of the topic.", "slot_size", "");
    metrics_per_record(&o, topics, "pubs", "shmbus_publisher_published", "counter",
                       "Messages a publisher published.", "published");
    metrics_per_record(&o, topics, "subs", "shmbus_subscriber_received", "counter",
                       "Messages a subscriber received.", "received");
    metrics_per_record(&o, topics, "subs", "shmbus_subscriber_lost", "counter",
                       "Messages a subscriber missed (lossy, or a reliable one demoted).", "lost");
    metrics_per_record(&o, topics, "subs", "shmbus_subscriber_lag", "gauge",
                       "Messages published that a subscriber has not read yet.", "lag");
  }
  if (fmt == METRICS_OPENMETRICS)
    fputs("# EOF\n", o.f);
  json_decref(snap);
  *up = ok;
  if (cli_memstream_close(o.f, &text, len) != 0) {
    free(text);
    cli_err(VERB, "out of memory");
    return NULL;
  }
  return text;
}

/* ---- --listen ----------------------------------------------------------------- */

struct metrics_srv {
  shmbus_bus *bus;
  uv_loop_t *loop;
  uv_poll_t sig;
  struct http_server *http;
  uint64_t scrapes;
  uint64_t count; /* --count: scrapes to serve, 0: no end */
};

static void metrics_on_request(void *arg, const char *method, const char *path, const char *accept,
                               struct http_reply *r) {
  struct metrics_srv *ms = arg;
  bool om = strstr(accept, "application/openmetrics-text") != NULL;
  bool up;

  (void)method;
  if (strcmp(path, "/metrics") != 0) {
    r->status = 404;
    r->content_type = "text/plain; charset=utf-8";
    r->body = strdup("Not Found: the metrics are at /metrics\n");
    r->len = r->body != NULL ? strlen(r->body) : 0;
    return;
  }
  /* A daemon that does not answer is still a scrape: shmbus_up 0. */
  r->body = metrics_render(ms->bus, om ? METRICS_OPENMETRICS : METRICS_PROMETHEUS, &r->len, &up);
  r->status = r->body != NULL ? 200 : 500;
  r->content_type = om ? METRICS_OM_TYPE : METRICS_PROM_TYPE;
  if (r->body != NULL && ms->count > 0 && ++ms->scrapes >= ms->count) {
    /* The answer is written first: stop listening, the connection
     * finishes, then the loop runs out. */
    http_close(ms->http);
    ms->http = NULL;
    uv_close((uv_handle_t *)&ms->sig, NULL);
  }
}

static void metrics_on_signal(uv_poll_t *h, int status, int events) {
  struct metrics_srv *ms = h->data;

  (void)status;
  (void)events;
  (void)uv_poll_stop(h); /* the byte stays in the pipe: once is enough */
  uv_stop(ms->loop);
}

static void metrics_usage(FILE *f) {
  fputs("usage: shmbus metrics [OPTIONS]\n"
        "\n"
        "Prints the bus's statistics as OpenMetrics text: the daemon (up, uptime,\n"
        "topics, clients, its resident memory and open descriptors when this user may\n"
        "read them), per topic (published, publishers, subscribers, slots, slot size)\n"
        "and per publisher and subscriber (published, received, lost, lag), with the\n"
        "topic (and record index, name, reliable) as labels. Names start with shmbus_.\n"
        "Like `shmbus ls`, it shows the topics this user may subscribe to.\n"
        "\n"
        "      --format F       openmetrics (default) or prometheus (text format 0.0.4)\n"
        "      --listen ADDR    serve the metrics over HTTP at /metrics, for Prometheus;\n"
        "                       ADDR is HOST:PORT, [V6]:PORT or PORT (the loopback,\n"
        "                       127.0.0.1); port 0 picks a free one; the address goes to\n"
        "                       stderr as \"listening on http://ADDR/metrics\". A scrape that\n"
        "                       accepts application/openmetrics-text gets OpenMetrics,\n"
        "                       others the Prometheus format\n"
        "      --textfile PATH  write the metrics to PATH atomically (a temporary file\n"
        "                       beside it, renamed), in the Prometheus format that\n"
        "                       node_exporter's textfile collector reads; with -i, again\n"
        "                       every interval\n"
        "  -i, --interval S     with --textfile: rewrite every S seconds until Ctrl-C\n"
        "  -n, --count N        with --listen: stop after N scrapes\n" CLI_BUS_HELP
        "  -h, --help           show this help\n"
        "\n"
        "HTTP: GET or HEAD /metrics; other paths 404, other methods 405. Each request\n"
        "gets its own connection (closed after the answer); a request head over 8 KiB\n"
        "gets 431; a connection is cut 10 s after it was accepted; at most 32 are served\n"
        "at once. A daemon that does not answer gives shmbus_up 0.\n"
        "metrics never starts a daemon. Exit status: 0 ok, 1 error, 2 bad usage.\n",
        f);
}

int cli_metrics(int argc, char **argv) {
  static const struct option longopts[] = {{"format", required_argument, NULL, 0x200},
                                           {"listen", required_argument, NULL, 0x201},
                                           {"textfile", required_argument, NULL, 0x202},
                                           {"interval", required_argument, NULL, 'i'},
                                           {"count", required_argument, NULL, 'n'},
                                           {"help", no_argument, NULL, 'h'},
                                           CLI_BUS_LONGOPTS,
                                           {NULL, 0, NULL, 0}};
  struct cli_bus_args ba;
  enum metrics_format fmt = METRICS_OPENMETRICS;
  const char *listen = NULL;
  const char *textfile = NULL;
  double interval = 0;
  uint64_t count = 0;
  shmbus_bus *bus = NULL;
  int status = CLI_EXIT_ERROR;
  char *text;
  size_t len;
  bool up = false;
  int c, rv;

  cli_bus_args_init(&ba);
  optind = 1;
  while ((c = getopt_long(argc, argv, "i:n:h", longopts, NULL)) != -1) {
    switch (c) {
    case 0x200:
      if (strcmp(optarg, "openmetrics") == 0)
        fmt = METRICS_OPENMETRICS;
      else if (strcmp(optarg, "prometheus") == 0)
        fmt = METRICS_PROMETHEUS;
      else {
        cli_err(VERB, "--format %s: openmetrics or prometheus", optarg);
        return CLI_EXIT_USAGE;
      }
      break;
    case 0x201:
      listen = optarg;
      break;
    case 0x202:
      textfile = optarg;
      break;
    case 'i':
      if (!cli_parse_seconds(VERB, "--interval", optarg, &interval))
        return CLI_EXIT_USAGE;
      break;
    case 'n':
      if (!cli_parse_u64(VERB, "--count", optarg, 1, UINT64_MAX, &count))
        return CLI_EXIT_USAGE;
      break;
    case 'h':
      metrics_usage(stdout);
      return CLI_EXIT_OK;
    default:
      if ((rv = cli_other_arg(VERB, &ba, NULL, c, optarg)) != 0)
        return rv;
      break;
    }
  }
  if (optind < argc) {
    cli_err(VERB, "no arguments besides options (got \"%s\")", argv[optind]);
    return cli_usage_error(VERB);
  }
  if (listen != NULL && textfile != NULL) {
    cli_err(VERB, "--listen or --textfile, not both");
    return cli_usage_error(VERB);
  }
  if ((bus = cli_bus_open(VERB, &ba, 0)) == NULL)
    return CLI_EXIT_ERROR;

  if (listen != NULL) {
    struct sockaddr_storage addr;
    struct metrics_srv ms;
    uv_loop_t loop;
    char where[128];
    int sig_fd;

    if (http_parse_listen(listen, &addr) < 0) {
      cli_err(VERB, "--listen %s: HOST:PORT, [V6]:PORT or PORT, with a numeric HOST", listen);
      shmbus_bus_close(bus);
      return CLI_EXIT_USAGE;
    }
    memset(&ms, 0, sizeof(ms));
    ms.bus = bus;
    ms.loop = &loop;
    ms.count = count;
    if ((rv = uv_loop_init(&loop)) < 0) {
      cli_err(VERB, "cannot make an event loop: %s", uv_strerror(rv));
      goto out;
    }
    if ((sig_fd = cli_signal_fd(VERB)) < 0 || uv_poll_init(&loop, &ms.sig, sig_fd) < 0 ||
        uv_poll_start(&ms.sig, UV_READABLE, metrics_on_signal) < 0) {
      cli_loop_close(&loop);
      goto out;
    }
    ms.sig.data = &ms;
    if ((rv = http_listen(&loop, (const struct sockaddr *)&addr, metrics_on_request, &ms,
                          &ms.http)) < 0) {
      cli_err(VERB, "cannot listen on %s: %s", listen, uv_strerror(rv));
      cli_loop_close(&loop);
      goto out;
    }
    http_address(ms.http, where, sizeof(where));
    fprintf(stderr, "shmbus metrics: listening on http://%s/metrics\n", where);
    fflush(stderr);
    (void)uv_run(&loop, UV_RUN_DEFAULT);
    http_close(ms.http);
    cli_loop_close(&loop);
    status = CLI_EXIT_OK;
    goto out;
  }

  if (textfile == NULL)
    cli_stdout_binary();
  for (;;) {
    text = metrics_render(bus, textfile != NULL ? METRICS_PROMETHEUS : fmt, &len, &up);
    if (text == NULL)
      goto out;
    if (textfile != NULL)
      rv = cli_write_file_atomic(VERB, textfile, text, len);
    else
      rv = fwrite(text, 1, len, stdout) == len && fflush(stdout) == 0 ? 0 : -EIO;
    free(text);
    if (rv < 0)
      goto out;
    if (interval <= 0 || textfile == NULL)
      break;
    up = true; /* a daemon that comes back is fine: only the last round counts */
    /* -i with --textfile: again after the interval, until a signal. */
    {
      static int sig_fd = -2;
      if (sig_fd == -2 && (sig_fd = cli_signal_fd(VERB)) < 0)
        goto out;
      if (cli_wait(sig_fd, NULL, (int)(interval * 1000.0)) != 0)
        break;
    }
  }
  status = up ? CLI_EXIT_OK : CLI_EXIT_ERROR;

out:
  shmbus_bus_close(bus);
  return status;
}
