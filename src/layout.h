/* layout: the one description of shmbus's shared memory. Every struct that
 * lives in shared memory is declared here, with fixed-width types, its
 * offsets pinned by static assertions, and a comment per field saying who
 * writes it. Nothing here trusts what it reads.
 *
 * The unit of trust is the uid (docs/design.md, "Trust boundaries"): memory
 * that participants of one uid can write is never read as truth by
 * participants of another. A topic is therefore one data file plus one
 * member file per uid that takes part (at most SHMBUS__MAX_MEMBERS):
 *
 *   data file (creator: the daemon; publishers: read-write; subscribers:
 *   read-only)
 *     0      struct shmbus__data_hdr     identity, `head`, the publisher-waiter
 *                                        words (pub_wait_summary, pub_waiters[16])
 *     768    struct shmbus__pub_rec[max_pubs]   one 64-byte line per publisher
 *     ...    slots[slot_count], each slot_stride bytes, 64-byte aligned:
 *              struct shmbus__slot (32 bytes) then the payload
 *
 *   member file m of uid U (creator: the daemon; read-write for the
 *   participants of uid U, read-only for every other participant)
 *     0      struct shmbus__member_hdr   identity, `peer_epoch` (daemon),
 *                                        `gen` + `sleep_summary` (U's subscribers)
 *     512    uint64_t sleepers[bitmap_words]  one bit per subscriber record of U
 *     1024   struct shmbus__sub_rec[max_subs]  one 128-byte record per subscriber of U
 *
 * A subscriber is named by its global index g = m * max_subs + i (record i
 * of member file m); the wire and the peer tables use g.
 *
 * All files are sized, filled with zero pages and sealed against growing or
 * shrinking before they are shared, so a mapping never outlives its backing
 * store (no SIGBUS) and nobody can resize them later.
 *
 * Identity fields are written once by the creator before the fd is shared.
 * Participants never read them: they take a topic's parameters from the
 * daemon's reply, compute the layout and check each descriptor's size and
 * seals (region.c). Only a daemon adopting files after a restart reads
 * identity from memory, having no other source. */
#ifndef SHMBUS_LAYOUT_H
#define SHMBUS_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "atomics.h"

#define SHMBUS__CACHE_LINE 64u
#define SHMBUS__LAYOUT_VERSION 2u

/* "SHMBUSD2" and "SHMBUSM2" read as little-endian 64-bit words. */
#define SHMBUS__MAGIC_DATA 0x32445355424d4853ull
#define SHMBUS__MAGIC_MEMBER 0x324d5355424d4853ull

/* Member files per topic: at most this many uids take part in one topic
 * (the daemon answers SHMBUS_ELIMIT beyond). A publisher loads one line per
 * member file on each publish, so this also bounds that cost. */
#define SHMBUS__MAX_MEMBERS 16u

/* Limits on the parameters. They bound every size computed from a header, so
 * that no product or sum below can overflow 64 bits. */
#define SHMBUS__MIN_SLOTS 2u
#define SHMBUS__MAX_SLOTS (1u << 24)
#define SHMBUS__MAX_SLOT_CAPACITY (64u << 20) /* 64 MiB per message */
#define SHMBUS__MAX_SUBS 4096u                /* 64 bitmap words x 64 bits */
#define SHMBUS__MAX_PUBS 1024u
#define SHMBUS__MAX_REGION_BYTES (1ull << 36) /* 64 GiB */

#define SHMBUS__DATA_HDR_SIZE 768u
#define SHMBUS__MEMBER_HDR_SIZE 512u
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

/* A participant's role on a topic: the same value on the wire (proto.c
 * spells it "pub"/"sub"), in a region (a publisher maps the data file
 * read-write, a subscriber read-only: it cannot forge slots) and in the
 * daemon's books. */
enum shmbus__role { SHMBUS__ROLE_PUB = 1, SHMBUS__ROLE_SUB = 2 };

/* Publisher record states (pub_rec.state). */
enum { SHMBUS__PUB_FREE = 0, SHMBUS__PUB_ACTIVE = 1 };

