/*  test_failures_say_why.c — every kind of public call, made to fail for
    real: it returns the negative code its comment in chorus.h names (never
    -1), chorus_errno () agrees, and chorus_node_error says why: the store
    is in use by another node, the inbox endpoint is taken, a seed or a
    certificate is bad, the store is damaged, retention is full. A node
    whose start failed can be started again once the cause is gone.
*/
#include "testutil.h"

//  The call failed as documented: the code returned is the one expected,
//  chorus_errno () says the same, and the node's reason holds reason (a
//  non-empty one when reason is "")
static bool
s_failed (int rc, int code, chorus_node_t *node, const char *reason, const char *what)
{
    const char *detail = chorus_node_error (node);
    bool said = reason? (*reason? strstr (detail, reason) != NULL: *detail != 0): true;
    bool pass = ok (rc == code && chorus_errno () == code && said, "%s: %s%s%s", what,
                    chorus_strerror (rc), *detail? ": ": "", detail);
    if (!pass)
        diag ("returned %d, chorus_errno %d, expected %d (%s)", rc, chorus_errno (), code,
              chorus_strerror (code));
    return pass;
}

static int
s_on_event (chorus_node_t *node, chorus_event_t *event, void *arg)
{
    return 0;
}

//  Replies to "echo" with a payload over the limit: the error it got
typedef struct {
    int rc;                     //  what chorus_reply_set_payload returned
    int errno_then;             //  chorus_errno () right after
    const char *detail;         //  chorus_node_error (NULL) right after
    bool ran;                   //  the handler ran
    int status;                 //  the reply's status, at the sender
    bool replied;               //  the sender got it
    char code [64];             //  its error code and message, if any
    char message [256];
} s_echo_t;

static void
s_on_echo (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    s_echo_t *echo = (s_echo_t *) arg;
    size_t size = CHORUS_PAYLOAD_MAX + 1;
    char *big = (char *) calloc (1, size);
    echo->rc = chorus_reply_set_payload (reply, big, size);
    echo->errno_then = chorus_errno ();
    echo->detail = chorus_node_error (NULL);
    echo->ran = true;
    free (big);
}

static void
s_on_reply (chorus_node_t *node, chorus_reply_t *reply, void *arg)
{
    s_echo_t *echo = (s_echo_t *) arg;
    echo->status = chorus_reply_status (reply);
    snprintf (echo->code, sizeof (echo->code), "%s",
              chorus_reply_code (reply)? chorus_reply_code (reply): "");
    snprintf (echo->message, sizeof (echo->message), "%s",
              chorus_reply_message (reply)? chorus_reply_message (reply): "");
    echo->replied = true;
}

static bool
s_replied (void *arg)
{
    return ((s_echo_t *) arg)->replied;
}

typedef struct {
    chorus_node_t *node;        //  who looks
    const char *service;        //  for whom
} s_look_t;

static bool
s_knows (void *arg)
{
    s_look_t *look = (s_look_t *) arg;
    return test_peers (look->node, look->service) > 0;
}

static void
s_keygen (const char *dir, const char *name, const char *service)
{
    zcert_t *cert = zcert_new ();
    zcert_set_meta (cert, "name", "%s", name);
    zcert_set_meta (cert, "service", "%s", service);
    char *path = zsys_sprintf ("%s/%s.cert", dir, name);
    zcert_save (cert, path);
    free (path);
    zcert_destroy (&cert);
}

