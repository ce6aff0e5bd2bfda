/* Unit tests of topic regions (src/region.c): two sealed memory files,
 * created by one party and mapped by others from their fds. Everything here
 * uses real memfds. The tests play the other processes by opening second
 * and third mappings of the same files in this process: each open maps the
 * files anew, exactly as a process that received the fds would.
 *
 * The region module must treat the files as untrusted input, so many tests
 * damage a header through the creator's writable mapping (or hand over
 * something that is not a region at all) and check for a clean error. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "platform/platform.h"
#include "testutil.h"

/* ---- helpers ------------------------------------------------------------ */

static void rgn_open_ok(struct shmbus__region *rg, int data_fd, int ctrl_fd,
                        enum shmbus__role role) {
  int rv = shmbus__region_open(rg, data_fd, ctrl_fd, role);
  cr_assert_eq(rv, 0, "region_open: %s", shmbus_strerror(rv));
}

/* Checks that a failed open left nothing behind: no mapping, no fd. */
static void rgn_assert_reset(const struct shmbus__region *rg) {
  cr_assert_null(rg->data);
  cr_assert_null(rg->ctrl);
  cr_assert_eq(rg->data_fd, -1);
  cr_assert_eq(rg->ctrl_fd, -1);
  cr_assert_eq(rg->data_len, 0);
  cr_assert_eq(rg->ctrl_len, 0);
}

/* Opens with both roles and checks both give `want`. */
static void rgn_assert_open_fails(int data_fd, int ctrl_fd, int want, const char *what) {
  struct shmbus__region o;
  int rv;

  rv = shmbus__region_open(&o, data_fd, ctrl_fd, SHMBUS__ROLE_PUB);
  cr_assert_eq(rv, want, "%s as publisher: got %s, want %s", what, shmbus_err_name(rv),
               shmbus_err_name(want));
  rgn_assert_reset(&o);
  rv = shmbus__region_open(&o, data_fd, ctrl_fd, SHMBUS__ROLE_SUB);
  cr_assert_eq(rv, want, "%s as subscriber: got %s, want %s", what, shmbus_err_name(rv),
               shmbus_err_name(want));
  rgn_assert_reset(&o);
}

/* The lowest free descriptor number: what the next open would get. */
static int rgn_lowest_free_fd(void) {
  int fd = dup(0);
  cr_assert_geq(fd, 0);
  close(fd);
  return fd;
}

/* A memfd holding a byte-for-byte copy of `len` bytes at `src`, with the
 * given seals (0 for none). Stands in for a file someone else prepared. */
