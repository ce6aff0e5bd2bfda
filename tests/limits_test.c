/* Resource limits and abuse, against a real shmbusd: per-client quotas on
 * topics created, records held, region memory and control messages per
 * second; the maximum region size; a client that floods requests and never
 * reads its socket; shared memory running out at topic creation (through
 * RLIMIT_FSIZE on the daemon, which makes the memory file's ftruncate fail
 * the way a full /dev/shm or memory cgroup makes fallocate fail).
 *
 * Each test starts its own daemon with --limit options or a config file
 * (tests/rawclient.h) and checks both the error code and that the text
 * names the limit, then that the daemon and the other clients go on. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemonutil.h"
#include "platform/platform.h"
#include "rawclient.h"
#include "shmbus/shmbus.h"

static const struct shmbus__params lt_small = {8, 64, 4, 4};

TestSuite(limits, .timeout = DT_TEST_TIMEOUT);

/* Opens a subscriber on a new topic `name` and keeps the record. */
static int lt_open_sub(int fd, const char *name, const struct shmbus__params *p, struct dt_rec *r,
                       char *text) {
  struct dt_open_args a = {p, false, 0, false};
  return dt_open_ex(fd, name, SHMBUS__ROLE_SUB, &a, r, text);
}

Test(limits, topics_quota_counts_live_topics_of_one_client) {
  const char *args[] = {"--limit", "topics=3", NULL};
  struct dt_daemon d;
  struct dt_rec r[4];
  struct dt_rec other;
  char text[SHMBUS__TEXT_MAX + 1];
  int a, b;
  int i;

  dt_init(&d);
  dt_start_with(&d, args);
  a = dt_client(&d);
  b = dt_client(&d);
  for (i = 0; i < 3; i++) {
    char name[32];
    snprintf(name, sizeof(name), "q/t%d", i);
    DT_ASSERT(lt_open_sub(a, name, &lt_small, &r[i], NULL) == 0, "topic %d", i);
  }
  DT_ASSERT(lt_open_sub(a, "q/t3", &lt_small, &r[3], text) == SHMBUS_EQUOTA, "4th topic: %s", text);
  DT_ASSERT(strstr(text, "\"topics\" is 3") != NULL, "the text names the limit: %s", text);
  /* Joining a topic someone else created costs no topic quota. */
  DT_ASSERT(lt_open_sub(b, "q/other", &lt_small, &other, NULL) == 0, "b creates q/other");
  DT_ASSERT(lt_open_sub(a, "q/other", &lt_small, &r[3], NULL) == 0, "a joins q/other");
  DT_ASSERT(dt_close_req(a, &r[3]) == 0, "close");
  dt_rec_close(&r[3]);
  /* A topic that goes away gives its quota back. */
  DT_ASSERT(dt_close_req(a, &r[0]) == 0, "close");
  dt_rec_close(&r[0]);
  DT_ASSERT(lt_open_sub(a, "q/t3", &lt_small, &r[3], text) == 0, "after a drop: %s", text);
  for (i = 1; i < 4; i++)
    dt_rec_close(&r[i]);
  dt_rec_close(&other);
  dt_wait_log(&d, b, "created 3 topics that still exist; the daemon's limit \"topics\" is 3", 1);
  close(a);
  close(b);
  dt_stop(&d);
  dt_cleanup(&d);
}

Test(limits, records_quota) {
  const char *args[] = {"--limit=records=2", NULL};
  struct dt_daemon d;
  struct dt_rec r[3];
  char text[SHMBUS__TEXT_MAX + 1];
  int a;

  dt_init(&d);
  dt_start_with(&d, args);
  a = dt_client(&d);
  DT_ASSERT(dt_open(a, "rec/t", SHMBUS__ROLE_PUB, &lt_small, &r[0]) == 0, "pub");
  DT_ASSERT(lt_open_sub(a, "rec/t", &lt_small, &r[1], NULL) == 0, "sub");
  DT_ASSERT(lt_open_sub(a, "rec/t", &lt_small, &r[2], text) == SHMBUS_EQUOTA, "3rd: %s", text);
  DT_ASSERT(strstr(text, "\"records\" is 2") != NULL, "%s", text);
  DT_ASSERT(dt_close_req(a, &r[1]) == 0, "close");
  dt_rec_close(&r[1]);
  DT_ASSERT(lt_open_sub(a, "rec/t", &lt_small, &r[2], text) == 0, "after close: %s", text);
  dt_rec_close(&r[0]);
  dt_rec_close(&r[2]);
  close(a);
  dt_stop(&d);
  dt_cleanup(&d);
}

