/* The public calls about the daemon itself, against a real shmbusd:
 * status, stop, snapshots, the daemon's reasons (last_error), waiting for
 * subscribers. */
#include <criterion/criterion.h>
#include <errno.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemonutil.h"
#include "shmbus/msgpack.h"

TestSuite(admin, .init = du_suite_start, .fini = du_suite_stop, .timeout = 60);

Test(admin, status_reports_the_daemon) {
  shmbus_bus *bus = du_bus(&du_suite);
  struct shmbus_daemon_status st;

  cr_assert_eq(shmbus_bus_daemon_status(bus, &st), 0);
  cr_assert_eq(st.pid, (uint32_t)du_suite.pid);
  cr_assert_eq(st.clients, 1);
  cr_assert_geq(st.topics, 1); /* $sys/stats */
  cr_assert_eq(shmbus_bus_daemon_status(bus, NULL), -EINVAL);
  shmbus_bus_close(bus);
}

/* Looks up key `k` in a msgpack map. */
static const msgpack_object *get(const msgpack_object *map, const char *k) {
  uint32_t i;
  cr_assert_eq(map->type, MSGPACK_OBJECT_MAP);
  for (i = 0; i < map->via.map.size; i++) {
    const msgpack_object *key = &map->via.map.ptr[i].key;
    if (key->type == MSGPACK_OBJECT_STR && key->via.str.size == strlen(k) &&
        memcmp(key->via.str.ptr, k, key->via.str.size) == 0)
      return &map->via.map.ptr[i].val;
  }
  cr_assert_fail("no key %s", k);
  return NULL;
}

Test(admin, snapshot_of_one_topic_and_of_all) {
  struct shmbus_bus_opts o;
  shmbus_bus *bus;
  shmbus_pub *pub;
  shmbus_sub *sub;
  msgpack_unpacked up;
  const msgpack_object *topics, *t, *s;
  void *data;
  size_t len;

  du_opts(&du_suite, &o);
  o.name = "snapper";
  cr_assert_eq(shmbus_bus_open(&bus, &o), 0);
  cr_assert_eq(shmbus_sub_open(bus, "snap/a", NULL, &sub), 0);
  cr_assert_eq(shmbus_pub_open(bus, "snap/a", NULL, &pub), 0);
  for (int i = 0; i < 5; i++)
    cr_assert_eq(shmbus_pub_publish(pub, "x", 1), 0);

  cr_assert_eq(shmbus_bus_snapshot(bus, "snap/a", &data, &len), 0);
  msgpack_unpacked_init(&up);
  cr_assert_eq(shmbus_msgpack_unpack(data, len, &up), 0);
  shmbus_snapshot_free(data);
  topics = get(&up.data, "topics");
  cr_assert_eq(topics->via.array.size, 1, "the filter keeps one topic");
  t = &topics->via.array.ptr[0];
  cr_assert_eq(get(t, "head")->via.u64, 5);
  cr_assert_eq(get(t, "slots")->via.u64, 256);
  cr_assert_eq(get(t, "pubs")->via.array.size, 1);
  cr_assert_eq(get(&get(t, "pubs")->via.array.ptr[0], "published")->via.u64, 5);
  cr_assert_eq(get(t, "subs")->via.array.size, 1);
  s = &get(t, "subs")->via.array.ptr[0];
  cr_assert_eq(get(s, "pid")->via.u64, (uint64_t)getpid());
  cr_assert_eq(get(s, "lag")->via.u64, 5);
  cr_assert_eq(get(s, "name")->via.str.size, 7);
  cr_assert_eq(memcmp(get(s, "name")->via.str.ptr, "snapper", 7), 0);
  cr_assert_eq(get(&up.data, "truncated")->type, MSGPACK_OBJECT_BOOLEAN);
  cr_assert_not(get(&up.data, "truncated")->via.boolean);

  /* All topics: ours and the daemon's. */
  cr_assert_eq(shmbus_bus_snapshot(bus, NULL, &data, &len), 0);
  cr_assert_eq(shmbus_msgpack_unpack(data, len, &up), 0);
  shmbus_snapshot_free(data);
  cr_assert_eq(get(&up.data, "topics")->via.array.size, 2);
  msgpack_unpacked_destroy(&up);

  /* A topic the daemon does not have, and a name that is none. */
  cr_assert_eq(shmbus_bus_snapshot(bus, "no/such", &data, &len), -ENOENT);
  cr_assert_not_null(strstr(shmbus_bus_last_error(bus), "no topic \"no/such\""), "%s",
                     shmbus_bus_last_error(bus));
  cr_assert_eq(shmbus_bus_snapshot(bus, "bad//name", &data, &len), SHMBUS_EBADNAME);
  shmbus_bus_close(bus);
}

