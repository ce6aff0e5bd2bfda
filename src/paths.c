/* paths: the bus directory. See paths.h. */
#include "paths.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Maps snprintf's result to 0 or -ENAMETOOLONG (output truncated). */
static int paths_put(size_t cap, int n) {
  return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

int shmbus__bus_dir(const char *explicit_dir, bool system, char *out, size_t cap) {
  const char *env;

  if (explicit_dir != NULL && explicit_dir[0] != '\0')
    return paths_put(cap, snprintf(out, cap, "%s", explicit_dir));
  env = getenv("SHMBUS_DIR");
  if (env != NULL && env[0] != '\0')
    return paths_put(cap, snprintf(out, cap, "%s", env));
  if (system)
    return paths_put(cap, snprintf(out, cap, "%s", SHMBUS__SYSTEM_DIR));
  env = getenv("XDG_RUNTIME_DIR");
  if (env != NULL && env[0] == '/')
    return paths_put(cap, snprintf(out, cap, "%s/shmbus", env));
  return paths_put(cap, snprintf(out, cap, "/tmp/shmbus-%u", (unsigned)getuid()));
}

int shmbus__bus_path(const char *dir, const char *name, char *out, size_t cap) {
  return paths_put(cap, snprintf(out, cap, "%s/%s", dir, name));
}
