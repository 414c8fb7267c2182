/*  test_flow_engine_runs_sub_flows.c — a step with `flow:` asks the
    coordinator to start a child flow per task (one per item with for_each,
    bounded by max_parallel), keyed by the task so that asking again finds
    the same child; the child's end completes or fails the task; a failing
    or cancelled parent cancels its running children and compensates its
    completed ones, the last completed first; a stuck child compensation
    leaves the parent stuck until a retry; a completed child undoes itself
    when its parent asks; the parent link is journaled with the child, and
    a restored parent asks again for what it waited on.
*/
#include "testutil.h"
#include "flow_fixtures.h"
#include "chorus_record.h"

static const char *s_parent =
    "flow: bundle\nversion: 1\nsteps:\n"
    "  - id: docs\n    flow: process_document\n    for_each: $.input.docs\n"
    "    max_parallel: 2\n    input: { doc: $.item }\n"
    "  - id: after\n    service: s\n    command: after\n    depends_on: [docs]\n"
    "    input: $.steps.docs.output\n"
    "output: $.steps.docs.output\n";

static const char *s_child_yaml =
    "flow: process_document\nversion: 1\nsteps:\n"
    "  - id: ocr\n    service: ocr\n    command: ocr\n    compensate: { command: unocr }\n"
    "output: { text: $.steps.ocr.output.text }\n";

static chorus_flow_t *
s_start_parent (chorus_flowdef_t *def, const char *id, const char *input,
                chorus_actions_t *out)
{
    json_t *value = s_json (input);
    chorus_actions_clear (out);
    chorus_flow_t *flow = chorus_flow_start (def, id, value, T0, out);
    json_decref (value);
    return flow;
}

static int
s_child (chorus_flow_t *flow, const char *key, chorus_flow_state_t state, const char *output,
         uint64_t now, chorus_actions_t *out)
{
    json_t *value = output? s_json (output): NULL;
    chorus_actions_clear (out);
    int rc = chorus_flow_child_ended (flow, key, state, NULL, 0, value,
                                      state == CHORUS_FLOW_COMPLETED? NULL: "flow X failed: boom",
                                      now, out);
    json_decref (value);
    return rc;
}

static void
test_children_run_and_complete (void)
{
    chorus_flowdef_t *def = s_def (s_parent);
    chorus_actions_t out;
    chorus_actions_init (&out);
    chorus_flow_t *flow = s_start_parent (def, "P", "{\"docs\": [\"a\", \"b\", \"c\"]}", &out);
    is_str (s_keys (&out, CHORUS_ACTION_START_FLOW), "P/docs/0 P/docs/1",
            "start: two children at once (max_parallel 2), keyed by their tasks");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "", "start: no command is sent");
    const chorus_action_t *start = s_action (&out, CHORUS_ACTION_START_FLOW, "P/docs/1");
    is_str (start? start->command: NULL, "process_document", "start: names the child's flow");
    ok (s_payload_is (&out, CHORUS_ACTION_START_FLOW, "P/docs/1", "{\"doc\": \"b\"}"),
        "start: the child's input is the step's input");
    ok (start && start->at == 0, "start: no deadline (the child's own timeout bounds it)");

    json_t *status = chorus_flow_status (flow);
    json_t *items = json_object_get (json_array_get (json_object_get (status, "steps"), 0),
                                     "items");
    is_str (json_string_value (json_object_get (json_array_get (items, 1), "child")), "P/docs/1",
            "status: an item names its child");
    ok (json_object_get (json_array_get (items, 2), "child") == NULL,
        "status: an item not started has no child yet");
    json_decref (status);

    is_int (s_child (flow, "P/docs/1", CHORUS_FLOW_RUNNING, NULL, T0 + 1, &out), -1,
            "a child still running changes nothing");
    is_int (s_child (flow, "P/docs/1", CHORUS_FLOW_COMPLETED, "{\"text\": \"B\"}", T0 + 2, &out),
            0, "child 1 completed");
    is_str (s_keys (&out, CHORUS_ACTION_START_FLOW), "P/docs/2", "the third child starts");
    is_int (s_child (flow, "P/docs/1", CHORUS_FLOW_COMPLETED, "{\"text\": \"B\"}", T0 + 3, &out),
            -1, "the same end told again changes nothing");
    is_int (s_child (flow, "P/docs/7", CHORUS_FLOW_COMPLETED, "{}", T0 + 3, &out), -1,
            "an unknown task is ignored");
    is_int (s_child (flow, "P/after", CHORUS_FLOW_COMPLETED, "{}", T0 + 3, &out), -1,
            "a command's task takes no child's end");
    s_child (flow, "P/docs/0", CHORUS_FLOW_COMPLETED, "{\"text\": \"A\"}", T0 + 4, &out);
    s_child (flow, "P/docs/2", CHORUS_FLOW_COMPLETED, "{\"text\": \"C\"}", T0 + 5, &out);
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "P/after",
                      "[{\"text\": \"A\"}, {\"text\": \"B\"}, {\"text\": \"C\"}]"),
        "the next step reads the children's outputs in item order");
    s_ok (flow, "P/after", 1, "{}", T0 + 6, &out);
    is_str (chorus_flow_state_name (chorus_flow_state (flow)), "completed", "the parent completed");
    chorus_flow_destroy (&flow);
    chorus_actions_clear (&out);
    chorus_flowdef_destroy (&def);
}

