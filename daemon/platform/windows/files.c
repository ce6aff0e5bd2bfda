/* files: the bus directory and its lock on Windows (host.h).
 *
 * On Windows the bus's control endpoint is a named pipe, not a file in the
 * directory (src/platform/windows/conn.c names it after the directory);
 * the directory still holds the daemon's lock and its files. It is created
 * with a protected DACL (its user only; the system bus: everyone may read)
 * and its user as owner; one that exists must be a real directory (not a
 * junction or a link, which could lead the daemon's files elsewhere) owned
 * by this user. The lock is LockFileEx on one byte far past the end of
 * the lock file, so that the pid written at its start stays readable
 * (Windows byte-range locks are mandatory). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include <aclapi.h>
#include <sddl.h>

#include "host.h"
#include "platform/platform.h"
#include "platform/windows/win.h"

/* Where the lock byte is: far past any pid. */
#define FILES_LOCK_OFFSET_HIGH 0x7fffffffu

/* A descriptor owned by this process's user, granting it everything, and
 * everyone reading when `system`. LocalFree(sa->lpSecurityDescriptor). */
static int files_security(bool system, SECURITY_ATTRIBUTES *sa) {
  struct shmbus__peer_id self;
  wchar_t *sid = NULL, sddl[320];
  PSECURITY_DESCRIPTOR sd = NULL;
  int rv, n;

  if ((rv = shmbus__win_self_identity(&self)) < 0)
    return rv;
  if (!ConvertSidToStringSidW((PSID)self.sid, &sid))
    return shmbus__win_error(GetLastError());
  /* OICI: files made inside inherit the same. */
  n = _snwprintf(sddl, sizeof(sddl) / sizeof(sddl[0]),
                 system ? L"O:%lsD:P(A;OICI;GA;;;%ls)(A;OICI;GR;;;WD)"
                        : L"O:%lsD:P(A;OICI;GA;;;%ls)",
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

int host_dir_prepare(const char *dir, bool system, char *err, size_t errlen) {
  struct shmbus__peer_id self;
  SECURITY_ATTRIBUTES sa;
  PSECURITY_DESCRIPTOR sd = NULL;
  PSID owner = NULL;
  wchar_t w[HOST_PATH_MAX];
  DWORD attrs, e;
  int rv;

  if ((rv = shmbus__win_to_utf16(dir, w, HOST_PATH_MAX)) < 0) {
    snprintf(err, errlen, "the bus directory %s is not a usable path", dir);
    return rv;
  }
  if ((rv = files_security(system, &sa)) < 0) {
    snprintf(err, errlen, "cannot make a security descriptor for %s", dir);
    return rv;
  }
  if (!CreateDirectoryW(w, &sa) && (e = GetLastError()) != ERROR_ALREADY_EXISTS) {
    LocalFree(sa.lpSecurityDescriptor);
    snprintf(err, errlen, "cannot create the bus directory %s (error %lu)", dir, (unsigned long)e);
    return shmbus__win_error(e);
  }
  LocalFree(sa.lpSecurityDescriptor);
  attrs = GetFileAttributesW(w);
  if (attrs == INVALID_FILE_ATTRIBUTES) {
    e = GetLastError();
    snprintf(err, errlen, "cannot inspect %s (error %lu)", dir, (unsigned long)e);
    return shmbus__win_error(e);
  }
  if ((attrs & FILE_ATTRIBUTE_DIRECTORY) == 0 || (attrs & FILE_ATTRIBUTE_REPARSE_POINT) != 0) {
    snprintf(err, errlen, "%s is not a directory (or is a link or junction)", dir);
    return -ENOTDIR;
  }
  e = GetNamedSecurityInfoW(w, SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION, &owner, NULL, NULL, NULL,
                            &sd);
  if (e != ERROR_SUCCESS) {
    snprintf(err, errlen, "cannot read the owner of %s (error %lu)", dir, (unsigned long)e);
    return shmbus__win_error(e);
  }
  rv = shmbus__win_self_identity(&self);
  if (rv == 0 && (owner == NULL || !EqualSid(owner, (PSID)self.sid))) {
    snprintf(err, errlen, "%s belongs to another user than this daemon's", dir);
    rv = -EPERM;
  }
  LocalFree(sd);
  return rv;
}

int host_lock_take(const char *path, bool system, struct host_lock *lock) {
  SECURITY_ATTRIBUTES sa;
  BY_HANDLE_FILE_INFORMATION info;
  OVERLAPPED ov;
  wchar_t w[HOST_PATH_MAX];
  HANDLE h;
  DWORD e;
  int rv;

  lock->file = NULL;
  if ((rv = shmbus__win_to_utf16(path, w, HOST_PATH_MAX)) < 0)
    return rv;
  if ((rv = files_security(system, &sa)) < 0)
    return rv;
  /* FILE_FLAG_OPEN_REPARSE_POINT: a link planted in the directory is
   * opened itself, and refused below, instead of being followed. */
  h = CreateFileW(w, GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE, &sa,
                  OPEN_ALWAYS, FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT, NULL);
  e = GetLastError();
  LocalFree(sa.lpSecurityDescriptor);
  if (h == INVALID_HANDLE_VALUE)
    return shmbus__win_error(e);
  if (!GetFileInformationByHandle(h, &info) ||
      (info.dwFileAttributes & (FILE_ATTRIBUTE_REPARSE_POINT | FILE_ATTRIBUTE_DIRECTORY)) != 0) {
    CloseHandle(h);
    return -EINVAL;
  }
  memset(&ov, 0, sizeof(ov));
  ov.OffsetHigh = FILES_LOCK_OFFSET_HIGH;
  if (!LockFileEx(h, LOCKFILE_EXCLUSIVE_LOCK | LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ov)) {
    e = GetLastError();
    CloseHandle(h);
    return e == ERROR_LOCK_VIOLATION || e == ERROR_IO_PENDING ? -EBUSY : shmbus__win_error(e);
  }
  lock->file = h;
  return 0;
}

void host_lock_none(struct host_lock *lock) {
  lock->file = NULL;
}

int host_lock_write_pid(struct host_lock *lock) {
  char buf[32];
  int n = snprintf(buf, sizeof(buf), "%lu\r\n", (unsigned long)GetCurrentProcessId());
  LARGE_INTEGER zero;
  DWORD w = 0;

  if (lock->file == NULL)
    return -EBADF;
  zero.QuadPart = 0;
  if (!SetFilePointerEx(lock->file, zero, NULL, FILE_BEGIN) || !SetEndOfFile(lock->file) ||
      !WriteFile(lock->file, buf, (DWORD)n, &w, NULL))
    return shmbus__win_error(GetLastError());
  return w == (DWORD)n ? 0 : -EIO;
}

void host_lock_release(struct host_lock *lock) {
  /* Closing the handle releases its lock. */
  if (lock->file != NULL)
    CloseHandle(lock->file);
  lock->file = NULL;
}

FILE *host_config_open(const char *path) {
  /* "N": not inherited (msvcrt's counterpart of glibc's "e"). Text mode:
   * a line ending in CR LF reads as one ending in LF. */
  return fopen(path, "rN");
}

/* The C runtime has no getline: one character at a time, doubling the
 * buffer. */
long host_getline(char **line, size_t *cap, FILE *f) {
  size_t n = 0;
  int c;

  errno = 0;
  for (;;) {
    if (*line == NULL || n + 2 > *cap) {
      size_t want = *cap < 128 ? 128 : *cap * 2;
      char *p;
      if (want < *cap || (p = realloc(*line, want)) == NULL) {
        errno = ENOMEM;
        return -1;
      }
      *line = p;
      *cap = want;
    }
    if ((c = getc(f)) == EOF)
      break;
    (*line)[n++] = (char)c;
    if (c == '\n')
      break;
  }
  (*line)[n] = '\0';
  if (n == 0)
    return -1; /* the end (errno 0), or a read error (errno set by getc) */
  return n > LONG_MAX ? -1 : (long)n;
}
