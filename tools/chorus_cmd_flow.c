/*  chorus_cmd_flow.c — `chorus flow`: drive the coordinator from a shell:
    start flows (and wait for them), show their status, list, cancel and
    retry them, send them signals, and print the causal trace of a
    transaction.
*/
#include "chorus_cli.h"
#include "chorus_flow.h"

#include <stdlib.h>
#include <string.h>

//  Exit status of flow start --wait when the flow did not end in time
#define S_STILL_RUNNING 3
//  Exit status of flow signal: the flow has ended, it takes no signals
#define S_ENDED 3
//  Defaults: a reply's wait, and flow start --wait's
#define S_REPLY_MS 10000
#define S_WAIT_MS 60000
//  How often flow start --wait asks for the status
#define S_POLL_MS 200
//  Longest output or error shown on one line of flow status
#define S_CLIP 120

enum {
    S_OPT_TIMEOUT = CHORUS_CLI_OPT_OWN,
    S_OPT_WAIT,
    S_OPT_ID,
    S_OPT_CORRELATION,
    S_OPT_STATE,
    S_OPT_ITEMS
};

#define S_COMMON_OPTIONS                                                      \
    { "timeout", required_argument, NULL, S_OPT_TIMEOUT },                    \
    CHORUS_CLI_JSON_OPTION, CHORUS_CLI_MESH_OPTIONS, { NULL, 0, NULL, 0 }

static const struct option s_start_options [] = {
    { "wait", no_argument, NULL, S_OPT_WAIT },
    { "id", required_argument, NULL, S_OPT_ID },
    { "correlation", required_argument, NULL, S_OPT_CORRELATION },
    S_COMMON_OPTIONS
};
static const struct option s_list_options [] = {
    { "state", required_argument, NULL, S_OPT_STATE },
    S_COMMON_OPTIONS
};
static const struct option s_status_options [] = {
    { "items", required_argument, NULL, S_OPT_ITEMS },
    S_COMMON_OPTIONS
};
static const struct option s_signal_options [] = {
    { "id", required_argument, NULL, S_OPT_ID },
    S_COMMON_OPTIONS
};
static const struct option s_common_options [] = { S_COMMON_OPTIONS };

typedef struct _s_sub_t s_sub_t;

//  One run of a flow subcommand
typedef struct {
    chorus_cli_t cli;               //  shared options
    const s_sub_t *sub;             //  which subcommand
    char name [32];                 //  "flow NAME", to prefix messages
    char **args;                    //  its positional arguments
    int args_size;                  //  how many
    bool wait;                      //  start: --wait
    int timeout_ms;                 //  --timeout, or -1 for the default
    const char *key;                //  start: --id
    const char *correlation;        //  start: --correlation
    const char *state;              //  list: --state
    long long items_from;           //  status: --items FROM..TO, or -1
    long long items_to;
    chorus_node_t *node;            //  our node, made on the first call
} s_flow_t;

//  Prints a reply in human form (or, for a list, as JSON lines)
typedef int (s_show_fn) (s_flow_t *self, json_t *reply);

struct _s_sub_t {
    const char *name;               //  as typed after "chorus flow"
    const char *command;            //  the coordinator's command
    const char *field;              //  request field for the argument, or NULL
    s_show_fn *show;                //  prints the reply; NULL: start
    const struct option *options;   //  its options
    int min_args;                   //  positional arguments it needs
    int max_args;                   //  and takes at most
    const char *missing;            //  names the arguments it needs
    const char *synopsis;           //  its usage line, after "chorus flow"
    const char *help;               //  what it does, and its own options
    const char *exit_status;        //  what its exit statuses mean
    const char *summary;            //  one line for chorus flow --help
};

//  Flow states; from completed on, a flow has ended
static const char *s_states [] = { "running", "compensating", "completed", "failed",
                                   "cancelled", "stuck", NULL };
static const char **s_terminal = s_states + 2;

static bool
s_among (const char *text, const char **names)
{
    for (; text && *names; names++)
        if (streq (text, *names))
            return true;
    return false;
}

//  --------------------------------------------------------------------------
//  Talking to the coordinator

//  How long to wait for one reply. With --wait, --timeout bounds the wait
//  for the flow, checked between replies: a slow reply is not a flow that
//  did not end.
static int
s_reply_ms (s_flow_t *self)
{
    return self->wait || self->timeout_ms < 0? S_REPLY_MS: self->timeout_ms;
}

//  Sends a command (taking the request) to the coordinator
static int
s_call (s_flow_t *self, const char *command, json_t *request, int timeout_ms,
        const char *idempotency, json_t **reply)
{
    *reply = NULL;
    int status = CHORUS_CLI_OK;
    if (!self->node) {
        //  A port the system picks: "*" takes the lowest free one, which is
        //  the endpoint of the chorus command that just exited, and peers
        //  that still hold that node there do not meet this one
        if (!self->cli.listen)
            self->cli.listen = "tcp://127.0.0.1:0";
        self->node = chorus_cli_node_new (&self->cli, "chorus-flow", NULL);
        if (!self->node || chorus_cli_node_start (&self->cli, self->node))
            status = CHORUS_CLI_FAILED;
    }
    if (status == CHORUS_CLI_OK)
        status = chorus_cli_call (&self->cli, self->node, "coordinator", command, request,
                                  timeout_ms, idempotency, self->correlation, reply);
    json_decref (request);
    return status;
}

