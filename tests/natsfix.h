/* Real NATS servers for tests and benchmarks: 1 to 3 nats-server processes
 * on free loopback ports, as a cluster when more than one (routes between
 * every pair, a cluster name, a server name each), with JetStream and a
 * private store directory when asked. Everything lives in one private
 * directory $TMPDIR/shmbus-natsfix-XXXXXX (/tmp without TMPDIR): each node's
 * configuration, its log
 * and its store; stopping the cluster kills and reaps every server and
 * removes the directory.
 *
 * Readiness is polled, never slept for: a node is ready when its
 * monitoring port's /healthz answers 200 (with JetStream, only once the
 * node has contact with a meta leader) and, in a cluster, its /routez shows
 * a route to every other running node and, with JetStream, its /jsz a
 * metadata group that counts every node. nats-server 2.10 sometimes forms
 * that group without one node and keeps it so for minutes (a stream of 3
 * replicas cannot be placed then): a start whose group stays short for 10 s
 * is done again afresh. Each wait has a deadline; a failure
 * says which node and why in `err` and prints the servers' logs to stderr.
 *
 * No test framework inside: plain return codes (0 or -errno), so tests
 * (Criterion) and the benchmark can both use it. The nats-server program
 * is $SHMBUS_NATS_SERVER, else the one found at configure time
 * (NATSFIX_SERVER_PATH), else `nats-server` on the PATH. */
#ifndef SHMBUS_NATSFIX_H
#define SHMBUS_NATSFIX_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define NATSFIX_MAX_NODES 3

struct natsfix_node {
  pid_t pid;             /* the server, 0 when not running */
  uint16_t port;         /* client port */
  uint16_t cluster_port; /* route port (clusters only) */
  uint16_t http_port;    /* monitoring port */
  char url[32];          /* nats://127.0.0.1:<port> */
  char conf[160];        /* its configuration file */
  char log[160];         /* its log (stdout and stderr, appended across restarts) */
};

struct natsfix_cluster {
  char dir[128]; /* the private directory, "" when none */
  int nodes;
  bool jetstream;
  struct natsfix_node node[NATSFIX_MAX_NODES];
  char urls[NATSFIX_MAX_NODES * 32]; /* every node's URL, comma-separated */
  char err[512];                     /* what went wrong, after a failed call */
};

/* Starts `nodes` (1..3) servers, a cluster when more than one, with
 * JetStream when `jetstream`, and waits (bounded) until every node is
 * ready. Ports are taken by binding 127.0.0.1:0 and closing the socket; a
 * node that then finds its port taken is retried on new ports. Returns 0,
 * or -errno with nothing left running or on disk (c->err says why, and the
 * logs went to stderr): -EINVAL (nodes out of range), -ENOENT (no
 * nats-server), -ETIMEDOUT (a node never got ready), -ECHILD (a node
 * exited), -EAGAIN (5 starts in a row had a port taken or a JetStream
 * metadata group short of a node), or a failed system call's code. */
/* Node servers are named "<private dir's name>-n<i>" (unique on the
 * host, so a node is never mistaken for another test's server on a port
 * that was taken meanwhile). The index of the node a server name (a
 * stream's leader, say) belongs to, or -1. */
int natsfix_node_index(const struct natsfix_cluster *c, const char *server_name);

int natsfix_cluster_start(struct natsfix_cluster *c, int nodes, bool jetstream);

/* "nats://127.0.0.1:p1,nats://127.0.0.1:p2,..." for every node, running
 * or not (a client's server list). */
const char *natsfix_urls(const struct natsfix_cluster *c);

/* SIGKILLs node i and reaps it (its store stays). Returns 0, or -EINVAL
 * for a bad index; a node not running is fine. */
int natsfix_node_kill(struct natsfix_cluster *c, int i);

/* Starts node i again on the same ports and store (after a kill; if it is
 * running it is killed first), then waits until every running node is
 * ready again. Returns 0 or -errno as natsfix_cluster_start (the cluster
 * stays as it is on failure: stop it). */
int natsfix_node_restart(struct natsfix_cluster *c, int i);

/* Waits (bounded) until every running node is ready. Returns 0 or -errno
 * with c->err set: -ETIMEDOUT or -ECHILD (the logs printed), -EAGAIN (a
 * JetStream metadata group short of a node for 10 s). */
int natsfix_cluster_wait_ready(struct natsfix_cluster *c);

/* Kills and reaps every server and removes the private directory. Safe on
 * a cluster that failed to start or was stopped already. Returns 0, or
 * -errno if the directory could not be removed. */
int natsfix_cluster_stop(struct natsfix_cluster *c);

/* Prints the end of each node's log (at most `lines` lines a node) to
 * stderr, with the node's name and path. */
void natsfix_dump_logs(const struct natsfix_cluster *c, int lines);

#endif
