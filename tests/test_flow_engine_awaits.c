/*  test_flow_engine_awaits.c — await steps in the engine: an event that
    comes before the await starts is kept and completes it when it starts;
    an event after the flow ended is dropped; a match compares like business
    keys; a timeout fails the flow for good; signals are kept, taken once
    per id, and refused by a finished flow; and all of it survives the
    journal records (snapshot and deltas rebuild the same flow).
*/
#include "flow_fixtures.h"

static const char *s_payment =
    "flow: pay\nversion: 1\n"
    "steps:\n"
    "  - { id: charge, service: payments, command: charge, compensate: { command: refund } }\n"
    "  - id: settled\n"
    "    depends_on: [charge]\n"
    "    await: { topic: payment.settled, match: { order_id: $.input.order_id, kind: card },"
    " timeout: 10m }\n"
    "  - { id: ship, service: shipping, command: ship, depends_on: [settled],"
    "      input: { paid: $.steps.settled.output.amount } }\n";

static const char *s_approval =
    "flow: approve\nversion: 1\n"
    "steps:\n"
    "  - { id: ask, service: people, command: ask }\n"
    "  - { id: approved, depends_on: [ask], await: { signal: approval, timeout: 1h } }\n"
    "  - { id: act, service: people, command: act, depends_on: [approved],"
    "      input: $.steps.approved.output }\n";

//  An event's payload, as it comes off the wire (caller frees)
static void *
s_packed (const char *json, size_t *size)
{
    json_t *value = s_json (json);
    void *data = NULL;
    char error [128];
    if (chorus_value_pack (value, 0, &data, size, error, sizeof error))
        bail_out (error);
    json_decref (value);
    return data;
}

static int
s_event (chorus_flow_t *flow, const char *topic, const char *id, const char *json, uint64_t now,
         chorus_actions_t *out)
{
    size_t size = 0;
    void *data = json? s_packed (json, &size): NULL;
    chorus_actions_clear (out);
    int rc = chorus_flow_event (flow, topic, id, data, size, now, out);
    free (data);
    return rc;
}

static int
s_signal (chorus_flow_t *flow, const char *name, const char *id, const char *json, uint64_t now,
          chorus_actions_t *out, const char **step)
{
    json_t *payload = json? s_json (json): NULL;
    chorus_actions_clear (out);
    int rc = chorus_flow_signal (flow, name, id, payload, now, out, step);
    json_decref (payload);
    return rc;
}

//  The flow rebuilt from records, kept beside the live one: a snapshot
//  first, then a delta after each transition
typedef struct {
    chorus_flowdef_t *def;
    chorus_flow_t *shadow;
} s_mirror_t;

static bool
s_mirror (s_mirror_t *mirror, chorus_flow_t *live, const char *what)
{
    chorus_record_t record;
    chorus_record_init (&record);
    char error [256] = "";
    bool same = false;
    if (!mirror->shadow) {
        chorus_flow_snapshot (live, &record);
        chorus_reader_t reader;
        chorus_reader_init (&reader, record.data, record.size);
        mirror->shadow = chorus_flow_restore (mirror->def, &reader, error, sizeof error);
    }
    else {
        chorus_flow_delta (live, &record);
        chorus_reader_t reader;
        chorus_reader_init (&reader, record.data, record.size);
        if (chorus_flow_apply (mirror->shadow, &reader, error, sizeof error))
            chorus_flow_destroy (&mirror->shadow);
    }
    chorus_record_clear (&record);
    if (mirror->shadow) {
        json_t *a = chorus_flow_save_all (live);
        json_t *b = chorus_flow_save_all (mirror->shadow);
        same = json_equal (a, b);
        if (!same) {
            char *ta = json_dumps (a, JSON_COMPACT), *tb = json_dumps (b, JSON_COMPACT);
            diag ("%s: live %s", what, ta);
            diag ("%s: rebuilt %s", what, tb);
            free (ta);
            free (tb);
        }
        json_decref (a);
        json_decref (b);
    }
    else
        diag ("%s: %s", what, error);
    return same;
}

//  --------------------------------------------------------------------------

