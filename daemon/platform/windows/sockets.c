/* sockets: the daemon's listening endpoint and its connections on Windows
 * (host.h): named pipe instances in message mode.
 *
 * A pipe has no listening socket: the daemon creates an instance, waits
 * for a client to connect to it (ConnectNamedPipe, overlapped), hands that
 * instance out as the connection and creates the next one. host_listen's
 * "listener" is therefore the manual-reset event of that pending connect:
 * it is signalled when a client has connected, and host_accept then
 * returns the instance and arms the next one. The daemon listens on one
 * endpoint; the listener's state is this file's (the daemon is single
 * threaded, host.h). The first instance is created with
 * FILE_FLAG_FIRST_PIPE_INSTANCE, so another daemon or a squatter that
 * holds the name is found at once (Windows; Wine 8 does not enforce it, and
 * the lock and the clients' check of who serves the pipe still hold). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include "host.h"
#include "platform/platform.h"
#include "users.h"
#include "platform/windows/win.h"

static struct {
  HANDLE event;   /* the listener: signalled when `pending` is connected */
  HANDLE pending; /* the instance waiting for a client, or INVALID */
  OVERLAPPED ov;  /* its ConnectNamedPipe */
  bool armed;     /* the connect is in flight */
  bool closed;    /* host_unlisten: no instance any more */
  bool system;
  char path[HOST_PATH_MAX];
} lst = {NULL, INVALID_HANDLE_VALUE, {0}, false, false, false, {0}};

/* Ends a connect in flight on the pending instance and closes it. */
static void lst_drop_pending(void) {
  DWORD n;
  if (lst.pending == INVALID_HANDLE_VALUE)
    return;
  if (lst.armed) {
    (void)CancelIoEx(lst.pending, &lst.ov);
    (void)GetOverlappedResult(lst.pending, &lst.ov, &n, TRUE);
    lst.armed = false;
  }
  CloseHandle(lst.pending);
  lst.pending = INVALID_HANDLE_VALUE;
}

/* Creates the next instance (`first`: the very first) and starts waiting
 * for its client. */
static int lst_arm(bool first) {
  DWORD e;
  int rv;

  if ((rv = shmbus__win_pipe_create(lst.path, first, lst.system, &lst.pending)) < 0) {
    lst.pending = INVALID_HANDLE_VALUE;
    return rv;
  }
  memset(&lst.ov, 0, sizeof(lst.ov));
  lst.ov.hEvent = lst.event;
  (void)ResetEvent(lst.event);
  if (ConnectNamedPipe(lst.pending, &lst.ov))
    e = ERROR_PIPE_CONNECTED;
  else
    e = GetLastError();
  if (e == ERROR_IO_PENDING) {
    lst.armed = true;
    return 0;
  }
  /* A client connected between the creation and the call: ready now. */
  if (e == ERROR_PIPE_CONNECTED) {
    (void)SetEvent(lst.event);
    return 0;
  }
  lst_drop_pending();
  return shmbus__win_error(e);
}

int host_listen(const char *path, bool system, host_sock_t *sock, bool *replaced, char *err,
                size_t errlen) {
  int rv;

  *replaced = false; /* nothing stale to replace: a pipe goes with its daemon */
  if (lst.event != NULL) {
    snprintf(err, errlen, "this daemon listens already");
    return -EBUSY;
  }
  if (strlen(path) >= sizeof(lst.path)) {
    snprintf(err, errlen, "the endpoint %s is too long", path);
    return -ENAMETOOLONG;
  }
  memcpy(lst.path, path, strlen(path) + 1);
  lst.system = system;
  lst.closed = false;
  if ((lst.event = CreateEventW(NULL, TRUE, FALSE, NULL)) == NULL) {
    rv = shmbus__win_error(GetLastError());
    snprintf(err, errlen, "cannot create the listener's event");
    return rv;
  }
  if ((rv = lst_arm(true)) < 0) {
    if (rv == -EADDRINUSE)
      snprintf(err, errlen,
               "another process serves the pipe of %s (another daemon, or someone who took "
               "the name first)",
               path);
    else
      snprintf(err, errlen, "cannot create the pipe of %s: %s", path, strerror(-rv));
    CloseHandle(lst.event);
    lst.event = NULL;
    return rv;
  }
  *sock = lst.event;
  return 0;
}

