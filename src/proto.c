/* proto: the control protocol's messages, encoded with msgpack-c, and one
 * datagram per message on a SOCK_SEQPACKET socket. See proto.h and
 * docs/protocol.md (normative).
 *
 * Both directions are driven by two tables: one row per wire key (its name,
 * its kind and where it lives in struct shmbus__msg) and one row per message
 * type (its name, the keys it must carry, the keys it may carry, its
 * direction and its descriptor count). The encoder writes exactly the keys of
 * the type's row; the decoder fills exactly those and ignores the rest, so a
 * key is added to the protocol by adding it to the tables.
 *
 * Decoding is of untrusted input and is a pure function over a buffer (fit
 * for a fuzzer). It runs in two steps:
 *   1. proto_scan walks the raw bytes without allocating and checks the
 *      shape: one map, containers at most PROTO_MAX_DEPTH deep with at most
 *      PROTO_MAX_ENTRIES entries each, every declared length inside the
 *      buffer, nothing after the map. msgpack-c allocates an array for a
 *      container's declared size before it reads the elements, so without
 *      this step a 5-byte header could make it ask for 128 GiB; after it,
 *      what msgpack-c allocates is bounded by a small multiple of the input.
 *   2. msgpack_unpack_next builds the object tree in a zone (freed on every
 *      path), and proto_fill reads the known keys into the struct, checking
 *      type and bound of each.
 * Finally proto_check applies the rules both directions share (roles,
 * error codes, topic names, request ids), so the encoder refuses what the
 * decoder on the other side would reject. Decoding returns 0, -EPROTO,
 * SHMBUS_EPROTOVER (see proto_fill), or -ENOMEM when msgpack-c cannot get
 * its zone.
 *
 * The socket calls (sendmsg/recvmsg with SCM_RIGHTS) are the platform's
 * shmbus__sock_send and shmbus__sock_recv; this module only frames. */
#define _GNU_SOURCE
#include "proto.h"

#include <errno.h>
#include <msgpack.h>
#include <string.h>

#include "pattern.h"
#include "platform/platform.h"
#include "shmbus/error.h"

/* Shape limits for decoding. The protocol's maps are flat; nesting is only
 * tolerated inside unknown keys (forward compatibility), and not much. The
 * top-level map counts as depth 1. */
#define PROTO_MAX_DEPTH 4u
#define PROTO_MAX_ENTRIES 64u

/* Room for descriptors beyond the most any message carries, so that a
 * sender attaching too many is seen (and its fds closed) rather than
 * truncated silently. */
#define PROTO_EXTRA_FDS 8u
#define PROTO_RECV_FDS (SHMBUS__PROTO_MAX_FDS + PROTO_EXTRA_FDS)

/* ---- the tables ---------------------------------------------------------- */

enum proto_kind {
  PROTO_U32,  /* uint, 0..UINT32_MAX */
  PROTO_U64,  /* uint */
  PROTO_BOOL, /* bool */
  PROTO_STR,  /* str, < the field's size, no NUL inside */
  PROTO_ROLE, /* str "pub" or "sub" into a uint32_t enum shmbus__role */
  PROTO_CODE  /* negative int, >= INT32_MIN, into an int32_t */
};

enum proto_key_id {
  PK_NAME,
  PK_TOPIC,
  PK_ROLE,
  PK_TOPIC_ID,
  PK_INDEX,
  PK_HISTORY,
  PK_PEERS,
  PK_CLIENT_ID,
  PK_DAEMON_PID,
  PK_TOPICS,
  PK_CLIENTS,
  PK_UPTIME_MS,
  PK_SLOTS,
  PK_SLOT_SIZE,
  PK_MAX_SUBS,
  PK_MAX_PUBS,
  PK_RELIABLE,
  PK_RETAIN,
  PK_CODE,
  PK_TEXT,
  PK_FILTER,
  PK_SIZE,
  PK_MEMBER,
  PK_DEADLINE_MS,
  PK_WATCH,
  PK_PATTERN,
  PK_COUNT
};
_Static_assert(PK_COUNT <= 32, "key sets are 32-bit masks");

#define PB(k) (1u << PK_##k)
/* The four parameter keys travel together: all of them or none. */
#define PROTO_PARAMS (PB(SLOTS) | PB(SLOT_SIZE) | PB(MAX_SUBS) | PB(MAX_PUBS))

