/* log: the daemon's log. In the foreground it writes one line per event to
 * stderr with a timestamp and a level; once daemonized it goes to syslog
 * (facility daemon). Levels are syslog's; debug lines are kept only with
 * --verbose.
 *
 * Thread-safety: the daemon is single-threaded; so is this module. */
#ifndef SHMBUSD_LOG_H
#define SHMBUSD_LOG_H

#include <stdbool.h>

#include "host.h"

/* Where log lines go. */
enum log_sink { LOG_SINK_STDERR = 0, LOG_SINK_SYSLOG = 1 };

/* Sets the sink and whether debug lines are kept. Switching to syslog opens
 * it (ident "shmbusd", with the pid). Safe to call more than once. */
void log_init(enum log_sink sink, bool verbose);

/* Closes syslog if it was opened. */
void log_close(void);

/* The levels: syslog's, through the platform layer. */
#define LOG_ERR HOST_LOG_ERR
#define LOG_WARNING HOST_LOG_WARNING
#define LOG_NOTICE HOST_LOG_NOTICE
#define LOG_INFO HOST_LOG_INFO
#define LOG_DEBUG HOST_LOG_DEBUG

/* Logs one line at `level` (LOG_ERR .. LOG_DEBUG). A trailing newline is
 * added; the text is cut at 1 KiB. */
void log_printf(enum host_log_level level, const char *fmt, ...)
    __attribute__((format(HOST_PRINTF_FORMAT, 2, 3)));

#define log_err(...) log_printf(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_printf(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_printf(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_printf(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_printf(LOG_DEBUG, __VA_ARGS__)

#endif /* SHMBUSD_LOG_H */
