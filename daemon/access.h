/* access: who may do what on the bus. The config's rules decide first
 * (config_decide); without a matching rule the bus owner and root may do
 * everything, and others may create what they may publish (publishing
 * implies creating, subscribing does not), nothing else. It also decides
 * what a snapshot shows to whom (M4 in docs/security.md).
 *
 * Thread-safety: single-threaded, on the daemon's loop. */
#ifndef SHMBUSD_ACCESS_H
#define SHMBUSD_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "participant.h"
#include "registry.h"
#include "server.h"

/* Whether uid `uid` is the bus owner or the superuser (root): they may do
 * everything. */
bool access_trusted(const struct server *srv, uint32_t uid);

/* Whether `p` may do `op` (CONFIG_OP_*) on `topic`, with the reason (the
 * rule's FILE:LINE, or the default policy) in `why`; a denial is logged
 * unless `quiet`. Removal by the topic's creator is the caller's business
 * (handlers). */
bool access_may(struct server *srv, struct participant *p, const char *topic, unsigned op,
                bool quiet, char *why, size_t whylen);

/* access_may for publishing or subscribing (`role` SHMBUS__ROLE_*). */
bool access_role(struct server *srv, struct participant *p, const char *topic, uint32_t role,
                 bool quiet, char *why, size_t whylen);

/* M4, for stats_encode (struct stats_view, ctx a participant): a snapshot
 * shows a uid only the topics it may subscribe to (the owner and root see
 * all), and who the participants are only where they are of its own uid. */
bool access_view_topic(void *ctx, const struct registry_topic *t);
bool access_view_part(void *ctx, const struct registry_part *part);

/* The name of CONFIG_OP_* `op`, for the log. */
const char *access_op_name(unsigned op);

#endif /* SHMBUSD_ACCESS_H */
