/* users: users and groups on Windows (host.h).
 *
 * Windows names users and groups by SID. The config's rules keep SIDs
 * (struct host_principal) and compare them with the peer's user SID and
 * the groups of its token (captured with the connection: sockets.c), so
 * accounts of two domains with the same relative id are never confused.
 *
 * The rest of the daemon compares users by a number, the `uid` of host.h
 * (the bus owner, the superuser, a topic's creator, the per-user limits,
 * the member files of a topic). Here that number is not the SID's
 * relative id, which S-1-5-21-A-B-C-1001 and S-1-5-21-D-E-F-1001 share,
 * but the SID's entry in a table this file keeps (users_number): one
 * number per distinct SID, two SIDs never the same one, so every `uid`
 * comparison of the daemon means "the same SID". The numbers are:
 *   - this process's own user SID: its relative id, as host_self_uid and
 *     the library (shmbus__self_uid: the member file the daemon's regions
 *     start with) say;
 *   - LocalSystem, S-1-5-18: 18, which host_uid_is_superuser knows (no
 *     account of a machine or domain has a relative id below 500);
 *   - any other SID: 0x80000000 | a 31-bit FNV-1a hash of its bytes. The
 *     top bit keeps them apart from relative ids (31 bits at most); the
 *     hash makes a SID's number the same in every life of the daemon,
 *     which the member files in shared memory need: a restarted daemon
 *     adopts them by the number they carry (registry_adopt). Two SIDs whose
 *     hashes meet (about 2^-31 for a pair) cannot both have it: the one
 *     that comes second is refused (-EEXIST) for as long as the daemon
 *     lives, which fails safe (never one user taken for another).
 * The table keeps every SID it has seen for the daemon's life (a user
 * cannot make up SIDs: its token's user is the account it logged on as),
 * at most USERS_MAX of them, and gives the SID string back for the log
 * and the replies (host_uid_text). The daemon is single-threaded; so is
 * the table.
 *
 * host_user_id gives a user's number from the same table; host_group_id
 * the group SID's relative id (groups are never compared by number here:
 * host_user_groups says -ENOSYS, the rules compare the token's group
 * SIDs). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>
#include <sddl.h>

#include "host.h"
#include "platform/platform.h"
#include "users.h"
#include "platform/windows/win.h"

/* A SID, with room for the largest one. */
union users_sid {
  SID sid;
  char buf[SECURITY_MAX_SID_SIZE];
};

/* ---- the numbers of user SIDs ------------------------------------------- */

/* The most SIDs the table keeps (about 5 MiB). */
#define USERS_MAX 65536u

/* LocalSystem's number (host_uid_is_superuser). */
#define USERS_SYSTEM 18u

/* One SID and its number. */
struct users_entry {
  uint32_t number;
  uint8_t len;
  uint8_t sid[SECURITY_MAX_SID_SIZE];
};

/* The table, sorted by number; the own user's SID (its first entry). */
static struct users_entry *users_tab;
static size_t users_n, users_cap;
static struct users_entry users_self;
static bool users_ready;

/* S-1-5-18 in binary form: revision 1, one sub-authority, the NT
 * authority (5, six bytes big-endian), 18 (little-endian). */
static const uint8_t users_system_sid[12] = {1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0};

/* The number of a SID that is neither ours nor LocalSystem's. */
static uint32_t users_hash(const uint8_t *sid, size_t len) {
  uint64_t h = 14695981039346656037ull;
  uint32_t n;
  size_t i;

  for (i = 0; i < len; i++) {
    h ^= sid[i];
    h *= 1099511628211ull;
  }
  n = (uint32_t)(h ^ (h >> 32)) | 0x80000000u;
  /* UINT32_MAX is "no user" to the tools (as (uid_t)-1). */
  return n == UINT32_MAX ? UINT32_MAX - 1 : n;
}

/* The index of number `n` in the table, or -1 with *at where it goes. */
static long users_find(uint32_t n, size_t *at) {
  size_t lo = 0, hi = users_n, mid;

  while (lo < hi) {
    mid = lo + (hi - lo) / 2;
    if (users_tab[mid].number == n)
      return (long)mid;
    if (users_tab[mid].number < n)
      lo = mid + 1;
    else
      hi = mid;
  }
  *at = lo;
  return -1;
}

