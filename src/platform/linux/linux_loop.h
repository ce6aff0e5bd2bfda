/* linux_loop.h: watching a descriptor from a libuv loop on Linux
 * (loop.h's contract). Every handle is a descriptor that epoll can watch,
 * so a watch is a uv_poll_t and each call is uv_poll's, inlined: the wake-up
 * path is libuv's own. Included by loop.h only. */
#ifndef SHMBUS_PLATFORM_LINUX_LOOP_H
#define SHMBUS_PLATFORM_LINUX_LOOP_H

typedef uv_poll_t shmbus__watch;
typedef uv_poll_cb shmbus__watch_cb;

#define SHMBUS__WATCH_DATA(w) ((w)->data)

static inline int shmbus__watch_init(uv_loop_t *loop, shmbus__watch *w, shmbus__os_handle h) {
  return uv_poll_init(loop, w, h);
}

/* An eventfd never hangs up; a socket's peer does (UV_DISCONNECT); a
 * pidfd (SHMBUS__WATCH_PROCESS) is readable once its process has exited,
 * and stays so. Every descriptor is level-triggered under uv_poll. */
static inline int shmbus__watch_start(shmbus__watch *w, enum shmbus__watch_kind kind,
                                      shmbus__watch_cb cb) {
  switch (kind) {
  case SHMBUS__WATCH_CONN:
    return uv_poll_start(w, UV_READABLE | UV_DISCONNECT, cb);
  case SHMBUS__WATCH_CONN_WRITABLE:
    return uv_poll_start(w, UV_READABLE | UV_DISCONNECT | UV_WRITABLE, cb);
  default:
    return uv_poll_start(w, UV_READABLE, cb);
  }
}

static inline int shmbus__watch_stop(shmbus__watch *w) {
  return uv_poll_stop(w);
}

/* uv_close takes the descriptor out of epoll inside the call. */
static inline void shmbus__watch_close(shmbus__watch *w, uv_close_cb cb) {
  uv_close((uv_handle_t *)w, cb);
}

#endif /* SHMBUS_PLATFORM_LINUX_LOOP_H */
