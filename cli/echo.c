/* shmbus echo: print messages of topics and patterns as they arrive, and
 * one summary line. Runs on a libuv loop: the subscriptions (present and
 * future topics) are cli/topicset.c's. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "cli.h"
#include "json.h"
#include "synth.h"
#include "topicset.h"

#define VERB "echo"
/* --latency-us: fit for a reader on a terminal or at the end of a pipe. */
#define ECHO_LATENCY_US 5000u

static void echo_usage(FILE *f) {
  fputs("usage: shmbus echo [OPTIONS] TOPIC|PATTERN...\n"
        "\n"
        "Prints each message of TOPIC as it arrives, one per line: as text when it is\n"
        "printable UTF-8, as JSON when it is msgpack, a synthetic payload of `shmbus pub\n"
        "--size` as a one-line description, anything else in hex.\n"
        "\n"
        "A PATTERN ('*' one segment, '**' any number: 'sensors/**') subscribes to every\n"
        "matching topic, present and future. With a pattern or several arguments each\n"
        "line starts with its topic: \"TOPIC: payload\".\n"
        "\n"
        "  -v, --verbose        start each line with topic, sequence number, publisher,\n"
        "                       publish time (ns, the publisher's CLOCK_MONOTONIC) and\n"
        "                       size; with --json, print one JSON object per message:\n"
        "                       {\"topic\",\"seq\",\"pub\",\"ts_ns\",\"size\",\"payload\"}\n"
        "                       (payload: msgpack as JSON, else text as a string, else\n"
        "                       \"payload_hex\")\n"
        "      --format FMT     print each message as FMT: %t topic, %s sequence, %p\n"
        "                       publisher, %T publish time (ns), %n size, %m payload,\n"
        "                       %% a percent sign, \\n \\t \\\\ escapes; a newline ends it\n"
        "  -j, --json           decode every message as msgpack and print it as JSON\n"
        "  -x, --hex            print every message in hex\n"
        "  -R, --raw            write the bytes of every message as they are, nothing\n"
        "                       between them\n"
        "  -n, --count N        stop after N received messages\n"
        "  -H, --history N      start N messages back (what is still in the ring); a\n"
        "                       topic a pattern finds later is read from its oldest\n"
        "      --reliable       be a reliable subscriber: publishers wait for us\n"
        "      --sample MS      while messages come, read what the ring holds every MS\n"
        "                       milliseconds instead of being woken for each (a fast\n"
        "                       publisher then spends no syscall on us; we miss more,\n"
        "                       and count it; lossy only)\n"
        "      --latency-us N   while messages flow, print them up to N microseconds\n"
        "                       late (default 5000): publishers wake us once a quarter\n"
        "                       of the ring waits, or we wake after N us, so one we\n"
        "                       keep up with spends a syscall per quarter ring, not\n"
        "                       per message;\n"
        "                       after a quiet period the next message wakes us at\n"
        "                       once. Lapped twice within N us by publishers we\n"
        "                       cannot keep up with, or given more than 200,000\n"
        "                       messages a second, we read what the ring holds\n"
        "                       every N us (at most N/5 messages) until we catch up\n"
        "                       (missing more, and counting it) rather than follow\n"
        "                       them on a CPU beside them.\n"
        "                       0: be woken for every message, read all the time\n",
        f);
  fputs("  -t, --timeout S      stop after S seconds without a message\n"
        "      --until-last     stop once every publisher seen sent the last of its\n"
        "                       synthetic payloads (`shmbus pub --count N --size B`)\n"
        "  -q, --quiet          print no messages, only the summary\n" CLI_TOPIC_HELP CLI_BUS_HELP
        "  -h, --help           show this help\n"
        "\n"
        "On exit (also on Ctrl-C) one line goes to stderr:\n"
        "  received R lost L checksum errors E\n"
        "R + L is what was published since we joined (summed over the topics); E counts\n"
        "synthetic payloads whose checksum is wrong or whose sequence number went\n"
        "backwards for their publisher.\n"
        "Exit status: 0 ok, 1 error, 2 bad usage, 3 --timeout ended and nothing was\n"
        "received.\n",
        f);
}

