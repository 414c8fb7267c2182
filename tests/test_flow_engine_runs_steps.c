/*  test_flow_engine_runs_steps.c — the flow engine runs a flow's steps in
    dependency order, in parallel where it may, retries with exact backoffs,
    fans out over lists, ignores late replies and stale timers, fails a flow
    that outlives its deadline, and passes on whole the values that came as
    payloads.
*/
#include "flow_fixtures.h"

//  --------------------------------------------------------------------------
//  Helpers

static int
s_timeout (chorus_flow_t *flow, const char *key, int attempt, uint64_t now,
           chorus_actions_t *out)
{
    chorus_result_t result = { .timeout = true };
    chorus_actions_clear (out);
    return chorus_flow_reply (flow, key, attempt, &result, now, out);
}

//  --------------------------------------------------------------------------

static void
test_linear (void)
{
    chorus_flowdef_t *def = s_def (
        "flow: linear\nversion: 3\n"
        "emit: { completed: linear.done, failed: linear.failed }\n"
        "steps:\n"
        "  - { id: a, service: sa, command: ca, timeout: 2s, input: { n: $.input.n } }\n"
        "  - { id: b, service: sb, command: cb, depends_on: [a],"
        "      input: { x: $.steps.a.output.v } }\n"
        "  - { id: c, service: sc, command: cc, depends_on: [b],"
        "      input: { y: $.steps.b.output.w, n: $.input.n, fixed: 7 } }\n");
    json_t *input = s_json ("{\"n\": 5}");
    chorus_actions_t out;
    chorus_actions_init (&out);
    chorus_flow_t *flow = chorus_flow_start (def, "L1", input, T0, &out);
    ok (flow != NULL, "linear: flow starts");
    is_int (out.size, 1, "linear: one action at start");
    const chorus_action_t *send = &out.items [0];
    is_int (send->kind, CHORUS_ACTION_SEND, "linear: it is a SEND");
    is_str (send->key, "L1/a", "linear: key is FLOW/STEP");
    is_str (send->flow, "L1", "linear: action names its flow");
    is_str (send->service, "sa", "linear: to the step's service");
    is_str (send->command, "ca", "linear: with the step's command");
    is_int (send->attempt, 1, "linear: first try");
    is_int (send->at, T0 + 2000, "linear: deadline is now + step timeout");
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "L1/a", "{\"n\": 5}"),
        "linear: payload resolved from the input");
    is_int (chorus_flow_state (flow), CHORUS_FLOW_RUNNING, "linear: running");

    is_int (s_ok (flow, "L1/a", 1, "{\"v\": 11}", T0 + 10, &out), 0, "linear: a replies");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "L1/b", "linear: b follows a");
    is_int (out.items [0].at, T0 + 10 + 30000, "linear: default step timeout is 30s");
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "L1/b", "{\"x\": 11}"),
        "linear: b gets a's output");
    s_ok (flow, "L1/b", 1, "{\"w\": \"dub\"}", T0 + 20, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "L1/c", "linear: c follows b");
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "L1/c",
                      "{\"y\": \"dub\", \"n\": 5, \"fixed\": 7}"),
        "linear: c gets b's output and the input");
    ok (!chorus_flow_finished (flow), "linear: not finished before c");
    s_ok (flow, "L1/c", 1, "[1, 2]", T0 + 30, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_COMPLETED, "linear: completed");
    ok (chorus_flow_finished (flow), "linear: finished");
    is_str (s_keys (&out, CHORUS_ACTION_EMIT), "linear.done", "linear: emits completed");
    ok (s_payload_is (&out, CHORUS_ACTION_EMIT, "linear.done",
                      "{\"flow\": \"L1\", \"name\": \"linear\", \"input\": {\"n\": 5},"
                      " \"outputs\": {\"a\": {\"v\": 11}, \"b\": {\"w\": \"dub\"},"
                      " \"c\": [1, 2]}}"),
        "linear: completed payload has flow, name, input and outputs");

    json_t *status = chorus_flow_status (flow);
    json_t *want = s_json (
        "{\"id\": \"L1\", \"flow\": \"linear\", \"version\": 3, \"state\": \"completed\","
        " \"input\": {\"n\": 5}, \"started\": 1000, \"finished\": 1030, \"error\": null,"
        " \"output\": null,"
        " \"steps\": ["
        "  {\"id\": \"a\", \"state\": \"done\", \"attempts\": 1, \"error\": null,"
        "   \"started\": 1000, \"finished\": 1010, \"output\": {\"v\": 11}},"
        "  {\"id\": \"b\", \"state\": \"done\", \"attempts\": 1, \"error\": null,"
        "   \"started\": 1010, \"finished\": 1020, \"output\": {\"w\": \"dub\"}},"
        "  {\"id\": \"c\", \"state\": \"done\", \"attempts\": 1, \"error\": null,"
        "   \"started\": 1020, \"finished\": 1030, \"output\": [1, 2]}]}");
    ok (json_equal (status, want), "linear: status as documented");
    json_decref (want);
    json_decref (status);
    is_int (s_ok (flow, "L1/c", 1, "{}", T0 + 40, &out), -1, "linear: reply after the end ignored");
    is_int (out.size, 0, "linear: and it produces nothing");

    chorus_actions_clear (&out);
    chorus_flow_destroy (&flow);
    chorus_flow_destroy (&flow);
    ok (flow == NULL, "linear: destroy nulls the pointer and is safe twice");
    json_decref (input);
    chorus_flowdef_destroy (&def);
}

