#define _GNU_SOURCE
#include "natsfix.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long a node may take to get ready (JetStream elects its meta leader
 * in well under a second on an idle machine; a loaded CI machine running
 * sanitizers next to it is much slower). */
#define NF_READY_MS 60000
/* The pause between two rounds of readiness polls. */
#define NF_POLL_MS 20
/* Attempts at a start whose ports someone else took in between, or whose
 * JetStream cluster formed wrong. */
#define NF_PORT_TRIES 5
/* How long a JetStream cluster whose nodes are up may have a metadata
 * group short of a node before it is taken for one formed wrong, ms. */
#define NF_META_MS 10000
/* One monitoring request's send and receive timeout. */
#define NF_HTTP_MS 2000

static void nf_err(struct natsfix_cluster *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void nf_err(struct natsfix_cluster *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, sizeof(c->err), fmt, ap);
  va_end(ap);
}

static int64_t nf_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nf_pause_ms(int ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

/* The server program's path into `out`: $SHMBUS_NATS_SERVER, the one
 * found at configure time, or the first `nats-server` on the PATH (looked
 * up here, not by execvp in the child: the caller may have threads, and
 * between fork and exec only async-signal-safe calls are allowed). Returns
 * 0, or -ENOENT with the name tried in `out`. */
static int nf_server_path(char *out, size_t cap) {
  const char *env = getenv("SHMBUS_NATS_SERVER");
  const char *path = getenv("PATH");

  if (env != NULL && env[0] != '\0') {
    snprintf(out, cap, "%s", env);
    return access(out, X_OK) == 0 ? 0 : -ENOENT;
  }
#ifdef NATSFIX_SERVER_PATH
  snprintf(out, cap, "%s", NATSFIX_SERVER_PATH);
  if (access(out, X_OK) == 0)
    return 0;
#endif
  while (path != NULL && path[0] != '\0') {
    const char *end = strchr(path, ':');
    size_t len = end != NULL ? (size_t)(end - path) : strlen(path);
    if (len > 0 && (size_t)snprintf(out, cap, "%.*s/nats-server", (int)len, path) < cap &&
        access(out, X_OK) == 0)
      return 0;
    path = end != NULL ? end + 1 : NULL;
  }
  snprintf(out, cap, "nats-server");
  return -ENOENT;
}

/* Takes `n` distinct free loopback ports: every socket stays bound until
 * all are read, so no two are the same; then all are closed, and the
 * server binds them a moment later (a race with other programs that
 * natsfix_cluster_start retries on). */
static int nf_free_ports(uint16_t *ports, int n) {
  int fds[3 * NATSFIX_MAX_NODES];
  int i, rv = 0;

  for (i = 0; i < n; i++)
    fds[i] = -1;
  for (i = 0; i < n && rv == 0; i++) {
    struct sockaddr_in a;
    socklen_t len = sizeof(a);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    if ((fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        bind(fds[i], (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fds[i], (struct sockaddr *)&a, &len) != 0)
      rv = -errno;
    else
      ports[i] = ntohs(a.sin_port);
  }
  for (i = 0; i < n; i++)
    if (fds[i] >= 0)
      close(fds[i]);
  return rv;
}

static int nf_write_file(const char *path, const char *text) {
  size_t len = strlen(text), done = 0;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  int rv = 0;

  if (fd < 0)
    return -errno;
  while (done < len) {
    ssize_t w = write(fd, text + done, len - done);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0) {
      rv = -errno;
      break;
    }
    done += (size_t)w;
  }
  if (close(fd) != 0 && rv == 0)
    rv = -errno;
  return rv;
}

/* Writes node i's configuration: its name, ports, store, and routes to
 * every node of the cluster (nats-server skips the route to itself). */
/* Node i's server name: the private directory's name (unique on this
 * host while the cluster lives) and the node's index, so readiness can
 * tell our server from another's that took the port meanwhile. */
#define NF_NAME_MAX 160
static const char *nf_server_name(const struct natsfix_cluster *c, int i, char name[NF_NAME_MAX]) {
  const char *base = strrchr(c->dir, '/');
  snprintf(name, NF_NAME_MAX, "%s-n%d", base != NULL ? base + 1 : c->dir, i);
  return name;
}

int natsfix_node_index(const struct natsfix_cluster *c, const char *server_name) {
  char name[NF_NAME_MAX];
  int i;

  for (i = 0; server_name != NULL && i < c->nodes; i++)
    if (strcmp(nf_server_name(c, i, name), server_name) == 0)
      return i;
  return -1;
}

static int nf_write_conf(struct natsfix_cluster *c, int i) {
  struct natsfix_node *n = &c->node[i];
  char name[NF_NAME_MAX];
  char text[2048];
  size_t off = 0;
  int k;

#define NF_ADD(...)                                                                                \
  do {                                                                                             \
    int w_ = snprintf(text + off, sizeof(text) - off, __VA_ARGS__);                                \
    if (w_ < 0 || (size_t)w_ >= sizeof(text) - off)                                                \
      return -ENAMETOOLONG;                                                                        \
    off += (size_t)w_;                                                                             \
  } while (0)
  NF_ADD("server_name: %s\nlisten: 127.0.0.1:%u\nhttp: 127.0.0.1:%u\n", nf_server_name(c, i, name),
         n->port, n->http_port);
  if (c->jetstream)
    NF_ADD("jetstream {\n  store_dir: \"%s/n%d\"\n  max_memory_store: 256MB\n"
           "  max_file_store: 1GB\n}\n",
           c->dir, i);
  if (c->nodes > 1) {
    NF_ADD("cluster {\n  name: natsfix\n  listen: 127.0.0.1:%u\n  routes: [\n", n->cluster_port);
    for (k = 0; k < c->nodes; k++)
      NF_ADD("    nats-route://127.0.0.1:%u\n", c->node[k].cluster_port);
    NF_ADD("  ]\n}\n");
  }
#undef NF_ADD
  return nf_write_file(n->conf, text);
}

/* Starts node i's server in the background, its output appended to its
 * log. The child dies with the calling thread (PR_SET_PDEATHSIG), so a
 * test worker that crashes leaves no server behind. An exec failure
 * comes back through a close-on-exec pipe as the child's errno. */
static int nf_spawn(struct natsfix_cluster *c, int i) {
  struct natsfix_node *n = &c->node[i];
  char server[512];
  pid_t parent = getpid(), pid;
  int p[2], child_errno = 0, logfd;
  ssize_t r;

  if (nf_server_path(server, sizeof(server)) < 0) {
    nf_err(c,
           "n%d: %s not found (Debian nats-server; scripts/deps.sh --test installs it, "
           "or set SHMBUS_NATS_SERVER)",
           i, server);
    return -ENOENT;
  }
  if ((logfd = open(n->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)) < 0)
    return -errno;
  if (pipe2(p, O_CLOEXEC) != 0) {
    int e = -errno;
    close(logfd);
    return e;
  }
  if ((pid = fork()) < 0) {
    int e = -errno;
    close(p[0]);
    close(p[1]);
    close(logfd);
    return e;
  }
  if (pid == 0) {
    int devnull = open("/dev/null", O_RDONLY);
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent || devnull < 0 ||
        dup2(devnull, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0) {
      child_errno = errno;
      goto fail;
    }
    /* Nothing else of the caller's reaches the server (a test runner's
     * pipes, say): every descriptor above 2 closes at exec. Best effort:
     * kernels before 5.11 do not know the flag. */
    (void)close_range(3, ~0u, CLOSE_RANGE_CLOEXEC);
    execl(server, "nats-server", "-c", n->conf, (char *)NULL);
    child_errno = errno;
  fail:
    (void)!write(p[1], &child_errno, sizeof(child_errno));
    _exit(127);
  }
  close(p[1]);
  close(logfd);
  do
    r = read(p[0], &child_errno, sizeof(child_errno));
  while (r < 0 && errno == EINTR);
  close(p[0]);
  if (r == (ssize_t)sizeof(child_errno)) {
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
      ;
    nf_err(c, "n%d: cannot run %s: %s", i, server, strerror(child_errno));
    return -child_errno;
  }
  n->pid = pid;
  return 0;
}

/* One GET on node i's monitoring port. Returns the HTTP status (200 for
 * a healthy node) with the body in `body`, or -errno when the port does
 * not answer (not listening yet: -ECONNREFUSED). */
static int nf_http_get(const struct natsfix_node *n, const char *path, char *body, size_t cap) {
  struct timeval tv = {.tv_sec = NF_HTTP_MS / 1000, .tv_usec = (NF_HTTP_MS % 1000) * 1000};
  struct sockaddr_in a;
  char req[256];
  size_t got = 0, len;
  int fd, status = 0, rv;

  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(n->http_port);
  if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
    return -errno;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0 ||
      connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
    rv = -errno;
    goto out;
  }
  len = (size_t)snprintf(req, sizeof(req),
                         "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", path);
  if (send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len) {
    rv = errno != 0 ? -errno : -EIO;
    goto out;
  }
  /* HTTP/1.0: the server closes after the response. */
  for (;;) {
    ssize_t r = recv(fd, body + got, cap - 1 - got, 0);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      rv = -errno;
      goto out;
    }
    if (r == 0 || (got += (size_t)r) == cap - 1)
      break;
  }
  body[got] = '\0';
  if (sscanf(body, "HTTP/%*u.%*u %d", &status) != 1) {
    rv = -EPROTO;
    goto out;
  }
  /* Keep only the body. */
  {
    char *b = strstr(body, "\r\n\r\n");
    if (b != NULL)
      memmove(body, b + 4, strlen(b + 4) + 1);
  }
  rv = status;
out:
  close(fd);
  return rv;
}

