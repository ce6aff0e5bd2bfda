/* msgpack_payload: msgpack objects as payloads (include/shmbus/msgpack.h),
 * on top of the public topic API.
 *
 * Publishing packs twice: once into a counter (to know the size and refuse
 * an object that does not fit before anything is claimed: a loan given back
 * would count as a lost message for every subscriber), once into the
 * loaned slot.
 *
 * Receiving peeks at the length with a zero-byte receive (-EMSGSIZE leaves
 * the message in place), allocates exactly that in a new zone, copies the
 * message in, checks its shape with shmbus__msgpack_scan and lets msgpack-c
 * build the objects in the same zone. */
#include <errno.h>
#include <string.h>

#include "proto.h"
#include "shmbus/error.h"
#include "shmbus/msgpack.h"

/* A packer sink over a fixed buffer, or a pure counter when p is NULL. */
struct mp_sink {
  char *p;
  size_t len;
  size_t cap;
};

static int mp_write(void *data, const char *buf, size_t len) {
  struct mp_sink *s = data;

  if (len > s->cap - s->len)
    return -1;
  if (s->p != NULL)
    memcpy(s->p + s->len, buf, len);
  s->len += len;
  return 0;
}

int shmbus_pub_publish_msgpack(shmbus_pub *pub, const msgpack_object *obj) {
  struct mp_sink sink = {NULL, 0, SIZE_MAX};
  msgpack_packer pk;
  void *slot;
  int rv;

  if (pub == NULL || obj == NULL)
    return -EINVAL;
  msgpack_packer_init(&pk, &sink, mp_write);
  if (msgpack_pack_object(&pk, *obj) != 0)
    return -EINVAL;
  if (sink.len > shmbus_pub_max_size(pub))
    return SHMBUS_ETOOBIG;
  if ((rv = shmbus_pub_loan(pub, sink.len, &slot)) < 0)
    return rv;
  sink.p = slot;
  sink.cap = sink.len;
  sink.len = 0;
  /* Same object, same bytes: this cannot overflow. Were it to (a caller
   * changing the object from another thread), the slot is given back. */
  if (msgpack_pack_object(&pk, *obj) != 0 || sink.len != sink.cap) {
    (void)shmbus_pub_cancel(pub);
    return -EINVAL;
  }
  return shmbus_pub_commit(pub, sink.len);
}

/* Unpacks zone-resident bytes `buf` into out (which takes the zone). */
static int mp_unpack_in(msgpack_zone *zone, const char *buf, size_t len, msgpack_unpacked *out) {
  msgpack_object obj;
  size_t off = 0;
  msgpack_unpack_return ur;

  if (len == 0 || shmbus__msgpack_scan(buf, len, &off, SHMBUS_MSGPACK_MAX_DEPTH) < 0 ||
      off != len) {
    msgpack_zone_free(zone);
    return -EBADMSG;
  }
  off = 0;
  ur = msgpack_unpack(buf, len, &off, zone, &obj);
  if (ur != MSGPACK_UNPACK_SUCCESS || off != len) {
    msgpack_zone_free(zone);
    return ur == MSGPACK_UNPACK_NOMEM_ERROR ? -ENOMEM : -EBADMSG;
  }
  out->zone = zone;
  out->data = obj;
  return 0;
}

/* A zone with one block big enough for `len` payload bytes plus room for
 * the objects, and the payload's place in it. */
static msgpack_zone *mp_zone(size_t len, char **buf) {
  msgpack_zone *zone = msgpack_zone_new(len + MSGPACK_ZONE_CHUNK_SIZE);
  if (zone == NULL)
    return NULL;
  if ((*buf = msgpack_zone_malloc_no_align(zone, len > 0 ? len : 1)) == NULL) {
    msgpack_zone_free(zone);
    return NULL;
  }
  return zone;
}

int shmbus_msgpack_unpack(const void *data, size_t len, msgpack_unpacked *out) {
  msgpack_zone *zone;
  char *buf;

  if (out == NULL || (data == NULL && len > 0))
    return -EINVAL;
  msgpack_unpacked_destroy(out);
  if ((zone = mp_zone(len, &buf)) == NULL)
    return -ENOMEM;
  if (len > 0)
    memcpy(buf, data, len);
  return mp_unpack_in(zone, buf, len, out);
}

/* Receives into `out`, waiting up to timeout_ms (0: not at all). */
static int mp_recv(shmbus_sub *sub, msgpack_unpacked *out, struct shmbus_msg_info *info,
                   int timeout_ms) {
  struct shmbus_msg_info mi;
  msgpack_zone *zone;
  char *buf;
  int rv;

  if (sub == NULL || out == NULL)
    return -EINVAL;
  msgpack_unpacked_destroy(out);
  for (;;) {
    /* A zero-byte buffer: -EMSGSIZE says a message of mi.len waits. */
    rv = timeout_ms == 0 ? shmbus_sub_try_recv(sub, NULL, 0, &mi)
                         : shmbus_sub_recv(sub, NULL, 0, &mi, timeout_ms);
    if (rv == 0) {
      if (info != NULL)
        *info = mi;
      return -EBADMSG; /* an empty payload is no msgpack object */
    }
    if (rv != -EMSGSIZE)
      return rv;
    if ((zone = mp_zone(mi.len, &buf)) == NULL)
      return -ENOMEM;
    rv = shmbus_sub_try_recv(sub, buf, mi.len, &mi);
    if (rv >= 0)
      break;
    msgpack_zone_free(zone);
    /* Overwritten by a larger message meanwhile (lossy): go again. */
    if (rv != -EMSGSIZE && rv != -EAGAIN)
      return rv;
  }
  if (info != NULL)
    *info = mi;
  if ((rv = mp_unpack_in(zone, buf, (size_t)rv, out)) < 0)
    return rv;
  return (int)mi.len;
}

int shmbus_sub_try_recv_msgpack(shmbus_sub *sub, msgpack_unpacked *out,
                                struct shmbus_msg_info *info) {
  return mp_recv(sub, out, info, 0);
}

int shmbus_sub_recv_msgpack(shmbus_sub *sub, msgpack_unpacked *out, struct shmbus_msg_info *info,
                            int timeout_ms) {
  return mp_recv(sub, out, info, timeout_ms);
}
