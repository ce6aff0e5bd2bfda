/* tools_os: what `shmbus-bench tools` (tools.c) needs from the operating
 * system: starting the CLI's readers and the controls, stopping them the
 * way a user would (so that each prints its summary and exits 0), their
 * CPU time. tools_linux.c implements it with fork, execv, SIGTERM and
 * wait4; tools_windows.c with CreateProcess and the CLI's named stop event
 * (`Local\shmbus-cli-stop-<pid>`, docs/windows.md), and has no controls. */
#ifndef SHMBUS_BENCH_TOOLS_OS_H
#define SHMBUS_BENCH_TOOLS_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A process tools.c started. */
struct tl_proc {
  long pid;     /* its id; <= 0: none */
  void *handle; /* Windows: the process; unused on Linux */
};

/* What the report's machine line puts before the kernel's name ("Linux "; on
 * Windows nothing: bu_kernel says "Windows ..."),
 * and a sentence for what it lacks: NULL when the controls run here. */
const char *tl_os_system(void);
const char *tl_os_no_controls(void);

/* The CLI binary `path` as it will be started (a bare name beside this
 * program on Windows) into out; 0, or a negative errno value when it
 * cannot be run. */
int tl_os_cli_find(const char *path, char *out, size_t cap);

/* Starts `cli` with `args` (args[0] is its name; NULL-terminated) on the
 * benchmark's bus (SHMBUS_DIR, autostart off), its standard output on the
 * null device, its standard error in `err_path`. Dies on failure. */
struct tl_proc tl_os_reader_start(const char *cli, char *const *args, const char *err_path);

/* Stops a reader as a user would (SIGTERM; on Windows its named stop
 * event, waiting until it has made it while it runs), waits for its end
 * and returns its CPU time (whole life) in ns. Dies unless it exited 0. */
uint64_t tl_os_reader_stop(struct tl_proc *p);

/* Starts control `stream` (true: the 64 MiB read loop; false: the busy
 * loop) and returns once it runs; stopped with tl_os_reader_stop. Only
 * when tl_os_no_controls() is NULL. */
struct tl_proc tl_os_ctrl_start(bool stream);

/* This process's CPU time in ns (it has no other thread). */
uint64_t tl_os_cpu_ns(void);

#endif /* SHMBUS_BENCH_TOOLS_OS_H */
