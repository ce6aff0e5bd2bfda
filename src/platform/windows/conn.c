/* The control connection, the peer's identity and starting the daemon, on
 * Windows. See platform.h for the contract and docs/windows.md for the
 * design.
 *
 * A control connection is a named pipe in message mode (the counterpart of
 * the SOCK_SEQPACKET socket), opened for overlapped I/O so that no call
 * here blocks: a receive looks with PeekNamedPipe before it reads, a send
 * whose message does not fit the pipe's buffer is cancelled and reported
 * as -EAGAIN, and shmbus__wait_readable (event.c) waits for a connection
 * through a zero-byte overlapped read (conn_wait_arm below).
 *
 * The bus's endpoint (a path, dir\shmbusd.sock) names the pipe
 * \\.\pipe\shmbus-<the path, with \ / : turned into ->. Pipe names are one
 * namespace for the whole machine: another user may create the name first.
 * The daemon creates its first instance with FILE_FLAG_FIRST_PIPE_INSTANCE
 * (a squatter is detected there), and a client checks who serves the pipe
 * (shmbus__peer_identity, shmbus__peer_trusted) before it sends anything.
 *
 * Handles instead of SCM_RIGHTS. Every message starts with a header that
 * says how many handles travel with it and how (struct conn_header):
 *   - CONN_PUSHED: the sender duplicated them into the receiver's process
 *     (DuplicateHandle needs PROCESS_DUP_HANDLE on the receiver) and sends
 *     their values there. Only the server end (the daemon) pushes, and only
 *     a client end accepts pushed values: the client has checked that the
 *     daemon is its own user's or the system's before it receives anything,
 *     as it trusts the daemon on Linux to send it the right descriptors.
 *   - CONN_PULL: the sender made copies in its own process (in flight) and
 *     sends their values; the receiver takes them with DuplicateHandle(
 *     sender, value, self, DUPLICATE_CLOSE_SOURCE), so the sender may close
 *     its own handles as soon as the send returns. A value that is not a
 *     handle of the sender fails the duplication: the message is refused.
 *     A client always sends this way (it cannot open a daemon that runs as
 *     another account), the daemon never trusts values named in its own
 *     process, and a client end takes nothing this way (its daemon pushes).
 * Either way a handle received is checked before the caller sees it: it
 * must be a section or an event (NtQueryObject's type), with the access the
 * library needs and no more (the access is cut down to that), else the
 * whole message is refused with -EPROTO and every handle of it closed.
 * The caller then checks the object itself (shmbus__shm_check,
 * shmbus__event_check), as on Linux. The sender's process id comes from
 * the pipe (GetNamedPipeClientProcessId / ServerProcessId), never from the
 * message. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include "win.h"

#include <aclapi.h>
#include <sddl.h>

#include "../platform.h"

/* "SHBW": the first word of every message on a connection. */
#define CONN_MAGIC 0x57424853u
/* The most handles one message carries (the contract's 16). */
#define CONN_MAX_HANDLES 16u
/* How the handles of a message travel (conn_header.mode). */
#define CONN_NONE 0u
#define CONN_PUSHED 1u
#define CONN_PULL 2u
/* The longest payload a message may carry: a bound for what a peer can
 * make us allocate (the protocol's messages are far smaller). */
#define CONN_MAX_PAYLOAD (16u * 1024u)
/* How long a connect waits for a free instance of the daemon's pipe, in
 * ms: the daemon listens on one instance and makes the next as it accepts,
 * so clients that connect at once queue here (a unix socket's backlog
 * holds them in the kernel). */
#define CONN_CONNECT_WAIT_MS 5000u

/* The header before every message's payload, then `nh` handle values (64
 * bits each), then `len` bytes of payload. Little-endian, as every Windows
 * shmbus runs on. */
struct conn_header {
  uint32_t magic;
  uint32_t len;
  uint8_t mode;
  uint8_t nh;
  uint16_t reserved;
  uint32_t reserved2;
};

#ifndef EVENT_QUERY_STATE
#define EVENT_QUERY_STATE 0x0001
#endif

/* The access a received handle keeps, per type, and what it must have. A
 * section: query (shmbus__shm_check) and map, read and perhaps write; an
 * event: query (shmbus__event_check), signal and wait. */
#define CONN_SECTION_KEEP (SECTION_QUERY | SECTION_MAP_READ | SECTION_MAP_WRITE)
#define CONN_SECTION_NEED (SECTION_QUERY | SECTION_MAP_READ)
#define CONN_EVENT_KEEP (EVENT_QUERY_STATE | EVENT_MODIFY_STATE | SYNCHRONIZE)
#define CONN_EVENT_NEED (EVENT_QUERY_STATE | EVENT_MODIFY_STATE)

/* NtQueryObject's ObjectBasicInformation (class 0) and
 * ObjectTypeInformation (class 2, a UNICODE_STRING then the name). */
struct conn_object_basic {
  ULONG attributes;
  ACCESS_MASK granted;
  ULONG handles;
  ULONG pointers;
  ULONG reserved[10];
};
struct conn_unicode {
  USHORT len;
  USHORT max;
  wchar_t *buf;
};
typedef LONG(NTAPI *nt_query_object_fn)(HANDLE, int, void *, ULONG, ULONG *);

/* ---- names ---------------------------------------------------------------- */

int shmbus__win_pipe_name(const char *endpoint, wchar_t *out, size_t cap) {
  static const wchar_t prefix[] = L"\\\\.\\pipe\\shmbus-";
  wchar_t path[SHMBUS__ENDPOINT_MAX];
  size_t n = wcslen(prefix), i;
  int rv;

  if ((rv = shmbus__win_to_utf16(endpoint, path, SHMBUS__ENDPOINT_MAX)) < 0)
    return rv;
  /* A pipe's name may have 256 characters; every character after
   * \\.\pipe\ is allowed except the backslash. */
  if (cap > 257)
    cap = 257;
  if (n + wcslen(path) + 1 > cap)
    return -ENAMETOOLONG;
  memcpy(out, prefix, n * sizeof(wchar_t));
  for (i = 0; path[i] != L'\0'; i++)
    out[n + i] = path[i] == L'\\' || path[i] == L'/' || path[i] == L':' ? L'-' : path[i];
  out[n + i] = L'\0';
  return 0;
}

