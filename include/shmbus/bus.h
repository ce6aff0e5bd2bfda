/* shmbus: topics by name. A process opens a bus connection, then
 * publishers and subscribers on named topics. The daemon (shmbusd) sets the
 * topics up and passes their shared memory; messages then go through shared
 * memory only.
 *
 * Conventions (all calls):
 * - Return 0 or a non-negative count on success, a negative code on
 *   failure (include/shmbus/error.h); shmbus_strerror() explains it.
 * - Thread-safety: a shmbus_bus and every publisher and subscriber opened
 *   from it form one unit that one thread uses at a time (like a libuv
 *   loop). Use one bus per thread, or serialise calls yourself. Different
 *   buses are independent, in one process or many.
 * - Across fork(): a child must not use its parent's bus or handles (they
 *   share the daemon connection and ring records); it opens its own bus.
 * - A call that takes a callback and fails never calls that callback.
 * - Handles are allocated by the library: *_open gives them to the caller,
 *   *_close frees them. Closing the bus closes every handle still open on
 *   it; their pointers are invalid afterwards.
 *
 * Example, a publisher:
 *
 *     shmbus_bus *bus;
 *     shmbus_pub *pub;
 *     if ((rv = shmbus_bus_open(&bus, NULL)) < 0) ...
 *     if ((rv = shmbus_pub_open(bus, "sensors/imu/0", NULL, &pub)) < 0) ...
 *     rv = shmbus_pub_publish(pub, &sample, sizeof(sample));
 *     shmbus_bus_close(bus);
 */
#ifndef SHMBUS_BUS_H
#define SHMBUS_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shmbus/version.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct shmbus_bus shmbus_bus;
typedef struct shmbus_pub shmbus_pub;
typedef struct shmbus_sub shmbus_sub;

/* An OS handle the caller may watch in its own event loop (shmbus_bus_fd,
 * shmbus_sub_fd), like libuv's uv_os_fd_t: a file descriptor on POSIX
 * systems, a HANDLE on Windows. It stays the library's: never close it. */
#if defined(_WIN32)
typedef void *shmbus_os_fd_t;
#define SHMBUS_OS_FD_INVALID ((shmbus_os_fd_t)(intptr_t)-1)
#else
typedef int shmbus_os_fd_t;
#define SHMBUS_OS_FD_INVALID (-1)
#endif

/* ---- the bus connection ------------------------------------------------ */

#define SHMBUS_AUTOSTART_DEFAULT (-1)

/* Options for shmbus_bus_open. Initialise with shmbus_bus_opts_init, then
 * set what you need. Strings are copied; the caller keeps ownership. */
struct shmbus_bus_opts {
  /* Bus directory. NULL: $SHMBUS_DIR, else $XDG_RUNTIME_DIR/shmbus, else
   * /tmp/shmbus-<uid>. Use "/run/shmbus" for the system bus. */
  const char *dir;
  /* This participant's name, shown by `shmbus stat`. NULL: the program's
   * name. At most 63 bytes are kept. */
  const char *name;
  /* Start shmbusd when none answers: 1 yes, 0 no, SHMBUS_AUTOSTART_DEFAULT
   * yes unless the environment sets SHMBUS_NO_AUTOSTART=1. */
  int autostart;
  /* The daemon to start. NULL: $SHMBUS_DAEMON, else the first shmbusd
   * found beside the library (its directory, ../bin, ../sbin, ../../bin,
   * daemon/), beside the program (its directory, ../bin, ../daemon), at the path
   * the build installs it to, then in $PATH. A name without a '/' is
   * looked up in $PATH. Autostart creates only the default per-user bus
   * directory: any other `dir` must exist. An autostarted daemon exits
   * after $SHMBUS_IDLE_EXIT seconds (default 60; 0: never) without
   * clients and retained topics. */
  const char *daemon_path;
  /* How long a control request (open, close) may wait for the daemon, and
   * how long to wait for an autostarted daemon. 0: 5000 ms. */
  int timeout_ms;
};

/* Fills `opts` with the defaults described above. */
SHMBUS_API void shmbus_bus_opts_init(struct shmbus_bus_opts *opts);

