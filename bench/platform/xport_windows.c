/* The ping-pong peers of `shmbus-bench latency --peers` on Windows
 * (xport.h's bx_pipe, bx_efd and bx_line; xport.c has Linux's), and the
 * list of the peers there (bx_peers):
 *
 *   - "named pipe": the counterpart of Linux's unix-socket ping-pong (see
 *     bx_pipe below): a message-mode named pipe between A and B, one
 *     WriteFile per message and a read always pending on the other side.
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
#include "xport_iox.h"
#include "xport_nats.h"

#include "platform/loop.h"     /* the library's watch of an event from a libuv loop */
#include "platform/platform.h" /* shmbus__random64 */
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

/* Waits for `h` up to timeout_ms (-1: forever): 0 once it is signalled,
 * -ETIMEDOUT, or the error. */
static int bxw_wait_handle(HANDLE h, int timeout_ms) {
  DWORD w = WaitForSingleObject(h, timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms);
  if (w == WAIT_OBJECT_0)
    return 0;
  return w == WAIT_TIMEOUT ? -ETIMEDOUT : bxw_error();
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
  (void)fn;
  (void)ctx;
  return bxw_wait_handle(b->in_ev, timeout_ms);
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

/* ---- the named pipe ---------------------------------------------------------- */

/* The counterpart of Linux's unix-socket ping-pong: the same messages (the
 * run's size, one per send), the same round trips (lat_a and lat_b of
 * shmbus_bench.c), over a named pipe in message mode between A and B, so
 * that a message arrives whole and needs no length of its own.
 *
 * B is the server. Its open() creates the pipe under a fresh name,
 * \\.\pipe\shmbus-bench-<pid>-<32 random hex digits> (128 random bits:
 * nobody can take the name first on purpose), as its first instance
 * (FILE_FLAG_FIRST_PIPE_INSTANCE: a name that exists already fails, and
 * with one instance at most nobody adds another), with a descriptor that
 * grants the user alone anything, remote clients refused. The children are
 * this program started again and cannot inherit the pipe, so the name goes
 * to A through a rendezvous the parent's prepare() made before starting
 * them: a small named section and a manual-reset named event (both new,
 * owner only). B writes the name and its process id there, then sets the
 * event; A waits for the event (bounded), opens the pipe by that name and
 * checks that its server is B's process; B waits (bounded) for its client
 * and checks that it is A's, whose id A wrote before it connected.
 *
 * Each side keeps one overlapped read of a whole message pending, into a
 * buffer of the run's size, on an auto-reset event: poll() looks whether
 * it has completed (the OVERLAPPED's status: a load, no call, which is
 * what --wait spin does), delivers and reads again; --wait event sleeps on
 * the event; --wait uv watches it with the library's registered wait
 * (src/platform/windows/loop.c), as the event peer does. A send is one
 * overlapped WriteFile, waited for if the pipe cannot take it at once (a
 * message larger than the pipe's buffer waits for the reader). A message
 * larger than the run's size, or a pipe broken before the end, fails the
 * run. */

#define BXP_NAME_CAP 96u

/* The rendezvous in the section. */
struct bxp_rdv {
  uint32_t b_pid;             /* B's process, written before the event is set */
  uint32_t a_pid;             /* A's, written before it connects */
  wchar_t name[BXP_NAME_CAP]; /* the pipe's name, NUL-terminated */
};

static HANDLE bxp_section; /* the parent's, held until unprepare() */
static HANDLE bxp_up;

static void bxp_unprepare(struct bx_run *r) {
  (void)r;
  if (bxp_section != NULL)
    CloseHandle(bxp_section);
  bxp_section = NULL;
  if (bxp_up != NULL)
    CloseHandle(bxp_up);
  bxp_up = NULL;
}

static int bxp_prepare(struct bx_run *r) {
  SECURITY_ATTRIBUTES sa;
  wchar_t name[MAX_PATH + 96];
  int rv;

  if ((rv = shmbus__win_owner_only(&sa)) < 0)
    return rv;
  bxw_name(r, "pipe-rdv", name, sizeof(name) / sizeof(name[0]));
  bxp_section = CreateFileMappingW(INVALID_HANDLE_VALUE, &sa, PAGE_READWRITE | SEC_COMMIT, 0,
                                   (DWORD)sizeof(struct bxp_rdv), name);
  if (bxp_section == NULL || GetLastError() == ERROR_ALREADY_EXISTS) {
    rv = bxp_section == NULL ? bxw_error() : -EEXIST;
    goto fail;
  }
  bxw_name(r, "pipe-up", name, sizeof(name) / sizeof(name[0]));
  if ((bxp_up = CreateEventW(&sa, TRUE, FALSE, name)) == NULL ||
      GetLastError() == ERROR_ALREADY_EXISTS) {
    rv = bxp_up == NULL ? bxw_error() : -EEXIST;
    goto fail;
  }
  LocalFree(sa.lpSecurityDescriptor);
  return 0;
fail:
  LocalFree(sa.lpSecurityDescriptor);
  bxp_unprepare(r);
  return rv;
}

/* An endpoint. */
struct bxp {
  HANDLE pipe;
  OVERLAPPED rov;       /* the pending read (auto-reset event) */
  OVERLAPPED wov;       /* a send (manual-reset event) */
  bool reading;         /* rov is in use: pending, or completed and not yet taken */
  bool sent_end;        /* A has sent END: its close waits for B to hang up */
  int error;            /* a read that could not start, for the next poll() */
  unsigned char *rbuf;  /* the run's size */
  shmbus__watch *watch; /* --wait uv: on rov's event */
  bx_msg_fn fn;         /* --wait uv: the callback and its context */
  void *ctx;
};

/* Whether the read has completed: HasOverlappedIoCompleted's test, as a
 * load with acquire (the system writes the buffer before it stores the
 * status this reads). */
static bool bxp_read_done(struct bxp *p) {
  return __atomic_load_n(&p->rov.Internal, __ATOMIC_ACQUIRE) != (ULONG_PTR)STATUS_PENDING;
}

/* A pipe's error: a broken pipe is the peer gone (-EPIPE). */
static int bxp_error(DWORD e) {
  if (e == ERROR_BROKEN_PIPE || e == ERROR_NO_DATA || e == ERROR_PIPE_NOT_CONNECTED)
    return -EPIPE;
  return shmbus__win_error(e);
}

/* Starts the next read. A read that completes at once stays in rov for
 * poll() to take, as one that completes later does. */
static int bxp_arm(struct bxp *p, size_t size) {
  DWORD e;
  if (ReadFile(p->pipe, p->rbuf, (DWORD)size, NULL, &p->rov)) {
    p->reading = true;
    return 0;
  }
  e = GetLastError();
  if (e == ERROR_IO_PENDING || e == ERROR_MORE_DATA) { /* the latter: poll() refuses it */
    p->reading = true;
    return 0;
  }
  return bxp_error(e);
}

/* The process ids at either end of the pipe, through kernel32's exports
 * (Windows Vista on). */
static bool bxp_peer_pid(HANDLE pipe, bool server, ULONG *pid) {
  return server ? GetNamedPipeClientProcessId(pipe, pid) != 0
                : GetNamedPipeServerProcessId(pipe, pid) != 0;
}

static void bxp_close(struct bx_ep *ep);

/* Maps the rendezvous (both sides). */
static int bxp_rdv_map(const struct bx_run *r, struct bxp_rdv **rdv, HANDLE *up) {
  wchar_t name[MAX_PATH + 96];
  HANDLE sec;
  int rv = 0;

  bxw_name(r, "pipe-rdv", name, sizeof(name) / sizeof(name[0]));
  if ((sec = OpenFileMappingW(FILE_MAP_READ | FILE_MAP_WRITE, FALSE, name)) == NULL)
    return bxw_error();
  *rdv = MapViewOfFile(sec, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, sizeof(**rdv));
  if (*rdv == NULL)
    rv = bxw_error();
  CloseHandle(sec); /* the view keeps the section */
  if (rv < 0)
    return rv;
  bxw_name(r, "pipe-up", name, sizeof(name) / sizeof(name[0]));
  if ((*up = OpenEventW(EVENT_MODIFY_STATE | SYNCHRONIZE, FALSE, name)) == NULL) {
    rv = bxw_error();
    (void)UnmapViewOfFile(*rdv);
    *rdv = NULL;
  }
  return rv;
}

/* B: creates the pipe, says its name, waits for A to connect. */
static int bxp_serve(struct bxp *p, const struct bx_run *r, struct bxp_rdv *rdv, HANDLE up) {
  SECURITY_ATTRIBUTES sa;
  OVERLAPPED cov;
  uint64_t rnd[2];
  DWORD buf = r->size < 4096 ? 4096 : r->size > (1u << 20) ? (1u << 20) : (DWORD)r->size, n, w;
  ULONG client = 0;
  wchar_t name[BXP_NAME_CAP];
  int rv;

  if ((rv = shmbus__random64(&rnd[0])) < 0 || (rv = shmbus__random64(&rnd[1])) < 0)
    return rv;
  if (_snwprintf(name, BXP_NAME_CAP, L"\\\\.\\pipe\\shmbus-bench-%lu-%016llx%016llx",
                 (unsigned long)GetCurrentProcessId(), (unsigned long long)rnd[0],
                 (unsigned long long)rnd[1]) < 0)
    return -ENAMETOOLONG;
  name[BXP_NAME_CAP - 1] = L'\0';
  if ((rv = shmbus__win_owner_only(&sa)) < 0)
    return rv;
  p->pipe = CreateNamedPipeW(
      name, PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
      PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS, 1, buf,
      buf, 0, &sa);
  LocalFree(sa.lpSecurityDescriptor);
  if (p->pipe == INVALID_HANDLE_VALUE) {
    p->pipe = NULL;
    return GetLastError() == ERROR_ACCESS_DENIED ? -EADDRINUSE : bxw_error();
  }
  memcpy(rdv->name, name, sizeof(name));
  rdv->b_pid = (uint32_t)GetCurrentProcessId();
  if (!SetEvent(up))
    return bxw_error();
  /* A may have connected already (ERROR_PIPE_CONNECTED). */
  memset(&cov, 0, sizeof(cov));
  if ((cov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL)) == NULL)
    return bxw_error();
  rv = 0;
  if (!ConnectNamedPipe(p->pipe, &cov)) {
    DWORD e = GetLastError();
    if (e == ERROR_IO_PENDING) {
      w = WaitForSingleObject(cov.hEvent, BX_IDLE_TIMEOUT_MS);
      if (w != WAIT_OBJECT_0) {
        rv = w == WAIT_TIMEOUT ? -ETIMEDOUT : bxw_error();
        (void)CancelIoEx(p->pipe, &cov);
      }
      if (!GetOverlappedResult(p->pipe, &cov, &n, TRUE) && rv == 0)
        rv = bxp_error(GetLastError());
    } else if (e != ERROR_PIPE_CONNECTED) {
      rv = bxp_error(e);
    }
  }
  CloseHandle(cov.hEvent);
  if (rv < 0)
    return rv;
  /* Connected: the client must be A, whose id it wrote before. */
  if (!bxp_peer_pid(p->pipe, true, &client))
    return bxw_error();
  return client == rdv->a_pid ? 0 : -EPERM;
}

