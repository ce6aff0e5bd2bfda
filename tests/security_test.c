/* Security, against a real shmbusd (docs/security.md points here):
 *
 *  - descriptors a client passes are validated before use: every kind of
 *    wrong descriptor in every fd-carrying request is refused with an
 *    error, the connection stays, and the daemon keeps none of them;
 *  - topic names cannot make the daemon touch a path;
 *  - a subscriber cannot write the slot area: not through its mapping, not
 *    by mapping its descriptor writable, not by reopening it through /proc
 *    (as another uid on the system bus, and as the same non-root uid);
 *  - other uids cannot reach a per-user bus; on the system bus the config
 *    decides and a denial is logged with the rule that decided;
 *  - a subscriber that makes its shared eventfd blocking (and fills it)
 *    neither blocks a publisher nor the daemon, and is disconnected.
 *
 * Tests that need another uid run a child as nobody (65534) and skip when
 * not root. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <msgpack.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemonutil.h"
#include "platform/platform.h"
#include "rawclient.h"
#include "shmbus/shmbus.h"

static const struct shmbus__params st_small = {8, 64, 4, 4};

TestSuite(security, .timeout = DT_TEST_TIMEOUT);

/* ---- wrong descriptors ---------------------------------------------------- */

enum st_kind {
  ST_REGULAR,   /* a file on disk */
  ST_PIPE,      /* a pipe's read end */
  ST_SOCKET,    /* one end of a socketpair */
  ST_DIR,       /* a directory */
  ST_OPATH,     /* an O_PATH descriptor of a file */
  ST_TMPFS,     /* a file in /dev/shm (tmpfs, not a memfd) */
  ST_MEMFD_RAW, /* an unsealed memfd of the right size */
  ST_MEMFD_BIG, /* a sealed, filled memfd of another size */
  ST_BLOCKING,  /* a blocking eventfd */
  ST_KINDS
};

static const char *const st_kind_name[ST_KINDS] = {
    "regular file",      "pipe",       "socket",         "directory",
    "O_PATH descriptor", "tmpfs file", "unsealed memfd", "memfd of another size",
    "blocking eventfd"};

/* Makes a descriptor of `kind`; `size` is the size memfds should pretend.
 * Returns -1 when this system cannot make one (the case is skipped). */
