/*  test_flush_hook_groups_writes.c — a node calls its application's flush
    hook once per round of handlers, before their acknowledgements leave,
    so a service can make a whole round durable with one write; a failing
    flush turns the round's handled events into rejections, which come
    again, and its replies into retryable errors.
*/
#include "testutil.h"

#define EVENTS 500

typedef struct {
    int handled;                //  handler runs
    int flushes;                //  flush calls
    int fail_next;              //  flushes still to fail
    int redelivered;            //  events seen with attempt > 1
} state_t;

static int
s_on_event (chorus_node_t *node, chorus_event_t *event, void *arg)
{
    state_t *state = (state_t *) arg;
    state->handled++;
    if (chorus_event_attempt (event) > 1)
        state->redelivered++;
    return 0;
}

static int
s_on_flush (chorus_node_t *node, void *arg)
{
    state_t *state = (state_t *) arg;
    state->flushes++;
    if (state->fail_next > 0) {
        state->fail_next--;
        return -1;
    }
    return 0;
}

static void
s_on_command (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    chorus_reply_set_payload (reply, "done", 4);
}

typedef struct {
    int status;                 //  reply status
    char code [64];             //  its code
    bool retryable;             //  and retryability
    bool done;                  //  replied
} call_t;

static void
s_on_reply (chorus_node_t *node, chorus_reply_t *reply, void *arg)
{
    call_t *call = (call_t *) arg;
    call->status = chorus_reply_status (reply);
    snprintf (call->code, sizeof (call->code), "%s",
              chorus_reply_code (reply)? chorus_reply_code (reply): "");
    call->retryable = chorus_reply_retryable (reply);
    call->done = true;
}

static bool
s_replied (void *arg)
{
    return ((call_t *) arg)->done;
}

static bool
s_settled (void *arg)
{
    return chorus_node_unacked ((chorus_node_t *) arg) == 0;
}

static bool
s_met (void *arg)
{
    return test_peers ((chorus_node_t *) arg, "ledger") == 1;
}

int
main (void)
{
    state_t state = {0, 0, 0, 0};
    chorus_node_t *nodes [2];
    nodes [0] = test_node ("orders", NULL, NULL);
    chorus_node_start (nodes [0]);
    nodes [1] = test_node ("ledger", NULL, chorus_node_endpoint (nodes [0]));
    chorus_node_subscribe (nodes [1], "entry.", s_on_event, &state);
    chorus_node_handle (nodes [1], "post", s_on_command, NULL);
    chorus_node_on_flush (nodes [1], s_on_flush, &state);
    chorus_node_start (nodes [1]);
    ok (test_run_until (nodes, 2, s_met, nodes [0], 5000), "the publisher met the ledger");

    for (int i = 0; i < EVENTS; i++)
        chorus_node_publish (nodes [0], "entry.posted", NULL, "x", 1);
    ok (test_run_until (nodes, 2, s_settled, nodes [0], 20000), "every event acknowledged");
    is_int (state.handled, EVENTS, "each handled once");
    ok (state.flushes >= 1 && state.flushes < EVENTS,
        "one flush per round, not per event: %d flushes for %d events", state.flushes, EVENTS);

    //  A failing flush: the round comes again
    state.fail_next = 1;
    int handled = state.handled;
    chorus_node_publish (nodes [0], "entry.posted", NULL, "y", 1);
    ok (test_run_until (nodes, 2, s_settled, nodes [0], 10000),
        "an event whose round failed to flush is acknowledged in the end");
    is_int (state.handled, handled + 2, "its handler ran twice: once unflushed, once again");
    is_int (state.redelivered, 1, "the second time as a redelivery");

    state.fail_next = 1;
    call_t call = {0, "", false, false};
    chorus_node_send (nodes [0], "ledger", "post", NULL, 0, 5000, s_on_reply, &call);
    ok (test_run_until (nodes, 2, s_replied, &call, 5000), "the command replied");
    is_int (call.status, CHORUS_EREMOTE, "with an error when its round failed to flush");
    is_str (call.code, "internal", "code internal");
    ok (call.retryable, "retryable");

    chorus_node_destroy (&nodes [1]);
    chorus_node_destroy (&nodes [0]);
    return done_testing ();
}
