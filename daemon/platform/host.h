/* host: the contract between shmbusd and the operating system it runs on.
 *
 * Everything OS-specific the daemon does goes through these calls: the bus
 * directory and its lock, the listening socket and the connections it
 * accepts, who is at the other end of one (a peer identity), the groups of
 * a user and the names of users and groups, whether a process is alive,
 * the descriptor limit, detaching from the terminal, the ready signal to
 * whoever started the daemon, the supervisor's notification (systemd),
 * signals and the system log. Each OS implements it once under
 * daemon/platform/<os>/, with its own `host_impl.h` that defines the
 * opaque types below; the build puts that folder on the include path, so
 * no file outside daemon/platform/ tests an OS macro or includes an OS
 * header for these jobs. (The data path's calls, memory files, events,
 * descriptor passing, clocks, are the library's contract:
 * src/platform/platform.h.)
 *
 * Conventions: calls return 0 (or a documented non-negative value) on
 * success and a negative errno-style code on failure, never abort, and
 * retry EINTR themselves. Handles they create are close-on-exec and, where
 * a call says so, non-blocking. The daemon is single-threaded: none of
 * these calls is meant to be used from two threads at once. Across fork()
 * only host_daemonize forks, and it documents what each process keeps. */
#ifndef SHMBUSD_HOST_H
#define SHMBUSD_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Defines, per OS: host_sock_t (a socket handle; `int` on Linux),
 * HOST_SOCK_INVALID, host_event_t (a participant's wake-up event: an
 * eventfd on Linux), struct host_peer (who is at the other end of a
 * connection), struct host_principal (a user or a group a rule names),
 * struct host_lock (a held directory lock), struct host_ready (the channel
 * that tells whoever started the daemon that it is ready), HOST_PATH_MAX
 * (the longest socket path, with its NUL), and HOST_PRINTF_FORMAT (the
 * format archetype of the C library's printf, for the log calls' checks).
 * Callers use these types only through the calls below. */
#include "host_impl.h"

/* ---- the bus directory and its lock ----------------------------------- */

/* Creates the bus directory `dir` (mode 0700, or 0755 for the system bus,
 * whatever the umask), or checks an existing one: a real directory, not a
 * link, owned by this process's user and writable by nobody else (whoever
 * could write it could replace the daemon's socket). Returns 0, or a
 * negative code with a sentence in `err` (-ENOTDIR, -EPERM for the owner
 * or mode, another -errno). */
int host_dir_prepare(const char *dir, bool system, char *err, size_t errlen);

/* Takes the exclusive lock on the file `path` (created mode 0600, or 0644
 * for the system bus), which makes the daemon unique per bus directory.
 * The lock is held until host_lock_release or the process exits (so it
 * survives host_daemonize, whose surviving process keeps it). Returns 0,
 * -EBUSY when another process holds it, or another -errno. */
int host_lock_take(const char *path, bool system, struct host_lock *lock);

/* A lock that is not held (what host_lock_take leaves on failure). */
void host_lock_none(struct host_lock *lock);

/* Writes this process's id into the lock file, for operators. */
int host_lock_write_pid(struct host_lock *lock);

/* Releases the lock (the file stays; it is harmless). Safe on a lock that
 * was never taken. */
void host_lock_release(struct host_lock *lock);

/* ---- the configuration file ------------------------------------------- */

/* Opens the configuration file `path` for reading, not inherited by
 * programs the daemon starts. NULL with errno set on failure. */
FILE *host_config_open(const char *path);

/* Reads one line of `f` into *line (grown with realloc as needed, *cap its
 * size; the caller frees it), its newline included, NUL-terminated, as
 * POSIX getline. Returns its length, or -1 at the end of the file or on an
 * error (errno says which: 0 at the end). */
long host_getline(char **line, size_t *cap, FILE *f);

/* ---- the listening socket and connections ----------------------------- */

/* Listens on `path` for the control protocol's connections (a local
 * SOCK_SEQPACKET socket on Linux), non-blocking. A stale socket file there
 * (the caller holds the lock, so it is a dead daemon's) is replaced; any
 * other kind of file is not (-EEXIST). The file gets mode 0600, or 0666
 * for the system bus, from the start. Returns 0 with *sock, or a negative
 * code with a sentence in `err`. *replaced tells whether a stale socket
 * was removed. */
int host_listen(const char *path, bool system, host_sock_t *sock, bool *replaced, char *err,
                size_t errlen);

/* Removes the socket file at `path` so that no new client finds it.
 * Returns 0 (also when nothing was there) or -errno. */
int host_unlisten(const char *path);

/* Accepts one connection, non-blocking and close-on-exec (a connection
 * that went away before it was taken is skipped). Returns 0 with *conn;
 * -EAGAIN when none is waiting; -EMFILE or -ENFILE when the process or the
 * system is out of descriptors; another -errno. */
