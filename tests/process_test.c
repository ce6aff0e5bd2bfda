/* Process tests: publishers and subscribers in real processes (fork), one
 * region shared through inherited fds, as the daemon will share it through
 * SCM_RIGHTS. Subscriber processes map the data file from a read-only fd
 * (shmbus__region_subscriber_fds), publisher processes from the creator's
 * read-write one.
 *
 * Children report through pipes and exit with a status the parent checks
 * (0, or one of the PT_E* codes below after printing why on stderr); they
 * leave with _exit, never through Criterion. No test sleeps to order
 * processes: they wait on pipes, on waitpid, or spin on shared memory.
 * Every child dies with the test's process (PR_SET_PDEATHSIG) and carries
 * an alarm as a last-resort watchdog, so a failing test never leaves
 * spinning processes behind.
 *
 * Every payload is self-checking (tu_fill/tu_check) and every subscriber
 * checks, after each read, that each seq since it joined counted once, as
 * received or as lost. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define PT_SAN_SCALE 3
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define PT_SAN_SCALE 3
#endif
#endif
#ifndef PT_SAN_SCALE
#define PT_SAN_SCALE 1
#endif

#define PT_TIMEOUT 60.0
#define PT_CHILD_WATCHDOG 300 /* seconds: SIGALRM for a child stuck anyway */
#define PT_MAX_PUBS 4
#define PT_MAX_CAP 256u
#define PT_PUB_ID(i) (2000u + (uint32_t)(i))

/* Child exit statuses. */
enum {
  PT_EFAIL = 10,     /* a check failed (details on stderr) */
  PT_EORPHAN = 11,   /* the parent was gone before the child started */
  PT_EUNREACHED = 12 /* the child survived something that should have killed it */
};

/* Fewer messages under sanitizers and valgrind (scripts/test.sh sets
 * SHMBUS_UNDER_VALGRIND). */
static uint64_t pt_count(uint64_t n) {
  uint64_t scale = getenv("SHMBUS_UNDER_VALGRIND") != NULL ? 50 : PT_SAN_SCALE;
  return n / scale;
}

/* ---- processes and pipes ------------------------------------------------ */

static void pt_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void pt_die(const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "[child %d] ", (int)getpid());
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  _exit(PT_EFAIL);
}

#define PT_REQUIRE(cond, ...)                                                                      \
  do {                                                                                             \
    if (!(cond))                                                                                   \
      pt_die(__VA_ARGS__);                                                                         \
  } while (0)

typedef int (*pt_child_fn)(void *arg);

/* Forks a child that runs fn(arg) and exits with its result. */
static pid_t pt_spawn(pt_child_fn fn, void *arg) {
  pid_t parent = getpid();
  pid_t pid;

  fflush(NULL);
  pid = fork();
  if (pid == 0) {
    /* Never a Criterion call in here: the child shares the test's
     * connection to the runner (with --full-stats even a passing
     * assertion is sent, and garbles it). */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
      _exit(PT_EORPHAN);
    alarm(PT_CHILD_WATCHDOG);
    _exit(fn(arg));
  }
  cr_assert_neq(pid, -1, "fork: %s", strerror(errno));
  return pid;
}

static const char *pt_status_str(int st) {
  static char buf[64];
  if (WIFEXITED(st))
    snprintf(buf, sizeof(buf), "exited with %d", WEXITSTATUS(st));
  else if (WIFSIGNALED(st))
    snprintf(buf, sizeof(buf), "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
  else
    snprintf(buf, sizeof(buf), "status %#x", st);
  return buf;
}

static int pt_wait(pid_t pid) {
  int st;
  pid_t r;
  do
    r = waitpid(pid, &st, 0);
  while (r < 0 && errno == EINTR);
  cr_assert_eq(r, pid, "waitpid: %s", strerror(errno));
  return st;
}

static void pt_expect_exit0(pid_t pid, const char *who) {
  int st = pt_wait(pid);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s %s", who, pt_status_str(st));
}

static void pt_expect_signal(pid_t pid, int sig, const char *who) {
  int st = pt_wait(pid);
  cr_assert(WIFSIGNALED(st) && WTERMSIG(st) == sig, "%s should die by signal %d but %s", who, sig,
            pt_status_str(st));
}

/* Fails the test if `pid` has already exited (for the parent's spin loops;
 * like every check in a loop here, it asserts only on failure, because
 * ctest runs Criterion with --full-stats, which reports every assertion). */
static void pt_check_alive(pid_t pid, const char *who) {
  int st;
  pid_t r = waitpid(pid, &st, WNOHANG);
  if (r != 0)
    cr_assert_fail("%s is gone: %s", who, r == pid ? pt_status_str(st) : strerror(errno));
}

static void pt_pipe(int fds[2]) {
  cr_assert_eq(pipe2(fds, O_CLOEXEC), 0, "pipe2: %s", strerror(errno));
}

static int pt_write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n > 0) {
    ssize_t k = write(fd, c, n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return -1;
    c += k;
    n -= (size_t)k;
  }
  return 0;
}

/* Reads exactly n bytes; -1 on EOF (every writer gone) or error. */
static int pt_read_all(int fd, void *p, size_t n) {
  char *c = p;
  while (n > 0) {
    ssize_t k = read(fd, c, n);
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return -1;
    c += k;
    n -= (size_t)k;
  }
  return 0;
}

/* Non-blocking: true once a byte has arrived on fd (which must be
 * O_NONBLOCK); *seen latches it. */
static bool pt_poll_byte(int fd, bool *seen) {
  char c;
  if (!*seen && read(fd, &c, 1) == 1)
    *seen = true;
  return *seen;
}

static void pt_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  cr_assert(fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0);
}

/* ---- messages ----------------------------------------------------------- */

static size_t pt_len(uint32_t cap, uint32_t pub, uint64_t seq) {
  uint64_t x = seq * 0x9E3779B97F4A7C15ull + (pub + 1) * 0xBF58476D1CE4E5B9ull;
  if (seq % 13 == 0)
    return cap;
  if (seq % 13 == 1)
    return TU_MIN_PAYLOAD;
  x ^= x >> 31;
  return TU_MIN_PAYLOAD + (size_t)(x % (cap - TU_MIN_PAYLOAD + 1));
}

static uint64_t pt_ts(uint32_t pub, uint64_t seq) {
  return ((uint64_t)(pub + 7) << 48) | seq;
}

/* Publishes message `seq` of publisher number `pub` (odd seqs zero-copy,
 * even ones copied). Returns publish's result: 0/1, or a negative code. */
