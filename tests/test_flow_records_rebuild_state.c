/*  test_flow_records_rebuild_state.c — a flow rebuilt from its journal
    records is the flow that wrote them. Flows of three definitions (steps
    in a line with retries, a compensated fan-out with max_parallel, a
    diamond with a flow timeout), half of them given their input as its
    payload, are driven by seeded random replies (outputs as JSON, or as the
    payload they came as), errors, timeouts, timers, cancels and retries; after every transition
    the delta is applied to a shadow rebuilt from the first snapshot, and
    the two must save the same state, field for field (now and then the
    shadow is rebuilt from a fresh snapshot instead), tasks that may have
    been done (timed out) among them, and the output of those that
    completed (two of the definitions have one). Task records of older
    journals, before that flag, still read. Then the records
    themselves: they are MessagePack the library's payload API reads; every
    truncation of one is refused, and bytes flipped in one never crash the
    reader.
*/
#include "testutil.h"
#include "flow_fixtures.h"
#include "chorus_value.h"
#include "chorus_flow_task.h"

#define RUNS 40                 //  flows per definition
#define MOVES 120               //  inputs per flow at most

static int s_maybe_done_seen;   //  transitions after which a task was maybe done

static const char *s_defs [] = {
    "flow: line\nversion: 1\ntimeout: 1m\nsteps:\n"
    "  - id: a\n    service: s\n    command: a\n    input: { n: $.input.n }\n"
    "    retry: { attempts: 3, backoff: 10ms }\n    timeout: 1s\n"
    "    compensate: { command: undo_a }\n"
    "  - id: b\n    service: s\n    command: b\n    depends_on: [a]\n"
    "    input: $.steps.a.output\n    retry: { attempts: 2, backoff: 5ms }\n"
    "    compensate: { command: undo_b, input: { x: $.steps.b.output } }\n"
    "  - id: c\n    service: s\n    command: c\n    depends_on: [b]\n"
    "emit: { completed: line.done, failed: line.failed }\n"
    "output: { n: $.input.n, b: $.steps.b.output, c: $.steps.c.output.n }\n",

    "flow: fan\nversion: 1\nsteps:\n"
    "  - id: list\n    service: s\n    command: list\n"
    "  - id: each\n    service: s\n    command: each\n    depends_on: [list]\n"
    "    for_each: $.steps.list.output.items\n    max_parallel: 2\n"
    "    input: { item: $.item }\n    retry: { attempts: 2, backoff: 1ms }\n"
    "    compensate: { command: unreserve }\n"
    "  - id: last\n    service: s\n    command: last\n    depends_on: [each]\n"
    "    input: $.steps.each.output\n"
    "emit: { completed: fan.done }\n"
    "output: $.steps.last.output\n",

    "flow: diamond\nversion: 1\ntimeout: 100ms\nsteps:\n"
    "  - id: open\n    service: s\n    command: open\n    compensate: { command: close }\n"
    "  - id: left\n    service: s\n    command: left\n    depends_on: [open]\n"
    "    compensate: { command: unleft }\n"
    "  - id: right\n    service: s\n    command: right\n    depends_on: [open]\n"
    "    retry: { attempts: 4, backoff: 1ms, factor: 3 }\n"
    "  - id: join\n    service: s\n    command: join\n    depends_on: [left, right]\n",

    //  Skipped steps (a fan-out among them) and sleeps, one of them until a
    //  time long past
    "flow: branch\nversion: 1\nsteps:\n"
    "  - id: open\n    service: s\n    command: open\n    compensate: { command: close }\n"
    "  - id: big\n    service: s\n    command: big\n    depends_on: [open]\n"
    "    when: $.input.n >= 150000\n    compensate: { command: unbig }\n"
    "  - id: small\n    service: s\n    command: small\n    depends_on: [open]\n"
    "    when: not ($.input.n >= 150000)\n"
    "  - id: none\n    service: s\n    command: each\n    depends_on: [open]\n"
    "    for_each: $.input.list\n    when: exists $.input.list\n"
    "  - id: nap\n    sleep: 20ms\n    depends_on: [big, small]\n"
    "  - id: past\n    sleep: { until: $.input.n }\n    depends_on: [open]\n"
    "  - id: join\n    service: s\n    command: join\n    depends_on: [nap, past, none]\n"
    "    input: { big: $.steps.big.output, none: $.steps.none.output }\n",
};

//  What may come next: commands awaiting a reply, timers set
typedef struct {
    char *keys [256];           //  task keys
    int attempts [256];         //  their tries
    size_t sends;               //  how many
    char *timers [256];         //  timer keys
    size_t timer_count;         //  how many
} pending_t;

