/*  bench_node.c — Chorus beside raw libzmq, measured in one run on loopback:
    durable group-delivered events per second against raw PUB/SUB messages
    per second, and command round trips (1 and 100 in flight) against raw
    DEALER/ROUTER round trips, between nodes whose engines run in threads
    of their own (the default) and between nodes run inline
    (chorus_node_set_inline). Each is measured plaintext and with CURVE
    (keys made for the run in a temporary directory), so that the cost of a
    secure mesh is read beside what CURVE costs libzmq itself. Prints a table
    of figures and ratios per mode, then CURVE beside plaintext.
    Usage: bench_node [--events N] [--messages N] [--commands N] [--size B]
                      [--security plaintext|curve|both] [--json FILE]
*/
#include "chorus.h"
#include "bench_json.h"

#include <czmq.h>

#include <getopt.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>

static int s_size = 100;            //  payload bytes

//  A run's keys: all NULL for plaintext. The raw sockets use the two
//  certificates in memory; Chorus nodes read theirs from files, as they
//  would in a deployment
typedef struct {
    zcert_t *server;            //  raw PUB and ROUTER: CURVE server
    zcert_t *client;            //  raw SUB and DEALER: CURVE client
    const char *keys;           //  NAME.cert_secret for every bench node
    const char *trust;          //  NAME.cert for every bench node
} curve_t;

static const char *s_names [] = {"bench-pub", "bench-sub", "bench-echo", "bench-client"};

//  The bench's directory, with every store and key in it; removed at exit
static char s_root [] = "/tmp/chorus-bench-XXXXXX";

//  What runs of one throughput measure add up to
typedef struct {
    int64_t items;              //  messages or events that arrived
    int64_t elapsed;            //  us from the first sent to the last arrived
    int64_t cpu;                //  process CPU us in the same time
} tally_t;

//  Runs COUNT messages through, adds them to TALLY
typedef void (s_run_fn) (int count, const curve_t *curve, tally_t *tally);

static int
s_compare (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y? -1: x > y;
}

static int64_t
s_percentile (int64_t *samples, int count, double fraction)
{
    qsort (samples, (size_t) count, sizeof (int64_t), s_compare);
    int index = (int) (fraction * (count - 1) + 0.5);
    return samples [index];
}

static int64_t
s_now_us (void)
{
    return zclock_usecs ();
}

