/* shmbus: msgpack payloads. Helpers that publish a msgpack-c object and
 * receive one, for programs that speak msgpack on their topics (the
 * `shmbus` CLI turns such payloads into JSON and back). Needs msgpack-c's
 * <msgpack.h> (Debian: libmsgpack-dev); include this header yourself, the
 * umbrella header does not.
 *
 * A payload is exactly one msgpack object. Bytes from shared memory are
 * untrusted: receiving checks them before msgpack-c sees them (every length
 * inside the payload, at most SHMBUS_MSGPACK_MAX_DEPTH nested containers,
 * no container declaring more elements than bytes are left), so a hostile
 * payload gives -EBADMSG, never a crash or a huge allocation.
 *
 * Publishing an object you built with msgpack_packer into a msgpack_sbuffer
 * needs no helper: shmbus_pub_publish(pub, sbuf.data, sbuf.size).
 *
 * Thread-safety: as the publisher or subscriber used (include/shmbus/bus.h);
 * shmbus_msgpack_unpack is thread-safe. */
#ifndef SHMBUS_MSGPACK_H
#define SHMBUS_MSGPACK_H

#include <msgpack.h>

#include "shmbus/bus.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Containers nested deeper than this are refused (msgpack-c's own limit). */
#define SHMBUS_MSGPACK_MAX_DEPTH 32u

/* Packs `obj` straight into the topic's next slot (no intermediate buffer)
 * and publishes it. `obj` is only read; the caller keeps it. Returns 0;
 * SHMBUS_ETOOBIG when the packed object is larger than the slot size
 * (nothing is published); otherwise as shmbus_pub_publish (SHMBUS_EFULL,
 * SHMBUS_ESTATE while a loan is open). */
SHMBUS_API int shmbus_pub_publish_msgpack(shmbus_pub *pub, const msgpack_object *obj);

/* Receives the next message and unpacks it into `out`, which the caller
 * initialised once with msgpack_unpacked_init. Ownership: on success
 * out->data and everything it points to (strings, bins, arrays, maps; the
 * payload bytes themselves are copied in too) live in out->zone, which
 * belongs to the caller: it stays valid until msgpack_unpacked_destroy(out)
 * or the next receive into `out`, which first releases the previous zone.
 * Call msgpack_unpacked_destroy once at the end.
 *
 * Returns the payload's length; -EAGAIN when no message is waiting;
 * -EBADMSG when the message is not exactly one well-formed msgpack object
 * within the limits above (it is consumed and counts as received; out is
 * left empty); -ENOMEM; SHMBUS_ECORRUPT. `info` may be NULL. */
SHMBUS_API int shmbus_sub_try_recv_msgpack(shmbus_sub *sub, msgpack_unpacked *out,
                                           struct shmbus_msg_info *info);

/* As shmbus_sub_try_recv_msgpack, but waits up to timeout_ms (-1: forever)
 * for a message; -ETIMEDOUT when none came. */
SHMBUS_API int shmbus_sub_recv_msgpack(shmbus_sub *sub, msgpack_unpacked *out,
                                       struct shmbus_msg_info *info, int timeout_ms);

/* Checks untrusted bytes as described above and unpacks them into `out`
 * (initialised with msgpack_unpacked_init; a previous zone is released).
 * The bytes are copied into out->zone: `data` may be freed afterwards.
 * Returns 0, -EBADMSG (not exactly one object within the limits; out is
 * left empty) or -ENOMEM. */
SHMBUS_API int shmbus_msgpack_unpack(const void *data, size_t len, msgpack_unpacked *out);

#ifdef __cplusplus
}
#endif

#endif /* SHMBUS_MSGPACK_H */
