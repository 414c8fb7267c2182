/*  test_flow_engine_branches_and_sleeps.c — `when:` and `sleep:` in the
    flow engine: a step whose condition is false is skipped and counts as
    done (if/else and switch with depends_on), is never compensated, and a
    skipped fan-out reads no list; a sleep step waits for a timer at an
    absolute time, from a duration or a time read from the flow, fails the
    flow on a bad time, and wakes at its original time after a restart.
*/
#include "flow_fixtures.h"

//  The diamond of FLOWS.md: one of two branches, then a join
static const char *s_diamond =
    "flow: ship_order\nversion: 1\n"
    "emit: { completed: order.shipped }\n"
    "steps:\n"
    "  - { id: quote, service: pricing, command: quote, compensate: { command: drop } }\n"
    "  - id: express\n    service: shipping\n    command: courier\n    depends_on: [quote]\n"
    "    when: $.steps.quote.output.weight < 30 and $.input.express\n"
    "    compensate: { command: cancel_courier }\n"
    "  - id: standard\n    service: shipping\n    command: post\n    depends_on: [quote]\n"
    "    when: not ($.steps.quote.output.weight < 30 and $.input.express)\n"
    "    compensate: { command: cancel_post }\n"
    "  - id: notify\n    service: mail\n    command: send\n    depends_on: [express, standard]\n"
    "    input: { courier: $.steps.express.output.tracking,"
    " post: $.steps.standard.output.tracking }\n";

static void
test_diamond (void)
{
    chorus_flowdef_t *def = s_def (s_diamond);
    chorus_actions_t out;
    chorus_actions_init (&out);

    //  Express: the standard branch is skipped, notify still runs
    json_t *input = s_json ("{\"express\": true}");
    chorus_flow_t *flow = chorus_flow_start (def, "D1", input, T0, &out);
    json_decref (input);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "D1/quote", "diamond: quote first");
    s_is_step_field (flow, "express", "state", "\"pending\"", "diamond: branches wait");
    s_ok (flow, "D1/quote", 1, "{\"weight\": 2}", T0 + 10, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "D1/express",
            "diamond: light and express: the express branch only");
    s_is_step_field (flow, "standard", "state", "\"skipped\"", "diamond: the other is skipped");
    s_is_step_field (flow, "standard", "finished", "1010", "diamond: skipped when decided");
    s_is_step_field (flow, "standard", "started", "null", "diamond: never started");
    s_is_step_field (flow, "standard", "output", "null", "diamond: no output");
    s_ok (flow, "D1/express", 1, "{\"tracking\": \"X-1\"}", T0 + 20, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "D1/notify",
            "diamond: the join runs: a skipped step counts as done");
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "D1/notify",
                      "{\"courier\": \"X-1\", \"post\": null}"),
        "diamond: a skipped step's output is null");
    s_ok (flow, "D1/notify", 1, NULL, T0 + 30, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_COMPLETED, "diamond: completes");
    ok (s_payload_is (&out, CHORUS_ACTION_EMIT, "order.shipped",
                      "{\"flow\": \"D1\", \"name\": \"ship_order\", \"input\": {\"express\": true},"
                      " \"outputs\": {\"quote\": {\"weight\": 2}, \"express\": {\"tracking\":"
                      " \"X-1\"}, \"standard\": null, \"notify\": null}}"),
        "diamond: the completion event has null for the skipped step");
    chorus_flow_destroy (&flow);

    //  Too heavy: the other way round
    input = s_json ("{\"express\": true}");
    flow = chorus_flow_start (def, "D2", input, T0, &out);
    json_decref (input);
    s_ok (flow, "D2/quote", 1, "{\"weight\": 31}", T0 + 10, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "D2/standard", "diamond: heavy: standard");
    s_is_step_field (flow, "express", "state", "\"skipped\"", "diamond: express skipped");
    s_ok (flow, "D2/standard", 1, "{\"tracking\": \"P-9\"}", T0 + 20, &out);
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "D2/notify",
                      "{\"courier\": null, \"post\": \"P-9\"}"),
        "diamond: the join reads the branch that ran");

    //  A failure after the branch: the skipped step is not compensated
    s_error (flow, "D2/notify", 1, false, T0 + 30, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "D2/standard/undo",
            "compensate: the branch that ran is undone");
    s_ok (flow, "D2/standard/undo", 1, NULL, T0 + 40, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "D2/quote/undo",
            "compensate: then quote, never the skipped express");
    s_ok (flow, "D2/quote/undo", 1, NULL, T0 + 50, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_FAILED, "compensate: the flow failed");
    s_is_step_field (flow, "express", "state", "\"skipped\"", "compensate: still skipped");

    //  A retry decides again
    is_int (chorus_flow_retry (flow, T0 + 60, &out), 0, "retry: accepted");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "D2/quote:r2", "retry: quote again");
    s_ok (flow, "D2/quote:r2", 1, "{\"weight\": 1}", T0 + 70, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "D2/express:r2",
            "retry: the condition is read again: express this time");
    s_is_step_field (flow, "standard", "state", "\"skipped\"", "retry: standard skipped");
    chorus_flow_destroy (&flow);
    chorus_actions_clear (&out);
    chorus_flowdef_destroy (&def);
}

