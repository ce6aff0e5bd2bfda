/* primitives_test: the Win32 primitives the Windows backend is built on,
 * checked between real processes, under Wine or on Windows. It answers,
 * before any shmbus code depends on it: does a named, paging-file-backed
 * mapping in Local\ reach a second process; can a read-only view write;
 * is the commit charge taken at creation; does a named auto-reset event
 * wake another process, and coalesce; are security descriptors enforced;
 * is a squatted name detected; does a message-mode pipe keep message
 * boundaries and tell who the client is; does RegisterWaitForSingleObject
 * plus uv_async_send wake a libuv loop exactly once per wake-up.
 *
 * What Wine does not enforce is reported as SKIP under Wine and FAIL on
 * Windows (wintest.h); docs/windows.md keeps the list. */
#include <uv.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>
#include <aclapi.h>
#include <bcrypt.h>
#include <sddl.h>

#include "wintest.h"

#define MAP_SIZE (1u << 20)
#define WAKE_ROUNDS 200

/* ---- helpers ------------------------------------------------------------ */

/* The current user's SID as a string ("S-1-5-21-..."), LocalFree'd by the
 * caller, or NULL. */
static char *user_sid_string(void) {
  HANDLE tok;
  union {
    TOKEN_USER user;
    char buf[256];
  } u;
  DWORD len;
  char *s = NULL;

  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
    return NULL;
  if (GetTokenInformation(tok, TokenUser, &u, sizeof(u), &len))
    ConvertSidToStringSidA(u.user.User.Sid, &s);
  CloseHandle(tok);
  return s;
}

/* Security attributes from an SDDL string such as "D:P(A;;GA;;;<sid>)":
 * a protected DACL (nothing inherited) with exactly the ACEs given. The
 * descriptor is LocalFree'd by the caller (sa->lpSecurityDescriptor). */
static bool sddl_attrs(const char *sddl, SECURITY_ATTRIBUTES *sa) {
  PSECURITY_DESCRIPTOR sd = NULL;
  if (!ConvertStringSecurityDescriptorToSecurityDescriptorA(sddl, SDDL_REVISION_1, &sd, NULL))
    return false;
  sa->nLength = sizeof(*sa);
  sa->lpSecurityDescriptor = sd;
  sa->bInheritHandle = FALSE;
  return true;
}

/* Security attributes granting everything to the current user and nothing
 * to anyone else. */
static bool owner_only_attrs(SECURITY_ATTRIBUTES *sa) {
  char sddl[256], *sid = user_sid_string();
  bool ok;
  if (sid == NULL)
    return false;
  snprintf(sddl, sizeof(sddl), "D:P(A;;GA;;;%s)", sid);
  LocalFree(sid);
  ok = sddl_attrs(sddl, sa);
  return ok;
}

static uint8_t pattern(size_t i) {
  return (uint8_t)(i * 7 + 3);
}

/* ---- children ----------------------------------------------------------- */

/* Exit codes of children: 0 success, 10 + n a failed step n. */

/* child read-map NAME SIZE: opens the mapping by name for reading only and
 * checks every byte of the pattern. */
static int child_read_map(const char *name, size_t size) {
  HANDLE h = OpenFileMappingA(FILE_MAP_READ, FALSE, name);
  const uint8_t *p;
  size_t i;
  if (h == NULL)
    return 10;
  p = MapViewOfFile(h, FILE_MAP_READ, 0, 0, size);
  if (p == NULL)
    return 11;
  for (i = 0; i < size; i++)
    if (p[i] != pattern(i))
      return 12;
  UnmapViewOfFile(p);
  CloseHandle(h);
  return 0;
}

/* child write-ro NAME: maps the mapping read-only and writes to it. On
 * Windows the write faults and the process ends with
 * STATUS_ACCESS_VIOLATION; exiting 0 means the write went through. */
static int child_write_ro(const char *name) {
  HANDLE h = OpenFileMappingA(FILE_MAP_READ, FALSE, name);
  volatile uint8_t *p;
  if (h == NULL)
    return 10;
  p = MapViewOfFile(h, FILE_MAP_READ, 0, 0, 0);
  if (p == NULL)
    return 11;
  p[0] = 0xEE;
  return 0;
}

/* child signal-event NAME COUNT [ACK]: opens the event with the right to set
 * it only and sets it COUNT times; with ACK (an event name) it waits for
 * ACK after each, so that each signal is seen on its own. */
