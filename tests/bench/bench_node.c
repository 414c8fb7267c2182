/*  bench_node.c — Chorus beside raw libzmq, measured in one run on loopback:
    durable group-delivered events per second against raw PUB/SUB messages
    per second, and command round trips (1 and 100 in flight) against raw
    DEALER/ROUTER round trips. Prints a table of figures and ratios.
    Usage: bench_node [--events N] [--messages N] [--commands N] [--size B]
*/
#include "chorus.h"

#include <getopt.h>
#include <pthread.h>

static int s_size = 100;            //  payload bytes

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

//  --------------------------------------------------------------------------
//  Raw PUB/SUB: one publisher thread, one subscriber, messages per second

typedef struct {
    const char *endpoint;       //  where the PUB binds
    int count;                  //  messages to receive
    int64_t finished;           //  when the last arrived (us)
    int received;               //  how many arrived
} raw_sub_t;

static void *
s_raw_subscriber (void *arg)
{
    raw_sub_t *sub = (raw_sub_t *) arg;
    zsock_t *socket = zsock_new_sub (sub->endpoint, "");
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

static double
s_raw_pubsub (int count)
{
    zsock_t *pub = zsock_new (ZMQ_PUB);
    zsock_set_sndhwm (pub, 0);
    int port = zsock_bind (pub, "tcp://127.0.0.1:*");
    char endpoint [64];
    snprintf (endpoint, sizeof (endpoint), ">tcp://127.0.0.1:%d", port);
    raw_sub_t sub = {endpoint, count, 0, 0};
    pthread_t thread;
    pthread_create (&thread, NULL, s_raw_subscriber, &sub);
    //  PUB/SUB has no handshake to await; a benchmark may settle instead
    zclock_sleep (200);
    char *payload = (char *) calloc (1, (size_t) s_size);
    int64_t start = s_now_us ();
    for (int i = 0; i < count; i++)
        zmq_send (zsock_resolve (pub), payload, (size_t) s_size, 0);
    pthread_join (thread, NULL);
    free (payload);
    zsock_destroy (&pub);
    if (sub.received < count)
        fprintf (stderr, "bench: raw PUB/SUB lost %d of %d\n", count - sub.received, count);
    return sub.received * 1e6 / (double) (sub.finished - start);
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

static void
s_raw_roundtrip (int count, int window, int64_t *p50, int64_t *p99)
{
    raw_echo_t echo = {zsock_new (ZMQ_ROUTER), false};
    int port = zsock_bind (echo.router, "tcp://127.0.0.1:*");
    pthread_t thread;
    pthread_create (&thread, NULL, s_raw_echo, &echo);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zsock_connect (dealer, "tcp://127.0.0.1:%d", port);
    int64_t *samples = (int64_t *) calloc ((size_t) count, sizeof (int64_t));
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
    *p50 = s_percentile (samples, count, 0.50);
    *p99 = s_percentile (samples, count, 0.99);
    echo.stop = true;
    pthread_join (thread, NULL);
    free (samples);
    free (payload);
    zsock_destroy (&dealer);
    zsock_destroy (&echo.router);
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

static double
s_chorus_events (int count, const char *root)
{
    char store [512];
    snprintf (store, sizeof (store), "%s/publisher", root);
    chorus_node_t *publisher = chorus_node_new ("bench-pub");
    chorus_node_set_store (publisher, store);
    chorus_node_set_retention (publisher, 0, 0, CHORUS_RETAIN_REFUSE);
    chorus_node_start (publisher);
    chorus_sub_t sub = {chorus_node_new ("bench-sub"), count, 0, 0};
    snprintf (store, sizeof (store), "%s/subscriber", root);
    chorus_node_set_store (sub.node, store);
    chorus_node_add_seed (sub.node, chorus_node_endpoint (publisher));
    chorus_node_subscribe (sub.node, "bench.", s_on_event, &sub);
    chorus_node_start (sub.node);
    while (chorus_node_peers (publisher, NULL, NULL) < 1)
        chorus_node_run (publisher, 10);
    chorus_node_run (publisher, 300);      //  let the group's subscription arrive
    pthread_t thread;
    pthread_create (&thread, NULL, s_chorus_subscriber, &sub);
    char *payload = (char *) calloc (1, (size_t) s_size);
    int64_t start = s_now_us ();
    for (int i = 0; i < count; i++)
        chorus_node_publish (publisher, "bench.event", NULL, payload, (size_t) s_size);
    pthread_join (thread, NULL);
    free (payload);
    if (sub.handled < count)
        fprintf (stderr, "bench: chorus handled %d of %d\n", sub.handled, count);
    chorus_node_destroy (&sub.node);
    chorus_node_destroy (&publisher);
    return sub.handled * 1e6 / (double) (sub.finished - start);
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
} chorus_client_t;

static void
s_on_reply (chorus_node_t *node, chorus_reply_t *reply, void *arg)
{
    chorus_client_t *client = (chorus_client_t *) arg;
    int64_t stamp;
    memcpy (&stamp, chorus_reply_payload (reply), sizeof (stamp));
    client->samples [client->done++] = s_now_us () - stamp;
}

static void
s_chorus_commands (int count, int window, const char *root, int64_t *p50, int64_t *p99)
{
    chorus_server_t server = {chorus_node_new ("bench-echo"), false};
    char store [512];
    snprintf (store, sizeof (store), "%s/echo-%d", root, window);
    chorus_node_set_store (server.node, store);
    chorus_node_handle (server.node, "echo", s_on_echo, NULL);
    chorus_node_start (server.node);
    chorus_node_t *client = chorus_node_new ("bench-client");
    chorus_node_add_seed (client, chorus_node_endpoint (server.node));
    chorus_node_start (client);
    pthread_t thread;
    pthread_create (&thread, NULL, s_chorus_server, &server);
    while (chorus_node_peers (client, NULL, NULL) < 1)
        chorus_node_run (client, 10);
    chorus_client_t state = {(int64_t *) calloc ((size_t) count, sizeof (int64_t)), 0};
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
        if (chorus_node_dispatch (client) == 0) {
            zmq_pollitem_t item = {zsock_resolve (socket), 0, ZMQ_POLLIN, 0};
            zmq_poll (&item, 1, 1000);
        }
    }
    *p50 = s_percentile (state.samples, count, 0.50);
    *p99 = s_percentile (state.samples, count, 0.99);
    server.stop = true;
    pthread_join (thread, NULL);
    free (state.samples);
    free (payload);
    chorus_node_destroy (&client);
    chorus_node_destroy (&server.node);
}

int
main (int argc, char **argv)
{
    int events = 200000, messages = 1000000, commands = 20000;
    static struct option options [] = {
        {"events", required_argument, 0, 'e'}, {"messages", required_argument, 0, 'm'},
        {"commands", required_argument, 0, 'c'}, {"size", required_argument, 0, 's'},
        {0, 0, 0, 0}};
    int option;
    while ((option = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (option) {
            case 'e': events = atoi (optarg); break;
            case 'm': messages = atoi (optarg); break;
            case 'c': commands = atoi (optarg); break;
            case 's': s_size = atoi (optarg); break;
            default: return 2;
        }
    }
    if (s_size < 8)
        s_size = 8;
    char root [] = "/tmp/chorus-bench-XXXXXX";
    if (!mkdtemp (root))
        return 1;

    printf ("payload %d bytes, loopback TCP, durable = in the LevelDB outbox before publish returns\n\n",
            s_size);
    double raw_rate = s_raw_pubsub (messages);
    double chorus_rate = s_chorus_events (events, root);
    printf ("%-46s %14s %14s %8s\n", "measure", "chorus", "raw libzmq", "ratio");
    printf ("%-46s %14.0f %14.0f %7.1f%%\n", "events/s (durable group delivery vs PUB/SUB)",
            chorus_rate, raw_rate, 100 * chorus_rate / raw_rate);
    int windows [2] = {1, 100};
    for (int i = 0; i < 2; i++) {
        int64_t raw50, raw99, ch50, ch99;
        s_raw_roundtrip (commands, windows [i], &raw50, &raw99);
        s_chorus_commands (commands, windows [i], root, &ch50, &ch99);
        char label [64];
        snprintf (label, sizeof (label), "command round trip p50 us, %d in flight", windows [i]);
        printf ("%-46s %14" PRId64 " %14" PRId64 " %7.2fx\n", label, ch50, raw50,
                (double) ch50 / (double) (raw50? raw50: 1));
        snprintf (label, sizeof (label), "command round trip p99 us, %d in flight", windows [i]);
        printf ("%-46s %14" PRId64 " %14" PRId64 " %7.2fx\n", label, ch99, raw99,
                (double) ch99 / (double) (raw99? raw99: 1));
    }
    char command [600];
    snprintf (command, sizeof (command), "rm -rf %s", root);
    if (system (command) != 0)
        return 1;
    return 0;
}