Test(limits, memory_quota_and_region_limit) {
  /* 64 slots of 4 KiB: a bit more than 256 KiB per topic. */
  const struct shmbus__params mid = {64, 4096, 4, 4};
  const struct shmbus__params huge = {1u << 17, 64u << 10, 4, 4}; /* 8 GiB */
  const char *args[] = {"--limit", "memory=700K", "--limit", "region=1M", NULL};
  struct shmbus__params big = {512, 4096, 4, 4}; /* 2 MiB */
  struct dt_daemon d;
  struct dt_rec r[3];
  char text[SHMBUS__TEXT_MAX + 1];
  int a, b;

  dt_init(&d);
  dt_start_with(&d, args);
  a = dt_client(&d);
  b = dt_client(&d);
  DT_ASSERT(lt_open_sub(a, "mem/big", &big, &r[0], text) == SHMBUS_ELIMIT, "big: %s", text);
  DT_ASSERT(strstr(text, "limit \"region\" is 1048576 bytes") != NULL, "%s", text);
  DT_ASSERT(lt_open_sub(a, "mem/huge", &huge, &r[0], text) == SHMBUS_ELIMIT, "huge: %s", text);
  DT_ASSERT(lt_open_sub(a, "mem/a", &mid, &r[0], text) == 0, "a: %s", text);
  DT_ASSERT(lt_open_sub(a, "mem/b", &mid, &r[1], text) == 0, "b: %s", text);
  DT_ASSERT(lt_open_sub(a, "mem/c", &mid, &r[2], text) == SHMBUS_EQUOTA, "c: %s", text);
  DT_ASSERT(strstr(text, "\"memory\" is 716800 bytes") != NULL, "%s", text);
  /* Another client has its own quota. */
  DT_ASSERT(lt_open_sub(b, "mem/c", &mid, &r[2], text) == 0, "b's c: %s", text);
  dt_rec_close(&r[0]);
  dt_rec_close(&r[1]);
  dt_rec_close(&r[2]);
  close(a);
  close(b);
  dt_stop(&d);
  dt_cleanup(&d);
}

Test(limits, default_region_limit_refuses_8_gib) {
  const struct shmbus__params huge = {1u << 17, 64u << 10, 4, 4};
  struct dt_daemon d;
  struct dt_rec r;
  char text[SHMBUS__TEXT_MAX + 1];
  int a;

  dt_start(&d);
  a = dt_client(&d);
  DT_ASSERT(lt_open_sub(a, "huge", &huge, &r, text) == SHMBUS_ELIMIT, "huge: %s", text);
  DT_ASSERT(strstr(text, "\"region\" is 4294967296 bytes") != NULL, "%s", text);
  close(a);
  dt_stop(&d);
  dt_cleanup(&d);
}

/* Sends status requests one at a time and counts the answered ones until
 * the first refusal, which must be a rate quota error. */
static int lt_count_until_refused(int fd, int max) {
  int n;

  for (n = 0; n < max; n++) {
    struct shmbus__msg m;
    struct shmbus__msg r;
    shmbus__msg_init(&m, SHMBUS__MSG_STATUS, dt_next_id++);
    dt_send(fd, &m);
    dt_reply(fd, m.id, &r);
    if (r.type == SHMBUS__MSG_ERROR) {
      DT_ASSERT(r.code == SHMBUS_EQUOTA, "refused with %s", shmbus_err_name(r.code));
      DT_ASSERT(strstr(r.text, "limit \"rate\"") != NULL, "%s", r.text);
      return n;
    }
  }
  return n;
}

