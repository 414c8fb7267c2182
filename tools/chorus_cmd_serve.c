/*  chorus_cmd_serve.c — `chorus serve` and `chorus on`: bridge a shell
    command into the mesh, as a service's command handler or as a group's
    event handler, so that a program in any language can take part.
*/
#include "chorus_cli.h"
#include "chorus_json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

//  Most bytes of a failed command's stderr that go into the error reply
#define S_MESSAGE_MAX 4000
//  A reply payload's protocol limit
#define S_PAYLOAD_MAX (1024 * 1024)

enum {
    S_OPT_HANDLE = CHORUS_CLI_OPT_OWN,
    S_OPT_GROUP,
    S_OPT_EXEC,
    S_OPT_EARLIEST,
    S_OPT_WORKERS,
    S_OPT_PERSISTENT
};

//  Most --workers
#define S_WORKERS_MAX 256

typedef struct _s_bridge_t s_bridge_t;

//  One --handle COMMAND=SHELL-COMMAND, or --handle COMMAND for --persistent
typedef struct {
    char *command;                  //  the command's name
    const char *shell;              //  what runs it, in the same allocation; NULL
                                    //  for a command the --persistent children answer
    s_bridge_t *bridge;             //  the run it belongs to
} s_handler_t;

//  One run of either subcommand
struct _s_bridge_t {
    chorus_cli_t cli;               //  shared options
    const char *target;             //  serve: SERVICE; on: TOPIC-PREFIX
    zlist_t *handlers;              //  serve: s_handler_t, one per --handle
    const char *group;              //  on: --group
    const char *shell;              //  on: --exec
    bool earliest;                  //  on: --earliest
    int workers;                    //  --workers: handlers running at once
    const char *persistent;         //  --persistent: the long-lived handlers' command
    chorus_node_t *node;            //  our node
    chorus_cli_pool_t *pool;        //  the handlers' processes
};

//  A message handed to the pool, answered when its job ends
typedef struct {
    chorus_deferred_t *deferred;    //  the event or command, and its reply
    s_handler_t *handler;           //  serve: the command's --handle
    int64_t started;                //  when it came (zclock_mono)
} s_pending_t;

//  --------------------------------------------------------------------------
//  Options

static const struct option s_serve_options [] = {
    { "handle", required_argument, NULL, S_OPT_HANDLE },
    { "workers", required_argument, NULL, S_OPT_WORKERS },
    { "persistent", required_argument, NULL, S_OPT_PERSISTENT },
    CHORUS_CLI_MESH_OPTIONS,
    { NULL, 0, NULL, 0 }
};

static const struct option s_on_options [] = {
    { "group", required_argument, NULL, S_OPT_GROUP },
    { "exec", required_argument, NULL, S_OPT_EXEC },
    { "earliest", no_argument, NULL, S_OPT_EARLIEST },
    { "workers", required_argument, NULL, S_OPT_WORKERS },
    { "persistent", required_argument, NULL, S_OPT_PERSISTENT },
    CHORUS_CLI_MESH_OPTIONS,
    { NULL, 0, NULL, 0 }
};

//  What --persistent handlers are told about lines, serve and on alike
static void
s_lines_usage (FILE *out)
{
    fprintf (out,
        "  A handler gets its next request only once it has answered the one\n"
        "  before, so it handles one at a time; --workers N runs N of them. It\n"
        "  must flush stdout after each reply. Members not named here are\n"
        "  ignored. Its stderr and environment are ours. Start it with exec\n"
        "  (--persistent 'exec ./handler') so that the process watched, and\n"
        "  named in warnings, is the handler itself. End of its stdin means\n"
        "  stop: a handler still running 2 s later is killed.\n"
        "\n"
        "  What may go wrong, and what follows:\n");
}

