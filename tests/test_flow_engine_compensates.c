/*  test_flow_engine_compensates.c — when a flow fails or is cancelled, the
    engine undoes what completed, last completed first, marks a stuck
    compensation for an operator, re-runs a failed flow under new keys on
    retry, keeps one live flow per business key, and survives being saved
    and loaded at any point.
*/
#include "flow_fixtures.h"

//  --------------------------------------------------------------------------

static void
test_reverse_completion_order (void)
{
    chorus_flowdef_t *def = s_def (
        "flow: saga\nversion: 2\n"
        "emit: { completed: saga.done, failed: saga.failed }\n"
        "steps:\n"
        "  - { id: a, service: sa, command: a, compensate: { command: undo_a } }\n"
        "  - id: b\n    service: sb\n    command: b\n    depends_on: [a]\n"
        "    compensate:\n      command: undo_b\n"
        "      input: { id: $.steps.b.output.id, a: $.steps.a.output.id, n: $.input.n }\n"
        "  - { id: c, service: sc, command: c, depends_on: [a], compensate: { command: undo_c } }\n"
        "  - id: d\n    service: sd\n    command: d\n    depends_on: [b, c]\n"
        "    retry: { attempts: 2, backoff: 100ms }\n"
        "  - { id: e, service: se, command: e, depends_on: [d], compensate: { command: undo_e } }\n");
    json_t *input = s_json ("{\"n\": 1}");
    chorus_actions_t out;
    chorus_actions_init (&out);
    chorus_flow_t *flow = chorus_flow_start (def, "S", input, T0, &out);
    s_ok (flow, "S/a", 1, "{\"id\": \"A\"}", T0 + 1, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "S/b S/c", "reverse: b and c run in parallel");
    s_ok (flow, "S/c", 1, "{\"id\": \"C\"}", T0 + 2, &out);
    s_ok (flow, "S/b", 1, "{\"id\": \"B\"}", T0 + 3, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "S/d", "reverse: d after b and c");
    s_error (flow, "S/d", 1, true, T0 + 4, &out);
    is_str (s_keys (&out, CHORUS_ACTION_TIMER), "retry:S/d", "reverse: d retried once");
    s_timer (flow, "retry:S/d", T0 + 104, &out);
    is_int (s_error (flow, "S/d", 2, true, T0 + 105, &out), 0, "reverse: d fails again");
    is_int (chorus_flow_state (flow), CHORUS_FLOW_COMPENSATING, "reverse: compensating");
    is_int (out.size, 1, "reverse: one compensation at a time");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "S/b/undo",
            "reverse: b first, it completed last (not definition order)");
    const chorus_action_t *undo = s_action (&out, CHORUS_ACTION_SEND, "S/b/undo");
    ok (undo && strcmp (undo->command, "undo_b") == 0 && strcmp (undo->service, "sb") == 0
        && undo->attempt == 1, "reverse: compensate command to the step's service, try 1");
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "S/b/undo",
                      "{\"id\": \"B\", \"a\": \"A\", \"n\": 1}"),
        "reverse: compensate input sees its own and earlier outputs");
    s_ok (flow, "S/b/undo", 1, NULL, T0 + 106, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "S/c/undo", "reverse: then c");
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "S/c/undo", "{\"id\": \"C\"}"),
        "reverse: no compensate input: the step's output");
    s_is_step_field (flow, "b", "state", "\"undone\"", "reverse: b undone");
    s_is_step_field (flow, "c", "state", "\"undoing\"", "reverse: c undoing");
    s_ok (flow, "S/c/undo", 1, NULL, T0 + 107, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "S/a/undo", "reverse: a last");
    is_int (s_ok (flow, "S/e/undo", 1, NULL, T0 + 108, &out), -1,
            "reverse: e never started, never compensated");
    s_ok (flow, "S/a/undo", 1, NULL, T0 + 108, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_FAILED, "reverse: failed");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "", "reverse: nothing more sent");
    ok (s_payload_is (&out, CHORUS_ACTION_EMIT, "saga.failed",
                      "{\"flow\": \"S\", \"name\": \"saga\", \"state\": \"failed\","
                      " \"error\": {\"code\": \"boom\", \"message\": \"it broke\", \"step\": \"d\"},"
                      " \"input\": {\"n\": 1}}"),
        "reverse: failed event names the flow, state, error and input");
    s_is_step_field (flow, "d", "state", "\"failed\"", "reverse: d failed");
    s_is_step_field (flow, "d", "attempts", "2", "reverse: after 2 attempts");
    s_is_step_field (flow, "e", "state", "\"pending\"", "reverse: e pending");
    s_is_step_field (flow, "a", "state", "\"undone\"", "reverse: a undone");
    json_t *status = chorus_flow_status (flow);
    is_str (json_string_value (json_object_get (json_object_get (status, "error"), "step")), "d",
            "reverse: status error names the step");
    ok (json_integer_value (json_object_get (status, "finished")) == T0 + 108,
        "reverse: finished time");
    json_decref (status);
    chorus_actions_clear (&out);
    chorus_flow_destroy (&flow);
    json_decref (input);
    chorus_flowdef_destroy (&def);
}

