/* users: the groups of a user and the ids of user and group names on
 * Linux (host.h): the passwd and group databases through NSS. */
#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>

#include "host.h"

int host_user_groups(uint32_t uid, uint32_t gid, uint32_t **groups, size_t *ngroups) {
  struct passwd pw;
  struct passwd *res = NULL;
  char buf[4096];
  int n = 32;
  gid_t *g = NULL;
  int rv;

  *groups = NULL;
  *ngroups = 0;
  if ((rv = getpwuid_r((uid_t)uid, &pw, buf, sizeof(buf), &res)) != 0)
    return -rv;
  if (res == NULL)
    return -ENOENT;
  /* getgrouplist says how many it needs when the array is short; the
   * database may grow between calls, so a few tries. */
  for (int tries = 0; tries < 4; tries++) {
    int want = n;
    gid_t *ng = realloc(g, (size_t)n * sizeof(*g));
    if (ng == NULL) {
      free(g);
      return -ENOMEM;
    }
    g = ng;
    if (getgrouplist(pw.pw_name, (gid_t)gid, g, &n) >= 0) {
      _Static_assert(sizeof(gid_t) == sizeof(uint32_t), "gid_t is 32 bits");
      *groups = (uint32_t *)g;
      *ngroups = (size_t)n;
      return 0;
    }
    if (n <= want) /* no progress: give up */
      break;
  }
  free(g);
  return -EAGAIN;
}

int host_user_id(const char *name, uint32_t *uid) {
  struct passwd *pw;

  errno = 0;
  pw = name[0] != '\0' ? getpwnam(name) : NULL;
  if (pw == NULL)
    return errno != 0 && errno != ENOENT && errno != ESRCH ? -errno : -ENOENT;
  *uid = (uint32_t)pw->pw_uid;
  return 0;
}

int host_group_id(const char *name, uint32_t *gid) {
  struct group *gr;

  errno = 0;
  gr = name[0] != '\0' ? getgrnam(name) : NULL;
  if (gr == NULL)
    return errno != 0 && errno != ENOENT && errno != ESRCH ? -errno : -ENOENT;
  *gid = (uint32_t)gr->gr_gid;
  return 0;
}

int host_principal_user(const char *name, struct host_principal *p) {
  return host_user_id(name, &p->id);
}

int host_principal_group(const char *name, struct host_principal *p) {
  return host_group_id(name, &p->id);
}

int host_principal_number(const struct host_principal *u, uint32_t *uid) {
  *uid = u->id;
  return 0;
}

void host_uid_text(uint32_t uid, char *buf, size_t cap) {
  if (cap > 0)
    snprintf(buf, cap, "uid %u", (unsigned)uid);
}

int host_principal_uid(uint32_t uid, struct host_principal *p) {
  p->id = uid;
  return 0;
}

int host_principal_gid(uint32_t gid, struct host_principal *p) {
  p->id = gid;
  return 0;
}

bool host_principal_is_user(const struct host_principal *u, uint32_t uid,
                            const struct host_peer *peer) {
  (void)peer;
  return uid == u->id;
}

bool host_principal_has_member(const struct host_principal *g, uint32_t gid, const uint32_t *groups,
                               size_t ngroups, const struct host_peer *peer) {
  size_t i;

  (void)peer;
  if (gid == g->id)
    return true;
  for (i = 0; i < ngroups; i++)
    if (groups[i] == g->id)
      return true;
  return false;
}