static int st_make(const struct dt_daemon *d, enum st_kind kind, uint64_t size) {
  char path[256];
  int fds[2];
  int fd = -1;

  switch (kind) {
  case ST_REGULAR:
    snprintf(path, sizeof(path), "%s/regular", d->tmp);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    DT_ASSERT(fd >= 0 && ftruncate(fd, (off_t)size) == 0, "regular file");
    break;
  case ST_PIPE:
    DT_ASSERT(pipe2(fds, O_CLOEXEC) == 0, "pipe");
    close(fds[1]);
    fd = fds[0];
    break;
  case ST_SOCKET:
    DT_ASSERT(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0, "socketpair");
    close(fds[1]);
    fd = fds[0];
    break;
  case ST_DIR:
    fd = open(d->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    break;
  case ST_OPATH:
    fd = open("/etc/passwd", O_PATH | O_CLOEXEC);
    break;
  case ST_TMPFS:
    fd = open("/dev/shm", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 && (ftruncate(fd, (off_t)size) != 0 || posix_fallocate(fd, 0, (off_t)size) != 0)) {
      close(fd);
      fd = -1;
    }
    break;
  case ST_MEMFD_RAW:
    fd = memfd_create("st-raw", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    DT_ASSERT(fd >= 0 && ftruncate(fd, (off_t)size) == 0, "memfd");
    break;
  case ST_MEMFD_BIG:
    DT_ASSERT(shmbus__shm_create("st-big", size + 4096, &fd) == 0, "memfd");
    break;
  case ST_BLOCKING:
    DT_ASSERT(shmbus__event_open(&fd) == 0, "eventfd");
    DT_ASSERT(fcntl(fd, F_SETFL, 0) == 0, "F_SETFL");
    break;
  default:
    break;
  }
  return fd;
}

/* Sends `m` (with its fds), expects an error reply with a negative code,
 * and checks that the connection stays. Returns the code. */
static int st_refused(int fd, struct shmbus__msg *m, const char *what) {
  struct shmbus__msg r;

  dt_send(fd, m);
  dt_reply(fd, m->id, &r);
  DT_ASSERT(r.type == SHMBUS__MSG_ERROR, "%s was accepted", what);
  DT_ASSERT(r.code < 0 && r.text[0] != '\0', "%s: no clear refusal", what);
  (void)dt_status(fd); /* the connection stays */
  return r.code;
}

Test(security, wrong_descriptors_are_refused_and_not_kept) {
  struct dt_daemon d;
  struct dt_rec pub;
  struct dt_rec sub;
  int before;
  int fd;
  int k;

  dt_start(&d);
  fd = dt_client(&d);
  /* A real topic whose descriptors we hold: adopts below name it, so that
   * only the descriptors are wrong. */
  DT_ASSERT(dt_open(fd, "sec/t", SHMBUS__ROLE_PUB, &st_small, &pub) == 0, "pub");
  DT_ASSERT(dt_open(fd, "sec/t", SHMBUS__ROLE_SUB, &st_small, &sub) == 0, "sub");
  (void)dt_status(fd);
  before = dt_fd_count(d.pid);
  for (k = 0; k < ST_KINDS; k++) {
    struct stat sst;
    uint64_t size;
    int bad;
    int slot;

    /* open: the one descriptor is the wake-up eventfd. */
    if ((bad = st_make(&d, (enum st_kind)k, 4096)) >= 0) {
      struct shmbus__msg m;
      shmbus__msg_init(&m, SHMBUS__MSG_OPEN, dt_next_id++);
      snprintf(m.topic, sizeof(m.topic), "sec/open%d", k);
      m.role = SHMBUS__ROLE_SUB;
      m.fds[0] = bad;
      m.nfds = 1;
      DT_ASSERT(st_refused(fd, &m, st_kind_name[k]) == -EINVAL, "open with a %s", st_kind_name[k]);
      close(bad);
    }
    /* adopt: data, control and eventfd; each wrong in turn. */
    for (slot = 0; slot < 3; slot++) {
      struct shmbus__msg m;
      const struct dt_rec *rec = slot == 0 ? &pub : &sub;
      DT_ASSERT(fstat(slot == 1 ? rec->ctrl_fd : rec->data_fd, &sst) == 0, "fstat");
      size = (uint64_t)sst.st_size;
      if ((bad = st_make(&d, (enum st_kind)k, size)) < 0)
        continue;
      shmbus__msg_init(&m, SHMBUS__MSG_ADOPT, dt_next_id++);
      snprintf(m.topic, sizeof(m.topic), "sec/t");
      m.role = rec->role;
      m.index = rec->index;
      m.has = SHMBUS__HAS_PARAMS;
      m.params = st_small;
      m.fds[0] = slot == 0 ? bad : rec->data_fd;
      m.fds[1] = slot == 1 ? bad : rec->ctrl_fd;
      m.fds[2] = slot == 2 ? bad : rec->efd;
      m.nfds = 3;
      (void)st_refused(fd, &m, st_kind_name[k]);
      close(bad);
    }
  }
  /* The two files of a region swapped, and a publisher adopting with the
   * read-only data descriptor a subscriber got. */
  {
    struct shmbus__msg m;
    shmbus__msg_init(&m, SHMBUS__MSG_ADOPT, dt_next_id++);
    snprintf(m.topic, sizeof(m.topic), "sec/t");
    m.role = SHMBUS__ROLE_PUB;
    m.index = pub.index;
    m.fds[0] = pub.ctrl_fd;
    m.fds[1] = pub.data_fd;
    m.fds[2] = pub.efd;
    m.nfds = 3;
    DT_ASSERT(st_refused(fd, &m, "swapped files") == SHMBUS_EBADREGION, "swapped");
    shmbus__msg_init(&m, SHMBUS__MSG_ADOPT, dt_next_id++);
    snprintf(m.topic, sizeof(m.topic), "sec/t");
    m.role = SHMBUS__ROLE_PUB;
    m.index = pub.index;
    m.fds[0] = sub.data_fd;
    m.fds[1] = sub.ctrl_fd;
    m.fds[2] = pub.efd;
    m.nfds = 3;
    DT_ASSERT(st_refused(fd, &m, "read-only data") == -EACCES, "read-only data as publisher");
  }
  /* Nothing kept: the daemon holds the descriptors it held before. */
  DT_ASSERT(dt_fd_count(d.pid) == before, "the daemon holds %d descriptors, before %d",
            dt_fd_count(d.pid), before);
  dt_rec_close(&pub);
  dt_rec_close(&sub);
  close(fd);
  dt_stop(&d);
  dt_cleanup(&d);
}

Test(security, topic_names_cannot_name_paths) {
  static const char *const bad[] = {"../etc/passwd", "/etc/passwd", "a/../../b", "a//b",
                                    "a/./b",         ".",           "..",        "a/b/",
                                    "$sys/../x",     "a/..",        "a\nb",      "a b"};
  struct dt_daemon d;
  struct dt_rec r;
  DIR *dir;
  struct dirent *e;
  int entries = 0;
  int fd;
  size_t i;

  dt_start(&d);
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    msgpack_sbuffer sb;
    int efd;
    DT_ASSERT(shmbus__topic_validate(bad[i], true) == SHMBUS_EBADNAME, "\"%s\" is valid", bad[i]);
    /* The daemon's decoder refuses it as a protocol violation. */
    fd = dt_client(&d);
    DT_ASSERT(shmbus__event_open(&efd) == 0, "eventfd");
    dt_pack_open(&sb, bad[i]);
    DT_ASSERT(shmbus__sock_send(fd, sb.data, sb.size, &efd, 1) == (int)sb.size, "send");
    msgpack_sbuffer_destroy(&sb);
    close(efd);
    dt_expect_error_and_eof(fd, -EPROTO);
    close(fd);
  }
  /* Valid names, even ones that look like files, are only names. */
  fd = dt_client(&d);
  DT_ASSERT(dt_open(fd, "shmbusd.sock", SHMBUS__ROLE_PUB, &st_small, &r) == 0, "a valid name");
  dt_rec_close(&r);
  DT_ASSERT(dt_open(fd, "..a/b..", SHMBUS__ROLE_PUB, &st_small, &r) == 0, "a valid name");
  dt_rec_close(&r);
  /* The bus directory holds the socket and the lock, nothing else. */
  dir = opendir(d.dir);
  DT_ASSERT(dir != NULL, "opendir");
  while ((e = readdir(dir)) != NULL)
    if (e->d_name[0] != '.')
      entries++;
  closedir(dir);
  DT_ASSERT(entries == 2, "the bus directory holds %d entries", entries);
  close(fd);
  dt_stop(&d);
  dt_cleanup(&d);
}

/* ---- the slot area is read-only for subscribers --------------------------- */

static sigjmp_buf st_jmp;

static void st_on_segv(int sig) {
  (void)sig;
  siglongjmp(st_jmp, 1);
}

/* In a child: every way a subscriber could write the slots of the topic it
 * opened through the daemon fails. Returns 0 or a distinct exit code. */
static int st_subscriber_cannot_write(const struct dt_daemon *d) {
  struct sigaction sa;
  struct dt_rec s;
  char path[64];
  void *p;
  int fd;
  int rw;

  fd = dt_client(d);
  if (dt_open(fd, "ro/t", SHMBUS__ROLE_SUB, &st_small, &s) != 0)
    return 60;
  dt_map(&s);
  /* 1. Mapping the received data descriptor writable. */
  p = mmap(NULL, s.rg.data_len, PROT_READ | PROT_WRITE, MAP_SHARED, s.data_fd, 0);
  if (p != MAP_FAILED || errno != EACCES)
    return 61;
  /* 2. Reopening it read-write through /proc. */
  snprintf(path, sizeof(path), "/proc/self/fd/%d", s.data_fd);
  rw = open(path, O_RDWR | O_CLOEXEC);
  if (rw >= 0 || errno != EACCES)
    return 62;
  /* 3. write(2) on it. */
  if (pwrite(s.data_fd, "x", 1, 0) != -1 || errno != EBADF)
    return 63;
  /* 4. Making the read-only mapping writable. */
  if (mprotect(s.rg.data, s.rg.data_len, PROT_READ | PROT_WRITE) == 0 || errno != EACCES)
    return 64;
  /* 5. Writing through the mapping faults. */
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = st_on_segv;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSEGV, &sa, NULL) != 0)
    return 65;
  if (sigsetjmp(st_jmp, 1) == 0) {
    *(volatile char *)s.rg.data = 0;
    return 66; /* the write went through */
  }
  dt_rec_close(&s);
  close(fd);
  return 0;
}