int host_accept(host_sock_t listener, host_sock_t *conn);

/* Closes a socket handle; HOST_SOCK_INVALID is ignored. */
void host_sock_close(host_sock_t sock);

/* Asks for a send buffer of `bytes` on a connection (best effort: the
 * system may cap it). */
void host_sock_set_sndbuf(host_sock_t sock, int bytes);

/* The pending error of a connection as a positive errno (0: none), read
 * and cleared. */
int host_sock_error(host_sock_t sock);

/* Whether everything the daemon sent on `sock` has been received by the
 * peer (nothing of ours waits in the socket). Returns 1, 0, or -errno
 * (then the caller assumes data is still queued). */
int host_sock_drained(host_sock_t sock);

/* Whether the event `fd` (an eventfd a participant passed) is in
 * non-blocking mode, so that writing it can never block the daemon. An
 * invalid descriptor is not. */
bool host_fd_nonblocking(host_event_t fd);

/* The identity of the process at the other end of a connection, as the
 * kernel saw it when it connected (never what the peer claims). It may
 * own memory (Windows: the token's groups): whoever holds it calls
 * host_peer_release once, on one copy. */
int host_peer_get(host_sock_t conn, struct host_peer *peer);

/* This process's own identity, as host_peer_get would report it (for
 * `shmbus config check`). Release it with host_peer_release. */
int host_peer_self(struct host_peer *peer);

/* Frees what a peer identity owns; safe on one zeroed by memset. */
void host_peer_release(struct host_peer *peer);

/* A handle of the peer's process that the daemon watches for its end
 * (src/platform/loop.h, SHMBUS__WATCH_PROCESS), so that a participant is
 * judged dead when its process ends, even while a copy of its connection
 * in another process (inherited by a child, passed with SCM_RIGHTS or
 * DuplicateHandle) keeps the connection open. On Linux a pidfd (from
 * SO_PEERPIDFD, else pidfd_open on its pid), on Windows the process
 * handle host_peer_get holds (SYNCHRONIZE). The peer owns it: it stays
 * valid until host_peer_release, which the caller may call only once it
 * no longer watches it. HOST_SOCK_INVALID when there is none (Linux
 * before 5.3, a peer in an invisible pid namespace, no descriptor to
 * spare; on Windows a process the daemon may not open): then the
 * connection's end alone tells the participant's death. */
host_sock_t host_peer_process(const struct host_peer *peer);

/* Accessors the rules and the log use. On Linux the user and group ids
 * are the peer's uid and gid. A system that names users otherwise (SIDs)
 * gives each distinct user a number of its own, the same one for the same
 * user and never one for two (Windows: the SID's entry in a table of the
 * host layer, never its relative id alone, which accounts of two domains
 * share; see host_principal_number): every comparison of users the daemon
 * makes by `uid` (the bus owner, a topic's creator, the per-user limits,
 * the member files) then means "the same user". host_uid_text names the
 * user for the log and the replies. The config's rules compare principals
 * (below). `gid` is 0 where groups have no number (Windows). */
uint32_t host_peer_uid(const struct host_peer *peer);
uint32_t host_peer_gid(const struct host_peer *peer);
int32_t host_peer_pid(const struct host_peer *peer);

/* ---- users and groups ------------------------------------------------- */

/* The groups user `uid` belongs to (its primary `gid` included), in a
 * new array the caller frees. Returns 0 with *groups and *ngroups, -ENOENT
 * when the user is unknown, -ENOMEM, or another -errno. */
int host_user_groups(uint32_t uid, uint32_t gid, uint32_t **groups, size_t *ngroups);

/* Look up a user or group by name. Return 0 with the id (a user's as
 * host_peer_uid gives it: on Windows its number, host_principal_number;
 * a group's: its gid, on Windows its SID's relative id, which nothing
 * compares), -ENOENT when unknown, another -errno when the lookup failed
 * (on Windows also host_principal_number's). */
int host_user_id(const char *name, uint32_t *uid);
int host_group_id(const char *name, uint32_t *gid);

/* ---- principals: users and groups as the config's rules name them ------ */

/* A struct host_principal (host_impl.h) is one user or one group as a
 * rule names it: a uid or gid on Linux, a SID on Windows (where a relative
 * id alone would confuse accounts of two domains). It is plain data: it
 * may be copied, and needs no release. */

/* Resolves `user:NAME` and `group:NAME`: on Linux a name of the passwd or
 * group database; on Windows an account name (`name`, `DOMAIN\name`, a
 * well-known name such as `Everyone`) or a SID string (`S-1-5-...`).
 * Return 0 with *p, -ENOENT when unknown, -EINVAL when the name is of the
 * wrong kind (a group named as a user, or the reverse) or not a valid SID
 * string, another -errno when the lookup failed. */
