/* The benchmarks' processes and clocks on Windows: benchproc.h, and the
 * parts of benchutil.h that ask the OS (benchutil.c has them for Linux).
 *
 * Windows has no fork. A child is this program started again with
 * --bench-child (bp_spawn_self): its command line names the handles it
 * inherits (a handle of its parent, to see it go, and the sections of
 * bp_map_shared, which it maps in the order its parent made them), the bus
 * directory, the job it is to do and the parent's own arguments. Every
 * child and the daemon are in a job object that kills them when it closes,
 * that is when the parent ends however it ends (Linux: PR_SET_PDEATHSIG).
 * The parent puts itself in that job first, so that a child is in it from
 * its creation on: a child created suspended and added afterwards would be
 * left suspended forever if the parent died in between. Only when the
 * parent cannot join it (it is in a job that allows no nesting) is each
 * child added while suspended.
 *
 * Handles are inherited with bInheritHandles and no handle list: this
 * program has one thread that starts processes, and the only inheritable
 * handles it holds while it does are the ones meant for them (the sections,
 * the parent handle; the daemon's log, ready event and NUL only during the
 * daemon's start). The library's own handles are not inheritable. */
#include <windows.h>

#include <cpuid.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchproc.h"
#include "benchutil.h"
#include "platform/platform.h"
#include "platform/win_proc.h"

/* ---- benchutil: the machine, clocks, CPU time ------------------------------ */

void bu_cpu_model(char *out, size_t cap) {
  unsigned regs[12], a, b, c, d, family, model;
  char brand[49];
  size_t i;

  if (__get_cpuid_max(0x80000000u, NULL) < 0x80000004u) {
    snprintf(out, cap, "unknown CPU");
    return;
  }
  for (i = 0; i < 3; i++)
    __get_cpuid(0x80000002u + (unsigned)i, &regs[4 * i], &regs[4 * i + 1], &regs[4 * i + 2],
                &regs[4 * i + 3]);
  memcpy(brand, regs, 48);
  brand[48] = '\0';
  for (i = 0; brand[i] == ' '; i++)
    ;
  if (!__get_cpuid(1, &a, &b, &c, &d)) {
    snprintf(out, cap, "%s", brand + i);
    return;
  }
  /* As Linux's /proc/cpuinfo numbers them. */
  family = (a >> 8) & 0xf;
  model = (a >> 4) & 0xf;
  if (family == 0xf)
    family += (a >> 20) & 0xff;
  if (family == 0x6 || family >= 0xf)
    model += ((a >> 16) & 0xf) << 4;
  snprintf(out, cap, "%s (family %u, model %u)", brand + i, family, model);
}

void bu_load_average(char *out, size_t cap) {
  snprintf(out, cap, "n/a");
}

void bu_kernel(char *out, size_t cap) {
  typedef LONG(WINAPI * rtl_get_version_fn)(OSVERSIONINFOW *);
  typedef const char *(CDECL * wine_version_fn)(void);
  HMODULE nt = GetModuleHandleW(L"ntdll.dll");
  OSVERSIONINFOW v;
  rtl_get_version_fn get = NULL;
  wine_version_fn wine = NULL;
  int n;

  memset(&v, 0, sizeof(v));
  v.dwOSVersionInfoSize = sizeof(v);
  if (nt != NULL) {
    /* Function pointers from GetProcAddress, through a union of object and
     * function pointer (ISO C has no cast between them). */
    union {
      FARPROC p;
      rtl_get_version_fn get;
      wine_version_fn wine;
    } u;
    u.p = GetProcAddress(nt, "RtlGetVersion");
    get = u.p != NULL ? u.get : NULL;
    u.p = GetProcAddress(nt, "wine_get_version");
    wine = u.p != NULL ? u.wine : NULL;
  }
  if (get == NULL || get(&v) != 0) {
    snprintf(out, cap, "Windows (version unknown) x86_64");
    return;
  }
  n = snprintf(out, cap, "Windows %lu.%lu.%lu x86_64", (unsigned long)v.dwMajorVersion,
               (unsigned long)v.dwMinorVersion, (unsigned long)v.dwBuildNumber);
  if (wine != NULL && n > 0 && (size_t)n < cap)
    snprintf(out + n, cap - (size_t)n, " (Wine %s)", wine());
}

