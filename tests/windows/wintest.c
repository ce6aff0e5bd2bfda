/* wintest: see wintest.h. */
#include "wintest.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <bcrypt.h>

static const char *current_test = "";

bool wintest_under_wine(void) {
  HMODULE ntdll = GetModuleHandleA("ntdll.dll");
  return ntdll != NULL && GetProcAddress(ntdll, "wine_get_version") != NULL;
}

void wintest_fail_note(const char *file, int line, const char *cond, const char *fmt, ...) {
  DWORD err = GetLastError();
  va_list ap;
  fprintf(stderr, "  %s: %s:%d: check failed: %s: ", current_test, file, line, cond);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, " (GetLastError %lu)\n", (unsigned long)err);
}

void wintest_note(const char *fmt, ...) {
  va_list ap;
  printf("  note: ");
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  printf("\n");
  fflush(stdout);
}

HANDLE wintest_spawn(const char *args, DWORD *pid) {
  char exe[MAX_PATH], cmd[2 * MAX_PATH];
  STARTUPINFOA si;
  PROCESS_INFORMATION pi;
  DWORD n = GetModuleFileNameA(NULL, exe, sizeof(exe));

  if (n == 0 || n >= sizeof(exe))
    return NULL;
  if (snprintf(cmd, sizeof(cmd), "\"%s\" child %s", exe, args) >= (int)sizeof(cmd))
    return NULL;
  memset(&si, 0, sizeof(si));
  si.cb = sizeof(si);
  /* No handles are inherited: a child reaches the objects by name, as the
   * backend's peers do. */
  if (!CreateProcessA(exe, cmd, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi))
    return NULL;
  CloseHandle(pi.hThread);
  if (pid != NULL)
    *pid = pi.dwProcessId;
  return pi.hProcess;
}

long wintest_join(HANDLE proc) {
  DWORD code;
  long rv = -1;
  if (proc == NULL)
    return -1;
  if (WaitForSingleObject(proc, 60000) == WAIT_OBJECT_0 && GetExitCodeProcess(proc, &code))
    rv = (long)code;
  else
    TerminateProcess(proc, 255);
  CloseHandle(proc);
  return rv;
}

void wintest_unique_name(char *out, size_t cap, const char *prefix) {
  uint64_t r = 0;
  /* A failure leaves r at 0; the pid still keeps concurrent runs apart. */
  (void)BCryptGenRandom(NULL, (PUCHAR)&r, sizeof(r), BCRYPT_USE_SYSTEM_PREFERRED_RNG);
  snprintf(out, cap, "%sshmbus-test-%lu-%016llx", prefix, (unsigned long)GetCurrentProcessId(),
           (unsigned long long)r);
}

int wintest_main(int argc, char **argv, const struct wintest *tests, unsigned n,
                 int (*child)(int argc, char **argv)) {
  unsigned passed = 0, failed = 0, skipped = 0, i;
  int a;
  bool wine = wintest_under_wine();

  /* A crash is reported by the exit code, not by a dialog box or a
   * debugger (children inherit the mode: some tests crash them on purpose). */
  SetErrorMode(SEM_FAILCRITICALERRORS | SEM_NOGPFAULTERRORBOX);
  if (argc >= 2 && strcmp(argv[1], "child") == 0)
    return child != NULL ? child(argc - 2, argv + 2) : 2;
  if (argc >= 2 && strcmp(argv[1], "--list") == 0) {
    for (i = 0; i < n; i++)
      printf("%s\n", tests[i].name);
    return 0;
  }
  setvbuf(stdout, NULL, _IONBF, 0);
  if (wine) {
    const char *(CDECL * version)(void) = (const char *(CDECL *)(void))(
        void (*)(void))GetProcAddress(GetModuleHandleA("ntdll.dll"), "wine_get_version");
    printf("running under Wine %s\n", version());
  }
  for (i = 0; i < n; i++) {
    bool selected = argc < 2;
    for (a = 1; a < argc && !selected; a++)
      selected = strcmp(argv[a], tests[i].name) == 0;
    if (!selected)
      continue;
    current_test = tests[i].name;
    switch (tests[i].fn()) {
    case WINTEST_PASS:
      printf("PASS %s\n", tests[i].name);
      passed++;
      break;
    case WINTEST_WINE_ONLY_SKIP:
      if (wine) {
        printf("SKIP %s (not enforced by Wine: checked on real Windows only)\n", tests[i].name);
        skipped++;
        break;
      }
      /* On Windows the guarantee must hold: a skip is a failure. */
      /* fall through */
    default:
      printf("FAIL %s\n", tests[i].name);
      failed++;
    }
  }
  printf("%u passed, %u failed", passed, failed);
  if (skipped > 0)
    printf(" (%u not enforced by Wine, skipped)", skipped);
  printf("\n");
  return failed == 0 && passed + skipped > 0 ? 0 : 1;
}