int host_principal_user(const char *name, struct host_principal *p);
int host_principal_group(const char *name, struct host_principal *p);

/* The number the daemon knows user `u` by, as host_peer_uid gives it for
 * a peer of that user: its uid on Linux. On Windows: for this process's
 * own user SID its relative id (host_self_uid), for LocalSystem
 * (S-1-5-18) 18, for any other SID 0x80000000 | a 31-bit hash of it (the
 * same in every life of the daemon, which the member files in shared
 * memory need across a restart), with a table that keeps two SIDs from
 * ever sharing one for the process's life. Returns 0 with *uid; on
 * Windows -EINVAL for a principal that holds no SID, -EEXIST when the
 * SID's number is another SID's already (a hash collision: that user is
 * refused), -ENOSPC when 65536 users are known, -ENOMEM. */
int host_principal_number(const struct host_principal *u, uint32_t *uid);

/* Writes how the log and the replies name user `uid` (a number as
 * host_peer_uid gives it) into `buf`: "uid N" on Linux; on Windows "user
 * S-1-5-..." (the SID string) for a number of a user this process has
 * met, else "uid N". Always NUL-terminated when cap > 0. */
void host_uid_text(uint32_t uid, char *buf, size_t cap);

/* The size of a buffer host_uid_text never truncates: "user " and the
 * longest SID string (15 sub-authorities), or "uid " and 10 digits. */
#define HOST_UID_TEXT_MAX 192

/* Resolves `uid:N` and `gid:N`. Returns 0 with *p, or -ENOTSUP on a system
 * that does not name users and groups by number (Windows). */
int host_principal_uid(uint32_t uid, struct host_principal *p);
int host_principal_gid(uint32_t gid, struct host_principal *p);

/* Whether the requester is user `u`, or belongs to group `g`. The
 * requester is given twice: as numbers (`uid`, primary `gid` and the
 * supplementary `groups` host_user_groups returned), which Linux compares,
 * and as the connection's identity `peer` (or host_peer_self's; NULL
 * when there is none: then no user or group matches there), whose user
 * SID and token groups Windows compares (only the groups that are enabled and not deny-only count).
 */
bool host_principal_is_user(const struct host_principal *u, uint32_t uid,
                            const struct host_peer *peer);
bool host_principal_has_member(const struct host_principal *g, uint32_t gid, const uint32_t *groups,
                               size_t ngroups, const struct host_peer *peer);

/* ---- processes -------------------------------------------------------- */

/* This process's id and effective user id. */
int32_t host_self_pid(void);
uint32_t host_self_uid(void);

/* Whether `uid` is the system's superuser, who may do everything on any
 * bus (root on Linux). */
bool host_uid_is_superuser(uint32_t uid);

/* Whether `pid` (read from shared memory, so anything) names no live
 * process. An id that cannot be a process (0, out of range) is gone; a
 * process we may not signal is alive. Sends nothing. */
bool host_pid_gone(uint32_t pid);

/* Sleeps `ms` milliseconds (the test-only fault delays; the daemon itself
 * never sleeps). */
void host_sleep_ms(uint64_t ms);

/* Ends this process at once, as a crash would: no cleanup, nothing
 * flushed, its connections and records left as they are (SIGKILL on
 * Linux). For the crash tests' fault points only. */
void host_crash(void) __attribute__((noreturn));

/* Stops this process until someone continues it (SIGSTOP on Linux: the
 * test that started it sees the stop with waitpid and sends SIGCONT; on
 * Windows the thread suspends itself, for a debugger to resume). For the
 * tests' stop-before-reply fault point only. */
void host_stop(void);

/* The soft limit on open descriptors (what errors name when they run
 * out); 0 when unknown or unlimited. */
uint64_t host_nofile_limit(void);

/* Raises the soft descriptor limit to the hard one: each topic costs the
 * daemon descriptors and each participant one. Returns 0 or -errno. */
int host_nofile_raise(void);

/* Opens a spare handle (on Linux /dev/null) that host_spare_release gives
 * back when descriptors run out, so a connection can still be taken and
 * refused cleanly. Returns the handle or HOST_SOCK_INVALID. */
host_sock_t host_spare_take(void);
void host_spare_release(host_sock_t spare);

/* ---- starting: signals, detaching, telling the starter ---------------- */

/* Ignores the signals that would kill the daemon for an error it handles
 * itself (a broken pipe; a memory file beyond the file-size limit, which
 * fails that one topic) and holds the stop and reload signals until
 * host_signals_release, so that one arriving during start-up stops the
 * daemon cleanly once its loop handles them. */
void host_signals_hold(void);
void host_signals_release(void);

