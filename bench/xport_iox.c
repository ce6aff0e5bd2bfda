/* xport_iox: see xport_iox.h. Built with the iceoryx C binding when CMake
 * finds it (SHMBUS_BENCH_IOX); without it the peer is skipped with a note.
 *
 * What is compared. A publisher loans a chunk from RouDi's memory pool,
 * copies the message into it (as shmbus_pub_publish copies into its ring)
 * and publishes it; a subscriber takes the chunk, reads it in place (the
 * benchmark's callback gets the shared chunk, no copy) and releases it.
 *   lossy     publisher DISCARD_OLDEST_DATA, subscriber queue full policy
 *             DISCARD_OLDEST_DATA: a full queue drops its oldest chunk;
 *   reliable  publisher WAIT_FOR_CONSUMER, subscriber BLOCK_PRODUCER: the
 *             publisher waits in iox_pub_publish_chunk until every queue
 *             has room.
 * A subscriber's queue holds as many chunks as shmbus's ring has slots for
 * the same size, at most 256 (iceoryx 2.0's maximum). iceoryx does not
 * count what a lossy queue drops (it keeps a flag only): the loss is the
 * sequence gaps the benchmark sees, checked against END's total.
 *
 * Wait modes:
 *   BX_EVENT  a WaitSet with the subscriber's HAS_DATA state attached;
 *   BX_UV     iceoryx has no descriptor a libuv loop could poll, so a thread
 *             of the subscriber process waits on a WaitSet (the DATA_RECEIVED
 *             event) and wakes the loop with uv_async_send; the loop takes
 *             the chunks. This is what a libuv application using iceoryx has
 *             to do; it pays two wake-ups per burst (the WaitSet's, then
 *             the loop's eventfd), which the report shows;
 *   BX_SPIN   iox_sub_take_chunk in a loop.
 * Subscriptions are connected by RouDi's discovery loop, some time after
 * iox_sub_init: the publisher sends HELLO until every subscriber heard one
 * (BX_F_HELLO), as for ZeroMQ. */
#define _GNU_SOURCE
#include "xport_iox.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "benchutil.h"

#ifdef SHMBUS_BENCH_IOX
#include <pthread.h>

#include "iceoryx_binding_c/enums.h"
#include "iceoryx_binding_c/log.h"
#include "iceoryx_binding_c/notification_info.h"
#include "iceoryx_binding_c/publisher.h"
#include "iceoryx_binding_c/runtime.h"
#include "iceoryx_binding_c/subscriber.h"
#include "iceoryx_binding_c/types.h"
#include "iceoryx_binding_c/user_trigger.h"
#include "iceoryx_binding_c/wait_set.h"
#endif

/* Why the peer is skipped (NULL: it may run). */
static const char *iox_note = "not set up (bx_iox_setup was not called)";

static const char *bxi_missing(void) {
  return iox_note;
}

#ifndef SHMBUS_BENCH_IOX

void bx_iox_setup(bool latency, const size_t *sizes, unsigned nsizes, const unsigned *subs,
                  unsigned nsubs, unsigned slots) {
  (void)latency, (void)sizes, (void)nsizes, (void)subs, (void)nsubs, (void)slots;
  iox_note = "not built: CMake found no iceoryx C binding (Debian libiceoryx-binding-c-dev) at "
             "configure time, or SHMBUS_BENCH_ICEORYX was OFF";
}

void bx_iox_teardown(void) {
}

const struct bx_ops bx_iox = {
    .name = "iceoryx",
    .flags = BX_F_FANOUT | BX_F_LATENCY,
    .missing = bxi_missing,
};

#else

/* iceoryx 2.0's fixed names: RouDi's socket and the lock it holds. */
#define IOX_ROUDI_SOCKET "/tmp/roudi"
#define IOX_ROUDI_LOCK "/tmp/iox-unique-roudi.lock"
#define IOX_MAX_QUEUE 256u         /* MAX_SUBSCRIBER_QUEUE_CAPACITY */
#define IOX_READY_MS 10000u        /* RouDi must accept clients within this */
#define IOX_STOP_MS 10000u         /* then SIGKILL */
#define IOX_MAX_POOLS 16u          /* one per listed size at most (MAX_LIST) */
#define IOX_MGMT_BYTES (80u << 20) /* RouDi's management segment, ~63 MiB, rounded up */

