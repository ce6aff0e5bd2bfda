/* xport: see xport.h. One section per transport after the generic receive
 * loop (shmbus itself: xport_shmbus.c). On Windows only shmbus's: the
 * unix-socket fan-out and ZeroMQ are skipped there with a note, and the
 * named-pipe, cache-line and event ping-pongs are platform/xport_windows.c's. */
#define _GNU_SOURCE
#include "xport.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>
#endif
#ifdef SHMBUS_BENCH_ZMQ
#include <zmq.h>
#endif

#include "benchutil.h"
#include "xport_iox.h"
#include "xport_nats.h"

/* ---- the generic receive loop ------------------------------------------- */

static void on_readable(uv_poll_t *h, int status, int events) {
  struct bx_ep *ep = h->data;
  int n;
  (void)events;
  if (status < 0) {
    ep->error = status;
    uv_stop(ep->loop);
    return;
  }
  /* Until nothing is left: ZeroMQ's descriptor is edge-triggered. */
  while ((n = ep->ops->poll(ep, ep->fn, ep->ctx)) > 0)
    ;
  if (n < 0) {
    ep->error = n;
    uv_stop(ep->loop);
  }
}

static void on_timeout(uv_timer_t *t) {
  struct bx_ep *ep = t->data;
  ep->error = -ETIMEDOUT;
  uv_stop(ep->loop);
}

unsigned bx_ring_slots(size_t size, unsigned slots) {
  unsigned s = 4096;
  if (slots != 0)
    return slots;
  while (s > 4 && (size_t)s * size > ((size_t)4 << 20))
    s /= 2;
  return s;
}

int bx_open(struct bx_ep *ep, const struct bx_ops *ops, const struct bx_run *run, enum bx_role role,
            unsigned idx, bx_msg_fn fn, void *ctx) {
  int rv;
  memset(ep, 0, sizeof(*ep));
  ep->ops = ops;
  ep->run = run;
  ep->role = role;
  ep->idx = idx;
  ep->fn = fn;
  ep->ctx = ctx;
  if ((rv = ops->open(ep)) < 0)
    return rv;
  if (run->wait != BX_UV || role == BX_PUB)
    return 0;
  if ((ep->loop = malloc(sizeof(*ep->loop))) == NULL)
    return -ENOMEM;
  if ((rv = uv_loop_init(ep->loop)) < 0) {
    free(ep->loop);
    ep->loop = NULL;
    return rv;
  }
  (void)uv_timer_init(ep->loop, &ep->timer_h);
  ep->timer_h.data = ep;
  if (ops->uv_start != NULL)
    return ops->uv_start(ep, ep->loop, fn, ctx);
  if ((rv = uv_poll_init(ep->loop, &ep->poll_h, ops->fd(ep))) < 0)
    return rv;
  ep->poll_h.data = ep;
  return uv_poll_start(&ep->poll_h, UV_READABLE, on_readable);
}

int bx_recv_until(struct bx_ep *ep, const volatile bool *done, unsigned timeout_ms) {
  const struct bx_ops *o = ep->ops;
  uint64_t idle_since = 0, limit = (uint64_t)timeout_ms * 1000000u;
  unsigned spins = 0;
  int n;

  switch (ep->run->wait) {
  case BX_SPIN:
    while (!*done) {
      if ((n = o->poll(ep, ep->fn, ep->ctx)) < 0)
        return n;
      if (n > 0) {
        idle_since = 0;
        continue;
      }
      bu_spin_step(&spins);
      if ((spins & 0xffffu) == 0) {
        uint64_t now = bu_now_ns();
        if (idle_since == 0)
          idle_since = now;
        else if (now - idle_since > limit)
          return *done ? 0 : -ETIMEDOUT;
      }
    }
    return 0;
  case BX_EVENT:
    while (!*done) {
      /* The callbacks set *done: a failure that comes with it (the wait
       * timed out just after delivering the last message) is no failure. */
      if ((n = o->poll(ep, ep->fn, ep->ctx)) < 0)
        return *done ? 0 : n;
      if (n == 0 && !*done && (n = o->wait(ep, ep->fn, ep->ctx, (int)timeout_ms)) < 0)
        return *done ? 0 : n;
    }
    return 0;
  case BX_UV:
    while (!*done && ep->error == 0) {
      (void)uv_timer_start(&ep->timer_h, on_timeout, timeout_ms, 0);
      (void)uv_run(ep->loop, UV_RUN_ONCE);
    }
    (void)uv_timer_stop(&ep->timer_h);
    /* One uv_run may both deliver the last message and fire the timer. */
    return *done ? 0 : ep->error;
  }
  return -EINVAL;
}

