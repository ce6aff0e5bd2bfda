/* mcap: a small writer and reader of MCAP files (https://mcap.dev/spec,
 * major version 0), for `shmbus record` and `shmbus play`. docs/mcap.md
 * describes the files shmbus writes: records, channel metadata, encodings.
 *
 * The writer writes a chunked, indexed file: magic, Header, then Chunks
 * (uncompressed or zstd) each followed by its Message Index records,
 * Metadata records between chunks, Data End with the data-section CRC, a
 * summary (Channels, Statistics, Metadata Indexes, Chunk Indexes), Summary
 * Offsets, Footer with the summary CRC, magic. Channel records go into the
 * chunk that holds the channel's first message, so a reader that streams
 * the data section (or a file cut short) always knows a message's channel.
 * A chunk reaches the file as soon as it is closed (full, or at
 * mcap_writer_flush): a writer killed later leaves a file readable up to
 * its last complete chunk.
 *
 * The reader takes the whole file as one buffer (mapped or read by the
 * caller) and treats it as hostile: every length and offset is checked
 * against what is there, chunk sizes are bounded, CRCs are verified, and a
 * bad file gives -EBADMSG with a sentence saying what and where, never a
 * read out of bounds.
 *
 * Thread-safety: a writer is used by one thread at a time, except that
 * with manual chunks one thread may build chunks while another writes
 * them (below); mcap_read is reentrant. Nothing here survives fork() in a useful way except the
 * file.
 */
#ifndef SHMBUS_CLI_MCAP_H
#define SHMBUS_CLI_MCAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The eight magic bytes at both ends of a file. */
#define MCAP_MAGIC "\x89MCAP0\r\n"
#define MCAP_MAGIC_LEN 8u

/* Record opcodes (spec, "Records"). */
enum mcap_op {
  MCAP_OP_HEADER = 0x01,
  MCAP_OP_FOOTER = 0x02,
  MCAP_OP_SCHEMA = 0x03,
  MCAP_OP_CHANNEL = 0x04,
  MCAP_OP_MESSAGE = 0x05,
  MCAP_OP_CHUNK = 0x06,
  MCAP_OP_MESSAGE_INDEX = 0x07,
  MCAP_OP_CHUNK_INDEX = 0x08,
  MCAP_OP_ATTACHMENT = 0x09,
  MCAP_OP_ATTACHMENT_INDEX = 0x0a,
  MCAP_OP_STATISTICS = 0x0b,
  MCAP_OP_METADATA = 0x0c,
  MCAP_OP_METADATA_INDEX = 0x0d,
  MCAP_OP_SUMMARY_OFFSET = 0x0e,
  MCAP_OP_DATA_END = 0x0f,
};

/* The largest chunk (uncompressed) the reader accepts: a bound on what a
 * hostile file can make it allocate. The writer never writes a larger one
 * (a message larger than this cannot be written: -EFBIG). */
#define MCAP_CHUNK_MAX (1u << 30)

/* CRC-32 (ISO-HDLC, as zlib's crc32; computed by libdeflate): continues
 * `crc` over `len` bytes. Start with 0. */
uint32_t mcap_crc32(uint32_t crc, const void *data, size_t len);

/* The CRC-32 of two buffers one after the other, from the CRC of each and
 * the second's length (as zlib's crc32_combine), without the bytes. */
uint32_t mcap_crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

/* One key/value pair of a channel's or a Metadata record's map. */
struct mcap_kv {
  const char *key;
  const char *value;
};

/* ---- writer ---------------------------------------------------------------- */

typedef struct mcap_writer mcap_writer;

enum mcap_compression { MCAP_COMPRESS_NONE, MCAP_COMPRESS_ZSTD };

struct mcap_writer_opts {
  enum mcap_compression compression;
  int zstd_level;      /* 0: 1 (fast; recording must keep up) */
  size_t chunk_size;   /* close a chunk once it holds this many bytes; 0: 4 MiB */
  const char *profile; /* the Header's profile; NULL: "" */
  const char *library; /* the Header's library; NULL: "shmbus" */
  /* The caller decides when a chunk is closed and which thread writes it
   * (mcap_writer_seal, mcap_writer_write_chunk): the calls that add
   * messages never write. false: they write a chunk as soon as it is
   * full, on the caller's thread. */
  bool manual_chunks;
  /* Write around the page cache: O_DIRECT on the fd (the writer sets it)
   * from an aligned buffer, MCAP_DIRECT_ALIGN-byte blocks at a time; at
   * each chunk, Metadata record and the end the unaligned rest goes through
   * the page cache, so the file still ends at the last complete record. A
   * file system that refuses O_DIRECT gets plain writes
   * (mcap_writer_direct). The file's bytes are the same either way. */
  bool direct;
  /* With direct: a chunk's aligned part is written in the background (one
   * write in flight at a time, POSIX AIO) while the caller builds and
   * hands over the next one, and the unaligned tail of the last chunk is
   * left for the next write. mcap_writer_settle waits for the write and
   * writes that tail through the page cache, so that the file ends at the
   * last complete chunk again; call it when the writing side goes idle.
   * Until then a killed writer's file ends inside the last chunk or two
   * (readers read it up to the last complete one), and the write errors
   * of a chunk come from the next call. The file's bytes are the same. */
  bool overlap;
};