static int pt_publish(struct shmbus__ring_pub *p, uint32_t pub, uint64_t seq) {
  uint32_t cap = p->ring->slot_capacity;
  size_t len = pt_len(cap, pub, seq);
  unsigned char buf[PT_MAX_CAP];
  void *dst;
  int rv;

  if (seq % 2 == 0) {
    tu_fill(buf, len, pub, seq);
    return shmbus__ring_publish(p, buf, len, pt_ts(pub, seq));
  }
  if ((rv = shmbus__ring_loan(p, len, &dst)) < 0)
    return rv;
  tu_fill(dst, len, pub, seq);
  return shmbus__ring_commit(p, len, pt_ts(pub, seq));
}

/* ---- a checking reader, for parents and children ------------------------ */

struct pt_reader {
  struct shmbus__ring_sub sub;
  bool inplace;
  uint32_t cap;
  uint32_t n_pubs;
  uint64_t joined;
  bool have;
  uint64_t last; /* ring seq of the last message */
  bool seen[PT_MAX_PUBS];
  uint64_t next[PT_MAX_PUBS]; /* per publisher: next sequence expected */
  uint64_t got[PT_MAX_PUBS];
  uint64_t received;
  uint64_t overruns;
  uint64_t info_mismatches;
  char err[256];
};

static int pt_reader_attach(struct pt_reader *rd, struct shmbus__ring *r, bool reliable,
                            bool inplace, uint32_t n_pubs) {
  int rv;
  memset(rd, 0, sizeof(*rd));
  rd->inplace = inplace;
  rd->cap = r->slot_capacity;
  rd->n_pubs = n_pubs;
  if ((rv = shmbus__ring_sub_attach(r, &rd->sub, reliable, 0, (uint32_t)getpid())) < 0)
    return rv;
  rd->joined = rd->sub.cursor;
  return 0;
}

