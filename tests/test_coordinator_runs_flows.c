/*  test_coordinator_runs_flows.c — the coordinator in-process with services
    as in-process nodes: an order.placed event starts fulfil_order, which
    charges, reserves each item and ships, then emits order.fulfilled; a
    permanent payment failure... compensates completed steps and emits
    order.cancelled; the control commands (flow.start with dedupe,
    flow.status, flow.list, flow.cancel, flow.retry, flow.trace) answer over
    the mesh; a changed definition is used by new flows while running ones
    finish on theirs.
*/
#include "testutil.h"
#include "chorus_coordinator.h"

#include <jansson.h>

//  --------------------------------------------------------------------------
//  Services

typedef struct {
    int charges;                //  charge commands run
    int refunds;                //  refund commands run
    int reserves;               //  reserve commands run
    int releases;               //  release commands run
    int labels;                 //  create_label commands run
    bool decline;               //  payments refuses every charge
    bool hold_labels;           //  shipping fails retryably (to keep flows running)
} world_t;

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

static void
s_on_command (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    world_t *world = (world_t *) arg;
    const char *name = chorus_command_name (command);
    if (streq (name, "charge")) {
        world->charges++;
        if (world->decline)
            chorus_reply_set_error (reply, "declined", "card declined", false);
        else
            s_reply_json (reply, "{\"charge_id\": \"ch-1\"}");
    }
    else
    if (streq (name, "refund"))
        world->refunds++;
    else
    if (streq (name, "reserve")) {
        world->reserves++;
        json_t *input = s_payload (chorus_command_payload (command), chorus_command_size (command));
        char *text = json_dumps (input, JSON_COMPACT);
        s_reply_json (reply, text);
        free (text);
        json_decref (input);
    }
    else
    if (streq (name, "release"))
        world->releases++;
    else
    if (streq (name, "create_label")) {
        world->labels++;
        if (world->hold_labels)
            chorus_reply_set_error (reply, "busy", "try later", true);
        else
            s_reply_json (reply, "{\"label\": \"L-1\"}");
    }
}

typedef struct {
    int fulfilled;              //  order.fulfilled events seen
    int cancelled;              //  order.cancelled events seen
} outcomes_t;

static int
s_on_outcome (chorus_node_t *node, chorus_event_t *event, void *arg)
{
    outcomes_t *outcomes = (outcomes_t *) arg;
    if (streq (chorus_event_topic (event), "order.fulfilled"))
        outcomes->fulfilled++;
    else
        outcomes->cancelled++;
    return 0;
}

//  --------------------------------------------------------------------------
//  Running everything in this thread

#define NODES 6

typedef struct {
    chorus_coordinator_t *coordinator;  //  the coordinator
    chorus_node_t *nodes [NODES];       //  services, a client, a listener
} mesh_t;

typedef bool (s_until_fn) (void *arg);

static bool
s_run (mesh_t *mesh, s_until_fn *until, void *arg, int timeout_ms)
{
    int64_t end = zclock_mono () + timeout_ms;
    while (!until (arg) && zclock_mono () < end) {
        chorus_coordinator_run (mesh->coordinator, 5);
        for (int i = 0; i < NODES; i++)
            if (mesh->nodes [i])
                chorus_node_dispatch (mesh->nodes [i]);
    }
    return until (arg);
}

typedef struct {
    int *counter;               //  what to watch
    int want;                   //  the value to reach
} at_least_t;

static bool
s_at_least (void *arg)
{
    at_least_t *at = (at_least_t *) arg;
    return *at->counter >= at->want;
}

//  A command to the coordinator, answered synchronously for the test
typedef struct {
    bool done;                  //  replied
    int status;                 //  reply status
    json_t *value;              //  reply payload
    char code [64];             //  error code
} call_t;

