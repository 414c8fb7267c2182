/*  test_command_survives_instance_kill.c — a command outlives the instance
    handling it: killed mid-handler, the command completes on another
    instance before its deadline; and a command to a service with no live
    instance waits for one that starts within the deadline.
*/
#include "testutil.h"

//  The reply a sender got
typedef struct {
    bool received;              //  the reply handler ran
    int status;                 //  chorus_reply_status
    char payload [64];          //  its payload: the replying instance id
    int64_t at;                 //  when it came (zclock_mono)
} s_reply_t;

//  A helper's log, and a line to wait for in it
typedef struct {
    const char *path;           //  the log file
    const char *line;           //  the whole line wanted
} s_wanted_t;

static test_child_t *s_slow, *s_fast, *s_shipping;
static char *s_dir;

static void
s_cleanup (void)
{
    test_child_stop (&s_slow, SIGKILL);
    test_child_stop (&s_fast, SIGKILL);
    test_child_stop (&s_shipping, SIGKILL);
    test_tempdir_remove (&s_dir);
}

static void
s_on_reply (chorus_node_t *node, chorus_reply_t *reply, void *arg)
{
    s_reply_t *result = (s_reply_t *) arg;
    result->received = true;
    result->status = chorus_reply_status (reply);
    size_t size = chorus_reply_size (reply);
    if (size >= sizeof (result->payload))
        size = sizeof (result->payload) - 1;
    if (chorus_reply_payload (reply))
        memcpy (result->payload, chorus_reply_payload (reply), size);
    result->payload [size] = 0;
    result->at = zclock_mono ();
}

static bool
s_replied (void *arg)
{
    return ((s_reply_t *) arg)->received;
}

static bool
s_never (void *arg)
{
    return false;
}

//  Counts the lines of a log that start with prefix; copies the last one
static int
s_log_count (const char *path, const char *prefix, char *last, size_t size)
{
    FILE *file = fopen (path, "r");
    int count = 0;
    char line [256];
    while (file && fgets (line, sizeof (line), file))
        if (strncmp (line, prefix, strlen (prefix)) == 0) {
            count++;
            if (last)
                snprintf (last, size, "%s", line);
        }
    if (file)
        fclose (file);
    return count;
}

static bool
s_logged (void *arg)
{
    s_wanted_t *wanted = (s_wanted_t *) arg;
    return s_log_count (wanted->path, wanted->line, NULL, 0) > 0;
}

typedef struct {
    chorus_node_t *node;        //  whose peers we count
    const char *service;        //  of which service
    int count;                  //  how many we want
} s_peers_t;

static bool
s_met (void *arg)
{
    s_peers_t *peers = (s_peers_t *) arg;
    return test_peers (peers->node, peers->service) == peers->count;
}

//  Starts a helper handling one command; fills instance from READY
static test_child_t *
s_start_helper (const char *service, const char *command, const char *slow, const char *seed,
                const char *log, char *instance)
{
    char *argv [16] = {(char *) test_helper_path (), "--service", (char *) service, "--handle",
                       (char *) command, "--seed", (char *) seed, "--log", (char *) log,
                       "--heartbeat", "200,600,1000"};
    int argc = 11;
    if (slow) {
        argv [argc++] = "--slow";
        argv [argc++] = (char *) slow;
    }
    argv [argc] = NULL;
    test_child_t *child = test_spawn (argv);
    char ready [1024] = "", endpoint [256];
    *instance = 0;
    if (child && test_child_expect (child, "READY ", ready, sizeof (ready), 5000) == 0)
        sscanf (ready, "%255s %63s", endpoint, instance);
    return child;
}

int
main (void)
{
    tap_plan (15);
    atexit (s_cleanup);
    s_dir = test_tempdir_home ("command-kill");
    char *store = zsys_sprintf ("%s/orders", s_dir);
    char *slow_log = zsys_sprintf ("%s/payments-slow.log", s_dir);
    char *fast_log = zsys_sprintf ("%s/payments-fast.log", s_dir);
    char *shipping_log = zsys_sprintf ("%s/shipping.log", s_dir);
    chorus_node_t *orders = test_node ("orders", store, NULL);
    if (chorus_node_start (orders))
        bail_out ("the orders node did not start");
    const char *seed = chorus_node_endpoint (orders);
    char slow [64], fast [64], shipping [64], last [256];

    //  The command lands on the only instance there is, a slow one
    s_slow = s_start_helper ("payments", "charge", "3000", seed, slow_log, slow);
    s_peers_t peers = {orders, "payments", 1};
    ok (*slow && test_run_until (&orders, 1, s_met, &peers, 5000),
        "the slow payments instance is known");
    s_reply_t charge = {0};
    int64_t sent_at = zclock_mono ();
    ok (chorus_node_send_traced (orders, "payments", "charge", "42.00", 5, 10000,
                                 "order-1/charge", NULL, s_on_reply, &charge) == 0,
        "charge sent");
    s_wanted_t started = {slow_log, "C order-1/charge 1 start\n"};
    ok (test_run_until (&orders, 1, s_logged, &started, 5000),
        "the slow instance started handling it");

    //  A second instance joins, and the first dies mid-handler
    s_fast = s_start_helper ("payments", "charge", NULL, seed, fast_log, fast);
    peers.count = 2;
    ok (*fast && test_run_until (&orders, 1, s_met, &peers, 5000),
        "the fast payments instance is known");
    int status = test_child_stop (&s_slow, SIGKILL);
    ok (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL
        && s_log_count (slow_log, "C order-1/charge 1 done", NULL, 0) == 0,
        "the slow instance was killed before its handler finished");

    test_run_until (&orders, 1, s_replied, &charge, 12000);
    ok (charge.received && charge.at - sent_at < 10000,
        "the reply came before the deadline (%" PRId64 " ms)", charge.at - sent_at);
    is_int (charge.status, 0, "the command succeeded");
    is_str (charge.payload, fast, "the fast instance replied");
    is_int (s_log_count (fast_log, "C order-1/charge ", last, sizeof (last)), 2,
            "the fast instance handled it once (start and done)");
    unsigned attempt = 0;
    sscanf (last, "C order-1/charge %u done", &attempt);
    ok (attempt == 1, "as the sender's first try (%u): moving it to another instance is the "
        "transport's re-send, not a new try", attempt);

    //  A command to a service that is not there yet waits for it
    s_reply_t label = {0};
    sent_at = zclock_mono ();
    ok (chorus_node_send (orders, "shipping", "label", "order-1", 7, 5000, s_on_reply,
                          &label) == 0,
        "label sent with no shipping instance alive");
    //  The service really starts late: a second without it is the point
    test_run_until (&orders, 1, s_never, NULL, 1000);
    ok (!label.received, "no reply while no shipping instance exists");
    s_shipping = s_start_helper ("shipping", "label", NULL, seed, shipping_log, shipping);
    test_run_until (&orders, 1, s_replied, &label, 6000);
    ok (label.received && label.at - sent_at < 5000,
        "the reply came before the deadline (%" PRId64 " ms)", label.at - sent_at);
    is_int (label.status, 0, "the late service handled it");
    is_str (label.payload, shipping, "the shipping instance replied");

    chorus_node_destroy (&orders);
    zstr_free (&store);
    zstr_free (&slow_log);
    zstr_free (&fast_log);
    zstr_free (&shipping_log);
    s_cleanup ();
    return tap_failed? 1: 0;
}