static int child_signal_event(const char *name, long count, const char *ack_name) {
  HANDLE ev = OpenEventA(EVENT_MODIFY_STATE, FALSE, name), ack = NULL;
  long i;
  if (ev == NULL)
    return 10;
  if (ack_name != NULL && (ack = OpenEventA(SYNCHRONIZE, FALSE, ack_name)) == NULL)
    return 11;
  for (i = 0; i < count; i++) {
    if (!SetEvent(ev))
      return 12;
    /* 60 s bounds a broken test; it is not a synchronisation. */
    if (ack != NULL && WaitForSingleObject(ack, 60000) != WAIT_OBJECT_0)
      return 13;
  }
  return 0;
}

/* child pipe-client NAME: connects to a message-mode pipe, sends "hello"
 * and a 300-byte message, and expects "bye" back as one message. */
static int child_pipe_client(const char *name) {
  HANDLE p = CreateFileA(name, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING, 0, NULL);
  DWORD mode = PIPE_READMODE_MESSAGE, n;
  char big[300], reply[16];
  size_t i;
  if (p == INVALID_HANDLE_VALUE)
    return 10;
  if (!SetNamedPipeHandleState(p, &mode, NULL, NULL))
    return 11;
  if (!WriteFile(p, "hello", 5, &n, NULL) || n != 5)
    return 12;
  for (i = 0; i < sizeof(big); i++)
    big[i] = (char)pattern(i);
  if (!WriteFile(p, big, sizeof(big), &n, NULL) || n != sizeof(big))
    return 13;
  if (!ReadFile(p, reply, sizeof(reply), &n, NULL) || n != 3 || memcmp(reply, "bye", 3) != 0)
    return 14;
  CloseHandle(p);
  return 0;
}

/* The boundary descriptor of the private namespace test: named "shmbus"
 * and holding the current user's SID, so only that user's processes can
 * open the namespace. NULL on failure; DeleteBoundaryDescriptor frees it. */
static HANDLE user_boundary(void) {
  union {
    TOKEN_USER user;
    char buf[256];
  } u;
  HANDLE tok, bd = NULL;
  DWORD len;

  if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok))
    return NULL;
  if (GetTokenInformation(tok, TokenUser, &u, sizeof(u), &len) &&
      (bd = CreateBoundaryDescriptorW(L"shmbus", 0)) != NULL &&
      !AddSIDToBoundaryDescriptor(&bd, u.user.User.Sid)) {
    DeleteBoundaryDescriptor(bd);
    bd = NULL;
  }
  CloseHandle(tok);
  return bd;
}

/* child private-ns ALIAS: opens the private namespace ALIAS (boundary
 * "shmbus" + our user) and sets the event "ALIAS\\ev" in it. */
static int child_private_ns(const char *alias) {
  HANDLE bd = user_boundary(), ns, ev;
  char name[192];
  if (bd == NULL)
    return 10;
  if ((ns = OpenPrivateNamespaceA(bd, alias)) == NULL)
    return 11;
  snprintf(name, sizeof(name), "%s\\ev", alias);
  if ((ev = OpenEventA(EVENT_MODIFY_STATE, FALSE, name)) == NULL)
    return 12;
  if (!SetEvent(ev))
    return 13;
  CloseHandle(ev);
  ClosePrivateNamespace(ns, 0);
  DeleteBoundaryDescriptor(bd);
  return 0;
}

/* child boundary-probe: 0 when a boundary descriptor can be made, 1 when
 * the call fails; a Wine stub that aborts ends the process otherwise. */
static int child_boundary_probe(void) {
  HANDLE bd = user_boundary();
  if (bd == NULL)
    return 1;
  DeleteBoundaryDescriptor(bd);
  return 0;
}

static int child_main(int argc, char **argv) {
  if (argc >= 1 && strcmp(argv[0], "boundary-probe") == 0)
    return child_boundary_probe();
  if (argc >= 2 && strcmp(argv[0], "private-ns") == 0)
    return child_private_ns(argv[1]);
  if (argc >= 3 && strcmp(argv[0], "read-map") == 0)
    return child_read_map(argv[1], (size_t)strtoul(argv[2], NULL, 10));
  if (argc >= 2 && strcmp(argv[0], "write-ro") == 0)
    return child_write_ro(argv[1]);
  if (argc >= 3 && strcmp(argv[0], "signal-event") == 0)
    return child_signal_event(argv[1], strtol(argv[2], NULL, 10), argc >= 4 ? argv[3] : NULL);
  if (argc >= 2 && strcmp(argv[0], "pipe-client") == 0)
    return child_pipe_client(argv[1]);
  fprintf(stderr, "primitives_test: unknown child command\n");
  return 2;
}

