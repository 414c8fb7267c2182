/*  chorus_coordinator_stats.h — the coordinator's series at /metrics:
    flows started and finished, running and stuck, how long flows and
    steps take, retries, compensations and journal commits. The
    coordinator's thread counts into figures it alone owns, with no lock,
    and copies them once a second into a snapshot that the scrape reads
    under a lock, as a node does with its own. Called by the coordinator;
    calls only the engine and the journal.
*/
#ifndef CHORUS_COORDINATOR_STATS_H_INCLUDED
#define CHORUS_COORDINATOR_STATS_H_INCLUDED

#include "chorus.h"
#include "chorus_flow.h"
#include "chorus_journal.h"

typedef struct _chorus_coordinator_stats_t chorus_coordinator_stats_t;

//  A flow counts as stuck when it is in state stuck, or when it runs (or
//  compensates) and nothing happened to it for stuck_after_ms
chorus_coordinator_stats_t *
    chorus_coordinator_stats_new (uint64_t stuck_after_ms);
void
    chorus_coordinator_stats_destroy (chorus_coordinator_stats_t **self_p);

//  A flow moved (started: this is its first move) and produced these
//  actions; call before its move is journaled (the engine's list of
//  changed tasks is read). Counts what ended, retries and compensations.
void
    chorus_coordinator_stats_moved (chorus_coordinator_stats_t *self, chorus_flow_t *flow,
                                    const chorus_actions_t *actions, bool started);

//  Whether the figures are due to be copied (about once a second)
bool
    chorus_coordinator_stats_due (chorus_coordinator_stats_t *self, uint64_t now);
//  Counts one live flow (not ended), which last changed at `changed`; call
//  for each, then chorus_coordinator_stats_copy
void
    chorus_coordinator_stats_live (chorus_coordinator_stats_t *self, chorus_flow_t *flow,
                                   uint64_t changed, uint64_t now);
//  Copies the figures for the scrape, with the journal's commit times
//  (journal may be NULL)
void
    chorus_coordinator_stats_copy (chorus_coordinator_stats_t *self, chorus_journal_t *journal,
                                   uint64_t now);

//  Writes the snapshot (a chorus_metrics_render_fn; arg is the stats):
//  called on the metrics server's thread
void
    chorus_coordinator_stats_render (chorus_exposition_t *out, void *arg);

#endif