struct proto_key {
  const char *name;
  uint8_t kind;  /* enum proto_kind */
  uint16_t off;  /* offset of the field in struct shmbus__msg */
  uint16_t size; /* size of the field (strings: including the NUL) */
};

#define PROTO_FIELD(f) offsetof(struct shmbus__msg, f), sizeof(((struct shmbus__msg *)0)->f)

static const struct proto_key proto_keys[PK_COUNT] = {
    [PK_NAME] = {"name", PROTO_STR, PROTO_FIELD(name)},
    [PK_TOPIC] = {"topic", PROTO_STR, PROTO_FIELD(topic)},
    [PK_ROLE] = {"role", PROTO_ROLE, PROTO_FIELD(role)},
    [PK_TOPIC_ID] = {"topic_id", PROTO_U32, PROTO_FIELD(topic_id)},
    [PK_INDEX] = {"index", PROTO_U32, PROTO_FIELD(index)},
    [PK_HISTORY] = {"history", PROTO_U32, PROTO_FIELD(history)},
    [PK_PEERS] = {"peers", PROTO_U32, PROTO_FIELD(peers)},
    [PK_CLIENT_ID] = {"client_id", PROTO_U32, PROTO_FIELD(client_id)},
    [PK_DAEMON_PID] = {"daemon_pid", PROTO_U32, PROTO_FIELD(daemon_pid)},
    [PK_TOPICS] = {"topics", PROTO_U32, PROTO_FIELD(topics)},
    [PK_CLIENTS] = {"clients", PROTO_U32, PROTO_FIELD(clients)},
    [PK_UPTIME_MS] = {"uptime_ms", PROTO_U64, PROTO_FIELD(uptime_ms)},
    [PK_SLOTS] = {"slots", PROTO_U32, PROTO_FIELD(params.slot_count)},
    [PK_SLOT_SIZE] = {"slot_size", PROTO_U32, PROTO_FIELD(params.slot_capacity)},
    [PK_MAX_SUBS] = {"max_subs", PROTO_U32, PROTO_FIELD(params.max_subs)},
    [PK_MAX_PUBS] = {"max_pubs", PROTO_U32, PROTO_FIELD(params.max_pubs)},
    [PK_RELIABLE] = {"reliable", PROTO_BOOL, PROTO_FIELD(reliable)},
    [PK_RETAIN] = {"retain", PROTO_BOOL, PROTO_FIELD(retain)},
    [PK_CODE] = {"code", PROTO_CODE, PROTO_FIELD(code)},
    [PK_TEXT] = {"text", PROTO_STR, PROTO_FIELD(text)},
    [PK_FILTER] = {"filter", PROTO_STR, PROTO_FIELD(filter)},
    [PK_SIZE] = {"size", PROTO_U64, PROTO_FIELD(size)},
    [PK_MEMBER] = {"member", PROTO_U32, PROTO_FIELD(member)},
    [PK_DEADLINE_MS] = {"deadline_ms", PROTO_U32, PROTO_FIELD(deadline_ms)},
    [PK_WATCH] = {"watch", PROTO_U32, PROTO_FIELD(watch_id)},
    [PK_PATTERN] = {"pattern", PROTO_STR, PROTO_FIELD(pattern)},
};

/* Direction decides the id rule: a request needs a non-zero id (the reply
 * echoes it, and 0 would read as an event), an event carries 0, a reply
 * carries whatever the request had (an error answering an unreadable
 * request may carry 0). */
enum proto_dir { PROTO_REQUEST, PROTO_REPLY, PROTO_EVENT };

struct proto_type {
  const char *name;
  uint8_t dir;  /* enum proto_dir */
  uint8_t nfds; /* descriptors attached, exactly */
  uint32_t req; /* keys that must be present */
  uint32_t opt; /* keys that may be absent (decoded as 0/false/""); always encoded,
                 * except the parameters, which are encoded when msg.has says so */
};

#define PROTO_RECORD (PB(TOPIC_ID) | PB(ROLE) | PB(INDEX))