static void
s_serve_usage (FILE *out)
{
    fprintf (out,
        "usage: chorus serve SERVICE --handle COMMAND=SHELL-COMMAND... [OPTIONS]\n"
        "       chorus serve SERVICE --persistent SHELL-COMMAND --handle COMMAND...\n"
        "                    [OPTIONS]\n"
        "\n"
        "Join the mesh as an instance of SERVICE and answer each COMMAND, until\n"
        "interrupted (SIGINT or SIGTERM).\n"
        "\n"
        "A process per command: --handle COMMAND=SHELL-COMMAND runs /bin/sh -c\n"
        "SHELL-COMMAND for each COMMAND. The command's payload comes as JSON on\n"
        "stdin (null for none), with CHORUS_COMMAND, CHORUS_COMMAND_ID,\n"
        "CHORUS_IDEMPOTENCY_KEY, CHORUS_CORRELATION_ID and CHORUS_ATTEMPT in the\n"
        "environment (CHORUS_ATTEMPT: the sender's try of this work, from 1; a\n"
        "retry, such as a flow's next try of a step, comes with the same\n"
        "idempotency key and the next number). Its stdout (JSON; empty means no\n"
        "payload) is the reply. A\n"
        "non-zero exit is an error reply with code exit-N and its stderr as the\n"
        "message (retryable); stdout that is not JSON is an error reply with\n"
        "code bad-output (permanent).\n"
        "\n"
        "Long-lived handlers: --persistent SHELL-COMMAND starts /bin/sh -c\n"
        "SHELL-COMMAND --workers times, and each handler answers the commands\n"
        "named by --handle COMMAND one after another, one line of JSON each way\n"
        "(UTF-8, one object, ended by a newline):\n"
        "\n"
        "  request, on its stdin:\n"
        "    {\"id\": COMMAND-ID, \"command\": NAME, \"idempotency\": KEY,\n"
        "     \"correlation\": ID, \"attempt\": N, \"deadline\": MS, \"payload\": JSON}\n"
        "    attempt: the sender's try, from 1, as CHORUS_ATTEMPT;\n"
        "    deadline: when the sender gives up, in ms since the epoch (0: never);\n"
        "    payload: null for none\n"
        "  reply, on its stdout, either\n"
        "    {\"id\": COMMAND-ID, \"payload\": JSON}\n"
        "    payload null or left out: a reply without one; or\n"
        "    {\"id\": COMMAND-ID, \"error\": {\"code\": TEXT, \"message\": TEXT,\n"
        "                                \"retryable\": BOOL}}\n"
        "    an error reply; message may be left out; retryable false says that\n"
        "    trying again cannot help (left out: true)\n"
        "\n");
    s_lines_usage (out);
    fprintf (out,
        "  - A line that is not a reply (not a JSON object, no \"id\" string,\n"
        "    an \"error\" without a \"code\" string, both \"payload\" and\n"
        "    \"error\"): the command gets the permanent error bad-output saying\n"
        "    why, a warning quotes the line, and the handler goes on.\n"
        "  - A line with the \"id\" of no request the handler has, or written\n"
        "    while it has none: a warning quotes it, and it is dropped.\n"
        "  - A line longer than 8 MiB, more than any reply can be: the command\n"
        "    gets bad-output, and the handler is killed and replaced.\n"
        "  - A handler that ends (it exits or is killed): a warning names its\n"
        "    pid and how it ended, and the command it was handling gets the\n"
        "    retryable error handler-died. Another handler starts 0.1 s later,\n"
        "    twice as late each time one ends again before it has answered\n"
        "    anything or run 10 s, up to 10 s.\n"
        "\n"
        "  --handle COMMAND=SHELL-COMMAND   a process per COMMAND; repeatable\n"
        "  --persistent SHELL-COMMAND       the long-lived handlers' command\n"
        "  --handle COMMAND                 with --persistent: COMMAND goes to the\n"
        "                                   long-lived handlers; repeatable\n"
        "  --workers N                      run up to N handlers at once, in any order\n"
        "                                   (default 1: one after the other)\n"
        "  --verbose                        also print a line per command handled\n");
    chorus_cli_print_mesh_help (out, "$XDG_DATA_HOME/chorus/serve-SERVICE");
}

