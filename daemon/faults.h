/* faults: test-only fault injection. The crash tests need the daemon to
 * die at precise points (half-way through creating a topic, half-way
 * through passing a topic's descriptors); nothing outside can stop it
 * there deterministically, so the daemon stops itself.
 *
 * SHMBUSD_FAULT=<point>[:<n>] in the daemon's environment makes it
 * raise(SIGKILL) the n-th time (default: the first) it reaches <point>.
 * Points:
 *   open-after-create  a client's open created the topic's region; the
 *                      topic is not registered and nothing was answered
 *   open-before-reply  the record is attached, the `opened` reply with the
 *                      region's descriptors is about to be sent
 *   open-after-reply   `opened` (with the descriptors) was sent, and the
 *                      peer_join events about the new participant; the
 *                      peer_join events to it were not
 * One point delays instead of killing (SHMBUSD_FAULT=delay_peer_join:MS):
 *   delay_peer_join    the daemon sleeps MS ms before each peer_join it
 *                      sends, so tests can run the data path while peers
 *                      are announced late (the lost wake-up of issue 11)
 * One point stops instead of killing (raise(SIGSTOP) the n-th time, once):
 *   stop-before-reply  where open-before-reply kills; the test that
 *                      started the daemon waits for the stop (waitpid,
 *                      WUNTRACED), holds the opener (SIGSTOP) and continues
 *                      the daemon, so that the opener reads its `opened`
 *                      only after later peers joined (latewake_test)
 * An unknown point makes the daemon refuse to start (exit status 2), so a
 * test with a typo fails loudly. This is for tests only: production runs
 * never set the variable, and then a fault point costs one load and a
 * predictable branch on paths that also make syscalls.
 *
 * Thread-safety: the daemon is single-threaded; faults_init runs once at
 * startup, before the loop. */
#ifndef SHMBUSD_FAULTS_H
#define SHMBUSD_FAULTS_H

enum fault_point {
  FAULT_NONE = 0,
  FAULT_OPEN_AFTER_CREATE,
  FAULT_OPEN_BEFORE_REPLY,
  FAULT_OPEN_AFTER_REPLY,
  FAULT_DELAY_PEER_JOIN,
  FAULT_STOP_BEFORE_REPLY,
  FAULT_POINT_COUNT
};

/* The armed point, FAULT_NONE when the variable is unset. */
extern enum fault_point faults_armed;

/* Reads SHMBUSD_FAULT (after log_init). Returns 0, or -EINVAL (logged)
 * when it names no known point or has a bad count. */
int faults_init(void);

/* Counts a pass through the armed point; the n-th pass kills the daemon
 * (stops it, for stop-before-reply). */
void faults_hit(enum fault_point p);

/* Sleeps the armed delay (a test hook; never armed in production). */
void faults_delay(enum fault_point p);

/* Marks a delay point in the daemon's code. */
#define FAULT_DELAY(p)                                                                             \
  do {                                                                                             \
    if (faults_armed == (p))                                                                       \
      faults_delay(p);                                                                             \
  } while (0)

/* Marks a fault point in the daemon's code. */
#define FAULT_POINT(p)                                                                             \
  do {                                                                                             \
    if (faults_armed == (p))                                                                       \
      faults_hit(p);                                                                               \
  } while (0)

#endif /* SHMBUSD_FAULTS_H */
