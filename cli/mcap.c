/* mcap: MCAP writer and reader (see mcap.h and docs/mcap.md).
 *
 * Encoding (spec, "Serialization"): integers little-endian; a string is a
 * u32 byte count and UTF-8 bytes; a map or an array is a u32 byte count and
 * its entries; a record is an opcode byte, a u64 content length and the
 * content. Offsets are from the start of the file. */
#define _GNU_SOURCE /* O_DIRECT */
#include "mcap.h"

#include <errno.h>
#include <fcntl.h>
#include <libdeflate.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#if !defined(_WIN32)
#include <aio.h>
#endif
#include <unistd.h>
#include <zstd.h>

/* ---- CRC-32 ------------------------------------------------------------------ */

/* libdeflate's crc32 is the spec's CRC (zlib's polynomial and
 * conditioning) and runs at memory speed: it picks a PCLMULQDQ/AVX folding
 * loop at run time where the CPU has one (about 13 GB/s on this project's
 * test machine, against zlib's 1-4 GB/s). */
uint32_t mcap_crc32(uint32_t crc, const void *data, size_t len) {
  /* libdeflate takes a NULL buffer as "give the initial value" (0): an
   * empty piece (an empty buffer's NULL pointer) must leave the CRC as it
   * is. */
  if (len == 0)
    return crc;
  return libdeflate_crc32(crc, data, len);
}

/* a(x) * b(x) modulo the CRC polynomial, both in the CRC's reflected bit
 * order (bit 31 is x^0). */
static uint32_t crc_mulmod(uint32_t a, uint32_t b) {
  uint32_t m = 1u << 31, p = 0;

  for (;;) {
    if ((a & m) != 0) {
      p ^= b;
      if ((a & (m - 1)) == 0)
        break;
    }
    m >>= 1;
    b = (b & 1) != 0 ? (b >> 1) ^ 0xedb88320u : b >> 1;
  }
  return p;
}

/* The CRC of A then B from crc(A), crc(B) and B's length: crc(A) shifted
 * past len_b zero bytes (times x^(8 len_b), by squaring) plus crc(B); the
 * conditioning cancels out because both CRCs carry it. */
uint32_t mcap_crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
  uint32_t sq = 1u << 23; /* x^8: one byte */
  uint32_t xn = 1u << 31; /* 1 */

  while (len_b != 0) {
    if ((len_b & 1) != 0)
      xn = crc_mulmod(sq, xn);
    sq = crc_mulmod(sq, sq);
    len_b >>= 1;
  }
  return crc_mulmod(xn, crc_a) ^ crc_b;
}

/* ---- growable byte buffers ------------------------------------------------------ */

struct mbuf {
  uint8_t *p;
  size_t len;
  size_t cap;
};

static int mbuf_reserve(struct mbuf *b, size_t more) {
  size_t cap;
  uint8_t *p;

  if (more <= b->cap - b->len)
    return 0;
  if (more > SIZE_MAX / 2 - b->len)
    return -ENOMEM;
  cap = b->cap != 0 ? b->cap : 4096;
  while (cap - b->len < more)
    cap *= 2;
  if ((p = realloc(b->p, cap)) == NULL)
    return -ENOMEM;
  b->p = p;
  b->cap = cap;
  return 0;
}

/* The put_* calls assume mbuf_reserve made room. */
static void put_bytes(struct mbuf *b, const void *d, size_t n) {
  if (n > 0)
    memcpy(b->p + b->len, d, n);
  b->len += n;
}

static void put_u8(struct mbuf *b, uint8_t v) {
  b->p[b->len++] = v;
}

static void put_le(struct mbuf *b, uint64_t v, int n) {
  for (int i = 0; i < n; i++)
    b->p[b->len++] = (uint8_t)(v >> (8 * i));
}

static void put_u16(struct mbuf *b, uint16_t v) {
  put_le(b, v, 2);
}
static void put_u32(struct mbuf *b, uint32_t v) {
  put_le(b, v, 4);
}
static void put_u64(struct mbuf *b, uint64_t v) {
  put_le(b, v, 8);
}

static void put_str(struct mbuf *b, const char *s, size_t n) {
  put_u32(b, (uint32_t)n);
  put_bytes(b, s, n);
}

static void set_u64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}

/* The longest string or map the writer writes (a sanity bound on what
 * callers pass). */
#define WR_STR_MAX (64u << 10)

/* Bytes a map of `n` pairs takes, or SIZE_MAX when a string is too long. */
static size_t kv_size(const struct mcap_kv *kv, size_t n) {
  size_t s = 4;
  for (size_t i = 0; i < n; i++) {
    size_t k = strlen(kv[i].key), v = strlen(kv[i].value);
    if (k > WR_STR_MAX || v > WR_STR_MAX)
      return SIZE_MAX;
    s += 8 + k + v;
  }
  return s > WR_STR_MAX ? SIZE_MAX : s;
}

static void put_kv(struct mbuf *b, const struct mcap_kv *kv, size_t n) {
  put_u32(b, (uint32_t)(kv_size(kv, n) - 4));
  for (size_t i = 0; i < n; i++) {
    put_str(b, kv[i].key, strlen(kv[i].key));
    put_str(b, kv[i].value, strlen(kv[i].value));
  }
}

/* ---- writer -------------------------------------------------------------------- */

struct wr_chan {
  struct mbuf rec; /* its whole Channel record, for the summary */
  uint64_t count;  /* messages written */
};

/* A chunk's records before they go to the file, with what its Message
 * Index records and Chunk Index need. The builder side fills one; the
 * sink side (wr_chunk_write) writes it and empties it, keeping its memory
 * for the next. */
struct mcap_chunk {
  struct mbuf data; /* the uncompressed records */
  uint64_t t0, t1;  /* first and last log time */
  uint64_t msgs;
  struct mbuf *index; /* per channel (id - 1): (log_time, offset) pairs */
  size_t n_index;
  uint16_t *used; /* channels with messages here, in first-message order */
  size_t n_used;
  size_t cap_used;
};

/* The writer's fields fall in two groups. The builder's (cur, ch, n_ch,
 * cap_ch, messages, t0, t1, pend_*) are used by the calls that add
 * channels and messages and by mcap_writer_seal; the sink's (fd, failed,
 * off, crc, zc, zbuf, rec, chunk_idx, meta_idx, n_meta, n_chunks) by
 * mcap_writer_write_chunk. With o.manual_chunks the two groups may be used
 * by two threads at once (mcap.h). */
struct mcap_writer {
  struct mcap_writer_opts o;
  /* builder */
  mcap_chunk *cur;
  struct wr_chan *ch;
  size_t n_ch;
  size_t cap_ch;
  uint64_t messages;
  uint64_t t0, t1; /* first and last log time */
  size_t pend_len; /* a reserved message's record length, 0: none */
  uint16_t pend_channel;
  uint64_t pend_time;
  /* sink */
  int fd;
  bool failed;  /* a write failed: the file is not finished */
  uint64_t off; /* bytes written */
  uint32_t crc; /* of the data section so far, then of the summary */
  ZSTD_CCtx *zc;
  struct mbuf zbuf;      /* compressed chunk */
  struct mbuf rec;       /* a record being assembled */
  struct mbuf chunk_idx; /* Chunk Index records for the summary */
  struct mbuf meta_idx;  /* Metadata Index records for the summary */
  uint32_t n_meta;
  uint32_t n_chunks;
  /* O_DIRECT (opts.direct): the bytes not yet written, from file offset
   * dbase (a multiple of MCAP_DIRECT_ALIGN), in an aligned buffer. */
  bool direct;
  uint8_t *dbuf;
  size_t dlen, dcap;
  uint64_t dbase;
  bool proven; /* an O_DIRECT write succeeded: the file system takes them */
  struct mcap_io_stats io;
#if !defined(_WIN32)
  /* opts.overlap: the write in flight, from abuf (the buffer dbuf was
   * before the last swap). */
  bool in_flight;
  struct aiocb aio;
  uint64_t aio_t0;
  uint8_t *abuf;
  size_t acap;
#endif
};

void mcap_chunk_free(mcap_chunk *c) {
  if (c == NULL)
    return;
  for (size_t i = 0; i < c->n_index; i++)
    free(c->index[i].p);
  free(c->index);
  free(c->used);
  free(c->data.p);
  free(c);
}

size_t mcap_chunk_bytes(const mcap_chunk *c) {
  return c->data.len;
}

