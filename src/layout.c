/* layout: sizes and offsets of a topic's shared memory, from its parameters,
 * and its headers: formatting and validation side by side. Both the creator
 * and every validator compute the layout here, so a header is accepted only
 * if it is exactly what these parameters would have produced. */
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

void shmbus__layout_format_data(void *data, const struct shmbus__layout *l, uint64_t nonce,
                                uint64_t created_ns) {
  struct shmbus__data_hdr *h = data;

  h->version = SHMBUS__LAYOUT_VERSION;
  h->hdr_size = SHMBUS__DATA_HDR_SIZE;
  h->slot_count = l->params.slot_count;
  h->slot_capacity = l->params.slot_capacity;
  h->slot_stride = l->slot_stride;
  h->max_subs = l->params.max_subs;
  h->max_pubs = l->params.max_pubs;
  h->flags = 0;
  h->nonce = nonce;
  h->data_size = l->data_size;
  h->member_size = l->member_size;
  h->pubs_offset = l->pubs_offset;
  h->slots_offset = l->slots_offset;
  h->created_ns = created_ns;
  shmbus__store_relaxed(&h->head, 0);
  /* Magic last: a validator that sees it (after its acquire fence in
   * shmbus__layout_check_data) sees every field above. */
  shmbus__fence_release();
  h->magic = SHMBUS__MAGIC_DATA;
}

int shmbus__layout_check_data(const void *data, uint64_t data_len, uint64_t page,
                              struct shmbus__layout *out) {
  const struct shmbus__data_hdr *h = data;
  struct shmbus__params p;
  struct shmbus__layout l;

  if (data == NULL || data_len < SHMBUS__DATA_HDR_SIZE)
    return SHMBUS_EBADREGION;
  if (h->magic != SHMBUS__MAGIC_DATA)
    return SHMBUS_EBADREGION;
  shmbus__fence_acquire(); /* pairs with the release fence before the magic in format */
  if (h->version != SHMBUS__LAYOUT_VERSION)
    return SHMBUS_EVERSION;
  p.slot_count = h->slot_count;
  p.slot_capacity = h->slot_capacity;
  p.max_subs = h->max_subs;
  p.max_pubs = h->max_pubs;
  if (shmbus__layout_compute(&p, page, &l) != 0)
    return SHMBUS_EBADREGION;
  /* Accept the header only if it is exactly what its parameters produce,
   * and only if the mapping is exactly as large as it says. */
  if (h->hdr_size != SHMBUS__DATA_HDR_SIZE || h->slot_stride != l.slot_stride || h->flags != 0 ||
      h->pubs_offset != l.pubs_offset || h->slots_offset != l.slots_offset ||
      h->data_size != l.data_size || h->member_size != l.member_size || data_len != l.data_size)
    return SHMBUS_EBADREGION;
  *out = l;
  return 0;
}

void shmbus__layout_format_member(void *member, const struct shmbus__layout *l, uint64_t nonce,
                                  uint32_t m, uint32_t uid) {
  struct shmbus__member_hdr *c = member;

  c->version = SHMBUS__LAYOUT_VERSION;
  c->hdr_size = SHMBUS__MEMBER_HDR_SIZE;
  c->max_subs = l->params.max_subs;
  c->bitmap_words = l->bitmap_words;
  c->nonce = nonce;
  c->member_size = l->member_size;
  c->member = m;
  c->uid = uid;
  shmbus__store_relaxed(&c->gen, 0);
  shmbus__store_relaxed(&c->sleep_summary, 0);
  shmbus__store_relaxed(&c->sleep_epoch, 0);
  /* Magic last, as for the data header. */
  shmbus__fence_release();
  c->magic = SHMBUS__MAGIC_MEMBER;
}

int shmbus__layout_check_member(const void *member, uint64_t len, const struct shmbus__layout *l,
                                uint64_t nonce, uint32_t *m, uint32_t *uid) {
  const struct shmbus__member_hdr *c = member;

  if (member == NULL || len < SHMBUS__MEMBER_HDR_SIZE)
    return SHMBUS_EBADREGION;
  if (c->magic != SHMBUS__MAGIC_MEMBER)
    return SHMBUS_EBADREGION;
  shmbus__fence_acquire(); /* pairs with the release fence before the magic in format */
  if (c->version != SHMBUS__LAYOUT_VERSION)
    return SHMBUS_EVERSION;
  if (c->hdr_size != SHMBUS__MEMBER_HDR_SIZE || c->max_subs != l->params.max_subs ||
      c->bitmap_words != l->bitmap_words || c->nonce != nonce || c->member_size != l->member_size ||
      len != l->member_size || c->member >= SHMBUS__MAX_MEMBERS)
    return SHMBUS_EBADREGION;
  *m = c->member;
  *uid = c->uid;
  return 0;
}
