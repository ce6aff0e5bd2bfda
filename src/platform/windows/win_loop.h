/* win_loop.h: watching a HANDLE from a libuv loop on Windows (loop.h's
 * contract; implemented in loop.c). Included by loop.h only; like
 * win_impl.h it does not include <windows.h>.
 *
 * A watch is a uv_async_t, first in the struct so that the uv handle the
 * close callback receives is at the watch's address, and the Windows part
 * (the registered wait, the zero-byte read of a connection), which lives on
 * the heap until the watch is closed. */
#ifndef SHMBUS_PLATFORM_WIN_LOOP_H
#define SHMBUS_PLATFORM_WIN_LOOP_H

struct shmbus__win_watch;

typedef struct shmbus__watch shmbus__watch;
typedef void (*shmbus__watch_cb)(shmbus__watch *w, int status, int events);

struct shmbus__watch {
  uv_async_t async;             /* woken from the registered wait */
  struct shmbus__win_watch *os; /* NULL once closed */
};

#define SHMBUS__WATCH_DATA(w) ((w)->async.data)

int shmbus__watch_init(uv_loop_t *loop, shmbus__watch *w, shmbus__os_handle h);
int shmbus__watch_start(shmbus__watch *w, enum shmbus__watch_kind kind, shmbus__watch_cb cb);
int shmbus__watch_stop(shmbus__watch *w);
void shmbus__watch_close(shmbus__watch *w, uv_close_cb cb);

#endif /* SHMBUS_PLATFORM_WIN_LOOP_H */
