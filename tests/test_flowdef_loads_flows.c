/*  test_flowdef_loads_flows.c — the flows in tests/flows/good load with every
    field as written (defaults where left out), templates become the JSON
    they say, and paths look up and resolve against a flow's context.
*/
#include "chorus_flowdef.h"
#include "tap.h"

#include <jansson.h>

static char s_path [1024];      //  path of the last flow loaded

static chorus_flowdef_t *
s_load (const char *name)
{
    const char *srcdir = getenv ("srcdir");
    snprintf (s_path, sizeof (s_path), "%s/tests/flows/good/%s", srcdir? srcdir: ".", name);
    char error [512] = "";
    chorus_flowdef_t *def = chorus_flowdef_load (s_path, error, sizeof (error));
    if (!def) {
        diag ("%s", error);
        bail_out ("a good flow did not load");
    }
    return def;
}

//  The value must equal this JSON text (integers and reals are not equal)
static void
s_json_is (const json_t *got, const char *expected, const char *what)
{
    json_error_t error;
    json_t *want = json_loads (expected, JSON_DECODE_ANY, &error);
    if (!want)
        bail_out ("bad expected JSON in the test");
    bool same = got && json_equal ((json_t *) got, want);
    ok (same, "%s", what);
    if (!same) {
        char *text = got? json_dumps (got, JSON_ENCODE_ANY | JSON_SORT_KEYS): NULL;
        diag ("got: %s", text? text: "(NULL)");
        diag ("expected: %s", expected);
        free (text);
    }
    json_decref (want);
}

static const chorus_stepdef_t *
s_step (chorus_flowdef_t *def, const char *id)
{
    int index = chorus_flowdef_step_index (def, id);
    const chorus_stepdef_t *step = index < 0? NULL: chorus_flowdef_step (def, (size_t) index);
    if (!step)
        bail_out ("a step is missing");
    return step;
}

//  The whole file must be kept as it was read
static void
s_check_source (chorus_flowdef_t *def)
{
    FILE *file = fopen (s_path, "rb");
    char text [8192];
    size_t size = file? fread (text, 1, sizeof (text) - 1, file): 0;
    if (file)
        fclose (file);
    text [size] = 0;
    is_str (chorus_flowdef_source (def), text, "source is the file's text");
}

