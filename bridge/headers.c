/* headers: the bridge's NATS headers. See headers.h. */
#include "headers.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#ifndef _WIN32
#include <dlfcn.h>
#endif

int bridge_name_check(const char *name) {
  size_t n = strlen(name), i;

  if (n == 0 || n > BRIDGE_NAME_MAX)
    return -EINVAL;
  for (i = 0; i < n; i++) {
    char c = name[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-'))
      return -EINVAL;
  }
  return 0;
}

int bridge_hdr_set(natsMsg *msg, const struct bridge_hdr *h, const char *msg_id) {
  char seq[24], ts[24];

  snprintf(seq, sizeof(seq), "%" PRIu64, h->seq);
  snprintf(ts, sizeof(ts), "%" PRIu64, h->ts_ns);
  if (natsMsgHeader_Set(msg, "Shmbus-Origin", h->origin) != NATS_OK ||
      natsMsgHeader_Set(msg, "Shmbus-Topic", h->topic) != NATS_OK ||
      natsMsgHeader_Set(msg, "Shmbus-Seq", seq) != NATS_OK ||
      natsMsgHeader_Set(msg, "Shmbus-Time", ts) != NATS_OK ||
      (msg_id != NULL && natsMsgHeader_Set(msg, "Nats-Msg-Id", msg_id) != NATS_OK))
    return -ENOMEM;
  return 0;
}

/* ---- the header block written directly ------------------------------------
 *
 * libnats 3.x keeps the headers of a message it is given in a map
 * (natsMsgHeader_Set: a hash table, and a copied key and a copied value per
 * header: about 19 allocations for the bridge's four headers, freed again
 * on libnats's collector thread) and encodes the map at each publish. A
 * message libnats *received* instead keeps its header block as it came, and
 * a publish sends that block as it is until a header is read or changed.
 * libnats builds such messages with natsMsg_create, a function its library
 * exports but its public header does not declare. For the libnats versions
 * whose source was read for this (3.4.0 to 3.10.1: that signature, the block
 * and the payload copied into the message's one allocation, HPUB sending
 * the block unchanged), the bridge builds its messages that way: one
 * allocation per message. Anywhere else (another version, no such symbol,
 * Windows), or when a message built so does not read back right through
 * the public header API (checked once, at the first call), it takes the
 * public path. */

typedef natsStatus (*hdr_create_fn)(natsMsg **msg, const char *subject, int subject_len,
                                    const char *reply, int reply_len, const char *buf, int buf_len,
                                    int hdr_len);

#define HDR_FAST_MIN 0x030400 /* libnats 3.4.0 */
#define HDR_FAST_MAX 0x030AFF /* libnats 3.10.x */

typedef void (*hdr_free_fn)(void *msg);

static hdr_create_fn hdr_create;
static hdr_free_fn hdr_free; /* libnats's natsMsg_free: bridge_msg_free */
static bool hdr_read_raw;    /* bridge_hdr_get reads the block itself */
static uv_once_t hdr_once = UV_ONCE_INIT;

/* Writes v in decimal at p; returns the digits written (1 to 20). */
static size_t hdr_u64(char *p, uint64_t v) {
  char tmp[20];
  size_t n = 0, i;

  do {
    tmp[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (i = 0; i < n; i++)
    p[i] = tmp[n - 1 - i];
  return n;
}

static size_t hdr_put(char *p, const char *s, size_t n) {
  memcpy(p, s, n);
  return n;
}

#define HDR_PUT_LIT(p, lit) hdr_put((p), (lit), sizeof(lit) - 1)

/* The block's length at most, for these names and id. */
static size_t hdr_block_max(const struct bridge_hdr *h, const char *msg_id) {
  return 160 + strlen(h->origin) + strlen(h->topic) + (msg_id != NULL ? strlen(msg_id) : 0);
}

/* Writes the header block at p (room: hdr_block_max); returns its length. */
static size_t hdr_block(char *p, const struct bridge_hdr *h, const char *msg_id) {
  size_t n = 0;

  n += HDR_PUT_LIT(p + n, "NATS/1.0\r\nShmbus-Origin: ");
  n += hdr_put(p + n, h->origin, strlen(h->origin));
  n += HDR_PUT_LIT(p + n, "\r\nShmbus-Topic: ");
  n += hdr_put(p + n, h->topic, strlen(h->topic));
  n += HDR_PUT_LIT(p + n, "\r\nShmbus-Seq: ");
  n += hdr_u64(p + n, h->seq);
  n += HDR_PUT_LIT(p + n, "\r\nShmbus-Time: ");
  n += hdr_u64(p + n, h->ts_ns);
  if (msg_id != NULL) {
    n += HDR_PUT_LIT(p + n, "\r\nNats-Msg-Id: ");
    n += hdr_put(p + n, msg_id, strlen(msg_id));
  }
  n += HDR_PUT_LIT(p + n, "\r\n\r\n");
  return n;
}

/* Builds with hdr_create in `buf` (room checked by the caller). */
static int hdr_msg_fast(natsMsg **out, const char *subject, const struct bridge_hdr *h,
                        const char *msg_id, const void *data, size_t len, char *buf) {
  size_t hl = hdr_block(buf, h, msg_id);

  if (len > 0)
    memcpy(buf + hl, data, len);
  return hdr_create(out, subject, (int)strlen(subject), NULL, 0, buf, (int)(hl + len), (int)hl) ==
                 NATS_OK
             ? 0
             : -ENOMEM;
}

static bool hdr_raw(natsMsg *msg, const char **blk, size_t *len);
static int hdr_get_map(natsMsg *msg, struct bridge_hdr *h);

/* Whether the block of messages built by hdr_create, with and without a
 * reply subject, is found where hdr_raw looks, and one without headers
 * has none there. */
static bool hdr_raw_check(void) {
  static const char blk[] = "NATS/1.0\r\nShmbus-Origin: o\r\n\r\npayload";
  const size_t hl = sizeof(blk) - 1 - 7;
  const char *reply[2] = {NULL, "_INBOX.check"}, *got;
  struct bridge_hdr h;
  bool ok = true;
  size_t len;
  int i;

  for (i = 0; i < 2 && ok; i++) {
    natsMsg *m = NULL;
    int rl = reply[i] != NULL ? (int)strlen(reply[i]) : 0;
    if (hdr_create(&m, "check.subject", 13, reply[i], rl, blk, (int)sizeof(blk) - 1, (int)hl) !=
        NATS_OK)
      return false;
    ok = hdr_raw(m, &got, &len) && len == hl && memcmp(got, blk, hl) == 0 &&
         natsMsg_GetDataLength(m) == 7 && memcmp(natsMsg_GetData(m), "payload", 7) == 0 &&
         /* and libnats reads the same block */
         natsMsgHeader_Get(m, "Shmbus-Origin", &got) == NATS_OK && strcmp(got, "o") == 0;
    natsMsg_Destroy(m);
    m = NULL;
    if (ok && hdr_create(&m, "check.subject", 13, reply[i], rl, "payload", 7, -1) != NATS_OK)
      return false;
    ok = ok && !hdr_raw(m, &got, &len) && hdr_get_map(m, &h) == -EBADMSG;
    natsMsg_Destroy(m);
  }
  return ok;
}

/* Once: whether this libnats is one the fast path was checked with, and
 * whether a message it builds reads back as written, through the public
 * API and where hdr_raw finds the block. */
static void hdr_fast_init(void) {
  static const char payload[] = "payload";
  struct bridge_hdr h, back, raw;
  char buf[1024];
  const char *id = NULL, *blk;
  size_t blen;
  natsMsg *m = NULL;
  hdr_create_fn fn = NULL;
  int v = nats_GetVersionNumber();

  if (v < HDR_FAST_MIN || v > HDR_FAST_MAX)
    return;
#ifndef _WIN32
  {
    void *sym = dlsym(RTLD_DEFAULT, "natsMsg_create");
    if (sym == NULL)
      return;
    memcpy(&fn, &sym, sizeof(fn)); /* a data pointer to a function pointer, without a cast */
  }
#endif
  if (fn == NULL)
    return;
#ifndef _WIN32
  {
    /* natsMsg_Destroy hands every message to libnats's collector thread
     * (waking it when its list was empty), which calls natsMsg_free on it:
     * the headers' map if one was lifted, then the message's one
     * allocation. The same versions export it; the loop calls it itself
     * (bridge_msg_free). */
    void *sym = dlsym(RTLD_DEFAULT, "natsMsg_free");
    if (sym != NULL)
      memcpy(&hdr_free, &sym, sizeof(hdr_free));
  }
#endif
  hdr_create = fn;
  memset(&h, 0, sizeof(h));
  strcpy(h.origin, "check-origin");
  strcpy(h.topic, "check/topic");
  h.seq = UINT64_MAX;
  h.ts_ns = 1234567890123456789ull;
  if (hdr_msg_fast(&m, "check.subject", &h, "check-id", payload, sizeof(payload), buf) != 0) {
    hdr_create = NULL;
    hdr_free = NULL;
    return;
  }
  /* Reading, first (libnats's map, once lifted, has written NULs into the
   * block): the block where hdr_raw looks, parsed as written; and the
   * layout with a reply subject and without headers. */
  hdr_read_raw = hdr_raw(m, &blk, &blen) && bridge_hdr_parse(blk, blen, &raw) == 0 &&
                 strcmp(raw.origin, h.origin) == 0 && strcmp(raw.topic, h.topic) == 0 &&
                 raw.seq == h.seq && raw.ts_ns == h.ts_ns;
  /* Writing: what libnats's public API reads. */
  if (strcmp(natsMsg_GetSubject(m), "check.subject") != 0 ||
      natsMsg_GetDataLength(m) != (int)sizeof(payload) ||
      memcmp(natsMsg_GetData(m), payload, sizeof(payload)) != 0 || hdr_get_map(m, &back) != 0 ||
      strcmp(back.origin, h.origin) != 0 || strcmp(back.topic, h.topic) != 0 || back.seq != h.seq ||
      back.ts_ns != h.ts_ns || natsMsgHeader_Get(m, "Nats-Msg-Id", &id) != NATS_OK || id == NULL ||
      strcmp(id, "check-id") != 0) {
    hdr_create = NULL;
    hdr_free = NULL;
    hdr_read_raw = false;
  }
  /* (Freed directly if that is how the bridge will free: the headers' map
   * was lifted above, so this checks natsMsg_free frees one too.) */
  if (hdr_free != NULL)
    hdr_free(m);
  else
    natsMsg_Destroy(m);
  if (hdr_read_raw)
    hdr_read_raw = hdr_raw_check();
}

bool bridge_hdr_fast(void) {
  uv_once(&hdr_once, hdr_fast_init);
  return hdr_create != NULL;
}

void bridge_msg_free(natsMsg *msg) {
  uv_once(&hdr_once, hdr_fast_init);
  if (hdr_free != NULL && msg != NULL)
    hdr_free(msg);
  else
    natsMsg_Destroy(msg);
}

bool bridge_msg_free_direct(void) {
  uv_once(&hdr_once, hdr_fast_init);
  return hdr_free != NULL;
}

bool bridge_hdr_fast_read(void) {
  uv_once(&hdr_once, hdr_fast_init);
  return hdr_read_raw;
}

void bridge_hdr_buf_free(struct bridge_hdr_buf *buf) {
  free(buf->p);
  buf->p = NULL;
  buf->cap = 0;
}

int bridge_hdr_msg(natsMsg **out, const char *subject, const struct bridge_hdr *h,
                   const char *msg_id, const void *data, size_t len, struct bridge_hdr_buf *buf) {
  natsMsg *m = NULL;
  size_t need;

  *out = NULL;
  if (len > INT_MAX / 2)
    return -EINVAL;
  if (bridge_hdr_fast()) {
    need = hdr_block_max(h, msg_id) + len;
    if (need > INT_MAX)
      return -EINVAL;
    if (need > buf->cap) {
      char *p = realloc(buf->p, need);
      if (p == NULL)
        return -ENOMEM;
      buf->p = p;
      buf->cap = need;
    }
    return hdr_msg_fast(out, subject, h, msg_id, data, len, buf->p);
  }
  if (natsMsg_Create(&m, subject, NULL, (const char *)data, (int)len) != NATS_OK)
    return -ENOMEM;
  if (bridge_hdr_set(m, h, msg_id) < 0) {
    natsMsg_Destroy(m);
    return -ENOMEM;
  }
  *out = m;
  return 0;
}

/* The one value of header `key`, or NULL (missing, or given twice). */
static const char *bridge_hdr_one(natsMsg *msg, const char *key) {
  const char **vals = NULL;
  const char *v;
  int n = 0;

  if (natsMsgHeader_Values(msg, key, &vals, &n) != NATS_OK || n != 1) {
    free((void *)vals);
    return NULL;
  }
  v = vals[0];
  free((void *)vals);
  return v;
}

/* A decimal uint64 of n bytes at s, without sign, spaces or leading zeros
 * beyond "0". */
static int bridge_parse_u64n(const char *s, size_t n, uint64_t *out) {
  uint64_t v = 0;
  size_t i;

  if (s == NULL || n == 0 || n > 20 || (n > 1 && s[0] == '0'))
    return -EBADMSG;
  for (i = 0; i < n; i++) {
    unsigned d = (unsigned)(s[i] - '0');
    if (d > 9 || v > (UINT64_MAX - d) / 10)
      return -EBADMSG;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

static int bridge_parse_u64(const char *s, uint64_t *out) {
  return bridge_parse_u64n(s, s != NULL ? strlen(s) : 0, out);
}

/* Whether origin (n bytes) is a name and topic (tn bytes) fits. */
static bool hdr_names_ok(const char *origin, size_t n, const char *topic, size_t tn,
                         const struct bridge_hdr *h) {
  size_t i;

  if (n == 0 || n > BRIDGE_NAME_MAX || tn >= sizeof(h->topic))
    return false;
  for (i = 0; i < n; i++) {
    char c = origin[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-'))
      return false;
  }
  /* A topic with a NUL would read back shorter than it came. */
  return memchr(topic, '\0', tn) == NULL;
}

/* Through libnats's header API: the block lifted into its map. */
static int hdr_get_map(natsMsg *msg, struct bridge_hdr *h) {
  const char *origin = bridge_hdr_one(msg, "Shmbus-Origin");
  const char *topic = bridge_hdr_one(msg, "Shmbus-Topic");

  if (origin == NULL || topic == NULL ||
      !hdr_names_ok(origin, strlen(origin), topic, strlen(topic), h))
    return -EBADMSG;
  if (bridge_parse_u64(bridge_hdr_one(msg, "Shmbus-Seq"), &h->seq) < 0 ||
      bridge_parse_u64(bridge_hdr_one(msg, "Shmbus-Time"), &h->ts_ns) < 0)
    return -EBADMSG;
  strcpy(h->origin, origin);
  strcpy(h->topic, topic);
  return 0;
}

/* ---- the header block read directly ----------------------------------------
 *
 * Reading one header through libnats's API lifts the whole block into the
 * message's map (a hash table, an allocation per header, an array per
 * natsMsgHeader_Values): about a fifth of an importing bridge's time went
 * to malloc and free. libnats keeps the block of a message it received as
 * it came, in the message's one allocation (natsMsg_create, the libnats
 * versions named above): the subject and a NUL, the reply subject and a
 * NUL if there is one, the block and a NUL, then the payload. The public
 * getters give the subject, the reply and the payload, so the block is the
 * bytes between them. That is used only where the writing side's start-up
 * check passed (the same versions, the same function builds both); the
 * block is then parsed here, strictly (bridge_hdr_parse). Once libnats has
 * lifted a block into its map (any natsMsgHeader_ call), it has written
 * NULs into it: the block is read before any such call, or not at all. */

/* The header block of `msg` (a message libnats built with natsMsg_create):
 * *blk and *len; false when it has none. */
static bool hdr_raw(natsMsg *msg, const char **blk, size_t *len) {
  const char *subject = natsMsg_GetSubject(msg);
  const char *reply = natsMsg_GetReply(msg);
  const char *data = natsMsg_GetData(msg);
  const char *start;
  uintptr_t s, d;

  if (subject == NULL || data == NULL)
    return false;
  start = reply != NULL ? reply : subject;
  start += strlen(start) + 1;
  /* Without headers the payload follows the NUL at once; with them, the
   * block and its own NUL come first. Compared as addresses: both point
   * into the message's allocation when the layout is libnats's. */
  s = (uintptr_t)start;
  d = (uintptr_t)data;
  if (d <= s || data[-1] != '\0')
    return false;
  *blk = start;
  *len = (size_t)(d - s - 1);
  return true;
}

/* Whether byte c may stand in a header's value (SP, HTAB, visible ASCII,
 * and bytes of UTF-8 sequences; no control bytes, no DEL). */
static bool hdr_value_byte(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

/* Whether byte c may stand in a header's name (visible ASCII but ':'). */
static bool hdr_name_byte(unsigned char c) {
  return c > 0x20 && c < 0x7f && c != ':';
}

int bridge_hdr_parse(const char *blk, size_t len, struct bridge_hdr *h) {
  static const char pre[] = "NATS/1.0\r\n";
  static const char *const names[4] = {"Shmbus-Origin", "Shmbus-Topic", "Shmbus-Seq",
                                       "Shmbus-Time"};
  const char *val[4] = {NULL, NULL, NULL, NULL};
  size_t vlen[4] = {0, 0, 0, 0};
  size_t p, i;
  uint64_t seq, ts;

  if (len < sizeof(pre) - 1 + 2 || memcmp(blk, pre, sizeof(pre) - 1) != 0)
    return -EBADMSG;
  p = sizeof(pre) - 1;
  for (;;) {
    size_t name, nlen, v, vend;
    if (len - p < 2)
      return -EBADMSG; /* no empty line at the end */
    if (blk[p] == '\r' && blk[p + 1] == '\n') {
      if (p + 2 != len)
        return -EBADMSG; /* bytes after the empty line */
      break;
    }
    /* name ':' [SP/HTAB]* value [SP/HTAB]* CRLF; a line starting with a
     * space (the obsolete folding) has no name and is refused. */
    name = p;
    while (p < len && hdr_name_byte((unsigned char)blk[p]))
      p++;
    nlen = p - name;
    if (nlen == 0 || p == len || blk[p] != ':')
      return -EBADMSG;
    p++;
    while (p < len && (blk[p] == ' ' || blk[p] == '\t'))
      p++;
    v = p;
    while (p < len && hdr_value_byte((unsigned char)blk[p]))
      p++;
    if (len - p < 2 || blk[p] != '\r' || blk[p + 1] != '\n')
      return -EBADMSG; /* a control byte, a bare CR or LF, or the end */
    vend = p;
    while (vend > v && (blk[vend - 1] == ' ' || blk[vend - 1] == '\t'))
      vend--;
    p += 2;
    for (i = 0; i < 4; i++) {
      if (nlen == strlen(names[i]) && memcmp(blk + name, names[i], nlen) == 0) {
        if (val[i] != NULL)
          return -EBADMSG; /* given twice */
        val[i] = blk + v;
        vlen[i] = vend - v;
        break;
      }
    }
    /* Other headers (Nats-Msg-Id, ...) are not ours: skipped. */
  }
  if (val[0] == NULL || val[1] == NULL || !hdr_names_ok(val[0], vlen[0], val[1], vlen[1], h) ||
      bridge_parse_u64n(val[2], vlen[2], &seq) < 0 || bridge_parse_u64n(val[3], vlen[3], &ts) < 0)
    return -EBADMSG;
  memcpy(h->origin, val[0], vlen[0]);
  h->origin[vlen[0]] = '\0';
  memcpy(h->topic, val[1], vlen[1]);
  h->topic[vlen[1]] = '\0';
  h->seq = seq;
  h->ts_ns = ts;
  return 0;
}

int bridge_hdr_get(natsMsg *msg, struct bridge_hdr *h) {
  const char *blk;
  size_t len;

  /* A message without a block (one built here with libnats's header API)
   * has its headers in its map, if anywhere. */
  if (bridge_hdr_fast_read() && hdr_raw(msg, &blk, &len))
    return bridge_hdr_parse(blk, len, h);
  return hdr_get_map(msg, h);
}
