/* shmbus echo: print messages as they arrive, and one summary line. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "synth.h"

#define VERB "echo"

static void echo_usage(FILE *f) {
  fprintf(f,
          "usage: shmbus echo [OPTIONS] TOPIC\n"
          "\n"
          "Prints each message of TOPIC as it arrives, one per line: as text when it is\n"
          "printable UTF-8, as JSON when it is msgpack, a synthetic payload of `shmbus pub\n"
          "--size` as a one-line description, anything else in hex.\n"
          "\n"
          "  -j, --json           decode every message as msgpack and print it as JSON\n"
          "  -x, --hex            print every message in hex\n"
          "  -R, --raw            write the bytes of every message as they are, nothing\n"
          "                       between them\n"
          "  -n, --count N        stop after N received messages\n"
          "  -H, --history N      start N messages back (what is still in the ring)\n"
          "      --reliable       be a reliable subscriber: publishers wait for us\n"
          "  -t, --timeout S      stop after S seconds without a message\n"
          "      --until-last     stop once every publisher seen sent the last of its\n"
          "                       synthetic payloads (`shmbus pub --count N --size B`)\n"
          "  -q, --quiet          print no messages, only the summary\n" CLI_TOPIC_HELP CLI_BUS_HELP
          "  -h, --help           show this help\n"
          "\n"
          "On exit (also on Ctrl-C) one line goes to stderr:\n"
          "  received R lost L checksum errors E\n"
          "R + L is what was published since we joined; E counts synthetic payloads whose\n"
          "checksum is wrong or whose sequence number went backwards for their publisher.\n"
          "Exit status: 0 ok, 1 error, 2 bad usage, 3 --timeout ended and nothing was\n"
          "received.\n");
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

static void echo_hex(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    printf("%02x", p[i]);
  putchar('\n');
}

static void echo_print(enum echo_mode mode, const unsigned char *p, size_t n,
                       const struct synth_info *syn) {
  char *js;

  switch (mode) {
  case ECHO_RAW:
    fwrite(p, 1, n, stdout);
    return;
  case ECHO_HEX:
    echo_hex(p, n);
    return;
  case ECHO_JSON:
    if ((js = cli_json_payload_text(p, n)) != NULL) {
      puts(js);
      free(js);
    } else {
      fprintf(stderr, "shmbus echo: a message of %zu bytes is not msgpack; in hex:\n", n);
      echo_hex(p, n);
    }
    return;
  case ECHO_AUTO:
    break;
  }
  if (syn != NULL) {
    printf("synthetic pub %u seq %llu of %llu, %zu bytes, checksum %s\n", syn->pub,
           (unsigned long long)syn->seq, (unsigned long long)syn->total, n,
           syn->checksum_ok ? "ok" : "BAD");
  } else if (echo_printable(p, n)) {
    fwrite(p, 1, n, stdout);
    putchar('\n');
  } else if ((js = cli_json_payload_text(p, n)) != NULL) {
    puts(js);
    free(js);
  } else {
    echo_hex(p, n);
  }
}

int cli_echo(int argc, char **argv) {
  static const struct option longopts[] = {{"json", no_argument, NULL, 'j'},
                                           {"hex", no_argument, NULL, 'x'},
                                           {"raw", no_argument, NULL, 'R'},
                                           {"count", required_argument, NULL, 'n'},
                                           {"history", required_argument, NULL, 'H'},
                                           {"reliable", no_argument, NULL, 0x200},
                                           {"timeout", required_argument, NULL, 't'},
                                           {"until-last", no_argument, NULL, 0x201},
                                           {"quiet", no_argument, NULL, 'q'},
                                           {"help", no_argument, NULL, 'h'},
                                           CLI_TOPIC_LONGOPTS,
                                           CLI_BUS_LONGOPTS,
                                           {NULL, 0, NULL, 0}};
  struct cli_bus_args ba;
  struct shmbus_sub_opts so;
  struct shmbus_sub_stats ss;
  struct synth_tracker tr;
  enum echo_mode mode = ECHO_AUTO;
  uint64_t count = 0, got = 0, last_ns;
  double timeout = -1;
  bool quiet = false, until_last = false, timed_out = false;
  shmbus_bus *bus = NULL;
  shmbus_sub *sub = NULL;
  unsigned char *buf = NULL;
  size_t cap;
  int sig_fd = -1;
  int status = CLI_EXIT_ERROR;
  const char *topic;
  int c, rv;

  cli_bus_args_init(&ba);
  memset(&so, 0, sizeof(so));
  memset(&ss, 0, sizeof(ss));
  memset(&tr, 0, sizeof(tr));
  optind = 1;
  while ((c = getopt_long(argc, argv, "jxRn:H:t:qhru", longopts, NULL)) != -1) {
    switch (c) {
    case 'j':
      mode = ECHO_JSON;
      break;
    case 'x':
      mode = ECHO_HEX;
      break;
    case 'R':
      mode = ECHO_RAW;
      break;
    case 'n':
      if (!cli_parse_u64(VERB, "--count", optarg, 1, UINT64_MAX, &count))
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
      if (!cli_parse_seconds(VERB, "--timeout", optarg, &timeout))
        return CLI_EXIT_USAGE;
      break;
    case 0x201:
      until_last = true;
      break;
    case 'q':
      quiet = true;
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
  if (argc - optind != 1) {
    cli_err(VERB, argc - optind < 1 ? "which topic? (shmbus echo TOPIC)" : "one topic only");
    return cli_usage_error(VERB);
  }
  topic = argv[optind];
  cli_topic_finish(&so.topic);

  /* Ctrl-C and SIGTERM end the loop cleanly, so the summary is printed. */
  if ((sig_fd = cli_signal_fd(VERB)) < 0)
    goto out;
  if ((bus = cli_bus_open(VERB, &ba, -1)) == NULL)
    goto out;
  if ((rv = shmbus_sub_open(bus, topic, &so, &sub)) < 0) {
    cli_fail(VERB, bus, rv, "cannot subscribe to \"%s\"", topic);
    goto out;
  }
  cap = shmbus_sub_max_size(sub);
  if ((buf = malloc(cap > 0 ? cap : 1)) == NULL) {
    cli_err(VERB, "out of memory for messages of %zu bytes", cap);
    goto out;
  }
  last_ns = cli_now_ns();
  for (;;) {
    struct shmbus_msg_info info;
    struct pollfd p[3];
    int ms = -1;

    if (count > 0 && got >= count)
      break;
    rv = shmbus_sub_try_recv(sub, buf, cap, &info);
    if (rv >= 0) {
      struct synth_info syn;
      bool is_syn = synth_parse(buf, (size_t)rv, &syn);
      got++;
      last_ns = cli_now_ns();
      if (is_syn)
        (void)synth_track(&tr, &syn);
      if (!quiet)
        echo_print(mode, buf, (size_t)rv, is_syn ? &syn : NULL);
      if (until_last && synth_all_done(&tr))
        break;
      continue;
    }
    if (rv != -EAGAIN) {
      cli_fail(VERB, bus, rv, "receiving from \"%s\"", topic);
      goto out;
    }
    /* Nothing waiting: show what we printed, then sleep. */
    fflush(stdout);
    if (shmbus_sub_arm(sub) == 0)
      continue;
    if (timeout >= 0) {
      uint64_t end = last_ns + (uint64_t)(timeout * 1e9), now = cli_now_ns();
      if (now >= end) {
        timed_out = true;
        break;
      }
      ms = (int)((end - now + 999999u) / 1000000u);
    }
    p[0] = (struct pollfd){shmbus_sub_fd(sub), POLLIN, 0};
    p[1] = (struct pollfd){sig_fd, POLLIN, 0};
    p[2] = (struct pollfd){shmbus_bus_fd(bus), POLLIN, 0};
    /* While disconnected from the daemon, try to reconnect now and then. */
    if (p[2].fd < 0 && (ms < 0 || ms > 100))
      ms = 100;
    rv = poll(p, p[2].fd >= 0 ? 3 : 2, ms);
    if (rv < 0 && errno != EINTR) {
      cli_err(VERB, "poll: %s", strerror(errno));
      goto out;
    }
    if (p[1].revents != 0)
      break;
    if (p[0].revents != 0) {
      uint64_t v;
      (void)!read(p[0].fd, &v, sizeof(v));
    }
    if (p[2].fd < 0 || p[2].revents != 0)
      (void)shmbus_bus_process(bus);
  }
  fflush(stdout);
  status = timed_out && got == 0 ? CLI_EXIT_NOTHING : CLI_EXIT_OK;

out:
  if (sub != NULL) {
    shmbus_sub_stats(sub, &ss);
    fprintf(stderr, "received %llu lost %llu checksum errors %llu\n",
            (unsigned long long)ss.received, (unsigned long long)ss.lost,
            (unsigned long long)tr.errors);
  }
  shmbus_bus_close(bus);
  free(buf);
  synth_tracker_free(&tr);
  return status;
}
