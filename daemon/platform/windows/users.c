/* users: users and groups on Windows (host.h).
 *
 * Windows names users and groups by SID. The config's rules keep SIDs
 * (struct host_principal) and compare them with the peer's user SID and
 * the groups of its token (captured with the connection: sockets.c), so
 * accounts of two domains with the same relative id are never confused.
 * The numeric calls (host_user_id, host_group_id) give the SID's relative
 * id, its last part, which the log and the per-user numbers use; a peer's
 * groups are never looked up by number: host_user_groups says -ENOSYS. */
#include <errno.h>
#include <string.h>

#include <windows.h>
#include <sddl.h>

#include "host.h"
#include "platform/windows/win.h"

/* A SID, with room for the largest one. */
union users_sid {
  SID sid;
  char buf[SECURITY_MAX_SID_SIZE];
};

/* `name` in UTF-16 (a name too long is no account's: -ENOENT). */
static int users_utf16(const char *name, wchar_t *w, size_t cap) {
  int rv = shmbus__win_to_utf16(name, w, cap);
  return rv == -ENAMETOOLONG ? -ENOENT : rv;
}

/* The SID of account `w` and its kind; -ENOENT when there is none. */
static int users_account(const wchar_t *w, union users_sid *s, SID_NAME_USE *use) {
  wchar_t domain[256];
  DWORD sid_len = sizeof(*s), dom_len = sizeof(domain) / sizeof(domain[0]);

  if (!LookupAccountNameW(NULL, w, &s->sid, &sid_len, domain, &dom_len, use))
    return GetLastError() == ERROR_NONE_MAPPED ? -ENOENT : shmbus__win_error(GetLastError());
  return 0;
}

/* The relative id of account `name` when its kind is one of `a`, `b`, `c`. */
static int users_lookup(const char *name, uint32_t *id, SID_NAME_USE a, SID_NAME_USE b,
                        SID_NAME_USE c) {
  union users_sid s;
  wchar_t w[256];
  SID_NAME_USE use;
  int rv;

  if ((rv = users_utf16(name, w, sizeof(w) / sizeof(w[0]))) < 0 ||
      (rv = users_account(w, &s, &use)) < 0)
    return rv;
  if ((use != a && use != b && use != c) || *GetSidSubAuthorityCount(&s.sid) == 0)
    return -ENOENT;
  *id = shmbus__win_sid_rid(&s.sid);
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

/* `name` as a SID: a SID string (S-1-...) or an account whose kind, for a
 * user (`group` false) or a group, fits. */
static int users_principal(const char *name, bool group, struct host_principal *p) {
  union users_sid s;
  wchar_t w[256];
  SID_NAME_USE use;
  PSID sid = NULL;
  DWORD len;
  int rv;

  memset(p, 0, sizeof(*p));
  if (name[0] == '\0')
    return -ENOENT;
  if ((rv = users_utf16(name, w, sizeof(w) / sizeof(w[0]))) < 0)
    return rv;
  if ((name[0] == 'S' || name[0] == 's') && name[1] == '-') {
    /* A SID string names whatever it names, known here or not (an account
     * of a domain this machine cannot reach now). */
    if (!ConvertStringSidToSidW(w, &sid))
      return -EINVAL;
    if (!IsValidSid(sid) || (len = GetLengthSid(sid)) > sizeof(p->sid)) {
      LocalFree(sid);
      return -EINVAL;
    }
    memcpy(p->sid, sid, len);
    p->len = (uint8_t)len;
    LocalFree(sid);
    return 0;
  }
  if ((rv = users_account(w, &s, &use)) < 0)
    return rv;
  /* Well-known accounts (SYSTEM, LOCAL SERVICE) are reported as
   * well-known groups: they may stand for a user too. */
  if (group ? use != SidTypeGroup && use != SidTypeAlias && use != SidTypeWellKnownGroup
            : use != SidTypeUser && use != SidTypeWellKnownGroup)
    return -EINVAL;
  if (!IsValidSid(&s.sid) || (len = GetLengthSid(&s.sid)) > sizeof(p->sid))
    return -EINVAL;
  memcpy(p->sid, &s.sid, len);
  p->len = (uint8_t)len;
  return 0;
}

int host_principal_user(const char *name, struct host_principal *p) {
  return users_principal(name, false, p);
}

int host_principal_group(const char *name, struct host_principal *p) {
  return users_principal(name, true, p);
}

int host_principal_uid(uint32_t uid, struct host_principal *p) {
  /* A number is a relative id, which two domains share. */
  (void)uid;
  memset(p, 0, sizeof(*p));
  return -ENOTSUP;
}

int host_principal_gid(uint32_t gid, struct host_principal *p) {
  (void)gid;
  memset(p, 0, sizeof(*p));
  return -ENOTSUP;
}

bool host_principal_is_user(const struct host_principal *u, uint32_t uid,
                            const struct host_peer *peer) {
  (void)uid;
  return peer != NULL && u->len != 0 && peer->sid_len == u->len &&
         memcmp(peer->sid, u->sid, u->len) == 0;
}

bool host_principal_has_member(const struct host_principal *g, uint32_t gid, const uint32_t *groups,
                               size_t ngroups, const struct host_peer *peer) {
  uint32_t off = 0, len;

  (void)gid, (void)groups, (void)ngroups;
  if (peer == NULL || g->len == 0 || peer->groups == NULL)
    return false;
  /* The SIDs were checked when they were captured (sockets.c): each is
   * 8 bytes and 4 per sub-authority, whose count is its second byte. */
  while (off + 8 <= peer->groups_len) {
    len = 8u + 4u * peer->groups[off + 1];
    if (off + len > peer->groups_len)
      break;
    if (len == g->len && memcmp(peer->groups + off, g->sid, len) == 0)
      return true;
    off += len;
  }
  return false;
}