static const char *
s_clip (char *text, size_t max);

//  A reply that is not what the command answers: shown (clipped), so
//  that it is never taken for an empty one
static int
s_unexpected (s_flow_t *self, json_t *reply)
{
    char *text = json_dumps (reply, JSON_COMPACT | JSON_ENCODE_ANY);
    chorus_cli_error (&self->cli, "unexpected reply from the coordinator: %s",
                      text? s_clip (text, S_CLIP): "none");
    free (text);
    return CHORUS_CLI_FAILED;
}

//  Prints a JSON value (taking it) as one line
static int
s_print_json (s_flow_t *self, json_t *value)
{
    if (chorus_cli_print_json (value) == 0)
        return CHORUS_CLI_OK;
    chorus_cli_error (&self->cli, "cannot print the reply");
    return CHORUS_CLI_FAILED;
}

//  --------------------------------------------------------------------------
//  Human output

//  A string field of a reply, "-" when it is missing or not a string
static const char *
s_text (json_t *object, const char *key)
{
    const char *text = json_string_value (json_object_get (object, key));
    return text? text: "-";
}

//  Makes text fit one line of at most max bytes, in place: control
//  characters become spaces, and a longer text ends in "..." cut on a
//  UTF-8 character boundary
static const char *
s_clip (char *text, size_t max)
{
    for (char *c = text; *c; c++)
        if ((unsigned char) *c < 0x20 || *c == 0x7f)
            *c = ' ';
    size_t length = strlen (text);
    if (length > max) {
        length = max - 3;
        while (length > 0 && ((unsigned char) text [length] & 0xc0) == 0x80)
            length--;
        strcpy (text + length, "...");
    }
    return text;
}

//  Prints "[STEP: ]CODE: MESSAGE" of an error object between prefix and
//  suffix, when there is one
static void
s_print_error (const char *prefix, json_t *error, const char *suffix)
{
    const char *code = json_string_value (json_object_get (error, "code"));
    if (!code)
        return;
    const char *message = json_string_value (json_object_get (error, "message"));
    const char *step = json_string_value (json_object_get (error, "step"));
    char *text = zsys_sprintf ("%s%s%s: %s", step? step: "", step? ": ": "", code,
                               message? message: "");
    if (text)
        printf ("%s%s%s", prefix, s_clip (text, S_CLIP), suffix);
    free (text);
}

//  A reply's time field as ISO 8601 UTC, "-" for none
static const char *
s_time (json_t *object, const char *key, char *buffer, size_t size)
{
    json_t *time = json_object_get (object, key);
    snprintf (buffer, size, "-");
    if (json_is_integer (time) && json_integer_value (time) > 0)
        chorus_cli_time_iso ((uint64_t) json_integer_value (time), buffer, size);
    return buffer;
}

//  "FLOW-ID completed in N ms", and what failed
static void
s_print_outcome (json_t *status)
{
    json_t *started = json_object_get (status, "started");
    json_t *finished = json_object_get (status, "finished");
    printf ("%s %s", s_text (status, "id"), s_text (status, "state"));
    if (json_is_integer (started) && json_is_integer (finished))
        printf (" in %lld ms", (long long) (json_integer_value (finished)
                                            - json_integer_value (started)));
    s_print_error (": ", json_object_get (status, "error"), "");
    printf ("\n");
    //  The flow's output (FLOWS.md, output:) whole, on a line of its own,
    //  for a script to read
    json_t *output = json_object_get (status, "output");
    if (output && !json_is_null (output)) {
        char *text = json_dumps (output, JSON_COMPACT | JSON_ENCODE_ANY);
        if (text)
            printf ("%s\n", text);
        free (text);
    }
}

//  One line of a step, or of an item of a for_each step
static void
s_print_task (int indent, const char *label, int width, json_t *task)
{
    printf ("%*s%-*s  %-12s attempts %-3lld", indent, "", width, label,
            s_text (task, "state"),
            (long long) json_integer_value (json_object_get (task, "attempts")));
    if (json_object_get (task, "wakes")) {
        char wakes [40];
        printf ("  wakes %s", s_time (task, "wakes", wakes, sizeof (wakes)));
    }
    s_print_error ("  error ", json_object_get (task, "error"), "");
    char *output = json_dumps (json_object_get (task, "output"), JSON_COMPACT | JSON_ENCODE_ANY);
    printf ("  %s\n", output? s_clip (output, S_CLIP): "null");
    free (output);
}

static void s_print_steps (json_t *steps, int indent);

//  A child flow under its step or item: "-> ID  FLOW vN  STATE", its
//  output or error, then its own steps, one level deeper
static void
s_print_child (json_t *child, int indent)
{
    if (!json_is_object (child))
        return;
    printf ("%*s-> %s  %s", indent, "", s_text (child, "id"), s_text (child, "flow"));
    json_t *version = json_object_get (child, "version");
    if (json_is_integer (version))
        printf (" v%lld", (long long) json_integer_value (version));
    printf ("  %s\n", s_text (child, "state"));
    char prefix [80];
    snprintf (prefix, sizeof (prefix), "%*s   error: ", indent > 60? 60: indent, "");
    s_print_error (prefix, json_object_get (child, "error"), "\n");
    json_t *steps = json_object_get (child, "steps");
    if (json_is_array (steps))
        s_print_steps (steps, indent + 3);
}

