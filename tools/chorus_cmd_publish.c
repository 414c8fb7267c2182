/*  chorus_cmd_publish.c — `chorus publish`: publish one event, or one per
    line of stdin (the lines that are ready together, in one store write),
    then stay until every group they are due to has acknowledged them, and
    say which groups did and which did not. What is still undelivered stays
    in the store and goes out the next time a node starts on it.
*/
#include "chorus_cli.h"
#include "chorus_json.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

//  Exit status when deliveries are still pending at the deadline
#define S_PENDING 3
//  Longest line --lines takes; a longer one is an error, not a huge event
#define S_LINE_MAX (16 * 1024 * 1024)
//  Payload bytes after which --lines publishes what it has, even with more
//  lines ready. A flush to disk costs about the same up to this size, so
//  larger batches gain little; and a store write that fails (a full disk)
//  fails whole, so smaller ones publish more of what fits.
#define S_BATCH_BYTES (256 * 1024)

enum {
    S_OPT_KEY = CHORUS_CLI_OPT_OWN,
    S_OPT_CORRELATION,
    S_OPT_TIMEOUT,
    S_OPT_LINES,
    S_OPT_KEY_FIELD,
    S_OPT_SETTLE,
    S_OPT_DURABILITY
};

static const struct option s_options [] = {
    { "key", required_argument, NULL, S_OPT_KEY },
    { "correlation", required_argument, NULL, S_OPT_CORRELATION },
    { "timeout", required_argument, NULL, S_OPT_TIMEOUT },
    { "lines", no_argument, NULL, S_OPT_LINES },
    { "key-field", required_argument, NULL, S_OPT_KEY_FIELD },
    { "settle", required_argument, NULL, S_OPT_SETTLE },
    { "durability", required_argument, NULL, S_OPT_DURABILITY },
    CHORUS_CLI_JSON_OPTION,
    CHORUS_CLI_MESH_OPTIONS,
    { NULL, 0, NULL, 0 }
};

//  Lines read and not yet published: the next chorus_node_publish_batch
typedef struct {
    chorus_publication_t *events;   //  CHORUS_PUBLISH_BATCH_MAX of them
    void **payloads;                //  each event's MessagePack, ours
    char **keys;                    //  each event's key from --key-field, ours, or NULL
    size_t *lines;                  //  each event's line number
    size_t count;                   //  events in the batch
    size_t bytes;                   //  payload bytes in the batch
} s_batch_t;

