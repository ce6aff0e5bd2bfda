/* headers: the bridge's NATS headers. See headers.h. */
#include "headers.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bridge_name_check(const char *name) {
  size_t n = strlen(name), i;

  if (n == 0 || n > BRIDGE_NAME_MAX)
    return -EINVAL;
  for (i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-'))
      return -EINVAL;
  }
  return 0;
}

int bridge_hdr_set(natsMsg *msg, const struct bridge_hdr *h, const char *msg_id) {
  char seq[24], ts[24];

  snprintf(seq, sizeof(seq), "%" PRIu64, h->seq);
  snprintf(ts, sizeof(ts), "%" PRIu64, h->ts_ns);
  if (natsMsgHeader_Set(msg, "Shmbus-Origin", h->origin) != NATS_OK ||
      natsMsgHeader_Set(msg, "Shmbus-Topic", h->topic) != NATS_OK ||
      natsMsgHeader_Set(msg, "Shmbus-Seq", seq) != NATS_OK ||
      natsMsgHeader_Set(msg, "Shmbus-Time", ts) != NATS_OK ||
      (msg_id != NULL && natsMsgHeader_Set(msg, "Nats-Msg-Id", msg_id) != NATS_OK))
    return -ENOMEM;
  return 0;
}

/* The one value of header `key`, or NULL (missing, or given twice). */
static const char *bridge_hdr_one(natsMsg *msg, const char *key) {
  const char **vals = NULL;
  const char *v;
  int n = 0;

  if (natsMsgHeader_Values(msg, key, &vals, &n) != NATS_OK || n != 1) {
    free((void *)vals);
    return NULL;
  }
  v = vals[0];
  free((void *)vals);
  return v;
}

/* A decimal uint64 without sign, spaces or leading zeros beyond "0". */
static int bridge_parse_u64(const char *s, uint64_t *out) {
  uint64_t v = 0;
  size_t i, n = s != NULL ? strlen(s) : 0;

  if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
    return -EBADMSG;
  for (i = 0; i < n; i++) {
    unsigned d = (unsigned)(s[i] - '0');
    if (d > 9 || v > (UINT64_MAX - d) / 10)
      return -EBADMSG;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

int bridge_hdr_get(natsMsg *msg, struct bridge_hdr *h) {
  const char *origin = bridge_hdr_one(msg, "Shmbus-Origin");
  const char *topic = bridge_hdr_one(msg, "Shmbus-Topic");

  if (origin == NULL || topic == NULL || bridge_name_check(origin) < 0 ||
      strlen(topic) >= sizeof(h->topic))
    return -EBADMSG;
  if (bridge_parse_u64(bridge_hdr_one(msg, "Shmbus-Seq"), &h->seq) < 0 ||
      bridge_parse_u64(bridge_hdr_one(msg, "Shmbus-Time"), &h->ts_ns) < 0)
    return -EBADMSG;
  strcpy(h->origin, origin);
  strcpy(h->topic, topic);
  return 0;
}