static int
s_show_status (s_flow_t *self, json_t *status)
{
    //  A status always names its flow and state: anything else is no
    //  status, never a blank one
    if (!json_is_string (json_object_get (status, "id"))
    ||  !json_is_string (json_object_get (status, "state")))
        return s_unexpected (self, status);
    char started [40], finished [40];
    printf ("%s  %s v%lld  %s  started %s  finished %s\n", s_text (status, "id"),
            s_text (status, "flow"),
            (long long) json_integer_value (json_object_get (status, "version")),
            s_text (status, "state"), s_time (status, "started", started, sizeof (started)),
            s_time (status, "finished", finished, sizeof (finished)));
    s_print_error ("  error: ", json_object_get (status, "error"), "\n");
    json_t *output = json_object_get (status, "output");
    if (output && !json_is_null (output)) {
        char *text = json_dumps (output, JSON_COMPACT | JSON_ENCODE_ANY);
        printf ("  output: %s\n", text? s_clip (text, S_CLIP): "null");
        free (text);
    }
    s_print_steps (json_object_get (status, "steps"), 2);
    return CHORUS_CLI_OK;
}

//  One line per step, and per item of a page of a fan-out, each followed
//  by the tree of its child flow, if it runs one
static void
s_print_steps (json_t *steps, int indent)
{
    int width = 4;
    size_t index;
    json_t *step;
    json_array_foreach (steps, index, step) {
        size_t length = json_string_length (json_object_get (step, "id"));
        width = length > (size_t) width? (int) length: width;
    }
    json_array_foreach (steps, index, step) {
        s_print_task (indent, s_text (step, "id"), width, step);
        s_print_child (json_object_get (step, "child"), indent + 2);
        json_t *counts = json_object_get (step, "counts");
        json_t *items = json_object_get (step, "items");
        if (json_is_object (counts)) {
            //  A fan-out: its counts per state, then the page of items
            long long total = json_integer_value (json_object_get (step, "items_total"));
            long long from = json_integer_value (json_object_get (step, "items_from"));
            printf ("%*s%lld items:", indent + 2, "", total);
            const char *state;
            json_t *count;
            json_object_foreach (counts, state, count)
                printf (" %s %lld", state, (long long) json_integer_value (count));
            if (json_array_size (items))
                printf ("; items %lld..%lld below", from,
                        from + (long long) json_array_size (items) - 1);
            if (total > (long long) json_array_size (items))
                printf (" (--items FROM..TO for others)");
            printf ("\n");
        }
        size_t item_index;
        json_t *item;
        json_array_foreach (items, item_index, item) {
            char label [32];
            snprintf (label, sizeof (label), "[%lld]",
                      (long long) json_integer_value (json_object_get (item, "item")));
            s_print_task (indent + 2, label, width - 2, item);
            s_print_child (json_object_get (item, "child"), indent + 4);
        }
    }
}

//  --------------------------------------------------------------------------
//  flow start

//  Polls the flow's status until it ends or the deadline passes
static int
s_wait (s_flow_t *self, const char *id, int64_t deadline)
{
    json_t *status = NULL;
    int rc = CHORUS_CLI_CONTINUE;
    while (rc == CHORUS_CLI_CONTINUE) {
        json_decref (status);
        rc = s_call (self, "flow.status", json_pack ("{s:s}", "id", id),
                     s_reply_ms (self), NULL, &status);
        const char *state = json_string_value (json_object_get (status, "state"));
        if (rc != CHORUS_CLI_OK)
            break;
        if (!state)
            rc = s_unexpected (self, status);
        else
        if (s_among (state, s_terminal)) {
            if (self->cli.json)
                rc = s_print_json (self, json_incref (status));
            else
                s_print_outcome (status);
            if (rc == CHORUS_CLI_OK && !streq (state, "completed"))
                rc = CHORUS_CLI_FAILED;
        }
        else
        if (zclock_mono () + S_POLL_MS >= deadline) {
            chorus_cli_error (&self->cli, "%s still %s after %g s", id, state,
                              (self->timeout_ms >= 0? self->timeout_ms: S_WAIT_MS) / 1000.0);
            if (self->cli.json)
                s_print_json (self, json_incref (status));
            else
                printf ("%s\n", id);
            rc = S_STILL_RUNNING;
        }
        else
        if ((rc = chorus_node_run (self->node, S_POLL_MS)) == CHORUS_EINTERRUPTED) {
            chorus_cli_error (&self->cli, "interrupted while %s was %s", id, state);
            rc = CHORUS_CLI_INTERRUPTED;
        }
        else
        if (rc < 0) {
            chorus_cli_failed (&self->cli, self->node, rc, "while %s was %s", id, state);
            rc = chorus_cli_failure (rc);
        }
        else
            rc = CHORUS_CLI_CONTINUE;
    }
    json_decref (status);
    return rc;
}

