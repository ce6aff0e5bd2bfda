#include "testutil.h"

#include <criterion/criterion.h>
#include <string.h>

struct shmbus__params tu_params(uint32_t slots, uint32_t capacity, uint32_t max_subs,
                                uint32_t max_pubs) {
  struct shmbus__params p = {slots ? slots : 64, capacity ? capacity : 64, max_subs ? max_subs : 8,
                             max_pubs ? max_pubs : 8};
  return p;
}

void tu_region(struct shmbus__region *rg, uint32_t slots, uint32_t capacity, uint32_t max_subs,
               uint32_t max_pubs) {
  struct shmbus__params p = tu_params(slots, capacity, max_subs, max_pubs);
  int rv = shmbus__region_create(rg, &p, "test");
  cr_assert_eq(rv, 0, "region_create: %s", shmbus_strerror(rv));
}

static uint32_t tu_fnv(const unsigned char *p, size_t n) {
  uint32_t h = 2166136261u;
  size_t i;
  for (i = 0; i < n; i++)
    h = (h ^ p[i]) * 16777619u;
  return h;
}

void tu_fill(void *buf, size_t len, uint32_t pub, uint64_t seq) {
  unsigned char *b = buf;
  uint32_t l32 = (uint32_t)len;
  uint32_t sum;
  size_t i;

  memcpy(b, &pub, 4);
  memcpy(b + 4, &seq, 8);
  memcpy(b + 12, &l32, 4);
  for (i = 16; i + 4 < len; i++)
    b[i] = (unsigned char)(seq * 31u + i * 7u + pub);
  sum = tu_fnv(b, len - 4);
  memcpy(b + len - 4, &sum, 4);
}

int tu_check(const void *buf, size_t len, uint32_t *pub, uint64_t *seq) {
  const unsigned char *b = buf;
  uint32_t l32;
  uint32_t sum;

  if (len < TU_MIN_PAYLOAD)
    return -1;
  memcpy(&l32, b + 12, 4);
  if (l32 != len)
    return -1;
  memcpy(&sum, b + len - 4, 4);
  if (sum != tu_fnv(b, len - 4))
    return -1;
  memcpy(pub, b, 4);
  memcpy(seq, b + 4, 8);
  return 0;
}