static int pt_fail(struct pt_reader *rd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int pt_fail(struct pt_reader *rd, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(rd->err, sizeof(rd->err), fmt, ap);
  va_end(ap);
  return -1;
}

/* Reads one message and checks it: its checksum, its length and
 * timestamp, per-publisher order (every message of a publisher, in order,
 * for a reliable reader; increasing for a lossy one), and the accounting.
 * Returns 1 (delivered), 2 (in-place read overrun: discarded, lost), 0
 * (nothing to read) or -1 with rd->err set. */
static int pt_read(struct pt_reader *rd, unsigned char *buf) {
  uint64_t lost_before = rd->sub.lost;
  struct shmbus_msg_info info;
  uint32_t pub;
  uint64_t seq;
  size_t len;
  int rv;

  if (rd->inplace) {
    struct shmbus__ring_view v;
    rv = shmbus__ring_view_begin(&rd->sub, &v);
    if (rv == -EAGAIN)
      return 0;
    if (rv != 0 || v.info.len > rd->cap)
      return pt_fail(rd, "view_begin: %s", shmbus_strerror(rv));
    if (v.info.seq % 8 == 0) {
      /* Now and then a slow reader, that publishers may overwrite. */
      size_t half = v.info.len / 2;
      memcpy(buf, v.data, half);
      sched_yield();
      memcpy(buf + half, (const unsigned char *)v.data + half, v.info.len - half);
    } else {
      memcpy(buf, v.data, v.info.len);
    }
    info = v.info;
    len = v.info.len;
    rv = shmbus__ring_view_end(&rd->sub, &v);
    if (rv == SHMBUS_EOVERRUN) {
      if (rd->sub.reliable || rd->sub.lost <= lost_before)
        return pt_fail(rd, "overrun at seq %" PRIu64 " (reliable %d)", info.seq, rd->sub.reliable);
      rd->overruns++;
      return 2;
    }
    if (rv != 0)
      return pt_fail(rd, "view_end: %s", shmbus_strerror(rv));
  } else {
    rv = shmbus__ring_recv(&rd->sub, buf, rd->cap, &info);
    if (rv == -EAGAIN)
      return 0;
    if (rv < 0)
      return pt_fail(rd, "recv: %s", shmbus_strerror(rv));
    len = (size_t)rv;
  }
  if (tu_check(buf, len, &pub, &seq) != 0)
    return pt_fail(rd, "checksum error at ring seq %" PRIu64 " (len %zu)", info.seq, len);
  if (pub >= rd->n_pubs || info.len != len || len != pt_len(rd->cap, pub, seq))
    return pt_fail(rd, "ring seq %" PRIu64 ": pub %u seq %" PRIu64 " len %zu", info.seq, pub, seq,
                   len);
  if (info.pub_id != PT_PUB_ID(pub) || info.ts_ns != pt_ts(pub, seq)) {
    /* Known bug (tests/stress_test.c, recv_info_belongs_to_its_payload):
     * a lossy recv may return a newer message's pub_id and timestamp. */
    if (rd->sub.reliable || rd->inplace)
      return pt_fail(rd,
                     "ring seq %" PRIu64 ": info pub_id %u ts %#" PRIx64 " for pub %u seq %" PRIu64,
                     info.seq, info.pub_id, info.ts_ns, pub, seq);
    rd->info_mismatches++;
  }
  if (info.seq < rd->joined || (rd->have && info.seq <= rd->last) || rd->sub.cursor != info.seq + 1)
    return pt_fail(rd, "ring seq %" PRIu64 " out of order (last %" PRIu64 ")", info.seq, rd->last);
  if (rd->sub.reliable ? seq != rd->next[pub] : seq < rd->next[pub])
    return pt_fail(rd, "pub %u: seq %" PRIu64 ", expected %s%" PRIu64, pub, seq,
                   rd->sub.reliable ? "" : ">= ", rd->next[pub]);
  rd->seen[pub] = true;
  rd->next[pub] = seq + 1;
  rd->got[pub]++;
  rd->received++;
  rd->have = true;
  rd->last = info.seq;
  if (rd->sub.received != rd->received ||
      rd->sub.received + rd->sub.lost != rd->sub.cursor - rd->joined)
    return pt_fail(rd, "accounting: received %" PRIu64 " + lost %" PRIu64 " != %" PRIu64,
                   rd->sub.received, rd->sub.lost, rd->sub.cursor - rd->joined);
  return 1;
}

/* Parent side: read one, failing the test on error. */
static int pt_read_ok(struct pt_reader *rd) {
  unsigned char buf[PT_MAX_CAP];
  int rv = pt_read(rd, buf);
  if (rv < 0)
    cr_assert_fail("reader %u: %s", rd->sub.index, rd->err);
  return rv;
}

static void pt_drain(struct pt_reader *rd) {
  while (pt_read_ok(rd) != 0)
    ;
}

/* Exactly: every seq from the join to `head` counted once. */
static void pt_assert_accounting(const struct pt_reader *rd, uint64_t head) {
  cr_assert_eq(rd->sub.cursor, head, "reader %u: cursor %" PRIu64 " head %" PRIu64, rd->sub.index,
               rd->sub.cursor, head);
  cr_assert_eq(rd->sub.received + rd->sub.lost, head - rd->joined,
               "reader %u: received %" PRIu64 " + lost %" PRIu64 " != %" PRIu64, rd->sub.index,
               rd->sub.received, rd->sub.lost, head - rd->joined);
}

static uint64_t pt_head(const struct shmbus__ring *r) {
  return shmbus__load_acquire(&r->hdr->head);
}

static uint64_t pt_word(const struct shmbus__ring *r, uint64_t seq) {
  const struct shmbus__slot *s =
      (const struct shmbus__slot *)(r->slots + (seq & r->mask) * r->slot_stride);
  return shmbus__load_acquire(&s->word);
}

/* A read-only subscriber mapping of `rg` in this process, as a subscriber
 * process would have it. */
static void pt_open_subscriber_view(const struct shmbus__region *rg, struct shmbus__region *srg) {
  int ro, c, rv;
  rv = shmbus__region_subscriber_fds(rg, &ro, &c);
  cr_assert_eq(rv, 0, "subscriber_fds: %s", shmbus_strerror(rv));
  rv = shmbus__region_open(srg, ro, c, SHMBUS__ROLE_SUB);
  cr_assert_eq(rv, 0, "region_open: %s", shmbus_strerror(rv));
  close(ro);
  close(c);
}

/* ---- child programs ----------------------------------------------------- */

struct pt_sub_args {
  int data_ro, ctrl; /* inherited fds to open the region from */
  int close_fd;      /* the creator's read-write data fd: not ours to keep */
  bool reliable, inplace;
  uint64_t stop_at; /* stop when the cursor reaches it (0: see done_rd) */
  int done_rd;      /* -1, or a byte arrives when publishing is over */
  uint32_t who;     /* the parent's number for this child */
  int ready_wr;     /* {who, record index} once attached */
  int report_wr;
  uint64_t midway; /* after this many messages write a byte to midway_wr */
  int midway_wr;
  int block_rd; /* after midway, block reading this (-1: go on reading) */
};

struct pt_sub_report {
  uint32_t index;
  uint64_t joined, received, lost, cursor, head, overruns, info_mismatches;
  uint64_t got[PT_MAX_PUBS];
};

static int pt_sub_main(void *arg) {
  const struct pt_sub_args *a = arg;
  struct shmbus__region crg;
  struct pt_reader rd;
  struct pt_sub_report rep;
  unsigned char buf[PT_MAX_CAP];
  bool done = false;
  int rv;

  if (a->close_fd >= 0)
    close(a->close_fd);
  rv = shmbus__region_open(&crg, a->data_ro, a->ctrl, SHMBUS__ROLE_SUB);
  PT_REQUIRE(rv == 0, "region_open: %s", shmbus_strerror(rv));
  rv = pt_reader_attach(&rd, &crg.ring, a->reliable, a->inplace, 1);
  PT_REQUIRE(rv == 0, "sub_attach: %s", shmbus_strerror(rv));
  {
    /* One write of 8 bytes (< PIPE_BUF): atomic on a pipe shared by
     * several children. */
    uint32_t ready[2] = {a->who, rd.sub.index};
    PT_REQUIRE(pt_write_all(a->ready_wr, ready, sizeof(ready)) == 0, "ready");
  }
  for (;;) {
    bool over = a->done_rd >= 0 && pt_poll_byte(a->done_rd, &done);
    if (a->stop_at != 0 && rd.sub.cursor >= a->stop_at)
      break;
    rv = pt_read(&rd, buf);
    PT_REQUIRE(rv >= 0, "reader %u: %s", rd.sub.index, rd.err);
    if (rv == 1 && a->midway != 0 && rd.received == a->midway) {
      PT_REQUIRE(pt_write_all(a->midway_wr, "m", 1) == 0, "midway");
      if (a->block_rd >= 0) {
        char c;
        /* Stop reading for good, holding our cursor where it is. */
        (void)!read(a->block_rd, &c, 1);
        pt_die("block pipe returned");
      }
    }
    if (rv == 0) {
      if (over)
        break;
      sched_yield();
    }
  }
  memset(&rep, 0, sizeof(rep));
  rep.index = rd.sub.index;
  rep.joined = rd.joined;
  rep.received = rd.received;
  rep.lost = rd.sub.lost;
  rep.cursor = rd.sub.cursor;
  rep.head = pt_head(&crg.ring);
  rep.overruns = rd.overruns;
  rep.info_mismatches = rd.info_mismatches;
  memcpy(rep.got, rd.got, sizeof(rep.got));
  shmbus__ring_sub_detach(&rd.sub);
  shmbus__region_close(&crg);
  PT_REQUIRE(pt_write_all(a->report_wr, &rep, sizeof(rep)) == 0, "report");
  return 0;
}

struct pt_shared {
  atomic_uint_fast64_t efull; /* EFULL results seen by publisher processes */
};

struct pt_pub_args {
  int data_fd, ctrl_fd;
  uint32_t pub;
  uint64_t count; /* messages to send, when stop_rd < 0 */
  int stop_rd;    /* else: send until a byte arrives here, then `tail` more */
  uint64_t tail;
  int report_wr;
  struct pt_shared *shared;
};

struct pt_pub_report {
  uint32_t index;
  uint64_t sent, efull, overtaken;
};

static int pt_pub_main(void *arg) {
  const struct pt_pub_args *a = arg;
  struct shmbus__region crg;
  struct shmbus__ring_pub p;
  struct pt_pub_report rep;
  uint64_t seq, end = a->count;
  bool stopped = false;
  int rv;

  rv = shmbus__region_open(&crg, a->data_fd, a->ctrl_fd, SHMBUS__ROLE_PUB);
  PT_REQUIRE(rv == 0, "region_open: %s", shmbus_strerror(rv));
  rv = shmbus__ring_pub_attach(&crg.ring, &p, PT_PUB_ID(a->pub), (uint32_t)getpid());
  PT_REQUIRE(rv == 0, "pub_attach: %s", shmbus_strerror(rv));
  memset(&rep, 0, sizeof(rep));
  rep.index = p.index;
  for (seq = 0; a->stop_rd >= 0 ? !stopped || seq < end : seq < end; seq++) {
    if (a->stop_rd >= 0 && !stopped && seq % 64 == 0 && pt_poll_byte(a->stop_rd, &stopped))
      end = seq + a->tail;
    while ((rv = pt_publish(&p, a->pub, seq)) == SHMBUS_EFULL) {
      rep.efull++;
      if (a->shared != NULL)
        atomic_fetch_add(&a->shared->efull, 1);
      sched_yield();
    }
    PT_REQUIRE(rv >= 0, "publish %" PRIu64 ": %s", seq, shmbus_strerror(rv));
  }
  rep.sent = seq;
  rep.overtaken = p.overtaken;
  PT_REQUIRE(shmbus__load_relaxed(&p.rec->published) == seq, "published counter");
  shmbus__ring_pub_detach(&p);
  shmbus__region_close(&crg);
  PT_REQUIRE(pt_write_all(a->report_wr, &rep, sizeof(rep)) == 0, "report");
  return 0;
}

/* Reads n ready messages of subscriber children: idx[who] = record index. */
static void pt_read_ready(int fd, uint32_t *idx, uint32_t n) {
  uint32_t i, m[2];
  for (i = 0; i < n; i++) {
    cr_assert_eq(pt_read_all(fd, m, sizeof(m)), 0, "a subscriber died early");
    cr_assert_lt(m[0], n);
    idx[m[0]] = m[1];
  }
}

/* ---- one publisher, four subscribers ------------------------------------ */

Test(process, one_publisher_four_subscribers, .timeout = PT_TIMEOUT) {
  struct shmbus__region rg;
  struct pt_sub_args sa[4];
  struct pt_sub_report rep[4];
  struct pt_pub_args pa;
  struct pt_pub_report prep;
  int ready[2], reps[4][2], pubrep[2];
  pid_t subs[4], pub;
  uint64_t total = pt_count(1000000);
  uint32_t idx[4];
  int ro, ctrl, i, rv;

  tu_region(&rg, 16, 200, 8, 4);
  rv = shmbus__region_subscriber_fds(&rg, &ro, &ctrl);
  cr_assert_eq(rv, 0, "subscriber_fds: %s", shmbus_strerror(rv));
  pt_pipe(ready);
  for (i = 0; i < 4; i++) {
    pt_pipe(reps[i]);
    sa[i] = (struct pt_sub_args){.data_ro = ro,
                                 .ctrl = ctrl,
                                 .close_fd = rg.data_fd,
                                 .who = (uint32_t)i,
                                 .reliable = i >= 2,
                                 .inplace = i % 2 == 1,
                                 .stop_at = total,
                                 .done_rd = -1,
                                 .ready_wr = ready[1],
                                 .report_wr = reps[i][1],
                                 .midway_wr = -1,
                                 .block_rd = -1};
    subs[i] = pt_spawn(pt_sub_main, &sa[i]);
    close(reps[i][1]);
  }
  close(ready[1]);
  pt_read_ready(ready[0], idx, 4);
  /* Everyone is attached before the first message: each must account for
   * all of them. */
  for (i = 0; i < 4; i++) {
    uint32_t st = shmbus__load_acquire(&rg.ring.subs[idx[i]].state);
    cr_assert(st == SHMBUS__SUB_LOSSY || st == SHMBUS__SUB_RELIABLE);
  }
  pt_pipe(pubrep);
  pa = (struct pt_pub_args){.data_fd = rg.data_fd,
                            .ctrl_fd = rg.ctrl_fd,
                            .pub = 0,
                            .count = total,
                            .stop_rd = -1,
                            .report_wr = pubrep[1]};
  pub = pt_spawn(pt_pub_main, &pa);
  close(pubrep[1]);

  cr_assert_eq(pt_read_all(pubrep[0], &prep, sizeof(prep)), 0, "the publisher died");
  pt_expect_exit0(pub, "publisher");
  for (i = 0; i < 4; i++) {
    cr_assert_eq(pt_read_all(reps[i][0], &rep[i], sizeof(rep[i])), 0, "subscriber %d died", i);
    pt_expect_exit0(subs[i], "subscriber");
  }

  cr_assert_eq(prep.sent, total);
  cr_assert_eq(prep.overtaken, 0);
  cr_assert_eq(pt_head(&rg.ring), total);
  cr_assert_gt(prep.efull, 0, "reliable subscribers never held a 16-slot ring back");
  for (i = 0; i < 4; i++) {
    const struct shmbus__sub_rec *rec = &rg.ring.subs[rep[i].index];
    bool reliable = i >= 2;
    cr_assert_eq(rep[i].index, idx[i]);
    cr_log_info("subscriber %d (%s, %s): received %" PRIu64 " lost %" PRIu64 " overruns %" PRIu64
                " info mismatches %" PRIu64,
                i, reliable ? "reliable" : "lossy", i % 2 ? "in place" : "copy", rep[i].received,
                rep[i].lost, rep[i].overruns, rep[i].info_mismatches);
    cr_assert_eq(rep[i].joined, 0);
    cr_assert_eq(rep[i].cursor, total);
    cr_assert_eq(rep[i].received + rep[i].lost, total - rep[i].joined);
    cr_assert_leq(rep[i].received, total);
    cr_assert_eq(rep[i].got[0], rep[i].received);
    /* The record in shared memory says the same (it outlives the detach). */
    cr_assert_eq(shmbus__load_relaxed(&rec->received), rep[i].received);
    cr_assert_eq(shmbus__load_relaxed(&rec->lost), rep[i].lost);
    cr_assert_eq(shmbus__load_relaxed(&rec->state), SHMBUS__SUB_FREE);
    if (reliable) {
      cr_assert_eq(rep[i].lost, 0);
      cr_assert_eq(rep[i].received, total);
    }
  }
  close(ro);
  close(ctrl);
  shmbus__region_close(&rg);
}

/* ---- publishers that die ------------------------------------------------ */

struct pt_dier_args {
  int data_fd, ctrl_fd;
  int report_wr;
  bool claiming_only; /* die after the fetch-add, before recording the seq */
};

struct pt_dier_report {
  uint32_t index;
  uint64_t seq;
};

/* A publisher that dies holding a seq: either between loan and commit (a
 * real SIGKILL at that point), or - simulated by hand, since no real kill
 * lands there deterministically - between announcing CLAIMING and storing
 * the seq it got from the fetch-add. */
static int pt_dier_main(void *arg) {
  const struct pt_dier_args *a = arg;
  struct shmbus__region crg;
  struct shmbus__ring_pub p;
  struct pt_dier_report rep;
  int rv;

  memset(&rep, 0, sizeof(rep)); /* its padding goes through the pipe too */
  rv = shmbus__region_open(&crg, a->data_fd, a->ctrl_fd, SHMBUS__ROLE_PUB);
  PT_REQUIRE(rv == 0, "region_open: %s", shmbus_strerror(rv));
  rv = shmbus__ring_pub_attach(&crg.ring, &p, PT_PUB_ID(0), (uint32_t)getpid());
  PT_REQUIRE(rv == 0, "pub_attach: %s", shmbus_strerror(rv));
  rep.index = p.index;
  if (a->claiming_only) {
    shmbus__store_relaxed(&p.rec->inflight, SHMBUS__INFLIGHT_CLAIMING);
    rep.seq = shmbus__fetch_add_seq_cst(&crg.ring.hdr->head, 1);
  } else {
    void *payload;
    rv = shmbus__ring_loan(&p, crg.ring.slot_capacity, &payload);
    PT_REQUIRE(rv == 0, "loan: %s", shmbus_strerror(rv));
    /* Half a message, as a crash would leave it. */
    memset(payload, 0xA5, crg.ring.slot_capacity / 2);
    rep.seq = p.loan_seq;
  }
  PT_REQUIRE(pt_write_all(a->report_wr, &rep, sizeof(rep)) == 0, "report");
  raise(SIGKILL);
  return PT_EUNREACHED;
}

/* Forks a publisher that dies holding a seq; returns its record and seq
 * once it is dead (by SIGKILL). */
static struct pt_dier_report pt_kill_publisher(struct shmbus__region *rg, bool claiming_only) {
  struct pt_dier_args a;
  struct pt_dier_report rep;
  int fds[2];
  pid_t pid;

  pt_pipe(fds);
  a = (struct pt_dier_args){.data_fd = rg->data_fd,
                            .ctrl_fd = rg->ctrl_fd,
                            .report_wr = fds[1],
                            .claiming_only = claiming_only};
  pid = pt_spawn(pt_dier_main, &a);
  close(fds[1]);
  cr_assert_eq(pt_read_all(fds[0], &rep, sizeof(rep)), 0, "the publisher died too early");
  close(fds[0]);
  pt_expect_signal(pid, SIGKILL, "the publisher");
  cr_assert_lt(rep.index, rg->ring.max_pubs);
  return rep;
}

/* Publishes B's next message and has both readers read everything. */
static void pt_publish_and_read(struct shmbus__ring_pub *b, uint64_t *bseq, struct pt_reader *r1,
                                struct pt_reader *r2) {
  int rv = pt_publish(b, 1, *bseq);
  cr_assert_geq(rv, 0, "publish: %s", shmbus_strerror(rv));
  (*bseq)++;
  pt_drain(r1);
  pt_drain(r2);
}

/* A publisher process is killed between loan and commit. Readers stop at
 * its seq (and, with a reliable reader, so does the surviving publisher,
 * a lap later) until the repair; then the seq is one lost message and
 * everything after it arrives. */
Test(process, publisher_killed_between_claim_and_commit, .timeout = PT_TIMEOUT) {
  struct shmbus__region rg, srg;
  struct shmbus__ring_pub b;
  struct pt_reader rel, lossy;
  struct pt_dier_report dead;
  uint64_t bseq = 0, s;
  uint32_t bad = 99;
  int i, rv;

  tu_region(&rg, 8, 64, 4, 4);
  pt_open_subscriber_view(&rg, &srg);
  cr_assert_eq(pt_reader_attach(&rel, &srg.ring, true, false, 2), 0);
  cr_assert_eq(pt_reader_attach(&lossy, &srg.ring, false, true, 2), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &b, PT_PUB_ID(1), 1), 0);
  for (i = 0; i < 3; i++)
    pt_publish_and_read(&b, &bseq, &rel, &lossy);

  dead = pt_kill_publisher(&rg, false);
  s = dead.seq;
  cr_assert_eq(s, 3);
  cr_assert_eq(pt_word(&rg.ring, s), SHMBUS__WORD(s, SHMBUS__SLOT_BUSY));
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.pubs[dead.index].inflight), s);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.pubs[dead.index].state), SHMBUS__PUB_ACTIVE);

  /* The survivor fills the rest of the lap; the reliable reader, stuck at
   * s, then holds it back. */
  for (i = 0; i < (int)rg.ring.slot_count - 1; i++) {
    rv = pt_publish(&b, 1, bseq++);
    cr_assert_geq(rv, 0, "publish: %s", shmbus_strerror(rv));
  }
  for (i = 0; i < 3; i++)
    cr_assert_eq(pt_publish(&b, 1, bseq), SHMBUS_EFULL);
  for (i = 0; i < 3; i++) {
    cr_assert_eq(pt_read_ok(&rel), 0, "nothing beyond the dead publisher's seq");
    cr_assert_eq(pt_read_ok(&lossy), 0, "nothing beyond the dead publisher's seq");
  }
  cr_assert(!shmbus__ring_sub_ready(&rel.sub));
  cr_assert(!shmbus__ring_sub_ready(&lossy.sub));
  cr_assert_eq(rel.sub.cursor, s);
  cr_assert_eq(lossy.sub.cursor, s);
  cr_assert_eq(rel.sub.lost + lossy.sub.lost, 0);

  rv = shmbus__ring_repair(&rg.ring, &dead.index, 1);
  cr_assert_eq(rv, 1, "repair: %d", rv);
  cr_assert_eq(pt_word(&rg.ring, s), SHMBUS__WORD(s, SHMBUS__SLOT_SKIPPED));
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.pubs[dead.index].state), SHMBUS__PUB_FREE);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.pubs[dead.index].inflight), SHMBUS__INFLIGHT_IDLE);

  pt_drain(&rel);
  pt_drain(&lossy);
  cr_assert_eq(rel.sub.lost, 1);
  cr_assert_eq(lossy.sub.lost, 1);
  cr_assert_eq(rel.received, bseq);
  cr_assert_eq(lossy.received, bseq);
  /* The ring goes on as usual. */
  for (i = 0; i < 3 * (int)rg.ring.slot_count; i++)
    pt_publish_and_read(&b, &bseq, &rel, &lossy);
  cr_assert_eq(rel.received, bseq);
  cr_assert_eq(rel.got[1], bseq);
  cr_assert_eq(rel.got[0], 0);
  pt_assert_accounting(&rel, pt_head(&rg.ring));
  pt_assert_accounting(&lossy, pt_head(&rg.ring));
  cr_assert_eq(pt_head(&rg.ring), bseq + 1);

  /* Repairing again finds nothing; a bad index is refused. */
  cr_assert_eq(shmbus__ring_repair(&rg.ring, &dead.index, 1), 0);
  cr_assert_eq(shmbus__ring_repair(&rg.ring, &bad, 1), -EINVAL);

  shmbus__ring_sub_detach(&rel.sub);
  shmbus__ring_sub_detach(&lossy.sub);
  shmbus__ring_pub_detach(&b);
  shmbus__region_close(&srg);
  shmbus__region_close(&rg);
}