enum echo_mode { ECHO_AUTO, ECHO_JSON, ECHO_HEX, ECHO_RAW };

/* True for text a terminal shows as such: valid UTF-8 without control
 * characters other than tab. */
static bool echo_printable(const unsigned char *p, size_t n) {
  size_t i = 0;

  while (i < n) {
    unsigned char b = p[i];
    size_t k;
    if (b < 0x80) {
      if ((b < 0x20 && b != '\t') || b == 0x7f)
        return false;
      i++;
      continue;
    }
    if (b >= 0xc2 && b <= 0xdf)
      k = 1;
    else if (b >= 0xe0 && b <= 0xef)
      k = 2;
    else if (b >= 0xf0 && b <= 0xf4)
      k = 3;
    else
      return false;
    if (n - i <= k)
      return false;
    for (size_t j = 1; j <= k; j++)
      if ((p[i + j] & 0xc0) != 0x80)
        return false;
    i += k + 1;
  }
  return true;
}

/* Prints a payload the way the mode says, without a line end. */
static void echo_payload(enum echo_mode mode, const unsigned char *p, size_t n,
                         const struct synth_info *syn) {
  char *js;

  switch (mode) {
  case ECHO_RAW:
    fwrite(p, 1, n, stdout);
    return;
  case ECHO_HEX:
    for (size_t i = 0; i < n; i++)
      printf("%02x", p[i]);
    return;
  case ECHO_JSON:
    if ((js = cli_json_payload_text(p, n)) != NULL) {
      fputs(js, stdout);
      free(js);
    } else {
      fprintf(stderr, "shmbus echo: a message of %zu bytes is not msgpack; in hex:\n", n);
      echo_payload(ECHO_HEX, p, n, NULL);
    }
    return;
  case ECHO_AUTO:
    break;
  }
  if (syn != NULL) {
    printf("synthetic pub %u seq %llu of %llu, %zu bytes, checksum %s", syn->pub,
           (unsigned long long)syn->seq, (unsigned long long)syn->total, n,
           syn->checksum_ok ? "ok" : "BAD");
  } else if (echo_printable(p, n)) {
    fwrite(p, 1, n, stdout);
  } else if ((js = cli_json_payload_text(p, n)) != NULL) {
    fputs(js, stdout);
    free(js);
  } else {
    echo_payload(ECHO_HEX, p, n, NULL);
  }
}

/* Prints a string as a JSON string. */
static void echo_json_string(const char *s, size_t n) {
  json_t *v = json_stringn(s, n);
  char *t = v != NULL ? json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;

  fputs(t != NULL ? t : "null", stdout);
  free(t);
  json_decref(v);
}

/* -v --json: one object per message. */
static void echo_json_line(const char *topic, const unsigned char *p, size_t n,
                           const struct shmbus_msg_info *info, const struct synth_info *syn) {
  char *js;

  fputs("{\"topic\":", stdout);
  echo_json_string(topic, strlen(topic));
  printf(",\"seq\":%" PRIu64 ",\"pub\":%" PRIu32 ",\"ts_ns\":%" PRIu64 ",\"size\":%zu", info->seq,
         info->pub_id, info->ts_ns, n);
  if (syn != NULL) {
    printf(",\"synthetic\":{\"pub\":%u,\"seq\":%llu,\"total\":%llu,\"checksum_ok\":%s}", syn->pub,
           (unsigned long long)syn->seq, (unsigned long long)syn->total,
           syn->checksum_ok ? "true" : "false");
  } else if ((js = cli_json_payload_text(p, n)) != NULL) {
    printf(",\"payload\":%s", js);
    free(js);
  } else if (echo_printable(p, n)) {
    fputs(",\"payload\":", stdout);
    echo_json_string((const char *)p, n);
  } else {
    fputs(",\"payload_hex\":\"", stdout);
    echo_payload(ECHO_HEX, p, n, NULL);
    putchar('"');
  }
  fputs("}\n", stdout);
}

