/* reconnect: the bus's session after a daemon restart. See reconnect.h. */
#include "reconnect.h"

#include <errno.h>
#include <string.h>

#include "bus.h"
#include "discover.h"
#include "handle.h"
#include "platform/platform.h"
#include "shmbus/error.h"

/* Re-registers one handle with a new daemon (docs/protocol.md, restart). */
static int reconnect_adopt(shmbus_bus *bus, struct shmbus__handle *h) {
  struct shmbus__msg req;
  struct shmbus__msg reply;
  int rv;

  shmbus__msg_init(&req, SHMBUS__MSG_ADOPT, 0);
  memcpy(req.topic, h->topic, sizeof(req.topic));
  req.role = h->role;
  req.index = h->index;
  shmbus__handle_params_to_msg(&h->params, &req);
  req.fds[0] = h->data_fd;
  req.fds[1] = h->ctrl_fd;
  req.fds[2] = h->event_fd;
  req.nfds = 3;
  if ((rv = shmbus__session_request(&bus->session, &req, &reply)) < 0)
    return rv;
  rv = shmbus__handle_check_opened(&reply, h->role, 2);
  shmbus__msg_close_fds(&reply); /* we keep using our own mappings and fds */
  if (rv < 0)
    return rv;
  /* Peer fds we know stay valid (the peers' eventfds did not change);
   * the new daemon's peer_join events replace or add to them. */
  h->topic_id = reply.topic_id;
  h->pending_peers = reply.peers;
  return shmbus__handle_await_peers(bus, h);
}

static int reconnect_all(shmbus_bus *bus) {
  struct shmbus__handle *h;
  int rv;

  if ((rv = shmbus__session_connect(&bus->session)) < 0)
    return rv;
  for (h = bus->handles; h != NULL; h = h->next) {
    rv = reconnect_adopt(bus, h);
    if (rv == 0 || !shmbus__handle_ok(bus->session.sock) || rv == -ETIMEDOUT) {
      if (rv < 0)
        goto fail;
      continue;
    }
    /* The daemon answered but cannot adopt this record (it re-created
     * the topic, or never knew it): open the topic afresh, now or, if
     * that fails too or the handle is busy, later. One such handle never
     * costs the others their adopted records. */
    if (shmbus__handle_busy(h) || shmbus__handle_reopen(bus, h) < 0) {
      if (!shmbus__handle_ok(bus->session.sock))
        goto fail;
      if (!h->orphan) {
        h->orphan = true;
        bus->orphans++;
      }
    }
  }
  for (h = bus->handles; h != NULL; h = h->next)
    shmbus__handle_redeliver(h);
  shmbus__discover_reconnected(bus);
  return 0;

fail:
  shmbus__session_close(&bus->session);
  return rv;
}

/* Re-opens the handles a new daemon could not take back, when it is time.
 * A handle in the middle of a loan or an in-place read waits: its old
 * mapping is still in use. */
static void reconnect_orphans(shmbus_bus *bus) {
  struct shmbus__handle *h;
  bool left = false;

  if (bus->orphans == 0 || shmbus__clock_mono_ns() < bus->orphan_retry_ns)
    return;
  for (h = bus->handles; h != NULL && shmbus__handle_ok(bus->session.sock); h = h->next) {
    if (!h->orphan)
      continue;
    if (!shmbus__handle_busy(h) && shmbus__handle_reopen(bus, h) == 0) {
      h->orphan = false;
      bus->orphans--;
    } else {
      left = true;
    }
  }
  if (left)
    bus->orphan_retry_ns =
        shmbus__clock_mono_ns() + (uint64_t)SHMBUS__RECONNECT_BACKOFF_MAX_MS * 1000000u;
}

int shmbus_bus_process(shmbus_bus *bus) {
  uint64_t gen;
  int rv;

  if (bus == NULL)
    return -EINVAL;
  gen = bus->session.gen;
  if (shmbus__handle_ok(bus->session.sock)) {
    rv = shmbus__session_drain(&bus->session);
    if (rv == 0) {
      reconnect_orphans(bus);
      shmbus__discover_retry(bus);
      goto out;
    }
    /* The daemon went away: retry at once, then back off. */
    bus->retry_at_ns = 0;
    bus->backoff_ms = SHMBUS__RECONNECT_BACKOFF_MIN_MS;
  }
  if (shmbus__clock_mono_ns() < bus->retry_at_ns) {
    rv = SHMBUS_EDISCONNECTED;
    goto out;
  }
  rv = reconnect_all(bus);
  if (rv == 0) {
    bus->backoff_ms = SHMBUS__RECONNECT_BACKOFF_MIN_MS;
  } else {
    bus->retry_at_ns = shmbus__clock_mono_ns() + (uint64_t)bus->backoff_ms * 1000000u;
    bus->backoff_ms = bus->backoff_ms * 2 > SHMBUS__RECONNECT_BACKOFF_MAX_MS
                          ? SHMBUS__RECONNECT_BACKOFF_MAX_MS
                          : bus->backoff_ms * 2;
    rv = SHMBUS_EDISCONNECTED;
  }
out:
  /* A new connection needs a new watch, a lost one a timer (uv.c). */
  if (bus->loop != NULL && (bus->session.gen != gen || !shmbus__handle_ok(bus->session.sock)))
    bus->loop->bus_changed(bus);
  return rv;
}
