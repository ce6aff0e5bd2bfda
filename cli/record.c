/* shmbus record: subscribe to topics and write what arrives to an MCAP
 * file (cli/mcap.h; the layout is in docs/mcap.md).
 *
 * Two threads. The drain thread (the main one) only takes messages out of
 * the rings: it drains every subscriber in turn (a bounded batch each, so
 * a busy topic cannot starve a quiet one), copies each message once, from
 * the shared slot into the MCAP chunk being built (the writer's builder
 * side, manual chunks), and sleeps on the subscribers' eventfds when all
 * are empty. A full chunk, or at least once a second (RECORD_FLUSH_NS) the
 * chunk so far, is sealed and handed to the writer thread through a
 * bounded queue (--queue); the writer thread compresses, CRCs and writes
 * it. The drain thread never waits for I/O or compression, except in
 * reliable mode when the queue is full: then it waits for the writer, and
 * the publishers wait for it, so nothing is lost. A lossy recorder whose
 * queue is full drops what it drains until there is room, and counts each
 * message it drops. A recorder that is killed leaves the chunks written so
 * far: a file readable up to the last complete chunk, at most about a
 * second (plus the queue) behind. The file is written with O_DIRECT where
 * possible (--no-direct: through the page cache; cli/mcap.h, docs/mcap.md),
 * which keeps that bound, and with one write in flight while the writer
 * builds the next chunk (opts.overlap): while the writer is busy, a killed
 * recorder's file may end up to two chunks earlier; once it waits for work
 * (mcap_writer_settle), at the last chunk again. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "mcap.h"
#include "shmbus/msgpack.h"

#define VERB "record"

/* A chunk is written out at least this often. */
#define RECORD_FLUSH_NS 1000000000ull
/* Messages taken from one subscriber before looking at the next. */
#define RECORD_BATCH 256
/* While busy, the topic watches are read at least this often (when idle,
 * at once: the daemon's socket wakes the recorder). */
#define RECORD_SOURCE_NS 10000000ull
/* The history of a subscriber to a topic that appeared after the start:
 * everything still in its ring (the library clamps it to the ring), so a
 * publisher that creates a topic and publishes at once loses nothing to
 * the time the watch takes. */
#define RECORD_WHOLE_RING (1u << 24)
/* The default bound of the queue between the drain and writer threads:
 * about a quarter of a second at 1 GB/s (bench/README.md: 64 MiB lost
 * messages to the writer's slow moments at 1 GB/s of 1 MiB messages). Only
 * what the writer falls behind by is ever allocated. */
#define RECORD_QUEUE_DEFAULT (256u << 20)

static void record_usage(FILE *f) {
  fprintf(f, "usage: shmbus record -o FILE.mcap [OPTIONS] TOPIC|PATTERN...\n"
             "\n"
             "Records the messages of each TOPIC, and of every topic that matches a PATTERN\n"
             "now or appears later ('*' one segment, '**' any number: 'sensors/**'), into\n"
             "an MCAP file (docs/mcap.md): a channel per topic with its parameters as\n"
             "metadata, log and publish time from the bus's timestamps, the bus's sequence\n"
             "numbers, zstd-compressed chunks with CRCs, an index and a summary. Stops on\n"
             "Ctrl-C or SIGTERM, after --duration or --count, and finishes the file; a\n"
             "recorder that is killed leaves a file readable up to its last complete chunk\n"
             "(written at least once a second; while the writer is busy, up to two chunks\n"
             "before it).\n"
             "\n"
             "  -o, --output FILE    the file to write (required; replaced if it exists)\n"
             "      --compression C  zstd (default) or none; with zstd, a chunk that\n"
             "                       another one waits behind is stored uncompressed:\n"
             "                       compressing never costs messages\n"
             "      --chunk-size B   close a chunk at B bytes of messages (default 4M, K/M)\n"
             "      --queue B        chunks waiting to be written take at most about B bytes\n"
             "                       (default 256M, K/M/G; at least one chunk): when the\n"
             "                       disk falls behind, a lossy recorder drops (and counts)\n"
             "                       messages, a reliable one makes the publishers wait\n"
             "      --no-direct      write through the page cache; by default the file is\n"
             "                       written around it (O_DIRECT: less CPU per byte) when it\n"
             "                       is a regular file whose file system allows it\n"
             "      --direct         as by default, but say so when O_DIRECT is not possible\n"
             "  -d, --duration S     stop after S seconds\n"
             "  -n, --count N        stop after N messages (all topics together)\n"
             "      --reliable       subscribe reliably: publishers wait for the recorder,\n"
             "                       nothing is lost (default: lossy, losses are counted)\n"
             "      --encoding E     message encoding of every channel: auto (default: msgpack\n"
             "                       when a topic's first message is one msgpack object, else\n"
             "                       application/octet-stream), msgpack or octet-stream\n"
             "  -q, --quiet          no summary\n"
             "  -v, --verbose        also the drain and writer threads' statistics\n" CLI_TOPIC_HELP
                 CLI_BUS_HELP "  -h, --help           show this help\n");
  fprintf(f, "\n"
             "At the end one line goes to stderr:\n"
             "  recorded M messages (B bytes) from T topics to FILE, lost L\n"
             "where L is what the lossy subscribers missed (always 0 with --reliable),\n"
             "followed by \" (Q with the write queue full)\" when Q of them were taken\n"
             "from the rings but dropped because the queue was full. -v adds a line on the\n"
             "drain thread: its longest gap between two passes over the rings, the age of\n"
             "the oldest message it took (how far behind it fell), and the queue's\n"
             "high-water mark, whether the file was written with O_DIRECT, and how many\n"
             "chunks were written, and of them stored uncompressed; and a line on the\n"
             "writer thread: the longest and mean time it took for a chunk (compression,\n"
             "CRC, write), and its O_DIRECT writes: how many, the longest, how many took\n"
             "over 16 ms, the mean, and the MB/s while writing.\n"
             "Exit status: 0 ok, 1 error, 2 bad usage.\n");
}

