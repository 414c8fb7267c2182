/*  chorus_journal.h — the coordinator's durable memory, in LevelDB: the
    records of every flow (a snapshot of its state, then a delta per
    transition), the exact definitions that running flows started with,
    and the causal trace of every business transaction seen on the mesh.
    Writes are collected and committed in one atomic batch (group commit)
    before the commands they caused are sent.

    A flow's record is one MessagePack array, its envelope:

        [format, kind, state, unpublished, engine, coordinator, checksum]

    format is 2 (format 1, the whole flow as one JSON text under the flow's
    id, is read so that a coordinator migrates it); kind is 0 for a
    snapshot, 1 for a delta; state is the flow's state once the record
    applies, numbered as chorus_flow_state_t (1 running, 2 compensating,
    3 completed, 4 failed, 5 cancelled, 6 stuck); unpublished counts the
    events it then has to publish; engine is the flow engine's part (nil
    when the engine's state did not change) and coordinator the
    coordinator's; checksum is the CRC-32 (zlib's) of the record's key
    (the flow's id with its NUL, then its number as 8 bytes, big-endian)
    and of every byte of the record before it, so that bytes damaged inside
    a part or a key that still decode are found (a record written without
    it, of six values, is read too). The envelope's fields are checked against what they
    sum up: the engine's part begins with the flow's state, and the
    coordinator's lists the events to publish (see chorus_flow_record.c
    and chorus_coordinator.c for the rest of each; the coordinator's may
    end in one more value, the tries of commands that the flow holds until
    they go to the trace). A flow's records are
    numbered from its snapshot on, one up for each delta: records that do
    not follow each other, or do not start with a snapshot, are damage.

    A damaged journal is refused, never taken for an empty one: LevelDB
    checks every checksum, a journal directory without its CURRENT file is
    damaged unless it holds no data at all, and a commit mark kept beside
    the journal shows when commits that were made have gone missing (a log
    cut short or emptied). `chorus store check` and `chorus store repair`
    use chorus_journal_check and chorus_journal_repair.
*/
#ifndef CHORUS_JOURNAL_H_INCLUDED
#define CHORUS_JOURNAL_H_INCLUDED

#include "chorus_record.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _chorus_journal_t chorus_journal_t;

//  The envelope's format, and its kinds of records
#define CHORUS_JOURNAL_FORMAT 2
#define CHORUS_JOURNAL_SNAPSHOT 0
#define CHORUS_JOURNAL_DELTA 1
//  The number given to a flow's record of format 1
#define CHORUS_JOURNAL_LEGACY UINT64_MAX

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

//  Called for each flow record, a flow's records together and in order
//  (one of format 1 first, with number CHORUS_JOURNAL_LEGACY); return
//  non-zero to stop
typedef int (chorus_journal_record_fn) (const char *id, uint64_t number, const void *data,
                                        size_t size, void *arg);
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

//  Pending writes, applied atomically by commit. A flow's record `number`
//  (one that need not survive the machine, only the process, when not
//  `durable`: a commit of such records and trace entries alone is not
//  flushed); its records from `from` up to (not including) `to`; its
//  record of format 1
void
    chorus_journal_put_record (chorus_journal_t *self, const char *id, uint64_t number,
                               const void *data, size_t size, bool durable);
void
    chorus_journal_delete_records (chorus_journal_t *self, const char *id, uint64_t from,
                                   uint64_t to);
void
    chorus_journal_delete_legacy (chorus_journal_t *self, const char *id);
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

//  --------------------------------------------------------------------------
//  Pipelined group commit (chorus_journal_writer.c): a thread of the
//  journal's own writes and flushes each batch, while its caller goes on
//  making the next one. Batches submitted while one is being written are
//  written together after it, in order. A batch is numbered by a ticket;
//  what a batch caused (commands, acknowledgements) may leave once
//  chorus_journal_durable has reached its ticket. A batch that fails to
//  commit (a full disk) is tried again, at most once a second, with every
//  batch after it held behind it; nothing after it becomes durable first.

//  Starts the writer thread (after chorus_journal_set_sync, which it then
//  reads); 0, or -1 (see chorus_journal_error). Without
//  it (chorus store, the tests of the journal) commits are made by the
//  calling thread, and tickets count them the same way.
int
    chorus_journal_start_writer (chorus_journal_t *self);
//  The ticket the pending writes will have: the ticket of the last batch
//  submitted when nothing is pending
uint64_t
    chorus_journal_ticket (chorus_journal_t *self);
//  Hands the pending batch to the writer, and returns its ticket (see
//  chorus_journal_ticket); never blocks on the disk. Without a writer it
//  commits the batch, and chorus_journal_wait says whether that succeeded.
uint64_t
    chorus_journal_submit (chorus_journal_t *self);
//  The ticket of the last batch that is committed: written, and flushed
//  when it carried flow state or definitions
uint64_t
    chorus_journal_durable (chorus_journal_t *self);
//  A file descriptor that becomes readable when the writer has news (a
//  batch committed, or a commit failed), -1 without a writer
int
    chorus_journal_fd (chorus_journal_t *self);
