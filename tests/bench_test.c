/* shmbus-bench smoke tests: each subcommand runs for a fraction of a second
 * (it starts its own shmbusd), and the report's structure and counts are
 * checked: every row has its fields, and for every fan-out row received +
 * lost == published times the subscribers. No assertion on speed. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdbool.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef SHMBUS_BENCH_PATH
#error "SHMBUS_BENCH_PATH must name the shmbus-bench program"
#endif

TestSuite(bench, .timeout = 120);

/* Runs shmbus-bench with `args` (NULL-terminated), its stdout collected in
 * a malloc'd string (*out); returns its wait status. */
static int run_bench(char **out, const char *const *args) {
  const char *argv[32];
  size_t n = 0, cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  int p[2], status;
  pid_t pid;

  cr_assert_not_null(buf);
  argv[n++] = SHMBUS_BENCH_PATH;
  while (*args != NULL && n < 31)
    argv[n++] = *args++;
  argv[n] = NULL;
  cr_assert_eq(pipe(p), 0);
  fflush(NULL);
  pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    (void)dup2(p[1], 1);
    close(p[0]);
    close(p[1]);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(p[1]);
  for (;;) {
    ssize_t r;
    if (len + 1 == cap) {
      char *nb = realloc(buf, cap *= 2);
      cr_assert_not_null(nb);
      buf = nb;
    }
    r = read(p[0], buf + len, cap - len - 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r <= 0)
      break;
    len += (size_t)r;
  }
  buf[len] = '\0';
  close(p[0]);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  *out = buf;
  return status;
}

/* Runs shmbus-bench with `args`, which must exit 0; returns its stdout
 * (malloc'd). */
static char *run_ok(const char *const *args) {
  char *out;
  int st = run_bench(&out, args);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "shmbus-bench exit status %d:\n%s", st, out);
  return out;
}

/* Every string of `want` (NULL-terminated) is somewhere in `out`. */
static void assert_has_all(const char *out, const char *const *want) {
  for (; *want != NULL; want++)
    cr_assert_not_null(strstr(out, *want), "no '%s' in:\n%s", *want, out);
}

/* A report of the daemon's costs or the tools' (args[0]: publish, idle,
 * tools): exit 0, its title first, every string of `want` in it, and the
 * benchmark's daemon stopped cleanly. */
static void check_report(const char *const *args, const char *const *want) {
  char title[64], *out = run_ok(args);
  snprintf(title, sizeof(title), "# shmbus-bench %s\n", args[0]);
  cr_assert_eq(strncmp(out, title, strlen(title)), 0, "%s", out);
  assert_has_all(out, want);
  cr_assert_not_null(strstr(out, "stopped cleanly"), "%s", out);
  free(out);
}

static json_t *run_json(const char *const *args) {
  char *out = run_ok(args);
  json_error_t err;
  json_t *root;
  root = json_loads(out, 0, &err);
  cr_assert_not_null(root, "not JSON (%s, line %d):\n%s", err.text, err.line, out);
  free(out);
  return root;
}

static double num(json_t *row, const char *key) {
  json_t *v = json_object_get(row, key);
  cr_assert(json_is_number(v), "row has no number '%s'", key);
  return json_number_value(v);
}

static const char *str(json_t *row, const char *key) {
  json_t *v = json_object_get(row, key);
  cr_assert(json_is_string(v), "row has no string '%s'", key);
  return json_string_value(v);
}

static void check_machine(json_t *root, const char *sub) {
  json_t *m = json_object_get(root, "machine");
  cr_assert_str_eq(str(root, "subcommand"), sub);
  cr_assert(json_is_object(m));
  cr_assert_gt(strlen(str(m, "cpu")), 0);
  cr_assert_gt(strlen(str(m, "kernel")), 0);
  cr_assert_geq(num(m, "cpus"), 1);
}

