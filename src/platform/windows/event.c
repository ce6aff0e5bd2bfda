/* Wake-up events on Windows: named auto-reset events, the counterpart of a
 * subscriber's eventfd. See platform.h for the contract.
 *
 * An auto-reset (synchronization) event is signalled by SetEvent, which
 * never blocks, and stays signalled until one wait takes the signal: many
 * signals while nobody waits coalesce into one wake-up, as an eventfd's
 * counter read once does. A wait that reports an event has taken its
 * signal (shmbus__wait_readable); the caller drains it anyway, which is
 * then a no-op. libuv cannot watch such a handle: the libuv integration
 * wakes its loop from RegisterWaitForSingleObject with uv_async_send
 * (tests/windows/primitives_test.c shows the pattern). */
#include <errno.h>

#include "win.h"

#include "../platform.h"

/* NtQueryEvent's EventBasicInformation (class 0). */
struct win_event_basic {
  int type; /* 0 NotificationEvent (manual reset), 1 SynchronizationEvent */
  LONG state;
};
typedef LONG(NTAPI *nt_query_event_fn)(HANDLE, int, void *, ULONG, ULONG *);

int shmbus__event_open(shmbus__event_handle *ev) {
  SECURITY_ATTRIBUTES sa;
  wchar_t name[128];
  HANDLE h = NULL;
  int rv, tries;

  if ((rv = shmbus__win_owner_only(&sa)) < 0)
    return rv;
  /* As for sections (shm.c): a name that exists already is not ours. */
  for (tries = 0; tries < 3; tries++) {
    if ((rv = shmbus__win_object_name("ev", name, sizeof(name) / sizeof(name[0]))) < 0)
      break;
    h = CreateEventW(&sa, FALSE, FALSE, name);
    if (h == NULL) {
      rv = shmbus__win_error(GetLastError());
      break;
    }
    if (GetLastError() != ERROR_ALREADY_EXISTS)
      break;
    CloseHandle(h);
    h = NULL;
    rv = -EEXIST;
  }
  LocalFree(sa.lpSecurityDescriptor);
  if (h == NULL)
    return rv < 0 ? rv : -EIO;
  *ev = h;
  return 0;
}

int shmbus__event_signal(shmbus__event_handle ev) {
  return SetEvent(ev) ? 0 : shmbus__win_error(GetLastError());
}

void shmbus__event_drain(shmbus__event_handle ev) {
  (void)ResetEvent(ev);
}

bool shmbus__event_check(shmbus__event_handle ev) {
  static nt_query_event_fn query;
  struct win_event_basic info;
  ULONG got = 0;

  if (query == NULL)
    query = (nt_query_event_fn)(void (*)(void))shmbus__win_ntdll("NtQueryEvent");
  /* Fails for anything but an event (STATUS_OBJECT_TYPE_MISMATCH) and for
   * a handle without EVENT_QUERY_STATE. A manual-reset event would stay
   * signalled and turn every later wait into a spin: refused. */
  return query != NULL && query(ev, 0, &info, sizeof(info), &got) >= 0 && info.type == 1;
}

/* True for a control connection: a named pipe in message mode (conn.c
 * opens and creates them overlapped). */
static bool event_is_conn(HANDLE h) {
  DWORD flags = 0;
  return GetFileType(h) == FILE_TYPE_PIPE && GetNamedPipeInfo(h, &flags, NULL, NULL, NULL) &&
         (flags & PIPE_TYPE_MESSAGE) != 0;
}

int shmbus__wait_readable(const shmbus__os_handle *handles, unsigned n, int timeout_ms) {
  DWORD w, timeout = timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms;
  struct shmbus__win_conn_wait cw[4];
  HANDLE on[4];
  bool conn[4] = {false, false, false, false};
  int mask = 0, rv = 0;
  unsigned i;

  if (n == 0 || n > 4)
    return -EINVAL;
  /* A connection is not signalled when a message comes: it is waited for
   * through the event of a zero-byte read (conn.c), which is cancelled
   * before we return. */
  for (i = 0; i < n; i++) {
    on[i] = handles[i];
    cw[i].pending = false;
    cw[i].ov.hEvent = NULL;
    if (!(conn[i] = event_is_conn(handles[i])))
      continue;
    if ((rv = shmbus__win_conn_wait_arm(handles[i], &cw[i])) < 0)
      goto done;
    if (rv == 1)
      mask |= 1 << i;
    else
      on[i] = cw[i].ov.hEvent;
  }
  rv = 0;
  /* A connection readable already: only see which others are too. */
  if (mask != 0)
    timeout = 0;
  /* Not alertable: no APC runs in here, so nothing interrupts the wait
   * and no time needs to be recomputed. */
  w = WaitForMultipleObjects(n, on, FALSE, timeout);
  if (w == WAIT_TIMEOUT)
    goto done;
  if (w == WAIT_FAILED) {
    rv = shmbus__win_error(GetLastError());
  } else if (w >= WAIT_ABANDONED_0 && w < WAIT_ABANDONED_0 + n) {
    rv = -EINVAL; /* a mutex: not a handle this call takes */
  } else if (w >= WAIT_OBJECT_0 + n) {
    rv = -EIO;
  } else {
    /* WaitForMultipleObjects reports the lowest ready index; the others
     * that are ready too are found without waiting. */
    mask |= 1 << (w - WAIT_OBJECT_0);
    for (i = w - WAIT_OBJECT_0 + 1; i < n; i++)
      if (WaitForSingleObject(on[i], 0) == WAIT_OBJECT_0)
        mask |= 1 << i;
  }
done:
  for (i = 0; i < n; i++)
    if (conn[i])
      shmbus__win_conn_wait_disarm(handles[i], &cw[i]);
  return rv < 0 ? rv : mask;
}
