/*  chorus_journal.c — the coordinator's journal in LevelDB (see the
    header). Keys: 'f' + flow id + 0 + number (8) -> flow record, and 'f' +
    flow id -> a flow's record of format 1; 'd' + name + 0 + version
    (4 bytes) -> definition source; 't' + correlation + 0 + time (8) +
    event id -> trace entry; 'x' + time (8) + correlation + 0 -> nothing,
    the index that lets old trace entries expire in time order, one key a
    correlation rather than one an entry (journals written before have one
    an entry, with the event id after the 0);
    'c' -> the number of commits made (8 bytes), written by every commit.

    Beside LevelDB's files, CHORUS-COMMITS holds the count of the last
    commit that carried a promise (flow state or definitions), written
    after LevelDB has it: a journal that holds fewer commits than its mark
    lost acknowledged work, and is refused.
*/
#include "chorus_journal_private.h"
#include "chorus_be64.h"

#include <leveldb/c.h>
#include <zlib.h>
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

//  LevelDB's write buffer (its default is 4 MB). Trace entries, which the
//  journal keeps for a day, are most of what it writes, and their keys span
//  the whole key space, so each merge of new tables into level 1 rewrites
//  all of level 1: fewer, larger tables make fewer such merges. Measured
//  with bench_flows, runs alternated against 4 MB: with --no-sync 9% more
//  flows/s and 10% less CPU per flow (four pairs); fsync'd, flows/s within
//  the noise and p50 latency at half load 8.5-9.7 ms against 11-13 ms
//  (three pairs). The cost is up to twice this in memory while a full
//  buffer is written out.
#define S_WRITE_BUFFER (16u << 20)

//  --------------------------------------------------------------------------
//  Failures: a kind and a message that names the journal

//  What a LevelDB status says went wrong
chorus_journal_failure_t
chorus__journal_classify (const char *text)
{
    if (!text)
        return CHORUS_JOURNAL_FAILED;
    if (strstr (text, "Corruption:"))
        return CHORUS_JOURNAL_DAMAGED;
    //  A table shorter than its manifest says (torn) is read past its end
    if ((strstr (text, ".ldb: ") || strstr (text, ".sst: "))
    &&  (strstr (text, "Invalid argument") || strstr (text, "No such file or directory")))
        return CHORUS_JOURNAL_DAMAGED;
    if (strstr (text, "IO error: lock "))
        return CHORUS_JOURNAL_LOCKED;
    if (strstr (text, "No space left on device") || strstr (text, "Disk quota exceeded"))
        return CHORUS_JOURNAL_FULL;
    if (strstr (text, "Permission denied") || strstr (text, "Read-only file system")
    ||  strstr (text, "Operation not permitted"))
        return CHORUS_JOURNAL_DENIED;
    if (strstr (text, "does not exist (create_if_missing is false)"))
        return CHORUS_JOURNAL_MISSING;
    return CHORUS_JOURNAL_FAILED;
}

chorus_journal_failure_t
chorus__journal_classify_errno (int code)
{
    return code == ENOSPC || code == EDQUOT? CHORUS_JOURNAL_FULL:
           code == EACCES || code == EPERM || code == EROFS? CHORUS_JOURNAL_DENIED:
           code == ENOENT? CHORUS_JOURNAL_MISSING: CHORUS_JOURNAL_FAILED;
}

//  Writes the message for a failure of `what` (e.g. "commit") into error
void
chorus__journal_describe (char *error, size_t error_size, const char *dir,
                          chorus_journal_failure_t kind, const char *what, const char *reason)
{
    reason = reason? reason: "unknown error";
    switch (kind) {
        case CHORUS_JOURNAL_LOCKED:
            snprintf (error, error_size, "journal %s is locked by another process (is another "
                      "coordinator running on this store?): %s", dir, reason);
            break;
        case CHORUS_JOURNAL_FULL:
            snprintf (error, error_size, "journal %s: %s failed: no space left on the device "
                      "(%s)", dir, what, reason);
            break;
        case CHORUS_JOURNAL_DENIED:
            snprintf (error, error_size, "journal %s: %s failed: permission denied (%s)", dir,
                      what, reason);
            break;
        case CHORUS_JOURNAL_DAMAGED:
            snprintf (error, error_size, "journal %s is damaged: %s: %s%s", dir, what, reason,
                      strstr (reason, "Invalid argument")? " (a table is shorter than the "
                      "journal recorded: torn)": "");
            break;
        case CHORUS_JOURNAL_MISSING:
            snprintf (error, error_size, "journal %s: there is no journal there (%s)", dir,
                      reason);
            break;
        default:
            snprintf (error, error_size, "journal %s: %s failed: %s", dir, what, reason);
    }
}

//  Why a journal that holds fewer commits than its mark is damaged
void
chorus__journal_missing (char *reason, size_t reason_size, uint64_t commits, uint64_t mark)
{
    snprintf (reason, reason_size, "it holds %" PRIu64 " commit%s, but %" PRIu64 " were made: "
              "the last %" PRIu64 " %s missing (its log was cut short, emptied or removed)",
              commits, commits == 1? "": "s", mark, mark - commits,
              mark - commits == 1? "is": "are");
}

