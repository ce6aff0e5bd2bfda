/* bench_test: shmbus-bench.exe under Wine, which starts its own shmbusd.exe
 * on a private bus and its publisher and subscribers (or ping and pong)
 * as copies of itself:
 *   - fanout in CSV: every row parses, every count adds up, reliable
 *     subscribers lose nothing, and the bench's bus directory is gone;
 *   - latency in CSV: every row parses and has its round trips;
 *   - fanout in markdown with --peers: the shmbus and memcpy rows, the
 *     Linux-only peers skipped with their note, the counts' verdict;
 *   - latency with --peers in CSV: the named-pipe, event and cache-line
 *     ping-pongs (a pipe B creates under a random name, a named section
 *     and named events, opened by the children) have all their round
 *     trips, in every wait mode they have;
 *   - publish and idle (--quick): their tables, the subscribers' counts,
 *     and what Windows cannot count said so;
 *   - tools (the smallest run): shmbus.exe's echo -q, echo -q --latency-us
 *     0, hz and bw attached to a publisher at two rates and stopped through
 *     their named stop events, and the two controls (the bench again,
 *     stopped by an inherited event): every row there, echo's received +
 *     lost adding up (the bench dies otherwise);
 *   - --plot without gnuplot.exe in PATH refuses at once with the reason;
 *     with a stand-in gnuplot.exe (fake_gnuplot.c) in PATH the run
 *     succeeds and the script it was fed names the output file;
 *   - killed mid-run, it takes its children and its daemon with it.
 * Nothing here looks at a timing: Wine's are meaningless. Every step waits
 * for an event (output, a process's end), never for time. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include <tlhelp32.h>

#include "winproc.h"
#include "wintest.h"

#define BT_MAX_LINES 256
#define BT_MAX_FIELDS 32

/* All of a program's output, line by line, up to its end. */
struct bt_out {
  char lines[BT_MAX_LINES][1024];
  unsigned n;
  long code;
  DWORD pid;
};

/* Runs shmbus-bench.exe with `args` to its end. */
static bool bt_run(const char *args, struct bt_out *o) {
  struct winproc p;
  char line[1024];

  memset(o, 0, sizeof(*o));
  if (!winproc_start(&p, "shmbus-bench.exe", args, false))
    return false;
  o->pid = GetProcessId(p.process);
  while (winproc_read_line(&p, line, sizeof(line)) > 0) {
    line[strcspn(line, "\r\n")] = '\0';
    if (o->n < BT_MAX_LINES)
      snprintf(o->lines[o->n++], sizeof(o->lines[0]), "%s", line);
  }
  o->code = winproc_wait(&p);
  return true;
}

/* Splits a CSV line of the bench (every cell in double quotes, none with
 * a comma, or a header of bare names) into its cells, quotes removed. */
static unsigned bt_split(char *line, char **cells) {
  unsigned n = 0;
  char *p = line;
  for (;;) {
    char *c = strchr(p, ',');
    if (c != NULL)
      *c = '\0';
    if (n < BT_MAX_FIELDS) {
      size_t len = strlen(p);
      if (len >= 2 && p[0] == '"' && p[len - 1] == '"') {
        p[len - 1] = '\0';
        p++;
      }
      cells[n++] = p;
    }
    if (c == NULL)
      return n;
    p = c + 1;
  }
}

static int bt_col(char **head, unsigned n, const char *name) {
  unsigned i;
  for (i = 0; i < n; i++)
    if (strcmp(head[i], name) == 0)
      return (int)i;
  return -1;
}

/* A number that is the whole cell. */
static bool bt_num(const char *s, double *v) {
  char *end;
  *v = strtod(s, &end);
  return *s != '\0' && *end == '\0';
}

/* The CSV part of a run's output: its header's cells and its rows. The
 * first line starting with `first_col` is the header; the rows are the
 * lines after it that start with a quote (stderr's progress lines on the
 * same pipe start with '['). */
struct bt_csv {
  char *head[BT_MAX_FIELDS];
  unsigned nhead;
  char *rows[BT_MAX_LINES][BT_MAX_FIELDS];
  unsigned ncells[BT_MAX_LINES];
  unsigned nrows;
};

