/* uv: libuv integration (include/shmbus/uv.h).
 *
 * Each started handle gets a heap-allocated state holding its uv handles.
 * libuv closes handles asynchronously, so the state outlives the shmbus
 * handle that started it: closing a subscriber stops its poll, hands the
 * eventfd to the state, and the state frees itself (and closes the fd) from
 * libuv's close callback. A callback that closes its own subscriber or bus
 * is safe: the drain loop checks after every callback whether its handle is
 * still there.
 *
 * The core knows none of this: the first start on a bus installs uvg_ops
 * (struct shmbus__loop_ops, bus.h), through which the core tells us that
 * the socket changed or that a handle or the bus goes away. Static names
 * here use the prefix uvg_ ("uv glue"), never libuv's own uv_. */
#include <errno.h>
#include <stdlib.h>

#include "bus.h"
#include "discover.h"
#include "platform/loop.h"
#include "platform/platform.h"
#include "shmbus/error.h"
#include "shmbus/uv.h"
#include "sub.h"

#include <uv.h>

#define UVG_BATCH 256

struct shmbus__uv_handle {
  shmbus__watch poll;       /* on the handle's event (which the handle owns) */
  uv_idle_t idle;           /* continues a drain, or delivers "writable" at once */
  uv_timer_t timer;         /* subscribers: ends a sleep with a wake threshold */
  unsigned closing;         /* uv handles still to be closed */
  struct shmbus__handle *h; /* NULL once stopped or closed */
  shmbus_uv_msg_cb msg_cb;
  shmbus_uv_writable_cb writable_cb;
  shmbus_uv_error_cb error_cb;
  int error; /* what stopped delivery, 0 while it runs */
  void *arg;
  unsigned char *copy; /* lossy subscribers: a private copy of one message */
  size_t copy_cap;
  bool delivering; /* inside msg_cb */
  bool inplace;    /* lossy subscribers too get the slot itself (start_inplace) */
  int verdict;     /* in-place: the last shmbus_uv_sub_intact of this message, 1 none yet */
  bool stop_asked; /* shmbus_uv_sub_stop from inside msg_cb: stop once it returned */
};

struct shmbus__uv_bus {
  uv_loop_t *loop;
  shmbus__watch *poll; /* on the daemon socket, NULL while disconnected */
  uv_timer_t *timer;   /* reconnect attempts */
  uint64_t gen;        /* the connection generation the watch was made for */
  shmbus_bus *bus;
};

/* ---- closing -------------------------------------------------------- */

static void uvg_state_closed(uv_handle_t *uvh) {
  struct shmbus__uv_handle *u = uvh->data;
  if (--u->closing > 0)
    return;
  free(u->copy);
  free(u);
}

static void uvg_handle_release(struct shmbus__handle *h) {
  struct shmbus__uv_handle *u = h->uv;
  if (u == NULL)
    return;
  h->uv = NULL;
  u->h = NULL;
  /* shmbus__watch_close stops watching the event at once (platform/loop.h;
   * on Linux libuv removes it from epoll inside the call), so the handle
   * keeps its event and may close it right after; only the state's memory
   * waits for the close callbacks. */
  u->closing = 3;
  shmbus__watch_close(&u->poll, uvg_state_closed);
  uv_close((uv_handle_t *)&u->idle, uvg_state_closed);
  uv_close((uv_handle_t *)&u->timer, uvg_state_closed);
}

static void uvg_free_handle(uv_handle_t *uvh) {
  free(uvh);
}

static void uvg_bus_unwatch(struct shmbus__uv_bus *ub) {
  if (ub->poll != NULL) {
    shmbus__watch_close(ub->poll, uvg_free_handle);
    ub->poll = NULL;
  }
}

static void uvg_bus_release(shmbus_bus *bus) {
  struct shmbus__uv_bus *ub = bus->uv;
  if (ub == NULL)
    return;
  bus->uv = NULL;
  uvg_bus_unwatch(ub);
  uv_close((uv_handle_t *)ub->timer, uvg_free_handle);
  free(ub);
}