/* ---- users ------------------------------------------------------------------ */

/* The user SID in `tok` into id->sid. */
static int conn_token_user(HANDLE tok, struct shmbus__peer_id *id) {
  union {
    TOKEN_USER user;
    char buf[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
  } u;
  DWORD len, sid_len;
  PSID sid;

  if (!GetTokenInformation(tok, TokenUser, &u, sizeof(u), &len))
    return shmbus__win_error(GetLastError());
  sid = u.user.User.Sid;
  sid_len = GetLengthSid(sid);
  if (!IsValidSid(sid) || sid_len > sizeof(id->sid))
    return -EINVAL;
  memcpy(id->sid, sid, sid_len);
  id->sid_len = (uint8_t)sid_len;
  id->uid = shmbus__win_sid_rid(sid);
  id->gid = 0;
  return 0;
}

int shmbus__win_self_identity(struct shmbus__peer_id *id) {
  HANDLE tok;
  int rv;

  memset(id, 0, sizeof(*id));
  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
    return shmbus__win_error(GetLastError());
  rv = conn_token_user(tok, id);
  CloseHandle(tok);
  id->pid = (int32_t)GetCurrentProcessId();
  return rv;
}

/* Security attributes for the daemon's pipe: owned by its user (so that a
 * client that cannot open the daemon's token reads who serves the pipe
 * from the owner), a protected DACL granting that user everything and, on
 * the system bus, everyone the rights to connect, read and write, but not
 * FILE_CREATE_PIPE_INSTANCE (part of GENERIC_WRITE), which would let them
 * add instances of their own. LocalFree(sa->lpSecurityDescriptor). */
static int conn_pipe_security(bool system, SECURITY_ATTRIBUTES *sa) {
  struct shmbus__peer_id self;
  wchar_t *sid = NULL, sddl[320];
  PSECURITY_DESCRIPTOR sd = NULL;
  int rv, n;

  if ((rv = shmbus__win_self_identity(&self)) < 0)
    return rv;
  if (!ConvertSidToStringSidW((PSID)self.sid, &sid))
    return shmbus__win_error(GetLastError());
  /* 0x120183: FILE_READ_DATA | FILE_WRITE_DATA | FILE_READ_ATTRIBUTES |
   * FILE_WRITE_ATTRIBUTES (a client sets message read mode) | READ_CONTROL
   * | SYNCHRONIZE. */
  n = _snwprintf(sddl, sizeof(sddl) / sizeof(sddl[0]),
                 system ? L"O:%lsD:P(A;;GA;;;%ls)(A;;0x120183;;;WD)" : L"O:%lsD:P(A;;GA;;;%ls)",
                 sid, sid);
  LocalFree(sid);
  if (n < 0 || (size_t)n >= sizeof(sddl) / sizeof(sddl[0]))
    return -ENAMETOOLONG;
  if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &sd, NULL))
    return shmbus__win_error(GetLastError());
  sa->nLength = sizeof(*sa);
  sa->lpSecurityDescriptor = sd;
  sa->bInheritHandle = FALSE;
  return 0;
}

int shmbus__win_pipe_create(const char *endpoint, bool first, bool system, HANDLE *pipe) {
  SECURITY_ATTRIBUTES sa;
  wchar_t name[260];
  DWORD open_mode = PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED;
  HANDLE h;
  int rv;

  if ((rv = shmbus__win_pipe_name(endpoint, name, sizeof(name) / sizeof(name[0]))) < 0)
    return rv;
  if ((rv = conn_pipe_security(system, &sa)) < 0)
    return rv;
  /* The first instance fails if the name exists: another daemon of the
   * bus, or someone who took the name first. */
  if (first)
    open_mode |= FILE_FLAG_FIRST_PIPE_INSTANCE;
  h = CreateNamedPipeW(
      name, open_mode,
      PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS,
      PIPE_UNLIMITED_INSTANCES, SHMBUS__WIN_PIPE_BUFFER, SHMBUS__WIN_PIPE_BUFFER, 0, &sa);
  rv = h == INVALID_HANDLE_VALUE ? GetLastError() : 0;
  LocalFree(sa.lpSecurityDescriptor);
  if (h == INVALID_HANDLE_VALUE)
    return rv == ERROR_ACCESS_DENIED && first ? -EADDRINUSE : shmbus__win_error((DWORD)rv);
  *pipe = h;
  return 0;
}

/* ---- connecting ------------------------------------------------------------- */

