/* Helpers for CLI tests. See cliutil.h. */
#define _GNU_SOURCE
#include "cliutil.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct du_daemon cu_daemon;
char cu_work[64];
static int cu_counter;

void cu_setup(void) {
  memset(&cu_daemon, 0, sizeof(cu_daemon));
  snprintf(cu_work, sizeof(cu_work), "/tmp/shmbus-clitest-XXXXXX");
  cr_assert_not_null(mkdtemp(cu_work));
  du_start(&cu_daemon);
  setenv("SHMBUS_DIR", cu_daemon.dir, 1);
  setenv("SHMBUS_NO_AUTOSTART", "1", 1);
}

void cu_teardown(void) {
  du_stop(&cu_daemon);
  du_rmtree(cu_work);
}

void cu_start(struct cu_run *r, const char *const *args) {
  cu_start_on(r, NULL, args);
}

void cu_start_on(struct cu_run *r, const char *dir, const char *const *args) {
  char *argv[40];
  int n = 0;

  memset(r, 0, sizeof(*r));
  cu_counter++;
  snprintf(r->out_path, sizeof(r->out_path), "%s/out.%d", cu_work, cu_counter);
  snprintf(r->err_path, sizeof(r->err_path), "%s/err.%d", cu_work, cu_counter);
  argv[n++] = "shmbus";
  while (*args != NULL && n < 39)
    argv[n++] = (char *)*args++;
  argv[n] = NULL;
  r->pid = fork();
  cr_assert_geq(r->pid, 0);
  if (r->pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    int out = open(r->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(r->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0 || err < 0)
      _exit(126);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    if (dir != NULL)
      setenv("SHMBUS_DIR", dir, 1);
    execv(SHMBUS_CLI_PATH, argv);
    _exit(127);
  }
}

char *cu_slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  char *buf;
  long n;

  cr_assert_not_null(f, "open %s", path);
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  buf = malloc((size_t)n + 1);
  cr_assert_not_null(buf);
  cr_assert_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
  buf[n] = '\0';
  fclose(f);
  if (len != NULL)
    *len = (size_t)n;
  return buf;
}

int cu_wait(struct cu_run *r) {
  int st = du_wait(r->pid);
  r->pid = 0;
  r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r->out = cu_slurp(r->out_path, &r->out_len);
  r->err = cu_slurp(r->err_path, NULL);
  return r->status;
}

void cu_free(struct cu_run *r) {
  free(r->out);
  free(r->err);
}

void cu_signal(struct cu_run *r, int sig) {
  if (r->pid > 0)
    (void)kill(r->pid, sig);
}
