/* region: topic memory files, mapped and checked. See region.h. */
#include "region.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "platform/platform.h"
#include "shmbus/error.h"

/* The platform's shared-memory errors in the bus's words: what is not a
 * shared-memory object of ours is a bad region, and a system that cannot
 * check (no /proc on Linux) is said as such. */
static int region_shm_error(int rv) {
  if (rv == -EINVAL)
    return SHMBUS_EBADREGION;
  if (rv == -ENOTSUP)
    return SHMBUS_ENOPROC;
  return rv;
}

/* Checks a received shared-memory handle (at most a region's size). */
static int region_shm_check(shmbus__shm_handle shm, uint64_t *len) {
  return region_shm_error(shmbus__shm_check(shm, SHMBUS__MAX_REGION_BYTES, len));
}

static void region_reset(struct shmbus__region *rg) {
  uint32_t m;

  memset(rg, 0, sizeof(*rg));
  rg->data_fd = SHMBUS__OS_HANDLE_INVALID;
  rg->ctrl_fd = SHMBUS__OS_HANDLE_INVALID;
  for (m = 0; m < SHMBUS__MAX_MEMBERS; m++)
    rg->members[m].fd = SHMBUS__OS_HANDLE_INVALID;
}

/* Makes member m the region's own (ctrl aliases it). */
static void region_set_own(struct shmbus__region *rg, uint32_t m) {
  rg->ctrl = rg->members[m].map;
  rg->ctrl_len = rg->layout.member_size;
  rg->ctrl_fd = rg->members[m].fd;
}

/* Maps fd as member m (checked: a sealed memfd of the layout's size). */
static int region_map_member(struct shmbus__region *rg, uint32_t m, shmbus__shm_handle fd,
                             bool writable, bool own) {
  uint64_t len;
  void *map;
  int rv;

  if (m >= SHMBUS__MAX_MEMBERS)
    return -EINVAL;
  if ((rv = region_shm_check(fd, &len)) < 0)
    return rv;
  if (len != rg->layout.member_size)
    return SHMBUS_EBADREGION;
  if ((rv = shmbus__shm_map(fd, len, writable, &map)) < 0)
    return rv;
  if ((rv = shmbus__ring_view_add_member(&rg->ring, m, map, len, own)) < 0) {
    shmbus__shm_unmap(map, len);
    return rv;
  }
  rg->members[m].map = map;
  rg->members[m].writable = writable;
  if (own)
    region_set_own(rg, m);
  return 0;
}

static int region_new_member(struct shmbus__region *rg, uint32_t m, uint32_t uid,
                             const char *debug_name) {
  char name[64];
  shmbus__shm_handle fd;
  int rv;

  if (m >= SHMBUS__MAX_MEMBERS || rg->members[m].map != NULL)
    return -EINVAL;
  snprintf(name, sizeof(name), "shmbus:%s:member%u", debug_name ? debug_name : "", m);
  if ((rv = shmbus__shm_create(name, rg->layout.member_size, &fd)) < 0)
    return rv;
  if ((rv = shmbus__shm_map(fd, rg->layout.member_size, true, &rg->members[m].map)) < 0) {
    shmbus__fd_close(fd);
    return rv;
  }
  /* Fresh memory files read as zeroes, as format requires. */
  shmbus__layout_format_member(rg->members[m].map, &rg->layout, rg->nonce, m, uid);
  rg->members[m].fd = fd;
  rg->members[m].uid = uid;
  rg->members[m].writable = true;
  return shmbus__ring_view_add_member(&rg->ring, m, rg->members[m].map, rg->layout.member_size,
                                      m == 0);
}

int shmbus__region_create(struct shmbus__region *rg, const struct shmbus__params *p,
                          const char *debug_name) {
  char name[64];
  int rv;

  region_reset(rg);
  if ((rv = shmbus__layout_compute(p, shmbus__page_size(), &rg->layout)) < 0)
    return rv;
  if ((rv = shmbus__random64(&rg->nonce)) < 0)
    return rv;
  snprintf(name, sizeof(name), "shmbus:%s:data", debug_name ? debug_name : "");
  if ((rv = shmbus__shm_create(name, rg->layout.data_size, &rg->data_fd)) < 0)
    goto fail;
  if ((rv = shmbus__shm_map(rg->data_fd, rg->layout.data_size, true, &rg->data)) < 0)
    goto fail;
  rg->data_len = rg->layout.data_size;
  shmbus__layout_format_data(rg->data, &rg->layout, rg->nonce, shmbus__clock_real_ns());
  if ((rv = shmbus__ring_view_build(&rg->ring, p, shmbus__page_size(), rg->data, rg->data_len)) < 0)
    goto fail;
  rg->ring.backoff = shmbus__spin_backoff;
  if ((rv = region_new_member(rg, 0, shmbus__self_uid(), debug_name)) < 0)
    goto fail;
  region_set_own(rg, 0);
  return 0;

fail:
  shmbus__region_close(rg);
  return rv;
}

