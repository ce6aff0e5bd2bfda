/* cli_os: what the command-line tool needs from the operating system,
 * behind one header, so that the verbs (the .c files of cli/) stay free of OS calls.
 * posix.c implements it on Linux (poll, pipes, sigaction, clock_nanosleep,
 * getline, mmap, open_memstream, /proc, rename: exactly what the verbs
 * called before), windows.c on Windows (a console control handler and a
 * named stop event per process, events and the library's own wait, file
 * mappings, MoveFileExW).
 *
 * Also in cli.h, implemented here: cli_signal_fd, cli_stopping,
 * cli_now_ns. */
#ifndef SHMBUS_CLI_OS_H
#define SHMBUS_CLI_OS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "shmbus/shmbus.h"

/* The system-wide bus's directory (shmbusd --system), as the library
 * names it on this OS. */
#if defined(_WIN32)
#define CLI_OS_SYSTEM_DIR "Global\\shmbus"
#else
#define CLI_OS_SYSTEM_DIR "/run/shmbus"
#endif

/* Where the default bus is, in the help texts (no '%': some are printf
 * formats, some are printed as they are): CLI_OS_DIR_HELP for a
 * verb's --help (CLI_BUS_HELP), CLI_OS_DIR_HELP_MAIN for `shmbus --help`;
 * CLI_OS_SYSTEM_START says how the system bus's daemon is started. */
#if defined(_WIN32)
#define CLI_OS_DIR_HELP                                                                            \
  "      --dir DIR        bus directory (default: the SHMBUS_DIR variable, else shmbus in\n"       \
  "                       LOCALAPPDATA); it must exist unless it is the default\n"
#define CLI_OS_DIR_HELP_MAIN                                                                       \
  "  --dir DIR             bus directory (default: the SHMBUS_DIR variable, else\n"                \
  "                        shmbus in LOCALAPPDATA)\n"
#define CLI_OS_SYSTEM_START "`shmbusd --system` as an administrator"
#else
#define CLI_OS_DIR_HELP                                                                            \
  "      --dir DIR        bus directory (default: $SHMBUS_DIR, else $XDG_RUNTIME_DIR/shmbus,\n"    \
  "                       else /tmp/shmbus-UID); it must exist unless it is the default\n"
#define CLI_OS_DIR_HELP_MAIN                                                                       \
  "  --dir DIR             bus directory (default: $SHMBUS_DIR, else\n"                            \
  "                        $XDG_RUNTIME_DIR/shmbus, else /tmp/shmbus-UID)\n"
#define CLI_OS_SYSTEM_START "`systemctl start shmbusd` (or `shmbusd --system` as root)"
#endif

/* The printf flavour of format attributes: on Windows the C runtime's
 * own is not C99's; mingw-w64's stdio (__USE_MINGW_ANSI_STDIO) is. */
#if defined(__MINGW_PRINTF_FORMAT)
#define CLI_PRINTF_FORMAT __MINGW_PRINTF_FORMAT
#else
#define CLI_PRINTF_FORMAT printf
#endif

/* This process's user and primary group as the daemon's rules number
 * them: geteuid and getegid on Linux; on Windows the relative id of the
 * token's user SID (the daemon's `uid`) and 0. */
uint32_t cli_os_uid(void);
uint32_t cli_os_gid(void);

/* What cli_wait found ready. */
enum {
  CLI_WAIT_STOP = 1, /* the stop descriptor (cli_signal_fd): Ctrl-C or SIGTERM came */
  CLI_WAIT_BUS = 2,  /* the bus's connection: a message, or the daemon hung up */
};

/* Waits at most timeout_ms (-1: forever) until `stop_fd` (from
 * cli_signal_fd; < 0: none) or the connection of `bus` (NULL or not
 * connected: none) is ready; with neither it only sleeps. Returns a mask
 * of CLI_WAIT_*, 0 on timeout, or a negative errno value (an interrupted
 * wait is -EINTR: the caller loops). */
int cli_wait(int stop_fd, shmbus_bus *bus, int timeout_ms);

/* Sleeps until cli_now_ns() reaches `due_ns`, precisely (for the last
 * milliseconds of pacing); returns early once cli_stopping is set. */
void cli_sleep_until_ns(uint64_t due_ns);

/* POSIX getline: one line of `f` into *line (grown with realloc), its
 * newline included. Returns its length, or -1 at the end or on an error
 * (ferror tells which). */
ssize_t cli_getline(char **line, size_t *cap, FILE *f);

/* Opens `path` to read its bytes as they are (not inherited by children;
 * on Windows in binary mode); "-" is standard input (file descriptor 0,
 * switched to binary mode on Windows). Returns the descriptor, or -1 with
 * errno set. */