static void
test_failure_compensates_children_last_first (void)
{
    chorus_flowdef_t *def = s_def (s_parent);
    chorus_actions_t out;
    chorus_actions_init (&out);
    chorus_flow_t *flow = s_start_parent (def, "Q", "{\"docs\": [\"a\", \"b\", \"c\"]}", &out);
    s_child (flow, "Q/docs/1", CHORUS_FLOW_COMPLETED, "{}", T0 + 1, &out);   //  starts 2
    s_child (flow, "Q/docs/2", CHORUS_FLOW_COMPLETED, "{}", T0 + 2, &out);
    s_child (flow, "Q/docs/0", CHORUS_FLOW_FAILED, NULL, T0 + 3, &out);
    is_str (s_keys (&out, CHORUS_ACTION_UNDO_FLOW), "Q/docs/2",
            "failed child: the last completed child is undone first");
    json_t *status = chorus_flow_status (flow);
    char *text = json_dumps (json_object_get (status, "error"), JSON_COMPACT | JSON_SORT_KEYS);
    is_str (text, "{\"code\":\"flow-failed\",\"message\":\"flow X failed: boom\",\"step\":\"docs\"}",
            "failed child: the parent's error carries the child's");
    free (text);
    json_decref (status);
    is_int (s_child (flow, "Q/docs/2", CHORUS_FLOW_COMPLETED, "{}", T0 + 4, &out), -1,
            "undoing: a completed child's end again changes nothing");
    is_int (s_child (flow, "Q/docs/2", CHORUS_FLOW_CANCELLED, NULL, T0 + 5, &out), 0,
            "undoing: the child compensated itself");
    is_str (s_keys (&out, CHORUS_ACTION_UNDO_FLOW), "Q/docs/1", "then the one completed before");
    //  A stuck compensation of a child leaves the parent stuck
    is_int (s_child (flow, "Q/docs/1", CHORUS_FLOW_STUCK, NULL, T0 + 6, &out), 0,
            "undoing: the child is stuck");
    is_str (chorus_flow_state_name (chorus_flow_state (flow)), "stuck", "so is the parent");
    chorus_actions_clear (&out);
    is_int (chorus_flow_retry (flow, T0 + 7, &out), 0, "retry of the stuck parent");
    is_str (s_keys (&out, CHORUS_ACTION_UNDO_FLOW), "Q/docs/1", "asks the child again");
    s_child (flow, "Q/docs/1", CHORUS_FLOW_CANCELLED, NULL, T0 + 8, &out);
    is_str (chorus_flow_state_name (chorus_flow_state (flow)), "failed",
            "every child undone: the parent failed");
    chorus_flow_destroy (&flow);
    chorus_actions_clear (&out);
    chorus_flowdef_destroy (&def);
}