static bool bt_csv_parse(struct bt_out *o, const char *first_col, struct bt_csv *c) {
  unsigned i;
  bool in = false;
  memset(c, 0, sizeof(*c));
  for (i = 0; i < o->n; i++) {
    if (!in && strncmp(o->lines[i], first_col, strlen(first_col)) == 0) {
      c->nhead = bt_split(o->lines[i], c->head);
      in = true;
    } else if (in && o->lines[i][0] == '"' && c->nrows < BT_MAX_LINES) {
      c->ncells[c->nrows] = bt_split(o->lines[i], c->rows[c->nrows]);
      c->nrows++;
    }
  }
  return in;
}

static void bt_dump(const struct bt_out *o) {
  unsigned i;
  for (i = 0; i < o->n; i++)
    wintest_note("  | %s", o->lines[i]);
}

/* Whether a directory the bench with process id `pid` made is left in the
 * temporary folder; removes it if so. */
static bool bt_dir_left(DWORD pid) {
  char tmp[MAX_PATH], pattern[MAX_PATH + 64], dir[2 * MAX_PATH];
  WIN32_FIND_DATAA fd;
  HANDLE f;
  if (GetTempPathA(sizeof(tmp), tmp) == 0)
    return false;
  snprintf(pattern, sizeof(pattern), "%sshmbus-bench-%lu-*", tmp, (unsigned long)pid);
  if ((f = FindFirstFileA(pattern, &fd)) == INVALID_HANDLE_VALUE)
    return false;
  snprintf(dir, sizeof(dir), "%s%s", tmp, fd.cFileName);
  FindClose(f);
  /* What is in it, for the report. */
  snprintf(pattern, sizeof(pattern), "%s\\*", dir);
  if ((f = FindFirstFileA(pattern, &fd)) != INVALID_HANDLE_VALUE) {
    do
      if (strcmp(fd.cFileName, ".") != 0 && strcmp(fd.cFileName, "..") != 0)
        wintest_note("left in %s: %s", dir, fd.cFileName);
    while (FindNextFileA(f, &fd));
    FindClose(f);
  }
  winproc_bus_dir_remove(dir);
  return true;
}