size_t bu_llc_bytes(void) {
  SYSTEM_LOGICAL_PROCESSOR_INFORMATION *info = NULL;
  DWORD len = 0, i, n;
  size_t best = 0;

  if (GetLogicalProcessorInformation(NULL, &len) || GetLastError() != ERROR_INSUFFICIENT_BUFFER)
    return 0;
  if ((info = malloc(len)) == NULL)
    return 0;
  if (GetLogicalProcessorInformation(info, &len)) {
    n = len / sizeof(*info);
    for (i = 0; i < n; i++)
      if (info[i].Relationship == RelationCache && info[i].Cache.Size > best)
        best = info[i].Cache.Size;
  }
  free(info);
  return best;
}

/* The library's monotonic clock (QueryPerformanceCounter): shmbus stamps
 * messages with it, and latencies compare a receiver's bu_now_ns with
 * those stamps. */
uint64_t bu_now_ns(void) {
  return shmbus__clock_mono_ns();
}

void bu_sleep_ms(unsigned ms) {
  Sleep(ms);
}

/* Windows sleeps in timer ticks (1 to 15.6 ms): Sleep while more than 2 ms
 * are left, then give the CPU away until due. */
void bu_sleep_until_ns(uint64_t t) {
  uint64_t now;
  while ((now = bu_now_ns()) < t) {
    if (t - now > 2000000u)
      Sleep((DWORD)((t - now) / 1000000u - 1));
    else
      (void)SwitchToThread();
  }
}

int bu_current_cpu(void) {
  return (int)GetCurrentProcessorNumber();
}

long bu_online_cpus(void) {
  DWORD n = GetActiveProcessorCount(ALL_PROCESSOR_GROUPS);
  return n < 1 ? 1 : (long)n;
}

uint64_t bu_cpu_ns(void) {
  FILETIME created, exited, kernel, user;
  ULARGE_INTEGER k, u;
  if (!GetProcessTimes(GetCurrentProcess(), &created, &exited, &kernel, &user))
    return 0;
  k.LowPart = kernel.dwLowDateTime;
  k.HighPart = kernel.dwHighDateTime;
  u.LowPart = user.dwLowDateTime;
  u.HighPart = user.dwHighDateTime;
  return (k.QuadPart + u.QuadPart) * 100u;
}

/* Windows keeps no count of a process's voluntary context switches (the
 * threads' ContextSwitches count every switch, preemptions too): 0, and
 * bu_nvcsw_available says so (the reports say "not available"). */
uint64_t bu_nvcsw(void) {
  return 0;
}

bool bu_nvcsw_available(void) {
  return false;
}

/* The scheduler's per-thread counters are Linux's /proc: shmbus-bench
 * leaves its scheduling table and columns out on Windows. */
int bu_sched_read(pid_t pid, struct bu_sched *out) {
  (void)pid;
  memset(out, 0, sizeof(*out));
  return -ENOSYS;
}

bool bu_sched_available(void) {
  return false;
}

void bu_pin(int cpu) {
  if (cpu < 0 || cpu >= 64)
    return;
  (void)SetProcessAffinityMask(GetCurrentProcess(), (DWORD_PTR)1 << cpu);
}

void bu_spin_step(unsigned *spins) {
  if (++*spins % 16384u == 0)
    (void)SwitchToThread();
  else
    YieldProcessor();
}

/* ---- benchproc ------------------------------------------------------------ */

#define BP_MAX_MAPS 8u
#define BP_MAX_CHILDREN 256u
/* The longest command line CreateProcess takes, in characters. */
#define BP_CMDLINE_MAX 32768u

static const char *prog_name = "bench";
static bool is_child;
static HANDLE parent_process; /* in a child: its parent (SYNCHRONIZE) */
static HANDLE kill_job;       /* in the parent: the job its children and daemon are in */
static bool in_kill_job;      /* the parent is in it too: its children are from the start */