/* The parent's state: the text of a note, and the RouDi it started. */
static char iox_note_buf[512];
static char iox_dir[64];
static pid_t roudi_pid = -1, roudi_owner = -1;
static bool roudi_ready; /* ours held RouDi's lock: the fixed names are ours */
static bool roudi_gone;  /* reaped before the teardown, with roudi_status */
static int roudi_status;

/* The subscriber queue for a run: as many chunks as shmbus's ring has
 * slots for this size (bx_ring_slots), at most 256. */
static unsigned iox_queue_cap(size_t size, unsigned slots) {
  unsigned s = bx_ring_slots(size, slots);
  return s < IOX_MAX_QUEUE ? s : IOX_MAX_QUEUE;
}

/* A pool's chunk payload for messages of `size` bytes: a multiple of 64. */
static size_t iox_chunk_payload(size_t size) {
  return (size + 63) & ~(size_t)63;
}

static const char *note(const char *fmt, const char *arg) {
  snprintf(iox_note_buf, sizeof(iox_note_buf), fmt, arg);
  return iox_note_buf;
}

/* ---- RouDi, in the parent --------------------------------------------------- */

static bool in_path(const char *prog, char *out, size_t cap) {
  const char *path = getenv("PATH");
  char buf[4096];
  char *save = NULL, *d;
  if (path == NULL || strlen(path) >= sizeof(buf))
    return false;
  strcpy(buf, path);
  for (d = strtok_r(buf, ":", &save); d != NULL; d = strtok_r(NULL, ":", &save)) {
    snprintf(out, cap, "%s/%s", d, prog);
    if (access(out, X_OK) == 0)
      return true;
  }
  return false;
}

/* Whether a RouDi other than ours runs: it holds IOX_ROUDI_LOCK (flock).
 * A lock file we may not open is another user's RouDi (or its leftover,
 * which would stop ours from starting just as well). */
static const char *other_roudi(void) {
  int fd = open(IOX_ROUDI_LOCK, O_RDONLY | O_CLOEXEC);
  const char *why = NULL;
  if (fd < 0)
    return errno == ENOENT ? NULL : "another user's RouDi lock " IOX_ROUDI_LOCK " cannot be opened";
  if (flock(fd, LOCK_EX | LOCK_NB) != 0)
    why = errno == EWOULDBLOCK ? "another RouDi runs on this machine (it holds " IOX_ROUDI_LOCK
                                 "); iceoryx 2.0 allows one RouDi per machine and has no private "
                                 "instance, so the benchmark neither shares nor stops it"
                               : "cannot lock " IOX_ROUDI_LOCK;
  close(fd); /* drops our lock, if we got it */
  return why;
}

/* Whether process `pid` holds the flock on IOX_ROUDI_LOCK, from
 * /proc/locks ("1: FLOCK ADVISORY WRITE <pid> <maj>:<min>:<inode> ..."):
 * so that a RouDi that raced ours and won is never taken for ours. */
static bool holds_lock(pid_t pid) {
  struct stat st;
  char line[256];
  bool found = false;
  FILE *f;
  if (stat(IOX_ROUDI_LOCK, &st) != 0 || (f = fopen("/proc/locks", "re")) == NULL)
    return false;
  while (!found && fgets(line, sizeof(line), f) != NULL) {
    char type[16];
    unsigned maj, min;
    unsigned long long ino;
    int lpid;
    if (strstr(line, "->") != NULL) /* a waiter, not the holder */
      continue;
    if (sscanf(line, "%*d: %15s %*s %*s %d %x:%x:%llu", type, &lpid, &maj, &min, &ino) != 5)
      continue;
    found = strcmp(type, "FLOCK") == 0 && lpid == (int)pid &&
            ino == (unsigned long long)st.st_ino && maj == major(st.st_dev) &&
            min == minor(st.st_dev);
  }
  fclose(f);
  return found;
}