/* pub_rec.inflight values that are not sequence numbers. */
#define SHMBUS__INFLIGHT_IDLE UINT64_MAX           /* not between claim and commit */
#define SHMBUS__INFLIGHT_CLAIMING (UINT64_MAX - 1) /* claiming: seq not known yet */

/* Subscriber record states (sub_rec.state). */
enum {
  SHMBUS__SUB_FREE = 0,
  SHMBUS__SUB_JOINING = 1, /* record taken, not yet visible to publishers */
  SHMBUS__SUB_LOSSY = 2,   /* publishers never wait for it */
  SHMBUS__SUB_RELIABLE = 3 /* publishers never overwrite what it has not read */
};

/* The data file's header. Identity fields are written by the creator before
 * the fd is shared; `magic` is written last (release) so that a header whose
 * magic is valid is complete. Only an adopting daemon reads them. */
struct shmbus__data_hdr {
  uint64_t magic;         /* creator; SHMBUS__MAGIC_DATA, written last */
  uint32_t version;       /* creator; SHMBUS__LAYOUT_VERSION */
  uint32_t hdr_size;      /* creator; SHMBUS__DATA_HDR_SIZE */
  uint32_t slot_count;    /* creator; power of two in [MIN_SLOTS, MAX_SLOTS] */
  uint32_t slot_capacity; /* creator; payload bytes per slot */
  uint32_t slot_stride;   /* creator; slot header + capacity, rounded to a cache line */
  uint32_t max_subs;      /* creator; subscriber records per member file */
  uint32_t max_pubs;      /* creator; publisher records below */
  uint32_t flags;         /* creator; reserved, 0 */
  uint64_t nonce;         /* creator; random, repeated in every member header */
  uint64_t data_size;     /* creator; size of this file in bytes */
  uint64_t member_size;   /* creator; size of each member file in bytes */
  uint64_t pubs_offset;   /* creator; offset of pub_rec[0] */
  uint64_t slots_offset;  /* creator; offset of slot 0 */
  uint64_t created_ns;    /* creator; CLOCK_REALTIME at creation, informational */
  uint8_t pad0[256 - 88];
  /* Next sequence number to claim. Publishers only, by fetch-add or CAS
   * (seq_cst: pairs with the joining reliable subscriber's gen increment,
   * see ring.c). Subscribers read it to find where to start and how far
   * they fell behind. Alone on its own pair of cache lines. */
  shmbus__a64 head;
  uint8_t pad1[128 - 8];
  /* Bit w set: pub_waiters[w] may have bits set. Publishers only: a
   * publisher waiting for room behind a reliable subscriber sets its bit,
   * and clears it when it wakes (ring.c, "Waiting for room"). Reliable
   * subscribers load it after each cursor store; nobody writes it while
   * nobody waits. */
  shmbus__a64 pub_wait_summary;
  uint8_t pad2[128 - 8];
  /* One bit per publisher record waiting for room (max_pubs <= 1024).
   * Set and cleared by the waiting publisher itself. */
  shmbus__a64 pub_waiters[SHMBUS__MAX_PUBS / 64];
  uint8_t pad3[SHMBUS__DATA_HDR_SIZE - 512 - 128];
};
_Static_assert(sizeof(struct shmbus__data_hdr) == SHMBUS__DATA_HDR_SIZE, "data header size");
_Static_assert(offsetof(struct shmbus__data_hdr, created_ns) == 80, "data header identity");
_Static_assert(offsetof(struct shmbus__data_hdr, head) == 256, "head on its own lines");
_Static_assert(offsetof(struct shmbus__data_hdr, pub_wait_summary) == 384, "waiters summary");
_Static_assert(offsetof(struct shmbus__data_hdr, pub_waiters) == 512, "publisher waiters");

/* One per publisher, written only by the publisher that owns it (and by the
 * repairer after that publisher died). One cache line, so publishers never
 * share a line. */
