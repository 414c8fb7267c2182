/*  chorus_flowdef.c — loads a flow definition with libyaml's document API,
    checks all of it (fields, types, names, durations, the depends_on graph,
    every path) and reports the first problem at the node that has it, as
    "file:line:column: message". Paths, durations and scalars themselves
    are in chorus_flowdef_path.c.
*/
#include "chorus_flowdef.h"
#include "chorus_cond.h"

#include <yaml.h>
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_SOURCE    (1024 * 1024)   //  bytes of YAML
#define S_MAX_STEPS     256             //  steps per flow
#define S_MAX_DEPTH     32              //  nesting of collections
#define S_MAX_VISITS    (1024 * 1024)   //  nodes, counting every use of an alias
#define S_MAX_FACTOR    100             //  largest backoff multiplier

#define S_NAME_CHARS \
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

struct _chorus_flowdef_t {
    char *name;                 //  the flow's name
    int version;                //  its version, 1 or more
    char *trigger;              //  topic that starts it, NULL: none
    char *key;                  //  business key path, NULL: none
    uint64_t timeout_ms;        //  deadline of a whole flow, 0: none
    char *emit_completed;       //  topic emitted on completion, NULL: none
    char *emit_failed;          //  topic emitted on failure, NULL: none
    json_t *output;             //  the flow's output template, NULL: none
    char *source;               //  the YAML text, NUL-terminated
    chorus_stepdef_t *steps;    //  steps in file order
    size_t steps_size;          //  how many
};

//  Field tables: the order of each table is the order of its enum
static const char *s_flow_fields [] = {
    "flow", "version", "trigger", "key", "timeout", "steps", "emit", "output", NULL };
enum { F_FLOW, F_VERSION, F_TRIGGER, F_KEY, F_TIMEOUT, F_STEPS, F_EMIT, F_OUTPUT };
static const char *s_step_fields [] = {
    "id", "service", "command", "input", "depends_on", "retry", "timeout", "compensate",
    "for_each", "max_parallel", "when", "sleep", "flow", "await", NULL };
enum { S_ID, S_SERVICE, S_COMMAND, S_INPUT, S_DEPENDS_ON, S_RETRY, S_TIMEOUT, S_COMPENSATE,
       S_FOR_EACH, S_MAX_PARALLEL, S_WHEN, S_SLEEP, S_FLOW, S_AWAIT, S_STEP_FIELDS };
static const char *s_await_fields [] = { "topic", "signal", "match", "timeout", NULL };
enum { A_TOPIC, A_SIGNAL, A_MATCH, A_TIMEOUT };
static const char *s_retry_fields [] = {
    "attempts", "backoff", "factor", "max_backoff", NULL };
enum { R_ATTEMPTS, R_BACKOFF, R_FACTOR, R_MAX_BACKOFF };
static const char *s_compensate_fields [] = { "command", "input", NULL };
enum { C_COMMAND, C_INPUT };
static const char *s_emit_fields [] = { "completed", "failed", NULL };
enum { E_COMPLETED, E_FAILED };
static const char *s_sleep_fields [] = { "until", NULL };

//  Where a path appears, for the rules that depend on it
typedef enum { S_IN_INPUT, S_IN_COMPENSATE, S_IN_FOR_EACH, S_IN_WHEN, S_IN_SLEEP, S_IN_OUTPUT }
    s_where_t;

//  What the loader keeps of a step's YAML for the checks that need all steps
typedef struct {
    yaml_node_t *node;              //  the step's mapping
    yaml_node_t *depends_on;        //  the depends_on value, NULL: none
    yaml_node_t *input;             //  the input template, NULL: none
    yaml_node_t *compensate;        //  the compensate mapping, NULL: none
    yaml_node_t *compensate_input;  //  its input template, NULL: none
    yaml_node_t *for_each;          //  the for_each path, NULL: none
    yaml_node_t *max_parallel;      //  the max_parallel value, NULL: none
    yaml_node_t *flow;              //  the flow value (a sub-flow), NULL: none
    yaml_node_t *retry;             //  the retry mapping, NULL: none
    yaml_node_t *timeout;           //  the timeout value, NULL: none
    yaml_node_t *await;             //  the await mapping, NULL: none
    yaml_node_t *await_match;       //  its match mapping, NULL: none
    yaml_node_t *command_field;     //  the key of the first field an await cannot have
    int *depends;                   //  indexes of depends_on, once checked
    yaml_node_t *when;              //  the when condition, NULL: none
    yaml_node_t *sleep_until;       //  the path of sleep's until, NULL: none
    yaml_node_t *fields [S_STEP_FIELDS];    //  each field's value, NULL: not given
} s_stepnodes_t;

//  One load in progress
typedef struct {
    yaml_document_t document;   //  the parsed YAML
    bool loaded;                //  document holds a document to delete
    const char *origin;         //  names the text in errors
    char *error;                //  where the first error goes, may be NULL
    size_t error_size;          //  its size
    bool failed;                //  an error was reported
    size_t visits;              //  nodes visited by the size check
    chorus_flowdef_t *def;      //  the definition being built
    s_stepnodes_t *nodes;       //  per step, parallel to def->steps
    bool *reach;                //  reach [i * steps + j]: step i depends on j, transitively
    yaml_node_t *output;        //  the flow's output template, NULL: none
} s_loader_t;

//  --------------------------------------------------------------------------
//  Errors: the first one wins, with its place (1-based)

static int
s_vfail_at (s_loader_t *self, yaml_mark_t mark, const char *format, va_list args)
{
    if (!self->failed && self->error && self->error_size) {
        int prefix = snprintf (self->error, self->error_size, "%s:%zu:%zu: ", self->origin,
                               mark.line + 1, mark.column + 1);
        if (prefix >= 0 && (size_t) prefix < self->error_size)
            vsnprintf (self->error + prefix, self->error_size - (size_t) prefix, format, args);
    }
    self->failed = true;
    return -1;
}

static int
s_fail_at (s_loader_t *self, yaml_mark_t mark, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    s_vfail_at (self, mark, format, args);
    va_end (args);
    return -1;
}

static int
s_fail (s_loader_t *self, yaml_node_t *node, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    s_vfail_at (self, node->start_mark, format, args);
    va_end (args);
    return -1;
}

//  libyaml's reader reports a byte offset, not a mark
static yaml_mark_t
s_mark_of_offset (const char *text, size_t size, size_t offset)
{
    yaml_mark_t mark = { offset, 0, 0 };
    for (size_t i = 0; i < offset && i < size; i++) {
        if (text [i] == '\n') {
            mark.line++;
            mark.column = 0;
        }
        else
            mark.column++;
    }
    return mark;
}

