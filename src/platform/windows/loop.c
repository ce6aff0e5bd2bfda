/* Watching a HANDLE from a libuv loop on Windows (loop.h's contract).
 *
 * libuv's loop waits on an I/O completion port and cannot poll an event or
 * a named pipe. So each watch owns a uv_async_t and a registered wait
 * (RegisterWaitForSingleObject): the system's wait thread waits for the
 * object and its callback calls uv_async_send, the one libuv call that is
 * safe from another thread; the loop then runs the async's callback, which
 * calls the watch's callback on the loop's thread. Sends that come before
 * the loop runs the async coalesce into one callback, which is why the
 * callback drains everything the handle stands for.
 *
 *   - An event (auto-reset): the wait is registered once for as long as the
 *     watch runs. Each time the wait returns it has taken the event's
 *     signal, and the system waits again: signals that come while the loop
 *     drains wake it again, none is lost.
 *   - A level handle (the daemon's listener event) or a process (the
 *     daemon's handle of a peer's process, SYNCHRONIZE access): a one-shot
 *     wait, re-armed after the callback while the watch runs. The
 *     daemon judges a peer dead by its process's end as well as by its
 *     pipe's (a copy of the pipe's client end in another process keeps
 *     the pipe open after its owner's death).
 *   - A connection (a named pipe): a pipe is not signalled when a message
 *     comes. The watch arms a zero-byte overlapped read (conn.c's
 *     shmbus__win_conn_wait_arm), whose manual-reset event is signalled
 *     when a message arrives (it stays in the pipe) or the pipe breaks, and
 *     registers a one-shot wait on that event. The async's callback first
 *     ends that read and unregisters the wait, so nothing is pending on the
 *     pipe while the callback reads it, then calls the watch's callback,
 *     then arms again if the watch still runs.
 *   - A connection also watched for room (SHMBUS__WATCH_CONN_WRITABLE, the
 *     daemon's end of a client that does not read): a pipe's writer is told
 *     nothing of its reader's progress, but the daemon's end keeps a
 *     message that did not fit in flight (conn.c), and that write ends once
 *     the client has read enough. So the watch waits, besides the read, on
 *     the event of that write (a duplicate of it, one-shot); with no write
 *     in flight there is room, and the loop is woken at once. The callback
 *     gets UV_WRITABLE when no write is in flight any more.
 *
 * Teardown: stopping unregisters the wait with UnregisterWaitEx(wait,
 * done) and waits for `done`, which is set once no callback of the wait
 * runs (Windows's documented equivalent of UnregisterWaitEx(wait,
 * INVALID_HANDLE_VALUE), whose Wine 8 implementation crashes the process
 * when the wait fires meanwhile: docs/windows.md, "The thread-pool crash
 * that was"), and cancels the pending read (waiting until it has ended:
 * its OVERLAPPED is ours). Only then is the async closed, so the wait
 * thread never touches a closed async or freed memory. A stopped watch is
 * unref'd, as a stopped uv_poll_t does not keep the loop alive.
 *
 * Costs per wake-up: the wait thread's return and uv_async_send
 * (PostQueuedCompletionStatus), one thread switch more than epoll on
 * Linux; a connection adds the read's arming (PeekNamedPipe, CreateEvent,
 * ReadFile, RegisterWaitForSingleObject) and ending (UnregisterWaitEx,
 * WaitForSingleObject, CancelIoEx, GetOverlappedResult, CloseHandle), a
 * few per control message, never on the data path. */
#include <errno.h>
#include <stdlib.h>

#include "win.h"

#include "../loop.h"

