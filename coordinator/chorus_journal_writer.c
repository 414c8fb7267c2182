/*  chorus_journal_writer.c — the journal's writer thread: pipelined group
    commit (see chorus_journal.h). The caller keeps making the next batch
    while the one before is written and flushed, so that the flush, most
    of a commit's time, no longer stops the coordinator.

    The caller owns the pending batch; a submitted batch is queued, and the
    writer takes the queue whole (batches submitted while it writes are
    appended to one another, in order) and writes it as one LevelDB batch.
    A write that fails stays the writer's: it is tried again, with what
    was queued since appended to it, so nothing becomes durable before a
    batch submitted earlier. The caller learns of progress and failures
    through a pipe it can poll, and a ticket: the number of the last batch
    committed.

    The journal (chorus_journal.c) knows nothing of the thread: the calls
    whose meaning changes with it (commit, destroy) are made here, on top
    of the journal's own.
*/
#include "chorus_journal_private.h"
#include "chorus_be64.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct _chorus__journal_writer_t {
    pthread_t thread;                   //  the writer
    pthread_mutex_t lock;               //  guards the fields below
    pthread_cond_t wake;                //  work queued, or stopping
    pthread_cond_t done;                //  a batch committed, or a commit failed
    leveldb_writebatch_t *queued;       //  submitted, not yet taken
    bool queued_any;                    //  queued holds a batch
    bool queued_promised;               //  it holds flow state or definitions
    uint64_t queued_ticket;             //  the last ticket it holds
    leveldb_writebatch_t *writing;      //  taken: being written, or failed and kept
    bool writing_any;                   //  writing holds a batch
    bool writing_promised;              //  it holds flow state or definitions
    uint64_t writing_ticket;            //  the last ticket it holds
    uint64_t durable;                   //  the last ticket committed
    chorus_journal_failure_t failure;   //  of the last try, OK when it succeeded
    char error [512];                   //  why it failed
    bool gave_up;                       //  the journal is damaged: no more tries
    bool stopping;                      //  the journal is being destroyed
    int64_t retry_at;                   //  monotonic ms: no try before, after a failure
    int pipe [2];                       //  a byte in it: news for the caller
    bool signalled;                     //  the byte is there, not yet taken
};

static int64_t
s_now_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

//  Tells the caller there is news; called with the lock held
static void
s_notify (chorus__journal_writer_t *writer)
{
    pthread_cond_broadcast (&writer->done);
    if (!writer->signalled) {
        char byte = 1;
        if (write (writer->pipe [1], &byte, 1) == 1)
            writer->signalled = true;
    }
}

const double chorus_journal_commit_bounds [CHORUS_JOURNAL_COMMIT_BOUNDS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5
};

//  A commit that began then is done: counted by the time it took
static void
s_timed (chorus_journal_t *self, const struct timespec *began)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    int64_t us = (int64_t) (now.tv_sec - began->tv_sec) * 1000000
               + (now.tv_nsec - began->tv_nsec) / 1000;
    if (us < 0)
        us = 0;
    size_t bucket = 0;
    while (bucket < CHORUS_JOURNAL_COMMIT_BOUNDS
       &&  (double) us > chorus_journal_commit_bounds [bucket] * 1e6)
        bucket++;
    atomic_fetch_add_explicit (&self->commit_times [bucket], 1, memory_order_relaxed);
    atomic_fetch_add_explicit (&self->commit_sum_us, (uint_fast64_t) us, memory_order_relaxed);
}

void
chorus_journal_commit_times (chorus_journal_t *self,
                             uint64_t counts [CHORUS_JOURNAL_COMMIT_BOUNDS + 1],
                             uint64_t *sum_us)
{
    for (size_t i = 0; i <= CHORUS_JOURNAL_COMMIT_BOUNDS; i++)
        counts [i] = atomic_load_explicit (&self->commit_times [i], memory_order_relaxed);
    *sum_us = atomic_load_explicit (&self->commit_sum_us, memory_order_relaxed);
}

