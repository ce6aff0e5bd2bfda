/* The MCAP writer and reader (cli/mcap.c): files written and read back
 * with both compressions, every prefix of a file (a writer killed at any
 * byte), every byte of a file corrupted, hostile lengths; and the files
 * read by the reference reader, @mcap/core under node (skipped with the
 * reason when node or the package is missing: see mcap_node_setup.sh). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mcap.h"

static char work[64];

static void setup(void) {
  snprintf(work, sizeof(work), "/tmp/shmbus-mcaptest-XXXXXX");
  cr_assert_not_null(mkdtemp(work));
}

static void teardown(void) {
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", work);
  (void)!system(cmd);
}

TestSuite(mcap, .init = setup, .fini = teardown, .timeout = 120);

/* Payload i of channel c: a length and bytes that depend on both. */
static size_t payload(uint16_t c, uint32_t i, uint8_t *buf) {
  size_t n = (i * 37u + c * 11u) % 300u;
  for (size_t k = 0; k < n; k++)
    buf[k] = (uint8_t)(i * 7u + k * 13u + c);
  return n;
}

#define N_CH 3

/* Writes `n` messages round-robin on N_CH channels into a fresh file;
 * returns its malloc'd bytes and length. */
static uint8_t *write_file(const char *name, enum mcap_compression comp, size_t chunk, uint32_t n,
                           size_t *len) {
  struct mcap_writer_opts o = {comp, 0, chunk, "", "shmbus-test"};
  struct mcap_kv meta[2] = {{"shmbus.slots", "64"}, {"k", "v"}};
  struct mcap_kv md[1] = {{"clock", "test"}};
  char path[128];
  uint8_t buf[400];
  uint16_t ids[N_CH];
  mcap_writer *w;
  struct stat sb;
  uint8_t *data;
  FILE *f;
  int fd;

  snprintf(path, sizeof(path), "%s/%s", work, name);
  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  cr_assert_geq(fd, 0);
  cr_assert_eq(mcap_writer_open(&w, fd, &o), 0);
  cr_assert_eq(mcap_writer_add_metadata(w, "shmbus", md, 1), 0);
  for (int c = 0; c < N_CH; c++) {
    char topic[32];
    snprintf(topic, sizeof(topic), "t/%d", c);
    cr_assert_eq(mcap_writer_add_channel(w, topic, c == 0 ? "msgpack" : "application/octet-stream",
                                         meta, c == 2 ? 0 : 2, &ids[c]),
                 0);
    cr_assert_eq(ids[c], c + 1);
  }
  for (uint32_t i = 0; i < n; i++) {
    uint16_t c = (uint16_t)(i % N_CH);
    size_t l = payload(c, i, buf);
    cr_assert_eq(mcap_writer_write(w, ids[c], i, 1000000000ull + i * 1000ull, 2000 + i, buf, l), 0);
  }
  cr_assert_eq(mcap_writer_close(w), 0);
  cr_assert_eq(close(fd), 0);
  cr_assert_eq(stat(path, &sb), 0);
  data = malloc((size_t)sb.st_size);
  f = fopen(path, "rb");
  cr_assert_not_null(f);
  cr_assert_eq(fread(data, 1, (size_t)sb.st_size, f), (size_t)sb.st_size);
  fclose(f);
  *len = (size_t)sb.st_size;
  return data;
}

struct got {
  uint32_t n;
  uint32_t channels;
  uint32_t metadata;
  bool bad;
};

static int on_channel(void *ctx, const struct mcap_channel *ch) {
  struct got *g = ctx;
  char want[32];
  snprintf(want, sizeof(want), "t/%u", ch->id - 1u);
  if (strcmp(ch->topic, want) != 0 || ch->schema_id != 0 ||
      strcmp(ch->encoding, ch->id == 1 ? "msgpack" : "application/octet-stream") != 0 ||
      ch->n_meta != (ch->id == 3 ? 0u : 2u) ||
      (ch->n_meta == 2 &&
       (strcmp(ch->meta[0].key, "shmbus.slots") != 0 || strcmp(ch->meta[0].value, "64") != 0 ||
        strcmp(ch->meta[1].value, "v") != 0)))
    g->bad = true;
  g->channels++;
  return 0;
}

