/*  test_commands_route_and_fail.c — commands spread over the live
    instances of a service; one sent while no instance lives waits for one;
    a deadline that passes gives the caller a clear timeout; an unknown
    command gets an error reply; a handler's error reaches the caller with
    its code, message and retryability.
*/
#include "testutil.h"

#define COMMANDS 300

typedef struct {
    int handled;                //  commands this instance ran
} server_t;

static void
s_on_charge (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    ((server_t *) arg)->handled++;
    if (chorus_command_size (command) == 7 && memcmp (chorus_command_payload (command),
                                                      "decline", 7) == 0) {
        chorus_reply_set_error (reply, "card-declined", "the card was declined", false);
        return;
    }
    chorus_reply_set_payload (reply, chorus_node_instance (node), 32);
}

typedef struct {
    int replies;                //  replies received
    int ok;                     //  of which successes
    int status;                 //  status of the last
    char code [65];             //  code of the last
    char message [256];         //  message of the last
    bool retryable;             //  retryability of the last
    int64_t at;                 //  when the last came
} caller_t;

static void
s_on_reply (chorus_node_t *node, chorus_reply_t *reply, void *arg)
{
    caller_t *caller = (caller_t *) arg;
    caller->replies++;
    caller->status = chorus_reply_status (reply);
    caller->ok += caller->status == 0;
    snprintf (caller->code, sizeof (caller->code), "%s",
              chorus_reply_code (reply)? chorus_reply_code (reply): "");
    snprintf (caller->message, sizeof (caller->message), "%s",
              chorus_reply_message (reply)? chorus_reply_message (reply): "");
    caller->retryable = chorus_reply_retryable (reply);
    caller->at = zclock_mono ();
}

typedef struct {
    caller_t *caller;           //  whose replies
    int want;                   //  how many to wait for
} want_t;

static bool
s_has (void *arg)
{
    want_t *want = (want_t *) arg;
    return want->caller->replies >= want->want;
}

typedef struct {
    chorus_node_t *node;        //  who must know them
    const char *service;        //  which service
    int count;                  //  how many instances
} peers_t;

static bool
s_knows (void *arg)
{
    peers_t *peers = (peers_t *) arg;
    return test_peers (peers->node, peers->service) >= peers->count;
}

int
main (void)
{
    chorus_node_t *nodes [5] = {NULL};
    nodes [0] = test_node ("orders", NULL, NULL);
    chorus_node_start (nodes [0]);
    server_t servers [3] = {{0}, {0}, {0}};
    for (int i = 0; i < 3; i++) {
        nodes [1 + i] = test_node ("payments", NULL, chorus_node_endpoint (nodes [0]));
        chorus_node_handle (nodes [1 + i], "charge", s_on_charge, &servers [i]);
        chorus_node_start (nodes [1 + i]);
    }
    peers_t peers = {nodes [0], "payments", 3};
    ok (test_run_until (nodes, 4, s_knows, &peers, 5000), "the caller knows 3 instances");

    //  Load spreads: each command goes to the instance with fewest outstanding
    caller_t caller = {0};
    int failed = 0;
    for (int i = 0; i < COMMANDS; i++)
        failed += chorus_node_send (nodes [0], "payments", "charge", "{}", 2, 10000,
                                    s_on_reply, &caller) != 0;
    is_int (failed, 0, "%d commands sent", COMMANDS);
    want_t want = {&caller, COMMANDS};
    ok (test_run_until (nodes, 4, s_has, &want, 20000), "all replied");
    is_int (caller.ok, COMMANDS, "all succeeded");
    for (int i = 0; i < 3; i++)
        ok (servers [i].handled >= COMMANDS / 5, "instance %d handled %d of %d", i,
            servers [i].handled, COMMANDS);
    is_int (servers [0].handled + servers [1].handled + servers [2].handled, COMMANDS,
            "each command ran once");

    //  A handler's error travels with its code, message and retryability
    caller_t declined = {0};
    chorus_node_send (nodes [0], "payments", "charge", "decline", 7, 5000, s_on_reply, &declined);
    want_t want_declined = {&declined, 1};
    ok (test_run_until (nodes, 4, s_has, &want_declined, 5000), "the declined charge replied");
    is_int (declined.status, CHORUS_EREMOTE, "as a remote error");
    is_str (declined.code, "card-declined", "with the handler's code");
    is_str (declined.message, "the card was declined", "and message");
    ok (!declined.retryable, "and not retryable");

    //  Unknown command
    caller_t unknown = {0};
    chorus_node_send (nodes [0], "payments", "refund-everything", NULL, 0, 5000, s_on_reply,
                      &unknown);
    want_t want_unknown = {&unknown, 1};
    ok (test_run_until (nodes, 4, s_has, &want_unknown, 5000), "the unknown command replied");
    is_int (unknown.status, CHORUS_EUNKNOWN, "CHORUS_EUNKNOWN");
    is_str (unknown.code, "unknown-command", "code unknown-command");
    ok (strstr (unknown.message, "refund-everything") != NULL, "the message names it: %s",
        unknown.message);

    //  Deadline: nobody serves "ledger"
    caller_t late = {0};
    int64_t sent = zclock_mono ();
    chorus_node_send (nodes [0], "ledger", "post", NULL, 0, 500, s_on_reply, &late);
    want_t want_late = {&late, 1};
    ok (test_run_until (nodes, 4, s_has, &want_late, 5000), "the caller hears back");
    is_int (late.status, CHORUS_ETIMEDOUT, "with CHORUS_ETIMEDOUT");
    is_str (late.code, "timeout", "code timeout");
    ok (late.at - sent >= 500 && late.at - sent < 1500, "at the deadline (%d ms)",
        (int) (late.at - sent));

    //  Queued while no instance lives; delivered when one starts
    caller_t queued = {0};
    chorus_node_send (nodes [0], "shipping", "label", "{}", 2, 5000, s_on_reply, &queued);
    server_t shipping = {0};
    nodes [4] = test_node ("shipping", NULL, chorus_node_endpoint (nodes [0]));
    chorus_node_handle (nodes [4], "label", s_on_charge, &shipping);
    chorus_node_start (nodes [4]);
    want_t want_queued = {&queued, 1};
    ok (test_run_until (nodes, 5, s_has, &want_queued, 5000),
        "a command sent before its service existed is answered");
    is_int (queued.status, 0, "successfully");
    is_int (shipping.handled, 1, "by the instance that started later");

    //  A command still unanswered when its node is destroyed: its handler
    //  hears so, once, and can free what it holds
    caller_t orphan = {0};
    chorus_node_send (nodes [0], "archive", "store", NULL, 0, 60000, s_on_reply, &orphan);
    for (int i = 0; i < 5; i++)
        chorus_node_destroy (&nodes [i]);
    is_int (orphan.replies, 1, "a command outstanding at destroy is reported once");
    is_int (orphan.status, CHORUS_EINTERRUPTED, "as CHORUS_EINTERRUPTED");
    return done_testing ();
}
