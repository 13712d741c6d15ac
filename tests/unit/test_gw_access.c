/* test_gw_access.c: the room access rule (gw_access.c) and the rooms/role claims as gw_auth.c
 * parses them: exact names and prefixes, the empty claim, direct rooms (only their two users;
 * users that cannot have direct rooms get invalid_user), how the claim and direct rooms
 * combine, and tokens refused for a bad rooms claim (not an array, bad entries, too many). */
#include <jwt.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gw_access.h"
#include "gw_auth.h"

#define NOW 1764072000L
#define SECRET "0123456789abcdef0123456789abcdef"

static gw_auth *auth(void)
{
    gw_auth *a = NULL;
    char err[256];
    gw_auth_config cfg = {.alg = "HS256", .secret = SECRET, .leeway_s = 30};
    CHECK(gw_auth_new(&a, &cfg, err, sizeof(err)) == 0);
    return a;
}

/* Verifies an HS256 token with these claims (JSON, without exp: one is added). */
static int verify(gw_auth *a, const char *claims, gw_identity *id, char *err, size_t errlen)
{
    jwt_t *jwt = NULL;
    char *tok = NULL;
    CHECK(jwt_new(&jwt) == 0);
    CHECK(jwt_add_grants_json(jwt, claims) == 0);
    CHECK(jwt_add_grant_int(jwt, "exp", NOW + 600) == 0);
    CHECK(jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)SECRET, (int)strlen(SECRET)) == 0);
    tok = jwt_encode_str(jwt);
    jwt_free(jwt);
    err[0] = '\0';
    int rc = gw_auth_verify(a, tok, NOW, id, err, errlen);
    free(tok);
    return rc;
}

static gw_identity ident(const char *sub, const char *rooms_packed)
{
    gw_identity id;
    memset(&id, 0, sizeof(id));
    snprintf(id.sub, sizeof(id.sub), "%s", sub);
    id.rooms = (char *)rooms_packed; /* borrowed: never cleared */
    return id;
}

/* The access code for id and room: "" when allowed. */
static const char *decide(const gw_identity *id, const char *room)
{
    const char *code = NULL;
    char why[96];
    if (gw_access_may_join(id, room, &code, why, sizeof(why)))
        return "";
    CHECK(why[0] != '\0');
    return code;
}

static void test_patterns(void)
{
    CHECK(gw_access_valid_pattern("general", 7));
    CHECK(gw_access_valid_pattern("*", 1));
    CHECK(gw_access_valid_pattern("team-*", 6));
    CHECK(gw_access_valid_pattern("dm:alice:*", 10));
    CHECK(gw_access_valid_pattern("dm:alice:bob", 12));
    CHECK(gw_access_valid_pattern("a@b*", 4));
    CHECK(!gw_access_valid_pattern("", 0));
    CHECK(!gw_access_valid_pattern("bad room", 8));
    CHECK(!gw_access_valid_pattern("a**", 3));
    CHECK(!gw_access_valid_pattern("mid*dle", 7));
    CHECK(!gw_access_valid_pattern("dm:bob:alice", 12)); /* not in byte order: no room */
    CHECK(!gw_access_valid_pattern("a@b", 3));           /* @ only in direct rooms */
    char longp[CHAT_ROOM_MAX + 2];
    memset(longp, 'x', sizeof(longp));
    CHECK(!gw_access_valid_pattern(longp, CHAT_ROOM_MAX)); /* 132 x: not a room name */
    longp[CHAT_ROOM_MAX - 1] = '*';
    CHECK(gw_access_valid_pattern(longp, CHAT_ROOM_MAX));
    longp[CHAT_ROOM_MAX] = '*';
    CHECK(!gw_access_valid_pattern(longp, CHAT_ROOM_MAX + 1));
}

static void test_claim_rule(void)
{
    static const char packed[] = "general\0team-*\0";
    gw_identity id = ident("alice", packed);
    CHECK_STR(decide(&id, "general"), "");
    CHECK_STR(decide(&id, "general2"), GW_ERR_FORBIDDEN); /* exact means exact */
    CHECK_STR(decide(&id, "genera"), GW_ERR_FORBIDDEN);
    CHECK_STR(decide(&id, "team-"), "");
    CHECK_STR(decide(&id, "team-red"), "");
    CHECK_STR(decide(&id, "team"), GW_ERR_FORBIDDEN);
    CHECK_STR(decide(&id, "random"), GW_ERR_FORBIDDEN);
    /* the claim limits direct rooms too */
    CHECK_STR(decide(&id, "dm:alice:bob"), GW_ERR_FORBIDDEN);

    static const char none[] = "";
    id = ident("alice", none); /* "rooms": [] allows nothing */
    CHECK_STR(decide(&id, "general"), GW_ERR_FORBIDDEN);

    static const char all[] = "*\0";
    id = ident("alice", all);
    CHECK_STR(decide(&id, "anything"), "");
    CHECK_STR(decide(&id, "dm:alice:bob"), "");
    CHECK_STR(decide(&id, "dm:bob:carol"), GW_ERR_FORBIDDEN); /* never others' direct rooms */

    static const char mydms[] = "dm:*\0";
    id = ident("bob", mydms);
    CHECK_STR(decide(&id, "dm:alice:bob"), "");
    CHECK_STR(decide(&id, "general"), GW_ERR_FORBIDDEN);

    CHECK(gw_access_claim_allows(NULL, "x"));
}