/* Messages must come in the order written, each intact. */
static int on_message(void *ctx, const struct mcap_channel *ch, const struct mcap_message *m) {
  struct got *g = ctx;
  uint8_t buf[400];
  uint16_t c = (uint16_t)(g->n % N_CH);
  size_t l = payload(c, g->n, buf);
  if (ch->id != c + 1 || m->channel_id != c + 1 || m->sequence != g->n ||
      m->log_time != 1000000000ull + g->n * 1000ull || m->publish_time != 2000 + g->n ||
      m->len != l || memcmp(m->data, buf, l) != 0)
    g->bad = true;
  g->n++;
  return 0;
}

static int on_metadata(void *ctx, const char *name, const struct mcap_kv *kv, size_t n) {
  struct got *g = ctx;
  if (strcmp(name, "shmbus") != 0 || n != 1 || strcmp(kv[0].key, "clock") != 0 ||
      strcmp(kv[0].value, "test") != 0)
    g->bad = true;
  g->metadata++;
  return 0;
}

static const struct mcap_read_cb cbs = {on_channel, on_message, on_metadata};

static void round_trip(enum mcap_compression comp) {
  struct mcap_read_result res;
  struct got g = {0};
  size_t len;
  uint8_t *data = write_file("rt.mcap", comp, 2048, 1000, &len);

  cr_assert_eq(mcap_read(data, len, &cbs, &g, &res), 0, "%s", res.error);
  cr_assert(!g.bad);
  cr_assert_eq(g.n, 1000);
  cr_assert_eq(g.channels, N_CH);
  cr_assert_eq(g.metadata, 1);
  cr_assert(!res.truncated);
  cr_assert(res.summary_checked);
  cr_assert_eq(res.messages, 1000);
  cr_assert_gt(res.chunks, 10, "small chunks: %llu", (unsigned long long)res.chunks);
  cr_assert_eq(res.good_bytes, len);
  free(data);
}

Test(mcap, round_trip_uncompressed) {
  round_trip(MCAP_COMPRESS_NONE);
}
Test(mcap, round_trip_zstd) {
  round_trip(MCAP_COMPRESS_ZSTD);
}

Test(mcap, crc32_is_zlibs) {
  /* The check value of CRC-32/ISO-HDLC, and a split computation. */
  cr_assert_eq(mcap_crc32(0, "123456789", 9), 0xcbf43926u);
  cr_assert_eq(mcap_crc32(mcap_crc32(0, "1234", 4), "56789", 5), 0xcbf43926u);
  cr_assert_eq(mcap_crc32(0, "", 0), 0);
  /* An empty piece, even a NULL one (an empty buffer), changes nothing. */
  cr_assert_eq(mcap_crc32(0xcbf43926u, NULL, 0), 0xcbf43926u);
}

Test(mcap, crc32_combine_matches_the_whole) {
  /* Every split of a buffer whose pieces' lengths cover small, odd and
   * large (multi-bit) counts: combining the pieces' CRCs gives the whole
   * buffer's, as the writer's data-section CRC relies on. */
  size_t n = 300000;
  uint8_t *b = malloc(n);
  uint32_t x = 12345;
  cr_assert_not_null(b);
  for (size_t i = 0; i < n; i++) {
    x = x * 1103515245u + 12345u;
    b[i] = (uint8_t)(x >> 16);
  }
  uint32_t whole = mcap_crc32(0, b, n);
  size_t cuts[] = {0, 1, 2, 3, 7, 8, 64, 1000, 65536, 65537, 150001, n - 1, n};
  for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
    size_t k = cuts[i];
    uint32_t a = mcap_crc32(0, b, k), c = mcap_crc32(0, b + k, n - k);
    cr_assert_eq(mcap_crc32_combine(a, c, n - k), whole, "cut at %zu", k);
  }
  cr_assert_eq(mcap_crc32_combine(0xcbf43926u, 0, 0), 0xcbf43926u);
  free(b);
}

Test(mcap, empty_recording_is_valid) {
  struct mcap_writer_opts o = {MCAP_COMPRESS_ZSTD, 0, 0, NULL, NULL};
  struct mcap_read_result res;
  char path[128];
  uint8_t data[4096];
  mcap_writer *w;
  ssize_t n;
  int fd;

  snprintf(path, sizeof(path), "%s/empty.mcap", work);
  fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  cr_assert_eq(mcap_writer_open(&w, fd, &o), 0);
  cr_assert_eq(mcap_writer_close(w), 0);
  n = pread(fd, data, sizeof(data), 0);
  close(fd);
  cr_assert_gt(n, 0);
  cr_assert_eq(mcap_read(data, (size_t)n, NULL, NULL, &res), 0, "%s", res.error);
  cr_assert(!res.truncated);
  cr_assert_eq(res.messages, 0);
}

