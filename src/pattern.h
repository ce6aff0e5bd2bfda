/* pattern: topic patterns, for discovery (include/shmbus/discover.h) and
 * for the daemon's watches. Pure functions over strings: no allocation, no
 * syscall, thread-safe.
 *
 * The grammar (docs/api.md, "Topic patterns"): 1..255 bytes of segments
 * separated by '/', no empty segment. A segment is "*" (exactly one topic
 * segment), "**" (any number of segments, none included), or a literal
 * that is a valid topic segment. Wildcards never match a first segment
 * that starts with '$' (the daemon's "$sys/..."): such topics match only a
 * pattern that names that first segment literally. */
#ifndef SHMBUS_PATTERN_H
#define SHMBUS_PATTERN_H

#include <stdbool.h>

/* At most this many segments in a pattern or a topic name (255 bytes hold
 * at most 128). */
#define SHMBUS__PATTERN_MAX_SEGS 128u

/* Returns 0 if `pattern` follows the grammar, else SHMBUS_EBADPATTERN. */
int shmbus__pattern_validate(const char *pattern);

/* True if the valid topic name `topic` matches the valid pattern
 * `pattern` (both checked by the caller). O(segments^2) time at worst. */
bool shmbus__pattern_match(const char *pattern, const char *topic);

/* True if `pattern` has no wildcard (it names one topic). */
bool shmbus__pattern_literal(const char *pattern);

#endif /* SHMBUS_PATTERN_H */
