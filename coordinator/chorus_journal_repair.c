/*  chorus_journal_repair.c — the journal offline: what `chorus store
    check` reports about it, and `chorus store repair`, which salvages what
    is readable with LevelDB's repair and says which flows were lost.
*/
#include "chorus_journal_private.h"

#include <jansson.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  --------------------------------------------------------------------------
//  Offline: check and repair

static int
s_count_key (const char *key, size_t key_size, const char *value, size_t size, void *arg)
{
    return 0;
}

//  A record of format 1: the flow state it names (0 if it does not decode;
//  it needs at least what the engine's saved state always has), and how
//  many events it still has to publish
static int
s_legacy_state (const char *value, size_t size, uint64_t *unpublished)
{
    static const char *states [] = {NULL, "running", "compensating", "completed", "failed",
                                    "cancelled", "stuck"};
    json_t *record = json_loadb (value, size, 0, NULL);
    json_t *state = json_object_get (record, "state");
    const char *name = json_string_value (json_object_get (state, "state"));
    int number = 0;
    *unpublished = json_array_size (json_object_get (record, "emits"));
    if (json_is_string (json_object_get (state, "flow"))
    &&  json_is_integer (json_object_get (state, "version"))
    &&  json_is_array (json_object_get (state, "steps")) && name)
        for (int i = 1; i <= 6; i++)
            if (strcmp (name, states [i]) == 0)
                number = i;
    json_decref (record);
    return number;
}

//  A flow's records read one by one: what they add up to, or why they do not
typedef struct {
    char id [256];              //  the flow
    bool legacy;                //  it has a record of format 1
    bool records;               //  it has records of format 2
    uint64_t next;              //  the number its next record must have
    int state;                  //  its state after the records so far
    uint64_t unpublished;       //  events it then has to publish
    const char *problem;        //  why they do not add up, NULL while they do
} s_fold_t;

//  Starts folding flow `id`
static void
s_fold_start (s_fold_t *fold, const char *id)
{
    memset (fold, 0, sizeof *fold);
    snprintf (fold->id, sizeof (fold->id), "%s", id);
}

//  Adds the flow's next record
static void
s_fold_add (s_fold_t *fold, uint64_t number, const char *value, size_t size)
{
    if (fold->problem)
        return;
    if (number == CHORUS_JOURNAL_LEGACY) {
        fold->legacy = true;
        fold->state = s_legacy_state (value, size, &fold->unpublished);
        if (!fold->state)
            fold->problem = "its record does not decode";
        return;
    }
    chorus_journal_envelope_t envelope;
    const char *why;
    if (chorus_journal_envelope_read (fold->id, number, value, size, &envelope, &why))
        fold->problem = why;
    else
    if (fold->legacy)
        fold->problem = "it has records of two formats";
    else
    if (!fold->records && envelope.kind != CHORUS_JOURNAL_SNAPSHOT)
        fold->problem = "its first record is not a snapshot";
    else
    if (fold->records && (number != fold->next || envelope.kind != CHORUS_JOURNAL_DELTA))
        fold->problem = "a record is missing";
    else {
        fold->records = true;
        fold->next = number + 1;
        fold->state = envelope.state;
        fold->unpublished = envelope.unpublished;
    }
}

//  Counts a flow whose records are read
static void
s_count (chorus_journal_report_t *report, s_fold_t *fold)
{
    if (!fold->id [0])
        return;
    report->flows++;
    report->unpublished += fold->problem? 0: fold->unpublished;
    size_t *counts [] = {NULL, &report->running, &report->compensating, &report->completed,
                         &report->failed, &report->cancelled, &report->stuck};
    if (fold->problem) {
        if (report->undecodable++ == 0)
            snprintf (report->problem, sizeof (report->problem), "%s: %s", fold->id,
                      fold->problem);
    }
    else
        (*counts [fold->state])++;
}

typedef struct {
    chorus_journal_report_t *report;    //  what is counted
    s_fold_t fold;                      //  the flow being read
} s_check_t;

static int
s_count_record (const char *id, uint64_t number, const void *data, size_t size, void *arg)
{
    s_check_t *check = (s_check_t *) arg;
    if (strcmp (id, check->fold.id) != 0) {
        s_count (check->report, &check->fold);
        s_fold_start (&check->fold, id);
    }
    s_fold_add (&check->fold, number, (const char *) data, size);
    return 0;
}

