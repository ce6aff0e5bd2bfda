/* reload: the config file again, and the command line's limits. See
 * reload.h. */
#include "reload.h"

#include <errno.h>

#include "log.h"

int reload_apply_limits(const struct server *srv, struct config *cfg, char *err, size_t errlen) {
  size_t i;
  int rv;

  for (i = 0; i < srv->nlimit_args; i++)
    if ((rv = config_limit_override(cfg, srv->limit_args[i], err, errlen)) < 0)
      return rv;
  return 0;
}

void reload_config(struct server *srv) {
  struct config *cfg = NULL;
  char err[512];
  int rv;

  if (srv->config_path == NULL) {
    log_info("reload: no config file (default policy: only uid %u and root)", (unsigned)srv->owner);
    return;
  }
  rv = config_load(srv->config_path, srv->owner, &cfg, err, sizeof(err));
  if (rv == -ENOENT && srv->config_default) {
    if ((cfg = config_new_default(srv->owner)) == NULL) {
      log_err("reload: out of memory; keeping the current rules");
      return;
    }
    log_notice("reload: %s does not exist; default policy (only root) applies", srv->config_path);
  } else if (rv < 0) {
    log_err("reload: %s; keeping the current rules", err);
    return;
  } else {
    log_notice("reload: %zu rule(s) from %s", config_rule_count(cfg), srv->config_path);
  }
  if (reload_apply_limits(srv, cfg, err, sizeof(err)) < 0) {
    log_err("reload: %s; keeping the current rules", err);
    config_free(cfg);
    return;
  }
  config_free(srv->cfg);
  srv->cfg = cfg;
}
