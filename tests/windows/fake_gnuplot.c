/* fake_gnuplot: a stand-in for gnuplot.exe in bench_test's --plot test
 * (built as fake-gnuplot\gnuplot.exe beside the tests). It reads its
 * standard input to the end, as gnuplot reads a script on a pipe, and
 * writes what it read into the file the script's `set output '...'` names
 * (a quote in the name doubled, as gnuplot writes it in single quotes),
 * so that the test can see the script shmbus-bench fed it. Exit status: 0,
 * or 3 when the script names no output file, 4 when it cannot be read or
 * the file written. */
#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FG_MAX (4u << 20)

int main(void) {
  static char script[FG_MAX + 1], out[1024];
  size_t n = 0, k, o = 0;
  const char *p;
  FILE *f;

  if (_setmode(_fileno(stdin), _O_BINARY) == -1)
    return 4;
  while ((k = fread(script + n, 1, FG_MAX - n, stdin)) > 0)
    n += k;
  if (ferror(stdin) || n == FG_MAX)
    return 4;
  script[n] = '\0';
  if ((p = strstr(script, "\nset output '")) == NULL)
    return 3;
  for (p += strlen("\nset output '"); *p != '\0' && o + 1 < sizeof(out); p++) {
    if (*p == '\'' && p[1] == '\'')
      p++;
    else if (*p == '\'')
      break;
    out[o++] = *p;
  }
  if (*p != '\'')
    return 3;
  out[o] = '\0';
  if ((f = fopen(out, "wb")) == NULL)
    return 4;
  if (fwrite(script, 1, n, f) != n) {
    fclose(f);
    return 4;
  }
  return fclose(f) == 0 ? 0 : 4;
}
