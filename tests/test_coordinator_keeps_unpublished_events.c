/*  test_coordinator_keeps_unpublished_events.c — what a flow makes that
    cannot go out is never dropped in silence: a step whose input cannot be
    encoded fails with bad-input (shown by flow.status); a completion event
    whose payload cannot be encoded is not published empty but journaled as
    an event error (shown by flow.status); and events the node refuses
    (its outbox is full while a group does not acknowledge) stay journaled,
    are tried again with a backoff that logs the failure once, and all go
    out, each once with its own id, when the group catches up.
*/
#include "testutil.h"
#include "chorus_coordinator.h"

#include <jansson.h>

#define ORDERS 12

static json_t *
s_payload (const void *data, size_t size)
{
    char *text = NULL;
    if (data)
        chorus_payload_to_json (data, size, 0, &text, NULL, 0);
    json_t *value = text? json_loads (text, JSON_DECODE_ANY, NULL): NULL;
    free (text);
    return value? value: json_null ();
}

static void
s_reply_json (chorus_reply_t *reply, const char *json)
{
    void *data;
    size_t size;
    char error [128];
    if (chorus_payload_from_json (json, strlen (json), 1 << 20, &data, &size, error,
                                  sizeof (error)) == 0) {
        chorus_reply_set_payload (reply, data, size);
        free (data);
    }
}

//  payments: charge answers at once; blob answers 600 KB, so that two
//  blobs make a completion event over the 1 MiB a payload may hold
static void
s_on_command (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    if (streq (chorus_command_name (command), "charge"))
        s_reply_json (reply, "{\"charged\": true}");
    else {
        size_t size = 600 * 1000;
        char *json = (char *) malloc (size + 3);
        json [0] = '"';
        memset (json + 1, 'x', size);
        strcpy (json + size + 1, "\"");
        s_reply_json (reply, json);
        free (json);
    }
}

//  The consumer: each flow's event id, and how often a flow got another
typedef struct {
    zhashx_t *ids;              //  flow id (the event's key) -> event id
    int events;                 //  deliveries
    int other_ids;              //  deliveries for a flow with another id than its first
    int big;                    //  big.done deliveries
} audit_t;

static int
s_on_event (chorus_node_t *node, chorus_event_t *event, void *arg)
{
    audit_t *audit = (audit_t *) arg;
    if (streq (chorus_event_topic (event), "big.done")) {
        audit->big++;
        return 0;
    }
    audit->events++;
    const char *seen = (const char *) zhashx_lookup (audit->ids, chorus_event_key (event));
    if (!seen)
        zhashx_insert (audit->ids, chorus_event_key (event), strdup (chorus_event_id (event)));
    else
    if (!streq (seen, chorus_event_id (event)))
        audit->other_ids++;
    return 0;
}

#define NODES 3

typedef struct {
    chorus_coordinator_t *coordinator;  //  the coordinator
    chorus_node_t *nodes [NODES];       //  payments, a client, the consumer
    bool consumer_away;                 //  do not run the consumer's handlers
} mesh_t;

typedef bool (s_until_fn) (void *arg);

static bool
s_run (mesh_t *mesh, s_until_fn *until, void *arg, int timeout_ms)
{
    int64_t end = zclock_mono () + timeout_ms;
    while (!(until && until (arg)) && zclock_mono () < end) {
        chorus_coordinator_run (mesh->coordinator, 5);
        for (int i = 0; i < NODES; i++)
            if (mesh->nodes [i] && !(i == 2 && mesh->consumer_away))
                chorus_node_dispatch (mesh->nodes [i]);
    }
    return until && until (arg);
}

typedef struct {
    bool done;                  //  replied
    json_t *value;              //  reply payload
} call_t;

static void
s_on_reply (chorus_node_t *node, chorus_reply_t *reply, void *arg)
{
    call_t *call = (call_t *) arg;
    call->value = s_payload (chorus_reply_payload (reply), chorus_reply_size (reply));
    call->done = true;
}

static bool
s_replied (void *arg)
{
    return ((call_t *) arg)->done;
}

static json_t *
s_call (mesh_t *mesh, const char *command, const char *json, const char *idempotency)
{
    call_t call = {false, NULL};
    void *data;
    size_t size;
    char error [128];
    chorus_payload_from_json (json, strlen (json), 1 << 20, &data, &size, error,
                              sizeof (error));
    chorus_node_send_traced (mesh->nodes [1], "coordinator", command, data, size, 5000,
                             idempotency, NULL, s_on_reply, &call);
    free (data);
    s_run (mesh, s_replied, &call, 6000);
    return call.value? call.value: json_null ();
}

//  A flow's status, by id (new reference)
static json_t *
s_status (mesh_t *mesh, const char *id)
{
    char request [256];
    snprintf (request, sizeof (request), "{\"id\": \"%s\"}", id);
    return s_call (mesh, "flow.status", request, NULL);
}