static struct {
  HANDLE h;
  void *p;
  size_t len;
} maps[BP_MAX_MAPS];
static unsigned nmaps;      /* sections made (parent) or passed (child) */
static unsigned maps_taken; /* in a child: sections mapped so far */

static struct {
  pid_t pid;
  HANDLE h;
} children[BP_MAX_CHILDREN];

static HANDLE daemon_process;
static pid_t daemon_pid = -1;
static char bus_dir[MAX_PATH];
static char daemon_log[MAX_PATH + 16];

/* GetLastError as a negative errno value, for bp_die's message. */
static int win_errno(DWORD e) {
  switch (e) {
  case ERROR_FILE_NOT_FOUND:
  case ERROR_PATH_NOT_FOUND:
    return -ENOENT;
  case ERROR_ACCESS_DENIED:
    return -EACCES;
  case ERROR_NOT_ENOUGH_MEMORY:
  case ERROR_OUTOFMEMORY:
  case ERROR_COMMITMENT_LIMIT:
    return -ENOMEM;
  case ERROR_ALREADY_EXISTS:
  case ERROR_FILE_EXISTS:
    return -EEXIST;
  case ERROR_INVALID_HANDLE:
    return -EBADF;
  case ERROR_INVALID_PARAMETER:
    return -EINVAL;
  default:
    return -EIO;
  }
}

static _Noreturn void die_win(const char *what) {
  DWORD e = GetLastError();
  fprintf(stderr, "%s: %s: Windows error %lu\n", prog_name, what, (unsigned long)e);
  bp_die(what, win_errno(e));
}

bool bp_is_parent(void) {
  return !is_child;
}

void bp_die(const char *what, int rv) {
  fprintf(stderr, "%s[%lu]: %s: %s (%s)\n", prog_name, (unsigned long)GetCurrentProcessId(), what,
          shmbus_strerror(rv), shmbus_err_name(rv));
  fflush(NULL);
  if (is_child)
    _exit(1);
  if (daemon_pid > 0) {
    int status;
    bp_daemon_stop(&status);
    fprintf(stderr, "%s: daemon log kept in %s\n", prog_name, daemon_log);
  }
  exit(1);
}

void bp_die_errno(const char *what) {
  bp_die(what, -errno);
}

/* The job object that ends the children and the daemon with us: the only
 * handle to it is ours, and it closes when we end. */
static void kill_job_make(void) {
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION lim;
  if (kill_job != NULL)
    return;
  if ((kill_job = CreateJobObjectW(NULL, NULL)) == NULL)
    die_win("CreateJobObject");
  memset(&lim, 0, sizeof(lim));
  lim.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
  if (!SetInformationJobObject(kill_job, JobObjectExtendedLimitInformation, &lim, sizeof(lim)))
    die_win("SetInformationJobObject");
  in_kill_job = AssignProcessToJobObject(kill_job, GetCurrentProcess()) != 0;
}

void bp_init(const char *prog) {
  prog_name = prog;
  kill_job_make();
}

/* Appends `arg` to the command line at *p (end: its end), quoted as the C
 * runtime splits command lines: inside double quotes, backslashes before a
 * quote (and before the closing one) doubled, quotes escaped. */
static bool cmd_put(char **p, char *end, const char *arg) {
  char *o = *p;
  size_t bs = 0;
#define PUT(c)                                                                                     \
  do {                                                                                             \
    if (o + 1 >= end)                                                                              \
      return false;                                                                                \
    *o++ = (c);                                                                                    \
  } while (0)
  PUT('"');
  for (; *arg != '\0'; arg++) {
    if (*arg == '\\') {
      bs++;
      continue;
    }
    for (; bs > 0; bs--) {
      PUT('\\');
      if (*arg == '"')
        PUT('\\');
    }
    if (*arg == '"')
      PUT('\\');
    PUT(*arg);
  }
  for (; bs > 0; bs--) {
    PUT('\\');
    PUT('\\');
  }
  PUT('"');
  PUT(' ');
#undef PUT
  *o = '\0';
  *p = o;
  return true;
}