//  How long the writer's commits took, for the coordinator's figures:
//  commits per bucket (not cumulative) of chorus_journal_commit_bounds,
//  seconds, the last bucket beyond them, and the sum of their times in
//  microseconds. Read from any thread
#define CHORUS_JOURNAL_COMMIT_BOUNDS 12
extern const double chorus_journal_commit_bounds [CHORUS_JOURNAL_COMMIT_BOUNDS];
void
    chorus_journal_commit_times (chorus_journal_t *self,
                                 uint64_t counts [CHORUS_JOURNAL_COMMIT_BOUNDS + 1],
                                 uint64_t *sum_us);
//  Takes the writer's news (empties the descriptor): 0, or -1 when its
//  last try failed, with why in chorus_journal_error and _failure (a
//  damaged journal: the writer gives up; anything else: it tries again)
int
    chorus_journal_writer_status (chorus_journal_t *self);
//  Waits until the batch of `ticket` is committed; 0, or -1 when a commit
//  failed first (see chorus_journal_writer_status)
int
    chorus_journal_wait (chorus_journal_t *self, uint64_t ticket);

//  Reads (committed state only). Each returns -1 on a read error: a
//  damaged journal fails with CHORUS_JOURNAL_DAMAGED.
int
    chorus_journal_each_record (chorus_journal_t *self, chorus_journal_record_fn *fn, void *arg);
//  The source of a definition version in *source (caller frees; NULL if
//  not saved); 0 or -1
int
    chorus_journal_definition (chorus_journal_t *self, const char *name, int version,
                               char **source);
int
    chorus_journal_each_trace (chorus_journal_t *self, const char *correlation,
                               chorus_journal_trace_fn *fn, void *arg);
//  Forgets trace entries recorded before `before` (ms), visiting at most
//  max entries: their deletes join the pending batch, for the caller's
//  next commit. Returns how many it forgot, or -1
int
    chorus_journal_expire_traces (chorus_journal_t *self, uint64_t before, size_t max);

//  --------------------------------------------------------------------------
//  The envelope of a flow's record

//  What a record's envelope says, and where its two parts are
typedef struct {
    int kind;                           //  CHORUS_JOURNAL_SNAPSHOT or _DELTA
    int state;                          //  the flow's state once it applies
    uint64_t unpublished;               //  events then to publish
    chorus_reader_t engine;             //  the engine's part, alone
    chorus_reader_t coordinator;        //  the coordinator's part, alone
} chorus_journal_envelope_t;

//  Starts a record in `record` (emptied first): the engine's part and the
//  coordinator's must follow, one value each, and then the seal
void
    chorus_journal_envelope_write (chorus_record_t *record, int kind, int state,
                                   uint64_t unpublished);
//  Ends the record with the checksum of all it holds and of its key: flow
//  id's record `number`
void
    chorus_journal_envelope_seal (chorus_record_t *record, const char *id, uint64_t number);
//  Opens flow id's record `number`; 0, or -1 with the problem in *why (a
//  static string)
int
    chorus_journal_envelope_read (const char *id, uint64_t number, const void *data,
                                  size_t size, chorus_journal_envelope_t *envelope,
                                  const char **why);

//  --------------------------------------------------------------------------
//  Offline: what `chorus store check` and `chorus store repair` report.
//  Neither prints anything. Both take the journal's lock, so they fail with
//  CHORUS_JOURNAL_LOCKED while a coordinator runs on it.

//  What a journal holds
typedef struct {
    chorus_journal_failure_t failure;   //  OK when the journal is sound
    char problem [512];                 //  why not, "" when sound
    size_t flows;                       //  flows read
    size_t running;                     //  of which running
    size_t compensating;                //  compensating
    size_t completed;                   //  completed
    size_t failed;                      //  failed
    size_t cancelled;                   //  cancelled
    size_t stuck;                       //  stuck, waiting for an operator
    size_t undecodable;                 //  flows whose records do not decode
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
    size_t dropped;                     //  flows whose records did not decode after the
                                        //  repair, now deleted (in lost too)
    uint64_t commits_made;              //  commits the mark says were made
    uint64_t commits;                   //  commits the repaired journal holds: when
                                        //  fewer, the last ones are lost and their
                                        //  flows cannot be named
    uint64_t dropped_bytes;             //  bytes of damaged log the repair dropped: what
                                        //  they held cannot be named either
    char *before_problem;               //  why reading before stopped early, or NULL
} chorus_journal_repair_t;

//  Runs LevelDB's repair on the journal in dir: what is readable is kept,
//  unreadable files are moved to dir/lost, the records of flows that do
//  not decode are deleted, and the commit mark is set to what the journal now holds, so
//  that a coordinator accepts it. 0 or -1 (see report->problem). Free the
//  report with chorus_journal_repair_clear.
int
    chorus_journal_repair (const char *dir, chorus_journal_repair_t *report);
void
    chorus_journal_repair_clear (chorus_journal_repair_t *report);

#endif
