/* clock: a message's time across hosts. A topic's stamps
 * (shmbus_msg_info.ts_ns) are the publishing host's CLOCK_MONOTONIC, which
 * means nothing on another host; Shmbus-Time carries the moment as
 * CLOCK_REALTIME ns (since the Unix epoch), which hosts keep in step (NTP).
 * The exporter converts a stamp to it; the importer converts it back to
 * its own host's CLOCK_MONOTONIC, the stamp its local subscribers see.
 *
 * The two clocks' difference changes only when the wall clock is set or
 * slewed, so they are read once per loop time (the loop's millisecond
 * clock, uv_now), and at most once more per batch of messages imported
 * together, for a moment newer than the last read: never per message. The bridge reads the clocks
 * itself (POSIX clock_gettime): it uses the library's public API only,
 * and the library's stamps are CLOCK_MONOTONIC (shmbus_msg_info). Not
 * thread-safe: the loop owns it. */
#ifndef SHMBUS_BRIDGE_CLOCK_H
#define SHMBUS_BRIDGE_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

struct bridge_clock {
  uint64_t at_ms;    /* the loop time of the last read by bridge_clock_update */
  bool valid;        /* read at least once */
  bool reread;       /* read again in this batch already (bridge_clock_to_mono) */
  uint64_t mono_ns;  /* CLOCK_MONOTONIC at the last read */
  uint64_t real_ns;  /* CLOCK_REALTIME at the same moment */
  uint64_t replaced; /* moments bridge_clock_to_mono could not keep (the import time instead) */
};

/* Reads both clocks unless they were read at loop time now_ms already;
 * starts a batch (bridge_clock_to_mono may read them once more). */
void bridge_clock_update(struct bridge_clock *c, uint64_t now_ms);

/* The local stamp mono_ns as CLOCK_REALTIME ns; 0 (unknown) when it
 * cannot be: a stamp of 0 (not set), one before the wall clock's epoch,
 * one past 2^64 - 1 ns (nonsense), or clocks never read. */
uint64_t bridge_clock_to_real(const struct bridge_clock *c, uint64_t mono_ns);

/* A Shmbus-Time as a local stamp: the same moment on this host's
 * CLOCK_MONOTONIC when it lies between that clock's zero and the last
 * read; else the last read, the import's time, counted in `replaced`: a
 * moment ahead of this host's clock (the origin's wall clock ahead of this
 * one by more than the message took, or a sender that lies), from before
 * this host's boot (a stream replayed from long ago), or 0 (unknown). A
 * moment newer than the last read reads the clocks again first, once per
 * batch (bridge_clock_update): the messages of a batch were received
 * before that read, so unless the origin's clock is ahead they are older.
 * Never 0, never ahead of the clock. */
uint64_t bridge_clock_to_mono(struct bridge_clock *c, uint64_t real_ns);

#endif