/* Starts `cmd` (its program first on it) as a child in the kill job,
 * inheriting our inheritable handles; `si` NULL: our standard handles.
 * Returns the process; *pid its id. */
static HANDLE start_process(const char *exe, char *cmd, STARTUPINFOA *si, DWORD *pid) {
  STARTUPINFOA own;
  PROCESS_INFORMATION pi;

  kill_job_make();
  if (si == NULL) {
    memset(&own, 0, sizeof(own));
    own.cb = sizeof(own);
    si = &own;
  }
  fflush(NULL);
  if (in_kill_job) {
    /* In our job from its creation on. */
    if (!CreateProcessA(exe, cmd, NULL, NULL, TRUE, 0, NULL, NULL, si, &pi))
      die_win("CreateProcess");
    CloseHandle(pi.hThread);
    *pid = pi.dwProcessId;
    return pi.hProcess;
  }
  /* Suspended until it is in the job: it cannot outlive us from its
   * first instruction on (but stays suspended if we die before). */
  if (!CreateProcessA(exe, cmd, NULL, NULL, TRUE, CREATE_SUSPENDED, NULL, NULL, si, &pi))
    die_win("CreateProcess");
  if (!AssignProcessToJobObject(kill_job, pi.hProcess)) {
    DWORD e = GetLastError();
    (void)TerminateProcess(pi.hProcess, 1);
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    SetLastError(e);
    die_win("AssignProcessToJobObject");
  }
  if (ResumeThread(pi.hThread) == (DWORD)-1) {
    DWORD e = GetLastError();
    (void)TerminateProcess(pi.hProcess, 1);
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    SetLastError(e);
    die_win("ResumeThread");
  }
  CloseHandle(pi.hThread);
  *pid = pi.dwProcessId;
  return pi.hProcess;
}

pid_t bp_spawn_self(const char *const *job, unsigned n, int argc, char **argv) {
  char exe[MAX_PATH], num[32], handles[32 * (BP_MAX_MAPS + 1)], *cmd, *p, *end;
  HANDLE me = NULL, h;
  DWORD len, pid;
  unsigned i, slot;
  int a, k;
  bool ok;

  for (slot = 0; slot < BP_MAX_CHILDREN && children[slot].h != NULL; slot++)
    ;
  if (slot == BP_MAX_CHILDREN)
    bp_die("too many child processes", -EAGAIN);
  len = GetModuleFileNameA(NULL, exe, sizeof(exe));
  if (len == 0 || len >= sizeof(exe))
    die_win("GetModuleFileName");
  /* A handle of ours the child can wait on, and nothing else. */
  if (!DuplicateHandle(GetCurrentProcess(), GetCurrentProcess(), GetCurrentProcess(), &me,
                       SYNCHRONIZE, TRUE, 0))
    die_win("DuplicateHandle");
  k = snprintf(handles, sizeof(handles), "%llu:", (unsigned long long)(uintptr_t)me);
  for (i = 0; i < nmaps; i++)
    k += snprintf(handles + k, sizeof(handles) - (size_t)k, "%s%llu", i > 0 ? "," : "",
                  (unsigned long long)(uintptr_t)maps[i].h);
  if ((cmd = malloc(BP_CMDLINE_MAX)) == NULL)
    bp_die("malloc", -ENOMEM);
  p = cmd;
  end = cmd + BP_CMDLINE_MAX;
  *p = '\0';
  snprintf(num, sizeof(num), "%u", n);
  ok = cmd_put(&p, end, exe) && cmd_put(&p, end, "--bench-child") && cmd_put(&p, end, handles) &&
       cmd_put(&p, end, bus_dir) && cmd_put(&p, end, num);
  for (i = 0; ok && i < n; i++)
    ok = cmd_put(&p, end, job[i]);
  for (a = 1; ok && a < argc; a++)
    ok = cmd_put(&p, end, argv[a]);
  if (!ok)
    bp_die("the child's command line", -E2BIG);
  h = start_process(exe, cmd, NULL, &pid);
  free(cmd);
  CloseHandle(me);
  children[slot].pid = (pid_t)pid;
  children[slot].h = h;
  return (pid_t)pid;
}