/* ---- the bus --------------------------------------------------------- */

static void uvg_bus_process(struct shmbus__uv_bus *ub) {
  /* shmbus_bus_process calls uvg_bus_changed (bus->loop) when the socket
   * changes, which re-arms the watch or the timer. */
  (void)shmbus_bus_process(ub->bus);
}

static void uvg_bus_readable(shmbus__watch *p, int status, int events) {
  (void)status;
  (void)events;
  uvg_bus_process(SHMBUS__WATCH_DATA(p));
}

static void uvg_bus_timer(uv_timer_t *t) {
  uvg_bus_process(t->data);
}

/* Watches the current socket, or schedules a reconnect without one. */
static int uvg_bus_watch(struct shmbus__uv_bus *ub) {
  int rv;

  uvg_bus_unwatch(ub);
  ub->gen = ub->bus->session.gen;
  if (!shmbus__handle_ok(ub->bus->session.sock))
    return uv_timer_start(ub->timer, uvg_bus_timer, ub->bus->backoff_ms, 0);
  (void)uv_timer_stop(ub->timer);
  ub->poll = malloc(sizeof(*ub->poll));
  if (ub->poll == NULL)
    return -ENOMEM;
  if ((rv = shmbus__watch_init(ub->loop, ub->poll, ub->bus->session.sock)) < 0) {
    free(ub->poll);
    ub->poll = NULL;
    return rv;
  }
  SHMBUS__WATCH_DATA(ub->poll) = ub;
  return shmbus__watch_start(ub->poll, SHMBUS__WATCH_CONN, uvg_bus_readable);
}

static void uvg_bus_changed(shmbus_bus *bus) {
  struct shmbus__uv_bus *ub = bus->uv;
  if (ub == NULL)
    return;
  /* A new connection (even on the same fd number) needs a new watch;
   * without one, the reconnect timer must stay armed. */
  if (ub->gen != bus->session.gen || !shmbus__handle_ok(bus->session.sock))
    (void)uvg_bus_watch(ub);
}

static void uvg_bus_closing(shmbus_bus *bus) {
  struct shmbus__uv_bus *ub = bus->uv;
  if (ub == NULL)
    return;
  /* The socket is about to be closed (wherever that happens: a request
   * inside an open, a drain inside a publish): stop watching it first, and
   * let the timer bring the connection back. */
  uvg_bus_unwatch(ub);
  (void)uv_timer_start(ub->timer, uvg_bus_timer, ub->bus->backoff_ms, 0);
}

/* What the core calls (bus.h); installed by the first start on a bus. */
static const struct shmbus__loop_ops uvg_ops = {
    .bus_changed = uvg_bus_changed,
    .bus_closing = uvg_bus_closing,
    .bus_release = uvg_bus_release,
    .handle_release = uvg_handle_release,
};

int shmbus_uv_bus_start(shmbus_bus *bus, uv_loop_t *loop) {
  struct shmbus__uv_bus *ub;
  int rv;

  if (bus == NULL || loop == NULL)
    return -EINVAL;
  if (bus->uv != NULL)
    return SHMBUS_ESTATE;
  ub = calloc(1, sizeof(*ub));
  if (ub == NULL)
    return -ENOMEM;
  ub->timer = malloc(sizeof(*ub->timer));
  if (ub->timer == NULL) {
    free(ub);
    return -ENOMEM;
  }
  ub->loop = loop;
  ub->bus = bus;
  if ((rv = uv_timer_init(loop, ub->timer)) < 0) {
    free(ub->timer);
    free(ub);
    return rv;
  }
  ub->timer->data = ub;
  bus->uv = ub;
  bus->loop = &uvg_ops;
  if ((rv = uvg_bus_watch(ub)) < 0) {
    uvg_bus_release(bus);
    return rv;
  }
  return 0;
}

/* ---- subscribers ------------------------------------------------------- */

