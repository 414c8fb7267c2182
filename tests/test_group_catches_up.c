/*  test_group_catches_up.c — temporal decoupling and the rule that closes
    the race with discovery. A durable group whose instances are all down
    while 1,000 events are published receives all of them, in per-key
    order, when an instance starts again. A group that subscribed before a
    publisher published, but had never met it, still gets those events; a
    group created after them starts at the latest event, or at the
    earliest with start-earliest. An observer that reads the history does
    not make the node's own groups read it too.
*/
#include "testutil.h"

#define EVENTS 1000
#define KEYS 50

typedef struct {
    int handled [EVENTS + 100];     //  times each seq was handled
    uint64_t last_seq [KEYS];       //  last seq per key
    int out_of_order;               //  events handled before an earlier one of their key
    int total;                      //  handler runs
} record_t;

static int
s_on_event (chorus_node_t *node, chorus_event_t *event, void *arg)
{
    record_t *record = (record_t *) arg;
    uint64_t seq = chorus_event_seq (event);
    const char *key = chorus_event_key (event);
    int k = key? atoi (key + 4) % KEYS: 0;
    if (seq < EVENTS + 100)
        record->handled [seq]++;
    if (seq < record->last_seq [k])
        record->out_of_order++;
    record->last_seq [k] = seq;
    record->total++;
    return 0;
}

typedef struct {
    record_t *record;               //  what to look at
    int want;                       //  handler runs to wait for
} want_t;

static bool
s_has (void *arg)
{
    want_t *want = (want_t *) arg;
    return want->record->total >= want->want;
}

static bool
s_met (void *arg)
{
    return test_peers ((chorus_node_t *) arg, NULL) > 0;
}

static void
s_publish (chorus_node_t *node, const char *topic, int count)
{
    int failed = 0;
    for (int i = 0; i < count; i++) {
        char key [16];
        snprintf (key, sizeof (key), "key-%d", i % KEYS);
        failed += chorus_node_publish (node, topic, key, "{}", 2) != 0;
    }
    is_int (failed, 0, "%d events published on %s", count, topic);
}

static void
s_absent_group (const char *root)
{
    char *pub_store = zsys_sprintf ("%s/orders", root);
    char *sub_store = zsys_sprintf ("%s/inventory", root);
    chorus_node_t *publisher = test_node ("orders", pub_store, NULL);
    chorus_node_start (publisher);
    record_t record = {{0}, {0}, 0, 0};
    chorus_node_t *instance = test_node ("inventory", sub_store, chorus_node_endpoint (publisher));
    chorus_node_subscribe (instance, "order.", s_on_event, &record);
    chorus_node_start (instance);
    chorus_node_t *nodes [2] = {publisher, instance};
    ok (test_run_until (nodes, 2, s_met, publisher, 3000), "the publisher met the group");
    chorus_node_destroy (&instance);
    nodes [1] = NULL;

    s_publish (publisher, "order.placed", EVENTS);
    ok (chorus_node_unacked (publisher) >= EVENTS,
        "the absent durable group holds all %d events (%" PRId64 " unacked)", EVENTS,
        chorus_node_unacked (publisher));

    instance = test_node ("inventory", sub_store, chorus_node_endpoint (publisher));
    chorus_node_subscribe (instance, "order.", s_on_event, &record);
    chorus_node_start (instance);
    nodes [1] = instance;
    want_t want = {&record, EVENTS};
    ok (test_run_until (nodes, 2, s_has, &want, 20000), "the returning instance handled %d",
        EVENTS);
    int once = 0;
    for (int seq = 1; seq <= EVENTS; seq++)
        once += record.handled [seq] == 1;
    is_int (once, EVENTS, "each of the 1000 events exactly once");
    is_int (record.out_of_order, 0, "in per-key order");
    chorus_node_destroy (&instance);
    chorus_node_destroy (&publisher);
    free (pub_store);
    free (sub_store);
}