//  Configuration: a refused value, and a call too late
static void
s_configuration (void)
{
    ok (chorus_node_new ("two words") == NULL && chorus_errno () == CHORUS_EINVAL
        && strstr (chorus_node_error (NULL), "not a service name"),
        "chorus_node_new refuses a bad name: NULL, CHORUS_EINVAL, and why: %s",
        chorus_node_error (NULL));
    chorus_node_t *node = test_node ("orders", NULL, NULL);
    s_failed (chorus_node_set_store (node, ""), CHORUS_EINVAL, node, "store directory",
              "set_store with no directory");
    s_failed (chorus_node_set_mesh (node, "two words"), CHORUS_EINVAL, node,
              "'two words' is not a mesh name", "set_mesh with a space");
    s_failed (chorus_node_set_listen (node, ""), CHORUS_EINVAL, node, "listen endpoint",
              "set_listen with nothing");
    s_failed (chorus_node_add_seed (node, ""), CHORUS_EINVAL, node, "seed", "add_seed with nothing");
    s_failed (chorus_node_set_beacon (node, 70000), CHORUS_EINVAL, node, "70000",
              "set_beacon beyond 65535");
    s_failed (chorus_node_set_heartbeat (node, 1000, 500, 2000), CHORUS_EINVAL, node, "heartbeat",
              "set_heartbeat with evasive before the heartbeat");
    s_failed (chorus_node_set_credit (node, 0, 1000), CHORUS_EINVAL, node, "credit window",
              "set_credit with no window");
    s_failed (chorus_node_set_retention (node, 0, 0, (chorus_retention_policy_t) 9),
              CHORUS_EINVAL, node, "retention policy", "set_retention with no such policy");
    s_failed (chorus_node_set_durability (node, (chorus_durability_t) 7), CHORUS_EINVAL, node,
              "durability", "set_durability with no such durability");
    s_failed (chorus_node_set_command_retry (node, 0), CHORUS_EINVAL, node, "retry",
              "set_command_retry of 0");
    s_failed (chorus_node_set_observe_hwm (node, -1), CHORUS_EINVAL, node, "observer",
              "set_observe_hwm below 1");
    s_failed (chorus_node_set_peer_limits (node, 10, 0, 5), CHORUS_EINVAL, node, "peer limits",
              "set_peer_limits with no pending connections");
    s_failed (chorus_node_subscribe (node, "two words", s_on_event, NULL), CHORUS_EINVAL, node,
              "topic prefix", "subscribe to a prefix with a space");
    s_failed (chorus_node_observe (node, "order.", false, NULL, NULL), CHORUS_EINVAL, node,
              "no handler", "observe without a handler");
    s_failed (chorus_node_handle (node, "", NULL, NULL), CHORUS_EINVAL, node, "",
              "handle a command without a name");

    //  Calls that need a started node
    s_failed (chorus_node_publish (node, "order.placed", NULL, NULL, 0), CHORUS_ESTATE, node,
              "not started", "publish before start");
    s_failed (chorus_node_send (node, "payments", "charge", NULL, 0, 0, s_on_reply, NULL),
              CHORUS_ESTATE, node, "not started", "send before start");
    s_failed (chorus_node_fd (node), CHORUS_ESTATE, node, "not started", "fd before start");
    s_failed (chorus_node_dispatch (node), CHORUS_ESTATE, node, "not started",
              "dispatch before start");
    s_failed (chorus_node_run (node, 10), CHORUS_ESTATE, node, "not started", "run before start");
    s_failed (chorus_node_peers (node, NULL, NULL), CHORUS_ESTATE, node, "not started",
              "peers before start");
    s_failed (chorus_node_pending (node, NULL, NULL), CHORUS_ESTATE, node, "not started",
              "pending before start");
    s_failed ((int) chorus_node_unacked (node), CHORUS_ESTATE, node, "not started",
              "unacked before start");

    is_int (chorus_node_start (node), 0, "the node starts all the same");
    s_failed (chorus_node_set_store (node, "elsewhere"), CHORUS_ESTATE, node, "has started",
              "set_store after start");
    s_failed (chorus_node_on_monitor (node, NULL, NULL), CHORUS_ESTATE, node, "has started",
              "on_monitor after start");
    s_failed (chorus_node_start (node), CHORUS_ESTATE, node, "has started", "start twice");

    //  Publishing and sending what the protocol does not carry
    s_failed (chorus_node_publish (node, "two words", NULL, NULL, 0), CHORUS_EINVAL, node,
              "topic", "publish to a topic with a space");
    size_t size = CHORUS_PAYLOAD_MAX + 1;
    char *big = (char *) calloc (1, size);
    s_failed (chorus_node_publish (node, "order.placed", NULL, big, size), CHORUS_ETOOBIG, node,
              "at most", "publish a payload over the limit");
    s_failed (chorus_node_send (node, "payments", "charge", big, size, 0, s_on_reply, NULL),
              CHORUS_ETOOBIG, node, "1048577 bytes is over the limit of 1048576",
              "send a payload over the limit");
    free (big);
    s_failed (chorus_node_send (node, "payments", "charge", NULL, 0, -5, s_on_reply, NULL),
              CHORUS_EINVAL, node, "timeout", "send with a negative timeout");
    chorus_publication_t events [2] = {{.topic = "order.placed"}, {.topic = ""}};
    s_failed (chorus_node_publish_batch (node, events, 2), CHORUS_EINVAL, node,
              "event 1 of the batch", "publish a batch with a bad event");
    s_failed (chorus_node_publish_batch (node, events, CHORUS_PUBLISH_BATCH_MAX + 1),
              CHORUS_EINVAL, node, "CHORUS_PUBLISH_BATCH_MAX", "publish a batch too large");

    //  A signal ends a run
    zsys_interrupted = 1;
    s_failed (chorus_node_run (node, 1000), CHORUS_EINTERRUPTED, node, "signal",
              "run interrupted");
    zsys_interrupted = 0;

    //  A failure leaves its reason on its own node
    chorus_node_t *other = test_node ("other", NULL, NULL);
    chorus_node_set_mesh (other, "two words");
    ok (strstr (chorus_node_error (node), "signal") && strstr (chorus_node_error (other), "mesh"),
        "each node keeps the reason of its own last failure");
    chorus_node_destroy (&other);
    chorus_node_destroy (&node);
}