static void
s_pending_clear (pending_t *pending)
{
    for (size_t i = 0; i < pending->sends; i++)
        free (pending->keys [i]);
    for (size_t i = 0; i < pending->timer_count; i++)
        free (pending->timers [i]);
    memset (pending, 0, sizeof *pending);
}

static void
s_pending_add (pending_t *pending, const chorus_actions_t *out)
{
    for (size_t i = 0; i < out->size; i++) {
        const chorus_action_t *action = &out->items [i];
        if (action->kind == CHORUS_ACTION_SEND && pending->sends < 256) {
            pending->keys [pending->sends] = strdup (action->key);
            pending->attempts [pending->sends++] = action->attempt;
        }
        else
        if (action->kind == CHORUS_ACTION_TIMER && pending->timer_count < 256)
            pending->timers [pending->timer_count++] = strdup (action->key);
    }
}

static bool
s_same (chorus_flow_t *live, chorus_flow_t *shadow)
{
    json_t *a = chorus_flow_save (live);
    json_t *b = chorus_flow_save (shadow);
    bool same = json_equal (a, b);
    if (!same) {
        char *x = json_dumps (a, JSON_COMPACT | JSON_SORT_KEYS);
        char *y = json_dumps (b, JSON_COMPACT | JSON_SORT_KEYS);
        diag ("live:   %s", x);
        diag ("shadow: %s", y);
        free (x);
        free (y);
    }
    json_decref (a);
    json_decref (b);
    return same;
}

//  A reply's output: sometimes with the payload it came as, sometimes a
//  value no payload holds; for "list", the items to fan out over
static void
s_output (unsigned *seed, const char *key, json_t **value, void **encoded, size_t *size)
{
    char text [256];
    int kind = rand_r (seed) % 5;
    if (strstr (key, "/list"))
        snprintf (text, sizeof text, "{\"items\": [%s]}", kind == 0? "":
                  kind == 1? "{\"sku\": 1}": "{\"sku\": 1}, {\"sku\": 2.5}, \"x\", null");
    else
    if (kind == 0)
        snprintf (text, sizeof text, "{\"$bin\": \"not base64\", \"n\": %d}", rand_r (seed));
    else
    if (kind == 1)
        snprintf (text, sizeof text, "null");
    else
        snprintf (text, sizeof text, "{\"n\": %d, \"r\": 0.1, \"s\": \"\\u00e9t\\u00e9\", "
                  "\"l\": [true, -5, {\"k\": [1e300]}]}", rand_r (seed));
    *encoded = NULL;
    *size = 0;
    char error [128];
    if (kind != 0 && kind != 4
    &&  chorus_payload_from_json (text, strlen (text), 0, encoded, size, error,
                                  sizeof error) == 0) {
        *value = chorus_value_unpack (*encoded, *size);
        return;
    }
    *value = json_loads (text, 0, NULL);
}