static int
s_start (s_flow_t *self)
{
    json_t *request = json_pack ("{s:s}", "flow", self->args [0]);
    if (self->args_size > 1) {
        json_error_t error;
        json_t *input = json_loads (self->args [1], JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                                    &error);
        if (!input) {
            json_decref (request);
            return chorus_cli_usage_error (&self->cli, "JSON argument: line %d column %d: %s",
                                           error.line, error.column, error.text);
        }
        json_object_set_new (request, "input", input);
    }
    //  The flow is NAME-ID: the coordinator finds it by --id, so the same
    //  --id finds the same flow, even after it ended. The idempotency key
    //  is this invocation's own: a re-send of this start gets its reply,
    //  and no other start (another flow, or later) is taken for it.
    //  Without --id the key names the flow.
    if (self->key)
        json_object_set_new (request, "id", json_string (self->key));
    zuuid_t *uuid = zuuid_new ();
    int64_t deadline = zclock_mono () + (self->timeout_ms >= 0? self->timeout_ms: S_WAIT_MS);
    json_t *reply;
    int rc = s_call (self, "flow.start", request, s_reply_ms (self), zuuid_str (uuid), &reply);
    zuuid_destroy (&uuid);
    const char *id = json_string_value (json_object_get (reply, "id"));
    if (rc == CHORUS_CLI_OK && !id)
        rc = s_unexpected (self, reply);
    else
    if (rc == CHORUS_CLI_OK && self->wait)
        rc = s_wait (self, id, deadline);
    else
    if (rc == CHORUS_CLI_OK && self->cli.json)
        rc = s_print_json (self, json_incref (reply));
    else
    if (rc == CHORUS_CLI_OK)
        printf ("%s\n", id);
    json_decref (reply);
    return rc;
}

//  flow signal FLOW-ID NAME [JSON]: the signal's id is --id, else this
//  invocation's idempotency key, so that a re-send of it (by the node) is
//  the same signal, and --id makes a retried invocation the same too
static int
s_signal (s_flow_t *self)
{
    const char *name = self->args [1];
    if (!chorus_flow_signal_name_ok (name))
        return chorus_cli_usage_error (&self->cli, "bad signal name '%s': use 1 to 64 of "
                                       "A-Z a-z 0-9 . _ -", name);
    json_t *request = json_pack ("{s:s, s:s}", "id", self->args [0], "name", name);
    if (self->args_size > 2) {
        json_error_t error;
        json_t *payload = json_loads (self->args [2], JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
                                      &error);
        if (!payload) {
            json_decref (request);
            return chorus_cli_usage_error (&self->cli, "JSON argument: line %d column %d: %s",
                                           error.line, error.column, error.text);
        }
        json_object_set_new (request, "payload", payload);
    }
    zuuid_t *uuid = zuuid_new ();
    json_object_set_new (request, "signal_id", json_string (self->key? self->key:
                                                            zuuid_str (uuid)));
    json_t *reply;
    int rc = s_call (self, "flow.signal", request, s_reply_ms (self), zuuid_str (uuid), &reply);
    zuuid_destroy (&uuid);
    if (rc == CHORUS_CLI_FAILED && streq (self->cli.reply_code, "ended"))
        rc = S_ENDED;
    const char *state = json_string_value (json_object_get (reply, "state"));
    if (rc == CHORUS_CLI_OK && !state)
        rc = s_unexpected (self, reply);
    else
    if (rc == CHORUS_CLI_OK && self->cli.json)
        rc = s_print_json (self, json_incref (reply));
    else
    if (rc == CHORUS_CLI_OK) {
        const char *step = json_string_value (json_object_get (reply, "step"));
        printf ("%s %s %s%s%s\n", s_text (reply, "id"), name, step? "taken by step ": "kept",
                step? step: "", json_is_true (json_object_get (reply, "existing"))
                ? " (sent before)": "");
    }
    json_decref (reply);
    return rc;
}

//  --------------------------------------------------------------------------
//  The other subcommands: one command each, its reply shown

static int
s_show_list (s_flow_t *self, json_t *reply)
{
    if (!json_is_array (reply))
        return s_unexpected (self, reply);
    int id_width = 2, flow_width = 4;
    size_t index;
    json_t *flow;
    json_array_foreach (reply, index, flow) {
        size_t id = json_string_length (json_object_get (flow, "id"));
        size_t name = json_string_length (json_object_get (flow, "flow"));
        id_width = id > (size_t) id_width? (int) id: id_width;
        flow_width = name > (size_t) flow_width? (int) name: flow_width;
    }
    if (!self->cli.json)
        printf ("%-*s  %-*s  VERSION  %-12s STARTED\n", id_width, "ID", flow_width, "FLOW",
                "STATE");
    json_array_foreach (reply, index, flow) {
        if (self->cli.json) {
            if (s_print_json (self, json_incref (flow)))
                return CHORUS_CLI_FAILED;
            continue;
        }
        char started [40];
        printf ("%-*s  %-*s  %-7lld  %-12s %s\n", id_width, s_text (flow, "id"), flow_width,
                s_text (flow, "flow"),
                (long long) json_integer_value (json_object_get (flow, "version")),
                s_text (flow, "state"), s_time (flow, "started", started, sizeof (started)));
    }
    return CHORUS_CLI_OK;
}

