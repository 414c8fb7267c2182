/*  chorus_journal.c — the coordinator's journal in LevelDB (see the
    header). Keys: 'f' + flow id -> flow record; 'd' + name + 0 + version
    (4 bytes) -> definition source; 't' + correlation + 0 + time (8) +
    event id -> trace entry; 'x' + time (8) + correlation + 0 + event id ->
    nothing, the index that lets old trace entries expire in time order.
*/
#include "chorus_journal.h"

#include <leveldb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _chorus_journal_t {
    leveldb_t *db;                      //  the database
    leveldb_options_t *options;         //  how it was opened
    leveldb_writeoptions_t *write;      //  sync or not
    leveldb_writeoptions_t *lazy;       //  never sync: for batches of trace entries only
    leveldb_readoptions_t *read;        //  default reads
    leveldb_writebatch_t *batch;        //  pending writes
    size_t pending;                     //  how many
    bool promised;                      //  the batch holds flow state or definitions
    char error [512];                   //  why the last call failed
};

static int
s_fail (chorus_journal_t *self, const char *what, char *leveldb_error)
{
    snprintf (self->error, sizeof (self->error), "journal: %s: %s", what,
              leveldb_error? leveldb_error: "unknown error");
    leveldb_free (leveldb_error);
    return -1;
}

chorus_journal_t *
chorus_journal_new (const char *dir, char *error, size_t error_size)
{
    chorus_journal_t *self = (chorus_journal_t *) calloc (1, sizeof (chorus_journal_t));
    self->options = leveldb_options_create ();
    leveldb_options_set_create_if_missing (self->options, 1);
    char *leveldb_error = NULL;
    self->db = leveldb_open (self->options, dir, &leveldb_error);
    if (!self->db) {
        snprintf (error, error_size, "journal %s: %s", dir,
                  leveldb_error? leveldb_error: "cannot open");
        leveldb_free (leveldb_error);
        leveldb_options_destroy (self->options);
        free (self);
        return NULL;
    }
    self->write = leveldb_writeoptions_create ();
    leveldb_writeoptions_set_sync (self->write, 1);
    self->lazy = leveldb_writeoptions_create ();
    self->read = leveldb_readoptions_create ();
    self->batch = leveldb_writebatch_create ();
    return self;
}

void
chorus_journal_destroy (chorus_journal_t **self_p)
{
    chorus_journal_t *self = *self_p;
    if (self) {
        leveldb_writebatch_destroy (self->batch);
        leveldb_readoptions_destroy (self->read);
        leveldb_writeoptions_destroy (self->write);
        leveldb_writeoptions_destroy (self->lazy);
        leveldb_close (self->db);
        leveldb_options_destroy (self->options);
        free (self);
        *self_p = NULL;
    }
}

const char *
chorus_journal_error (chorus_journal_t *self)
{
    return self->error;
}

void
chorus_journal_set_sync (chorus_journal_t *self, bool sync)
{
    leveldb_writeoptions_set_sync (self->write, sync);
}

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

static void
s_put_u64 (char *at, uint64_t value)
{
    for (int i = 7; i >= 0; i--) {
        at [i] = (char) (value & 0xff);
        value >>= 8;
    }
}

static uint64_t
s_get_u64 (const char *at)
{
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value = (value << 8) | (uint8_t) at [i];
    return value;
}

void
chorus_journal_put_flow (chorus_journal_t *self, const char *id, const char *record)
{
    char key [256];
    size_t length = s_key (key, sizeof (key), 'f', id, NULL);
    leveldb_writebatch_put (self->batch, key, length, record, strlen (record));
    self->pending++;
    self->promised = true;
}

