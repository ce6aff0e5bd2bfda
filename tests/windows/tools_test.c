/* tools_test: `shmbus.exe record`, `play` and `metrics` on Windows, under
 * Wine, with the real daemon (shmbusd.exe) on private buses:
 *   - record_play: `record --reliable --count` of a topic that `pub
 *     --count --size` fills with synthetic payloads; the file is read back
 *     here with the project's MCAP reader (cli/mcap.c: CRCs, summary,
 *     indexes) and every message checked (length, payload checksum,
 *     sequence, log time); then `play --rate 0` republishes it on a second
 *     bus to a reliable `echo`, which checks every payload again. With
 *     SHMBUS_WIN_ARTIFACTS set (scripts/windows.sh --test sets it), the
 *     recording is copied there for the Linux side's checks (@mcap/core);
 *   - killed_recorder: a recorder of a pattern (it subscribes to the topic
 *     when the daemon announces it) ended with TerminateProcess leaves a
 *     file that reads up to its last complete chunk, every message whole;
 *   - metrics: `metrics` prints the topic's counters as OpenMetrics;
 *     `metrics --textfile` writes them in the Prometheus format, and a
 *     second run replaces the file by a rename (a new file takes its name,
 *     no temporary file is left); `metrics --listen` answers one scrape
 *     over HTTP. The texts go to SHMBUS_WIN_ARTIFACTS too (promtool);
 *   - stop_event: a running `echo` stopped from this process through its
 *     named stop event (`Local\shmbus-cli-stop-<pid>`, what SIGTERM does on
 *     Linux) prints its summary (every message it printed counted) and
 *     exits 0; `hz` stopped right after its start (the stopper waits until
 *     the event exists) exits 0; a program that finds its stop event
 *     made by someone else refuses to run.
 * Every step waits on an event (a line on a pipe, a process's end, a
 * message), never on time. */
#include <winsock2.h>
#include <ws2tcpip.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <windows.h>

#include <shmbus/shmbus.h>

#include "mcap.h"
#include "synth.h"
#include "winproc.h"
#include "wintest.h"

#define REC_N 2000
#define REC_SIZE 64
#define KILL_N 500

/* The pid in "... started shmbusd (pid N) ...", or 0. */
static DWORD tools_autostart_pid(const char *line) {
  const char *p = strstr(line, "started shmbusd (pid ");
  return p != NULL ? (DWORD)strtoul(p + strlen("started shmbusd (pid "), NULL, 10) : 0;
}

/* Runs shmbus.exe with `args` to its end; all its output in `out`.
 * Returns its exit code. */
static long tools_run(const char *args, char *out, size_t cap) {
  struct winproc p;
  size_t n = 0;

  out[0] = '\0';
  if (!winproc_start(&p, "shmbus.exe", args, false))
    return -2;
  while (n + 1 < cap) {
    size_t k = winproc_read_line(&p, out + n, cap - n);
    if (k == 0)
      break;
    n += k;
  }
  return winproc_wait(&p);
}

/* True if the text ends with OpenMetrics' "# EOF" line (with a bare line
 * feed: the output is binary, not the C runtime's text mode). */
static bool len_ends_with_eof(const char *text) {
  size_t n = strlen(text);
  return n >= 6 && strcmp(text + n - 6, "# EOF\n") == 0 && strstr(text, "\r\n") == NULL;
}

/* The whole file `path` in a malloc'd buffer (NULL if it cannot be read). */
static void *tools_read_file(const char *path, size_t *len) {
  HANDLE f = CreateFileA(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE,
                         NULL, OPEN_EXISTING, 0, NULL);
  LARGE_INTEGER size;
  DWORD got = 0;
  char *buf = NULL;

  *len = 0;
  if (f == INVALID_HANDLE_VALUE)
    return NULL;
  if (GetFileSizeEx(f, &size) && size.QuadPart < (1 << 30) &&
      (buf = malloc((size_t)size.QuadPart + 1)) != NULL) {
    if (size.QuadPart == 0 ||
        (ReadFile(f, buf, (DWORD)size.QuadPart, &got, NULL) && got == (DWORD)size.QuadPart)) {
      buf[size.QuadPart] = '\0';
      *len = (size_t)size.QuadPart;
    } else {
      free(buf);
      buf = NULL;
    }
  }
  CloseHandle(f);
  return buf;
}