Test(limits, rate_limit_refuses_then_disconnects_a_flood) {
  const char *args[] = {"--config", NULL, NULL};
  struct dt_daemon d;
  char cfg[256];
  int a, b;
  int n;
  int refused = 0;
  int rv;

  dt_init(&d);
  snprintf(cfg, sizeof(cfg), "%s/limits.conf", d.tmp);
  /* One token a second: the few refilled while the test runs (more under
   * valgrind) are the slack below. */
  dt_write_file(cfg, "limit rate 1   # per second\nlimit burst 20\nallow any ** *\n");
  args[1] = cfg;
  dt_start_with(&d, args);
  a = dt_connect(&d);
  (void)dt_hello(a); /* the hello costs a token too */
  b = dt_client(&d);
  n = lt_count_until_refused(a, 100);
  DT_ASSERT(n >= 19 && n <= 25, "%d requests passed a burst of 20", n);
  /* Another client is not affected. */
  (void)dt_status(b);
  /* Keep sending without waiting: refused each time, then disconnected. */
  for (int i = 0; i < 200; i++) {
    struct shmbus__msg m;
    shmbus__msg_init(&m, SHMBUS__MSG_STATUS, dt_next_id++);
    if (shmbus__proto_send(a, &m) != 0)
      break;
  }
  for (;;) {
    struct shmbus__msg r;
    rv = dt_recv(a, &r);
    if (rv != 0)
      break;
    DT_ASSERT(r.type == SHMBUS__MSG_ERROR && r.code == SHMBUS_EQUOTA, "type %u", r.type);
    refused++;
  }
  DT_ASSERT(rv == -EPIPE, "expected a hang-up, got %s", shmbus_strerror(rv));
  /* The daemon hangs up with our requests still unread in its queue, so the
   * kernel resets the connection and may drop the refusals it sent. */
  DT_ASSERT(refused <= 30, "%d refusals before the hang-up", refused);
  dt_wait_log(&d, b, "kept sending while over the rate limit", 1);
  dt_wait_clients(b, 1);
  close(a);
  close(b);
  dt_stop(&d);
  dt_cleanup(&d);
}

Test(limits, bad_limit_refuses_to_start) {
  const char *args[] = {"--limit", "topics=lots", NULL};
  const char *args2[] = {"--config", NULL, NULL};
  struct dt_daemon d;
  char cfg[256];
  int rd;
  int status;
  pid_t pid;

  dt_init(&d);
  pid = dt_spawn(&d, args, &rd);
  DT_ASSERT(!dt_wait_ready(rd), "started with a bad --limit");
  status = dt_wait_exit(pid);
  DT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 2, "exit status %d", status);
  snprintf(cfg, sizeof(cfg), "%s/bad.conf", d.tmp);
  dt_write_file(cfg, "limit speed 3\n");
  args2[1] = cfg;
  pid = dt_spawn(&d, args2, &rd);
  DT_ASSERT(!dt_wait_ready(rd), "started with a bad limit line");
  status = dt_wait_exit(pid);
  DT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 1, "exit status %d", status);
  dt_wait_log(&d, -1, "bad.conf:1: unknown limit \"speed\"", 1);
  dt_cleanup(&d);
}

/* A client floods requests and never reads its socket. The daemon must
 * neither block nor slow the others down: they keep opening topics and
 * exchanging messages, and the flooder is disconnected (its socket fills
 * with replies, or it exceeds the rate limit, whichever comes first). */
Test(limits, flooder_that_never_reads_cannot_block_others) {
  struct dt_daemon d;
  struct dt_rec p;
  struct dt_rec s;
  char buf[64];
  int flood;
  int good;
  int sent = 0;
  int rounds = 0;
  bool gone = false;
  uint64_t deadline;

  dt_start(&d);
  flood = dt_client(&d);
  good = dt_client(&d);
  deadline = dt_now_ms() + (uint64_t)dt_timeout_ms() * 4;
  while (!gone) {
    DT_ASSERT(dt_now_ms() < deadline, "the flooder was never disconnected (%d sent)", sent);
    for (int i = 0; i < 200; i++) {
      struct shmbus__msg m;
      int rv;
      shmbus__msg_init(&m, SHMBUS__MSG_STATUS, dt_next_id++);
      rv = shmbus__proto_send(flood, &m);
      if (rv == -EAGAIN) {
        /* The daemon is not reading us right now: wait a little for it. */
        struct pollfd pfd = {flood, POLLOUT, 0};
        (void)poll(&pfd, 1, 10);
        break;
      }
      if (rv != 0) {
        gone = true;
        break;
      }
      sent++;
    }
    /* Meanwhile, a normal client: a new topic, a message through it. */
    {
      char name[32];
      snprintf(name, sizeof(name), "good/%d", rounds);
      DT_ASSERT(dt_open(good, name, SHMBUS__ROLE_PUB, &lt_small, &p) == 0, "round %d", rounds);
      DT_ASSERT(dt_open(good, name, SHMBUS__ROLE_SUB, &lt_small, &s) == 0, "round %d", rounds);
      dt_map(&p);
      dt_map(&s);
      dt_publish_str(&p, "still here");
      DT_ASSERT(dt_sub_recv_wait(&s, buf, sizeof(buf)) == 10, "round %d", rounds);
      DT_ASSERT(strcmp(buf, "still here") == 0, "%s", buf);
      DT_ASSERT(dt_close_req(good, &s) == 0, "close");
      DT_ASSERT(dt_close_req(good, &p) == 0, "close");
      dt_rec_close(&s);
      dt_rec_close(&p);
      rounds++;
    }
  }
  cr_log_info("flooder sent %d requests before it was cut off; %d good rounds", sent, rounds);
  DT_ASSERT(dt_status(good).clients == 1u, "the flooder is gone");
  close(flood);
  close(good);
  dt_stop(&d);
  dt_cleanup(&d);
}