static void
s_test_fulfil_order (void)
{
    chorus_flowdef_t *def = s_load ("fulfil_order.yaml");
    is_str (chorus_flowdef_name (def), "fulfil_order", "fulfil_order: name");
    is_int (chorus_flowdef_version (def), 1, "fulfil_order: version");
    is_str (chorus_flowdef_trigger (def), "order.placed", "fulfil_order: trigger");
    is_str (chorus_flowdef_key (def), "$.input.order_id", "fulfil_order: key");
    is_int (chorus_flowdef_timeout (def), 600000, "fulfil_order: timeout 10m in ms");
    is_str (chorus_flowdef_emit_completed (def), "order.fulfilled", "fulfil_order: emit completed");
    is_str (chorus_flowdef_emit_failed (def), "order.cancelled", "fulfil_order: emit failed");
    s_check_source (def);

    is_int (chorus_flowdef_steps (def), 3, "fulfil_order: three steps");
    is_str (chorus_flowdef_step (def, 0)->id, "charge", "steps keep file order (0)");
    is_str (chorus_flowdef_step (def, 1)->id, "reserve", "steps keep file order (1)");
    is_str (chorus_flowdef_step (def, 2)->id, "ship", "steps keep file order (2)");
    ok (chorus_flowdef_step (def, 3) == NULL, "no step past the end");
    is_int (chorus_flowdef_step_index (def, "charge"), 0, "step_index charge");
    is_int (chorus_flowdef_step_index (def, "ship"), 2, "step_index ship");
    is_int (chorus_flowdef_step_index (def, "shipping"), -1, "step_index of an unknown id");
    is_int (chorus_flowdef_step_index (def, "char"), -1, "step_index of a prefix");

    const chorus_stepdef_t *charge = s_step (def, "charge");
    is_str (charge->service, "payments", "charge: service");
    is_str (charge->command, "charge", "charge: command");
    is_int (charge->depends_size, 0, "charge: no dependencies");
    s_json_is (charge->input, "{\"order_id\": \"$.input.order_id\", \"amount\": \"$.input.total\"}",
               "charge: input template");
    is_int (charge->attempts, 5, "charge: retry attempts");
    is_int (charge->backoff_ms, 100, "charge: retry backoff 100ms");
    ok (charge->factor == 2.0, "charge: retry factor");
    is_int (charge->max_backoff_ms, 5000, "charge: retry max_backoff 5s");
    is_int (charge->timeout_ms, 2000, "charge: timeout 2s");
    is_str (charge->compensate, "refund", "charge: compensate command");
    s_json_is (charge->compensate_input, "{\"charge_id\": \"$.steps.charge.output.charge_id\"}",
               "charge: compensate input may read the step's own output");
    ok (charge->for_each == NULL && charge->max_parallel == 0, "charge: no fan-out");
    is_int (charge->line, 8, "charge: line of the step");
    is_int (charge->column, 5, "charge: column of the step");

    const chorus_stepdef_t *reserve = s_step (def, "reserve");
    is_int (reserve->depends_size, 1, "reserve: one dependency");
    is_str (reserve->depends_on [0], "charge", "reserve: depends on charge");
    is_str (reserve->for_each, "$.input.items", "reserve: for_each");
    is_int (reserve->max_parallel, 0, "reserve: no limit on items in flight");
    s_json_is (reserve->input, "{\"sku\": \"$.item.sku\", \"qty\": \"$.item.qty\"}",
               "reserve: input template with $.item");
    is_str (reserve->compensate, "release", "reserve: compensate command");
    ok (reserve->compensate_input == NULL, "reserve: compensate input defaults to the output");
    is_int (reserve->attempts, 1, "reserve: default attempts");
    is_int (reserve->backoff_ms, 1000, "reserve: default backoff");
    ok (reserve->factor == 2.0, "reserve: default factor");
    is_int (reserve->max_backoff_ms, 60000, "reserve: default max_backoff");
    is_int (reserve->timeout_ms, 30000, "reserve: default timeout");

    const chorus_stepdef_t *ship = s_step (def, "ship");
    is_str (ship->depends_on [0], "reserve", "ship: depends on reserve");
    ok (ship->input == NULL, "ship: no input template");
    ok (ship->compensate == NULL && ship->compensate_input == NULL, "ship: no compensation");

    //  The context a step sees when it runs
    json_t *context = json_pack ("{s:{s:s, s:f, s:[{s:s, s:i}, {s:s, s:i}]}, s:{s:{s:{s:s}}}}",
                                 "input", "order_id", "A-17", "total", 12.5, "items",
                                 "sku", "x1", "qty", 2, "sku", "y2", "qty", 1,
                                 "steps", "charge", "output", "charge_id", "ch-9");
    json_t *input = chorus_flowdef_resolve (charge->input, context);
    s_json_is (input, "{\"order_id\": \"A-17\", \"amount\": 12.5}", "resolve: charge input");
    json_decref (input);
    input = chorus_flowdef_resolve (charge->compensate_input, context);
    s_json_is (input, "{\"charge_id\": \"ch-9\"}", "resolve: refund input from charge's output");
    json_decref (input);

    //  Each item of the fan-out in turn as $.item
    json_t *items = json_object_get (json_object_get (context, "input"), "items");
    json_object_set (context, "item", json_array_get (items, 1));
    input = chorus_flowdef_resolve (reserve->input, context);
    s_json_is (input, "{\"sku\": \"y2\", \"qty\": 1}", "resolve: $.item is the current item");
    json_decref (input);
    ok (chorus_flowdef_resolve (ship->input, context) == NULL, "resolve: no template, no payload");
    json_decref (context);
    chorus_flowdef_destroy (&def);
    ok (def == NULL, "destroy nulls the reference");
    chorus_flowdef_destroy (&def);
}

