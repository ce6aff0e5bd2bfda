/* sub: the subscriber API that never blocks. See sub.h; the blocking
 * calls are in wait.c. */
#include "sub.h"

#include <errno.h>
#include <string.h>

#include "handle.h"
#include "platform/platform.h"
#include "shmbus/error.h"

int shmbus_sub_open(shmbus_bus *bus, const char *topic, const struct shmbus_sub_opts *opts,
                    shmbus_sub **out) {
  struct shmbus__handle want;
  struct shmbus__handle *h;
  int rv;

  if (bus == NULL || topic == NULL || out == NULL)
    return -EINVAL;
  memset(&want, 0, sizeof(want));
  if (opts != NULL) {
    want.want.reliable = opts->reliable;
    want.want.history = opts->history;
    want.want.deadline_ms = opts->deadline_ms;
    if ((rv = shmbus__handle_want_params(&opts->topic, &want)) < 0)
      return rv;
  }
  if ((rv = shmbus__handle_open(bus, topic, SHMBUS__ROLE_SUB, &want, sizeof(shmbus_sub), &h)) < 0)
    return rv;
  *out = (shmbus_sub *)h;
  return 0;
}

void shmbus__sub_wake_publishers(shmbus_sub *sub) {
  sub->ring.pubs_waiting = false;
  shmbus__notify_wake(&sub->h.wake, &sub->h.region.ring);
}

int shmbus_sub_try_recv(shmbus_sub *sub, void *buf, size_t cap, struct shmbus_msg_info *info) {
  struct shmbus_msg_info ri;
  int rv;

  if (sub == NULL || (buf == NULL && cap > 0))
    return -EINVAL;
  /* Subscribers read their socket too when peers came or went, so events
   * never pile up there while they only poll. */
  shmbus__handle_check_peers(&sub->h);
  rv = shmbus__ring_recv(&sub->ring, buf, cap, &ri);
  if (sub->ring.pubs_waiting)
    shmbus__sub_wake_publishers(sub);
  if ((rv >= 0 || rv == -EMSGSIZE) && info != NULL)
    *info = ri;
  return rv;
}

int shmbus_sub_arm(shmbus_sub *sub) {
  if (sub == NULL)
    return -EINVAL;
  return shmbus__ring_sub_arm(&sub->ring) ? 1 : 0;
}

int shmbus_sub_view(shmbus_sub *sub, struct shmbus_view *view) {
  struct shmbus__ring_view rv_;
  int rv;

  if (sub == NULL || view == NULL)
    return -EINVAL;
  shmbus__handle_check_peers(&sub->h);
  if ((rv = shmbus__ring_view_begin(&sub->ring, &rv_)) < 0)
    return rv;
  view->data = rv_.data;
  view->info = rv_.info;
  return 0;
}

int shmbus_sub_view_end(shmbus_sub *sub, const struct shmbus_view *view) {
  struct shmbus__ring_view rv_;
  int rv;

  if (sub == NULL || view == NULL)
    return -EINVAL;
  rv_.data = view->data;
  rv_.info.seq = view->info.seq;
  rv_.info.ts_ns = view->info.ts_ns;
  rv_.info.pub_id = view->info.pub_id;
  rv_.info.len = view->info.len;
  rv = shmbus__ring_view_end(&sub->ring, &rv_);
  if (sub->ring.pubs_waiting)
    shmbus__sub_wake_publishers(sub);
  return rv;
}

void shmbus_sub_stats(const shmbus_sub *sub, struct shmbus_sub_stats *stats) {
  if (stats == NULL)
    return;
  stats->received = sub != NULL ? sub->ring.received : 0;
  stats->lost = sub != NULL ? sub->ring.lost : 0;
  stats->demoted = sub != NULL ? sub->ring.demoted : 0;
  stats->wakeups = sub != NULL ? sub->h.woken : 0;
  stats->signals = sub != NULL ? sub->h.wake.signals : 0;
}

shmbus_os_fd_t shmbus_sub_fd(const shmbus_sub *sub) {
  return sub != NULL ? sub->h.event_fd : SHMBUS_OS_FD_INVALID;
}

size_t shmbus_sub_max_size(const shmbus_sub *sub) {
  return sub != NULL ? sub->h.region.ring.slot_capacity : 0;
}

void shmbus_sub_close(shmbus_sub *sub) {
  if (sub != NULL)
    shmbus__handle_close(&sub->h);
}
