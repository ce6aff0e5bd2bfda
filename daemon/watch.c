/* watch: topic discovery on the daemon's side. See watch.h. */
#include "watch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pattern.h"
#include "shmbus/error.h"

struct watch {
  struct watch *next;
  void *client;
  uint32_t id;
  char pattern[SHMBUS__TOPIC_MAX + 1];
};

int watch_add(struct watch_set *s, void *client, uint32_t id, const char *pattern) {
  struct watch *w;
  size_t mine = 0;

  for (w = s->head; w != NULL; w = w->next) {
    if (w->client != client)
      continue;
    if (w->id == id) {
      /* A client renewing a watch the daemon still has (its first
       * attempt timed out): the new pattern counts. */
      memcpy(w->pattern, pattern, strlen(pattern) + 1);
      return 0;
    }
    mine++;
  }
  if (mine >= WATCH_MAX_PER_CLIENT)
    return SHMBUS_EQUOTA;
  if ((w = calloc(1, sizeof(*w))) == NULL)
    return -ENOMEM;
  w->client = client;
  w->id = id;
  memcpy(w->pattern, pattern, strlen(pattern) + 1);
  w->next = s->head;
  s->head = w;
  s->n++;
  return 0;
}

int watch_remove(struct watch_set *s, void *client, uint32_t id) {
  struct watch **pp;

  for (pp = &s->head; *pp != NULL; pp = &(*pp)->next) {
    struct watch *w = *pp;
    if (w->client == client && w->id == id) {
      *pp = w->next;
      s->n--;
      free(w);
      return 0;
    }
  }
  return -ENOENT;
}

void watch_drop_client(struct watch_set *s, void *client) {
  struct watch **pp = &s->head;

  while (*pp != NULL) {
    struct watch *w = *pp;
    if (w->client == client) {
      *pp = w->next;
      s->n--;
      free(w);
    } else {
      pp = &w->next;
    }
  }
}

void watch_notify(struct watch_set *s, const char *name, bool up) {
  struct shmbus__msg m;
  struct watch *w;

  if (s->head == NULL)
    return;
  shmbus__msg_init(&m, up ? SHMBUS__MSG_TOPIC_UP : SHMBUS__MSG_TOPIC_DOWN, 0);
  memcpy(m.topic, name, strlen(name) + 1);
  /* Sending may disconnect a client, but never frees it or its watches
   * before the end of the event (the server reaps later), so the list
   * stays as it is during the walk. */
  for (w = s->head; w != NULL; w = w->next) {
    if (!shmbus__pattern_match(w->pattern, name) || !s->ops.may_see(s->ops.ctx, w->client, name))
      continue;
    m.watch_id = w->id;
    s->ops.send(s->ops.ctx, w->client, &m);
  }
}

void watch_free_all(struct watch_set *s) {
  while (s->head != NULL) {
    struct watch *w = s->head;
    s->head = w->next;
    free(w);
  }
  s->n = 0;
}
