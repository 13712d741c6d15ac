/* gw_frame.h: parsing and validating client frames (protocol v1, docs/protocol.md).
 * One JSON object per text frame, with a "type". On failure the caller gets the protocol error
 * code and a message for a person, and the cid when the frame had a usable one, so it can
 * answer {"type":"error",...} and keep the connection open.
 * Pure; any thread. */
#ifndef GW_FRAME_H
#define GW_FRAME_H

#include <stdbool.h>
#include <stddef.h>

#include "chat_validate.h"

typedef enum {
    GW_FRAME_AUTH,
    GW_FRAME_JOIN,
    GW_FRAME_LEAVE,
    GW_FRAME_SEND,
    GW_FRAME_HISTORY,
    GW_FRAME_PING,
    GW_FRAME_REFRESH,
    GW_FRAME_MEMBERS,
    GW_FRAME_TYPING, /* room, on */
    GW_FRAME_READ,   /* room, upto */
    GW_FRAME_ROOMS,  /* no fields */
} gw_frame_type;

/* Error codes of protocol v1 (the "code" of an error frame). */
#define GW_ERR_INVALID_JSON "invalid_json"          /* not JSON, or not an object */
#define GW_ERR_UNKNOWN_TYPE "unknown_type"          /* "type" is not one we know */
#define GW_ERR_MISSING_FIELD "missing_field"        /* a required field is absent */
#define GW_ERR_INVALID_FIELD "invalid_field"        /* a field has the wrong JSON type or value */
#define GW_ERR_INVALID_ROOM "invalid_room"          /* room does not match [A-Za-z0-9._:-]{1,64} */
#define GW_ERR_INVALID_TEXT "invalid_text"          /* empty, not UTF-8, or contains NUL */
#define GW_ERR_TEXT_TOO_LONG "text_too_long"        /* over the configured maximum bytes */
#define GW_ERR_NOT_JOINED "not_joined"              /* (gateway) the room is not joined */
#define GW_ERR_TOO_MANY_ROOMS "too_many_rooms"      /* (gateway) per-session room limit */
#define GW_ERR_RATE_LIMITED "rate_limited"          /* (gateway) too many frames */
#define GW_ERR_ALREADY_AUTH "already_authenticated" /* (gateway) auth after welcome */
#define GW_ERR_UNAVAILABLE "unavailable"            /* (gateway) Kafka or storage unavailable */
#define GW_ERR_INTERNAL "internal"                  /* (gateway) a bug or out of memory */
#define GW_ERR_INVALID_TOKEN "invalid_token"        /* (gateway) refresh: the token is refused */
#define GW_ERR_TOKEN_MISMATCH "token_mismatch"      /* (gateway) refresh: a token of another sub */

#define GW_EPOCH_MAX 64 /* bytes of an epoch string */

typedef struct gw_frame_limits {
    size_t max_text;     /* bytes, e.g. 4096 */
    int max_history;     /* largest accepted "limit", e.g. 200 */
    int default_history; /* "limit" when absent, e.g. 50 */
} gw_frame_limits;

/* A parsed frame. The strings point into the frame's private JSON tree and live until
 * gw_frame_free(). Absent optional fields are NULL. */
typedef struct gw_frame {
    gw_frame_type type;
    const char *room; /* join, leave, send, history: validated room name */
    const char *text; /* send: validated text */
    size_t text_len;
    const char *cid;    /* send (optional, validated), any frame may carry one */
    const char *token;  /* auth */
    const char *before; /* history (optional): a message id, validated with chat_msgid_parse */
    const char *after;  /* history (optional): a message id, older than before when both */
    const char *since;  /* join (optional): resume after this message id */
    const char *epoch;  /* join (optional): the epoch since belongs to */
    int limit;          /* join, history: 1..max_history, default_history when absent */
    bool presence;      /* join (optional, false when absent): members and presence frames */
    const char *upto;   /* read: a message id, validated with chat_msgid_parse */
    bool on;            /* typing */
    void *json_;        /* private: the json_t root */
} gw_frame;

typedef struct gw_frame_error {
    const char *code;           /* one of GW_ERR_* (static string) */
    char message[160];          /* for a person, e.g. "field \"room\" is required" */
    char cid[CHAT_CID_MAX + 1]; /* the frame's cid when it had a valid one, else "" */
} gw_frame_error;

/* Parses len bytes (not NUL-terminated). Returns 0 with *out filled (call gw_frame_free), or
 * CHAT_EINVAL with *err filled (nothing to free). Unknown extra fields are ignored. */
int gw_frame_parse(const char *data, size_t len, const gw_frame_limits *lim, gw_frame *out,
                   gw_frame_error *err);
void gw_frame_free(gw_frame *f);

#endif
