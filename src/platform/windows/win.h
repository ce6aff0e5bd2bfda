/* win.h: helpers shared by the Windows backend's files (not part of the
 * platform contract; outside src/platform/windows/ only the command-line
 * tool's Windows seam, cli/platform/windows.c, includes it, for the wait
 * on a connection among more handles than shmbus__wait_readable takes). */
#ifndef SHMBUS_PLATFORM_WIN_H
#define SHMBUS_PLATFORM_WIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <wchar.h>

#include <windows.h>

/* A Win32 error code (GetLastError) as a negative errno-style code. Codes
 * without a closer meaning become -EIO. */
int shmbus__win_error(DWORD err);

/* The same for an NTSTATUS from the ntdll calls the backend makes. */
int shmbus__win_status(LONG status);

/* Security attributes whose descriptor grants everything to the current
 * user and nothing to anyone else (a protected DACL of one ACE: nothing is
 * inherited from the namespace's defaults). The descriptor is allocated:
 * free it with LocalFree(sa->lpSecurityDescriptor). Errors: -ENOMEM, -EIO. */
int shmbus__win_owner_only(SECURITY_ATTRIBUTES *sa);

/* A fresh object name "Local\shmbus-<kind>-<pid>-<32 hex digits>" into out
 * (cap wide characters): the 128 random bits make it unguessable, so
 * nobody can take it first on purpose. Errors: -EIO (no randomness),
 * -ENAMETOOLONG. */
int shmbus__win_object_name(const char *kind, wchar_t *out, size_t cap);

/* UTF-8 to UTF-16 and back, NUL included, into out (cap units). Errors:
 * -EINVAL (not valid UTF-8 or UTF-16), -ENAMETOOLONG (does not fit). */
int shmbus__win_to_utf16(const char *s, wchar_t *out, size_t cap);
int shmbus__win_to_utf8(const wchar_t *s, char *out, size_t cap);

/* A SID's relative id, its last part: the number that stands for a user
 * where the contract wants one (identity checks compare whole SIDs). 0 for
 * a SID without parts. `sid` must be valid. */
uint32_t shmbus__win_sid_rid(PSID sid);

/* A function of ntdll or kernelbase by name, or NULL when this Windows (or
 * Wine) lacks it. */
FARPROC shmbus__win_ntdll(const char *name);
FARPROC shmbus__win_kernelbase(const char *name);

/* ---- the control channel (conn.c) ------------------------------------- */

struct shmbus__peer_id;

/* The bytes each direction of a control pipe buffers (the daemon creates
 * its instances with it): many times the protocol's largest message. */
#define SHMBUS__WIN_PIPE_BUFFER (64u * 1024u)

/* The pipe name of a bus's endpoint (a path): "\\.\pipe\shmbus-" and the
 * path with \ / : turned into -, into out (cap wide characters). Errors:
 * -EINVAL (not UTF-8), -ENAMETOOLONG (a pipe name has 256 characters at
 * most). */
int shmbus__win_pipe_name(const char *endpoint, wchar_t *out, size_t cap);

/* Creates one instance of the endpoint's pipe for the daemon: message mode,
 * overlapped, remote clients refused, owned by this process's user, a
 * protected DACL granting that user everything and, when `system`, everyone
 * the right to connect (not to create instances). `first`: the first
 * instance, which fails with -EADDRINUSE when the name exists already
 * (another daemon, or a squatter). The caller owns *pipe and connects it
 * (ConnectNamedPipe). */
int shmbus__win_pipe_create(const char *endpoint, bool first, bool system, HANDLE *pipe);

/* This process's identity as shmbus__peer_identity reports a peer's. */
int shmbus__win_self_identity(struct shmbus__peer_id *id);

/* Waiting for a connection (shmbus__wait_readable): a pipe handle is not
 * signalled when a message arrives, so _arm starts a zero-byte overlapped
 * read whose event is signalled then (or when the pipe breaks), and _disarm
 * cancels it and waits until it has ended. _arm returns 1 when the pipe is
 * readable already (nothing to wait for; nothing armed), 0 when w->ov's
 * event is the one to wait on, or a negative code. _disarm is safe after
 * any result of _arm. */
struct shmbus__win_conn_wait {
  OVERLAPPED ov;
  bool pending;
};
int shmbus__win_conn_wait_arm(HANDLE pipe, struct shmbus__win_conn_wait *w);
void shmbus__win_conn_wait_disarm(HANDLE pipe, struct shmbus__win_conn_wait *w);

/* The daemon's end of a pipe keeps a message that does not fit its
 * client's pipe in flight (an overlapped write waiting for room; conn.c)
 * instead of refusing it, and refuses every later send with -EAGAIN until
 * that write has ended. shmbus__win_conn_write_wait looks at it: 0 when
 * none is in flight (a send may go; one that ended is reaped), 1 with
 * *event (when not NULL) a new handle of the write's manual-reset event,
 * signalled once it ends (the caller closes it), -EPIPE when it failed
 * because the client went, another negative code. shmbus__win_conn_forget
 * cancels a write in flight on `pipe` and waits until it has ended
 * (closing, in the client, the handles its message pushed there when the
 * client never read it): call it before closing a server end. Safe on
 * any pipe. */
int shmbus__win_conn_write_wait(HANDLE pipe, HANDLE *event);
void shmbus__win_conn_forget(HANDLE pipe);

#endif /* SHMBUS_PLATFORM_WIN_H */