typedef struct {
    mesh_t *mesh;               //  where to ask
    const char *id;             //  which flow
    const char *state;          //  the state awaited
} state_wait_t;

static bool
s_in_state (void *arg)
{
    state_wait_t *wait = (state_wait_t *) arg;
    json_t *status = s_status (wait->mesh, wait->id);
    const char *state = json_string_value (json_object_get (status, "state"));
    bool reached = state && streq (state, wait->state);
    json_decref (status);
    return reached;
}

//  Starts a flow; its id (caller frees)
static char *
s_start (mesh_t *mesh, const char *request, const char *idempotency)
{
    json_t *started = s_call (mesh, "flow.start", request, idempotency);
    const char *id = json_string_value (json_object_get (started, "id"));
    char *copy = strdup (id? id: "");
    json_decref (started);
    return copy;
}

static bool
s_met_all (void *arg)
{
    mesh_t *mesh = (mesh_t *) arg;
    return test_peers (chorus_coordinator_node (mesh->coordinator), NULL) >= NODES;
}

typedef struct {
    audit_t *audit;             //  the consumer's record
    int want;                   //  flows
} audit_wait_t;

static bool
s_all_audited (void *arg)
{
    audit_wait_t *wait = (audit_wait_t *) arg;
    return (int) zhashx_size (wait->audit->ids) >= wait->want;
}

//  Lines of a file that contain text
static int
s_lines_with (const char *path, const char *text)
{
    FILE *file = fopen (path, "r");
    char line [2048];
    int count = 0;
    while (file && fgets (line, sizeof (line), file))
        count += strstr (line, text) != NULL;
    if (file)
        fclose (file);
    return count;
}

static void
s_write (const char *dir, const char *name, const char *text)
{
    char *path = zsys_sprintf ("%s/%s", dir, name);
    FILE *file = fopen (path, "w");
    fputs (text, file);
    fclose (file);
    free (path);
}