static void close_none(uv_handle_t *h) {
  (void)h;
}

void bx_close(struct bx_ep *ep) {
  if (ep->loop != NULL) {
    if (ep->ops->uv_start == NULL && ep->poll_h.data != NULL)
      uv_close((uv_handle_t *)&ep->poll_h, close_none);
    uv_close((uv_handle_t *)&ep->timer_h, close_none);
  }
  ep->ops->close(ep);
  if (ep->loop != NULL) {
    (void)uv_run(ep->loop, UV_RUN_DEFAULT);
    (void)uv_loop_close(ep->loop);
    free(ep->loop);
    ep->loop = NULL;
  }
}

#ifndef _WIN32
/* ---- unix-domain stream sockets, one per subscriber ---------------------- */

/* Frames: a 4-byte length, then the message. The receiver reads what is
 * there into a buffer and hands out every complete frame. */
struct bxu {
  int fd[BX_MAX_SUBS];
  unsigned n;
  unsigned char *rbuf;
  size_t have, cap;
};

static int bxu_prepare(struct bx_run *r) {
  unsigned i, n = r->latency ? 1 : r->nsubs;
  for (i = 0; i < n; i++) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
      return -errno;
    r->fds[2 * i] = sv[0]; /* the publisher's (A's) end */
    r->fds[2 * i + 1] = sv[1];
    r->nfds = 2 * i + 2;
  }
  return 0;
}

static void close_fds(struct bx_run *r) {
  unsigned i;
  for (i = 0; i < r->nfds; i++)
    close(r->fds[i]);
  r->nfds = 0;
}

static int bxu_open(struct bx_ep *ep) {
  const struct bx_run *r = ep->run;
  struct bxu *u = calloc(1, sizeof(*u));
  unsigned i;
  if (u == NULL)
    return -ENOMEM;
  ep->impl = u;
  switch (ep->role) {
  case BX_PUB:
    for (i = 0; i < r->nsubs; i++)
      u->fd[i] = r->fds[2 * i];
    u->n = r->nsubs;
    break;
  case BX_SUB:
    u->fd[0] = r->fds[2 * ep->idx + 1];
    u->n = 1;
    break;
  case BX_A:
  case BX_B:
    u->fd[0] = r->fds[ep->role == BX_A ? 0 : 1];
    u->n = 1;
    break;
  }
  u->cap = 2 * (r->size + 4) > ((size_t)256 << 10) ? 2 * (r->size + 4) : (size_t)256 << 10;
  if (ep->role != BX_PUB && (u->rbuf = malloc(u->cap)) == NULL)
    return -ENOMEM;
  return 0;
}

/* Sends the rest of a frame from byte `off` on, waiting for room. */
static int bxu_send_rest(int fd, uint32_t *len32, const void *data, size_t total, size_t off) {
  while (off < total) {
    struct iovec iov[2];
    struct msghdr m;
    ssize_t n;
    int k = 0;
    memset(&m, 0, sizeof(m));
    if (off < 4) {
      iov[k].iov_base = (char *)len32 + off;
      iov[k++].iov_len = 4 - off;
    }
    iov[k].iov_base = (char *)data + (off > 4 ? off - 4 : 0);
    iov[k++].iov_len = total - (off > 4 ? off : 4);
    m.msg_iov = iov;
    m.msg_iovlen = (size_t)k;
    if ((n = sendmsg(fd, &m, MSG_NOSIGNAL)) < 0) {
      struct pollfd p = {fd, POLLOUT, 0};
      if (errno == EINTR)
        continue;
      /* uv_poll_init made the socket non-blocking: wait for room. */
      if ((errno == EAGAIN || errno == EWOULDBLOCK) && poll(&p, 1, (int)BX_SEND_TIMEOUT_MS) > 0)
        continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
    }
    off += (size_t)n;
  }
  return 0;
}

