/* xport_bridge: see xport_bridge.h. Needs libnats at build time only for
 * the nats-server it starts (tests/natsfix.c comes with SHMBUS_HAVE_NATS);
 * the bridge itself is a program given on the command line. */
#define _GNU_SOURCE
#include "xport_bridge.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "benchproc.h"
#include "benchutil.h"
#include "shmbus/shmbus.h"
#include "xport_shmbus.h"

#ifdef SHMBUS_HAVE_NATS
#include "natsfix.h"
#endif

/* The bridge carries NATS messages with headers: below NATS's default
 * max_payload of 1 MiB with room for them. */
#define BXB_MAX_SIZE ((size_t)512 << 10)
/* How long a bridge or bus B's daemon may take to exit after SIGTERM. */
#define BXB_STOP_MS 10000u

static const char *bxb_note = "not set up (bx_bridge_setup was not called)";
static char bxb_note_buf[512];
static const char *bridge_prog, *daemon_prog;

static const char *bxb_missing(void) {
  return bxb_note;
}

void bx_bridge_setup(const char *bridge_path, const char *daemon_path) {
  bridge_prog = bridge_path;
  daemon_prog = daemon_path;
#ifndef SHMBUS_HAVE_NATS
  bxb_note = "not built: CMake found no libnats (Debian libnats-dev), so the benchmark cannot run "
             "a nats-server for it";
#else
  if (bridge_path == NULL || bridge_path[0] == '\0')
    bxb_note = "no shmbus-bridge given (--bridge PATH or $SHMBUS_BRIDGE)";
  else if (access(bridge_path, X_OK) != 0) {
    snprintf(bxb_note_buf, sizeof(bxb_note_buf), "%s is not an executable program: %s", bridge_path,
             strerror(errno));
    bxb_note = bxb_note_buf;
  } else
    bxb_note = NULL;
#endif
}

#ifndef SHMBUS_HAVE_NATS

const struct bx_ops bx_bridge = {
    .name = "bridge",
    .flags = BX_F_FANOUT,
    .missing = bxb_missing,
};

#else

/* ---- the parent: bus B, a nats-server, two bridges ------------------------- */

/* The current run's processes and directory. Set by prepare() in the
 * parent before the fork: the children read bus B's directory from here. */
static char bxb_dir[96];
static char bxb_bus_b[128];
static pid_t bxb_daemon_b = -1, bxb_export = -1, bxb_import = -1;
static struct natsfix_cluster bxb_nats;
static bool bxb_nats_up;

/* Starts `argv` with stdin from /dev/null, stdout and stderr to `log`,
 * and (ready_fd >= 0) the write end of a pipe as descriptor 3, dying with
 * the benchmark. Returns its pid or -errno. */
static pid_t bxb_spawn(char *const argv[], const char *log, int ready_fd) {
  pid_t parent = getpid(), pid;

  fflush(NULL);
  if ((pid = fork()) < 0)
    return -errno;
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent || fd < 0 || null < 0 ||
        dup2(null, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
      _exit(127);
    if (ready_fd >= 0 && (ready_fd == 3 ? fcntl(3, F_SETFD, 0) : dup2(ready_fd, 3)) < 0)
      _exit(127);
    execv(argv[0], argv);
    fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
  }
  return pid;
}

/* Prints the end of a log to stderr. */
static void bxb_show_log(const char *what, const char *log) {
  char line[512];
  long size;
  FILE *f = fopen(log, "r");

  fprintf(stderr, "---- %s (%s) ----\n", what, log);
  if (f == NULL)
    return;
  if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > 4096)
    (void)fseek(f, size - 4096, SEEK_SET);
  else
    rewind(f);
  while (fgets(line, sizeof(line), f) != NULL)
    fputs(line, stderr);
  fclose(f);
}

/* SIGTERM, then SIGKILL after BXB_STOP_MS; returns the wait status (-1:
 * killed). */
static int bxb_stop(pid_t *pid) {
  int st = 0;
  if (*pid <= 0)
    return 0;
  (void)kill(*pid, SIGTERM);
  st = bp_wait_for(*pid, BXB_STOP_MS);
  *pid = -1;
  return st;
}