static void
s_on_reply (chorus_node_t *node, chorus_reply_t *reply, void *arg)
{
    call_t *call = (call_t *) arg;
    call->status = chorus_reply_status (reply);
    call->value = s_payload (chorus_reply_payload (reply), chorus_reply_size (reply));
    snprintf (call->code, sizeof (call->code), "%s",
              chorus_reply_code (reply)? chorus_reply_code (reply): "");
    call->done = true;
}

static bool
s_replied (void *arg)
{
    return ((call_t *) arg)->done;
}

static json_t *
s_call (mesh_t *mesh, const char *command, const char *json, const char *idempotency, int *status,
        char *code)
{
    call_t call = {false, 0, NULL, ""};
    void *data;
    size_t size;
    char error [128];
    chorus_payload_from_json (json, strlen (json), 1 << 20, &data, &size, error,
                              sizeof (error));
    chorus_node_send_traced (mesh->nodes [3], "coordinator", command, data, size, 5000,
                             idempotency, NULL, s_on_reply, &call);
    free (data);
    s_run (mesh, s_replied, &call, 6000);
    if (status)
        *status = call.status;
    if (code)
        strcpy (code, call.code);
    return call.value? call.value: json_null ();
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
    char request [256];
    snprintf (request, sizeof (request), "{\"id\": \"%s\"}", wait->id);
    json_t *status = s_call (wait->mesh, "flow.status", request, NULL, NULL, NULL);
    const char *state = json_string_value (json_object_get (status, "state"));
    bool reached = state && streq (state, wait->state);
    json_decref (status);
    return reached;
}

static bool
s_met_all (void *arg)
{
    mesh_t *mesh = (mesh_t *) arg;
    return test_peers (chorus_coordinator_node (mesh->coordinator), NULL) >= 5;
}

static void
s_write (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    fputs (text, file);
    fclose (file);
}

#define FLOW_V1 \
    "flow: fulfil_order\n" \
    "version: 1\n" \
    "trigger: order.placed\n" \
    "key: $.input.order_id\n" \
    "steps:\n" \
    "  - id: charge\n" \
    "    service: payments\n" \
    "    command: charge\n" \
    "    input: { order_id: $.input.order_id, amount: $.input.total }\n" \
    "    retry: { attempts: 2, backoff: 50ms }\n" \
    "    compensate: { command: refund, input: { charge_id: $.steps.charge.output.charge_id } }\n" \
    "  - id: reserve\n" \
    "    service: inventory\n" \
    "    command: reserve\n" \
    "    depends_on: [charge]\n" \
    "    for_each: $.input.items\n" \
    "    input: { sku: $.item.sku, qty: $.item.qty }\n" \
    "    compensate: { command: release, input: { sku: $.item.sku } }\n" \
    "  - id: ship\n" \
    "    service: shipping\n" \
    "    command: create_label\n" \
    "    depends_on: [reserve]\n" \
    "    retry: { attempts: 100, backoff: 50ms, factor: 1 }\n" \
    "emit: { completed: order.fulfilled, failed: order.cancelled }\n"

