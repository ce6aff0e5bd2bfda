/* shmbus-record-bench: can `shmbus record` keep up? The targets: a
 * 64 B topic at 1 M messages/s and a 1 MiB topic at 1 GB/s, recorded into a
 * file on local disk, reliable recording losing nothing and lossy losing
 * under 0.1 %; and the recorder's CPU time and file size per message, with
 * and without compression.
 *
 * Each case starts the real recorder (the `shmbus` CLI built here, or
 * --cli PATH) on a daemon of our own, publishes at the offered rate for
 * --seconds from this process (paced against the clock, in batches), then
 * sends the recorder SIGTERM: it takes what is still in the ring, finishes
 * the file and prints its summary, which is parsed here. The recorder's CPU
 * time comes from wait4(); the file size from stat(). Payloads: 64 B
 * sensor-like records (a sequence number, a timestamp and six slowly
 * changing floats); 1 MiB noisy "images" (a gradient plus 3 random low
 * bits per byte), so compression has something real to do.
 *
 * Nothing here asserts on speed; the numbers depend on the machine and on
 * what else it runs (the header line prints the load average). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchproc.h"
#include "shmbus/shmbus.h"

#ifndef SHMBUS_CLI_PATH
#error "SHMBUS_CLI_PATH must name the shmbus binary"
#endif

static uint64_t rb_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct rb_case {
  size_t size;
  double rate; /* offered messages per second */
  bool reliable;
  const char *compression;
};

struct rb_result {
  uint64_t published;
  double pub_seconds;
  unsigned long long recorded, lost;
  double cpu_s;
  uint64_t file_bytes;
  uint32_t slots;
  bool direct;              /* the recorder wrote with O_DIRECT (its -v line) */
  double gap_ms, lag_ms;    /* the recorder's -v: longest gap between drains, oldest message */
  unsigned long long qfull; /* lost with the write queue full */
  long preempted;           /* the recorder's involuntary context switches */
  unsigned long long chunks, raw_chunks; /* -v: chunks written, of them uncompressed */
  double chunk_max_ms;                   /* -v: the writer's longest chunk (compress, CRC, write) */
  double chunk_avg_ms;                   /* -v: the writer's mean chunk */
  double write_max_ms;                   /* -v: its longest O_DIRECT write */
  double write_avg_ms;                   /* -v: its mean O_DIRECT write */
  unsigned long long slow_writes;        /* -v: O_DIRECT writes over 16 ms */
};

/* --arg: extra arguments for every recorder (A/B of its options). */
#define RB_MAX_ARGS 8
static char *rb_args[RB_MAX_ARGS];
static int rb_nargs;

static uint64_t rb_rng = 0x9e3779b97f4a7c15ull;

static uint64_t rb_next(void) {
  rb_rng ^= rb_rng << 13;
  rb_rng ^= rb_rng >> 7;
  rb_rng ^= rb_rng << 17;
  return rb_rng;
}

/* Fills message `i` of `size` bytes. */
static void rb_fill(uint8_t *p, size_t size, uint64_t i) {
  if (size <= 256) {
    double v[6];
    memset(p, 0, size);
    memcpy(p, &i, sizeof(i) < size ? sizeof(i) : size);
    for (int k = 0; k < 6; k++)
      v[k] = (double)(float)(sin((double)i * 1e-3 + k) * 100.0);
    if (size >= 16 + sizeof(float) * 6) {
      uint64_t t = rb_now();
      memcpy(p + 8, &t, 8);
      for (int k = 0; k < 6; k++) {
        float f = (float)v[k];
        memcpy(p + 16 + 4 * k, &f, 4);
      }
    }
    return;
  }
  for (size_t k = 0; k < size; k += 8) {
    uint64_t r = rb_next();
    for (size_t b = 0; b < 8 && k + b < size; b++)
      p[k + b] = (uint8_t)((((k + b) / 1024 + i) & 0xf8) | ((r >> (8 * b)) & 7));
  }
}