static int
s_syntax_error (s_loader_t *self, yaml_parser_t *parser, const char *text, size_t size)
{
    yaml_mark_t mark = parser->problem_mark;
    if (parser->error == YAML_READER_ERROR)
        mark = s_mark_of_offset (text, size, parser->problem_offset);
    const char *problem = parser->problem;
    if (parser->error == YAML_MEMORY_ERROR)
        problem = "out of memory";
    return s_fail_at (self, mark, "YAML syntax error: %s", problem? problem: "unknown error");
}

//  --------------------------------------------------------------------------
//  Scalars

static yaml_node_t *
s_node (s_loader_t *self, int index)
{
    return yaml_document_get_node (&self->document, index);
}

static const char *
s_text (yaml_node_t *node)
{
    return (const char *) node->data.scalar.value;
}

//  A scalar's text has no NUL inside (names, paths and numbers never do)
static bool
s_clean (yaml_node_t *node)
{
    return strlen (s_text (node)) == node->data.scalar.length;
}

static json_t *
s_scalar_json (yaml_node_t *node)
{
    return chorus_flowdef_scalar (s_text (node), node->data.scalar.length,
                                  node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE);
}

//  --------------------------------------------------------------------------
//  Field values

static bool
s_is_name (const char *text, const char *chars, size_t max)
{
    size_t size = strlen (text);
    return size > 0 && size <= max && strspn (text, chars) == size;
}

//  1 to max printable ASCII characters, no spaces (the protocol's NAME)
static bool
s_is_printable (const char *text, size_t max)
{
    size_t size = strlen (text);
    if (size == 0 || size > max)
        return false;
    for (size_t i = 0; i < size; i++)
        if ((unsigned char) text [i] < 0x21 || (unsigned char) text [i] > 0x7e)
            return false;
    return true;
}

static int
s_string (s_loader_t *self, yaml_node_t *node, const char *field)
{
    if (node->type != YAML_SCALAR_NODE)
        return s_fail (self, node, "field '%s' must be a string", field);
    return 0;
}

static int
s_store (s_loader_t *self, yaml_node_t *node, char **target)
{
    *target = strdup (s_text (node));
    return *target? 0: s_fail (self, node, "out of memory");
}

//  service, command: the protocol's names
static int
s_name (s_loader_t *self, yaml_node_t *node, const char *field, size_t max, char **target)
{
    if (s_string (self, node, field))
        return -1;
    if (!s_clean (node) || !s_is_printable (s_text (node), max))
        return s_fail (self, node,
                       "bad %s name '%s': use 1 to %zu printable ASCII characters, no spaces",
                       field, s_text (node), max);
    return s_store (self, node, target);
}

static int
s_topic (s_loader_t *self, yaml_node_t *node, const char *field, char **target)
{
    if (s_string (self, node, field))
        return -1;
    if (!s_clean (node) || !s_is_printable (s_text (node), 256))
        return s_fail (self, node,
                       "bad topic '%s': use 1 to 256 printable ASCII characters, no spaces",
                       s_text (node));
    return s_store (self, node, target);
}

static int
s_positive (s_loader_t *self, yaml_node_t *node, const char *field, int *target)
{
    json_t *value = node->type == YAML_SCALAR_NODE? s_scalar_json (node): NULL;
    json_int_t integer = json_is_integer (value)? json_integer_value (value): 0;
    json_decref (value);
    if (integer < 1 || integer > INT_MAX)
        return s_fail (self, node, "field '%s' must be a positive integer", field);
    *target = (int) integer;
    return 0;
}

static int
s_factor (s_loader_t *self, yaml_node_t *node, double *target)
{
    json_t *value = node->type == YAML_SCALAR_NODE? s_scalar_json (node): NULL;
    double factor = json_is_number (value)? json_number_value (value): 0;
    json_decref (value);
    if (!(factor >= 1 && factor <= S_MAX_FACTOR))
        return s_fail (self, node, "field 'factor' must be a number from 1 to %d", S_MAX_FACTOR);
    *target = factor;
    return 0;
}

//  Zero only where a wait may be none
static int
s_duration (s_loader_t *self, yaml_node_t *node, const char *field, bool positive,
            uint64_t *target)
{
    if (node->type != YAML_SCALAR_NODE)
        return s_fail (self, node, "field '%s' must be a duration (e.g. 2s)", field);
    char problem [512] = "bad duration: contains a NUL character";
    if (!s_clean (node)
    ||  chorus_flowdef_duration (s_text (node), target, problem, sizeof (problem)))
        return s_fail (self, node, "%s", problem);
    if (*target == 0 && positive)
        return s_fail (self, node, "bad duration '%s': must be more than zero", s_text (node));
    return 0;
}

//  --------------------------------------------------------------------------
//  Structure

//  Checks the size of the tree before anything walks it: the text's nesting
//  is known to be fine, but aliases can make a small file huge or endless
static int
s_check_size (s_loader_t *self, yaml_node_t *node, int depth)
{
    if (++self->visits > S_MAX_VISITS)
        return s_fail (self, node,
                       "too many values: more than %d, counting each use of an alias",
                       S_MAX_VISITS);
    if (depth > S_MAX_DEPTH && node->type != YAML_SCALAR_NODE)
        return s_fail (self, node, "nesting deeper than %d levels", S_MAX_DEPTH);
    if (node->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *item = node->data.sequence.items.start;
             item < node->data.sequence.items.top; item++)
            if (s_check_size (self, s_node (self, *item), depth + 1))
                return -1;
    }
    else
    if (node->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
             pair < node->data.mapping.pairs.top; pair++)
            if (s_check_size (self, s_node (self, pair->key), depth + 1)
            ||  s_check_size (self, s_node (self, pair->value), depth + 1))
                return -1;
    }
    return 0;
}

//  The field a key names: its index in fields, or -1 (unknown, repeated)
static int
s_field (s_loader_t *self, yaml_node_pair_t *pair, const char *what, const char **fields,
         unsigned *seen)
{
    yaml_node_t *key = s_node (self, pair->key);
    if (key->type != YAML_SCALAR_NODE)
        return s_fail (self, key, "a field name must be a scalar");
    const char *name = s_text (key);
    for (int index = 0; fields [index]; index++)
        if (s_clean (key) && strcmp (name, fields [index]) == 0) {
            if (*seen & (1u << index))
                return s_fail (self, key, "duplicate field '%s'", name);
            *seen |= 1u << index;
            return index;
        }
    char expected [256] = "";
    for (int index = 0; fields [index]; index++) {
        if (index)
            strcat (expected, ", ");
        strcat (expected, fields [index]);
    }
    return s_fail (self, key, "unknown field '%s' in %s (expected one of: %s)", name, what,
                   expected);
}

//  Calls fn (self, field, value, arg) for each field of a mapping in order
typedef int (s_field_fn) (s_loader_t *self, int field, yaml_node_t *value, void *arg);