/* The file's identity (volume and index): a new file under the same name
 * has another. */
static bool tools_file_id(const char *path, unsigned long long *id) {
  BY_HANDLE_FILE_INFORMATION fi;
  HANDLE f = CreateFileA(path, 0, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                         OPEN_EXISTING, 0, NULL);
  bool ok;

  memset(&fi, 0, sizeof(fi));
  if (f == INVALID_HANDLE_VALUE)
    return false;
  ok = GetFileInformationByHandle(f, &fi);
  CloseHandle(f);
  *id = ((unsigned long long)fi.nFileIndexHigh << 32) | fi.nFileIndexLow;
  return ok;
}

/* Copies `path` to SHMBUS_WIN_ARTIFACTS\name when that is set. */
static void tools_keep(const char *path, const char *name) {
  char dir[MAX_PATH], to[2 * MAX_PATH];
  DWORD n = GetEnvironmentVariableA("SHMBUS_WIN_ARTIFACTS", dir, sizeof(dir));

  if (n == 0 || n >= sizeof(dir))
    return;
  snprintf(to, sizeof(to), "%s\\%s", dir, name);
  if (!CopyFileA(path, to, FALSE))
    wintest_note("could not keep %s as %s: error %lu", path, to, (unsigned long)GetLastError());
}

/* CLOCK_REALTIME now, in ns since the epoch. */
static unsigned long long tools_realtime_ns(void) {
  FILETIME ft;
  GetSystemTimePreciseAsFileTime(&ft);
  return ((((unsigned long long)ft.dwHighDateTime << 32) | ft.dwLowDateTime) -
          116444736000000000ull) *
         100u;
}

/* What the check of a recording found. */
struct tools_rec {
  unsigned long long t_lo, t_hi; /* log times must fall in here */
  const char *topic;
  uint64_t total;    /* the publisher's run: payloads carry it */
  uint64_t messages; /* seen */
  uint64_t bad;      /* messages that failed a check */
  uint32_t last_seq;
  uint64_t last_time;
  char why[256]; /* the first failure */
  bool channel_ok;
};

static int tools_on_channel(void *ctx, const struct mcap_channel *ch) {
  struct tools_rec *r = ctx;
  bool slots = false;

  for (size_t i = 0; i < ch->n_meta; i++)
    if (strcmp(ch->meta[i].key, "shmbus.slots") == 0)
      slots = true;
  if (strcmp(ch->topic, r->topic) == 0 && slots)
    r->channel_ok = true;
  return 0;
}

static int tools_on_message(void *ctx, const struct mcap_channel *ch,
                            const struct mcap_message *m) {
  struct tools_rec *r = ctx;
  struct synth_info si;
  const char *why = NULL;

  if (strcmp(ch->topic, r->topic) != 0)
    why = "another topic";
  else if (m->len != REC_SIZE)
    why = "a wrong length";
  else if (!synth_parse(m->data, m->len, &si) || !si.checksum_ok)
    why = "a bad payload";
  else if (si.seq != r->messages || si.total != r->total)
    why = "a payload out of order";
  else if (r->messages > 0 && m->sequence != r->last_seq + 1)
    why = "a gap in the bus's sequence numbers";
  else if (m->log_time < r->t_lo || m->log_time > r->t_hi || m->log_time < r->last_time ||
           m->publish_time != m->log_time)
    why = "a log time out of range";
  if (why != NULL && r->bad++ == 0)
    snprintf(r->why, sizeof(r->why), "message %llu: %s (len %zu, seq %u, log time %llu)",
             (unsigned long long)r->messages, why, m->len, m->sequence,
             (unsigned long long)m->log_time);
  r->last_seq = m->sequence;
  r->last_time = m->log_time;
  r->messages++;
  return 0;
}