//  Records a failure; returns -1
int
chorus__journal_fail (chorus_journal_t *self, chorus_journal_failure_t kind, const char *what,
                      const char *reason)
{
    self->failure = kind;
    chorus__journal_describe (self->error, sizeof (self->error), self->dir, kind, what, reason);
    return -1;
}

//  Takes a LevelDB error string and frees it; returns -1
static int
s_fail_leveldb (chorus_journal_t *self, const char *what, char *leveldb_error)
{
    chorus__journal_fail (self, chorus__journal_classify (leveldb_error), what, leveldb_error);
    leveldb_free (leveldb_error);
    return -1;
}

//  --------------------------------------------------------------------------
//  Keys and numbers

//  A key made of a namespace byte and parts; returns its length
static size_t
s_key (char *key, size_t max, char space, const char *first, const char *second)
{
    int length = snprintf (key, max, "%c%s", space, first);
    if (second && length >= 0 && (size_t) length + 1 < max) {
        key [length++] = 0;
        length += snprintf (key + length, max - (size_t) length, "%s", second);
    }
    return length < 0? 0: (size_t) length < max? (size_t) length: max - 1;
}



//  --------------------------------------------------------------------------
//  Opening: a damaged journal is never taken for a new one

//  What a journal directory holds before LevelDB opens it
typedef struct {
    bool exists;                //  the directory is there
    bool current;               //  LevelDB's CURRENT file is there
    size_t data;                //  files that hold or describe data
} s_contents_t;

static bool
s_ends_with (const char *name, const char *suffix)
{
    size_t length = strlen (name), size = strlen (suffix);
    return length > size && strcmp (name + length - size, suffix) == 0;
}

//  0, or -1 with the reason in error
static int
s_inspect (const char *dir, s_contents_t *contents, chorus_journal_failure_t *failure,
           char *error, size_t error_size)
{
    memset (contents, 0, sizeof *contents);
    DIR *handle = opendir (dir);
    if (!handle) {
        if (errno == ENOENT)
            return 0;
        *failure = chorus__journal_classify_errno (errno);
        if (*failure == CHORUS_JOURNAL_MISSING)
            *failure = CHORUS_JOURNAL_FAILED;
        chorus__journal_describe (error, error_size, dir, *failure, "reading its directory",
                                  strerror (errno));
        return -1;
    }
    contents->exists = true;
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        const char *name = entry->d_name;
        if (strcmp (name, "CURRENT") == 0)
            contents->current = true;
        else
        if (s_ends_with (name, ".log") || s_ends_with (name, ".ldb") || s_ends_with (name, ".sst")
        ||  strncmp (name, "MANIFEST-", 9) == 0 || strcmp (name, S_MARK_FILE) == 0)
            contents->data++;
    }
    closedir (handle);
    return 0;
}

//  The commit mark: 0 when there is none (a journal made before marks)
static int
s_mark_read (int fd, uint64_t *mark)
{
    char text [S_MARK_SIZE + 1];
    ssize_t size = pread (fd, text, S_MARK_SIZE, 0);
    *mark = 0;
    if (size < 0)
        return -1;
    if (size == 0)
        return 0;
    text [size] = 0;
    char *end = NULL;
    uint64_t value = strtoull (text, &end, 10);
    //  A mark torn by a crash of the machine tells nothing: it is read as
    //  none, which can only hide a loss, never invent one
    if (size == S_MARK_SIZE && end == text + S_MARK_SIZE - 1 && *end == '\n')
        *mark = value;
    return 0;
}

int
chorus__journal_mark_write (int fd, uint64_t commits)
{
    char text [S_MARK_SIZE + 1];
    snprintf (text, sizeof (text), "%020" PRIu64 "\n", commits);
    return pwrite (fd, text, S_MARK_SIZE, 0) == S_MARK_SIZE? 0: -1;
}

//  The commit count the journal holds, in *commits; 0 or -1
static int
s_read_commits (chorus_journal_t *self, uint64_t *commits)
{
    char *leveldb_error = NULL;
    size_t size = 0;
    char *value = leveldb_get (self->db, self->read, "c", 1, &size, &leveldb_error);
    *commits = 0;
    if (leveldb_error)
        return s_fail_leveldb (self, "reading its commit count", leveldb_error);
    if (value && size != 8) {
        leveldb_free (value);
        return chorus__journal_fail (self, CHORUS_JOURNAL_DAMAGED, "its commit count",
                                     "the record does not decode");
    }
    if (value)
        *commits = chorus__get_be64 (value);
    leveldb_free (value);
    return 0;
}

