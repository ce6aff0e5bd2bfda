/* region_fanout: one publisher process, several subscriber processes, one
 * topic region in shared memory.
 *
 * The parent creates the region (two sealed memory files), forks the
 * subscribers, which inherit the fds and map the slot area read-only, and
 * then publishes. Subscribers that find nothing to read arm their sleeper
 * bit and block on their own eventfd; the publisher writes that eventfd only
 * when a commit finds a sleeper. Until shmbusd exists this example plays
 * the daemon's part itself: it hands out fds and wake-up eventfds.
 *
 * Usage: shmbus-example-fanout [--subs N] [--messages N] [--slots N]
 * Every payload carries a checksum; each subscriber prints what it received
 * and lost, and the example fails if a checksum is wrong, if a reliable
 * subscriber lost anything, or if received + lost != published. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "platform/platform.h"
#include "region.h"
#include "shmbus/shmbus.h"

#define MAX_SUBS 16
#define PAYLOAD 64

struct msg {
  uint64_t n;    /* 0..messages-1 */
  uint64_t last; /* 1 on the final message */
  char text[40];
  uint64_t sum; /* checksum of the fields above */
};

static uint64_t msg_sum(const struct msg *m) {
  const unsigned char *p = (const unsigned char *)m;
  uint64_t h = 1469598103934665603ull;
  size_t i;
  for (i = 0; i < offsetof(struct msg, sum); i++)
    h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

struct report {
  uint32_t index; /* subscriber record index */
  uint64_t received, lost, joined, end, bad;
};

static int die(const char *what, int rv) {
  fprintf(stderr, "fanout: %s: %s\n", what, shmbus_strerror(rv));
  return 1;
}

/* A subscriber process: map read-only, attach, read until the last message. */
static int run_subscriber(int id, bool reliable, int data_ro, int ctrl, int efd, int out) {
  struct shmbus__region rg;
  struct shmbus__ring_sub sub;
  struct shmbus__msg_info info;
  struct report rep = {0};
  struct msg m;
  int rv;

  if ((rv = shmbus__region_open(&rg, data_ro, ctrl, SHMBUS__ROLE_SUBSCRIBER)) < 0)
    return die("region_open", rv);
  if ((rv = shmbus__ring_sub_attach(&rg.ring, &sub, reliable, 0, (uint32_t)getpid())) < 0)
    return die("sub_attach", rv);
  rep.index = sub.index;
  rep.joined = sub.cursor;
  if (write(out, &rep, sizeof(rep)) != (ssize_t)sizeof(rep)) /* tell the parent our index */
    return die("write", -errno);
  for (;;) {
    rv = shmbus__ring_recv(&sub, &m, sizeof(m), &info);
    if (rv == -EAGAIN) {
      uint64_t v;
      if (shmbus__ring_sleep_prepare(&sub) && read(efd, &v, sizeof(v)) < 0 && errno != EINTR)
        return die("read eventfd", -errno);
      continue;
    }
    if (rv < 0)
      return die("recv", rv);
    if (rv != (int)sizeof(m) || m.sum != msg_sum(&m))
      rep.bad++;
    if (m.last)
      break;
  }
  rep.received = sub.received;
  rep.lost = sub.lost;
  rep.end = sub.cursor;
  printf("subscriber %d (%s, pid %d): received %" PRIu64 " lost %" PRIu64
         " checksum errors %" PRIu64 "; last: \"%s\"\n",
         id, reliable ? "reliable" : "lossy", (int)getpid(), rep.received, rep.lost, rep.bad,
         m.text);
  fflush(stdout);
  if (write(out, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
    return die("write", -errno);
  shmbus__ring_sub_detach(&sub);
  shmbus__region_close(&rg);
  return 0;
}

/* Wakes every subscriber whose sleeper bit the last commit found. */
static void wake_sleepers(struct shmbus__ring *ring, const int *efd_of_index) {
  uint64_t words = shmbus__ring_take_summary(ring);
  while (words != 0) {
    uint32_t w = (uint32_t)__builtin_ctzll(words);
    uint64_t bits = shmbus__ring_take_sleepers(ring, w);
    words &= words - 1;
    while (bits != 0) {
      uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(bits);
      uint64_t one = 1;
      bits &= bits - 1;
      if (i < MAX_SUBS && efd_of_index[i] >= 0 && write(efd_of_index[i], &one, sizeof(one)) < 0)
        perror("fanout: write eventfd");
    }
  }
}

static void usage(void) {
  printf("usage: shmbus-example-fanout [--subs N] [--messages N] [--slots N]\n"
         "One publisher process fans out to N subscriber processes (default 3: the\n"
         "first is reliable, the others lossy) through one shared-memory region.\n");
}

int main(int argc, char **argv) {
  struct shmbus__params p = {1024, PAYLOAD, MAX_SUBS, 4};
  struct shmbus__region rg;
  struct shmbus__ring_pub pub;
  int nsubs = 3;
  uint64_t messages = 200000, n, sleeps = 0;
  int efd[MAX_SUBS], efd_of_index[MAX_SUBS], pipes[MAX_SUBS][2];
  pid_t pids[MAX_SUBS];
  int i, rv, failed = 0;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--subs") == 0 && i + 1 < argc)
      nsubs = atoi(argv[++i]);
    else if (strcmp(argv[i], "--messages") == 0 && i + 1 < argc)
      messages = strtoull(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--slots") == 0 && i + 1 < argc)
      p.slot_count = (uint32_t)strtoul(argv[++i], NULL, 10);
    else {
      usage();
      return strcmp(argv[i], "--help") == 0 ? 0 : 2;
    }
  }
  if (nsubs < 1 || nsubs > MAX_SUBS || messages < 1) {
    usage();
    return 2;
  }
  if ((rv = shmbus__region_create(&rg, &p, "fanout")) < 0)
    return die("region_create", rv);
  printf("topic region: %u slots of %u bytes; %d subscribers; %" PRIu64 " messages\n",
         p.slot_count, p.slot_capacity, nsubs, messages);
  fflush(stdout);

  for (i = 0; i < MAX_SUBS; i++)
    efd_of_index[i] = -1;
  for (i = 0; i < nsubs; i++) {
    int data_ro, ctrl;
    if ((rv = shmbus__region_subscriber_fds(&rg, &data_ro, &ctrl)) < 0)
      return die("subscriber_fds", rv);
    efd[i] = eventfd(0, EFD_CLOEXEC);
    if (efd[i] < 0 || pipe(pipes[i]) != 0)
      return die("eventfd/pipe", -errno);
    pids[i] = fork();
    if (pids[i] < 0)
      return die("fork", -errno);
    if (pids[i] == 0) {
      shmbus__region_close(&rg); /* the child keeps only the read-only fds */
      close(pipes[i][0]);
      _exit(run_subscriber(i, i == 0, data_ro, ctrl, efd[i], pipes[i][1]));
    }
    close(pipes[i][1]);
    shmbus__fd_close(data_ro);
    shmbus__fd_close(ctrl);
  }
  /* Wait for every subscriber to attach, learning their record indices. */
  for (i = 0; i < nsubs; i++) {
    struct report r;
    if (read(pipes[i][0], &r, sizeof(r)) != (ssize_t)sizeof(r) || r.index >= MAX_SUBS)
      return die("subscriber did not attach", -EPROTO);
    efd_of_index[r.index] = efd[i];
  }

  if ((rv = shmbus__ring_pub_attach(&rg.ring, &pub, 1, (uint32_t)getpid())) < 0)
    return die("pub_attach", rv);
  for (n = 0; n < messages; n++) {
    struct msg m;
    memset(&m, 0, sizeof(m));
    m.n = n;
    m.last = n + 1 == messages;
    snprintf(m.text, sizeof(m.text), "hello #%" PRIu64 " from pid %d", n, (int)getpid());
    m.sum = msg_sum(&m);
    while ((rv = shmbus__ring_publish(&pub, &m, sizeof(m), shmbus__clock_mono_ns())) ==
           SHMBUS_EFULL)
      shmbus__spin_backoff(64); /* the reliable subscriber is behind: yield to it */
    if (rv < 0)
      return die("publish", rv);
    if (rv == 1) {
      sleeps++;
      wake_sleepers(&rg.ring, efd_of_index);
    }
  }
  printf("publisher (pid %d): published %" PRIu64 ", woke sleepers %" PRIu64 " times\n",
         (int)getpid(), messages, sleeps);
  fflush(stdout);

  for (i = 0; i < nsubs; i++) {
    struct report r;
    int status;
    if (read(pipes[i][0], &r, sizeof(r)) != (ssize_t)sizeof(r)) {
      failed = 1;
    } else if (r.bad != 0 || r.received + r.lost != r.end - r.joined ||
               (i == 0 && r.lost != 0)) {
      fprintf(stderr, "fanout: subscriber %d: accounting or checksum failure\n", i);
      failed = 1;
    }
    if (waitpid(pids[i], &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
      failed = 1;
    close(pipes[i][0]);
    close(efd[i]);
  }
  shmbus__ring_pub_detach(&pub);
  shmbus__region_close(&rg);
  printf(failed ? "FAILED\n" : "ok: every subscriber accounted for every message\n");
  return failed;
}