//  Starts that fail for a cause outside the program, and start again once
//  it is gone
static void
s_start (const char *root)
{
    char *dir = zsys_sprintf ("%s/orders", root);
    chorus_node_t *first = test_node ("orders", dir, NULL);
    is_int (chorus_node_start (first), 0, "a node starts on a store");
    chorus_node_t *second = test_node ("orders", dir, NULL);
    s_failed (chorus_node_start (second), CHORUS_ESTORE, second, "in use",
              "a second node on the same store");
    char *report = NULL;
    s_failed (chorus_store_check_dir (dir, &report), CHORUS_ESTORE, NULL, "in use",
              "store check of a store in use");
    ok (report && strstr (report, "in use"), "and its report says so");
    free (report);

    //  The inbox endpoint of the first is taken
    chorus_node_t *third = test_node ("payments", NULL, NULL);
    chorus_node_set_listen (third, chorus_node_endpoint (first));
    char *taken = zsys_sprintf ("cannot start payments at %s: cannot bind the inbox endpoint: "
                                "Address already in use", chorus_node_endpoint (first));
    s_failed (chorus_node_start (third), CHORUS_ENETWORK, third, taken,
              "a node on an endpoint in use");
    free (taken);
    chorus_node_set_listen (third, "tcp://127.0.0.1:0");
    is_int (chorus_node_start (third), 0, "it starts on a free port, the same node");
    chorus_node_destroy (&third);

    chorus_node_destroy (&first);
    is_int (chorus_node_start (second), 0, "the second starts once the first is gone");
    is_int (chorus_node_publish (second, "order.placed", "o-1", "{}", 2), 0, "and publishes");
    chorus_node_destroy (&second);

    //  A store that lost its CURRENT file is damaged
    char *current = zsys_sprintf ("%s/CURRENT", dir);
    unlink (current);
    free (current);
    chorus_node_t *damaged = test_node ("orders", dir, NULL);
    s_failed (chorus_node_start (damaged), CHORUS_ECORRUPT, damaged, "chorus store repair",
              "a node on a damaged store");
    chorus_node_destroy (&damaged);
    report = NULL;
    s_failed (chorus_store_check_dir (dir, &report), CHORUS_ECORRUPT, NULL, "damaged",
              "store check of a damaged store");
    free (report);
    s_failed (chorus_store_check_dir (NULL, &report), CHORUS_EINVAL, NULL, "no directory",
              "store check without a directory");
    char *nowhere = zsys_sprintf ("%s/nowhere", root);
    report = NULL;
    s_failed (chorus_store_repair_dir (nowhere, &report), CHORUS_ESTORE, NULL, nowhere,
              "store repair where there is no store");
    free (report);
    free (nowhere);
    free (dir);
}