static int
s_fields (s_loader_t *self, yaml_node_t *node, const char *what, const char **fields,
          s_field_fn *fn, void *arg)
{
    unsigned seen = 0;
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        int field = s_field (self, pair, what, fields, &seen);
        if (field < 0 || fn (self, field, s_node (self, pair->value), arg))
            return -1;
    }
    return 0;
}

//  Converts a template; NULL with self->failed on error
static json_t *
s_json (s_loader_t *self, yaml_node_t *node)
{
    json_t *result = NULL;
    if (node->type == YAML_SCALAR_NODE) {
        result = s_scalar_json (node);
        if (!result)
            s_fail (self, node, "bad string: not valid UTF-8");
    }
    else
    if (node->type == YAML_SEQUENCE_NODE) {
        result = json_array ();
        for (yaml_node_item_t *item = node->data.sequence.items.start;
             result && item < node->data.sequence.items.top; item++) {
            json_t *child = s_json (self, s_node (self, *item));
            if (!child || json_array_append_new (result, child)) {
                json_decref (result);
                result = NULL;
            }
        }
    }
    else
    if (node->type == YAML_MAPPING_NODE) {
        result = json_object ();
        for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
             result && pair < node->data.mapping.pairs.top; pair++) {
            yaml_node_t *key = s_node (self, pair->key);
            json_t *child = NULL;
            if (key->type != YAML_SCALAR_NODE)
                s_fail (self, key, "a field name must be a scalar");
            else
            if (json_object_get (result, s_text (key)))
                s_fail (self, key, "duplicate field '%s'", s_text (key));
            else
                child = s_json (self, s_node (self, pair->value));
            if (!child || json_object_set_new (result, s_text (key), child)) {
                json_decref (result);
                result = NULL;
            }
        }
    }
    if (!result && !self->failed)
        s_fail (self, node, "out of memory");
    return result;
}

//  An input template: any value; null is no template
static int
s_template (s_loader_t *self, yaml_node_t *node, json_t **target)
{
    json_t *value = s_json (self, node);
    if (!value)
        return -1;
    if (json_is_null (value))
        json_decref (value);
    else
        *target = value;
    return 0;
}

static int
s_depends_on (s_loader_t *self, yaml_node_t *node, chorus_stepdef_t *step)
{
    const char *type_error = "field 'depends_on' must be a step id or a list of step ids";
    yaml_node_item_t *items = NULL;
    size_t count = 1;
    if (node->type == YAML_SEQUENCE_NODE) {
        items = node->data.sequence.items.start;
        count = (size_t) (node->data.sequence.items.top - items);
    }
    else
    if (node->type != YAML_SCALAR_NODE)
        return s_fail (self, node, "%s", type_error);
    if (count == 0)
        return 0;
    step->depends_on = calloc (count, sizeof (char *));
    if (!step->depends_on)
        return s_fail (self, node, "out of memory");
    for (size_t index = 0; index < count; index++) {
        yaml_node_t *item = items? s_node (self, items [index]): node;
        if (item->type != YAML_SCALAR_NODE)
            return s_fail (self, item, "%s", type_error);
        if (s_store (self, item, &step->depends_on [index]))
            return -1;
        step->depends_size++;
    }
    return 0;
}

static int
s_retry_field (s_loader_t *self, int field, yaml_node_t *value, void *arg)
{
    chorus_stepdef_t *step = arg;
    if (field == R_ATTEMPTS)
        return s_positive (self, value, "attempts", &step->attempts);
    if (field == R_BACKOFF)
        return s_duration (self, value, "backoff", false, &step->backoff_ms);
    if (field == R_FACTOR)
        return s_factor (self, value, &step->factor);
    return s_duration (self, value, "max_backoff", false, &step->max_backoff_ms);
}

static int
s_compensate_field (s_loader_t *self, int field, yaml_node_t *value, void *arg)
{
    size_t index = *(size_t *) arg;
    chorus_stepdef_t *step = &self->def->steps [index];
    if (field == C_COMMAND)
        return s_name (self, value, "command", 128, &step->compensate);
    self->nodes [index].compensate_input = value;
    return s_template (self, value, &step->compensate_input);
}

//  --------------------------------------------------------------------------
//  await: a step that waits for an event or a signal instead of sending a
//  command (see "Awaiting events and signals" in FLOWS.md)

//  The key node of a mapping's pair whose value is `value`
static yaml_node_t *
s_key_of (s_loader_t *self, yaml_node_t *mapping, yaml_node_t *value)
{
    for (yaml_node_pair_t *pair = mapping->data.mapping.pairs.start;
         pair < mapping->data.mapping.pairs.top; pair++)
        if (s_node (self, pair->value) == value)
            return s_node (self, pair->key);
    return value;
}

//  A match: payload paths to scalars or $.input paths (checked with the
//  other paths, once every step is known)
static int
s_await_match (s_loader_t *self, yaml_node_t *node, chorus_stepdef_t *step)
{
    if (node->type != YAML_MAPPING_NODE)
        return s_fail (self, node, "field 'match' must be a mapping");
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *key = s_node (self, pair->key);
        yaml_node_t *value = s_node (self, pair->value);
        if (key->type != YAML_SCALAR_NODE)
            return s_fail (self, key, "a field name must be a scalar");
        char path [600];
        snprintf (path, sizeof (path), "$.input.%s", s_text (key));
        if (!s_clean (key) || strlen (s_text (key)) > 256
        ||  chorus_flowdef_path_check (path, NULL, 0))
            return s_fail (self, key, "bad match field '%s': a path into the event's payload, "
                           "segments of A-Z a-z 0-9 _ - separated by single dots",
                           s_text (key));
        if (value->type != YAML_SCALAR_NODE)
            return s_fail (self, value, "match value of '%s' must be a scalar or a path under "
                           "$.input", s_text (key));
    }
    json_t *match = s_json (self, node);
    if (!match)
        return -1;
    step->await_match = match;
    return 0;
}

static int
s_await_field (s_loader_t *self, int field, yaml_node_t *value, void *arg)
{
    size_t index = *(size_t *) arg;
    chorus_stepdef_t *step = &self->def->steps [index];
    if (field == A_TOPIC)
        return s_topic (self, value, "topic", &step->await_topic);
    if (field == A_SIGNAL) {
        if (s_string (self, value, "signal"))
            return -1;
        if (!s_clean (value) || !s_is_name (s_text (value), S_NAME_CHARS ".", 64))
            return s_fail (self, value, "bad signal name '%s': use 1 to 64 of A-Z a-z 0-9 . _ -",
                           s_text (value));
        return s_store (self, value, &step->await_signal);
    }
    if (field == A_MATCH) {
        self->nodes [index].await_match = value;
        return s_await_match (self, value, step);
    }
    return s_duration (self, value, "timeout", true, &step->await_timeout_ms);
}

