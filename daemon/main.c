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
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "config.h"
#include "faults.h"
#include "log.h"
#include "paths.h"
#include "proto.h"
#include "server.h"
#include "shmbus/error.h"
#include "shmbus/version.h"

#define MAIN_EXIT_ERROR 1
#define MAIN_EXIT_USAGE 2
#define MAIN_EXIT_LOCKED 3
#define MAIN_SYSTEM_CONFIG "/etc/shmbus/shmbusd.conf"

struct main_opts {
  bool foreground;
  bool system;
  bool verbose;
  const char *dir;
  const char *config;
  int ready_fd;
  double idle_exit; /* --idle-exit seconds; 0: never */
  char *limits[16]; /* --limit NAME=VALUE, in order */
  size_t nlimits;
};

/* Everything the loop's handles need. */
struct main_ctx {
  uv_loop_t loop;
  struct server srv;
  uv_signal_t sig_term;
  uv_signal_t sig_int;
  uv_signal_t sig_hup;
  int nsignals; /* how many of the above are initialised */
  uv_timer_t idle_timer; /* --idle-exit */
  bool idle_init;
  uint64_t idle_ms;    /* --idle-exit in milliseconds */
  uint64_t idle_since; /* uv_now when it was first seen idle; 0: busy */
  bool stopping;
};

static void main_usage(FILE *f) {
  fprintf(
      f,
      "usage: shmbusd [--foreground] [--system] [--dir DIR] [--config FILE]\n"
      "               [--limit NAME=VALUE]... [--ready-fd N] [--idle-exit S]\n"
      "               [--verbose] [--help] [--version]\n"
      "\n"
      "The shmbus bus daemon: hands out shared-memory topics to local processes.\n"
      "\n"
      "  -f, --foreground  stay in the foreground and log to stderr (default: detach,\n"
      "                    log to syslog)\n"
      "  -s, --system      run the system-wide bus (" SHMBUS__SYSTEM_DIR ", socket open to all,\n"
      "                    access decided by the config file)\n"
      "  -d, --dir DIR     bus directory (default: $SHMBUS_DIR, else " SHMBUS__SYSTEM_DIR " for\n"
      "                    --system, else $XDG_RUNTIME_DIR/shmbus, else /tmp/shmbus-UID)\n"
      "  -c, --config FILE permission rules (default for --system: " MAIN_SYSTEM_CONFIG ";\n"
      "                    without a file only the owner and root may use the bus)\n"
      "  -l, --limit NAME=VALUE\n"
      "                    a per-client limit, over the config file's `limit` lines\n"
      "                    (repeatable; 0 = none): topics (created, default %u),\n"
      "                    records (held, %u), memory (bytes of regions created,\n"
      "                    %lluG), region (bytes of one topic, %lluG), rate (control\n"
      "                    messages per second, %u), burst (%u), connections (of\n"
      "                    one uid on the system bus, %u), deadline_ms (system bus:\n"
      "                    the longest a publisher waits for one reliable\n"
      "                    subscriber, %u), and more in shmbusd(8); sizes take K/M/G\n"
      "  -r, --ready-fd N  write one byte to descriptor N once the socket accepts\n"
      "                    connections, then close it\n"
      "  -i, --idle-exit S exit after S seconds without clients and without topics\n"
      "                    (retained ones included); the library's autostart passes\n"
      "                    it (default: stay until stopped)\n"
      "  -v, --verbose     log debug messages too\n"
      "  -h, --help        show this help\n"
      "  -V, --version     show the version\n"
      "\n"
      "Signals: SIGTERM/SIGINT stop cleanly, SIGHUP reloads the config.\n"
      "With $NOTIFY_SOCKET set (systemd Type=notify) it sends READY=1 once it\n"
      "listens and STOPPING=1 when it stops. Man page: shmbusd(8).\n"
      "Exit status: 0 stopped cleanly, 1 error, 2 bad usage, 3 another shmbusd owns the\n"
      "bus directory.\n",
      CONFIG_LIMIT_TOPICS, CONFIG_LIMIT_RECORDS, CONFIG_LIMIT_MEMORY >> 30,
      CONFIG_LIMIT_REGION >> 30, CONFIG_LIMIT_RATE, CONFIG_LIMIT_BURST, CONFIG_LIMIT_CONNECTIONS,
      CONFIG_LIMIT_DEADLINE_MS);
}

