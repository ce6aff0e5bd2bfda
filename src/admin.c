/* admin: requests about the daemon itself (status, stop, snapshot, topic
 * removal) on a bus's connection. See include/shmbus/bus.h and docs/protocol.md.
 *
 * A snapshot is too large for a datagram: the daemon answers with a sealed
 * memory file. Whatever comes from the daemon is untrusted here too: the
 * file must be sealed against shrinking (so reading it cannot fault), of
 * exactly the size the reply states, and at most SHMBUS_SNAPSHOT_MAX bytes;
 * its bytes are copied out before anyone looks at them, so a writer that
 * still holds the file cannot change them under a reader. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "platform/platform.h"
#include "shmbus/error.h"

int shmbus_bus_daemon_status(shmbus_bus *bus, struct shmbus_daemon_status *st) {
  struct shmbus__msg req;
  struct shmbus__msg reply;
  int rv;

  if (bus == NULL || st == NULL)
    return -EINVAL;
  if (!shmbus__handle_ok(bus->session.sock) && (rv = shmbus_bus_process(bus)) < 0)
    return rv;
  shmbus__msg_init(&req, SHMBUS__MSG_STATUS, 0);
  if ((rv = shmbus__session_request(&bus->session, &req, &reply)) < 0)
    return rv;
  shmbus__msg_close_fds(&reply);
  if (reply.type != SHMBUS__MSG_STATUS_REPLY)
    return -EPROTO;
  st->pid = reply.daemon_pid;
  st->topics = reply.topics;
  st->clients = reply.clients;
  st->uptime_ms = reply.uptime_ms;
  return 0;
}

int shmbus_bus_daemon_stop(shmbus_bus *bus) {
  struct shmbus__msg req;
  struct shmbus__msg reply;
  int rv;

  if (bus == NULL)
    return -EINVAL;
  if (!shmbus__handle_ok(bus->session.sock) && (rv = shmbus_bus_process(bus)) < 0)
    return rv;
  shmbus__msg_init(&req, SHMBUS__MSG_STOP, 0);
  if ((rv = shmbus__session_request(&bus->session, &req, &reply)) < 0)
    return rv;
  shmbus__msg_close_fds(&reply);
  return reply.type == SHMBUS__MSG_OK ? 0 : -EPROTO;
}

/* Copies the snapshot out of the daemon's memory file, after checking it. */
static int admin_read_snapshot(shmbus__shm_handle fd, uint64_t stated, void **data, size_t *len) {
  uint64_t size;
  void *map;
  void *copy;
  int rv;

  if ((rv = shmbus__shm_check(fd, UINT64_MAX, &size)) < 0)
    return rv == -EBADF ? rv : -EPROTO;
  if (size > SHMBUS_SNAPSHOT_MAX)
    return -EMSGSIZE;
  /* The stated bytes lie in the region's last page: a memfd has exactly
   * its size, while Windows sizes a section in whole pages. Only those
   * bytes are read. */
  if (stated == 0 || size < stated || size - stated >= shmbus__page_size())
    return -EPROTO;
  size = stated;
  if ((copy = malloc((size_t)size)) == NULL)
    return -ENOMEM;
  if ((rv = shmbus__shm_map(fd, size, false, &map)) < 0) {
    free(copy);
    return rv;
  }
  memcpy(copy, map, (size_t)size);
  shmbus__shm_unmap(map, size);
  *data = copy;
  *len = (size_t)size;
  return 0;
}

int shmbus_bus_snapshot(shmbus_bus *bus, const char *topic, void **data, size_t *len) {
  struct shmbus__msg req;
  struct shmbus__msg reply;
  int rv;

  if (bus == NULL || data == NULL || len == NULL)
    return -EINVAL;
  shmbus__msg_init(&req, SHMBUS__MSG_SNAPSHOT, 0);
  if (topic != NULL) {
    if ((rv = shmbus__topic_validate(topic, true)) < 0)
      return rv;
    memcpy(req.filter, topic, strlen(topic) + 1);
  }
  if (!shmbus__handle_ok(bus->session.sock) && (rv = shmbus_bus_process(bus)) < 0)
    return rv;
  if ((rv = shmbus__session_request(&bus->session, &req, &reply)) < 0)
    return rv;
  if (reply.type != SHMBUS__MSG_SNAPSHOT_REPLY || reply.nfds != 1)
    rv = -EPROTO;
  else
    rv = admin_read_snapshot(reply.fds[0], reply.size, data, len);
  shmbus__msg_close_fds(&reply);
  return rv;
}

int shmbus_bus_topic_remove(shmbus_bus *bus, const char *topic) {
  struct shmbus__msg req;
  struct shmbus__msg reply;
  int rv;

  if (bus == NULL || topic == NULL)
    return -EINVAL;
  if ((rv = shmbus__topic_validate(topic, true)) < 0)
    return rv;
  shmbus__msg_init(&req, SHMBUS__MSG_REMOVE, 0);
  memcpy(req.topic, topic, strlen(topic) + 1);
  if (!shmbus__handle_ok(bus->session.sock) && (rv = shmbus_bus_process(bus)) < 0)
    return rv;
  if ((rv = shmbus__session_request(&bus->session, &req, &reply)) < 0)
    return rv;
  shmbus__msg_close_fds(&reply);
  return reply.type == SHMBUS__MSG_OK ? 0 : -EPROTO;
}

void shmbus_snapshot_free(void *data) {
  free(data);
}
