/* faults: test-only fault injection; see faults.h. */
#include "faults.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "log.h"

enum fault_point faults_armed = FAULT_NONE;

/* Passes left before the armed point fires. */
static unsigned long faults_left;

static const char *const faults_names[FAULT_POINT_COUNT] = {
    [FAULT_OPEN_AFTER_CREATE] = "open-after-create",
    [FAULT_OPEN_BEFORE_REPLY] = "open-before-reply",
    [FAULT_OPEN_AFTER_REPLY] = "open-after-reply",
    [FAULT_DELAY_PEER_JOIN] = "delay_peer_join",
    [FAULT_STOP_BEFORE_REPLY] = "stop-before-reply",
};

int faults_init(void) {
  const char *v = getenv("SHMBUSD_FAULT");
  const char *colon;
  size_t len;
  int p;

  if (v == NULL || *v == '\0')
    return 0;
  colon = strchr(v, ':');
  len = colon != NULL ? (size_t)(colon - v) : strlen(v);
  faults_left = 1;
  if (colon != NULL) {
    char *end;
    errno = 0;
    faults_left = strtoul(colon + 1, &end, 10);
    if (errno != 0 || end == colon + 1 || *end != '\0' || faults_left == 0) {
      log_err("SHMBUSD_FAULT=%s: the count must be a positive number", v);
      return -EINVAL;
    }
  }
  for (p = FAULT_NONE + 1; p < FAULT_POINT_COUNT; p++)
    if (strlen(faults_names[p]) == len && strncmp(v, faults_names[p], len) == 0) {
      faults_armed = (enum fault_point)p;
      if (p == FAULT_DELAY_PEER_JOIN)
        log_warn("test fault armed: %lu ms before each peer_join", faults_left);
      else if (p == FAULT_STOP_BEFORE_REPLY)
        log_warn("test fault armed: SIGSTOP at %s (pass %lu)", faults_names[p], faults_left);
      else
        log_warn("test fault armed: SIGKILL at %s (pass %lu)", faults_names[p], faults_left);
      return 0;
    }
  log_err("SHMBUSD_FAULT=%s names no fault point", v);
  return -EINVAL;
}

void faults_delay(enum fault_point p) {
  if (p != faults_armed)
    return;
  /* For this point the number is milliseconds, not a pass count. */
  host_sleep_ms(faults_left);
}

void faults_hit(enum fault_point p) {
  if (p != faults_armed || --faults_left != 0)
    return;
  if (p == FAULT_STOP_BEFORE_REPLY) {
    log_warn("test fault: SIGSTOP at %s", faults_names[p]);
    faults_armed = FAULT_NONE; /* once */
    host_stop();
    return;
  }
  log_warn("test fault: SIGKILL at %s", faults_names[p]);
  host_crash();
}
