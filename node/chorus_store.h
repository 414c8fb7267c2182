/*  chorus_store.h — a node's durable state in one LevelDB directory: its
    identity and sequence counter, the event outbox (the publisher's log),
    the cursors of the groups it delivers to, the inbox records that stop a
    redelivered event or command from running its handler twice, and the
    creation time of its own subscriptions.

    The store is the only code that calls LevelDB. Values are opaque bytes
    (the codec's encodings) or fixed-width big-endian integers.
*/
#ifndef CHORUS_STORE_H_INCLUDED
#define CHORUS_STORE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _chorus_store_t chorus_store_t;

//  What the publisher remembers of a group it delivers to
typedef struct {
    uint64_t since;     //  deliver events with timestamp >= since (0 = all retained)
    uint64_t flags;     //  CHORUS_SUB_* flags (bit 0: durable)
    uint64_t cursor;    //  every seq below cursor is done for this group
    const char *subs;   //  its subscriptions, as the caller wrote them (text), or NULL
} chorus_store_group_t;

//  Called for each event of a scan; return non-zero to stop the scan
typedef int (chorus_store_event_fn) (uint64_t seq, uint64_t timestamp, const void *body,
                                     size_t size, void *arg);
//  Called for each group record; return non-zero to stop
typedef int (chorus_store_group_fn) (const char *group, const chorus_store_group_t *record,
                                     void *arg);

//  What an open, check or repair found wrong (chorus_store_new's kind)
typedef enum {
    CHORUS_STORE_OK = 0,
    CHORUS_STORE_FAILED,        //  an I/O error, out of memory, a bad argument
    CHORUS_STORE_LOCKED,        //  another process has the store open
    CHORUS_STORE_FULL,          //  the disk is full
    CHORUS_STORE_DENIED,        //  permission denied
    CHORUS_STORE_DAMAGED        //  corrupt or incomplete: `chorus store repair` it
} chorus_store_kind_t;

//  Opens (creating if needed) the store in dir. On failure returns NULL,
//  writes why into error (naming the directory and, for damage, the
//  commands that check and repair it) and, when kind is not NULL, sets it.
//  A new store gets a fresh random instance id. A store that was not
//  closed by chorus_store_destroy (a crash, a kill -9) or that was repaired
//  starts a new epoch: its next sequence number is the first of the next
//  epoch (epoch << 32 | 1), above any number it may have handed out before.
chorus_store_t *
    chorus_store_new (const char *dir, char *error, size_t error_size,
                      chorus_store_kind_t *kind);

//  Closes the store cleanly (its next open continues the same epoch); safe
//  on NULL, nulls the caller's pointer.
void
    chorus_store_destroy (chorus_store_t **self_p);

//  Why the last failing call of this thread failed
const char *
    chorus_store_error (chorus_store_t *self);

//  True once any call found the store damaged (a checksum or format
//  error): the node stops rather than work on with a partial log.
bool
    chorus_store_damaged (chorus_store_t *self);
//  The first damage found, for any thread
void
    chorus_store_damage (chorus_store_t *self, char *text, size_t size);
//  Deletes one event (repair: it does not decode); 1, 0 if absent, or -1
int
    chorus_store_drop_event (chorus_store_t *self, uint64_t seq);
//  Records damage found by a caller (a stored record it cannot decode)
void
    chorus_store_report_damage (chorus_store_t *self, const char *what);

//  With sync on, every write is flushed to disk before it returns (power
//  loss safe). Off by default: writes survive a process crash, not a
//  machine crash.
void
    chorus_store_set_sync (chorus_store_t *self, bool sync);

//  The node's instance id: 32 uppercase hex characters, stable for the
//  life of the store.
const char *
    chorus_store_instance (chorus_store_t *self);

//  --------------------------------------------------------------------------
//  Outbox. Sequence numbers start at 1 and never repeat for one store.
//  Appends are serialised by the store; scans and reads may run from any
//  thread at the same time as one appending thread.