/* ---- tests -------------------------------------------------------------- */

/* BCryptGenRandom (the backend's randomness) gives distinct draws. */
static int test_random(void) {
  uint64_t a = 0, b = 0;
  WT_CHECK(BCryptGenRandom(NULL, (PUCHAR)&a, sizeof(a), BCRYPT_USE_SYSTEM_PREFERRED_RNG) == 0,
           "BCryptGenRandom");
  WT_CHECK(BCryptGenRandom(NULL, (PUCHAR)&b, sizeof(b), BCRYPT_USE_SYSTEM_PREFERRED_RNG) == 0,
           "BCryptGenRandom");
  WT_CHECK(a != b, "two draws are equal");
  return WINTEST_PASS;
}

/* A mapping created in Local\ on the paging file (SEC_COMMIT) with an
 * owner-only descriptor is opened by name in another process, read-only,
 * which sees every byte written before. */
static int test_mapping_cross_process(void) {
  SECURITY_ATTRIBUTES sa;
  char name[128], args[192];
  HANDLE h;
  uint8_t *p;
  size_t i;
  long rc;

  wintest_unique_name(name, sizeof(name), "Local\\");
  WT_CHECK(owner_only_attrs(&sa), "security descriptor");
  h = CreateFileMappingA(INVALID_HANDLE_VALUE, &sa, PAGE_READWRITE | SEC_COMMIT, 0, MAP_SIZE, name);
  LocalFree(sa.lpSecurityDescriptor);
  WT_CHECK(h != NULL, "CreateFileMapping %s", name);
  WT_CHECK(GetLastError() != ERROR_ALREADY_EXISTS, "a fresh name already existed");
  p = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, MAP_SIZE);
  WT_CHECK(p != NULL, "MapViewOfFile");
  for (i = 0; i < MAP_SIZE; i++)
    p[i] = pattern(i);
  snprintf(args, sizeof(args), "read-map %s %u", name, MAP_SIZE);
  rc = wintest_join(wintest_spawn(args, NULL));
  WT_CHECK(rc == 0, "the reader exited %ld", rc);
  UnmapViewOfFile(p);
  CloseHandle(h);
  /* The last handle is gone: so is the name. */
  WT_CHECK(OpenFileMappingA(FILE_MAP_READ, FALSE, name) == NULL,
           "the mapping outlived its handles");
  WT_CHECK(GetLastError() == ERROR_FILE_NOT_FOUND, "unexpected error");
  return WINTEST_PASS;
}

/* A handle opened with FILE_MAP_READ cannot give a writable view, and a
 * read-only view cannot be made writable with VirtualProtect. */
static int test_mapping_readonly_handle(void) {
  char name[128];
  HANDLE h, ro;
  void *v;
  DWORD old;

  wintest_unique_name(name, sizeof(name), "Local\\");
  h = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE | SEC_COMMIT, 0, 65536, name);
  WT_CHECK(h != NULL, "CreateFileMapping");
  ro = OpenFileMappingA(FILE_MAP_READ, FALSE, name);
  WT_CHECK(ro != NULL, "OpenFileMapping read");
  WT_CHECK(MapViewOfFile(ro, FILE_MAP_WRITE, 0, 0, 0) == NULL, "a read handle mapped writable");
  WT_CHECK(GetLastError() == ERROR_ACCESS_DENIED, "unexpected error");
  v = MapViewOfFile(ro, FILE_MAP_READ, 0, 0, 0);
  WT_CHECK(v != NULL, "MapViewOfFile read");
  WT_CHECK(!VirtualProtect(v, 4096, PAGE_READWRITE, &old), "a read-only view was made writable");
  UnmapViewOfFile(v);
  CloseHandle(ro);
  CloseHandle(h);
  return WINTEST_PASS;
}

/* A process that writes to its read-only view dies of an access
 * violation, and the memory is unchanged. */
static int test_mapping_readonly_view_faults(void) {
  char name[128], args[192];
  HANDLE h;
  volatile uint8_t *p;
  long rc;

  wintest_unique_name(name, sizeof(name), "Local\\");
  h = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE | SEC_COMMIT, 0, 65536, name);
  WT_CHECK(h != NULL, "CreateFileMapping");
  p = MapViewOfFile(h, FILE_MAP_WRITE, 0, 0, 0);
  WT_CHECK(p != NULL, "MapViewOfFile");
  p[0] = 0x11;
  snprintf(args, sizeof(args), "write-ro %s", name);
  rc = wintest_join(wintest_spawn(args, NULL));
  wintest_note("a write to a read-only view: child exit 0x%lx, byte now 0x%02x", (unsigned long)rc,
               p[0]);
  WT_CHECK(rc != -1 && (rc == 0 || (unsigned long)rc == STATUS_ACCESS_VIOLATION),
           "the writer exited 0x%lx", (unsigned long)rc);
  if (rc == 0)
    return WINTEST_WINE_ONLY_SKIP;
  WT_CHECK(p[0] == 0x11, "the memory changed");
  UnmapViewOfFile((void *)p);
  CloseHandle(h);
  return WINTEST_PASS;
}

