/* costs_os on Windows: the daemon's process read through the process APIs
 * (a handle opened for PROCESS_QUERY_LIMITED_INFORMATION each time). See
 * costs_os.h. Windows has no counterpart of /proc's shared resident
 * memory (RssShmem), of the scheduler's run time (schedstat) or of a
 * count of voluntary context switches: those say "not available". */
#include <windows.h>

#include <psapi.h>
#include <tlhelp32.h>

#include <string.h>

#include "costs_os.h"

const char costs_os_name[] = "Windows";
const char costs_os_handles_name[] = "handles";
const char costs_os_cpu_what[] = "user+kernel, GetProcessTimes";
const char costs_os_daemon_stop[] = "when stopped through the API";

const char *costs_os_mem_name(enum costs_mem m) {
  switch (m) {
  case COSTS_MEM_PRIVATE:
    return "private bytes";
  case COSTS_MEM_SHARED:
    return "shared resident";
  default:
    return "working set";
  }
}

static HANDLE open_query(pid_t pid) {
  return OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)pid);
}

long costs_os_mem_kb(pid_t pid, enum costs_mem m) {
  PROCESS_MEMORY_COUNTERS_EX pmc;
  HANDLE h;
  BOOL ok;

  if (m == COSTS_MEM_SHARED || (h = open_query(pid)) == NULL)
    return -1;
  memset(&pmc, 0, sizeof(pmc));
  ok = GetProcessMemoryInfo(h, (PROCESS_MEMORY_COUNTERS *)&pmc, sizeof(pmc));
  CloseHandle(h);
  if (!ok)
    return -1;
  return (long)((m == COSTS_MEM_PRIVATE ? pmc.PrivateUsage : pmc.WorkingSetSize) / 1024u);
}

int costs_os_handles(pid_t pid) {
  HANDLE h = open_query(pid);
  DWORD n = 0;
  BOOL ok;

  if (h == NULL)
    return -1;
  ok = GetProcessHandleCount(h, &n);
  CloseHandle(h);
  return ok ? (int)n : -1;
}

long costs_os_cpu(pid_t pid) {
  FILETIME created, exited, kernel, user;
  ULARGE_INTEGER k, u;
  HANDLE h = open_query(pid);
  BOOL ok;

  if (h == NULL)
    return -1;
  ok = GetProcessTimes(h, &created, &exited, &kernel, &user);
  CloseHandle(h);
  if (!ok)
    return -1;
  k.LowPart = kernel.dwLowDateTime;
  k.HighPart = kernel.dwHighDateTime;
  u.LowPart = user.dwLowDateTime;
  u.HighPart = user.dwHighDateTime;
  return (long)(k.QuadPart + u.QuadPart);
}

long costs_os_cpu_hz(void) {
  return 10000000; /* FILETIME's 100 ns */
}

bool costs_os_sched_ns(pid_t pid, uint64_t *ns) {
  (void)pid;
  *ns = 0;
  return false;
}

/* The threads of pid in a snapshot of the system's; -1 when none can be
 * taken. */
static int thread_count(pid_t pid) {
  HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0);
  THREADENTRY32 te;
  int n = 0;

  if (snap == INVALID_HANDLE_VALUE)
    return -1;
  te.dwSize = sizeof(te);
  if (Thread32First(snap, &te)) {
    do {
      if (te.th32OwnerProcessID == (DWORD)pid)
        n++;
      te.dwSize = sizeof(te);
    } while (Thread32Next(snap, &te));
  }
  CloseHandle(snap);
  return n;
}

long costs_os_ctx_switches(pid_t pid, bool voluntary, int *threads) {
  (void)voluntary;
  if (threads != NULL)
    *threads = thread_count(pid);
  return -1;
}

void costs_os_init(void) {
}

void costs_os_raise_fd_limit(void) {
  /* Handles have no per-process limit to raise. */
}

void costs_os_yield(void) {
  (void)SwitchToThread();
}
