/* synth: synthetic payloads for `pub --count N --size BYTES` and their
 * check in `echo`. Each carries, little-endian:
 *
 *   offset 0  "SBS1"        magic
 *          4  u32           publisher id (the publishing process's pid)
 *          8  u64           sequence number, 0 .. total-1
 *         16  u64           total: how many this publisher run sends
 *         24  u32           FNV-1a 32 of the whole payload, this field as 0
 *         28  u32           0
 *         32  filler        byte i is (seq * 31 + i) & 0xff
 *
 * A reader verifies the checksum and that, per publisher, sequence
 * numbers only go up. */
#ifndef SHMBUS_CLI_SYNTH_H
#define SHMBUS_CLI_SYNTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SYNTH_HEADER 32u

struct synth_info {
  uint32_t pub;
  uint64_t seq;
  uint64_t total;
  bool checksum_ok;
};

/* Fills buf[0..len) (len >= SYNTH_HEADER) with payload `seq` of `total`. */
void synth_fill(void *buf, size_t len, uint32_t pub, uint64_t seq, uint64_t total);

/* True if the payload looks synthetic (magic and size); then fills *info,
 * checksum verdict included. */
bool synth_parse(const void *buf, size_t len, struct synth_info *info);

/* What echo keeps per publisher, to count sequence errors and notice the
 * end of every publisher's run. */
struct synth_tracker {
  struct synth_peer {
    uint32_t pub;
    uint64_t next; /* lowest acceptable next sequence number */
    bool done;     /* its last payload (seq total-1) arrived */
  } * peers;
  size_t n;
  size_t cap;
  uint64_t errors; /* bad checksums and sequence numbers going backwards */
};

/* Accounts one synthetic payload; returns false when it counts as an error.
 * Out of memory to track a new publisher also counts it as an error. */
bool synth_track(struct synth_tracker *t, const struct synth_info *info);

/* True once every publisher seen has delivered its last payload (and at
 * least one was seen). */
bool synth_all_done(const struct synth_tracker *t);

void synth_tracker_free(struct synth_tracker *t);

#endif /* SHMBUS_CLI_SYNTH_H */
