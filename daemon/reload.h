/* reload: the config file read again (SIGHUP) and the command line's
 * --limit options applied over a config's limits. A file that does not
 * load leaves the current rules in place; the log says why.
 *
 * Thread-safety: single-threaded, on the daemon's loop. */
#ifndef SHMBUSD_RELOAD_H
#define SHMBUSD_RELOAD_H

#include <stddef.h>

#include "config.h"
#include "server.h"

/* Applies the command line's limits (srv->limit_args) to `cfg`. Returns
 * 0, or -EINVAL with a sentence in `err`. */
int reload_apply_limits(const struct server *srv, struct config *cfg, char *err, size_t errlen);

/* Reloads the config file and puts it in place of the current one. */
void reload_config(struct server *srv);

#endif /* SHMBUSD_RELOAD_H */