/* SEC_COMMIT charges the whole size at creation: a mapping larger than
 * the commit limit fails then, never later at a page fault. */
static int test_mapping_commit_at_creation(void) {
  MEMORYSTATUSEX ms = {.dwLength = sizeof(ms)};
  uint64_t size;
  HANDLE h;
  DWORD err;

  WT_CHECK(GlobalMemoryStatusEx(&ms), "GlobalMemoryStatusEx");
  /* Twice the commit limit, rounded up to 1 GiB. */
  size = ((ms.ullTotalPageFile * 2) | ((1ull << 30) - 1)) + 1;
  h = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE | SEC_COMMIT,
                         (DWORD)(size >> 32), (DWORD)size, NULL);
  err = GetLastError();
  wintest_note("a %llu GiB SEC_COMMIT mapping (commit limit %llu MiB): %s (error %lu)",
               (unsigned long long)(size >> 30), (unsigned long long)(ms.ullTotalPageFile >> 20),
               h != NULL ? "created" : "refused", (unsigned long)err);
  if (h != NULL) {
    CloseHandle(h);
    return WINTEST_WINE_ONLY_SKIP;
  }
  WT_CHECK(err == ERROR_NOT_ENOUGH_MEMORY || err == ERROR_COMMITMENT_LIMIT ||
               err == ERROR_DISK_FULL || err == ERROR_INVALID_PARAMETER,
           "unexpected error");
  return WINTEST_PASS;
}

/* Without SeCreateGlobalPrivilege, a name in Global\ cannot be created
 * (Windows refuses it with ERROR_ACCESS_DENIED); with it, it can. */
static int test_global_needs_privilege(void) {
  char name[128];
  LUID luid;
  PRIVILEGE_SET ps;
  BOOL held = FALSE;
  HANDLE tok, h;
  DWORD err;

  WT_CHECK(LookupPrivilegeValueA(NULL, SE_CREATE_GLOBAL_NAME, &luid), "LookupPrivilegeValue");
  WT_CHECK(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &tok), "OpenProcessToken");
  ps.PrivilegeCount = 1;
  ps.Control = PRIVILEGE_SET_ALL_NECESSARY;
  ps.Privilege[0].Luid = luid;
  ps.Privilege[0].Attributes = SE_PRIVILEGE_ENABLED;
  WT_CHECK(PrivilegeCheck(tok, &ps, &held), "PrivilegeCheck");
  CloseHandle(tok);
  wintest_unique_name(name, sizeof(name), "Global\\");
  h = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE | SEC_COMMIT, 0, 65536, name);
  err = GetLastError();
  wintest_note("SeCreateGlobalPrivilege %s; a mapping in Global\\: %s (error %lu)",
               held ? "held" : "not held", h != NULL ? "created" : "refused", (unsigned long)err);
  if (h != NULL)
    CloseHandle(h);
  if (held) {
    WT_CHECK(h != NULL, "refused with the privilege");
    return WINTEST_PASS;
  }
  if (h != NULL)
    return WINTEST_WINE_ONLY_SKIP;
  WT_CHECK(err == ERROR_ACCESS_DENIED, "unexpected error");
  return WINTEST_PASS;
}

/* A named auto-reset event wakes a sleeper in another process; signals
 * that come while nobody waits coalesce into one wake-up. */