/* A: waits for B's pipe, opens it, checks that B serves it. */
static int bxp_connect(struct bxp *p, struct bxp_rdv *rdv, HANDLE up) {
  wchar_t name[BXP_NAME_CAP];
  DWORD mode = PIPE_READMODE_MESSAGE, w;
  ULONG server = 0;
  static const wchar_t prefix[] = L"\\\\.\\pipe\\shmbus-bench-";

  w = WaitForSingleObject(up, BX_IDLE_TIMEOUT_MS);
  if (w != WAIT_OBJECT_0)
    return w == WAIT_TIMEOUT ? -ETIMEDOUT : bxw_error();
  /* The name as B wrote it: ours only if whole and of our kind. */
  memcpy(name, rdv->name, sizeof(name));
  if (wmemchr(name, L'\0', BXP_NAME_CAP) == NULL ||
      wcsncmp(name, prefix, sizeof(prefix) / sizeof(prefix[0]) - 1) != 0)
    return -EPROTO;
  rdv->a_pid = (uint32_t)GetCurrentProcessId();
  /* SECURITY_IDENTIFICATION: the server may learn who we are, never act as
   * us. */
  p->pipe =
      CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                  FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
  if (p->pipe == INVALID_HANDLE_VALUE) {
    p->pipe = NULL;
    return bxp_error(GetLastError());
  }
  if (!SetNamedPipeHandleState(p->pipe, &mode, NULL, NULL))
    return bxw_error();
  if (!bxp_peer_pid(p->pipe, false, &server))
    return bxw_error();
  return server == rdv->b_pid ? 0 : -EPERM;
}

