/* layout: the one description of shmbus's shared memory. Every struct that
 * lives in shared memory is declared here, with fixed-width types, its
 * offsets pinned by static assertions, and a comment per field saying who
 * writes it. Nothing here trusts what it reads: the region module validates
 * a header before anything else looks at the memory behind it.
 *
 * A topic is two anonymous memory files (memfds), so that subscribers can be
 * given the first one read-only:
 *
 *   data file (publishers: read-write; subscribers: read-only)
 *     0      struct shmbus__data_hdr       identity + parameters, then `head`
 *     512    struct shmbus__pub_rec[max_pubs]   one 64-byte line per publisher
 *     ...    slots[slot_count], each slot_stride bytes, 64-byte aligned:
 *              struct shmbus__slot (32 bytes) then the payload
 *
 *   control file (everyone: read-write)
 *     0      struct shmbus__ctrl_hdr       identity, `gen`, `peer_epoch`, `sleep_summary`,
 *                                          `pub_wait_summary`, pub_waiters[16]
 *     512    uint64_t sleepers[bitmap_words]  one bit per subscriber record
 *     1024   struct shmbus__sub_rec[max_subs]  one 128-byte record per subscriber
 *
 * Both files are sized, filled with zero pages and sealed against growing or
 * shrinking before they are shared, so a mapping never outlives its backing
 * store (no SIGBUS) and nobody can resize them later.
 *
 * Writers: "creator" is the process that formats the region (the daemon, or
 * a test); it writes the identity fields once, before the fds are shared,
 * and nobody writes them afterwards. The `nonce` ties a control file to its
 * data file. */
#ifndef SHMBUS_LAYOUT_H
#define SHMBUS_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "atomics.h"

#define SHMBUS__CACHE_LINE 64u
#define SHMBUS__LAYOUT_VERSION 1u

/* "SHMBUSD1" and "SHMBUSC1" read as little-endian 64-bit words. */
#define SHMBUS__MAGIC_DATA 0x31445355424d4853ull
#define SHMBUS__MAGIC_CTRL 0x31435355424d4853ull

/* Limits on the parameters. They bound every size computed from a header, so
 * that no product or sum below can overflow 64 bits. */
#define SHMBUS__MIN_SLOTS 2u
#define SHMBUS__MAX_SLOTS (1u << 24)
#define SHMBUS__MAX_SLOT_CAPACITY (64u << 20) /* 64 MiB per message */
#define SHMBUS__MAX_SUBS 4096u                /* 64 bitmap words x 64 bits */
#define SHMBUS__MAX_PUBS 1024u
#define SHMBUS__MAX_REGION_BYTES (1ull << 36) /* 64 GiB */

#define SHMBUS__DATA_HDR_SIZE 512u
#define SHMBUS__CTRL_HDR_SIZE 512u
#define SHMBUS__BITMAP_OFFSET 512u
#define SHMBUS__SUBS_OFFSET 1024u
#define SHMBUS__SLOT_HDR_SIZE 32u

/* Slot commit word: (seq << 2) | state. A word of 0 means "never written"
 * (seq 0 is never BUSY/COMMITTED/SKIPPED with state 0). */
enum {
  SHMBUS__SLOT_EMPTY = 0,
  SHMBUS__SLOT_BUSY = 1,      /* a publisher owns the slot for `seq` and is writing it */
  SHMBUS__SLOT_COMMITTED = 2, /* `seq` is complete and may be read */
  SHMBUS__SLOT_SKIPPED = 3    /* `seq` was abandoned (repair or cancel); readers count it lost */
};
#define SHMBUS__WORD(seq, state) (((uint64_t)(seq) << 2) | (uint64_t)(state))
#define SHMBUS__WORD_SEQ(w) ((w) >> 2)
#define SHMBUS__WORD_STATE(w) ((unsigned)((w)&3u))

/* Publisher record states (pub_rec.state). */
enum { SHMBUS__PUB_FREE = 0, SHMBUS__PUB_ACTIVE = 1 };

/* pub_rec.inflight values that are not sequence numbers. */
#define SHMBUS__INFLIGHT_IDLE UINT64_MAX           /* not between claim and commit */
#define SHMBUS__INFLIGHT_CLAIMING (UINT64_MAX - 1) /* claiming: seq not known yet */

/* Subscriber record states (sub_rec.state). */
enum {
  SHMBUS__SUB_FREE = 0,
  SHMBUS__SUB_JOINING = 1,  /* record taken, not yet visible to publishers */
  SHMBUS__SUB_LOSSY = 2,    /* publishers never wait for it */
  SHMBUS__SUB_RELIABLE = 3  /* publishers never overwrite what it has not read */
};

