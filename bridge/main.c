/* shmbus-bridge: joins a shmbus bus to NATS (docs/bridge.md). Options and
 * log, the libuv loop that carries the bus and the NATS connection, the
 * connection's life (connect with backoff, reconnect, a log line per state
 * change), signals and stats. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nats/adapters/libuv.h>

#include "bridge.h"
#include "platform/stdfds.h"
#include "shmbus/discover.h"

#define PROG "shmbus-bridge"

/* The backoff between rounds of connection attempts: doubling from this to
 * that, in ms. */
#define BRIDGE_BACKOFF_MIN_MS 100
#define BRIDGE_BACKOFF_MAX_MS 5000

void bridge_log(const char *fmt, ...) {
  char line[1024];
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  /* One write per line: lines of libnats's threads do not interleave. */
  fprintf(stderr, PROG ": %s\n", line);
  fflush(stderr);
}

static void bridge_usage(FILE *f) {
  fputs("usage: " PROG " --nats URL[,URL...] [--dir DIR|--system] [--export PATTERN]...\n"
        "       [--import PATTERN]... [--subject-prefix P] [--reliable] [--stream NAME]\n"
        "       [--name NAME] [--stats-interval S]\n"
        "\n"
        "Joins a shmbus bus to NATS: --export forwards the local topics that match\n"
        "PATTERN, present and future, to NATS subjects; --import subscribes to the\n"
        "subjects of PATTERN and publishes their messages on the local bus. Topic a/b/c\n"
        "is subject P.a.b.c; a byte a subject cannot carry is written %XX.\n"
        "\n"
        "  --nats URL[,URL...]   NATS servers (nats://host:port); the bridge reconnects to\n"
        "                        any of them with backoff\n"
        "  --dir DIR             the bus directory (default: as every shmbus program)\n"
        "  --system              the system bus, /run/shmbus\n"
        "  --export PATTERN      export matching topics ('*' one segment, '**' any)\n"
        "  --import PATTERN      import matching subjects onto the local bus\n"
        "  --subject-prefix P    the subjects' prefix (default: shmbus)\n"
        "  --reliable            through JetStream: nothing lost, nothing twice; the\n"
        "                        local topics are held back while the bridge is behind\n"
        "  --stream NAME         with --reliable: bind to the existing stream NAME (it\n"
        "                        must cover P.>); default: stream P with '.' as '_',\n"
        "                        created when missing (replicated on up to 3 nodes)\n"
        "  --name NAME           this bridge's name, the origin of what it exports and,\n"
        "                        with --reliable, its durable consumer; it must\n"
        "                        differ between bridges on one NATS (default: host name)\n"
        "  --stats-interval S    print the stats every S seconds (always on SIGUSR1)\n"
        "  -h, --help            show this help\n"
        "  -V, --version         show the version\n"
        "\n"
        "Logs and stats go to stderr. Exit status: 0 after SIGINT/SIGTERM, 1 error,\n"
        "2 bad usage.\n",
        f);
}

/* ---- the NATS connection ------------------------------------------------ */

static void bridge_on_disconnected(natsConnection *nc, void *arg) {
  struct bridge *b = arg;

  (void)nc;
  if (atomic_load_explicit(&b->nats_state, memory_order_relaxed) == NATS_CLOSED)
    return; /* our own close */
  atomic_store_explicit(&b->nats_state, NATS_DISCONNECTED, memory_order_relaxed);
  bridge_log("NATS: disconnected; reconnecting");
}

static void bridge_on_reconnected(natsConnection *nc, void *arg) {
  struct bridge *b = arg;
  char url[256] = "";

  (void)natsConnection_GetConnectedUrl(nc, url, sizeof(url));
  atomic_store_explicit(&b->nats_state, NATS_CONNECTED, memory_order_relaxed);
  bridge_log("NATS: reconnected to %s", url);
  /* --reliable: the loop's timer asks the importer's consumers again for
   * what they left unacknowledged (jetstream.c, bridge_js_reconnected). */
  if (b->o.reliable)
    atomic_store_explicit(&b->js_reconnected, true, memory_order_release);
}