/* --format: checked once before anything runs. */
static bool echo_format_ok(const char *f) {
  for (; *f != '\0'; f++) {
    if (*f == '%' && (f[1] == '\0' || strchr("tspTnm%", f[1]) == NULL))
      return false;
    if (*f == '\\' && (f[1] == '\0' || strchr("nt\\", f[1]) == NULL))
      return false;
    if (*f == '%' || *f == '\\')
      f++;
  }
  return true;
}

static void echo_format(const char *f, enum echo_mode mode, const char *topic,
                        const unsigned char *p, size_t n, const struct shmbus_msg_info *info,
                        const struct synth_info *syn) {
  for (; *f != '\0'; f++) {
    if (*f == '\\') {
      f++;
      putchar(*f == 'n' ? '\n' : *f == 't' ? '\t' : '\\');
      continue;
    }
    if (*f != '%') {
      putchar(*f);
      continue;
    }
    switch (*++f) {
    case 't':
      fputs(topic, stdout);
      break;
    case 's':
      printf("%" PRIu64, info->seq);
      break;
    case 'p':
      printf("%" PRIu32, info->pub_id);
      break;
    case 'T':
      printf("%" PRIu64, info->ts_ns);
      break;
    case 'n':
      printf("%zu", n);
      break;
    case 'm':
      echo_payload(mode, p, n, syn);
      break;
    default:
      putchar('%');
      break;
    }
  }
  putchar('\n');
}

struct echo {
  enum echo_mode mode;
  bool quiet, until_last, verbose, show_topic;
  const char *format;
  uint64_t count, got;
  double timeout;
  bool timed_out;
  struct synth_tracker tr;
  struct topicset *ts;
  uv_loop_t *loop;
  uv_timer_t idle; /* --timeout: restarted by every message */
  uv_poll_t sig;
};

static void echo_done(struct echo *e) {
  topicset_stop(e->ts);
  uv_stop(e->loop);
}

static void echo_on_msg(struct topicset_topic *t, const void *data, size_t len,
                        const struct shmbus_msg_info *info, void *arg) {
  struct echo *e = arg;
  const unsigned char *p = data;
  struct synth_info syn;
  bool is_syn = synth_parse(p, len, &syn);

  e->got++;
  if (e->timeout >= 0)
    (void)uv_timer_again(&e->idle);
  if (is_syn)
    (void)synth_track(&e->tr, &syn);
  if (!e->quiet) {
    if (e->format != NULL) {
      echo_format(e->format, e->mode, t->name, p, len, info, is_syn ? &syn : NULL);
    } else if (e->verbose && e->mode == ECHO_JSON) {
      echo_json_line(t->name, p, len, info, is_syn ? &syn : NULL);
    } else if (e->mode == ECHO_RAW) {
      echo_payload(e->mode, p, len, NULL);
    } else {
      if (e->verbose)
        printf("%s seq %" PRIu64 " pub %" PRIu32 " ts_ns %" PRIu64 " size %zu: ", t->name,
               info->seq, info->pub_id, info->ts_ns, len);
      else if (e->show_topic)
        printf("%s: ", t->name);
      echo_payload(e->mode, p, len, is_syn ? &syn : NULL);
      putchar('\n');
    }
  }
  if ((e->count > 0 && e->got >= e->count) || (e->until_last && synth_all_done(&e->tr)))
    echo_done(e);
}

static void echo_on_idle(uv_timer_t *t) {
  struct echo *e = t->data;

  e->timed_out = true;
  echo_done(e);
}

static void echo_on_signal(uv_poll_t *h, int status, int events) {
  struct echo *e = h->data;

  (void)status;
  (void)events;
  (void)uv_poll_stop(h); /* the byte stays in the pipe: once is enough */
  echo_done(e);
}

static void echo_flush(uv_check_t *c) {
  (void)c;
  fflush(stdout);
}