static int bxu_send(struct bx_ep *ep, const void *data, size_t len, bool must) {
  struct bxu *u = ep->impl;
  bool lossy = ep->role == BX_PUB && !ep->run->reliable && !must;
  uint32_t len32 = (uint32_t)len;
  unsigned i;
  int rv;
  for (i = 0; i < u->n; i++) {
    size_t off = 0;
    if (lossy) {
      /* Drop the message for a subscriber whose socket is full; a frame
       * begun must be finished (the stream would lose its framing). */
      struct iovec iov[2] = {{&len32, 4}, {(void *)data, len}};
      struct msghdr m;
      ssize_t n;
      memset(&m, 0, sizeof(m));
      m.msg_iov = iov;
      m.msg_iovlen = 2;
      n = sendmsg(u->fd[i], &m, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        continue;
      if (n < 0)
        return -errno;
      off = (size_t)n;
    }
    if ((rv = bxu_send_rest(u->fd[i], &len32, data, len + 4, off)) < 0)
      return rv;
  }
  return 0;
}

static int bxu_poll(struct bx_ep *ep, bx_msg_fn fn, void *ctx) {
  struct bxu *u = ep->impl;
  int delivered = 0;
  for (;;) {
    size_t pos = 0;
    ssize_t n = recv(u->fd[0], u->rbuf + u->have, u->cap - u->have, MSG_DONTWAIT);
    if (n == 0)
      return -EPIPE;
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return delivered;
      return -errno;
    }
    u->have += (size_t)n;
    while (u->have - pos >= 4) {
      uint32_t len;
      memcpy(&len, u->rbuf + pos, 4);
      if (len > ep->run->size)
        return -EPROTO;
      if (u->have - pos - 4 < len)
        break;
      fn(ctx, u->rbuf + pos + 4, len, 0);
      pos += 4 + (size_t)len;
      delivered++;
    }
    if (pos > 0) {
      memmove(u->rbuf, u->rbuf + pos, u->have - pos);
      u->have -= pos;
    }
    if (delivered > 0)
      return delivered;
  }
}

static int wait_fd(int fd, int timeout_ms) {
  struct pollfd p = {fd, POLLIN, 0};
  int rv;
  do
    rv = poll(&p, 1, timeout_ms);
  while (rv < 0 && errno == EINTR);
  if (rv < 0)
    return -errno;
  return rv == 0 ? -ETIMEDOUT : 0;
}

static int bxu_wait(struct bx_ep *ep, bx_msg_fn fn, void *ctx, int timeout_ms) {
  struct bxu *u = ep->impl;
  (void)fn;
  (void)ctx;
  return wait_fd(u->fd[0], timeout_ms);
}

static int bxu_fd(struct bx_ep *ep) {
  return ((struct bxu *)ep->impl)->fd[0];
}

static int64_t no_lost(struct bx_ep *ep) {
  (void)ep;
  return -1;
}

static void bxu_close(struct bx_ep *ep) {
  struct bxu *u = ep->impl;
  if (u == NULL)
    return;
  free(u->rbuf);
  free(u);
  ep->impl = NULL;
}

const struct bx_ops bx_uds = {
    .name = "unix socket",
    .flags = BX_F_FANOUT | BX_F_LATENCY,
    .prepare = bxu_prepare,
    .unprepare = close_fds,
    .open = bxu_open,
    .send = bxu_send,
    .poll = bxu_poll,
    .wait = bxu_wait,
    .fd = bxu_fd,
    .lost = no_lost,
    .close = bxu_close,
};

/* ---- ZeroMQ PUB/SUB over ipc:// ----------------------------------------- */

#ifdef SHMBUS_BENCH_ZMQ
struct bxz {
  void *zctx, *pub, *sub;
  void *buf;
};

