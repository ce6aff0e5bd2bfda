/* xport_nats: see xport_nats.h. Built with libnats when CMake finds it
 * (SHMBUS_HAVE_NATS); without it the peer is skipped with a note.
 *
 * The parent never calls libnats (its threads would not survive the
 * forks): it only starts the server (tests/natsfix.c, which runs
 * nats-server as a child process). Each child connects on its own.
 *
 * What is compared. The publisher copies each message into libnats's
 * outgoing buffer (core NATS) or hands it to an asynchronous JetStream
 * publish; the server copies it to every subscriber's connection; a
 * subscriber's libnats reader thread parses it into a message the
 * benchmark's callback reads in place.
 *
 * Wait modes:
 *   BX_EVENT  a synchronous subscription: natsSubscription_NextMsg blocks
 *             (on a condition variable that libnats's reader thread
 *             signals);
 *   BX_UV     an asynchronous subscription: libnats calls back on its own
 *             delivery thread, which hands the message to the benchmark and
 *             wakes the subscriber's libuv loop with uv_async_send. libnats
 *             always delivers on threads of its own, also with its libuv
 *             adapter (which moves only the socket's reads and writes into
 *             the loop), so this is what a libuv application gets;
 *   BX_SPIN   natsSubscription_NextMsg with a zero timeout in a loop.
 *
 * Subscriptions are in place when the subscriber's flush returns (one
 * server: no propagation); HELLO (BX_F_HELLO) is still used, so that the
 * lossy END, which a subscriber over its pending limit may drop, is sent
 * again until every subscriber has it. JetStream's END and HELLOs are
 * stored like the data: they come after it, in order. */
#define _GNU_SOURCE
#include "xport_nats.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef SHMBUS_HAVE_NATS
#include <nats/nats.h>

#include "natsfix.h"
#endif

/* Why the peer is skipped (NULL: it may run). */
static const char *nats_note = "not set up (bx_nats_setup was not called)";

static const char *bxn_missing(void) {
  return nats_note;
}

#ifndef SHMBUS_HAVE_NATS

void bx_nats_setup(void) {
  nats_note = "not built: CMake found no libnats (Debian libnats-dev) at configure time";
}

void bx_nats_teardown(void) {
}

const char *bx_nats_url(void) {
  return NULL;
}

const struct bx_ops bx_nats = {
    .name = "nats",
    .flags = BX_F_FANOUT,
    .missing = bxn_missing,
};

#else

/* The parent's server; the children inherit the URL. */
static struct natsfix_cluster nats_srv;
static bool nats_up;
static pid_t nats_owner = -1;
static char nats_note_buf[768];

static void teardown_at_exit(void) {
  if (getpid() == nats_owner) /* not an exiting child that inherited it */
    bx_nats_teardown();
}

void bx_nats_setup(void) {
  int rv;

  if (nats_up)
    return;
  rv = natsfix_cluster_start(&nats_srv, 1, true);
  if (rv < 0) {
    snprintf(nats_note_buf, sizeof(nats_note_buf), "nats-server did not start: %s", nats_srv.err);
    nats_note = nats_note_buf;
    return;
  }
  nats_up = true;
  nats_note = NULL;
  if (nats_owner == -1)
    atexit(teardown_at_exit);
  nats_owner = getpid();
}

void bx_nats_teardown(void) {
  if (!nats_up)
    return;
  if (natsfix_cluster_stop(&nats_srv) < 0)
    fprintf(stderr, "shmbus-bench: %s\n", nats_srv.err);
  nats_up = false;
  nats_note = "stopped";
}

const char *bx_nats_url(void) {
  return nats_up ? nats_srv.node[0].url : NULL;
}

/* One endpoint. */
struct bxn {
  natsConnection *nc;
  jsCtx *js;
  natsSubscription *sub;
  bool reliable, async;
  char subject[64];
  char stream[32];
  uv_async_t *wake; /* BX_UV: wakes the loop; freed by its close callback */
  struct bx_ep *ep;
  _Atomic int64_t pub_errors; /* JetStream publishes the server refused */
};