/* A writer killed at any byte: every prefix reads without error, as far
 * as its complete chunks go, and the count never goes down as the prefix
 * grows. */
static void every_prefix(enum mcap_compression comp) {
  size_t len;
  uint8_t *data = write_file("pre.mcap", comp, 1024, 100, &len);
  uint64_t prev = 0;

  for (size_t l = 0; l <= len; l++) {
    struct mcap_read_result res;
    struct got g = {0};
    uint8_t *copy = malloc(l > 0 ? l : 1); /* exactly l bytes: ASan sees any overread */
    int rv;
    memcpy(copy, data, l);
    rv = mcap_read(copy, l, &cbs, &g, &res);
    cr_assert_eq(rv, 0, "prefix %zu of %zu: %d %s", l, len, rv, res.error);
    cr_assert(!g.bad, "prefix %zu", l);
    cr_assert_eq(res.truncated, l != len, "prefix %zu of %zu", l, len);
    cr_assert_geq(res.messages, prev, "prefix %zu", l);
    cr_assert_leq(res.good_bytes, l);
    prev = res.messages;
    free(copy);
  }
  cr_assert_eq(prev, 100);
  free(data);
}

Test(mcap, every_prefix_reads_uncompressed) {
  every_prefix(MCAP_COMPRESS_NONE);
}
Test(mcap, every_prefix_reads_zstd) {
  every_prefix(MCAP_COMPRESS_ZSTD);
}

/* Any byte changed: the reader answers 0 or -EBADMSG, never more messages
 * than written, never an out-of-bounds access (ASan). */
Test(mcap, every_byte_corrupted) {
  size_t len;
  uint8_t *data = write_file("bad.mcap", MCAP_COMPRESS_ZSTD, 512, 60, &len);
  static const uint8_t flips[] = {0x01, 0x80, 0xff};
  uint64_t caught = 0, tries = 0;

  for (size_t i = 0; i < len; i++) {
    for (size_t f = 0; f < sizeof(flips); f++) {
      struct mcap_read_result res;
      uint8_t *copy = malloc(len);
      int rv;
      memcpy(copy, data, len);
      copy[i] ^= flips[f];
      rv = mcap_read(copy, len, NULL, NULL, &res);
      cr_assert(rv == 0 || rv == -EBADMSG, "byte %zu: %d", i, rv);
      cr_assert_leq(res.messages, 60);
      if (rv == -EBADMSG)
        cr_assert_neq(res.error[0], '\0');
      caught += rv != 0;
      tries++;
      free(copy);
    }
  }
  /* CRCs everywhere: nearly every change is noticed (a flipped byte in a
   * metadata value or in padding the CRCs do not cover may not be). */
  cr_assert_gt(caught, tries * 9 / 10, "caught %llu of %llu", (unsigned long long)caught,
               (unsigned long long)tries);
  free(data);
}

/* Hand-made hostile files. */
static size_t rec(uint8_t *p, uint8_t op, const void *content, uint64_t n) {
  p[0] = op;
  for (int i = 0; i < 8; i++)
    p[1 + i] = (uint8_t)(n >> (8 * i));
  memcpy(p + 9, content, (size_t)n);
  return 9 + (size_t)n;
}

