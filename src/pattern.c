/* pattern: topic patterns. See pattern.h. */
#include "pattern.h"

#include <stdint.h>
#include <string.h>

#include "proto.h"
#include "shmbus/discover.h"
#include "shmbus/error.h"

/* One segment of a string: where it starts and how long it is. */
struct pattern_seg {
  const char *s;
  size_t n;
};

/* Splits a (length-checked) string into segments. Returns their count, or
 * 0 when there are too many. */
static size_t pattern_split(const char *s, struct pattern_seg *out) {
  size_t n = 0;
  const char *p = s;

  for (;;) {
    const char *slash = strchr(p, '/');
    size_t len = slash != NULL ? (size_t)(slash - p) : strlen(p);
    if (n == SHMBUS__PATTERN_MAX_SEGS)
      return 0;
    out[n].s = p;
    out[n].n = len;
    n++;
    if (slash == NULL)
      return n;
    p = slash + 1;
  }
}

static bool pattern_is(const struct pattern_seg *g, const char *lit) {
  return g->n == strlen(lit) && memcmp(g->s, lit, g->n) == 0;
}

int shmbus__pattern_validate(const char *pattern) {
  char lit[SHMBUS__TOPIC_MAX + 1];
  size_t len;
  size_t i;
  size_t o = 0;

  if (pattern == NULL)
    return SHMBUS_EBADPATTERN;
  len = strnlen(pattern, SHMBUS__TOPIC_MAX + 1);
  if (len == 0 || len > SHMBUS__TOPIC_MAX)
    return SHMBUS_EBADPATTERN;
  /* Replace each wildcard segment by a literal one ("x") and check the
   * result as a topic name: the literals then follow exactly the topic
   * name rules, and a '*' anywhere else is refused as a bad character. */
  for (i = 0; i <= len; i++) {
    size_t start = i;
    while (i < len && pattern[i] != '/')
      i++;
    if ((i - start == 1 && pattern[start] == '*') ||
        (i - start == 2 && pattern[start] == '*' && pattern[start + 1] == '*'))
      lit[o++] = 'x';
    else {
      memcpy(lit + o, pattern + start, i - start);
      o += i - start;
    }
    if (i < len)
      lit[o++] = '/';
  }
  lit[o] = '\0';
  return shmbus__topic_validate(lit, true) == 0 ? 0 : SHMBUS_EBADPATTERN;
}

bool shmbus__pattern_literal(const char *pattern) {
  return strchr(pattern, '*') == NULL;
}

bool shmbus__pattern_match(const char *pattern, const char *topic) {
  struct pattern_seg p[SHMBUS__PATTERN_MAX_SEGS];
  struct pattern_seg t[SHMBUS__PATTERN_MAX_SEGS];
  /* ok[j]: the first i pattern segments match the first j topic segments. */
  bool ok[SHMBUS__PATTERN_MAX_SEGS + 1];
  bool next[SHMBUS__PATTERN_MAX_SEGS + 1];
  size_t np = pattern_split(pattern, p);
  size_t nt = pattern_split(topic, t);
  size_t i;
  size_t j;

  if (np == 0 || nt == 0)
    return false;
  /* A '$' first segment is matched only by a literal. */
  if (t[0].s[0] == '$' && (pattern_is(&p[0], "*") || pattern_is(&p[0], "**")))
    return false;
  memset(ok, 0, sizeof(ok));
  ok[0] = true;
  for (i = 0; i < np; i++) {
    bool any = pattern_is(&p[i], "**");
    bool one = pattern_is(&p[i], "*");
    memset(next, 0, sizeof(next));
    for (j = 0; j <= nt; j++) {
      if (any) {
        /* Zero segments, or one more than a shorter prefix took. */
        next[j] = ok[j] || (j > 0 && next[j - 1]);
      } else if (j > 0 && ok[j - 1]) {
        next[j] = one || (p[i].n == t[j - 1].n && memcmp(p[i].s, t[j - 1].s, p[i].n) == 0);
      }
    }
    memcpy(ok, next, sizeof(ok));
  }
  return ok[nt];
}

int shmbus_pattern_check(const char *pattern) {
  return shmbus__pattern_validate(pattern);
}

int shmbus_pattern_match(const char *pattern, const char *topic) {
  int rv;

  if ((rv = shmbus__pattern_validate(pattern)) < 0)
    return rv;
  if ((rv = shmbus__topic_validate(topic, true)) < 0)
    return rv;
  return shmbus__pattern_match(pattern, topic) ? 1 : 0;
}