/* Shared memory runs out while a topic is created: the daemon answers with
 * a clear error, stays up and serves smaller topics. RLIMIT_FSIZE on the
 * daemon makes a memory file larger than 1 MiB fail with EFBIG (and,
 * unless the daemon ignores it, SIGXFSZ would kill it). */
Test(limits, shared_memory_exhausted_at_creation) {
  const struct shmbus__params big = {1024, 4096, 4, 4}; /* 4 MiB */
  struct rlimit old;
  struct rlimit lim;
  struct dt_daemon d;
  struct dt_rec r;
  char text[SHMBUS__TEXT_MAX + 1];
  int a;

  DT_ASSERT(getrlimit(RLIMIT_FSIZE, &old) == 0, "getrlimit");
  lim = old;
  lim.rlim_cur = 1u << 20;
  if (old.rlim_cur != RLIM_INFINITY && old.rlim_cur < lim.rlim_cur)
    cr_skip_test("RLIMIT_FSIZE is already below 1 MiB");
  /* The daemon inherits the limit across fork and exec; we take ours back
   * at once (the soft limit may go up to the hard one again). */
  DT_ASSERT(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit: %s", strerror(errno));
  dt_init(&d);
  dt_start_with(&d, NULL);
  DT_ASSERT(setrlimit(RLIMIT_FSIZE, &old) == 0, "setrlimit: %s", strerror(errno));
  a = dt_client(&d);
  DT_ASSERT(lt_open_sub(a, "big", &big, &r, text) == -EFBIG, "big: %s", text);
  DT_ASSERT(strstr(text, "no room for its") != NULL, "%s", text);
  /* Still up, still serving. */
  DT_ASSERT(lt_open_sub(a, "small", &lt_small, &r, text) == 0, "small: %s", text);
  dt_rec_close(&r);
  dt_wait_log(&d, a, "cannot create", 1);
  close(a);
  dt_stop(&d);
  dt_cleanup(&d);
}

/* The public API returns the daemon's quota codes and its text. */
Test(limits, public_api_reports_quota_codes) {
  struct du_daemon d = {.extra = "--limit=topics=1"};
  struct shmbus_topic_opts huge = {1u << 17, 64u << 10, 4, 4, false};
  shmbus_bus *bus;
  shmbus_pub *p1;
  shmbus_pub *p2;

  du_start(&d);
  bus = du_bus(&d);
  cr_assert_eq(shmbus_pub_open(bus, "api/one", NULL, &p1), 0);
  cr_assert_eq(shmbus_pub_open(bus, "api/two", NULL, &p2), SHMBUS_EQUOTA);
  /* The daemon's sentence, naming the limit, reaches the application. */
  cr_assert(strstr(shmbus_bus_last_error(bus), "limit \"topics\" is 1") != NULL, "%s",
            shmbus_bus_last_error(bus));
  cr_assert_eq(shmbus_pub_open(bus, "api/huge", &huge, &p2), SHMBUS_ELIMIT);
  cr_assert(strstr(shmbus_bus_last_error(bus), "limit \"region\" is 4294967296 bytes") != NULL,
            "%s", shmbus_bus_last_error(bus));
  cr_assert_str_eq(shmbus_err_name(SHMBUS_EQUOTA), "SHMBUS_EQUOTA");
  shmbus_pub_close(p1);
  shmbus_bus_close(bus);
  du_stop(&d);
}

/* On the system bus one uid cannot take all the connections: the third of
 * nobody's is refused with a quota error, root's still go through. */
Test(limits, connections_per_uid_on_the_system_bus) {
  const char *args[] = {"--limit", "connections=2", NULL};
  struct dt_daemon d;
  pid_t pid;
  int status;
  int fd;

  if (geteuid() != 0)
    cr_skip_test("needs root to run clients as another uid");
  dt_start_system(&d, "allow any ** *\n", args);
  pid = fork();
  DT_ASSERT(pid >= 0, "fork");
  if (pid == 0) {
    struct shmbus__msg m;
    int a, b, c;
    dt_in_child = true;
    dt_become_nobody();
    a = dt_client(&d);
    b = dt_client(&d);
    if (shmbus__unix_connect(d.sock, &c) != 0)
      _exit(71);
    /* Refused at accept: an error, then the daemon hangs up. */
    if (dt_recv(c, &m) != 0 || m.type != SHMBUS__MSG_ERROR || m.code != SHMBUS_EQUOTA ||
        strstr(m.text, "\"connections\"") == NULL)
      _exit(72);
    if (dt_recv(c, &m) != -EPIPE)
      _exit(73);
    close(c);
    /* One closes: once the daemon has seen it go, there is room again. */
    close(a);
    dt_wait_clients(b, 1);
    c = dt_client(&d);
    close(c);
    close(b);
    _exit(0);
  }
  status = dt_wait_exit(pid);
  DT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child: status %d",
            WEXITSTATUS(status));
  fd = dt_client(&d); /* root is not limited */
  dt_wait_log(&d, fd, "has 2 connections to the system bus (limit \"connections\" is 2)", 1);
  close(fd);
  dt_stop(&d);
  dt_cleanup(&d);
}

