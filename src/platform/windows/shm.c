/* Handles and shared memory on Windows: sections backed by the paging file.
 * See platform.h for the contract and win_impl.h for the objects.
 *
 * A region is a named section created with SEC_COMMIT, so the whole size
 * is charged against the commit limit at creation: running short fails
 * here (ERROR_NOT_ENOUGH_MEMORY / ERROR_COMMITMENT_LIMIT), never at a later
 * page fault, which is what posix_fallocate gives on Linux. A section never
 * changes size, so nothing needs sealing. The read-only handle is a
 * duplicate with FILE_MAP_READ | SECTION_QUERY access only: MapViewOfFile
 * refuses FILE_MAP_WRITE on it and VirtualProtect cannot make its view
 * writable (tests/windows/primitives_test.c checks both, under Wine too).
 * A process of the same user could still open the section by name with
 * write access: as on Linux, the unit of trust is the user (ptrace there,
 * OpenProcess here); the read-only view keeps honest subscribers from
 * corrupting slots by mistake. */
#include <errno.h>
#include <stdio.h>

#include "win.h"

#include "../platform.h"

/* NtQuerySection's SectionBasicInformation (class 0). */
struct win_section_basic {
  void *base;
  ULONG attributes;
  LARGE_INTEGER size;
};
typedef LONG(NTAPI *nt_query_section_fn)(HANDLE, int, void *, SIZE_T, SIZE_T *);
typedef BOOL(WINAPI *compare_handles_fn)(HANDLE, HANDLE);

void shmbus__fd_close(shmbus__os_handle h) {
  if (shmbus__handle_ok(h))
    CloseHandle(h);
}

int shmbus__fd_dup(shmbus__os_handle h, shmbus__os_handle *out) {
  HANDLE self = GetCurrentProcess(), dup;
  if (!DuplicateHandle(self, h, self, &dup, 0, FALSE, DUPLICATE_SAME_ACCESS))
    return shmbus__win_error(GetLastError());
  *out = dup;
  return 0;
}

int shmbus__fd_same_file(shmbus__os_handle a, shmbus__os_handle b) {
  /* CompareObjectHandles is Windows 10's; looked up so that the backend
   * still loads where it is missing. */
  static compare_handles_fn compare;
  DWORD flags;

  if (!GetHandleInformation(a, &flags) || !GetHandleInformation(b, &flags))
    return -EBADF;
  if (compare == NULL)
    compare = (compare_handles_fn)(void (*)(void))shmbus__win_kernelbase("CompareObjectHandles");
  if (compare == NULL)
    return -ENOSYS;
  return compare(a, b) ? 1 : 0;
}

int shmbus__shm_create(const char *debug_name, uint64_t size, shmbus__shm_handle *shm) {
  SECURITY_ATTRIBUTES sa;
  wchar_t name[128];
  HANDLE h = NULL;
  int rv, tries;

  /* debug_name has no meaning beyond tools; the object's name is ours. */
  (void)debug_name;
  if (size == 0 || size > (uint64_t)INT64_MAX || size > (uint64_t)SIZE_MAX)
    return -EINVAL;
  if ((rv = shmbus__win_owner_only(&sa)) < 0)
    return rv;
  /* A name that already exists was not made by us (ours are fresh): the
   * object is someone else's, and using it would hand them our memory.
   * With 128 random bits that takes a broken generator; try a new name. */
  for (tries = 0; tries < 3; tries++) {
    if ((rv = shmbus__win_object_name("shm", name, sizeof(name) / sizeof(name[0]))) < 0)
      break;
    h = CreateFileMappingW(INVALID_HANDLE_VALUE, &sa, PAGE_READWRITE | SEC_COMMIT,
                           (DWORD)(size >> 32), (DWORD)size, name);
    if (h == NULL) {
      rv = shmbus__win_error(GetLastError());
      break;
    }
    if (GetLastError() != ERROR_ALREADY_EXISTS)
      break;
    CloseHandle(h);
    h = NULL;
    rv = -EEXIST;
  }
  LocalFree(sa.lpSecurityDescriptor);
  if (h == NULL)
    return rv < 0 ? rv : -EIO;
  *shm = h;
  return 0;
}

int shmbus__shm_check(shmbus__shm_handle shm, uint64_t max_size, uint64_t *size) {
  static nt_query_section_fn query;
  struct win_section_basic info;
  SIZE_T got = 0;
  LONG st;
  DWORD flags;

  if (!GetHandleInformation(shm, &flags))
    return -EBADF;
  if (query == NULL)
    query = (nt_query_section_fn)(void (*)(void))shmbus__win_ntdll("NtQuerySection");
  /* Every Windows NT has it, and Wine; a system without it cannot tell
   * what the handle is (the contract's "cannot tell", said as -ENOSYS:
   * the call is missing). */
  if (query == NULL)
    return -ENOSYS;
  /* Fails with STATUS_OBJECT_TYPE_MISMATCH for anything but a section. */
  st = query(shm, 0, &info, sizeof(info), &got);
  /* A handle that does not allow SECTION_QUERY cannot be shown to be ours
   * either: -EINVAL like any other object. */
  if (st < 0)
    return shmbus__win_status(st) == -EBADF ? -EBADF : -EINVAL;
  /* Backed by the paging file and committed: not a file's mapping (SEC_FILE,
   * SEC_IMAGE), not reserved-only memory that could fault later. */
  if ((info.attributes & SEC_COMMIT) == 0 ||
      (info.attributes & (SEC_FILE | SEC_IMAGE | SEC_RESERVE)) != 0)
    return -EINVAL;
  if (info.size.QuadPart <= 0 || (uint64_t)info.size.QuadPart > max_size)
    return -EINVAL;
  *size = (uint64_t)info.size.QuadPart;
  return 0;
}

int shmbus__shm_reopen_readonly(shmbus__shm_handle shm, shmbus__shm_handle *ro) {
  HANDLE self = GetCurrentProcess(), dup;
  /* Access can only shrink through DuplicateHandle here: the duplicate
   * may read, map read-only and be queried (shmbus__shm_check). */
  if (!DuplicateHandle(self, shm, self, &dup, FILE_MAP_READ | SECTION_QUERY, FALSE, 0))
    return shmbus__win_error(GetLastError());
  *ro = dup;
  return 0;
}

int shmbus__shm_map(shmbus__shm_handle shm, uint64_t size, bool writable, void **addr) {
  void *p;
  if (size == 0 || size > (uint64_t)SIZE_MAX)
    return -EINVAL;
  p = MapViewOfFile(shm, writable ? FILE_MAP_WRITE : FILE_MAP_READ, 0, 0, (SIZE_T)size);
  if (p == NULL) {
    DWORD err = GetLastError();
    return err == ERROR_ACCESS_DENIED ? -EACCES : shmbus__win_error(err);
  }
  *addr = p;
  return 0;
}

void shmbus__shm_unmap(void *addr, uint64_t size) {
  (void)size; /* a view is unmapped whole */
  if (addr != NULL)
    UnmapViewOfFile(addr);
}

uint64_t shmbus__page_size(void) {
  SYSTEM_INFO si;
  GetSystemInfo(&si);
  return si.dwPageSize;
}
