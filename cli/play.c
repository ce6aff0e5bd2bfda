/* shmbus play: republish an MCAP recording (cli/mcap.h, docs/mcap.md) with
 * its original timing.
 *
 * The file is mapped and read twice with the hostile-input reader: the
 * first pass opens a publisher per channel that --topics selects, creating
 * each topic with the parameters recorded in the channel's metadata (and
 * waits for subscribers when asked); the second pass publishes each message
 * when its log time, relative to the first message's and divided by
 * --rate, has come. --loop repeats the second pass. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mcap.h"

#define VERB "play"

static void play_usage(FILE *f) {
  fprintf(f, "usage: shmbus play [OPTIONS] FILE.mcap\n"
             "\n"
             "Republishes the messages of an MCAP recording (`shmbus record`) with their\n"
             "original timing, each on the topic of its channel. A topic that does not exist\n"
             "yet is created with the parameters recorded in the channel's metadata\n"
             "(shmbus.slots, shmbus.slot_size, shmbus.max_subs, shmbus.max_pubs); an\n"
             "existing topic must have the same ones. A file that ends early (a recorder that\n"
             "was killed) is played up to its last complete chunk.\n"
             "\n"
             "      --rate X         play X times as fast (default 1; 0.5 half as fast; 0: no\n"
             "                       pauses, as fast as the bus takes them)\n"
             "      --topics PATTERN only topics that match PATTERN (may be repeated): topic\n"
             "                       segments, `*` for one segment, `**` for any number\n"
             "      --loop           start over at the end, until Ctrl-C\n"
             "  -w, --wait-subs N    before the first message, wait until every topic has N\n"
             "                       subscribers\n"
             "      --wait-timeout S give up waiting for subscribers after S seconds\n"
             "  -q, --quiet          no summary\n" CLI_BUS_HELP
             "  -h, --help           show this help\n"
             "\n"
             "At the end one line goes to stderr:\n"
             "  played M messages (B bytes) on T topics, waits W\n"
             "W counts the times a reliable subscriber held a message back.\n"
             "Exit status: 0 ok, 1 error or interrupted while waiting for subscribers,\n"
             "2 bad usage.\n");
}

struct play_chan {
  char *topic;
  shmbus_pub *pub;
};

struct play_state {
  shmbus_bus *bus;
  const char *path;
  char **patterns;
  size_t n_patterns;
  double rate;
  int sig_fd;
  struct play_chan **ch; /* by channel id: 65536 entries */
  size_t n_topics;
  uint64_t t0;    /* the first message's log time in this pass */
  uint64_t wall0; /* when it was published */
  bool started;
  uint64_t messages;
  uint64_t bytes;
  uint64_t waits;
  bool failed;
};

static bool play_selected(const struct play_state *st, const char *topic) {
  if (st->n_patterns == 0)
    return true;
  for (size_t i = 0; i < st->n_patterns; i++)
    if (shmbus_pattern_match(st->patterns[i], topic) == 1) /* a bad name in the file: no */
      return true;
  return false;
}

/* A recorded parameter: a whole number in [1, UINT32_MAX], or 0. */
static uint32_t play_param(const struct mcap_channel *ch, const char *key) {
  for (size_t i = 0; i < ch->n_meta; i++) {
    if (strcmp(ch->meta[i].key, key) == 0) {
      char *end;
      unsigned long long v;
      errno = 0;
      v = strtoull(ch->meta[i].value, &end, 10);
      if (errno != 0 || end == ch->meta[i].value || *end != '\0' || v > UINT32_MAX ||
          ch->meta[i].value[0] == '-')
        return 0;
      return (uint32_t)v;
    }
  }
  return 0;
}

/* Pass 1: a publisher per selected channel. */
static int play_on_channel(void *ctx, const struct mcap_channel *ch) {
  struct play_state *st = ctx;
  struct shmbus_topic_opts o;
  struct play_chan *pc;
  int rv;

  if (!play_selected(st, ch->topic))
    return 0;
  memset(&o, 0, sizeof(o));
  o.slots = play_param(ch, "shmbus.slots");
  o.slot_size = play_param(ch, "shmbus.slot_size");
  o.max_subs = play_param(ch, "shmbus.max_subs");
  o.max_pubs = play_param(ch, "shmbus.max_pubs");
  if (o.slots == 0 || o.slot_size == 0 || o.max_subs == 0 || o.max_pubs == 0)
    memset(&o, 0, sizeof(o)); /* not recorded by shmbus: the topic as it is */
  /* Two channels of one topic share its publisher. */
  for (size_t i = 0; i < 65536; i++) {
    if (st->ch[i] != NULL && strcmp(st->ch[i]->topic, ch->topic) == 0) {
      st->ch[ch->id] = st->ch[i];
      return 0;
    }
  }
  if ((pc = calloc(1, sizeof(*pc))) == NULL || (pc->topic = strdup(ch->topic)) == NULL) {
    free(pc);
    cli_err(VERB, "out of memory");
    return -ENOMEM;
  }
  rv = shmbus_pub_open(st->bus, ch->topic, o.slots != 0 ? &o : NULL, &pc->pub);
  if (rv < 0) {
    if (rv == SHMBUS_EMISMATCH)
      cli_err(VERB,
              "topic \"%s\" exists with other parameters than recorded (slots %u, slot size "
              "%u, max subs %u, max pubs %u)",
              ch->topic, o.slots, o.slot_size, o.max_subs, o.max_pubs);
    else
      cli_fail(VERB, st->bus, rv, "cannot publish to \"%s\"", ch->topic);
    free(pc->topic);
    free(pc);
    return rv;
  }
  st->ch[ch->id] = pc;
  st->n_topics++;
  return 0;
}