/* SIGHUP reloads the file's limits; a --limit option keeps winning. */
Test(limits, reload_applies_file_limits_under_command_line_ones) {
  const char *args[] = {"--config", NULL, "--limit", "topics=2", NULL};
  struct dt_daemon d;
  struct dt_rec r[4];
  char cfg[256];
  char text[SHMBUS__TEXT_MAX + 1];
  int a;

  dt_init(&d);
  snprintf(cfg, sizeof(cfg), "%s/limits.conf", d.tmp);
  dt_write_file(cfg, "limit topics 1\nlimit records 10\n");
  args[1] = cfg;
  dt_start_with(&d, args);
  a = dt_client(&d);
  DT_ASSERT(lt_open_sub(a, "re/a", &lt_small, &r[0], text) == 0, "a: %s", text);
  DT_ASSERT(lt_open_sub(a, "re/b", &lt_small, &r[1], text) == 0, "b (topics=2 wins): %s", text);
  DT_ASSERT(lt_open_sub(a, "re/b", &lt_small, &r[2], text) == 0, "a second record: %s", text);
  dt_write_file(cfg, "limit topics 1\nlimit records 3\n");
  DT_ASSERT(kill(d.pid, SIGHUP) == 0, "SIGHUP");
  dt_wait_log(&d, a, "reload: 0 rule(s)", 1);
  DT_ASSERT(lt_open_sub(a, "re/b", &lt_small, &r[3], text) == SHMBUS_EQUOTA, "records=3: %s", text);
  DT_ASSERT(strstr(text, "\"records\" is 3") != NULL, "%s", text);
  /* Drop re/a: one topic of ours left, and topics=2 (not the file's 1)
   * still allows another. */
  DT_ASSERT(dt_close_req(a, &r[0]) == 0, "close");
  dt_rec_close(&r[0]);
  DT_ASSERT(lt_open_sub(a, "re/c", &lt_small, &r[0], text) == 0, "c after reload: %s", text);
  for (int i = 0; i < 3; i++)
    dt_rec_close(&r[i]);
  close(a);
  dt_stop(&d);
  dt_cleanup(&d);
}

/* ---- trust boundaries (issue 11) ---------------------------------------- */

/* Sends a snapshot request without waiting for the reply. */
static uint32_t lt_snapshot_send(int fd) {
  struct shmbus__msg m;

  shmbus__msg_init(&m, SHMBUS__MSG_SNAPSHOT, dt_next_id++);
  dt_send(fd, &m);
  return m.id;
}

/* Receives the reply to a snapshot request: the reply's size (its memory
 * file closed), or the error code with the text in `text`. */
static int64_t lt_snapshot_recv(int fd, uint32_t id, char *text) {
  struct shmbus__msg r;

  dt_reply(fd, id, &r);
  if (r.type == SHMBUS__MSG_ERROR) {
    snprintf(text, SHMBUS__TEXT_MAX + 1, "%s", r.text);
    return r.code;
  }
  DT_ASSERT(r.type == SHMBUS__MSG_SNAPSHOT_REPLY && r.nfds == 1, "snapshot reply");
  shmbus__msg_close_fds(&r);
  return (int64_t)r.size;
}

