/* Runs a fuzz target over files without fuzzing: each argument is a file
 * or a directory of files, each file one input. Lets the normal build
 * (any compiler, any sanitizer) replay the committed corpus as a ctest.
 * Exit status 0 when every input passed (a failed property aborts). */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Largest input replayed: more than any target reads. */
#define REPLAY_MAX (1u << 20)

static int replay_file(const char *path, unsigned char *buf) {
  FILE *f = fopen(path, "rb");
  size_t n;

  if (f == NULL) {
    perror(path);
    return -1;
  }
  n = fread(buf, 1, REPLAY_MAX, f);
  fclose(f);
  (void)LLVMFuzzerTestOneInput(buf, n);
  return 0;
}

int main(int argc, char **argv) {
  unsigned char *buf = malloc(REPLAY_MAX);
  unsigned long count = 0;
  int failed = 0;
  int i;

  if (buf == NULL)
    return 1;
  for (i = 1; i < argc; i++) {
    struct stat st;
    DIR *dir;
    struct dirent *e;
    if (stat(argv[i], &st) != 0) {
      perror(argv[i]);
      failed = 1;
      continue;
    }
    if (!S_ISDIR(st.st_mode)) {
      failed |= replay_file(argv[i], buf) != 0;
      count++;
      continue;
    }
    if ((dir = opendir(argv[i])) == NULL) {
      perror(argv[i]);
      failed = 1;
      continue;
    }
    while ((e = readdir(dir)) != NULL) {
      char path[4096];
      if (e->d_name[0] == '.')
        continue;
      snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
      failed |= replay_file(path, buf) != 0;
      count++;
    }
    closedir(dir);
  }
  free(buf);
  printf("replayed %lu inputs\n", count);
  return failed || count == 0;
}
