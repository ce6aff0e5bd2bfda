/* synth: synthetic payloads. See synth.h. */
#include "synth.h"

#include <stdlib.h>
#include <string.h>

static void synth_put32(unsigned char *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static void synth_put64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (unsigned char)(v >> (8 * i));
}

static uint32_t synth_get32(const unsigned char *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

static uint64_t synth_get64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}

/* FNV-1a 32 over the payload, with the checksum field (24..27) as zeros. */
static uint32_t synth_sum(const unsigned char *p, size_t len) {
  uint32_t h = 2166136261u;
  size_t i;

  for (i = 0; i < len; i++) {
    h ^= i >= 24 && i < 28 ? 0u : p[i];
    h *= 16777619u;
  }
  return h;
}

void synth_fill(void *buf, size_t len, uint32_t pub, uint64_t seq, uint64_t total) {
  unsigned char *p = buf;
  size_t i;

  memcpy(p, "SBS1", 4);
  synth_put32(p + 4, pub);
  synth_put64(p + 8, seq);
  synth_put64(p + 16, total);
  synth_put32(p + 24, 0);
  synth_put32(p + 28, 0);
  for (i = SYNTH_HEADER; i < len; i++)
    p[i] = (unsigned char)((seq * 31u + i) & 0xff);
  synth_put32(p + 24, synth_sum(p, len));
}

bool synth_parse(const void *buf, size_t len, struct synth_info *info) {
  const unsigned char *p = buf;

  if (len < SYNTH_HEADER || memcmp(p, "SBS1", 4) != 0)
    return false;
  info->pub = synth_get32(p + 4);
  info->seq = synth_get64(p + 8);
  info->total = synth_get64(p + 16);
  info->checksum_ok = synth_get32(p + 24) == synth_sum(p, len);
  return true;
}

static struct synth_peer *synth_peer(struct synth_tracker *t, uint32_t pub) {
  size_t i;

  for (i = 0; i < t->n; i++)
    if (t->peers[i].pub == pub)
      return &t->peers[i];
  if (t->n == t->cap) {
    size_t cap = t->cap != 0 ? t->cap * 2 : 8;
    struct synth_peer *np = realloc(t->peers, cap * sizeof(*np));
    if (np == NULL)
      return NULL;
    t->peers = np;
    t->cap = cap;
  }
  t->peers[t->n] = (struct synth_peer){pub, 0, false};
  return &t->peers[t->n++];
}

bool synth_track(struct synth_tracker *t, const struct synth_info *info) {
  struct synth_peer *peer;

  if (!info->checksum_ok) {
    t->errors++;
    return false;
  }
  if ((peer = synth_peer(t, info->pub)) == NULL || info->seq < peer->next) {
    t->errors++;
    return false;
  }
  peer->next = info->seq + 1;
  if (info->total > 0 && info->seq + 1 >= info->total)
    peer->done = true;
  return true;
}

bool synth_all_done(const struct synth_tracker *t) {
  size_t i;

  for (i = 0; i < t->n; i++)
    if (!t->peers[i].done)
      return false;
  return t->n > 0;
}

void synth_tracker_free(struct synth_tracker *t) {
  free(t->peers);
  t->peers = NULL;
  t->n = t->cap = 0;
}
