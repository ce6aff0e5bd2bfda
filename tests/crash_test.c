/* The crash matrix: SIGKILL of each kind of participant at each point that
 * matters, against a real shmbusd and real processes. After each crash the
 * survivors must keep working (every byte checked), a reliable subscriber
 * must get every committed message in order, a lossy one must count its
 * losses exactly (received + lost == head - joined, docs/design.md), and
 * the daemon must be back to the descriptors it had.
 *
 *   row                                         test
 *   publisher, before claim                     publisher_killed_before_claim
 *   publisher, inside claim (fetch-add done)    publisher_killed_inside_claim
 *   publisher, between claim and commit         publisher_killed_between_claim_and_commit
 *   publisher, after commit (before waking)     publisher_killed_after_commit_before_waking
 *   publisher, claim held, a child of its fork   publisher_killed_while_a_child_holds_its_socket
 *     holding its daemon socket
 *   reliable subscriber holding a view, the same
 * reliable_subscriber_killed_while_a_child_holds_its_socket subscriber, while reading (in-place
 * view)   {reliable,lossy}_subscriber_killed_holding_a_view subscriber, asleep on its eventfd
 * subscriber_killed_while_asleep daemon, while idle daemon_killed_while_idle daemon, during topic
 * creation               daemon_killed_during_topic_creation daemon, during fd passing
 * daemon_killed_{before,after}_passing_fds 1,000 client connect/open/crash cycles
 * connect_crash_cycles_leak_nothing
 *
 * Precise points inside the library are reached through its internal API
 * in the child (loan without commit, a commit without the wake-up); points
 * inside the daemon through its test-only fault hook (daemon/faults.h,
 * SHMBUSD_FAULT). Children never assert: they report through pipes. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "atomics.h"
#include "bus.h"
#include "daemonutil.h"
#include "procutil.h"
#include "region.h"
#include "ring.h"
#include "testutil.h"

#define CT_PUBS 4        /* publisher numbers stamped into payloads: 0..3 */
#define CT_MSG 64        /* payload bytes */
#define CT_WAIT_MS 10000 /* how long anything may take before a test fails */

static struct du_daemon d;

static void setup(void) {
  du_start(&d);
}

static void teardown(void) {
  du_stop(&d);
}

TestSuite(crash, .init = setup, .fini = teardown, .timeout = 120);

static const struct shmbus_topic_opts ct_topic = {16, 256, 8, 8, false};

static uint64_t ct_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- checked readers (parent and children; they never assert) ---------- */

struct ct_reader {
  shmbus_sub *sub;
  bool reliable;
  uint64_t next[CT_PUBS]; /* next seq expected from each publisher number */
  bool seen[CT_PUBS];     /* a message of this publisher number came */
  uint64_t got;           /* messages read */
  uint64_t bad;           /* payloads that failed their checksum */
  uint64_t order;         /* reliable: a gap or repeat; lossy: a repeat or step back */
};

/* Reads one message and checks it. Returns 1, 0 when none came within
 * timeout_ms, or a negative code. */
static int ct_read_one(struct ct_reader *r, int timeout_ms) {
  unsigned char buf[256];
  uint32_t pub;
  uint64_t seq;
  int rv = shmbus_sub_recv(r->sub, buf, sizeof(buf), NULL, timeout_ms);

  if (rv == -ETIMEDOUT)
    return 0;
  if (rv < 0)
    return rv;
  r->got++;
  if (tu_check(buf, (size_t)rv, &pub, &seq) != 0 || pub >= CT_PUBS) {
    r->bad++;
    return 1;
  }
  /* The first message of a publisher sets where it starts (a subscriber
   * that joins late starts mid-stream); completeness from the join on is
   * what the accounting checks. */
  if (r->seen[pub] && (r->reliable ? seq != r->next[pub] : seq < r->next[pub]))
    r->order++;
  r->seen[pub] = true;
  r->next[pub] = seq + 1;
  return 1;
}

/* Parent: reads until publisher `pub`'s message `upto - 1` arrived; checks
 * every one. */
static void ct_read_upto(struct ct_reader *r, uint32_t pub, uint64_t upto) {
  while (r->next[pub] < upto) {
    int rv = ct_read_one(r, CT_WAIT_MS);
    cr_assert_eq(rv, 1, "publisher %u's message %lu never came: %s", pub,
                 (unsigned long)r->next[pub], rv < 0 ? shmbus_strerror(rv) : "timeout");
  }
  cr_assert_eq(r->bad, 0, "corrupted payloads");
  cr_assert_eq(r->order, 0, "messages out of order%s", r->reliable ? " or missing" : "");
}

/* The loss invariant, exactly: every seq from the subscriber's start to
 * the topic's head counted once, as received or as lost. */
static void ct_assert_accounting(const struct ct_reader *r, uint64_t head, uint64_t lost) {
  struct shmbus_sub_stats st;
  uint64_t joined = shmbus__load_relaxed(&r->sub->ring.rec->joined);

  shmbus_sub_stats(r->sub, &st);
  cr_assert_eq(shmbus__load_seq_cst(&r->sub->h.region.ring.hdr->head), head, "head");
  cr_assert_eq(st.received, r->got, "received %lu, read %lu", (unsigned long)st.received,
               (unsigned long)r->got);
  cr_assert_eq(st.received + st.lost, head - joined, "received %lu + lost %lu != head %lu - %lu",
               (unsigned long)st.received, (unsigned long)st.lost, (unsigned long)head,
               (unsigned long)joined);
  cr_assert_eq(st.lost, lost, "lost %lu, expected %lu", (unsigned long)st.lost,
               (unsigned long)lost);
}

static void ct_sub(shmbus_bus *bus, const char *topic, bool reliable, struct ct_reader *r) {
  struct shmbus_sub_opts so = {.reliable = reliable, .topic = ct_topic};
  int rv;

  memset(r, 0, sizeof(*r));
  r->reliable = reliable;
  rv = shmbus_sub_open(bus, topic, &so, &r->sub);
  cr_assert_eq(rv, 0, "sub_open %s: %s", topic, shmbus_strerror(rv));
}

static shmbus_pub *ct_pub(shmbus_bus *bus, const char *topic) {
  shmbus_pub *pub;
  int rv = shmbus_pub_open(bus, topic, &ct_topic, &pub);
  cr_assert_eq(rv, 0, "pub_open %s: %s", topic, shmbus_strerror(rv));
  return pub;
}

