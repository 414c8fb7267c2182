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

//  Opens (creating if needed) the store in dir. On failure returns NULL and
//  writes why into error (e.g. "store /x is locked by another process").
//  A new store gets a fresh random instance id.
chorus_store_t *
    chorus_store_new (const char *dir, char *error, size_t error_size);

//  Closes the store; safe on NULL, nulls the caller's pointer.
void
    chorus_store_destroy (chorus_store_t **self_p);

//  Why the last failing call failed (a static buffer of the store)
const char *
    chorus_store_error (chorus_store_t *self);

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

//  Saves the reply (encoded body) to the command with this dedupe key
int
    chorus_store_reply_save (chorus_store_t *self, const char *key, uint64_t now,
                             const void *body, size_t size);
//  Returns a malloc'ed copy of the saved reply and its size, or NULL if none
void *
    chorus_store_reply_load (chorus_store_t *self, const char *key, size_t *size);

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

#endif
