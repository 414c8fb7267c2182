/*  chorus_coordinator.c — the coordinator (see the header). The engine
    decides; this class keeps the promises around it: every transition is
    in the journal before its commands leave, timers and outstanding
    commands are re-armed after a restart, and the definitions a running
    flow started with stay with it.
*/
#include "chorus_coordinator.h"
#include "chorus_be64.h"
#include "chorus_console.h"
#include "chorus_coordinator_stats.h"
#include "chorus_defset.h"
#include "chorus_flow.h"
#include "chorus_flow_query.h"
#include "chorus_flusher.h"
#include "chorus_journal.h"
#include "chorus_timers.h"
#include "chorus_value.h"

#include <stdarg.h>
#include <stdatomic.h>

#define S_KEEP_FINISHED 10000
#define S_TRACE_KEEP_MS (24 * 3600 * 1000ull)
#define S_PAYLOAD_MAX (1024 * 1024)         //  the protocol's limit on a payload
#define S_PUBLISH_BACKOFF_MS 100            //  first wait after a failed publish
#define S_PUBLISH_BACKOFF_MAX_MS 5000       //  longest
#define S_COMPACT_MIN 4096                  //  deltas a flow's snapshot may trail, in bytes
#define S_SCAN_MS 400                       //  how often the flows directory is looked at
#define S_ACTIONS_PER_TURN 500              //  commands and timers carried out per loop turn
#define S_STUCK_AFTER_MS (3600 * 1000ull)   //  a running flow unchanged this long is stuck
#define S_TRIES_HELD_MAX 8                  //  tries a flow's records hold before they go to
                                            //  the trace (see s_trace_try)

//  An event a flow made, journaled with the transition that made it and
//  kept until it is published
typedef struct {
    uint64_t n;                 //  its number in the flow's life
    char *topic;                //  its topic
    void *payload;              //  its payload, made once, NULL: none
    size_t size;                //  its size
    bool sent;                  //  published, waiting for the node store's flush
} s_event_t;

//  What the coordinator keeps of a flow beside the engine's state, in the
//  same journal records: what started it (its business transaction and
//  the message that caused it, carried by everything the flow sends and
//  emits), its events until they are published, and where its records
//  are in the journal
typedef struct {
    char *correlation;          //  correlation id of the transaction
    char *cause;                //  id of the trigger event or flow.start command
    uint64_t emitted;           //  events made in the flow's life, numbering the next
    s_event_t *events;          //  events not yet published, oldest first
    size_t events_size;         //  how many
    json_t *emit_errors;        //  [{topic, n, error}] events that could not be made
    bool evicted;               //  the flow is gone, its records stay until published
    bool legacy;                //  its record is of format 1, to be rewritten
    bool journaled;             //  it has a snapshot in the journal
    uint64_t first;             //  the number of that snapshot
    uint64_t next;              //  the number of its next record
    size_t snapshot_size;       //  bytes of the snapshot
    size_t delta_size;          //  bytes of the deltas after it
    uint64_t ticket;            //  the journal batch of its last record: its events are
                                //  published once that batch is committed
    uint64_t changed;           //  when it last moved (for the stuck flows of /metrics)
    chorus_record_t tries;      //  tries of its commands not yet in the trace, each one
                                //  value (see s_trace_try), one after another
    size_t tries_count;         //  how many
} s_record_t;

static s_record_t *
s_record_new (const char *correlation, const char *cause)
{
    s_record_t *record = (s_record_t *) zmalloc (sizeof (s_record_t));
    record->correlation = strdup (correlation);
    record->cause = cause? strdup (cause): NULL;
    record->emit_errors = json_array ();
    return record;
}

static void
s_events_clear (s_record_t *record)
{
    for (size_t i = 0; i < record->events_size; i++) {
        free (record->events [i].topic);
        free (record->events [i].payload);
    }
    free (record->events);
    record->events = NULL;
    record->events_size = 0;
}

//  Adds an event; takes the topic and payload
static void
s_events_add (s_record_t *record, uint64_t n, char *topic, void *payload, size_t size)
{
    s_event_t *events = (s_event_t *) realloc (record->events,
                                               (record->events_size + 1) * sizeof (s_event_t));
    if (!events)
        abort ();
    record->events = events;
    s_event_t event = {n, topic, payload, size, false};
    record->events [record->events_size++] = event;
}

static void
s_record_destroy (void **item)
{
    s_record_t *record = (s_record_t *) *item;
    if (record) {
        free (record->correlation);
        free (record->cause);
        s_events_clear (record);
        json_decref (record->emit_errors);
        chorus_record_clear (&record->tries);
        free (record);
        *item = NULL;
    }
}

//  A command sent for a task, awaiting its reply
typedef struct {
    chorus_coordinator_t *self; //  back to us
    char *flow;                 //  the flow's id
    char *key;                  //  the task key
    int attempt;                //  which try
    char *service;              //  the service it went to, for the trace
    char *command;              //  the command
    uint64_t at;                //  when it was sent (or found unsendable)
    const char *code;           //  not sent: the error code to fail the try with
    char *error;                //  not sent: why
    bool retryable;             //  not sent: may a later try succeed
} s_sent_t;

//  A trigger event whose acknowledgement waits for the journal batch that
//  holds the flow it started (see s_on_trigger)
typedef struct {
    chorus_deferred_t *deferred;    //  the event, kept by the node
    uint64_t ticket;                //  the batch
} s_held_t;

struct _chorus_coordinator_t {
    chorus_node_t *node;        //  our node on the mesh
    chorus_journal_t *journal;  //  durable flow states, definitions, traces
    chorus_defset_t *defs;      //  the definitions: deployed, and every version flows use
    zhashx_t *journaled;        //  "name/version" of definitions in the journal
    chorus_flowset_t *flows;    //  every flow we run or ran
    zhashx_t *records;          //  flow id -> s_record_t, our part of its journal records
    chorus_record_t scratch;    //  the journal record being made
    chorus_timers_t *timers;    //  the timers the engine asked for, by flow and key
    chorus_actions_t actions;   //  journaled, waiting to be carried out
    uint64_t *tickets;          //  per action, the journal batch that must commit first
    size_t tickets_max;         //  allocated
    s_held_t *held;             //  trigger events not yet acknowledged, oldest first
    size_t held_size;           //  how many
    size_t held_max;            //  allocated
    bool sync_due;              //  a reply of this round waits for the journal to commit
    zlistx_t *unpublished;      //  ids of flows with events to publish, oldest first
    chorus_flusher_t *flusher;  //  flushes the node's store, journal fsync'd; NULL: none
    zlistx_t *flushing;         //  s_batch_t published, waiting for their flush, oldest first
    char *store_dir;            //  the --store directory, named in messages
    char *journal_dir;          //  where the journal lives
    char *node_dir;             //  where the node's store lives
    bool journal_sync;          //  fsync journal commits
    chorus_journal_failure_t journal_failure;   //  kind of the failing calls, logged once
    int publish_failure;        //  the code of the failing publishes, logged once
    int flush_failure;          //  the code of the failing flushes of the node store, logged once
    size_t publish_tries;       //  failed tries since the last success
    int64_t publish_at;         //  monotonic ms: no publish before, after a failure
    int64_t publish_backoff;    //  ms to wait after the next failure
    uint64_t last_sweep;        //  when traces were last expired
    zhashx_t *subscribed;       //  trigger and awaited topics subscribed to
    zhashx_t *awaited;          //  the topics await steps wait on
    size_t events_dropped;      //  awaited events that came after their flow ended
    unsigned hangups_seen;      //  chorus_coordinator_hangup calls acted on
    int64_t scan_at;            //  monotonic ms: look at the flows directory again
    bool damaged;               //  the journal or node store is damaged: stop
    chorus_coordinator_stats_t *stats;  //  our series at /metrics
    char error [1024];          //  why start or run failed
    bool verbose;               //  log to stderr
    chorus_console_t *console;  //  the web console, NULL: none
};

static uint64_t
s_now (void)
{
    return (uint64_t) zclock_time ();
}

static void
s_log (chorus_coordinator_t *self, const char *format, ...)
{
    if (!self->verbose)
        return;
    va_list args;
    va_start (args, format);
    char *text = zsys_vprintf (format, args);
    va_end (args);
    zsys_debug ("coordinator: %s", text);
    free (text);
}

//  --------------------------------------------------------------------------
//  JSON <-> payloads

//  MessagePack payload of a JSON value (none for NULL) in *data, which the
//  caller frees; 0, or -1 with the reason in error. Through the library's
//  payload API, so that the coordinator follows the payload convention
//  exactly as services and tools do; reals go out with all their digits.
static int
s_pack (const json_t *value, void **data, size_t *size, char *error, size_t error_size)
{
    return chorus_value_pack (value, S_PAYLOAD_MAX, data, size, error, error_size);
}

//  JSON value of a payload (null when absent or not MessagePack); new ref
static json_t *
s_unpack (const void *data, size_t size)
{
    json_t *value = chorus_value_unpack (data, size);
    return value? value: json_null ();
}

//  --------------------------------------------------------------------------
//  Definitions

int
chorus_coordinator_check (const char *dir, char *error, size_t error_size)
{
    chorus_defset_t *defs = chorus_defset_new (dir);
    int rc = chorus_defset_load (defs, s_now (), error, error_size);
    chorus_defset_destroy (&defs);
    return rc;
}

//  The newest version of a definition in the flows directory, or NULL
static chorus_flowdef_t *
s_newest (chorus_coordinator_t *self, const char *name)
{
    return chorus_defset_newest (self->defs, name);
}

//  A given version: loaded, or kept in the journal since a flow used it;
//  NULL with the reason in why
static chorus_flowdef_t *
s_version (chorus_coordinator_t *self, const char *name, int version, char *why,
           size_t why_size)
{
    chorus_flowdef_t *known = chorus_defset_version (self->defs, name, version);
    if (known)
        return known;
    char *source = NULL;
    if (chorus_journal_definition (self->journal, name, version, &source)) {
        snprintf (why, why_size, "%s", chorus_journal_error (self->journal));
        return NULL;
    }
    if (!source) {
        snprintf (why, why_size, "its definition '%s' version %d is neither in the flows "
                  "directory nor in the journal (put it back in the flows directory)", name,
                  version);
        return NULL;
    }
    char error [512];
    chorus_flowdef_t *def = chorus_flowdef_parse (source, strlen (source), name, error,
                                                  sizeof (error));
    free (source);
    if (!def) {
        snprintf (why, why_size, "its definition '%s' version %d, kept in the journal, does "
                  "not load: %s", name, version, error);
        return NULL;
    }
    return chorus_defset_keep (self->defs, def);
}

//  Keeps the exact definition a flow starts with, once per version
static void
s_journal_definition (chorus_coordinator_t *self, chorus_flowdef_t *def)
{
    char key [128];
    snprintf (key, sizeof (key), "%s/%d", chorus_flowdef_name (def), chorus_flowdef_version (def));
    if (zhashx_lookup (self->journaled, key))
        return;
    chorus_journal_put_definition (self->journal, chorus_flowdef_name (def),
                                   chorus_flowdef_version (def), chorus_flowdef_source (def));
    zhashx_insert (self->journaled, key, (void *) 1);
}

//  --------------------------------------------------------------------------
//  Failures of the journal and of the node store

//  The journal or the node store is damaged: the coordinator stops rather
//  than go on without what it lost, and says what to do
static void
s_damaged (chorus_coordinator_t *self, const char *what)
{
    self->damaged = true;
    snprintf (self->error, sizeof (self->error), "%s. The coordinator does not run on a "
              "damaged store: `chorus store check %s` shows what it holds, and `chorus store "
              "repair %s` keeps what is readable and reports what was lost", what,
              self->store_dir, self->store_dir);
}

//  A journal call failed: logged once per kind of failure, not once per
//  try; a damaged journal stops the coordinator
static void
s_journal_failed (chorus_coordinator_t *self, bool commit)
{
    chorus_journal_failure_t failure = chorus_journal_failure (self->journal);
    if (failure == CHORUS_JOURNAL_DAMAGED && !self->damaged)
        s_damaged (self, chorus_journal_error (self->journal));
    if (failure != self->journal_failure) {
        zsys_error ("coordinator: %s%s", chorus_journal_error (self->journal),
                    commit && failure != CHORUS_JOURNAL_DAMAGED? "; nothing is acknowledged "
                    "or sent until the journal commits: trying again": "");
        self->journal_failure = failure;
    }
}

//  After a commit (failed: whether it failed): a failure is logged once
//  per kind (a damaged journal stops us), and commits again after one are
//  said; 0, or -1 on a failure
static int
s_journal_outcome (chorus_coordinator_t *self, bool failed)
{
    if (failed) {
        s_journal_failed (self, true);
        return -1;
    }
    if (self->journal_failure) {
        zsys_info ("coordinator: the journal commits again");
        self->journal_failure = CHORUS_JOURNAL_OK;
    }
    return 0;
}

//  Commits the journal; 0 or -1
static int
s_commit (chorus_coordinator_t *self)
{
    return s_journal_outcome (self, chorus_journal_commit (self->journal) != 0);
}

//  What the journal's writer has to say since the last turn; 0, or -1
//  while its commits fail
static int
s_journal_news (chorus_coordinator_t *self)
{
    return s_journal_outcome (self, chorus_journal_writer_status (self->journal) != 0);
}

//  Queues a journaled action, to be carried out once the batch that holds
//  it is committed
static void
s_queue_action (chorus_coordinator_t *self, chorus_action_t *action)
{
    if (self->actions.size + 1 > self->tickets_max) {
        size_t max = self->tickets_max? self->tickets_max * 2: 64;
        uint64_t *tickets = (uint64_t *) realloc (self->tickets, max * sizeof (uint64_t));
        if (!tickets)
            abort ();
        self->tickets = tickets;
        self->tickets_max = max;
    }
    self->tickets [self->actions.size] = chorus_journal_ticket (self->journal);
    *chorus_actions_push (&self->actions) = *action;
}

//  Acknowledges the trigger events whose flows are committed
static void
s_release_held (chorus_coordinator_t *self, uint64_t durable)
{
    size_t released = 0;
    while (released < self->held_size && self->held [released].ticket <= durable) {
        chorus_deferred_finish (self->node, &self->held [released].deferred, 0);
        released++;
    }
    if (released == 0)
        return;
    memmove (self->held, self->held + released,
             (self->held_size - released) * sizeof (s_held_t));
    self->held_size -= released;
}

//  --------------------------------------------------------------------------
//  Transitions: journal first, act after

static void s_trace_tries (chorus_coordinator_t *self, const char *flow, s_record_t *record);

//  Our part of a flow's records: in a snapshot [name, version,
//  correlation, cause, emitted, events, errors], in a delta [emitted,
//  events, errors], each followed by [try...] when the flow holds tries
//  not yet traced (see s_trace_try); an event is [n, topic, payload], an
//  error [n, topic, error]. Events, errors and held tries are few, and
//  written whole each time.
static void
s_write_events (s_record_t *record, chorus_record_t *out)
{
    chorus_record_uint (out, record->emitted);
    chorus_record_array (out, record->events_size);
    for (size_t i = 0; i < record->events_size; i++) {
        s_event_t *event = &record->events [i];
        chorus_record_array (out, 3);
        chorus_record_uint (out, event->n);
        chorus_record_str (out, event->topic);
        if (event->payload)
            chorus_record_bin (out, event->payload, event->size);
        else
            chorus_record_nil (out);
    }
    chorus_record_array (out, json_array_size (record->emit_errors));
    size_t index;
    json_t *error;
    json_array_foreach (record->emit_errors, index, error) {
        chorus_record_array (out, 3);
        chorus_record_uint (out, (uint64_t) json_integer_value (json_object_get (error, "n")));
        chorus_record_str (out, json_string_value (json_object_get (error, "topic")));
        chorus_record_str (out, json_string_value (json_object_get (error, "error")));
    }
}

//  Journals a flow's transition (or, with `engine` false, a change of our
//  part alone) with our part of its records: an event is journaled with
//  the transition that made it and forgotten only once it is published,
//  so a crash in between publishes it after recovery, with the same id
//  (events are published once: the node stores an id once). A delta
//  holds what changed; once a flow's deltas outweigh its snapshot, a new
//  snapshot replaces them all, so that what recovery reads of a flow
//  stays within about twice its size.
static void
s_journal_flow (chorus_coordinator_t *self, chorus_flow_t *flow, s_record_t *record,
                bool engine)
{
    const char *id = chorus_flow_id (flow);
    chorus_record_t *out = &self->scratch;
    //  The tries it holds go to the trace, in the same batch, when it ended
    //  or they are many; until then they ride in its records
    if (record->tries_count
    &&  (chorus_flow_finished (flow) || record->tries_count >= S_TRIES_HELD_MAX))
        s_trace_tries (self, id, record);
    size_t bound = record->snapshot_size > S_COMPACT_MIN? record->snapshot_size: S_COMPACT_MIN;
    bool snapshot = !record->journaled || record->delta_size > bound;
    chorus_journal_envelope_write (out, snapshot? CHORUS_JOURNAL_SNAPSHOT: CHORUS_JOURNAL_DELTA,
                                   (int) chorus_flow_state (flow), record->events_size);
    if (snapshot) {
        chorus_flow_snapshot (flow, out);
        chorus_flowdef_t *def = chorus_flow_def (flow);
        chorus_record_array (out, record->tries_count? 8: 7);
        chorus_record_str (out, chorus_flowdef_name (def));
        chorus_record_uint (out, (uint64_t) chorus_flowdef_version (def));
        chorus_record_str (out, record->correlation);
        chorus_record_str (out, record->cause);
    }
    else {
        if (engine)
            chorus_flow_delta (flow, out);
        else
            chorus_record_nil (out);
        chorus_record_array (out, record->tries_count? 4: 3);
    }
    s_write_events (record, out);
    if (record->tries_count) {
        chorus_record_array (out, record->tries_count);
        chorus_record_raw (out, record->tries.data, record->tries.size);
    }
    chorus_journal_envelope_seal (out, id, record->next);
    //  A record of our part alone says events were published: lost with
    //  the machine, they are published again, with the same ids, and the
    //  node stores an id once. It need not wait for a flush of the disk.
    chorus_journal_put_record (self->journal, id, record->next, out->data, out->size,
                               engine || snapshot);
    record->ticket = chorus_journal_ticket (self->journal);
    if (snapshot) {
        //  What the snapshot holds, the records before it need not
        if (record->journaled)
            chorus_journal_delete_records (self->journal, id, record->first, record->next);
        if (record->legacy)
            chorus_journal_delete_legacy (self->journal, id);
        record->legacy = false;
        record->journaled = true;
        record->first = record->next;
        record->snapshot_size = out->size;
        record->delta_size = 0;
    }
    else
        record->delta_size += out->size;
    record->next++;
}

