/*  chorus_store.c — a node's durable state in one LevelDB directory: keys
    carry a namespace byte and big-endian integers so that they sort
    numerically; the outbox counters are cached in memory for other threads.
*/
#include "chorus_store.h"

#include <czmq.h>
#include <leveldb/c.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Key namespaces: one byte in front of every key
#define S_NS_META   'm'     //  "minstance", "mhead"
#define S_NS_EVENT  'e'     //  'e' seq -> timestamp body
#define S_NS_GROUP  'g'     //  'g' name -> since flags cursor
#define S_NS_INBOX  'i'     //  'i' publisher 0x00 seq -> time
#define S_NS_REPLY  'r'     //  'r' key -> time body
#define S_NS_SUB    's'     //  's' prefix -> since

#define S_EVENT_KEY_SIZE    9                   //  'e' + seq
#define S_GROUP_VALUE_SIZE  24                  //  since, flags, cursor; then the subs text
#define S_GROUP_SUBS_MAX    65536               //  longest subs text kept
#define S_CACHE_SIZE        (8 * 1024 * 1024)   //  LevelDB block cache
#define S_BLOOM_BITS        10                  //  bits per key of the bloom filter
#define S_TRIM_BATCH        1000                //  deletes per write when trimming

static const char s_key_instance [] = "minstance";
static const char s_key_head [] = "mhead";

struct _chorus_store_t {
    leveldb_t *db;                      //  the open database
    leveldb_options_t *options;         //  open options (cache, filter, create)
    leveldb_cache_t *cache;             //  LRU block cache, owned
    leveldb_filterpolicy_t *filter;     //  bloom filter policy, owned
    leveldb_readoptions_t *read;        //  default read options
    leveldb_writeoptions_t *write;      //  write options (sync per set_sync)
    char instance [33];                 //  instance id, uppercase hex
    pthread_mutex_t lock;               //  guards the counters and pending
    pthread_mutex_t append_lock;        //  serialises appends
    uint64_t head;                      //  last sequence number assigned
    uint64_t first;                     //  oldest retained seq, 0 when empty
    uint64_t events;                    //  events retained
    uint64_t bytes;                     //  body bytes retained
    leveldb_writebatch_t *pending;      //  writes collected between begin/commit
    leveldb_writebatch_t *append_batch; //  reused by appends, under append_lock
    pthread_t pending_thread;           //  the thread that called begin
    bool pending_trim;                  //  a trim is waiting in pending
    uint64_t pending_trim_last;         //  highest seq the pending trim deletes
    uint64_t pending_trim_events;       //  events the pending trim deletes
    uint64_t pending_trim_bytes;        //  body bytes the pending trim deletes
    char *expire_key;                   //  where inbox_expire resumes; NULL: start
    size_t expire_key_size;             //  size of expire_key
    char error [256];                   //  why the last failing call failed
};

//  --------------------------------------------------------------------------
//  Encoding helpers

static void
s_put_u64 (char *buffer, uint64_t value)
{
    for (int i = 7; i >= 0; i--) {
        buffer [i] = (char) (value & 0xFF);
        value >>= 8;
    }
}

static uint64_t
s_get_u64 (const char *buffer)
{
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value = (value << 8) | (uint8_t) buffer [i];
    return value;
}

static void
s_event_key (char *key, uint64_t seq)
{
    key [0] = S_NS_EVENT;
    s_put_u64 (key + 1, seq);
}

//  Returns a malloc'ed key: the namespace byte, then name (without its
//  terminating null), then `extra` zero bytes for the caller to fill
static char *
s_name_key (char ns, const char *name, size_t extra, size_t *key_size)
{
    size_t length = strlen (name);
    char *key = (char *) malloc (1 + length + extra + 1);
    if (!key)
        return NULL;
    key [0] = ns;
    memcpy (key + 1, name, length);
    memset (key + 1 + length, 0, extra + 1);
    *key_size = 1 + length + extra;
    return key;
}

//  Writes a printable form of a key into text, for error messages
static void
s_key_text (const char *key, size_t size, char *text, size_t text_size)
{
    size_t used = 0;
    for (size_t i = 0; i < size && used + 5 < text_size; i++) {
        uint8_t byte = (uint8_t) key [i];
        if (byte >= 0x20 && byte < 0x7F && byte != '\\')
            text [used++] = (char) byte;
        else
            used += (size_t) snprintf (text + used, text_size - used, "\\x%02X", byte);
    }
    if (text_size)
        text [used < text_size? used: text_size - 1] = 0;
}