/* Publishes messages [from, to) of publisher number `pn`, waiting for room
 * behind reliable subscribers; `readers` (may be NULL) read along so that
 * parent-side reliable subscribers make room. */
static void ct_publish(shmbus_pub *pub, uint32_t pn, uint64_t from, uint64_t to,
                       struct ct_reader **readers, int nreaders) {
  unsigned char buf[CT_MSG];
  uint64_t i;
  int rv;
  int k;

  for (i = from; i < to; i++) {
    tu_fill(buf, CT_MSG, pn, i);
    while ((rv = shmbus_pub_publish(pub, buf, CT_MSG)) == SHMBUS_EFULL)
      cr_assert_eq(shmbus_pub_wait(pub, CT_WAIT_MS), 0, "the publisher never got room");
    cr_assert_eq(rv, 0, "publish: %s", shmbus_strerror(rv));
    for (k = 0; k < nreaders; k++)
      ct_read_upto(readers[k], pn, i + 1);
  }
}

/* The daemon's descriptors, counting du_status's connection (opened here
 * if it was not yet, so that it is counted in every sample). */
static int ct_daemon_fds(void) {
  struct pu_sample s;

  du_status(&d, NULL, NULL);
  cr_assert_eq(pu_sample(d.pid, &s), 0, "/proc of the daemon");
  return s.fds;
}

/* Waits (bounded) until the daemon holds `want` descriptors again. The
 * count of clients drops when the daemon notices a crash; the socket is
 * closed in libuv's close callback, an iteration of its loop later. */
static void ct_wait_fds(int want, const char *what) {
  uint64_t deadline = ct_now_ms() + CT_WAIT_MS;
  int n;

  while ((n = ct_daemon_fds()) != want) {
    cr_assert_lt(ct_now_ms(), deadline, "the daemon had %d descriptors, now %d: it kept %s", want,
                 n, what);
    sched_yield();
  }
}

/* ---- child processes ----------------------------------------------------- */

/* What a child tells the parent. */
struct ct_report {
  int32_t err;    /* 0, a shmbus code, or CT_E* below */
  uint32_t index; /* its ring record */
  int32_t rv;     /* a result the test asked for */
  uint32_t pad;
  uint64_t got, bad, order, received, lost;
};
#define CT_ETIMEOUT 1 /* a sleeper was never woken */

static void ct_send(int fd, const struct ct_report *rep) {
  if (write(fd, rep, sizeof(*rep)) != (ssize_t)sizeof(*rep))
    _exit(90);
}

static shmbus_bus *ct_child_bus(void) {
  struct shmbus_bus_opts o;
  shmbus_bus *bus;
  du_opts(&d, &o);
  if (shmbus_bus_open(&bus, &o) < 0)
    _exit(91);
  return bus;
}

/* A child runs fn(out, in, arg): it reports on `out` and reads the
 * parent's go-ahead bytes from `in`. */
/* Child: opens a bus and a subscriber on `topic` and reports its record
 * (or the error, and exits). */
static shmbus_sub *ct_child_sub(int out, const char *topic, bool reliable, shmbus_bus **bus) {
  struct shmbus_sub_opts so = {.reliable = reliable, .topic = ct_topic};
  struct ct_report rep = {0};
  shmbus_sub *sub = NULL;

  *bus = ct_child_bus();
  rep.err = shmbus_sub_open(*bus, topic, &so, &sub);
  if (rep.err == 0)
    rep.index = sub->h.index;
  ct_send(out, &rep);
  if (rep.err < 0)
    _exit(1);
  return sub;
}

typedef void (*ct_child_fn)(int out, int in, const void *arg);

struct ct_child {
  pid_t pid;
  int rfd;  /* reports from the child */
  int gofd; /* go-ahead bytes to the child */
};

static struct ct_child ct_fork(ct_child_fn fn, const void *arg) {
  struct ct_child c;
  int p[2];
  int g[2];

  cr_assert_eq(pipe(p), 0);
  cr_assert_eq(pipe(g), 0);
  c.pid = fork();
  cr_assert_geq(c.pid, 0);
  if (c.pid == 0) {
    close(p[0]);
    close(g[1]);
    fn(p[1], g[0], arg);
    _exit(0);
  }
  close(p[1]);
  close(g[0]);
  c.rfd = p[0];
  c.gofd = g[1];
  return c;
}

static void ct_close(struct ct_child *c) {
  close(c->rfd);
  close(c->gofd);
}

/* Child: waits for the parent's go-ahead. */
static void ct_wait_go(int in) {
  char b;
  if (read(in, &b, 1) != 1)
    _exit(92);
}

static void ct_expect_report(int fd, struct ct_report *rep, const char *who) {
  du_read(fd, rep, sizeof(*rep));
  cr_assert_eq(rep->err, 0, "%s: %s", who,
               rep->err == CT_ETIMEOUT ? "never woken" : shmbus_strerror(rep->err));
}

static void ct_kill(pid_t pid) {
  int st;
  kill(pid, SIGKILL);
  st = du_wait(pid);
  cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "child status %d", st);
}

/* A subscriber child: opens `topic`, reports its record, then receives
 * `want` messages and reports what it saw. With eventfd_only it sleeps on
 * nothing but its eventfd (arm, poll, read), so only a publisher or the
 * daemon writing that eventfd can wake it; otherwise it uses the blocking
 * receive, which also follows the daemon (reconnects after a restart). */
struct ct_sleeper {
  const char *topic;
  bool reliable;
  bool eventfd_only;
  uint64_t want;
};

static void ct_sleeper_main(int out, int in, const void *arg) {
  const struct ct_sleeper *a = arg;
  struct ct_report rep = {0};
  struct shmbus_sub_stats st;
  struct ct_reader r = {.reliable = a->reliable};
  shmbus_bus *bus;

  (void)in;
  r.sub = ct_child_sub(out, a->topic, a->reliable, &bus);
  while (r.got < a->want) {
    int rv;
    if (!a->eventfd_only) {
      rv = ct_read_one(&r, CT_WAIT_MS);
    } else if ((rv = ct_read_one(&r, 0)) == 0 && shmbus_sub_arm(r.sub) == 1) {
      struct pollfd pfd = {shmbus_sub_fd(r.sub), POLLIN, 0};
      uint64_t v;
      if (poll(&pfd, 1, CT_WAIT_MS) != 1) {
        rep.err = CT_ETIMEOUT;
        break;
      }
      (void)!read(pfd.fd, &v, sizeof(v));
      continue;
    } else if (rv == 0) {
      continue;
    }
    if (rv <= 0) {
      rep.err = rv < 0 ? rv : CT_ETIMEOUT;
      break;
    }
  }
  shmbus_sub_stats(r.sub, &st);
  rep.got = r.got;
  rep.bad = r.bad;
  rep.order = r.order;
  rep.received = st.received;
  rep.lost = st.lost;
  ct_send(out, &rep);
  shmbus_bus_close(bus);
}