static void st_become_nobody(void) {
  dt_become_nobody();
}

Test(security, subscriber_of_another_uid_cannot_write_slots) {
  struct dt_daemon d;
  struct dt_rec p;
  pid_t pid;
  int status;
  int fd;

  if (geteuid() != 0)
    cr_skip_test("needs root to run a client as another uid");
  dt_start_system(&d, "allow sub ro/** *\n", NULL);
  fd = dt_client(&d);
  DT_ASSERT(dt_open(fd, "ro/t", SHMBUS__ROLE_PUB, &st_small, &p) == 0, "pub");
  pid = fork();
  DT_ASSERT(pid >= 0, "fork");
  if (pid == 0) {
    dt_in_child = true;
    st_become_nobody();
    _exit(st_subscriber_cannot_write(&d));
  }
  status = dt_wait_exit(pid);
  DT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the subscriber child: status %d",
            WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status));
  dt_rec_close(&p);
  close(fd);
  dt_stop(&d);
  dt_cleanup(&d);
}

/* Where st_same_uid keeps its copy of the daemon and its bus: a tree the
 * test (root) owns and removes in .fini, whatever became of the test. */
static char st_bin_dir[64];

static void st_remove_bin_dir(void) {
  du_rmtree(st_bin_dir);
}

/* The per-user case: daemon, publisher and subscriber all one non-root
 * uid. The mode of the memory file (0400) is what stops the reopen.
 *
 * The daemon runs as uid 65534, so it runs from a copy in a directory that
 * uid can enter (the build tree may be under a 0700 home), and its bus
 * lives in a directory the test made for that uid inside the same tree:
 * whatever the child leaves behind, .fini removes it all. */