static int bxn_status(natsStatus s) {
  switch (s) {
  case NATS_OK:
    return 0;
  case NATS_TIMEOUT:
    return -ETIMEDOUT;
  case NATS_NO_MEMORY:
    return -ENOMEM;
  case NATS_CONNECTION_CLOSED:
  case NATS_CONNECTION_DISCONNECTED:
  case NATS_NO_SERVER:
    return -ENOTCONN;
  case NATS_MAX_PAYLOAD:
    return -EMSGSIZE;
  case NATS_SLOW_CONSUMER:
    return -ENOBUFS;
  default:
    return -EIO;
  }
}

/* A failure in a child: what libnats said, then the code. */
static int bxn_fail(const char *what, natsStatus s, jsErrCode jerr) {
  fprintf(stderr, "shmbus-bench: nats %s: %s", what, natsStatus_GetText(s));
  if (jerr != 0)
    fprintf(stderr, " (JetStream error %d)", (int)jerr);
  fprintf(stderr, "\n");
  nats_PrintLastErrorStack(stderr);
  return bxn_status(s) != 0 ? bxn_status(s) : -EIO;
}

static void bxn_pub_error(jsCtx *js, jsPubAckErr *pae, void *closure) {
  struct bxn *b = closure;
  (void)js;
  atomic_fetch_add_explicit(&b->pub_errors, 1, memory_order_relaxed);
  fprintf(stderr, "shmbus-bench: nats: a JetStream publish failed: %s (%d) %s\n",
          natsStatus_GetText(pae->Err), (int)pae->ErrCode,
          pae->ErrText != NULL ? pae->ErrText : "");
}

/* The run's stream: file storage (what a durable stream is), interest
 * retention (a message goes once every consumer acknowledged it, so the
 * store holds the backlog only), at most 256 MiB of it (a backlog beyond
 * fails the run: the publisher got ahead of its subscribers by that much;
 * two subscribers creating it at once reserve it twice, within the
 * server's 1 GiB). Created by every
 * subscriber before it subscribes; the same configuration again is no
 * error. */
static int bxn_stream(struct bxn *b) {
  const char *subjects[1] = {b->subject};
  jsStreamConfig cfg;
  jsStreamInfo *si = NULL;
  jsErrCode jerr = 0;
  natsStatus s;

  jsStreamConfig_Init(&cfg);
  cfg.Name = b->stream;
  cfg.Subjects = subjects;
  cfg.SubjectsLen = 1;
  cfg.Storage = js_FileStorage;
  cfg.Retention = js_InterestPolicy;
  cfg.MaxBytes = (int64_t)256 << 20;
  cfg.Discard = js_DiscardNew;
  /* Two subscribers creating the stream at once: while the first
   * creation is under way, the server may answer the second "subjects
   * overlap with an existing stream" (10065). The stream is then ours:
   * wait (bounded) until it is there. */
  for (int tries = 0;; tries++) {
    s = js_AddStream(&si, b->js, &cfg, NULL, &jerr);
    if (s == NATS_OK || jerr == JSStreamNameExistErr)
      break;
    if (jerr != 10065 || tries == 200)
      return bxn_fail("add stream", s, jerr);
    if (js_GetStreamInfo(&si, b->js, b->stream, NULL, NULL) == NATS_OK)
      break;
    nats_Sleep(10);
  }
  jsStreamInfo_Destroy(si);
  return 0;
}

static void bxn_deliver(struct bxn *b, natsMsg *m, bx_msg_fn fn, void *ctx) {
  fn(ctx, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m), 0);
  /* Acknowledged after the benchmark has it; not waited for. */
  if (b->reliable)
    (void)natsMsg_Ack(m, NULL);
  natsMsg_Destroy(m);
}

static void bxn_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *closure) {
  struct bxn *b = closure;
  (void)nc;
  (void)sub;
  bxn_deliver(b, m, b->ep->fn, b->ep->ctx);
  uv_async_send(b->wake);
}

