/* ps_persister.h: the persister's main loop: consume records, decode and batch them, store
 * each batch in MongoDB (retrying with backoff, committing nothing until stored), then commit
 * the batch's offsets. Runs on the calling thread until SIGINT/SIGTERM (blocked beforehand with
 * ps_os_block_signals) and then stores the last batch, commits and leaves the group.
 * Includers need _POSIX_C_SOURCE >= 200809L (for sigset_t). */
#ifndef PS_PERSISTER_H
#define PS_PERSISTER_H

#include <signal.h>

#include "ps_config.h"

/* Returns 0 after a clean shutdown, or a negative code when start-up failed or the last
 * batch could not be stored in CHAT_SHUTDOWN_MS (it will be replayed; nothing is lost). */
int ps_persister_run(const ps_settings *cfg, const sigset_t *signals);

#endif