pid_t bp_child(int (*fn)(char **job, unsigned n), char **job, unsigned n, int argc, char **argv) {
  (void)fn; /* the child's main calls it */
  return bp_spawn_self((const char *const *)job, n, argc, argv);
}

/* Parses a handle value written by bp_spawn_self; *s moves past it. */
static bool parse_handle(const char **s, HANDLE *h) {
  char *e;
  unsigned long long v;
  errno = 0;
  v = strtoull(*s, &e, 10);
  if (e == *s || errno != 0 || v == 0)
    return false;
  *h = (HANDLE)(uintptr_t)v;
  *s = e;
  return true;
}

int bp_child_init(int argc, char **argv, char ***job, unsigned *njob) {
  const char *s;
  char *e;
  unsigned long n;

  if (argc < 2 || strcmp(argv[1], "--bench-child") != 0)
    return 0;
  is_child = true;
  if (argc < 5)
    bp_die("--bench-child: too few arguments", -EINVAL);
  s = argv[2];
  if (!parse_handle(&s, &parent_process) || *s++ != ':')
    bp_die("--bench-child: bad handles", -EINVAL);
  while (*s != '\0') {
    if (nmaps == BP_MAX_MAPS || !parse_handle(&s, &maps[nmaps].h) || (*s != ',' && *s != '\0'))
      bp_die("--bench-child: bad handles", -EINVAL);
    nmaps++;
    if (*s == ',')
      s++;
  }
  /* The parent handle must be one: a wait on it that fails says it is not. */
  if (WaitForSingleObject(parent_process, 0) == WAIT_FAILED)
    die_win("--bench-child: the parent handle");
  if (strlen(argv[3]) >= sizeof(bus_dir))
    bp_die("--bench-child: bus directory", -ENAMETOOLONG);
  snprintf(bus_dir, sizeof(bus_dir), "%s", argv[3]);
  errno = 0;
  n = strtoul(argv[4], &e, 10);
  if (*argv[4] == '\0' || *e != '\0' || errno != 0 || n > (unsigned long)(argc - 5))
    bp_die("--bench-child: bad job count", -EINVAL);
  *job = argv + 5;
  *njob = (unsigned)n;
  return 5 + (int)n;
}

void *bp_map_shared(size_t len) {
  SECURITY_ATTRIBUTES inherit = {sizeof(inherit), NULL, TRUE};
  HANDLE h;
  void *p;

  if (is_child) {
    /* The parent's next section, of the same length. */
    if (maps_taken >= nmaps)
      bp_die("a shared section the parent did not pass", -EINVAL);
    if ((p = MapViewOfFile(maps[maps_taken].h, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, len)) == NULL)
      die_win("MapViewOfFile (the parent's section)");
    maps[maps_taken].p = p;
    maps[maps_taken++].len = len;
    return p;
  }
  if (nmaps == BP_MAX_MAPS)
    bp_die("too many shared sections", -ENOMEM);
  /* On the paging file, committed now: short of memory fails here. */
  h = CreateFileMappingW(INVALID_HANDLE_VALUE, &inherit, PAGE_READWRITE | SEC_COMMIT,
                         (DWORD)((uint64_t)len >> 32), (DWORD)len, NULL);
  if (h == NULL)
    die_win("CreateFileMapping");
  if ((p = MapViewOfFile(h, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, len)) == NULL)
    die_win("MapViewOfFile");
  maps[nmaps].h = h;
  maps[nmaps].p = p;
  maps[nmaps++].len = len;
  return p;
}

void bp_unmap_shared(void *p, size_t len) {
  unsigned i;
  (void)len;
  for (i = 0; i < nmaps; i++)
    if (maps[i].p == p) {
      (void)UnmapViewOfFile(p);
      maps[i].p = NULL;
      if (!is_child && maps[i].h != NULL) {
        CloseHandle(maps[i].h);
        maps[i].h = NULL;
      }
      return;
    }
}