static const struct proto_type proto_types[SHMBUS__MSG_TYPE_COUNT] = {
    [SHMBUS__MSG_HELLO] = {"hello", PROTO_REQUEST, 0, PB(NAME), 0},
    [SHMBUS__MSG_OPEN] = {"open", PROTO_REQUEST, 1, PB(TOPIC) | PB(ROLE),
                          PROTO_PARAMS | PB(RELIABLE) | PB(HISTORY) | PB(RETAIN) | PB(DEADLINE_MS)},
    [SHMBUS__MSG_ADOPT] = {"adopt", PROTO_REQUEST, 3,
                           PB(TOPIC) | PB(ROLE) | PB(INDEX) | PROTO_PARAMS, 0},
    [SHMBUS__MSG_CLOSE] = {"close", PROTO_REQUEST, 0, PROTO_RECORD, 0},
    [SHMBUS__MSG_STATUS] = {"status", PROTO_REQUEST, 0, 0, 0},
    [SHMBUS__MSG_STOP] = {"stop", PROTO_REQUEST, 0, 0, 0},
    [SHMBUS__MSG_SNAPSHOT] = {"snapshot", PROTO_REQUEST, 0, 0, PB(FILTER)},
    [SHMBUS__MSG_WELCOME] = {"welcome", PROTO_REPLY, 0, PB(CLIENT_ID) | PB(DAEMON_PID), 0},
    [SHMBUS__MSG_OPENED] = {"opened", PROTO_REPLY, 2, PROTO_RECORD | PROTO_PARAMS | PB(PEERS),
                            PB(MEMBER) | PB(DEADLINE_MS)},
    [SHMBUS__MSG_OK] = {"ok", PROTO_REPLY, 0, 0, 0},
    [SHMBUS__MSG_ERROR] = {"error", PROTO_REPLY, 0, PB(CODE), PB(TEXT)},
    [SHMBUS__MSG_STATUS_REPLY] = {"status_reply", PROTO_REPLY, 0,
                                  PB(DAEMON_PID) | PB(TOPICS) | PB(CLIENTS) | PB(UPTIME_MS), 0},
    [SHMBUS__MSG_SNAPSHOT_REPLY] = {"snapshot_reply", PROTO_REPLY, 1, PB(SIZE), 0},
    [SHMBUS__MSG_PEER_JOIN] = {"peer_join", PROTO_EVENT, 1, PROTO_RECORD, 0},
    [SHMBUS__MSG_PEER_LEAVE] = {"peer_leave", PROTO_EVENT, 0, PROTO_RECORD, 0},
    [SHMBUS__MSG_REMOVE] = {"remove", PROTO_REQUEST, 0, PB(TOPIC), 0},
    [SHMBUS__MSG_WATCH] = {"watch", PROTO_REQUEST, 0, PB(WATCH) | PB(PATTERN), 0},
    [SHMBUS__MSG_UNWATCH] = {"unwatch", PROTO_REQUEST, 0, PB(WATCH), 0},
    [SHMBUS__MSG_TOPIC_UP] = {"topic_up", PROTO_EVENT, 0, PB(WATCH) | PB(TOPIC), 0},
    [SHMBUS__MSG_TOPIC_DOWN] = {"topic_down", PROTO_EVENT, 0, PB(WATCH) | PB(TOPIC), 0},
};

static bool proto_type_known(uint32_t type) {
  return type > SHMBUS__MSG_NONE && type < SHMBUS__MSG_TYPE_COUNT;
}

/* ---- messages -------------------------------------------------------------- */

void shmbus__msg_init(struct shmbus__msg *m, uint32_t type, uint32_t id) {
  unsigned i;

  memset(m, 0, sizeof(*m));
  m->type = type;
  m->id = id;
  for (i = 0; i < SHMBUS__PROTO_MAX_FDS; i++)
    m->fds[i] = SHMBUS__OS_HANDLE_INVALID;
}

uint32_t shmbus__msg_fd_count(uint32_t type, uint32_t role) {
  /* A peer_join about a subscriber carries its uid's member file (read-only)
   * beside its eventfd; publishers map it to see that uid's records. */
  if (type == SHMBUS__MSG_PEER_JOIN && role == SHMBUS__ROLE_SUB)
    return 2;
  return proto_type_known(type) ? proto_types[type].nfds : 0;
}

