/* chat_loadgen.c: the load generator behind `make bench`. One epoll thread drives thousands of
 * WebSocket connections to a gateway (or HAProxy) from many loopback source addresses, each with
 * its own HS256 token: they connect, authenticate, join their room, and then a few of them send
 * at a fixed total rate (open loop: the schedule does not wait for answers) while every member
 * reads. Each message carries its send time, so every delivery gives a latency. The gateway's
 * CPU time and RSS come from /proc/<pid>. It says when its own CPU saturates (the figures then
 * measure the generator, not the gateway), raises its file limit and says when the system's
 * is too low.
 *
 *   chat-loadgen --port 8081 --secret S --conns 1000 --rooms 1 --senders 10 --rate 200
 *                --seconds 10 [--host 127.0.0.1] [--port2 8082] [--sources 32] [--size 100]
 *                [--pid PID] [--name fanout] [--json out.json] [--join-only] [--idle SECONDS]
 *                [--storm]
 * The senders are the first --senders connections (on --port); with --port2 every other
 * connection reads through that second gateway. --idle S (with --pid): half the connections
 * join, S seconds of quiet, the gateway's RSS, the other half, S seconds, the RSS again: the
 * growth per connection over all of them, and over the second half alone.
 *
 * Prints a progress line per second and a final summary line; --json writes the figures. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct conn {
    int fd;
    int state; /* 0 connecting, 1 upgrading, 2 waiting welcome, 3 joining, 4 joined, 5 closed,
                  6 welcomed (a storm: waits to join with everyone else) */
    int room;
    bool sender;
    unsigned char *rb;
    size_t rlen, rcap;
    char *wb; /* unsent bytes (rare: the socket was full) */
    size_t wlen;
    int64_t join_ns; /* when its join went out */
} conn;

typedef struct opts {
    const char *host, *secret, *name, *json;
    int port, port2, conns, rooms, senders, seconds, sources, size, pid, idle, join_window, prefill;
    double rate;
    bool join_only, storm;
} opts;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *what)
{
    fprintf(stderr, "chat-loadgen: %s\n", what);
    exit(2);
}

/* ---- tokens ------------------------------------------------------------------------------ */

static size_t b64url(const unsigned char *in, size_t n, char *out)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) |
                     (i + 2 < n ? in[i + 2] : 0);
        out[o++] = t[v >> 18 & 63];
        out[o++] = t[v >> 12 & 63];
        if (i + 1 < n)
            out[o++] = t[v >> 6 & 63];
        if (i + 2 < n)
            out[o++] = t[v & 63];
    }
    out[o] = '\0';
    return o;
}

static void make_token(const char *secret, const char *sub, char *out, size_t cap)
{
    char hdr[64], body[256], payload[512], sig[64];
    const char *h = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    b64url((const unsigned char *)h, strlen(h), hdr);
    int n = snprintf(payload, sizeof(payload), "{\"sub\":\"%s\",\"exp\":%lld}", sub,
                     (long long)time(NULL) + 86400);
    b64url((const unsigned char *)payload, (size_t)n, body);
    n = snprintf(payload, sizeof(payload), "%s.%s", hdr, body);
    unsigned char mac[32];
    unsigned int ml = 0;
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (unsigned char *)payload, (size_t)n, mac, &ml);
    b64url(mac, ml, sig);
    snprintf(out, cap, "%s.%s", payload, sig);
}

/* ---- the connections --------------------------------------------------------------------- */

static opts o = {.host = "127.0.0.1",
                 .name = "run",
                 .port = 8081,
                 .conns = 100,
                 .rooms = 1,
                 .senders = 1,
                 .seconds = 10,
                 .sources = 32,
                 .size = 100,
                 .rate = 100,
                 .join_window = 500};
static conn *cs;
static int ep;
static uint64_t n_joined, n_failed, n_sent, n_delivered, n_errors, n_welcomed;
/* latencies: 16 buckets per power of two of microseconds; send -> delivery, join -> joined */
static uint64_t hist[64 * 16], join_hist[64 * 16];

static void record_latency(uint64_t *h, int64_t ns)
{
    uint64_t us = ns > 0 ? (uint64_t)ns / 1000 : 0;
    int e = us ? 63 - __builtin_clzll(us) : 0;
    int sub = e >= 4 ? (int)((us >> (e - 4)) & 15) : (int)(us & 15);
    int i = e * 16 + sub;
    if (i >= 64 * 16)
        i = 64 * 16 - 1;
    h[i]++;
}