bool bp_parent_alive(void) {
  if (!is_child)
    return true;
  return WaitForSingleObject(parent_process, 0) == WAIT_TIMEOUT;
}

/* A wait status as on POSIX (see benchproc.h). */
static int status_of(HANDLE h) {
  DWORD code;
  if (!GetExitCodeProcess(h, &code))
    return 9;
  return code < 256 ? (int)(code << 8) : 9;
}

static unsigned child_slot(pid_t pid) {
  unsigned i;
  for (i = 0; i < BP_MAX_CHILDREN; i++)
    if (children[i].h != NULL && children[i].pid == pid)
      return i;
  bp_die("not a child of ours", -ECHILD);
}

void bp_reap(pid_t pid, const char *who) {
  int status = bp_wait_for(pid, INFINITE - 1);
  if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "%s: %s (pid %d) failed: %s %d\n", prog_name, who, (int)pid,
            status != -1 && WIFEXITED(status) ? "exit status" : "ended by",
            status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : 9);
    bp_die("child process", -EPROTO);
  }
}

int bp_wait_for(pid_t pid, unsigned timeout_ms) {
  unsigned i = child_slot(pid);
  HANDLE h = children[i].h;
  DWORD w = WaitForSingleObject(h, timeout_ms);
  int status;

  if (w == WAIT_FAILED)
    die_win("WaitForSingleObject");
  if (w == WAIT_TIMEOUT) {
    (void)TerminateProcess(h, 9);
    (void)WaitForSingleObject(h, INFINITE);
    status = -1;
  } else {
    status = status_of(h);
  }
  CloseHandle(h);
  children[i].h = NULL;
  return status;
}

/* A bare program name is looked for beside this program first (where
 * scripts/windows.sh puts shmbusd.exe), then as CreateProcess finds it. */
static void resolve_beside(const char *path, char *out, size_t cap) {
  char exe[MAX_PATH], *slash;
  DWORD len;
  snprintf(out, cap, "%s", path);
  if (strpbrk(path, "\\/:") != NULL)
    return;
  len = GetModuleFileNameA(NULL, exe, sizeof(exe));
  if (len == 0 || len >= sizeof(exe) || (slash = strrchr(exe, '\\')) == NULL)
    return;
  *slash = '\0';
  {
    char cand[2 * MAX_PATH];
    snprintf(cand, sizeof(cand), "%s\\%s", exe, path);
    if (GetFileAttributesA(cand) != INVALID_FILE_ATTRIBUTES)
      snprintf(out, cap, "%s", cand);
  }
}

/* A fresh directory under the temporary folder, named with 64 random bits. */
static void make_bus_dir(void) {
  char tmp[MAX_PATH];
  DWORD len = GetTempPathA(sizeof(tmp), tmp);
  unsigned tries;

  if (len == 0 || len >= sizeof(tmp))
    die_win("GetTempPath");
  for (tries = 0; tries < 8; tries++) {
    uint64_t r;
    int rv = shmbus__random64(&r);
    if (rv < 0)
      bp_die("random bits", rv);
    snprintf(bus_dir, sizeof(bus_dir), "%sshmbus-bench-%lu-%016llx", tmp,
             (unsigned long)GetCurrentProcessId(), (unsigned long long)r);
    if (CreateDirectoryA(bus_dir, NULL))
      return;
    if (GetLastError() != ERROR_ALREADY_EXISTS)
      die_win("CreateDirectory");
  }
  bp_die("CreateDirectory: every name taken", -EEXIST);
}

