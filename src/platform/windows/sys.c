/* Clocks, randomness, scheduling, the program's identity and paths on
 * Windows. See platform.h for the contract. */
#include <errno.h>
#include <string.h>
#include <wchar.h>

#include "win.h"

#include <bcrypt.h>

#include "../platform.h"

/* Wide paths up to this many units: more than MAX_PATH, the limit of the
 * calls below without the \\?\ prefix; a longer one is -ENAMETOOLONG. */
#define WIN_PATH_MAX 1024

uint64_t shmbus__clock_mono_ns(void) {
  LARGE_INTEGER c, f;
  uint64_t sec;
  /* Both cannot fail on Windows XP and later. The counter is split into
   * whole seconds and the rest so that the product does not overflow. */
  QueryPerformanceCounter(&c);
  QueryPerformanceFrequency(&f);
  sec = (uint64_t)c.QuadPart / (uint64_t)f.QuadPart;
  return sec * 1000000000u +
         ((uint64_t)c.QuadPart % (uint64_t)f.QuadPart) * 1000000000u / (uint64_t)f.QuadPart;
}

uint64_t shmbus__clock_real_ns(void) {
  FILETIME ft;
  uint64_t t;
  /* 100 ns units since 1601-01-01; the Unix epoch is 11644473600 s later. */
  GetSystemTimePreciseAsFileTime(&ft);
  t = ((uint64_t)ft.dwHighDateTime << 32) | ft.dwLowDateTime;
  return (t - 116444736000000000ull) * 100u;
}

int shmbus__random64(uint64_t *out) {
  /* The system's generator: no handle to open, nothing to seed. */
  return BCryptGenRandom(NULL, (PUCHAR)out, sizeof(*out), BCRYPT_USE_SYSTEM_PREFERRED_RNG) == 0
             ? 0
             : -EIO;
}

void shmbus__spin_backoff(unsigned spins) {
  if (spins < 64)
    YieldProcessor();
  else
    (void)SwitchToThread();
}

void shmbus__sleep_ms(unsigned ms) {
  Sleep(ms); /* Sleep(0) gives the rest of the time slice away */
}

static char program_name[256] = "shmbus";
static INIT_ONCE program_name_once = INIT_ONCE_STATIC_INIT;

static BOOL CALLBACK find_program_name(INIT_ONCE *once, void *arg, void **ctx) {
  wchar_t path[WIN_PATH_MAX], *base, *dot;
  char name[sizeof(program_name)];
  DWORD n = GetModuleFileNameW(NULL, path, WIN_PATH_MAX);

  (void)once, (void)arg, (void)ctx;
  if (n == 0 || n >= WIN_PATH_MAX)
    return TRUE; /* keep "shmbus" */
  base = wcsrchr(path, L'\\');
  base = base != NULL ? base + 1 : path;
  dot = wcsrchr(base, L'.');
  if (dot != NULL && _wcsicmp(dot, L".exe") == 0)
    *dot = L'\0';
  if (shmbus__win_to_utf8(base, name, sizeof(name)) == 0 && name[0] != '\0')
    memcpy(program_name, name, sizeof(name));
  return TRUE;
}

const char *shmbus__program_name(void) {
  InitOnceExecuteOnce(&program_name_once, find_program_name, NULL, NULL);
  return program_name;
}

uint32_t shmbus__self_uid(void) {
  struct shmbus__peer_id id;

  /* Windows names users by SID; the relative id (its last part) stands in
   * where the contract wants a number. Identity checks use the SID. */
  return shmbus__win_self_identity(&id) == 0 ? id.uid : 0;
}

int shmbus__pipe(shmbus__os_handle p[2]) {
  HANDLE r, w;
  /* No security attributes: not inherited by started programs. */
  if (!CreatePipe(&r, &w, NULL, 0))
    return shmbus__win_error(GetLastError());
  p[0] = r;
  p[1] = w;
  return 0;
}

int shmbus__default_bus_dir(char *out, size_t cap) {
  wchar_t base[WIN_PATH_MAX], dir[WIN_PATH_MAX];
  DWORD n = GetEnvironmentVariableW(L"LOCALAPPDATA", base, WIN_PATH_MAX);
  int m;

  /* The user's local application data; else the user's temporary
   * directory (GetTempPathW ends with a backslash). */
  if (n == 0 || n >= WIN_PATH_MAX) {
    n = GetTempPathW(WIN_PATH_MAX, base);
    if (n == 0 || n >= WIN_PATH_MAX)
      return -ENAMETOOLONG;
    if (base[n - 1] == L'\\')
      base[n - 1] = L'\0';
  }
  m = _snwprintf(dir, WIN_PATH_MAX, L"%ls\\shmbus", base);
  if (m < 0 || m >= WIN_PATH_MAX)
    return -ENAMETOOLONG;
  return shmbus__win_to_utf8(dir, out, cap) == 0 ? 0 : -ENAMETOOLONG;
}

static int module_file(HMODULE mod, char *out, size_t cap) {
  wchar_t path[WIN_PATH_MAX];
  DWORD n = GetModuleFileNameW(mod, path, WIN_PATH_MAX);
  if (n == 0)
    return -ENOENT;
  if (n >= WIN_PATH_MAX)
    return -ENAMETOOLONG;
  return shmbus__win_to_utf8(path, out, cap) == 0 ? 0 : -ENAMETOOLONG;
}

/* An object of this module: its address names the module that holds this
 * code (ISO C does not let a function's address become a data pointer). */
static const char sys_module_anchor;

int shmbus__library_file(char *out, size_t cap) {
  HMODULE mod;
  /* The module that holds this code: the DLL, or the program a static
   * library is linked into. */
  if (!GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS |
                              GET_MODULE_HANDLE_EX_FLAG_UNCHANGED_REFCOUNT,
                          (LPCWSTR)(const void *)&sys_module_anchor, &mod))
    return -ENOENT;
  return module_file(mod, out, cap);
}

int shmbus__program_file(char *out, size_t cap) {
  return module_file(NULL, out, cap);
}

bool shmbus__is_executable(const char *path) {
  wchar_t w[WIN_PATH_MAX];
  const wchar_t *dot;
  DWORD attrs;

  if (shmbus__win_to_utf16(path, w, WIN_PATH_MAX) < 0)
    return false;
  attrs = GetFileAttributesW(w);
  if (attrs == INVALID_FILE_ATTRIBUTES || (attrs & FILE_ATTRIBUTE_DIRECTORY) != 0)
    return false;
  /* Windows runs a file by its extension, not by a mode bit. */
  dot = wcsrchr(w, L'.');
  return dot != NULL && wcschr(dot, L'\\') == NULL && wcschr(dot, L'/') == NULL &&
         (_wcsicmp(dot, L".exe") == 0 || _wcsicmp(dot, L".com") == 0);
}

bool shmbus__path_exists(const char *path) {
  wchar_t w[WIN_PATH_MAX];
  DWORD err;

  if (shmbus__win_to_utf16(path, w, WIN_PATH_MAX) < 0)
    return true; /* cannot tell: not "nothing there" */
  if (GetFileAttributesW(w) != INVALID_FILE_ATTRIBUTES)
    return true;
  err = GetLastError();
  return err != ERROR_FILE_NOT_FOUND && err != ERROR_PATH_NOT_FOUND && err != ERROR_INVALID_NAME &&
         err != ERROR_BAD_NETPATH;
}