/* M5. Each snapshot reply parks a sealed memory file in the client's
 * socket until it reads it: one client may leave at most `unread` of them
 * unread (then SHMBUS_EQUOTA naming the limit); once it read them, it may
 * ask again. */
Test(limits, unread_snapshot_replies_are_capped_per_client) {
  const char *args[] = {"--limit", "unread=4", NULL};
  char text[SHMBUS__TEXT_MAX + 1];
  struct dt_daemon d;
  uint32_t ids[6];
  int ok = 0, refused = 0;
  int fd, other;

  dt_init(&d);
  dt_start_with(&d, args);
  fd = dt_client(&d);
  other = dt_client(&d);
  for (int i = 0; i < 6; i++)
    ids[i] = lt_snapshot_send(fd);
  /* Read nothing until the daemon refused two (it logs each): then it
   * answered all six with nothing read. */
  dt_wait_log(&d, other, "still unread; the daemon's limit \"unread\" is 4", 2);
  for (int i = 0; i < 6; i++) {
    int64_t rv = lt_snapshot_recv(fd, ids[i], text);
    if (rv > 0) {
      DT_ASSERT(refused == 0, "a reply after a refusal");
      ok++;
    } else {
      DT_ASSERT(rv == SHMBUS_EQUOTA && strstr(text, "\"unread\" is 4") != NULL, "%s", text);
      refused++;
    }
  }
  DT_ASSERT(ok == 4 && refused == 2, "%d replies, %d refused", ok, refused);
  /* All read: room again. */
  DT_ASSERT(lt_snapshot_recv(fd, lt_snapshot_send(fd), text) > 0, "after reading: %s", text);
  close(fd);
  close(other);
  dt_stop(&d);
  dt_cleanup(&d);
}

/* Waits for the next datagram on `fd` and decodes it without taking it
 * off the socket (MSG_PEEK, no descriptors installed). */
static void lt_peek(int fd, struct shmbus__msg *m) {
  unsigned char buf[SHMBUS__PROTO_MAX_MSG];
  struct pollfd pfd = {fd, POLLIN, 0};
  ssize_t n;

  DT_ASSERT(poll(&pfd, 1, dt_timeout_ms()) == 1, "an answer");
  n = recv(fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT);
  DT_ASSERT(n > 0, "peek: %s", strerror(errno));
  shmbus__msg_init(m, SHMBUS__MSG_NONE, 0);
  DT_ASSERT(shmbus__proto_decode(buf, (size_t)n, m) == 0, "decodes");
}

/* M5. Over all its connections, one uid (not the owner nor root) may
 * leave at most `unread_bytes` of snapshot replies unread: 100 idle
 * connections no longer pin a gigabyte. Root is not limited meanwhile, and
 * once nobody read its replies it may ask again. */
