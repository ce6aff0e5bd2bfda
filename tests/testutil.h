/* Helpers shared by the tests: a ring on plain memory, payload checksums. */
#ifndef SHMBUS_TESTUTIL_H
#define SHMBUS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "region.h"
#include "shmbus/error.h"
#include "ring.h"

/* Parameters with defaults filled in for any zero field. */
struct shmbus__params tu_params(uint32_t slots, uint32_t capacity, uint32_t max_subs,
                                uint32_t max_pubs);

/* Creates a region (real memfds) or fails the test. */
void tu_region(struct shmbus__region *rg, uint32_t slots, uint32_t capacity, uint32_t max_subs,
               uint32_t max_pubs);

/* A self-checking payload: [pub u32][seq u64][len u32][bytes...][fnv32]. Fills
 * `len` bytes (len >= TU_MIN_PAYLOAD). */
#define TU_MIN_PAYLOAD 20u
void tu_fill(void *buf, size_t len, uint32_t pub, uint64_t seq);
/* Returns 0 if `buf` is a well-formed payload, and its pub and seq. */
int tu_check(const void *buf, size_t len, uint32_t *pub, uint64_t *seq);

#endif
