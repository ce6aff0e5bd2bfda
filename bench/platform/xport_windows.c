/* The ping-pong baselines of `shmbus-bench latency --peers` on Windows
 * (xport.h's bx_efd and bx_line; xport.c has Linux's):
 *
 *   - "cache line": as on Linux, the message is written into a buffer
 *     shared by A and B and its header's `pad` word, in the message's first
 *     cache line, is then stored (release) with a new counter; the peer
 *     spins on that word (--wait spin only).
 *   - "event": the Windows counterpart of Linux's eventfd row. The same
 *     buffer and counter, and one SetEvent per message on an auto-reset
 *     event the receiver sleeps on: WaitForSingleObject (--wait event), or
 *     the library's registered wait that wakes a libuv loop (--wait uv:
 *     src/platform/windows/loop.c, what shmbus's own uv rows use).
 *
 * The children are this program started again (bp_spawn_self), so the run
 * they rebuild has nothing that prepare() made: the buffer is a named
 * section and the events are named events, created by the parent's
 * prepare() (which holds them until unprepare()) and opened by each
 * child's open(). The names come from the bus directory (unique to the
 * bench's run, \ / : turned into -) and the run's id. Named objects live
 * in the session's Local\ namespace, open to the user's own processes. */
#include <windows.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xport.h"

#include "platform/loop.h" /* the library's watch of an event from a libuv loop */
#include "platform/windows/win.h"

/* What the parent's prepare() made, held until unprepare() (one run at a
 * time). */
static HANDLE bxw_section;
static HANDLE bxw_events[2];

/* Two buffers of run->size, one per direction, each on its own pages:
 * [0] written by A, [1] by B. */
static size_t half_len(const struct bx_run *r) {
  return (r->size + 4095) & ~(size_t)4095;
}

/* Local\shmbus-bench-<dir>-<id>-<what>, the directory's \ / : turned
 * into -. */
static void bxw_name(const struct bx_run *r, const char *what, wchar_t *out, size_t cap) {
  char n[MAX_PATH + 96];
  size_t i;
  int len = snprintf(n, sizeof(n), "Local\\shmbus-bench-%s-%u-%s", r->dir != NULL ? r->dir : "",
                     r->id, what);
  for (i = strlen("Local\\"); n[i] != '\0'; i++)
    if (n[i] == '\\' || n[i] == '/' || n[i] == ':')
      n[i] = '-';
  (void)len;
  (void)MultiByteToWideChar(CP_UTF8, 0, n, -1, out, (int)cap);
  out[cap - 1] = L'\0';
}

static int bxw_error(void) {
  return shmbus__win_error(GetLastError());
}

static void bxw_unprepare(struct bx_run *r) {
  unsigned i;
  if (r->shared != NULL)
    (void)UnmapViewOfFile(r->shared);
  r->shared = NULL;
  if (bxw_section != NULL)
    CloseHandle(bxw_section);
  bxw_section = NULL;
  for (i = 0; i < 2; i++) {
    if (bxw_events[i] != NULL)
      CloseHandle(bxw_events[i]);
    bxw_events[i] = NULL;
  }
}

/* The section, and with `events` the two events (A -> B, B -> A). The
 * names must be new: another program's object of the name is refused. */
static int bxw_prepare_with(struct bx_run *r, bool events) {
  wchar_t name[MAX_PATH + 96];
  uint64_t len = 2 * (uint64_t)half_len(r);
  unsigned i;
  int rv;

  r->shared_len = (size_t)len;
  bxw_name(r, "buf", name, sizeof(name) / sizeof(name[0]));
  bxw_section = CreateFileMappingW(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE | SEC_COMMIT,
                                   (DWORD)(len >> 32), (DWORD)len, name);
  if (bxw_section == NULL)
    return bxw_error();
  if (GetLastError() == ERROR_ALREADY_EXISTS) {
    bxw_unprepare(r);
    return -EEXIST;
  }
  if ((r->shared = MapViewOfFile(bxw_section, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, 0)) == NULL) {
    rv = bxw_error();
    bxw_unprepare(r);
    return rv;
  }
  for (i = 0; events && i < 2; i++) {
    bxw_name(r, i == 0 ? "ab" : "ba", name, sizeof(name) / sizeof(name[0]));
    if ((bxw_events[i] = CreateEventW(NULL, FALSE, FALSE, name)) == NULL ||
        GetLastError() == ERROR_ALREADY_EXISTS) {
      rv = bxw_events[i] == NULL ? bxw_error() : -EEXIST;
      bxw_unprepare(r);
      return rv;
    }
  }
  return 0;
}

