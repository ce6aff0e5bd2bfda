/* reconnect: keeping a bus's session with the daemon alive. Processing
 * the session (shmbus_bus_process), reconnecting with backoff after the
 * daemon went away, asking a new daemon to adopt each handle's record, and
 * re-opening the handles it could not adopt (orphans) when they are not
 * busy. docs/protocol.md, "Daemon restart".
 *
 * Thread-safety and fork: the bus's. */
#ifndef SHMBUS_RECONNECT_H
#define SHMBUS_RECONNECT_H

/* Reconnect attempts back off from the first to the second, doubling. */
#define SHMBUS__RECONNECT_BACKOFF_MIN_MS 10u
#define SHMBUS__RECONNECT_BACKOFF_MAX_MS 1000u

#endif /* SHMBUS_RECONNECT_H */