//  One run of the subcommand
typedef struct {
    chorus_cli_t cli;               //  shared options
    const char *topic;              //  TOPIC
    const char *json;               //  the JSON argument, or NULL
    const char *key;                //  --key, or NULL
    const char *correlation;        //  --correlation, or NULL for a new one
    const char *key_field;          //  --key-field, or NULL
    bool lines;                     //  --lines: events from stdin
    int timeout_ms;                 //  --timeout, for the wait after publishing
    int settle_ms;                  //  --settle, for discovery to settle
    chorus_durability_t durability; //  --durability or CHORUS_DURABILITY
    bool durability_set;            //  --durability was given
    void *data;                     //  the JSON argument as MessagePack
    size_t size;                    //  bytes in data
    chorus_node_t *node;            //  our node
    size_t published;               //  events published so far
    int failure;                    //  the library's code of the last failed publish
    zlist_t *groups;                //  names of the groups the events were due to
    s_batch_t batch;                //  with --lines: lines not yet published
} s_publish_t;

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: chorus publish TOPIC [JSON] [OPTIONS]\n"
        "       chorus publish TOPIC --lines [--key-field F] [OPTIONS] < FILE\n"
        "\n"
        "Wait for discovery to settle, then publish an event whose payload is\n"
        "JSON (none without JSON), or with --lines one event per line of stdin\n"
        "(one JSON document a line; empty lines skipped). Each event is durable in\n"
        "the store once published. --lines publishes the lines that stdin has\n"
        "ready together, up to 4096 lines or 256 KiB in one store write (one flush\n"
        "to disk under fsync), so a line that comes alone is published at once.\n"
        "Then wait until every group the events are due to has acknowledged them:\n"
        "the groups met on the mesh that subscribe to TOPIC, and those known to the\n"
        "store from earlier runs. What is not yet delivered stays in the store and\n"
        "goes out the next time a node starts on it.\n"
        "\n"
        "At the end it says on stderr what is true: \"delivered N events to GROUPS\",\n"
        "or \"stored durably; no group subscribes to TOPIC yet\", or \"stored durably;\n"
        "groups ... have not acknowledged yet\" with the count pending for each and\n"
        "whether it has a live instance.\n"
        "\n"
        "  --key K            key the events (order is kept among equal keys)\n"
        "  --key-field F      with --lines: key each event by the line's top-level\n"
        "                     field F (string or number; --key if it is missing)\n"
        "  --correlation ID   correlation id of the events (default: a new one)\n"
        "  --lines            read events from stdin, one JSON document a line\n"
        "  --settle MS        wait until the set of peers has been stable this long\n"
        "                     (default 1500)\n"
        "  --durability D     when a publish counts as durable: 'process', written to\n"
        "                     the operating system (survives a crash of chorus, not of\n"
        "                     the machine), or 'fsync', flushed to disk (survives a\n"
        "                     crash of the machine) (default: $CHORUS_DURABILITY,\n"
        "                     else process)\n"
        "  --timeout SECONDS  give up waiting for acknowledgements (default 30)\n"
        "  --json             print {\"id\",\"topic\",\"key\"} for each event published\n");
    chorus_cli_print_mesh_help (out, "$XDG_DATA_HOME/chorus/publish-TOPIC");
    fprintf (out,
        "\n"
        "Exit status: 0 every group due the events acknowledged them (or no group\n"
        "subscribes to TOPIC), 1 failed (a bad line stops publishing, named by its\n"
        "number; the lines before it are published, and are delivered like the\n"
        "rest), 2 bad usage, 3 stored durably but some group has not acknowledged\n"
        "by the timeout (named on stderr; kept in the store).\n");
}

//  "process" or "fsync" as a durability; -1 for anything else
static int
s_durability (const char *text, chorus_durability_t *durability)
{
    if (streq (text, "process"))
        *durability = CHORUS_DURABLE_PROCESS;
    else
    if (streq (text, "fsync"))
        *durability = CHORUS_DURABLE_FSYNC;
    else
        return -1;
    return 0;
}

static int
s_option (s_publish_t *self, int opt, char **argv)
{
    long long number;
    switch (opt) {
        case S_OPT_KEY: self->key = optarg; break;
        case S_OPT_CORRELATION: self->correlation = optarg; break;
        case S_OPT_LINES: self->lines = true; break;
        case S_OPT_KEY_FIELD: self->key_field = optarg; break;
        case S_OPT_TIMEOUT:
            if (chorus_cli_parse_seconds (&self->cli, "--timeout", optarg, 0, &self->timeout_ms))
                return CHORUS_CLI_USAGE;
            break;
        case S_OPT_SETTLE:
            if (chorus_cli_parse_int (&self->cli, "--settle", optarg, 0, 3600000, &number))
                return CHORUS_CLI_USAGE;
            self->settle_ms = (int) number;
            break;
        case S_OPT_DURABILITY:
            if (s_durability (optarg, &self->durability))
                return chorus_cli_usage_error (&self->cli, "--durability: '%s' is not "
                                               "'process' or 'fsync'", optarg);
            self->durability_set = true;
            break;
        default:
            return chorus_cli_option (&self->cli, opt, argv);
    }
    return CHORUS_CLI_CONTINUE;
}