void bp_daemon_start(const char *path) {
  SECURITY_ATTRIBUTES inherit = {sizeof(inherit), NULL, TRUE};
  STARTUPINFOA si;
  HANDLE ready, log, nul, both[2];
  char exe[2 * MAX_PATH], evnum[32], *cmd, *p, *end;
  DWORD pid, w;

  make_bus_dir();
  snprintf(daemon_log, sizeof(daemon_log), "%s\\shmbusd.log", bus_dir);
  resolve_beside(path, exe, sizeof(exe));
  ready = CreateEventW(&inherit, TRUE, FALSE, NULL);
  log = CreateFileA(daemon_log, GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_DELETE, &inherit,
                    CREATE_ALWAYS, FILE_ATTRIBUTE_NORMAL, NULL);
  nul = CreateFileA("NUL", GENERIC_READ | GENERIC_WRITE, FILE_SHARE_READ | FILE_SHARE_WRITE,
                    &inherit, OPEN_EXISTING, 0, NULL);
  if (ready == NULL || log == INVALID_HANDLE_VALUE || nul == INVALID_HANDLE_VALUE)
    die_win("the daemon's ready event, log or NUL");
  if ((cmd = malloc(BP_CMDLINE_MAX)) == NULL)
    bp_die("malloc", -ENOMEM);
  p = cmd;
  end = cmd + BP_CMDLINE_MAX;
  *p = '\0';
  snprintf(evnum, sizeof(evnum), "%llu", (unsigned long long)(uintptr_t)ready);
  if (!cmd_put(&p, end, exe) || !cmd_put(&p, end, "--foreground") || !cmd_put(&p, end, "--dir") ||
      !cmd_put(&p, end, bus_dir) || !cmd_put(&p, end, "--ready-fd") || !cmd_put(&p, end, evnum))
    bp_die("the daemon's command line", -E2BIG);
  memset(&si, 0, sizeof(si));
  si.cb = sizeof(si);
  si.dwFlags = STARTF_USESTDHANDLES;
  si.hStdInput = nul;
  si.hStdOutput = nul;
  si.hStdError = log;
  daemon_process = start_process(strpbrk(exe, "\\/:") != NULL ? exe : NULL, cmd, &si, &pid);
  daemon_pid = (pid_t)pid;
  free(cmd);
  CloseHandle(log);
  CloseHandle(nul);
  both[0] = ready;
  both[1] = daemon_process;
  w = WaitForMultipleObjects(2, both, FALSE, 10000);
  CloseHandle(ready);
  if (w != WAIT_OBJECT_0) {
    fprintf(stderr, "%s: %s did not report ready (see %s)\n", prog_name, exe, daemon_log);
    bp_die("daemon start", w == WAIT_TIMEOUT ? -ETIMEDOUT : -EPIPE);
  }
}

pid_t bp_daemon_pid(void) {
  return daemon_pid;
}

const char *bp_bus_dir(void) {
  return bus_dir;
}

/* Asks the daemon to stop through the API (Windows has no SIGTERM; the
 * daemon's stop event would do too), waits up to 5 s, then ends it. */
void bp_daemon_stop(int *status) {
  struct shmbus_bus_opts bo;
  shmbus_bus *bus = NULL;
  HANDLE h = daemon_process;

  *status = 0;
  if (daemon_pid <= 0 || h == NULL)
    return;
  daemon_pid = -1;
  daemon_process = NULL;
  shmbus_bus_opts_init(&bo);
  bo.dir = bus_dir;
  bo.name = "bench-stop";
  bo.autostart = 0;
  bo.timeout_ms = 5000;
  if (shmbus_bus_open(&bus, &bo) == 0) {
    (void)shmbus_bus_daemon_stop(bus);
    shmbus_bus_close(bus);
  }
  if (WaitForSingleObject(h, 5000) != WAIT_OBJECT_0) {
    (void)TerminateProcess(h, 9);
    (void)WaitForSingleObject(h, INFINITE);
  }
  *status = status_of(h);
  CloseHandle(h);
}

void bp_dir_remove(void) {
  char pattern[MAX_PATH + 4], file[2 * MAX_PATH];
  WIN32_FIND_DATAA fd;
  HANDLE f;

  if (bus_dir[0] == '\0')
    return;
  snprintf(pattern, sizeof(pattern), "%s\\*", bus_dir);
  if ((f = FindFirstFileA(pattern, &fd)) != INVALID_HANDLE_VALUE) {
    do {
      if (strcmp(fd.cFileName, ".") != 0 && strcmp(fd.cFileName, "..") != 0) {
        snprintf(file, sizeof(file), "%s\\%s", bus_dir, fd.cFileName);
        (void)DeleteFileA(file);
      }
    } while (FindNextFileA(f, &fd));
    FindClose(f);
  }
  (void)RemoveDirectoryA(bus_dir);
}