/* Whether RouDi's socket accepts a datagram connection. */
static bool roudi_listening(void) {
  struct sockaddr_un a;
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  bool ok;
  if (fd < 0)
    return false;
  memset(&a, 0, sizeof(a));
  a.sun_family = AF_UNIX;
  strcpy(a.sun_path, IOX_ROUDI_SOCKET);
  ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
  close(fd);
  return ok;
}

static void path_in_dir(char *out, size_t cap, const char *name) {
  snprintf(out, cap, "%s/%s", iox_dir, name);
}

/* Copies RouDi's log to stderr (it failed). */
static void dump_log(void) {
  char p[128], buf[4096];
  ssize_t n;
  int fd;
  path_in_dir(p, sizeof(p), "roudi.log");
  if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0)
    return;
  fprintf(stderr, "shmbus-bench: iox-roudi's log:\n");
  fflush(stderr);
  while ((n = read(fd, buf, sizeof(buf))) > 0)
    if (write(2, buf, (size_t)n) != n)
      break;
  close(fd);
}

static void remove_dir(void) {
  char p[128];
  if (iox_dir[0] == '\0')
    return;
  path_in_dir(p, sizeof(p), "roudi.toml");
  (void)unlink(p);
  path_in_dir(p, sizeof(p), "roudi.log");
  (void)unlink(p);
  (void)rmdir(iox_dir);
  iox_dir[0] = '\0';
}

/* The parent of process `pid` (from /proc/<pid>/stat), or -1. */
static pid_t parent_of(pid_t pid) {
  char p[64], buf[512], *rp;
  ssize_t n;
  int fd, ppid;
  snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
  if ((fd = open(p, O_RDONLY | O_CLOEXEC)) < 0)
    return -1;
  n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  if (n <= 0)
    return -1;
  buf[n] = '\0';
  /* "pid (comm) state ppid ...": comm may hold anything, up to the last ')'. */
  if ((rp = strrchr(buf, ')')) == NULL || sscanf(rp + 1, " %*c %d", &ppid) != 1)
    return -1;
  return (pid_t)ppid;
}

/* After our RouDi ended badly (killed, or aborted at its shutdown: iceoryx
 * 2.0 asserts when a process still registered is already gone), removes
 * what it and our endpoints left under iceoryx's fixed names: its shared
 * memory, socket and locks, and the sockets of endpoint processes that no
 * longer run. They are ours: our RouDi held the lock. */
static void remove_leftovers(void) {
  static const char prefix[] = "shmbus-bench-iox-";
  struct group *g = getgrgid(getegid());
  char p[PATH_MAX];
  struct dirent *e;
  DIR *d;
  (void)unlink("/dev/shm/iceoryx_mgmt");
  if (g != NULL && strchr(g->gr_name, '/') == NULL) {
    snprintf(p, sizeof(p), "/dev/shm/%s", g->gr_name);
    (void)unlink(p);
  }
  (void)unlink(IOX_ROUDI_SOCKET);
  (void)unlink(IOX_ROUDI_SOCKET ".lock");
  (void)unlink(IOX_ROUDI_LOCK);
  if ((d = opendir("/tmp")) == NULL)
    return;
  while ((e = readdir(d)) != NULL) {
    char *end;
    long pid;
    if (strncmp(e->d_name, prefix, sizeof(prefix) - 1) != 0)
      continue;
    pid = strtol(e->d_name + sizeof(prefix) - 1, &end, 10);
    if (pid <= 0 || (*end != '\0' && strcmp(end, ".lock") != 0))
      continue;
    /* An endpoint of ours still waiting for the dead RouDi ends now
     * (it would at our exit anyway: PR_SET_PDEATHSIG). */
    if (parent_of((pid_t)pid) == getpid() && kill((pid_t)pid, SIGKILL) == 0)
      (void)waitpid((pid_t)pid, NULL, 0);
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
      (void)unlinkat(dirfd(d), e->d_name, 0);
  }
  closedir(d);
  fprintf(stderr, "shmbus-bench: removed what iox-roudi left in /dev/shm and /tmp\n");
}