static int test_fanout_csv(void) {
  static struct bt_out o;
  static struct bt_csv c;
  const char *cols[] = {"transport",
                        "wait",
                        "mode",
                        "subs",
                        "size",
                        "published",
                        "received",
                        "lost",
                        "loss_pct",
                        "p50_us",
                        "max_us",
                        "counts_ok",
                        "delivered_per_s_per_sub"};
  int k[13];
  unsigned i, j, seen[2][2] = {{0, 0}, {0, 0}};

  WT_CHECK(bt_run("fanout --subs 1,2 --count 2000 --size 64 --mode lossy,reliable --wait uv,event "
                  "--reps 1 --csv",
                  &o),
           "start shmbus-bench.exe");
  if (o.code != 0)
    bt_dump(&o);
  WT_CHECK(o.code == 0, "exit %ld", o.code);
  WT_CHECK(bt_csv_parse(&o, "transport,", &c), "no CSV header");
  for (j = 0; j < sizeof(cols) / sizeof(cols[0]); j++)
    WT_CHECK((k[j] = bt_col(c.head, c.nhead, cols[j])) >= 0, "no column %s", cols[j]);
  /* 2 subscriber counts x 2 modes x 2 wait modes, shmbus alone. */
  WT_CHECK(c.nrows == 8, "%u rows", c.nrows);
  for (i = 0; i < c.nrows; i++) {
    char **r = c.rows[i];
    double subs, pub, recv, lost, v;
    bool rel;
    WT_CHECK(c.ncells[i] == c.nhead, "row %u: %u cells, header %u", i, c.ncells[i], c.nhead);
    /* Every metric a number, but the wake-ups: not available on Windows
     * (an empty cell). */
    for (j = 0; j < c.nhead; j++)
      if (j != (unsigned)k[0] && j != (unsigned)k[1] && j != (unsigned)k[2] &&
          j != (unsigned)k[11] && strcmp(c.head[j], "wakeups_per_msg") != 0)
        WT_CHECK(bt_num(r[j], &v), "row %u, %s: '%s' is not a number", i, c.head[j], r[j]);
    WT_CHECK(r[bt_col(c.head, c.nhead, "wakeups_per_msg")][0] == '\0', "row %u: wake-ups '%s'", i,
             r[bt_col(c.head, c.nhead, "wakeups_per_msg")]);
    WT_CHECK(strcmp(r[k[0]], "shmbus") == 0, "row %u: transport %s", i, r[k[0]]);
    WT_CHECK(strcmp(r[k[1]], "uv") == 0 || strcmp(r[k[1]], "event") == 0, "row %u: wait %s", i,
             r[k[1]]);
    rel = strcmp(r[k[2]], "reliable") == 0;
    WT_CHECK(rel || strcmp(r[k[2]], "lossy") == 0, "row %u: mode %s", i, r[k[2]]);
    bt_num(r[k[3]], &subs);
    bt_num(r[k[5]], &pub);
    bt_num(r[k[6]], &recv);
    bt_num(r[k[7]], &lost);
    WT_CHECK(subs == 1 || subs == 2, "row %u: subs %s", i, r[k[3]]);
    WT_CHECK(strcmp(r[k[4]], "64") == 0, "row %u: size %s", i, r[k[4]]);
    WT_CHECK(pub == 2000, "row %u: published %s", i, r[k[5]]);
    WT_CHECK(recv + lost == pub * subs, "row %u: received %s + lost %s != %s x %s", i, r[k[6]],
             r[k[7]], r[k[5]], r[k[3]]);
    WT_CHECK(!rel || (lost == 0 && recv == pub * subs), "row %u: reliable, lost %s", i, r[k[7]]);
    WT_CHECK(strcmp(r[k[11]], "yes") == 0, "row %u: counts_ok %s", i, r[k[11]]);
    seen[rel][subs == 2]++;
  }
  for (i = 0; i < 2; i++)
    for (j = 0; j < 2; j++)
      WT_CHECK(seen[i][j] == 2, "mode %u subs %u: %u rows", i, j + 1, seen[i][j]);
  WT_CHECK(!bt_dir_left(o.pid), "the bench left its bus directory");
  return WINTEST_PASS;
}

static int test_latency_csv(void) {
  static struct bt_out o;
  static struct bt_csv c;
  int kt, kw, kr, kp, km;
  unsigned i, j, waits = 0;

  WT_CHECK(bt_run("latency --count 300 --size 64 --mode lossy,reliable --wait uv,event,spin "
                  "--reps 1 --csv",
                  &o),
           "start shmbus-bench.exe");
  if (o.code != 0)
    bt_dump(&o);
  WT_CHECK(o.code == 0, "exit %ld", o.code);
  WT_CHECK(bt_csv_parse(&o, "transport,", &c), "no CSV header");
  WT_CHECK((kt = bt_col(c.head, c.nhead, "transport")) >= 0 &&
               (kw = bt_col(c.head, c.nhead, "wait")) >= 0 &&
               (kr = bt_col(c.head, c.nhead, "round_trips")) >= 0 &&
               (kp = bt_col(c.head, c.nhead, "p50_us")) >= 0 &&
               (km = bt_col(c.head, c.nhead, "max_us")) >= 0,
           "columns of the header");
  WT_CHECK(c.nrows == 6, "%u rows", c.nrows);
  for (i = 0; i < c.nrows; i++) {
    char **r = c.rows[i];
    double v, p50, max;
    WT_CHECK(c.ncells[i] == c.nhead, "row %u: %u cells, header %u", i, c.ncells[i], c.nhead);
    for (j = 3; j < c.nhead; j++)
      WT_CHECK(strcmp(c.head[j], "wakeups_per_rt") == 0 ? r[j][0] == '\0' : bt_num(r[j], &v),
               "row %u, %s: '%s' is not a number (wake-ups: empty)", i, c.head[j], r[j]);
    WT_CHECK(strcmp(r[kt], "shmbus") == 0, "row %u: transport %s", i, r[kt]);
    WT_CHECK(strcmp(r[kr], "300.0") == 0, "row %u: round trips %s", i, r[kr]);
    /* Consistency of the percentiles, not a timing. */
    bt_num(r[kp], &p50);
    bt_num(r[km], &max);
    WT_CHECK(p50 <= max + 0.01, "row %u: p50 %s above max %s", i, r[kp], r[km]);
    waits |= strcmp(r[kw], "uv") == 0 ? 1u : strcmp(r[kw], "event") == 0 ? 2u : 4u;
  }
  WT_CHECK(waits == 7, "wait modes seen: %u", waits);
  WT_CHECK(!bt_dir_left(o.pid), "the bench left its bus directory");
  return WINTEST_PASS;
}

