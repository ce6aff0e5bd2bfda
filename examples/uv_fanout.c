/* uv_fanout: one publisher process, N subscriber processes, each
 * subscriber asleep in its own libuv loop until a publisher wakes it.
 *
 *   shmbus-example-uv-fanout [--subs N] [--messages N] [--topic NAME]
 *
 * The first subscriber is reliable (the publisher waits for it rather than
 * overwrite what it has not read); the others are lossy (they never slow
 * the publisher, and count exactly what they missed). Every payload carries
 * a checksum. The bus daemon is started automatically if none runs. The
 * subscribers are this program started again (libuv's uv_spawn), so it runs
 * as it is on Linux and on Windows. */
/* uv.h's pthread types under strict C11 (Linux). */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <shmbus/shmbus.h>
#include <shmbus/uv.h>

struct msg {
  uint64_t n;    /* 0..messages-1 */
  uint64_t last; /* 1 on the final message */
  char text[40];
  uint64_t sum; /* checksum of the fields above */
};

static uint64_t msg_sum(const struct msg *m) {
  const unsigned char *p = (const unsigned char *)m;
  uint64_t h = 1469598103934665603ull;
  size_t i;
  for (i = 0; i < offsetof(struct msg, sum); i++)
    h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

struct sub_state {
  int id;
  uint64_t bad;
  char last[40];
  uv_loop_t *loop;
};

static void on_msg(shmbus_sub *sub, const void *data, size_t len,
                   const struct shmbus_msg_info *info, void *arg) {
  struct sub_state *st = arg;
  struct msg m;
  (void)sub;
  (void)info;
  if (len != sizeof(m)) {
    st->bad++;
    return;
  }
  memcpy(&m, data, sizeof(m));
  if (m.sum != msg_sum(&m))
    st->bad++;
  if (m.last) {
    memcpy(st->last, m.text, sizeof(st->last));
    uv_stop(st->loop);
  }
}

static int fail(const char *what, int rv) {
  fprintf(stderr, "uv_fanout: %s: %s\n", what, shmbus_strerror(rv));
  return 1;
}

static int run_subscriber(int id, const char *topic) {
  struct shmbus_sub_opts so = {0};
  struct sub_state st = {0};
  struct shmbus_sub_stats stats;
  shmbus_bus *bus;
  shmbus_sub *sub;
  uv_loop_t loop;
  int rv;

  st.id = id;
  st.loop = &loop;
  so.reliable = id == 0;
  if ((rv = uv_loop_init(&loop)) < 0)
    return fail("uv_loop_init", rv);
  if ((rv = shmbus_bus_open(&bus, NULL)) < 0)
    return fail("bus_open", rv);
  if ((rv = shmbus_sub_open(bus, topic, &so, &sub)) < 0)
    return fail("sub_open", rv);
  if ((rv = shmbus_uv_bus_start(bus, &loop)) < 0 ||
      (rv = shmbus_uv_sub_start(sub, &loop, on_msg, &st)) < 0)
    return fail("uv start", rv);
  uv_run(&loop, UV_RUN_DEFAULT); /* the publisher waits for us (shmbus_pub_wait_subs) */
  shmbus_sub_stats(sub, &stats);
  printf("subscriber %d (%s, pid %d): received %" PRIu64 " lost %" PRIu64
         " checksum errors %" PRIu64 "; last: \"%s\"\n",
         id, so.reliable ? "reliable" : "lossy", (int)uv_os_getpid(), stats.received, stats.lost,
         st.bad, st.last);
  fflush(stdout);
  rv = st.bad != 0 || (so.reliable && stats.lost != 0) || st.last[0] == '\0';
  shmbus_bus_close(bus);         /* closes the subscriber too */
  uv_run(&loop, UV_RUN_DEFAULT); /* lets libuv finish closing our handles */
  uv_loop_close(&loop);
  return rv;
}

/* A subscriber process: its exit status once it ended. */
struct child {
  uv_process_t proc;
  int64_t status; /* -1 while it runs */
};

static void child_exited(uv_process_t *proc, int64_t status, int signal) {
  struct child *c = proc->data;
  c->status = signal != 0 ? 128 + signal : status;
  uv_close((uv_handle_t *)proc, NULL);
}

/* Starts this program again as subscriber `id`, sharing our stdout and
 * stderr. */
static int spawn_subscriber(uv_loop_t *loop, struct child *c, int id, const char *topic) {
  char exe[4096], ids[16];
  size_t len = sizeof(exe);
  char *args[6];
  uv_stdio_container_t io[3];
  uv_process_options_t o;
  int rv;

  if ((rv = uv_exepath(exe, &len)) < 0)
    return rv;
  snprintf(ids, sizeof(ids), "%d", id);
  args[0] = exe;
  args[1] = "--subscriber";
  args[2] = ids;
  args[3] = "--topic";
  args[4] = (char *)topic;
  args[5] = NULL;
  io[0].flags = UV_IGNORE;
  io[1].flags = UV_INHERIT_FD;
  io[1].data.fd = 1;
  io[2].flags = UV_INHERIT_FD;
  io[2].data.fd = 2;
  memset(&o, 0, sizeof(o));
  o.file = exe;
  o.args = args;
  o.exit_cb = child_exited;
  o.stdio = io;
  o.stdio_count = 3;
  c->status = -1;
  c->proc.data = c;
  return uv_spawn(loop, &c->proc, &o);
}

int main(int argc, char **argv) {
  const char *topic = "demo/fanout";
  struct shmbus_topic_opts to = {1024, sizeof(struct msg), 16, 4, false};
  uint64_t messages = 200000, n;
  int nsubs = 3, i, rv, failed = 0, subscriber = -1;
  struct child kids[16];
  uv_loop_t loop;
  shmbus_bus *bus;
  shmbus_pub *pub;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--subscriber") == 0 && i + 1 < argc)
      subscriber = atoi(argv[++i]); /* how the publisher starts us */
    else if (strcmp(argv[i], "--subs") == 0 && i + 1 < argc)
      nsubs = atoi(argv[++i]);
    else if (strcmp(argv[i], "--messages") == 0 && i + 1 < argc)
      messages = strtoull(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--topic") == 0 && i + 1 < argc)
      topic = argv[++i];
    else {
      printf("usage: shmbus-example-uv-fanout [--subs N] [--messages N] [--topic NAME]\n"
             "One publisher fans out to N subscriber processes (default 3; the first is\n"
             "reliable, the others lossy), each in its own libuv loop.\n");
      return strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }
  if (subscriber >= 0)
    return run_subscriber(subscriber, topic);
  if (nsubs < 1 || nsubs > 16 || messages < 1)
    return fail("arguments", -22);
  /* Open the bus first: this starts the daemon if needed, once. */
  if ((rv = shmbus_bus_open(&bus, NULL)) < 0)
    return fail("bus_open", rv);
  if ((rv = shmbus_pub_open(bus, topic, &to, &pub)) < 0)
    return fail("pub_open", rv);
  if ((rv = uv_loop_init(&loop)) < 0)
    return fail("uv_loop_init", rv);
  for (i = 0; i < nsubs; i++)
    if ((rv = spawn_subscriber(&loop, &kids[i], i, topic)) < 0) {
      fprintf(stderr, "uv_fanout: starting a subscriber: %s\n", uv_strerror(rv));
      return 1; /* those started give up when they find no publisher */
    }
  /* Each child opens its own bus (it never shares ours) and subscribes. */
  if ((rv = shmbus_pub_wait_subs(pub, (uint32_t)nsubs, 30000)) < 0) {
    for (i = 0; i < nsubs; i++)
      (void)uv_process_kill(&kids[i].proc, SIGTERM);
    return fail("the subscribers did not come", rv);
  }
  printf("publisher (pid %d): %d subscribers listening on \"%s\"; publishing %" PRIu64
         " messages\n",
         (int)uv_os_getpid(), nsubs, topic, messages);
  fflush(stdout);
  for (n = 0; n < messages; n++) {
    struct msg m;
    memset(&m, 0, sizeof(m));
    m.n = n;
    m.last = n + 1 == messages;
    snprintf(m.text, sizeof(m.text), "hello #%" PRIu64 " from pid %d", n, (int)uv_os_getpid());
    m.sum = msg_sum(&m);
    while ((rv = shmbus_pub_publish(pub, &m, sizeof(m))) == SHMBUS_EFULL)
      (void)shmbus_pub_wait(pub, 1000); /* the reliable subscriber is behind */
    if (rv < 0)
      return fail("publish", rv);
  }
  uv_run(&loop, UV_RUN_DEFAULT); /* until every subscriber has exited */
  for (i = 0; i < nsubs; i++)
    if (kids[i].status != 0)
      failed = 1;
  printf("publisher: published %" PRIu64 "; %s\n", shmbus_pub_published(pub),
         failed ? "FAILED" : "every subscriber accounted for every message");
  shmbus_bus_close(bus);
  uv_loop_close(&loop);
  return failed;
}
