/*  chorus_node.c — the public node API: a thin wrapper over the engine,
    a czmq actor or, run inline, turns taken in the caller's thread. It
    keeps the application's handlers, runs them in the caller's thread
    when the engine hands over work, and publishes straight into the store
    so that an event is durable when publish returns.
*/
#define _GNU_SOURCE     //  nftw
#include "chorus_private.h"
#include "chorus_keys.h"
#include "chorus_metrics.h"

#include <ftw.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdarg.h>

#define S_HANDOFF_MAX 1000      //  published events queued for the engine at most
#define S_SMALL_BATCH 16        //  a publish batch this small lives on the stack

//  An application handler and its argument
typedef struct {
    char *name;                 //  topic prefix or command name
    void *fn;                   //  the handler
    void *arg;                  //  its argument
    bool earliest;              //  observer: with the retained history
    uint64_t since;             //  observer: otherwise, events from this time on
} s_handler_t;

struct _chorus_node_t {
    chorus__config_t config;    //  what the engine is given
    char *store_dir;            //  where the store lives
    bool store_temporary;       //  made by us, removed with the node
    chorus_store_t *store;      //  open after start
    bool sync;                  //  flush every store write
    zactor_t *actor;            //  the engine in its thread, after start
    bool inline_run;            //  run the engine in the application's thread
    chorus__engine_t *engine;   //  the engine run inline, after start
    zsock_t *pipe;              //  and our end of its pipe
    zsock_t *engine_pipe;       //  and its end
    zlist_t *inline_work;       //  work the inline engine handed over (zmsg_t)
    zsock_t *work;              //  work from the engine, run in this thread
    chorus__batch_t results;    //  results for the engine, sent in batches
    int64_t results_since;      //  when the oldest unsent result was queued (us)
    chorus__handoff_t handoff;  //  published events for the engine
    char *instance;             //  our instance id, after start
    char *endpoint;             //  our inbox endpoint, after start
    zlistx_t *subscribers;      //  s_handler_t by topic prefix
    zlistx_t *observers;        //  s_handler_t by topic prefix
    zhashx_t *commands;         //  command name -> s_handler_t
    zhashx_t *replies;          //  command id -> s_handler_t, awaiting a reply
    chorus_peer_fn *peer_fn;    //  told of peer changes
    void *peer_arg;             //  its argument
    chorus_flush_fn *flush_fn;  //  makes a round of handlers durable
    void *flush_arg;            //  its argument
    chorus_monitor_fn *monitor_fn;  //  told of socket events
    void *monitor_arg;          //  its argument
    chorus_truncated_fn *truncated_fn;  //  told of retention losses
    void *truncated_arg;        //  its argument
    const char *context_correlation;    //  of the message being handled
    const char *context_id;     //  id of the message being handled
    bool stopped;               //  chorus_node_stop was called
    bool damage_reported;       //  the store's damage was logged
    bool running;               //  inside chorus_node_run, which a signal ends
    zmsg_t *unrun;              //  a batch from the engine, stopped part way
    size_t unrun_pos;           //  where in it to go on
    char error [1024];          //  why the last failed call on this node failed
    char *metrics_address;      //  where /metrics is served, or NULL
    chorus_metrics_server_t *metrics;   //  serving, after start
    chorus__stats_t stats;      //  what it serves, copied by the engine
    chorus_metrics_render_fn *render;   //  the application's series, or NULL
    void *render_arg;           //  its argument
};

//  Records a failed call on this node: its code for the thread
//  (chorus_errno) and its detail for chorus_node_error; returns the code
static int
s_fail (chorus_node_t *self, int code)
{
    chorus__fail (code);
    snprintf (self->error, sizeof (self->error), "%s", chorus__detail ());
    return code;
}