/* Connects to the bus daemon (starting it if allowed and needed) and says
 * hello. On success *bus is a new connection the caller closes with
 * shmbus_bus_close. `opts` may be NULL for the defaults.
 * Errors: SHMBUS_ENODAEMON (no daemon, autostart off), SHMBUS_EDENIED (the
 * socket belongs to another user's daemon, or the daemon refused us),
 * SHMBUS_EPROTOVER, -ETIMEDOUT, -ENOMEM, -ENAMETOOLONG (bus dir). */
SHMBUS_API int shmbus_bus_open(shmbus_bus **bus, const struct shmbus_bus_opts *opts);

/* Closes every publisher and subscriber still open on the bus, the
 * connection, and frees the bus. NULL is a no-op. If libuv handles were
 * started on it, run the loop once more afterwards so libuv can finish
 * closing them. */
SHMBUS_API void shmbus_bus_close(shmbus_bus *bus);

/* Handles whatever the daemon sent (peers joining or leaving) and, when the
 * daemon went away, tries to reconnect and re-register. Never blocks.
 * Returns 0, or SHMBUS_EDISCONNECTED while no daemon can be reached (the
 * data path keeps working meanwhile; call again later). Publishing, a
 * blocking receive and the libuv integration call this for you. */
SHMBUS_API int shmbus_bus_process(shmbus_bus *bus);

/* The connection to the daemon, to watch for readability in your own event
 * loop (then call shmbus_bus_process), or SHMBUS_OS_FD_INVALID while
 * disconnected. On Linux a unix socket. */
SHMBUS_API shmbus_os_fd_t shmbus_bus_fd(const shmbus_bus *bus);

/* True while connected to a daemon. */
SHMBUS_API bool shmbus_bus_connected(const shmbus_bus *bus);

/* The daemon's explanation of the last request it refused on this bus,
 * e.g. "pub on \"a/b\" denied by /etc/shmbus.conf:3" after SHMBUS_EDENIED,
 * or "" when the last failure was not the daemon's answer. A call that
 * fails with a daemon error sets it; the next request clears it. The
 * string belongs to the bus and stays valid until the next call on it.
 * With bus NULL: why the calling thread's last shmbus_bus_open failed,
 * when there is more to say than its code (every place autostart looked
 * for shmbusd, a bus directory that does not exist, the daemon's reason
 * for refusing the connection), else ""; valid until
 * the thread's next shmbus_bus_open. */
SHMBUS_API const char *shmbus_bus_last_error(const shmbus_bus *bus);

/* ---- the daemon ---------------------------------------------------------- */

/* What shmbus_bus_daemon_status reports. */
struct shmbus_daemon_status {
  uint32_t pid;       /* the daemon's process id */
  uint32_t topics;    /* topics it holds, $sys/stats included */
  uint32_t clients;   /* connections, this one included */
  uint64_t uptime_ms; /* since it started */
};

/* Asks the daemon how it is. Returns 0 and fills *st, or a negative code
 * (SHMBUS_EDISCONNECTED, -ETIMEDOUT). */
SHMBUS_API int shmbus_bus_daemon_status(shmbus_bus *bus, struct shmbus_daemon_status *st);

/* Asks the daemon to stop. It answers first, then shuts down; participants
 * keep their topics (the next daemon adopts them). Only the daemon's owner
 * or root may: SHMBUS_EDENIED otherwise. Returns 0 when the daemon agreed. */
SHMBUS_API int shmbus_bus_daemon_stop(shmbus_bus *bus);

/* The most bytes a snapshot may have; a larger one is refused (-EMSGSIZE). */
#define SHMBUS_SNAPSHOT_MAX (64u << 20)

/* Takes a snapshot of the daemon's topics and participants, or of the one
 * topic `topic` (NULL: all). On success *data is a buffer of *len bytes
 * holding one msgpack map in the format of the $sys/stats topic
 * (documented in docs/api.md); the caller owns it and frees it with
 * shmbus_snapshot_free. (It is malloc'd, and programs written before
 * shmbus_snapshot_free existed free() it: that stays correct where the
 * program and the library share one C runtime, as on Linux, but not across
 * Windows DLLs.)
 * Errors: -ENOENT when `topic` is not a topic of the daemon (see
 * shmbus_bus_last_error), SHMBUS_EBADNAME, -EMSGSIZE or -EPROTO when the
 * daemon's answer is not acceptable, SHMBUS_EDISCONNECTED, -ETIMEDOUT,
 * -ENOMEM. The daemon builds it only when asked: it costs nothing at rest. */