static void
test_event_before_await (void)
{
    chorus_flowdef_t *def = s_def (s_payment);
    s_mirror_t mirror = {def, NULL};
    chorus_actions_t out;
    chorus_actions_init (&out);
    json_t *input = s_json ("{\"order_id\": \"A-17\"}");
    chorus_flow_t *flow = chorus_flow_start (def, "P1", input, T0, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "P1/charge", "early: charge is sent first");
    ok (s_mirror (&mirror, flow, "start"), "early: the snapshot rebuilds the flow");
    s_is_step_field (flow, "settled", "state", "\"pending\"", "early: the await has not started");

    is_int (s_event (flow, "payment.settled", "e-other", "{\"order_id\": \"B-2\", \"kind\": "
                     "\"card\"}", T0 + 1, &out), 0, "early: another order's event is not kept");
    is_int (s_event (flow, "payment.settled", "e-kind", "{\"order_id\": \"A-17\", \"kind\": "
                     "\"cash\"}", T0 + 1, &out), 0, "early: every match field must agree");
    is_int (s_event (flow, "payment.settled", "e-none", "{\"kind\": \"card\"}", T0 + 1, &out),
            0, "early: a field missing from the payload matches nothing");
    is_int (s_event (flow, "payment.other", "e-topic", "{\"order_id\": \"A-17\", \"kind\": "
                     "\"card\"}", T0 + 1, &out), 0, "early: another topic is not awaited");
    is_int (s_event (flow, "payment.settled", "e-1", "{\"order_id\": \"A-17\", \"kind\": "
                     "\"card\", \"amount\": 12}", T0 + 2, &out), 1,
            "early: the matching event is kept before the await starts");
    is_int (out.size, 0, "early: keeping it sends nothing");
    ok (s_mirror (&mirror, flow, "kept"), "early: the delta carries the kept event");
    is_int (s_event (flow, "payment.settled", "e-2", "{\"order_id\": \"A-17\", \"kind\": "
                     "\"card\", \"amount\": 99}", T0 + 3, &out), 0,
            "early: a second matching event is not kept: the first wins");
    is_int (s_event (flow, "payment.settled", "e-1", "{\"order_id\": \"A-17\", \"kind\": "
                     "\"card\", \"amount\": 12}", T0 + 3, &out), 0,
            "early: the same event again changes nothing");

    is_int (s_ok (flow, "P1/charge", 1, "{}", T0 + 10, &out), 0, "early: charge completes");
    s_is_step_field (flow, "settled", "state", "\"done\"",
                     "early: the await completes at once with the kept event");
    s_is_step_field (flow, "settled", "output", "{\"order_id\":\"A-17\",\"kind\":\"card\","
                     "\"amount\":12}", "early: its output is the event's payload");
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "P1/ship", "{\"paid\": 12}"),
        "early: the step after it starts in the same transition, with its output");
    ok (s_mirror (&mirror, flow, "taken"), "early: the delta rebuilds the completed await");
    s_ok (flow, "P1/ship", 1, "{}", T0 + 20, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_COMPLETED, "early: the flow completes");

    is_int (s_event (flow, "payment.settled", "e-late", "{\"order_id\": \"A-17\", \"kind\": "
                     "\"card\"}", T0 + 30, &out), -1,
            "ended: an event after the flow ended is dropped (-1)");
    is_int (out.size, 0, "ended: and nothing happens");
    ok (s_mirror (&mirror, flow, "ended"), "ended: the flow is unchanged");
    chorus_flow_destroy (&mirror.shadow);
    chorus_flow_destroy (&flow);
    json_decref (input);
    chorus_actions_clear (&out);
    chorus_flowdef_destroy (&def);
}