/* Subscribes, synchronously or (BX_UV) with a callback, and makes sure
 * the server has the subscription before the subscriber says it is
 * ready. */
static int bxn_subscribe(struct bxn *b) {
  natsStatus s;
  jsErrCode jerr = 0;
  int rv;

  if (b->reliable) {
    jsSubOptions so;
    if ((rv = bxn_stream(b)) < 0)
      return rv;
    jsSubOptions_Init(&so);
    so.Stream = b->stream;
    so.ManualAck = true;
    so.Config.DeliverPolicy = js_DeliverAll;
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.MaxAckPending = 4 * BXN_WINDOW;
    s = b->async ? js_Subscribe(&b->sub, b->js, b->subject, bxn_on_msg, b, NULL, &so, &jerr)
                 : js_SubscribeSync(&b->sub, b->js, b->subject, NULL, &so, &jerr);
  } else {
    s = b->async ? natsConnection_Subscribe(&b->sub, b->nc, b->subject, bxn_on_msg, b)
                 : natsConnection_SubscribeSync(&b->sub, b->nc, b->subject);
  }
  if (s != NATS_OK)
    return bxn_fail("subscribe", s, jerr);
  if ((s = natsConnection_FlushTimeout(b->nc, 10000)) != NATS_OK)
    return bxn_fail("flush", s, 0);
  return 0;
}

static int bxn_open(struct bx_ep *ep) {
  const struct bx_run *r = ep->run;
  natsOptions *o = NULL;
  struct bxn *b;
  natsStatus s;
  int rv = 0;

  if (ep->role != BX_PUB && ep->role != BX_SUB)
    return -ENOTSUP;
  if (!nats_up)
    return -ENOTCONN;
  if ((b = calloc(1, sizeof(*b))) == NULL)
    return -ENOMEM;
  ep->impl = b;
  b->ep = ep;
  b->reliable = r->reliable;
  b->async = ep->role == BX_SUB && r->wait == BX_UV;
  snprintf(b->subject, sizeof(b->subject), "bench.nats.%u", r->id);
  snprintf(b->stream, sizeof(b->stream), "BENCH%u", r->id);
  if ((s = natsOptions_Create(&o)) != NATS_OK ||
      (s = natsOptions_SetURL(o, bx_nats_url())) != NATS_OK ||
      (s = natsOptions_SetTimeout(o, 10000)) != NATS_OK)
    return bxn_fail("options", s, 0);
  s = natsConnection_Connect(&b->nc, o);
  natsOptions_Destroy(o);
  if (s != NATS_OK)
    return bxn_fail("connect", s, 0);
  if (b->reliable) {
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 10000;
    if (ep->role == BX_PUB) {
      jo.PublishAsync.MaxPending = BXN_WINDOW;
      jo.PublishAsync.StallWait = BX_SEND_TIMEOUT_MS;
      jo.PublishAsync.ErrHandler = bxn_pub_error;
      jo.PublishAsync.ErrHandlerClosure = b;
    }
    if ((s = natsConnection_JetStream(&b->js, b->nc, &jo)) != NATS_OK)
      return bxn_fail("JetStream context", s, 0);
  }
  /* BX_UV subscribes in uv_start, once the loop exists. */
  if (ep->role == BX_SUB && !b->async)
    rv = bxn_subscribe(b);
  return rv;
}

static int bxn_send(struct bx_ep *ep, const void *data, size_t len, bool must) {
  struct bxn *b = ep->impl;
  natsStatus s;

  if (len > BXN_MAX_SIZE)
    return -EMSGSIZE;
  if (b->reliable) {
    s = js_PublishAsync(b->js, b->subject, data, (int)len, NULL);
    if (s != NATS_OK)
      return bxn_fail("JetStream publish", s, 0);
    if (must) {
      jsPubOptions po;
      jsPubOptions_Init(&po);
      po.MaxWait = BX_SEND_TIMEOUT_MS;
      if ((s = js_PublishAsyncComplete(b->js, &po)) != NATS_OK)
        return bxn_fail("JetStream publish completion", s, 0);
    }
    if (atomic_load_explicit(&b->pub_errors, memory_order_relaxed) != 0)
      return -EIO;
    return 0;
  }
  s = natsConnection_Publish(b->nc, b->subject, data, (int)len);
  if (s == NATS_OK && must)
    s = natsConnection_FlushTimeout(b->nc, BX_SEND_TIMEOUT_MS);
  return s == NATS_OK ? 0 : bxn_fail("publish", s, 0);
}