Test(mcap, hostile_lengths_are_refused) {
  uint8_t f[512], c[128];
  struct mcap_read_result res;
  size_t n = 0, k;

  memcpy(f, MCAP_MAGIC, 8);
  n = 8;
  memset(c, 0, 8); /* header: two empty strings */
  n += rec(f + n, MCAP_OP_HEADER, c, 8);
  /* A chunk that claims 4 GiB uncompressed. */
  memset(c, 0, sizeof(c));
  k = 16;
  c[k + 4] = 1; /* uncompressed size 2^32 (byte 4 of the u64) */
  k += 8 + 4;
  c[k] = 4;
  memcpy(c + k + 4, "zstd", 4);
  k += 8;
  k += 8; /* records length 0 */
  n += rec(f + n, MCAP_OP_CHUNK, c, k);
  cr_assert_eq(mcap_read(f, n, NULL, NULL, &res), -EBADMSG);
  cr_assert_not_null(strstr(res.error, "bytes (the most accepted"), "%s", res.error);

  /* A channel whose topic length runs past its record. */
  n = 8 + 17;
  memset(c, 0, sizeof(c));
  c[0] = 1;    /* id 1 */
  c[4] = 0xff; /* topic length 255 */
  n += rec(f + n, MCAP_OP_CHANNEL, c, 12);
  cr_assert_eq(mcap_read(f, n, NULL, NULL, &res), -EBADMSG);
  cr_assert_not_null(strstr(res.error, "Channel"), "%s", res.error);

  /* A message before its channel. */
  n = 8 + 17;
  memset(c, 0, sizeof(c));
  c[0] = 7;
  n += rec(f + n, MCAP_OP_MESSAGE, c, 22);
  cr_assert_eq(mcap_read(f, n, NULL, NULL, &res), -EBADMSG);
  cr_assert_not_null(strstr(res.error, "before its Channel"), "%s", res.error);

  /* Not MCAP at all, and a file that is only a part of the magic. */
  cr_assert_eq(mcap_read("hello, world", 12, NULL, NULL, &res), -EBADMSG);
  cr_assert_eq(mcap_read(MCAP_MAGIC, 5, NULL, NULL, &res), 0);
  cr_assert(res.truncated);
  /* A record length near 2^64 is a cut-short file, not an overflow. */
  n = 8 + 17;
  f[n] = MCAP_OP_MESSAGE;
  memset(f + n + 1, 0xff, 8);
  cr_assert_eq(mcap_read(f, n + 9, NULL, NULL, &res), 0);
  cr_assert(res.truncated);
}

static int stop_after_three(void *ctx, const struct mcap_channel *ch,
                            const struct mcap_message *m) {
  int *n = ctx;
  (void)ch;
  (void)m;
  return ++*n == 3 ? 7 : 0;
}

Test(mcap, a_callback_stops_the_read) {
  struct mcap_read_cb cb = {NULL, stop_after_three, NULL};
  size_t len;
  uint8_t *data = write_file("stop.mcap", MCAP_COMPRESS_NONE, 0, 10, &len);
  int n = 0;

  cr_assert_eq(mcap_read(data, len, &cb, &n, NULL), 7);
  cr_assert_eq(n, 3);
  free(data);
}

/* ---- the reference reader ---------------------------------------------------- */

#if defined(MCAP_NODE_MODULES) && defined(MCAP_CHECK_JS)
/* Runs tests/mcap_check.js on `path`; its JSON line goes into out. Skips
 * the test when node or @mcap/core is not there. */
static void node_check(const char *path, char *out, size_t cap) {
  char mod[512], cmd[1024];
  FILE *p;
  size_t n;
  int st;

  snprintf(mod, sizeof(mod), "%s/@mcap/core/package.json", MCAP_NODE_MODULES);
  if (access(mod, R_OK) != 0 || system("command -v node >/dev/null 2>&1") != 0) {
    teardown();
    cr_skip_test("node or @mcap/core is missing (ctest's mcap_node_setup installs it with npm; "
                 "scripts/deps.sh --test installs node and npm)");
  }
  snprintf(cmd, sizeof(cmd), "node '%s' '%s' '%s'", MCAP_CHECK_JS, MCAP_NODE_MODULES, path);
  p = popen(cmd, "r");
  cr_assert_not_null(p);
  n = fread(out, 1, cap - 1, p);
  out[n] = '\0';
  st = pclose(p);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "mcap_check.js: %s", out);
}

static void reference_reads(enum mcap_compression comp, const char *name) {
  char path[128], out[8192];
  size_t len;
  uint8_t *data = write_file(name, comp, 2048, 999, &len);

  snprintf(path, sizeof(path), "%s/%s", work, name);
  node_check(path, out, sizeof(out));
  cr_assert_not_null(strstr(out, "\"stream\":{\"done\":true,\"messages\":999,"), "%s", out);
  cr_assert_not_null(strstr(out, "\"indexed\":{\"messages\":999,"), "%s", out);
  cr_assert_not_null(strstr(out, "\"statistics_messages\":999"), "%s", out);
  cr_assert_not_null(strstr(out, "\"data_crc_ok\":true"), "%s", out);
  cr_assert_not_null(strstr(out, "\"encoding\":\"msgpack\""), "%s", out);
  cr_assert_not_null(strstr(out, "\"shmbus.slots\":\"64\""), "%s", out);
  free(data);
}