static void
test_diamond (void)
{
    chorus_flowdef_t *def = s_def (
        "flow: diamond\nversion: 1\n"
        "steps:\n"
        "  - { id: a, service: s, command: a }\n"
        "  - { id: b, service: s, command: b, depends_on: [a] }\n"
        "  - { id: c, service: s, command: c, depends_on: [a] }\n"
        "  - { id: d, service: s, command: d, depends_on: [b, c],"
        "      input: { b: $.steps.b.output, c: $.steps.c.output } }\n");
    chorus_actions_t out;
    chorus_actions_init (&out);
    chorus_flow_t *flow = chorus_flow_start (def, "D", NULL, T0, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "D/a", "diamond: only a starts");
    ok (out.items [0].payload == NULL, "diamond: no input template, no payload");
    s_ok (flow, "D/a", 1, NULL, T0 + 1, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "D/b D/c", "diamond: b and c in one batch");
    s_ok (flow, "D/c", 1, "\"C\"", T0 + 2, &out);
    is_int (out.size, 0, "diamond: d waits for b");
    s_is_step_field (flow, "d", "state", "\"pending\"", "diamond: d still pending");
    s_ok (flow, "D/b", 1, "\"B\"", T0 + 3, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "D/d", "diamond: d after b and c");
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "D/d", "{\"b\": \"B\", \"c\": \"C\"}"),
        "diamond: d sees both outputs");
    s_ok (flow, "D/d", 1, NULL, T0 + 4, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_COMPLETED, "diamond: completed");
    is_int (out.size, 0, "diamond: no emit topic, no EMIT");
    s_is_step_field (flow, "a", "output", "null", "diamond: a reply without payload is null");
    chorus_actions_clear (&out);
    chorus_flow_destroy (&flow);
    chorus_flowdef_destroy (&def);
}

static void
test_parallel_branches (void)
{
    chorus_flowdef_t *def = s_def (
        "flow: branches\nversion: 1\n"
        "steps:\n"
        "  - { id: x1, service: s, command: x1 }\n"
        "  - { id: x2, service: s, command: x2, depends_on: [x1] }\n"
        "  - { id: y1, service: s, command: y1 }\n"
        "  - { id: y2, service: s, command: y2, depends_on: [y1] }\n");
    chorus_actions_t out;
    chorus_actions_init (&out);
    chorus_flow_t *flow = chorus_flow_start (def, "P", NULL, T0, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "P/x1 P/y1", "branches: both heads start");
    s_ok (flow, "P/y1", 1, NULL, T0 + 1, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "P/y2", "branches: y goes on without x");
    s_ok (flow, "P/y2", 1, NULL, T0 + 2, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_RUNNING, "branches: x still running");
    s_ok (flow, "P/x1", 1, NULL, T0 + 3, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "P/x2", "branches: then x2");
    s_ok (flow, "P/x2", 1, NULL, T0 + 4, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_COMPLETED, "branches: completed");
    chorus_actions_clear (&out);
    chorus_flow_destroy (&flow);
    chorus_flowdef_destroy (&def);
}

