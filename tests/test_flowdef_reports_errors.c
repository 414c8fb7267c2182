/*  test_flowdef_reports_errors.c — every kind of mistake in a flow
    definition is refused with its own message, at the line and column of
    the node that has it: one small file per mistake in tests/flows/bad,
    and a few limits built here (size, steps, aliases, bad UTF-8).
*/
#include "chorus_flowdef.h"
#include "tap.h"

#include <dirent.h>

//  A file of tests/flows/bad and the error it must give
typedef struct {
    const char *file;       //  file name
    int line;               //  where (1-based)
    int column;             //  (1-based)
    const char *message;    //  what is wrong
} s_case_t;

static const s_case_t s_cases [] = {
    { "unknown_field.yaml", 7, 5, "unknown field 'retires' in step (expected one of: id, service,"
      " command, input, depends_on, retry, timeout, compensate, for_each, max_parallel, when,"
      " sleep, flow, await)" },
    { "unknown_top_field.yaml", 3, 1, "unknown field 'triger' in flow (expected one of: flow,"
      " version, trigger, key, timeout, steps, emit, output)" },
    { "unknown_retry_field.yaml", 7, 27, "unknown field 'delay' in retry (expected one of:"
      " attempts, backoff, factor, max_backoff)" },
    { "unknown_compensate_field.yaml", 9, 7, "unknown field 'payload' in compensate (expected"
      " one of: command, input)" },
    { "unknown_emit_field.yaml", 5, 26, "unknown field 'cancelled' in emit (expected one of:"
      " completed, failed)" },
    { "missing_service.yaml", 4, 5, "missing field 'service' in step 'charge'" },
    { "missing_command.yaml", 4, 5, "missing field 'command' in step 'charge'" },
    { "missing_id.yaml", 4, 5, "missing field 'id' in step" },
    { "missing_version.yaml", 1, 1, "missing field 'version' in flow 'pay'" },
    { "missing_compensate_command.yaml", 7, 17,
      "missing field 'command' in compensate of step 'charge'" },
    { "cycle.yaml", 4, 5, "cycle in depends_on: charge -> reserve -> charge" },
    { "self_cycle.yaml", 5, 5, "cycle in depends_on: ship -> ship" },
    { "unknown_depends_on.yaml", 8, 27, "step 'ship' depends on unknown step 'shiping'" },
    { "depends_twice.yaml", 5, 72, "step 'ship' depends on 'charge' twice" },
    { "bad_duration.yaml", 7, 14, "bad duration '5': needs a unit (ms, s, m, h)" },
    { "zero_timeout.yaml", 3, 10, "bad duration '0s': must be more than zero" },
    { "bad_path.yaml", 7, 21,
      "bad path '$.foo': must start with $.input, $.steps.ID.output or $.item" },
    { "duplicate_step_id.yaml", 7, 9, "duplicate step id 'charge' (first at line 4)" },
    { "unknown_step_in_path.yaml", 11, 23, "unknown step 'charged' in path" },
    { "path_without_dependency.yaml", 12, 16,
      "step 'ship' uses $.steps.charge.output but does not depend on 'charge'" },
    { "item_without_for_each.yaml", 7, 19, "step 'reserve' uses $.item but has no for_each" },
    { "item_in_for_each.yaml", 7, 15, "step 'reserve' uses $.item in its for_each" },
    { "key_not_input.yaml", 3, 6, "key '$.steps.charge.output.id' must be a path under $.input" },
    { "output_unknown_step.yaml", 7, 20, "unknown step 'charged' in path" },
    { "flow_step_with_service.yaml", 6, 11, "step 'docs' runs the flow 'process_document': it "
      "takes no service (a flow step's retries, timeouts and compensations are its flow's own)" },
    { "flow_step_with_compensate.yaml", 6, 17, "step 'docs' runs the flow 'process_document': it "
      "takes no compensate (a flow step's retries, timeouts and compensations are its flow's "
      "own)" },
    { "flow_step_with_retry.yaml", 6, 12, "step 'docs' runs the flow 'process_document': it "
      "takes no retry (a flow step's retries, timeouts and compensations are its flow's own)" },
    { "flow_step_bad_name.yaml", 5, 11, "bad flow name 'process document': use 1 to 64 of "
      "A-Z a-z 0-9 . _ -" },
    { "output_item.yaml", 8, 28, "output uses $.item: only a step with for_each has an item" },
    { "output_skippable_step.yaml", 8, 20, "output uses $.steps.express.output, but the flow can "
      "complete without step 'express'" },
    { "output_bad_path.yaml", 8, 12, "bad path '$.steps.charge.result': must start with $.input,"
      " $.steps.ID.output or $.item" },
    { "yaml_syntax.yaml", 6, 12, "YAML syntax error: did not find expected ',' or ']'" },
    { "undefined_alias.yaml", 7, 12, "YAML syntax error: found undefined alias" },
    { "duplicate_key.yaml", 7, 5, "duplicate field 'service'" },
    { "duplicate_template_key.yaml", 9, 7, "duplicate field 'amount'" },
    { "max_parallel_without_for_each.yaml", 7, 19,
      "step 'charge' has max_parallel but no for_each" },
    { "empty_steps.yaml", 3, 8, "field 'steps' is empty: a flow needs at least one step" },
    { "steps_not_a_sequence.yaml", 4, 3, "field 'steps' must be a sequence" },
    { "version_not_an_integer.yaml", 2, 10, "field 'version' must be a positive integer" },
    { "retry_not_a_mapping.yaml", 7, 12, "field 'retry' must be a mapping" },
    { "step_not_a_mapping.yaml", 4, 5, "a step must be a mapping (id, service, command, ...)" },
    { "not_a_mapping.yaml", 1, 1,
      "a flow definition must be a mapping (flow, version, steps, ...)" },
    { "empty.yaml", 1, 1, "empty document: a flow needs flow, version and steps" },
    { "two_documents.yaml", 6, 1, "more than one document: one flow per file" },
    { "bad_attempts.yaml", 7, 24, "field 'attempts' must be a positive integer" },
    { "bad_factor.yaml", 7, 35, "field 'factor' must be a number from 1 to 100" },
    { "bad_flow_name.yaml", 1, 7, "bad flow name 'pay/now': use 1 to 64 of A-Z a-z 0-9 . _ -" },
    { "bad_step_id.yaml", 4, 11, "bad step id 'charge.card': use 1 to 64 of A-Z a-z 0-9 _ -" },
    { "bad_service_name.yaml", 4, 28,
      "bad service name 'pay ments': use 1 to 64 printable ASCII characters, no spaces" },
    { "bad_topic.yaml", 3, 10,
      "bad topic 'order placed': use 1 to 256 printable ASCII characters, no spaces" },
    { "too_deep.yaml", 7, 41, "nesting deeper than 32 levels" },
    { "when_syntax.yaml", 7, 39, "bad when: expected a path, a string, a number, true, false,"
      " null, 'not', 'exists' or '(' at 'and'" },
    { "when_not_a_string.yaml", 7, 11, "field 'when' must be a string (a condition)" },
    { "when_bad_path.yaml", 7, 34,
      "bad path '$.output.express': must start with $.input, $.steps.ID.output or $.item" },
    { "when_without_dependency.yaml", 10, 36,
      "step 'ship' uses $.steps.check.output but does not depend on 'check'" },
    { "when_item.yaml", 8, 18, "step 'ship' uses $.item in its when" },
    { "when_literal_alone.yaml", 7, 15, "bad when: a literal alone is not a condition: compare it"
      " (==, !=, <, <=, >, >=, in)" },
    { "when_unclosed.yaml", 7, 44, "bad when: expected ')' at the end" },
    { "when_in_not_a_list.yaml", 7, 30, "bad when: 'in' needs a list ([...]) or a path at '\"'" },
    { "sleep_bad_duration.yaml", 5, 12,
      "bad duration '1.5h': use an integer and a unit (ms, s, m, h), e.g. 250ms" },
    { "sleep_not_a_duration.yaml", 5, 12,
      "field 'sleep' must be a duration (e.g. 30s) or a mapping ({ until: PATH })" },
    { "sleep_unknown_field.yaml", 5, 14, "unknown field 'at' in sleep (expected one of: until)" },
    { "sleep_missing_until.yaml", 5, 12, "missing field 'until' in sleep of step 'wait'" },
    { "sleep_with_command.yaml", 6, 14, "step 'wait' sleeps, so it takes no 'service' (a sleep"
      " step has id, sleep, depends_on and when)" },
    { "sleep_until_bad_path.yaml", 8, 21,
      "step 'wait' uses $.steps.book.output but does not depend on 'book'" },
    //  await steps
    { "await_not_a_mapping.yaml", 7, 12,
      "field 'await' must be a mapping (topic or signal, match, timeout)" },
    { "unknown_await_field.yaml", 6, 38,
      "unknown field 'matches' in await (expected one of: topic, signal, match, timeout)" },
    { "await_nothing.yaml", 6, 12, "await of step 'settled' needs a topic or a signal" },
    { "await_topic_and_signal.yaml", 6, 12,
      "await of step 'settled' has both a topic and a signal: a step awaits one of them" },
    { "await_signal_match.yaml", 8, 14, "await of step 'approved' matches a signal: a signal "
      "is found by its name and flow, match is for a topic" },
    { "await_with_command.yaml", 7, 5, "step 'settled' awaits, so it cannot have 'service' "
      "(an await sends no command; its timeout is await.timeout)" },
    { "await_bad_topic.yaml", 6, 21,
      "bad topic 'payment settled': use 1 to 256 printable ASCII characters, no spaces" },
    { "await_zero_timeout.yaml", 6, 47, "bad duration '0s': must be more than zero" },
    { "bad_signal_name.yaml", 6, 22,
      "bad signal name 'approved by': use 1 to 64 of A-Z a-z 0-9 . _ -" },
    { "bad_match_field.yaml", 6, 47, "bad match field 'order id': a path into the event's "
      "payload, segments of A-Z a-z 0-9 _ - separated by single dots" },
    { "match_not_a_mapping.yaml", 6, 45, "field 'match' must be a mapping" },
    { "match_value_not_scalar.yaml", 6, 57,
      "match value of 'order_id' must be a scalar or a path under $.input" },
    { "match_not_input.yaml", 7, 58, "step 'settled' matches on '$.steps.charge.output.id': a "
      "match reads $.input alone (it must be known when the flow starts)" },
};
#define S_CASES (sizeof (s_cases) / sizeof (s_cases [0]))