static void bridge_on_closed(natsConnection *nc, void *arg) {
  struct bridge *b = arg;

  (void)nc;
  atomic_store_explicit(&b->nats_state, NATS_CLOSED, memory_order_relaxed);
  bridge_log("NATS: connection closed");
}

static int64_t bridge_reconnect_delay(natsConnection *nc, int attempts, void *arg) {
  int64_t d = BRIDGE_BACKOFF_MIN_MS;

  (void)nc;
  (void)arg;
  while (attempts-- > 1 && d < BRIDGE_BACKOFF_MAX_MS)
    d *= 2;
  return d < BRIDGE_BACKOFF_MAX_MS ? d : BRIDGE_BACKOFF_MAX_MS;
}

struct bridge_main {
  struct bridge b;
  natsOptions *nopts;
  char **urls;
  int nurls;
  uv_timer_t retry;
  uv_timer_t stats;
  uv_signal_t sigint, sigterm, sigusr1;
  uv_work_t rtt_work;
  bool rtt_busy;
  uint64_t backoff_ms;
  int exit_code;
  bool started;
};

static void bridge_stop(struct bridge_main *m, int code);

static void bridge_retry_paths(uv_timer_t *t);

static int bridge_start_paths(struct bridge_main *m) {
  int rv;

  if (m->b.o.reliable) {
    rv = bridge_js_start(&m->b);
    if (rv == -EAGAIN) {
      /* The stream cannot be placed yet: asked again in a moment, the loop
       * free meanwhile (a signal stops the bridge). */
      return uv_timer_start(&m->retry, bridge_retry_paths, BRIDGE_JS_PLACE_RETRY_MS, 0) == 0 ? 0
                                                                                             : -EIO;
    }
    if (rv < 0 || (rv = bridge_js_loop_start(&m->b)) < 0)
      return rv;
  }
  if ((rv = bridge_import_start(&m->b)) < 0 || (rv = bridge_export_start(&m->b)) < 0)
    return rv;
  m->started = true;
  return 0;
}

static void bridge_retry_paths(uv_timer_t *t) {
  struct bridge_main *m = t->data;

  if (!m->b.stopping && bridge_start_paths(m) < 0)
    bridge_stop(m, 1);
}

static void bridge_try_connect(uv_timer_t *t) {
  struct bridge_main *m = t->data;
  natsStatus s;
  char url[256] = "";

  s = natsConnection_Connect(&m->b.nc, m->nopts);
  if (s != NATS_OK) {
    m->b.nc = NULL;
    bridge_log("NATS: cannot connect (%s); again in %llu ms", natsStatus_GetText(s),
               (unsigned long long)m->backoff_ms);
    (void)uv_timer_start(&m->retry, bridge_try_connect, m->backoff_ms, 0);
    m->backoff_ms =
        m->backoff_ms * 2 < BRIDGE_BACKOFF_MAX_MS ? m->backoff_ms * 2 : BRIDGE_BACKOFF_MAX_MS;
    return;
  }
  atomic_store_explicit(&m->b.nats_state, NATS_CONNECTED, memory_order_relaxed);
  (void)natsConnection_GetConnectedUrl(m->b.nc, url, sizeof(url));
  bridge_log("NATS: connected to %s", url);
  if (bridge_start_paths(m) < 0)
    bridge_stop(m, 1);
}