static double percentile_ms(const uint64_t *h, double p)
{
    uint64_t total = 0, seen = 0;
    for (int i = 0; i < 64 * 16; i++)
        total += h[i];
    if (!total)
        return 0;
    uint64_t want = (uint64_t)(p * (double)total);
    if (want >= total)
        want = total - 1; /* p = 1: the largest */
    for (int i = 0; i < 64 * 16; i++) {
        seen += h[i];
        if (seen > want) {
            int e = i / 16, sub = i % 16;
            double us = e >= 4 ? (double)((1ull << e) + ((uint64_t)sub << (e - 4))) : sub;
            return us / 1000.0;
        }
    }
    return 0;
}

static void conn_write(conn *c, const void *p, size_t n)
{
    if (c->wlen == 0) {
        ssize_t k = send(c->fd, p, n, MSG_NOSIGNAL);
        if (k == (ssize_t)n)
            return;
        if (k < 0 && errno != EAGAIN) {
            n_failed++;
            return;
        }
        if (k < 0)
            k = 0;
        p = (const char *)p + k;
        n -= (size_t)k;
    }
    c->wb = realloc(c->wb, c->wlen + n);
    memcpy(c->wb + c->wlen, p, n);
    c->wlen += n;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* A masked client text frame. */
static void send_text(conn *c, const char *text, size_t n)
{
    unsigned char buf[16 + 65536];
    size_t h = 0;
    if (n > 65535)
        return;
    buf[h++] = 0x81;
    if (n < 126) {
        buf[h++] = 0x80 | (unsigned char)n;
    } else {
        buf[h++] = 0x80 | 126;
        buf[h++] = (unsigned char)(n >> 8);
        buf[h++] = (unsigned char)n;
    }
    uint32_t r = (uint32_t)rand();
    unsigned char *mask = buf + h;
    memcpy(mask, &r, 4);
    h += 4;
    for (size_t i = 0; i < n; i++)
        buf[h + i] = (unsigned char)text[i] ^ mask[i & 3];
    conn_write(c, buf, h + n);
}

static void send_join(conn *c)
{
    char join[128];
    int k = snprintf(join, sizeof(join), "{\"type\":\"join\",\"room\":\"bench-%s-%d\"}", o.name,
                     c->room);
    c->state = 3;
    c->join_ns = now_ns();
    send_text(c, join, (size_t)k);
}

static void on_frame(conn *c, const char *p, size_t n)
{
    if (c->state == 2 && o.storm) {
        c->state = 6;
        n_welcomed++;
        return;
    }
    if (c->state == 2) {
        send_join(c);
        return;
    }
    if (c->state == 3 && n > 17 && memcmp(p, "{\"type\":\"joined\"", 16) == 0) {
        c->state = 4;
        n_joined++;
        record_latency(join_hist, now_ns() - c->join_ns);
        return;
    }
    if (n > 17 && memcmp(p, "{\"type\":\"message\"", 17) == 0) {
        const char *t = memmem(p, n, "\"text\":\"t=", 10);
        if (t) {
            n_delivered++;
            record_latency(hist, now_ns() - strtoll(t + 10, NULL, 10));
        }
    } else if (n > 15 && memcmp(p, "{\"type\":\"error\"", 15) == 0) {
        n_errors++;
    }
}

static void on_readable(conn *c)
{
    for (;;) {
        if (c->rcap - c->rlen < 4096) {
            c->rcap = c->rcap ? c->rcap * 2 : 8192;
            c->rb = realloc(c->rb, c->rcap);
        }
        ssize_t k = recv(c->fd, c->rb + c->rlen, c->rcap - c->rlen, 0);
        if (k == 0 || (k < 0 && errno != EAGAIN)) {
            if (c->state != 5)
                n_failed++;
            c->state = 5;
            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
            close(c->fd);
            return;
        }
        if (k < 0)
            break;
        c->rlen += (size_t)k;
    }
    size_t pos = 0;
    if (c->state == 1) {
        unsigned char *end = memmem(c->rb, c->rlen, "\r\n\r\n", 4);
        if (!end)
            return;
        if (c->rlen < 12 || memcmp(c->rb + 9, "101", 3) != 0) {
            n_failed++;
            c->state = 5;
            return;
        }
        pos = (size_t)(end - c->rb) + 4;
        c->state = 2;
    }
    while (c->rlen - pos >= 2) {
        unsigned char *f = c->rb + pos;
        size_t n = f[1] & 0x7f, hl = 2;
        if (n == 126) {
            if (c->rlen - pos < 4)
                break;
            n = (size_t)f[2] << 8 | f[3];
            hl = 4;
        } else if (n == 127) {
            if (c->rlen - pos < 10)
                break;
            n = 0;
            for (int i = 0; i < 8; i++)
                n = n << 8 | f[2 + i];
            hl = 10;
        }
        if (c->rlen - pos < hl + n)
            break;
        if ((f[0] & 0x0f) == 1)
            on_frame(c, (const char *)f + hl, n);
        pos += hl + n;
    }
    memmove(c->rb, c->rb + pos, c->rlen - pos);
    c->rlen -= pos;
}

static void start_conn(int i)
{
    conn *c = &cs[i];
    c->room = i % o.rooms;
    c->sender = i < o.senders;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0)
        die("socket() failed: raise the file limit (ulimit -n)");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* many source addresses, so that ephemeral ports do not run out */
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl(0x7f000001u + 1 + (uint32_t)(i % o.sources));
    setsockopt(c->fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    bind(c->fd, (struct sockaddr *)&src, sizeof(src));
    /* senders on --port, readers on --port2 when given (delivery through another gateway) */
    int port = !c->sender && o.port2 ? o.port2 : o.port;
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, o.host, &dst.sin_addr);
    connect(c->fd, (struct sockaddr *)&dst, sizeof(dst));
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
}