uint64_t mcap_chunk_messages(const mcap_chunk *c) {
  return c->msgs;
}

/* Empties a chunk (its memory stays). */
static void wr_chunk_reset(mcap_chunk *c) {
  for (size_t i = 0; i < c->n_used; i++)
    c->index[c->used[i] - 1].len = 0;
  c->n_used = 0;
  c->data.len = 0;
  c->msgs = 0;
  c->t0 = c->t1 = 0;
}

/* The builder's current chunk, created when there is none. */
static int wr_cur(mcap_writer *w) {
  if (w->cur == NULL && (w->cur = calloc(1, sizeof(*w->cur))) == NULL)
    return -ENOMEM;
  return 0;
}

/* ---- O_DIRECT ------------------------------------------------------------------ */

/* With opts.direct the sink's bytes go into an aligned buffer (dbuf) and
 * reach the file at each sync point (a chunk written, a Metadata record,
 * the end): the aligned prefix with one O_DIRECT pwrite, around the page
 * cache; the unaligned tail (under MCAP_DIRECT_ALIGN bytes) stays at the
 * front of the buffer for the next direct write, and is also written now
 * through the page cache (O_DIRECT cleared for that one pwrite), so that
 * the file always ends where the last record written ends. The next direct
 * write covers that block again, tail included: the kernel writes back and
 * drops the cached page first. A file system that refuses O_DIRECT
 * (EINVAL at fcntl or at the first aligned write) gets every byte through
 * the page cache from then on; mcap_writer_direct says which. */

/* Windows has no O_DIRECT on a C runtime descriptor (unbuffered I/O is a
 * CreateFile flag): wr_set_direct refuses there, so the writer never takes
 * the direct path, and the calls it would make are not built. */
#if defined(_WIN32)
#define WR_HAVE_DIRECT 0
#else
#define WR_HAVE_DIRECT 1
#endif

/* Writes all of p[0, n) at `off`; *done is what was written. */
static int wr_pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off, size_t *done) {
  *done = 0;
#if !WR_HAVE_DIRECT
  (void)fd;
  (void)p;
  (void)off;
  return n > 0 ? -EINVAL : 0;
#else
  while (*done < n) {
    ssize_t k = pwrite(fd, p + *done, n - *done, (off_t)(off + *done));
    if (k < 0 && errno == EINTR)
      continue;
    if (k <= 0)
      return k < 0 ? -errno : -EIO;
    *done += (size_t)k;
  }
#endif
  return 0;
}

#if WR_HAVE_DIRECT
static uint64_t wr_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
#endif

/* Sets or clears O_DIRECT on the fd. */
static int wr_set_direct(int fd, bool on) {
#if !WR_HAVE_DIRECT
  (void)fd;
  (void)on;
  return -EINVAL;
#else
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, on ? fl | O_DIRECT : fl & ~O_DIRECT) < 0)
    return -errno;
  return 0;
#endif
}

/* Room for `more` bytes in dbuf. */
static int wr_direct_room(mcap_writer *w, size_t more) {
  size_t cap;
  void *p;

  if (more <= w->dcap - w->dlen)
    return 0;
  if (more > SIZE_MAX / 2 - w->dlen)
    return -ENOMEM;
  cap = w->dcap != 0 ? w->dcap : (size_t)1 << 20;
  while (cap - w->dlen < more)
    cap *= 2;
#if !WR_HAVE_DIRECT
  (void)p;
  return -ENOMEM;
#else
  if (posix_memalign(&p, MCAP_DIRECT_ALIGN, cap) != 0)
    return -ENOMEM;
#endif
  if (w->dlen > 0)
    memcpy(p, w->dbuf, w->dlen);
  free(w->dbuf);
  w->dbuf = p;
  w->dcap = cap;
  return 0;
}

/* After O_DIRECT was refused: everything still buffered goes through the
 * page cache, and the writer writes with write() from the end on. */
static int wr_direct_give_up(mcap_writer *w, size_t from) {
  size_t done;
  int rv;

  w->direct = false;
  if ((rv = wr_set_direct(w->fd, false)) < 0 ||
      (rv = wr_pwrite_all(w->fd, w->dbuf + from, w->dlen - from, w->dbase + from, &done)) < 0)
    return rv;
  if (lseek(w->fd, (off_t)(w->dbase + w->dlen), SEEK_SET) < 0)
    return -errno;
  w->dbase += w->dlen;
  w->dlen = 0;
  return 0;
}

#if WR_HAVE_DIRECT
/* Counts one O_DIRECT write of `n` bytes that took `dt` ns. */
static void wr_io_count(mcap_writer *w, size_t n, uint64_t dt) {
  w->io.writes++;
  w->io.bytes += n;
  w->io.ns += dt;
  if (dt > w->io.max_ns)
    w->io.max_ns = dt;
  if (dt > MCAP_IO_SLOW_NS)
    w->io.slow++;
}

/* Waits for the write in flight (opts.overlap), finishing a short one
 * with pwrite. */
static int wr_direct_wait(mcap_writer *w) {
  const struct aiocb *list[1] = {&w->aio};
  ssize_t n;
  size_t done = 0;
  int err, rv = 0;

  if (!w->in_flight)
    return 0;
  /* Until it is done, whatever happens: the write reads abuf, which must
   * not be reused or freed before. aio_suspend fails only with EINTR (and
   * EAGAIN with a timeout) for a request that was queued. */
  while ((err = aio_error(&w->aio)) == EINPROGRESS)
    (void)aio_suspend(list, 1, NULL);
  if (err < 0)
    err = errno;
  w->in_flight = false;
  n = aio_return(&w->aio);
  if (err != 0 || n < 0) {
    rv = -(err != 0 ? err : EIO);
  } else if ((size_t)n < w->aio.aio_nbytes) {
    /* A short write (a full disk): the rest again from the aligned offset
     * at or before where it stopped, as O_DIRECT needs, so that the error
     * it ends with is the disk's, not EINVAL. */
    size_t from = (size_t)n & ~(size_t)(MCAP_DIRECT_ALIGN - 1);
    rv = wr_pwrite_all(w->fd, w->abuf + from, w->aio.aio_nbytes - from,
                       (uint64_t)w->aio.aio_offset + (uint64_t)from, &done);
  }
  wr_io_count(w, w->aio.aio_nbytes, wr_now_ns() - w->aio_t0);
  return rv;
}

/* Hands dbuf's aligned prefix (`aligned` bytes, > 0) to a background
 * write and continues with the other buffer, the unaligned tail copied to
 * its front. No write is in flight. */
static int wr_direct_post(mcap_writer *w, size_t aligned) {
  uint8_t *full = w->dbuf;
  size_t fcap = w->dcap, tail = w->dlen - aligned, done;
  int rv;

  w->dbuf = w->abuf;
  w->dcap = w->acap;
  w->abuf = full;
  w->acap = fcap;
  w->dlen = 0;
  if ((rv = wr_direct_room(w, tail)) < 0)
    return rv;
  if (tail > 0)
    memcpy(w->dbuf, full + aligned, tail);
  w->dlen = tail;
  memset(&w->aio, 0, sizeof(w->aio));
  w->aio.aio_fildes = w->fd;
  w->aio.aio_buf = full;
  w->aio.aio_nbytes = aligned;
  w->aio.aio_offset = (off_t)w->dbase;
  w->aio.aio_sigevent.sigev_notify = SIGEV_NONE;
  w->aio_t0 = wr_now_ns();
  w->dbase += aligned;
  if (aio_write(&w->aio) == 0) {
    w->in_flight = true;
    return 0;
  }
  /* No background write to be had (EAGAIN: out of resources): this one
   * is written here. */
  rv = wr_pwrite_all(w->fd, full, aligned, w->dbase - aligned, &done);
  wr_io_count(w, done, wr_now_ns() - w->aio_t0);
  return rv;
}
#endif

/* A sync point: the aligned prefix of dbuf with O_DIRECT, the tail through
 * the page cache (see above). With opts.overlap and `defer` (a chunk was
 * written and more will follow), once a direct write has succeeded: the
 * aligned prefix goes to a background write after the previous one
 * finished, and the tail waits for the next sync point. */
