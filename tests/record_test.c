/* `shmbus record` and `shmbus play`: the real binary (SHMBUS_CLI_PATH)
 * against real daemons, the recordings read back with cli/mcap.c and with
 * the reference reader (@mcap/core under node, tests/mcap_check.js; those
 * checks are skipped with the reason when node or the package is missing).
 *
 * Ordering comes from `pub --wait-subs` and `play --wait-subs` (publishers
 * wait until the recorder is attached), from reliable subscribers with a
 * small ring (a publisher cannot finish before the recorder has read all
 * but a ring's worth), and from waiting for processes: never from sleeps.
 * Payloads are `shmbus pub --size` synthetic ones (cli/synth.h), which
 * carry their sequence number and a checksum: every byte is verified. */
#define _GNU_SOURCE /* F_SETPIPE_SZ */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <poll.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cliutil.h"
#include "mcap.h"
#include "synth.h"

#ifndef SHMBUS_CLI_PATH
#error "SHMBUS_CLI_PATH must name the shmbus binary"
#endif

/* The first daemon is cliutil's (cu_daemon, on SHMBUS_DIR); a test that
 * plays into another bus starts d2. */
static struct du_daemon d2;

static void setup(void) {
  memset(&d2, 0, sizeof(d2));
  cu_setup();
}

static void teardown(void) {
  if (d2.pid != 0)
    du_stop(&d2);
  cu_teardown();
}

TestSuite(record, .init = setup, .fini = teardown, .timeout = 120);

/* Criterion does not run .fini for a skipped test: clean up first. */
#define rec_skip(...)                                                                              \
  do {                                                                                             \
    teardown();                                                                                    \
    cr_skip_test(__VA_ARGS__);                                                                     \
  } while (0)

static const char *path_in_work(const char *name) {
  static char p[4][128];
  static int i;
  i = (i + 1) % 4;
  snprintf(p[i], sizeof(p[i]), "%s/%s", cu_work, name);
  return p[i];
}

/* The recorder's summary line. */
static void record_summary(const struct cu_run *r, unsigned long long *msgs,
                           unsigned long long *lost) {
  const char *p = strstr(r->err, "recorded ");
  cr_assert_not_null(p, "no summary in: %s", r->err);
  const char *l = strstr(p, ", lost ");
  cr_assert_eq(sscanf(p, "recorded %llu messages (", msgs), 1, "summary: %s", p);
  cr_assert_not_null(l, "summary: %s", p);
  cr_assert_eq(sscanf(l, ", lost %llu", lost), 1, "summary: %s", p);
}

/* ---- reading recordings ------------------------------------------------------ */

struct topic_read {
  char topic[64];
  char encoding[64];
  char slots[16], slot_size[16];
  uint64_t count;
  uint64_t first_seq, last_seq;
  bool contiguous;
  uint64_t synth_bad;  /* synthetic payloads with a bad checksum or sequence */
  uint64_t synth_next; /* the synthetic sequence number expected next */
  uint32_t fnv;        /* as mcap_check.js: FNV-1a over (u32 length, payload) */
};

struct file_read {
  struct topic_read t[4];
  size_t n;
  struct mcap_read_result res;
  int rv;
  uint8_t **payloads; /* of topic 0, in order, for comparisons */
  size_t *lens;
  uint32_t *seqs;
  size_t n_payloads;
};

static uint32_t fnv(uint32_t h, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 16777619u;
  }
  return h;
}

static struct topic_read *fr_topic(struct file_read *f, const struct mcap_channel *ch) {
  for (size_t i = 0; i < f->n; i++)
    if (strcmp(f->t[i].topic, ch->topic) == 0)
      return &f->t[i];
  cr_assert_lt(f->n, 4);
  struct topic_read *t = &f->t[f->n++];
  memset(t, 0, sizeof(*t));
  snprintf(t->topic, sizeof(t->topic), "%s", ch->topic);
  snprintf(t->encoding, sizeof(t->encoding), "%s", ch->encoding);
  for (size_t i = 0; i < ch->n_meta; i++) {
    if (strcmp(ch->meta[i].key, "shmbus.slots") == 0)
      snprintf(t->slots, sizeof(t->slots), "%s", ch->meta[i].value);
    if (strcmp(ch->meta[i].key, "shmbus.slot_size") == 0)
      snprintf(t->slot_size, sizeof(t->slot_size), "%s", ch->meta[i].value);
  }
  t->contiguous = true;
  t->fnv = 2166136261u;
  return t;
}

static int fr_channel(void *ctx, const struct mcap_channel *ch) {
  (void)fr_topic(ctx, ch);
  return 0;
}

static int fr_message(void *ctx, const struct mcap_channel *ch, const struct mcap_message *m) {
  struct file_read *f = ctx;
  struct topic_read *t = fr_topic(f, ch);
  struct synth_info si;
  uint8_t l[4] = {(uint8_t)m->len, (uint8_t)(m->len >> 8), (uint8_t)(m->len >> 16),
                  (uint8_t)(m->len >> 24)};

  if (t->count == 0)
    t->first_seq = m->sequence;
  else if (m->sequence != (uint32_t)(t->last_seq + 1))
    t->contiguous = false;
  t->last_seq = m->sequence;
  t->count++;
  t->fnv = fnv(fnv(t->fnv, l, 4), m->data, m->len);
  if (synth_parse(m->data, m->len, &si)) {
    if (!si.checksum_ok || si.seq < t->synth_next)
      t->synth_bad++;
    t->synth_next = si.seq + 1;
  }
  if (t == &f->t[0]) {
    if ((f->n_payloads & (f->n_payloads + 1)) == 0 || f->payloads == NULL) {
      size_t cap = (f->n_payloads + 1) * 2;
      f->payloads = realloc(f->payloads, cap * sizeof(*f->payloads));
      f->lens = realloc(f->lens, cap * sizeof(*f->lens));
      f->seqs = realloc(f->seqs, cap * sizeof(*f->seqs));
      cr_assert(f->payloads != NULL && f->lens != NULL && f->seqs != NULL);
    }
    f->payloads[f->n_payloads] = malloc(m->len > 0 ? m->len : 1);
    memcpy(f->payloads[f->n_payloads], m->data, m->len);
    f->lens[f->n_payloads] = m->len;
    f->seqs[f->n_payloads] = m->sequence;
    f->n_payloads++;
  }
  return 0;
}

