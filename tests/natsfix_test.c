/* The NATS test fixture (tests/natsfix.c) against real nats-server
 * processes and the real client library: a 3-node JetStream cluster comes
 * up, holds a stream replicated on every node, loses the stream's leader
 * and gets it back, and leaves nothing behind when stopped; a single node
 * carries core NATS and keeps JetStream's store across a restart; bad
 * arguments and a missing server fail cleanly. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "natsfix.h"

static struct natsfix_cluster nt_c;

/* Whatever a test leaves, however it ends. */
static void nt_fini(void) {
  natsfix_cluster_stop(&nt_c);
  nats_CloseAndWait(5000);
}

static void nt_start(int nodes, bool jetstream) {
  int rv = natsfix_cluster_start(&nt_c, nodes, jetstream);
  cr_assert_eq(rv, 0, "natsfix_cluster_start(%d, %d): %s (%s)", nodes, jetstream, strerror(-rv),
               nt_c.err);
}

static int64_t nt_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A connection to every node of the cluster that reconnects quickly to
 * another one when its node goes. */
static natsConnection *nt_connect(const char *urls) {
  natsOptions *o = NULL;
  natsConnection *nc = NULL;
  natsStatus s;

  char list[sizeof(nt_c.urls)], *save = NULL, *u;
  const char *servers[NATSFIX_MAX_NODES];
  int n = 0;

  /* natsOptions_SetURL takes one URL in libnats 3.4 (only
   * natsConnection_ConnectTo splits a list): the list goes in as servers. */
  snprintf(list, sizeof(list), "%s", urls);
  for (u = strtok_r(list, ",", &save); u != NULL && n < NATSFIX_MAX_NODES;
       u = strtok_r(NULL, ",", &save))
    servers[n++] = u;
  cr_assert_gt(n, 0);
  cr_assert_eq(natsOptions_Create(&o), NATS_OK);
  cr_assert_eq(natsOptions_SetServers(o, servers, n), NATS_OK);
  cr_assert_eq(natsOptions_SetReconnectWait(o, 50), NATS_OK);
  cr_assert_eq(natsOptions_SetMaxReconnect(o, -1), NATS_OK);
  s = natsConnection_Connect(&nc, o);
  natsOptions_Destroy(o);
  cr_assert_eq(s, NATS_OK, "connect %s: %s", urls, natsStatus_GetText(s));
  return nc;
}

/* Payload i of a test: `len` bytes that depend on i and their position. */
static void nt_fill(unsigned char *buf, size_t len, unsigned i) {
  size_t k;
  for (k = 0; k < len; k++)
    buf[k] = (unsigned char)(i * 131u + k * 7u + (k >> 8));
}

/* Publishes message i on `subj` with a message id, so that retrying a
 * publish whose acknowledgement was lost (the stream's leader just died,
 * a new one is being elected) stores it once. Retries for up to 60 s:
 * the loop is bounded by a deadline, and each attempt waits for the
 * cluster's answer. Returns the stream sequence. */
static uint64_t nt_js_publish(jsCtx *js, const char *subj, unsigned i, size_t len) {
  unsigned char buf[4096];
  char id[32];
  int64_t deadline = nt_now_ms() + 60000;
  jsPubOptions po;
  jsPubAck *pa = NULL;
  jsErrCode jerr = 0;
  natsStatus s;
  uint64_t seq;

  cr_assert_leq(len, sizeof(buf));
  nt_fill(buf, len, i);
  snprintf(id, sizeof(id), "m%u", i);
  jsPubOptions_Init(&po);
  po.MsgId = id;
  po.MaxWait = 2000;
  while ((s = js_Publish(&pa, js, subj, buf, (int)len, &po, &jerr)) != NATS_OK) {
    cr_assert_lt(nt_now_ms(), deadline, "publish %u: %s (JetStream error %d)", i,
                 natsStatus_GetText(s), (int)jerr);
  }
  seq = pa->Sequence;
  jsPubAck_Destroy(pa);
  return seq;
}