//  The loaded definitions, one per line, then the last reload's error
static int
s_show_defs (s_flow_t *self, json_t *reply)
{
    json_t *defs = json_object_get (reply, "definitions");
    if (!json_is_array (defs))
        return s_unexpected (self, reply);
    int flow_width = 4, trigger_width = 7, file_width = 4;
    size_t index;
    json_t *def;
    json_array_foreach (defs, index, def) {
        size_t flow = json_string_length (json_object_get (def, "flow"));
        size_t trigger = json_string_length (json_object_get (def, "trigger"));
        size_t file = json_string_length (json_object_get (def, "file"));
        flow_width = flow > (size_t) flow_width? (int) flow: flow_width;
        trigger_width = trigger > (size_t) trigger_width? (int) trigger: trigger_width;
        file_width = file > (size_t) file_width? (int) file: file_width;
    }
    char when [40];
    printf ("flows directory %s, loaded %s\n", s_text (reply, "directory"),
            s_time (reply, "loaded", when, sizeof (when)));
    printf ("%-*s  VERSION  NEWEST  %-*s  %-*s  LOADED\n", flow_width, "FLOW", trigger_width,
            "TRIGGER", file_width, "FILE");
    json_array_foreach (defs, index, def)
        printf ("%-*s  %-7lld  %-6s  %-*s  %-*s  %s\n", flow_width, s_text (def, "flow"),
                (long long) json_integer_value (json_object_get (def, "version")),
                json_is_true (json_object_get (def, "newest"))? "yes": "no", trigger_width,
                s_text (def, "trigger"), file_width, s_text (def, "file"),
                s_time (def, "loaded", when, sizeof (when)));
    json_t *error = json_object_get (reply, "error");
    if (error) {
        char message [1024];
        snprintf (message, sizeof (message), "%s", s_text (error, "message"));
        printf ("the last reload, %s, failed: %s\n", s_time (error, "time", when, sizeof (when)),
                s_clip (message, sizeof (message) - 1));
    }
    return CHORUS_CLI_OK;
}

//  flow cancel and flow retry: the new state
static int
s_show_state (s_flow_t *self, json_t *reply)
{
    const char *state = json_string_value (json_object_get (reply, "state"));
    if (!state)
        return s_unexpected (self, reply);
    printf ("%s\n", state);
    return CHORUS_CLI_OK;
}

//  Prints event index and, indented under it, the events it caused
static void
s_print_event (json_t *events, size_t index, int depth, bool *printed)
{
    json_t *event = json_array_get (events, index);
    char clock [32] = "--:--:--.---";
    json_t *time = json_object_get (event, "time");
    if (json_is_integer (time))
        chorus_cli_time_clock ((uint64_t) json_integer_value (time), clock, sizeof (clock));
    int indent = depth > 40? 80: depth * 2;
    if (streq (s_text (event, "kind"), "command")) {
        //  A try of a command the coordinator sent
        json_t *error = json_object_get (event, "error");
        printf ("%*s%s > %s %s try %lld %s in %lld ms%s%s%s%s, flow %s\n", indent, "", clock,
                s_text (event, "service"), s_text (event, "command"),
                (long long) json_integer_value (json_object_get (event, "attempt")),
                s_text (event, "outcome"),
                (long long) json_integer_value (json_object_get (event, "duration_ms")),
                json_is_object (error)? ": ": "", json_is_object (error)? s_text (error, "code"): "",
                json_is_object (error)? ": ": "",
                json_is_object (error)? s_text (error, "message"): "", s_text (event, "flow"));
    }
    else
        printf ("%*s%s %s %s #%lld %s\n", indent, "", clock, s_text (event, "service"),
                s_text (event, "topic"),
                (long long) json_integer_value (json_object_get (event, "seq")),
                s_text (event, "id"));
    printed [index] = true;
    const char *id = json_string_value (json_object_get (event, "id"));
    for (size_t child = 0; id && child < json_array_size (events); child++) {
        json_t *cause = json_object_get (json_array_get (events, child), "causation");
        if (!printed [child] && json_is_string (cause) && streq (json_string_value (cause), id))
            s_print_event (events, child, depth + 1, printed);
    }
}

//  The causal tree: roots are the events caused by none in the trace.
//  Events in a causal loop (forged) have no root, and come flat after.
static int
s_show_trace (s_flow_t *self, json_t *reply)
{
    json_t *observed = json_object_get (reply, "events");
    json_t *sent = json_object_get (reply, "commands");
    if (!json_is_array (observed))
        return s_unexpected (self, reply);
    //  The events and the commands the coordinator sent, merged in time
    //  order (each list comes in time order)
    json_t *events = json_array ();
    size_t next_event = 0, next_command = 0;
    while (next_event < json_array_size (observed) || next_command < json_array_size (sent)) {
        json_t *event = json_array_get (observed, next_event);
        json_t *command = json_array_get (sent, next_command);
        if (!command || (event && json_integer_value (json_object_get (event, "time"))
                                  <= json_integer_value (json_object_get (command, "time")))) {
            json_array_append (events, event);
            next_event++;
        }
        else {
            json_array_append (events, command);
            next_command++;
        }
    }
    size_t size = json_array_size (events);
    bool *printed = (bool *) zmalloc ((size + 1) * sizeof (bool));
    zhashx_t *ids = zhashx_new ();
    for (size_t index = 0; index < size; index++) {
        const char *id = json_string_value (json_object_get (json_array_get (events, index), "id"));
        if (id)
            zhashx_insert (ids, id, (void *) 1);
    }
    for (size_t index = 0; index < size; index++) {
        json_t *event = json_array_get (events, index);
        const char *cause = json_string_value (json_object_get (event, "causation"));
        const char *id = json_string_value (json_object_get (event, "id"));
        bool root = !cause || !zhashx_lookup (ids, cause) || (id && streq (cause, id));
        if (root && !printed [index])
            s_print_event (events, index, 0, printed);
    }
    for (size_t index = 0; index < size; index++)
        if (!printed [index])
            s_print_event (events, index, 0, printed);
    zhashx_destroy (&ids);
    free (printed);
    json_decref (events);
    return CHORUS_CLI_OK;
}