static int uvg_state_new(struct shmbus__handle *h, uv_loop_t *loop,
                         struct shmbus__uv_handle **out) {
  struct shmbus__uv_handle *u;
  int rv;

  if (h->uv != NULL)
    return SHMBUS_ESTATE;
  u = calloc(1, sizeof(*u));
  if (u == NULL)
    return -ENOMEM;
  u->h = h;
  if ((rv = shmbus__watch_init(loop, &u->poll, h->event_fd)) < 0) {
    free(u);
    return rv;
  }
  /* From here the poll handle exists and can only go through uv_close. */
  if ((rv = uv_idle_init(loop, &u->idle)) < 0) {
    u->closing = 1;
    SHMBUS__WATCH_DATA(&u->poll) = u;
    shmbus__watch_close(&u->poll, uvg_state_closed);
    return rv;
  }
  if ((rv = uv_timer_init(loop, &u->timer)) < 0) {
    u->closing = 2;
    SHMBUS__WATCH_DATA(&u->poll) = u;
    u->idle.data = u;
    shmbus__watch_close(&u->poll, uvg_state_closed);
    uv_close((uv_handle_t *)&u->idle, uvg_state_closed);
    return rv;
  }
  SHMBUS__WATCH_DATA(&u->poll) = u;
  u->idle.data = u;
  u->timer.data = u;
  h->uv = u;
  h->bus->loop = &uvg_ops;
  *out = u;
  return 0;
}

/* Delivers one message to the callback. Returns 1 if one was delivered, 0
 * if none was waiting, negative on error. */
static int uvg_deliver_one(struct shmbus__uv_handle *u) {
  shmbus_sub *sub = (shmbus_sub *)u->h;
  struct shmbus_msg_info info;
  int rv;

  if (sub->ring.reliable || u->inplace) {
    /* Nobody can overwrite what a reliable subscriber has not read: hand
     * out the slot itself, then end the read. A lossy one asked for the
     * slot itself (start_inplace): its callback checks with
     * shmbus_uv_sub_intact, and the end of the read counts a message
     * overwritten meanwhile as lost. */
    struct shmbus_view v;
    if ((rv = shmbus_sub_view(sub, &v)) < 0)
      return rv == -EAGAIN ? 0 : rv;
    u->delivering = true;
    u->verdict = 1;
    u->msg_cb(sub, v.data, v.info.len, &v.info, u->arg);
    u->delivering = false;
    if (u->h == NULL)
      return 1; /* the callback closed the subscriber */
    /* Ended (and counted) also when the callback stopped delivery. A
     * message the callback was last told is intact is received, whatever
     * happened to the slot since (view_end would count it lost). */
    if (u->verdict == 0) {
      shmbus__ring_view_end_confirmed(&sub->ring);
      if (sub->ring.pubs_waiting)
        shmbus__sub_wake_publishers(sub);
      rv = 1;
    } else {
      rv = shmbus_sub_view_end(sub, &v);
      rv = rv == SHMBUS_EOVERRUN ? 1 : (rv < 0 ? rv : 1);
    }
  } else {
    rv = shmbus_sub_try_recv(sub, u->copy, u->copy_cap, &info);
    if (rv == -EAGAIN)
      return 0;
    if (rv < 0)
      return rv;
    u->delivering = true;
    u->msg_cb(sub, u->copy, (size_t)rv, &info, u->arg);
    u->delivering = false;
    rv = 1;
  }
  if (u->h != NULL && u->stop_asked)
    uvg_handle_release(u->h); /* the drain loop sees u->h NULL */
  return rv;
}

static void uvg_sub_idle(uv_idle_t *idle);

/* Stops delivery on an error and says so: the error callback if there is
 * one, shmbus_uv_sub_error always. A subscriber must not just go quiet. */