/* Spawns a sleeper and waits until it subscribed; *index is its record. */
static struct ct_child ct_spawn_sleeper(const struct ct_sleeper *a, uint32_t *index) {
  struct ct_report rep;
  struct ct_child c = ct_fork(ct_sleeper_main, a);
  ct_expect_report(c.rfd, &rep, "subscriber child");
  if (index != NULL)
    *index = rep.index;
  return c;
}

/* Checks a sleeper's final report: `want` messages, all intact and in
 * order, `lost` lost, and a clean exit. */
static void ct_sleeper_done(struct ct_child *c, uint64_t want, uint64_t lost) {
  struct ct_report rep;
  ct_expect_report(c->rfd, &rep, "subscriber child");
  cr_assert_eq(rep.got, want, "the child got %lu of %lu", (unsigned long)rep.got,
               (unsigned long)want);
  cr_assert_eq(rep.bad, 0, "the child saw corrupted payloads");
  cr_assert_eq(rep.order, 0, "the child saw messages out of order or missing");
  cr_assert_eq(rep.received, want);
  cr_assert_eq(rep.lost, lost, "the child lost %lu, expected %lu", (unsigned long)rep.lost,
               (unsigned long)lost);
  cr_assert_eq(du_wait(c->pid), 0, "the subscriber child's exit");
  ct_close(c);
}

/* Whether process `pid` is blocked (state S in /proc/<pid>/stat). */
static bool ct_blocked(pid_t pid) {
  char path[64];
  char line[512];
  char *p;
  FILE *f;
  bool rv = false;

  snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
  if ((f = fopen(path, "r")) == NULL)
    return false;
  if (fgets(line, sizeof(line), f) != NULL && (p = strrchr(line, ')')) != NULL)
    rv = p[1] == ' ' && p[2] == 'S';
  fclose(f);
  return rv;
}

/* Waits until subscriber record `index` of `ring` is asleep: its sleeper
 * bit is set and its process `pid` blocks (an eventfd_only sleeper blocks
 * only in its poll). Bounded poll: nothing else tells us. */
static void ct_wait_asleep(const struct shmbus__ring *ring, uint32_t index, pid_t pid) {
  uint64_t deadline = ct_now_ms() + CT_WAIT_MS;

  /* Acquire: pairs with the sleeper's seq_cst fetch_or of its bit. */
  while (!((shmbus__load_acquire(&ring->sleepers[index / 64]) >> (index % 64)) & 1u) ||
         !ct_blocked(pid)) {
    cr_assert_lt(ct_now_ms(), deadline, "subscriber record %u never went to sleep", index);
    sched_yield();
  }
}

/* A publisher child: publishes `count` messages as publisher number `pn`,
 * then stops at `point`, reports, and waits to be killed (or kills
 * itself). */
enum ct_point {
  CT_IDLE,          /* after its last publish: before its next claim */
  CT_CLAIMING,      /* head taken, its seq not recorded (inside the claim) */
  CT_LOANED,        /* slot claimed and half written, not committed */
  CT_COMMIT_NOWAKE, /* last message committed, sleepers not woken (waits for a
                     * go-ahead before that last message) */
};

struct ct_publisher {
  const char *topic;
  uint32_t pn;
  uint64_t count;
  enum ct_point point;
  /* Before it reports, fork a child that inherits its connection to the
   * daemon and lives on until the parent writes its go-ahead pipe (or
   * closes it); the report's rv is that child's pid. */
  bool holder;
};

/* Child: forks a holder, which inherits every descriptor of the child
 * (its socket to the daemon among them) and lives on, touching nothing of
 * the bus, until the parent writes `in` or closes it; its pid goes in the
 * report's rv (an error in err). */
static void ct_fork_holder(int in, struct ct_report *rep) {
  pid_t h = fork();

  if (h == 0) {
    char b;
    (void)read(in, &b, 1);
    _exit(0);
  }
  if (h < 0)
    rep->err = -errno;
  rep->rv = (int32_t)h;
}

/* Parent: for a test whose participant dies while a holder keeps its
 * socket: skips it without pidfds (Linux before 5.3, or valgrind, which
 * does not know the call: the daemon cannot tell), and makes this process
 * the subreaper that waits for the holder once its parent is dead. A
 * skipped test does not run the suite's fini: the daemon is stopped
 * (and its directory removed) here first. */
static void ct_holder_prepare(void) {
#ifdef SYS_pidfd_open
  int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0u);
  if (pidfd < 0 && errno == ENOSYS) {
    du_stop(&d);
    cr_skip_test("pidfd_open is not available (Linux 5.3 or later)");
  }
  if (pidfd >= 0)
    close(pidfd);
#else
  du_stop(&d);
  cr_skip_test("this system's headers do not name pidfd_open");
#endif
  cr_assert_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0, "PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
}

