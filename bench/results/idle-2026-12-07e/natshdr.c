/* (bench/results: the program that measured natshdr.txt, as it ran, formatted with the
 * project's .clang-format; built with gcc -O2 natshdr.c -lnats.) */
/* Plain NATS, 256 B, with and without the bridge's header block: how much the headers cost the
 * server. usage: natshdr URL COUNT HDR(0|1) SERVERPID */
#include <nats/nats.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <sys/socket.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}
static long cpu_ticks(int pid) {
  char p[64], b[2048];
  snprintf(p, sizeof p, "/proc/%d/stat", pid);
  FILE *f = fopen(p, "r");
  if (!f)
    return -1;
  size_t n = fread(b, 1, sizeof b - 1, f);
  fclose(f);
  b[n] = 0;
  char *s = strrchr(b, ')') + 2;
  long v[20];
  int i = 0;
  char *tok = strtok(s, " ");
  while (tok && i < 15) {
    v[i++] = atol(tok);
    tok = strtok(NULL, " ");
  }
  return v[11] + v[12];
}
int main(int argc, char **argv) {
  const char *url = argv[1];
  long count = atol(argv[2]);
  int hdr = atoi(argv[3]);
  int spid = atoi(argv[4]);
  int pfd[2];
  if (pipe(pfd))
    return 1;
  pid_t c = fork();
  if (c == 0) {
    natsConnection *nc;
    natsSubscription *sub;
    natsMsg *m;
    long got = 0;
    double t0 = 0;
    if (natsConnection_ConnectTo(&nc, url) != NATS_OK)
      return 2;
    natsConnection_SubscribeSync(&sub, nc, "hdr.test");
    natsSubscription_SetPendingLimits(sub, -1, -1);
    natsConnection_Flush(nc);
    (void)!write(pfd[1], "r", 1);
    while (got < count) {
      natsStatus s = natsSubscription_NextMsg(&m, sub, 3000);
      if (s == NATS_TIMEOUT)
        break;
      if (s != NATS_OK)
        continue;
      if (got == 0)
        t0 = now();
      got++;
      natsMsg_Destroy(m);
    }
    double t1 = now();
    printf("received %ld in %.3f s: %.0f msg/s\n", got, t1 - t0, got / (t1 - t0));
    natsConnection_Destroy(nc);
    return 0;
  }
  char r;
  (void)!read(pfd[0], &r, 1);
  natsConnection *nc;
  char data[256];
  memset(data, 'x', sizeof data);
  if (natsConnection_ConnectTo(&nc, url) != NATS_OK)
    return 2;
  if (hdr >= 3) { /* raw: a prebuilt buffer of PUB (4) or HPUB (3) lines, written flat out */
    int port = atoi(strrchr(url, ':') + 1), fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (void *)&sa, sizeof sa))
      return 3;
    char info[4096];
    (void)!read(fd, info, sizeof info);
    const char *con = "CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true}\r\n";
    (void)!write(fd, con, strlen(con));
    const char *h =
        "NATS/1.0\r\nShmbus-Origin: bench-a\r\nShmbus-Topic: bench/bridge/2\r\nShmbus-Seq: "
        "1234567\r\nShmbus-Time: 1765000000000000000\r\n\r\n";
    char one[1024];
    int n;
    if (hdr == 3)
      n = snprintf(one, sizeof one, "HPUB hdr.test %zu %zu\r\n%s", strlen(h), strlen(h) + 256, h);
    else
      n = snprintf(one, sizeof one, "PUB hdr.test 256\r\n");
    memcpy(one + n, data, 256);
    n += 256;
    memcpy(one + n, "\r\n", 2);
    n += 2;
    long per = 4096;
    char *buf = malloc((size_t)n * per);
    for (long i = 0; i < per; i++)
      memcpy(buf + i * n, one, n);
    long c0 = cpu_ticks(spid);
    double t0 = now();
    for (long sent = 0; sent < count; sent += per) {
      size_t len = (size_t)n * (size_t)(count - sent < per ? count - sent : per), off = 0;
      while (off < len) {
        ssize_t w = write(fd, buf + off, len - off);
        if (w <= 0)
          return 4;
        off += (size_t)w;
      }
    }
    double t1 = now();
    int st;
    waitpid(c, &st, 0);
    long c1 = cpu_ticks(spid);
    printf("raw hdr=%d (%d B/msg) written %ld in %.3f s; server CPU %.2f s = %.2f us/msg\n",
           hdr == 3, n, count, t1 - t0, (c1 - c0) / 100.0, (c1 - c0) / 100.0 * 1e6 / count);
    return 0;
  }
  natsMsg *one = NULL;
  if (hdr == 2) {
    natsMsg_Create(&one, "hdr.test", NULL, data, sizeof data);
    natsMsgHeader_Set(one, "Shmbus-Origin", "bench-a");
    natsMsgHeader_Set(one, "Shmbus-Topic", "bench/bridge/2");
    natsMsgHeader_Set(one, "Shmbus-Seq", "1234567");
    natsMsgHeader_Set(one, "Shmbus-Time", "1765000000000000000");
  }
  long c0 = cpu_ticks(spid);
  double t0 = now();
  for (long i = 0; i < count; i++) {
    if (!hdr) {
      natsConnection_Publish(nc, "hdr.test", data, sizeof data);
      continue;
    }
    if (hdr == 2) {
      natsConnection_PublishMsg(nc, one);
      continue;
    }
    natsMsg *m;
    char seq[24], ts[24];
    natsMsg_Create(&m, "hdr.test", NULL, data, sizeof data);
    snprintf(seq, sizeof seq, "%ld", i + 1000000);
    snprintf(ts, sizeof ts, "%ld", 1765000000000000000L + i);
    natsMsgHeader_Set(m, "Shmbus-Origin", "bench-a");
    natsMsgHeader_Set(m, "Shmbus-Topic", "bench/bridge/2");
    natsMsgHeader_Set(m, "Shmbus-Seq", seq);
    natsMsgHeader_Set(m, "Shmbus-Time", ts);
    natsConnection_PublishMsg(nc, m);
    natsMsg_Destroy(m);
  }
  natsConnection_Flush(nc);
  double t1 = now();
  int st;
  waitpid(c, &st, 0);
  double t2 = now();
  long c1 = cpu_ticks(spid);
  printf("hdr=%d published %ld in %.3f s (%.0f/s); server CPU %.2f s = %.2f us/msg\n", hdr, count,
         t1 - t0, count / (t1 - t0), (c1 - c0) / 100.0, (c1 - c0) / 100.0 * 1e6 / count);
  (void)t2;
  natsConnection_Destroy(nc);
  return 0;
}
