/* reliable: back-pressure instead of loss. A slow "logger" subscriber in
 * another process asks for every message (reliable); the publisher runs in
 * a libuv loop and, whenever the ring is full behind the logger, stops and
 * waits for the "writable again" callback instead of overwriting.
 *
 *   shmbus-example-reliable [--messages N]
 *
 * The logger checks that it got every sequence number exactly once. It is
 * this program started again (libuv's uv_spawn), so it runs as it is on
 * Linux and on Windows. */
/* uv.h's pthread types under strict C11 (Linux). */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <shmbus/shmbus.h>
#include <shmbus/uv.h>

#define TOPIC "demo/reliable"

struct producer {
  shmbus_pub *pub;
  uv_loop_t *loop;
  uint64_t next, total, waits;
};

static int fail(const char *what, int rv) {
  fprintf(stderr, "reliable: %s: %s\n", what, shmbus_strerror(rv));
  return 1;
}

/* Publishes until done or the ring is full; in the second case it arms
 * the writable callback, which calls it again. */
static void produce(shmbus_pub *pub, void *arg) {
  struct producer *p = arg;
  int rv;
  (void)pub;
  while (p->next < p->total) {
    rv = shmbus_pub_publish(p->pub, &p->next, sizeof(p->next));
    if (rv == SHMBUS_EFULL) {
      p->waits++;
      if ((rv = shmbus_uv_pub_on_writable(p->pub, p->loop, produce, p)) < 0)
        fail("on_writable", rv);
      return;
    }
    if (rv < 0) {
      fail("publish", rv);
      return;
    }
    p->next++;
  }
}

static int run_logger(uint64_t total) {
  struct shmbus_sub_opts so = {0};
  struct shmbus_sub_stats st;
  shmbus_bus *bus;
  shmbus_sub *sub;
  uint64_t expect = 0, v;
  volatile uint64_t work = 0;
  int rv;

  so.reliable = true;
  if ((rv = shmbus_bus_open(&bus, NULL)) < 0 || (rv = shmbus_sub_open(bus, TOPIC, &so, &sub)) < 0)
    return fail("logger open", rv);
  while (expect < total) {
    uint64_t i;
    if ((rv = shmbus_sub_recv(sub, &v, sizeof(v), NULL, 5000)) < 0)
      return fail("logger recv", rv);
    if (v != expect) {
      fprintf(stderr, "logger: got %" PRIu64 ", expected %" PRIu64 "\n", v, expect);
      return 1;
    }
    expect++;
    for (i = 0; i < 2000; i++) /* a slow consumer: "writing to disk" */
      work += i;
  }
  shmbus_sub_stats(sub, &st);
  printf("logger (reliable, pid %d): received %" PRIu64 " lost %" PRIu64 ", all in order\n",
         (int)uv_os_getpid(), st.received, st.lost);
  shmbus_bus_close(bus);
  return st.lost == 0 ? 0 : 1;
}

static int64_t logger_status = -1; /* -1 while it runs */

static void logger_exited(uv_process_t *proc, int64_t status, int signal) {
  logger_status = signal != 0 ? 128 + signal : status;
  uv_close((uv_handle_t *)proc, NULL);
}

/* Starts this program again as the logger, sharing our stdout and stderr. */
static int spawn_logger(uv_loop_t *loop, uv_process_t *proc, uint64_t total) {
  char exe[4096], n[32];
  size_t len = sizeof(exe);
  char *args[4];
  uv_stdio_container_t io[3];
  uv_process_options_t o;
  int rv;

  if ((rv = uv_exepath(exe, &len)) < 0)
    return rv;
  snprintf(n, sizeof(n), "%" PRIu64, total);
  args[0] = exe;
  args[1] = "--logger";
  args[2] = n;
  args[3] = NULL;
  io[0].flags = UV_IGNORE;
  io[1].flags = UV_INHERIT_FD;
  io[1].data.fd = 1;
  io[2].flags = UV_INHERIT_FD;
  io[2].data.fd = 2;
  memset(&o, 0, sizeof(o));
  o.file = exe;
  o.args = args;
  o.exit_cb = logger_exited;
  o.stdio = io;
  o.stdio_count = 3;
  return uv_spawn(loop, proc, &o);
}

int main(int argc, char **argv) {
  struct shmbus_topic_opts to = {64, 64, 8, 4, false};
  struct producer p = {0};
  uv_loop_t loop;
  uv_process_t logger;
  shmbus_bus *bus;
  int rv;

  p.total = 100000;
  if (argc == 3 && strcmp(argv[1], "--logger") == 0)
    return run_logger(strtoull(argv[2], NULL, 10)); /* how the publisher starts us */
  if (argc == 3 && strcmp(argv[1], "--messages") == 0)
    p.total = strtoull(argv[2], NULL, 10);
  else if (argc != 1) {
    printf("usage: shmbus-example-reliable [--messages N]\n");
    return strcmp(argv[1], "--help") == 0 ? 0 : 2;
  }
  if ((rv = shmbus_bus_open(&bus, NULL)) < 0 || (rv = shmbus_pub_open(bus, TOPIC, &to, &p.pub)) < 0)
    return fail("open", rv);
  if ((rv = uv_loop_init(&loop)) < 0)
    return fail("uv_loop_init", rv);
  if ((rv = spawn_logger(&loop, &logger, p.total)) < 0) {
    fprintf(stderr, "reliable: starting the logger: %s\n", uv_strerror(rv));
    return 1;
  }
  /* It opens its own bus and subscribes; wait for it. */
  if ((rv = shmbus_pub_wait_subs(p.pub, 1, 30000)) < 0) {
    (void)uv_process_kill(&logger, SIGTERM);
    return fail("the logger did not come", rv);
  }
  p.loop = &loop;
  shmbus_uv_bus_start(bus, &loop);
  produce(p.pub, &p);
  /* Runs until everything is published: the writable callback is the only
   * thing keeping the loop busy besides the bus socket, so stop when done. */
  while (p.next < p.total)
    uv_run(&loop, UV_RUN_ONCE);
  printf("publisher (pid %d): published %" PRIu64 ", waited for the logger %" PRIu64 " times\n",
         (int)uv_os_getpid(), p.next, p.waits);
  fflush(stdout);             /* before the logger's line, which it prints when it is done */
  while (logger_status == -1) /* until the logger has exited */
    uv_run(&loop, UV_RUN_ONCE);
  shmbus_bus_close(bus);
  uv_run(&loop, UV_RUN_DEFAULT); /* lets libuv finish closing our handles */
  uv_loop_close(&loop);
  return logger_status == 0 ? 0 : 1;
}
