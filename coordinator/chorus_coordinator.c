/*  chorus_coordinator.c — the coordinator (see the header). The engine
    decides; this class keeps the promises around it: every transition is
    in the journal before its commands leave, timers and outstanding
    commands are re-armed after a restart, and the definitions a running
    flow started with stay with it.
*/
#include "chorus_coordinator.h"
#include "chorus_flow.h"
#include "chorus_journal.h"
#include "chorus_json.h"

#include <dirent.h>
#include <stdarg.h>

#define S_KEEP_FINISHED 10000
#define S_TRACE_KEEP_MS (24 * 3600 * 1000ull)

//  What started a flow: its business transaction and the message that
//  caused it, carried by everything the flow sends and emits
typedef struct {
    char *correlation;          //  correlation id of the transaction
    char *cause;                //  id of the trigger event or flow.start command
} s_origin_t;

static s_origin_t *
s_origin_new (const char *correlation, const char *cause)
{
    s_origin_t *origin = (s_origin_t *) zmalloc (sizeof (s_origin_t));
    origin->correlation = strdup (correlation);
    origin->cause = cause? strdup (cause): NULL;
    return origin;
}

static void
s_origin_destroy (void **item)
{
    s_origin_t *origin = (s_origin_t *) *item;
    if (origin) {
        free (origin->correlation);
        free (origin->cause);
        free (origin);
        *item = NULL;
    }
}

//  A timer the engine asked for
typedef struct {
    uint64_t at;                //  when it fires (ms)
    char *flow;                 //  the flow's id
    char *key;                  //  the engine's timer key
} s_timer_t;

//  A command sent for a task, awaiting its reply
typedef struct {
    chorus_coordinator_t *self; //  back to us
    char *flow;                 //  the flow's id
    char *key;                  //  the task key
    int attempt;                //  which try
} s_sent_t;