static void
s_test_diamond (void)
{
    chorus_flowdef_t *def = s_load ("diamond.yaml");
    is_str (chorus_flowdef_name (def), "open_account", "diamond: name");
    is_int (chorus_flowdef_version (def), 3, "diamond: version");
    ok (chorus_flowdef_trigger (def) == NULL, "diamond: no trigger");
    ok (chorus_flowdef_key (def) == NULL, "diamond: no key");
    is_int (chorus_flowdef_timeout (def), 0, "diamond: no flow deadline");
    ok (chorus_flowdef_emit_completed (def) == NULL, "diamond: nothing emitted on completion");
    is_str (chorus_flowdef_emit_failed (def), "account.rejected", "diamond: emit failed");
    is_int (chorus_flowdef_steps (def), 4, "diamond: four steps");

    const chorus_stepdef_t *open = s_step (def, "open");
    s_json_is (open->input, "\"$.input\"", "open: the whole input as a template");
    const chorus_stepdef_t *credit = s_step (def, "check_credit");
    is_int (credit->depends_size, 1, "check_credit: a single id is one dependency");
    is_str (credit->depends_on [0], "open", "check_credit: depends on open");
    is_int (credit->attempts, 3, "check_credit: attempts");
    is_int (credit->backoff_ms, 250, "check_credit: backoff 250ms");
    ok (credit->factor == 2.0, "check_credit: default factor when retry leaves it out");
    is_int (credit->max_backoff_ms, 60000, "check_credit: default max_backoff");
    const chorus_stepdef_t *fraud = s_step (def, "check_fraud");
    is_int (fraud->attempts, 1, "check_fraud: default attempts");
    ok (fraud->factor == 1.5, "check_fraud: factor 1.5");
    is_int (fraud->max_backoff_ms, 120000, "check_fraud: max_backoff 2m");
    is_int (fraud->timeout_ms, 3600000, "check_fraud: timeout 1h");
    ok (fraud->input == NULL, "check_fraud: no input");
    const chorus_stepdef_t *approve = s_step (def, "approve");
    is_int (approve->depends_size, 2, "approve: two dependencies");
    ok (approve->depends_size == 2 && strcmp (approve->depends_on [0], "check_credit") == 0
        && strcmp (approve->depends_on [1], "check_fraud") == 0,
        "approve: dependencies in the order written");
    is_str (approve->compensate, "revoke", "approve: compensate in block style");
    ok (approve->compensate_input == NULL, "approve: compensate input left out");

    json_t *context = json_pack ("{s:{s:s}, s:{s:{s:{s:s}}, s:{s:{s:i}}, s:{s:n}}}",
                                 "input", "customer", "ada",
                                 "steps", "open", "output", "account_id", "acc-1",
                                 "check_credit", "output", "score", 700,
                                 "check_fraud", "output");
    json_t *input = chorus_flowdef_resolve (open->input, context);
    s_json_is (input, "{\"customer\": \"ada\"}", "resolve: $.input copies the whole input");
    ok (input != json_object_get (context, "input"), "resolve: a copy, not the context's value");
    json_decref (input);
    input = chorus_flowdef_resolve (approve->input, context);
    s_json_is (input, "{\"account\": \"acc-1\", \"scores\": [700, null]}",
               "resolve: a path into a null output is null");
    json_decref (input);
    json_decref (context);
    chorus_flowdef_destroy (&def);
}

static void
s_test_fan_out (void)
{
    chorus_flowdef_t *def = s_load ("fan_out.yaml");
    is_str (chorus_flowdef_key (def), "$.input.batch.id", "fan_out: key");
    is_str (chorus_flowdef_trigger (def), "parcels.ready", "fan_out: trigger");
    is_str (chorus_flowdef_emit_completed (def), "parcels.shipped", "fan_out: emit completed");
    ok (chorus_flowdef_emit_failed (def) == NULL, "fan_out: nothing emitted on failure");
    const chorus_stepdef_t *label = s_step (def, "label");
    is_str (label->for_each, "$.steps.plan.output.parcels", "label: for_each over an output");
    is_int (label->max_parallel, 4, "label: max_parallel");
    is_int (label->timeout_ms, 250, "label: timeout 250ms");
    is_str (label->compensate, "void_label", "label: compensate");
    s_json_is (label->compensate_input,
               "{\"parcel\": \"$.item.id\", \"labels\": \"$.steps.label.output\"}",
               "label: compensate input with $.item and its own output");

    json_t *context = json_pack ("{s:{s:[{s:s}], s:i, s:{s:i}},"
                                 " s:{s:{s:{s:s, s:[]}}}, s:{s:i, s:s}}",
                                 "input", "items", "sku", "s-1", "count", 2, "batch", "id", 7,
                                 "steps", "plan", "output", "carrier", "dhl", "parcels",
                                 "item", "weight", 3, "id", "p-1");
    json_t *key_path = json_string (chorus_flowdef_key (def));
    json_t *key = chorus_flowdef_resolve (key_path, context);
    s_json_is (key, "7", "resolve: the business key");
    json_t *input = chorus_flowdef_resolve (s_step (def, "plan")->input, context);
    s_json_is (input, "{\"first_sku\": \"s-1\", \"count\": 2}", "resolve: array index in a path");
    json_decref (input);
    input = chorus_flowdef_resolve (label->input, context);
    s_json_is (input, "{\"parcel\": {\"weight\": 3, \"id\": \"p-1\"}, \"weight\": 3, "
                      "\"carrier\": \"dhl\"}", "resolve: $.item whole and in part");
    json_decref (input);
    json_decref (key);
    json_decref (key_path);
    json_decref (context);
    chorus_flowdef_destroy (&def);
}