struct shmbus__win_watch {
  HANDLE h;      /* the event or pipe watched (the caller's) */
  HANDLE wait;   /* the registered wait, NULL when none */
  HANDLE wait_w; /* CONN_WRITABLE: the wait on the write in flight, or NULL */
  HANDLE wev;    /* its event (our duplicate of it), or NULL */
  HANDLE done;   /* auto-reset: set once an unregistered wait's callbacks ended */
  enum shmbus__watch_kind kind;
  bool started; /* the caller wants callbacks */
  bool armed;   /* a wait is registered or a wake-up sent */
  shmbus__watch_cb cb;
  struct shmbus__win_conn_wait cw; /* a connection's zero-byte read */
};

/* On the system's wait thread: only wake the loop. */
static void CALLBACK loop_on_signal(void *arg, BOOLEAN timed_out) {
  shmbus__watch *w = arg;
  (void)timed_out;
  (void)uv_async_send(&w->async);
}

/* Unregisters *wait and returns once no callback of it runs any more
 * ("Teardown" above). UnregisterWaitEx says
 * ERROR_IO_PENDING when a callback was still to finish: `done` is set
 * when it has. Any other failure leaves nothing to wait for. */
static void loop_unregister(HANDLE *wait, HANDLE done) {
  if (*wait == NULL)
    return;
  if (UnregisterWaitEx(*wait, done) || GetLastError() == ERROR_IO_PENDING)
    (void)WaitForSingleObject(done, INFINITE);
  *wait = NULL;
}

/* Unregisters the waits (waiting for their callbacks to finish) and ends a
 * connection's read. Nothing refers to the watch's memory afterwards. */
static void loop_disarm(struct shmbus__win_watch *os) {
  loop_unregister(&os->wait, os->done);
  loop_unregister(&os->wait_w, os->done);
  if (os->wev != NULL) {
    CloseHandle(os->wev);
    os->wev = NULL;
  }
  if (os->kind == SHMBUS__WATCH_CONN || os->kind == SHMBUS__WATCH_CONN_WRITABLE)
    shmbus__win_conn_wait_disarm(os->h, &os->cw);
  os->armed = false;
}

static int loop_arm(shmbus__watch *w) {
  struct shmbus__win_watch *os = w->os;
  HANDLE on = os->h;
  ULONG flags = WT_EXECUTEINWAITTHREAD;
  int rv;

  if (os->kind == SHMBUS__WATCH_LEVEL || os->kind == SHMBUS__WATCH_PROCESS) {
    /* Stays signalled until the callback acts (a process that has ended
     * stays signalled for ever): one wait, then re-armed after the
     * callback, so the wait thread does not spin meanwhile. */
    flags |= WT_EXECUTEONLYONCE;
  } else if (os->kind == SHMBUS__WATCH_CONN || os->kind == SHMBUS__WATCH_CONN_WRITABLE) {
    if ((rv = shmbus__win_conn_wait_arm(os->h, &os->cw)) < 0)
      return rv;
    if (rv == 1) {
      /* Readable already: wake the loop, nothing to wait for. */
      os->armed = true;
      return uv_async_send(&w->async);
    }
    if (os->kind == SHMBUS__WATCH_CONN_WRITABLE) {
      if ((rv = shmbus__win_conn_write_wait(os->h, &os->wev)) != 1) {
        /* No write in flight: room now (or an error, which the
         * callback's next send reports). */
        os->wev = NULL;
        shmbus__win_conn_wait_disarm(os->h, &os->cw);
        os->armed = true;
        return uv_async_send(&w->async);
      }
      /* The write's event is manual-reset and stays set once it ended:
       * one wait, then the loop re-arms. */
      if (!RegisterWaitForSingleObject(&os->wait_w, os->wev, loop_on_signal, w, INFINITE,
                                       WT_EXECUTEINWAITTHREAD | WT_EXECUTEONLYONCE)) {
        rv = shmbus__win_error(GetLastError());
        os->wait_w = NULL;
        loop_disarm(os);
        return rv;
      }
    }
    /* The read's event is manual-reset: one wait, then the loop re-arms. */
    on = os->cw.ov.hEvent;
    flags |= WT_EXECUTEONLYONCE;
  }
  if (!RegisterWaitForSingleObject(&os->wait, on, loop_on_signal, w, INFINITE, flags)) {
    rv = shmbus__win_error(GetLastError());
    os->wait = NULL;
    loop_disarm(os);
    return rv;
  }
  os->armed = true;
  return 0;
}

