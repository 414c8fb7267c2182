/*  chorus_cli.c — the parts of the `chorus` tool that every subcommand
    shares: mesh options, nodes made from them, and output formatting.
*/
#include "chorus_cli.h"
#include "chorus_json.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

//  --------------------------------------------------------------------------
//  Options and messages

void
chorus_cli_init (chorus_cli_t *self, const char *name, chorus_cli_usage_fn *usage)
{
    memset (self, 0, sizeof (*self));
    self->name = name;
    self->usage = usage;
    self->seeds = zlist_new ();
    zlist_autofree (self->seeds);
    //  Zero makes glibc's getopt start over, forgetting the scan before
    optind = 0;
    //  We name the bad option ourselves, with the subcommand
    opterr = 0;
}

void
chorus_cli_release (chorus_cli_t *self)
{
    zlist_destroy (&self->seeds);
}

static void
s_verror (chorus_cli_t *self, const char *format, va_list args)
{
    fprintf (stderr, "chorus %s: ", self->name);
    vfprintf (stderr, format, args);
    fputc ('\n', stderr);
}

void
chorus_cli_error (chorus_cli_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    s_verror (self, format, args);
    va_end (args);
}

void
chorus_cli_failed (chorus_cli_t *self, chorus_node_t *node, int code, const char *format, ...)
{
    fprintf (stderr, "chorus %s: ", self->name);
    va_list args;
    va_start (args, format);
    vfprintf (stderr, format, args);
    va_end (args);
    const char *detail = chorus_node_error (node);
    fprintf (stderr, ": %s%s%s\n", chorus_strerror (code), *detail? ": ": "", detail);
}

int
chorus_cli_usage_error (chorus_cli_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    s_verror (self, format, args);
    va_end (args);
    fprintf (stderr, "(see chorus %s --help)\n", self->name);
    return CHORUS_CLI_USAGE;
}

//  The option getopt_long just stopped at, as the user typed it
static void
s_bad_option (chorus_cli_t *self, char **argv, const char *problem)
{
    //  glibc leaves the character in optopt for a short option, the value
    //  (ours are all above 0xff) or 0 for a long one
    if (optopt > 0 && optopt < CHORUS_CLI_OPT_LISTEN)
        chorus_cli_usage_error (self, "%s option '-%c'", problem, optopt);
    else {
        //  Show "--name" without any "=value" typed after it
        const char *arg = argv [optind - 1];
        int length = (int) strcspn (arg, "=");
        chorus_cli_usage_error (self, "%s option '%.*s'", problem, length, arg);
    }
}

int
chorus_cli_option (chorus_cli_t *self, int opt, char **argv)
{
    long long number;
    switch (opt) {
        case CHORUS_CLI_OPT_LISTEN:
            self->listen = optarg;
            return CHORUS_CLI_CONTINUE;
        case CHORUS_CLI_OPT_ADVERTISE:
            self->advertise = optarg;
            return CHORUS_CLI_CONTINUE;
        case CHORUS_CLI_OPT_METRICS:
            self->metrics = optarg;
            return CHORUS_CLI_CONTINUE;
        case CHORUS_CLI_OPT_MESH:
            self->mesh = optarg;
            return CHORUS_CLI_CONTINUE;
        case CHORUS_CLI_OPT_SEED:
            zlist_append (self->seeds, optarg);
            return CHORUS_CLI_CONTINUE;
        case CHORUS_CLI_OPT_STORE:
            self->store = optarg;
            return CHORUS_CLI_CONTINUE;
        case CHORUS_CLI_OPT_BEACON:
            if (chorus_cli_parse_int (self, "--beacon", optarg, 0, 65535, &number))
                return CHORUS_CLI_USAGE;
            self->beacon = (int) number;
            return CHORUS_CLI_CONTINUE;
        case CHORUS_CLI_OPT_VERBOSE:
            self->verbose = true;
            return CHORUS_CLI_CONTINUE;
        case CHORUS_CLI_OPT_JSON:
            self->json = true;
            return CHORUS_CLI_CONTINUE;
        case CHORUS_CLI_OPT_CERT:
            self->cert = optarg;
            return CHORUS_CLI_CONTINUE;
        case CHORUS_CLI_OPT_TRUST:
            self->trust = optarg;
            return CHORUS_CLI_CONTINUE;
        case CHORUS_CLI_OPT_HELP:
        case CHORUS_CLI_OPT_LONG_HELP:
            self->usage (stdout);
            return CHORUS_CLI_OK;
        case ':':
            s_bad_option (self, argv, "missing value for");
            return CHORUS_CLI_USAGE;
        case '?':
            //  A known long option given "=value" it does not take
            s_bad_option (self, argv, optopt >= CHORUS_CLI_OPT_LISTEN? "no value allowed for"
                                                                     : "unknown");
            return CHORUS_CLI_USAGE;
        default:
            s_bad_option (self, argv, "unknown");
            return CHORUS_CLI_USAGE;
    }
}

