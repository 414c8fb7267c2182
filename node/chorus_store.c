/*  chorus_store.c — a node's durable state in one LevelDB directory: keys
    carry a namespace byte and big-endian integers so that they sort
    numerically; the outbox counters are cached in memory for other threads.

    Beside LevelDB's files, a small state file (CHORUS-STATE) says how the
    store was last closed, the epoch, and the sequence numbers that are not
    events: the numbers skipped between epochs, and those a repair lost.
    It is replaced atomically (write, fsync, rename). It lets an open tell
    a crash (new epoch) from a clean stop, and a clean stop from a damaged
    log (the head it was closed at is gone: refuse).
*/
#include "chorus_store.h"
#include "chorus_be64.h"

#include <czmq.h>
#include <leveldb/c.h>
#include <zlib.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

//  Key namespaces: one byte in front of every key
#define S_NS_META   'm'     //  "minstance", "mhead"
#define S_NS_EVENT  'e'     //  'e' seq -> timestamp body [checksum]
#define S_NS_GROUP  'g'     //  'g' name -> since flags cursor
#define S_NS_INBOX  'i'     //  'i' publisher 0x00 seq -> time
#define S_NS_PRODUCER 'p'   //  'p' producer's event id -> time seq
#define S_NS_REPLY  'r'     //  'r' key -> time body
#define S_NS_SUB    's'     //  's' prefix -> since

#define S_EVENT_KEY_SIZE    9                   //  'e' + seq
#define S_EVENT_SEALED      (1ULL << 63)        //  in the timestamp: a checksum ends the value
#define S_CHECKSUM_SIZE     4                   //  CRC-32, big-endian
#define S_GROUP_VALUE_SIZE  24                  //  since, flags, cursor; then the subs text
#define S_GROUP_SUBS_MAX    65536               //  longest subs text kept
#define S_CACHE_SIZE        (8 * 1024 * 1024)   //  LevelDB block cache
#define S_BLOOM_BITS        10                  //  bits per key of the bloom filter
#define S_TRIM_BATCH        1000                //  deletes per write when trimming
#define S_EPOCH_SHIFT       32                  //  seq = epoch << 32 | number in the epoch
#define S_STATE_FILE        "CHORUS-STATE"      //  beside LevelDB's files
#define S_STATE_RANGES_MAX  4096                //  gap and lost ranges kept

static const char s_key_instance [] = "minstance";
static const char s_key_head [] = "mhead";

//  A range of sequence numbers, both ends included
typedef struct {
    uint64_t from;
    uint64_t to;
} s_range_t;

typedef struct {
    s_range_t *items;
    size_t size;
} s_ranges_t;

struct _chorus_store_t {
    char *dir;                          //  the store's directory
    leveldb_t *db;                      //  the open database
    leveldb_options_t *options;         //  open options (cache, filter, create)
    leveldb_cache_t *cache;             //  LRU block cache, owned
    leveldb_filterpolicy_t *filter;     //  bloom filter policy, owned
    leveldb_readoptions_t *read;        //  default read options (checksums verified)
    leveldb_writeoptions_t *write;      //  write options (sync per set_sync)
    leveldb_writeoptions_t *synced;     //  always sync: identity, epochs, close
    leveldb_writeoptions_t *lazy;       //  never sync: appends a later flush puts on disk
    bool opened;                        //  fully open: destroy closes cleanly
    bool inspect;                       //  opened by check or repair: change nothing
    bool clean;                         //  its state file says it was closed cleanly
    bool repairing;                     //  opened by repair: restore what can be
    s_range_t missing;                  //  events a clean stop had and the log lost
    char instance [33];                 //  instance id, uppercase hex
    pthread_mutex_t lock;               //  guards the counters and pending
    pthread_mutex_t append_lock;        //  serialises appends
    uint64_t head;                      //  last sequence number assigned
    uint64_t first;                     //  oldest retained seq, 0 when empty
    uint64_t events;                    //  events retained
    uint64_t bytes;                     //  body bytes retained
    uint64_t epoch;                     //  highest epoch handed out
    s_ranges_t gaps;                    //  numbers skipped between epochs
    s_ranges_t lost;                    //  numbers a repair lost
    atomic_bool damaged;                //  a call found damage
    char damage [768];                  //  the first damage found, under lock
    char *value;                        //  appends' scratch value, under append_lock
    size_t value_size;                  //  its size
    leveldb_writebatch_t *pending;      //  writes collected between begin/commit
    leveldb_writebatch_t *append_batch; //  reused by appends, under append_lock
    pthread_t pending_thread;           //  the thread that called begin
    bool pending_trim;                  //  a trim is waiting in pending
    uint64_t pending_trim_last;         //  highest seq the pending trim deletes
    uint64_t pending_trim_events;       //  events the pending trim deletes
    uint64_t pending_trim_bytes;        //  body bytes the pending trim deletes
    char *expire_key;                   //  where inbox_expire resumes; NULL: start
    size_t expire_key_size;             //  size of expire_key
};

//  Why the last failing call of this thread failed: the node's thread and
//  its engine use one store at the same time
static _Thread_local char s_error [768];

//  --------------------------------------------------------------------------
//  Encoding helpers



static void
s_event_key (char *key, uint64_t seq)
{
    key [0] = S_NS_EVENT;
    chorus__put_be64 (key + 1, seq);
}

//  An event's value is its timestamp (8 bytes, big-endian), its body, and
//  the CRC-32 of its key, timestamp and body (4 bytes, big-endian); the top
//  bit of the timestamp says the checksum is there (values written before
//  it existed end with the body). The checksum finds bytes damaged inside a
//  body that still decodes, which LevelDB's repair can carry into a record.
static uint32_t
s_event_checksum (const char *key, const char *value, size_t size)
{
    uLong crc = crc32 (0L, Z_NULL, 0);
    crc = crc32 (crc, (const Bytef *) key, S_EVENT_KEY_SIZE);
    return (uint32_t) crc32 (crc, (const Bytef *) value, (uInt) size);
}

typedef enum {
    S_EVENT_OK = 0,
    S_EVENT_MALFORMED = -1,             //  key or value of the wrong size
    S_EVENT_DAMAGED = 1,                //  its checksum does not match
    S_EVENT_STRAY = 2                   //  no checksum, beyond the head in another epoch
} s_event_t;

