/* shmbus pub: publish text, stdin lines, JSON (as msgpack), a file, or
 * synthetic payloads. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "json.h"
#include "synth.h"

#define VERB "pub"

static void pub_usage(FILE *f) {
  fprintf(f,
          "usage: shmbus pub [OPTIONS] TOPIC [TEXT]\n"
          "\n"
          "Publishes TEXT as one message; without TEXT, --json or --file, each line of\n"
          "stdin (without its newline) as one message.\n"
          "\n"
          "  -j, --json JSON      publish the JSON value JSON encoded as msgpack\n"
          "  -f, --file FILE      publish the bytes of FILE as one message (- for stdin;\n"
          "                       at most the slot size: 64M, or --slot-size)\n"
          "  -n, --count N        publish the message N times; with --size, N synthetic\n"
          "                       payloads carrying publisher id, sequence number and\n"
          "                       checksum (`shmbus echo` verifies them)\n"
          "  -s, --size BYTES     synthetic payloads of BYTES bytes (at least %u; K/M)\n"
          "  -r, --rate HZ        messages per second (default 0: as fast as possible)\n"
          "  -w, --wait-subs N    wait until N subscribers are attached before the first\n"
          "                       message\n"
          "      --wait-timeout S give up waiting for subscribers after S seconds\n"
          "                       (default: wait as long as it takes)\n"
          "  -l, --linger S       stay attached S seconds after the last message, so a\n"
          "                       reader that starts later still finds it in history\n"
          "  -q, --quiet          no summary\n" CLI_TOPIC_HELP CLI_BUS_HELP
          "  -h, --help           show this help\n"
          "\n"
          "A reliable subscriber that has not read holds the publisher back: it waits\n"
          "(counted as waits). At the end `published N waits W` goes to stderr.\n"
          "Ctrl-C stops early and still prints the summary.\n"
          "Exit status: 0 all published, 1 error or interrupted, 2 bad usage.\n",
          SYNTH_HEADER);
}

struct pub_state {
  int sig_fd; /* readable once Ctrl-C or SIGTERM came */
  shmbus_bus *bus;
  shmbus_pub *pub;
  const char *topic;
  uint64_t published;
  uint64_t waits;
  double rate;
  uint64_t start_ns;
  uint64_t n; /* messages so far, for pacing */
};

/* Sleeps until message number st->n is due at --rate, or until Ctrl-C /
 * SIGTERM (then pub_send sees cli_stopping). The bulk of a long wait is a
 * poll on the signal pipe, which a signal ends whenever it comes (before
 * the poll or during it); the last millisecond, where poll is too coarse,
 * is a clock_nanosleep to the exact time. */
static void pub_pace(struct pub_state *st) {
  uint64_t due;

  if (st->rate <= 0)
    return;
  if (st->n == 0)
    st->start_ns = cli_now_ns();
  due = st->start_ns + (uint64_t)((double)st->n * 1e9 / st->rate);
  for (;;) {
    uint64_t now = cli_now_ns();
    uint64_t ms;
    if (cli_stopping || now >= due)
      return;
    if (due - now <= 2000000u)
      break;
    ms = (due - now) / 1000000u - 1;
    if (cli_wait(st->sig_fd, NULL, ms > 1000000u ? 1000000 : (int)ms) > 0)
      return;
  }
  cli_sleep_until_ns(due);
}

/* Publishes one message, waiting while reliable subscribers hold the ring
 * full. Returns 0 or prints why not and returns -1. */