static bool bt_has(const struct bt_out *o, const char *text) {
  unsigned i;
  for (i = 0; i < o->n; i++)
    if (strstr(o->lines[i], text) != NULL)
      return true;
  return false;
}

static int test_fanout_markdown_peers(void) {
  static struct bt_out o;
  const char *skipped[] = {"unix socket", "zeromq", "iceoryx", "nats"};
  char want[128];
  unsigned i;

  WT_CHECK(bt_run("fanout --subs 3 --count 1000 --size 4096 --mode reliable --reps 1 --peers", &o),
           "start shmbus-bench.exe");
  if (o.code != 0)
    bt_dump(&o);
  WT_CHECK(o.code == 0, "exit %ld", o.code);
  WT_CHECK(bt_has(&o, "# shmbus-bench fanout"), "no title");
  WT_CHECK(bt_has(&o, "| shmbus | uv | reliable | 3 | 4096 | 0 |"), "no shmbus row");
  WT_CHECK(bt_has(&o, "| memcpy (cold) | - | - | 1 | 4096 |"), "no memcpy row");
  WT_CHECK(bt_has(&o, "| 1000 | 3000 | 0 | yes |"), "shmbus row's counts (published 1000, "
                                                    "received 3000, lost 0)");
  for (i = 0; i < sizeof(skipped) / sizeof(skipped[0]); i++) {
    snprintf(want, sizeof(want), "- %s skipped: not ported to Windows", skipped[i]);
    WT_CHECK(bt_has(&o, want), "no note '%s'", want);
  }
  WT_CHECK(bt_has(&o, "for every subscriber of every run, received + lost = published") &&
               bt_has(&o, ": all add up."),
           "the counts' verdict");
  WT_CHECK(bt_has(&o, "- Windows: wake-ups are not counted"), "the Windows note");
  WT_CHECK(!bt_dir_left(o.pid), "the bench left its bus directory");
  return WINTEST_PASS;
}