void shmbus__msg_close_fds(struct shmbus__msg *m) {
  unsigned i;

  for (i = 0; i < SHMBUS__PROTO_MAX_FDS; i++) {
    shmbus__fd_close(m->fds[i]);
    m->fds[i] = SHMBUS__OS_HANDLE_INVALID;
  }
  m->nfds = 0;
}

/* ---- topic names ------------------------------------------------------------- */

static bool proto_topic_char(char c) {
  /* Spelled out rather than isalnum(), which follows the locale. */
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

int shmbus__topic_validate(const char *name, bool allow_sys) {
  size_t len, i, seg = 0;

  if (name == NULL)
    return SHMBUS_EBADNAME;
  len = strnlen(name, SHMBUS__TOPIC_MAX + 1);
  if (len == 0 || len > SHMBUS__TOPIC_MAX)
    return SHMBUS_EBADNAME;
  for (i = 0; i <= len; i++) {
    if (i == len || name[i] == '/') {
      /* No empty segment, and no "." or "..": a name never reads as a
       * path, should anything ever turn one into a path. */
      if (seg == 0 || (seg == 1 && name[i - 1] == '.') ||
          (seg == 2 && name[i - 1] == '.' && name[i - 2] == '.'))
        return SHMBUS_EBADNAME;
      seg = 0;
      continue;
    }
    if (!(proto_topic_char(name[i]) || (name[i] == '$' && i == 0)))
      return SHMBUS_EBADNAME;
    seg++;
  }
  /* The whole "$sys" first segment is the daemon's, including "$sys" itself. */
  if (!allow_sys && strncmp(name, "$sys", 4) == 0 && (name[4] == '/' || name[4] == '\0'))
    return SHMBUS_EBADNAME;
  return 0;
}

/* ---- rules shared by encoder and decoder ----------------------------------- */

/* Checks the fields named by `keys` (and the id) of a message of type `ty`.
 * Returns 0 or -1; the caller picks the code (-EINVAL when encoding,
 * -EPROTO when decoding). */
static int proto_check(const struct shmbus__msg *m, const struct proto_type *ty, uint32_t keys) {
  const struct proto_key *k;
  const char *s;
  unsigned i;

  if (ty->dir == PROTO_REQUEST && m->id == 0)
    return -1;
  if (ty->dir == PROTO_EVENT && m->id != 0)
    return -1;
  for (i = 0; i < PK_COUNT; i++) {
    if (!(keys & (1u << i)))
      continue;
    k = &proto_keys[i];
    switch (k->kind) {
    case PROTO_STR:
      s = (const char *)m + k->off;
      if (strnlen(s, k->size) >= k->size)
        return -1;
      break;
    case PROTO_ROLE:
      if (m->role != SHMBUS__ROLE_PUB && m->role != SHMBUS__ROLE_SUB)
        return -1;
      break;
    case PROTO_CODE:
      if (m->code >= 0)
        return -1;
      break;
    default:
      break;
    }
  }
  /* The daemon decides about "$sys/" itself; here only the syntax counts. */
  if ((keys & PB(TOPIC)) && shmbus__topic_validate(m->topic, true) < 0)
    return -1;
  if ((keys & PB(FILTER)) && m->filter[0] != '\0' && shmbus__topic_validate(m->filter, true) < 0)
    return -1;
  if ((keys & PB(PATTERN)) && shmbus__pattern_validate(m->pattern) < 0)
    return -1;
  return 0;
}

/* ---- encoding ---------------------------------------------------------------- */

/* A fixed output buffer for msgpack_packer. Once a write did not fit, every
 * later one fails too, so a short key after a long string cannot slip in
 * and the result is never a valid-looking prefix. */
struct proto_out {
  char *buf;
  size_t len;
  size_t cap;
  bool overflow;
};

static int proto_write(void *data, const char *b, size_t n) {
  struct proto_out *o = data;

  if (o->overflow || n > o->cap - o->len) {
    o->overflow = true;
    return -1;
  }
  if (n > 0)
    memcpy(o->buf + o->len, b, n);
  o->len += n;
  return 0;
}

static void proto_pack_cstr(msgpack_packer *pk, const char *s, size_t n) {
  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s, n);
}