enum record_encoding { REC_ENC_AUTO, REC_ENC_MSGPACK, REC_ENC_OCTETS };

#define REC_ENC_OCTETS_NAME "application/octet-stream"

struct record_topic {
  char *name;
  shmbus_sub *sub;
  bool gone;        /* a watch reported it removed: a topic of that name later is a new one */
  uint16_t channel; /* 0 until its Channel record is written */
  struct shmbus_topic_opts params; /* as the daemon reported them */
  bool params_known;
  uint64_t first_seq;
  uint64_t dropped; /* taken from the ring, dropped: the write queue was full */
};

/* The queue of sealed chunks between the drain thread and the writer
 * thread, oldest first, and the emptied chunks that come back for reuse.
 * Everything here is under `mu`. */
struct record_queue {
  pthread_mutex_t mu;
  pthread_cond_t work;  /* the writer waits for a chunk or the end */
  pthread_cond_t space; /* a reliable drain waits for room */
  mcap_chunk **q;       /* a ring of `cap` */
  size_t cap, head, n;
  size_t high;        /* the most chunks that were waiting at once */
  uint64_t written;   /* chunks the writer wrote */
  uint64_t raw;       /* of those, stored uncompressed: the writer was behind */
  mcap_chunk **spare; /* written and emptied, `cap + 1` room */
  size_t n_spare;
  bool done; /* the drain thread hands over nothing more */
  int err;   /* the first write error: the writer writes nothing after it */
  /* What writing the chunks took (compression, CRC and the writes): the
   * total, the longest and how many took longer than MCAP_IO_SLOW_NS. */
  uint64_t chunk_ns, chunk_max_ns, chunk_slow;
};

struct record_state {
  shmbus_bus *bus;
  mcap_writer *w;
  struct shmbus_sub_opts so;
  enum record_encoding enc;
  struct record_topic *t;
  size_t n;
  size_t cap;
  shmbus_watch **watches; /* one per PATTERN argument */
  size_t nwatches;
  int64_t mono_to_real; /* add to a CLOCK_MONOTONIC time for CLOCK_REALTIME */
  uint64_t messages;
  uint64_t bytes;
  uint64_t dropped;
  uint64_t max_lag; /* the oldest a message was when a pass took it, ns */
  struct record_queue q;
};

/* Whether the writer is behind: another chunk waits behind the one it
 * takes (which the queue still counts). Then it stores the chunk
 * uncompressed: compression must never cost messages (a lossy drain drops
 * what a full queue cannot take, a reliable one holds the publishers
 * back), and a raw chunk only needs its CRC and its write. A writer with
 * time to spare finds nothing behind and compresses. Under `mu`. */
static bool record_writer_behind(const struct record_queue *q) {
  return q->n > 1;
}

/* The writer thread, under `mu`, without an error so far: lets the write
 * in flight finish and writes the last chunk's tail (mcap_writer_settle,
 * without `mu`), so that the file ends at the last chunk written. Its
 * error becomes the queue's. */
static void record_settle(struct record_state *st) {
  struct record_queue *q = &st->q;
  int rv;

  if (q->err != 0)
    return;
  pthread_mutex_unlock(&q->mu);
  rv = mcap_writer_settle(st->w);
  pthread_mutex_lock(&q->mu);
  if (rv < 0 && q->err == 0)
    q->err = rv;
}

/* The writer thread: writes each sealed chunk in order and gives it back
 * emptied. After a write error it only gives chunks back (the drain thread
 * sees q.err at its next hand-over and stops). */
