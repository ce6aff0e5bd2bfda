/* main: shmbusd's entry point. Parses the command line, prepares the bus
 * directory (creates it, checks who owns it), takes the lock that makes the
 * daemon unique per directory, binds the socket, daemonizes unless asked to
 * stay in the foreground, and runs the loop with the signal handlers:
 * SIGTERM/SIGINT shut down cleanly, SIGHUP reloads the config, SIGPIPE is
 * ignored. It tells whoever started it that it listens: a byte on
 * --ready-fd, and READY=1 to systemd's $NOTIFY_SOCKET (STOPPING=1 when it
 * shuts down). With --idle-exit S (autostart passes it) it exits once it
 * has had no clients and no topics of its users for S seconds.
 *
 * Every failure before the loop runs is reported (on stderr, before the
 * daemon detaches) and ends the process with a documented status:
 *   0 clean shutdown, 1 error, 2 bad usage, 3 another daemon owns the dir. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config.h"
#include "faults.h"
#include "host.h"
#include "log.h"
#include "options.h"
#include "platform/stdfds.h"
#include "paths.h"
#include "reload.h"
#include "server.h"
#include "shmbus/error.h"
#include "shmbus/version.h"

/* Everything the loop's handles need. */
struct main_ctx {
  uv_loop_t loop;
  struct server srv;
  uv_signal_t sig_term;
  uv_signal_t sig_int;
  uv_signal_t sig_hup;
  int nsignals;     /* how many of the above are initialised */
  host_sock_t stop; /* the stop request where there are no signals */
  shmbus__watch stop_watch;
  bool stop_init;
  uv_timer_t idle_timer; /* --idle-exit */
  bool idle_init;
  uint64_t idle_ms;    /* --idle-exit in milliseconds */
  uint64_t idle_since; /* uv_now when it was first seen idle; 0: busy */
  bool stopping;
};

/* Takes the directory's lock. Returns 0, -EBUSY when another daemon
 * holds it, another negative code on other errors (logged). */
static int main_lock(const char *dir, bool system, struct host_lock *lock) {
  char path[HOST_PATH_MAX + 64];
  int rv;

  /* First: nothing opened later may take a closed standard descriptor. */
  if (shmbus__stdfds_open() < 0)
    return 1;
  if (shmbus__bus_path(dir, SHMBUS__LOCK_NAME, path, sizeof(path)) < 0) {
    log_err("bus directory path too long: %s", dir);
    return -ENAMETOOLONG;
  }
  if ((rv = host_lock_take(path, system, lock)) < 0 && rv != -EBUSY)
    log_err("cannot lock %s: %s", path, strerror(-rv));
  return rv;
}

/* Tells the service manager, if any, what the daemon is doing. */
static void main_notify_manager(const char *msg) {
  char err[256];

  if (host_notify_manager(msg, err, sizeof(err)) < 0)
    log_warn("%s", err);
}

/* True while the daemon serves nobody: no client connected and no topic
 * but its own $sys/ ones (a retained or an adopted topic keeps it). */
static bool main_idle(const struct server *srv) {
  size_t i;

  if (srv->nparticipants != 0)
    return false;
  /* A read-only walk of the registry's hash table. */
  for (i = 0; i < srv->reg.nbuckets; i++)
    for (const struct registry_topic *t = srv->reg.buckets[i]; t != NULL; t = t->hnext)
      if (!t->sys)
        return false;
  return true;
}

static void main_shutdown(struct main_ctx *ctx);

/* --idle-exit: looks a few times per idle period; shuts down once the
 * daemon has been idle for the whole period. */
static void main_on_idle_timer(uv_timer_t *h) {
  struct main_ctx *ctx = h->data;
  uint64_t now = uv_now(&ctx->loop);

  if (!main_idle(&ctx->srv)) {
    ctx->idle_since = 0;
    return;
  }
  if (ctx->idle_since == 0) {
    ctx->idle_since = now;
    return;
  }
  if (now - ctx->idle_since >= ctx->idle_ms) {
    log_notice("no clients and no topics for %.1f s (--idle-exit): shutting down",
               (double)ctx->idle_ms / 1000.0);
    main_shutdown(ctx);
  }
}