static void proto_pack_field(msgpack_packer *pk, const struct shmbus__msg *m,
                             const struct proto_key *k) {
  const char *field = (const char *)m + k->off;
  uint32_t u32;
  uint64_t u64;
  int32_t i32;
  bool b;

  proto_pack_cstr(pk, k->name, strlen(k->name));
  switch (k->kind) {
  case PROTO_U32:
    memcpy(&u32, field, sizeof(u32));
    msgpack_pack_uint32(pk, u32);
    break;
  case PROTO_U64:
    memcpy(&u64, field, sizeof(u64));
    msgpack_pack_uint64(pk, u64);
    break;
  case PROTO_BOOL:
    memcpy(&b, field, sizeof(b));
    if (b)
      msgpack_pack_true(pk);
    else
      msgpack_pack_false(pk);
    break;
  case PROTO_STR:
    proto_pack_cstr(pk, field, strlen(field));
    break;
  case PROTO_ROLE:
    proto_pack_cstr(pk, m->role == SHMBUS__ROLE_PUB ? "pub" : "sub", 3);
    break;
  case PROTO_CODE:
    memcpy(&i32, field, sizeof(i32));
    msgpack_pack_int32(pk, i32);
    break;
  }
}

int shmbus__proto_encode(const struct shmbus__msg *m, void *buf, size_t cap) {
  struct proto_out out = {buf, 0, cap, false};
  const struct proto_type *ty;
  msgpack_packer pk;
  uint32_t keys;
  unsigned i;

  if (!proto_type_known(m->type))
    return -EINVAL;
  ty = &proto_types[m->type];
  keys = ty->req | ty->opt;
  /* Optional parameters go out only when the caller says they are set;
   * required ones always do (the decoder then sets HAS_PARAMS). */
  if (!(ty->req & PROTO_PARAMS) && !(m->has & SHMBUS__HAS_PARAMS))
    keys &= ~PROTO_PARAMS;
  if (proto_check(m, ty, keys) < 0)
    return -EINVAL;

  msgpack_packer_init(&pk, &out, proto_write);
  msgpack_pack_map(&pk, 3 + (size_t)__builtin_popcount(keys));
  proto_pack_cstr(&pk, "v", 1);
  msgpack_pack_uint32(&pk, SHMBUS__PROTO_VERSION);
  proto_pack_cstr(&pk, "t", 1);
  proto_pack_cstr(&pk, ty->name, strlen(ty->name));
  proto_pack_cstr(&pk, "id", 2);
  msgpack_pack_uint32(&pk, m->id);
  for (i = 0; i < PK_COUNT; i++)
    if (keys & (1u << i))
      proto_pack_field(&pk, m, &proto_keys[i]);
  if (out.overflow)
    return -EMSGSIZE;
  /* Cannot happen with the bounded fields, but a datagram over the limit
   * would be cut by the receiver, so refuse it here. */
  if (out.len > SHMBUS__PROTO_MAX_MSG)
    return -EMSGSIZE;
  return (int)out.len;
}

/* ---- decoding: step 1, the shape ------------------------------------------- */

/* Reads a big-endian length of `width` bytes at *off. */
static int proto_be(const uint8_t *p, size_t len, size_t *off, unsigned width, size_t *out) {
  size_t v = 0;
  unsigned i;

  if (width > len - *off)
    return -EPROTO;
  for (i = 0; i < width; i++)
    v = (v << 8) | p[*off + i];
  *off += width;
  *out = v;
  return 0;
}

/* Shape limits of one scan: containers nest at most max_depth deep (the
 * outermost counts as 1) and hold at most max_entries entries each. */
struct proto_limits {
  unsigned max_depth;
  size_t max_entries;
};

/* Checks that one msgpack object starts at *off and lies inside len, and
 * moves *off past it. `depth` is the number of containers around it. No
 * allocation; recursion is bounded by lim->max_depth. */