static void
s_test_scalars (void)
{
    chorus_flowdef_t *def = s_load ("scalars.yaml");
    const json_t *input = chorus_flowdef_step (def, 0)->input;
    s_json_is (input,
               "{\"int\": 1, \"quoted_int\": \"1\", \"single_quoted_int\": \"1\","
               " \"negative\": -42,"
               " \"hex\": 31, \"octal\": 15, \"real\": 1.5, \"quoted_real\": \"1.5\","
               " \"exponent\": 2000.0, \"yes_and_no\": [\"yes\", \"no\", \"on\", \"off\"],"
               " \"bool\": true, \"capital_bool\": false, \"quoted_bool\": \"true\","
               " \"null_word\": null, \"tilde\": null, \"empty\": null, \"quoted_null\": \"null\","
               " \"quoted_empty\": \"\", \"infinity\": \".inf\", \"huge\": 1.2345678901234568e29,"
               " \"text\": \"hello world\", \"literal\": \"line one\\nline two\\n\","
               " \"folded\": \"folded text\\n\", \"nested\": [1, \"2\", [3.0, {\"four\": 4}]],"
               " \"dollar\": \"$5\"}",
               "scalars: typed as YAML 1.2, quoted ones stay strings");
    ok (json_is_integer (json_object_get (input, "int")), "scalars: 1 is an integer");
    ok (json_is_string (json_object_get (input, "quoted_int")), "scalars: \"1\" is a string");
    ok (json_is_real (json_object_get (input, "real")), "scalars: 1.5 is a real");
    ok (json_is_real (json_array_get (json_array_get (json_object_get (input, "nested"), 2), 0)),
        "scalars: 3.0 stays a real");
    chorus_flowdef_destroy (&def);
}

static void
s_test_lookup (void)
{
    json_t *context = json_pack ("{s:{s:s, s:[{s:s}, {s:s}], s:{s:i}}, s:{s:{s:[i, i]}}, s:i}",
                                 "input", "id", "A", "items", "sku", "a", "sku", "b",
                                 "0", "x", 1, "steps", "pay", "output", 4, 5, "item", 9);
    const json_t *input = json_object_get (context, "input");
    ok (chorus_flowdef_lookup (context, "$.input") == input, "lookup: a root, borrowed");
    is_str (json_string_value (chorus_flowdef_lookup (context, "$.input.id")), "A",
            "lookup: a member");
    is_str (json_string_value (chorus_flowdef_lookup (context, "$.input.items.1.sku")), "b",
            "lookup: an array index");
    is_int (json_integer_value (chorus_flowdef_lookup (context, "$.input.0.x")), 1,
            "lookup: a numeric key of an object is a key");
    is_int (json_integer_value (chorus_flowdef_lookup (context, "$.steps.pay.output.1")), 5,
            "lookup: a step's output");
    is_int (json_integer_value (chorus_flowdef_lookup (context, "$.item")), 9, "lookup: $.item");
    ok (chorus_flowdef_lookup (context, "$.input.items.2") == NULL, "lookup: index past the end");
    ok (chorus_flowdef_lookup (context, "$.input.items.-1") == NULL, "lookup: negative index");
    ok (chorus_flowdef_lookup (context, "$.input.items.first") == NULL, "lookup: word on array");
    ok (chorus_flowdef_lookup (context, "$.input.nope") == NULL, "lookup: missing member");
    ok (chorus_flowdef_lookup (context, "$.input.id.more") == NULL, "lookup: into a string");
    ok (chorus_flowdef_lookup (context, "$.input..id") == NULL, "lookup: empty segment");
    ok (chorus_flowdef_lookup (context, "$.input.id.") == NULL, "lookup: trailing dot");
    ok (chorus_flowdef_lookup (context, "input.id") == NULL, "lookup: no $.");
    ok (chorus_flowdef_lookup (NULL, "$.input") == NULL, "lookup: no context");

    json_t *template_ = json_pack ("{s:s, s:[s, i], s:s, s:s, s:s}", "a", "$.input.nope",
                                   "b", "$.steps.ship.output", 3, "c", "plain", "d", "$5",
                                   "e", "$.input.items");
    json_t *result = chorus_flowdef_resolve (template_, context);
    s_json_is (result, "{\"a\": null, \"b\": [null, 3], \"c\": \"plain\", \"d\": \"$5\","
                       " \"e\": [{\"sku\": \"a\"}, {\"sku\": \"b\"}]}",
               "resolve: missing paths are null, other values copied");
    json_array_append_new (json_object_get (result, "e"), json_true ());
    is_int (json_array_size (json_object_get (input, "items")), 2,
            "resolve: the result is a deep copy");
    json_decref (result);
    json_decref (template_);
    json_decref (context);
}