static void
test_partial_fan_out (void)
{
    chorus_flowdef_t *def = s_def (
        "flow: fanout\nversion: 1\n"
        "steps:\n"
        "  - id: reserve\n    service: inventory\n    command: reserve\n"
        "    for_each: $.input.items\n    input: { sku: $.item.sku }\n"
        "    compensate:\n      command: release\n"
        "      input: { sku: $.item.sku, hold: $.steps.reserve.output.hold }\n");
    json_t *input = s_json ("{\"items\": [{\"sku\": \"a\"}, {\"sku\": \"b\"}, {\"sku\": \"c\"}]}");
    chorus_actions_t out;
    chorus_actions_init (&out);
    chorus_flow_t *flow = chorus_flow_start (def, "FO", input, T0, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "FO/reserve/0 FO/reserve/1 FO/reserve/2",
            "fan-out: all items at once");
    s_ok (flow, "FO/reserve/0", 1, "{\"hold\": \"h0\"}", T0 + 1, &out);
    s_error (flow, "FO/reserve/1", 1, false, T0 + 2, &out);
    is_int (out.size, 0, "fan-out: waits for the running item");
    is_int (chorus_flow_state (flow), CHORUS_FLOW_COMPENSATING, "fan-out: the flow failed");
    s_ok (flow, "FO/reserve/2", 1, "{\"hold\": \"h2\"}", T0 + 3, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "FO/reserve/2/undo",
            "fan-out: the item that finished late is undone first");
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "FO/reserve/2/undo",
                      "{\"sku\": \"c\", \"hold\": \"h2\"}"),
        "fan-out: $.item and the item's own output in the compensate input");
    s_ok (flow, "FO/reserve/2/undo", 1, NULL, T0 + 4, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "FO/reserve/0/undo", "fan-out: then item 0");
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "FO/reserve/0/undo",
                      "{\"sku\": \"a\", \"hold\": \"h0\"}"),
        "fan-out: item 0's payload");
    s_ok (flow, "FO/reserve/0/undo", 1, NULL, T0 + 5, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_FAILED, "fan-out: failed");
    char *items = s_step_field (flow, "reserve", "items");
    if (!ok (strstr (items, "\"item\":0,\"state\":\"undone\"")
             && strstr (items, "\"item\":1,\"state\":\"failed\"")
             && strstr (items, "\"item\":2,\"state\":\"undone\""),
             "fan-out: items undone, failed, undone"))
        diag ("%s", items);
    free (items);
    s_is_step_field (flow, "reserve", "state", "\"failed\"", "fan-out: step failed");
    chorus_actions_clear (&out);
    chorus_flow_destroy (&flow);
    json_decref (input);
    chorus_flowdef_destroy (&def);
}