SHMBUS_API int shmbus_bus_snapshot(shmbus_bus *bus, const char *topic, void **data, size_t *len);

/* Frees a snapshot from shmbus_bus_snapshot. NULL is fine. */
SHMBUS_API void shmbus_snapshot_free(void *data);

/* Removes topic `topic` by name (`shmbus topic rm`): it is no longer
 * retained, and the next open of the name creates a new topic with the
 * parameters that open states. Participants still attached keep their
 * records and mappings of the old topic and go on among themselves until
 * they close it; they are not told. Allowed to the uid that created the
 * topic, the daemon's owner, root, and whoever a `remove` rule of the
 * daemon's config allows. Returns 0, or SHMBUS_EDENIED, -ENOENT (no such
 * topic that this uid may see), SHMBUS_EBADNAME, SHMBUS_EDISCONNECTED,
 * -ETIMEDOUT; shmbus_bus_last_error has the daemon's sentence. */
SHMBUS_API int shmbus_bus_topic_remove(shmbus_bus *bus, const char *topic);

/* ---- topics ------------------------------------------------------------ */

/* Topic parameters, fixed when the topic is first created. Zero fields
 * mean "the topic's existing value, or the daemon's default when it is
 * created" (256 slots, 1024 bytes, 64 subscribers, 16 publishers). Stating
 * all four makes a later open check them (SHMBUS_EMISMATCH if they differ);
 * state all four or none. */
struct shmbus_topic_opts {
  uint32_t slots;     /* ring slots, a power of two in [2, 2^24] */
  uint32_t slot_size; /* largest message, in bytes, [1, 64 MiB] */
  uint32_t max_subs;  /* [1, 4096] */
  uint32_t max_pubs;  /* [1, 1024] */
  bool retain;        /* keep the topic while nobody uses it */
};

/* Topic names: segments of [A-Za-z0-9_.-] separated by '/', no empty
 * segment, no segment "." or "..", at most 255 bytes, e.g. "sensors/imu/0". "$sys/..." is the
 * daemon's. An invalid name gives SHMBUS_EBADNAME. */

/* What a receive reports besides the bytes. */
struct shmbus_msg_info {
  uint64_t seq;    /* position in the topic's sequence */
  uint64_t ts_ns;  /* the publisher's monotonic clock at publish, ns (CLOCK_MONOTONIC on Linux), or
                    * the moment it gave (shmbus_pub_publish_batch_at): as any publisher of
                    * the topic says, so not necessarily in order */
  uint32_t pub_id; /* which publisher (unique per daemon) */
  uint32_t len;    /* payload bytes */
};

/* ---- publishers -------------------------------------------------------- */

/* Opens a publisher on `topic` (created if new). `opts` may be NULL.
 * On success *pub is owned by the caller (shmbus_pub_close) and is valid
 * until then or until its bus is closed. */
SHMBUS_API int shmbus_pub_open(shmbus_bus *bus, const char *topic,
                               const struct shmbus_topic_opts *opts, shmbus_pub **pub);

/* Publishes a copy of `len` bytes. Returns 0; SHMBUS_EFULL when a reliable
 * subscriber has not read the slot that would be overwritten (nothing was
 * published: retry, wait with shmbus_pub_wait, or use the libuv callback);
 * SHMBUS_ETOOBIG when len exceeds the topic's slot size; SHMBUS_ESTATE while
 * a loan is open; SHMBUS_ECORRUPT when the topic's shared memory holds
 * nonsense (nothing was published). Makes no syscall unless a subscriber sleeps or a peer
 * joined or left. */
SHMBUS_API int shmbus_pub_publish(shmbus_pub *pub, const void *data, size_t len);

/* One message of a batch (shmbus_pub_publish_batch). */
struct shmbus_pub_msg {
  const void *data;
  size_t len;
};

/* Publishes msgs[0..n-1] in order, each a copy as shmbus_pub_publish makes,
 * and signals each sleeping subscriber at most once, after the last one:
 * a burst of n messages costs a sleeper one wake-up (and the publisher one
 * syscall per sleeper) instead of up to n. Each message keeps its own
 * timestamp. The first message's subscribers may hear of it only when the
 * batch is done: batch what is published together. Returns how many were
 * published: n, or fewer when one could not be (SHMBUS_EFULL: publish the
 * rest later; another error: a call that starts with that message returns
 * it); when the first already fails, its error (those of
 * shmbus_pub_publish). -EINVAL when pub is NULL, msgs is NULL with n > 0,
 * n > INT_MAX, or a message has no data but a length (nothing published). */
