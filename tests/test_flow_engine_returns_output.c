/*  test_flow_engine_returns_output.c — a flow's `output:` is made when it
    completes, from its input and its steps' outputs (a fan-out's as a list,
    a whole value as the bytes it came as), shown in its status, and is the
    payload of its completed event; a flow that fails has none. Its journal
    records carry it (a snapshot and the delta of the completion), records
    of the shape written before outputs existed still load, and a flow
    without `output:` writes records of that shape and emits what it did.
*/
#include "testutil.h"
#include "flow_fixtures.h"
#include "chorus_record.h"

static const char *s_order =
    "flow: order\nversion: 1\nsteps:\n"
    "  - id: charge\n    service: pay\n    command: charge\n"
    "    compensate: { command: refund }\n"
    "  - id: pack\n    service: store\n    command: pack\n    depends_on: [charge]\n"
    "    for_each: $.input.items\n    input: $.item\n"
    "  - id: ship\n    service: ship\n    command: label\n    depends_on: [pack]\n"
    "emit: { completed: order.done, failed: order.failed }\n"
    "output: { order: $.input.id, receipt: $.steps.charge.output.receipt,\n"
    "          packed: $.steps.pack.output, label: $.steps.ship.output,\n"
    "          fixed: [1, \"two\"], missing: $.input.nothing }\n";

//  The output in the status, as JSON text compared
static bool
s_status_output_is (chorus_flow_t *flow, const char *expected)
{
    json_t *status = chorus_flow_status (flow);
    json_t *want = s_json (expected);
    json_t *output = json_object_get (status, "output");
    bool same = output && json_equal (output, want);
    if (!same) {
        char *got = output? json_dumps (output, JSON_ENCODE_ANY): NULL;
        diag ("status output: %s", got? got: "(none)");
        free (got);
    }
    json_decref (want);
    json_decref (status);
    return same;
}

//  A record's count of values at its top
static size_t
s_fields (chorus_record_t *record)
{
    chorus_reader_t reader;
    chorus_reader_init (&reader, record->data, record->size);
    return chorus_reader_array (&reader);
}

static chorus_flow_t *
s_restore (chorus_flowdef_t *def, chorus_record_t *record)
{
    chorus_reader_t reader;
    chorus_reader_init (&reader, record->data, record->size);
    char error [256] = "";
    chorus_flow_t *flow = chorus_flow_restore (def, &reader, error, sizeof error);
    if (!flow)
        diag ("restore: %s", error);
    return flow;
}

static int
s_apply (chorus_flow_t *flow, chorus_record_t *record)
{
    chorus_reader_t reader;
    chorus_reader_init (&reader, record->data, record->size);
    char error [256] = "";
    int rc = chorus_flow_apply (flow, &reader, error, sizeof error);
    if (rc)
        diag ("apply: %s", error);
    return rc;
}