int shmbus__unix_connect(const char *path, shmbus__conn_handle *conn) {
  wchar_t name[260];
  DWORD mode = PIPE_READMODE_MESSAGE, err;
  HANDLE h = INVALID_HANDLE_VALUE;
  ULONGLONG deadline = GetTickCount64() + CONN_CONNECT_WAIT_MS;
  int rv;

  if ((rv = shmbus__win_pipe_name(path, name, sizeof(name) / sizeof(name[0]))) < 0)
    return rv;
  for (;;) {
    ULONGLONG now;
    /* SECURITY_IDENTIFICATION: the server may learn who we are, never act
     * as us (a squatter that took the name cannot use our rights). */
    h = CreateFileW(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                    FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
    if (h != INVALID_HANDLE_VALUE)
      break;
    err = GetLastError();
    /* Every instance taken: the daemon makes a new one as soon as it
     * accepts one, so wait for it and try again (another client may take
     * it first), up to CONN_CONNECT_WAIT_MS in all; then say the listener
     * is full, as a unix socket's full backlog does. Two tries within a
     * second were not enough for processes connecting at once under Wine. */
    if (err != ERROR_PIPE_BUSY)
      return err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND ? -ENOENT
                                                                        : shmbus__win_error(err);
    if ((now = GetTickCount64()) >= deadline)
      return -EAGAIN;
    if (!WaitNamedPipeW(name, (DWORD)(deadline - now)) && GetLastError() == ERROR_FILE_NOT_FOUND)
      return -ENOENT;
  }
  if (!SetNamedPipeHandleState(h, &mode, NULL, NULL)) {
    rv = shmbus__win_error(GetLastError());
    CloseHandle(h);
    return rv;
  }
  *conn = h;
  return 0;
}

/* True for the server end of a pipe (the daemon's). */
static bool conn_is_server(HANDLE h) {
  DWORD flags = 0;
  return GetNamedPipeInfo(h, &flags, NULL, NULL, NULL) && (flags & PIPE_SERVER_END) != 0;
}

/* The process id of the other end, as the pipe knows it. */
static int conn_peer_pid(HANDLE h, bool server, DWORD *pid) {
  BOOL ok = server ? GetNamedPipeClientProcessId(h, pid) : GetNamedPipeServerProcessId(h, pid);
  if (!ok)
    return GetLastError() == ERROR_INVALID_HANDLE ? -EBADF : -ENOTCONN;
  return *pid != 0 ? 0 : -ENOTCONN;
}

/* The peer's process opened with `access`. */
static int conn_peer_process(HANDLE h, bool server, DWORD access, HANDLE *proc) {
  DWORD pid;
  int rv;

  if ((rv = conn_peer_pid(h, server, &pid)) < 0)
    return rv;
  *proc = OpenProcess(access, FALSE, pid);
  return *proc != NULL ? 0 : shmbus__win_error(GetLastError());
}

/* ---- sending ---------------------------------------------------------------- */

/* Closes the values handles[0..n) that live in process `where` (ours:
 * GetCurrentProcess()). */
static void conn_close_remote(HANDLE where, const uint64_t *values, unsigned n) {
  unsigned i;
  for (i = 0; i < n; i++)
    (void)DuplicateHandle(where, (HANDLE)(uintptr_t)values[i], NULL, NULL, 0, FALSE,
                          DUPLICATE_CLOSE_SOURCE);
}

/* ---- writes kept pending (the daemon's end) -------------------------------------
 *
 * A client that does not read fills its pipe. A unix socket then tells the
 * daemon when it has room again (EPOLLOUT); a pipe's writer learns nothing
 * of its reader's progress, except through a write that waits for room. So
 * on the server end a message that does not fit is not taken back: its
 * overlapped write stays in flight (the message counts as sent, as one a
 * socket buffered), and until it ends every further send on that pipe is
 * -EAGAIN, which keeps the messages in order. The write ends once the
 * client has read enough; the daemon's watch for room
 * (SHMBUS__WATCH_CONN_WRITABLE, loop.c) waits on its event
 * (shmbus__win_conn_write_wait). So the daemon keeps at most one message
 * per client beyond the pipe's buffer, as a socket's buffer bounds it on
 * Linux.
 *
 * The writes in flight live in one list, under a lock (the daemon is
 * single-threaded, but conn.c is also the library's): at most one per
 * pipe, each with its message, the client's process and the values of the
 * handles pushed into it. A write that ends is reaped by the next send or
 * look; shmbus__win_conn_forget cancels one before the pipe is closed and,
 * when the client never read its message, closes the handles pushed into
 * it. */
struct conn_pending {
  struct conn_pending *next;
  HANDLE pipe;
  OVERLAPPED ov;                     /* its event: manual-reset, signalled when the write ends */
  char *msg;                         /* the message, in flight */
  HANDLE proc;                       /* the client's process (PROCESS_DUP_HANDLE) or NULL */
  uint64_t values[CONN_MAX_HANDLES]; /* handles pushed into it (its values) */
  unsigned nh;
};

static SRWLOCK conn_pending_lock = SRWLOCK_INIT;
static struct conn_pending *conn_pendings; /* under conn_pending_lock */

/* Frees a write that has ended; `delivered`: its message reached the
 * client (else the handles pushed for it are closed in the client). */
static void conn_pending_free(struct conn_pending *w, bool delivered) {
  if (!delivered && w->proc != NULL)
    conn_close_remote(w->proc, w->values, w->nh);
  if (w->proc != NULL)
    CloseHandle(w->proc);
  if (w->ov.hEvent != NULL)
    CloseHandle(w->ov.hEvent);
  free(w->msg);
  free(w);
}

/* The link to the write in flight on `pipe`, or NULL; the lock held. */
static struct conn_pending **conn_pending_find(HANDLE pipe) {
  struct conn_pending **pp;

  for (pp = &conn_pendings; *pp != NULL; pp = &(*pp)->next)
    if ((*pp)->pipe == pipe)
      return pp;
  return NULL;
}

/* Looks at the write kept pending on `pipe`: 0 when there is none (one
 * that ended is reaped), 1 when it is still in flight (with *event, when
 * asked, a new handle of its event that the caller closes), -EPIPE when it
 * failed because the client went, or another code. */
static int conn_pending_check(HANDLE pipe, HANDLE *event) {
  struct conn_pending **pp, *w;
  DWORD n = 0, err;
  int rv = 0;

  AcquireSRWLockExclusive(&conn_pending_lock);
  if ((pp = conn_pending_find(pipe)) == NULL)
    goto out;
  w = *pp;
  if (GetOverlappedResult(pipe, &w->ov, &n, FALSE)) {
    *pp = w->next;
    conn_pending_free(w, true);
  } else if ((err = GetLastError()) == ERROR_IO_INCOMPLETE) {
    rv = 1;
    if (event != NULL && !DuplicateHandle(GetCurrentProcess(), w->ov.hEvent, GetCurrentProcess(),
                                          event, 0, FALSE, DUPLICATE_SAME_ACCESS))
      rv = shmbus__win_error(GetLastError());
  } else {
    *pp = w->next;
    conn_pending_free(w, n != 0);
    rv = err == ERROR_NO_DATA || err == ERROR_BROKEN_PIPE || err == ERROR_PIPE_NOT_CONNECTED
             ? -EPIPE
             : shmbus__win_error(err);
  }
out:
  ReleaseSRWLockExclusive(&conn_pending_lock);
  return rv;
}

int shmbus__win_conn_write_wait(HANDLE pipe, HANDLE *event) {
  return conn_pending_check(pipe, event);
}

void shmbus__win_conn_forget(HANDLE pipe) {
  struct conn_pending **pp, *w = NULL;
  DWORD n = 0;
  bool done;

  AcquireSRWLockExclusive(&conn_pending_lock);
  if ((pp = conn_pending_find(pipe)) != NULL) {
    w = *pp;
    *pp = w->next;
  }
  ReleaseSRWLockExclusive(&conn_pending_lock);
  if (w == NULL)
    return;
  /* Waits for the write to end (done or cancelled): the kernel writes
   * its OVERLAPPED until then. */
  (void)CancelIoEx(pipe, &w->ov);
  done = GetOverlappedResult(pipe, &w->ov, &n, TRUE) != 0;
  conn_pending_free(w, done || n != 0);
}

/* Writes one whole message without blocking through `ov` (zeroed, its
 * event made here; the caller closes ov->hEvent): 0 when written; -EAGAIN
 * when it does not fit the pipe now (nothing was written); -EPIPE; another
 * code. With `keep` a write that does not fit stays in flight instead:
 * 1, and `ov` must stay where it is until the write has ended. */
static int conn_write(HANDLE h, const void *msg, DWORD len, OVERLAPPED *ov, bool keep) {
  DWORD n = 0, err;

  if ((ov->hEvent = CreateEventW(NULL, TRUE, FALSE, NULL)) == NULL)
    return shmbus__win_error(GetLastError());
  if (WriteFile(h, msg, len, NULL, ov)) {
    /* Done at once. */
  } else if ((err = GetLastError()) != ERROR_IO_PENDING) {
    return err == ERROR_NO_DATA || err == ERROR_BROKEN_PIPE || err == ERROR_PIPE_NOT_CONNECTED
               ? -EPIPE
               : shmbus__win_error(err);
  } else if (GetOverlappedResult(h, ov, &n, FALSE)) {
    /* Done already. */
  } else if (keep && GetLastError() == ERROR_IO_INCOMPLETE) {
    /* Pending: the message does not fit the pipe's buffer until the peer
     * reads. It stays in flight (see above). */
    return 1;
  } else {
    /* Pending: take it back. If the cancel came too late, it was
     * written. */
    (void)CancelIoEx(h, ov);
    if (GetOverlappedResult(h, ov, &n, TRUE))
      return n == len ? 0 : -EIO;
    if ((err = GetLastError()) == ERROR_OPERATION_ABORTED)
      return n == 0 ? -EAGAIN : -EIO; /* part of it went: the stream is broken */
    return err == ERROR_NO_DATA || err == ERROR_BROKEN_PIPE ? -EPIPE : shmbus__win_error(err);
  }
  if (!GetOverlappedResult(h, ov, &n, TRUE))
    return shmbus__win_error(GetLastError());
  return n == len ? 0 : -EIO;
}

int shmbus__sock_send(shmbus__conn_handle conn, const void *buf, size_t len,
                      const shmbus__os_handle *handles, unsigned nh) {
  HANDLE self = GetCurrentProcess(), where = self, proc = NULL, copy;
  struct conn_header hd;
  struct conn_pending *w = NULL;
  OVERLAPPED ov;
  uint64_t values[CONN_MAX_HANDLES];
  unsigned done = 0;
  bool server;
  size_t total;
  char *msg;
  int rv = 0;

  if (nh > CONN_MAX_HANDLES || len > CONN_MAX_PAYLOAD)
    return -EINVAL;
  server = conn_is_server(conn);
  /* The daemon's end: behind a write still in flight, nothing goes
   * (messages stay in order). */
  if (server && (rv = conn_pending_check(conn, NULL)) != 0)
    return rv == 1 ? -EAGAIN : rv;
  memset(&hd, 0, sizeof(hd));
  hd.magic = CONN_MAGIC;
  hd.len = (uint32_t)len;
  hd.nh = (uint8_t)nh;
  hd.mode = nh == 0 ? CONN_NONE : server ? CONN_PUSHED : CONN_PULL;
  if (nh > 0) {
    /* The daemon pushes into the client; a client leaves copies of its own
     * for the daemon to take. */
    if (server) {
      if ((rv = conn_peer_process(conn, true, PROCESS_DUP_HANDLE, &proc)) < 0)
        return rv == -ENOTCONN ? -EPIPE : rv;
      where = proc;
    }
    for (done = 0; done < nh; done++) {
      if (!DuplicateHandle(self, handles[done], where, &copy, 0, FALSE, DUPLICATE_SAME_ACCESS)) {
        rv = shmbus__win_error(GetLastError());
        goto fail;
      }
      values[done] = (uint64_t)(uintptr_t)copy;
    }
  }
  total = sizeof(hd) + nh * sizeof(uint64_t) + len;
  if ((msg = malloc(total)) == NULL) {
    rv = -ENOMEM;
    goto fail;
  }
  memcpy(msg, &hd, sizeof(hd));
  if (nh > 0)
    memcpy(msg + sizeof(hd), values, nh * sizeof(uint64_t));
  if (len > 0)
    memcpy(msg + sizeof(hd) + nh * sizeof(uint64_t), buf, len);
  if (server) {
    /* Its OVERLAPPED may have to outlive this call. */
    if ((w = calloc(1, sizeof(*w))) == NULL) {
      free(msg);
      rv = -ENOMEM;
      goto fail;
    }
    rv = conn_write(conn, msg, (DWORD)total, &w->ov, true);
  } else {
    memset(&ov, 0, sizeof(ov));
    rv = conn_write(conn, msg, (DWORD)total, &ov, false);
    if (ov.hEvent != NULL)
      CloseHandle(ov.hEvent);
  }
  if (rv == 1) {
    /* In flight: the list keeps the message, the client's process and
     * the values pushed into it. */
    w->pipe = conn;
    w->msg = msg;
    w->proc = proc;
    memcpy(w->values, values, done * sizeof(uint64_t));
    w->nh = done;
    AcquireSRWLockExclusive(&conn_pending_lock);
    w->next = conn_pendings;
    conn_pendings = w;
    ReleaseSRWLockExclusive(&conn_pending_lock);
    return (int)len;
  }
  if (w != NULL) {
    if (w->ov.hEvent != NULL)
      CloseHandle(w->ov.hEvent);
    free(w);
  }
  free(msg);
  if (rv < 0)
    goto fail;
  if (proc != NULL)
    CloseHandle(proc);
  return (int)len;
fail:
  /* Nothing was sent: the copies made for the peer go. */
  conn_close_remote(where, values, done);
  if (proc != NULL)
    CloseHandle(proc);
  return rv;
}

/* ---- receiving -------------------------------------------------------------- */

/* 0 if the process `proc` runs as the user at the other end of `conn` (as
 * the pipe saw it connect), -EPROTO if not, or another code. */
static int conn_same_user(HANDLE conn, HANDLE proc) {
  struct shmbus__peer_id peer, owner;
  HANDLE tok;
  int rv;

  if ((rv = shmbus__peer_identity(conn, &peer)) < 0)
    return rv;
  memset(&owner, 0, sizeof(owner));
  if (!OpenProcessToken(proc, TOKEN_QUERY, &tok))
    return shmbus__win_error(GetLastError());
  rv = conn_token_user(tok, &owner);
  CloseHandle(tok);
  if (rv < 0)
    return rv;
  return peer.sid_len == owner.sid_len && EqualSid((PSID)peer.sid, (PSID)owner.sid) ? 0 : -EPROTO;
}

/* Checks a handle received (ours now) and cuts its access down to what the
 * library uses: 0 with *out, `h` then closed; -EPROTO when it is not a
 * section or an event or lacks what they need, -ENOSYS when this Windows
 * cannot tell (`h` is then still open); -EMFILE when the duplicate with
 * less access could not be made (`h` is then closed). */
static int conn_check_received(HANDLE h, HANDLE *out) {
  static nt_query_object_fn query;
  struct conn_object_basic basic;
  union {
    struct conn_unicode name;
    char buf[sizeof(struct conn_unicode) + 128];
  } type;
  ACCESS_MASK keep, need;
  ULONG got = 0;
  size_t n;

  if (query == NULL)
    query = (nt_query_object_fn)(void (*)(void))shmbus__win_ntdll("NtQueryObject");
  if (query == NULL)
    return -ENOSYS;
  if (query(h, 0, &basic, sizeof(basic), &got) < 0 || query(h, 2, &type, sizeof(type), &got) < 0 ||
      type.name.buf == NULL)
    return -EPROTO;
  n = type.name.len / sizeof(wchar_t);
  if (n == 7 && wcsncmp(type.name.buf, L"Section", 7) == 0) {
    keep = CONN_SECTION_KEEP;
    need = CONN_SECTION_NEED;
  } else if (n == 5 && wcsncmp(type.name.buf, L"Event", 5) == 0) {
    keep = CONN_EVENT_KEEP;
    need = CONN_EVENT_NEED;
  } else {
    return -EPROTO;
  }
  if ((basic.granted & need) != need)
    return -EPROTO;
  /* A duplicate with less access replaces it (DUPLICATE_CLOSE_SOURCE
   * closes `h` even when the duplication fails). */
  if (!DuplicateHandle(GetCurrentProcess(), h, GetCurrentProcess(), out, basic.granted & keep,
                       FALSE, DUPLICATE_CLOSE_SOURCE))
    return -EMFILE;
  return 0;
}

/* Reads the next message whole into msg (cap bytes): its length, with
 * *cut when it was longer (the rest is read and dropped); 0 when the peer
 * is gone; -EAGAIN when none waits. */
static int conn_read(HANDLE h, char *msg, DWORD cap, DWORD *got, bool *cut) {
  OVERLAPPED ov;
  DWORD avail = 0, left = 0, n = 0, err;
  char scratch[512];
  int rv = 0;

  *cut = false;
  *got = 0;
  if (!PeekNamedPipe(h, NULL, 0, NULL, &avail, &left)) {
    err = GetLastError();
    return err == ERROR_BROKEN_PIPE || err == ERROR_PIPE_NOT_CONNECTED || err == ERROR_NO_DATA
               ? 0
               : shmbus__win_error(err);
  }
  /* An empty message looks like nothing: our messages never are. */
  if (avail == 0)
    return -EAGAIN;
  memset(&ov, 0, sizeof(ov));
  if ((ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL)) == NULL)
    return shmbus__win_error(GetLastError());
  /* The message is there, so the read completes at once; only this
   * process reads this end. */
  if (!ReadFile(h, msg, cap, NULL, &ov) && GetLastError() != ERROR_IO_PENDING &&
      GetLastError() != ERROR_MORE_DATA) {
    rv = shmbus__win_error(GetLastError());
    goto done;
  }
  if (GetOverlappedResult(h, &ov, &n, TRUE)) {
    *got = n;
    rv = 1;
    goto done;
  }
  if ((err = GetLastError()) != ERROR_MORE_DATA) {
    rv = err == ERROR_BROKEN_PIPE || err == ERROR_PIPE_NOT_CONNECTED ? 0 : shmbus__win_error(err);
    goto done;
  }
  /* Longer than we take: drop the rest of this message, as a datagram
   * socket does. */
  *got = n;
  *cut = true;
  for (;;) {
    (void)ResetEvent(ov.hEvent);
    if (!ReadFile(h, scratch, sizeof(scratch), NULL, &ov) && GetLastError() != ERROR_IO_PENDING &&
        GetLastError() != ERROR_MORE_DATA)
      break;
    if (GetOverlappedResult(h, &ov, &n, TRUE) || GetLastError() != ERROR_MORE_DATA)
      break;
  }
  rv = 1;
done:
  CloseHandle(ov.hEvent);
  return rv;
}