//  CPU time of the whole process, every thread, user and system (us). Per
//  message it is the cost the machine's other load does not blur
static int64_t
s_cpu_us (void)
{
    struct rusage usage;
    getrusage (RUSAGE_SELF, &usage);
    return (int64_t) (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000
         + usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
}

//  --------------------------------------------------------------------------
//  Raw PUB/SUB: one publisher thread, one subscriber, messages per second

typedef struct {
    const char *endpoint;       //  where the PUB binds
    int count;                  //  messages to receive
    int64_t finished;           //  when the last arrived (us)
    int received;               //  how many arrived
    const curve_t *curve;       //  keys, or NULL for plaintext
} raw_sub_t;

//  Makes a raw socket a CURVE server, or a client of that server
static void
s_raw_curve (zsock_t *socket, const curve_t *curve, bool server)
{
    if (!curve)
        return;
    if (server) {
        zcert_apply (curve->server, socket);
        zsock_set_curve_server (socket, 1);
    }
    else {
        zcert_apply (curve->client, socket);
        zsock_set_curve_serverkey (socket, zcert_public_txt (curve->server));
    }
}

static void *
s_raw_subscriber (void *arg)
{
    raw_sub_t *sub = (raw_sub_t *) arg;
    zsock_t *socket = zsock_new (ZMQ_SUB);
    s_raw_curve (socket, sub->curve, false);
    zsock_set_subscribe (socket, "");
    zsock_attach (socket, sub->endpoint, false);
    zsock_set_rcvhwm (socket, 0);
    zsock_set_rcvtimeo (socket, 5000);
    zframe_t *frame;
    while (sub->received < sub->count && (frame = zframe_recv (socket))) {
        sub->received++;
        zframe_destroy (&frame);
    }
    sub->finished = s_now_us ();
    zsock_destroy (&socket);
    return NULL;
}

static void
s_raw_pubsub (int count, const curve_t *curve, tally_t *tally)
{
    zsock_t *pub = zsock_new (ZMQ_PUB);
    zsock_set_sndhwm (pub, 0);
    s_raw_curve (pub, curve, true);
    int port = zsock_bind (pub, "tcp://127.0.0.1:*");
    char endpoint [64];
    snprintf (endpoint, sizeof (endpoint), ">tcp://127.0.0.1:%d", port);
    raw_sub_t sub = {endpoint, count, 0, 0, curve};
    pthread_t thread;
    pthread_create (&thread, NULL, s_raw_subscriber, &sub);
    //  PUB/SUB has no handshake to await; a benchmark may settle instead
    zclock_sleep (200);
    char *payload = (char *) calloc (1, (size_t) s_size);
    int64_t start = s_now_us (), cpu = s_cpu_us ();
    for (int i = 0; i < count; i++)
        zmq_send (zsock_resolve (pub), payload, (size_t) s_size, 0);
    pthread_join (thread, NULL);
    tally->cpu += s_cpu_us () - cpu;
    tally->items += sub.received;
    tally->elapsed += sub.finished - start;
    free (payload);
    zsock_destroy (&pub);
    if (sub.received < count)
        fprintf (stderr, "bench: raw PUB/SUB lost %d of %d\n", count - sub.received, count);
}

//  --------------------------------------------------------------------------
//  Raw DEALER/ROUTER round trips, `window` in flight

typedef struct {
    zsock_t *router;            //  the echo server's socket
    bool stop;                  //  set to end the echo loop
} raw_echo_t;

static void *
s_raw_echo (void *arg)
{
    raw_echo_t *echo = (raw_echo_t *) arg;
    zsock_set_rcvtimeo (echo->router, 100);
    while (!echo->stop) {
        zmsg_t *msg = zmsg_recv (echo->router);
        if (msg)
            zmsg_send (&msg, echo->router);
    }
    return NULL;
}

//  Writes COUNT round trips (us) into samples
static void
s_raw_roundtrip (int count, int window, const curve_t *curve, int64_t *samples)
{
    raw_echo_t echo = {zsock_new (ZMQ_ROUTER), false};
    s_raw_curve (echo.router, curve, true);
    int port = zsock_bind (echo.router, "tcp://127.0.0.1:*");
    pthread_t thread;
    pthread_create (&thread, NULL, s_raw_echo, &echo);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    s_raw_curve (dealer, curve, false);
    zsock_connect (dealer, "tcp://127.0.0.1:%d", port);
    char *payload = (char *) calloc (1, (size_t) s_size);
    int sent = 0, done = 0;
    while (done < count) {
        while (sent < count && sent - done < window) {
            int64_t stamp = s_now_us ();
            memcpy (payload, &stamp, sizeof (stamp));
            zmq_send (zsock_resolve (dealer), payload, (size_t) s_size, 0);
            sent++;
        }
        zframe_t *frame = zframe_recv (dealer);
        int64_t stamp;
        memcpy (&stamp, zframe_data (frame), sizeof (stamp));
        samples [done++] = s_now_us () - stamp;
        zframe_destroy (&frame);
    }
    echo.stop = true;
    pthread_join (thread, NULL);
    free (payload);
    zsock_destroy (&dealer);
    zsock_destroy (&echo.router);
}

//  --------------------------------------------------------------------------
//  Chorus nodes, plaintext or secure

//  A node named NAME with its store under ROOT/MODE/, secured with
//  NAME.cert_secret when the run is CURVE
static chorus_node_t *
s_chorus_node (const char *name, const char *root, const char *store, const curve_t *curve)
{
    chorus_node_t *node = chorus_node_new (name);
    if (store) {
        char path [512];
        snprintf (path, sizeof (path), "%s/%s/%s", root, curve? "curve": "plaintext", store);
        chorus_node_set_store (node, path);
    }
    if (curve) {
        char cert [512];
        snprintf (cert, sizeof (cert), "%s/%s.cert_secret", curve->keys, name);
        int rc = chorus_node_set_security (node, cert, curve->trust);
        if (rc < 0) {
            fprintf (stderr, "bench: cannot secure %s with %s: %s: %s\n", name, cert,
                     chorus_strerror (rc), chorus_node_error (node));
            exit (1);
        }
    }
    return node;
}

//  Starts NODE, or ends the bench saying why not
static void
s_chorus_start (chorus_node_t *node)
{
    int rc = chorus_node_start (node);
    if (rc < 0) {
        fprintf (stderr, "bench: cannot start %s: %s: %s\n", chorus_node_service (node),
                 chorus_strerror (rc), chorus_node_error (node));
        exit (1);
    }
}

//  Runs NODE until it knows a peer; a mesh that does not form within 30
//  seconds ends the bench rather than hang it
static void
s_chorus_meet (chorus_node_t *node)
{
    int64_t deadline = s_now_us () + 30000000;
    while (chorus_node_peers (node, NULL, NULL) < 1) {
        if (s_now_us () > deadline) {
            fprintf (stderr, "bench: %s met no peer\n", chorus_node_service (node));
            exit (1);
        }
        chorus_node_run (node, 10);
    }
}

//  Seeds NODE with the inbox of SEED, named by its certificate when secure
static void
s_chorus_seed (chorus_node_t *node, chorus_node_t *seed, const curve_t *curve)
{
    char endpoint [300];
    snprintf (endpoint, sizeof (endpoint), "%s%s%s", chorus_node_endpoint (seed),
              curve? "@": "", curve? chorus_node_service (seed): "");
    chorus_node_add_seed (node, endpoint);
}

//  --------------------------------------------------------------------------
//  Chorus: durable events delivered to a group, node to node

typedef struct {
    chorus_node_t *node;        //  the subscriber
    int count;                  //  events to handle
    int handled;                //  handled so far
    int64_t finished;           //  when the last was handled (us)
} chorus_sub_t;

static int
s_on_event (chorus_node_t *node, chorus_event_t *event, void *arg)
{
    chorus_sub_t *sub = (chorus_sub_t *) arg;
    if (++sub->handled == sub->count) {
        sub->finished = s_now_us ();
        chorus_node_stop (node);
    }
    return 0;
}

static void *
s_chorus_subscriber (void *arg)
{
    chorus_sub_t *sub = (chorus_sub_t *) arg;
    chorus_node_run (sub->node, 120000);
    return NULL;
}

static void
s_chorus_events (int count, const curve_t *curve, tally_t *tally)
{
    //  Fresh stores each run: one left by the run before would change what
    //  is measured
    static int run = 0;
    char store [32];
    snprintf (store, sizeof (store), "publisher-%d", ++run);
    chorus_node_t *publisher = s_chorus_node ("bench-pub", s_root, store, curve);
    chorus_node_set_retention (publisher, 0, 0, CHORUS_RETAIN_REFUSE);
    s_chorus_start (publisher);
    snprintf (store, sizeof (store), "subscriber-%d", run);
    chorus_sub_t sub = {s_chorus_node ("bench-sub", s_root, store, curve), count, 0, 0};
    s_chorus_seed (sub.node, publisher, curve);
    chorus_node_subscribe (sub.node, "bench.", s_on_event, &sub);
    s_chorus_start (sub.node);
    s_chorus_meet (publisher);
    chorus_node_run (publisher, 300);      //  let the group's subscription arrive
    pthread_t thread;
    pthread_create (&thread, NULL, s_chorus_subscriber, &sub);
    char *payload = (char *) calloc (1, (size_t) s_size);
    int64_t start = s_now_us (), cpu = s_cpu_us ();
    for (int i = 0; i < count; i++)
        chorus_node_publish (publisher, "bench.event", NULL, payload, (size_t) s_size);
    pthread_join (thread, NULL);
    tally->cpu += s_cpu_us () - cpu;
    tally->items += sub.handled;
    tally->elapsed += sub.finished - start;
    free (payload);
    if (sub.handled < count)
        fprintf (stderr, "bench: chorus handled %d of %d\n", sub.handled, count);
    chorus_node_destroy (&sub.node);
    chorus_node_destroy (&publisher);
}

//  --------------------------------------------------------------------------
//  Chorus: command round trips

static void
s_on_echo (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    chorus_reply_set_payload (reply, chorus_command_payload (command), chorus_command_size (command));
}

typedef struct {
    chorus_node_t *node;        //  the server
    bool stop;                  //  set to end its loop
} chorus_server_t;

static void *
s_chorus_server (void *arg)
{
    chorus_server_t *server = (chorus_server_t *) arg;
    while (!server->stop)
        chorus_node_run (server->node, 50);
    return NULL;
}

typedef struct {
    int64_t *samples;           //  round trips, us
    int done;                   //  replies received
    bool waiting;               //  the sender runs its node until a reply
} chorus_client_t;

static void
s_on_reply (chorus_node_t *node, chorus_reply_t *reply, void *arg)
{
    chorus_client_t *client = (chorus_client_t *) arg;
    int64_t stamp;
    memcpy (&stamp, chorus_reply_payload (reply), sizeof (stamp));
    client->samples [client->done++] = s_now_us () - stamp;
    if (client->waiting)
        chorus_node_stop (node);    //  so that the sender sends the next
}

//  Round trips between two nodes, each run by a thread of its own, with
//  its engine in a thread of its own or inline (chorus_node_set_inline);
//  writes COUNT round trips (us) into samples
static void
s_chorus_commands (int count, int window, const char *root, const curve_t *curve,
                   bool run_inline, int64_t *samples)
{
    char store [32];
    snprintf (store, sizeof (store), "echo-%d%s", window, run_inline? "-inline": "");
    chorus_server_t server = {s_chorus_node ("bench-echo", root, store, curve), false};
    chorus_node_set_inline (server.node, run_inline);
    chorus_node_handle (server.node, "echo", s_on_echo, NULL);
    s_chorus_start (server.node);
    chorus_node_t *client = s_chorus_node ("bench-client", root, NULL, curve);
    chorus_node_set_inline (client, run_inline);
    s_chorus_seed (client, server.node, curve);
    s_chorus_start (client);
    pthread_t thread;
    pthread_create (&thread, NULL, s_chorus_server, &server);
    s_chorus_meet (client);
    chorus_client_t state = {samples, 0, false};
    char *payload = (char *) calloc (1, (size_t) (s_size > 8? s_size: 8));
    int sent = 0;
    zsock_t *socket = chorus_node_socket (client);
    while (state.done < count) {
        while (sent < count && sent - state.done < window) {
            int64_t stamp = s_now_us ();
            memcpy (payload, &stamp, sizeof (stamp));
            chorus_node_send (client, "bench-echo", "echo", payload, (size_t) s_size, 10000,
                              s_on_reply, &state);
            sent++;
        }
        //  Run inline, the node takes what came and runs its handlers; when
        //  nothing had come (one in flight: nothing can have), it runs
        //  until a reply does
        if (run_inline) {
            if (window == 1 || chorus_node_dispatch (client) == 0) {
                state.waiting = true;
                chorus_node_run (client, 1000);
                state.waiting = false;
            }
        }
        else
        if (chorus_node_dispatch (client) == 0) {
            zmq_pollitem_t item = {zsock_resolve (socket), 0, ZMQ_POLLIN, 0};
            zmq_poll (&item, 1, 1000);
        }
    }
    server.stop = true;
    pthread_join (thread, NULL);
    free (payload);
    chorus_node_destroy (&client);
    chorus_node_destroy (&server.node);
}

//  --------------------------------------------------------------------------
//  One mode's figures, and the tables

typedef struct {
    double raw_rate;            //  raw PUB/SUB messages/s
    double chorus_rate;         //  Chorus events/s
    double raw_cpu;             //  process CPU us per raw message
    double chorus_cpu;          //  process CPU us per Chorus event
    int64_t raw50 [2], raw99 [2];   //  raw round trips (us), per window
    int64_t ch50 [2], ch99 [2];     //  Chorus round trips (us), per window
    int64_t in50 [2], in99 [2];     //  the same with both nodes run inline
} figures_t;

static int s_windows [2] = {1, 100};

//  Round trips raw, between nodes with their engines in threads of their
//  own, and between nodes run inline, half the count at a time in the
//  order raw, threads, inline, inline, threads, raw: the machine's load
//  drifts, and this way it weighs on none more than the others
static void
s_roundtrips (int count, int window, const curve_t *curve, int i, figures_t *into)
{
    int half = count / 2 > 0? count / 2: 1;
    int64_t *raw = (int64_t *) calloc ((size_t) half * 2, sizeof (int64_t));
    int64_t *threads = (int64_t *) calloc ((size_t) half * 2, sizeof (int64_t));
    int64_t *inline_ = (int64_t *) calloc ((size_t) half * 2, sizeof (int64_t));
    s_raw_roundtrip (half, window, curve, raw);
    s_chorus_commands (half, window, s_root, curve, false, threads);
    s_chorus_commands (half, window, s_root, curve, true, inline_);
    s_chorus_commands (half, window, s_root, curve, true, inline_ + half);
    s_chorus_commands (half, window, s_root, curve, false, threads + half);
    s_raw_roundtrip (half, window, curve, raw + half);
    into->raw50 [i] = s_percentile (raw, half * 2, 0.50);
    into->raw99 [i] = s_percentile (raw, half * 2, 0.99);
    into->ch50 [i] = s_percentile (threads, half * 2, 0.50);
    into->ch99 [i] = s_percentile (threads, half * 2, 0.99);
    into->in50 [i] = s_percentile (inline_, half * 2, 0.50);
    into->in99 [i] = s_percentile (inline_, half * 2, 0.99);
    free (raw);
    free (threads);
    free (inline_);
}

//  A throughput in each mode, measured in halves in the order A B B A after
//  an unmeasured half in A: the first run of a kind in a process is slower
//  (the heap grows, pages fault in), and the machine's load drifts; this
//  way neither weighs on one mode more than the other. Rates are the sum
//  of items over the sum of times; CPU is per item
static void
s_throughput (s_run_fn *run, int total, const curve_t **modes, int count, double *rate,
              double *cpu)
{
    int half = total / 2 > 0? total / 2: 1;
    tally_t tallies [2] = {{0}, {0}}, unused = {0};
    run (half, modes [0], &unused);
    int order [4] = {0, 1, 1, 0};
    for (int i = 0; i < 4; i++)
        if (order [i] < count)
            run (half, modes [order [i]], &tallies [order [i]]);
    for (int m = 0; m < count; m++) {
        tally_t *tally = &tallies [m];
        rate [m] = tally->items * 1e6 / (double) (tally->elapsed? tally->elapsed: 1);
        cpu [m] = (double) tally->cpu / (double) (tally->items? tally->items: 1);
    }
}

//  Writes the run's certificates: ROOT/keys holds the secret ones (with
//  their public halves), ROOT/trust the public ones every node trusts
static int
s_curve_new (curve_t *curve, const char *root)
{
    static char keys [512], trust [512];
    snprintf (keys, sizeof (keys), "%s/keys", root);
    snprintf (trust, sizeof (trust), "%s/trust", root);
    if (mkdir (keys, 0700) || mkdir (trust, 0700))
        return -1;
    for (size_t i = 0; i < sizeof (s_names) / sizeof (s_names [0]); i++) {
        zcert_t *cert = zcert_new ();
        zcert_set_meta (cert, "name", "%s", s_names [i]);
        char *path = zsys_sprintf ("%s/%s.cert", keys, s_names [i]);
        int rc = zcert_save (cert, path);
        free (path);
        path = zsys_sprintf ("%s/%s.cert", trust, s_names [i]);
        rc |= zcert_save_public (cert, path);
        free (path);
        zcert_destroy (&cert);
        if (rc)
            return -1;
    }
    curve->server = zcert_new ();
    curve->client = zcert_new ();
    curve->keys = keys;
    curve->trust = trust;
    return 0;
}

static void
s_curve_destroy (curve_t *curve)
{
    zcert_destroy (&curve->server);
    zcert_destroy (&curve->client);
}

static void
s_remove_root (void)
{
    char command [600];
    snprintf (command, sizeof (command), "rm -rf %s", s_root);
    if (system (command) != 0)
        fprintf (stderr, "bench: could not remove %s\n", s_root);
}

//  Interrupted, the bench removes its directory and ends at once: what it
//  may call here must be async-signal-safe, so rm runs in a child
static void
s_on_signal (int signal)
{
    pid_t child = fork ();
    if (child == 0) {
        execlp ("rm", "rm", "-rf", s_root, (char *) NULL);
        _exit (1);
    }
    if (child > 0)
        waitpid (child, NULL, 0);
    _exit (128 + signal);
}

//  A latency row: two figures, then over/under as a factor (over and
//  under are the two figures in one order or the other)
static void
s_print_row (const char *format, int window, int64_t first, int64_t second, int64_t over,
             int64_t under)
{
    char label [64];
    snprintf (label, sizeof (label), format, window);
    printf ("%-46s %14" PRId64 " %14" PRId64 " %7.2fx\n", label, first, second,
            (double) over / (double) (under? under: 1));
}

//  Chorus beside raw libzmq
static void
s_print_vs_raw (const char *format, int window, int64_t chorus, int64_t raw)
{
    s_print_row (format, window, chorus, raw, chorus, raw);
}

static void
s_print_table (const figures_t *f)
{
    printf ("%-46s %14s %14s %8s\n", "measure", "chorus", "raw libzmq", "ratio");
    printf ("%-46s %14.0f %14.0f %7.1f%%\n", "events/s (durable group delivery vs PUB/SUB)",
            f->chorus_rate, f->raw_rate, 100 * f->chorus_rate / f->raw_rate);
    for (int i = 0; i < 2; i++) {
        s_print_vs_raw ("command round trip p50 us, %d in flight", s_windows [i], f->ch50 [i],
                     f->raw50 [i]);
        s_print_vs_raw ("command round trip p99 us, %d in flight", s_windows [i], f->ch99 [i],
                     f->raw99 [i]);
    }
    for (int i = 0; i < 2; i++) {
        s_print_vs_raw ("the same, run inline: p50, %d in flight", s_windows [i], f->in50 [i],
                     f->raw50 [i]);
        s_print_vs_raw ("the same, run inline: p99, %d in flight", s_windows [i], f->in99 [i],
                     f->raw99 [i]);
    }
}

//  A rate's CURVE/plaintext as a percentage, a latency's as a factor
static void
s_print_rate (const char *label, double plain, double curve)
{
    printf ("%-46s %14.0f %14.0f %7.1f%%\n", label, plain, curve, 100 * curve / plain);
}

//  CURVE beside plaintext
static void
s_print_latency (const char *label, int window, int64_t plain, int64_t curve)
{
    s_print_row (label, window, plain, curve, curve, plain);
}

//  CURVE beside plaintext: what a secure mesh costs Chorus, and what CURVE
//  costs libzmq alone on the same sockets
static void
s_print_cost (const figures_t *plain, const figures_t *curve)
{
    printf ("%-46s %14s %14s %8s\n", "measure", "plaintext", "CURVE", "ratio");
    s_print_rate ("chorus events/s", plain->chorus_rate, curve->chorus_rate);
    s_print_rate ("raw PUB/SUB messages/s", plain->raw_rate, curve->raw_rate);
    printf ("%-46s %14.1f %14.1f %7.2fx\n", "chorus CPU us per event (all threads)",
            plain->chorus_cpu, curve->chorus_cpu, curve->chorus_cpu / plain->chorus_cpu);
    printf ("%-46s %14.2f %14.2f %7.2fx\n", "raw CPU us per message (all threads)",
            plain->raw_cpu, curve->raw_cpu, curve->raw_cpu / plain->raw_cpu);
    for (int i = 0; i < 2; i++) {
        s_print_latency ("chorus round trip p50 us, %d in flight", s_windows [i], plain->ch50 [i],
                         curve->ch50 [i]);
        s_print_latency ("chorus round trip p99 us, %d in flight", s_windows [i], plain->ch99 [i],
                         curve->ch99 [i]);
        s_print_latency ("raw round trip p50 us, %d in flight", s_windows [i], plain->raw50 [i],
                         curve->raw50 [i]);
        s_print_latency ("raw round trip p99 us, %d in flight", s_windows [i], plain->raw99 [i],
                         curve->raw99 [i]);
    }
    printf ("target (CURVE events/s >= 60%% of plaintext): %s\n",
            curve->chorus_rate >= 0.6 * plain->chorus_rate? "met": "not met");
}

//  One mode's figures as measures, each beside its raw libzmq baseline
static void
s_json_figures (bench_json_t *json, const figures_t *f, const char *mode)
{
    char name [96];
    snprintf (name, sizeof (name), "node.events_per_second.%s", mode);
    bench_json_measure (json, name, f->chorus_rate, "events/s", "raw libzmq PUB/SUB messages/s",
                        f->raw_rate);
    snprintf (name, sizeof (name), "node.cpu_us_per_event.%s", mode);
    bench_json_measure (json, name, f->chorus_cpu, "us",
                        "raw libzmq PUB/SUB CPU us per message", f->raw_cpu);
    for (int i = 0; i < 2; i++) {
        snprintf (name, sizeof (name), "node.command_rtt_p50_us.in_flight_%d.%s", s_windows [i],
                  mode);
        bench_json_measure (json, name, (double) f->ch50 [i], "us",
                            "raw libzmq DEALER/ROUTER round trip p50 us", (double) f->raw50 [i]);
        snprintf (name, sizeof (name), "node.command_rtt_p99_us.in_flight_%d.%s", s_windows [i],
                  mode);
        bench_json_measure (json, name, (double) f->ch99 [i], "us",
                            "raw libzmq DEALER/ROUTER round trip p99 us", (double) f->raw99 [i]);
        snprintf (name, sizeof (name), "node.command_rtt_inline_p50_us.in_flight_%d.%s",
                  s_windows [i], mode);
        bench_json_measure (json, name, (double) f->in50 [i], "us",
                            "raw libzmq DEALER/ROUTER round trip p50 us", (double) f->raw50 [i]);
        snprintf (name, sizeof (name), "node.command_rtt_inline_p99_us.in_flight_%d.%s",
                  s_windows [i], mode);
        bench_json_measure (json, name, (double) f->in99 [i], "us",
                            "raw libzmq DEALER/ROUTER round trip p99 us", (double) f->raw99 [i]);
    }
}

int
main (int argc, char **argv)
{
    int events = 200000, messages = 1000000, commands = 20000;
    bool plaintext = true, secure = true;
    const char *json_path = NULL;
    static struct option options [] = {
        {"events", required_argument, 0, 'e'}, {"messages", required_argument, 0, 'm'},
        {"commands", required_argument, 0, 'c'}, {"size", required_argument, 0, 's'},
        {"security", required_argument, 0, 'S'}, {"json", required_argument, 0, 'j'},
        {0, 0, 0, 0}};
    int option;
    while ((option = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (option) {
            case 'e': events = atoi (optarg); break;
            case 'm': messages = atoi (optarg); break;
            case 'c': commands = atoi (optarg); break;
            case 's': s_size = atoi (optarg); break;
            case 'j': json_path = optarg; break;
            case 'S':
                plaintext = streq (optarg, "plaintext") || streq (optarg, "both");
                secure = streq (optarg, "curve") || streq (optarg, "both");
                if (!plaintext && !secure) {
                    fprintf (stderr, "bench: --security is plaintext, curve or both\n");
                    return 2;
                }
                break;
            default: return 2;
        }
    }
    if (s_size < 8)
        s_size = 8;
    if (events < 1 || messages < 1 || commands < 1) {
        fprintf (stderr, "bench: --events, --messages and --commands must be at least 1\n");
        return 2;
    }
    if (!mkdtemp (s_root))
        return 1;
    atexit (s_remove_root);
    zsys_init ();                       //  which would catch the signals for itself
    zsys_handler_set (s_on_signal);
    char path [600];
    snprintf (path, sizeof (path), "%s/plaintext", s_root);
    mkdir (path, 0700);
    snprintf (path, sizeof (path), "%s/curve", s_root);
    mkdir (path, 0700);
    curve_t curve = {NULL, NULL, NULL, NULL};
    if (secure && s_curve_new (&curve, s_root)) {
        fprintf (stderr, "bench: cannot write keys under %s\n", s_root);
        return 1;
    }

    printf ("payload %d bytes, loopback TCP, durable = in the LevelDB outbox before publish returns\n\n",
            s_size);
    fflush (stdout);
    //  The modes take turns at each measure, so that both see the machine
    //  in the same state. Raw sockets run while no secure node lives: then
    //  no ZAP handler is bound and libzmq lets their CURVE clients in
    //  unasked (ZAP is once per connection: no matter to the figures)
    figures_t plain = {0}, secured = {0};
    const curve_t *modes [2] = {plaintext? NULL: &curve, &curve};
    figures_t *into [2] = {plaintext? &plain: &secured, &secured};
    int count = plaintext && secure? 2: 1;
    double rate [2], cpu [2];
    s_throughput (s_raw_pubsub, messages, modes, count, rate, cpu);
    for (int m = 0; m < count; m++) {
        into [m]->raw_rate = rate [m];
        into [m]->raw_cpu = cpu [m];
    }
    s_throughput (s_chorus_events, events, modes, count, rate, cpu);
    for (int m = 0; m < count; m++) {
        into [m]->chorus_rate = rate [m];
        into [m]->chorus_cpu = cpu [m];
    }
    for (int i = 0; i < 2; i++)
        for (int m = 0; m < count; m++) {
            s_roundtrips (commands, s_windows [i], modes [m], i, into [m]);
        }
    if (plaintext)
        s_print_table (&plain);
    if (secure) {
        if (plaintext)
            printf ("\n");
        printf ("with CURVE: every socket encrypted, every peer's key checked "
                "(keys made for this run)\n");
        s_print_table (&secured);
    }
    if (plaintext && secure) {
        printf ("\nCURVE beside plaintext (rates: CURVE as %% of plaintext; "
                "latencies: CURVE/plaintext)\n");
        s_print_cost (&plain, &secured);
    }
    s_curve_destroy (&curve);
    bench_json_t *json = bench_json_new ("bench_node", json_path);
    if (plaintext)
        s_json_figures (json, &plain, "plaintext");
    if (secure)
        s_json_figures (json, &secured, "curve");
    if (plaintext && secure)
        bench_json_target (json, "CURVE events/s >= 60% of plaintext",
                           secured.chorus_rate >= 0.6 * plain.chorus_rate);
    return bench_json_destroy (&json)? 1: 0;
}
