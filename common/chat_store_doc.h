/* chat_store_doc.h: the stored message, the one schema of the MongoDB collection the persister
 * writes and the gateway reads: the collection's name, its index, and the document of one
 * message, built from an envelope and parsed back into a chat_message:
 *   {_id: <message id>, room, from, [name when not empty], text, ts: <BSON date>, cid}
 * _id is the message id (chat_msgid.h), so a replayed message is a duplicate key and ids sort
 * in the room's order. Pure functions; any thread. */
#ifndef CHAT_STORE_DOC_H
#define CHAT_STORE_DOC_H

#include <bson/bson.h>

#include "chat_envelope.h"
#include "chat_validate.h"

#define CHAT_STORE_COLLECTION "messages"
#define CHAT_STORE_INDEX_NAME "room_id_desc" /* {room: 1, _id: -1}: a room, newest first */

/* Appends the index spec {key: {room: 1, _id: -1}, name: CHAT_STORE_INDEX_NAME} to index (an
 * initialised document: one element of createIndexes' `indexes` array). Returns 0 or -ENOMEM. */
int chat_store_doc_index(bson_t *index);

/* Appends the document of the message with id id (chat_msgid_format) and envelope e (as
 * decoded: text_len is the text's length) to doc (initialised with bson_init, empty): name
 * only when not empty, a NULL room, from, text or cid stored as "". Returns 0, or -ENOMEM when
 * the document would be too large. */
int chat_store_doc_build(const char *id, const chat_envelope *e, bson_t *doc);

/* Parses a stored document into *m (overwritten). On success m->env owns its strings (free
 * with chat_envelope_clear()); a missing or non-string room, from, name, text or cid becomes
 * "", a missing ts 0 (an int64 ts is taken as ms). Returns 0; CHAT_EINVAL when _id is not a
 * message id (not a document we wrote); -ENOMEM. On failure *m is zeroed. */
int chat_store_doc_parse(const bson_t *doc, chat_message *m);

/* Read state, collection `reads`: one document per (room, user), moved only forward:
 *   {_id: "<room> <user>", room, user, upto: <message id>, ts: <BSON date>}
 * (a room name has no space, so the _id is unique; message ids sort as strings in the room's
 * order, so "forward" is `$max` on upto). A document without upto names a room the user has
 * not read yet. Index {user: 1, room: 1} serves "the read state of a user". */
#define CHAT_READS_COLLECTION "reads"
#define CHAT_READS_INDEX_NAME "user_room"
#define CHAT_READS_ID_MAX (CHAT_ROOM_MAX + 1 + CHAT_USER_MAX)

typedef struct chat_read_state {
    char room[CHAT_ROOM_MAX + 1];
    char user[CHAT_USER_MAX + 1];
    char upto[CHAT_MSGID_LEN + 1]; /* "" when the document has none */
} chat_read_state;

/* The index spec {key: {user: 1, room: 1}, name: CHAT_READS_INDEX_NAME}, as chat_store_doc_index.
 * Returns 0 or -ENOMEM. */
int chat_reads_doc_index(bson_t *index);
/* The _id of (room, user) into out (at least CHAT_READS_ID_MAX + 1 bytes). Returns 0 or
 * CHAT_EINVAL (a room name with a space, an empty user, too long). */
int chat_reads_doc_id(const char *room, const char *user, char *out, size_t outlen);
/* The forward-only upsert of (room, user) to upto at ts_ms: selector {_id} and update
 * {$max: {upto, ts}, $set: {room, user}} (both initialised, empty). Returns 0, CHAT_EINVAL or
 * -ENOMEM. */
int chat_reads_doc_update(const char *room, const char *user, const char *upto, int64_t ts_ms,
                          bson_t *selector, bson_t *update);
/* The upsert that makes sure (room, user) has a document without moving it: selector {_id} and
 * update {$setOnInsert: {room, user}}. The persister does it for both users of every direct
 * room it stores messages of, so that a direct room is listed for a user who has not read it.
 * Returns 0, CHAT_EINVAL or -ENOMEM. */
int chat_reads_doc_touch(const char *room, const char *user, bson_t *selector, bson_t *update);
/* Parses a reads document. Returns 0, or CHAT_EINVAL when room, user or (a present) upto is not
 * what chat_reads_doc_update writes. */
int chat_reads_doc_parse(const bson_t *doc, chat_read_state *out);

#endif