//  The last sequence number assigned (0 before the first event)
uint64_t
    chorus_store_head (chorus_store_t *self);

//  Oldest retained sequence number; 0 when the outbox is empty
uint64_t
    chorus_store_first (chorus_store_t *self);

//  Events and bytes (bodies) retained
uint64_t
    chorus_store_events (chorus_store_t *self);
uint64_t
    chorus_store_bytes (chorus_store_t *self);

//  Appends the event with seq head + 1 (seq must be exactly that) and
//  advances head, atomically. Returns 0, or -1 (the event was not stored).
int
    chorus_store_append (chorus_store_t *self, uint64_t seq, uint64_t timestamp,
                         const void *body, size_t size);

//  One event of an append_batch
typedef struct {
    uint64_t timestamp;         //  publish time, ms
    const void *body;           //  the encoded EVENT
    size_t size;
    const char *id;             //  a producer's own event id to remember, or NULL
} chorus_store_entry_t;

//  Appends count events with seqs first, first + 1, ... (first must be
//  head + 1) and advances head, in one atomic write (one fsync with sync
//  on). Returns 0, or -1 (none was stored).
int
    chorus_store_append_batch (chorus_store_t *self, uint64_t first,
                               const chorus_store_entry_t *entries, size_t count);
//  The same, written to the operating system only, whatever set_sync says:
//  on disk once a chorus_store_flush begun after it returns 0
int
    chorus_store_append_batch_lazy (chorus_store_t *self, uint64_t first,
                                    const chorus_store_entry_t *entries, size_t count);
//  Flushes every write made before the call to disk (fsync). Safe from any
//  thread while the store is open, beside the others. Returns 0, or -1.
int
    chorus_store_flush (chorus_store_t *self);

//  Whether a producer id was appended within the inbox retention: 1 and
//  its seq, 0, or -1
int
    chorus_store_producer_id (chorus_store_t *self, const char *id, uint64_t *seq);

//  The first retained seq at or after seq (head + 1 if none). When events
//  between seq and it are missing for another reason than trimming or the
//  unassigned numbers between epochs, *lost_from and *lost_to give the
//  first and last of them (both 0 if none): they were lost to damage and
//  a repair.
uint64_t
    chorus_store_next (chorus_store_t *self, uint64_t seq, uint64_t *lost_from,
                       uint64_t *lost_to);

//  Whether a repair lost events at or after seq
bool
    chorus_store_lost_since (chorus_store_t *self, uint64_t seq);

//  The number of retained events with from <= seq <= to
uint64_t
    chorus_store_count (chorus_store_t *self, uint64_t from, uint64_t to);

//  The current epoch (the high 32 bits of the sequence numbers it assigns)
uint64_t
    chorus_store_epoch (chorus_store_t *self);

//  Calls fn for each retained event with from <= seq <= to (to 0: up to
//  head), in order. Returns the number of events visited, or -1.
int
    chorus_store_scan (chorus_store_t *self, uint64_t from, uint64_t to,
                       chorus_store_event_fn *fn, void *arg);

//  Deletes every event with seq < below. Returns the number deleted, or -1.
int
    chorus_store_trim (chorus_store_t *self, uint64_t below);

//  --------------------------------------------------------------------------
//  Groups the node delivers to, and their cursors

int
    chorus_store_group_save (chorus_store_t *self, const char *group,
                             const chorus_store_group_t *record);
//  Returns 0 and fills record, or -1 if the group is not known; record->subs
//  is then NULL (group_each gives it)
int
    chorus_store_group_load (chorus_store_t *self, const char *group,
                             chorus_store_group_t *record);
int
    chorus_store_group_delete (chorus_store_t *self, const char *group);
//  Calls fn for each saved group in name order, record->subs valid during
//  the call; returns the count or -1
int
    chorus_store_group_each (chorus_store_t *self, chorus_store_group_fn *fn, void *arg);

//  --------------------------------------------------------------------------
//  Inbox: what this node has already handled