void bx_iox_teardown(void) {
  uint64_t end;
  int status = 0;
  pid_t pid = roudi_pid;
  if (getpid() != roudi_owner) /* an exiting child that inherited atexit */
    return;
  roudi_pid = -1;
  if (pid > 0) {
    bool killed = false;
    if (roudi_gone)
      status = roudi_status;
    else
      (void)kill(pid, SIGTERM);
    end = bu_now_ns() + (uint64_t)IOX_STOP_MS * 1000000u;
    while (!roudi_gone) {
      pid_t r = waitpid(pid, &status, WNOHANG);
      if (r == pid || (r < 0 && errno != EINTR))
        break;
      if (bu_now_ns() > end) {
        (void)kill(pid, SIGKILL);
        (void)waitpid(pid, &status, 0);
        killed = true;
        break;
      }
      bu_sleep_ms(5);
    }
    if (killed || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      if (killed)
        fprintf(stderr, "shmbus-bench: iox-roudi did not stop within 10 s: killed\n");
      else if (WIFSIGNALED(status))
        fprintf(stderr, "shmbus-bench: iox-roudi ended by signal %d\n", WTERMSIG(status));
      else
        fprintf(stderr, "shmbus-bench: iox-roudi exited with status %d\n", WEXITSTATUS(status));
      dump_log();
      if (roudi_ready)
        remove_leftovers();
    }
  }
  roudi_ready = roudi_gone = false;
  remove_dir();
}

static void teardown_at_exit(void) {
  bx_iox_teardown();
}

/* Writes RouDi's configuration: one memory pool per message size, enough
 * chunks for every subscriber's full queue plus the ones in flight. Returns
 * the bytes it reserves, or 0 on failure. */
static uint64_t write_config(const char *path, bool latency, const size_t *sizes, unsigned nsizes,
                             unsigned max_subs, unsigned slots) {
  size_t psize[IOX_MAX_POOLS];
  uint64_t pcount[IOX_MAX_POOLS], total = 0;
  unsigned i, j, n = 0;
  FILE *f;

  for (i = 0; i < nsizes && i < IOX_MAX_POOLS; i++) {
    size_t p = iox_chunk_payload(sizes[i]);
    /* Queued chunks, one held by each subscriber, the publisher's loans
     * (at most 8) and its last chunk; a ping-pong has two such channels. */
    uint64_t c = (uint64_t)(latency ? 2 : max_subs) * (iox_queue_cap(sizes[i], slots) + 1) + 16;
    for (j = 0; j < n && psize[j] != p; j++)
      ;
    if (j == n) {
      psize[n] = p;
      pcount[n++] = c;
    } else if (c > pcount[j]) {
      pcount[j] = c;
    }
  }
  /* Pools in increasing chunk size, as RouDi wants them. */
  for (i = 1; i < n; i++)
    for (j = i; j > 0 && psize[j - 1] > psize[j]; j--) {
      size_t ts = psize[j];
      uint64_t tc = pcount[j];
      psize[j] = psize[j - 1], pcount[j] = pcount[j - 1];
      psize[j - 1] = ts, pcount[j - 1] = tc;
    }
  if ((f = fopen(path, "we")) == NULL)
    return 0;
  fprintf(f,
          "# Written by shmbus-bench for its own RouDi.\n[general]\nversion = 1\n\n[[segment]]\n");
  for (i = 0; i < n; i++) {
    fprintf(f, "\n[[segment.mempool]]\nsize = %zu\ncount = %llu\n", psize[i],
            (unsigned long long)pcount[i]);
    total += pcount[i] * (psize[i] + 128); /* + chunk header and management */
  }
  if (fclose(f) != 0)
    return 0;
  return total + IOX_MGMT_BYTES;
}

