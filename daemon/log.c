/* log: stderr with timestamps in the foreground, syslog once daemonized.
 * See log.h. */
#define _GNU_SOURCE
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static enum log_sink log_sink_now = LOG_SINK_STDERR;
static bool log_verbose = false;
static bool log_syslog_open = false;

static const char *log_level_name(int level) {
  switch (level) {
  case LOG_EMERG:
  case LOG_ALERT:
  case LOG_CRIT:
  case LOG_ERR:
    return "error";
  case LOG_WARNING:
    return "warning";
  case LOG_NOTICE:
    return "notice";
  case LOG_INFO:
    return "info";
  default:
    return "debug";
  }
}

void log_init(enum log_sink sink, bool verbose) {
  log_verbose = verbose;
  if (sink == LOG_SINK_SYSLOG && !log_syslog_open) {
    openlog("shmbusd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
    log_syslog_open = true;
  }
  log_sink_now = sink;
}

void log_close(void) {
  if (log_syslog_open) {
    closelog();
    log_syslog_open = false;
  }
  log_sink_now = LOG_SINK_STDERR;
}

void log_printf(int level, const char *fmt, ...) {
  char line[1024];
  va_list ap;

  if (level >= LOG_DEBUG && !log_verbose)
    return;
  va_start(ap, fmt);
  (void)vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  if (log_sink_now == LOG_SINK_SYSLOG) {
    syslog(level, "%s", line);
  } else {
    struct timespec ts = {0, 0};
    struct tm tm;
    char when[32] = "?";

    /* Local time with milliseconds: what an operator compares with other
     * logs on the same host. */
    if (clock_gettime(CLOCK_REALTIME, &ts) == 0 && localtime_r(&ts.tv_sec, &tm) != NULL)
      (void)strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
    /* One fprintf per line: stderr is unbuffered, so lines from the daemon
     * are never interleaved with each other. */
    fprintf(stderr, "%s.%03ld shmbusd[%s] %s\n", when, (long)(ts.tv_nsec / 1000000),
            log_level_name(level), line);
  }
}