static int
s_parse (s_publish_t *self, int argc, char **argv)
{
    int opt;
    while ((opt = getopt_long (argc, argv, CHORUS_CLI_SHORT_OPTIONS, s_options, NULL)) != -1) {
        int rc = s_option (self, opt, argv);
        if (rc != CHORUS_CLI_CONTINUE)
            return rc;
    }
    if (chorus_cli_check (&self->cli) != CHORUS_CLI_CONTINUE)
        return CHORUS_CLI_USAGE;
    if (optind >= argc)
        return chorus_cli_usage_error (&self->cli, "missing TOPIC");
    self->topic = argv [optind++];
    if (optind < argc)
        self->json = argv [optind++];
    if (optind < argc)
        return chorus_cli_usage_error (&self->cli, "unexpected argument '%s'", argv [optind]);
    if (self->lines && self->json)
        return chorus_cli_usage_error (&self->cli, "JSON and --lines cannot go together");
    if (self->key_field && !self->lines)
        return chorus_cli_usage_error (&self->cli, "--key-field needs --lines");
    //  Like CHORUS_MESH, a bad value in the environment is a failure to
    //  start, not a typing mistake on the command line
    const char *env = getenv ("CHORUS_DURABILITY");
    if (!self->durability_set && env && *env && s_durability (env, &self->durability)) {
        chorus_cli_error (&self->cli, "CHORUS_DURABILITY '%s' is not 'process' or 'fsync'", env);
        return CHORUS_CLI_FAILED;
    }
    return CHORUS_CLI_CONTINUE;
}

//  --------------------------------------------------------------------------
//  Publishing

//  Counts an event published, and with --json prints it
static void
s_published (s_publish_t *self, const char *id, const char *key)
{
    self->published++;
    if (self->cli.json) {
        json_t *line = json_object ();
        json_object_set_new (line, "id", json_string (id));
        json_object_set_new (line, "topic", chorus_cli_json_text (self->topic));
        json_object_set_new (line, "key", chorus_cli_json_text (key));
        chorus_cli_print_json (line);
    }
}

//  Publish the JSON argument as one event
static int
s_publish (s_publish_t *self)
{
    char id [33];
    int rc = chorus_node_publish_traced (self->node, self->topic, self->key, self->data,
                                         self->size, self->correlation, id);
    if (rc < 0) {
        chorus_cli_failed (&self->cli, self->node, rc, "cannot publish");
        self->failure = rc;
        return -1;
    }
    s_published (self, id, self->key);
    return 0;
}

//  Notes the groups that have deliveries pending: right after a publish,
//  these are the groups the events are due to (the engine answers only
//  after it has taken the events, and before any acknowledgement)
static void
s_note_group (chorus_node_t *node, const char *group, uint64_t pending, size_t instances,
              void *arg)
{
    (void) node;
    (void) pending;
    (void) instances;
    zlist_t *groups = (zlist_t *) arg;
    for (char *name = zlist_first (groups); name; name = zlist_next (groups))
        if (strcmp (name, group) == 0)
            return;
    zlist_append (groups, (void *) group);
}

static void
s_note_groups (s_publish_t *self)
{
    chorus_node_pending (self->node, s_note_group, self->groups);
}

//  The JSON argument as a payload, before any node exists: a typing
//  mistake is bad usage, not a failure of the mesh
static int
s_convert_argument (s_publish_t *self)
{
    char error [256];
    if (self->json && chorus_json_to_msgpack (self->json, strlen (self->json), SIZE_MAX,
                                              &self->data, &self->size, error, sizeof (error)))
        return chorus_cli_usage_error (&self->cli, "JSON argument: %s", error);
    return CHORUS_CLI_CONTINUE;
}