/* Counts the distinct other servers node i has routes to, from /routez
 * ("remote_id" once per route; a server may have several routes to one
 * peer, from nats-server 2.10 on). Returns the count or -errno. */
static int nf_route_peers(const struct natsfix_node *n, char *why, size_t whycap) {
  static const char key[] = "\"remote_id\"";
  char body[65536];
  char ids[NATSFIX_MAX_NODES * 4][64];
  int nids = 0, st;
  const char *p;

  if ((st = nf_http_get(n, "/routez", body, sizeof(body))) < 0)
    return st;
  if (st != 200) {
    snprintf(why, whycap, "/routez answered %d", st);
    return 0;
  }
  for (p = strstr(body, key); p != NULL; p = strstr(p, key)) {
    char id[64];
    int k;
    p += sizeof(key) - 1;
    if (sscanf(p, " : \"%63[^\"]\"", id) != 1)
      continue;
    for (k = 0; k < nids && strcmp(ids[k], id) != 0; k++)
      ;
    if (k == nids && nids < (int)(sizeof(ids) / sizeof(ids[0])))
      snprintf(ids[nids++], sizeof(ids[0]), "%s", id);
  }
  return nids;
}

/* Whether a JSON body has "key": "value" (the servers' own output: a
 * plain search, spaces around the colon allowed). */
