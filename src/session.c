/* session: a participant's session with shmbusd. See session.h. */
#include "session.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "paths.h"
#include "platform/platform.h"
#include "shmbus/error.h"

#ifndef SHMBUS_DAEMON_INSTALL_PATH
#define SHMBUS_DAEMON_INSTALL_PATH "/usr/local/bin/shmbusd"
#endif

/* Why the last shmbus__session_connect of this thread failed, when there is
 * more to say than its code (which daemon binaries autostart looked for,
 * which bus directory does not exist). Per thread, because a failed
 * shmbus_bus_open leaves no bus to hold it. */
static _Thread_local char session_why[1024];

const char *shmbus__session_open_error(void) {
  return session_why;
}

__attribute__((format(printf, 1, 2))) static void session_set_why(const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  (void)vsnprintf(session_why, sizeof(session_why), fmt, ap);
  va_end(ap);
}

/* Appends to session_why, cutting with "..." when it is full. */
__attribute__((format(printf, 1, 2))) static void session_add_why(const char *fmt, ...) {
  size_t len = strlen(session_why);
  va_list ap;
  int n;

  if (len + 4 >= sizeof(session_why))
    return;
  va_start(ap, fmt);
  n = vsnprintf(session_why + len, sizeof(session_why) - len, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof(session_why) - len)
    memcpy(session_why + sizeof(session_why) - 4, "...", 4);
}