static int proto_scan(const uint8_t *p, size_t len, size_t *off, unsigned depth,
                      const struct proto_limits *lim) {
  size_t o = *off, n = 0, skip = 0, items, i;
  bool container = false, map = false;
  unsigned width = 0, extra = 0;
  uint8_t b;
  int rv;

  if (o >= len)
    return -EPROTO;
  b = p[o++];
  if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
    skip = 0; /* fixint, nil, bool */
  } else if (b <= 0x8f) {
    container = map = true;
    n = b & 0x0f;
  } else if (b <= 0x9f) {
    container = true;
    n = b & 0x0f;
  } else if (b <= 0xbf) {
    skip = b & 0x1f; /* fixstr */
  } else {
    /* One line per format reads as the msgpack spec's table does. */
    /* clang-format off */
    switch (b) {
    case 0xc4: case 0xd9: width = 1; break;              /* bin8, str8 */
    case 0xc5: case 0xda: width = 2; break;              /* bin16, str16 */
    case 0xc6: case 0xdb: width = 4; break;              /* bin32, str32 */
    case 0xc7: width = 1; extra = 1; break;              /* ext8: + type byte */
    case 0xc8: width = 2; extra = 1; break;              /* ext16 */
    case 0xc9: width = 4; extra = 1; break;              /* ext32 */
    case 0xcc: case 0xd0: skip = 1; break;               /* (u)int8 */
    case 0xcd: case 0xd1: skip = 2; break;               /* (u)int16 */
    case 0xca: case 0xce: case 0xd2: skip = 4; break;    /* float32, (u)int32 */
    case 0xcb: case 0xcf: case 0xd3: skip = 8; break;    /* float64, (u)int64 */
    case 0xd4: skip = 2; break;                          /* fixext1..16: + type byte */
    case 0xd5: skip = 3; break;
    case 0xd6: skip = 5; break;
    case 0xd7: skip = 9; break;
    case 0xd8: skip = 17; break;
    case 0xdc: container = true; width = 2; break;       /* array16 */
    case 0xdd: container = true; width = 4; break;       /* array32 */
    case 0xde: container = map = true; width = 2; break; /* map16 */
    case 0xdf: container = map = true; width = 4; break; /* map32 */
    default: return -EPROTO;                             /* 0xc1: never used */
    }
    /* clang-format on */
    if (width > 0) {
      if ((rv = proto_be(p, len, &o, width, container ? &n : &skip)) < 0)
        return rv;
      skip += extra;
    }
  }
  if (!container) {
    if (skip > len - o)
      return -EPROTO;
    *off = o + skip;
    return 0;
  }
  if (depth + 1 > lim->max_depth || n > lim->max_entries)
    return -EPROTO;
  /* Every element takes at least one byte: a count beyond what is left is
   * a lie, and refusing it here bounds what msgpack-c allocates. */
  items = map ? 2 * n : n;
  if (items > len - o)
    return -EPROTO;
  for (i = 0; i < items; i++)
    if ((rv = proto_scan(p, len, &o, depth + 1, lim)) < 0)
      return rv;
  *off = o;
  return 0;
}

int shmbus__msgpack_scan(const void *buf, size_t len, size_t *off, unsigned max_depth) {
  const struct proto_limits lim = {max_depth, SIZE_MAX};
  return proto_scan(buf, len, off, 0, &lim);
}

/* ---- decoding: step 2, the fields ------------------------------------------ */

static bool proto_str_is(const msgpack_object *o, const char *s) {
  size_t n = strlen(s);
  return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
         (n == 0 || memcmp(o->via.str.ptr, s, n) == 0);
}

static int proto_get_u32(const msgpack_object *o, uint32_t *out) {
  if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 > UINT32_MAX)
    return -EPROTO;
  *out = (uint32_t)o->via.u64;
  return 0;
}

/* Reads one known key's value into its field. */
static int proto_get_field(const msgpack_object *o, const struct proto_key *k,
                           struct shmbus__msg *m) {
  char *field = (char *)m + k->off;
  uint32_t u32;
  int32_t i32;
  bool b;

  switch (k->kind) {
  case PROTO_U32:
    if (proto_get_u32(o, &u32) < 0)
      return -EPROTO;
    memcpy(field, &u32, sizeof(u32));
    return 0;
  case PROTO_U64:
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
      return -EPROTO;
    memcpy(field, &o->via.u64, sizeof(uint64_t));
    return 0;
  case PROTO_BOOL:
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
      return -EPROTO;
    b = o->via.boolean;
    memcpy(field, &b, sizeof(b));
    return 0;
  case PROTO_STR:
    /* The struct keeps C strings: a NUL inside would silently cut the
     * string (a topic "a\0b" would act as "a"), so it is refused. */
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= k->size ||
        (o->via.str.size > 0 && memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL))
      return -EPROTO;
    if (o->via.str.size > 0)
      memcpy(field, o->via.str.ptr, o->via.str.size);
    field[o->via.str.size] = '\0';
    return 0;
  case PROTO_ROLE:
    if (proto_str_is(o, "pub"))
      m->role = SHMBUS__ROLE_PUB;
    else if (proto_str_is(o, "sub"))
      m->role = SHMBUS__ROLE_SUB;
    else
      return -EPROTO;
    return 0;
  case PROTO_CODE:
    /* msgpack-c reports any non-negative value as POSITIVE_INTEGER, so a
     * NEGATIVE_INTEGER is always < 0. */
    if (o->type != MSGPACK_OBJECT_NEGATIVE_INTEGER || o->via.i64 < INT32_MIN)
      return -EPROTO;
    i32 = (int32_t)o->via.i64;
    memcpy(field, &i32, sizeof(i32));
    return 0;
  }
  return -EPROTO;
}

