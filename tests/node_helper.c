/*  node_helper.c — a node in a process of its own, for the tests that kill,
    restart and crash nodes, and that attack a secure node (--cert and
    --trust). It subscribes, handles commands, publishes and calls as its
    options say (--topics N: its events go round N topics, TOPIC.0 to
    TOPIC.N-1), logs every event and command its handlers run, and every
    reply it gets, to a file (one write per line, so a SIGKILL loses nothing
    already logged), and reports on stdout: "READY endpoint instance",
    "PUBLISHED n head", and with --slow-events "HANDLING instance seq" as
    each event handler starts. With --control it also takes commands on
    stdin, one a line, for tests that act on a running mesh: "publish TOPIC N",
    "call SERVICE.COMMAND", "subscribe PREFIX", "counter NAME"; it answers
    each on stdout ("PUBLISHED n head", "CALLED n", "SUBSCRIBED prefix",
    "COUNTER name value", or "FAILED line: reason").
*/
#include "chorus.h"

#include <czmq.h>

#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <unistd.h>

static int s_log = -1;          //  where handled events and commands are logged
static int s_slow_ms = 0;       //  how long a command handler takes
static int s_slow_events_ms = 0;    //  and an event handler (--slow-events)
static int s_reject_every = 0;  //  reject every Nth first delivery of an event

static void
s_log_line (const char *format, ...)
{
    if (s_log < 0)
        return;
    char line [512];
    va_list args;
    va_start (args, format);
    int size = vsnprintf (line, sizeof (line), format, args);
    va_end (args);
    if (write (s_log, line, (size_t) size) != size)
        abort ();
}

static int
s_on_event (chorus_node_t *node, chorus_event_t *event, void *arg)
{
    static int count = 0;
    if (s_reject_every && chorus_event_attempt (event) == 1 && ++count % s_reject_every == 0)
        return 1;
    if (s_slow_events_ms) {
        //  Said on stdout, so that a test can act while the handler runs
        printf ("HANDLING %s %" PRIu64 "\n", chorus_event_instance (event),
                chorus_event_seq (event));
        fflush (stdout);
        zclock_sleep (s_slow_events_ms);
    }
    s_log_line ("E %s %" PRIu64 " %s %" PRIu64 "\n", chorus_event_instance (event),
                chorus_event_seq (event), chorus_event_key (event)? chorus_event_key (event): "-",
                chorus_event_attempt (event));
    return 0;
}

static void
s_on_command (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    s_log_line ("C %s %" PRIu64 " start\n", chorus_command_idempotency (command),
                chorus_command_attempt (command));
    if (s_slow_ms)
        zclock_sleep (s_slow_ms);
    s_log_line ("C %s %" PRIu64 " done\n", chorus_command_idempotency (command),
                chorus_command_attempt (command));
    chorus_reply_set_payload (reply, chorus_node_instance (node), 32);
}

static void
s_on_reply (chorus_node_t *node, chorus_reply_t *reply, void *arg)
{
    const char *code = chorus_reply_code (reply);
    s_log_line ("R %s %d %s\n", (const char *) arg, chorus_reply_status (reply),
                code? code: "-");
    free (arg);     //  every command gets exactly one call, at destroy if not before
}

//  --call SERVICE.COMMAND: one command, its idempotency key "call-N"
static int
s_call (chorus_node_t *node, const char *target, int index)
{
    char service [65];
    const char *dot = strchr (target, '.');
    if (!dot || dot - target > 64) {
        fprintf (stderr, "node_helper: --call wants SERVICE.COMMAND, not %s\n", target);
        return CHORUS_EINVAL;
    }
    snprintf (service, sizeof (service), "%.*s", (int) (dot - target), target);
    //  The key names the reply in the log; the reply handler frees it
    char *key = zsys_sprintf ("call-%d", index);
    int rc = chorus_node_send_traced (node, service, dot + 1, key, strlen (key), 0, key, NULL,
                                      s_on_reply, key);
    if (rc < 0)
        free (key);
    return rc;
}

