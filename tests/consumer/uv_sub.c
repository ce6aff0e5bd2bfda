/* consumer: a libuv subscriber built outside the tree against the installed
 * package. It calls libuv itself (uv_loop_init, uv_run), so it links libuv
 * only if the package names it as a public dependency. It opens the bus
 * with the defaults, so the library must start the installed shmbusd by
 * itself (autostart; $SHMBUS_DAEMON unset), publishes COUNT messages to its
 * own reliable subscriber, checks each one arrives once and in order from
 * the loop, then stops the daemon so nothing is left running.
 *
 *   uv_sub [COUNT]          (SHMBUS_DIR chooses the bus) */
#define _POSIX_C_SOURCE 200809L /* libuv's pthread types under strict C11 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <shmbus/shmbus.h>
#include <shmbus/uv.h>

struct state {
  uint64_t next, count, bad;
  uv_loop_t *loop;
};

static void on_msg(shmbus_sub *sub, const void *data, size_t len,
                   const struct shmbus_msg_info *info, void *arg) {
  struct state *st = arg;
  uint64_t v;
  (void)info;
  if (len != sizeof(v)) {
    st->bad++;
    return;
  }
  memcpy(&v, data, sizeof(v));
  if (v != st->next)
    st->bad++;
  st->next++;
  if (st->next == st->count) {
    shmbus_uv_sub_stop(sub);
    uv_stop(st->loop);
  }
}

static int fail(shmbus_bus *bus, const char *what, int rv) {
  fprintf(stderr, "uv_sub: %s: %s%s%s\n", what, shmbus_strerror(rv), bus ? ": " : "",
          bus ? shmbus_bus_last_error(bus) : "");
  return 1;
}

int main(int argc, char **argv) {
  struct shmbus_sub_opts so = {0};
  struct shmbus_topic_opts to = {0};
  struct state st = {0};
  shmbus_bus *bus = NULL;
  shmbus_sub *sub;
  shmbus_pub *pub;
  uv_loop_t loop;
  uint64_t i;
  int rv;

  st.count = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000;
  if (st.count == 0 || st.count > 4096)
    st.count = 1000;
  if ((rv = shmbus_bus_open(&bus, NULL)) < 0)
    return fail(NULL, "bus_open (autostart of the installed shmbusd)", rv);
  to.slots = 4096;
  to.slot_size = 64;
  to.max_subs = 4;
  to.max_pubs = 1;
  so.reliable = true;
  so.topic = to;
  if ((rv = shmbus_sub_open(bus, "consumer/uv", &so, &sub)) < 0)
    return fail(bus, "sub_open", rv);
  if ((rv = shmbus_pub_open(bus, "consumer/uv", &to, &pub)) < 0)
    return fail(bus, "pub_open", rv);
  if (uv_loop_init(&loop) != 0)
    return fail(bus, "uv_loop_init", -ENOMEM);
  st.loop = &loop;
  if ((rv = shmbus_uv_sub_start(sub, &loop, on_msg, &st)) < 0)
    return fail(bus, "uv_sub_start", rv);
  for (i = 0; i < st.count; i++)
    if ((rv = shmbus_pub_publish(pub, &i, sizeof(i))) < 0)
      return fail(bus, "publish", rv);
  uv_run(&loop, UV_RUN_DEFAULT);
  shmbus_pub_close(pub);
  shmbus_sub_close(sub);
  rv = shmbus_bus_daemon_stop(bus);
  shmbus_bus_close(bus);
  uv_run(&loop, UV_RUN_DEFAULT); /* let libuv finish closing the handles */
  if (uv_loop_close(&loop) != 0)
    fprintf(stderr, "uv_sub: a libuv handle was left open\n");
  if (st.next != st.count || st.bad != 0) {
    fprintf(stderr, "uv_sub: got %" PRIu64 " of %" PRIu64 ", %" PRIu64 " out of order\n", st.next,
            st.count, st.bad);
    return 1;
  }
  if (rv < 0)
    return fail(NULL, "daemon_stop", rv);
  printf("uv_sub: %" PRIu64 " messages in order through the autostarted daemon\n", st.count);
  return 0;
}