//  Sends the subcommand's command and shows the reply: as JSON with
//  --json (a list: one line per flow), else in human form
static int
s_query (s_flow_t *self)
{
    json_t *request = self->sub->field? json_pack ("{s:s}", self->sub->field, self->args [0])
                                      : json_pack ("{s:s?}", "state", self->state);
    if (self->items_from >= 0) {
        json_object_set_new (request, "from", json_integer (self->items_from));
        json_object_set_new (request, "to", json_integer (self->items_to));
    }
    json_t *reply;
    int rc = s_call (self, self->sub->command, request, s_reply_ms (self), NULL, &reply);
    if (rc == CHORUS_CLI_OK)
        rc = self->cli.json && self->sub->show != s_show_list
           ? s_print_json (self, json_incref (reply)): self->sub->show (self, reply);
    json_decref (reply);
    return rc;
}

//  --------------------------------------------------------------------------
//  Usage and options

#define S_TIMEOUT_HELP \
    "  --timeout SECONDS  give up waiting for the coordinator's reply (default 10)\n"
#define S_JSON_HELP "  --json             print the reply's JSON instead of text\n"
#define S_NOT_FOUND "1 error reply (not-found, bad-state), 2 bad usage, 4 no reply."

static const s_sub_t s_subs [] = {
    { "start", "flow.start", NULL, NULL, s_start_options, 1, 2, "NAME",
      "start NAME [JSON] [--wait] [--timeout SECONDS] [--id KEY]",
      "Start the flow NAME with JSON as its input and print the flow's id (the\n"
      "coordinator's reply with --json: {\"id\", \"existing\", \"state\"}). The\n"
      "flow's id is NAME-KEY: starting NAME again with the same --id finds that\n"
      "flow as it is now (existing true, its current state), also after it\n"
      "ended or the coordinator restarted, while the coordinator keeps it (see\n"
      "chorus-coordinator --keep); another NAME with the same KEY is another\n"
      "flow. KEY is 1 to 128 of A-Z a-z 0-9 - _ . : @ + = ~ (no '/', no\n"
      "whitespace, no control characters); a longer one is digested in the id.\n"
      "A flow with a business key (FLOWS.md) has one live flow per key: a\n"
      "string, or an integer taken as its digits (1 and \"1\" are the same key),\n"
      "with the same characters as KEY; any other value is a bad-key error.\n\n"
      "  --wait             wait until the flow ends, then print \"ID STATE in N ms\"\n"
      "                     and, on a line of its own, the flow's output as JSON\n"
      "                     when its definition has one (its status with --json)\n"
      "  --timeout SECONDS  with --wait: give up waiting for the flow (default 60);\n"
      "                     without: for the reply (default 10)\n"
      "  --id KEY           the flow's start id (default: a new uuid)\n"
      "  --correlation ID   correlation id of the flow's transaction (default: new)\n"
      S_JSON_HELP,
      "0 started or found (--wait: completed), 1 error reply\n"
      "(unknown-flow, bad-id, bad-key, conflict: NAME-KEY is a flow of another\n"
      "NAME, too-big), or the flow failed, was cancelled or is stuck, 2 bad usage\n"
      "(a bad --id among them), 3 the flow did not end before --timeout, 4 no reply.",
      "start a flow, and with --wait wait until it ends" },
    { "status", "flow.status", "id", s_show_status, s_status_options, 1, 1, "ID",
      "status ID [--items FROM..TO] [--json]",
      "Print a flow's state and times, its output once it completed (when its\n"
      "definition has one), then one line per step: its state,\n"
      "attempts, last error and output. A for_each step shows its number of\n"
      "items and how many are in each state, then one line per item of a\n"
      "page: items 0..99 unless --items says which (each output is shown in\n"
      "its item, once). A step that runs a flow (a sub-flow) shows its child\n"
      "flow under it, or under each item: \"-> ID  FLOW vN  STATE\", then the\n"
      "child's steps, indented, down to the grandchildren and beyond.\n\n"
      "  --items FROM..TO   the items FROM to TO (indexes from 0, both included)\n"
      "                     of each for_each step\n"
      S_TIMEOUT_HELP S_JSON_HELP,
      "0 shown, 1 error reply (not-found, bad-request, too-big:\n"
      "the status is over the payload limit, ask for fewer items), 2 bad usage,\n"
      "4 no reply.",
      "show a flow's state and its steps" },
    { "list", "flow.list", NULL, s_show_list, s_list_options, 0, 0, NULL,
      "list [--state STATE] [--json]",
      "List the flows the coordinator runs or keeps: ID FLOW VERSION STATE STARTED,\n"
      "or with --json one JSON object per flow per line.\n\n"
      "  --state STATE      only flows in STATE: running, compensating, completed,\n"
      "                     failed, cancelled or stuck\n"
      S_TIMEOUT_HELP S_JSON_HELP,
      "0 listed, 1 error reply, 2 bad usage, 4 no reply.",
      "list the flows" },
    { "cancel", "flow.cancel", "id", s_show_state, s_common_options, 1, 1, "ID",
      "cancel ID",
      "Cancel a running flow: no step starts any more, and its completed steps\n"
      "are compensated. Prints the flow's new state.\n\n"
      S_TIMEOUT_HELP S_JSON_HELP,
      "0 cancelled, " S_NOT_FOUND,
      "cancel a running flow" },
    { "retry", "flow.retry", "id", s_show_state, s_common_options, 1, 1, "ID",
      "retry ID",
      "Run a failed or cancelled flow again from the step that failed, or try a\n"
      "stuck flow's compensations again. Prints the flow's new state.\n\n"
      S_TIMEOUT_HELP S_JSON_HELP,
      "0 retried, " S_NOT_FOUND,
      "run a failed, cancelled or stuck flow again" },
    { "signal", "flow.signal", NULL, NULL, s_signal_options, 2, 3, "FLOW-ID and NAME",
      "signal FLOW-ID NAME [JSON] [--id KEY]",
      "Send the running flow FLOW-ID the signal NAME with JSON as its payload\n"
      "(none: null). An await step of the flow waiting for NAME completes with\n"
      "the payload as its output; when none waits yet, the flow keeps the signal\n"
      "until one takes it (the oldest first) or the flow ends. Prints \"FLOW-ID\n"
      "NAME taken by step STEP\" or \"FLOW-ID NAME kept\" (the coordinator's reply\n"
      "with --json: {\"id\", \"state\", \"signal\", \"signal_id\", \"existing\",\n"
      "\"step\"}). NAME is 1 to 64 of A-Z a-z 0-9 . _ -.\n\n"
      "  --id KEY           the signal's id (default: a new uuid): the flow takes\n"
      "                     a signal id once, so sending again with the same --id\n"
      "                     is the same signal, answered as it went (\"(sent\n"
      "                     before)\", existing true); KEY as for flow start --id\n"
      S_TIMEOUT_HELP S_JSON_HELP,
      "0 taken or kept (or sent before with the same --id), 1 error\n"
      "reply (not-found, bad-request, bad-id, full: the flow keeps 1024 events and\n"
      "signals at most), 2 bad usage (a bad NAME, --id or JSON among them), 3 the\n"
      "flow has ended (completed, failed or cancelled) or is compensating or stuck:\n"
      "it takes no signals (error reply 'ended'), 4 no reply.",
      "send a running flow a signal that an await step waits for" },
    { "trace", "flow.trace", "correlation", s_show_trace, s_common_options, 1, 1, "CORRELATION-ID",
      "trace CORRELATION-ID [--json]",
      "Print the events of a transaction that the coordinator observed, and the\n"
      "commands it sent for the transaction's flows, in time order, each under\n"
      "what caused it: an event as HH:MM:SS.mmm SERVICE TOPIC #SEQ ID; a try of a\n"
      "command, under the event that started its flow, as HH:MM:SS.mmm > SERVICE\n"
      "COMMAND try N OUTCOME in MS ms[: CODE: MESSAGE], flow FLOW (OUTCOME done,\n"
      "error, timeout or unsent; once it is known). Commands that other services\n"
      "send one another do not pass the coordinator and are not shown.\n\n"
      S_TIMEOUT_HELP S_JSON_HELP,
      "0 shown, 1 error reply, 2 bad usage, 4 no reply.",
      "print the causal tree of a transaction's events and commands" },
    { "defs", "flow.defs", NULL, s_show_defs, s_common_options, 0, 0, NULL,
      "defs [--json]",
      "List the flow definitions the coordinator loaded from its flows directory:\n"
      "FLOW VERSION NEWEST TRIGGER FILE LOADED, one per file. New flows of a name\n"
      "start on its NEWEST version (the highest); LOADED is when that version was\n"
      "first loaded from that file. The coordinator loads the directory again on\n"
      "SIGHUP and within a second of a change to its files, all of it or nothing:\n"
      "when the last reload failed, a last line says when and why (file:line:column)\n"
      "and the definitions listed are those still in force.\n\n"
      S_TIMEOUT_HELP S_JSON_HELP,
      "0 listed (also after a failed reload), 1 error reply, 2 bad\n"
      "usage, 4 no reply.",
      "list the loaded flow definitions and the last reload's error" },
};
#define S_SUBS (sizeof (s_subs) / sizeof (s_subs [0]))

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: chorus flow SUBCOMMAND [ARGS...] [OPTIONS]\n"
        "\n"
        "Drive the flows of the coordinator (chorus-coordinator) on the mesh.\n"
        "\n"
        "Subcommands:\n");
    for (size_t index = 0; index < S_SUBS; index++)
        fprintf (out, "  %-7s %s\n", s_subs [index].name, s_subs [index].summary);
    fprintf (out, "\nRun 'chorus flow SUBCOMMAND --help' for its options. Every subcommand\n"
                  "joins the mesh named by --mesh NAME or CHORUS_MESH (default 'default').\n");
}

