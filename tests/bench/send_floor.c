/* send_floor.c: the kernel's own price of a delivery on this machine, the floor under the
 * gateway's CPU per delivery (scripts/bench.sh runs it as the `floor` scenario, in the same run
 * as the gateway's figures). It opens --conns loopback TCP connections, drains their far ends
 * from a reader thread (epoll), and sends --frames frames of --frame bytes round-robin over the
 * connections, k frames per send() for each k of --per-send. What it reports per k is the
 * sending thread's CPU time per frame (CLOCK_THREAD_CPUTIME_ID): the system call and TCP send
 * path, plus the loopback receive processing that the kernel runs in the sender's context, as it
 * does for a gateway writing to local clients. Nothing else runs on the sending thread, so no
 * gateway can deliver one frame per send() for less. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
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

#define FLOOR_MAX_K 1024 /* frames per send() at most */

typedef struct floor_reader {
    int ep;
    atomic_bool stop;
    atomic_ullong bytes;
} floor_reader;

static double now_s(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *reader_main(void *arg)
{
    floor_reader *r = arg;
    static char buf[1 << 18];
    struct epoll_event ev[256];
    while (!atomic_load(&r->stop)) {
        int n = epoll_wait(r->ep, ev, 256, 50);
        for (int i = 0; i < n; i++) {
            ssize_t got;
            while ((got = recv(ev[i].data.fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
                atomic_fetch_add(&r->bytes, (unsigned long long)got);
        }
    }
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: chat-send-floor [--conns N] [--frame BYTES] [--frames N] "
               "[--per-send K[,K...]] [--json FILE]\n"
               "  --conns     loopback TCP connections (default 1000)\n"
               "  --frame     bytes per frame, at most 4096 (default 120: a short chat message)\n"
               "  --frames    frames sent for each K (default 400000)\n"
               "  --per-send  frames per send() to measure (default 1,4,16,64)\n"
               "  --json      also write the figures to FILE\n");
}

/* Sends frames frames of size bytes, k per send(), over the n connections in turn. Returns
 * the sending thread's CPU seconds, or -1. */
static double run(const int *fds, int n, const char *buf, size_t size, long frames, int k,
                  long *retries)
{
    double t0 = now_s(CLOCK_THREAD_CPUTIME_ID);
    long sends = frames / k;
    for (long i = 0; i < sends; i++) {
        int fd = fds[i % n];
        size_t len = size * (size_t)k, off = 0;
        while (off < len) {
            ssize_t w = send(fd, buf + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w > 0) {
                off += (size_t)w;
            } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                (*retries)++; /* the reader is behind: let it run */
                sched_yield();
            } else {
                perror("chat-send-floor: send");
                return -1;
            }
        }
    }
    return now_s(CLOCK_THREAD_CPUTIME_ID) - t0;
}

int main(int argc, char **argv)
{
    int conns = 1000, nks = 0, ks[8];
    size_t frame = 120;
    long frames = 400000;
    const char *json = NULL, *per = "1,4,16,64";
    static const struct option lo[] = {
        {"conns", 1, 0, 'c'}, {"frame", 1, 0, 'f'}, {"frames", 1, 0, 'n'}, {"per-send", 1, 0, 'k'},
        {"json", 1, 0, 'j'},  {"help", 0, 0, 'h'},  {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'c':
            conns = atoi(optarg);
            break;
        case 'f':
            frame = (size_t)atol(optarg);
            break;
        case 'n':
            frames = atol(optarg);
            break;
        case 'k':
            per = optarg;
            break;
        case 'j':
            json = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "chat-send-floor: unexpected argument %s\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    for (const char *p = per; *p && nks < 8;) {
        ks[nks] = atoi(p);
        if (ks[nks] < 1 || ks[nks] > FLOOR_MAX_K) {
            fprintf(stderr, "chat-send-floor: --per-send takes numbers from 1 to 1024\n");
            return 2;
        }
        nks++;
        p = strchr(p, ',');
        if (!p)
            break;
        p++;
    }
    if (conns < 1 || frame < 2 || frame > 4096 || frames < 1 || nks == 0) {
        fprintf(stderr, "chat-send-floor: bad arguments\n");
        usage(stderr);
        return 2;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)conns * 2 + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < (rlim_t)conns * 2 + 64) {
            fprintf(stderr,
                    "chat-send-floor: %d connections need a file limit of %d (this: %llu)\n", conns,
                    conns * 2 + 64, (unsigned long long)rl.rlim_cur);
            return 1;
        }
    }

    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t slen = sizeof(sa);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 4096) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &slen) != 0) {
        perror("chat-send-floor: listen");
        return 1;
    }
    int *srv = calloc((size_t)conns, sizeof(int));
    char *buf = malloc(frame * FLOOR_MAX_K);
    floor_reader r = {.ep = epoll_create1(0)};
    if (!srv || !buf || r.ep < 0) {
        fprintf(stderr, "chat-send-floor: out of memory\n");
        return 1;
    }
    memset(buf, 'x', frame * FLOOR_MAX_K);
    for (int i = 0; i < conns; i++) {
        int c = socket(AF_INET, SOCK_STREAM, 0), one = 1;
        if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
            perror("chat-send-floor: connect");
            return 1;
        }
        srv[i] = accept(lfd, NULL, NULL);
        if (srv[i] < 0) {
            perror("chat-send-floor: accept");
            return 1;
        }
        /* as a WebSocket server does: no Nagle delay on small frames */
        setsockopt(srv[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = c};
        epoll_ctl(r.ep, EPOLL_CTL_ADD, c, &ev);
    }
    pthread_t th;
    if (pthread_create(&th, NULL, reader_main, &r) != 0) {
        fprintf(stderr, "chat-send-floor: cannot start the reader thread\n");
        return 1;
    }
    printf("chat-send-floor: %d loopback connections, %zu-byte frames, %ld frames per figure\n",
           conns, frame, frames);
    double us[8];
    unsigned long long sent = 0;
    for (int j = 0; j < nks; j++) {
        long retries = 0;
        double cpu = run(srv, conns, buf, frame, frames, ks[j], &retries);
        if (cpu < 0)
            return 1;
        sent += (unsigned long long)(frames / ks[j]) * ks[j] * frame;
        while (atomic_load(&r.bytes) < sent) /* the reader has it all before the next figure */
            usleep(1000);
        us[j] = cpu * 1e6 / (double)((frames / ks[j]) * ks[j]);
        printf("  %3d frame%s per send(): %.3f us of sender CPU per frame (%ld retries)\n", ks[j],
               ks[j] == 1 ? " " : "s", us[j], retries);
        fflush(stdout);
    }
    atomic_store(&r.stop, true);
    pthread_join(th, NULL);
    if (json) {
        FILE *f = fopen(json, "w");
        if (!f) {
            perror("chat-send-floor: json");
            return 1;
        }
        fprintf(f, "{\"name\": \"floor\", \"conns\": %d, \"frame\": %zu, \"per_send\": [", conns,
                frame);
        for (int j = 0; j < nks; j++)
            fprintf(f, "%s%d", j ? ", " : "", ks[j]);
        fprintf(f, "], \"us_per_frame\": [");
        for (int j = 0; j < nks; j++)
            fprintf(f, "%s%.4f", j ? ", " : "", us[j]);
        fprintf(f, "]}\n");
        fclose(f);
    }
    for (int i = 0; i < conns; i++)
        close(srv[i]);
    close(r.ep); /* the reader's ends close with the process */
    close(lfd);
    free(srv);
    free(buf);
    return 0;
}