int shmbus__region_add_member(struct shmbus__region *rg, uint32_t m, uint32_t uid,
                              const char *debug_name) {
  if (!shmbus__handle_ok(rg->data_fd))
    return -EBADF;
  return region_new_member(rg, m, uid, debug_name);
}

int shmbus__region_attach(struct shmbus__region *rg, const struct shmbus__params *p,
                          shmbus__shm_handle data_fd, shmbus__shm_handle member_fd, uint32_t m,
                          enum shmbus__role role) {
  int rv;

  region_reset(rg);
  if (role != SHMBUS__ROLE_PUB && role != SHMBUS__ROLE_SUB)
    return -EINVAL;
  if ((rv = shmbus__layout_compute(p, shmbus__page_size(), &rg->layout)) < 0)
    return rv;
  if ((rv = region_shm_check(data_fd, &rg->data_len)) < 0)
    goto fail;
  /* The size the parameters give, exactly: then every offset the ring
   * computes lies inside the mapping, whatever the header says. */
  if (rg->data_len != rg->layout.data_size) {
    rv = SHMBUS_EBADREGION;
    goto fail;
  }
  if ((rv = shmbus__shm_map(data_fd, rg->data_len, role == SHMBUS__ROLE_PUB, &rg->data)) < 0)
    goto fail;
  if ((rv = shmbus__ring_view_build(&rg->ring, p, shmbus__page_size(), rg->data, rg->data_len)) < 0)
    goto fail;
  rg->ring.backoff = shmbus__spin_backoff;
  if ((rv = region_map_member(rg, m, member_fd, true, true)) < 0)
    goto fail;
  return 0;

fail:
  shmbus__region_close(rg);
  return rv;
}

int shmbus__region_map_member(struct shmbus__region *rg, uint32_t m, shmbus__shm_handle fd) {
  if (m >= SHMBUS__MAX_MEMBERS)
    return -EINVAL;
  if (rg->members[m].map != NULL)
    return 0;
  return region_map_member(rg, m, fd, false, false);
}

int shmbus__region_unmap_member(struct shmbus__region *rg, uint32_t m) {
  int rv;

  if (m >= SHMBUS__MAX_MEMBERS || (rv = shmbus__ring_view_remove_member(&rg->ring, m)) < 0)
    return -EINVAL;
  shmbus__shm_unmap(rg->members[m].map, rg->layout.member_size);
  shmbus__fd_close(rg->members[m].fd);
  memset(&rg->members[m], 0, sizeof(rg->members[m]));
  rg->members[m].fd = SHMBUS__OS_HANDLE_INVALID;
  return 0;
}

int shmbus__region_open(struct shmbus__region *rg, shmbus__shm_handle data_fd,
                        shmbus__shm_handle ctrl_fd, enum shmbus__role role) {
  struct shmbus__params p;
  uint64_t ctrl_len;
  void *ctrl = NULL;
  uint32_t m;
  uint32_t uid;
  int rv;

  region_reset(rg);
  if (role != SHMBUS__ROLE_PUB && role != SHMBUS__ROLE_SUB)
    return -EINVAL;
  if ((rv = region_shm_check(data_fd, &rg->data_len)) < 0)
    goto fail;
  if ((rv = region_shm_check(ctrl_fd, &ctrl_len)) < 0)
    goto fail;
  if ((rv = shmbus__shm_map(data_fd, rg->data_len, role == SHMBUS__ROLE_PUB, &rg->data)) < 0)
    goto fail;
  if ((rv = shmbus__shm_map(ctrl_fd, ctrl_len, true, &ctrl)) < 0)
    goto fail;
  /* Nothing but the memory says what this is: validate both headers. */
  if ((rv = shmbus__ring_view_init(&rg->ring, rg->data, rg->data_len, ctrl, ctrl_len,
                                   shmbus__page_size())) < 0) {
    shmbus__shm_unmap(ctrl, ctrl_len);
    goto fail;
  }
  rg->ring.backoff = shmbus__spin_backoff;
  p.slot_count = rg->ring.slot_count;
  p.slot_capacity = rg->ring.slot_capacity;
  p.max_subs = rg->ring.max_subs;
  p.max_pubs = rg->ring.max_pubs;
  (void)shmbus__layout_compute(&p, shmbus__page_size(), &rg->layout); /* validated above */
  rg->nonce = rg->ring.hdr->nonce;
  (void)shmbus__ring_member_check(&rg->ring, ctrl, ctrl_len, &m, &uid); /* as view_init */
  rg->members[m].map = ctrl;
  rg->members[m].uid = uid;
  rg->members[m].writable = true;
  region_set_own(rg, m);
  return 0;

fail:
  shmbus__region_close(rg);
  return rv;
}