static const char *
s_bad_dir (void)
{
    static char dir [1024];
    const char *srcdir = getenv ("srcdir");
    snprintf (dir, sizeof (dir), "%s/tests/flows/bad", srcdir? srcdir: ".");
    return dir;
}

static void
s_test_files (void)
{
    for (size_t i = 0; i < S_CASES; i++) {
        const s_case_t *test = &s_cases [i];
        char path [1200], expected [1600], error [1024] = "";
        snprintf (path, sizeof (path), "%s/%s", s_bad_dir (), test->file);
        snprintf (expected, sizeof (expected), "%s:%d:%d: %s", path, test->line, test->column,
                  test->message);
        chorus_flowdef_t *def = chorus_flowdef_load (path, error, sizeof (error));
        ok (def == NULL, "%s is refused", test->file);
        is_str (error, expected, "%s: the error and its place", test->file);
        chorus_flowdef_destroy (&def);
    }
}

//  Each file in the folder has a case, so that none is left untested
static void
s_test_every_file_has_a_case (void)
{
    DIR *dir = opendir (s_bad_dir ());
    ok (dir != NULL, "tests/flows/bad can be listed");
    size_t files = 0;
    struct dirent *entry;
    while (dir && (entry = readdir (dir))) {
        if (entry->d_name [0] == '.')
            continue;
        files++;
        bool found = false;
        for (size_t i = 0; i < S_CASES; i++)
            found = found || strcmp (s_cases [i].file, entry->d_name) == 0;
        ok (found, "%s has an expected error", entry->d_name);
    }
    if (dir)
        closedir (dir);
    is_int (files, S_CASES, "as many files as cases");
}

