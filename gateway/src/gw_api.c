/* gw_api.c: the server API (see gw_api.h).
 *
 * A request is checked in this order: path (404), method (405), token (401 without one or with
 * a bad one, 403 without "role":"server"), body size (413 over CHAT_MAX_FRAME), input (400, the
 * client frame's error code), access (403: the token's rooms claim, when it has one, limits the
 * rooms; a direct room's messages must be from one of its two users). A request that passes
 * becomes a client frame handed to the session policy under a handle of its own (gw_handle with
 * answer set, no session); its answer frame becomes the HTTP answer: ack -> 200 {"id"}, history
 * -> 200 {"room","messages"}, error -> {"error","message"} with a fitting status. Members
 * (GET .../members) is answered at once from the presence table; kick (POST /api/v1/kick)
 * closes the user's connections here and publishes a kick event for the other gateways. */
#define _POSIX_C_SOURCE 200809L /* strnlen */
#include "gw_api.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "chat_log.h"
#include "gw_access.h"
#include "gw_out.h"
#include "gw_presence.h"
#include "gw_session.h"

#define GW_API_TOKEN_MAX 8192  /* bytes of the Authorization header */
#define GW_API_QUERY_MAX 12288 /* bytes of one query argument (a whole request header) */
#define GW_API_ARG_MAX 128     /* bytes of a history argument's value */

enum { GW_API_PUBLISH = 1, GW_API_HISTORY = 2, GW_API_KICK = 3, GW_API_MEMBERS = 4 };

/* An error found before the request body was read. */
typedef struct gw_api_err {
    unsigned status;
    const char *code;
    char message[160];
} gw_api_err;

struct gw_api_req {
    gw_ctx *ctx;
    struct lws *wsi;
    gw_api_req **slot; /* the connection's pointer to this request */
    gw_api_respond_fn respond;
    gw_handle *h; /* the policy's handle on this request (in an api_handle) */
    gw_identity id;
    int kind;
    char *body; /* publish: the request body, at most CHAT_MAX_FRAME bytes */
    size_t len, cap;
    bool too_big;
    struct gw_api_err err; /* status != 0: the answer, once the body was read and dropped */
};

size_t gw_api_max_pending(const gw_ctx *ctx)
{
    return ctx->cfg.max_handshakes > 1 ? (size_t)ctx->cfg.max_handshakes / 2 : 1;
}

/* ---- answers --------------------------------------------------------------------------- */

static int respond_json(gw_api_req *r, struct lws *wsi, gw_api_respond_fn respond, unsigned status,
                        json_t *body, bool close)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    int rc = text ? respond(wsi, status, text, strlen(text), close)
                  : respond(wsi, 500, "{\"error\":\"internal\",\"message\":\"out of memory\"}", 46,
                            true);
    free(text);
    json_decref(body);
    (void)r;
    return rc;
}

static int respond_error(struct lws *wsi, gw_api_respond_fn respond, unsigned status,
                         const char *code, const char *message, bool close)
{
    return respond_json(NULL, wsi, respond, status,
                        json_pack("{s:s,s:s}", "error", code, "message", message), close);
}

/* The HTTP status of a client frame's error code. */
static unsigned status_of(const char *code)
{
    if (!strcmp(code, GW_ERR_FORBIDDEN) || !strcmp(code, GW_ERR_INVALID_USER))
        return 403;
    if (!strcmp(code, GW_ERR_UNAVAILABLE))
        return 503;
    if (!strcmp(code, GW_ERR_INTERNAL))
        return 500;
    return 400;
}

/* The policy's handle on a request, and the request (NULL once it went away). The handle is
 * the first member: gw_handle_unref frees the whole. */
typedef struct api_handle {
    gw_handle h;
    gw_api_req *req;
} api_handle;

static gw_api_req **req_of(gw_handle *h)
{
    return &((api_handle *)h)->req;
}

/* Forgets the request: the connection's slot, the policy's handle (its answer, if it still
 * comes, goes nowhere; store reads not started are cancelled). */
static void req_free(gw_api_req *r)
{
    if (!r)
        return;
    if (r->slot)
        *r->slot = NULL;
    if (r->h) {
        r->h->answer = NULL;
        *req_of(r->h) = NULL;
        r->ctx->ops->cancel_reads(r->ctx->ops_arg, r->h);
        gw_handle_unref(r->h);
    }
    gw_identity_clear(&r->id);
    free(r->body);
    r->ctx->api_pending--;
    free(r);
}