static void
test_cancel (void)
{
    chorus_flowdef_t *def = s_def (
        "flow: cancelme\nversion: 1\n"
        "emit: { failed: cancelme.off }\n"
        "steps:\n"
        "  - { id: a, service: s, command: a, compensate: { command: undo_a } }\n"
        "  - id: b\n    service: s\n    command: b\n    depends_on: [a]\n"
        "    retry: { attempts: 3 }\n    compensate: { command: undo_b }\n"
        "  - { id: c, service: s, command: c, depends_on: [b] }\n");
    chorus_actions_t out;
    chorus_actions_init (&out);
    chorus_flow_t *flow = chorus_flow_start (def, "C", NULL, T0, &out);
    s_ok (flow, "C/a", 1, "1", T0 + 1, &out);
    chorus_actions_clear (&out);
    is_int (chorus_flow_cancel (flow, T0 + 2, &out), 0, "cancel: accepted while running");
    is_int (out.size, 0, "cancel: waits for the running task");
    is_int (chorus_flow_state (flow), CHORUS_FLOW_COMPENSATING, "cancel: compensating");
    is_int (chorus_flow_cancel (flow, T0 + 3, &out), -1, "cancel: only once");
    s_ok (flow, "C/b", 1, "2", T0 + 4, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "C/b/undo",
            "cancel: the task that finished meanwhile is undone first");
    s_ok (flow, "C/b/undo", 1, NULL, T0 + 5, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "C/a/undo", "cancel: then a");
    s_ok (flow, "C/a/undo", 1, NULL, T0 + 6, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_CANCELLED, "cancel: cancelled");
    ok (chorus_flow_finished (flow), "cancel: finished");
    ok (s_payload_is (&out, CHORUS_ACTION_EMIT, "cancelme.off",
                      "{\"flow\": \"C\", \"name\": \"cancelme\", \"state\": \"cancelled\","
                      " \"error\": {\"code\": \"cancelled\", \"message\": \"the flow was cancelled\"},"
                      " \"input\": {}}"),
        "cancel: the failed topic, with state cancelled");
    s_is_step_field (flow, "c", "state", "\"pending\"", "cancel: c never started");
    is_int (chorus_flow_cancel (flow, T0 + 7, &out), -1, "cancel: not when finished");
    chorus_flow_destroy (&flow);

    //  A task that fails after the cancel adds nothing: no retry, no undo
    chorus_actions_clear (&out);
    flow = chorus_flow_start (def, "C2", NULL, T0, &out);
    s_ok (flow, "C2/a", 1, "1", T0 + 1, &out);
    chorus_actions_clear (&out);
    chorus_flow_cancel (flow, T0 + 2, &out);
    s_error (flow, "C2/b", 1, true, T0 + 3, &out);
    is_str (s_keys (&out, CHORUS_ACTION_TIMER), "", "cancel: a failing task is not retried");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "C2/a/undo", "cancel: only a is undone");
    s_is_step_field (flow, "b", "state", "\"failed\"", "cancel: b failed");
    chorus_flow_destroy (&flow);

    //  A task waiting for its backoff does not hold the compensation up
    chorus_actions_clear (&out);
    flow = chorus_flow_start (def, "C3", NULL, T0, &out);
    s_ok (flow, "C3/a", 1, "1", T0 + 1, &out);
    s_error (flow, "C3/b", 1, true, T0 + 2, &out);
    is_str (s_keys (&out, CHORUS_ACTION_TIMER), "retry:C3/b", "cancel: b waits to retry");
    chorus_actions_clear (&out);
    chorus_flow_cancel (flow, T0 + 3, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "C3/a/undo", "cancel: compensation at once");
    s_is_step_field (flow, "b", "state", "\"failed\"", "cancel: the waiting task failed");
    is_int (s_timer (flow, "retry:C3/b", T0 + 2000, &out), -1, "cancel: its timer is stale");
    chorus_actions_clear (&out);
    chorus_flow_destroy (&flow);
    chorus_flowdef_destroy (&def);
}

//  A task whose last try went unanswered may have been done: it is
//  compensated when the flow undoes, in its turn; one whose service
//  answered with an error was not done, and is not
static int
s_timeout (chorus_flow_t *flow, const char *key, int attempt, uint64_t now,
           chorus_actions_t *out)
{
    chorus_result_t result = { .timeout = true };
    chorus_actions_clear (out);
    return chorus_flow_reply (flow, key, attempt, &result, now, out);
}