int
main (void)
{
    char *root = test_tempdir ("coordinator");
    char *flows = zsys_sprintf ("%s/flows", root);
    char *store = zsys_sprintf ("%s/store", root);
    zsys_dir_create ("%s", flows);
    char *file = zsys_sprintf ("%s/fulfil_order.yaml", flows);
    s_write (file, FLOW_V1);

    mesh_t mesh = {NULL, {NULL}};
    char error [512];
    chorus_coordinator_config_t config = {.flows_dir = flows, .store_dir = store,
                                          .heartbeat_ms = TEST_HEARTBEAT_MS,
                                          .evasive_ms = TEST_EVASIVE_MS,
                                          .expired_ms = TEST_EXPIRED_MS,
                                          .verbose = getenv ("CHORUS_VERBOSE") != NULL};
    mesh.coordinator = chorus_coordinator_new (&config, error, sizeof (error));
    if (!ok (mesh.coordinator != NULL, "coordinator loads its flows"))
        bail_out (error);
    is_int (chorus_coordinator_start (mesh.coordinator), 0, "coordinator joins the mesh");
    const char *seed = chorus_node_endpoint (chorus_coordinator_node (mesh.coordinator));

    world_t world;
    memset (&world, 0, sizeof (world));
    const char *services [3] = {"payments", "inventory", "shipping"};
    const char *commands [3][2] = {{"charge", "refund"}, {"reserve", "release"},
                                   {"create_label", NULL}};
    for (int i = 0; i < 3; i++) {
        mesh.nodes [i] = test_node (services [i], NULL, seed);
        for (int c = 0; c < 2; c++)
            if (commands [i][c])
                chorus_node_handle (mesh.nodes [i], commands [i][c], s_on_command, &world);
        chorus_node_start (mesh.nodes [i]);
    }
    mesh.nodes [3] = test_node ("orders", NULL, seed);
    chorus_node_start (mesh.nodes [3]);
    outcomes_t outcomes = {0, 0};
    mesh.nodes [4] = test_node ("notifications", NULL, seed);
    chorus_node_subscribe (mesh.nodes [4], "order.fulfilled", s_on_outcome, &outcomes);
    chorus_node_subscribe (mesh.nodes [4], "order.cancelled", s_on_outcome, &outcomes);
    chorus_node_start (mesh.nodes [4]);
    ok (s_run (&mesh, s_met_all, &mesh, 5000), "the coordinator met every service");

    //  An order.placed event starts a flow that runs to the end
    const char *order = "{\"order_id\": \"o-1\", \"total\": 30, \"items\": "
                        "[{\"sku\": \"a\", \"qty\": 1}, {\"sku\": \"b\", \"qty\": 2}]}";
    void *data;
    size_t size;
    chorus_payload_from_json (order, strlen (order), 1 << 20, &data, &size, error,
                              sizeof (error));
    char placed [33];
    chorus_node_publish_traced (mesh.nodes [3], "order.placed", "o-1", data, size, "checkout-1",
                                placed);
    free (data);
    at_least_t fulfilled = {&outcomes.fulfilled, 1};
    ok (s_run (&mesh, s_at_least, &fulfilled, 10000), "order.placed led to order.fulfilled");
    is_int (world.charges, 1, "charged once");
    is_int (world.reserves, 2, "one reservation per item");
    is_int (world.labels, 1, "one label");
    json_t *list = s_call (&mesh, "flow.list", "{}", NULL, NULL, NULL);
    is_int (json_array_size (list), 1, "flow.list shows the flow");
    const char *state = json_string_value (json_object_get (json_array_get (list, 0), "state"));
    is_str (state, "completed", "completed");
    json_decref (list);

    //  Payments fails for good: compensation and order.cancelled
    world.decline = true;
    int status = 0;
    json_t *started = s_call (&mesh, "flow.start",
                              "{\"flow\": \"fulfil_order\", \"input\": {\"order_id\": \"o-2\", "
                              "\"total\": 5, \"items\": []}}", "start-o-2", &status, NULL);
    is_int (status, 0, "flow.start accepted");
    char id [160] = "";
    snprintf (id, sizeof (id), "%s", json_string_value (json_object_get (started, "id")));
    json_decref (started);
    at_least_t cancelled = {&outcomes.cancelled, 1};
    ok (s_run (&mesh, s_at_least, &cancelled, 10000), "a declined card led to order.cancelled");
    state_wait_t failed = {&mesh, id, "failed"};
    ok (s_in_state (&failed), "the flow failed");
    is_int (world.refunds, 0, "nothing was charged, so nothing is refunded");

    //  flow.start with the same idempotency key finds the same flow
    json_t *again = s_call (&mesh, "flow.start",
                            "{\"flow\": \"fulfil_order\", \"input\": {\"order_id\": \"o-2\"}}",
                            "start-o-2", &status, NULL);
    is_str (json_string_value (json_object_get (again, "id")), id, "a re-sent start finds its flow");
    json_decref (again);

    //  flow.retry re-runs it; with payments healthy it completes
    world.decline = false;
    char request [256];
    snprintf (request, sizeof (request), "{\"id\": \"%s\"}", id);
    json_decref (s_call (&mesh, "flow.retry", request, NULL, &status, NULL));
    is_int (status, 0, "flow.retry accepted");
    state_wait_t completed = {&mesh, id, "completed"};
    ok (s_run (&mesh, s_in_state, &completed, 10000), "the retried flow completed");

    //  A running flow (shipping keeps saying busy) is cancelled: the charge is
    //  refunded and both reservations released
    world.hold_labels = true;
    int refunds = world.refunds, releases = world.releases;
    json_t *held = s_call (&mesh, "flow.start",
                           "{\"flow\": \"fulfil_order\", \"input\": {\"order_id\": \"o-3\", "
                           "\"total\": 9, \"items\": [{\"sku\": \"x\", \"qty\": 1}, "
                           "{\"sku\": \"y\", \"qty\": 1}]}}", "start-o-3", NULL, NULL);
    snprintf (id, sizeof (id), "%s", json_string_value (json_object_get (held, "id")));
    json_decref (held);
    int labels = world.labels + 1;
    at_least_t shipping = {&world.labels, labels};
    ok (s_run (&mesh, s_at_least, &shipping, 10000), "the flow reached shipping");
    snprintf (request, sizeof (request), "{\"id\": \"%s\"}", id);
    json_decref (s_call (&mesh, "flow.cancel", request, NULL, &status, NULL));
    is_int (status, 0, "flow.cancel accepted");
    state_wait_t was_cancelled = {&mesh, id, "cancelled"};
    ok (s_run (&mesh, s_in_state, &was_cancelled, 10000), "the flow is cancelled");
    is_int (world.refunds, refunds + 1, "its charge was refunded");
    is_int (world.releases, releases + 2, "both reservations released");
    world.hold_labels = false;

    //  flow.status and unknown flows
    json_t *status_json = s_call (&mesh, "flow.status", request, NULL, &status, NULL);
    json_t *steps = json_object_get (status_json, "steps");
    is_int (json_array_size (steps), 3, "status lists the three steps");
    json_decref (status_json);
    char code [64];
    json_decref (s_call (&mesh, "flow.status", "{\"id\": \"nope\"}", NULL, &status, code));
    is_str (code, "not-found", "an unknown flow is not-found");
    json_decref (s_call (&mesh, "flow.start", "{\"flow\": \"nope\"}", NULL, &status, code));
    is_str (code, "unknown-flow", "an unknown definition is unknown-flow");

    //  flow.trace: the causal trace of the first order's transaction holds
    //  the trigger and the completion it caused
    json_t *trace = s_call (&mesh, "flow.trace", "{\"correlation\": \"checkout-1\"}", NULL,
                            &status, NULL);
    is_int (status, 0, "flow.trace answers");
    json_t *events = json_object_get (trace, "events");
    const char *fulfilled_cause = NULL;
    bool has_placed = false;
    for (size_t i = 0; i < json_array_size (events); i++) {
        json_t *entry = json_array_get (events, i);
        const char *topic = json_string_value (json_object_get (entry, "topic"));
        if (topic && streq (topic, "order.placed"))
            has_placed = streq (json_string_value (json_object_get (entry, "id")), placed);
        if (topic && streq (topic, "order.fulfilled"))
            fulfilled_cause = json_string_value (json_object_get (entry, "causation"));
    }
    ok (has_placed, "the trace holds the order.placed event");
    is_str (fulfilled_cause, placed, "and order.fulfilled, caused by it");
    json_decref (trace);

    for (int i = 0; i < NODES; i++)
        chorus_node_destroy (&mesh.nodes [i]);
    chorus_coordinator_destroy (&mesh.coordinator);
    free (file);
    free (flows);
    free (store);
    test_tempdir_remove (&root);
    return done_testing ();
}
