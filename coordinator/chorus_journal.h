/*  chorus_journal.h — the coordinator's durable memory, in LevelDB: the
    state of every flow after each transition, the exact definitions that
    running flows started with, and the causal trace of every business
    transaction seen on the mesh. Writes are collected and committed in one
    atomic batch (group commit) before the commands they caused are sent.

    A damaged journal is refused, never taken for an empty one: LevelDB
    checks every checksum, a journal directory without its CURRENT file is
    damaged unless it holds no data at all, and a commit mark kept beside
    the journal shows when commits that were made have gone missing (a log
    cut short or emptied). `chorus store check` and `chorus store repair`
    use chorus_journal_check and chorus_journal_repair.
*/
#ifndef CHORUS_JOURNAL_H_INCLUDED
#define CHORUS_JOURNAL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _chorus_journal_t chorus_journal_t;

//  Why a call failed; each has its own message, which names the journal
typedef enum {
    CHORUS_JOURNAL_OK = 0,
    CHORUS_JOURNAL_FAILED = 1,          //  anything else (the message says what)
    CHORUS_JOURNAL_LOCKED = 2,          //  another process has the journal open
    CHORUS_JOURNAL_FULL = 3,            //  no space left on the device
    CHORUS_JOURNAL_DENIED = 4,          //  permission denied
    CHORUS_JOURNAL_DAMAGED = 5,         //  corrupt, torn or incomplete
    CHORUS_JOURNAL_MISSING = 6,         //  no journal there (opening without creating)
} chorus_journal_failure_t;

//  Called for each saved flow; return non-zero to stop
typedef int (chorus_journal_flow_fn) (const char *id, const char *record, void *arg);
//  Called for each trace entry of a correlation id, in time order, with
//  the bytes that were put (they may hold NULs)
typedef int (chorus_journal_trace_fn) (const char *entry, size_t size, void *arg);

//  Opens the journal in dir, creating it when dir is absent or empty (and
//  create is true); NULL with the reason in error and its kind in *failure
//  (may be NULL)
chorus_journal_t *
    chorus_journal_new (const char *dir, bool create, chorus_journal_failure_t *failure,
                        char *error, size_t error_size);
void
    chorus_journal_destroy (chorus_journal_t **self_p);
//  Why the last call failed, and its kind
const char *
    chorus_journal_error (chorus_journal_t *self);
chorus_journal_failure_t
    chorus_journal_failure (chorus_journal_t *self);
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
//  Writes the pending batch; 0, or -1 when nothing of it was written: the
//  batch is kept, and the next commit tries it again
int
    chorus_journal_commit (chorus_journal_t *self);
//  How many writes are pending
size_t
    chorus_journal_pending (chorus_journal_t *self);

//  Reads (committed state only). Each returns -1 on a read error: a
//  damaged journal fails with CHORUS_JOURNAL_DAMAGED.
int
    chorus_journal_each_flow (chorus_journal_t *self, chorus_journal_flow_fn *fn, void *arg);
//  The source of a definition version in *source (caller frees; NULL if
//  not saved); 0 or -1
int
    chorus_journal_definition (chorus_journal_t *self, const char *name, int version,
                               char **source);
int
    chorus_journal_each_trace (chorus_journal_t *self, const char *correlation,
                               chorus_journal_trace_fn *fn, void *arg);
//  Forgets trace entries recorded before `before` (ms), visiting at most
//  max entries; returns how many it forgot, or -1
int
    chorus_journal_expire_traces (chorus_journal_t *self, uint64_t before, size_t max);

//  --------------------------------------------------------------------------
//  Offline: what `chorus store check` and `chorus store repair` report.
//  Neither prints anything. Both take the journal's lock, so they fail with
//  CHORUS_JOURNAL_LOCKED while a coordinator runs on it.

//  What a journal holds
typedef struct {
    chorus_journal_failure_t failure;   //  OK when the journal is sound
    char problem [512];                 //  why not, "" when sound
    size_t flows;                       //  flow records read
    size_t running;                     //  of which running
    size_t compensating;                //  compensating
    size_t completed;                   //  completed
    size_t failed;                      //  failed
    size_t cancelled;                   //  cancelled
    size_t stuck;                       //  stuck, waiting for an operator
    size_t undecodable;                 //  flow records that do not decode
    size_t unpublished;                 //  events journaled, not yet published
    size_t definitions;                 //  definition versions kept
    size_t traces;                      //  trace entries
    uint64_t commits;                   //  commits the journal holds
    uint64_t commits_made;              //  commits its mark says were made
} chorus_journal_report_t;

//  Opens the journal in dir (never creating it) and counts what it holds.
//  0 when it is sound; -1 otherwise, with report->failure and ->problem
//  (the counts say what could be read before the problem)
int
    chorus_journal_check (const char *dir, chorus_journal_report_t *report);

//  What a repair kept and lost; lists of flow ids are sorted and
//  NULL-terminated (NULL when the repair failed before making them)
typedef struct {
    chorus_journal_failure_t failure;   //  OK when the repair succeeded
    char problem [512];                 //  why not, "" when it succeeded
    bool before_known;                  //  the damaged journal could be read at all
    char **before;                      //  flows readable before (as far as it could be read)
    char **after;                       //  flows in the repaired journal
    char **lost;                        //  in before, not after
    size_t dropped;                     //  flow records after the repair that did not
                                        //  decode, now deleted (in lost too)
    uint64_t commits_made;              //  commits the mark says were made
    uint64_t commits;                   //  commits the repaired journal holds: when
                                        //  fewer, the last ones are lost and their
                                        //  flows cannot be named
    uint64_t dropped_bytes;             //  bytes of damaged log the repair dropped: what
                                        //  they held cannot be named either
    char *before_problem;               //  why reading before stopped early, or NULL
} chorus_journal_repair_t;

//  Runs LevelDB's repair on the journal in dir: what is readable is kept,
//  unreadable files are moved to dir/lost, undecodable flow records are
//  deleted, and the commit mark is set to what the journal now holds, so
//  that a coordinator accepts it. 0 or -1 (see report->problem). Free the
//  report with chorus_journal_repair_clear.
int
    chorus_journal_repair (const char *dir, chorus_journal_repair_t *report);
void
    chorus_journal_repair_clear (chorus_journal_repair_t *report);

#endif