static void
test_maybe_done (void)
{
    chorus_flowdef_t *def = s_def (
        "flow: maybe\nversion: 1\n"
        "steps:\n"
        "  - { id: a, service: s, command: a, compensate: { command: undo_a } }\n"
        "  - id: b\n    service: s\n    command: b\n    depends_on: [a]\n"
        "    retry: { attempts: 2, backoff: 100ms }\n"
        "    compensate: { command: undo_b, input: { out: $.steps.b.output, n: 1 } }\n");
    chorus_actions_t out;
    chorus_actions_init (&out);

    //  Every try timed out: b may be done, so undone first, then a
    chorus_flow_t *flow = chorus_flow_start (def, "M", NULL, T0, &out);
    s_ok (flow, "M/a", 1, NULL, T0 + 1, &out);
    s_timeout (flow, "M/b", 1, T0 + 2, &out);
    s_timer (flow, "retry:M/b", T0 + 102, &out);
    is_int (s_timeout (flow, "M/b", 2, T0 + 103, &out), 0, "maybe: b's last try times out");
    is_int (chorus_flow_state (flow), CHORUS_FLOW_COMPENSATING, "maybe: the flow undoes");
    s_is_step_field (flow, "b", "state", "\"undoing\"", "maybe: b, failed, is being undone");
    s_is_step_field (flow, "b", "maybe_done", "true", "maybe: status says b may be done");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "M/b/undo", "maybe: b is compensated first");
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "M/b/undo", "{\"out\": null, \"n\": 1}"),
        "maybe: its compensation sees no output");
    s_ok (flow, "M/b/undo", 1, NULL, T0 + 104, &out);
    s_is_step_field (flow, "b", "state", "\"undone\"", "maybe: b undone");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "M/a/undo", "maybe: then a");
    s_ok (flow, "M/a/undo", 1, NULL, T0 + 105, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_FAILED, "maybe: then the flow failed");
    //  A retry of the flow runs b again: it was undone, not done
    chorus_actions_clear (&out);
    chorus_flow_retry (flow, T0 + 200, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "M/a:r2", "maybe: a retried flow runs a again");
    chorus_flow_destroy (&flow);

    //  A timeout, then an error reply: the service said it did not do it
    flow = chorus_flow_start (def, "E", NULL, T0, &out);
    s_ok (flow, "E/a", 1, NULL, T0 + 1, &out);
    s_timeout (flow, "E/b", 1, T0 + 2, &out);
    s_timer (flow, "retry:E/b", T0 + 102, &out);
    s_error (flow, "E/b", 2, false, T0 + 103, &out);
    s_is_step_field (flow, "b", "maybe_done", "(none)", "maybe: an error reply says not done");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "E/a/undo", "maybe: only a is compensated");
    chorus_flow_destroy (&flow);

    //  The flow fails elsewhere while b waits to retry after a timeout:
    //  the retry is abandoned, and b is compensated all the same
    def = (chorus_flowdef_destroy (&def), s_def (
        "flow: maybe\nversion: 2\n"
        "steps:\n"
        "  - id: b\n    service: s\n    command: b\n"
        "    retry: { attempts: 3, backoff: 1s }\n"
        "    compensate: { command: undo_b }\n"
        "  - { id: c, service: s, command: c }\n"));
    flow = chorus_flow_start (def, "W", NULL, T0, &out);
    s_timeout (flow, "W/b", 1, T0 + 1, &out);
    s_error (flow, "W/c", 1, false, T0 + 2, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "W/b/undo",
            "maybe: a task abandoned in its backoff after a timeout is compensated");
    is_int (s_timer (flow, "retry:W/b", T0 + 1001, &out), -1, "maybe: its retry never runs");

    //  Its compensation stuck, then retried by an operator: compensated
    //  again, and still not done for a retry of the flow
    for (int attempt = 1; attempt <= 5; attempt++) {
        s_error (flow, "W/b/undo", attempt, attempt < 5, T0 + 10 * attempt, &out);
        if (attempt < 5)
            s_timer (flow, "retry:W/b/undo", T0 + 10 * attempt + 5000, &out);
    }
    is_int (chorus_flow_state (flow), CHORUS_FLOW_STUCK, "maybe: its compensation is stuck");
    chorus_actions_clear (&out);
    is_int (chorus_flow_retry (flow, T0 + 9000, &out), 0, "maybe: an operator retries");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "W/b/undo", "maybe: b is compensated again");
    s_ok (flow, "W/b/undo", out.items [0].attempt, NULL, T0 + 9001, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_FAILED, "maybe: then the flow failed");
    chorus_actions_clear (&out);
    chorus_flow_retry (flow, T0 + 9100, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "W/b:r2 W/c:r2",
            "maybe: a retried flow runs b again");
    chorus_flow_destroy (&flow);

    chorus_actions_clear (&out);
    chorus_flowdef_destroy (&def);
}

static void
test_stuck_then_retry (void)
{
    chorus_flowdef_t *def = s_def (
        "flow: sticky\nversion: 1\n"
        "emit: { failed: sticky.failed }\n"
        "steps:\n"
        "  - { id: a, service: s, command: a, compensate: { command: undo_a } }\n"
        "  - id: b\n    service: s\n    command: b\n    depends_on: [a]\n"
        "    retry: { attempts: 2, backoff: 100ms, factor: 2, max_backoff: 1s }\n"
        "    compensate: { command: undo_b }\n"
        "  - { id: c, service: s, command: c, depends_on: [b] }\n");
    chorus_actions_t out;
    chorus_actions_init (&out);
    chorus_flow_t *flow = chorus_flow_start (def, "K", NULL, T0, &out);
    s_ok (flow, "K/a", 1, NULL, T0, &out);
    s_ok (flow, "K/b", 1, NULL, T0, &out);
    s_error (flow, "K/c", 1, false, T0, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "K/b/undo", "stuck: b undone first");
    uint64_t now = T0;
    uint64_t waits [] = { 100, 200, 400, 800 };
    for (int attempt = 1; attempt <= 4; attempt++) {
        is_int (s_error (flow, "K/b/undo", attempt, true, now, &out), 0,
                "stuck: compensation try %d fails", attempt);
        const chorus_action_t *timer = s_action (&out, CHORUS_ACTION_TIMER, "retry:K/b/undo");
        ok (timer && timer->at == now + waits [attempt - 1] && out.size == 1,
            "stuck: retried after %d ms, with the step's backoff", (int) waits [attempt - 1]);
        now += waits [attempt - 1];
        s_timer (flow, "retry:K/b/undo", now, &out);
        const chorus_action_t *send = s_action (&out, CHORUS_ACTION_SEND, "K/b/undo");
        ok (send && send->attempt == attempt + 1, "stuck: try %d sent", attempt + 1);
    }
    is_int (chorus_flow_state (flow), CHORUS_FLOW_COMPENSATING, "stuck: still compensating");
    s_error (flow, "K/b/undo", 5, true, now, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_STUCK, "stuck: stuck after 5 tries");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "K/a/undo", "stuck: other compensations still run");
    is_str (s_keys (&out, CHORUS_ACTION_TIMER), "", "stuck: no more retries of b");
    s_is_step_field (flow, "b", "state", "\"stuck\"", "stuck: b stuck");
    s_ok (flow, "K/a/undo", 1, NULL, now + 1, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_STUCK, "stuck: stays stuck");
    is_int (out.size, 0, "stuck: no event while stuck");
    ok (!chorus_flow_finished (flow), "stuck: not finished: it needs an operator");
    chorus_actions_clear (&out);
    is_int (chorus_flow_cancel (flow, now + 2, &out), -1, "stuck: cannot cancel");
    is_int (chorus_flow_retry (flow, now + 3, &out), 0, "stuck: retry accepted");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "K/b/undo", "stuck: only b's compensation again");
    ok (out.size && out.items [0].attempt == 6, "stuck: as try 6");
    is_int (chorus_flow_state (flow), CHORUS_FLOW_COMPENSATING, "stuck: compensating again");
    is_int (s_ok (flow, "K/b/undo", 5, NULL, now + 4, &out), -1, "stuck: old try ignored");
    s_error (flow, "K/b/undo", 6, true, now + 4, &out);
    const chorus_action_t *timer = s_action (&out, CHORUS_ACTION_TIMER, "retry:K/b/undo");
    ok (timer && timer->at == now + 4 + 100, "stuck: fresh tries, first backoff again");
    s_timer (flow, "retry:K/b/undo", now + 104, &out);
    s_ok (flow, "K/b/undo", 7, NULL, now + 105, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_FAILED, "stuck: then failed");
    is_str (s_keys (&out, CHORUS_ACTION_EMIT), "sticky.failed", "stuck: the failure is emitted");
    chorus_actions_clear (&out);
    chorus_flow_destroy (&flow);
    chorus_flowdef_destroy (&def);
}