static int test_event_cross_process(void) {
  SECURITY_ATTRIBUTES sa;
  char name[128], args[192];
  HANDLE ev, child;
  DWORD w;

  wintest_unique_name(name, sizeof(name), "Local\\");
  WT_CHECK(owner_only_attrs(&sa), "security descriptor");
  ev = CreateEventA(&sa, FALSE, FALSE, name);
  LocalFree(sa.lpSecurityDescriptor);
  WT_CHECK(ev != NULL, "CreateEvent");
  /* A sleeper woken by another process: the signal may come before the
   * wait starts (the event keeps it) or during it. */
  snprintf(args, sizeof(args), "signal-event %s 1", name);
  child = wintest_spawn(args, NULL);
  WT_CHECK(child != NULL, "spawn");
  w = WaitForSingleObject(ev, 60000);
  WT_CHECK(wintest_join(child) == 0, "the signalling child failed");
  WT_CHECK(w == WAIT_OBJECT_0, "not woken (%lu)", (unsigned long)w);
  WT_CHECK(WaitForSingleObject(ev, 0) == WAIT_TIMEOUT, "the event did not reset itself");
  /* Three signals, then one wait: one wake-up, then unsignalled. */
  snprintf(args, sizeof(args), "signal-event %s 3", name);
  WT_CHECK(wintest_join(wintest_spawn(args, NULL)) == 0, "the signalling child failed");
  WT_CHECK(WaitForSingleObject(ev, 0) == WAIT_OBJECT_0, "signals lost");
  WT_CHECK(WaitForSingleObject(ev, 0) == WAIT_TIMEOUT, "signals did not coalesce");
  CloseHandle(ev);
  return WINTEST_PASS;
}

/* An object made with an owner-only descriptor reads back with exactly
 * one ACE, granting our SID. */
static int test_sd_owner_only_reads_back(void) {
  SECURITY_ATTRIBUTES sa;
  PSECURITY_DESCRIPTOR sd = NULL;
  PACL dacl = NULL;
  ACL_SIZE_INFORMATION info;
  ACCESS_ALLOWED_ACE *ace;
  char *sid = user_sid_string(), *got = NULL;
  HANDLE ev;
  bool same;

  WT_CHECK(sid != NULL, "user SID");
  WT_CHECK(owner_only_attrs(&sa), "security descriptor");
  ev = CreateEventA(&sa, FALSE, FALSE, NULL);
  LocalFree(sa.lpSecurityDescriptor);
  WT_CHECK(ev != NULL, "CreateEvent");
  WT_CHECK(GetSecurityInfo(ev, SE_KERNEL_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, &dacl, NULL,
                           &sd) == ERROR_SUCCESS,
           "GetSecurityInfo");
  WT_CHECK(dacl != NULL, "no DACL");
  WT_CHECK(GetAclInformation(dacl, &info, sizeof(info), AclSizeInformation), "GetAclInformation");
  WT_CHECK(info.AceCount == 1, "%lu ACEs", (unsigned long)info.AceCount);
  WT_CHECK(GetAce(dacl, 0, (void **)&ace), "GetAce");
  WT_CHECK(ace->Header.AceType == ACCESS_ALLOWED_ACE_TYPE, "ACE type %u", ace->Header.AceType);
  WT_CHECK(ConvertSidToStringSidA((PSID)&ace->SidStart, &got), "ConvertSidToStringSid");
  same = strcmp(got, sid) == 0;
  wintest_note("owner-only DACL reads back as one ACE for %s", got);
  LocalFree(got);
  LocalFree(sid);
  LocalFree(sd);
  CloseHandle(ev);
  WT_CHECK(same, "the ACE names another SID");
  return WINTEST_PASS;
}

/* A descriptor that grants only SYSTEM keeps us from opening the object
 * to signal it. */
static int test_sd_enforced(void) {
  SECURITY_ATTRIBUTES sa;
  char name[128];
  HANDLE ev, ev2;
  DWORD err;

  wintest_unique_name(name, sizeof(name), "Local\\");
  WT_CHECK(sddl_attrs("D:P(A;;GA;;;SY)", &sa), "security descriptor");
  ev = CreateEventA(&sa, FALSE, FALSE, name);
  LocalFree(sa.lpSecurityDescriptor);
  WT_CHECK(ev != NULL, "CreateEvent");
  ev2 = OpenEventA(EVENT_MODIFY_STATE, FALSE, name);
  err = GetLastError();
  wintest_note("opening an event whose DACL grants only SYSTEM: %s (error %lu)",
               ev2 != NULL ? "allowed" : "refused", (unsigned long)err);
  CloseHandle(ev);
  if (ev2 != NULL) {
    CloseHandle(ev2);
    return WINTEST_WINE_ONLY_SKIP;
  }
  WT_CHECK(err == ERROR_ACCESS_DENIED, "unexpected error");
  return WINTEST_PASS;
}

/* A name that someone else took first is detected: CreateEvent and
 * CreateFileMapping say ERROR_ALREADY_EXISTS (and hand back the squatter's
 * object, which the backend must refuse), and a name taken by an object of
 * another type fails outright. */