//  Opens the database and the mark (its count in *mark_out, when not NULL);
//  with check_mark, a journal that holds fewer commits than its mark says
//  were made fails as damaged. On failure returns NULL with the reason in
//  error and its kind in *failure.
chorus_journal_t *
chorus__journal_open (const char *dir, bool create, bool check_mark, uint64_t *mark_out,
                      chorus_journal_failure_t *failure, char *error, size_t error_size)
{
    chorus_journal_failure_t kind = CHORUS_JOURNAL_OK;
    s_contents_t contents;
    if (s_inspect (dir, &contents, &kind, error, error_size)) {
        if (failure)
            *failure = kind;
        return NULL;
    }
    bool fresh = !contents.current && contents.data == 0;
    if (!contents.current && contents.data > 0) {
        char reason [160];
        snprintf (reason, sizeof (reason), "it holds %zu LevelDB file%s but no CURRENT file, "
                  "which says which of them are live", contents.data,
                  contents.data == 1? "": "s");
        chorus__journal_describe (error, error_size, dir, CHORUS_JOURNAL_DAMAGED,
                                  "its CURRENT file is missing", reason);
        if (failure)
            *failure = CHORUS_JOURNAL_DAMAGED;
        return NULL;
    }
    if (fresh && !create) {
        chorus__journal_describe (error, error_size, dir, CHORUS_JOURNAL_MISSING, "open",
                                  contents.exists? "the directory is empty":
                                  "no such directory");
        if (failure)
            *failure = CHORUS_JOURNAL_MISSING;
        return NULL;
    }
    chorus_journal_t *self = (chorus_journal_t *) calloc (1, sizeof (chorus_journal_t));
    self->dir = strdup (dir);
    self->mark = -1;
    self->options = leveldb_options_create ();
    leveldb_options_set_create_if_missing (self->options, fresh);
    leveldb_options_set_paranoid_checks (self->options, 1);
    leveldb_options_set_write_buffer_size (self->options, S_WRITE_BUFFER);
    self->write = leveldb_writeoptions_create ();
    leveldb_writeoptions_set_sync (self->write, 1);
    self->lazy = leveldb_writeoptions_create ();
    self->read = leveldb_readoptions_create ();
    leveldb_readoptions_set_verify_checksums (self->read, 1);
    self->batch = leveldb_writebatch_create ();
    pthread_mutex_init (&self->db_lock, NULL);

    char *leveldb_error = NULL;
    self->db = leveldb_open (self->options, dir, &leveldb_error);
    int rc = self->db? 0: s_fail_leveldb (self, "open", leveldb_error);
    if (rc == 0)
        rc = s_read_commits (self, &self->commits);
    if (rc == 0) {
        char path [4096];
        snprintf (path, sizeof (path), "%s/%s", dir, S_MARK_FILE);
        self->mark = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        uint64_t mark = 0;
        if (self->mark < 0 || s_mark_read (self->mark, &mark) < 0)
            rc = chorus__journal_fail (self, chorus__journal_classify_errno (errno),
                                       "opening its commit mark " S_MARK_FILE, strerror (errno));
        if (mark_out)
            *mark_out = mark;
        if (rc == 0 && mark > self->commits && check_mark) {
            char reason [256];
            chorus__journal_missing (reason, sizeof (reason), self->commits, mark);
            rc = chorus__journal_fail (self, CHORUS_JOURNAL_DAMAGED, "commits are missing", reason);
        }
        if (rc == 0 && mark < self->commits
        &&  chorus__journal_mark_write (self->mark, self->commits))
            rc = chorus__journal_fail (self, chorus__journal_classify_errno (errno),
                                       "writing its commit mark " S_MARK_FILE, strerror (errno));
    }
    if (rc) {
        snprintf (error, error_size, "%s", self->error);
        if (failure)
            *failure = self->failure;
        chorus__journal_close (&self);
        return NULL;
    }
    if (failure)
        *failure = CHORUS_JOURNAL_OK;
    return self;
}

