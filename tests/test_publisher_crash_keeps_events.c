/*  test_publisher_crash_keeps_events.c — a publisher killed with SIGKILL
    after publish returned, before any delivery, keeps its events: restarted
    on the same store it is the same instance, delivers every event to the
    durable group that subscribed before them, and its seqs continue.
*/
#include "testutil.h"

#define EVENTS 500          //  published before the crash
#define MORE 10             //  published by the third run
#define KEYS 10             //  keys of the events
#define TOTAL (EVENTS + MORE)

typedef struct {
    char instance [64];         //  the publisher's instance id, from its READY line
    int calls;                  //  handler runs
    int distinct;               //  seqs handled at least once
    int copies [TOTAL + 1];     //  handler runs per seq
    int foreign;                //  events from another publisher, or out of range
    int disorder;               //  events of a key handled after a later one
    uint64_t last [KEYS];       //  last seq handled per key
    int want;                   //  seqs 1..want make the wait done
} s_state_t;

static test_child_t *s_publisher;
static char *s_dir;

static void
s_cleanup (void)
{
    test_child_stop (&s_publisher, SIGKILL);
    test_tempdir_remove (&s_dir);
}

static int
s_on_event (chorus_node_t *node, chorus_event_t *event, void *arg)
{
    s_state_t *state = (s_state_t *) arg;
    //  A publisher restarted after a crash numbers its events in a new
    //  epoch (the high 32 bits): the third run's events follow the first's
    uint64_t seq = chorus_event_seq (event);
    if (seq >> 32)
        seq = EVENTS + (seq & 0xFFFFFFFFu);
    int key = -1;
    const char *name = chorus_event_key (event);
    state->calls++;
    if (!streq (chorus_event_instance (event), state->instance) || seq == 0 || seq > TOTAL
    ||  !name || sscanf (name, "key-%d", &key) != 1 || key < 0 || key >= KEYS) {
        state->foreign++;
        return 0;
    }
    if (state->copies [seq]++ == 0)
        state->distinct++;
    if (seq <= state->last [key])
        state->disorder++;
    state->last [key] = seq;
    return 0;
}

//  Done when seqs 1..want have all been handled
static bool
s_handled (void *arg)
{
    s_state_t *state = (s_state_t *) arg;
    for (int seq = 1; seq <= state->want; seq++)
        if (state->copies [seq] == 0)
            return false;
    return true;
}

static chorus_node_t *
s_subscriber (const char *store, const char *seed, s_state_t *state)
{
    chorus_node_t *node = test_node ("audit", store, seed);
    if (chorus_node_subscribe (node, "audit.", s_on_event, state)
    ||  chorus_node_start (node))
        chorus_node_destroy (&node);
    return node;
}

//  Starts the publisher on its store; fills instance and endpoint from READY
static test_child_t *
s_start_publisher (const char *store, const char *seed, const char *publish, char *instance,
                   char *endpoint)
{
    char *argv [16] = {(char *) test_helper_path (), "--service", "ledger", "--store",
                       (char *) store, "--topic", "audit.entry", "--keys", "10",
                       "--heartbeat", "200,600,1000"};
    int argc = 11;
    if (seed) {
        argv [argc++] = "--seed";
        argv [argc++] = (char *) seed;
    }
    if (publish) {
        argv [argc++] = "--publish";
        argv [argc++] = (char *) publish;
    }
    argv [argc] = NULL;
    test_child_t *child = test_spawn (argv);
    char ready [1024] = "";
    *instance = *endpoint = 0;
    if (child && test_child_expect (child, "READY ", ready, sizeof (ready), 5000) == 0)
        sscanf (ready, "%255s %63s", endpoint, instance);
    return child;
}

int
main (void)
{
    tap_plan (17);
    atexit (s_cleanup);
    s_dir = test_tempdir_home ("publisher-crash");
    char *audit_store = zsys_sprintf ("%s/audit", s_dir);
    char *ledger_store = zsys_sprintf ("%s/ledger", s_dir);
    static s_state_t state;
    char instance [64], endpoint [256], line [1024];

    //  The durable group subscribes first, so its events are those
    //  published after this moment, and goes away
    chorus_node_t *subscriber = s_subscriber (audit_store, NULL, &state);
    ok (subscriber != NULL, "the audit group subscribed on its store");
    chorus_node_destroy (&subscriber);

    //  The publisher publishes with nobody to deliver to, and crashes
    s_publisher = s_start_publisher (ledger_store, NULL, "500", instance, endpoint);
    snprintf (state.instance, sizeof (state.instance), "%s", instance);
    ok (*state.instance, "the publisher is ready");
    int published = 0;
    if (test_child_expect (s_publisher, "PUBLISHED ", line, sizeof (line), 10000) == 0)
        published = atoi (line);
    is_int (published, EVENTS, "publish returned for %d events", EVENTS);
    int status = test_child_stop (&s_publisher, SIGKILL);
    ok (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL,
        "the publisher was alive until SIGKILL");

    //  Both come back on their stores and meet
    s_publisher = s_start_publisher (ledger_store, NULL, NULL, instance, endpoint);
    is_str (instance, state.instance, "the restarted publisher is the same instance");
    subscriber = s_subscriber (audit_store, *endpoint? endpoint: NULL, &state);
    ok (subscriber != NULL, "the audit group is back on its store");
    state.want = EVENTS;
    ok (subscriber && test_run_until (&subscriber, 1, s_handled, &state, 15000),
        "every event published before the crash is delivered");
    is_int (state.distinct, EVENTS, "exactly seqs 1..%d were delivered", EVENTS);
    is_int (state.calls, EVENTS, "each was handled once");

    //  A third run publishes more: its seqs, in a new epoch, are above every
    //  seq before the crash
    status = test_child_stop (&s_publisher, SIGKILL);
    ok (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL,
        "the restarted publisher was alive until SIGKILL");
    s_publisher = s_start_publisher (ledger_store,
                                     subscriber? chorus_node_endpoint (subscriber): NULL, "10",
                                     instance, endpoint);
    is_str (instance, state.instance, "the publisher is still the same instance");
    published = 0;
    if (test_child_expect (s_publisher, "PUBLISHED ", line, sizeof (line), 10000) == 0)
        published = atoi (line);
    is_int (published, MORE, "publish returned for %d more events", MORE);
    state.want = TOTAL;
    ok (subscriber && test_run_until (&subscriber, 1, s_handled, &state, 15000),
        "%d more arrive from the same publisher instance", MORE);
    is_int (state.distinct, TOTAL, "no seq was skipped or reused");
    is_int (state.calls, TOTAL, "no event was handled twice across the publisher's restarts");
    is_int (state.foreign, 0, "every event came from the one publisher, within 1..%d or the new epoch", EVENTS);
    is_int (state.disorder, 0, "each key was handled in order");

    chorus_node_destroy (&subscriber);
    zstr_free (&audit_store);
    zstr_free (&ledger_store);
    s_cleanup ();
    return tap_failed? 1: 0;
}
