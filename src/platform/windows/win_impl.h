/* win_impl.h: what the platform contract's opaque types are on Windows.
 * Included by platform.h only; see there for what each type stands for.
 *
 * Every OS object shmbus uses on Windows is a kernel object reached by a
 * HANDLE: a shared-memory object is a section (a file mapping backed by
 * the paging file, committed at creation), a wake-up event an auto-reset
 * event, a control connection a named pipe in message mode (the control
 * channel comes with the daemon's port, see docs/windows.md). Objects get
 * a name in Local\ that another user cannot open (a descriptor granting
 * only their creator's user) and nobody can guess (128 random bits), so a
 * peer can also open them by name. Handles travel between processes by
 * DuplicateHandle instead of SCM_RIGHTS.
 *
 * HANDLE is void * in <windows.h>; this header does not include it, so
 * the rest of the library does not see the Windows API. */
#ifndef SHMBUS_PLATFORM_WIN_IMPL_H
#define SHMBUS_PLATFORM_WIN_IMPL_H

#include <errno.h>
#include <stdint.h>

/* The contract's -EBADFD (an event that could block when signalled) is
 * Linux's code; Windows' CRT lacks it and nothing there returns it. The
 * value is Linux's, as in src/error_table.h, so code that names it builds. */
#ifndef EBADFD
#define EBADFD 77
#endif

/* An OS handle: a HANDLE. */
typedef void *shmbus__os_handle;

/* The value of a handle that holds nothing: INVALID_HANDLE_VALUE, as in
 * libuv's uv_os_fd_t and the public shmbus_os_fd_t (SHMBUS_OS_FD_INVALID),
 * so that the library hands its handles out unchanged. The same value is
 * the pseudo-handle of the current process, which the backend never
 * stores; and the calls that report failure with NULL instead
 * (CreateFileMapping, CreateEvent, OpenProcess) are turned into errors, so
 * NULL is never stored either. */
#define SHMBUS__OS_HANDLE_INVALID ((void *)(intptr_t)-1)

/* A shared-memory object: a paging-file section (SEC_COMMIT). */
typedef shmbus__os_handle shmbus__shm_handle;
/* A wake-up event: an auto-reset (synchronization) event. */
typedef shmbus__os_handle shmbus__event_handle;
/* A control connection: a named pipe in message mode. */
typedef shmbus__os_handle shmbus__conn_handle;

/* Who is at the other end of a control connection. Windows names users by
 * SID, not by number: `sid` holds the user's SID in binary form (at most
 * SECURITY_MAX_SID_SIZE, 68 bytes) and `uid` its last sub-authority (the
 * relative id), which is only a display value; `gid` is 0; `pid` the
 * process id (GetNamedPipeClientProcessId). */
struct shmbus__peer_id {
  uint32_t uid;
  uint32_t gid;
  int32_t pid;
  uint8_t sid_len;
  uint8_t sid[68];
};

/* The longest control endpoint, NUL included: a pipe name
 * "\\.\pipe\..." may have up to 256 characters. */
#define SHMBUS__ENDPOINT_MAX 260

/* Paths: the directory separator (as a character and a string; Windows
 * also accepts '/', but names it '\\'), the separator of a search list
 * (%PATH%), and the end of an executable's name (autostart looks for
 * shmbusd.exe). */
#define SHMBUS__PATH_SEP '\\'
#define SHMBUS__PATH_SEP_STR "\\"
#define SHMBUS__PATH_LIST_SEP ';'
#define SHMBUS__EXE_SUFFIX ".exe"

/* The system-wide bus (the counterpart of Global\ objects); provisional
 * until the daemon's port settles how a bus is named on Windows. */
#define SHMBUS__PLATFORM_SYSTEM_DIR "Global\\shmbus"

#endif /* SHMBUS_PLATFORM_WIN_IMPL_H */