static int nf_json_has(const char *body, const char *key, const char *value) {
  char k[64];
  const char *p;
  size_t vl = strlen(value);

  snprintf(k, sizeof(k), "\"%s\"", key);
  for (p = strstr(body, k); p != NULL; p = strstr(p + 1, k)) {
    const char *q = p + strlen(k);
    while (*q == ' ')
      q++;
    if (*q++ != ':')
      continue;
    while (*q == ' ')
      q++;
    if (*q == '"' && strncmp(q + 1, value, vl) == 0 && q[1 + vl] == '"')
      return 1;
  }
  return 0;
}

/* The size of the JetStream metadata group as node i sees it (/jsz's
 * meta_cluster.cluster_size), 0 when it says none, or -errno. */
static int nf_meta_size(const struct natsfix_node *n) {
  static const char key[] = "\"cluster_size\"";
  char body[16384];
  const char *p;
  int st, size = 0;

  if ((st = nf_http_get(n, "/jsz", body, sizeof(body))) < 0)
    return st;
  if (st != 200 || (p = strstr(body, "\"meta_cluster\"")) == NULL || (p = strstr(p, key)) == NULL ||
      sscanf(p + sizeof(key) - 1, " : %d", &size) != 1)
    return 0;
  return size;
}

/* Whether node i is ready: 1 yes, 0 not yet (why in `why`), 2 ready but
 * for the JetStream metadata group, which does not count every node yet. */
