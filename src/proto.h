/* proto: the control protocol between participants and shmbusd. Each
 * control message is one SOCK_SEQPACKET datagram holding one msgpack map,
 * with up to SHMBUS__PROTO_MAX_FDS descriptors attached (SCM_RIGHTS).
 * docs/protocol.md is the normative description; this header is its C face.
 *
 * Everything decoded here comes from another process and is untrusted: the
 * decoder bounds every string and number, rejects unknown types, wrong
 * field types, a wrong protocol version and a wrong descriptor count for
 * the message type, and never reads beyond the datagram.
 *
 * Thread-safety: encode/decode are pure and thread-safe. send/recv are as
 * thread-safe as the socket calls beneath them (one datagram each). */
#ifndef SHMBUS_PROTO_H
#define SHMBUS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"
#include "platform/platform.h"

#define SHMBUS__PROTO_VERSION 1u
#define SHMBUS__PROTO_MAX_MSG 4096u /* bytes in one datagram */
#define SHMBUS__PROTO_MAX_FDS 3u
#define SHMBUS__TOPIC_MAX 255u /* bytes in a topic name */
#define SHMBUS__NAME_MAX 63u   /* bytes in a client name */
#define SHMBUS__TEXT_MAX 255u  /* bytes in an error text */

/* Message types; the wire carries them as the strings in docs/protocol.md. */
enum shmbus__msg_type {
  SHMBUS__MSG_NONE = 0,
  /* client -> daemon (requests, each answered by one reply with its id) */
  SHMBUS__MSG_HELLO,    /* name */
  SHMBUS__MSG_OPEN,     /* topic, role, params?, reliable, history, retain, deadline_ms?;
                         * fds [eventfd] */
  SHMBUS__MSG_ADOPT,    /* topic, role, index, params; fds [data, own member file, eventfd] */
  SHMBUS__MSG_CLOSE,    /* topic_id, role, index */
  SHMBUS__MSG_STATUS,   /* - */
  SHMBUS__MSG_STOP,     /* - */
  SHMBUS__MSG_SNAPSHOT, /* filter? */
  /* daemon -> client, replies */
  SHMBUS__MSG_WELCOME,        /* client_id, daemon_pid */
  SHMBUS__MSG_OPENED,         /* topic_id, role, index, params, peers, member?, deadline_ms?;
                               * fds [data, own member file] */
  SHMBUS__MSG_OK,             /* - */
  SHMBUS__MSG_ERROR,          /* code, text */
  SHMBUS__MSG_STATUS_REPLY,   /* daemon_pid, topics, clients, uptime_ms */
  SHMBUS__MSG_SNAPSHOT_REPLY, /* size; fds [sealed memfd holding `size` bytes of msgpack] */
  /* daemon -> client, events (id 0) */
  SHMBUS__MSG_PEER_JOIN,  /* topic_id, role (of the peer), index; fds [eventfd], and for a
                           * subscriber [eventfd, its member file, read-only] */
  SHMBUS__MSG_PEER_LEAVE, /* topic_id, role, index */
  /* client -> daemon: `shmbus topic rm` (answered by ok or error) */
  SHMBUS__MSG_REMOVE, /* topic */
  /* Discovery (src/discover.c, daemon/watch.c): a watch request (answered
   * by ok or error), its end, and the events of a watch (id 0). */
  SHMBUS__MSG_WATCH,      /* watch, pattern */
  SHMBUS__MSG_UNWATCH,    /* watch */
  SHMBUS__MSG_TOPIC_UP,   /* watch, topic */
  SHMBUS__MSG_TOPIC_DOWN, /* watch, topic */
  SHMBUS__MSG_TYPE_COUNT
};

/* Which optional fields a message carries (msg.has). */
enum {
  SHMBUS__HAS_PARAMS = 1u << 0, /* all four of slots, slot_size, max_subs, max_pubs */
};

/* A decoded message. Strings are NUL-terminated copies. fds[] are owned by
 * whoever holds the struct: shmbus__proto_recv hands them to the caller,
 * shmbus__proto_send does not take them (the caller closes its copies). */