Test(limits, unread_snapshot_bytes_are_capped_per_uid) {
  const char *args[] = {"--limit", "unread_bytes=4K", "--limit", "unread=0", NULL};
  struct dt_daemon d;
  int go[2], done[2];
  char byte = 0;
  pid_t pid;
  int status;
  int fd;

  if (geteuid() != 0)
    cr_skip_test("needs root to run clients as another uid");
  dt_start_system(&d, "allow any ** *\n", args);
  fd = dt_client(&d);
  DT_ASSERT(pipe(go) == 0 && pipe(done) == 0, "pipes");
  pid = fork();
  DT_ASSERT(pid >= 0, "fork");
  if (pid == 0) {
    enum { N = 40 };
    char text[SHMBUS__TEXT_MAX + 1];
    int c[N];
    uint32_t ids[N];
    int ok = 0, refused = 0;
    int64_t size = 0;
    dt_in_child = true;
    dt_become_nobody();
    for (int i = 0; i < N; i++)
      c[i] = dt_client(&d);
    /* One request per connection, each answer only peeked at (it stays
     * in the socket, unread, pinning its memory file), until refused. */
    for (int i = 0; i < N && refused == 0; i++) {
      struct shmbus__msg m;
      ids[i] = lt_snapshot_send(c[i]);
      lt_peek(c[i], &m);
      if (m.type == SHMBUS__MSG_SNAPSHOT_REPLY) {
        ok++;
        size = (int64_t)m.size;
      } else if (m.type == SHMBUS__MSG_ERROR && m.code == SHMBUS_EQUOTA &&
                 strstr(m.text, "\"unread_bytes\" is 4096") != NULL) {
        refused++;
      } else {
        _exit(71);
      }
    }
    if (ok < 1 || refused != 1 || ok * size > 4096 || (ok + 1) * size <= 4096)
      _exit(72);
    /* At its cap: root asks meanwhile. */
    if (write(done[1], &byte, 1) != 1 || read(go[0], &byte, 1) != 1)
      _exit(74);
    for (int i = 0; i < ok + refused; i++)
      (void)lt_snapshot_recv(c[i], ids[i], text);
    /* Everything read: room again. */
    if (lt_snapshot_recv(c[0], lt_snapshot_send(c[0]), text) <= 0)
      _exit(73);
    _exit(0);
  }
  close(done[1]);
  close(go[0]);
  DT_ASSERT(read(done[0], &byte, 1) == 1, "the child got that far (status %d)", dt_wait_exit(pid));
  {
    char text[SHMBUS__TEXT_MAX + 1];
    DT_ASSERT(lt_snapshot_recv(fd, lt_snapshot_send(fd), text) > 0, "root: %s", text);
  }
  DT_ASSERT(write(go[1], &byte, 1) == 1, "go");
  status = dt_wait_exit(pid);
  DT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: %d", WEXITSTATUS(status));
  close(fd);
  dt_stop(&d);
  dt_cleanup(&d);
}

/* M7. A connection that never says hello is told why and closed after
 * `hello_ms`: idle connections cannot hold the daemon's slots. */
Test(limits, silent_connection_is_closed_with_a_reason) {
  const char *args[] = {"--limit", "hello_ms=100", NULL};
  struct dt_daemon d;
  struct shmbus__msg m;
  int fd;

  dt_init(&d);
  dt_start_with(&d, args);
  fd = dt_connect(&d);
  DT_ASSERT(dt_recv(fd, &m) == 0 && m.type == SHMBUS__MSG_ERROR, "an error");
  DT_ASSERT(m.code == -ETIMEDOUT && strstr(m.text, "\"hello_ms\"") != NULL, "%s", m.text);
  DT_ASSERT(dt_recv(fd, &m) == -EPIPE, "then the daemon hangs up");
  close(fd);
  fd = dt_client(&d);
  dt_wait_log(&d, fd, "disconnected: no hello in time", 1);
  close(fd);
  dt_stop(&d);
  dt_cleanup(&d);
}

/* M7. Other uids cannot take the last `reserved` connections: the owner's
 * and root's `daemon status` still work when they hold all the others.
 * A library client that is refused reports the daemon's reason (a quota
 * naming the limit), not "connection was lost", and keeps its sentence
 * after the failed open. */
Test(limits, reserved_connections_keep_room_for_owner_and_root) {
  const char *args[] = {"--limit",         "clients=8", "--limit",    "reserved=3", "--limit",
                        "connections=100", "--limit",   "hello_ms=0", NULL};
  struct dt_daemon d;
  int go[2], done[2];
  char byte = 0;
  pid_t pid;
  int status;
  int fd;

  if (geteuid() != 0)
    cr_skip_test("needs root to run clients as another uid");
  dt_start_system(&d, "allow any ** *\n", args);
  DT_ASSERT(pipe(go) == 0 && pipe(done) == 0, "pipes");
  pid = fork();
  DT_ASSERT(pid >= 0, "fork");
  if (pid == 0) {
    struct shmbus_bus_opts o;
    struct shmbus__msg m;
    shmbus_bus *bus = NULL;
    int c[6];
    int rv;
    dt_in_child = true;
    dt_become_nobody();
    /* Five silent connections: the sixth would take a reserved slot. */
    for (int i = 0; i < 5; i++)
      c[i] = dt_connect(&d);
    c[5] = dt_connect(&d);
    if (dt_recv(c[5], &m) != 0 || m.type != SHMBUS__MSG_ERROR || m.code != SHMBUS_EQUOTA ||
        strstr(m.text, "\"reserved\"") == NULL)
      _exit(71);
    if (dt_recv(c[5], &m) != -EPIPE)
      _exit(72);
    shmbus_bus_opts_init(&o);
    o.dir = d.dir;
    o.autostart = 0;
    rv = shmbus_bus_open(&bus, &o);
    if (rv != SHMBUS_EQUOTA) {
      fprintf(stderr, "shmbus_bus_open: %s\n", shmbus_err_name(rv));
      _exit(73);
    }
    /* The daemon's sentence outlives the failed open. */
    if (strstr(shmbus_bus_last_error(NULL), "\"reserved\"") == NULL) {
      fprintf(stderr, "shmbus_bus_last_error(NULL): \"%s\"\n", shmbus_bus_last_error(NULL));
      _exit(75);
    }
    if (write(done[1], &byte, 1) != 1 || read(go[0], &byte, 1) != 1)
      _exit(74);
    _exit(0);
  }
  close(done[1]);
  close(go[0]);
  DT_ASSERT(read(done[0], &byte, 1) == 1, "the child holds its connections (status %d)",
            dt_wait_exit(pid));
  fd = dt_client(&d); /* root: a reserved slot */
  DT_ASSERT(dt_status(fd).clients == 6, "5 of nobody and root");
  DT_ASSERT(write(go[1], &byte, 1) == 1, "go");
  status = dt_wait_exit(pid);
  DT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: %d", WEXITSTATUS(status));
  dt_wait_log(&d, fd, "its last 3 connections (limit \"reserved\") are kept", 2);
  close(fd);
  dt_stop(&d);
  dt_cleanup(&d);
}