void
chorus_journal_delete_flow (chorus_journal_t *self, const char *id)
{
    char key [256];
    size_t length = s_key (key, sizeof (key), 'f', id, NULL);
    leveldb_writebatch_delete (self->batch, key, length);
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

void
chorus_journal_put_trace (chorus_journal_t *self, const char *correlation, uint64_t time,
                          const char *event_id, const char *entry, size_t size)
{
    //  't' correlation 0 time event-id -> entry, and the expiry index
    char key [512];
    size_t length = s_key (key, sizeof (key) - 80, 't', correlation, NULL);
    key [length++] = 0;
    s_put_u64 (key + length, time);
    length += 8;
    length += (size_t) snprintf (key + length, 70, "%s", event_id);
    leveldb_writebatch_put (self->batch, key, length, entry, size);

    char index [512];
    index [0] = 'x';
    s_put_u64 (index + 1, time);
    memcpy (index + 9, key + 1, length - 1);
    leveldb_writebatch_put (self->batch, index, length + 8, "", 0);
    self->pending += 2;
}

int
chorus_journal_commit (chorus_journal_t *self)
{
    if (self->pending == 0)
        return 0;
    //  Only flow state and definitions carry promises that must survive the
    //  machine; a batch of trace entries alone (the coordinator observes
    //  every event, often in turns of their own) is not worth a disk flush.
    //  It reaches the OS, so survives a crash of the process; a crash of
    //  the machine may lose the last such entries.
    char *leveldb_error = NULL;
    leveldb_write (self->db, self->promised? self->write: self->lazy, self->batch,
                   &leveldb_error);
    leveldb_writebatch_clear (self->batch);
    self->pending = 0;
    self->promised = false;
    if (leveldb_error)
        return s_fail (self, "commit", leveldb_error);
    return 0;
}

size_t
chorus_journal_pending (chorus_journal_t *self)
{
    return self->pending;
}

//  Calls fn (key, key length, value, value length) for the keys starting
//  with prefix; stops when fn returns non-zero
typedef int (s_visit_fn) (const char *key, size_t key_size, const char *value, size_t size,
                          void *arg);

static int
s_scan (chorus_journal_t *self, const char *prefix, size_t prefix_size, s_visit_fn *fn,
        void *arg)
{
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
    if (leveldb_error)
        return s_fail (self, "read", leveldb_error);
    return count;
}

typedef struct {
    chorus_journal_flow_fn *fn;         //  the caller's function
    void *arg;                          //  its argument
} s_flow_visit_t;

static int
s_visit_flow (const char *key, size_t key_size, const char *value, size_t size, void *arg)
{
    s_flow_visit_t *visit = (s_flow_visit_t *) arg;
    char *id = strndup (key + 1, key_size - 1);
    char *record = strndup (value, size);
    int rc = visit->fn (id, record, visit->arg);
    free (id);
    free (record);
    return rc;
}

int
chorus_journal_each_flow (chorus_journal_t *self, chorus_journal_flow_fn *fn, void *arg)
{
    s_flow_visit_t visit = {fn, arg};
    return s_scan (self, "f", 1, s_visit_flow, &visit);
}

char *
chorus_journal_definition (chorus_journal_t *self, const char *name, int version)
{
    char key [128];
    char number [16];
    snprintf (number, sizeof (number), "%010d", version);
    size_t length = s_key (key, sizeof (key), 'd', name, number);
    char *leveldb_error = NULL;
    size_t size = 0;
    char *value = leveldb_get (self->db, self->read, key, length, &size, &leveldb_error);
    if (leveldb_error) {
        s_fail (self, "read definition", leveldb_error);
        return NULL;
    }
    if (!value)
        return NULL;
    char *source = strndup (value, size);
    leveldb_free (value);
    return source;
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
    return s_scan (self, prefix, length, s_visit_trace, &visit);
}

typedef struct {
    chorus_journal_t *self;             //  the journal
    uint64_t before;                    //  forget entries older than this
    size_t max;                         //  visit at most this many
    int forgotten;                      //  how many went
} s_expire_t;

static int
s_visit_expire (const char *key, size_t key_size, const char *value, size_t size, void *arg)
{
    s_expire_t *expire = (s_expire_t *) arg;
    if (key_size < 9 || s_get_u64 (key + 1) >= expire->before || expire->max-- == 0)
        return 1;
    //  The entry's own key is 't' + what follows the time in the index
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

int
chorus_journal_expire_traces (chorus_journal_t *self, uint64_t before, size_t max)
{
    s_expire_t expire = {self, before, max, 0};
    if (s_scan (self, "x", 1, s_visit_expire, &expire) < 0)
        return -1;
    return chorus_journal_commit (self) == 0? expire.forgotten: -1;
}