//  Records that the event (publisher instance, seq) was handled at time now
int
    chorus_store_inbox_add (chorus_store_t *self, const char *publisher, uint64_t seq,
                            uint64_t now);
//  1 if recorded, 0 if not, -1 on error
int
    chorus_store_inbox_has (chorus_store_t *self, const char *publisher, uint64_t seq);

//  The highest seq recorded for the publisher into *seq, 0 if none; 0 or -1
int
    chorus_store_inbox_highest (chorus_store_t *self, const char *publisher, uint64_t *seq);

//  Saves the reply (encoded body) to the command with this dedupe key
int
    chorus_store_reply_save (chorus_store_t *self, const char *key, uint64_t now,
                             const void *body, size_t size);
//  1 and a malloc'ed copy of the saved reply and its size; 0 if none; -1
int
    chorus_store_reply_load (chorus_store_t *self, const char *key, void **reply,
                             size_t *size);

//  Forgets inbox events and replies recorded before `before` (ms since
//  epoch), visiting at most `max` records so that a sweep stays short.
//  Returns the number forgotten, or -1.
int
    chorus_store_inbox_expire (chorus_store_t *self, uint64_t before, size_t max);

//  --------------------------------------------------------------------------
//  This node's own subscriptions: the time each prefix was first
//  subscribed, which is the group's `since` (protocol: no race with
//  discovery). Returns the recorded since, recording `now` the first time;
//  with earliest set, a first subscription records 0 instead.
int
    chorus_store_subscription (chorus_store_t *self, const char *prefix, uint64_t now,
                               bool earliest, uint64_t *since);

//  --------------------------------------------------------------------------
//  Batching. Between begin and commit, the writes of the group, inbox,
//  reply, subscription and trim calls made by this thread are collected and
//  written in one atomic LevelDB write at commit. Appends are never batched.
//  Reads between begin and commit do not see the pending writes.
void
    chorus_store_begin (chorus_store_t *self);
int
    chorus_store_commit (chorus_store_t *self);

//  --------------------------------------------------------------------------
//  Maintenance internals, for chorus_store_check.c

//  Opens an existing store without creating or changing anything of ours
//  (LevelDB may still turn its log into a table). repairing: after
//  LevelDB's repair, restore the identity from the state file, and take an
//  unreadable state file as absent.
chorus_store_t *
    chorus_store_inspect (const char *dir, bool repairing, char *error, size_t error_size,
                          chorus_store_kind_t *kind);
//  Whether it was closed cleanly; the events that clean stop had and the
//  log lost since (both 0 if none)
bool
    chorus_store_clean (chorus_store_t *self, uint64_t *missing_from, uint64_t *missing_to);
//  The index'th gap between epochs (lost false) or lost range (lost true);
//  returns how many there are
size_t
    chorus_store_ranges (chorus_store_t *self, bool lost, size_t index, uint64_t *from,
                         uint64_t *to);

#define CHORUS_STORE_HOLES_MAX 16
typedef struct {
    uint64_t records, events, groups, inbox, producer_ids, replies, subscriptions, unknown;
    size_t holes;               //  outbox ranges missing for no recorded reason
    struct { uint64_t from, to; } hole [CHORUS_STORE_HOLES_MAX];
    uint64_t damaged;           //  events that do not match their checksum
    uint64_t damaged_seq [CHORUS_STORE_HOLES_MAX];  //  the first of them
} chorus_store_census_t;

//  Reads every record, checksums verified, and counts them by kind
int
    chorus_store_census (chorus_store_t *self, chorus_store_census_t *census);
//  Records a range as lost (its consumers are told); finish_repair then
//  writes it, with a head above it, and leaves the store to start a new
//  epoch
int
    chorus_store_accept_loss (chorus_store_t *self, uint64_t from, uint64_t to);
int
    chorus_store_finish_repair (chorus_store_t *self);
//  LevelDB's repair of the directory
chorus_store_kind_t
    chorus_store_repair_db (const char *dir, char *error, size_t error_size);

#endif