/* The block size of O_DIRECT writes: buffer address, length and offset. */
#define MCAP_DIRECT_ALIGN 4096u

/* Starts a file on `fd` (open for writing, empty, positioned at 0; the
 * caller keeps it and closes it after mcap_writer_close) and writes the
 * magic and the Header. On success *w is the caller's until
 * mcap_writer_close or mcap_writer_free. Returns 0, -EINVAL, -ENOMEM or a
 * write error (-errno). */
int mcap_writer_open(mcap_writer **w, int fd, const struct mcap_writer_opts *opts);

/* Adds a channel (no schema: schema id 0) and gives its id in *id. The
 * Channel record goes into the current chunk. Strings are copied. Returns
 * 0, -EOVERFLOW (65535 channels), -EINVAL (a string over 64 KiB) or
 * -ENOMEM. */
int mcap_writer_add_channel(mcap_writer *w, const char *topic, const char *encoding,
                            const struct mcap_kv *meta, size_t n_meta, uint16_t *id);

/* Writes a Metadata record (between chunks: the current chunk is closed
 * first) and remembers it for the summary's Metadata Index. */
int mcap_writer_add_metadata(mcap_writer *w, const char *name, const struct mcap_kv *kv, size_t n);

/* Appends a message to the current chunk; closes the chunk (writes it to
 * the file) when it is full. `data` is only read. Returns 0, -EINVAL (no
 * such channel), -EFBIG (larger than MCAP_CHUNK_MAX), -ENOMEM, or a write
 * or compression error (-EIO); after a write error the writer only frees. */
int mcap_writer_write(mcap_writer *w, uint16_t channel, uint32_t sequence, uint64_t log_time,
                      uint64_t publish_time, const void *data, size_t len);

/* Zero copy: as mcap_writer_write, but *buf points to `len` bytes in the
 * current chunk for the caller to fill, valid until mcap_writer_commit
 * (the message is in) or mcap_writer_cancel (it is not), one of which must
 * come before any other call on the writer. Same errors as
 * mcap_writer_write; commit returns 0 or a write error of closing a full
 * chunk (-EINVAL without a reservation). */
int mcap_writer_reserve(mcap_writer *w, uint16_t channel, uint32_t sequence, uint64_t log_time,
                        uint64_t publish_time, size_t len, void **buf);
int mcap_writer_commit(mcap_writer *w);
void mcap_writer_cancel(mcap_writer *w);

/* Closes the current chunk, if it holds anything, and writes it out. */
int mcap_writer_flush(mcap_writer *w);

/* ---- manual chunks: building on one thread, writing on another ------------ */

/* A closed chunk: its records and indexes, not yet in the file. */
typedef struct mcap_chunk mcap_chunk;

/* With opts.manual_chunks, mcap_writer_reserve returns -ENOSPC instead of
 * writing a full chunk (seal, then reserve again), and mcap_writer_commit
 * returns 1 when the chunk has reached the chunk size (seal it now).
 *
 * mcap_writer_seal closes the current chunk and gives it to the caller
 * (NULL when it holds nothing); `fresh` (an emptied chunk that
 * mcap_writer_write_chunk gave back, or NULL: a new one is allocated when
 * needed) becomes the current one. mcap_writer_write_chunk writes a sealed
 * chunk to the file (compressed, CRC, Message Indexes) and empties it for
 * reuse; chunks must be written in the order they were sealed. Its errors
 * are those of mcap_writer_write; after one the file is not finished.
 *
 * Threads: mcap_writer_write_chunk may run on one thread while another
 * adds channels and messages and seals (the builder); the writer's fields
 * are split between the two and share nothing, so the caller only has to
 * order each chunk's hand-over (a mutex-protected queue does). Every other
 * call (open, add_metadata, flush, close, free) needs both sides idle. */
mcap_chunk *mcap_writer_seal(mcap_writer *w, mcap_chunk *fresh);
int mcap_writer_write_chunk(mcap_writer *w, mcap_chunk *c);
/* As mcap_writer_write_chunk, but this chunk is stored uncompressed
 * whatever opts.compression says (MCAP names a chunk's compression in
 * each Chunk record and its Chunk Index: readers take files that mix
 * them). For a writer that is behind: it costs no compression time. */