static int test_latency_peers(void) {
  static struct bt_out o;
  static struct bt_csv c;
  int kt, kw, kr;
  unsigned i, seen_event = 0, seen_line = 0, seen_shmbus = 0, seen_pipe = 0;

  WT_CHECK(bt_run("latency --count 200 --size 64 --wait uv,event,spin --reps 1 --peers --csv", &o),
           "start shmbus-bench.exe");
  if (o.code != 0)
    bt_dump(&o);
  WT_CHECK(o.code == 0, "exit %ld", o.code);
  WT_CHECK(bt_csv_parse(&o, "transport,", &c), "no CSV header");
  WT_CHECK((kt = bt_col(c.head, c.nhead, "transport")) >= 0 &&
               (kw = bt_col(c.head, c.nhead, "wait")) >= 0 &&
               (kr = bt_col(c.head, c.nhead, "round_trips")) >= 0,
           "columns of the header");
  for (i = 0; i < c.nrows; i++) {
    char **r = c.rows[i];
    WT_CHECK(c.ncells[i] == c.nhead, "row %u: %u cells, header %u", i, c.ncells[i], c.nhead);
    WT_CHECK(strcmp(r[kr], "200.0") == 0, "row %u (%s %s): round trips %s", i, r[kt], r[kw], r[kr]);
    if (strcmp(r[kt], "event") == 0)
      seen_event |= strcmp(r[kw], "uv") == 0 ? 1u : strcmp(r[kw], "event") == 0 ? 2u : 4u;
    else if (strcmp(r[kt], "cache line") == 0)
      seen_line |= strcmp(r[kw], "spin") == 0 ? 1u : 2u;
    else if (strcmp(r[kt], "named pipe") == 0)
      seen_pipe |= strcmp(r[kw], "uv") == 0 ? 1u : strcmp(r[kw], "event") == 0 ? 2u : 4u;
    else if (strcmp(r[kt], "shmbus") == 0)
      seen_shmbus++;
  }
  WT_CHECK(seen_shmbus == 3, "%u shmbus rows", seen_shmbus);
  WT_CHECK(seen_event == 7, "event rows' wait modes: %u", seen_event);
  WT_CHECK(seen_line == 1, "cache-line rows: %u (spin only)", seen_line);
  WT_CHECK(seen_pipe == 7, "named-pipe rows' wait modes: %u", seen_pipe);
  /* The unix socket's latency row is the named pipe's on Windows. */
  WT_CHECK(c.nrows == 3 + 3 + 3 + 1, "%u rows", c.nrows);
  WT_CHECK(!bt_dir_left(o.pid), "the bench left its bus directory");
  return WINTEST_PASS;
}

/* A markdown table's row that starts with `start`: its cells (trimmed),
 * in `cells`; how many. */
static unsigned bt_md_row(const struct bt_out *o, const char *start, char cells[][128],
                          unsigned cap) {
  unsigned i, n = 0;
  for (i = 0; i < o->n; i++) {
    const char *p = o->lines[i];
    if (strncmp(p, start, strlen(start)) != 0)
      continue;
    p++;
    while (*p != '\0' && n < cap) {
      const char *e = strchr(p, '|');
      size_t len;
      if (e == NULL)
        break;
      while (*p == ' ')
        p++;
      len = (size_t)(e - p);
      while (len > 0 && p[len - 1] == ' ')
        len--;
      snprintf(cells[n++], 128, "%.*s", (int)len, p);
      p = e + 1;
    }
    return n;
  }
  return 0;
}

static int test_publish_idle(void) {
  static struct bt_out o;
  char cells[12][128];
  unsigned i, n;

  WT_CHECK(bt_run("publish --quick --rounds 1", &o), "start shmbus-bench.exe");
  if (o.code != 0)
    bt_dump(&o);
  WT_CHECK(o.code == 0, "publish: exit %ld", o.code);
  WT_CHECK(bt_has(&o, "# shmbus-bench publish"), "no title");
  /* The 0, 1 and 8 subscriber rows: subscribers, median, per round,
   * batches, / 1 sub, received, lost, received share. */
  for (i = 0; i < 3; i++) {
    static const char *const start[] = {"| 0 | ", "| 1 | ", "| 8 | "};
    double batches, recv;
    n = bt_md_row(&o, start[i], cells, 12);
    WT_CHECK(n == 8, "publish row %s: %u cells", start[i], n);
    WT_CHECK(bt_num(cells[3], &batches) && batches >= 20, "row %s: batches %s", start[i], cells[3]);
    if (i == 0)
      WT_CHECK(strcmp(cells[5], "-") == 0, "no subscriber, received %s", cells[5]);
    else
      WT_CHECK(bt_num(cells[5], &recv) && recv > 0, "row %s: received %s", start[i], cells[5]);
  }
  WT_CHECK(bt_has(&o, "The daemon stopped cleanly when stopped through the API"), "daemon stop");
  WT_CHECK(!bt_dir_left(o.pid), "publish left its bus directory");

  WT_CHECK(bt_run("idle --quick --window-ms 200", &o), "start shmbus-bench.exe");
  if (o.code != 0)
    bt_dump(&o);
  WT_CHECK(o.code == 0, "idle: exit %ld", o.code);
  n = bt_md_row(&o, "| 1000 topics open | ", cells, 12);
  WT_CHECK(n == 4 && strstr(cells[1], " KiB") != NULL &&
               strcmp(cells[2], "not available on Windows") == 0 &&
               strstr(cells[3], " KiB") != NULL,
           "the 1000 topics row: %u cells", n);
  WT_CHECK(bt_has(&o, "context switches (wake-ups) not available on Windows"), "wake-ups");
  WT_CHECK(bt_has(&o, "the scheduler's run time not available on Windows"), "schedstat");
  WT_CHECK(bt_has(&o, "The daemon stopped cleanly when stopped through the API"), "daemon stop");
  WT_CHECK(!bt_dir_left(o.pid), "idle left its bus directory");
  return WINTEST_PASS;
}