static int test_squatting_detected(void) {
  char name[128];
  HANDLE a, b, m;

  wintest_unique_name(name, sizeof(name), "Local\\");
  a = CreateEventA(NULL, FALSE, FALSE, name);
  WT_CHECK(a != NULL && GetLastError() != ERROR_ALREADY_EXISTS, "CreateEvent");
  b = CreateEventA(NULL, FALSE, FALSE, name);
  WT_CHECK(b != NULL && GetLastError() == ERROR_ALREADY_EXISTS, "the second create was not told");
  m = CreateFileMappingA(INVALID_HANDLE_VALUE, NULL, PAGE_READWRITE | SEC_COMMIT, 0, 65536, name);
  WT_CHECK(m == NULL && GetLastError() == ERROR_INVALID_HANDLE, "a mapping took an event's name");
  CloseHandle(b);
  CloseHandle(a);
  return WINTEST_PASS;
}

/* A message-mode pipe keeps message boundaries (a short read says
 * ERROR_MORE_DATA and the rest follows), and the server learns the
 * client's process id and user. */
static int test_pipe_message_mode(void) {
  char name[160], args[224], buf[256], *sid = user_sid_string(), *got = NULL;
  OVERLAPPED ov = {0};
  HANDLE pipe, child, both[2], tok;
  DWORD pid = 0, client_pid = 0, n, w;
  union {
    TOKEN_USER user;
    char b[256];
  } u;
  size_t i;
  bool same_user;

  WT_CHECK(sid != NULL, "user SID");
  wintest_unique_name(name, sizeof(name), "\\\\.\\pipe\\");
  pipe = CreateNamedPipeA(
      name, PIPE_ACCESS_DUPLEX | FILE_FLAG_FIRST_PIPE_INSTANCE | FILE_FLAG_OVERLAPPED,
      PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS, 1, 4096,
      4096, 0, NULL);
  WT_CHECK(pipe != INVALID_HANDLE_VALUE, "CreateNamedPipe");
  ov.hEvent = CreateEventA(NULL, TRUE, FALSE, NULL);
  WT_CHECK(ov.hEvent != NULL, "CreateEvent");
  snprintf(args, sizeof(args), "pipe-client %s", name);
  child = wintest_spawn(args, &pid);
  WT_CHECK(child != NULL, "spawn");
  /* Overlapped, so that a client that dies before connecting ends the
   * wait instead of hanging it. */
  if (!ConnectNamedPipe(pipe, &ov)) {
    DWORD err = GetLastError();
    WT_CHECK(err == ERROR_IO_PENDING || err == ERROR_PIPE_CONNECTED, "ConnectNamedPipe");
    if (err == ERROR_IO_PENDING) {
      both[0] = ov.hEvent;
      both[1] = child;
      w = WaitForMultipleObjects(2, both, FALSE, 60000);
      WT_CHECK(w == WAIT_OBJECT_0, "the client never connected (%lu)", (unsigned long)w);
      WT_CHECK(GetOverlappedResult(pipe, &ov, &n, FALSE), "ConnectNamedPipe result");
    }
  }
  WT_CHECK(GetNamedPipeClientProcessId(pipe, &client_pid), "GetNamedPipeClientProcessId");
  WT_CHECK(client_pid == pid, "client pid %lu, spawned %lu", (unsigned long)client_pid,
           (unsigned long)pid);
  /* Reads: the first message alone, then the second in two parts. */
  ResetEvent(ov.hEvent);
  if (!ReadFile(pipe, buf, sizeof(buf), NULL, &ov))
    WT_CHECK(GetLastError() == ERROR_IO_PENDING, "ReadFile");
  WT_CHECK(GetOverlappedResult(pipe, &ov, &n, TRUE), "read 1");
  WT_CHECK(n == 5 && memcmp(buf, "hello", 5) == 0, "first message %lu bytes", (unsigned long)n);
  ResetEvent(ov.hEvent);
  if (!ReadFile(pipe, buf, 100, NULL, &ov))
    WT_CHECK(GetLastError() == ERROR_IO_PENDING || GetLastError() == ERROR_MORE_DATA, "ReadFile");
  WT_CHECK(!GetOverlappedResult(pipe, &ov, &n, TRUE) && GetLastError() == ERROR_MORE_DATA,
           "a short read of a long message did not say ERROR_MORE_DATA");
  WT_CHECK(n == 100, "short read %lu bytes", (unsigned long)n);
  for (i = 0; i < 100; i++)
    WT_CHECK((uint8_t)buf[i] == pattern(i), "byte %zu", i);
  ResetEvent(ov.hEvent);
  if (!ReadFile(pipe, buf, sizeof(buf), NULL, &ov))
    WT_CHECK(GetLastError() == ERROR_IO_PENDING, "ReadFile");
  WT_CHECK(GetOverlappedResult(pipe, &ov, &n, TRUE), "read 3");
  WT_CHECK(n == 200, "rest %lu bytes", (unsigned long)n);
  for (i = 0; i < 200; i++)
    WT_CHECK((uint8_t)buf[i] == pattern(100 + i), "byte %zu", 100 + i);
  /* The peer's user, through impersonation. */
  WT_CHECK(ImpersonateNamedPipeClient(pipe), "ImpersonateNamedPipeClient");
  if (OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, TRUE, &tok)) {
    if (GetTokenInformation(tok, TokenUser, &u, sizeof(u), &n))
      ConvertSidToStringSidA(u.user.User.Sid, &got);
    CloseHandle(tok);
  }
  WT_CHECK(RevertToSelf(), "RevertToSelf");
  WT_CHECK(got != NULL, "the client's token");
  same_user = strcmp(got, sid) == 0;
  wintest_note("pipe client pid %lu, user %s", (unsigned long)client_pid, got);
  LocalFree(got);
  LocalFree(sid);
  WT_CHECK(same_user, "the client's user differs");
  ResetEvent(ov.hEvent);
  if (!WriteFile(pipe, "bye", 3, NULL, &ov))
    WT_CHECK(GetLastError() == ERROR_IO_PENDING, "WriteFile");
  WT_CHECK(GetOverlappedResult(pipe, &ov, &n, TRUE) && n == 3, "write");
  WT_CHECK(wintest_join(child) == 0, "the client failed");
  CloseHandle(ov.hEvent);
  CloseHandle(pipe);
  return WINTEST_PASS;
}