/* On the loop's thread, once per batch of wake-ups. */
static void loop_on_async(uv_async_t *async) {
  shmbus__watch *w = (shmbus__watch *)async;
  struct shmbus__win_watch *os = w->os;
  int events = UV_READABLE;

  if (os == NULL || !os->started)
    return;
  /* A connection's read has completed: end it before reading. A one-shot
   * wait has fired: unregister it (that frees it). */
  if (os->kind != SHMBUS__WATCH_EVENT)
    loop_disarm(os);
  /* Room: no write of ours is in flight on the pipe any more. */
  if (os->kind == SHMBUS__WATCH_CONN_WRITABLE && shmbus__win_conn_write_wait(os->h, NULL) != 1)
    events |= UV_WRITABLE;
  os->cb(w, 0, events);
  /* The callback may have closed, stopped or restarted the watch. */
  if ((os = w->os) != NULL && os->started && !os->armed && loop_arm(w) < 0) {
    /* Cannot wait any more: say so, as uv_poll reports a failed poll. */
    os->started = false;
    uv_unref((uv_handle_t *)&w->async);
    os->cb(w, -EIO, 0);
  }
}

int shmbus__watch_init(uv_loop_t *loop, shmbus__watch *w, shmbus__os_handle h) {
  int rv;

  if (!shmbus__handle_ok(h))
    return -EBADF;
  if ((w->os = calloc(1, sizeof(*w->os))) == NULL)
    return -ENOMEM;
  w->os->h = h;
  if ((w->os->done = CreateEventW(NULL, FALSE, FALSE, NULL)) == NULL) {
    rv = shmbus__win_error(GetLastError());
    free(w->os);
    w->os = NULL;
    return rv;
  }
  if ((rv = uv_async_init(loop, &w->async, loop_on_async)) < 0) {
    CloseHandle(w->os->done);
    free(w->os);
    w->os = NULL;
    return rv;
  }
  uv_unref((uv_handle_t *)&w->async);
  return 0;
}

int shmbus__watch_start(shmbus__watch *w, enum shmbus__watch_kind kind, shmbus__watch_cb cb) {
  struct shmbus__win_watch *os = w->os;
  int rv;

  if (os == NULL || cb == NULL)
    return -EINVAL;
  os->cb = cb;
  if (os->started && os->kind != kind) {
    /* A connection now watched for room too, or no longer. In the
     * watch's callback nothing is armed: loop_on_async arms the new kind
     * after it. Else wait anew. */
    if (!os->armed) {
      os->kind = kind;
      return 0;
    }
    loop_disarm(os);
    os->kind = kind;
    if ((rv = loop_arm(w)) < 0) {
      os->started = false;
      uv_unref((uv_handle_t *)&w->async);
      return rv;
    }
    return 0;
  }
  if (os->started)
    return 0;
  os->kind = kind;
  if ((rv = loop_arm(w)) < 0)
    return rv;
  os->started = true;
  uv_ref((uv_handle_t *)&w->async);
  return 0;
}

int shmbus__watch_stop(shmbus__watch *w) {
  struct shmbus__win_watch *os = w->os;

  if (os == NULL || !os->started)
    return 0;
  loop_disarm(os);
  os->started = false;
  uv_unref((uv_handle_t *)&w->async);
  return 0;
}

void shmbus__watch_close(shmbus__watch *w, uv_close_cb cb) {
  if (w->os != NULL) {
    loop_disarm(w->os);
    CloseHandle(w->os->done);
    free(w->os);
    w->os = NULL;
  }
  uv_close((uv_handle_t *)&w->async, cb);
}