static void
test_retry_then_success (void)
{
    chorus_flowdef_t *def = s_def (
        "flow: retrying\nversion: 1\n"
        "steps:\n"
        "  - id: a\n    service: s\n    command: a\n    timeout: 1s\n"
        "    retry: { attempts: 6, backoff: 100ms, factor: 2, max_backoff: 500ms }\n");
    chorus_actions_t out;
    chorus_actions_init (&out);
    chorus_flow_t *flow = chorus_flow_start (def, "R", NULL, T0, &out);
    uint64_t now = T0;
    uint64_t waits [] = { 100, 200, 400, 500 };
    for (int attempt = 1; attempt <= 4; attempt++) {
        now += 10;
        is_int (s_error (flow, "R/a", attempt, true, now, &out), 0, "retry: try %d fails", attempt);
        is_str (s_keys (&out, CHORUS_ACTION_TIMER), "retry:R/a", "retry: a backoff timer");
        is_int (out.size, 1, "retry: and nothing else");
        is_int (out.items [0].at, now + waits [attempt - 1], "retry: waits %d ms",
                (int) waits [attempt - 1]);
        s_is_step_field (flow, "a", "state", "\"waiting\"", "retry: a waits");
        is_int (s_error (flow, "R/a", attempt, true, now, &out), -1,
                "retry: an error reply while waiting is ignored");
        now += waits [attempt - 1];
        is_int (s_timer (flow, "retry:R/a", now, &out), 0, "retry: timer fires");
        is_str (s_keys (&out, CHORUS_ACTION_SEND), "R/a", "retry: same key");
        is_int (out.items [0].attempt, attempt + 1, "retry: next attempt");
        is_int (out.items [0].at, now + 1000, "retry: fresh deadline");
        is_int (s_timer (flow, "retry:R/a", now, &out), -1, "retry: a second firing is stale");
    }
    is_int (s_error (flow, "R/a", 4, true, now, &out), -1,
            "retry: an error reply to an old try is ignored");
    is_int (s_ok (flow, "R/a", 5, "1", now + 1, &out), 0, "retry: fifth try succeeds");
    is_int (chorus_flow_state (flow), CHORUS_FLOW_COMPLETED, "retry: completed");
    s_is_step_field (flow, "a", "attempts", "5", "retry: status counts 5 attempts");
    s_is_step_field (flow, "a", "error", "{\"code\":\"boom\",\"message\":\"it broke\"}",
                     "retry: status keeps the last error");
    chorus_actions_clear (&out);
    chorus_flow_destroy (&flow);
    chorus_flowdef_destroy (&def);
}