/* Fan-out rows: fields present, counts add up for every transport. */
static unsigned check_fanout_rows(json_t *root, unsigned *shmbus_rows) {
  json_t *rows = json_object_get(root, "rows"), *row;
  size_t i;
  *shmbus_rows = 0;
  cr_assert(json_is_array(rows));
  json_array_foreach(rows, i, row) {
    double pub = num(row, "published"), rec = num(row, "received"), lost = num(row, "lost");
    double subs = num(row, "subs");
    const char *t = str(row, "transport");
    cr_assert(json_is_true(json_object_get(row, "counts_ok")), "%s: counts do not add up", t);
    num(row, "cpu_ns_per_msg");
    cr_assert_geq(num(row, "wakeups_per_msg"), 0);
    num(row, "gbps_per_sub");
    num(row, "loss_pct");
    if (strcmp(t, "memcpy (cold)") == 0)
      continue;
    cr_assert_gt(pub, 0, "%s published nothing", t);
    cr_assert_eq(rec + lost, pub * subs, "%s: received %.0f + lost %.0f != %.0f x %.0f", t, rec,
                 lost, pub, subs);
    cr_assert_gt(rec, 0, "%s delivered nothing", t);
    cr_assert_leq(num(row, "p50_us"), num(row, "max_us"));
    if (strcmp(t, "shmbus") == 0)
      ++*shmbus_rows;
  }
  return (unsigned)json_array_size(rows);
}

Test(bench, fanout_lossy_and_reliable_with_peers_json) {
  const char *args[] = {"fanout", "--subs",         "1,2",        "--size", "64,4096",
                        "--mode", "lossy,reliable", "--duration", "0.1",    "--reps",
                        "1",      "--peers",        "--json",     NULL};
  json_t *root = run_json(args);
  unsigned shm, n;
  check_machine(root, "fanout");
  n = check_fanout_rows(root, &shm);
  cr_assert_eq(shm, 2 * 2 * 2, "one shmbus row per mode, size and subscriber count");
  cr_assert_geq(n, shm * 2, "peers measured next to shmbus");
  json_decref(root);
}

Test(bench, fanout_event_and_spin_at_a_rate_json) {
  const char *args[] = {"fanout", "--subs",     "2",      "--size", "64",
                        "--wait", "event,spin", "--rate", "20k",    "--count",
                        "1000",   "--reps",     "1",      "--json", NULL};
  json_t *root = run_json(args);
  json_t *row;
  unsigned shm;
  size_t i;
  cr_assert_eq(check_fanout_rows(root, &shm), 2);
  json_array_foreach(json_object_get(root, "rows"), i, row) {
    cr_assert_eq(num(row, "published"), 1000);
    cr_assert_eq(num(row, "rate"), 20000);
  }
  json_decref(root);
}

Test(bench, latency_every_wait_mode_with_peers_json) {
  /* 256 KiB: more than a socket buffer holds, so a unix-socket answer
   * sent from a libuv callback (uv_poll made the socket non-blocking)
   * waits for room. */
  const char *args[] = {"latency",       "--size", "64,256k", "--count", "300",    "--wait",
                        "event,uv,spin", "--reps", "1",       "--peers", "--json", NULL};
  json_t *root = run_json(args);
  json_t *rows = json_object_get(root, "rows"), *row;
  unsigned shm = 0, line = 0;
  size_t i;
  check_machine(root, "latency");
  json_array_foreach(rows, i, row) {
    const char *t = str(row, "transport");
    cr_assert_eq(num(row, "round_trips"), 300, "%s", t);
    cr_assert_geq(num(row, "wakeups_per_rt"), 0, "%s", t);
    cr_assert_gt(num(row, "p50_us"), 0, "%s", t);
    cr_assert_leq(num(row, "p50_us"), num(row, "p99_us"), "%s", t);
    cr_assert_leq(num(row, "p99_us"), num(row, "max_us"), "%s", t);
    cr_assert_gt(num(row, "rtt_half_p50_us"), 0, "%s", t);
    shm += strcmp(t, "shmbus") == 0;
    line += strcmp(t, "cache line") == 0;
  }
  cr_assert_eq(shm, 3 * 2);
  cr_assert_eq(line, 2, "the cache-line ping-pong runs with --wait spin only");
  cr_assert_geq(json_array_size(json_object_get(root, "skipped")), 1);
  json_decref(root);
}

/* Why the iceoryx peer was skipped (the report's "skipped" list), or NULL
 * if it ran. */
static const char *iceoryx_skipped(json_t *root) {
  json_t *sk = json_object_get(root, "skipped"), *e;
  size_t i;
  json_array_foreach(sk, i, e) {
    if (strcmp(str(e, "transport"), "iceoryx") == 0)
      return str(e, "why");
  }
  return NULL;
}