void bx_iox_setup(bool latency, const size_t *sizes, unsigned nsizes, const unsigned *subs,
                  unsigned nsubs, unsigned slots) {
  char roudi[512], cfg[128], log[128];
  struct statvfs vs;
  unsigned i, max_subs = 1;
  uint64_t need, end;
  pid_t parent = getpid();

  if (roudi_pid > 0)
    return;
  if (!in_path("iox-roudi", roudi, sizeof(roudi))) {
    iox_note = "iox-roudi (Debian iceoryx) is not in $PATH";
    return;
  }
  if ((iox_note = other_roudi()) != NULL)
    return;
  for (i = 0; i < nsubs; i++)
    if (subs[i] > max_subs)
      max_subs = subs[i];
  snprintf(iox_dir, sizeof(iox_dir), "/tmp/shmbus-bench-iox-XXXXXX");
  if (mkdtemp(iox_dir) == NULL) {
    iox_dir[0] = '\0';
    iox_note = note("mkdtemp for RouDi's configuration failed: %s", strerror(errno));
    return;
  }
  path_in_dir(cfg, sizeof(cfg), "roudi.toml");
  path_in_dir(log, sizeof(log), "roudi.log");
  if ((need = write_config(cfg, latency, sizes, nsizes, max_subs, slots)) == 0) {
    iox_note = note("cannot write RouDi's configuration: %s", strerror(errno));
    remove_dir();
    return;
  }
  if (statvfs("/dev/shm", &vs) == 0 && need > (uint64_t)vs.f_bavail * vs.f_frsize / 2) {
    snprintf(iox_note_buf, sizeof(iox_note_buf),
             "RouDi would need %llu MiB of /dev/shm (its management segment, and pools for "
             "these sizes and subscribers), more than half of what it has free",
             (unsigned long long)(need >> 20));
    iox_note = iox_note_buf;
    remove_dir();
    return;
  }
  roudi_owner = parent;
  atexit(teardown_at_exit);
  fflush(NULL);
  if ((roudi_pid = fork()) < 0) {
    iox_note = note("fork: %s", strerror(errno));
    remove_dir();
    return;
  }
  if (roudi_pid == 0) {
    int lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    /* RouDi ends (SIGTERM: it removes its shared memory) with us. */
    (void)prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent || lfd < 0 || null < 0)
      _exit(127);
    (void)dup2(null, 0);
    (void)dup2(lfd, 1);
    (void)dup2(lfd, 2);
    /* -m off: no liveness monitoring, which declares a process dead when
     * its keep-alive thread has not run for 1.5 s, as happens on a loaded
     * machine; every endpoint unregisters itself at its exit. -k 1: at
     * its end RouDi kills what is still registered after 1 s. */
    execl(roudi, roudi, "-c", cfg, "-m", "off", "-k", "1", (char *)NULL);
    fprintf(stderr, "exec %s: %s\n", roudi, strerror(errno));
    _exit(127);
  }
  /* Ready when it holds the lock and its socket accepts a connection;
   * failed if it exits (a RouDi that started meanwhile holds the lock). */
  end = bu_now_ns() + (uint64_t)IOX_READY_MS * 1000000u;
  for (;;) {
    int status;
    pid_t r = waitpid(roudi_pid, &status, WNOHANG);
    if (r == roudi_pid) {
      roudi_pid = -1;
      dump_log();
      iox_note = "iox-roudi exited at its start (its log is above; another RouDi may have "
                 "started meanwhile)";
      remove_dir();
      return;
    }
    if (holds_lock(roudi_pid) && roudi_listening()) {
      roudi_ready = true;
      break;
    }
    if (bu_now_ns() > end) {
      dump_log();
      bx_iox_teardown();
      iox_note = "iox-roudi did not accept clients within 10 s (its log is above)";
      return;
    }
    bu_sleep_ms(1);
  }
  iox_note = NULL;
}

/* Before each run, in the parent: our RouDi must still run. Without it an
 * endpoint would wait in iox_runtime_init until the benchmark kills it. */
static int bxi_prepare(struct bx_run *run) {
  (void)run;
  if (!roudi_gone && roudi_pid > 0 && waitpid(roudi_pid, &roudi_status, WNOHANG) == roudi_pid)
    roudi_gone = true; /* its status is kept for the teardown */
  if (roudi_pid <= 0 || roudi_gone) {
    fprintf(stderr, "shmbus-bench: iox-roudi is gone; the iceoryx peer cannot run\n");
    return -ESRCH;
  }
  return 0;
}

