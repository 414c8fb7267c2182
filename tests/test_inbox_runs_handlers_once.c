/*  test_inbox_runs_handlers_once.c — a forced redelivery of an event or a
    command does not run the handler twice, and a duplicate command gets
    the cached reply. A hand-made peer sends the copies, so the test decides
    exactly what reaches the node; the inbox is checked again after the node
    restarts on the same store.
*/
#include "fake_peer.h"

typedef struct {
    int events;                 //  event handler runs
    int commands;               //  command handler runs
} state_t;

static int
s_on_event (chorus_node_t *node, chorus_event_t *event, void *arg)
{
    ((state_t *) arg)->events++;
    return 0;
}

//  Replies with the handler's run count, so a cached reply is recognisable
static void
s_on_reserve (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    state_t *state = (state_t *) arg;
    state->commands++;
    char text [32];
    snprintf (text, sizeof (text), "reserved-%d", state->commands);
    chorus_reply_set_payload (reply, text, strlen (text));
}

static chorus_node_t *
s_start_node (const char *store, state_t *state)
{
    chorus_node_t *node = test_node ("inventory", store, NULL);
    chorus_node_subscribe (node, "order.", s_on_event, state);
    chorus_node_handle (node, "reserve", s_on_reserve, state);
    if (chorus_node_start (node))
        bail_out ("the inventory node does not start");
    return node;
}

static bool
s_never (void *arg)
{
    return false;
}

//  Sends a command and waits for the REPLY to it
static chorus_msg_t *
s_call (fake_peer_t *fake, chorus_node_t *node, chorus_msg_t *command)
{
    fake_peer_send (fake, command);
    return fake_peer_recv (fake, node, CHORUS_MSG_REPLY, NULL, 5000);
}

static void
s_check_reply (chorus_msg_t *reply, chorus_msg_t *command, const char *payload,
               const char *label)
{
    ok (reply != NULL, "%s: a REPLY comes", label);
    if (!reply)
        return;
    is_str (chorus_msg_request (reply), chorus_msg_id (command), "%s: it answers this command",
            label);
    is_str (chorus_msg_correlation (reply), chorus_msg_correlation (command),
            "%s: it carries the command's correlation", label);
    is_int (chorus_msg_status (reply), CHORUS_REPLY_OK, "%s: status ok", label);
    ok (fake_peer_payload_is (reply, payload), "%s: payload is '%s'", label, payload);
}