static int bxb_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  return (flag == FTW_DP ? rmdir(path) : unlink(path)) != 0 && errno != ENOENT ? -1 : 0;
}

static void bxb_teardown(void) {
  char log[160];
  int st;

  st = bxb_stop(&bxb_export);
  if (st != 0) {
    snprintf(log, sizeof(log), "%s/export.log", bxb_dir);
    fprintf(stderr, "shmbus-bench: the exporting bridge ended with status %d\n", st);
    bxb_show_log("shmbus-bridge --export", log);
  }
  st = bxb_stop(&bxb_import);
  if (st != 0) {
    snprintf(log, sizeof(log), "%s/import.log", bxb_dir);
    fprintf(stderr, "shmbus-bench: the importing bridge ended with status %d\n", st);
    bxb_show_log("shmbus-bridge --import", log);
  }
  (void)bxb_stop(&bxb_daemon_b);
  if (bxb_nats_up) {
    if (natsfix_cluster_stop(&bxb_nats) < 0)
      fprintf(stderr, "shmbus-bench: %s\n", bxb_nats.err);
    bxb_nats_up = false;
  }
  if (bxb_dir[0] != '\0' && getenv("SHMBUS_BENCH_KEEP") != NULL)
    fprintf(stderr, "shmbus-bench: kept %s (SHMBUS_BENCH_KEEP)\n", bxb_dir);
  else if (bxb_dir[0] != '\0' && nftw(bxb_dir, bxb_rm, 16, FTW_DEPTH | FTW_PHYS) != 0)
    fprintf(stderr, "shmbus-bench: cannot remove %s: %s\n", bxb_dir, strerror(errno));
  bxb_dir[0] = '\0';
}

static pid_t bxb_owner = -1;

/* At exit with a run still prepared: the run failed (a child died, a
 * timeout). The bridges are stopped first, so that their logs end with
 * their stats (what each exported, imported, dropped: where the messages
 * stopped); those logs and bus B's daemon's go with the error, then
 * everything is stopped and removed. */
static void bxb_at_exit(void) {
  char log[160];
  int st;

  if (getpid() != bxb_owner || bxb_dir[0] == '\0')
    return;
  st = bxb_stop(&bxb_export);
  fprintf(stderr, "shmbus-bench: the exporting bridge ended with status %d\n", st);
  snprintf(log, sizeof(log), "%s/export.log", bxb_dir);
  bxb_show_log("shmbus-bridge --export", log);
  st = bxb_stop(&bxb_import);
  fprintf(stderr, "shmbus-bench: the importing bridge ended with status %d\n", st);
  snprintf(log, sizeof(log), "%s/import.log", bxb_dir);
  bxb_show_log("shmbus-bridge --import", log);
  snprintf(log, sizeof(log), "%s/shmbusd-b.log", bxb_dir);
  bxb_show_log("shmbusd (bus B)", log);
  bxb_teardown();
}