static void read_file(const char *path, struct file_read *f) {
  static const struct mcap_read_cb cb = {fr_channel, fr_message, NULL};
  size_t len;
  char *data = cu_slurp(path, &len);

  memset(f, 0, sizeof(*f));
  f->rv = mcap_read(data, len, &cb, f, &f->res);
  free(data);
}

static void file_read_free(struct file_read *f) {
  for (size_t i = 0; i < f->n_payloads; i++)
    free(f->payloads[i]);
  free(f->payloads);
  free(f->lens);
  free(f->seqs);
}

/* The reference reader's view of `path` must match ours (`f`): counts,
 * sequences and payload hashes per topic; `complete` says whether it must
 * find a whole file (then its indexed read and CRC checks pass too). */
static void reference_agrees(const char *path, const struct file_read *f, bool complete) {
  char mod[512], cmd[1024], out[16384], want[256];
  FILE *p;
  size_t n;
  int st;

  snprintf(mod, sizeof(mod), "%s/@mcap/core/package.json", MCAP_NODE_MODULES);
  if (access(mod, R_OK) != 0 || system("command -v node >/dev/null 2>&1") != 0) {
    /* Said on stderr, not with cr_log_warn: a Criterion warning makes the
     * runner exit 1 although every test passed. */
    fprintf(stderr, "record_test: node or @mcap/core is missing: the reference reader's check "
                    "is skipped (ctest's mcap_node_setup installs it; scripts/deps.sh --test "
                    "installs node)\n");
    return;
  }
  snprintf(cmd, sizeof(cmd), "node '%s' '%s' '%s'", MCAP_CHECK_JS, MCAP_NODE_MODULES, path);
  p = popen(cmd, "r");
  cr_assert_not_null(p);
  n = fread(out, 1, sizeof(out) - 1, p);
  out[n] = '\0';
  st = pclose(p);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "mcap_check.js: %s", out);
  snprintf(want, sizeof(want), "\"stream\":{\"done\":%s,\"messages\":%llu,",
           complete ? "true" : "false", (unsigned long long)f->res.messages);
  cr_assert_not_null(strstr(out, want), "want %s in %s", want, out);
  for (size_t i = 0; i < f->n; i++) {
    const struct topic_read *t = &f->t[i];
    if (t->count == 0)
      continue;
    snprintf(want, sizeof(want),
             "\"count\":%llu,\"first_seq\":%llu,\"last_seq\":%llu,\"seq_contiguous\":%s,"
             "\"fnv\":%u}",
             (unsigned long long)t->count, (unsigned long long)t->first_seq,
             (unsigned long long)t->last_seq, t->contiguous ? "true" : "false", t->fnv);
    cr_assert_not_null(strstr(out, want), "topic %s: want %s in %s", t->topic, want, out);
  }
  if (complete) {
    snprintf(want, sizeof(want), "\"indexed\":{\"messages\":%llu,",
             (unsigned long long)f->res.messages);
    cr_assert_not_null(strstr(out, want), "want %s in %s", want, out);
    cr_assert_not_null(strstr(out, "\"data_crc_ok\":true"), "%s", out);
  }
}

/* ---- the tests --------------------------------------------------------------------- */

#define N 2000

Test(record, reliable_recording_loses_nothing_and_reads_back) {
  struct cu_run rec, pub;
  struct file_read f;
  unsigned long long msgs, lost;
  const char *file = path_in_work("rel.mcap");

  CU_START_ON(&rec, cu_daemon.dir, "record", "-o", file, "--reliable", "--count", "2000",
              "--chunk-size", "16K", "--slots", "16", "--slot-size", "512", "s/rel");
  cr_assert_eq(CU_RUN_ON(&pub, cu_daemon.dir, "pub", "s/rel", "--wait-subs", "1", "--count", "2000",
                         "--size", "300", "--slots", "16", "--slot-size", "512"),
               0, "pub: %s", pub.err);
  cr_assert_eq(cu_wait(&rec), 0, "record: %s", rec.err);
  record_summary(&rec, &msgs, &lost);
  cr_assert_eq(msgs, N);
  cr_assert_eq(lost, 0);

  read_file(file, &f);
  cr_assert_eq(f.rv, 0, "%s", f.res.error);
  cr_assert(!f.res.truncated);
  cr_assert(f.res.summary_checked);
  cr_assert_eq(f.n, 1);
  cr_assert_str_eq(f.t[0].topic, "s/rel");
  cr_assert_str_eq(f.t[0].encoding, "application/octet-stream");
  cr_assert_str_eq(f.t[0].slots, "16");
  cr_assert_str_eq(f.t[0].slot_size, "512");
  cr_assert_eq(f.t[0].count, N);
  cr_assert_eq(f.t[0].first_seq, 0);
  cr_assert_eq(f.t[0].last_seq, N - 1);
  cr_assert(f.t[0].contiguous);
  cr_assert_eq(f.t[0].synth_bad, 0);
  cr_assert_eq(f.t[0].synth_next, N);
  reference_agrees(file, &f, true);
  file_read_free(&f);
  cu_free(&rec);
  cu_free(&pub);
}