static atomic_uint_fast64_t pt_backoffs;

static void pt_counting_backoff(unsigned spins) {
  (void)spins;
  atomic_fetch_add(&pt_backoffs, 1);
  sched_yield();
}

struct pt_lapper {
  struct shmbus__ring_pub *pub;
  uint64_t first, count;     /* its sequences first..first+count-1 */
  atomic_uint_fast64_t done; /* messages published */
  int rv;
};

static void *pt_lapper_main(void *arg) {
  struct pt_lapper *l = arg;
  uint64_t k;
  for (k = 0; k < l->count; k++) {
    l->rv = pt_publish(l->pub, 1, l->first + k);
    if (l->rv < 0)
      break;
    atomic_fetch_add(&l->done, 1);
  }
  return NULL;
}

/* A publisher process dies holding seq s; a second publisher (a thread
 * here) claims s + slots, the same slot one lap later, and waits while the
 * slot says BUSY(s). The repair lets it go on. */
Test(process, lapping_publisher_waits_for_repair, .timeout = PT_TIMEOUT) {
  struct shmbus__region rg, srg, brg;
  struct shmbus__ring_pub b;
  struct pt_reader lossy;
  struct pt_dier_report dead;
  struct pt_lapper lap;
  pthread_t t;
  uint64_t s, bseq = 0;
  int i, rv;

  tu_region(&rg, 8, 64, 4, 4);
  pt_open_subscriber_view(&rg, &srg);
  /* B maps the region on its own, with a backoff that counts its waits. */
  rv = shmbus__region_open(&brg, rg.data_fd, rg.ctrl_fd, SHMBUS__ROLE_PUB);
  cr_assert_eq(rv, 0);
  brg.ring.backoff = pt_counting_backoff;
  cr_assert_eq(pt_reader_attach(&lossy, &srg.ring, false, false, 2), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&brg.ring, &b, PT_PUB_ID(1), 1), 0);
  for (i = 0; i < 2; i++) {
    cr_assert_geq(pt_publish(&b, 1, bseq++), 0);
    pt_drain(&lossy);
  }

  dead = pt_kill_publisher(&rg, false);
  s = dead.seq;
  cr_assert_eq(s, 2);

  memset(&lap, 0, sizeof(lap));
  lap.pub = &b;
  lap.first = bseq;
  lap.count = rg.ring.slot_count; /* seqs s+1 .. s+slots: the last one laps s */
  atomic_init(&lap.done, 0);
  atomic_store(&pt_backoffs, 0);
  cr_assert_eq(pthread_create(&t, NULL, pt_lapper_main, &lap), 0);
  /* Wait until it has waited a good while for the slot. */
  while (atomic_load(&pt_backoffs) < 1000) {
    if (atomic_load(&lap.done) == lap.count)
      cr_assert_fail("the lapping publisher did not wait");
    sched_yield(); /* under valgrind, threads run one at a time: let it run */
  }
  cr_assert_eq(atomic_load(&lap.done), lap.count - 1);
  cr_assert_eq(pt_head(&rg.ring), s + rg.ring.slot_count + 1);
  cr_assert_eq(shmbus__load_relaxed(&b.rec->inflight), s + rg.ring.slot_count);
  cr_assert_eq(pt_word(&rg.ring, s), SHMBUS__WORD(s, SHMBUS__SLOT_BUSY));

  rv = shmbus__ring_repair(&rg.ring, &dead.index, 1);
  cr_assert_eq(rv, 1, "repair: %d", rv);
  pthread_join(t, NULL);
  cr_assert_eq(lap.rv, 0, "publish: %s", shmbus_strerror(lap.rv));
  cr_assert_eq(atomic_load(&lap.done), lap.count);
  cr_assert_eq(b.overtaken, 0, "it waited, it was not overtaken");
  cr_assert_eq(pt_word(&rg.ring, s + rg.ring.slot_count),
               SHMBUS__WORD(s + rg.ring.slot_count, SHMBUS__SLOT_COMMITTED));

  /* The lossy reader, still at s, was lapped: it counts what it missed
   * and reads the newest messages, including the one that waited. */
  pt_drain(&lossy);
  pt_assert_accounting(&lossy, pt_head(&rg.ring));
  cr_assert_geq(lossy.sub.lost, 1);
  cr_assert_eq(lossy.last, s + rg.ring.slot_count);
  cr_assert_eq(lossy.next[1], lap.first + lap.count);

  shmbus__ring_sub_detach(&lossy.sub);
  shmbus__ring_pub_detach(&b);
  shmbus__region_close(&brg);
  shmbus__region_close(&srg);
  shmbus__region_close(&rg);
}