/* Reads the recording `path` with cli/mcap.c and checks every message. */
static int tools_check_recording(const char *path, struct tools_rec *r,
                                 struct mcap_read_result *res) {
  struct mcap_read_cb cb = {tools_on_channel, tools_on_message, NULL};
  size_t len;
  void *buf = tools_read_file(path, &len);
  int rv;

  WT_CHECK(buf != NULL && len > 0, "read %s", path);
  rv = mcap_read(buf, len, &cb, r, res);
  free(buf);
  WT_CHECK(rv == 0, "mcap_read %s: %d %s", path, rv, res->error);
  WT_CHECK(r->channel_ok, "no channel \"%s\" with the topic's parameters", r->topic);
  WT_CHECK(r->bad == 0, "%llu bad messages, the first: %s", (unsigned long long)r->bad, r->why);
  return WINTEST_PASS;
}

static int test_record_play(void) {
  char dir_a[MAX_PATH], dir_b[MAX_PATH], file[2 * MAX_PATH], args[3 * MAX_PATH], line[1024];
  struct winproc rec, pub, echo, play;
  struct tools_rec r;
  struct mcap_read_result res;
  DWORD dpid;
  HANDLE daemon_b;
  long code;
  int rv;

  WT_CHECK(winproc_bus_dir_make(dir_a, sizeof(dir_a)), "bus directory");
  SetEnvironmentVariableA("SHMBUS_IDLE_EXIT", "0");
  snprintf(file, sizeof(file), "%s\\rec.mcap", dir_a);
  memset(&r, 0, sizeof(r));
  r.t_lo = tools_realtime_ns() - 60000000000ull;
  /* The recorder starts the daemon, says so, subscribes reliably; the
   * publisher waits for it, so the recorder has every message. */
  snprintf(args, sizeof(args), "record -o \"%s\" --reliable --count %d rec/t", file, REC_N);
  WT_CHECK(winproc_start(&rec, "shmbus.exe", args, false), "start record");
  winproc_read_line(&rec, line, sizeof(line));
  WT_CHECK(tools_autostart_pid(line) != 0, "record said: %s", line);
  snprintf(args, sizeof(args), "pub --wait-subs 1 --count %d --size %d rec/t", REC_N, REC_SIZE);
  WT_CHECK(winproc_start(&pub, "shmbus.exe", args, false), "start pub");
  winproc_read_line(&pub, line, sizeof(line));
  WT_CHECK(strncmp(line, "published 2000 waits ", 21) == 0, "pub said: %s", line);
  code = winproc_wait(&pub);
  WT_CHECK(code == 0, "pub exit %ld", code);
  winproc_read_line(&rec, line, sizeof(line));
  WT_CHECK(strstr(line, "recorded 2000 messages (128000 bytes) from 1 topics to ") != NULL &&
               strstr(line, ", lost 0") != NULL,
           "record said: %s", line);
  code = winproc_wait(&rec);
  WT_CHECK(code == 0, "record exit %ld", code);
  r.t_hi = tools_realtime_ns() + 60000000000ull;

  /* Every message, read back by the project's reader. */
  r.topic = "rec/t";
  r.total = REC_N;
  if ((rv = tools_check_recording(file, &r, &res)) != WINTEST_PASS)
    return rv;
  WT_CHECK(r.messages == REC_N && !res.truncated && res.summary_checked && res.channels == 1,
           "read %llu messages, truncated %d, summary checked %d, %llu channels",
           (unsigned long long)r.messages, res.truncated, res.summary_checked,
           (unsigned long long)res.channels);
  tools_keep(file, "record.mcap");

  /* Played on a second bus to a reliable echo, which checks every
   * payload's checksum and order. */
  WT_CHECK(winproc_bus_dir_make(dir_b, sizeof(dir_b)), "second bus directory");
  snprintf(args, sizeof(args), "echo --reliable --quiet --count %d rec/t", REC_N);
  WT_CHECK(winproc_start(&echo, "shmbus.exe", args, false), "start echo");
  winproc_read_line(&echo, line, sizeof(line));
  WT_CHECK((dpid = tools_autostart_pid(line)) != 0, "echo said: %s", line);
  WT_CHECK((daemon_b = OpenProcess(SYNCHRONIZE, FALSE, dpid)) != NULL, "open the daemon");
  snprintf(args, sizeof(args), "play --rate 0 --wait-subs 1 \"%s\"", file);
  WT_CHECK(winproc_start(&play, "shmbus.exe", args, false), "start play");
  winproc_read_line(&play, line, sizeof(line));
  WT_CHECK(strncmp(line, "played 2000 messages (128000 bytes) on 1 topics, waits ", 55) == 0,
           "play said: %s", line);
  code = winproc_wait(&play);
  WT_CHECK(code == 0, "play exit %ld", code);
  winproc_read_line(&echo, line, sizeof(line));
  WT_CHECK(strstr(line, "received 2000 lost 0 checksum errors 0") != NULL, "echo said: %s", line);
  code = winproc_wait(&echo);
  WT_CHECK(code == 0, "echo exit %ld", code);

  rv = winproc_daemon_stop(dir_b);
  WT_CHECK(rv == 0, "stop the second daemon: %s", shmbus_strerror(rv));
  WT_CHECK(WaitForSingleObject(daemon_b, WINPROC_LONG_MS) == WAIT_OBJECT_0, "the daemon ended");
  CloseHandle(daemon_b);
  winproc_bus_dir_remove(dir_b);
  rv = winproc_bus_end(dir_a);
  WT_CHECK(rv == 0, "stop the first daemon: %s", shmbus_strerror(rv));
  return WINTEST_PASS;
}

