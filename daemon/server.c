/* server: the daemon's side of the control protocol, put together. See
 * server.h and docs/protocol.md. */
#include "server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "listener.h"
#include "log.h"
#include "membership.h"
#include "participant.h"
#include "platform/platform.h"
#include "shmbus/error.h"
#include "timers.h"

int server_init(struct server *srv, uv_loop_t *loop, host_sock_t listen_sock, const char *sock_path,
                bool system, struct config *cfg, const char *config_path, bool config_default) {
  int rv;

  memset(srv, 0, sizeof(*srv));
  srv->loop = loop;
  srv->listen_sock = listen_sock;
  srv->spare = HOST_SOCK_INVALID;
  snprintf(srv->sock_path, sizeof(srv->sock_path), "%s", sock_path);
  srv->system = system;
  srv->owner = host_self_uid();
  srv->cfg = cfg;
  srv->config_path = config_path;
  srv->config_default = config_default;
  srv->next_id = 1;
  srv->start_ns = shmbus__clock_mono_ns();
  if ((rv = registry_init(&srv->reg)) < 0)
    return rv;
  srv->reg.on_drop = membership_on_drop;
  srv->reg.on_tampered = membership_on_tampered;
  srv->reg.drop_ctx = srv;
  handlers_watch_init(srv);
  if ((rv = stats_init(&srv->stats, loop, &srv->reg)) < 0) {
    log_err("cannot create %s: %s", STATS_TOPIC, shmbus_strerror(rv));
    return rv;
  }
  if ((rv = timers_init(srv)) < 0)
    return rv;
  return listener_start(srv);
}

struct server_account *server_account(struct server *srv, uint32_t uid) {
  struct server_account *u;
  size_t i;

  for (i = 0; i < srv->naccounts; i++)
    if (srv->accounts[i].uid == uid)
      return &srv->accounts[i];
  if ((u = realloc(srv->accounts, (srv->naccounts + 1) * sizeof(*u))) == NULL)
    return NULL;
  srv->accounts = u;
  u = &srv->accounts[srv->naccounts++];
  u->uid = uid;
  u->usage.topics = 0;
  u->usage.bytes = 0;
  return u;
}

void server_shutdown(struct server *srv) {
  struct participant *p;

  if (srv->stopping)
    return;
  srv->stopping = true;
  /* Stop listening and remove the name first, so that no new participant
   * finds a socket nobody accepts on. */
  listener_close(srv);
  /* Participants keep their records: they adopt them into the next daemon. */
  srv->kill_list = NULL;
  while ((p = srv->participants) != NULL) {
    p->dead = true;
    participant_close(p);
  }
  stats_close(&srv->stats);
  timers_close(srv);
}

void server_free(struct server *srv) {
  watch_free_all(&srv->watches);
  registry_free(&srv->reg);
  free(srv->accounts);
  srv->accounts = NULL;
  srv->naccounts = 0;
  config_free(srv->cfg);
  srv->cfg = NULL;
  host_sock_close(srv->listen_sock);
  srv->listen_sock = HOST_SOCK_INVALID;
  host_spare_release(srv->spare);
  srv->spare = HOST_SOCK_INVALID;
}
