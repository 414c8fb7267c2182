/*  test_when_conditions_evaluate.c — `when:` conditions (chorus_cond): the
    grammar of FLOWS.md parsed into a tree, each comparison's rules on
    types and missing values, and every parse error with its place.
*/
#include "chorus_cond.h"
#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_context_text =
    "{\"input\": {\"country\": \"FR\", \"total\": 120, \"rate\": 0.5, \"express\": true,"
    " \"slow\": false, \"none\": null, \"tags\": [\"gift\", \"fragile\"], \"n\": \"5\","
    " \"items\": [{\"sku\": \"x1\"}], \"name\": \"b\u00e9\"},"
    " \"steps\": {\"score\": {\"output\": {\"risk\": 3, \"band\": \"low\"}}}}";

static bool
s_eval (const char *text, const json_t *context, bool *holds)
{
    char error [256];
    size_t offset;
    chorus_cond_t *cond = chorus_cond_parse (text, &offset, error, sizeof error);
    if (!cond) {
        diag ("'%s' does not parse: %s (at %zu)", text, error, offset);
        return false;
    }
    *holds = chorus_cond_eval (cond, context);
    chorus_cond_destroy (&cond);
    return true;
}

static void
test_evaluation (void)
{
    json_t *context = json_loads (s_context_text, 0, NULL);
    if (!context)
        bail_out ("bad context");
    static const struct { const char *text; bool holds; } cases [] = {
        //  equality: strings, numbers by value, no conversion between types
        { "$.input.country == \"FR\"", true },
        { "$.input.country == 'FR'", true },
        { "$.input.country != \"FR\"", false },
        { "$.input.country == \"fr\"", false },
        { "$.input.total == 120", true },
        { "$.input.total == 120.0", true },
        { "$.input.rate == 0.5", true },
        { "$.input.rate == 5e-1", true },
        { "$.input.n == 5", false },                  //  "5" is a string
        { "$.input.n == \"5\"", true },
        { "$.input.express == true", true },
        { "$.input.slow == false", true },
        //  null and nothing are alike
        { "$.input.none == null", true },
        { "$.input.missing == null", true },
        { "$.input.missing != null", false },
        { "$.input.country != null", true },
        { "$.input.missing == $.input.none", true },
        //  order: numbers, strings; anything else is false both ways
        { "$.input.total > 100", true },
        { "$.input.total >= 120", true },
        { "$.input.total < 120", false },
        { "$.input.total <= 120.5", true },
        { "$.input.rate < 1", true },
        { "-1 < $.input.rate", true },
        { "$.input.country < \"GB\"", true },
        { "$.input.country > \"F\"", true },
        { "$.input.name > \"bz\"", true },            //  UTF-8 bytes: é after z
        { "$.input.n < 10", false },                  //  string and number: false
        { "$.input.n >= 10", false },
        { "$.input.missing < 1", false },
        { "$.input.missing >= 1", false },
        { "$.input.express > false", false },
        { "not ($.input.missing < 1)", true },
        //  in: a list literal, or a path to a list
        { "$.input.country in [\"FR\", \"DE\"]", true },
        { "$.input.country in ['GB', 'US']", false },
        { "$.input.total in [1, 120.0]", true },
        { "$.input.missing in [null]", true },
        { "$.input.missing in []", false },
        { "\"gift\" in $.input.tags", true },
        { "\"food\" in $.input.tags", false },
        { "\"F\" in $.input.country", false },        //  not a list: false
        //  exists: a value other than null
        { "exists $.input.country", true },
        { "exists $.input.none", false },
        { "exists $.input.missing", false },
        { "exists $.input.items.0.sku", true },
        { "exists $.input.items.1.sku", false },
        { "exists $.steps.score.output.risk", true },
        //  a path alone: true only when it is the boolean true
        { "$.input.express", true },
        { "$.input.slow", false },
        { "$.input.country", false },
        { "$.input.total", false },
        { "true", true },
        { "false", false },
        //  and, or, not, parentheses and precedence (not > and > or)
        { "$.input.express and $.input.total > 100", true },
        { "$.input.slow or $.input.total > 100", true },
        { "$.input.slow or $.input.total > 200", false },
        { "true or false and false", true },          //  true or (false and false)
        { "(true or false) and false", false },
        { "not true or true", true },                 //  (not true) or true
        { "not (true or true)", false },
        { "not not $.input.express", true },
        { "$.steps.score.output.risk < 5 and $.steps.score.output.band in ['low', 'mid']", true },
        { "  $.input.total>100  and\n$.input.country=='FR'  ", true },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        bool holds = !cases [i].holds;
        ok (s_eval (cases [i].text, context, &holds) && holds == cases [i].holds, "%s is %s",
            cases [i].text, cases [i].holds? "true": "false");
    }
    json_decref (context);
}