//  A try's answer comes after its timeout, while the next try waits or
//  runs: the service did the work (it answers every try of one key with
//  the same reply), so the task is done, whichever try it answers
static void
test_late_success_counts (void)
{
    chorus_flowdef_t *def = s_def (
        "flow: late\nversion: 1\n"
        "steps:\n"
        "  - id: a\n    service: s\n    command: a\n    timeout: 1s\n"
        "    retry: { attempts: 3, backoff: 100ms }\n"
        "  - { id: b, service: s, command: b, depends_on: [a] }\n");
    chorus_actions_t out;
    chorus_actions_init (&out);

    //  While the retry waits for its backoff
    chorus_flow_t *flow = chorus_flow_start (def, "W", NULL, T0, &out);
    is_int (s_timeout (flow, "W/a", 1, T0 + 1000, &out), 0, "late: the first try times out");
    s_is_step_field (flow, "a", "state", "\"waiting\"", "late: a waits to retry");
    s_is_step_field (flow, "a", "maybe_done", "true", "late: a may have been done");
    is_int (s_ok (flow, "W/a", 1, "\"first\"", T0 + 1050, &out), 0,
            "late: the first try's success while the retry waits is taken");
    s_is_step_field (flow, "a", "state", "\"done\"", "late: a is done");
    s_is_step_field (flow, "a", "output", "\"first\"", "late: with the first try's output");
    s_is_step_field (flow, "a", "maybe_done", "(none)", "late: and no longer maybe done");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "W/b", "late: the flow goes on");
    is_int (s_timer (flow, "retry:W/a", T0 + 1100, &out), -1, "late: the retry timer is stale");
    chorus_flow_destroy (&flow);

    //  While the retry runs
    flow = chorus_flow_start (def, "R", NULL, T0, &out);
    s_timeout (flow, "R/a", 1, T0 + 1000, &out);
    s_timer (flow, "retry:R/a", T0 + 1100, &out);
    is_int (out.items [0].attempt, 2, "late: the second try is sent");
    is_int (s_error (flow, "R/a", 1, false, T0 + 1200, &out), -1,
            "late: an earlier try's error is stale");
    s_is_step_field (flow, "a", "state", "\"running\"", "late: a still runs");
    is_int (s_ok (flow, "R/a", 1, "\"first\"", T0 + 1300, &out), 0,
            "late: the first try's success while the second runs is taken");
    s_is_step_field (flow, "a", "state", "\"done\"", "late: a is done");
    is_int (s_ok (flow, "R/a", 2, "\"second\"", T0 + 1400, &out), -1,
            "late: the second try's answer then is a duplicate");
    s_is_step_field (flow, "a", "output", "\"first\"", "late: the output stays");
    is_int (s_ok (flow, "R/a", 3, NULL, T0 + 1400, &out), -1,
            "late: a try never sent is refused");
    s_ok (flow, "R/b", 1, NULL, T0 + 1500, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_COMPLETED, "late: the flow completes");
    chorus_flow_destroy (&flow);

    //  Once the task failed for good, an earlier try's success is too late
    flow = chorus_flow_start (def, "F", NULL, T0, &out);
    s_timeout (flow, "F/a", 1, T0 + 1000, &out);
    s_timer (flow, "retry:F/a", T0 + 1100, &out);
    s_error (flow, "F/a", 2, false, T0 + 1200, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_FAILED, "late: a definite error fails it");
    is_int (s_ok (flow, "F/a", 1, NULL, T0 + 1300, &out), -1,
            "late: a success after the task failed is ignored");
    chorus_flow_destroy (&flow);

    chorus_actions_clear (&out);
    chorus_flowdef_destroy (&def);
}

static void
test_step_timeout (void)
{
    chorus_flowdef_t *def = s_def (
        "flow: slow\nversion: 1\n"
        "steps:\n"
        "  - id: a\n    service: s\n    command: a\n    timeout: 250ms\n"
        "    retry: { attempts: 2, backoff: 50ms }\n"
        "  - { id: b, service: s, command: b, depends_on: [a] }\n");
    chorus_actions_t out;
    chorus_actions_init (&out);
    chorus_flow_t *flow = chorus_flow_start (def, "S", NULL, T0, &out);
    is_int (out.items [0].at, T0 + 250, "timeout: deadline of the try");
    is_int (s_timeout (flow, "S/a", 1, T0 + 250, &out), 0, "timeout: the try times out");
    is_str (s_keys (&out, CHORUS_ACTION_TIMER), "retry:S/a", "timeout: counts as retryable");
    is_int (out.items [0].at, T0 + 300, "timeout: after the backoff");
    s_is_step_field (flow, "a", "error", "{\"code\":\"timeout\",\"message\":\"no reply within 250 ms\"}",
                     "timeout: recorded as the error");
    s_timer (flow, "retry:S/a", T0 + 300, &out);
    is_int (out.items [0].attempt, 2, "timeout: second try sent");
    s_ok (flow, "S/a", 2, NULL, T0 + 310, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "S/b", "timeout: the flow goes on");
    chorus_actions_clear (&out);
    chorus_flow_destroy (&flow);
    chorus_flowdef_destroy (&def);
}

