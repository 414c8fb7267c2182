/*  test_flow_engine_fans_out.c — a reply to one item of a big fan-out
    costs the same whatever the number of items: its journal delta holds
    that item alone (the same size for the first reply as for the last, in
    a fan-out of 10 items or of 4000), and with max_parallel it sends the
    next item in order, never more than the bound at once. A flow rebuilt
    from its snapshot and those deltas, or restored in the middle, goes on
    to the same end: the gathered output of every item in order. A failed
    fan-out retried runs again exactly the items that were not done.
*/
#include "testutil.h"
#include "flow_fixtures.h"

static const char *s_fan_yaml =
    "flow: fan\nversion: 1\nsteps:\n"
    "  - id: each\n    service: s\n    command: each\n"
    "    for_each: $.input.items\n    input: { i: $.item }\n%s"
    "  - id: last\n    service: s\n    command: last\n    depends_on: [each]\n"
    "    input: { all: $.steps.each.output }\n";

static chorus_flowdef_t *
s_fan_def (const char *extra)
{
    char yaml [1024];
    snprintf (yaml, sizeof yaml, s_fan_yaml, extra);
    return s_def (yaml);
}

static json_t *
s_items (int count)
{
    json_t *items = json_array ();
    for (int i = 0; i < count; i++)
        json_array_append_new (items, json_integer (i));
    return json_pack ("{s:o}", "items", items);
}

//  Replies to item i with {"twice": 2i}
static int
s_reply_item (chorus_flow_t *flow, int i, chorus_actions_t *out)
{
    char key [64], output [64];
    snprintf (key, sizeof key, "%s/each/%d", chorus_flow_id (flow), i);
    snprintf (output, sizeof output, "{\"twice\": %d}", 2 * i);
    return s_ok (flow, key, 1, output, T0 + 10, out);
}

static size_t
s_delta_size (chorus_flow_t *flow)
{
    chorus_record_t record;
    chorus_record_init (&record);
    chorus_flow_delta (flow, &record);
    size_t size = record.size;
    chorus_record_clear (&record);
    return size;
}

//  The first and last reply's delta, in a fan-out of `count` items
static void
s_delta_sizes (int count, size_t *first, size_t *last)
{
    chorus_flowdef_t *def = s_fan_def ("");
    chorus_actions_t out;
    chorus_actions_init (&out);
    json_t *input = s_items (count);
    chorus_flow_t *flow = chorus_flow_start (def, "f", input, T0, &out);
    chorus_record_t record;
    chorus_record_init (&record);
    chorus_flow_snapshot (flow, &record);
    chorus_record_clear (&record);
    //  Items answered from the middle out: the first reply is not item 0
    s_reply_item (flow, count / 2, &out);
    *first = s_delta_size (flow);
    for (int i = 0; i < count; i++)
        if (i != count / 2 && i != count - 1) {
            s_reply_item (flow, i, &out);
            chorus_record_init (&record);
            chorus_flow_delta (flow, &record);
            chorus_record_clear (&record);
        }
    s_reply_item (flow, count - 1, &out);
    *last = s_delta_size (flow);
    chorus_actions_clear (&out);
    json_decref (input);
    chorus_flow_destroy (&flow);
    chorus_flowdef_destroy (&def);
}

static void
s_test_delta_per_item (void)
{
    size_t small_first, small_last, big_first, big_last;
    s_delta_sizes (10, &small_first, &small_last);
    s_delta_sizes (4000, &big_first, &big_last);
    ok (small_first < 120, "a reply's delta holds its item: %zu bytes", small_first);
    //  Item numbers and times take a byte or two more in the big one
    ok (big_first <= small_first + 8,
        "the same in a fan-out of 4000 items: %zu bytes (10 items: %zu)", big_first, small_first);
    ok (big_last <= small_last + 8,
        "and for its last reply, which starts the next step: %zu bytes (10 items: %zu)",
        big_last, small_last);
}

//  A shadow rebuilt from the snapshot and every delta ends as the flow
static void
s_test_rebuilt (void)
{
    chorus_flowdef_t *def = s_fan_def ("    max_parallel: 7\n");
    chorus_actions_t out;
    chorus_actions_init (&out);
    json_t *input = s_items (500);
    chorus_flow_t *flow = chorus_flow_start (def, "r", input, T0, &out);
    is_int ((int) out.size, 7, "max_parallel 7: seven items sent at start");
    chorus_record_t record;
    chorus_record_init (&record);
    chorus_flow_snapshot (flow, &record);
    char error [256] = "";
    chorus_reader_t reader;
    chorus_reader_init (&reader, record.data, record.size);
    chorus_flow_t *shadow = chorus_flow_restore (def, &reader, error, sizeof error);
    chorus_record_clear (&record);
    ok (shadow != NULL, "the snapshot restores: %s", error);
    //  Items answered out of order (the second oldest running first);
    //  each reply sends the next pending one
    int running [8] = {0, 1, 2, 3, 4, 5, 6};
    int count = 7, next = 7;
    bool in_order = true, bounded = true, applied = true;
    while (count > 0 && shadow) {
        int pick = count > 1? 1: 0;
        int i = running [pick];
        memmove (&running [pick], &running [pick + 1], (size_t) (count - pick - 1) * sizeof (int));
        count--;
        s_reply_item (flow, i, &out);
        for (size_t a = 0; a < out.size; a++)
            if (out.items [a].kind == CHORUS_ACTION_SEND && strstr (out.items [a].key, "/each/")) {
                char want [64];
                snprintf (want, sizeof want, "r/each/%d", next);
                in_order = in_order && strcmp (out.items [a].key, want) == 0;
                if (count < 8)
                    running [count++] = next;
                next++;
            }
        bounded = bounded && count <= 7;
        chorus_record_init (&record);
        chorus_flow_delta (flow, &record);
        chorus_reader_init (&reader, record.data, record.size);
        applied = applied && chorus_flow_apply (shadow, &reader, error, sizeof error) == 0;
        chorus_record_clear (&record);
    }
    is_int (next, 500, "all 500 items were sent");
    ok (in_order, "each reply sent the next item, in item order");
    ok (bounded, "never more than 7 at once");
    ok (applied, "every delta applied to the shadow: %s", error);
    json_t *mine = chorus_flow_save (flow);
    json_t *theirs = shadow? chorus_flow_save (shadow): NULL;
    ok (theirs && json_equal (mine, theirs), "the shadow is the flow, field for field");
    json_decref (mine);
    json_decref (theirs);
    chorus_actions_clear (&out);
    json_decref (input);
    chorus_flow_destroy (&flow);
    chorus_flow_destroy (&shadow);
    chorus_flowdef_destroy (&def);
}

