/* win.h: helpers shared by the Windows backend's files (not part of the
 * platform contract; nothing outside src/platform/windows/ includes it). */
#ifndef SHMBUS_PLATFORM_WIN_H
#define SHMBUS_PLATFORM_WIN_H

#include <stdbool.h>
#include <stddef.h>
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

/* A function of ntdll or kernelbase by name, or NULL when this Windows (or
 * Wine) lacks it. */
FARPROC shmbus__win_ntdll(const char *name);
FARPROC shmbus__win_kernelbase(const char *name);

#endif /* SHMBUS_PLATFORM_WIN_H */