//  A switch: one of three by a value, and a fan-out that is skipped
static void
test_switch (void)
{
    chorus_flowdef_t *def = s_def (
        "flow: route\nversion: 1\nsteps:\n"
        "  - { id: eu, service: s, command: eu, when: \"$.input.country in ['FR', 'DE']\" }\n"
        "  - { id: us, service: s, command: us, when: \"$.input.country == 'US'\" }\n"
        "  - id: other\n    service: s\n    command: other\n"
        "    when: not ($.input.country in ['FR', 'DE', 'US'])\n"
        "  - id: each\n    service: s\n    command: each\n    for_each: $.input.parcels\n"
        "    when: exists $.input.parcels\n    compensate: { command: unpack }\n"
        "  - { id: done, service: s, command: done, depends_on: [eu, us, other, each],"
        "      input: { each: $.steps.each.output } }\n");
    chorus_actions_t out;
    chorus_actions_init (&out);
    const char *countries [] = { "DE", "US", "JP" };
    const char *sends [] = { "S0/eu", "S1/us", "S2/other" };
    for (int i = 0; i < 3; i++) {
        char id [8], text [64];
        snprintf (id, sizeof id, "S%d", i);
        snprintf (text, sizeof text, "{\"country\": \"%s\"}", countries [i]);
        json_t *input = s_json (text);
        chorus_actions_clear (&out);
        chorus_flow_t *flow = chorus_flow_start (def, id, input, T0, &out);
        json_decref (input);
        is_str (s_keys (&out, CHORUS_ACTION_SEND), sends [i], "switch: %s goes one way",
                countries [i]);
        chorus_actions_t more;
        chorus_actions_init (&more);
        s_ok (flow, sends [i], 1, NULL, T0 + 5, &more);
        char done [16];
        snprintf (done, sizeof done, "%s/done", id);
        is_str (s_keys (&more, CHORUS_ACTION_SEND), done, "switch: then the end");
        if (i == 0) {
            s_is_step_field (flow, "each", "state", "\"skipped\"",
                             "skipped fan-out: its state");
            s_is_step_field (flow, "each", "items", "[]", "skipped fan-out: no items");
            ok (s_payload_is (&more, CHORUS_ACTION_SEND, "S0/done", "{\"each\": null}"),
                "skipped fan-out: its output is null, not a list");
            //  A fan-out skipped, then a failure: nothing of it is undone
            s_error (flow, "S0/done", 1, false, T0 + 6, &more);
            is_str (s_keys (&more, CHORUS_ACTION_SEND), "",
                    "skipped fan-out: no compensation (eu has none)");
            is_int (chorus_flow_state (flow), CHORUS_FLOW_FAILED, "skipped fan-out: failed");
        }
        chorus_actions_clear (&more);
        chorus_flow_destroy (&flow);
    }
    chorus_actions_clear (&out);
    chorus_flowdef_destroy (&def);
}

