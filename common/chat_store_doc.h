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

#endif