/* Gives SID `sid` number `n`: 0 when it has it (now or already), -EEXIST
 * when another SID has it, -ENOSPC, -ENOMEM. */
static int users_put(const uint8_t *sid, size_t len, uint32_t n) {
  struct users_entry *tab;
  size_t at = 0, cap;
  long i;

  if ((i = users_find(n, &at)) >= 0)
    return users_tab[i].len == len && memcmp(users_tab[i].sid, sid, len) == 0 ? 0 : -EEXIST;
  if (users_n == USERS_MAX)
    return -ENOSPC;
  if (users_n == users_cap) {
    cap = users_cap == 0 ? 8 : users_cap * 2;
    if ((tab = realloc(users_tab, cap * sizeof(*tab))) == NULL)
      return -ENOMEM;
    users_tab = tab;
    users_cap = cap;
  }
  memmove(users_tab + at + 1, users_tab + at, (users_n - at) * sizeof(*users_tab));
  users_tab[at].number = n;
  users_tab[at].len = (uint8_t)len;
  memcpy(users_tab[at].sid, sid, len);
  users_n++;
  return 0;
}

/* The table's first entries: our own SID with its relative id, then
 * LocalSystem with 18 (unless we are LocalSystem, or 18 is taken, which
 * no account's relative id can make it). */
static int users_start(void) {
  struct shmbus__peer_id self;
  int rv;

  if (users_ready)
    return 0;
  if ((rv = shmbus__win_self_identity(&self)) < 0)
    return rv;
  if (self.sid_len == 0 || self.sid_len > sizeof(users_self.sid))
    return -EPROTO;
  if ((rv = users_put(self.sid, self.sid_len, self.uid)) < 0)
    return rv;
  users_self.number = self.uid;
  users_self.len = self.sid_len;
  memcpy(users_self.sid, self.sid, self.sid_len);
  rv = users_put(users_system_sid, sizeof(users_system_sid), USERS_SYSTEM);
  if (rv < 0 && rv != -EEXIST)
    return rv;
  users_ready = true;
  return 0;
}

int users_number(const void *sid, size_t len, uint32_t *number) {
  const uint8_t *b = sid;
  uint32_t n;
  int rv;

  if (len < 8 || len > SECURITY_MAX_SID_SIZE)
    return -EINVAL;
  if ((rv = users_start()) < 0)
    return rv;
  if (len == users_self.len && memcmp(b, users_self.sid, len) == 0)
    n = users_self.number;
  else if (len == sizeof(users_system_sid) && memcmp(b, users_system_sid, len) == 0)
    n = USERS_SYSTEM;
  else
    n = users_hash(b, len);
  if ((rv = users_put(b, len, n)) < 0)
    return rv;
  *number = n;
  return 0;
}

void host_uid_text(uint32_t uid, char *buf, size_t cap) {
  size_t at = 0;
  char *text = NULL;
  long i;

  if (cap == 0)
    return;
  (void)users_start(); /* so that our own number has its SID */
  if ((i = users_find(uid, &at)) >= 0 && ConvertSidToStringSidA((PSID)users_tab[i].sid, &text)) {
    snprintf(buf, cap, "user %s", text);
    LocalFree(text);
    return;
  }
  snprintf(buf, cap, "uid %u", (unsigned)uid);
}

int host_principal_number(const struct host_principal *u, uint32_t *uid) {
  if (u->len == 0)
    return -EINVAL;
  return users_number(u->sid, u->len, uid);
}

/* ---- names ---------------------------------------------------------------- */

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

/* The relative id of group `name`: its kind is one of `a`, `b`, `c`. */
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
  union users_sid s;
  wchar_t w[256];
  SID_NAME_USE use;
  int rv;

  if ((rv = users_utf16(name, w, sizeof(w) / sizeof(w[0]))) < 0 ||
      (rv = users_account(w, &s, &use)) < 0)
    return rv;
  if (use != SidTypeUser || !IsValidSid(&s.sid))
    return -ENOENT;
  return users_number(&s.sid, GetLengthSid(&s.sid), uid);
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