/* The policy's answer: the frame a session would get. */
static void on_answer(gw_handle *h, gw_buf *frame)
{
    gw_api_req *r = *req_of(h);
    if (!r)
        return;
    json_t *j = frame ? json_loadb((const char *)gw_buf_payload(frame), frame->len, 0, NULL) : NULL;
    const char *type = json_string_value(json_object_get(j, "type"));
    struct lws *wsi = r->wsi;
    gw_api_respond_fn respond = r->respond;
    req_free(r);
    if (type && !strcmp(type, "ack")) {
        respond_json(NULL, wsi, respond, 200, json_pack("{s:O}", "id", json_object_get(j, "id")),
                     false);
    } else if (type && !strcmp(type, "history")) {
        json_object_del(j, "type");
        respond_json(NULL, wsi, respond, 200, json_incref(j), false);
    } else if (type && !strcmp(type, "error")) {
        const char *code = json_string_value(json_object_get(j, "code"));
        const char *msg = json_string_value(json_object_get(j, "message"));
        respond_error(wsi, respond, status_of(code ? code : ""), code ? code : "internal",
                      msg ? msg : "", false);
    } else {
        respond_error(wsi, respond, 500, GW_ERR_INTERNAL, "the answer could not be built", false);
    }
    json_decref(j);
}

/* ---- requests -------------------------------------------------------------------------- */

/* The bearer token of the Authorization header: 1 (copied into buf), 0 (none), -1 (malformed). */
static int bearer(struct lws *wsi, char *buf, int len)
{
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n <= 0)
        return 0;
    if (n >= len || lws_hdr_copy(wsi, buf, len, WSI_TOKEN_HTTP_AUTHORIZATION) < 0 ||
        strncasecmp(buf, "Bearer ", 7) != 0)
        return -1;
    memmove(buf, buf + 7, strlen(buf + 7) + 1);
    return buf[0] ? 1 : -1;
}

/* The query argument name (already %-decoded by lws) into out: 1, 0 when absent, -1 when
 * longer than outlen. lws_get_urlarg_by_name stops at the first argument that does not fit its
 * buffer, so every argument is read here into one as large as a request header can be. */
static int query_arg(struct lws *wsi, const char *name, char *out, size_t outlen)
{
    char *arg = malloc(GW_API_QUERY_MAX + 1);
    size_t nlen = strlen(name);
    int rc = 0, n;
    if (!arg)
        return -1;
    for (int i = 0; rc == 0 && (n = lws_hdr_copy_fragment(wsi, arg, GW_API_QUERY_MAX + 1,
                                                          WSI_TOKEN_HTTP_URI_ARGS, i)) >= 0;
         i++) {
        if ((size_t)n <= nlen || memcmp(arg, name, nlen) != 0 || arg[nlen] != '=')
            continue;
        if ((size_t)n - nlen - 1 >= outlen)
            rc = -1;
        else {
            memcpy(out, arg + nlen + 1, (size_t)n - nlen);
            rc = 1;
        }
    }
    free(arg);
    return rc;
}

/* Parses the client frame json (our reference) into f; answers 400 when it is not one. */
static bool frame_of(gw_api_req *r, json_t *json, gw_frame *f)
{
    gw_frame_error fe;
    char *text = json ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    if (!text) {
        respond_error(r->wsi, r->respond, 500, GW_ERR_INTERNAL, "out of memory", false);
        return false;
    }
    int rc = gw_frame_parse(text, strlen(text), &r->ctx->limits, f, &fe);
    free(text);
    if (rc != 0) {
        respond_error(r->wsi, r->respond, 400, fe.code, fe.message, false);
        return false;
    }
    return true;
}

/* Hands f to the policy under a new handle; the answer comes through on_answer. */
static int go(gw_api_req *r, const gw_frame *f, const char *from)
{
    api_handle *ah = calloc(1, sizeof(*ah));
    if (!ah)
        return -1;
    r->h = &ah->h;
    r->h->refs = 1;
    r->h->answer = on_answer;
    ah->req = r;
    if (r->kind == GW_API_PUBLISH)
        gw_sessions_publish(r->ctx, r->h, f, from);
    else
        gw_sessions_history(r->ctx, r->h, f);
    return 0;
}