static int wr_direct_sync(mcap_writer *w, bool defer) {
  size_t aligned, done = 0, tail;
  int rv = 0;

  if (!w->direct || w->failed)
    return w->failed ? -EIO : 0;
#if WR_HAVE_DIRECT
  if ((rv = wr_direct_wait(w)) < 0)
    goto fail;
#endif
  aligned = w->dlen & ~(size_t)(MCAP_DIRECT_ALIGN - 1);
#if WR_HAVE_DIRECT
  if (defer && w->o.overlap && w->proven) {
    if (aligned > 0 && (rv = wr_direct_post(w, aligned)) < 0)
      goto fail;
    return 0;
  }
#else
  (void)defer;
#endif
  if (aligned > 0) {
#if WR_HAVE_DIRECT
    uint64_t t0 = wr_now_ns();
#endif
    rv = wr_pwrite_all(w->fd, w->dbuf, aligned, w->dbase, &done);
#if WR_HAVE_DIRECT
    wr_io_count(w, done, wr_now_ns() - t0);
#endif
    if (rv == -EINVAL && done % MCAP_DIRECT_ALIGN == 0)
      rv = wr_direct_give_up(w, done);
    if (rv < 0)
      goto fail;
    if (!w->direct)
      return 0;
    w->proven = true;
    tail = w->dlen - aligned;
    if (tail > 0)
      memmove(w->dbuf, w->dbuf + aligned, tail);
    w->dbase += aligned;
    w->dlen = tail;
  }
  if (w->dlen > 0) {
#if WR_HAVE_DIRECT
    uint64_t t0 = wr_now_ns(), dt;
#endif
    if ((rv = wr_set_direct(w->fd, false)) < 0 ||
        (rv = wr_pwrite_all(w->fd, w->dbuf, w->dlen, w->dbase, &done)) < 0 ||
        (rv = wr_set_direct(w->fd, true)) < 0)
      goto fail;
#if WR_HAVE_DIRECT
    dt = wr_now_ns() - t0;
    w->io.tails++;
    if (dt > w->io.tail_max_ns)
      w->io.tail_max_ns = dt;
#endif
  }
  return 0;

fail:
  w->failed = true;
  return rv;
}

int mcap_writer_settle(mcap_writer *w) {
  return wr_direct_sync(w, false);
}

bool mcap_writer_direct(const mcap_writer *w) {
  return w->direct;
}

void mcap_writer_io_stats(const mcap_writer *w, struct mcap_io_stats *s) {
  *s = w->io;
}

/* Writes to the file, without touching the CRC. */
static int wr_out_raw(mcap_writer *w, const void *data, size_t len) {
  const uint8_t *p = data;
  size_t left = len;

  if (w->failed)
    return -EIO;
  if (w->direct) {
    int rv = wr_direct_room(w, len);
    if (rv < 0)
      return rv;
    if (len > 0)
      memcpy(w->dbuf + w->dlen, data, len);
    w->dlen += len;
    w->off += len;
    return 0;
  }
  while (left > 0) {
    ssize_t n = write(w->fd, p, left);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      w->failed = true;
      return n < 0 ? -errno : -EIO;
    }
    p += n;
    left -= (size_t)n;
  }
  w->off += len;
  return 0;
}

/* Writes to the file; the CRC follows. */
static int wr_out(mcap_writer *w, const void *data, size_t len) {
  int rv = wr_out_raw(w, data, len);
  if (rv == 0)
    w->crc = mcap_crc32(w->crc, data, len);
  return rv;
}

/* Writes `len` bytes whose CRC-32 the caller knows already (`crc`): the
 * data section's CRC is extended with mcap_crc32_combine instead of
 * reading the bytes again. */
static int wr_out_known(mcap_writer *w, const void *data, size_t len, uint32_t crc) {
  uint32_t before = w->crc;
  int rv;

  if ((rv = wr_out_raw(w, data, len)) < 0)
    return rv;
  w->crc = mcap_crc32_combine(before, crc, len);
  return 0;
}

/* Writes w->rec as a record of opcode `op` whose content starts at
 * w->rec.p + 9 (the caller left room for the opcode and length). */
static int wr_rec_out(mcap_writer *w, uint8_t op) {
  w->rec.p[0] = op;
  set_u64(w->rec.p + 1, w->rec.len - 9);
  return wr_out(w, w->rec.p, w->rec.len);
}

static int wr_rec_begin(mcap_writer *w, size_t content) {
  int rv;
  w->rec.len = 0;
  if ((rv = mbuf_reserve(&w->rec, 9 + content)) < 0)
    return rv;
  w->rec.len = 9;
  return 0;
}

int mcap_writer_open(mcap_writer **wp, int fd, const struct mcap_writer_opts *opts) {
  mcap_writer *w;
  const char *profile, *library;
  size_t pl, ll;
  int rv;

  *wp = NULL;
  if (fd < 0 || opts == NULL ||
      (opts->compression != MCAP_COMPRESS_NONE && opts->compression != MCAP_COMPRESS_ZSTD))
    return -EINVAL;
  profile = opts->profile != NULL ? opts->profile : "";
  library = opts->library != NULL ? opts->library : "shmbus";
  pl = strlen(profile);
  ll = strlen(library);
  if (pl > WR_STR_MAX || ll > WR_STR_MAX)
    return -EINVAL;
  if ((w = calloc(1, sizeof(*w))) == NULL)
    return -ENOMEM;
  w->fd = fd;
  w->o = *opts;
  if (w->o.chunk_size == 0)
    w->o.chunk_size = 4u << 20;
  if (w->o.chunk_size > MCAP_CHUNK_MAX / 2)
    w->o.chunk_size = MCAP_CHUNK_MAX / 2;
  if (w->o.zstd_level == 0)
    w->o.zstd_level = 1;
  if (w->o.compression == MCAP_COMPRESS_ZSTD && (w->zc = ZSTD_createCCtx()) == NULL) {
    free(w);
    return -ENOMEM;
  }
  /* O_DIRECT on a regular file whose file system takes it, else the page
   * cache (on a pipe O_DIRECT would mean packet mode). */
  if (w->o.direct) {
    struct stat sb;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && wr_set_direct(fd, true) == 0)
      w->direct = true;
  }
  if ((rv = wr_cur(w)) < 0 || (rv = wr_out(w, MCAP_MAGIC, MCAP_MAGIC_LEN)) < 0 ||
      (rv = wr_rec_begin(w, 8 + pl + ll)) < 0)
    goto fail;
  put_str(&w->rec, profile, pl);
  put_str(&w->rec, library, ll);
  if ((rv = wr_rec_out(w, MCAP_OP_HEADER)) < 0 || (rv = wr_direct_sync(w, false)) < 0)
    goto fail;
  *wp = w;
  return 0;

fail:
  mcap_writer_free(w);
  return rv;
}

int mcap_writer_add_channel(mcap_writer *w, const char *topic, const char *encoding,
                            const struct mcap_kv *meta, size_t n_meta, uint16_t *id) {
  size_t tl = strlen(topic), el = strlen(encoding), ms = kv_size(meta, n_meta);
  struct wr_chan *c;
  int rv;

  if (tl > WR_STR_MAX || el > WR_STR_MAX || ms == SIZE_MAX)
    return -EINVAL;
  /* Ids start at 1 (0 reads as "none" in some tools); 65535 at most. */
  if (w->n_ch >= 65535)
    return -EOVERFLOW;
  if ((rv = wr_cur(w)) < 0)
    return rv;
  if (w->n_ch == w->cap_ch) {
    size_t cap = w->cap_ch != 0 ? w->cap_ch * 2 : 16;
    struct wr_chan *p = realloc(w->ch, cap * sizeof(*p));
    if (p == NULL)
      return -ENOMEM;
    w->ch = p;
    w->cap_ch = cap;
  }
  c = &w->ch[w->n_ch];
  memset(c, 0, sizeof(*c));
  if ((rv = mbuf_reserve(&c->rec, 9 + 2 + 2 + 4 + tl + 4 + el + ms)) < 0)
    return rv;
  put_u8(&c->rec, MCAP_OP_CHANNEL);
  put_u64(&c->rec, 2 + 2 + 4 + tl + 4 + el + ms);
  put_u16(&c->rec, (uint16_t)(w->n_ch + 1));
  put_u16(&c->rec, 0); /* no schema */
  put_str(&c->rec, topic, tl);
  put_str(&c->rec, encoding, el);
  put_kv(&c->rec, meta, n_meta);
  /* Into the current chunk, before any message of the channel. */
  if ((rv = mbuf_reserve(&w->cur->data, c->rec.len)) < 0) {
    free(c->rec.p);
    return rv;
  }
  put_bytes(&w->cur->data, c->rec.p, c->rec.len);
  w->n_ch++;
  *id = (uint16_t)w->n_ch;
  return 0;
}