static int pub_send(struct pub_state *st, const void *data, size_t len) {
  int rv;

  pub_pace(st);
  st->n++;
  for (;;) {
    if (cli_stopping) {
      cli_err(VERB, "interrupted");
      return -1;
    }
    rv = shmbus_pub_publish(st->pub, data, len);
    if (rv != SHMBUS_EFULL)
      break;
    st->waits++;
    /* Bounded waits: the loop re-checks, and a reliable reader that died is
     * evicted by the daemon meanwhile. */
    if ((rv = shmbus_pub_wait(st->pub, 100)) < 0 && rv != -ETIMEDOUT)
      break;
  }
  if (rv == SHMBUS_ETOOBIG) {
    cli_err(VERB,
            "a message of %zu bytes is larger than topic \"%s\" allows: its slot size is %zu "
            "bytes (a new topic takes --slot-size)",
            len, st->topic, shmbus_pub_max_size(st->pub));
    return -1;
  }
  if (rv < 0) {
    cli_fail(VERB, st->bus, rv, "cannot publish to \"%s\"", st->topic);
    return -1;
  }
  st->published++;
  return 0;
}

/* Waits for `n` subscribers, at most `seconds` (< 0: forever), in slices
 * short enough to notice Ctrl-C. Returns 0, or -1 after printing why. */
static int pub_wait_subs(struct pub_state *st, uint32_t n, double seconds) {
  uint64_t end = seconds >= 0 ? cli_now_ns() + (uint64_t)(seconds * 1e9) : UINT64_MAX;
  int rv;

  for (;;) {
    uint64_t now = cli_now_ns();
    int ms = 100;
    if (cli_stopping) {
      cli_err(VERB, "interrupted while waiting for %u subscribers", n);
      return -1;
    }
    if (end != UINT64_MAX && (end - now) / 1000000u < (uint64_t)ms)
      ms = now >= end ? 0 : (int)((end - now) / 1000000u);
    rv = shmbus_pub_wait_subs(st->pub, n, ms);
    if (rv >= 0)
      return 0;
    if (rv != -ETIMEDOUT) {
      cli_fail(VERB, st->bus, rv, "waiting for %u subscribers", n);
      return -1;
    }
    if (cli_now_ns() >= end) {
      cli_err(VERB, "%d of %u subscribers attached to \"%s\" after %g s; giving up",
              shmbus_pub_subscribers(st->pub), n, st->topic, seconds);
      return -1;
    }
  }
}

/* Reads all of `fd` into a malloc'd buffer, at most `max` bytes: -EFBIG
 * as soon as there is more (so /dev/zero is refused after max + 1 bytes,
 * not when memory runs out). */
static int pub_slurp(int fd, size_t max, char **out, size_t *len) {
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);

  if (buf == NULL)
    return -ENOMEM;
  for (;;) {
    ssize_t got;
    if (n == cap) {
      size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
      char *nb;
      if (ncap <= cap) {
        free(buf);
        return -EFBIG;
      }
      if ((nb = realloc(buf, ncap)) == NULL) {
        free(buf);
        return -ENOMEM;
      }
      buf = nb;
      cap = ncap;
    }
    got = read(fd, buf + n, cap - n);
    if (got < 0 && errno == EINTR && !cli_stopping)
      continue;
    if (got < 0) {
      int e = -errno;
      free(buf);
      return e;
    }
    if (got == 0)
      break;
    n += (size_t)got;
    if (n > max) {
      free(buf);
      return -EFBIG;
    }
  }
  *out = buf;
  *len = n;
  return 0;
}

/* Reads --file FILE ("-": stdin) whole, refusing what no topic could take
 * (more than `max` bytes) and what is no file's content (a directory).
 * Returns 0, or -1 after printing why. */
static int pub_read_file(const char *file, size_t max, char **data, size_t *len) {
  struct stat st;
  int fd = cli_open_read(file);
  int rv;

  if (fd < 0) {
    cli_err(VERB, "cannot open %s: %s", file, strerror(errno));
    return -1;
  }
  if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    cli_err(VERB, "cannot publish %s: it is a directory (--file takes a file)", file);
    rv = -1;
  } else if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size > max) {
    cli_err(VERB, "%s has %llu bytes, more than the %zu a message may have%s", file,
            (unsigned long long)st.st_size, max,
            max < (64u << 20) ? " on this topic (--slot-size)" : "");
    rv = -1;
  } else if ((rv = pub_slurp(fd, max, data, len)) == -EFBIG) {
    cli_err(VERB, "%s has more than the %zu bytes a message may have%s", file, max,
            max < (64u << 20) ? " on this topic (--slot-size)" : "");
    rv = -1;
  } else if (rv < 0) {
    cli_err(VERB, "cannot read %s: %s", file, strerror(-rv));
    rv = -1;
  }
  if (fd != 0)
    close(fd);
  return rv;
}