int
chorus_journal_check (const char *dir, chorus_journal_report_t *report)
{
    memset (report, 0, sizeof *report);
    uint64_t mark = 0;
    chorus_journal_t *self = chorus__journal_open (dir, false, false, &mark, &report->failure,
                                                   report->problem, sizeof (report->problem));
    if (!self)
        return -1;
    report->commits = self->commits;
    report->commits_made = mark;
    s_check_t check;
    memset (&check, 0, sizeof (check));
    check.report = report;
    int flows = chorus_journal_each_record (self, s_count_record, &check);
    s_count (report, &check.fold);
    int definitions = flows < 0? -1: chorus__journal_scan (self, "d", 1, s_count_key, NULL);
    int traces = definitions < 0? -1: chorus__journal_scan (self, "t", 1, s_count_key, NULL);
    report->definitions = definitions > 0? (size_t) definitions: 0;
    report->traces = traces > 0? (size_t) traces: 0;
    if (traces < 0) {
        report->failure = self->failure;
        snprintf (report->problem, sizeof (report->problem), "%s", self->error);
    }
    else
    if (mark > self->commits) {
        char reason [256];
        chorus__journal_missing (reason, sizeof (reason), self->commits, mark);
        report->failure = CHORUS_JOURNAL_DAMAGED;
        chorus__journal_describe (report->problem, sizeof (report->problem), dir,
                                  report->failure, "commits are missing", reason);
    }
    else
    if (report->undecodable) {
        char reason [400];
        snprintf (reason, sizeof (reason), "the records of %zu flow%s do not decode (the "
                  "first: flow %.300s)", report->undecodable, report->undecodable == 1? "": "s",
                  report->problem);
        report->failure = CHORUS_JOURNAL_DAMAGED;
        chorus__journal_describe (report->problem, sizeof (report->problem), dir,
                                  report->failure, "flow records", reason);
    }
    else
        report->problem [0] = 0;
    chorus_journal_destroy (&self);
    return report->failure == CHORUS_JOURNAL_OK? 0: -1;
}

//  A growing, NULL-terminated list of flow ids
typedef struct {
    char **items;               //  the ids, NULL-terminated
    size_t size;                //  how many
    size_t max;                 //  room for
} s_ids_t;

static void
s_ids_add (s_ids_t *ids, const char *id, size_t length)
{
    if (ids->size + 1 >= ids->max) {
        ids->max = ids->max? ids->max * 2: 64;
        ids->items = (char **) realloc (ids->items, ids->max * sizeof (char *));
    }
    ids->items [ids->size++] = strndup (id, length);
    ids->items [ids->size] = NULL;
}

static char **
s_ids_take (s_ids_t *ids)
{
    if (!ids->items)
        ids->items = (char **) calloc (1, sizeof (char *));
    return ids->items;
}