static unsigned rows_of(json_t *root, const char *transport) {
  json_t *row;
  size_t i;
  unsigned n = 0;
  json_array_foreach(json_object_get(root, "rows"), i, row) n +=
      strcmp(str(row, "transport"), transport) == 0;
  return n;
}

/* The iceoryx peer in every wait mode, lossy and reliable, fan-out and
 * ping-pong, with the RouDi shmbus-bench starts and stops itself; counts
 * checked like every peer's (loss: the sequence gaps). Skipped, with the
 * report's reason, when shmbus-bench was built without iceoryx's C binding,
 * iox-roudi is not installed, or another RouDi runs on this machine
 * (iceoryx 2.0 has one per machine). */
Test(bench, iceoryx_peer_every_wait_mode) {
  const char *fan[] = {
      "fanout",        "--subs",  "2",   "--size", "64", "--mode",  "lossy,reliable", "--wait",
      "event,uv,spin", "--count", "300", "--reps", "1",  "--peers", "--json",         NULL};
  const char *lat[] = {"latency", "--size", "64,4096", "--wait",  "event,uv,spin", "--count",
                       "200",     "--reps", "1",       "--peers", "--json",        NULL};
  json_t *root = run_json(fan), *row;
  const char *why = iceoryx_skipped(root);
  unsigned shm;
  size_t i;
  if (why != NULL) {
    char reason[512];
    snprintf(reason, sizeof(reason), "iceoryx peer skipped: %s", why);
    json_decref(root);
    cr_skip_test("%s", reason);
  }
  check_fanout_rows(root, &shm);
  cr_assert_eq(rows_of(root, "iceoryx"), 2 * 3, "one iceoryx row per mode and wait mode");
  json_array_foreach(json_object_get(root, "rows"), i, row) {
    if (strcmp(str(row, "transport"), "iceoryx") == 0 && strcmp(str(row, "mode"), "reliable") == 0)
      cr_assert_eq(num(row, "lost"), 0, "iceoryx lost messages in reliable mode");
  }
  json_decref(root);
  /* RouDi removed its shared memory and socket when it stopped. */
  cr_assert_neq(access("/dev/shm/iceoryx_mgmt", F_OK), 0, "RouDi's memory left behind");
  cr_assert_neq(access("/tmp/roudi", F_OK), 0, "RouDi's socket left behind");

  root = run_json(lat);
  why = iceoryx_skipped(root);
  if (why != NULL) { /* another RouDi started in between */
    char reason[512];
    snprintf(reason, sizeof(reason), "iceoryx peer skipped: %s", why);
    json_decref(root);
    cr_skip_test("%s", reason);
  }
  cr_assert_eq(rows_of(root, "iceoryx"), 3 * 2);
  json_array_foreach(json_object_get(root, "rows"), i, row) {
    if (strcmp(str(row, "transport"), "iceoryx") != 0)
      continue;
    cr_assert_eq(num(row, "round_trips"), 200);
    cr_assert_gt(num(row, "p50_us"), 0);
    cr_assert_leq(num(row, "p50_us"), num(row, "max_us"));
  }
  json_decref(root);
}

/* Why the NATS peer was skipped as a whole (not a row above its size
 * limit), or NULL if it ran. */
static const char *nats_skipped(json_t *root) {
  json_t *sk = json_object_get(root, "skipped"), *e;
  size_t i;
  json_array_foreach(sk, i, e) {
    if (strcmp(str(e, "transport"), "nats") == 0 && strstr(str(e, "why"), "max_payload") == NULL)
      return str(e, "why");
  }
  return NULL;
}

/* The NATS peer (core NATS lossy, JetStream reliable) in every wait mode,
 * with the nats-server shmbus-bench starts and stops itself; counts checked
 * like every peer's, nothing lost in reliable mode; a size above NATS's
 * max_payload is a skipped row. Skipped only when shmbus-bench was built
 * without libnats: with it, a server that does not start fails the test
 * (scripts/deps.sh --test installs nats-server). */
