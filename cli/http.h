/* http: a minimal HTTP/1.1 server on a libuv loop, for `shmbus metrics
 * --listen` (Prometheus scrapes it). It answers each request on its own
 * connection and closes it (Connection: close); requests are GET and HEAD
 * of a path, nothing else.
 *
 * Everything a client sends is untrusted, and clients may be slow or
 * hostile: the request head may have at most HTTP_MAX_HEAD bytes (431
 * otherwise), a connection lives at most HTTP_TIMEOUT_MS from accept to
 * the end of the response (slow readers and writers are cut off), at most
 * HTTP_MAX_CONNS connections are served at once (more are accepted and
 * closed at once, so the kernel's queue does not fill), and a body is
 * never read.
 *
 * Thread-safety: the loop's thread only. */
#ifndef SHMBUS_CLI_HTTP_H
#define SHMBUS_CLI_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#define HTTP_MAX_HEAD 8192u
#define HTTP_TIMEOUT_MS 10000u
#define HTTP_MAX_CONNS 32u

/* What a handler answers: a status, a content type and a body (malloc'd;
 * the server frees it). */
struct http_reply {
  int status;               /* 200, 404, ... */
  const char *content_type; /* static */
  char *body;
  size_t len;
};

/* Called for each request. `accept` is the Accept header ("" without
 * one). Must fill *r (status and content type; body may be NULL). */
typedef void (*http_handler)(void *arg, const char *method, const char *path, const char *accept,
                             struct http_reply *r);

struct http_server;

/* Parses "HOST:PORT", "[V6]:PORT", ":PORT" or "PORT" (no host: the IPv4
 * loopback) into *addr. HOST must be a numeric address or "localhost".
 * Returns 0 or -EINVAL. */
int http_parse_listen(const char *spec, struct sockaddr_storage *addr);

/* Listens on `addr` and serves requests with `fn`. Returns 0 with *out, or
 * a negative libuv code. */
int http_listen(uv_loop_t *loop, const struct sockaddr *addr, http_handler fn, void *arg,
                struct http_server **out);

/* The address it listens on (the port is the real one after port 0), as
 * "HOST:PORT" ("[V6]:PORT"), into buf. */
void http_address(const struct http_server *s, char *buf, size_t cap);

/* Stops listening and closes every connection that has not been answered
 * yet (from a handler too: its own response is still written); the memory
 * goes when the last connection and the listener are closed. NULL is a
 * no-op. */
void http_close(struct http_server *s);

#endif /* SHMBUS_CLI_HTTP_H */