static void
test_event_while_awaiting (void)
{
    chorus_flowdef_t *def = s_def (s_payment);
    chorus_actions_t out;
    chorus_actions_init (&out);
    //  An integer order id in the input: "5" in the payload is the same
    json_t *input = s_json ("{\"order_id\": 5}");
    chorus_flow_t *flow = chorus_flow_start (def, "P2", input, T0, &out);
    s_ok (flow, "P2/charge", 1, "{}", T0 + 10, &out);
    is_str (s_keys (&out, CHORUS_ACTION_TIMER), "await:P2/settled",
            "awaiting: the await sets its timeout timer");
    is_int (out.items [0].at, T0 + 10 + 600000, "awaiting: at the start + 10m");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "", "awaiting: an await sends no command");
    s_is_step_field (flow, "settled", "state", "\"running\"", "awaiting: the await runs");
    is_int (s_ok (flow, "P2/settled", 1, "{}", T0 + 11, &out), -1,
            "awaiting: a reply with the await's key is ignored");
    chorus_actions_t resumed;
    chorus_actions_init (&resumed);
    chorus_flow_resume (flow, T0 + 12, &resumed);
    is_str (s_keys (&resumed, CHORUS_ACTION_TIMER), "await:P2/settled",
            "awaiting: a resume re-arms the timeout, and sends nothing");
    is_int (resumed.size, 1, "awaiting: one action on resume");
    chorus_actions_clear (&resumed);
    is_int (s_event (flow, "payment.settled", "e-5", "{\"order_id\": \"5\", \"kind\": \"card\", "
                     "\"amount\": 3}", T0 + 20, &out), 1,
            "awaiting: 5 and \"5\" match, as business keys do");
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "P2/ship", "{\"paid\": 3}"),
        "awaiting: the event completes the await and ship follows");
    is_int (s_timer (flow, "await:P2/settled", T0 + 600010, &out), -1,
            "awaiting: the timeout timer of a completed await is stale");
    chorus_flow_destroy (&flow);
    json_decref (input);

    //  Other values compare as JSON: 5 and 5.0, true and "true" differ
    input = s_json ("{\"order_id\": true}");
    flow = chorus_flow_start (def, "P3", input, T0, &out);
    is_int (s_event (flow, "payment.settled", "e-t", "{\"order_id\": \"true\", \"kind\": "
                     "\"card\"}", T0 + 1, &out), 0, "equality: true is not \"true\"");
    is_int (s_event (flow, "payment.settled", "e-tt", "{\"order_id\": true, \"kind\": "
                     "\"card\"}", T0 + 1, &out), 1, "equality: true is true");
    chorus_flow_destroy (&flow);
    json_decref (input);
    chorus_actions_clear (&out);
    chorus_flowdef_destroy (&def);
}

static void
test_timeout (void)
{
    chorus_flowdef_t *def = s_def (s_payment);
    s_mirror_t mirror = {def, NULL};
    chorus_actions_t out;
    chorus_actions_init (&out);
    json_t *input = s_json ("{\"order_id\": \"A-18\"}");
    chorus_flow_t *flow = chorus_flow_start (def, "P4", input, T0, &out);
    s_mirror (&mirror, flow, "start");
    s_ok (flow, "P4/charge", 1, "{\"charge_id\": 7}", T0 + 10, &out);
    s_mirror (&mirror, flow, "awaiting");
    is_int (s_timer (flow, "await:P4/settled", T0 + 600010, &out), 0, "timeout: the timer fires");
    s_is_step_field (flow, "settled", "state", "\"failed\"", "timeout: the await failed");
    s_is_step_field (flow, "settled", "error", "{\"code\":\"await-timeout\",\"message\":\"no "
                     "matching event on 'payment.settled' within 600000 ms\"}",
                     "timeout: with the code await-timeout, once (awaits are not retried)");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "P4/charge/undo",
            "timeout: what completed is compensated");
    ok (s_mirror (&mirror, flow, "timed out"), "timeout: the records rebuild it");
    s_ok (flow, "P4/charge/undo", 1, "{}", T0 + 600020, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_FAILED, "timeout: the flow failed");
    is_int (s_event (flow, "payment.settled", "e-9", "{\"order_id\": \"A-18\", \"kind\": "
                     "\"card\"}", T0 + 600030, &out), -1,
            "timeout: the event that comes too late is dropped");
    chorus_flow_destroy (&mirror.shadow);
    chorus_flow_destroy (&flow);
    json_decref (input);

    //  Cancelled while it awaits: the await stops, the rest is undone
    input = s_json ("{\"order_id\": \"A-19\"}");
    flow = chorus_flow_start (def, "P5", input, T0, &out);
    s_ok (flow, "P5/charge", 1, "{}", T0 + 10, &out);
    chorus_actions_clear (&out);
    is_int (chorus_flow_cancel (flow, T0 + 20, &out), 0, "cancel: an awaiting flow cancels");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "P5/charge/undo",
            "cancel: compensation does not wait for the await");
    s_is_step_field (flow, "settled", "error", "{\"code\":\"stopped\",\"message\":\"the flow "
                     "stopped while the step awaited\"}", "cancel: the await says why it stopped");
    s_ok (flow, "P5/charge/undo", 1, "{}", T0 + 30, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_CANCELLED, "cancel: the flow is cancelled");
    chorus_flow_destroy (&flow);
    json_decref (input);
    chorus_actions_clear (&out);
    chorus_flowdef_destroy (&def);
}