//  The same, with the detail given: for a refused argument, not logged
static int
s_failf (chorus_node_t *self, int code, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static int
s_failf (chorus_node_t *self, int code, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (self->error, sizeof (self->error), format, args);
    va_end (args);
    chorus__failf (code, "%s", self->error);
    return code;
}

const char *
chorus_node_error (chorus_node_t *self)
{
    return self? self->error: chorus__detail ();
}

static void
s_handler_destroy (void **item)
{
    s_handler_t *handler = (s_handler_t *) *item;
    if (handler) {
        free (handler->name);
        free (handler);
        *item = NULL;
    }
}

static s_handler_t *
s_handler_new (const char *name, void *fn, void *arg)
{
    s_handler_t *handler = (s_handler_t *) zmalloc (sizeof (s_handler_t));
    handler->name = strdup (name);
    handler->fn = fn;
    handler->arg = arg;
    return handler;
}

//  --------------------------------------------------------------------------
//  Construction and configuration

chorus_node_t *
chorus_node_new (const char *service)
{
    if (!chorus__valid_name (service, 64)) {
        chorus__failf (CHORUS_EINVAL, "'%s' is not a service name (1 to 64 printable ASCII "
                       "characters without spaces)", service? service: "(null)");
        return NULL;
    }
    chorus_node_t *self = (chorus_node_t *) zmalloc (sizeof (chorus_node_t));
    chorus__config_t *config = &self->config;
    config->service = strdup (service);
    const char *mesh = getenv ("CHORUS_MESH");
    config->mesh = strdup (mesh && chorus__valid_name (mesh, 64)? mesh: "default");
    //  Port 0: the system picks a random free port. Ports handed out in
    //  order are soon reused by the next short-lived node, which then
    //  receives what peers still meant for its predecessor.
    config->listen = strdup ("tcp://127.0.0.1:0");
    const char *advertise = getenv ("CHORUS_ADVERTISE");
    if (advertise && *advertise) {
        config->advertise = strdup (advertise);
        config->advertise_from_env = true;     //  checked at start
    }
    const char *metrics = getenv ("CHORUS_METRICS");
    if (metrics && *metrics)
        self->metrics_address = strdup (metrics);   //  checked at start
    chorus__stats_init (&self->stats);
    config->seeds = zlist_new ();
    zlist_autofree (config->seeds);
    config->heartbeat_ms = 1000;
    config->evasive_ms = 1000;
    config->expired_ms = 2000;
    config->credit_window = 1000;
    config->ack_timeout_ms = 30000;
    config->retention_bytes = 1024ull * 1024 * 1024;
    config->retention_age_ms = 7ull * 24 * 3600 * 1000;
    config->retention_policy = CHORUS_RETAIN_REFUSE;
    config->durable = true;
    config->command_retry_ms = 10000;
    config->observe_hwm = 1000;
    config->max_peers = 400;
    config->max_pending = 64;
    config->peer_rate = 20;
    config->idle_close_ms = 30000;
    //  Named by a count, not by where the node lives: a node made where
    //  one was just destroyed may not bind that one's name until the
    //  context has let go of it
    static atomic_uint_fast64_t nodes = 0;
    config->work_endpoint = zsys_sprintf ("inproc://chorus-work-%" PRIu64,
                                          (uint64_t) atomic_fetch_add (&nodes, 1));
    chorus__handoff_init (&self->handoff, S_HANDOFF_MAX);
    config->handoff = &self->handoff;
    self->subscribers = zlistx_new ();
    zlistx_set_destructor (self->subscribers, s_handler_destroy);
    self->observers = zlistx_new ();
    zlistx_set_destructor (self->observers, s_handler_destroy);
    self->commands = zhashx_new ();
    zhashx_set_destructor (self->commands, s_handler_destroy);
    self->replies = zhashx_new ();
    zhashx_set_destructor (self->replies, s_handler_destroy);
    return self;
}

static int
s_remove_one (const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    return remove (path);
}

//  The engine's pipe, in its thread or inline; NULL before start
#define S_PIPE(self) ((self)->actor? (void *) (self)->actor: (void *) (self)->pipe)

//  An engine run inline answers in this thread what was just sent to it
//  (it does not poll its pipe); the actor answers in its own
static void
s_serve (chorus_node_t *self)
{
    if (self->engine)
        chorus__engine_serve (self->engine);
}

//  Work the engine handed over and no handler has run yet (inline, no
//  socket says so)
static bool
s_work_waiting (chorus_node_t *self)
{
    return self->unrun || (self->inline_work && zlist_size (self->inline_work));
}

//  Ends the engine, in its thread or inline: it records and answers what
//  the application sent, and says goodbye
static void
s_engine_end (chorus_node_t *self)
{
    zactor_destroy (&self->actor);
    if (self->engine) {
        chorus__engine_destroy (&self->engine);
        zsock_destroy (&self->pipe);
        zsock_destroy (&self->engine_pipe);
    }
}

//  Frees the messages the engine handed over and nobody took, and the
//  results the engine never read
static void
s_drain_work (chorus_node_t *self)
{
    if (self->unrun) {
        zframe_t *frame = zmsg_last (self->unrun);
        size_t pos = self->unrun_pos;
        chorus__work_t record;
        const char *text;
        while (chorus__batch_next (zframe_data (frame), zframe_size (frame), &pos, &record,
                                   &text)) {
            chorus_msg_t *first = (chorus_msg_t *) record.first;
            chorus_msg_destroy (&first);
        }
        zmsg_destroy (&self->unrun);
    }
    chorus__batch_discard_queued (self->work);
    if (self->inline_work)
        chorus__batch_discard_list (self->inline_work);
    zlist_destroy (&self->inline_work);
    self->config.inline_work = NULL;
    self->config.inline_app = NULL;
    chorus__batch_discard (&self->results);
}

//  Commands still awaiting a reply will never get one: their handlers hear
//  so (CHORUS_EINTERRUPTED), so that they can free what they hold
static void
s_abandon_replies (chorus_node_t *self)
{
    for (s_handler_t *handler = (s_handler_t *) zhashx_first (self->replies); handler;
         handler = (s_handler_t *) zhashx_next (self->replies)) {
        chorus_reply_t view = {NULL, CHORUS_EINTERRUPTED, handler->name, "interrupted",
                               "the node stopped before the reply came"};
        ((chorus_reply_fn *) handler->fn) (self, &view, handler->arg);
    }
    zhashx_purge (self->replies);
}

void
chorus_node_destroy (chorus_node_t **self_p)
{
    assert (self_p);
    chorus_node_t *self = *self_p;
    if (!self)
        return;
    //  The server reads the store and the figures: it goes first
    chorus_metrics_server_destroy (&self->metrics);
    s_engine_end (self);
    s_abandon_replies (self);
    chorus__handoff_destroy (&self->handoff);
    if (self->work) {
        s_drain_work (self);
        zsock_destroy (&self->work);
    }
    chorus_store_destroy (&self->store);
    if (self->store_temporary && self->store_dir)
        nftw (self->store_dir, s_remove_one, 16, FTW_DEPTH | FTW_PHYS);
    free (self->store_dir);
    free (self->instance);
    free (self->endpoint);
    zlistx_destroy (&self->subscribers);
    zlistx_destroy (&self->observers);
    zhashx_destroy (&self->commands);
    zhashx_destroy (&self->replies);
    free (self->config.service);
    free (self->config.mesh);
    free (self->config.listen);
    free (self->config.advertise);
    free (self->config.work_endpoint);
    zlist_destroy (&self->config.seeds);
    chorus__keys_destroy (&self->config.keys);
    free (self->metrics_address);
    pthread_mutex_destroy (&self->stats.lock);
    free (self);
    *self_p = NULL;
}

//  Configuration is allowed only before start
#define S_BEFORE_START(self) \
    do { \
        assert (self); \
        if (S_PIPE (self)) \
            return s_failf ((self), CHORUS_ESTATE, "%s: the node has started; configure it " \
                            "before chorus_node_start", __func__); \
    } while (0)

int
chorus_node_set_store (chorus_node_t *self, const char *dir)
{
    S_BEFORE_START (self);
    if (!dir || !*dir)
        return s_failf (self, CHORUS_EINVAL, "no store directory given");
    free (self->store_dir);
    self->store_dir = strdup (dir);
    return 0;
}

int
chorus_node_set_mesh (chorus_node_t *self, const char *mesh)
{
    S_BEFORE_START (self);
    if (!chorus__valid_name (mesh, 64))
        return s_failf (self, CHORUS_EINVAL, "'%s' is not a mesh name (1 to 64 printable ASCII "
                        "characters without spaces)", mesh? mesh: "(null)");
    free (self->config.mesh);
    self->config.mesh = strdup (mesh);
    return 0;
}

int
chorus_node_set_listen (chorus_node_t *self, const char *endpoint)
{
    S_BEFORE_START (self);
    if (!endpoint || !*endpoint || strlen (endpoint) > 256)
        return s_failf (self, CHORUS_EINVAL, "a listen endpoint is 1 to 256 characters%s",
                        endpoint? "": " (NULL given)");
    free (self->config.listen);
    self->config.listen = strdup (endpoint);
    return 0;
}

int
chorus_node_set_advertise (chorus_node_t *self, const char *address)
{
    S_BEFORE_START (self);
    char host [272], error [320];
    int port;
    if (address && *address
    &&  !chorus__advertise_parse (address, host, sizeof (host), &port, error, sizeof (error)))
        return s_failf (self, CHORUS_EINVAL, "%s", error);
    free (self->config.advertise);
    self->config.advertise = address && *address? strdup (address): NULL;
    self->config.advertise_from_env = false;
    return 0;
}

int
chorus_node_set_metrics (chorus_node_t *self, const char *address)
{
    S_BEFORE_START (self);
    free (self->metrics_address);
    self->metrics_address = address && *address? strdup (address): NULL;
    return 0;
}

const char *
chorus_node_metrics_address (chorus_node_t *self)
{
    assert (self);
    return self->metrics? chorus_metrics_server_address (self->metrics): NULL;
}

//  What /metrics shows of a node
static void
s_render_metrics (chorus_exposition_t *out, void *arg)
{
    chorus_node_t *self = (chorus_node_t *) arg;
    chorus__stats_render (&self->stats, self->store, self->config.service, out);
    if (self->render)
        self->render (out, self->render_arg);
}

int
chorus_node_set_metrics_render (chorus_node_t *self, chorus_metrics_render_fn *render,
                                void *arg)
{
    S_BEFORE_START (self);
    self->render = render;
    self->render_arg = arg;
    return 0;
}

int
chorus_node_add_seed (chorus_node_t *self, const char *endpoint)
{
    S_BEFORE_START (self);
    if (!endpoint || !*endpoint || strlen (endpoint) > 256)
        return s_failf (self, CHORUS_EINVAL, "a seed is an endpoint of 1 to 256 characters%s",
                        endpoint? "": " (NULL given)");
    zlist_append (self->config.seeds, (void *) endpoint);
    return 0;
}

int
chorus_node_set_security (chorus_node_t *self, const char *cert_file, const char *trust_dir)
{
    S_BEFORE_START (self);
    if (!cert_file != !trust_dir) {
        chorus__log (CHORUS_LOG_ERROR,
                     "chorus: a secure node needs both its certificate and a trust directory "
                     "(%s is missing)", cert_file? "the trust directory": "the certificate");
        return s_fail (self, CHORUS_EINVAL);
    }
    chorus__keys_destroy (&self->config.keys);
    if (!cert_file)
        return 0;       //  plaintext
    char error [512];
    self->config.keys = chorus__keys_new (cert_file, trust_dir, error, sizeof (error));
    if (!self->config.keys) {
        chorus__log (CHORUS_LOG_ERROR, "chorus: %s", error);
        return s_fail (self, CHORUS_EINVAL);
    }
    return 0;
}

//  A secure node must be allowed its service, and know each seed's key; a
//  plaintext node has no use for keys. Returns 0, or the code, having said
//  why.
static int
s_security_check (chorus_node_t *self)
{
    chorus__keys_t *keys = self->config.keys;
    if (keys && !chorus__grant_service (chorus__keys_own (keys), self->config.service)) {
        chorus__log (CHORUS_LOG_ERROR,
                     "chorus: cannot start %s: certificate '%s' allows only service '%s'",
                     self->config.service, chorus__keys_own (keys)->name,
                     chorus__keys_own (keys)->service);
        return CHORUS_EFORBIDDEN;
    }
    for (char *seed = (char *) zlist_first (self->config.seeds); seed;
         seed = (char *) zlist_next (self->config.seeds)) {
        const char *key_text = chorus__key_part (seed);
        char key [41];
        if (keys && !key_text) {
            chorus__log (CHORUS_LOG_ERROR,
                         "chorus: seed %s has no key: a secure node is given its seeds as "
                         "ENDPOINT@KEY (a Z85 public key, or a certificate name in %s)", seed,
                         chorus__keys_trust_dir (keys));
            return CHORUS_EINVAL;
        }
        if (keys && !chorus__keys_resolve (keys, key_text, key)) {
            chorus__log (CHORUS_LOG_ERROR,
                         "chorus: seed %s: '%s' is neither a Z85 public key nor the name of a "
                         "certificate in %s", seed, key_text, chorus__keys_trust_dir (keys));
            return CHORUS_EINVAL;
        }
        if (!keys && key_text && chorus__key_valid (key_text)) {
            chorus__log (CHORUS_LOG_ERROR, "chorus: seed %s has a key, but this node is not secure "
                         "(give it --cert and --trust)", seed);
            return CHORUS_EINVAL;
        }
    }
    return 0;
}

int
chorus_node_set_beacon (chorus_node_t *self, int port)
{
    S_BEFORE_START (self);
    if (port < 0 || port > 65535)
        return s_failf (self, CHORUS_EINVAL, "beacon port %d is not 0 to 65535", port);
    self->config.beacon_port = port;
    return 0;
}

int
chorus_node_set_heartbeat (chorus_node_t *self, int interval_ms, int evasive_ms, int expired_ms)
{
    S_BEFORE_START (self);
    if (interval_ms <= 0 || evasive_ms < interval_ms || expired_ms < evasive_ms)
        return s_failf (self, CHORUS_EINVAL, "heartbeat %d, evasive %d, expired %d ms: each "
                        "must be positive and at least the one before", interval_ms, evasive_ms,
                        expired_ms);
    self->config.heartbeat_ms = interval_ms;
    self->config.evasive_ms = evasive_ms;
    self->config.expired_ms = expired_ms;
    return 0;
}

int
chorus_node_set_credit (chorus_node_t *self, int window, int ack_timeout_ms)
{
    S_BEFORE_START (self);
    if (window <= 0 || ack_timeout_ms <= 0)
        return s_failf (self, CHORUS_EINVAL, "credit window %d and acknowledgement timeout %d "
                        "ms must be positive", window, ack_timeout_ms);
    self->config.credit_window = window;
    self->config.ack_timeout_ms = ack_timeout_ms;
    return 0;
}

int
chorus_node_set_retention (chorus_node_t *self, uint64_t max_bytes, uint64_t max_age_ms,
                           chorus_retention_policy_t policy)
{
    S_BEFORE_START (self);
    if (policy != CHORUS_RETAIN_REFUSE && policy != CHORUS_RETAIN_DROP_OLDEST)
        return s_failf (self, CHORUS_EINVAL, "%d is not a retention policy", (int) policy);
    self->config.retention_bytes = max_bytes;
    self->config.retention_age_ms = max_age_ms;
    self->config.retention_policy = policy;
    return 0;
}

int
chorus_node_set_durability (chorus_node_t *self, chorus_durability_t durability)
{
    S_BEFORE_START (self);
    if (durability != CHORUS_DURABLE_PROCESS && durability != CHORUS_DURABLE_FSYNC)
        return s_failf (self, CHORUS_EINVAL, "%d is not a durability", (int) durability);
    self->sync = durability == CHORUS_DURABLE_FSYNC;
    return 0;
}

int
chorus_node_set_sync (chorus_node_t *self, bool sync)
{
    return chorus_node_set_durability (self, sync? CHORUS_DURABLE_FSYNC: CHORUS_DURABLE_PROCESS);
}

int
chorus_node_set_inline (chorus_node_t *self, bool run_inline)
{
    S_BEFORE_START (self);
    self->inline_run = run_inline;
    return 0;
}

int
chorus_node_set_start_earliest (chorus_node_t *self, bool earliest)
{
    S_BEFORE_START (self);
    self->config.start_earliest = earliest;
    return 0;
}

int
chorus_node_set_command_retry (chorus_node_t *self, int retry_ms)
{
    S_BEFORE_START (self);
    if (retry_ms <= 0)
        return s_failf (self, CHORUS_EINVAL, "command retry %d ms must be positive", retry_ms);
    self->config.command_retry_ms = retry_ms;
    return 0;
}

int
chorus_node_set_observe_hwm (chorus_node_t *self, int hwm)
{
    S_BEFORE_START (self);
    if (hwm <= 0)
        return s_failf (self, CHORUS_EINVAL, "observer queue %d must be positive", hwm);
    self->config.observe_hwm = hwm;
    return 0;
}

int
chorus_node_set_peer_limits (chorus_node_t *self, int max_peers, int max_pending,
                             int new_per_second)
{
    S_BEFORE_START (self);
    if (max_peers <= 0 || max_pending <= 0 || new_per_second <= 0)
        return s_failf (self, CHORUS_EINVAL, "peer limits %d, %d, %d per second must be "
                        "positive", max_peers, max_pending, new_per_second);
    self->config.max_peers = max_peers;
    self->config.max_pending = max_pending;
    self->config.peer_rate = new_per_second;
    return 0;
}

int
chorus_node_set_idle_close (chorus_node_t *self, int idle_ms)
{
    S_BEFORE_START (self);
    if (idle_ms < 0)
        return s_failf (self, CHORUS_EINVAL, "idle close %d ms must be 0 (never) or positive",
                        idle_ms);
    self->config.idle_close_ms = idle_ms;
    return 0;
}

int
chorus_node_set_verbose (chorus_node_t *self, bool verbose)
{
    assert (self);
    self->config.verbose = verbose;
    return 0;
}

//  --------------------------------------------------------------------------
//  Start

//  Sends a request to the engine and waits for its one-int answer
static int
s_request (chorus_node_t *self, const char *picture, ...)
{
    va_list args;
    va_start (args, picture);
    zsock_vsend (S_PIPE (self), picture, args);
    va_end (args);
    s_serve (self);
    int rc = -1;
    zsock_recv (S_PIPE (self), "i", &rc);
    return rc;
}

//  The engine could not record a subscription of our group
static int
s_subscribe_failed (chorus_node_t *self, const char *prefix)
{
    chorus__log (CHORUS_LOG_ERROR, "chorus: store %s cannot record the subscription of group "
                 "%s to '%s'", self->store_dir, self->config.service, prefix);
    return CHORUS_ESTORE;
}

//  Returns 0, or the code, having said why
static int
s_announce_handlers (chorus_node_t *self)
{
    for (s_handler_t *handler = (s_handler_t *) zlistx_first (self->subscribers); handler;
         handler = (s_handler_t *) zlistx_next (self->subscribers))
        if (s_request (self, "ss", "SUBSCRIBE", handler->name))
            return s_subscribe_failed (self, handler->name);
    for (s_handler_t *handler = (s_handler_t *) zlistx_first (self->observers); handler;
         handler = (s_handler_t *) zlistx_next (self->observers)) {
        if (!handler->earliest && !handler->since)
            handler->since = chorus__now ();
        s_request (self, "sss", "OBSERVE", handler->name, handler->earliest? "1": "0");
    }
    for (s_handler_t *handler = (s_handler_t *) zhashx_first (self->commands); handler;
         handler = (s_handler_t *) zhashx_next (self->commands))
        zsock_send (S_PIPE (self), "ss", "HANDLE", handler->name);
    s_serve (self);
    return 0;
}

#define S_START_SOCKETS 12      //  sockets a node makes as it starts, with room

//  True if count sockets can be made now (they are closed again)
static bool
s_sockets_available (int count)
{
    void *sockets [S_START_SOCKETS];
    int made = 0;
    while (made < count && made < S_START_SOCKETS
       &&  (sockets [made] = chorus__socket_new (ZMQ_PAIR)))
        made++;
    bool available = made == count;
    while (made > 0)
        chorus__socket_destroy (&sockets [--made]);
    return available;
}

//  Undoes what a start that failed had done, so that the node can be
//  configured and started again; returns the code
static int
s_start_failed (chorus_node_t *self, int code)
{
    chorus_metrics_server_destroy (&self->metrics);
    self->config.stats = NULL;
    s_engine_end (self);
    if (self->work) {
        s_drain_work (self);
        zsock_destroy (&self->work);
    }
    chorus_store_destroy (&self->store);
    self->config.store = NULL;
    return s_fail (self, code);
}

int
chorus_node_start (chorus_node_t *self)
{
    S_BEFORE_START (self);
    if (self->config.advertise_from_env) {
        char host [272], error [320];
        int port;
        if (!chorus__advertise_parse (self->config.advertise, host, sizeof (host), &port, error,
                                      sizeof (error)))
            return s_failf (self, CHORUS_EINVAL, "bad CHORUS_ADVERTISE: %s", error);
    }
    if (!self->store_dir) {
        const char *tmpdir = getenv ("TMPDIR");
        char *dir = zsys_sprintf ("%s/chorus-node-XXXXXX", tmpdir && *tmpdir? tmpdir: "/tmp");
        if (!mkdtemp (dir)) {
            chorus__log (CHORUS_LOG_ERROR, "chorus: cannot make a temporary store like %s: %s",
                         dir, strerror (errno));
            free (dir);
            return s_fail (self, CHORUS_ESTORE);
        }
        self->store_dir = dir;
        self->store_temporary = true;
        self->config.durable = false;
    }
    else
        zsys_dir_create ("%s", self->store_dir);
    int code = s_security_check (self);
    if (code)
        return s_fail (self, code);
    char error [512];
    chorus_store_kind_t kind;
    self->store = chorus_store_new (self->store_dir, error, sizeof (error), &kind);
    if (!self->store) {
        chorus__log (CHORUS_LOG_ERROR, "chorus: %s", error);
        return s_fail (self, kind == CHORUS_STORE_DAMAGED? CHORUS_ECORRUPT: CHORUS_ESTORE);
    }
    chorus_store_set_sync (self->store, self->sync);
    self->config.store = self->store;

    //  czmq aborts when it cannot make a socket; starting needs a dozen
    //  (pipes, inbox, PUB, their monitors), so make sure they can be had
    if (!s_sockets_available (S_START_SOCKETS)) {
        chorus__log (CHORUS_LOG_ERROR,
                     "chorus: cannot start %s: no sockets left (ZeroMQ's limit or file "
                     "descriptors)", self->config.service);
        return s_start_failed (self, CHORUS_ENETWORK);
    }
    self->work = zsock_new (ZMQ_PAIR);
    zsock_set_sndhwm (self->work, 0);
    zsock_set_rcvhwm (self->work, 0);
    if (zsock_bind (self->work, "%s", self->config.work_endpoint)) {
        chorus__log (CHORUS_LOG_ERROR, "chorus: cannot start %s: cannot bind its work pipe %s",
                     self->config.service, self->config.work_endpoint);
        return s_start_failed (self, CHORUS_ENETWORK);
    }
    //  The figures are served before the engine runs: a scrape until its
    //  first copy shows its counters at 0
    if (self->metrics_address) {
        self->config.stats = &self->stats;
        self->metrics = chorus_metrics_server_new (self->metrics_address, s_render_metrics,
                                                   self, error, sizeof (error));
        if (!self->metrics) {
            chorus__log (CHORUS_LOG_ERROR, "chorus: cannot start %s: %s", self->config.service,
                         error);
            return s_start_failed (self, strstr (error, "is not HOST:PORT")? CHORUS_EINVAL:
                                                                              CHORUS_ENETWORK);
        }
    }
    if (self->inline_run) {
        //  Requests and commands may queue while the application runs no
        //  turn: the pipe takes them all
        self->engine_pipe = zsock_new (ZMQ_PAIR);
        self->pipe = zsock_new (ZMQ_PAIR);
        //  Named after the work pipe, which no other node has had
        char endpoint [96];
        snprintf (endpoint, sizeof (endpoint), "%s-pipe", self->config.work_endpoint);
        if (self->engine_pipe && self->pipe) {
            zsock_set_sndhwm (self->pipe, 0);
            zsock_set_rcvhwm (self->pipe, 0);
            zsock_set_sndhwm (self->engine_pipe, 0);
            zsock_set_rcvhwm (self->engine_pipe, 0);
        }
        if (!self->engine_pipe || !self->pipe || zsock_bind (self->engine_pipe, "%s", endpoint)
        ||  zsock_connect (self->pipe, "%s", endpoint)) {
            zsock_destroy (&self->engine_pipe);
            zsock_destroy (&self->pipe);
            chorus__log (CHORUS_LOG_ERROR, "chorus: cannot start %s: cannot make its engine "
                         "pipe", self->config.service);
            return s_start_failed (self, CHORUS_ENETWORK);
        }
        //  Work from the engine comes in a list, with no signal to wait on
        self->inline_work = zlist_new ();
        self->config.inline_work = self->inline_work;
        self->config.inline_app = self->work;
        self->engine = chorus__engine_new (self->engine_pipe, &self->config);
    }
    else
        self->actor = zactor_new (chorus__engine_actor, &self->config);
    //  Handlers first, so that the very first HELLO carries our subscriptions
    //  and a peer met at once knows our group
    code = s_announce_handlers (self);
    if (code)
        return s_start_failed (self, code);
    int rc = -1;
    char *instance = NULL, *endpoint = NULL, *pub_endpoint = NULL;
    zsock_send (S_PIPE (self), "s", "START");
    s_serve (self);
    zsock_recv (S_PIPE (self), "isss", &rc, &instance, &endpoint, &pub_endpoint);
    zstr_free (&pub_endpoint);
    if (rc) {
        //  What the engine does at start is bind and make sockets
        chorus__log (CHORUS_LOG_ERROR, "chorus: cannot start %s at %s: %s", self->config.service,
                     self->config.listen, instance? instance: "the engine did not answer");
        zstr_free (&instance);
        zstr_free (&endpoint);
        return s_start_failed (self, CHORUS_ENETWORK);
    }
    self->instance = instance;
    self->endpoint = endpoint;
    return 0;
}

const char *
chorus_node_service (chorus_node_t *self)
{
    assert (self);
    return self->config.service;
}

const char *
chorus_node_instance (chorus_node_t *self)
{
    assert (self);
    return self->instance;
}

const char *
chorus_node_endpoint (chorus_node_t *self)
{
    assert (self);
    return self->endpoint;
}

//  --------------------------------------------------------------------------
//  Handlers

static bool
s_valid_prefix (const char *prefix)
{
    return prefix && (!*prefix || chorus__valid_name (prefix, 256));
}

int
chorus_node_subscribe (chorus_node_t *self, const char *prefix, chorus_event_fn *handler,
                       void *arg)
{
    assert (self);
    if (!s_valid_prefix (prefix) || !handler)
        return s_failf (self, CHORUS_EINVAL, "subscribe: %s", handler? "a topic prefix is 0 to "
                        "256 printable ASCII characters without spaces": "no handler");
    zlistx_add_end (self->subscribers, s_handler_new (prefix, (void *) handler, arg));
    if (S_PIPE (self) && s_request (self, "ss", "SUBSCRIBE", prefix))
        return s_fail (self, s_subscribe_failed (self, prefix));
    return 0;
}

int
chorus_node_observe (chorus_node_t *self, const char *prefix, bool from_earliest,
                     chorus_event_fn *handler, void *arg)
{
    assert (self);
    if (!s_valid_prefix (prefix) || !handler)
        return s_failf (self, CHORUS_EINVAL, "observe: %s", handler? "a topic prefix is 0 to "
                        "256 printable ASCII characters without spaces": "no handler");
    //  This observer's own choice: the groups this node subscribes keep
    //  chorus_node_set_start_earliest's
    s_handler_t *entry = s_handler_new (prefix, (void *) handler, arg);
    entry->earliest = from_earliest;
    zlistx_add_end (self->observers, entry);
    if (S_PIPE (self)) {
        if (!from_earliest)
            entry->since = chorus__now ();
        s_request (self, "sss", "OBSERVE", prefix, from_earliest? "1": "0");
    }
    return 0;
}

int
chorus_node_handle (chorus_node_t *self, const char *command, chorus_command_fn *handler,
                    void *arg)
{
    assert (self);
    if (!chorus__valid_name (command, 128) || !handler)
        return s_failf (self, CHORUS_EINVAL, "handle: %s", handler? "a command name is 1 to 128 "
                        "printable ASCII characters without spaces": "no handler");
    zhashx_update (self->commands, command, s_handler_new (command, (void *) handler, arg));
    if (S_PIPE (self))
        zsock_send (S_PIPE (self), "ss", "HANDLE", command);
    s_serve (self);
    return 0;
}

void
chorus_node_on_peer (chorus_node_t *self, chorus_peer_fn *handler, void *arg)
{
    assert (self);
    self->peer_fn = handler;
    self->peer_arg = arg;
}

int
chorus_node_on_monitor (chorus_node_t *self, chorus_monitor_fn *handler, void *arg)
{
    S_BEFORE_START (self);
    self->monitor_fn = handler;
    self->monitor_arg = arg;
    self->config.monitor = handler != NULL;
    return 0;
}

void
chorus_node_on_flush (chorus_node_t *self, chorus_flush_fn *handler, void *arg)
{
    assert (self);
    self->flush_fn = handler;
    self->flush_arg = arg;
}

void
chorus_node_on_truncated (chorus_node_t *self, chorus_truncated_fn *handler, void *arg)
{
    assert (self);
    self->truncated_fn = handler;
    self->truncated_arg = arg;
}

//  --------------------------------------------------------------------------
//  Publishing and sending

int
chorus_node_publish (chorus_node_t *self, const char *topic, const char *key,
                     const void *payload, size_t size)
{
    return chorus_node_publish_traced (self, topic, key, payload, size, NULL, NULL);
}

int
chorus_node_publish_traced (chorus_node_t *self, const char *topic, const char *key,
                            const void *payload, size_t size, const char *correlation,
                            char *id_out)
{
    return chorus_node_publish_caused (self, topic, key, payload, size, correlation, NULL, id_out);
}

int
chorus_node_publish_caused (chorus_node_t *self, const char *topic, const char *key,
                            const void *payload, size_t size, const char *correlation,
                            const char *causation, char *id_out)
{
    chorus_publication_t event = {topic, key, payload, size, correlation, causation, "", false};
    int rc = chorus_node_publish_batch (self, &event, 1);
    if (rc == 0 && id_out)
        strcpy (id_out, event.id);
    return rc;
}

//  A producer's own event id: 1 to 64 characters of A-Z a-z 0-9 . _ : -
static bool
s_valid_id (const char *id)
{
    size_t length = strnlen (id, 65);
    if (length == 0 || length > 64)
        return false;
    for (size_t i = 0; i < length; i++)
        if (!isalnum ((unsigned char) id [i]) && !strchr ("._:-", id [i]))
            return false;
    return true;
}

//  Checks one publication; returns 0, or the error code with what is wrong
static int
s_publication_check (const chorus_publication_t *event, const char **why)
{
    *why = !chorus__valid_name (event->topic, 256)?
               "a topic is 1 to 256 printable ASCII characters without spaces":
           event->key && strlen (event->key) > 256? "a key is at most 256 characters":
           event->correlation && (!*event->correlation || strlen (event->correlation) > 128)?
               "a correlation id is 1 to 128 characters":
           event->causation && (!*event->causation || strlen (event->causation) > 128)?
               "a causation id is 1 to 128 characters":
           event->size && !event->payload? "a payload size without a payload":
           memchr (event->id, 0, sizeof (event->id)) == NULL? "an id without its NUL":
           event->id [0] && !s_valid_id (event->id)?
               "an own id is 1 to 64 characters of A-Z a-z 0-9 . _ : -": NULL;
    if (*why)
        return CHORUS_EINVAL;
    if (event->size > CHORUS_MSG_MAX_PAYLOAD) {
        *why = "a payload is at most CHORUS_PAYLOAD_MAX (1 MiB)";
        return CHORUS_ETOOBIG;
    }
    return 0;
}

//  Publishes a batch (see chorus_node_publish_batch); lazy: written to
//  the operating system only, for a later chorus_node_flush
static int
s_publish_batch (chorus_node_t *self, chorus_publication_t *events, size_t count, bool lazy)
{
    assert (self);
    if (!S_PIPE (self))
        return s_failf (self, CHORUS_ESTATE, "publish: the node has not started");
    if (chorus_store_damaged (self->store)) {
        char damage [512];
        chorus_store_damage (self->store, damage, sizeof (damage));
        return s_failf (self, CHORUS_ECORRUPT, "publish: store %s is %s", self->store_dir,
                        damage);
    }
    if (count > CHORUS_PUBLISH_BATCH_MAX || (count && !events))
        return s_failf (self, CHORUS_EINVAL, "publish: %s", events? "more than "
                        "CHORUS_PUBLISH_BATCH_MAX events": "no events");
    uint64_t bytes = 0;
    const chorus__grant_t *own = self->config.keys? chorus__keys_own (self->config.keys): NULL;
    for (size_t i = 0; i < count; i++) {
        const char *why;
        int code = s_publication_check (&events [i], &why);
        if (code && count == 1)
            return s_failf (self, code, "publish: %s", why);
        if (code)
            return s_failf (self, code, "publish: event %zu of the batch: %s", i, why);
        if (own && !chorus__grant_publish (own, events [i].topic)) {
            chorus__log (CHORUS_LOG_ERROR,
                         "chorus: publish: certificate '%s' may not publish '%s'", own->name,
                         events [i].topic);
            return s_fail (self, CHORUS_EFORBIDDEN);
        }
        events [i].duplicate = false;
        bytes += events [i].size;
    }
    //  A producer's own id, seen before (or twice in this batch): stored once
    size_t fresh = 0;
    for (size_t i = 0; i < count; i++) {
        if (!events [i].id [0])
            continue;
        int known = chorus_store_producer_id (self->store, events [i].id, NULL);
        if (known == -1) {
            chorus__log (CHORUS_LOG_ERROR, "chorus: publish: %s", chorus_store_error (self->store));
            return s_fail (self, chorus_store_damaged (self->store)? CHORUS_ECORRUPT:
                           CHORUS_ESTORE);
        }
        for (size_t j = 0; j < i && !known; j++)
            known = streq (events [j].id, events [i].id) && !events [j].duplicate;
        if (known) {
            events [i].duplicate = true;
            bytes -= events [i].size;
        }
    }
    uint64_t max_bytes = self->config.retention_bytes;
    if (max_bytes && chorus_store_bytes (self->store) + bytes > max_bytes
    &&  s_request (self, "s", "TRIM"))
        //  Not logged: a publisher that tries again would fill the log
        return s_failf (self, CHORUS_EFULL, "publish: retention is full (%" PRIu64 " bytes at "
                        "most) and groups have not acknowledged the oldest events; the policy "
                        "refuses new ones", max_bytes);

    //  A small batch (a single publish) costs no allocation here
    chorus_msg_t *small_messages [S_SMALL_BATCH];
    zframe_t *small_bodies [S_SMALL_BATCH];
    chorus_store_entry_t small_entries [S_SMALL_BATCH];
    bool small = count <= S_SMALL_BATCH;
    chorus_msg_t **messages = small? small_messages:
                              (chorus_msg_t **) calloc (count, sizeof (chorus_msg_t *));
    zframe_t **bodies = small? small_bodies: (zframe_t **) calloc (count, sizeof (zframe_t *));
    chorus_store_entry_t *entries = small? small_entries: (chorus_store_entry_t *)
                                    calloc (count, sizeof (chorus_store_entry_t));
    if (!messages || !bodies || !entries) {
        if (!small) {
            free (messages);
            free (bodies);
            free (entries);
        }
        return s_failf (self, CHORUS_ENOMEM, "publish: no memory for %zu events", count);
    }
    uint64_t now = chorus__now ();
    uint64_t first = chorus_store_head (self->store) + 1;
    int code = 0;
    for (size_t i = 0; i < count && !code; i++) {
        chorus_publication_t *event = &events [i];
        if (event->duplicate)
            continue;
        bool own = event->id [0] != 0;
        if (!own)
            chorus__new_id (event->id);
        chorus_msg_t *msg = chorus_msg_new (CHORUS_MSG_EVENT);
        chorus_msg_set_id (msg, event->id);
        chorus_msg_set_service (msg, self->config.service);
        chorus_msg_set_instance (msg, self->instance);
        chorus_msg_set_seq (msg, first + fresh);
        chorus_msg_set_topic (msg, event->topic);
        chorus_msg_set_key (msg, event->key);
        chorus_msg_set_correlation (msg, event->correlation? event->correlation:
                                    self->context_correlation? self->context_correlation:
                                    event->id);
        chorus_msg_set_causation (msg, event->causation? event->causation: self->context_id);
        chorus_msg_set_timestamp (msg, now);
        if (event->payload || event->size)
            chorus_msg_set_payload (msg, event->payload? event->payload: "", event->size);
        zframe_t *body = chorus_msg_encode (msg);
        if (!body) {
            chorus_msg_destroy (&msg);
            code = CHORUS_EINVAL;
            break;      //  the codec refused a field the checks above let through
        }
        messages [fresh] = msg;
        bodies [fresh] = body;
        entries [fresh].timestamp = now;
        entries [fresh].body = zframe_data (body);
        entries [fresh].size = zframe_size (body);
        entries [fresh].id = own? event->id: NULL;
        fresh++;
    }
    if (!code && fresh
    &&  (lazy? chorus_store_append_batch_lazy (self->store, first, entries, fresh):
               chorus_store_append_batch (self->store, first, entries, fresh))) {
        chorus__log (CHORUS_LOG_ERROR, "chorus: publish: %s", chorus_store_error (self->store));
        code = chorus_store_damaged (self->store)? CHORUS_ECORRUPT: CHORUS_ESTORE;
    }
    //  Durable now; the engine takes each event for delivery, and its
    //  body, as stored, for PUB. It is woken as soon as a push asks for it:
    //  a batch larger than the hand-off waits for the engine to take some
    for (size_t i = 0; i < fresh; i++) {
        if (code) {
            chorus_msg_destroy (&messages [i]);
            zframe_destroy (&bodies [i]);
        }
        else {
            //  An engine run inline looks at the hand-off each turn, with
            //  no wake, and takes it here when it is full, since no other
            //  thread will
            if (self->engine && chorus__handoff_full (&self->handoff))
                chorus__engine_serve (self->engine);
            if (chorus__handoff_push (&self->handoff, messages [i], bodies [i])
            &&  !self->engine)
                zstr_send (S_PIPE (self), "PUBLISHED");
        }
    }
    if (!small) {
        free (messages);
        free (bodies);
        free (entries);
    }
    if (code == CHORUS_EINVAL)
        return s_failf (self, code, "publish: an event the codec cannot encode");
    return code? s_fail (self, code): 0;
}

int
chorus_node_publish_batch (chorus_node_t *self, chorus_publication_t *events, size_t count)
{
    return s_publish_batch (self, events, count, false);
}

int
chorus_node_publish_batch_lazy (chorus_node_t *self, chorus_publication_t *events,
                                size_t count)
{
    return s_publish_batch (self, events, count, true);
}

//  Made from a thread of the caller's beside the node's own: it touches
//  the store alone (which LevelDB and the store's locks make safe), and
//  not the node's last-error text, which belongs to the node's thread
int
chorus_node_flush (chorus_node_t *self)
{
    if (!self || !S_PIPE (self) || !self->store)
        return CHORUS_ESTATE;
    if (chorus_store_flush (self->store)) {
        chorus__log (CHORUS_LOG_ERROR, "chorus: flush: %s", chorus_store_error (self->store));
        return chorus_store_damaged (self->store)? CHORUS_ECORRUPT: CHORUS_ESTORE;
    }
    return 0;
}

int
chorus_node_send (chorus_node_t *self, const char *service, const char *command,
                  const void *payload, size_t size, int timeout_ms, chorus_reply_fn *handler,
                  void *arg)
{
    return chorus_node_send_traced (self, service, command, payload, size, timeout_ms, NULL,
                                    NULL, handler, arg);
}

int
chorus_node_send_traced (chorus_node_t *self, const char *service, const char *command,
                         const void *payload, size_t size, int timeout_ms,
                         const char *idempotency, const char *correlation,
                         chorus_reply_fn *handler, void *arg)
{
    return chorus_node_send_attempt (self, service, command, payload, size, timeout_ms,
                                     idempotency, correlation, 1, handler, arg);
}

int
chorus_node_send_attempt (chorus_node_t *self, const char *service, const char *command,
                          const void *payload, size_t size, int timeout_ms,
                          const char *idempotency, const char *correlation, uint64_t attempt,
                          chorus_reply_fn *handler, void *arg)
{
    assert (self);
    if (!S_PIPE (self))
        return s_failf (self, CHORUS_ESTATE, "send: the node has not started");
    const char *why = !chorus__valid_name (service, 64)?
                          "a service name is 1 to 64 printable ASCII characters without spaces":
                      !chorus__valid_name (command, 128)?
                          "a command name is 1 to 128 printable ASCII characters without spaces":
                      !handler? "no reply handler":
                      timeout_ms < 0? "a negative timeout":
                      idempotency && strlen (idempotency) > 256?
                          "an idempotency key is at most 256 characters":
                      correlation && (!*correlation || strlen (correlation) > 128)?
                          "a correlation id is 1 to 128 characters":
                      attempt == 0? "an attempt counts from 1": NULL;
    if (why)
        return s_failf (self, CHORUS_EINVAL, "send: %s", why);
    if (size > CHORUS_MSG_MAX_PAYLOAD)
        return s_failf (self, CHORUS_ETOOBIG, "send: a payload of %zu bytes is over the limit "
                        "of %d bytes (CHORUS_PAYLOAD_MAX)", size, CHORUS_MSG_MAX_PAYLOAD);
    char id [33];
    chorus__new_id (id);
    uint64_t now = chorus__now ();
    chorus_msg_t *msg = chorus_msg_new (CHORUS_MSG_COMMAND);
    chorus_msg_set_id (msg, id);
    chorus_msg_set_service (msg, service);
    chorus_msg_set_name (msg, command);
    chorus_msg_set_idempotency (msg, idempotency);
    chorus_msg_set_correlation (msg, correlation? correlation:
                                self->context_correlation? self->context_correlation: id);
    chorus_msg_set_causation (msg, self->context_id);
    chorus_msg_set_timestamp (msg, now);
    chorus_msg_set_deadline (msg, now + (timeout_ms? timeout_ms: 30000));
    chorus_msg_set_attempt (msg, 1);
    chorus_msg_set_try (msg, attempt);
    if (payload || size)
        chorus_msg_set_payload (msg, payload? payload: "", size);
    zhashx_update (self->replies, id, s_handler_new (id, (void *) handler, arg));
    if (self->engine)
        chorus__engine_send (self->engine, msg);
    else
        zsock_send (S_PIPE (self), "sp", "SEND", msg);
    return 0;
}

//  --------------------------------------------------------------------------
//  Running handlers

//  A number the engine sent with zsock_send's '8', which czmq writes as
//  decimal text (not as 8 bytes)
static uint64_t
s_pop_u64 (zmsg_t *msg)
{
    char *text = zmsg_popstr (msg);
    uint64_t value = text? strtoull (text, NULL, 10): 0;
    zstr_free (&text);
    return value;
}

//  The application's flush failed: what the round handled is not durable,
//  so its events are rejected and its replies become retryable errors
static void
s_results_unflushed (chorus_node_t *self)
{
    size_t pos = 0;
    chorus__work_t record;
    const char *text;
    while (chorus__batch_next (self->results.data, self->results.size, &pos, &record, &text)) {
        size_t at = pos - record.text_size - sizeof (record);
        if (record.kind == 'A' && record.status == CHORUS_ACK_HANDLED) {
            record.status = CHORUS_ACK_REJECTED;
            memcpy (self->results.data + at, &record, sizeof (record));
        }
        else
        if (record.kind == 'Y') {
            chorus_reply_t view = {(chorus_msg_t *) record.second, 0, NULL, NULL, NULL};
            chorus_msg_set_payload (view.msg, NULL, 0);
            chorus_reply_set_error (&view, "internal", "the service could not save its work",
                                    true);
        }
    }
}

//  Sends the queued results, after the application's flush if it has one
static void
s_results_send (chorus_node_t *self)
{
    if (self->results.count == 0)
        return;
    if (self->flush_fn && self->flush_fn (self, self->flush_arg))
        s_results_unflushed (self);
    if (self->engine)
        chorus__engine_results (self->engine, &self->results);
    else
        chorus__batch_send (&self->results, self->work);
}

#define S_RESULTS_BATCH 64      //  results sent together, so acks keep flowing
#define S_RESULTS_AGE_US 1000   //  a result waits no longer for others to join it

//  Queues a result for the engine. Results go together at the end of a
//  dispatch, or sooner when the batch is full or has waited long enough;
//  a reply goes at once, so that a slow handler after it cannot hold it
static void
s_result (chorus_node_t *self, char kind, uint32_t status, chorus_msg_t *first,
          chorus_msg_t *second)
{
    if (self->results.count == 0)
        self->results_since = zclock_usecs ();
    chorus__batch_add (&self->results, kind, status, first, second, NULL);
    //  Run inline, nothing answers while the handlers run: a reply waits
    //  for the others of the dispatch, to be recorded with them
    if ((kind == 'Y' && !self->engine) || self->results.count >= S_RESULTS_BATCH)
        s_results_send (self);
}

//  Sends the results that have waited long enough, before the next handler
static void
s_results_age (chorus_node_t *self)
{
    if (self->results.count && zclock_usecs () - self->results_since > S_RESULTS_AGE_US)
        s_results_send (self);
}

static int
s_run_event (chorus_node_t *self, chorus_msg_t *msg)
{
    chorus_event_t view = {msg, NULL};
    int status = CHORUS_ACK_HANDLED, ran = 0;
    self->context_correlation = chorus_msg_correlation (msg);
    self->context_id = chorus_msg_id (msg);
    for (s_handler_t *handler = (s_handler_t *) zlistx_first (self->subscribers); handler;
         handler = (s_handler_t *) zlistx_next (self->subscribers)) {
        if (!chorus__prefix_match (handler->name, chorus_msg_topic (msg)))
            continue;
        ran++;
        int rc = ((chorus_event_fn *) handler->fn) (self, &view, handler->arg);
        if (view.deferred)
            break;      //  its result comes with chorus_deferred_finish
        if (rc) {
            status = CHORUS_ACK_REJECTED;
            break;      //  it comes again, and every handler runs again
        }
    }
    self->context_correlation = self->context_id = NULL;
    if (!view.deferred)
        s_result (self, 'A', (uint32_t) status, msg, NULL);
    return ran;
}

static int
s_run_observed (chorus_node_t *self, chorus_msg_t *msg)
{
    chorus_event_t view = {msg, NULL};
    int ran = 0;
    for (s_handler_t *handler = (s_handler_t *) zlistx_first (self->observers); handler;
         handler = (s_handler_t *) zlistx_next (self->observers))
        if (chorus__prefix_match (handler->name, chorus_msg_topic (msg))
        &&  (handler->earliest || chorus_msg_timestamp (msg) >= handler->since)) {
            ((chorus_event_fn *) handler->fn) (self, &view, handler->arg);
            ran++;
        }
    chorus_msg_destroy (&msg);
    s_result (self, 'o', 1, NULL, NULL);
    return ran;
}

static int
s_run_command (chorus_node_t *self, chorus_msg_t *msg, const char *sender)
{
    chorus_msg_t *reply = chorus_msg_new (CHORUS_MSG_REPLY);
    chorus_msg_set_id (reply, "-");     //  the engine gives it its id
    chorus_reply_t reply_view = {reply, 0, chorus_msg_id (msg), NULL, NULL};
    chorus_command_t view = {msg, sender, &reply_view, NULL};
    s_handler_t *handler = (s_handler_t *) zhashx_lookup (self->commands, chorus_msg_name (msg));
    if (handler) {
        self->context_correlation = chorus_msg_correlation (msg);
        self->context_id = chorus_msg_id (msg);
        ((chorus_command_fn *) handler->fn) (self, &view, &reply_view, handler->arg);
        self->context_correlation = self->context_id = NULL;
    }
    else
        chorus_reply_set_error (&reply_view, "unknown-command", "no handler", false);
    if (!view.deferred)
        s_result (self, 'Y', 0, msg, reply);
    return handler? 1: 0;
}

static int
s_run_reply (chorus_node_t *self, const char *command_id, chorus_msg_t *msg, const char *code,
             const char *message)
{
    s_handler_t *handler = (s_handler_t *) zhashx_lookup (self->replies, command_id);
    if (!handler) {
        chorus_msg_destroy (&msg);
        return 0;
    }
    chorus_reply_t view = {msg, 0, command_id, code, message};
    if (!msg)       //  a failure the engine reports: no reply before the deadline, or refused
        view.status = code && streq (code, "forbidden")? CHORUS_EFORBIDDEN: CHORUS_ETIMEDOUT;
    else
    if (chorus_msg_status (msg) != CHORUS_REPLY_OK)
        view.status = chorus_msg_code (msg) && streq (chorus_msg_code (msg), "unknown-command")?
                      CHORUS_EUNKNOWN: CHORUS_EREMOTE;
    ((chorus_reply_fn *) handler->fn) (self, &view, handler->arg);
    zhashx_delete (self->replies, command_id);
    chorus_msg_destroy (&msg);
    return 1;
}

static int
s_run_monitor (chorus_node_t *self, zmsg_t *work)
{
    char *fields [4];
    for (int i = 0; i < 4; i++)
        fields [i] = zmsg_popstr (work);
    if (self->monitor_fn && fields [3])
        self->monitor_fn (self, fields [0], fields [1], fields [2], fields [3],
                          self->monitor_arg);
    for (int i = 0; i < 4; i++)
        zstr_free (&fields [i]);
    return self->monitor_fn? 1: 0;
}

static int
s_run_peer (chorus_node_t *self, zmsg_t *work)
{
    char *state = zmsg_popstr (work);
    char *fields [5];
    for (int i = 0; i < 5; i++)
        fields [i] = zmsg_popstr (work);
    chorus_peer_t peer = {fields [0], fields [1], fields [2], fields [3], fields [4],
                          (chorus_peer_state_t) atoi (state? state: "0"), 0, 0, NULL, false};
    peer.last_seen = s_pop_u64 (work);
    peer.head = s_pop_u64 (work);
    char *key = zmsg_popstr (work);
    peer.key = key && *key? key: NULL;
    peer.authenticated = peer.key != NULL;
    if (self->peer_fn && fields [4])
        self->peer_fn (self, &peer, self->peer_arg);
    zstr_free (&state);
    zstr_free (&key);
    for (int i = 0; i < 5; i++)
        zstr_free (&fields [i]);
    return self->peer_fn? 1: 0;
}

static int
s_run_truncated (chorus_node_t *self, zmsg_t *work)
{
    char *publisher = zmsg_popstr (work);
    uint64_t from = s_pop_u64 (work);
    uint64_t to = s_pop_u64 (work);
    char *reason = zmsg_popstr (work);
    if (self->truncated_fn && publisher)
        self->truncated_fn (self, publisher, from, to, reason? reason: "", self->truncated_arg);
    zstr_free (&publisher);
    zstr_free (&reason);
    return self->truncated_fn? 1: 0;
}

//  Runs the handlers of one record of a batch from the engine
static int
s_run_record (chorus_node_t *self, chorus__work_t *record, const char *text)
{
    chorus_msg_t *msg = (chorus_msg_t *) record->first;
    s_results_age (self);
    switch (record->kind) {
        case 'E': return s_run_event (self, msg);
        case 'O': return s_run_observed (self, msg);
        case 'C': {
            char sender [128];
            size_t size = record->text_size < sizeof (sender)? record->text_size
                                                             : sizeof (sender) - 1;
            memcpy (sender, text, size);
            sender [size] = 0;
            return s_run_command (self, msg, sender);
        }
        case 'R': {
            char request [80];
            snprintf (request, sizeof (request), "%s", chorus_msg_request (msg));
            return s_run_reply (self, request, msg, NULL, NULL);
        }
    }
    chorus_msg_destroy (&msg);
    return 0;
}

//  True when the application wants its handlers to stop: chorus_node_stop,
//  or, inside chorus_node_run, a signal (SIGINT, SIGTERM) caught by czmq.
//  A program with its own loop decides for itself what a signal means.
static bool
s_stopping (chorus_node_t *self)
{
    return self->stopped || (self->running && zsys_interrupted);
}

//  Runs the records of the batch from pos on. Stops between two records
//  when asked to, keeping the rest for the next dispatch: a backlog never
//  holds up a stop for longer than the handler that is running.
static int
s_run_batch (chorus_node_t *self, zmsg_t **batch_p, size_t pos)
{
    zframe_t *frame = zmsg_last (*batch_p);
    int ran = 0;
    chorus__work_t record;
    const char *text;
    while (frame && !s_stopping (self)
       &&  chorus__batch_next (zframe_data (frame), zframe_size (frame), &pos, &record, &text))
        ran += s_run_record (self, &record, text);
    if (frame && pos < zframe_size (frame)) {
        self->unrun = *batch_p;
        self->unrun_pos = pos;
        *batch_p = NULL;
    }
    return ran;
}

//  Runs the handlers of the work the engine sent
static int
s_dispatch (chorus_node_t *self)
{
    int ran = 0;
    if (self->unrun) {
        zmsg_t *batch = self->unrun;
        self->unrun = NULL;
        ran += s_run_batch (self, &batch, self->unrun_pos);
        zmsg_destroy (&batch);
    }
    if (self->store && chorus_store_damaged (self->store)) {
        char damage [512];
        chorus_store_damage (self->store, damage, sizeof (damage));
        char text [1536];
        snprintf (text, sizeof (text), "store %s is %s; the node stops. 'chorus store check %s' "
                  "shows what the store holds, and 'chorus store repair %s' recovers what can "
                  "be recovered", self->store_dir, damage, self->store_dir, self->store_dir);
        if (!self->damage_reported)
            chorus__log (CHORUS_LOG_ERROR, "chorus: %s", text);
        self->damage_reported = true;
        return s_failf (self, CHORUS_ECORRUPT, "%s", text);
    }
    zmsg_t *work;
    while (!self->unrun && !s_stopping (self)
       &&  (work = self->inline_work? (zmsg_t *) zlist_pop (self->inline_work)
                                    : chorus__recv_ready (self->work))) {
        char *kind = zmsg_popstr (work);
        switch (kind? kind [0]: 0) {
            case 'B':
                ran += s_run_batch (self, &work, 0);
                break;
            case 'T': {
                char *id = zmsg_popstr (work);
                char *code = zmsg_popstr (work);
                char *message = zmsg_popstr (work);
                ran += s_run_reply (self, id, NULL, code, message);
                zstr_free (&id);
                zstr_free (&code);
                zstr_free (&message);
                break;
            }
            case 'P': ran += s_run_peer (self, work); break;
            case 'M': ran += s_run_monitor (self, work); break;
            case 'X': ran += s_run_truncated (self, work); break;
        }
        zstr_free (&kind);
        zmsg_destroy (&work);
    }
    s_results_send (self);
    return ran;
}

#define S_INLINE_TURNS 64       //  engine turns a dispatch of a node run inline takes at most

//  Why an inline node's calls fail once its engine has ended
#define S_ENDED "the ZeroMQ context was terminated (shutdown): the node can do nothing more"

int
chorus_node_dispatch (chorus_node_t *self)
{
    assert (self);
    if (!self->work)
        return s_failf (self, CHORUS_ESTATE, "dispatch: the node has not started");
    //  Run inline, the engine takes what is ready first, without waiting
    bool ended = false;
    for (int turns = 0; self->engine && turns < S_INLINE_TURNS; turns++) {
        int turn = chorus__engine_turn (self->engine, 0);
        ended = turn < 0;
        if (turn <= 0)
            break;
    }
    int rc = s_dispatch (self);
    //  What the engine handed over before the end is run first
    if (ended && rc >= 0)
        return s_failf (self, CHORUS_EINTERRUPTED, "dispatch: " S_ENDED);
    return rc;
}

//  --------------------------------------------------------------------------
//  Results given later

chorus_deferred_t *
chorus_event_defer (chorus_event_t *event)
{
    assert (event);
    if (event->deferred)
        return event->deferred;
    chorus_deferred_t *self = (chorus_deferred_t *) zmalloc (sizeof (chorus_deferred_t));
    self->kind = 'A';
    self->event.msg = event->msg;
    event->deferred = self;
    return self;
}

chorus_deferred_t *
chorus_command_defer (chorus_command_t *command)
{
    assert (command);
    if (command->deferred)
        return command->deferred;
    chorus_deferred_t *self = (chorus_deferred_t *) zmalloc (sizeof (chorus_deferred_t));
    self->kind = 'Y';
    snprintf (self->sender, sizeof (self->sender), "%s", command->sender? command->sender: "");
    self->command.msg = command->msg;
    self->command.sender = self->sender;
    //  The reply's view points into the command, which the deferred result now holds
    self->reply = *command->reply;
    self->command.reply = &self->reply;
    command->deferred = self;
    return self;
}

chorus_event_t *
chorus_deferred_event (chorus_deferred_t *self)
{
    assert (self);
    return self->kind == 'A'? &self->event: NULL;
}

chorus_command_t *
chorus_deferred_command (chorus_deferred_t *self)
{
    assert (self);
    return self->kind == 'Y'? &self->command: NULL;
}

chorus_reply_t *
chorus_deferred_reply (chorus_deferred_t *self)
{
    assert (self);
    return self->kind == 'Y'? &self->reply: NULL;
}

void
chorus_deferred_finish (chorus_node_t *node, chorus_deferred_t **self_p, int status)
{
    assert (node);
    assert (self_p);
    chorus_deferred_t *self = *self_p;
    if (!self)
        return;
    if (self->kind == 'A')
        s_result (node, 'A', status? CHORUS_ACK_REJECTED: CHORUS_ACK_HANDLED, self->event.msg,
                  NULL);
    else
        s_result (node, 'Y', 0, self->command.msg, self->reply.msg);
    //  Outside a dispatch nothing else would send it soon
    s_results_send (node);
    free (self);
    *self_p = NULL;
}

void
chorus_deferred_destroy (chorus_deferred_t **self_p)
{
    assert (self_p);
    chorus_deferred_t *self = *self_p;
    if (!self)
        return;
    chorus_msg_destroy (&self->event.msg);
    chorus_msg_destroy (&self->command.msg);
    chorus_msg_destroy (&self->reply.msg);
    free (self);
    *self_p = NULL;
}

void *
chorus_node_socket (chorus_node_t *self)
{
    assert (self);
    return self->engine? NULL: self->work;
}

int
chorus_node_fd (chorus_node_t *self)
{
    assert (self);
    if (!self->work)
        return s_failf (self, CHORUS_ESTATE, "fd: the node has not started");
    if (self->engine)
        return s_failf (self, CHORUS_ESTATE, "fd: a node run inline has no single descriptor; "
                        "run it with chorus_node_run, or wait on chorus_node_pollfds");
    return zsock_fd (self->work);
}

int
chorus_node_pollfds (chorus_node_t *self, int *fds, int max, int *timeout_ms)
{
    assert (self);
    if (!self->engine)
        return s_failf (self, CHORUS_ESTATE, "pollfds: %s", !S_PIPE (self)?
                        "the node has not started": "the node is not run inline; wait on "
                        "chorus_node_fd");
    if (max < 0 || (max > 0 && !fds) || !timeout_ms)
        return s_failf (self, CHORUS_EINVAL, "pollfds: %s", max < 0? "a negative max":
                        !timeout_ms? "no timeout_ms": "no array for the descriptors");
    int count = chorus__engine_fds (self->engine, fds, (size_t) max, timeout_ms);
    if (count < 0)
        //  Else its loop would spin: the descriptors say "ready" for ever
        return s_failf (self, CHORUS_EINTERRUPTED, "pollfds: " S_ENDED);
    if (s_work_waiting (self))
        *timeout_ms = 0;
    return count;
}

//  How often chorus_node_run looks at the signal flag without a wake. A
//  signal to the process goes to its main thread unless that thread blocks
//  it, and breaks a wait there at once: on the main thread the flag is
//  looked at only for a signal that came just before the wait. On another
//  thread the signal breaks no wait of ours, and the flag is all we have
#define S_RUN_WAKE_MS 1000
#define S_RUN_WAKE_MAIN_MS 10000

int
chorus_node_run (chorus_node_t *self, int timeout_ms)
{
    assert (self);
    if (!self->work)
        return s_failf (self, CHORUS_ESTATE, "run: the node has not started");
    int64_t end = timeout_ms < 0? -1: zclock_mono () + timeout_ms;
    //  Asked once per thread: a run per round trip (a node run inline)
    //  should not pay two system calls for it
    static __thread int64_t every = 0;
    if (!every)
        every = (pid_t) syscall (SYS_gettid) == getpid ()? S_RUN_WAKE_MAIN_MS: S_RUN_WAKE_MS;
    zpoller_t *poller = self->engine? NULL: zpoller_new (self->work, NULL);
    int rc = 0;
    self->running = true;
    while (!self->stopped) {
        //  A signal ends the wait; one that comes just before it is seen
        //  within the wake period
        int64_t wait = end < 0? every: end - zclock_mono ();
        if (end >= 0 && wait <= 0)
            break;
        //  Work kept from a batch cut short by a stop goes first, as does
        //  work an inline engine handed over before the stop
        int cap = s_work_waiting (self)? 0: wait > every? (int) every: (int) wait;
        //  Run inline, the engine's turn is the wait: it hands the work
        //  it finds to this thread's end of the work pipe
        bool ended = false;
        if (self->engine)
            ended = chorus__engine_turn (self->engine, cap) < 0;
        else {
            zpoller_wait (poller, cap);
            //  A signal that is not an interrupt (SIGHUP, which the tools
            //  take as "read the trust directory again") ends the wait,
            //  not the run
            ended = zpoller_terminated (poller) && zmq_errno () != EINTR;
        }
        if (zsys_interrupted || ended) {
            rc = s_failf (self, CHORUS_EINTERRUPTED, "run: %s", zsys_interrupted?
                          "interrupted by a signal": S_ENDED);
            break;
        }
        if (s_dispatch (self) == CHORUS_ECORRUPT) {
            rc = CHORUS_ECORRUPT;   //  dispatch recorded it
            break;
        }
    }
    self->running = false;
    self->stopped = false;
    zpoller_destroy (&poller);
    return rc;
}

void
chorus_node_stop (chorus_node_t *self)
{
    assert (self);
    self->stopped = true;
}

//  --------------------------------------------------------------------------
//  Questions to the engine

//  Asks the engine a question whose answer is a list of frames after a
//  first one (never an empty message); returns the list, or NULL
static zmsg_t *
s_ask (chorus_node_t *self, const char *question)
{
    zsock_send (S_PIPE (self), "s", question);
    s_serve (self);
    zmsg_t *reply = zmsg_recv (S_PIPE (self));
    char *first = reply? zmsg_popstr (reply): NULL;
    zstr_free (&first);
    return reply;
}

int
chorus_node_peers (chorus_node_t *self, chorus_peer_fn *fn, void *arg)
{
    assert (self);
    if (!S_PIPE (self))
        return s_failf (self, CHORUS_ESTATE, "peers: the node has not started");
    zmsg_t *reply = s_ask (self, "PEERS");
    int count = 0;
    while (reply && zmsg_size (reply) >= 9) {
        char *field [9];
        for (int i = 0; i < 9; i++)
            field [i] = zmsg_popstr (reply);
        chorus_peer_t peer = {field [0], field [1], field [2], field [3], field [4],
                              (chorus_peer_state_t) atoi (field [5]),
                              strtoull (field [6], NULL, 10), strtoull (field [7], NULL, 10),
                              *field [8]? field [8]: NULL, *field [8] != 0};
        if (fn)
            fn (self, &peer, arg);
        count++;
        for (int i = 0; i < 9; i++)
            zstr_free (&field [i]);
    }
    zmsg_destroy (&reply);
    return count;
}

int
chorus_node_pending (chorus_node_t *self, chorus_pending_fn *fn, void *arg)
{
    assert (self);
    if (!S_PIPE (self))
        return s_failf (self, CHORUS_ESTATE, "pending: the node has not started");
    zmsg_t *reply = s_ask (self, "PENDING");
    int count = 0;
    while (reply && zmsg_size (reply) >= 3) {
        char *group = zmsg_popstr (reply);
        char *pending = zmsg_popstr (reply);
        char *instances = zmsg_popstr (reply);
        if (fn)
            fn (self, group, strtoull (pending, NULL, 10), (size_t) atol (instances), arg);
        count++;
        zstr_free (&group);
        zstr_free (&pending);
        zstr_free (&instances);
    }
    zmsg_destroy (&reply);
    return count;
}

int64_t
chorus_node_unacked (chorus_node_t *self)
{
    assert (self);
    if (!S_PIPE (self))
        return s_failf (self, CHORUS_ESTATE, "unacked: the node has not started");
    uint64_t value = 0;
    zsock_send (S_PIPE (self), "s", "UNACKED");
    s_serve (self);
    zsock_recv (S_PIPE (self), "8", &value);
    return (int64_t) value;
}

uint64_t
chorus_node_counter (chorus_node_t *self, const char *name)
{
    assert (self);
    if (!S_PIPE (self) || !name)
        return 0;
    uint64_t value = 0;
    zsock_send (S_PIPE (self), "ss", "COUNTER", name);
    s_serve (self);
    zsock_recv (S_PIPE (self), "8", &value);
    return value;
}