static void
s_on_usage (FILE *out)
{
    fprintf (out,
        "usage: chorus on TOPIC-PREFIX --group GROUP --exec SHELL-COMMAND [OPTIONS]\n"
        "       chorus on TOPIC-PREFIX --group GROUP --persistent SHELL-COMMAND\n"
        "                 [OPTIONS]\n"
        "\n"
        "Join the mesh as an instance of GROUP, subscribe the group to every topic\n"
        "starting with TOPIC-PREFIX, and handle each event, until interrupted\n"
        "(SIGINT or SIGTERM). Each event reaches one instance of the group. An\n"
        "event is one line of JSON: {\"id\", \"topic\", \"key\", \"seq\",\n"
        "\"correlation\", \"causation\", \"service\", \"instance\", \"timestamp\",\n"
        "\"attempt\", \"payload\"}. Events with the same key are handled one at a\n"
        "time, in order, whatever --workers says.\n"
        "\n"
        "A process per event: --exec SHELL-COMMAND runs /bin/sh -c SHELL-COMMAND\n"
        "with the event on stdin, and CHORUS_TOPIC, CHORUS_KEY, CHORUS_SEQ,\n"
        "CHORUS_EVENT_ID, CHORUS_PUBLISHER, CHORUS_ATTEMPT and\n"
        "CHORUS_CORRELATION_ID in the environment. Exit 0 acknowledges the\n"
        "event; any other status rejects it, and it is delivered again later.\n"
        "The command's stdout and stderr are ours.\n"
        "\n"
        "Long-lived handlers: --persistent SHELL-COMMAND starts /bin/sh -c\n"
        "SHELL-COMMAND --workers times, and each handler handles one event after\n"
        "another, one line of JSON each way (UTF-8, one object, ended by a\n"
        "newline):\n"
        "\n"
        "  request, on its stdin: the event's line\n"
        "  reply, on its stdout, either\n"
        "    {\"id\": EVENT-ID}\n"
        "    handled: the event is acknowledged; or\n"
        "    {\"id\": EVENT-ID, \"error\": {\"code\": TEXT, \"message\": TEXT,\n"
        "                              \"retryable\": BOOL}}\n"
        "    not handled: the event is rejected and delivered again later; with\n"
        "    retryable false (trying again cannot help) it is acknowledged all\n"
        "    the same, and a warning names it. message may be left out;\n"
        "    retryable left out is true.\n"
        "\n");
    s_lines_usage (out);
    fprintf (out,
        "  - A line that is not a reply (not a JSON object, no \"id\" string,\n"
        "    an \"error\" without a \"code\" string): the event is rejected and\n"
        "    delivered again, a warning says why and quotes the line, and the\n"
        "    handler goes on.\n"
        "  - A line with the \"id\" of no request the handler has, or written\n"
        "    while it has none: a warning quotes it, and it is dropped.\n"
        "  - A line longer than 8 MiB, more than any reply can be: the event is\n"
        "    rejected, and the handler is killed and replaced.\n"
        "  - A handler that ends (it exits or is killed): a warning names its\n"
        "    pid and how it ended, and the event it was handling is rejected\n"
        "    and delivered again. Another handler starts 0.1 s later, twice as\n"
        "    late each time one ends again before it has answered anything or\n"
        "    run 10 s, up to 10 s.\n"
        "\n"
        "  --group GROUP               the group (service) to join; required\n"
        "  --exec SHELL-COMMAND        what to run for each event\n"
        "  --persistent SHELL-COMMAND  long-lived handlers (instead of --exec)\n"
        "  --earliest                  a group new to this store starts with the oldest\n"
        "                              retained events, not with the next one published\n"
        "  --workers N                 run up to N handlers at once (default 1); events\n"
        "                              of one key still run one at a time, in order\n"
        "  --verbose                   also print a line per event handled\n");
    chorus_cli_print_mesh_help (out, "$XDG_DATA_HOME/chorus/on-GROUP");
}

static void
s_handler_destroy (void *item)
{
    s_handler_t *handler = (s_handler_t *) item;
    free (handler->command);
    free (handler);
}

//  --handle COMMAND=SHELL-COMMAND, or --handle COMMAND for --persistent
//  (checked once every option is read)
static int
s_add_handler (s_bridge_t *self, const char *text)
{
    const char *equals = strchr (text, '=');
    if (equals == text || !*text || (equals && !equals [1]))
        return chorus_cli_usage_error (&self->cli, "--handle '%s' is not COMMAND=SHELL-COMMAND "
                                       "or (with --persistent) COMMAND", text);
    s_handler_t *handler = calloc (1, sizeof (s_handler_t));
    char *command = strdup (text);
    if (!handler || !command) {
        free (handler);
        free (command);
        return CHORUS_CLI_FAILED;
    }
    if (equals) {
        command [equals - text] = 0;
        handler->shell = command + (equals - text) + 1;
    }
    handler->command = command;
    handler->bridge = self;
    zlist_append (self->handlers, handler);
    zlist_freefn (self->handlers, handler, s_handler_destroy, true);
    for (s_handler_t *other = zlist_first (self->handlers); other != handler;
         other = zlist_next (self->handlers))
        if (strcmp (other->command, command) == 0)
            return chorus_cli_usage_error (&self->cli, "two --handle for '%s'", command);
    return CHORUS_CLI_CONTINUE;
}