int shmbus__sock_recv(shmbus__conn_handle conn, void *buf, size_t cap, shmbus__os_handle *handles,
                      unsigned max, unsigned *nh, bool *truncated) {
  HANDLE self = GetCurrentProcess(), proc = NULL, taken[CONN_MAX_HANDLES], h;
  struct conn_header hd;
  uint64_t values[CONN_MAX_HANDLES];
  unsigned ntaken = 0, i;
  DWORD room, got;
  bool cut, server;
  char *msg;
  int rv;

  *nh = 0;
  *truncated = false;
  if (cap > CONN_MAX_PAYLOAD)
    cap = CONN_MAX_PAYLOAD;
  room = (DWORD)(sizeof(hd) + CONN_MAX_HANDLES * sizeof(uint64_t) + cap);
  if ((msg = malloc(room)) == NULL)
    return -ENOMEM;
  /* An empty message is never one of ours (every message has a header):
   * skipped, a bounded number at a time so that a peer writing nothing
   * but them cannot hold us here. */
  for (i = 0; i < 64; i++)
    if ((rv = conn_read(conn, msg, room, &got, &cut)) <= 0 || got > 0 || cut)
      break;
  if (rv > 0 && got == 0 && !cut)
    rv = -EAGAIN;
  if (rv <= 0)
    goto out;
  server = conn_is_server(conn);
  /* The header is the peer's word: checked whole before anything in it is
   * used. A message cut short keeps its header, so its handles can still
   * be taken and closed. */
  memcpy(&hd, msg, got >= sizeof(hd) ? sizeof(hd) : 0);
  if (got < sizeof(hd) || hd.magic != CONN_MAGIC || hd.nh > CONN_MAX_HANDLES || hd.reserved != 0 ||
      hd.reserved2 != 0 || (hd.nh == 0) != (hd.mode == CONN_NONE) ||
      (hd.mode != CONN_NONE && hd.mode != CONN_PUSHED && hd.mode != CONN_PULL) ||
      (hd.mode == CONN_PUSHED && server) || (hd.mode == CONN_PULL && !server) ||
      got < sizeof(hd) + hd.nh * sizeof(uint64_t) ||
      (!cut && got != sizeof(hd) + hd.nh * sizeof(uint64_t) + hd.len) ||
      hd.len > CONN_MAX_PAYLOAD) {
    rv = -EPROTO;
    goto out;
  }
  memcpy(values, msg + sizeof(hd), hd.nh * sizeof(uint64_t));
  if (hd.mode == CONN_PULL) {
    /* Take every handle out of the sender, whatever follows: each one is
     * then either handed out or closed here. The sender is the process
     * the pipe names, and it must run as the user the pipe saw connect:
     * should its id have been reused by another process (the daemon holds
     * a handle of each client's process, which keeps the id from being
     * reused while the connection lives), nothing of a process of another
     * user is touched. */
    if ((rv = conn_peer_process(
             conn, server, PROCESS_DUP_HANDLE | PROCESS_QUERY_LIMITED_INFORMATION, &proc)) < 0 ||
        (rv = conn_same_user(conn, proc)) < 0) {
      rv = rv == -ENOTCONN ? -EPIPE : rv;
      goto out;
    }
    for (i = 0; i < hd.nh; i++) {
      if (!DuplicateHandle(proc, (HANDLE)(uintptr_t)values[i], self, &h, 0, FALSE,
                           DUPLICATE_SAME_ACCESS | DUPLICATE_CLOSE_SOURCE)) {
        /* Not a handle of the sender: the message lies. The rest of its
         * values are closed in the sender (its in-flight copies). */
        rv = GetLastError() == ERROR_INVALID_HANDLE || GetLastError() == ERROR_INVALID_PARAMETER
                 ? -EPROTO
                 : -EMFILE;
        conn_close_remote(proc, values + i + 1, hd.nh - i - 1u);
        goto out;
      }
      taken[ntaken++] = h;
    }
  } else {
    /* Pushed into us by the daemon (a client end only, checked above). */
    for (i = 0; i < hd.nh; i++)
      taken[ntaken++] = (HANDLE)(uintptr_t)values[i];
  }
  for (i = 0; i < ntaken; i++) {
    if ((rv = conn_check_received(taken[i], &h)) < 0) {
      /* The ones checked before are ours (duplicates with less access).
       * This one and the rest: pulled ones are ours to close; a pushed
       * value that failed the check may name any handle of ours, so it
       * and the unchecked ones are left alone. */
      if (rv == -EMFILE) {
        memmove(taken + i, taken + i + 1, (ntaken - i - 1u) * sizeof(HANDLE));
        ntaken--;
      }
      if (hd.mode == CONN_PUSHED)
        ntaken = i;
      rv = rv == -EMFILE || rv == -ENOSYS ? rv : -EPROTO;
      goto out;
    }
    taken[i] = h;
  }
  /* What the message brought of its payload, and what fits the caller. */
  rv = (int)(got - sizeof(hd) - hd.nh * sizeof(uint64_t));
  if (cut || hd.len > cap)
    *truncated = true;
  if ((size_t)rv > cap)
    rv = (int)cap;
  memcpy(buf, msg + sizeof(hd) + hd.nh * sizeof(uint64_t), (size_t)rv);
  for (i = 0; i < ntaken; i++) {
    if (*nh < max)
      handles[(*nh)++] = taken[i];
    else {
      CloseHandle(taken[i]);
      *truncated = true;
    }
  }
  ntaken = 0;
out:
  for (i = 0; i < ntaken; i++)
    CloseHandle(taken[i]);
  if (proc != NULL)
    CloseHandle(proc);
  free(msg);
  return rv;
}