static int nf_node_ready(struct natsfix_cluster *c, int i, int running, char *why, size_t whycap) {
  struct natsfix_node *n = &c->node[i];
  char name[NF_NAME_MAX];
  char big[16384];
  char body[4096];
  int st, peers;

  st = nf_http_get(n, "/healthz", body, sizeof(body));
  if (st < 0) {
    snprintf(why, whycap, "monitoring port %u: %s", n->http_port, strerror(-st));
    return 0;
  }
  if (st != 200) {
    snprintf(why, whycap, "/healthz answered %d: %.160s", st, body);
    return 0;
  }
  /* The server on the port must be ours: another test's server may have
   * taken a port between our pick and our server's bind (ours then exits). */
  if ((st = nf_http_get(n, "/varz", big, sizeof(big))) != 200) {
    snprintf(why, whycap, "/varz answered %d", st);
    return 0;
  }
  nf_server_name(c, i, name);
  if (nf_json_has(big, "server_name", name) == 0) {
    snprintf(why, whycap, "the server on monitoring port %u is not %s", n->http_port, name);
    return 0;
  }
  if (running > 1) {
    peers = nf_route_peers(n, why, whycap);
    if (peers < 0) {
      snprintf(why, whycap, "/routez: %s", strerror(-peers));
      return 0;
    }
    if (peers < running - 1) {
      snprintf(why, whycap, "routes to %d of the %d other running nodes", peers, running - 1);
      return 0;
    }
  }
  /* A JetStream cluster: the metadata group must count every node (a
   * node stopped on purpose stays counted). nats-server 2.10 sometimes
   * forms it without one of them, which follows the leader while the
   * leader does not count it, and it stays so for minutes: a stream of 3
   * replicas cannot be placed then ("no suitable peers for placement"). */
  if (c->jetstream && c->nodes > 1) {
    int size = nf_meta_size(n);
    if (size < c->nodes) {
      snprintf(why, whycap, "JetStream's metadata group counts %d of the %d nodes", size, c->nodes);
      return size > 0 ? 2 : 0;
    }
  }
  return 1;
}

/* Whether node i exited: reaps it and says so in c->err. */
static bool nf_exited(struct natsfix_cluster *c, int i) {
  int status;
  pid_t r;

  while ((r = waitpid(c->node[i].pid, &status, WNOHANG)) < 0 && errno == EINTR)
    ;
  if (r != c->node[i].pid)
    return false;
  c->node[i].pid = 0;
  if (WIFEXITED(status))
    nf_err(c, "n%d (nats-server) exited with status %d before it was ready (log: %s)", i,
           WEXITSTATUS(status), c->node[i].log);
  else
    nf_err(c, "n%d (nats-server) was killed by signal %d before it was ready (log: %s)", i,
           WTERMSIG(status), c->node[i].log);
  return true;
}

/* Whether node i's log says that one of its ports was taken. */
static bool nf_port_taken(const struct natsfix_cluster *c, int i) {
  char line[1024];
  bool taken = false;
  FILE *f = fopen(c->node[i].log, "r");

  if (f == NULL)
    return false;
  while (!taken && fgets(line, sizeof(line), f) != NULL)
    taken = strstr(line, "address already in use") != NULL;
  fclose(f);
  return taken;
}

int natsfix_cluster_wait_ready(struct natsfix_cluster *c) {
  int64_t deadline = nf_now_ms() + NF_READY_MS, short_since = 0;
  char why[NATSFIX_MAX_NODES][256];
  bool ready[NATSFIX_MAX_NODES] = {false};
  int i, running = 0, left, meta_short;

  for (i = 0; i < c->nodes; i++) {
    why[i][0] = '\0';
    if (c->node[i].pid > 0)
      running++;
  }
  for (;;) {
    left = 0;
    meta_short = 0;
    for (i = 0; i < c->nodes; i++) {
      int r;
      if (c->node[i].pid <= 0 || ready[i])
        continue;
      if (nf_exited(c, i)) {
        natsfix_dump_logs(c, 60);
        return -ECHILD;
      }
      r = nf_node_ready(c, i, running, why[i], sizeof(why[i]));
      ready[i] = r == 1;
      left += !ready[i];
      meta_short += r == 2;
    }
    if (left == 0)
      return 0;
    /* Every node up but the metadata group short of one for a while: a
     * cluster formed wrong, which does not mend soon (the caller may start
     * it again). */
    if (meta_short == left) {
      if (short_since == 0)
        short_since = nf_now_ms();
      else if (nf_now_ms() - short_since >= NF_META_MS) {
        for (i = 0; i < c->nodes && (c->node[i].pid <= 0 || ready[i]); i++)
          ;
        nf_err(c, "n%d: %s for %d ms (log: %s)", i, why[i], NF_META_MS, c->node[i].log);
        return -EAGAIN;
      }
    } else {
      short_since = 0;
    }
    if (nf_now_ms() >= deadline)
      break;
    nf_pause_ms(NF_POLL_MS);
  }
  for (i = 0; i < c->nodes; i++)
    if (c->node[i].pid > 0 && !ready[i]) {
      nf_err(c, "n%d (nats-server, pid %d) not ready after %d ms: %s (log: %s)", i,
             (int)c->node[i].pid, NF_READY_MS, why[i], c->node[i].log);
      break;
    }
  natsfix_dump_logs(c, 60);
  return -ETIMEDOUT;
}