/* Fills `m` from a decoded map. `m` is zeroed by the caller. */
static int proto_fill(const msgpack_object_map *map, struct shmbus__msg *m) {
  const msgpack_object *v = NULL, *t = NULL, *id = NULL, *key, *val;
  const struct proto_type *ty;
  uint32_t allowed, seen = 0;
  uint32_t i, type, k;
  int rv;

  /* Pass 1: the header keys, which say how to read the others. Every key
   * must be a string, and no header key may appear twice (two readers of
   * one datagram must never see different messages). */
  for (i = 0; i < map->size; i++) {
    key = &map->ptr[i].key;
    val = &map->ptr[i].val;
    if (key->type != MSGPACK_OBJECT_STR)
      return -EPROTO;
    if (proto_str_is(key, "v")) {
      if (v != NULL)
        return -EPROTO;
      v = val;
    } else if (proto_str_is(key, "t")) {
      if (t != NULL)
        return -EPROTO;
      t = val;
    } else if (proto_str_is(key, "id")) {
      if (id != NULL)
        return -EPROTO;
      id = val;
    }
  }
  if (v == NULL || t == NULL || id == NULL)
    return -EPROTO;
  if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
    return -EPROTO;
  if (v->via.u64 != SHMBUS__PROTO_VERSION) {
    /* Another version may mean other keys: nothing else is interpreted,
     * except the id when it reads as one, so the reply can echo it. */
    if (proto_get_u32(id, &m->id) < 0)
      m->id = 0;
    return SHMBUS_EPROTOVER;
  }
  if ((rv = proto_get_u32(id, &m->id)) < 0)
    return rv;
  for (type = SHMBUS__MSG_NONE + 1; type < SHMBUS__MSG_TYPE_COUNT; type++)
    if (proto_str_is(t, proto_types[type].name))
      break;
  if (type == SHMBUS__MSG_TYPE_COUNT)
    return -EPROTO;
  m->type = type;
  ty = &proto_types[type];
  allowed = ty->req | ty->opt;

  /* Pass 2: the keys this type knows; any other key is ignored, whatever
   * its type (it may be meant for a newer reader). */
  for (i = 0; i < map->size; i++) {
    key = &map->ptr[i].key;
    for (k = 0; k < PK_COUNT; k++)
      if ((allowed & (1u << k)) && proto_str_is(key, proto_keys[k].name))
        break;
    if (k == PK_COUNT)
      continue;
    if (seen & (1u << k))
      return -EPROTO;
    seen |= 1u << k;
    if ((rv = proto_get_field(&map->ptr[i].val, &proto_keys[k], m)) < 0)
      return rv;
  }
  if ((seen & ty->req) != ty->req)
    return -EPROTO;
  if ((seen & PROTO_PARAMS) != 0) {
    if ((seen & PROTO_PARAMS) != PROTO_PARAMS)
      return -EPROTO;
    m->has |= SHMBUS__HAS_PARAMS;
  }
  if (proto_check(m, ty, seen) < 0)
    return -EPROTO;
  return 0;
}

/* The control protocol's limits: flat maps, little nesting. */
static const struct proto_limits proto_limits = {PROTO_MAX_DEPTH, PROTO_MAX_ENTRIES};