static void ct_publisher_main(int out, int in, const void *arg) {
  const struct ct_publisher *a = arg;
  struct ct_report rep = {0};
  unsigned char buf[CT_MSG];
  shmbus_bus *bus = ct_child_bus();
  shmbus_pub *pub;
  void *slot;
  uint64_t i;

  if ((rep.err = shmbus_pub_open(bus, a->topic, &ct_topic, &pub)) < 0) {
    ct_send(out, &rep);
    _exit(1);
  }
  rep.index = pub->h.index;
  for (i = 0; i + (a->point == CT_COMMIT_NOWAKE) < a->count; i++) {
    tu_fill(buf, CT_MSG, a->pn, i);
    if ((rep.err = shmbus_pub_publish(pub, buf, CT_MSG)) < 0) {
      ct_send(out, &rep);
      _exit(1);
    }
  }
  switch (a->point) {
  case CT_IDLE:
    break;
  case CT_CLAIMING:
    /* What shmbus__ring_loan does up to its claim, stopped right after
     * the claim, before it records which seq it got. */
    shmbus__store_seq_cst(&pub->ring.rec->inflight, SHMBUS__INFLIGHT_CLAIMING);
    (void)shmbus__fetch_add_seq_cst(&pub->ring.ring->hdr->head, 1);
    break;
  case CT_LOANED:
    if ((rep.err = shmbus_pub_loan(pub, CT_MSG, &slot)) < 0)
      break;
    tu_fill(buf, CT_MSG, a->pn, i);
    memcpy(slot, buf, CT_MSG / 2);
    break;
  case CT_COMMIT_NOWAKE:
    /* The ring's publish commits and reports sleepers (1) but leaves
     * waking them to the caller, which dies first. */
    ct_send(out, &rep);
    ct_wait_go(in);
    tu_fill(buf, CT_MSG, a->pn, i);
    rep.rv = shmbus__ring_publish(&pub->ring, buf, CT_MSG, 0);
    ct_send(out, &rep);
    raise(SIGKILL);
    break;
  }
  if (a->holder && rep.err == 0)
    ct_fork_holder(in, &rep);
  ct_send(out, &rep);
  for (;;)
    pause(); /* until the parent kills it */
}

/* Runs a publisher child to its point and kills it there. */
static void ct_publisher_dies(const struct ct_publisher *a, struct ct_report *rep) {
  struct ct_child c = ct_fork(ct_publisher_main, a);
  ct_expect_report(c.rfd, rep, "publisher child");
  ct_kill(c.pid);
  ct_close(&c);
}

/* ---- publishers that die ------------------------------------------------- */

/* Survivors for a publisher row: a reliable and a lossy reader in the
 * parent and a reliable sleeper child that waits only on its eventfd.
 * The child publisher A (number 1) publishes 5 and dies at `point`; then
 * the parent's publisher B (number 2) publishes 5 more. */
static void ct_publisher_row(enum ct_point point, uint64_t holes) {
  const uint64_t n = 5;
  struct ct_sleeper sa = {"t/pub", true, true, 2 * n};
  struct ct_publisher pa = {"t/pub", 1, n, point};
  struct ct_reader rel;
  struct ct_reader lossy;
  struct ct_reader *readers[2] = {&rel, &lossy};
  struct ct_report rep;
  shmbus_bus *bus = du_bus(&d);
  shmbus_pub *b;
  struct ct_child sl;
  uint32_t sidx;
  int fds;

  ct_sub(bus, "t/pub", true, &rel);
  ct_sub(bus, "t/pub", false, &lossy);
  sl = ct_spawn_sleeper(&sa, &sidx);
  ct_wait_asleep(&rel.sub->h.region.ring, sidx, sl.pid);
  fds = ct_daemon_fds();
  ct_publisher_dies(&pa, &rep);
  du_wait_clients(&d, 2); /* the parent and the sleeper: the daemon noticed */
  ct_wait_fds(fds, "a descriptor of the dead publisher");
  ct_read_upto(&rel, 1, n);
  ct_read_upto(&lossy, 1, n);
  /* The survivors go on: another publisher, every message checked. */
  b = ct_pub(bus, "t/pub");
  ct_publish(b, 2, 0, n, readers, 2);
  ct_sleeper_done(&sl, 2 * n, holes);
  /* Nothing committed was lost; only the dead publisher's claim is. */
  ct_assert_accounting(&rel, 2 * n + holes, holes);
  ct_assert_accounting(&lossy, 2 * n + holes, holes);
  cr_assert_eq(ct_read_one(&rel, 0), 0, "nothing more");
  shmbus_bus_close(bus);
}

Test(crash, publisher_killed_before_claim) {
  ct_publisher_row(CT_IDLE, 0);
}

Test(crash, publisher_killed_inside_claim) {
  ct_publisher_row(CT_CLAIMING, 1);
}

Test(crash, publisher_killed_between_claim_and_commit) {
  ct_publisher_row(CT_LOANED, 1);
}

/* The publisher forks before it dies, holding a half-written claim: the
 * child of its fork inherits its socket to the daemon and lives on (as a
 * worker that never execs would), so the socket stays open after the
 * publisher's death. The daemon judges the publisher by its process (a
 * pidfd, docs/design.md "Liveness") and repairs its claim while the
 * socket lives: the survivors get past it, counted as one loss. The
 * socket's late end, when the holder exits, changes nothing. */
Test(crash, publisher_killed_while_a_child_holds_its_socket) {
  const uint64_t n = 5;
  struct ct_publisher pa = {"t/held", 1, n, CT_LOANED, true};
  struct ct_reader rel;
  struct ct_reader lossy;
  struct ct_reader *readers[2] = {&rel, &lossy};
  struct ct_report rep;
  shmbus_bus *bus;
  shmbus_pub *b;
  struct ct_child c;
  pid_t holder;
  int fds, st;

  ct_holder_prepare();
  bus = du_bus(&d);
  ct_sub(bus, "t/held", true, &rel);
  ct_sub(bus, "t/held", false, &lossy);
  fds = ct_daemon_fds();
  c = ct_fork(ct_publisher_main, &pa);
  ct_expect_report(c.rfd, &rep, "publisher child");
  holder = (pid_t)rep.rv;
  cr_assert_gt(holder, 0, "no holder");
  ct_kill(c.pid);
  /* The daemon noticed, though the socket lives in the holder. */
  du_wait_clients(&d, 1);
  ct_wait_fds(fds, "a descriptor of the dead publisher");
  cr_assert_eq(waitpid(holder, &st, WNOHANG), 0, "the holder still holds the socket");
  ct_read_upto(&rel, 1, n);
  ct_read_upto(&lossy, 1, n);
  b = ct_pub(bus, "t/held");
  ct_publish(b, 2, 0, n, readers, 2);
  ct_assert_accounting(&rel, 2 * n + 1, 1);
  ct_assert_accounting(&lossy, 2 * n + 1, 1);
  cr_assert_eq(waitpid(holder, &st, WNOHANG), 0, "the holder still holds the socket");
  /* The socket's late end. */
  cr_assert_eq(write(c.gofd, "x", 1), 1);
  st = du_wait(holder);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "holder status %d", st);
  ct_close(&c);
  du_wait_clients(&d, 1);
  ct_publish(b, 2, n, 2 * n, readers, 2);
  ct_assert_accounting(&rel, 3 * n + 1, 1);
  ct_assert_accounting(&lossy, 3 * n + 1, 1);
  cr_assert_eq(ct_read_one(&rel, 0), 0, "nothing more");
  shmbus_bus_close(bus);
}