Test(mcap, reference_reader_reads_uncompressed) {
  reference_reads(MCAP_COMPRESS_NONE, "ref-none.mcap");
}
Test(mcap, reference_reader_reads_zstd) {
  reference_reads(MCAP_COMPRESS_ZSTD, "ref-zstd.mcap");
}
#endif

/* A cancelled reservation leaves no trace: the next message takes its
 * place, and the file reads back with only the committed ones. */
static int count_msgs(void *ctx, const struct mcap_channel *ch, const struct mcap_message *m) {
  uint32_t *n = ctx;
  (void)ch;
  if (m->sequence != *n || m->len != 4 || memcmp(m->data, "keep", 4) != 0)
    return 1;
  ++*n;
  return 0;
}

Test(mcap, reserve_then_cancel_or_commit) {
  struct mcap_writer_opts o = {MCAP_COMPRESS_ZSTD, 0, 256, NULL, NULL};
  struct mcap_read_cb cb = {NULL, count_msgs, NULL};
  struct mcap_read_result res;
  char path[128];
  uint8_t data[65536];
  mcap_writer *w;
  uint16_t id;
  uint32_t seq = 0, n = 0;
  void *buf;
  ssize_t len;
  int fd;

  snprintf(path, sizeof(path), "%s/res.mcap", work);
  fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  cr_assert_eq(mcap_writer_open(&w, fd, &o), 0);
  cr_assert_eq(mcap_writer_add_channel(w, "t", "application/octet-stream", NULL, 0, &id), 0);
  cr_assert_eq(mcap_writer_commit(w), -EINVAL);
  for (int i = 0; i < 100; i++) {
    cr_assert_eq(mcap_writer_reserve(w, id, seq, (uint64_t)i, (uint64_t)i, 4, &buf), 0);
    if (i % 3 == 0) {
      memcpy(buf, "drop", 4);
      mcap_writer_cancel(w);
    } else {
      memcpy(buf, "keep", 4);
      cr_assert_eq(mcap_writer_commit(w), 0);
      seq++;
    }
  }
  cr_assert_eq(mcap_writer_messages(w), seq);
  cr_assert_eq(mcap_writer_close(w), 0);
  len = pread(fd, data, sizeof(data), 0);
  close(fd);
  cr_assert_eq(mcap_read(data, (size_t)len, &cb, &n, &res), 0, "%s", res.error);
  cr_assert_eq(n, seq);
  cr_assert(res.summary_checked);
}

/* Manual chunks give the same file as automatic ones: the builder seals
 * where the automatic writer would have written (-ENOSPC, commit's 1), and
 * writing the sealed chunks in order (here on the same thread; `shmbus
 * record` does it on another) gives the same bytes. Emptied chunks are
 * handed back for reuse, and a channel added mid-way lands in the chunk
 * being built. */