/* Waits until `wall` (CLOCK_MONOTONIC ns); false when a signal came. */
static bool play_wait_until(struct play_state *st, uint64_t wall) {
  for (;;) {
    uint64_t now = cli_now_ns();
    if (cli_stopping)
      return false;
    if (now >= wall)
      return true;
    if (wall - now > 2000000u)
      (void)cli_wait(st->sig_fd, NULL, (int)((wall - now) / 1000000u) - 1);
    else
      cli_sleep_until_ns(wall);
  }
}

/* Pass 2: each message at its time. */
static int play_on_message(void *ctx, const struct mcap_channel *ch, const struct mcap_message *m) {
  struct play_state *st = ctx;
  struct play_chan *pc = st->ch[ch->id];
  int rv;

  if (pc == NULL)
    return 0;
  if (!st->started) {
    st->started = true;
    st->t0 = m->log_time;
    st->wall0 = cli_now_ns();
  } else if (st->rate > 0 && m->log_time > st->t0) {
    double dt = (double)(m->log_time - st->t0) / st->rate;
    if (!play_wait_until(st, st->wall0 + (uint64_t)dt))
      return 1;
  }
  for (;;) {
    rv = shmbus_pub_publish(pc->pub, m->data, m->len);
    if (rv != SHMBUS_EFULL)
      break;
    /* A reliable subscriber has not read yet: wait for it, in slices
     * short enough to notice Ctrl-C. */
    st->waits++;
    while ((rv = shmbus_pub_wait(pc->pub, 100)) == -ETIMEDOUT)
      if (cli_stopping)
        return 1;
    if (rv < 0)
      break;
  }
  if (rv == SHMBUS_ETOOBIG) {
    cli_err(VERB, "a message of %zu bytes does not fit topic \"%s\" (slot size %zu)", m->len,
            pc->topic, shmbus_pub_max_size(pc->pub));
    st->failed = true;
    return 1;
  }
  if (rv < 0) {
    cli_fail(VERB, st->bus, rv, "cannot publish to \"%s\"", pc->topic);
    st->failed = true;
    return 1;
  }
  st->messages++;
  st->bytes += m->len;
  return cli_stopping ? 1 : 0;
}

/* Waits until every publisher has `n` subscribers; -1 after a message. */
static int play_wait_subs(struct play_state *st, uint32_t n, double seconds) {
  uint64_t end = seconds >= 0 ? cli_now_ns() + (uint64_t)(seconds * 1e9) : UINT64_MAX;

  for (size_t i = 0; i < 65536; i++) {
    struct play_chan *pc = st->ch[i];
    int rv;
    if (pc == NULL)
      continue;
    for (;;) {
      if (cli_stopping) {
        cli_err(VERB, "interrupted while waiting for %u subscribers", n);
        return -1;
      }
      rv = shmbus_pub_wait_subs(pc->pub, n, 100);
      if (rv >= 0)
        break;
      if (rv != -ETIMEDOUT) {
        cli_fail(VERB, st->bus, rv, "waiting for %u subscribers", n);
        return -1;
      }
      if (cli_now_ns() >= end) {
        cli_err(VERB, "%d of %u subscribers attached to \"%s\" after %g s; giving up",
                shmbus_pub_subscribers(pc->pub), n, pc->topic, seconds);
        return -1;
      }
    }
  }
  return 0;
}

