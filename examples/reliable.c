/* reliable: back-pressure instead of loss. A slow "logger" subscriber in
 * another process asks for every message (reliable); the publisher runs in
 * a libuv loop and, whenever the ring is full behind the logger, stops and
 * waits for the "writable again" callback instead of overwriting.
 *
 *   shmbus-example-reliable [--messages N]
 *
 * The logger checks that it got every sequence number exactly once. */
/* fork, waitpid and libuv's pthread types under strict C11. */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
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

static int run_logger(uint64_t total, int ready_fd) {
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
  (void)!write(ready_fd, "r", 1);
  close(ready_fd);
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
         (int)getpid(), st.received, st.lost);
  fflush(stdout); /* the child leaves with _exit, which does not flush */
  shmbus_bus_close(bus);
  return st.lost == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
  struct shmbus_topic_opts to = {64, 64, 8, 4, false};
  struct producer p = {0};
  uv_loop_t loop;
  shmbus_bus *bus;
  int ready[2], status, rv;
  pid_t pid;
  char c;

  p.total = 100000;
  if (argc == 3 && strcmp(argv[1], "--messages") == 0)
    p.total = strtoull(argv[2], NULL, 10);
  else if (argc != 1) {
    printf("usage: shmbus-example-reliable [--messages N]\n");
    return strcmp(argv[1], "--help") == 0 ? 0 : 2;
  }
  if ((rv = shmbus_bus_open(&bus, NULL)) < 0 || (rv = shmbus_pub_open(bus, TOPIC, &to, &p.pub)) < 0)
    return fail("open", rv);
  if (pipe(ready) != 0 || (pid = fork()) < 0)
    return fail("fork", -1);
  if (pid == 0) {
    close(ready[0]);
    _exit(run_logger(p.total, ready[1]));
  }
  close(ready[1]);
  if (read(ready[0], &c, 1) != 1)
    return fail("logger did not start", -1);
  close(ready[0]);

  uv_loop_init(&loop);
  p.loop = &loop;
  shmbus_uv_bus_start(bus, &loop);
  produce(p.pub, &p);
  /* Runs until everything is published: the writable callback is the only
   * thing keeping the loop busy besides the bus socket, so stop when done. */
  while (p.next < p.total)
    uv_run(&loop, UV_RUN_ONCE);
  printf("publisher (pid %d): published %" PRIu64 ", waited for the logger %" PRIu64 " times\n",
         (int)getpid(), p.next, p.waits);
  rv = waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
  shmbus_bus_close(bus);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return rv;
}