//  An option's value, else its environment variable's (empty is unset)
static const char *
s_option_or_env (const char *option, const char *name)
{
    const char *env = getenv (name);
    return option? option: env && *env? env: NULL;
}

int
chorus_cli_check (chorus_cli_t *self)
{
    bool cert_option = self->cert != NULL, trust_option = self->trust != NULL;
    self->cert = s_option_or_env (self->cert, "CHORUS_CERT");
    self->trust = s_option_or_env (self->trust, "CHORUS_TRUST");
    //  Half a secure node would be a plaintext one by mistake, or none
    if (self->cert && !self->trust)
        return chorus_cli_usage_error (self, "%s needs --trust (or CHORUS_TRUST): a secure "
                                       "node must know which keys to accept",
                                       cert_option? "--cert": "CHORUS_CERT");
    if (self->trust && !self->cert)
        return chorus_cli_usage_error (self, "%s needs --cert (or CHORUS_CERT): a secure "
                                       "node must have a key of its own",
                                       trust_option? "--trust": "CHORUS_TRUST");
    return CHORUS_CLI_CONTINUE;
}

int
chorus_cli_parse_int (chorus_cli_t *self, const char *option, const char *text,
                      long long min, long long max, long long *value)
{
    char *end;
    errno = 0;
    long long number = strtoll (text, &end, 10);
    if (errno || end == text || *end || number < min || number > max) {
        chorus_cli_usage_error (self, "%s: '%s' is not a whole number from %lld to %lld",
                                option, text, min, max);
        return -1;
    }
    *value = number;
    return 0;
}

int
chorus_cli_parse_seconds (chorus_cli_t *self, const char *option, const char *text,
                          double min_seconds, int *ms)
{
    //  Milliseconds must fit an int, which the node's timeouts are
    const double max_seconds = 2000000;
    char *end;
    errno = 0;
    double seconds = strtod (text, &end);
    if (errno || end == text || *end || !isfinite (seconds) || seconds < min_seconds
        || seconds > max_seconds) {
        chorus_cli_usage_error (self, "%s: '%s' is not a number of seconds from %g to %.0f",
                                option, text, min_seconds, max_seconds);
        return -1;
    }
    *ms = (int) ceil (seconds * 1000);
    return 0;
}

