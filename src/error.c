/* error: the text and names of shmbus's error codes, generated from the
 * tables: the bus's own codes in include/shmbus/error.h (SHMBUS_ERRNO_MAP),
 * the errno values shmbus returns in src/error_table.h. */
#include <errno.h>
#include <string.h>

#include "error_table.h"
#include "shmbus/error.h"

#define SHMBUS__STR(x) #x
#define SHMBUS__XSTR(x) SHMBUS__STR(x)

const char *shmbus_version(void) {
  return SHMBUS__XSTR(SHMBUS_VERSION_MAJOR) "." SHMBUS__XSTR(SHMBUS_VERSION_MINOR) "." SHMBUS__XSTR(
      SHMBUS_VERSION_PATCH);
}

const char *shmbus_strerror(int code) {
  switch (code) {
#define SHMBUS__ERR_CASE(name, off, msg)                                                           \
  case SHMBUS_##name:                                                                              \
    return msg;
    SHMBUS_ERRNO_MAP(SHMBUS__ERR_CASE)
#undef SHMBUS__ERR_CASE
#define SHMBUS__ERRNO_CASE(name, msg)                                                              \
  case -name:                                                                                      \
    return msg;
    SHMBUS__ERRNO_TABLE(SHMBUS__ERRNO_CASE)
#undef SHMBUS__ERRNO_CASE
  case 0:
    return "success";
  default:
    return "unknown error";
  }
}

const char *shmbus_err_name(int code) {
  switch (code) {
#define SHMBUS__NAME_CASE(name, off, msg)                                                          \
  case SHMBUS_##name:                                                                              \
    return "SHMBUS_" #name;
    SHMBUS_ERRNO_MAP(SHMBUS__NAME_CASE)
#undef SHMBUS__NAME_CASE
#define SHMBUS__ERRNO_NAME(name, msg)                                                              \
  case -name:                                                                                      \
    return #name;
    SHMBUS__ERRNO_TABLE(SHMBUS__ERRNO_NAME)
#undef SHMBUS__ERRNO_NAME
  case 0:
    return "OK";
  default:
    return "UNKNOWN";
  }
}
