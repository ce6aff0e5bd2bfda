/* region: one topic's shared memory (see layout.h): the data file and the
 * member files, one per uid: creating them, mapping them in another process
 * from their fds, and checking every descriptor before the ring looks at
 * the memory behind it.
 *
 * Two ways to map a region, by how much the caller knows:
 *   - shmbus__region_attach: a participant, with the parameters from the
 *     daemon's reply (trusted: the daemon's uid was checked). It computes
 *     the layout, checks each descriptor (a sealed memfd of exactly the
 *     computed size) and never reads identity from shared memory, so a
 *     zeroed or forged header stops nobody.
 *   - shmbus__region_open: a daemon adopting files after a restart (and
 *     tests), with nothing but the memory to go by: validates the headers.
 *
 * Ownership: a region owns its mappings and the fds it keeps (-1 when it
 * keeps none). shmbus__region_close releases all of them; the memory itself
 * lives on while any other process maps it or holds an fd.
 * Thread-safety: not thread-safe for one region; the ring view inside may
 * be used by many threads (see ring.h) while no member is added.
 * Across fork(): the child inherits the mappings and fds; it may keep using
 * the region (and attach its own publishers and subscribers). */
#ifndef SHMBUS_REGION_H
#define SHMBUS_REGION_H

#include <stdbool.h>
#include <stdint.h>

#include "layout.h"
#include "platform/platform.h"
#include "ring.h"

/* One member file as the region holds it. */
struct shmbus__region_member {
  shmbus__shm_handle fd; /* kept handle (creator: read-write), else invalid */
  void *map;             /* NULL: not mapped */
  uint32_t uid;
  bool writable;
};

struct shmbus__region {
  shmbus__shm_handle data_fd; /* read-write data file (creator), else invalid */
  /* The own member file's fd when the region keeps it (creator: member 0);
   * the same descriptor as members[ring.own].fd, not a second one. */
  shmbus__shm_handle ctrl_fd;
  void *data;
  uint64_t data_len;
  void *ctrl; /* the own member file's mapping (members[ring.own].map) */
  uint64_t ctrl_len;
  struct shmbus__layout layout;
  uint64_t nonce; /* the creator's (or what the adopted header said) */
  struct shmbus__region_member members[SHMBUS__MAX_MEMBERS];
  struct shmbus__ring ring; /* view over the mappings */
};

/* Creates a new, empty region with parameters `p`: the data file and member
 * file 0 (of the calling process's uid), every page reserved, mapped
 * read-write, formatted. The region keeps the fds, to hand them out.
 * Errors: SHMBUS_EPARAM, -ENOMEM/-ENOSPC when shared memory is short,
 * -EMFILE. On failure nothing is left behind. */
int shmbus__region_create(struct shmbus__region *rg, const struct shmbus__params *p,
                          const char *debug_name);

/* Creator only: adds member file m for `uid` (a new file, formatted, kept
 * read-write). -EINVAL if m is out of range or taken. */
int shmbus__region_add_member(struct shmbus__region *rg, uint32_t m, uint32_t uid,
                              const char *debug_name);

/* Maps a region from the fds of its data file and of the caller's own
 * member file m, with the parameters the daemon gave (see the top). Does
 * not take ownership of the fds. A subscriber may pass a read-only data
 * fd; a publisher needs a read-write one (-EACCES otherwise); the member
 * file is mapped read-write. Errors: SHMBUS_EBADREGION (not a sealed memfd
 * of the computed size), SHMBUS_EPARAM, -EBADF, -EACCES, -ENOMEM. */
int shmbus__region_attach(struct shmbus__region *rg, const struct shmbus__params *p,
                          shmbus__shm_handle data_fd, shmbus__shm_handle member_fd, uint32_t m,
                          enum shmbus__role role);

/* Maps another uid's member file m read-only into the view (a publisher
 * learns it from a peer_join). Does not take the fd. 0 when mapped now or
 * already; SHMBUS_EBADREGION, -EINVAL, -ENOMEM. */
int shmbus__region_map_member(struct shmbus__region *rg, uint32_t m, shmbus__shm_handle fd);

/* Unmaps member file m (not the own one) and closes the fd kept for it.
 * Publishers call it when they know no subscriber there any more, the
 * daemon when no participant of that uid is left. -EINVAL otherwise. */
int shmbus__region_unmap_member(struct shmbus__region *rg, uint32_t m);

/* Maps a region from its data fd and one member fd for `role`, after
 * validating both files and both headers from memory (adoption after a
 * restart; tests). Does not take ownership of the fds. Errors as above
 * plus SHMBUS_EVERSION. */
int shmbus__region_open(struct shmbus__region *rg, shmbus__shm_handle data_fd,
                        shmbus__shm_handle ctrl_fd, enum shmbus__role role);

/* Adoption after a restart (daemon): adds the member file behind *fd,
 * validated from memory against the region (nonce, sizes), mapped
 * read-write; the region keeps the fd (*fd becomes -1). *m and *uid say
 * what the header claims. 0, or SHMBUS_EBADREGION/SHMBUS_EVERSION/
 * SHMBUS_EMISMATCH (another file already holds m). Adding the file the
 * region already holds as m is a no-op that leaves *fd alone. */
int shmbus__region_adopt_member(struct shmbus__region *rg, shmbus__shm_handle *fd, uint32_t *m,
                                uint32_t *uid);

/* Adoption (daemon): replaces a read-only data mapping (and the fd kept)
 * by a read-write one from *fd (the same region: checked by nonce); the
 * region keeps the fd (*fd becomes -1). */
int shmbus__region_upgrade_data(struct shmbus__region *rg, shmbus__shm_handle *fd);

/* Gives the fds a subscriber of the own member file's uid should receive:
 * a new read-only fd for the data file and a dup of the member fd. The
 * caller owns both. Only for a region that keeps its fds (-EBADF
 * otherwise). */
int shmbus__region_subscriber_fds(const struct shmbus__region *rg, shmbus__shm_handle *data_ro_fd,
                                  shmbus__shm_handle *ctrl_fd);

/* A new read-only handle of the data file, for a subscriber: it cannot map
 * the slots writable. The caller owns it. -EBADF when the region does not
 * keep the data file; SHMBUS_ENOPROC when the system cannot make one. */
int shmbus__region_data_fd_ro(const struct shmbus__region *rg, shmbus__shm_handle *fd);

/* A new read-only fd of member file m, for participants of other uids.
 * The caller owns it. -EBADF when the region does not keep that file. */
int shmbus__region_member_fd_ro(const struct shmbus__region *rg, uint32_t m,
                                shmbus__shm_handle *fd);

/* Unmaps and closes everything the region holds. Safe on an empty region
 * (shmbus__region_init, or one closed already); not on a zeroed struct,
 * whose handles are descriptor 0. */
void shmbus__region_close(struct shmbus__region *rg);

/* Makes rg an empty region (nothing mapped, no handles), on which
 * shmbus__region_close does nothing. A zeroed struct is not one: its
 * handles would be descriptor 0. Cannot fail. */
void shmbus__region_init(struct shmbus__region *rg);

#endif /* SHMBUS_REGION_H */