int cli_open_read(const char *path);

/* Waits as cli_wait does, and also for the subscribers' wake-up events
 * ev[0, n) (shmbus_sub_fd), at most timeout_ms; the events that fired are
 * reset (the caller drains every ring anyway). On Windows at most 62
 * events are waited for: with more, the wait is cut to 10 ms so that the
 * others are looked at that often. Returns a mask of CLI_WAIT_* and
 * CLI_WAIT_EVENT, 0 on timeout or an interruption, or a negative errno
 * value. */
enum { CLI_WAIT_EVENT = 4 };
int cli_wait_events(int stop_fd, shmbus_bus *bus, const shmbus_os_fd_t *ev, size_t n,
                    int timeout_ms);

/* CLOCK_REALTIME in nanoseconds since the epoch (record's log times). */
uint64_t cli_realtime_ns(void);

/* Starts a thread that runs fn(arg) (pthread_create; on Linux with SIGINT
 * and SIGTERM blocked in it, so that the calling thread takes them).
 * Returns 0 or an errno value. */
int cli_thread_start(pthread_t *t, void *(*fn)(void *), void *arg);

/* Creates or truncates `path` to write bytes as they are (mode 0644 on
 * Linux; binary mode and not inherited on Windows). Returns the
 * descriptor, or -1 with errno set. */
int cli_open_write(const char *path);

/* Makes what was written to `fd` durable: fsync, or FlushFileBuffers on
 * Windows. Returns 0, or -1 with errno set (EINVAL: `fd` is not a file
 * that can be synced, e.g. a pipe). */
int cli_fsync(int fd);

/* Maps the whole regular file `path` read-only. Returns 0 with *map and
 * *len, or -1 after saying why (as `verb`): it cannot be opened or mapped,
 * it is not a regular file, it is empty or too large. */
int cli_map_file(const char *verb, const char *path, const void **map, size_t *len);
void cli_unmap_file(const void *map, size_t len);

/* A stream that writes into memory: open_memstream on Linux; on Windows a
 * temporary file deleted at its close. cli_memstream_close closes `f`
 * and gives its bytes in *buf (malloc'd, NUL-terminated) and *len;
 * returns 0, or -1 (out of memory or space; *buf is then NULL or to be
 * freed). */
FILE *cli_memstream(char **buf, size_t *len);
int cli_memstream_close(FILE *f, char **buf, size_t *len);

/* A process's resident memory in bytes and the descriptors (Linux: files
 * in /proc/PID/fd; Windows: handles) it holds, when this process may read
 * them; false otherwise. */
bool cli_process_resources(uint32_t pid, uint64_t *rss, uint64_t *fds);

/* Writes `len` bytes of `data` to `path` atomically: a temporary file
 * beside it, made durable, then renamed over it (rename; MoveFileExW with
 * MOVEFILE_REPLACE_EXISTING on Windows), so that a reader sees the old
 * file or the new one, never a part. The file is readable by everyone on
 * Linux (0644); on Windows it takes the folder's inherited permissions.
 * Returns 0, or a negative errno value after saying why (as `verb`). */
int cli_write_file_atomic(const char *verb, const char *path, const void *data, size_t len);

/* Puts standard output in binary mode, for text whose line ends must stay
 * bare line feeds (metrics: OpenMetrics); nothing to do on Linux. */
void cli_stdout_binary(void);

/* A subscriber's wake-up event (shmbus_sub_fd) watched from a libuv loop,
 * for echo's sampling mode (topicset.c) to sleep between periods: a
 * uv_poll handle on the eventfd on Linux; on Windows, where libuv cannot
 * poll an event, the library's registered wait that wakes the loop
 * (src/platform/windows/loop.c, as src/uv.c uses it).
 *
 * cli_event_watch_start calls cb(arg) on the loop's thread once the event
 * is signalled, with the event reset (the caller drains the ring: a
 * signal may have been taken by an earlier wake-up), and again for each
 * later signal until the watch is closed. Returns 0 with *out, or a
 * negative errno value (libuv's). cli_event_watch_close stops it at once
 * (cb is not called any more; `ev` may be closed right after) and frees
 * it from the loop; it may be called from cb. */
typedef struct uv_loop_s uv_loop_t;
typedef struct cli_event_watch cli_event_watch;
typedef void (*cli_event_cb)(void *arg);
int cli_event_watch_start(uv_loop_t *loop, shmbus_os_fd_t ev, cli_event_cb cb, void *arg,
                          cli_event_watch **out);
void cli_event_watch_close(cli_event_watch *w);

#endif /* SHMBUS_CLI_OS_H */
