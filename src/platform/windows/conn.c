/* The control connection, the peer's identity and starting the daemon, on
 * Windows: not there yet. They come with the daemon's port (issue 12, item
 * 2): a named pipe in message mode per connection (the counterpart of the
 * SOCK_SEQPACKET socket), the peer's process id from
 * GetNamedPipeClientProcessId and its user from its token
 * (ImpersonateNamedPipeClient), handles passed by DuplicateHandle, the
 * ready signal of a started daemon on an event. tests/windows/
 * primitives_test.c already checks those primitives under Wine.
 *
 * Until then every call here fails cleanly with -ENOSYS (and
 * shmbus__peer_trusted trusts nobody), so that the library links and says
 * why a bus cannot be opened on Windows. */
#include <errno.h>

#include "win.h"

#include "../platform.h"

int shmbus__unix_connect(const char *path, shmbus__conn_handle *conn) {
  (void)path, (void)conn;
  return -ENOSYS;
}

int shmbus__sock_send(shmbus__conn_handle conn, const void *buf, size_t len,
                      const shmbus__os_handle *handles, unsigned nh) {
  (void)conn, (void)buf, (void)len, (void)handles, (void)nh;
  return -ENOSYS;
}

int shmbus__sock_recv(shmbus__conn_handle conn, void *buf, size_t cap, shmbus__os_handle *handles,
                      unsigned max, unsigned *nh, bool *truncated) {
  (void)conn, (void)buf, (void)cap, (void)handles, (void)max;
  *nh = 0;
  *truncated = false;
  return -ENOSYS;
}

int shmbus__peer_identity(shmbus__conn_handle conn, struct shmbus__peer_id *id) {
  (void)conn, (void)id;
  return -ENOSYS;
}

int shmbus__peer_uid(shmbus__conn_handle conn, uint32_t *uid) {
  (void)conn, (void)uid;
  return -ENOSYS;
}

bool shmbus__peer_trusted(const struct shmbus__peer_id *id) {
  (void)id;
  return false;
}

int shmbus__daemon_spawn(const char *path, const char *const args[], int timeout_ms) {
  (void)path, (void)args, (void)timeout_ms;
  return -ENOSYS;
}