Test(bench, nats_peer_every_wait_mode) {
  const char *fan[] = {
      "fanout",        "--subs",  "2",   "--size", "64,2M", "--mode",  "lossy,reliable", "--wait",
      "event,uv,spin", "--count", "300", "--reps", "1",     "--peers", "--json",         NULL};
  json_t *root = run_json(fan), *row, *e;
  const char *why = nats_skipped(root);
  unsigned shm, big = 0;
  size_t i;
  if (why != NULL && strncmp(why, "not built", 9) == 0) {
    char reason[512];
    snprintf(reason, sizeof(reason), "NATS peer skipped: %s", why);
    json_decref(root);
    cr_skip_test("%s", reason);
  }
  cr_assert_null(why, "NATS peer skipped: %s", why);
  check_fanout_rows(root, &shm);
  cr_assert_eq(rows_of(root, "nats"), 2 * 3, "one nats row per mode and wait mode (64 B)");
  json_array_foreach(json_object_get(root, "rows"), i, row) {
    if (strcmp(str(row, "transport"), "nats") == 0 && strcmp(str(row, "mode"), "reliable") == 0)
      cr_assert_eq(num(row, "lost"), 0, "JetStream lost messages");
  }
  json_array_foreach(json_object_get(root, "skipped"), i, e) big +=
      strcmp(str(e, "transport"), "nats") == 0 && strstr(str(e, "why"), "max_payload") != NULL;
  cr_assert_geq(big, 1, "2 MiB rows of NATS skipped with the reason");
  json_decref(root);
}

/* shmbus-bench bridge: plain NATS rows, and the bridge's rows next to them
 * when a shmbus-bridge was built with it (otherwise skipped with the
 * reason); counts checked; the comparison columns filled for the bridge.
 * Lossy only: --reliable of the bridge is measured by hand until it is
 * done (bench/README.md). */
Test(bench, bridge_mode_rows_next_to_nats) {
  const char *args[] = {"bridge", "--size", "64,256", "--mode", "lossy", "--count",
                        "300",    "--reps", "1",      "--json", NULL};
  json_t *root, *row, *e;
  const char *why = NULL;
  unsigned shm, bridge = 0;
  size_t i;
  /* The bridge built here, or none: not one from the environment. */
  cr_assert_eq(unsetenv("SHMBUS_BRIDGE"), 0);
  root = run_json(args);
  cr_assert_str_eq(str(root, "subcommand"), "bridge");
  if (nats_skipped(root) != NULL && strncmp(nats_skipped(root), "not built", 9) == 0) {
    json_decref(root);
    cr_skip_test("built without libnats");
  }
  check_fanout_rows(root, &shm);
  cr_assert_eq(shm, 0);
  cr_assert_eq(rows_of(root, "nats"), 2, "one NATS row per size");
  json_array_foreach(json_object_get(root, "skipped"), i, e) {
    if (strcmp(str(e, "transport"), "bridge") == 0)
      why = str(e, "why");
  }
  json_array_foreach(json_object_get(root, "rows"), i, row) {
    if (strcmp(str(row, "transport"), "bridge") != 0)
      continue;
    bridge++;
    cr_assert_gt(num(row, "p50_vs_nats"), 0);
    cr_assert_gt(num(row, "throughput_pct_of_nats"), 0);
  }
#ifdef SHMBUS_BRIDGE_BUILT
  cr_assert_null(why, "bridge rows skipped: %s", why);
  cr_assert_eq(bridge, 2, "one bridge row per size");
#else
  cr_assert_eq(bridge, 0);
  cr_assert_not_null(why, "no bridge built, yet no note");
  cr_assert_not_null(strstr(why, "--bridge"), "%s", why);
#endif
  json_decref(root);
}

/* A number in [lo, hi] under `key`, or JSON null where null_ok. */
static void sched_in(json_t *row, const char *key, double lo, double hi, bool null_ok) {
  json_t *v = json_object_get(row, key);
  const char *t = str(row, "transport");
  cr_assert_not_null(v, "%s: no field %s", t, key);
  if (null_ok && json_is_null(v))
    return;
  cr_assert(json_is_number(v), "%s: %s is neither a number nor null", t, key);
  cr_assert(json_number_value(v) >= lo && json_number_value(v) <= hi, "%s: %s = %f not in [%f, %f]",
            t, key, json_number_value(v), lo, hi);
}

/* The fan-out's scheduling fields (who ran where: /proc over the
 * publisher's sending window) in every row: on-CPU shares within what the
 * machine has, waits not negative, shmbusd's share in shmbus rows only,
 * nothing for memcpy; and the markdown table and CSV columns. Skipped only
 * where the kernel keeps no schedstat. */