//  Either every --handle runs a command of its own, or --persistent
//  handlers answer them all
static int
s_check_handlers (s_bridge_t *self)
{
    if (zlist_size (self->handlers) == 0)
        return chorus_cli_usage_error (&self->cli, "nothing to serve: give --handle");
    for (s_handler_t *handler = zlist_first (self->handlers); handler;
         handler = zlist_next (self->handlers)) {
        if (self->persistent && handler->shell)
            return chorus_cli_usage_error (&self->cli, "--handle '%s=%s': with --persistent, "
                                           "--handle names a command only (--handle %s)",
                                           handler->command, handler->shell, handler->command);
        if (!self->persistent && !handler->shell)
            return chorus_cli_usage_error (&self->cli, "--handle '%s' has no SHELL-COMMAND: give "
                                           "--handle %s=SHELL-COMMAND, or --persistent",
                                           handler->command, handler->command);
    }
    return CHORUS_CLI_CONTINUE;
}

static int
s_option (s_bridge_t *self, int opt, char **argv)
{
    switch (opt) {
        case S_OPT_HANDLE: return s_add_handler (self, optarg);
        case S_OPT_GROUP: self->group = optarg; break;
        case S_OPT_EXEC: self->shell = optarg; break;
        case S_OPT_EARLIEST: self->earliest = true; break;
        case S_OPT_PERSISTENT:
            if (!*optarg)
                return chorus_cli_usage_error (&self->cli, "--persistent needs a SHELL-COMMAND");
            self->persistent = optarg;
            break;
        case S_OPT_WORKERS: {
            long long workers;
            if (chorus_cli_parse_int (&self->cli, "--workers", optarg, 1, S_WORKERS_MAX, &workers))
                return CHORUS_CLI_USAGE;
            self->workers = (int) workers;
            break;
        }
        default: return chorus_cli_option (&self->cli, opt, argv);
    }
    return CHORUS_CLI_CONTINUE;
}

static int
s_parse (s_bridge_t *self, int argc, char **argv, const struct option *options,
         const char *target_name)
{
    int opt;
    while ((opt = getopt_long (argc, argv, CHORUS_CLI_SHORT_OPTIONS, options, NULL)) != -1) {
        int rc = s_option (self, opt, argv);
        if (rc != CHORUS_CLI_CONTINUE)
            return rc;
    }
    if (chorus_cli_check (&self->cli) != CHORUS_CLI_CONTINUE)
        return CHORUS_CLI_USAGE;
    if (optind >= argc)
        return chorus_cli_usage_error (&self->cli, "missing %s", target_name);
    self->target = argv [optind++];
    if (optind < argc)
        return chorus_cli_usage_error (&self->cli, "unexpected argument '%s'", argv [optind]);
    return CHORUS_CLI_CONTINUE;
}

//  --------------------------------------------------------------------------
//  serve

//  A failed shell command as an error reply: its stderr says why
static void
s_fill_error (chorus_reply_t *reply, chorus_cli_shell_t *result)
{
    char code [32];
    snprintf (code, sizeof (code), "exit-%d", result->status);
    size_t size = result->err? chorus_cli_trim (result->err, result->err_size): 0;
    //  Cut at a character boundary, not inside a UTF-8 sequence
    while (size > S_MESSAGE_MAX || (size && ((unsigned char) result->err [size] & 0xc0) == 0x80))
        size--;
    if (size) {
        result->err [size] = 0;
        chorus_reply_set_error (reply, code, result->err, true);
    }
    else {
        char message [48];
        snprintf (message, sizeof (message), "exited with status %d", result->status);
        chorus_reply_set_error (reply, code, message, true);
    }
}

//  The shell command's result as the reply; says which it was
static const char *
s_fill_reply (chorus_reply_t *reply, chorus_cli_shell_t *result)
{
    if (result->status != 0) {
        s_fill_error (reply, result);
        return "failed";
    }
    size_t size = result->out? chorus_cli_trim (result->out, result->out_size): 0;
    if (size == 0)
        return "ok";
    void *data = NULL;
    size_t data_size = 0;
    char error [256];
    if (result->out_overflow)
        snprintf (error, sizeof (error), "stdout is longer than any reply can be");
    if (result->out_overflow
        || chorus_json_to_msgpack (result->out, size, S_PAYLOAD_MAX, &data, &data_size, error,
                                   sizeof (error))) {
        char message [320];
        snprintf (message, sizeof (message), "stdout is not a JSON reply: %s", error);
        chorus_reply_set_error (reply, "bad-output", message, false);
        return "bad-output";
    }
    chorus_reply_set_payload (reply, data, data_size);
    free (data);
    return "ok";
}