static int bxl_prepare(struct bx_run *r) {
  return bxw_prepare_with(r, false);
}

static int bxe_prepare(struct bx_run *r) {
  return bxw_prepare_with(r, true);
}

/* An endpoint: its view of the section, the buffers in it, and with
 * events the one it sleeps on and the one it signals. */
struct bxw {
  unsigned char *view;
  unsigned char *out, *in;
  void *priv;           /* where a received message is copied to */
  HANDLE in_ev, out_ev; /* NULL for the cache line */
  uint32_t sent, seen;  /* message counters */
  shmbus__watch *watch; /* --wait uv: on in_ev */
  bx_msg_fn fn;         /* --wait uv: the callback and its context */
  void *ctx;
};

static void bxw_close(struct bx_ep *ep);

static void bxw_free_watch(uv_handle_t *h) {
  free(h);
}

static int bxw_open_with(struct bx_ep *ep, bool events) {
  const struct bx_run *r = ep->run;
  struct bxw *b = calloc(1, sizeof(*b));
  wchar_t name[MAX_PATH + 96];
  bool a = ep->role == BX_A;
  HANDLE sec;
  int rv = 0;

  if (b == NULL || (b->priv = malloc(r->size)) == NULL) {
    free(b);
    return -ENOMEM;
  }
  ep->impl = b;
  bxw_name(r, "buf", name, sizeof(name) / sizeof(name[0]));
  if ((sec = OpenFileMappingW(FILE_MAP_READ | FILE_MAP_WRITE, FALSE, name)) == NULL)
    rv = bxw_error();
  else if ((b->view = MapViewOfFile(sec, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, 2 * half_len(r))) ==
           NULL)
    rv = bxw_error();
  if (sec != NULL)
    CloseHandle(sec); /* the view keeps the section */
  if (rv < 0) {
    bxw_close(ep);
    return rv;
  }
  b->out = b->view + (a ? 0 : half_len(r));
  b->in = b->view + (a ? half_len(r) : 0);
  if (events) {
    HANDLE ev[2];
    unsigned i;
    for (i = 0; i < 2; i++) {
      bxw_name(r, i == 0 ? "ab" : "ba", name, sizeof(name) / sizeof(name[0]));
      if ((ev[i] = OpenEventW(EVENT_MODIFY_STATE | SYNCHRONIZE, FALSE, name)) == NULL) {
        rv = bxw_error();
        if (i == 1)
          CloseHandle(ev[0]);
        bxw_close(ep);
        return rv;
      }
    }
    b->out_ev = ev[a ? 0 : 1];
    b->in_ev = ev[a ? 1 : 0];
  }
  return 0;
}

static int bxl_open(struct bx_ep *ep) {
  return bxw_open_with(ep, false);
}

static int bxe_open(struct bx_ep *ep) {
  return bxw_open_with(ep, true);
}

static void bxw_close(struct bx_ep *ep) {
  struct bxw *b = ep->impl;
  if (b == NULL)
    return;
  /* Stops the registered wait before the event goes; the loop frees the
   * watch (bx_close runs it). */
  if (b->watch != NULL)
    shmbus__watch_close(b->watch, bxw_free_watch);
  if (b->view != NULL)
    (void)UnmapViewOfFile(b->view);
  if (b->in_ev != NULL)
    CloseHandle(b->in_ev);
  if (b->out_ev != NULL)
    CloseHandle(b->out_ev);
  free(b->priv);
  free(b);
  ep->impl = NULL;
}

static uint32_t *pad_word(unsigned char *msg) {
  return (uint32_t *)(void *)(msg + offsetof(struct bx_hdr, pad));
}