static void *record_writer_main(void *arg) {
  struct record_state *st = arg;
  struct record_queue *q = &st->q;

  bool settle = false;

  pthread_mutex_lock(&q->mu);
  for (;;) {
    mcap_chunk *c;
    int rv = 0;
    while (q->n == 0 && !q->done) {
      if (settle) {
        /* Nothing more to write for now: the write in flight finishes and
         * the last chunk's tail goes out, so the file ends at the last
         * complete chunk while the writer waits (cli/mcap.h, overlap). */
        settle = false;
        record_settle(st);
        continue;
      }
      pthread_cond_wait(&q->work, &q->mu);
    }
    if (q->n == 0) {
      /* Done. On the way out of a failure the drain thread does not
       * close the writer (whose own last sync would write it): what is
       * pending goes out here, so the file ends at the last chunk
       * written. */
      if (settle)
        record_settle(st);
      break;
    }
    c = q->q[q->head];
    if (q->err == 0) {
      /* The chunk stays counted in the queue while it is written: the
       * bound is on what waits and what is being written together. */
      bool behind = record_writer_behind(q);
      uint64_t t0, dt;
      pthread_mutex_unlock(&q->mu);
      t0 = cli_now_ns();
      rv = behind ? mcap_writer_write_chunk_uncompressed(st->w, c)
                  : mcap_writer_write_chunk(st->w, c);
      dt = cli_now_ns() - t0;
      pthread_mutex_lock(&q->mu);
      q->chunk_ns += dt;
      if (dt > q->chunk_max_ns)
        q->chunk_max_ns = dt;
      if (dt > MCAP_IO_SLOW_NS)
        q->chunk_slow++;
      q->written++;
      if (behind)
        q->raw++;
      settle = true;
    }
    q->head = (q->head + 1) % q->cap;
    q->n--;
    q->spare[q->n_spare++] = c;
    if (rv < 0 && q->err == 0)
      q->err = rv;
    pthread_cond_signal(&q->space);
  }
  pthread_mutex_unlock(&q->mu);
  return NULL;
}

/* Seals the current chunk and queues it for the writer. With `wait`, waits
 * for room (reliable mode, and the end); without, returns 0 when the queue
 * is full (the chunk stays current). Returns 1 when handed over or when
 * there was nothing to seal, 0 for no room, or -1 after printing why (a
 * write error of the writer thread). */
static int record_hand_over(struct record_state *st, bool wait) {
  struct record_queue *q = &st->q;
  mcap_chunk *c;
  int rv = 1;

  pthread_mutex_lock(&q->mu);
  while (q->err == 0 && q->n == q->cap && wait)
    pthread_cond_wait(&q->space, &q->mu);
  if (q->err != 0) {
    cli_err(VERB, "writing the file: %s", shmbus_strerror(q->err));
    rv = -1;
  } else if (q->n == q->cap) {
    rv = 0;
  } else {
    /* An emptied chunk becomes the current one, if one is spare and there
     * was something to seal (else it stays spare). */
    mcap_chunk *fresh = q->n_spare > 0 ? q->spare[q->n_spare - 1] : NULL;
    if ((c = mcap_writer_seal(st->w, fresh)) != NULL) {
      if (fresh != NULL)
        q->n_spare--;
      q->q[(q->head + q->n) % q->cap] = c;
      if (++q->n > q->high)
        q->high = q->n;
      pthread_cond_signal(&q->work);
    }
  }
  pthread_mutex_unlock(&q->mu);
  return rv;
}

/* Reads the topic's parameters from a daemon snapshot (for the channel's
 * metadata). Best effort: a topic without them is still recorded. */
static void record_params(struct record_state *st, struct record_topic *t) {
  msgpack_unpacked up;
  void *data = NULL;
  size_t len = 0;

  if (shmbus_bus_snapshot(st->bus, t->name, &data, &len) < 0)
    return;
  msgpack_unpacked_init(&up);
  if (shmbus_msgpack_unpack(data, len, &up) == 0 && up.data.type == MSGPACK_OBJECT_MAP) {
    const msgpack_object_map *m = &up.data.via.map;
    for (uint32_t i = 0; i < m->size; i++) {
      const msgpack_object *k = &m->ptr[i].key, *v = &m->ptr[i].val;
      if (k->type != MSGPACK_OBJECT_STR || k->via.str.size != 6 ||
          memcmp(k->via.str.ptr, "topics", 6) != 0 || v->type != MSGPACK_OBJECT_ARRAY ||
          v->via.array.size < 1 || v->via.array.ptr[0].type != MSGPACK_OBJECT_MAP)
        continue;
      const msgpack_object_map *tm = &v->via.array.ptr[0].via.map;
      for (uint32_t j = 0; j < tm->size; j++) {
        const msgpack_object *tk = &tm->ptr[j].key, *tv = &tm->ptr[j].val;
        uint32_t *dst = NULL;
        if (tk->type != MSGPACK_OBJECT_STR || tv->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            tv->via.u64 > UINT32_MAX)
          continue;
#define REC_KEY(s)                                                                                 \
  (tk->via.str.size == sizeof(s) - 1 && memcmp(tk->via.str.ptr, s, sizeof(s) - 1) == 0)
        if (REC_KEY("slots"))
          dst = &t->params.slots;
        else if (REC_KEY("slot_size"))
          dst = &t->params.slot_size;
        else if (REC_KEY("max_subs"))
          dst = &t->params.max_subs;
        else if (REC_KEY("max_pubs"))
          dst = &t->params.max_pubs;
#undef REC_KEY
        if (dst != NULL)
          *dst = (uint32_t)tv->via.u64;
      }
      t->params_known = t->params.slots != 0 && t->params.slot_size != 0 &&
                        t->params.max_subs != 0 && t->params.max_pubs != 0;
    }
  }
  msgpack_unpacked_destroy(&up);
  free(data);
}

/* Subscribes to one topic and adds it to the recording: a name given on
 * the command line (created with the topic options if it does not exist),
 * or a topic a watch found (`found`: taken as it is; `late`: it appeared
 * after the start, read from the start of its ring). */
