/* http: a minimal HTTP server for the metrics endpoint. See http.h. */
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct http_conn {
  uv_tcp_t tcp; /* data: the connection */
  uv_timer_t timer;
  uv_write_t wreq;
  struct http_server *srv;
  struct http_conn *prev;
  struct http_conn *next;
  unsigned closing; /* handles still to close */
  bool answered;
  size_t len;
  char *out; /* the response being written */
  char head[HTTP_MAX_HEAD];
};

struct http_server {
  uv_tcp_t listener;
  uv_loop_t *loop;
  http_handler fn;
  void *arg;
  struct http_conn *conns;
  size_t nconns;
  bool closing;
  bool listener_closed;
};

static void http_server_maybe_free(struct http_server *s) {
  if (s->closing && s->listener_closed && s->nconns == 0)
    free(s);
}

int http_parse_listen(const char *spec, struct sockaddr_storage *addr) {
  char host[64] = "127.0.0.1";
  const char *port = spec;
  const char *colon;
  char *end;
  unsigned long p;

  memset(addr, 0, sizeof(*addr));
  if (spec[0] == '[') {
    const char *close = strchr(spec, ']');
    if (close == NULL || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof(host))
      return -EINVAL;
    memcpy(host, spec + 1, (size_t)(close - spec - 1));
    host[close - spec - 1] = '\0';
    port = close + 2;
  } else if ((colon = strrchr(spec, ':')) != NULL) {
    if (colon != spec) {
      if ((size_t)(colon - spec) >= sizeof(host))
        return -EINVAL;
      memcpy(host, spec, (size_t)(colon - spec));
      host[colon - spec] = '\0';
    }
    port = colon + 1;
  }
  if (strcmp(host, "localhost") == 0)
    strcpy(host, "127.0.0.1");
  errno = 0;
  p = strtoul(port, &end, 10);
  if (*port == '\0' || *end != '\0' || errno != 0 || p > 65535 || !isdigit((unsigned char)*port))
    return -EINVAL;
  if (uv_ip4_addr(host, (int)p, (struct sockaddr_in *)addr) == 0)
    return 0;
  if (uv_ip6_addr(host, (int)p, (struct sockaddr_in6 *)addr) == 0)
    return 0;
  return -EINVAL;
}

static const char *http_reason(int status) {
  switch (status) {
  case 200:
    return "OK";
  case 400:
    return "Bad Request";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 431:
    return "Request Header Fields Too Large";
  case 503:
    return "Service Unavailable";
  default:
    return "Internal Server Error";
  }
}

/* ---- connections ---------------------------------------------------------- */

static void http_conn_closed(uv_handle_t *h) {
  struct http_conn *c = h->data;

  if (--c->closing > 0)
    return;
  free(c->out);
  free(c);
}

static void http_conn_close(struct http_conn *c) {
  struct http_server *s = c->srv;

  if (c->closing > 0)
    return;
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    s->conns = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  s->nconns--;
  c->closing = 2;
  uv_close((uv_handle_t *)&c->tcp, http_conn_closed);
  uv_close((uv_handle_t *)&c->timer, http_conn_closed);
  http_server_maybe_free(s);
}

static void http_on_timeout(uv_timer_t *t) {
  http_conn_close(t->data);
}

static void http_on_written(uv_write_t *w, int status) {
  (void)status;
  http_conn_close(w->data);
}

/* Sends the response and closes once it is written. */
static void http_respond(struct http_conn *c, bool head_only, struct http_reply *r) {
  char hdr[512];
  int n;
  uv_buf_t b;

  c->answered = true;
  (void)uv_read_stop((uv_stream_t *)&c->tcp);
  n = snprintf(hdr, sizeof(hdr),
               "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
               "Connection: close\r\n\r\n",
               r->status, http_reason(r->status),
               r->content_type != NULL ? r->content_type : "text/plain; charset=utf-8", r->len,
               r->status == 405 ? "Allow: GET, HEAD\r\n" : "");
  /* One buffer: the header, then the body, owned by the connection. */
  c->out = malloc((size_t)n + (head_only ? 0 : r->len));
  if (c->out == NULL) {
    free(r->body);
    http_conn_close(c);
    return;
  }
  memcpy(c->out, hdr, (size_t)n);
  if (!head_only && r->len > 0)
    memcpy(c->out + n, r->body, r->len);
  b = uv_buf_init(c->out, (unsigned)((size_t)n + (head_only ? 0 : r->len)));
  free(r->body);
  c->wreq.data = c;
  if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, http_on_written) < 0)
    http_conn_close(c);
}

static void http_simple(struct http_conn *c, int status) {
  struct http_reply r = {status, "text/plain; charset=utf-8", NULL, 0};
  const char *text = http_reason(status);

  if ((r.body = malloc(strlen(text) + 2)) != NULL) {
    r.len = (size_t)sprintf(r.body, "%s\n", text);
  }
  http_respond(c, false, &r);
}

/* The value of header `name` (lower case, with ':') in the head, trimmed,
 * into out (truncated); "" without one. */
static void http_header(const char *head, const char *name, char *out, size_t cap) {
  const char *line = strstr(head, "\n");
  size_t nl = strlen(name);

  out[0] = '\0';
  while (line != NULL) {
    const char *p = line + 1;
    size_t i;
    for (i = 0; i < nl && p[i] != '\0' && tolower((unsigned char)p[i]) == name[i]; i++)
      ;
    if (i == nl) {
      size_t o = 0;
      p += nl;
      while (*p == ' ' || *p == '\t')
        p++;
      while (*p != '\0' && *p != '\r' && *p != '\n' && o + 1 < cap)
        out[o++] = *p++;
      out[o] = '\0';
      return;
    }
    line = strstr(p, "\n");
  }
}