static void
test_for_each (void)
{
    chorus_flowdef_t *def = s_def (
        "flow: fan\nversion: 1\n"
        "steps:\n"
        "  - id: fan\n    service: s\n    command: one\n    for_each: $.input.items\n"
        "    max_parallel: 2\n    input: { sku: $.item.sku, n: $.input.n }\n"
        "  - { id: after, service: s, command: after, depends_on: [fan],"
        "      input: { all: $.steps.fan.output } }\n");
    chorus_actions_t out;
    chorus_actions_init (&out);

    //  No items: done at once, with []
    json_t *input = s_json ("{\"items\": [], \"n\": 1}");
    chorus_flow_t *flow = chorus_flow_start (def, "F0", input, T0, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "F0/after", "for_each 0: next step at once");
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "F0/after", "{\"all\": []}"),
        "for_each 0: output is []");
    s_is_step_field (flow, "fan", "state", "\"done\"", "for_each 0: step done");
    chorus_flow_destroy (&flow);
    json_decref (input);

    //  One item
    input = s_json ("{\"items\": [{\"sku\": \"k1\"}], \"n\": 1}");
    chorus_actions_clear (&out);
    flow = chorus_flow_start (def, "F1", input, T0, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "F1/fan/0", "for_each 1: key FLOW/STEP/ITEM");
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "F1/fan/0", "{\"sku\": \"k1\", \"n\": 1}"),
        "for_each 1: $.item in the payload");
    s_ok (flow, "F1/fan/0", 1, "\"r1\"", T0 + 1, &out);
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "F1/after", "{\"all\": [\"r1\"]}"),
        "for_each 1: output is a list of one");
    chorus_flow_destroy (&flow);
    json_decref (input);

    //  N items, at most two at once, replies out of order
    input = s_json ("{\"items\": [{\"sku\": \"a\"}, {\"sku\": \"b\"}, {\"sku\": \"c\"},"
                    " {\"sku\": \"d\"}], \"n\": 2}");
    chorus_actions_clear (&out);
    flow = chorus_flow_start (def, "FN", input, T0, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "FN/fan/0 FN/fan/1",
            "for_each N: max_parallel 2 sends two");
    s_ok (flow, "FN/fan/1", 1, "\"rb\"", T0 + 1, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "FN/fan/2", "for_each N: one done, one more");
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "FN/fan/2", "{\"sku\": \"c\", \"n\": 2}"),
        "for_each N: each item its own payload");
    s_ok (flow, "FN/fan/0", 1, "\"ra\"", T0 + 2, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "FN/fan/3", "for_each N: never more than two");
    s_ok (flow, "FN/fan/3", 1, "\"rd\"", T0 + 3, &out);
    is_int (out.size, 0, "for_each N: no item left to send");
    s_is_step_field (flow, "fan", "state", "\"running\"", "for_each N: step still running");
    s_ok (flow, "FN/fan/2", 1, "\"rc\"", T0 + 4, &out);
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "FN/after",
                      "{\"all\": [\"ra\", \"rb\", \"rc\", \"rd\"]}"),
        "for_each N: outputs in item order, not reply order");
    char *items = s_step_field (flow, "fan", "items");
    ok (strstr (items, "\"item\":3") && strstr (items, "\"output\":\"rd\""),
        "for_each N: status lists the items");
    free (items);
    chorus_flow_destroy (&flow);
    json_decref (input);
    chorus_actions_clear (&out);
    chorus_flowdef_destroy (&def);
}