static int bridge_nats_options(struct bridge_main *m) {
  char *list, *tok, *save = NULL;
  natsStatus s;

  if ((list = strdup(m->b.o.nats_urls)) == NULL)
    return -ENOMEM;
  for (tok = strtok_r(list, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
    char **nu = realloc(m->urls, (size_t)(m->nurls + 1) * sizeof(*nu));
    if (nu == NULL || (nu[m->nurls] = strdup(tok)) == NULL) {
      if (nu != NULL)
        m->urls = nu;
      free(list);
      return -ENOMEM;
    }
    m->urls = nu;
    m->nurls++;
  }
  free(list);
  if (m->nurls == 0)
    return -EINVAL;
  s = natsOptions_Create(&m->nopts);
  if (s == NATS_OK)
    s = natsOptions_SetServers(m->nopts, (const char **)m->urls, m->nurls);
  if (s == NATS_OK)
    s = natsOptions_SetName(m->nopts, m->b.o.name);
  /* Lossy: the connection runs on the loop. Reliable: on libnats's own
   * threads, as JetStream's requests wait for their replies (jetstream.c). */
  if (s == NATS_OK && !m->b.o.reliable)
    s = natsOptions_SetEventLoop(m->nopts, m->b.loop, natsLibuv_Attach, natsLibuv_Read,
                                 natsLibuv_Write, natsLibuv_Detach);
  /* "Send as soon as possible": without it libnats hands each burst of
   * publishes to a flusher thread of its own, which waits 1 ms for more
   * before it writes (on the loop: asks the loop, from its thread, with an
   * allocation and a uv_async wake-up). With it, on the loop (lossy), a
   * publish only arms the socket's write event; the loop writes what the
   * whole burst (every message one drain of the local topics published)
   * buffered with one write, in its next iteration: no flusher thread, no
   * timer, no hand-over. On libnats's threads (--reliable), a publish (an
   * exported message, an importer's acknowledgement) is written by the
   * thread that makes it, the loop's: a send per message instead of a
   * millisecond's wait and a thread wake-up per burst. That is for a bridge
   * that exports (the exported messages' latency); one that only imports
   * publishes only acknowledgements, which nobody waits for (the server
   * lets 1,024 wait, jetstream.c's JS_MAX_ACK_PENDING: 50 ms at 20,000/s): the
   * flusher batches them, a write per millisecond rather than per message
   * (fewer system calls here and fewer reads at the server). */
  if (s == NATS_OK && (!m->b.o.reliable || m->b.o.nexports > 0))
    s = natsOptions_SetSendAsap(m->nopts, true);
  if (s == NATS_OK)
    s = natsOptions_SetMaxReconnect(m->nopts, -1);
  if (s == NATS_OK)
    s = natsOptions_SetCustomReconnectDelay(m->nopts, bridge_reconnect_delay, &m->b);
  if (s == NATS_OK)
    s = natsOptions_SetTimeout(m->nopts, 2000);
  if (s == NATS_OK)
    s = natsOptions_SetDisconnectedCB(m->nopts, bridge_on_disconnected, &m->b);
  if (s == NATS_OK)
    s = natsOptions_SetReconnectedCB(m->nopts, bridge_on_reconnected, &m->b);
  if (s == NATS_OK)
    s = natsOptions_SetClosedCB(m->nopts, bridge_on_closed, &m->b);
  if (s != NATS_OK) {
    bridge_log("NATS options: %s", natsStatus_GetText(s));
    return -EINVAL;
  }
  return 0;
}

/* ---- stats and the round trip ------------------------------------------- */

/* A thread of libuv's pool: the round trip blocks until the PONG, which
 * the loop reads. */
static void bridge_rtt_work(uv_work_t *w) {
  struct bridge_main *m = w->data;
  int64_t rtt = 0;

  if (m->b.nc != NULL && natsConnection_GetRTT(m->b.nc, &rtt) == NATS_OK)
    atomic_store_explicit(&m->b.rtt_us, rtt / 1000, memory_order_relaxed);
  else
    atomic_store_explicit(&m->b.rtt_us, -1, memory_order_relaxed);
}

static void bridge_rtt_done(uv_work_t *w, int status) {
  struct bridge_main *m = w->data;

  (void)status;
  m->rtt_busy = false;
  if (!m->b.stopping)
    bridge_stats_print(&m->b);
}

/* Measures the round trip, then prints. */
static void bridge_stats_now(struct bridge_main *m) {
  if (m->rtt_busy || m->b.stopping)
    return;
  if (m->b.nc == NULL) {
    bridge_stats_print(&m->b);
    return;
  }
  m->rtt_work.data = m;
  if (uv_queue_work(m->b.loop, &m->rtt_work, bridge_rtt_work, bridge_rtt_done) == 0)
    m->rtt_busy = true;
  else
    bridge_stats_print(&m->b);
}

static void bridge_on_stats_timer(uv_timer_t *t) {
  bridge_stats_now(t->data);
}

/* ---- signals and the end ------------------------------------------------- */

static void bridge_stop(struct bridge_main *m, int code) {
  if (m->b.stopping)
    return;
  m->b.stopping = true;
  m->exit_code = code;
  uv_stop(m->b.loop);
}

static void bridge_on_signal(uv_signal_t *h, int signum) {
  struct bridge_main *m = h->data;

  if (signum == SIGUSR1) {
    bridge_stats_now(m);
    return;
  }
  bridge_log("signal %d: stopping", signum);
  bridge_stop(m, 0);
}

static void bridge_close(uv_handle_t *h) {
  if (h->loop != NULL && !uv_is_closing(h))
    uv_close(h, NULL);
}

/* ---- options ---------------------------------------------------------- */

enum {
  OPT_NATS = 256,
  OPT_DIR,
  OPT_SYSTEM,
  OPT_EXPORT,
  OPT_IMPORT,
  OPT_PREFIX,
  OPT_RELIABLE,
  OPT_STREAM,
  OPT_NAME,
  OPT_STATS
};

static int bridge_add(const char ***list, int *n, const char *s) {
  const char **nl = realloc(*list, (size_t)(*n + 1) * sizeof(*nl));

  if (nl == NULL)
    return -ENOMEM;
  nl[(*n)++] = s;
  *list = nl;
  return 0;
}

/* Returns 0, or 2 after printing what is wrong (bad usage). */
static int bridge_parse(struct bridge_opts *o, int argc, char **argv, char *host, size_t hostcap) {
  static const struct option longopts[] = {{"nats", required_argument, NULL, OPT_NATS},
                                           {"dir", required_argument, NULL, OPT_DIR},
                                           {"system", no_argument, NULL, OPT_SYSTEM},
                                           {"export", required_argument, NULL, OPT_EXPORT},
                                           {"import", required_argument, NULL, OPT_IMPORT},
                                           {"subject-prefix", required_argument, NULL, OPT_PREFIX},
                                           {"reliable", no_argument, NULL, OPT_RELIABLE},
                                           {"stream", required_argument, NULL, OPT_STREAM},
                                           {"name", required_argument, NULL, OPT_NAME},
                                           {"stats-interval", required_argument, NULL, OPT_STATS},
                                           {"help", no_argument, NULL, 'h'},
                                           {"version", no_argument, NULL, 'V'},
                                           {NULL, 0, NULL, 0}};
  int c, i;

  o->prefix = "shmbus";
  while ((c = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
    switch (c) {
    case OPT_NATS:
      o->nats_urls = optarg;
      break;
    case OPT_DIR:
      o->dir = optarg;
      break;
    case OPT_SYSTEM:
      o->system = true;
      break;
    case OPT_EXPORT:
    case OPT_IMPORT:
      if (shmbus_pattern_check(optarg) < 0) {
        fprintf(stderr,
                PROG ": \"%s\" is not a topic pattern: segments are names, '*' (one segment) or "
                     "'**' (any number)\n",
                optarg);
        return 2;
      }
      if ((c == OPT_EXPORT ? bridge_add(&o->exports, &o->nexports, optarg)
                           : bridge_add(&o->imports, &o->nimports, optarg)) < 0) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
      }
      break;
    case OPT_PREFIX:
      if (bridge_prefix_check(optarg) < 0) {
        fprintf(stderr,
                PROG ": --subject-prefix \"%s\": tokens of [A-Za-z0-9_-] separated by '.', at "
                     "most 128 bytes\n",
                optarg);
        return 2;
      }
      o->prefix = optarg;
      break;
    case OPT_RELIABLE:
      o->reliable = true;
      break;
    case OPT_STREAM:
      o->stream = optarg;
      break;
    case OPT_NAME:
      if (bridge_name_check(optarg) < 0) {
        fprintf(stderr, PROG ": --name \"%s\": 1 to %d bytes of [A-Za-z0-9_-]\n", optarg,
                BRIDGE_NAME_MAX);
        return 2;
      }
      o->name = optarg;
      break;
    case OPT_STATS: {
      char *end;
      long v = strtol(optarg, &end, 10);
      if (*optarg == '\0' || *end != '\0' || v < 1 || v > 86400) {
        fprintf(stderr, PROG ": --stats-interval \"%s\": seconds, 1 to 86400\n", optarg);
        return 2;
      }
      o->stats_interval_s = (unsigned)v;
      break;
    }
    case 'h':
      bridge_usage(stdout);
      exit(0);
    case 'V':
      printf(PROG " %s\n", shmbus_version());
      exit(0);
    default:
      bridge_usage(stderr);
      return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, PROG ": unexpected argument \"%s\"\n", argv[optind]);
    return 2;
  }
  if (o->nats_urls == NULL || *o->nats_urls == '\0') {
    fprintf(stderr, PROG ": --nats URL is required\n");
    return 2;
  }
  if (o->nexports == 0 && o->nimports == 0) {
    fprintf(stderr, PROG ": nothing to do: give --export or --import\n");
    return 2;
  }
  if (o->dir != NULL && o->system) {
    fprintf(stderr, PROG ": --dir and --system exclude each other\n");
    return 2;
  }
  if (o->stream != NULL && !o->reliable) {
    fprintf(stderr, PROG ": --stream needs --reliable\n");
    return 2;
  }
  if (o->stream != NULL && (bridge_name_check(o->stream) < 0 || strlen(o->stream) > 32)) {
    fprintf(stderr, PROG ": --stream \"%s\": 1 to 32 bytes of [A-Za-z0-9_-]\n", o->stream);
    return 2;
  }
  if (o->name == NULL) {
    /* The host name, cut to what a name may hold. */
    size_t k = 0;
    if (gethostname(host, hostcap - 1) < 0)
      host[0] = '\0';
    host[hostcap - 1] = '\0';
    for (i = 0; host[i] != '\0' && k < BRIDGE_NAME_MAX; i++) {
      char ch = host[i];
      host[k++] = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                          (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'
                      ? ch
                      : '-';
    }
    host[k] = '\0';
    if (k == 0)
      strcpy(host, "shmbus-bridge");
    o->name = host;
  }
  return 0;
}

int main(int argc, char **argv) {
  static struct bridge_main m; /* static: libnats's threads may outlive a frame */
  struct shmbus_bus_opts bo;
  char host[256];
  uv_loop_t loop;
  int rv;

  /* First: nothing opened later may take a closed standard descriptor
   * (libuv aborts when it closes one). */
  if (shmbus__stdfds_open() < 0)
    return 1;
  memset(&m, 0, sizeof(m));
  if ((rv = bridge_parse(&m.b.o, argc, argv, host, sizeof(host))) != 0) {
    free(m.b.o.exports);
    free(m.b.o.imports);
    return rv;
  }
  atomic_init(&m.b.nats_state, NATS_CONNECTING);
  atomic_init(&m.b.rtt_us, -1);
  atomic_init(&m.b.js_reconnected, false);
  m.backoff_ms = BRIDGE_BACKOFF_MIN_MS;
  if (uv_loop_init(&loop) != 0) {
    bridge_log("cannot make a libuv loop");
    return 1;
  }
  m.b.loop = &loop;
  natsLibuv_Init();
  natsLibuv_SetThreadLocalLoop(&loop);

  shmbus_bus_opts_init(&bo);
  bo.dir = m.b.o.system ? "/run/shmbus" : m.b.o.dir;
  bo.name = PROG;
  if ((rv = shmbus_bus_open(&m.b.bus, &bo)) < 0) {
    const char *why = shmbus_bus_last_error(NULL);
    bridge_log("cannot open the bus: %s%s%s", shmbus_strerror(rv), *why != '\0' ? ": " : "", why);
    m.exit_code = 1;
    goto out;
  }
  if ((rv = shmbus_uv_bus_start(m.b.bus, &loop)) < 0) {
    bridge_log("cannot watch the bus from the loop: %s", shmbus_strerror(rv));
    m.exit_code = 1;
    goto out;
  }
  if ((rv = bridge_nats_options(&m)) < 0) {
    bridge_log("bad --nats list");
    m.exit_code = 1;
    goto out;
  }
  if (uv_signal_init(&loop, &m.sigint) != 0 || uv_signal_init(&loop, &m.sigterm) != 0 ||
      uv_signal_init(&loop, &m.sigusr1) != 0 || uv_timer_init(&loop, &m.retry) != 0 ||
      uv_timer_init(&loop, &m.stats) != 0) {
    bridge_log("cannot set up the loop's handles");
    m.exit_code = 1;
    goto out;
  }
  m.sigint.data = m.sigterm.data = m.sigusr1.data = &m;
  m.retry.data = m.stats.data = &m;
  if (uv_signal_start(&m.sigint, bridge_on_signal, SIGINT) != 0 ||
      uv_signal_start(&m.sigterm, bridge_on_signal, SIGTERM) != 0 ||
      uv_signal_start(&m.sigusr1, bridge_on_signal, SIGUSR1) != 0 ||
      (m.b.o.stats_interval_s > 0 &&
       uv_timer_start(&m.stats, bridge_on_stats_timer, m.b.o.stats_interval_s * 1000ull,
                      m.b.o.stats_interval_s * 1000ull) != 0) ||
      uv_timer_start(&m.retry, bridge_try_connect, 0, 0) != 0) {
    bridge_log("cannot start the loop's handles");
    m.exit_code = 1;
    goto out;
  }
  bridge_log("bus open; name %s, subject prefix %s", m.b.o.name, m.b.o.prefix);
  (void)uv_run(&loop, UV_RUN_DEFAULT);

out:
  m.b.stopping = true;
  bridge_export_discard_waiting(&m.b);
  if (m.b.bus != NULL || m.b.nc != NULL)
    bridge_stats_print(&m.b);
  bridge_export_stop(&m.b);
  bridge_import_stop(&m.b);
  bridge_js_stop(&m.b);
  if (m.b.nc != NULL) {
    /* --reliable: the last acknowledgements of the importer reach the
     * server (what does not is redelivered to the next run, and dropped
     * there if it was published). */
    if (m.b.o.reliable)
      (void)natsConnection_FlushTimeout(m.b.nc, 2000);
    atomic_store_explicit(&m.b.nats_state, NATS_CLOSED, memory_order_relaxed);
    natsConnection_Close(m.b.nc);
  }
  shmbus_bus_close(m.b.bus);
  /* Our handles (the library and libnats's adapter close theirs), then
   * let libuv finish closing (a round trip in the pool too). */
  bridge_close((uv_handle_t *)&m.sigint);
  bridge_close((uv_handle_t *)&m.sigterm);
  bridge_close((uv_handle_t *)&m.sigusr1);
  bridge_close((uv_handle_t *)&m.retry);
  bridge_close((uv_handle_t *)&m.stats);
  (void)uv_run(&loop, UV_RUN_DEFAULT);
  /* The JetStream context before the connection it holds, and both before
   * the library stops its threads: the context's reply subscription (the
   * publish acknowledgements still queued on it) is freed with it. */
  bridge_js_release(&m.b);
  bridge_spent_free(&m.b);
  natsConnection_Destroy(m.b.nc);
  natsOptions_Destroy(m.nopts);
  (void)nats_CloseAndWait(5000);
  bridge_import_free(&m.b);
  bridge_js_free(&m.b);
  (void)uv_run(&loop, UV_RUN_DEFAULT);
  bridge_topics_free(&m.b);
  (void)uv_loop_close(&loop);
  for (int i = 0; i < m.nurls; i++)
    free(m.urls[i]);
  free(m.urls);
  free(m.b.o.exports);
  free(m.b.o.imports);
  return m.exit_code;
}