int host_unlisten(const char *path) {
  (void)path;
  /* No instance waits any more: a new client finds nothing. */
  lst_drop_pending();
  lst.closed = true;
  if (lst.event != NULL)
    (void)ResetEvent(lst.event);
  return 0;
}

int host_accept(host_sock_t listener, host_sock_t *conn) {
  DWORD n, e;
  int rv;

  if (listener != lst.event || lst.event == NULL)
    return -EBADF;
  if (lst.closed)
    return -EAGAIN;
  if (lst.pending == INVALID_HANDLE_VALUE) {
    /* Making the last instance failed: try again. */
    if ((rv = lst_arm(false)) < 0)
      return rv;
  }
  if (lst.armed) {
    if (!GetOverlappedResult(lst.pending, &lst.ov, &n, FALSE)) {
      e = GetLastError();
      if (e == ERROR_IO_INCOMPLETE)
        return -EAGAIN;
      /* The client went before it was taken: skip it, wait for the next
       * on a fresh instance. */
      lst.armed = false;
      lst_drop_pending();
      return (rv = lst_arm(false)) < 0 ? rv : -EAGAIN;
    }
    lst.armed = false;
  } else if (WaitForSingleObject(lst.event, 0) != WAIT_OBJECT_0) {
    return -EAGAIN;
  }
  *conn = lst.pending;
  lst.pending = INVALID_HANDLE_VALUE;
  /* The next instance. If that fails, the next host_accept tries again;
   * the connection taken is good either way. */
  (void)lst_arm(false);
  return 0;
}

void host_sock_close(host_sock_t sock) {
  if (sock == HOST_SOCK_INVALID || sock == NULL)
    return;
  if (sock == lst.event) {
    lst_drop_pending();
    CloseHandle(lst.event);
    lst.event = NULL;
    return;
  }
  /* A message still in flight to the client (it did not read) is
   * cancelled first: its OVERLAPPED is conn.c's until the write ends. */
  shmbus__win_conn_forget(sock);
  CloseHandle(sock);
}

void host_sock_set_sndbuf(host_sock_t sock, int bytes) {
  /* A pipe's buffers are fixed when its instance is created
   * (SHMBUS__WIN_PIPE_BUFFER). */
  (void)sock, (void)bytes;
}

int host_sock_error(host_sock_t sock) {
  /* A pipe keeps no pending error: each call reports its own. */
  (void)sock;
  return 0;
}

/* NtQueryInformationFile's FilePipeLocalInformation (class 24): the
 * quotas of this end of a pipe and what is in them. */
struct sockets_pipe_local {
  ULONG type, configuration, max_instances, instances;
  ULONG inbound_quota, read_available;
  ULONG outbound_quota, write_quota_available;
  ULONG state, end;
};
struct sockets_iosb {
  union {
    LONG status;
    void *pointer;
  } u;
  ULONG_PTR information;
};
typedef LONG(NTAPI *sockets_query_file_fn)(HANDLE, struct sockets_iosb *, void *, ULONG, int);

int host_sock_drained(host_sock_t sock) {
  static sockets_query_file_fn query;
  struct sockets_pipe_local info;
  struct sockets_iosb iosb;
  LONG st;
  int rv;

  /* A message of ours still in flight (it did not fit): not read. */
  if ((rv = shmbus__win_conn_write_wait(sock, NULL)) != 0)
    return rv == 1 ? 0 : rv;
  /* The outbound quota not available for writing holds what we wrote and
   * the client has not read (a pipe's writer sees nothing else of its
   * reader; the library's clients never leave a read of data pending,
   * which Windows would count as room). Wine 8 reports the whole quota
   * as available whatever is queued: there every socket looks drained. */
  if (query == NULL)
    query = (sockets_query_file_fn)(void (*)(void))shmbus__win_ntdll("NtQueryInformationFile");
  if (query == NULL)
    return -ENOSYS;
  memset(&info, 0, sizeof(info));
  if ((st = query(sock, &iosb, &info, sizeof(info), 24)) < 0)
    return shmbus__win_status(st);
  return info.write_quota_available >= info.outbound_quota;
}