/* ---- waiting on a connection ------------------------------------------------ */

int shmbus__win_conn_wait_arm(HANDLE pipe, struct shmbus__win_conn_wait *w) {
  DWORD avail = 0;

  w->pending = false;
  w->ov.hEvent = NULL;
  /* Something there already, or the pipe broken: readable now. */
  if (!PeekNamedPipe(pipe, NULL, 0, NULL, &avail, NULL) || avail > 0)
    return 1;
  memset(&w->ov, 0, sizeof(w->ov));
  if ((w->ov.hEvent = CreateEventW(NULL, TRUE, FALSE, NULL)) == NULL)
    return shmbus__win_error(GetLastError());
  /* A zero-byte read completes when a message arrives (ERROR_MORE_DATA,
   * the message stays) or the pipe breaks, and takes nothing else. */
  if (ReadFile(pipe, NULL, 0, NULL, &w->ov) || GetLastError() != ERROR_IO_PENDING) {
    /* Done at once (a message came, or the pipe broke): readable, and
     * nothing is in flight. Not waited for: a read that fails at once
     * (the pipe broke after the PeekNamedPipe above: a client exiting)
     * never signals its event, and waiting for it hung the daemon's loop
     * (the "daemon stop" timeouts under Wine, docs/windows.md). */
    CloseHandle(w->ov.hEvent);
    w->ov.hEvent = NULL;
    return 1;
  }
  w->pending = true;
  return 0;
}

