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

//  The flow state named in a record, NULL if the record does not decode
//  (it needs at least what the engine's saved state always has); how many
//  events it still has to publish in *unpublished
static const char *
s_record_state (json_t *record, size_t *unpublished)
{
    json_t *state = json_object_get (record, "state");
    *unpublished = json_array_size (json_object_get (record, "emits"));
    if (!json_is_string (json_object_get (state, "flow"))
    ||  !json_is_integer (json_object_get (state, "version"))
    ||  !json_is_array (json_object_get (state, "steps")))
        return NULL;
    return json_string_value (json_object_get (state, "state"));
}

static bool
s_known_state (const char *state)
{
    const char *states [] = {"running", "compensating", "completed", "failed", "cancelled",
                             "stuck"};
    for (size_t i = 0; i < sizeof (states) / sizeof (states [0]); i++)
        if (strcmp (state, states [i]) == 0)
            return true;
    return false;
}

static int
s_count_flow (const char *key, size_t key_size, const char *value, size_t size, void *arg)
{
    chorus_journal_report_t *report = (chorus_journal_report_t *) arg;
    json_t *record = json_loadb (value, size, 0, NULL);
    size_t unpublished = 0;
    const char *state = record? s_record_state (record, &unpublished): NULL;
    report->flows++;
    report->unpublished += unpublished;
    if (!state) {
        if (report->undecodable++ == 0)
            snprintf (report->problem, sizeof (report->problem), "%.*s", (int) key_size - 1,
                      key + 1);
    }
    else
    if (strcmp (state, "running") == 0)
        report->running++;
    else
    if (strcmp (state, "compensating") == 0)
        report->compensating++;
    else
    if (strcmp (state, "completed") == 0)
        report->completed++;
    else
    if (strcmp (state, "failed") == 0)
        report->failed++;
    else
    if (strcmp (state, "cancelled") == 0)
        report->cancelled++;
    else
    if (strcmp (state, "stuck") == 0)
        report->stuck++;
    else
    if (report->undecodable++ == 0)
        snprintf (report->problem, sizeof (report->problem), "%.*s", (int) key_size - 1, key + 1);
    json_decref (record);
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
    int flows = chorus__journal_scan (self, "f", 1, s_count_flow, report);
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
        snprintf (reason, sizeof (reason), "%zu flow record%s do%s not decode (the first: "
                  "flow %.200s)", report->undecodable, report->undecodable == 1? "": "s",
                  report->undecodable == 1? "es": "", report->problem);
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

static int
s_list_flow (const char *key, size_t key_size, const char *value, size_t size, void *arg)
{
    s_ids_add ((s_ids_t *) arg, key + 1, key_size - 1);
    return 0;
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
            s_list_flow (key, key_size, NULL, 0, &ids);
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
    s_ids_t ids;                //  flows kept
    s_ids_t dropped;            //  flows whose record does not decode
} s_after_t;

static int
s_sort_flow (const char *key, size_t key_size, const char *value, size_t size, void *arg)
{
    s_after_t *after = (s_after_t *) arg;
    json_t *record = json_loadb (value, size, 0, NULL);
    size_t unpublished;
    const char *state = record? s_record_state (record, &unpublished): NULL;
    s_ids_add (state && s_known_state (state)? &after->ids: &after->dropped, key + 1,
               key_size - 1);
    json_decref (record);
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
    int rc = chorus__journal_scan (self, "f", 1, s_sort_flow, &after) < 0? -1: 0;
    for (size_t i = 0; rc == 0 && i < after.dropped.size; i++)
        chorus_journal_delete_flow (self, after.dropped.items [i]);
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
