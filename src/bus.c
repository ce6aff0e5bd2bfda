/* bus: the bus's lifecycle (opening, the session with the daemon, closing)
 * for the public topic API (include/shmbus/bus.h). See bus.h for what each
 * object owns and which module does what with it. */
#include "bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "discover.h"
#include "handle.h"
#include "peer_events.h"
#include "platform/platform.h"
#include "reconnect.h"
#include "shmbus/error.h"

static void bus_on_closing(void *ctx) {
  shmbus_bus *bus = ctx;

  if (bus->loop != NULL)
    bus->loop->bus_closing(bus);
}

void shmbus_bus_opts_init(struct shmbus_bus_opts *o) {
  memset(o, 0, sizeof(*o));
  o->autostart = SHMBUS_AUTOSTART_DEFAULT;
}

int shmbus_bus_open(shmbus_bus **out, const struct shmbus_bus_opts *opts) {
  struct shmbus_bus_opts defaults;
  shmbus_bus *bus;
  int rv;

  if (out == NULL)
    return -EINVAL;
  if (opts == NULL) {
    shmbus_bus_opts_init(&defaults);
    opts = &defaults;
  }
  bus = calloc(1, sizeof(*bus));
  if (bus == NULL)
    return -ENOMEM;
  bus->backoff_ms = SHMBUS__RECONNECT_BACKOFF_MIN_MS;
  if ((rv = shmbus__session_init(&bus->session, opts->dir, opts->name, opts->autostart,
                                 opts->daemon_path, opts->timeout_ms, shmbus__peer_event, bus)) < 0)
    goto fail;
  bus->session.on_closing = bus_on_closing;
  if ((rv = shmbus__session_connect(&bus->session)) < 0)
    goto fail;
  *out = bus;
  return 0;

fail:
  shmbus__session_close(&bus->session);
  free(bus);
  return rv;
}

shmbus_os_fd_t shmbus_bus_fd(const shmbus_bus *bus) {
  return bus != NULL ? bus->session.sock : SHMBUS_OS_FD_INVALID;
}

bool shmbus_bus_connected(const shmbus_bus *bus) {
  return bus != NULL && shmbus__handle_ok(bus->session.sock);
}

const char *shmbus_bus_last_error(const shmbus_bus *bus) {
  return bus != NULL ? bus->session.last_error : shmbus__session_open_error();
}

void shmbus_bus_close(shmbus_bus *bus) {
  if (bus == NULL)
    return;
  while (bus->handles != NULL)
    shmbus__handle_close(bus->handles);
  shmbus__discover_close_all(bus);
  if (bus->loop != NULL)
    bus->loop->bus_release(bus);
  shmbus__session_close(&bus->session);
  free(bus);
}