/* The publisher commits while a subscriber sleeps and dies before waking
 * it: the daemon, repairing after the dead publisher, wakes the sleeper,
 * which gets the committed message. */
Test(crash, publisher_killed_after_commit_before_waking) {
  struct ct_sleeper sa = {"t/wake", true, true, 3};
  struct ct_publisher pa = {"t/wake", 1, 3, CT_COMMIT_NOWAKE};
  struct ct_reader lossy;
  struct ct_report rep;
  shmbus_bus *bus = du_bus(&d);
  struct ct_child sl;
  struct ct_child pc;
  uint32_t sidx;
  int st;

  ct_sub(bus, "t/wake", false, &lossy);
  sl = ct_spawn_sleeper(&sa, &sidx);
  /* Two messages wake it the normal way; then it sleeps again, and only
   * then is the third one committed. */
  pc = ct_fork(ct_publisher_main, &pa);
  ct_expect_report(pc.rfd, &rep, "publisher child");
  ct_wait_asleep(&lossy.sub->h.region.ring, sidx, sl.pid);
  du_write(pc.gofd, "g", 1);
  ct_expect_report(pc.rfd, &rep, "publisher child");
  cr_assert_eq(rep.rv, 1, "the commit saw the sleeper: %s", shmbus_strerror(rep.rv));
  st = du_wait(pc.pid);
  cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
  ct_close(&pc);
  /* Nobody but the daemon (repairing after the dead publisher) can wake
   * the sleeper now; it must get the third message. */
  ct_sleeper_done(&sl, 3, 0);
  ct_read_upto(&lossy, 1, 3);
  ct_assert_accounting(&lossy, 3, 0);
  shmbus_bus_close(bus);
}

/* ---- subscribers that die ------------------------------------------------ */

/* A subscriber child that opens, starts an in-place read of the first
 * message, reports it, and waits to be killed with the view open. */
struct ct_viewer {
  const char *topic;
  bool reliable;
  bool holder; /* as struct ct_publisher's */
};

static void ct_viewer_main(int out, int in, const void *arg) {
  const struct ct_viewer *a = arg;
  struct ct_report rep = {0};
  struct shmbus_view v;
  shmbus_bus *bus;
  shmbus_sub *sub = ct_child_sub(out, a->topic, a->reliable, &bus);
  uint64_t deadline = ct_now_ms() + CT_WAIT_MS;

  while ((rep.err = shmbus_sub_view(sub, &v)) == -EAGAIN && ct_now_ms() < deadline)
    sched_yield();
  rep.got = v.info.seq;
  if (a->holder && rep.err == 0)
    ct_fork_holder(in, &rep);
  ct_send(out, &rep); /* viewing message 0 */
  for (;;)
    pause();
}

/* With `holder`, the viewer forks before it reports (as
 * publisher_killed_while_a_child_holds_its_socket's publisher), so its
 * socket outlives it until the end of the row. */
static void ct_viewer_row(bool reliable, bool holder) {
  struct ct_viewer va = {"t/view", reliable, holder};
  struct ct_sleeper sa = {"t/view", true, true, 20};
  struct ct_reader rel;
  struct ct_reader lossy;
  struct ct_reader *readers[2] = {&rel, &lossy};
  struct ct_report rep;
  unsigned char buf[CT_MSG];
  shmbus_bus *bus = du_bus(&d);
  shmbus_pub *pub;
  uint64_t sent;
  struct ct_child vc;
  struct ct_child sl;
  pid_t hpid = 0;
  int fds, st;

  if (holder)
    ct_holder_prepare();
  ct_sub(bus, "t/view", true, &rel);
  ct_sub(bus, "t/view", false, &lossy);
  pub = ct_pub(bus, "t/view");
  fds = ct_daemon_fds();
  vc = ct_fork(ct_viewer_main, &va);
  ct_expect_report(vc.rfd, &rep, "viewer child");
  ct_publish(pub, 0, 0, 1, readers, 2);
  ct_expect_report(vc.rfd, &rep, "viewer child");
  cr_assert_eq(rep.got, 0, "the child views message 0");
  if (holder) {
    hpid = (pid_t)rep.rv;
    cr_assert_gt(hpid, 0, "no holder");
  }
  /* With the view open: a reliable viewer holds the publisher back once
   * the ring is full; a lossy one never does. */
  ct_publish(pub, 0, 1, 16, readers, 2);
  tu_fill(buf, CT_MSG, 0, 16);
  cr_assert_eq(shmbus_pub_publish(pub, buf, CT_MSG), reliable ? SHMBUS_EFULL : 0);
  sent = reliable ? 16 : 17;
  ct_kill(vc.pid);
  if (!holder)
    ct_close(&vc);
  /* The daemon noticed (with a holder: by the viewer's pidfd, its socket
   * still open). */
  du_wait_clients(&d, 1);
  ct_wait_fds(fds, "a descriptor of the dead subscriber");
  /* Evicted: the publisher has room again, the survivors get everything. */
  ct_publish(pub, 0, sent, 100, readers, 2);
  ct_assert_accounting(&rel, 100, 0);
  ct_assert_accounting(&lossy, 100, 0);
  if (holder) {
    cr_assert_eq(waitpid(hpid, &st, WNOHANG), 0, "the holder still holds the socket");
    /* The socket's late end. */
    cr_assert_eq(write(vc.gofd, "x", 1), 1);
    st = du_wait(hpid);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "holder status %d", st);
    ct_close(&vc);
    du_wait_clients(&d, 1);
  }
  /* The record is reused by a newcomer, who sleeps and is woken. */
  sl = ct_spawn_sleeper(&sa, NULL);
  ct_publish(pub, 0, 100, 120, readers, 2);
  ct_sleeper_done(&sl, 20, 0);
  shmbus_bus_close(bus);
}

Test(crash, reliable_subscriber_killed_holding_a_view) {
  ct_viewer_row(true, false);
}