/* A private namespace (a boundary descriptor holding our user's SID, an
 * alias): names in it cannot be squatted by another user, whatever they
 * guess. Another process of ours opens it and sets an event made in it. */
static int test_private_namespace(void) {
  SECURITY_ATTRIBUTES sa;
  HANDLE bd, ns, ev;
  char alias[128], name[192], args[192];
  DWORD err;
  long rc;

  /* First in a child: where private namespaces are missing, the call may
   * end the process (Wine 8's kernel32 stub does). */
  rc = wintest_join(wintest_spawn("boundary-probe", NULL));
  if (rc != 0) {
    wintest_note("a boundary descriptor in a child: exit 0x%lx (private namespaces unavailable)",
                 (unsigned long)rc);
    if (wintest_under_wine())
      return WINTEST_WINE_ONLY_SKIP;
    WT_CHECK(rc == 0, "CreateBoundaryDescriptor");
  }
  wintest_unique_name(alias, sizeof(alias), "");
  bd = user_boundary();
  WT_CHECK(bd != NULL, "boundary descriptor");
  WT_CHECK(owner_only_attrs(&sa), "security descriptor");
  ns = CreatePrivateNamespaceA(&sa, bd, alias);
  err = GetLastError();
  LocalFree(sa.lpSecurityDescriptor);
  wintest_note("CreatePrivateNamespace: %s (error %lu)", ns != NULL ? "created" : "failed",
               (unsigned long)err);
  if (ns == NULL) {
    DeleteBoundaryDescriptor(bd);
    if (wintest_under_wine())
      return WINTEST_WINE_ONLY_SKIP;
    WT_CHECK(ns != NULL, "CreatePrivateNamespace");
  }
  snprintf(name, sizeof(name), "%s\\ev", alias);
  ev = CreateEventA(NULL, FALSE, FALSE, name);
  WT_CHECK(ev != NULL && GetLastError() != ERROR_ALREADY_EXISTS, "CreateEvent in the namespace");
  snprintf(args, sizeof(args), "private-ns %s", alias);
  rc = wintest_join(wintest_spawn(args, NULL));
  WT_CHECK(rc == 0, "the child exited %ld", rc);
  WT_CHECK(WaitForSingleObject(ev, 0) == WAIT_OBJECT_0, "the child's signal did not arrive");
  CloseHandle(ev);
  ClosePrivateNamespace(ns, PRIVATE_NAMESPACE_FLAG_DESTROY);
  DeleteBoundaryDescriptor(bd);
  return WINTEST_PASS;
}

/* ---- RegisterWaitForSingleObject + uv_async_send ---------------------- */

struct wake {
  uv_loop_t loop;
  uv_async_t async;
  uv_timer_t timeout;
  HANDLE ev, ack, wait;
  long woken;
  bool timed_out;
};

