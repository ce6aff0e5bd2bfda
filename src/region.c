/* region: topic memory files, mapped and validated. See region.h. */
#include "region.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "platform/platform.h"
#include "shmbus/error.h"

static void region_reset(struct shmbus__region *rg) {
  memset(rg, 0, sizeof(*rg));
  rg->data_fd = -1;
  rg->ctrl_fd = -1;
}

static int region_view(struct shmbus__region *rg) {
  int rv = shmbus__ring_view_init(&rg->ring, rg->data, rg->data_len, rg->ctrl, rg->ctrl_len,
                                  shmbus__page_size());
  if (rv == 0)
    rg->ring.backoff = shmbus__spin_backoff;
  return rv;
}

int shmbus__region_create(struct shmbus__region *rg, const struct shmbus__params *p,
                          const char *debug_name) {
  struct shmbus__layout l;
  char name[64];
  uint64_t nonce;
  int rv;

  region_reset(rg);
  if ((rv = shmbus__layout_compute(p, shmbus__page_size(), &l)) < 0)
    return rv;
  if ((rv = shmbus__random64(&nonce)) < 0)
    return rv;
  snprintf(name, sizeof(name), "shmbus:%s:data", debug_name ? debug_name : "");
  if ((rv = shmbus__shm_create(name, l.data_size, &rg->data_fd)) < 0)
    goto fail;
  snprintf(name, sizeof(name), "shmbus:%s:ctrl", debug_name ? debug_name : "");
  if ((rv = shmbus__shm_create(name, l.ctrl_size, &rg->ctrl_fd)) < 0)
    goto fail;
  if ((rv = shmbus__shm_map(rg->data_fd, l.data_size, true, &rg->data)) < 0)
    goto fail;
  rg->data_len = l.data_size;
  if ((rv = shmbus__shm_map(rg->ctrl_fd, l.ctrl_size, true, &rg->ctrl)) < 0)
    goto fail;
  rg->ctrl_len = l.ctrl_size;
  /* Fresh memory files read as zeroes, as format requires. */
  shmbus__ring_format(rg->data, rg->ctrl, &l, nonce, shmbus__clock_real_ns());
  if ((rv = region_view(rg)) < 0)
    goto fail;
  return 0;

fail:
  shmbus__region_close(rg);
  return rv;
}

int shmbus__region_open(struct shmbus__region *rg, int data_fd, int ctrl_fd,
                        enum shmbus__role role) {
  int rv;

  region_reset(rg);
  if (role != SHMBUS__ROLE_PUBLISHER && role != SHMBUS__ROLE_SUBSCRIBER)
    return -EINVAL;
  if ((rv = shmbus__shm_check(data_fd, &rg->data_len)) < 0)
    goto fail;
  if ((rv = shmbus__shm_check(ctrl_fd, &rg->ctrl_len)) < 0)
    goto fail;
  if ((rv = shmbus__shm_map(data_fd, rg->data_len, role == SHMBUS__ROLE_PUBLISHER, &rg->data)) < 0)
    goto fail;
  if ((rv = shmbus__shm_map(ctrl_fd, rg->ctrl_len, true, &rg->ctrl)) < 0)
    goto fail;
  if ((rv = region_view(rg)) < 0)
    goto fail;
  return 0;

fail:
  shmbus__region_close(rg);
  return rv;
}

int shmbus__region_subscriber_fds(const struct shmbus__region *rg, int *data_ro_fd,
                                  int *ctrl_fd) {
  int ro;
  int c;
  int rv;

  if (rg->data_fd < 0 || rg->ctrl_fd < 0)
    return -EBADF;
  if ((rv = shmbus__shm_reopen_readonly(rg->data_fd, &ro)) < 0)
    return rv;
  if ((rv = shmbus__fd_dup(rg->ctrl_fd, &c)) < 0) {
    shmbus__fd_close(ro);
    return rv;
  }
  *data_ro_fd = ro;
  *ctrl_fd = c;
  return 0;
}

void shmbus__region_close(struct shmbus__region *rg) {
  if (rg->data != NULL)
    shmbus__shm_unmap(rg->data, rg->data_len);
  if (rg->ctrl != NULL)
    shmbus__shm_unmap(rg->ctrl, rg->ctrl_len);
  shmbus__fd_close(rg->data_fd);
  shmbus__fd_close(rg->ctrl_fd);
  region_reset(rg);
}