Test(crash, lossy_subscriber_killed_holding_a_view) {
  ct_viewer_row(false, false);
}

/* A reliable subscriber holding a view dies while a child of its fork
 * holds its socket: the publisher it held back gets room once the daemon
 * judged it dead by its process. */
Test(crash, reliable_subscriber_killed_while_a_child_holds_its_socket) {
  ct_viewer_row(true, true);
}

/* A reliable subscriber killed while asleep on its eventfd: its sleeper
 * bit and its record must not hold anyone back. */
Test(crash, subscriber_killed_while_asleep) {
  struct ct_sleeper za = {"t/sleep", true, true, 1000000};
  struct ct_sleeper sa = {"t/sleep", true, true, 40};
  struct ct_reader rel;
  struct ct_reader *readers[1] = {&rel};
  shmbus_bus *bus = du_bus(&d);
  shmbus_pub *pub;
  struct ct_child c;
  uint32_t idx;
  int fds;

  ct_sub(bus, "t/sleep", true, &rel);
  pub = ct_pub(bus, "t/sleep");
  fds = ct_daemon_fds();
  c = ct_spawn_sleeper(&za, &idx);
  ct_wait_asleep(&rel.sub->h.region.ring, idx, c.pid);
  ct_kill(c.pid);
  ct_close(&c);
  /* The first publish takes the dead sleeper's bit and writes its eventfd
   * (if the daemon has not evicted it yet); three laps then need the
   * eviction. */
  ct_publish(pub, 0, 0, 48, readers, 1);
  du_wait_clients(&d, 1);
  ct_wait_fds(fds, "a descriptor of the dead subscriber");
  ct_assert_accounting(&rel, 48, 0);
  /* A new sleeper (likely on the same record) is woken as it should be. */
  c = ct_spawn_sleeper(&sa, &idx);
  ct_wait_asleep(&rel.sub->h.region.ring, idx, c.pid);
  ct_publish(pub, 0, 48, 88, readers, 1);
  ct_sleeper_done(&c, 40, 0);
  shmbus_bus_close(bus);
}

/* ---- the daemon dies ----------------------------------------------------- */

/* Waits until the bus is connected again (after a restart). */
static void ct_reconnect(shmbus_bus *bus) {
  uint64_t deadline = ct_now_ms() + CT_WAIT_MS;
  while (shmbus_bus_process(bus) != 0) {
    struct timespec ts = {0, 1000000};
    cr_assert_lt(ct_now_ms(), deadline, "the bus never reconnected");
    nanosleep(&ts, NULL); /* the bus backs off between attempts anyway */
  }
}

/* Restarts the daemon with fault point `fault` armed (NULL: none). */
static void ct_restart(const char *fault) {
  du_kill(&d);
  if (fault != NULL)
    setenv("SHMBUSD_FAULT", fault, 1);
  du_restart(&d);
  unsetenv("SHMBUSD_FAULT");
}

/* The daemon killed itself at its fault point: reap it. */
static void ct_daemon_died(void) {
  int st = du_wait(d.pid);
  cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "the daemon's status %d", st);
  d.pid = 0;
}

Test(crash, daemon_killed_while_idle) {
  struct ct_sleeper sa = {"t/idle", true, false, 300};
  struct ct_reader rel;
  struct ct_reader lossy;
  struct ct_reader late;
  struct ct_reader *readers[2] = {&rel, &lossy};
  shmbus_bus *bus = du_bus(&d);
  shmbus_pub *pub;
  struct ct_child sl;
  uint32_t topics;
  uint32_t topics2;

  ct_sub(bus, "t/idle", true, &rel);
  ct_sub(bus, "t/idle", false, &lossy);
  pub = ct_pub(bus, "t/idle");
  sl = ct_spawn_sleeper(&sa, NULL);
  du_status(&d, NULL, &topics);
  ct_publish(pub, 0, 0, 100, readers, 2);
  du_kill(&d);
  /* No daemon: the data path goes on (wake-ups and room included). */
  ct_publish(pub, 0, 100, 200, readers, 2);
  du_restart(&d);
  ct_reconnect(bus);
  ct_publish(pub, 0, 200, 300, readers, 2);
  ct_sleeper_done(&sl, 300, 0);
  ct_assert_accounting(&rel, 300, 0);
  ct_assert_accounting(&lossy, 300, 0);
  /* The new daemon knows the topic again, and a newcomer can join. */
  du_wait_clients(&d, 1);
  du_status(&d, NULL, &topics2);
  cr_assert_eq(topics2, topics, "topics before the crash %u, after it %u", topics, topics2);
  ct_sub(bus, "t/idle", false, &late);
  ct_publish(pub, 0, 300, 301, NULL, 0);
  ct_read_upto(&late, 0, 301);
  shmbus_bus_close(bus);
}

/* Survivors for the daemon's fault rows: an existing topic t/old with a
 * publisher in the parent and a reliable subscriber child that expects
 * `want` messages; the fault hits a later open. */
struct ct_daemon_row {
  shmbus_bus *bus;
  shmbus_pub *pub;
  struct ct_child sl;
  uint32_t topics;
};

static void ct_daemon_row_start(struct ct_daemon_row *r, const char *fault, uint64_t want) {
  struct ct_sleeper sa = {"t/old", true, false, want};
  ct_restart(fault);
  r->bus = du_bus(&d);
  r->pub = ct_pub(r->bus, "t/old");
  r->sl = ct_spawn_sleeper(&sa, NULL);
  ct_publish(r->pub, 0, 0, 20, NULL, 0);
  du_status(&d, NULL, &r->topics);
}

/* After the crash: the survivors' data path works without a daemon (10
 * messages: a reliable record the dead daemon attached for a client that
 * never got it would hold more back until a new daemon evicts it), the
 * daemon comes back, everyone reconnects. */
static void ct_daemon_row_recover(struct ct_daemon_row *r) {
  ct_daemon_died();
  ct_publish(r->pub, 0, 20, 30, NULL, 0);
  du_restart(&d);
  ct_reconnect(r->bus);
  ct_publish(r->pub, 0, 30, 60, NULL, 0);
}