Test(security, subscriber_of_the_same_uid_cannot_reopen_slots_writable, .fini = st_remove_bin_dir) {
  char daemon[128];
  char run[48];
  pid_t pid;
  int status;

  if (geteuid() != 0)
    cr_skip_test("needs root to switch to a non-root uid");
  /* The daemon would run as nobody, and valgrind (following it) could not
   * write its log where the run keeps them. */
  if (getenv("SHMBUS_UNDER_VALGRIND") != NULL)
    cr_skip_test("a daemon of another uid cannot log under valgrind");
  du_private_daemon(st_bin_dir, sizeof(st_bin_dir), daemon, sizeof(daemon));
  DT_ASSERT((size_t)snprintf(run, sizeof(run), "%s/run", st_bin_dir) < sizeof(run), "path");
  DT_ASSERT(mkdir(run, 0700) == 0 && chown(run, 65534, 65534) == 0, "%s: %s", run, strerror(errno));
  dt_daemon_path = daemon;
  pid = fork();
  DT_ASSERT(pid >= 0, "fork");
  if (pid == 0) {
    struct dt_daemon d;
    struct dt_rec p;
    int fd;
    int rv;
    dt_in_child = true;
    st_become_nobody();
    memset(&d, 0, sizeof(d));
    snprintf(d.tmp, sizeof(d.tmp), "%s", run);
    snprintf(d.dir, sizeof(d.dir), "%s/bus", d.tmp);
    snprintf(d.sock, sizeof(d.sock), "%s/shmbusd.sock", d.dir);
    snprintf(d.log, sizeof(d.log), "%s/daemon.log", d.tmp);
    dt_start_with(&d, NULL);
    fd = dt_client(&d);
    if (dt_open(fd, "ro/t", SHMBUS__ROLE_PUB, &st_small, &p) != 0)
      _exit(59);
    rv = st_subscriber_cannot_write(&d);
    dt_rec_close(&p);
    close(fd);
    dt_stop(&d);
    _exit(rv);
  }
  status = dt_wait_exit(pid);
  DT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child: status %d",
            WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status));
}

/* ---- who may connect, publish, subscribe ------------------------------------ */