static int bxp_open(struct bx_ep *ep) {
  const struct bx_run *r = ep->run;
  struct bxp *p = calloc(1, sizeof(*p));
  struct bxp_rdv *rdv = NULL;
  HANDLE up = NULL;
  int rv;

  if (ep->role != BX_A && ep->role != BX_B) {
    free(p);
    return -EINVAL;
  }
  if (p == NULL || (p->rbuf = malloc(r->size)) == NULL) {
    free(p);
    return -ENOMEM;
  }
  ep->impl = p;
  if ((p->rov.hEvent = CreateEventW(NULL, FALSE, FALSE, NULL)) == NULL ||
      (p->wov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL)) == NULL) {
    rv = bxw_error();
    bxp_close(ep);
    return rv;
  }
  if ((rv = bxp_rdv_map(r, &rdv, &up)) == 0) {
    rv = ep->role == BX_B ? bxp_serve(p, r, rdv, up) : bxp_connect(p, rdv, up);
    (void)UnmapViewOfFile(rdv);
    CloseHandle(up);
  }
  if (rv == 0)
    rv = bxp_arm(p, r->size);
  if (rv < 0)
    bxp_close(ep);
  return rv;
}

static void bxp_close(struct bx_ep *ep) {
  struct bxp *p = ep->impl;
  DWORD n;
  if (p == NULL)
    return;
  /* The registered wait stops before the event goes; the loop frees the
   * watch (bx_close runs it). */
  if (p->watch != NULL)
    shmbus__watch_close(p->watch, bxw_free_watch);
  /* A, after END: B closes its end once it has read END, which ends A's
   * read (a broken pipe). Closing before that may take END with it: under
   * Wine, a message that the server has matched to B's pending read but B
   * has not taken yet was lost when A closed at once (B's read failed with
   * a broken pipe: 2 runs of bench_test in 11 before, none in 9 after).
   * Bounded: a B that hangs is reported by its own timeout. */
  if (p->sent_end && p->reading && !bxp_read_done(p))
    (void)WaitForSingleObject(p->rov.hEvent, BX_IDLE_TIMEOUT_MS);
  /* The read must have ended before its OVERLAPPED and buffer go. */
  if (p->reading && !bxp_read_done(p)) {
    (void)CancelIoEx(p->pipe, &p->rov);
    (void)GetOverlappedResult(p->pipe, &p->rov, &n, TRUE);
  }
  if (p->pipe != NULL)
    CloseHandle(p->pipe);
  if (p->rov.hEvent != NULL)
    CloseHandle(p->rov.hEvent);
  if (p->wov.hEvent != NULL)
    CloseHandle(p->wov.hEvent);
  free(p->rbuf);
  free(p);
  ep->impl = NULL;
}