/* Counts the publisher and the reliable subscriber records in use. */
static void ct_records(const struct shmbus__ring *ring, uint32_t *pubs, uint32_t *reliable) {
  uint32_t i;
  *pubs = 0;
  *reliable = 0;
  for (i = 0; i < ring->max_pubs; i++)
    *pubs += shmbus__load_acquire(&ring->pubs[i].state) == SHMBUS__PUB_ACTIVE;
  for (i = 0; i < ring->max_subs; i++)
    *reliable += shmbus__load_acquire(&ring->subs[i].state) == SHMBUS__SUB_RELIABLE;
}

/* Waits (bounded) until the ring shows exactly these records in use: the
 * daemon released what the dead held. */
static void ct_wait_records(const struct shmbus__ring *ring, uint32_t pubs, uint32_t reliable) {
  uint64_t deadline = ct_now_ms() + CT_WAIT_MS;
  uint32_t p;
  uint32_t r;

  for (;;) {
    ct_records(ring, &p, &r);
    if (p == pubs && r == reliable)
      return;
    cr_assert_lt(ct_now_ms(), deadline, "%u publisher and %u reliable records in use, not %u/%u", p,
                 r, pubs, reliable);
    sched_yield();
  }
}

Test(crash, daemon_killed_during_topic_creation) {
  struct ct_daemon_row r;
  struct ct_reader s;
  shmbus_pub *pub;
  uint32_t topics;
  int rv;

  /* The first creation is t/old's; the second dies half-way. */
  ct_daemon_row_start(&r, "open-after-create:2", 60);
  rv = shmbus_pub_open(r.bus, "t/new", &ct_topic, &pub);
  cr_assert_eq(rv, SHMBUS_EDISCONNECTED, "open while the daemon died: %s", shmbus_strerror(rv));
  ct_daemon_row_recover(&r);
  ct_sleeper_done(&r.sl, 60, 0);
  /* The half-created topic left nothing behind: it is created anew. */
  du_wait_clients(&d, 1);
  du_status(&d, NULL, &topics);
  cr_assert_eq(topics, r.topics, "topics before the crash %u, after it %u", r.topics, topics);
  pub = ct_pub(r.bus, "t/new");
  ct_sub(r.bus, "t/new", true, &s);
  ct_publish(pub, 1, 0, 50, (struct ct_reader *[]){&s}, 1);
  ct_assert_accounting(&s, 50, 0);
  shmbus_bus_close(r.bus);
}

/* A child that opens a reliable subscriber on t/old (the open the fault
 * hits), reports how it went, and waits to be killed. */
static void ct_opener_main(int out, int in, const void *arg) {
  struct shmbus_sub_opts so = {.reliable = true, .topic = ct_topic};
  struct ct_report rep = {0};
  shmbus_bus *bus = ct_child_bus();
  shmbus_sub *sub;

  (void)in;
  (void)arg;
  rep.rv = shmbus_sub_open(bus, "t/old", &so, &sub);
  ct_send(out, &rep);
  for (;;)
    pause();
}

/* The fault hits the third open on t/old (the parent's publisher, the
 * subscriber child, then a reliable subscriber in another child), while
 * the daemon hands that child the region's descriptors. */
static void ct_fd_passing_row(const char *fault) {
  struct ct_daemon_row r;
  struct ct_report rep;
  struct ct_child oc;
  const struct shmbus__ring *ring;

  ct_daemon_row_start(&r, fault, 80);
  ring = &r.pub->h.region.ring;
  oc = ct_fork(ct_opener_main, NULL);
  ct_expect_report(oc.rfd, &rep, "opener child");
  /* Before the reply the open fails; after it, the library waits for the
   * peer_join events that never come, and fails too. */
  cr_assert_eq(rep.rv, SHMBUS_EDISCONNECTED, "open while the daemon died: %s",
               shmbus_strerror(rep.rv));
  ct_kill(oc.pid);
  ct_close(&oc);
  /* The dead daemon attached a reliable record for the child, which
   * nobody will adopt. The new daemon evicts it once it sees the owner is
   * gone, so it does not hold the publisher back: the subscriber child
   * gets all 80 (20 of them after a lap around the 16 slots). */
  ct_daemon_row_recover(&r);
  ct_wait_records(ring, 1, 1);
  ct_publish(r.pub, 0, 60, 80, NULL, 0);
  ct_sleeper_done(&r.sl, 80, 0);
  ct_wait_records(ring, 1, 0);
  shmbus_bus_close(r.bus);
}

Test(crash, daemon_killed_before_passing_fds) {
  ct_fd_passing_row("open-before-reply:3");
}

Test(crash, daemon_killed_after_passing_fds) {
  ct_fd_passing_row("open-after-reply:3");
}

/* ---- 1,000 connect/open/crash cycles ------------------------------------- */

/* A client that connects, opens a publisher and a subscriber (lossy or
 * reliable; every other one holds a loaned slot) and is killed. */
static void ct_cycle_main(int out, int in, const void *arg) {
  unsigned i = *(const unsigned *)arg;
  struct shmbus_sub_opts so = {.reliable = i % 3 == 0, .topic = ct_topic};
  struct ct_report rep = {0};
  shmbus_bus *bus = ct_child_bus();
  shmbus_pub *pub;
  shmbus_sub *sub;
  void *slot;

  (void)in;
  if ((rep.err = shmbus_pub_open(bus, "t/cycle", &ct_topic, &pub)) == 0 &&
      (rep.err = shmbus_sub_open(bus, "t/cycle", &so, &sub)) == 0 && i % 2 == 0)
    rep.err = shmbus_pub_loan(pub, CT_MSG, &slot);
  ct_send(out, &rep);
  raise(SIGKILL);
}

static unsigned ct_cycles(void) {
  /* Under valgrind every client and the daemon run ~50x slower. */
  return getenv("SHMBUS_UNDER_VALGRIND") != NULL ? 100 : 1000;
}

/* Runs n cycles (cycle i is client i). */
static void ct_run_cycles(shmbus_bus *bus, unsigned from, unsigned n) {
  unsigned i;
  for (i = from; i < from + n; i++) {
    struct ct_report rep;
    struct ct_child c = ct_fork(ct_cycle_main, &i);
    /* Read the peer events the clients cause, or the daemon drops us. */
    (void)shmbus_bus_process(bus);
    du_read(c.rfd, &rep, sizeof(rep));
    cr_assert_eq(rep.err, 0, "cycle %u: %s", i, shmbus_strerror(rep.err));
    cr_assert(WIFSIGNALED(du_wait(c.pid)), "cycle %u", i);
    ct_close(&c);
  }
}