Test(security, other_uid_cannot_reach_a_per_user_bus) {
  struct dt_daemon d;
  pid_t pid;
  int status;

  if (geteuid() != 0)
    cr_skip_test("needs root to run a client as another uid");
  dt_start(&d);
  /* As the daemon made it: the bus directory is 0700. Make the path up to
   * it passable, so that the directory's own mode is what refuses. */
  DT_ASSERT(chmod(d.tmp, 0755) == 0, "chmod");
  pid = fork();
  DT_ASSERT(pid >= 0, "fork");
  if (pid == 0) {
    int fd = -1;
    int rv;
    st_become_nobody();
    rv = shmbus__unix_connect(d.sock, &fd);
    _exit(rv == -EACCES ? 0 : 50);
  }
  status = dt_wait_exit(pid);
  DT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "nobody could connect: %d",
            WEXITSTATUS(status));
  dt_stop(&d);
  dt_cleanup(&d);
}

/* Another user who squats the bus directory with a socket of their own
 * must not get our traffic: the library refuses a daemon of another uid
 * (root excepted). */
Test(security, library_refuses_a_daemon_of_another_uid) {
  struct shmbus_bus_opts o;
  struct dt_daemon d;
  shmbus_bus *bus = NULL;
  int ready[2];
  int go[2];
  pid_t pid;
  char b;
  int rv;

  if (geteuid() != 0)
    cr_skip_test("needs root to run a listener as another uid");
  dt_init(&d);
  DT_ASSERT(chmod(d.tmp, 0777) == 0, "chmod");
  DT_ASSERT(pipe2(ready, O_CLOEXEC) == 0 && pipe2(go, O_CLOEXEC) == 0, "pipe");
  pid = fork();
  DT_ASSERT(pid >= 0, "fork");
  if (pid == 0) {
    struct sockaddr_un sa;
    int l;
    close(go[1]); /* so that the parent closing its end is our EOF */
    close(ready[0]);
    (void)prctl(PR_SET_PDEATHSIG, SIGKILL);
    st_become_nobody();
    if (mkdir(d.dir, 0755) != 0)
      _exit(20);
    l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d.sock);
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(l, 4) != 0 ||
        chmod(d.sock, 0666) != 0)
      _exit(21);
    if (write(ready[1], "r", 1) != 1)
      _exit(22);
    (void)!read(go[0], &b, 1); /* hold the socket until the parent is done */
    _exit(0);
  }
  close(ready[1]);
  close(go[0]);
  DT_ASSERT(read(ready[0], &b, 1) == 1, "the squatter did not get ready");
  shmbus_bus_opts_init(&o);
  o.dir = d.dir;
  o.autostart = 0;
  rv = shmbus_bus_open(&bus, &o);
  DT_ASSERT(rv == SHMBUS_EDENIED, "bus_open on a squatted socket: %s", shmbus_err_name(rv));
  close(go[1]);
  close(ready[0]);
  DT_ASSERT(dt_wait_exit(pid) == 0, "the squatter failed");
  dt_cleanup(&d);
}

Test(security, system_bus_denials_are_logged_with_the_rule) {
  struct dt_daemon d;
  char needle[512];
  pid_t pid;
  int status;
  int fd;

  if (geteuid() != 0)
    cr_skip_test("needs root to run a client as another uid");
  dt_start_system(&d,
                  "# who may do what\n"
                  "allow sub news/** *\n"
                  "deny pub news/** uid:65534\n"
                  "allow pub own/* uid:65534\n"
                  "allow create news/** *   # subscribing alone does not create (M6)\n",
                  NULL);
  pid = fork();
  DT_ASSERT(pid >= 0, "fork");
  if (pid == 0) {
    struct dt_rec r;
    char text[SHMBUS__TEXT_MAX + 1];
    dt_in_child = true;
    st_become_nobody();
    fd = dt_client(&d);
    if (dt_open_ex(fd, "news/today", SHMBUS__ROLE_PUB, NULL, &r, text) != SHMBUS_EDENIED)
      _exit(40);
    if (strstr(text, "rules.conf:3") == NULL)
      _exit(41);
    if (dt_open(fd, "news/today", SHMBUS__ROLE_SUB, NULL, &r) != 0)
      _exit(42);
    if (dt_open(fd, "own/x", SHMBUS__ROLE_PUB, NULL, &r) != 0)
      _exit(43);
    /* No rule matches: the default policy (owner and root only). */
    if (dt_open_ex(fd, "other/x", SHMBUS__ROLE_SUB, NULL, &r, text) != SHMBUS_EDENIED)
      _exit(44);
    if (strstr(text, "default policy") == NULL)
      _exit(45);
    _exit(0);
  }
  status = dt_wait_exit(pid);
  DT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child: status %d",
            WEXITSTATUS(status));
  fd = dt_client(&d);
  snprintf(needle, sizeof(needle), "uid 65534, daemon_test): pub on news/today denied by %s:3",
           d.cfg);
  dt_wait_log(&d, fd, needle, 1);
  dt_wait_log(&d, fd, "uid 65534, daemon_test): sub on other/x denied by default policy", 1);
  close(fd);
  dt_stop(&d);
  dt_cleanup(&d);
}