static void
test_for_each_order (void)
{
    chorus_flowdef_t *def = s_def (
        "flow: fan\nversion: 1\n"
        "emit: { completed: fan.done }\n"
        "steps:\n"
        "  - id: fan\n    service: s\n    command: one\n    for_each: $.input.items\n"
        "    max_parallel: 2\n    retry: { attempts: 2, backoff: 10ms }\n"
        "  - id: bad\n    service: s\n    command: bad\n    depends_on: [fan]\n"
        "    for_each: $.input.n\n");
    json_t *input = s_json ("{\"items\": [1, 2, 3, 4], \"n\": 3}");
    chorus_actions_t out;
    chorus_actions_init (&out);
    chorus_flow_t *flow = chorus_flow_start (def, "O", input, T0, &out);
    s_error (flow, "O/fan/0", 1, true, T0 + 1, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "", "order: a waiting item keeps its slot");
    s_ok (flow, "O/fan/1", 1, "\"o1\"", T0 + 2, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "O/fan/2", "order: the freed slot is used");
    s_ok (flow, "O/fan/2", 1, "\"o2\"", T0 + 3, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "O/fan/3", "order: never more than two");
    s_timer (flow, "retry:O/fan/0", T0 + 11, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "O/fan/0", "order: the retry goes out");
    s_ok (flow, "O/fan/3", 1, "\"o3\"", T0 + 12, &out);
    s_ok (flow, "O/fan/0", 2, "\"o0\"", T0 + 13, &out);
    //  A fan-out's status carries each output once, in its item
    char *items = s_step_field (flow, "fan", "items");
    json_t *list = json_loads (items, 0, NULL);
    json_t *outputs = json_array ();
    for (size_t index = 0; index < json_array_size (list); index++)
        json_array_append (outputs, json_object_get (json_array_get (list, index), "output"));
    char *text = json_dumps (outputs, JSON_COMPACT);
    is_str (text, "[\"o0\",\"o1\",\"o2\",\"o3\"]", "order: a retried item keeps its place");
    s_is_step_field (flow, "fan", "output", "(none)",
                     "order: the step does not repeat its items' outputs");
    free (text);
    json_decref (outputs);
    json_decref (list);
    free (items);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_FAILED, "order: a for_each on no list fails");
    json_t *status = chorus_flow_status (flow);
    is_str (json_string_value (json_object_get (json_object_get (status, "error"), "code")),
            "bad-for-each", "order: with code bad-for-each");
    is_str (json_string_value (json_object_get (json_object_get (status, "error"), "step")),
            "bad", "order: naming the step");
    json_decref (status);
    chorus_actions_clear (&out);
    chorus_flow_destroy (&flow);
    json_decref (input);
    chorus_flowdef_destroy (&def);
}

static void
test_late_replies (void)
{
    chorus_flowdef_t *def = s_def (
        "flow: late\nversion: 1\n"
        "steps:\n"
        "  - { id: a, service: s, command: a }\n"
        "  - { id: b, service: s, command: b, depends_on: [a] }\n");
    chorus_actions_t out;
    chorus_actions_init (&out);
    chorus_flow_t *flow = chorus_flow_start (def, "Z", NULL, T0, &out);
    is_int (s_ok (flow, "Z/a", 2, NULL, T0, &out), -1, "late: wrong attempt ignored");
    is_int (s_ok (flow, "Z/b", 1, NULL, T0, &out), -1, "late: reply to an unsent task ignored");
    is_int (s_ok (flow, "Z/nope", 1, NULL, T0, &out), -1, "late: unknown key ignored");
    is_int (s_ok (flow, "Z/a/undo", 1, NULL, T0, &out), -1, "late: undo never sent ignored");
    is_int (s_timer (flow, "retry:Z/a", T0, &out), -1, "late: timer never set ignored");
    is_int (s_timer (flow, "flow-timeout", T0, &out), -1, "late: flow timer never set ignored");
    is_int (s_ok (flow, "Z/a", 1, "1", T0 + 1, &out), 0, "late: the real reply counts");
    is_int (out.size, 1, "late: and sends b");
    is_int (s_ok (flow, "Z/a", 1, "2", T0 + 2, &out), -1, "late: duplicate ignored");
    is_int (out.size, 0, "late: duplicate produces nothing");
    s_is_step_field (flow, "a", "output", "1", "late: duplicate leaves the output alone");
    is_int (s_error (flow, "Z/a", 1, false, T0 + 3, &out), -1, "late: late failure ignored");
    is_int (chorus_flow_state (flow), CHORUS_FLOW_RUNNING, "late: flow still running");
    chorus_actions_clear (&out);
    chorus_flow_destroy (&flow);
    chorus_flowdef_destroy (&def);
}