Test(bench, fanout_scheduling_fields) {
  const char *args[] = {"fanout", "--subs", "1,2", "--size",  "64",     "--duration",
                        "0.3",    "--reps", "1",   "--peers", "--json", NULL};
  const char *md[] = {"fanout",  "--subs", "2",      "--size", "64",
                      "--count", "2000",   "--reps", "1",      NULL};
  const char *csv[] = {"fanout", "--subs", "1", "--size", "64", "--count",
                       "2000",   "--reps", "1", "--csv",  NULL};
  const char *md_want[] = {"\nScheduling: who ran where",
                           "| transport | wait | mode | subs | size B | rate /s | window ms | "
                           "pub on-CPU % | pub run-queue wait % |",
                           "- Scheduling: the publisher reads", NULL};
  const char *csv_want[] = {",counts_ok,shmbus_ratio,sched_window_ms,sched_pub_cpu_pct,", NULL};
  static const char *const pct[] = {"sched_pub_cpu_pct", "sched_subs_cpu_pct", NULL};
  static const char *const waits[] = {"sched_pub_wait_pct", "sched_subs_wait_pct",
                                      "sched_wait_sum_pct", NULL};
  json_t *root, *row;
  double cap;
  unsigned measured = 0;
  size_t i, k;
  char *out;

  if (access("/proc/self/schedstat", R_OK) != 0)
    cr_skip_test("no readable /proc/self/schedstat (a kernel without CONFIG_SCHED_INFO): the "
                 "scheduling fields are not measured");
  root = run_json(args);
  cap = 100 * num(json_object_get(root, "machine"), "cpus");
  json_array_foreach(json_object_get(root, "rows"), i, row) {
    const char *t = str(row, "transport");
    bool shm = strcmp(t, "shmbus") == 0;
    double sum;
    if (strcmp(t, "memcpy (cold)") == 0) { /* one process, no transport: not measured */
      cr_assert(json_is_null(json_object_get(row, "sched_pub_cpu_pct")), "memcpy measured");
      continue;
    }
    measured++;
    /* The window holds the whole sending time (0.3 s). */
    sched_in(row, "sched_window_ms", 300, 60000, false);
    for (k = 0; pct[k] != NULL; k++)
      sched_in(row, pct[k], 0, cap, false);
    for (k = 0; waits[k] != NULL; k++)
      sched_in(row, waits[k], 0, 1e6, false);
    sched_in(row, "sched_daemon_cpu_pct", 0, cap, !shm);
    if (shm)
      num(row, "sched_daemon_cpu_pct");
    else
      cr_assert(json_is_null(json_object_get(row, "sched_daemon_cpu_pct")),
                "%s: shmbusd counted for a peer", t);
    /* The sum over processes: at most what the CPUs have, give or take the
     * stint the kernel adds when it ends (a tick per CPU at each edge). */
    sched_in(row, "sched_cpu_sum_pct", 0, cap * 1.1, false);
    sum = num(row, "sched_pub_cpu_pct") + num(row, "subs") * num(row, "sched_subs_cpu_pct");
    cr_assert_geq(num(row, "sched_cpu_sum_pct"), sum - 0.01, "%s: sum below its parts", t);
    cr_assert_gt(num(row, "sched_cpu_sum_pct"), 0, "%s: nobody ran", t);
    sched_in(row, "sched_invol_per_1k_msgs", 0, 1e9, false);
    sched_in(row, "sched_migrations_per_s", 0, 1e9, true);
    sched_in(row, "sched_pub_slice_us", 0, 60e6, false);
    sched_in(row, "sched_subs_slice_us", 0, 60e6, false);
  }
  cr_assert_geq(measured, 2, "shmbus rows measured");
  json_decref(root);

  out = run_ok(md);
  assert_has_all(out, md_want);
  /* The row in both tables: the main one and who ran where. */
  {
    const char *p = strstr(out, "| shmbus | uv | lossy | 2 | 64 | 0 |");
    cr_assert_not_null(p, "%s", out);
    cr_assert_not_null(strstr(p + 1, "| shmbus | uv | lossy | 2 | 64 | 0 |"), "%s", out);
  }
  free(out);
  out = run_ok(csv);
  assert_has_all(out, csv_want);
  free(out);
}