/* Runs on a thread-pool thread each time the named event is set: wakes
 * the loop. uv_async_send is the one libuv call that is safe from any
 * thread. */
static void CALLBACK wake_on_event(void *arg, BOOLEAN timer_fired) {
  struct wake *w = arg;
  (void)timer_fired;
  uv_async_send(&w->async);
}

static void wake_teardown(struct wake *w) {
  /* Unregister first, waiting for a callback in flight, so that no
   * uv_async_send can follow the close. */
  if (w->wait != NULL)
    UnregisterWaitEx(w->wait, INVALID_HANDLE_VALUE);
  w->wait = NULL;
  uv_close((uv_handle_t *)&w->async, NULL);
  uv_close((uv_handle_t *)&w->timeout, NULL);
}

/* On the loop: one wake-up per round, acknowledged so that the child sends
 * the next. */
static void wake_on_async(uv_async_t *a) {
  struct wake *w = a->data;
  w->woken++;
  if (w->woken == WAKE_ROUNDS)
    wake_teardown(w);
  SetEvent(w->ack);
}

static void wake_on_timeout(uv_timer_t *t) {
  struct wake *w = t->data;
  w->timed_out = true;
  wake_teardown(w);
}

/* A child sets the subscriber's named event WAKE_ROUNDS times, each after
 * the loop acknowledged the previous one: the loop, woken through a
 * registered wait and uv_async_send, counts exactly WAKE_ROUNDS wake-ups. */
static int test_registered_wait_wakes_uv_loop(void) {
  static struct wake w; /* the loop and its handles outlive the callbacks */
  char name[128], ack[128], args[320];
  HANDLE child;

  memset(&w, 0, sizeof(w));
  wintest_unique_name(name, sizeof(name), "Local\\");
  wintest_unique_name(ack, sizeof(ack), "Local\\ack-");
  w.ev = CreateEventA(NULL, FALSE, FALSE, name);
  w.ack = CreateEventA(NULL, FALSE, FALSE, ack);
  WT_CHECK(w.ev != NULL && w.ack != NULL, "CreateEvent");
  WT_CHECK(uv_loop_init(&w.loop) == 0, "uv_loop_init");
  WT_CHECK(uv_async_init(&w.loop, &w.async, wake_on_async) == 0, "uv_async_init");
  WT_CHECK(uv_timer_init(&w.loop, &w.timeout) == 0, "uv_timer_init");
  w.async.data = w.timeout.data = &w;
  /* A bound for a broken test, not a synchronisation. */
  WT_CHECK(uv_timer_start(&w.timeout, wake_on_timeout, 60000, 0) == 0, "uv_timer_start");
  WT_CHECK(
      RegisterWaitForSingleObject(&w.wait, w.ev, wake_on_event, &w, INFINITE, WT_EXECUTEDEFAULT),
      "RegisterWaitForSingleObject");
  snprintf(args, sizeof(args), "signal-event %s %d %s", name, WAKE_ROUNDS, ack);
  child = wintest_spawn(args, NULL);
  WT_CHECK(child != NULL, "spawn");
  WT_CHECK(uv_run(&w.loop, UV_RUN_DEFAULT) == 0, "uv_run");
  WT_CHECK(uv_loop_close(&w.loop) == 0, "uv_loop_close");
  WT_CHECK(wintest_join(child) == 0, "the signalling child failed");
  WT_CHECK(!w.timed_out, "timed out after %ld wake-ups", w.woken);
  WT_CHECK(w.woken == WAKE_ROUNDS, "%ld wake-ups", w.woken);
  CloseHandle(w.ev);
  CloseHandle(w.ack);
  return WINTEST_PASS;
}

static const struct wintest tests[] = {
    {"random", test_random},
    {"mapping_cross_process", test_mapping_cross_process},
    {"mapping_readonly_handle", test_mapping_readonly_handle},
    {"mapping_readonly_view_faults", test_mapping_readonly_view_faults},
    {"mapping_commit_at_creation", test_mapping_commit_at_creation},
    {"global_needs_privilege", test_global_needs_privilege},
    {"event_cross_process", test_event_cross_process},
    {"sd_owner_only_reads_back", test_sd_owner_only_reads_back},
    {"sd_enforced", test_sd_enforced},
    {"squatting_detected", test_squatting_detected},
    {"private_namespace", test_private_namespace},
    {"pipe_message_mode", test_pipe_message_mode},
    {"registered_wait_wakes_uv_loop", test_registered_wait_wakes_uv_loop},
};

int main(int argc, char **argv) {
  return wintest_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]), child_main);
}