//  --control: one command from stdin; false at the end of stdin
static int s_calls = 0;         //  calls made, so far

static void
s_control_line (chorus_node_t *node, char *line)
{
    char verb [16] = "", what [300] = "";
    int count = 0;
    int rc = 0;
    if (sscanf (line, "%15s %299s %d", verb, what, &count) < 2)
        rc = CHORUS_EINVAL;
    else
    if (streq (verb, "publish")) {
        for (int i = 0; i < count && rc >= 0; i++) {
            char key [32];
            snprintf (key, sizeof (key), "control-%d", i);
            rc = chorus_node_publish (node, what, key, "control", 7);
        }
        if (rc >= 0)
            printf ("PUBLISHED %d %" PRIu64 "\n", count, chorus_node_counter (node, "published"));
    }
    else
    if (streq (verb, "call")) {
        rc = s_call (node, what, ++s_calls);
        if (rc >= 0)
            printf ("CALLED %d\n", s_calls);
    }
    else
    if (streq (verb, "subscribe")) {
        rc = chorus_node_subscribe (node, what, s_on_event, NULL);
        if (rc >= 0)
            printf ("SUBSCRIBED %s\n", what);
    }
    else
    if (streq (verb, "counter"))
        printf ("COUNTER %s %" PRIu64 "\n", what, chorus_node_counter (node, what));
    else
        rc = CHORUS_EINVAL;
    if (rc < 0)
        printf ("FAILED %s: %s: %s\n", line, chorus_strerror (rc), chorus_node_error (node));
    fflush (stdout);
}

//  Runs the node, and the commands on stdin as they come
static void
s_control (chorus_node_t *node)
{
    char buffer [4096];
    size_t size = 0;
    bool open = true;
    while (!zsys_interrupted) {
        if (chorus_node_run (node, open? 20: -1) < 0)
            break;      //  interrupted (SIGTERM), or the store failed
        struct pollfd input = {0, POLLIN, 0};
        while (open && poll (&input, 1, 0) == 1) {
            ssize_t got = read (0, buffer + size, sizeof (buffer) - 1 - size);
            if (got <= 0) {
                open = false;       //  the node runs on, as without --control
                break;
            }
            size += (size_t) got;
            buffer [size] = 0;
            char *newline;
            while ((newline = strchr (buffer, '\n'))) {
                *newline = 0;
                s_control_line (node, buffer);
                size -= (size_t) (newline + 1 - buffer);
                memmove (buffer, newline + 1, size + 1);
            }
            if (size == sizeof (buffer) - 1)
                size = 0;           //  a line too long for us: dropped
        }
    }
}