/* A publisher dies after its fetch-add but before recording which seq it
 * got (simulated). The hole stops readers; while another publisher is
 * itself mid-claim the repair cannot tell whose hole it is and says
 * -EAGAIN; then it skips the hole. `before` messages go first, so the hole
 * lands on a fresh slot (before < slots) or on a reused one. */
static void pt_hole_scenario(uint64_t before) {
  struct shmbus__region rg, srg;
  struct shmbus__ring_pub b;
  struct pt_reader rel, lossy;
  struct pt_dier_report dead;
  uint64_t bseq = 0, s, old_word;
  int i, rv;

  tu_region(&rg, 8, 64, 4, 4);
  pt_open_subscriber_view(&rg, &srg);
  cr_assert_eq(pt_reader_attach(&rel, &srg.ring, true, true, 2), 0);
  cr_assert_eq(pt_reader_attach(&lossy, &srg.ring, false, false, 2), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &b, PT_PUB_ID(1), 1), 0);
  while (bseq < before)
    pt_publish_and_read(&b, &bseq, &rel, &lossy);

  dead = pt_kill_publisher(&rg, true);
  s = dead.seq;
  cr_assert_eq(s, before);
  old_word = before >= rg.ring.slot_count
                 ? SHMBUS__WORD(s - rg.ring.slot_count, SHMBUS__SLOT_COMMITTED)
                 : 0;
  cr_assert_eq(pt_word(&rg.ring, s), old_word);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.pubs[dead.index].inflight), SHMBUS__INFLIGHT_CLAIMING);

  for (i = 0; i < 3; i++)
    cr_assert_geq(pt_publish(&b, 1, bseq++), 0);
  cr_assert_eq(pt_read_ok(&rel), 0);
  cr_assert_eq(pt_read_ok(&lossy), 0);
  cr_assert_eq(rel.sub.cursor, s);
  cr_assert_eq(lossy.sub.cursor, s);

  /* A live publisher between CLAIMING and its seq: the hole could be its. */
  shmbus__store_relaxed(&b.rec->inflight, SHMBUS__INFLIGHT_CLAIMING);
  cr_assert_eq(shmbus__ring_repair(&rg.ring, &dead.index, 1), -EAGAIN);
  cr_assert_eq(pt_word(&rg.ring, s), old_word);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.pubs[dead.index].state), SHMBUS__PUB_ACTIVE);
  shmbus__store_relaxed(&b.rec->inflight, SHMBUS__INFLIGHT_IDLE);

  rv = shmbus__ring_repair(&rg.ring, &dead.index, 1);
  cr_assert_eq(rv, 1, "repair: %d", rv);
  cr_assert_eq(pt_word(&rg.ring, s), SHMBUS__WORD(s, SHMBUS__SLOT_SKIPPED));
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.pubs[dead.index].state), SHMBUS__PUB_FREE);

  pt_drain(&rel);
  pt_drain(&lossy);
  cr_assert_eq(rel.sub.lost, 1);
  cr_assert_eq(lossy.sub.lost, 1);
  for (i = 0; i < 3 * (int)rg.ring.slot_count; i++)
    pt_publish_and_read(&b, &bseq, &rel, &lossy);
  cr_assert_eq(rel.received, bseq);
  cr_assert_eq(lossy.received, bseq);
  cr_assert_eq(pt_head(&rg.ring), bseq + 1);
  pt_assert_accounting(&rel, pt_head(&rg.ring));
  pt_assert_accounting(&lossy, pt_head(&rg.ring));

  shmbus__ring_sub_detach(&rel.sub);
  shmbus__ring_sub_detach(&lossy.sub);
  shmbus__ring_pub_detach(&b);
  shmbus__region_close(&srg);
  shmbus__region_close(&rg);
}