/* ---- an endpoint, in a child ------------------------------------------------- */

struct bxi {
  iox_pub_storage_t pub_st;
  iox_sub_storage_t sub_st;
  iox_ws_storage_t ws_st;
  iox_user_trigger_storage_t stop_st;
  iox_pub_t pub;
  iox_sub_t sub;
  iox_ws_t ws;
  iox_user_trigger_t stop; /* BX_UV: ends the wait thread */
  bool thread;
  pthread_t tid;
  _Atomic bool stopping;
  uv_async_t *async; /* BX_UV: freed by its close callback */
  /* BX_EVENT: waits that ended without a notification while chunks were
   * waiting: wake-ups the WaitSet missed, caught by the recheck. */
  _Atomic uint64_t missed_wakeups;
};

/* A wait on the WaitSet lasts at most this long before the subscriber's
 * queue is looked at directly. Once in the ASan suite an iceoryx ping-pong
 * stood still for 10 s (both sides waiting; the cause was not found): if
 * that was a wake-up the WaitSet missed, the recheck catches it within
 * this time, counts it and reports it at close, instead of failing the
 * run; if it was something else, the run still fails. */
#define IOX_RECHECK_MS 100

/* Service "shmbus-bench", instance per benchmark process and run, event
 * "fan", "ping" or "pong". */
static void service(const struct bx_ep *ep, bool out, char *inst, size_t icap, char *ev,
                    size_t ecap) {
  const struct bx_run *r = ep->run;
  snprintf(inst, icap, "b%d-r%u", (int)getppid(), r->id);
  if (!r->latency)
    snprintf(ev, ecap, "fan");
  else
    snprintf(ev, ecap, "%s", (ep->role == BX_A) == out ? "ping" : "pong");
}

static int bxi_open(struct bx_ep *ep) {
  const struct bx_run *r = ep->run;
  struct bxi *x = calloc(1, sizeof(*x));
  char name[64], inst[64], ev[16];

  if (x == NULL)
    return -ENOMEM;
  ep->impl = x;
  if (r->size > UINT32_MAX)
    return -EMSGSIZE;
  /* Warnings and errors only (the library's default is verbose). */
  iox_set_loglevel(Iceoryx_LogLevel_Warn);
  /* One runtime per process, named uniquely while it runs. */
  snprintf(name, sizeof(name), "shmbus-bench-iox-%d", (int)getpid());
  iox_runtime_init(name);
  if (ep->role != BX_SUB) {
    iox_pub_options_t po;
    iox_pub_options_init(&po);
    po.historyCapacity = 0;
    po.nodeName = "shmbus-bench";
    po.offerOnCreate = true;
    po.subscriberTooSlowPolicy = r->reliable ? ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER
                                             : ConsumerTooSlowPolicy_DISCARD_OLDEST_DATA;
    service(ep, true, inst, sizeof(inst), ev, sizeof(ev));
    if ((x->pub = iox_pub_init(&x->pub_st, "shmbus-bench", inst, ev, &po)) == NULL)
      return -EIO;
  }
  if (ep->role != BX_PUB) {
    iox_sub_options_t so;
    iox_sub_options_init(&so);
    so.queueCapacity = iox_queue_cap(r->size, r->slots);
    so.historyRequest = 0;
    so.nodeName = "shmbus-bench";
    so.subscribeOnCreate = true;
    so.queueFullPolicy =
        r->reliable ? QueueFullPolicy_BLOCK_PRODUCER : QueueFullPolicy_DISCARD_OLDEST_DATA;
    service(ep, false, inst, sizeof(inst), ev, sizeof(ev));
    if ((x->sub = iox_sub_init(&x->sub_st, "shmbus-bench", inst, ev, &so)) == NULL)
      return -EIO;
    if (r->wait != BX_SPIN) {
      enum iox_WaitSetResult wr;
      if ((x->ws = iox_ws_init(&x->ws_st)) == NULL)
        return -EIO;
      /* Event mode: a state (data waiting), so no wake-up is ever missed
       * between a take that found nothing and the wait. The libuv thread:
       * the DATA_RECEIVED event, once per wake-up. */
      wr = r->wait == BX_EVENT
               ? iox_ws_attach_subscriber_state(x->ws, x->sub, SubscriberState_HAS_DATA, 1, NULL)
               : iox_ws_attach_subscriber_event(x->ws, x->sub, SubscriberEvent_DATA_RECEIVED, 1,
                                                NULL);
      if (wr != WaitSetResult_SUCCESS)
        return -EIO;
    }
  }
  return 0;
}