static int
s_compare_ids (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

static size_t
s_count_ids (char **items)
{
    size_t count = 0;
    while (items && items [count])
        count++;
    return count;
}

static void
s_ids_free (char **items)
{
    for (char **item = items; item && *item; item++)
        free (*item);
    free (items);
}

//  Removes a scratch directory (and one level of subdirectories)
static void
s_remove_tree (const char *dir)
{
    DIR *handle = opendir (dir);
    struct dirent *entry;
    while (handle && (entry = readdir (handle))) {
        if (strcmp (entry->d_name, ".") == 0 || strcmp (entry->d_name, "..") == 0)
            continue;
        char path [4096];
        snprintf (path, sizeof (path), "%s/%s", dir, entry->d_name);
        if (unlink (path) && errno == EISDIR)
            s_remove_tree (path);
    }
    if (handle)
        closedir (handle);
    rmdir (dir);
}

//  Copies the regular files of a directory; 0 or -1
static int
s_copy_files (const char *from, const char *to)
{
    DIR *handle = opendir (from);
    if (!handle)
        return -1;
    int rc = 0;
    struct dirent *entry;
    while (rc == 0 && (entry = readdir (handle))) {
        char source [4096], target [4096];
        snprintf (source, sizeof (source), "%s/%s", from, entry->d_name);
        snprintf (target, sizeof (target), "%s/%s", to, entry->d_name);
        struct stat info;
        if (stat (source, &info) || !S_ISREG (info.st_mode) || strcmp (entry->d_name, "LOCK") == 0)
            continue;
        int in = open (source, O_RDONLY | O_CLOEXEC);
        int out = in < 0? -1: open (target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        char buffer [65536];
        ssize_t size = 0;
        while (out >= 0 && (size = read (in, buffer, sizeof (buffer))) > 0)
            if (write (out, buffer, (size_t) size) != size) {
                size = -1;
                break;
            }
        if (in < 0 || out < 0 || size < 0)
            rc = -1;
        if (in >= 0)
            close (in);
        if (out >= 0)
            close (out);
    }
    closedir (handle);
    return rc;
}

//  Adds the flow of a key to the list, once
static void
s_list_flow (const char *key, size_t key_size, s_ids_t *ids)
{
    char id [256];
    uint64_t number;
    if (chorus__journal_record_key (key, key_size, id, sizeof (id), &number) == 0
    &&  (ids->size == 0 || strcmp (ids->items [ids->size - 1], id) != 0))
        s_ids_add (ids, id, strlen (id));
}

//  The flows readable in a damaged journal, read from a copy with LevelDB's
//  checks off, so that the journal itself is not touched before its repair
static void
s_read_before (const char *dir, chorus_journal_repair_t *report)
{
    char scratch [4096];
    size_t length = strlen (dir);
    while (length > 1 && dir [length - 1] == '/')
        length--;
    snprintf (scratch, sizeof (scratch), "%.*s.before-repair-XXXXXX", (int) length, dir);
    s_ids_t ids = {NULL, 0, 0};
    if (!mkdtemp (scratch)) {
        report->before_problem = strdup ("cannot make a scratch copy beside it");
        report->before = s_ids_take (&ids);
        return;
    }
    char *leveldb_error = NULL;
    leveldb_options_t *options = leveldb_options_create ();
    leveldb_t *db = NULL;
    if (s_copy_files (dir, scratch))
        report->before_problem = strdup ("cannot copy it to read it");
    else
        db = leveldb_open (options, scratch, &leveldb_error);
    if (db) {
        report->before_known = true;
        leveldb_readoptions_t *read = leveldb_readoptions_create ();
        leveldb_iterator_t *it = leveldb_create_iterator (db, read);
        for (leveldb_iter_seek (it, "f", 1); leveldb_iter_valid (it); leveldb_iter_next (it)) {
            size_t key_size;
            const char *key = leveldb_iter_key (it, &key_size);
            if (key_size < 1 || key [0] != 'f')
                break;
            s_list_flow (key, key_size, &ids);
        }
        leveldb_iter_get_error (it, &leveldb_error);
        leveldb_iter_destroy (it);
        leveldb_readoptions_destroy (read);
        leveldb_close (db);
    }
    if (leveldb_error) {
        report->before_problem = strdup (leveldb_error);
        leveldb_free (leveldb_error);
    }
    leveldb_options_destroy (options);
    s_remove_tree (scratch);
    report->before = s_ids_take (&ids);
}

//  How many bytes of damaged log LevelDB's repair says, in its info log
//  (dir/LOG, until the journal is opened again), that it dropped
static uint64_t
s_dropped_bytes (const char *dir)
{
    char path [4096];
    snprintf (path, sizeof (path), "%s/LOG", dir);
    FILE *file = fopen (path, "r");
    uint64_t dropped = 0;
    char line [1024];
    while (file && fgets (line, sizeof (line), file)) {
        const char *at = strstr (line, ": dropping ");
        unsigned long long bytes = 0;
        if (at && sscanf (at, ": dropping %llu bytes", &bytes) == 1)
            dropped += bytes;
    }
    if (file)
        fclose (file);
    return dropped;
}

//  Takes the journal's lock as LevelDB does (repair does not); the file
//  descriptor, or -1 with the report filled
static int
s_lock (const char *dir, chorus_journal_repair_t *report)
{
    struct stat info;
    if (stat (dir, &info) || !S_ISDIR (info.st_mode)) {
        report->failure = CHORUS_JOURNAL_MISSING;
        chorus__journal_describe (report->problem, sizeof (report->problem), dir,
                                  report->failure, "repair", "no such directory");
        return -1;
    }
    char path [4096];
    snprintf (path, sizeof (path), "%s/LOCK", dir);
    int fd = open (path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fd < 0 || fcntl (fd, F_SETLK, &lock)) {
        int code = errno;
        report->failure = fd >= 0 && (code == EAGAIN || code == EACCES)? CHORUS_JOURNAL_LOCKED:
                          chorus__journal_classify_errno (code);
        chorus__journal_describe (report->problem, sizeof (report->problem), dir,
                                  report->failure, "taking its lock", strerror (code));
        if (fd >= 0)
            close (fd);
        return -1;
    }
    return fd;
}

typedef struct {
    chorus_journal_t *self;     //  the repaired journal
    s_ids_t ids;                //  flows kept
    s_ids_t dropped;            //  flows whose records do not decode
    s_fold_t fold;              //  the flow being read
    uint64_t *numbers;          //  the numbers of its records, to delete them
    size_t count;               //  how many
    size_t max;                 //  room for
} s_after_t;

//  Sorts the flow whose records were read into kept or dropped; the
//  records of a dropped one go
static void
s_sort (s_after_t *after)
{
    if (after->fold.id [0] && after->fold.problem) {
        s_ids_add (&after->dropped, after->fold.id, strlen (after->fold.id));
        for (size_t i = 0; i < after->count; i++)
            if (after->numbers [i] == CHORUS_JOURNAL_LEGACY)
                chorus_journal_delete_legacy (after->self, after->fold.id);
            else
                chorus_journal_delete_records (after->self, after->fold.id, after->numbers [i],
                                               after->numbers [i] + 1);
    }
    else
    if (after->fold.id [0])
        s_ids_add (&after->ids, after->fold.id, strlen (after->fold.id));
    after->count = 0;
}

static int
s_sort_record (const char *key, size_t key_size, const char *value, size_t size, void *arg)
{
    s_after_t *after = (s_after_t *) arg;
    char id [256];
    uint64_t number;
    if (chorus__journal_record_key (key, key_size, id, sizeof (id), &number)) {
        //  No flow's record: it cannot be read, so it goes
        leveldb_writebatch_delete (after->self->batch, key, key_size);
        after->self->pending++;
        return 0;
    }
    if (strcmp (id, after->fold.id) != 0) {
        s_sort (after);
        s_fold_start (&after->fold, id);
    }
    s_fold_add (&after->fold, number, value, size);
    if (after->count == after->max) {
        after->max = after->max? after->max * 2: 16;
        after->numbers = (uint64_t *) realloc (after->numbers, after->max * sizeof (uint64_t));
        if (!after->numbers)
            abort ();
    }
    after->numbers [after->count++] = number;
    return 0;
}

int
chorus_journal_repair (const char *dir, chorus_journal_repair_t *report)
{
    memset (report, 0, sizeof *report);
    int lock = s_lock (dir, report);
    if (lock < 0)
        return -1;
    s_read_before (dir, report);
    char *leveldb_error = NULL;
    leveldb_options_t *options = leveldb_options_create ();
    leveldb_options_set_paranoid_checks (options, 1);
    leveldb_repair_db (options, dir, &leveldb_error);
    leveldb_options_destroy (options);
    close (lock);
    if (leveldb_error) {
        report->failure = chorus__journal_classify (leveldb_error);
        if (report->failure == CHORUS_JOURNAL_DAMAGED)
            report->failure = CHORUS_JOURNAL_FAILED;
        chorus__journal_describe (report->problem, sizeof (report->problem), dir,
                                  report->failure, "repair", leveldb_error);
        leveldb_free (leveldb_error);
        return -1;
    }
    report->dropped_bytes = s_dropped_bytes (dir);
    //  What the repaired journal holds; records that do not decode go
    uint64_t mark = 0;
    chorus_journal_t *self = chorus__journal_open (dir, false, false, &mark, &report->failure,
                                                   report->problem, sizeof (report->problem));
    if (!self)
        return -1;
    s_after_t after;
    memset (&after, 0, sizeof (after));
    after.self = self;
    int rc = chorus__journal_scan (self, "f", 1, s_sort_record, &after) < 0? -1: 0;
    if (rc == 0)
        s_sort (&after);
    free (after.numbers);
    if (rc == 0)
        rc = chorus_journal_commit (self);
    report->commits_made = mark;
    report->commits = self->commits;
    //  The journal is what it is now: a coordinator may start on it
    if (rc == 0 && chorus__journal_mark_write (self->mark, self->commits))
        rc = chorus__journal_fail (self, chorus__journal_classify_errno (errno),
                                   "writing its commit mark " S_MARK_FILE, strerror (errno));
    if (rc) {
        report->failure = self->failure;
        snprintf (report->problem, sizeof (report->problem), "%s", self->error);
    }
    chorus_journal_destroy (&self);
    report->dropped = after.dropped.size;
    report->after = s_ids_take (&after.ids);
    qsort (report->after, after.ids.size, sizeof (char *), s_compare_ids);
    qsort (report->before, s_count_ids (report->before), sizeof (char *), s_compare_ids);
    s_ids_t lost = {NULL, 0, 0};
    for (char **id = report->before; *id; id++)
        if (!bsearch (id, report->after, after.ids.size, sizeof (char *), s_compare_ids))
            s_ids_add (&lost, *id, strlen (*id));
    for (size_t i = 0; i < after.dropped.size; i++)
        if (!bsearch (&after.dropped.items [i], report->before, s_count_ids (report->before),
                      sizeof (char *), s_compare_ids))
            s_ids_add (&lost, after.dropped.items [i], strlen (after.dropped.items [i]));
    report->lost = s_ids_take (&lost);
    s_ids_free (s_ids_take (&after.dropped));
    return rc;
}

void
chorus_journal_repair_clear (chorus_journal_repair_t *report)
{
    s_ids_free (report->before);
    s_ids_free (report->after);
    s_ids_free (report->lost);
    free (report->before_problem);
    memset (report, 0, sizeof *report);
}
