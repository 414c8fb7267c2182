/*  test_discovery_meets_peers.c — three nodes where A and C know only B as
    a seed all see each other within 2 s (gossip); a node killed with
    SIGKILL is reported expired within the liveness time; UDP beacon
    discovery works where broadcast is available.
*/
#include "testutil.h"

typedef struct {
    chorus_node_t **nodes;      //  the nodes to check
    int count;                  //  how many
} mesh_t;

static bool
s_full_mesh (void *arg)
{
    mesh_t *mesh = (mesh_t *) arg;
    for (int i = 0; i < mesh->count; i++)
        if (test_peers (mesh->nodes [i], NULL) != mesh->count - 1)
            return false;
    return true;
}

typedef struct {
    char instance [33];         //  the peer we watch
    int64_t expired_at;         //  when it was reported expired (0: not yet)
} watch_t;

static void
s_on_peer (chorus_node_t *node, const chorus_peer_t *peer, void *arg)
{
    watch_t *watch = (watch_t *) arg;
    if (streq (peer->instance, watch->instance) && peer->state == CHORUS_PEER_EXPIRED)
        watch->expired_at = zclock_mono ();
}

static bool
s_expired (void *arg)
{
    return ((watch_t *) arg)->expired_at != 0;
}

static void
s_gossip (void)
{
    chorus_node_t *nodes [3];
    nodes [1] = test_node ("b-service", NULL, NULL);
    is_int (chorus_node_start (nodes [1]), 0, "B starts");
    int64_t start = zclock_mono ();
    nodes [0] = test_node ("a-service", NULL, chorus_node_endpoint (nodes [1]));
    nodes [2] = test_node ("c-service", NULL, chorus_node_endpoint (nodes [1]));
    is_int (chorus_node_start (nodes [0]), 0, "A starts, seeded with B");
    is_int (chorus_node_start (nodes [2]), 0, "C starts, seeded with B");
    mesh_t mesh = {nodes, 3};
    bool met = test_run_until (nodes, 3, s_full_mesh, &mesh, 2000);
    ok (met, "A, B and C all see each other within 2 s (%d ms)", (int) (zclock_mono () - start));
    is_int (test_peers (nodes [0], "c-service"), 1, "A met C through B's gossip");
    is_int (test_peers (nodes [2], "a-service"), 1, "C met A through B's gossip");
    for (int i = 0; i < 3; i++)
        chorus_node_destroy (&nodes [i]);
}

static void
s_expiry (void)
{
    chorus_node_t *node = test_node ("watcher", NULL, NULL);
    chorus_node_start (node);
    watch_t watch = {"", 0};
    chorus_node_on_peer (node, s_on_peer, &watch);
    char seed [300];
    snprintf (seed, sizeof (seed), "--seed=%s", chorus_node_endpoint (node));
    char *argv [] = {(char *) test_helper_path (), "--service=victim", seed,
                     "--heartbeat=200,600,1000", NULL};
    test_child_t *child = test_spawn (argv);
    char ready [300] = "";
    ok (child && test_child_expect (child, "READY ", ready, sizeof (ready), 5000) == 0,
        "a node starts in its own process");
    sscanf (ready, "%*s %32s", watch.instance);
    int64_t end = zclock_mono () + 3000;
    while (test_peers (node, "victim") == 0 && zclock_mono () < end)
        chorus_node_run (node, 10);
    is_int (test_peers (node, "victim"), 1, "the watcher met it");
    int64_t killed = zclock_mono ();
    test_child_stop (&child, SIGKILL);
    bool expired = test_run_until (&node, 1, s_expired, &watch, 5000);
    int waited = (int) (watch.expired_at - killed);
    ok (expired, "the killed node is reported expired");
    //  Liveness: its connection closes, so it is probed at once, and
    //  expired TEST_EXPIRED_MS after (steps checked every 50 ms tick)
    ok (expired && waited <= TEST_EXPIRED_MS + 300,
        "within the liveness time: %d ms (expiry after a probe unanswered for %d ms)", waited,
        TEST_EXPIRED_MS);
    is_int (test_peers (node, "victim"), 0, "and forgotten");
    chorus_node_destroy (&node);
}

