/*  test_node_runs_inline.c — a node whose engine runs in the application's
    thread (chorus_node_set_inline): it is configured only before start and
    has no descriptor to poll; commands sent before the thread runs the
    node are all answered, each handled once; a batch larger than the
    hand-off to the engine is published without the thread waiting for
    itself, and every event reaches a group once; the calls that wait for
    the engine's answer get it; chorus_node_stop ends chorus_node_run; and
    a node destroyed with a command unanswered tells its reply handler;
    once the process shuts ZeroMQ down, the node's calls fail, not spin.
    Nodes run inline and in a thread of their own meet and work together.
*/
#include "testutil.h"

#define COMMANDS 2000           //  sent before the sender runs its node
#define BATCH 2500              //  events in one publish call: more than the hand-off holds

typedef struct {
    int handled;                //  commands the server ran
    bool stop;                  //  stop its run after each
} server_t;

static void
s_on_echo (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    server_t *server = (server_t *) arg;
    server->handled++;
    chorus_reply_set_payload (reply, chorus_command_payload (command),
                              chorus_command_size (command));
    if (server->stop)
        chorus_node_stop (node);
}

typedef struct {
    int replies;                //  replies received
    int ok;                     //  of which successes with the payload sent
    int interrupted;            //  of which the node's stop (CHORUS_EINTERRUPTED)
    zhashx_t *seen;             //  payloads answered, to find one answered twice
    int twice;                  //  replies for a payload answered before
} caller_t;

static void
s_on_reply (chorus_node_t *node, chorus_reply_t *reply, void *arg)
{
    caller_t *caller = (caller_t *) arg;
    caller->replies++;
    if (chorus_reply_status (reply) == CHORUS_EINTERRUPTED) {
        caller->interrupted++;
        return;
    }
    if (chorus_reply_status (reply) == 0 && chorus_reply_size (reply) > 0) {
        char key [32];
        snprintf (key, sizeof (key), "%.*s", (int) chorus_reply_size (reply),
                  (const char *) chorus_reply_payload (reply));
        if (zhashx_lookup (caller->seen, key))
            caller->twice++;
        else {
            zhashx_insert (caller->seen, key, (void *) 1);
            caller->ok++;
        }
    }
}

static int s_want = COMMANDS;    //  replies to wait for

static bool
s_replies (void *arg)
{
    return ((caller_t *) arg)->replies >= s_want;
}

typedef struct {
    chorus_node_t *node;        //  who must know them
    const char *service;        //  which service
} met_t;

static bool
s_met (void *arg)
{
    met_t *met = (met_t *) arg;
    return test_peers (met->node, met->service) >= 1;
}

static void
s_find_subscriber (chorus_node_t *node, const chorus_peer_t *peer, void *arg)
{
    if (streq (peer->service, "ledger") && strstr (peer->subscriptions, "order."))
        *(bool *) arg = true;
}

static bool
s_subscribed (void *arg)
{
    //  The publisher knows the group's subscription once it has met it
    bool found = false;
    chorus_node_peers ((chorus_node_t *) arg, s_find_subscriber, &found);
    return found;
}

//  Runs inline nodes in a loop of the test's own, as an application with
//  its own poll(2) would: waits on the descriptors chorus_node_pollfds
//  gives, for no longer than it says, then dispatches; until done holds
static int s_idle_waits;        //  waits that ended with nothing readable

static bool
s_poll_until (chorus_node_t **nodes, int count, test_done_fn *done, void *arg, int timeout_ms)
{
    int64_t end = zclock_mono () + timeout_ms;
    bool result;
    while (!(result = done (arg)) && zclock_mono () < end) {
        struct pollfd items [64];
        int used = 0, wait = 100;
        for (int i = 0; i < count; i++) {
            int fds [16], timeout;
            int size = chorus_node_pollfds (nodes [i], fds, 16, &timeout);
            if (size < 0 || size > 16)
                return false;
            for (int j = 0; j < size && used < 64; j++)
                items [used++] = (struct pollfd) {fds [j], POLLIN, 0};
            if (timeout >= 0 && timeout < wait)
                wait = timeout;
        }
        if (poll (items, (nfds_t) used, wait) == 0 && wait > 0)
            s_idle_waits++;
        for (int i = 0; i < count; i++)
            chorus_node_dispatch (nodes [i]);
    }
    return result;
}

//  A handler that holds its thread past the nodes' expired time
static void
s_on_slow (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    zclock_sleep (TEST_EXPIRED_MS * 3 / 2);
}