/* One message, one WriteFile: message mode keeps it whole. */
static int bxp_send(struct bx_ep *ep, const void *data, size_t len, bool must) {
  struct bxp *p = ep->impl;
  struct bx_hdr h;
  DWORD n = 0, w;
  int rv = 0;
  (void)must;
  if (len >= sizeof(h)) {
    memcpy(&h, data, sizeof(h));
    p->sent_end |= h.kind == BX_END;
  }
  if (!WriteFile(p->pipe, data, (DWORD)len, NULL, &p->wov)) {
    DWORD e = GetLastError();
    if (e != ERROR_IO_PENDING)
      return bxp_error(e);
    /* The pipe cannot take it at once: wait for the reader, bounded. */
    w = WaitForSingleObject(p->wov.hEvent, BX_SEND_TIMEOUT_MS);
    if (w != WAIT_OBJECT_0) {
      rv = w == WAIT_TIMEOUT ? -ETIMEDOUT : bxw_error();
      (void)CancelIoEx(p->pipe, &p->wov);
    }
  }
  if (!GetOverlappedResult(p->pipe, &p->wov, &n, TRUE))
    return rv < 0 ? rv : bxp_error(GetLastError());
  if (rv < 0)
    return rv;
  return n == len ? 0 : -EIO;
}