/* Kills and reaps every running node. */
static void nf_kill_all(struct natsfix_cluster *c) {
  int i;
  for (i = 0; i < c->nodes; i++)
    natsfix_node_kill(c, i);
}

static int nf_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  if ((flag == FTW_DP ? rmdir(path) : unlink(path)) != 0 && errno != ENOENT)
    return errno;
  return 0;
}

/* One attempt at starting every node on fresh ports. Returns 0, -EAGAIN
 * when a port was taken in between (everything killed again), or -errno. */
static int nf_start_once(struct natsfix_cluster *c) {
  uint16_t ports[3 * NATSFIX_MAX_NODES];
  size_t off = 0;
  int i, rv;

  if ((rv = nf_free_ports(ports, 3 * c->nodes)) < 0) {
    nf_err(c, "no free loopback port: %s", strerror(-rv));
    return rv;
  }
  c->urls[0] = '\0';
  for (i = 0; i < c->nodes; i++) {
    struct natsfix_node *n = &c->node[i];
    n->pid = 0;
    n->port = ports[3 * i];
    n->cluster_port = ports[3 * i + 1];
    n->http_port = ports[3 * i + 2];
    snprintf(n->url, sizeof(n->url), "nats://127.0.0.1:%u", n->port);
    off += (size_t)snprintf(c->urls + off, sizeof(c->urls) - off, "%s%s", i > 0 ? "," : "", n->url);
    snprintf(n->conf, sizeof(n->conf), "%s/n%d.conf", c->dir, i);
    snprintf(n->log, sizeof(n->log), "%s/n%d.log", c->dir, i);
    /* A retry starts its logs afresh. */
    if (unlink(n->log) != 0 && errno != ENOENT) {
      rv = -errno;
      nf_err(c, "%s: %s", n->log, strerror(errno));
      return rv;
    }
  }
  for (i = 0; i < c->nodes; i++) {
    if ((rv = nf_write_conf(c, i)) < 0) {
      nf_err(c, "%s: %s", c->node[i].conf, strerror(-rv));
      return rv;
    }
  }
  for (i = 0; i < c->nodes; i++)
    if ((rv = nf_spawn(c, i)) < 0)
      return rv;
  rv = natsfix_cluster_wait_ready(c);
  if (rv == -ECHILD) {
    for (i = 0; i < c->nodes; i++)
      if (nf_port_taken(c, i)) {
        nf_err(c, "a port was taken by another program");
        nf_kill_all(c);
        return -EAGAIN;
      }
  }
  if (rv == -EAGAIN) {
    /* Formed wrong: started again afresh, stores and all. */
    fprintf(stderr, "natsfix: %s; starting the cluster again\n", c->err);
    nf_kill_all(c);
    for (i = 0; i < c->nodes; i++) {
      char store[sizeof(c->dir) + 16];
      int e;
      snprintf(store, sizeof(store), "%s/n%d", c->dir, i);
      if ((e = nftw(store, nf_rm_entry, 16, FTW_DEPTH | FTW_PHYS)) > 0 ||
          (e < 0 && errno != ENOENT)) {
        rv = e > 0 ? -e : -errno;
        nf_err(c, "cannot remove %s: %s", store, strerror(-rv));
        return rv;
      }
    }
  }
  return rv;
}