static int test_tools(void) {
  static struct bt_out o;
  static const char *const rates[] = {"| flat out | ", "| 50000/s | "};
  static const char *const readers[] = {"(publisher alone)",
                                        "`echo -q`",
                                        "`echo -q --latency-us 0`",
                                        "`hz`",
                                        "`bw`",
                                        "control: a busy loop",
                                        "control: a 64 MiB read loop"};
  char cells[BT_MAX_FIELDS][128], start[128];

  WT_CHECK(bt_run("tools --count 1000 --rate 0,50k --reps 1", &o), "start shmbus-bench.exe");
  if (o.code != 0)
    bt_dump(&o);
  WT_CHECK(o.code == 0, "tools: exit %ld", o.code);
  WT_CHECK(bt_has(&o, "| rate | reader | publisher msg/s |"), "the table's head");
  for (unsigned r = 0; r < 2; r++)
    for (unsigned k = 0; k < sizeof(readers) / sizeof(readers[0]); k++) {
      unsigned n;
      snprintf(start, sizeof(start), "%s%s |", rates[r], readers[k]);
      n = bt_md_row(&o, start, cells, BT_MAX_FIELDS);
      WT_CHECK(n == 9, "the row %s: %u cells", start, n);
      if (k == 1 || k == 2) {
        /* "R % (L %)": what echo received and lost, of all published. */
        double got, lost;
        WT_CHECK(sscanf(cells[8], "%lf %% (%lf %%)", &got, &lost) == 2 && got + lost > 99.9 &&
                     got + lost < 100.1,
                 "%s received (lost): %s", start, cells[8]);
        wintest_note("%s received (lost) %s", start, cells[8]);
      }
    }
  WT_CHECK(bt_has(&o, "The daemon stopped cleanly."), "daemon stop");
  WT_CHECK(!bt_dir_left(o.pid), "tools left its bus directory");
  /* A control's command line it did not write is refused. */
  WT_CHECK(bt_run("tools --control busy 123457 123461", &o), "start shmbus-bench.exe");
  WT_CHECK(o.code == 2 && bt_has(&o, "--control is for the benchmark's own children"),
           "a forged control: exit %ld", o.code);
  return WINTEST_PASS;
}

static int test_refusals(void) {
  static struct bt_out o;
  WT_CHECK(bt_run("fanout --subs 0", &o), "start shmbus-bench.exe");
  WT_CHECK(o.code == 2 && bt_has(&o, "bad number for --subs"), "--subs 0: exit %ld", o.code);
  /* A --bench-child command line it did not write is refused. */
  WT_CHECK(bt_run("--bench-child 1:2 C:\\nowhere 5 0 0 0 -1 1 fanout", &o),
           "start shmbus-bench.exe");
  WT_CHECK(o.code == 1, "a forged child: exit %ld", o.code);
  return WINTEST_PASS;
}

/* Runs the bench with PATH set to `path` (this process's environment,
 * which CreateProcess hands on), then puts PATH back. */
static bool bt_run_path(const char *args, const char *path, struct bt_out *o) {
  static char saved[32768];
  DWORD len = GetEnvironmentVariableA("PATH", saved, sizeof(saved));
  bool ok;
  if (len == 0 || len >= sizeof(saved) || !SetEnvironmentVariableA("PATH", path))
    return false;
  ok = bt_run(args, o);
  return SetEnvironmentVariableA("PATH", saved) && ok;
}