//  A flow's records leave the journal
static void
s_unjournal (chorus_coordinator_t *self, const char *id, s_record_t *record)
{
    if (record->journaled)
        chorus_journal_delete_records (self->journal, id, record->first, record->next);
    if (record->legacy)
        chorus_journal_delete_legacy (self->journal, id);
    record->journaled = record->legacy = false;
}

//  The id of a flow's nth event: the same each time it is published again,
//  so that the node stores it once, and different for every event of the
//  flow (a flow that failed, was retried and completed emits twice)
static void
s_emit_id (const char *flow, const char *topic, uint64_t n, char *id, size_t id_size)
{
    char *text = zsys_sprintf ("%s/emit/%s/%" PRIu64, flow, topic, n);
    zdigest_t *digest = zdigest_new ();
    zdigest_update (digest, (const byte *) text, strlen (text));
    snprintf (id, id_size, "%s", zdigest_string (digest));
    zdigest_destroy (&digest);
    free (text);
}

//  An event the engine made: numbered and kept in the flow's record, to be
//  journaled with the transition that made it and published after it. An
//  event whose payload cannot be made is journaled as an error, loudly,
//  not published without its payload.
static void
s_emit (chorus_coordinator_t *self, s_record_t *record, const char *flow,
        chorus_action_t *action)
{
    uint64_t n = ++record->emitted;
    void *data = action->encoded;
    size_t size = action->encoded_size;
    char error [256];
    action->encoded = NULL;         //  taken
    if (data && size > S_PAYLOAD_MAX) {
        free (data);
        data = NULL;
        //  As the payload API says it
        snprintf (error, sizeof (error), "payload of %zu bytes exceeds the limit of %d", size,
                  S_PAYLOAD_MAX);
    }
    if (!data && (action->encoded_size > S_PAYLOAD_MAX
                  || s_pack (action->payload, &data, &size, error, sizeof (error)))) {
        zsys_error ("coordinator: flow %s: event %s cannot be published: its payload %s",
                    flow, action->topic, error);
        json_array_append_new (record->emit_errors, json_pack ("{s:s, s:I, s:s}", "topic",
                               action->topic, "n", (json_int_t) n, "error", error));
        return;
    }
    s_events_add (record, n, strdup (action->topic), data, size);
    if (record->events_size == 1)
        zlistx_add_end (self->unpublished, (void *) flow);
}

//  A finished flow left memory: its record goes too, unless it still has
//  events to publish (then it goes once they are)
static void
s_forget (chorus_coordinator_t *self, const char *id)
{
    s_record_t *record = (s_record_t *) zhashx_lookup (self->records, id);
    if (record && record->events_size)
        record->evicted = true;
    else {
        if (record)
            s_unjournal (self, id, record);
        zhashx_delete (self->records, id);
    }
}

static void s_child_ended (chorus_coordinator_t *self, chorus_flow_t *child);
static int s_check_business_key (chorus_flowdef_t *def, const json_t *input,
                                 const void *encoded, size_t size, char *error,
                                 size_t error_size);

//  Records a flow's new state and takes the actions it produced
static void
s_transition (chorus_coordinator_t *self, chorus_flow_t *flow, chorus_actions_t *actions)
{
    s_record_t *record = (s_record_t *) zhashx_lookup (self->records, chorus_flow_id (flow));
    if (!record) {
        record = s_record_new (chorus_flow_id (flow), NULL);
        zhashx_update (self->records, chorus_flow_id (flow), record);
    }
    for (size_t i = 0; i < actions->size; i++)
        if (actions->items [i].kind == CHORUS_ACTION_EMIT)
            s_emit (self, record, chorus_flow_id (flow), &actions->items [i]);
    //  Before the journal takes the engine's list of what changed
    chorus_coordinator_stats_moved (self->stats, flow, actions, !record->journaled);
    record->changed = s_now ();
    s_journal_flow (self, flow, record, true);
    if (chorus_flow_finished (flow))
        s_log (self, "flow %s %s", chorus_flow_id (flow),
               chorus_flow_state_name (chorus_flow_state (flow)));
    //  Whatever timers it set are stale now: gone, not left to fire
    if (chorus_flow_finished (flow))
        chorus_timers_cancel_flow (self->timers, chorus_flow_id (flow));
    //  A child flow that ended tells its parent, in the same commit
    if (chorus_flow_parent (flow)
    &&  (chorus_flow_finished (flow) || chorus_flow_state (flow) == CHORUS_FLOW_STUCK))
        s_child_ended (self, flow);
    char *evicted = chorus_flowset_update (self->flows, flow);
    if (evicted) {
        s_forget (self, evicted);
        free (evicted);
    }
    //  Move the actions to our queue; they run after the journal commit
    for (size_t i = 0; i < actions->size; i++)
        s_queue_action (self, &actions->items [i]);
    actions->size = 0;
}

static void s_on_reply (chorus_node_t *node, chorus_reply_t *reply, void *arg);
static void s_console_event (chorus_coordinator_t *self, const char *fields [6], uint64_t seq,
                             uint64_t time, const void *data, size_t size);
static void s_trace (chorus_coordinator_t *self, const char *correlation, uint64_t seq,
                     uint64_t time, const char *id, const char *topic, const char *service,
                     const char *instance, const char *causation);
static void s_trace_try (chorus_coordinator_t *self, s_sent_t *sent, const char *command_id,
                         const char *outcome, const char *code, const char *message);