//  The database again after a write failed (see chorus_journal_commit and
//  the writer); 0 when it is open, or -1
int
chorus__journal_reopen (chorus_journal_t *self, char *error, size_t error_size,
                        chorus_journal_failure_t *failure)
{
    if (self->db)
        return 0;
    //  Each try replays the log: at most one a second, the last failure
    //  standing for the tries in between
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    int64_t now_ms = (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
    if (now_ms < self->reopen_at)
        return -1;
    self->reopen_at = now_ms + S_REOPEN_MS;
    leveldb_options_set_create_if_missing (self->options, 0);
    char *leveldb_error = NULL;
    leveldb_t *db = leveldb_open (self->options, self->dir, &leveldb_error);
    size_t size = 0;
    char *value = db? leveldb_get (db, self->read, "c", 1, &size, &leveldb_error): NULL;
    if (leveldb_error) {
        *failure = chorus__journal_classify (leveldb_error);
        chorus__journal_describe (error, error_size, self->dir, *failure, db?
                                  "reading its commit count": "reopening after a failed commit",
                                  leveldb_error);
        leveldb_free (leveldb_error);
        if (db)
            leveldb_close (db);
        return -1;
    }
    uint64_t commits = value && size == 8? chorus__get_be64 (value): 0;
    bool malformed = value && size != 8;
    leveldb_free (value);
    if (malformed || commits != self->commits) {
        char reason [256];
        if (malformed)
            snprintf (reason, sizeof (reason), "the record does not decode");
        else
            chorus__journal_missing (reason, sizeof (reason), commits, self->commits);
        *failure = CHORUS_JOURNAL_DAMAGED;
        chorus__journal_describe (error, error_size, self->dir, *failure, malformed?
                                  "its commit count": "commits are missing", reason);
        leveldb_close (db);
        return -1;
    }
    self->db = db;
    return 0;
}

static int
s_reopen (chorus_journal_t *self)
{
    return chorus__journal_reopen (self, self->error, sizeof (self->error), &self->failure);
}

chorus_journal_t *
chorus_journal_new (const char *dir, bool create, chorus_journal_failure_t *failure,
                    char *error, size_t error_size)
{
    return chorus__journal_open (dir, create, true, NULL, failure, error, error_size);
}

void
chorus__journal_close (chorus_journal_t **self_p)
{
    chorus_journal_t *self = *self_p;
    if (self) {
        leveldb_writebatch_destroy (self->batch);
        leveldb_readoptions_destroy (self->read);
        leveldb_writeoptions_destroy (self->write);
        leveldb_writeoptions_destroy (self->lazy);
        if (self->db)
            leveldb_close (self->db);
        leveldb_options_destroy (self->options);
        if (self->mark >= 0)
            close (self->mark);
        pthread_mutex_destroy (&self->db_lock);
        for (size_t i = 0; self->indexed && i < S_INDEXED_SLOTS; i++)
            free (self->indexed [i].correlation);
        free (self->indexed);
        free (self->dir);
        free (self);
        *self_p = NULL;
    }
}

const char *
chorus_journal_error (chorus_journal_t *self)
{
    return self->error;
}

chorus_journal_failure_t
chorus_journal_failure (chorus_journal_t *self)
{
    return self->failure;
}

void
chorus_journal_set_sync (chorus_journal_t *self, bool sync)
{
    leveldb_writeoptions_set_sync (self->write, sync);
}

//  --------------------------------------------------------------------------
//  Writes

//  'f' + id + 0 + number; returns its length
static size_t
s_record_key (char *key, size_t max, const char *id, uint64_t number)
{
    size_t length = s_key (key, max - 9, 'f', id, NULL);
    key [length++] = 0;
    chorus__put_be64 (key + length, number);
    return length + 8;
}

void
chorus_journal_put_record (chorus_journal_t *self, const char *id, uint64_t number,
                           const void *data, size_t size, bool durable)
{
    char key [256];
    size_t length = s_record_key (key, sizeof (key), id, number);
    leveldb_writebatch_put (self->batch, key, length, (const char *) data, size);
    self->pending++;
    self->promised = self->promised || durable;
}

void
chorus_journal_delete_records (chorus_journal_t *self, const char *id, uint64_t from,
                               uint64_t to)
{
    char key [256];
    for (uint64_t number = from; number < to; number++) {
        size_t length = s_record_key (key, sizeof (key), id, number);
        leveldb_writebatch_delete (self->batch, key, length);
        self->pending++;
        self->promised = true;
    }
}

void
chorus_journal_delete_legacy (chorus_journal_t *self, const char *id)
{
    char key [256];
    size_t length = s_key (key, sizeof (key), 'f', id, NULL);
    leveldb_writebatch_delete (self->batch, key, length);
    self->pending++;
    self->promised = true;
}

void
chorus__journal_put_legacy (chorus_journal_t *self, const char *id, const char *record)
{
    char key [256];
    size_t length = s_key (key, sizeof (key), 'f', id, NULL);
    leveldb_writebatch_put (self->batch, key, length, record, strlen (record));
    self->pending++;
    self->promised = true;
}

void
chorus_journal_put_definition (chorus_journal_t *self, const char *name, int version,
                               const char *source)
{
    char key [128];
    char number [16];
    snprintf (number, sizeof (number), "%010d", version);
    size_t length = s_key (key, sizeof (key), 'd', name, number);
    leveldb_writebatch_put (self->batch, key, length, source, strlen (source));
    self->pending++;
    self->promised = true;
}

//  Ms since the epoch, by the wall clock
static uint64_t
s_wall_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_REALTIME, &now);
    return (uint64_t) now.tv_sec * 1000 + (uint64_t) now.tv_nsec / 1000000;
}

