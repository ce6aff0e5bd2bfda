/* Stress tests: many publishers and subscribers on one ring, as threads of
 * one process (the `stress` label; these also run under ThreadSanitizer).
 *
 * Every message is self-checking (tu_fill: publisher number, its own
 * sequence 0..K-1, length and a checksum), and every subscriber checks every
 * message it is given, in every mode: copy or in-place reads, lossy or
 * reliable, spinning or sleeping on the sleep protocol. Each subscriber also
 * checks, after every read, that each seq since it joined was counted once,
 * as received or as lost (received + lost == cursor - joined), and at the
 * end that it drained the ring (cursor == head).
 *
 * Nothing here sleeps to order threads: they start together at a barrier,
 * spin (yielding the CPU) on shared state, and block only on pipes. A
 * thread that finds an error records it and raises `abort`, so every other
 * loop stops; the main thread joins them all and asserts. Criterion's
 * `.timeout` is the watchdog for a lost wake-up or a livelock. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "platform/platform.h"
#include "testutil.h"

/* Sanitizers slow everything down, TSan by 5-15x: send fewer messages. */
#if defined(__SANITIZE_THREAD__)
#define ST_SCALE 8
#define ST_TSAN 1
#elif defined(__SANITIZE_ADDRESS__)
#define ST_SCALE 3
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ST_SCALE 8
#define ST_TSAN 1
#elif __has_feature(address_sanitizer)
#define ST_SCALE 3
#endif
#endif
#ifndef ST_SCALE
#define ST_SCALE 1
#endif
#ifndef ST_TSAN
#define ST_TSAN 0
#endif

/* Criterion's watchdog per test, in seconds: far above the normal run time,
 * only reached by a hang (a lost wake-up, a livelock). */
#define ST_TIMEOUT (ST_TSAN ? 120.0 : 60.0)

#if ST_TSAN
/* Running Criterion 2.4 under ThreadSanitizer takes two adjustments, both
 * confined to this test program.
 *
 * 1. Options. Criterion's runner is multi-threaded when it forks a test's
 *    process, and our tests start threads there: TSan's default
 *    die_after_fork=1 would kill them. And the by-design seqlock races
 *    (a lossy reader's copy in ring_copy_out against a publisher's writes)
 *    are suppressed by the reader's frame (tests/tsan.supp), which TSan can
 *    only match if it can restore the reader's stack: with the default
 *    history it often cannot ("[failed to restore the stack]") and reports
 *    them. TSan reads these defaults before TSAN_OPTIONS, which overrides
 *    them where it names the same option.
 *
 * 2. At start-up Criterion (BoxFort's bxf_arena_init) maps its shared arena
 *    at a random address 0x2000'0000'0000 + rand_r() % 4M * 16 MiB, tries
 *    ten of them and aborts with "Could not initialize inheritable arena:
 *    Resource temporarily unavailable" when all are taken. Under TSan
 *    nearly all of that window is TSan's shadow or protected memory, so
 *    the runner aborted in about two runs out of three. BoxFort calls
 *    rand_r through the PLT: this definition steers its picks into
 *    0x5600'0000'0000..0x5680'0000'0000, application memory in TSan's
 *    x86-64 layout (it still skips pages that are in use). Nothing else in
 *    this program calls rand_r. Both are exported despite the project's
 *    hidden default visibility, so that the runtimes find them. */
__attribute__((visibility("default"))) const char *__tsan_default_options(void);
__attribute__((visibility("default"))) const char *__tsan_default_options(void) {
  return "die_after_fork=0 history_size=7";
}

__attribute__((visibility("default"))) int rand_r(unsigned int *seed) {
  *seed = *seed * 1103515245u + 12345u;
  return (int)(0x360000u + ((*seed >> 8) & 0x7fffu));
}
#endif

#define ST_MAX_PUBS 8
#define ST_MAX_SUBS 8
#define ST_MAX_CAP 512u
#define ST_PUB_ID(i) (1000u + (uint32_t)(i))

/* Subscriber kinds. */
enum {
  ST_RELIABLE = 1, /* reliable (default lossy) */
  ST_INPLACE = 2,  /* view_begin/view_end (default recv copies) */
  ST_SLEEPER = 4,  /* sleeps on the sleep protocol instead of spinning */
  ST_THRESHOLD = 8 /* a sleeper with a wake threshold (ST_WAKE_AFTER) and a 1 ms timer */
};

#define ST_WAKE_AFTER 4u

struct st_bus;

struct st_pub {
  struct st_bus *bus;
  uint32_t idx; /* tu_fill's `pub`; pub_id is ST_PUB_ID(idx) */
  bool loan;    /* zero copy: loan, fill in place, commit */
  struct shmbus__ring_pub pub;
  uint64_t sent;                   /* messages committed */
  uint64_t efull;                  /* SHMBUS_EFULL results (each retried) */
  uint64_t wakes;                  /* wake-ups written to sleepers' pipes */
  uint64_t signalled[ST_MAX_SUBS]; /* the last sleep ticket woken, per subscriber */
  uint64_t deferred;               /* sleepers left to their timers (threshold not reached) */
  char err[256];
};

struct st_sub {
  struct st_bus *bus;
  unsigned flags;
  struct shmbus__ring_sub sub;
  bool attached;
  uint64_t joined; /* the seq it started from */
  bool from_start; /* joined before any publisher started */
  uint64_t expect; /* sleepers: stop after this many messages */
  bool have_seq;
  uint64_t last_seq; /* ring seq of the last message delivered */
  bool seen[ST_MAX_PUBS];
  uint64_t next[ST_MAX_PUBS];    /* per publisher: the lowest acceptable next sequence */
  uint64_t got[ST_MAX_PUBS];     /* per publisher: messages delivered */
  uint64_t received;             /* messages delivered and checked */
  uint64_t overruns;             /* in-place reads that view_end rejected */
  uint64_t blocks;               /* times it blocked on its wake-up pipe */
  uint64_t timer_blocks;         /* ST_THRESHOLD: blocks its timer ended */
  bool armed_first;              /* sleepers: the sleep_prepare before the start */
  atomic_uint_fast64_t progress; /* sleepers: `received`, for publishers in bursts */
  char err[256];
};

