/*  chorus_cmd_tail.c — `chorus tail` and `chorus peers`: watch the mesh.
    tail observes events without taking them from any group; peers lists
    the nodes met after a short wait.
*/
#include "chorus_cli.h"
#include "chorus_json.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

enum {
    S_OPT_TOPIC = CHORUS_CLI_OPT_OWN,
    S_OPT_SERVICE,
    S_OPT_CORRELATION,
    S_OPT_FROM,
    S_OPT_COUNT,
    S_OPT_MONITOR,
    S_OPT_WAIT
};

//  One run of either subcommand
typedef struct {
    chorus_cli_t cli;               //  shared options
    const char *topic;              //  tail: --topic prefix ("" for all)
    const char *service;            //  tail: --service filter, or NULL
    const char *correlation;        //  tail: --correlation filter, or NULL
    bool earliest;                  //  tail: --from earliest
    long long count;                //  tail: --count, 0 for no limit
    long long printed;              //  tail: events printed so far
    bool monitor;                   //  tail: --monitor
    bool failed;                    //  stdout failed (closed pipe)
    int wait_ms;                    //  peers: --wait
    chorus_node_t *node;            //  our node
} s_watch_t;

static const struct option s_tail_options [] = {
    { "topic", required_argument, NULL, S_OPT_TOPIC },
    { "service", required_argument, NULL, S_OPT_SERVICE },
    { "correlation", required_argument, NULL, S_OPT_CORRELATION },
    { "from", required_argument, NULL, S_OPT_FROM },
    { "count", required_argument, NULL, S_OPT_COUNT },
    { "monitor", no_argument, NULL, S_OPT_MONITOR },
    CHORUS_CLI_JSON_OPTION,
    CHORUS_CLI_MESH_OPTIONS,
    { NULL, 0, NULL, 0 }
};

static const struct option s_peers_options [] = {
    { "wait", required_argument, NULL, S_OPT_WAIT },
    CHORUS_CLI_JSON_OPTION,
    CHORUS_CLI_MESH_OPTIONS,
    { NULL, 0, NULL, 0 }
};

static void
s_tail_usage (FILE *out)
{
    fprintf (out,
        "usage: chorus tail [OPTIONS]\n"
        "\n"
        "Print events as they are published anywhere on the mesh, in order per\n"
        "publisher, without taking them from any group, until interrupted:\n"
        "  HH:MM:SS.mmm SERVICE/INSTANCE8 TOPIC #SEQ key=K corr=C PAYLOAD\n"
        "Events lost to a publisher's retention show as\n"
        "  !! SERVICE/INSTANCE lost #FROM-#TO: REASON\n"
        "\n"
        "  --topic PREFIX         only topics starting with PREFIX (default: all)\n"
        "  --service S            only events published by service S\n"
        "  --correlation ID       only events with this correlation id\n"
        "  --from earliest|latest start with each publisher's retained history, or\n"
        "                         with what comes next (default latest)\n"
        "  --count N              stop after N events\n"
        "  --monitor              also print peers as they join, turn evasive or\n"
        "                         alive, expire or leave, and what this node's\n"
        "                         sockets do (ZeroMQ's socket monitor): listening,\n"
        "                         accepted, connected, retried, disconnected,\n"
        "                         closed, handshake-succeeded, handshake-failed\n"
        "                         (with the reason: an unknown key, a plaintext\n"
        "                         peer on a secure mesh, ...):\n"
        "                           -- peer SERVICE/INSTANCE joined at ENDPOINT\n"
        "                           -- socket SOCKET EVENT PEER[: DETAIL]\n"
        "                         SOCKET is inbox, pub, dealer or sub.\n"
        "  --json                 one JSON object per line: events with time,\n"
        "                         service, instance, topic, seq, key, id,\n"
        "                         correlation, causation, attempt, payload;\n"
        "                         {\"truncated\": {...}}, {\"peer\": {...}} and\n"
        "                         {\"socket\": {event, socket, peer, detail}}\n");
    chorus_cli_print_mesh_help (out, "none, a temporary store");
}

static void
s_peers_usage (FILE *out)
{
    fprintf (out,
        "usage: chorus peers [OPTIONS]\n"
        "\n"
        "Join the mesh, wait for discovery, and list the live peers met:\n"
        "SERVICE INSTANCE ENDPOINT STATE LAST-SEEN KEY AUTH SUBSCRIPTIONS. KEY is\n"
        "the peer's CURVE public key on a secure mesh ('-' on a plaintext one);\n"
        "AUTH says whether that key was checked against our trust directory.\n"
        "\n"
        "  --wait MS   how long to listen before listing (default 2000)\n"
        "  --json      one JSON object per peer per line\n");
    chorus_cli_print_mesh_help (out, "none, a temporary store");
}