static int rgn_memfd_copy(const void *src, uint64_t len, uint64_t size, int seals) {
  int fd = memfd_create("rgn-test", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  cr_assert_geq(fd, 0, "memfd_create: %s", strerror(errno));
  cr_assert_eq(ftruncate(fd, (off_t)size), 0);
  if (len > 0)
    cr_assert_eq(pwrite(fd, src, (size_t)len, 0), (ssize_t)len);
  if (seals != 0)
    cr_assert_eq(fcntl(fd, F_ADD_SEALS, seals), 0, "F_ADD_SEALS: %s", strerror(errno));
  return fd;
}

/* Publishes "<tag> <i>" strings and checks they come out of `sub` in order. */
static void rgn_roundtrip(struct shmbus__ring_pub *pub, struct shmbus__ring_sub *sub, int n,
                          const char *tag) {
  char buf[64];
  char want[64];
  struct shmbus_msg_info info;
  int i;

  for (i = 0; i < n; i++) {
    snprintf(buf, sizeof(buf), "%s %d", tag, i);
    cr_assert_geq(shmbus__ring_publish(pub, buf, strlen(buf) + 1, (uint64_t)i), 0);
  }
  for (i = 0; i < n; i++) {
    snprintf(want, sizeof(want), "%s %d", tag, i);
    cr_assert_eq(shmbus__ring_recv(sub, buf, sizeof(buf), &info), (int)strlen(want) + 1);
    cr_assert_str_eq(buf, want);
    cr_assert_eq(info.pub_id, pub->pub_id);
  }
  cr_assert_eq(shmbus__ring_recv(sub, buf, sizeof(buf), &info), -EAGAIN);
}

/* ---- create and open ---------------------------------------------------- */

Test(region, create_formats_a_valid_region) {
  struct shmbus__region rg;
  struct shmbus__params p = tu_params(16, 100, 70, 5);
  struct shmbus__layout l;
  const struct shmbus__data_hdr *h;
  const struct shmbus__member_hdr *c;

  cr_assert_eq(shmbus__layout_compute(&p, shmbus__page_size(), &l), 0);
  cr_assert_eq(shmbus__region_create(&rg, &p, NULL), 0, "a NULL debug name is fine");
  cr_assert_geq(rg.data_fd, 0);
  cr_assert_geq(rg.ctrl_fd, 0);
  cr_assert_neq(rg.data_fd, rg.ctrl_fd);
  cr_assert_eq(rg.data_len, l.data_size);
  cr_assert_eq(rg.ctrl_len, l.member_size);
  h = rg.data;
  c = rg.ctrl;
  cr_assert_eq(h->magic, SHMBUS__MAGIC_DATA);
  cr_assert_eq(c->magic, SHMBUS__MAGIC_MEMBER);
  cr_assert_eq(h->version, SHMBUS__LAYOUT_VERSION);
  cr_assert_eq(h->nonce, c->nonce);
  cr_assert_eq(h->slot_count, 16);
  cr_assert_eq(h->slot_capacity, 100);
  cr_assert_eq(h->slot_stride, 192);
  cr_assert_eq(h->max_subs, 70);
  cr_assert_eq(c->max_subs, 70);
  cr_assert_eq(c->bitmap_words, 2);
  cr_assert_eq(h->max_pubs, 5);
  cr_assert_gt(h->created_ns, 0);
  cr_assert_eq(shmbus__load_relaxed(&h->head), 0);
  cr_assert_eq(rg.ring.slots, (unsigned char *)rg.data + l.slots_offset);
  cr_assert_eq((unsigned char *)rg.ring.pubs, (unsigned char *)rg.data + SHMBUS__DATA_HDR_SIZE);
  cr_assert_eq((unsigned char *)rg.ring.subs, (unsigned char *)rg.ctrl + SHMBUS__SUBS_OFFSET);
  cr_assert_eq(rg.ring.mask, 15);
  cr_assert_not_null(rg.ring.backoff, "the region installs a yielding backoff");
  /* The platform contract: every fd is close-on-exec. */
  cr_assert(fcntl(rg.data_fd, F_GETFD) & FD_CLOEXEC);
  cr_assert(fcntl(rg.ctrl_fd, F_GETFD) & FD_CLOEXEC);
  /* The files are sealed against resizing, so no mapping can outlive its
   * pages (SIGBUS). */
  cr_assert_eq(ftruncate(rg.data_fd, 0), -1);
  cr_assert_eq(errno, EPERM);
  cr_assert_eq(ftruncate(rg.ctrl_fd, (off_t)rg.ctrl_len * 2), -1);
  cr_assert_eq(errno, EPERM);
  /* And sealed against further sealing: nobody can add F_SEAL_WRITE or
   * F_SEAL_FUTURE_WRITE later and make publishers fail. */
  cr_assert_eq(fcntl(rg.data_fd, F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  cr_assert_eq(fcntl(rg.ctrl_fd, F_GET_SEALS), F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  cr_assert_eq(fcntl(rg.ctrl_fd, F_ADD_SEALS, F_SEAL_FUTURE_WRITE), -1);
  cr_assert_eq(errno, EPERM);
  shmbus__region_close(&rg);
  rgn_assert_reset(&rg);
  shmbus__region_close(&rg); /* twice is safe */
  rgn_assert_reset(&rg);
}

Test(region, close_is_safe_on_a_zeroed_region) {
  struct shmbus__region rg;
  memset(&rg, 0, sizeof(rg));
  rg.data_fd = -1;
  rg.ctrl_fd = -1;
  shmbus__region_close(&rg);
  rgn_assert_reset(&rg);
}

Test(region, publisher_and_subscriber_views_share_one_ring) {
  struct shmbus__region rg, pv, sv;
  struct shmbus__ring_pub pub, creator_pub;
  struct shmbus__ring_sub sub;
  int ro, ctrl;

  tu_region(&rg, 32, 64, 4, 4);
  cr_assert_eq(shmbus__region_subscriber_fds(&rg, &ro, &ctrl), 0);
  cr_assert_eq(fcntl(ro, F_GETFL) & O_ACCMODE, O_RDONLY, "subscribers get a read-only fd");
  cr_assert(fcntl(ro, F_GETFD) & FD_CLOEXEC);
  cr_assert(fcntl(ctrl, F_GETFD) & FD_CLOEXEC);
  cr_assert_neq(ctrl, rg.ctrl_fd, "a dup, owned by the caller");
  rgn_open_ok(&pv, rg.data_fd, rg.ctrl_fd, SHMBUS__ROLE_PUB);
  rgn_open_ok(&sv, ro, ctrl, SHMBUS__ROLE_SUB);
  /* open does not take the fds: the caller may close them, the mappings
   * stay. */
  close(ro);
  close(ctrl);
  cr_assert_eq(pv.data_fd, -1);
  cr_assert_eq(sv.ctrl_fd, -1);
  cr_assert_eq(shmbus__region_subscriber_fds(&sv, &ro, &ctrl), -EBADF,
               "only a region that keeps its fds can hand them out");
  /* Separate mappings of the same files. */
  cr_assert_neq(pv.data, rg.data);
  cr_assert_neq(sv.data, rg.data);
  cr_assert_eq(sv.ring.slot_count, 32);
  cr_assert_eq(sv.ring.slot_capacity, 64);
  cr_assert_eq(sv.ring.max_subs, 4);
  cr_assert_eq(sv.ring.max_pubs, 4);
  cr_assert_eq(sv.ring.slot_stride, rg.ring.slot_stride);

  cr_assert_eq(shmbus__ring_sub_attach(&sv.ring, &sub, false, 0, 2), 0);
  cr_assert_eq(shmbus__ring_pub_attach(&pv.ring, &pub, 31, 3), 0);
  rgn_roundtrip(&pub, &sub, 20, "pv");
  /* The creator's own view is a publisher too, on the same head. */
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &creator_pub, 32, 1), 0);
  cr_assert_eq(creator_pub.index, 1, "record 0 is taken, seen through another mapping");
  rgn_roundtrip(&creator_pub, &sub, 5, "creator");
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.hdr->head), 25);
  cr_assert_eq(sub.received, 25);
  shmbus__region_close(&sv);
  shmbus__region_close(&pv);
  shmbus__region_close(&rg);
}

Test(region, open_rejects_bad_fds_and_roles) {
  struct shmbus__region rg, o;
  int closed;

  tu_region(&rg, 8, 64, 4, 4);
  rgn_assert_open_fails(-1, rg.ctrl_fd, -EBADF, "data fd -1");
  rgn_assert_open_fails(rg.data_fd, -1, -EBADF, "ctrl fd -1");
  closed = dup(rg.data_fd);
  close(closed);
  rgn_assert_open_fails(closed, rg.ctrl_fd, -EBADF, "a closed fd");
  cr_assert_eq(shmbus__region_open(&o, rg.data_fd, rg.ctrl_fd, (enum shmbus__role)0), -EINVAL);
  rgn_assert_reset(&o);
  cr_assert_eq(shmbus__region_open(&o, rg.data_fd, rg.ctrl_fd, (enum shmbus__role)3), -EINVAL);
  rgn_assert_reset(&o);
  shmbus__region_close(&rg);
}

