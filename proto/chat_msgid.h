/* chat_msgid.h: message ids derived from where Kafka stored the record.
 *
 * id = "PPPP-OOOOOOOOOOOOOOOOOOOO": the partition in 4 decimal digits, '-', the offset in 20.
 * Ids are unique across the cluster, identical for every reader of the record (gateways and
 * persister), and sort as strings in a room's stream order because a room maps to exactly one
 * partition (the record key is the room). Pure functions; any thread. */
#ifndef CHAT_MSGID_H
#define CHAT_MSGID_H

#include <stdint.h>

#define CHAT_MSGID_LEN 25 /* without the NUL */

/* Writes the id and a NUL into out. Returns 0, or -EINVAL for a partition outside 0..9999
 * or a negative offset. */
int chat_msgid_format(char out[CHAT_MSGID_LEN + 1], int32_t partition, int64_t offset);

/* Parses exactly the format above (s NUL-terminated). Returns 0 or -EINVAL. Either out
 * pointer may be NULL. */
int chat_msgid_parse(const char *s, int32_t *partition, int64_t *offset);

#endif