static void uvg_sub_failed(struct shmbus__uv_handle *u, int code) {
  (void)shmbus__watch_stop(&u->poll);
  (void)uv_idle_stop(&u->idle);
  (void)uv_timer_stop(&u->timer);
  u->error = code;
  if (u->error_cb != NULL && u->h != NULL)
    u->error_cb((shmbus_sub *)u->h, code, u->arg);
}

/* Drains up to a batch; then either sleeps (armed), or continues from the
 * idle handle so other handles on the loop get their turn. */
static void uvg_sub_timer(uv_timer_t *t);

static void uvg_sub_drain(struct shmbus__uv_handle *u) {
  unsigned n = 0;
  uint64_t due;
  int rv;

  while (u->h != NULL) {
    rv = uvg_deliver_one(u);
    if (rv < 0) {
      /* Shared memory holds nonsense: stop rather than spin on it. */
      uvg_sub_failed(u, rv);
      return;
    }
    if (rv == 1) {
      /* The callback stopped delivery or closed the subscriber: its uv
       * handles are closing, and none may be started again. libuv does
       * not refuse to start a closing idle handle: it would stay active
       * after its close (and after the state's memory is freed), and
       * keep the loop alive for ever. */
      if (u->h == NULL)
        return;
      if (++n < UVG_BATCH)
        continue;
      (void)uv_idle_start(&u->idle, uvg_sub_idle);
      return;
    }
    /* Stay awake a little first when messages came close together. */
    if (shmbus__sub_linger((shmbus_sub *)u->h))
      continue;
    if (shmbus__sub_sleep((shmbus_sub *)u->h, &due)) {
      (void)uv_idle_stop(&u->idle);
      /* A wake threshold: publishers may let messages wait until `due`. */
      if (due != 0) {
        uint64_t now = shmbus__clock_mono_ns();
        uint64_t ms = due > now ? (due - now + 999999u) / 1000000u : 0;
        /* libuv counts from the loop's cached time, which is as old as
         * the callbacks that ran since the loop woke up. */
        uv_update_time(u->timer.loop);
        (void)uv_timer_start(&u->timer, uvg_sub_timer, ms, 0);
      } else {
        (void)uv_timer_stop(&u->timer);
      }
      return;
    }
  }
}

/* A threshold sleep's timer ended its period (libuv's millisecond clock
 * may end it up to a millisecond early, within the documented
 * resolution). A timer left running from a sleep whose messages were read
 * since (no period pending) only drains. */
static void uvg_sub_timer(uv_timer_t *t) {
  struct shmbus__uv_handle *u = t->data;
  shmbus_sub *sub;

  if (u->h == NULL)
    return;
  sub = (shmbus_sub *)u->h;
  if (sub->timer_due_ns != 0)
    shmbus__sub_timer_fired(sub);
  uvg_sub_drain(u);
}

static void uvg_sub_idle(uv_idle_t *idle) {
  uvg_sub_drain(idle->data);
}

static void uvg_sub_readable(shmbus__watch *p, int status, int events) {
  struct shmbus__uv_handle *u = SHMBUS__WATCH_DATA(p);
  (void)events;
  if (u->h == NULL)
    return;
  if (status < 0) {
    uvg_sub_failed(u, status); /* libuv codes are negative errno values */
    return;
  }
  shmbus__event_drain(u->h->event_fd);
  u->h->woken++;
  uvg_sub_drain(u);
}

/* A start from the subscriber's own callback after a stop from it (which
 * only takes effect when the callback returns): the stop is called off and
 * delivery goes on with the new callback, as after a fresh start (no error
 * callback). The state stays: its poll handle still watches the event,
 * and a new one could not be made while it does (uv_poll_init refuses a
 * descriptor the loop watches). */