static int
s_await (s_loader_t *self, yaml_node_t *node, size_t index)
{
    if (node->type != YAML_MAPPING_NODE)
        return s_fail (self, node, "field 'await' must be a mapping (topic or signal, match, "
                       "timeout)");
    self->nodes [index].await = node;
    return s_fields (self, node, "await", s_await_fields, s_await_field, &index);
}

//  At the end of a step that awaits: one thing awaited, and none of the
//  fields of a command
static int
s_await_check (s_loader_t *self, size_t index)
{
    chorus_stepdef_t *step = &self->def->steps [index];
    s_stepnodes_t *nodes = &self->nodes [index];
    if (!step->await_topic && !step->await_signal)
        return s_fail (self, nodes->await, "await of step '%s' needs a topic or a signal",
                       step->id);
    if (step->await_topic && step->await_signal)
        return s_fail (self, nodes->await, "await of step '%s' has both a topic and a signal: "
                       "a step awaits one of them", step->id);
    if (nodes->await_match && step->await_signal)
        return s_fail (self, nodes->await_match, "await of step '%s' matches a signal: a "
                       "signal is found by its name and flow, match is for a topic", step->id);
    if (nodes->command_field)
        return s_fail (self, nodes->command_field, "step '%s' awaits, so it cannot have '%s' "
                       "(an await sends no command; its timeout is await.timeout)", step->id,
                       s_text (nodes->command_field));
    return 0;
}

//  Match values are known when the flow starts, so that an event that
//  comes before the step starts can be kept: literals, or paths under
//  $.input
static int
s_check_match (s_loader_t *self, size_t index)
{
    yaml_node_t *node = self->nodes [index].await_match;
    if (!node)
        return 0;
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
         pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *value = s_node (self, pair->value);
        const char *text = s_text (value);
        if (strncmp (text, "$.", 2) != 0)
            continue;
        char problem [512] = "bad path: contains a NUL character";
        if (!s_clean (value) || chorus_flowdef_path_check (text, problem, sizeof (problem)))
            return s_fail (self, value, "%s", problem);
        if (strncmp (text, "$.input", 7) != 0)
            return s_fail (self, value, "step '%s' matches on '%s': a match reads $.input alone "
                           "(it must be known when the flow starts)",
                           self->def->steps [index].id, text);
    }
    return 0;
}

static int
s_step_id (s_loader_t *self, yaml_node_t *node, size_t index)
{
    chorus_stepdef_t *step = &self->def->steps [index];
    if (s_string (self, node, "id"))
        return -1;
    if (!s_clean (node) || !s_is_name (s_text (node), S_NAME_CHARS, 64))
        return s_fail (self, node, "bad step id '%s': use 1 to 64 of A-Z a-z 0-9 _ -",
                       s_text (node));
    for (size_t other = 0; other < index; other++)
        if (self->def->steps [other].id && strcmp (self->def->steps [other].id, s_text (node)) == 0)
            return s_fail (self, node, "duplicate step id '%s' (first at line %d)",
                           s_text (node), self->def->steps [other].line);
    return s_store (self, node, &step->id);
}

static int s_when (s_loader_t *self, yaml_node_t *node, chorus_stepdef_t *step);
static int s_sleep (s_loader_t *self, yaml_node_t *node, size_t index);
static int s_sleep_only (s_loader_t *self, size_t index);

static int
s_step_field (s_loader_t *self, int field, yaml_node_t *value, void *arg)
{
    size_t index = *(size_t *) arg;
    chorus_stepdef_t *step = &self->def->steps [index];
    s_stepnodes_t *nodes = &self->nodes [index];
    nodes->fields [field] = value;
    if (field != S_ID && field != S_DEPENDS_ON && field != S_WHEN && field != S_AWAIT
    &&  !nodes->command_field)
        nodes->command_field = s_key_of (self, nodes->node, value);
    switch (field) {
        case S_ID:
            return s_step_id (self, value, index);
        case S_SERVICE:
            return s_name (self, value, "service", 64, &step->service);
        case S_COMMAND:
            return s_name (self, value, "command", 128, &step->command);
        case S_INPUT:
            nodes->input = value;
            return s_template (self, value, &step->input);
        case S_DEPENDS_ON:
            nodes->depends_on = value;
            return s_depends_on (self, value, step);
        case S_FLOW:
            nodes->flow = value;
            if (s_string (self, value, "flow"))
                return -1;
            if (!s_clean (value) || !s_is_name (s_text (value), S_NAME_CHARS ".", 64))
                return s_fail (self, value, "bad flow name '%s': use 1 to 64 of A-Z a-z 0-9 . _ -",
                               s_text (value));
            step->flow_line = (int) value->start_mark.line + 1;
            step->flow_column = (int) value->start_mark.column + 1;
            return s_store (self, value, &step->flow);
        case S_RETRY:
            nodes->retry = value;
            if (value->type != YAML_MAPPING_NODE)
                return s_fail (self, value, "field 'retry' must be a mapping");
            return s_fields (self, value, "retry", s_retry_fields, s_retry_field, step);
        case S_TIMEOUT:
            nodes->timeout = value;
            return s_duration (self, value, "timeout", true, &step->timeout_ms);
        case S_COMPENSATE:
            if (value->type != YAML_MAPPING_NODE)
                return s_fail (self, value, "field 'compensate' must be a mapping");
            nodes->compensate = value;
            return s_fields (self, value, "compensate", s_compensate_fields, s_compensate_field,
                             &index);
        case S_FOR_EACH:
            nodes->for_each = value;
            return s_string (self, value, "for_each") || s_store (self, value, &step->for_each);
        case S_MAX_PARALLEL:
            nodes->max_parallel = value;
            return s_positive (self, value, "max_parallel", &step->max_parallel);
        case S_WHEN:
            nodes->when = value;
            return s_when (self, value, step);
        case S_AWAIT:
            return s_await (self, value, index);
        default:
            return s_sleep (self, value, index);
    }
}

//  --------------------------------------------------------------------------
//  when: and sleep: (FLOWS.md, "Conditions" and "Sleeping")

//  Where a byte of a scalar's value is in the file: exact when the value
//  is the text as written (one line, no escapes), else the scalar's start
static yaml_mark_t
s_mark_in (s_loader_t *self, yaml_node_t *node, size_t offset)
{
    yaml_mark_t mark = node->start_mark;
    yaml_scalar_style_t style = node->data.scalar.style;
    size_t quote = style == YAML_SINGLE_QUOTED_SCALAR_STYLE
                || style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    size_t length = node->data.scalar.length;
    const char *source = self->def->source;
    //  strncmp stops at the source's end: the mark is inside it
    if ((quote || style == YAML_PLAIN_SCALAR_STYLE) && node->end_mark.line == mark.line
    &&  strncmp (source + mark.index + quote, s_text (node), length) == 0) {
        mark.index += quote + offset;
        mark.column += quote + offset;
    }
    return mark;
}

