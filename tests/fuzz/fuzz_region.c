/* libFuzzer target: region-header validation and the ring over validated
 * memory. A topic's two memory files come from another process (the
 * daemon, or whoever created the region) and stay writable by publishers
 * (data) and by every participant (control), so everything in them is
 * untrusted. (Participants never validate headers since layout 2: they
 * take parameters from the daemon. An adopting daemon does, with
 * shmbus__ring_view_init, which this target drives.)
 *
 * Input: [data header, 768 B][the first 2048 B of a member file: header,
 * sleeper bitmap, the first subscriber records][the rest of the data file
 * from offset 768: waiters, publisher records, slots]; missing bytes are
 * zero. The files are as large as the headers claim (when that is at most
 * 1 MiB; otherwise 4 KiB, which validation must refuse). Properties:
 * - shmbus__ring_view_init never crashes or reads outside the buffers, and
 *   fails with SHMBUS_EBADREGION or SHMBUS_EVERSION only;
 * - over memory it accepted, subscribers (lossy and reliable, copy and in
 *   place), a publisher, the wake-up scans over forged sleeper and waiter
 *   bits and tickets, and the daemon's repair never
 *   crash, never read or write outside the buffers, never hang (every wait
 *   is bounded here), and return only their documented codes.
 *
 * Built like fuzz_proto.c (see there). */
#include <errno.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "ring.h"
#include "shmbus/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FR_PAGE 4096u
#define FR_MAX_FILE (1u << 20)
#define FR_MEMBER_IMG 2048u

static void fr_check(int cond) {
  if (!cond)
    abort();
}

/* A publisher waiting for a slot that a (fuzzed) other publisher holds
 * waits until the daemon repairs it; here nobody will, so the wait is cut
 * short: the backoff jumps back out of the ring call. */
static jmp_buf fr_escape;

static void fr_backoff(unsigned spins) {
  if (spins > 64)
    longjmp(fr_escape, 1);
}

static uint64_t fr_file_len(uint64_t claimed) {
  if (claimed < 512 || claimed > FR_MAX_FILE || claimed % FR_PAGE != 0)
    return FR_PAGE;
  return claimed;
}

static void fr_read_all(struct shmbus__ring *r, struct shmbus__ring_sub *s, bool in_place) {
  unsigned char buf[256];
  uint32_t i;

  for (i = 0; i < r->slot_count + 4; i++) {
    struct shmbus_msg_info info;
    int rv;
    if (in_place) {
      struct shmbus__ring_view v;
      rv = shmbus__ring_view_begin(s, &v);
      fr_check(rv == 0 || rv == -EAGAIN || rv == SHMBUS_ECORRUPT);
      if (rv != 0)
        return;
      fr_check(v.info.len <= r->slot_capacity);
      /* Touch what the view points at, all of it. */
      if (v.info.len > 0)
        buf[0] = ((const unsigned char *)v.data)[v.info.len - 1];
      rv = shmbus__ring_view_end(s, &v);
      fr_check(rv == 0 || rv == SHMBUS_EOVERRUN);
    } else {
      rv = shmbus__ring_recv(s, buf, sizeof(buf), &info);
      fr_check(rv == -EAGAIN || rv == -EMSGSIZE || rv == SHMBUS_ECORRUPT ||
               (rv >= 0 && (uint32_t)rv <= r->slot_capacity && (size_t)rv <= sizeof(buf)));
      if (rv == -EAGAIN || rv == SHMBUS_ECORRUPT)
        return;
      if (rv == -EMSGSIZE)
        return; /* the message stays: reading again would see it again */
    }
  }
}

/* A wake-up scan callback: the index must be in range. */
static void fr_scan_sub(void *ctx, uint32_t g, uint64_t ticket) {
  const struct shmbus__ring *r = ctx;
  (void)ticket;
  fr_check(g < r->n_members * r->max_subs && shmbus__ring_sub_rec(r, g) != NULL);
}

static void fr_scan_pub(void *ctx, uint32_t i, uint64_t ticket) {
  const struct shmbus__ring *r = ctx;
  (void)ticket;
  fr_check(i < r->max_pubs);
}