int mcap_writer_write_chunk_uncompressed(mcap_writer *w, mcap_chunk *c);
/* Bytes of records, and messages, in a chunk. */
size_t mcap_chunk_bytes(const mcap_chunk *c);
uint64_t mcap_chunk_messages(const mcap_chunk *c);
/* Frees a chunk (sealed or given back). NULL is a no-op. */
void mcap_chunk_free(mcap_chunk *c);

/* With opts.overlap: waits for the write in flight and writes what is
 * still buffered (the tail through the page cache), so that the file ends
 * where the last chunk written ends. Returns 0 or the write's error (then
 * the file is not finished). Without overlap nothing is pending, and it
 * only writes the tail again. Sink side. */
int mcap_writer_settle(mcap_writer *w);

/* True while the writer writes with O_DIRECT (opts.direct, and the file
 * system has not refused it). Sink side. */
bool mcap_writer_direct(const mcap_writer *w);

/* How long the sink's writes took (the O_DIRECT ones; zeros without
 * O_DIRECT): for `shmbus record -v`, to tell a slow disk from a slow
 * writer. A background write (opts.overlap) is timed from its start to
 * the sink's next sync point, which waits for it: an upper bound when the
 * sink had other work meanwhile. Sink side. */
struct mcap_io_stats {
  uint64_t writes;      /* aligned O_DIRECT pwrite calls */
  uint64_t bytes;       /* what they wrote */
  uint64_t ns;          /* their total time */
  uint64_t max_ns;      /* the longest */
  uint64_t slow;        /* of them, longer than MCAP_IO_SLOW_NS */
  uint64_t tails;       /* unaligned tails written through the page cache */
  uint64_t tail_max_ns; /* the longest of those (O_DIRECT off, pwrite, on) */
};
#define MCAP_IO_SLOW_NS 16000000ull
void mcap_writer_io_stats(const mcap_writer *w, struct mcap_io_stats *s);

/* Bytes written to the file so far, and messages written. */
uint64_t mcap_writer_bytes(const mcap_writer *w);
uint64_t mcap_writer_messages(const mcap_writer *w);

/* Writes the last chunk, Data End, the summary, Summary Offsets, Footer and
 * magic, then frees the writer (also on failure). Returns 0 or -errno. The
 * caller still closes (and, if it wants, fsyncs) the fd. */
int mcap_writer_close(mcap_writer *w);

/* Frees the writer without finishing the file (after an error). NULL is a
 * no-op. */
void mcap_writer_free(mcap_writer *w);

/* ---- reader ---------------------------------------------------------------- */

/* A channel as the reader gives it: valid during the callback only. */
struct mcap_channel {
  uint16_t id;
  uint16_t schema_id;
  const char *topic; /* NUL-terminated copies */
  const char *encoding;
  const struct mcap_kv *meta;
  size_t n_meta;
};

/* A message: `data` points into the caller's buffer or the reader's chunk
 * buffer, valid during the callback only. */
struct mcap_message {
  uint16_t channel_id;
  uint32_t sequence;
  uint64_t log_time;
  uint64_t publish_time;
  const uint8_t *data;
  size_t len;
};

/* What mcap_read calls. Any may be NULL. A callback that returns non-zero
 * stops the read; mcap_read returns that value. */
struct mcap_read_cb {
  int (*channel)(void *ctx, const struct mcap_channel *ch);
  int (*message)(void *ctx, const struct mcap_channel *ch, const struct mcap_message *m);
  int (*metadata)(void *ctx, const char *name, const struct mcap_kv *kv, size_t n);
};

/* What mcap_read found besides the callbacks. */
struct mcap_read_result {
  bool truncated;       /* the file ends early: read up to the last complete record */
  bool summary_checked; /* a summary was there and agreed with the data (CRC, counts) */
  uint64_t messages;    /* messages delivered */
  uint64_t chunks;      /* chunks read */
  uint64_t channels;
  uint64_t good_bytes; /* the file's prefix that was read as whole records */
  char error[160];     /* why -EBADMSG (or another error), with the offset */
};

/* Reads the file in buf[0, len) from the start (the data section, chunks
 * decompressed and CRC-checked, then the summary when there is one, whose
 * CRC, Chunk Indexes, Message Indexes and Statistics are checked against
 * what was read). Calls `cb` for each channel (once), message and
 * Metadata record, in file order. Returns 0 (a whole file, or one that
 * ends early: res->truncated; either way every complete chunk was
 * delivered), -EBADMSG (not MCAP, or malformed: res->error says what and
 * at which offset; callbacks may already have been called), -ENOMEM, or
 * what a callback returned. `res` may be NULL. */
int mcap_read(const void *buf, size_t len, const struct mcap_read_cb *cb, void *ctx,
              struct mcap_read_result *res);

#endif /* SHMBUS_CLI_MCAP_H */