/* GET /api/v1/rooms/<room>/history?before=&after=&limit= */
static void history(gw_api_req *r, const char *room)
{
    json_t *j = json_pack("{s:s,s:s}", "type", "history", "room", room);
    static const char *const names[] = {"before", "after", "limit"};
    for (size_t i = 0; j && i < sizeof(names) / sizeof(names[0]); i++) {
        char v[GW_API_ARG_MAX];
        int has = query_arg(r->wsi, names[i], v, sizeof(v));
        if (!has)
            continue;
        char *end;
        errno = 0;
        long n = i == 2 && has > 0 ? strtol(v, &end, 10) : 0;
        /* a limit that is not a number, or an overlong value: the frame's own check answers */
        json_object_set_new(j, names[i],
                            i == 2 && has > 0 && !errno && end != v && !*end ? json_integer(n)
                            : has > 0                                        ? json_string(v)
                                                                             : json_integer(-1));
    }
    gw_frame f;
    if (!frame_of(r, j, &f)) {
        req_free(r);
        return;
    }
    if (!gw_access_claim_allows(r->id.rooms, f.room)) {
        respond_error(r->wsi, r->respond, 403, GW_ERR_FORBIDDEN,
                      "the token does not allow this room", false);
        req_free(r);
    } else if (go(r, &f, NULL) != 0) {
        respond_error(r->wsi, r->respond, 500, GW_ERR_INTERNAL, "out of memory", false);
        req_free(r);
    }
    gw_frame_free(&f);
}

static int fail(gw_api_err *e, unsigned status, const char *code, const char *message)
{
    e->status = status;
    e->code = code;
    snprintf(e->message, sizeof(e->message), "%s", message);
    return -1;
}

/* The endpoint, its method and the token: 0 with *kind, room and *id (owned by the caller), or
 * -1 with *e. */
static int check_request(gw_ctx *ctx, struct lws *wsi, bool post, int *kind, char *room,
                         gw_identity *id, gw_api_err *e)
{
    char path[256];
    if (ctx->draining) /* SIGTERM: the load balancer retries another gateway */
        return fail(e, 503, GW_ERR_UNAVAILABLE, "this gateway is shutting down; retry");
    /* a request holds one of lws's CHAT_MAX_HANDSHAKES header tables until it is answered
     * (gw_server.c), and a publish may wait seconds for Kafka: half of them stay free for
     * upgrades and probes */
    if (ctx->api_pending >= gw_api_max_pending(ctx))
        return fail(e, 503, GW_ERR_UNAVAILABLE,
                    "too many server API requests under way on this gateway; retry");
    if (lws_hdr_copy(wsi, path, sizeof(path), post ? WSI_TOKEN_POST_URI : WSI_TOKEN_GET_URI) < 0)
        return fail(e, 404, "not_found", "no such endpoint");
    static const char rooms_prefix[] = "/api/v1/rooms/";
    static const struct {
        const char *suffix;
        int kind;
    } room_paths[] = {{"/history", GW_API_HISTORY}, {"/members", GW_API_MEMBERS}};
    size_t plen = strlen(path), rlen = sizeof(rooms_prefix) - 1;
    *kind = 0;
    if (strcmp(path, "/api/v1/publish") == 0)
        *kind = GW_API_PUBLISH;
    else if (strcmp(path, "/api/v1/kick") == 0)
        *kind = GW_API_KICK;
    for (size_t i = 0; !*kind && i < sizeof(room_paths) / sizeof(room_paths[0]); i++) {
        size_t hlen = strlen(room_paths[i].suffix);
        if (plen > rlen + hlen && strncmp(path, rooms_prefix, rlen) == 0 &&
            strcmp(path + plen - hlen, room_paths[i].suffix) == 0) {
            size_t n = plen - rlen - hlen;
            if (n > CHAT_ROOM_MAX)
                return fail(e, 400, GW_ERR_INVALID_ROOM, "room name too long");
            memcpy(room, path + rlen, n);
            room[n] = '\0';
            *kind = room_paths[i].kind;
        }
    }
    if (!*kind)
        return fail(e, 404, "not_found", "no such endpoint");
    bool wants_post = *kind == GW_API_PUBLISH || *kind == GW_API_KICK;
    if (wants_post != post)
        return fail(e, 405, "method_not_allowed",
                    wants_post ? "this endpoint takes POST" : "this endpoint takes GET");

    char *token = malloc(GW_API_TOKEN_MAX);
    if (!token)
        return fail(e, 500, GW_ERR_INTERNAL, "out of memory");
    char why[160];
    int t = bearer(wsi, token, GW_API_TOKEN_MAX);
    int arc = t == 1 ? gw_auth_verify(ctx->auth, token, time(NULL), id, why, sizeof(why)) : -1;
    free(token);
    if (t <= 0)
        return fail(e, 401, "unauthorized",
                    t == 0 ? "an Authorization: Bearer token is required"
                           : "malformed Authorization header");
    if (arc != 0)
        return fail(e, 401, "unauthorized", why);
    if (!id->server) {
        gw_identity_clear(id);
        return fail(e, 403, GW_ERR_FORBIDDEN,
                    "the server API needs a token with \"role\":\"server\"");
    }
    return 0;
}