SHMBUS_API int shmbus_pub_publish_batch(shmbus_pub *pub, const struct shmbus_pub_msg *msgs,
                                        size_t n);

/* As shmbus_pub_publish_batch, but message i carries the stamp ts_ns[i]
 * (shmbus_msg_info.ts_ns: this host's monotonic clock, CLOCK_MONOTONIC ns
 * on Linux) instead of the clock read as it is published; a stamp of 0
 * means that clock. For messages made earlier elsewhere that keep the
 * moment they were made (a bridge's import). The stamps are taken as given:
 * subscribers should not expect them to be in order or in the past. msgs
 * and ts_ns are read only during the call. -EINVAL also when ts_ns is
 * NULL with n > 0. */
SHMBUS_API int shmbus_pub_publish_batch_at(shmbus_pub *pub, const struct shmbus_pub_msg *msgs,
                                           const uint64_t *ts_ns, size_t n);

/* Zero copy: lends the next slot. *buf points to shmbus_pub_max_size()
 * writable bytes in shared memory, valid until shmbus_pub_commit or
 * shmbus_pub_cancel, which must follow before any other publish on this
 * publisher. Same errors as shmbus_pub_publish. */
SHMBUS_API int shmbus_pub_loan(shmbus_pub *pub, size_t len, void **buf);
/* Publishes the loaned slot with `len` bytes (<= max size). */
SHMBUS_API int shmbus_pub_commit(shmbus_pub *pub, size_t len);
/* Gives the loaned slot up; subscribers count its sequence number lost. */
SHMBUS_API int shmbus_pub_cancel(shmbus_pub *pub);

/* Blocks until publishing would not get SHMBUS_EFULL, at most timeout_ms
 * (-1: forever). Returns 0 or -ETIMEDOUT. */
SHMBUS_API int shmbus_pub_wait(shmbus_pub *pub, int timeout_ms);

/* The topic's slot size: the largest message. */
SHMBUS_API size_t shmbus_pub_max_size(const shmbus_pub *pub);

/* The number of subscribers attached to the topic that this publisher
 * knows of (it learns of them from the daemon; this call reads what the
 * daemon sent without blocking). Returns the count or a negative code. */
SHMBUS_API int shmbus_pub_subscribers(shmbus_pub *pub);

/* Waits until at least `n` subscribers are attached to the topic, at most
 * timeout_ms (-1: forever), so a publisher can hold its first message until
 * its readers are there. Returns the number attached (>= n) or -ETIMEDOUT. */
SHMBUS_API int shmbus_pub_wait_subs(shmbus_pub *pub, uint32_t n, int timeout_ms);

/* Messages this publisher published. */
SHMBUS_API uint64_t shmbus_pub_published(const shmbus_pub *pub);

/* The publisher id this publisher stamps into its messages (what a
 * subscriber reads in shmbus_msg_info.pub_id), so a program that both
 * publishes and subscribes on a topic can recognise its own messages (a
 * bridge does not send back what it brought in). The daemon assigns it
 * when the publisher opens, and anew after a daemon restart: ask again
 * rather than keep it. 0 for NULL. Added after 0.1. */
SHMBUS_API uint32_t shmbus_pub_id(const shmbus_pub *pub);

struct shmbus_pub_stats {
  uint64_t published;           /* as shmbus_pub_published */
  uint64_t deadline_overwrites; /* as shmbus_pub_deadline_overwrites */
  uint64_t wakeups_sent;        /* signals it sent to wake sleeping subscribers: each is one syscall
                                   (an eventfd write) and one wake-up; 0 while every subscriber is awake */
  uint64_t wakeups; /* times shmbus_pub_wait or the libuv writable callback was woken by a
                       reliable subscriber's signal */
};

/* Fills `stats` (zeros for a NULL pub). */
SHMBUS_API void shmbus_pub_stats(const shmbus_pub *pub, struct shmbus_pub_stats *stats);