Test(bench, markdown_and_csv_reports) {
  const char *md[] = {"fanout",  "--subs", "1",      "--size", "64",
                      "--count", "500",    "--reps", "1",      NULL};
  const char *csv[] = {"latency", "--size", "64", "--count", "200", "--reps", "1", "--csv", NULL};
  const char *md_want[] = {"machine: ", "| transport | wait | mode | subs |",
                           "| shmbus | uv | lossy | 1 | 64 |", "all add up", NULL};
  const char *csv_want[] = {"\ntransport,wait,mode,size,round_trips,p50_us,",
                            "\n\"shmbus\",\"uv\",\"lossy\",\"64\",\"200", NULL};
  char *out = run_ok(md);
  assert_has_all(out, md_want);
  free(out);
  out = run_ok(csv);
  cr_assert_eq(strncmp(out, "# shmbus-bench latency; cpu: ", 29), 0, "%s", out);
  assert_has_all(out, csv_want);
  free(out);
}

/* The daemon's costs: publish with 0, 1 and 8 awake subscribers, and an
 * idle daemon holding 1,000 topics (what shmbus-bus-bench measured). */
Test(bench, publish_and_idle_reports) {
  const char *pub[] = {"publish", "--quick", "--rounds", "1", NULL};
  const char *idle[] = {"idle", "--quick", "--window-ms", "200", NULL};
  const char *pub_want[] = {"\n| 0 | ", "\n| 1 | ", "\n| 8 | ", NULL};
  const char *idle_want[] = {"| 1000 topics open | ", NULL};
  check_report(pub, pub_want);
  check_report(idle, idle_want);
}

/* What the CLI's watchers cost a publisher: every reader runs (the real
 * binaries), echo's counts add up (checked by the program: exit 1
 * otherwise), and each row says its ratio to the publisher alone. */
Test(bench, tools_report) {
  const char *tools[] = {"tools", "--quick", "--count", "20000", "--rate", "0,20k", NULL};
  const char *bad[] = {"tools", "--readers", "cat", NULL};
  const char *want[] = {"\n| flat out | (publisher alone) | ",
                        "\n| flat out | `echo -q` | ",
                        "\n| 20000/s | `echo -q --latency-us 0` | ",
                        "\n| 20000/s | `hz` | ",
                        "\n| 20000/s | `bw` | ",
                        NULL};
  char *out;
  int st;
  check_report(tools, want);
  st = run_bench(&out, bad);
  cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %d", st);
  free(out);
}

Test(bench, bad_arguments_exit_2) {
  const char *a1[] = {"fanout", "--wait", "sometimes", NULL};
  const char *a2[] = {"fanout", "--size", "8", NULL};
  const char *a3[] = {"nonsense", NULL};
  const char *a4[] = {"publish", "--window-ms", "10", NULL};
  const char *a5[] = {"idle", "--rounds", "2", NULL};
  const char *const *all[] = {a1, a2, a3, a4, a5};
  unsigned i;
  for (i = 0; i < 5; i++) {
    char *out;
    int st = run_bench(&out, all[i]);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "case %u: status %d", i, st);
    free(out);
  }
}

/* --plot draws a PNG with gnuplot; without gnuplot in $PATH the program
 * refuses before measuring anything (exit 2), never writes a fake. */
Test(bench, plot_png_or_clear_error) {
  char dir[] = "/tmp/shmbus-bench-test-XXXXXX", png[96];
  const char *args[] = {"latency", "--size",  "64",     "--count", "200", "--reps",
                        "1",       "--peers", "--plot", png,       NULL};
  unsigned char magic[8];
  bool have_gnuplot = system("command -v gnuplot >/dev/null 2>&1") == 0;
  char *out;
  FILE *f;
  int st;
  cr_assert_not_null(mkdtemp(dir));
  snprintf(png, sizeof(png), "%s/plot.png", dir);
  st = run_bench(&out, args);
  free(out);
  f = fopen(png, "rb");
  if (have_gnuplot) {
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %d", st);
    cr_assert_not_null(f, "no %s", png);
    cr_assert_eq(fread(magic, 1, 8, f), 8);
    cr_assert_eq(memcmp(magic, "\x89PNG\r\n\x1a\n", 8), 0, "not a PNG");
  } else {
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 2, "status %d", st);
    cr_assert_null(f, "a plot without gnuplot");
  }
  if (f != NULL)
    fclose(f);
  (void)unlink(png);
  (void)rmdir(dir);
}