//  Security: a bad seed, a bad certificate, one for another service
static void
s_security (const char *root)
{
    char *keys = zsys_sprintf ("%s/keys", root);
    char *trust = zsys_sprintf ("%s/trust", root);
    zsys_dir_create ("%s", keys);
    zsys_dir_create ("%s", trust);
    s_keygen (keys, "payments", "payments");
    char *secret = zsys_sprintf ("%s/payments.cert_secret", keys);

    chorus_node_t *node = test_node ("orders", NULL, NULL);
    s_failed (chorus_node_set_security (node, secret, NULL), CHORUS_EINVAL, node,
              "trust directory is missing", "a certificate without a trust directory");
    char *missing = zsys_sprintf ("%s/missing.cert_secret", keys);
    s_failed (chorus_node_set_security (node, missing, trust), CHORUS_EINVAL, node, missing,
              "a certificate that is not there");
    free (missing);
    char *garbage = zsys_sprintf ("%s/garbage.cert_secret", keys);
    FILE *file = fopen (garbage, "w");
    fputs ("this is not a certificate\n", file);
    fclose (file);
    s_failed (chorus_node_set_security (node, garbage, trust), CHORUS_EINVAL, node, "garbage",
              "a file that is not a certificate");
    free (garbage);

    //  A certificate for payments cannot run orders
    is_int (chorus_node_set_security (node, secret, trust), 0, "a sound certificate is taken");
    s_failed (chorus_node_start (node), CHORUS_EFORBIDDEN, node, "allows only service 'payments'",
              "orders with the certificate of payments");
    chorus_node_destroy (&node);

    //  A secure node needs its seeds' keys
    node = test_node ("payments", NULL, "tcp://127.0.0.1:5999");
    chorus_node_set_security (node, secret, trust);
    s_failed (chorus_node_start (node), CHORUS_EINVAL, node, "has no key",
              "a secure node with a seed without a key");
    chorus_node_destroy (&node);
    node = test_node ("payments", NULL, "tcp://127.0.0.1:5999@nobody");
    chorus_node_set_security (node, secret, trust);
    s_failed (chorus_node_start (node), CHORUS_EINVAL, node, "'nobody' is neither",
              "a secure node with a seed of an unknown key");
    chorus_node_destroy (&node);
    free (secret);
    free (keys);
    free (trust);
}

//  Replies, retention: failures on a running mesh
static void
s_mesh (void)
{
    chorus_node_t *nodes [2];
    nodes [0] = test_node ("orders", NULL, NULL);
    chorus_node_set_retention (nodes [0], 1500, 0, CHORUS_RETAIN_REFUSE);
    chorus_node_start (nodes [0]);
    nodes [1] = test_node ("billing", NULL, chorus_node_endpoint (nodes [0]));
    s_echo_t echo = {0};
    chorus_node_handle (nodes [1], "echo", s_on_echo, &echo);
    chorus_node_subscribe (nodes [1], "order.", s_on_event, NULL);
    chorus_node_start (nodes [1]);
    s_look_t look = {nodes [0], "billing"};
    ok (test_run_until (nodes, 2, s_knows, &look, 5000), "orders meets billing");

    chorus_node_send (nodes [0], "billing", "echo", NULL, 0, 5000, s_on_reply, &echo);
    ok (test_run_until (nodes, 2, s_replied, &echo, 5000) && echo.ran,
        "a command handler runs, and its reply comes back");
    ok (echo.rc == CHORUS_ETOOBIG && echo.errno_then == CHORUS_ETOOBIG
        && strstr (echo.detail, "1048577 bytes is over the limit of 1048576 bytes"),
        "reply_set_payload over the limit: %s: %s", chorus_strerror (echo.rc), echo.detail);
    //  What the sender gets is an error naming both, never an empty success
    ok (echo.status == CHORUS_EREMOTE && streq (echo.code, "too-big")
        && strstr (echo.message, "a reply payload of 1048577 bytes is over the limit of 1048576"),
        "the sender gets an error reply: %s: %s", echo.code, echo.message);

    //  billing no longer dispatches: what orders publishes stays unacknowledged
    char payload [400];
    memset (payload, 'x', sizeof (payload));
    int rc = 0, published = 0;
    while (rc == 0 && published < 20) {
        rc = chorus_node_publish (nodes [0], "order.placed", "o", payload, sizeof (payload));
        published += rc == 0;
    }
    diag ("%d events published before the refusal", published);
    s_failed (rc, CHORUS_EFULL, nodes [0], "retention is full",
              "publish when retention is full of unacknowledged events");
    chorus_node_destroy (&nodes [1]);
    chorus_node_destroy (&nodes [0]);
}

//  Payloads: the reason is also the failure's detail
static void
s_payloads (void)
{
    void *data = NULL;
    size_t size = 0;
    s_failed (chorus_payload_from_json ("{", 1, 0, &data, &size, NULL, 0), CHORUS_EINVAL, NULL,
              "line 1", "payload_from_json of a broken document");
    char *json = NULL;
    s_failed (chorus_payload_to_json ("\xc1", 1, 0, &json, NULL, 0), CHORUS_EMALFORMED, NULL,
              "malformed", "payload_to_json of bytes that are no MessagePack");
}

int
main (void)
{
    zsys_init ();
    char *root = test_tempdir ("failures");
    s_configuration ();
    s_start (root);
    s_security (root);
    s_mesh ();
    s_payloads ();
    test_tempdir_remove (&root);
    return done_testing ();
}