static void
test_output_made_at_completion (void)
{
    chorus_flowdef_t *def = s_def (s_order);
    ok (chorus_flowdef_output (def) != NULL, "load: the definition has its output template");
    chorus_actions_t out;
    chorus_actions_init (&out);
    json_t *input = s_json ("{\"id\": \"A-1\", \"items\": [\"x\", \"y\"]}");
    chorus_flow_t *flow = chorus_flow_start (def, "f1", input, T0, &out);
    json_decref (input);
    ok (s_status_output_is (flow, "null"), "running: the status's output is null");

    //  A shadow follows the flow through its records
    chorus_record_t record;
    chorus_record_init (&record);
    chorus_flow_snapshot (flow, &record);
    is_int ((int) s_fields (&record), 11, "records: a running flow's snapshot has the shape "
            "written before outputs existed (11 values)");
    chorus_flow_t *shadow = s_restore (def, &record);
    ok (shadow != NULL, "records: that snapshot restores");

    is_int (s_ok (flow, "f1/charge", 1, "{\"receipt\": \"R9\"}", T0 + 1, &out), 0, "charge done");
    chorus_record_reset (&record);
    chorus_flow_delta (flow, &record);
    is_int ((int) s_fields (&record), 10, "records: a delta before completion has 10 values");
    ok (shadow && s_apply (shadow, &record) == 0, "records: it applies");
    is_int (s_ok (flow, "f1/pack/1", 1, "\"Y\"", T0 + 2, &out), 0, "item 1 packed");
    is_int (s_ok (flow, "f1/pack/0", 1, "\"X\"", T0 + 3, &out), 0, "item 0 packed");
    chorus_record_reset (&record);
    chorus_flow_delta (flow, &record);
    ok (shadow && s_apply (shadow, &record) == 0, "records: the packing delta applies");

    //  The last step answers with the payload it came as: a whole value
    json_t *label = s_json ("{\"tracking\": 42, \"r\": 0.5}");
    void *encoded;
    size_t size;
    char error [128];
    if (chorus_value_pack (label, 0, &encoded, &size, error, sizeof error))
        bail_out (error);
    chorus_result_t result = { .ok = true, .encoded = encoded, .encoded_size = size };
    chorus_actions_clear (&out);
    is_int (chorus_flow_reply (flow, "f1/ship", 1, &result, T0 + 4, &out), 0, "ship done");
    is_str (chorus_flow_state_name (chorus_flow_state (flow)), "completed", "the flow completed");
    const char *expected =
        "{\"order\": \"A-1\", \"receipt\": \"R9\", \"packed\": [\"X\", \"Y\"],"
        " \"label\": {\"tracking\": 42, \"r\": 0.5}, \"fixed\": [1, \"two\"], \"missing\": null}";
    ok (s_status_output_is (flow, expected), "completed: the status holds the output");
    char *event = zsys_sprintf ("{\"flow\": \"f1\", \"name\": \"order\", \"output\": %s}",
                                expected);
    ok (s_payload_is (&out, CHORUS_ACTION_EMIT, "order.done", event),
        "completed: the event's payload is the flow, its name and its output");
    zstr_free (&event);

    chorus_record_reset (&record);
    chorus_flow_delta (flow, &record);
    is_int ((int) s_fields (&record), 11, "records: the completion's delta carries the output");
    ok (shadow && s_apply (shadow, &record) == 0 && s_status_output_is (shadow, expected),
        "records: the shadow has the output after that delta");
    chorus_record_reset (&record);
    chorus_flow_delta (flow, &record);
    is_int ((int) s_fields (&record), 10, "records: the next delta does not carry it again");
    ok (shadow && s_apply (shadow, &record) == 0 && s_status_output_is (shadow, expected),
        "records: and the shadow keeps it");

    chorus_record_reset (&record);
    chorus_flow_snapshot (flow, &record);
    is_int ((int) s_fields (&record), 12, "records: a completed flow's snapshot carries it");
    chorus_flow_t *again = s_restore (def, &record);
    ok (again && s_status_output_is (again, expected), "records: and restores it");
    chorus_flow_destroy (&again);

    json_decref (label);
    free (encoded);
    chorus_flow_destroy (&shadow);
    chorus_flow_destroy (&flow);
    chorus_record_clear (&record);
    chorus_actions_clear (&out);
    chorus_flowdef_destroy (&def);
}

static void
test_whole_value_output (void)
{
    chorus_flowdef_t *def = s_def (
        "flow: whole\nversion: 1\nsteps:\n"
        "  - id: a\n    service: s\n    command: a\n"
        "emit: { completed: whole.done }\n"
        "output: $.steps.a.output\n");
    chorus_actions_t out;
    chorus_actions_init (&out);
    chorus_flow_t *flow = chorus_flow_start (def, "w", NULL, T0, &out);
    //  A float32 and a bin: JSON would change them, the bytes do not
    uint8_t bytes [] = { 0x82, 0xa1, 'f', 0xca, 0x3f, 0xc0, 0x00, 0x00,
                         0xa1, 'b', 0xc4, 0x02, 0x01, 0x02 };
    chorus_result_t result = { .ok = true, .encoded = bytes, .encoded_size = sizeof bytes };
    chorus_actions_clear (&out);
    is_int (chorus_flow_reply (flow, "w/a", 1, &result, T0 + 1, &out), 0, "a done");
    const chorus_action_t *emit = s_action (&out, CHORUS_ACTION_EMIT, "whole.done");
    //  The event is {"flow": "w", "name": "whole", "output": <the bytes>}
    uint8_t head [] = { 0x83, 0xa4, 'f', 'l', 'o', 'w', 0xa1, 'w', 0xa4, 'n', 'a', 'm', 'e',
                        0xa5, 'w', 'h', 'o', 'l', 'e', 0xa6, 'o', 'u', 't', 'p', 'u', 't' };
    ok (emit && emit->encoded && emit->encoded_size == sizeof head + sizeof bytes
        && memcmp (emit->encoded, head, sizeof head) == 0
        && memcmp ((uint8_t *) emit->encoded + sizeof head, bytes, sizeof bytes) == 0,
        "whole value: the event carries the step's output byte for byte");
    chorus_record_t record;
    chorus_record_init (&record);
    chorus_flow_snapshot (flow, &record);
    chorus_flow_t *again = s_restore (def, &record);
    ok (again && s_status_output_is (again, "{\"f\": 1.5, \"b\": {\"$bin\": \"AQI=\"}}"),
        "whole value: the completed flow restores with it");
    chorus_record_clear (&record);
    chorus_flow_destroy (&again);
    chorus_flow_destroy (&flow);
    chorus_actions_clear (&out);
    chorus_flowdef_destroy (&def);
}

