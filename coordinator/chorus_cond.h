/*  chorus_cond.h — the conditions of `when:` (coordinator/FLOWS.md, "Conditions"):
    a fixed, small grammar of comparisons over paths, parsed once when a
    flow loads into a tree, and evaluated against a flow's context when a
    step is about to start. Evaluation never fails: every comparison is
    true or false (see FLOWS.md for the rules on types and missing values).
*/
#ifndef CHORUS_COND_H_INCLUDED
#define CHORUS_COND_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct _chorus_cond_t chorus_cond_t;

//  Deepest nesting of parentheses and `not`
#define CHORUS_COND_MAX_DEPTH 32

//  Parses a condition. On failure returns NULL, writes the problem into
//  error ("bad when: expected ')' at 'and'") and the byte offset into text
//  where it is into *offset.
chorus_cond_t *
    chorus_cond_parse (const char *text, size_t *offset, char *error, size_t error_size);

void
    chorus_cond_destroy (chorus_cond_t **self_p);

//  The paths it reads, in the order of the text, and the byte offset of
//  each in the text
size_t
    chorus_cond_paths (chorus_cond_t *self);
const char *
    chorus_cond_path (chorus_cond_t *self, size_t index, size_t *offset);
//  The same paths as a JSON list of strings (borrowed): a template that
//  reads them, for whoever builds the context
const json_t *
    chorus_cond_path_list (chorus_cond_t *self);

//  Is it true in this context ({"input": ..., "steps": {"ID": {"output":
//  ...}}}, as chorus_flowdef_lookup reads it)?
bool
    chorus_cond_eval (chorus_cond_t *self, const json_t *context);

#endif