static void fr_exercise(struct shmbus__ring *r) {
  struct shmbus__ring_sub s;
  struct shmbus__ring_pub p;
  uint32_t dead = 0;
  uint32_t w;

  r->backoff = fr_backoff;
  if (shmbus__ring_sub_attach(r, &s, false, 4, 1) == 0) {
    fr_read_all(r, &s, false);
    (void)shmbus__ring_sub_arm(&s);
    shmbus__ring_sub_detach(&s);
  }
  if (shmbus__ring_sub_attach(r, &s, true, 2, 1) == 0) {
    fr_read_all(r, &s, true);
    shmbus__ring_sub_detach(&s);
  }
  if (shmbus__ring_pub_attach(r, &p, 7, 1) == 0) {
    if (setjmp(fr_escape) == 0) {
      int rv = shmbus__ring_publish(&p, "fuzz", r->slot_capacity < 4 ? r->slot_capacity : 4, 0);
      fr_check(rv == 0 || rv == 1 || rv == SHMBUS_EFULL || rv == SHMBUS_ECORRUPT);
      (void)shmbus__ring_pub_arm(&p);
    }
    shmbus__ring_pub_detach(&p);
  }
  for (w = 0; w < r->n_members; w++)
    shmbus__ring_scan_sleepers(r, w, fr_scan_sub, r);
  shmbus__ring_scan_pub_waiters(r, fr_scan_pub, r);
  (void)shmbus__ring_any_sleeper(r);
  for (w = 0; w < r->max_subs + 70; w++)
    (void)shmbus__ring_sub_sleeping(r, w);
  if (setjmp(fr_escape) == 0)
    (void)shmbus__ring_repair(r, &dead, 1);
  shmbus__ring_evict_sub(r, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct shmbus__data_hdr dh;
  unsigned char mimg[FR_MEMBER_IMG];
  const struct shmbus__member_hdr *mh = (const struct shmbus__member_hdr *)mimg;
  struct shmbus__ring ring;
  uint64_t data_len;
  uint64_t ctrl_len;
  unsigned char *dfile;
  unsigned char *cfile;
  size_t n;
  int rv;

  memset(&dh, 0, sizeof(dh));
  memset(mimg, 0, sizeof(mimg));
  memcpy(&dh, data, size < sizeof(dh) ? size : sizeof(dh));
  if (size > sizeof(dh))
    memcpy(mimg, data + sizeof(dh),
           size - sizeof(dh) < sizeof(mimg) ? size - sizeof(dh) : sizeof(mimg));
  data_len = fr_file_len(dh.data_size);
  ctrl_len = fr_file_len(mh->member_size);
  dfile = aligned_alloc(FR_PAGE, data_len);
  cfile = aligned_alloc(FR_PAGE, ctrl_len);
  fr_check(dfile != NULL && cfile != NULL);
  memset(dfile, 0, data_len);
  memset(cfile, 0, ctrl_len);
  memcpy(dfile, &dh, sizeof(dh));
  memcpy(cfile, mimg, ctrl_len < sizeof(mimg) ? ctrl_len : sizeof(mimg));
  if (size > sizeof(dh) + sizeof(mimg)) {
    n = size - sizeof(dh) - sizeof(mimg);
    if (n > data_len - sizeof(dh))
      n = data_len - sizeof(dh);
    memcpy(dfile + sizeof(dh), data + sizeof(dh) + sizeof(mimg), n);
  }

  rv = shmbus__ring_view_init(&ring, dfile, data_len, cfile, ctrl_len, FR_PAGE);
  fr_check(rv == 0 || rv == SHMBUS_EBADREGION || rv == SHMBUS_EVERSION);
  if (rv == 0) {
    fr_check(ring.slot_count >= 2 && (ring.slot_count & (ring.slot_count - 1)) == 0);
    fr_check((uint64_t)((unsigned char *)ring.slots - dfile) +
                 (uint64_t)ring.slot_count * ring.slot_stride <=
             data_len);
    fr_exercise(&ring);
  }
  free(dfile);
  free(cfile);
  return 0;
}