static void
s_sent_destroy (s_sent_t **sent_p)
{
    s_sent_t *sent = *sent_p;
    if (sent) {
        free (sent->flow);
        free (sent->key);
        free (sent->service);
        free (sent->command);
        free (sent->error);
        free (sent);
        *sent_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  Sub-flows: a step with `flow:` runs a child flow in this coordinator.
//  The child's id is its parent task's key (FLOW/STEP[/ITEM][:rN]; a
//  digest of it past S_CHILD_ID_MAX bytes), so that starting it again,
//  after a restart, finds it; the child's journal keeps its parent's id and
//  task key, and when it ends its parent hears of it in the same commit.

#define S_CHILD_ID_MAX 120

static char *
s_child_id (const char *key)
{
    if (strlen (key) <= S_CHILD_ID_MAX)
        return strdup (key);
    zdigest_t *digest = zdigest_new ();
    zdigest_update (digest, (const byte *) key, strlen (key));
    char *id = zsys_sprintf ("child-%s", zdigest_string (digest));
    zdigest_destroy (&digest);
    return id;
}

//  A result for the parent's task that no child gives: the child could not
//  start, or is gone
static void
s_child_error (chorus_coordinator_t *self, chorus_flow_t *parent, const char *key, bool undo,
               int attempt, const char *code, const char *message)
{
    zsys_error ("coordinator: flow %s: %s: %s", chorus_flow_id (parent), key, message);
    chorus_result_t result = {.code = code, .message = message};
    char *task_key = undo? zsys_sprintf ("%s/undo", key): strdup (key);
    chorus_actions_t actions;
    chorus_actions_init (&actions);
    if (chorus_flow_reply (parent, task_key, attempt, &result, s_now (), &actions) == 0)
        s_transition (self, parent, &actions);
    chorus_actions_clear (&actions);
    free (task_key);
}

//  Tells a child's end (or its stuck compensation) to its parent's task
static void
s_child_ended (chorus_coordinator_t *self, chorus_flow_t *child)
{
    chorus_flow_t *parent = chorus_flowset_lookup (self->flows, chorus_flow_parent (child));
    if (!parent)
        return;
    size_t size = 0;
    json_t *json = NULL;
    const void *output = chorus_flow_output (child, &size, &json);
    char *message = NULL;
    if (chorus_flow_state (child) != CHORUS_FLOW_COMPLETED) {
        //  The child's error, for the parent's task: "flow ID failed:
        //  STEP: CODE: MESSAGE"
        json_t *error = chorus_flow_error_json (child);
        const char *code = json_string_value (json_object_get (error, "code"));
        const char *text = json_string_value (json_object_get (error, "message"));
        const char *step = json_string_value (json_object_get (error, "step"));
        message = zsys_sprintf ("flow %s %s%s%s%s%s%s%s", chorus_flow_id (child),
                                chorus_flow_state_name (chorus_flow_state (child)),
                                code? ": ": "", step? step: "", step? ": ": "", code? code: "",
                                text? ": ": "", text? text: "");
        json_decref (error);
    }
    chorus_actions_t actions;
    chorus_actions_init (&actions);
    if (chorus_flow_child_ended (parent, chorus_flow_parent_key (child), chorus_flow_state (child),
                                 output, size, json, message, s_now (), &actions) == 0)
        s_transition (self, parent, &actions);
    chorus_actions_clear (&actions);
    free (message);
}

//  Starts the child flow of a parent's task, or finds it
static void
s_start_child (chorus_coordinator_t *self, chorus_flow_t *parent, chorus_action_t *action,
               const char *id)
{
    chorus_flowdef_t *def = s_newest (self, action->command);
    char error [512];
    if (!def) {
        snprintf (error, sizeof (error), "no flow '%s' is deployed", action->command);
        s_child_error (self, parent, action->key, false, action->attempt, "unknown-flow", error);
        return;
    }
    void *encoded = action->encoded;
    size_t size = action->encoded_size;
    json_t *input = action->payload;
    if (s_check_business_key (def, input, encoded, size, error, sizeof (error))) {
        s_child_error (self, parent, action->key, false, action->attempt, "bad-key", error);
        return;
    }
    chorus_actions_t actions;
    chorus_actions_init (&actions);
    bool existing = false;
    chorus_flow_t *child = chorus_flowset_start (self->flows, def, id, input, encoded, size,
                                                 s_now (), &actions, &existing);
    if (child && existing) {
        //  A live flow of the same business key: not this task's child
        snprintf (error, sizeof (error), "the flow %s of %s is live with the same business key",
                  chorus_flow_id (child), action->command);
        s_child_error (self, parent, action->key, false, action->attempt, "conflict", error);
    }
    else
    if (child) {
        chorus_flow_set_parent (child, chorus_flow_id (parent), action->key);
        s_record_t *record = (s_record_t *) zhashx_lookup (self->records,
                                                            chorus_flow_id (parent));
        zhashx_update (self->records, id, s_record_new (record? record->correlation: id,
                                                        chorus_flow_id (parent)));
        s_journal_definition (self, def);
        s_log (self, "flow %s started: %s v%d, for %s", id, action->command,
               chorus_flowdef_version (def), chorus_flow_id (parent));
        s_transition (self, child, &actions);
    }
    else
        s_child_error (self, parent, action->key, false, action->attempt, "error",
                       "cannot start the child flow");
    chorus_actions_clear (&actions);
}

//  Starts, cancels or compensates the child flow of a parent's task; each
//  may come again (after a restart): what was done is not done twice
static void
s_act_on_child (chorus_coordinator_t *self, chorus_action_t *action)
{
    chorus_flow_t *parent = chorus_flowset_lookup (self->flows, action->flow);
    if (!parent)
        return;
    char *id = s_child_id (action->key);
    chorus_flow_t *child = chorus_flowset_lookup (self->flows, id);
    bool undo = action->kind == CHORUS_ACTION_UNDO_FLOW;
    if (child && !(chorus_flow_parent (child)
                   && streq (chorus_flow_parent (child), action->flow)
                   && streq (chorus_flow_parent_key (child), action->key))) {
        char error [512];
        snprintf (error, sizeof (error), "flow id %s is taken by a flow that is not its child",
                  id);
        if (action->kind != CHORUS_ACTION_CANCEL_FLOW)
            s_child_error (self, parent, action->key, undo, action->attempt, "conflict", error);
    }
    else
    if (action->kind == CHORUS_ACTION_START_FLOW) {
        if (child)
            s_child_ended (self, child);    //  found again: it may have ended
        else
            s_start_child (self, parent, action, id);
    }
    else
    if (action->kind == CHORUS_ACTION_CANCEL_FLOW) {
        chorus_actions_t actions;
        chorus_actions_init (&actions);
        if (child && chorus_flow_cancel (child, s_now (), &actions) == 0)
            s_transition (self, child, &actions);
        chorus_actions_clear (&actions);
    }
    else
    if (!child) {
        char error [512];
        snprintf (error, sizeof (error), "the child flow %s to compensate is no longer kept "
                  "(see chorus-coordinator --keep)", id);
        s_child_error (self, parent, action->key, true, action->attempt, "flow-gone", error);
    }
    else {
        //  Undo a completed child; a stuck one tries its compensations again
        chorus_actions_t actions;
        chorus_actions_init (&actions);
        chorus_flow_state_t state = chorus_flow_state (child);
        int rc = state == CHORUS_FLOW_COMPLETED? chorus_flow_undo (child, s_now (), &actions)
               : state == CHORUS_FLOW_STUCK? chorus_flow_retry (child, s_now (), &actions): -1;
        if (rc == 0)
            s_transition (self, child, &actions);
        else
            s_child_ended (self, child);    //  undone already
        chorus_actions_clear (&actions);
    }
    free (id);
}

//  Carries out a journaled command or timer (events are published apart).
//  A command that cannot be sent goes to `failed`, with the reason.
static void
s_act (chorus_coordinator_t *self, chorus_action_t *action, zlistx_t *failed)
{
    s_record_t *record = (s_record_t *) zhashx_lookup (self->records, action->flow);
    const char *correlation = record? record->correlation: NULL;
    if (action->kind == CHORUS_ACTION_SEND) {
        s_sent_t *sent = (s_sent_t *) zmalloc (sizeof (s_sent_t));
        sent->self = self;
        sent->flow = strdup (action->flow);
        sent->key = strdup (action->key);
        sent->attempt = action->attempt;
        sent->service = strdup (action->service);
        sent->command = strdup (action->command);
        sent->at = s_now ();
        void *payload = action->encoded;
        size_t size = action->encoded_size;
        char error [256];
        action->encoded = NULL;     //  taken
        if (!payload && s_pack (action->payload, &payload, &size, error, sizeof (error))) {
            sent->code = "bad-input";
            sent->error = zsys_sprintf ("the command's payload cannot be made: %s", error);
            zlistx_add_end (failed, sent);
            return;
        }
        uint64_t now = s_now ();
        int timeout = action->at > now + 50? (int) (action->at - now): 50;
        //  Every try of a task under its key, numbered
        int code = chorus_node_send_attempt (self->node, action->service, action->command,
                                             payload, size, timeout, action->key, correlation,
                                             action->attempt > 0? (uint64_t) action->attempt: 1,
                                             s_on_reply, sent);
        if (code < 0) {
            const char *detail = chorus_node_error (self->node);
            sent->code = "send-failed";
            sent->error = zsys_sprintf ("cannot send %s to %s: %s%s%s", action->command,
                                        action->service, chorus_strerror (code),
                                        *detail? ": ": "", detail);
            sent->retryable = code != CHORUS_EINVAL && code != CHORUS_ETOOBIG;
            zlistx_add_end (failed, sent);
        }
        free (payload);
    }
    else
    if (action->kind == CHORUS_ACTION_TIMER) {
        //  Asked for before the flow finished in the same round: stale
        chorus_flow_t *flow = chorus_flowset_lookup (self->flows, action->flow);
        if (flow && !chorus_flow_finished (flow))
            chorus_timers_set (self->timers, action->flow, action->key, action->at);
    }
    else
    if (action->kind == CHORUS_ACTION_START_FLOW || action->kind == CHORUS_ACTION_CANCEL_FLOW
    ||  action->kind == CHORUS_ACTION_UNDO_FLOW)
        s_act_on_child (self, action);
}

//  A try the engine took no step on (a reply it no longer waited for) is
//  journaled with our part of the flow's record alone, as a transition
//  would have journaled it
static void
s_keep_try (chorus_coordinator_t *self, chorus_flow_t *flow)
{
    s_record_t *record = (s_record_t *) zhashx_lookup (self->records, chorus_flow_id (flow));
    if (record && record->tries_count)
        s_journal_flow (self, flow, record, false);
}

//  A command that was not sent is a failed try of its task, told to the
//  engine at once, as a reply would be
static void
s_fail_try (chorus_coordinator_t *self, s_sent_t *sent)
{
    zsys_error ("coordinator: flow %s: %s: %s", sent->flow, sent->key, sent->error);
    chorus_flow_t *flow = chorus_flowset_lookup (self->flows, sent->flow);
    if (!flow)
        return;
    s_trace_try (self, sent, NULL, "unsent", sent->code, sent->error);
    chorus_result_t result = {.code = sent->code, .message = sent->error,
                              .retryable = sent->retryable};
    chorus_actions_t actions;
    chorus_actions_init (&actions);
    if (chorus_flow_reply (flow, sent->key, sent->attempt, &result, s_now (), &actions) == 0)
        s_transition (self, flow, &actions);
    else
        s_keep_try (self, flow);
    chorus_actions_clear (&actions);
}

//  --------------------------------------------------------------------------
//  Publishing the events flows made

//  What s_publish tries: the events, and where each came from
typedef struct {
    chorus_publication_t *events;   //  for the node
    s_record_t **records;           //  the record each came from
    const char **flows;             //  its flow's id
    uint64_t *numbers;              //  its number in its flow
    bool *published;                //  done (or a duplicate of one done before)
    size_t count;                   //  how many
    uint64_t ticket;                //  the flush that puts them on disk
} s_batch_t;

//  A batch that waits for its flush keeps what s_published needs, the
//  flow ids its own
static void
s_batch_destroy (void **item)
{
    s_batch_t *batch = (s_batch_t *) *item;
    if (batch) {
        for (size_t i = 0; i < batch->count; i++)
            free ((char *) batch->flows [i]);
        free (batch->events);
        free (batch->records);
        free (batch->flows);
        free (batch->numbers);
        free (batch->published);
        free (batch);
        *item = NULL;
    }
}

//  Publishes events [from, from + count) of the batch; 0, or the error code
static int
s_publish_range (chorus_coordinator_t *self, s_batch_t *batch, size_t from, size_t count)
{
    //  With the journal fsync'd, the node's store is flushed apart (see
    //  s_publish)
    int code = self->flusher?
               chorus_node_publish_batch_lazy (self->node, batch->events + from, count):
               chorus_node_publish_batch (self->node, batch->events + from, count);
    if (code < 0)
        return code;
    for (size_t i = from; i < from + count; i++) {
        chorus_publication_t *event = &batch->events [i];
        batch->published [i] = true;
        if (event->duplicate)
            s_log (self, "flow %s: event %s %s was published before: not again", batch->flows [i],
                   event->topic, event->id);
        else {  //  a node never observes its own events: trace them here
            s_trace (self, event->correlation, 0, s_now (), event->id, event->topic,
                     "coordinator", chorus_node_instance (self->node), event->causation);
            if (self->console) {
                const char *fields [6] = {event->id, event->topic, "coordinator",
                                          chorus_node_instance (self->node),
                                          event->correlation, event->causation};
                s_console_event (self, fields, 0, s_now (), event->payload, event->size);
            }
        }
    }
    return 0;
}

//  After a publish: each record forgets what was published; a record left
//  with nothing to publish leaves the list (and, if its flow was evicted,
//  the journal)
static void
s_published (chorus_coordinator_t *self, s_batch_t *batch)
{
    for (size_t i = 0; i < batch->count; ) {
        s_record_t *record = batch->records [i];
        size_t end = i;
        while (end < batch->count && batch->records [end] == record)
            end++;
        size_t kept = 0;
        for (size_t e = 0; e < record->events_size; e++) {
            s_event_t *event = &record->events [e];
            bool done = false;
            for (size_t j = i; j < end; j++)
                done = done || (batch->numbers [j] == event->n && batch->published [j]);
            if (done) {
                free (event->topic);
                free (event->payload);
            }
            else
                record->events [kept++] = *event;
        }
        bool changed = kept < record->events_size;
        record->events_size = kept;
        char *key = strdup (batch->flows [i]);  //  the list owns the id, and may let it go
        i = end;
        if (!changed) {
            free (key);
            continue;
        }
        void *handle = kept == 0? zlistx_find (self->unpublished, key): NULL;
        if (handle)
            zlistx_delete (self->unpublished, handle);
        chorus_flow_t *flow = chorus_flowset_lookup (self->flows, key);
        if (flow)
            s_journal_flow (self, flow, record, false);
        else
        if (record->evicted && kept == 0) {
            s_unjournal (self, key, record);
            zhashx_delete (self->records, key);
        }
        free (key);
    }
}

static void s_await_flush (chorus_coordinator_t *self, s_batch_t *batch);

//  Publishes the events that wait, in one batch. After a failure each
//  goes alone, so that an event the node refuses does not hold back the
//  others, and what failed stays journaled and waits for a backoff.
static void
s_publish (chorus_coordinator_t *self, uint64_t durable)
{
    if (zlistx_size (self->unpublished) == 0 || zclock_mono () < self->publish_at)
        return;
    size_t count = 0;
    for (const char *id = (const char *) zlistx_first (self->unpublished); id;
         id = (const char *) zlistx_next (self->unpublished)) {
        s_record_t *record = (s_record_t *) zhashx_lookup (self->records, id);
        count += record? record->events_size: 0;
    }
    count = count < CHORUS_PUBLISH_BATCH_MAX? count: CHORUS_PUBLISH_BATCH_MAX;
    s_batch_t batch = {
        (chorus_publication_t *) zmalloc (count * sizeof (chorus_publication_t) + 1),
        (s_record_t **) zmalloc (count * sizeof (s_record_t *) + 1),
        (const char **) zmalloc (count * sizeof (char *) + 1),
        (uint64_t *) zmalloc (count * sizeof (uint64_t) + 1),
        (bool *) zmalloc (count * sizeof (bool) + 1), 0, 0};
    for (const char *id = (const char *) zlistx_first (self->unpublished);
         id && batch.count < count; id = (const char *) zlistx_next (self->unpublished)) {
        s_record_t *record = (s_record_t *) zhashx_lookup (self->records, id);
        //  Published after the transition that made them is committed
        if (record && record->ticket > durable)
            continue;
        for (size_t e = 0; record && e < record->events_size && batch.count < count; e++) {
            s_event_t *entry = &record->events [e];
            if (entry->sent)
                continue;       //  published, its flush awaited
            chorus_publication_t *event = &batch.events [batch.count];
            event->topic = entry->topic;
            event->key = id;
            event->correlation = record->correlation;
            event->causation = record->cause;
            //  Its payload was made once, when the event was
            event->payload = entry->payload;
            event->size = entry->size;
            s_emit_id (id, entry->topic, entry->n, event->id, sizeof (event->id));
            batch.records [batch.count] = record;
            batch.flows [batch.count] = id;
            batch.numbers [batch.count] = entry->n;
            batch.count++;
        }
    }
    //  Nothing may be published yet: its batch is being committed
    int code = batch.count? s_publish_range (self, &batch, 0, batch.count): 0;
    size_t failed = code? batch.count: 0;
    if (code && batch.count > 1) {
        //  One by one; an event of a flow that failed holds back its later ones
        failed = 0;
        for (size_t i = 0; i < batch.count; i++) {
            bool held = i > 0 && batch.records [i - 1] == batch.records [i]
                     && !batch.published [i - 1];
            int alone = held? code: s_publish_range (self, &batch, i, 1);
            if (alone) {
                code = alone;
                failed++;
            }
        }
    }
    if (self->flusher)
        s_await_flush (self, &batch);
    else
        s_published (self, &batch);
    if (failed && code == CHORUS_ECORRUPT && !self->damaged) {
        char what [512];      //  the detail may be cut; the advice after it is not
        snprintf (what, sizeof (what), "node store %s is damaged (publishing a flow's event: "
                  "%s)", self->node_dir, chorus_node_error (self->node));
        s_damaged (self, what);
    }
    if (failed) {
        self->publish_tries++;
        self->publish_at = zclock_mono () + self->publish_backoff;
        self->publish_backoff = self->publish_backoff * 2 < S_PUBLISH_BACKOFF_MAX_MS?
                                self->publish_backoff * 2: S_PUBLISH_BACKOFF_MAX_MS;
        if (code != self->publish_failure) {
            const char *detail = chorus_node_error (self->node);
            zsys_error ("coordinator: cannot publish %zu flow event%s: %s%s%s; they stay in the "
                        "journal and are tried again", failed, failed == 1? "": "s",
                        chorus_strerror (code), *detail? ": ": "", detail);
        }
        self->publish_failure = code;
    }
    else
    if (batch.count) {
        if (self->publish_failure)
            zsys_info ("coordinator: flow events are published again, after %zu failed tries",
                       self->publish_tries);
        self->publish_failure = 0;
        self->publish_tries = 0;
        self->publish_backoff = S_PUBLISH_BACKOFF_MS;
    }
    free (batch.events);
    free (batch.records);
    free (batch.flows);
    free (batch.numbers);
    free (batch.published);
}

//  Marks a batch's published events sent (or not, to publish them again)
static void
s_mark_sent (s_batch_t *batch, bool sent)
{
    for (size_t i = 0; i < batch->count; i++) {
        s_record_t *record = batch->records [i];
        for (size_t e = 0; batch->published [i] && e < record->events_size; e++)
            if (record->events [e].n == batch->numbers [i])
                record->events [e].sent = sent;
    }
}

//  With the journal fsync'd, events are published to the node's store
//  lazily, and its flush to disk waits in the flusher's thread, not in
//  ours: their journal records forget them only once a flush begun after
//  the publish has succeeded, so that the journal never says an event was
//  published that a crash of the machine could take from the store (a
//  crash before then publishes them again, with the same ids, and the
//  store keeps an id once). Meanwhile they are marked sent, not published
//  again. Keeps what s_published will need (the batch's arrays are the
//  caller's).
static void
s_await_flush (chorus_coordinator_t *self, s_batch_t *batch)
{
    size_t done = 0;
    for (size_t i = 0; i < batch->count; i++)
        done += batch->published [i];
    if (done == 0)
        return;
    s_batch_t *kept = (s_batch_t *) zmalloc (sizeof (s_batch_t));
    kept->records = (s_record_t **) zmalloc (done * sizeof (s_record_t *));
    kept->flows = (const char **) zmalloc (done * sizeof (char *));
    kept->numbers = (uint64_t *) zmalloc (done * sizeof (uint64_t));
    kept->published = (bool *) zmalloc (done * sizeof (bool));
    for (size_t i = 0; i < batch->count; i++)
        if (batch->published [i]) {
            kept->records [kept->count] = batch->records [i];
            kept->flows [kept->count] = strdup (batch->flows [i]);
            kept->numbers [kept->count] = batch->numbers [i];
            kept->published [kept->count] = true;
            kept->count++;
        }
    s_mark_sent (kept, true);
    kept->ticket = chorus_flusher_request (self->flusher);
    zlistx_add_end (self->flushing, kept);
}

//  The batches whose flush succeeded are published: their records forget
//  them; those whose flush failed are published again, after a backoff
static void
s_flushed (chorus_coordinator_t *self)
{
    if (!self->flusher || zlistx_size (self->flushing) == 0)
        return;
    uint64_t flushed = chorus_flusher_flushed (self->flusher);
    int code = 0;
    uint64_t failed = chorus_flusher_failed (self->flusher, &code);
    size_t failures = 0;
    s_batch_t *batch;
    while ((batch = (s_batch_t *) zlistx_first (self->flushing))) {
        //  A later flush that succeeded covers an earlier one that failed
        if (batch->ticket <= flushed) {
            s_published (self, batch);
            if (self->flush_failure)
                zsys_info ("coordinator: node store %s is flushed to disk again",
                           self->node_dir);
            self->flush_failure = 0;
        }
        else
        if (batch->ticket <= failed) {
            s_mark_sent (batch, false);
            failures += batch->count;
        }
        else
            break;
        zlistx_delete (self->flushing, zlistx_cursor (self->flushing));
    }
    if (failures) {
        if (code == CHORUS_ECORRUPT && !self->damaged) {
            char what [512];
            snprintf (what, sizeof (what), "node store %s is damaged (flushing flow events to "
                      "disk)", self->node_dir);
            s_damaged (self, what);
        }
        self->publish_at = zclock_mono () + self->publish_backoff;
        self->publish_backoff = self->publish_backoff * 2 < S_PUBLISH_BACKOFF_MAX_MS?
                                self->publish_backoff * 2: S_PUBLISH_BACKOFF_MAX_MS;
        if (code != self->flush_failure)
            zsys_error ("coordinator: cannot flush %zu published flow event%s to disk in node "
                        "store %s: %s; they stay in the journal and are published again",
                        failures, failures == 1? "": "s", self->node_dir,
                        chorus_strerror (code));
        self->flush_failure = code;
    }
}

//  Hands what this turn journaled to the journal's writer, then carries
//  out what it recorded in batches already committed: trigger events are
//  acknowledged, commands sent and timers set, then the events published.
//  A batch is flushed to disk while this thread goes on with the next
//  (pipelined group commit); nothing a batch caused leaves before it is
//  committed. A command that could not be sent fails its try, and what
//  the engine makes of that goes round again. At most S_ACTIONS_PER_TURN
//  actions are carried out per turn of the loop, the rest in the turns
//  after, so that a fan-out starting thousands of items does not hold up
//  the control commands. 0, or -1 while the journal cannot commit.
static int
s_flush (chorus_coordinator_t *self)
{
    chorus_journal_submit (self->journal);
    int rc = s_journal_news (self);
    uint64_t durable = chorus_journal_durable (self->journal);
    s_release_held (self, durable);
    size_t ready = 0;
    while (ready < self->actions.size && ready < S_ACTIONS_PER_TURN
       &&  self->tickets [ready] <= durable)
        ready++;
    if (ready) {
        chorus_actions_t actions = self->actions;
        chorus_actions_init (&self->actions);
        //  The rest wait, before any made after them
        size_t rest = actions.size - ready;
        memmove (self->tickets, self->tickets + ready, rest * sizeof (uint64_t));
        for (size_t i = ready; i < actions.size; i++) {
            //  Their tickets were moved already: pushed as they are
            *chorus_actions_push (&self->actions) = actions.items [i];
        }
        actions.size = ready;
        zlistx_t *failed = zlistx_new ();
        for (size_t i = 0; i < actions.size; i++)
            s_act (self, &actions.items [i], failed);
        chorus_actions_clear (&actions);
        for (s_sent_t *sent = (s_sent_t *) zlistx_first (failed); sent;
             sent = (s_sent_t *) zlistx_next (failed)) {
            s_fail_try (self, sent);
            s_sent_destroy (&sent);
        }
        zlistx_destroy (&failed);
    }
    s_flushed (self);
    s_publish (self, durable);
    return rc;
}

//  --------------------------------------------------------------------------
//  Inputs to the engine

static void
s_on_reply (chorus_node_t *node, chorus_reply_t *reply, void *arg)
{
    s_sent_t *sent = (s_sent_t *) arg;
    chorus_coordinator_t *self = sent->self;
    //  Interrupted: we are stopping; the journal sends it again at restart
    chorus_flow_t *flow = chorus_reply_status (reply) == CHORUS_EINTERRUPTED? NULL:
                          chorus_flowset_lookup (self->flows, sent->flow);
    if (flow) {
        int status = chorus_reply_status (reply);
        //  The engine keeps the output as the payload it came as, and
        //  decodes it only if it reads into it; bytes that are no payload
        //  are null
        const void *payload = chorus_reply_payload (reply);
        size_t size = chorus_reply_size (reply);
        bool encoded = status == 0 && payload && chorus_value_is_payload (payload, size);
        json_t *output = status == 0 && !encoded? json_null (): NULL;
        const char *code = chorus_reply_code (reply);
        s_trace_try (self, sent, chorus_reply_command_id (reply),
                     status == 0? "done": status == CHORUS_ETIMEDOUT? "timeout": "error",
                     code? code: status == CHORUS_ETIMEDOUT? "timeout":
                     status == CHORUS_EUNKNOWN? "unknown": status == CHORUS_EFORBIDDEN?
                     "forbidden": status? "error": NULL,
                     status == 0? NULL: chorus_reply_message (reply)?
                     chorus_reply_message (reply): chorus_strerror (status));
        chorus_result_t result = {status == 0, status == CHORUS_ETIMEDOUT, output,
                                  chorus_reply_code (reply), chorus_reply_message (reply),
                                  chorus_reply_retryable (reply), encoded? payload: NULL,
                                  encoded? size: 0};
        chorus_actions_t actions;
        chorus_actions_init (&actions);
        if (chorus_flow_reply (flow, sent->key, sent->attempt, &result, s_now (), &actions) == 0)
            s_transition (self, flow, &actions);
        else
            s_keep_try (self, flow);
        chorus_actions_clear (&actions);
        json_decref (output);
    }
    s_sent_destroy (&sent);
}

static void
s_fire_timers (chorus_coordinator_t *self)
{
    uint64_t now = s_now ();
    char *id, *key;
    while (chorus_timers_pop (self->timers, now, &id, &key) == 0) {
        chorus_flow_t *flow = chorus_flowset_lookup (self->flows, id);
        if (flow) {
            chorus_actions_t actions;
            chorus_actions_init (&actions);
            if (chorus_flow_timer (flow, key, now, &actions) == 0)
                s_transition (self, flow, &actions);
            chorus_actions_clear (&actions);
        }
        free (id);
        free (key);
    }
}

//  A flow's id: the definition's name and what makes the start unique (an
//  event id, a command's idempotency key). Long keys are digested, so that
//  ids and the task keys made from them stay within the protocol's limits.
static char *
s_flow_id (const char *name, const char *unique)
{
    if (strlen (unique) <= 48)
        return zsys_sprintf ("%s-%s", name, unique);
    zdigest_t *digest = zdigest_new ();
    zdigest_update (digest, (const byte *) unique, strlen (unique));
    char *id = zsys_sprintf ("%s-%s", name, zdigest_string (digest));
    zdigest_destroy (&digest);
    return id;
}

//  The business key a flow of def would have with this input (JSON, or
//  the payload it came as), checked and canonicalised; 0, or -1 with the
//  problem in error
static int
s_check_business_key (chorus_flowdef_t *def, const json_t *input, const void *encoded,
                      size_t size, char *error, size_t error_size)
{
    if (!chorus_flowdef_key (def))
        return 0;
    json_t *decoded = input? NULL: chorus_value_unpack (encoded, size);
    json_t *context = json_pack ("{s:O}", "input", input? (json_t *) input:
                                 decoded? decoded: json_null ());
    const json_t *value = chorus_flowdef_lookup (context, chorus_flowdef_key (def));
    char *key = chorus_flow_canonical_key (value, error, error_size);
    json_decref (context);
    json_decref (decoded);
    bool bad = !key && error [0];
    free (key);
    return bad? -1: 0;
}

//  Starts a flow (or finds the one with the same id, or the live one with
//  the same business key) of an input as JSON, or as its payload
//  (encoded); NULL with the problem in error (unknown-flow, conflict,
//  bad-key) otherwise
static chorus_flow_t *
s_start_flow (chorus_coordinator_t *self, const char *name, const char *id, const json_t *input,
              const void *encoded, size_t size, const char *correlation, const char *cause,
              bool *existing, const char **code, char *error, size_t error_size)
{
    chorus_flowdef_t *def = s_newest (self, name);
    *code = "unknown-flow";
    snprintf (error, error_size, "%s", name);
    if (!def)
        return NULL;
    chorus_flow_t *flow = chorus_flowset_lookup (self->flows, id);
    if (flow && !streq (chorus_flowdef_name (chorus_flow_def (flow)), name)) {
        //  NAME-ID is the id: "a-b" with "c" and "a" with "b-c" meet
        *code = "conflict";
        snprintf (error, error_size, "flow id %s is taken by a flow of %s", id,
                  chorus_flowdef_name (chorus_flow_def (flow)));
        return NULL;
    }
    if (flow) {
        *existing = true;   //  the same start, or trigger event, again
        return flow;
    }
    *code = "bad-key";
    if (s_check_business_key (def, input, encoded, size, error, error_size))
        return NULL;
    chorus_actions_t actions;
    chorus_actions_init (&actions);
    flow = chorus_flowset_start (self->flows, def, id, input, encoded, size, s_now (), &actions,
                                 existing);
    if (flow && !*existing) {
        zhashx_update (self->records, id, s_record_new (correlation? correlation: id, cause));
        s_journal_definition (self, def);
        s_transition (self, flow, &actions);
        s_log (self, "flow %s started: %s v%d", id, name, chorus_flowdef_version (def));
    }
    chorus_actions_clear (&actions);
    *code = "error";
    if (!flow)
        snprintf (error, error_size, "cannot start a flow of %s", name);
    return flow;
}

//  An event on a topic that await steps wait on, offered to every flow of
//  a definition that awaits it; the flows that take it are journaled with
//  the round (before the event is acknowledged)
static void
s_offer_event (chorus_coordinator_t *self, chorus_event_t *event, const void *payload,
               size_t size)
{
    const char *topic = chorus_event_topic (event);
    if (!zhashx_lookup (self->awaited, topic))
        return;             //  a trigger alone: no pass over the flows
    //  A transition moves a flow between the set's lists: collect first
    zlistx_t *flows = zlistx_new ();
    for (chorus_flow_t *flow = chorus_flowset_first (self->flows); flow;
         flow = chorus_flowset_next (self->flows))
        if (chorus_flow_awaits_topic (chorus_flow_def (flow), topic))
            zlistx_add_end (flows, flow);
    for (chorus_flow_t *flow = (chorus_flow_t *) zlistx_first (flows); flow;
         flow = (chorus_flow_t *) zlistx_next (flows)) {
        chorus_actions_t actions;
        chorus_actions_init (&actions);
        int rc = chorus_flow_event (flow, topic, chorus_event_id (event), payload, size,
                                    s_now (), &actions);
        if (rc == 1) {
            s_log (self, "flow %s: took event %s on %s", chorus_flow_id (flow),
                   chorus_event_id (event), topic);
            s_transition (self, flow, &actions);
        }
        else
        if (rc == -1) {
            self->events_dropped++;
            s_log (self, "flow %s: event %s on %s matches an await, but the flow is %s: "
                   "dropped (%zu dropped so far)", chorus_flow_id (flow),
                   chorus_event_id (event), topic,
                   chorus_flow_state_name (chorus_flow_state (flow)), self->events_dropped);
        }
        chorus_actions_clear (&actions);
    }
    zlistx_destroy (&flows);
}

//  A trigger event: choreography hands over to orchestration
static int
s_on_trigger (chorus_node_t *node, chorus_event_t *event, void *arg)
{
    chorus_coordinator_t *self = (chorus_coordinator_t *) arg;
    const char *topic = chorus_event_topic (event);
    //  The flow keeps the input as the payload it came as, and decodes it
    //  only if it reads into it; a payload that is none is null
    const void *payload = chorus_event_payload (event);
    size_t size = chorus_event_size (event);
    bool encoded = payload && chorus_value_is_payload (payload, size);
    //  The flows that await it first: a flow the event starts does not
    //  take it for an await of its own
    s_offer_event (self, event, encoded? payload: NULL, encoded? size: 0);
    //  Starting a flow looks definitions up, which must not happen while
    //  iterating over the same table: collect the triggered ones first
    zlistx_t *triggered = zlistx_new ();
    for (chorus_flowdef_t *def = chorus_defset_first (self->defs); def;
         def = chorus_defset_next (self->defs)) {
        const char *trigger = chorus_flowdef_trigger (def);
        if (trigger && streq (trigger, topic))
            zlistx_add_end (triggered, def);
    }
    for (chorus_flowdef_t *def = (chorus_flowdef_t *) zlistx_first (triggered); def;
         def = (chorus_flowdef_t *) zlistx_next (triggered)) {
        //  The flow's id comes from the event's, so a redelivered event
        //  finds the flow it started instead of starting another
        char *id = s_flow_id (chorus_flowdef_name (def), chorus_event_id (event));
        bool existing = false;
        const char *code;
        char error [256];
        if (!s_start_flow (self, chorus_flowdef_name (def), id, encoded? NULL: json_null (),
                           encoded? payload: NULL, encoded? size: 0,
                           chorus_event_correlation (event), chorus_event_id (event), &existing,
                           &code, error, sizeof (error)))
            zsys_warning ("coordinator: event %s starts no flow of %s: %s: %s",
                          chorus_event_id (event), chorus_flowdef_name (def), code, error);
        free (id);
    }
    zlistx_destroy (&triggered);
    //  Journaled before the event is acknowledged, or it would come again:
    //  the acknowledgement waits for the batch that holds what the event
    //  started (or found: a flow started by an earlier delivery may not be
    //  committed yet), while this thread goes on
    if (self->held_size == self->held_max) {
        size_t max = self->held_max? self->held_max * 2: 64;
        s_held_t *held = (s_held_t *) realloc (self->held, max * sizeof (s_held_t));
        if (!held)
            abort ();
        self->held = held;
        self->held_max = max;
    }
    s_held_t held = {chorus_event_defer (event), chorus_journal_ticket (self->journal)};
    self->held [self->held_size++] = held;
    return 0;
}

//  The node is about to send a round of results. Trigger events wait for
//  their batch apart (s_on_trigger), and observed events promise nothing;
//  a command that changed a flow (flow.start, cancel, retry) replies once
//  the journal has committed all there is: then one commit makes the
//  round's replies durable (group commit)
static int
s_on_flush (chorus_node_t *node, void *arg)
{
    chorus_coordinator_t *self = (chorus_coordinator_t *) arg;
    if (!self->sync_due)
        return 0;
    self->sync_due = false;
    return s_commit (self);
}

//  --------------------------------------------------------------------------
//  Observing the mesh: the causal trace of every transaction

//  A trace entry is written for every event seen on the mesh, so it is
//  kept compact: 'T', seq and time (8 bytes each, big-endian), then id,
//  topic, service, instance and, if there is one, causation, each ending
//  in a NUL. Entries that start with '{' are JSON, from older journals.
#define S_TRACE_MARK 'T'
#define S_TRACE_HEAD 17

//  A command the coordinator sent for a task is traced too, each try once
//  its outcome is known (a reply, a timeout, or that it could not be
//  sent). Until its flow ends, a try is held in the flow's journal
//  records, which carry it with the flow's next state (see
//  s_journal_flow); when the flow ends, or S_TRIES_HELD_MAX have gathered,
//  they go to the transaction's trace together, as one entry: 'K', then a
//  MessagePack array [flow id, causation (nil: none), [try...]] whose key
//  is the first try's. A try is an array of 11: command id, whether the
//  key is whole (else it follows the flow's id and a '/'), task key,
//  service, command, try number, when it was sent (ms), how long its
//  outcome took to come (ms), outcome (0 done, 1 error, 2 timeout, 3
//  unsent), error code and message (nil: none). An id of 32 hex digits, as
//  the library makes them, is a bin of the 16 bytes they spell, any other
//  a str. A flow's page reads its tries from both the trace and the
//  flow's record. Older journals have one entry a try: 'C', then
//  when it was sent, when its outcome came and its try number (8 bytes
//  each, big-endian), then the command's id, flow id, task key, service,
//  command, outcome, causation, error code and error message, each ending
//  in a NUL (empty: none).
#define S_TRIES_MARK 'K'
#define S_TRY_VALUES 11
#define S_TRY_MARK 'C'
#define S_TRY_HEAD 25
#define S_TRY_FIELDS 9
#define S_TRY_MESSAGE_MAX 512       //  bytes of an error message kept
#define S_TRIES_SHOWN 20            //  tries of a task a flow's page lists, the last ones



//  Records one event of a transaction's trace
static void
s_trace (chorus_coordinator_t *self, const char *correlation, uint64_t seq, uint64_t time,
         const char *id, const char *topic, const char *service, const char *instance,
         const char *causation)
{
    const char *fields [5] = {id, topic, service, instance, causation};
    size_t size = S_TRACE_HEAD;
    for (int i = 0; i < 5; i++)
        size += fields [i]? strlen (fields [i]) + 1: 0;
    uint8_t buffer [512];
    uint8_t *entry = size <= sizeof (buffer)? buffer: (uint8_t *) malloc (size);
    if (!entry)
        return;
    entry [0] = S_TRACE_MARK;
    chorus__put_be64 (entry + 1, seq);
    chorus__put_be64 (entry + 9, time);
    size_t at = S_TRACE_HEAD;
    for (int i = 0; i < 5; i++)
        if (fields [i]) {
            size_t length = strlen (fields [i]) + 1;
            memcpy (entry + at, fields [i], length);
            at += length;
        }
    chorus_journal_put_trace (self->journal, correlation, time, id, (const char *) entry, size);
    if (entry != buffer)
        free (entry);
}

static bool s_try_fields (const char *entry, size_t size, const char *fields [S_TRY_FIELDS]);

//  A try's outcome, as its number
#define S_OUTCOMES 4
static const char *s_outcomes [S_OUTCOMES] = {"done", "error", "timeout", "unsent"};

//  An id: the 16 bytes (a bin) that the library's ids of 32 hex digits
//  spell, else as it is (a str)
#define S_ID_MAX 300                //  bytes of an id read, with its NUL
static void
s_write_id (chorus_record_t *out, const char *id)
{
    uint8_t bytes [16];
    size_t length = strlen (id);
    for (size_t i = 0; length == 32 && i < 32; i++) {
        const char *digit = strchr ("0123456789ABCDEF", id [i]);
        if (!digit || !*digit) {
            length = 0;
            break;
        }
        bytes [i / 2] = (uint8_t) ((i % 2? bytes [i / 2] << 4: 0) | (digit - "0123456789ABCDEF"));
    }
    if (length == 32)
        chorus_record_bin (out, bytes, sizeof (bytes));
    else
        chorus_record_str (out, id);
}

//  The next id a reader holds, into id ("" on a problem)
static void
s_read_id (chorus_reader_t *reader, char id [S_ID_MAX])
{
    id [0] = 0;
    if (chorus_reader_is_str (reader)) {
        char *text = chorus_reader_str (reader, false);
        if (text && strlen (text) < S_ID_MAX)
            strcpy (id, text);
        else
        if (text)
            chorus_reader_fail (reader, "an id is too long");
        free (text);
        return;
    }
    size_t size = 0;
    const uint8_t *bytes = (const uint8_t *) chorus_reader_bin (reader, &size, false);
    if (bytes && size == 16)
        for (size_t i = 0; i < 16; i++) {
            id [2 * i] = "0123456789ABCDEF" [bytes [i] >> 4];
            id [2 * i + 1] = "0123456789ABCDEF" [bytes [i] & 15];
            id [2 * i + 2] = 0;
        }
    else
    if (bytes)
        chorus_reader_fail (reader, "an id's bytes are not 16");
}

//  Records one try of a task's command, once its outcome is known: held
//  in its flow's record, to be journaled with the flow's next state. A
//  try of a flow no longer run goes to the trace at once.
static void
s_trace_try (chorus_coordinator_t *self, s_sent_t *sent, const char *command_id,
             const char *outcome, const char *code, const char *message)
{
    s_record_t *record = (s_record_t *) zhashx_lookup (self->records, sent->flow);
    if (!record)
        return;
    //  A try that was never sent has no command id: its try and key stand
    //  in, the try first (the journal's key keeps the id's first bytes)
    char unsent_id [300];
    if (!command_id || !*command_id) {
        snprintf (unsent_id, sizeof (unsent_id), "%d#%.250s", sent->attempt, sent->key);
        command_id = unsent_id;
    }
    char text [S_TRY_MESSAGE_MAX + 1];
    snprintf (text, sizeof (text), "%s", message? message: "");
    size_t flow_length = strlen (sent->flow);
    bool whole = strncmp (sent->key, sent->flow, flow_length) != 0
              || sent->key [flow_length] != '/';
    uint64_t now = s_now ();
    int kind = 0;
    while (kind < S_OUTCOMES - 1 && !streq (s_outcomes [kind], outcome))
        kind++;
    chorus_record_t *out = &record->tries;
    chorus_record_array (out, S_TRY_VALUES);
    s_write_id (out, command_id);
    chorus_record_bool (out, whole);
    chorus_record_str (out, whole? sent->key: sent->key + flow_length + 1);
    chorus_record_str (out, sent->service);
    chorus_record_str (out, sent->command);
    chorus_record_uint (out, (uint64_t) (sent->attempt > 0? sent->attempt: 1));
    chorus_record_uint (out, sent->at);
    chorus_record_uint (out, now > sent->at? now - sent->at: 0);
    chorus_record_uint (out, (uint64_t) kind);
    chorus_record_str (out, code && *code? code: NULL);
    chorus_record_str (out, *text? text: NULL);
    record->tries_count++;
    if (!chorus_flowset_lookup (self->flows, sent->flow))
        s_trace_tries (self, sent->flow, record);
}

//  The tries a flow's record holds go to the trace, as one entry, in the
//  pending batch
static void
s_trace_tries (chorus_coordinator_t *self, const char *flow, s_record_t *record)
{
    if (record->tries_count == 0)
        return;
    //  Its key: the first try's command id and when it was sent
    chorus_reader_t reader;
    chorus_reader_init (&reader, record->tries.data, record->tries.size);
    chorus_reader_tuple (&reader, S_TRY_VALUES);
    char first [S_ID_MAX];
    s_read_id (&reader, first);
    for (int skip = 0; skip < 5; skip++)        //  whole, key, service, command, try
        chorus_reader_skip (&reader, NULL, NULL);
    uint64_t sent = chorus_reader_uint (&reader, UINT64_MAX);
    chorus_record_t entry;
    chorus_record_init (&entry);
    chorus_record_raw (&entry, "K", 1);
    chorus_record_array (&entry, 3);
    chorus_record_str (&entry, flow);
    if (record->cause)
        s_write_id (&entry, record->cause);
    else
        chorus_record_nil (&entry);
    chorus_record_array (&entry, record->tries_count);
    chorus_record_raw (&entry, record->tries.data, record->tries.size);
    if (!reader.error)
        chorus_journal_put_trace (self->journal, record->correlation, sent, first,
                                  (const char *) entry.data, entry.size);
    chorus_record_clear (&entry);
    chorus_record_reset (&record->tries);
    record->tries_count = 0;
}

//  A try as JSON (new reference), or NULL if it cannot be made:
//  {kind: "command", id, causation, flow, key, task, step, item, run, undo,
//  service, command, attempt, time, sent, finished, duration_ms, outcome,
//  error}. Code and message: NULL or "" for none.
static json_t *
s_try_value (const char *id, const char *causation, const char *flow, const char *key,
             const char *service, const char *command, uint64_t attempt, uint64_t sent,
             uint64_t finished, const char *outcome, const char *code, const char *message)
{
    //  The task, from its key FLOW/STEP[/ITEM][:rN][/undo]
    size_t flow_length = strlen (flow);
    const char *task = strncmp (key, flow, flow_length) == 0 && key [flow_length] == '/'
                     ? key + flow_length + 1: key;
    size_t task_length = strlen (task);
    bool undo = task_length > 5 && streq (task + task_length - 5, "/undo");
    if (undo)
        task_length -= 5;
    size_t step_length = strcspn (task, "/:");
    if (step_length > task_length)
        step_length = task_length;
    int item = -1, run = 1;
    const char *rest = task + step_length;
    if (*rest == '/' && rest < task + task_length)
        item = atoi (rest + 1);
    const char *mark = strstr (task, ":r");
    if (mark && mark < task + task_length)
        run = atoi (mark + 2);
    code = code? code: "";
    message = message? message: "";
    json_t *error = *code || *message
                  ? json_pack ("{s:s, s:s}", "code", *code? code: "error", "message", message)
                  : json_null ();
    return json_pack ("{s:s, s:s, s:s?, s:s, s:s, s:s%, s:s%, s:o, s:i, s:b, s:s, s:s, s:I, "
                      "s:I, s:I, s:I, s:I, s:s, s:o}",
                      "kind", "command", "id", id,
                      "causation", causation && *causation? causation: NULL,
                      "flow", flow, "key", key, "task", task, task_length,
                      "step", task, step_length,
                      "item", item >= 0? json_integer (item): json_null (), "run", run,
                      "undo", undo, "service", service, "command", command,
                      "attempt", (json_int_t) attempt,
                      "time", (json_int_t) sent, "sent", (json_int_t) sent,
                      "finished", (json_int_t) finished,
                      "duration_ms", (json_int_t) (finished > sent? finished - sent: 0),
                      "outcome", outcome, "error", error);
}

//  The next try a reader holds (see s_trace_try), of flow `flow`, as JSON
//  (new reference); NULL with the problem in the reader if it is malformed
//  (or NULL if its JSON cannot be made)
static json_t *
s_try_read (chorus_reader_t *reader, const char *flow, const char *causation)
{
    if (!chorus_reader_tuple (reader, S_TRY_VALUES))
        return NULL;
    char id [S_ID_MAX];
    s_read_id (reader, id);
    bool whole = chorus_reader_bool (reader);
    char *key = chorus_reader_str (reader, false);
    char *service = chorus_reader_str (reader, false);
    char *command = chorus_reader_str (reader, false);
    uint64_t attempt = chorus_reader_uint (reader, INT_MAX);
    uint64_t sent = chorus_reader_uint (reader, INT64_MAX / 2);
    uint64_t took = chorus_reader_uint (reader, INT64_MAX / 2);
    uint64_t outcome = chorus_reader_uint (reader, S_OUTCOMES - 1);
    char *code = chorus_reader_str (reader, true);
    char *message = chorus_reader_str (reader, true);
    json_t *value = NULL;
    if (!reader->error) {
        char *full = whole? NULL: zsys_sprintf ("%s/%s", flow, key);
        value = s_try_value (id, causation, flow, full? full: key, service, command, attempt,
                             sent, sent + took, s_outcomes [outcome], code, message);
        zstr_free (&full);
    }
    free (key);
    free (service);
    free (command);
    free (code);
    free (message);
    return value;
}

//  Appends to `into` the tries a record holds, of flow `flow`
static void
s_held_tries (const char *flow, s_record_t *record, json_t *into)
{
    chorus_reader_t reader;
    chorus_reader_init (&reader, record->tries.data, record->tries.size);
    for (size_t i = 0; i < record->tries_count && !reader.error; i++) {
        json_t *value = s_try_read (&reader, flow, record->cause);
        if (value)
            json_array_append_new (into, value);
    }
}

//  Appends to `into` the tries of a trace entry of tries ('K'), or of one
//  try ('C'), of flow `flow` only when not NULL; false if the entry is
//  neither
static bool
s_entry_tries (const char *entry, size_t size, const char *flow, json_t *into)
{
    if (size && entry [0] == S_TRIES_MARK) {
        chorus_reader_t reader;
        chorus_reader_init (&reader, entry + 1, size - 1);
        chorus_reader_tuple (&reader, 3);
        char *owner = chorus_reader_str (&reader, false);
        char causation [S_ID_MAX] = "";
        if (!chorus_reader_nil (&reader))
            s_read_id (&reader, causation);
        size_t count = chorus_reader_array (&reader);
        if (!reader.error && (!flow || streq (owner, flow)))
            for (size_t i = 0; i < count && !reader.error; i++) {
                json_t *value = s_try_read (&reader, owner, causation);
                if (value)
                    json_array_append_new (into, value);
            }
        free (owner);
        return true;
    }
    const char *fields [S_TRY_FIELDS];
    if (!s_try_fields (entry, size, fields))
        return size && entry [0] == S_TRY_MARK;
    if (flow && !streq (fields [1], flow))
        return true;
    const uint8_t *head = (const uint8_t *) entry;
    json_t *value = s_try_value (fields [0], fields [6], fields [1], fields [2], fields [3],
                                 fields [4], chorus__get_be64 (head + 17),
                                 chorus__get_be64 (head + 1), chorus__get_be64 (head + 9),
                                 fields [5], fields [7], fields [8]);
    if (value)
        json_array_append_new (into, value);
    return true;
}

//  Orders tries by when they were sent, then as they came
typedef struct {
    json_t *value;              //  the try
    json_int_t sent;            //  when it was sent
    size_t order;               //  where it came
} s_sorted_try_t;

static int
s_by_sent (const void *a, const void *b)
{
    const s_sorted_try_t *x = (const s_sorted_try_t *) a, *y = (const s_sorted_try_t *) b;
    if (x->sent != y->sent)
        return x->sent < y->sent? -1: 1;
    return x->order < y->order? -1: x->order > y->order;
}

//  Puts a list of tries in the order they were sent
static void
s_sort_tries (json_t *tries)
{
    size_t count = json_array_size (tries);
    s_sorted_try_t *sorted = count > 1? (s_sorted_try_t *) calloc (count, sizeof *sorted): NULL;
    if (!sorted)
        return;
    for (size_t i = 0; i < count; i++) {
        sorted [i].value = json_incref (json_array_get (tries, i));
        sorted [i].sent = json_integer_value (json_object_get (sorted [i].value, "sent"));
        sorted [i].order = i;
    }
    qsort (sorted, count, sizeof *sorted, s_by_sent);
    json_array_clear (tries);
    for (size_t i = 0; i < count; i++)
        json_array_append_new (tries, sorted [i].value);
    free (sorted);
}

//  The fields of a try's trace entry of an older journal; false if it is
//  none or malformed
static bool
s_try_fields (const char *entry, size_t size, const char *fields [S_TRY_FIELDS])
{
    if (size < S_TRY_HEAD || entry [0] != S_TRY_MARK)
        return false;
    size_t at = S_TRY_HEAD;
    for (int i = 0; i < S_TRY_FIELDS; i++) {
        const char *end = at < size? (const char *) memchr (entry + at, 0, size - at): NULL;
        if (!end)
            return false;
        fields [i] = entry + at;
        at = (size_t) (end - entry) + 1;
    }
    return true;
}

static int
s_on_observed (chorus_node_t *node, chorus_event_t *event, void *arg)
{
    if (((chorus_coordinator_t *) arg)->console) {
        const char *fields [6] = {chorus_event_id (event), chorus_event_topic (event),
                                  chorus_event_service (event), chorus_event_instance (event),
                                  chorus_event_correlation (event),
                                  chorus_event_causation (event)};
        s_console_event ((chorus_coordinator_t *) arg, fields, chorus_event_seq (event),
                         chorus_event_timestamp (event), chorus_event_payload (event),
                         chorus_event_size (event));
    }
    s_trace ((chorus_coordinator_t *) arg, chorus_event_correlation (event),
             chorus_event_seq (event), chorus_event_timestamp (event), chorus_event_id (event),
             chorus_event_topic (event), chorus_event_service (event),
             chorus_event_instance (event), chorus_event_causation (event));
    return 0;
}

//  A trace entry as JSON (new reference), or NULL if it is malformed:
//  {id, causation, topic, service, instance, seq, time}
static json_t *
s_trace_json (const char *entry, size_t size)
{
    if (size && entry [0] == '{')
        return json_loadb (entry, size, 0, NULL);
    if (size < S_TRACE_HEAD || entry [0] != S_TRACE_MARK)
        return NULL;
    const char *fields [5] = {NULL};
    size_t at = S_TRACE_HEAD;
    for (int i = 0; i < 5 && at < size; i++) {
        const char *end = (const char *) memchr (entry + at, 0, size - at);
        if (!end)
            return NULL;
        fields [i] = entry + at;
        at = (size_t) (end - entry) + 1;
    }
    if (!fields [3])
        return NULL;
    return json_pack ("{s:s, s:s?, s:s, s:s, s:s, s:I, s:I}", "id", fields [0],
                      "causation", fields [4], "topic", fields [1], "service", fields [2],
                      "instance", fields [3],
                      "seq", (json_int_t) chorus__get_be64 ((const uint8_t *) entry + 1),
                      "time", (json_int_t) chorus__get_be64 ((const uint8_t *) entry + 9));
}

//  --------------------------------------------------------------------------
//  Control over the mesh: flow.start, status, list, cancel, retry, trace

static void
s_reply_json (chorus_reply_t *reply, json_t *value)
{
    void *payload;
    size_t size;
    char error [256];
    if (s_pack (value, &payload, &size, error, sizeof (error)))
        chorus_reply_set_error (reply, "too-big", error, false);
    else
    if (chorus_reply_set_payload (reply, payload, size))
        chorus_reply_set_error (reply, "too-big", chorus_node_error (NULL), false);
    free (payload);
    json_decref (value);
}

//  The command's payload as a JSON object; NULL (with the reply set to an
//  error) if it is not one
static json_t *
s_request (chorus_command_t *command, chorus_reply_t *reply)
{
    json_t *request = s_unpack (chorus_command_payload (command), chorus_command_size (command));
    if (!json_is_object (request)) {
        chorus_reply_set_error (reply, "bad-request", "the payload must be a JSON object", false);
        json_decref (request);
        return NULL;
    }
    return request;
}

//  The answer to a control request, for the mesh or the console: a value,
//  or an error code and why
typedef struct {
    json_t *value;              //  the answer (ours), NULL: an error
    const char *code;           //  the error's code
    char error [256];           //  why
    bool retryable;             //  may the same request succeed later
} s_answer_t;

static void
s_answer_error (s_answer_t *answer, const char *code, const char *message, bool retryable)
{
    answer->code = code;
    snprintf (answer->error, sizeof (answer->error), "%s", message);
    answer->retryable = retryable;
}

//  Sends the answer as the command's reply
static void
s_reply_answer (chorus_reply_t *reply, s_answer_t *answer)
{
    if (answer->value)
        s_reply_json (reply, answer->value);
    else
    if (answer->code)
        chorus_reply_set_error (reply, answer->code, answer->error, answer->retryable);
    answer->value = NULL;
}

//  The flow named by the request's "id"; NULL with the answer set otherwise
static chorus_flow_t *
s_requested_flow (chorus_coordinator_t *self, const json_t *request, s_answer_t *answer)
{
    const char *id = json_string_value (json_object_get (request, "id"));
    chorus_flow_t *flow = id? chorus_flowset_lookup (self->flows, id): NULL;
    if (!flow)
        s_answer_error (answer, "not-found", id? "no such flow on this coordinator":
                        "the request needs an \"id\"", false);
    return flow;
}

static void
s_on_start (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    chorus_coordinator_t *self = (chorus_coordinator_t *) arg;
    //  The reply says the flow runs: it waits for the journal (s_on_flush)
    self->sync_due = true;
    json_t *request = s_request (command, reply);
    if (!request)
        return;
    const char *name = json_string_value (json_object_get (request, "flow"));
    json_t *input = json_object_get (request, "input");
    if (!name || !s_newest (self, name)) {
        chorus_reply_set_error (reply, "unknown-flow", name? name: "the request needs a \"flow\"",
                                false);
        json_decref (request);
        return;
    }
    //  The flow's id is NAME-ID: the request's "id" (chorus flow start
    //  --id), else the command's idempotency key, so that a re-sent start
    //  finds its flow, here and not in the inbox's reply cache (which
    //  knows the key, not the flow)
    json_t *start_id = json_object_get (request, "id");
    const char *unique = json_string_value (start_id);
    char error [256];
    if (start_id && (!unique || chorus_flow_check_key ("id", unique, error, sizeof (error)))) {
        chorus_reply_set_error (reply, "bad-id", unique? error: "\"id\" must be a string", false);
        json_decref (request);
        return;
    }
    char *id = s_flow_id (name, unique? unique: chorus_command_idempotency (command));
    bool existing = false;
    const char *code;
    chorus_flow_t *flow = s_start_flow (self, name, id, input? input: json_null (), NULL, 0,
                                        chorus_command_correlation (command),
                                        chorus_command_id (command), &existing, &code, error,
                                        sizeof (error));
    free (id);
    //  Journaled by s_on_flush before this reply leaves
    if (flow)
        s_reply_json (reply, json_pack ("{s:s, s:b, s:s}", "id", chorus_flow_id (flow),
                                        "existing", existing, "state",
                                        chorus_flow_state_name (chorus_flow_state (flow))));
    else
        chorus_reply_set_error (reply, code, error, false);
    json_decref (request);
}

//  Replaces a flow status's input and outputs (its own and its steps')
//  by why they are left out
static void
s_omit_values (json_t *status, const char *why)
{
    json_t *omitted = json_pack ("{s:s}", "omitted", why);
    json_object_set (status, "input", omitted);
    if (!json_is_null (json_object_get (status, "output")))
        json_object_set (status, "output", omitted);
    size_t index;
    json_t *step;
    json_array_foreach (json_object_get (status, "steps"), index, step) {
        json_object_set (step, "output", omitted);
        size_t item_index;
        json_t *item;
        json_array_foreach (json_object_get (step, "items"), item_index, item)
            if (json_object_get (item, "output"))
                json_object_set (item, "output", omitted);
    }
    json_decref (omitted);
}

//  The items a status shows of each fan-out step when the request asks
//  for no range: the first S_STATUS_PAGE
#define S_STATUS_PAGE 100

//  The range of items the request asks for ("from", "to": indexes, both
//  included); 0, or -1 with the answer set to the problem
static int
s_status_range (const json_t *request, s_answer_t *answer, json_int_t *from, json_int_t *to)
{
    json_t *first = json_object_get (request, "from");
    json_t *last = json_object_get (request, "to");
    *from = json_is_integer (first)? json_integer_value (first): 0;
    *to = json_is_integer (last)? json_integer_value (last): *from + S_STATUS_PAGE - 1;
    const char *problem = (first && !json_is_integer (first)) || (last && !json_is_integer (last))
                        ? "\"from\" and \"to\" must be integers"
                        : *from < 0? "\"from\" must be 0 or more"
                        : *to < *from? "\"to\" must not be below \"from\"": NULL;
    if (problem)
        s_answer_error (answer, "bad-request", problem, false);
    return problem? -1: 0;
}

//  Keeps the items from..to of each fan-out step of a status, and gives
//  the step its item count and counts per state instead of the rest
static void
s_page_items (json_t *status, json_int_t from, json_int_t to)
{
    size_t index;
    json_t *step;
    json_array_foreach (json_object_get (status, "steps"), index, step) {
        json_t *items = json_object_get (step, "items");
        if (!json_is_array (items))
            continue;
        json_t *counts = json_object ();
        json_t *page = json_array ();
        size_t item_index;
        json_t *item;
        json_array_foreach (items, item_index, item) {
            const char *state = json_string_value (json_object_get (item, "state"));
            if (state) {
                json_int_t count = json_integer_value (json_object_get (counts, state));
                json_object_set_new (counts, state, json_integer (count + 1));
            }
            if ((json_int_t) item_index >= from && (json_int_t) item_index <= to)
                json_array_append (page, item);
        }
        json_object_set_new (step, "items_total",
                             json_integer ((json_int_t) json_array_size (items)));
        json_object_set_new (step, "counts", counts);
        json_object_set_new (step, "items_from", json_integer (from));
        json_object_set_new (step, "items", page);
    }
}

//  Sub-flows nested at most this deep are shown in a status
#define S_TREE_DEPTH 8

//  Puts each child flow's status (its first page of items) in place of
//  its id under the step, or the item, that runs it: the tree of flows
static void
s_status_tree (chorus_coordinator_t *self, json_t *status, int depth)
{
    size_t index;
    json_t *step;
    json_array_foreach (json_object_get (status, "steps"), index, step) {
        json_t *items = json_object_get (step, "items");
        size_t count = json_is_array (items)? json_array_size (items): 1;
        for (size_t i = 0; i < count; i++) {
            json_t *where = json_is_array (items)? json_array_get (items, i): step;
            const char *key = json_string_value (json_object_get (where, "child"));
            if (!key)
                continue;
            char *id = s_child_id (key);
            chorus_flow_t *child = chorus_flowset_lookup (self->flows, id);
            json_t *tree = NULL;
            if (child && depth < S_TREE_DEPTH) {
                tree = chorus_flow_status (child);
                json_object_del (tree, "input");
                json_object_del (tree, "parent");
                s_page_items (tree, 0, S_STATUS_PAGE - 1);
                s_status_tree (self, tree, depth + 1);
            }
            else
                tree = json_pack ("{s:s, s:s}", "id", id, "state", child? "not shown": "gone");
            json_object_set_new (where, "child", tree);
            free (id);
        }
    }
}

//  flow.status: {"id": FLOW-ID, "from": N, "to": M}
static void
s_status (chorus_coordinator_t *self, const json_t *request, s_answer_t *answer)
{
    json_int_t from, to;
    chorus_flow_t *flow = s_status_range (request, answer, &from, &to) == 0
                        ? s_requested_flow (self, request, answer): NULL;
    if (flow) {
        json_t *status = chorus_flow_status (flow);
        s_page_items (status, from, to);
        s_status_tree (self, status, 1);
        //  Its events that wait to be published, or could not be made
        s_record_t *record = (s_record_t *) zhashx_lookup (self->records, chorus_flow_id (flow));
        if (record && record->events_size)
            json_object_set_new (status, "unpublished_events",
                                 json_integer ((json_int_t) record->events_size));
        if (record && json_array_size (record->emit_errors))
            json_object_set (status, "event_errors", record->emit_errors);
        //  A status too big or too deep to send goes without its values
        void *data;
        size_t size;
        char error [256];
        if (s_pack (status, &data, &size, error, sizeof (error)))
            s_omit_values (status, error);
        free (data);
        answer->value = status;
    }
}

static void
s_on_status (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    json_t *request = s_request (command, reply);
    s_answer_t answer = {NULL};
    if (request) {
        s_status ((chorus_coordinator_t *) arg, request, &answer);
        s_reply_answer (reply, &answer);
    }
    json_decref (request);
}

static void
s_on_list (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    chorus_coordinator_t *self = (chorus_coordinator_t *) arg;
    json_t *request = s_unpack (chorus_command_payload (command), chorus_command_size (command));
    const char *state = json_is_object (request)?
                        json_string_value (json_object_get (request, "state")): NULL;
    json_t *list = json_array ();
    for (chorus_flow_t *flow = chorus_flowset_first (self->flows); flow;
         flow = chorus_flowset_next (self->flows)) {
        const char *name = chorus_flow_state_name (chorus_flow_state (flow));
        if (state && !streq (state, name))
            continue;
        //  A line per flow, read from the flow itself: not its status,
        //  which holds every item of a fan-out
        chorus_flowdef_t *def = chorus_flow_def (flow);
        uint64_t finished = chorus_flow_finished_at (flow);
        json_array_append_new (list, json_pack ("{s:s, s:s, s:i, s:s, s:I, s:o}",
                                                "id", chorus_flow_id (flow),
                                                "flow", chorus_flowdef_name (def),
                                                "version", chorus_flowdef_version (def),
                                                "state", name,
                                                "started",
                                                (json_int_t) chorus_flow_started_at (flow),
                                                "finished", finished?
                                                json_integer ((json_int_t) finished):
                                                json_null ()));
    }
    s_reply_json (reply, list);
    json_decref (request);
}

//  flow.cancel and flow.retry: an engine input, journaled (by the caller)
//  before the answer leaves
static void
s_control (chorus_coordinator_t *self, chorus_flow_t *flow, bool cancel, s_answer_t *answer)
{
    chorus_actions_t actions;
    chorus_actions_init (&actions);
    int rc = cancel? chorus_flow_cancel (flow, s_now (), &actions):
                     chorus_flow_retry (flow, s_now (), &actions);
    if (rc)
        s_answer_error (answer, "bad-state", cancel? "only a running flow can be cancelled":
                        "only a failed, cancelled or stuck flow can be retried", false);
    else {
        s_transition (self, flow, &actions);
        answer->value = json_pack ("{s:s, s:s}", "id", chorus_flow_id (flow),
                                   "state", chorus_flow_state_name (chorus_flow_state (flow)));
    }
    chorus_actions_clear (&actions);
}

static void
s_on_control (chorus_coordinator_t *self, chorus_command_t *command, chorus_reply_t *reply,
              bool cancel)
{
    self->sync_due = true;
    json_t *request = s_request (command, reply);
    s_answer_t answer = {NULL};
    chorus_flow_t *flow = request? s_requested_flow (self, request, &answer): NULL;
    if (flow)
        s_control (self, flow, cancel, &answer);
    s_reply_answer (reply, &answer);
    json_decref (request);
}

static void
s_on_cancel (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    s_on_control ((chorus_coordinator_t *) arg, command, reply, true);
}

static void
s_on_retry (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    s_on_control ((chorus_coordinator_t *) arg, command, reply, false);
}

//  flow.signal: {"id": FLOW-ID, "name": NAME, "payload": JSON, "signal_id":
//  SID}; SID defaults to the command's idempotency key, so that a re-sent
//  command is the same signal
//  signal_id: the id of a signal that comes without "signal_id"
static void
s_signal (chorus_coordinator_t *self, const json_t *request, const char *default_id,
          s_answer_t *answer)
{
    chorus_flow_t *flow = s_requested_flow (self, request, answer);
    if (!flow)
        return;
    const char *name = json_string_value (json_object_get (request, "name"));
    json_t *given = json_object_get (request, "signal_id");
    const char *signal_id = given? json_string_value (given): default_id;
    char error [256];
    if (!chorus_flow_signal_name_ok (name))
        s_answer_error (answer, "bad-request", "the request needs a \"name\": 1 to 64 "
                        "of A-Z a-z 0-9 . _ -", false);
    else
    if (given && (!signal_id
                  || chorus_flow_check_key ("signal id", signal_id, error, sizeof (error))))
        s_answer_error (answer, "bad-id", signal_id? error: "\"signal_id\" must be a string",
                        false);
    else
    if (!signal_id)
        s_answer_error (answer, "bad-request", "the request needs a \"signal_id\" or "
                        "the command an idempotency key", false);
    else {
        chorus_actions_t actions;
        chorus_actions_init (&actions);
        const char *step = NULL;
        int rc = chorus_flow_signal (flow, name, signal_id, json_object_get (request, "payload"),
                                     s_now (), &actions, &step);
        if (rc == -1) {
            snprintf (error, sizeof (error), "flow %s is %s: only a running flow takes signals",
                      chorus_flow_id (flow), chorus_flow_state_name (chorus_flow_state (flow)));
            s_answer_error (answer, "ended", error, false);
        }
        else
        if (rc == -2) {
            snprintf (error, sizeof (error), "flow %s holds %d events and signals, the most "
                      "a flow keeps", chorus_flow_id (flow), CHORUS_FLOW_MAIL_MAX);
            s_answer_error (answer, "full", error, false);
        }
        else {
            if (rc == 0) {
                s_log (self, "flow %s: signal %s (%s) %s", chorus_flow_id (flow), name,
                       signal_id, step? "taken": "kept");
                s_transition (self, flow, &actions);
            }
            //  Journaled (s_on_flush, s_console) before this answer leaves
            answer->value = json_pack ("{s:s, s:s, s:s, s:s, s:b, s:s?}",
                                       "id", chorus_flow_id (flow),
                                       "state", chorus_flow_state_name (chorus_flow_state (flow)),
                                       "signal", name, "signal_id", signal_id,
                                       "existing", rc == 1, "step", step);
        }
        chorus_actions_clear (&actions);
    }
}

static void
s_on_signal (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    json_t *request = s_request (command, reply);
    s_answer_t answer = {NULL};
    if (request) {
        s_signal ((chorus_coordinator_t *) arg, request, chorus_command_idempotency (command),
                  &answer);
        s_reply_answer (reply, &answer);
    }
    json_decref (request);
}

//  What a scan of a trace collects: its events and the commands sent
typedef struct {
    json_t *events;             //  the events
    json_t *commands;           //  the tries of commands
    const char *flow;           //  only the commands of this flow, NULL: all
} s_trace_scan_t;

static int
s_add_trace (const char *entry, size_t size, void *arg)
{
    s_trace_scan_t *scan = (s_trace_scan_t *) arg;
    if (!s_entry_tries (entry, size, scan->flow, scan->commands) && scan->events) {
        json_t *value = s_trace_json (entry, size);
        if (value)
            json_array_append_new (scan->events, value);
    }
    return 0;
}

//  flow.trace: {"correlation": ID}
static void
s_trace_of (chorus_coordinator_t *self, const json_t *request, s_answer_t *answer)
{
    const char *correlation = json_string_value (json_object_get (request, "correlation"));
    if (!correlation)
        s_answer_error (answer, "bad-request", "the request needs a \"correlation\"", false);
    else {
        s_trace_scan_t scan = {json_array (), json_array (), NULL};
        //  Committed first, to include what was just observed
        int rc = s_commit (self);
        if (rc == 0
        &&  chorus_journal_each_trace (self->journal, correlation, s_add_trace, &scan) < 0) {
            s_journal_failed (self, false);
            rc = -1;
        }
        if (rc) {
            s_answer_error (answer, "journal", chorus_journal_error (self->journal), true);
            json_decref (scan.events);
            json_decref (scan.commands);
        }
        else {
            //  And the tries its flows hold, not yet in the trace
            s_record_t *record;
            for (record = (s_record_t *) zhashx_first (self->records); record;
                 record = (s_record_t *) zhashx_next (self->records))
                if (record->tries_count && streq (record->correlation, correlation))
                    s_held_tries ((const char *) zhashx_cursor (self->records), record,
                                  scan.commands);
            s_sort_tries (scan.commands);
            answer->value = json_pack ("{s:s, s:o, s:o}", "correlation", correlation,
                                       "events", scan.events, "commands", scan.commands);
        }
    }
}

static void
s_on_trace (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    json_t *request = s_request (command, reply);
    s_answer_t answer = {NULL};
    if (request) {
        s_trace_of ((chorus_coordinator_t *) arg, request, &answer);
        s_reply_answer (reply, &answer);
    }
    json_decref (request);
}

//  --------------------------------------------------------------------------
//  The web console (chorus_console.c): its HTTP threads queue calls, which
//  are answered here, on our thread, as the control commands are

//  The most flows a bulk action acts on
#define S_BULK_MAX 1000

//  Newest first
static int
s_by_start (const void *a, const void *b)
{
    uint64_t one = chorus_flow_started_at (*(chorus_flow_t * const *) a);
    uint64_t other = chorus_flow_started_at (*(chorus_flow_t * const *) b);
    int order = one < other? 1: one > other? -1: 0;
    return order? order: strcmp (chorus_flow_id (*(chorus_flow_t * const *) a),
                                 chorus_flow_id (*(chorus_flow_t * const *) b));
}

//  The flows the filter selects, newest first (caller frees); their number
//  in *count
static chorus_flow_t **
s_select (chorus_coordinator_t *self, const json_t *filter, size_t *count)
{
    chorus_flow_t **flows = (chorus_flow_t **) malloc (
        (chorus_flowset_size (self->flows) + 1) * sizeof (chorus_flow_t *));
    *count = 0;
    if (!flows)
        return NULL;
    for (chorus_flow_t *flow = chorus_flowset_first (self->flows); flow;
         flow = chorus_flowset_next (self->flows))
        if (chorus_flow_query_matches (flow, filter))
            flows [(*count)++] = flow;
    qsort (flows, *count, sizeof (chorus_flow_t *), s_by_start);
    return flows;
}

//  {"filter": {..., "offset": N, "limit": M}}: a page of the flows selected
static void
s_console_list (chorus_coordinator_t *self, const json_t *request, s_answer_t *answer)
{
    json_t *filter = json_object_get (request, "filter");
    json_int_t offset = json_integer_value (json_object_get (filter, "offset"));
    json_int_t limit = json_integer_value (json_object_get (filter, "limit"));
    limit = limit > 0? limit: 50;
    size_t count;
    chorus_flow_t **flows = s_select (self, filter, &count);
    json_t *page = json_array ();
    for (size_t i = (size_t) offset; i < count && i < (size_t) (offset + limit); i++)
        json_array_append_new (page, chorus_flow_query_line (flows [i]));
    free (flows);
    answer->value = json_pack ("{s:I, s:I, s:I, s:o}", "total", (json_int_t) count,
                               "offset", offset, "limit", limit, "flows", page);
}

//  {"action": "retry" | "cancel", "filter": {...}}: the action on every
//  flow selected (at most S_BULK_MAX, newest first), with each one's outcome
static void
s_console_bulk (chorus_coordinator_t *self, const json_t *request, s_answer_t *answer)
{
    const char *action = json_string_value (json_object_get (request, "action"));
    bool cancel = action && streq (action, "cancel");
    size_t count;
    chorus_flow_t **flows = s_select (self, json_object_get (request, "filter"), &count);
    json_t *results = json_array ();
    size_t done = 0;
    for (size_t i = 0; i < count && i < S_BULK_MAX; i++) {
        s_answer_t one = {NULL};
        s_control (self, flows [i], cancel, &one);
        if (one.value) {
            json_object_set_new (one.value, "ok", json_true ());
            json_array_append_new (results, one.value);
            done++;
        }
        else
            json_array_append_new (results, json_pack ("{s:s, s:b, s:{s:s, s:s}}",
                                   "id", chorus_flow_id (flows [i]), "ok", false, "error",
                                   "code", one.code, "message", one.error));
    }
    free (flows);
    answer->value = json_pack ("{s:s, s:I, s:I, s:I, s:o}", "action", cancel? "cancel": "retry",
                               "selected", (json_int_t) count, "done", (json_int_t) done,
                               "failed", (json_int_t) (json_array_size (results) - done),
                               "results", results);
}

//  Whether a try is of a fan-out item that the status does not show (its
//  step's items are shown a page at a time)
static bool
s_off_page (json_t *status, json_t *entry)
{
    json_t *item = json_object_get (entry, "item");
    if (!json_is_integer (item))
        return false;
    const char *step_id = json_string_value (json_object_get (entry, "step"));
    size_t index;
    json_t *step;
    json_array_foreach (json_object_get (status, "steps"), index, step)
        if (step_id && streq (json_string_value (json_object_get (step, "id")), step_id)) {
            json_int_t from = json_integer_value (json_object_get (step, "items_from"));
            json_int_t shown = (json_int_t) json_array_size (json_object_get (step, "items"));
            return json_integer_value (item) < from || json_integer_value (item) >= from + shown;
        }
    return false;
}

//  Adds to a flow's status its correlation id and the tries of its
//  tasks' commands, from the trace and its record: the last S_TRIES_SHOWN of each task,
//  with how many older ones were left out; of a fan-out, those of the
//  items on the status's page
static void
s_add_tries (chorus_coordinator_t *self, chorus_flow_t *flow, json_t *status)
{
    s_record_t *record = (s_record_t *) zhashx_lookup (self->records, chorus_flow_id (flow));
    json_object_set_new (status, "correlation", record? json_string (record->correlation)
                                                      : json_null ());
    s_trace_scan_t scan = {NULL, json_array (), chorus_flow_id (flow)};
    if (record && (s_commit (self)
               ||  chorus_journal_each_trace (self->journal, record->correlation, s_add_trace,
                                              &scan) < 0))
        json_object_set_new (status, "tries_error",
                             json_string (chorus_journal_error (self->journal)));
    if (record)
        s_held_tries (chorus_flow_id (flow), record, scan.commands);
    s_sort_tries (scan.commands);
    //  Tries of each task (its key), then what is left out of each
    zhashx_t *counts = zhashx_new ();
    size_t index;
    json_t *value;
    json_array_foreach (scan.commands, index, value) {
        const char *key = json_string_value (json_object_get (value, "key"));
        zhashx_update (counts, key, (void *) ((uintptr_t) zhashx_lookup (counts, key) + 1));
    }
    json_t *tries = json_array ();
    json_t *omitted = json_object ();
    json_int_t off_page = 0;
    json_array_foreach (scan.commands, index, value) {
        const char *key = json_string_value (json_object_get (value, "key"));
        uintptr_t left = (uintptr_t) zhashx_lookup (counts, key);
        if (left > 1)
            zhashx_update (counts, key, (void *) (left - 1));
        if (s_off_page (status, value))
            off_page++;
        else
        if (left <= S_TRIES_SHOWN)
            json_array_append (tries, value);
        else {
            const char *task = json_string_value (json_object_get (value, "task"));
            char label [300];
            snprintf (label, sizeof (label), "%s%s", task,
                      json_is_true (json_object_get (value, "undo"))? "/undo": "");
            json_object_set_new (omitted, label,
                                 json_integer (json_integer_value (json_object_get (omitted,
                                                                                    label)) + 1));
        }
    }
    zhashx_destroy (&counts);
    json_decref (scan.commands);
    json_object_set_new (status, "tries", tries);
    json_object_set_new (status, "tries_omitted", omitted);
    json_object_set_new (status, "tries_off_page", json_integer (off_page));
}

//  A console call's answer, by its "op"; whether it changed a flow
static bool
s_console_call (chorus_coordinator_t *self, const json_t *request, s_answer_t *answer)
{
    const char *op = json_string_value (json_object_get (request, "op"));
    op = op? op: "";
    if (streq (op, "list"))
        s_console_list (self, request, answer);
    else
    if (streq (op, "status")) {
        s_status (self, request, answer);
        chorus_flow_t *flow = answer->value? s_requested_flow (self, request, answer): NULL;
        if (flow) {
            json_object_set_new (answer->value, "key",
                                 chorus_flow_business_key (flow)?
                                 json_string (chorus_flow_business_key (flow)): json_null ());
            json_object_set_new (answer->value, "definition",
                                 chorus_flow_query_graph (chorus_flow_def (flow)));
            s_add_tries (self, flow, answer->value);
        }
    }
    else
    if (streq (op, "trace"))
        s_trace_of (self, request, answer);
    else
    if (streq (op, "signal")) {
        //  A signal sent without an id gets one of its own
        zuuid_t *uuid = zuuid_new ();
        s_signal (self, request, uuid? zuuid_str (uuid): NULL, answer);
        zuuid_destroy (&uuid);
        return true;
    }
    else
    if (streq (op, "cancel") || streq (op, "retry")) {
        chorus_flow_t *flow = s_requested_flow (self, request, answer);
        if (flow)
            s_control (self, flow, streq (op, "cancel"), answer);
        return true;
    }
    else
    if (streq (op, "bulk")) {
        s_console_bulk (self, request, answer);
        return true;
    }
    else
        s_answer_error (answer, "bad-request", "no such console call", false);
    return false;
}

//  Answers the console's calls; what changed a flow is answered once the
//  journal has it, as the control commands are
static void
s_console (chorus_coordinator_t *self)
{
    chorus_console_call_t *calls [64];
    s_answer_t answers [64];
    size_t count = 0;
    bool changed = false;
    chorus_console_call_t *call;
    while (count < 64 && (call = chorus_console_next (self->console))) {
        memset (&answers [count], 0, sizeof (s_answer_t));
        changed |= s_console_call (self, chorus_console_call_request (call), &answers [count]);
        calls [count++] = call;
    }
    bool failed = changed && s_commit (self) != 0;
    for (size_t i = 0; i < count; i++) {
        if (failed && answers [i].value) {
            json_decref (answers [i].value);
            answers [i].value = NULL;
            s_answer_error (&answers [i], "journal", chorus_journal_error (self->journal), true);
        }
        if (answers [i].value)
            chorus_console_answer (self->console, calls [i], answers [i].value);
        else
            chorus_console_fail (self->console, calls [i], answers [i].code? answers [i].code:
                                 "internal", answers [i].error);
    }
}

//  An event seen (fields: id, topic, service, instance, correlation,
//  causation) or published, for the console's live tail
static void
s_console_event (chorus_coordinator_t *self, const char *fields [6], uint64_t seq,
                 uint64_t time, const void *data, size_t size)
{
    chorus_console_event (self->console, fields, seq, time, data, size);
}

const char *
chorus_coordinator_console_address (chorus_coordinator_t *self)
{
    return self->console? chorus_console_address (self->console): NULL;
}

//  --------------------------------------------------------------------------
//  Hot deploy: the flows directory loaded again

//  SIGHUPs asked for, by every coordinator of the process
static atomic_uint s_hangups = 0;

void
chorus_coordinator_hangup (void)
{
    atomic_fetch_add (&s_hangups, 1);
}

//  One subscription to a topic, as group "coordinator", once
static void
s_subscribe (chorus_coordinator_t *self, const char *topic, const char *what, const char *flow)
{
    if (zhashx_lookup (self->subscribed, topic))
        return;
    int rc = chorus_node_subscribe (self->node, topic, s_on_trigger, self);
    if (rc == 0)
        zhashx_insert (self->subscribed, topic, (void *) 1);
    else        //  tried again at the next reload
        zsys_error ("coordinator: cannot subscribe to %s '%s' of flow '%s': %s: %s", what,
                    topic, flow, chorus_strerror (rc), chorus_node_error (self->node));
}

//  The topics a definition's await steps wait on
static void
s_subscribe_awaits (chorus_coordinator_t *self, chorus_flowdef_t *def)
{
    for (size_t index = 0; index < chorus_flowdef_steps (def); index++) {
        const chorus_stepdef_t *step = chorus_flowdef_step (def, index);
        if (step->await_topic) {
            zhashx_update (self->awaited, step->await_topic, (void *) 1);
            s_subscribe (self, step->await_topic, "awaited topic", chorus_flowdef_name (def));
        }
    }
}

//  One subscription per distinct trigger topic of the deployed definitions,
//  and per topic their await steps wait on (and those of the versions that
//  recovered flows run on), as group "coordinator": durable, so that an
//  event published while the coordinator is down comes once it is back,
//  and is acknowledged only once journaled. A topic no definition has any
//  more stays subscribed (the node cannot take one back), and s_on_trigger
//  does nothing with its events
static void
s_subscribe_triggers (chorus_coordinator_t *self)
{
    for (chorus_flowdef_t *def = chorus_defset_first (self->defs); def;
         def = chorus_defset_next (self->defs)) {
        const char *trigger = chorus_flowdef_trigger (def);
        if (trigger)
            s_subscribe (self, trigger, "trigger", chorus_flowdef_name (def));
        s_subscribe_awaits (self, def);
    }
    for (chorus_flow_t *flow = chorus_flowset_first (self->flows); flow;
         flow = chorus_flowset_next (self->flows))
        if (!chorus_flow_finished (flow))
            s_subscribe_awaits (self, chorus_flow_def (flow));
}

//  Loads the flows directory again, and says why in the log
static int
s_reload (chorus_coordinator_t *self, const char *why)
{
    char error [1024];
    if (chorus_defset_load (self->defs, s_now (), error, sizeof (error))) {
        zsys_error ("coordinator: flows not reloaded (%s), the definitions loaded before stay "
                    "in force: %s", why, error);
        return -1;
    }
    s_subscribe_triggers (self);
    //  Which, in the log: "flows reloaded: a v1 (a.yaml), b v2 (b.yaml)"
    json_t *state = chorus_defset_json (self->defs);
    char *loaded = strdup ("");
    size_t index;
    json_t *def;
    json_array_foreach (json_object_get (state, "definitions"), index, def) {
        char *more = zsys_sprintf ("%s%s%s v%d (%s)", loaded, index? ", ": "",
                                   json_string_value (json_object_get (def, "flow")),
                                   (int) json_integer_value (json_object_get (def, "version")),
                                   json_string_value (json_object_get (def, "file")));
        free (loaded);
        loaded = more;
    }
    zsys_info ("coordinator: flows reloaded (%s): %s", why, *loaded? loaded: "none");
    free (loaded);
    json_decref (state);
    return 0;
}

int
chorus_coordinator_reload (chorus_coordinator_t *self)
{
    return s_reload (self, "asked");
}

//  A SIGHUP came, or the flows directory changed: load it again
static void
s_watch_flows (chorus_coordinator_t *self)
{
    unsigned hangups = atomic_load (&s_hangups);
    if (hangups != self->hangups_seen) {
        self->hangups_seen = hangups;
        s_reload (self, "SIGHUP");
    }
    else
    if (zclock_mono () >= self->scan_at) {
        if (chorus_defset_changed (self->defs))
            s_reload (self, "the directory changed");
        self->scan_at = zclock_mono () + S_SCAN_MS;
    }
}

static void
s_on_defs (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    chorus_coordinator_t *self = (chorus_coordinator_t *) arg;
    s_reply_json (reply, chorus_defset_json (self->defs));
}

//  --------------------------------------------------------------------------
//  Life cycle

chorus_coordinator_t *
chorus_coordinator_new (const chorus_coordinator_config_t *config, char *error,
                        size_t error_size)
{
    chorus_coordinator_t *self = (chorus_coordinator_t *) zmalloc (sizeof (chorus_coordinator_t));
    self->verbose = config->verbose;
    self->subscribed = zhashx_new ();
    self->awaited = zhashx_new ();
    self->hangups_seen = atomic_load (&s_hangups);
    self->journaled = zhashx_new ();
    self->records = zhashx_new ();
    zhashx_set_destructor (self->records, s_record_destroy);
    self->timers = chorus_timers_new ();
    self->unpublished = zlistx_new ();
    zlistx_set_duplicator (self->unpublished, (zlistx_duplicator_fn *) strdup);
    zlistx_set_destructor (self->unpublished, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_comparator (self->unpublished, (zlistx_comparator_fn *) strcmp);
    self->flushing = zlistx_new ();
    zlistx_set_destructor (self->flushing, s_batch_destroy);
    self->publish_backoff = S_PUBLISH_BACKOFF_MS;
    chorus_actions_init (&self->actions);
    chorus_record_init (&self->scratch);
    self->flows = chorus_flowset_new (config->keep_finished? config->keep_finished:
                                      S_KEEP_FINISHED);
    self->stats = chorus_coordinator_stats_new (config->stuck_after_s?
                                                config->stuck_after_s * 1000ull:
                                                S_STUCK_AFTER_MS);
    if (!config->flows_dir || !config->store_dir) {
        snprintf (error, error_size, "the coordinator needs a flows directory and a store");
        chorus_coordinator_destroy (&self);
        return NULL;
    }
    self->defs = chorus_defset_new (config->flows_dir);
    if (chorus_defset_load (self->defs, s_now (), error, error_size)) {
        chorus_coordinator_destroy (&self);
        return NULL;
    }
    chorus_defset_changed (self->defs);     //  what the directory holds now
    self->scan_at = zclock_mono () + S_SCAN_MS;
    self->store_dir = strdup (config->store_dir);
    self->journal_dir = zsys_sprintf ("%s/journal", config->store_dir);
    self->journal_sync = config->journal_sync;

    self->node = chorus_node_new ("coordinator");
    self->node_dir = zsys_sprintf ("%s/node", config->store_dir);
    chorus_node_set_store (self->node, self->node_dir);
    //  A flow's events are as durable as its journal: the journal says an
    //  event was published only once the node has it, so the node's store
    //  must survive what the journal survives
    chorus_node_set_durability (self->node, config->journal_sync? CHORUS_DURABLE_FSYNC:
                                CHORUS_DURABLE_PROCESS);
    chorus_node_set_verbose (self->node, config->verbose);
    //  Before the seeds: one may be named by a certificate in the trust
    //  directory
    int rc = config->cert_file || config->trust_dir?
             chorus_node_set_security (self->node, config->cert_file, config->trust_dir): 0;
    if (rc < 0) {
        snprintf (error, error_size, "cannot make the node secure with certificate '%s' and "
                  "trust directory '%s': %s: %s", config->cert_file? config->cert_file: "(none)",
                  config->trust_dir? config->trust_dir: "(none)", chorus_strerror (rc),
                  chorus_node_error (self->node));
        chorus_coordinator_destroy (&self);
        return NULL;
    }
    const char *mesh = config->mesh? config->mesh: getenv ("CHORUS_MESH");
    if (mesh && chorus_node_set_mesh (self->node, mesh)) {
        snprintf (error, error_size, "%s '%s' is not a mesh name (1-64 printable ASCII "
                  "characters, no spaces)", config->mesh? "--mesh": "CHORUS_MESH", mesh);
        chorus_coordinator_destroy (&self);
        return NULL;
    }
    if (config->listen)
        chorus_node_set_listen (self->node, config->listen);
    if (config->metrics)
        chorus_node_set_metrics (self->node, config->metrics);
    chorus_node_set_metrics_render (self->node, chorus_coordinator_stats_render, self->stats);
    if (config->advertise && chorus_node_set_advertise (self->node, config->advertise)) {
        snprintf (error, error_size, "bad --advertise: %s", chorus_node_error (self->node));
        chorus_coordinator_destroy (&self);
        return NULL;
    }
    for (const char **seed = config->seeds; seed && *seed; seed++)
        chorus_node_add_seed (self->node, *seed);
    if (config->beacon_port)
        chorus_node_set_beacon (self->node, config->beacon_port);
    if (config->heartbeat_ms)
        chorus_node_set_heartbeat (self->node, config->heartbeat_ms, config->evasive_ms,
                                   config->expired_ms);
    if (config->http
    &&  !(self->console = chorus_console_new (config->http, config->http_token, error,
                                              error_size))) {
        chorus_coordinator_destroy (&self);
        return NULL;
    }
    return self;
}

void
chorus_coordinator_destroy (chorus_coordinator_t **self_p)
{
    chorus_coordinator_t *self = *self_p;
    if (!self)
        return;
    //  Its requests waiting for us get an answer that we are stopping
    chorus_console_destroy (&self->console);
    //  A clean stop flushes what waits for its flush here, so that the
    //  next start does not publish it again
    if (self->flusher) {
        chorus_flusher_destroy (&self->flusher);
        if (zlistx_size (self->flushing) && !self->damaged
        &&  chorus_node_flush (self->node) == 0)
            for (s_batch_t *batch = (s_batch_t *) zlistx_first (self->flushing); batch;
                 batch = (s_batch_t *) zlistx_next (self->flushing))
                s_published (self, batch);
    }
    zlistx_destroy (&self->flushing);
    //  What is still pending: events observed, events published
    if (self->journal && !self->damaged && chorus_journal_commit (self->journal))
        zsys_error ("coordinator: %s", chorus_journal_error (self->journal));
    //  Trigger events whose flows are committed are acknowledged; the
    //  others come again
    if (self->journal)
        s_release_held (self, chorus_journal_durable (self->journal));
    for (size_t i = 0; i < self->held_size; i++)
        chorus_deferred_destroy (&self->held [i].deferred);
    free (self->held);
    chorus_node_destroy (&self->node);    //  stops the scrapes, then their figures go
    chorus_coordinator_stats_destroy (&self->stats);
    chorus_journal_destroy (&self->journal);
    chorus_flowset_destroy (&self->flows);
    chorus_actions_clear (&self->actions);
    free (self->tickets);
    chorus_record_clear (&self->scratch);
    chorus_timers_destroy (&self->timers);
    zlistx_destroy (&self->unpublished);
    zhashx_destroy (&self->records);
    zhashx_destroy (&self->journaled);
    //  After the flows, which point to their definitions
    chorus_defset_destroy (&self->defs);
    zhashx_destroy (&self->subscribed);
    zhashx_destroy (&self->awaited);
    free (self->store_dir);
    free (self->journal_dir);
    free (self->node_dir);
    free (self);
    *self_p = NULL;
}

//  A journaled flow that cannot be rebuilt: the journal is damaged, and
//  the coordinator does not start without it; returns 1 to stop reading
static int
s_unrecoverable (chorus_coordinator_t *self, const char *id, const char *why)
{
    char what [768];
    snprintf (what, sizeof (what), "journal %.200s is damaged: flow %.120s: %.400s",
              self->journal_dir, id, why);
    s_damaged (self, what);
    return 1;
}

//  A flow being rebuilt from its records, which come one at a time, its
//  snapshot first, then its deltas in order
typedef struct {
    chorus_coordinator_t *self;         //  the coordinator
    char id [256];                      //  the flow, "" before the first
    chorus_flow_t *flow;                //  as rebuilt so far
    s_record_t *record;                 //  our part of it, so far
    size_t migrated;                    //  flows whose record was of format 1
} s_recovery_t;

//  The definition a journaled flow started with; NULL after stopping the
//  recovery (returns 1 in *rc)
static chorus_flowdef_t *
s_recover_definition (s_recovery_t *recovery, const char *name, int version, int *rc)
{
    chorus_coordinator_t *self = recovery->self;
    char why [768] = "";
    chorus_flowdef_t *def = s_version (self, name, version, why, sizeof (why));
    if (def) {
        char key [128];
        snprintf (key, sizeof (key), "%s/%d", name, version);
        zhashx_update (self->journaled, key, (void *) 1);
        return def;
    }
    chorus_journal_failure_t failure = chorus_journal_failure (self->journal);
    if (failure == CHORUS_JOURNAL_OK)
        *rc = s_unrecoverable (self, recovery->id, why);
    else {
        if (failure == CHORUS_JOURNAL_DAMAGED)
            s_damaged (self, why);
        else
            snprintf (self->error, sizeof (self->error), "%s", why);
        *rc = 1;
    }
    return NULL;
}

//  Our part of a record of format 1: the events the flow still had to
//  publish when the coordinator stopped, and those it could not make
static int
s_recover_legacy_events (s_recovery_t *recovery, json_t *json)
{
    s_record_t *record = recovery->record;
    const char *id = recovery->id;
    json_t *emitted = json_object_get (json, "emitted");
    json_t *emits = json_object_get (json, "emits");
    json_t *errors = json_object_get (json, "emit_errors");
    if ((emitted && !json_is_integer (emitted)) || (emits && !json_is_array (emits))
    ||  (errors && !json_is_array (errors)))
        return s_unrecoverable (recovery->self, id, "its record does not decode (events)");
    record->emitted = emitted? (uint64_t) json_integer_value (emitted): 0;
    size_t index;
    json_t *emit;
    json_array_foreach (emits, index, emit) {
        const char *topic = json_string_value (json_object_get (emit, "topic"));
        json_t *n = json_object_get (emit, "n");
        if (!topic || (n && !json_is_integer (n)))
            return s_unrecoverable (recovery->self, id, "its record does not decode (an event)");
        //  Journals from before numbered events: number them now, once,
        //  since the record is rewritten in the current format
        json_int_t number = n? json_integer_value (n): (json_int_t) ++record->emitted;
        void *data;
        size_t size;
        char error [256];
        if (s_pack (json_object_get (emit, "payload"), &data, &size, error, sizeof (error))) {
            zsys_error ("coordinator: flow %s: event %s cannot be published: its payload %s",
                        id, topic, error);
            json_array_append_new (record->emit_errors, json_pack ("{s:s, s:I, s:s}", "topic",
                                   topic, "n", number, "error", error));
            continue;
        }
        s_events_add (record, (uint64_t) number, strdup (topic), data, size);
    }
    if (errors)
        json_array_extend (record->emit_errors, errors);
    return 0;
}

//  A flow's record of format 1: its whole state as JSON, to be rewritten
//  as a snapshot once the flow is rebuilt
static int
s_recover_legacy (s_recovery_t *recovery, const char *text, size_t size)
{
    chorus_coordinator_t *self = recovery->self;
    const char *id = recovery->id;
    json_error_t parse_error;
    json_t *json = json_loadb (text, size, 0, &parse_error);
    if (!json_is_object (json)) {
        char why [256];
        snprintf (why, sizeof (why), "its record does not decode (%s)", json? "not a JSON "
                  "object": parse_error.text);
        json_decref (json);
        return s_unrecoverable (self, id, why);
    }
    json_t *state = json_object_get (json, "state");
    const char *name = json_string_value (json_object_get (state, "flow"));
    json_t *version = json_object_get (state, "version");
    const char *correlation = json_string_value (json_object_get (json, "correlation"));
    const char *cause = json_string_value (json_object_get (json, "cause"));
    if (!json_is_object (state) || !name || !json_is_integer (version)
    ||  (json_object_get (json, "correlation") && !correlation)
    ||  (json_object_get (json, "cause") && !cause)) {
        json_decref (json);
        return s_unrecoverable (self, id, "its record does not decode (no flow state)");
    }
    int rc = 0;
    chorus_flowdef_t *def = s_recover_definition (recovery, name,
                                                  (int) json_integer_value (version), &rc);
    char error [256] = "";
    chorus_flow_t *flow = def? chorus_flow_load (def, state, error, sizeof (error)): NULL;
    if (def && !flow) {
        char why [512];
        snprintf (why, sizeof (why), "its state does not load: %s", error);
        rc = s_unrecoverable (self, id, why);
    }
    if (flow) {
        recovery->flow = flow;
        recovery->record = s_record_new (correlation? correlation: id, cause);
        recovery->record->legacy = true;
        rc = s_recover_legacy_events (recovery, json);
    }
    json_decref (json);
    return rc;
}

//  Our part of a record: [emitted, events, errors] (after, in a snapshot,
//  what the flow started with), then [try...] when `tries` (else it holds
//  none); 0, or -1 with the problem in the reader
static int
s_read_events (chorus_reader_t *reader, s_record_t *record, bool tries)
{
    record->emitted = chorus_reader_uint (reader, UINT64_MAX);
    s_events_clear (record);
    size_t count = chorus_reader_array (reader);
    for (size_t i = 0; i < count && !reader->error; i++) {
        chorus_reader_tuple (reader, 3);
        uint64_t n = chorus_reader_uint (reader, UINT64_MAX);
        char *topic = chorus_reader_str (reader, false);
        size_t size;
        const void *payload = chorus_reader_bin (reader, &size, true);
        void *copy = payload? malloc (size? size: 1): NULL;
        if (copy)
            memcpy (copy, payload, size);
        if (topic)
            s_events_add (record, n, topic, copy, size);
        else
            free (copy);
    }
    json_array_clear (record->emit_errors);
    count = chorus_reader_array (reader);
    for (size_t i = 0; i < count && !reader->error; i++) {
        chorus_reader_tuple (reader, 3);
        uint64_t n = chorus_reader_uint (reader, UINT64_MAX);
        char *topic = chorus_reader_str (reader, false);
        char *error = chorus_reader_str (reader, false);
        if (topic && error)
            json_array_append_new (record->emit_errors, json_pack ("{s:s, s:I, s:s}", "topic",
                                   topic, "n", (json_int_t) n, "error", error));
        free (topic);
        free (error);
    }
    chorus_record_reset (&record->tries);
    record->tries_count = 0;
    count = tries? chorus_reader_array (reader): 0;
    for (size_t i = 0; i < count && !reader->error; i++) {
        //  Each is checked as the console will read it, and kept as it is
        chorus_reader_t check = *reader;
        json_decref (s_try_read (&check, "", NULL));
        if (check.error)
            chorus_reader_fail (reader, "a try of a command that it holds is malformed");
        const void *data;
        size_t size;
        chorus_reader_skip (reader, &data, &size);
        if (!reader->error) {
            chorus_record_raw (&record->tries, data, size);
            record->tries_count++;
        }
    }
    return chorus_reader_done (reader)? 0: -1;
}

//  A record of format 2, the flow's snapshot or its next delta
static int
s_recover_record (s_recovery_t *recovery, uint64_t number, const void *data, size_t size)
{
    chorus_coordinator_t *self = recovery->self;
    const char *id = recovery->id;
    char why [768];
    const char *problem = NULL;
    chorus_journal_envelope_t envelope;
    if (chorus_journal_envelope_read (id, number, data, size, &envelope, &problem)) {
        snprintf (why, sizeof (why), "its record %" PRIu64 " does not decode: %s", number,
                  problem);
        return s_unrecoverable (self, id, why);
    }
    const char *kind = envelope.kind == CHORUS_JOURNAL_SNAPSHOT? "a snapshot": "a delta";
    char error [256] = "";
    if (!recovery->flow) {
        if (recovery->record)
            return s_unrecoverable (self, id, "it has records of two formats");
        if (envelope.kind != CHORUS_JOURNAL_SNAPSHOT) {
            snprintf (why, sizeof (why), "its first record, %" PRIu64 ", is not a snapshot: "
                      "the records before it are missing", number);
            return s_unrecoverable (self, id, why);
        }
        chorus_reader_t *reader = &envelope.coordinator;
        char *name = NULL, *correlation = NULL, *cause = NULL;
        int version = 0;
        size_t fields = chorus_reader_array (reader);
        if (!reader->error && fields != 7 && fields != 8)
            chorus_reader_fail (reader, "an array has the wrong number of values");
        if (!reader->error) {
            name = chorus_reader_str (reader, false);
            version = (int) chorus_reader_int (reader, 1, INT_MAX);
            correlation = chorus_reader_str (reader, false);
            cause = chorus_reader_str (reader, true);
        }
        int rc = 0;
        chorus_flowdef_t *def = reader->error? NULL:
                                s_recover_definition (recovery, name, version, &rc);
        recovery->record = s_record_new (correlation? correlation: id, cause);
        free (name);
        free (correlation);
        free (cause);
        if (rc)
            return rc;
        if (def && s_read_events (reader, recovery->record, fields == 8) == 0) {
            recovery->flow = chorus_flow_restore (def, &envelope.engine, error, sizeof (error));
            if (recovery->flow && strcmp (chorus_flow_id (recovery->flow), id) != 0) {
                snprintf (error, sizeof (error), "it is the snapshot of flow %s",
                          chorus_flow_id (recovery->flow));
                chorus_flow_destroy (&recovery->flow);
            }
        }
        else
            snprintf (error, sizeof (error), "%s", reader->error);
        recovery->record->journaled = true;
        recovery->record->first = number;
        recovery->record->snapshot_size = size;
    }
    else {
        s_record_t *record = recovery->record;
        if (number != record->next || envelope.kind != CHORUS_JOURNAL_DELTA) {
            snprintf (why, sizeof (why), "its record %" PRIu64 " (%s) follows record %" PRIu64
                      ": %s", number, kind, record->next - 1, number != record->next?
                      "the records in between are missing": "a delta was expected");
            return s_unrecoverable (self, id, why);
        }
        size_t fields = chorus_reader_array (&envelope.coordinator);
        if (!envelope.coordinator.error && fields != 3 && fields != 4)
            chorus_reader_fail (&envelope.coordinator, "an array has the wrong number of values");
        if (envelope.coordinator.error
        ||  s_read_events (&envelope.coordinator, record, fields == 4))
            snprintf (error, sizeof (error), "%s", envelope.coordinator.error);
        else
        if (!chorus_reader_nil (&envelope.engine))  //  nil: only our part changed
            chorus_flow_apply (recovery->flow, &envelope.engine, error, sizeof (error));
        record->delta_size += size;
    }
    if (error [0]) {
        snprintf (why, sizeof (why), "its record %" PRIu64 " (%s) does not load: %s", number,
                  kind, error);
        return s_unrecoverable (self, id, why);
    }
    recovery->record->next = number + 1;
    //  What the envelope says must be what the record made of the flow
    chorus_flow_state_t state = chorus_flow_state (recovery->flow);
    if ((int) state != envelope.state || envelope.unpublished != recovery->record->events_size) {
        snprintf (why, sizeof (why), "its record %" PRIu64 " (%s) says the flow is %s with %"
                  PRIu64 " events to publish, but it makes the flow %s with %zu", number, kind,
                  chorus_flow_state_name ((chorus_flow_state_t) envelope.state),
                  envelope.unpublished, chorus_flow_state_name (state),
                  recovery->record->events_size);
        return s_unrecoverable (self, id, why);
    }
    return 0;
}

//  A flow rebuilt: it joins the others, and is asked what to re-send and
//  re-arm; one of format 1 is rewritten as a snapshot
static void
s_recovered (s_recovery_t *recovery)
{
    chorus_coordinator_t *self = recovery->self;
    chorus_flow_t *flow = recovery->flow;
    s_record_t *record = recovery->record;
    recovery->flow = NULL;
    recovery->record = NULL;
    if (!flow) {
        if (record)
            s_record_destroy ((void **) &record);
        return;
    }
    const char *id = chorus_flow_id (flow);
    record->changed = chorus_flow_last_change (flow);
    zhashx_update (self->records, id, record);
    chorus_flowset_insert (self->flows, flow);
    if (record->events_size)
        zlistx_add_end (self->unpublished, (void *) id);
    if (record->legacy) {
        s_journal_flow (self, flow, record, true);
        recovery->migrated++;
    }
    if (chorus_flow_finished (flow)) {
        char *evicted = chorus_flowset_finished (self->flows, flow);
        if (evicted) {
            s_forget (self, evicted);
            free (evicted);
        }
    }
    else {
        chorus_actions_t actions;
        chorus_actions_init (&actions);
        chorus_flow_resume (flow, s_now (), &actions);
        for (size_t i = 0; i < actions.size; i++)
            s_queue_action (self, &actions.items [i]);
        actions.size = 0;
        chorus_actions_clear (&actions);
    }
}

//  Takes the next record of the journal; a record that does not decode or
//  does not load stops the recovery
static int
s_recover (const char *id, uint64_t number, const void *data, size_t size, void *arg)
{
    s_recovery_t *recovery = (s_recovery_t *) arg;
    if (strcmp (id, recovery->id) != 0) {
        s_recovered (recovery);
        snprintf (recovery->id, sizeof (recovery->id), "%s", id);
    }
    if (number == CHORUS_JOURNAL_LEGACY)
        return s_recover_legacy (recovery, (const char *) data, size);
    return s_recover_record (recovery, number, data, size);
}

//  The journal: opened, and every flow in it recovered; 0 or -1
static int
s_open_journal (chorus_coordinator_t *self)
{
    zsys_dir_create ("%s", self->store_dir);
    char error [768];
    chorus_journal_failure_t failure;
    self->journal = chorus_journal_new (self->journal_dir, true, &failure, error, sizeof (error));
    if (!self->journal) {
        if (failure == CHORUS_JOURNAL_DAMAGED)
            s_damaged (self, error);
        else
            snprintf (self->error, sizeof (self->error), "%s", error);
        return -1;
    }
    chorus_journal_set_sync (self->journal, self->journal_sync);
    s_recovery_t recovery;
    memset (&recovery, 0, sizeof (recovery));
    recovery.self = self;
    int rc = chorus_journal_each_record (self->journal, s_recover, &recovery);
    if (self->damaged || self->error [0] || rc < 0) {
        chorus_flow_destroy (&recovery.flow);
        s_record_destroy ((void **) &recovery.record);
    }
    else
        s_recovered (&recovery);
    if (recovery.migrated)
        zsys_info ("coordinator: journal %s: %zu flows rewritten from the format of earlier "
                   "versions", self->journal_dir, recovery.migrated);
    if (rc < 0) {
        if (chorus_journal_failure (self->journal) == CHORUS_JOURNAL_DAMAGED)
            s_damaged (self, chorus_journal_error (self->journal));
        else
            snprintf (self->error, sizeof (self->error), "%s",
                      chorus_journal_error (self->journal));
        return -1;
    }
    if (self->damaged || self->error [0])
        return -1;
    s_log (self, "recovered %zu flows", chorus_flowset_size (self->flows));
    return 0;
}

//  About once a second, the live flows are counted and the figures copied
//  for /metrics
static void
s_count_flows (chorus_coordinator_t *self)
{
    uint64_t now = s_now ();
    if (!chorus_coordinator_stats_due (self->stats, now))
        return;
    //  Live flows come first; the finished ones after them need no count
    for (chorus_flow_t *flow = chorus_flowset_first (self->flows);
         flow && !chorus_flow_finished (flow); flow = chorus_flowset_next (self->flows)) {
        s_record_t *record = (s_record_t *) zhashx_lookup (self->records, chorus_flow_id (flow));
        chorus_coordinator_stats_live (self->stats, flow, record? record->changed: now, now);
    }
    chorus_coordinator_stats_copy (self->stats, self->journal, now);
}

int
chorus_coordinator_start (chorus_coordinator_t *self)
{
    if (s_open_journal (self))
        return -1;
    //  Commits from here on are flushed by the journal's writer thread
    if (chorus_journal_start_writer (self->journal)) {
        snprintf (self->error, sizeof (self->error), "%s", chorus_journal_error (self->journal));
        return -1;
    }
    s_subscribe_triggers (self);
    chorus_node_observe (self->node, "", false, s_on_observed, self);
    chorus_node_on_flush (self->node, s_on_flush, self);
    chorus_node_handle (self->node, "flow.start", s_on_start, self);
    chorus_node_handle (self->node, "flow.status", s_on_status, self);
    chorus_node_handle (self->node, "flow.list", s_on_list, self);
    chorus_node_handle (self->node, "flow.cancel", s_on_cancel, self);
    chorus_node_handle (self->node, "flow.retry", s_on_retry, self);
    chorus_node_handle (self->node, "flow.signal", s_on_signal, self);
    chorus_node_handle (self->node, "flow.trace", s_on_trace, self);
    chorus_node_handle (self->node, "flow.defs", s_on_defs, self);
    //  The gauges as the journal left them, before the first scrape
    s_count_flows (self);
    int code = chorus_node_start (self->node);
    if (code < 0) {
        char what [512];      //  the detail may be cut; the advice after it is not
        snprintf (what, sizeof (what), "node store %s is damaged (%s)", self->node_dir,
                  chorus_node_error (self->node));
        if (code == CHORUS_ECORRUPT)
            s_damaged (self, what);
        else
            snprintf (self->error, sizeof (self->error), "cannot join the mesh: %s: %s",
                      chorus_strerror (code), chorus_node_error (self->node));
        return -1;
    }
    if (self->journal_sync && !(self->flusher = chorus_flusher_new (self->node))) {
        snprintf (self->error, sizeof (self->error), "cannot start a thread: %s",
                  strerror (errno));
        return -1;
    }
    //  What recovery re-sends; a failed commit is tried again
    if (s_flush (self) && self->damaged)
        return -1;
    return 0;
}

chorus_node_t *
chorus_coordinator_node (chorus_coordinator_t *self)
{
    return self->node;
}

const char *
chorus_coordinator_error (chorus_coordinator_t *self)
{
    return self->error;
}

bool
chorus_coordinator_damaged (chorus_coordinator_t *self)
{
    return self->damaged;
}

int
chorus_coordinator_run (chorus_coordinator_t *self, int timeout_ms)
{
    if (self->damaged)
        return -1;
    int64_t end = timeout_ms < 0? -1: zclock_mono () + timeout_ms;
    //  The node's socket, the journal's writer (a batch it committed
    //  releases what the batch caused), the console's calls and the node
    //  store's flusher (a flush lets the journal forget events), those there
    zmq_pollitem_t items [4] = {{zsock_resolve (chorus_node_socket (self->node)), 0, ZMQ_POLLIN,
                                 0}};
    int polled = 1;
    int fds [3] = {chorus_journal_fd (self->journal),
                   self->console? chorus_console_fd (self->console): -1,
                   self->flusher? chorus_flusher_fd (self->flusher): -1};
    for (int i = 0; i < 3; i++)
        if (fds [i] >= 0)
            items [polled++] = (zmq_pollitem_t) {NULL, fds [i], ZMQ_POLLIN, 0};
    int rc = 0;
    while (true) {
        //  Actions left from the last turn, ready to go, go on at once,
        //  after what came; so do writes made after this turn's flush
        uint64_t durable = chorus_journal_durable (self->journal);
        bool ready = (self->actions.size && self->tickets [0] <= durable)
                  || (self->held_size && self->held [0].ticket <= durable)
                  || chorus_journal_pending (self->journal);
        int64_t wait = ready? 0: 100;
        uint64_t due = chorus_timers_due (self->timers);
        if (due != UINT64_MAX) {
            uint64_t now = s_now ();
            wait = due <= now? 0: (int64_t) (due - now) < wait? (int64_t) (due - now): wait;
        }
        if (end >= 0) {
            int64_t left = end - zclock_mono ();
            if (left <= 0)
                break;
            wait = left < wait? left: wait;
        }
        zmq_poll (items, polled, (long) wait);
        if (zsys_interrupted) {
            rc = -1;
            break;
        }
        if (chorus_node_dispatch (self->node) == CHORUS_ECORRUPT && !self->damaged) {
            char what [512];      //  the detail may be cut; the advice after it is not
            snprintf (what, sizeof (what), "node store %s is damaged (%s)", self->node_dir,
                      chorus_node_error (self->node));
            s_damaged (self, what);
        }
        s_fire_timers (self);
        s_watch_flows (self);
        if (self->console)
            s_console (self);
        s_flush (self);
        s_count_flows (self);
        uint64_t now = s_now ();
        if (!self->damaged && now - self->last_sweep > 60000) {
            if (chorus_journal_expire_traces (self->journal, now - S_TRACE_KEEP_MS, 10000) < 0)
                s_journal_failed (self, true);
            self->last_sweep = now;
        }
        if (self->damaged) {
            rc = -1;
            break;
        }
    }
    return rc;
}