static zlist_t *
s_command_env (chorus_command_t *command)
{
    zlist_t *env = zlist_new ();
    zlist_autofree (env);
    chorus_cli_env_add (env, "CHORUS_COMMAND", chorus_command_name (command));
    chorus_cli_env_add (env, "CHORUS_COMMAND_ID", chorus_command_id (command));
    chorus_cli_env_add (env, "CHORUS_IDEMPOTENCY_KEY", chorus_command_idempotency (command));
    chorus_cli_env_add (env, "CHORUS_CORRELATION_ID", chorus_command_correlation (command));
    chorus_cli_env_add_number (env, "CHORUS_ATTEMPT", chorus_command_attempt (command));
    return env;
}

//  A command as a --persistent handler's request line; NULL if out of memory
static char *
s_command_line (chorus_command_t *command)
{
    json_t *object = json_object ();
    if (!object)
        return NULL;
    json_object_set_new (object, "id", chorus_cli_json_text (chorus_command_id (command)));
    json_object_set_new (object, "command", chorus_cli_json_text (chorus_command_name (command)));
    json_object_set_new (object, "idempotency",
                         chorus_cli_json_text (chorus_command_idempotency (command)));
    json_object_set_new (object, "correlation",
                         chorus_cli_json_text (chorus_command_correlation (command)));
    json_object_set_new (object, "attempt",
                         json_integer ((json_int_t) chorus_command_attempt (command)));
    json_object_set_new (object, "deadline",
                         json_integer ((json_int_t) chorus_command_deadline (command)));
    json_object_set_new (object, "payload",
                         chorus_cli_payload_json (chorus_command_payload (command),
                                                  chorus_command_size (command)));
    char *text = json_dumps (object, JSON_COMPACT);
    json_decref (object);
    char *line = text? zsys_sprintf ("%s\n", text): NULL;
    free (text);
    return line;
}

//  A --persistent handler's answer as the reply; says which it was
static const char *
s_fill_line_reply (s_bridge_t *self, chorus_command_t *command, chorus_reply_t *reply,
                   chorus_cli_result_t *result)
{
    char message [400];
    if (result->overflow) {
        snprintf (message, sizeof (message), "the --persistent handler (pid %d) wrote a line "
                  "longer than any reply (8 MiB)", (int) result->pid);
        chorus_reply_set_error (reply, "bad-output", message, false);
        return "bad-output";
    }
    if (!result->line) {
        char how [48];
        chorus_cli_status_text (result->shell.status, how, sizeof (how));
        snprintf (message, sizeof (message), "the --persistent handler (pid %d) %s before it "
                  "answered", (int) result->pid, how);
        chorus_reply_set_error (reply, "handler-died", message, true);
        return "handler-died";
    }
    chorus_cli_line_t line;
    void *data = NULL;
    size_t size = 0;
    char *text = NULL;
    if (chorus_cli_line_read (&line, result->reply, &result->json_error, true) == 0) {
        if (line.code) {
            chorus_reply_set_error (reply, line.code, line.message, line.retryable);
            return "failed";
        }
        if (!line.payload)
            return "ok";
        char error [256];
        text = json_dumps (line.payload, JSON_COMPACT | JSON_ENCODE_ANY);
        if (text && chorus_json_to_msgpack (text, strlen (text), S_PAYLOAD_MAX, &data, &size,
                                            error, sizeof (error)) == 0) {
            free (text);
            chorus_reply_set_payload (reply, data, size);
            free (data);
            return "ok";
        }
        snprintf (line.problem, sizeof (line.problem), "its payload cannot be sent: %.80s",
                  text? error: "out of memory");
        free (text);
    }
    chorus_cli_error (&self->cli, "the --persistent handler (pid %d) answered %s %s with a line "
                      "that is not a reply, %s: %.200s", (int) result->pid,
                      chorus_command_name (command), chorus_command_id (command), line.problem,
                      result->line);
    snprintf (message, sizeof (message), "the --persistent handler's line is not a reply: %s",
              line.problem);
    chorus_reply_set_error (reply, "bad-output", message, false);
    return "bad-output";
}