static void
test_flow_timeout (void)
{
    chorus_flowdef_t *def = s_def (
        "flow: deadline\nversion: 1\ntimeout: 5s\n"
        "emit: { failed: deadline.missed }\n"
        "steps:\n"
        "  - { id: a, service: s, command: a, compensate: { command: undo_a } }\n"
        "  - id: b\n    service: s\n    command: b\n    depends_on: [a]\n"
        "    retry: { attempts: 3 }\n");
    chorus_actions_t out;
    chorus_actions_init (&out);
    chorus_flow_t *flow = chorus_flow_start (def, "T", NULL, T0, &out);
    const chorus_action_t *timer = s_action (&out, CHORUS_ACTION_TIMER, "flow-timeout");
    ok (timer && timer->at == T0 + 5000, "deadline: flow-timeout timer at now + timeout");
    s_ok (flow, "T/a", 1, "{\"id\": 9}", T0 + 10, &out);
    is_int (s_timer (flow, "flow-timeout", T0 + 5000, &out), 0, "deadline: timer fires");
    is_int (chorus_flow_state (flow), CHORUS_FLOW_COMPENSATING, "deadline: flow fails");
    is_int (out.size, 0, "deadline: waits for the running step");
    is_int (s_error (flow, "T/b", 1, true, T0 + 5001, &out), 0, "deadline: b fails");
    is_str (s_keys (&out, CHORUS_ACTION_TIMER), "", "deadline: no retry once failed");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "T/a/undo", "deadline: a compensated");
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "T/a/undo", "{\"id\": 9}"),
        "deadline: no compensate input: the output");
    s_ok (flow, "T/a/undo", 1, NULL, T0 + 5002, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_FAILED, "deadline: failed");
    ok (s_payload_is (&out, CHORUS_ACTION_EMIT, "deadline.missed",
                      "{\"flow\": \"T\", \"name\": \"deadline\", \"state\": \"failed\","
                      " \"error\": {\"code\": \"flow-timeout\","
                      " \"message\": \"the flow did not finish within 5000 ms\"},"
                      " \"input\": {}}"),
        "deadline: failed event with code flow-timeout");
    is_int (s_timer (flow, "flow-timeout", T0 + 6000, &out), -1, "deadline: fires once");
    chorus_actions_clear (&out);
    chorus_flow_destroy (&flow);
    chorus_flowdef_destroy (&def);
}

static void
test_resume (void)
{
    chorus_flowdef_t *def = s_def (
        "flow: resumed\nversion: 1\ntimeout: 1m\n"
        "steps:\n"
        "  - { id: a, service: s, command: a, timeout: 3s }\n"
        "  - id: b\n    service: s\n    command: b\n"
        "    retry: { attempts: 3, backoff: 700ms }\n");
    chorus_actions_t out;
    chorus_actions_init (&out);
    chorus_flow_t *flow = chorus_flow_start (def, "M", NULL, T0, &out);
    s_error (flow, "M/b", 1, true, T0 + 5, &out);
    json_t *saved = chorus_flow_save (flow);
    char error [128] = "";
    chorus_flow_t *loaded = chorus_flow_load (def, saved, error, sizeof error);
    if (!ok (loaded != NULL, "resume: loads"))
        bail_out (error);
    chorus_actions_clear (&out);
    chorus_flow_resume (loaded, T0 + 100, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "M/a", "resume: running task re-sent");
    const chorus_action_t *send = s_action (&out, CHORUS_ACTION_SEND, "M/a");
    ok (send && send->attempt == 1 && send->at == T0 + 100 + 3000,
        "resume: same attempt, deadline from now");
    is_str (s_keys (&out, CHORUS_ACTION_TIMER), "retry:M/b flow-timeout",
            "resume: backoff and flow timers re-armed");
    const chorus_action_t *timer = s_action (&out, CHORUS_ACTION_TIMER, "retry:M/b");
    ok (timer && timer->at == T0 + 5 + 700, "resume: backoff timer keeps its time");
    timer = s_action (&out, CHORUS_ACTION_TIMER, "flow-timeout");
    ok (timer && timer->at == T0 + 60000, "resume: flow timer keeps its time");
    is_int (s_ok (loaded, "M/a", 1, NULL, T0 + 200, &out), 0, "resume: reply to the re-send counts");
    chorus_actions_clear (&out);
    json_decref (saved);
    chorus_flow_destroy (&loaded);
    chorus_flow_destroy (&flow);
    chorus_flowdef_destroy (&def);
}