static int test_killed_recorder(void) {
  char dir[MAX_PATH], file[2 * MAX_PATH], args[3 * MAX_PATH], line[1024];
  struct winproc rec, pub;
  struct tools_rec r;
  struct mcap_read_result res;
  ULONGLONG deadline;
  long code;
  int rv;

  WT_CHECK(winproc_bus_dir_make(dir, sizeof(dir)), "bus directory");
  SetEnvironmentVariableA("SHMBUS_IDLE_EXIT", "0");
  snprintf(file, sizeof(file), "%s\\killed.mcap", dir);
  memset(&r, 0, sizeof(r));
  r.t_lo = tools_realtime_ns() - 60000000000ull;
  r.t_hi = r.t_lo + 3600000000000ull;
  r.topic = "rec/killed";
  r.total = KILL_N;
  /* A pattern: the recorder learns of the topic that pub creates from
   * the daemon (its pipe among the handles it waits on), subscribes, and
   * pub, which waits for a subscriber, starts then. */
  snprintf(args, sizeof(args), "record -o \"%s\" --reliable \"rec/*\"", file);
  WT_CHECK(winproc_start(&rec, "shmbus.exe", args, false), "start record");
  winproc_read_line(&rec, line, sizeof(line));
  WT_CHECK(tools_autostart_pid(line) != 0, "record said: %s", line);
  snprintf(args, sizeof(args), "pub --wait-subs 1 --count %d --size %d rec/killed", KILL_N,
           REC_SIZE);
  WT_CHECK(winproc_start(&pub, "shmbus.exe", args, false), "start pub");
  winproc_read_line(&pub, line, sizeof(line));
  WT_CHECK(strncmp(line, "published 500 waits ", 20) == 0, "pub said: %s", line);
  code = winproc_wait(&pub);
  WT_CHECK(code == 0, "pub exit %ld", code);
  /* The recorder writes its chunk within a second (RECORD_FLUSH_NS): the
   * file is read again each time the recorder's process is waited on
   * (the 50 ms bound is how often it looks, not the synchronisation)
   * until it holds all of them. */
  deadline = GetTickCount64() + WINPROC_LONG_MS;
  for (;;) {
    struct mcap_read_cb cb = {NULL, NULL, NULL};
    size_t len;
    void *buf = tools_read_file(file, &len);
    memset(&res, 0, sizeof(res));
    rv = buf != NULL ? mcap_read(buf, len, &cb, NULL, &res) : -ENOENT;
    free(buf);
    if (rv == 0 && res.messages == KILL_N)
      break;
    WT_CHECK(rv == 0 || rv == -ENOENT, "mcap_read of the live file: %d %s", rv, res.error);
    WT_CHECK(WaitForSingleObject(rec.process, 50) == WAIT_TIMEOUT, "the recorder ended on its own");
    WT_CHECK(GetTickCount64() < deadline, "the recorder wrote %llu of %d messages in a minute",
             (unsigned long long)res.messages, KILL_N);
  }
  WT_CHECK(TerminateProcess(rec.process, 9), "end the recorder");
  code = winproc_wait(&rec);
  WT_CHECK(code == 9, "record exit %ld", code);
  memset(&res, 0, sizeof(res));
  if ((rv = tools_check_recording(file, &r, &res)) != WINTEST_PASS)
    return rv;
  WT_CHECK(r.messages == KILL_N && res.truncated && !res.summary_checked,
           "read %llu messages, truncated %d, summary checked %d", (unsigned long long)r.messages,
           res.truncated, res.summary_checked);
  rv = winproc_bus_end(dir);
  WT_CHECK(rv == 0, "stop the daemon: %s", shmbus_strerror(rv));
  return WINTEST_PASS;
}