int natsfix_cluster_start(struct natsfix_cluster *c, int nodes, bool jetstream) {
  int rv = -EAGAIN, attempt;

  memset(c, 0, sizeof(*c));
  if (nodes < 1 || nodes > NATSFIX_MAX_NODES) {
    nf_err(c, "natsfix: %d nodes asked, 1 to %d possible", nodes, NATSFIX_MAX_NODES);
    return -EINVAL;
  }
  c->nodes = nodes;
  c->jetstream = jetstream;
  {
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] != '/')
      tmp = "/tmp";
    /* The path goes into the servers' configuration files, quoted. */
    if (strpbrk(tmp, "\"\\\n") != NULL) {
      nf_err(c, "TMPDIR holds a quote, a backslash or a newline: %s", tmp);
      return -EINVAL;
    }
    if ((size_t)snprintf(c->dir, sizeof(c->dir), "%s/shmbus-natsfix-XXXXXX", tmp) >=
        sizeof(c->dir)) {
      nf_err(c, "TMPDIR is too long: %s", tmp);
      c->dir[0] = '\0';
      return -ENAMETOOLONG;
    }
  }
  if (mkdtemp(c->dir) == NULL) {
    rv = -errno;
    nf_err(c, "mkdtemp %s: %s", c->dir, strerror(errno));
    c->dir[0] = '\0';
    return rv;
  }
  for (attempt = 0; attempt < NF_PORT_TRIES && rv == -EAGAIN; attempt++)
    rv = nf_start_once(c);
  if (rv == -EAGAIN) {
    char last[sizeof(c->err)];
    memcpy(last, c->err, sizeof(last));
    nf_err(c, "%d starts in a row failed; the last: %.400s", NF_PORT_TRIES, last);
  }
  if (rv < 0) {
    /* Keep the reason: stopping clears nothing but may fail too. */
    char err[sizeof(c->err)];
    memcpy(err, c->err, sizeof(err));
    natsfix_cluster_stop(c);
    memcpy(c->err, err, sizeof(err));
  }
  return rv;
}

const char *natsfix_urls(const struct natsfix_cluster *c) {
  return c->urls;
}

int natsfix_node_kill(struct natsfix_cluster *c, int i) {
  if (i < 0 || i >= c->nodes)
    return -EINVAL;
  if (c->node[i].pid > 0) {
    /* The pid is our unreaped child: it cannot have been reused. */
    kill(c->node[i].pid, SIGKILL);
    while (waitpid(c->node[i].pid, NULL, 0) < 0 && errno == EINTR)
      ;
    c->node[i].pid = 0;
  }
  return 0;
}

int natsfix_node_restart(struct natsfix_cluster *c, int i) {
  int rv;

  if (i < 0 || i >= c->nodes)
    return -EINVAL;
  natsfix_node_kill(c, i);
  if ((rv = nf_spawn(c, i)) < 0)
    return rv;
  return natsfix_cluster_wait_ready(c);
}

int natsfix_cluster_stop(struct natsfix_cluster *c) {
  int rv = 0;

  nf_kill_all(c);
  if (c->dir[0] != '\0') {
    int e = nftw(c->dir, nf_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (e != 0) {
      rv = e > 0 ? -e : -errno;
      nf_err(c, "cannot remove %s: %s", c->dir, strerror(-rv));
    } else {
      c->dir[0] = '\0';
    }
  }
  return rv;
}

void natsfix_dump_logs(const struct natsfix_cluster *c, int lines) {
  int i;

  for (i = 0; i < c->nodes; i++) {
    char line[1024];
    long starts[256];
    int count = 0, k, keep = lines < 1 ? 1 : lines < 256 ? lines : 256;
    FILE *f = fopen(c->node[i].log, "r");

    fprintf(stderr, "---- natsfix: n%d (port %u) log %s ----\n", i, c->node[i].port,
            c->node[i].log);
    if (f == NULL) {
      fprintf(stderr, "(cannot open: %s)\n", strerror(errno));
      continue;
    }
    /* The offsets of the last `keep` lines, in a ring. */
    for (;;) {
      long at = ftell(f);
      if (fgets(line, sizeof(line), f) == NULL)
        break;
      starts[count++ % keep] = at;
    }
    if (count > 0) {
      k = count > keep ? count - keep : 0;
      if (fseek(f, starts[k % keep], SEEK_SET) == 0)
        while (fgets(line, sizeof(line), f) != NULL)
          fputs(line, stderr);
    }
    fclose(f);
  }
}