//  Opens an event record: its timestamp and body
static s_event_t
s_event_open (const char *key, size_t key_size, const char *value, size_t value_size,
              uint64_t *timestamp, const char **body, size_t *body_size)
{
    if (key_size != S_EVENT_KEY_SIZE || value_size < 8)
        return S_EVENT_MALFORMED;
    uint64_t stamp = chorus__get_be64 (value);
    size_t size = value_size - 8;
    if (stamp & S_EVENT_SEALED) {
        if (size < S_CHECKSUM_SIZE || size - S_CHECKSUM_SIZE > UINT32_MAX)
            return S_EVENT_MALFORMED;
        size -= S_CHECKSUM_SIZE;
        const uint8_t *sum = (const uint8_t *) value + 8 + size;
        uint32_t stored = (uint32_t) sum [0] << 24 | (uint32_t) sum [1] << 16
                        | (uint32_t) sum [2] << 8 | sum [3];
        if (stored != s_event_checksum (key, value, 8 + size))
            return S_EVENT_DAMAGED;
    }
    if (timestamp)
        *timestamp = stamp & ~S_EVENT_SEALED;
    if (body)
        *body = value + 8;
    if (body_size)
        *body_size = size;
    return S_EVENT_OK;
}

//  Opens an event record as s_event_open does, and also finds one whose key
//  cannot be trusted: beyond the head, without a checksum (which covers the
//  key), in another epoch than the head's. The head's write goes in the
//  batch of its events, so only a damaged key puts an event so far past it.
static s_event_t
s_event_check (uint64_t head, const char *key, size_t key_size, const char *value,
               size_t value_size, size_t *body_size)
{
    s_event_t event = s_event_open (key, key_size, value, value_size, NULL, NULL, body_size);
    if (event == S_EVENT_OK && !(chorus__get_be64 (value) & S_EVENT_SEALED)) {
        uint64_t seq = chorus__get_be64 (key + 1);
        if (seq > head && seq >> S_EPOCH_SHIFT != head >> S_EPOCH_SHIFT)
            event = S_EVENT_STRAY;
    }
    return event;
}

//  The body bytes of an event record of value_size bytes
static size_t
s_event_body_size (const char *value, size_t value_size)
{
    if (value_size < 8)
        return 0;
    size_t size = value_size - 8;
    if ((chorus__get_be64 (value) & S_EVENT_SEALED) && size >= S_CHECKSUM_SIZE)
        size -= S_CHECKSUM_SIZE;
    return size;
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
    vsnprintf (s_error, sizeof (s_error), format, args);
    va_end (args);
    //  The first damage is kept for every thread to read
    if (self && atomic_load (&self->damaged)) {
        pthread_mutex_lock (&self->lock);
        if (!self->damage [0])
            snprintf (self->damage, sizeof (self->damage), "%s", s_error);
        pthread_mutex_unlock (&self->lock);
    }
    return -1;
}

//  What a LevelDB status (or errno text) says went wrong
static chorus_store_kind_t
s_classify (const char *text)
{
    if (!text)
        return CHORUS_STORE_FAILED;
    if (strstr (text, "Corruption:"))
        return CHORUS_STORE_DAMAGED;
    if (strstr (text, "IO error: lock "))
        return CHORUS_STORE_LOCKED;
    if (strstr (text, "No space left on device") || strstr (text, "Disk quota exceeded"))
        return CHORUS_STORE_FULL;
    if (strstr (text, "Permission denied") || strstr (text, "Read-only file system")
    ||  strstr (text, "Operation not permitted"))
        return CHORUS_STORE_DENIED;
    //  Any other failure to read one of the database's own files (a torn
    //  table read past its end, a missing table, a disk read error)
    if (strstr (text, "IO error") && (strstr (text, ".ldb") || strstr (text, ".sst")
    ||  strstr (text, ".log") || strstr (text, "MANIFEST")))
        return CHORUS_STORE_DAMAGED;
    return CHORUS_STORE_FAILED;
}

//  A short, true name for a kind of failure, for messages
static const char *
s_kind_text (chorus_store_kind_t kind)
{
    switch (kind) {
        case CHORUS_STORE_FULL:    return "the disk is full";
        case CHORUS_STORE_DENIED:  return "permission denied";
        case CHORUS_STORE_LOCKED:  return "in use by another process";
        case CHORUS_STORE_DAMAGED: return "damaged";
        default:                   return "failed";
    }
}

static void
s_set_damaged (chorus_store_t *self)
{
    if (self)
        atomic_store (&self->damaged, true);
}

//  Takes ownership of a LevelDB error string and frees it
static int
s_fail_leveldb (chorus_store_t *self, const char *what, char *leveldb_error)
{
    chorus_store_kind_t kind = s_classify (leveldb_error);
    if (kind == CHORUS_STORE_DAMAGED)
        s_set_damaged (self);
    if (kind == CHORUS_STORE_FAILED)
        s_fail (self, "%s: %s", what, leveldb_error? leveldb_error: "unknown error");
    else
    if (kind == CHORUS_STORE_DAMAGED)
        s_fail (self, "damaged: %s (%s)", what, leveldb_error? leveldb_error: "unknown error");
    else
        s_fail (self, "%s: %s (%s)", what, s_kind_text (kind),
                leveldb_error? leveldb_error: "unknown error");
    leveldb_free (leveldb_error);
    return -1;
}

static int
s_fail_corrupt (chorus_store_t *self, const char *key, size_t key_size)
{
    char text [96];
    s_key_text (key, key_size, text, sizeof (text));
    s_set_damaged (self);
    return s_fail (self, "damaged: the record for key %s has a bad format", text);
}