static int zerr(void) {
  return -zmq_errno();
}

static int bxz_socket(struct bxz *z, int type, const char *dir, unsigned id, const char *what,
                      bool bind, bool nodrop, void **out) {
  char ep[160];
  int zero = 0, one = 1;
  void *s = zmq_socket(z->zctx, type);
  if (s == NULL)
    return zerr();
  *out = s;
  snprintf(ep, sizeof(ep), "ipc://%s/zmq-%u-%s", dir, id, what);
  if (zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)) != 0)
    return zerr();
  if (nodrop && zmq_setsockopt(s, ZMQ_XPUB_NODROP, &one, sizeof(one)) != 0)
    return zerr();
  if (type == ZMQ_SUB && zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0) != 0)
    return zerr();
  if ((bind ? zmq_bind(s, ep) : zmq_connect(s, ep)) != 0)
    return zerr();
  return 0;
}

static int bxz_open(struct bx_ep *ep) {
  const struct bx_run *r = ep->run;
  struct bxz *z = calloc(1, sizeof(*z));
  int rv = 0;
  if (z == NULL || (z->buf = malloc(r->size)) == NULL) {
    free(z);
    return -ENOMEM;
  }
  ep->impl = z;
  if ((z->zctx = zmq_ctx_new()) == NULL)
    return zerr();
  switch (ep->role) {
  case BX_PUB:
    rv = bxz_socket(z, ZMQ_PUB, r->dir, r->id, "fan", true, r->reliable, &z->pub);
    break;
  case BX_SUB:
    rv = bxz_socket(z, ZMQ_SUB, r->dir, r->id, "fan", false, false, &z->sub);
    break;
  case BX_A:
  case BX_B: {
    bool a = ep->role == BX_A;
    if ((rv = bxz_socket(z, ZMQ_PUB, r->dir, r->id, a ? "ping" : "pong", true, r->reliable,
                         &z->pub)) < 0)
      break;
    rv = bxz_socket(z, ZMQ_SUB, r->dir, r->id, a ? "pong" : "ping", false, false, &z->sub);
    break;
  }
  }
  return rv;
}

static int bxz_send(struct bx_ep *ep, const void *data, size_t len, bool must) {
  struct bxz *z = ep->impl;
  (void)must;
  while (zmq_send(z->pub, data, len, 0) < 0) {
    if (zmq_errno() == EINTR)
      continue;
    if (zmq_errno() == EAGAIN) { /* reliable (XPUB_NODROP) and a queue is full */
      zmq_pollitem_t it = {z->pub, 0, ZMQ_POLLOUT, 0};
      if (zmq_poll(&it, 1, (long)BX_SEND_TIMEOUT_MS) == 0)
        return -ETIMEDOUT;
      continue;
    }
    return zerr();
  }
  return 0;
}

static int bxz_poll(struct bx_ep *ep, bx_msg_fn fn, void *ctx) {
  struct bxz *z = ep->impl;
  int n = 0;
  for (;;) {
    int rc = zmq_recv(z->sub, z->buf, ep->run->size, ZMQ_DONTWAIT);
    if (rc < 0) {
      if (zmq_errno() == EINTR)
        continue;
      return zmq_errno() == EAGAIN ? n : zerr();
    }
    fn(ctx, z->buf, (size_t)rc < ep->run->size ? (size_t)rc : ep->run->size, 0);
    n++;
  }
}

static int bxz_wait(struct bx_ep *ep, bx_msg_fn fn, void *ctx, int timeout_ms) {
  struct bxz *z = ep->impl;
  zmq_pollitem_t it = {z->sub, 0, ZMQ_POLLIN, 0};
  int rc = zmq_poll(&it, 1, timeout_ms);
  (void)fn;
  (void)ctx;
  if (rc < 0)
    return zmq_errno() == EINTR ? 0 : zerr();
  return rc == 0 ? -ETIMEDOUT : 0;
}

static int bxz_fd(struct bx_ep *ep) {
  struct bxz *z = ep->impl;
  int fd = -1;
  size_t sz = sizeof(fd);
  (void)zmq_getsockopt(z->sub, ZMQ_FD, &fd, &sz);
  return fd;
}

