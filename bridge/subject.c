/* subject: topic <-> subject mapping. See subject.h. */
#include "subject.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "shmbus/discover.h"
#include "shmbus/error.h"

static const char bridge_hex[] = "0123456789ABCDEF";

/* True for a byte a subject token carries as it is. */
static bool bridge_plain(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

static int bridge_unhex(unsigned char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1; /* lower case is not canonical */
}

int bridge_prefix_check(const char *prefix) {
  size_t n = strlen(prefix), i;
  bool empty = true;

  if (n == 0 || n > 128)
    return -EINVAL;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)prefix[i];
    if (c == '.') {
      if (empty)
        return -EINVAL;
      empty = true;
    } else if (bridge_plain(c)) {
      empty = false;
    } else {
      return -EINVAL;
    }
  }
  return empty ? -EINVAL : 0;
}

/* Appends `seg` (n bytes of one topic segment) escaped, at out[*len]. */
static int bridge_put_segment(const char *seg, size_t n, char *out, size_t cap, size_t *len) {
  size_t i;

  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)seg[i];
    if (bridge_plain(c)) {
      if (*len + 1 >= cap)
        return -ENAMETOOLONG;
      out[(*len)++] = (char)c;
    } else {
      if (*len + 3 >= cap)
        return -ENAMETOOLONG;
      out[(*len)++] = '%';
      out[(*len)++] = bridge_hex[c >> 4];
      out[(*len)++] = bridge_hex[c & 15];
    }
  }
  out[*len] = '\0';
  return 0;
}

static int bridge_put(const char *s, size_t n, char *out, size_t cap, size_t *len) {
  if (*len + n >= cap)
    return -ENAMETOOLONG;
  memcpy(out + *len, s, n);
  *len += n;
  out[*len] = '\0';
  return 0;
}

int bridge_subject_from_topic(const char *prefix, const char *topic, char *out, size_t cap) {
  size_t len = 0;
  const char *p = topic;
  int rv;

  /* A topic name is a valid pattern without wildcards: that checks it. */
  if (strchr(topic, '*') != NULL || shmbus_pattern_match(topic, topic) != 1)
    return SHMBUS_EBADNAME;
  if (cap == 0)
    return -ENAMETOOLONG;
  out[0] = '\0';
  if ((rv = bridge_put(prefix, strlen(prefix), out, cap, &len)) < 0)
    return rv;
  for (;;) {
    const char *slash = strchr(p, '/');
    size_t n = slash != NULL ? (size_t)(slash - p) : strlen(p);
    if ((rv = bridge_put(".", 1, out, cap, &len)) < 0 ||
        (rv = bridge_put_segment(p, n, out, cap, &len)) < 0)
      return rv;
    if (slash == NULL)
      break;
    p = slash + 1;
  }
  return (int)len;
}

int bridge_topic_from_subject(const char *prefix, const char *subject, char *out, size_t cap) {
  size_t plen = strlen(prefix), len = 0;
  const char *p;
  bool seg_start = true;

  if (strncmp(subject, prefix, plen) != 0 || subject[plen] != '.' || subject[plen + 1] == '\0')
    return -EINVAL;
  for (p = subject + plen + 1; *p != '\0'; p++) {
    unsigned char c = (unsigned char)*p;
    if (len + 1 >= cap)
      return -ENAMETOOLONG;
    if (c == '.') {
      if (seg_start)
        return -EINVAL; /* an empty token */
      out[len++] = '/';
      seg_start = true;
      continue;
    }
    seg_start = false;
    if (bridge_plain(c)) {
      out[len++] = (char)c;
    } else if (c == '%') {
      int hi = bridge_unhex((unsigned char)p[1]),
          lo = hi >= 0 ? bridge_unhex((unsigned char)p[2]) : -1;
      unsigned char v;
      if (hi < 0 || lo < 0)
        return -EINVAL;
      v = (unsigned char)(hi << 4 | lo);
      if (bridge_plain(v) || v == '/' || v == '%' || v == 0)
        return -EINVAL; /* not how the bridge writes it */
      out[len++] = (char)v;
      p += 2;
    } else {
      return -EINVAL;
    }
  }
  if (seg_start)
    return -EINVAL; /* a trailing '.' */
  out[len] = '\0';
  /* What it decoded to must be a topic name. */
  if (strchr(out, '*') != NULL || shmbus_pattern_match(out, out) != 1)
    return -EINVAL;
  return (int)len;
}

int bridge_subject_filters(const char *prefix, const char *pattern, char out[2][BRIDGE_SUBJECT_MAX],
                           size_t cap) {
  size_t len = 0, before = 0;
  const char *p = pattern;
  bool tail_any = false;
  int rv;

  if ((rv = shmbus_pattern_check(pattern)) < 0)
    return rv;
  if (cap == 0)
    return -ENAMETOOLONG;
  out[0][0] = '\0';
  if ((rv = bridge_put(prefix, strlen(prefix), out[0], cap, &len)) < 0)
    return rv;
  for (;;) {
    const char *slash = strchr(p, '/');
    size_t n = slash != NULL ? (size_t)(slash - p) : strlen(p);
    before = len;
    if ((rv = bridge_put(".", 1, out[0], cap, &len)) < 0)
      return rv;
    if (n == 2 && p[0] == '*' && p[1] == '*') {
      if ((rv = bridge_put(">", 1, out[0], cap, &len)) < 0)
        return rv;
      tail_any = slash == NULL;
      break;
    }
    if (n == 1 && p[0] == '*')
      rv = bridge_put("*", 1, out[0], cap, &len);
    else
      rv = bridge_put_segment(p, n, out[0], cap, &len);
    if (rv < 0)
      return rv;
    if (slash == NULL)
      break;
    p = slash + 1;
  }
  /* A trailing "**" matches nothing too ("a" for the pattern a + "**"):
   * subscribe to "P.a" as well (not for "**"
   * alone: "P" itself is no topic). */
  if (tail_any && before > strlen(prefix)) {
    memcpy(out[1], out[0], before);
    out[1][before] = '\0';
    return 2;
  }
  return 1;
}
