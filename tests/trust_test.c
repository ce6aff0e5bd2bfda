/* trust: the attacker's tests (issue 11). A system bus where uid 65534
 * (nobody) may subscribe to public/... (and $sys/stats) and publish to
 * public/big and public/pw, root may do everything; the attacker is a real
 * process of that other uid, the victims are root's real processes using
 * the public API, the daemon is the real shmbusd.
 *
 * What the attacker does is chosen so that it does not depend on the
 * layout of shared memory where it can avoid it: it takes every descriptor
 * the daemon ever sent it, maps each read-write where the kernel lets it
 * (directly, or reopened through /proc/self/fd), and overwrites every byte
 * it can write. Only the hostile publisher of the H2 test names layout
 * fields (data_hdr.head, pub_rec.inflight), which stay in the data file.
 *
 *  - scribbler_harms_no_other_uid (H1, M1, M2, M3): delivery, accounting,
 *    publishing, opening and record slots all survive a subscriber of
 *    another uid that scribbles everything it can map;
 *  - forged_sleeper_bits_cost_the_publisher_nothing (L1): counts the
 *    publisher's syscalls (strace -c) after the scribbler left every bit
 *    set;
 *  - dead_publisher_repair_does_not_freeze_the_daemon (H2): a publisher
 *    of another uid advances head a whole lap of a 1 GiB ring and dies in
 *    CLAIMING; the daemon keeps answering while it repairs, and root's
 *    subscriber goes on with later messages, the lap counted lost;
 *  - publisher_scribbling_a_data_file_harms_only_that_topic: a publisher
 *    of another uid scribbles a data file; root's subscribers there get
 *    messages or SHMBUS_ECORRUPT, a newcomer still opens the topic, the
 *    daemon survives, another topic is untouched;
 *  - forged_reliable_record_dies_with_its_forger (M3): records forged as
 *    reliable do not hold a publisher once the forger is gone.
 *
 * Every wait is on an event (pipe, child exit through a pidfd, reply) with
 * a bound; the bound only detects a hang, nothing asserts on time. The
 * suite's .fini kills every child and the daemon and removes the temporary
 * directory, also when a test fails.
 *
 * How each test fails on main before the `memory` and `policy` branches
 * is written above it. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "layout.h"
#include "platform/platform.h"
#include "rawclient.h"
#include "shmbus/shmbus.h"
#include "testutil.h"

/* ---- the bus, the children, and cleaning up after them ------------------ */

static const char tt_rules[] = "allow any ** uid:0\n"
                               "allow sub public/** uid:65534\n"
                               "allow sub $sys/stats uid:65534\n"
                               "allow pub public/big uid:65534\n"
                               "allow pub public/pw uid:65534\n";

#define TT_MAX_KIDS 16
#define TT_HANG_MS 90000 /* a child that has not exited by then is hung */

static struct dt_daemon tt_d;
static pid_t tt_kids[TT_MAX_KIDS];
static shmbus_bus *tt_buses[TT_MAX_KIDS]; /* the test process's own buses */

/* The suite's .fini: runs after every test, passed or failed (Criterion
 * skips it only when the test process itself crashes; then the daemon
 * dies with it, PR_SET_PDEATHSIG, and only the directory stays). */
static void tt_fini(void) {
  int i;

  for (i = 0; i < TT_MAX_KIDS; i++)
    if (tt_kids[i] > 0) {
      (void)kill(tt_kids[i], SIGKILL);
      (void)waitpid(tt_kids[i], NULL, 0);
      tt_kids[i] = 0;
    }
  if (tt_d.pid > 0) {
    (void)kill(tt_d.pid, SIGKILL);
    (void)waitpid(tt_d.pid, NULL, 0);
    tt_d.pid = 0;
  }
  /* After the daemon is gone, so that closing asks nobody and waits for
   * nothing. */
  for (i = 0; i < TT_MAX_KIDS; i++) {
    shmbus_bus_close(tt_buses[i]);
    tt_buses[i] = NULL;
  }
  if (tt_d.tmp[0] != '\0')
    dt_cleanup(&tt_d);
  tt_d.tmp[0] = '\0';
}

TestSuite(trust, .timeout = 300.0, .fini = tt_fini);

static void tt_start(void) {
  if (geteuid() != 0)
    cr_skip_test("needs root to run the attacker as another uid");
  dt_start_system(&tt_d, tt_rules, NULL);
}

/* Forks a child that dies with the test; returns 0 in the child. */
static pid_t tt_fork(void) {
  pid_t pid = fork();
  int i;

  DT_ASSERT(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    dt_in_child = true;
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    return 0;
  }
  for (i = 0; i < TT_MAX_KIDS && tt_kids[i] != 0; i++)
    ;
  DT_ASSERT(i < TT_MAX_KIDS, "too many children");
  tt_kids[i] = pid;
  return pid;
}

/* Waits at most `ms` for child `pid` (through a pidfd). Returns its wait
 * status, or -1 when it had not exited (it is killed then). */
static int tt_reap(pid_t pid, int ms) {
  int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
  int status = 0;
  bool hung = false;
  int i;

  if (pfd >= 0) {
    struct pollfd p = {pfd, POLLIN, 0};
    int rv;
    do
      rv = poll(&p, 1, ms * dt_scale());
    while (rv < 0 && errno == EINTR);
    close(pfd);
    if (rv == 0) {
      hung = true;
      (void)kill(pid, SIGKILL);
    }
  }
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  for (i = 0; i < TT_MAX_KIDS; i++)
    if (tt_kids[i] == pid)
      tt_kids[i] = 0;
  return hung ? -1 : status;
}

/* "exit 0", "exit 14", "killed by signal 11", "hung (killed)". */
static const char *tt_how(int status, char *buf, size_t cap) {
  if (status == -1)
    snprintf(buf, cap, "hung (killed after %d s)", TT_HANG_MS / 1000);
  else if (WIFEXITED(status))
    snprintf(buf, cap, "exit %d", WEXITSTATUS(status));
  else
    snprintf(buf, cap, "killed by signal %d", WTERMSIG(status));
  return buf;
}