static int s_lost;              //  its peers the slow service suspected, expired or saw leave

static void
s_on_peer_change (chorus_node_t *node, const chorus_peer_t *peer, void *arg)
{
    if (peer->state == CHORUS_PEER_EVASIVE || peer->state == CHORUS_PEER_EXPIRED
    ||  peer->state == CHORUS_PEER_LEFT)
        s_lost++;
}

static bool
s_never (void *arg)
{
    return false;
}

int
main (void)
{
    //  Configured before start only; no descriptor to poll
    server_t server = {0, false};
    chorus_node_t *echo = test_node ("echo", NULL, NULL);
    chorus_node_set_inline (echo, true);
    chorus_node_handle (echo, "echo", s_on_echo, &server);
    if (chorus_node_start (echo))
        bail_out ("cannot start the inline server");
    is_int (chorus_node_set_inline (echo, false), CHORUS_ESTATE,
        "choosing where the engine runs after start is refused");
    is_int (chorus_node_fd (echo), CHORUS_ESTATE, "a node run inline has no descriptor to poll");
    ok (strstr (chorus_node_error (echo), "chorus_node_run") != NULL,
        "and the error says how to run it: %s", chorus_node_error (echo));
    ok (chorus_node_socket (echo) == NULL, "nor a socket");

    //  Commands queued before the sender's thread runs its node at all
    chorus_node_t *client = test_node ("client", NULL, chorus_node_endpoint (echo));
    chorus_node_set_inline (client, true);
    if (chorus_node_start (client))
        bail_out ("cannot start the inline client");
    chorus_node_t *both [2] = {echo, client};
    met_t met = {client, "echo"};
    ok (test_run_until (both, 2, s_met, &met, 10000), "two inline nodes in one thread meet");
    caller_t caller = {0, 0, 0, zhashx_new (), 0};
    int refused = 0;
    for (int i = 0; i < COMMANDS; i++) {
        char payload [16];
        snprintf (payload, sizeof (payload), "c%d", i);
        refused += chorus_node_send (client, "echo", "echo", payload, strlen (payload), 30000,
                                     s_on_reply, &caller) != 0;
    }
    is_int (refused, 0, "%d commands are taken before the sender runs its node", COMMANDS);
    is_int (caller.replies, 0, "and none is answered before it does");
    ok (test_run_until (both, 2, s_replies, &caller, 30000), "every command is answered");
    is_int (caller.ok, COMMANDS, "each with the payload it carried");
    is_int (caller.twice, 0, "none twice");
    is_int (server.handled, COMMANDS, "each handled once by the server");

    //  The same in a loop of the application's own, waiting on the
    //  descriptors chorus_node_pollfds gives: a wait that missed a
    //  message would hold for the 100 ms cap each time, or never end
    int timeout = -1;
    int fds [16];
    int size = chorus_node_pollfds (client, fds, 16, &timeout);
    ok (size > 0 && size <= 16 && timeout >= 0,
        "an inline node gives %d descriptors to wait on, and a wait of %d ms at most", size,
        timeout);
    is_int (chorus_node_pollfds (client, NULL, 0, &timeout), size,
            "and says how many with no room to write them");
    int64_t started = zclock_mono ();
    s_idle_waits = 0;
    for (int i = 0; i < COMMANDS; i++) {
        char payload [16];
        snprintf (payload, sizeof (payload), "p%d", i);
        chorus_node_send (client, "echo", "echo", payload, strlen (payload), 30000,
                          s_on_reply, &caller);
        s_want = COMMANDS + i + 1;
        if (!s_poll_until (both, 2, s_replies, &caller, 10000))
            break;
    }
    is_int (caller.ok, 2 * COMMANDS, "%d commands one at a time, each answered, in a loop of "
            "the test's own", COMMANDS);
    diag ("%d round trips in %" PRId64 " ms", COMMANDS, zclock_mono () - started);
    //  A wait that ends with nothing to read ends at a timer the engine
    //  gave (a heartbeat or a probe, a few a second); a descriptor that
    //  did not fire for a message waiting would end one per round trip
    ok (s_idle_waits < COMMANDS / 10, "no wait missed a reply: %d of the waits ended idle, at "
        "the engines' timers", s_idle_waits);
    is_int (server.handled, 2 * COMMANDS, "each handled once");
    s_want = COMMANDS;
    is_int ((int) chorus_node_counter (echo, "commands_handled"), 2 * COMMANDS,
        "the server's engine answers a question from its own thread");
    ok (chorus_node_peers (client, NULL, NULL) >= 1, "as does the client's, for its peers");
    is_int ((int) chorus_node_unacked (client), 0, "and for events unacknowledged");

    //  chorus_node_stop ends chorus_node_run from a handler
    server.stop = true;
    int before = caller.replies;
    chorus_node_send (client, "echo", "echo", "stop", 4, 30000, s_on_reply, &caller);
    int64_t end = zclock_mono () + 10000;
    while (server.handled == 2 * COMMANDS && zclock_mono () < end) {
        chorus_node_dispatch (client);
        chorus_node_run (echo, 20);
    }
    is_int (server.handled, 2 * COMMANDS + 1,
            "a handler's chorus_node_stop ends the run it is in");
    server.stop = false;
    s_want = before + 1;
    ok (test_run_until (both, 2, s_replies, &caller, 10000) && caller.ok == 2 * COMMANDS + 1,
        "and its reply goes");

    //  A publish larger than the hand-off, from an inline publisher, to a
    //  group whose node runs in a thread of its own
    test_record_t record = {zhashx_new (), 0, 0};
    chorus_node_t *group = test_node ("ledger", NULL, chorus_node_endpoint (echo));
    chorus_node_subscribe (group, "order.", test_record_event, &record);
    if (chorus_node_start (group))
        bail_out ("cannot start the group");
    chorus_node_t *publisher = test_node ("shop", NULL, chorus_node_endpoint (echo));
    chorus_node_set_inline (publisher, true);
    chorus_node_set_credit (publisher, 1000, 1000);
    if (chorus_node_start (publisher))
        bail_out ("cannot start the inline publisher");
    chorus_node_t *all [4] = {echo, client, group, publisher};
    is_int (chorus_node_pollfds (group, fds, 16, &timeout), CHORUS_ESTATE,
            "a node with an engine thread has no descriptors to give: it has chorus_node_fd");
    ok (test_run_until (all, 4, s_subscribed, publisher, 10000),
        "the inline publisher meets the threaded group");
    chorus_publication_t *events = (chorus_publication_t *) calloc (BATCH,
                                                                    sizeof (chorus_publication_t));
    char (*keys) [16] = calloc (BATCH, 16);
    for (int i = 0; i < BATCH; i++) {
        snprintf (keys [i], 16, "k%d", i);
        events [i].topic = "order.placed";
        events [i].key = keys [i];
        events [i].payload = keys [i];
        events [i].size = strlen (keys [i]);
    }
    is_int (chorus_node_publish_batch (publisher, events, BATCH), 0,
        "a batch of %d events, more than the hand-off holds, is published", BATCH);
    for (int i = 0; i < 10; i++)
        chorus_node_publish (publisher, "order.paid", "k", "paid", 4);
    test_record_wait_t want = {&record, BATCH + 10};
    ok (test_run_until (all, 4, test_record_reached, &want, 30000), "every event reaches the group");
    is_int (record.twice, 0, "none twice");

    //  Events published just before the inline publisher is destroyed
    //  still go: they were in the hand-off, not yet taken by a turn
    int had = (int) zhashx_size (record.ids);
    for (int i = 0; i < 5; i++) {
        char key [16];
        snprintf (key, sizeof (key), "last%d", i);
        chorus_node_publish (publisher, "order.shipped", key, key, strlen (key));
    }
    chorus_node_destroy (&publisher);
    chorus_node_t *left [3] = {echo, client, group};
    want.want = had + 5;
    ok (test_run_until (left, 3, test_record_reached, &want, 10000),
        "events published just before an inline node is destroyed reach the group");

    chorus_node_destroy (&group);

    //  A node destroyed with a command unanswered tells its reply handler
    caller_t late = {0, 0, 0, zhashx_new (), 0};
    chorus_node_send (client, "nobody", "echo", "x", 1, 30000, s_on_reply, &late);
    chorus_node_destroy (&client);
    is_int (late.interrupted, 1, "a command unanswered when its inline node goes hears of it");

    chorus_node_destroy (&echo);

    //  A handler that runs past the expired time stalls the engine with
    //  it: the node must take it for its own stall, not for its peers'
    //  silence, and suspect no one for it (protocol section 6.1). Its peer
    //  `quiet` falls silent just before, so that a probe of it is under
    //  way when the stall begins; the caller runs in a thread of its own
    chorus_node_t *slow = test_node ("slow", NULL, NULL);
    chorus_node_set_inline (slow, true);
    chorus_node_handle (slow, "slow", s_on_slow, NULL);
    chorus_node_on_peer (slow, s_on_peer_change, NULL);
    if (chorus_node_start (slow))
        bail_out ("cannot start the slow service");
    chorus_node_t *quiet = test_node ("quiet", NULL, chorus_node_endpoint (slow));
    chorus_node_set_inline (quiet, true);
    chorus_node_t *steady = test_node ("steady", NULL, chorus_node_endpoint (slow));
    if (chorus_node_start (quiet) || chorus_node_start (steady))
        bail_out ("cannot start the slow service's peers");
    chorus_node_t *trio [3] = {slow, quiet, steady};
    met_t met_quiet = {slow, "quiet"}, met_steady = {slow, "steady"}, met_slow = {steady, "slow"};
    ok (test_run_until (trio, 3, s_met, &met_quiet, 10000)
        && test_run_until (trio, 3, s_met, &met_steady, 10000)
        && test_run_until (trio, 3, s_met, &met_slow, 10000), "the slow service meets its peers");
    test_run_until (trio, 3, s_never, NULL, 1000);
    s_lost = 0;
    chorus_node_t *pair [2] = {slow, steady};
    test_run_until (pair, 2, s_never, NULL, TEST_EVASIVE_MS * 5 / 6);
    caller_t slow_caller = {0, 0, 0, zhashx_new (), 0};
    chorus_node_send (steady, "slow", "slow", "x", 1, 30000, s_on_reply, &slow_caller);
    s_want = 1;
    ok (test_run_until (pair, 2, s_replies, &slow_caller, 10000), "the slow command is answered");
    test_run_until (trio, 3, s_never, NULL, 1000);
    ok (chorus_node_counter (slow, "stalls") >= 1, "the node counts its handler's time as a "
        "stall of its own (%d)", (int) chorus_node_counter (slow, "stalls"));
    is_int (s_lost, 0, "and suspected or expired no peer for it");
    is_int (test_peers (slow, "quiet"), 1, "it still knows the quiet one");
    chorus_node_destroy (&steady);
    chorus_node_destroy (&quiet);
    chorus_node_destroy (&slow);
    zhashx_destroy (&slow_caller.seen);

    //  Last, as it ends ZeroMQ for the whole program: a process that shuts
    //  ZeroMQ down under an inline node gets an error from it, not a
    //  descriptor that is ready for ever, which would spin its loop
    chorus_node_t *orphan = test_node ("orphan", NULL, NULL);
    ok (chorus_node_set_inline (orphan, true) == 0 && chorus_node_start (orphan) == 0,
        "an inline node starts");
    ok (chorus_node_pollfds (orphan, fds, 16, &timeout) > 0, "and has descriptors while ZeroMQ "
        "runs");
    zmq_ctx_shutdown (zsys_init ());
    //  The application's loop, as chorus_node_pollfds documents it
    int loops = 0, rc = 0;
    while (loops < 100 && rc >= 0) {
        loops++;
        rc = chorus_node_pollfds (orphan, fds, 16, &timeout);
        if (rc < 0)
            break;
        struct pollfd items [16];
        for (int i = 0; i < rc && i < 16; i++)
            items [i] = (struct pollfd) {fds [i], POLLIN, 0};
        poll (items, (nfds_t) (rc < 16? rc: 16), timeout < 0 || timeout > 1000? 1000: timeout);
        rc = chorus_node_dispatch (orphan);
    }
    ok (loops <= 3, "once ZeroMQ is shut down, a loop over pollfds ends (after %d waits)", loops);
    is_int (rc, CHORUS_EINTERRUPTED, "on CHORUS_EINTERRUPTED");
    ok (strstr (chorus_node_error (orphan), "terminated") != NULL, "saying why: %s",
        chorus_node_error (orphan));
    is_int (chorus_node_pollfds (orphan, fds, 16, &timeout), CHORUS_EINTERRUPTED,
            "and pollfds fails from then on");
    is_int (chorus_node_dispatch (orphan), CHORUS_EINTERRUPTED, "as does dispatch");
    is_int (chorus_node_run (orphan, 1000), CHORUS_EINTERRUPTED, "and run");
    ok (strstr (chorus_node_error (orphan), "terminated") != NULL, "naming the shutdown, not a "
        "signal: %s", chorus_node_error (orphan));
    chorus_node_destroy (&orphan);
    ok (orphan == NULL, "the node is destroyed all the same");

    zhashx_destroy (&caller.seen);
    zhashx_destroy (&late.seen);
    zhashx_destroy (&record.ids);
    free (events);
    free (keys);
    return done_testing ();
}
