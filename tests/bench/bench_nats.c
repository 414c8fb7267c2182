/*  bench_nats.c — the NATS baselines of scripts/bench --peers, on a
    nats-server of its own: 127.0.0.1, a port the system picks, JetStream
    on file storage in a directory of its own under --dir. The server stops
    when the bench ends, even when the bench is killed outright; the
    directory is removed unless the bench is killed outright (scripts/bench
    passes a --dir that it removes itself).
    1. JetStream end to end: a producer publishes asynchronously, each
       message counted durable when the server's acknowledgement (PubAck)
       arrives, at most --window unacknowledged, while a durable pull
       consumer fetches --batch at a time and acknowledges each message
       (--consumer push: the server pushes to it instead). Events/s from the
       first publish to the last message handled, as bench_node measures
       Chorus's durable group delivery.
    2. Core NATS request-reply round trips, 1 and 100 in flight, through an
       echo responder, measured as bench_node measures raw DEALER/ROUTER;
       each with requests written at once and by the client's flusher
       thread, the one with the lower p50 kept.
    Usage: bench_nats [--events N] [--requests N] [--size B] [--window W]
                      [--batch B] [--consumer pull|push] [--server PATH]
                      [--dir DIR] [--json FILE]
*/
#include "bench_json.h"

#include <nats/nats.h>
#include <jansson.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int s_size = 100;            //  payload bytes

//  Messages the consumer may hold unacknowledged: enough that the server
//  never waits for acknowledgements while a fetch or push is under way
#define S_ACK_PENDING 20000

//  The server and its directory, known to the exit and signal handlers
static char s_root [600];           //  the bench's directory, "" until made
static volatile pid_t s_server;     //  nats-server's process id, 0 when none

static int64_t
s_now_us (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000000 + now.tv_nsec / 1000;
}

static void
s_sleep_ms (int ms)
{
    struct timespec pause = {ms / 1000, (long) (ms % 1000) * 1000000};
    nanosleep (&pause, NULL);
}

//  Ends the bench when a NATS call failed, naming the call
static void
s_check (natsStatus status, const char *what)
{
    if (status == NATS_OK)
        return;
    const char *detail = nats_GetLastError (NULL);
    fprintf (stderr, "bench_nats: %s: %s%s%s\n", what, natsStatus_GetText (status),
             detail && *detail? ": ": "", detail && *detail? detail: "");
    exit (1);
}

static int
s_compare (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y? -1: x > y;
}

//  The same percentile as bench_node's, so that the figures compare
static int64_t
s_percentile (int64_t *samples, int count, double fraction)
{
    qsort (samples, (size_t) count, sizeof (int64_t), s_compare);
    int index = (int) (fraction * (count - 1) + 0.5);
    return samples [index];
}

//  --------------------------------------------------------------------------
//  The server: started and stopped by the bench

//  Stops the server and removes the bench's directory; safe to call twice
//  and from a signal handler (rm runs in a child, as bench_node does)
static void
s_cleanup (void)
{
    pid_t server = s_server;
    if (server > 0) {
        kill (server, SIGTERM);
        int i;
        for (i = 0; i < 100 && waitpid (server, NULL, WNOHANG) == 0; i++)
            s_sleep_ms (50);
        if (i == 100) {
            kill (server, SIGKILL);
            waitpid (server, NULL, 0);
        }
        s_server = 0;
    }
    if (*s_root) {
        pid_t child = fork ();
        if (child == 0) {
            execlp ("rm", "rm", "-rf", s_root, (char *) NULL);
            _exit (1);
        }
        if (child > 0)
            waitpid (child, NULL, 0);
        *s_root = 0;
    }
}

static void
s_on_signal (int signal)
{
    s_cleanup ();
    _exit (128 + signal);
}

//  The last lines the server wrote, for a message about why it failed
static void
s_print_log (const char *log)
{
    FILE *file = fopen (log, "r");
    if (!file)
        return;
    char lines [5][512] = {{0}};
    int count = 0;
    while (fgets (lines [count % 5], sizeof (lines [0]), file))
        count++;
    fclose (file);
    for (int i = count > 5? count - 5: 0; i < count; i++)
        fprintf (stderr, "    %s", lines [i % 5]);
}