static bool tt_ok(int status) {
  return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void tt_pipe(int p[2]) {
  DT_ASSERT(pipe2(p, O_CLOEXEC) == 0, "pipe2: %s", strerror(errno));
}

/* Reads one byte that child `kid` sends within `ms`. Returns it, or -1 on
 * timeout, EOF, or when the child exits without sending it. */
static int tt_get_from(int fd, pid_t kid, int ms) {
  struct pollfd p[2] = {{fd, POLLIN, 0}, {-1, POLLIN, 0}};
  unsigned char b;
  int rv;

  if (kid > 0)
    p[1].fd = (int)syscall(SYS_pidfd_open, kid, 0);
  do
    rv = poll(p, 2, ms * dt_scale());
  while (rv < 0 && errno == EINTR);
  if (p[1].fd >= 0)
    close(p[1].fd);
  if (rv < 1 || !(p[0].revents & POLLIN) || read(fd, &b, 1) != 1)
    return -1;
  return b;
}

static int tt_get(int fd, int ms) {
  return tt_get_from(fd, 0, ms);
}

static void tt_put(int fd, char b) {
  DT_ASSERT(write(fd, &b, 1) == 1, "write to a pipe: %s", strerror(errno));
}

static shmbus_bus *tt_bus(void) {
  struct shmbus_bus_opts o;
  shmbus_bus *bus = NULL;
  int rv;

  shmbus_bus_opts_init(&o);
  o.dir = tt_d.dir;
  o.autostart = 0;
  o.name = "trust_test";
  rv = shmbus_bus_open(&bus, &o);
  DT_ASSERT(rv == 0, "bus_open: %s", shmbus_strerror(rv));
  if (!dt_in_child) {
    int i;
    for (i = 0; i < TT_MAX_KIDS && tt_buses[i] != NULL; i++)
      ;
    DT_ASSERT(i < TT_MAX_KIDS, "too many buses");
    tt_buses[i] = bus;
  }
  return bus;
}

/* Closes a bus of tt_bus (in the test process: forgets it first). */
static void tt_bus_close(shmbus_bus *bus) {
  int i;
  for (i = 0; i < TT_MAX_KIDS; i++)
    if (tt_buses[i] == bus)
      tt_buses[i] = NULL;
  shmbus_bus_close(bus);
}

/* Message i of a victim publisher: self-checking, its length varies. */
static size_t tt_fill(unsigned char *buf, size_t cap, uint64_t i) {
  size_t len = TU_MIN_PAYLOAD + (size_t)(i % (cap - TU_MIN_PAYLOAD + 1));
  tu_fill(buf, len, 1, i);
  return len;
}

/* Publishes messages first..first+n-1, waiting (bounded) on SHMBUS_EFULL;
 * says 'h' on half_fd (if >= 0) halfway. Returns 0, or the error with the
 * message it failed at in *at. */
static int tt_publish_n(shmbus_pub *pub, uint64_t first, uint64_t n, int half_fd, uint64_t *at) {
  unsigned char buf[4096];
  size_t cap = shmbus_pub_max_size(pub) < sizeof(buf) ? shmbus_pub_max_size(pub) : sizeof(buf);
  uint64_t i;

  for (i = first; i < first + n; i++) {
    size_t len = tt_fill(buf, cap, i);
    int stuck = 0;
    int rv;
    while ((rv = shmbus_pub_publish(pub, buf, len)) == SHMBUS_EFULL) {
      /* Bounded: 15 waits of 2 s in a row with no room means "held
       * forever" (a deadline for a reliable subscriber that stopped
       * reading, or the daemon freeing a dead forger's records, comes
       * well before). */
      if ((rv = shmbus_pub_wait(pub, 2000 * dt_scale())) == -ETIMEDOUT && ++stuck == 15)
        break;
    }
    if (rv != 0) {
      *at = i;
      return rv;
    }
    if (half_fd >= 0 && i == first + n / 2)
      (void)!write(half_fd, "h", 1);
  }
  return 0;
}

/* ---- the attacker: everything it was given, mapped writable ------------- */

#define TT_LOOT_MAX 64

struct tt_loot {
  int fds[TT_LOOT_MAX];
  bool tried[TT_LOOT_MAX];
  int n;
  unsigned char *maps[TT_LOOT_MAX];
  size_t lens[TT_LOOT_MAX];
  int nmaps;
  uint64_t rng;
};

static void tt_take(struct tt_loot *l, struct shmbus__msg *m) {
  uint32_t i;

  for (i = 0; i < m->nfds; i++) {
    if (m->fds[i] < 0)
      continue;
    if (l->n < TT_LOOT_MAX)
      l->fds[l->n++] = m->fds[i];
    else
      close(m->fds[i]);
    m->fds[i] = -1;
  }
  m->nfds = 0;
}

/* Opens `topic` as `role` on the raw connection, keeping every descriptor
 * of every message that arrives meanwhile (replies and peer events). */
static void tt_open_collect(int sock, const char *topic, uint32_t role, struct tt_loot *l) {
  struct shmbus__msg m;
  struct shmbus__msg r;
  int efd;

  DT_ASSERT(shmbus__event_open(&efd) == 0, "eventfd");
  shmbus__msg_init(&m, SHMBUS__MSG_OPEN, dt_next_id++);
  snprintf(m.topic, sizeof(m.topic), "%s", topic);
  m.role = role;
  m.fds[0] = efd;
  m.nfds = 1;
  dt_send(sock, &m);
  if (l->n < TT_LOOT_MAX)
    l->fds[l->n++] = efd;
  for (;;) {
    int rv = dt_recv(sock, &r);
    DT_ASSERT(rv == 0, "recv: %s", shmbus_strerror(rv));
    tt_take(l, &r);
    if (r.id == m.id)
      break;
  }
  DT_ASSERT(r.type != SHMBUS__MSG_ERROR, "open %s as %u: %s (%s)", topic, role,
            shmbus_err_name(r.code), r.text);
}

/* Keeps whatever else the daemon sent (peer events and their fds). */
static void tt_drain(int sock, struct tt_loot *l) {
  struct shmbus__msg m;
  while (shmbus__proto_recv(sock, &m) == 0)
    tt_take(l, &m);
}

/* Maps every new descriptor read-write where the kernel allows it. A file
 * that refuses (EACCES/EPERM), also when reopened O_RDWR through
 * /proc/self/fd, is protected; eventfds and sockets cannot be mapped. */
static void tt_map_loot(struct tt_loot *l) {
  int i;

  for (i = 0; i < l->n; i++) {
    struct stat st;
    void *p;
    if (l->tried[i])
      continue;
    l->tried[i] = true;
    if (fstat(l->fds[i], &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
      continue;
    p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, l->fds[i], 0);
    if (p == MAP_FAILED && (errno == EACCES || errno == EPERM)) {
      char path[64];
      int rw;
      snprintf(path, sizeof(path), "/proc/self/fd/%d", l->fds[i]);
      rw = open(path, O_RDWR | O_CLOEXEC);
      if (rw >= 0) {
        p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
        close(rw);
      }
    }
    if (p == MAP_FAILED || l->nmaps == TT_LOOT_MAX)
      continue;
    l->maps[l->nmaps] = p;
    l->lens[l->nmaps++] = (size_t)st.st_size;
  }
}

static uint64_t tt_rand(struct tt_loot *l) {
  l->rng ^= l->rng << 13;
  l->rng ^= l->rng >> 7;
  l->rng ^= l->rng << 17;
  return l->rng;
}

enum { TT_ZEROS, TT_ONES, TT_RANDOM, TT_THREES, TT_PATTERNS };

/* Overwrites every writable byte: zeros, 0xff, random words, or every
 * 8-byte word = 3 (a cursor of 3 and, in every 4-byte word at an 8-byte
 * boundary, the value a reliable record's state has). */
static void tt_scribble(struct tt_loot *l, int pattern) {
  int k;

  for (k = 0; k < l->nmaps; k++) {
    uint64_t *w = (uint64_t *)(void *)l->maps[k];
    size_t n = l->lens[k] / 8;
    size_t i;
    switch (pattern) {
    case TT_ZEROS:
      memset(l->maps[k], 0, l->lens[k]);
      break;
    case TT_ONES:
      memset(l->maps[k], 0xff, l->lens[k]);
      break;
    case TT_RANDOM:
      for (i = 0; i < n; i++)
        w[i] = tt_rand(l);
      break;
    default:
      for (i = 0; i < n; i++)
        w[i] = 3;
      break;
    }
  }
}

struct tt_attack {
  const char *topics[4]; /* opened in this order */
  uint32_t role;         /* SHMBUS__ROLE_SUB or SHMBUS__ROLE_PUB */
  int mapped_fd;         /* gets the number of writable mappings (a byte) */
  int stop_fd;           /* readable: stop early; -1: never */
  unsigned rounds;       /* of zeros, 0xff, random in turn */
  int final;             /* the pattern it leaves behind */
};

/* In a forked child: becomes nobody, opens the topics, scribbles, exits
 * (which closes its connection: the daemon sees it leave). */
static __attribute__((noreturn)) void tt_attacker(const struct tt_attack *a) {
  struct tt_loot l;
  unsigned round;
  int sock;
  int i;

  memset(&l, 0, sizeof(l));
  l.rng = 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
  dt_become_nobody();
  sock = dt_client(&tt_d);
  for (i = 0; i < 4 && a->topics[i] != NULL; i++)
    tt_open_collect(sock, a->topics[i], a->role, &l);
  tt_map_loot(&l);
  tt_put(a->mapped_fd, (char)l.nmaps);
  for (round = 0; round < a->rounds; round++) {
    if (a->stop_fd >= 0) {
      struct pollfd p = {a->stop_fd, POLLIN, 0};
      if (poll(&p, 1, 0) == 1)
        break;
    }
    tt_drain(sock, &l);
    tt_map_loot(&l);
    tt_scribble(&l, (int)(round % 3));
  }
  tt_scribble(&l, a->final);
  _exit(0);
}

/* ---- root's victims, each a process using the public API ---------------- */

static const struct shmbus_topic_opts tt_x_opts = {64, 64, 8, 4, false};

/* A subscriber that expects messages 0..n-1 of tt_fill. Reliable: every
 * one, in order, intact. Lossy: increasing, intact, and received + lost
 * == n at the end. Exit codes say what broke. */
static int tt_victim_sub(const char *topic, bool reliable, uint64_t n, int ready_fd) {
  struct shmbus_sub_opts so;
  struct shmbus_sub_stats st;
  struct shmbus_msg_info info;
  unsigned char buf[4096];
  shmbus_bus *bus = tt_bus();
  shmbus_sub *sub;
  uint64_t expect = 0;
  uint64_t last = UINT64_MAX;
  int rv;

  memset(&so, 0, sizeof(so));
  so.reliable = reliable;
  so.topic = tt_x_opts;
  if ((rv = shmbus_sub_open(bus, topic, &so, &sub)) != 0) {
    fprintf(stderr, "victim sub: open: %s\n", shmbus_strerror(rv));
    return 20;
  }
  tt_put(ready_fd, 's');
  for (;;) {
    uint32_t pub;
    uint64_t seq;
    shmbus_sub_stats(sub, &st);
    if (st.received + st.lost >= n)
      break;
    /* Longer than the publisher may wait for room. */
    rv = shmbus_sub_recv(sub, buf, sizeof(buf), &info, 45000 * dt_scale());
    if (rv == -ETIMEDOUT) {
      fprintf(stderr, "victim sub (%s): no message for 45 s at received %llu lost %llu\n",
              reliable ? "reliable" : "lossy", (unsigned long long)st.received,
              (unsigned long long)st.lost);
      return 21;
    }
    if (rv < 0) {
      fprintf(stderr, "victim sub (%s): recv: %s\n", reliable ? "reliable" : "lossy",
              shmbus_strerror(rv));
      return 22;
    }
    if (tu_check(buf, (size_t)rv, &pub, &seq) != 0) {
      fprintf(stderr, "victim sub: a damaged message (len %d)\n", rv);
      return 23;
    }
    if (reliable ? seq != expect : (last != UINT64_MAX && seq <= last)) {
      fprintf(stderr, "victim sub (%s): message %llu after %llu\n", reliable ? "reliable" : "lossy",
              (unsigned long long)seq, (unsigned long long)(reliable ? expect : last));
      return 24;
    }
    last = seq;
    expect++;
  }
  shmbus_sub_stats(sub, &st);
  if (st.received + st.lost != n || (reliable && st.lost != 0) || last != n - 1) {
    fprintf(stderr, "victim sub (%s): received %llu + lost %llu != published %llu (last %llu)\n",
            reliable ? "reliable" : "lossy", (unsigned long long)st.received,
            (unsigned long long)st.lost, (unsigned long long)n, (unsigned long long)last);
    return 25;
  }
  tt_bus_close(bus);
  return 0;
}

/* A publisher of n messages once `go` comes; says 'h' on half_fd halfway. */
static int tt_victim_pub(const char *topic, uint32_t subs, uint64_t n, int ready_fd, int go_fd,
                         int half_fd) {
  shmbus_bus *bus = tt_bus();
  shmbus_pub *pub;
  uint64_t at = 0;
  int rv;

  if ((rv = shmbus_pub_open(bus, topic, &tt_x_opts, &pub)) != 0) {
    fprintf(stderr, "victim pub: open: %s\n", shmbus_strerror(rv));
    return 10;
  }
  if ((rv = shmbus_pub_wait_subs(pub, subs, 10000 * dt_scale())) < 0)
    return 11;
  tt_put(ready_fd, 'p');
  if (tt_get(go_fd, TT_HANG_MS) != 'g')
    return 12;
  if ((rv = tt_publish_n(pub, 0, n, half_fd, &at)) != 0) {
    fprintf(stderr, "victim pub: message %llu of %llu: %s\n", (unsigned long long)at,
            (unsigned long long)n, shmbus_strerror(rv));
    return rv == SHMBUS_EFULL || rv == -ETIMEDOUT ? 14 : 13;
  }
  tt_bus_close(bus);
  return 0;
}

/* ---- 1. the scribbler (H1, M1, M2, M3) ------------------------------------ */

/* On main this fails at the first DT_ASSERT after the children: "reliable
 * subscriber: exit 24" (it printed e.g. "message 9952 after 59": the
 * publisher overwrote what it had not read, its cursor and state being the
 * attacker's to write); publisher, lossy subscriber and attacker exit 0.
 * With that assertion disabled, the H1 checks fail next: opening public/x
 * or $sys/stats gives SHMBUS_EBADREGION (the control header is scribbled).
 * M3 (ENOSLOT from forged records) is shown alone by
 * forged_reliable_record_dies_with_its_forger. */
Test(trust, scribbler_harms_no_other_uid) {
  static const uint64_t n = 10000;
  char how[6][64];
  int ready[2];
  int go[2];
  int half[2];
  int mapped[2];
  pid_t rel;
  pid_t lossy;
  pid_t pub;
  pid_t att;
  int st_rel;
  int st_lossy;
  int st_pub;
  int st_att;
  int nmaps;
  shmbus_bus *keeper_bus;
  shmbus_sub *keeper;
  struct shmbus_sub_opts kso;
  int rv;

  tt_start();
  /* Root keeps the topic alive through the attack (a lossy subscriber
   * that never reads), so that what the attacker left is what a newcomer
   * finds. */
  keeper_bus = tt_bus();
  memset(&kso, 0, sizeof(kso));
  kso.topic = tt_x_opts;
  rv = shmbus_sub_open(keeper_bus, "public/x", &kso, &keeper);
  DT_ASSERT(rv == 0, "root's keeper of public/x: %s", shmbus_err_name(rv));
  tt_pipe(ready);
  tt_pipe(go);
  tt_pipe(half);
  tt_pipe(mapped);
  if ((rel = tt_fork()) == 0)
    _exit(tt_victim_sub("public/x", true, n, ready[1]));
  if ((lossy = tt_fork()) == 0)
    _exit(tt_victim_sub("public/x", false, n, ready[1]));
  DT_ASSERT(tt_get_from(ready[0], rel, TT_HANG_MS) == 's' &&
                tt_get_from(ready[0], lossy, TT_HANG_MS) == 's',
            "the victim subscribers did not open");
  if ((pub = tt_fork()) == 0)
    _exit(tt_victim_pub("public/x", 3, n, ready[1], go[0], half[1]));
  DT_ASSERT(tt_get_from(ready[0], pub, TT_HANG_MS) == 'p', "the victim publisher did not open");
  if ((att = tt_fork()) == 0) {
    struct tt_attack a = {{"public/x", "$sys/stats", NULL, NULL},
                          SHMBUS__ROLE_SUB,
                          mapped[1],
                          half[0],
                          20000,
                          TT_ONES};
    tt_attacker(&a);
  }
  nmaps = tt_get_from(mapped[0], att, TT_HANG_MS);
  DT_ASSERT(nmaps >= 0, "the attacker did not get its descriptors");
  cr_log_info("the attacker mapped %d descriptor(s) read-write", nmaps);
  tt_put(go[1], 'g');
  st_att = tt_reap(att, TT_HANG_MS);
  st_pub = tt_reap(pub, TT_HANG_MS);
  st_rel = tt_reap(rel, TT_HANG_MS);
  st_lossy = tt_reap(lossy, TT_HANG_MS);
  DT_ASSERT(tt_ok(st_att) && tt_ok(st_pub) && tt_ok(st_rel) && tt_ok(st_lossy),
            "attacker: %s; publisher: %s; reliable subscriber: %s; lossy subscriber: %s",
            tt_how(st_att, how[0], 64), tt_how(st_pub, how[1], 64), tt_how(st_rel, how[2], 64),
            tt_how(st_lossy, how[3], 64));

  /* H1: a new subscriber of root opens both topics, and public/x works. */
  {
    int sfd = dt_client(&tt_d);
    shmbus_bus *bus;
    shmbus_sub *s[8];
    shmbus_sub *sx;
    shmbus_sub *ss;
    shmbus_pub *p;
    unsigned char buf[64];
    unsigned char got[64];
    uint32_t pid;
    uint64_t seq;
    size_t len;
    int i;

    dt_wait_clients(sfd, 2); /* the victims and the attacker are gone, the keeper stays */
    bus = tt_bus();
    rv = shmbus_sub_open(bus, "public/x", NULL, &sx);
    DT_ASSERT(rv == 0, "H1: a new subscriber of public/x after the attack: %s",
              shmbus_err_name(rv));
    rv = shmbus_sub_open(bus, "$sys/stats", NULL, &ss);
    DT_ASSERT(rv == 0, "H1: a new subscriber of $sys/stats after the attack: %s",
              shmbus_err_name(rv));
    rv = shmbus_pub_open(bus, "public/x", NULL, &p);
    DT_ASSERT(rv == 0, "a new publisher of public/x after the attack: %s", shmbus_err_name(rv));
    len = tt_fill(buf, sizeof(buf), 7);
    rv = shmbus_pub_publish(p, buf, len);
    DT_ASSERT(rv == 0, "publish after the attack: %s", shmbus_err_name(rv));
    rv = shmbus_sub_recv(sx, got, sizeof(got), NULL, 10000 * dt_scale());
    DT_ASSERT(rv == (int)len && tu_check(got, len, &pid, &seq) == 0 && seq == 7,
              "the new subscriber got %s", rv < 0 ? shmbus_err_name(rv) : "a wrong message");
    shmbus_sub_close(sx);
    shmbus_sub_close(ss);
    shmbus_pub_close(p);
    /* M3: every subscriber record is root's to take again (the keeper
     * holds one). */
    for (i = 1; i < (int)tt_x_opts.max_subs; i++) {
      rv = shmbus_sub_open(bus, "public/x", NULL, &s[i]);
      DT_ASSERT(rv == 0, "M3: subscriber %d of %u after the attack: %s", i + 1, tt_x_opts.max_subs,
                shmbus_err_name(rv));
    }
    tt_bus_close(bus);
    tt_bus_close(keeper_bus);
    close(sfd);
  }
  dt_stop(&tt_d);
}

/* ---- 1b. the sleeper-bit flood (L1) --------------------------------------- */

/* The publisher of this test is the test binary again, run under strace:
 * a constructor takes over when TT_ROLE is set, before Criterion's main. */
static int tt_l1_publisher(void) {
  struct shmbus_bus_opts o;
  shmbus_bus *bus;
  shmbus_pub *pub;
  int ready_fd = atoi(getenv("TT_READY_FD"));
  int go_fd = atoi(getenv("TT_GO_FD"));
  uint64_t n = strtoull(getenv("TT_N"), NULL, 10);
  uint64_t at = 0;
  char b;
  int rv;

  shmbus_bus_opts_init(&o);
  o.dir = getenv("TT_DIR");
  o.autostart = 0;
  if (shmbus_bus_open(&bus, &o) != 0 || shmbus_pub_open(bus, "public/s", &tt_x_opts, &pub) != 0)
    return 10;
  if (write(ready_fd, "p", 1) != 1 || read(go_fd, &b, 1) != 1)
    return 12;
  if ((rv = tt_publish_n(pub, 0, n, -1, &at)) != 0) {
    fprintf(stderr, "L1 publisher: message %llu: %s\n", (unsigned long long)at,
            shmbus_strerror(rv));
    return 13;
  }
  tt_bus_close(bus);
  return 0;
}

__attribute__((constructor)) static void tt_role(void) {
  const char *role = getenv("TT_ROLE");
  if (role != NULL && strcmp(role, "l1pub") == 0)
    _exit(tt_l1_publisher());
}

/* The "calls" column of `syscall` in an `strace -c` table; 0 if absent. */
static unsigned long tt_strace_calls(const char *path, const char *syscall_name) {
  char line[512];
  unsigned long calls = 0;
  FILE *f = fopen(path, "r");

  DT_ASSERT(f != NULL, "strace wrote no summary to %s", path);
  while (fgets(line, sizeof(line), f) != NULL) {
    char name[64];
    char *tok[8];
    char *save = NULL;
    int k = 0;
    char *t;
    for (t = strtok_r(line, " \t\n", &save); t != NULL && k < 8; t = strtok_r(NULL, " \t\n", &save))
      tok[k++] = t;
    if (k < 5)
      continue;
    snprintf(name, sizeof(name), "%s", tok[k - 1]);
    if (strcmp(name, syscall_name) == 0)
      calls = strtoul(tok[3], NULL, 10);
  }
  fclose(f);
  return calls;
}

static bool tt_have(const char *prog) {
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
  return system(cmd) == 0;
}

/* On main: the publisher makes a recvmsg for every forged bit of a record
 * it does not know, on every publish (the bits are put back each time):
 * 35006 recvmsg for 5000 publishes (7 a publish); without the attack the
 * same run makes 7-9. */
Test(trust, forged_sleeper_bits_cost_the_publisher_nothing) {
  static const unsigned n = 5000;
  char exe[PATH_MAX];
  char out[256];
  char how[2][64];
  unsigned long recvmsgs;
  unsigned long writes;
  ssize_t el;
  int ready[2];
  int go[2];
  int mapped[2];
  pid_t pub;
  pid_t att;
  int st;
  int sfd;

  if (!tt_have("strace"))
    cr_skip_test("strace is not installed: nothing to count the publisher's syscalls with");
  if (getenv("SHMBUS_UNDER_VALGRIND") != NULL)
    cr_skip_test("strace cannot follow the publisher under valgrind");
  tt_start();
  el = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  DT_ASSERT(el > 0, "readlink /proc/self/exe");
  exe[el] = '\0';
  snprintf(out, sizeof(out), "%s/strace.out", tt_d.tmp);
  tt_pipe(ready);
  tt_pipe(go);
  tt_pipe(mapped);
  if ((pub = tt_fork()) == 0) {
    char v[32];
    /* Plain (inheritable) copies of the two pipe ends for the exec. */
    int r = dup(ready[1]);
    int g = dup(go[0]);
    snprintf(v, sizeof(v), "%d", r);
    setenv("TT_READY_FD", v, 1);
    snprintf(v, sizeof(v), "%d", g);
    setenv("TT_GO_FD", v, 1);
    snprintf(v, sizeof(v), "%u", n);
    setenv("TT_N", v, 1);
    setenv("TT_DIR", tt_d.dir, 1);
    setenv("TT_ROLE", "l1pub", 1);
    execlp("strace", "strace", "-f", "-c", "-o", out, "-e", "trace=recvmsg,write", exe,
           (char *)NULL);
    _exit(127);
  }
  DT_ASSERT(tt_get_from(ready[0], pub, TT_HANG_MS) == 'p', "the publisher did not open");
  if ((att = tt_fork()) == 0) {
    struct tt_attack a = {
        {"public/s", NULL, NULL, NULL}, SHMBUS__ROLE_SUB, mapped[1], -1, 300, TT_ONES};
    tt_attacker(&a);
  }
  DT_ASSERT(tt_get_from(mapped[0], att, TT_HANG_MS) >= 0,
            "the attacker did not get its descriptors");
  st = tt_reap(att, TT_HANG_MS);
  DT_ASSERT(tt_ok(st), "the attacker: %s", tt_how(st, how[0], 64));
  /* The daemon saw the attacker leave (and told the publisher). */
  sfd = dt_client(&tt_d);
  dt_wait_clients(sfd, 2);
  tt_put(go[1], 'g');
  st = tt_reap(pub, TT_HANG_MS);
  DT_ASSERT(tt_ok(st), "the publisher (under strace): %s", tt_how(st, how[1], 64));
  recvmsgs = tt_strace_calls(out, "recvmsg");
  writes = tt_strace_calls(out, "write");
  cr_log_info("L1: %u publishes after the attack: %lu recvmsg, %lu write", n, recvmsgs, writes);
  DT_ASSERT(recvmsgs <= 50 && writes <= 50,
            "L1: for %u publishes after the attacker left its bits set, the publisher made %lu "
            "recvmsg and %lu write calls (a publish costs no syscall while nobody sleeps)",
            n, recvmsgs, writes);
  close(sfd);
  dt_stop(&tt_d);
}

/* ---- 2. a hostile publisher of another uid (H2, the data file) ----------- */

/* A raw client's status round trip, bounded: true if answered in time. */
static bool tt_status_within(int fd, int ms) {
  struct shmbus__msg m;
  struct shmbus__msg r;
  uint64_t deadline;

  shmbus__msg_init(&m, SHMBUS__MSG_STATUS, dt_next_id++);
  dt_send(fd, &m);
  deadline = dt_now_ms() + (uint64_t)ms * (uint64_t)dt_scale();
  for (;;) {
    struct pollfd p = {fd, POLLIN, 0};
    int rv = shmbus__proto_recv(fd, &r);
    if (rv == 0) {
      shmbus__msg_close_fds(&r);
      if (r.id == m.id)
        return r.type == SHMBUS__MSG_STATUS_REPLY;
      continue;
    }
    if (rv != -EAGAIN || dt_now_ms() >= deadline)
      return false;
    (void)poll(&p, 1, (int)(deadline - dt_now_ms()));
  }
}

/* On main: the daemon's repair of the dead publisher walks the whole lap of
 * 16M slots (each against 1024 publisher records) in one loop turn; a new
 * client's hello went unanswered for 32.8 s on the 2-core test machine, so
 * the "did not welcome a new client within 5 s" assertion fails. Given
 * that much time, the rest passed: the daemon repaired, the subscriber
 * counted the lap lost and got every later message. */
Test(trust, dead_publisher_repair_does_not_freeze_the_daemon, .timeout = 400.0) {
  /* 2^24 slots of 64 bytes: a 1 GiB data file (and 1024 publisher
   * records, which a repair checks for each slot of the lap), under the
   * daemon's default region limit of 4 GiB. */
  static const struct shmbus_topic_opts big = {1u << 24, 32, 4, 1024, false};
  static const uint64_t k = 100;
  struct shmbus_sub_opts so;
  struct shmbus_sub_stats st;
  char how[64];
  shmbus_bus *bus;
  shmbus_sub *sub;
  shmbus_pub *pub;
  uint64_t deadline;
  uint64_t at = 0;
  uint64_t i;
  int mapped[2];
  pid_t att;
  int fd;
  int rv;

  tt_start();
  bus = tt_bus();
  memset(&so, 0, sizeof(so));
  so.topic = big;
  rv = shmbus_sub_open(bus, "public/big", &so, &sub);
  DT_ASSERT(rv == 0, "root's subscriber of a 1 GiB topic: %s (%s)", shmbus_strerror(rv),
            shmbus_bus_last_error(bus));
  tt_pipe(mapped);
  if ((att = tt_fork()) == 0) {
    struct dt_rec rec;
    struct stat fst;
    struct shmbus__data_hdr *h;
    struct shmbus__pub_rec *pr;
    unsigned char *data;
    int sock;
    dt_become_nobody();
    sock = dt_client(&tt_d);
    DT_ASSERT(dt_open(sock, "public/big", SHMBUS__ROLE_PUB, NULL, &rec) == 0, "attacker open");
    DT_ASSERT(fstat(rec.data_fd, &fst) == 0, "fstat");
    data = mmap(NULL, (size_t)fst.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, rec.data_fd, 0);
    DT_ASSERT(data != MAP_FAILED, "a publisher maps its data file read-write: %s", strerror(errno));
    h = (struct shmbus__data_hdr *)(void *)data;
    pr = (struct shmbus__pub_rec *)(void *)(data + h->pubs_offset) + rec.index;
    /* Die between "claiming" and knowing the seq, a whole lap ahead.
     * Release: the daemon's acquire load of inflight in its repair sees
     * it; seq_cst on head as a real claim (ring.c). */
    shmbus__store_release(&pr->inflight, SHMBUS__INFLIGHT_CLAIMING);
    (void)shmbus__fetch_add_seq_cst(&h->head, rec.params.slot_count);
    tt_put(mapped[1], 'm');
    _exit(0);
  }
  DT_ASSERT(tt_get_from(mapped[0], att, TT_HANG_MS) == 'm',
            "the attacker did not get its data file");
  rv = tt_reap(att, TT_HANG_MS);
  DT_ASSERT(tt_ok(rv), "the attacker: %s", tt_how(rv, how, sizeof(how)));

  /* While the daemon repairs, another client is served. */
  fd = dt_connect(&tt_d);
  {
    struct shmbus__msg m;
    struct shmbus__msg r;
    uint64_t t0 = dt_now_ms();
    uint64_t until = dt_now_ms() + 5000u * (uint64_t)dt_scale();
    shmbus__msg_init(&m, SHMBUS__MSG_HELLO, dt_next_id++);
    strcpy(m.name, "bystander");
    dt_send(fd, &m);
    for (;;) {
      struct pollfd p = {fd, POLLIN, 0};
      rv = shmbus__proto_recv(fd, &r);
      if (rv != -EAGAIN || dt_now_ms() >= until)
        break;
      (void)poll(&p, 1, (int)(until - dt_now_ms()));
    }
    cr_log_info("H2: welcome after %llu ms", (unsigned long long)(dt_now_ms() - t0));
    DT_ASSERT(rv == 0 && r.type == SHMBUS__MSG_WELCOME,
              "H2: the daemon did not welcome a new client within 5 s while it repaired");
  }
  for (i = 0; i < 3; i++) {
    uint64_t t0 = dt_now_ms();
    bool ok = tt_status_within(fd, 5000);
    cr_log_info("H2: status %llu answered after %llu ms", (unsigned long long)i,
                (unsigned long long)(dt_now_ms() - t0));
    DT_ASSERT(ok,
              "H2: status request %llu of a bystander got no answer within 5 s while the daemon "
              "repaired",
              (unsigned long long)i + 1);
  }

  /* Root's subscriber goes on with what is published afterwards. */
  rv = shmbus_pub_open(bus, "public/big", NULL, &pub);
  DT_ASSERT(rv == 0, "root's publisher after the attack: %s", shmbus_strerror(rv));
  rv = tt_publish_n(pub, 0, k, -1, &at);
  DT_ASSERT(rv == 0, "root's publish %llu: %s", (unsigned long long)at, shmbus_strerror(rv));
  /* The subscriber reaches them once the seqs of the lap are repaired
   * (skipped): bounded by the whole repair, however it is spread. */
  deadline = dt_now_ms() + 240000u * (uint64_t)dt_scale();
  for (i = 0; i < k; i++) {
    unsigned char buf[64];
    uint32_t pid;
    uint64_t seq;
    while ((rv = shmbus_sub_recv(sub, buf, sizeof(buf), NULL, 5000)) == -ETIMEDOUT &&
           dt_now_ms() < deadline)
      ;
    DT_ASSERT(rv >= 0, "root's subscriber, message %llu of %llu after the attack: %s",
              (unsigned long long)i, (unsigned long long)k, shmbus_strerror(rv));
    DT_ASSERT(tu_check(buf, (size_t)rv, &pid, &seq) == 0 && seq == i,
              "root's subscriber: message %llu is not intact or out of order",
              (unsigned long long)i);
  }
  shmbus_sub_stats(sub, &st);
  DT_ASSERT(st.received == k && st.received + st.lost == (uint64_t)big.slots + k,
            "root's subscriber: received %llu + lost %llu, published %llu since it joined",
            (unsigned long long)st.received, (unsigned long long)st.lost,
            (unsigned long long)big.slots + k);
  DT_ASSERT(tt_status_within(fd, 5000), "the daemon answers after the repair");
  close(fd);
  tt_bus_close(bus);
  dt_stop(&tt_d);
}

/* A root process with a lossy and a reliable subscriber of public/pw,
 * reading until `stop`: every receive returns a message, nothing yet, or
 * SHMBUS_ECORRUPT. Sends its counts (3 x uint64) on out_fd. */
static int tt_pw_reader(int ready_fd, int stop_fd, int out_fd) {
  struct shmbus_sub_opts so;
  shmbus_bus *bus = tt_bus();
  shmbus_sub *s[2];
  uint64_t counts[3] = {0, 0, 0}; /* messages, ECORRUPT, other outcomes seen */
  unsigned char buf[4096];
  bool stop = false;
  int i;
  int rv;

  memset(&so, 0, sizeof(so));
  so.topic = tt_x_opts;
  for (i = 0; i < 2; i++) {
    so.reliable = i == 1;
    if ((rv = shmbus_sub_open(bus, "public/pw", &so, &s[i])) != 0)
      return 30;
  }
  tt_put(ready_fd, 'r');
  while (!stop) {
    struct pollfd p = {stop_fd, POLLIN, 0};
    stop = poll(&p, 1, 0) == 1; /* one more round after the stop */
    for (i = 0; i < 2; i++) {
      /* A short bounded sleep too, so the sleep path meets the forgery. */
      rv = (counts[0] & 1) ? shmbus_sub_try_recv(s[i], buf, sizeof(buf), NULL)
                           : shmbus_sub_recv(s[i], buf, sizeof(buf), NULL, 1);
      if (rv >= 0)
        counts[0]++;
      else if (rv == SHMBUS_ECORRUPT)
        counts[1]++;
      else if (rv != -EAGAIN && rv != -ETIMEDOUT && rv != SHMBUS_EOVERRUN) {
        fprintf(stderr, "pw reader: %s\n", shmbus_strerror(rv));
        return 31;
      }
    }
  }
  (void)!write(out_fd, counts, sizeof(counts));
  tt_bus_close(bus);
  return 0;
}

/* On main: the reader and the daemon survive (messages and ECORRUPT only),
 * but a new subscriber of the scribbled topic gets SHMBUS_EBADREGION: the
 * library re-reads identity from the data file the attacker wrote. */
Test(trust, publisher_scribbling_a_data_file_harms_only_that_topic) {
  static const uint64_t m = 200;
  uint64_t counts[3] = {0, 0, 0};
  char how[2][64];
  shmbus_bus *bus;
  shmbus_pub *pw;
  shmbus_pub *op;
  shmbus_sub *os;
  uint64_t at = 0;
  uint64_t i;
  int ready[2];
  int stop[2];
  int out[2];
  int mapped[2];
  pid_t reader;
  pid_t att;
  int st_att;
  int st_reader;
  int rv;

  tt_start();
  bus = tt_bus();
  DT_ASSERT(shmbus_pub_open(bus, "public/pw", &tt_x_opts, &pw) == 0, "root's publisher");
  DT_ASSERT(shmbus_pub_open(bus, "public/other", &tt_x_opts, &op) == 0, "other publisher");
  {
    struct shmbus_sub_opts so;
    memset(&so, 0, sizeof(so));
    so.reliable = true;
    DT_ASSERT(shmbus_sub_open(bus, "public/other", &so, &os) == 0, "other subscriber");
  }
  tt_pipe(ready);
  tt_pipe(stop);
  tt_pipe(out);
  tt_pipe(mapped);
  if ((reader = tt_fork()) == 0)
    _exit(tt_pw_reader(ready[1], stop[0], out[1]));
  DT_ASSERT(tt_get_from(ready[0], reader, TT_HANG_MS) == 'r', "the reader did not open");
  rv = tt_publish_n(pw, 0, 20, -1, &at);
  DT_ASSERT(rv == 0, "root's publish before the attack: %s", shmbus_strerror(rv));
  if ((att = tt_fork()) == 0) {
    struct tt_attack a = {
        {"public/pw", NULL, NULL, NULL}, SHMBUS__ROLE_PUB, mapped[1], -1, 2000, TT_RANDOM};
    tt_attacker(&a);
  }
  DT_ASSERT(tt_get_from(mapped[0], att, TT_HANG_MS) >= 1, "the attacker publisher mapped nothing");
  st_att = tt_reap(att, TT_HANG_MS);
  /* The attacker left: its connection closed, the daemon cleans up after
   * it on the scribbled topic. Then the reader stops. */
  {
    int sfd = dt_client(&tt_d);
    DT_ASSERT(tt_status_within(sfd, 5000), "the daemon answers after the attacker left");
    close(sfd);
  }
  tt_put(stop[1], 's');
  st_reader = tt_reap(reader, TT_HANG_MS);
  DT_ASSERT(tt_ok(st_att) && tt_ok(st_reader), "attacker: %s; root's reader of public/pw: %s",
            tt_how(st_att, how[0], 64), tt_how(st_reader, how[1], 64));
  DT_ASSERT(read(out[0], counts, sizeof(counts)) == (ssize_t)sizeof(counts), "reader counts");
  cr_log_info("public/pw reader: %llu messages, %llu SHMBUS_ECORRUPT",
              (unsigned long long)counts[0], (unsigned long long)counts[1]);

  /* A newcomer of root still opens the scribbled topic: its identity and
   * parameters come from the daemon, not from the attacker's bytes; what
   * it reads there is a message, nothing, or SHMBUS_ECORRUPT. */
  {
    unsigned char buf[4096];
    shmbus_sub *late;
    rv = shmbus_sub_open(bus, "public/pw", NULL, &late);
    DT_ASSERT(rv == 0, "a new subscriber of the scribbled public/pw: %s", shmbus_err_name(rv));
    for (i = 0; i < 2 * tt_x_opts.slots; i++) {
      rv = shmbus_sub_try_recv(late, buf, sizeof(buf), NULL);
      DT_ASSERT(rv >= 0 || rv == -EAGAIN || rv == SHMBUS_ECORRUPT || rv == SHMBUS_EOVERRUN,
                "the new subscriber of public/pw: %s", shmbus_err_name(rv));
    }
    shmbus_sub_close(late);
  }

  /* Another topic: untouched, every message intact and in order. */
  for (i = 0; i < m; i++) {
    unsigned char buf[64];
    uint32_t pid;
    uint64_t seq;
    rv = tt_publish_n(op, i, 1, -1, &at);
    DT_ASSERT(rv == 0, "public/other: publish %llu: %s", (unsigned long long)at,
              shmbus_strerror(rv));
    rv = shmbus_sub_recv(os, buf, sizeof(buf), NULL, 10000 * dt_scale());
    DT_ASSERT(rv >= 0 && tu_check(buf, (size_t)rv, &pid, &seq) == 0 && seq == i,
              "public/other: message %llu: %s", (unsigned long long)i,
              rv < 0 ? shmbus_strerror(rv) : "not intact or out of order");
  }
  tt_bus_close(bus);
  dt_stop(&tt_d);
}

/* ---- 3. a forged reliable record outlives the forger (M3) ----------------- */

/* On main: "M3: root's publisher held after 11 of 80 messages: timed out"
 * (15 bounded waits of 2 s for room): records the attacker forged as
 * reliable with cursor 3 outlive it, the daemon never frees them. */
Test(trust, forged_reliable_record_dies_with_its_forger) {
  static const struct shmbus_topic_opts r8 = {8, 64, 8, 4, false};
  char how[64];
  shmbus_bus *bus;
  shmbus_pub *pub;
  uint64_t at = 0;
  int mapped[2];
  pid_t att;
  int sfd;
  int rv;

  tt_start();
  bus = tt_bus();
  DT_ASSERT(shmbus_pub_open(bus, "public/r", &r8, &pub) == 0, "root's publisher");
  tt_pipe(mapped);
  if ((att = tt_fork()) == 0) {
    struct tt_attack a = {
        {"public/r", NULL, NULL, NULL}, SHMBUS__ROLE_SUB, mapped[1], -1, 0, TT_THREES};
    tt_attacker(&a);
  }
  DT_ASSERT(tt_get_from(mapped[0], att, TT_HANG_MS) >= 0,
            "the attacker did not get its descriptors");
  rv = tt_reap(att, TT_HANG_MS);
  DT_ASSERT(tt_ok(rv), "the attacker: %s", tt_how(rv, how, sizeof(how)));
  sfd = dt_client(&tt_d);
  dt_wait_clients(sfd, 2); /* the daemon saw the forger leave */
  rv = tt_publish_n(pub, 0, 10u * r8.slots, -1, &at);
  DT_ASSERT(rv == 0, "M3: root's publisher held after %llu of %u messages: %s",
            (unsigned long long)at, 10u * r8.slots, shmbus_strerror(rv));
  close(sfd);
  tt_bus_close(bus);
  dt_stop(&tt_d);
}