/* The Windows directory and its system32: cmd.exe (_popen's) and no
 * gnuplot.exe. */
static bool bt_system_path(char *out, size_t cap) {
  char win[MAX_PATH];
  UINT n = GetWindowsDirectoryA(win, sizeof(win));
  return n > 0 && n < sizeof(win) && (size_t)snprintf(out, cap, "%s\\system32;%s", win, win) < cap;
}

/* --plot without gnuplot.exe in PATH: refused before anything runs, with
 * what is missing, exit 2. */
static int test_plot_missing(void) {
  static struct bt_out o;
  char path[2 * MAX_PATH + 16];
  WT_CHECK(bt_system_path(path, sizeof(path)), "the Windows directory");
  WT_CHECK(bt_run_path("latency --count 50 --size 64 --reps 1 --plot out.png", path, &o),
           "start shmbus-bench.exe");
  if (o.code != 2)
    bt_dump(&o);
  WT_CHECK(o.code == 2, "--plot without gnuplot: exit %ld", o.code);
  WT_CHECK(bt_has(&o, "shmbus-bench: --plot needs gnuplot.exe in %PATH%"), "no clear message");
  WT_CHECK(GetFileAttributesA("out.png") == INVALID_FILE_ATTRIBUTES, "out.png was made");
  return WINTEST_PASS;
}

/* --plot with the stand-in gnuplot.exe (fake_gnuplot.c) first in PATH: the
 * run succeeds, and the file it wrote, the script it was fed, names that
 * file (a space and a quote in its name: quoted as gnuplot wants) and ends
 * with the plot's last command. */