/* ---- parameters ------------------------------------------------------------ */

Test(region, invalid_params_are_refused) {
  static const struct {
    uint32_t slots, capacity, max_subs, max_pubs;
    const char *why;
  } bad[] = {
      {0, 64, 4, 4, "slot count 0"},
      {1, 64, 4, 4, "slot count 1 (below the minimum)"},
      {3, 64, 4, 4, "slot count not a power of two"},
      {12, 64, 4, 4, "slot count not a power of two"},
      {(1u << 24) + 1, 64, 4, 4, "slot count not a power of two"},
      {1u << 25, 64, 4, 4, "slot count too large"},
      {UINT32_MAX, 64, 4, 4, "slot count too large"},
      {8, 0, 4, 4, "capacity 0"},
      {8, SHMBUS__MAX_SLOT_CAPACITY + 1, 4, 4, "capacity too big"},
      {8, UINT32_MAX, 4, 4, "capacity too big"},
      {8, 64, 0, 4, "max_subs 0"},
      {8, 64, 4097, 4, "max_subs above 4096"},
      {8, 64, UINT32_MAX, 4, "max_subs above 4096"},
      {8, 64, 4, 0, "max_pubs 0"},
      {8, 64, 4, SHMBUS__MAX_PUBS + 1, "max_pubs too large"},
      {1u << 24, SHMBUS__MAX_SLOT_CAPACITY, 4, 4, "region beyond 64 GiB"},
      {1u << 20, 1u << 16, 4, 4, "region beyond 64 GiB"},
  };
  size_t i;

  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct shmbus__params p = {bad[i].slots, bad[i].capacity, bad[i].max_subs, bad[i].max_pubs};
    struct shmbus__region rg;
    int fd = rgn_lowest_free_fd();
    int rv = shmbus__region_create(&rg, &p, "bad");
    cr_assert_eq(rv, SHMBUS_EPARAM, "%s (%u, %u, %u, %u): got %s", bad[i].why, p.slot_count,
                 p.slot_capacity, p.max_subs, p.max_pubs, shmbus_err_name(rv));
    rgn_assert_reset(&rg);
    cr_assert_eq(rgn_lowest_free_fd(), fd, "no fd left behind");
  }
}

Test(region, limits_themselves_are_accepted) {
  static const struct shmbus__params good[] = {
      {2, 1, 1, 1},
      {SHMBUS__MIN_SLOTS, 64, SHMBUS__MAX_SUBS, SHMBUS__MAX_PUBS},
      {4, SHMBUS__MAX_SLOT_CAPACITY, 1, 1},
  };
  size_t i;

  for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    struct shmbus__region rg, o;
    int rv = shmbus__region_create(&rg, &good[i], "edge");
    cr_assert_eq(rv, 0, "params %zu: %s", i, shmbus_strerror(rv));
    rgn_open_ok(&o, rg.data_fd, rg.ctrl_fd, SHMBUS__ROLE_PUB);
    cr_assert_eq(o.ring.max_subs, good[i].max_subs);
    cr_assert_eq(o.ring.bitmap_words, (good[i].max_subs + 63) / 64);
    shmbus__region_close(&o);
    shmbus__region_close(&rg);
  }
}

Test(region, create_failing_midway_leaves_nothing_behind) {
  struct shmbus__params p = tu_params(8, 64, 4, 4);
  struct shmbus__region rg;
  struct rlimit old, lim;
  int fd = rgn_lowest_free_fd();
  int rv;

  /* Room for exactly one more descriptor: the data file is created, the
   * control file is not, and the data file must be closed again. */
  cr_assert_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
  lim = old;
  lim.rlim_cur = (rlim_t)fd + 1;
  cr_assert_eq(setrlimit(RLIMIT_NOFILE, &lim), 0);
  rv = shmbus__region_create(&rg, &p, "emfile");
  cr_assert_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
  cr_assert_eq(rv, -EMFILE, "got %s", shmbus_err_name(rv));
  rgn_assert_reset(&rg);
  cr_assert_eq(rgn_lowest_free_fd(), fd, "the data file's fd was closed");
}

/* ---- corrupted headers -------------------------------------------------------- */

struct rgn_field {
  const char *name;
  size_t off;
  size_t size;
};

