/* rate: `shmbus hz` and `shmbus bw`. See rate.h. */
#include "rate.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli.h"
#include "json.h"
#include "topicset.h"

#define RATE_DEFAULT_WINDOW 1000u
#define RATE_MAX_WINDOW (1u << 24)
#define RATE_SAMPLE_MS 10u

/* ---- the window ---------------------------------------------------------------- */

int rate_window_init(struct rate_window *w, size_t cap) {
  memset(w, 0, sizeof(*w));
  if ((w->s = calloc(cap, sizeof(*w->s))) == NULL)
    return -ENOMEM;
  w->cap = cap;
  return 0;
}

void rate_window_free(struct rate_window *w) {
  free(w->s);
  w->s = NULL;
}

void rate_window_add(struct rate_window *w, uint64_t ts_ns, uint64_t seq, uint32_t size) {
  w->s[w->next] = (struct rate_sample){ts_ns, seq, size};
  w->next = (w->next + 1) % w->cap;
  if (w->n < w->cap)
    w->n++;
  w->fresh++;
}

/* The i-th oldest sample. */
static const struct rate_sample *rate_at(const struct rate_window *w, size_t i) {
  return &w->s[(w->next + w->cap - w->n + i) % w->cap];
}

bool rate_window_stats(const struct rate_window *w, struct rate_stats *st) {
  const struct rate_sample *first, *last;
  uint64_t lo = UINT64_MAX, hi = 0;
  double sum = 0, sumsq = 0, sizes = 0;
  size_t intervals = 0;
  size_t i;

  memset(st, 0, sizeof(*st));
  st->n = w->n;
  if (w->n < 2)
    return false;
  first = rate_at(w, 0);
  last = rate_at(w, w->n - 1);
  st->min_s = INFINITY;
  st->size_min = UINT32_MAX;
  for (i = 0; i < w->n; i++) {
    const struct rate_sample *s = rate_at(w, i);
    lo = s->ts_ns < lo ? s->ts_ns : lo;
    hi = s->ts_ns > hi ? s->ts_ns : hi;
    sizes += s->size;
    st->size_min = s->size < st->size_min ? s->size : st->size_min;
    st->size_max = s->size > st->size_max ? s->size : st->size_max;
    /* Intervals between consecutive messages only: one this reader
     * missed would make a longer interval than the topic has. */
    if (i > 0 && rate_at(w, i - 1)->seq + 1 == s->seq) {
      const struct rate_sample *p = rate_at(w, i - 1);
      /* Publishers stamp before they commit: two of them may commit out
       * of timestamp order. Such an interval counts as 0. */
      double d = s->ts_ns > p->ts_ns ? (double)(s->ts_ns - p->ts_ns) / 1e9 : 0.0;
      sum += d;
      sumsq += d * d;
      st->min_s = d < st->min_s ? d : st->min_s;
      st->max_s = d > st->max_s ? d : st->max_s;
      intervals++;
    }
  }
  st->size_mean = sizes / (double)w->n;
  if (intervals == 0)
    st->min_s = 0;
  if (hi <= lo)
    return false;
  st->span_s = (double)(hi - lo) / 1e9;
  if (intervals > 0) {
    st->mean_s = sum / (double)intervals;
    st->std_s = sqrt(fmax(0.0, sumsq / (double)intervals - st->mean_s * st->mean_s));
  }
  /* Sequence numbers are the topic's, over all its publishers: what was
   * published between the two, read or not. */
  st->rate_hz = last->seq > first->seq ? (double)(last->seq - first->seq) / st->span_s
                                       : (double)(w->n - 1) / st->span_s;
  /* The messages read stand for those missed: the mean size read at the
   * publish rate. */
  st->bytes_per_s = st->size_mean * st->rate_hz;
  return true;
}

/* ---- the tool ---------------------------------------------------------------- */

struct rate_tool {
  bool bw;
  bool json;
  uint64_t count;   /* reports to make, 0: no end */
  uint64_t reports; /* made */
  size_t window;
  int error; /* set when a window could not be made */
  struct topicset *ts;
  uv_loop_t *loop;
  uv_timer_t tick;
  uv_poll_t sig;
};