static int
s_option (s_watch_t *self, int opt, char **argv)
{
    long long number;
    switch (opt) {
        case S_OPT_TOPIC: self->topic = optarg; break;
        case S_OPT_SERVICE: self->service = optarg; break;
        case S_OPT_CORRELATION: self->correlation = optarg; break;
        case S_OPT_MONITOR: self->monitor = true; break;
        case S_OPT_FROM:
            if (strcmp (optarg, "earliest") && strcmp (optarg, "latest"))
                return chorus_cli_usage_error (&self->cli, "--from: '%s' is not earliest or latest",
                                               optarg);
            self->earliest = strcmp (optarg, "earliest") == 0;
            break;
        case S_OPT_COUNT:
            if (chorus_cli_parse_int (&self->cli, "--count", optarg, 1, INT64_MAX, &self->count))
                return CHORUS_CLI_USAGE;
            break;
        case S_OPT_WAIT:
            if (chorus_cli_parse_int (&self->cli, "--wait", optarg, 0, 3600000, &number))
                return CHORUS_CLI_USAGE;
            self->wait_ms = (int) number;
            break;
        default:
            return chorus_cli_option (&self->cli, opt, argv);
    }
    return CHORUS_CLI_CONTINUE;
}

static int
s_parse (s_watch_t *self, int argc, char **argv, const struct option *options)
{
    int opt;
    while ((opt = getopt_long (argc, argv, CHORUS_CLI_SHORT_OPTIONS, options, NULL)) != -1) {
        int rc = s_option (self, opt, argv);
        if (rc != CHORUS_CLI_CONTINUE)
            return rc;
    }
    if (chorus_cli_check (&self->cli) != CHORUS_CLI_CONTINUE)
        return CHORUS_CLI_USAGE;
    if (optind < argc)
        return chorus_cli_usage_error (&self->cli, "unexpected argument '%s'", argv [optind]);
    return CHORUS_CLI_CONTINUE;
}

//  A line is out; a closed stdout ends the run
static void
s_printed (s_watch_t *self, int rc)
{
    if (rc || fflush (stdout)) {
        self->failed = true;
        chorus_node_stop (self->node);
    }
}

static json_t *
s_time_json (uint64_t ms)
{
    char text [40];
    chorus_cli_time_iso (ms, text, sizeof (text));
    return json_string (text);
}

//  --------------------------------------------------------------------------
//  tail

static void
s_print_event (s_watch_t *self, chorus_event_t *event)
{
    if (self->cli.json) {
        json_t *object = json_object ();
        json_object_set_new (object, "time", s_time_json (chorus_event_timestamp (event)));
        json_object_set_new (object, "service", chorus_cli_json_text (chorus_event_service (event)));
        json_object_set_new (object, "instance",
                             chorus_cli_json_text (chorus_event_instance (event)));
        json_object_set_new (object, "topic", chorus_cli_json_text (chorus_event_topic (event)));
        json_object_set_new (object, "seq", json_integer ((json_int_t) chorus_event_seq (event)));
        json_object_set_new (object, "key", chorus_cli_json_text (chorus_event_key (event)));
        json_object_set_new (object, "id", chorus_cli_json_text (chorus_event_id (event)));
        json_object_set_new (object, "correlation",
                             chorus_cli_json_text (chorus_event_correlation (event)));
        json_object_set_new (object, "causation",
                             chorus_cli_json_text (chorus_event_causation (event)));
        json_object_set_new (object, "attempt",
                             json_integer ((json_int_t) chorus_event_attempt (event)));
        json_object_set_new (object, "payload",
                             chorus_cli_payload_json (chorus_event_payload (event),
                                                      chorus_event_size (event)));
        s_printed (self, chorus_cli_print_json (object));
        return;
    }
    char clock [24];
    chorus_cli_time_clock (chorus_event_timestamp (event), clock, sizeof (clock));
    char *payload = chorus_json_payload_text (chorus_event_payload (event),
                                              chorus_event_size (event), 0);
    const char *key = chorus_event_key (event);
    const char *correlation = chorus_event_correlation (event);
    int rc = printf ("%s %s/%.8s %s #%" PRIu64 "%s%s corr=%s %s\n", clock,
                     chorus_event_service (event), chorus_event_instance (event),
                     chorus_event_topic (event), chorus_event_seq (event), key? " key=": "",
                     key? key: "", correlation? correlation: "-", payload? payload: "?");
    free (payload);
    s_printed (self, rc < 0? -1: 0);
}