int cli_echo(int argc, char **argv) {
  static const struct option longopts[] = {{"json", no_argument, NULL, 'j'},
                                           {"hex", no_argument, NULL, 'x'},
                                           {"raw", no_argument, NULL, 'R'},
                                           {"verbose", no_argument, NULL, 'v'},
                                           {"format", required_argument, NULL, 0x202},
                                           {"count", required_argument, NULL, 'n'},
                                           {"history", required_argument, NULL, 'H'},
                                           {"reliable", no_argument, NULL, 0x200},
                                           {"timeout", required_argument, NULL, 't'},
                                           {"until-last", no_argument, NULL, 0x201},
                                           {"sample", required_argument, NULL, 0x203},
                                           {"latency-us", required_argument, NULL, 0x204},
                                           {"quiet", no_argument, NULL, 'q'},
                                           {"help", no_argument, NULL, 'h'},
                                           CLI_TOPIC_LONGOPTS,
                                           CLI_BUS_LONGOPTS,
                                           {NULL, 0, NULL, 0}};
  struct cli_bus_args ba;
  struct shmbus_sub_opts so;
  struct topicset_cbs cbs;
  struct echo e;
  uv_loop_t loop;
  uv_check_t flush;
  bool loop_ok = false;
  bool started = false;
  uint32_t sample_ms = 0;
  uint32_t latency_us = ECHO_LATENCY_US;
  shmbus_bus *bus = NULL;
  int sig_fd = -1;
  int status = CLI_EXIT_ERROR;
  int c, rv, i;

  cli_bus_args_init(&ba);
  memset(&so, 0, sizeof(so));
  memset(&e, 0, sizeof(e));
  e.timeout = -1;
  optind = 1;
  while ((c = getopt_long(argc, argv, "jxRvn:H:t:qhru", longopts, NULL)) != -1) {
    switch (c) {
    case 'j':
      e.mode = ECHO_JSON;
      break;
    case 'x':
      e.mode = ECHO_HEX;
      break;
    case 'R':
      e.mode = ECHO_RAW;
      break;
    case 'v':
      e.verbose = true;
      break;
    case 0x202:
      if (!echo_format_ok(optarg)) {
        cli_err(VERB, "--format \"%s\": use %%t %%s %%p %%T %%n %%m %%%% and \\n \\t \\\\ only",
                optarg);
        return CLI_EXIT_USAGE;
      }
      e.format = optarg;
      break;
    case 'n':
      if (!cli_parse_u64(VERB, "--count", optarg, 1, UINT64_MAX, &e.count))
        return CLI_EXIT_USAGE;
      break;
    case 'H':
      if (!cli_parse_u32(VERB, "--history", optarg, 0, 1u << 24, &so.history))
        return CLI_EXIT_USAGE;
      break;
    case 0x200:
      so.reliable = true;
      break;
    case 'r':
    case 'u':
      /* Once short for --reliable and --until-last; a short option now
       * means one thing in every verb (-r is pub's --rate, -u config's
       * --uid). Refused loudly rather than taken as something else. */
      cli_err(VERB, "-%c is not an option of echo any more: say %s", c,
              c == 'r' ? "--reliable" : "--until-last");
      return CLI_EXIT_USAGE;
    case 't':
      if (!cli_parse_seconds(VERB, "--timeout", optarg, &e.timeout))
        return CLI_EXIT_USAGE;
      break;
    case 0x201:
      e.until_last = true;
      break;
    case 0x203:
      if (!cli_parse_u32(VERB, "--sample", optarg, 1, 1000, &sample_ms))
        return CLI_EXIT_USAGE;
      break;
    case 0x204:
      if (!cli_parse_u32(VERB, "--latency-us", optarg, 0, SHMBUS_WAKE_WITHIN_MAX_US, &latency_us))
        return CLI_EXIT_USAGE;
      break;
    case 'q':
      e.quiet = true;
      break;
    case 'h':
      echo_usage(stdout);
      return CLI_EXIT_OK;
    default:
      if ((rv = cli_other_arg(VERB, &ba, &so.topic, c, optarg)) != 0)
        return rv;
      break;
    }
  }
  if (argc - optind < 1) {
    cli_err(VERB, "which topic? (shmbus echo TOPIC|PATTERN...)");
    return cli_usage_error(VERB);
  }
  for (i = optind; i < argc; i++)
    if (topicset_is_pattern(argv[i]) && shmbus_pattern_check(argv[i]) < 0) {
      cli_err(VERB,
              "\"%s\" is not a topic pattern: segments are names, '*' (one segment) or '**' "
              "(any number), e.g. sensors/*/temp, sensors/**",
              argv[i]);
      return cli_usage_error(VERB);
    }
  e.show_topic = argc - optind > 1 || topicset_is_pattern(argv[optind]);
  cli_topic_finish(&so.topic);
  /* A wake threshold: a quarter of the ring (the library clamps to it) or
   * --latency-us, whichever comes first. */
  if (latency_us > 0) {
    so.wake_after = UINT32_MAX;
    so.wake_within_us = latency_us;
  }

  if ((rv = uv_loop_init(&loop)) < 0) {
    cli_err(VERB, "cannot make an event loop: %s", uv_strerror(rv));
    return CLI_EXIT_ERROR;
  }
  loop_ok = true;
  e.loop = &loop;
  /* Ctrl-C and SIGTERM end the loop cleanly, so the summary is printed. */
  if ((sig_fd = cli_signal_fd(VERB)) < 0)
    goto out;
  if ((rv = uv_poll_init(&loop, &e.sig, sig_fd)) < 0 ||
      (rv = uv_poll_start(&e.sig, UV_READABLE, echo_on_signal)) < 0) {
    cli_err(VERB, "cannot watch signals: %s", uv_strerror(rv));
    goto out;
  }
  e.sig.data = &e;
  (void)uv_timer_init(&loop, &e.idle);
  e.idle.data = &e;
  /* Show what was printed whenever the loop is about to wait. */
  (void)uv_check_init(&loop, &flush);
  (void)uv_check_start(&flush, echo_flush);
  uv_unref((uv_handle_t *)&flush);
  if ((bus = cli_bus_open(VERB, &ba, -1)) == NULL)
    goto out;
  cbs.on_msg = echo_on_msg;
  cbs.on_topic = NULL;
  cbs.arg = &e;
  if (topicset_open(&e.ts, bus, &loop, VERB, &so, &cbs) < 0)
    goto out;
  if (sample_ms > 0 && topicset_sample(e.ts, sample_ms) < 0) {
    cli_err(VERB, "out of memory");
    goto out;
  }
  /* A publisher we cannot keep up with: read a ring's worth per
   * --latency-us rather than take a CPU beside it (topicset.h). */
  if (sample_ms == 0 && latency_us > 0 && !so.reliable && topicset_pace(e.ts, latency_us) < 0) {
    cli_err(VERB, "out of memory");
    goto out;
  }
  for (i = optind; i < argc; i++)
    if (topicset_add(e.ts, argv[i]) < 0)
      goto out;
  started = true;
  if (e.timeout >= 0) {
    uint64_t ms = (uint64_t)(e.timeout * 1000.0 + 0.5);
    (void)uv_timer_start(&e.idle, echo_on_idle, ms, ms > 0 ? ms : 1);
  }
  (void)uv_run(&loop, UV_RUN_DEFAULT);
  fflush(stdout);
  status = e.timed_out && e.got == 0 ? CLI_EXIT_NOTHING : CLI_EXIT_OK;

out:
  if (started) {
    uint64_t r, l;
    topicset_totals(e.ts, &r, &l);
    fprintf(stderr, "received %llu lost %llu checksum errors %llu\n", (unsigned long long)r,
            (unsigned long long)l, (unsigned long long)e.tr.errors);
  }
  topicset_close(e.ts);
  e.ts = NULL;
  shmbus_bus_close(bus);
  if (loop_ok)
    cli_loop_close(&loop);
  synth_tracker_free(&e.tr);
  return status;
}