static void rate_usage(FILE *f, bool bw) {
  const char *v = bw ? "bw" : "hz";

  fprintf(f, "usage: shmbus %s [OPTIONS] TOPIC|PATTERN...\n\n", v);
  if (bw)
    fputs("Prints the bandwidth of each topic once per interval: bytes per second over\n"
          "the last --window messages read (their mean size at the publish rate), with\n"
          "their mean, smallest and largest size.\n",
          f);
  else
    fputs("Prints the publish rate of each topic once per interval: messages per second\n"
          "over the last --window messages, and the mean, smallest, largest and\n"
          "standard deviation of the intervals between them.\n",
          f);
  fputs("Times are the messages' own publish times (the publisher's clock), so the\n"
        "numbers do not depend on when this reader got to them. A PATTERN ('*' one\n"
        "segment, '**' any number) takes every matching topic, present and future.\n"
        "It subscribes lossy (publishers never wait for it): while a topic is busy\n"
        "it reads what its ring holds every 10 ms (so a fast publisher never has to\n"
        "wake it), and says how many messages it missed. The rate counts sequence\n"
        "numbers (missed messages too); intervals are between consecutive messages.\n"
        "\n"
        "  -j, --json           one JSON object per topic and report instead of text\n"
        "  -n, --count N        stop after N reports\n"
        "  -i, --interval S     seconds between reports (default 1)\n"
        "      --window N       messages the statistics cover (default 1000)\n" CLI_BUS_HELP
        "  -h, --help           show this help\n"
        "\n",
        f);
  if (bw)
    fputs("A text line: TOPIC: B/s (MB/s) mean M B min A B max Z B window N lost L\n"
          "JSON: {\"topic\",\"bytes_per_s\",\"mean_size\",\"min_size\",\"max_size\",\n"
          "       \"window\",\"received\",\"lost\"}\n",
          f);
  else
    fputs("A text line: TOPIC: R Hz mean M ms min A ms max Z ms std S ms window N lost L\n"
          "JSON: {\"topic\",\"rate_hz\",\"mean_s\",\"min_s\",\"max_s\",\"std_s\",\n"
          "       \"window\",\"received\",\"lost\"}\n",
          f);
  fputs("A topic without new messages since the last report says so (JSON: \"new\": 0).\n"
        "While no topic matches, it says so once on stderr and waits.\n"
        "Exit status: 0 ok (also after Ctrl-C), 1 error, 2 bad usage.\n",
        f);
}

static void rate_on_topic(struct topicset_topic *t, bool appeared, void *arg) {
  struct rate_tool *rt = arg;
  struct rate_window *w;

  if (!appeared || t->user != NULL)
    return; /* a removed topic keeps its window: the name may come back */
  if ((w = malloc(sizeof(*w))) == NULL || rate_window_init(w, rt->window) < 0) {
    free(w);
    cli_err(rt->bw ? "bw" : "hz", "out of memory for a window of %zu messages", rt->window);
    rt->error = -ENOMEM;
    uv_stop(rt->loop);
    return;
  }
  t->user = w;
}

static void rate_on_msg(struct topicset_topic *t, const void *data, size_t len,
                        const struct shmbus_msg_info *info, void *arg) {
  (void)data;
  (void)arg;
  if (t->user != NULL)
    rate_window_add(t->user, info->ts_ns, info->seq, (uint32_t)len);
}

static void rate_json_topic(const char *name) {
  json_t *v = json_string(name);
  char *s = v != NULL ? json_dumps(v, JSON_ENCODE_ANY) : NULL;

  printf("{\"topic\":%s", s != NULL ? s : "null");
  free(s);
  json_decref(v);
}