static void
test_retry_failed_flow (void)
{
    chorus_flowdef_t *def = s_def (
        "flow: again\nversion: 1\ntimeout: 10s\n"
        "emit: { completed: again.done }\n"
        "steps:\n"
        "  - { id: x, service: s, command: x }\n"
        "  - id: a\n    service: s\n    command: a\n    depends_on: [x]\n"
        "    input: { x: $.steps.x.output }\n    compensate: { command: undo_a }\n"
        "  - { id: b, service: s, command: b, depends_on: [a], input: { a: $.steps.a.output } }\n");
    chorus_actions_t out;
    chorus_actions_init (&out);
    chorus_flow_t *flow = chorus_flow_start (def, "G", NULL, T0, &out);
    s_ok (flow, "G/x", 1, "\"X\"", T0 + 1, &out);
    s_ok (flow, "G/a", 1, "\"A1\"", T0 + 2, &out);
    chorus_actions_clear (&out);
    is_int (chorus_flow_retry (flow, T0 + 3, &out), -1, "re-run: not while running");
    s_error (flow, "G/b", 1, false, T0 + 4, &out);
    s_ok (flow, "G/a/undo", 1, NULL, T0 + 5, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_FAILED, "re-run: failed first");
    chorus_actions_clear (&out);
    is_int (chorus_flow_retry (flow, T0 + 100, &out), 0, "re-run: retry accepted");
    is_int (chorus_flow_state (flow), CHORUS_FLOW_RUNNING, "re-run: running again");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "G/a:r2",
            "re-run: the undone step again, with a new key; x stays done");
    ok (out.size == 2 && s_payload_is (&out, CHORUS_ACTION_SEND, "G/a:r2", "{\"x\": \"X\"}")
        && s_action (&out, CHORUS_ACTION_SEND, "G/a:r2")->attempt == 1,
        "re-run: first try, x's output still there");
    const chorus_action_t *timer = s_action (&out, CHORUS_ACTION_TIMER, "flow-timeout:r2");
    ok (timer && timer->at == T0 + 100 + 10000, "re-run: a new flow deadline");
    json_t *status = chorus_flow_status (flow);
    ok (json_is_null (json_object_get (status, "error"))
        && json_is_null (json_object_get (status, "finished")),
        "re-run: error and finished cleared");
    json_decref (status);
    is_int (s_timer (flow, "flow-timeout", T0 + 10000, &out), -1,
            "re-run: the first run's deadline does not end the second");
    is_int (s_ok (flow, "G/b", 1, NULL, T0 + 101, &out), -1, "re-run: old keys ignored");
    s_ok (flow, "G/a:r2", 1, "\"A2\"", T0 + 102, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "G/b:r2", "re-run: then b, new key");
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "G/b:r2", "{\"a\": \"A2\"}"),
        "re-run: with the new output");
    s_ok (flow, "G/b:r2", 1, "\"B\"", T0 + 103, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_COMPLETED, "re-run: completed");
    ok (s_payload_is (&out, CHORUS_ACTION_EMIT, "again.done",
                      "{\"flow\": \"G\", \"name\": \"again\", \"input\": {},"
                      " \"outputs\": {\"x\": \"X\", \"a\": \"A2\", \"b\": \"B\"}}"),
        "re-run: completed event with every output");
    chorus_actions_clear (&out);
    is_int (chorus_flow_retry (flow, T0 + 104, &out), -1, "re-run: not once completed");

    //  A second failure: the keys go on to :r3
    chorus_flow_destroy (&flow);
    flow = chorus_flow_start (def, "H", NULL, T0, &out);
    s_error (flow, "H/x", 1, false, T0, &out);
    chorus_flow_retry (flow, T0, &out);
    s_error (flow, "H/x:r2", 1, false, T0, &out);
    chorus_actions_clear (&out);
    chorus_flow_retry (flow, T0, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "H/x:r3", "re-run: third run, :r3");
    chorus_actions_clear (&out);
    chorus_flow_destroy (&flow);
    chorus_flowdef_destroy (&def);
}