//  A flow that failed before its await started keeps the event it kept;
//  flow.retry runs the await again, and the kept event completes it
static void
test_retry (void)
{
    chorus_flowdef_t *def = s_def (s_payment);
    chorus_actions_t out;
    chorus_actions_init (&out);
    json_t *input = s_json ("{\"order_id\": \"A-20\"}");
    chorus_flow_t *flow = chorus_flow_start (def, "P6", input, T0, &out);
    is_int (s_event (flow, "payment.settled", "e-20", "{\"order_id\": \"A-20\", \"kind\": "
                     "\"card\", \"amount\": 5}", T0 + 1, &out), 1, "retry: the event is kept");
    s_error (flow, "P6/charge", 1, false, T0 + 2, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_FAILED, "retry: charge failed, the flow too");
    is_int (s_event (flow, "payment.settled", "e-21", "{\"order_id\": \"A-20\", \"kind\": "
                     "\"card\", \"amount\": 6}", T0 + 3, &out), -1,
            "retry: an event while the flow is failed is dropped");
    chorus_actions_clear (&out);
    is_int (chorus_flow_retry (flow, T0 + 10, &out), 0, "retry: the flow runs again");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "P6/charge:r2", "retry: charge again, new key");
    s_ok (flow, "P6/charge:r2", 1, "{}", T0 + 20, &out);
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "P6/ship:r2", "{\"paid\": 5}"),
        "retry: the await took the event kept before the failure");
    chorus_flow_destroy (&flow);
    json_decref (input);
    chorus_actions_clear (&out);
    chorus_flowdef_destroy (&def);
}

static void
test_signals (void)
{
    chorus_flowdef_t *def = s_def (s_approval);
    s_mirror_t mirror = {def, NULL};
    chorus_actions_t out;
    chorus_actions_init (&out);
    chorus_flow_t *flow = chorus_flow_start (def, "S1", NULL, T0, &out);
    s_mirror (&mirror, flow, "start");
    const char *step = "x";
    is_int (s_signal (flow, "approval", "sig-1", "{\"by\": \"ann\"}", T0 + 1, &out, &step), 0,
            "signal: taken before the await starts");
    ok (step == NULL, "signal: kept, no step took it yet");
    is_int (s_signal (flow, "comment", "sig-c", "\"looks fine\"", T0 + 2, &out, &step), 0,
            "signal: one that no step awaits is kept too");
    ok (s_mirror (&mirror, flow, "kept"), "signal: the delta carries the kept signals");
    is_int (s_signal (flow, "approval", "sig-1", "{\"by\": \"bob\"}", T0 + 3, &out, &step), 1,
            "signal: the same id again is the same signal (a CLI retry)");
    s_ok (flow, "S1/ask", 1, "{}", T0 + 10, &out);
    s_is_step_field (flow, "approved", "output", "{\"by\":\"ann\"}",
                     "signal: the await completes at once with the kept signal's payload");
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "S1/act", "{\"by\": \"ann\"}"),
        "signal: and the next step starts with it");
    ok (s_mirror (&mirror, flow, "taken"), "signal: the records rebuild it");
    is_int (s_signal (flow, "approval", "sig-1", NULL, T0 + 11, &out, &step), 1,
            "signal: asked again after it was taken: the same answer");
    is_str (step, "approved", "signal: naming the step it completed");
    json_t *status = chorus_flow_status (flow);
    is_int (json_array_size (json_object_get (status, "received")), 2,
            "signal: the status lists what the flow received");
    json_decref (status);
    s_ok (flow, "S1/act", 1, "{}", T0 + 20, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_COMPLETED, "signal: the flow completes");
    is_int (s_signal (flow, "approval", "sig-2", "{}", T0 + 30, &out, &step), -1,
            "finished: a new signal to a finished flow is refused");
    is_int (out.size, 0, "finished: and changes nothing");
    chorus_flow_destroy (&mirror.shadow);
    chorus_flow_destroy (&flow);

    //  While it awaits: the signal completes it; with no payload, null
    mirror.shadow = NULL;
    flow = chorus_flow_start (def, "S2", NULL, T0, &out);
    s_mirror (&mirror, flow, "start");
    s_ok (flow, "S2/ask", 1, "{}", T0 + 10, &out);
    s_mirror (&mirror, flow, "awaiting");
    is_int (s_signal (flow, "approval", "sig-3", NULL, T0 + 20, &out, &step), 0,
            "awaiting: the signal is taken");
    is_str (step, "approved", "awaiting: by the awaiting step");
    s_is_step_field (flow, "approved", "output", "null", "awaiting: no payload is null");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "S2/act", "awaiting: the next step starts");
    ok (s_mirror (&mirror, flow, "signalled"), "awaiting: the records rebuild it");
    chorus_flow_destroy (&mirror.shadow);
    chorus_flow_destroy (&flow);

    //  A signal that never comes: the await's timeout fails the flow
    flow = chorus_flow_start (def, "S3", NULL, T0, &out);
    s_ok (flow, "S3/ask", 1, "{}", T0 + 10, &out);
    is_int (s_timer (flow, "await:S3/approved", T0 + 3600010, &out), 0, "no signal: timeout");
    is_int (chorus_flow_state (flow), CHORUS_FLOW_FAILED, "no signal: the flow failed");
    is_int (s_signal (flow, "approval", "sig-4", NULL, T0 + 3600020, &out, &step), -1,
            "no signal: a signal after it failed is refused");
    chorus_flow_destroy (&flow);
    chorus_actions_clear (&out);
    chorus_flowdef_destroy (&def);
}