//  An event whose checksum does not match: damaged; returns -1
static int
s_fail_checksum (chorus_store_t *self, const char *key, s_event_t event)
{
    s_set_damaged (self);
    if (event == S_EVENT_STRAY)
        return s_fail (self, "damaged: a record numbered %" PRIu64 " lies beyond the last "
                       "event %" PRIu64 ", in another epoch (its key was damaged)",
                       chorus__get_be64 (key + 1), self->head);
    return s_fail (self, "damaged: event %" PRIu64 " does not match its checksum (its bytes "
                   "were damaged)", chorus__get_be64 (key + 1));
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
s_write_with (chorus_store_t *self, leveldb_writeoptions_t *options, leveldb_writebatch_t *batch)
{
    char *leveldb_error = NULL;
    leveldb_write (self->db, options, batch, &leveldb_error);
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
            *number = chorus__get_be64 (value);
        else
            rc = s_fail_corrupt (self, key, key_size);
        leveldb_free (value);
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  Ranges of sequence numbers: gaps between epochs, and numbers lost

static int
s_ranges_add (s_ranges_t *ranges, uint64_t from, uint64_t to)
{
    if (from > to)
        return 0;
    if (ranges->size == S_STATE_RANGES_MAX) {
        //  The oldest goes: it lies far below anything still retained
        memmove (ranges->items, ranges->items + 1, (ranges->size - 1) * sizeof (s_range_t));
        ranges->size--;
    }
    s_range_t *items = (s_range_t *) realloc (ranges->items,
                                              (ranges->size + 1) * sizeof (s_range_t));
    if (!items)
        return -1;
    //  Kept sorted by from
    size_t at = ranges->size;
    while (at > 0 && items [at - 1].from > from) {
        items [at] = items [at - 1];
        at--;
    }
    items [at].from = from;
    items [at].to = to;
    ranges->items = items;
    ranges->size++;
    return 0;
}

//  How many numbers of [from, to] the ranges hold; the first and last of
//  them into *first and *last when not NULL (0 when none)
static uint64_t
s_ranges_overlap (const s_ranges_t *ranges, uint64_t from, uint64_t to, uint64_t *first,
                  uint64_t *last)
{
    uint64_t count = 0, low = 0, high = 0;
    for (size_t i = 0; i < ranges->size && from <= to; i++) {
        uint64_t a = ranges->items [i].from > from? ranges->items [i].from: from;
        uint64_t b = ranges->items [i].to < to? ranges->items [i].to: to;
        if (a > b)
            continue;
        count += b - a + 1;
        if (!low)
            low = a;
        high = b;
    }
    if (first)
        *first = low;
    if (last)
        *last = high;
    return count;
}

//  Forgets the ranges that lie wholly below `below`
static void
s_ranges_prune (s_ranges_t *ranges, uint64_t below)
{
    size_t kept = 0;
    for (size_t i = 0; i < ranges->size; i++)
        if (ranges->items [i].to >= below)
            ranges->items [kept++] = ranges->items [i];
    ranges->size = kept;
}

//  --------------------------------------------------------------------------
//  The state file

typedef struct {
    bool present;               //  the file exists
    bool closed;                //  the store was closed cleanly
    uint64_t head;              //  the head it was closed at
    char instance [33];         //  the instance it belongs to
} s_state_t;

static int
s_state_read (chorus_store_t *self, s_state_t *state)
{
    memset (state, 0, sizeof (*state));
    char *path = zsys_sprintf ("%s/%s", self->dir, S_STATE_FILE);
    FILE *file = path? fopen (path, "r"): NULL;
    int err = errno;
    free (path);
    if (!file)
        return err == ENOENT? 0: s_fail (self, "cannot read its state file %s: %s",
                                         S_STATE_FILE, strerror (err));
    char line [160];
    bool good = fgets (line, sizeof (line), file) && streq (line, "chorus-store 1\n");
    while (good && fgets (line, sizeof (line), file)) {
        char text [40];
        uint64_t a, b;
        if (sscanf (line, "instance %32s", text) == 1 && strlen (text) == 32)
            strcpy (state->instance, text);
        else
        if (streq (line, "state open\n") || streq (line, "state closed\n"))
            state->closed = streq (line, "state closed\n");
        else
        if (sscanf (line, "head %" SCNu64, &a) == 1)
            state->head = a;
        else
        if (sscanf (line, "epoch %" SCNu64, &a) == 1)
            self->epoch = a;
        else
        if (sscanf (line, "gap %" SCNu64 " %" SCNu64, &a, &b) == 2 && a <= b)
            good = s_ranges_add (&self->gaps, a, b) == 0;
        else
        if (sscanf (line, "lost %" SCNu64 " %" SCNu64, &a, &b) == 2 && a <= b)
            good = s_ranges_add (&self->lost, a, b) == 0;
        else
            good = false;
    }
    good = good && !ferror (file) && state->instance [0];
    fclose (file);
    if (!good) {
        s_set_damaged (self);
        return s_fail (self, "its state file %s is unreadable", S_STATE_FILE);
    }
    state->present = true;
    return 0;
}

//  Replaces the state file atomically and durably
static int
s_state_write (chorus_store_t *self, bool closed)
{
    pthread_mutex_lock (&self->lock);
    uint64_t head = self->head;
    uint64_t first = self->first;
    uint64_t events = self->events;
    pthread_mutex_unlock (&self->lock);
    //  Below the oldest retained event nothing walks any more. Pruned only
    //  at close, when no other thread reads the ranges.
    if (closed && events == 0)
        self->gaps.size = 0;
    else
    if (closed)
        s_ranges_prune (&self->gaps, first);
    if (closed && first)
        s_ranges_prune (&self->lost, first);

    char *path = zsys_sprintf ("%s/%s", self->dir, S_STATE_FILE);
    char *temp = zsys_sprintf ("%s/%s.new", self->dir, S_STATE_FILE);
    int err = 0;
    int fd = path && temp? open (temp, O_WRONLY | O_CREAT | O_TRUNC, 0644): -1;
    FILE *file = fd >= 0? fdopen (fd, "w"): NULL;
    if (!file) {
        err = errno;
        if (fd >= 0)
            close (fd);
    }
    else {
        fprintf (file, "chorus-store 1\ninstance %s\nstate %s\nhead %" PRIu64
                 "\nepoch %" PRIu64 "\n", self->instance, closed? "closed": "open", head,
                 self->epoch);
        for (size_t i = 0; i < self->gaps.size; i++)
            fprintf (file, "gap %" PRIu64 " %" PRIu64 "\n", self->gaps.items [i].from,
                     self->gaps.items [i].to);
        for (size_t i = 0; i < self->lost.size; i++)
            fprintf (file, "lost %" PRIu64 " %" PRIu64 "\n", self->lost.items [i].from,
                     self->lost.items [i].to);
        if (fflush (file) || fsync (fd))
            err = errno;
        if (fclose (file) && !err)
            err = errno;
        if (!err && rename (temp, path))
            err = errno;
        if (!err) {
            int dir = open (self->dir, O_RDONLY | O_DIRECTORY);
            if (dir >= 0) {
                if (fsync (dir))
                    err = errno;
                close (dir);
            }
        }
    }
    if (err && temp)
        unlink (temp);
    free (path);
    free (temp);
    if (err)
        return s_fail (self, "cannot write its state file %s: %s", S_STATE_FILE,
                       strerror (err));
    return 0;
}

//  --------------------------------------------------------------------------
//  Opening

//  Reads the instance id, creating it in a new store; a state file names
//  the instance the store must hold
static int
s_load_instance (chorus_store_t *self, const s_state_t *state, bool fresh)
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
    else
    if (self->inspect && state->present && self->repairing) {
        //  A repair restores the identity its state file names
        for (size_t i = 0; i < sizeof (id); i++)
            sscanf (state->instance + 2 * i, "%2hhx", &id [i]);
        char *leveldb_error = NULL;
        leveldb_put (self->db, self->synced, s_key_instance, strlen (s_key_instance),
                     (const char *) id, sizeof (id), &leveldb_error);
        if (leveldb_error)
            return s_fail_leveldb (self, "store write failed", leveldb_error);
    }
    else
    if (!fresh || state->present) {
        s_set_damaged (self);
        if (state->present)
            strcpy (self->instance, state->instance);
        return s_fail (self, "its identity record is missing (instance %s)",
                       state->present? state->instance: "unknown");
    }
    else {
        zuuid_t *uuid = zuuid_new ();
        if (!uuid)
            return s_fail (self, "cannot generate an instance id");
        memcpy (id, zuuid_data (uuid), sizeof (id));
        zuuid_destroy (&uuid);
        //  The identity is written once and must never change: always sync
        char *leveldb_error = NULL;
        leveldb_put (self->db, self->synced, s_key_instance, strlen (s_key_instance),
                     (const char *) id, sizeof (id), &leveldb_error);
        if (leveldb_error)
            return s_fail_leveldb (self, "store write failed", leveldb_error);
    }
    for (size_t i = 0; i < sizeof (id); i++)
        snprintf (self->instance + 2 * i, 3, "%02X", id [i]);
    if (state->present && !streq (self->instance, state->instance)) {
        s_set_damaged (self);
        return s_fail (self, "its identity record (instance %s) is not the one of its state "
                       "file (instance %s)", self->instance, state->instance);
    }
    return 0;
}

//  Reads the head and counts the retained events in one scan of the
//  outbox, every block's checksum verified
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
        const char *value = leveldb_iter_value (iter, &value_size);
        size_t body_size;
        s_event_t event = s_event_check (self->head, key, key_size, value, value_size,
                                         &body_size);
        if (event == S_EVENT_MALFORMED) {
            rc = s_fail_corrupt (self, key, key_size);
            break;
        }
        //  check and repair open it to find such events; a run refuses it
        if (event != S_EVENT_OK && !self->inspect) {
            rc = s_fail_checksum (self, key, event);
            break;
        }
        //  A damaged one is counted, for repair to drop; beyond the head its
        //  key is what was damaged, and does not move the head
        uint64_t seq = chorus__get_be64 (key + 1);
        if (event == S_EVENT_OK || seq <= self->head)
            last = seq;
        if (self->events == 0)
            self->first = seq;
        self->events++;
        self->bytes += event == S_EVENT_OK? body_size: s_event_body_size (value, value_size);
    }
    if (s_iter_finish (self, iter) == -1)
        rc = -1;
    //  An event above the head record: the head write of a repaired log was
    //  lost; the events are the truth
    if (rc == 0 && last > self->head)
        self->head = last;
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