Test(process, publisher_killed_while_claiming_on_a_fresh_slot, .timeout = PT_TIMEOUT) {
  pt_hole_scenario(2);
}

Test(process, publisher_killed_while_claiming_on_a_reused_slot, .timeout = PT_TIMEOUT) {
  pt_hole_scenario(10);
}

/* ---- subscribers that die ----------------------------------------------- */

/* A lossy subscriber process is killed while a publisher process publishes
 * flat out: the publisher goes on, and a lossy and a reliable subscriber
 * process still account for every message. Nobody evicts the dead one. */
Test(process, lossy_subscriber_killed_mid_stream, .timeout = PT_TIMEOUT) {
  struct shmbus__region rg;
  struct pt_sub_args sa[3];
  struct pt_sub_report rep[3];
  struct pt_pub_args pa;
  struct pt_pub_report prep;
  int ready[2], reps[3][2], done[3][2], midway[2], stop[2], pubrep[2];
  pid_t subs[3], pub;
  uint32_t idx[3];
  uint64_t tail = pt_count(200000), head_at_kill, head;
  char c;
  int ro, ctrl, i;

  tu_region(&rg, 16, 200, 8, 4);
  cr_assert_eq(shmbus__region_subscriber_fds(&rg, &ro, &ctrl), 0);
  pt_pipe(ready);
  pt_pipe(midway);
  /* 0: the victim (lossy, copies); 1: lossy in place; 2: reliable. */
  for (i = 0; i < 3; i++) {
    pt_pipe(reps[i]);
    pt_pipe(done[i]);
    pt_nonblock(done[i][0]);
    sa[i] = (struct pt_sub_args){.data_ro = ro,
                                 .ctrl = ctrl,
                                 .close_fd = rg.data_fd,
                                 .who = (uint32_t)i,
                                 .reliable = i == 2,
                                 .inplace = i == 1,
                                 .stop_at = 0,
                                 .done_rd = i == 0 ? -1 : done[i][0],
                                 .ready_wr = ready[1],
                                 .report_wr = reps[i][1],
                                 .midway = i == 0 ? 2000 : 0,
                                 .midway_wr = midway[1],
                                 .block_rd = -1};
    subs[i] = pt_spawn(pt_sub_main, &sa[i]);
    close(reps[i][1]);
  }
  close(ready[1]);
  close(midway[1]);
  pt_read_ready(ready[0], idx, 3);

  pt_pipe(stop);
  pt_nonblock(stop[0]);
  pt_pipe(pubrep);
  pa = (struct pt_pub_args){.data_fd = rg.data_fd,
                            .ctrl_fd = rg.ctrl_fd,
                            .pub = 0,
                            .stop_rd = stop[0],
                            .tail = tail,
                            .report_wr = pubrep[1]};
  pub = pt_spawn(pt_pub_main, &pa);
  close(pubrep[1]);

  /* The victim has read 2000 messages and reads on: kill it. */
  cr_assert_eq(pt_read_all(midway[0], &c, 1), 0, "the victim died early");
  cr_assert_eq(kill(subs[0], SIGKILL), 0);
  pt_expect_signal(subs[0], SIGKILL, "the victim");
  head_at_kill = pt_head(&rg.ring);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.subs[idx[0]].state), SHMBUS__SUB_LOSSY);

  cr_assert_eq(pt_write_all(stop[1], "s", 1), 0);
  cr_assert_eq(pt_read_all(pubrep[0], &prep, sizeof(prep)), 0, "the publisher died");
  pt_expect_exit0(pub, "publisher");
  head = pt_head(&rg.ring);
  cr_assert_eq(head, prep.sent);
  cr_assert_geq(head, head_at_kill + tail, "publishing went on after the kill");

  for (i = 1; i < 3; i++) {
    cr_assert_eq(pt_write_all(done[i][1], "d", 1), 0);
    cr_assert_eq(pt_read_all(reps[i][0], &rep[i], sizeof(rep[i])), 0, "subscriber %d died", i);
    pt_expect_exit0(subs[i], "subscriber");
    cr_log_info("subscriber %d: received %" PRIu64 " lost %" PRIu64 " of %" PRIu64, i,
                rep[i].received, rep[i].lost, head);
    cr_assert_eq(rep[i].cursor, head);
    cr_assert_eq(rep[i].received + rep[i].lost, head - rep[i].joined);
  }
  cr_assert_eq(rep[2].lost, 0);
  cr_assert_eq(rep[2].received, head);
  cr_assert_eq(rep[2].got[0], head);
  /* The dead subscriber's record is still there, left behind. */
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.subs[idx[0]].state), SHMBUS__SUB_LOSSY);
  cr_assert_lt(shmbus__load_relaxed(&rg.ring.subs[idx[0]].cursor), head);

  close(ro);
  close(ctrl);
  shmbus__region_close(&rg);
}

