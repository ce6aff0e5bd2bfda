/* loop: watching an OS handle from a libuv loop (the libuv glue's part of
 * the platform contract; only src/uv.c includes it).
 *
 * The glue wakes its loop when a subscriber's or publisher's wake-up event
 * is signalled and when the bus's control connection becomes readable (or
 * breaks). How the loop learns of that is the OS's business:
 *   - Linux: the event and the connection are descriptors; a watch is a
 *     uv_poll_t and these calls are uv_poll's own, inlined (no extra call
 *     per wake-up);
 *   - Windows: libuv cannot poll an event HANDLE or a named pipe. A watch
 *     is a uv_async_t woken by a registered wait (RegisterWaitForSingleObject)
 *     on the event, or on the event of a zero-byte overlapped read on the
 *     pipe (src/platform/windows/loop.c).
 *
 * The calls, with uv_poll's meaning:
 *   shmbus__watch_init(loop, w, h)  w (the caller's memory) watches h, which
 *                         stays the caller's and must outlive the watch;
 *                         from a successful init on, w ends only through
 *                         shmbus__watch_close;
 *   shmbus__watch_start(w, kind, cb)  calls cb(w, status, events) on the
 *                         loop's thread whenever h is readable (an event:
 *                         signalled; a connection: a message waits or the
 *                         peer hung up; a process: it has ended), until
 *                         stopped. Starting a started
 *                         watch replaces its callback. A signalled event
 *                         may have been consumed already on Windows: the
 *                         callback drains what the event stands for (the
 *                         ring, the connection) whether or not it finds the
 *                         event set;
 *   shmbus__watch_stop(w)  no more callbacks until started again;
 *   shmbus__watch_close(w, cb)  stops, stops watching h before it returns
 *                         (the caller may close h right after), and calls
 *                         cb with the uv handle at w's address from the
 *                         loop once the memory of w may be freed;
 *   SHMBUS__WATCH_DATA(w)  the caller's pointer (a uv handle's `data`: the
 *                         uv_handle_t the close callback gets carries it).
 * Errors are libuv's (negative errno values). Watches are used from the
 * loop's thread only. */
#ifndef SHMBUS_PLATFORM_LOOP_H
#define SHMBUS_PLATFORM_LOOP_H

#include <uv.h>

#include "platform.h"

/* What a watch waits for. */
enum shmbus__watch_kind {
  SHMBUS__WATCH_EVENT, /* a wake-up event (shmbus__event_handle) */
  SHMBUS__WATCH_CONN,  /* a control connection (shmbus__conn_handle) */
  /* A control connection, also when it has room to send (UV_WRITABLE in
   * the callback's events). Windows: a pipe's writer learns nothing of its
   * reader's progress, so only the daemon's end, which keeps a message
   * that did not fit in flight, can be watched so: room is when that
   * write has ended. A started watch may switch between this kind and
   * SHMBUS__WATCH_CONN. */
  SHMBUS__WATCH_CONN_WRITABLE,
  /* A handle that stays ready until its owner acts (the daemon's
   * listener: a listening socket; on Windows a manual-reset event): called
   * again after each callback while it is ready. */
  SHMBUS__WATCH_LEVEL,
  /* A process (the daemon's peer: on Linux a pidfd, on Windows a process
   * HANDLE with SYNCHRONIZE access): the callback is called once the
   * process has ended, and again after each callback while the watch
   * runs (an ended process stays so). Linux: a pidfd is readable once
   * its process has exited; Windows: a process handle is signalled then,
   * and the registered wait is one-shot, re-armed after the callback as
   * for SHMBUS__WATCH_LEVEL. */
  SHMBUS__WATCH_PROCESS,
};

#if defined(_WIN32)
#include "windows/win_loop.h"
#else
#include "linux/linux_loop.h"
#endif

#endif /* SHMBUS_PLATFORM_LOOP_H */
