/* clock: a message's time across hosts. A topic's stamps
 * (shmbus_msg_info.ts_ns) are the publishing host's CLOCK_MONOTONIC, which
 * means nothing on another host; Shmbus-Time carries the moment as
 * CLOCK_REALTIME ns (since the Unix epoch), which hosts keep in step (NTP).
 * The exporter converts a stamp to it; the importer converts it back to
 * its own host's CLOCK_MONOTONIC, the stamp its local subscribers see.
 *
 * The two clocks' difference changes only when the wall clock is set or
 * slewed, so it is read once per loop iteration at most (when the loop's
 * time moved on), not per message. Not thread-safe: the loop owns it. */
#ifndef SHMBUS_BRIDGE_CLOCK_H
#define SHMBUS_BRIDGE_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

struct bridge_clock {
  uint64_t at_ms;   /* the loop time of the last read */
  bool valid;       /* read at least once */
  uint64_t mono_ns; /* CLOCK_MONOTONIC at the last read */
  uint64_t real_ns; /* CLOCK_REALTIME at the last read */
};

/* Reads both clocks unless they were read at loop time now_ms already. */
void bridge_clock_update(struct bridge_clock *c, uint64_t now_ms);

/* The local stamp mono_ns as CLOCK_REALTIME ns; 0 when it cannot be (a
 * stamp of 0, "not set", or one before the wall clock's epoch). */
uint64_t bridge_clock_to_real(const struct bridge_clock *c, uint64_t mono_ns);

/* A Shmbus-Time as a local stamp: the same moment on this host's
 * CLOCK_MONOTONIC when it lies between that clock's zero and now; else
 * (the hosts' clocks out of step, a moment from before this host's boot, a
 * sender that lies) now: the import's time. A moment after the last read
 * reads the clocks again (once per batch of messages received together, as
 * the first is usually newer than the last read and the rest older than
 * the new one). Never 0, never ahead of the clock. */
uint64_t bridge_clock_to_mono(struct bridge_clock *c, uint64_t real_ns);

#endif
