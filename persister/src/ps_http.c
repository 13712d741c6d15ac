/* ps_http.c: the persister's metrics listener (see ps_http.h). Bounded in every way: one
 * connection at a time, a request header of at most PS_HTTP_REQUEST_MAX bytes, one deadline
 * for the whole exchange, and a stop flag checked at least every 250 ms. */
#define _GNU_SOURCE /* accept4 */
#include "ps_http.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "chat_error.h"
#include "chat_log.h"

struct ps_http {
    int fd;
    int port;
    pthread_t thread;
    atomic_bool stop;
    ps_http_page_fn page;
    void *arg;
};

int ps_http_parse_listen(const char *addr, char *host, size_t hostlen, char *port, size_t portlen)
{
    const char *colon, *h = addr;
    size_t hl;
    if (!addr)
        return -EINVAL;
    if (addr[0] == '[') {
        const char *rb = strchr(addr, ']');
        if (!rb || rb[1] != ':')
            return -EINVAL;
        h = addr + 1;
        hl = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon)
            return -EINVAL;
        hl = (size_t)(colon - addr);
    }
    const char *p = colon + 1;
    size_t pl = strlen(p);
    if (hl == 0 || hl >= hostlen || pl == 0 || pl > 5 || pl >= portlen)
        return -EINVAL;
    long v = 0;
    for (size_t i = 0; i < pl; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -EINVAL;
        v = v * 10 + (p[i] - '0');
    }
    if (v > 65535)
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    memcpy(port, p, pl + 1);
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for fd to be ready for events until deadline; false on timeout or error. */
static bool wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)left);
        if (n > 0)
            return true;
        if (n < 0 && errno != EINTR)
            return false;
    }
}

static void send_all(int fd, const char *p, size_t len, int64_t deadline)
{
    while (len > 0) {
        if (!wait_fd(fd, POLLOUT, deadline))
            return;
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            return;
        }
        p += n;
        len -= (size_t)n;
    }
}

static void respond(int fd, int status, const char *reason, const char *type, const char *body,
                    size_t len, int64_t deadline)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                     status, reason, type, len);
    send_all(fd, head, (size_t)n, deadline);
    send_all(fd, body, len, deadline);
}

static void serve(ps_http *h, int fd)
{
    char req[PS_HTTP_REQUEST_MAX + 1];
    size_t got = 0;
    int64_t deadline = now_ms() + PS_HTTP_TIMEOUT_MS;
    bool whole = false;

    while (got < PS_HTTP_REQUEST_MAX) {
        if (!wait_fd(fd, POLLIN, deadline))
            return; /* too slow: just close */
        ssize_t n = recv(fd, req + got, PS_HTTP_REQUEST_MAX - got, MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
            continue;
        if (n <= 0)
            return;
        got += (size_t)n;
        req[got] = '\0';
        if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n")) {
            whole = true;
            break;
        }
    }
    static const char text[] = "text/plain; charset=utf-8";
    if (!whole) {
        respond(fd, 431, "Request Header Fields Too Large", text, "request too large\n", 18,
                deadline);
        return;
    }
    char method[8], path[256], version[16];
    if (sscanf(req, "%7s %255s %15s", method, path, version) != 3 ||
        strncmp(version, "HTTP/1.", 7) != 0) {
        respond(fd, 400, "Bad Request", text, "bad request\n", 12, deadline);
        return;
    }
    if (strcmp(method, "GET") != 0) {
        respond(fd, 405, "Method Not Allowed", text, "GET only\n", 9, deadline);
        return;
    }
    char *q = strchr(path, '?');
    if (q)
        *q = '\0';
    if (strcmp(path, "/metrics") != 0) {
        respond(fd, 404, "Not Found", text, "not found: try /metrics\n", 24, deadline);
        return;
    }
    char *body = NULL;
    size_t len = 0;
    int rc = h->page(h->arg, &body, &len);
    if (rc != 0) {
        respond(fd, 500, "Internal Server Error", text, "metrics unavailable\n", 20, deadline);
        return;
    }
    respond(fd, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body, len, deadline);
    free(body);
}

static void *listener_main(void *arg)
{
    ps_http *h = arg;
    while (!atomic_load(&h->stop)) {
        struct pollfd p = {.fd = h->fd, .events = POLLIN};
        if (poll(&p, 1, 250) <= 0)
            continue;
        int fd = accept4(h->fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        serve(h, fd);
        close(fd);
    }
    return NULL;
}

int ps_http_start(ps_http **out, const char *addr, ps_http_page_fn page, void *arg, char *err,
                  size_t errlen)
{
    char host[256], port[8];
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *ai = NULL;
    *out = NULL;
    if (ps_http_parse_listen(addr, host, sizeof(host), port, sizeof(port)) != 0) {
        chat_errf(err, errlen, "CHAT_METRICS_LISTEN: \"%s\" is not host:port", addr);
        return -EINVAL;
    }
    int grc = getaddrinfo(host, port, &hints, &ai);
    if (grc != 0) {
        chat_errf(err, errlen, "CHAT_METRICS_LISTEN: %s: %s", addr, gai_strerror(grc));
        return -EINVAL;
    }
    ps_http *h = calloc(1, sizeof(*h));
    int rc = -ENOMEM;
    if (!h)
        goto fail;
    h->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    int one = 1;
    if (h->fd < 0 || setsockopt(h->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(h->fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(h->fd, 16) != 0) {
        rc = -errno;
        chat_errf(err, errlen, "CHAT_METRICS_LISTEN: cannot listen on %s: %s", addr,
                  strerror(errno));
        goto fail;
    }
    struct sockaddr_storage sa;
    socklen_t salen = sizeof(sa);
    if (getsockname(h->fd, (struct sockaddr *)&sa, &salen) == 0)
        h->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                                 : ((struct sockaddr_in *)&sa)->sin_port);
    h->page = page;
    h->arg = arg;
    atomic_init(&h->stop, false);
    if ((rc = pthread_create(&h->thread, NULL, listener_main, h)) != 0) {
        rc = -rc;
        chat_errf(err, errlen, "metrics listener: cannot start a thread");
        goto fail;
    }
    freeaddrinfo(ai);
    *out = h;
    return 0;
fail:
    if (h && h->fd >= 0)
        close(h->fd);
    free(h);
    freeaddrinfo(ai);
    return rc;
}

int ps_http_port(const ps_http *h)
{
    return h ? h->port : 0;
}

void ps_http_stop(ps_http *h)
{
    if (!h)
        return;
    atomic_store(&h->stop, true);
    pthread_join(h->thread, NULL);
    close(h->fd);
    free(h);
}