static int
s_when (s_loader_t *self, yaml_node_t *node, chorus_stepdef_t *step)
{
    if (node->type != YAML_SCALAR_NODE)
        return s_fail (self, node, "field 'when' must be a string (a condition)");
    if (!s_clean (node))
        return s_fail (self, node, "bad when: contains a NUL character");
    char problem [512];
    size_t offset = 0;
    step->when = chorus_cond_parse (s_text (node), &offset, problem, sizeof problem);
    if (!step->when)
        return s_fail_at (self, s_mark_in (self, node, offset), "%s", problem);
    return s_store (self, node, &step->when_text);
}

static int
s_sleep_field (s_loader_t *self, int field, yaml_node_t *value, void *arg)
{
    (void) field;
    size_t index = *(size_t *) arg;
    self->nodes [index].sleep_until = value;
    return s_string (self, value, "until")
        || s_store (self, value, &self->def->steps [index].sleep_until);
}

static int
s_sleep (s_loader_t *self, yaml_node_t *node, size_t index)
{
    chorus_stepdef_t *step = &self->def->steps [index];
    step->sleep = true;
    if (node->type == YAML_SCALAR_NODE)
        return s_duration (self, node, "sleep", false, &step->sleep_ms);
    if (node->type != YAML_MAPPING_NODE)
        return s_fail (self, node, "field 'sleep' must be a duration (e.g. 30s) or a mapping "
                       "({ until: PATH })");
    return s_fields (self, node, "sleep", s_sleep_fields, s_sleep_field, &index);
}

//  A sleep step sends nothing: the fields of a command do not belong
static int
s_sleep_only (s_loader_t *self, size_t index)
{
    chorus_stepdef_t *step = &self->def->steps [index];
    yaml_node_t *sleep = self->nodes [index].fields [S_SLEEP];
    if (sleep->type == YAML_MAPPING_NODE && !step->sleep_until)
        return s_fail (self, sleep, "missing field 'until' in sleep of step '%s'", step->id);
    for (int field = 0; field < S_STEP_FIELDS; field++) {
        yaml_node_t *value = self->nodes [index].fields [field];
        if (value && field != S_ID && field != S_DEPENDS_ON && field != S_WHEN
        &&  field != S_SLEEP)
            return s_fail (self, value, "step '%s' sleeps, so it takes no '%s' (a sleep step "
                           "has id, sleep, depends_on and when)", self->def->steps [index].id,
                           s_step_fields [field]);
    }
    return 0;
}

//  A step that runs a flow (`flow:`) instead of a command: the child's
//  own steps have their retries, timeouts and compensations
static int
s_sub_flow_step (s_loader_t *self, yaml_node_t *node, size_t index)
{
    chorus_stepdef_t *step = &self->def->steps [index];
    s_stepnodes_t *nodes = &self->nodes [index];
    (void) node;
    const char *what = step->service? "service": step->command? "command": NULL;
    yaml_node_t *where = NULL;
    if (what)
        where = nodes->flow;
    else
    if (nodes->compensate) {
        what = "compensate";
        where = nodes->compensate;
    }
    else
    if (nodes->retry) {
        what = "retry";
        where = nodes->retry;
    }
    else
    if (nodes->timeout) {
        what = "timeout";
        where = nodes->timeout;
    }
    if (what)
        return s_fail (self, where, "step '%s' runs the flow '%s': it takes no %s (a flow "
                       "step's retries, timeouts and compensations are its flow's own)",
                       step->id, step->flow, what);
    if (nodes->max_parallel && !step->for_each)
        return s_fail (self, nodes->max_parallel, "step '%s' has max_parallel but no for_each",
                       step->id);
    return 0;
}

static int
s_step (s_loader_t *self, yaml_node_t *node, size_t index)
{
    chorus_stepdef_t *step = &self->def->steps [index];
    s_stepnodes_t *nodes = &self->nodes [index];
    nodes->node = node;
    step->attempts = 1;
    step->backoff_ms = 1000;
    step->factor = 2;
    step->max_backoff_ms = 60 * 1000;
    step->timeout_ms = 30 * 1000;
    step->line = (int) node->start_mark.line + 1;
    step->column = (int) node->start_mark.column + 1;
    if (node->type != YAML_MAPPING_NODE)
        return s_fail (self, node, "a step must be a mapping (id, service, command, ...)");
    if (s_fields (self, node, "step", s_step_fields, s_step_field, &index))
        return -1;
    if (!step->id)
        return s_fail (self, node, "missing field 'id' in step");
    if (step->sleep)
        return s_sleep_only (self, index);
    if (nodes->flow && nodes->await)
        return s_fail (self, nodes->await, "step '%s' has both 'flow' and 'await': a step "
                       "runs a child flow or awaits, not both", step->id);
    if (nodes->flow)
        return s_sub_flow_step (self, node, index);
    if (nodes->await)
        return s_await_check (self, index);
    if (!step->service)
        return s_fail (self, node, "missing field 'service' in step '%s'", step->id);
    if (!step->command)
        return s_fail (self, node, "missing field 'command' in step '%s'", step->id);
    if (nodes->compensate && !step->compensate)
        return s_fail (self, nodes->compensate,
                       "missing field 'command' in compensate of step '%s'", step->id);
    if (nodes->max_parallel && !step->for_each)
        return s_fail (self, nodes->max_parallel, "step '%s' has max_parallel but no for_each",
                       step->id);
    return 0;
}

static int
s_steps (s_loader_t *self, yaml_node_t *node)
{
    if (node->type != YAML_SEQUENCE_NODE)
        return s_fail (self, node, "field 'steps' must be a sequence");
    yaml_node_item_t *items = node->data.sequence.items.start;
    size_t count = (size_t) (node->data.sequence.items.top - items);
    if (count == 0)
        return s_fail (self, node, "field 'steps' is empty: a flow needs at least one step");
    if (count > S_MAX_STEPS)
        return s_fail (self, s_node (self, items [S_MAX_STEPS]), "too many steps: at most %d",
                       S_MAX_STEPS);
    self->def->steps = calloc (count, sizeof (chorus_stepdef_t));
    self->nodes = calloc (count, sizeof (s_stepnodes_t));
    if (!self->def->steps || !self->nodes)
        return s_fail (self, node, "out of memory");
    self->def->steps_size = count;
    for (size_t index = 0; index < count; index++)
        if (s_step (self, s_node (self, items [index]), index))
            return -1;
    return 0;
}