/* A whole head arrived: parse the request line and answer. */
static void http_handle(struct http_conn *c) {
  char method[17], path[1024], version[16], accept[512];
  struct http_reply r = {500, NULL, NULL, 0};
  char *q;
  int n = 0;

  /* "METHOD SP PATH SP HTTP/1.x" and nothing else on the line. */
  if (sscanf(c->head, "%16[A-Z] %1023[^ \r\n] %15[^ \r\n]%n", method, path, version, &n) != 3 ||
      (c->head[n] != '\r' && c->head[n] != '\n') || path[0] != '/' ||
      strncmp(version, "HTTP/1.", 7) != 0) {
    http_simple(c, 400);
    return;
  }
  if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
    http_simple(c, 405);
    return;
  }
  if ((q = strchr(path, '?')) != NULL)
    *q = '\0';
  http_header(c->head, "accept:", accept, sizeof(accept));
  /* Answered from here on: an http_close from the handler lets this
   * response be written. */
  c->answered = true;
  (void)uv_read_stop((uv_stream_t *)&c->tcp);
  c->srv->fn(c->srv->arg, method, path, accept, &r);
  http_respond(c, strcmp(method, "HEAD") == 0, &r);
}

static void http_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct http_conn *c = h->data;

  (void)suggested;
  /* Room for what is left, keeping one byte for a NUL. */
  *buf = uv_buf_init(c->head + c->len, (unsigned)(sizeof(c->head) - 1 - c->len));
}

static void http_on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  struct http_conn *c = st->data;

  (void)buf;
  if (c->answered || c->closing > 0 || nread == 0)
    return;
  if (nread < 0) {
    if (nread == UV_ENOBUFS)
      http_simple(c, 431);
    else
      http_conn_close(c); /* gone before it asked */
    return;
  }
  c->len += (size_t)nread;
  c->head[c->len] = '\0';
  if (memchr(c->head, '\0', c->len) != NULL)
    http_simple(c, 400); /* a NUL inside the head */
  else if (strstr(c->head, "\r\n\r\n") != NULL || strstr(c->head, "\n\n") != NULL)
    http_handle(c);
  else if (c->len >= sizeof(c->head) - 1)
    http_simple(c, 431);
}

static void http_refused_closed(uv_handle_t *h) {
  free(h);
}

static void http_on_connection(uv_stream_t *l, int status) {
  struct http_server *s = l->data;
  struct http_conn *c;

  if (status < 0 || s->closing)
    return;
  if (s->nconns >= HTTP_MAX_CONNS || (c = calloc(1, sizeof(*c))) == NULL) {
    /* Too many at once: take it off the queue and close it. */
    uv_tcp_t *t = malloc(sizeof(*t));
    if (t == NULL || uv_tcp_init(s->loop, t) < 0) {
      free(t);
      return;
    }
    (void)uv_accept(l, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, http_refused_closed);
    return;
  }
  c->srv = s;
  (void)uv_tcp_init(s->loop, &c->tcp);
  (void)uv_timer_init(s->loop, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  c->next = s->conns;
  if (s->conns != NULL)
    s->conns->prev = c;
  s->conns = c;
  s->nconns++;
  if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0 ||
      uv_timer_start(&c->timer, http_on_timeout, HTTP_TIMEOUT_MS, 0) < 0 ||
      uv_read_start((uv_stream_t *)&c->tcp, http_alloc, http_on_read) < 0)
    http_conn_close(c);
}

/* ---- the server ------------------------------------------------------------ */

static void http_server_closed(uv_handle_t *h) {
  struct http_server *s = h->data;

  s->listener_closed = true;
  http_server_maybe_free(s);
}

int http_listen(uv_loop_t *loop, const struct sockaddr *addr, http_handler fn, void *arg,
                struct http_server **out) {
  struct http_server *s = calloc(1, sizeof(*s));
  int rv;

  if (s == NULL)
    return UV_ENOMEM;
  s->loop = loop;
  s->fn = fn;
  s->arg = arg;
  if ((rv = uv_tcp_init(loop, &s->listener)) < 0) {
    free(s);
    return rv;
  }
  s->listener.data = s;
  if ((rv = uv_tcp_bind(&s->listener, addr, 0)) < 0 ||
      (rv = uv_listen((uv_stream_t *)&s->listener, 64, http_on_connection)) < 0) {
    s->closing = true;
    uv_close((uv_handle_t *)&s->listener, http_server_closed);
    return rv;
  }
  *out = s;
  return 0;
}

void http_address(const struct http_server *s, char *buf, size_t cap) {
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  char ip[64] = "?";
  int port = 0;

  if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len) == 0) {
    if (ss.ss_family == AF_INET6) {
      (void)uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
      port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
      snprintf(buf, cap, "[%s]:%d", ip, port);
      return;
    }
    (void)uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
    port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  }
  snprintf(buf, cap, "%s:%d", ip, port);
}

void http_close(struct http_server *s) {
  struct http_conn *c;

  if (s == NULL || s->closing)
    return;
  s->closing = true;
  /* Connections being answered finish their response; the others go. */
  for (c = s->conns; c != NULL;) {
    struct http_conn *next = c->next;
    if (!c->answered)
      http_conn_close(c);
    c = next;
  }
  uv_close((uv_handle_t *)&s->listener, http_server_closed);
}
