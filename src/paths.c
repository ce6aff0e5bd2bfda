/* paths: the bus directory. See paths.h. */
#include "paths.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "platform/platform.h"

/* Maps snprintf's result to 0 or -ENAMETOOLONG (output truncated). */
static int paths_put(size_t cap, int n) {
  return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int shmbus__bus_dir(const char *explicit_dir, bool system, char *out, size_t cap,
                    bool *is_default) {
  const char *env;
  bool dflt = false;
  int rv;

  env = getenv("SHMBUS_DIR");
  if (explicit_dir != NULL && explicit_dir[0] != '\0') {
    rv = paths_put(cap, snprintf(out, cap, "%s", explicit_dir));
  } else if (env != NULL && env[0] != '\0') {
    rv = paths_put(cap, snprintf(out, cap, "%s", env));
  } else if (system) {
    rv = paths_put(cap, snprintf(out, cap, "%s", SHMBUS__SYSTEM_DIR));
  } else {
    dflt = true;
    rv = shmbus__default_bus_dir(out, cap);
  }
  if (is_default != NULL)
    *is_default = dflt;
  return rv;
}

int shmbus__bus_path(const char *dir, const char *name, char *out, size_t cap) {
  return paths_put(cap, snprintf(out, cap, "%s" SHMBUS__PATH_SEP_STR "%s", dir, name));
}