static void test_direct_rooms(void)
{
    gw_identity alice = ident("alice", NULL), bob = ident("bob", NULL),
                carol = ident("carol", NULL);
    CHECK_STR(decide(&alice, "general"), "");
    CHECK_STR(decide(&alice, "dm:alice:bob"), "");
    CHECK_STR(decide(&bob, "dm:alice:bob"), "");
    CHECK_STR(decide(&carol, "dm:alice:bob"), GW_ERR_FORBIDDEN);
    CHECK_STR(decide(&alice, "dm:alice:alicex"), "");
    CHECK_STR(decide(&alice, "dm:alic:bob"), GW_ERR_FORBIDDEN); /* a prefix of a user is not it */
    gw_identity mail = ident("a.b@example.com", NULL);
    CHECK_STR(decide(&mail, "dm:a.b@example.com:zed"), "");

    /* users that cannot have direct rooms: ':', other characters, over 64 bytes */
    gw_identity colon = ident("a:b", NULL), space = ident("a b", NULL),
                utf = ident("j\xc3\xb6", NULL);
    char longsub[80];
    memset(longsub, 'u', 65);
    longsub[65] = '\0';
    gw_identity lng = ident(longsub, NULL);
    CHECK_STR(decide(&colon, "dm:a:b"), GW_ERR_INVALID_USER);
    CHECK_STR(decide(&space, "dm:alice:bob"), GW_ERR_INVALID_USER);
    CHECK_STR(decide(&utf, "dm:alice:bob"), GW_ERR_INVALID_USER);
    CHECK_STR(decide(&lng, "dm:alice:bob"), GW_ERR_INVALID_USER);
    CHECK_STR(decide(&colon, "general"), ""); /* plain rooms stay open to them */
    longsub[64] = '\0';
    lng = ident(longsub, NULL);
    char room[CHAT_ROOM_MAX + 1];
    snprintf(room, sizeof(room), "dm:%s:zz", longsub);
    CHECK_STR(decide(&lng, room), "");
}

static void test_claims_parsed(void)
{
    gw_auth *a = auth();
    gw_identity id;
    char err[256];

    CHECK(verify(a, "{\"sub\":\"alice\"}", &id, err, sizeof(err)) == 0);
    CHECK(id.rooms == NULL && !id.server);
    gw_identity_clear(&id);

    CHECK(verify(a, "{\"sub\":\"alice\",\"rooms\":[\"general\",\"team-*\"],\"role\":\"server\"}",
                 &id, err, sizeof(err)) == 0);
    CHECK(id.server);
    CHECK(id.rooms && memcmp(id.rooms, "general\0team-*\0", 16) == 0);
    CHECK_STR(decide(&id, "team-x"), "");
    CHECK_STR(decide(&id, "other"), GW_ERR_FORBIDDEN);
    gw_identity_clear(&id);
    CHECK(id.rooms == NULL && id.sub[0] == '\0');

    CHECK(verify(a, "{\"sub\":\"alice\",\"rooms\":[],\"role\":\"user\"}", &id, err, sizeof(err)) ==
          0);
    CHECK(id.rooms && id.rooms[0] == '\0' && !id.server);
    gw_identity_clear(&id);

    static const char *bad[] = {
        "{\"sub\":\"a\",\"rooms\":\"general\"}",
        "{\"sub\":\"a\",\"rooms\":{}}",
        "{\"sub\":\"a\",\"rooms\":[1]}",
        "{\"sub\":\"a\",\"rooms\":[\"ok\",\"bad room\"]}",
        "{\"sub\":\"a\",\"rooms\":[\"\"]}",
        "{\"sub\":\"a\",\"rooms\":[\"x*y\"]}",
        "{\"sub\":\"a\",\"role\":1}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = verify(a, bad[i], &id, err, sizeof(err));
        CHECK(rc != 0);
        CHECK(strstr(err, "rooms") || strstr(err, "role"));
        CHECK(id.rooms == NULL && id.sub[0] == '\0');
    }

    /* GW_ACCESS_MAX_PATTERNS entries pass, one more is refused */
    char claims[4096];
    size_t n = (size_t)snprintf(claims, sizeof(claims), "{\"sub\":\"a\",\"rooms\":[");
    for (int i = 0; i < GW_ACCESS_MAX_PATTERNS; i++)
        n += (size_t)snprintf(claims + n, sizeof(claims) - n, "%s\"r%d\"", i ? "," : "", i);
    snprintf(claims + n, sizeof(claims) - n, "]}");
    CHECK(verify(a, claims, &id, err, sizeof(err)) == 0);
    CHECK_STR(decide(&id, "r63"), "");
    gw_identity_clear(&id);
    snprintf(claims + n, sizeof(claims) - n, ",\"r64\"]}");
    CHECK(verify(a, claims, &id, err, sizeof(err)) != 0);
    CHECK(strstr(err, "more than 64") != NULL);
    gw_auth_free(a);
}

int main(void)
{
    RUN(test_patterns);
    RUN(test_claim_rule);
    RUN(test_direct_rooms);
    RUN(test_claims_parsed);
    return check_summary();
}