static int uvg_sub_restart(struct shmbus__uv_handle *u, uv_loop_t *loop, shmbus_uv_msg_cb cb,
                           void *arg, bool inplace) {
  shmbus_sub *sub = (shmbus_sub *)u->h;

  if (u->idle.loop != loop)
    return SHMBUS_ESTATE;
  if (!sub->ring.reliable && !inplace && u->copy == NULL) {
    u->copy_cap = sub->h.region.ring.slot_capacity;
    u->copy = malloc(u->copy_cap > 0 ? u->copy_cap : 1);
    if (u->copy == NULL)
      return -ENOMEM; /* the stop still takes effect */
  }
  u->stop_asked = false;
  u->msg_cb = cb;
  u->arg = arg;
  u->inplace = inplace;
  u->error_cb = NULL;
  return 0;
}

static int uvg_sub_start(shmbus_sub *sub, uv_loop_t *loop, shmbus_uv_msg_cb cb, void *arg,
                         bool inplace) {
  struct shmbus__uv_handle *u;
  int rv;

  if (sub == NULL || loop == NULL || cb == NULL)
    return -EINVAL;
  u = sub->h.uv;
  if (u != NULL && u->delivering && u->stop_asked)
    return uvg_sub_restart(u, loop, cb, arg, inplace);
  if ((rv = uvg_state_new(&sub->h, loop, &u)) < 0)
    return rv;
  u->msg_cb = cb;
  u->arg = arg;
  u->inplace = inplace;
  if (!sub->ring.reliable && !inplace) {
    u->copy_cap = sub->h.region.ring.slot_capacity;
    u->copy = malloc(u->copy_cap > 0 ? u->copy_cap : 1);
    if (u->copy == NULL) {
      uvg_handle_release(&sub->h);
      return -ENOMEM;
    }
  }
  if ((rv = shmbus__watch_start(&u->poll, SHMBUS__WATCH_EVENT, uvg_sub_readable)) < 0) {
    uvg_handle_release(&sub->h);
    return rv;
  }
  /* Messages may be waiting already (history): drain from the loop. */
  return uv_idle_start(&u->idle, uvg_sub_idle);
}

int shmbus_uv_sub_start(shmbus_sub *sub, uv_loop_t *loop, shmbus_uv_msg_cb cb, void *arg) {
  return uvg_sub_start(sub, loop, cb, arg, false);
}

int shmbus_uv_sub_start_inplace(shmbus_sub *sub, uv_loop_t *loop, shmbus_uv_msg_cb cb, void *arg) {
  return uvg_sub_start(sub, loop, cb, arg, true);
}

int shmbus_uv_sub_intact(const shmbus_sub *sub) {
  struct shmbus__uv_handle *u;

  if (sub == NULL)
    return -EINVAL;
  u = sub->h.uv;
  if (u == NULL || !u->delivering || !sub->ring.viewing)
    return SHMBUS_ESTATE;
  /* The answer decides how the message counts (uvg_deliver_one). */
  u->verdict = shmbus__ring_view_intact(&sub->ring) ? 0 : SHMBUS_EOVERRUN;
  return u->verdict;
}

int shmbus_uv_sub_stop(shmbus_sub *sub) {
  if (sub == NULL)
    return -EINVAL;
  /* From its own callback: the message being delivered is finished
   * (a reliable read ended and counted) before delivery stops. */
  if (sub->h.uv != NULL && sub->h.uv->delivering) {
    sub->h.uv->stop_asked = true;
    return 0;
  }
  uvg_handle_release(&sub->h);
  return 0;
}

int shmbus_uv_sub_on_error(shmbus_sub *sub, shmbus_uv_error_cb cb) {
  if (sub == NULL)
    return -EINVAL;
  if (sub->h.uv == NULL || sub->h.uv->msg_cb == NULL)
    return SHMBUS_ESTATE;
  sub->h.uv->error_cb = cb;
  return 0;
}

int shmbus_uv_sub_error(const shmbus_sub *sub) {
  if (sub == NULL)
    return -EINVAL;
  return sub->h.uv != NULL ? sub->h.uv->error : 0;
}

/* ---- publishers --------------------------------------------------------- */

