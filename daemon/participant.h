/* participant: one connection to the daemon and what the daemon keeps
 * about it: who it is (its peer identity, from the platform layer, never
 * what it claims), the records it holds, its quotas, its state in the
 * protocol (hello said, dead), and the calls that send to it and
 * disconnect it.
 *
 * Liveness: a participant is dead when its connection ends or when its
 * process does, whichever comes first. Its process is watched besides
 * its socket (SHMBUS__WATCH_PROCESS on host_peer_process's handle, when
 * the platform gives one), because a copy of the connection in another
 * process (a child that inherited it, a descriptor passed with
 * SCM_RIGHTS, a handle duplicated with DuplicateHandle) keeps the socket
 * open after its owner's death: its publisher records would stay
 * unrepaired and its reliable subscriptions would hold publishers back for
 * ever. Whichever end comes first kills it (participant_kill); the other
 * finds it dead and does nothing.
 *
 * Teardown order: participant_close closes both watches (on Windows each
 * close unregisters its wait, waiting for a callback that runs, before it
 * returns), and only the last of their close callbacks closes the socket
 * and releases the peer identity (which closes the process handle or
 * pidfd) and frees the memory: no wait ever refers to a closed handle or
 * freed memory.
 *
 * A participant is never freed under an iteration: participant_kill only
 * marks it dead (nothing more is read from or sent to it) and puts it on
 * the server's kill list; its records are released at the end of the
 * current event (membership_reap), and participant_close frees it through
 * libuv's close callback.
 *
 * Thread-safety: single-threaded, on the daemon's loop. */
#ifndef SHMBUSD_PARTICIPANT_H
#define SHMBUSD_PARTICIPANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "host.h"
#include "log.h"
#include "platform/loop.h"
#include "proto.h"
#include "quota.h"
#include "registry.h"

struct server;

struct participant {
  shmbus__watch poll; /* first: the watch's data is the participant */
  shmbus__watch proc; /* its process's end, when proc_init */
  struct server *srv;
  struct participant *prev; /* srv->participants */
  struct participant *next;
  struct participant *kill_next; /* srv->kill_list, once dead */
  struct registry_part *parts;
  size_t nparts;
  uint32_t *groups; /* its user's groups, looked up on first need */
  size_t ngroups;
  host_sock_t sock;
  uint32_t id;
  struct host_peer peer; /* who it is, as the kernel saw it connect */
  uint32_t uid;          /* host_peer_uid(&peer), used everywhere: one per user (SID on Windows) */
  bool groups_known;
  bool hello;
  bool dead;
  bool writable;             /* also watched for room: peer events are owed (L2) */
  bool proc_init;            /* `proc` watches its process (host_peer_process) */
  uint8_t closing;           /* close callbacks still to come */
  shmbus__watch_cb on_event; /* what handles its socket's events */
  /* Quotas (see struct config_limits): topics it created that still
   * exist and their bytes; a token bucket of control messages. */
  struct quota_usage usage;
  struct quota_bucket bucket;
  uint64_t accepted_ns; /* for the hello timeout */
  /* Snapshot replies sent that may still sit unread in its socket (each
   * holds a memory file there): reset once its socket is empty. */
  uint32_t unread_snaps;
  uint64_t unread_bytes;
  char name[SHMBUS__NAME_MAX + 1];
};

/* Makes a participant for an accepted connection and starts watching it
 * for requests (`on_event` handles its socket's events) and, when the
 * platform gives a handle of its process, for that process's end
 * (`on_exit`; without one, or when it cannot be watched, the socket's
 * end alone tells its death, as before). Returns 0 with
 * *out linked into the server, owning `sock` and the identity `peer`
 * holds (host_peer_release; dead already if its socket could not be
 * watched: the reaper closes it); or a negative code with a sentence in
 * `text`, and `sock` and `peer` still the caller's. */
int participant_open(struct server *srv, host_sock_t sock, const struct host_peer *peer,
                     shmbus__watch_cb on_event, shmbus__watch_cb on_exit, struct participant **out,
                     char *text, size_t textlen);

/* Logs one line about `p`, prefixed with who it is: "client ID (pid PID,
 * uid UID, NAME): " (host_uid_text: on Windows "user SID" in place of
 * "uid UID"). */
void participant_log(const struct participant *p, enum host_log_level level, const char *fmt, ...)
    __attribute__((format(HOST_PRINTF_FORMAT, 3, 4)));

/* Why a participant whose process ended is disconnected (routine: its
 * connection usually ends at the same time). */
#define PARTICIPANT_EXITED "its process ended"

/* Marks `p` dead (see above); `why` goes to the log (NULL: the caller
 * logged it; "connection closed" and PARTICIPANT_EXITED are routine and
 * logged at debug). */
void participant_kill(struct participant *p, const char *why);

/* Unlinks `p` from the server and closes it; the memory goes in the close
 * callback. Its parts must have been released (or the registry must be
 * about to be freed, at shutdown). */
void participant_close(struct participant *p);

/* Sends one message. A full socket means it does not read: it is
 * disconnected (the daemon never waits for a participant and keeps no
 * queue for one). Returns 0 or a negative code (then `p` is dead). */
int participant_send(struct participant *p, const struct shmbus__msg *m);

/* Sends an `error` answering request `id`, with `code` and the text
 * formatted once. */
void participant_error(struct participant *p, uint32_t id, int code, const char *fmt, ...)
    __attribute__((format(HOST_PRINTF_FORMAT, 4, 5)));

/* Answers a malformed or out-of-order message and disconnects. */
void participant_violation(struct participant *p, uint32_t id, int code, const char *what);

/* Watches the socket for requests, and also for room when it is owed peer
 * events (`writable`). */
void participant_watch(struct participant *p, bool writable);

/* Keeps the self-chosen name for the log, with anything that is not
 * printable ASCII replaced: it must not forge log lines. */
void participant_set_name(struct participant *p, const char *name);

/* Its user's groups, looked up once. A failed lookup leaves only the
 * primary group: a group rule then does not match. */
void participant_groups(struct participant *p);

/* Forgets the snapshot replies it has read: its socket holds nothing the
 * daemon sent any more (the memory files they carry are pinned until
 * then). */
void participant_unread_refresh(struct participant *p);

/* Adds a record to its list, or takes one off. */
void participant_add_part(struct participant *p, struct registry_part *part);
void participant_remove_part(struct participant *p, struct registry_part *part);

#endif /* SHMBUSD_PARTICIPANT_H */