/* Private memory (RssAnon) growth allowed over the 1,000 measured cycles.
 * A leak of ~100 bytes per cycle (less than one client record) grows the
 * heap by ~100 KiB and fails; a 300-byte leak per connection, tried on
 * purpose, grew it by 312 KiB. Without a leak the growth measured 0 KiB:
 * the bound leaves room for allocator noise only. */
#define CT_MEM_BOUND_KB 96u

Test(crash, connect_crash_cycles_leak_nothing, .timeout = 300) {
  struct ct_reader lossy;
  struct ct_reader *readers[1] = {&lossy};
  struct pu_sample before;
  struct pu_sample after;
  shmbus_bus *bus = du_bus(&d);
  shmbus_pub *pub;
  unsigned n = ct_cycles();
  int fds;

  ct_sub(bus, "t/cycle", false, &lossy);
  pub = ct_pub(bus, "t/cycle");
  fds = ct_daemon_fds(); /* nobody crashed yet: nothing is being closed */
  /* Warm-up: the daemon's allocator and tables reach their steady size. */
  ct_run_cycles(bus, 0, 50);
  du_wait_clients(&d, 1);
  ct_wait_fds(fds, "descriptors of dead clients");
  cr_assert_eq(pu_sample(d.pid, &before), 0);
  ct_run_cycles(bus, 50, n);
  du_wait_clients(&d, 1);
  ct_wait_fds(fds, "descriptors of dead clients");
  cr_assert_eq(pu_sample(d.pid, &after), 0);
  cr_log_info("daemon after %u connect/crash cycles: fds %d -> %d, RssAnon %lu -> %lu kB, "
              "Private_Dirty %lu -> %lu kB",
              n, before.fds, after.fds, (unsigned long)before.rss_anon_kb,
              (unsigned long)after.rss_anon_kb, (unsigned long)before.private_dirty_kb,
              (unsigned long)after.private_dirty_kb);
  cr_assert_eq(after.fds, before.fds, "the daemon had %d descriptors, now %d", before.fds,
               after.fds);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  /* (Under ASan the daemon's freed memory sits in quarantine, so its size
   * says nothing; LeakSanitizer checks the daemon at exit instead.) */
  if (getenv("SHMBUS_UNDER_VALGRIND") == NULL)
    cr_assert_leq(after.rss_anon_kb, before.rss_anon_kb + CT_MEM_BOUND_KB,
                  "the daemon's private memory grew from %lu to %lu kB",
                  (unsigned long)before.rss_anon_kb, (unsigned long)after.rss_anon_kb);
#endif
  /* Every dead record was released; the survivors still work, and every
   * slot a dead client held counts as lost, exactly. */
  ct_wait_records(&lossy.sub->h.region.ring, 1, 0);
  ct_publish(pub, 0, 0, 100, readers, 1);
  ct_assert_accounting(&lossy, (50 + n + 1) / 2 + 100, (50 + n + 1) / 2);
  shmbus_bus_close(bus);
}

/* H2 (docs/security.md): the repair of a lap a dead publisher left while
 * claiming goes in steps of at most `budget` slots, each resumed where the
 * previous stopped, and still repairs every hole exactly as the one-shot
 * repair does. Live publishers' held seqs are read once, when the scan
 * begins (O(slots + pubs)); a seq one of them holds is left alone. */
Test(crash, repair_goes_in_steps_of_a_bounded_number_of_slots) {
  const uint32_t n = 1u << 12;
  const uint64_t budget = 100;
  struct shmbus__params p = {n, 64, 4, 1024};
  struct shmbus__ring_repair_job *job = malloc(sizeof(*job));
  struct shmbus__ring_pub dead, live;
  struct shmbus__region rg;
  uint64_t head, start, held;
  uint32_t steps = 0;
  void *payload;
  int rv;

  cr_assert_not_null(job);
  cr_assert_eq(shmbus__region_create(&rg, &p, "steps"), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &live, 1, 1), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &dead, 2, 1), 0);
  /* The dead one: CLAIMING, then claims of a whole lap, amid which the
   * live publisher holds one seq (a loan, not committed). */
  shmbus__store_seq_cst(&dead.rec->inflight, SHMBUS__INFLIGHT_CLAIMING);
  (void)shmbus__fetch_add_seq_cst(&rg.ring.hdr->head, (uint64_t)n / 2);
  cr_assert_eq(shmbus__ring_loan(&live, 1, &payload), 0);
  held = n / 2;
  (void)shmbus__fetch_add_seq_cst(&rg.ring.hdr->head, (uint64_t)n / 2);
  head = shmbus__load_seq_cst(&rg.ring.hdr->head);
  cr_assert_eq(head, (uint64_t)n + 1);
  start = head - n;
  cr_assert_eq(shmbus__ring_repair_begin(&rg.ring, job, &dead.index, 1), 0);
  while ((rv = shmbus__ring_repair_step(&rg.ring, job, budget)) == -EINPROGRESS) {
    steps++;
    cr_assert_eq(job->start, start);
    cr_assert_eq(job->end, head);
    cr_assert_eq(job->next, start + steps * budget, "step %u stopped at %llu", steps,
                 (unsigned long long)job->next);
  }
  cr_assert_eq(rv, 0, "%s", shmbus_strerror(rv));
  cr_assert_eq(steps, (n + budget - 1) / budget - 1, "%u steps", steps);
  for (uint64_t s = start; s < head; s++) {
    const struct shmbus__slot *slot =
        (const void *)(rg.ring.slots + (s & rg.ring.mask) * rg.ring.slot_stride);
    uint64_t w = shmbus__load_acquire(&slot->word);
    if (s == held)
      cr_assert_eq(w, SHMBUS__WORD(s, SHMBUS__SLOT_BUSY), "the live loan is left alone");
    else
      cr_assert_eq(w, SHMBUS__WORD(s, SHMBUS__SLOT_SKIPPED), "seq %llu: %llx",
                   (unsigned long long)s, (unsigned long long)w);
  }
  cr_assert_eq(job->repaired, (uint64_t)n - 1);
  cr_assert_eq(shmbus__load_acquire(&dead.rec->state), SHMBUS__PUB_FREE);
  cr_assert_geq(shmbus__ring_commit(&live, 1, 0), 0);
  free(job);
  shmbus__region_close(&rg);
}