/* Reads message `seq` of the stream back and checks every byte. */
static void nt_js_check(jsCtx *js, const char *stream, uint64_t seq, unsigned i, size_t len) {
  unsigned char want[4096];
  natsMsg *m = NULL;
  jsErrCode jerr = 0;
  int64_t deadline = nt_now_ms() + 60000;
  natsStatus s;

  nt_fill(want, len, i);
  while ((s = js_GetMsg(&m, js, stream, seq, NULL, &jerr)) != NATS_OK) {
    cr_assert_lt(nt_now_ms(), deadline, "get %llu: %s (JetStream error %d)",
                 (unsigned long long)seq, natsStatus_GetText(s), (int)jerr);
  }
  cr_assert_eq((size_t)natsMsg_GetDataLength(m), len, "message %u: %d bytes, %zu sent", i,
               natsMsg_GetDataLength(m), len);
  cr_assert_eq(memcmp(natsMsg_GetData(m), want, len), 0, "message %u: bytes differ", i);
  natsMsg_Destroy(m);
}

/* Adds file-backed stream `name` of the subjects `subject` (one pattern)
 * with `replicas` copies (0: the server's default, one). */
static void nt_add_stream(jsCtx *js, const char *name, const char *subject, int replicas) {
  const char *subjects[] = {subject};
  jsStreamConfig cfg;
  jsStreamInfo *si = NULL;
  jsErrCode jerr = 0;
  natsStatus s;

  jsStreamConfig_Init(&cfg);
  cfg.Name = name;
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  cfg.Replicas = replicas;
  s = js_AddStream(&si, js, &cfg, NULL, &jerr);
  cr_assert_eq(s, NATS_OK, "add stream %s: %s (JetStream error %d)", name, natsStatus_GetText(s),
               (int)jerr);
  jsStreamInfo_Destroy(si);
}

/* Node index of the stream's leader, or -1. */
static int nt_leader(jsCtx *js, const char *stream, int *replicas) {
  jsStreamInfo *si = NULL;
  jsErrCode jerr = 0;
  int leader = -1;
  natsStatus s = js_GetStreamInfo(&si, js, stream, NULL, &jerr);

  cr_assert_eq(s, NATS_OK, "stream info: %s (%d)", natsStatus_GetText(s), (int)jerr);
  if (si->Cluster != NULL && si->Cluster->Leader != NULL)
    leader = natsfix_node_index(&nt_c, si->Cluster->Leader);
  if (replicas != NULL)
    *replicas = si->Cluster != NULL ? si->Cluster->ReplicasLen : 0;
  jsStreamInfo_Destroy(si);
  return leader;
}

/* Everything the cluster had is gone: its directory and its processes. */
static void nt_check_gone(const char *dir, const pid_t *pids, int n) {
  struct stat st;
  int i;

  cr_assert_neq(stat(dir, &st), 0, "%s left behind", dir);
  cr_assert_eq(errno, ENOENT);
  for (i = 0; i < n; i++)
    cr_assert(kill(pids[i], 0) != 0 && errno == ESRCH, "n%d (pid %d) still there", i, (int)pids[i]);
}

TestSuite(natsfix, .fini = nt_fini, .timeout = 240);