static int
s_on_event (chorus_node_t *node, chorus_event_t *event, void *arg)
{
    (void) node;
    s_watch_t *self = (s_watch_t *) arg;
    //  Events already dispatched may follow the last one we wanted
    if (self->failed || (self->count && self->printed >= self->count))
        return 0;
    if (self->service && strcmp (self->service, chorus_event_service (event)) != 0)
        return 0;
    const char *correlation = chorus_event_correlation (event);
    if (self->correlation && (!correlation || strcmp (self->correlation, correlation) != 0))
        return 0;
    s_print_event (self, event);
    if (self->count && ++self->printed >= self->count)
        chorus_node_stop (self->node);
    return 0;
}

//  Finds a peer's service from its instance
typedef struct {
    const char *instance;           //  the instance sought
    char *service;                  //  its service, when met
} s_lookup_t;

static void
s_match_peer (chorus_node_t *node, const chorus_peer_t *peer, void *arg)
{
    (void) node;
    s_lookup_t *lookup = (s_lookup_t *) arg;
    if (!lookup->service && strcmp (peer->instance, lookup->instance) == 0)
        lookup->service = strdup (peer->service);
}

static void
s_on_truncated (chorus_node_t *node, const char *publisher, uint64_t from, uint64_t to,
                const char *reason, void *arg)
{
    s_watch_t *self = (s_watch_t *) arg;
    s_lookup_t lookup = { publisher, NULL };
    chorus_node_peers (node, s_match_peer, &lookup);
    const char *service = lookup.service? lookup.service: "?";
    if (self->failed || (self->service && lookup.service && strcmp (self->service, service))) {
        free (lookup.service);
        return;
    }
    if (self->cli.json) {
        json_t *object = json_object ();
        json_object_set_new (object, "time", s_time_json (zclock_time ()));
        json_object_set_new (object, "service", chorus_cli_json_text (lookup.service));
        json_object_set_new (object, "instance", chorus_cli_json_text (publisher));
        json_object_set_new (object, "from", json_integer ((json_int_t) from));
        json_object_set_new (object, "to", json_integer ((json_int_t) to));
        json_object_set_new (object, "reason", chorus_cli_json_text (reason));
        s_printed (self, chorus_cli_print_json (json_pack ("{s:o}", "truncated", object)));
    }
    else
        s_printed (self, printf ("!! %s/%s lost #%" PRIu64 "-#%" PRIu64 ": %s\n", service,
                                 publisher, from, to, reason? reason: "") < 0? -1: 0);
    free (lookup.service);
}

static void
s_on_peer (chorus_node_t *node, const chorus_peer_t *peer, void *arg)
{
    (void) node;
    s_watch_t *self = (s_watch_t *) arg;
    if (self->failed)
        return;
    const char *state = chorus_cli_peer_state_name (peer->state);
    if (self->cli.json) {
        json_t *object = json_object ();
        json_object_set_new (object, "time", s_time_json (zclock_time ()));
        json_object_set_new (object, "service", chorus_cli_json_text (peer->service));
        json_object_set_new (object, "instance", chorus_cli_json_text (peer->instance));
        json_object_set_new (object, "state", json_string (state));
        json_object_set_new (object, "endpoint", chorus_cli_json_text (peer->endpoint));
        s_printed (self, chorus_cli_print_json (json_pack ("{s:o}", "peer", object)));
    }
    else
        s_printed (self, printf ("-- peer %s/%s %s at %s\n", peer->service, peer->instance,
                                 state, peer->endpoint? peer->endpoint: "?") < 0? -1: 0);
}

//  A socket-monitor event of the node's own sockets
static void
s_on_monitor (chorus_node_t *node, const char *event, const char *socket, const char *peer,
              const char *detail, void *arg)
{
    (void) node;
    s_watch_t *self = (s_watch_t *) arg;
    if (self->failed)
        return;
    if (self->cli.json) {
        json_t *object = json_object ();
        json_object_set_new (object, "time", s_time_json (zclock_time ()));
        json_object_set_new (object, "event", chorus_cli_json_text (event));
        json_object_set_new (object, "socket", chorus_cli_json_text (socket));
        json_object_set_new (object, "peer", chorus_cli_json_text (peer));
        json_object_set_new (object, "detail", chorus_cli_json_text (detail));
        s_printed (self, chorus_cli_print_json (json_pack ("{s:o}", "socket", object)));
    }
    else
        s_printed (self, printf ("-- socket %s %s %s%s%s\n", socket, event, peer,
                                 *detail? ": ": "", detail) < 0? -1: 0);
}