/* Stays attached for `seconds`, answering the daemon meanwhile. */
static void pub_linger(struct pub_state *st, double seconds) {
  uint64_t end = cli_now_ns() + (uint64_t)(seconds * 1e9);

  for (;;) {
    uint64_t now = cli_now_ns();
    bool up = shmbus_bus_fd(st->bus) != SHMBUS_OS_FD_INVALID;
    int ms, ready;
    if (now >= end || cli_stopping)
      return;
    ms = (int)((end - now + 999999u) / 1000000u);
    /* While disconnected, try to reconnect now and then. */
    if (!up && ms > 100)
      ms = 100;
    ready = cli_wait(st->sig_fd, up ? st->bus : NULL, ms);
    if (ready < 0 || !up || (ready & CLI_WAIT_BUS) != 0)
      (void)shmbus_bus_process(st->bus);
  }
}

int cli_pub(int argc, char **argv) {
  static const struct option longopts[] = {{"json", required_argument, NULL, 'j'},
                                           {"file", required_argument, NULL, 'f'},
                                           {"count", required_argument, NULL, 'n'},
                                           {"size", required_argument, NULL, 's'},
                                           {"rate", required_argument, NULL, 'r'},
                                           {"wait-subs", required_argument, NULL, 'w'},
                                           {"linger", required_argument, NULL, 'l'},
                                           {"wait-timeout", required_argument, NULL, 'W'},
                                           CLI_VERB_LONGOPTS};
  struct cli_bus_args ba;
  struct shmbus_topic_opts topt;
  struct pub_state st;
  const char *json = NULL, *file = NULL, *text = NULL;
  uint64_t count = 1;
  uint32_t size = 0, wait_subs = 0;
  double linger = 0, wait_timeout = -1;
  int sig_fd;
  bool quiet = false;
  char *data = NULL;
  size_t len = 0;
  msgpack_sbuffer sb;
  int status = CLI_EXIT_ERROR;
  int c, rv;

  cli_bus_args_init(&ba);
  memset(&topt, 0, sizeof(topt));
  memset(&st, 0, sizeof(st));
  msgpack_sbuffer_init(&sb);
  optind = 1;
  while ((c = getopt_long(argc, argv, "j:f:n:s:r:w:l:qh", longopts, NULL)) != -1) {
    switch (c) {
    case 'j':
      json = optarg;
      break;
    case 'f':
      file = optarg;
      break;
    case 'n':
      if (!cli_parse_u64(VERB, "--count", optarg, 0, UINT64_MAX, &count))
        return CLI_EXIT_USAGE;
      break;
    case 's': {
      uint64_t v;
      if (!cli_parse_size(VERB, "--size", optarg, SYNTH_HEADER, 64u << 20, &v))
        return CLI_EXIT_USAGE;
      size = (uint32_t)v;
      break;
    }
    case 'r':
      if (!cli_parse_seconds(VERB, "--rate", optarg, &st.rate))
        return CLI_EXIT_USAGE;
      break;
    case 'w':
      if (!cli_parse_u32(VERB, "--wait-subs", optarg, 0, 4096, &wait_subs))
        return CLI_EXIT_USAGE;
      break;
    case 'l':
      if (!cli_parse_seconds(VERB, "--linger", optarg, &linger))
        return CLI_EXIT_USAGE;
      break;
    case 'W':
      if (!cli_parse_seconds(VERB, "--wait-timeout", optarg, &wait_timeout))
        return CLI_EXIT_USAGE;
      break;
    default:
      if ((rv = cli_verb_arg(VERB, &ba, &topt, c, optarg, &quiet, pub_usage)) >= 0)
        return rv;
      break;
    }
  }
  if (optind >= argc || argc - optind > 2) {
    cli_err(VERB, optind >= argc ? "which topic? (shmbus pub TOPIC [TEXT])"
                                 : "too many arguments (quote TEXT with spaces)");
    return cli_usage_error(VERB);
  }
  st.topic = argv[optind];
  if (cli_reserved_topic(VERB, st.topic, "publish to"))
    return CLI_EXIT_ERROR;
  if (argc - optind == 2)
    text = argv[optind + 1];
  if ((text != NULL) + (json != NULL) + (file != NULL) + (size != 0) > 1) {
    cli_err(VERB, "give one of TEXT, --json, --file and --size");
    return CLI_EXIT_USAGE;
  }
  cli_topic_finish(&topt);

  /* Everything that can be wrong with the input is found before the bus
   * is touched. */
  if (json != NULL) {
    char err[256];
    if (cli_json_to_msgpack(json, strlen(json), &sb, err, sizeof(err)) < 0) {
      cli_err(VERB, "malformed JSON: %s", err);
      goto out;
    }
  } else if (file != NULL) {
    /* No message is larger than a slot can be: the topic's (when this
     * command states it), else the largest any topic may have. */
    if (pub_read_file(file, topt.slot_size != 0 ? topt.slot_size : 64u << 20, &data, &len) < 0)
      goto out;
  } else if (size != 0 && (data = malloc(size)) == NULL) {
    cli_err(VERB, "out of memory");
    goto out;
  }

  /* Ctrl-C and SIGTERM stop publishing; the summary still goes out. */
  if ((sig_fd = cli_signal_fd(VERB)) < 0)
    goto out;
  st.sig_fd = sig_fd;
  if ((st.bus = cli_bus_open(VERB, &ba, -1)) == NULL)
    goto out;
  if ((rv = shmbus_pub_open(st.bus, st.topic, &topt, &st.pub)) < 0) {
    cli_fail(VERB, st.bus, rv, "cannot publish to \"%s\"", st.topic);
    goto out;
  }
  if (wait_subs > 0 && pub_wait_subs(&st, wait_subs, wait_timeout) < 0)
    goto out;

  if (size != 0) {
    uint32_t id = (uint32_t)getpid();
    for (uint64_t i = 0; i < count; i++) {
      synth_fill(data, size, id, i, count);
      if (pub_send(&st, data, size) < 0)
        goto out;
    }
  } else if (text != NULL || json != NULL || file != NULL) {
    const void *p = text != NULL ? (const void *)text : json != NULL ? sb.data : data;
    size_t n = text != NULL ? strlen(text) : json != NULL ? sb.size : len;
    for (uint64_t i = 0; i < count; i++)
      if (pub_send(&st, p, n) < 0)
        goto out;
  } else {
    /* stdin, one message per line; --count repeats each. */
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = cli_getline(&line, &cap, stdin)) >= 0) {
      if (n > 0 && line[n - 1] == '\n')
        n--;
      for (uint64_t i = 0; i < count; i++) {
        if (pub_send(&st, line, (size_t)n) < 0) {
          free(line);
          goto out;
        }
      }
    }
    free(line);
    if (cli_stopping) {
      cli_err(VERB, "interrupted");
      goto out;
    }
    if (ferror(stdin)) {
      cli_err(VERB, "reading stdin: %s", strerror(errno));
      goto out;
    }
  }
  if (linger > 0)
    pub_linger(&st, linger);
  status = CLI_EXIT_OK;

out:
  if (st.pub != NULL && !quiet)
    fprintf(stderr, "published %llu waits %llu\n", (unsigned long long)st.published,
            (unsigned long long)st.waits);
  shmbus_bus_close(st.bus);
  msgpack_sbuffer_destroy(&sb);
  free(data);
  return status;
}
