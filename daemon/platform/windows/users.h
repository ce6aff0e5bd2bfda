/* users: the daemon-local numbers of user SIDs on Windows (users.c), for
 * the other files of the Windows host layer. */
#ifndef SHMBUSD_WIN_USERS_H
#define SHMBUSD_WIN_USERS_H

#include <stddef.h>
#include <stdint.h>

/* The number the daemon uses as the `uid` of the user whose SID is the
 * `len` bytes at `sid` (a valid SID): the same SID always gets the same
 * number, two SIDs never the same one (see users.c). Returns 0 with
 * *number, -EINVAL for a SID of a bad length, -EEXIST when the SID's
 * number is another SID's already (a collision of the 31-bit hash: that
 * user is refused), -ENOSPC when the table is full, -ENOMEM, or the error
 * of reading this process's own token (the table's first entry). */
int users_number(const void *sid, size_t len, uint32_t *number);

#endif /* SHMBUSD_WIN_USERS_H */
