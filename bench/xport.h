/* xport: the transports shmbus-bench compares, behind one interface.
 *
 * A run has fixed parameters (struct bx_run, set by the parent before it
 * forks). Each process of the run opens one endpoint (struct bx_ep) in a
 * role: the fan-out publisher (BX_PUB) or subscriber number idx (BX_SUB),
 * or side A or B of a ping-pong. An endpoint sends whole messages and
 * delivers received ones to a callback, in one of three wait modes:
 *   BX_EVENT  blocks in the kernel until something arrives;
 *   BX_UV     sleeps in a libuv loop (for shmbus: shmbus_uv_sub_start; for
 *             the others: uv_poll on their descriptor);
 *   BX_SPIN   busy-polls without a syscall where the transport allows.
 *
 * Every message starts with struct bx_hdr; the payload after it is the
 * same filler for every transport. */
#ifndef SHMBUS_BENCH_XPORT_H
#define SHMBUS_BENCH_XPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define BX_MAX_SUBS 64u

/* How long a receiver may hear nothing before it reports a failure, and
 * how long a sender may be held back (a full reliable ring, a full socket
 * or queue) before it does. The sender's is the longer one on purpose: a
 * subscriber that stalls is reported by itself (its idle timeout fires
 * first), and a publisher never gives up at the very moment the receivers
 * it waits for would, which made a run fail with two reports and no
 * telling which side was at fault. */
#define BX_IDLE_TIMEOUT_MS 10000u
#define BX_SEND_TIMEOUT_MS 30000u

enum bx_wait { BX_EVENT, BX_UV, BX_SPIN };
enum bx_role { BX_PUB, BX_SUB, BX_A, BX_B };
enum bx_kind { BX_DATA = 1, BX_END, BX_HELLO, BX_HELLO_ACK };

/* At the start of every message. */
struct bx_hdr {
  uint64_t seq;     /* data: 0, 1, 2, ... per run */
  uint64_t ts_ns;   /* sender's CLOCK_MONOTONIC just before the send call */
  uint64_t total;   /* END: data messages published */
  uint64_t echo_ns; /* ping-pong answer: B's receive time minus the ping's ts_ns */
  uint32_t kind;    /* enum bx_kind */
  uint32_t pad;     /* the cache-line transport's counter */
  int32_t cpu;      /* ping-pong answer: the CPU B received on */
  uint32_t pad2;
};
#define BX_MIN_SIZE ((size_t)sizeof(struct bx_hdr))

/* Flags of a transport. */
#define BX_F_FANOUT 1u     /* has a fan-out (publisher, subscribers) */
#define BX_F_LATENCY 2u    /* has a ping-pong */
#define BX_F_HELLO 4u      /* needs HELLO probes before data (subscriptions propagate late) */
#define BX_F_PUB_FIRST 8u  /* the publisher (A, B: each binds) opens before subscribers */
#define BX_F_SPIN_ONLY 16u /* no way to sleep: busy-polling only */
#define BX_F_STAMPS 32u    /* stamps every message with its send time itself */
#define BX_F_EXIT 64u      /* a child using it ends through exit(): its runtime unregisters */

/* One run's parameters; the parent fills them (and prepare() adds shared
 * resources) before forking, the children only read them. */
struct bx_run {
  unsigned nsubs; /* fan-out: subscriber processes; ping-pong: 1 */
  size_t size;    /* bytes per message, >= BX_MIN_SIZE */
  bool reliable;  /* subscribers hold the publisher back instead of losing messages */
  enum bx_wait wait;
  bool latency;    /* a ping-pong, not a fan-out */
  bool touch;      /* fan-out subscribers read every byte (--touch) */
  unsigned slots;  /* shmbus ring slots; 0: bx_ring_slots's default */
  unsigned id;     /* unique per run: topic and socket names */
  const char *dir; /* a private directory (the bus directory) */
  int fds[2 * BX_MAX_SUBS + 2];
  unsigned nfds;
  void *shared; /* MAP_SHARED memory made by prepare() */
  size_t shared_len;
};

/* A received message. ts_ns: the transport's own send timestamp
 * (CLOCK_MONOTONIC) if it stamps messages (BX_F_STAMPS), else 0. */
typedef void (*bx_msg_fn)(void *ctx, const void *data, size_t len, uint64_t ts_ns);