#define RGN_FIELD(type, f)                                                                         \
  { #f, offsetof(struct type, f), sizeof(((struct type *)0)->f) }

static const struct rgn_field rgn_data_fields[] = {
    RGN_FIELD(shmbus__data_hdr, magic),         RGN_FIELD(shmbus__data_hdr, version),
    RGN_FIELD(shmbus__data_hdr, hdr_size),      RGN_FIELD(shmbus__data_hdr, slot_count),
    RGN_FIELD(shmbus__data_hdr, slot_capacity), RGN_FIELD(shmbus__data_hdr, slot_stride),
    RGN_FIELD(shmbus__data_hdr, max_subs),      RGN_FIELD(shmbus__data_hdr, max_pubs),
    RGN_FIELD(shmbus__data_hdr, flags),         RGN_FIELD(shmbus__data_hdr, nonce),
    RGN_FIELD(shmbus__data_hdr, data_size),     RGN_FIELD(shmbus__data_hdr, member_size),
    RGN_FIELD(shmbus__data_hdr, pubs_offset),   RGN_FIELD(shmbus__data_hdr, slots_offset),
    RGN_FIELD(shmbus__data_hdr, created_ns),
};

static const struct rgn_field rgn_ctrl_fields[] = {
    RGN_FIELD(shmbus__member_hdr, magic),        RGN_FIELD(shmbus__member_hdr, version),
    RGN_FIELD(shmbus__member_hdr, hdr_size),     RGN_FIELD(shmbus__member_hdr, max_subs),
    RGN_FIELD(shmbus__member_hdr, bitmap_words), RGN_FIELD(shmbus__member_hdr, nonce),
    RGN_FIELD(shmbus__member_hdr, member_size),
};

static uint64_t rgn_get(const void *base, const struct rgn_field *f) {
  uint64_t v64 = 0;
  uint32_t v32 = 0;
  if (f->size == 8) {
    memcpy(&v64, (const unsigned char *)base + f->off, 8);
    return v64;
  }
  memcpy(&v32, (const unsigned char *)base + f->off, 4);
  return v32;
}

static void rgn_set(void *base, const struct rgn_field *f, uint64_t v) {
  uint32_t v32 = (uint32_t)v;
  if (f->size == 8)
    memcpy((unsigned char *)base + f->off, &v, 8);
  else
    memcpy((unsigned char *)base + f->off, &v32, 4);
}

/* The result an open must give once data header field `f` is `v` (all
 * other fields intact). A changed parameter that yields exactly the same
 * layout (a capacity 64 -> 80 keeps the 128-byte stride; 7 publisher records
 * end where 8 do, at the same cache-line pair) is a consistent header that
 * cannot lead out of bounds, so it may be accepted; nothing short of a
 * checksum could tell. created_ns is informational. Anything else must be
 * refused. */
static int rgn_expect_data(const struct rgn_field *f, uint64_t v, const struct shmbus__layout *l) {
  struct shmbus__params p = l->params;
  struct shmbus__layout m;

  if (strcmp(f->name, "version") == 0)
    return SHMBUS_EVERSION;
  if (strcmp(f->name, "created_ns") == 0)
    return 0;
  if (strcmp(f->name, "slot_count") == 0)
    p.slot_count = (uint32_t)v;
  else if (strcmp(f->name, "slot_capacity") == 0)
    p.slot_capacity = (uint32_t)v;
  else if (strcmp(f->name, "max_pubs") == 0)
    p.max_pubs = (uint32_t)v;
  else
    return SHMBUS_EBADREGION;
  if (shmbus__layout_compute(&p, shmbus__page_size(), &m) == 0 && m.slot_stride == l->slot_stride &&
      m.pubs_offset == l->pubs_offset && m.slots_offset == l->slots_offset &&
      m.data_size == l->data_size && m.member_size == l->member_size &&
      m.bitmap_words == l->bitmap_words)
    return 0;
  return SHMBUS_EBADREGION;
}

static int rgn_expect_ctrl(const struct rgn_field *f) {
  return strcmp(f->name, "version") == 0 ? SHMBUS_EVERSION : SHMBUS_EBADREGION;
}

/* In a fresh region, sets one header field to `v` and opens with both
 * roles. An accepted header must give a ring whose slots stay in bounds. */
static void rgn_try_corruption(bool data_side, const struct rgn_field *f, uint64_t v) {
  struct shmbus__params p = tu_params(64, 64, 8, 8);
  struct shmbus__layout l;
  struct shmbus__region rg, o;
  int roles[2] = {SHMBUS__ROLE_PUB, SHMBUS__ROLE_SUB};
  int want;
  int k, rv;

  cr_assert_eq(shmbus__layout_compute(&p, shmbus__page_size(), &l), 0);
  tu_region(&rg, 64, 64, 8, 8);
  if (rgn_get(data_side ? rg.data : rg.ctrl, f) == v) {
    shmbus__region_close(&rg);
    return; /* not a change */
  }
  rgn_set(data_side ? rg.data : rg.ctrl, f, v);
  want = data_side ? rgn_expect_data(f, v, &l) : rgn_expect_ctrl(f);
  for (k = 0; k < 2; k++) {
    rv = shmbus__region_open(&o, rg.data_fd, rg.ctrl_fd, (enum shmbus__role)roles[k]);
    cr_assert_eq(rv, want, "%s.%s = %#llx (role %d): got %s, want %s", data_side ? "data" : "ctrl",
                 f->name, (unsigned long long)v, roles[k], shmbus_err_name(rv),
                 shmbus_err_name(want));
    if (rv == 0) {
      cr_assert_leq((uint64_t)SHMBUS__SLOT_HDR_SIZE + o.ring.slot_capacity, o.ring.slot_stride);
      cr_assert_leq((unsigned char *)(o.ring.pubs + o.ring.max_pubs), o.ring.slots);
      cr_assert_leq((uint64_t)(o.ring.slots - (unsigned char *)o.data) +
                        (uint64_t)o.ring.slot_count * o.ring.slot_stride,
                    o.data_len);
      shmbus__region_close(&o);
    } else {
      rgn_assert_reset(&o);
    }
  }
  shmbus__region_close(&rg);
}

/* The nonce and the creation time differ per region; they get their own
 * test below. */
static bool rgn_is_random(const struct rgn_field *f) {
  return strcmp(f->name, "nonce") == 0 || strcmp(f->name, "created_ns") == 0;
}

static void rgn_corrupt_each_field(bool data_side, const struct rgn_field *fields, size_t n) {
  size_t i;
  unsigned bit;

  for (i = 0; i < n; i++) {
    const struct rgn_field *f = &fields[i];
    struct shmbus__region rg;
    uint64_t orig;

    if (rgn_is_random(f))
      continue;
    tu_region(&rg, 64, 64, 8, 8);
    orig = rgn_get(data_side ? rg.data : rg.ctrl, f);
    shmbus__region_close(&rg);
    /* Every single-bit flip, then a few whole values. */
    for (bit = 0; bit < 8 * f->size; bit++)
      rgn_try_corruption(data_side, f, orig ^ (UINT64_C(1) << bit));
    rgn_try_corruption(data_side, f, 0);
    rgn_try_corruption(data_side, f, f->size == 8 ? UINT64_MAX : UINT32_MAX);
    rgn_try_corruption(data_side, f, orig * 2);
    rgn_try_corruption(data_side, f, orig + 1);
    rgn_try_corruption(data_side, f, orig - 1);
  }
}

Test(region, every_data_header_field_is_checked) {
  rgn_corrupt_each_field(true, rgn_data_fields,
                         sizeof(rgn_data_fields) / sizeof(rgn_data_fields[0]));
}

Test(region, every_ctrl_header_field_is_checked) {
  rgn_corrupt_each_field(false, rgn_ctrl_fields,
                         sizeof(rgn_ctrl_fields) / sizeof(rgn_ctrl_fields[0]));
}

/* The nonce and the creation time are random per region: flip them in place
 * (each bit, each side). */
Test(region, nonce_flips_are_caught_on_either_side) {
  static const struct rgn_field dn = RGN_FIELD(shmbus__data_hdr, nonce);
  static const struct rgn_field cn = RGN_FIELD(shmbus__member_hdr, nonce);
  static const struct rgn_field ct = RGN_FIELD(shmbus__data_hdr, created_ns);
  unsigned bit;

  for (bit = 0; bit < 64; bit++) {
    struct shmbus__region rg, o;

    tu_region(&rg, 64, 64, 8, 8);
    rgn_set(rg.data, &dn, rgn_get(rg.data, &dn) ^ (UINT64_C(1) << bit));
    rgn_assert_open_fails(rg.data_fd, rg.ctrl_fd, SHMBUS_EBADREGION, "data nonce flipped");
    shmbus__region_close(&rg);

    tu_region(&rg, 64, 64, 8, 8);
    rgn_set(rg.ctrl, &cn, rgn_get(rg.ctrl, &cn) ^ (UINT64_C(1) << bit));
    rgn_assert_open_fails(rg.data_fd, rg.ctrl_fd, SHMBUS_EBADREGION, "ctrl nonce flipped");
    shmbus__region_close(&rg);

    /* Informational only: any value opens. */
    tu_region(&rg, 64, 64, 8, 8);
    rgn_set(rg.data, &ct, rgn_get(rg.data, &ct) ^ (UINT64_C(1) << bit));
    rgn_open_ok(&o, rg.data_fd, rg.ctrl_fd, SHMBUS__ROLE_SUB);
    shmbus__region_close(&o);
    shmbus__region_close(&rg);
  }
}

Test(region, a_zeroed_header_is_not_a_region) {
  struct shmbus__region rg;

  /* As a creator that died before writing the magic would leave it. */
  tu_region(&rg, 8, 64, 4, 4);
  memset(rg.data, 0, SHMBUS__DATA_HDR_SIZE);
  rgn_assert_open_fails(rg.data_fd, rg.ctrl_fd, SHMBUS_EBADREGION, "zeroed data header");
  shmbus__region_close(&rg);
  tu_region(&rg, 8, 64, 4, 4);
  memset(rg.ctrl, 0, SHMBUS__MEMBER_HDR_SIZE);
  rgn_assert_open_fails(rg.data_fd, rg.ctrl_fd, SHMBUS_EBADREGION, "zeroed ctrl header");
  shmbus__region_close(&rg);
  tu_region(&rg, 8, 64, 4, 4);
  memset(rg.data, 0xff, SHMBUS__DATA_HDR_SIZE);
  memset(rg.ctrl, 0xff, SHMBUS__MEMBER_HDR_SIZE);
  rgn_assert_open_fails(rg.data_fd, rg.ctrl_fd, SHMBUS_EBADREGION, "all-ones headers");
  shmbus__region_close(&rg);
}

Test(region, files_of_two_regions_do_not_mix) {
  struct shmbus__region a, b, c;
  int a_ro, a_ctrl, b_ro, b_ctrl;

  /* Same parameters: only the nonce tells them apart. */
  tu_region(&a, 8, 64, 4, 4);
  tu_region(&b, 8, 64, 4, 4);
  cr_assert_neq(((struct shmbus__data_hdr *)a.data)->nonce,
                ((struct shmbus__data_hdr *)b.data)->nonce);
  rgn_assert_open_fails(a.data_fd, b.ctrl_fd, SHMBUS_EBADREGION, "data of a, ctrl of b");
  rgn_assert_open_fails(b.data_fd, a.ctrl_fd, SHMBUS_EBADREGION, "data of b, ctrl of a");
  cr_assert_eq(shmbus__region_subscriber_fds(&a, &a_ro, &a_ctrl), 0);
  cr_assert_eq(shmbus__region_subscriber_fds(&b, &b_ro, &b_ctrl), 0);
  /* Subscriber fds are tried as a subscriber only: a publisher open refuses
   * the read-only fd (-EACCES) before it reads anything. */
  {
    struct shmbus__region o;
    cr_assert_eq(shmbus__region_open(&o, a_ro, b_ctrl, SHMBUS__ROLE_SUB), SHMBUS_EBADREGION);
    rgn_assert_reset(&o);
    /* Swapped, the read-only fd lands where a writable mapping is needed. */
    cr_assert_eq(shmbus__region_open(&o, a_ctrl, a_ro, SHMBUS__ROLE_SUB), -EACCES,
                 "swapped subscriber fds");
    rgn_assert_reset(&o);
  }
  /* Other parameters too. */
  tu_region(&c, 16, 64, 4, 4);
  rgn_assert_open_fails(a.data_fd, c.ctrl_fd, SHMBUS_EBADREGION, "data of a, ctrl of c");
  rgn_assert_open_fails(c.data_fd, a.ctrl_fd, SHMBUS_EBADREGION, "data of c, ctrl of a");
  /* Swapped or repeated fds. */
  rgn_assert_open_fails(a.ctrl_fd, a.data_fd, SHMBUS_EBADREGION, "swapped fds");
  rgn_assert_open_fails(a.data_fd, a.data_fd, SHMBUS_EBADREGION, "data fd twice");
  rgn_assert_open_fails(a.ctrl_fd, a.ctrl_fd, SHMBUS_EBADREGION, "ctrl fd twice");
  close(a_ro);
  close(a_ctrl);
  close(b_ro);
  close(b_ctrl);
  shmbus__region_close(&a);
  shmbus__region_close(&b);
  shmbus__region_close(&c);
}

/* ---- things that are not regions ------------------------------------------------- */

Test(region, regular_file_with_region_bytes_is_refused) {
  struct shmbus__region rg;
  char path[] = "/tmp/shmbus-region-test-XXXXXX";
  int fd, ctrl_copy;

  tu_region(&rg, 8, 64, 4, 4);
  /* A byte-exact copy of the data file, in a plain file: right size, valid
   * header, but it could shrink under a mapping. */
  fd = mkstemp(path);
  cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
  unlink(path);
  cr_assert_eq(pwrite(fd, rg.data, (size_t)rg.data_len, 0), (ssize_t)rg.data_len);
  rgn_assert_open_fails(fd, rg.ctrl_fd, SHMBUS_EBADREGION, "regular file as data");
  ctrl_copy =
      rgn_memfd_copy(rg.ctrl, rg.ctrl_len, rg.ctrl_len, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  rgn_assert_open_fails(fd, ctrl_copy, SHMBUS_EBADREGION, "regular file with a sealed ctrl copy");
  rgn_assert_open_fails(rg.data_fd, fd, SHMBUS_EBADREGION, "regular file as ctrl");
  /* An empty regular file. */
  cr_assert_eq(ftruncate(fd, 0), 0);
  rgn_assert_open_fails(fd, rg.ctrl_fd, SHMBUS_EBADREGION, "empty regular file");
  close(fd);
  close(ctrl_copy);
  shmbus__region_close(&rg);
}

Test(region, pipe_and_device_fds_are_refused) {
  struct shmbus__region rg;
  int p[2];
  int null_fd;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(pipe(p), 0);
  rgn_assert_open_fails(p[0], rg.ctrl_fd, SHMBUS_EBADREGION, "pipe read end as data");
  rgn_assert_open_fails(rg.data_fd, p[1], SHMBUS_EBADREGION, "pipe write end as ctrl");
  null_fd = open("/dev/zero", O_RDWR | O_CLOEXEC);
  cr_assert_geq(null_fd, 0);
  rgn_assert_open_fails(null_fd, rg.ctrl_fd, SHMBUS_EBADREGION, "/dev/zero as data");
  close(null_fd);
  close(p[0]);
  close(p[1]);
  shmbus__region_close(&rg);
}

Test(region, memfd_copies_need_the_resize_seals) {
  struct shmbus__region rg, o;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub sub;
  const int both = F_SEAL_SHRINK | F_SEAL_GROW;
  int d, c;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 5, 1), 0);
  cr_assert_eq(shmbus__ring_publish(&pub, "kept", 5, 0), 0);
  c = rgn_memfd_copy(rg.ctrl, rg.ctrl_len, rg.ctrl_len, both);
  /* Valid-looking bytes at the right size, but resizable. */
  d = rgn_memfd_copy(rg.data, rg.data_len, rg.data_len, 0);
  rgn_assert_open_fails(d, c, SHMBUS_EBADREGION, "unsealed memfd");
  close(d);
  d = rgn_memfd_copy(rg.data, rg.data_len, rg.data_len, F_SEAL_GROW);
  rgn_assert_open_fails(d, c, SHMBUS_EBADREGION, "memfd that can shrink");
  close(d);
  d = rgn_memfd_copy(rg.data, rg.data_len, rg.data_len, F_SEAL_SHRINK);
  rgn_assert_open_fails(d, c, SHMBUS_EBADREGION, "memfd that can grow");
  close(d);
  {
    int uc = rgn_memfd_copy(rg.ctrl, rg.ctrl_len, rg.ctrl_len, 0);
    d = rgn_memfd_copy(rg.data, rg.data_len, rg.data_len, both);
    rgn_assert_open_fails(d, uc, SHMBUS_EBADREGION, "unsealed ctrl memfd");
    close(uc);
  }
  /* The control: with both resize seals the same bytes are a region, and
   * the message in them is readable. So the refusals above were about the
   * seals and nothing else. */
  rgn_open_ok(&o, d, c, SHMBUS__ROLE_SUB);
  cr_assert_eq(shmbus__ring_sub_attach(&o.ring, &sub, false, 1, 1), 0);
  {
    char buf[8];
    struct shmbus_msg_info info;
    cr_assert_eq(shmbus__ring_recv(&sub, buf, sizeof(buf), &info), 5);
    cr_assert_str_eq(buf, "kept");
  }
  shmbus__region_close(&o);
  close(d);
  close(c);
  shmbus__region_close(&rg);
}