//  A command's job has ended: its reply leaves
static void
s_command_done (void *job_arg, chorus_cli_result_t *result, void *arg)
{
    s_bridge_t *self = (s_bridge_t *) arg;
    s_pending_t *pending = (s_pending_t *) job_arg;
    chorus_command_t *command = chorus_deferred_command (pending->deferred);
    chorus_reply_t *reply = chorus_deferred_reply (pending->deferred);
    const char *outcome;
    if (result->started && self->persistent)
        outcome = s_fill_line_reply (self, command, reply, result);
    else
    if (result->started)
        outcome = s_fill_reply (reply, &result->shell);
    else
    if (result->error == ETIMEDOUT) {
        //  Answered all the same, so that a retry with its key is not
        //  taken for this one still running
        chorus_reply_set_error (reply, "expired", "its deadline passed before a handler was free",
                                true);
        outcome = "expired";
    }
    else
    if (result->error) {
        chorus_reply_set_error (reply, "spawn-failed", strerror (result->error), true);
        outcome = "spawn-failed";
    }
    else {
        //  We are stopping: no reply, and the sender tries again or times out
        chorus_deferred_destroy (&pending->deferred);
        free (pending);
        return;
    }
    if (self->cli.verbose || strcmp (outcome, "spawn-failed") == 0)
        fprintf (stderr, "chorus serve: %s %s attempt %" PRIu64 ": %s (%d ms)\n",
                 pending->handler->command, chorus_command_id (command),
                 chorus_command_attempt (command), outcome,
                 (int) (zclock_mono () - pending->started));
    chorus_deferred_finish (self->node, &pending->deferred, 0);
    free (pending);
}

//  Hands the command to the pool; the reply leaves when its job ends
static void
s_on_command (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    s_handler_t *handler = (s_handler_t *) arg;
    s_bridge_t *self = handler->bridge;
    char *line;
    if (self->persistent)
        line = s_command_line (command);
    else {
        char *input = chorus_json_payload_text (chorus_command_payload (command),
                                                chorus_command_size (command), 0);
        line = input? zsys_sprintf ("%s\n", input): NULL;
        free (input);
    }
    s_pending_t *pending = line? calloc (1, sizeof (s_pending_t)): NULL;
    if (!pending) {
        chorus_reply_set_error (reply, "no-memory", "out of memory", true);
        zstr_free (&line);
        return;
    }
    zlist_t *env = self->persistent? NULL: s_command_env (command);
    pending->handler = handler;
    pending->started = zclock_mono ();
    pending->deferred = chorus_command_defer (command);
    if (chorus_cli_pool_add (self->pool, handler->shell, &env, &line, chorus_command_id (command),
                             NULL, chorus_command_deadline (command), pending)) {
        chorus_reply_set_error (chorus_deferred_reply (pending->deferred), "no-memory",
                                "out of memory", true);
        chorus_deferred_finish (node, &pending->deferred, 0);
        free (pending);
    }
    zlist_destroy (&env);
    zstr_free (&line);
}

static int
s_serve (s_bridge_t *self)
{
    if (s_check_handlers (self) != CHORUS_CLI_CONTINUE)
        return CHORUS_CLI_USAGE;
    char *store_name = chorus_cli_store_name ("serve", self->target);
    self->node = chorus_cli_node_new (&self->cli, self->target, store_name);
    zstr_free (&store_name);
    if (!self->node)
        return CHORUS_CLI_FAILED;
    self->pool = chorus_cli_pool_new (&self->cli, self->workers, self->persistent,
                                      !self->persistent, s_command_done, self);
    if (!self->pool)
        return CHORUS_CLI_FAILED;
    for (s_handler_t *handler = zlist_first (self->handlers); handler;
         handler = zlist_next (self->handlers)) {
        int rc = chorus_node_handle (self->node, handler->command, s_on_command, handler);
        if (rc < 0) {
            chorus_cli_failed (&self->cli, self->node, rc, "cannot handle '%s'",
                               handler->command);
            return CHORUS_CLI_FAILED;
        }
    }
    int rc = chorus_cli_node_start (&self->cli, self->node);
    if (rc < 0)
        return chorus_cli_failure (rc);
    //  Returns when interrupted: that is how a server ends
    if (chorus_cli_pool_run (self->pool, self->node) == -2) {
        chorus_cli_failed (&self->cli, self->node, CHORUS_ECORRUPT, "stopped");
        return CHORUS_CLI_DAMAGED;
    }
    return CHORUS_CLI_OK;
}

//  --------------------------------------------------------------------------
//  on