static void
test_errors (void)
{
    static const struct { const char *text; size_t offset; const char *error; } cases [] = {
        { "", 0, "bad when: the condition is empty" },
        { "   ", 3, "bad when: the condition is empty" },
        { "$.input.a ==", 12, "bad when: expected a path, a string, a number, true, false, null,"
          " 'not', 'exists' or '(' at the end" },
        { "$.input.a === 1", 12, "bad when: expected a value after '==' at '='" },
        { "$.input.a = 1", 10, "bad when: expected 'and', 'or' or the end at '='" },
        { "$.input.a == 1 and", 18, "bad when: expected a path, a string, a number, true, false,"
          " null, 'not', 'exists' or '(' at the end" },
        { "$.input.a == 1 $.input.b", 15, "bad when: expected 'and', 'or' or the end at "
          "'$.input.b'" },
        { "$.input.a == 1 AND true", 15, "bad when: expected 'and', 'or' or the end at 'AND'" },
        { "($.input.a == 1", 15, "bad when: expected ')' at the end" },
        { "$.input.a == 1)", 14, "bad when: expected 'and', 'or' or the end at ')'" },
        { "$.input.a == \"x", 13, "bad when: a string is not closed (no \")" },
        { "$.input.a == 'x", 13, "bad when: a string is not closed (no ')" },
        { "$.input.a == \"\\n\"", 14, "bad when: unknown escape '\\n' in a string (only \\\" and"
          " \\\\)" },
        { "$.input.a == 1.2.3", 13, "bad when: bad number '1.2.3'" },
        { "$.input.a == 1.", 13, "bad when: bad number '1.'" },
        { "$.input.a == 12abc", 13, "bad when: bad number '12abc'" },
        { "$.input.a == -", 13, "bad when: bad number '-'" },
        { "$.input.a == 1e999", 13, "bad when: number '1e999' is out of range" },
        { "$.input.tags == [\"gift\"]", 16, "bad when: expected a path, a string, a number,"
          " true, false, null, 'not', 'exists' or '(' at '['" },
        { "$.input.a in \"x\"", 13, "bad when: 'in' needs a list ([...]) or a path at '\"'" },
        { "$.input.a in [1, $.input.b]", 17, "bad when: a list holds literals only (strings,"
          " numbers, true, false, null), not paths" },
        { "$.input.a in [1 2]", 16, "bad when: expected ',' or ']' in the list at '2'" },
        { "$.input.a in [1,", 16, "bad when: expected a literal in the list at the end" },
        { "exists 'x'", 7, "bad when: 'exists' needs a path at '''" },
        { "5", 0, "bad when: a literal alone is not a condition: compare it (==, !=, <, <=, >, "
          ">=, in)" },
        { "$.input.a and 'x'", 14, "bad when: a literal alone is not a condition: compare it"
          " (==, !=, <, <=, >, >=, in)" },
        { "$.inputs.a == 1", 0, "bad path '$.inputs.a': must start with $.input,"
          " $.steps.ID.output or $.item" },
        { "1 == $.input..a", 5, "bad path '$.input..a': segments are A-Z a-z 0-9 _ - separated"
          " by single dots" },
        { "$.steps.x == 1", 0, "bad path '$.steps.x': must start with $.input,"
          " $.steps.ID.output or $.item" },
        { "country == 'FR'", 0, "bad when: expected a path, a string, a number, true, false,"
          " null, 'not', 'exists' or '(' at 'country'" },
        { "$.input.a == True", 13, "bad when: expected a path, a string, a number, true, false,"
          " null, 'not', 'exists' or '(' at 'True'" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        char error [256] = "";
        size_t offset = 999;
        chorus_cond_t *cond = chorus_cond_parse (cases [i].text, &offset, error, sizeof error);
        ok (cond == NULL, "'%s' is refused", cases [i].text);
        is_str (error, cases [i].error, "'%s': the message", cases [i].text);
        is_int (offset, cases [i].offset, "'%s': the place", cases [i].text);
        chorus_cond_destroy (&cond);
    }

    //  Nesting is bounded, so that no text can exhaust the stack
    char deep [256] = "";
    for (int i = 0; i < CHORUS_COND_MAX_DEPTH; i++)
        strcat (deep, "(");
    strcat (deep, "true");
    for (int i = 0; i < CHORUS_COND_MAX_DEPTH; i++)
        strcat (deep, ")");
    chorus_cond_t *cond = chorus_cond_parse (deep, NULL, NULL, 0);
    ok (cond != NULL, "%d levels of parentheses parse", CHORUS_COND_MAX_DEPTH);
    chorus_cond_destroy (&cond);
    char deeper [256] = "(";
    strcat (deeper, deep);
    strcat (deeper, ")");
    char error [256];
    size_t offset;
    cond = chorus_cond_parse (deeper, &offset, error, sizeof error);
    ok (cond == NULL, "%d levels are refused", CHORUS_COND_MAX_DEPTH + 1);
    is_str (error, "bad when: nested deeper than 32 levels", "with its message");
    is_int (offset, CHORUS_COND_MAX_DEPTH, "at the level too deep");
    char nots [4096] = "";
    for (int i = 0; i < 1000; i++)
        strcat (nots, "not ");
    strcat (nots, "true");
    cond = chorus_cond_parse (nots, &offset, error, sizeof error);
    ok (cond == NULL && strcmp (error, "bad when: nested deeper than 32 levels") == 0,
        "1000 nots are refused too");
}

static void
test_paths (void)
{
    const char *text = "$.input.a == 1 or (exists $.steps.s.output.x and 'v' in $.input.list)";
    chorus_cond_t *cond = chorus_cond_parse (text, NULL, NULL, 0);
    ok (cond != NULL, "paths: parses");
    is_int (chorus_cond_paths (cond), 3, "paths: three paths");
    size_t offset = 0;
    is_str (chorus_cond_path (cond, 0, &offset), "$.input.a", "paths: the first");
    is_int (offset, 0, "paths: at its place");
    is_str (chorus_cond_path (cond, 1, &offset), "$.steps.s.output.x", "paths: the second");
    is_int (offset, 26, "paths: at its place");
    is_str (chorus_cond_path (cond, 2, &offset), "$.input.list", "paths: the third");
    is_int (offset, 56, "paths: at its place");
    ok (chorus_cond_path (cond, 3, NULL) == NULL, "paths: no fourth");
    char *list = json_dumps (chorus_cond_path_list (cond), JSON_COMPACT);
    is_str (list, "[\"$.input.a\",\"$.steps.s.output.x\",\"$.input.list\"]",
            "paths: as a template to build the context from");
    free (list);
    chorus_cond_destroy (&cond);
    chorus_cond_destroy (&cond);
    ok (cond == NULL, "destroy is safe twice");
}

int
main (void)
{
    test_evaluation ();
    test_errors ();
    test_paths ();
    return done_testing ();
}