static void on_writable(conn *c)
{
    if (c->state == 0) {
        char sub[64], tok[1024], req[2048];
        snprintf(sub, sizeof(sub), "lg-%s-%ld", o.name, (long)(c - cs));
        make_token(o.secret, sub, tok, sizeof(tok));
        int n = snprintf(req, sizeof(req),
                         "GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n",
                         o.host, o.port, tok);
        c->state = 1;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        conn_write(c, req, (size_t)n);
        return;
    }
    if (c->wlen) {
        ssize_t k = send(c->fd, c->wb, c->wlen, MSG_NOSIGNAL);
        if (k > 0) {
            memmove(c->wb, c->wb + k, c->wlen - (size_t)k);
            c->wlen -= (size_t)k;
        }
    }
    if (!c->wlen) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
}

static void pump(int timeout_ms)
{
    struct epoll_event evs[512];
    int n = epoll_wait(ep, evs, 512, timeout_ms);
    for (int i = 0; i < n; i++) {
        conn *c = evs[i].data.ptr;
        if (c->state == 5)
            continue;
        if (evs[i].events & (EPOLLOUT))
            on_writable(c);
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
            on_readable(c);
    }
}

/* Sends a message stamped with its send time (stamp, ns) and pad bytes of text after the stamp
 * to c's room: on_frame reads the stamp back from each delivery. */
static void send_stamped(conn *c, int64_t stamp, int pad)
{
    static char text[65536 + 128];
    int n = snprintf(text, sizeof(text),
                     "{\"type\":\"send\",\"room\":\"bench-%s-%d\",\"text\":\"t=%lld;", o.name,
                     c->room, (long long)stamp);
    memset(text + n, 'x', (size_t)pad);
    n += pad;
    n += snprintf(text + n, sizeof(text) - (size_t)n, "\"}");
    send_text(c, text, (size_t)n);
}

/* --prefill: the first connection joins alone and sends o.prefill messages to its room, and
 * waits until they came back, so that the joins timed next have history to answer. What it
 * does is not counted in the figures; *t0 restarts. Returns the connections started (1). */
static int prefill(int64_t *t0)
{
    int64_t until = now_ns() + 30000000000LL;
    start_conn(0);
    while (cs[0].state != 4 && cs[0].state != 5 && now_ns() < until)
        pump(10);
    if (cs[0].state != 4)
        die("--prefill: the first connection did not join");
    for (int i = 0; i < o.prefill; i++) {
        send_stamped(&cs[0], now_ns(), o.size);
        pump(0);
    }
    while (n_delivered < (uint64_t)o.prefill && now_ns() < until)
        pump(10);
    if (n_delivered < (uint64_t)o.prefill)
        die("--prefill: the messages did not come back within 30 s");
    n_delivered = 0;
    memset(hist, 0, sizeof(hist));
    memset(join_hist, 0, sizeof(join_hist));
    *t0 = now_ns();
    return 1;
}