//  Writes the batch the writer holds; 0, or -1 with why in error and its
//  kind in *failure. *mark_failed says LevelDB has the batch but the mark
//  could not follow (the batch is committed: the mark may lag, never lead)
static int
s_write (chorus_journal_t *self, chorus__journal_writer_t *writer, char *error,
         size_t error_size, chorus_journal_failure_t *failure, bool *mark_failed)
{
    *mark_failed = false;
    if (!self->db) {
        pthread_mutex_lock (&self->db_lock);
        error [0] = 0;
        int rc = chorus__journal_reopen (self, error, error_size, failure);
        if (rc && error [0]) {
            self->closed_failure = *failure;
            snprintf (self->closed_error, sizeof (self->closed_error), "%s", error);
        }
        pthread_mutex_unlock (&self->db_lock);
        if (rc && !error [0]) {
            //  Too soon after the last try: its failure stands
            *failure = writer->failure;
            snprintf (error, error_size, "%s", writer->error);
        }
        if (rc)
            return -1;
    }
    char count [8];
    chorus__put_be64 (count, self->commits + 1);
    leveldb_writebatch_put (writer->writing, "c", 1, count, 8);
    char *leveldb_error = NULL;
    struct timespec began;
    clock_gettime (CLOCK_MONOTONIC, &began);
    leveldb_write (self->db, writer->writing_promised? self->write: self->lazy, writer->writing,
                   &leveldb_error);
    if (leveldb_error) {
        //  As chorus_journal_commit: a failed write may have left part of a
        //  record at the end of the log, so the database is closed, and
        //  reopened before the next try
        *failure = chorus__journal_classify (leveldb_error);
        chorus__journal_describe (error, error_size, self->dir, *failure, "commit",
                                  leveldb_error);
        leveldb_free (leveldb_error);
        pthread_mutex_lock (&self->db_lock);
        leveldb_close (self->db);
        self->db = NULL;
        self->closed_failure = *failure;
        snprintf (self->closed_error, sizeof (self->closed_error), "%s", error);
        pthread_mutex_unlock (&self->db_lock);
        return -1;
    }
    self->commits++;
    if (writer->writing_promised && chorus__journal_mark_write (self->mark, self->commits)) {
        *failure = chorus__journal_classify_errno (errno);
        chorus__journal_describe (error, error_size, self->dir, *failure, "commit (LevelDB has "
                                  "it, but its commit mark " S_MARK_FILE " could not follow)",
                                  strerror (errno));
        *mark_failed = true;
    }
    s_timed (self, &began);
    return 0;
}

static void *
s_writer (void *arg)
{
    chorus_journal_t *self = (chorus_journal_t *) arg;
    chorus__journal_writer_t *writer = self->writer;
    pthread_mutex_lock (&writer->lock);
    while (true) {
        //  What was queued joins what is held, after it
        if (writer->queued_any) {
            if (writer->writing_any) {
                leveldb_writebatch_append (writer->writing, writer->queued);
                leveldb_writebatch_clear (writer->queued);
            }
            else {
                leveldb_writebatch_t *batch = writer->writing;
                writer->writing = writer->queued;
                writer->queued = batch;
            }
            writer->writing_any = true;
            writer->writing_promised = writer->writing_promised || writer->queued_promised;
            writer->writing_ticket = writer->queued_ticket;
            writer->queued_any = writer->queued_promised = false;
        }
        int64_t now = s_now_ms ();
        bool idle = !writer->writing_any || writer->gave_up;
        if (idle && writer->stopping)
            break;
        if (idle || (now < writer->retry_at && !writer->stopping)) {
            if (idle)
                pthread_cond_wait (&writer->wake, &writer->lock);
            else {
                struct timespec until;
                clock_gettime (CLOCK_REALTIME, &until);
                int64_t wait_ms = writer->retry_at - now;
                until.tv_sec += wait_ms / 1000;
                until.tv_nsec += (wait_ms % 1000) * 1000000;
                if (until.tv_nsec >= 1000000000) {
                    until.tv_sec++;
                    until.tv_nsec -= 1000000000;
                }
                pthread_cond_timedwait (&writer->wake, &writer->lock, &until);
            }
            continue;
        }
        pthread_mutex_unlock (&writer->lock);
        char error [512];
        chorus_journal_failure_t failure = CHORUS_JOURNAL_OK;
        bool mark_failed;
        int rc = s_write (self, writer, error, sizeof (error), &failure, &mark_failed);
        pthread_mutex_lock (&writer->lock);
        if (rc == 0) {
            writer->durable = writer->writing_ticket;
            leveldb_writebatch_clear (writer->writing);
            writer->writing_any = writer->writing_promised = false;
        }
        writer->failure = rc || mark_failed? failure: CHORUS_JOURNAL_OK;
        if (writer->failure != CHORUS_JOURNAL_OK)
            snprintf (writer->error, sizeof (writer->error), "%s", error);
        if (rc) {
            writer->retry_at = s_now_ms () + S_REOPEN_MS;
            writer->gave_up = failure == CHORUS_JOURNAL_DAMAGED;
        }
        s_notify (writer);
        if (rc && writer->stopping)
            break;          //  tried once more while stopping: given up
    }
    pthread_mutex_unlock (&writer->lock);
    return NULL;
}

int
chorus_journal_start_writer (chorus_journal_t *self)
{
    if (self->writer)
        return 0;
    chorus__journal_writer_t *writer =
        (chorus__journal_writer_t *) calloc (1, sizeof (chorus__journal_writer_t));
    if (!writer || pipe (writer->pipe)) {
        free (writer);
        return chorus__journal_fail (self, chorus__journal_classify_errno (errno),
                                     "starting its writer", strerror (errno));
    }
    for (int i = 0; i < 2; i++) {
        fcntl (writer->pipe [i], F_SETFL, fcntl (writer->pipe [i], F_GETFL) | O_NONBLOCK);
        fcntl (writer->pipe [i], F_SETFD, FD_CLOEXEC);
    }
    pthread_mutex_init (&writer->lock, NULL);
    pthread_cond_init (&writer->wake, NULL);
    pthread_cond_init (&writer->done, NULL);
    writer->queued = leveldb_writebatch_create ();
    writer->writing = leveldb_writebatch_create ();
    writer->durable = self->submitted;
    self->writer = writer;
    self->threaded = true;
    int code = pthread_create (&writer->thread, NULL, s_writer, self);
    if (code) {
        self->writer = NULL;
        self->threaded = false;
        leveldb_writebatch_destroy (writer->queued);
        leveldb_writebatch_destroy (writer->writing);
        close (writer->pipe [0]);
        close (writer->pipe [1]);
        free (writer);
        return chorus__journal_fail (self, CHORUS_JOURNAL_FAILED, "starting its writer",
                                     strerror (code));
    }
    return 0;
}