static int bxn_poll(struct bx_ep *ep, bx_msg_fn fn, void *ctx) {
  struct bxn *b = ep->impl;
  int n = 0;

  while (n < 1024) {
    natsMsg *m = NULL;
    natsStatus s = natsSubscription_NextMsg(&m, b->sub, 0);
    if (s == NATS_TIMEOUT)
      break;
    if (s != NATS_OK)
      return bxn_fail("next message", s, 0);
    bxn_deliver(b, m, fn, ctx);
    n++;
  }
  return n;
}

static int bxn_wait(struct bx_ep *ep, bx_msg_fn fn, void *ctx, int timeout_ms) {
  struct bxn *b = ep->impl;
  natsMsg *m = NULL;
  natsStatus s = natsSubscription_NextMsg(&m, b->sub, timeout_ms);

  if (s == NATS_TIMEOUT)
    return -ETIMEDOUT;
  if (s != NATS_OK)
    return bxn_fail("next message", s, 0);
  bxn_deliver(b, m, fn, ctx);
  return 0;
}

/* The loop only wakes up: the message was delivered on libnats's thread. */
static void bxn_on_wake(uv_async_t *a) {
  (void)a;
}

static void bxn_wake_closed(uv_handle_t *h) {
  free(h);
}

static int bxn_uv_start(struct bx_ep *ep, uv_loop_t *loop, bx_msg_fn fn, void *ctx) {
  struct bxn *b = ep->impl;
  int rv;

  (void)fn;
  (void)ctx;
  if ((b->wake = malloc(sizeof(*b->wake))) == NULL)
    return -ENOMEM;
  if ((rv = uv_async_init(loop, b->wake, bxn_on_wake)) < 0) {
    free(b->wake);
    b->wake = NULL;
    return rv;
  }
  return bxn_subscribe(b);
}

static int64_t bxn_lost(struct bx_ep *ep) {
  (void)ep;
  return -1; /* the sequence gaps are the loss */
}

static void bxn_close(struct bx_ep *ep) {
  struct bxn *b = ep->impl;

  if (b == NULL)
    return;
  if (b->sub != NULL) {
    /* An asynchronous subscription's callback may still run: drain it
     * and wait, so that none runs after this. */
    if (b->async && natsSubscription_Drain(b->sub) == NATS_OK)
      (void)natsSubscription_WaitForDrainCompletion(b->sub, 5000);
    natsSubscription_Destroy(b->sub);
  }
  /* The publisher closes last (after every subscriber finished): the
   * run's stream goes with it. */
  if (ep->role == BX_PUB && b->js != NULL)
    (void)js_DeleteStream(b->js, b->stream, NULL, NULL);
  jsCtx_Destroy(b->js);
  natsConnection_Destroy(b->nc);
  if (b->wake != NULL)
    uv_close((uv_handle_t *)b->wake, bxn_wake_closed);
  free(b);
  ep->impl = NULL;
}

const struct bx_ops bx_nats = {
    .name = "nats",
    .flags = BX_F_FANOUT | BX_F_HELLO,
    .max_size = BXN_MAX_SIZE,
    .size_note = "larger than NATS's default max_payload (1 MiB)",
    .missing = bxn_missing,
    .open = bxn_open,
    .send = bxn_send,
    .poll = bxn_poll,
    .wait = bxn_wait,
    .uv_start = bxn_uv_start,
    .lost = bxn_lost,
    .close = bxn_close,
};

#endif
