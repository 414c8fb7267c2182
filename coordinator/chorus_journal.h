/*  chorus_journal.h — the coordinator's durable memory, in LevelDB: the
    state of every flow after each transition, the exact definitions that
    running flows started with, and the causal trace of every business
    transaction seen on the mesh. Writes are collected and committed in one
    atomic batch (group commit) before the commands they caused are sent.
*/
#ifndef CHORUS_JOURNAL_H_INCLUDED
#define CHORUS_JOURNAL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _chorus_journal_t chorus_journal_t;

//  Called for each saved flow; return non-zero to stop
typedef int (chorus_journal_flow_fn) (const char *id, const char *record, void *arg);
//  Called for each trace entry of a correlation id, in time order, with
//  the bytes that were put (they may hold NULs)
typedef int (chorus_journal_trace_fn) (const char *entry, size_t size, void *arg);

//  Opens (creating) the journal in dir; NULL with the reason in error
chorus_journal_t *
    chorus_journal_new (const char *dir, char *error, size_t error_size);
void
    chorus_journal_destroy (chorus_journal_t **self_p);
const char *
    chorus_journal_error (chorus_journal_t *self);
//  Flush every commit to disk (default on: a flow's progress must survive
//  the machine, not only the process). A commit of trace entries alone is
//  never flushed: it survives the process, not always the machine.
void
    chorus_journal_set_sync (chorus_journal_t *self, bool sync);

//  Pending writes, applied atomically by commit
void
    chorus_journal_put_flow (chorus_journal_t *self, const char *id, const char *record);
void
    chorus_journal_delete_flow (chorus_journal_t *self, const char *id);
void
    chorus_journal_put_definition (chorus_journal_t *self, const char *name, int version,
                                   const char *source);
void
    chorus_journal_put_trace (chorus_journal_t *self, const char *correlation, uint64_t time,
                              const char *event_id, const char *entry, size_t size);
//  Writes the pending batch; 0, or -1 (nothing of it was written)
int
    chorus_journal_commit (chorus_journal_t *self);
//  How many writes are pending
size_t
    chorus_journal_pending (chorus_journal_t *self);

//  Reads (committed state only)
int
    chorus_journal_each_flow (chorus_journal_t *self, chorus_journal_flow_fn *fn, void *arg);
//  The source of a definition version (caller frees), NULL if not saved
char *
    chorus_journal_definition (chorus_journal_t *self, const char *name, int version);
int
    chorus_journal_each_trace (chorus_journal_t *self, const char *correlation,
                               chorus_journal_trace_fn *fn, void *arg);
//  Forgets trace entries recorded before `before` (ms), visiting at most
//  max entries; returns how many it forgot, or -1
int
    chorus_journal_expire_traces (chorus_journal_t *self, uint64_t before, size_t max);

#endif