//  Stops the writer thread, after it has tried once more what is queued
static void
s_stop (chorus_journal_t *self)
{
    chorus__journal_writer_t *writer = self->writer;
    if (!writer)
        return;
    pthread_mutex_lock (&writer->lock);
    writer->stopping = true;
    pthread_cond_signal (&writer->wake);
    pthread_mutex_unlock (&writer->lock);
    pthread_join (writer->thread, NULL);
    leveldb_writebatch_destroy (writer->queued);
    leveldb_writebatch_destroy (writer->writing);
    pthread_cond_destroy (&writer->wake);
    pthread_cond_destroy (&writer->done);
    pthread_mutex_destroy (&writer->lock);
    close (writer->pipe [0]);
    close (writer->pipe [1]);
    free (writer);
    self->writer = NULL;
    self->threaded = false;
}

void
chorus_journal_destroy (chorus_journal_t **self_p)
{
    if (*self_p) {
        s_stop (*self_p);
        chorus__journal_close (self_p);
    }
}

int
chorus_journal_commit (chorus_journal_t *self)
{
    if (!self->writer)
        return chorus__journal_write (self);
    return chorus_journal_wait (self, chorus_journal_submit (self));
}

uint64_t
chorus_journal_ticket (chorus_journal_t *self)
{
    return self->pending? self->submitted + 1: self->submitted;
}

uint64_t
chorus_journal_submit (chorus_journal_t *self)
{
    chorus__journal_writer_t *writer = self->writer;
    if (!writer) {
        uint64_t ticket = chorus_journal_ticket (self);
        chorus__journal_write (self);
        return ticket;
    }
    if (self->pending == 0)
        return self->submitted;
    pthread_mutex_lock (&writer->lock);
    if (writer->queued_any) {
        leveldb_writebatch_append (writer->queued, self->batch);
        leveldb_writebatch_clear (self->batch);
    }
    else {
        leveldb_writebatch_t *batch = writer->queued;
        writer->queued = self->batch;
        self->batch = batch;
    }
    writer->queued_any = true;
    writer->queued_promised = writer->queued_promised || self->promised;
    writer->queued_ticket = ++self->submitted;
    pthread_cond_signal (&writer->wake);
    pthread_mutex_unlock (&writer->lock);
    self->pending = 0;
    self->promised = false;
    return self->submitted;
}

uint64_t
chorus_journal_durable (chorus_journal_t *self)
{
    chorus__journal_writer_t *writer = self->writer;
    if (!writer)
        return self->committed;
    pthread_mutex_lock (&writer->lock);
    uint64_t durable = writer->durable;
    pthread_mutex_unlock (&writer->lock);
    return durable;
}

int
chorus_journal_fd (chorus_journal_t *self)
{
    return self->writer? self->writer->pipe [0]: -1;
}

//  The writer's failure becomes the journal's; called with the lock held
static int
s_status (chorus_journal_t *self)
{
    chorus__journal_writer_t *writer = self->writer;
    if (writer->failure == CHORUS_JOURNAL_OK)
        return 0;
    self->failure = writer->failure;
    snprintf (self->error, sizeof (self->error), "%s", writer->error);
    return -1;
}

int
chorus_journal_writer_status (chorus_journal_t *self)
{
    chorus__journal_writer_t *writer = self->writer;
    if (!writer)
        return 0;
    pthread_mutex_lock (&writer->lock);
    char bytes [16];
    while (read (writer->pipe [0], bytes, sizeof (bytes)) > 0)
        ;
    writer->signalled = false;
    int rc = s_status (self);
    pthread_mutex_unlock (&writer->lock);
    return rc;
}

int
chorus_journal_wait (chorus_journal_t *self, uint64_t ticket)
{
    chorus__journal_writer_t *writer = self->writer;
    if (!writer)
        return ticket <= self->committed? 0: -1;
    pthread_mutex_lock (&writer->lock);
    int rc = 0;
    //  A failure that stands (the batch kept, to be tried again) fails
    //  the wait at once, as a commit without a writer would
    while (writer->durable < ticket && rc == 0) {
        rc = s_status (self);
        if (rc == 0)
            pthread_cond_wait (&writer->done, &writer->lock);
    }
    pthread_mutex_unlock (&writer->lock);
    return rc;
}
