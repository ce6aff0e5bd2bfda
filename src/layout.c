/* layout: sizes and offsets of a topic's shared memory, from its parameters.
 * Both the creator and every validator call this, so a header is accepted
 * only if it is exactly what these parameters would have produced. */
#include "layout.h"

#include "shmbus/error.h"

static uint64_t layout_round_up(uint64_t v, uint64_t align) {
  return (v + align - 1) & ~(align - 1);
}

int shmbus__layout_compute(const struct shmbus__params *p, uint64_t page,
                           struct shmbus__layout *out) {
  uint64_t stride;
  uint64_t slots_bytes;

  if (page < SHMBUS__CACHE_LINE || (page & (page - 1)) != 0)
    return SHMBUS_EPARAM;
  if (p->slot_count < SHMBUS__MIN_SLOTS || p->slot_count > SHMBUS__MAX_SLOTS ||
      (p->slot_count & (p->slot_count - 1)) != 0)
    return SHMBUS_EPARAM;
  if (p->slot_capacity == 0 || p->slot_capacity > SHMBUS__MAX_SLOT_CAPACITY)
    return SHMBUS_EPARAM;
  if (p->max_subs == 0 || p->max_subs > SHMBUS__MAX_SUBS)
    return SHMBUS_EPARAM;
  if (p->max_pubs == 0 || p->max_pubs > SHMBUS__MAX_PUBS)
    return SHMBUS_EPARAM;

  /* Bounded above: stride < 2^27, slot_count <= 2^24, so the product stays
   * below 2^51 and none of the sums below can overflow. */
  stride = layout_round_up((uint64_t)SHMBUS__SLOT_HDR_SIZE + p->slot_capacity, SHMBUS__CACHE_LINE);
  slots_bytes = stride * p->slot_count;

  out->params = *p;
  out->slot_stride = (uint32_t)stride;
  out->bitmap_words = (p->max_subs + 63u) / 64u;
  out->pubs_offset = SHMBUS__DATA_HDR_SIZE;
  out->slots_offset = layout_round_up(out->pubs_offset + (uint64_t)p->max_pubs * SHMBUS__CACHE_LINE,
                                      SHMBUS__CACHE_LINE * 2);
  out->data_size = layout_round_up(out->slots_offset + slots_bytes, page);
  out->member_size = layout_round_up(
      SHMBUS__SUBS_OFFSET + (uint64_t)p->max_subs * sizeof(struct shmbus__sub_rec), page);
  if (out->data_size > SHMBUS__MAX_REGION_BYTES)
    return SHMBUS_EPARAM;
  return 0;
}