/* The system bus's `deadline_ms` limit bounds how long a publisher waits
 * for a reliable subscriber that asked for no deadline of its own: a
 * SIGSTOPped one holds the publisher back for 200 ms at a time, then the
 * publisher overwrites what it has not read (and says so in its stats).
 * Without the limit every publish below would wait out its 5 s. */
Test(limits, system_bus_deadline_frees_a_publisher_held_by_a_stopped_subscriber) {
  static const char *const args[] = {"--limit", "deadline_ms=200", NULL};
  struct shmbus_topic_opts to = {8, 64, 4, 2, false};
  struct shmbus_bus_opts o;
  struct dt_daemon d;
  shmbus_bus *bus = NULL;
  shmbus_pub *pub = NULL;
  int ready[2];
  char byte = 0;
  int status;
  pid_t pid;
  int i;

  dt_start_system(&d, "allow any dl/** *\n", args);
  shmbus_bus_opts_init(&o);
  o.dir = d.dir;
  o.autostart = 0;
  DT_ASSERT(shmbus_bus_open(&bus, &o) == 0, "bus");
  DT_ASSERT(shmbus_pub_open(bus, "dl/t", &to, &pub) == 0, "publisher");
  DT_ASSERT(pipe(ready) == 0, "pipe");
  pid = fork();
  DT_ASSERT(pid >= 0, "fork");
  if (pid == 0) {
    struct shmbus_sub_opts so = {0};
    shmbus_bus *cb = NULL;
    shmbus_sub *sub = NULL;
    dt_in_child = true;
    close(ready[0]);
    so.reliable = true; /* no deadline of its own: the bus's applies */
    if (shmbus_bus_open(&cb, &o) != 0 || shmbus_sub_open(cb, "dl/t", &so, &sub) != 0)
      _exit(71);
    if (write(ready[1], &byte, 1) != 1)
      _exit(72);
    raise(SIGSTOP);
    _exit(0);
  }
  close(ready[1]);
  DT_ASSERT(read(ready[0], &byte, 1) == 1, "the subscriber is attached");
  close(ready[0]);
  DT_ASSERT(waitpid(pid, &status, WUNTRACED) == pid && WIFSTOPPED(status), "it stopped");
  DT_ASSERT(shmbus_pub_wait_subs(pub, 1, 10000) >= 1, "the publisher knows it");
  for (i = 0; i < 4 * 8; i++) {
    int rv, tries = 0;
    while ((rv = shmbus_pub_publish(pub, "m", 1)) == SHMBUS_EFULL && tries++ < 3)
      (void)shmbus_pub_wait(pub, 5000);
    DT_ASSERT(rv == 0, "message %d: %s after %d waits", i, shmbus_strerror(rv), tries);
  }
  DT_ASSERT(shmbus_pub_deadline_overwrites(pub) > 0, "the publisher overwrote past the deadline");
  kill(pid, SIGKILL);
  (void)dt_wait_exit(pid);
  shmbus_bus_close(bus);
  dt_stop(&d);
  dt_cleanup(&d);
}
