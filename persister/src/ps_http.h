/* ps_http.h: the persister's tiny HTTP listener for GET /metrics (CHAT_METRICS_LISTEN). One
 * thread serves one request at a time: requests are at most PS_HTTP_REQUEST_MAX bytes of
 * header, a connection gets PS_HTTP_TIMEOUT_MS to send its request and take the answer, then it
 * is closed (Connection: close). GET /metrics answers page(); other paths 404, other methods
 * 405. The thread has the signal mask of its creator (the persister blocks its signals first).
 * ps_http_start/stop from the main thread; page() runs on the listener's thread. */
#ifndef PS_HTTP_H
#define PS_HTTP_H

#include <stddef.h>

#define PS_HTTP_REQUEST_MAX 4096
#define PS_HTTP_TIMEOUT_MS 2000

typedef struct ps_http ps_http;

/* Fills *body (malloc'd, *len bytes; freed by the listener) or returns a negative errno. */
typedef int (*ps_http_page_fn)(void *arg, char **body, size_t *len);

/* "host:port" or "[v6]:port" into host and port. Returns 0 or -EINVAL. */
int ps_http_parse_listen(const char *addr, char *host, size_t hostlen, char *port, size_t portlen);

/* Binds addr (port 0: any free port) and starts the thread. Returns 0 or a negative errno
 * with err. */
int ps_http_start(ps_http **out, const char *addr, ps_http_page_fn page, void *arg, char *err,
                  size_t errlen);
/* The bound port. */
int ps_http_port(const ps_http *h);
/* Stops the thread (within about 250 ms plus a request under way) and frees. NULL is a no-op. */
void ps_http_stop(ps_http *h);

#endif