static int main_parse(int argc, char **argv, struct main_opts *o) {
  static const struct option longopts[] = {
      {"foreground", no_argument, NULL, 'f'},     {"system", no_argument, NULL, 's'},
      {"dir", required_argument, NULL, 'd'},      {"config", required_argument, NULL, 'c'},
      {"ready-fd", required_argument, NULL, 'r'}, {"limit", required_argument, NULL, 'l'},
      {"verbose", no_argument, NULL, 'v'},        {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},        {"idle-exit", required_argument, NULL, 'i'},
      {NULL, 0, NULL, 0}};
  int ch;

  memset(o, 0, sizeof(*o));
  o->ready_fd = -1;
  while ((ch = getopt_long(argc, argv, "fsd:c:l:r:i:vhV", longopts, NULL)) != -1) {
    switch (ch) {
    case 'f':
      o->foreground = true;
      break;
    case 's':
      o->system = true;
      break;
    case 'd':
      o->dir = optarg;
      break;
    case 'c':
      o->config = optarg;
      break;
    case 'r': {
      char *end;
      long v;
      errno = 0;
      v = strtol(optarg, &end, 10);
      if (errno != 0 || *end != '\0' || end == optarg || v < 0 || v > 65535) {
        fprintf(stderr, "shmbusd: --ready-fd needs a descriptor number, not \"%s\"\n", optarg);
        return MAIN_EXIT_USAGE;
      }
      o->ready_fd = (int)v;
      break;
    }
    case 'i': {
      char *end;
      double v;
      errno = 0;
      v = strtod(optarg, &end);
      if (errno != 0 || *end != '\0' || end == optarg || !(v > 0) || v > 86400.0 * 365) {
        fprintf(stderr, "shmbusd: --idle-exit needs a number of seconds > 0, not \"%s\"\n",
                optarg);
        return MAIN_EXIT_USAGE;
      }
      o->idle_exit = v;
      break;
    }
    case 'l':
      if (o->nlimits == sizeof(o->limits) / sizeof(o->limits[0])) {
        fprintf(stderr, "shmbusd: too many --limit options\n");
        return MAIN_EXIT_USAGE;
      }
      o->limits[o->nlimits++] = optarg;
      break;
    case 'v':
      o->verbose = true;
      break;
    case 'h':
      main_usage(stdout);
      exit(0);
    case 'V':
      printf("shmbusd %s (protocol %u)\n", shmbus_version(), SHMBUS__PROTO_VERSION);
      exit(0);
    default:
      main_usage(stderr);
      return MAIN_EXIT_USAGE;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "shmbusd: unexpected argument \"%s\"\n", argv[optind]);
    main_usage(stderr);
    return MAIN_EXIT_USAGE;
  }
  return 0;
}

/* Creates the bus directory, or checks an existing one: a real directory
 * (not a symlink), ours, and writable by nobody else, since whoever can
 * write it could replace our socket. */
static int main_prepare_dir(const char *dir, bool system) {
  mode_t mode = system ? 0755 : 0700;
  struct stat st;

  if (mkdir(dir, mode) == 0) {
    /* mkdir applies the umask; the mode is part of the contract. */
    if (chmod(dir, mode) != 0) {
      log_err("cannot set the mode of %s: %s", dir, strerror(errno));
      return -1;
    }
  } else if (errno != EEXIST) {
    log_err("cannot create the bus directory %s: %s", dir, strerror(errno));
    return -1;
  }
  if (lstat(dir, &st) != 0) {
    log_err("cannot inspect %s: %s", dir, strerror(errno));
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) {
    log_err("%s is not a directory", dir);
    return -1;
  }
  if (st.st_uid != geteuid()) {
    log_err("%s belongs to uid %u, not to this daemon's uid %u", dir, (unsigned)st.st_uid,
            (unsigned)geteuid());
    return -1;
  }
  if ((st.st_mode & 022) != 0) {
    log_err("%s is writable by its group or by others (mode %03o); refusing to use it", dir,
            (unsigned)(st.st_mode & 0777));
    return -1;
  }
  return 0;
}

