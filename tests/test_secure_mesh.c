/*  test_secure_mesh.c — a secure mesh (protocol section 14) on loopback:
    nodes meet through seeds given with a key's name or its Z85 text, their
    peers are authenticated, events and commands flow; a certificate's
    limits hold (a topic it may not publish, a command it may not call: ERROR
    forbidden); a plaintext node and a node with an unknown key meet no one
    and are counted; removing a certificate from the trust directory cuts
    its node off within 5 seconds, and it cannot come back; a reload asked
    for (what SIGHUP does in the tools) reads the directory even when it
    looks unchanged. The socket monitor shows connections and refused
    handshakes with their reasons.
*/
#include "testutil.h"

typedef struct {
    int events;                 //  events handled
    int charges;                //  commands handled
    int replies;                //  replies received
    int status;                 //  status of the last
    char code [65];             //  its code
} counts_t;

static int
s_on_order (chorus_node_t *node, chorus_event_t *event, void *arg)
{
    ((counts_t *) arg)->events++;
    return 0;
}

static void
s_on_charge (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    ((counts_t *) arg)->charges++;
    chorus_reply_set_payload (reply, "ok", 2);
}

static void
s_on_reply (chorus_node_t *node, chorus_reply_t *reply, void *arg)
{
    counts_t *counts = (counts_t *) arg;
    counts->replies++;
    counts->status = chorus_reply_status (reply);
    snprintf (counts->code, sizeof (counts->code), "%s",
              chorus_reply_code (reply)? chorus_reply_code (reply): "");
}

//  Writes NAME.cert (into trust, unless NULL) and NAME.cert_secret (into
//  keys); returns the Z85 public key (static per call site's buffer)
static void
s_keygen (const char *keys, const char *trust, const char *name, const char *service,
          const char *publish, const char *call, char *public_key)
{
    zcert_t *cert = zcert_new ();
    zcert_set_meta (cert, "name", "%s", name);
    if (service)
        zcert_set_meta (cert, "service", "%s", service);
    if (publish)
        zcert_set_meta (cert, "publish", "%s", publish);
    if (call)
        zcert_set_meta (cert, "call", "%s", call);
    char *path = zsys_sprintf ("%s/%s.cert", keys, name);
    zcert_save (cert, path);
    free (path);
    if (trust) {
        path = zsys_sprintf ("%s/%s.cert", trust, name);
        zcert_save_public (cert, path);
        free (path);
    }
    strcpy (public_key, zcert_public_txt (cert));
    zcert_destroy (&cert);
}

static chorus_node_t *
s_secure_node (const char *service, const char *keys, const char *name, const char *trust,
               const char *seed)
{
    chorus_node_t *node = test_node (service, NULL, seed);
    char *cert = zsys_sprintf ("%s/%s.cert_secret", keys, name);
    int rc = chorus_node_set_security (node, cert, trust);
    free (cert);
    if (rc)
        bail_out ("chorus_node_set_security failed");
    return node;
}

typedef struct {
    chorus_node_t *node;
    const char *service;
    int count;
} peers_t;

static bool
s_knows (void *arg)
{
    peers_t *peers = (peers_t *) arg;
    return test_peers (peers->node, peers->service) == peers->count;
}

static bool
s_idle_until (void *arg)
{
    return zclock_mono () >= *(int64_t *) arg;
}

static bool
s_positive (void *arg)
{
    return *(int *) arg > 0;
}

typedef struct {
    const char *key;            //  the key expected
    bool ok;                    //  the peer with it is authenticated
} key_check_t;

static void
s_check_key (chorus_node_t *node, const chorus_peer_t *peer, void *arg)
{
    key_check_t *check = (key_check_t *) arg;
    if (peer->key && streq (peer->key, check->key) && peer->authenticated)
        check->ok = true;
}

//  Socket-monitor events, as "event socket detail" lines
static zlistx_t *s_monitored = NULL;

static void
s_on_monitor (chorus_node_t *node, const char *event, const char *socket, const char *peer,
              const char *detail, void *arg)
{
    zlistx_add_end (s_monitored, zsys_sprintf ("%s %s %s", event, socket, detail));
}

typedef struct {
    const char *start;          //  a monitored line that starts so
    const char *part;           //  and holds this, or NULL
} seen_t;

static bool
s_monitor_saw (void *arg)
{
    seen_t *seen = (seen_t *) arg;
    for (char *line = (char *) zlistx_first (s_monitored); line;
         line = (char *) zlistx_next (s_monitored))
        if (strncmp (line, seen->start, strlen (seen->start)) == 0
        &&  (!seen->part || strstr (line, seen->part)))
            return true;
    return false;
}

typedef struct {
    chorus_node_t *node;
    const char *counter;
} counter_t;

static bool
s_counted (void *arg)
{
    counter_t *counter = (counter_t *) arg;
    return chorus_node_counter (counter->node, counter->counter) > 0;
}