/* Bounds how long, in ms, this publisher lets one reliable subscriber hold
 * it back (0: no bound of its own; the default). The subscriber's and the
 * bus's bounds apply too; the smallest wins. Once a subscriber has held
 * the publisher back (SHMBUS_EFULL, without reading) for that long, the
 * publisher stops waiting for it and overwrites what it has not read
 * until it reads again. The clock is read only while SHMBUS_EFULL is the
 * answer. Returns 0 or -EINVAL. Not thread-safe with other calls on pub. */
SHMBUS_API int shmbus_pub_set_deadline(shmbus_pub *pub, uint32_t ms);

/* Messages this publisher wrote over a slot a demoted reliable subscriber
 * (see shmbus_pub_set_deadline) had not read. */
SHMBUS_API uint64_t shmbus_pub_deadline_overwrites(const shmbus_pub *pub);

/* Closes the publisher (an open loan is cancelled) and frees it. NULL is a
 * no-op. */
SHMBUS_API void shmbus_pub_close(shmbus_pub *pub);

/* ---- subscribers ------------------------------------------------------- */

struct shmbus_sub_opts {
  /* Reliable: publishers never overwrite what this subscriber has not read
   * (they get SHMBUS_EFULL instead). Lossy (default): it never holds them
   * back, and counts exactly what it missed. */
  bool reliable;
  /* Start this many messages back (clamped to the ring and to what was
   * published), so a late joiner gets what was recently published. */
  uint32_t history;
  /* Topic parameters to check or create with (see struct
   * shmbus_topic_opts); all zero to accept the topic as it is. */
  struct shmbus_topic_opts topic;
  /* Reliable only: the longest, in ms, a publisher waits for this
   * subscriber to make room; 0 takes the bus default (none on a per-user
   * bus; the system bus's `limit deadline=MS`, 10000 unless configured).
   * A publisher applies the smallest of this, its own bound
   * (shmbus_pub_set_deadline) and the bus's; after that it overwrites what
   * this subscriber has not read, which the subscriber counts as lost (and
   * as `demoted` in its stats). */
  uint32_t deadline_ms;
  /* Added after 0.1 (at the end: a minor version changes the soname).
   * How long, at most, in µs, shmbus_sub_recv and the libuv callback stay
   * awake polling after they found nothing, before they sleep. They do so
   * only while messages have lately come sooner than that after "nothing"
   * (an estimate from the messages' stamps), and then for about twice that
   * time: a subscriber that keeps up with a fast publisher is not put to
   * sleep (and the publisher makes no syscall) between every two messages,
   * and an idle one sleeps at once. 0: the default, SHMBUS_SPIN_DEFAULT_US;
   * SHMBUS_SPIN_NEVER: never stay awake; at most SHMBUS_SPIN_MAX_US
   * (-EINVAL beyond). A wait of your own (shmbus_sub_arm) is not affected. */
  uint32_t spin_us;
  /* Added after 0.1 (at the end). Wake thresholds: while messages flow,
   * shmbus_sub_recv and the libuv callback ask publishers to wake this
   * subscriber only once `wake_after` messages wait for it, and wake
   * themselves with a timer after `wake_within_us` µs when fewer came, so
   * a subscriber that needs no message at once (a display, a log, a pipe)
   * costs publishers one signal per wake_after messages instead of one per
   * message. A sleep that follows a timer period in which nothing came
   * asks for a signal at the next message again, without a timer: an idle
   * subscriber sleeps without timers and its next message wakes it at
   * once (its following ones may wait up to wake_within_us). 0 or 1:
   * thresholds off (every message wakes it; the default). Clamped to a
   * quarter of the topic's slot count (a lossy subscriber is woken well
   * before it could be lapped). wake_within_us must be 1..SHMBUS_WAKE_WITHIN_MAX_US when
   * wake_after > 1 (-EINVAL otherwise); shmbus_sub_recv's and libuv's
   * timers have a resolution of 1 ms (shorter periods wait 1 ms). A wait
   * of your own (shmbus_sub_arm) asks for a signal at the next message. */
  uint32_t wake_after;
  uint32_t wake_within_us;
};

#define SHMBUS_SPIN_DEFAULT_US 10u
#define SHMBUS_SPIN_MAX_US 10000u
#define SHMBUS_SPIN_NEVER UINT32_MAX
#define SHMBUS_WAKE_WITHIN_MAX_US 60000000u