int cli_play(int argc, char **argv) {
  static const struct option longopts[] = {{"rate", required_argument, NULL, 0x200},
                                           {"topics", required_argument, NULL, 0x201},
                                           {"loop", no_argument, NULL, 0x202},
                                           {"wait-subs", required_argument, NULL, 'w'},
                                           {"wait-timeout", required_argument, NULL, 0x203},
                                           {"quiet", no_argument, NULL, 'q'},
                                           {"help", no_argument, NULL, 'h'},
                                           CLI_BUS_LONGOPTS,
                                           {NULL, 0, NULL, 0}};
  struct play_state st;
  struct cli_bus_args ba;
  struct mcap_read_cb cb1 = {play_on_channel, NULL, NULL}, cb2 = {NULL, play_on_message, NULL};
  struct mcap_read_result res;
  bool loop = false, quiet = false;
  uint32_t wait_subs = 0;
  double wait_timeout = -1;
  const void *map = NULL;
  size_t len = 0;
  int status = CLI_EXIT_ERROR;
  int c, rv;

  memset(&st, 0, sizeof(st));
  st.rate = 1;
  st.sig_fd = -1;
  cli_bus_args_init(&ba);
  optind = 1;
  while ((c = getopt_long(argc, argv, "w:qh", longopts, NULL)) != -1) {
    switch (c) {
    case 0x200:
      if (!cli_parse_seconds(VERB, "--rate", optarg, &st.rate))
        goto usage;
      break;
    case 0x201: {
      char **p;
      if (shmbus_pattern_check(optarg) < 0) {
        cli_err(VERB,
                "--topics \"%s\" is not a pattern: topic segments, `*` for one segment, `**` "
                "for any number, each alone in its segment (docs/api.md, \"Topic patterns\")",
                optarg);
        goto usage;
      }
      if ((p = realloc(st.patterns, (st.n_patterns + 1) * sizeof(*p))) == NULL) {
        cli_err(VERB, "out of memory");
        goto out;
      }
      st.patterns = p;
      st.patterns[st.n_patterns++] = optarg;
      break;
    }
    case 0x202:
      loop = true;
      break;
    case 'w':
      if (!cli_parse_u32(VERB, "--wait-subs", optarg, 0, 4096, &wait_subs))
        goto usage;
      break;
    case 0x203:
      if (!cli_parse_seconds(VERB, "--wait-timeout", optarg, &wait_timeout))
        goto usage;
      break;
    case 'q':
      quiet = true;
      break;
    case 'h':
      play_usage(stdout);
      status = CLI_EXIT_OK;
      goto out;
    default:
      if ((rv = cli_other_arg(VERB, &ba, NULL, c, optarg)) != 0) {
        status = rv;
        goto out;
      }
      break;
    }
  }
  if (argc - optind != 1) {
    cli_err(VERB, argc - optind < 1 ? "which file? (shmbus play FILE.mcap)" : "one file only");
    status = cli_usage_error(VERB);
    goto out;
  }
  st.path = argv[optind];

  if (cli_map_file(VERB, st.path, &map, &len) < 0)
    goto out;
  if ((st.ch = calloc(65536, sizeof(*st.ch))) == NULL) {
    cli_err(VERB, "out of memory");
    goto out;
  }
  if ((st.sig_fd = cli_signal_fd(VERB)) < 0)
    goto out;
  if ((st.bus = cli_bus_open(VERB, &ba, -1)) == NULL)
    goto out;

  rv = mcap_read(map, len, &cb1, &st, &res);
  if (rv == -EBADMSG) {
    cli_err(VERB, "%s: %s", st.path, res.error);
    goto out;
  }
  if (rv < 0) /* a publisher could not be opened: said so already, or out of memory */
    goto out;
  if (res.truncated)
    cli_err(VERB,
            "%s ends early (a recorder that was killed?): playing the %" PRIu64
            " messages of its complete chunks",
            st.path, res.messages);
  if (st.n_topics == 0) {
    cli_err(VERB, "%s has no channel that --topics selects", st.path);
    goto out;
  }
  if (wait_subs > 0 && play_wait_subs(&st, wait_subs, wait_timeout) < 0)
    goto out;
  do {
    uint64_t before = st.messages;
    st.started = false;
    rv = mcap_read(map, len, &cb2, &st, &res);
    if (st.failed)
      goto out;
    if (rv < 0) {
      cli_err(VERB, "%s: %s", st.path, rv == -EBADMSG ? res.error : shmbus_strerror(rv));
      goto out;
    }
    if (st.messages == before)
      break; /* nothing selected to play: --loop would spin */
  } while (loop && !cli_stopping);
  status = CLI_EXIT_OK;

out:
  if (!quiet && st.bus != NULL)
    fprintf(stderr,
            "played %" PRIu64 " messages (%" PRIu64 " bytes) on %zu topics, waits %" PRIu64 "\n",
            st.messages, st.bytes, st.n_topics, st.waits);
  if (st.ch != NULL) {
    for (size_t i = 0; i < 65536; i++) {
      struct play_chan *pc = st.ch[i];
      if (pc == NULL)
        continue;
      /* Shared by channels of one topic: clear every reference. */
      for (size_t j = i; j < 65536; j++)
        if (st.ch[j] == pc)
          st.ch[j] = NULL;
      free(pc->topic);
      free(pc);
    }
  }
  free(st.ch);
  shmbus_bus_close(st.bus);
  cli_unmap_file(map, len);
  free(st.patterns);
  return status;

usage:
  free(st.patterns);
  return CLI_EXIT_USAGE;
}
