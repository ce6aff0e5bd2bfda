/* win_proc: what bench/platform/windows.c lends the other Windows files of
 * the benchmark (tools_windows.c) for starting programs: its command-line
 * quoting, its start in the kill-on-close job, its search beside the
 * program. Windows only. */
#ifndef SHMBUS_BENCH_WIN_PROC_H
#define SHMBUS_BENCH_WIN_PROC_H

#include <stdbool.h>
#include <stddef.h>

#include <windows.h>

/* Appends `arg` to the command line at *p (end: its end), quoted as the C
 * runtime splits command lines. False when it does not fit. */
bool bp_win_cmd_put(char **p, char *end, const char *arg);

/* Starts `cmd` (its program first on it; `exe` the program's path, or NULL
 * to let CreateProcess search) as a child in the benchmark's kill-on-close
 * job, inheriting the inheritable handles; `si` NULL: our standard
 * handles. Returns the process (the caller closes it); *pid its id. Dies
 * on failure. */
HANDLE bp_win_start(const char *exe, char *cmd, STARTUPINFOA *si, DWORD *pid);

/* `path` as started: a bare name found beside this program is that file,
 * anything else as it is. */
void bp_win_resolve_beside(const char *path, char *out, size_t cap);

#endif /* SHMBUS_BENCH_WIN_PROC_H */
