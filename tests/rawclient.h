/* Raw protocol clients for tests against a real shmbusd: each test starts
 * its own daemon (fork+exec of SHMBUSD_PATH --foreground --dir <temp dir>
 * --ready-fd N, waited for on its ready pipe), talks to it with raw sockets
 * and the protocol module, and maps the descriptors it hands out.
 *
 * Nothing sleeps to order events: waits are on pipes, waitpid, replies
 * (poll with a timeout), eventfds, or request round trips.
 *
 * SHMBUSD_WRAPPER (environment), if set, is a command the daemon is started
 * under, e.g. "valgrind --leak-check=full --error-exitcode=99"; timeouts
 * grow then. The daemon's stderr goes to <temp dir>/daemon.log, printed
 * when a daemon does not exit cleanly. */
#ifndef SHMBUS_RAWCLIENT_H
#define SHMBUS_RAWCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/un.h>

#include <msgpack.h>

#include "proto.h"
#include "region.h"
#include "ring.h"

#if defined(__SANITIZE_ADDRESS__)
#define DT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DT_ASAN 1
/* Starts a system-bus daemon (--system) on a fresh directory, with `rules`
 * written to d->cfg (<tmp>/rules.conf) as its config and `extra` further
 * arguments (NULL-terminated; NULL for none). The temporary directory is
 * made 0755, so that other uids reach the socket and the config decides. */
void dt_start_system(struct dt_daemon *d, const char *rules, const char *const *extra);

/* In a forked child: becomes uid and gid 65534 (nobody), without
 * supplementary groups, or exits with status 70. */
void dt_become_nobody(void);

/* Packs an open of `topic` as a subscriber with id 42, whatever the name
 * (the encoder refuses to send an invalid one). */
void dt_pack_open(msgpack_sbuffer *sb, const char *topic);

#endif
#endif

#define DT_TEST_TIMEOUT 60.0

/* Assertions usable in forked children too: Criterion must only hear from
 * its own worker process, so a failing check in a child (dt_in_child set)
 * prints and exits with 99, and in the test process it fails the test.
 * Passing checks say nothing. */
extern bool dt_in_child;

__attribute__((format(printf, 3, 4), noreturn)) void dt_fail(const char *file, int line,
                                                             const char *fmt, ...);

#define DT_ASSERT(cond, ...)                                                                       \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      dt_fail(__FILE__, __LINE__, __VA_ARGS__);                                                    \
  } while (0)

/* ---- daemon processes ---- */

struct dt_daemon {
  pid_t pid;
  char tmp[64]; /* mkdtemp: holds bus/, daemon.log, configs */
  char dir[80]; /* the bus directory */
  char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
  char log[192];
  char cfg[192]; /* the config file dt_start_system wrote */
};

/* One record a test client holds. */
struct dt_rec {
  uint32_t topic_id;
  uint32_t role;
  uint32_t index;
  uint32_t peers;
  struct shmbus__params params;
  uint32_t member;       /* the own member file (opened.member) */
  uint32_t deadline_cap; /* opened.deadline_ms */
  int data_fd;
  int ctrl_fd;
  int efd; /* the eventfd registered with the daemon */
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;
};

struct dt_open_args {
  const struct shmbus__params *params;
  bool reliable;
  uint32_t history;
  bool retain;
  uint32_t deadline_ms;
};

/* Request ids of this process's raw clients. */
extern uint32_t dt_next_id;

int dt_scale(void);
int dt_timeout_ms(void);
uint64_t dt_now_ms(void);
/* The daemon dt_spawn starts: SHMBUSD_PATH unless a test points it at a
 * copy (a daemon run as another uid, see du_private_daemon). */
extern const char *dt_daemon_path;

void dt_init(struct dt_daemon *d);
pid_t dt_spawn(const struct dt_daemon *d, const char *const *extra, int *ready_rd);
bool dt_wait_ready(int fd);
void dt_dump_log(const struct dt_daemon *d);
void dt_start_with(struct dt_daemon *d, const char *const *extra);
void dt_start(struct dt_daemon *d);
int dt_wait_exit(pid_t pid);
void dt_stop(struct dt_daemon *d);
void dt_cleanup(struct dt_daemon *d);
int dt_connect(const struct dt_daemon *d);
int dt_recv(int fd, struct shmbus__msg *m);
void dt_expect(int fd, uint32_t type, struct shmbus__msg *m);
void dt_reply(int fd, uint32_t id, struct shmbus__msg *r);
void dt_send(int fd, const struct shmbus__msg *m);
void dt_expect_error_and_eof(int fd, int code);
struct shmbus__msg dt_hello(int fd);
int dt_client(const struct dt_daemon *d);
struct shmbus__msg dt_status(int fd);
int dt_open_ex(int fd, const char *topic, uint32_t role, const struct dt_open_args *a,
               struct dt_rec *rec, char *text);
int dt_open(int fd, const char *topic, uint32_t role, const struct shmbus__params *p,
            struct dt_rec *rec);
void dt_map(struct dt_rec *rec);
void dt_rec_close(struct dt_rec *rec);
int dt_close_req(int fd, const struct dt_rec *rec);
void dt_publish_str(struct dt_rec *p, const char *s);
int dt_sub_recv_wait(struct dt_rec *s, char *buf, size_t cap);
void dt_wait_log(const struct dt_daemon *d, int fd, const char *needle, int count);
int dt_fd_count(pid_t pid);
void dt_wait_clients(int fd, uint32_t n);
void dt_write_file(const char *path, const char *text);

/* Starts a system-bus daemon (--system) on a fresh directory, with `rules`
 * written to d->cfg (<tmp>/rules.conf) as its config and `extra` further
 * arguments (NULL-terminated; NULL for none). The temporary directory is
 * made 0755, so that other uids reach the socket and the config decides. */
void dt_start_system(struct dt_daemon *d, const char *rules, const char *const *extra);

/* In a forked child: becomes uid and gid 65534 (nobody), without
 * supplementary groups, or exits with status 70. */
void dt_become_nobody(void);

/* Packs an open of `topic` as a subscriber with id 42, whatever the name
 * (the encoder refuses to send an invalid one). */
void dt_pack_open(msgpack_sbuffer *sb, const char *topic);

#endif