//  The time of the index key a correlation's trace entry needs, or 0 when
//  this process wrote it one lately. Its key is timed by the clock, not
//  by the entry (an event's time is its publisher's), and written again
//  once S_REINDEX_MS old: so the expiry sweep, which takes index keys
//  older than a day, never takes one that entries written since without
//  a key of their own rely on, and sees all of those committed.
static uint64_t
s_index_due (chorus_journal_t *self, const char *correlation, size_t length)
{
    uint64_t now = s_wall_ms ();
    if (!self->indexed)
        self->indexed = (chorus__journal_indexed_t *) calloc (S_INDEXED_SLOTS,
                                                              sizeof (chorus__journal_indexed_t));
    if (!self->indexed)
        return now;
    uint32_t hash = (uint32_t) crc32 (0, (const Bytef *) correlation, (uInt) length);
    chorus__journal_indexed_t *slot = &self->indexed [hash % S_INDEXED_SLOTS];
    if (slot->correlation && strlen (slot->correlation) == length
    &&  memcmp (slot->correlation, correlation, length) == 0
    &&  slot->time + S_REINDEX_MS > now && slot->time <= now)
        return 0;
    //  Another correlation's slot is taken over: its next entry is
    //  indexed again, which costs a key, never an entry
    char *copy = (char *) malloc (length + 1);
    if (!copy)
        return now;
    memcpy (copy, correlation, length);
    copy [length] = 0;
    free (slot->correlation);
    slot->correlation = copy;
    slot->time = now;
    return now;
}

void
chorus_journal_put_trace (chorus_journal_t *self, const char *correlation, uint64_t time,
                          const char *event_id, const char *entry, size_t size)
{
    //  't' correlation 0 time event-id -> entry
    char key [512];
    size_t length = s_key (key, sizeof (key) - 80, 't', correlation, NULL);
    size_t correlation_length = length - 1;
    key [length++] = 0;
    chorus__put_be64 (key + length, time);
    length += 8;
    length += (size_t) snprintf (key + length, 70, "%s", event_id);
    leveldb_writebatch_put (self->batch, key, length, entry, size);
    self->pending++;

    //  The expiry index, 'x' time correlation 0, once for a correlation's
    //  entries: a transaction's events and commands share one
    uint64_t indexed = s_index_due (self, key + 1, correlation_length);
    if (indexed) {
        char index [512];
        index [0] = 'x';
        chorus__put_be64 (index + 1, indexed);
        memcpy (index + 9, key + 1, correlation_length + 1);
        leveldb_writebatch_put (self->batch, index, correlation_length + 10, "", 0);
        self->pending++;
    }
}

int
chorus__journal_write (chorus_journal_t *self)
{
    if (self->pending == 0)
        return 0;
    //  Only flow state and definitions carry promises that must survive the
    //  machine; a batch of trace entries alone (the coordinator observes
    //  every event, often in turns of their own) is not worth a disk flush.
    //  It reaches the OS, so survives a crash of the process; a crash of
    //  the machine may lose the last such entries.
    if (s_reopen (self))
        return -1;
    char count [8];
    chorus__put_be64 (count, self->commits + 1);
    leveldb_writebatch_put (self->batch, "c", 1, count, 8);
    char *leveldb_error = NULL;
    leveldb_write (self->db, self->promised? self->write: self->lazy, self->batch,
                   &leveldb_error);
    if (leveldb_error) {
        //  The batch stays, to be tried again. A write that failed (a full
        //  disk) may have left part of a record at the end of the log, and
        //  LevelDB would append the next ones after it, where its reader
        //  loses its footing: the database is closed, and reopened before
        //  the next try, which makes the torn record the end of the log.
        s_fail_leveldb (self, "commit", leveldb_error);
        leveldb_close (self->db);
        self->db = NULL;
        return -1;
    }
    self->commits++;
    self->committed = ++self->submitted;
    bool promised = self->promised;
    leveldb_writebatch_clear (self->batch);
    self->pending = 0;
    self->promised = false;
    //  The mark follows the commit: it may lag behind (a crash between the
    //  two), never run ahead of what LevelDB has
    if (promised && chorus__journal_mark_write (self->mark, self->commits))
        return chorus__journal_fail (self, chorus__journal_classify_errno (errno),
                                     "commit (LevelDB has it, but its commit mark " S_MARK_FILE
                                     " could not follow)", strerror (errno));
    return 0;
}

size_t
chorus_journal_pending (chorus_journal_t *self)
{
    return self->pending;
}

//  --------------------------------------------------------------------------
//  Reads

int
chorus__journal_read_begin (chorus_journal_t *self)
{
    if (!self->threaded)
        return s_reopen (self);
    pthread_mutex_lock (&self->db_lock);
    if (self->db)
        return 0;
    //  Closed by a failed commit: the writer reopens it when it tries again
    self->failure = self->closed_failure;
    snprintf (self->error, sizeof (self->error), "%s", self->closed_error);
    pthread_mutex_unlock (&self->db_lock);
    return -1;
}

void
chorus__journal_read_end (chorus_journal_t *self)
{
    if (self->threaded)
        pthread_mutex_unlock (&self->db_lock);
}