static int
s_emit_field (s_loader_t *self, int field, yaml_node_t *value, void *arg)
{
    (void) arg;
    if (field == E_COMPLETED)
        return s_topic (self, value, "completed", &self->def->emit_completed);
    return s_topic (self, value, "failed", &self->def->emit_failed);
}

static int
s_key (s_loader_t *self, yaml_node_t *node)
{
    if (s_string (self, node, "key"))
        return -1;
    char problem [512];
    if (chorus_flowdef_path_check (s_text (node), problem, sizeof (problem)))
        return s_fail (self, node, "%s", problem);
    if (strncmp (s_text (node), "$.input", 7) != 0)
        return s_fail (self, node, "key '%s' must be a path under $.input", s_text (node));
    return s_store (self, node, &self->def->key);
}

static int
s_flow_field (s_loader_t *self, int field, yaml_node_t *value, void *arg)
{
    (void) arg;
    chorus_flowdef_t *def = self->def;
    switch (field) {
        case F_FLOW:
            if (s_string (self, value, "flow"))
                return -1;
            if (!s_clean (value) || !s_is_name (s_text (value), S_NAME_CHARS ".", 64))
                return s_fail (self, value, "bad flow name '%s': use 1 to 64 of A-Z a-z 0-9 . _ -",
                               s_text (value));
            return s_store (self, value, &def->name);
        case F_VERSION:
            return s_positive (self, value, "version", &def->version);
        case F_TRIGGER:
            return s_topic (self, value, "trigger", &def->trigger);
        case F_KEY:
            return s_key (self, value);
        case F_TIMEOUT:
            return s_duration (self, value, "timeout", true, &def->timeout_ms);
        case F_STEPS:
            return s_steps (self, value);
        case F_OUTPUT:
            self->output = value;
            return s_template (self, value, &def->output);
        default:
            if (value->type != YAML_MAPPING_NODE)
                return s_fail (self, value, "field 'emit' must be a mapping");
            return s_fields (self, value, "emit", s_emit_fields, s_emit_field, NULL);
    }
}

static int
s_flow (s_loader_t *self, yaml_node_t *root)
{
    chorus_flowdef_t *def = self->def;
    if (root->type != YAML_MAPPING_NODE)
        return s_fail (self, root,
                       "a flow definition must be a mapping (flow, version, steps, ...)");
    if (s_fields (self, root, "flow", s_flow_fields, s_flow_field, NULL))
        return -1;
    if (!def->name)
        return s_fail (self, root, "missing field 'flow' (the flow's name)");
    if (!def->version)
        return s_fail (self, root, "missing field 'version' in flow '%s'", def->name);
    if (!def->steps)
        return s_fail (self, root, "missing field 'steps' in flow '%s'", def->name);
    return 0;
}

//  --------------------------------------------------------------------------
//  Checks across steps: the depends_on graph, then every path

static int
s_index_of (chorus_flowdef_t *def, const char *id, size_t size)
{
    for (size_t index = 0; index < def->steps_size; index++)
        if (strlen (def->steps [index].id) == size && memcmp (def->steps [index].id, id, size) == 0)
            return (int) index;
    return -1;
}

//  Depth-first search for a cycle; `order` collects steps after their
//  dependencies, so that reach can be filled in one pass
static int
s_visit (s_loader_t *self, size_t index, char *color, size_t *stack, size_t depth,
         size_t *order, size_t *ordered)
{
    chorus_stepdef_t *steps = self->def->steps;
    color [index] = 1;
    stack [depth] = index;
    for (size_t dep = 0; dep < steps [index].depends_size; dep++) {
        size_t next = (size_t) self->nodes [index].depends [dep];
        if (color [next] == 1) {
            size_t start = 0;
            while (stack [start] != next)
                start++;
            size_t size = 32;
            for (size_t i = start; i <= depth; i++)
                size += strlen (steps [stack [i]].id) + 4;
            char *cycle = calloc (1, size + strlen (steps [next].id));
            if (!cycle)
                return s_fail (self, self->nodes [next].node, "out of memory");
            for (size_t i = start; i <= depth; i++) {
                strcat (cycle, steps [stack [i]].id);
                strcat (cycle, " -> ");
            }
            strcat (cycle, steps [next].id);
            s_fail (self, self->nodes [next].node, "cycle in depends_on: %s", cycle);
            free (cycle);
            return -1;
        }
        if (color [next] == 0
        &&  s_visit (self, next, color, stack, depth + 1, order, ordered))
            return -1;
    }
    color [index] = 2;
    order [(*ordered)++] = index;
    return 0;
}

static int
s_check_graph (s_loader_t *self)
{
    chorus_flowdef_t *def = self->def;
    size_t count = def->steps_size;
    char *color = calloc (count, 1);
    size_t *stack = calloc (count, sizeof (size_t));
    size_t *order = calloc (count, sizeof (size_t));
    self->reach = calloc (count * count, sizeof (bool));
    int rc = 0;
    if (!color || !stack || !order || !self->reach)
        rc = s_fail (self, self->nodes [0].node, "out of memory");

    //  depends_on names known steps, each once (color marks the ones seen)
    for (size_t index = 0; rc == 0 && index < count; index++) {
        chorus_stepdef_t *step = &def->steps [index];
        s_stepnodes_t *nodes = &self->nodes [index];
        memset (color, 0, count);
        nodes->depends = calloc (step->depends_size + 1, sizeof (int));
        if (!nodes->depends)
            rc = s_fail (self, nodes->node, "out of memory");
        for (size_t dep = 0; rc == 0 && dep < step->depends_size; dep++) {
            yaml_node_t *item = nodes->depends_on->type == YAML_SEQUENCE_NODE
                              ? s_node (self, nodes->depends_on->data.sequence.items.start [dep])
                              : nodes->depends_on;
            const char *id = step->depends_on [dep];
            int other = s_index_of (def, id, strlen (id));
            if (other < 0)
                rc = s_fail (self, item, "step '%s' depends on unknown step '%s'", step->id, id);
            else
            if (color [other])
                rc = s_fail (self, item, "step '%s' depends on '%s' twice", step->id, id);
            else {
                color [other] = 1;
                nodes->depends [dep] = other;
            }
        }
    }
    //  no cycles, and reach [i][j] when step i needs step j done first
    size_t ordered = 0;
    if (rc == 0)
        memset (color, 0, count);
    for (size_t index = 0; rc == 0 && index < count; index++)
        if (color [index] == 0)
            rc = s_visit (self, index, color, stack, 0, order, &ordered);
    for (size_t done = 0; rc == 0 && done < ordered; done++) {
        size_t index = order [done];
        bool *reach = self->reach + index * count;
        for (size_t dep = 0; dep < def->steps [index].depends_size; dep++) {
            size_t other = (size_t) self->nodes [index].depends [dep];
            reach [other] = true;
            for (size_t far = 0; far < count; far++)
                reach [far] = reach [far] || self->reach [other * count + far];
        }
    }
    free (color);
    free (stack);
    free (order);
    return rc;
}