static void uvg_pub_check(struct shmbus__uv_handle *u) {
  shmbus_pub *pub = (shmbus_pub *)u->h;
  shmbus_uv_writable_cb cb = u->writable_cb;

  if (cb == NULL || shmbus__ring_pub_arm(&pub->ring))
    return;
  /* One-shot: disarm before calling, so the callback may re-arm. */
  u->writable_cb = NULL;
  (void)shmbus__watch_stop(&u->poll);
  (void)uv_idle_stop(&u->idle);
  cb(pub, u->arg);
}

static void uvg_pub_readable(shmbus__watch *p, int status, int events) {
  struct shmbus__uv_handle *u = SHMBUS__WATCH_DATA(p);
  (void)status;
  (void)events;
  if (u->h == NULL)
    return;
  shmbus__event_drain(u->h->event_fd);
  u->h->woken++;
  uvg_pub_check(u);
}

static void uvg_pub_idle(uv_idle_t *idle) {
  struct shmbus__uv_handle *u = idle->data;
  (void)uv_idle_stop(idle);
  if (u->h != NULL)
    uvg_pub_check(u);
}

int shmbus_uv_pub_on_writable(shmbus_pub *pub, uv_loop_t *loop, shmbus_uv_writable_cb cb,
                              void *arg) {
  struct shmbus__uv_handle *u;
  int rv;

  if (pub == NULL || loop == NULL || cb == NULL)
    return -EINVAL;
  u = pub->h.uv;
  if (u == NULL && (rv = uvg_state_new(&pub->h, loop, &u)) < 0)
    return rv;
  u->writable_cb = cb;
  u->arg = arg;
  if ((rv = shmbus__watch_start(&u->poll, SHMBUS__WATCH_EVENT, uvg_pub_readable)) < 0)
    return rv;
  /* The first check runs from the loop, never inside this call. */
  return uv_idle_start(&u->idle, uvg_pub_idle);
}

/* ---- watches (include/shmbus/discover.h) -------------------------------- */

/* A watch's loop state: one timer that runs the watch's turns
 * (shmbus__discover_turn). It outlives the watch until libuv closed the
 * timer; `w` is NULL from the watch's release on. */
struct shmbus__uv_watch {
  uv_timer_t timer;
  shmbus_watch *w;
};

static void uvg_watch_closed(uv_handle_t *uvh) {
  free(uvh->data);
}

static void uvg_watch_timer(uv_timer_t *t) {
  struct shmbus__uv_watch *u = t->data;

  if (u->w != NULL)
    shmbus__discover_turn(u->w);
}

static void uvg_watch_schedule(shmbus_watch *w, struct shmbus__uv_watch *u, uint64_t delay_ms) {
  (void)w;
  if (uv_is_active((uv_handle_t *)&u->timer))
    return;
  (void)uv_timer_start(&u->timer, uvg_watch_timer, delay_ms, 0);
}

static void uvg_watch_release(shmbus_watch *w, struct shmbus__uv_watch *u) {
  (void)w;
  u->w = NULL;
  uv_close((uv_handle_t *)&u->timer, uvg_watch_closed);
}

static const struct shmbus__watch_loop_ops uvg_watch_ops = {uvg_watch_schedule, uvg_watch_release};

int shmbus_uv_watch_start(shmbus_watch *w, uv_loop_t *loop, shmbus_uv_watch_cb cb, void *arg) {
  struct shmbus__uv_watch *u;
  int rv;

  if (w == NULL || loop == NULL || cb == NULL)
    return -EINVAL;
  if (shmbus__discover_bus(w)->uv == NULL)
    return SHMBUS_ESTATE;
  if ((u = calloc(1, sizeof(*u))) == NULL)
    return -ENOMEM;
  if ((rv = uv_timer_init(loop, &u->timer)) < 0) {
    free(u);
    return rv;
  }
  u->timer.data = u;
  u->w = w;
  if ((rv = shmbus__discover_attach(w, &uvg_watch_ops, u, cb, arg)) < 0) {
    u->w = NULL;
    uv_close((uv_handle_t *)&u->timer, uvg_watch_closed);
    return rv;
  }
  return 0;
}