static json_t *
s_event_json (chorus_event_t *event)
{
    json_t *object = json_object ();
    json_object_set_new (object, "topic", chorus_cli_json_text (chorus_event_topic (event)));
    json_object_set_new (object, "key", chorus_cli_json_text (chorus_event_key (event)));
    json_object_set_new (object, "seq", json_integer ((json_int_t) chorus_event_seq (event)));
    json_object_set_new (object, "id", chorus_cli_json_text (chorus_event_id (event)));
    json_object_set_new (object, "correlation",
                         chorus_cli_json_text (chorus_event_correlation (event)));
    json_object_set_new (object, "causation",
                         chorus_cli_json_text (chorus_event_causation (event)));
    json_object_set_new (object, "service", chorus_cli_json_text (chorus_event_service (event)));
    json_object_set_new (object, "instance",
                         chorus_cli_json_text (chorus_event_instance (event)));
    json_object_set_new (object, "timestamp",
                         json_integer ((json_int_t) chorus_event_timestamp (event)));
    json_object_set_new (object, "attempt",
                         json_integer ((json_int_t) chorus_event_attempt (event)));
    json_object_set_new (object, "payload", chorus_cli_payload_json (chorus_event_payload (event),
                                                                     chorus_event_size (event)));
    return object;
}

static zlist_t *
s_event_env (chorus_event_t *event)
{
    zlist_t *env = zlist_new ();
    zlist_autofree (env);
    chorus_cli_env_add (env, "CHORUS_TOPIC", chorus_event_topic (event));
    chorus_cli_env_add (env, "CHORUS_KEY", chorus_event_key (event));
    chorus_cli_env_add_number (env, "CHORUS_SEQ", chorus_event_seq (event));
    chorus_cli_env_add (env, "CHORUS_EVENT_ID", chorus_event_id (event));
    chorus_cli_env_add (env, "CHORUS_PUBLISHER", chorus_event_instance (event));
    chorus_cli_env_add_number (env, "CHORUS_ATTEMPT", chorus_event_attempt (event));
    chorus_cli_env_add (env, "CHORUS_CORRELATION_ID", chorus_event_correlation (event));
    return env;
}

//  The event as one line of JSON for the command's stdin; NULL if out of
//  memory
static char *
s_event_input (chorus_event_t *event)
{
    json_t *object = s_event_json (event);
    char *text = object? json_dumps (object, JSON_COMPACT): NULL;
    json_decref (object);
    char *line = text? zsys_sprintf ("%s\n", text): NULL;
    free (text);
    return line;
}

//  A --persistent handler's answer: 0 acknowledges the event, 1 rejects it
static int
s_line_status (s_bridge_t *self, chorus_event_t *event, chorus_cli_result_t *result)
{
    //  The pool has said why a handler ended or was killed
    if (result->overflow || !result->line)
        return 1;
    chorus_cli_line_t line;
    if (chorus_cli_line_read (&line, result->reply, &result->json_error, false)) {
        chorus_cli_error (&self->cli, "the --persistent handler (pid %d) answered event %s with a "
                          "line that is not a reply, %s; the event is delivered again: %.200s",
                          (int) result->pid, chorus_event_id (event), line.problem, result->line);
        return 1;
    }
    if (line.code && !line.retryable) {
        chorus_cli_error (&self->cli, "event %s (%s #%" PRIu64 " from %s, key '%s') failed for "
                          "good, %s: %s; acknowledged, not delivered again",
                          chorus_event_id (event), chorus_event_topic (event),
                          chorus_event_seq (event), chorus_event_service (event),
                          chorus_event_key (event)? chorus_event_key (event): "",
                          line.code, line.message? line.message: "no message");
        return 0;
    }
    return line.code? 1: 0;
}

//  An event's job has ended: it is acknowledged, or rejected for redelivery
static void
s_event_done (void *job_arg, chorus_cli_result_t *result, void *arg)
{
    s_bridge_t *self = (s_bridge_t *) arg;
    s_pending_t *pending = (s_pending_t *) job_arg;
    chorus_event_t *event = chorus_deferred_event (pending->deferred);
    if (!result->started && !result->error) {
        //  We are stopping: unacknowledged, it comes again at the next start
        chorus_deferred_destroy (&pending->deferred);
        free (pending);
        return;
    }
    int status = 1;
    if (result->error)
        chorus_cli_error (&self->cli, "cannot run --exec: %s", strerror (result->error));
    else
    if (self->persistent)
        status = s_line_status (self, event, result);
    else
        status = result->shell.status;
    if (self->cli.verbose && result->started)
        chorus_cli_error (&self->cli, "%s #%" PRIu64 " from %s/%s attempt %" PRIu64 ": %s",
                          chorus_event_topic (event), chorus_event_seq (event),
                          chorus_event_service (event), chorus_event_instance (event),
                          chorus_event_attempt (event), status == 0? "handled": "rejected");
    //  Anything but success leaves the event for redelivery
    chorus_deferred_finish (self->node, &pending->deferred, status == 0? 0: 1);
    free (pending);
}