//  Looks at the directory: does it hold a LevelDB CURRENT file, and any
//  other LevelDB file (log, table, manifest)?
static void
s_scan_dir (const char *dir, bool *has_current, bool *has_files)
{
    *has_current = *has_files = false;
    DIR *handle = opendir (dir);
    if (!handle)
        return;
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        const char *name = entry->d_name;
        size_t length = strlen (name);
        if (streq (name, "CURRENT"))
            *has_current = true;
        else
        if (strncmp (name, "MANIFEST-", 9) == 0
        ||  (length > 4 && (streq (name + length - 4, ".ldb") || streq (name + length - 4, ".sst")
                        ||  streq (name + length - 4, ".log"))))
            *has_files = true;
    }
    closedir (handle);
}

//  Writes the message of a failed open into error
static void
s_open_error (const char *dir, chorus_store_kind_t kind, const char *why, char *error,
              size_t error_size)
{
    char text [1536];
    if (kind == CHORUS_STORE_DAMAGED)
        snprintf (text, sizeof (text), "store %s is damaged: %s. 'chorus store check %s' "
                  "shows what it holds, and 'chorus store repair %s' recovers what can be "
                  "recovered", dir, why, dir, dir);
    else
    if (kind == CHORUS_STORE_LOCKED)
        snprintf (text, sizeof (text), "store %s is in use by another process (its LOCK file "
                  "is held): is another chorus using the same --store?", dir);
    else
    if ((kind == CHORUS_STORE_FULL || kind == CHORUS_STORE_DENIED)
    &&  !strstr (why, s_kind_text (kind)))
        snprintf (text, sizeof (text), "store %s: %s (%s)", dir, s_kind_text (kind), why);
    else
        snprintf (text, sizeof (text), "store %s: %s", dir, why);
    s_copy_error (error, error_size, text);
}