/* Writes a chunk out: the Chunk record and its Message Index records, and
 * remembers a Chunk Index for the summary. Empties the chunk. `compress`:
 * with the writer's compression (none when it has none); false: as it is. */
static int wr_chunk_write(mcap_writer *w, mcap_chunk *k, bool compress) {
  const char *comp;
  size_t cl;
  const uint8_t *payload = k->data.p;
  size_t plen = k->data.len;
  uint64_t start = w->off, chunk_len, idx_start, content;
  uint32_t ucrc;
  int rv;

  if (w->failed)
    return -EIO;
  if (k->data.len == 0)
    return 0;
  if (k->msgs == 0)
    k->t0 = k->t1 = 0;
  compress = compress && w->zc != NULL;
  comp = compress ? "zstd" : "";
  cl = strlen(comp);
  ucrc = mcap_crc32(0, k->data.p, k->data.len);
  if (compress) {
    size_t bound = ZSTD_compressBound(k->data.len), n;
    w->zbuf.len = 0;
    if ((rv = mbuf_reserve(&w->zbuf, bound)) < 0)
      return rv;
    n = ZSTD_compressCCtx(w->zc, w->zbuf.p, bound, k->data.p, k->data.len, w->o.zstd_level);
    if (ZSTD_isError(n))
      return -EIO;
    payload = w->zbuf.p;
    plen = n;
  }
  content = 8 + 8 + 8 + 4 + 4 + cl + 8 + plen;
  if ((rv = wr_rec_begin(w, content - plen)) < 0)
    return rv;
  put_u64(&w->rec, k->t0);
  put_u64(&w->rec, k->t1);
  put_u64(&w->rec, k->data.len);
  put_u32(&w->rec, ucrc);
  put_str(&w->rec, comp, cl);
  put_u64(&w->rec, plen);
  w->rec.p[0] = MCAP_OP_CHUNK;
  set_u64(w->rec.p + 1, content);
  /* An uncompressed chunk's records are the bytes whose CRC is ucrc. */
  if ((rv = wr_out(w, w->rec.p, w->rec.len)) < 0 ||
      (rv = !compress ? wr_out_known(w, payload, plen, ucrc) : wr_out(w, payload, plen)) < 0)
    return rv;
  chunk_len = w->off - start;

  /* The Message Index records, and the Chunk Index that points at them. */
  idx_start = w->off;
  {
    size_t ci = w->chunk_idx.len;
    if ((rv = mbuf_reserve(&w->chunk_idx, 9 + 8 * 4 + 4 + 10 * k->n_used + 8 + 4 + cl + 16)) < 0)
      return rv;
    put_u8(&w->chunk_idx, MCAP_OP_CHUNK_INDEX);
    put_u64(&w->chunk_idx, 0); /* set below */
    put_u64(&w->chunk_idx, k->t0);
    put_u64(&w->chunk_idx, k->t1);
    put_u64(&w->chunk_idx, start);
    put_u64(&w->chunk_idx, chunk_len);
    put_u32(&w->chunk_idx, (uint32_t)(10 * k->n_used));
    for (size_t i = 0; i < k->n_used; i++) {
      struct mbuf *x = &k->index[k->used[i] - 1];
      put_u16(&w->chunk_idx, k->used[i]);
      put_u64(&w->chunk_idx, w->off);
      if ((rv = wr_rec_begin(w, 2 + 4 + x->len)) < 0)
        return rv;
      put_u16(&w->rec, k->used[i]);
      put_u32(&w->rec, (uint32_t)x->len);
      put_bytes(&w->rec, x->p, x->len);
      if ((rv = wr_rec_out(w, MCAP_OP_MESSAGE_INDEX)) < 0)
        return rv;
    }
    put_u64(&w->chunk_idx, w->off - idx_start);
    put_str(&w->chunk_idx, comp, cl);
    put_u64(&w->chunk_idx, plen);
    put_u64(&w->chunk_idx, k->data.len);
    set_u64(w->chunk_idx.p + ci + 1, w->chunk_idx.len - ci - 9);
  }
  wr_chunk_reset(k);
  w->n_chunks++;
  return wr_direct_sync(w, true);
}

/* Closes the current chunk, if it holds anything, and writes it out. */
static int wr_chunk_close(mcap_writer *w) {
  return w->cur != NULL ? wr_chunk_write(w, w->cur, true) : 0;
}

int mcap_writer_flush(mcap_writer *w) {
  return wr_chunk_close(w);
}

mcap_chunk *mcap_writer_seal(mcap_writer *w, mcap_chunk *fresh) {
  mcap_chunk *c = w->cur;

  if (c == NULL || c->data.len == 0)
    return NULL;
  if (fresh != NULL)
    wr_chunk_reset(fresh);
  w->cur = fresh; /* NULL: the next call that needs one allocates it */
  return c;
}

int mcap_writer_write_chunk(mcap_writer *w, mcap_chunk *c) {
  return wr_chunk_write(w, c, true);
}

int mcap_writer_write_chunk_uncompressed(mcap_writer *w, mcap_chunk *c) {
  return wr_chunk_write(w, c, false);
}

int mcap_writer_add_metadata(mcap_writer *w, const char *name, const struct mcap_kv *kv, size_t n) {
  size_t nl = strlen(name), ks = kv_size(kv, n);
  uint64_t start;
  int rv;

  if (nl > WR_STR_MAX || ks == SIZE_MAX)
    return -EINVAL;
  if ((rv = wr_chunk_close(w)) < 0)
    return rv;
  start = w->off;
  if ((rv = wr_rec_begin(w, 4 + nl + ks)) < 0)
    return rv;
  put_str(&w->rec, name, nl);
  put_kv(&w->rec, kv, n);
  if ((rv = wr_rec_out(w, MCAP_OP_METADATA)) < 0)
    return rv;
  if ((rv = mbuf_reserve(&w->meta_idx, 9 + 16 + 4 + nl)) < 0)
    return rv;
  put_u8(&w->meta_idx, MCAP_OP_METADATA_INDEX);
  put_u64(&w->meta_idx, 16 + 4 + nl);
  put_u64(&w->meta_idx, start);
  put_u64(&w->meta_idx, w->off - start);
  put_str(&w->meta_idx, name, nl);
  w->n_meta++;
  return wr_direct_sync(w, false);
}

int mcap_writer_reserve(mcap_writer *w, uint16_t channel, uint32_t sequence, uint64_t log_time,
                        uint64_t publish_time, size_t len, void **buf) {
  mcap_chunk *k;
  struct mbuf *x;
  size_t n = 9 + 2 + 4 + 8 + 8 + len;
  uint8_t *h;
  int rv;

  *buf = NULL;
  /* `failed` is the sink's: with manual chunks the caller learns of a
   * write error from mcap_writer_write_chunk. */
  if (!w->o.manual_chunks && w->failed)
    return -EIO;
  if (channel == 0 || channel > w->n_ch)
    return -EINVAL;
  if (len > MCAP_CHUNK_MAX - 64 - w->ch[channel - 1].rec.len)
    return -EFBIG;
  if ((rv = wr_cur(w)) < 0)
    return rv;
  /* A message that would overfill a chunk that already holds messages
   * starts the next one. */
  if (w->cur->msgs > 0 && w->cur->data.len + n > w->o.chunk_size) {
    if (w->o.manual_chunks)
      return -ENOSPC;
    if ((rv = wr_chunk_close(w)) < 0)
      return rv;
  }
  k = w->cur;
  if (k->n_index < channel) {
    struct mbuf *p = realloc(k->index, w->n_ch * sizeof(*p));
    if (p == NULL)
      return -ENOMEM;
    memset(p + k->n_index, 0, (w->n_ch - k->n_index) * sizeof(*p));
    k->index = p;
    k->n_index = w->n_ch;
  }
  x = &k->index[channel - 1];
  if ((rv = mbuf_reserve(&k->data, n)) < 0 || (rv = mbuf_reserve(x, 16)) < 0)
    return rv;
  if (x->len == 0 && k->n_used == k->cap_used) {
    /* Room for the commit to list the channel without failing. */
    size_t cap = k->cap_used != 0 ? k->cap_used * 2 : 8;
    uint16_t *u = realloc(k->used, cap * sizeof(*u));
    if (u == NULL)
      return -ENOMEM;
    k->used = u;
    k->cap_used = cap;
  }
  /* The header goes in now; the chunk's length grows at the commit. */
  h = k->data.p + k->data.len;
  h[0] = MCAP_OP_MESSAGE;
  set_u64(h + 1, n - 9);
  h[9] = (uint8_t)channel;
  h[10] = (uint8_t)(channel >> 8);
  for (int i = 0; i < 4; i++)
    h[11 + i] = (uint8_t)(sequence >> (8 * i));
  set_u64(h + 15, log_time);
  set_u64(h + 23, publish_time);
  w->pend_len = n;
  w->pend_channel = channel;
  w->pend_time = log_time;
  *buf = h + 31;
  return 0;
}