static void rate_report_one(struct rate_tool *rt, struct topicset_topic *t) {
  struct rate_window *w = t->user;
  struct rate_stats st;
  uint64_t received, lost;
  bool ok;

  if (w == NULL)
    return;
  topicset_topic_stats(t, &received, &lost);
  if (w->fresh == 0) {
    if (rt->json) {
      rate_json_topic(t->name);
      printf(",\"new\":0,\"received\":%" PRIu64 ",\"lost\":%" PRIu64 "}\n", received, lost);
    } else {
      printf("%s: no new messages (lost %" PRIu64 ")\n", t->name, lost);
    }
    return;
  }
  w->fresh = 0;
  ok = rate_window_stats(w, &st);
  if (rt->json) {
    rate_json_topic(t->name);
    if (!ok)
      printf(",\"window\":%zu", st.n);
    else if (rt->bw)
      printf(",\"bytes_per_s\":%.3f,\"mean_size\":%.1f,\"min_size\":%" PRIu32
             ",\"max_size\":%" PRIu32 ",\"window\":%zu",
             st.bytes_per_s, st.size_mean, st.size_min, st.size_max, st.n);
    else
      printf(",\"rate_hz\":%.4f,\"mean_s\":%.9f,\"min_s\":%.9f,\"max_s\":%.9f,\"std_s\":%.9f,"
             "\"window\":%zu",
             st.rate_hz, st.mean_s, st.min_s, st.max_s, st.std_s, st.n);
    printf(",\"received\":%" PRIu64 ",\"lost\":%" PRIu64 "}\n", received, lost);
    return;
  }
  if (!ok)
    printf("%s: %zu message(s) so far, not enough for a rate (lost %" PRIu64 ")\n", t->name, st.n,
           lost);
  else if (rt->bw)
    printf("%s: %.0f B/s (%.3f MB/s) mean %.0f B min %" PRIu32 " B max %" PRIu32
           " B window %zu lost %" PRIu64 "\n",
           t->name, st.bytes_per_s, st.bytes_per_s / 1e6, st.size_mean, st.size_min, st.size_max,
           st.n, lost);
  else
    printf("%s: %.3f Hz mean %.3f ms min %.3f ms max %.3f ms std %.3f ms window %zu lost %" PRIu64
           "\n",
           t->name, st.rate_hz, st.mean_s * 1e3, st.min_s * 1e3, st.max_s * 1e3, st.std_s * 1e3,
           st.n, lost);
}

static void rate_on_tick(uv_timer_t *h) {
  struct rate_tool *rt = h->data;
  size_t i;
  bool any = false;

  for (i = 0; i < topicset_count(rt->ts); i++) {
    struct topicset_topic *t = topicset_at(rt->ts, i);
    if (t->user != NULL) {
      rate_report_one(rt, t);
      any = true;
    }
  }
  fflush(stdout);
  /* An interval with no topic at all is no report. */
  if (any && rt->count > 0 && ++rt->reports >= rt->count) {
    topicset_stop(rt->ts);
    uv_stop(rt->loop);
  }
}

static void rate_on_signal(uv_poll_t *h, int status, int events) {
  struct rate_tool *rt = h->data;

  (void)status;
  (void)events;
  (void)uv_poll_stop(h); /* the byte stays in the pipe: once is enough */
  topicset_stop(rt->ts);
  uv_stop(rt->loop);
}