//  Opens the store in dir. inspect: for check and repair, create nothing
//  and change nothing of ours (LevelDB may still recover its log into a
//  table); *missing_from/to then receive the events a clean stop had and
//  the log lost, if any
static chorus_store_t *
s_open (const char *dir, bool inspect, bool repairing, char *error, size_t error_size,
        chorus_store_kind_t *kind_out)
{
    chorus_store_kind_t kind = CHORUS_STORE_FAILED;
    if (kind_out)
        *kind_out = kind;
    if (!dir || !*dir) {
        s_copy_error (error, error_size, "store directory not set");
        return NULL;
    }
    chorus_store_t *self = (chorus_store_t *) calloc (1, sizeof (chorus_store_t));
    if (!self || !(self->dir = strdup (dir))) {
        free (self);
        s_copy_error (error, error_size, "out of memory");
        return NULL;
    }
    self->inspect = inspect;
    self->repairing = repairing;
    atomic_init (&self->damaged, false);
    pthread_mutex_init (&self->lock, NULL);
    pthread_mutex_init (&self->append_lock, NULL);
    self->options = leveldb_options_create ();
    self->cache = leveldb_cache_create_lru (S_CACHE_SIZE);
    self->filter = leveldb_filterpolicy_create_bloom (S_BLOOM_BITS);
    self->read = leveldb_readoptions_create ();
    self->write = leveldb_writeoptions_create ();
    self->synced = leveldb_writeoptions_create ();
    leveldb_writeoptions_set_sync (self->synced, 1);
    self->lazy = leveldb_writeoptions_create ();
    leveldb_readoptions_set_verify_checksums (self->read, 1);
    leveldb_options_set_paranoid_checks (self->options, 1);
    leveldb_options_set_cache (self->options, self->cache);
    leveldb_options_set_filter_policy (self->options, self->filter);

    bool has_current, has_files;
    s_scan_dir (dir, &has_current, &has_files);
    bool fresh = !has_current && !has_files;
    s_state_t state;
    char why [1024];
    s_error [0] = 0;
    if (s_state_read (self, &state) == -1) {
        if (!repairing)
            goto failed;
        //  Repair rewrites it from the database
        atomic_store (&self->damaged, false);
        free (self->gaps.items);
        free (self->lost.items);
        memset (&self->gaps, 0, sizeof (self->gaps));
        memset (&self->lost, 0, sizeof (self->lost));
        memset (&state, 0, sizeof (state));
    }
    self->clean = state.present && state.closed;
    if (!has_current && (has_files || state.present)) {
        s_set_damaged (self);
        s_fail (self, has_files? "its CURRENT file (LevelDB's pointer to its manifest) is "
                "missing": "its database files are missing (only %s is left)", S_STATE_FILE);
        goto failed;
    }
    if (inspect && fresh) {
        s_fail (self, "there is no store here");
        goto failed;
    }
    leveldb_options_set_create_if_missing (self->options, fresh);
    char *leveldb_error = NULL;
    self->db = leveldb_open (self->options, dir, &leveldb_error);
    if (leveldb_error || !self->db) {
        s_fail_leveldb (self, "cannot open the database", leveldb_error);
        goto failed;
    }
    if (s_load_instance (self, &state, fresh) == -1 || s_load_outbox (self) == -1)
        goto failed;
    if (state.present && state.closed && state.head > self->head) {
        self->missing.from = self->head + 1;
        self->missing.to = state.head;
        if (!inspect) {
            s_set_damaged (self);
            s_fail (self, "it was stopped cleanly at event %" PRIu64 ", but holds events "
                    "only up to %" PRIu64 ": the log lost %" PRIu64 " to %" PRIu64,
                    state.head, self->head, self->head + 1, state.head);
            goto failed;
        }
    }
    if (self->epoch < self->head >> S_EPOCH_SHIFT)
        self->epoch = self->head >> S_EPOCH_SHIFT;
    if (!inspect) {
        if (!fresh && !(state.present && state.closed)) {
            //  Not closed cleanly: what the last run handed out may be lost
            //  from the log's tail. A new epoch starts above all of it.
            uint64_t epoch = self->epoch + 1;
            uint64_t start = epoch << S_EPOCH_SHIFT;
            if (s_ranges_add (&self->gaps, self->head + 1, start)) {
                s_fail (self, "out of memory");
                goto failed;
            }
            self->head = start;
            self->epoch = epoch;
            char value [8];
            chorus__put_be64 (value, start);
            leveldb_put (self->db, self->synced, s_key_head, strlen (s_key_head), value,
                         sizeof (value), &leveldb_error);
            if (leveldb_error) {
                s_fail_leveldb (self, "cannot start a new epoch", leveldb_error);
                goto failed;
            }
        }
        if (s_state_write (self, false) == -1)
            goto failed;
    }
    self->opened = true;
    if (kind_out)
        *kind_out = CHORUS_STORE_OK;
    return self;

failed:
    kind = atomic_load (&self->damaged)? CHORUS_STORE_DAMAGED: s_classify (s_error);
    snprintf (why, sizeof (why), "%s", strncmp (s_error, "damaged: ", 9)? s_error: s_error + 9);
    s_open_error (dir, kind, why, error, error_size);
    if (kind_out)
        *kind_out = kind;
    chorus_store_destroy (&self);
    return NULL;
}

chorus_store_t *
chorus_store_new (const char *dir, char *error, size_t error_size, chorus_store_kind_t *kind)
{
    return s_open (dir, false, false, error, error_size, kind);
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
    //  A clean close: the head, synced (so the whole log is on disk), then
    //  the state file says so. Damage found on the way is never called clean.
    if (self->db && self->opened && !self->inspect && !atomic_load (&self->damaged)) {
        char value [8];
        chorus__put_be64 (value, chorus_store_head (self));
        char *leveldb_error = NULL;
        leveldb_put (self->db, self->synced, s_key_head, strlen (s_key_head), value,
                     sizeof (value), &leveldb_error);
        if (leveldb_error)
            leveldb_free (leveldb_error);   //  left "open": the next start takes a new epoch
        else
            s_state_write (self, true);
    }
    //  The database goes first: it uses the options, cache and filter
    if (self->db)
        leveldb_close (self->db);
    leveldb_writeoptions_destroy (self->synced);
    leveldb_writeoptions_destroy (self->lazy);
    leveldb_writeoptions_destroy (self->write);
    leveldb_readoptions_destroy (self->read);
    leveldb_options_destroy (self->options);
    leveldb_filterpolicy_destroy (self->filter);
    leveldb_cache_destroy (self->cache);
    free (self->expire_key);
    free (self->value);
    free (self->gaps.items);
    free (self->lost.items);
    free (self->dir);
    pthread_mutex_destroy (&self->append_lock);
    pthread_mutex_destroy (&self->lock);
    free (self);
    *self_p = NULL;
}

chorus_store_t *
chorus_store_inspect (const char *dir, bool repairing, char *error, size_t error_size,
                      chorus_store_kind_t *kind)
{
    return s_open (dir, true, repairing, error, error_size, kind);
}

bool
chorus_store_clean (chorus_store_t *self, uint64_t *missing_from, uint64_t *missing_to)
{
    *missing_from = self->missing.from;
    *missing_to = self->missing.to;
    return self->clean;
}

size_t
chorus_store_ranges (chorus_store_t *self, bool lost, size_t index, uint64_t *from,
                     uint64_t *to)
{
    s_ranges_t *ranges = lost? &self->lost: &self->gaps;
    if (index < ranges->size) {
        *from = ranges->items [index].from;
        *to = ranges->items [index].to;
    }
    return ranges->size;
}

