/* test_ps_http.c: the persister's metrics listener over a real loopback socket: GET /metrics
 * answers the page with Content-Length, other paths 404, other methods 405, garbage 400, an
 * over-long request 431, a silent client is dropped after the timeout without blocking the next
 * one; and the listen address parser. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "ps_http.h"

static int pages;

static int page(void *arg, char **body, size_t *len)
{
    (void)arg;
    pages++;
    *body = strdup("# TYPE x counter\nx 1\n");
    *len = strlen(*body);
    return 0;
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends req (len bytes) and reads the whole answer into out. */
static void exchange(int port, const char *req, size_t len, char *out, size_t cap)
{
    int fd = dial(port);
    size_t got = 0;
    ssize_t n;
    out[0] = '\0';
    if (fd < 0)
        return;
    if (write(fd, req, len) < 0) {
        close(fd);
        return;
    }
    while (got + 1 < cap && (n = read(fd, out + got, cap - 1 - got)) > 0)
        got += (size_t)n;
    out[got] = '\0';
    close(fd);
}

static void test_parse(void)
{
    char h[64], p[8];
    CHECK(ps_http_parse_listen("127.0.0.1:9464", h, sizeof(h), p, sizeof(p)) == 0);
    CHECK_STR(h, "127.0.0.1");
    CHECK_STR(p, "9464");
    CHECK(ps_http_parse_listen("[::1]:80", h, sizeof(h), p, sizeof(p)) == 0);
    CHECK_STR(h, "::1");
    CHECK(ps_http_parse_listen("0.0.0.0:65536", h, sizeof(h), p, sizeof(p)) == -EINVAL);
    CHECK(ps_http_parse_listen("host", h, sizeof(h), p, sizeof(p)) == -EINVAL);
    CHECK(ps_http_parse_listen(":80", h, sizeof(h), p, sizeof(p)) == -EINVAL);
    CHECK(ps_http_parse_listen("h:8x", h, sizeof(h), p, sizeof(p)) == -EINVAL);
    CHECK(ps_http_parse_listen("[::1]80", h, sizeof(h), p, sizeof(p)) == -EINVAL);
}

static void test_serve(void)
{
    ps_http *h = NULL;
    char err[256], out[8192];
    CHECK(ps_http_start(&h, "127.0.0.1:0", page, NULL, err, sizeof(err)) == 0);
    int port = ps_http_port(h);
    CHECK(port > 0);

    static const char get[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    exchange(port, get, sizeof(get) - 1, out, sizeof(out));
    CHECK(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK(strstr(out, "Content-Length: 21\r\n") != NULL);
    CHECK(strstr(out, "\r\n\r\n# TYPE x counter\nx 1\n") != NULL);
    CHECK(pages == 1);

    static const char other[] = "GET /nope HTTP/1.0\r\n\r\n";
    exchange(port, other, sizeof(other) - 1, out, sizeof(out));
    CHECK(strncmp(out, "HTTP/1.1 404 ", 13) == 0);
    static const char post[] = "POST /metrics HTTP/1.1\r\n\r\n";
    exchange(port, post, sizeof(post) - 1, out, sizeof(out));
    CHECK(strncmp(out, "HTTP/1.1 405 ", 13) == 0);
    static const char junk[] = "\x01\x02 junk\r\n\r\n";
    exchange(port, junk, sizeof(junk) - 1, out, sizeof(out));
    CHECK(strncmp(out, "HTTP/1.1 400 ", 13) == 0);
    char *big = malloc(PS_HTTP_REQUEST_MAX * 2);
    memset(big, 'a', PS_HTTP_REQUEST_MAX * 2);
    memcpy(big, "GET /", 5);
    exchange(port, big, PS_HTTP_REQUEST_MAX * 2, out, sizeof(out));
    CHECK(strncmp(out, "HTTP/1.1 431 ", 13) == 0);
    free(big);
    CHECK(pages == 1);

    /* a client that says nothing is dropped after the timeout; then the next is served */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int idle = dial(port);
    CHECK(idle >= 0);
    exchange(port, get, sizeof(get) - 1, out, sizeof(out));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(strncmp(out, "HTTP/1.1 200 OK\r\n", 17) == 0);
    double waited = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(waited < PS_HTTP_TIMEOUT_MS / 1000.0 + 1.5);
    char c;
    CHECK(read(idle, &c, 1) == 0); /* closed by the server */
    close(idle);
    ps_http_stop(h);

    CHECK(ps_http_start(&h, "nonsense", page, NULL, err, sizeof(err)) == -EINVAL);
    CHECK(h == NULL && strstr(err, "CHAT_METRICS_LISTEN") != NULL);
}

int main(void)
{
    RUN(test_parse);
    RUN(test_serve);
    return check_summary();
}