static void
test_flowset (void)
{
    chorus_flowdef_t *orders = s_def (
        "flow: orders\nversion: 1\nkey: $.input.order_id\n"
        "steps:\n  - { id: a, service: s, command: a }\n");
    chorus_flowdef_t *other = s_def (
        "flow: other\nversion: 1\nkey: $.input.order_id\n"
        "steps:\n  - { id: a, service: s, command: a }\n");
    json_t *seven = s_json ("{\"order_id\": 7}");
    json_t *named = s_json ("{\"order_id\": \"x-1\"}");
    json_t *keyless = s_json ("{\"order_id\": [1]}");
    chorus_flowset_t *set = chorus_flowset_new (2);
    chorus_actions_t out;
    chorus_actions_init (&out);
    bool existing = true;
    chorus_flow_t *f1 = chorus_flowset_start (set, orders, "F1", seven, NULL, 0,
                                              T0, &out, &existing);
    ok (f1 && !existing && out.size == 1, "flowset: first start runs");
    is_str (chorus_flow_business_key (f1), "7", "flowset: a number key is its JSON text");
    chorus_actions_clear (&out);
    chorus_flow_t *dup = chorus_flowset_start (set, orders, "F2", seven, NULL, 0,
                                               T0, &out, &existing);
    ok (dup == f1 && existing, "flowset: same key returns the live flow");
    is_int (out.size, 0, "flowset: and starts nothing");
    ok (chorus_flowset_lookup (set, "F2") == NULL, "flowset: no second flow");
    dup = chorus_flowset_start (set, orders, "F1", named, NULL, 0, T0, &out, &existing);
    ok (dup == f1 && existing && out.size == 0, "flowset: same id returns the flow too");
    chorus_flow_t *f3 = chorus_flowset_start (set, orders, "F3", named, NULL, 0,
                                              T0, &out, &existing);
    ok (f3 && f3 != f1 && !existing, "flowset: another key, another flow");
    is_str (chorus_flow_business_key (f3), "x-1", "flowset: a string key as is");
    chorus_flow_t *f4 = chorus_flowset_start (set, other, "F4", seven, NULL, 0,
                                              T0, &out, &existing);
    ok (f4 && !existing, "flowset: same key, other definition: another flow");
    chorus_flow_t *k1 = chorus_flowset_start (set, orders, "K1", keyless, NULL, 0,
                                              T0, &out, &existing);
    chorus_flow_t *k2 = chorus_flowset_start (set, orders, "K2", keyless, NULL, 0,
                                              T0, &out, &existing);
    ok (k1 && k2 && k1 != k2 && !chorus_flow_business_key (k1),
        "flowset: no key, no dedupe");
    is_int (chorus_flowset_size (set), 5, "flowset: five flows");

    s_ok (f1, "F1/a", 1, NULL, T0 + 1, &out);
    ok (chorus_flowset_finished (set, f1) == NULL, "flowset: one finished, nothing evicted");
    chorus_flow_t *f5 = chorus_flowset_start (set, orders, "F5", seven, NULL, 0,
                                              T0 + 2, &out, &existing);
    ok (f5 && f5 != f1 && !existing, "flowset: the key is free once its flow finished");
    ok (chorus_flowset_finished (set, f5) == NULL, "flowset: a running flow is not moved");
    s_ok (f3, "F3/a", 1, NULL, T0 + 3, &out);
    ok (chorus_flowset_finished (set, f3) == NULL, "flowset: two finished, within bound");
    s_ok (f5, "F5/a", 1, NULL, T0 + 4, &out);
    char *evicted = chorus_flowset_finished (set, f5);
    is_str (evicted, "F1", "flowset: the oldest finished flow is evicted");
    free (evicted);
    ok (chorus_flowset_lookup (set, "F1") == NULL, "flowset: and gone");
    is_int (chorus_flowset_size (set), 5, "flowset: five flows again");

    char order [64] = "";
    for (chorus_flow_t *flow = chorus_flowset_first (set); flow;
         flow = chorus_flowset_next (set)) {
        strcat (order, chorus_flow_id (flow));
        strcat (order, " ");
    }
    is_str (order, "F4 K1 K2 F3 F5 ", "flowset: live first, then finished, oldest first");

    //  Finished flows from a journal: evicted down to the bound on request
    chorus_flow_t *g1 = chorus_flow_start (other, "G1", named, T0, &out);
    s_ok (g1, "G1/a", 1, NULL, T0, &out);
    chorus_flowset_insert (set, g1);
    is_int (chorus_flowset_size (set), 6, "flowset: inserted");
    evicted = chorus_flowset_evict (set);
    is_str (evicted, "F3", "flowset: evict trims the finished list");
    free (evicted);
    ok (chorus_flowset_evict (set) == NULL, "flowset: down to the bound");
    ok (chorus_flowset_lookup (set, "G1") == g1, "flowset: the inserted flow is found");

    chorus_actions_clear (&out);
    chorus_flowset_destroy (&set);
    chorus_flowset_destroy (&set);
    ok (set == NULL, "flowset: destroy nulls, safe twice");
    json_decref (seven);
    json_decref (named);
    json_decref (keyless);
    chorus_flowdef_destroy (&orders);
    chorus_flowdef_destroy (&other);
}

