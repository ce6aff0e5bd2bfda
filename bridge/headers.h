/* headers: what a bridged message carries besides its payload, as NATS
 * message headers (docs/bridge.md, "What a message carries"):
 *   Shmbus-Origin  the exporting bridge's --name (loop prevention)
 *   Shmbus-Topic   the topic on the origin bus
 *   Shmbus-Seq     the message's sequence number in that topic (decimal)
 *   Shmbus-Time    its publish time there, ns since the Unix epoch
 *                  (CLOCK_REALTIME, decimal: clock.h)
 * and, with --reliable, Nats-Msg-Id for JetStream's de-duplication.
 * Parsing trusts nothing: a header missing, repeated, too long or not a
 * number, or a block that is not well-formed makes the message foreign. */
#ifndef SHMBUS_BRIDGE_HEADERS_H
#define SHMBUS_BRIDGE_HEADERS_H

#include <nats/nats.h>
#include <stdbool.h>
#include <stdint.h>

#define BRIDGE_NAME_MAX 64

/* What the headers of a message say. */
struct bridge_hdr {
  char origin[BRIDGE_NAME_MAX + 1];
  char topic[256];
  uint64_t seq;
  uint64_t ts_ns;
};

/* Sets the headers of `msg`; msg_id NULL for none. Returns 0 or -ENOMEM. */
int bridge_hdr_set(natsMsg *msg, const struct bridge_hdr *h, const char *msg_id);

/* Where bridge_hdr_msg writes a header block and payload before libnats
 * copies them: grown as needed, used by one thread at a time. Zeroed to
 * start; bridge_hdr_buf_free frees it. */
struct bridge_hdr_buf {
  char *p;
  size_t cap;
};

void bridge_hdr_buf_free(struct bridge_hdr_buf *buf);

/* A new message on `subject` with the headers of *h (msg_id NULL for no
 * Nats-Msg-Id) and a copy of `len` bytes of `data`; the caller owns *out
 * (natsMsg_Destroy). With a libnats whose message layout was checked (see
 * bridge_hdr_fast), the headers are written as one block (in `buf`, then
 * copied with the payload into the message's one allocation); else through
 * libnats's header API (a map per message; `buf` unused). Returns 0,
 * -ENOMEM or -EINVAL (a length libnats cannot take). */
int bridge_hdr_msg(natsMsg **out, const char *subject, const struct bridge_hdr *h,
                   const char *msg_id, const void *data, size_t len, struct bridge_hdr_buf *buf);

/* Whether bridge_hdr_msg writes the header block itself (decided once, at
 * the first call: the libnats version is one whose source was read for
 * it, and a message built so reads back right through the public API). */
bool bridge_hdr_fast(void);

/* Whether bridge_hdr_get reads a message's header block itself (decided
 * with bridge_hdr_fast: the block of a message libnats built, with and
 * without a reply subject, is where the public getters place it); else it
 * goes through libnats's header API (a map per message). */
bool bridge_hdr_fast_read(void);

/* Destroys a message libnats received on a core NATS subscription, or one
 * bridge_hdr_msg built, now, on the caller's thread: with the libnats
 * versions of bridge_hdr_fast (a library that exports natsMsg_free),
 * through that function, which natsMsg_Destroy has libnats's collector
 * thread call later (waking the thread when its list was empty: a thread
 * wake-up and lock contention per handful of messages); elsewhere with
 * natsMsg_Destroy. Not for JetStream's messages (libnats may mark one as
 * not to be destroyed). */
void bridge_msg_free(natsMsg *msg);
/* Whether bridge_msg_free frees directly (decided once, at the first call
 * of either). */
bool bridge_msg_free_direct(void);

/* Reads the headers of `msg` (a message libnats received or built) into
 * *h: its header block parsed by bridge_hdr_parse, or (see
 * bridge_hdr_fast_read) through libnats's header API, which accepts a few
 * blocks the strict parser does not (a status line, folded lines). Returns
 * 0, or -EBADMSG when they are missing or malformed. */
int bridge_hdr_get(natsMsg *msg, struct bridge_hdr *h);

/* Parses a NATS header block of `len` bytes (not NUL-terminated; untrusted)
 * into *h. Strict: "NATS/1.0" CRLF with no status, then lines of a name
 * (visible ASCII but ':'), ':', optional spaces or tabs, a value of SP,
 * HTAB, visible ASCII or bytes >= 0x80 (spaces and tabs around it
 * dropped), CRLF; then an empty line ending the block. The four Shmbus-
 * headers (names compared exactly, as libnats does) must each come once,
 * with values as bridge_hdr_get requires (Shmbus-Origin a name, Shmbus-
 * Topic under 256 bytes, the numbers decimal without sign or leading
 * zeros, at most UINT64_MAX); other headers are skipped. Returns 0, or
 * -EBADMSG (*h untouched). */
int bridge_hdr_parse(const char *blk, size_t len, struct bridge_hdr *h);

/* Returns 0 if `name` can be a bridge's name (an origin, a durable
 * consumer's name): 1..64 bytes of [A-Za-z0-9_-]; else -EINVAL. */
int bridge_name_check(const char *name);

#endif /* SHMBUS_BRIDGE_HEADERS_H */