static void bxz_close(struct bx_ep *ep) {
  struct bxz *z = ep->impl;
  if (z == NULL)
    return;
  if (z->pub != NULL)
    zmq_close(z->pub);
  if (z->sub != NULL)
    zmq_close(z->sub);
  if (z->zctx != NULL)
    zmq_ctx_term(z->zctx);
  free(z->buf);
  free(z);
  ep->impl = NULL;
}

const struct bx_ops bx_zmq = {
    .name = "zeromq",
    .flags = BX_F_FANOUT | BX_F_LATENCY | BX_F_HELLO | BX_F_PUB_FIRST,
    .open = bxz_open,
    .send = bxz_send,
    .poll = bxz_poll,
    .wait = bxz_wait,
    .fd = bxz_fd,
    .lost = no_lost,
    .close = bxz_close,
};
#else
static const char *bxz_missing(void) {
  return "not built: libzmq (Debian libzmq3-dev) was not found by pkg-config at configure time";
}

const struct bx_ops bx_zmq = {
    .name = "zeromq",
    .flags = BX_F_FANOUT | BX_F_LATENCY,
    .missing = bxz_missing,
};
#endif

/* ---- shared buffers for the ping-pong baselines ------------------------- */

/* Two buffers of run->size, one per direction, each on its own pages:
 * [0] written by A, [1] by B. */
static size_t half_len(const struct bx_run *r) {
  return (r->size + 4095) & ~(size_t)4095;
}

static int map_shared(struct bx_run *r) {
  r->shared_len = 2 * half_len(r);
  r->shared = mmap(NULL, r->shared_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (r->shared == MAP_FAILED) {
    r->shared = NULL;
    return -errno;
  }
  return 0;
}

static void unmap_shared(struct bx_run *r) {
  if (r->shared != NULL)
    (void)munmap(r->shared, r->shared_len);
  r->shared = NULL;
  close_fds(r);
}

struct bxb {
  unsigned char *out, *in; /* shared: what we write, what the peer writes */
  void *priv;              /* where a received message is copied to */
  int in_fd, out_fd;       /* eventfds */
  uint32_t sent, seen;     /* cache line: message counters */
};

static int bxb_open(struct bx_ep *ep) {
  const struct bx_run *r = ep->run;
  struct bxb *b = calloc(1, sizeof(*b));
  bool a = ep->role == BX_A;
  if (b == NULL || (b->priv = malloc(r->size)) == NULL) {
    free(b);
    return -ENOMEM;
  }
  ep->impl = b;
  b->out = (unsigned char *)r->shared + (a ? 0 : half_len(r));
  b->in = (unsigned char *)r->shared + (a ? half_len(r) : 0);
  b->out_fd = r->nfds == 2 ? r->fds[a ? 0 : 1] : -1;
  b->in_fd = r->nfds == 2 ? r->fds[a ? 1 : 0] : -1;
  return 0;
}

static void bxb_close(struct bx_ep *ep) {
  struct bxb *b = ep->impl;
  if (b == NULL)
    return;
  free(b->priv);
  free(b);
  ep->impl = NULL;
}

/* Raw eventfd ping-pong: the message goes through the shared buffer, the
 * wake-up is one eventfd write. */
static int bxe_prepare(struct bx_run *r) {
  int rv;
  if ((rv = map_shared(r)) < 0)
    return rv;
  r->fds[0] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); /* A -> B */
  r->fds[1] = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); /* B -> A */
  r->nfds = 2;
  return r->fds[0] < 0 || r->fds[1] < 0 ? -errno : 0;
}

