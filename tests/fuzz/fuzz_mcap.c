/* libFuzzer target: the MCAP reader of `shmbus play` (cli/mcap.c). A
 * recording is a file anyone may hand over, so it is untrusted.
 *
 * Properties checked on every input:
 * - mcap_read never crashes, never reads outside the input, never leaks,
 *   and answers 0 or -EBADMSG (with a reason) or -ENOMEM only;
 * - every message it delivers lies inside the input or the chunk buffer
 *   (its bytes are read here, so ASan sees an overread), has a channel
 *   that was delivered before it, and the counts it reports agree with
 *   the callbacks.
 * Built as fuzz_mcap (libFuzzer) and fuzz_mcap_replay (a ctest over
 * tests/fuzz/corpus/mcap/), like the other targets. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fz_check(int cond) {
  if (!cond)
    abort();
}

struct fz {
  uint64_t channels;
  uint64_t messages;
  uint8_t seen[65536];
  uint32_t sum;
};

static int fz_channel(void *ctx, const struct mcap_channel *ch) {
  struct fz *f = ctx;
  fz_check(!f->seen[ch->id]);
  f->seen[ch->id] = 1;
  f->sum += (uint32_t)strlen(ch->topic) + (uint32_t)strlen(ch->encoding);
  for (size_t i = 0; i < ch->n_meta; i++)
    f->sum += (uint32_t)strlen(ch->meta[i].key) + (uint32_t)strlen(ch->meta[i].value);
  f->channels++;
  return 0;
}

static int fz_message(void *ctx, const struct mcap_channel *ch, const struct mcap_message *m) {
  struct fz *f = ctx;
  fz_check(ch->id == m->channel_id && f->seen[ch->id]);
  for (size_t i = 0; i < m->len; i++)
    f->sum += m->data[i];
  f->messages++;
  return 0;
}

static int fz_metadata(void *ctx, const char *name, const struct mcap_kv *kv, size_t n) {
  struct fz *f = ctx;
  f->sum += (uint32_t)strlen(name);
  for (size_t i = 0; i < n; i++)
    f->sum += (uint32_t)strlen(kv[i].key) + (uint32_t)strlen(kv[i].value);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const struct mcap_read_cb cb = {fz_channel, fz_message, fz_metadata};
  struct mcap_read_result res;
  struct fz *f = calloc(1, sizeof(*f));
  int rv;

  fz_check(f != NULL);
  rv = mcap_read(data, size, &cb, f, &res);
  fz_check(rv == 0 || rv == -EBADMSG || rv == -ENOMEM);
  fz_check(rv != -EBADMSG || res.error[0] != '\0');
  fz_check(res.messages == f->messages && res.channels == f->channels);
  fz_check(res.good_bytes <= size);
  free(f);
  return 0;
}