static size_t write_manual(bool manual, bool mix, const char *name, uint8_t *out, size_t cap) {
  struct mcap_writer_opts o = {MCAP_COMPRESS_ZSTD, 0, 700, NULL, NULL, manual};
  char path[128];
  uint8_t buf[400];
  uint16_t ids[N_CH];
  mcap_chunk *spare = NULL;
  mcap_writer *w;
  ssize_t len;
  int fd, sealed = 0;

  snprintf(path, sizeof(path), "%s/%s", work, name);
  fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
  cr_assert_geq(fd, 0);
  cr_assert_eq(mcap_writer_open(&w, fd, &o), 0);
  cr_assert_eq(mcap_writer_add_channel(w, "t/0", "msgpack", NULL, 0, &ids[0]), 0);
  for (uint32_t i = 0; i < 500; i++) {
    uint16_t c = (uint16_t)(i % N_CH);
    size_t l = payload(c, i, buf);
    void *dst;
    int rv;
    if (i == 1)
      for (int k = 1; k < N_CH; k++) {
        char topic[32];
        snprintf(topic, sizeof(topic), "t/%d", k);
        cr_assert_eq(
            mcap_writer_add_channel(w, topic, "application/octet-stream", NULL, 0, &ids[k]), 0);
      }
    if (i == 0)
      c = 0;
    rv = mcap_writer_reserve(w, ids[c], i, 1000 + i, 2000 + i, l, &dst);
    if (rv == -ENOSPC) {
      mcap_chunk *k;
      cr_assert(manual);
      k = mcap_writer_seal(w, spare);
      cr_assert_not_null(k);
      cr_assert_gt(mcap_chunk_messages(k), 0);
      cr_assert_gt(mcap_chunk_bytes(k), 0);
      cr_assert_eq(mix && sealed % 2 == 1 ? mcap_writer_write_chunk_uncompressed(w, k)
                                          : mcap_writer_write_chunk(w, k),
                   0);
      cr_assert_eq(mcap_chunk_bytes(k), 0, "written chunks come back empty");
      spare = k;
      sealed++;
      rv = mcap_writer_reserve(w, ids[c], i, 1000 + i, 2000 + i, l, &dst);
    }
    cr_assert_eq(rv, 0);
    memcpy(dst, buf, l);
    rv = mcap_writer_commit(w);
    if (rv == 1) {
      mcap_chunk *k;
      cr_assert(manual);
      k = mcap_writer_seal(w, spare);
      cr_assert_not_null(k);
      cr_assert_eq(mix && sealed % 2 == 1 ? mcap_writer_write_chunk_uncompressed(w, k)
                                          : mcap_writer_write_chunk(w, k),
                   0);
      spare = k;
      sealed++;
      /* Nothing to seal now. */
      cr_assert_null(mcap_writer_seal(w, NULL));
      continue;
    }
    cr_assert_eq(rv, 0);
  }
  if (manual)
    cr_assert_gt(sealed, 10);
  /* The last chunk: close writes it, as it would a channel-only chunk. */
  cr_assert_eq(mcap_writer_close(w), 0);
  mcap_chunk_free(spare);
  len = pread(fd, out, cap, 0);
  close(fd);
  cr_assert_gt(len, 0);
  cr_assert_lt((size_t)len, cap);
  return (size_t)len;
}

Test(mcap, manual_chunks_write_the_same_file) {
  static uint8_t a[1 << 18], b[1 << 18];
  struct mcap_read_result res;
  size_t la = write_manual(false, false, "auto.mcap", a, sizeof(a));
  size_t lb = write_manual(true, false, "manual.mcap", b, sizeof(b));

  cr_assert_eq(la, lb);
  cr_assert_eq(memcmp(a, b, la), 0);
  cr_assert_eq(mcap_read(b, lb, NULL, NULL, &res), 0, "%s", res.error);
  cr_assert(res.summary_checked);
  cr_assert_eq(res.messages, 500);
  cr_assert_gt(res.chunks, 10);
}

/* A writer that is behind stores some chunks uncompressed (`shmbus
 * record`'s writer thread): every other chunk of a zstd file here. The
 * file reads back whole, with the summary checked, and is larger than the
 * all-zstd one; the reference reader reads it too. */
Test(mcap, chunks_of_both_compressions_in_one_file) {
  static uint8_t a[1 << 18], m[1 << 18];
  struct mcap_read_result res;
  size_t la = write_manual(true, false, "zstd.mcap", a, sizeof(a));
  size_t lm = write_manual(true, true, "mixed.mcap", m, sizeof(m));

  cr_assert_gt(lm, la, "uncompressed chunks take more room: %zu vs %zu", lm, la);
  cr_assert_eq(mcap_read(m, lm, NULL, NULL, &res), 0, "%s", res.error);
  cr_assert(res.summary_checked);
  cr_assert(!res.truncated);
  cr_assert_eq(res.messages, 500);
  cr_assert_gt(res.chunks, 10);
#if defined(MCAP_NODE_MODULES) && defined(MCAP_CHECK_JS)
  {
    char path[128], out[8192];
    snprintf(path, sizeof(path), "%s/mixed.mcap", work);
    node_check(path, out, sizeof(out));
    cr_assert_not_null(strstr(out, "\"stream\":{\"done\":true,\"messages\":500,"), "%s", out);
    cr_assert_not_null(strstr(out, "\"indexed\":{\"messages\":500,"), "%s", out);
    cr_assert_not_null(strstr(out, "\"data_crc_ok\":true"), "%s", out);
  }
#endif
}
