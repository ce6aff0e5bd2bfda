/* benchutil: see benchutil.h. */
#include "benchutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void bu_cpu_model(char *out, size_t cap) {
  FILE *f = fopen("/proc/cpuinfo", "r");
  char line[512];
  char model[256] = "unknown CPU";
  int family = -1, mod = -1;

  if (f != NULL) {
    while (fgets(line, sizeof(line), f) != NULL) {
      char *colon = strchr(line, ':');
      if (colon == NULL)
        continue;
      if (strncmp(line, "model name", 10) == 0 && strcmp(model, "unknown CPU") == 0) {
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
          v++;
        v[strcspn(v, "\n")] = '\0';
        snprintf(model, sizeof(model), "%s", v);
      } else if (strncmp(line, "cpu family", 10) == 0 && family < 0) {
        family = atoi(colon + 1);
      } else if (strncmp(line, "model\t", 6) == 0 && mod < 0) {
        mod = atoi(colon + 1);
      }
    }
    fclose(f);
  }
  if (family >= 0 && mod >= 0)
    snprintf(out, cap, "%s (family %d, model %d)", model, family, mod);
  else
    snprintf(out, cap, "%s", model);
}

void bu_load_average(char *out, size_t cap) {
  FILE *f = fopen("/proc/loadavg", "r");
  double a = 0, b = 0, c = 0;
  if (f != NULL && fscanf(f, "%lf %lf %lf", &a, &b, &c) == 3)
    snprintf(out, cap, "%.2f %.2f %.2f", a, b, c);
  else
    snprintf(out, cap, "unknown");
  if (f != NULL)
    fclose(f);
}

int bu_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

uint64_t bu_next_random(uint64_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

unsigned bu_parse_count(const char *prog, const char *s, const char *opt) {
  char *end;
  unsigned long v;
  errno = 0;
  v = strtoul(s != NULL ? s : "", &end, 10);
  if (s == NULL || *s == '\0' || *end != '\0' || errno != 0 || v == 0 || v > 100000) {
    fprintf(stderr, "%s: %s needs a count in 1..100000\n", prog, opt);
    exit(2);
  }
  return (unsigned)v;
}