Test(region, sealed_memfds_of_the_wrong_size_are_refused) {
  struct shmbus__region rg;
  const int seals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
  uint64_t page = shmbus__page_size();
  int d, c;

  tu_region(&rg, 8, 64, 4, 4);
  c = rgn_memfd_copy(rg.ctrl, rg.ctrl_len, rg.ctrl_len, seals);
  /* Smaller than a header. */
  d = rgn_memfd_copy(rg.data, 100, 100, seals);
  rgn_assert_open_fails(d, c, SHMBUS_EBADREGION, "100-byte data file");
  close(d);
  /* A complete header, but the file is shorter than it says. */
  d = rgn_memfd_copy(rg.data, SHMBUS__DATA_HDR_SIZE, SHMBUS__DATA_HDR_SIZE, seals);
  rgn_assert_open_fails(d, c, SHMBUS_EBADREGION, "header-only data file");
  close(d);
  d = rgn_memfd_copy(rg.data, rg.data_len - page, rg.data_len - page, seals);
  rgn_assert_open_fails(d, c, SHMBUS_EBADREGION, "data file a page short");
  close(d);
  /* Longer than it says. */
  d = rgn_memfd_copy(rg.data, rg.data_len, rg.data_len + page, seals);
  rgn_assert_open_fails(d, c, SHMBUS_EBADREGION, "data file a page long");
  close(d);
  /* Empty, and beyond the largest region there can be (sparse). */
  d = rgn_memfd_copy(NULL, 0, 0, seals);
  rgn_assert_open_fails(d, c, SHMBUS_EBADREGION, "empty memfd");
  close(d);
  d = rgn_memfd_copy(rg.data, rg.data_len, SHMBUS__MAX_REGION_BYTES + page, seals);
  rgn_assert_open_fails(d, c, SHMBUS_EBADREGION, "memfd beyond 64 GiB");
  close(d);
  /* The control file too. */
  d = rgn_memfd_copy(rg.data, rg.data_len, rg.data_len, seals);
  close(c);
  c = rgn_memfd_copy(rg.ctrl, 256, 256, seals);
  rgn_assert_open_fails(d, c, SHMBUS_EBADREGION, "256-byte ctrl file");
  close(c);
  c = rgn_memfd_copy(rg.ctrl, rg.ctrl_len, rg.ctrl_len + page, seals);
  rgn_assert_open_fails(d, c, SHMBUS_EBADREGION, "ctrl file a page long");
  close(c);
  close(d);
  shmbus__region_close(&rg);
}