static void
s_sub_usage (const s_sub_t *sub, FILE *out)
{
    fprintf (out, "usage: chorus flow %s\n\n%s", sub->synopsis, sub->help);
    chorus_cli_print_mesh_help (out, "none, a temporary store");
    fprintf (out, "\nExit status: %s\n", sub->exit_status);
}

static int
s_option (s_flow_t *self, int opt, char **argv)
{
    switch (opt) {
        case S_OPT_WAIT: self->wait = true; break;
        case S_OPT_ID: {
            char error [256];
            if (chorus_flow_check_key ("--id", optarg, error, sizeof (error)))
                return chorus_cli_usage_error (&self->cli, "%s", error);
            self->key = optarg;
            break;
        }
        case S_OPT_ITEMS: {
            char *end = NULL;
            long long from = strtoll (optarg, &end, 10), to = -1;
            if (end && end != optarg && end [0] == '.' && end [1] == '.' && *optarg != '-') {
                const char *last = end + 2;
                to = *last == '-' || *last == '+'? -1: strtoll (last, &end, 10);
                if (end == last || *end)
                    to = -1;
            }
            if (to < 0 || to < from)
                return chorus_cli_usage_error (&self->cli, "--items: '%s' is not FROM..TO, two "
                                               "indexes from 0 with FROM <= TO", optarg);
            self->items_from = from;
            self->items_to = to;
            break;
        }
        case S_OPT_CORRELATION: self->correlation = optarg; break;
        case S_OPT_STATE:
            if (!s_among (optarg, s_states))
                return chorus_cli_usage_error (&self->cli, "--state: unknown state '%s'", optarg);
            self->state = optarg;
            break;
        case S_OPT_TIMEOUT:
            if (chorus_cli_parse_seconds (&self->cli, "--timeout", optarg, 0.001,
                                          &self->timeout_ms))
                return CHORUS_CLI_USAGE;
            break;
        case CHORUS_CLI_OPT_HELP:
        case CHORUS_CLI_OPT_LONG_HELP:
            s_sub_usage (self->sub, stdout);
            return CHORUS_CLI_OK;
        default:
            return chorus_cli_option (&self->cli, opt, argv);
    }
    return CHORUS_CLI_CONTINUE;
}