static int bxi_send(struct bx_ep *ep, const void *data, size_t len, bool must) {
  struct bxi *x = ep->impl;
  void *chunk = NULL;
  enum iox_AllocationResult ar;
  (void)must; /* DISCARD_OLDEST_DATA keeps the newest message: END arrives */
  ar = iox_pub_loan_chunk(x->pub, &chunk, (uint32_t)len);
  if (ar != AllocationResult_SUCCESS)
    /* The pools are sized for every queue full: running out is a bug. */
    return ar == AllocationResult_RUNNING_OUT_OF_CHUNKS ? -ENOBUFS : -EIO;
  memcpy(chunk, data, len);
  /* WAIT_FOR_CONSUMER (reliable): waits here until every queue has room. */
  iox_pub_publish_chunk(x->pub, chunk);
  return 0;
}

static int bxi_poll(struct bx_ep *ep, bx_msg_fn fn, void *ctx) {
  struct bxi *x = ep->impl;
  int n;
  for (n = 0; n < 256; n++) {
    const void *chunk = NULL;
    enum iox_ChunkReceiveResult rr = iox_sub_take_chunk(x->sub, &chunk);
    if (rr == ChunkReceiveResult_NO_CHUNK_AVAILABLE)
      break;
    if (rr != ChunkReceiveResult_SUCCESS)
      return rr == ChunkReceiveResult_TOO_MANY_CHUNKS_HELD_IN_PARALLEL ? -ENOBUFS : -EIO;
    /* Every message of a run has the run's size (the chunk header's size
     * is not part of the C binding). */
    fn(ctx, chunk, ep->run->size, 0);
    iox_sub_release_chunk(x->sub, chunk);
  }
  return n;
}

static struct timespec ms_to_ts(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  return ts;
}

/* One wait of at most IOX_RECHECK_MS: true if there is something to take
 * (notified, or chunks waiting that no notification announced). `count`:
 * the caller found the queue empty just before, so chunks waiting now
 * without a notification are a missed wake-up (or, rarely, one whose
 * notification was on its way as the wait ended). The libuv thread does
 * not count: its loop may simply still be draining what it was woken for. */
static bool bxi_wait_slice(struct bxi *x, int ms, bool count) {
  iox_notification_info_t info[4];
  uint64_t missed = 0, t0 = bu_now_ns();
  if (iox_ws_timed_wait(x->ws, ms_to_ts(ms), info, 4, &missed) > 0)
    return true;
  if (!iox_sub_has_chunks(x->sub))
    return false;
  /* A wait also ends early, with nothing to report, on a notification
   * whose chunk was taken before the wait: only one that lasted its full
   * time missed a wake-up. Relaxed: a statistic, read by this thread. */
  if (count && bu_now_ns() - t0 >= (uint64_t)ms * 1000000u)
    atomic_fetch_add_explicit(&x->missed_wakeups, 1, memory_order_relaxed);
  return true;
}

static int bxi_wait(struct bx_ep *ep, bx_msg_fn fn, void *ctx, int timeout_ms) {
  struct bxi *x = ep->impl;
  uint64_t end = bu_now_ns() + (uint64_t)timeout_ms * 1000000u;
  (void)fn;
  (void)ctx;
  for (;;) {
    uint64_t now = bu_now_ns();
    int ms = now >= end ? 0 : (int)((end - now + 999999u) / 1000000u);
    if (bxi_wait_slice(x, ms < IOX_RECHECK_MS ? ms : IOX_RECHECK_MS, true))
      return 0;
    if (bu_now_ns() >= end)
      return -ETIMEDOUT;
  }
}