int
chorus_store_census (chorus_store_t *self, chorus_store_census_t *census)
{
    memset (census, 0, sizeof (*census));
    leveldb_iterator_t *iter = leveldb_create_iterator (self->db, self->read);
    uint64_t last = 0;
    int rc = 0;
    for (leveldb_iter_seek_to_first (iter); leveldb_iter_valid (iter); leveldb_iter_next (iter)) {
        size_t key_size, value_size;
        const char *key = leveldb_iter_key (iter, &key_size);
        const char *value = leveldb_iter_value (iter, &value_size);
        census->records++;
        switch (key_size? key [0]: 0) {
            case S_NS_EVENT: {
                s_event_t event = s_event_check (self->head, key, key_size, value,
                                                 value_size, NULL);
                if (event == S_EVENT_MALFORMED) {
                    rc = s_fail_corrupt (self, key, key_size);
                    break;
                }
                uint64_t seq = chorus__get_be64 (key + 1);
                if (event != S_EVENT_OK) {
                    if (census->damaged < CHORUS_STORE_HOLES_MAX)
                        census->damaged_seq [census->damaged] = seq;
                    census->damaged++;
                    //  Beyond the head its key is what was damaged: the
                    //  numbers before it are not missing
                    if (seq > self->head)
                        break;
                }
                //  Numbers missing between two events that are neither a
                //  gap between epochs nor a loss a repair recorded
                if (last && seq > last + 1) {
                    uint64_t span = seq - last - 1;
                    uint64_t known = s_ranges_overlap (&self->gaps, last + 1, seq - 1, NULL, NULL)
                                   + s_ranges_overlap (&self->lost, last + 1, seq - 1, NULL, NULL);
                    if (known < span && census->holes < CHORUS_STORE_HOLES_MAX) {
                        census->hole [census->holes].from = last + 1;
                        census->hole [census->holes].to = seq - 1;
                        census->holes++;
                    }
                }
                last = seq;
                census->events++;
                break;
            }
            case S_NS_GROUP:    census->groups++; break;
            case S_NS_INBOX:    census->inbox++; break;
            case S_NS_PRODUCER: census->producer_ids++; break;
            case S_NS_REPLY:    census->replies++; break;
            case S_NS_SUB:      census->subscriptions++; break;
            case S_NS_META:     break;
            default:            census->unknown++; break;
        }
        if (rc)
            break;
    }
    if (s_iter_finish (self, iter) == -1)
        rc = -1;
    //  Numbers missing after the last event, up to the head: events leave
    //  the outbox oldest first, so a tail gone is a loss too (when none is
    //  left, every one may have been delivered: that cannot be told here)
    if (rc == 0 && last && self->head > last) {
        uint64_t span = self->head - last;
        uint64_t known = s_ranges_overlap (&self->gaps, last + 1, self->head, NULL, NULL)
                       + s_ranges_overlap (&self->lost, last + 1, self->head, NULL, NULL);
        if (known < span && census->holes < CHORUS_STORE_HOLES_MAX) {
            census->hole [census->holes].from = last + 1;
            census->hole [census->holes].to = self->head;
            census->holes++;
        }
    }
    return rc;
}

int
chorus_store_accept_loss (chorus_store_t *self, uint64_t from, uint64_t to)
{
    if (s_ranges_add (&self->lost, from, to))
        return s_fail (self, "out of memory");
    return 0;
}

int
chorus_store_finish_repair (chorus_store_t *self)
{
    //  The head covers every number handed out, lost ones included; the
    //  state file says "open", so that the next start takes a new epoch
    uint64_t head = self->head;
    for (size_t i = 0; i < self->lost.size; i++)
        if (self->lost.items [i].to > head)
            head = self->lost.items [i].to;
    self->head = head;
    self->clean = false;
    self->missing.from = self->missing.to = 0;
    char value [8];
    chorus__put_be64 (value, head);
    char *leveldb_error = NULL;
    leveldb_put (self->db, self->synced, s_key_head, strlen (s_key_head), value,
                 sizeof (value), &leveldb_error);
    if (leveldb_error)
        return s_fail_leveldb (self, "store write failed", leveldb_error);
    return s_state_write (self, false);
}

chorus_store_kind_t
chorus_store_repair_db (const char *dir, char *error, size_t error_size)
{
    leveldb_options_t *options = leveldb_options_create ();
    leveldb_options_set_paranoid_checks (options, 0);   //  salvage what reads
    char *leveldb_error = NULL;
    leveldb_repair_db (options, dir, &leveldb_error);
    leveldb_options_destroy (options);
    chorus_store_kind_t kind = CHORUS_STORE_OK;
    if (leveldb_error) {
        kind = s_classify (leveldb_error);
        char text [1024];
        snprintf (text, sizeof (text), "store %s: LevelDB's repair failed: %s", dir,
                  leveldb_error);
        s_copy_error (error, error_size, text);
        leveldb_free (leveldb_error);
    }
    return kind;
}

const char *
chorus_store_error (chorus_store_t *self)
{
    (void) self;
    return s_error;
}

bool
chorus_store_damaged (chorus_store_t *self)
{
    return atomic_load (&self->damaged);
}

void
chorus_store_damage (chorus_store_t *self, char *text, size_t size)
{
    pthread_mutex_lock (&self->lock);
    snprintf (text, size, "%s", self->damage [0]? self->damage: "damaged");
    pthread_mutex_unlock (&self->lock);
}

int
chorus_store_drop_event (chorus_store_t *self, uint64_t seq)
{
    char key [S_EVENT_KEY_SIZE];
    s_event_key (key, seq);
    char *value;
    size_t value_size;
    int rc = s_get (self, key, sizeof (key), &value, &value_size);
    if (rc != 1)
        return rc;
    size_t body_size = s_event_body_size (value, value_size);
    leveldb_free (value);
    char *leveldb_error = NULL;
    leveldb_delete (self->db, self->synced, key, sizeof (key), &leveldb_error);
    if (leveldb_error)
        return s_fail_leveldb (self, "store write failed", leveldb_error);
    pthread_mutex_lock (&self->lock);
    self->events--;
    self->bytes -= self->bytes >= body_size? body_size: self->bytes;
    pthread_mutex_unlock (&self->lock);
    return 1;
}

void
chorus_store_report_damage (chorus_store_t *self, const char *what)
{
    s_set_damaged (self);
    s_fail (self, "damaged: %s", what);
}

void
chorus_store_set_sync (chorus_store_t *self, bool sync)
{
    leveldb_writeoptions_set_sync (self->write, sync? 1: 0);
}

uint64_t
chorus_store_epoch (chorus_store_t *self)
{
    pthread_mutex_lock (&self->lock);
    uint64_t epoch = self->epoch;
    pthread_mutex_unlock (&self->lock);
    return epoch;
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
    chorus_store_entry_t entry = {timestamp, body, size, NULL};
    return chorus_store_append_batch (self, seq, &entry, 1);
}

//  The producer id's key: 'p' then the id
static char *
s_producer_key (const char *id, char *key, size_t *key_size)
{
    size_t length = strlen (id);
    if (length == 0 || length > 64)
        return NULL;
    key [0] = S_NS_PRODUCER;
    memcpy (key + 1, id, length);
    *key_size = 1 + length;
    return key;
}