/* The message into the shared buffer, its counter last (release: the
 * bytes before the counter the peer loads). */
static void bxw_put(struct bxw *b, const void *data, size_t len) {
  size_t p = offsetof(struct bx_hdr, pad);
  memcpy(b->out, data, p);
  memcpy(b->out + p + 4, (const unsigned char *)data + p + 4, len - p - 4);
  __atomic_store_n(pad_word(b->out), ++b->sent, __ATOMIC_RELEASE);
}

static int bxl_send(struct bx_ep *ep, const void *data, size_t len, bool must) {
  (void)must;
  bxw_put(ep->impl, data, len);
  return 0;
}

/* One signal per message: what the eventfd row's write is on Linux. */
static int bxe_send(struct bx_ep *ep, const void *data, size_t len, bool must) {
  struct bxw *b = ep->impl;
  (void)must;
  bxw_put(b, data, len);
  return SetEvent(b->out_ev) ? 0 : bxw_error();
}

/* A message is there when the counter moved (acquire: pairs with the
 * sender's release store), whatever the event says: a signal may have
 * been taken by a wait that already delivered. */
static int bxw_poll(struct bx_ep *ep, bx_msg_fn fn, void *ctx) {
  struct bxw *b = ep->impl;
  uint32_t c = __atomic_load_n(pad_word(b->in), __ATOMIC_ACQUIRE);
  if (c == b->seen)
    return 0;
  b->seen = c;
  memcpy(b->priv, b->in, ep->run->size);
  fn(ctx, b->priv, ep->run->size, 0);
  return 1;
}

/* Sleeps on the event; what woke it is delivered by the caller's next
 * poll (the counter tells). */
static int bxe_wait(struct bx_ep *ep, bx_msg_fn fn, void *ctx, int timeout_ms) {
  struct bxw *b = ep->impl;
  DWORD w = WaitForSingleObject(b->in_ev, timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms);
  (void)fn;
  (void)ctx;
  if (w == WAIT_OBJECT_0)
    return 0;
  return w == WAIT_TIMEOUT ? -ETIMEDOUT : bxw_error();
}

/* --wait uv: the registered wait took the signal; drain by the counter. */
static void bxe_on_watch(shmbus__watch *w, int status, int events) {
  struct bx_ep *ep = SHMBUS__WATCH_DATA(w);
  struct bxw *b = ep->impl;
  int n;
  (void)events;
  if (status < 0) {
    ep->error = status;
    uv_stop(ep->loop);
    return;
  }
  while ((n = bxw_poll(ep, b->fn, b->ctx)) > 0)
    ;
}

static int bxe_uv_start(struct bx_ep *ep, uv_loop_t *loop, bx_msg_fn fn, void *ctx) {
  struct bxw *b = ep->impl;
  int rv;
  if ((b->watch = malloc(sizeof(*b->watch))) == NULL)
    return -ENOMEM;
  if ((rv = shmbus__watch_init(loop, b->watch, b->in_ev)) < 0) {
    free(b->watch);
    b->watch = NULL;
    return rv;
  }
  b->fn = fn;
  b->ctx = ctx;
  SHMBUS__WATCH_DATA(b->watch) = ep;
  return shmbus__watch_start(b->watch, SHMBUS__WATCH_EVENT, bxe_on_watch);
}

static int64_t no_lost(struct bx_ep *ep) {
  (void)ep;
  return -1;
}

const struct bx_ops bx_efd = {
    .name = "event",
    .flags = BX_F_LATENCY,
    .prepare = bxe_prepare,
    .unprepare = bxw_unprepare,
    .open = bxe_open,
    .send = bxe_send,
    .poll = bxw_poll,
    .wait = bxe_wait,
    .uv_start = bxe_uv_start,
    .lost = no_lost,
    .close = bxw_close,
};

const struct bx_ops bx_line = {
    .name = "cache line",
    .flags = BX_F_LATENCY | BX_F_SPIN_ONLY,
    .prepare = bxl_prepare,
    .unprepare = bxw_unprepare,
    .open = bxl_open,
    .send = bxl_send,
    .poll = bxw_poll,
    .lost = no_lost,
    .close = bxw_close,
};
