/* wintest: the Windows tests' small runner (Criterion does not exist for
 * Windows). A test program lists its tests in a table and calls
 * wintest_main; each test returns WINTEST_PASS, WINTEST_FAIL or
 * WINTEST_WINE_ONLY_SKIP (a guarantee Wine does not enforce: checked on real
 * Windows, reported and not failed under Wine). The runner prints one line
 * per test and then "N passed, N failed", and exits 1 if any failed, so
 * ctest sees the result.
 *
 *   prog.exe            runs every test
 *   prog.exe NAME...    runs the named tests
 *   prog.exe --list     lists them
 *
 * A test that needs a second process starts this same program with the
 * first argument "child" (wintest_spawn); wintest_main hands such a run to
 * the program's child function instead of the tests. */
#ifndef SHMBUS_WINTEST_H
#define SHMBUS_WINTEST_H

#include <stdbool.h>
#include <stdint.h>

#include <windows.h>

enum { WINTEST_PASS = 0, WINTEST_FAIL = 1, WINTEST_WINE_ONLY_SKIP = 2 };

struct wintest {
  const char *name;
  int (*fn)(void);
};

/* Runs the tests of `tests` (n of them) as the command line asks, or, for
 * "child ARGS...", returns child(argc - 2, argv + 2); 2 when `child` is
 * NULL (a program whose tests start no second copy of it). */
int wintest_main(int argc, char **argv, const struct wintest *tests, unsigned n,
                 int (*child)(int argc, char **argv));

/* True when running under Wine (ntdll exports wine_get_version). */
bool wintest_under_wine(void);

/* Fails the current test with a message (printf format): prints it with
 * the test's name and GetLastError() where it is set, and returns
 * WINTEST_FAIL from the test function. */
#define WT_CHECK(cond, ...)                                                                        \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      wintest_fail_note(__FILE__, __LINE__, #cond, __VA_ARGS__);                                   \
      return WINTEST_FAIL;                                                                         \
    }                                                                                              \
  } while (0)
void wintest_fail_note(const char *file, int line, const char *cond, const char *fmt, ...);

/* Prints an observation that belongs in the report (what Wine did). */
void wintest_note(const char *fmt, ...);

/* Starts this program as "child ARGS..." (args joined with spaces: no
 * spaces inside them). Returns the process handle, or NULL. *pid may be
 * NULL. */
HANDLE wintest_spawn(const char *args, DWORD *pid);

/* Waits for a process (at most 60 s: a bound for a broken test, not a
 * synchronisation) and returns its exit code, or -1 on timeout or error.
 * Closes the handle. */
long wintest_join(HANDLE proc);

/* A name no other test run uses: "<prefix>shmbus-test-<pid>-<16 random
 * hex digits>" (the randomness from BCryptGenRandom). */
void wintest_unique_name(char *out, size_t cap, const char *prefix);

#endif /* SHMBUS_WINTEST_H */
