/* timers: repairs, sweeps, reconciliation, the hello timeout. See
 * timers.h. */
#include "timers.h"

#include <errno.h>

#include "membership.h"
#include "participant.h"
#include "platform/platform.h"

#define TIMERS_REPAIR_MAX_DELAY_MS 1000u
/* Reconciliation: records compared per tick, and the tick. A topic of
 * 4096 subscribers in 16 member files is gone through in about 26 s; the
 * default topic (64 x 16 + 16 records, most member files absent) at once. */
#define TIMERS_RECONCILE_BUDGET 256u
#define TIMERS_RECONCILE_MS 100u

static void timers_repair_turn(struct server *srv);

static void timers_on_repair(uv_timer_t *t) {
  timers_repair_turn(t->data);
}

static void timers_on_repair_idle(uv_idle_t *h) {
  timers_repair_turn(h->data);
}

/* One step of every pending repair. A repair that only ran out of budget
 * (a huge lap, H2 in docs/security.md) continues on the next loop turn,
 * after the daemon polled its sockets, through the idle handle (a 0 ms
 * timer restarted from its own callback could run again in the same
 * timer phase, without I/O in between); one that waits for a live
 * publisher between claim and commit backs off, up to once a second. */
static void timers_repair_turn(struct server *srv) {
  bool now = false;

  if (srv->stopping)
    return;
  if (registry_repair_pending(&srv->reg, &now) == 0) {
    (void)uv_idle_stop(&srv->repair_idle);
    (void)uv_timer_stop(&srv->repair_timer);
    srv->repair_delay_ms = 0;
  } else if (now) {
    (void)uv_timer_stop(&srv->repair_timer);
    (void)uv_idle_start(&srv->repair_idle, timers_on_repair_idle);
    srv->repair_delay_ms = 0;
  } else {
    (void)uv_idle_stop(&srv->repair_idle);
    srv->repair_delay_ms = srv->repair_delay_ms == 0 ? 1 : srv->repair_delay_ms * 2;
    if (srv->repair_delay_ms > TIMERS_REPAIR_MAX_DELAY_MS)
      srv->repair_delay_ms = TIMERS_REPAIR_MAX_DELAY_MS;
    (void)uv_timer_start(&srv->repair_timer, timers_on_repair, srv->repair_delay_ms, 0);
  }
  membership_reap(srv);
}

/* Arms the repair on the next loop turn when one is pending (also while
 * another one backs off: a new one must not wait for that timer); the
 * turn then decides between going on and backing off. */
void timers_schedule_repair(struct server *srv) {
  if (srv->reg.repairs == NULL || srv->stopping || uv_is_active((uv_handle_t *)&srv->repair_idle))
    return;
  (void)uv_idle_start(&srv->repair_idle, timers_on_repair_idle);
}

/* M7: a connection that does not say hello within `hello_ms` is told so
 * and closed: idle connections cannot hold the daemon's slots. One timer
 * for all, running while some connection has not said hello. */
static void timers_on_hello(uv_timer_t *t) {
  struct server *srv = t->data;
  uint64_t limit_ms = config_limits(srv->cfg)->hello_ms;
  uint64_t now = shmbus__clock_mono_ns();
  struct participant *p;

  for (p = srv->participants; p != NULL && limit_ms != 0; p = p->next) {
    if (p->hello || p->dead || (now - p->accepted_ns) / 1000000u < limit_ms)
      continue;
    participant_error(p, 0, -ETIMEDOUT,
                      "no hello within %llu ms of connecting (the daemon's limit \"hello_ms\")",
                      (unsigned long long)limit_ms);
    participant_kill(p, "no hello in time");
  }
  membership_reap(srv);
  if (srv->nohello == 0 || limit_ms == 0)
    (void)uv_timer_stop(&srv->hello_timer);
}

void timers_schedule_hello(struct server *srv) {
  uint64_t limit_ms = config_limits(srv->cfg)->hello_ms;
  uint64_t period;

  if (!srv->hello_init || srv->stopping || limit_ms == 0 ||
      uv_is_active((uv_handle_t *)&srv->hello_timer))
    return;
  /* A quarter of the limit: a silent connection goes between 1 and 1.25
   * times the limit after it connected. */
  period = limit_ms / 4 != 0 ? limit_ms / 4 : 1;
  (void)uv_timer_start(&srv->hello_timer, timers_on_hello, period, period);
}

static void timers_on_sweep(uv_timer_t *t) {
  struct server *srv = t->data;

  if (registry_sweep(&srv->reg, shmbus__clock_mono_ns()) == 0)
    (void)uv_timer_stop(&srv->sweep_timer);
  timers_schedule_repair(srv);
  membership_reap(srv);
}

void timers_schedule_sweep(struct server *srv) {
  if (srv->reg.sweeps == NULL || srv->stopping || uv_is_active((uv_handle_t *)&srv->sweep_timer))
    return;
  /* Once a second: records of dead processes go at the next tick, those of
   * live processes that never adopt them at the end of the window. */
  (void)uv_timer_start(&srv->sweep_timer, timers_on_sweep, 1000, 1000);
}

static void timers_on_reconcile(uv_timer_t *t) {
  struct server *srv = t->data;

  if (registry_reconcile(&srv->reg, TIMERS_RECONCILE_BUDGET) > 0)
    stats_update(&srv->stats);
  timers_schedule_repair(srv);
  membership_reap(srv);
}

int timers_init(struct server *srv) {
  int rv;

  if ((rv = uv_timer_init(srv->loop, &srv->repair_timer)) < 0)
    return rv;
  srv->repair_timer.data = srv;
  srv->repair_init = true;
  if ((rv = uv_idle_init(srv->loop, &srv->repair_idle)) < 0)
    return rv;
  srv->repair_idle.data = srv;
  srv->repair_idle_init = true;
  if ((rv = uv_timer_init(srv->loop, &srv->sweep_timer)) < 0)
    return rv;
  srv->sweep_timer.data = srv;
  srv->sweep_init = true;
  if ((rv = uv_timer_init(srv->loop, &srv->hello_timer)) < 0)
    return rv;
  srv->hello_timer.data = srv;
  srv->hello_init = true;
  if ((rv = uv_timer_init(srv->loop, &srv->reconcile_timer)) < 0)
    return rv;
  srv->reconcile_timer.data = srv;
  srv->reconcile_init = true;
  return uv_timer_start(&srv->reconcile_timer, timers_on_reconcile, TIMERS_RECONCILE_MS,
                        TIMERS_RECONCILE_MS);
}

/* Closes one handle if it was initialised and is not closing already. */
static void timers_close_one(uv_handle_t *h, bool init) {
  if (init && !uv_is_closing(h))
    uv_close(h, NULL);
}

void timers_close(struct server *srv) {
  timers_close_one((uv_handle_t *)&srv->repair_timer, srv->repair_init);
  timers_close_one((uv_handle_t *)&srv->repair_idle, srv->repair_idle_init);
  timers_close_one((uv_handle_t *)&srv->sweep_timer, srv->sweep_init);
  timers_close_one((uv_handle_t *)&srv->hello_timer, srv->hello_init);
  timers_close_one((uv_handle_t *)&srv->reconcile_timer, srv->reconcile_init);
}