/* A reliable subscriber process reads 5 messages and is killed: the
 * publisher process then fills the ring behind it and gets EFULL, for as
 * long as it tries, until the parent (as the daemon would) evicts the dead
 * record; then it finishes. A reliable and a lossy reader in the parent
 * follow everything. */
Test(process, reliable_subscriber_killed_holds_publisher_until_evicted, .timeout = PT_TIMEOUT) {
  struct shmbus__region rg, srg;
  struct pt_reader rel, lossy;
  struct pt_sub_args sa;
  struct pt_pub_args pa;
  struct pt_pub_report prep;
  struct pt_shared *shared;
  int ready[2], reps[2], midway[2], block[2], pubrep[2];
  pid_t victim, pub;
  uint32_t vidx;
  uint64_t total = pt_count(200000), stuck_at, e0;
  bool mid = false;
  int ro, ctrl, st = 0;
  pid_t r;

  shared = mmap(NULL, sizeof(*shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  cr_assert_neq(shared, MAP_FAILED);
  atomic_init(&shared->efull, 0);
  tu_region(&rg, 16, 64, 8, 4);
  pt_open_subscriber_view(&rg, &srg);
  cr_assert_eq(pt_reader_attach(&rel, &srg.ring, true, false, 1), 0);
  cr_assert_eq(pt_reader_attach(&lossy, &srg.ring, false, true, 1), 0);

  cr_assert_eq(shmbus__region_subscriber_fds(&rg, &ro, &ctrl), 0);
  pt_pipe(ready);
  pt_pipe(reps);
  pt_pipe(midway);
  pt_nonblock(midway[0]);
  pt_pipe(block);
  sa = (struct pt_sub_args){.data_ro = ro,
                            .ctrl = ctrl,
                            .close_fd = rg.data_fd,
                            .reliable = true,
                            .done_rd = -1,
                            .ready_wr = ready[1],
                            .report_wr = reps[1],
                            .midway = 5,
                            .midway_wr = midway[1],
                            .block_rd = block[0]};
  victim = pt_spawn(pt_sub_main, &sa);
  close(ready[1]);
  close(reps[1]);
  close(midway[1]);
  pt_read_ready(ready[0], &vidx, 1);

  pt_pipe(pubrep);
  pa = (struct pt_pub_args){.data_fd = rg.data_fd,
                            .ctrl_fd = rg.ctrl_fd,
                            .pub = 0,
                            .count = total,
                            .stop_rd = -1,
                            .report_wr = pubrep[1],
                            .shared = shared};
  pub = pt_spawn(pt_pub_main, &pa);
  close(pubrep[1]);

  /* Follow the stream until the victim has read its 5 messages. */
  while (!pt_poll_byte(midway[0], &mid)) {
    pt_check_alive(victim, "the victim");
    if (pt_read_ok(&rel) + pt_read_ok(&lossy) == 0)
      sched_yield();
  }
  cr_assert_eq(kill(victim, SIGKILL), 0);
  pt_expect_signal(victim, SIGKILL, "the victim");
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.subs[vidx].state), SHMBUS__SUB_RELIABLE);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.subs[vidx].cursor), 5);

  /* The publisher fills the ring up to the dead cursor... */
  stuck_at = 5 + rg.ring.slot_count;
  while (pt_head(&rg.ring) < stuck_at) {
    pt_check_alive(pub, "the publisher");
    if (pt_read_ok(&rel) + pt_read_ok(&lossy) == 0)
      sched_yield();
  }
  /* ...and stays there, however often it tries. */
  e0 = atomic_load(&shared->efull);
  while (atomic_load(&shared->efull) < e0 + 200) {
    pt_check_alive(pub, "the publisher");
    pt_drain(&rel);
    pt_drain(&lossy);
    sched_yield();
  }
  cr_assert_eq(pt_head(&rg.ring), stuck_at);
  cr_assert_eq(rel.sub.cursor, stuck_at);

  shmbus__ring_evict_sub(&rg.ring, vidx);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.subs[vidx].state), SHMBUS__SUB_FREE);

  while ((r = waitpid(pub, &st, WNOHANG)) == 0) {
    if (pt_read_ok(&rel) + pt_read_ok(&lossy) == 0)
      sched_yield();
  }
  cr_assert(r == pub && WIFEXITED(st) && WEXITSTATUS(st) == 0, "publisher %s", pt_status_str(st));
  cr_assert_eq(pt_read_all(pubrep[0], &prep, sizeof(prep)), 0, "the publisher died");
  pt_drain(&rel);
  pt_drain(&lossy);
  cr_assert_eq(prep.sent, total);
  cr_assert_geq(prep.efull, 200);
  cr_assert_eq(pt_head(&rg.ring), total);
  cr_assert_eq(rel.received, total);
  cr_assert_eq(rel.sub.lost, 0);
  pt_assert_accounting(&rel, total);
  pt_assert_accounting(&lossy, total);

  close(block[1]);
  close(ro);
  close(ctrl);
  shmbus__ring_sub_detach(&rel.sub);
  shmbus__ring_sub_detach(&lossy.sub);
  shmbus__region_close(&srg);
  shmbus__region_close(&rg);
  munmap(shared, sizeof(*shared));
}