shmbus_bus *bp_bus_open(const char *name) {
  struct shmbus_bus_opts bo;
  shmbus_bus *bus;
  int rv;
  shmbus_bus_opts_init(&bo);
  bo.dir = bus_dir;
  bo.name = name;
  bo.autostart = 0;
  if ((rv = shmbus_bus_open(&bus, &bo)) < 0)
    bp_die("shmbus_bus_open", rv);
  return bus;
}

/* The ready handshake of shmbus-bus-bench and the record bench is over
 * pipes between forked processes: not on Windows. */
void bp_await_ready(int fd, const char *who) {
  (void)fd;
  (void)who;
  bp_die("bp_await_ready", -ENOTSUP);
}

void bp_signal_ready(int fd) {
  (void)fd;
  bp_die("bp_signal_ready", -ENOTSUP);
}

/* ---- for tools_windows.c (platform/win_proc.h) ------------------------------ */

bool bp_win_cmd_put(char **p, char *end, const char *arg) {
  return cmd_put(p, end, arg);
}

HANDLE bp_win_start(const char *exe, char *cmd, STARTUPINFOA *si, DWORD *pid) {
  return start_process(exe, cmd, si, pid);
}

void bp_win_resolve_beside(const char *path, char *out, size_t cap) {
  resolve_beside(path, out, cap);
}

/* ---- gnuplot (--plot) ------------------------------------------------------ */

/* gnuplot.exe's full path, once bp_gnuplot_find found it. */
static char gnuplot_exe[MAX_PATH];

bool bp_gnuplot_find(const char **need) {
  const char *path = getenv("PATH");
  char dir[MAX_PATH], cand[MAX_PATH + 16];
  while (path != NULL && *path != '\0') {
    size_t len = strcspn(path, ";");
    DWORD attr;
    /* A directory may be written in double quotes (it may hold a ;). */
    if (len >= 2 && path[0] == '"' && path[len - 1] == '"')
      snprintf(dir, sizeof(dir), "%.*s", (int)len - 2, path + 1);
    else
      snprintf(dir, sizeof(dir), "%.*s", (int)len, path);
    path += len;
    if (*path == ';')
      path++;
    if (dir[0] == '\0' || strchr(dir, '"') != NULL)
      continue;
    snprintf(cand, sizeof(cand), "%s%sgnuplot.exe", dir,
             dir[strlen(dir) - 1] == '\\' || dir[strlen(dir) - 1] == '/' ? "" : "\\");
    attr = GetFileAttributesA(cand);
    if (attr != INVALID_FILE_ATTRIBUTES && !(attr & FILE_ATTRIBUTE_DIRECTORY) &&
        strlen(cand) < sizeof(gnuplot_exe)) {
      snprintf(gnuplot_exe, sizeof(gnuplot_exe), "%s", cand);
      return true;
    }
  }
  *need = "gnuplot.exe in %PATH% (gnuplot for Windows: http://www.gnuplot.info)";
  return false;
}

FILE *bp_gnuplot_open(void) {
  char cmd[MAX_PATH + 8];
  if (gnuplot_exe[0] == '\0') {
    errno = ENOENT;
    return NULL;
  }
  /* _popen runs `cmd.exe /c` with this: cmd drops the outer pair of
   * quotes and keeps the inner one around the path, which may hold
   * spaces or parentheses. Binary: the script's lines end in \n alone. */
  snprintf(cmd, sizeof(cmd), "\"\"%s\"\"", gnuplot_exe);
  fflush(NULL);
  return _popen(cmd, "wb");
}

int bp_gnuplot_close(FILE *g) {
  int st = _pclose(g);
  if (st == -1)
    return -errno;
  return st == 0 ? 0 : -EIO;
}
