/* Helpers of the Windows backend: error translation, owner-only security
 * descriptors, unguessable object names, UTF-8 and UTF-16. See win.h. */
#include <errno.h>
#include <stdio.h>

#include "win.h"

#include <bcrypt.h>
#include <sddl.h>

#include "../platform.h"

int shmbus__win_error(DWORD err) {
  switch (err) {
  case ERROR_FILE_NOT_FOUND:
  case ERROR_PATH_NOT_FOUND:
  case ERROR_INVALID_DRIVE:
    return -ENOENT;
  case ERROR_ACCESS_DENIED:
  case ERROR_PRIVILEGE_NOT_HELD:
    return -EACCES;
  case ERROR_INVALID_HANDLE:
    return -EBADF;
  case ERROR_NOT_ENOUGH_MEMORY:
  case ERROR_OUTOFMEMORY:
  case ERROR_COMMITMENT_LIMIT:
  case ERROR_NO_SYSTEM_RESOURCES:
    return -ENOMEM;
  case ERROR_DISK_FULL:
  case ERROR_HANDLE_DISK_FULL:
    return -ENOSPC;
  case ERROR_TOO_MANY_OPEN_FILES:
    return -EMFILE;
  case ERROR_INVALID_PARAMETER:
  case ERROR_INVALID_NAME:
    return -EINVAL;
  case ERROR_ALREADY_EXISTS:
  case ERROR_FILE_EXISTS:
    return -EEXIST;
  case ERROR_BROKEN_PIPE:
  case ERROR_NO_DATA:
  case ERROR_PIPE_NOT_CONNECTED:
    return -EPIPE;
  case ERROR_PIPE_BUSY:
    return -EAGAIN;
  case ERROR_FILENAME_EXCED_RANGE:
    return -ENAMETOOLONG;
  case ERROR_CALL_NOT_IMPLEMENTED:
  case ERROR_NOT_SUPPORTED:
    return -ENOSYS;
  case ERROR_TIMEOUT:
  case WAIT_TIMEOUT:
    return -ETIMEDOUT;
  default:
    return -EIO;
  }
}

int shmbus__win_status(LONG status) {
  switch ((unsigned long)status) {
  case 0xC0000008ul: /* STATUS_INVALID_HANDLE */
    return -EBADF;
  case 0xC0000024ul: /* STATUS_OBJECT_TYPE_MISMATCH */
  case 0xC000000Dul: /* STATUS_INVALID_PARAMETER */
  case 0xC0000003ul: /* STATUS_INVALID_INFO_CLASS */
    return -EINVAL;
  case 0xC0000022ul: /* STATUS_ACCESS_DENIED */
    return -EACCES;
  case 0xC0000017ul: /* STATUS_NO_MEMORY */
  case 0xC000009Aul: /* STATUS_INSUFFICIENT_RESOURCES */
    return -ENOMEM;
  case 0xC0000002ul: /* STATUS_NOT_IMPLEMENTED */
    return -ENOSYS;
  default:
    return -EIO;
  }
}

int shmbus__win_owner_only(SECURITY_ATTRIBUTES *sa) {
  union {
    TOKEN_USER user;
    char buf[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
  } u;
  HANDLE tok;
  DWORD len;
  wchar_t *sid = NULL, sddl[256];
  PSECURITY_DESCRIPTOR sd = NULL;
  int rv = 0;

  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
    return shmbus__win_error(GetLastError());
  if (!GetTokenInformation(tok, TokenUser, &u, sizeof(u), &len) ||
      !ConvertSidToStringSidW(u.user.User.Sid, &sid))
    rv = shmbus__win_error(GetLastError());
  CloseHandle(tok);
  if (rv < 0)
    return rv;
  /* D:P = a protected DACL; (A;;GA;;;SID) = allow everything to SID. */
  if (_snwprintf(sddl, sizeof(sddl) / sizeof(sddl[0]), L"D:P(A;;GA;;;%ls)", sid) < 0)
    rv = -ENAMETOOLONG;
  sddl[sizeof(sddl) / sizeof(sddl[0]) - 1] = L'\0';
  LocalFree(sid);
  if (rv < 0)
    return rv;
  if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &sd, NULL))
    return shmbus__win_error(GetLastError());
  sa->nLength = sizeof(*sa);
  sa->lpSecurityDescriptor = sd;
  /* Not inherited by programs the process starts (the contract's
   * close-on-exec). */
  sa->bInheritHandle = FALSE;
  return 0;
}

int shmbus__win_object_name(const char *kind, wchar_t *out, size_t cap) {
  uint64_t r[2];
  int n;

  if (BCryptGenRandom(NULL, (PUCHAR)r, sizeof(r), BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
    return -EIO;
  n = _snwprintf(out, cap, L"Local\\shmbus-%hs-%lu-%016llx%016llx", kind,
                 (unsigned long)GetCurrentProcessId(), (unsigned long long)r[0],
                 (unsigned long long)r[1]);
  return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int shmbus__win_to_utf16(const char *s, wchar_t *out, size_t cap) {
  int n;
  if (cap > INT32_MAX)
    cap = INT32_MAX;
  n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, out, (int)cap);
  if (n > 0)
    return 0;
  return GetLastError() == ERROR_INSUFFICIENT_BUFFER ? -ENAMETOOLONG : -EINVAL;
}

int shmbus__win_to_utf8(const wchar_t *s, char *out, size_t cap) {
  int n;
  if (cap > INT32_MAX)
    cap = INT32_MAX;
  n = WideCharToMultiByte(CP_UTF8, WC_ERR_INVALID_CHARS, s, -1, out, (int)cap, NULL, NULL);
  if (n > 0)
    return 0;
  return GetLastError() == ERROR_INSUFFICIENT_BUFFER ? -ENAMETOOLONG : -EINVAL;
}

uint32_t shmbus__win_sid_rid(PSID sid) {
  UCHAR n = *GetSidSubAuthorityCount(sid);
  return n > 0 ? (uint32_t)*GetSidSubAuthority(sid, n - 1u) : 0;
}

FARPROC shmbus__win_ntdll(const char *name) {
  HMODULE m = GetModuleHandleW(L"ntdll.dll");
  return m != NULL ? GetProcAddress(m, name) : NULL;
}

FARPROC shmbus__win_kernelbase(const char *name) {
  HMODULE m = GetModuleHandleW(L"kernelbase.dll");
  FARPROC f = m != NULL ? GetProcAddress(m, name) : NULL;
  if (f == NULL && (m = GetModuleHandleW(L"kernel32.dll")) != NULL)
    f = GetProcAddress(m, name);
  return f;
}