static int test_plot_fake(void) {
  static struct bt_out o;
  static char script[1 << 16];
  char sys[2 * MAX_PATH + 16], path[4 * MAX_PATH], tmp[MAX_PATH], png[MAX_PATH + 64];
  char args[2 * MAX_PATH + 128], want[2 * MAX_PATH + 64], *q;
  const char *s;
  HANDLE f;
  DWORD n = 0;

  WT_CHECK(bt_system_path(sys, sizeof(sys)), "the Windows directory");
  snprintf(path, sizeof(path), "%s\\fake-gnuplot;%s", winproc_bin_dir, sys);
  WT_CHECK(GetTempPathA(sizeof(tmp), tmp) > 0, "GetTempPath");
  snprintf(png, sizeof(png), "%sshmbus plot's-%lu.png", tmp, (unsigned long)GetCurrentProcessId());
  (void)DeleteFileA(png);
  snprintf(args, sizeof(args),
           "latency --count 50 --size 64 --wait spin --reps 1 --csv --plot \"%s\"", png);
  WT_CHECK(bt_run_path(args, path, &o), "start shmbus-bench.exe");
  if (o.code != 0)
    bt_dump(&o);
  WT_CHECK(o.code == 0, "--plot with gnuplot.exe: exit %ld", o.code);
  f = CreateFileA(png, GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
  WT_CHECK(f != INVALID_HANDLE_VALUE, "gnuplot.exe wrote no %s", png);
  WT_CHECK(ReadFile(f, script, sizeof(script) - 1, &n, NULL), "read %s", png);
  CloseHandle(f);
  (void)DeleteFileA(png);
  script[n] = '\0';
  /* The name in single quotes, its quote doubled. */
  q = want + snprintf(want, sizeof(want), "\nset output '");
  for (s = png; *s != '\0' && q + 3 < want + sizeof(want); s++) {
    if (*s == '\'')
      *q++ = '\'';
    *q++ = *s;
  }
  snprintf(q, (size_t)(want + sizeof(want) - q), "'\n");
  WT_CHECK(strstr(script, want) != NULL, "the script does not name the file:%s", script);
  WT_CHECK(strstr(script, "set terminal pngcairo") != NULL, "no terminal in the script");
  WT_CHECK(strstr(script, "shmbus 64 B") != NULL, "no shmbus row in the script's data");
  WT_CHECK(n >= strlen("unset multiplot\n") &&
               strcmp(script + n - strlen("unset multiplot\n"), "unset multiplot\n") == 0,
           "the script does not end with unset multiplot");
  WT_CHECK(!bt_dir_left(o.pid), "the bench left its bus directory");
  return WINTEST_PASS;
}

/* The processes whose parent is `pid` (handles with SYNCHRONIZE), up to cap. */
static unsigned bt_children(DWORD pid, HANDLE *out, unsigned cap) {
  PROCESSENTRY32 e;
  HANDLE snap = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
  unsigned n = 0;
  if (snap == INVALID_HANDLE_VALUE)
    return 0;
  e.dwSize = sizeof(e);
  if (Process32First(snap, &e)) {
    do {
      if (e.th32ParentProcessID == pid && n < cap) {
        HANDLE h = OpenProcess(SYNCHRONIZE, FALSE, e.th32ProcessID);
        if (h != NULL)
          out[n++] = h;
      }
    } while (Process32Next(snap, &e));
  }
  CloseHandle(snap);
  return n;
}

/* Waits for every process whose parent was `pid` (bounded); false if one
 * still runs. *n: how many there were. */
static bool bt_children_end(DWORD pid, unsigned *n) {
  HANDLE kids[32];
  unsigned i, k = bt_children(pid, kids, 32);
  bool ok = true;
  for (i = 0; i < k; i++) {
    ok &= WaitForSingleObject(kids[i], WINPROC_LONG_MS) == WAIT_OBJECT_0;
    CloseHandle(kids[i]);
  }
  *n = k;
  return ok;
}

/* The bench killed mid-run (TerminateProcess: nothing of its own runs)
 * takes its children and its daemon with it: they are in its job object,
 * which closes with it. Its first progress line (on stderr, after the
 * first run) says the second run, 100 messages at 10/s, is starting: the
 * daemon runs, and so do the run's publisher and 2 subscribers or they
 * are being started. */
static int test_killed_takes_children(void) {
  struct winproc p;
  HANDLE kids[16];
  char line[1024];
  unsigned n, i, after;
  DWORD pid;

  WT_CHECK(winproc_start(&p, "shmbus-bench.exe",
                         "fanout --subs 2 --size 64 --rate 1000,10 --count 100 --reps 2 --csv",
                         false),
           "start shmbus-bench.exe");
  pid = GetProcessId(p.process);
  winproc_read_line(&p, line, sizeof(line));
  WT_CHECK(strncmp(line, "[1/4]", 5) == 0, "first line: %s", line);
  n = bt_children(pid, kids, 16);
  wintest_note("%u children of the bench before it is killed", n);
  WT_CHECK(n >= 1, "not even the daemon runs");
  WT_CHECK(TerminateProcess(p.process, 9), "TerminateProcess");
  (void)winproc_wait(&p);
  for (i = 0; i < n; i++) {
    WT_CHECK(WaitForSingleObject(kids[i], WINPROC_LONG_MS) == WAIT_OBJECT_0, "child %u still runs",
             i);
    CloseHandle(kids[i]);
  }
  /* And any it started after the first look. */
  WT_CHECK(bt_children_end(pid, &after), "a child started later still runs");
  /* Killed, it could not remove its bus directory: the test does. */
  WT_CHECK(bt_dir_left(pid), "no bus directory of the killed bench");
  return WINTEST_PASS;
}

static const struct wintest tests[] = {
    {"fanout_csv", test_fanout_csv},
    {"latency_csv", test_latency_csv},
    {"fanout_markdown_peers", test_fanout_markdown_peers},
    {"latency_peers", test_latency_peers},
    {"publish_idle", test_publish_idle},
    {"tools", test_tools},
    {"refusals", test_refusals},
    {"plot_missing", test_plot_missing},
    {"plot_fake", test_plot_fake},
    {"killed_takes_children", test_killed_takes_children},
};

int main(int argc, char **argv) {
  winproc_find_bin_dir();
  return wintest_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]), NULL);
}