//  --------------------------------------------------------------------------
//  Save and load at every transition of one scenario

typedef enum { EV_OK, EV_FAIL, EV_RETRYABLE, EV_TIMEOUT, EV_TIMER, EV_RETRY } event_kind_t;

typedef struct {
    event_kind_t kind;          //  what happens
    const char *key;            //  task or timer key
    int attempt;                //  replies: which try
    const char *output;         //  EV_OK: the reply payload
} event_t;

static const event_t s_journey [] = {
    { EV_RETRYABLE, "J/a", 1, NULL },
    { EV_TIMER, "retry:J/a", 0, NULL },
    { EV_OK, "J/a", 2, "\"A\"" },
    { EV_OK, "J/fan/0", 1, "0" },
    { EV_OK, "J/fan/1", 1, "1" },
    { EV_FAIL, "J/b", 1, NULL },
    { EV_OK, "J/fan/1/undo", 1, NULL },
    { EV_RETRYABLE, "J/fan/0/undo", 1, NULL },
    { EV_TIMER, "retry:J/fan/0/undo", 0, NULL },
    { EV_TIMEOUT, "J/fan/0/undo", 2, NULL },
    { EV_TIMER, "retry:J/fan/0/undo", 0, NULL },
    { EV_RETRYABLE, "J/fan/0/undo", 3, NULL },
    { EV_TIMER, "retry:J/fan/0/undo", 0, NULL },
    { EV_RETRYABLE, "J/fan/0/undo", 4, NULL },
    { EV_TIMER, "retry:J/fan/0/undo", 0, NULL },
    { EV_RETRYABLE, "J/fan/0/undo", 5, NULL },
    { EV_OK, "J/a/undo", 1, NULL },
    { EV_RETRY, NULL, 0, NULL },
    { EV_OK, "J/fan/0/undo", 6, NULL },
    { EV_RETRY, NULL, 0, NULL },
    { EV_OK, "J/a:r2", 1, "\"A2\"" },
    { EV_OK, "J/fan/0:r2", 1, "10" },
    { EV_OK, "J/fan/1:r2", 1, "11" },
    { EV_OK, "J/b:r2", 1, "\"B\"" },
};
#define JOURNEY_SIZE (sizeof s_journey / sizeof s_journey [0])

static json_t *
s_actions_json (const chorus_actions_t *out)
{
    json_t *list = json_array ();
    for (size_t index = 0; index < out->size; index++) {
        const chorus_action_t *action = &out->items [index];
        json_array_append_new (list, json_pack (
            "{s:i, s:s, s:s?, s:s?, s:s?, s:o?, s:i, s:I, s:s?}", "kind", action->kind,
            "flow", action->flow, "key", action->key, "service", action->service,
            "command", action->command, "payload", s_action_payload (action),
            "attempt", action->attempt, "at", (json_int_t) action->at, "topic", action->topic));
    }
    return list;
}

//  Plays one event; its return code and actions go into `trace`
static void
s_play (chorus_flow_t *flow, size_t index, json_t *trace)
{
    const event_t *event = &s_journey [index];
    uint64_t now = T0 + 1000 * (index + 1);
    chorus_actions_t out;
    chorus_actions_init (&out);
    json_t *output = event->output? s_json (event->output): NULL;
    chorus_result_t result = { .ok = event->kind == EV_OK, .output = output,
                               .timeout = event->kind == EV_TIMEOUT,
                               .retryable = event->kind == EV_RETRYABLE,
                               .code = "boom", .message = "no" };
    int rc;
    if (event->kind == EV_TIMER)
        rc = chorus_flow_timer (flow, event->key, now, &out);
    else
    if (event->kind == EV_RETRY)
        rc = chorus_flow_retry (flow, now, &out);
    else
        rc = chorus_flow_reply (flow, event->key, event->attempt, &result, now, &out);
    json_array_append_new (trace, json_integer (rc));
    json_array_append_new (trace, s_actions_json (&out));
    json_decref (output);
    chorus_actions_clear (&out);
}