//  Drives one flow; false when the shadow parted from it
static bool
s_drive (chorus_flowdef_t *def, unsigned seed, int *transitions, chorus_record_t *last_delta,
         chorus_record_t *last_snapshot)
{
    chorus_actions_t out;
    chorus_actions_init (&out);
    char id [32];
    snprintf (id, sizeof id, "f%u", seed);
    json_t *input = json_pack ("{s:i}", "n", (int) seed);
    uint64_t now = T0;
    //  Half of them with the input as the payload it came as
    void *encoded = NULL;
    size_t size = 0;
    char error [256] = "";
    if (seed % 2)
        chorus_value_pack (input, 0, &encoded, &size, error, sizeof error);
    chorus_flow_t *live = encoded? chorus_flow_start_encoded (def, id, encoded, size, now, &out)
                                 : chorus_flow_start (def, id, input, now, &out);
    json_decref (input);
    free (encoded);
    pending_t pending;
    memset (&pending, 0, sizeof pending);
    s_pending_add (&pending, &out);

    chorus_record_t record;
    chorus_record_init (&record);
    chorus_flow_snapshot (live, &record);
    chorus_reader_t reader;
    chorus_reader_init (&reader, record.data, record.size);
    chorus_flow_t *shadow = chorus_flow_restore (def, &reader, error, sizeof error);
    bool same = shadow && s_same (live, shadow);
    if (!shadow)
        diag ("restore: %s", error);
    for (int move = 0; move < MOVES && same; move++) {
        now += 1 + rand_r (&seed) % 40;
        chorus_actions_clear (&out);
        int choice = rand_r (&seed) % 100;
        int rc = -1;
        if (choice < 70 && pending.sends) {
            size_t pick = (size_t) rand_r (&seed) % pending.sends;
            char *key = pending.keys [pick];
            int attempt = pending.attempts [pick];
            pending.keys [pick] = pending.keys [--pending.sends];
            pending.attempts [pick] = pending.attempts [pending.sends];
            int outcome = rand_r (&seed) % 10;
            json_t *value = NULL;
            void *encoded = NULL;
            size_t size = 0;
            chorus_result_t result = {.ok = outcome < 6, .timeout = outcome == 6,
                                      .code = outcome > 6? "boom": NULL,
                                      .message = outcome > 7? "it broke": NULL,
                                      .retryable = outcome == 7 || outcome == 8};
            if (result.ok) {
                s_output (&seed, key, &value, &encoded, &size);
                result.output = value;
                result.encoded = encoded;
                result.encoded_size = size;
            }
            rc = chorus_flow_reply (live, key, attempt, &result, now, &out);
            json_decref (value);
            free (encoded);
            free (key);
        }
        else
        if (choice < 90 && pending.timer_count) {
            size_t pick = (size_t) rand_r (&seed) % pending.timer_count;
            char *key = pending.timers [pick];
            pending.timers [pick] = pending.timers [--pending.timer_count];
            rc = chorus_flow_timer (live, key, now, &out);
            free (key);
        }
        else
        if (choice < 93)
            rc = chorus_flow_cancel (live, now, &out);
        else
            rc = chorus_flow_retry (live, now, &out);
        if (rc)
            continue;
        (*transitions)++;
        s_pending_add (&pending, &out);
        chorus_record_reset (&record);
        if (move % 7 == 6) {
            chorus_flow_snapshot (live, &record);
            chorus_reader_init (&reader, record.data, record.size);
            chorus_flow_destroy (&shadow);
            shadow = chorus_flow_restore (def, &reader, error, sizeof error);
            chorus_record_reset (last_snapshot);
            chorus_record_raw (last_snapshot, record.data, record.size);
        }
        else {
            chorus_flow_delta (live, &record);
            chorus_reader_init (&reader, record.data, record.size);
            if (chorus_flow_apply (shadow, &reader, error, sizeof error))
                chorus_flow_destroy (&shadow);
            chorus_record_reset (last_delta);
            chorus_record_raw (last_delta, record.data, record.size);
        }
        if (!shadow)
            diag ("move %d: %s", move, error);
        same = shadow && s_same (live, shadow);
        if (!same)
            diag ("%s, seed %u: parted at move %d", chorus_flowdef_name (def), seed, move);
        json_t *saved = chorus_flow_save (live);
        char *text = json_dumps (saved, JSON_COMPACT);
        s_maybe_done_seen += strstr (text, "\"maybe_done\":true") != NULL;
        free (text);
        json_decref (saved);
    }
    s_pending_clear (&pending);
    chorus_record_clear (&record);
    chorus_actions_clear (&out);
    chorus_flow_destroy (&live);
    chorus_flow_destroy (&shadow);
    return same;
}

//  A task record as journals before maybe_done wrote it (12 values) still
//  reads, as not maybe done; today's (13) keeps the flag; others are refused
static void
s_task_record (chorus_record_t *record, size_t fields, bool maybe_done)
{
    chorus_record_reset (record);
    chorus_record_array (record, fields);
    chorus_record_uint (record, CHORUS_TASK_FAILED);
    chorus_record_uint (record, 1);     //  run
    chorus_record_uint (record, 2);     //  attempt
    chorus_record_nil (record);         //  error
    chorus_record_uint (record, 5);     //  started
    chorus_record_uint (record, 6);     //  finished
    chorus_record_uint (record, 0);     //  timer
    chorus_record_uint (record, 3);     //  seq
    chorus_record_uint (record, 0);     //  undo_attempt
    chorus_record_uint (record, 0);     //  undo_tries
    chorus_record_bool (record, false); //  undo_waiting
    chorus_record_nil (record);         //  output
    for (size_t extra = 12; extra < fields; extra++)
        chorus_record_bool (record, maybe_done);
}

static int
s_task_read (chorus_record_t *record, chorus__task_t *task)
{
    memset (task, 0, sizeof *task);
    task->item = -1;
    chorus_reader_t reader;
    chorus_reader_init (&reader, record->data, record->size);
    const char *why = NULL;
    int rc = chorus__task_read (task, 1, &reader, &why);
    chorus__value_clear (&task->output);
    free (task->error_code);
    free (task->error_message);
    return rc;
}