/* Delivers the messages whose reads have completed, reading again after
 * each. A read that cannot start (the peer closed its end after its last
 * message, END) fails the next call, not this one: what was delivered
 * counts first, and the caller may be done with it. */
static int bxp_poll(struct bx_ep *ep, bx_msg_fn fn, void *ctx) {
  struct bxp *p = ep->impl;
  int delivered = 0, rv;
  DWORD n;
  if (!p->reading && p->error < 0)
    return p->error;
  while (p->reading && bxp_read_done(p)) {
    p->reading = false;
    if (!GetOverlappedResult(p->pipe, &p->rov, &n, FALSE)) {
      DWORD e = GetLastError();
      /* A message longer than any of the run's. */
      return e == ERROR_MORE_DATA ? -EPROTO : bxp_error(e);
    }
    fn(ctx, p->rbuf, n, 0);
    delivered++;
    if ((rv = bxp_arm(p, ep->run->size)) < 0) {
      p->error = rv;
      break;
    }
  }
  return delivered > 0 || p->error == 0 ? delivered : p->error;
}

/* Sleeps until the read completes; the caller's next poll delivers. */
static int bxp_wait(struct bx_ep *ep, bx_msg_fn fn, void *ctx, int timeout_ms) {
  struct bxp *p = ep->impl;
  (void)fn;
  (void)ctx;
  if (bxp_read_done(p))
    return 0;
  return bxw_wait_handle(p->rov.hEvent, timeout_ms);
}

/* --wait uv: the registered wait took the read's signal; drain. */
static void bxp_on_watch(shmbus__watch *w, int status, int events) {
  struct bx_ep *ep = SHMBUS__WATCH_DATA(w);
  struct bxp *p = ep->impl;
  int n;
  (void)events;
  if (status < 0) {
    ep->error = status;
    uv_stop(ep->loop);
    return;
  }
  /* No read pending after an error: no signal will come, say it now (the
   * receive loop ignores it once its caller is done). */
  if ((n = bxp_poll(ep, p->fn, p->ctx)) < 0 || p->error < 0) {
    ep->error = n < 0 ? n : p->error;
    uv_stop(ep->loop);
  }
}

static int bxp_uv_start(struct bx_ep *ep, uv_loop_t *loop, bx_msg_fn fn, void *ctx) {
  struct bxp *p = ep->impl;
  int rv;
  if ((p->watch = malloc(sizeof(*p->watch))) == NULL)
    return -ENOMEM;
  if ((rv = shmbus__watch_init(loop, p->watch, p->rov.hEvent)) < 0) {
    free(p->watch);
    p->watch = NULL;
    return rv;
  }
  p->fn = fn;
  p->ctx = ctx;
  SHMBUS__WATCH_DATA(p->watch) = ep;
  /* A read that completed before the watch started left the event set:
   * the registered wait takes it. */
  return shmbus__watch_start(p->watch, SHMBUS__WATCH_EVENT, bxp_on_watch);
}

const struct bx_ops bx_pipe = {
    .name = "named pipe",
    .flags = BX_F_LATENCY,
    .prepare = bxp_prepare,
    .unprepare = bxp_unprepare,
    .open = bxp_open,
    .send = bxp_send,
    .poll = bxp_poll,
    .wait = bxp_wait,
    .uv_start = bxp_uv_start,
    .lost = no_lost,
    .close = bxp_close,
};

/* ---- the peers on Windows -------------------------------------------------- */

/* Linux's order, the named pipe after the unix socket, whose latency row
 * it takes (the unix socket stays, in the fan-out, skipped with its note). */
const struct bx_ops *const bx_peers[] = {&bx_uds,  &bx_pipe, &bx_zmq,  &bx_iox,
                                         &bx_nats, &bx_efd,  &bx_line, NULL};