/* ---- what subscribers may write ------------------------------------------------- */

/* Sanitizer runtimes catch SIGSEGV to print a report and then exit with a
 * status instead of dying by the signal; the test wants the signal itself,
 * so the default action is put back first. */
static void rgn_default_segv(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = SIG_DFL;
  sigemptyset(&sa.sa_mask);
  cr_assert_eq(sigaction(SIGSEGV, &sa, NULL), 0);
}

Test(region, subscriber_cannot_write_slots, .signal = SIGSEGV) {
  struct shmbus__region rg, sv;
  int ro, ctrl;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__region_subscriber_fds(&rg, &ro, &ctrl), 0);
  rgn_open_ok(&sv, ro, ctrl, SHMBUS__ROLE_SUB);
  rgn_default_segv();
  /* Forging a commit word: the mapping is read-only, so the store faults. */
  shmbus__store_release(&((struct shmbus__slot *)sv.ring.slots)->word,
                        SHMBUS__WORD(0, SHMBUS__SLOT_COMMITTED));
  cr_assert_fail("a subscriber wrote into the slot area");
}

Test(region, subscriber_role_maps_slots_read_only_even_from_a_writable_fd, .signal = SIGSEGV) {
  struct shmbus__region rg, sv;

  tu_region(&rg, 8, 64, 4, 4);
  rgn_open_ok(&sv, rg.data_fd, rg.ctrl_fd, SHMBUS__ROLE_SUB);
  rgn_default_segv();
  memset(sv.ring.slots, 0x41, 16);
  cr_assert_fail("a subscriber mapping was writable");
}