static int record_add_topic(struct record_state *st, const char *name, bool found, bool late) {
  struct shmbus_sub_opts so = st->so;
  struct record_topic *t;
  int rv;

  if (!found && cli_reserved_topic(VERB, name, "record"))
    return -1;
  for (size_t i = 0; i < st->n; i++)
    if (!st->t[i].gone && strcmp(st->t[i].name, name) == 0)
      return 0; /* named twice, or matched by several patterns */
  if (found)
    memset(&so.topic, 0, sizeof(so.topic));
  if (late)
    so.history = RECORD_WHOLE_RING;
  if (st->n == st->cap) {
    size_t cap = st->cap != 0 ? st->cap * 2 : 8;
    struct record_topic *p = realloc(st->t, cap * sizeof(*p));
    if (p == NULL) {
      cli_err(VERB, "out of memory");
      return -1;
    }
    st->t = p;
    st->cap = cap;
  }
  t = &st->t[st->n];
  memset(t, 0, sizeof(*t));
  if ((t->name = strdup(name)) == NULL) {
    cli_err(VERB, "out of memory");
    return -1;
  }
  if ((rv = shmbus_sub_open(st->bus, name, &so, &t->sub)) < 0) {
    cli_fail(VERB, st->bus, rv, "cannot subscribe to \"%s\"%s", name,
             found ? " (a topic a pattern found: the recording goes on without it)" : "");
    free(t->name);
    return found && rv != -ENOMEM ? 0 : -1;
  }
  st->n++;
  record_params(st, t);
  return 0;
}

/* True if `s` has a wildcard (a pattern, not one topic name). */
static bool record_is_pattern(const char *s) {
  return strchr(s, '*') != NULL;
}

/* The topic source: the names on the command line, each subscribed at the
 * start, and for each pattern a watch (include/shmbus/discover.h): the
 * topics that match now are subscribed here, the ones that appear later by
 * record_source_poll, which the loop calls when the daemon's socket is
 * readable, when it is about to sleep, and every RECORD_SOURCE_NS while
 * busy. A topic removed by name keeps its subscriber (its publishers may
 * go on); a new topic of the same name gets a new one, and a new channel. */
static int record_source_open(struct record_state *st, char **names, int n) {
  struct shmbus_topic_event ev;
  int rv;

  if ((st->watches = calloc((size_t)n, sizeof(*st->watches))) == NULL) {
    cli_err(VERB, "out of memory");
    return -1;
  }
  for (int i = 0; i < n; i++) {
    if (!record_is_pattern(names[i])) {
      if (record_add_topic(st, names[i], false, false) < 0)
        return -1;
      continue;
    }
    if ((rv = shmbus_pattern_check(names[i])) < 0) {
      cli_err(VERB, "\"%s\": %s", names[i], shmbus_strerror(rv));
      return -1;
    }
    if ((rv = shmbus_watch_open(st->bus, names[i], &st->watches[st->nwatches])) < 0) {
      if (rv == -EPROTO)
        cli_fail(VERB, st->bus, rv,
                 "cannot watch \"%s\" (does the daemon predate topic discovery? it needs "
                 "shmbusd 0.2 or later)",
                 names[i]);
      else
        cli_fail(VERB, st->bus, rv, "cannot watch \"%s\"", names[i]);
      return -1;
    }
    /* What exists now. */
    while (shmbus_watch_next(st->watches[st->nwatches], &ev, 0) == 0)
      if (ev.change == SHMBUS_TOPIC_APPEARED && record_add_topic(st, ev.topic, true, false) < 0)
        return -1;
    st->nwatches++;
  }
  return 0;
}

/* Takes the changes the watches have: subscribes to each topic that
 * appeared. Returns 0, or -1 after printing why. */
static int record_source_poll(struct record_state *st) {
  struct shmbus_topic_event ev;

  for (size_t i = 0; i < st->nwatches; i++) {
    while (shmbus_watch_next(st->watches[i], &ev, 0) == 0) {
      if (ev.change == SHMBUS_TOPIC_APPEARED) {
        if (record_add_topic(st, ev.topic, true, true) < 0)
          return -1;
        continue;
      }
      for (size_t j = 0; j < st->n; j++)
        if (!st->t[j].gone && strcmp(st->t[j].name, ev.topic) == 0)
          st->t[j].gone = true;
    }
  }
  return 0;
}

/* Writes the topic's Channel record: encoding, parameters, where its
 * recording starts. `first` is its first message (NULL: none came). */
