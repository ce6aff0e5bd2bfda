/* xport_shmbus: see xport_shmbus.h. */
#define _GNU_SOURCE
#include "xport_shmbus.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchproc.h"
#include "benchutil.h"
#include "shmbus/uv.h"

struct bxs {
  shmbus_bus *bus;
  shmbus_pub *pub;
  shmbus_sub *sub;
  void *buf;
};

/* What an in-place receiver copies out of a slot: the header the
 * receivers look at. */
#define BXS_HEAD 64u
static volatile uint64_t bxs_sink;

struct shmbus_topic_opts bxs_topic(const struct bx_run *r, unsigned extra_subs) {
  struct shmbus_topic_opts t;
  memset(&t, 0, sizeof(t));
  t.slots = bx_ring_slots(r->size, r->slots);
  t.slot_size = (uint32_t)r->size;
  t.max_subs = (r->nsubs > 1 ? r->nsubs : 1) + extra_subs;
  t.max_pubs = 2;
  return t;
}

int bxs_open_on(struct bx_ep *ep, shmbus_bus *bus, const char *t_out, const char *t_in,
                unsigned extra_subs) {
  const struct bx_run *r = ep->run;
  struct shmbus_topic_opts to = bxs_topic(r, extra_subs);
  struct shmbus_sub_opts so;
  struct bxs *s = calloc(1, sizeof(*s));
  int rv;

  if (s == NULL || (s->buf = malloc(r->size)) == NULL) {
    free(s);
    shmbus_bus_close(bus);
    return -ENOMEM;
  }
  ep->impl = s;
  s->bus = bus;
  memset(&so, 0, sizeof(so));
  so.reliable = r->reliable;
  so.topic = to;
  if (ep->role != BX_PUB && (rv = shmbus_sub_open(s->bus, t_in, &so, &s->sub)) < 0)
    return rv;
  if (ep->role != BX_SUB && (rv = shmbus_pub_open(s->bus, t_out, &to, &s->pub)) < 0)
    return rv;
  return 0;
}

int bxs_send(struct bx_ep *ep, const void *data, size_t len, bool must) {
  struct bxs *s = ep->impl;
  unsigned spins = 0;
  int rv;
  (void)must;
  while ((rv = shmbus_pub_publish(s->pub, data, len)) == SHMBUS_EFULL) {
    if (ep->run->wait == BX_SPIN)
      bu_spin_step(&spins);
    else if ((rv = shmbus_pub_wait(s->pub, (int)BX_SEND_TIMEOUT_MS)) < 0)
      return rv;
  }
  return rv;
}

/* The ts_ns handed to the receiver: shmbus's stamp, or 0 where the
 * transport's ops say its stamps are not the send time (xport_shmbus.h). */
static uint64_t bxs_stamp(const struct bx_ep *ep, const struct shmbus_msg_info *info) {
  return (ep->ops->flags & BX_F_STAMPS) != 0 ? info->ts_ns : 0;
}

/* Busy-polling subscribers read in place too (shmbus_sub_view), as the
 * libuv ones do and as iceoryx's do: see bxs_read_inplace. */
static size_t bxs_read_inplace(const struct bx_ep *ep, const void *data, size_t len,
                               unsigned char *head);

int bxs_poll(struct bx_ep *ep, bx_msg_fn fn, void *ctx) {
  struct bxs *s = ep->impl;
  struct shmbus_view v;
  unsigned char head[BXS_HEAD];
  int n, rv;
  for (n = 0; n < 256; n++) {
    if ((rv = shmbus_sub_view(s->sub, &v)) == -EAGAIN)
      break;
    if (rv < 0)
      return rv;
    size_t got = bxs_read_inplace(ep, v.data, v.info.len, head);
    if ((rv = shmbus_sub_view_end(s->sub, &v)) == SHMBUS_EOVERRUN)
      continue; /* overwritten while read: shmbus counts it lost */
    if (rv < 0)
      return rv;
    fn(ctx, head, got, bxs_stamp(ep, &v.info));
  }
  return n;
}

int bxs_wait(struct bx_ep *ep, bx_msg_fn fn, void *ctx, int timeout_ms) {
  struct bxs *s = ep->impl;
  struct shmbus_msg_info info;
  int rv = shmbus_sub_recv(s->sub, s->buf, ep->run->size, &info, timeout_ms);
  if (rv < 0)
    return rv;
  fn(ctx, s->buf, (size_t)rv, bxs_stamp(ep, &info));
  return 0;
}