/* The data file's header. Identity fields are written by the creator before
 * the fd is shared; `magic` is written last (release) so that a header whose
 * magic is valid is complete. */
struct shmbus__data_hdr {
  uint64_t magic;         /* creator; SHMBUS__MAGIC_DATA, written last */
  uint32_t version;       /* creator; SHMBUS__LAYOUT_VERSION */
  uint32_t hdr_size;      /* creator; SHMBUS__DATA_HDR_SIZE */
  uint32_t slot_count;    /* creator; power of two in [MIN_SLOTS, MAX_SLOTS] */
  uint32_t slot_capacity; /* creator; payload bytes per slot */
  uint32_t slot_stride;   /* creator; slot header + capacity, rounded to a cache line */
  uint32_t max_subs;      /* creator; subscriber records in the control file */
  uint32_t max_pubs;      /* creator; publisher records below */
  uint32_t flags;         /* creator; reserved, 0 */
  uint64_t nonce;         /* creator; random, equal in the control header */
  uint64_t data_size;     /* creator; size of this file in bytes */
  uint64_t ctrl_size;     /* creator; size of the control file in bytes */
  uint64_t pubs_offset;   /* creator; offset of pub_rec[0] */
  uint64_t slots_offset;  /* creator; offset of slot 0 */
  uint64_t created_ns;    /* creator; CLOCK_REALTIME at creation, informational */
  uint8_t pad0[256 - 88];
  /* Next sequence number to claim. Publishers only, by fetch-add or CAS
   * (seq_cst: pairs with the joining reliable subscriber's gen increment,
   * see ring.c). Subscribers read it to find where to start and how far
   * they fell behind. Alone on its own pair of cache lines. */
  shmbus__a64 head;
  uint8_t pad1[SHMBUS__DATA_HDR_SIZE - 256 - 8];
};
_Static_assert(sizeof(struct shmbus__data_hdr) == SHMBUS__DATA_HDR_SIZE, "data header size");
_Static_assert(offsetof(struct shmbus__data_hdr, created_ns) == 80, "data header identity");
_Static_assert(offsetof(struct shmbus__data_hdr, head) == 256, "head on its own lines");

/* One per publisher, written only by the publisher that owns it (and by the
 * repairer after that publisher died). One cache line, so publishers never
 * share a line. */
struct shmbus__pub_rec {
  shmbus__a32 state;     /* owner: CAS FREE->ACTIVE to take, store FREE to leave */
  shmbus__a32 pid;       /* owner; informational, for repair and stats */
  shmbus__a32 pub_id;    /* owner; the id stamped into every slot it writes */
  uint32_t pad0;
  shmbus__a64 inflight;  /* owner; IDLE, CLAIMING, or the seq it holds between claim and commit */
  shmbus__a64 published; /* owner; messages committed, for stats */
  shmbus__a64 overtaken; /* owner; claims lost to a faster publisher, for stats */
  uint8_t pad1[SHMBUS__CACHE_LINE - 40];
};
_Static_assert(sizeof(struct shmbus__pub_rec) == SHMBUS__CACHE_LINE, "pub record is one line");

/* The header of each slot; the payload follows at +32. Written only by the
 * publisher that holds the slot in state BUSY (or the repairer). */
struct shmbus__slot {
  shmbus__a64 word;   /* publisher: BUSY by CAS, then COMMITTED by release store */
  shmbus__a32 len;    /* publisher; payload bytes, <= slot_capacity */
  shmbus__a32 pub_id; /* publisher; its pub_rec.pub_id */
  shmbus__a64 ts_ns;  /* publisher; CLOCK_MONOTONIC ns at publish, 0 if not set */
  uint64_t reserved;  /* 0 */
};
_Static_assert(sizeof(struct shmbus__slot) == SHMBUS__SLOT_HDR_SIZE, "slot header size");