static void
s_discovery_race (const char *root)
{
    //  The ledger group subscribes, then goes away before it ever meets
    //  the publisher: only its store remembers when it subscribed
    char *ledger_store = zsys_sprintf ("%s/ledger", root);
    record_t ledger = {{0}, {0}, 0, 0};
    chorus_node_t *early = test_node ("ledger", ledger_store, NULL);
    chorus_node_subscribe (early, "pay.", s_on_event, &ledger);
    chorus_node_start (early);
    chorus_node_destroy (&early);

    //  A publisher that starts and publishes at once, knowing nobody
    char *pub_store = zsys_sprintf ("%s/payments", root);
    chorus_node_t *publisher = test_node ("payments", pub_store, NULL);
    chorus_node_start (publisher);
    s_publish (publisher, "pay.settled", 100);

    //  The groups appear later: ledger (subscribed before), late (after),
    //  and replay (after, but asking for the earliest)
    record_t late = {{0}, {0}, 0, 0}, replay = {{0}, {0}, 0, 0};
    chorus_node_t *nodes [4] = {publisher, NULL, NULL, NULL};
    nodes [1] = test_node ("ledger", ledger_store, chorus_node_endpoint (publisher));
    chorus_node_subscribe (nodes [1], "pay.", s_on_event, &ledger);
    nodes [2] = test_node ("late", NULL, chorus_node_endpoint (publisher));
    chorus_node_subscribe (nodes [2], "pay.", s_on_event, &late);
    nodes [3] = test_node ("replay", NULL, chorus_node_endpoint (publisher));
    chorus_node_set_start_earliest (nodes [3], true);
    chorus_node_subscribe (nodes [3], "pay.", s_on_event, &replay);
    for (int i = 1; i < 4; i++)
        chorus_node_start (nodes [i]);
    want_t want_ledger = {&ledger, 100};
    bool got = test_run_until (nodes, 4, s_has, &want_ledger, 10000);
    ok (got, "a group that subscribed before the events, met after, gets all 100 (%d)",
        ledger.total);
    want_t want_replay = {&replay, 100};
    got = test_run_until (nodes, 4, s_has, &want_replay, 10000);
    ok (got, "a new group starting at the earliest gets all 100 (%d)", replay.total);
    //  Everything the publisher holds for late is one more event
    s_publish (publisher, "pay.settled", 1);
    want_t want_late = {&late, 1};
    ok (test_run_until (nodes, 4, s_has, &want_late, 10000), "the late group gets the new event");
    is_int (late.total, 1, "and none of the 100 published before it subscribed");
    is_int (late.handled [101], 1, "it is seq 101");
    for (int i = 0; i < 4; i++)
        chorus_node_destroy (&nodes [i]);
    free (ledger_store);
    free (pub_store);
}

//  Counts observed events
static int
s_on_observed (chorus_node_t *node, chorus_event_t *event, void *arg)
{
    (*(int *) arg)++;
    return 0;
}

static bool
s_observed_all (void *arg)
{
    return *(int *) arg >= 21;
}

static void
s_observer_keeps_own_start (const char *root)
{
    char *pub_store = zsys_sprintf ("%s/audit-source", root);
    chorus_node_t *publisher = test_node ("ledger", pub_store, NULL);
    chorus_node_start (publisher);
    s_publish (publisher, "audit.entry", 20);

    //  One node: a new group on the latest events, and an observer of the
    //  whole history
    record_t group = {{0}, {0}, 0, 0};
    int observed = 0;
    chorus_node_t *nodes [2] = {publisher, NULL};
    nodes [1] = test_node ("auditor", NULL, chorus_node_endpoint (publisher));
    chorus_node_subscribe (nodes [1], "audit.", s_on_event, &group);
    chorus_node_observe (nodes [1], "audit.", true, s_on_observed, &observed);
    chorus_node_start (nodes [1]);
    ok (test_run_until (nodes, 2, s_met, nodes [1], 5000), "the auditor meets the publisher");
    s_publish (publisher, "audit.entry", 1);
    want_t want = {&group, 1};
    ok (test_run_until (nodes, 2, s_has, &want, 10000), "its group gets the new event");
    ok (test_run_until (nodes, 2, s_observed_all, &observed, 10000),
        "the observer sees all 21");
    is_int (group.total, 1, "and the group only the new one: the observer's history is its own");
    is_int (group.handled [21], 1, "seq 21");
    for (int i = 0; i < 2; i++)
        chorus_node_destroy (&nodes [i]);
    free (pub_store);
}

int
main (void)
{
    char *root = test_tempdir ("catchup");
    s_absent_group (root);
    s_discovery_race (root);
    s_observer_keeps_own_start (root);
    test_tempdir_remove (&root);
    return done_testing ();
}