//  Does every way the flow can complete pass through the step, so that
//  its output is there when the flow's output is made? Every step of a
//  flow runs before it completes; a construct that lets a flow complete
//  without a step (a condition) says so here
static bool
s_always_done (s_loader_t *self, size_t index)
{
    //  A step with a condition may be skipped (its dependents run on)
    return self->def->steps [index].when == NULL;
}

//  A path of the flow's output: $.input, or the output of a step that
//  is done whenever the flow completes
static int
s_check_output_path (s_loader_t *self, yaml_mark_t mark, const char *path)
{
    chorus_flowdef_t *def = self->def;
    char problem [512];
    if (chorus_flowdef_path_check (path, problem, sizeof (problem)))
        return s_fail_at (self, mark, "%s", problem);
    if (strncmp (path, "$.item", 6) == 0)
        return s_fail_at (self, mark, "output uses $.item: only a step with for_each has an item");
    if (strncmp (path, "$.steps.", 8) == 0) {
        const char *id = path + 8;
        size_t size = strcspn (id, ".");
        int other = s_index_of (def, id, size);
        if (other < 0)
            return s_fail_at (self, mark, "unknown step '%.*s' in path", (int) size, id);
        if (!s_always_done (self, (size_t) other))
            return s_fail_at (self, mark,
                           "output uses $.steps.%s.output, but the flow can complete "
                           "without step '%s'", def->steps [other].id, def->steps [other].id);
    }
    return 0;
}

//  A path at a place in the file: its root and the steps it may read
static int
s_check_path_at (s_loader_t *self, yaml_mark_t mark, const char *path, size_t index,
                 s_where_t where)
{
    if (where == S_IN_OUTPUT)
        return s_check_output_path (self, mark, path);
    chorus_flowdef_t *def = self->def;
    chorus_stepdef_t *step = &def->steps [index];
    char problem [512];
    if (chorus_flowdef_path_check (path, problem, sizeof (problem)))
        return s_fail_at (self, mark, "%s", problem);
    if (strncmp (path, "$.item", 6) == 0) {
        static const char *places [] = {
            [S_IN_FOR_EACH] = "for_each", [S_IN_WHEN] = "when", [S_IN_SLEEP] = "sleep"
        };
        if (where == S_IN_FOR_EACH || where == S_IN_WHEN || where == S_IN_SLEEP)
            return s_fail_at (self, mark, "step '%s' uses $.item in its %s", step->id,
                              places [where]);
        if (!step->for_each)
            return s_fail_at (self, mark, "step '%s' uses $.item but has no for_each", step->id);
    }
    else
    if (strncmp (path, "$.steps.", 8) == 0) {
        const char *id = path + 8;
        size_t size = strcspn (id, ".");
        int other = s_index_of (def, id, size);
        if (other < 0)
            return s_fail_at (self, mark, "unknown step '%.*s' in path", (int) size, id);
        bool own = (size_t) other == index && where == S_IN_COMPENSATE;
        if (!own && !self->reach [index * def->steps_size + (size_t) other])
            return s_fail_at (self, mark,
                              "step '%s' uses $.steps.%s.output but does not depend on '%s'",
                              step->id, def->steps [other].id, def->steps [other].id);
    }
    return 0;
}

static int
s_check_path (s_loader_t *self, yaml_node_t *node, size_t index, s_where_t where)
{
    if (!s_clean (node))
        return s_fail (self, node, "bad path: contains a NUL character");
    return s_check_path_at (self, node->start_mark, s_text (node), index, where);
}

//  Each path of a when, at its place in the condition
static int
s_check_when (s_loader_t *self, size_t index)
{
    chorus_cond_t *when = self->def->steps [index].when;
    for (size_t p = 0; when && p < chorus_cond_paths (when); p++) {
        size_t offset;
        const char *path = chorus_cond_path (when, p, &offset);
        if (s_check_path_at (self, s_mark_in (self, self->nodes [index].when, offset), path,
                             index, S_IN_WHEN))
            return -1;
    }
    return 0;
}

//  Every "$." string in a template is a path
static int
s_check_template (s_loader_t *self, yaml_node_t *node, size_t index, s_where_t where)
{
    if (!node)
        return 0;
    if (node->type == YAML_SCALAR_NODE)
        return strncmp (s_text (node), "$.", 2) == 0? s_check_path (self, node, index, where): 0;
    if (node->type == YAML_SEQUENCE_NODE) {
        for (yaml_node_item_t *item = node->data.sequence.items.start;
             item < node->data.sequence.items.top; item++)
            if (s_check_template (self, s_node (self, *item), index, where))
                return -1;
    }
    else
    if (node->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *pair = node->data.mapping.pairs.start;
             pair < node->data.mapping.pairs.top; pair++)
            if (s_check_template (self, s_node (self, pair->value), index, where))
                return -1;
    }
    return 0;
}

static int
s_check_paths (s_loader_t *self)
{
    for (size_t index = 0; index < self->def->steps_size; index++) {
        s_stepnodes_t *nodes = &self->nodes [index];
        if ((nodes->for_each && s_check_path (self, nodes->for_each, index, S_IN_FOR_EACH))
        ||  s_check_when (self, index)
        ||  (nodes->sleep_until && s_check_path (self, nodes->sleep_until, index, S_IN_SLEEP))
        ||  s_check_template (self, nodes->input, index, S_IN_INPUT)
        ||  s_check_template (self, nodes->compensate_input, index, S_IN_COMPENSATE)
        ||  s_check_match (self, index))
            return -1;
    }
    return s_check_template (self, self->output, 0, S_IN_OUTPUT);
}

//  --------------------------------------------------------------------------
//  Public API

//  Streams the events before loading: libyaml's scanner slows down with
//  every level of flow nesting, so a deep file stops at level 33, early
static int
s_check_nesting (s_loader_t *self, yaml_parser_t *parser, const char *text, size_t size)
{
    int depth = 0;
    while (true) {
        yaml_event_t event;
        if (!yaml_parser_parse (parser, &event))
            return s_syntax_error (self, parser, text, size);
        yaml_event_type_t type = event.type;
        if (type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT)
            depth++;
        else
        if (type == YAML_SEQUENCE_END_EVENT || type == YAML_MAPPING_END_EVENT)
            depth--;
        yaml_mark_t mark = event.start_mark;
        yaml_event_delete (&event);
        if (depth > S_MAX_DEPTH)
            return s_fail_at (self, mark, "nesting deeper than %d levels", S_MAX_DEPTH);
        if (type == YAML_STREAM_END_EVENT)
            return 0;
    }
}