void shmbus__win_conn_wait_disarm(HANDLE pipe, struct shmbus__win_conn_wait *w) {
  DWORD n;

  if (w->pending) {
    (void)CancelIoEx(pipe, &w->ov);
    /* Waits for the read to end (done or cancelled): the OVERLAPPED lives
     * on the caller's stack. */
    (void)GetOverlappedResult(pipe, &w->ov, &n, TRUE);
    w->pending = false;
  }
  if (w->ov.hEvent != NULL)
    CloseHandle(w->ov.hEvent);
  w->ov.hEvent = NULL;
}

/* ---- who is there ---------------------------------------------------------- */

/* The user of the process `pid` from its token. */
static int conn_process_user(DWORD pid, struct shmbus__peer_id *id) {
  HANDLE proc, tok;
  int rv;

  if ((proc = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid)) == NULL)
    return shmbus__win_error(GetLastError());
  if (!OpenProcessToken(proc, TOKEN_QUERY, &tok)) {
    rv = shmbus__win_error(GetLastError());
    CloseHandle(proc);
    return rv;
  }
  rv = conn_token_user(tok, id);
  CloseHandle(tok);
  CloseHandle(proc);
  return rv;
}

/* The owner of the pipe object (the daemon sets it to its user: see
 * conn_pipe_security). */