//  A flow rebuilt from its records (snapshot, then each delta)
static chorus_flow_t *
s_rebuild (chorus_flowdef_t *def, chorus_record_t *snapshot, chorus_record_t *deltas,
           size_t count)
{
    char error [256];
    chorus_reader_t reader;
    chorus_reader_init (&reader, snapshot->data, snapshot->size);
    chorus_flow_t *flow = chorus_flow_restore (def, &reader, error, sizeof error);
    for (size_t i = 0; flow && i < count; i++) {
        chorus_reader_init (&reader, deltas [i].data, deltas [i].size);
        if (chorus_flow_apply (flow, &reader, error, sizeof error))
            chorus_flow_destroy (&flow);
    }
    if (!flow)
        diag ("rebuild: %s", error);
    return flow;
}

static void
test_sleep (void)
{
    chorus_flowdef_t *def = s_def (
        "flow: remind\nversion: 1\nsteps:\n"
        "  - { id: book, service: cal, command: book, compensate: { command: unbook } }\n"
        "  - { id: wait, sleep: 30s, depends_on: [book] }\n"
        "  - { id: mail, service: mail, command: send, depends_on: [wait],"
        "      input: { slept: $.steps.wait.output } }\n");
    chorus_actions_t out;
    chorus_actions_init (&out);
    chorus_record_t snapshot, deltas [4];
    chorus_record_init (&snapshot);
    for (int i = 0; i < 4; i++)
        chorus_record_init (&deltas [i]);

    chorus_flow_t *flow = chorus_flow_start (def, "R1", NULL, T0, &out);
    chorus_flow_snapshot (flow, &snapshot);
    s_ok (flow, "R1/book", 1, NULL, T0 + 100, &out);
    chorus_flow_delta (flow, &deltas [0]);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "", "sleep: sends nothing");
    is_str (s_keys (&out, CHORUS_ACTION_TIMER), "retry:R1/wait", "sleep: sets a timer");
    is_int (s_action (&out, CHORUS_ACTION_TIMER, "retry:R1/wait")->at, T0 + 100 + 30000,
            "sleep: for 30s from when it starts");
    s_is_step_field (flow, "wait", "state", "\"sleeping\"", "sleep: its state");
    s_is_step_field (flow, "wait", "wakes", "31100", "sleep: when it wakes");
    s_is_step_field (flow, "wait", "attempts", "0", "sleep: no command tried");
    is_int (s_timer (flow, "retry:R1/other", T0 + 200, &out), -1, "sleep: an unknown timer");

    //  The coordinator is killed at T0 + 10s and starts again at T0 + 20s:
    //  the flow rebuilt from its journal sleeps until the same time
    chorus_flow_t *again = s_rebuild (def, &snapshot, deltas, 1);
    ok (again != NULL, "restart: the flow is rebuilt");
    chorus_actions_clear (&out);
    chorus_flow_resume (again, T0 + 20000, &out);
    is_str (s_keys (&out, CHORUS_ACTION_TIMER), "retry:R1/wait", "restart: the timer again");
    is_int (out.items [0].at, T0 + 100 + 30000,
            "restart: at the original wake time, not 30s from the restart");
    s_is_step_field (again, "wait", "state", "\"sleeping\"", "restart: still sleeping");
    is_int (s_timer (again, "retry:R1/wait", T0 + 30100, &out), 0, "restart: it wakes");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "R1/mail", "restart: the next step follows");
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "R1/mail", "{\"slept\": null}"),
        "sleep: its output is null");
    s_is_step_field (again, "wait", "state", "\"done\"", "sleep: done");
    s_is_step_field (again, "wait", "finished", "31100", "sleep: finished when it woke");
    is_int (s_timer (again, "retry:R1/wait", T0 + 30200, &out), -1,
            "sleep: a second firing is stale");
    chorus_flow_destroy (&again);

    //  Down past the wake time: resumed, the timer is already due, so the
    //  coordinator's heap fires it at once
    again = s_rebuild (def, &snapshot, deltas, 1);
    chorus_actions_clear (&out);
    chorus_flow_resume (again, T0 + 90000, &out);
    is_int (out.size == 1? out.items [0].at: 0, T0 + 30100,
            "late restart: due in the past, fired at once");
    is_int (s_timer (again, "retry:R1/wait", T0 + 90001, &out), 0, "late restart: wakes");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "R1/mail", "late restart: the next step");
    chorus_flow_destroy (&again);

    //  Cancelled while asleep: the sleep is abandoned, book undone
    chorus_actions_clear (&out);
    is_int (chorus_flow_cancel (flow, T0 + 500, &out), 0, "cancel: while asleep");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "R1/book/undo",
            "cancel: the completed step is undone at once");
    is_int (s_timer (flow, "retry:R1/wait", T0 + 30100, &out), -1,
            "cancel: the sleep's timer no longer wakes it");
    s_ok (flow, "R1/book/undo", 1, NULL, T0 + 600, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_CANCELLED, "cancel: cancelled");
    s_is_step_field (flow, "wait", "state", "\"failed\"", "cancel: the sleep was abandoned");

    //  A retry runs the undone step again, then sleeps again in full
    chorus_actions_clear (&out);
    is_int (chorus_flow_retry (flow, T0 + 1000, &out), 0, "retry: accepted");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "R1/book:r2", "retry: book again");
    s_ok (flow, "R1/book:r2", 1, NULL, T0 + 1100, &out);
    const chorus_action_t *timer = s_action (&out, CHORUS_ACTION_TIMER, "retry:R1/wait:r2");
    ok (timer && timer->at == T0 + 1100 + 30000, "retry: a full sleep, under the run's key");
    is_int (s_timer (flow, "retry:R1/wait", T0 + 30100, &out), -1,
            "retry: the first run's timer is stale");
    is_int (s_timer (flow, "retry:R1/wait:r2", T0 + 31100, &out), 0, "retry: it wakes");
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "R1/mail:r2", "retry: and the flow goes on");
    chorus_flow_destroy (&flow);
    chorus_record_clear (&snapshot);
    for (int i = 0; i < 4; i++)
        chorus_record_clear (&deltas [i]);
    chorus_actions_clear (&out);
    chorus_flowdef_destroy (&def);
}