Test(natsfix, jetstream_cluster_keeps_a_replicated_stream_through_a_killed_leader) {
  natsConnection *nc;
  jsCtx *js = NULL;
  char dir[sizeof(nt_c.dir)];
  pid_t pids[3];
  int i, leader, replicas;
  uint64_t seq[4];

  nt_start(3, true);
  cr_assert_eq(nt_c.nodes, 3);
  for (i = 0; i < 3; i++) {
    char want[40];
    cr_assert_gt(nt_c.node[i].pid, 0);
    snprintf(want, sizeof(want), "nats://127.0.0.1:%u", nt_c.node[i].port);
    cr_assert_not_null(strstr(natsfix_urls(&nt_c), want), "%s not in %s", want,
                       natsfix_urls(&nt_c));
  }

  nc = nt_connect(natsfix_urls(&nt_c));
  cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
  nt_add_stream(js, "NT", "nt.>", 3);

  seq[0] = nt_js_publish(js, "nt.a", 0, 1000);
  nt_js_check(js, "NT", seq[0], 0, 1000);
  leader = nt_leader(js, "NT", &replicas);
  cr_assert_eq(replicas, 2, "the stream has %d replicas besides its leader", replicas);
  cr_assert(leader >= 0 && leader < 3, "no leader");

  /* The leader dies: another node takes over and the stream goes on. */
  cr_assert_eq(natsfix_node_kill(&nt_c, leader), 0);
  cr_assert_eq(nt_c.node[leader].pid, 0);
  seq[1] = nt_js_publish(js, "nt.b", 1, 4096);
  cr_assert_eq(seq[1], seq[0] + 1, "stored once: sequence %llu after %llu",
               (unsigned long long)seq[1], (unsigned long long)seq[0]);
  nt_js_check(js, "NT", seq[1], 1, 4096);

  /* It comes back on the same ports and store, and the cluster takes it
   * in again. */
  i = natsfix_node_restart(&nt_c, leader);
  cr_assert_eq(i, 0, "restart n%d: %s (%s)", leader, strerror(-i), nt_c.err);
  cr_assert_gt(nt_c.node[leader].pid, 0);
  seq[2] = nt_js_publish(js, "nt.c", 2, 7);
  cr_assert_eq(seq[2], seq[1] + 1);
  for (i = 0; i < 3; i++)
    nt_js_check(js, "NT", seq[i], (unsigned)i, i == 0 ? 1000 : i == 1 ? 4096 : 7);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);

  /* A client of the restarted node alone reads the whole stream. */
  nc = nt_connect(nt_c.node[leader].url);
  cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
  for (i = 0; i < 3; i++)
    nt_js_check(js, "NT", seq[i], (unsigned)i, i == 0 ? 1000 : i == 1 ? 4096 : 7);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);

  memcpy(dir, nt_c.dir, sizeof(dir));
  for (i = 0; i < 3; i++)
    pids[i] = nt_c.node[i].pid;
  cr_assert_eq(natsfix_cluster_stop(&nt_c), 0, "%s", nt_c.err);
  nt_check_gone(dir, pids, 3);
  /* A second stop is harmless. */
  cr_assert_eq(natsfix_cluster_stop(&nt_c), 0);
}

Test(natsfix, single_node_core_pubsub_and_jetstream_store_across_a_restart) {
  natsConnection *nc;
  natsSubscription *sub = NULL;
  jsCtx *js = NULL;
  unsigned char buf[512];
  char dir[sizeof(nt_c.dir)];
  pid_t pid;
  uint64_t seq;
  unsigned i;
  int rv;

  nt_start(1, true);
  cr_assert_eq(strcmp(natsfix_urls(&nt_c), nt_c.node[0].url), 0);
  nc = nt_connect(natsfix_urls(&nt_c));

  /* Core NATS: 200 messages, in order, every byte. */
  cr_assert_eq(natsConnection_SubscribeSync(&sub, nc, "core.x"), NATS_OK);
  cr_assert_eq(natsConnection_Flush(nc), NATS_OK);
  for (i = 0; i < 200; i++) {
    nt_fill(buf, sizeof(buf), i);
    cr_assert_eq(natsConnection_Publish(nc, "core.x", buf, (int)(i % sizeof(buf)) + 1), NATS_OK);
  }
  for (i = 0; i < 200; i++) {
    natsMsg *m = NULL;
    natsStatus s = natsSubscription_NextMsg(&m, sub, 10000);
    cr_assert_eq(s, NATS_OK, "message %u: %s", i, natsStatus_GetText(s));
    nt_fill(buf, sizeof(buf), i);
    cr_assert_eq(natsMsg_GetDataLength(m), (int)(i % sizeof(buf)) + 1);
    cr_assert_eq(memcmp(natsMsg_GetData(m), buf, (size_t)natsMsg_GetDataLength(m)), 0);
    natsMsg_Destroy(m);
  }
  natsSubscription_Destroy(sub);

  /* JetStream on one node: the store outlives a SIGKILL. */
  cr_assert_eq(natsConnection_JetStream(&js, nc, NULL), NATS_OK);
  nt_add_stream(js, "ONE", "one.>", 0);
  seq = nt_js_publish(js, "one.a", 7, 300);
  cr_assert_eq(natsfix_node_kill(&nt_c, 0), 0);
  rv = natsfix_node_restart(&nt_c, 0);
  cr_assert_eq(rv, 0, "restart: %s (%s)", strerror(-rv), nt_c.err);
  nt_js_check(js, "ONE", seq, 7, 300);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);

  memcpy(dir, nt_c.dir, sizeof(dir));
  pid = nt_c.node[0].pid;
  cr_assert_eq(natsfix_cluster_stop(&nt_c), 0, "%s", nt_c.err);
  nt_check_gone(dir, &pid, 1);
}