int
chorus__journal_scan (chorus_journal_t *self, const char *prefix, size_t prefix_size,
                      chorus__journal_visit_fn *fn, void *arg)
{
    if (chorus__journal_read_begin (self))
        return -1;
    leveldb_iterator_t *it = leveldb_create_iterator (self->db, self->read);
    int count = 0;
    for (leveldb_iter_seek (it, prefix, prefix_size); leveldb_iter_valid (it);
         leveldb_iter_next (it)) {
        size_t key_size, size;
        const char *key = leveldb_iter_key (it, &key_size);
        if (key_size < prefix_size || memcmp (key, prefix, prefix_size) != 0)
            break;
        const char *value = leveldb_iter_value (it, &size);
        count++;
        if (fn (key, key_size, value, size, arg))
            break;
    }
    char *leveldb_error = NULL;
    leveldb_iter_get_error (it, &leveldb_error);
    leveldb_iter_destroy (it);
    chorus__journal_read_end (self);
    if (leveldb_error)
        return s_fail_leveldb (self, prefix [0] == 'f'? "reading flows":
                               prefix [0] == 'd'? "reading definitions": "reading traces",
                               leveldb_error);
    return count;
}

int
chorus__journal_record_key (const char *key, size_t key_size, char *id, size_t id_size,
                            uint64_t *number)
{
    const char *end = key_size > 1? (const char *) memchr (key + 1, 0, key_size - 1): NULL;
    size_t length = end? (size_t) (end - key) - 1: key_size - 1;
    if (key_size < 2 || length == 0 || length >= id_size
    ||  (end && key_size != length + 10))
        return -1;
    memcpy (id, key + 1, length);
    id [length] = 0;
    *number = end? chorus__get_be64 (end + 1): CHORUS_JOURNAL_LEGACY;
    return 0;
}

typedef struct {
    chorus_journal_t *self;             //  the journal
    chorus_journal_record_fn *fn;       //  the caller's function
    void *arg;                          //  its argument
    bool malformed;                     //  a key was not a flow record's
} s_record_visit_t;

static int
s_visit_record (const char *key, size_t key_size, const char *value, size_t size, void *arg)
{
    s_record_visit_t *visit = (s_record_visit_t *) arg;
    char id [256];
    uint64_t number;
    if (chorus__journal_record_key (key, key_size, id, sizeof (id), &number)) {
        visit->malformed = true;
        return 1;
    }
    return visit->fn (id, number, value, size, visit->arg);
}

int
chorus_journal_each_record (chorus_journal_t *self, chorus_journal_record_fn *fn, void *arg)
{
    s_record_visit_t visit = {self, fn, arg, false};
    int rc = chorus__journal_scan (self, "f", 1, s_visit_record, &visit);
    if (rc >= 0 && visit.malformed)
        return chorus__journal_fail (self, CHORUS_JOURNAL_DAMAGED, "reading flows",
                                     "a key of a flow record is malformed");
    return rc;
}

//  --------------------------------------------------------------------------
//  The envelope of a flow's record

//  Records written before the checksum have its first six fields only
#define S_ENVELOPE_FIELDS 7
#define S_ENVELOPE_FIELDS_UNSEALED 6

//  The shapes of the parts, so far as the envelope tells of them: the
//  engine's is nil (a delta of the coordinator's part alone) or an array
//  of 11 (a snapshot) or 10 (a delta) whose first value is the state, or
//  of more (values the engine appended later, such as the flow's output:
//  the engine reads them and refuses a count it does not know); the
//  coordinator's an array of 7 (a snapshot) or 3 (a delta) whose
//  sixth or second value lists the events to publish, or of one more (the
//  tries of commands the flow holds, not yet traced). NULL when they
//  agree with the envelope, else why not.
static const char *
s_parts_agree (chorus_journal_envelope_t *envelope)
{
    bool snapshot = envelope->kind == CHORUS_JOURNAL_SNAPSHOT;
    chorus_reader_t engine = envelope->engine;
    if (snapshot || !chorus_reader_nil (&engine)) {
        size_t fields = chorus_reader_array (&engine);
        uint64_t state = chorus_reader_uint (&engine, UINT64_MAX);
        if (engine.error || fields < (snapshot? 11: 10))
            return snapshot? "the engine's part is not a snapshot": "the engine's part is not "
                             "a delta";
        if (state != (uint64_t) envelope->state)
            return "the envelope and the engine's part name different flow states";
    }
    chorus_reader_t coordinator = envelope->coordinator;
    size_t fields = chorus_reader_array (&coordinator);
    for (int skip = snapshot? 5: 1; skip > 0; skip--)
        chorus_reader_skip (&coordinator, NULL, NULL);
    size_t events = chorus_reader_array (&coordinator);
    if (coordinator.error || (fields != (snapshot? 7: 3) && fields != (snapshot? 8: 4)))
        return "the coordinator's part is malformed";
    if (events != envelope->unpublished)
        return "the envelope and the coordinator's part count different events to publish";
    return NULL;
}