static int bxb_prepare(struct bx_run *r) {
  char log[160], topic[64], url[64];
  struct pollfd pfd;
  int p[2], rv;
  char c;

  if (bxb_owner == -1)
    atexit(bxb_at_exit);
  bxb_owner = getpid();
  snprintf(bxb_dir, sizeof(bxb_dir), "/tmp/shmbus-bench-bridge-XXXXXX");
  if (mkdtemp(bxb_dir) == NULL) {
    bxb_dir[0] = '\0';
    return -errno;
  }
  snprintf(bxb_bus_b, sizeof(bxb_bus_b), "%s/bus-b", bxb_dir);
  if (mkdir(bxb_bus_b, 0700) != 0)
    return -errno;

  /* Bus B's daemon, ready when it writes its byte on descriptor 3. */
  if (pipe2(p, O_CLOEXEC) != 0)
    return -errno;
  snprintf(log, sizeof(log), "%s/shmbusd-b.log", bxb_dir);
  {
    char *argv[] = {
        (char *)daemon_prog, "--foreground", "--dir", bxb_bus_b, "--ready-fd", "3", NULL};
    bxb_daemon_b = bxb_spawn(argv, log, p[1]);
  }
  close(p[1]);
  if (bxb_daemon_b < 0) {
    close(p[0]);
    return (int)bxb_daemon_b;
  }
  pfd.fd = p[0];
  pfd.events = POLLIN;
  do
    rv = poll(&pfd, 1, 10000);
  while (rv < 0 && errno == EINTR);
  rv = rv > 0 && read(p[0], &c, 1) == 1 ? 0 : -ETIMEDOUT;
  close(p[0]);
  if (rv < 0) {
    bxb_show_log("shmbusd (bus B)", log);
    return rv;
  }

  /* A fresh server per run: every run starts without streams. */
  if ((rv = natsfix_cluster_start(&bxb_nats, 1, true)) < 0) {
    fprintf(stderr, "shmbus-bench: nats-server for the bridge: %s\n", bxb_nats.err);
    return rv;
  }
  bxb_nats_up = true;
  snprintf(url, sizeof(url), "%s", natsfix_urls(&bxb_nats));
  snprintf(topic, sizeof(topic), "bench/bridge/%u", r->id);

  snprintf(log, sizeof(log), "%s/export.log", bxb_dir);
  {
    char *argv[] = {(char *)bridge_prog,
                    "--nats",
                    url,
                    "--dir",
                    (char *)r->dir,
                    "--export",
                    topic,
                    "--name",
                    "bench-a",
                    r->reliable ? "--reliable" : NULL,
                    NULL};
    if ((bxb_export = bxb_spawn(argv, log, -1)) < 0)
      return (int)bxb_export;
  }
  snprintf(log, sizeof(log), "%s/import.log", bxb_dir);
  {
    char *argv[] = {(char *)bridge_prog,
                    "--nats",
                    url,
                    "--dir",
                    bxb_bus_b,
                    "--import",
                    topic,
                    "--name",
                    "bench-b",
                    r->reliable ? "--reliable" : NULL,
                    NULL};
    if ((bxb_import = bxb_spawn(argv, log, -1)) < 0)
      return (int)bxb_import;
  }
  return 0;
}

static void bxb_unprepare(struct bx_run *r) {
  (void)r;
  bxb_teardown();
}

/* ---- the children: a publisher on A, subscribers on B ---------------------- */

static int bxb_open(struct bx_ep *ep) {
  const struct bx_run *r = ep->run;
  struct shmbus_bus_opts bo;
  shmbus_bus *bus;
  char topic[64];
  int rv;

  if (ep->role != BX_PUB && ep->role != BX_SUB)
    return -ENOTSUP;
  snprintf(topic, sizeof(topic), "bench/bridge/%u", r->id);
  shmbus_bus_opts_init(&bo);
  bo.dir = ep->role == BX_PUB ? r->dir : bxb_bus_b;
  bo.autostart = 0;
  bo.name = ep->role == BX_PUB ? "bench-pub-a" : "bench-sub-b";
  if ((rv = shmbus_bus_open(&bus, &bo)) < 0)
    return rv;
  /* The topic as shmbus-bench's own rows make it, with room for the
   * exporting bridge. The bus's ts_ns on B is the importer's (or the
   * original's, as the bridge documents): without BX_F_STAMPS the
   * endpoint hands on ts_ns 0, and the benchmark's own stamp in the
   * message makes the latency A's publish to B's delivery. */
  return bxs_open_on(ep, bus, topic, topic, 1);
}

static int64_t bxb_lost(struct bx_ep *ep) {
  (void)ep;
  return -1; /* the sequence gaps: losses on B, in NATS and on A alike */
}

const struct bx_ops bx_bridge = {
    .name = "bridge",
    .flags = BX_F_FANOUT | BX_F_HELLO,
    .max_size = BXB_MAX_SIZE,
    .size_note = "larger than the bridge carries in this benchmark (512 KiB: NATS's max_payload "
                 "of 1 MiB, less room for headers)",
    .missing = bxb_missing,
    .prepare = bxb_prepare,
    .unprepare = bxb_unprepare,
    .open = bxb_open,
    .send = bxs_send,
    .poll = bxs_poll,
    .wait = bxs_wait,
    .uv_start = bxs_uv_start_copy,
    .lost = bxb_lost,
    .close = bxs_close,
};

#endif