int
main (int argc, char **argv)
{
    static struct option options [] = {
        {"service", required_argument, 0, 's'}, {"store", required_argument, 0, 'd'},
        {"seed", required_argument, 0, 'e'}, {"listen", required_argument, 0, 'l'},
        {"heartbeat", required_argument, 0, 'h'}, {"subscribe", required_argument, 0, 'u'},
        {"earliest", no_argument, 0, 'E'}, {"log", required_argument, 0, 'L'},
        {"handle", required_argument, 0, 'c'}, {"slow", required_argument, 0, 'w'},
        {"publish", required_argument, 0, 'p'}, {"topic", required_argument, 0, 't'},
        {"keys", required_argument, 0, 'k'}, {"size", required_argument, 0, 'z'},
        {"ack-timeout", required_argument, 0, 'a'}, {"reject-every", required_argument, 0, 'r'},
        {"wait-peers", required_argument, 0, 'W'}, {"verbose", no_argument, 0, 'v'},
        {"cert", required_argument, 0, 'C'}, {"trust", required_argument, 0, 'T'},
        {"payload", required_argument, 0, 'P'}, {"call", required_argument, 0, 'K'},
        {"topics", required_argument, 0, 'o'}, {"slow-events", required_argument, 0, 'x'},
        {"max-peers", required_argument, 0, 'M'}, {"peer-rate", required_argument, 0, 'R'},
        {"observe", required_argument, 0, 'O'}, {"idle-close", required_argument, 0, 'I'},
        {"control", no_argument, 0, 'X'},
        {0, 0, 0, 0}};
    int idle_close = -1;                        //  --idle-close MS (-1: default)
    bool control = false;                       //  --control: commands on stdin
    int max_peers = 0, peer_rate = 0;           //  --max-peers, --peer-rate (0: default)
    chorus_node_t *node = NULL;
    const char *service = "helper", *topic = "test.event";
    const char *cert = NULL, *trust = NULL;     //  --cert, --trust: a secure node
    const char *fill = "x";                     //  --payload: repeated to --size bytes
    zlist_t *calls = zlist_new ();              //  --call targets, in order
    int publish = 0, keys = 0, size = 16, wait_peers = 0;
    int topics = 0;                             //  --topics N: publish on TOPIC.0 .. TOPIC.N-1
    zlist_t *deferred = zlist_new ();   //  options that need the node, in order
    int option;
    while ((option = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (option) {
            case 's': service = optarg; break;
            case 'L': s_log = open (optarg, O_WRONLY | O_CREAT | O_APPEND, 0644); break;
            case 'w': s_slow_ms = atoi (optarg); break;
            case 'x': s_slow_events_ms = atoi (optarg); break;
            case 'p': publish = atoi (optarg); break;
            case 't': topic = optarg; break;
            case 'k': keys = atoi (optarg); break;
            case 'o': topics = atoi (optarg); break;
            case 'z': size = atoi (optarg); break;
            case 'r': s_reject_every = atoi (optarg); break;
            case 'W': wait_peers = atoi (optarg); break;
            case 'C': cert = optarg; break;
            case 'T': trust = optarg; break;
            case 'P': fill = optarg; break;
            case 'K': zlist_append (calls, optarg); break;
            case 'M': max_peers = atoi (optarg); break;
            case 'R': peer_rate = atoi (optarg); break;
            case 'I': idle_close = atoi (optarg); break;
            case 'X': control = true; break;
            case '?': return 2;
            default: {
                char *item = zsys_sprintf ("%c%s", option, optarg? optarg: "");
                zlist_append (deferred, item);
            }
        }
    }
    node = chorus_node_new (service);
    //  Before the seeds: a secure node's seeds carry keys it must resolve
    int rc = cert || trust? chorus_node_set_security (node, cert, trust): 0;
    if (rc < 0) {
        fprintf (stderr, "node_helper: cannot secure the node: %s: %s\n", chorus_strerror (rc),
                 chorus_node_error (node));
        for (char *item = (char *) zlist_first (deferred); item;
             item = (char *) zlist_next (deferred))
            free (item);
        zlist_destroy (&deferred);
        zlist_destroy (&calls);
        chorus_node_destroy (&node);
        return 2;
    }
    bool refused = false;       //  a setting the node refused
    for (char *item = (char *) zlist_first (deferred); item;
         item = (char *) zlist_next (deferred)) {
        const char *value = item + 1;
        switch (item [0]) {
            case 'd': chorus_node_set_store (node, value); break;
            case 'e': chorus_node_add_seed (node, value); break;
            case 'l': chorus_node_set_listen (node, value); break;
            case 'h': {
                int interval = 200, evasive = 600, expired = 1000;
                sscanf (value, "%d,%d,%d", &interval, &evasive, &expired);
                rc = chorus_node_set_heartbeat (node, interval, evasive, expired);
                if (rc < 0) {
                    //  Not run on other times than asked: say why, and stop
                    fprintf (stderr, "node_helper: --heartbeat=%s (%d,%d,%d): %s: %s\n",
                             value, interval, evasive, expired, chorus_strerror (rc),
                             chorus_node_error (node));
                    refused = true;
                }
                break;
            }
            case 'u': chorus_node_subscribe (node, value, s_on_event, NULL); break;
            case 'O': chorus_node_observe (node, value, false, s_on_event, NULL); break;
            case 'E': chorus_node_set_start_earliest (node, true); break;
            case 'c': chorus_node_handle (node, value, s_on_command, NULL); break;
            case 'a': chorus_node_set_credit (node, 1000, atoi (value)); break;
            case 'v': chorus_node_set_verbose (node, true); break;
        }
        free (item);
    }
    zlist_destroy (&deferred);
    if ((max_peers || peer_rate)
    &&  (rc = chorus_node_set_peer_limits (node, max_peers? max_peers: 400, 64,
                                           peer_rate? peer_rate: 20)) < 0) {
        fprintf (stderr, "node_helper: --max-peers=%d --peer-rate=%d: %s: %s\n", max_peers,
                 peer_rate, chorus_strerror (rc), chorus_node_error (node));
        refused = true;
    }
    if (idle_close >= 0 && (rc = chorus_node_set_idle_close (node, idle_close)) < 0) {
        fprintf (stderr, "node_helper: --idle-close=%d: %s: %s\n", idle_close,
                 chorus_strerror (rc), chorus_node_error (node));
        refused = true;
    }
    if (refused) {
        zlist_destroy (&calls);
        chorus_node_destroy (&node);
        return 2;
    }
    rc = chorus_node_start (node);
    if (rc < 0) {
        fprintf (stderr, "node_helper: cannot start: %s: %s\n", chorus_strerror (rc),
                 chorus_node_error (node));
        chorus_node_destroy (&node);
        zlist_destroy (&calls);
        return 1;
    }
    printf ("READY %s %s\n", chorus_node_endpoint (node), chorus_node_instance (node));
    if (chorus_node_metrics_address (node))    //  with CHORUS_METRICS
        printf ("METRICS %s\n", chorus_node_metrics_address (node));
    fflush (stdout);

    while (wait_peers && chorus_node_peers (node, NULL, NULL) < wait_peers && !zsys_interrupted)
        chorus_node_run (node, 20);
    if (publish) {
        char *payload = (char *) calloc (1, (size_t) size + 1);
        for (int i = 0; i < size && *fill; i++)
            payload [i] = fill [i % strlen (fill)];
        for (int i = 0; i < publish; i++) {
            char key [32];
            snprintf (key, sizeof (key), "key-%d", keys? i % keys: i);
            char name [300];
            snprintf (name, sizeof (name), "%s.%d", topic, topics > 0? i % topics: 0);
            rc = chorus_node_publish (node, topics > 0? name: topic, key, payload, (size_t) size);
            if (rc < 0) {
                fprintf (stderr, "node_helper: publish: %s: %s\n", chorus_strerror (rc),
                         chorus_node_error (node));
                //  Not exit with the node running: czmq's exit handler would
                //  close its sockets under its thread
                chorus_node_destroy (&node);
                zlist_destroy (&calls);
                free (payload);
                return 1;
            }
        }
        free (payload);
        //  How many this process published (the counter of this run)
        printf ("PUBLISHED %d %" PRIu64 "\n", publish, chorus_node_counter (node, "published"));
        fflush (stdout);
    }
    for (const char *target = (const char *) zlist_first (calls); target;
         target = (const char *) zlist_next (calls))
        if ((rc = s_call (node, target, ++s_calls)) < 0) {
            fprintf (stderr, "node_helper: call %s: %s: %s\n", target, chorus_strerror (rc),
                     chorus_node_error (node));
            chorus_node_destroy (&node);
            zlist_destroy (&calls);
            return 1;
        }
    zlist_destroy (&calls);
    if (control)
        s_control (node);
    else
        chorus_node_run (node, -1);
    chorus_node_destroy (&node);
    if (s_log >= 0)
        close (s_log);
    return 0;
}