/* One GET /metrics on 127.0.0.1:port; the whole response into buf. */
static bool tools_http_get(unsigned port, char *buf, size_t cap) {
  static const char req[] =
      "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/openmetrics-text\r\n\r\n";
  struct sockaddr_in a;
  WSADATA wsa;
  SOCKET s;
  size_t n = 0;
  int k;

  if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0)
    return false;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((u_short)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if ((s = socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)) == INVALID_SOCKET)
    return false;
  if (connect(s, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      send(s, req, (int)sizeof(req) - 1, 0) != (int)sizeof(req) - 1) {
    closesocket(s);
    return false;
  }
  /* Connection: close: the response ends with the connection. */
  while (n + 1 < cap && (k = recv(s, buf + n, (int)(cap - 1 - n), 0)) > 0)
    n += (size_t)k;
  buf[n] = '\0';
  closesocket(s);
  WSACleanup();
  return n > 0;
}

static int test_metrics(void) {
  static char out[65536];
  char dir[MAX_PATH], file[2 * MAX_PATH], args[3 * MAX_PATH], pattern[3 * MAX_PATH], line[512];
  struct shmbus_sub_opts so;
  struct winproc srv;
  WIN32_FIND_DATAA fd;
  shmbus_bus *bus = NULL;
  shmbus_pub *pub = NULL;
  shmbus_sub *sub = NULL;
  unsigned long long id1, id2;
  const char *at;
  size_t len;
  char *text;
  HANDLE find;
  long code;
  int rv;

  WT_CHECK(winproc_bus_dir_make(dir, sizeof(dir)), "bus directory");
  SetEnvironmentVariableA("SHMBUS_IDLE_EXIT", "0");
  /* A topic with known counters: 7 messages, one subscriber. */
  rv = winproc_bus_open(&bus, dir, 1, "tools_test");
  WT_CHECK(rv == 0, "open the bus: %s", shmbus_strerror(rv));
  rv = shmbus_pub_open(bus, "met/t", NULL, &pub);
  WT_CHECK(rv == 0, "publisher: %s", shmbus_strerror(rv));
  memset(&so, 0, sizeof(so));
  rv = shmbus_sub_open(bus, "met/t", &so, &sub);
  WT_CHECK(rv == 0, "subscriber: %s", shmbus_strerror(rv));
  for (int i = 0; i < 7; i++) {
    rv = shmbus_pub_publish(pub, "m", 1);
    WT_CHECK(rv >= 0, "publish: %s", shmbus_strerror(rv));
  }

  /* Printed: OpenMetrics. */
  code = tools_run("metrics", out, sizeof(out));
  WT_CHECK(code == 0, "metrics exit %ld: %s", code, out);
  WT_CHECK(strstr(out, "\nshmbus_up 1\n") != NULL &&
               strstr(out, "\nshmbus_topic_published_total{topic=\"met/t\"} 7\n") != NULL &&
               strstr(out, "\nshmbus_topic_subscribers{topic=\"met/t\"} 1\n") != NULL &&
               strstr(out, "\nshmbus_topic_publishers{topic=\"met/t\"} 1\n") != NULL &&
               strstr(out, "# TYPE shmbus_topic_published counter\n") != NULL &&
               len_ends_with_eof(out),
           "metrics printed:\n%s", out);
  if (strstr(out, "shmbus_daemon_resident_memory_bytes ") != NULL &&
      strstr(out, "shmbus_daemon_open_fds ") != NULL)
    wintest_note("the daemon's working set and handle count are there");
  else
    wintest_note("no working set or handle count of the daemon (not readable here)");
  /* For promtool on the Linux side. */
  snprintf(file, sizeof(file), "%s\\metrics.om", dir);
  {
    HANDLE f = CreateFileA(file, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
    DWORD put = 0;
    WT_CHECK(f != INVALID_HANDLE_VALUE && WriteFile(f, out, (DWORD)strlen(out), &put, NULL),
             "write %s", file);
    CloseHandle(f);
    tools_keep(file, "metrics.om");
  }

  /* --textfile: the Prometheus format, then replaced by a new file. */
  snprintf(file, sizeof(file), "%s\\shmbus.prom", dir);
  snprintf(args, sizeof(args), "metrics --textfile \"%s\"", file);
  code = tools_run(args, out, sizeof(out));
  WT_CHECK(code == 0, "metrics --textfile exit %ld: %s", code, out);
  WT_CHECK((text = tools_read_file(file, &len)) != NULL, "read %s", file);
  rv = strstr(text, "\nshmbus_topic_published_total{topic=\"met/t\"} 7\n") != NULL &&
       strstr(text, "# TYPE shmbus_topic_published_total counter\n") != NULL &&
       strstr(text, "# EOF") == NULL;
  free(text);
  WT_CHECK(rv, "the textfile holds the wrong text");
  WT_CHECK(tools_file_id(file, &id1), "the textfile's identity");
  tools_keep(file, "metrics.prom");
  for (int i = 0; i < 5; i++) {
    rv = shmbus_pub_publish(pub, "m", 1);
    WT_CHECK(rv >= 0, "publish: %s", shmbus_strerror(rv));
  }
  code = tools_run(args, out, sizeof(out));
  WT_CHECK(code == 0, "metrics --textfile again exit %ld: %s", code, out);
  WT_CHECK((text = tools_read_file(file, &len)) != NULL, "read %s again", file);
  rv = strstr(text, "\nshmbus_topic_published_total{topic=\"met/t\"} 12\n") != NULL;
  free(text);
  WT_CHECK(rv, "the textfile was not rewritten");
  WT_CHECK(tools_file_id(file, &id2) && id2 != id1,
           "the textfile was rewritten in place (identity %llu, before %llu), not replaced", id2,
           id1);
  snprintf(pattern, sizeof(pattern), "%s.tmp*", file);
  find = FindFirstFileA(pattern, &fd);
  WT_CHECK(find == INVALID_HANDLE_VALUE, "a temporary file was left: %s", fd.cFileName);

  /* --listen: one scrape, then it ends (--count 1). */
  WT_CHECK(winproc_start(&srv, "shmbus.exe", "metrics --listen 127.0.0.1:0 --count 1", false),
           "start metrics --listen");
  winproc_read_line(&srv, line, sizeof(line));
  WT_CHECK((at = strstr(line, "listening on http://127.0.0.1:")) != NULL, "metrics said: %s", line);
  WT_CHECK(
      tools_http_get((unsigned)strtoul(at + strlen("listening on http://127.0.0.1:"), NULL, 10),
                     out, sizeof(out)),
      "GET /metrics");
  WT_CHECK(strncmp(out, "HTTP/1.1 200", 12) == 0 &&
               strstr(out, "application/openmetrics-text") != NULL &&
               strstr(out, "\nshmbus_topic_published_total{topic=\"met/t\"} 12\n") != NULL &&
               strstr(out, "# EOF\n") != NULL,
           "the scrape:\n%s", out);
  code = winproc_wait(&srv);
  WT_CHECK(code == 0, "metrics --listen exit %ld", code);

  shmbus_sub_close(sub);
  shmbus_pub_close(pub);
  shmbus_bus_close(bus);
  rv = winproc_bus_end(dir);
  WT_CHECK(rv == 0, "stop the daemon: %s", shmbus_strerror(rv));
  return WINTEST_PASS;
}

/* Stops a running shmbus.exe as docs/windows.md tells another process to:
 * opens its event `Local\shmbus-cli-stop-<pid>` and sets it. The name is
 * written here on its own (not taken from the CLI's code), so that the
 * test sees a change of it. Until the program has made the event (at its
 * start, before it opens the bus) the open fails with
 * ERROR_FILE_NOT_FOUND: then the stopper waits for the process's end for
 * 10 ms and looks again, so a stop sent right after the start is not
 * lost. Returns true once set, false if the process ended first or on a
 * failure. */
static bool tools_stop(HANDLE process) {
  char name[64];
  DWORD t0 = GetTickCount();

  snprintf(name, sizeof(name), "Local\\shmbus-cli-stop-%lu", (unsigned long)GetProcessId(process));
  for (;;) {
    HANDLE ev = OpenEventA(EVENT_MODIFY_STATE, FALSE, name);
    if (ev != NULL) {
      BOOL ok = SetEvent(ev);
      CloseHandle(ev);
      return ok != 0;
    }
    if (GetLastError() != ERROR_FILE_NOT_FOUND) {
      wintest_note("OpenEvent %s: error %lu", name, (unsigned long)GetLastError());
      return false;
    }
    if (WaitForSingleObject(process, 10) != WAIT_TIMEOUT || GetTickCount() - t0 > WINPROC_LONG_MS)
      return false;
  }
}

static int test_stop_event(void) {
  char dir[MAX_PATH], line[1024], name[64], path[MAX_PATH + 64], cmd[2 * MAX_PATH];
  struct winproc echo, hz;
  shmbus_bus *bus = NULL;
  shmbus_pub *pub = NULL;
  SECURITY_ATTRIBUTES inherit = {sizeof(inherit), NULL, TRUE};
  PROCESS_INFORMATION pi;
  STARTUPINFOA si;
  HANDLE squat, out_r, out_w, nul;
  int seen = 0, rv;
  bool summary = false;
  long ec;

  WT_CHECK(winproc_bus_dir_make(dir, sizeof(dir)), "bus directory");
  SetEnvironmentVariableA("SHMBUS_IDLE_EXIT", "0");
  rv = winproc_bus_open(&bus, dir, 1, "tools_test");
  WT_CHECK(rv == 0, "open the bus: %s", shmbus_strerror(rv));
  rv = shmbus_pub_open(bus, "stop/t", NULL, &pub);
  WT_CHECK(rv == 0, "publisher: %s", shmbus_strerror(rv));

  /* echo prints 100 messages (published once it has subscribed), then is
   * stopped: its summary counts them all, and it exits 0. */
  WT_CHECK(winproc_start(&echo, "shmbus.exe", "echo stop/t", false), "start echo");
  rv = shmbus_pub_wait_subs(pub, 1, WINPROC_LONG_MS);
  WT_CHECK(rv >= 0, "echo never subscribed: %s", shmbus_strerror(rv));
  for (int i = 0; i < 100; i++) {
    char msg[32];
    int n = snprintf(msg, sizeof(msg), "msg-%d", i);
    rv = shmbus_pub_publish(pub, msg, (size_t)n);
    WT_CHECK(rv >= 0, "publish: %s", shmbus_strerror(rv));
  }
  while (seen < 100 && winproc_read_line(&echo, line, sizeof(line)) > 0) {
    char want[32];
    snprintf(want, sizeof(want), "msg-%d", seen);
    line[strcspn(line, "\r\n")] = '\0';
    WT_CHECK(strcmp(line, want) == 0, "echo printed \"%s\", not %s", line, want);
    seen++;
  }
  WT_CHECK(seen == 100, "echo printed %d messages", seen);
  WT_CHECK(tools_stop(echo.process), "stop echo");
  while (winproc_read_line(&echo, line, sizeof(line)) > 0)
    if (strstr(line, "received 100 lost 0 checksum errors 0") != NULL)
      summary = true;
  ec = winproc_wait(&echo);
  WT_CHECK(summary, "echo printed no summary \"received 100 lost 0 checksum errors 0\"");
  WT_CHECK(ec == 0, "echo exit %ld", ec);

  /* hz stopped at once: the stopper waits until it has made its event. */
  WT_CHECK(winproc_start(&hz, "shmbus.exe", "hz stop/t", false), "start hz");
  WT_CHECK(tools_stop(hz.process), "stop hz");
  while (winproc_read_line(&hz, line, sizeof(line)) > 0)
    WT_CHECK(strstr(line, "shmbus hz:") == NULL, "hz said: %s", line);
  ec = winproc_wait(&hz);
  WT_CHECK(ec == 0, "hz exit %ld", ec);

  /* A stop event that exists before the program makes it is someone
   * else's: made here for a program started suspended, it refuses to run. */
  snprintf(path, sizeof(path), "%s\\shmbus.exe", winproc_bin_dir);
  snprintf(cmd, sizeof(cmd), "\"%s\" echo stop/t", path);
  WT_CHECK(CreatePipe(&out_r, &out_w, &inherit, 0), "pipe");
  SetHandleInformation(out_r, HANDLE_FLAG_INHERIT, 0);
  nul = CreateFileA("NUL", GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, &inherit,
                    OPEN_EXISTING, 0, NULL);
  memset(&si, 0, sizeof(si));
  si.cb = sizeof(si);
  si.dwFlags = STARTF_USESTDHANDLES;
  si.hStdInput = nul;
  si.hStdOutput = out_w;
  si.hStdError = out_w;
  WT_CHECK(CreateProcessA(path, cmd, NULL, NULL, TRUE, CREATE_SUSPENDED, NULL, NULL, &si, &pi),
           "start echo suspended: error %lu", (unsigned long)GetLastError());
  CloseHandle(out_w);
  CloseHandle(nul);
  snprintf(name, sizeof(name), "Local\\shmbus-cli-stop-%lu", (unsigned long)pi.dwProcessId);
  squat = CreateEventA(NULL, TRUE, FALSE, name);
  if (squat == NULL)
    TerminateProcess(pi.hProcess, 9);
  ResumeThread(pi.hThread);
  CloseHandle(pi.hThread);
  WT_CHECK(squat != NULL, "CreateEvent %s: error %lu", name, (unsigned long)GetLastError());
  {
    struct winproc sq = {pi.hProcess, NULL, out_r};
    bool said = false;
    while (winproc_read_line(&sq, line, sizeof(line)) > 0)
      if (strstr(line, "exists already (another process made it): not starting") != NULL)
        said = true;
    ec = winproc_wait(&sq);
    CloseHandle(squat);
    WT_CHECK(said, "no refusal said");
    WT_CHECK(ec == 1, "echo with a squatted stop event: exit %ld", ec);
  }
  shmbus_pub_close(pub);
  shmbus_bus_close(bus);
  rv = winproc_bus_end(dir);
  WT_CHECK(rv == 0, "stop the daemon: %s", shmbus_strerror(rv));
  return WINTEST_PASS;
}

static const struct wintest tests[] = {
    {"record_play", test_record_play},
    {"killed_recorder", test_killed_recorder},
    {"metrics", test_metrics},
    {"stop_event", test_stop_event},
};

int main(int argc, char **argv) {
  winproc_find_bin_dir();
  return wintest_main(argc, argv, tests, sizeof(tests) / sizeof(tests[0]), NULL);
}