/* ---- a hostile subscriber and its eventfd --------------------------------------- */

/* Makes the subscriber's eventfd blocking and fills its counter, then goes
 * to sleep on the ring: whoever writes it now would block. */
static void st_poison_eventfd(struct dt_rec *s) {
  uint64_t v = UINT64_C(0xfffffffffffffffe);

  DT_ASSERT(fcntl(s->efd, F_SETFL, 0) == 0, "F_SETFL");
  DT_ASSERT(write(s->efd, &v, sizeof(v)) == (ssize_t)sizeof(v), "fill the counter");
  DT_ASSERT(shmbus__ring_sub_arm(&s->sub), "nothing to read yet");
}

Test(security, blocking_eventfd_of_a_subscriber_blocks_nobody) {
  struct dt_daemon d;
  struct dt_rec s;
  struct shmbus__msg m;
  int ready[2];
  pid_t pid;
  int status;
  int fd;
  int rv;

  /* The library's publisher (public API) and a raw hostile subscriber. */
  dt_start(&d);
  fd = dt_client(&d);
  DT_ASSERT(dt_open(fd, "evil/t", SHMBUS__ROLE_SUB, &st_small, &s) == 0, "sub");
  dt_map(&s);
  st_poison_eventfd(&s);
  DT_ASSERT(pipe2(ready, O_CLOEXEC) == 0, "pipe");
  pid = fork();
  DT_ASSERT(pid >= 0, "fork");
  if (pid == 0) {
    struct shmbus_topic_opts o = {8, 64, 4, 4, false};
    shmbus_bus *bus;
    shmbus_pub *pub;
    char b = 'p';
    dt_in_child = true;
    close(ready[0]);
    {
      struct shmbus_bus_opts bo;
      shmbus_bus_opts_init(&bo);
      bo.dir = d.dir;
      bo.autostart = 0;
      if (shmbus_bus_open(&bus, &bo) != 0)
        _exit(30);
    }
    if (shmbus_pub_open(bus, "evil/t", &o, &pub) != 0)
      _exit(31);
    /* Each publish sees the sleeper bit and tries to wake it. */
    for (int i = 0; i < 3; i++)
      if (shmbus_pub_publish(pub, "hello", 5) != 0)
        _exit(32);
    if (write(ready[1], &b, 1) != 1)
      _exit(33);
    shmbus_pub_close(pub);
    shmbus_bus_close(bus);
    _exit(0);
  }
  close(ready[1]);
  {
    struct pollfd pfd = {ready[0], POLLIN, 0};
    rv = poll(&pfd, 1, dt_timeout_ms());
    if (rv != 1)
      (void)kill(pid, SIGKILL);
    DT_ASSERT(rv == 1, "the publisher blocked on the subscriber's eventfd");
  }
  close(ready[0]);
  status = dt_wait_exit(pid);
  DT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the publisher: status %d",
            WEXITSTATUS(status));
  /* The publisher left: the daemon repairs and wakes sleepers, finds the
   * eventfd blocking, does not write it, and disconnects its owner. */
  for (;;) {
    rv = dt_recv(fd, &m);
    if (rv != 0)
      break;
    shmbus__msg_close_fds(&m); /* peer events */
  }
  DT_ASSERT(rv == -EPIPE, "the hostile subscriber was not disconnected: %s", shmbus_strerror(rv));
  fd = dt_client(&d);
  dt_wait_log(&d, fd, "made its wake-up eventfd blocking", 1);
  DT_ASSERT(dt_status(fd).clients == 1u, "the daemon still serves");
  dt_rec_close(&s);
  close(fd);
  dt_stop(&d);
  dt_cleanup(&d);
}