/* Takes the directory's lock. Returns the lock fd, -2 when another daemon
 * holds it, -1 on other errors (logged). */
static int main_lock(const char *dir, bool system) {
  char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 64];
  int fd;

  if (shmbus__bus_path(dir, SHMBUS__LOCK_NAME, path, sizeof(path)) < 0) {
    log_err("bus directory path too long: %s", dir);
    return -1;
  }
  fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, system ? 0644 : 0600);
  if (fd < 0) {
    log_err("cannot open %s: %s", path, strerror(errno));
    return -1;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    close(fd);
    if (e == EWOULDBLOCK)
      return -2;
    log_err("cannot lock %s: %s", path, strerror(e));
    return -1;
  }
  return fd;
}

/* Records our pid in the lock file, for operators. */
static void main_write_pid(int lock_fd) {
  char buf[32];
  int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());

  if (ftruncate(lock_fd, 0) != 0 || pwrite(lock_fd, buf, (size_t)n, 0) != n)
    log_warn("cannot write the pid into the lock file: %s", strerror(errno));
}

/* Binds and listens on the socket, replacing a stale one (we hold the lock,
 * so any socket file there belongs to a dead daemon). Returns the fd or -1. */
static int main_listen(const char *path, bool system) {
  struct sockaddr_un sa;
  struct stat st;
  mode_t mode = system ? 0666 : 0600;
  mode_t old;
  int fd;
  int rv;

  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof(sa.sun_path)) {
    log_err("socket path too long: %s", path);
    return -1;
  }
  memcpy(sa.sun_path, path, strlen(path) + 1);
  if (lstat(path, &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      log_err("%s exists and is not a socket; refusing to replace it", path);
      return -1;
    }
    if (unlink(path) != 0) {
      log_err("cannot remove the stale socket %s: %s", path, strerror(errno));
      return -1;
    }
    log_info("removed a stale socket left by a previous daemon");
  }
  fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    log_err("socket: %s", strerror(errno));
    return -1;
  }
  /* The umask decides the mode bind gives the file: make it right from
   * the start, then set it explicitly. */
  old = umask(0777 & ~mode);
  rv = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
  umask(old);
  if (rv != 0) {
    log_err("cannot bind %s: %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  if (chmod(path, mode) != 0 || listen(fd, SOMAXCONN) != 0) {
    log_err("cannot listen on %s: %s", path, strerror(errno));
    (void)unlink(path);
    close(fd);
    return -1;
  }
  return fd;
}

/* Each topic costs the daemon two descriptors and each participant one
 * (its eventfd): raise the soft limit to the hard one. */
static void main_raise_nofile(void) {
  struct rlimit rl;

  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
    return;
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
    log_warn("cannot raise the descriptor limit: %s", strerror(errno));
}

/* Detaches: fork, setsid, fork again (so the daemon can never reacquire a
 * terminal), chdir /, stdio on /dev/null. The first process waits until the
 * daemon reports it is ready (a byte on a pipe) or failed (EOF), and exits
 * 0 or 1 accordingly: whoever started us learns whether it worked. Returns
 * the write end of that pipe in the daemon, or -1 on failure. */
