/* region: one topic's shared memory, as two sealed memory files (see
 * layout.h): creating them, mapping them in another process from their fds,
 * and validating everything found there before the ring looks at it.
 *
 * Ownership: a region owns its mappings and the fds it keeps (-1 when it
 * keeps none). shmbus__region_close releases all of them; the memory itself
 * lives on while any other process maps it or holds an fd.
 * Thread-safety: create/open/close are not thread-safe for one region; the
 * ring view inside may be used by many threads (see ring.h).
 * Across fork(): the child inherits the mappings and fds; it may keep using
 * the region (and attach its own publishers and subscribers). */
#ifndef SHMBUS_REGION_H
#define SHMBUS_REGION_H

#include <stdbool.h>
#include <stdint.h>

#include "layout.h"
#include "ring.h"

/* What a process will do with a region; decides how the data file is
 * mapped. */
enum shmbus__role {
  SHMBUS__ROLE_PUBLISHER = 1, /* data read-write */
  SHMBUS__ROLE_SUBSCRIBER = 2 /* data read-only: slots cannot be forged */
};

struct shmbus__region {
  int data_fd; /* read-write data file (creator), else -1 */
  int ctrl_fd; /* control file (creator), else -1 */
  void *data;
  uint64_t data_len;
  void *ctrl;
  uint64_t ctrl_len;
  struct shmbus__ring ring; /* view over the mappings */
};

/* Creates a new, empty region with parameters `p`: two memory files with
 * every page reserved, mapped read-write, formatted. The region keeps both
 * fds, to hand them out. Errors: SHMBUS_EPARAM, -ENOMEM/-ENOSPC when shared
 * memory is short, -EMFILE. On failure nothing is left behind. */
int shmbus__region_create(struct shmbus__region *rg, const struct shmbus__params *p,
                          const char *debug_name);

/* Maps a region from its two fds (received from the daemon, or inherited)
 * for `role`, after validating both files and both headers. Does not take
 * ownership of the fds (the caller may close them after return; the
 * mappings stay). A subscriber may pass a read-only data fd; a publisher
 * needs a read-write one (-EACCES otherwise). Errors: SHMBUS_EBADREGION,
 * SHMBUS_EVERSION, -EBADF, -EACCES, -ENOMEM. */
int shmbus__region_open(struct shmbus__region *rg, int data_fd, int ctrl_fd,
                        enum shmbus__role role);

/* Gives the fds a subscriber should receive: a new read-only fd for the
 * data file and a dup of the control fd. The caller owns both. Only for a
 * region that keeps its fds (-EBADF otherwise). */
int shmbus__region_subscriber_fds(const struct shmbus__region *rg, int *data_ro_fd,
                                  int *ctrl_fd);

/* Unmaps and closes everything the region holds. Safe on a zeroed region
 * and twice. */
void shmbus__region_close(struct shmbus__region *rg);

#endif /* SHMBUS_REGION_H */