static int
    s_append_batch (chorus_store_t *self, uint64_t first, const chorus_store_entry_t *entries,
                    size_t count, leveldb_writeoptions_t *options);

int
chorus_store_append_batch (chorus_store_t *self, uint64_t first,
                           const chorus_store_entry_t *entries, size_t count)
{
    return s_append_batch (self, first, entries, count, self->write);
}

int
chorus_store_append_batch_lazy (chorus_store_t *self, uint64_t first,
                                const chorus_store_entry_t *entries, size_t count)
{
    return s_append_batch (self, first, entries, count, self->lazy);
}

//  Everything written before the call is on disk once it returns 0: a
//  synced write of nothing flushes LevelDB's log, which holds every write
//  before it. LevelDB orders writes from several threads itself, and this
//  touches nothing else of the store's state.
int
chorus_store_flush (chorus_store_t *self)
{
    leveldb_writebatch_t *empty = leveldb_writebatch_create ();
    int rc = s_write_with (self, self->synced, empty);
    leveldb_writebatch_destroy (empty);
    return rc;
}

static int
s_append_batch (chorus_store_t *self, uint64_t first, const chorus_store_entry_t *entries,
                size_t count, leveldb_writeoptions_t *options)
{
    if (count == 0)
        return 0;
    for (size_t i = 0; i < count; i++)
        if ((entries [i].size && !entries [i].body)
        ||  (entries [i].id && (!*entries [i].id || strlen (entries [i].id) > 64)))
            return s_fail (self, "append: bad entry %zu", i);
    pthread_mutex_lock (&self->append_lock);
    uint64_t head = chorus_store_head (self);
    if (first != head + 1) {
        pthread_mutex_unlock (&self->append_lock);
        return s_fail (self, "append: seq %" PRIu64 " is not head + 1 (%" PRIu64 ")", first,
                       head + 1);
    }
    uint64_t last = first + count - 1;
    //  Crossing into the next epoch: the state file learns of it first, so
    //  that a crash never starts an epoch already used
    if (last >> S_EPOCH_SHIFT > chorus_store_epoch (self)) {
        pthread_mutex_lock (&self->lock);
        self->epoch = last >> S_EPOCH_SHIFT;
        pthread_mutex_unlock (&self->lock);
        if (s_state_write (self, false) == -1) {
            pthread_mutex_unlock (&self->append_lock);
            return -1;
        }
    }
    if (!self->append_batch)
        self->append_batch = leveldb_writebatch_create ();
    leveldb_writebatch_t *batch = self->append_batch;
    uint64_t bytes = 0;
    int rc = 0;
    for (size_t i = 0; i < count && rc == 0; i++) {
        const chorus_store_entry_t *entry = &entries [i];
        //  One scratch value, reused: the batch copies what it is given
        size_t value_size = 8 + entry->size + S_CHECKSUM_SIZE;
        if (entry->size > UINT32_MAX) {
            rc = s_fail (self, "append: an event of %zu bytes is too big", entry->size);
            break;
        }
        if (value_size > self->value_size) {
            char *value = (char *) realloc (self->value, value_size);
            if (!value) {
                rc = s_fail (self, "append: out of memory");
                break;
            }
            self->value = value;
            self->value_size = value_size;
        }
        char key [S_EVENT_KEY_SIZE];
        s_event_key (key, first + i);
        chorus__put_be64 (self->value, (entry->timestamp & ~S_EVENT_SEALED) | S_EVENT_SEALED);
        if (entry->size)
            memcpy (self->value + 8, entry->body, entry->size);
        uint32_t sum = s_event_checksum (key, self->value, 8 + entry->size);
        uint8_t *at = (uint8_t *) self->value + 8 + entry->size;
        at [0] = (uint8_t) (sum >> 24);
        at [1] = (uint8_t) (sum >> 16);
        at [2] = (uint8_t) (sum >> 8);
        at [3] = (uint8_t) sum;
        leveldb_writebatch_put (batch, key, sizeof (key), self->value, value_size);
        bytes += entry->size;
        if (entry->id) {
            char id_key [65];
            size_t id_key_size = 0;
            s_producer_key (entry->id, id_key, &id_key_size);
            char id_value [16];
            chorus__put_be64 (id_value, entry->timestamp);
            chorus__put_be64 (id_value + 8, first + i);
            leveldb_writebatch_put (batch, id_key, id_key_size, id_value, sizeof (id_value));
        }
    }
    char head_value [8];
    chorus__put_be64 (head_value, last);
    leveldb_writebatch_put (batch, s_key_head, strlen (s_key_head), head_value,
                            sizeof (head_value));
    if (rc == 0)
        rc = s_write_with (self, options, batch);
    leveldb_writebatch_clear (batch);
    if (rc == 0) {
        pthread_mutex_lock (&self->lock);
        self->head = last;
        if (self->events == 0)
            self->first = first;
        self->events += count;
        self->bytes += bytes;
        pthread_mutex_unlock (&self->lock);
    }
    pthread_mutex_unlock (&self->append_lock);
    return rc;
}

int
chorus_store_producer_id (chorus_store_t *self, const char *id, uint64_t *seq)
{
    char key [65];
    size_t key_size;
    if (!s_producer_key (id, key, &key_size))
        return s_fail (self, "producer id '%s' is not 1 to 64 characters", id);
    char *value;
    size_t value_size;
    int rc = s_get (self, key, key_size, &value, &value_size);
    if (rc == 1) {
        if (value_size == 16) {
            if (seq)
                *seq = chorus__get_be64 (value + 8);
        }
        else
            rc = s_fail_corrupt (self, key, key_size);
        leveldb_free (value);
    }
    return rc;
}

uint64_t
chorus_store_next (chorus_store_t *self, uint64_t seq, uint64_t *lost_from,
                   uint64_t *lost_to)
{
    uint64_t head = chorus_store_head (self);
    uint64_t found = head + 1;
    if (seq <= head) {
        leveldb_iterator_t *iter = leveldb_create_iterator (self->db, self->read);
        char start [S_EVENT_KEY_SIZE];
        s_event_key (start, seq);
        leveldb_iter_seek (iter, start, sizeof (start));
        if (leveldb_iter_valid (iter)) {
            size_t key_size;
            const char *key = leveldb_iter_key (iter, &key_size);
            if (key_size == S_EVENT_KEY_SIZE && key [0] == S_NS_EVENT)
                found = chorus__get_be64 (key + 1);
        }
        if (s_iter_finish (self, iter) == -1)
            found = seq;        //  unknown: the caller sees the error
    }
    uint64_t from = 0, to = 0;
    if (found > seq)
        s_ranges_overlap (&self->lost, seq, found - 1, &from, &to);
    if (lost_from)
        *lost_from = from;
    if (lost_to)
        *lost_to = to;
    return found;
}