int mcap_writer_commit(mcap_writer *w) {
  mcap_chunk *k = w->cur;
  struct mbuf *x;
  uint64_t log_time = w->pend_time;

  if (w->pend_len == 0)
    return -EINVAL;
  x = &k->index[w->pend_channel - 1];
  if (x->len == 0)
    k->used[k->n_used++] = w->pend_channel;
  put_u64(x, log_time);
  put_u64(x, k->data.len);
  k->data.len += w->pend_len;
  w->pend_len = 0;
  if (k->msgs == 0 || log_time < k->t0)
    k->t0 = log_time;
  if (k->msgs == 0 || log_time > k->t1)
    k->t1 = log_time;
  if (w->messages == 0 || log_time < w->t0)
    w->t0 = log_time;
  if (w->messages == 0 || log_time > w->t1)
    w->t1 = log_time;
  k->msgs++;
  w->messages++;
  w->ch[w->pend_channel - 1].count++;
  if (k->data.len >= w->o.chunk_size)
    return w->o.manual_chunks ? 1 : wr_chunk_close(w);
  return 0;
}

void mcap_writer_cancel(mcap_writer *w) {
  w->pend_len = 0;
}

int mcap_writer_write(mcap_writer *w, uint16_t channel, uint32_t sequence, uint64_t log_time,
                      uint64_t publish_time, const void *data, size_t len) {
  void *buf;
  int rv = mcap_writer_reserve(w, channel, sequence, log_time, publish_time, len, &buf);
  if (rv < 0)
    return rv;
  if (len > 0)
    memcpy(buf, data, len);
  return mcap_writer_commit(w);
}

uint64_t mcap_writer_bytes(const mcap_writer *w) {
  return w->off;
}
uint64_t mcap_writer_messages(const mcap_writer *w) {
  return w->messages;
}

/* Writes a Summary Offset record for the group [start, end) of `op`. */
static int wr_summary_offset(mcap_writer *w, uint8_t op, uint64_t start, uint64_t end) {
  int rv;
  if (start == end)
    return 0;
  if ((rv = wr_rec_begin(w, 17)) < 0)
    return rv;
  put_u8(&w->rec, op);
  put_u64(&w->rec, start);
  put_u64(&w->rec, end - start);
  return wr_rec_out(w, MCAP_OP_SUMMARY_OFFSET);
}

int mcap_writer_close(mcap_writer *w) {
  uint64_t sum_start, ch_start, st_start, mi_start, ci_start, so_start;
  size_t n_counts = 0;
  int rv;

  if (w->failed) {
    rv = -EIO;
    goto out;
  }
  /* A channel that never had a message was put in the current chunk; a
   * chunk without messages is still written so the channel is in the
   * data section. */
  if ((rv = wr_chunk_close(w)) < 0)
    goto out;
  if ((rv = wr_rec_begin(w, 4)) < 0)
    goto out;
  put_u32(&w->rec, w->crc);
  if ((rv = wr_rec_out(w, MCAP_OP_DATA_END)) < 0)
    goto out;

  /* The summary, and its CRC from here on. */
  w->crc = 0;
  sum_start = ch_start = w->off;
  for (size_t i = 0; i < w->n_ch; i++)
    if ((rv = wr_out(w, w->ch[i].rec.p, w->ch[i].rec.len)) < 0)
      goto out;
  st_start = w->off;
  for (size_t i = 0; i < w->n_ch; i++)
    n_counts += w->ch[i].count > 0;
  if ((rv = wr_rec_begin(w, 8 + 2 + 4 * 4 + 16 + 4 + 10 * n_counts)) < 0)
    goto out;
  put_u64(&w->rec, w->messages);
  put_u16(&w->rec, 0);
  put_u32(&w->rec, (uint32_t)w->n_ch);
  put_u32(&w->rec, 0);
  put_u32(&w->rec, w->n_meta);
  put_u32(&w->rec, w->n_chunks);
  put_u64(&w->rec, w->t0);
  put_u64(&w->rec, w->t1);
  put_u32(&w->rec, (uint32_t)(10 * n_counts));
  for (size_t i = 0; i < w->n_ch; i++) {
    if (w->ch[i].count > 0) {
      put_u16(&w->rec, (uint16_t)(i + 1));
      put_u64(&w->rec, w->ch[i].count);
    }
  }
  if ((rv = wr_rec_out(w, MCAP_OP_STATISTICS)) < 0)
    goto out;
  mi_start = w->off;
  if ((rv = wr_out(w, w->meta_idx.p, w->meta_idx.len)) < 0)
    goto out;
  ci_start = w->off;
  if ((rv = wr_out(w, w->chunk_idx.p, w->chunk_idx.len)) < 0)
    goto out;
  so_start = w->off;
  if ((rv = wr_summary_offset(w, MCAP_OP_CHANNEL, ch_start, st_start)) < 0 ||
      (rv = wr_summary_offset(w, MCAP_OP_STATISTICS, st_start, mi_start)) < 0 ||
      (rv = wr_summary_offset(w, MCAP_OP_METADATA_INDEX, mi_start, ci_start)) < 0 ||
      (rv = wr_summary_offset(w, MCAP_OP_CHUNK_INDEX, ci_start, so_start)) < 0)
    goto out;
  /* The footer: the CRC covers the summary, the summary offsets and the
   * footer up to the CRC field. */
  if ((rv = wr_rec_begin(w, 20)) < 0)
    goto out;
  w->rec.p[0] = MCAP_OP_FOOTER;
  set_u64(w->rec.p + 1, 20);
  put_u64(&w->rec, sum_start);
  put_u64(&w->rec, so_start);
  put_u32(&w->rec, mcap_crc32(w->crc, w->rec.p, w->rec.len));
  if ((rv = wr_out(w, w->rec.p, w->rec.len)) < 0 ||
      (rv = wr_out(w, MCAP_MAGIC, MCAP_MAGIC_LEN)) < 0 || (rv = wr_direct_sync(w, false)) < 0)
    goto out;
  /* The fd as a caller expects it after a plain writer: positioned at the
   * end, without O_DIRECT. */
  if (w->direct && ((rv = wr_set_direct(w->fd, false)) < 0 ||
                    (lseek(w->fd, (off_t)w->off, SEEK_SET) < 0 && (rv = -errno) < 0)))
    goto out;
  rv = 0;

out:
  mcap_writer_free(w);
  return rv;
}

void mcap_writer_free(mcap_writer *w) {
  if (w == NULL)
    return;
#if WR_HAVE_DIRECT
  /* A write in flight still reads abuf. */
  (void)wr_direct_wait(w);
#endif
  for (size_t i = 0; i < w->n_ch; i++)
    free(w->ch[i].rec.p);
  free(w->ch);
  mcap_chunk_free(w->cur);
  free(w->zbuf.p);
  free(w->rec.p);
  free(w->chunk_idx.p);
  free(w->meta_idx.p);
  ZSTD_freeCCtx(w->zc);
  free(w->dbuf);
#if !defined(_WIN32)
  free(w->abuf);
#endif
  free(w);
}

/* ---- reader -------------------------------------------------------------------- */

/* A bounded view of bytes being parsed. Every get_* checks what is left
 * and sets `bad` instead of reading past the end; callers test `bad` once
 * after a group of reads. */
struct rcur {
  const uint8_t *p;
  size_t len;
  size_t pos;
  bool bad;
};

static uint64_t get_le(struct rcur *c, int n) {
  uint64_t v = 0;
  if (c->bad || c->len - c->pos < (size_t)n) {
    c->bad = true;
    return 0;
  }
  for (int i = 0; i < n; i++)
    v |= (uint64_t)c->p[c->pos + (size_t)i] << (8 * i);
  c->pos += (size_t)n;
  return v;
}