//  The key from --key-field, as text (free it); NULL to use --key
static char *
s_line_key (s_publish_t *self, const char *text, size_t size, const char **problem)
{
    json_t *root = json_loadb (text, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    json_t *field = json_is_object (root)? json_object_get (root, self->key_field): NULL;
    char *key = NULL;
    if (json_is_string (field))
        key = strdup (json_string_value (field));
    else
    if (json_is_number (field))
        key = json_dumps (field, JSON_ENCODE_ANY);
    else
    if (field && !json_is_null (field))
        *problem = "is not a string or a number";
    json_decref (root);
    return key;
}

//  --------------------------------------------------------------------------
//  Publishing lines, a batch at a time

static int
s_batch_init (s_batch_t *self)
{
    self->events = (chorus_publication_t *) calloc (CHORUS_PUBLISH_BATCH_MAX,
                                                    sizeof (chorus_publication_t));
    self->payloads = (void **) calloc (CHORUS_PUBLISH_BATCH_MAX, sizeof (void *));
    self->keys = (char **) calloc (CHORUS_PUBLISH_BATCH_MAX, sizeof (char *));
    self->lines = (size_t *) calloc (CHORUS_PUBLISH_BATCH_MAX, sizeof (size_t));
    return self->events && self->payloads && self->keys && self->lines? 0: -1;
}

//  Forget the events in the batch (published or not)
static void
s_batch_clear (s_batch_t *self)
{
    for (size_t i = 0; i < self->count; i++) {
        free (self->payloads [i]);
        free (self->keys [i]);
    }
    self->count = 0;
    self->bytes = 0;
}

static void
s_batch_release (s_batch_t *self)
{
    if (self->events)
        s_batch_clear (self);
    free (self->events);
    free (self->payloads);
    free (self->keys);
    free (self->lines);
}

//  Publish the lines the batch holds, in one call. When that fails, they
//  go one at a time up to the one that fails, so that the message names
//  its line and the lines before it are published, as without batches.
//  Returns 0, or -1 after a message.
static int
s_batch_publish (s_publish_t *self)
{
    s_batch_t *batch = &self->batch;
    if (batch->count == 0)
        return 0;
    //  Fresh ids each call: an id left from a failed call would be taken
    //  for the producer's own, and remembered
    for (size_t i = 0; i < batch->count; i++)
        batch->events [i].id [0] = 0;
    size_t done = batch->count;
    int rc = 0;
    if (chorus_node_publish_batch (self->node, batch->events, batch->count) < 0)
        for (done = 0; done < batch->count; done++) {
            batch->events [done].id [0] = 0;
            int code = chorus_node_publish_batch (self->node, &batch->events [done], 1);
            if (code < 0) {
                chorus_cli_failed (&self->cli, self->node, code, "line %zu: cannot publish",
                                   batch->lines [done]);
                self->failure = code;
                rc = -1;
                break;
            }
        }
    for (size_t i = 0; i < done; i++)
        s_published (self, batch->events [i].id, batch->events [i].key);
    s_batch_clear (batch);
    s_note_groups (self);
    return rc;
}

//  Add an event to the batch, taking its payload and key; publishes the
//  batch when it is full. Returns 0, or -1 after a message.
static int
s_batch_add (s_publish_t *self, void *data, size_t size, char *key, size_t line)
{
    s_batch_t *batch = &self->batch;
    size_t at = batch->count++;
    batch->payloads [at] = data;
    batch->keys [at] = key;
    batch->lines [at] = line;
    batch->bytes += size;
    chorus_publication_t *event = &batch->events [at];
    memset (event, 0, sizeof (*event));
    event->topic = self->topic;
    event->key = key? key: self->key;
    event->payload = data;
    event->size = size;
    event->correlation = self->correlation;
    if (batch->count == CHORUS_PUBLISH_BATCH_MAX || batch->bytes >= S_BATCH_BYTES)
        return s_batch_publish (self);
    return 0;
}

//  One line of stdin as an event in the batch. A bad line publishes the
//  lines before it, then stops. Returns 0, or -1 after a message.
static int
s_publish_line (s_publish_t *self, char *text, size_t size, size_t number)
{
    size = chorus_cli_trim (text, size);
    if (size == 0)
        return 0;
    void *data = NULL;
    size_t data_size = 0;
    char error [256];
    if (chorus_json_to_msgpack (text, size, SIZE_MAX, &data, &data_size, error,
                                sizeof (error))) {
        if (s_batch_publish (self) == 0) {
            //  The bridge counts lines within the document, which is one line
            const char *place = strncmp (error, "line 1 ", 7) == 0? error + 7: error;
            chorus_cli_error (&self->cli, "line %zu: %s", number, place);
        }
        return -1;
    }
    const char *problem = NULL;
    char *key = self->key_field? s_line_key (self, text, size, &problem): NULL;
    if (problem) {
        free (data);
        if (s_batch_publish (self) == 0)
            chorus_cli_error (&self->cli, "line %zu: field '%s' %s", number, self->key_field,
                              problem);
        return -1;
    }
    return s_batch_add (self, data, data_size, key, number);
}

//  Stdin as it comes in, one whole line at a time
typedef struct {
    char *data;                     //  bytes read and not yet used
    size_t size;                    //  bytes in data
    size_t lines;                   //  lines taken so far
    bool eof;                       //  stdin has ended
} s_reader_t;

//  Take the whole lines in the reader (at end of file, the rest too) into
//  the batch
static int
s_take_lines (s_publish_t *self, s_reader_t *reader)
{
    char *start = reader->data;
    size_t left = reader->size;
    int rc = 0;
    char *newline;
    while (rc == 0 && (newline = memchr (start, '\n', left))) {
        *newline = 0;
        rc = s_publish_line (self, start, (size_t) (newline - start), ++reader->lines);
        left -= (size_t) (newline - start) + 1;
        start = newline + 1;
    }
    if (rc == 0 && reader->eof && left)
        rc = s_publish_line (self, start, left, ++reader->lines);
    else
    if (rc == 0 && left >= S_LINE_MAX) {
        if (s_batch_publish (self) == 0)
            chorus_cli_error (&self->cli, "line %zu: longer than %d bytes", reader->lines + 1,
                              S_LINE_MAX);
        rc = -1;
    }
    memmove (reader->data, start, left);
    reader->size = left;
    return rc;
}

//  Read what stdin has; -1 on a read error
static int
s_read_stdin (s_reader_t *reader)
{
    char *data = realloc (reader->data, reader->size + 65536 + 1);
    if (!data)
        return -1;
    reader->data = data;
    ssize_t got = read (STDIN_FILENO, data + reader->size, 65536);
    if (got < 0)
        return errno == EINTR || errno == EAGAIN? 0: -1;
    reader->eof = got == 0;
    reader->size += (size_t) got;
    //  Room for a NUL after a last line without a newline
    data [reader->size] = 0;
    return 0;
}

//  Publish stdin line by line: the lines read while more are ready go in
//  one batch, which is published once stdin has nothing more ready (so a
//  line typed or written alone goes at once), at its end, or when the
//  batch is full. The node keeps running between reads, so a slow
//  producer (tail -f) does not make our peers think we are dead.
static int
s_publish_stdin (s_publish_t *self)
{
    if (s_batch_init (&self->batch)) {
        chorus_cli_error (&self->cli, "out of memory");
        return -1;
    }
    s_reader_t reader = { NULL, 0, 0, false };
    int rc = 0;
    while (rc == 0 && !reader.eof) {
        struct pollfd item = { .fd = STDIN_FILENO, .events = POLLIN };
        bool ready = poll (&item, 1, 0) > 0;
        if (ready) {
            if (s_read_stdin (&reader)) {
                chorus_cli_error (&self->cli, "cannot read stdin: %s", strerror (errno));
                rc = -1;
            }
            else
                rc = s_take_lines (self, &reader);
        }
        if ((!ready || reader.eof || rc) && s_batch_publish (self))
            rc = -1;
        //  Busy: only what is ready; idle: wait a little for the node
        if (ready)
            chorus_node_dispatch (self->node);
        else
        if (chorus_node_run (self->node, 50) < 0)
            break;      //  interrupted, or damage the next publish reports
    }
    //  Interrupted, or a read error after some lines: those are published
    if (s_batch_publish (self))
        rc = -1;
    free (reader.data);
    return rc;
}

//  --------------------------------------------------------------------------
//  Waiting for delivery

static void
s_collect_peer (chorus_node_t *node, const chorus_peer_t *peer, void *arg)
{
    (void) node;
    //  With what it subscribes to, known once it is met: a member first
    //  known from news and met meanwhile is a change too (the instances a
    //  group's events are shared among are those met)
    char *name = zsys_sprintf ("%s/%s[%s]", peer->service, peer->instance,
                               peer->subscriptions? peer->subscriptions: "");
    if (name)
        zlist_append ((zlist_t *) arg, name);
    zstr_free (&name);
}

static int
s_compare_names (void *left, void *right)
{
    return strcmp ((const char *) left, (const char *) right);
}

//  The peers we know, as one sorted string to compare with the last
static char *
s_peer_set (chorus_node_t *node)
{
    zlist_t *names = zlist_new ();
    zlist_autofree (names);
    chorus_node_peers (node, s_collect_peer, names);
    zlist_sort (names, s_compare_names);
    char *set = strdup ("");
    for (char *name = zlist_first (names); name && set; name = zlist_next (names)) {
        char *longer = zsys_sprintf ("%s%s ", set, name);
        free (set);
        set = longer;
    }
    zlist_destroy (&names);
    return set;
}

//  Until no peer has come, gone or been met for settle_ms: the groups we must wait
//  for are those of the peers we know. Returns 0, or the code of the run
//  that failed (CHORUS_EINTERRUPTED when interrupted).
static int
s_settle (s_publish_t *self, int64_t deadline)
{
    char *seen = s_peer_set (self->node);
    int64_t stable_since = zclock_mono ();
    int rc = 0;
    while (zclock_mono () - stable_since < self->settle_ms && zclock_mono () < deadline) {
        rc = chorus_node_run (self->node, 50);
        if (rc < 0)
            break;
        char *now = s_peer_set (self->node);
        if (!seen || !now || strcmp (seen, now) != 0)
            stable_since = zclock_mono ();
        free (seen);
        seen = now;
    }
    free (seen);
    return rc;
}

//  The groups still due events, as "billing (12 pending), audit (3 pending,
//  no live instance)"
typedef struct {
    char *text;                     //  what is said so far, or NULL
    size_t groups;                  //  how many groups
} s_pending_text_t;

static void
s_add_pending (chorus_node_t *node, const char *group, uint64_t pending, size_t instances,
               void *arg)
{
    (void) node;
    s_pending_text_t *list = (s_pending_text_t *) arg;
    char *more = zsys_sprintf ("%s%s%s (%" PRIu64 " pending%s)", list->text? list->text: "",
                               list->text? ", ": "", group, pending,
                               instances? "": ", no live instance");
    free (list->text);
    list->text = more;
    list->groups++;
}

//  Until every delivery is acknowledged or the deadline; says what is true
//  and returns the exit status
static int
s_wait_delivered (s_publish_t *self)
{
    int64_t deadline = zclock_mono () + self->timeout_ms;
    bool interrupted = false;
    while (true) {
        int64_t pending = chorus_node_unacked (self->node);
        if (pending < 0) {
            chorus_cli_failed (&self->cli, self->node, (int) pending,
                               "cannot count pending deliveries");
            return CHORUS_CLI_FAILED;
        }
        s_note_groups (self);
        if (pending == 0)
            break;
        if (interrupted || zclock_mono () >= deadline) {
            s_pending_text_t list = { NULL, 0 };
            chorus_node_pending (self->node, s_add_pending, &list);
            chorus_cli_error (&self->cli, "stored durably; %s %s %s not acknowledged yet "
                              "(kept in the store, delivered when they come)",
                              list.groups == 1? "group": "groups", list.text? list.text: "?",
                              list.groups == 1? "has": "have");
            free (list.text);
            return S_PENDING;
        }
        int rc = chorus_node_run (self->node, 50);
        if (rc < 0 && rc != CHORUS_EINTERRUPTED) {
            chorus_cli_failed (&self->cli, self->node, rc, "stopped waiting for delivery");
            return chorus_cli_failure (rc);
        }
        interrupted = rc == CHORUS_EINTERRUPTED;
    }
    if (zlist_size (self->groups) == 0 && self->published == 0)
        chorus_cli_error (&self->cli, "nothing to deliver");
    else
    if (zlist_size (self->groups) == 0)
        chorus_cli_error (&self->cli, "stored durably; no group subscribes to %s yet",
                          self->topic);
    else {
        char *names = NULL;
        for (char *name = zlist_first (self->groups); name; name = zlist_next (self->groups)) {
            char *more = zsys_sprintf ("%s%s%s", names? names: "", names? ", ": "", name);
            free (names);
            names = more;
        }
        if (self->published)
            chorus_cli_error (&self->cli, "delivered %zu event%s to %s", self->published,
                              self->published == 1? "": "s", names);
        else
            chorus_cli_error (&self->cli, "delivered what the store kept to %s", names);
        free (names);
    }
    return CHORUS_CLI_OK;
}

//  --------------------------------------------------------------------------

static int
s_run (s_publish_t *self)
{
    char *store_name = chorus_cli_store_name ("publish", self->topic);
    self->node = chorus_cli_node_new (&self->cli, "chorus-publish", store_name);
    zstr_free (&store_name);
    if (!self->node)
        return CHORUS_CLI_FAILED;
    chorus_node_set_durability (self->node, self->durability);
    int rc = chorus_cli_node_start (&self->cli, self->node);
    if (rc < 0)
        return chorus_cli_failure (rc);
    //  Meet the mesh before publishing: events go to the instances of a
    //  group known when they are sent, so a burst published at once would
    //  all go to the first instance met (durability does not depend on it)
    rc = s_settle (self, zclock_mono () + self->timeout_ms);
    if (rc == CHORUS_EINTERRUPTED)
        return CHORUS_CLI_FAILED;
    if (rc < 0) {
        chorus_cli_failed (&self->cli, self->node, rc, "stopped before publishing");
        return chorus_cli_failure (rc);
    }
    rc = self->lines? s_publish_stdin (self): s_publish (self);
    s_note_groups (self);
    if (self->cli.verbose)
        chorus_cli_error (&self->cli, "published %zu event%s", self->published,
                          self->published == 1? "": "s");
    if (rc && self->failure == CHORUS_ECORRUPT)
        return CHORUS_CLI_DAMAGED;      //  the store is damaged: nothing more from it
    if (rc && self->published == 0)
        return CHORUS_CLI_FAILED;
    //  Even after a bad line, what was published is delivered like the
    //  rest; with nothing new, this still sends what an earlier run left
    int status = s_wait_delivered (self);
    return rc? CHORUS_CLI_FAILED: status;
}

int
chorus_cmd_publish (int argc, char **argv)
{
    s_publish_t self = { .timeout_ms = 30000, .settle_ms = 1500, .groups = zlist_new () };
    zlist_autofree (self.groups);
    chorus_cli_init (&self.cli, "publish", s_usage);
    int status = s_parse (&self, argc, argv);
    if (status == CHORUS_CLI_CONTINUE)
        status = s_convert_argument (&self);
    if (status == CHORUS_CLI_CONTINUE)
        status = s_run (&self);
    chorus_node_destroy (&self.node);
    s_batch_release (&self.batch);
    zlist_destroy (&self.groups);
    free (self.data);
    chorus_cli_release (&self.cli);
    return status;
}