static int
s_parse (s_flow_t *self, int argc, char **argv)
{
    int opt;
    while ((opt = getopt_long (argc, argv, CHORUS_CLI_SHORT_OPTIONS, self->sub->options,
                               NULL)) != -1) {
        int rc = s_option (self, opt, argv);
        if (rc != CHORUS_CLI_CONTINUE)
            return rc;
    }
    if (chorus_cli_check (&self->cli) != CHORUS_CLI_CONTINUE)
        return CHORUS_CLI_USAGE;
    self->args = argv + optind;
    self->args_size = argc - optind;
    if (self->args_size < self->sub->min_args)
        return chorus_cli_usage_error (&self->cli, "missing %s", self->sub->missing);
    if (self->args_size > self->sub->max_args)
        return chorus_cli_usage_error (&self->cli, "unexpected argument '%s'",
                                       self->args [self->sub->max_args]);
    return CHORUS_CLI_CONTINUE;
}

int
chorus_cmd_flow (int argc, char **argv)
{
    const char *name = argc > 1? argv [1]: NULL;
    if (!name || streq (name, "-h") || streq (name, "--help")) {
        s_usage (name? stdout: stderr);
        return name? CHORUS_CLI_OK: CHORUS_CLI_USAGE;
    }
    const s_sub_t *sub = NULL;
    for (size_t index = 0; index < S_SUBS && !sub; index++)
        if (streq (s_subs [index].name, name))
            sub = &s_subs [index];
    if (!sub) {
        fprintf (stderr, "chorus flow: unknown %s '%s' (see chorus flow --help)\n",
                 *name == '-'? "option": "subcommand", name);
        return CHORUS_CLI_USAGE;
    }
    s_flow_t self = { .sub = sub, .timeout_ms = -1, .items_from = -1 };
    snprintf (self.name, sizeof (self.name), "flow %s", sub->name);
    chorus_cli_init (&self.cli, self.name, s_usage);
    int status = s_parse (&self, argc - 1, argv + 1);
    if (status == CHORUS_CLI_CONTINUE)
        status = sub->show? s_query (&self): streq (sub->name, "signal")? s_signal (&self)
                                            : s_start (&self);
    //  Text went out with printf: a closed pipe shows only now
    if (fflush (stdout) && status == CHORUS_CLI_OK) {
        chorus_cli_error (&self.cli, "cannot print the reply");
        status = CHORUS_CLI_FAILED;
    }
    chorus_node_destroy (&self.node);
    chorus_cli_release (&self.cli);
    return status;
}
