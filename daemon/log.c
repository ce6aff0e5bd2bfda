/* log: stderr with timestamps in the foreground, syslog once daemonized.
 * See log.h. */
#define _GNU_SOURCE
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static enum log_sink log_sink_now = LOG_SINK_STDERR;
static bool log_verbose = false;
static bool log_syslog_open = false;

static const char *log_level_name(enum host_log_level level) {
  switch (level) {
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
    host_syslog_open();
    log_syslog_open = true;
  }
  log_sink_now = sink;
}

void log_close(void) {
  if (log_syslog_open) {
    host_syslog_close();
    log_syslog_open = false;
  }
  log_sink_now = LOG_SINK_STDERR;
}

void log_printf(enum host_log_level level, const char *fmt, ...) {
  char line[1024];
  va_list ap;

  if (level >= LOG_DEBUG && !log_verbose)
    return;
  va_start(ap, fmt);
  (void)vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  if (log_sink_now == LOG_SINK_SYSLOG) {
    host_syslog_write(level, line);
  } else {
    char when[40];

    host_log_time(when, sizeof(when));
    /* One fprintf per line: stderr is unbuffered, so lines from the daemon
     * are never interleaved with each other. */
    fprintf(stderr, "%s shmbusd[%s] %s\n", when, log_level_name(level), line);
  }
}
