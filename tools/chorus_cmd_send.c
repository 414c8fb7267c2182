/*  chorus_cmd_send.c — `chorus send`: send one command to a service, wait
    for its reply and print the reply's payload as JSON, so that a shell
    script can call any service on the mesh.
*/
#include "chorus_cli.h"
#include "chorus_json.h"

#include <stdlib.h>
#include <string.h>

//  Exit status when no reply came in time
#define S_TIMED_OUT 4
//  How long past --timeout we wait for the node to report the timeout
//  itself, before we stop waiting on our own
#define S_GRACE_MS 5000

enum {
    S_OPT_TIMEOUT = CHORUS_CLI_OPT_OWN,
    S_OPT_IDEMPOTENCY,
    S_OPT_CORRELATION
};

static const struct option s_options [] = {
    { "timeout", required_argument, NULL, S_OPT_TIMEOUT },
    { "idempotency", required_argument, NULL, S_OPT_IDEMPOTENCY },
    { "correlation", required_argument, NULL, S_OPT_CORRELATION },
    CHORUS_CLI_MESH_OPTIONS,
    { NULL, 0, NULL, 0 }
};

//  One run of the subcommand
typedef struct {
    chorus_cli_t cli;               //  shared options
    const char *service;            //  SERVICE
    const char *command;            //  COMMAND
    const char *json;               //  the JSON argument, or NULL
    const char *idempotency;        //  --idempotency, or NULL for the command id
    const char *correlation;        //  --correlation, or NULL for a new one
    int timeout_ms;                 //  --timeout
    void *data;                     //  the payload as MessagePack
    size_t size;                    //  bytes in data
    chorus_node_t *node;            //  our node
    bool replied;                   //  the reply handler has run
    int status;                     //  exit status it decided
} s_send_t;

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: chorus send SERVICE COMMAND [JSON] [OPTIONS]\n"
        "\n"
        "Send COMMAND to one live instance of SERVICE with JSON as its payload\n"
        "(none without JSON), wait for the reply and print its payload as compact\n"
        "JSON on stdout (null for none). While no instance is alive, the command\n"
        "waits for one until the timeout.\n"
        "\n"
        "  --timeout SECONDS   give up waiting for the reply (default 30)\n"
        "  --idempotency KEY   the handler's idempotency key (default: the command id)\n"
        "  --correlation ID    correlation id to trace the command by (default: new)\n");
    chorus_cli_print_mesh_help (out, "none, a temporary store");
    fprintf (out,
        "\n"
        "Exit status: 0 replied, 1 error reply or failure (\"COMMAND failed: CODE:\n"
        "MESSAGE\" on stderr, and for an error reply \"(retryable)\" or\n"
        "\"(permanent)\"), 2 bad usage, 4 no reply before the timeout.\n");
}

static int
s_option (s_send_t *self, int opt, char **argv)
{
    switch (opt) {
        case S_OPT_IDEMPOTENCY: self->idempotency = optarg; break;
        case S_OPT_CORRELATION: self->correlation = optarg; break;
        case S_OPT_TIMEOUT:
            if (chorus_cli_parse_seconds (&self->cli, "--timeout", optarg, 0.001,
                                          &self->timeout_ms))
                return CHORUS_CLI_USAGE;
            break;
        default:
            return chorus_cli_option (&self->cli, opt, argv);
    }
    return CHORUS_CLI_CONTINUE;
}

static int
s_parse (s_send_t *self, int argc, char **argv)
{
    int opt;
    while ((opt = getopt_long (argc, argv, CHORUS_CLI_SHORT_OPTIONS, s_options, NULL)) != -1) {
        int rc = s_option (self, opt, argv);
        if (rc != CHORUS_CLI_CONTINUE)
            return rc;
    }
    if (chorus_cli_check (&self->cli) != CHORUS_CLI_CONTINUE)
        return CHORUS_CLI_USAGE;
    if (argc - optind < 2)
        return chorus_cli_usage_error (&self->cli, "missing %s",
                                       optind < argc? "COMMAND": "SERVICE and COMMAND");
    self->service = argv [optind++];
    self->command = argv [optind++];
    if (optind < argc)
        self->json = argv [optind++];
    if (optind < argc)
        return chorus_cli_usage_error (&self->cli, "unexpected argument '%s'", argv [optind]);
    char error [256];
    if (self->json && chorus_json_to_msgpack (self->json, strlen (self->json), SIZE_MAX,
                                              &self->data, &self->size, error, sizeof (error)))
        return chorus_cli_usage_error (&self->cli, "JSON argument: %s", error);
    return CHORUS_CLI_CONTINUE;
}