//  Starts SERVER on 127.0.0.1 with a port of the system's choosing and
//  JetStream stored under s_root; fills URL once it accepts clients. The
//  server writes its port to a file once it listens: that is the sign
static int
s_server_start (const char *server, char *url, size_t size)
{
    char store [700], log [700], ports [700];
    snprintf (store, sizeof (store), "%s/store", s_root);
    snprintf (log, sizeof (log), "%s/server.log", s_root);
    pid_t child = fork ();
    if (child < 0)
        return -1;
    if (child == 0) {
        //  Ends with the bench, even when the bench is killed outright
        prctl (PR_SET_PDEATHSIG, SIGTERM);
        FILE *out = freopen (log, "w", stdout);
        if (!out || dup2 (fileno (stdout), 2) < 0)
            _exit (126);
        execlp (server, server, "-a", "127.0.0.1", "-p", "-1", "-js", "-sd", store,
                "--ports_file_dir", s_root, (char *) NULL);
        fprintf (stderr, "bench_nats: cannot run %s: %s\n", server, strerror (errno));
        _exit (127);
    }
    s_server = child;
    snprintf (ports, sizeof (ports), "%s/nats-server_%d.ports", s_root, (int) child);
    for (int i = 0; i < 300; i++) {
        int status;
        if (waitpid (child, &status, WNOHANG) == child) {
            s_server = 0;
            fprintf (stderr, "bench_nats: %s exited while starting:\n", server);
            s_print_log (log);
            return -1;
        }
        //  Read until whole: the file may be caught half written
        json_t *root = json_load_file (ports, 0, NULL);
        const char *first = json_string_value (json_array_get (json_object_get (root, "nats"), 0));
        if (first && strncmp (first, "nats://127.0.0.1:", 17) == 0) {
            snprintf (url, size, "%s", first);
            json_decref (root);
            return 0;
        }
        json_decref (root);
        s_sleep_ms (50);
    }
    fprintf (stderr, "bench_nats: %s did not listen within 15 s:\n", server);
    s_print_log (log);
    return -1;
}

//  The server's version, as its log reports it
static void
s_server_version (char *version, size_t size)
{
    char text [32];
    snprintf (version, size, "unknown");
    FILE *file;
    char log [700];
    snprintf (log, sizeof (log), "%s/server.log", s_root);
    if ((file = fopen (log, "r"))) {
        char line [512];
        while (fgets (line, sizeof (line), file)) {
            char *at = strstr (line, "Version:");
            if (at && sscanf (at, "Version: %31s", text) == 1) {
                snprintf (version, size, "%s", text);
                break;
            }
        }
        fclose (file);
    }
}

static natsConnection *
s_connect (const char *url, bool send_asap)
{
    natsOptions *options;
    s_check (natsOptions_Create (&options), "options");
    natsOptions_SetURL (options, url);
    //  The bench's server does not come back: a lost connection is a failure
    natsOptions_SetAllowReconnect (options, false);
    natsOptions_SetSendAsap (options, send_asap);
    natsConnection *conn;
    s_check (natsConnection_Connect (&conn, options), "connect");
    natsOptions_Destroy (options);
    return conn;
}

//  --------------------------------------------------------------------------
//  JetStream end to end: async publish with acks, a durable pull consumer

typedef struct {
    natsSubscription *sub;      //  bound to the durable consumer
    int count;                  //  messages to handle
    int batch;                  //  messages per fetch (pull)
    int handled;                //  received and acknowledged
    int64_t finished;           //  when the last was acknowledged (us)
    pthread_mutex_t lock;       //  guards handled and finished for push
    pthread_cond_t done;        //  signalled when the last is handled (push)
} consumer_t;

//  A push consumer's messages, in the library's thread for the subscription
static void
s_on_pushed (natsConnection *conn, natsSubscription *sub, natsMsg *msg, void *closure)
{
    consumer_t *consumer = (consumer_t *) closure;
    bool acked = natsMsg_Ack (msg, NULL) == NATS_OK;
    natsMsg_Destroy (msg);
    pthread_mutex_lock (&consumer->lock);
    if (acked && ++consumer->handled == consumer->count) {
        consumer->finished = s_now_us ();
        pthread_cond_signal (&consumer->done);
    }
    pthread_mutex_unlock (&consumer->lock);
}