Test(natsfix, core_cluster_routes_between_nodes) {
  natsConnection *a, *b;
  natsSubscription *sub = NULL;
  natsMsg *m = NULL;

  nt_start(2, false);
  /* A subscriber on n1 gets what is published on n0: the fixture waited
   * for the routes, not only for each server. */
  b = nt_connect(nt_c.node[1].url);
  a = nt_connect(nt_c.node[0].url);
  cr_assert_eq(natsConnection_SubscribeSync(&sub, b, "route.x"), NATS_OK);
  cr_assert_eq(natsConnection_Flush(b), NATS_OK);
  /* The subscription reaches n0 over the route asynchronously: publish
   * until one arrives (bounded by NextMsg's timeout per round). */
  for (int round = 0; round < 100 && m == NULL; round++) {
    cr_assert_eq(natsConnection_PublishString(a, "route.x", "hello"), NATS_OK);
    cr_assert_eq(natsConnection_Flush(a), NATS_OK);
    if (natsSubscription_NextMsg(&m, sub, 100) != NATS_OK)
      m = NULL;
  }
  cr_assert_not_null(m, "nothing crossed the route");
  cr_assert_eq(strcmp(natsMsg_GetData(m), "hello"), 0);
  natsMsg_Destroy(m);
  natsSubscription_Destroy(sub);
  natsConnection_Destroy(a);
  natsConnection_Destroy(b);
}

Test(natsfix, bad_arguments_and_a_missing_server_leave_nothing) {
  char tmp[] = "/tmp/shmbus-natsfix-test-XXXXXX";
  DIR *d;
  struct dirent *e;
  int rv, entries = 0;

  cr_assert_eq(natsfix_cluster_start(&nt_c, 0, false), -EINVAL);
  cr_assert_eq(natsfix_cluster_start(&nt_c, 4, true), -EINVAL);
  cr_assert_eq(natsfix_node_kill(&nt_c, 5), -EINVAL);
  cr_assert_eq(natsfix_node_restart(&nt_c, -1), -EINVAL);

  /* A private TMPDIR shows that a failed start removes its directory. */
  cr_assert_not_null(mkdtemp(tmp));
  cr_assert_eq(setenv("TMPDIR", tmp, 1), 0);
  cr_assert_eq(setenv("SHMBUS_NATS_SERVER", "/nonexistent/nats-server", 1), 0);
  rv = natsfix_cluster_start(&nt_c, 3, true);
  cr_assert_eq(rv, -ENOENT, "%d: %s", rv, nt_c.err);
  cr_assert_not_null(strstr(nt_c.err, "/nonexistent/nats-server"), "%s", nt_c.err);
  cr_assert_eq(nt_c.dir[0], '\0');

  /* A server that exits at once: the error names the node and its log. */
  cr_assert_eq(setenv("SHMBUS_NATS_SERVER", "/bin/false", 1), 0);
  rv = natsfix_cluster_start(&nt_c, 1, false);
  cr_assert_eq(rv, -ECHILD, "%d: %s", rv, nt_c.err);
  cr_assert_not_null(strstr(nt_c.err, "n0"), "%s", nt_c.err);

  cr_assert_not_null(d = opendir(tmp));
  while ((e = readdir(d)) != NULL)
    entries += e->d_name[0] != '.';
  closedir(d);
  cr_assert_eq(entries, 0, "a failed start left files in %s", tmp);
  cr_assert_eq(rmdir(tmp), 0);
}