Test(record, uncompressed_and_msgpack_channels) {
  struct cu_run rec, pub;
  struct file_read f;
  const char *file = path_in_work("mp.mcap");

  CU_START_ON(&rec, cu_daemon.dir, "record", "-o", file, "--compression", "none", "--count", "2",
              "m/json", "m/text");
  cr_assert_eq(CU_RUN_ON(&pub, cu_daemon.dir, "pub", "m/json", "--wait-subs", "1", "--json",
                         "{\"a\": [1, 2]}"),
               0, "pub: %s", pub.err);
  cu_free(&pub);
  cr_assert_eq(CU_RUN_ON(&pub, cu_daemon.dir, "pub", "m/text", "--wait-subs", "1", "hello, world"),
               0, "pub: %s", pub.err);
  cr_assert_eq(cu_wait(&rec), 0, "record: %s", rec.err);
  read_file(file, &f);
  cr_assert_eq(f.rv, 0, "%s", f.res.error);
  cr_assert_eq(f.res.messages, 2);
  cr_assert_eq(f.n, 2);
  for (size_t i = 0; i < 2; i++)
    cr_assert_str_eq(f.t[i].encoding,
                     strcmp(f.t[i].topic, "m/json") == 0 ? "msgpack" : "application/octet-stream",
                     "%s", f.t[i].topic);
  reference_agrees(file, &f, true);
  file_read_free(&f);
  cu_free(&rec);
  cu_free(&pub);
}

/* A lossy recorder stopped by SIGTERM: it finishes the file, and what it
 * recorded plus what it says it lost is everything published. */
Test(record, lossy_recorder_accounts_for_everything) {
  struct cu_run rec, pub;
  struct file_read f;
  unsigned long long msgs, lost;
  const char *file = path_in_work("lossy.mcap");

  CU_START_ON(&rec, cu_daemon.dir, "record", "-o", file, "--slots", "16", "s/lossy");
  cr_assert_eq(CU_RUN_ON(&pub, cu_daemon.dir, "pub", "s/lossy", "--wait-subs", "1", "--count",
                         "5000", "--size", "64", "--slots", "16"),
               0, "pub: %s", pub.err);
  kill(rec.pid, SIGTERM);
  cr_assert_eq(cu_wait(&rec), 0, "record: %s", rec.err);
  record_summary(&rec, &msgs, &lost);
  cr_assert_eq(msgs + lost, 5000, "recorded %llu lost %llu", msgs, lost);
  read_file(file, &f);
  cr_assert_eq(f.rv, 0, "%s", f.res.error);
  cr_assert(!f.res.truncated);
  cr_assert_eq(f.res.messages, msgs);
  cr_assert_eq(f.t[0].synth_bad, 0);
  cr_assert_eq(f.t[0].last_seq, 4999);
  reference_agrees(file, &f, true);
  file_read_free(&f);
  cu_free(&rec);
  cu_free(&pub);
}

/* Waits until the process `pid` has opened the FIFO read through `rfd`
 * (non-blocking) for writing: until the first bytes it writes (an MCAP
 * writer writes its magic and header at once) can be read. Until then a
 * read of the FIFO would see the end of the file, since no writer has it
 * open. A recorder opens its output only after it subscribed, so a
 * publisher's --wait-subs does not say it has. The poll's timeout is no
 * synchronisation: it only lets a recorder that ended before it opened the
 * FIFO fail the test instead of hanging it. */
static void wait_for_fifo_writer(int rfd, pid_t pid) {
  for (;;) {
    struct pollfd p = {rfd, POLLIN, 0};
    siginfo_t si;
    int n = poll(&p, 1, 200);

    cr_assert(n >= 0 || errno == EINTR, "poll the fifo: %s", strerror(errno));
    if (n > 0)
      return;
    memset(&si, 0, sizeof(si));
    cr_assert_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT), 0, "waitid: %s",
                 strerror(errno));
    cr_assert_eq(si.si_pid, 0, "the recorder ended before it opened the fifo");
  }
}

/* A lossy recorder whose write queue is full: the file is a FIFO that
 * nobody reads while the publisher runs, so the writer thread blocks on
 * it and the queue (--queue QUEUE of 1 KiB chunks) fills; the drain thread
 * goes on taking messages from the ring and drops them, counting each.
 * The ring holds every message published (4096 slots, 3000 messages), so
 * none is lost to an overrun: whatever is not recorded was dropped for the
 * queue, and recorded + lost == published exactly. Then the FIFO is read
 * to its end into a file, which reads back with exactly the recorded
 * messages. The FIFO is read only once the recorder has opened it: read
 * before, it ends at once (this test once failed so under valgrind on a
 * loaded machine, with an empty file, while the recorder wrote the whole
 * file to the pipe and exited 0). The recorder's output is in *rec, the
 * file's contents in *f. */