static void
test_task_records_old_and_new (void)
{
    chorus_record_t record;
    chorus_record_init (&record);
    chorus__task_t task;
    s_task_record (&record, 12, false);
    is_int (s_task_read (&record, &task), 0, "records: a task record of 12 values (older) reads");
    ok (task.state == CHORUS_TASK_FAILED && task.attempt == 2 && task.seq == 3
        && !task.maybe_done, "records: as written, and not maybe done");
    s_task_record (&record, 13, true);
    is_int (s_task_read (&record, &task), 0, "records: a task record of 13 values reads");
    ok (task.maybe_done, "records: maybe done is kept");
    s_task_record (&record, 14, true);
    is_int (s_task_read (&record, &task), -1, "records: 14 values are refused");
    s_task_record (&record, 11, true);
    is_int (s_task_read (&record, &task), -1, "records: 11 values are refused");
    chorus_record_clear (&record);
}

int
main (void)
{
    test_task_records_old_and_new ();
    chorus_record_t delta, snapshot;
    chorus_record_init (&delta);
    chorus_record_init (&snapshot);
    size_t def_count = sizeof s_defs / sizeof s_defs [0];
    chorus_flowdef_t *defs [sizeof s_defs / sizeof s_defs [0]];
    for (size_t d = 0; d < def_count; d++) {
        defs [d] = s_def (s_defs [d]);
        int transitions = 0, parted = 0;
        for (unsigned seed = 1; seed <= RUNS; seed++)
            parted += !s_drive (defs [d], seed * 7919 + (unsigned) d, &transitions, &delta,
                                &snapshot);
        is_int (parted, 0, "%s: %d flows rebuilt after each of %d transitions, as they were",
                chorus_flowdef_name (defs [d]), RUNS, transitions);
    }

    //  The records are MessagePack, as the library reads it
    const chorus_record_t *records [2] = {&snapshot, &delta};
    const char *names [2] = {"snapshot", "delta"};
    for (int r = 0; r < 2; r++) {
        char *text = NULL;
        ok (records [r]->size > 0
            && chorus_payload_to_json (records [r]->data, records [r]->size, 0, &text, NULL,
                                       0) == 0, "a %s is one MessagePack value (%zu bytes)",
            names [r], records [r]->size);
        chorus_payload_free (text);
    }
    //  Every truncation of one is refused; flipped bytes never crash it
    for (int r = 0; r < 2; r++) {
        const chorus_record_t *record = records [r];
        chorus_flowdef_t *def = defs [2];
        size_t refused = 0;
        for (size_t length = 0; length < record->size; length++) {
            chorus_reader_t reader;
            chorus_reader_init (&reader, record->data, length);
            char error [256] = "";
            if (r == 0) {
                chorus_flow_t *flow = chorus_flow_restore (def, &reader, error, sizeof error);
                refused += flow == NULL && error [0];
                chorus_flow_destroy (&flow);
            }
            else {
                chorus_actions_t out;
                chorus_actions_init (&out);
                chorus_flow_t *flow = chorus_flow_start (def, "f", NULL, T0, &out);
                refused += chorus_flow_apply (flow, &reader, error, sizeof error) == -1
                        && error [0];
                chorus_flow_destroy (&flow);
                chorus_actions_clear (&out);
            }
        }
        is_int ((int) refused, (int) record->size, "every one of the %zu truncations of a %s "
                "is refused with a reason", record->size, names [r]);
        unsigned seed = 42;
        uint8_t *copy = (uint8_t *) malloc (record->size);
        int decoded = 0;
        for (int flip = 0; flip < 2000; flip++) {
            memcpy (copy, record->data, record->size);
            for (int n = 0; n < 3; n++)
                copy [(size_t) rand_r (&seed) % record->size] = (uint8_t) rand_r (&seed);
            chorus_reader_t reader;
            chorus_reader_init (&reader, copy, record->size);
            char error [256];
            chorus_actions_t out;
            chorus_actions_init (&out);
            chorus_flow_t *flow = r == 0? chorus_flow_restore (def, &reader, error, sizeof error)
                                        : chorus_flow_start (def, "f", NULL, T0, &out);
            if (flow && r == 1 && chorus_flow_apply (flow, &reader, error, sizeof error))
                chorus_flow_destroy (&flow);
            decoded += flow != NULL;
            chorus_flow_destroy (&flow);
            chorus_actions_clear (&out);
        }
        free (copy);
        ok (true, "2000 %ss with bytes flipped are read without harm (%d still decode)",
            names [r], decoded);
    }
    for (size_t d = 0; d < def_count; d++)
        chorus_flowdef_destroy (&defs [d]);
    chorus_record_clear (&delta);
    chorus_record_clear (&snapshot);
    ok (s_maybe_done_seen > 0, "the flows rebuilt had tasks that may have been done (%d times)",
        s_maybe_done_seen);
    return done_testing ();
}