/* GET /api/v1/rooms/<room>/members: the members frame's fields, from this gateway's copy of the
 * cluster's presence (gw_presence.h), at once. */
static void members(gw_api_req *r, const char *room)
{
    if (!chat_valid_room(room, strlen(room))) {
        respond_error(r->wsi, r->respond, 400, GW_ERR_INVALID_ROOM, "not a room name", false);
    } else if (!gw_access_claim_allows(r->id.rooms, room)) {
        respond_error(r->wsi, r->respond, 403, GW_ERR_FORBIDDEN,
                      "the token does not allow this room", false);
    } else if (!r->ctx->presence) {
        respond_error(r->wsi, r->respond, 503, GW_ERR_UNAVAILABLE, "no presence here", false);
    } else {
        gw_presence_view v = {0};
        gw_presence_members(r->ctx->presence, room, NULL, &v);
        gw_buf *b = gw_out_members(room, v.users, v.n, v.count, v.truncated);
        json_t *j = b ? json_loadb((const char *)gw_buf_payload(b), b->len, 0, NULL) : NULL;
        gw_buf_unref(b);
        if (j) {
            json_object_del(j, "type");
            respond_json(NULL, r->wsi, r->respond, 200, j, false);
        } else {
            respond_error(r->wsi, r->respond, 500, GW_ERR_INTERNAL, "out of memory", false);
        }
    }
    req_free(r);
}

/* POST /api/v1/kick {"user"}: closes the user's connections here at once (4004) and tells the
 * other gateways through the events topic (gw_events.h), which close theirs as they read it. */
static void kick(gw_api_req *r, json_t *in)
{
    json_t *u = json_object_get(in, "user");
    const char *user = json_string_value(u);
    if (!user || !gw_auth_valid_sub(user, json_string_length(u))) {
        respond_error(r->wsi, r->respond, 400, GW_ERR_INVALID_FIELD,
                      "\"user\" must be a user id: 1..128 bytes of UTF-8 text", false);
        return;
    }
    chat_event ev = {.kind = CHAT_EVENT_KICK};
    snprintf(ev.user, sizeof(ev.user), "%s", user);
    char err[160] = "";
    int rc = r->ctx->ops->publish ? r->ctx->ops->publish(r->ctx->ops_arg, &ev, err, sizeof(err))
                                  : -EAGAIN;
    size_t here = gw_sessions_kick(r->ctx, user);
    if (rc != 0) {
        chat_log(CHAT_LOG_WARN, "kick: the other gateways were not told: %s", err);
        respond_error(r->wsi, r->respond, 503, GW_ERR_UNAVAILABLE,
                      "closed here, but the other gateways could not be told; retry", false);
        return;
    }
    respond_json(NULL, r->wsi, r->respond, 200,
                 json_pack("{s:s,s:I}", "user", user, "closed_here", (json_int_t)here), false);
}

