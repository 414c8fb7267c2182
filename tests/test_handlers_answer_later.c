/*  test_handlers_answer_later.c — results given later: a command handler
    that defers is answered only when the program finishes it, with the
    reply it filled, while the node goes on with other messages; an event
    handler that defers is acknowledged when finished with 0, and comes
    again when finished with a rejection; a deferred result destroyed
    unfinished sends nothing.
*/
#include "testutil.h"

typedef struct {
    chorus_deferred_t *held [8];    //  deferred results not yet finished
    int held_size;
    int events;                     //  event handler calls
    int quick;                      //  quick commands handled
} server_t;

static void
s_on_slow (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    server_t *server = (server_t *) arg;
    server->held [server->held_size++] = chorus_command_defer (command);
    chorus_reply_set_payload (reply, "never", 5);   //  not sent: the result is deferred
}

static void
s_on_quick (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    ((server_t *) arg)->quick++;
    chorus_reply_set_payload (reply, "quick", 5);
}

static int
s_on_event (chorus_node_t *node, chorus_event_t *event, void *arg)
{
    server_t *server = (server_t *) arg;
    server->events++;
    server->held [server->held_size++] = chorus_event_defer (event);
    return 1;   //  ignored: the result is deferred
}

typedef struct {
    int replies;
    char payload [16];
    int status;
} caller_t;

static void
s_on_reply (chorus_node_t *node, chorus_reply_t *reply, void *arg)
{
    caller_t *caller = (caller_t *) arg;
    caller->replies++;
    caller->status = chorus_reply_status (reply);
    snprintf (caller->payload, sizeof (caller->payload), "%.*s", (int) chorus_reply_size (reply),
              chorus_reply_payload (reply)? (const char *) chorus_reply_payload (reply): "");
}

static bool
s_counted (void *arg)
{
    return *(int *) arg > 0;
}

static bool
s_two (void *arg)
{
    return *(int *) arg >= 2;
}

typedef struct {
    chorus_node_t *node;
    const char *service;
} met_t;

static bool
s_met (void *arg)
{
    met_t *met = (met_t *) arg;
    return test_peers (met->node, met->service) == 1;
}

int
main (void)
{
    server_t server;
    memset (&server, 0, sizeof (server));
    chorus_node_t *worker = test_node ("worker", NULL, NULL);
    chorus_node_handle (worker, "slow", s_on_slow, &server);
    chorus_node_handle (worker, "quick", s_on_quick, &server);
    chorus_node_set_credit (worker, 1000, 1000);
    chorus_node_subscribe (worker, "job.", s_on_event, &server);
    if (chorus_node_start (worker))
        bail_out ("cannot start the worker");
    chorus_node_t *caller = test_node ("caller", NULL, chorus_node_endpoint (worker));
    chorus_node_set_credit (caller, 1000, 1000);    //  an unacknowledged event comes again in 1 s
    if (chorus_node_start (caller))
        bail_out ("cannot start the caller");
    chorus_node_t *nodes [2] = {worker, caller};
    met_t met = {caller, "worker"};
    ok (test_run_until (nodes, 2, s_met, &met, 10000), "the caller meets the worker");

    caller_t slow = {0}, quick = {0};
    chorus_node_send (caller, "worker", "slow", "{}", 2, 10000, s_on_reply, &slow);
    ok (test_run_until (nodes, 2, s_counted, &server.held_size, 5000),
        "the slow command's handler deferred its result");
    chorus_node_send (caller, "worker", "quick", "{}", 2, 10000, s_on_reply, &quick);
    ok (test_run_until (nodes, 2, s_counted, &quick.replies, 5000) && slow.replies == 0,
        "a later command is answered while the slow one waits");
    chorus_deferred_t *deferred = server.held [--server.held_size];
    ok (chorus_deferred_command (deferred) && !chorus_deferred_event (deferred),
        "the deferred result holds the command");
    chorus_reply_set_payload (chorus_deferred_reply (deferred), "later", 5);
    chorus_deferred_finish (worker, &deferred, 0);
    ok (deferred == NULL, "finishing destroys the deferred result");
    ok (test_run_until (nodes, 2, s_counted, &slow.replies, 5000)
        && slow.status == 0 && streq (slow.payload, "later"),
        "the slow command is answered with the reply filled later: %s", slow.payload);

    //  An event: rejected once when finished, then acknowledged
    chorus_node_publish (caller, "job.run", "k", "{}", 2);
    ok (test_run_until (nodes, 2, s_counted, &server.held_size, 5000) && server.events == 1,
        "the event's handler deferred its result");
    deferred = server.held [--server.held_size];
    ok (chorus_deferred_event (deferred) != NULL, "the deferred result holds the event");
    chorus_deferred_finish (worker, &deferred, 1);
    ok (test_run_until (nodes, 2, s_two, &server.events, 10000),
        "finished with a rejection, the event comes again");
    deferred = server.held [--server.held_size];
    chorus_deferred_finish (worker, &deferred, 0);
    int64_t until = zclock_mono () + 2500;
    while (zclock_mono () < until)
        test_run_until (nodes, 2, s_two, &server.held_size, 100);
    ok (server.events == 2 && chorus_node_unacked (caller) == 0,
        "finished with 0, it is acknowledged and does not come again");

    //  Destroyed unfinished: nothing is sent, the sender times out
    caller_t lost = {0};
    chorus_node_send (caller, "worker", "slow", "{}", 2, 1500, s_on_reply, &lost);
    ok (test_run_until (nodes, 2, s_counted, &server.held_size, 5000), "another slow command");
    deferred = server.held [--server.held_size];
    chorus_deferred_destroy (&deferred);
    ok (test_run_until (nodes, 2, s_counted, &lost.replies, 5000)
        && lost.status == CHORUS_ETIMEDOUT, "destroyed unfinished, its sender times out");

    chorus_node_destroy (&caller);
    chorus_node_destroy (&worker);
    return done_testing ();
}