void
chorus_cli_print_mesh_help (FILE *out, const char *store_default)
{
    fprintf (out,
        "\n"
        "Mesh options:\n"
        "  --mesh NAME        the mesh to join: nodes of other meshes are ignored\n"
        "                     (default: $CHORUS_MESH, else 'default')\n"
        "  --listen ENDPOINT  inbox endpoint to bind and announce to peers\n"
        "                     (default: tcp://127.0.0.1:0, a random free port); on a\n"
        "                     wildcard (tcp://0.0.0.0:PORT) the node announces the\n"
        "                     address of its interface that routes to the first seed\n"
        "  --advertise HOST[:PORT]  announce HOST (and PORT for the inbox) to peers\n"
        "                     instead, behind NAT or port forwarding (default:\n"
        "                     $CHORUS_ADVERTISE, else as above)\n"
        "  --metrics HOST:PORT  serve the node's figures for Prometheus at\n"
        "                     http://HOST:PORT/metrics (default: $CHORUS_METRICS,\n"
        "                     else none); keep HOST 127.0.0.1 unless other hosts\n"
        "                     scrape it\n"
        "  --seed ENDPOINT    a peer's inbox endpoint to meet first; repeatable, and\n"
        "                     added to those in CHORUS_SEEDS (comma-separated). On a\n"
        "                     secure mesh ENDPOINT@KEY, in CHORUS_SEEDS too: KEY is\n"
        "                     the seed's public key (40 Z85 characters) or the NAME\n"
        "                     of its certificate in the trust directory\n"
        "  --store DIR        the node's durable store, created if needed\n"
        "                     (default: %s)\n"
        "  --beacon PORT      also discover peers by UDP beacon on PORT (default: off)\n"
        "  --verbose          log what the node does to stderr\n"
        "  --cert FILE        join a secure mesh (CURVE) with this secret certificate\n"
        "                     (NAME.cert_secret from 'chorus keygen'; default:\n"
        "                     $CHORUS_CERT); needs --trust\n"
        "  --trust DIR        the public certificates (*.cert) of the nodes to accept\n"
        "                     (default: $CHORUS_TRUST); needs --cert. A change to it\n"
        "                     is seen within a second, at once on SIGHUP\n"
        "  -h, --help         show this help and exit\n",
        store_default);
}

//  --------------------------------------------------------------------------
//  Nodes

//  $XDG_DATA_HOME/chorus, or ~/.local/share/chorus; NULL without a home.
//  The XDG spec says a relative XDG_DATA_HOME is to be ignored.
static char *
s_data_dir (void)
{
    const char *xdg = getenv ("XDG_DATA_HOME");
    if (xdg && *xdg == '/')
        return zsys_sprintf ("%s/chorus", xdg);
    const char *home = getenv ("HOME");
    if (!home || !*home) {
        struct passwd *entry = getpwuid (getuid ());
        home = entry? entry->pw_dir: NULL;
    }
    return home? zsys_sprintf ("%s/.local/share/chorus", home): NULL;
}

int
chorus_cli_make_dirs (const char *path)
{
    if (!*path) {
        errno = ENOENT;
        return -1;
    }
    char *copy = strdup (path);
    if (!copy)
        return -1;
    int rc = 0;
    for (char *slash = strchr (copy + 1, '/'); rc == 0; slash = strchr (slash + 1, '/')) {
        if (slash)
            *slash = 0;
        if (mkdir (copy, 0700) && errno != EEXIST)
            rc = -1;
        if (!slash)
            break;
        *slash = '/';
    }
    struct stat info;
    if (rc == 0 && (stat (path, &info) || !S_ISDIR (info.st_mode))) {
        errno = ENOTDIR;
        rc = -1;
    }
    free (copy);
    return rc;
}