static int main_idle_start(struct main_ctx *ctx, double seconds) {
  uint64_t tick;
  int rv;

  ctx->idle_ms = (uint64_t)(seconds * 1000.0);
  if (ctx->idle_ms == 0)
    ctx->idle_ms = 1;
  /* Four looks per period, between 10 ms and 1 s apart: the daemon exits
   * between S and S + one tick after its last client left. */
  tick = ctx->idle_ms / 4;
  tick = tick < 10 ? 10 : tick > 1000 ? 1000 : tick;
  if ((rv = uv_timer_init(&ctx->loop, &ctx->idle_timer)) < 0)
    return rv;
  ctx->idle_init = true;
  ctx->idle_timer.data = ctx;
  return uv_timer_start(&ctx->idle_timer, main_on_idle_timer, tick, tick);
}

static void main_shutdown(struct main_ctx *ctx) {
  uv_signal_t *sigs[3] = {&ctx->sig_term, &ctx->sig_int, &ctx->sig_hup};
  int i;

  if (ctx->stopping)
    return;
  ctx->stopping = true;
  main_notify_manager("STOPPING=1");
  server_shutdown(&ctx->srv);
  if (ctx->idle_init && !uv_is_closing((uv_handle_t *)&ctx->idle_timer))
    uv_close((uv_handle_t *)&ctx->idle_timer, NULL);
  for (i = 0; i < ctx->nsignals; i++)
    if (!uv_is_closing((uv_handle_t *)sigs[i]))
      uv_close((uv_handle_t *)sigs[i], NULL);
  if (ctx->stop_init && !uv_is_closing((uv_handle_t *)&ctx->stop_watch))
    shmbus__watch_close(&ctx->stop_watch, NULL);
}

static void main_on_stop(struct server *srv) {
  main_shutdown(srv->data);
}