static void bxs_on_msg(shmbus_sub *sub, const void *data, size_t len,
                       const struct shmbus_msg_info *info, void *arg) {
  struct bx_ep *ep = arg;
  (void)sub;
  ep->fn(ep->ctx, data, len, bxs_stamp(ep, info));
}

int bxs_uv_start_copy(struct bx_ep *ep, uv_loop_t *loop, bx_msg_fn fn, void *ctx) {
  struct bxs *s = ep->impl;
  int rv;
  (void)fn;
  (void)ctx;
  if ((rv = shmbus_uv_bus_start(s->bus, loop)) < 0)
    return rv;
  return shmbus_uv_sub_start(s->sub, loop, bxs_on_msg, ep);
}

void bxs_close(struct bx_ep *ep) {
  struct bxs *s = ep->impl;
  if (s == NULL)
    return;
  shmbus_bus_close(s->bus);
  free(s->buf);
  free(s);
  ep->impl = NULL;
}

/* ---- bx_shmbus: the `shmbus` rows --------------------------------------- */

static int bxs_open(struct bx_ep *ep) {
  const struct bx_run *r = ep->run;
  char t_out[64], t_in[64];

  if (r->latency) {
    snprintf(t_out, sizeof(t_out), "bench/%u/%s", r->id, ep->role == BX_A ? "ping" : "pong");
    snprintf(t_in, sizeof(t_in), "bench/%u/%s", r->id, ep->role == BX_A ? "pong" : "ping");
  } else {
    snprintf(t_out, sizeof(t_out), "bench/%u", r->id);
    snprintf(t_in, sizeof(t_in), "bench/%u", r->id);
  }
  return bxs_open_on(ep, bp_bus_open(ep->role == BX_PUB ? "bench-pub" : "bench-sub"), t_out, t_in,
                     0);
}

/* Lossy subscribers read in place (shmbus_uv_sub_start_inplace): what the
 * receiver looks at (the header; with --touch every byte, summed here) is
 * read from the slot, then confirmed intact, and only then handed on: a
 * message overwritten meanwhile is counted lost by shmbus and never seen
 * by the receiver. */

/* Copies the header out of a slot into `head` and, with --touch, reads
 * every byte (summed into a sink); returns the header's length. */
static size_t bxs_read_inplace(const struct bx_ep *ep, const void *data, size_t len,
                               unsigned char *head) {
  size_t n = len < BXS_HEAD ? len : BXS_HEAD;
  memcpy(head, data, n);
  if (ep->run->touch) {
    const unsigned char *p = data;
    uint64_t w, sum = 0;
    size_t i;
    for (i = 0; i + 8 <= len; i += 8) {
      memcpy(&w, p + i, 8);
      sum += w;
    }
    bxs_sink += sum;
  }
  return n;
}

static void bxs_on_msg_inplace(shmbus_sub *sub, const void *data, size_t len,
                               const struct shmbus_msg_info *info, void *arg) {
  struct bx_ep *ep = arg;
  unsigned char head[BXS_HEAD];
  size_t n = bxs_read_inplace(ep, data, len, head);
  if (shmbus_uv_sub_intact(sub) != 0)
    return;
  ep->fn(ep->ctx, head, n, info->ts_ns);
}

static int bxs_uv_start(struct bx_ep *ep, uv_loop_t *loop, bx_msg_fn fn, void *ctx) {
  struct bxs *s = ep->impl;
  int rv;
  if (ep->run->reliable)
    return bxs_uv_start_copy(ep, loop, fn, ctx);
  if ((rv = shmbus_uv_bus_start(s->bus, loop)) < 0)
    return rv;
  return shmbus_uv_sub_start_inplace(s->sub, loop, bxs_on_msg_inplace, ep);
}

static int64_t bxs_lost(struct bx_ep *ep) {
  struct bxs *s = ep->impl;
  struct shmbus_sub_stats st;
  shmbus_sub_stats(s->sub, &st);
  return (int64_t)st.lost;
}

const struct bx_ops bx_shmbus = {
    .name = "shmbus",
    .flags = BX_F_FANOUT | BX_F_LATENCY | BX_F_STAMPS,
    .open = bxs_open,
    .send = bxs_send,
    .poll = bxs_poll,
    .wait = bxs_wait,
    .uv_start = bxs_uv_start,
    .lost = bxs_lost,
    .close = bxs_close,
};