int shmbus__proto_decode(const void *buf, size_t len, struct shmbus__msg *m) {
  shmbus__os_handle fds[SHMBUS__PROTO_MAX_FDS];
  msgpack_unpacked up;
  msgpack_unpack_return ur;
  uint32_t nfds = m->nfds;
  size_t off = 0;
  uint8_t first;
  int rv;

  /* The descriptors belong to the caller (proto_recv fills them after a
   * successful decode): keep them across the reset. */
  memcpy(fds, m->fds, sizeof(fds));
  memset(m, 0, sizeof(*m));
  memcpy(m->fds, fds, sizeof(fds));
  m->nfds = nfds;

  if (buf == NULL || len == 0 || len > SHMBUS__PROTO_MAX_MSG)
    return -EPROTO;
  first = *(const uint8_t *)buf;
  if (!((first >= 0x80 && first <= 0x8f) || first == 0xde || first == 0xdf))
    return -EPROTO;
  if ((rv = proto_scan(buf, len, &off, 0, &proto_limits)) < 0)
    return rv;
  if (off != len)
    return -EPROTO; /* trailing bytes after the map */

  msgpack_unpacked_init(&up);
  off = 0;
  ur = msgpack_unpack_next(&up, buf, len, &off);
  if (ur != MSGPACK_UNPACK_SUCCESS || off != len || up.data.type != MSGPACK_OBJECT_MAP) {
    /* After the shape check only memory can fail here: msgpack-c reports a
     * zone it could not create as NOMEM, and an allocation that failed in
     * the middle of the parse as PARSE_ERROR (then called malformed). */
    rv = ur == MSGPACK_UNPACK_NOMEM_ERROR ? -ENOMEM : -EPROTO;
    goto fail;
  }
  if ((rv = proto_fill(&up.data.via.map, m)) < 0)
    goto fail;
  rv = 0;
fail:
  msgpack_unpacked_destroy(&up);
  return rv;
}

/* ---- the socket -------------------------------------------------------------- */

int shmbus__proto_send(shmbus__conn_handle sock, const struct shmbus__msg *m) {
  char buf[SHMBUS__PROTO_MAX_MSG];
  unsigned i;
  int n, sent;

  if (!proto_type_known(m->type) || m->nfds != shmbus__msg_fd_count(m->type, m->role))
    return -EINVAL;
  for (i = 0; i < m->nfds; i++)
    if (!shmbus__handle_ok(m->fds[i]))
      return -EINVAL;
  if ((n = shmbus__proto_encode(m, buf, sizeof(buf))) < 0)
    return n;
  if ((sent = shmbus__sock_send(sock, buf, (size_t)n, m->fds, m->nfds)) < 0)
    return sent;
  /* SOCK_SEQPACKET sends a datagram whole or not at all. */
  if (sent != n)
    return -EMSGSIZE;
  return 0;
}

int shmbus__proto_recv(shmbus__conn_handle sock, struct shmbus__msg *m) {
  char buf[SHMBUS__PROTO_MAX_MSG];
  shmbus__os_handle fds[PROTO_RECV_FDS];
  unsigned nfds = 0, i;
  bool truncated = false;
  int got, rv;

  for (i = 0; i < SHMBUS__PROTO_MAX_FDS; i++)
    m->fds[i] = SHMBUS__OS_HANDLE_INVALID;
  m->nfds = 0;

  /* From a successful receive on, the descriptors are ours, and each
   * failure path below closes them all. */
  if ((got = shmbus__sock_recv(sock, buf, sizeof(buf), fds, PROTO_RECV_FDS, &nfds, &truncated)) < 0)
    return got;
  if (truncated) {
    rv = -EPROTO;
    goto fail;
  }
  /* On SOCK_SEQPACKET a zero-length read is the end of the stream. */
  if (got == 0) {
    rv = -EPIPE;
    goto fail;
  }
  if ((rv = shmbus__proto_decode(buf, (size_t)got, m)) < 0)
    goto fail;
  if (nfds != shmbus__msg_fd_count(m->type, m->role)) {
    rv = -EPROTO;
    goto fail;
  }
  for (i = 0; i < nfds; i++)
    m->fds[i] = fds[i];
  m->nfds = nfds;
  return 0;
fail:
  for (i = 0; i < nfds; i++)
    shmbus__fd_close(fds[i]);
  return rv;
}
