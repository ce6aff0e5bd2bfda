#include "procutil.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

/* Reads the first "<key> <n> kB" line of a /proc file. */
static int pu_field_kb(const char *path, const char *key, uint64_t *out) {
  char line[256];
  size_t klen = strlen(key);
  FILE *f = fopen(path, "r");
  int rv = -ENOENT;

  if (f == NULL)
    return -errno;
  while (fgets(line, sizeof(line), f) != NULL)
    if (strncmp(line, key, klen) == 0 && sscanf(line + klen, " %" SCNu64, out) == 1) {
      rv = 0;
      break;
    }
  fclose(f);
  return rv;
}

int pu_sample(pid_t pid, struct pu_sample *s) {
  char path[64];
  struct dirent *e;
  DIR *dir;
  int rv;

  snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
  if ((dir = opendir(path)) == NULL)
    return -errno;
  s->fds = 0;
  while ((e = readdir(dir)) != NULL)
    if (e->d_name[0] != '.')
      s->fds++;
  closedir(dir);
  snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
  if ((rv = pu_field_kb(path, "RssAnon:", &s->rss_anon_kb)) < 0)
    return rv;
  snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
  return pu_field_kb(path, "Private_Dirty:", &s->private_dirty_kb);
}

pid_t pu_start_daemon(const char *path, const char *dir, const char *extra, bool quiet) {
  int p[2];
  char c;
  ssize_t n;
  pid_t pid, parent;

  if (pipe(p) != 0)
    return -1;
  parent = getpid();
  if ((pid = fork()) < 0)
    return -1;
  if (pid == 0) {
    char fdarg[16];
    /* A daemon must not outlive the test process that started it: a worker
     * that dies abruptly would otherwise leave it holding ctest's output
     * pipe, and ctest would wait for its timeout instead of failing fast. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
      _exit(125);
    close(p[0]);
    snprintf(fdarg, sizeof(fdarg), "%d", p[1]);
    if (quiet && freopen("/dev/null", "w", stderr) == NULL)
      _exit(126);
    /* Without standard input, as CI starts the tests: the daemon must not
     * let a descriptor it opens take number 0. */
    if (p[1] != 0)
      close(0);
    execl(path, "shmbusd", "--foreground", "--dir", dir, "--ready-fd", fdarg, extra, (char *)NULL);
    _exit(127);
  }
  close(p[1]);
  /* The daemon writes one byte once it listens; EOF means it died. */
  do
    n = read(p[0], &c, 1);
  while (n < 0 && errno == EINTR);
  close(p[0]);
  return n == 1 ? pid : -1;
}
