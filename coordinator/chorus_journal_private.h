/*  chorus_journal_private.h — what the journal's files share: the
    journal itself (chorus_journal.c), its writer thread on top of it
    (chorus_journal_writer.c) and its offline check and repair
    (chorus_journal_repair.c). Not for other classes. The journal itself
    calls neither of the other two.
*/
#ifndef CHORUS_JOURNAL_PRIVATE_H_INCLUDED
#define CHORUS_JOURNAL_PRIVATE_H_INCLUDED

#include "chorus_journal.h"

#include <leveldb/c.h>
#include <pthread.h>
#include <stdatomic.h>

#define S_MARK_FILE "CHORUS-COMMITS"
#define S_MARK_SIZE 21              //  20 digits and a newline
#define S_REOPEN_MS 1000            //  between tries to reopen after a failed commit

//  The writer thread and what it shares with the journal's caller
typedef struct _chorus__journal_writer_t chorus__journal_writer_t;

//  A correlation whose trace entries have an index key (see
//  chorus_journal_put_trace), kept in a slot by its hash
#define S_INDEXED_SLOTS 16384
#define S_REINDEX_MS (23 * 3600 * 1000ull)  //  written again once this old
typedef struct {
    char *correlation;                  //  NULL: a free slot
    uint64_t time;                      //  when its index key was written (wall clock, ms)
} chorus__journal_indexed_t;

struct _chorus_journal_t {
    char *dir;                          //  where it lives
    leveldb_t *db;                      //  the database
    leveldb_options_t *options;         //  how it was opened
    leveldb_writeoptions_t *write;      //  sync or not
    leveldb_writeoptions_t *lazy;       //  never sync: for batches of trace entries only
    leveldb_readoptions_t *read;        //  checked reads
    leveldb_writebatch_t *batch;        //  pending writes
    size_t pending;                     //  how many
    bool promised;                      //  the batch holds flow state or definitions
    uint64_t commits;                   //  commits made, as the 'c' key says
    int mark;                           //  the commit mark file, -1 when not open
    int64_t reopen_at;                  //  monotonic ms: no reopen before, after a failed one
    chorus_journal_failure_t failure;   //  kind of the last failure
    char error [512];                   //  why the last call failed
    chorus__journal_indexed_t *indexed; //  correlations given an index key lately, by
                                        //  hash, S_INDEXED_SLOTS of them; NULL: none yet
    chorus__journal_writer_t *writer;   //  the writer thread; NULL: the caller commits
    bool threaded;                      //  a writer thread commits (see read_begin)
    pthread_mutex_t db_lock;            //  with a writer: db against its closing and reopening
    chorus_journal_failure_t closed_failure;    //  why the writer closed db, under db_lock
    char closed_error [512];            //  and what it said
    uint64_t submitted;                 //  tickets given: batches submitted
    uint64_t committed;                 //  without a writer: the last ticket committed
    atomic_uint_fast64_t commit_times [CHORUS_JOURNAL_COMMIT_BOUNDS + 1];  //  the writer's
                                        //  commits by time taken (chorus_journal_commit_times)
    atomic_uint_fast64_t commit_sum_us; //  their times added up
};

//  Calls fn (key, key length, value, value length) for the keys starting
//  with prefix; stops when fn returns non-zero
typedef int (chorus__journal_visit_fn) (const char *key, size_t key_size, const char *value,
                                        size_t size, void *arg);

//  What a LevelDB status, or an errno, says went wrong
chorus_journal_failure_t
    chorus__journal_classify (const char *text);
chorus_journal_failure_t
    chorus__journal_classify_errno (int code);
//  Writes the message for a failure of `what` (e.g. "commit") into error
void
    chorus__journal_describe (char *error, size_t error_size, const char *dir,
                              chorus_journal_failure_t kind, const char *what,
                              const char *reason);
//  Why a journal that holds fewer commits than its mark is damaged
void
    chorus__journal_missing (char *reason, size_t reason_size, uint64_t commits,
                             uint64_t mark);
//  Records a failure; returns -1
int
    chorus__journal_fail (chorus_journal_t *self, chorus_journal_failure_t kind,
                          const char *what, const char *reason);
//  Opens the database and the mark (its count in *mark_out, when not NULL);
//  with check_mark, a journal that holds fewer commits than its mark says
//  were made fails as damaged. On failure returns NULL with the reason in
//  error and its kind in *failure.
chorus_journal_t *
    chorus__journal_open (const char *dir, bool create, bool check_mark, uint64_t *mark_out,
                          chorus_journal_failure_t *failure, char *error, size_t error_size);
//  Writes the commit mark; 0 or -1 (errno says why)
int
    chorus__journal_mark_write (int fd, uint64_t commits);
//  The flow id (at most id_size - 1 bytes) and record number of a key
//  under 'f'; CHORUS_JOURNAL_LEGACY for a record of format 1; 0, or -1
//  when it is no flow record's key
int
    chorus__journal_record_key (const char *key, size_t key_size, char *id, size_t id_size,
                                uint64_t *number);
//  A flow record of format 1 (the whole flow as JSON), as the coordinator
//  wrote them before deltas: for the tests of migration
void
    chorus__journal_put_legacy (chorus_journal_t *self, const char *id, const char *record);
//  With a writer, commits are its own, and the caller's reads of the
//  database are kept from its closing and reopening it after a failed
//  commit: between read_begin (0, or -1 with the writer's failure
//  recorded) and read_end. Without one, read_begin reopens the database
//  when a commit closed it.
int
    chorus__journal_read_begin (chorus_journal_t *self);
void
    chorus__journal_read_end (chorus_journal_t *self);
//  Reopens the database after a failed write, at most once a second; 0
//  when it is open, or -1 with the reason in error and its kind in *failure
int
    chorus__journal_reopen (chorus_journal_t *self, char *error, size_t error_size,
                            chorus_journal_failure_t *failure);
//  Writes the pending batch from the calling thread, as chorus_journal_commit
//  without a writer does; 0, or -1 with the batch kept
int
    chorus__journal_write (chorus_journal_t *self);
//  Frees the journal (its writer stopped)
void
    chorus__journal_close (chorus_journal_t **self_p);
//  Visits the keys starting with prefix; the count visited, or -1
int
    chorus__journal_scan (chorus_journal_t *self, const char *prefix, size_t prefix_size,
                          chorus__journal_visit_fn *fn, void *arg);

#endif