static void
test_sleep_until (void)
{
    chorus_flowdef_t *def = s_def (
        "flow: deliver\nversion: 1\nemit: { failed: deliver.failed }\nsteps:\n"
        "  - { id: pack, service: s, command: pack, compensate: { command: unpack } }\n"
        "  - { id: wait, sleep: { until: $.input.deliver_at }, depends_on: [pack] }\n"
        "  - { id: ship, service: s, command: ship, depends_on: [wait] }\n");
    chorus_actions_t out;
    chorus_actions_init (&out);
    static const struct { const char *input; uint64_t at; const char *what; } times [] = {
        { "{\"deliver_at\": 1780000000000}", 1780000000000ull, "epoch milliseconds" },
        { "{\"deliver_at\": \"2026-05-28T20:26:40Z\"}", 1780000000000ull, "RFC 3339, UTC" },
        { "{\"deliver_at\": \"2026-05-28t22:26:40.250+02:00\"}", 1780000000250ull,
          "RFC 3339 with an offset and milliseconds" },
        { "{\"deliver_at\": \"2024-02-29T00:00:00-00:30\"}", 1709166600000ull,
          "RFC 3339: a leap day, a negative offset" },
        { "{\"deliver_at\": 5}", 5, "a time long past: the timer is due at once" },
    };
    for (size_t i = 0; i < sizeof times / sizeof times [0]; i++) {
        json_t *input = s_json (times [i].input);
        chorus_flow_t *flow = chorus_flow_start (def, "U", input, T0, &out);
        json_decref (input);
        s_ok (flow, "U/pack", 1, NULL, T0 + 1, &out);
        const chorus_action_t *timer = s_action (&out, CHORUS_ACTION_TIMER, "retry:U/wait");
        ok (timer && timer->at == times [i].at, "until: %s", times [i].what);
        if (timer && timer->at != times [i].at)
            diag ("at %llu", (unsigned long long) timer->at);
        chorus_flow_destroy (&flow);
    }
    static const struct { const char *input; const char *message; } bad [] = {
        { "{}", "sleep until $.input.deliver_at: null (no value) is not a time: use milliseconds"
          " since the epoch or an RFC 3339 time such as 2026-01-31T09:00:00Z" },
        { "{\"deliver_at\": \"tomorrow\"}", "sleep until $.input.deliver_at: \"tomorrow\" is not"
          " a time: the date is not YYYY-MM-DD; use milliseconds since the epoch or an RFC 3339"
          " time such as 2026-01-31T09:00:00Z" },
        { "{\"deliver_at\": \"2026-02-30T10:00:00Z\"}", "sleep until $.input.deliver_at:"
          " \"2026-02-30T10:00:00Z\" is not a time: no such date; use milliseconds since the"
          " epoch or an RFC 3339 time such as 2026-01-31T09:00:00Z" },
        { "{\"deliver_at\": \"2026-01-30T10:00:00\"}", "sleep until $.input.deliver_at:"
          " \"2026-01-30T10:00:00\" is not a time: no offset (Z, +HH:MM or -HH:MM); use"
          " milliseconds since the epoch or an RFC 3339 time such as 2026-01-31T09:00:00Z" },
        { "{\"deliver_at\": -1}", "sleep until $.input.deliver_at: -1 is not a time: it is"
          " before 1970; use milliseconds since the epoch or an RFC 3339 time such as"
          " 2026-01-31T09:00:00Z" },
        { "{\"deliver_at\": 1.5}", "sleep until $.input.deliver_at: a real number is not a"
          " time: use milliseconds since the epoch or an RFC 3339 time such as"
          " 2026-01-31T09:00:00Z" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        json_t *input = s_json (bad [i].input);
        chorus_flow_t *flow = chorus_flow_start (def, "B", input, T0, &out);
        json_decref (input);
        s_ok (flow, "B/pack", 1, NULL, T0 + 1, &out);
        is_str (s_keys (&out, CHORUS_ACTION_SEND), "B/pack/undo",
                "bad time %s: the flow fails and undoes", bad [i].input);
        json_t *status = chorus_flow_status (flow);
        json_t *error = json_object_get (status, "error");
        is_str (json_string_value (json_object_get (error, "code")), "bad-sleep",
                "bad time %s: the code", bad [i].input);
        is_str (json_string_value (json_object_get (error, "message")), bad [i].message,
                "bad time %s: the message says why", bad [i].input);
        is_str (json_string_value (json_object_get (error, "step")), "wait",
                "bad time %s: and names the step", bad [i].input);
        json_decref (status);
        s_is_step_field (flow, "wait", "state", "\"failed\"", "bad time: the step failed");
        chorus_flow_destroy (&flow);
    }
    chorus_actions_clear (&out);
    chorus_flowdef_destroy (&def);
}

//  Records of a flow as the coordinator wrote them before when: and sleep:
//  existed (a snapshot and two deltas of this definition, input {"items":
//  [1, 2]}: a done, b's item 0 waiting for a retry, item 1 done)
static const char *s_main_yaml =
    "flow: old\nversion: 1\nsteps:\n"
    "  - { id: a, service: s, command: a, compensate: { command: undo_a } }\n"
    "  - { id: b, service: s, command: b, depends_on: [a], for_each: $.input.items,"
    " retry: { attempts: 3, backoff: 1s } }\n"
    "  - { id: c, service: s, command: c, depends_on: [b] }\n";
static const char *s_main_snapshot =
    "9b01c201cd03e8000000c0a34f4c44c40a81a56974656d739201029395a161c3c0c0919d"
    "020101c0cd03e80000000000c2c0c295a162c2c0c09095a163c2c0c090";
static const char *s_main_delta_1 =
    "9a01c201cd03e8000001c091920195a162c3c403920102c0929d020101c0cd03f2000000"
    "0000c2c0c29d020101c0cd03f20000000000c2c0c2919300009d040101c0cd03e8cd03f2"
    "00010000c2c40481a17601c2";
static const char *s_main_delta_2 =
    "9a01c201cd03e8000002c090929301009d03010192a4626f6f6da869742062726f6b65cd"
    "03f200cd07e4000000c2c0c29301019d040101c0cd03f2cd040600020000c2c40481a176"
    "01c2";

static void
s_unhex (const char *hex, chorus_record_t *record)
{
    chorus_record_reset (record);
    for (size_t i = 0; hex [i] && hex [i + 1]; i += 2) {
        unsigned byte;
        sscanf (hex + i, "%2x", &byte);
        unsigned char c = (unsigned char) byte;
        chorus_record_raw (record, &c, 1);
    }
}

static void
test_records_of_before (void)
{
    chorus_flowdef_t *def = s_def (s_main_yaml);
    chorus_record_t snapshot, deltas [2];
    chorus_record_init (&snapshot);
    chorus_record_init (&deltas [0]);
    chorus_record_init (&deltas [1]);
    s_unhex (s_main_snapshot, &snapshot);
    s_unhex (s_main_delta_1, &deltas [0]);
    s_unhex (s_main_delta_2, &deltas [1]);
    chorus_flow_t *flow = s_rebuild (def, &snapshot, deltas, 2);
    ok (flow != NULL, "before: records written before when and sleep load");
    json_t *status = flow? chorus_flow_status (flow): NULL;
    char *text = status? json_dumps (status, JSON_COMPACT | JSON_SORT_KEYS): NULL;
    is_str (text, "{\"error\":null,\"finished\":null,\"flow\":\"old\",\"id\":\"OLD\","
            "\"input\":{\"items\":[1,2]},\"output\":null,\"started\":1000,"
            "\"state\":\"running\",\"steps\":["
            "{\"attempts\":1,\"error\":null,\"finished\":1010,\"id\":\"a\",\"output\":{\"v\":1},"
            "\"started\":1000,\"state\":\"done\"},{\"attempts\":2,\"error\":null,\"finished\":null,"
            "\"id\":\"b\",\"items\":[{\"attempts\":1,\"error\":{\"code\":\"boom\",\"message\":"
            "\"it broke\"},\"finished\":null,\"item\":0,\"output\":null,\"started\":1010,"
            "\"state\":\"waiting\"},{\"attempts\":1,\"error\":null,\"finished\":1030,\"item\":1,"
            "\"output\":{\"v\":1},\"started\":1010,\"state\":\"done\"}],\"started\":1010,"
            "\"state\":\"running\"},{\"attempts\":0,\"error\":null,\"finished\":null,\"id\":\"c\","
            "\"output\":null,\"started\":null,\"state\":\"pending\"}],\"version\":1}",
            "before: the status is the one the earlier coordinator showed");
    free (text);
    json_decref (status);
    chorus_actions_t out;
    chorus_actions_init (&out);
    if (flow) {
        chorus_flow_resume (flow, 1500, &out);
        is_str (s_keys (&out, CHORUS_ACTION_TIMER), "retry:OLD/b/0", "before: the retry re-armed");
        s_timer (flow, "retry:OLD/b/0", 2020, &out);
        is_str (s_keys (&out, CHORUS_ACTION_SEND), "OLD/b/0", "before: and the item tried again");
        s_ok (flow, "OLD/b/0", 2, NULL, 2030, &out);
        is_str (s_keys (&out, CHORUS_ACTION_SEND), "OLD/c", "before: the flow goes on");
    }
    chorus_flow_destroy (&flow);
    chorus_actions_clear (&out);
    chorus_record_clear (&snapshot);
    chorus_record_clear (&deltas [0]);
    chorus_record_clear (&deltas [1]);
    chorus_flowdef_destroy (&def);
}

//  Skips and sleeps survive the journal; journals without them still load
static void
test_records (void)
{
    chorus_flowdef_t *def = s_def (s_diamond);
    chorus_actions_t out;
    chorus_actions_init (&out);
    json_t *input = s_json ("{\"express\": false}");
    chorus_flow_t *flow = chorus_flow_start (def, "J", input, T0, &out);
    json_decref (input);
    chorus_record_t snapshot, delta;
    chorus_record_init (&snapshot);
    chorus_record_init (&delta);
    chorus_flow_snapshot (flow, &snapshot);
    s_ok (flow, "J/quote", 1, "{\"weight\": 1}", T0 + 1, &out);
    chorus_flow_delta (flow, &delta);
    chorus_flow_t *again = s_rebuild (def, &snapshot, &delta, 1);
    s_is_step_field (again, "express", "state", "\"skipped\"", "records: skipped, from a delta");
    chorus_record_reset (&snapshot);
    chorus_flow_snapshot (flow, &snapshot);
    chorus_flow_destroy (&again);
    again = s_rebuild (def, &snapshot, NULL, 0);
    s_is_step_field (again, "express", "state", "\"skipped\"",
                     "records: skipped, from a snapshot");
    s_ok (again, "J/standard", 1, NULL, T0 + 2, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "J/notify", "records: and the join follows");
    chorus_flow_destroy (&again);
    chorus_flow_destroy (&flow);
    chorus_record_clear (&snapshot);
    chorus_record_clear (&delta);
    chorus_actions_clear (&out);
    chorus_flowdef_destroy (&def);
}

//  A file's whole text; NULL if it cannot be read
static char *
s_read (const char *path)
{
    FILE *file = fopen (path, "rb");
    if (!file)
        return NULL;
    char *text = calloc (1, 1 << 20);
    size_t size = text? fread (text, 1, (1 << 20) - 1, file): 0;
    fclose (file);
    if (text)
        text [size] = 0;
    return text;
}

//  The examples of FLOWS.md's sections on when and sleep are files of
//  tests/flows/good, word for word, and they load and run
static void
test_examples (void)
{
    const char *srcdir = getenv ("srcdir");
    char path [1024];
    snprintf (path, sizeof path, "%s/coordinator/FLOWS.md", srcdir? srcdir: ".");
    char *manual = s_read (path);
    ok (manual != NULL, "examples: FLOWS.md is read");
    const char *names [] = { "branch.yaml", "switch.yaml", "sleep.yaml" };
    chorus_flowdef_t *defs [3];
    for (int i = 0; i < 3; i++) {
        snprintf (path, sizeof path, "%s/tests/flows/good/%s", srcdir? srcdir: ".", names [i]);
        char *text = s_read (path);
        char block [8192];
        snprintf (block, sizeof block, "```yaml\n%s```\n", text? text: "(none)");
        ok (manual && text && strstr (manual, block), "examples: %s is in FLOWS.md as it is",
            names [i]);
        char error [512] = "";
        defs [i] = chorus_flowdef_load (path, error, sizeof error);
        ok (defs [i] != NULL, "examples: %s loads", names [i]);
        if (!defs [i])
            diag ("%s", error);
        free (text);
    }
    free (manual);
    if (!defs [0] || !defs [1] || !defs [2])
        bail_out ("an example did not load");

    //  The diamond as FLOWS.md tells it
    chorus_actions_t out;
    chorus_actions_init (&out);
    json_t *input = s_json ("{\"express\": true, \"email\": \"a@b\", \"items\": []}");
    chorus_flow_t *flow = chorus_flow_start (defs [0], "E", input, T0, &out);
    json_decref (input);
    s_ok (flow, "E/quote", 1, "{\"weight_kg\": 2}", T0 + 1, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "E/courier", "branch.yaml: the courier");
    s_ok (flow, "E/courier", 1, "{\"tracking\": \"C-1\"}", T0 + 2, &out);
    ok (s_payload_is (&out, CHORUS_ACTION_SEND, "E/notify",
                      "{\"to\": \"a@b\", \"courier\": \"C-1\", \"post\": null}"),
        "branch.yaml: notify as FLOWS.md says");
    s_error (flow, "E/notify", 1, false, T0 + 3, &out);
    is_str (s_keys (&out, CHORUS_ACTION_SEND), "E/courier/undo",
            "branch.yaml: cancel_courier, nothing for post");
    is_str (out.items [0].command, "cancel_courier", "branch.yaml: the courier's undo");
    chorus_flow_destroy (&flow);

    //  The switch: a US order without a state is exempt
    static const struct { const char *input; const char *send; } cases [] = {
        { "{\"country\": \"IT\"}", "W/eu_vat" },
        { "{\"country\": \"US\", \"state\": \"NY\"}", "W/us_sales_tax" },
        { "{\"country\": \"US\"}", "W/no_tax" },
        { "{}", "W/no_tax" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        chorus_actions_clear (&out);
        input = s_json (cases [i].input);
        flow = chorus_flow_start (defs [1], "W", input, T0, &out);
        json_decref (input);
        is_str (s_keys (&out, CHORUS_ACTION_SEND), cases [i].send, "switch.yaml: %s",
                cases [i].input);
        s_ok (flow, cases [i].send, 1, NULL, T0 + 1, &out);
        is_str (s_keys (&out, CHORUS_ACTION_SEND), "W/invoice", "switch.yaml: then invoice");
        chorus_flow_destroy (&flow);
    }

    //  The trial: a week, a reminder, then until the end of the trial
    chorus_actions_clear (&out);
    input = s_json ("{\"email\": \"a@b\", \"trial_ends_at\": \"1970-01-15T00:00:00Z\","
                    " \"converted\": true}");
    flow = chorus_flow_start (defs [2], "T", input, T0, &out);
    json_decref (input);
    s_ok (flow, "T/welcome", 1, NULL, T0, &out);
    is_int (s_action (&out, CHORUS_ACTION_TIMER, "retry:T/a_week_later")->at,
            T0 + 168ull * 3600 * 1000, "sleep.yaml: a week");
    s_timer (flow, "retry:T/a_week_later", T0 + 168ull * 3600 * 1000, &out);
    s_ok (flow, "T/remind", 1, NULL, T0 + 168ull * 3600 * 1000, &out);
    is_int (s_action (&out, CHORUS_ACTION_TIMER, "retry:T/trial_over")->at, 14ull * 86400 * 1000,
            "sleep.yaml: until the trial ends");
    s_timer (flow, "retry:T/trial_over", 14ull * 86400 * 1000, &out);
    is_int (chorus_flow_state (flow), CHORUS_FLOW_COMPLETED,
            "sleep.yaml: converted: close is skipped, the flow completes");
    s_is_step_field (flow, "close", "state", "\"skipped\"", "sleep.yaml: close skipped");
    chorus_flow_destroy (&flow);
    chorus_actions_clear (&out);
    for (int i = 0; i < 3; i++)
        chorus_flowdef_destroy (&defs [i]);
}

int
main (void)
{
    test_examples ();
    test_diamond ();
    test_switch ();
    test_sleep ();
    test_sleep_until ();
    test_records ();
    test_records_of_before ();
    return done_testing ();
}