static int
s_tail (s_watch_t *self)
{
    self->node = chorus_cli_node_new (&self->cli, "chorus-tail", NULL);
    if (!self->node)
        return CHORUS_CLI_FAILED;
    int rc = chorus_node_observe (self->node, self->topic, self->earliest, s_on_event, self);
    if (rc < 0) {
        chorus_cli_failed (&self->cli, self->node, rc, "cannot observe '%s'", self->topic);
        return CHORUS_CLI_FAILED;
    }
    chorus_node_on_truncated (self->node, s_on_truncated, self);
    if (self->monitor) {
        chorus_node_on_peer (self->node, s_on_peer, self);
        chorus_node_on_monitor (self->node, s_on_monitor, self);
    }
    rc = chorus_cli_node_start (&self->cli, self->node);
    if (rc < 0)
        return chorus_cli_failure (rc);
    //  Until --count events, a closed stdout, or an interrupt (the usual end)
    rc = chorus_node_run (self->node, -1);
    if (rc < 0 && rc != CHORUS_EINTERRUPTED) {
        chorus_cli_failed (&self->cli, self->node, rc, "stopped");
        return chorus_cli_failure (rc);
    }
    return self->failed? CHORUS_CLI_FAILED: CHORUS_CLI_OK;
}

//  --------------------------------------------------------------------------
//  peers

//  A peer as listed, copied out of the callback
typedef struct {
    char *service;                  //  its service
    char *instance;                 //  its instance id
    char *endpoint;                 //  its inbox endpoint
    char *pub_endpoint;             //  its PUB endpoint
    char *subscriptions;            //  its prefixes, comma-separated
    chorus_peer_state_t state;      //  as last reported
    uint64_t last_seen;             //  ms since epoch
    uint64_t head;                  //  its latest sequence number
    char *key;                      //  its CURVE public key (Z85), NULL on plaintext
    bool authenticated;             //  its key was checked against our trust directory
} s_peer_t;

static void
s_peer_destroy (void *item)
{
    s_peer_t *peer = (s_peer_t *) item;
    free (peer->service);
    free (peer->instance);
    free (peer->endpoint);
    free (peer->pub_endpoint);
    free (peer->subscriptions);
    free (peer->key);
    free (peer);
}

static void
s_collect_peer (chorus_node_t *node, const chorus_peer_t *peer, void *arg)
{
    (void) node;
    s_peer_t *copy = calloc (1, sizeof (s_peer_t));
    if (!copy)
        return;
    copy->service = strdup (peer->service? peer->service: "");
    copy->instance = strdup (peer->instance? peer->instance: "");
    copy->endpoint = strdup (peer->endpoint? peer->endpoint: "");
    copy->pub_endpoint = strdup (peer->pub_endpoint? peer->pub_endpoint: "");
    copy->subscriptions = strdup (peer->subscriptions? peer->subscriptions: "");
    copy->state = peer->state;
    copy->last_seen = peer->last_seen;
    copy->head = peer->head;
    copy->key = peer->key? strdup (peer->key): NULL;
    copy->authenticated = peer->authenticated;
    zlist_append ((zlist_t *) arg, copy);
    zlist_freefn ((zlist_t *) arg, copy, s_peer_destroy, true);
}

static int
s_compare_peers (void *left, void *right)
{
    s_peer_t *one = (s_peer_t *) left, *other = (s_peer_t *) right;
    int rc = strcmp (one->service, other->service);
    return rc? rc: strcmp (one->instance, other->instance);
}

static json_t *
s_peer_json (s_peer_t *peer)
{
    json_t *object = json_object ();
    json_object_set_new (object, "service", chorus_cli_json_text (peer->service));
    json_object_set_new (object, "instance", chorus_cli_json_text (peer->instance));
    json_object_set_new (object, "endpoint", chorus_cli_json_text (peer->endpoint));
    json_object_set_new (object, "pub_endpoint", chorus_cli_json_text (peer->pub_endpoint));
    json_object_set_new (object, "state", json_string (chorus_cli_peer_state_name (peer->state)));
    json_object_set_new (object, "last_seen", s_time_json (peer->last_seen));
    json_object_set_new (object, "head", json_integer ((json_int_t) peer->head));
    json_object_set_new (object, "subscriptions", chorus_cli_json_text (peer->subscriptions));
    json_object_set_new (object, "key", chorus_cli_json_text (peer->key));
    json_object_set_new (object, "authenticated", json_boolean (peer->authenticated));
    return object;
}