/* BX_UV: the loop takes what arrived; the thread woke it. */
static void bxi_on_async(uv_async_t *a) {
  struct bx_ep *ep = a->data;
  int n;
  while ((n = bxi_poll(ep, ep->fn, ep->ctx)) > 0)
    ;
  if (n < 0) {
    ep->error = n;
    uv_stop(ep->loop);
  }
}

static void *bxi_waiter(void *arg) {
  struct bx_ep *ep = arg;
  struct bxi *x = ep->impl;
  for (;;) {
    bool wake = bxi_wait_slice(x, IOX_RECHECK_MS, false);
    /* Acquire: pairs with the release store before the stop trigger. */
    if (atomic_load_explicit(&x->stopping, memory_order_acquire))
      break;
    if (wake)
      (void)uv_async_send(x->async);
  }
  return NULL;
}

static int bxi_uv_start(struct bx_ep *ep, uv_loop_t *loop, bx_msg_fn fn, void *ctx) {
  struct bxi *x = ep->impl;
  int rv;
  (void)fn;
  (void)ctx;
  if ((x->stop = iox_user_trigger_init(&x->stop_st)) == NULL)
    return -EIO;
  if (iox_ws_attach_user_trigger_event(x->ws, x->stop, 2, NULL) != WaitSetResult_SUCCESS)
    return -EIO;
  if ((x->async = malloc(sizeof(*x->async))) == NULL)
    return -ENOMEM;
  if ((rv = uv_async_init(loop, x->async, bxi_on_async)) < 0) {
    free(x->async);
    x->async = NULL;
    return rv;
  }
  x->async->data = ep;
  if ((rv = pthread_create(&x->tid, NULL, bxi_waiter, ep)) != 0)
    return -rv;
  x->thread = true;
  /* Chunks that arrived before the thread waited: a first look. */
  (void)uv_async_send(x->async);
  return 0;
}

static void free_handle(uv_handle_t *h) {
  free(h);
}

static int64_t bxi_lost(struct bx_ep *ep) {
  (void)ep;
  return -1; /* iceoryx keeps a flag, not a count: the sequence gaps are the loss */
}

static void bxi_close(struct bx_ep *ep) {
  struct bxi *x = ep->impl;
  if (x == NULL)
    return;
  if (x->thread) {
    /* Release: the flag before the trigger the thread wakes up to. */
    atomic_store_explicit(&x->stopping, true, memory_order_release);
    iox_user_trigger_trigger(x->stop);
    (void)pthread_join(x->tid, NULL);
  }
  if (x->async != NULL)
    uv_close((uv_handle_t *)x->async, free_handle);
  if (atomic_load_explicit(&x->missed_wakeups, memory_order_relaxed) > 0)
    fprintf(stderr,
            "shmbus-bench[%d]: iceoryx: the WaitSet missed %llu wake-up(s) (chunks waiting, no "
            "notification); each cost up to %d ms until the recheck found it\n",
            (int)getpid(),
            (unsigned long long)atomic_load_explicit(&x->missed_wakeups, memory_order_relaxed),
            IOX_RECHECK_MS);
  if (x->ws != NULL)
    iox_ws_deinit(x->ws);
  if (x->stop != NULL)
    iox_user_trigger_deinit(x->stop);
  if (x->sub != NULL)
    iox_sub_deinit(x->sub);
  if (x->pub != NULL)
    iox_pub_deinit(x->pub);
  /* The runtime itself unregisters from RouDi (and removes its socket and
   * lock in /tmp) in its static destructor: the process ends through
   * exit() (BX_F_EXIT). iox_runtime_shutdown only releases a publisher
   * blocked on a full queue, which nothing is here. */
  free(x);
  ep->impl = NULL;
}

const struct bx_ops bx_iox = {
    .name = "iceoryx",
    .flags = BX_F_FANOUT | BX_F_LATENCY | BX_F_HELLO | BX_F_EXIT,
    .missing = bxi_missing,
    .prepare = bxi_prepare,
    .open = bxi_open,
    .send = bxi_send,
    .poll = bxi_poll,
    .wait = bxi_wait,
    .uv_start = bxi_uv_start,
    .lost = bxi_lost,
    .close = bxi_close,
};

#endif