static int bxe_send(struct bx_ep *ep, const void *data, size_t len, bool must) {
  struct bxb *b = ep->impl;
  uint64_t one = 1;
  (void)must;
  memcpy(b->out, data, len);
  /* The bytes before the signal; pairs with the receiver's acquire fence. */
  atomic_thread_fence(memory_order_release);
  if (write(b->out_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
    return -errno;
  return 0;
}

static int bxe_poll(struct bx_ep *ep, bx_msg_fn fn, void *ctx) {
  struct bxb *b = ep->impl;
  uint64_t v;
  if (read(b->in_fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
    return errno == EAGAIN ? 0 : -errno;
  /* Pairs with the sender's release fence before its eventfd write. */
  atomic_thread_fence(memory_order_acquire);
  memcpy(b->priv, b->in, ep->run->size);
  fn(ctx, b->priv, ep->run->size, 0);
  return 1;
}

static int bxe_wait(struct bx_ep *ep, bx_msg_fn fn, void *ctx, int timeout_ms) {
  (void)fn;
  (void)ctx;
  return wait_fd(((struct bxb *)ep->impl)->in_fd, timeout_ms);
}

static int bxe_fd(struct bx_ep *ep) {
  return ((struct bxb *)ep->impl)->in_fd;
}

const struct bx_ops bx_efd = {
    .name = "eventfd",
    .flags = BX_F_LATENCY,
    .prepare = bxe_prepare,
    .unprepare = unmap_shared,
    .open = bxb_open,
    .send = bxe_send,
    .poll = bxe_poll,
    .wait = bxe_wait,
    .fd = bxe_fd,
    .lost = no_lost,
    .close = bxb_close,
};

/* Cache-line ping-pong: the message is written into the shared buffer and
 * its header's `pad` word, in the message's first cache line, is then
 * stored (release) with a new counter; the peer spins on that word. A
 * message of at most 64 bytes is one cache line each way. */
static uint32_t *pad_word(unsigned char *msg) {
  return (uint32_t *)(void *)(msg + offsetof(struct bx_hdr, pad));
}

static int bxl_send(struct bx_ep *ep, const void *data, size_t len, bool must) {
  struct bxb *b = ep->impl;
  size_t p = offsetof(struct bx_hdr, pad);
  (void)must;
  memcpy(b->out, data, p);
  memcpy(b->out + p + 4, (const unsigned char *)data + p + 4, len - p - 4);
  /* Release: the bytes before the counter the peer spins on. */
  __atomic_store_n(pad_word(b->out), ++b->sent, __ATOMIC_RELEASE);
  return 0;
}

static int bxl_poll(struct bx_ep *ep, bx_msg_fn fn, void *ctx) {
  struct bxb *b = ep->impl;
  /* Acquire: pairs with the sender's release store of the counter. */
  uint32_t c = __atomic_load_n(pad_word(b->in), __ATOMIC_ACQUIRE);
  if (c == b->seen)
    return 0;
  b->seen = c;
  memcpy(b->priv, b->in, ep->run->size);
  fn(ctx, b->priv, ep->run->size, 0);
  return 1;
}

static int bxl_prepare(struct bx_run *r) {
  return map_shared(r);
}

const struct bx_ops bx_line = {
    .name = "cache line",
    .flags = BX_F_LATENCY | BX_F_SPIN_ONLY,
    .prepare = bxl_prepare,
    .unprepare = unmap_shared,
    .open = bxb_open,
    .send = bxl_send,
    .poll = bxl_poll,
    .lost = no_lost,
    .close = bxb_close,
};

const struct bx_ops *const bx_peers[] = {&bx_uds, &bx_zmq,  &bx_iox, &bx_nats,
                                         &bx_efd, &bx_line, NULL};
#else
/* ---- the peers not on Windows ---------------------------------------------- */

static const char *not_on_windows(void) {
  return "not ported to Windows (docs/windows.md)";
}

/* The fan-out's only: in latency, the named-pipe ping-pong of
 * platform/xport_windows.c stands in for it. */
const struct bx_ops bx_uds = {
    .name = "unix socket",
    .flags = BX_F_FANOUT,
    .missing = not_on_windows,
};

const struct bx_ops bx_zmq = {
    .name = "zeromq",
    .flags = BX_F_FANOUT | BX_F_LATENCY,
    .missing = not_on_windows,
};

/* The named-pipe, event and cache-line peers, and the list of peers:
 * platform/xport_windows.c. */
#endif