struct bx_ep;

struct bx_ops {
  const char *name;
  unsigned flags;
  /* The largest message it carries (0: any size); bigger rows are skipped
   * with size_note. */
  size_t max_size;
  const char *size_note;
  /* NULL if usable, else why it is skipped. */
  const char *(*missing)(void);
  /* In the parent before forking / after the run. May be NULL. */
  int (*prepare)(struct bx_run *run);
  void (*unprepare)(struct bx_run *run);
  /* In the child. */
  int (*open)(struct bx_ep *ep);
  /* Sends one message (to every subscriber). A lossy publisher may drop it
   * for a subscriber that has no room, unless `must` (END messages).
   * Returns 0 or a negative error. */
  int (*send)(struct bx_ep *ep, const void *data, size_t len, bool must);
  /* Delivers what has arrived, without blocking; returns how many
   * messages it delivered (0: none waiting) or a negative error. */
  int (*poll)(struct bx_ep *ep, bx_msg_fn fn, void *ctx);
  /* Blocks until something arrives (delivering it, or leaving it for the
   * next poll), at most timeout_ms. 0, -ETIMEDOUT or an error. NULL for
   * BX_F_SPIN_ONLY. */
  int (*wait)(struct bx_ep *ep, bx_msg_fn fn, void *ctx, int timeout_ms);
  /* The descriptor libuv polls for readability, then poll() drains. */
  int (*fd)(struct bx_ep *ep);
  /* Instead of fd(): the transport's own libuv integration. */
  int (*uv_start)(struct bx_ep *ep, uv_loop_t *loop, bx_msg_fn fn, void *ctx);
  /* Messages this receiving endpoint counts as lost itself, or -1 when
   * the transport does not count (then the sequence gaps are the loss). */
  int64_t (*lost)(struct bx_ep *ep);
  void (*close)(struct bx_ep *ep);
};

struct bx_ep {
  const struct bx_ops *ops;
  const struct bx_run *run;
  enum bx_role role;
  unsigned idx;
  void *impl;
  /* The generic receive loop's state. */
  uv_loop_t *loop;
  uv_poll_t poll_h;
  uv_timer_t timer_h;
  bx_msg_fn fn;
  void *ctx;
  int error;
};

/* The peers defined in xport.c (on Windows: the event and cache-line
 * ping-pongs are platform/xport_windows.c's); shmbus itself is bx_shmbus
 * (xport_shmbus.h). */
extern const struct bx_ops bx_uds, bx_zmq, bx_efd, bx_line;
/* Windows only (platform/xport_windows.c): the named-pipe ping-pong, the
 * counterpart there of the unix socket's. */
extern const struct bx_ops bx_pipe;

/* The peers of --peers in the order of their rows, NULL-terminated: each
 * platform's list (xport.c on Linux, platform/xport_windows.c on
 * Windows). A peer whose flags lack the subcommand's is left out; one
 * that is missing() gets a skipped row with its note. */
extern const struct bx_ops *const bx_peers[];

/* Opens ep in `role` (after run and ops are set) and, for BX_UV, starts
 * delivering to fn from a loop of its own. */
/* The slots of shmbus's ring (and the depth of iceoryx's queues) for
 * messages of `size` bytes: `slots` if not 0, else up to 4096, at most
 * 4 MiB of payload, at least 4. A ring that cycles through more memory than
 * the caches hold makes every message land on cold lines: measured side by
 * side (bench/README.md, "Ring size and in-place busy-polling"), 64 KiB
 * messages went from 212 k/s per subscriber with 256 slots (16 MiB) to
 * 407 k/s with 64 (4 MiB). */
unsigned bx_ring_slots(size_t size, unsigned slots);

int bx_open(struct bx_ep *ep, const struct bx_ops *ops, const struct bx_run *run, enum bx_role role,
            unsigned idx, bx_msg_fn fn, void *ctx);
/* Receives in the run's wait mode, delivering to the callback given to
 * bx_open, until *done becomes true; fails with -ETIMEDOUT after
 * timeout_ms without any message. *done is what counts: a wait that timed
 * out or failed in the very iteration in which *done became true is a
 * success (0). */
int bx_recv_until(struct bx_ep *ep, const volatile bool *done, unsigned timeout_ms);
void bx_close(struct bx_ep *ep);

#endif