/* ---- subscribers cannot forge ------------------------------------------- */

struct pt_forger_args {
  int data_ro, ctrl, close_fd;
  int target; /* 0: a slot's commit word, 1: head */
};

/* A subscriber process that tries to write the data file: everything it
 * is allowed to do works (map, attach: the control file is writable), and
 * everything else fails; the write itself kills it with SIGSEGV. */
static int pt_forger_main(void *arg) {
  const struct pt_forger_args *a = arg;
  struct shmbus__region crg, other;
  struct shmbus__ring_sub sub;
  int rv;

  close(a->close_fd);
  rv = shmbus__region_open(&crg, a->data_ro, a->ctrl, SHMBUS__ROLE_SUB);
  PT_REQUIRE(rv == 0, "region_open: %s", shmbus_strerror(rv));
  rv = shmbus__region_open(&other, a->data_ro, a->ctrl, SHMBUS__ROLE_PUB);
  PT_REQUIRE(rv == -EACCES, "publisher open of a read-only fd: %s", shmbus_strerror(rv));
  rv = shmbus__ring_sub_attach(&crg.ring, &sub, false, 0, (uint32_t)getpid());
  PT_REQUIRE(rv == 0, "sub_attach: %s", shmbus_strerror(rv));
  errno = 0;
  rv = mprotect(crg.data, crg.data_len, PROT_READ | PROT_WRITE);
  PT_REQUIRE(rv == -1 && errno == EACCES, "mprotect read-write: %d (%s)", rv, strerror(errno));
  /* Die the default way, even where a sanitizer handles SIGSEGV. */
  signal(SIGSEGV, SIG_DFL);
  if (a->target == 0)
    shmbus__store_release((shmbus__a64 *)(void *)crg.ring.slots,
                          SHMBUS__WORD(0, SHMBUS__SLOT_COMMITTED));
  else
    shmbus__store_release(&crg.ring.hdr->head, 1000);
  return PT_EUNREACHED;
}

Test(process, subscriber_writing_the_slot_area_dies, .timeout = PT_TIMEOUT) {
  struct shmbus__region rg;
  struct pt_forger_args a;
  int ro, ctrl, target, i;
  uint32_t lossy_records = 0;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__region_subscriber_fds(&rg, &ro, &ctrl), 0);
  for (target = 0; target < 2; target++) {
    pid_t pid;
    a = (struct pt_forger_args){
        .data_ro = ro, .ctrl = ctrl, .close_fd = rg.data_fd, .target = target};
    pid = pt_spawn(pt_forger_main, &a);
    pt_expect_signal(pid, SIGSEGV, target == 0 ? "a slot forger" : "a head forger");
  }
  /* Nothing was written to the data file; the control file took the two
   * attaches. */
  cr_assert_eq(pt_word(&rg.ring, 0), 0);
  cr_assert_eq(pt_head(&rg.ring), 0);
  for (i = 0; i < (int)rg.ring.max_subs; i++)
    lossy_records += shmbus__load_relaxed(&rg.ring.subs[i].state) == SHMBUS__SUB_LOSSY;
  cr_assert_eq(lossy_records, 2);
  close(ro);
  close(ctrl);
  shmbus__region_close(&rg);
}