bool
chorus_store_lost_since (chorus_store_t *self, uint64_t seq)
{
    for (size_t i = 0; i < self->lost.size; i++)
        if (self->lost.items [i].to >= seq)
            return true;
    return false;
}

uint64_t
chorus_store_count (chorus_store_t *self, uint64_t from, uint64_t to)
{
    pthread_mutex_lock (&self->lock);
    uint64_t first = self->first, head = self->head, events = self->events;
    pthread_mutex_unlock (&self->lock);
    if (events == 0)
        return 0;
    if (from < first)
        from = first;
    if (to > head)
        to = head;
    if (from > to)
        return 0;
    uint64_t count = to - from + 1;
    uint64_t missing = s_ranges_overlap (&self->gaps, from, to, NULL, NULL)
                     + s_ranges_overlap (&self->lost, from, to, NULL, NULL);
    return missing < count? count - missing: 0;
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
        uint64_t timestamp;
        const char *body;
        size_t body_size;
        s_event_t event = s_event_open (key, key_size, value, value_size, &timestamp, &body,
                                        &body_size);
        if (event == S_EVENT_MALFORMED) {
            rc = s_fail_corrupt (self, key, key_size);
            break;
        }
        uint64_t seq = chorus__get_be64 (key + 1);
        if (seq > to)
            break;
        //  Check and repair pass over it (the census names it); a run stops
        if (event == S_EVENT_DAMAGED) {
            if (self->inspect)
                continue;
            rc = s_fail_checksum (self, key, event);
            break;
        }
        visited++;
        if (fn (seq, timestamp, body, body_size, arg))
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
        const char *value = leveldb_iter_value (iter, &value_size);
        if (key_size != S_EVENT_KEY_SIZE || value_size < 8) {
            rc = s_fail_corrupt (self, key, key_size);
            break;
        }
        uint64_t seq = chorus__get_be64 (key + 1);
        if (seq >= below)
            break;
        leveldb_writebatch_delete (batch, key, key_size);
        last = seq;
        chunk++;
        chunk_bytes += s_event_body_size (value, value_size);
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
    chorus__put_be64 (value, record->since);
    chorus__put_be64 (value + 8, record->flags);
    chorus__put_be64 (value + 16, record->cursor);
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
    record->since = chorus__get_be64 (value);
    record->flags = chorus__get_be64 (value + 8);
    record->cursor = chorus__get_be64 (value + 16);
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
        chorus__put_be64 (key + 2 + length, seq);
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
    chorus__put_be64 (value, now);
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
chorus_store_inbox_highest (chorus_store_t *self, const char *publisher, uint64_t *seq)
{
    size_t key_size;
    char buffer [S_INBOX_KEY_MAX];
    char *key = s_inbox_key (publisher, UINT64_MAX, buffer, &key_size);
    if (!key)
        return s_fail (self, "out of memory");
    *seq = 0;
    //  The publisher's records sort by seq, big-endian, after its name and
    //  a null: the last one at or before (publisher, UINT64_MAX) is the
    //  highest, if it is the publisher's
    leveldb_iterator_t *iter = leveldb_create_iterator (self->db, self->read);
    leveldb_iter_seek (iter, key, key_size);
    if (!leveldb_iter_valid (iter))
        leveldb_iter_seek_to_last (iter);
    else {
        size_t found_size;
        const char *found = leveldb_iter_key (iter, &found_size);
        if (found_size != key_size || memcmp (found, key, key_size))
            leveldb_iter_prev (iter);
    }
    if (leveldb_iter_valid (iter)) {
        size_t found_size;
        const char *found = leveldb_iter_key (iter, &found_size);
        if (found_size == key_size && memcmp (found, key, key_size - 8) == 0)
            *seq = chorus__get_be64 (found + key_size - 8);
    }
    if (key != buffer)
        free (key);
    return s_iter_finish (self, iter);
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
    chorus__put_be64 (value, now);
    if (size)
        memcpy (value + 8, body, size);
    int rc = s_put (self, store_key, key_size, value, 8 + size);
    free (value);
    free (store_key);
    return rc;
}

int
chorus_store_reply_load (chorus_store_t *self, const char *key, void **reply, size_t *size)
{
    *reply = NULL;
    size_t key_size;
    char *store_key = s_name_key (S_NS_REPLY, key, 0, &key_size);
    if (!store_key)
        return s_fail (self, "out of memory");
    char *value;
    size_t value_size;
    int rc = s_get (self, store_key, key_size, &value, &value_size);
    if (rc == 1) {
        if (value_size < 8)
            rc = s_fail_corrupt (self, store_key, key_size);
        else {
            //  At least one byte, so that an empty reply is not NULL
            *reply = malloc (value_size - 8 + 1);
            if (*reply) {
                memcpy (*reply, value + 8, value_size - 8);
                if (size)
                    *size = value_size - 8;
            }
            else
                rc = s_fail (self, "out of memory");
        }
        leveldb_free (value);
    }
    free (store_key);
    return rc;
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
    char producer_start [1] = {S_NS_PRODUCER};
    char reply_start [1] = {S_NS_REPLY};
    if (self->expire_key)
        leveldb_iter_seek (iter, self->expire_key, self->expire_key_size);
    else
        leveldb_iter_seek (iter, inbox_start, sizeof (inbox_start));

    //  The sweep walks the 'i' namespace, then the 'p' and 'r' ones, `max` records at
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
        if (key [0] > S_NS_INBOX && key [0] < S_NS_PRODUCER) {
            leveldb_iter_seek (iter, producer_start, sizeof (producer_start));
            continue;
        }
        if (key [0] > S_NS_PRODUCER && key [0] < S_NS_REPLY) {
            leveldb_iter_seek (iter, reply_start, sizeof (reply_start));
            continue;
        }
        visited++;
        const char *value = leveldb_iter_value (iter, &value_size);
        bool size_ok = key [0] == S_NS_INBOX? value_size == 8:
                       key [0] == S_NS_PRODUCER? value_size == 16: value_size >= 8;
        if (!size_ok) {
            //  Skip it next time, so one bad record cannot stop every sweep
            rc = s_fail_corrupt (self, key, key_size);
            if (s_expire_resume_after (self, key, key_size) == -1)
                rc = -1;
            at_end = false;
            break;
        }
        if (chorus__get_be64 (value) < before) {
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
        chorus__put_be64 (value, recorded);
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