void
chorus_journal_envelope_write (chorus_record_t *record, int kind, int state,
                               uint64_t unpublished)
{
    chorus_record_reset (record);
    chorus_record_array (record, S_ENVELOPE_FIELDS);
    chorus_record_uint (record, CHORUS_JOURNAL_FORMAT);
    chorus_record_uint (record, (uint64_t) kind);
    chorus_record_uint (record, (uint64_t) state);
    chorus_record_uint (record, unpublished);
}

//  The checksum of flow id's record `number` of which `size` bytes are
//  given: the key is summed too, so that a record found under another
//  flow's id or number (its key damaged) does not pass for that flow's
static uint64_t
s_checksum (const char *id, uint64_t number, const void *data, size_t size)
{
    uint8_t key [8];
    chorus__put_be64 (key, number);
    uLong crc = crc32 (0L, Z_NULL, 0);
    crc = crc32 (crc, (const Bytef *) id, (uInt) strlen (id) + 1);
    crc = crc32 (crc, key, sizeof (key));
    const Bytef *at = (const Bytef *) data;
    while (size > 0) {                  //  crc32 takes at most a uInt at a time
        uInt chunk = size > UINT_MAX? UINT_MAX: (uInt) size;
        crc = crc32 (crc, at, chunk);
        at += chunk;
        size -= chunk;
    }
    return (uint64_t) crc;
}

void
chorus_journal_envelope_seal (chorus_record_t *record, const char *id, uint64_t number)
{
    chorus_record_uint (record, s_checksum (id, number, record->data, record->size));
}

int
chorus_journal_envelope_read (const char *id, uint64_t number, const void *data, size_t size,
                              chorus_journal_envelope_t *envelope, const char **why)
{
    chorus_reader_t reader;
    chorus_reader_init (&reader, data, size);
    memset (envelope, 0, sizeof *envelope);
    *why = NULL;
    size_t fields = chorus_reader_array (&reader);
    if (!reader.error && fields != S_ENVELOPE_FIELDS && fields != S_ENVELOPE_FIELDS_UNSEALED)
        chorus_reader_fail (&reader, "an array has the wrong number of values");
    uint64_t format = chorus_reader_uint (&reader, UINT64_MAX);
    if (!reader.error && format != CHORUS_JOURNAL_FORMAT)
        *why = "it is of a format this coordinator does not know (written by a later "
               "version?)";
    if (!*why) {
        envelope->kind = (int) chorus_reader_uint (&reader, CHORUS_JOURNAL_DELTA);
        envelope->state = (int) chorus_reader_uint (&reader, 6);
        envelope->unpublished = chorus_reader_uint (&reader, UINT64_MAX);
        const void *part;
        size_t part_size;
        chorus_reader_skip (&reader, &part, &part_size);
        chorus_reader_init (&envelope->engine, part, part_size);
        chorus_reader_skip (&reader, &part, &part_size);
        chorus_reader_init (&envelope->coordinator, part, part_size);
        if (fields == S_ENVELOPE_FIELDS && !reader.error) {
            //  Bytes damaged inside a part (or in the key) can still
            //  decode: the checksum of all that comes before it tells
            size_t sealed = (size_t) (reader.at - (const uint8_t *) data);
            uint64_t checksum = chorus_reader_uint (&reader, UINT32_MAX);
            if (!reader.error && checksum != s_checksum (id, number, data, sealed))
                *why = "its checksum does not match its bytes and key (they were damaged)";
        }
        if (!*why && chorus_reader_done (&reader) && envelope->state < 1)
            chorus_reader_fail (&reader, "unknown flow state");
        if (!*why)
            *why = reader.error;
    }
    if (!*why)
        *why = s_parts_agree (envelope);
    return *why? -1: 0;
}

int
chorus_journal_definition (chorus_journal_t *self, const char *name, int version,
                           char **source)
{
    char key [128];
    char number [16];
    snprintf (number, sizeof (number), "%010d", version);
    size_t length = s_key (key, sizeof (key), 'd', name, number);
    char *leveldb_error = NULL;
    size_t size = 0;
    *source = NULL;
    if (chorus__journal_read_begin (self))
        return -1;
    char *value = leveldb_get (self->db, self->read, key, length, &size, &leveldb_error);
    chorus__journal_read_end (self);
    if (leveldb_error)
        return s_fail_leveldb (self, "read definition", leveldb_error);
    if (value) {
        *source = strndup (value, size);
        leveldb_free (value);
    }
    return 0;
}

typedef struct {
    chorus_journal_trace_fn *fn;        //  the caller's function
    void *arg;                          //  its argument
} s_trace_visit_t;

static int
s_visit_trace (const char *key, size_t key_size, const char *value, size_t size, void *arg)
{
    s_trace_visit_t *visit = (s_trace_visit_t *) arg;
    return visit->fn (value, size, visit->arg);
}

int
chorus_journal_each_trace (chorus_journal_t *self, const char *correlation,
                           chorus_journal_trace_fn *fn, void *arg)
{
    char prefix [256];
    size_t length = s_key (prefix, sizeof (prefix) - 1, 't', correlation, NULL);
    prefix [length++] = 0;
    s_trace_visit_t visit = {fn, arg};
    return chorus__journal_scan (self, prefix, length, s_visit_trace, &visit);
}