static int record_channel(struct record_state *st, struct record_topic *t, const void *first,
                          size_t len) {
  char v[6][24];
  struct mcap_kv kv[8];
  size_t n = 0;
  const char *enc = REC_ENC_OCTETS_NAME;
  int rv;

  if (st->enc == REC_ENC_MSGPACK) {
    enc = "msgpack";
  } else if (st->enc == REC_ENC_AUTO && first != NULL) {
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    if (shmbus_msgpack_unpack(first, len, &up) == 0)
      enc = "msgpack";
    msgpack_unpacked_destroy(&up);
  }
  if (t->params_known) {
    snprintf(v[0], sizeof(v[0]), "%" PRIu32, t->params.slots);
    snprintf(v[1], sizeof(v[1]), "%" PRIu32, t->params.slot_size);
    snprintf(v[2], sizeof(v[2]), "%" PRIu32, t->params.max_subs);
    snprintf(v[3], sizeof(v[3]), "%" PRIu32, t->params.max_pubs);
    kv[n++] = (struct mcap_kv){"shmbus.slots", v[0]};
    kv[n++] = (struct mcap_kv){"shmbus.slot_size", v[1]};
    kv[n++] = (struct mcap_kv){"shmbus.max_subs", v[2]};
    kv[n++] = (struct mcap_kv){"shmbus.max_pubs", v[3]};
  }
  snprintf(v[4], sizeof(v[4]), "%" PRIu64, t->first_seq);
  kv[n++] = (struct mcap_kv){"shmbus.first_seq", v[4]};
  kv[n++] = (struct mcap_kv){"shmbus.reliable", st->so.reliable ? "true" : "false"};
  kv[n++] = (struct mcap_kv){"shmbus.encoding_rule",
                             st->enc == REC_ENC_AUTO ? "first message" : "--encoding"};
  if ((rv = mcap_writer_add_channel(st->w, t->name, enc, kv, n, &t->channel)) < 0) {
    cli_err(VERB, "cannot add the channel of \"%s\": %s", t->name, shmbus_strerror(rv));
    return -1;
  }
  return 0;
}

/* Ends an in-place read on the way out of a failure: whether the message
 * stayed intact no longer matters. */
static void record_view_abandon(struct record_topic *t, const struct shmbus_view *v) {
  int rv = shmbus_sub_view_end(t->sub, v);
  (void)rv;
}

/* Takes up to RECORD_BATCH messages from one topic, each copied once:
 * from the read-only shared slot (an in-place view) straight into the
 * chunk being built. A message overwritten while it was copied is dropped
 * from the chunk again (the subscriber counts it lost). When the chunk is
 * full and the queue has no room, a lossy recorder drops the message (and
 * counts it) and a reliable one waits. Returns how many were taken from
 * the ring, or -1 after printing why. */
static int record_drain(struct record_state *st, struct record_topic *t, uint64_t limit) {
  int got = 0;

  while (got < RECORD_BATCH && (limit == 0 || st->messages < limit)) {
    struct shmbus_view v;
    uint64_t ts;
    void *dst;
    int rv = shmbus_sub_view(t->sub, &v);
    if (rv == -EAGAIN)
      break;
    if (rv < 0) {
      cli_fail(VERB, st->bus, rv, "receiving from \"%s\"", t->name);
      return -1;
    }
    if (got == 0) {
      /* The first of a batch is the oldest: how far behind the drain is. */
      uint64_t now = cli_now_ns();
      if (now > v.info.ts_ns && now - v.info.ts_ns > st->max_lag)
        st->max_lag = now - v.info.ts_ns;
    }
    if (t->channel == 0) {
      t->first_seq = v.info.seq;
      if (record_channel(st, t, v.data, v.info.len) < 0) {
        record_view_abandon(t, &v);
        return -1;
      }
    }
    ts = (uint64_t)((int64_t)v.info.ts_ns + st->mono_to_real);
    rv = mcap_writer_reserve(st->w, t->channel, (uint32_t)v.info.seq, ts, ts, v.info.len, &dst);
    if (rv == -ENOSPC) {
      /* The chunk is full: hand it over, or drop this message. */
      int h = record_hand_over(st, st->so.reliable);
      if (h < 0) {
        record_view_abandon(t, &v);
        return -1;
      }
      if (h == 0) {
        /* Dropped here, unless it was overwritten meanwhile (then the
         * subscriber counts it lost already). */
        if (shmbus_sub_view_end(t->sub, &v) == 0) {
          t->dropped++;
          st->dropped++;
        }
        got++;
        continue;
      }
      rv = mcap_writer_reserve(st->w, t->channel, (uint32_t)v.info.seq, ts, ts, v.info.len, &dst);
    }
    if (rv < 0) {
      record_view_abandon(t, &v);
      cli_err(VERB, "writing the file: %s", shmbus_strerror(rv));
      return -1;
    }
    if (v.info.len > 0)
      memcpy(dst, v.data, v.info.len);
    if (shmbus_sub_view_end(t->sub, &v) != 0) {
      mcap_writer_cancel(st->w);
      continue;
    }
    /* 1: the chunk is full; handed over now if there is room, else at
     * the next message's -ENOSPC. */
    if ((rv = mcap_writer_commit(st->w)) > 0)
      rv = record_hand_over(st, false) < 0 ? -1 : 0;
    if (rv < 0) {
      if (rv != -1)
        cli_err(VERB, "writing the file: %s", shmbus_strerror(rv));
      return -1;
    }
    st->messages++;
    st->bytes += v.info.len;
    got++;
  }
  return got;
}

/* The offset from CLOCK_MONOTONIC (the bus's timestamps) to CLOCK_REALTIME
 * (MCAP's log times are nanoseconds since the epoch by convention): read
 * between two monotonic readings, the closest pair of three tries. */
static int64_t record_clock_offset(void) {
  int64_t best = 0;
  uint64_t best_gap = UINT64_MAX;

  for (int i = 0; i < 3; i++) {
    uint64_t a = cli_now_ns(), rt, b;
    rt = cli_realtime_ns();
    b = cli_now_ns();
    if (b - a < best_gap) {
      best_gap = b - a;
      best = (int64_t)rt - (int64_t)(a + (b - a) / 2);
    }
  }
  return best;
}