static bool
s_met_by_beacon (void *arg)
{
    chorus_node_t **nodes = (chorus_node_t **) arg;
    return test_peers (nodes [0], NULL) == 1 && test_peers (nodes [1], NULL) == 1;
}

static void
s_beacon (void)
{
    //  Beacons are UDP broadcasts on a real interface: only where the
    //  test is allowed one (CHORUS_TEST_BEACON_PORT names a free port on a
    //  private network, e.g. a network namespace made for the test)
    const char *port = getenv ("CHORUS_TEST_BEACON_PORT");
    if (!port) {
        tap_skip (1, "no broadcast network for beacons (set CHORUS_TEST_BEACON_PORT)");
        return;
    }
    chorus_node_t *nodes [2];
    for (int i = 0; i < 2; i++) {
        nodes [i] = test_node (i? "beacon-b": "beacon-a", NULL, NULL);
        chorus_node_set_listen (nodes [i], "tcp://*:*");
        chorus_node_set_beacon (nodes [i], atoi (port));
        if (chorus_node_start (nodes [i])) {
            tap_skip (1, "the UDP beacon found no broadcast interface");
            chorus_node_destroy (&nodes [0]);
            if (i)
                chorus_node_destroy (&nodes [1]);
            return;
        }
    }
    ok (test_run_until (nodes, 2, s_met_by_beacon, nodes, 5000),
        "two nodes without seeds meet by UDP beacon");

    //  Secure nodes: the beacon (version 2) carries each one's key, which
    //  the other needs to connect; the plaintext nodes ignore them
    char *dir = test_tempdir ("beacon-keys");
    char *trust = zsys_sprintf ("%s/trust", dir);
    zsys_dir_create ("%s", trust);
    chorus_node_t *secure [2];
    for (int i = 0; i < 2; i++) {
        zcert_t *cert = zcert_new ();
        char *path = zsys_sprintf ("%s/node%d.cert", dir, i);
        zcert_save (cert, path);
        free (path);
        path = zsys_sprintf ("%s/node%d.cert", trust, i);
        zcert_save_public (cert, path);
        free (path);
        zcert_destroy (&cert);
    }
    for (int i = 0; i < 2; i++) {
        secure [i] = test_node (i? "secure-b": "secure-a", NULL, NULL);
        chorus_node_set_listen (secure [i], "tcp://*:*");
        chorus_node_set_beacon (secure [i], atoi (port));
        char *cert = zsys_sprintf ("%s/node%d.cert_secret", dir, i);
        chorus_node_set_security (secure [i], cert, trust);
        free (cert);
        chorus_node_start (secure [i]);
    }
    chorus_node_t *all [4] = {nodes [0], nodes [1], secure [0], secure [1]};
    ok (test_run_until (all, 4, s_met_by_beacon, secure, 5000),
        "two secure nodes without seeds meet by UDP beacon, over CURVE");
    ok (test_peers (nodes [0], NULL) == 1 && test_peers (nodes [1], NULL) == 1,
        "the plaintext nodes did not take the secure ones' beacons for theirs");
    for (int i = 0; i < 2; i++) {
        chorus_node_destroy (&secure [i]);
        chorus_node_destroy (&nodes [i]);
    }
    free (trust);
    test_tempdir_remove (&dir);
}

int
main (void)
{
    //  tests/test_beacon_discovery.sh runs the beacon part alone, inside a
    //  network namespace of its own where broadcasting harms nobody
    if (!getenv ("CHORUS_TEST_BEACON_ONLY")) {
        s_gossip ();
        s_expiry ();
    }
    s_beacon ();
    return done_testing ();
}