struct shmbus__pub_rec {
  shmbus__a32 state;  /* owner: CAS FREE->ACTIVE to take, store FREE to leave */
  shmbus__a32 pid;    /* owner; informational, for repair and stats */
  shmbus__a32 pub_id; /* owner; the id stamped into every slot it writes */
  uint32_t pad0;
  shmbus__a64 inflight;  /* owner; IDLE, CLAIMING, or the seq it holds between claim and commit */
  shmbus__a64 published; /* owner; messages committed, for stats */
  shmbus__a64 overtaken; /* owner; claims lost to a faster publisher, for stats */
  /* Owner; incremented each time it starts waiting for room, before it sets
   * its pub_waiters bit (release, by the seq_cst RMW on the bit). A reliable
   * subscriber signals each (publisher, ticket) at most once. */
  shmbus__a64 wait_ticket;
  uint8_t pad1[SHMBUS__CACHE_LINE - 48];
};
_Static_assert(sizeof(struct shmbus__pub_rec) == SHMBUS__CACHE_LINE, "pub record is one line");

/* The header of each slot; the payload follows at +32. Written only by the
 * publisher that holds the slot in state BUSY (or the repairer). */
struct shmbus__slot {
  shmbus__a64 word;   /* publisher: BUSY by CAS, then COMMITTED by release store */
  shmbus__a32 len;    /* publisher; payload bytes, <= slot_capacity */
  shmbus__a32 pub_id; /* publisher; its pub_rec.pub_id */
  shmbus__a64 ts_ns;  /* publisher; CLOCK_MONOTONIC ns at publish or as it gave it, 0 if not set */
  uint64_t reserved;  /* 0 */
};
_Static_assert(sizeof(struct shmbus__slot) == SHMBUS__SLOT_HDR_SIZE, "slot header size");

/* A member file's header: the file of one uid's participants. */
struct shmbus__member_hdr {
  uint64_t magic;        /* creator; SHMBUS__MAGIC_MEMBER, written last */
  uint32_t version;      /* creator; SHMBUS__LAYOUT_VERSION */
  uint32_t hdr_size;     /* creator; SHMBUS__MEMBER_HDR_SIZE */
  uint32_t max_subs;     /* creator; equal to the data header's */
  uint32_t bitmap_words; /* creator; ceil(max_subs / 64) */
  uint64_t nonce;        /* creator; equal to the data header's */
  uint64_t member_size;  /* creator; size of this file */
  uint32_t member;       /* creator; m, this file's place in the topic (< MAX_MEMBERS) */
  uint32_t uid;          /* creator; the uid whose participants write this file */
  uint8_t pad0[128 - 48];
  /* Incremented by the daemon after it told this uid's participants that a
   * peer joined or left (control messages are waiting). Each participant
   * loads the epoch of its own uid's file only. Daemon only. */
  shmbus__a64 peer_epoch;
  uint8_t pad1[128 - 8];
  /* The subscribers' hot line, read by every publisher on each publish.
   * gen: membership generation; a joining reliable subscriber increments
   * it (seq_cst) after publishing its record, so publishers that cache the
   * slowest reliable cursor know to rescan. sleep_summary: bit w set means
   * sleepers[w] may have bits set; set by a subscriber going to sleep,
   * cleared by that subscriber when it wakes and its word is empty.
   * sleep_epoch: incremented (seq_cst) by every subscriber of the file
   * going to sleep, after its bits: a publisher that finds it unchanged
   * since a scan that signalled every sleeper it found skips the scan.
   * Written by this uid's subscribers (and the daemon) only. */
  shmbus__a64 gen;
  shmbus__a64 sleep_summary;
  shmbus__a64 sleep_epoch;
  uint8_t pad2[SHMBUS__MEMBER_HDR_SIZE - 256 - 24];
};
_Static_assert(sizeof(struct shmbus__member_hdr) == SHMBUS__MEMBER_HDR_SIZE, "member header size");
_Static_assert(offsetof(struct shmbus__member_hdr, uid) == 44, "member identity");
_Static_assert(offsetof(struct shmbus__member_hdr, peer_epoch) == 128, "epoch on its own lines");
_Static_assert(offsetof(struct shmbus__member_hdr, gen) == 256, "hot line");
_Static_assert(offsetof(struct shmbus__member_hdr, sleep_summary) == 264, "summary beside gen");
_Static_assert(offsetof(struct shmbus__member_hdr, sleep_epoch) == 272, "epoch beside summary");