struct shmbus__msg {
  uint32_t type; /* enum shmbus__msg_type */
  uint32_t id;   /* request id; a reply echoes it; 0 for events */
  uint32_t has;  /* SHMBUS__HAS_* */
  uint32_t role; /* enum shmbus__role, or 0 */
  uint32_t topic_id;
  uint32_t index; /* publisher or subscriber record index */
  uint32_t history;
  uint32_t peers; /* OPENED: number of PEER_JOIN events that follow */
  uint32_t client_id;
  uint32_t daemon_pid;
  uint32_t topics;
  uint32_t clients;
  uint64_t uptime_ms;
  uint64_t size;        /* SNAPSHOT_REPLY: bytes in the attached memory file */
  uint32_t member;      /* OPENED: m of the participant's own member file */
  uint32_t deadline_ms; /* OPEN: a reliable subscriber's deadline; OPENED: the daemon's cap */
  int32_t code;         /* ERROR: a negative shmbus code */
  bool reliable;
  bool retain;
  struct shmbus__params params; /* valid if has & SHMBUS__HAS_PARAMS */
  char topic[SHMBUS__TOPIC_MAX + 1];
  char name[SHMBUS__NAME_MAX + 1];
  char text[SHMBUS__TEXT_MAX + 1];
  char filter[SHMBUS__TOPIC_MAX + 1];  /* SNAPSHOT: a topic name, or "" for all */
  uint32_t watch_id;                   /* WATCH, UNWATCH, TOPIC_*: the client's watch number */
  char pattern[SHMBUS__TOPIC_MAX + 1]; /* WATCH: a topic pattern (src/pattern.h) */
  shmbus__os_handle fds[SHMBUS__PROTO_MAX_FDS];
  uint32_t nfds;
};

/* Resets a message to type NONE, no fds (fds[] = SHMBUS__OS_HANDLE_INVALID). */
void shmbus__msg_init(struct shmbus__msg *m, uint32_t type, uint32_t id);

/* How many fds a message of `type` must carry: exact for each type. */
uint32_t shmbus__msg_fd_count(uint32_t type, uint32_t role);

/* Encodes `m` (without its fds) into buf. Returns the length, or
 * -EMSGSIZE when it does not fit, -EINVAL for an unknown type. */
int shmbus__proto_encode(const struct shmbus__msg *m, void *buf, size_t cap);

/* Decodes one datagram. Returns 0, or -EPROTO (malformed, unknown type,
 * wrong version, bad field). Does not touch m->fds/nfds. */
int shmbus__proto_decode(const void *buf, size_t len, struct shmbus__msg *m);

/* Sends `m` with its m->nfds descriptors as one datagram, without blocking
 * (MSG_DONTWAIT) and without SIGPIPE. Returns 0, -EAGAIN when the socket is
 * full, -EPIPE/-ECONNRESET when the peer is gone, or -EMSGSIZE. */
int shmbus__proto_send(shmbus__conn_handle sock, const struct shmbus__msg *m);

/* Receives one datagram without blocking (MSG_DONTWAIT): decodes it and
 * takes its descriptors (close-on-exec). Returns 0; -EAGAIN when none is
 * waiting; -EPIPE when the peer closed; -EPROTO when the datagram was
 * malformed, truncated, or carried a number of fds other than its type
 * requires (any received fds are closed then). */
int shmbus__proto_recv(shmbus__conn_handle sock, struct shmbus__msg *m);

/* Checks that one msgpack object starts at buf[*off] and lies entirely
 * inside buf[0..len), nests at most max_depth containers deep, and that no
 * container declares more elements than bytes are left (so unpacking it
 * with msgpack-c allocates at most a small multiple of len). Moves *off
 * past the object. Returns 0 or -EPROTO. No allocation; pure. The same
 * walk checks control messages, with tighter limits. */
int shmbus__msgpack_scan(const void *buf, size_t len, size_t *off, unsigned max_depth);

/* Closes the fds a message holds and marks them invalid. */
void shmbus__msg_close_fds(struct shmbus__msg *m);

/* Topic names: segments of [A-Za-z0-9_.-] (and '$' as the first character
 * of the first segment) separated by '/', no empty segment, no segment "."
 * or "..", 1..255 bytes.
 * Returns 0 or SHMBUS_EBADNAME. `allow_sys` permits the reserved "$sys/"
 * prefix (the daemon's own topics). */
int shmbus__topic_validate(const char *name, bool allow_sys);

#endif /* SHMBUS_PROTO_H */