int cli_rate_tool(int argc, char **argv, bool bw) {
  static const struct option longopts[] = {{"json", no_argument, NULL, 'j'},
                                           {"count", required_argument, NULL, 'n'},
                                           {"interval", required_argument, NULL, 'i'},
                                           {"window", required_argument, NULL, 0x200},
                                           {"help", no_argument, NULL, 'h'},
                                           CLI_BUS_LONGOPTS,
                                           {NULL, 0, NULL, 0}};
  const char *verb = bw ? "bw" : "hz";
  struct cli_bus_args ba;
  struct shmbus_sub_opts so;
  struct topicset_cbs cbs;
  struct rate_tool rt;
  uv_loop_t loop;
  double period = 1.0;
  uint32_t window = RATE_DEFAULT_WINDOW;
  shmbus_bus *bus = NULL;
  bool loop_ok = false;
  int status = CLI_EXIT_ERROR;
  int sig_fd;
  int c, rv, i;

  cli_bus_args_init(&ba);
  memset(&so, 0, sizeof(so));
  memset(&rt, 0, sizeof(rt));
  rt.bw = bw;
  optind = 1;
  while ((c = getopt_long(argc, argv, "jn:i:h", longopts, NULL)) != -1) {
    switch (c) {
    case 'j':
      rt.json = true;
      break;
    case 'n':
      if (!cli_parse_u64(verb, "--count", optarg, 1, UINT64_MAX, &rt.count))
        return CLI_EXIT_USAGE;
      break;
    case 'i':
      if (!cli_parse_seconds(verb, "--interval", optarg, &period))
        return CLI_EXIT_USAGE;
      if (period < 0.01 || period > 86400) {
        cli_err(verb, "--interval %s: between 0.01 and 86400 seconds", optarg);
        return CLI_EXIT_USAGE;
      }
      break;
    case 0x200:
      if (!cli_parse_u32(verb, "--window", optarg, 2, RATE_MAX_WINDOW, &window))
        return CLI_EXIT_USAGE;
      break;
    case 'h':
      rate_usage(stdout, bw);
      return CLI_EXIT_OK;
    default:
      if ((rv = cli_other_arg(verb, &ba, NULL, c, optarg)) != 0)
        return rv;
      break;
    }
  }
  if (argc - optind < 1) {
    cli_err(verb, "which topics? (shmbus %s TOPIC|PATTERN...)", verb);
    return cli_usage_error(verb);
  }
  for (i = optind; i < argc; i++)
    if (topicset_is_pattern(argv[i]) && shmbus_pattern_check(argv[i]) < 0) {
      cli_err(verb,
              "\"%s\" is not a topic pattern: segments are names, '*' (one segment) or '**' "
              "(any number), e.g. sensors/*/temp, sensors/**",
              argv[i]);
      return cli_usage_error(verb);
    }
  rt.window = window;

  if ((rv = uv_loop_init(&loop)) < 0) {
    cli_err(verb, "cannot make an event loop: %s", uv_strerror(rv));
    return CLI_EXIT_ERROR;
  }
  loop_ok = true;
  rt.loop = &loop;
  if ((sig_fd = cli_signal_fd(verb)) < 0)
    goto out;
  if ((rv = uv_poll_init(&loop, &rt.sig, sig_fd)) < 0 ||
      (rv = uv_poll_start(&rt.sig, UV_READABLE, rate_on_signal)) < 0) {
    cli_err(verb, "cannot watch signals: %s", uv_strerror(rv));
    goto out;
  }
  rt.sig.data = &rt;
  (void)uv_timer_init(&loop, &rt.tick);
  rt.tick.data = &rt;
  /* Topics that exist only on someone's request are not made here: hz
   * and bw only look, so they never start a daemon either. */
  if ((bus = cli_bus_open(verb, &ba, 0)) == NULL)
    goto out;
  cbs.on_msg = rate_on_msg;
  cbs.on_topic = rate_on_topic;
  cbs.arg = &rt;
  if (topicset_open(&rt.ts, bus, &loop, verb, &so, &cbs) < 0)
    goto out;
  /* They look, they do not consume: read every 10 ms while a topic is
   * busy, so a fast publisher never has to wake them. */
  if (topicset_sample(rt.ts, RATE_SAMPLE_MS) < 0) {
    cli_err(verb, "out of memory");
    goto out;
  }
  for (i = optind; i < argc; i++)
    if (topicset_add(rt.ts, argv[i]) < 0 || rt.error < 0)
      goto out;
  if (topicset_count(rt.ts) == 0)
    fprintf(stderr, "shmbus %s: no topic matches yet; waiting for one to appear\n", verb);
  {
    uint64_t ms = (uint64_t)(period * 1000.0 + 0.5);
    (void)uv_timer_start(&rt.tick, rate_on_tick, ms, ms);
  }
  (void)uv_run(&loop, UV_RUN_DEFAULT);
  fflush(stdout);
  status = rt.error < 0 ? CLI_EXIT_ERROR : CLI_EXIT_OK;

out:
  if (rt.ts != NULL) {
    for (i = 0; (size_t)i < topicset_count(rt.ts); i++) {
      struct topicset_topic *t = topicset_at(rt.ts, (size_t)i);
      if (t->user != NULL) {
        rate_window_free(t->user);
        free(t->user);
      }
    }
  }
  topicset_close(rt.ts);
  rt.ts = NULL;
  shmbus_bus_close(bus);
  if (loop_ok)
    cli_loop_close(&loop);
  return status;
}