//  Waits for a push consumer's last message, two minutes at most
static void *
s_await_pushed (void *arg)
{
    consumer_t *consumer = (consumer_t *) arg;
    struct timespec deadline;
    clock_gettime (CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 120;
    pthread_mutex_lock (&consumer->lock);
    while (consumer->handled < consumer->count)
        if (pthread_cond_timedwait (&consumer->done, &consumer->lock, &deadline) == ETIMEDOUT)
            break;
    if (consumer->handled < consumer->count)
        consumer->finished = s_now_us ();
    pthread_mutex_unlock (&consumer->lock);
    return NULL;
}

static void *
s_consume (void *arg)
{
    consumer_t *consumer = (consumer_t *) arg;
    int64_t deadline = s_now_us () + 120000000;
    while (consumer->handled < consumer->count && s_now_us () < deadline) {
        natsMsgList list = {0};
        natsStatus status = natsSubscription_Fetch (&list, consumer->sub, consumer->batch, 5000,
                                                    NULL);
        if (status != NATS_OK && status != NATS_TIMEOUT) {
            fprintf (stderr, "bench_nats: fetch: %s\n", natsStatus_GetText (status));
            break;
        }
        for (int i = 0; i < list.Count; i++)
            if (natsMsg_Ack (list.Msgs [i], NULL) == NATS_OK)
                consumer->handled++;
        natsMsgList_Destroy (&list);
    }
    consumer->finished = s_now_us ();
    return NULL;
}

//  Publishes that the server refused or did not acknowledge in time
static int s_publish_errors = 0;

static void
s_on_publish_error (jsCtx *js, jsPubAckErr *error, void *closure)
{
    s_publish_errors++;
}

typedef struct {
    int64_t items;              //  messages handled
    int64_t elapsed;            //  us from the first published to the last handled
} tally_t;

//  One run on a stream and consumer of its own, deleted after: events/s
//  then depend on this run alone, as Chorus's runs on fresh stores
static void
s_jetstream_run (const char *url, int count, int window, int batch, bool push, tally_t *tally)
{
    static int run = 0;
    run++;
    char stream [32], subject [48], deliver [48];
    snprintf (stream, sizeof (stream), "bench-%d", run);
    snprintf (subject, sizeof (subject), "bench.%d.event", run);
    snprintf (deliver, sizeof (deliver), "bench.%d.deliver", run);
    natsConnection *producer = s_connect (url, false);
    natsConnection *reader = s_connect (url, false);
    jsOptions options;
    jsOptions_Init (&options);
    options.PublishAsync.MaxPending = window;
    //  A full window waits for acknowledgements rather than fail the publish
    options.PublishAsync.StallWait = 30000;
    options.PublishAsync.ErrHandler = s_on_publish_error;
    jsCtx *js, *reader_js;
    s_check (natsConnection_JetStream (&js, producer, &options), "JetStream context");
    s_check (natsConnection_JetStream (&reader_js, reader, NULL), "JetStream context");

    jsStreamConfig config;
    jsStreamConfig_Init (&config);
    const char *subjects [1] = {subject};
    config.Name = stream;
    config.Subjects = subjects;
    config.SubjectsLen = 1;
    config.Storage = js_FileStorage;
    s_check (js_AddStream (NULL, js, &config, NULL, NULL), "add stream");
    jsConsumerConfig consumer_config;
    jsConsumerConfig_Init (&consumer_config);
    consumer_config.Durable = "group";
    consumer_config.AckPolicy = js_AckExplicit;
    consumer_config.DeliverPolicy = js_DeliverAll;
    consumer_config.MaxAckPending = S_ACK_PENDING;
    if (push)
        consumer_config.DeliverSubject = deliver;
    s_check (js_AddConsumer (NULL, js, stream, &consumer_config, NULL, NULL), "add consumer");
    jsSubOptions bind;
    jsSubOptions_Init (&bind);
    bind.Stream = stream;
    bind.Consumer = "group";
    bind.ManualAck = true;
    consumer_t consumer = {NULL, count, batch, 0, 0, PTHREAD_MUTEX_INITIALIZER,
                           PTHREAD_COND_INITIALIZER};
    if (push) {
        s_check (js_Subscribe (&consumer.sub, reader_js, subject, s_on_pushed, &consumer, NULL,
                               &bind, NULL), "subscribe");
        //  The library queues what the server pushes ahead of the handler
        natsSubscription_SetPendingLimits (consumer.sub, -1, -1);
    }
    else
        s_check (js_PullSubscribe (&consumer.sub, reader_js, subject, "group", NULL, &bind,
                                   NULL), "pull subscribe");

    pthread_t thread;
    pthread_create (&thread, NULL, push? s_await_pushed: s_consume, &consumer);
    char *payload = (char *) calloc (1, (size_t) s_size);
    int64_t start = s_now_us ();
    for (int i = 0; i < count; i++)
        s_check (js_PublishAsync (js, subject, payload, s_size, NULL), "publish");
    jsPubOptions wait;
    jsPubOptions_Init (&wait);
    wait.MaxWait = 60000;
    s_check (js_PublishAsyncComplete (js, &wait), "wait for acknowledgements");
    pthread_join (thread, NULL);
    natsSubscription_Unsubscribe (consumer.sub);
    pthread_mutex_lock (&consumer.lock);
    int handled = consumer.handled;
    tally->items += handled;
    tally->elapsed += consumer.finished - start;
    pthread_mutex_unlock (&consumer.lock);
    if (handled < count || s_publish_errors)
        fprintf (stderr, "bench_nats: JetStream handled %d of %d, %d publishes failed\n",
                 handled, count, s_publish_errors);
    free (payload);
    natsSubscription_Destroy (consumer.sub);
    js_DeleteStream (js, stream, NULL, NULL);
    jsCtx_Destroy (reader_js);
    jsCtx_Destroy (js);
    natsConnection_Destroy (reader);
    natsConnection_Destroy (producer);
    if (handled < count || s_publish_errors)
        exit (1);
}

//  An unmeasured run first, as bench_node does for Chorus (the first run of
//  a kind in a process is slower), then the measured ones: items over time
static double
s_jetstream (const char *url, int total, int window, int batch, bool push)
{
    int half = total / 2 > 0? total / 2: 1;
    tally_t unused = {0, 0}, tally = {0, 0};
    s_jetstream_run (url, half, window, batch, push, &unused);
    s_jetstream_run (url, half, window, batch, push, &tally);
    s_jetstream_run (url, half, window, batch, push, &tally);
    return tally.items * 1e6 / (double) (tally.elapsed? tally.elapsed: 1);
}

//  --------------------------------------------------------------------------
//  Core NATS request-reply, `window` in flight

//  The responder: echoes each request to its reply subject, in the
//  library's own thread for the subscription
static void
s_on_request (natsConnection *conn, natsSubscription *sub, natsMsg *msg, void *closure)
{
    natsConnection_Publish (conn, natsMsg_GetReply (msg), natsMsg_GetData (msg),
                            natsMsg_GetDataLength (msg));
    natsMsg_Destroy (msg);
}

//  Requests go out as the raw DEALER's do: stamped, up to WINDOW ahead of
//  the replies, every reply to one subscription of the client's. With
//  SEND_ASAP each is written at once, else by the library's flusher thread
static void
s_request_reply (const char *url, int count, int window, bool send_asap, int64_t *p50,
                 int64_t *p99)
{
    natsConnection *server = s_connect (url, send_asap);
    natsConnection *client = s_connect (url, send_asap);
    natsSubscription *echo, *replies;
    s_check (natsConnection_Subscribe (&echo, server, "bench.echo", s_on_request, NULL),
             "subscribe");
    s_check (natsConnection_SubscribeSync (&replies, client, "bench.reply"), "subscribe");
    //  Both subscriptions are known to the server before the first request
    s_check (natsConnection_Flush (server), "flush");
    s_check (natsConnection_Flush (client), "flush");
    int64_t *samples = (int64_t *) calloc ((size_t) count, sizeof (int64_t));
    char *payload = (char *) calloc (1, (size_t) s_size);
    int sent = 0, done = 0;
    while (done < count) {
        while (sent < count && sent - done < window) {
            int64_t stamp = s_now_us ();
            memcpy (payload, &stamp, sizeof (stamp));
            s_check (natsConnection_PublishRequest (client, "bench.echo", "bench.reply", payload,
                                                    s_size), "request");
            sent++;
        }
        natsMsg *reply;
        s_check (natsSubscription_NextMsg (&reply, replies, 10000), "reply");
        int64_t stamp;
        memcpy (&stamp, natsMsg_GetData (reply), sizeof (stamp));
        samples [done++] = s_now_us () - stamp;
        natsMsg_Destroy (reply);
    }
    *p50 = s_percentile (samples, count, 0.50);
    *p99 = s_percentile (samples, count, 0.99);
    free (samples);
    free (payload);
    natsSubscription_Destroy (replies);
    natsSubscription_Destroy (echo);
    natsConnection_Destroy (client);
    natsConnection_Destroy (server);
}

//  --------------------------------------------------------------------------

int
main (int argc, char **argv)
{
    int events = 200000, requests = 20000, window = 4000, batch = 500;
    const char *server = "nats-server", *dir = "/tmp", *json = NULL;
    bool push = false;
    static struct option options [] = {
        {"events", required_argument, 0, 'e'}, {"requests", required_argument, 0, 'r'},
        {"size", required_argument, 0, 's'}, {"window", required_argument, 0, 'w'},
        {"batch", required_argument, 0, 'b'}, {"server", required_argument, 0, 'S'},
        {"dir", required_argument, 0, 'd'}, {"json", required_argument, 0, 'j'},
        {"consumer", required_argument, 0, 'c'}, {0, 0, 0, 0}};
    int option;
    while ((option = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (option) {
            case 'e': events = atoi (optarg); break;
            case 'r': requests = atoi (optarg); break;
            case 's': s_size = atoi (optarg); break;
            case 'w': window = atoi (optarg); break;
            case 'b': batch = atoi (optarg); break;
            case 'S': server = optarg; break;
            case 'd': dir = optarg; break;
            case 'j': json = optarg; break;
            case 'c':
                push = strcmp (optarg, "push") == 0;
                if (!push && strcmp (optarg, "pull") != 0)
                    batch = 0;
                break;
            default: return 2;
        }
    }
    if (events < 2 || requests < 1 || window < 1 || batch < 1 || s_size < 8) {
        fprintf (stderr, "usage: bench_nats [--events N>=2] [--requests N] [--size B>=8] "
                 "[--window W] [--batch B] [--consumer pull|push] [--server PATH] [--dir DIR] "
                 "[--json FILE]\n");
        return 2;
    }
    snprintf (s_root, sizeof (s_root), "%s/chorus-bench-nats-XXXXXX", dir);
    if (!mkdtemp (s_root)) {
        fprintf (stderr, "bench_nats: cannot make a directory in %s\n", dir);
        *s_root = 0;
        return 1;
    }
    atexit (s_cleanup);
    struct sigaction action;
    memset (&action, 0, sizeof (action));
    action.sa_handler = s_on_signal;
    sigaction (SIGINT, &action, NULL);
    sigaction (SIGTERM, &action, NULL);
    sigaction (SIGHUP, &action, NULL);
    char url [256];
    if (s_server_start (server, url, sizeof (url)))
        return 1;

    char version [32];
    s_server_version (version, sizeof (version));
    printf ("nats-server %s on 127.0.0.1, JetStream file storage; payload %d bytes\n", version,
            s_size);
    fflush (stdout);
    double rate = s_jetstream (url, events, window, batch, push);
    //  Which way of sending gives the lower latency depends on the load:
    //  at each window, both are measured and NATS keeps the better
    int windows [2] = {1, 100};
    int64_t p50 [2], p99 [2];
    bool asap [2];
    for (int i = 0; i < 2; i++) {
        int64_t flushed50, flushed99;
        s_request_reply (url, requests, windows [i], true, &p50 [i], &p99 [i]);
        s_request_reply (url, requests, windows [i], false, &flushed50, &flushed99);
        asap [i] = p50 [i] <= flushed50;
        if (!asap [i]) {
            p50 [i] = flushed50;
            p99 [i] = flushed99;
        }
    }

    printf ("%-52s %12.0f\n", "JetStream events/s end to end", rate);
    if (push)
        printf ("    (async publish, at most %d unacknowledged; durable push consumer,\n"
                "    each message acknowledged)\n", window);
    else
        printf ("    (async publish, at most %d unacknowledged; durable pull consumer,\n"
                "    %d per fetch, each message acknowledged)\n", window, batch);
    bench_json_t *figures = bench_json_new ("bench_nats", json);
    bench_json_measure (figures, "jetstream.events_per_second", rate, "events/s", NULL, 0);
    for (int i = 0; i < 2; i++) {
        char label [64], name [64];
        snprintf (label, sizeof (label), "request-reply round trip p50 us, %d in flight",
                  windows [i]);
        printf ("%-52s %12" PRId64 "   (%s)\n", label, p50 [i],
                asap [i]? "sent at once": "sent by the flusher");
        snprintf (label, sizeof (label), "request-reply round trip p99 us, %d in flight",
                  windows [i]);
        printf ("%-52s %12" PRId64 "\n", label, p99 [i]);
        snprintf (name, sizeof (name), "nats.request_reply_p50_us.in_flight_%d", windows [i]);
        bench_json_measure (figures, name, (double) p50 [i], "us", NULL, 0);
        snprintf (name, sizeof (name), "nats.request_reply_p99_us.in_flight_%d", windows [i]);
        bench_json_measure (figures, name, (double) p99 [i], "us", NULL, 0);
    }
    int rc = bench_json_destroy (&figures);
    nats_Close ();
    s_cleanup ();
    return rc? 1: 0;
}