//  Parses text, which must fail with exactly this error
static void
s_refuses (const char *text, size_t size, const char *expected, const char *what)
{
    char error [1024] = "";
    chorus_flowdef_t *def = chorus_flowdef_parse (text, size, "inline.yaml", error, sizeof (error));
    ok (def == NULL, "refused: %s", what);
    is_str (error, expected, "error: %s", what);
    chorus_flowdef_destroy (&def);
}

static const char s_head [] = "flow: pay\nversion: 1\nsteps:\n";
static const char s_step [] = "  - { id: s%d, service: svc, command: run }\n";

static void
s_test_limits (void)
{
    //  256 steps are fine, 257 are too many
    size_t max = sizeof (s_head) + 300 * 64;
    char *text = malloc (max);
    size_t size = (size_t) snprintf (text, max, "%s", s_head);
    for (int i = 0; i < 256; i++)
        size += (size_t) snprintf (text + size, max - size, s_step, i);
    char error [256] = "";
    chorus_flowdef_t *def = chorus_flowdef_parse (text, size, "inline.yaml", error, sizeof (error));
    ok (def && chorus_flowdef_steps (def) == 256, "256 steps load");
    chorus_flowdef_destroy (&def);
    size += (size_t) snprintf (text + size, max - size, s_step, 256);
    s_refuses (text, size, "inline.yaml:260:5: too many steps: at most 256", "257 steps");
    free (text);

    //  A mebibyte of YAML is the most
    size = 1024 * 1024 + 1;
    text = malloc (size);
    memset (text, '#', size);
    s_refuses (text, size, "inline.yaml: larger than 1 MiB (1048577 bytes)", "a file too large");
    free (text);

    //  Aliases that expand to millions of values
    const char *laughs =
        "flow: pay\nversion: 1\nsteps:\n  - id: a\n    service: s\n    command: c\n"
        "    input:\n"
        "      a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
        "      b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "      c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        "      d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "      e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
        "      f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
        "      g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n";
    char expected [256];
    //  (the count runs out inside the shared nodes of a)
    snprintf (expected, sizeof (expected), "inline.yaml:%d:%d: %s", 8, 35,
              "too many values: more than 1048576, counting each use of an alias");
    s_refuses (laughs, strlen (laughs), expected, "an alias bomb");

    //  An alias of a collection inside itself never ends
    const char *loop =
        "flow: pay\nversion: 1\nsteps:\n  - id: a\n    service: s\n    command: c\n"
        "    input: &self [1, *self]\n";
    s_refuses (loop, strlen (loop), "inline.yaml:7:12: nesting deeper than 32 levels",
               "an alias inside itself");

    //  The reader's errors have a place too
    const char *latin1 = "flow: pay\nversion: 1\nsteps: [ \xe9t\xe9 ]\n";
    s_refuses (latin1, strlen (latin1),
               "inline.yaml:3:11: YAML syntax error: invalid trailing UTF-8 octet", "not UTF-8");

    const char *tiny = "flow: pay\nversion: 1\nsteps: []\n";
    def = chorus_flowdef_parse (tiny, strlen (tiny), "inline.yaml", error, 12);
    ok (def == NULL && strcmp (error, "inline.yaml") == 0, "a short error buffer is cut");
    def = chorus_flowdef_parse (tiny, strlen (tiny), "inline.yaml", NULL, 0);
    ok (def == NULL, "no error buffer is fine");

    def = chorus_flowdef_load ("no/such/flow.yaml", error, sizeof (error));
    ok (def == NULL, "a missing file is refused");
    is_str (error, "no/such/flow.yaml: cannot open: No such file or directory",
            "a missing file says so");
}

