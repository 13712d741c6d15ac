/* ps_copies.h: the persister's memory of recent sends, by (room, from, cid), to keep a second
 * record of one send out of the store: a send Kafka refused (its producer timed out) but wrote
 * anyway, followed by the client's retry with the same cid (docs/deploy.md, "Losing a Kafka
 * broker"). The gateways drop the same copy from fan-out (gw_log_skip_copy), so the store and the
 * live stream agree.
 *
 * It remembers the first (partition, offset) of each key among the last `cap` records with a
 * cid, oldest forgotten first. A record is a copy when its key is remembered under the same
 * partition and an earlier offset; the same offset again (a replay after a failed batch or a
 * rebalance) is never a copy. After a restart the memory is empty: a copy whose original was
 * committed before the restart is stored (the limit is documented). Pure logic; one thread (the
 * persister's loop) owns it. */
#ifndef PS_COPIES_H
#define PS_COPIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ps_copies ps_copies;

/* cap: how many keys are remembered (>= 1). Returns 0 or -ENOMEM / -EINVAL. */
int ps_copies_new(ps_copies **out, size_t cap);
void ps_copies_free(ps_copies *c);

/* Whether the record (partition, offset) from `from` in room with that cid (non-empty) is a
 * copy of an earlier one; when it is not, it is remembered (a failed allocation only means it
 * is not: nothing is lost by forgetting). */
bool ps_copies_seen(ps_copies *c, const char *room, const char *from, const char *cid,
                    int32_t partition, int64_t offset);

/* Keys remembered now. */
size_t ps_copies_count(const ps_copies *c);

#endif