static int session_copy(char *dst, size_t cap, const char *src) {
  int n = snprintf(dst, cap, "%s", src);
  return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int shmbus__session_init(struct shmbus__session *c, const char *dir, const char *name,
                         int autostart, const char *daemon_path, int timeout_ms,
                         shmbus__session_event_fn on_event, void *ctx) {
  const char *env;
  int rv;

  memset(c, 0, sizeof(*c));
  c->sock = SHMBUS__OS_HANDLE_INVALID;
  c->next_id = 1;
  c->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
  c->on_event = on_event;
  c->ctx = ctx;
  if (autostart < 0) {
    env = getenv("SHMBUS_NO_AUTOSTART");
    autostart = !(env != NULL && strcmp(env, "1") == 0);
  }
  c->autostart = autostart != 0;
  if ((rv = shmbus__bus_dir(dir, false, c->dir, sizeof(c->dir), &c->dir_default)) < 0)
    return rv;
  if ((rv = shmbus__bus_path(c->dir, SHMBUS__SOCK_NAME, c->sock_path, sizeof(c->sock_path))) < 0)
    return rv;
  /* A longer name is cut, as the API documents. */
  snprintf(c->name, sizeof(c->name), "%s", name != NULL ? name : shmbus__program_name());
  /* A daemon named by the options or $SHMBUS_DAEMON is the only one
   * tried; otherwise session_find_daemon searches when it is needed. */
  if (daemon_path == NULL) {
    env = getenv("SHMBUS_DAEMON");
    if (env != NULL && env[0] != '\0') {
      daemon_path = env;
      c->daemon_from_env = true;
    }
  }
  if (daemon_path == NULL)
    return 0;
  return session_copy(c->daemon_path, sizeof(c->daemon_path), daemon_path);
}

void shmbus__session_close(struct shmbus__session *c) {
  if (!shmbus__handle_ok(c->sock))
    return;
  if (c->on_closing != NULL)
    c->on_closing(c->ctx);
  shmbus__fd_close(c->sock);
  c->sock = SHMBUS__OS_HANDLE_INVALID;
  c->gen++;
}

/* Where autostart looks for shmbusd when no path was given (by the bus
 * options or $SHMBUS_DAEMON), first found first used:
 *   1. beside the library: in its own directory, in ../bin and ../sbin of
 *      it (lib/ next to bin/ under a prefix), in ../../bin (a multiarch
 *      lib/<triplet>/), and in daemon/ (the build tree: the library at its
 *      top, the daemon in daemon/);
 *   2. beside the program that uses the library (/proc/self/exe): its
 *      directory, ../bin, and ../daemon (a program of the build tree);
 *   3. where the build installs it (SHMBUS_DAEMON_INSTALL_PATH);
 *   4. every directory of $PATH.
 * So an installed tree works wherever its prefix is moved, and a program
 * run from the build tree starts the daemon of that build. */
struct session_place {
  unsigned up;     /* directories to go up from the file's own */
  const char *sub; /* then into this one ("" none) */
};
static const struct session_place session_lib_places[] = {
    {0, ""}, {1, "bin"}, {1, "sbin"}, {2, "bin"}, {0, "daemon"}};
static const struct session_place session_exe_places[] = {{0, ""}, {1, "bin"}, {1, "daemon"}};

/* Whether `path` is already in the list of places tried. */
static bool session_tried(const char *path) {
  size_t n = strlen(path);
  const char *p = session_why;

  while ((p = strstr(p, path)) != NULL) {
    if ((p == session_why || (p >= session_why + 2 && p[-2] == ',' && p[-1] == ' ')) &&
        (p[n] == '\0' || p[n] == ','))
      return true;
    p++;
  }
  return false;
}

/* Tries `path`; on success copies it into c->daemon_path. Adds it to the
 * list of places tried in session_why (once). */
static bool session_try_path(struct shmbus__session *c, const char *path) {
  size_t n = strlen(path);

  if (n >= sizeof(c->daemon_path))
    return false;
  if (!session_tried(path))
    session_add_why("%s%s", session_why[0] == '\0' ? "" : ", ", path);
  if (!shmbus__is_executable(path))
    return false;
  memcpy(c->daemon_path, path, n + 1);
  return true;
}

/* Tries shmbusd at each place relative to the directory of `file` (an
 * absolute path without symlinks, so going up is cutting components). */
static bool session_try_places(struct shmbus__session *c, const char *file,
                               const struct session_place *pl, size_t n) {
  char path[sizeof(c->daemon_path)];
  size_t i;

  for (i = 0; i < n; i++) {
    size_t len = strlen(file);
    unsigned up;
    int k;
    /* The file's directory, then `up` levels higher. */
    for (up = 0; up <= pl[i].up; up++) {
      while (len > 0 && file[len - 1] != SHMBUS__PATH_SEP)
        len--;
      if (len > 0)
        len--; /* the slash */
    }
    k = snprintf(path, sizeof(path), "%.*s%s%s" SHMBUS__PATH_SEP_STR "shmbusd" SHMBUS__EXE_SUFFIX,
                 (int)len, file, pl[i].sub[0] != '\0' ? SHMBUS__PATH_SEP_STR : "", pl[i].sub);
    if (k > 0 && (size_t)k < sizeof(path) && session_try_path(c, path))
      return true;
  }
  return false;
}

/* Tries the directories of a search list ($PATH, SHMBUS__PATH_LIST_SEP
 * between them). */
static bool session_try_list(struct shmbus__session *c, const char *list, const char *name) {
  const char *p = list;

  while (p != NULL && *p != '\0') {
    const char *end = strchr(p, SHMBUS__PATH_LIST_SEP);
    size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
    char path[sizeof(c->daemon_path)];
    int n = snprintf(path, sizeof(path), "%.*s" SHMBUS__PATH_SEP_STR "%s", (int)len,
                     len > 0 ? p : ".", name);
    if (n > 0 && (size_t)n < sizeof(path) && shmbus__is_executable(path)) {
      memcpy(c->daemon_path, path, (size_t)n + 1);
      return true;
    }
    p = end != NULL ? end + 1 : NULL;
  }
  return false;
}

/* Finds the daemon to start into c->daemon_path. Returns 0, or -ENOENT
 * with every place it looked in session_why. */
static int session_find_daemon(struct shmbus__session *c) {
  char file[sizeof(c->daemon_path)];
  const char *path_env = getenv("PATH");

  session_why[0] = '\0';
  if (c->daemon_path[0] != '\0') {
    /* Named by the caller: that one or none. A bare name is a command. */
    if (strchr(c->daemon_path, SHMBUS__PATH_SEP) != NULL) {
      if (shmbus__is_executable(c->daemon_path))
        return 0;
      session_set_why("the bus daemon %s%s is not an executable file", c->daemon_path,
                      c->daemon_from_env ? " (from $SHMBUS_DAEMON)" : "");
      return -ENOENT;
    }
    char name[sizeof(c->daemon_path)];
    memcpy(name, c->daemon_path, sizeof(name));
    if (session_try_list(c, path_env, name))
      return 0;
    session_set_why("the bus daemon %s%s is not in $PATH (%s)", name,
                    c->daemon_from_env ? " (from $SHMBUS_DAEMON)" : "",
                    path_env != NULL ? path_env : "unset");
    return -ENOENT;
  }
  if (shmbus__library_file(file, sizeof(file)) == 0 &&
      session_try_places(c, file, session_lib_places,
                         sizeof(session_lib_places) / sizeof(session_lib_places[0])))
    return 0;
  if (shmbus__program_file(file, sizeof(file)) == 0 &&
      session_try_places(c, file, session_exe_places,
                         sizeof(session_exe_places) / sizeof(session_exe_places[0])))
    return 0;
  if (session_try_path(c, SHMBUS_DAEMON_INSTALL_PATH))
    return 0;
  if (session_try_list(c, path_env, "shmbusd" SHMBUS__EXE_SUFFIX))
    return 0;
  {
    char tried[sizeof(session_why)];
    memcpy(tried, session_why, sizeof(tried));
    session_set_why("cannot find the bus daemon shmbusd to start: looked for %s and in $PATH "
                    "(%s); set $SHMBUS_DAEMON to its path",
                    tried, path_env != NULL ? path_env : "unset");
  }
  c->daemon_path[0] = '\0';
  return -ENOENT;
}

/* Starts the daemon and waits until it listens (it gives the platform's
 * ready signal) or exits. Its first process's exit status says which:
 * 0 it listens, 3 another daemon won the race to start (fine: connect to
 * that one), anything else it failed. Only the default per-user bus
 * directory may be created on the way: any other must exist, or a
 * mistyped --dir or $SHMBUS_DIR would silently start a private daemon
 * nobody else talks to. An autostarted daemon exits once it has been idle
 * (no clients, no retained topics) for $SHMBUS_IDLE_EXIT seconds, default
 * SHMBUS__AUTOSTART_IDLE_S; SHMBUS_IDLE_EXIT=0 keeps it. */
static int session_autostart(struct shmbus__session *c) {
  char idle[32] = SHMBUS__AUTOSTART_IDLE_S;
  /* The platform appends its ready signal (--ready-fd 3 on Linux). */
  const char *argv[] = {c->daemon_path, "--dir", c->dir, "--idle-exit", idle, NULL};
  const char *env = getenv("SHMBUS_IDLE_EXIT");
  char found[sizeof(c->daemon_path)];
  bool searched = c->daemon_path[0] == '\0';
  int rv;

  if (!c->dir_default && !shmbus__path_exists(c->dir)) {
    session_set_why("the bus directory %s does not exist, and autostart creates only the default "
                    "per-user bus: create it first, or start `shmbusd --dir %s`",
                    c->dir, c->dir);
    return -ENOENT;
  }
  if ((rv = session_find_daemon(c)) < 0)
    return rv;
  memcpy(found, c->daemon_path, sizeof(found));
  if (searched)
    c->daemon_path[0] = '\0'; /* search again next time: it may move */
  if (env != NULL && env[0] != '\0') {
    if (strcmp(env, "0") == 0)
      argv[3] = NULL; /* stay */
    else
      snprintf(idle, sizeof(idle), "%s", env);
  }
  argv[0] = found;
  rv = shmbus__daemon_spawn(found, argv, c->timeout_ms);
  if (rv == -ETIMEDOUT) {
    session_set_why("the bus daemon %s did not report ready within %d ms", found, c->timeout_ms);
    return rv;
  }
  if (rv < 0) {
    session_set_why("cannot start the bus daemon %s: %s", found, shmbus_strerror(rv));
    return rv;
  }
  if (rv != 0 && rv != 3) {
    session_set_why("the bus daemon %s exited with status %d instead of listening on %s; "
                    "`%s --foreground --dir %s` shows why",
                    found, rv, c->dir, found, c->dir);
    return -ECONNREFUSED;
  }
  session_why[0] = '\0';
  return 0;
}

static int session_hello(struct shmbus__session *c) {
  struct shmbus__msg req;
  struct shmbus__msg reply;
  int rv;

  shmbus__msg_init(&req, SHMBUS__MSG_HELLO, 0);
  snprintf(req.name, sizeof(req.name), "%s", c->name);
  if ((rv = shmbus__session_request(c, &req, &reply)) < 0)
    return rv;
  if (reply.type != SHMBUS__MSG_WELCOME) {
    shmbus__msg_close_fds(&reply);
    shmbus__session_close(c);
    return -EPROTO;
  }
  c->client_id = reply.client_id;
  c->daemon_pid = reply.daemon_pid;
  return 0;
}

int shmbus__session_connect(struct shmbus__session *c) {
  struct shmbus__peer_id peer;
  int rv;

  shmbus__session_close(c);
  session_why[0] = '\0';
  rv = shmbus__unix_connect(c->sock_path, &c->sock);
  if ((rv == -ENOENT || rv == -ECONNREFUSED) && c->autostart) {
    if ((rv = session_autostart(c)) < 0)
      return rv;
    rv = shmbus__unix_connect(c->sock_path, &c->sock);
  }
  if (rv == -ENOENT || rv == -ECONNREFUSED)
    return SHMBUS_ENODAEMON;
  if (rv < 0)
    return rv;
  c->gen++;
  /* Only our own daemon or root's may hand us shared memory: another
   * user could otherwise squat the bus directory with a socket of theirs
   * and read (or forge) everything we publish. */
  if ((rv = shmbus__peer_identity(c->sock, &peer)) < 0 || !shmbus__peer_trusted(&peer)) {
    shmbus__session_close(c);
    return rv < 0 ? rv : SHMBUS_EDENIED;
  }
  /* The daemon's reason for a refusal outlives the failed open (a
   * failed shmbus_bus_open frees the session that holds last_error). */
  if ((rv = session_hello(c)) < 0 && c->last_error[0] != '\0')
    session_set_why("%s", c->last_error);
  return rv;
}

/* A receive failed with `rv`: anything but "nothing waiting" ends the
 * connection (a message is lost, the conversation is out of step). Our
 * own descriptor limit is said as such, not as a lost daemon. */
static int session_lost(struct shmbus__session *c, int rv) {
  shmbus__session_close(c);
  if (rv == -EMFILE) {
    snprintf(c->last_error, sizeof(c->last_error),
             "a message of the daemon with descriptors was lost: this process reached its "
             "descriptor limit (RLIMIT_NOFILE, `ulimit -n`)");
    return -EMFILE;
  }
  return SHMBUS_EDISCONNECTED;
}

int shmbus__session_drain(struct shmbus__session *c) {
  struct shmbus__msg ev;
  int rv;

  if (!shmbus__handle_ok(c->sock))
    return SHMBUS_EDISCONNECTED;
  for (;;) {
    rv = shmbus__proto_recv(c->sock, &ev);
    if (rv == -EAGAIN)
      return 0;
    if (rv < 0)
      return session_lost(c, rv);
    c->on_event(c->ctx, &ev);
  }
}

int shmbus__session_wait_event(struct shmbus__session *c, int timeout_ms) {
  struct shmbus__msg ev;
  int rv;

  if (!shmbus__handle_ok(c->sock))
    return SHMBUS_EDISCONNECTED;
  rv = shmbus__proto_recv(c->sock, &ev);
  if (rv == -EAGAIN) {
    if ((rv = shmbus__wait_readable(&c->sock, 1, timeout_ms)) <= 0)
      return rv;
    rv = shmbus__proto_recv(c->sock, &ev);
    if (rv == -EAGAIN)
      return 0;
  }
  if (rv < 0)
    return session_lost(c, rv);
  c->on_event(c->ctx, &ev);
  return 1;
}

/* Receives like shmbus__proto_recv, but looks past one reset: a daemon
 * that closes a connection with our request unread (it refused us) makes
 * the kernel report the reset (ECONNRESET, which the platform layer
 * reports as -EPIPE like any hang-up) before the datagrams it sent first,
 * such as the error that says why. A real hang-up with nothing queued
 * reads as -EPIPE again. */
static int session_recv_after_reset(struct shmbus__session *c, struct shmbus__msg *m) {
  int rv = shmbus__proto_recv(c->sock, m);

  if (rv == -EPIPE || rv == -ECONNRESET)
    rv = shmbus__proto_recv(c->sock, m);
  return rv;
}

int shmbus__session_request(struct shmbus__session *c, struct shmbus__msg *req,
                            struct shmbus__msg *reply) {
  uint64_t deadline;
  int rv;

  c->last_error[0] = '\0';
  if (!shmbus__handle_ok(c->sock))
    return SHMBUS_EDISCONNECTED;
  req->id = c->next_id++;
  if (c->next_id == 0)
    c->next_id = 1;
  rv = shmbus__proto_send(c->sock, req);
  if (rv == -EAGAIN)
    rv = -ETIMEDOUT; /* the daemon does not read: as good as gone */
  if ((rv == -EPIPE || rv == -ECONNRESET) && session_recv_after_reset(c, reply) == 0 &&
      reply->type == SHMBUS__MSG_ERROR && reply->id == 0) {
    /* Refused before it read us: its reason is waiting (see below). */
    memcpy(c->last_error, reply->text, sizeof(c->last_error));
    shmbus__msg_close_fds(reply);
    shmbus__session_close(c);
    return reply->code < 0 ? reply->code : -EPROTO;
  }
  if (rv < 0) {
    if (rv != -EINVAL && rv != -EMSGSIZE)
      return session_lost(c, rv);
    return rv;
  }
  deadline = shmbus__clock_mono_ns() + (uint64_t)c->timeout_ms * 1000000u;
  for (;;) {
    uint64_t now;
    rv = session_recv_after_reset(c, reply);
    if (rv == 0) {
      /* An error with id 0 is the daemon's last word before it closes the
       * connection (refused at accept, no hello in time): report its
       * reason rather than "connection lost". */
      if (reply->id == req->id || (reply->type == SHMBUS__MSG_ERROR && reply->id == 0))
        break;
      c->on_event(c->ctx, reply);
      continue;
    }
    if (rv != -EAGAIN)
      return session_lost(c, rv);
    now = shmbus__clock_mono_ns();
    if (now >= deadline)
      return -ETIMEDOUT;
    if ((rv = shmbus__wait_readable(&c->sock, 1, (int)((deadline - now) / 1000000u) + 1)) < 0)
      return rv;
  }
  if (reply->type == SHMBUS__MSG_ERROR) {
    memcpy(c->last_error, reply->text, sizeof(c->last_error));
    shmbus__msg_close_fds(reply);
    return reply->code < 0 ? reply->code : -EPROTO;
  }
  return 0;
}