static void
test_save_load_round_trip (void)
{
    chorus_flowdef_t *def = s_def (
        "flow: journey\nversion: 4\ntimeout: 1h\n"
        "emit: { completed: j.done, failed: j.failed }\n"
        "steps:\n"
        "  - id: a\n    service: s\n    command: a\n"
        "    retry: { attempts: 2, backoff: 100ms }\n"
        "    compensate: { command: undo_a, input: { id: $.steps.a.output } }\n"
        "  - id: fan\n    service: t\n    command: one\n    depends_on: [a]\n"
        "    for_each: $.input.items\n    max_parallel: 1\n"
        "    compensate: { command: release, input: { item: $.item } }\n"
        "  - { id: b, service: s, command: b, depends_on: [fan] }\n");
    json_t *input = s_json ("{\"items\": [\"p\", \"q\"]}");

    //  The reference: one flow, never saved
    chorus_actions_t out;
    chorus_actions_init (&out);
    chorus_flow_t *flow = chorus_flow_start (def, "J", input, T0, &out);
    chorus_actions_clear (&out);
    json_t *reference = json_array ();
    for (size_t index = 0; index < JOURNEY_SIZE; index++)
        s_play (flow, index, reference);
    json_t *final = chorus_flow_status (flow);
    is_str (json_string_value (json_object_get (final, "state")), "completed",
            "round trip: the scenario completes");
    size_t refused = 0;
    for (size_t index = 0; index < JOURNEY_SIZE; index++)
        if (json_integer_value (json_array_get (reference, 2 * index)) != 0) {
            diag ("event %zu was refused", index);
            refused++;
        }
    is_int (refused, 0, "round trip: every event of the scenario is taken");
    chorus_flow_destroy (&flow);

    //  Saved, serialised, loaded and continued after every transition
    for (size_t cut = 0; cut <= JOURNEY_SIZE; cut++) {
        flow = chorus_flow_start (def, "J", input, T0, &out);
        chorus_actions_clear (&out);
        json_t *trace = json_array ();
        for (size_t index = 0; index < cut; index++)
            s_play (flow, index, trace);
        json_t *saved = chorus_flow_save (flow);
        char *text = json_dumps (saved, JSON_COMPACT);
        json_t *parsed = json_loads (text, 0, NULL);
        char error [128] = "";
        chorus_flow_t *loaded = chorus_flow_load (def, parsed, error, sizeof error);
        if (!ok (loaded != NULL, "round trip %zu: loads", cut))
            bail_out (error);
        json_t *again = chorus_flow_save (loaded);
        ok (json_equal (saved, again), "round trip %zu: save (load (save)) is the same", cut);
        chorus_flow_destroy (&flow);
        for (size_t index = cut; index < JOURNEY_SIZE; index++)
            s_play (loaded, index, trace);
        ok (json_equal (trace, reference), "round trip %zu: same replies and actions", cut);
        json_t *status = chorus_flow_status (loaded);
        ok (json_equal (status, final), "round trip %zu: same final status", cut);
        json_decref (status);
        json_decref (again);
        json_decref (parsed);
        free (text);
        json_decref (saved);
        json_decref (trace);
        chorus_flow_destroy (&loaded);
    }

    //  A state that does not fit is refused with a reason
    flow = chorus_flow_start (def, "J", input, T0, &out);
    json_t *saved = chorus_flow_save (flow);
    chorus_flowdef_t *other = s_def ("flow: journey\nversion: 5\n"
                                     "steps:\n  - { id: a, service: s, command: a }\n");
    char error [128] = "";
    ok (chorus_flow_load (other, saved, error, sizeof error) == NULL && *error,
        "round trip: another version of the definition is refused");
    diag ("%s", error);
    json_object_set_new (saved, "state", json_string ("dancing"));
    ok (chorus_flow_load (def, saved, error, sizeof error) == NULL,
        "round trip: an unknown state is refused");
    json_t *bad = s_json ("{\"id\": \"J\"}");
    ok (chorus_flow_load (def, bad, error, sizeof error) == NULL, "round trip: junk is refused");
    json_decref (bad);
    json_decref (saved);
    chorus_flowdef_destroy (&other);
    chorus_actions_clear (&out);
    chorus_flow_destroy (&flow);

    json_decref (final);
    json_decref (reference);
    json_decref (input);
    chorus_flowdef_destroy (&def);
}

int
main (void)
{
    test_reverse_completion_order ();
    test_partial_fan_out ();
    test_cancel ();
    test_stuck_then_retry ();
    test_maybe_done ();
    test_retry_failed_flow ();
    test_flowset ();
    test_save_load_round_trip ();
    return done_testing ();
}