//  An await whose when: is false is skipped: it waits for nothing
static void
test_skipped (void)
{
    chorus_flowdef_t *def = s_def (
        "flow: maybe\nversion: 1\nsteps:\n"
        "  - { id: paid, when: '$.input.card == true', await: { topic: paid, timeout: 1m } }\n"
        "  - { id: ship, service: s, command: ship, depends_on: [paid] }\n");
    chorus_actions_t out;
    chorus_actions_init (&out);
    json_t *input = s_json ("{\"card\": false}");
    chorus_flow_t *flow = chorus_flow_start (def, "K1", input, T0, &out);
    s_is_step_field (flow, "paid", "state", "\"skipped\"", "skipped: the await is skipped");
    is_str (s_keys (&out, CHORUS_ACTION_TIMER), "", "skipped: with no timeout timer");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "K1/ship", "skipped: the next step runs");
    is_int (s_event (flow, "paid", "e-1", "{}", T0 + 1, &out), 0,
            "skipped: an event on its topic is not taken");
    chorus_flow_destroy (&flow);
    json_decref (input);
    chorus_actions_clear (&out);
    chorus_flowdef_destroy (&def);
}

//  A flow without awaits writes the records of earlier versions (11
//  values in a snapshot); received mail adds one value at the end
static void
test_record_shapes (void)
{
    chorus_flowdef_t *def = s_def (s_approval);
    chorus_actions_t out;
    chorus_actions_init (&out);
    chorus_flow_t *flow = chorus_flow_start (def, "R1", NULL, T0, &out);
    chorus_record_t record;
    chorus_record_init (&record);
    chorus_flow_snapshot (flow, &record);
    is_int (((uint8_t *) record.data) [0], 0x90 + 11,
            "shape: a snapshot without mail has the 11 values of earlier versions");
    chorus_record_clear (&record);
    chorus_flow_delta (flow, &record);
    is_int (((uint8_t *) record.data) [0], 0x90 + 10, "shape: and a delta its 10");
    chorus_record_clear (&record);
    s_signal (flow, "approval", "sig-1", "{}", T0 + 1, &out, NULL);
    chorus_flow_delta (flow, &record);
    is_int (((uint8_t *) record.data) [0], 0x90 + 12,
            "shape: a delta with mail has two more (the output, then the mail)");
    chorus_record_clear (&record);
    chorus_flow_delta (flow, &record);
    is_int (((uint8_t *) record.data) [0], 0x90 + 10, "shape: only while mail changed");
    chorus_record_clear (&record);
    chorus_flow_snapshot (flow, &record);
    is_int (((uint8_t *) record.data) [0], 0x90 + 14,
            "shape: a snapshot with mail has 14 (the output, the parent, then the mail)");
    chorus_record_clear (&record);
    chorus_flow_destroy (&flow);
    chorus_actions_clear (&out);
    chorus_flowdef_destroy (&def);
}

//  Records written before awaits existed (by commit 2285f4f, the engine
//  without them): a snapshot and two deltas of a two-step flow. They load,
//  and a flow without awaits still writes them byte for byte.
static const char *s_main_snapshot =
    "9b01c201cd03e8000000c0a56f6c642d31c40b81a56f72646572a3412d319295a161c3c0c0919d02"
    "0101c0cd03e80000000000c2c0c295a162c2c0c090";
static const char *s_main_delta_1 =
    "9a01c201cd03e8000001c091920195a162c3c0c0919d020101c0cd03f20000000000c2c0c2919300"
    "009d040101c0cd03e8cd03f200010000c2c40481a17607c2";