//  Loads the one document of the text into self->document; 0 or -1
static int
s_load (s_loader_t *self, const char *text, size_t size)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize (&parser))
        return s_fail_at (self, (yaml_mark_t) { 0, 0, 0 }, "out of memory");
    yaml_parser_set_input_string (&parser, (const unsigned char *) text, size);
    int rc = s_check_nesting (self, &parser, text, size);
    yaml_parser_delete (&parser);
    if (rc || !yaml_parser_initialize (&parser))
        return rc? rc: s_fail_at (self, (yaml_mark_t) { 0, 0, 0 }, "out of memory");
    yaml_parser_set_input_string (&parser, (const unsigned char *) text, size);
    if (!yaml_parser_load (&parser, &self->document))
        rc = s_syntax_error (self, &parser, text, size);
    else {
        self->loaded = true;
        yaml_document_t next;
        if (!yaml_document_get_root_node (&self->document))
            rc = s_fail_at (self, (yaml_mark_t) { 0, 0, 0 },
                            "empty document: a flow needs flow, version and steps");
        else
        if (!yaml_parser_load (&parser, &next))
            rc = s_syntax_error (self, &parser, text, size);
        else {
            yaml_node_t *root = yaml_document_get_root_node (&next);
            if (root)
                rc = s_fail (self, root, "more than one document: one flow per file");
            yaml_document_delete (&next);
        }
    }
    yaml_parser_delete (&parser);
    return rc;
}

static void
s_error (char *error, size_t error_size, const char *format, ...)
{
    if (error && error_size) {
        va_list args;
        va_start (args, format);
        vsnprintf (error, error_size, format, args);
        va_end (args);
    }
}

chorus_flowdef_t *
chorus_flowdef_parse (const char *text, size_t size, const char *origin, char *error,
                      size_t error_size)
{
    assert (text || size == 0);
    origin = origin? origin: "(flow)";
    s_error (error, error_size, "");
    if (size > S_MAX_SOURCE) {
        s_error (error, error_size, "%s: larger than 1 MiB (%zu bytes)", origin, size);
        return NULL;
    }
    s_loader_t self = { .origin = origin, .error = error, .error_size = error_size };
    self.def = calloc (1, sizeof (chorus_flowdef_t));
    if (self.def)
        self.def->source = malloc (size + 1);
    if (!self.def || !self.def->source) {
        s_error (error, error_size, "%s: out of memory", origin);
        chorus_flowdef_destroy (&self.def);
        return NULL;
    }
    if (size)
        memcpy (self.def->source, text, size);
    self.def->source [size] = 0;

    int rc = s_load (&self, text? text: "", size);
    yaml_node_t *root = rc == 0? yaml_document_get_root_node (&self.document): NULL;
    if (rc == 0)
        rc = s_check_size (&self, root, 1);
    if (rc == 0)
        rc = s_flow (&self, root);
    if (rc == 0)
        rc = s_check_graph (&self);
    if (rc == 0)
        rc = s_check_paths (&self);

    if (self.nodes)
        for (size_t index = 0; index < self.def->steps_size; index++)
            free (self.nodes [index].depends);
    free (self.nodes);
    free (self.reach);
    if (self.loaded)
        yaml_document_delete (&self.document);
    if (rc)
        chorus_flowdef_destroy (&self.def);
    return self.def;
}

chorus_flowdef_t *
chorus_flowdef_load (const char *path, char *error, size_t error_size)
{
    assert (path);
    FILE *file = fopen (path, "rb");
    if (!file) {
        s_error (error, error_size, "%s: cannot open: %s", path, strerror (errno));
        return NULL;
    }
    //  One byte more than allowed, so that parse sees a file too large
    char *text = malloc (S_MAX_SOURCE + 1);
    size_t size = text? fread (text, 1, S_MAX_SOURCE + 1, file): 0;
    int problem = !text? ENOMEM: ferror (file)? errno: 0;
    fclose (file);
    chorus_flowdef_t *self = NULL;
    if (problem)
        s_error (error, error_size, "%s: cannot read: %s", path, strerror (problem));
    else
        self = chorus_flowdef_parse (text, size, path, error, error_size);
    free (text);
    return self;
}

void
chorus_flowdef_destroy (chorus_flowdef_t **self_p)
{
    assert (self_p);
    chorus_flowdef_t *self = *self_p;
    if (!self)
        return;
    for (size_t index = 0; index < self->steps_size; index++) {
        chorus_stepdef_t *step = &self->steps [index];
        free (step->id);
        free (step->service);
        free (step->command);
        for (size_t dep = 0; dep < step->depends_size; dep++)
            free (step->depends_on [dep]);
        free (step->depends_on);
        json_decref (step->input);
        free (step->compensate);
        json_decref (step->compensate_input);
        free (step->for_each);
        chorus_cond_destroy (&step->when);
        free (step->when_text);
        free (step->sleep_until);
        free (step->flow);
        free (step->await_topic);
        free (step->await_signal);
        json_decref (step->await_match);
    }
    free (self->steps);
    free (self->name);
    free (self->trigger);
    free (self->key);
    free (self->emit_completed);
    free (self->emit_failed);
    json_decref (self->output);
    free (self->source);
    free (self);
    *self_p = NULL;
}

const char *
chorus_flowdef_name (chorus_flowdef_t *self)
{
    assert (self);
    return self->name;
}

int
chorus_flowdef_version (chorus_flowdef_t *self)
{
    assert (self);
    return self->version;
}

const char *
chorus_flowdef_trigger (chorus_flowdef_t *self)
{
    assert (self);
    return self->trigger;
}

const char *
chorus_flowdef_key (chorus_flowdef_t *self)
{
    assert (self);
    return self->key;
}

uint64_t
chorus_flowdef_timeout (chorus_flowdef_t *self)
{
    assert (self);
    return self->timeout_ms;
}

const char *
chorus_flowdef_emit_completed (chorus_flowdef_t *self)
{
    assert (self);
    return self->emit_completed;
}

const char *
chorus_flowdef_emit_failed (chorus_flowdef_t *self)
{
    assert (self);
    return self->emit_failed;
}

const json_t *
chorus_flowdef_output (chorus_flowdef_t *self)
{
    assert (self);
    return self->output;
}

const char *
chorus_flowdef_source (chorus_flowdef_t *self)
{
    assert (self);
    return self->source;
}

size_t
chorus_flowdef_steps (chorus_flowdef_t *self)
{
    assert (self);
    return self->steps_size;
}

const chorus_stepdef_t *
chorus_flowdef_step (chorus_flowdef_t *self, size_t index)
{
    assert (self);
    return index < self->steps_size? &self->steps [index]: NULL;
}

int
chorus_flowdef_step_index (chorus_flowdef_t *self, const char *id)
{
    assert (self);
    return id? s_index_of (self, id, strlen (id)): -1;
}