/* The ready channel named on the command line (`--ready-fd N`: the
 * library's autostart passes a pipe as descriptor 3). `arg` is the
 * option's text. Returns 0, or -EINVAL (with a sentence in `err`) when it
 * names no usable channel. The channel is close-on-exec from then on. */
int host_ready_from_arg(const char *arg, struct host_ready *ready, char *err, size_t errlen);

/* A ready channel that says nothing (no --ready-fd). */
void host_ready_none(struct host_ready *ready);

/* Tells the channel's reader that the daemon is ready (one byte) and
 * closes it. Closing without that (host_ready_close, or the process
 * exiting) tells it that start-up failed. Safe on an empty channel. */
void host_ready_signal(struct host_ready *ready);
void host_ready_close(struct host_ready *ready);

/* Detaches from the terminal and the session that started the daemon.
 * On Linux: fork, setsid, fork again (so it can never reacquire a
 * terminal), chdir /, stdin/stdout/stderr on /dev/null. The process that
 * called it waits until the detached one signals `ready` (then exits 0)
 * or closes it (then exits `fail_status`): whoever started the daemon
 * learns whether it worked. Returns 0 in the detached process, which keeps
 * every descriptor and lock, with *ready to signal; -errno when detaching
 * failed before any fork (nothing changed). */
int host_daemonize(int fail_status, struct host_ready *ready);

/* Sends `msg` to the service manager (systemd's $NOTIFY_SOCKET, a path or
 * an @abstract name), if there is one: READY=1, STOPPING=1. A tiny
 * sd_notify(3), so the daemon needs no libsystemd. Returns 0 (also when
 * there is no manager) or a negative code with a sentence in `err`; the
 * daemon works without a supervisor, so callers only log it. */
int host_notify_manager(const char *msg, char *err, size_t errlen);

/* ---- stop requests that are not signals ------------------------------- */

/* Where the system has no SIGTERM and SIGINT for the loop (Windows), the
 * daemon is asked to stop through a handle the loop watches (level:
 * ready until the daemon exits). host_stop_open makes it for the bus whose
 * endpoint is `path`: on Windows a manual-reset event with a name derived
 * from the endpoint (`Local\shmbus-stop-...`, `Global\` for the system
 * bus) that only the daemon's user may set, also set by a console's
 * Ctrl+C, Ctrl+Break, closing, logoff or shutdown. On Linux there is none:
 * *stop is HOST_SOCK_INVALID and the signals do the job. Returns 0, or a
 * negative code with a sentence in `err` (-EEXIST: the name exists, someone
 * else's: the daemon does not start). */
int host_stop_open(const char *path, bool system, host_sock_t *stop, char *err, size_t errlen);

/* Runs the daemon, `run(arg)`, and returns its exit status. With
 * `service` the system's service manager started the process and must be
 * told how the service fares: on Windows (`--service`) the service
 * control manager's dispatcher takes this thread and runs `run` on a
 * thread of its own; the service reports start pending, running once the
 * daemon sends READY=1 (host_notify_manager), stop pending on STOPPING=1
 * or when the manager asks it to stop or the system shuts down (which set
 * the stop request, as the stop event does), and stopped with the
 * daemon's status. Returns 1 with a sentence on stderr when the process
 * was not started as a service. On Linux systemd needs none of this
 * (Type=notify): `service` is refused there with a sentence (status 2). */
int host_service_run(bool service, int (*run)(void *arg), void *arg);

/* What asked to stop, for the log ("the stop event", "Ctrl+C", ...). */
const char *host_stop_reason(void);

/* Closes the stop handle once the daemon has shut down (a console that
 * is closing waits for this); safe on HOST_SOCK_INVALID. */
void host_stop_close(host_sock_t stop);

/* Asks the daemon of the bus whose endpoint is `path` to stop through its
 * stop handle (another process; `shmbus daemon stop` asks through the
 * control protocol instead). Returns 0, -ENOENT when no daemon made one,
 * -EACCES when it is not ours to set, -ENOTSUP where stops are signals. */
int host_stop_request(const char *path, bool system);

/* ---- the system log ---------------------------------------------------- */

/* Levels, the same numbers as syslog's. */
enum host_log_level {
  HOST_LOG_ERR = 3,
  HOST_LOG_WARNING = 4,
  HOST_LOG_NOTICE = 5,
  HOST_LOG_INFO = 6,
  HOST_LOG_DEBUG = 7
};

/* Opens the system log (ident "shmbusd", with the pid, facility daemon),
 * writes one line to it, closes it. */
void host_syslog_open(void);
void host_syslog_write(enum host_log_level level, const char *line);
void host_syslog_close(void);

/* The local time now as "YYYY-mm-dd HH:MM:SS.mmm", for stderr lines. */
void host_log_time(char *buf, size_t cap);

#endif /* SHMBUSD_HOST_H */