int
main (void)
{
    char *keys = test_tempdir ("keys");
    char *trust = test_tempdir ("trust");
    char orders_key [41], payments_key [41], shipping_key [41], stranger_key [41];
    s_keygen (keys, trust, "orders", "orders", "order.", NULL, orders_key);
    s_keygen (keys, trust, "payments", "payments", "payment.", NULL, payments_key);
    s_keygen (keys, trust, "shipping", "shipping", NULL, "payments.charge", shipping_key);
    s_keygen (keys, NULL, "stranger", NULL, NULL, NULL, stranger_key);

    //  Only one of the two is refused at once
    chorus_node_t *half = chorus_node_new ("orders");
    ok (chorus_node_set_security (half, "x.cert_secret", NULL) == CHORUS_EINVAL
        && chorus_errno () == CHORUS_EINVAL, "a certificate without a trust directory is refused");
    chorus_node_destroy (&half);

    counts_t at_payments = {0}, at_orders = {0}, at_shipping = {0};
    chorus_node_t *payments = s_secure_node ("payments", keys, "payments", trust, NULL);
    chorus_node_subscribe (payments, "order.", s_on_order, &at_payments);
    chorus_node_handle (payments, "charge", s_on_charge, &at_payments);
    chorus_node_handle (payments, "refund", s_on_charge, &at_payments);
    s_monitored = zlistx_new ();
    zlistx_set_destructor (s_monitored, (zlistx_destructor_fn *) zstr_free);
    chorus_node_on_monitor (payments, s_on_monitor, NULL);
    if (chorus_node_start (payments))
        bail_out ("cannot start payments");
    char *seed_by_name = zsys_sprintf ("%s@payments", chorus_node_endpoint (payments));
    char *seed_by_key = zsys_sprintf ("%s@%s", chorus_node_endpoint (payments), payments_key);
    chorus_node_t *orders = s_secure_node ("orders", keys, "orders", trust, seed_by_name);
    chorus_node_t *shipping = s_secure_node ("shipping", keys, "shipping", trust, seed_by_key);
    ok (chorus_node_start (orders) == 0 && chorus_node_start (shipping) == 0,
        "nodes with seeds given as ENDPOINT@NAME and ENDPOINT@KEY start");

    chorus_node_t *nodes [5] = {payments, orders, shipping};
    peers_t met = {payments, NULL, 2};
    ok (test_run_until (nodes, 3, s_knows, &met, 10000), "three secure nodes meet");
    //  Met peers greet again only when what they announce changes
    uint64_t hellos = chorus_node_counter (payments, "hellos");
    int64_t idle_until = zclock_mono () + 2000;
    test_run_until (nodes, 3, s_idle_until, &idle_until, 3000);
    uint64_t greeted = chorus_node_counter (payments, "hellos") - hellos;
    ok (greeted < 20, "three idle secure nodes send each other few HELLOs in 2 s (%" PRIu64 ")",
        greeted);
    key_check_t check = {orders_key, false};
    chorus_node_peers (payments, s_check_key, &check);
    ok (check.ok, "payments knows orders by its key, authenticated");

    //  Events flow within what a certificate allows
    ok (chorus_node_publish (orders, "order.placed", "o-1", "{}", 2) == 0,
        "orders publishes order.placed");
    ok (test_run_until (nodes, 3, s_positive, &at_payments.events, 10000),
        "the payments group gets it over CURVE");
    ok (chorus_node_publish (orders, "payment.settled", NULL, "{}", 2) == CHORUS_EFORBIDDEN
        && chorus_errno () == CHORUS_EFORBIDDEN,
        "orders may not publish payment.settled: CHORUS_EFORBIDDEN");

    //  Commands within what a certificate allows
    chorus_node_send (shipping, "payments", "charge", "{}", 2, 10000, s_on_reply,
                      &at_shipping);
    ok (test_run_until (nodes, 3, s_positive, &at_shipping.replies, 10000)
        && at_shipping.status == 0 && at_payments.charges == 1,
        "shipping may call payments.charge");
    at_shipping.replies = 0;
    chorus_node_send (shipping, "payments", "refund", "{}", 2, 10000, s_on_reply,
                      &at_shipping);
    ok (test_run_until (nodes, 3, s_positive, &at_shipping.replies, 10000)
        && at_shipping.status == CHORUS_EFORBIDDEN && streq (at_shipping.code, "forbidden")
        && at_payments.charges == 1,
        "shipping may not call payments.refund: forbidden, and the handler did not run");
    ok (chorus_node_counter (payments, "forbidden") >= 1, "payments counted it");
    chorus_node_send (orders, "payments", "refund", "{}", 2, 10000, s_on_reply,
                      &at_orders);
    ok (test_run_until (nodes, 3, s_positive, &at_orders.replies, 10000)
        && at_orders.status == 0, "orders, without call limits, may call payments.refund");

    //  A plaintext node, and a key not in the trust directory, meet no one
    chorus_node_t *plain = test_node ("orders", NULL, chorus_node_endpoint (payments));
    chorus_node_t *stranger = s_secure_node ("orders", keys, "stranger", trust, seed_by_key);
    chorus_node_start (plain);
    chorus_node_start (stranger);
    nodes [3] = plain;
    nodes [4] = stranger;
    counter_t failed = {payments, "handshakes_failed"};
    counter_t unauthorised = {payments, "unauthorised"};
    ok (test_run_until (nodes, 5, s_counted, &failed, 10000),
        "payments refuses the plaintext node's handshake, and counts it");
    ok (test_run_until (nodes, 5, s_counted, &unauthorised, 10000),
        "payments refuses the unknown key, and counts it");
    seen_t accepted = {"accepted inbox", NULL};
    seen_t connected = {"connected dealer", NULL};
    seen_t plaintext = {"handshake-failed inbox", "plaintext"};
    seen_t unknown = {"handshake-failed inbox", "key not trusted"};
    ok (s_monitor_saw (&accepted) && s_monitor_saw (&connected),
        "the socket monitor shows the inbox accepting, and dealers connecting");
    ok (test_run_until (nodes, 5, s_monitor_saw, &plaintext, 5000),
        "it shows the plaintext peer's failed handshake, and why");
    ok (test_run_until (nodes, 5, s_monitor_saw, &unknown, 5000),
        "it shows the unknown key's failed handshake, and why");
    zclock_sleep (1500);    //  their seed retries and everyone's HELLOs have had time
    test_run_until (nodes, 5, s_knows, &met, 100);
    ok (test_peers (payments, NULL) == 2 && test_peers (plain, NULL) == 0
        && test_peers (stranger, NULL) == 0, "neither became anyone's peer");

    //  Revocation: shipping's certificate leaves the trust directory
    char *path = zsys_sprintf ("%s/shipping.cert", trust);
    unlink (path);
    free (path);
    int64_t revoked_at = zclock_mono ();
    peers_t cut = {payments, "shipping", 0};
    ok (test_run_until (nodes, 5, s_knows, &cut, 5000)
        && zclock_mono () - revoked_at <= 5000, "a revoked key is cut off within 5 s");
    peers_t forgot = {shipping, "payments", 0};
    ok (test_run_until (nodes, 5, s_knows, &forgot, 10000),
        "and the revoked node loses payments too");
    zclock_sleep (2000);
    test_run_until (nodes, 5, s_knows, &met, 100);
    ok (test_peers (payments, "shipping") == 0 && test_peers (shipping, NULL) == 0,
        "it cannot come back");

    //  orders.cert is replaced in place by the stranger's certificate, padded
    //  to the same size and given back its times, so that the directory
    //  looks unchanged: only a reload asked for sees it
    char *orders_path = zsys_sprintf ("%s/orders.cert", trust);
    char *stranger_path = zsys_sprintf ("%s/stranger.cert", keys);
    struct stat before;
    stat (orders_path, &before);
    zchunk_t *text = zchunk_slurp (stranger_path, 0);
    bool fits = text && zchunk_size (text) + 2 <= (size_t) before.st_size;
    if (fits) {
        FILE *file = fopen (orders_path, "r+");
        fwrite (zchunk_data (text), 1, zchunk_size (text), file);
        fputc ('#', file);
        for (size_t i = zchunk_size (text) + 1; i < (size_t) before.st_size - 1; i++)
            fputc ('x', file);
        fputc ('\n', file);
        fclose (file);
        struct timespec times [2] = {before.st_atim, before.st_mtim};
        utimensat (AT_FDCWD, orders_path, times, 0);
    }
    zchunk_destroy (&text);
    struct stat after;
    stat (orders_path, &after);
    ok (fits && after.st_size == before.st_size && after.st_ino == before.st_ino
        && after.st_mtim.tv_nsec == before.st_mtim.tv_nsec,
        "orders.cert now holds another key, the directory's entries look as before");
    zclock_sleep (2500);    //  more than two of the node's regular looks
    test_run_until (nodes, 5, s_knows, &met, 100);
    ok (test_peers (payments, "orders") == 1, "without a reload asked for, orders stays");
    chorus_reload_trust ();
    peers_t reloaded = {payments, "orders", 0};
    ok (test_run_until (nodes, 5, s_knows, &reloaded, 5000),
        "chorus_reload_trust (SIGHUP in the tools) reads it at once, and orders is cut off");
    free (orders_path);
    free (stranger_path);

    for (int i = 0; i < 5; i++)
        chorus_node_destroy (&nodes [i]);
    zlistx_destroy (&s_monitored);
    free (seed_by_name);
    free (seed_by_key);
    test_tempdir_remove (&keys);
    test_tempdir_remove (&trust);
    return done_testing ();
}