bool host_fd_nonblocking(host_event_t fd) {
  /* SetEvent never blocks: every event a participant passes is safe to
   * signal (the daemon checks received events with shmbus__event_check). */
  (void)fd;
  return true;
}

/* Whether a group of a token counts for the rules: enabled, not
 * deny-only, and a valid SID. */
static bool sockets_group_counts(const SID_AND_ATTRIBUTES *g) {
  return (g->Attributes & SE_GROUP_ENABLED) != 0 &&
         (g->Attributes & SE_GROUP_USE_FOR_DENY_ONLY) == 0 && IsValidSid(g->Sid) &&
         GetLengthSid(g->Sid) <= SECURITY_MAX_SID_SIZE;
}

/* Fills peer's user and groups from token `tok`: the user SID (its
 * number as `uid`: users_number) and the groups that count for the rules,
 * those enabled and not deny-only, copied one after the other. */
static int sockets_token_identity(HANDLE tok, struct host_peer *peer) {
  union {
    TOKEN_USER user;
    char buf[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
  } u;
  TOKEN_GROUPS *tg = NULL;
  DWORD len = 0, i, sl, total = 0, n = 0;
  uint8_t *blob = NULL;
  PSID sid;
  int rv;

  if (!GetTokenInformation(tok, TokenUser, &u, sizeof(u), &len))
    return shmbus__win_error(GetLastError());
  sid = u.user.User.Sid;
  if (!IsValidSid(sid) || (sl = GetLengthSid(sid)) > sizeof(peer->sid))
    return -EPROTO;
  memcpy(peer->sid, sid, sl);
  peer->sid_len = (uint8_t)sl;
  if ((rv = users_number(sid, sl, &peer->uid)) < 0)
    return rv;
  /* The groups' size first, then the groups (a token's groups are fixed:
   * one retry covers nothing changing). */
  len = 0;
  if (GetTokenInformation(tok, TokenGroups, NULL, 0, &len) ||
      GetLastError() != ERROR_INSUFFICIENT_BUFFER || len == 0)
    return GetLastError() == ERROR_INSUFFICIENT_BUFFER ? -EPROTO
                                                       : shmbus__win_error(GetLastError());
  if ((tg = malloc(len)) == NULL)
    return -ENOMEM;
  if (!GetTokenInformation(tok, TokenGroups, tg, len, &len)) {
    free(tg);
    return shmbus__win_error(GetLastError());
  }
  for (i = 0; i < tg->GroupCount; i++) {
    if (!sockets_group_counts(&tg->Groups[i]))
      continue;
    total += GetLengthSid(tg->Groups[i].Sid);
  }
  if (total > 0 && (blob = malloc(total)) == NULL) {
    free(tg);
    return -ENOMEM;
  }
  total = 0;
  for (i = 0; i < tg->GroupCount; i++) {
    if (!sockets_group_counts(&tg->Groups[i]))
      continue;
    sl = GetLengthSid(tg->Groups[i].Sid);
    memcpy(blob + total, tg->Groups[i].Sid, sl);
    total += sl;
    n++;
  }
  free(tg);
  peer->groups = blob;
  peer->groups_len = total;
  peer->ngroups = n;
  return 0;
}

/* The token of the client at the other end of `conn`, process `pid`: as
 * the pipe captured it when Windows lets us impersonate (once the server
 * has read from the pipe), else its process's (as shmbus__peer_identity
 * does). */
static int sockets_client_token(HANDLE conn, DWORD pid, HANDLE *tok) {
  HANDLE proc;
  DWORD err;
  int rv;

  *tok = NULL;
  if (ImpersonateNamedPipeClient(conn)) {
    rv = OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, tok)
             ? 0
             : shmbus__win_error(GetLastError());
    if (!RevertToSelf() && rv == 0)
      rv = shmbus__win_error(GetLastError());
    if (rv < 0 && *tok != NULL) {
      CloseHandle(*tok);
      *tok = NULL;
    }
    return rv;
  }
  if ((err = GetLastError()) != ERROR_CANNOT_IMPERSONATE)
    return shmbus__win_error(err);
  if ((proc = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid)) == NULL)
    return shmbus__win_error(GetLastError());
  rv = OpenProcessToken(proc, TOKEN_QUERY, tok) ? 0 : shmbus__win_error(GetLastError());
  CloseHandle(proc);
  return rv;
}