static void rb_run(const struct rb_case *c, double seconds, const char *cli, const char *out_dir,
                   uint32_t slots_opt, bool direct, struct rb_result *res) {
  struct shmbus_topic_opts to = {0};
  char path[512], topic[64], err_path[600];
  shmbus_bus *bus;
  shmbus_pub *pub;
  uint8_t *buf;
  pid_t pid;
  int errfd, st, rv;
  struct rusage ru;
  struct stat sb;
  uint64_t t0, n = 0, total;

  memset(res, 0, sizeof(*res));
  snprintf(topic, sizeof(topic), "bench/rec/%zu/%s/%s", c->size, c->reliable ? "rel" : "lossy",
           c->compression);
  snprintf(path, sizeof(path), "%s/shmbus-record-bench-%d.mcap", out_dir, (int)getpid());
  snprintf(err_path, sizeof(err_path), "%s.err", path);
  /* Ring: at least 16 ms of messages at the offered rate, at least 16
   * slots (1 MiB at 954/s: the 16 slots give 16.8 ms; 64 B at 1 M/s:
   * 16,384 slots, 1 MiB of ring), at most 256 MiB. A lossy recorder on a
   * 2-CPU machine shared with its publisher is sometimes kept off the CPU
   * for longer than 4 ms (bench/README.md). --slots N: N slots for every
   * case (still at most 256 MiB). */
  to.slot_size = (uint32_t)c->size;
  to.slots = 16;
  while (to.slots < 1u << 20 && (double)to.slots < c->rate * 0.016)
    to.slots <<= 1;
  if (slots_opt != 0)
    to.slots = slots_opt;
  while ((uint64_t)to.slots * c->size > (256u << 20) && to.slots > 16)
    to.slots >>= 1;
  res->slots = to.slots;
  to.max_subs = 4;
  to.max_pubs = 2;

  if ((errfd = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) < 0)
    bp_die_errno("open the recorder's log");
  if ((pid = bp_fork()) == 0) {
    char slots[16], ss[16];
    snprintf(slots, sizeof(slots), "%u", to.slots);
    snprintf(ss, sizeof(ss), "%u", to.slot_size);
    dup2(errfd, 2);
    setenv("SHMBUS_DIR", bp_bus_dir(), 1);
    setenv("SHMBUS_NO_AUTOSTART", "1", 1);
    char *args[] = {"shmbus",
                    "record",
                    "-v",
                    "-o",
                    path,
                    "--compression",
                    (char *)c->compression,
                    "--slots",
                    slots,
                    "--slot-size",
                    ss,
                    "--max-subs",
                    "4",
                    "--max-pubs",
                    "2",
                    topic,
                    NULL,
                    NULL,
                    NULL,
                    NULL,
                    NULL,
                    NULL,
                    NULL,
                    NULL,
                    NULL,
                    NULL,
                    NULL};
    int na = 16;
    if (c->reliable)
      args[na++] = "--reliable";
    if (!direct)
      args[na++] = "--no-direct";
    for (int k = 0; k < rb_nargs; k++)
      args[na++] = rb_args[k];
    execv(cli, args);
    _exit(127);
  }
  close(errfd);
  bus = bp_bus_open("record-bench-pub");
  if ((rv = shmbus_pub_open(bus, topic, &to, &pub)) < 0)
    bp_die("open the publisher", rv);
  if ((rv = shmbus_pub_wait_subs(pub, 1, 30000)) < 0)
    bp_die("wait for the recorder", rv);
  if ((buf = malloc(c->size)) == NULL)
    bp_die("malloc", -ENOMEM);
  /* A few payloads, reused in turn: filling 1 MiB per message would cost
   * the publisher more than the bus. */
  uint8_t *bufs[8];
  for (int k = 0; k < 8; k++) {
    if ((bufs[k] = malloc(c->size)) == NULL)
      bp_die("malloc", -ENOMEM);
    rb_fill(bufs[k], c->size, (uint64_t)k);
  }
  total = (uint64_t)(c->rate * seconds);
  t0 = rb_now();
  while (n < total) {
    /* Pace: publish what is due, then yield the CPU briefly. */
    uint64_t due = (uint64_t)((double)(rb_now() - t0) * 1e-9 * c->rate) + 1;
    if (due > total)
      due = total;
    while (n < due) {
      const uint8_t *p = bufs[n % 8];
      if (c->size <= 256) {
        memcpy(buf, p, c->size);
        memcpy(buf, &n, sizeof(n) < c->size ? sizeof(n) : c->size);
        p = buf;
      }
      rv = shmbus_pub_publish(pub, p, c->size);
      if (rv == SHMBUS_EFULL) {
        (void)shmbus_pub_wait(pub, 1000);
        continue;
      }
      if (rv < 0)
        bp_die("publish", rv);
      n++;
    }
    if (n < total) {
      struct timespec ts = {0, 20000};
      nanosleep(&ts, NULL);
    }
  }
  res->pub_seconds = (double)(rb_now() - t0) * 1e-9;
  res->published = n;
  kill(pid, SIGTERM);
  if (wait4(pid, &st, 0, &ru) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
    bp_die("the recorder failed (see its log)", -EIO);
  res->cpu_s = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
               (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
  res->preempted = ru.ru_nivcsw;
  if (stat(path, &sb) == 0)
    res->file_bytes = (uint64_t)sb.st_size;
  {
    FILE *f = fopen(err_path, "r");
    char line[1024];
    while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
      char *l = strstr(line, ", lost ");
      if (strncmp(line, "recorded ", 9) == 0 && l != NULL) {
        char *qf = strstr(l, " with the write queue full");
        (void)sscanf(line, "recorded %llu", &res->recorded);
        (void)sscanf(l, ", lost %llu", &res->lost);
        if (qf != NULL) {
          while (qf > l && qf[-1] != '(')
            qf--;
          (void)sscanf(qf, "%llu", &res->qfull);
        }
      }
      if (strncmp(line, "drain: longest gap between passes ", 34) == 0) {
        char *a = strstr(line, "oldest message taken ");
        (void)sscanf(line + 34, "%lf", &res->gap_ms);
        if (a != NULL)
          (void)sscanf(a + 21, "%lf", &res->lag_ms);
        res->direct = strstr(line, "O_DIRECT: yes") != NULL;
        if ((a = strstr(line, "; chunks: ")) != NULL)
          (void)sscanf(a, "; chunks: %llu written, %llu uncompressed", &res->chunks,
                       &res->raw_chunks);
      }
      if (strncmp(line, "writer: chunks took ", 20) == 0) {
        char *a = strstr(line, "O_DIRECT writes: ");
        char *m = strstr(line, " over 16 ms), ");
        (void)sscanf(line + 20, "%lf", &res->chunk_max_ms);
        if (m != NULL)
          (void)sscanf(m, " over 16 ms), %lf", &res->chunk_avg_ms);
        if (a != NULL)
          (void)sscanf(a, "O_DIRECT writes: %*u, %lf ms at most (%llu over 16 ms), %lf",
                       &res->write_max_ms, &res->slow_writes, &res->write_avg_ms);
      }
    }
    if (f != NULL)
      fclose(f);
  }
  unlink(path);
  unlink(err_path);
  for (int k = 0; k < 8; k++)
    free(bufs[k]);
  free(buf);
  shmbus_bus_close(bus);
}

static void rb_usage(FILE *f) {
  fprintf(f, "usage: shmbus-record-bench [--seconds S] [--out-dir DIR] [--cli PATH] [--slots N]\n"
             "                           [--size B] [--mode M] [--no-direct] [--arg ARG]...\n"
             "                           [--quick]\n"
             "\n"
             "Runs `shmbus record` against a publisher at the issue's targets (64 B at\n"
             "1 M msg/s, 1 MiB at 1 GB/s), lossy and reliable, zstd and no compression,\n"
             "and prints per case: the ring's slots, what was offered and published,\n"
             "recorded and lost (and of that, lost with the write queue full), the\n"
             "recorder's CPU time per message, the file's bytes per message, and from the\n"
             "recorder's -v its longest gap between drains and the oldest message it took,\n"
             "and how often the scheduler took the CPU from the recorder (involuntary\n"
             "context switches), and from its writer thread the longest chunk (compress,\n"
             "CRC, write), the longest O_DIRECT write and the writes over 16 ms.\n"
             "  --seconds S    publishing time per case (default 3)\n"
             "  --out-dir DIR  where the recordings go (default /var/tmp: local disk)\n"
             "  --cli PATH     the shmbus binary (default: the one built here)\n"
             "  --slots N      ring slots of every case, at most 256 MiB a ring (default:\n"
             "                 at least 16 ms of messages, at least 16 slots)\n"
             "  --size B       only the cases of B-byte messages (64 or 1048576)\n"
             "  --no-direct    the recorder writes through the page cache (--no-direct);\n"
             "                 by default it writes with O_DIRECT where it can, and the\n"
             "                 dio column says whether it did\n"
             "  --mode M       only the lossy or the reliable cases\n"
             "  --arg ARG      pass ARG to every recorder too (up to 8; e.g. --arg\n"
             "                 --queue=256M)\n"
             "  --quick        short runs at a tenth of the rates (the smoke test)\n");
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {{"seconds", required_argument, NULL, 's'},
                                           {"out-dir", required_argument, NULL, 'o'},
                                           {"cli", required_argument, NULL, 'c'},
                                           {"quick", no_argument, NULL, 'q'},
                                           {"slots", required_argument, NULL, 'n'},
                                           {"size", required_argument, NULL, 'z'},
                                           {"no-direct", no_argument, NULL, 'd'},
                                           {"arg", required_argument, NULL, 'a'},
                                           {"mode", required_argument, NULL, 'm'},
                                           {"help", no_argument, NULL, 'h'},
                                           {NULL, 0, NULL, 0}};
  struct rb_case cases[] = {
      {64, 1e6, false, "zstd"},      {64, 1e6, false, "none"},       {64, 1e6, true, "zstd"},
      {64, 1e6, true, "none"},       {1u << 20, 954, false, "zstd"}, {1u << 20, 954, false, "none"},
      {1u << 20, 954, true, "zstd"}, {1u << 20, 954, true, "none"},
  };
  double seconds = 3, load[3] = {0, 0, 0};
  const char *out_dir = "/var/tmp", *cli = SHMBUS_CLI_PATH;
  bool quick = false, direct = true;
  unsigned long only_size = 0;
  int only_mode = -1; /* --mode: 0 lossy, 1 reliable */
  uint32_t slots = 0;
  int c, st;

  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
    case 's':
      seconds = atof(optarg);
      break;
    case 'o':
      out_dir = optarg;
      break;
    case 'c':
      cli = optarg;
      break;
    case 'q':
      quick = true;
      break;
    case 'n': {
      char *end;
      unsigned long v = strtoul(optarg, &end, 10);
      if (*end != '\0' || v < 2 || v > (1ul << 24) || (v & (v - 1)) != 0) {
        fprintf(stderr, "shmbus-record-bench: --slots takes a power of two, 2 to 2^24\n");
        return 2;
      }
      slots = (uint32_t)v;
      break;
    }
    case 'z': {
      char *end;
      only_size = strtoul(optarg, &end, 10);
      if (*end != '\0' || (only_size != 64 && only_size != 1u << 20)) {
        fprintf(stderr, "shmbus-record-bench: --size takes 64 or 1048576\n");
        return 2;
      }
      break;
    }
    case 'd':
      direct = false;
      break;
    case 'm':
      if (strcmp(optarg, "lossy") != 0 && strcmp(optarg, "reliable") != 0) {
        fprintf(stderr, "shmbus-record-bench: --mode takes lossy or reliable\n");
        return 2;
      }
      only_mode = strcmp(optarg, "reliable") == 0;
      break;
    case 'a':
      if (rb_nargs == RB_MAX_ARGS) {
        fprintf(stderr, "shmbus-record-bench: at most %d --arg\n", RB_MAX_ARGS);
        return 2;
      }
      rb_args[rb_nargs++] = optarg;
      break;
    case 'h':
      rb_usage(stdout);
      return 0;
    default:
      rb_usage(stderr);
      return 2;
    }
  }
  if (quick)
    seconds = 0.2;
  bp_init("shmbus-record-bench");
  bp_daemon_start(SHMBUSD_PATH);
  (void)getloadavg(load, 3);
  printf("shmbus-record-bench: %ld CPUs, load average %.2f %.2f %.2f, %g s per case, files in "
         "%s, build %s\n",
         sysconf(_SC_NPROCESSORS_ONLN), load[0], load[1], load[2], seconds, out_dir,
         SHMBUS_BENCH_BUILD_TYPE);
  if (rb_nargs > 0) {
    printf("recorder arguments added:");
    for (int k = 0; k < rb_nargs; k++)
      printf(" %s", rb_args[k]);
    printf("\n");
  }
  printf("%-8s %-8s %-5s %7s %10s %10s %10s %9s %8s %8s %8s %10s %10s %8s %8s %8s %4s %11s %7s "
         "%7s %7s %7s %5s\n",
         "size", "mode", "comp", "slots", "offered/s", "pub/s", "recorded", "lost", "q_full",
         "lost%", "MB/s", "cpu_ns/msg", "file_B/msg", "gap_ms", "lag_ms", "preempt", "dio",
         "raw/chunks", "ck_avg", "ck_max", "wr_avg", "wr_max", "wr>16");
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct rb_case k = cases[i];
    struct rb_result r;
    double lostp, mbs;
    if ((only_size != 0 && k.size != only_size) || (only_mode >= 0 && k.reliable != only_mode))
      continue;
    if (quick)
      k.rate /= 10;
    rb_run(&k, seconds, cli, out_dir, slots, direct, &r);
    lostp = r.published > 0 ? 100.0 * (double)r.lost / (double)r.published : 0;
    mbs = (double)r.recorded * (double)k.size / r.pub_seconds / 1e6;
    printf("%-8zu %-8s %-5s %7u %10.0f %10.0f %10llu %9llu %8llu %8.3f %8.1f %10.0f %10.1f %8.2f "
           "%8.2f %8ld %4s %5llu/%-5llu %7.2f %7.2f %7.2f %7.2f %5llu\n",
           k.size, k.reliable ? "reliable" : "lossy", k.compression, r.slots, k.rate,
           (double)r.published / r.pub_seconds, r.recorded, r.lost, r.qfull, lostp, mbs,
           r.recorded > 0 ? r.cpu_s * 1e9 / (double)r.recorded : 0.0,
           r.recorded > 0 ? (double)r.file_bytes / (double)r.recorded : 0.0, r.gap_ms, r.lag_ms,
           r.preempted, r.direct ? "yes" : "no", r.raw_chunks, r.chunks, r.chunk_avg_ms,
           r.chunk_max_ms, r.write_avg_ms, r.write_max_ms, r.slow_writes);
    fflush(stdout);
  }
  bp_daemon_stop(&st);
  bp_dir_remove();
  return 0;
}