int
main (void)
{
    char *store = test_tempdir ("inbox");
    state_t state = {0, 0};
    chorus_node_t *node = s_start_node (store, &state);
    fake_peer_t *fake = fake_peer_new ("orders");
    if (!fake)
        bail_out ("the fake peer cannot bind");
    if (!ok (fake_peer_meet (fake, node, 5000) == 0, "the fake peer and the node exchange HELLO"))
        bail_out ("no HELLO from the node");

    //  An event, then the same event redelivered
    chorus_msg_t *event = fake_peer_event (fake, 1, "order.placed", "k", "inventory", 1, "p");
    fake_peer_send (fake, event);
    chorus_msg_t *ack = fake_peer_recv (fake, node, CHORUS_MSG_EVENT_ACK, NULL, 5000);
    ok (ack != NULL, "the first delivery is acknowledged");
    is_int (ack? (int64_t) chorus_msg_status (ack): -1, CHORUS_ACK_HANDLED,
            "EVENT-ACK status 0 (handled)");
    is_str (ack? chorus_msg_group (ack): NULL, "inventory", "the ack names the group");
    is_int (ack? (int64_t) chorus_msg_seq (ack): -1, 1, "the ack names seq 1");
    is_int (state.events, 1, "the handler ran once");
    chorus_msg_destroy (&ack);

    chorus_msg_set_attempt (event, 2);
    fake_peer_send (fake, event);
    ack = fake_peer_recv (fake, node, CHORUS_MSG_EVENT_ACK, NULL, 5000);
    ok (ack != NULL, "the redelivery is acknowledged");
    is_int (ack? (int64_t) chorus_msg_status (ack): -1, CHORUS_ACK_DUPLICATE,
            "EVENT-ACK status 1 (duplicate)");
    is_int (ack? (int64_t) chorus_msg_seq (ack): -1, 1, "the duplicate ack names seq 1");
    is_int (state.events, 1, "the handler did not run again");
    is_int (chorus_node_counter (node, "duplicates"), 1, "the node counted one duplicate");
    chorus_msg_destroy (&ack);

    //  An event for another group
    chorus_msg_t *stray = fake_peer_event (fake, 2, "order.placed", "k2", "payments", 1, "p");
    fake_peer_send (fake, stray);
    chorus_msg_t *error =
        fake_peer_recv (fake, node, CHORUS_MSG_ERROR, chorus_msg_id (stray), 5000);
    ok (error != NULL, "an EVENT for group payments gets an ERROR");
    is_str (error? chorus_msg_code (error): NULL, "wrong-group", "ERROR code wrong-group");
    is_int (state.events, 1, "the handler did not run for another group's event");
    chorus_msg_destroy (&error);
    chorus_msg_destroy (&stray);

    //  A command, then another command with the same idempotency key
    uint64_t later = zclock_time () + 10000;
    chorus_msg_t *first = fake_peer_command (fake, "inventory", "reserve", "flow-1/reserve",
                                             later, "sku-1");
    chorus_msg_t *reply = s_call (fake, node, first);
    s_check_reply (reply, first, "reserved-1", "first command");
    is_int (state.commands, 1, "the command handler ran once");
    char first_reply_id [65] = "";
    if (reply)
        snprintf (first_reply_id, sizeof (first_reply_id), "%s", chorus_msg_id (reply));
    chorus_msg_destroy (&reply);

    chorus_msg_t *second = fake_peer_command (fake, "inventory", "reserve", "flow-1/reserve",
                                              later, "sku-1");
    reply = s_call (fake, node, second);
    s_check_reply (reply, second, "reserved-1", "same idempotency key, another id");
    ok (reply && !streq (chorus_msg_id (reply), first_reply_id),
        "the cached reply is sent with a fresh message id");
    is_int (state.commands, 1, "the handler did not run for the duplicate");
    chorus_msg_destroy (&reply);
    chorus_msg_destroy (&second);

    //  Without an idempotency key the command id is the key
    chorus_msg_t *keyless = fake_peer_command (fake, "inventory", "reserve", NULL, later, NULL);
    reply = s_call (fake, node, keyless);
    s_check_reply (reply, keyless, "reserved-2", "command without a key");
    is_int (state.commands, 2, "the handler ran for it");
    chorus_msg_destroy (&reply);
    chorus_msg_set_attempt (keyless, 2);
    reply = s_call (fake, node, keyless);
    s_check_reply (reply, keyless, "reserved-2", "the same command re-sent");
    is_int (state.commands, 2, "the handler did not run for the re-send");
    chorus_msg_destroy (&reply);
    chorus_msg_destroy (&keyless);

    //  A command whose deadline has passed: the sender has given up on it
    chorus_msg_t *expired = fake_peer_command (fake, "inventory", "reserve", "flow-2/reserve",
                                               zclock_time () - 1000, NULL);
    fake_peer_send (fake, expired);
    //  Nothing comes back by design, so absence can only be checked by
    //  waiting: 500 ms, dispatching the node, is far longer than a handled
    //  command takes on loopback (the replies above came in milliseconds)
    fake_peer_wait (fake, node, s_never, NULL, 500);
    reply = fake_peer_take (fake, CHORUS_MSG_REPLY, NULL);
    ok (reply == NULL, "no REPLY to a command past its deadline");
    is_int (state.commands, 2, "the handler did not run for it");
    chorus_msg_destroy (&reply);
    chorus_msg_destroy (&expired);

    //  A command nobody handles
    chorus_msg_t *unknown = fake_peer_command (fake, "inventory", "teleport", NULL, later, NULL);
    reply = s_call (fake, node, unknown);
    ok (reply != NULL, "an unknown command gets a REPLY");
    is_str (reply? chorus_msg_request (reply): NULL, chorus_msg_id (unknown),
            "it answers the unknown command");
    is_int (reply? (int64_t) chorus_msg_status (reply): -1, CHORUS_REPLY_ERROR, "status 1");
    is_str (reply? chorus_msg_code (reply): NULL, "unknown-command", "code unknown-command");
    ok (reply && !chorus_msg_retryable (reply), "not retryable");
    is_int (state.commands, 2, "no handler ran");
    chorus_msg_destroy (&reply);
    chorus_msg_destroy (&unknown);

    //  The node restarts on the same store: its inbox remembers
    char instance [33];
    snprintf (instance, sizeof (instance), "%s", chorus_node_instance (node));
    chorus_node_destroy (&node);
    node = s_start_node (store, &state);
    is_str (chorus_node_instance (node), instance, "the restarted node keeps its instance id");
    if (!ok (fake_peer_meet (fake, node, 5000) == 0, "the fake peer meets the restarted node"))
        bail_out ("no HELLO from the restarted node");

    chorus_msg_set_attempt (event, 3);
    fake_peer_send (fake, event);
    ack = fake_peer_recv (fake, node, CHORUS_MSG_EVENT_ACK, NULL, 5000);
    ok (ack != NULL, "a third copy after the restart is acknowledged");
    is_int (ack? (int64_t) chorus_msg_status (ack): -1, CHORUS_ACK_DUPLICATE,
            "as a duplicate: the inbox is durable");
    is_int (state.events, 1, "the handler did not run after the restart");
    chorus_msg_destroy (&ack);

    chorus_msg_t *third = fake_peer_command (fake, "inventory", "reserve", "flow-1/reserve",
                                             zclock_time () + 10000, "sku-1");
    reply = s_call (fake, node, third);
    s_check_reply (reply, third, "reserved-1", "duplicate command after the restart");
    is_int (state.commands, 2, "the handler did not run for it");
    chorus_msg_destroy (&reply);
    chorus_msg_destroy (&third);
    is_int (fake->malformed, 0, "everything the node sent the fake peer decoded");

    chorus_msg_destroy (&first);
    chorus_msg_destroy (&event);
    chorus_node_destroy (&node);
    fake_peer_destroy (&fake);
    test_tempdir_remove (&store);
    return done_testing ();
}