struct st_bus {
  struct shmbus__region rg;
  pthread_barrier_t start;
  atomic_int pubs_done;
  atomic_bool abort;
  atomic_bool hold; /* publishers go on past per_pub while this is set */
  int n_pubs;
  uint64_t per_pub;
  /* Wake-up pipes, by subscriber record index: publishers write a byte to
   * wake_wr[i] when they take bit i from the sleeper bitmap. */
  int wake_rd[ST_MAX_SUBS];
  int wake_wr[ST_MAX_SUBS];
  atomic_int wake_errors;
  atomic_uint_fast64_t wakes_to[ST_MAX_SUBS]; /* wake-ups written, per subscriber */
  /* Bursts: after each short burst a publisher waits until every sleeper
   * has read everything committed so far, so the ring keeps going quiet
   * with sleepers about to block. A wake-up lost at such a point is never
   * made up for by a later commit: the test hangs. */
  bool bursts;
  atomic_uint_fast64_t committed; /* messages committed, all publishers */
  int n_sleepers;
  struct st_sub *sleepers[ST_MAX_SUBS];
};

/* ---- helpers ------------------------------------------------------------ */

static void st_fail(struct st_bus *b, char *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void st_fail(struct st_bus *b, char *err, const char *fmt, ...) {
  va_list ap;
  if (err[0] == '\0') {
    va_start(ap, fmt);
    vsnprintf(err, 256, fmt, ap);
    va_end(ap);
  }
  atomic_store(&b->abort, true);
}

/* Message length for (pub, seq): every length from TU_MIN_PAYLOAD to the
 * capacity occurs, including both ends. */
static size_t st_len(uint32_t cap, uint32_t pub, uint64_t seq) {
  uint64_t x = seq * 0x9E3779B97F4A7C15ull + (pub + 1) * 0xBF58476D1CE4E5B9ull;
  if (seq % 17 == 0)
    return cap;
  if (seq % 17 == 1)
    return TU_MIN_PAYLOAD;
  x ^= x >> 31;
  return TU_MIN_PAYLOAD + (size_t)(x % (cap - TU_MIN_PAYLOAD + 1));
}

static uint64_t st_ts(uint32_t pub, uint64_t seq) {
  return ((uint64_t)(pub + 1) << 48) | seq;
}

/* Copies an in-place view out of its slot. A lossy reader's view may be
 * overwritten by a publisher while it is read: that is the seqlock's point,
 * and view_end says whether to trust the bytes. ThreadSanitizer cannot see
 * that protocol (the library's own copies are named in tests/tsan.supp for
 * the same reason), so this one function is not instrumented; volatile byte
 * reads keep the compiler from turning the loop into a memcpy call, which
 * TSan would intercept. */
__attribute__((noinline, no_sanitize("thread"))) static void
st_copy_view(unsigned char *dst, const void *src, size_t n) {
  const volatile unsigned char *s = src;
  size_t i;
  for (i = 0; i < n; i++)
    dst[i] = s[i];
}

static void st_pipe(int fds[2]) {
  int rv = pipe2(fds, O_CLOEXEC);
  cr_assert_eq(rv, 0, "pipe2: %s", strerror(errno));
  /* The write end never blocks: a full pipe already holds a wake-up. */
  cr_assert_eq(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
}

/* Wakes a sleeper the scan reports, once per sleep ticket. */
static void st_wake_one(void *ctx, uint32_t i, uint64_t ticket) {
  struct st_pub *p = ctx;
  struct st_bus *b = p->bus;

  if (i >= ST_MAX_SUBS) {
    st_fail(b, p->err, "sleeper bit %u beyond the subscribers", i);
    return;
  }
  if (p->signalled[i] == ticket)
    return;
  /* A wake threshold beyond our last commit: its timer or a later commit
   * ends that sleep (as notify.c does). */
  if (shmbus__ring_sub_wake_seq(&b->rg.ring, i) > p->pub.loan_seq) {
    p->deferred++;
    return;
  }
  p->signalled[i] = ticket;
  if (write(b->wake_wr[i], "w", 1) != 1 && errno != EAGAIN)
    atomic_fetch_add(&b->wake_errors, 1);
  atomic_fetch_add(&b->wakes_to[i], 1);
  p->wakes++;
}

/* Wakes every sleeper whose bit this publisher finds, once per ticket. */
static void st_wake(struct st_pub *p) {
  shmbus__ring_scan_sleepers(&p->bus->rg.ring, 0, st_wake_one, p);
}

/* ---- publishers --------------------------------------------------------- */

/* Publishes message `seq` of publisher `p`, retrying (and yielding) while
 * the ring is full. Returns 0, or -1 on an error (recorded) or abort. */
static int st_publish(struct st_pub *p, uint64_t seq, unsigned char *buf, bool prefilled) {
  struct st_bus *b = p->bus;
  uint32_t cap = b->rg.ring.slot_capacity;
  size_t len = st_len(cap, p->idx, seq);
  uint64_t ts = st_ts(p->idx, seq);
  int rv;

  if (!p->loan && !prefilled)
    tu_fill(buf, len, p->idx, seq);
  for (;;) {
    if (p->loan) {
      void *dst;
      rv = shmbus__ring_loan(&p->pub, len, &dst);
      if (rv == 0) {
        tu_fill(dst, len, p->idx, seq);
        rv = shmbus__ring_commit(&p->pub, len, ts);
      }
    } else {
      rv = shmbus__ring_publish(&p->pub, buf, len, ts);
    }
    if (rv >= 0)
      break;
    if (rv != SHMBUS_EFULL) {
      st_fail(b, p->err, "publish %" PRIu64 ": %s", seq, shmbus_strerror(rv));
      return -1;
    }
    p->efull++;
    if (atomic_load(&b->abort))
      return -1;
    sched_yield();
  }
  p->sent++;
  if (b->bursts)
    atomic_fetch_add(&b->committed, 1);
  if (rv == 1)
    st_wake(p);
  return 0;
}

/* Bursts: waits until every sleeper has read all that is committed now.
 * It polls hard at first, so that the next commit follows the last read
 * closely: right when the sleeper finds the ring empty and arms its bit. */
static void st_wait_for_sleepers(struct st_bus *b) {
  uint64_t target = atomic_load(&b->committed);
  unsigned spins = 0;
  int i;
  for (i = 0; i < b->n_sleepers; i++)
    while (atomic_load(&b->sleepers[i]->progress) < target && !atomic_load(&b->abort)) {
      if (++spins < 20000)
        shmbus__cpu_relax();
      else
        sched_yield();
    }
}

static void *st_pub_main(void *arg) {
  struct st_pub *p = arg;
  struct st_bus *b = p->bus;
  unsigned char buf[ST_MAX_CAP];
  bool prefilled = false;
  uint64_t seq;

  pthread_barrier_wait(&b->start);
  for (seq = 0; seq < b->per_pub || atomic_load(&b->hold); seq++) {
    if (atomic_load(&b->abort) || st_publish(p, seq, buf, prefilled) < 0)
      break;
    prefilled = false;
    /* Bursts of 1, 2, 3 and 4 messages, over and over; the first message
     * of the next one is built before waiting, to commit it at once. */
    if (b->bursts && (seq % 10 == 0 || seq % 10 == 2 || seq % 10 == 5 || seq % 10 == 9)) {
      if (!p->loan) {
        tu_fill(buf, st_len(b->rg.ring.slot_capacity, p->idx, seq + 1), p->idx, seq + 1);
        prefilled = true;
      }
      st_wait_for_sleepers(b);
    }
  }
  atomic_fetch_add(&b->pubs_done, 1);
  return NULL;
}

/* ---- subscribers -------------------------------------------------------- */

/* Checks one delivered message against everything the test knows. */
static int st_check(struct st_sub *s, const unsigned char *buf, size_t len,
                    const struct shmbus_msg_info *info) {
  struct st_bus *b = s->bus;
  uint32_t cap = b->rg.ring.slot_capacity;
  uint32_t pub;
  uint64_t seq;

  if (tu_check(buf, len, &pub, &seq) != 0) {
    st_fail(b, s->err, "checksum error at ring seq %" PRIu64 " (len %zu)", info->seq, len);
    return -1;
  }
  if (pub >= (uint32_t)b->n_pubs || len != st_len(cap, pub, seq) || info->len != len) {
    st_fail(b, s->err, "ring seq %" PRIu64 ": pub %u seq %" PRIu64 " with length %zu (info %u)",
            info->seq, pub, seq, len, info->len);
    return -1;
  }
  if (info->pub_id != ST_PUB_ID(pub) || info->ts_ns != st_ts(pub, seq)) {
    st_fail(b, s->err,
            "ring seq %" PRIu64 ": payload of pub %u seq %" PRIu64
            " came with pub_id %u ts %#" PRIx64 " (expected %u, %#" PRIx64 ")",
            info->seq, pub, seq, info->pub_id, info->ts_ns, ST_PUB_ID(pub), st_ts(pub, seq));
    return -1;
  }
  if (info->seq < s->joined || (s->have_seq && info->seq <= s->last_seq) ||
      s->sub.cursor != info->seq + 1) {
    st_fail(b, s->err, "ring seq %" PRIu64 " out of order (last %" PRIu64 ", cursor %" PRIu64 ")",
            info->seq, s->last_seq, s->sub.cursor);
    return -1;
  }
  if (s->flags & ST_RELIABLE) {
    /* Every seq from the join on, every message of every publisher, in
     * order: the next ring seq, and each publisher's next sequence (from 0
     * for a subscriber that was there before the start). */
    bool first = !s->seen[pub] && !s->from_start;
    if (info->seq != s->joined + s->received || (!first && seq != s->next[pub])) {
      st_fail(b, s->err,
              "reliable: got ring seq %" PRIu64 " pub %u seq %" PRIu64 ", expected %" PRIu64
              " / %" PRIu64,
              info->seq, pub, seq, s->joined + s->received, s->next[pub]);
      return -1;
    }
  } else if (seq < s->next[pub]) {
    st_fail(b, s->err, "pub %u seq %" PRIu64 " after %" PRIu64, pub, seq, s->next[pub]);
    return -1;
  }
  s->seen[pub] = true;
  s->next[pub] = seq + 1;
  s->got[pub]++;
  s->received++;
  s->have_seq = true;
  s->last_seq = info->seq;
  return 1;
}

/* Reads one message. Returns 1 when one was delivered (and checked), 2
 * when an in-place read was overrun (discarded, counted lost), 0 when
 * there is nothing to read, -1 on failure (recorded). */
static int st_read(struct st_sub *s, unsigned char *buf) {
  struct st_bus *b = s->bus;
  uint32_t cap = b->rg.ring.slot_capacity;
  uint64_t lost_before = s->sub.lost;
  struct shmbus_msg_info info;
  size_t len;
  int rv;

  if (s->flags & ST_INPLACE) {
    struct shmbus__ring_view v;
    rv = shmbus__ring_view_begin(&s->sub, &v);
    if (rv == -EAGAIN)
      return 0;
    if (rv != 0 || v.info.len > cap || v.info.seq != s->sub.cursor) {
      st_fail(b, s->err, "view_begin: %s (len %u)", shmbus_strerror(rv), v.info.len);
      return -1;
    }
    if (v.info.seq % 8 == 0) {
      /* A slow reader, now and then: it gives the CPU away halfway
       * through, so publishers overwrite what it reads and view_end must
       * tell. */
      size_t half = v.info.len / 2;
      st_copy_view(buf, v.data, half);
      sched_yield();
      st_copy_view(buf + half, (const unsigned char *)v.data + half, v.info.len - half);
    } else {
      st_copy_view(buf, v.data, v.info.len);
    }
    info = v.info;
    len = v.info.len;
    rv = shmbus__ring_view_end(&s->sub, &v);
    if (rv == SHMBUS_EOVERRUN) {
      /* Overwritten while read: the bytes are not to be trusted (and are
       * not looked at); the seq must now count as lost. */
      if ((s->flags & ST_RELIABLE) || s->sub.lost <= lost_before || s->sub.cursor <= info.seq) {
        st_fail(b, s->err, "overrun at seq %" PRIu64 " (reliable %d, lost %" PRIu64 ")", info.seq,
                !!(s->flags & ST_RELIABLE), s->sub.lost);
        return -1;
      }
      s->overruns++;
      return 2;
    }
    if (rv != 0) {
      st_fail(b, s->err, "view_end: %s", shmbus_strerror(rv));
      return -1;
    }
  } else {
    rv = shmbus__ring_recv(&s->sub, buf, cap, &info);
    if (rv == -EAGAIN)
      return 0;
    if (rv < 0) {
      st_fail(b, s->err, "recv: %s", shmbus_strerror(rv));
      return -1;
    }
    len = (size_t)rv;
  }
  if ((s->flags & ST_RELIABLE) && s->sub.lost != 0) {
    st_fail(b, s->err, "reliable subscriber lost %" PRIu64, s->sub.lost);
    return -1;
  }
  return st_check(s, buf, len, &info);
}

/* Every seq since the join counted once, as received or lost. */
static int st_accounting(struct st_sub *s) {
  if (s->sub.received != s->received ||
      s->sub.received + s->sub.lost != s->sub.cursor - s->joined) {
    st_fail(s->bus, s->err,
            "accounting: received %" PRIu64 " (checked %" PRIu64 ") + lost %" PRIu64
            " != cursor %" PRIu64 " - joined %" PRIu64,
            s->sub.received, s->received, s->sub.lost, s->sub.cursor, s->joined);
    return -1;
  }
  return 0;
}

/* Blocks until a publisher (or the main thread, on abort) writes our pipe. */
static void st_block(struct st_sub *s) {
  char tmp[64];
  ssize_t n;

  if (s->flags & ST_THRESHOLD) {
    /* The threshold sleep's timer: 1 ms without a byte ends it. */
    struct pollfd pfd = {s->bus->wake_rd[s->sub.index], POLLIN, 0};
    int rv;
    do
      rv = poll(&pfd, 1, 1);
    while (rv < 0 && errno == EINTR);
    if (rv < 0)
      st_fail(s->bus, s->err, "poll wake-up pipe: %d", errno);
    if (rv == 0) {
      s->timer_blocks++;
      return;
    }
  }
  s->blocks++;
  do
    n = read(s->bus->wake_rd[s->sub.index], tmp, sizeof(tmp));
  while (n < 0 && errno == EINTR);
  if (n <= 0)
    st_fail(s->bus, s->err, "read wake-up pipe: %zd", n);
}

/* Arms the sleep protocol, with the wake threshold for ST_THRESHOLD. */
static bool st_arm(struct st_sub *s) {
  return shmbus__ring_sub_arm_after(&s->sub, s->flags & ST_THRESHOLD ? ST_WAKE_AFTER : 1);
}

static void *st_sub_main(void *arg) {
  struct st_sub *s = arg;
  struct st_bus *b = s->bus;
  unsigned char buf[ST_MAX_CAP];
  int rv;

  if (s->flags & ST_SLEEPER) {
    /* Nothing is published before the barrier: arming must succeed, and
     * the first commit after it must wake us. */
    s->armed_first = st_arm(s);
    if (!s->armed_first)
      st_fail(b, s->err, "sleep_prepare on an empty ring returned false");
  }
  pthread_barrier_wait(&b->start);
  if (s->armed_first)
    st_block(s);
  for (;;) {
    /* Publishers raise pubs_done after their last commit: an empty read
     * after seeing it means the ring is drained. */
    bool done = atomic_load(&b->pubs_done) == b->n_pubs;

    if (atomic_load(&b->abort))
      break;
    rv = st_read(s, buf);
    if (rv < 0 || st_accounting(s) < 0)
      break;
    if (rv > 0) {
      if (s->flags & ST_SLEEPER) {
        atomic_store(&s->progress, s->received);
        if (s->received == s->expect)
          break;
      }
      continue;
    }
    if (s->flags & ST_SLEEPER) {
      /* A sleeper stops only when it has everything: if a wake-up were
       * lost, it would block here for good and the test would time out. */
      if (st_arm(s))
        st_block(s);
    } else if (done) {
      break;
    } else {
      sched_yield();
    }
  }
  return NULL;
}

/* ---- the harness -------------------------------------------------------- */

struct st_cfg {
  uint32_t slots;
  uint32_t cap;
  const char *pubs; /* one char per publisher: 'c' copy, 'l' loan */
  uint64_t per_pub;
  int n_subs;
  unsigned subs[ST_MAX_SUBS]; /* flags per subscriber */
  bool bursts;
};

struct st_run {
  struct st_bus bus;
  struct st_pub pubs[ST_MAX_PUBS];
  struct st_sub subs[ST_MAX_SUBS];
  uint64_t head;     /* head at the end */
  uint64_t sent;     /* messages committed, all publishers */
  uint64_t efull;    /* EFULL results, all publishers */
  uint64_t wakes;    /* wake-ups written */
  uint64_t deferred; /* sleepers left to their timers (ST_THRESHOLD) */
  uint64_t overtaken;
};

static void st_bus_init(struct st_bus *b, uint32_t slots, uint32_t cap, int n_pubs,
                        uint64_t per_pub) {
  int i;
  int fds[2];

  memset(b, 0, sizeof(*b));
  cr_assert_leq(cap, ST_MAX_CAP);
  tu_region(&b->rg, slots, cap, ST_MAX_SUBS, ST_MAX_PUBS);
  b->n_pubs = n_pubs;
  b->per_pub = per_pub;
  atomic_init(&b->pubs_done, 0);
  atomic_init(&b->abort, false);
  atomic_init(&b->hold, false);
  atomic_init(&b->wake_errors, 0);
  for (i = 0; i < ST_MAX_SUBS; i++) {
    atomic_init(&b->wakes_to[i], 0);
    st_pipe(fds);
    b->wake_rd[i] = fds[0];
    b->wake_wr[i] = fds[1];
  }
}

static void st_bus_close(struct st_bus *b) {
  int i;
  for (i = 0; i < ST_MAX_SUBS; i++) {
    close(b->wake_rd[i]);
    close(b->wake_wr[i]);
  }
  shmbus__region_close(&b->rg);
}

static void st_sub_init(struct st_sub *s, struct st_bus *b, unsigned flags) {
  int rv;
  memset(s, 0, sizeof(*s));
  s->bus = b;
  s->flags = flags;
  rv = shmbus__ring_sub_attach(&b->rg.ring, &s->sub, (flags & ST_RELIABLE) != 0, 0,
                               (uint32_t)getpid());
  cr_assert_eq(rv, 0, "sub_attach: %s", shmbus_strerror(rv));
  cr_assert_lt(s->sub.index, ST_MAX_SUBS);
  s->attached = true;
  s->joined = s->sub.cursor;
  cr_assert_eq(shmbus__load_relaxed(&s->sub.rec->joined), s->joined);
}

/* Runs a whole configuration: attaches everyone, starts them together,
 * joins them, and checks what must hold for any mix. */
static void st_run(const struct st_cfg *cfg, struct st_run *run) {
  struct st_bus *b = &run->bus;
  pthread_t pt[ST_MAX_PUBS];
  pthread_t ts[ST_MAX_SUBS];
  int n_pubs = (int)strlen(cfg->pubs);
  int i, p, rv;

  cr_assert(n_pubs >= 1 && n_pubs <= ST_MAX_PUBS && cfg->n_subs <= ST_MAX_SUBS);
  memset(run, 0, sizeof(*run));
  st_bus_init(b, cfg->slots, cfg->cap, n_pubs, cfg->per_pub);
  b->bursts = cfg->bursts;
  atomic_init(&b->committed, 0);
  cr_assert_eq(pthread_barrier_init(&b->start, NULL, (unsigned)(n_pubs + cfg->n_subs)), 0);

  for (i = 0; i < cfg->n_subs; i++) {
    struct st_sub *s = &run->subs[i];
    st_sub_init(s, b, cfg->subs[i]);
    s->from_start = true;
    s->expect = (uint64_t)n_pubs * cfg->per_pub;
    cr_assert_eq(s->joined, 0);
    atomic_init(&s->progress, 0);
    if (s->flags & ST_SLEEPER) {
      cr_assert(s->flags & ST_RELIABLE, "sleepers stop after all messages: reliable only");
      b->sleepers[b->n_sleepers++] = s;
    }
  }
  for (p = 0; p < n_pubs; p++) {
    struct st_pub *pp = &run->pubs[p];
    pp->bus = b;
    pp->idx = (uint32_t)p;
    pp->loan = cfg->pubs[p] == 'l';
    rv = shmbus__ring_pub_attach(&b->rg.ring, &pp->pub, ST_PUB_ID(p), (uint32_t)getpid());
    cr_assert_eq(rv, 0, "pub_attach: %s", shmbus_strerror(rv));
  }

  for (i = 0; i < cfg->n_subs; i++)
    cr_assert_eq(pthread_create(&ts[i], NULL, st_sub_main, &run->subs[i]), 0);
  for (p = 0; p < n_pubs; p++)
    cr_assert_eq(pthread_create(&pt[p], NULL, st_pub_main, &run->pubs[p]), 0);
  for (p = 0; p < n_pubs; p++)
    pthread_join(pt[p], NULL);
  if (atomic_load(&b->abort)) {
    /* Unblock sleepers so that the error can be reported. */
    for (i = 0; i < ST_MAX_SUBS; i++)
      (void)!write(b->wake_wr[i], "a", 1);
  }
  for (i = 0; i < cfg->n_subs; i++)
    pthread_join(ts[i], NULL);

  for (p = 0; p < n_pubs; p++)
    cr_expect_eq(run->pubs[p].err[0], '\0', "publisher %d: %s", p, run->pubs[p].err);
  for (i = 0; i < cfg->n_subs; i++)
    cr_expect_eq(run->subs[i].err[0], '\0', "subscriber %d: %s", i, run->subs[i].err);
  cr_assert(!atomic_load(&b->abort), "a thread failed (see above)");
  cr_assert_eq(atomic_load(&b->wake_errors), 0, "writing a wake-up pipe failed");

  run->head = shmbus__load_relaxed(&b->rg.ring.hdr->head);
  for (p = 0; p < n_pubs; p++) {
    struct st_pub *pp = &run->pubs[p];
    cr_assert_eq(pp->sent, cfg->per_pub, "publisher %d sent %" PRIu64, p, pp->sent);
    cr_assert_eq(shmbus__load_relaxed(&pp->pub.rec->published), pp->sent);
    cr_assert_eq(shmbus__load_relaxed(&pp->pub.rec->inflight), SHMBUS__INFLIGHT_IDLE);
    run->sent += pp->sent;
    run->efull += pp->efull;
    run->wakes += pp->wakes;
    run->deferred += pp->deferred;
    run->overtaken += pp->pub.overtaken;
  }
  /* Every claim of a seq was committed, or lost to a faster publisher. */
  cr_assert_eq(run->sent + run->overtaken, run->head,
               "sent %" PRIu64 " + overtaken %" PRIu64 " != head %" PRIu64, run->sent,
               run->overtaken, run->head);

  for (i = 0; i < cfg->n_subs; i++) {
    struct st_sub *s = &run->subs[i];
    uint64_t total = 0;
    cr_assert_eq(s->sub.cursor, run->head,
                 "subscriber %d did not drain: cursor %" PRIu64 ", head %" PRIu64, i, s->sub.cursor,
                 run->head);
    cr_assert_eq(s->sub.received + s->sub.lost, run->head - s->joined,
                 "subscriber %d: received %" PRIu64 " + lost %" PRIu64 " != %" PRIu64, i,
                 s->sub.received, s->sub.lost, run->head - s->joined);
    cr_assert_leq(s->sub.received, run->sent);
    for (p = 0; p < n_pubs; p++)
      total += s->got[p];
    cr_assert_eq(total, s->sub.received);
    cr_assert_eq(shmbus__load_relaxed(&s->sub.rec->received), s->sub.received);
    cr_assert_eq(shmbus__load_relaxed(&s->sub.rec->lost), s->sub.lost);
    cr_assert_eq(shmbus__load_relaxed(&s->sub.rec->cursor), s->sub.cursor);
    if (s->flags & ST_RELIABLE) {
      cr_assert_eq(s->sub.lost, 0, "reliable subscriber %d lost %" PRIu64, i, s->sub.lost);
      for (p = 0; p < n_pubs; p++)
        cr_assert_eq(s->got[p], cfg->per_pub,
                     "reliable subscriber %d got %" PRIu64 " of publisher %d", i, s->got[p], p);
    }
    if (s->flags & ST_SLEEPER)
      cr_assert_geq(s->blocks, 1);
  }
}

static void st_run_close(struct st_run *run) {
  int i;
  for (i = 0; i < ST_MAX_SUBS; i++)
    if (run->subs[i].attached)
      shmbus__ring_sub_detach(&run->subs[i].sub);
  for (i = 0; i < ST_MAX_PUBS; i++)
    if (run->pubs[i].bus != NULL)
      shmbus__ring_pub_detach(&run->pubs[i].pub);
  pthread_barrier_destroy(&run->bus.start);
  st_bus_close(&run->bus);
}

static void st_log(const char *name, const struct st_run *run, int n_subs) {
  int i;
  cr_log_info("%s: head %" PRIu64 ", sent %" PRIu64 ", overtaken %" PRIu64 ", efull %" PRIu64
              ", wakes %" PRIu64 ", deferred %" PRIu64,
              name, run->head, run->sent, run->overtaken, run->efull, run->wakes, run->deferred);
  for (i = 0; i < n_subs; i++)
    cr_log_info("%s: sub %d flags %u: received %" PRIu64 " lost %" PRIu64 " overruns %" PRIu64
                " blocks %" PRIu64 " (timer %" PRIu64 ")",
                name, i, run->subs[i].flags, run->subs[i].sub.received, run->subs[i].sub.lost,
                run->subs[i].overruns, run->subs[i].blocks, run->subs[i].timer_blocks);
}

/* ---- tests: lossy ------------------------------------------------------- */

static struct st_run st_the_run; /* too large for a test's stack */

Test(stress, lossy_3_publishers_3_subscribers, .timeout = ST_TIMEOUT) {
  struct st_cfg cfg = {.slots = 64,
                       .cap = 200,
                       .pubs = "ccl",
                       .per_pub = 750000 / ST_SCALE,
                       .n_subs = 3,
                       .subs = {0, 0, ST_INPLACE}};
  st_run(&cfg, &st_the_run);
  st_log("3x3", &st_the_run, cfg.n_subs);
  st_run_close(&st_the_run);
}

/* A small ring and one fast publisher: subscribers are lapped and in-place
 * reads overrun, and every loss must still be counted exactly. */
Test(stress, lossy_1_publisher_4_subscribers_small_ring, .timeout = ST_TIMEOUT) {
  struct st_cfg cfg = {.slots = 8,
                       .cap = 256,
                       .pubs = "l",
                       .per_pub = 1500000 / ST_SCALE,
                       .n_subs = 4,
                       .subs = {0, 0, ST_INPLACE, ST_INPLACE}};
  st_run(&cfg, &st_the_run);
  st_log("1x4", &st_the_run, cfg.n_subs);
  st_run_close(&st_the_run);
}

Test(stress, lossy_4_publishers_1_subscriber, .timeout = ST_TIMEOUT) {
  struct st_cfg cfg = {.slots = 16,
                       .cap = 120,
                       .pubs = "clcl",
                       .per_pub = 500000 / ST_SCALE,
                       .n_subs = 1,
                       .subs = {0}};
  st_run(&cfg, &st_the_run);
  st_log("4x1", &st_the_run, cfg.n_subs);
  st_run_close(&st_the_run);
}

/* Regression: shmbus__ring_recv once loaded the slot's pub_id and ts_ns
 * after the seqlock re-check, so a publisher lapping the reader in between
 * paired an intact payload with the next message's publisher id and
 * timestamp (seen: payload of pub 0 seq 6122 with the timestamp of its seq
 * 6503). The header is now read before the re-check, like the payload. */
Test(stress, recv_info_belongs_to_its_payload, .timeout = ST_TIMEOUT) {
  struct st_cfg cfg = {.slots = 2,
                       .cap = 24,
                       .pubs = "cc",
                       .per_pub = 1000000 / ST_SCALE,
                       .n_subs = 2,
                       .subs = {0, 0}};
  st_run(&cfg, &st_the_run);
  st_log("info", &st_the_run, cfg.n_subs);
  st_run_close(&st_the_run);
}

/* ---- tests: reliable ---------------------------------------------------- */

/* Reliable and lossy subscribers, copying and in place, on a 16-slot ring
 * with copying and zero-copy publishers: the reliable ones get every
 * message of every publisher exactly once, in order, and hold the
 * publishers back (EFULL) while doing so. */
Test(stress, reliable_and_lossy_mix, .timeout = ST_TIMEOUT) {
  struct st_cfg cfg = {.slots = 16,
                       .cap = 200,
                       .pubs = "clc",
                       .per_pub = 400000 / ST_SCALE,
                       .n_subs = 4,
                       .subs = {ST_RELIABLE, ST_RELIABLE | ST_INPLACE, 0, ST_INPLACE}};
  st_run(&cfg, &st_the_run);
  st_log("mix", &st_the_run, cfg.n_subs);
  cr_assert_gt(st_the_run.efull, 0, "a 16-slot ring never filled up behind reliable readers");
  cr_assert_eq(st_the_run.overtaken, 0, "no claim may be overtaken behind reliable readers");
  cr_assert_eq(st_the_run.head, st_the_run.sent);
  st_run_close(&st_the_run);
}

Test(stress, reliable_4_publishers_2_subscribers, .timeout = ST_TIMEOUT) {
  struct st_cfg cfg = {.slots = 16,
                       .cap = 64,
                       .pubs = "llcc",
                       .per_pub = 250000 / ST_SCALE,
                       .n_subs = 2,
                       .subs = {ST_RELIABLE | ST_INPLACE, ST_RELIABLE}};
  st_run(&cfg, &st_the_run);
  st_log("4x2r", &st_the_run, cfg.n_subs);
  cr_assert_gt(st_the_run.efull, 0);
  cr_assert_eq(st_the_run.head, st_the_run.sent);
  st_run_close(&st_the_run);
}

/* ---- tests: sleep protocol ---------------------------------------------- */

/* Reliable subscribers that block on a pipe whenever the ring is empty
 * (after shmbus__ring_sub_arm), publishers that wake them when a
 * commit returns 1. A sleeper stops only when it has every message, so a
 * lost wake-up at the end hangs it and the test times out. A lossy spinner
 * shares the ring. */
static void st_sleep_test_flags(const char *name, const char *pubs, bool bursts, uint64_t per_pub,
                                unsigned extra) {
  /* Two sleepers; with several publishers, also a lossy spinner. */
  struct st_cfg cfg = {
      .slots = 16,
      .cap = 100,
      .pubs = pubs,
      .per_pub = per_pub,
      .n_subs = strlen(pubs) > 1 ? 3 : 2,
      .subs = {ST_RELIABLE | ST_SLEEPER | extra, ST_RELIABLE | ST_SLEEPER | ST_INPLACE | extra, 0},
      .bursts = bursts};
  int i;
  st_run(&cfg, &st_the_run);
  st_log(name, &st_the_run, cfg.n_subs);
  for (i = 0; i < 2; i++) {
    struct st_sub *s = &st_the_run.subs[i];
    /* Every block ended on a byte that a publisher wrote for this very
     * subscriber after taking its bit, and followed an armed bit. */
    cr_assert_geq(s->blocks + s->timer_blocks, 1);
    cr_assert_leq(s->blocks, atomic_load(&st_the_run.bus.wakes_to[s->sub.index]));
    cr_assert_geq(shmbus__load_relaxed(&s->sub.rec->sleeps), s->blocks);
  }
  /* The lossy spinner never armed its bit: nobody woke it. */
  if (cfg.n_subs == 3)
    cr_assert_eq(atomic_load(&st_the_run.bus.wakes_to[st_the_run.subs[2].sub.index]), 0);
  st_run_close(&st_the_run);
}

static void st_sleep_test(const char *name, const char *pubs, bool bursts, uint64_t per_pub) {
  st_sleep_test_flags(name, pubs, bursts, per_pub, 0);
}

/* Sleepers with a wake threshold (ST_WAKE_AFTER messages, else a 1 ms
 * timer) and three publishers that defer them below it: every message is
 * still received, in order, exactly once (reliable), and every byte
 * written to a sleeper's pipe followed its armed bit. */
Test(stress, sleepers_with_a_wake_threshold_get_everything, .timeout = ST_TIMEOUT) {
  st_sleep_test_flags("threshold", "clc", false, 150000 / ST_SCALE, ST_THRESHOLD);
}

Test(stress, sleepers_never_miss_a_wake_up, .timeout = ST_TIMEOUT) {
  st_sleep_test("sleep", "clc", false, 150000 / ST_SCALE);
}

/* One publisher in bursts of 1 to 4 messages, waiting after each burst
 * until both sleepers have read everything, then starting the next at
 * once: tens of thousands of moments where a commit races with a sleeper
 * arming its bit, with no later commit to make up for a lost wake-up. A
 * single one hangs the test. */
Test(stress, sleepers_in_bursts_never_miss_a_wake_up, .timeout = ST_TIMEOUT) {
  st_sleep_test("bursts", "c", true, 120000 / ST_SCALE);
}

/* ---- tests: late reliable joiners --------------------------------------- */

struct st_joiner {
  struct st_bus *bus;
  int rounds;
  uint64_t per_round;
  uint64_t spacing; /* head must advance this much between two joins */
  uint64_t joins;
  uint64_t received;
  uint64_t max_joined;
  char err[512];
};

/* Joins as a reliable subscriber while publishers run, reads per_round
 * messages, leaves, and does it again: each time, nothing may be lost from
 * the join point on. Every third round asks for history. */
static void *st_joiner_main(void *arg) {
  struct st_joiner *j = arg;
  struct st_bus *b = j->bus;
  struct shmbus__ring *r = &b->rg.ring;
  unsigned char buf[ST_MAX_CAP];
  uint64_t mark = 0;
  int round;

  pthread_barrier_wait(&b->start);
  for (round = 0; round < j->rounds && !atomic_load(&b->abort); round++) {
    struct st_sub s;
    uint32_t history = round % 3 == 2 ? r->slot_count / 2 : 0;
    int rv;

    /* Join at a different point each time, while publishing goes on. */
    while (shmbus__load_relaxed(&r->hdr->head) < mark + j->spacing && !atomic_load(&b->abort))
      sched_yield();
    memset(&s, 0, sizeof(s));
    s.bus = b;
    s.flags = ST_RELIABLE | (round % 2 ? ST_INPLACE : 0);
    rv = shmbus__ring_sub_attach(r, &s.sub, true, history, (uint32_t)getpid());
    if (rv != 0) {
      st_fail(b, j->err, "round %d: sub_attach: %s", round, shmbus_strerror(rv));
      break;
    }
    s.joined = s.sub.cursor;
    if (s.joined > j->max_joined)
      j->max_joined = s.joined;
    j->joins++;
    while (s.received < j->per_round && !atomic_load(&b->abort)) {
      rv = st_read(&s, buf);
      if (rv < 0 || st_accounting(&s) < 0)
        break;
      if (rv == 0)
        sched_yield();
    }
    if (s.err[0] == '\0' && s.sub.lost != 0)
      st_fail(b, s.err, "lost %" PRIu64, s.sub.lost);
    if (s.err[0] != '\0' && j->err[0] == '\0')
      snprintf(j->err, sizeof(j->err), "round %d (joined at %" PRIu64 ", history %u): %.256s",
               round, s.joined, history, s.err);
    j->received += s.received;
    mark = s.sub.cursor;
    shmbus__ring_sub_detach(&s.sub);
  }
  /* Let the publishers finish their last per_pub messages. */
  atomic_store(&b->hold, false);
  return NULL;
}

/* Publishers run from before the first join to after the last, with a
 * lossy subscriber alone at first (so they start in fetch-add mode, the
 * join races with claims) and reliable joiners coming and going. */
Test(stress, late_reliable_joiners_lose_nothing, .timeout = ST_TIMEOUT) {
  struct st_run *run = &st_the_run;
  struct st_bus *b = &run->bus;
  struct st_joiner j;
  pthread_t pt[2], tl, tj;
  struct st_sub *l = &run->subs[0];
  uint64_t head, sent = 0, overtaken = 0;
  int p, rv;

  memset(run, 0, sizeof(*run));
  st_bus_init(b, 32, 160, 2, 100000 / ST_SCALE);
  atomic_store(&b->hold, true);
  cr_assert_eq(pthread_barrier_init(&b->start, NULL, 4), 0);
  st_sub_init(l, b, 0);
  l->from_start = true;
  for (p = 0; p < 2; p++) {
    run->pubs[p].bus = b;
    run->pubs[p].idx = (uint32_t)p;
    run->pubs[p].loan = p == 1;
    rv = shmbus__ring_pub_attach(&b->rg.ring, &run->pubs[p].pub, ST_PUB_ID(p), 1);
    cr_assert_eq(rv, 0);
  }
  memset(&j, 0, sizeof(j));
  j.bus = b;
  j.rounds = ST_TSAN ? 30 : 150;
  j.per_round = 2000 / (ST_TSAN ? 4 : 1);
  j.spacing = 500;

  cr_assert_eq(pthread_create(&tl, NULL, st_sub_main, l), 0);
  cr_assert_eq(pthread_create(&tj, NULL, st_joiner_main, &j), 0);
  for (p = 0; p < 2; p++)
    cr_assert_eq(pthread_create(&pt[p], NULL, st_pub_main, &run->pubs[p]), 0);
  pthread_join(tj, NULL);
  for (p = 0; p < 2; p++)
    pthread_join(pt[p], NULL);
  pthread_join(tl, NULL);

  cr_expect_eq(j.err[0], '\0', "joiner: %s", j.err);
  cr_expect_eq(l->err[0], '\0', "lossy subscriber: %s", l->err);
  for (p = 0; p < 2; p++)
    cr_expect_eq(run->pubs[p].err[0], '\0', "publisher %d: %s", p, run->pubs[p].err);
  cr_assert(!atomic_load(&b->abort));
  cr_assert_eq(j.joins, (uint64_t)j.rounds);
  cr_assert_eq(j.received, (uint64_t)j.rounds * j.per_round);
  cr_assert_gt(j.max_joined, 0, "every join happened before publishing started");

  head = shmbus__load_relaxed(&b->rg.ring.hdr->head);
  for (p = 0; p < 2; p++) {
    sent += run->pubs[p].sent;
    overtaken += run->pubs[p].pub.overtaken;
    cr_assert_geq(run->pubs[p].sent, b->per_pub);
  }
  cr_assert_eq(sent + overtaken, head);
  cr_assert_eq(l->sub.cursor, head);
  cr_assert_eq(l->sub.received + l->sub.lost, head - l->joined);
  cr_assert_leq(l->sub.received, sent);
  cr_log_info("joiners: %d rounds, head %" PRIu64 ", overtaken %" PRIu64 ", lossy received %" PRIu64
              " lost %" PRIu64,
              j.rounds, head, overtaken, l->sub.received, l->sub.lost);
  /* Every joiner left: its record is free and nobody holds publishers. */
  for (p = 0; p < ST_MAX_SUBS; p++)
    if ((uint32_t)p != l->sub.index)
      cr_assert_eq(shmbus__load_relaxed(&b->rg.ring.subs[p].state), SHMBUS__SUB_FREE);
  st_run_close(run);
}

/* ---- a subscriber that joins in the instant of a claim, and never reads --- */

struct st_forger {
  struct shmbus__ring *ring;
  uint32_t index;
  atomic_bool stop;
  atomic_bool parked; /* the record stays RELIABLE at cursor 0 for good */
};

static atomic_bool st_race_waiting;
static struct st_forger *st_the_forger;

/* The ring's backoff runs only while a publisher waits (for a reliable
 * joiner here): it tells the forger, and holds the publisher until the
 * forger froze its record reliable, so that every rescan from now on sees
 * a subscriber that will never read. */
static void st_race_backoff(unsigned spins) {
  atomic_store(&st_race_waiting, true);
  while (!atomic_load(&st_the_forger->parked) && !atomic_load(&st_the_forger->stop))
    shmbus__cpu_relax();
  shmbus__spin_backoff(spins);
}

/* What a hostile subscriber can do with its read-write control file: flip
 * its record between lossy and reliable-at-seq-0, bumping gen each time as
 * a joiner does, until a publisher claims in between and waits for it;
 * then stay reliable and never read. */
static void *st_forger_main(void *arg) {
  struct st_forger *f = arg;
  struct shmbus__sub_rec *rec = &f->ring->subs[f->index];

  while (!atomic_load(&f->stop)) {
    shmbus__store_relaxed(&rec->cursor, 0);
    shmbus__store_release(&rec->state, SHMBUS__SUB_RELIABLE);
    (void)shmbus__fetch_add_seq_cst(&f->ring->ctrl->gen, 1);
    if (atomic_load(&st_race_waiting)) {
      atomic_store(&f->parked, true);
      break;
    }
    shmbus__store_release(&rec->state, SHMBUS__SUB_LOSSY);
    (void)shmbus__fetch_add_seq_cst(&f->ring->ctrl->gen, 1);
  }
  return NULL;
}

Test(stress, publisher_waits_for_a_racing_reliable_joiner_only_so_long, .timeout = ST_TIMEOUT) {
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;
  struct st_forger f;
  pthread_t t;
  uint64_t deadline;
  uint64_t tries = 0;
  int after = 0;
  int i;

  tu_region(&rg, 8, 64, 4, 2);
  rg.ring.backoff = st_race_backoff;
  atomic_store(&st_race_waiting, false);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  pub.race_wait_max = 4096;
  cr_assert_eq(shmbus__ring_sub_attach(&rg.ring, &sub, false, 0, 1), 0);
  /* A full lap, so that a reliable cursor at 0 blocks every next claim. */
  for (i = 0; i < 8; i++)
    cr_assert_eq(shmbus__ring_publish(&pub, "lap", 3, 0), 0);
  memset(&f, 0, sizeof(f));
  f.ring = &rg.ring;
  f.index = sub.index;
  st_the_forger = &f;
  cr_assert_eq(pthread_create(&t, NULL, st_forger_main, &f), 0);
  deadline = shmbus__clock_mono_ns() + 10000000000ull;
  /* Publish until the forger parked and a few publishes ran after that:
   * without the bound, the publish that waits when it parks never returns. */
  while (after < 3 && shmbus__clock_mono_ns() < deadline) {
    int rv = shmbus__ring_publish(&pub, "x", 1, 0);
    cr_assert(rv == 0 || rv == SHMBUS_EFULL, "publish: %s", shmbus_strerror(rv));
    tries++;
    if (atomic_load(&f.parked))
      after++;
  }
  atomic_store(&f.stop, true);
  cr_assert_eq(pthread_join(t, NULL), 0);
  if (!atomic_load(&f.parked)) {
    shmbus__region_close(&rg);
    cr_skip_test("the claim race did not happen in 10 s (%" PRIu64 " publishes)", tries);
  }
  cr_assert_geq(pub.race_gave_up, 1u, "the publisher never gave up waiting");
  cr_log_info("claim race after %" PRIu64 " publishes; gave up %" PRIu64 " time(s)", tries,
              pub.race_gave_up);
  shmbus__region_close(&rg);
}