int shmbus__region_adopt_member(struct shmbus__region *rg, shmbus__shm_handle *fd, uint32_t *m,
                                uint32_t *uid) {
  uint64_t len;
  void *map;
  int rv;

  if ((rv = region_shm_check(*fd, &len)) < 0)
    return rv;
  if (len != rg->layout.member_size)
    return SHMBUS_EBADREGION;
  if ((rv = shmbus__shm_map(*fd, len, true, &map)) < 0)
    return rv;
  if ((rv = shmbus__ring_member_check(&rg->ring, map, len, m, uid)) < 0)
    goto fail;
  if (rg->members[*m].map != NULL) {
    /* Known already: the same file is fine, another one is not. */
    rv = shmbus__handle_ok(rg->members[*m].fd) && shmbus__fd_same_file(rg->members[*m].fd, *fd) == 1
             ? 0
             : SHMBUS_EMISMATCH;
    goto fail;
  }
  if ((rv = shmbus__ring_view_add_member(&rg->ring, *m, map, len, false)) < 0)
    goto fail;
  rg->members[*m].map = map;
  rg->members[*m].fd = *fd;
  rg->members[*m].uid = *uid;
  rg->members[*m].writable = true;
  if (rg->ctrl == NULL)
    region_set_own(rg, *m);
  *fd = SHMBUS__OS_HANDLE_INVALID;
  return 0;

fail:
  shmbus__shm_unmap(map, len);
  return rv;
}

int shmbus__region_upgrade_data(struct shmbus__region *rg, shmbus__shm_handle *fd) {
  struct shmbus__params p;
  struct shmbus__ring old = rg->ring;
  uint64_t len;
  void *map;
  uint32_t m;
  int rv;

  if ((rv = region_shm_check(*fd, &len)) < 0)
    return rv;
  if (len != rg->data_len)
    return SHMBUS_EBADREGION;
  if ((rv = shmbus__shm_map(*fd, len, true, &map)) < 0)
    return rv;
  if (((const struct shmbus__data_hdr *)map)->nonce != rg->nonce) {
    shmbus__shm_unmap(map, len);
    return SHMBUS_EMISMATCH;
  }
  p = rg->layout.params;
  (void)shmbus__ring_view_build(&rg->ring, &p, shmbus__page_size(), map, len); /* same layout */
  rg->ring.backoff = old.backoff;
  for (m = 0; m < old.n_members; m++)
    if (old.members[m].hdr != NULL)
      (void)shmbus__ring_view_add_member(&rg->ring, m, old.members[m].hdr, rg->layout.member_size,
                                         m == old.own && old.ctrl != NULL);
  shmbus__shm_unmap(rg->data, rg->data_len);
  shmbus__fd_close(rg->data_fd);
  rg->data = map;
  rg->data_fd = *fd;
  *fd = SHMBUS__OS_HANDLE_INVALID;
  return 0;
}

int shmbus__region_subscriber_fds(const struct shmbus__region *rg, shmbus__shm_handle *data_ro_fd,
                                  shmbus__shm_handle *ctrl_fd) {
  shmbus__shm_handle ro;
  shmbus__shm_handle c;
  int rv;

  if (!shmbus__handle_ok(rg->data_fd) || !shmbus__handle_ok(rg->ctrl_fd))
    return -EBADF;
  if ((rv = region_shm_error(shmbus__shm_reopen_readonly(rg->data_fd, &ro))) < 0)
    return rv;
  if ((rv = shmbus__fd_dup(rg->ctrl_fd, &c)) < 0) {
    shmbus__fd_close(ro);
    return rv;
  }
  *data_ro_fd = ro;
  *ctrl_fd = c;
  return 0;
}

int shmbus__region_data_fd_ro(const struct shmbus__region *rg, shmbus__shm_handle *fd) {
  if (!shmbus__handle_ok(rg->data_fd))
    return -EBADF;
  return region_shm_error(shmbus__shm_reopen_readonly(rg->data_fd, fd));
}

int shmbus__region_member_fd_ro(const struct shmbus__region *rg, uint32_t m,
                                shmbus__shm_handle *fd) {
  if (m >= SHMBUS__MAX_MEMBERS || !shmbus__handle_ok(rg->members[m].fd))
    return -EBADF;
  return region_shm_error(shmbus__shm_reopen_readonly(rg->members[m].fd, fd));
}

void shmbus__region_init(struct shmbus__region *rg) {
  region_reset(rg);
}

void shmbus__region_close(struct shmbus__region *rg) {
  uint32_t m;

  if (rg->data != NULL)
    shmbus__shm_unmap(rg->data, rg->data_len);
  for (m = 0; m < SHMBUS__MAX_MEMBERS; m++) {
    if (rg->members[m].map != NULL)
      shmbus__shm_unmap(rg->members[m].map, rg->layout.member_size);
    shmbus__fd_close(rg->members[m].fd);
  }
  shmbus__fd_close(rg->data_fd);
  region_reset(rg);
}