//  --------------------------------------------------------------------------
//  Error helpers: each records the reason and returns -1

static int
s_fail (chorus_store_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static int
s_fail (chorus_store_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->error, sizeof (self->error), format, args);
    va_end (args);
    return -1;
}

//  Takes ownership of a LevelDB error string and frees it
static int
s_fail_leveldb (chorus_store_t *self, const char *what, char *leveldb_error)
{
    s_fail (self, "%s: %s", what, leveldb_error? leveldb_error: "unknown error");
    leveldb_free (leveldb_error);
    return -1;
}

static int
s_fail_corrupt (chorus_store_t *self, const char *key, size_t key_size)
{
    char text [96];
    s_key_text (key, key_size, text, sizeof (text));
    return s_fail (self, "corrupt record for key %s", text);
}

//  Checks an iterator's status; destroys it either way. Returns 0 or -1.
static int
s_iter_finish (chorus_store_t *self, leveldb_iterator_t *iter)
{
    char *leveldb_error = NULL;
    leveldb_iter_get_error (iter, &leveldb_error);
    leveldb_iter_destroy (iter);
    if (leveldb_error)
        return s_fail_leveldb (self, "store read failed", leveldb_error);
    return 0;
}

//  --------------------------------------------------------------------------
//  Write helpers: into the pending batch when this thread began one, else
//  straight to the database

static leveldb_writebatch_t *
s_batch (chorus_store_t *self)
{
    pthread_mutex_lock (&self->lock);
    leveldb_writebatch_t *batch = NULL;
    if (self->pending && pthread_equal (self->pending_thread, pthread_self ()))
        batch = self->pending;
    pthread_mutex_unlock (&self->lock);
    return batch;
}

static int
s_put (chorus_store_t *self, const char *key, size_t key_size, const char *value,
       size_t value_size)
{
    leveldb_writebatch_t *batch = s_batch (self);
    if (batch) {
        leveldb_writebatch_put (batch, key, key_size, value, value_size);
        return 0;
    }
    char *leveldb_error = NULL;
    leveldb_put (self->db, self->write, key, key_size, value, value_size, &leveldb_error);
    if (leveldb_error)
        return s_fail_leveldb (self, "store write failed", leveldb_error);
    return 0;
}

static int
s_delete (chorus_store_t *self, const char *key, size_t key_size)
{
    leveldb_writebatch_t *batch = s_batch (self);
    if (batch) {
        leveldb_writebatch_delete (batch, key, key_size);
        return 0;
    }
    char *leveldb_error = NULL;
    leveldb_delete (self->db, self->write, key, key_size, &leveldb_error);
    if (leveldb_error)
        return s_fail_leveldb (self, "store write failed", leveldb_error);
    return 0;
}

static int
s_write (chorus_store_t *self, leveldb_writebatch_t *batch)
{
    char *leveldb_error = NULL;
    leveldb_write (self->db, self->write, batch, &leveldb_error);
    if (leveldb_error)
        return s_fail_leveldb (self, "store write failed", leveldb_error);
    return 0;
}

//  Reads a value. Returns 1 and a leveldb_free'able value, 0 when the key is
//  absent, or -1.
static int
s_get (chorus_store_t *self, const char *key, size_t key_size, char **value,
       size_t *value_size)
{
    char *leveldb_error = NULL;
    *value = leveldb_get (self->db, self->read, key, key_size, value_size, &leveldb_error);
    if (leveldb_error) {
        leveldb_free (*value);
        *value = NULL;
        return s_fail_leveldb (self, "store read failed", leveldb_error);
    }
    return *value? 1: 0;
}