static void
test_failed_flow_has_no_output (void)
{
    chorus_flowdef_t *def = s_def (s_order);
    chorus_actions_t out;
    chorus_actions_init (&out);
    json_t *input = s_json ("{\"id\": \"B-2\", \"items\": [\"x\"]}");
    chorus_flow_t *flow = chorus_flow_start (def, "f2", input, T0, &out);
    json_decref (input);
    s_ok (flow, "f2/charge", 1, "{\"receipt\": \"R1\"}", T0 + 1, &out);
    s_error (flow, "f2/pack/0", 1, false, T0 + 2, &out);
    s_ok (flow, "f2/charge/undo", 1, NULL, T0 + 3, &out);
    is_str (chorus_flow_state_name (chorus_flow_state (flow)), "failed", "the flow failed");
    ok (s_status_output_is (flow, "null"), "failed: no output");
    ok (s_payload_is (&out, CHORUS_ACTION_EMIT, "order.failed",
                      "{\"flow\": \"f2\", \"name\": \"order\", \"state\": \"failed\","
                      " \"error\": {\"code\": \"boom\", \"message\": \"it broke\","
                      " \"step\": \"pack\"}, \"input\": {\"id\": \"B-2\", \"items\": [\"x\"]}}"),
        "failed: the failed event is as before");
    chorus_record_t record;
    chorus_record_init (&record);
    chorus_flow_snapshot (flow, &record);
    is_int ((int) s_fields (&record), 11, "failed: its snapshot has no output");
    chorus_record_clear (&record);
    chorus_flow_destroy (&flow);
    chorus_actions_clear (&out);
    chorus_flowdef_destroy (&def);
}

static void
test_without_output (void)
{
    chorus_flowdef_t *def = s_def (
        "flow: plain\nversion: 1\nsteps:\n"
        "  - id: a\n    service: s\n    command: a\n"
        "emit: { completed: plain.done }\n");
    ok (chorus_flowdef_output (def) == NULL, "no output: the definition has none");
    chorus_actions_t out;
    chorus_actions_init (&out);
    chorus_flow_t *flow = chorus_flow_start (def, "p", NULL, T0, &out);
    s_ok (flow, "p/a", 1, "{\"n\": 1}", T0 + 1, &out);
    ok (s_payload_is (&out, CHORUS_ACTION_EMIT, "plain.done",
                      "{\"flow\": \"p\", \"name\": \"plain\", \"input\": {},"
                      " \"outputs\": {\"a\": {\"n\": 1}}}"),
        "no output: the completed event holds the input and outputs, as before");
    ok (s_status_output_is (flow, "null"), "no output: the status's output is null");
    chorus_record_t record;
    chorus_record_init (&record);
    chorus_flow_snapshot (flow, &record);
    is_int ((int) s_fields (&record), 11, "no output: the snapshot has the older shape");
    chorus_record_clear (&record);
    chorus_flow_destroy (&flow);
    chorus_actions_clear (&out);
    chorus_flowdef_destroy (&def);
}

//  Records with one value too many are refused, not taken for an output
static void
test_malformed_records (void)
{
    chorus_flowdef_t *def = s_def (s_order);
    chorus_actions_t out;
    chorus_actions_init (&out);
    chorus_flow_t *flow = chorus_flow_start (def, "f3", NULL, T0, &out);
    chorus_record_t record, extra;
    chorus_record_init (&record);
    chorus_record_init (&extra);
    chorus_flow_snapshot (flow, &record);
    //  The same values under a header of 15: one more than a snapshot of
    //  a child flow, with an output, its parent and mail, has
    chorus_record_array (&extra, 15);
    chorus_record_raw (&extra, record.data + 1, record.size - 1);
    chorus_record_nil (&extra);
    chorus_record_nil (&extra);
    chorus_record_nil (&extra);
    chorus_record_nil (&extra);
    chorus_reader_t reader;
    chorus_reader_init (&reader, extra.data, extra.size);
    char error [256] = "";
    chorus_flow_t *bad = chorus_flow_restore (def, &reader, error, sizeof error);
    ok (bad == NULL && strstr (error, "wrong number of values"),
        "records: a snapshot of 15 values is refused (%s)", error);
    chorus_flow_destroy (&bad);
    chorus_record_clear (&record);
    chorus_record_clear (&extra);
    chorus_flow_destroy (&flow);
    chorus_actions_clear (&out);
    chorus_flowdef_destroy (&def);
}

int
main (void)
{
    test_output_made_at_completion ();
    test_whole_value_output ();
    test_failed_flow_has_no_output ();
    test_without_output ();
    test_malformed_records ();
    return done_testing ();
}
