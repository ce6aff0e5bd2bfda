/* access: permissions. See access.h. */
#include "access.h"

#include <stdio.h>

#include "proto.h"

const char *access_op_name(unsigned op) {
  switch (op) {
  case CONFIG_OP_PUB:
    return "pub";
  case CONFIG_OP_SUB:
    return "sub";
  case CONFIG_OP_CREATE:
    return "create";
  case CONFIG_OP_RETAIN:
    return "retain";
  default:
    return "remove";
  }
}

bool access_trusted(const struct server *srv, uint32_t uid) {
  return uid == srv->owner || host_uid_is_superuser(uid);
}

bool access_may(struct server *srv, struct participant *p, const char *topic, unsigned op,
                bool quiet, char *why, size_t whylen) {
  struct config_cred cred;
  bool ok;
  int d;

  if (config_uses_groups(srv->cfg))
    participant_groups(p);
  cred.uid = p->uid;
  cred.gid = host_peer_gid(&p->peer);
  cred.groups = p->groups;
  cred.ngroups = p->ngroups;
  cred.peer = &p->peer;
  d = config_decide(srv->cfg, topic, op, &cred, why, whylen);
  if (d >= 0) {
    ok = d == 1;
  } else if (access_trusted(srv, p->uid)) {
    ok = true;
  } else if (op == CONFIG_OP_CREATE) {
    char pwhy[300];
    ok = access_may(srv, p, topic, CONFIG_OP_PUB, true, pwhy, sizeof(pwhy));
    /* %.200s: the rule's FILE:LINE, shortened to fit `why`. */
    (void)snprintf(why, whylen, "default policy (create follows pub, %s by %.200s)",
                   ok ? "allowed" : "denied", pwhy);
  } else {
    ok = false;
  }
  if (!ok && !quiet)
    participant_log(p, LOG_NOTICE, "%s on %s denied by %s", access_op_name(op), topic, why);
  return ok;
}

bool access_role(struct server *srv, struct participant *p, const char *topic, uint32_t role,
                 bool quiet, char *why, size_t whylen) {
  return access_may(srv, p, topic, role == SHMBUS__ROLE_PUB ? CONFIG_OP_PUB : CONFIG_OP_SUB, quiet,
                    why, whylen);
}

bool access_view_topic(void *ctx, const struct registry_topic *t) {
  struct participant *p = ctx;
  char why[300];

  if (access_trusted(p->srv, p->uid))
    return true;
  return access_role(p->srv, p, t->name, SHMBUS__ROLE_SUB, true, why, sizeof(why));
}

bool access_view_part(void *ctx, const struct registry_part *part) {
  struct participant *p = ctx;
  const struct participant *o = part->owner;

  return access_trusted(p->srv, p->uid) || (o != NULL && o->uid == p->uid);
}