//  Hands the event to the pool, behind the events of its key
static int
s_on_event (chorus_node_t *node, chorus_event_t *event, void *arg)
{
    (void) node;
    s_bridge_t *self = (s_bridge_t *) arg;
    char *input = s_event_input (event);
    s_pending_t *pending = input? calloc (1, sizeof (s_pending_t)): NULL;
    if (!pending) {
        chorus_cli_error (&self->cli, "out of memory");
        zstr_free (&input);
        return 1;
    }
    zlist_t *env = self->persistent? NULL: s_event_env (event);
    const char *key = chorus_event_key (event);
    pending->started = zclock_mono ();
    if (chorus_cli_pool_add (self->pool, self->shell, &env, &input, chorus_event_id (event),
                             key && *key? key: NULL, 0, pending)) {
        chorus_cli_error (&self->cli, "out of memory");
        free (pending);
        zlist_destroy (&env);
        zstr_free (&input);
        return 1;
    }
    pending->deferred = chorus_event_defer (event);
    return 0;
}

//  A publisher reports events the group will never get (retention, or a
//  store repaired after damage): said on stderr, since no handler runs
static void
s_on_truncated (chorus_node_t *node, const char *publisher, uint64_t from, uint64_t to,
                const char *reason, void *arg)
{
    s_bridge_t *self = (s_bridge_t *) arg;
    chorus_cli_error (&self->cli, "events %" PRIu64 " to %" PRIu64 " of publisher %s are lost: %s",
                      from, to, publisher, reason? reason: "no reason given");
}

static int
s_on (s_bridge_t *self)
{
    if (!self->group)
        return chorus_cli_usage_error (&self->cli, "missing --group GROUP");
    if (self->shell && self->persistent)
        return chorus_cli_usage_error (&self->cli, "--exec and --persistent: give one");
    if (!self->shell && !self->persistent)
        return chorus_cli_usage_error (&self->cli, "missing --exec SHELL-COMMAND or --persistent "
                                       "SHELL-COMMAND");
    char *store_name = chorus_cli_store_name ("on", self->group);
    self->node = chorus_cli_node_new (&self->cli, self->group, store_name);
    zstr_free (&store_name);
    if (!self->node)
        return CHORUS_CLI_FAILED;
    if (self->earliest)
        chorus_node_set_start_earliest (self->node, true);
    chorus_node_on_truncated (self->node, s_on_truncated, self);
    self->pool = chorus_cli_pool_new (&self->cli, self->workers, self->persistent, false,
                                      s_event_done, self);
    if (!self->pool)
        return CHORUS_CLI_FAILED;
    int rc = chorus_node_subscribe (self->node, self->target, s_on_event, self);
    if (rc < 0) {
        chorus_cli_failed (&self->cli, self->node, rc, "cannot subscribe to '%s'", self->target);
        return CHORUS_CLI_FAILED;
    }
    rc = chorus_cli_node_start (&self->cli, self->node);
    if (rc < 0)
        return chorus_cli_failure (rc);
    if (chorus_cli_pool_run (self->pool, self->node) == -2) {
        chorus_cli_failed (&self->cli, self->node, CHORUS_ECORRUPT, "stopped");
        return CHORUS_CLI_DAMAGED;
    }
    return CHORUS_CLI_OK;
}

//  --------------------------------------------------------------------------

static int
s_bridge (int argc, char **argv, bool serve)
{
    s_bridge_t self = { .handlers = zlist_new (), .workers = 1 };
    chorus_cli_init (&self.cli, serve? "serve": "on", serve? s_serve_usage: s_on_usage);
    int status = s_parse (&self, argc, argv, serve? s_serve_options: s_on_options,
                          serve? "SERVICE": "TOPIC-PREFIX");
    if (status == CHORUS_CLI_CONTINUE)
        status = serve? s_serve (&self): s_on (&self);
    //  Every job has ended and been answered by now
    chorus_cli_pool_destroy (&self.pool);
    chorus_node_destroy (&self.node);
    zlist_destroy (&self.handlers);
    chorus_cli_release (&self.cli);
    return status;
}

int
chorus_cmd_serve (int argc, char **argv)
{
    return s_bridge (argc, argv, true);
}

int
chorus_cmd_on (int argc, char **argv)
{
    return s_bridge (argc, argv, false);
}