//  Restored half-way, a fan-out goes on from where it was and gathers
//  every output in item order
static void
s_test_restored_half_way (void)
{
    chorus_flowdef_t *def = s_fan_def ("    max_parallel: 50\n");
    chorus_actions_t out;
    chorus_actions_init (&out);
    json_t *input = s_items (1000);
    chorus_flow_t *flow = chorus_flow_start (def, "h", input, T0, &out);
    //  Items 0..49 run; answer the odd ones, which sends 50..74
    for (int i = 1; i < 50; i += 2)
        s_reply_item (flow, i, &out);
    chorus_record_t record;
    chorus_record_init (&record);
    chorus_flow_snapshot (flow, &record);
    chorus_flow_destroy (&flow);
    char error [256] = "";
    chorus_reader_t reader;
    chorus_reader_init (&reader, record.data, record.size);
    flow = chorus_flow_restore (def, &reader, error, sizeof error);
    chorus_record_clear (&record);
    if (!flow)
        bail_out (error);
    chorus_actions_clear (&out);
    chorus_flow_resume (flow, T0 + 20, &out);
    ok (out.size == 50 && strcmp (out.items [0].key, "h/each/0") == 0
        && strcmp (out.items [49].key, "h/each/74") == 0,
        "restored, it sends again the 50 items that were running (%zu)", out.size);
    //  The rest in order: each reply sends one more, up to the last
    int sent = 75;
    bool one_each = true;
    for (int i = 0; i < 1000; i++) {
        if (i < 50 && i % 2)
            continue;
        s_reply_item (flow, i, &out);
        size_t sends = 0;
        for (size_t a = 0; a < out.size; a++)
            sends += out.items [a].kind == CHORUS_ACTION_SEND;
        if (i < 999 && sent < 1000) {
            char want [64];
            snprintf (want, sizeof want, "h/each/%d", sent++);
            one_each = one_each && sends == 1 && strcmp (out.items [0].key, want) == 0;
        }
    }
    ok (one_each, "then each reply sends the next item");
    is_int (sent, 1000, "every item was sent");
    const chorus_action_t *last = s_action (&out, CHORUS_ACTION_SEND, "h/last");
    json_t *payload = s_action_payload (last);
    json_t *all = json_object_get (payload, "all");
    bool gathered = json_array_size (all) == 1000;
    for (size_t i = 0; gathered && i < 1000; i++)
        gathered = json_integer_value (json_object_get (json_array_get (all, i), "twice"))
                == 2 * (json_int_t) i;
    ok (gathered, "the next step gets the 1000 outputs in item order");
    json_decref (payload);
    chorus_actions_clear (&out);
    json_decref (input);
    chorus_flow_destroy (&flow);
    chorus_flowdef_destroy (&def);
}

//  A fan-out that failed is retried: the items done stay done, the others
//  run again, each once, under the new run's keys
static void
s_test_retry (void)
{
    chorus_flowdef_t *def = s_fan_def ("    max_parallel: 3\n");
    chorus_actions_t out;
    chorus_actions_init (&out);
    json_t *input = s_items (10);
    chorus_flow_t *flow = chorus_flow_start (def, "t", input, T0, &out);
    s_reply_item (flow, 0, &out);           //  sends 3
    s_reply_item (flow, 1, &out);           //  sends 4
    s_error (flow, "t/each/2", 1, false, T0 + 30, &out);
    s_reply_item (flow, 3, &out);
    s_reply_item (flow, 4, &out);
    is_str (chorus_flow_state_name (chorus_flow_state (flow)), "failed",
            "an item failed for good: the flow failed");
    chorus_actions_clear (&out);
    ok (chorus_flow_retry (flow, T0 + 40, &out) == 0, "it is retried");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "t/each/2:r2 t/each/5:r2 t/each/6:r2",
            "the first three items not done run again, within max_parallel");
    for (int i = 2; i < 10; i++)
        if (i != 3 && i != 4) {
            char key [32];
            snprintf (key, sizeof key, "t/each/%d:r2", i);
            s_ok (flow, key, 1, "{\"twice\": 0}", T0 + 50, &out);
        }
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "t/last:r2", "then the next step starts");
    chorus_actions_clear (&out);
    json_decref (input);
    chorus_flow_destroy (&flow);
    chorus_flowdef_destroy (&def);
}

int
main (void)
{
    s_test_delta_per_item ();
    s_test_rebuilt ();
    s_test_restored_half_way ();
    s_test_retry ();
    return done_testing ();
}
