/* costs_os: what `shmbus-bench publish` and `idle` (costs.c) need from the
 * operating system, behind one header, so that costs.c stays free of OS
 * calls: another process's memory, handles, CPU time and context switches
 * (the idle daemon's), and a few calls of the measuring process.
 * costs_linux.c implements it from /proc (what costs.c read before);
 * costs_windows.c from the process APIs, where some counts have no
 * counterpart: those calls say "not available" (-1) and the report says
 * so instead of a number. */
#ifndef SHMBUS_BENCH_COSTS_OS_H
#define SHMBUS_BENCH_COSTS_OS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* The system's name, for "not available on <name>" in the report. */
extern const char costs_os_name[];

/* How bp_daemon_stop stops the daemon, in the report's last line. */
extern const char costs_os_daemon_stop[];

/* The three memory figures of a process, in KiB. */
enum costs_mem {
  COSTS_MEM_PRIVATE,  /* Linux: RssAnon; Windows: private bytes (PrivateUsage) */
  COSTS_MEM_SHARED,   /* Linux: RssShmem; Windows: not available */
  COSTS_MEM_RESIDENT, /* Linux: VmRSS; Windows: the working set */
};
/* The figure's name in the report (a table's column). */
const char *costs_os_mem_name(enum costs_mem m);
/* Process pid's figure m in KiB; -1 when not available. */
long costs_os_mem_kb(pid_t pid, enum costs_mem m);

/* What pid holds: descriptors on Linux (/proc/PID/fd), handles on
 * Windows (GetProcessHandleCount); -1 when not readable. The word for
 * them in the report: costs_os_handles_name. */
extern const char costs_os_handles_name[];
int costs_os_handles(pid_t pid);

/* pid's CPU time (user + system) in units of costs_os_cpu_hz() per second
 * (Linux: clock ticks; Windows: 100 ns), -1 when not readable; its
 * description in the report (costs_os_cpu_what). */
long costs_os_cpu(pid_t pid);
long costs_os_cpu_hz(void);
extern const char costs_os_cpu_what[];

/* pid's threads' run time as the scheduler counts it, in ns
 * (/proc/PID/task/TID/schedstat); false when not available (Windows). */
bool costs_os_sched_ns(pid_t pid, uint64_t *ns);

/* The sum over pid's threads of their voluntary (`voluntary`) or
 * involuntary context switches; *threads (when not NULL) gets the number
 * of threads read. -1 when not available (Windows keeps no count of a
 * process's voluntary switches: a thread's ContextSwitches counts
 * preemptions too); *threads is then still set when the system can count
 * them, else -1. */
long costs_os_ctx_switches(pid_t pid, bool voluntary, int *threads);

/* Once at the start of the measuring process (Linux: SIGPIPE ignored). */
void costs_os_init(void);
/* In the idle client, before it opens its 1,000 topics: a descriptor
 * limit as high as allowed (Linux: three descriptors per topic). */
void costs_os_raise_fd_limit(void);
/* Gives the CPU to another runnable thread (sched_yield,
 * SwitchToThread). */
void costs_os_yield(void);

#endif /* SHMBUS_BENCH_COSTS_OS_H */