//  Column widths of the table: the longest value or title
typedef struct {
    int service;                    //  SERVICE column
    int instance;                   //  INSTANCE column
    int endpoint;                   //  ENDPOINT column
    int key;                        //  KEY column
} s_widths_t;

static int
s_wider (int width, const char *text)
{
    int length = (int) strlen (text);
    return length > width? length: width;
}

static int
s_print_table (zlist_t *peers)
{
    s_widths_t width = { 7, 8, 8, 3 };
    for (s_peer_t *peer = zlist_first (peers); peer; peer = zlist_next (peers)) {
        width.service = s_wider (width.service, peer->service);
        width.instance = s_wider (width.instance, peer->instance);
        width.endpoint = s_wider (width.endpoint, peer->endpoint);
        width.key = s_wider (width.key, peer->key? peer->key: "-");
    }
    int rc = printf ("%-*s  %-*s  %-*s  %-7s  %9s  %-*s  %-4s  %s\n", width.service,
                     "SERVICE", width.instance, "INSTANCE", width.endpoint, "ENDPOINT",
                     "STATE", "LAST-SEEN", width.key, "KEY", "AUTH", "SUBSCRIPTIONS");
    uint64_t now = zclock_time ();
    for (s_peer_t *peer = zlist_first (peers); peer && rc >= 0; peer = zlist_next (peers)) {
        char age [32];
        double seconds = now > peer->last_seen? (double) (now - peer->last_seen) / 1000: 0;
        snprintf (age, sizeof (age), "%.1fs ago", seconds);
        rc = printf ("%-*s  %-*s  %-*s  %-7s  %9s  %-*s  %-4s  %s\n", width.service,
                     peer->service, width.instance, peer->instance, width.endpoint,
                     peer->endpoint, chorus_cli_peer_state_name (peer->state), age, width.key,
                     peer->key? peer->key: "-", peer->authenticated? "yes": "no",
                     peer->subscriptions);
    }
    return rc < 0 || fflush (stdout)? -1: 0;
}

static int
s_peers (s_watch_t *self)
{
    self->node = chorus_cli_node_new (&self->cli, "chorus-peers", NULL);
    if (!self->node)
        return CHORUS_CLI_FAILED;
    int rc = chorus_cli_node_start (&self->cli, self->node);
    if (rc < 0)
        return chorus_cli_failure (rc);
    int64_t deadline = zclock_mono () + self->wait_ms;
    for (int64_t left = self->wait_ms; left > 0; left = deadline - zclock_mono ()) {
        rc = chorus_node_run (self->node, (int) left);
        if (rc == CHORUS_EINTERRUPTED)
            return CHORUS_CLI_INTERRUPTED;
        if (rc < 0) {
            chorus_cli_failed (&self->cli, self->node, rc, "stopped");
            return chorus_cli_failure (rc);
        }
    }
    zlist_t *peers = zlist_new ();
    rc = chorus_node_peers (self->node, s_collect_peer, peers);
    if (rc < 0)
        chorus_cli_failed (&self->cli, self->node, rc, "cannot list peers");
    else {
        zlist_sort (peers, s_compare_peers);
        if (self->cli.json)
            for (s_peer_t *peer = zlist_first (peers); peer && rc >= 0; peer = zlist_next (peers))
                rc = chorus_cli_print_json (s_peer_json (peer));
        else
            rc = s_print_table (peers);
    }
    zlist_destroy (&peers);
    return rc < 0? CHORUS_CLI_FAILED: CHORUS_CLI_OK;
}

//  --------------------------------------------------------------------------

int
chorus_cmd_tail (int argc, char **argv)
{
    s_watch_t self = { .topic = "" };
    chorus_cli_init (&self.cli, "tail", s_tail_usage);
    int status = s_parse (&self, argc, argv, s_tail_options);
    if (status == CHORUS_CLI_CONTINUE)
        status = s_tail (&self);
    chorus_node_destroy (&self.node);
    chorus_cli_release (&self.cli);
    return status;
}

int
chorus_cmd_peers (int argc, char **argv)
{
    s_watch_t self = { .wait_ms = 2000 };
    chorus_cli_init (&self.cli, "peers", s_peers_usage);
    int status = s_parse (&self, argc, argv, s_peers_options);
    if (status == CHORUS_CLI_CONTINUE)
        status = s_peers (&self);
    chorus_node_destroy (&self.node);
    chorus_cli_release (&self.cli);
    return status;
}
