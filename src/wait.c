/* wait: the calls that block (shmbus_pub_wait, shmbus_pub_wait_subs,
 * shmbus_sub_recv). They sleep on the handle's wake-up event and the
 * daemon's socket at once, so the session is served while they wait.
 *
 * Thread-safety: the bus's (one thread at a time). */
#include <errno.h>

#include "bus.h"
#include "platform/platform.h"
#include "pub.h"
#include "shmbus/error.h"
#include "sub.h"

/* Waits for `fd` or the daemon's socket until `deadline_ns` (0: forever).
 * Returns 1 when fd fired, 0 for anything else, -ETIMEDOUT at the end. */
static int wait_event(shmbus_bus *bus, shmbus__event_handle fd, uint64_t deadline_ns) {
  shmbus__os_handle fds[2] = {fd, bus->session.sock};
  int timeout = -1;
  int rv;

  if (deadline_ns != 0) {
    uint64_t now = shmbus__clock_mono_ns();
    if (now >= deadline_ns)
      return -ETIMEDOUT;
    timeout = (int)((deadline_ns - now + 999999u) / 1000000u);
  }
  /* While disconnected, wake up now and then to try to reconnect. */
  if (!shmbus__handle_ok(bus->session.sock) && (timeout < 0 || timeout > (int)bus->backoff_ms))
    timeout = (int)bus->backoff_ms;
  if ((rv = shmbus__wait_readable(fds, shmbus__handle_ok(bus->session.sock) ? 2 : 1, timeout)) < 0)
    return rv;
  if (rv & 2 || !shmbus__handle_ok(bus->session.sock))
    (void)shmbus_bus_process(bus);
  if (rv & 1) {
    shmbus__event_drain(fd);
    return 1;
  }
  return 0;
}

static uint64_t wait_deadline(int timeout_ms) {
  return timeout_ms < 0 ? 0 : shmbus__clock_mono_ns() + (uint64_t)timeout_ms * 1000000u + 1;
}

int shmbus_pub_wait(shmbus_pub *pub, int timeout_ms) {
  uint64_t deadline = wait_deadline(timeout_ms);
  int rv;

  if (pub == NULL)
    return -EINVAL;
  for (;;) {
    uint64_t until;
    uint64_t wake;
    if (!shmbus__ring_pub_arm(&pub->ring))
      return 0;
    /* A reliable subscriber's deadline may end before ours. */
    if (shmbus__pub_on_full(pub, &until) == 1)
      return 0;
    wake = until != 0 && (deadline == 0 || until < deadline) ? until : deadline;
    rv = wait_event(pub->h.bus, pub->h.event_fd, wake);
    if (rv == 1)
      pub->h.woken++;
    if (rv == -ETIMEDOUT && wake != deadline)
      continue; /* the subscriber's deadline, not ours: demote it above */
    if (rv < 0)
      return rv;
  }
}

int shmbus_pub_wait_subs(shmbus_pub *pub, uint32_t n, int timeout_ms) {
  uint64_t deadline = wait_deadline(timeout_ms);
  int rv;

  if (pub == NULL)
    return -EINVAL;
  for (;;) {
    (void)shmbus_bus_process(pub->h.bus);
    if ((rv = shmbus__notify_count(&pub->h.wake)) >= 0 && (uint32_t)rv >= n)
      return rv;
    /* peer_join events arrive on the daemon's socket, which wait_event
     * watches (and reads); the publisher's own eventfd only adds an early
     * turn of the loop. */
    if ((rv = wait_event(pub->h.bus, pub->h.event_fd, deadline)) < 0)
      return rv;
  }
}

int shmbus_sub_recv(shmbus_sub *sub, void *buf, size_t cap, struct shmbus_msg_info *info,
                    int timeout_ms) {
  uint64_t deadline = wait_deadline(timeout_ms);
  int rv;

  for (;;) {
    uint64_t due;
    uint64_t wake;
    rv = shmbus_sub_try_recv(sub, buf, cap, info);
    if (rv != -EAGAIN)
      return rv;
    /* Stay awake a little first when messages came close together. */
    if (shmbus__sub_linger(sub))
      continue;
    /* With a wake threshold, publishers may let messages wait for us
     * until `due`: the earlier of it and the caller's deadline ends the
     * wait. */
    if (!shmbus__sub_sleep(sub, &due))
      continue;
    wake = due != 0 && (deadline == 0 || due < deadline) ? due : deadline;
    rv = wait_event(sub->h.bus, sub->h.event_fd, wake);
    if (rv == 1) {
      sub->h.woken++;
      continue;
    }
    if (due != 0 && (rv == 0 || (rv == -ETIMEDOUT && wake != deadline)) &&
        shmbus__clock_mono_ns() >= due) {
      shmbus__sub_timer_fired(sub);
      continue;
    }
    if (rv < 0)
      return rv;
  }
}