//  Reads a value that must be one u64. Returns 1, 0 when absent, or -1.
static int
s_get_u64_value (chorus_store_t *self, const char *key, size_t key_size, uint64_t *number)
{
    char *value;
    size_t value_size;
    int rc = s_get (self, key, key_size, &value, &value_size);
    if (rc == 1) {
        if (value_size == 8)
            *number = s_get_u64 (value);
        else
            rc = s_fail_corrupt (self, key, key_size);
        leveldb_free (value);
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  Opening

//  Reads the instance id, creating it the first time
static int
s_load_instance (chorus_store_t *self)
{
    char *value;
    size_t value_size;
    int rc = s_get (self, s_key_instance, strlen (s_key_instance), &value, &value_size);
    if (rc == -1)
        return -1;
    uint8_t id [16];
    if (rc == 1) {
        if (value_size != sizeof (id)) {
            leveldb_free (value);
            return s_fail_corrupt (self, s_key_instance, strlen (s_key_instance));
        }
        memcpy (id, value, sizeof (id));
        leveldb_free (value);
    }
    else {
        zuuid_t *uuid = zuuid_new ();
        if (!uuid)
            return s_fail (self, "cannot generate an instance id");
        memcpy (id, zuuid_data (uuid), sizeof (id));
        zuuid_destroy (&uuid);
        //  The identity is written once and must never change: always sync
        leveldb_writeoptions_t *sync = leveldb_writeoptions_create ();
        leveldb_writeoptions_set_sync (sync, 1);
        char *leveldb_error = NULL;
        leveldb_put (self->db, sync, s_key_instance, strlen (s_key_instance),
                     (const char *) id, sizeof (id), &leveldb_error);
        leveldb_writeoptions_destroy (sync);
        if (leveldb_error)
            return s_fail_leveldb (self, "store write failed", leveldb_error);
    }
    for (size_t i = 0; i < sizeof (id); i++)
        snprintf (self->instance + 2 * i, 3, "%02X", id [i]);
    return 0;
}

//  Reads the head and counts the retained events in one scan of the outbox
static int
s_load_outbox (chorus_store_t *self)
{
    if (s_get_u64_value (self, s_key_head, strlen (s_key_head), &self->head) == -1)
        return -1;

    leveldb_iterator_t *iter = leveldb_create_iterator (self->db, self->read);
    char start [1] = {S_NS_EVENT};
    uint64_t last = 0;
    int rc = 0;
    for (leveldb_iter_seek (iter, start, sizeof (start)); leveldb_iter_valid (iter);
         leveldb_iter_next (iter)) {
        size_t key_size, value_size;
        const char *key = leveldb_iter_key (iter, &key_size);
        if (key_size == 0 || key [0] != S_NS_EVENT)
            break;
        leveldb_iter_value (iter, &value_size);
        if (key_size != S_EVENT_KEY_SIZE || value_size < 8) {
            rc = s_fail_corrupt (self, key, key_size);
            break;
        }
        last = s_get_u64 (key + 1);
        if (self->events == 0)
            self->first = last;
        self->events++;
        self->bytes += value_size - 8;
    }
    if (s_iter_finish (self, iter) == -1)
        rc = -1;
    if (rc == 0 && last > self->head)
        rc = s_fail (self, "corrupt store: event %" PRIu64 " is above head %" PRIu64,
                     last, self->head);
    return rc;
}

static void
s_copy_error (char *error, size_t error_size, const char *text)
{
    if (error && error_size) {
        strncpy (error, text, error_size - 1);
        error [error_size - 1] = 0;
    }
}

chorus_store_t *
chorus_store_new (const char *dir, char *error, size_t error_size)
{
    if (!dir || !*dir) {
        s_copy_error (error, error_size, "store directory not set");
        return NULL;
    }
    chorus_store_t *self = (chorus_store_t *) calloc (1, sizeof (chorus_store_t));
    if (!self) {
        s_copy_error (error, error_size, "out of memory");
        return NULL;
    }
    pthread_mutex_init (&self->lock, NULL);
    pthread_mutex_init (&self->append_lock, NULL);
    self->options = leveldb_options_create ();
    self->cache = leveldb_cache_create_lru (S_CACHE_SIZE);
    self->filter = leveldb_filterpolicy_create_bloom (S_BLOOM_BITS);
    self->read = leveldb_readoptions_create ();
    self->write = leveldb_writeoptions_create ();
    leveldb_options_set_create_if_missing (self->options, 1);
    leveldb_options_set_cache (self->options, self->cache);
    leveldb_options_set_filter_policy (self->options, self->filter);

    char *leveldb_error = NULL;
    self->db = leveldb_open (self->options, dir, &leveldb_error);
    if (leveldb_error || !self->db) {
        //  LevelDB reports a held LOCK file as "IO error: lock <dir>/LOCK: ..."
        if (leveldb_error && strstr (leveldb_error, "IO error: lock "))
            s_fail (self, "store %s is locked by another process (or: %s)", dir,
                    leveldb_error);
        else
            s_fail (self, "store %s: %s", dir,
                    leveldb_error? leveldb_error: "cannot open database");
        leveldb_free (leveldb_error);
        s_copy_error (error, error_size, self->error);
        chorus_store_destroy (&self);
        return NULL;
    }
    if (s_load_instance (self) == -1 || s_load_outbox (self) == -1) {
        char text [sizeof (self->error) + 64];
        snprintf (text, sizeof (text), "store %s: %s", dir, self->error);
        s_copy_error (error, error_size, text);
        chorus_store_destroy (&self);
        return NULL;
    }
    return self;
}

void
chorus_store_destroy (chorus_store_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    chorus_store_t *self = *self_p;
    //  An uncommitted batch is discarded, as if the process had stopped
    if (self->pending)
        leveldb_writebatch_destroy (self->pending);
    if (self->append_batch)
        leveldb_writebatch_destroy (self->append_batch);
    //  The database goes first: it uses the options, cache and filter
    if (self->db)
        leveldb_close (self->db);
    leveldb_writeoptions_destroy (self->write);
    leveldb_readoptions_destroy (self->read);
    leveldb_options_destroy (self->options);
    leveldb_filterpolicy_destroy (self->filter);
    leveldb_cache_destroy (self->cache);
    free (self->expire_key);
    pthread_mutex_destroy (&self->append_lock);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

const char *
chorus_store_error (chorus_store_t *self)
{
    return self->error;
}

void
chorus_store_set_sync (chorus_store_t *self, bool sync)
{
    leveldb_writeoptions_set_sync (self->write, sync? 1: 0);
}

const char *
chorus_store_instance (chorus_store_t *self)
{
    return self->instance;
}

//  --------------------------------------------------------------------------
//  Outbox

static uint64_t
s_counter (chorus_store_t *self, const uint64_t *counter)
{
    pthread_mutex_lock (&self->lock);
    uint64_t value = *counter;
    pthread_mutex_unlock (&self->lock);
    return value;
}

uint64_t
chorus_store_head (chorus_store_t *self)
{
    return s_counter (self, &self->head);
}

uint64_t
chorus_store_first (chorus_store_t *self)
{
    return s_counter (self, &self->first);
}

uint64_t
chorus_store_events (chorus_store_t *self)
{
    return s_counter (self, &self->events);
}

uint64_t
chorus_store_bytes (chorus_store_t *self)
{
    return s_counter (self, &self->bytes);
}

int
chorus_store_append (chorus_store_t *self, uint64_t seq, uint64_t timestamp,
                     const void *body, size_t size)
{
    if (size && !body)
        return s_fail (self, "append: no body");
    pthread_mutex_lock (&self->append_lock);
    uint64_t head = chorus_store_head (self);
    if (seq != head + 1) {
        pthread_mutex_unlock (&self->append_lock);
        return s_fail (self, "append: seq %" PRIu64 " is not head + 1 (%" PRIu64 ")", seq,
                       head + 1);
    }
    //  A small event's value is built on the stack, and the batch is
    //  reused: one publish costs the write and little else
    char small [512];
    char *value = 8 + size <= sizeof (small)? small: (char *) malloc (8 + size);
    if (!value) {
        pthread_mutex_unlock (&self->append_lock);
        return s_fail (self, "append: out of memory");
    }
    s_put_u64 (value, timestamp);
    if (size)
        memcpy (value + 8, body, size);
    char key [S_EVENT_KEY_SIZE];
    s_event_key (key, seq);
    char head_value [8];
    s_put_u64 (head_value, seq);

    if (!self->append_batch)
        self->append_batch = leveldb_writebatch_create ();
    leveldb_writebatch_t *batch = self->append_batch;
    leveldb_writebatch_put (batch, key, sizeof (key), value, 8 + size);
    leveldb_writebatch_put (batch, s_key_head, strlen (s_key_head), head_value,
                            sizeof (head_value));
    int rc = s_write (self, batch);
    leveldb_writebatch_clear (batch);
    if (value != small)
        free (value);
    if (rc == 0) {
        pthread_mutex_lock (&self->lock);
        self->head = seq;
        if (self->events == 0)
            self->first = seq;
        self->events++;
        self->bytes += size;
        pthread_mutex_unlock (&self->lock);
    }
    pthread_mutex_unlock (&self->append_lock);
    return rc;
}

int
chorus_store_scan (chorus_store_t *self, uint64_t from, uint64_t to,
                   chorus_store_event_fn *fn, void *arg)
{
    if (to == 0)
        to = chorus_store_head (self);
    if (from > to)
        return 0;
    //  The iterator reads a snapshot: a concurrent append is simply not seen
    leveldb_iterator_t *iter = leveldb_create_iterator (self->db, self->read);
    char start [S_EVENT_KEY_SIZE];
    s_event_key (start, from);
    int visited = 0;
    int rc = 0;
    for (leveldb_iter_seek (iter, start, sizeof (start)); leveldb_iter_valid (iter);
         leveldb_iter_next (iter)) {
        size_t key_size, value_size;
        const char *key = leveldb_iter_key (iter, &key_size);
        if (key_size == 0 || key [0] != S_NS_EVENT)
            break;
        const char *value = leveldb_iter_value (iter, &value_size);
        if (key_size != S_EVENT_KEY_SIZE || value_size < 8) {
            rc = s_fail_corrupt (self, key, key_size);
            break;
        }
        uint64_t seq = s_get_u64 (key + 1);
        if (seq > to)
            break;
        visited++;
        if (fn (seq, s_get_u64 (value), value + 8, value_size - 8, arg))
            break;
    }
    if (s_iter_finish (self, iter) == -1)
        rc = -1;
    return rc == 0? visited: -1;
}

//  Applies a trim to the counters: `deleted` events and `bytes` bodies gone,
//  the last of them with seq `last`
static void
s_trim_counters (chorus_store_t *self, uint64_t deleted, uint64_t bytes, uint64_t last)
{
    pthread_mutex_lock (&self->lock);
    self->events = self->events > deleted? self->events - deleted: 0;
    self->bytes = self->bytes > bytes? self->bytes - bytes: 0;
    if (self->events == 0)
        self->first = 0;
    else
    if (self->first <= last)
        self->first = last + 1;
    pthread_mutex_unlock (&self->lock);
}

int
chorus_store_trim (chorus_store_t *self, uint64_t below)
{
    leveldb_writebatch_t *pending = s_batch (self);
    pthread_mutex_lock (&self->lock);
    uint64_t start = self->first;
    if (pending && self->pending_trim && start <= self->pending_trim_last)
        start = self->pending_trim_last + 1;
    bool nothing = self->events == 0 || start >= below;
    pthread_mutex_unlock (&self->lock);
    if (nothing)
        return 0;

    //  Batched, every delete waits in the pending batch and the counters
    //  change at commit; else the deletes go out in bounded writes
    leveldb_writebatch_t *batch = pending? pending: leveldb_writebatch_create ();
    leveldb_iterator_t *iter = leveldb_create_iterator (self->db, self->read);
    char key_start [S_EVENT_KEY_SIZE];
    s_event_key (key_start, start);
    uint64_t deleted = 0, chunk = 0, chunk_bytes = 0, last = 0;
    int rc = 0;
    for (leveldb_iter_seek (iter, key_start, sizeof (key_start)); leveldb_iter_valid (iter);
         leveldb_iter_next (iter)) {
        size_t key_size, value_size;
        const char *key = leveldb_iter_key (iter, &key_size);
        if (key_size == 0 || key [0] != S_NS_EVENT)
            break;
        leveldb_iter_value (iter, &value_size);
        if (key_size != S_EVENT_KEY_SIZE || value_size < 8) {
            rc = s_fail_corrupt (self, key, key_size);
            break;
        }
        uint64_t seq = s_get_u64 (key + 1);
        if (seq >= below)
            break;
        leveldb_writebatch_delete (batch, key, key_size);
        last = seq;
        chunk++;
        chunk_bytes += value_size - 8;
        if (!pending && chunk == S_TRIM_BATCH) {
            if (s_write (self, batch) == -1) {
                rc = -1;
                chunk = 0;
                break;
            }
            leveldb_writebatch_clear (batch);
            s_trim_counters (self, chunk, chunk_bytes, last);
            deleted += chunk;
            chunk = chunk_bytes = 0;
        }
    }
    if (s_iter_finish (self, iter) == -1)
        rc = -1;
    if (pending) {
        //  On failure the deletes stay in the batch: counting them keeps the
        //  counters right if the caller commits anyway
        if (chunk) {
            pthread_mutex_lock (&self->lock);
            self->pending_trim = true;
            self->pending_trim_last = last;
            self->pending_trim_events += chunk;
            self->pending_trim_bytes += chunk_bytes;
            pthread_mutex_unlock (&self->lock);
        }
        deleted += chunk;
    }
    else {
        if (rc == 0 && chunk) {
            if (s_write (self, batch) == 0) {
                s_trim_counters (self, chunk, chunk_bytes, last);
                deleted += chunk;
            }
            else
                rc = -1;
        }
        leveldb_writebatch_destroy (batch);
    }
    return rc == 0? (int) deleted: -1;
}

//  --------------------------------------------------------------------------
//  Groups

int
chorus_store_group_save (chorus_store_t *self, const char *group,
                         const chorus_store_group_t *record)
{
    size_t key_size;
    char *key = s_name_key (S_NS_GROUP, group, 0, &key_size);
    if (!key)
        return s_fail (self, "out of memory");
    size_t subs_size = record->subs? strlen (record->subs): 0;
    if (subs_size > S_GROUP_SUBS_MAX)
        subs_size = 0;  //  an absent group's pending count is then not reported
    char *value = (char *) malloc (S_GROUP_VALUE_SIZE + subs_size);
    if (!value) {
        free (key);
        return s_fail (self, "out of memory");
    }
    s_put_u64 (value, record->since);
    s_put_u64 (value + 8, record->flags);
    s_put_u64 (value + 16, record->cursor);
    if (subs_size)
        memcpy (value + S_GROUP_VALUE_SIZE, record->subs, subs_size);
    int rc = s_put (self, key, key_size, value, S_GROUP_VALUE_SIZE + subs_size);
    free (value);
    free (key);
    return rc;
}

static void
s_group_decode (const char *value, chorus_store_group_t *record)
{
    record->since = s_get_u64 (value);
    record->flags = s_get_u64 (value + 8);
    record->cursor = s_get_u64 (value + 16);
    record->subs = NULL;
}

int
chorus_store_group_load (chorus_store_t *self, const char *group,
                         chorus_store_group_t *record)
{
    size_t key_size;
    char *key = s_name_key (S_NS_GROUP, group, 0, &key_size);
    if (!key)
        return s_fail (self, "out of memory");
    char *value;
    size_t value_size;
    int rc = s_get (self, key, key_size, &value, &value_size);
    if (rc == 0)
        rc = s_fail (self, "group '%s' is not known", group);
    else
    if (rc == 1) {
        if (value_size >= S_GROUP_VALUE_SIZE) {
            s_group_decode (value, record);
            rc = 0;
        }
        else
            rc = s_fail_corrupt (self, key, key_size);
        leveldb_free (value);
    }
    free (key);
    return rc;
}

int
chorus_store_group_delete (chorus_store_t *self, const char *group)
{
    size_t key_size;
    char *key = s_name_key (S_NS_GROUP, group, 0, &key_size);
    if (!key)
        return s_fail (self, "out of memory");
    int rc = s_delete (self, key, key_size);
    free (key);
    return rc;
}

int
chorus_store_group_each (chorus_store_t *self, chorus_store_group_fn *fn, void *arg)
{
    leveldb_iterator_t *iter = leveldb_create_iterator (self->db, self->read);
    char start [1] = {S_NS_GROUP};
    int visited = 0;
    int rc = 0;
    for (leveldb_iter_seek (iter, start, sizeof (start)); leveldb_iter_valid (iter);
         leveldb_iter_next (iter)) {
        size_t key_size, value_size;
        const char *key = leveldb_iter_key (iter, &key_size);
        if (key_size == 0 || key [0] != S_NS_GROUP)
            break;
        const char *value = leveldb_iter_value (iter, &value_size);
        if (value_size < S_GROUP_VALUE_SIZE || memchr (key + 1, 0, key_size - 1)) {
            rc = s_fail_corrupt (self, key, key_size);
            break;
        }
        size_t subs_size = value_size - S_GROUP_VALUE_SIZE;
        char *name = (char *) malloc (key_size);
        char *subs = subs_size? (char *) malloc (subs_size + 1): NULL;
        if (!name || (subs_size && !subs)) {
            free (name);
            rc = s_fail (self, "out of memory");
            break;
        }
        memcpy (name, key + 1, key_size - 1);
        name [key_size - 1] = 0;
        chorus_store_group_t record;
        s_group_decode (value, &record);
        if (subs) {
            memcpy (subs, value + S_GROUP_VALUE_SIZE, subs_size);
            subs [subs_size] = 0;
            record.subs = subs;
        }
        visited++;
        int stop = fn (name, &record, arg);
        free (name);
        free (subs);
        if (stop)
            break;
    }
    if (s_iter_finish (self, iter) == -1)
        rc = -1;
    return rc == 0? visited: -1;
}

//  --------------------------------------------------------------------------
//  Inbox

//  'i' publisher 0x00 seq: the null ends the publisher, so that one
//  publisher's records never interleave with a longer name's. Written
//  into key (S_INBOX_KEY_MAX bytes) when it fits, else malloc'ed.
#define S_INBOX_KEY_MAX 128

static char *
s_inbox_key (const char *publisher, uint64_t seq, char *key, size_t *key_size)
{
    size_t length = strlen (publisher);
    if (1 + length + 9 > S_INBOX_KEY_MAX)
        key = (char *) malloc (1 + length + 9);
    if (key) {
        key [0] = S_NS_INBOX;
        memcpy (key + 1, publisher, length);
        key [1 + length] = 0;
        s_put_u64 (key + 2 + length, seq);
        *key_size = 1 + length + 9;
    }
    return key;
}

int
chorus_store_inbox_add (chorus_store_t *self, const char *publisher, uint64_t seq,
                        uint64_t now)
{
    size_t key_size;
    char buffer [S_INBOX_KEY_MAX];
    char *key = s_inbox_key (publisher, seq, buffer, &key_size);
    if (!key)
        return s_fail (self, "out of memory");
    char value [8];
    s_put_u64 (value, now);
    int rc = s_put (self, key, key_size, value, sizeof (value));
    if (key != buffer)
        free (key);
    return rc;
}

int
chorus_store_inbox_has (chorus_store_t *self, const char *publisher, uint64_t seq)
{
    size_t key_size;
    char buffer [S_INBOX_KEY_MAX];
    char *key = s_inbox_key (publisher, seq, buffer, &key_size);
    if (!key)
        return s_fail (self, "out of memory");
    char *value;
    size_t value_size;
    int rc = s_get (self, key, key_size, &value, &value_size);
    if (rc == 1)
        leveldb_free (value);
    if (key != buffer)
        free (key);
    return rc;
}

int
chorus_store_reply_save (chorus_store_t *self, const char *key, uint64_t now,
                         const void *body, size_t size)
{
    if (size && !body)
        return s_fail (self, "reply_save: no body");
    size_t key_size;
    char *store_key = s_name_key (S_NS_REPLY, key, 0, &key_size);
    char *value = (char *) malloc (8 + size);
    if (!store_key || !value) {
        free (store_key);
        free (value);
        return s_fail (self, "out of memory");
    }
    s_put_u64 (value, now);
    if (size)
        memcpy (value + 8, body, size);
    int rc = s_put (self, store_key, key_size, value, 8 + size);
    free (value);
    free (store_key);
    return rc;
}

void *
chorus_store_reply_load (chorus_store_t *self, const char *key, size_t *size)
{
    size_t key_size;
    char *store_key = s_name_key (S_NS_REPLY, key, 0, &key_size);
    if (!store_key) {
        s_fail (self, "out of memory");
        return NULL;
    }
    char *value;
    size_t value_size;
    char *reply = NULL;
    int rc = s_get (self, store_key, key_size, &value, &value_size);
    if (rc == 0)
        s_fail (self, "no reply saved for '%s'", key);
    else
    if (rc == 1) {
        if (value_size < 8)
            s_fail_corrupt (self, store_key, key_size);
        else {
            //  At least one byte, so that an empty reply is not NULL
            reply = (char *) malloc (value_size - 8 + 1);
            if (reply) {
                memcpy (reply, value + 8, value_size - 8);
                if (size)
                    *size = value_size - 8;
            }
            else
                s_fail (self, "out of memory");
        }
        leveldb_free (value);
    }
    free (store_key);
    return reply;
}

//  Remembers where the next inbox_expire starts: just after key
static int
s_expire_resume_after (chorus_store_t *self, const char *key, size_t key_size)
{
    char *resume = (char *) malloc (key_size + 1);
    if (!resume)
        return s_fail (self, "out of memory");
    memcpy (resume, key, key_size);
    resume [key_size] = 0;          //  the smallest key above `key`
    free (self->expire_key);
    self->expire_key = resume;
    self->expire_key_size = key_size + 1;
    return 0;
}

int
chorus_store_inbox_expire (chorus_store_t *self, uint64_t before, size_t max)
{
    if (max == 0)
        return 0;
    leveldb_writebatch_t *pending = s_batch (self);
    leveldb_writebatch_t *batch = pending? pending: leveldb_writebatch_create ();
    leveldb_iterator_t *iter = leveldb_create_iterator (self->db, self->read);
    char inbox_start [1] = {S_NS_INBOX};
    char reply_start [1] = {S_NS_REPLY};
    if (self->expire_key)
        leveldb_iter_seek (iter, self->expire_key, self->expire_key_size);
    else
        leveldb_iter_seek (iter, inbox_start, sizeof (inbox_start));

    //  The sweep walks the 'i' namespace, then the 'r' one, `max` records at
    //  a time; reaching the end starts the next sweep from the beginning
    size_t visited = 0;
    int deleted = 0;
    int rc = 0;
    bool at_end = true;
    while (leveldb_iter_valid (iter)) {
        size_t key_size, value_size;
        const char *key = leveldb_iter_key (iter, &key_size);
        if (key_size == 0 || key [0] > S_NS_REPLY)
            break;
        if (key [0] < S_NS_INBOX) {
            leveldb_iter_seek (iter, inbox_start, sizeof (inbox_start));
            continue;
        }
        if (key [0] > S_NS_INBOX && key [0] < S_NS_REPLY) {
            leveldb_iter_seek (iter, reply_start, sizeof (reply_start));
            continue;
        }
        visited++;
        const char *value = leveldb_iter_value (iter, &value_size);
        bool inbox_ok = key [0] != S_NS_INBOX || value_size == 8;
        if (value_size < 8 || !inbox_ok) {
            //  Skip it next time, so one bad record cannot stop every sweep
            rc = s_fail_corrupt (self, key, key_size);
            if (s_expire_resume_after (self, key, key_size) == -1)
                rc = -1;
            at_end = false;
            break;
        }
        if (s_get_u64 (value) < before) {
            leveldb_writebatch_delete (batch, key, key_size);
            deleted++;
        }
        if (visited == max) {
            if (s_expire_resume_after (self, key, key_size) == -1)
                rc = -1;
            at_end = false;
            break;
        }
        leveldb_iter_next (iter);
    }
    if (s_iter_finish (self, iter) == -1)
        rc = -1;
    if (at_end && rc == 0) {
        free (self->expire_key);
        self->expire_key = NULL;
        self->expire_key_size = 0;
    }
    //  Expired records are deleted even when a later record was bad
    if (!pending) {
        if (deleted && s_write (self, batch) == -1)
            rc = -1;
        leveldb_writebatch_destroy (batch);
    }
    return rc == 0? deleted: -1;
}

//  --------------------------------------------------------------------------
//  Own subscriptions

int
chorus_store_subscription (chorus_store_t *self, const char *prefix, uint64_t now,
                           bool earliest, uint64_t *since)
{
    size_t key_size;
    char *key = s_name_key (S_NS_SUB, prefix, 0, &key_size);
    if (!key)
        return s_fail (self, "out of memory");
    uint64_t recorded = 0;
    int rc = s_get_u64_value (self, key, key_size, &recorded);
    if (rc == 0) {
        recorded = earliest? 0: now;
        char value [8];
        s_put_u64 (value, recorded);
        rc = s_put (self, key, key_size, value, sizeof (value));
    }
    else
    if (rc == 1)
        rc = 0;
    free (key);
    if (rc == 0 && since)
        *since = recorded;
    return rc;
}

//  --------------------------------------------------------------------------
//  Batching. Reads (group_load, inbox_has, reply_load, subscription, scans)
//  go to the database, so between begin and commit they do not see the
//  pending writes; the caller must not depend on reading its own batch.

void
chorus_store_begin (chorus_store_t *self)
{
    pthread_mutex_lock (&self->lock);
    if (!self->pending) {
        self->pending = leveldb_writebatch_create ();
        self->pending_thread = pthread_self ();
        self->pending_trim = false;
        self->pending_trim_last = 0;
        self->pending_trim_events = 0;
        self->pending_trim_bytes = 0;
    }
    pthread_mutex_unlock (&self->lock);
}

int
chorus_store_commit (chorus_store_t *self)
{
    pthread_mutex_lock (&self->lock);
    leveldb_writebatch_t *batch = self->pending;
    bool owner = batch && pthread_equal (self->pending_thread, pthread_self ());
    if (owner)
        self->pending = NULL;
    bool trimmed = self->pending_trim;
    uint64_t trim_last = self->pending_trim_last;
    uint64_t trim_events = self->pending_trim_events;
    uint64_t trim_bytes = self->pending_trim_bytes;
    pthread_mutex_unlock (&self->lock);
    if (!owner)
        return 0;           //  nothing begun by this thread

    int rc = s_write (self, batch);
    leveldb_writebatch_destroy (batch);
    if (rc == 0 && trimmed)
        s_trim_counters (self, trim_events, trim_bytes, trim_last);
    return rc;
}