int cli_record(int argc, char **argv) {
  static const struct option longopts[] = {{"output", required_argument, NULL, 'o'},
                                           {"compression", required_argument, NULL, 0x200},
                                           {"chunk-size", required_argument, NULL, 0x201},
                                           {"duration", required_argument, NULL, 'd'},
                                           {"count", required_argument, NULL, 'n'},
                                           {"reliable", no_argument, NULL, 0x202},
                                           {"encoding", required_argument, NULL, 0x203},
                                           {"queue", required_argument, NULL, 0x204},
                                           {"direct", no_argument, NULL, 0x205},
                                           {"no-direct", no_argument, NULL, 0x206},
                                           {"verbose", no_argument, NULL, 'v'},
                                           CLI_VERB_LONGOPTS};
  struct record_state st;
  struct cli_bus_args ba;
  struct mcap_writer_opts wo;
  struct mcap_io_stats io;
  const char *out = NULL;
  double duration = -1;
  uint64_t count = 0, chunk = 0, queue = RECORD_QUEUE_DEFAULT, start, last_flush, last_source;
  uint64_t lost = 0, last_pass = 0, max_gap = 0;
  bool quiet = false, verbose = false, q_init = false, writer_started = false, direct = false;
  bool direct_asked = false;
  pthread_t writer;
  shmbus_os_fd_t *p = NULL;
  size_t pcap = 0;
  int sig_fd = -1, fd = -1;
  int status = CLI_EXIT_ERROR;
  int c, rv;

  memset(&st, 0, sizeof(st));
  memset(&wo, 0, sizeof(wo));
  memset(&io, 0, sizeof(io));
  wo.compression = MCAP_COMPRESS_ZSTD;
  wo.profile = "";
  wo.manual_chunks = true;
  wo.direct = true;
  wo.overlap = true;
  cli_bus_args_init(&ba);
  optind = 1;
  while ((c = getopt_long(argc, argv, "o:d:n:qvh", longopts, NULL)) != -1) {
    switch (c) {
    case 'o':
      out = optarg;
      break;
    case 0x200: {
      static const char *const names[] = {"zstd", "none", NULL};
      int k;
      if (!cli_parse_choice(VERB, "--compression", optarg, names, &k))
        return CLI_EXIT_USAGE;
      wo.compression = k == 0 ? MCAP_COMPRESS_ZSTD : MCAP_COMPRESS_NONE;
      break;
    }
    case 0x201:
      if (!cli_parse_size(VERB, "--chunk-size", optarg, 1, MCAP_CHUNK_MAX / 2, &chunk))
        return CLI_EXIT_USAGE;
      wo.chunk_size = (size_t)chunk;
      break;
    case 'd':
      if (!cli_parse_seconds(VERB, "--duration", optarg, &duration))
        return CLI_EXIT_USAGE;
      break;
    case 'n':
      if (!cli_parse_u64(VERB, "--count", optarg, 1, UINT64_MAX, &count))
        return CLI_EXIT_USAGE;
      break;
    case 0x202:
      st.so.reliable = true;
      break;
    case 0x203: {
      /* In the order of enum record_encoding. */
      static const char *const names[] = {"auto", "msgpack", "octet-stream", NULL};
      int k;
      if (!cli_parse_choice(VERB, "--encoding", optarg, names, &k))
        return CLI_EXIT_USAGE;
      st.enc = (enum record_encoding)k;
      break;
    }
    case 0x204:
      if (!cli_parse_size(VERB, "--queue", optarg, 1, UINT64_MAX / 2, &queue))
        return CLI_EXIT_USAGE;
      break;
    case 0x205:
      wo.direct = direct_asked = true;
      break;
    case 0x206:
      wo.direct = direct_asked = false;
      break;
    case 'v':
      verbose = true;
      break;
    default:
      if ((rv = cli_verb_arg(VERB, &ba, &st.so.topic, c, optarg, &quiet, record_usage)) >= 0)
        return rv;
      break;
    }
  }
  if (out == NULL) {
    cli_err(VERB, "where to? (shmbus record -o FILE.mcap TOPIC|PATTERN...)");
    return cli_usage_error(VERB);
  }
  if (optind >= argc) {
    cli_err(VERB, "which topics? (shmbus record -o FILE.mcap TOPIC|PATTERN...)");
    return cli_usage_error(VERB);
  }
  cli_topic_finish(&st.so.topic);

  if ((sig_fd = cli_signal_fd(VERB)) < 0)
    goto out;
  if ((st.bus = cli_bus_open(VERB, &ba, -1)) == NULL)
    goto out;
  if (record_source_open(&st, argv + optind, argc - optind) < 0)
    goto out;
  if ((fd = cli_open_write(out)) < 0) {
    cli_err(VERB, "cannot create %s: %s", out, strerror(errno));
    goto out;
  }
  if ((rv = mcap_writer_open(&st.w, fd, &wo)) < 0) {
    cli_err(VERB, "cannot write %s: %s", out, shmbus_strerror(rv));
    goto out;
  }
  if (direct_asked && wo.direct && !mcap_writer_direct(st.w) && !quiet)
    cli_err(VERB,
            "%s does not take O_DIRECT (not a regular file, or its file system refuses it): "
            "writing through the page cache",
            out);
  /* The queue holds whole chunks: queue / chunk size of them, at least one. */
  st.q.cap = (size_t)(queue / (wo.chunk_size != 0 ? wo.chunk_size : 4u << 20));
  if (st.q.cap < 1)
    st.q.cap = 1;
  if (st.q.cap > 65536)
    st.q.cap = 65536;
  if ((st.q.q = calloc(st.q.cap, sizeof(*st.q.q))) == NULL ||
      (st.q.spare = calloc(st.q.cap + 1, sizeof(*st.q.spare))) == NULL) {
    cli_err(VERB, "out of memory");
    goto out;
  }
  st.mono_to_real = record_clock_offset();
  {
    char off[24], ver[32];
    struct mcap_kv kv[3] = {{"clock", "CLOCK_REALTIME, from the publishers' CLOCK_MONOTONIC"},
                            {"monotonic_to_realtime_ns", off},
                            {"shmbus_version", ver}};
    snprintf(off, sizeof(off), "%" PRId64, st.mono_to_real);
    snprintf(ver, sizeof(ver), "%s", shmbus_version());
    if ((rv = mcap_writer_add_metadata(st.w, "shmbus", kv, 3)) < 0) {
      cli_err(VERB, "writing %s: %s", out, shmbus_strerror(rv));
      goto out;
    }
  }

  /* The writer thread (on Linux with SIGINT and SIGTERM blocked: the
   * drain thread takes them). */
  if (pthread_mutex_init(&st.q.mu, NULL) != 0 || pthread_cond_init(&st.q.work, NULL) != 0 ||
      pthread_cond_init(&st.q.space, NULL) != 0) {
    cli_err(VERB, "cannot initialise the queue");
    goto out;
  }
  q_init = true;
  if ((rv = cli_thread_start(&writer, record_writer_main, &st)) != 0) {
    cli_err(VERB, "cannot start the writer thread: %s", strerror(rv));
    goto out;
  }
  writer_started = true;

  start = last_flush = last_source = last_pass = cli_now_ns();
  for (;;) {
    uint64_t now;
    int got = 0, ms = -1;
    bool armed = true;

    if (cli_stopping || (count > 0 && st.messages >= count))
      break;
    for (size_t i = 0; i < st.n; i++) {
      if ((rv = record_drain(&st, &st.t[i], count)) < 0)
        goto out;
      got += rv;
    }
    now = cli_now_ns();
    /* The longest time between two passes over the rings while busy (the
     * time asleep with every ring empty does not count). */
    if (now - last_pass > max_gap)
      max_gap = now - last_pass;
    last_pass = now;
    if (duration >= 0 && now - start >= (uint64_t)(duration * 1e9))
      break;
    if (now - last_flush >= RECORD_FLUSH_NS) {
      /* Hand the chunk so far over; when the queue is full, the writer is
       * busy anyway and this chunk goes when it is full. */
      if ((rv = record_hand_over(&st, st.so.reliable)) < 0)
        goto out;
      if (rv > 0)
        last_flush = now;
    }
    if (st.nwatches > 0 && (got == 0 || now - last_source >= RECORD_SOURCE_NS)) {
      size_t had = st.n;
      if (record_source_poll(&st) < 0)
        goto out;
      last_source = now;
      if (st.n > had)
        continue; /* new topics: drain them before sleeping */
    }
    if (got > 0)
      continue;
    /* Everything is empty: sleep until a publisher wakes a subscriber, a
     * signal, the daemon, the next flush or the end of --duration. */
    for (size_t i = 0; i < st.n && armed; i++)
      if (shmbus_sub_arm(st.t[i].sub) == 0)
        armed = false;
    if (!armed)
      continue;
    ms = (int)((last_flush + RECORD_FLUSH_NS - now) / 1000000u) + 1;
    if (duration >= 0) {
      uint64_t end = start + (uint64_t)(duration * 1e9);
      int dms = end > now ? (int)((end - now + 999999u) / 1000000u) : 0;
      if (dms < ms)
        ms = dms;
    }
    if (pcap < st.n + 1) {
      shmbus_os_fd_t *np_ = realloc(p, (st.n + 1) * sizeof(*p));
      if (np_ == NULL) {
        cli_err(VERB, "out of memory");
        goto out;
      }
      p = np_;
      pcap = st.n + 1;
    }
    for (size_t i = 0; i < st.n; i++)
      p[i] = shmbus_sub_fd(st.t[i].sub);
    if (shmbus_bus_fd(st.bus) == SHMBUS_OS_FD_INVALID && ms > 100)
      ms = 100;
    rv = cli_wait_events(sig_fd, st.bus, p, st.n, ms);
    if (rv < 0) {
      cli_err(VERB, "poll: %s", strerror(-rv));
      goto out;
    }
    last_pass = cli_now_ns();
    if ((rv & CLI_WAIT_STOP) != 0)
      break;
    if (shmbus_bus_fd(st.bus) == SHMBUS_OS_FD_INVALID || (rv & CLI_WAIT_BUS) != 0) {
      (void)shmbus_bus_process(st.bus);
      if (record_source_poll(&st) < 0)
        goto out;
    }
  }

  /* What is already in the rings when a signal or --duration ends the
   * recording is taken too (nothing more is waited for), so that for each
   * topic recorded + lost is what was published while we were subscribed. */
  for (size_t i = 0; i < st.n; i++) {
    do {
      if ((rv = record_drain(&st, &st.t[i], count)) < 0)
        goto out;
    } while (rv == RECORD_BATCH);
  }
  /* The last chunk, then the writer thread finishes the queue and ends. */
  if (record_hand_over(&st, true) < 0)
    goto out;
  pthread_mutex_lock(&st.q.mu);
  st.q.done = true;
  pthread_cond_signal(&st.q.work);
  pthread_mutex_unlock(&st.q.mu);
  pthread_join(writer, NULL);
  writer_started = false;
  if (st.q.err != 0) {
    cli_err(VERB, "writing %s: %s", out, shmbus_strerror(st.q.err));
    goto out;
  }
  direct = mcap_writer_direct(st.w);
  mcap_writer_io_stats(st.w, &io);
  /* Topics that sent nothing still get a channel, so the file says what
   * was recorded. */
  for (size_t i = 0; i < st.n; i++)
    if (st.t[i].channel == 0 && record_channel(&st, &st.t[i], NULL, 0) < 0)
      goto out;
  rv = mcap_writer_close(st.w);
  st.w = NULL;
  if (rv < 0) {
    cli_err(VERB, "finishing %s: %s", out, shmbus_strerror(rv));
    goto out;
  }
  if (cli_fsync(fd) != 0 && errno != EINVAL) {
    cli_err(VERB, "fsync %s: %s", out, strerror(errno));
    goto out;
  }
  status = CLI_EXIT_OK;

out:
  if (writer_started) {
    /* A failure on the way: the writer thread finishes what is queued. */
    pthread_mutex_lock(&st.q.mu);
    st.q.done = true;
    pthread_cond_signal(&st.q.work);
    pthread_mutex_unlock(&st.q.mu);
    pthread_join(writer, NULL);
  }
  for (size_t i = 0; i < st.n; i++) {
    struct shmbus_sub_stats ss;
    shmbus_sub_stats(st.t[i].sub, &ss);
    lost += ss.lost;
  }
  lost += st.dropped;
  if (!quiet && out != NULL && (st.n > 0 || st.nwatches > 0)) {
    char why[64] = "";
    if (st.dropped > 0)
      snprintf(why, sizeof(why), " (%" PRIu64 " with the write queue full)", st.dropped);
    fprintf(stderr,
            "recorded %" PRIu64 " messages (%" PRIu64 " bytes) from %zu topics to %s, lost %" PRIu64
            "%s\n",
            st.messages, st.bytes, st.n, out, lost, why);
  }
  if (verbose && st.q.cap > 0)
    fprintf(stderr,
            "drain: longest gap between passes %.3f ms, oldest message taken %.3f ms old; write "
            "queue: %zu chunks, at most %zu waiting; O_DIRECT: %s; chunks: %" PRIu64
            " written, %" PRIu64 " uncompressed\n",
            (double)max_gap / 1e6, (double)st.max_lag / 1e6, st.q.cap, st.q.high,
            direct ? "yes" : "no", st.q.written,
            wo.compression == MCAP_COMPRESS_NONE ? st.q.written : st.q.raw);
  if (verbose && st.q.cap > 0)
    fprintf(stderr,
            "writer: chunks took %.3f ms at most (%" PRIu64
            " over 16 ms), %.3f ms on average; O_DIRECT writes: %" PRIu64
            ", %.3f ms at most (%" PRIu64 " over 16 ms), %.3f ms on average, %.0f MB/s while "
            "writing; tails through the page cache: %" PRIu64 ", %.3f ms at most\n",
            (double)st.q.chunk_max_ns / 1e6, st.q.chunk_slow,
            st.q.written > 0 ? (double)st.q.chunk_ns / 1e6 / (double)st.q.written : 0.0, io.writes,
            (double)io.max_ns / 1e6, io.slow,
            io.writes > 0 ? (double)io.ns / 1e6 / (double)io.writes : 0.0,
            io.ns > 0 ? (double)io.bytes * 1e3 / (double)io.ns : 0.0, io.tails,
            (double)io.tail_max_ns / 1e6);
  mcap_writer_free(st.w);
  if (st.q.q != NULL) {
    for (size_t i = 0; i < st.q.n; i++)
      mcap_chunk_free(st.q.q[(st.q.head + i) % st.q.cap]);
    free(st.q.q);
  }
  if (st.q.spare != NULL) {
    for (size_t i = 0; i < st.q.n_spare; i++)
      mcap_chunk_free(st.q.spare[i]);
    free(st.q.spare);
  }
  if (q_init) {
    pthread_cond_destroy(&st.q.space);
    pthread_cond_destroy(&st.q.work);
    pthread_mutex_destroy(&st.q.mu);
  }
  if (fd >= 0 && close(fd) != 0 && status == CLI_EXIT_OK) {
    cli_err(VERB, "closing %s: %s", out, strerror(errno));
    status = CLI_EXIT_ERROR;
  }
  for (size_t i = 0; i < st.nwatches; i++)
    shmbus_watch_close(st.watches[i]);
  free(st.watches);
  for (size_t i = 0; i < st.n; i++)
    free(st.t[i].name);
  free(st.t);
  shmbus_bus_close(st.bus);
  free(p);
  return status;
}