static int main_daemonize(void) {
  int p[2];
  pid_t pid;
  int fd;

  if (pipe2(p, O_CLOEXEC) != 0) {
    log_err("pipe: %s", strerror(errno));
    return -1;
  }
  if ((pid = fork()) < 0) {
    log_err("fork: %s", strerror(errno));
    close(p[0]);
    close(p[1]);
    return -1;
  }
  if (pid > 0) {
    char b;
    ssize_t n;
    close(p[1]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
      ;
    do
      n = read(p[0], &b, 1);
    while (n < 0 && errno == EINTR);
    _exit(n == 1 ? 0 : MAIN_EXIT_ERROR);
  }
  close(p[0]);
  if (setsid() < 0)
    _exit(MAIN_EXIT_ERROR);
  if ((pid = fork()) < 0)
    _exit(MAIN_EXIT_ERROR);
  if (pid > 0)
    _exit(0);
  if (chdir("/") != 0)
    _exit(MAIN_EXIT_ERROR);
  if ((fd = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
    _exit(MAIN_EXIT_ERROR);
  if (dup2(fd, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
    _exit(MAIN_EXIT_ERROR);
  if (fd > 2)
    close(fd);
  return p[1];
}

/* Writes the ready byte and closes the descriptor. */
static void main_notify_ready(int fd) {
  ssize_t n;

  if (fd < 0)
    return;
  do
    n = write(fd, "R", 1);
  while (n < 0 && errno == EINTR);
  close(fd);
}

/* Sends `msg` to systemd's notification socket, if $NOTIFY_SOCKET names
 * one: a path, or an abstract name written with a leading '@'. A tiny
 * sd_notify(3) by hand, so the daemon needs no libsystemd. Failures are
 * logged, never fatal: the daemon works without a supervisor. */
static void main_sd_notify(const char *msg) {
  const char *e = getenv("NOTIFY_SOCKET");
  struct sockaddr_un sa;
  socklen_t len;
  size_t n;
  ssize_t sent;
  int fd;

  if (e == NULL || e[0] == '\0')
    return;
  n = strlen(e);
  if ((e[0] != '/' && e[0] != '@') || n < 2 || n >= sizeof(sa.sun_path)) {
    log_warn("NOTIFY_SOCKET=%s is not a unix socket path or @name; not notifying", e);
    return;
  }
  memset(&sa, 0, sizeof(sa));
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, e, n);
  if (e[0] == '@')
    sa.sun_path[0] = '\0'; /* abstract: no terminating NUL, the length says */
  len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (e[0] == '/' ? 1 : 0));
  if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0) {
    log_warn("NOTIFY_SOCKET: socket: %s", strerror(errno));
    return;
  }
  do
    sent = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
  while (sent < 0 && errno == EINTR);
  if (sent < 0)
    log_warn("cannot notify %s: %s", e, strerror(errno));
  close(fd);
}

/* True while the daemon serves nobody: no client connected and no topic
 * but its own $sys/ ones (a retained or an adopted topic keeps it). */
static bool main_idle(const struct server *srv) {
  size_t i;

  if (srv->nclients != 0)
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
  main_sd_notify("STOPPING=1");
  server_shutdown(&ctx->srv);
  if (ctx->idle_init && !uv_is_closing((uv_handle_t *)&ctx->idle_timer))
    uv_close((uv_handle_t *)&ctx->idle_timer, NULL);
  for (i = 0; i < ctx->nsignals; i++)
    if (!uv_is_closing((uv_handle_t *)sigs[i]))
      uv_close((uv_handle_t *)sigs[i], NULL);
}

static void main_on_stop(struct server *srv) {
  main_shutdown(srv->data);
}

static void main_on_signal(uv_signal_t *h, int signum) {
  struct main_ctx *ctx = h->data;

  if (signum == SIGHUP) {
    log_notice("SIGHUP: reloading the config");
    server_reload(&ctx->srv);
    return;
  }
  log_notice("%s: shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
  main_shutdown(ctx);
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

int main(int argc, char **argv) {
  static struct main_ctx ctx;
  struct main_opts o;
  sigset_t held;
  struct config *cfg = NULL;
  const char *config_path = NULL;
  bool config_default = false;
  char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];
  char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
  char err[512];
  int status_fd = -1;
  int lock_fd = -1;
  int listen_fd = -1;
  bool loop_init = false;
  int status = MAIN_EXIT_ERROR;
  int rv;

  /* Sends use MSG_NOSIGNAL; this covers every other write (eventfds do not
   * raise it, but syslog's socket might). */
  signal(SIGPIPE, SIG_IGN);
  /* A memory file beyond RLIMIT_FSIZE must fail its ftruncate with EFBIG
   * (an error for that one topic), not kill the daemon with SIGXFSZ. */
  signal(SIGXFSZ, SIG_IGN);
  /* Hold the signals we handle until the loop handles them: a SIGTERM that
   * arrives while we start would otherwise kill us half-way (leaving a
   * socket behind); held, it stops us cleanly as soon as we run. */
  sigemptyset(&held);
  sigaddset(&held, SIGTERM);
  sigaddset(&held, SIGINT);
  sigaddset(&held, SIGHUP);
  (void)sigprocmask(SIG_BLOCK, &held, NULL);
  if ((rv = main_parse(argc, argv, &o)) != 0)
    return rv;
  log_init(LOG_SINK_STDERR, o.verbose);
  if (faults_init() < 0)
    return MAIN_EXIT_USAGE;
  if (o.ready_fd >= 0 && fcntl(o.ready_fd, F_SETFD, FD_CLOEXEC) != 0) {
    log_err("--ready-fd %d: %s", o.ready_fd, strerror(errno));
    return MAIN_EXIT_USAGE;
  }
  if (shmbus__bus_dir(o.dir, o.system, dir, sizeof(dir), NULL) < 0 ||
      shmbus__bus_path(dir, SHMBUS__SOCK_NAME, sock_path, sizeof(sock_path)) < 0) {
    log_err("the bus directory path is too long for a unix socket");
    goto done;
  }
  if (main_prepare_dir(dir, o.system) < 0)
    goto done;
  if ((lock_fd = main_lock(dir, o.system)) < 0) {
    if (lock_fd == -2) {
      log_err("another shmbusd owns %s", dir);
      status = MAIN_EXIT_LOCKED;
    }
    lock_fd = -1;
    goto done;
  }
  config_path = o.config;
  if (config_path == NULL && o.system) {
    config_path = MAIN_SYSTEM_CONFIG;
    config_default = true;
  }
  if (config_path != NULL) {
    rv = config_load(config_path, geteuid(), &cfg, err, sizeof(err));
    if (rv == -ENOENT && config_default) {
      log_notice("%s does not exist: only root may use the system bus", config_path);
    } else if (rv < 0) {
      log_err("config: %s", err);
      goto done;
    } else {
      log_info("config: %zu rule(s) from %s", config_rule_count(cfg), config_path);
    }
  }
  if (cfg == NULL && (cfg = config_new_default(geteuid())) == NULL) {
    log_err("out of memory");
    goto done;
  }
  for (size_t i = 0; i < o.nlimits; i++)
    if (config_limit_override(cfg, o.limits[i], err, sizeof(err)) < 0) {
      log_err("%s", err);
      status = MAIN_EXIT_USAGE;
      goto done;
    }
  main_raise_nofile();
  if ((listen_fd = main_listen(sock_path, o.system)) < 0)
    goto done;
  if (!o.foreground) {
    if ((status_fd = main_daemonize()) < 0)
      goto done;
    log_init(LOG_SINK_SYSLOG, o.verbose);
  }
  main_write_pid(lock_fd);
  if ((rv = uv_loop_init(&ctx.loop)) < 0) {
    log_err("cannot start the event loop: %s", uv_strerror(rv));
    goto done;
  }
  loop_init = true;
  rv = server_init(&ctx.srv, &ctx.loop, listen_fd, sock_path, o.system, cfg, config_path,
                   config_default);
  listen_fd = -1; /* the server owns it now */
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
  if (o.idle_exit > 0 && (rv = main_idle_start(&ctx, o.idle_exit)) < 0) {
    log_err("cannot start the idle timer: %s", uv_strerror(rv));
    main_shutdown(&ctx);
    (void)uv_run(&ctx.loop, UV_RUN_DEFAULT);
    goto done;
  }
  (void)sigprocmask(SIG_UNBLOCK, &held, NULL);
  log_notice("shmbusd %s listening on %s (%s bus, pid %d)", shmbus_version(), sock_path,
             o.system ? "system" : "per-user", (int)getpid());
  main_notify_ready(o.ready_fd);
  o.ready_fd = -1;
  main_notify_ready(status_fd);
  status_fd = -1;
  {
    char msg[64];
    snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%d", (int)getpid());
    main_sd_notify(msg);
  }
  (void)uv_run(&ctx.loop, UV_RUN_DEFAULT);
  log_notice("stopped");
  status = 0;

done:
  if (loop_init) {
    server_free(&ctx.srv);
    if ((rv = uv_loop_close(&ctx.loop)) < 0) {
      log_err("event loop still busy at exit: %s", uv_strerror(rv));
      status = MAIN_EXIT_ERROR;
    }
  } else if (listen_fd >= 0) {
    close(listen_fd);
    (void)unlink(sock_path);
  }
  config_free(cfg);
  if (status_fd >= 0)
    close(status_fd);
  if (lock_fd >= 0)
    close(lock_fd); /* releases the lock; the file stays, harmless */
  log_close();
  return status;
}
