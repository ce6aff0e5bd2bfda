/* tools_os: what `shmbus-bench tools` (tools.c) needs from the operating
 * system: starting the CLI's readers and the controls, stopping them the
 * way a user would (so that each prints its summary and exits 0), their
 * CPU time. tools_linux.c implements it with fork, execv, SIGTERM and
 * wait4; tools_windows.c with CreateProcess and the CLI's named stop event
 * (`Local\shmbus-cli-stop-<pid>`, docs/windows.md), its controls being
 * this program again (`tools --control`) stopped by an inherited event. */
#ifndef SHMBUS_BENCH_TOOLS_OS_H
#define SHMBUS_BENCH_TOOLS_OS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A process tools.c started. */
struct tl_proc {
  long pid;     /* its id; <= 0: none */
  void *handle; /* Windows: the process; unused on Linux */
  void *stop;   /* Windows: a control's stop event (NULL for a reader) */
};

/* What the report's machine line puts before the kernel's name ("Linux "; on
 * Windows nothing: bu_kernel says "Windows ..."). */
const char *tl_os_system(void);

/* In tools_main, first: when this process is a control that
 * tl_os_ctrl_start started as this program again (Windows), runs it and
 * returns its exit status; otherwise -1. */
int tl_os_control_main(int argc, char **argv);

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
 * loop) and returns once it runs; stopped with tl_os_reader_stop. */
struct tl_proc tl_os_ctrl_start(bool stream);

/* A control's body, in tools.c, for the OS files: tl_control_setup
 * allocates and fills the read loop's memory (*mem NULL for the busy
 * loop); 0 or -ENOMEM. tl_control_loop spins or reads until *stop is set
 * (by a signal handler or another thread: a flag that orders nothing),
 * then frees the memory. */
int tl_control_setup(bool stream, uint64_t **mem);
void tl_control_loop(bool stream, uint64_t *mem, volatile sig_atomic_t *stop);

/* This process's CPU time in ns (it has no other thread). */
uint64_t tl_os_cpu_ns(void);

#endif /* SHMBUS_BENCH_TOOLS_OS_H */