static void main_on_signal(uv_signal_t *h, int signum) {
  struct main_ctx *ctx = h->data;

  if (signum == SIGHUP) {
    log_notice("SIGHUP: reloading the config");
    reload_config(&ctx->srv);
    return;
  }
  log_notice("%s: shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
  main_shutdown(ctx);
}

static void main_on_stop_request(shmbus__watch *h, int status, int events) {
  struct main_ctx *ctx = SHMBUS__WATCH_DATA(h);

  (void)events;
  if (status < 0)
    log_err("the stop request: %s", uv_strerror(status));
  else
    log_notice("%s: shutting down", host_stop_reason());
  main_shutdown(ctx);
}

/* The stop request where the system has no SIGTERM (host_stop_open),
 * watched by the loop. */
static int main_stop_request(struct main_ctx *ctx, const char *sock_path, bool system) {
  char err[256];
  int rv;

  if ((rv = host_stop_open(sock_path, system, &ctx->stop, err, sizeof(err))) < 0) {
    log_err("%s", err);
    return rv;
  }
  if (ctx->stop == HOST_SOCK_INVALID)
    return 0;
  if ((rv = shmbus__watch_init(&ctx->loop, &ctx->stop_watch, ctx->stop)) < 0) {
    log_err("cannot watch the stop request: %s", uv_strerror(rv));
    return rv;
  }
  SHMBUS__WATCH_DATA(&ctx->stop_watch) = ctx;
  ctx->stop_init = true;
  if ((rv = shmbus__watch_start(&ctx->stop_watch, SHMBUS__WATCH_LEVEL, main_on_stop_request)) < 0)
    log_err("cannot watch the stop request: %s", uv_strerror(rv));
  return rv;
}

static int main_signals(struct main_ctx *ctx) {
  uv_signal_t *sigs[3] = {&ctx->sig_term, &ctx->sig_int, &ctx->sig_hup};
  int nums[3] = {SIGTERM, SIGINT, SIGHUP};
  int rv;
  int i;

  for (i = 0; i < 3; i++) {
    if ((rv = uv_signal_init(&ctx->loop, sigs[i])) < 0)
      return rv;
    sigs[i]->data = ctx;
    ctx->nsignals++;
    if ((rv = uv_signal_start(sigs[i], main_on_signal, nums[i])) < 0)
      return rv;
  }
  return 0;
}

/* The daemon, once its command line is parsed (host_service_run runs it
 * on a service's thread on Windows). */
static int main_run(void *arg) {
  static struct main_ctx ctx;
  struct options o = *(struct options *)arg;
  struct config *cfg = NULL;
  const char *config_path = NULL;
  bool config_default = false;
  char dir[HOST_PATH_MAX];
  char sock_path[HOST_PATH_MAX];
  char err[512];
  struct host_ready starter;  /* --ready-fd: whoever started us waits on it */
  struct host_ready detached; /* host_daemonize's first process waits on it */
  struct host_lock lock;
  host_sock_t listen_sock = HOST_SOCK_INVALID;
  bool loop_init = false;
  bool replaced = false;
  int status = OPTIONS_EXIT_ERROR;
  uint32_t owner;
  int rv;

  ctx.stop = HOST_SOCK_INVALID;
  host_ready_none(&starter);
  host_ready_none(&detached);
  host_lock_none(&lock);
  /* A service has no standard streams: it logs to the system's log from
   * the start, unless --foreground asks for stderr. */
  log_init(o.service && !o.foreground ? LOG_SINK_SYSLOG : LOG_SINK_STDERR, o.verbose);
  if (faults_init() < 0)
    return OPTIONS_EXIT_USAGE;
  if (o.ready_arg != NULL && host_ready_from_arg(o.ready_arg, &starter, err, sizeof(err)) < 0) {
    log_err("%s", err);
    return OPTIONS_EXIT_USAGE;
  }
  owner = host_self_uid();
  if (shmbus__bus_dir(o.dir, o.system, dir, sizeof(dir), NULL) < 0 ||
      shmbus__bus_path(dir, SHMBUS__SOCK_NAME, sock_path, sizeof(sock_path)) < 0) {
    log_err("the bus directory path is too long for a unix socket");
    goto done;
  }
  if (host_dir_prepare(dir, o.system, err, sizeof(err)) < 0) {
    log_err("%s", err);
    goto done;
  }
  if ((rv = main_lock(dir, o.system, &lock)) < 0) {
    if (rv == -EBUSY) {
      log_err("another shmbusd owns %s", dir);
      status = OPTIONS_EXIT_LOCKED;
    }
    goto done;
  }
  config_path = o.config;
  if (config_path == NULL && o.system) {
    config_path = OPTIONS_SYSTEM_CONFIG;
    config_default = true;
  }
  if (config_path != NULL) {
    rv = config_load(config_path, owner, &cfg, err, sizeof(err));
    if (rv == -ENOENT && config_default) {
      log_notice("%s does not exist: only root may use the system bus", config_path);
    } else if (rv < 0) {
      log_err("config: %s", err);
      goto done;
    } else {
      log_info("config: %zu rule(s) from %s", config_rule_count(cfg), config_path);
    }
  }
  if (cfg == NULL && (cfg = config_new_default(owner)) == NULL) {
    log_err("out of memory");
    goto done;
  }
  for (size_t i = 0; i < o.nlimits; i++)
    if (config_limit_override(cfg, o.limits[i], err, sizeof(err)) < 0) {
      log_err("%s", err);
      status = OPTIONS_EXIT_USAGE;
      goto done;
    }
  /* Each topic costs the daemon two descriptors and each participant one
   * (its eventfd): raise the soft limit to the hard one. */
  if ((rv = host_nofile_raise()) < 0)
    log_warn("cannot raise the descriptor limit: %s", strerror(-rv));
  if (host_listen(sock_path, o.system, &listen_sock, &replaced, err, sizeof(err)) < 0) {
    log_err("%s", err);
    goto done;
  }
  if (replaced)
    log_info("removed a stale socket left by a previous daemon");
  if (!o.foreground) {
    /* A service is detached already: its manager started it. */
    if (!o.service && (rv = host_daemonize(OPTIONS_EXIT_ERROR, &detached)) < 0) {
      log_err("cannot detach: %s", strerror(-rv));
      goto done;
    }
    log_init(LOG_SINK_SYSLOG, o.verbose);
  }
  if ((rv = host_lock_write_pid(&lock)) < 0)
    log_warn("cannot write the pid into the lock file: %s", strerror(-rv));
  if ((rv = uv_loop_init(&ctx.loop)) < 0) {
    log_err("cannot start the event loop: %s", uv_strerror(rv));
    goto done;
  }
  loop_init = true;
  rv = server_init(&ctx.srv, &ctx.loop, listen_sock, sock_path, o.system, cfg, config_path,
                   config_default);
  listen_sock = HOST_SOCK_INVALID; /* the server owns it now */
  cfg = NULL;
  ctx.srv.limit_args = o.limits;
  ctx.srv.nlimit_args = o.nlimits;
  ctx.srv.on_stop = main_on_stop;
  ctx.srv.data = &ctx;
  if (rv < 0) {
    log_err("cannot start: %s", shmbus_strerror(rv));
    main_shutdown(&ctx);
    (void)uv_run(&ctx.loop, UV_RUN_DEFAULT);
    goto done;
  }
  if ((rv = main_signals(&ctx)) < 0) {
    log_err("cannot handle signals: %s", uv_strerror(rv));
    main_shutdown(&ctx);
    (void)uv_run(&ctx.loop, UV_RUN_DEFAULT);
    goto done;
  }
  if (main_stop_request(&ctx, sock_path, o.system) < 0) {
    main_shutdown(&ctx);
    (void)uv_run(&ctx.loop, UV_RUN_DEFAULT);
    goto done;
  }
  if (o.idle_exit > 0 && (rv = main_idle_start(&ctx, o.idle_exit)) < 0) {
    log_err("cannot start the idle timer: %s", uv_strerror(rv));
    main_shutdown(&ctx);
    (void)uv_run(&ctx.loop, UV_RUN_DEFAULT);
    goto done;
  }
  host_signals_release();
  log_notice("shmbusd %s listening on %s (%s bus, pid %d)", shmbus_version(), sock_path,
             o.system ? "system" : "per-user", (int)host_self_pid());
  host_ready_signal(&starter);
  host_ready_signal(&detached);
  {
    char msg[64];
    snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%d", (int)host_self_pid());
    main_notify_manager(msg);
  }
  (void)uv_run(&ctx.loop, UV_RUN_DEFAULT);
  log_notice("stopped");
  status = 0;

done:
  if (loop_init) {
    server_free(&ctx.srv);
    if ((rv = uv_loop_close(&ctx.loop)) < 0) {
      log_err("event loop still busy at exit: %s", uv_strerror(rv));
      status = OPTIONS_EXIT_ERROR;
    }
  } else if (listen_sock != HOST_SOCK_INVALID) {
    host_sock_close(listen_sock);
    (void)host_unlisten(sock_path);
  }
  config_free(cfg);
  host_ready_close(&detached);
  host_ready_close(&starter);
  host_lock_release(&lock); /* the file stays, harmless */
  log_close();
  host_stop_close(ctx.stop); /* last: a closing console waits for it */
  return status;
}

int main(int argc, char **argv) {
  static struct options o;
  int rv;

  /* Hold the signals we handle until the loop handles them: a SIGTERM that
   * arrives while we start would otherwise kill us half-way (leaving a
   * socket behind); held, it stops us cleanly as soon as we run. */
  host_signals_hold();
  if ((rv = options_parse(argc, argv, &o)) != 0)
    return rv;
  return host_service_run(o.service, main_run, &o);
}
