/* subject: shmbus topic names <-> NATS subjects. A topic "a/b/c" is the
 * subject "P.a.b.c" under prefix P. Each byte of a segment outside
 * [A-Za-z0-9_-] (in a topic name: '.', and '$' of "$sys") is written as
 * '%' and two upper-case hex digits ("%2E" for '.'). '%' never occurs in a
 * topic name, so the mapping is one to one; a subject that is not in this
 * canonical form (a lower-case or needless escape, a bad token) is no
 * topic. Pure functions, no allocation (docs/bridge.md). */
#ifndef SHMBUS_BRIDGE_SUBJECT_H
#define SHMBUS_BRIDGE_SUBJECT_H

#include <stddef.h>

/* The longest subject the bridge makes: a prefix of up to 128 bytes, '.'
 * and a topic of 255 bytes, every byte escaped. */
#define BRIDGE_SUBJECT_MAX (128 + 1 + 3 * 255 + 1)

/* Returns 0 if `prefix` is a usable subject prefix: 1..128 bytes of tokens
 * of [A-Za-z0-9_-] separated by '.'; else -EINVAL. */
int bridge_prefix_check(const char *prefix);

/* Writes the subject of `topic` under `prefix` into out[cap]. Returns its
 * length, SHMBUS_EBADNAME for a name that is no topic, -ENAMETOOLONG. */
int bridge_subject_from_topic(const char *prefix, const char *topic, char *out, size_t cap);

/* Writes the topic of subject `subject` into out[cap]. Returns its length,
 * or -EINVAL when the subject is not under `prefix`, not in canonical form,
 * or decodes to a name that is no topic; -ENAMETOOLONG. */
int bridge_topic_from_subject(const char *prefix, const char *subject, char *out, size_t cap);

/* The NATS subscriptions that cover topic pattern `pattern` under
 * `prefix`: up to two subjects (a trailing "**" also matches nothing at
 * all, which a '>' does not) written to out[0] and out[1], each of cap
 * bytes. '*' becomes '*', the first "**" becomes '>' and ends the subject
 * (what follows is checked on each message with shmbus_pattern_match).
 * Returns the number of subjects, SHMBUS_EBADPATTERN, -ENAMETOOLONG. */
int bridge_subject_filters(const char *prefix, const char *pattern, char out[2][BRIDGE_SUBJECT_MAX],
                           size_t cap);

#endif /* SHMBUS_BRIDGE_SUBJECT_H */
