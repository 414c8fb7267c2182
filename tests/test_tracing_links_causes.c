/*  test_tracing_links_causes.c — an event published from inside a handler
    carries the handled message's correlation id, and that message's id as
    its causation id; the same holds for commands sent from a handler and
    events published by a command handler. An observer sees enough to
    rebuild the causal chain.
*/
#include "testutil.h"

typedef struct {
    char id [65];               //  event id
    char correlation [129];     //  its correlation
    char causation [129];       //  its causation ("" if none)
} seen_t;

typedef struct {
    seen_t events [8];          //  events the observer saw, by topic order below
    int count;                  //  how many
} trace_t;

static void
s_copy (seen_t *seen, chorus_event_t *event)
{
    snprintf (seen->id, sizeof (seen->id), "%s", chorus_event_id (event));
    snprintf (seen->correlation, sizeof (seen->correlation), "%s",
              chorus_event_correlation (event));
    snprintf (seen->causation, sizeof (seen->causation), "%s",
              chorus_event_causation (event)? chorus_event_causation (event): "");
}

static int
s_observe (chorus_node_t *node, chorus_event_t *event, void *arg)
{
    trace_t *trace = (trace_t *) arg;
    int slot = streq (chorus_event_topic (event), "order.placed")? 0:
               streq (chorus_event_topic (event), "stock.reserved")? 1:
               streq (chorus_event_topic (event), "payment.charged")? 2: 3;
    s_copy (&trace->events [slot], event);
    trace->count++;
    return 0;
}

static char s_command_id [65];
static char s_command_correlation [129];
static char s_command_causation [129];

//  inventory: on order.placed, publish stock.reserved and ask payments
static void
s_on_reply (chorus_node_t *node, chorus_reply_t *reply, void *arg)
{
}

static int
s_on_order (chorus_node_t *node, chorus_event_t *event, void *arg)
{
    chorus_node_publish (node, "stock.reserved", chorus_event_key (event), NULL, 0);
    chorus_node_send (node, "payments", "charge", NULL, 0, 5000, s_on_reply, NULL);
    return 0;
}

//  payments: the charge publishes payment.charged
static void
s_on_charge (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    snprintf (s_command_id, sizeof (s_command_id), "%s", chorus_command_id (command));
    snprintf (s_command_correlation, sizeof (s_command_correlation), "%s",
              chorus_command_correlation (command));
    snprintf (s_command_causation, sizeof (s_command_causation), "%s",
              chorus_command_causation (command)? chorus_command_causation (command): "");
    chorus_node_publish (node, "payment.charged", NULL, NULL, 0);
}

static bool
s_traced (void *arg)
{
    return ((trace_t *) arg)->count >= 3;
}

static bool
s_met (void *arg)
{
    chorus_node_t **nodes = (chorus_node_t **) arg;
    for (int i = 0; i < 4; i++)
        if (test_peers (nodes [i], NULL) < 3)
            return false;
    return true;
}

int
main (void)
{
    trace_t trace;
    memset (&trace, 0, sizeof (trace));
    chorus_node_t *nodes [4];
    nodes [0] = test_node ("tracer", NULL, NULL);
    chorus_node_observe (nodes [0], "", false, s_observe, &trace);
    chorus_node_start (nodes [0]);
    const char *seed = chorus_node_endpoint (nodes [0]);
    nodes [1] = test_node ("orders", NULL, seed);
    nodes [2] = test_node ("inventory", NULL, seed);
    chorus_node_subscribe (nodes [2], "order.", s_on_order, NULL);
    nodes [3] = test_node ("payments", NULL, seed);
    chorus_node_handle (nodes [3], "charge", s_on_charge, NULL);
    for (int i = 1; i < 4; i++)
        chorus_node_start (nodes [i]);
    ok (test_run_until (nodes, 4, s_met, nodes, 5000), "four nodes met");

    char origin [33];
    is_int (chorus_node_publish_traced (nodes [1], "order.placed", "order-7", NULL, 0,
                                        "checkout-7", origin), 0, "order.placed published");
    ok (test_run_until (nodes, 4, s_traced, &trace, 10000), "the tracer saw three events");
    seen_t *placed = &trace.events [0], *reserved = &trace.events [1], *charged = &trace.events [2];
    is_str (placed->id, origin, "the origin's id is the one publish returned");
    is_str (placed->correlation, "checkout-7", "the origin carries the given correlation");
    is_str (placed->causation, "", "and no causation");
    is_str (reserved->correlation, "checkout-7", "an event from a handler keeps the correlation");
    is_str (reserved->causation, origin, "and names the handled event as its cause");
    is_str (s_command_correlation, "checkout-7", "a command from a handler keeps it too");
    is_str (s_command_causation, origin, "and names the event as its cause");
    is_str (charged->correlation, "checkout-7", "an event from a command handler keeps it");
    is_str (charged->causation, s_command_id, "and names the command as its cause");
    for (int i = 0; i < 4; i++)
        chorus_node_destroy (&nodes [i]);
    return done_testing ();
}