/* One per subscriber, in its uid's member file. The first line is what
 * publishers read (state, cursor, sleep ticket, deadline); the second holds
 * statistics that only the daemon reads, so counting a message never
 * bounces the line publishers poll. */
struct shmbus__sub_rec {
  /* Next sequence number the subscriber will read: it has finished with
   * every seq below. Owner: release store after each message (pairs with the
   * publisher's acquire load in its rescan). */
  shmbus__a64 cursor;
  shmbus__a32 state; /* owner: CAS FREE->JOINING, then LOSSY/RELIABLE; owner or daemon: FREE,
                      * daemon: restores a registered record's state (reconciliation) */
  shmbus__a32 pid;   /* owner; informational */
  /* Owner; incremented before it sets its sleeper bit (released by that
   * seq_cst RMW). A publisher signals each (subscriber, ticket) at most
   * once, so a bit that stays set costs it one load, never a syscall. */
  shmbus__a64 sleep_ticket;
  /* Daemon (at attach, and reconciliation): the longest a publisher waits
   * for this reliable subscriber, in ms; 0: no bound of its own. */
  shmbus__a32 deadline_ms;
  uint32_t pad0a;
  /* Owner; stored before each new sleep_ticket (released with it): the
   * lowest seq whose commit should wake this sleeper (a wake threshold,
   * shmbus_sub_opts.wake_after); 0: the next commit. A publisher that
   * commits a lower seq leaves the sleeper to its own timer. Zero pages
   * (older owners) mean "at once". */
  shmbus__a64 wake_seq;
  uint8_t pad0[SHMBUS__CACHE_LINE - 40];
  shmbus__a64 received; /* owner; messages delivered since joining */
  shmbus__a64 lost;     /* owner; messages lost since joining */
  shmbus__a64 joined;   /* owner; the seq it started from */
  shmbus__a64 sleeps;   /* owner; times it armed its sleeper bit */
  shmbus__a64 demoted;  /* owner; times a reliable record was lapped (a publisher's deadline) */
  uint8_t pad1[SHMBUS__CACHE_LINE - 40];
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
  uint64_t data_size;   /* rounded up to `page` */
  uint64_t member_size; /* rounded up to `page` */
};

/* Checks `p` against the limits and computes the layout for page size
 * `page` (a power of two). Returns 0, or SHMBUS_EPARAM when a parameter is
 * out of range or the region would exceed SHMBUS__MAX_REGION_BYTES.
 * Pure function; thread-safe. */
int shmbus__layout_compute(const struct shmbus__params *p, uint64_t page,
                           struct shmbus__layout *out);

/* Headers: formatting and, beside it, its inverse, validation.
 *
 * The format calls write the headers of zeroed memory: the data file, and
 * a member file m of `uid`. The memory must be at least l->data_size /
 * member_size bytes, zeroed, and aligned to a cache line. The creator does
 * this once, before anyone else can see the memory; the magic is written
 * last, after a release fence, so whoever sees it (after the acquire fence
 * of the check calls) sees every other field. */
void shmbus__layout_format_data(void *data, const struct shmbus__layout *l, uint64_t nonce,
                                uint64_t created_ns);
void shmbus__layout_format_member(void *member, const struct shmbus__layout *l, uint64_t nonce,
                                  uint32_t m, uint32_t uid);

/* Validates a data header found in memory (`data_len` bytes mapped: read
 * as untrusted input, never beyond it) and computes its layout into *out:
 * the header is accepted only if it is exactly what its own parameters
 * produce for page size `page`, and the mapping exactly as large as it
 * says. Returns 0, SHMBUS_EBADREGION or SHMBUS_EVERSION. */
int shmbus__layout_check_data(const void *data, uint64_t data_len, uint64_t page,
                              struct shmbus__layout *out);

/* Validates a member header found in memory (`len` bytes mapped) against
 * the layout `l` and the data file's `nonce`, and returns its m and uid.
 * Returns 0, SHMBUS_EBADREGION or SHMBUS_EVERSION. */
int shmbus__layout_check_member(const void *member, uint64_t len, const struct shmbus__layout *l,
                                uint64_t nonce, uint32_t *m, uint32_t *uid);

#endif /* SHMBUS_LAYOUT_H */