int gw_api_request(gw_ctx *ctx, struct lws *wsi, gw_api_req **slot, gw_api_respond_fn respond)
{
    bool post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
    bool get = !post && lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
    if (!get && !post) /* lws reads no body for these: answer and close */
        return respond_error(wsi, respond, 405, "method_not_allowed", "use GET or POST", true);
    /* a POST's body is read whatever the answer, which comes once it is complete: a client
     * still sending would otherwise see its connection reset before the answer */
    char cl[32];
    long long declared = 0;
    if (post && lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
        declared = strtoll(cl, NULL, 10);
    bool body = post && declared > 0;

    gw_api_err e = {0};
    gw_identity id;
    memset(&id, 0, sizeof(id));
    int kind = 0;
    char room[CHAT_ROOM_MAX + 1] = "";
    int rc = check_request(ctx, wsi, post, &kind, room, &id, &e);
    if (rc == 0 && declared > ctx->cfg.max_frame) {
        gw_identity_clear(&id);
        rc = fail(&e, 413, "body_too_large", "the request body is larger than CHAT_MAX_FRAME");
    }
    if (rc != 0 && !body)
        return respond_error(wsi, respond, e.status, e.code, e.message, false);

    gw_api_req *r = calloc(1, sizeof(*r));
    if (!r) {
        gw_identity_clear(&id);
        return -1;
    }
    r->ctx = ctx;
    ctx->api_pending++;
    r->wsi = wsi;
    r->respond = respond;
    r->id = id; /* r owns its claims now */
    r->kind = kind;
    r->slot = slot;
    *slot = r;
    if (rc != 0) {
        r->err = e; /* answered when the body is complete; the body is dropped */
        return 0;
    }
    if (kind == GW_API_HISTORY)
        history(r, room);
    else if (kind == GW_API_MEMBERS)
        members(r, room);
    else if (!body)
        return gw_api_body_done(r); /* no body: the empty one answers */
    return 0;
}

int gw_api_body(gw_api_req *r, const void *in, size_t len)
{
    if (r->too_big || r->err.status)
        return 0;
    size_t max = (size_t)r->ctx->cfg.max_frame;
    if (r->len + len > max) {
        r->too_big = true; /* the rest is read and dropped; the answer is 413 */
        free(r->body);
        r->body = NULL;
        r->len = r->cap = 0;
        return 0;
    }
    if (r->len + len > r->cap) {
        size_t cap = r->cap ? r->cap : 1024;
        while (cap < r->len + len)
            cap *= 2;
        if (cap > max)
            cap = max;
        char *b = realloc(r->body, cap);
        if (!b)
            return -1;
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, in, len);
    r->len += len;
    return 0;
}

int gw_api_body_done(gw_api_req *r)
{
    if (r->err.status) {
        respond_error(r->wsi, r->respond, r->err.status, r->err.code, r->err.message, false);
        req_free(r);
        return 0;
    }
    if (r->too_big) {
        respond_error(r->wsi, r->respond, 413, "body_too_large",
                      "the request body is larger than CHAT_MAX_FRAME", false);
        req_free(r);
        return 0;
    }
    json_error_t je;
    json_t *in = json_loadb(r->body ? r->body : "", r->len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(in)) {
        json_decref(in);
        respond_error(r->wsi, r->respond, 400, GW_ERR_INVALID_JSON,
                      "the body must be a JSON object", false);
        req_free(r);
        return 0;
    }
    if (r->kind == GW_API_KICK) {
        kick(r, in);
        json_decref(in);
        req_free(r);
        return 0;
    }
    json_t *from = json_object_get(in, "from");
    if (from && (!json_is_string(from) ||
                 !gw_auth_valid_sub(json_string_value(from), json_string_length(from)))) {
        json_decref(in);
        respond_error(r->wsi, r->respond, 400, GW_ERR_INVALID_FIELD,
                      "\"from\" must be a user id: 1..128 bytes of UTF-8 text", false);
        req_free(r);
        return 0;
    }
    /* the client frame it stands for: send with room, text and cid */
    json_t *j = json_pack("{s:s}", "type", "send");
    static const char *const keys[] = {"room", "text", "cid"};
    for (size_t i = 0; j && i < sizeof(keys) / sizeof(keys[0]); i++)
        if (json_object_get(in, keys[i]))
            json_object_set(j, keys[i], json_object_get(in, keys[i]));
    gw_identity as = r->id; /* the sender: from (default: the token's sub), the token's claim */
    if (from)
        snprintf(as.sub, sizeof(as.sub), "%s", json_string_value(from));
    json_decref(in);
    gw_frame f;
    if (!frame_of(r, j, &f)) {
        req_free(r);
        return 0;
    }
    const char *code;
    char why[96];
    if (!gw_access_may_join(&as, f.room, &code, why, sizeof(why))) {
        respond_error(r->wsi, r->respond, 403, code, why, false);
        req_free(r);
    } else if (go(r, &f, as.sub) != 0) {
        respond_error(r->wsi, r->respond, 500, GW_ERR_INTERNAL, "out of memory", false);
        req_free(r);
    }
    gw_frame_free(&f);
    return 0;
}

void gw_api_closed(gw_api_req **slot)
{
    if (*slot)
        req_free(*slot);
    *slot = NULL;
}
