/* stop: stop requests that are not signals (host.h): none on Linux, where
 * SIGTERM and SIGINT stop the daemon (main.c watches them with libuv). */
#include <errno.h>
#include <stdio.h>

#include "host.h"

int host_service_run(bool service, int (*run)(void *arg), void *arg) {
  if (service) {
    fprintf(stderr, "shmbusd: --service is for Windows' service control manager; systemd "
                    "needs no flag (Type=notify, shmbusd(8))\n");
    return 2;
  }
  return run(arg);
}

int host_stop_open(const char *path, bool system, host_sock_t *stop, char *err, size_t errlen) {
  (void)path, (void)system, (void)err, (void)errlen;
  *stop = HOST_SOCK_INVALID;
  return 0;
}

const char *host_stop_reason(void) {
  return "stop request";
}

void host_stop_close(host_sock_t stop) {
  (void)stop;
}

int host_stop_request(const char *path, bool system) {
  (void)path, (void)system;
  return -ENOTSUP;
}