static int conn_pipe_owner(HANDLE h, struct shmbus__peer_id *id) {
  PSECURITY_DESCRIPTOR sd = NULL;
  PSID owner = NULL;
  DWORD err, len;

  err = GetSecurityInfo(h, SE_KERNEL_OBJECT, OWNER_SECURITY_INFORMATION, &owner, NULL, NULL, NULL,
                        &sd);
  if (err != ERROR_SUCCESS)
    return shmbus__win_error(err);
  if (owner == NULL || !IsValidSid(owner) || (len = GetLengthSid(owner)) > sizeof(id->sid)) {
    LocalFree(sd);
    return -EINVAL;
  }
  memcpy(id->sid, owner, len);
  id->sid_len = (uint8_t)len;
  id->uid = shmbus__win_sid_rid(owner);
  LocalFree(sd);
  return 0;
}

int shmbus__peer_identity(shmbus__conn_handle conn, struct shmbus__peer_id *id) {
  HANDLE tok;
  DWORD pid, err;
  bool server = conn_is_server(conn);
  int rv;

  memset(id, 0, sizeof(*id));
  if ((rv = conn_peer_pid(conn, server, &pid)) < 0)
    return rv;
  id->pid = (int32_t)pid;
  if (server) {
    /* The daemon: the client's token as the pipe captured it when the
     * client connected (at identification level). */
    if (ImpersonateNamedPipeClient(conn)) {
      tok = NULL;
      rv = OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &tok)
               ? 0
               : shmbus__win_error(GetLastError());
      /* The thread is itself again, or says why not (it then holds an
       * identification token only, which opens nothing). */
      if (!RevertToSelf() && rv == 0)
        rv = shmbus__win_error(GetLastError());
      if (rv == 0)
        rv = conn_token_user(tok, id);
      if (tok != NULL)
        CloseHandle(tok);
      return rv;
    }
    err = GetLastError();
    /* Windows lets a server impersonate only once it read from the pipe
     * (ERROR_CANNOT_IMPERSONATE): the client's process then, by the id the
     * pipe gives. */
    if (err != ERROR_CANNOT_IMPERSONATE)
      return shmbus__win_error(err);
    return conn_process_user(pid, id);
  }
  /* A client: the daemon's process token when we may read it (our own
   * user's daemon), else the pipe's owner (a daemon of another account,
   * SYSTEM for the system bus, whose token we may not open; setting an
   * owner one does not hold takes a privilege). */
  if ((rv = conn_process_user(pid, id)) == -EACCES)
    rv = conn_pipe_owner(conn, id);
  return rv;
}

int shmbus__peer_uid(shmbus__conn_handle conn, uint32_t *uid) {
  struct shmbus__peer_id id;
  int rv;

  if ((rv = shmbus__peer_identity(conn, &id)) < 0)
    return rv;
  *uid = id.uid;
  return 0;
}

bool shmbus__peer_trusted(const struct shmbus__peer_id *id) {
  struct shmbus__peer_id self;
  union {
    SID sid;
    char buf[SECURITY_MAX_SID_SIZE];
  } system;
  DWORD len = sizeof(system);

  if (id->sid_len == 0 || !IsValidSid((PSID)id->sid) || GetLengthSid((PSID)id->sid) != id->sid_len)
    return false;
  if (shmbus__win_self_identity(&self) == 0 && EqualSid((PSID)id->sid, (PSID)self.sid))
    return true;
  /* LocalSystem stands where root does on Linux. */
  return CreateWellKnownSid(WinLocalSystemSid, NULL, &system, &len) &&
         EqualSid((PSID)id->sid, &system);
}

/* ---- starting the daemon ---------------------------------------------------- */

/* A command line longer than Windows takes (its limit is the line's
 * length, not a number of arguments): the contract's -E2BIG. */
#define CONN_TOO_LONG (-E2BIG)

/* Appends `arg` to the command line at *p (room up to end), quoted the way
 * the C runtime's parser splits it: backslashes are literal unless they
 * precede a quote. Returns CONN_TOO_LONG when it does not fit. */
static int conn_quote(const wchar_t *arg, wchar_t **p, wchar_t *end) {
  wchar_t *o = *p;
  size_t bs = 0;
  bool plain = arg[0] != L'\0' && wcspbrk(arg, L" \t\n\v\"") == NULL;

#define CONN_PUT(c)                                                                                \
  do {                                                                                             \
    if (o + 1 >= end)                                                                              \
      return CONN_TOO_LONG;                                                                        \
    *o++ = (c);                                                                                    \
  } while (0)
  if (plain) {
    for (; *arg != L'\0'; arg++)
      CONN_PUT(*arg);
  } else {
    CONN_PUT(L'"');
    for (; *arg != L'\0'; arg++) {
      if (*arg == L'\\') {
        bs++;
        continue;
      }
      /* Backslashes before a quote are doubled, and the quote escaped. */
      for (; bs > 0; bs--) {
        CONN_PUT(L'\\');
        if (*arg == L'"')
          CONN_PUT(L'\\');
      }
      if (*arg == L'"')
        CONN_PUT(L'\\');
      CONN_PUT(*arg);
    }
    /* Before the closing quote, backslashes are doubled too. */
    for (; bs > 0; bs--) {
      CONN_PUT(L'\\');
      CONN_PUT(L'\\');
    }
    CONN_PUT(L'"');
  }
#undef CONN_PUT
  *o = L'\0';
  *p = o;
  return 0;
}