/* Opens a subscriber on `topic` (created if new). `opts` may be NULL
 * (lossy, no history). On success *sub is owned by the caller. */
SHMBUS_API int shmbus_sub_open(shmbus_bus *bus, const char *topic,
                               const struct shmbus_sub_opts *opts, shmbus_sub **sub);

/* Copies the next message into buf. Returns its length, -EAGAIN when none
 * is waiting, -EMSGSIZE when `cap` is too small (info->len says how much is
 * needed; the message stays), SHMBUS_ECORRUPT when shared memory holds
 * nonsense. Never blocks, no syscall. `info` may be NULL. */
SHMBUS_API int shmbus_sub_try_recv(shmbus_sub *sub, void *buf, size_t cap,
                                   struct shmbus_msg_info *info);

/* As shmbus_sub_try_recv, but sleeps (on the subscriber's wake-up event) until a
 * message arrives, at most timeout_ms (-1: forever). -ETIMEDOUT when none
 * came. */
SHMBUS_API int shmbus_sub_recv(shmbus_sub *sub, void *buf, size_t cap, struct shmbus_msg_info *info,
                               int timeout_ms);

/* An in-place read: data points into the read-only shared slot. */
struct shmbus_view {
  const void *data;
  struct shmbus_msg_info info;
};

/* Starts an in-place read of the next message (-EAGAIN when none). The
 * bytes in view->data may be overwritten by a publisher while you read
 * them (lossy subscribers): trust what you read only if shmbus_sub_view_end
 * returns 0. Until then no other receive is allowed on this subscriber. */
SHMBUS_API int shmbus_sub_view(shmbus_sub *sub, struct shmbus_view *view);
/* Ends an in-place read. 0: the message was intact the whole time.
 * SHMBUS_EOVERRUN: it was overwritten meanwhile; discard what you read (it
 * counts as lost). */
SHMBUS_API SHMBUS_MUST_CHECK int shmbus_sub_view_end(shmbus_sub *sub,
                                                     const struct shmbus_view *view);

struct shmbus_sub_stats {
  uint64_t received; /* messages delivered since the subscriber opened */
  uint64_t lost;     /* messages it missed: received + lost == published since */
  uint64_t demoted;  /* reliable: times a publisher's deadline ran out and it was lapped */
  /* Added after 0.1 (at the end: a minor version changes the soname). */
  uint64_t wakeups; /* times shmbus_sub_recv or the libuv callback was woken by a publisher's
                       signal (its eventfd); a wait of your own on shmbus_sub_fd counts none */
  uint64_t signals; /* reliable: signals it sent to wake publishers waiting for room */
  /* Added after 0.1 (at the end). */
  uint64_t timer_wakeups; /* times a wait with a wake threshold (wake_after) was ended by its
                             wake_within_us timer rather than a publisher's signal */
};

/* Fills `stats`. */
SHMBUS_API void shmbus_sub_stats(const shmbus_sub *sub, struct shmbus_sub_stats *stats);

/* The subscriber's wake-up event: readable (signalled) after a publisher
 * woke it; SHMBUS_OS_FD_INVALID for NULL. To wait in your own loop:
 * try_recv until -EAGAIN, call shmbus_sub_arm; if it returns 1, wait for
 * the event, reset it (on Linux it is a non-blocking eventfd: read() its 8
 * bytes), then try_recv again. Also watch shmbus_bus_fd() and call
 * shmbus_bus_process() when it is readable, or now and then: that is how a
 * subscriber that never blocks reconnects after a daemon restart. */
SHMBUS_API shmbus_os_fd_t shmbus_sub_fd(const shmbus_sub *sub);

/* Prepares to sleep: returns 1 if you may wait for shmbus_sub_fd (a
 * publisher will signal it), 0 if a message arrived meanwhile. */
SHMBUS_API int shmbus_sub_arm(shmbus_sub *sub);

/* The topic's slot size: the largest message. */
SHMBUS_API size_t shmbus_sub_max_size(const shmbus_sub *sub);

/* Closes the subscriber and frees it. NULL is a no-op. */
SHMBUS_API void shmbus_sub_close(shmbus_sub *sub);

#ifdef __cplusplus
}
#endif

#endif /* SHMBUS_BUS_H */
