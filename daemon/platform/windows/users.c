/* users: users and groups on Windows (host.h).
 *
 * Windows names users and groups by SID. The host.h calls speak numbers
 * (the Linux uid and gid); here that number is the SID's relative id, its
 * last part, which names one account of one machine or domain. Rules
 * naming accounts of two domains with the same relative id cannot be told
 * apart this way: the rules need to compare SIDs (docs/windows.md, what
 * is left). A peer's groups are the groups of its token (the pipe captures
 * it when the client connects), not a lookup by number: host_user_groups
 * is not ported yet. */
#include <errno.h>
#include <string.h>

#include <windows.h>

#include "host.h"
#include "platform/windows/win.h"

/* The relative id of account `name` when its kind is one of `a`, `b`, `c`. */
static int users_lookup(const char *name, uint32_t *id, SID_NAME_USE a, SID_NAME_USE b,
                        SID_NAME_USE c) {
  union {
    SID sid;
    char buf[SECURITY_MAX_SID_SIZE];
  } s;
  wchar_t w[256], domain[256];
  DWORD sid_len = sizeof(s), dom_len = sizeof(domain) / sizeof(domain[0]);
  SID_NAME_USE use;
  int rv;

  if ((rv = shmbus__win_to_utf16(name, w, sizeof(w) / sizeof(w[0]))) < 0)
    return rv == -ENAMETOOLONG ? -ENOENT : rv;
  if (!LookupAccountNameW(NULL, w, &s.sid, &sid_len, domain, &dom_len, &use))
    return GetLastError() == ERROR_NONE_MAPPED ? -ENOENT : shmbus__win_error(GetLastError());
  if ((use != a && use != b && use != c) || *GetSidSubAuthorityCount(&s.sid) == 0)
    return -ENOENT;
  *id = (uint32_t)*GetSidSubAuthority(&s.sid, *GetSidSubAuthorityCount(&s.sid) - 1u);
  return 0;
}

int host_user_id(const char *name, uint32_t *uid) {
  return users_lookup(name, uid, SidTypeUser, SidTypeUser, SidTypeUser);
}

int host_group_id(const char *name, uint32_t *gid) {
  return users_lookup(name, gid, SidTypeGroup, SidTypeAlias, SidTypeWellKnownGroup);
}

int host_user_groups(uint32_t uid, uint32_t gid, uint32_t **groups, size_t *ngroups) {
  (void)uid, (void)gid;
  *groups = NULL;
  *ngroups = 0;
  return -ENOSYS;
}
