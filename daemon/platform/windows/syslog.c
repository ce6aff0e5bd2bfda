/* syslog: the system log on Windows (host.h): the Application event log,
 * source "shmbusd". The source has no message file registered, so the
 * Event Viewer shows each line after a note that its description is
 * missing; registering one is the installer's job (not ported). */
#include <stdio.h>
#include <string.h>

#include <windows.h>

#include "host.h"
#include "platform/windows/win.h"

static HANDLE syslog_source;

void host_syslog_open(void) {
  if (syslog_source == NULL)
    syslog_source = RegisterEventSourceW(NULL, L"shmbusd");
}

void host_syslog_write(enum host_log_level level, const char *line) {
  wchar_t w[1024];
  const wchar_t *strings[1] = {w};
  WORD type = level <= HOST_LOG_ERR       ? EVENTLOG_ERROR_TYPE
              : level == HOST_LOG_WARNING ? EVENTLOG_WARNING_TYPE
                                          : EVENTLOG_INFORMATION_TYPE;

  size_t n = strlen(line);
  int m;

  if (syslog_source == NULL)
    return;
  /* A long line is cut, at the start of a UTF-8 character. */
  if (n > 1000) {
    n = 1000;
    while (n > 0 && ((unsigned char)line[n] & 0xC0u) == 0x80u)
      n--;
  }
  m = MultiByteToWideChar(CP_UTF8, 0, line, (int)n, w, (int)(sizeof(w) / sizeof(w[0])) - 1);
  if (m <= 0)
    return;
  w[m] = L'\0';
  (void)ReportEventW(syslog_source, type, 0, 0, NULL, 1, 0, strings, NULL);
}

void host_syslog_close(void) {
  if (syslog_source != NULL)
    DeregisterEventSource(syslog_source);
  syslog_source = NULL;
}

void host_log_time(char *buf, size_t cap) {
  SYSTEMTIME t;
  GetLocalTime(&t);
  snprintf(buf, cap, "%04u-%02u-%02u %02u:%02u:%02u.%03u", t.wYear, t.wMonth, t.wDay, t.wHour,
           t.wMinute, t.wSecond, t.wMilliseconds);
}