/* Many topics: the snapshot grows past one 64 KiB buffer and past what a
 * $sys/stats slot holds, and still comes whole. */
Test(admin, large_snapshot_is_complete) {
  shmbus_bus *bus = du_bus(&du_suite);
  struct shmbus_topic_opts t = {2, 8, 1, 1, false};
  msgpack_unpacked up;
  void *data;
  size_t len;
  char name[64];
  int i;

  for (i = 0; i < 600; i++) {
    shmbus_pub *pub;
    snprintf(name, sizeof(name), "many/topic-with-a-long-name-to-fill-space/%04d", i);
    cr_assert_eq(shmbus_pub_open(bus, name, &t, &pub), 0);
  }
  cr_assert_eq(shmbus_bus_snapshot(bus, NULL, &data, &len), 0);
  cr_assert_gt(len, 64u * 1024u);
  msgpack_unpacked_init(&up);
  cr_assert_eq(shmbus_msgpack_unpack(data, len, &up), 0);
  cr_assert_eq(get(&up.data, "topics")->via.array.size, 601);
  cr_assert_not(get(&up.data, "truncated")->via.boolean);
  msgpack_unpacked_destroy(&up);
  free(data); /* what programs written before shmbus_snapshot_free do: still fine on Linux */
  shmbus_bus_close(bus);
}

Test(admin, last_error_carries_the_daemons_reason) {
  struct shmbus_topic_opts a = {16, 64, 4, 4, false};
  struct shmbus_topic_opts b = {32, 64, 4, 4, false};
  shmbus_bus *bus = du_bus(&du_suite);
  shmbus_pub *pub, *pub2;

  cr_assert_str_eq(shmbus_bus_last_error(bus), "");
  cr_assert_eq(shmbus_pub_open(bus, "err/params", &a, &pub), 0);
  cr_assert_eq(shmbus_pub_open(bus, "err/params", &b, &pub2), SHMBUS_EMISMATCH);
  cr_assert_not_null(strstr(shmbus_bus_last_error(bus), "exists with slots=16"), "%s",
                     shmbus_bus_last_error(bus));
  /* The next request clears it. */
  cr_assert_eq(shmbus_pub_open(bus, "err/other", NULL, &pub2), 0);
  cr_assert_str_eq(shmbus_bus_last_error(bus), "");
  cr_assert_str_eq(shmbus_bus_last_error(NULL), "");
  shmbus_bus_close(bus);
}

/* A child opens a subscriber after the parent's publisher began waiting;
 * the parent's wait returns once the subscriber is there. */
Test(admin, wait_subs_returns_when_subscribers_attach) {
  shmbus_bus *bus = du_bus(&du_suite);
  shmbus_pub *pub;
  int go[2], done[2];
  pid_t pid;
  char c;

  cr_assert_eq(shmbus_pub_open(bus, "wait/subs", NULL, &pub), 0);
  cr_assert_eq(shmbus_pub_subscribers(pub), 0);
  cr_assert_eq(shmbus_pub_wait_subs(pub, 1, 10), -ETIMEDOUT);
  cr_assert_eq(pipe(go), 0);
  cr_assert_eq(pipe(done), 0);
  pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    struct shmbus_bus_opts o;
    shmbus_bus *cb;
    shmbus_sub *s1, *s2;
    du_opts(&du_suite, &o);
    if (read(go[0], &c, 1) != 1 || shmbus_bus_open(&cb, &o) < 0 ||
        shmbus_sub_open(cb, "wait/subs", NULL, &s1) < 0 ||
        shmbus_sub_open(cb, "wait/subs", NULL, &s2) < 0)
      _exit(1);
    /* Stay until the parent saw both. */
    if (read(done[0], &c, 1) != 1)
      _exit(2);
    shmbus_bus_close(cb);
    _exit(0);
  }
  du_write(go[1], "g", 1);
  cr_assert_eq(shmbus_pub_wait_subs(pub, 2, 10000), 2);
  cr_assert_eq(shmbus_pub_subscribers(pub), 2);
  du_write(done[1], "d", 1);
  cr_assert_eq(du_wait(pid), 0);
  /* Gone: the daemon tells the publisher. */
  for (int i = 0; i < 1000 && shmbus_pub_subscribers(pub) != 0; i++)
    (void)shmbus_pub_wait_subs(pub, 3, 10); /* reads the socket, bounded */
  cr_assert_eq(shmbus_pub_subscribers(pub), 0);
  shmbus_bus_close(bus);
}

Test(admin, stop_ends_the_daemon) {
  shmbus_bus *bus = du_bus(&du_suite);
  int status;

  cr_assert_eq(shmbus_bus_daemon_stop(bus), 0);
  status = du_wait(du_suite.pid);
  du_suite.pid = 0;
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
  shmbus_bus_close(bus);
}