/* ---- /proc ------------------------------------------------------------------------------- */

static double proc_cpu_s(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long proc_rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: chat-loadgen --secret S [--host H] [--port P] [--port2 P2] [--conns N]\n"
            "  [--rooms R]\n"
            "  [--senders S] [--rate MSG_PER_S] [--seconds T] [--size BYTES] [--sources K]\n"
            "  [--pid GATEWAY_PID] [--name NAME] [--json FILE] [--join-only]\n"
            "  [--idle S]  (half join, S s, RSS; the rest join, S s, RSS: bytes per idle\n"
            "               connection over all, and over the second half)\n"
            "  [--storm]  (connect everyone first, then all join at once and time it)\n"
            "  [--join-window N]  (joins under way at once, default 500; 1: one at a time)\n"
            "  [--prefill N]  (the first connection sends N messages to its room before the\n"
            "                  others join: their joins get history)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"host", 1, 0, 'h'},        {"port", 1, 0, 'p'},      {"secret", 1, 0, 'S'},
        {"conns", 1, 0, 'c'},       {"rooms", 1, 0, 'r'},     {"senders", 1, 0, 's'},
        {"rate", 1, 0, 'R'},        {"seconds", 1, 0, 't'},   {"size", 1, 0, 'z'},
        {"sources", 1, 0, 'a'},     {"pid", 1, 0, 'P'},       {"name", 1, 0, 'n'},
        {"json", 1, 0, 'j'},        {"join-only", 0, 0, 'J'}, {"idle", 1, 0, 'i'},
        {"storm", 0, 0, 'T'},       {"port2", 1, 0, 'q'},     {"help", 0, 0, '?'},
        {"join-window", 1, 0, 'w'}, {"prefill", 1, 0, 'f'},   {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'h':
            o.host = optarg;
            break;
        case 'p':
            o.port = atoi(optarg);
            break;
        case 'q':
            o.port2 = atoi(optarg);
            break;
        case 'S':
            o.secret = optarg;
            break;
        case 'c':
            o.conns = atoi(optarg);
            break;
        case 'r':
            o.rooms = atoi(optarg);
            break;
        case 's':
            o.senders = atoi(optarg);
            break;
        case 'R':
            o.rate = atof(optarg);
            break;
        case 't':
            o.seconds = atoi(optarg);
            break;
        case 'z':
            o.size = atoi(optarg);
            break;
        case 'a':
            o.sources = atoi(optarg);
            break;
        case 'P':
            o.pid = atoi(optarg);
            break;
        case 'n':
            o.name = optarg;
            break;
        case 'j':
            o.json = optarg;
            break;
        case 'J':
            o.join_only = true;
            break;
        case 'i':
            o.idle = atoi(optarg);
            break;
        case 'T':
            o.storm = o.join_only = true;
            break;
        case 'w':
            o.join_window = atoi(optarg);
            break;
        case 'f':
            o.prefill = atoi(optarg);
            break;
        default:
            usage();
        }
    }
    if (!o.secret || o.conns < 1 || o.rooms < 1 || o.senders < 0 || o.senders > o.conns ||
        o.sources < 1 || o.sources > 250 || o.size < 1 || o.size > 60000 || o.join_window < 1 ||
        o.prefill < 0 || (o.prefill && o.storm))
        usage();
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rlim_t want = (rlim_t)o.conns + 64;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < want) {
            fprintf(
                stderr,
                "chat-loadgen: the file limit is %llu, %d connections need %llu: raise the hard "
                "limit (ulimit -Hn, /etc/security/limits.conf) and the gateway's too\n",
                (unsigned long long)rl.rlim_max, o.conns, (unsigned long long)want);
            return 2;
        }
    }
    cs = calloc((size_t)o.conns, sizeof(*cs));
    ep = epoll_create1(0);
    if (!cs || ep < 0)
        die("out of memory");
    srand((unsigned)now_ns());

    long rss0 = o.pid ? proc_rss_kb(o.pid) : -1;
    int64_t t0 = now_ns();
    /* connect and join, a few hundred at a time (a storm: connect all, then all join at once) */
    int started = 0;
    if (o.prefill)
        started = prefill(&t0);
    if (o.storm) {
        while (n_welcomed + n_failed < (uint64_t)o.conns) {
            while (started < o.conns && (uint64_t)started - n_welcomed - n_failed < 500)
                start_conn(started++);
            pump(50);
        }
        t0 = now_ns();
        for (int i = 0; i < o.conns; i++)
            if (cs[i].state == 6)
                send_join(&cs[i]);
    }
    /* idle: a look at the gateway's RSS halfway too, once the first half has settled, so that
     * the second half's growth per connection (no start-up or first-burst costs in it) can be
     * told from the average */
    long rss_half = -1;
    uint64_t n_half = 0;
    int64_t paused = 0;
    int target = o.idle && o.pid && !o.storm ? o.conns / 2 : o.conns;
    while (n_joined + n_failed < (uint64_t)o.conns) {
        while (started < target &&
               (uint64_t)started - n_joined - n_failed < (uint64_t)o.join_window)
            start_conn(started++);
        pump(o.join_window < 500 ? 1 : 50);
        if (target < o.conns && n_joined + n_failed >= (uint64_t)target) {
            int64_t p0 = now_ns();
            while (now_ns() < p0 + (int64_t)o.idle * 1000000000)
                pump(100);
            rss_half = proc_rss_kb(o.pid);
            n_half = n_joined;
            paused = now_ns() - p0;
            target = o.conns;
        }
        if (now_ns() - t0 - paused > (int64_t)(60 + o.conns / 500) * 1000000000) {
            fprintf(stderr, "chat-loadgen: only %llu of %d joined within the time allowed\n",
                    (unsigned long long)n_joined, o.conns);
            break;
        }
    }
    double join_s = (double)(now_ns() - t0 - paused) / 1e9;
    printf("%s: %llu of %d connections joined in %.2fs (%llu failed); join -> joined p50 %.2f ms "
           "p99 %.2f ms max %.1f ms\n",
           o.name, (unsigned long long)n_joined, o.conns, join_s, (unsigned long long)n_failed,
           percentile_ms(join_hist, 0.5), percentile_ms(join_hist, 0.99),
           percentile_ms(join_hist, 1.0));
    fflush(stdout);
    long rss1 = -1;
    double second_half = 0;
    if (o.idle) {
        int64_t until = now_ns() + (int64_t)o.idle * 1000000000;
        while (now_ns() < until)
            pump(100);
        rss1 = o.pid ? proc_rss_kb(o.pid) : -1;
        if (rss1 > 0 && rss0 > 0)
            printf("%s: gateway RSS %ld KiB -> %ld KiB: %.0f bytes per idle connection\n", o.name,
                   rss0, rss1, (double)(rss1 - rss0) * 1024 / (double)(n_joined ? n_joined : 1));
        if (rss1 > 0 && rss_half > 0 && n_joined > n_half) {
            second_half = (double)(rss1 - rss_half) * 1024 / (double)(n_joined - n_half);
            printf("%s: the second %llu connections: RSS %ld KiB -> %ld KiB: %.0f bytes each\n",
                   o.name, (unsigned long long)(n_joined - n_half), rss_half, rss1, second_half);
        }
    }

    double s0 = self_cpu_s(), g1 = o.pid ? proc_cpu_s(o.pid) : -1;
    int64_t start = now_ns(), next_send = start, end = start + (int64_t)o.seconds * 1000000000;
    uint64_t k = 0, last_del = 0;
    int64_t next_report = start + 1000000000;
    if (!o.join_only && o.senders > 0 && o.rate > 0) {
        int64_t interval = (int64_t)(1e9 / o.rate);
        while (now_ns() < end) {
            int64_t now = now_ns();
            while (next_send <= now) {
                conn *c = &cs[k % (uint64_t)o.senders];
                if (c->state == 4) {
                    send_stamped(c, next_send, o.size);
                    n_sent++;
                }
                k++;
                next_send += interval;
            }
            pump(1);
            if (now >= next_report) {
                double self = self_cpu_s() - s0, wall = (double)(now - start) / 1e9;
                printf("  %2.0fs sent %llu delivered %llu (+%llu/s) p99 %.1f ms%s\n", wall,
                       (unsigned long long)n_sent, (unsigned long long)n_delivered,
                       (unsigned long long)(n_delivered - last_del), percentile_ms(hist, 0.99),
                       self / wall > 0.9 ? "  (the load generator is saturated)" : "");
                fflush(stdout);
                last_del = n_delivered;
                next_report += 1000000000;
            }
        }
        int64_t drain = now_ns() + 2000000000;
        while (now_ns() < drain)
            pump(10);
    }
    bool sending = !o.join_only && o.senders > 0 && o.rate > 0;
    if (!sending)
        o.rate = 0;
    double wall = sending ? (double)(now_ns() - start) / 1e9 : 0, self = self_cpu_s() - s0;
    double g2 = o.pid ? proc_cpu_s(o.pid) : -1;
    double us_per = n_delivered && g2 >= 0 ? (g2 - g1) * 1e6 / (double)n_delivered : 0;
    /* per record the gateway read: what a gateway with no member of the rooms pays */
    double us_per_record = n_sent && g2 >= 0 ? (g2 - g1) * 1e6 / (double)n_sent : 0;
    long rss2 = o.pid ? proc_rss_kb(o.pid) : -1;
    bool saturated = wall > 0 && self / wall > 0.9;
    printf(
        "%s: conns %d rooms %d senders %d rate %.0f/s for %ds: sent %llu delivered %llu, "
        "latency p50 %.2f ms p99 %.2f ms max %.1f ms; gateway CPU %.2f us/delivery, RSS %ld KiB; "
        "load generator CPU %.0f%%%s; errors %llu, failed connections %llu\n",
        o.name, o.conns, o.rooms, o.senders, o.rate, o.seconds, (unsigned long long)n_sent,
        (unsigned long long)n_delivered, percentile_ms(hist, 0.50), percentile_ms(hist, 0.99),
        percentile_ms(hist, 1.0), us_per, rss2, wall > 0 ? 100 * self / wall : 0,
        saturated ? " (SATURATED: these figures measure the load generator)" : "",
        (unsigned long long)n_errors, (unsigned long long)n_failed);
    if (o.json) {
        FILE *f = fopen(o.json, "w");
        if (f) {
            fprintf(f,
                    "{\"name\":\"%s\",\"conns\":%d,\"rooms\":%d,\"senders\":%d,\"rate\":%.0f,"
                    "\"seconds\":%d,\"joined\":%llu,\"join_s\":%.3f,\"join_p50_ms\":%.3f,"
                    "\"join_p99_ms\":%.3f,\"sent\":%llu,"
                    "\"delivered\":%llu,\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,"
                    "\"gateway_us_per_delivery\":%.3f,\"gateway_us_per_record\":%.3f,"
                    "\"gateway_cpu_s\":%.3f,\"gateway_rss_kb\":%ld,"
                    "\"idle_bytes_per_conn\":%.0f,\"idle_bytes_second_half\":%.0f,"
                    "\"idle_second_half_conns\":%llu,"
                    "\"loadgen_cpu\":%.3f,\"saturated\":%s,"
                    "\"errors\":%llu,\"failed\":%llu}\n",
                    o.name, o.conns, o.rooms, o.senders, o.rate, o.seconds,
                    (unsigned long long)n_joined, join_s, percentile_ms(join_hist, 0.5),
                    percentile_ms(join_hist, 0.99), (unsigned long long)n_sent,
                    (unsigned long long)n_delivered, percentile_ms(hist, 0.5),
                    percentile_ms(hist, 0.99), percentile_ms(hist, 1.0), us_per, us_per_record,
                    g2 >= 0 ? g2 - g1 : 0, rss2,
                    rss1 > 0 && rss0 > 0
                        ? (double)(rss1 - rss0) * 1024 / (double)(n_joined ? n_joined : 1)
                        : 0,
                    second_half, (unsigned long long)(second_half > 0 ? n_joined - n_half : 0),
                    wall > 0 ? self / wall : 0, saturated ? "true" : "false",
                    (unsigned long long)n_errors, (unsigned long long)n_failed);
            fclose(f);
        }
    }
    return n_joined == (uint64_t)o.conns && n_failed == 0 ? 0 : 1;
}