Test(region, read_only_fd_cannot_become_writable) {
  struct shmbus__region rg, sv, o;
  void *p = NULL;
  int ro, ctrl;

  tu_region(&rg, 8, 64, 4, 4);
  cr_assert_eq(shmbus__region_subscriber_fds(&rg, &ro, &ctrl), 0);
  /* Not as a publisher... */
  cr_assert_eq(shmbus__region_open(&o, ro, ctrl, SHMBUS__ROLE_PUB), -EACCES);
  rgn_assert_reset(&o);
  cr_assert_eq(shmbus__shm_map(ro, rg.data_len, true, &p), -EACCES);
  cr_assert_null(p);
  /* ...nor by changing the protection of a read-only mapping later. */
  rgn_open_ok(&sv, ro, ctrl, SHMBUS__ROLE_SUB);
  cr_assert_eq(mprotect(sv.data, (size_t)sv.data_len, PROT_READ | PROT_WRITE), -1);
  cr_assert_eq(errno, EACCES);
  /* ...nor by writing through the fd. */
  cr_assert_eq(pwrite(ro, "x", 1, 0), -1);
  cr_assert_eq(errno, EBADF);
  close(ro);
  close(ctrl);
  shmbus__region_close(&sv);
  shmbus__region_close(&rg);
}

/* A wake-up scan that records what it saw. */
static unsigned rgn_seen_n;
static uint32_t rgn_seen_g;
static uint64_t rgn_seen_ticket;
static void rgn_seen(void *ctx, uint32_t g, uint64_t ticket) {
  (void)ctx;
  rgn_seen_n++;
  rgn_seen_g = g;
  rgn_seen_ticket = ticket;
}