//  A value that came as a payload is passed on as those very bytes when a
//  step's input is the whole value, and the completion event is made of
//  them; the JSON made from them is what the payloads decode to
static void
test_payloads_passed_on (void)
{
    chorus_flowdef_t *def = s_def (
        "flow: pass\nversion: 1\nsteps:\n"
        "  - { id: a, service: s, command: a, input: $.input }\n"
        "  - { id: b, service: s, command: b, input: $.steps.a.output, depends_on: [a] }\n"
        "  - { id: c, service: s, command: c, input: { x: $.steps.b.output }, depends_on: [b] }\n"
        "emit: { completed: pass.done }\n");
    chorus_actions_t out;
    chorus_actions_init (&out);
    //  Encoded as a service may: a float32 and a bin, which JSON cannot say
    static const uint8_t input [] = {0x82, 0xa1, 'n', 0x07, 0xa1, 'f', 0xca, 0x3f, 0xc0, 0, 0};
    static const uint8_t output [] = {0x81, 0xa1, 'b', 0xc4, 0x02, 0xff, 0x00};
    chorus_flow_t *flow = chorus_flow_start_encoded (def, "P", input, sizeof input, T0, &out);
    const chorus_action_t *send = s_action (&out, CHORUS_ACTION_SEND, "P/a");
    ok (send && send->encoded && send->encoded_size == sizeof input
        && memcmp (send->encoded, input, sizeof input) == 0 && !send->payload,
        "passed on: $.input goes as the bytes the input came as");
    chorus_result_t result = {.ok = true, .encoded = output, .encoded_size = sizeof output};
    chorus_actions_clear (&out);
    chorus_flow_reply (flow, "P/a", 1, &result, T0 + 1, &out);
    send = s_action (&out, CHORUS_ACTION_SEND, "P/b");
    ok (send && send->encoded && send->encoded_size == sizeof output
        && memcmp (send->encoded, output, sizeof output) == 0,
        "passed on: $.steps.a.output goes as the bytes a replied");
    chorus_actions_clear (&out);
    chorus_flow_reply (flow, "P/b", 1, &result, T0 + 2, &out);
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "P/c", "{\"x\": {\"b\": {\"$bin\": \"/wA=\"}}}"),
        "passed on: a template made of paths is resolved on the values they decode to");
    json_t *value = json_pack ("{s:i}", "z", 1);
    result = (chorus_result_t) {.ok = true, .output = value};
    chorus_actions_clear (&out);
    chorus_flow_reply (flow, "P/c", 1, &result, T0 + 3, &out);
    json_decref (value);
    const chorus_action_t *emit = s_action (&out, CHORUS_ACTION_EMIT, "pass.done");
    ok (emit && emit->encoded && !emit->payload, "passed on: the completion event is made "
        "of the values' bytes");
    ok (s_payload_is (&out, CHORUS_ACTION_EMIT, "pass.done",
                      "{\"flow\": \"P\", \"name\": \"pass\", \"input\": {\"n\": 7, \"f\": 1.5}, "
                      "\"outputs\": {\"a\": {\"b\": {\"$bin\": \"/wA=\"}}, "
                      "\"b\": {\"b\": {\"$bin\": \"/wA=\"}}, \"c\": {\"z\": 1}}}"),
        "passed on: and it says what the JSON would");
    chorus_flow_destroy (&flow);

    //  A value no payload can hold leaves the event to be made as JSON
    chorus_actions_clear (&out);
    flow = chorus_flow_start (def, "Q", NULL, T0, &out);
    value = s_json ("{\"$bin\": \"not base64\"}");
    result = (chorus_result_t) {.ok = true, .output = value};
    for (int step = 0; step < 3; step++) {
        char key [8];
        snprintf (key, sizeof key, "Q/%c", 'a' + step);
        chorus_actions_clear (&out);
        chorus_flow_reply (flow, key, 1, &result, T0 + 1, &out);
    }
    json_decref (value);
    emit = s_action (&out, CHORUS_ACTION_EMIT, "pass.done");
    ok (emit && emit->payload && !emit->encoded, "passed on: an output no payload holds makes "
        "the event JSON, for the shell to refuse");
    chorus_actions_clear (&out);
    chorus_flow_destroy (&flow);
    chorus_flowdef_destroy (&def);
}

int
main (void)
{
    test_linear ();
    test_diamond ();
    test_parallel_branches ();
    test_retry_then_success ();
    test_late_success_counts ();
    test_step_timeout ();
    test_for_each ();
    test_for_each_order ();
    test_late_replies ();
    test_flow_timeout ();
    test_resume ();
    test_payloads_passed_on ();
    return done_testing ();
}