static uint8_t get_u8(struct rcur *c) {
  return (uint8_t)get_le(c, 1);
}
static uint16_t get_u16(struct rcur *c) {
  return (uint16_t)get_le(c, 2);
}
static uint32_t get_u32(struct rcur *c) {
  return (uint32_t)get_le(c, 4);
}
static uint64_t get_u64(struct rcur *c) {
  return get_le(c, 8);
}

/* A string: a pointer into the buffer and its length (not terminated). */
static const uint8_t *get_str(struct rcur *c, size_t *n) {
  uint32_t l = get_u32(c);
  const uint8_t *s;
  if (c->bad || c->len - c->pos < l) {
    c->bad = true;
    *n = 0;
    return NULL;
  }
  s = c->p + c->pos;
  c->pos += l;
  *n = l;
  return s;
}

/* A terminated copy of a string (NULL when it holds a NUL or memory runs
 * out: `*err` says which). */
static char *dup_str(const uint8_t *s, size_t n, int *err) {
  char *d;
  if (memchr(s, 0, n) != NULL) {
    *err = -EBADMSG;
    return NULL;
  }
  if ((d = malloc(n + 1)) == NULL) {
    *err = -ENOMEM;
    return NULL;
  }
  if (n > 0)
    memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

/* A parsed map of strings: the pairs point into `store`. */
struct rd_map {
  struct mcap_kv *kv;
  size_t n;
  char *store;
};

static void rd_map_free(struct rd_map *m) {
  free(m->kv);
  free(m->store);
  memset(m, 0, sizeof(*m));
}

/* Parses a Map<string, string>; -EBADMSG or -ENOMEM. */
static int rd_map_parse(struct rcur *c, struct rd_map *m) {
  uint32_t bytes = get_u32(c);
  struct rcur in;
  size_t n = 0, cap = 0, used = 0;
  int rv = -EBADMSG;

  memset(m, 0, sizeof(*m));
  if (c->bad || c->len - c->pos < bytes)
    return -EBADMSG;
  in = (struct rcur){c->p + c->pos, bytes, 0, false};
  c->pos += bytes;
  /* Every string's bytes plus a NUL each fit in `bytes` (a string's u32
   * length prefix is longer than its terminator). */
  if ((m->store = malloc((size_t)bytes + 1)) == NULL)
    return -ENOMEM;
  while (in.pos < in.len) {
    size_t kl, vl;
    const uint8_t *k = get_str(&in, &kl), *v = get_str(&in, &vl);
    if (in.bad || memchr(k, 0, kl) != NULL || memchr(v, 0, vl) != NULL)
      goto fail;
    if (n == cap) {
      size_t nc = cap != 0 ? cap * 2 : 8;
      struct mcap_kv *p = realloc(m->kv, nc * sizeof(*p));
      if (p == NULL) {
        rv = -ENOMEM;
        goto fail;
      }
      m->kv = p;
      cap = nc;
    }
    memcpy(m->store + used, k, kl);
    m->store[used + kl] = '\0';
    m->kv[n].key = m->store + used;
    used += kl + 1;
    memcpy(m->store + used, v, vl);
    m->store[used + vl] = '\0';
    m->kv[n].value = m->store + used;
    used += vl + 1;
    n++;
  }
  m->n = n;
  return 0;

fail:
  rd_map_free(m);
  return rv;
}

struct rd_chan {
  struct mcap_channel c;
  char *topic;
  char *encoding;
  struct rd_map meta;
  const uint8_t *raw; /* its record content in the file (or a chunk) */
  size_t raw_len;
  uint8_t *raw_copy; /* a copy when `raw` lay in a chunk buffer */
  uint64_t count;    /* messages read */
};

struct rd {
  const uint8_t *file;
  size_t len;
  const struct mcap_read_cb *cb;
  void *ctx;
  struct mcap_read_result *res;
  struct rd_chan **ch; /* by id, n_ch entries (grown to the largest id seen) */
  size_t n_ch;
  uint8_t *chunk; /* the last chunk's uncompressed records */
  size_t chunk_cap;
  const uint8_t *last_chunk; /* the last chunk's records (in file or chunk) */
  size_t last_chunk_len;
  uint64_t last_chunk_off; /* where the last chunk record starts */
  uint64_t *chunk_offs;    /* where each chunk record starts */
  size_t n_chunk_offs;
  ZSTD_DCtx *zd;
  bool header_seen;
};

/* The printf flavour of format attributes: mingw-w64's C99 stdio on
 * Windows (__USE_MINGW_ANSI_STDIO), whose vsnprintf knows %zu. */
#if defined(__MINGW_PRINTF_FORMAT)
#define RD_PRINTF_FORMAT __MINGW_PRINTF_FORMAT
#else
#define RD_PRINTF_FORMAT printf
#endif

/* Records what went wrong and where; returns -EBADMSG. */
__attribute__((format(RD_PRINTF_FORMAT, 3, 4))) static int rd_bad(struct rd *r, uint64_t off,
                                                                  const char *fmt, ...) {
  va_list ap;
  int n;
  if (r->res->error[0] != '\0')
    return -EBADMSG;
  va_start(ap, fmt);
  n = vsnprintf(r->res->error, sizeof(r->res->error), fmt, ap);
  va_end(ap);
  if (n >= 0 && (size_t)n < sizeof(r->res->error))
    snprintf(r->res->error + n, sizeof(r->res->error) - (size_t)n, " (at byte %llu)",
             (unsigned long long)off);
  return -EBADMSG;
}

static void rd_chan_free(struct rd_chan *c) {
  if (c == NULL)
    return;
  free(c->topic);
  free(c->encoding);
  rd_map_free(&c->meta);
  free(c->raw_copy);
  free(c);
}

/* A Channel record: new ones are kept and announced; a repeated one must
 * be identical. `stable` says whether `content` stays valid (it lies in
 * the caller's buffer, not in a chunk buffer). */
static int rd_channel(struct rd *r, const uint8_t *content, size_t len, uint64_t off, bool stable) {
  struct rcur c = {content, len, 0, false};
  struct rd_chan *ch;
  uint16_t id = get_u16(&c), schema = get_u16(&c);
  size_t tl, el;
  const uint8_t *t = get_str(&c, &tl), *e = get_str(&c, &el);
  int rv = 0;

  if (c.bad)
    return rd_bad(r, off, "a Channel record is cut short");
  if (id >= r->n_ch) {
    size_t n = (size_t)id + 1 < 16 ? 16 : (size_t)id + 1;
    struct rd_chan **p;
    if (n < r->n_ch * 2)
      n = r->n_ch * 2 > 65536 ? 65536 : r->n_ch * 2;
    if ((p = realloc(r->ch, n * sizeof(*p))) == NULL)
      return -ENOMEM;
    memset(p + r->n_ch, 0, (n - r->n_ch) * sizeof(*p));
    r->ch = p;
    r->n_ch = n;
  }
  if (r->ch[id] != NULL) {
    ch = r->ch[id];
    if (ch->raw_len != len || memcmp(ch->raw, content, len) != 0)
      return rd_bad(r, off, "channel %u is defined twice, differently", id);
    return 0;
  }
  if ((ch = calloc(1, sizeof(*ch))) == NULL)
    return -ENOMEM;
  if ((ch->topic = dup_str(t, tl, &rv)) == NULL || (ch->encoding = dup_str(e, el, &rv)) == NULL)
    goto fail;
  if ((rv = rd_map_parse(&c, &ch->meta)) < 0)
    goto fail;
  if (c.bad || c.pos != c.len) {
    rv = -EBADMSG;
    goto fail;
  }
  if (stable) {
    ch->raw = content;
  } else {
    if ((ch->raw_copy = malloc(len > 0 ? len : 1)) == NULL) {
      rv = -ENOMEM;
      goto fail;
    }
    memcpy(ch->raw_copy, content, len);
    ch->raw = ch->raw_copy;
  }
  ch->raw_len = len;
  ch->c = (struct mcap_channel){id, schema, ch->topic, ch->encoding, ch->meta.kv, ch->meta.n};
  r->ch[id] = ch;
  r->res->channels++;
  if (r->cb->channel != NULL)
    return r->cb->channel(r->ctx, &ch->c);
  return 0;

fail:
  rd_chan_free(ch);
  return rv == -ENOMEM ? rv : rd_bad(r, off, "a Channel record is malformed");
}

static int rd_message(struct rd *r, const uint8_t *content, size_t len, uint64_t off) {
  struct rcur c = {content, len, 0, false};
  struct mcap_message m;
  struct rd_chan *ch;

  m.channel_id = get_u16(&c);
  m.sequence = get_u32(&c);
  m.log_time = get_u64(&c);
  m.publish_time = get_u64(&c);
  if (c.bad)
    return rd_bad(r, off, "a Message record is cut short");
  if (m.channel_id >= r->n_ch || (ch = r->ch[m.channel_id]) == NULL)
    return rd_bad(r, off, "a message of channel %u before its Channel record", m.channel_id);
  m.data = content + c.pos;
  m.len = len - c.pos;
  ch->count++;
  r->res->messages++;
  if (r->cb->message != NULL)
    return r->cb->message(r->ctx, &ch->c, &m);
  return 0;
}

static int rd_metadata(struct rd *r, const uint8_t *content, size_t len, uint64_t off) {
  struct rcur c = {content, len, 0, false};
  struct rd_map m;
  size_t nl;
  const uint8_t *n = get_str(&c, &nl);
  char *name;
  int rv = 0;

  if (c.bad)
    return rd_bad(r, off, "a Metadata record is cut short");
  if ((name = dup_str(n, nl, &rv)) == NULL)
    return rv == -ENOMEM ? rv : rd_bad(r, off, "a Metadata name holds a NUL");
  if ((rv = rd_map_parse(&c, &m)) < 0 || c.pos != c.len) {
    if (rv == 0)
      rd_map_free(&m);
    free(name);
    return rv == -ENOMEM ? rv : rd_bad(r, off, "a Metadata record is malformed");
  }
  if (r->cb->metadata != NULL)
    rv = r->cb->metadata(r->ctx, name, m.kv, m.n);
  rd_map_free(&m);
  free(name);
  return rv;
}

/* The records inside a chunk: Schema, Channel and Message only. */
static int rd_chunk_records(struct rd *r, const uint8_t *p, size_t len, uint64_t off, bool stable) {
  size_t pos = 0;
  int rv;

  while (pos < len) {
    uint8_t op;
    uint64_t n;
    if (len - pos < 9)
      return rd_bad(r, off, "a record inside a chunk is cut short");
    op = p[pos];
    n = 0;
    for (int i = 0; i < 8; i++)
      n |= (uint64_t)p[pos + 1 + (size_t)i] << (8 * i);
    if (n > len - pos - 9)
      return rd_bad(r, off, "a record inside a chunk runs past the chunk's end");
    switch (op) {
    case MCAP_OP_CHANNEL:
      rv = rd_channel(r, p + pos + 9, (size_t)n, off, stable);
      break;
    case MCAP_OP_MESSAGE:
      rv = rd_message(r, p + pos + 9, (size_t)n, off);
      break;
    case MCAP_OP_SCHEMA:
      rv = 0;
      break;
    default:
      return rd_bad(r, off, "a record of opcode 0x%02x inside a chunk", op);
    }
    if (rv != 0)
      return rv;
    pos += 9 + (size_t)n;
  }
  return 0;
}

static int rd_chunk(struct rd *r, const uint8_t *content, size_t len, uint64_t off) {
  struct rcur c = {content, len, 0, false};
  uint64_t t0, t1, usize, rlen;
  uint32_t crc;
  size_t cl;
  const uint8_t *comp, *data;
  bool stable = true;
  uint64_t *offs;

  t0 = get_u64(&c);
  t1 = get_u64(&c);
  usize = get_u64(&c);
  crc = get_u32(&c);
  comp = get_str(&c, &cl);
  rlen = get_u64(&c);
  (void)t0;
  (void)t1;
  if (c.bad)
    return rd_bad(r, off, "a Chunk record is cut short");
  if (rlen != c.len - c.pos)
    return rd_bad(r, off, "a chunk's records length disagrees with its record");
  if (usize > MCAP_CHUNK_MAX)
    return rd_bad(r, off, "a chunk of %llu bytes (the most accepted is %u)",
                  (unsigned long long)usize, MCAP_CHUNK_MAX);
  data = content + c.pos;
  if (cl == 0) {
    if (rlen != usize)
      return rd_bad(r, off, "an uncompressed chunk's sizes disagree");
  } else if (cl == 4 && memcmp(comp, "zstd", 4) == 0) {
    size_t got;
    if (usize > r->chunk_cap) {
      uint8_t *p = realloc(r->chunk, (size_t)usize);
      if (p == NULL)
        return -ENOMEM;
      r->chunk = p;
      r->chunk_cap = (size_t)usize;
    }
    if (r->zd == NULL && (r->zd = ZSTD_createDCtx()) == NULL)
      return -ENOMEM;
    got = ZSTD_decompressDCtx(r->zd, r->chunk, (size_t)usize, data, (size_t)rlen);
    if (ZSTD_isError(got))
      return rd_bad(r, off, "a chunk does not decompress: %s", ZSTD_getErrorName(got));
    if (got != usize)
      return rd_bad(r, off, "a chunk decompresses to %zu bytes, not the %llu it declares", got,
                    (unsigned long long)usize);
    data = r->chunk;
    stable = false;
  } else {
    return rd_bad(r, off, "a chunk compressed with \"%.*s\" (shmbus reads none and zstd)",
                  (int)(cl > 32 ? 32 : cl), (const char *)comp);
  }
  if (crc != 0 && mcap_crc32(0, data, (size_t)usize) != crc)
    return rd_bad(r, off, "a chunk's CRC does not match its records");
  r->last_chunk = data;
  r->last_chunk_len = (size_t)usize;
  r->last_chunk_off = off;
  if ((r->n_chunk_offs & (r->n_chunk_offs - 1)) == 0) {
    size_t cap = r->n_chunk_offs != 0 ? r->n_chunk_offs * 2 : 16;
    if ((offs = realloc(r->chunk_offs, cap * sizeof(*offs))) == NULL)
      return -ENOMEM;
    r->chunk_offs = offs;
  }
  r->chunk_offs[r->n_chunk_offs++] = off;
  r->res->chunks++;
  return rd_chunk_records(r, data, (size_t)usize, off, stable);
}

/* A Message Index: each entry must point at a message of its channel with
 * its log time in the chunk just read. */
static int rd_message_index(struct rd *r, const uint8_t *content, size_t len, uint64_t off) {
  struct rcur c = {content, len, 0, false};
  uint16_t id = get_u16(&c);
  uint32_t bytes = get_u32(&c);

  if (c.bad || bytes != c.len - c.pos || bytes % 16 != 0)
    return rd_bad(r, off, "a Message Index record is malformed");
  if (r->last_chunk == NULL)
    return rd_bad(r, off, "a Message Index record before any chunk");
  while (c.pos < c.len) {
    uint64_t t = get_u64(&c), o = get_u64(&c);
    struct rcur m;
    if (o > r->last_chunk_len || r->last_chunk_len - o < 9 + 18)
      return rd_bad(r, off, "a Message Index entry points outside its chunk");
    m = (struct rcur){r->last_chunk + o, r->last_chunk_len - (size_t)o, 0, false};
    if (get_u8(&m) != MCAP_OP_MESSAGE || (get_u64(&m), get_u16(&m)) != id ||
        (get_u32(&m), get_u64(&m)) != t)
      return rd_bad(r, off, "a Message Index entry does not point at a message of channel %u", id);
  }
  return 0;
}

/* Parses the record at `pos` in the file: *op, *content, *n. Returns 1 when
 * it is whole, 0 when the file ends inside it. */
static int rd_record_at(const struct rd *r, size_t pos, uint8_t *op, const uint8_t **content,
                        uint64_t *n) {
  struct rcur c = {r->file, r->len, pos, false};
  *op = get_u8(&c);
  *n = get_u64(&c);
  if (c.bad || *n > c.len - c.pos)
    return 0;
  *content = r->file + c.pos;
  return 1;
}

/* The summary after Data End: records up to the Footer, which must sit
 * right before the closing magic; its CRC and what the summary says are
 * checked against what was read. */
static int rd_summary(struct rd *r, size_t pos) {
  size_t foot = r->len >= MCAP_MAGIC_LEN + 29 ? r->len - MCAP_MAGIC_LEN - 29 : 0;
  struct rcur f = {r->file, r->len, foot, false};
  uint64_t sum_start, so_start, n_chunk_idx = 0, stats_seen = 0;
  uint32_t crc;

  /* A file that does not end with the magic was cut short while the
   * summary was written: every message is in, the index is not. */
  if (r->len - pos < MCAP_MAGIC_LEN ||
      memcmp(r->file + r->len - MCAP_MAGIC_LEN, MCAP_MAGIC, MCAP_MAGIC_LEN) != 0) {
    r->res->truncated = true;
    r->res->good_bytes = pos;
    return 0;
  }
  if (foot < pos || get_u8(&f) != MCAP_OP_FOOTER || get_u64(&f) != 20)
    return rd_bad(r, pos, "no Footer and closing magic after the data section");
  sum_start = get_u64(&f);
  so_start = get_u64(&f);
  crc = get_u32(&f);
  if (sum_start != 0 && sum_start != pos)
    return rd_bad(r, foot, "the Footer's summary start is not where the data section ends");
  if (so_start != 0 && (so_start < pos || so_start > foot))
    return rd_bad(r, foot, "the Footer's summary offset start is out of place");
  if (sum_start != 0 && crc != 0 &&
      mcap_crc32(0, r->file + sum_start, foot + 1 + 8 + 16 - (size_t)sum_start) != crc)
    return rd_bad(r, foot, "the summary CRC does not match");
  while (pos < foot) {
    uint8_t op;
    const uint8_t *p;
    uint64_t n;
    struct rcur c;
    if (!rd_record_at(r, pos, &op, &p, &n) || n > foot - pos - 9)
      return rd_bad(r, pos, "a summary record runs into the Footer");
    c = (struct rcur){p, (size_t)n, 0, false};
    switch (op) {
    case MCAP_OP_CHANNEL: {
      uint16_t id = get_u16(&c);
      if (c.bad || id >= r->n_ch || r->ch[id] == NULL || r->ch[id]->raw_len != n ||
          memcmp(r->ch[id]->raw, p, (size_t)n) != 0)
        return rd_bad(r, pos, "the summary's channel %u is not the data section's", id);
      break;
    }
    case MCAP_OP_STATISTICS: {
      uint64_t msgs = get_u64(&c);
      uint32_t bytes;
      get_u16(&c);
      uint32_t chans = get_u32(&c);
      get_u32(&c);
      get_u32(&c);
      uint32_t chunks = get_u32(&c);
      get_u64(&c);
      get_u64(&c);
      bytes = get_u32(&c);
      if (c.bad || bytes != c.len - c.pos || bytes % 10 != 0)
        return rd_bad(r, pos, "a Statistics record is malformed");
      if (msgs != r->res->messages || chans != r->res->channels || chunks != r->res->chunks)
        return rd_bad(r, pos,
                      "the Statistics (%llu messages, %u channels, %u chunks) disagree with"
                      " the data section (%llu, %llu, %llu)",
                      (unsigned long long)msgs, chans, chunks, (unsigned long long)r->res->messages,
                      (unsigned long long)r->res->channels, (unsigned long long)r->res->chunks);
      while (c.pos < c.len) {
        uint16_t id = get_u16(&c);
        uint64_t cnt = get_u64(&c);
        if (id >= r->n_ch || r->ch[id] == NULL || r->ch[id]->count != cnt)
          return rd_bad(r, pos, "the Statistics' count of channel %u is wrong", id);
      }
      stats_seen++;
      break;
    }
    case MCAP_OP_CHUNK_INDEX: {
      uint64_t start, clen;
      get_u64(&c);
      get_u64(&c);
      start = get_u64(&c);
      clen = get_u64(&c);
      if (c.bad || n_chunk_idx >= r->n_chunk_offs || r->chunk_offs[n_chunk_idx] != start ||
          clen > r->len || start > r->len - clen || r->file[start] != MCAP_OP_CHUNK)
        return rd_bad(r, pos, "a Chunk Index does not point at the data section's chunk");
      n_chunk_idx++;
      break;
    }
    case MCAP_OP_SUMMARY_OFFSET: {
      uint8_t gop = get_u8(&c);
      uint64_t gs = get_u64(&c), gl = get_u64(&c);
      if (c.bad || gs < sum_start || gl > foot || gs > foot - gl || gl < 9 || r->file[gs] != gop)
        return rd_bad(r, pos, "a Summary Offset points outside the summary");
      break;
    }
    default:
      break; /* Metadata Index, Schema and anything newer: nothing to check */
    }
    pos += 9 + (size_t)n;
  }
  if (n_chunk_idx != 0 && n_chunk_idx != r->n_chunk_offs)
    return rd_bad(r, pos, "the summary indexes %llu chunks of %zu", (unsigned long long)n_chunk_idx,
                  r->n_chunk_offs);
  r->res->summary_checked = stats_seen > 0 || n_chunk_idx > 0;
  r->res->good_bytes = r->len;
  return 0;
}

int mcap_read(const void *buf, size_t len, const struct mcap_read_cb *cb, void *ctx,
              struct mcap_read_result *res) {
  static const struct mcap_read_cb none;
  struct mcap_read_result dummy;
  struct rd r;
  size_t pos = MCAP_MAGIC_LEN;
  int rv = 0;

  if (res == NULL)
    res = &dummy;
  memset(res, 0, sizeof(*res));
  memset(&r, 0, sizeof(r));
  r.file = buf;
  r.len = len;
  r.cb = cb != NULL ? cb : &none;
  r.ctx = ctx;
  r.res = res;
  if (len < MCAP_MAGIC_LEN || memcmp(buf, MCAP_MAGIC, MCAP_MAGIC_LEN) != 0) {
    rv = len < MCAP_MAGIC_LEN && (len == 0 || memcmp(buf, MCAP_MAGIC, len) == 0)
             ? (res->truncated = true, 0)
             : rd_bad(&r, 0, "not an MCAP file (no MCAP0 magic)");
    goto out;
  }
  res->good_bytes = pos;
  for (;;) {
    uint8_t op;
    const uint8_t *p;
    uint64_t n;

    if (!rd_record_at(&r, pos, &op, &p, &n)) {
      /* The file ends inside this record: a writer that was killed. */
      res->truncated = true;
      break;
    }
    if (!r.header_seen && op != MCAP_OP_HEADER) {
      rv = rd_bad(&r, pos, "the first record is not a Header");
      goto out;
    }
    switch (op) {
    case MCAP_OP_HEADER:
      if (r.header_seen) {
        rv = rd_bad(&r, pos, "a second Header");
        goto out;
      }
      r.header_seen = true;
      break;
    case MCAP_OP_CHANNEL:
      rv = rd_channel(&r, p, (size_t)n, pos, true);
      break;
    case MCAP_OP_MESSAGE:
      rv = rd_message(&r, p, (size_t)n, pos);
      break;
    case MCAP_OP_CHUNK:
      rv = rd_chunk(&r, p, (size_t)n, pos);
      break;
    case MCAP_OP_MESSAGE_INDEX:
      rv = rd_message_index(&r, p, (size_t)n, pos);
      break;
    case MCAP_OP_METADATA:
      rv = rd_metadata(&r, p, (size_t)n, pos);
      break;
    case MCAP_OP_DATA_END: {
      struct rcur c = {p, (size_t)n, 0, false};
      uint32_t crc = get_u32(&c);
      if (c.bad) {
        rv = rd_bad(&r, pos, "a Data End record is cut short");
        goto out;
      }
      if (crc != 0 && mcap_crc32(0, buf, pos) != crc) {
        rv = rd_bad(&r, pos, "the data section's CRC does not match");
        goto out;
      }
      rv = rd_summary(&r, pos + 9 + (size_t)n);
      goto out;
    }
    case MCAP_OP_FOOTER:
      /* No Data End: a file without a summary. */
      if (n != 20 || len - pos - 9 - 20 != MCAP_MAGIC_LEN ||
          memcmp((const uint8_t *)buf + len - MCAP_MAGIC_LEN, MCAP_MAGIC, MCAP_MAGIC_LEN) != 0) {
        rv = rd_bad(&r, pos, "a Footer that is not at the end of the file");
        goto out;
      }
      res->good_bytes = len;
      goto out;
    default:
      break; /* Schemas, attachments, indexes and newer records: skipped */
    }
    if (rv != 0)
      goto out;
    pos += 9 + (size_t)n;
    res->good_bytes = pos;
  }

out:
  for (size_t i = 0; i < r.n_ch; i++)
    rd_chan_free(r.ch[i]);
  free(r.ch);
  free(r.chunk);
  free(r.chunk_offs);
  ZSTD_freeDCtx(r.zd);
  return rv;
}