int
main (void)
{
    char *root = test_tempdir ("unpublished");
    char *flows = zsys_sprintf ("%s/flows", root);
    char *store = zsys_sprintf ("%s/store", root);
    zsys_dir_create ("%s", flows);
    s_write (flows, "bad.yaml",
             "flow: bad\nversion: 1\nsteps:\n"
             "  - id: send\n    service: payments\n    command: charge\n"
             "    input: { data: { \"$bin\": \"not base64!\" } }\n");
    s_write (flows, "big.yaml",
             "flow: big\nversion: 1\nsteps:\n"
             "  - id: one\n    service: payments\n    command: blob\n"
             "  - id: two\n    service: payments\n    command: blob\n    depends_on: [one]\n"
             "emit: { completed: big.done }\n");
    s_write (flows, "order.yaml",
             "flow: order\nversion: 1\nsteps:\n"
             "  - id: charge\n    service: payments\n    command: charge\n"
             "    input: { n: $.input.n }\n"
             "emit: { completed: order.done }\n");
    //  What the coordinator logs, to count its complaints
    char *log_path = zsys_sprintf ("%s/log", root);
    FILE *log = fopen (log_path, "w");
    zsys_set_logstream (log);

    mesh_t mesh;
    memset (&mesh, 0, sizeof (mesh));
    char error [512];
    chorus_coordinator_config_t config = {.flows_dir = flows, .store_dir = store,
                                          .heartbeat_ms = TEST_HEARTBEAT_MS,
                                          .evasive_ms = TEST_EVASIVE_MS,
                                          .expired_ms = TEST_EXPIRED_MS,
                                          .verbose = getenv ("CHORUS_VERBOSE") != NULL};
    mesh.coordinator = chorus_coordinator_new (&config, error, sizeof (error));
    if (!mesh.coordinator)
        bail_out (error);
    //  A small outbox that refuses when full: a few events fit
    chorus_node_set_retention (chorus_coordinator_node (mesh.coordinator), 2500, 0,
                               CHORUS_RETAIN_REFUSE);
    is_int (chorus_coordinator_start (mesh.coordinator), 0, "the coordinator starts");
    const char *seed = chorus_node_endpoint (chorus_coordinator_node (mesh.coordinator));
    mesh.nodes [0] = test_node ("payments", NULL, seed);
    chorus_node_handle (mesh.nodes [0], "charge", s_on_command, NULL);
    chorus_node_handle (mesh.nodes [0], "blob", s_on_command, NULL);
    mesh.nodes [1] = test_node ("client", NULL, seed);
    audit_t audit = {zhashx_new (), 0, 0, 0};
    zhashx_set_destructor (audit.ids, (zhashx_destructor_fn *) zstr_free);
    mesh.nodes [2] = test_node ("audit", NULL, seed);
    chorus_node_subscribe (mesh.nodes [2], "order.done", s_on_event, &audit);
    chorus_node_subscribe (mesh.nodes [2], "big.done", s_on_event, &audit);
    for (int i = 0; i < NODES; i++)
        chorus_node_start (mesh.nodes [i]);
    ok (s_run (&mesh, s_met_all, &mesh, 5000), "the coordinator met the service, the client "
        "and the consumer");

    //  A command whose payload cannot be encoded fails its step
    char *id = s_start (&mesh, "{\"flow\": \"bad\"}", "bad-1");
    state_wait_t wait = {&mesh, id, "failed"};
    ok (s_run (&mesh, s_in_state, &wait, 5000), "a step whose input cannot be encoded fails "
        "its flow");
    json_t *status = s_status (&mesh, id);
    json_t *step = json_array_get (json_object_get (status, "steps"), 0);
    char *text = json_dumps (step, JSON_COMPACT);
    ok (strstr (text, "\"bad-input\"") && strstr (text, "$bin"), "flow.status says why: %s",
        text);
    free (text);
    json_decref (status);
    free (id);

    //  A completion event whose payload cannot be encoded is an event error
    id = s_start (&mesh, "{\"flow\": \"big\"}", "big-1");
    wait = (state_wait_t) {&mesh, id, "completed"};
    ok (s_run (&mesh, s_in_state, &wait, 10000), "a flow whose event is too big completes");
    status = s_status (&mesh, id);
    json_t *errors = json_object_get (status, "event_errors");
    text = json_dumps (errors, JSON_COMPACT);
    ok (json_array_size (errors) == 1 && strstr (text, "big.done") && strstr (text, "exceeds"),
        "flow.status shows the event that could not be made: %s", text);
    free (text);
    text = json_dumps (json_object_get (status, "input"), JSON_COMPACT);
    ok (strstr (text, "omitted"), "with the values too big to show left out: %s", text);
    free (text);
    json_decref (status);
    free (id);
    is_int (s_lines_with (log_path, "event big.done cannot be published"), 1,
            "and the coordinator said so");

    //  A first order's event reaches the consumer: the coordinator's node
    //  knows its group, and keeps events for it
    char *first = s_start (&mesh, "{\"flow\": \"order\", \"input\": {\"n\": 0}}", "first");
    audit_wait_t audited = {&audit, 1};
    ok (s_run (&mesh, s_all_audited, &audited, 10000), "a first flow's event reaches the "
        "consumer");
    free (first);

    //  The consumer stops acknowledging: the outbox fills, and publishes
    //  are refused; the events wait in the journal
    mesh.consumer_away = true;
    char *ids [ORDERS];
    for (int i = 0; i < ORDERS; i++) {
        char request [128], key [32];
        snprintf (request, sizeof (request), "{\"flow\": \"order\", \"input\": {\"n\": %d}}", i);
        snprintf (key, sizeof (key), "order-%d", i);
        ids [i] = s_start (&mesh, request, key);
    }
    int completed = 0, waiting = 0;
    for (int i = 0; i < ORDERS; i++) {
        wait = (state_wait_t) {&mesh, ids [i], "completed"};
        completed += s_run (&mesh, s_in_state, &wait, 5000);
    }
    s_run (&mesh, NULL, NULL, 2000);        //  time for several tries
    for (int i = 0; i < ORDERS; i++) {
        status = s_status (&mesh, ids [i]);
        waiting += json_integer_value (json_object_get (status, "unpublished_events")) > 0;
        json_decref (status);
    }
    is_int (completed, ORDERS, "%d flows completed while the consumer was away", ORDERS);
    ok (waiting > 0 && waiting < ORDERS, "%d of their events wait to be published", waiting);
    int complaints = s_lines_with (log_path, "cannot publish");
    is_int (complaints, 1, "the refusal was logged once, not once per try");

    //  The consumer is back: every event goes out, each once
    mesh.consumer_away = false;
    audited.want = ORDERS + 1;
    bool all = s_run (&mesh, s_all_audited, &audited, 20000);
    ok (all, "every flow's event reached the consumer (%zu of %d)", zhashx_size (audit.ids),
        ORDERS + 1);
    s_run (&mesh, NULL, NULL, 500);
    is_int (audit.other_ids, 0, "each flow's event has one id (%d deliveries)", audit.events);
    is_int (audit.big, 0, "the event that could not be made was never published");
    is_int (s_lines_with (log_path, "published again"), 1, "the coordinator said publishing "
            "works again");
    for (int i = 0; i < ORDERS; i++) {
        status = s_status (&mesh, ids [i]);
        waiting = json_object_get (status, "unpublished_events") != NULL;
        json_decref (status);
        if (waiting)
            break;
    }
    ok (!waiting, "nothing waits to be published any more");
    for (int i = 0; i < ORDERS; i++)
        free (ids [i]);

    for (int i = 0; i < NODES; i++)
        chorus_node_destroy (&mesh.nodes [i]);
    chorus_coordinator_destroy (&mesh.coordinator);
    zhashx_destroy (&audit.ids);
    zsys_set_logstream (stderr);
    fclose (log);
    free (log_path);
    free (flows);
    free (store);
    test_tempdir_remove (&root);
    return done_testing ();
}