/* The control file's header. Identity fields as in the data header. */
struct shmbus__ctrl_hdr {
  uint64_t magic;        /* creator; SHMBUS__MAGIC_CTRL, written last */
  uint32_t version;      /* creator; SHMBUS__LAYOUT_VERSION */
  uint32_t hdr_size;     /* creator; SHMBUS__CTRL_HDR_SIZE */
  uint32_t max_subs;     /* creator; equal to the data header's */
  uint32_t bitmap_words; /* creator; ceil(max_subs / 64) */
  uint64_t nonce;        /* creator; equal to the data header's */
  uint64_t ctrl_size;    /* creator; size of this file */
  uint64_t subs_offset;  /* creator; SHMBUS__SUBS_OFFSET */
  uint8_t pad0[128 - 48];
  /* Membership generation: a joining reliable subscriber increments it
   * (seq_cst) after publishing its record, so publishers that cache the
   * slowest reliable cursor know to rescan. Written by subscribers. */
  shmbus__a64 gen;
  /* Incremented by the daemon after it told the topic's participants that
   * a peer joined or left (control messages are waiting). Publishers load
   * it on every publish (same line as gen) and read their control socket
   * only when it changed. Written by the daemon only. */
  shmbus__a64 peer_epoch;
  uint8_t pad1[128 - 16];
  /* Bit w set: sleepers[w] may have bits set. Set by subscribers going to
   * sleep, cleared by the publisher that wakes them. */
  shmbus__a64 sleep_summary;
  /* Bit w set: pub_waiters[w] may have bits set. Set by publishers waiting
   * for room behind a reliable subscriber, cleared by the subscriber that
   * wakes them. */
  shmbus__a64 pub_wait_summary;
  uint8_t pad2[128 - 16];
  /* One bit per publisher record waiting for room (max_pubs <= 1024).
   * Set by the waiting publisher, taken by a reliable subscriber. */
  shmbus__a64 pub_waiters[SHMBUS__MAX_PUBS / 64];
};
_Static_assert(sizeof(struct shmbus__ctrl_hdr) == SHMBUS__CTRL_HDR_SIZE, "ctrl header size");
_Static_assert(offsetof(struct shmbus__ctrl_hdr, gen) == 128, "gen on its own lines");
_Static_assert(offsetof(struct shmbus__ctrl_hdr, peer_epoch) == 136, "epoch beside gen");
_Static_assert(offsetof(struct shmbus__ctrl_hdr, sleep_summary) == 256, "summary on its own lines");
_Static_assert(offsetof(struct shmbus__ctrl_hdr, pub_waiters) == 384, "publisher waiters");

/* One per subscriber. The first line is what publishers read (state and
 * cursor); the second holds statistics that only the daemon reads, so
 * counting a message never bounces the line publishers poll. */
struct shmbus__sub_rec {
  /* Next sequence number the subscriber will read: it has finished with
   * every seq below. Owner: release store after each message (pairs with the
   * publisher's acquire load in its rescan). */
  shmbus__a64 cursor;
  shmbus__a32 state; /* owner: CAS FREE->JOINING, then LOSSY/RELIABLE; owner or daemon: FREE */
  shmbus__a32 pid;   /* owner; informational */
  uint8_t pad0[SHMBUS__CACHE_LINE - 16];
  shmbus__a64 received; /* owner; messages delivered since joining */
  shmbus__a64 lost;     /* owner; messages lost since joining */
  shmbus__a64 joined;   /* owner; the seq it started from */
  shmbus__a64 sleeps;   /* owner; times it armed its sleeper bit */
  uint8_t pad1[SHMBUS__CACHE_LINE - 32];
};
_Static_assert(sizeof(struct shmbus__sub_rec) == 2 * SHMBUS__CACHE_LINE, "sub record is two lines");
_Static_assert(offsetof(struct shmbus__sub_rec, received) == SHMBUS__CACHE_LINE, "stats on line 2");

/* Parameters of a topic, fixed when it is created. */
struct shmbus__params {
  uint32_t slot_count;    /* power of two, [SHMBUS__MIN_SLOTS, SHMBUS__MAX_SLOTS] */
  uint32_t slot_capacity; /* payload bytes per slot, [1, SHMBUS__MAX_SLOT_CAPACITY] */
  uint32_t max_subs;      /* [1, SHMBUS__MAX_SUBS] */
  uint32_t max_pubs;      /* [1, SHMBUS__MAX_PUBS] */
};

/* Sizes and offsets derived from parameters. */
struct shmbus__layout {
  struct shmbus__params params;
  uint32_t slot_stride;
  uint32_t bitmap_words;
  uint64_t pubs_offset;
  uint64_t slots_offset;
  uint64_t data_size; /* rounded up to `page` */
  uint64_t ctrl_size; /* rounded up to `page` */
};

/* Checks `p` against the limits and computes the layout for page size
 * `page` (a power of two). Returns 0, or SHMBUS_EPARAM when a parameter is
 * out of range or the region would exceed SHMBUS__MAX_REGION_BYTES.
 * Pure function; thread-safe. */
int shmbus__layout_compute(const struct shmbus__params *p, uint64_t page,
                           struct shmbus__layout *out);

#endif /* SHMBUS_LAYOUT_H */
