/* syslog: the system log and local time stamps on Linux (host.h). */
#define _GNU_SOURCE
#include <stdio.h>
#include <syslog.h>
#include <time.h>

#include "host.h"

_Static_assert(HOST_LOG_ERR == LOG_ERR && HOST_LOG_WARNING == LOG_WARNING &&
                   HOST_LOG_NOTICE == LOG_NOTICE && HOST_LOG_INFO == LOG_INFO &&
                   HOST_LOG_DEBUG == LOG_DEBUG,
               "host log levels are syslog's");

void host_syslog_open(void) {
  openlog("shmbusd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void host_syslog_write(enum host_log_level level, const char *line) {
  syslog((int)level, "%s", line);
}

void host_syslog_close(void) {
  closelog();
}

void host_log_time(char *buf, size_t cap) {
  struct timespec ts = {0, 0};
  struct tm tm;
  char when[32] = "?";

  /* Local time with milliseconds: what an operator compares with other
   * logs on the same host. */
  if (clock_gettime(CLOCK_REALTIME, &ts) == 0 && localtime_r(&ts.tv_sec, &tm) != NULL)
    (void)strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
  snprintf(buf, cap, "%s.%03ld", when, (long)(ts.tv_nsec / 1000000));
}