static void record_through_a_stalled_fifo(const char *name, const char *compression,
                                          const char *queue, struct cu_run *rec,
                                          struct file_read *f) {
  struct cu_run pub;
  unsigned long long msgs, lost, dropped = 0;
  char fifo[64], file[64];
  const char *q;
  char buf[65536];
  ssize_t n;
  int rfd, wfd, fl;

  snprintf(fifo, sizeof(fifo), "%s.fifo", name);
  snprintf(file, sizeof(file), "%s.mcap", name);
  cr_assert_eq(mkfifo(path_in_work(fifo), 0600), 0);
  /* Opened for reading first, so the recorder's open does not wait; a
   * one-page pipe, so the writer thread blocks early. Not inherited by the
   * programs started: this is the FIFO's only reader, so that a recorder
   * writing to it after the reader is gone fails (EPIPE) instead of
   * filling a pipe nobody reads. */
  rfd = open(path_in_work(fifo), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  cr_assert_geq(rfd, 0);
  cr_assert_geq(fcntl(rfd, F_SETPIPE_SZ, 4096), 0);
  /* --direct: a fifo does not take O_DIRECT, so it is written plainly. */
  CU_START_ON(rec, cu_daemon.dir, "record", "-v", "-o", path_in_work(fifo), "--compression",
              compression, "--chunk-size", "1K", "--queue", queue, "--slots", "4096", "--direct",
              "s/qfull");
  wait_for_fifo_writer(rfd, rec->pid);
  cr_assert_eq(CU_RUN_ON(&pub, cu_daemon.dir, "pub", "s/qfull", "--wait-subs", "1", "--count",
                         "3000", "--size", "64", "--slots", "4096"),
               0, "pub: %s", pub.err);
  /* The recorder takes what is left in the ring, then waits for the writer
   * thread, which waits for this reader. */
  kill(rec->pid, SIGTERM);
  fl = fcntl(rfd, F_GETFL);
  cr_assert_eq(fcntl(rfd, F_SETFL, fl & ~O_NONBLOCK), 0);
  wfd = open(path_in_work(file), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  cr_assert_geq(wfd, 0);
  while ((n = read(rfd, buf, sizeof(buf))) != 0) {
    cr_assert_gt(n, 0, "read the fifo: %s", strerror(errno));
    cr_assert_eq(write(wfd, buf, (size_t)n), n);
  }
  close(rfd);
  close(wfd);
  cr_assert_eq(cu_wait(rec), 0, "record: %s", rec->err);
  cr_assert_not_null(strstr(rec->err, "does not take O_DIRECT"), "%s", rec->err);
  record_summary(rec, &msgs, &lost);
  cr_assert_eq(msgs + lost, 3000, "recorded %llu lost %llu", msgs, lost);
  q = strstr(rec->err, " with the write queue full)");
  cr_assert_not_null(q, "no drop count in: %s", rec->err);
  while (q > rec->err && q[-1] != '(')
    q--;
  cr_assert_eq(sscanf(q, "%llu", &dropped), 1, "%s", rec->err);
  cr_assert_eq(dropped, lost, "the ring never overran: every loss is a drop (%s)", rec->err);
  cr_assert_gt(dropped, 0);

  read_file(path_in_work(file), f);
  cr_assert_eq(f->rv, 0, "%s", f->res.error);
  cr_assert(!f->res.truncated);
  cr_assert(f->res.summary_checked);
  cr_assert_eq(f->res.messages, msgs);
  cr_assert_eq(f->t[0].count, msgs);
  cr_assert_eq(f->t[0].synth_bad, 0, "payloads intact, sequences increasing");
  reference_agrees(path_in_work(file), f, true);
  cu_free(&pub);
}

/* The recorder's -v count of chunks written, and of them uncompressed. */
static void record_chunks(const struct cu_run *rec, unsigned long long *written,
                          unsigned long long *raw) {
  const char *c = strstr(rec->err, "; chunks: ");
  cr_assert_not_null(c, "no chunk count in: %s", rec->err);
  cr_assert_eq(sscanf(c, "; chunks: %llu written, %llu uncompressed", written, raw), 2, "%s",
               rec->err);
}

Test(record, lossy_recorder_with_a_full_queue_counts_what_it_drops) {
  struct cu_run rec;
  struct file_read f;
  unsigned long long written, raw;

  record_through_a_stalled_fifo("q", "none", "1K", &rec, &f);
  record_chunks(&rec, &written, &raw);
  cr_assert_eq(raw, written, "--compression none: %s", rec.err);
  file_read_free(&f);
  cu_free(&rec);
}

/* The same with zstd and a queue of 4 chunks: when the reader comes back,
 * the writer thread finds the queue full (chunks waiting behind the one it
 * takes) and stores those chunks uncompressed; the last chunk, with nothing
 * behind it, is compressed. The file mixes both and reads back whole
 * (and the reference reader agrees). */
Test(record, a_writer_behind_stores_chunks_uncompressed) {
  struct cu_run rec;
  struct file_read f;
  unsigned long long written, raw;

  record_through_a_stalled_fifo("z", "zstd", "4K", &rec, &f);
  record_chunks(&rec, &written, &raw);
  cr_assert_gt(raw, 0, "%s", rec.err);
  cr_assert_lt(raw, written, "%s", rec.err);
  file_read_free(&f);
  cu_free(&rec);
}

/* A recorder SIGKILLed after the publisher finished: the file is cut
 * short, and both readers read it up to its last complete chunk, which
 * holds all but at most a ring (16) and a chunk of the messages. The same
 * with O_DIRECT (the default, --direct) as through the page cache
 * (--no-direct): the unaligned end of each chunk goes through the page
 * cache. */
static void killed_recorder(const char *name, bool direct) {
  struct cu_run rec, pub;
  struct file_read f;
  const char *file = path_in_work(name);

  CU_START_ON(&rec, cu_daemon.dir, "record", "-o", file, "--reliable", "--chunk-size", "4K",
              "--queue", "4K", "--slots", "16", direct ? "--direct" : "--no-direct", "s/kill");
  cr_assert_eq(CU_RUN_ON(&pub, cu_daemon.dir, "pub", "s/kill", "--wait-subs", "1", "--count",
                         "3000", "--size", "100", "--slots", "16"),
               0, "pub: %s", pub.err);
  kill(rec.pid, SIGKILL);
  cr_assert_eq(cu_wait(&rec), 128 + SIGKILL);
  read_file(file, &f);
  cr_assert_eq(f.rv, 0, "%s", f.res.error);
  cr_assert(f.res.truncated);
  /* The publisher finished, so the recorder had taken all but the last 16
   * (the ring); all but the last one it took are in chunks, which are
   * sealed at 4 KiB: 31 messages of 100 bytes (131 bytes a record) at most
   * are in the chunk being built, and as many in the one chunk the queue
   * holds (--queue 4K), which the writer thread may not have written. With
   * O_DIRECT the writer overlaps its writes (cli/mcap.h): while it writes
   * that chunk, the write of the previous one may be in flight, and that
   * write covers the chunk before it only up to an aligned block: two
   * chunks more. */
  cr_assert_geq(f.res.messages, 3000 - 16 - 1 - (direct ? 4 : 2) * 31, "%llu",
                (unsigned long long)f.res.messages);
  cr_assert_eq(f.t[0].first_seq, 0);
  cr_assert_eq(f.t[0].last_seq, f.res.messages - 1);
  cr_assert(f.t[0].contiguous);
  cr_assert_eq(f.t[0].synth_bad, 0);
  reference_agrees(file, &f, false);
  /* play takes it too, saying that it ends early. */
  {
    struct cu_run play;
    cr_assert_eq(CU_RUN_ON(&play, cu_daemon.dir, "play", "--rate", "0", file), 0, "play: %s",
                 play.err);
    cr_assert_not_null(strstr(play.err, "ends early"), "%s", play.err);
    cu_free(&play);
  }
  file_read_free(&f);
  cu_free(&rec);
  cu_free(&pub);
}

Test(record, killed_recorder_leaves_a_readable_file) {
  killed_recorder("killed.mcap", false);
}

Test(record, killed_direct_recorder_leaves_a_readable_file) {
  killed_recorder("killed-direct.mcap", true);
}

/* ---- O_DIRECT ---------------------------------------------------------------------- */

/* Whether the file system of the work directory takes O_DIRECT. */
static bool work_takes_direct(void) {
  const char *probe = path_in_work("direct.probe");
  void *buf;
  bool ok;
  int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_DIRECT, 0600);

  if (fd < 0)
    return false;
  cr_assert_eq(posix_memalign(&buf, MCAP_DIRECT_ALIGN, MCAP_DIRECT_ALIGN), 0);
  memset(buf, 0, MCAP_DIRECT_ALIGN);
  ok = write(fd, buf, MCAP_DIRECT_ALIGN) == (ssize_t)MCAP_DIRECT_ALIGN;
  free(buf);
  close(fd);
  unlink(probe);
  return ok;
}

/* Messages of sizes that leave every kind of unaligned end (and one larger
 * than a chunk), written by a plain writer, an O_DIRECT writer and an
 * O_DIRECT writer with overlapped writes (opts.overlap: a chunk's write in
 * flight while the next is built): the three files are the same bytes.
 * After each chunk, each Metadata record and the end, the O_DIRECT
 * writer's file is exactly the bytes written so far (a writer killed then
 * leaves a file that ends at its last record), read through another
 * descriptor; the overlapped one's is after mcap_writer_settle. */
static void direct_same_bytes(enum mcap_compression comp) {
  static const size_t sizes[] = {1, 4095, 4096, 4097, 100, 12345, 70001, (1u << 20) + 123, 7, 0};
  const char *plain = path_in_work("plain.mcap"), *direct = path_in_work("direct.mcap");
  const char *overlap = path_in_work("overlap.mcap");
  bool fs_direct = work_takes_direct();
  uint8_t *msg = malloc((1u << 20) + 123 + 8);
  int fds[3];
  mcap_writer *w[3];
  struct mcap_writer_opts o = {.compression = comp, .chunk_size = 10007};
  struct mcap_kv kv[1] = {{"k", "v"}};

  cr_assert_not_null(msg);
  for (size_t i = 0; i < (1u << 20) + 123 + 8; i++)
    msg[i] = (uint8_t)(i * 7 + (i >> 9));
  fds[0] = open(plain, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  fds[1] = open(direct, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  fds[2] = open(overlap, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  cr_assert(fds[0] >= 0 && fds[1] >= 0 && fds[2] >= 0);
  for (int k = 0; k < 3; k++) {
    uint16_t ch;
    o.direct = k >= 1;
    o.overlap = k == 2;
    cr_assert_eq(mcap_writer_open(&w[k], fds[k], &o), 0);
    cr_assert_eq(mcap_writer_direct(w[k]), k >= 1 && fs_direct);
    cr_assert_eq(mcap_writer_add_metadata(w[k], "m", kv, 1), 0);
    cr_assert_eq(mcap_writer_add_channel(w[k], "t/a", "application/octet-stream", kv, 1, &ch), 0);
    cr_assert_eq(ch, 1);
  }
  for (int round = 0; round < 3; round++) {
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
      for (int k = 0; k < 3; k++)
        cr_assert_eq(mcap_writer_write(w[k], 1, (uint32_t)(round * 100 + i), 1000 + i, 1000 + i,
                                       msg + round, sizes[i]),
                     0);
      if (i % 3 == 2) {
        /* A sync point: the file is what was written, to the byte. */
        size_t len;
        char *got;
        for (int k = 0; k < 3; k++)
          cr_assert_eq(mcap_writer_flush(w[k]), 0);
        cr_assert_eq(mcap_writer_settle(w[2]), 0);
        for (int k = 1; k < 3; k++) {
          got = cu_slurp(k == 1 ? direct : overlap, &len);
          cr_assert_eq(len, mcap_writer_bytes(w[k]), "writer %d: %zu bytes, %llu written", k, len,
                       (unsigned long long)mcap_writer_bytes(w[k]));
          free(got);
        }
      }
    }
    for (int k = 0; k < 3; k++)
      cr_assert_eq(mcap_writer_add_metadata(w[k], "r", kv, 1), 0);
  }
  for (int k = 0; k < 3; k++) {
    cr_assert_eq(mcap_writer_close(w[k]), 0);
    cr_assert_eq(fsync(fds[k]), 0);
    cr_assert_eq(close(fds[k]), 0);
  }
  {
    size_t la, lb;
    char *a = cu_slurp(plain, &la), *b = cu_slurp(direct, &lb);
    struct file_read f;
    cr_assert_eq(la, lb);
    cr_assert_eq(la % MCAP_DIRECT_ALIGN != 0, true, "the test wants an unaligned end");
    cr_assert_eq(memcmp(a, b, la), 0, "the O_DIRECT file differs");
    free(b);
    b = cu_slurp(overlap, &lb);
    cr_assert_eq(la, lb);
    cr_assert_eq(memcmp(a, b, la), 0, "the overlapped O_DIRECT file differs");
    free(a);
    free(b);
    read_file(direct, &f);
    cr_assert_eq(f.rv, 0, "%s", f.res.error);
    cr_assert(f.res.summary_checked);
    cr_assert_eq(f.res.messages, 3 * (sizeof(sizes) / sizeof(sizes[0])));
    reference_agrees(direct, &f, true);
    file_read_free(&f);
  }
  free(msg);
}

Test(record, direct_writer_writes_the_same_bytes) {
  direct_same_bytes(MCAP_COMPRESS_NONE);
}

Test(record, direct_writer_writes_the_same_bytes_compressed) {
  direct_same_bytes(MCAP_COMPRESS_ZSTD);
}

/* shmbus record --direct: a reliable recording whose chunks end anywhere
 * in a block reads back whole with both readers, every payload intact,
 * and -v says it was written with O_DIRECT where the file system allows
 * it. */
Test(record, direct_recording_reads_back_byte_exact) {
  struct cu_run rec, pub;
  struct file_read f;
  unsigned long long msgs, lost;
  const char *file = path_in_work("direct-rec.mcap");

  CU_START_ON(&rec, cu_daemon.dir, "record", "-v", "-o", file, "--reliable", "--direct",
              "--compression", "none", "--count", "600", "--chunk-size", "10007", "--slots", "16",
              "--slot-size", "4096", "s/direct");
  cr_assert_eq(CU_RUN_ON(&pub, cu_daemon.dir, "pub", "s/direct", "--wait-subs", "1", "--count",
                         "600", "--size", "3001", "--slots", "16", "--slot-size", "4096"),
               0, "pub: %s", pub.err);
  cr_assert_eq(cu_wait(&rec), 0, "record: %s", rec.err);
  record_summary(&rec, &msgs, &lost);
  cr_assert_eq(msgs, 600);
  cr_assert_eq(lost, 0);
  cr_assert_not_null(strstr(rec.err, work_takes_direct() ? "O_DIRECT: yes" : "O_DIRECT: no"), "%s",
                     rec.err);
  {
    struct stat sb;
    cr_assert_eq(stat(file, &sb), 0);
    cr_assert_neq(sb.st_size % MCAP_DIRECT_ALIGN, 0, "the test wants an unaligned end");
  }
  read_file(file, &f);
  cr_assert_eq(f.rv, 0, "%s", f.res.error);
  cr_assert(!f.res.truncated);
  cr_assert(f.res.summary_checked);
  cr_assert_eq(f.t[0].count, 600);
  cr_assert(f.t[0].contiguous);
  cr_assert_eq(f.t[0].synth_bad, 0);
  cr_assert_eq(f.t[0].synth_next, 600);
  for (size_t i = 0; i < f.n_payloads; i++)
    cr_assert_eq(f.lens[i], 3001);
  reference_agrees(file, &f, true);
  file_read_free(&f);
  cu_free(&rec);
  cu_free(&pub);
}

/* A recording played into another bus (a second daemon, its own dir) and
 * recorded there: the same bytes with the same sequence numbers. */
Test(record, played_into_another_bus_byte_for_byte) {
  struct cu_run rec, pub, rec2, play;
  struct file_read f1, f2;
  unsigned long long msgs, lost;
  const char *file1 = path_in_work("one.mcap"), *file2 = path_in_work("two.mcap");

  CU_START_ON(&rec, cu_daemon.dir, "record", "-o", file1, "--reliable", "--count", "1000",
              "--slots", "32", "--slot-size", "2K", "--max-subs", "8", "--max-pubs", "2", "p/data");
  cr_assert_eq(CU_RUN_ON(&pub, cu_daemon.dir, "pub", "p/data", "--wait-subs", "1", "--count",
                         "1000", "--size", "1500", "--slots", "32", "--slot-size", "2K",
                         "--max-subs", "8", "--max-pubs", "2"),
               0, "pub: %s", pub.err);
  cr_assert_eq(cu_wait(&rec), 0, "record: %s", rec.err);

  du_start(&d2);
  /* The second recorder creates the topic with the recorded parameters;
   * play checks them against the channel's metadata. */
  CU_START_ON(&rec2, d2.dir, "record", "-o", file2, "--reliable", "--count", "1000", "--slots",
              "32", "--slot-size", "2K", "--max-subs", "8", "--max-pubs", "2", "p/data");
  cr_assert_eq(CU_RUN_ON(&play, d2.dir, "play", "--wait-subs", "1", file1), 0, "play: %s",
               play.err);
  cr_assert_not_null(strstr(play.err, "played 1000 messages (1500000 bytes) on 1 topics"), "%s",
                     play.err);
  cr_assert_eq(cu_wait(&rec2), 0, "record: %s", rec2.err);
  record_summary(&rec2, &msgs, &lost);
  cr_assert_eq(msgs, 1000);
  cr_assert_eq(lost, 0);

  read_file(file1, &f1);
  read_file(file2, &f2);
  cr_assert_eq(f1.rv, 0, "%s", f1.res.error);
  cr_assert_eq(f2.rv, 0, "%s", f2.res.error);
  cr_assert_eq(f1.n_payloads, 1000);
  cr_assert_eq(f2.n_payloads, 1000);
  for (size_t i = 0; i < 1000; i++) {
    cr_assert_eq(f1.seqs[i], i);
    cr_assert_eq(f2.seqs[i], i);
    cr_assert_eq(f1.lens[i], f2.lens[i]);
    cr_assert_eq(memcmp(f1.payloads[i], f2.payloads[i], f1.lens[i]), 0, "message %zu", i);
  }
  cr_assert_eq(f2.t[0].fnv, f1.t[0].fnv);
  cr_assert_str_eq(f2.t[0].slot_size, "2048");
  cr_assert_eq(f2.t[0].synth_bad, 0);
  reference_agrees(file2, &f2, true);
  file_read_free(&f1);
  file_read_free(&f2);
  cu_free(&rec);
  cu_free(&pub);
  cu_free(&rec2);
  cu_free(&play);
}

/* --topics selects channels by pattern; a topic that exists with other
 * parameters is refused with a sentence that says so. */
Test(record, play_selects_topics_and_checks_parameters) {
  struct cu_run rec, pub, echo, play;
  const char *file = path_in_work("sel.mcap");

  CU_START_ON(&rec, cu_daemon.dir, "record", "-o", file, "--count", "2", "a/x/one", "b/two");
  cr_assert_eq(CU_RUN_ON(&pub, cu_daemon.dir, "pub", "a/x/one", "--wait-subs", "1", "first"), 0,
               "%s", pub.err);
  cu_free(&pub);
  cr_assert_eq(CU_RUN_ON(&pub, cu_daemon.dir, "pub", "b/two", "--wait-subs", "1", "second"), 0,
               "%s", pub.err);
  cu_free(&pub);
  cr_assert_eq(cu_wait(&rec), 0, "record: %s", rec.err);

  CU_START_ON(&echo, cu_daemon.dir, "echo", "a/x/one", "--count", "1");
  cr_assert_eq(
      CU_RUN_ON(&play, cu_daemon.dir, "play", "--topics", "a/**", "--wait-subs", "1", file), 0,
      "%s", play.err);
  cr_assert_not_null(strstr(play.err, "played 1 messages (5 bytes) on 1 topics"), "%s", play.err);
  cr_assert_eq(cu_wait(&echo), 0, "echo: %s", echo.err);
  cr_assert_str_eq(echo.out, "first\n");
  cu_free(&echo);
  cu_free(&play);

  cr_assert_eq(CU_RUN_ON(&play, cu_daemon.dir, "play", "--topics", "a/*", file), 1);
  cr_assert_not_null(strstr(play.err, "no channel that --topics selects"), "%s", play.err);
  cu_free(&play);
  cr_assert_eq(CU_RUN_ON(&play, cu_daemon.dir, "play", "--topics", "a/x*", file), 2);
  cr_assert_not_null(strstr(play.err, "is not a pattern"), "%s", play.err);
  cu_free(&play);

  /* The recorded topic b/two has 256 slots; a retained one with 8 exists
   * now. */
  cr_assert_eq(CU_RUN_ON(&pub, cu_daemon.dir, "pub", "b/two", "--slots", "8", "--retain", "x"), 0,
               "%s", pub.err);
  cu_free(&pub);
  cr_assert_eq(CU_RUN_ON(&play, cu_daemon.dir, "play", "--topics", "b/two", file), 1);
  cr_assert_not_null(strstr(play.err, "exists with other parameters than recorded (slots 256"),
                     "%s", play.err);
  cu_free(&play);
  cu_free(&rec);
}

Test(record, bad_files_and_usage) {
  struct cu_run r;
  const char *junk = path_in_work("junk.mcap");
  FILE *f = fopen(junk, "w");

  cr_assert_not_null(f);
  fputs("this is not an MCAP file at all", f);
  fclose(f);
  cr_assert_eq(CU_RUN_ON(&r, cu_daemon.dir, "play", junk), 1);
  cr_assert_not_null(strstr(r.err, "not an MCAP file"), "%s", r.err);
  cu_free(&r);
  cr_assert_eq(CU_RUN_ON(&r, cu_daemon.dir, "record", "t/x"), 2);
  cr_assert_not_null(strstr(r.err, "where to?"), "%s", r.err);
  cu_free(&r);
  cr_assert_eq(CU_RUN_ON(&r, cu_daemon.dir, "record", "-o", path_in_work("x.mcap")), 2);
  cu_free(&r);
  cr_assert_eq(CU_RUN_ON(&r, cu_daemon.dir, "record", "-o", path_in_work("x.mcap"), "--compression",
                         "lz5", "t"),
               2);
  cr_assert_not_null(strstr(r.err, "zstd or none"), "%s", r.err);
  cu_free(&r);
  cr_assert_eq(CU_RUN_ON(&r, cu_daemon.dir, "record", "-o", path_in_work("x.mcap"), "sensors/a**"),
               1);
  cr_assert_not_null(strstr(r.err, "invalid topic pattern"), "%s", r.err);
  cu_free(&r);
  cr_assert_eq(CU_RUN_ON(&r, cu_daemon.dir, "play"), 2);
  cu_free(&r);
  cr_assert_eq(CU_RUN_ON(&r, cu_daemon.dir, "play", path_in_work("missing.mcap")), 1);
  cr_assert_not_null(strstr(r.err, "cannot open"), "%s", r.err);
  cu_free(&r);
}

/* --loop plays the file again and again until Ctrl-C (SIGINT), then
 * prints its summary and exits 0. */
Test(record, play_loops_until_interrupted) {
  struct cu_run rec, pub, echo, play;
  unsigned long long played = 0;
  const char *file = path_in_work("loop.mcap"), *p;

  CU_START_ON(&rec, cu_daemon.dir, "record", "-o", file, "--count", "3", "l/t");
  cr_assert_eq(
      CU_RUN_ON(&pub, cu_daemon.dir, "pub", "l/t", "--wait-subs", "1", "--count", "3", "again"), 0,
      "%s", pub.err);
  cr_assert_eq(cu_wait(&rec), 0, "record: %s", rec.err);
  CU_START_ON(&echo, cu_daemon.dir, "echo", "l/t", "--count", "10", "--reliable");
  CU_START_ON(&play, cu_daemon.dir, "play", "--loop", "--rate", "0", "--wait-subs", "1", file);
  cr_assert_eq(cu_wait(&echo), 0, "echo: %s", echo.err);
  cr_assert_str_eq(echo.out,
                   "again\nagain\nagain\nagain\nagain\nagain\nagain\nagain\nagain\nagain\n");
  kill(play.pid, SIGINT);
  cr_assert_eq(cu_wait(&play), 0, "play: %s", play.err);
  p = strstr(play.err, "played ");
  cr_assert_not_null(p, "%s", play.err);
  cr_assert_eq(sscanf(p, "played %llu", &played), 1);
  cr_assert_geq(played, 10, "%s", play.err);
  cu_free(&rec);
  cu_free(&pub);
  cu_free(&echo);
  cu_free(&play);
}

/* --duration ends a recording of a quiet topic: the file is whole and
 * still names the topic (its Channel record, in a chunk of its own). */
Test(record, duration_ends_a_quiet_recording) {
  struct cu_run rec;
  struct file_read f;
  unsigned long long msgs, lost;
  const char *file = path_in_work("quiet.mcap");

  cr_assert_eq(
      CU_RUN_ON(&rec, cu_daemon.dir, "record", "-o", file, "--duration", "0.2", "q/silent"), 0,
      "%s", rec.err);
  record_summary(&rec, &msgs, &lost);
  cr_assert_eq(msgs, 0);
  cr_assert_eq(lost, 0);
  read_file(file, &f);
  cr_assert_eq(f.rv, 0, "%s", f.res.error);
  cr_assert(!f.res.truncated);
  cr_assert(f.res.summary_checked);
  cr_assert_eq(f.n, 1);
  cr_assert_str_eq(f.t[0].topic, "q/silent");
  cr_assert_eq(f.res.messages, 0);
  reference_agrees(file, &f, true);
  file_read_free(&f);
  cu_free(&rec);
}

/* A pattern records the topics that appear after the recorder started.
 * The recorder opens its watch (the pattern for late topics) before it
 * subscribes to the literal sync/go, so once a publisher of sync/go has
 * seen its subscriber the watch is in place; late/x/a is created only
 * then. Reliable: every
 * message of both topics is in the file, every byte (synthetic payloads
 * with checksums) and every sequence number checked, by both readers. */
Test(record, pattern_records_a_topic_created_later) {
  struct cu_run rec, go, pub;
  struct file_read f;
  unsigned long long msgs, lost;
  const struct topic_read *late = NULL, *sync = NULL;
  const char *file = path_in_work("late.mcap");

  CU_START_ON(&rec, cu_daemon.dir, "record", "-o", file, "--reliable", "--count", "2001",
              "--chunk-size", "16K", "late/**", "sync/go");
  cr_assert_eq(
      CU_RUN_ON(&go, cu_daemon.dir, "pub", "sync/go", "--wait-subs", "1", "--count", "1", "go"), 0,
      "pub sync/go: %s", go.err);
  cr_assert_eq(CU_RUN_ON(&pub, cu_daemon.dir, "pub", "late/x/a", "--wait-subs", "1", "--count",
                         "2000", "--size", "300", "--slots", "16", "--slot-size", "512"),
               0, "pub late/x/a: %s", pub.err);
  cr_assert_eq(cu_wait(&rec), 0, "record: %s", rec.err);
  record_summary(&rec, &msgs, &lost);
  cr_assert_eq(msgs, N + 1);
  cr_assert_eq(lost, 0);

  read_file(file, &f);
  cr_assert_eq(f.rv, 0, "%s", f.res.error);
  cr_assert(!f.res.truncated);
  cr_assert(f.res.summary_checked);
  cr_assert_eq(f.n, 2);
  for (size_t i = 0; i < f.n; i++) {
    if (strcmp(f.t[i].topic, "late/x/a") == 0)
      late = &f.t[i];
    if (strcmp(f.t[i].topic, "sync/go") == 0)
      sync = &f.t[i];
  }
  cr_assert_not_null(late);
  cr_assert_not_null(sync);
  cr_assert_eq(sync->count, 1);
  cr_assert_str_eq(late->slots, "16");
  cr_assert_str_eq(late->slot_size, "512");
  cr_assert_eq(late->count, N);
  cr_assert_eq(late->first_seq, 0);
  cr_assert_eq(late->last_seq, N - 1);
  cr_assert(late->contiguous);
  cr_assert_eq(late->synth_bad, 0);
  cr_assert_eq(late->synth_next, N);
  reference_agrees(file, &f, true);
  file_read_free(&f);
  cu_free(&rec);
  cu_free(&go);
  cu_free(&pub);
}