/* The longest command line CreateProcessW takes, in characters. */
#define CONN_CMDLINE_MAX 32768

int shmbus__daemon_spawn(const char *path, const char *const args[], int timeout_ms) {
  SECURITY_ATTRIBUTES inherit = {sizeof(inherit), NULL, TRUE};
  STARTUPINFOEXW si;
  PROCESS_INFORMATION pi;
  LPPROC_THREAD_ATTRIBUTE_LIST attrs = NULL;
  HANDLE ready = NULL, nul = INVALID_HANDLE_VALUE, list[2], both[2];
  wchar_t wpath[1024], warg[1024], *cmd = NULL, *p, *end;
  SIZE_T attr_len = 0;
  DWORD w, code;
  unsigned i;
  bool has_dir;
  int rv;

  memset(&pi, 0, sizeof(pi));
  if ((rv = shmbus__win_to_utf16(path, wpath, sizeof(wpath) / sizeof(wpath[0]))) < 0)
    return rv == -ENAMETOOLONG ? rv : -ENOENT;
  has_dir = wcspbrk(wpath, L"\\/:") != NULL;
  if ((cmd = malloc(CONN_CMDLINE_MAX * sizeof(wchar_t))) == NULL)
    return -ENOMEM;
  p = cmd;
  end = cmd + CONN_CMDLINE_MAX;
  *p = L'\0';
  /* The ready signal: an event the daemon inherits (it alone: the
   * attribute list names the handles a child gets) and sets once it
   * accepts connections. Its value follows --ready-fd, the option the
   * daemon reads on every OS (its host layer knows what the value is). */
  if ((ready = CreateEventW(&inherit, TRUE, FALSE, NULL)) == NULL ||
      (nul = CreateFileW(L"NUL", GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE,
                         &inherit, OPEN_EXISTING, 0, NULL)) == INVALID_HANDLE_VALUE) {
    rv = shmbus__win_error(GetLastError());
    goto done;
  }
  for (i = 0; args[i] != NULL; i++) {
    if ((rv = shmbus__win_to_utf16(args[i], warg, sizeof(warg) / sizeof(warg[0]))) < 0) {
      rv = rv == -ENAMETOOLONG ? CONN_TOO_LONG : rv;
      goto done;
    }
    if (i > 0) {
      if (p + 1 >= end) {
        rv = CONN_TOO_LONG;
        goto done;
      }
      *p++ = L' ';
    }
    if ((rv = conn_quote(warg, &p, end)) < 0)
      goto done;
  }
  if (end - p < 40) {
    rv = CONN_TOO_LONG;
    goto done;
  }
  p += _snwprintf(p, (size_t)(end - p), L" --ready-fd %llu", (unsigned long long)(uintptr_t)ready);

  list[0] = ready;
  list[1] = nul;
  (void)InitializeProcThreadAttributeList(NULL, 1, 0, &attr_len);
  if ((attrs = malloc(attr_len)) == NULL) {
    rv = -ENOMEM;
    goto done;
  }
  if (!InitializeProcThreadAttributeList(attrs, 1, 0, &attr_len)) {
    free(attrs);
    attrs = NULL;
    rv = shmbus__win_error(GetLastError());
    goto done;
  }
  if (!UpdateProcThreadAttribute(attrs, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST, list, sizeof(list),
                                 NULL, NULL)) {
    rv = shmbus__win_error(GetLastError());
    goto done;
  }
  memset(&si, 0, sizeof(si));
  si.StartupInfo.cb = sizeof(si);
  si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
  si.StartupInfo.hStdInput = nul;
  si.StartupInfo.hStdOutput = nul;
  si.StartupInfo.hStdError = nul;
  si.lpAttributeList = attrs;
  /* No console of its own and no window: the daemon runs on after we
   * exit, outside our console's Ctrl+C. A path without a directory is
   * searched for (CreateProcessW's search, %PATH% last). */
  if (!CreateProcessW(has_dir ? wpath : NULL, cmd, NULL, NULL, TRUE,
                      EXTENDED_STARTUPINFO_PRESENT | DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP |
                          CREATE_UNICODE_ENVIRONMENT,
                      NULL, NULL, &si.StartupInfo, &pi)) {
    DWORD err = GetLastError();
    rv = err == ERROR_BAD_EXE_FORMAT ? -EACCES : shmbus__win_error(err);
    goto done;
  }
  CloseHandle(pi.hThread);
  /* Windows has no fork: the daemon does not detach into a second
   * process, it stays the one we started. Ready, or its exit, or the
   * time is up. */
  both[0] = ready;
  both[1] = pi.hProcess;
  w = WaitForMultipleObjects(2, both, FALSE, timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms);
  if (w == WAIT_OBJECT_0) {
    rv = 0;
  } else if (w == WAIT_OBJECT_0 + 1) {
    /* It ended: ready after all (it set the event and exited at once,
     * an idle exit), or failed with its status. */
    if (WaitForSingleObject(ready, 0) == WAIT_OBJECT_0)
      rv = 0;
    else if (!GetExitCodeProcess(pi.hProcess, &code))
      rv = shmbus__win_error(GetLastError());
    else
      rv = code == 0 ? -ETIMEDOUT : code > 255 ? 255 : (int)code;
  } else if (w == WAIT_TIMEOUT) {
    rv = -ETIMEDOUT;
  } else {
    rv = shmbus__win_error(GetLastError());
  }
  CloseHandle(pi.hProcess);
done:
  if (attrs != NULL) {
    DeleteProcThreadAttributeList(attrs);
    free(attrs);
  }
  if (nul != INVALID_HANDLE_VALUE)
    CloseHandle(nul);
  if (ready != NULL)
    CloseHandle(ready);
  free(cmd);
  return rv;
}