char *
chorus_cli_store_name (const char *subcommand, const char *what)
{
    //  Topics may hold '/' and worse; file names keep well under NAME_MAX
    char *name = zsys_sprintf ("%s-%.200s", subcommand, what);
    if (!name)
        return NULL;
    for (char *c = name + strlen (subcommand) + 1; *c; c++)
        if (!strchr ("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *c))
            *c = '_';
    return name;
}

//  The store directory to use, created; NULL with *failed false for a
//  temporary store, NULL with *failed true after a message
static char *
s_store_dir (chorus_cli_t *self, const char *store_name, bool *failed)
{
    *failed = false;
    char *dir = NULL;
    if (self->store)
        dir = strdup (self->store);
    else
    if (store_name) {
        char *data = s_data_dir ();
        if (!data) {
            chorus_cli_error (self, "no home directory for the store; use --store DIR");
            *failed = true;
            return NULL;
        }
        dir = zsys_sprintf ("%s/%s", data, store_name);
        free (data);
    }
    if (dir && chorus_cli_make_dirs (dir)) {
        chorus_cli_error (self, "cannot create store directory '%s': %s", dir, strerror (errno));
        zstr_free (&dir);
        *failed = true;
    }
    return dir;
}

static int
s_add_seeds (chorus_cli_t *self, chorus_node_t *node)
{
    const char *env = getenv ("CHORUS_SEEDS");
    char *copy = strdup (env? env: "");
    int rc = copy? 0: -1;
    char *state = NULL;
    for (char *seed = strtok_r (copy, ", \t", &state); seed && rc == 0;
         seed = strtok_r (NULL, ", \t", &state)) {
        rc = chorus_node_add_seed (node, seed);
        if (rc < 0)
            chorus_cli_failed (self, node, rc, "bad seed '%s' in CHORUS_SEEDS", seed);
    }
    free (copy);
    for (char *seed = zlist_first (self->seeds); seed && rc == 0;
         seed = zlist_next (self->seeds)) {
        rc = chorus_node_add_seed (node, seed);
        if (rc < 0)
            chorus_cli_failed (self, node, rc, "bad --seed '%s'", seed);
    }
    return rc;
}

static int
s_configure (chorus_cli_t *self, chorus_node_t *node, const char *store_name)
{
    //  First: a seed may be named by a certificate in the trust directory
    int rc = self->cert? chorus_node_set_security (node, self->cert, self->trust): 0;
    if (rc < 0) {
        chorus_cli_failed (self, node, rc, "cannot make the node secure with certificate '%s' "
                           "and trust directory '%s'", self->cert, self->trust);
        return rc;
    }
    const char *mesh = self->mesh? self->mesh: getenv ("CHORUS_MESH");
    rc = mesh? chorus_node_set_mesh (node, mesh): 0;
    if (rc < 0) {
        chorus_cli_failed (self, node, rc, "bad %s", self->mesh? "--mesh": "CHORUS_MESH");
        return rc;
    }
    rc = self->listen? chorus_node_set_listen (node, self->listen): 0;
    if (rc < 0) {
        chorus_cli_failed (self, node, rc, "bad --listen '%s'", self->listen);
        return rc;
    }
    rc = self->advertise? chorus_node_set_advertise (node, self->advertise): 0;
    if (rc < 0) {
        chorus_cli_failed (self, node, rc, "bad --advertise '%s'", self->advertise);
        return rc;
    }
    rc = self->metrics? chorus_node_set_metrics (node, self->metrics): 0;
    if (rc < 0) {
        chorus_cli_failed (self, node, rc, "bad --metrics '%s'", self->metrics);
        return rc;
    }
    rc = self->beacon? chorus_node_set_beacon (node, self->beacon): 0;
    if (rc < 0) {
        chorus_cli_failed (self, node, rc, "cannot use --beacon %d", self->beacon);
        return rc;
    }
    if (self->verbose)
        chorus_node_set_verbose (node, true);
    if (s_add_seeds (self, node))
        return -1;
    bool failed;
    char *dir = s_store_dir (self, store_name, &failed);
    rc = dir? chorus_node_set_store (node, dir): 0;
    if (rc < 0) {
        chorus_cli_failed (self, node, rc, "cannot use store '%s'", dir);
        failed = true;
    }
    zstr_free (&dir);
    return failed? -1: 0;
}

chorus_node_t *
chorus_cli_node_new (chorus_cli_t *self, const char *service, const char *store_name)
{
    chorus_node_t *node = chorus_node_new (service);
    if (!node) {
        chorus_cli_failed (self, NULL, chorus_errno (), "cannot make a node");
        return NULL;
    }
    if (s_configure (self, node, store_name))
        chorus_node_destroy (&node);
    return node;
}

int
chorus_cli_node_start (chorus_cli_t *self, chorus_node_t *node)
{
    //  Signals are for our thread: the node's threads, made now, start with
    //  them blocked. While our thread blocks them (posix_spawn does, as it
    //  starts each handler) one would otherwise go to a node thread and end
    //  its poll as though the node were stopping.
    sigset_t all, ours;
    sigfillset (&all);
    pthread_sigmask (SIG_BLOCK, &all, &ours);
    int rc = chorus_node_start (node);
    pthread_sigmask (SIG_SETMASK, &ours, NULL);
    if (rc < 0)
        chorus_cli_failed (self, node, rc, "cannot start the node");
    else
    if (chorus_node_metrics_address (node))
        fprintf (stderr, "chorus %s: serving metrics at http://%s/metrics\n", self->name,
                 chorus_node_metrics_address (node));
    return rc;
}

int
chorus_cli_failure (int code)
{
    return code == CHORUS_ECORRUPT? CHORUS_CLI_DAMAGED: CHORUS_CLI_FAILED;
}

//  How long past its timeout we wait for the node to report a command's
//  timeout itself, before we stop waiting on our own
#define S_CALL_GRACE_MS 5000

//  A command sent by chorus_cli_call. On the heap, since a reply handler
//  may still run after the caller gave up (abandoned: it frees the call).
typedef struct {
    chorus_cli_t *cli;              //  whose messages
    const char *command;            //  the command's name
    int timeout_ms;                 //  its timeout, for the message
    bool replied;                   //  the reply handler has run
    bool abandoned;                 //  the caller stopped waiting
    int status;                     //  exit status decided on the reply
    json_t *reply;                  //  the reply's payload, on success
} s_call_t;

static void
s_on_call_reply (chorus_node_t *node, chorus_reply_t *reply, void *arg)
{
    s_call_t *call = (s_call_t *) arg;
    if (call->abandoned) {
        free (call);
        return;
    }
    int status = chorus_reply_status (reply);
    if (status == CHORUS_EINTERRUPTED)
        return;     //  the node is going away; the caller stopped waiting
    if (status == CHORUS_OK) {
        call->reply = chorus_cli_payload_json (chorus_reply_payload (reply),
                                               chorus_reply_size (reply));
        call->status = CHORUS_CLI_OK;
    }
    else
    if (status == CHORUS_ETIMEDOUT) {
        chorus_cli_error (call->cli, "%s: no reply within %g s", call->command,
                          call->timeout_ms / 1000.0);
        call->status = CHORUS_CLI_NO_REPLY;
    }
    else {
        //  Local failures (an unknown command among them) may carry no code
        const char *code = chorus_reply_code (reply);
        const char *message = chorus_reply_message (reply);
        if (!code)
            code = status == CHORUS_EUNKNOWN? "unknown-command": "error";
        snprintf (call->cli->reply_code, sizeof (call->cli->reply_code), "%s", code);
        chorus_cli_error (call->cli, "%s: %s", code, message? message: chorus_strerror (status));
        call->status = CHORUS_CLI_FAILED;
    }
    call->replied = true;
    chorus_node_stop (node);
}

int
chorus_cli_call (chorus_cli_t *self, chorus_node_t *node, const char *service,
                 const char *command, const json_t *payload, int timeout_ms,
                 const char *idempotency, const char *correlation, json_t **reply)
{
    *reply = NULL;
    self->reply_code [0] = 0;
    void *data = NULL;
    size_t size = 0;
    if (payload) {
        char *text = json_dumps (payload, JSON_COMPACT | JSON_ENCODE_ANY);
        char error [256];
        int rc = text? chorus_json_to_msgpack (text, strlen (text), SIZE_MAX, &data, &size,
                                               error, sizeof (error)): -1;
        free (text);
        if (rc) {
            chorus_cli_error (self, "cannot encode the %s payload", command);
            return CHORUS_CLI_FAILED;
        }
    }
    s_call_t *call = (s_call_t *) zmalloc (sizeof (s_call_t));
    call->cli = self;
    call->command = command;
    call->timeout_ms = timeout_ms;
    int rc = chorus_node_send_traced (node, service, command, data, size, timeout_ms,
                                      idempotency, correlation, s_on_call_reply, call);
    free (data);
    if (rc < 0) {
        chorus_cli_failed (self, node, rc, "cannot send %s to %s", command, service);
        free (call);
        return CHORUS_CLI_FAILED;
    }
    int64_t give_up = zclock_mono () + timeout_ms + S_CALL_GRACE_MS;
    int status = CHORUS_CLI_CONTINUE;
    while (!call->replied && status == CHORUS_CLI_CONTINUE) {
        rc = chorus_node_run (node, 200);
        if (rc == CHORUS_EINTERRUPTED) {
            chorus_cli_error (self, "interrupted before %s replied", service);
            status = CHORUS_CLI_INTERRUPTED;
        }
        else
        if (rc < 0) {
            chorus_cli_failed (self, node, rc, "while waiting for %s to reply", service);
            status = chorus_cli_failure (rc);
        }
        else
        if (!call->replied && zclock_mono () >= give_up) {
            chorus_cli_error (self, "%s: no reply within %g s", command, timeout_ms / 1000.0);
            status = CHORUS_CLI_NO_REPLY;
        }
    }
    if (!call->replied) {
        call->abandoned = true;
        return status;
    }
    status = call->status;
    *reply = call->reply;
    free (call);
    return status;
}

//  --------------------------------------------------------------------------
//  Output

int
chorus_cli_print_json (json_t *value)
{
    char *text = value? json_dumps (value, JSON_COMPACT | JSON_ENCODE_ANY): NULL;
    json_decref (value);
    if (!text)
        return -1;
    int rc = (puts (text) == EOF || fflush (stdout))? -1: 0;
    free (text);
    return rc;
}

json_t *
chorus_cli_json_text (const char *text)
{
    if (!text)
        return json_null ();
    json_t *value = json_string (text);
    if (value)
        return value;
    //  Not UTF-8: keep what is ASCII rather than lose the whole field
    char *copy = strdup (text);
    if (!copy)
        return json_null ();
    for (char *c = copy; *c; c++)
        if ((unsigned char) *c >= 0x80)
            *c = '?';
    value = json_string (copy);
    free (copy);
    return value? value: json_null ();
}

json_t *
chorus_cli_payload_json (const void *data, size_t size)
{
    char *text = chorus_json_payload_text (data, size, 0);
    if (!text)
        return json_null ();
    json_t *value = json_loads (text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    free (text);
    return value? value: json_null ();
}

void
chorus_cli_time_iso (uint64_t ms, char *buffer, size_t size)
{
    time_t seconds = (time_t) (ms / 1000);
    struct tm parts;
    gmtime_r (&seconds, &parts);
    size_t length = strftime (buffer, size, "%Y-%m-%dT%H:%M:%S", &parts);
    snprintf (buffer + length, size - length, ".%03dZ", (int) (ms % 1000));
}

void
chorus_cli_time_clock (uint64_t ms, char *buffer, size_t size)
{
    time_t seconds = (time_t) (ms / 1000);
    struct tm parts;
    localtime_r (&seconds, &parts);
    size_t length = strftime (buffer, size, "%H:%M:%S", &parts);
    snprintf (buffer + length, size - length, ".%03d", (int) (ms % 1000));
}

const char *
chorus_cli_peer_state_name (chorus_peer_state_t state)
{
    switch (state) {
        case CHORUS_PEER_JOINED:  return "joined";
        case CHORUS_PEER_EVASIVE: return "evasive";
        case CHORUS_PEER_ALIVE:   return "alive";
        case CHORUS_PEER_EXPIRED: return "expired";
        case CHORUS_PEER_LEFT:    return "left";
    }
    return "unknown";
}