Test(region, subscriber_writes_its_control_records) {
  struct shmbus__region rg, sv;
  struct shmbus__ring_pub pub;
  struct shmbus__ring_sub lossy, rel;
  struct shmbus_msg_info info;
  unsigned char buf[64];
  int ro, ctrl, i;

  tu_region(&rg, 4, 64, 4, 4);
  cr_assert_eq(shmbus__region_subscriber_fds(&rg, &ro, &ctrl), 0);
  rgn_open_ok(&sv, ro, ctrl, SHMBUS__ROLE_SUB);
  close(ro);
  close(ctrl);
  /* Attaching writes the subscriber's record in the control file, through
   * the subscriber's mapping; the creator sees it through its own. */
  cr_assert_eq(shmbus__ring_sub_attach(&sv.ring, &lossy, false, 0, 77), 0);
  cr_assert_eq(shmbus__ring_sub_attach(&sv.ring, &rel, true, 0, 78), 0);
  cr_assert_eq(shmbus__load_acquire(&rg.ring.subs[0].state), SHMBUS__SUB_LOSSY);
  cr_assert_eq(shmbus__load_acquire(&rg.ring.subs[1].state), SHMBUS__SUB_RELIABLE);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.subs[0].pid), 77);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.ctrl->gen), 1);
  /* The reliable cursor it stores holds back the creator's publisher. */
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  for (i = 0; i < 4; i++)
    cr_assert_eq(shmbus__ring_publish(&pub, "m", 2, 0), 0);
  cr_assert_eq(shmbus__ring_publish(&pub, "m", 2, 0), SHMBUS_EFULL);
  cr_assert_eq(shmbus__ring_recv(&rel, buf, sizeof(buf), &info), 2);
  cr_assert_eq(shmbus__load_acquire(&rg.ring.subs[1].cursor), 1);
  cr_assert_eq(shmbus__ring_publish(&pub, "m", 2, 0), 0);
  while (shmbus__ring_recv(&lossy, buf, sizeof(buf), &info) == 2)
    continue;
  cr_assert_eq(lossy.received + lossy.lost, 5, "lapped once, it still accounts for all");
  for (i = 0; i < 4; i++)
    cr_assert_eq(shmbus__ring_recv(&rel, buf, sizeof(buf), &info), 2);
  /* Its sleeper bit, set through its mapping, reaches the publisher. */
  cr_assert(shmbus__ring_sub_arm(&lossy));
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.sleepers[0]), UINT64_C(1) << lossy.index);
  cr_assert_eq(shmbus__ring_publish(&pub, "w", 2, 0), 1);
  rgn_seen_n = 0;
  shmbus__ring_scan_sleepers(&rg.ring, 0, rgn_seen, NULL);
  cr_assert_eq(rgn_seen_n, 1);
  cr_assert_eq(rgn_seen_g, lossy.index);
  cr_assert_eq(rgn_seen_ticket, 1, "its first sleep");
  /* Leaving frees the records, again through the subscriber's mapping. */
  shmbus__ring_sub_detach(&rel);
  shmbus__ring_sub_detach(&lossy);
  cr_assert_eq(shmbus__load_acquire(&rg.ring.subs[0].state), SHMBUS__SUB_FREE);
  cr_assert_eq(shmbus__load_acquire(&rg.ring.subs[1].state), SHMBUS__SUB_FREE);
  cr_assert_eq(shmbus__load_relaxed(&rg.ring.ctrl->gen), 2);
  shmbus__region_close(&sv);
  shmbus__region_close(&rg);
}

Test(region, memory_outlives_the_creator_while_mapped) {
  struct shmbus__region rg, pv, sv;
  struct shmbus__ring_pub pub, late_pub;
  struct shmbus__ring_sub sub;
  int ro, ctrl, d, c;

  tu_region(&rg, 16, 64, 4, 4);
  cr_assert_eq(shmbus__region_subscriber_fds(&rg, &ro, &ctrl), 0);
  rgn_open_ok(&sv, ro, ctrl, SHMBUS__ROLE_SUB);
  close(ro);
  close(ctrl);
  cr_assert_eq(shmbus__ring_sub_attach(&sv.ring, &sub, false, 0, 1), 0);
  cr_assert_eq(shmbus__fd_dup(rg.data_fd, &d), 0);
  cr_assert_eq(shmbus__fd_dup(rg.ctrl_fd, &c), 0);
  rgn_open_ok(&pv, d, c, SHMBUS__ROLE_PUB);
  close(d);
  close(c);
  cr_assert_eq(shmbus__ring_pub_attach(&rg.ring, &pub, 1, 1), 0);
  rgn_roundtrip(&pub, &sub, 3, "before");
  cr_assert_eq(shmbus__ring_publish(&pub, "queued", 7, 0), 0);
  /* The creator (say, the daemon) goes away: its fds and mappings are
   * gone, no fd to the files is left anywhere, only the two mappings. */
  shmbus__region_close(&rg);
  {
    char buf[16];
    struct shmbus_msg_info info;
    cr_assert_eq(shmbus__ring_recv(&sub, buf, sizeof(buf), &info), 7);
    cr_assert_str_eq(buf, "queued");
    cr_assert_eq(info.pub_id, 1);
  }
  cr_assert_eq(shmbus__ring_pub_attach(&pv.ring, &late_pub, 2, 1), 0);
  cr_assert_eq(late_pub.index, 1, "the creator's publisher record is still taken");
  rgn_roundtrip(&late_pub, &sub, 10, "after");
  cr_assert_eq(sub.received, 14);
  cr_assert_eq(sub.lost, 0);
  shmbus__region_close(&pv);
  shmbus__region_close(&sv);
}