struct _chorus_coordinator_t {
    chorus_node_t *node;        //  our node on the mesh
    chorus_journal_t *journal;  //  durable flow states, definitions, traces
    zhashx_t *definitions;      //  "name" -> zlistx_t of chorus_flowdef_t, by version
    zhashx_t *journaled;        //  "name/version" of definitions in the journal
    chorus_flowset_t *flows;    //  every flow we run or ran
    zhashx_t *origins;          //  flow id -> s_origin_t, what started it
    zlistx_t *timers;           //  s_timer_t, soonest first
    chorus_actions_t actions;   //  journaled, waiting to be carried out
    char *node_dir;             //  where the node's store lives
    uint64_t last_sweep;        //  when traces were last expired
    bool verbose;               //  log to stderr
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

//  MessagePack payload of a JSON value (NULL for none); caller frees.
//  Straight from the jansson value: no JSON text in between
static void *
s_pack (const json_t *value, size_t *size)
{
    *size = 0;
    void *data = NULL;
    char error [256];
    if (value && chorus_json_value_to_msgpack (value, 1024 * 1024, &data, size, error,
                                               sizeof (error)))
        data = NULL;
    return data;
}

//  JSON value of a payload (null when absent or not MessagePack); new ref
static json_t *
s_unpack (const void *data, size_t size)
{
    if (!data)
        return json_null ();
    char error [256];
    json_t *value = chorus_json_value_from_msgpack (data, size, error, sizeof (error));
    return value? value: json_null ();
}

//  --------------------------------------------------------------------------
//  Definitions

static int
s_compare_versions (const void *a, const void *b)
{
    int x = chorus_flowdef_version ((chorus_flowdef_t *) a);
    int y = chorus_flowdef_version ((chorus_flowdef_t *) b);
    return x < y? -1: x > y;
}

static void
s_def_destroy (void **item)
{
    chorus_flowdef_destroy ((chorus_flowdef_t **) item);
}

static void
s_versions_destroy (void **item)
{
    zlistx_destroy ((zlistx_t **) item);
}

//  Adds a definition; false if that name and version is already there
static bool
s_add_definition (zhashx_t *definitions, chorus_flowdef_t *def)
{
    zlistx_t *versions = (zlistx_t *) zhashx_lookup (definitions, chorus_flowdef_name (def));
    if (!versions) {
        versions = zlistx_new ();
        zlistx_set_comparator (versions, s_compare_versions);
        zlistx_set_destructor (versions, s_def_destroy);
        zhashx_insert (definitions, chorus_flowdef_name (def), versions);
    }
    for (chorus_flowdef_t *known = (chorus_flowdef_t *) zlistx_first (versions); known;
         known = (chorus_flowdef_t *) zlistx_next (versions))
        if (chorus_flowdef_version (known) == chorus_flowdef_version (def))
            return false;
    zlistx_insert (versions, def, true);
    return true;
}

//  Loads every *.yaml of a directory into definitions; 0 or -1 with error
static int
s_load_dir (const char *dir, zhashx_t *definitions, char *error, size_t error_size)
{
    DIR *handle = opendir (dir);
    if (!handle) {
        snprintf (error, error_size, "%s: cannot read the flows directory", dir);
        return -1;
    }
    zlistx_t *names = zlistx_new ();
    zlistx_set_destructor (names, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_comparator (names, (zlistx_comparator_fn *) strcmp);
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        size_t length = strlen (entry->d_name);
        if ((length > 5 && streq (entry->d_name + length - 5, ".yaml"))
        ||  (length > 4 && streq (entry->d_name + length - 4, ".yml")))
            zlistx_insert (names, zsys_sprintf ("%s/%s", dir, entry->d_name), true);
    }
    closedir (handle);
    int rc = 0;
    for (char *path = (char *) zlistx_first (names); path && rc == 0;
         path = (char *) zlistx_next (names)) {
        chorus_flowdef_t *def = chorus_flowdef_load (path, error, error_size);
        if (!def)
            rc = -1;
        else
        if (!s_add_definition (definitions, def)) {
            snprintf (error, error_size, "%s: flow '%s' version %d is defined twice", path,
                      chorus_flowdef_name (def), chorus_flowdef_version (def));
            chorus_flowdef_destroy (&def);
            rc = -1;
        }
    }
    zlistx_destroy (&names);
    return rc;
}

int
chorus_coordinator_check (const char *dir, char *error, size_t error_size)
{
    zhashx_t *definitions = zhashx_new ();
    zhashx_set_destructor (definitions, s_versions_destroy);
    int rc = s_load_dir (dir, definitions, error, error_size);
    zhashx_destroy (&definitions);
    return rc;
}

//  The newest version of a definition, or NULL
static chorus_flowdef_t *
s_newest (chorus_coordinator_t *self, const char *name)
{
    zlistx_t *versions = (zlistx_t *) zhashx_lookup (self->definitions, name);
    return versions? (chorus_flowdef_t *) zlistx_last (versions): NULL;
}

//  A given version: loaded, or kept in the journal since a flow used it
static chorus_flowdef_t *
s_version (chorus_coordinator_t *self, const char *name, int version)
{
    zlistx_t *versions = (zlistx_t *) zhashx_lookup (self->definitions, name);
    for (chorus_flowdef_t *def = versions? (chorus_flowdef_t *) zlistx_first (versions): NULL;
         def; def = (chorus_flowdef_t *) zlistx_next (versions))
        if (chorus_flowdef_version (def) == version)
            return def;
    char *source = chorus_journal_definition (self->journal, name, version);
    if (!source)
        return NULL;
    char error [512];
    chorus_flowdef_t *def = chorus_flowdef_parse (source, strlen (source), name, error,
                                                  sizeof (error));
    free (source);
    if (!def) {
        zsys_error ("coordinator: journaled definition %s v%d: %s", name, version, error);
        return NULL;
    }
    s_add_definition (self->definitions, def);
    return def;
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
//  Transitions: journal first, act after

//  Journals a flow's state, with the events it still has to emit: an emit
//  is journaled with the transition that produced it and forgotten only
//  once published, so a crash in between re-emits it after recovery
//  (emits are at least once)
static void
s_journal_flow (chorus_coordinator_t *self, chorus_flow_t *flow, json_t *emits)
{
    json_t *record = json_object ();
    s_origin_t *origin = (s_origin_t *) zhashx_lookup (self->origins, chorus_flow_id (flow));
    json_object_set_new (record, "correlation", json_string (origin? origin->correlation:
                                                             chorus_flow_id (flow)));
    if (origin && origin->cause)
        json_object_set_new (record, "cause", json_string (origin->cause));
    json_object_set_new (record, "state", chorus_flow_save (flow));
    if (emits && json_array_size (emits))
        json_object_set (record, "emits", emits);
    char *text = json_dumps (record, JSON_COMPACT);
    chorus_journal_put_flow (self->journal, chorus_flow_id (flow), text);
    free (text);
    json_decref (record);
}

//  Records a flow's new state and takes the actions it produced
static void
s_transition (chorus_coordinator_t *self, chorus_flow_t *flow, chorus_actions_t *actions)
{
    json_t *emits = json_array ();
    for (size_t i = 0; i < actions->size; i++)
        if (actions->items [i].kind == CHORUS_ACTION_EMIT)
            json_array_append_new (emits, json_pack ("{s:s, s:O?}", "topic",
                                                     actions->items [i].topic, "payload",
                                                     actions->items [i].payload));
    s_journal_flow (self, flow, emits);
    json_decref (emits);
    if (chorus_flow_finished (flow))
        s_log (self, "flow %s %s", chorus_flow_id (flow),
               chorus_flow_state_name (chorus_flow_state (flow)));
    char *evicted = chorus_flowset_update (self->flows, flow);
    if (evicted) {
        chorus_journal_delete_flow (self->journal, evicted);
        zhashx_delete (self->origins, evicted);
        free (evicted);
    }
    //  Move the actions to our queue; they run after the journal commit
    for (size_t i = 0; i < actions->size; i++) {
        chorus_actions_t *queue = &self->actions;
        if (queue->size == queue->max) {
            queue->max = queue->max? queue->max * 2: 64;
            queue->items = (chorus_action_t *) realloc (queue->items,
                                                        queue->max * sizeof (chorus_action_t));
        }
        queue->items [queue->size++] = actions->items [i];
    }
    actions->size = 0;
}

static void s_on_reply (chorus_node_t *node, chorus_reply_t *reply, void *arg);
static void s_trace (chorus_coordinator_t *self, const char *correlation, uint64_t seq,
                     uint64_t time, const char *id, const char *topic, const char *service,
                     const char *instance, const char *causation);

static void
s_timer_destroy (void **item)
{
    s_timer_t *timer = (s_timer_t *) *item;
    if (timer) {
        free (timer->flow);
        free (timer->key);
        free (timer);
        *item = NULL;
    }
}

static int
s_compare_timers (const void *a, const void *b)
{
    uint64_t x = ((const s_timer_t *) a)->at, y = ((const s_timer_t *) b)->at;
    return x < y? -1: x > y;
}

static void
s_act (chorus_coordinator_t *self, chorus_action_t *action)
{
    s_origin_t *origin = (s_origin_t *) zhashx_lookup (self->origins, action->flow);
    const char *correlation = origin? origin->correlation: NULL;
    if (action->kind == CHORUS_ACTION_SEND) {
        size_t size;
        void *payload = s_pack (action->payload, &size);
        uint64_t now = s_now ();
        int timeout = action->at > now + 50? (int) (action->at - now): 50;
        s_sent_t *sent = (s_sent_t *) zmalloc (sizeof (s_sent_t));
        sent->self = self;
        sent->flow = strdup (action->flow);
        sent->key = strdup (action->key);
        sent->attempt = action->attempt;
        if (chorus_node_send_traced (self->node, action->service, action->command, payload, size,
                                     timeout, action->key, correlation, s_on_reply, sent)) {
            zsys_error ("coordinator: cannot send %s to %s: %s", action->command, action->service,
                        chorus_strerror (chorus_errno ()));
            free (sent->flow);
            free (sent->key);
            free (sent);
        }
        free (payload);
    }
    else
    if (action->kind == CHORUS_ACTION_TIMER) {
        s_timer_t *timer = (s_timer_t *) zmalloc (sizeof (s_timer_t));
        timer->at = action->at;
        timer->flow = strdup (action->flow);
        timer->key = strdup (action->key);
        zlistx_insert (self->timers, timer, true);
    }
    else
    if (action->kind == CHORUS_ACTION_EMIT) {
        size_t size;
        void *payload = s_pack (action->payload, &size);
        char id [33];
        if (chorus_node_publish_caused (self->node, action->topic, action->flow, payload, size,
                                        correlation, origin? origin->cause: NULL, id))
            zsys_error ("coordinator: cannot emit %s: %s", action->topic,
                        chorus_strerror (chorus_errno ()));
        else    //  a node never observes its own events: trace them here
            s_trace (self, correlation? correlation: action->flow, 0, s_now (), id, action->topic,
                     "coordinator", chorus_node_instance (self->node),
                     origin? origin->cause: NULL);
        free (payload);
    }
}

//  Commits the journal, then carries out what it recorded
static int
s_flush (chorus_coordinator_t *self)
{
    if (chorus_journal_commit (self->journal)) {
        zsys_error ("coordinator: %s", chorus_journal_error (self->journal));
        return -1;      //  nothing leaves before it is journaled; tried again later
    }
    zlistx_t *emitted = NULL;
    for (size_t i = 0; i < self->actions.size; i++) {
        chorus_action_t *action = &self->actions.items [i];
        s_act (self, action);
        if (action->kind == CHORUS_ACTION_EMIT) {
            if (!emitted) {
                emitted = zlistx_new ();
                zlistx_set_duplicator (emitted, (zlistx_duplicator_fn *) strdup);
                zlistx_set_destructor (emitted, (zlistx_destructor_fn *) zstr_free);
            }
            zlistx_add_end (emitted, action->flow);
        }
    }
    chorus_actions_clear (&self->actions);
    //  Published, so no longer to emit: journaled with the next commit
    for (char *id = emitted? (char *) zlistx_first (emitted): NULL; id;
         id = (char *) zlistx_next (emitted)) {
        chorus_flow_t *flow = chorus_flowset_lookup (self->flows, id);
        if (flow)
            s_journal_flow (self, flow, NULL);
    }
    zlistx_destroy (&emitted);
    return 0;
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
        json_t *output = status == 0? s_unpack (chorus_reply_payload (reply),
                                                chorus_reply_size (reply)): NULL;
        chorus_result_t result = {status == 0, status == CHORUS_ETIMEDOUT, output,
                                  chorus_reply_code (reply), chorus_reply_message (reply),
                                  chorus_reply_retryable (reply)};
        chorus_actions_t actions;
        chorus_actions_init (&actions);
        if (chorus_flow_reply (flow, sent->key, sent->attempt, &result, s_now (), &actions) == 0)
            s_transition (self, flow, &actions);
        chorus_actions_clear (&actions);
        json_decref (output);
    }
    free (sent->flow);
    free (sent->key);
    free (sent);
}

static void
s_fire_timers (chorus_coordinator_t *self)
{
    uint64_t now = s_now ();
    s_timer_t *timer;
    while ((timer = (s_timer_t *) zlistx_first (self->timers)) && timer->at <= now) {
        timer = (s_timer_t *) zlistx_detach (self->timers, NULL);
        chorus_flow_t *flow = chorus_flowset_lookup (self->flows, timer->flow);
        if (flow) {
            chorus_actions_t actions;
            chorus_actions_init (&actions);
            if (chorus_flow_timer (flow, timer->key, now, &actions) == 0)
                s_transition (self, flow, &actions);
            chorus_actions_clear (&actions);
        }
        s_timer_destroy ((void **) &timer);
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

//  Starts a flow (or finds the live one with the same key); NULL and a
//  reason when the definition is unknown
static chorus_flow_t *
s_start_flow (chorus_coordinator_t *self, const char *name, const char *id, const json_t *input,
              const char *correlation, const char *cause, bool *existing)
{
    chorus_flowdef_t *def = s_newest (self, name);
    if (!def)
        return NULL;
    chorus_flow_t *flow = chorus_flowset_lookup (self->flows, id);
    if (flow) {
        *existing = true;   //  the same trigger event delivered again
        return flow;
    }
    chorus_actions_t actions;
    chorus_actions_init (&actions);
    flow = chorus_flowset_start (self->flows, def, id, input, s_now (), &actions, existing);
    if (flow && !*existing) {
        zhashx_update (self->origins, id, s_origin_new (correlation? correlation: id, cause));
        s_journal_definition (self, def);
        s_transition (self, flow, &actions);
        s_log (self, "flow %s started: %s v%d", id, name, chorus_flowdef_version (def));
    }
    chorus_actions_clear (&actions);
    return flow;
}

//  A trigger event: choreography hands over to orchestration
static int
s_on_trigger (chorus_node_t *node, chorus_event_t *event, void *arg)
{
    chorus_coordinator_t *self = (chorus_coordinator_t *) arg;
    const char *topic = chorus_event_topic (event);
    json_t *input = s_unpack (chorus_event_payload (event), chorus_event_size (event));
    //  Starting a flow looks definitions up, which must not happen while
    //  iterating over the same table: collect the triggered ones first
    zlistx_t *triggered = zlistx_new ();
    for (zlistx_t *versions = (zlistx_t *) zhashx_first (self->definitions); versions;
         versions = (zlistx_t *) zhashx_next (self->definitions)) {
        chorus_flowdef_t *def = (chorus_flowdef_t *) zlistx_last (versions);
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
        s_start_flow (self, chorus_flowdef_name (def), id, input,
                      chorus_event_correlation (event), chorus_event_id (event), &existing);
        free (id);
    }
    zlistx_destroy (&triggered);
    json_decref (input);
    //  Journaled before the event is acknowledged, or it would come again:
    //  s_on_flush commits once for the whole round, before any ack leaves
    return 0;
}

//  The node is about to acknowledge a round of events and send a round of
//  replies: one journal commit makes all of them durable (group commit)
static int
s_on_flush (chorus_node_t *node, void *arg)
{
    chorus_coordinator_t *self = (chorus_coordinator_t *) arg;
    if (chorus_journal_commit (self->journal)) {
        zsys_error ("coordinator: %s", chorus_journal_error (self->journal));
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Observing the mesh: the causal trace of every transaction

//  A trace entry is written for every event seen on the mesh, so it is
//  kept compact: 'T', seq and time (8 bytes each, big-endian), then id,
//  topic, service, instance and, if there is one, causation, each ending
//  in a NUL. Entries that start with '{' are JSON, from older journals.
#define S_TRACE_MARK 'T'
#define S_TRACE_HEAD 17

static void
s_put_u64 (uint8_t *at, uint64_t value)
{
    for (int i = 7; i >= 0; i--, value >>= 8)
        at [i] = (uint8_t) value;
}

static uint64_t
s_get_u64 (const uint8_t *at)
{
    uint64_t value = 0;
    for (int i = 0; i < 8; i++)
        value = (value << 8) | at [i];
    return value;
}

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
    s_put_u64 (entry + 1, seq);
    s_put_u64 (entry + 9, time);
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

static int
s_on_observed (chorus_node_t *node, chorus_event_t *event, void *arg)
{
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
                      "seq", (json_int_t) s_get_u64 ((const uint8_t *) entry + 1),
                      "time", (json_int_t) s_get_u64 ((const uint8_t *) entry + 9));
}

//  --------------------------------------------------------------------------
//  Control over the mesh: flow.start, status, list, cancel, retry, trace

static void
s_reply_json (chorus_reply_t *reply, json_t *value)
{
    size_t size;
    void *payload = s_pack (value, &size);
    chorus_reply_set_payload (reply, payload, size);
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

//  The flow named by the request's "id"; NULL with the reply set otherwise
static chorus_flow_t *
s_requested_flow (chorus_coordinator_t *self, json_t *request, chorus_reply_t *reply)
{
    const char *id = json_string_value (json_object_get (request, "id"));
    chorus_flow_t *flow = id? chorus_flowset_lookup (self->flows, id): NULL;
    if (!flow)
        chorus_reply_set_error (reply, "not-found", id? "no such flow on this coordinator":
                                "the request needs an \"id\"", false);
    return flow;
}

static void
s_on_start (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    chorus_coordinator_t *self = (chorus_coordinator_t *) arg;
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
    //  The command's idempotency key makes a re-sent start find its flow
    char *id = s_flow_id (name, chorus_command_idempotency (command));
    bool existing = false;
    chorus_flow_t *flow = s_start_flow (self, name, id, input? input: json_null (),
                                        chorus_command_correlation (command),
                                        chorus_command_id (command), &existing);
    free (id);
    //  Journaled by s_on_flush before this reply leaves
    s_reply_json (reply, json_pack ("{s:s, s:b, s:s}", "id", chorus_flow_id (flow),
                                    "existing", existing, "state",
                                    chorus_flow_state_name (chorus_flow_state (flow))));
    json_decref (request);
}

static void
s_on_status (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    chorus_coordinator_t *self = (chorus_coordinator_t *) arg;
    json_t *request = s_request (command, reply);
    chorus_flow_t *flow = request? s_requested_flow (self, request, reply): NULL;
    if (flow)
        s_reply_json (reply, chorus_flow_status (flow));
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
        json_t *status = chorus_flow_status (flow);
        json_array_append_new (list, json_pack ("{s:s, s:O, s:O, s:s, s:O, s:O}",
                                                "id", chorus_flow_id (flow),
                                                "flow", json_object_get (status, "flow"),
                                                "version", json_object_get (status, "version"),
                                                "state", name,
                                                "started", json_object_get (status, "started"),
                                                "finished", json_object_get (status, "finished")));
        json_decref (status);
    }
    s_reply_json (reply, list);
    json_decref (request);
}

//  flow.cancel and flow.retry: an engine input, journaled before the reply
static void
s_on_control (chorus_coordinator_t *self, chorus_command_t *command, chorus_reply_t *reply,
              bool cancel)
{
    json_t *request = s_request (command, reply);
    chorus_flow_t *flow = request? s_requested_flow (self, request, reply): NULL;
    if (flow) {
        chorus_actions_t actions;
        chorus_actions_init (&actions);
        int rc = cancel? chorus_flow_cancel (flow, s_now (), &actions):
                         chorus_flow_retry (flow, s_now (), &actions);
        if (rc)
            chorus_reply_set_error (reply, "bad-state", cancel? "only a running flow can be "
                                    "cancelled": "only a failed, cancelled or stuck flow can be "
                                    "retried", false);
        else {
            s_transition (self, flow, &actions);
            s_reply_json (reply, json_pack ("{s:s, s:s}", "id", chorus_flow_id (flow),
                          "state", chorus_flow_state_name (chorus_flow_state (flow))));
        }
        chorus_actions_clear (&actions);
    }
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

static int
s_add_trace (const char *entry, size_t size, void *arg)
{
    json_t *value = s_trace_json (entry, size);
    if (value)
        json_array_append_new ((json_t *) arg, value);
    return 0;
}

static void
s_on_trace (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    chorus_coordinator_t *self = (chorus_coordinator_t *) arg;
    json_t *request = s_request (command, reply);
    const char *correlation = request?
                              json_string_value (json_object_get (request, "correlation")): NULL;
    if (request && !correlation)
        chorus_reply_set_error (reply, "bad-request", "the request needs a \"correlation\"", false);
    else
    if (correlation) {
        chorus_journal_commit (self->journal);      //  include what was just observed
        json_t *entries = json_array ();
        chorus_journal_each_trace (self->journal, correlation, s_add_trace, entries);
        s_reply_json (reply, json_pack ("{s:s, s:o}", "correlation", correlation,
                                        "events", entries));
    }
    json_decref (request);
}

//  --------------------------------------------------------------------------
//  Life cycle

chorus_coordinator_t *
chorus_coordinator_new (const chorus_coordinator_config_t *config, char *error,
                        size_t error_size)
{
    chorus_coordinator_t *self = (chorus_coordinator_t *) zmalloc (sizeof (chorus_coordinator_t));
    self->verbose = config->verbose;
    self->definitions = zhashx_new ();
    zhashx_set_destructor (self->definitions, s_versions_destroy);
    self->journaled = zhashx_new ();
    self->origins = zhashx_new ();
    zhashx_set_destructor (self->origins, s_origin_destroy);
    self->timers = zlistx_new ();
    zlistx_set_destructor (self->timers, s_timer_destroy);
    zlistx_set_comparator (self->timers, s_compare_timers);
    chorus_actions_init (&self->actions);
    self->flows = chorus_flowset_new (config->keep_finished? config->keep_finished:
                                      S_KEEP_FINISHED);
    if (!config->flows_dir || !config->store_dir) {
        snprintf (error, error_size, "the coordinator needs a flows directory and a store");
        chorus_coordinator_destroy (&self);
        return NULL;
    }
    if (s_load_dir (config->flows_dir, self->definitions, error, error_size)) {
        chorus_coordinator_destroy (&self);
        return NULL;
    }
    zsys_dir_create ("%s", config->store_dir);
    char *journal_dir = zsys_sprintf ("%s/journal", config->store_dir);
    self->journal = chorus_journal_new (journal_dir, error, error_size);
    free (journal_dir);
    if (!self->journal) {
        chorus_coordinator_destroy (&self);
        return NULL;
    }
    chorus_journal_set_sync (self->journal, config->journal_sync);

    self->node = chorus_node_new ("coordinator");
    self->node_dir = zsys_sprintf ("%s/node", config->store_dir);
    chorus_node_set_store (self->node, self->node_dir);
    chorus_node_set_verbose (self->node, config->verbose);
    const char *mesh = config->mesh? config->mesh: getenv ("CHORUS_MESH");
    if (mesh && chorus_node_set_mesh (self->node, mesh)) {
        snprintf (error, error_size, "%s '%s' is not a mesh name (1-64 printable ASCII "
                  "characters, no spaces)", config->mesh? "--mesh": "CHORUS_MESH", mesh);
        chorus_coordinator_destroy (&self);
        return NULL;
    }
    if (config->listen)
        chorus_node_set_listen (self->node, config->listen);
    for (const char **seed = config->seeds; seed && *seed; seed++)
        chorus_node_add_seed (self->node, *seed);
    if (config->beacon_port)
        chorus_node_set_beacon (self->node, config->beacon_port);
    if (config->heartbeat_ms)
        chorus_node_set_heartbeat (self->node, config->heartbeat_ms, config->evasive_ms,
                                   config->expired_ms);
    return self;
}

void
chorus_coordinator_destroy (chorus_coordinator_t **self_p)
{
    chorus_coordinator_t *self = *self_p;
    if (!self)
        return;
    if (self->journal)
        chorus_journal_commit (self->journal);
    chorus_node_destroy (&self->node);
    chorus_journal_destroy (&self->journal);
    chorus_flowset_destroy (&self->flows);
    chorus_actions_clear (&self->actions);
    free (self->actions.items);
    zlistx_destroy (&self->timers);
    zhashx_destroy (&self->origins);
    zhashx_destroy (&self->journaled);
    zhashx_destroy (&self->definitions);
    free (self->node_dir);
    free (self);
    *self_p = NULL;
}

//  Rebuilds one journaled flow and asks it what to re-send and re-arm
static int
s_recover_flow (const char *id, const char *text, void *arg)
{
    chorus_coordinator_t *self = (chorus_coordinator_t *) arg;
    json_t *record = json_loads (text, 0, NULL);
    json_t *state = record? json_object_get (record, "state"): NULL;
    const char *name = state? json_string_value (json_object_get (state, "flow")): NULL;
    int version = state? (int) json_integer_value (json_object_get (state, "version")): 0;
    chorus_flowdef_t *def = name? s_version (self, name, version): NULL;
    char error [256] = "";
    chorus_flow_t *flow = def? chorus_flow_load (def, state, error, sizeof (error)): NULL;
    if (!flow) {
        zsys_error ("coordinator: cannot recover flow %s: %s", id, def? error:
                    "its definition is neither loaded nor journaled");
        json_decref (record);
        return 0;
    }
    const char *correlation = json_string_value (json_object_get (record, "correlation"));
    const char *cause = json_string_value (json_object_get (record, "cause"));
    zhashx_update (self->origins, id, s_origin_new (correlation? correlation: id, cause));
    char key [128];
    snprintf (key, sizeof (key), "%s/%d", name, version);
    zhashx_update (self->journaled, key, (void *) 1);
    chorus_flowset_insert (self->flows, flow);
    chorus_actions_t actions;
    chorus_actions_init (&actions);
    if (!chorus_flow_finished (flow))
        chorus_flow_resume (flow, s_now (), &actions);
    //  Events it had to emit when the coordinator stopped
    json_t *emits = json_object_get (record, "emits");
    for (size_t i = 0; i < json_array_size (emits); i++) {
        json_t *emit = json_array_get (emits, i);
        const char *topic = json_string_value (json_object_get (emit, "topic"));
        if (!topic)
            continue;
        chorus_action_t action = {CHORUS_ACTION_EMIT, strdup (id), NULL, NULL, NULL,
                                  json_incref (json_object_get (emit, "payload")), 0, 0,
                                  strdup (topic)};
        if (actions.size == actions.max) {
            actions.max = actions.max? actions.max * 2: 4;
            actions.items = (chorus_action_t *) realloc (actions.items,
                                                         actions.max * sizeof (chorus_action_t));
        }
        actions.items [actions.size++] = action;
    }
    if (actions.size || !chorus_flow_finished (flow))
        s_transition (self, flow, &actions);
    else
        free (chorus_flowset_finished (self->flows, flow));
    chorus_actions_clear (&actions);
    json_decref (record);
    return 0;
}

int
chorus_coordinator_start (chorus_coordinator_t *self)
{
    chorus_journal_each_flow (self->journal, s_recover_flow, self);
    s_log (self, "recovered %zu flows", chorus_flowset_size (self->flows));
    //  Triggers: one subscription per distinct topic, as group "coordinator"
    zhashx_t *topics = zhashx_new ();
    for (zlistx_t *versions = (zlistx_t *) zhashx_first (self->definitions); versions;
         versions = (zlistx_t *) zhashx_next (self->definitions)) {
        const char *trigger = chorus_flowdef_trigger ((chorus_flowdef_t *) zlistx_last (versions));
        if (trigger && zhashx_insert (topics, trigger, (void *) 1) == 0)
            chorus_node_subscribe (self->node, trigger, s_on_trigger, self);
    }
    zhashx_destroy (&topics);
    chorus_node_observe (self->node, "", false, s_on_observed, self);
    chorus_node_on_flush (self->node, s_on_flush, self);
    chorus_node_handle (self->node, "flow.start", s_on_start, self);
    chorus_node_handle (self->node, "flow.status", s_on_status, self);
    chorus_node_handle (self->node, "flow.list", s_on_list, self);
    chorus_node_handle (self->node, "flow.cancel", s_on_cancel, self);
    chorus_node_handle (self->node, "flow.retry", s_on_retry, self);
    chorus_node_handle (self->node, "flow.trace", s_on_trace, self);
    if (chorus_node_start (self->node))
        return -1;
    s_flush (self);     //  what recovery re-sends; a failed commit is tried again
    return 0;
}

chorus_node_t *
chorus_coordinator_node (chorus_coordinator_t *self)
{
    return self->node;
}

int
chorus_coordinator_run (chorus_coordinator_t *self, int timeout_ms)
{
    int64_t end = timeout_ms < 0? -1: zclock_mono () + timeout_ms;
    zpoller_t *poller = zpoller_new (chorus_node_socket (self->node), NULL);
    int rc = 0;
    while (true) {
        int64_t wait = 100;
        s_timer_t *timer = (s_timer_t *) zlistx_first (self->timers);
        if (timer) {
            uint64_t now = s_now ();
            wait = timer->at <= now? 0: (int64_t) (timer->at - now) < wait?
                   (int64_t) (timer->at - now): wait;
        }
        if (end >= 0) {
            int64_t left = end - zclock_mono ();
            if (left <= 0)
                break;
            wait = left < wait? left: wait;
        }
        zpoller_wait (poller, (int) wait);
        if (zsys_interrupted) {
            rc = -1;
            break;
        }
        chorus_node_dispatch (self->node);
        s_fire_timers (self);
        s_flush (self);
        uint64_t now = s_now ();
        if (now - self->last_sweep > 60000) {
            chorus_journal_expire_traces (self->journal, now - S_TRACE_KEEP_MS, 10000);
            self->last_sweep = now;
        }
    }
    zpoller_destroy (&poller);
    return rc;
}