//  A good definition with one field at a time left out or wrong
static void
s_test_inline (void)
{
    const char *text = "flow: pay\nversion: 1\nsteps:\n"
                       "  - { id: a, service: s, command: c, max_parallel: 2, for_each: $.input }\n"
                       "  - { id: b, service: s, command: c, input: $.steps.a.output }\n";
    s_refuses (text, strlen (text),
               "inline.yaml:5:45: step 'b' uses $.steps.a.output but does not depend on 'a'",
               "inline path without dependency");
    const char *transitive = "flow: pay\nversion: 1\nsteps:\n"
                             "  - { id: a, service: s, command: c }\n"
                             "  - { id: b, service: s, command: c, depends_on: a }\n"
                             "  - { id: c, service: s, command: c, depends_on: b,"
                             " input: $.steps.a.output.x }\n";
    char error [256] = "";
    chorus_flowdef_t *def = chorus_flowdef_parse (transitive, strlen (transitive), "inline.yaml",
                                                  error, sizeof (error));
    ok (def != NULL, "a dependency through another step is a dependency");
    if (!def)
        diag ("%s", error);
    chorus_flowdef_destroy (&def);
    const char *missing = "version: 1\nsteps: [ { id: a, service: s, command: c } ]\n";
    s_refuses (missing, strlen (missing), "inline.yaml:1:1: missing field 'flow' (the flow's name)",
               "no flow name");
    const char *no_steps = "flow: pay\nversion: 1\n";
    s_refuses (no_steps, strlen (no_steps), "inline.yaml:1:1: missing field 'steps' in flow 'pay'",
               "no steps");
    struct { const char *step, *error; } wrong [] = {
        { "{ id: a, service: s, command: \"run it\" }",
          "4:35: bad command name 'run it': use 1 to 128 printable ASCII characters, no spaces" },
        { "{ id: [a], service: s, command: c }", "4:11: field 'id' must be a string" },
        { "{ id: a, service: s, command: c, timeout: { s: 2 } }",
          "4:47: field 'timeout' must be a duration (e.g. 2s)" },
        { "{ id: a, service: s, command: c, depends_on: [[b]] }",
          "4:51: field 'depends_on' must be a step id or a list of step ids" },
        { "{ id: a, service: s, command: c, compensate: undo }",
          "4:50: field 'compensate' must be a mapping" },
        { "{ id: a, service: s, command: c, retry: { factor: \"2\" } }",
          "4:55: field 'factor' must be a number from 1 to 100" },
        { "{ [id]: a, service: s, command: c }", "4:7: a field name must be a scalar" },
        { NULL, NULL } };
    for (int i = 0; wrong [i].step; i++) {
        char yaml [256], expected [256];
        snprintf (yaml, sizeof (yaml), "flow: pay\nversion: 1\nsteps:\n  - %s\n", wrong [i].step);
        snprintf (expected, sizeof (expected), "inline.yaml:%s", wrong [i].error);
        s_refuses (yaml, strlen (yaml), expected, wrong [i].step);
    }
    const char *no_unit = "flow: pay\nversion: 1\ntimeout: \"90\"\nsteps: [ { id: a, service: s,"
                          " command: c } ]\n";
    s_refuses (no_unit, strlen (no_unit),
               "inline.yaml:3:10: bad duration '90': needs a unit (ms, s, m, h)",
               "a quoted number is no duration either");
}

int
main (void)
{
    s_test_files ();
    s_test_every_file_has_a_case ();
    s_test_limits ();
    s_test_inline ();
    return done_testing ();
}