typedef struct {
    chorus_journal_t *self;             //  the journal
    uint64_t before;                    //  forget entries older than this
    size_t max;                         //  visit at most this many index keys
    int forgotten;                      //  how many entries went
    char **due;                         //  the index keys of correlations due, each its
                                        //  length (8 bytes) then its bytes
    size_t due_size;                    //  how many
    uint64_t oldest;                    //  of a correlation's entries, the oldest kept
} s_expire_t;

static int
s_visit_expire (const char *key, size_t key_size, const char *value, size_t size, void *arg)
{
    s_expire_t *expire = (s_expire_t *) arg;
    if (key_size < 10 || chorus__get_be64 (key + 1) >= expire->before || expire->max-- == 0)
        return 1;
    //  The entry's own key is 't' + what follows the time in the index
    const char *end = (const char *) memchr (key + 9, 0, key_size - 9);
    if (!end)
        return 0;               //  no index key of ours
    if ((size_t) (end - key) + 1 < key_size) {
        //  An index key of one entry, from an older journal
        char entry [512];
        if (key_size - 8 > sizeof (entry))
            return 0;
        entry [0] = 't';
        memcpy (entry + 1, key + 9, key_size - 9);
        leveldb_writebatch_delete (expire->self->batch, entry, key_size - 8);
        leveldb_writebatch_delete (expire->self->batch, key, key_size);
        expire->self->pending += 2;
        expire->forgotten++;
        return 0;
    }
    //  A correlation's: its entries are looked at once this scan is over
    char *copy = (char *) malloc (key_size + 8);
    char **due = copy? (char **) realloc (expire->due, (expire->due_size + 1) * sizeof (char *))
                     : NULL;
    if (!due) {
        free (copy);
        return 1;
    }
    chorus__put_be64 (copy, key_size);
    memcpy (copy + 8, key, key_size);
    expire->due = due;
    expire->due [expire->due_size++] = copy;
    return 0;
}

//  Forgets a correlation's entry if it is old enough
static int
s_expire_entry (const char *key, size_t key_size, const char *value, size_t size, void *arg)
{
    s_expire_t *expire = (s_expire_t *) arg;
    const char *end = (const char *) memchr (key, 0, key_size);
    if (!end || (size_t) (end - key) + 9 > key_size)
        return 0;
    uint64_t time = chorus__get_be64 (end + 1);
    if (time < expire->before) {
        leveldb_writebatch_delete (expire->self->batch, key, key_size);
        expire->self->pending++;
        expire->forgotten++;
    }
    else
    if (time < expire->oldest)
        expire->oldest = time;
    return 0;
}

//  Orders due index keys by correlation
static int
s_by_correlation (const void *a, const void *b)
{
    const char *x = *(const char * const *) a, *y = *(const char * const *) b;
    size_t x_size = (size_t) chorus__get_be64 (x) - 9, y_size = (size_t) chorus__get_be64 (y) - 9;
    int order = memcmp (x + 17, y + 17, x_size < y_size? x_size: y_size);
    return order? order: x_size < y_size? -1: x_size > y_size;
}

int
chorus_journal_expire_traces (chorus_journal_t *self, uint64_t before, size_t max)
{
    s_expire_t expire = {self, before, max, 0, NULL, 0, 0};
    int rc = chorus__journal_scan (self, "x", 1, s_visit_expire, &expire);
    //  Each correlation due (once, though it may have several keys): its
    //  old entries go, and its index keys with them; one with entries
    //  left is indexed again, by the oldest
    if (expire.due_size > 1)
        qsort (expire.due, expire.due_size, sizeof (char *), s_by_correlation);
    size_t next;
    for (size_t i = 0; i < expire.due_size && rc >= 0; i = next) {
        for (next = i + 1; next < expire.due_size
                           && s_by_correlation (&expire.due [i], &expire.due [next]) == 0; next++)
            ;
        size_t key_size = (size_t) chorus__get_be64 (expire.due [i]);
        char *index = expire.due [i] + 8;
        char prefix [512];
        prefix [0] = 't';
        memcpy (prefix + 1, index + 9, key_size - 9);
        expire.oldest = UINT64_MAX;
        rc = chorus__journal_scan (self, prefix, key_size - 8, s_expire_entry, &expire);
        if (rc < 0)
            break;
        for (size_t same = i; same < next; same++) {
            leveldb_writebatch_delete (self->batch, expire.due [same] + 8, key_size);
            self->pending++;
        }
        if (expire.oldest != UINT64_MAX) {
            chorus__put_be64 (index + 1, expire.oldest);
            leveldb_writebatch_put (self->batch, index, key_size, "", 0);
            self->pending++;
        }
    }
    for (size_t i = 0; i < expire.due_size; i++)
        free (expire.due [i]);
    free (expire.due);
    return rc < 0? -1: expire.forgotten;
}