static void
test_cancel_cancels_running_children (void)
{
    chorus_flowdef_t *def = s_def (s_parent);
    chorus_actions_t out;
    chorus_actions_init (&out);
    chorus_flow_t *flow = s_start_parent (def, "R", "{\"docs\": [\"a\", \"b\", \"c\"]}", &out);
    s_child (flow, "R/docs/0", CHORUS_FLOW_COMPLETED, "{}", T0 + 1, &out);   //  starts 2
    chorus_actions_clear (&out);
    is_int (chorus_flow_cancel (flow, T0 + 2, &out), 0, "cancel");
    is_str (s_keys (&out, CHORUS_ACTION_CANCEL_FLOW), "R/docs/1 R/docs/2",
            "cancel: each running child is asked to cancel");
    is_int (s_child (flow, "R/docs/1", CHORUS_FLOW_CANCELLED, NULL, T0 + 3, &out), 0,
            "a cancelled child fails its task");
    is_str (s_keys (&out, CHORUS_ACTION_CANCEL_FLOW), "", "the other child is not asked twice");
    is_str (s_keys (&out, CHORUS_ACTION_UNDO_FLOW), "", "nothing is undone while a child runs");

    //  The parent's records, restored, ask again
    chorus_record_t record;
    chorus_record_init (&record);
    chorus_flow_snapshot (flow, &record);
    chorus_reader_t reader;
    chorus_reader_init (&reader, record.data, record.size);
    char error [256] = "";
    chorus_flow_t *again = chorus_flow_restore (def, &reader, error, sizeof error);
    ok (again != NULL, "restored: %s", again? "the parent": error);
    chorus_actions_clear (&out);
    if (again)
        chorus_flow_resume (again, T0 + 4, &out);
    is_str (s_keys (&out, CHORUS_ACTION_START_FLOW), "R/docs/2",
            "restored: the running child is asked for again (found, not started twice)");
    is_str (s_keys (&out, CHORUS_ACTION_CANCEL_FLOW), "R/docs/2",
            "restored: and asked again to cancel");
    chorus_flow_destroy (&again);
    chorus_record_clear (&record);

    s_child (flow, "R/docs/2", CHORUS_FLOW_CANCELLED, NULL, T0 + 5, &out);
    is_str (s_keys (&out, CHORUS_ACTION_UNDO_FLOW), "R/docs/0",
            "the completed child is undone once none runs");
    s_child (flow, "R/docs/0", CHORUS_FLOW_CANCELLED, NULL, T0 + 6, &out);
    is_str (chorus_flow_state_name (chorus_flow_state (flow)), "cancelled", "the parent cancelled");
    chorus_flow_destroy (&flow);
    chorus_actions_clear (&out);
    chorus_flowdef_destroy (&def);
}

static void
test_child_undoes_itself_and_keeps_its_parent (void)
{
    chorus_flowdef_t *def = s_def (s_child_yaml);
    chorus_actions_t out;
    chorus_actions_init (&out);
    chorus_flow_t *child = s_start_parent (def, "P/docs/0", "{\"doc\": \"a\"}", &out);
    chorus_flow_set_parent (child, "P", "P/docs/0");
    is_str (chorus_flow_parent (child), "P", "the child knows its parent");
    chorus_actions_clear (&out);
    is_int (chorus_flow_undo (child, T0, &out), -1, "undo: refused while it runs");
    s_ok (child, "P/docs/0/ocr", 1, "{\"text\": \"T\"}", T0 + 1, &out);
    is_str (chorus_flow_state_name (chorus_flow_state (child)), "completed", "the child completed");
    size_t size;
    json_t *json;
    chorus_flow_output (child, &size, &json);
    json_t *want = s_json ("{\"text\": \"T\"}");
    ok (json && json_equal (json, want), "its output is there for the parent");
    json_decref (want);

    chorus_record_t record;
    chorus_record_init (&record);
    chorus_flow_snapshot (child, &record);
    chorus_reader_t reader;
    chorus_reader_init (&reader, record.data, record.size);
    is_int ((int) chorus_reader_array (&reader), 13, "records: a child's snapshot has 13 values");
    chorus_reader_init (&reader, record.data, record.size);
    char error [256] = "";
    chorus_flow_t *again = chorus_flow_restore (def, &reader, error, sizeof error);
    ok (again && chorus_flow_parent (again) && streq (chorus_flow_parent (again), "P")
        && streq (chorus_flow_parent_key (again), "P/docs/0"),
        "records: the parent link is restored");
    chorus_flow_destroy (&again);
    chorus_record_clear (&record);

    chorus_actions_clear (&out);
    is_int (chorus_flow_undo (child, T0 + 2, &out), 0, "undo: the completed child compensates");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "P/docs/0/ocr/undo", "undo: its step is undone");
    s_ok (child, "P/docs/0/ocr/undo", 1, "{}", T0 + 3, &out);
    is_str (chorus_flow_state_name (chorus_flow_state (child)), "cancelled",
            "undo: the child ends cancelled");
    json_t *status = chorus_flow_status (child);
    is_str (json_string_value (json_object_get (json_object_get (status, "error"), "code")),
            "compensated", "undo: its error says its parent compensated it");
    ok (json_is_null (json_object_get (status, "output")), "undo: it has no output any more");
    json_decref (status);
    chorus_flow_destroy (&child);
    chorus_actions_clear (&out);
    chorus_flowdef_destroy (&def);
}

int
main (void)
{
    test_children_run_and_complete ();
    test_failure_compensates_children_last_first ();
    test_cancel_cancels_running_children ();
    test_child_undoes_itself_and_keeps_its_parent ();
    return done_testing ();
}