//  An error reply says whether trying again could help
static void
s_print_failure (s_send_t *self, const char *code, const char *message, const char *retry)
{
    chorus_cli_error (&self->cli, "%s failed: %s: %s%s", self->command, code, message, retry);
}

static void
s_on_reply (chorus_node_t *node, chorus_reply_t *reply, void *arg)
{
    s_send_t *self = (s_send_t *) arg;
    int status = chorus_reply_status (reply);
    if (status == CHORUS_EINTERRUPTED)
        return;     //  the node is going away: we have said why already
    if (status == CHORUS_OK) {
        char *text = chorus_json_payload_text (chorus_reply_payload (reply),
                                               chorus_reply_size (reply), 0);
        bool printed = text && puts (text) != EOF && fflush (stdout) == 0;
        if (!printed)
            chorus_cli_error (&self->cli, "cannot print the reply");
        self->status = printed? CHORUS_CLI_OK: CHORUS_CLI_FAILED;
        free (text);
    }
    else
    if (status == CHORUS_ETIMEDOUT) {
        chorus_cli_error (&self->cli, "%s failed: timed out after %g s", self->command,
                          self->timeout_ms / 1000.0);
        self->status = S_TIMED_OUT;
    }
    else {
        //  Remote errors carry the handler's code; local failures (an
        //  unknown command among them) may carry none
        const char *code = chorus_reply_code (reply);
        const char *message = chorus_reply_message (reply);
        if (!code)
            code = status == CHORUS_EUNKNOWN? "unknown-command": "error";
        const char *retry = "";
        if (status == CHORUS_EREMOTE)
            retry = chorus_reply_retryable (reply)? " (retryable)": " (permanent)";
        s_print_failure (self, code, message? message: chorus_strerror (status), retry);
        self->status = CHORUS_CLI_FAILED;
    }
    self->replied = true;
    chorus_node_stop (node);
}

static int
s_run (s_send_t *self)
{
    self->node = chorus_cli_node_new (&self->cli, "chorus-send", NULL);
    if (!self->node)
        return CHORUS_CLI_FAILED;
    int rc = chorus_cli_node_start (&self->cli, self->node);
    if (rc < 0)
        return chorus_cli_failure (rc);
    rc = chorus_node_send_traced (self->node, self->service, self->command, self->data,
                                  self->size, self->timeout_ms, self->idempotency,
                                  self->correlation, s_on_reply, self);
    if (rc < 0) {
        chorus_cli_failed (&self->cli, self->node, rc, "cannot send %s to %s", self->command,
                           self->service);
        return CHORUS_CLI_FAILED;
    }
    int64_t give_up = zclock_mono () + self->timeout_ms + S_GRACE_MS;
    while (!self->replied) {
        rc = chorus_node_run (self->node, 200);
        if (rc == CHORUS_EINTERRUPTED) {
            chorus_cli_error (&self->cli, "interrupted before %s replied", self->service);
            return CHORUS_CLI_INTERRUPTED;
        }
        if (rc < 0) {
            chorus_cli_failed (&self->cli, self->node, rc, "while waiting for %s to reply",
                               self->service);
            return chorus_cli_failure (rc);
        }
        if (!self->replied && zclock_mono () >= give_up) {
            chorus_cli_error (&self->cli, "%s failed: timed out after %g s", self->command,
                              self->timeout_ms / 1000.0);
            return S_TIMED_OUT;
        }
    }
    return self->status;
}

int
chorus_cmd_send (int argc, char **argv)
{
    s_send_t self = { .timeout_ms = 30000 };
    chorus_cli_init (&self.cli, "send", s_usage);
    int status = s_parse (&self, argc, argv);
    if (status == CHORUS_CLI_CONTINUE)
        status = s_run (&self);
    chorus_node_destroy (&self.node);
    free (self.data);
    chorus_cli_release (&self.cli);
    return status;
}