static void
s_test_path_check (void)
{
    const char *good [] = { "$.input", "$.input.a-b.c_d.0", "$.item", "$.item.sku",
                            "$.steps.charge.output", "$.steps.charge.output.x.1", NULL };
    for (int i = 0; good [i]; i++)
        is_int (chorus_flowdef_path_check (good [i], NULL, 0), 0, "path_check: %s", good [i]);
    struct { const char *path, *error; } bad [] = {
        { "$.foo", "bad path '$.foo': must start with $.input, $.steps.ID.output or $.item" },
        { "input.x", "bad path 'input.x': must start with $.input, $.steps.ID.output or $.item" },
        { "$.steps.charge", "bad path '$.steps.charge': must start with $.input, "
                            "$.steps.ID.output or $.item" },
        { "$.steps.charge.input", "bad path '$.steps.charge.input': must start with $.input, "
                                  "$.steps.ID.output or $.item" },
        { "$.inputs", "bad path '$.inputs': must start with $.input, $.steps.ID.output or $.item" },
        { "$.input..x", "bad path '$.input..x': segments are A-Z a-z 0-9 _ - separated by "
                        "single dots" },
        { "$.input.a b", "bad path '$.input.a b': segments are A-Z a-z 0-9 _ - separated by "
                         "single dots" },
        { "$.", "bad path '$.': segments are A-Z a-z 0-9 _ - separated by single dots" },
        { NULL, NULL } };
    for (int i = 0; bad [i].path; i++) {
        char error [256] = "";
        int rc = chorus_flowdef_path_check (bad [i].path, error, sizeof (error));
        ok (rc == -1 && strcmp (error, bad [i].error) == 0, "path_check refuses '%s'",
            bad [i].path);
        if (strcmp (error, bad [i].error))
            diag ("got: %s", error);
    }
}

static void
s_test_durations (void)
{
    struct { const char *text; uint64_t ms; } good [] = {
        { "250ms", 250 }, { "2s", 2000 }, { "10m", 600000 }, { "1h", 3600000 }, { "0ms", 0 },
        { "8760h", 31536000000ull }, { NULL, 0 } };
    for (int i = 0; good [i].text; i++) {
        uint64_t ms = 12345;
        int rc = chorus_flowdef_duration (good [i].text, &ms, NULL, 0);
        ok (rc == 0 && ms == good [i].ms, "duration %s", good [i].text);
    }
    struct { const char *text, *error; } bad [] = {
        { "5", "bad duration '5': needs a unit (ms, s, m, h)" },
        { "1d", "bad duration '1d': use an integer and a unit (ms, s, m, h), e.g. 250ms" },
        { "1.5s", "bad duration '1.5s': use an integer and a unit (ms, s, m, h), e.g. 250ms" },
        { "s", "bad duration 's': use an integer and a unit (ms, s, m, h), e.g. 250ms" },
        { "8761h", "bad duration '8761h': longer than 365 days" },
        { "99999999999999999999999ms", "bad duration '99999999999999999999999ms': longer than "
                                       "365 days" },
        { NULL, NULL } };
    for (int i = 0; bad [i].text; i++) {
        char error [256] = "";
        uint64_t ms = 0;
        int rc = chorus_flowdef_duration (bad [i].text, &ms, error, sizeof (error));
        ok (rc == -1 && strcmp (error, bad [i].error) == 0, "duration refuses '%s'", bad [i].text);
        if (strcmp (error, bad [i].error))
            diag ("got: %s", error);
    }
}

int
main (void)
{
    s_test_fulfil_order ();
    s_test_diamond ();
    s_test_fan_out ();
    s_test_scalars ();
    s_test_lookup ();
    s_test_path_check ();
    s_test_durations ();
    return done_testing ();
}