/* Opens the client's process and keeps it in `peer`: its id cannot name
 * another process while the handle is open. Opened after the pipe gave
 * the id, so the pipe is looked at again: if the client had ended in
 * between (its end of the pipe closed with it), the id might already be
 * another process's. A process we may not open (another user's, at a
 * higher integrity) is not held. */
static int sockets_hold_process(HANDLE conn, struct host_peer *peer) {
  DWORD avail;
  HANDLE h;

  h = OpenProcess(SYNCHRONIZE | PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)peer->pid);
  if (h == NULL) {
    if (GetLastError() == ERROR_ACCESS_DENIED)
      return 0;
    host_peer_release(peer);
    return -ECONNRESET; /* no such process: the client is gone */
  }
  if (WaitForSingleObject(h, 0) == WAIT_OBJECT_0 ||
      !PeekNamedPipe(conn, NULL, 0, NULL, &avail, NULL)) {
    CloseHandle(h);
    host_peer_release(peer);
    return -ECONNRESET;
  }
  peer->process = h;
  return 0;
}

int host_peer_get(host_sock_t conn, struct host_peer *peer) {
  struct shmbus__peer_id id;
  HANDLE tok;
  int rv;

  memset(peer, 0, sizeof(*peer));
  if ((rv = shmbus__peer_identity(conn, &id)) < 0)
    return rv;
  if ((rv = sockets_client_token(conn, (DWORD)id.pid, &tok)) < 0)
    return rv;
  rv = sockets_token_identity(tok, peer);
  CloseHandle(tok);
  if (rv < 0)
    return rv;
  /* The groups must be the same user's as the identity: a process id
   * reused between the two reads would give another's. */
  if (peer->sid_len != id.sid_len || memcmp(peer->sid, id.sid, id.sid_len) != 0) {
    host_peer_release(peer);
    return -EACCES;
  }
  peer->pid = id.pid;
  peer->gid = id.gid;
  return sockets_hold_process(conn, peer);
}

int host_peer_self(struct host_peer *peer) {
  HANDLE tok;
  int rv;

  memset(peer, 0, sizeof(*peer));
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
    return shmbus__win_error(GetLastError());
  rv = sockets_token_identity(tok, peer);
  CloseHandle(tok);
  peer->pid = (int32_t)GetCurrentProcessId();
  return rv;
}

void host_peer_release(struct host_peer *peer) {
  if (peer->process != NULL)
    CloseHandle(peer->process);
  peer->process = NULL;
  free(peer->groups);
  peer->groups = NULL;
  peer->groups_len = 0;
  peer->ngroups = 0;
}

host_sock_t host_peer_process(const struct host_peer *peer) {
  return peer->process != NULL ? peer->process : HOST_SOCK_INVALID;
}

uint32_t host_peer_uid(const struct host_peer *peer) {
  return peer->uid;
}

uint32_t host_peer_gid(const struct host_peer *peer) {
  return peer->gid;
}

int32_t host_peer_pid(const struct host_peer *peer) {
  return peer->pid;
}