static const char *s_main_delta_2 =
    "9a03c201cd03e8cd03fc0002c090919301009d040101c0cd03f2cd03fc00020000c2c40481a17607"
    "c2";

static const char *s_old_flow =
    "flow: old\nversion: 1\nsteps:\n"
    "  - { id: a, service: s, command: c, compensate: { command: undo } }\n"
    "  - { id: b, service: s, command: d, depends_on: [a], input: { x: $.steps.a.output.v } }\n";

//  The bytes of a hex string, in a static buffer
static const uint8_t *
s_bytes (const char *hex, size_t *size)
{
    static uint8_t bytes [512];
    *size = strlen (hex) / 2;
    for (size_t i = 0; i < *size && i < sizeof bytes; i++) {
        unsigned value;
        sscanf (hex + 2 * i, "%2x", &value);
        bytes [i] = (uint8_t) value;
    }
    return bytes;
}

static bool
s_same_bytes (chorus_record_t *record, const char *hex)
{
    size_t size;
    const uint8_t *bytes = s_bytes (hex, &size);
    return record->size == size && memcmp (record->data, bytes, size) == 0;
}

static void
test_records_of_earlier_versions (void)
{
    chorus_flowdef_t *def = s_def (s_old_flow);
    char error [256] = "";
    size_t size;
    const uint8_t *bytes = s_bytes (s_main_snapshot, &size);
    chorus_reader_t reader;
    chorus_reader_init (&reader, bytes, size);
    chorus_flow_t *old = chorus_flow_restore (def, &reader, error, sizeof error);
    ok (old != NULL, "earlier: its snapshot loads%s%s", error [0]? ": ": "", error);
    const char *deltas [] = { s_main_delta_1, s_main_delta_2 };
    for (int i = 0; old && i < 2; i++) {
        bytes = s_bytes (deltas [i], &size);
        chorus_reader_init (&reader, bytes, size);
        is_int (chorus_flow_apply (old, &reader, error, sizeof error), 0,
                "earlier: its delta %d applies%s%s", i + 1, error [0]? ": ": "", error);
    }
    json_t *status = old? chorus_flow_status (old): NULL;
    json_t *want = s_json ("{\"id\":\"old-1\",\"flow\":\"old\",\"version\":1,\"state\":"
        "\"completed\",\"input\":{\"order\":\"A-1\"},\"started\":1000,\"finished\":1020,"
        "\"error\":null,\"output\":null,\"steps\":[{\"id\":\"a\",\"state\":\"done\",\"attempts\":1,\"error\":"
        "null,\"started\":1000,\"finished\":1010,\"output\":{\"v\":7}},{\"id\":\"b\",\"state\":"
        "\"done\",\"attempts\":1,\"error\":null,\"started\":1010,\"finished\":1020,\"output\":"
        "{\"v\":7}}]}");
    ok (status && json_equal (status, want), "earlier: the flow they rebuild is the one "
        "that wrote them");
    json_decref (status);
    json_decref (want);
    chorus_flow_destroy (&old);

    //  The same transitions now write the same bytes
    chorus_actions_t out;
    chorus_actions_init (&out);
    json_t *input = s_json ("{\"order\": \"A-1\"}");
    chorus_flow_t *flow = chorus_flow_start (def, "old-1", input, 1000, &out);
    chorus_record_t record;
    chorus_record_init (&record);
    chorus_flow_snapshot (flow, &record);
    ok (s_same_bytes (&record, s_main_snapshot), "earlier: the same snapshot, byte for byte");
    chorus_record_clear (&record);
    s_ok (flow, "old-1/a", 1, "{\"v\": 7}", 1010, &out);
    chorus_flow_delta (flow, &record);
    ok (s_same_bytes (&record, s_main_delta_1), "earlier: the same first delta");
    chorus_record_clear (&record);
    s_ok (flow, "old-1/b", 1, "{\"v\": 7}", 1020, &out);
    chorus_flow_delta (flow, &record);
    ok (s_same_bytes (&record, s_main_delta_2), "earlier: the same second delta");
    chorus_record_clear (&record);
    chorus_flow_destroy (&flow);
    json_decref (input);
    chorus_actions_clear (&out);
    chorus_flowdef_destroy (&def);
}

int
main (void)
{
    test_event_before_await ();
    test_event_while_awaiting ();
    test_timeout ();
    test_retry ();
    test_signals ();
    test_record_shapes ();
    test_skipped ();
    test_records_of_earlier_versions ();
    done_testing ();
}
