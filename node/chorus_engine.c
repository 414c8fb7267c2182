/*  chorus_engine.c — the node engine: a czmq actor that owns the node's
    sockets and mesh state. It meets peers (seeds, gossip, beacon), keeps
    them alive with heartbeats, routes each message to delivery, commands
    or the observer, and hands work to the application's thread.
*/
#include "chorus_engine.h"

#include <stdarg.h>

const char *chorus__counter_names [C_COUNTERS] = {
    "malformed", "unknown_peer", "published", "delivered", "handled", "duplicates",
    "redelivered", "commands_sent", "commands_handled", "replies", "timeouts", "fetches",
    "truncated", "observed", "expired_commands", "fetched", "forged", "refused",
    "errors_sent", "errors_received", "connections_refused", "forbidden", "unauthorised",
    "handshakes_failed", "revoked", "hellos",
};

#define S_ROUTER_BATCH 1000     //  messages read from the inbox per turn
#define S_TICK_MS 50            //  timer resolution
#define S_CONNECTING_TICK_MS 5  //  while a new connection is coming up
#define S_INBOX_KEEP_MS (24 * 3600 * 1000ull)   //  dedupe records kept this long
#define S_WARN_MS 10000         //  one warning of a kind at most this often
#define S_MAX_FRAME (CHORUS_MSG_MAX_BODY + 1024)    //  largest frame a socket takes

//  --------------------------------------------------------------------------
//  Small services for the other classes

void
chorus__engine_log (chorus__engine_t *self, const char *format, ...)
{
    if (!self->config->verbose)
        return;
    va_list args;
    va_start (args, format);
    char *text = zsys_vprintf (format, args);
    va_end (args);
    chorus__log (CHORUS_LOG_DEBUG, "chorus %s/%.8s: %s", self->config->service,
                 self->instance? self->instance: "-", text);
    free (text);
}

void
chorus__engine_warn (chorus__engine_t *self, chorus__warning_t kind, const char *format, ...)
{
    uint64_t now = chorus__mono ();
    if (self->warned [kind] && now - self->warned [kind] < S_WARN_MS) {
        self->unwarned [kind]++;
        return;
    }
    va_list args;
    va_start (args, format);
    char *text = zsys_vprintf (format, args);
    va_end (args);
    if (self->unwarned [kind])
        chorus__log (CHORUS_LOG_WARNING,
                     "chorus %s/%.8s: %s (and %" PRIu64 " more like it)", self->config->service,
                     self->instance? self->instance: "-", text, self->unwarned [kind]);
    else
        chorus__log (CHORUS_LOG_WARNING, "chorus %s/%.8s: %s", self->config->service,
                     self->instance? self->instance: "-", text);
    free (text);
    self->warned [kind] = now;
    self->unwarned [kind] = 0;
}

void
chorus__engine_forged (chorus__engine_t *self, chorus__peer_t *peer, chorus_msg_t *msg,
                       const char *why)
{
    self->counters [C_FORGED]++;
    const char *instance = chorus_msg_instance (msg);
    chorus__engine_warn (self, W_FORGED, "dropped %s %.32s from peer %s/%s at %s (from %s): %s%s%s",
                         chorus_msg_command (msg), chorus_msg_id (msg), peer->service,
                         peer->instance, peer->endpoint, *peer->address? peer->address: "?", why,
                         instance? ", names ": "", instance? instance: "");
}

void
chorus__engine_forbidden (chorus__engine_t *self, chorus__peer_t *peer, chorus_msg_t *msg,
                          const char *what)
{
    self->counters [C_FORBIDDEN]++;
    char why [512];
    if (chorus_msg_type (msg) == CHORUS_MSG_COMMAND)
        snprintf (why, sizeof (why), "certificate '%s' %s %s.%s", peer->grant->name, what,
                  chorus_msg_service (msg), chorus_msg_name (msg));
    else
        snprintf (why, sizeof (why), "certificate '%s' %s '%s'", peer->grant->name, what,
                  chorus_msg_topic (msg));
    chorus__engine_warn (self, W_FORBIDDEN, "refused %s %.32s from %s/%.8s: %s",
                         chorus_msg_command (msg), chorus_msg_id (msg), peer->service,
                         peer->instance, why);
    chorus__engine_error (self, peer, msg, "forbidden", why);
}

#define S_BACKLOG_MAX 1024                  //  answers kept for one peer at most
#define S_BACKLOG_BYTES (4 * 1024 * 1024)   //  and their bytes

void
chorus__engine_flush_backlog (chorus__engine_t *self, chorus__peer_t *peer)
{
    zframe_t *frame;
    while (peer->backlog && (frame = (zframe_t *) zlistx_first (peer->backlog))
       &&  chorus__peers_greet (self, peer) == 0
       &&  zframe_send (&frame, peer->dealer, ZFRAME_REUSE | ZFRAME_DONTWAIT) == 0) {
        peer->backlog_bytes -= zframe_size (frame);
        zlistx_detach_cur (peer->backlog);
        zframe_destroy (&frame);
    }
}

void
chorus__engine_answer (chorus__engine_t *self, chorus__peer_t *peer, chorus_msg_t *msg)
{
    if (!peer)
        return;
    if ((!peer->backlog || zlistx_size (peer->backlog) == 0)
    &&  chorus__engine_send (self, peer, msg) == 0)
        return;
    //  The connection is not up yet (we have just met) or is full: keep
    //  it, rather than make the peer wait for its timeout to ask again
    zframe_t *frame = chorus_msg_encode (msg);
    if (!peer->backlog)
        peer->backlog = zlistx_new ();
    if (!frame || zlistx_size (peer->backlog) >= S_BACKLOG_MAX
    ||  peer->backlog_bytes + zframe_size (frame) > S_BACKLOG_BYTES) {
        zframe_destroy (&frame);    //  the peer asks again at its timeout
        return;
    }
    peer->backlog_bytes += zframe_size (frame);
    zlistx_add_end (peer->backlog, frame);
    chorus__engine_flush_backlog (self, peer);
}

void
chorus__engine_error (chorus__engine_t *self, chorus__peer_t *peer, chorus_msg_t *request,
                      const char *code, const char *message)
{
    self->counters [C_ERRORS_SENT]++;
    chorus_msg_t *error = chorus__engine_msg (self, CHORUS_MSG_ERROR);
    chorus_msg_set_request (error, chorus_msg_id (request));
    chorus_msg_set_code (error, code);
    chorus_msg_set_message (error, message);
    chorus__engine_send (self, peer, error);
    chorus_msg_destroy (&error);
}

chorus_msg_t *
chorus__engine_msg (chorus__engine_t *self, int type)
{
    chorus_msg_t *msg = chorus_msg_new (type);
    char id [33];
    chorus__new_id (id);
    chorus_msg_set_id (msg, id);
    return msg;
}

chorus__peer_t *
chorus__engine_peer (chorus__engine_t *self, const char *instance)
{
    return instance? (chorus__peer_t *) zhashx_lookup (self->peers, instance): NULL;
}

int
chorus__engine_send (chorus__engine_t *self, chorus__peer_t *peer, chorus_msg_t *msg)
{
    if (!peer || !peer->dealer || chorus__peers_greet (self, peer))
        return -1;
    return chorus_msg_send (msg, peer->dealer);
}

int
chorus__engine_send_encoded (chorus__engine_t *self, chorus__peer_t *peer, chorus_msg_t *msg,
                             zframe_t **frame_p)
{
    if (!peer || !peer->dealer || chorus__peers_greet (self, peer)) {
        zframe_destroy (frame_p);
        return -1;      //  nothing goes to a peer before our HELLO
    }
    return chorus_msg_send_encoded (msg, frame_p, peer->dealer);
}

void
chorus__engine_hand (chorus__engine_t *self, char kind, chorus_msg_t *msg, const char *text)
{
    chorus__batch_add (&self->handover, kind, 0, msg, NULL, text);
}

void
chorus__engine_flush (chorus__engine_t *self)
{
    chorus__batch_send (&self->handover, self->work);
}

int
chorus__engine_work (chorus__engine_t *self, const char *picture, ...)
{
    chorus__engine_flush (self);    //  work reaches the application in order
    va_list args;
    va_start (args, picture);
    int rc = zsock_vsend (self->work, picture, args);
    va_end (args);
    return rc;
}

//  --------------------------------------------------------------------------
//  The inbox

//  The instance id in a routing id (a kind byte and 16 binary bytes)
static bool
s_routing_instance (zframe_t *routing_id, char instance [33])
{
    if (!routing_id || zframe_size (routing_id) != 17)
        return false;
    const uint8_t *data = zframe_data (routing_id);
    if (data [0] != 0x01)
        return false;   //  the one routing id form (protocol section 5)
    chorus__hex (data + 1, 16, instance);
    return true;
}

//  TRUNCATED carries exactly one of request and group, and a range
static bool
s_truncated_valid (chorus_msg_t *truncated)
{
    return (chorus_msg_request (truncated) != NULL) != (chorus_msg_group (truncated) != NULL)
        && chorus_msg_from (truncated) <= chorus_msg_to (truncated);
}

static void
s_on_message (chorus__engine_t *self, chorus__peer_t *peer)
{
    chorus_msg_t *msg = self->msg;
    switch (chorus_msg_type (msg)) {
        case CHORUS_MSG_PING: {
            chorus_msg_t *pong = chorus__engine_msg (self, CHORUS_MSG_PONG);
            chorus_msg_set_head (pong, chorus_store_head (self->store));
            chorus__engine_send (self, peer, pong);
            chorus_msg_destroy (&pong);
            peer->head = chorus_msg_head (msg);
            if (self->observer)
                chorus__observer_head (self->observer, peer, peer->head);
            break;
        }
        case CHORUS_MSG_PONG:
            peer->head = chorus_msg_head (msg);
            if (self->observer)
                chorus__observer_head (self->observer, peer, peer->head);
            break;
        case CHORUS_MSG_EVENT:
            //  A node only sends the events it published (section 5.1)
            if (!streq (chorus_msg_instance (msg), peer->instance))
                chorus__engine_forged (self, peer, msg, "an event of another publisher");
            else
            if (chorus_msg_group (msg) && peer->grant
            &&  !chorus__grant_publish (peer->grant, chorus_msg_topic (msg)))
                chorus__engine_forbidden (self, peer, msg, "may not publish");
            else
            if (chorus_msg_group (msg))
                chorus__inbox_event (self, peer, &self->msg);
            else
            if (self->observer)
                chorus__observer_fetched (self->observer, peer, &self->msg);
            break;
        case CHORUS_MSG_EVENT_ACK:
            if (chorus_msg_status (msg) > CHORUS_ACK_REJECTED)
                chorus__engine_error (self, peer, msg, "bad-request",
                                      "EVENT-ACK status must be 0, 1 or 2");
            else
                chorus__delivery_ack (self->delivery, peer, msg);
            break;
        case CHORUS_MSG_FETCH:
            self->counters [C_FETCHES]++;
            chorus__delivery_fetch (self->delivery, peer, msg);
            break;
        case CHORUS_MSG_REPLAY:
            if (self->observer)
                chorus__observer_replay (self->observer, peer, msg);
            break;
        case CHORUS_MSG_TRUNCATED:
            if (!s_truncated_valid (msg))
                chorus__engine_error (self, peer, msg, "bad-request",
                                      "TRUNCATED needs exactly one of request and group, "
                                      "and from <= to");
            else
            if (chorus_msg_request (msg)) {
                if (self->observer)
                    chorus__observer_truncated (self->observer, peer, msg);
            }
            else
            if (streq (chorus_msg_group (msg), self->config->service)) {
                self->counters [C_TRUNCATED]++;
                chorus__engine_work (self, "ss88s", "X", peer->instance, chorus_msg_from (msg),
                                     chorus_msg_to (msg), chorus_msg_message (msg)?
                                     chorus_msg_message (msg): "");
            }
            break;
        case CHORUS_MSG_COMMAND:
            if (peer->grant && !chorus__grant_call (peer->grant, chorus_msg_service (msg),
                                                    chorus_msg_name (msg)))
                chorus__engine_forbidden (self, peer, msg, "may not call");
            else
                chorus__commands_received (self->commands, peer, &self->msg);
            break;
        case CHORUS_MSG_REPLY:
            if (chorus_msg_status (msg) > CHORUS_REPLY_ERROR)
                chorus__engine_error (self, peer, msg, "bad-request",
                                      "REPLY status must be 0 or 1");
            else
                chorus__commands_reply (self->commands, peer, &self->msg);
            break;
        case CHORUS_MSG_ERROR:
            self->counters [C_ERRORS_RECEIVED]++;
            chorus__engine_warn (self, W_ERROR, "ERROR %s from %s/%.8s about %s: %s",
                                 chorus_msg_code (msg), peer->service, peer->instance,
                                 chorus_msg_request (msg)? chorus_msg_request (msg): "-",
                                 chorus_msg_message (msg)? chorus_msg_message (msg): "");
            chorus__commands_error (self->commands, peer, msg);
            break;
        case CHORUS_MSG_BYE:
            chorus__peers_remove (self, peer, CHORUS_PEER_LEFT);
            break;
    }
    if (!self->msg) {
        self->msg = chorus_msg_new (CHORUS_MSG_PING);
        chorus_msg_want_user_id (self->msg, self->config->keys != NULL);
    }
}

static void
s_recv_router (chorus__engine_t *self)
{
    //  The inbox has a receive timeout of 0: we read until it is empty
    for (int count = 0; count < S_ROUTER_BATCH; count++) {
        int rc = chorus_msg_recv (self->msg, self->router);
        if (rc == CHORUS_MSG_INTERRUPTED)
            break;
        if (rc == CHORUS_MSG_MALFORMED) {
            self->counters [C_MALFORMED]++;
            chorus__engine_log (self, "dropped malformed message: %s",
                                chorus_msg_reason (self->msg));
            continue;
        }
        char instance [33];
        if (!s_routing_instance (chorus_msg_routing_id (self->msg), instance)) {
            self->counters [C_UNKNOWN_PEER]++;
            continue;
        }
        if (chorus_msg_type (self->msg) == CHORUS_MSG_HELLO) {
            self->counters [C_HELLOS]++;
            if (streq (chorus_msg_instance (self->msg), instance))
                chorus__peers_hello (self, instance, self->msg);
            else
                self->counters [C_UNKNOWN_PEER]++;  //  claims another's identity
            continue;
        }
        chorus__peer_t *peer = chorus__engine_peer (self, instance);
        if (!peer) {
            self->counters [C_UNKNOWN_PEER]++;
            continue;
        }
        //  On a secure mesh, its routing id is the peer's only over the
        //  connection of the key it met us with
        if (peer->key && !streq (chorus_msg_user_id (self->msg), peer->key)) {
            chorus__engine_forged (self, peer, self->msg, "came under its routing id from "
                                   "another key");
            continue;
        }
        peer->last_seen = chorus__mono ();
        if (peer->evasive) {
            peer->evasive = false;
            chorus__peers_report (self, peer, CHORUS_PEER_ALIVE);
        }
        s_on_message (self, peer);
    }
}

//  --------------------------------------------------------------------------
//  Start: bind, announce, meet the seeds

//  Replaces a wildcard host in a bound endpoint with one peers can reach
static char *
s_announced (const char *bound, const char *host)
{
    const char *port = strrchr (bound, ':');
    if (strstr (bound, "0.0.0.0") || strstr (bound, "[::]") || strstr (bound, "*"))
        return zsys_sprintf ("tcp://%s%s", host? host: "127.0.0.1", port? port: "");
    return strdup (bound);
}

//  A socket event, in words, for the application
static void
s_monitor_event (const char *event, const char *socket, const char *peer, const char *detail,
                 void *arg)
{
    chorus__engine_work ((chorus__engine_t *) arg, "sssss", "M", event, socket, peer, detail);
}

static const char *
s_start (chorus__engine_t *self)
{
    chorus__config_t *config = self->config;
    self->instance = strdup (chorus_store_instance (self->store));
    self->started = chorus__now ();
    self->generation = 1;

    char *host = NULL;
    if (config->beacon_port > 0) {
        self->beacon = zactor_new (zbeacon, NULL);
        zsock_send (self->beacon, "si", "CONFIGURE", config->beacon_port);
        host = zstr_recv (self->beacon);
        if (!host || !*host) {
            zstr_free (&host);
            zactor_destroy (&self->beacon);
            return "no network interface for the UDP beacon";
        }
    }
    if (config->monitor)
        self->monitor = chorus__monitor_new (self->poller, s_monitor_event, self);
    chorus__keys_t *keys = config->keys;
    static char keys_error [256];
    if (keys && chorus__keys_start (keys, keys_error, sizeof (keys_error))) {
        zstr_free (&host);
        return keys_error;
    }
    if (keys)
        chorus_msg_want_user_id (self->msg, true);
    self->router = chorus__socket_new (ZMQ_ROUTER);
    if (!self->router) {
        zstr_free (&host);
        return "cannot create the inbox socket";
    }
    if (keys)
        chorus__keys_server (keys, self->router);
    zsock_set_router_handover (self->router, 1);
    zsock_set_rcvhwm (self->router, 100000);
    zsock_set_rcvtimeo (self->router, 0);
    zsock_set_maxmsgsize (self->router, S_MAX_FRAME);
    if (zmq_bind (self->router, config->listen) == -1) {
        zstr_free (&host);
        return "cannot bind the inbox endpoint";
    }
    char *bound = zsock_last_endpoint (self->router);
    self->endpoint = s_announced (bound, host);
    zstr_free (&bound);

    //  PUB on the same interface as the inbox, on an ephemeral port. An
    //  XPUB, so that we read the subscriptions ourselves: each observer
    //  gets every event and filters, and no observer can grow our
    //  subscription table without bound
    char *pub_bind = strdup (self->endpoint);
    char *colon = strrchr (pub_bind, ':');
    if (colon && strncmp (pub_bind, "tcp://", 6) == 0)
        strcpy (colon, ":0");
    else {
        free (pub_bind);
        pub_bind = zsys_sprintf ("%s-pub", self->endpoint);
    }
    self->pub = chorus__socket_new (ZMQ_XPUB);
    if (!self->pub) {
        free (pub_bind);
        zstr_free (&host);
        return "cannot create the PUB socket";
    }
    if (keys)
        chorus__keys_server (keys, self->pub);
    zsock_set_sndhwm (self->pub, 10000);
    zsock_set_xpub_manual (self->pub, 1);
    zsock_set_rcvhwm (self->pub, 1000);
    zsock_set_maxmsgsize (self->pub, S_MAX_FRAME);
    if (zmq_bind (self->pub, pub_bind) == -1) {
        free (pub_bind);
        zstr_free (&host);
        return "cannot bind the PUB endpoint";
    }
    free (pub_bind);
    bound = zsock_last_endpoint (self->pub);
    self->pub_endpoint = s_announced (bound, host);
    zstr_free (&bound);
    zstr_free (&host);

    zpoller_add (self->poller, self->router);
    zpoller_add (self->poller, self->pub);
    //  Every peer holds one connection into our inbox, and every observer
    //  one into our PUB; room beyond that is for nodes on their way in
    size_t peers = (size_t) config->max_peers;
    self->inbox_gate = chorus__gate_new (self->router, peers + (size_t) config->max_pending + 64,
                                         self->monitor, "inbox");
    self->pub_gate = chorus__gate_new (self->pub, peers + 64, self->monitor, "pub");
    if (!self->inbox_gate || !self->pub_gate)
        return "cannot watch the inbox and PUB connections";
    zpoller_add (self->poller, chorus__gate_socket (self->inbox_gate));
    zpoller_add (self->poller, chorus__gate_socket (self->pub_gate));
    if (self->beacon) {
        int port = atoi (strrchr (self->endpoint, ':') + 1);
        chorus__peers_beacon (self, port);
        zsock_send (self->beacon, "sb", "SUBSCRIBE", keys? "CHO\x02": "CHO\x01", 4);
        zpoller_add (self->poller, self->beacon);
    }
    for (char *seed = (char *) zlist_first (config->seeds); seed;
         seed = (char *) zlist_next (config->seeds))
        chorus__peers_add_seed (self, seed);
    chorus__engine_log (self, "started at %s (pub %s)", self->endpoint, self->pub_endpoint);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Timers

//  A connection whose key is still trusted is kept
static bool
s_key_trusted (const char *key, void *arg)
{
    chorus__engine_t *self = (chorus__engine_t *) arg;
    return chorus__keys_lookup (self->config->keys, key) != NULL;
}

//  The trust directory changed: peers whose key is no longer trusted, or
//  no longer for their service, are cut off, and cannot come back
static void
s_trust_changed (chorus__engine_t *self)
{
    chorus__keys_t *keys = self->config->keys;
    zlistx_t *instances = zhashx_keys (self->peers);
    for (const char *instance = (const char *) zlistx_first (instances); instance;
         instance = (const char *) zlistx_next (instances)) {
        chorus__peer_t *peer = chorus__engine_peer (self, instance);
        if (!peer || !peer->key)
            continue;
        peer->grant = chorus__keys_lookup (keys, peer->key);
        if (!peer->grant || !chorus__grant_service (peer->grant, peer->service)) {
            self->counters [C_REVOKED]++;
            chorus__engine_warn (self, W_REVOKED, "key %s of %s/%.8s is no longer trusted "
                                 "for its service: cut off", peer->key, peer->service,
                                 peer->instance);
            chorus__peers_remove (self, peer, CHORUS_PEER_EXPIRED);
        }
    }
    zlistx_destroy (&instances);
    chorus__peers_revoke_pending (self);
    chorus__gate_cut (self->inbox_gate, s_key_trusted, self);
    chorus__gate_cut (self->pub_gate, s_key_trusted, self);
}

static void
s_tick (chorus__engine_t *self)
{
    uint64_t now = chorus__mono ();
    if (self->config->keys && chorus__keys_reload (self->config->keys))
        s_trust_changed (self);
    chorus__peers_tick (self, now);
    chorus__delivery_tick (self->delivery, now);
    chorus__commands_tick (self->commands, now);
    if (self->observer)
        chorus__observer_tick (self->observer, now);
    //  Records carry wall-clock times: they outlive the process
    uint64_t wall = chorus__now ();
    if (wall > S_INBOX_KEEP_MS
    &&  chorus_store_inbox_expire (self->store, wall - S_INBOX_KEEP_MS, 1000) == -1)
        chorus__engine_warn (self, W_STORE, "inbox expiry: %s", chorus_store_error (self->store));
}

//  Connections that came to the inbox or the PUB, beyond the bound shut out
static void
s_gate (chorus__engine_t *self, chorus__gate_t *gate, const char *name)
{
    chorus__gate_report_t report;
    size_t refused = chorus__gate_recv (gate, &report);
    if (report.unauthorised) {
        //  Our ZAP handler knows the key and the address
        char address [64], key [41];
        size_t refusals = self->config->keys? chorus__keys_refusals (self->config->keys, address,
                                                  sizeof (address), key, sizeof (key)): 0;
        self->counters [C_UNAUTHORISED] += report.unauthorised;
        char last [160] = "";
        if (refusals)
            snprintf (last, sizeof (last), " (last: key %s from %s)", key, address);
        chorus__engine_warn (self, W_UNTRUSTED, "refused %zu connection%s to our %s: key not "
                             "in the trust directory%s", report.unauthorised,
                             report.unauthorised == 1? "": "s", name, last);
    }
    if (report.failed) {
        self->counters [C_HANDSHAKES_FAILED] += report.failed;
        //  A plaintext peer may hang up on reading our greeting before we
        //  read its own: then all we know is that it broke off
        const char *mismatch = self->config->keys? "a plaintext peer on a secure mesh":
                                                   "a secure (CURVE) peer on a plaintext mesh";
        char why [160];
        if (report.broken_off)
            snprintf (why, sizeof (why), "the peer broke off the handshake (%s): %s, a peer "
                      "that expected another key, or one that went away",
                      strerror (report.failure), mismatch);
        else
        if (report.failure == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
            snprintf (why, sizeof (why), "%s", mismatch);
        else
            snprintf (why, sizeof (why), "the handshake failed (protocol error 0x%x)",
                      (unsigned) report.failure);
        chorus__engine_warn (self, W_HANDSHAKE, "refused %zu connection%s to our %s: %s",
                             report.failed, report.failed == 1? "": "s", name, why);
    }
    if (refused) {
        self->counters [C_CONNECTIONS_REFUSED] += refused;
        chorus__engine_warn (self, W_SHUT_OUT, "shut out %zu connection%s to our %s: %zu open, "
                             "the most it takes", refused, refused == 1? "": "s", name,
                             chorus__gate_open (gate));
    }
}

//  Subscriptions arriving on our XPUB: whatever prefix an observer asks
//  for, it gets every event (it filters), so the table holds one entry per
//  connection at most
static void
s_recv_subscriptions (chorus__engine_t *self)
{
    for (int count = 0; count < 1000; count++) {
        zmq_msg_t msg;
        zmq_msg_init (&msg);
        if (zmq_msg_recv (&msg, self->pub, ZMQ_DONTWAIT) == -1) {
            zmq_msg_close (&msg);
            break;
        }
        bool subscribe = zmq_msg_size (&msg) > 0 && *(uint8_t *) zmq_msg_data (&msg) == 1;
        //  Which key each observer's connection is, so that a key revoked
        //  can be cut off
        const char *key = self->config->keys? zmq_msg_gets (&msg, "User-Id"): NULL;
        if (subscribe && key && *key && self->pub_gate)
            chorus__gate_tag (self->pub_gate, zmq_msg_get (&msg, ZMQ_SRCFD), key);
        zmq_msg_close (&msg);
        if (subscribe)      //  applies to the connection that sent it
            zmq_setsockopt (self->pub, ZMQ_SUBSCRIBE, "", 0);
    }
}

//  --------------------------------------------------------------------------
//  The control pipe and the work pipe

static void
s_reply_peers (chorus__engine_t *self)
{
    zmsg_t *reply = zmsg_new ();
    zmsg_addstrf (reply, "%zu", zhashx_size (self->peers));    //  never an empty message
    for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (self->peers); peer;
         peer = (chorus__peer_t *) zhashx_next (self->peers)) {
        zmsg_addstr (reply, peer->service);
        zmsg_addstr (reply, peer->instance);
        zmsg_addstr (reply, peer->endpoint);
        zmsg_addstr (reply, peer->pub_endpoint);
        char *subs = chorus__peer_subs_text (peer);
        zmsg_addstr (reply, subs);
        free (subs);
        zmsg_addstrf (reply, "%d", peer->evasive? CHORUS_PEER_EVASIVE: CHORUS_PEER_ALIVE);
        zmsg_addstrf (reply, "%" PRIu64, chorus__peer_seen_at (peer));
        zmsg_addstrf (reply, "%" PRIu64, peer->head);
        zmsg_addstr (reply, peer->key? peer->key: "");
    }
    zmsg_send (&reply, self->pipe);
}

static void
s_add_pending (const char *group, uint64_t pending, size_t instances, void *arg)
{
    zmsg_t *reply = (zmsg_t *) arg;
    zmsg_addstr (reply, group);
    zmsg_addstrf (reply, "%" PRIu64, pending);
    zmsg_addstrf (reply, "%zu", instances);
}

//  The groups with deliveries not yet acknowledged, as triples of frames
static void
s_reply_pending (chorus__engine_t *self)
{
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "PENDING");     //  never an empty message
    chorus__delivery_pending (self->delivery, s_add_pending, reply);
    zmsg_send (&reply, self->pipe);
}

static void
s_subscribe (chorus__engine_t *self, const char *prefix)
{
    uint64_t since = 0;
    int rc = chorus_store_subscription (self->store, prefix, chorus__now (),
                                        self->config->start_earliest, &since);
    if (rc == 0) {
        bool known = false;
        for (size_t i = 0; i < self->subs_size && !known; i++)
            known = streq (self->subs [i].prefix, prefix);
        if (!known) {
            chorus__subs_add (&self->subs, &self->subs_size, prefix, since,
                        self->config->durable? CHORUS_SUB_DURABLE: 0);
            self->announce = true;
        }
    }
    zsock_send (self->pipe, "i", rc);
}

static void
s_observe (chorus__engine_t *self, const char *prefix, int earliest)
{
    if (!self->observer)
        self->observer = chorus__observer_new (self);
    chorus__observer_add (self->observer, prefix, earliest != 0);
    zsock_send (self->pipe, "i", 0);
}

//  Events the application has published (durable already): to PUB as
//  stored, then to the groups
static void
s_on_published (chorus__engine_t *self)
{
    chorus__handoff_t *handoff = self->config->handoff;
    if (!self->published) {
        self->published = (chorus_msg_t **) calloc (handoff->max, sizeof (chorus_msg_t *));
        self->published_bodies = (zframe_t **) calloc (handoff->max, sizeof (zframe_t *));
        assert (self->published && self->published_bodies);
    }
    size_t count = chorus__handoff_take (handoff, self->published, self->published_bodies);
    for (size_t i = 0; i < count; i++) {
        self->counters [C_PUBLISHED]++;
        zframe_t *copy = zframe_dup (self->published_bodies [i]);
        chorus_msg_send_encoded (self->published [i], &copy, self->pub);
        chorus__delivery_published (self->delivery, self->published [i],
                                    self->published_bodies [i]);
    }
}

static void
s_on_request (chorus__engine_t *self, zmsg_t *request)
{
    char *command = zmsg_popstr (request);
    if (!command)
        ;
    else
    if (streq (command, "$TERM"))
        self->terminated = true;
    else
    if (streq (command, "START")) {
        const char *error = s_start (self);
        zsock_send (self->pipe, "isss", error? -1: 0, error? error: self->instance,
                    error? "": self->endpoint, error? "": self->pub_endpoint);
    }
    else
    if (streq (command, "PUBLISHED"))
        s_on_published (self);
    else
    if (streq (command, "SEND")) {
        zframe_t *frame = zmsg_pop (request);
        chorus_msg_t *msg = *(chorus_msg_t **) zframe_data (frame);
        zframe_destroy (&frame);
        chorus__commands_send (self->commands, msg);
    }
    else
    if (streq (command, "SUBSCRIBE")) {
        char *prefix = zmsg_popstr (request);
        s_subscribe (self, prefix);
        zstr_free (&prefix);
    }
    else
    if (streq (command, "OBSERVE")) {
        char *prefix = zmsg_popstr (request);
        char *earliest = zmsg_popstr (request);
        s_observe (self, prefix, earliest && streq (earliest, "1"));
        zstr_free (&prefix);
        zstr_free (&earliest);
    }
    else
    if (streq (command, "HANDLE")) {
        char *name = zmsg_popstr (request);
        zhashx_update (self->commands_handled, name, (void *) 1);
        zstr_free (&name);
    }
    else
    if (streq (command, "PEERS"))
        s_reply_peers (self);
    else
    if (streq (command, "PENDING"))
        s_reply_pending (self);
    else
    if (streq (command, "UNACKED"))
        zsock_send (self->pipe, "8", (uint64_t) chorus__delivery_unacked (self->delivery));
    else
    if (streq (command, "TRIM"))
        zsock_send (self->pipe, "i", chorus__delivery_retain (self->delivery, chorus__now ())
                                     ? 1: 0);
    else
    if (streq (command, "COUNTER")) {
        char *name = zmsg_popstr (request);
        uint64_t value = 0;
        for (int i = 0; i < C_COUNTERS; i++)
            if (name && streq (name, chorus__counter_names [i]))
                value = self->counters [i];
        zsock_send (self->pipe, "8", value);
        zstr_free (&name);
    }
    zstr_free (&command);
    zmsg_destroy (&request);
}

#define S_PIPE_BATCH 1000       //  requests read from the wrapper per turn

static void
s_recv_pipe (chorus__engine_t *self)
{
    zmsg_t *request = zmsg_recv (self->pipe);
    if (!request) {
        self->terminated = true;
        return;
    }
    //  Then what else is queued, without a poll per request
    for (int count = 0; request; count++) {
        s_on_request (self, request);
        request = count < S_PIPE_BATCH && !self->terminated? chorus__recv_ready (self->pipe)
                                                           : NULL;
    }
}

//  --------------------------------------------------------------------------
//  The actor

static chorus__engine_t *
s_engine_new (zsock_t *pipe, chorus__config_t *config)
{
    chorus__engine_t *self = (chorus__engine_t *) zmalloc (sizeof (chorus__engine_t));
    self->pipe = pipe;
    self->config = config;
    self->store = config->store;
    self->work = zsock_new (ZMQ_PAIR);
    zsock_set_sndhwm (self->work, 0);
    zsock_set_rcvhwm (self->work, 0);
    zsock_connect (self->work, "%s", config->work_endpoint);
    self->poller = zpoller_new (pipe, self->work, NULL);
    //  A signal is the application's business: the engine stops only on
    //  $TERM, so that calls made after Ctrl-C still get answers
    zpoller_set_nonstop (self->poller, true);
    self->peers = zhashx_new ();
    self->pending = zhashx_new ();
    self->seeds = zhashx_new ();
    self->admission = zhashx_new ();
    self->commands_handled = zhashx_new ();
    self->events_in_hand = zhashx_new ();
    self->msg = chorus_msg_new (CHORUS_MSG_PING);
    self->ack = chorus_msg_new (CHORUS_MSG_EVENT_ACK);
    self->delivery = chorus__delivery_new (self);
    self->commands = chorus__commands_new (self);
    return self;
}

static void
s_engine_destroy (chorus__engine_t **self_p)
{
    chorus__engine_t *self = *self_p;
    if (!self)
        return;
    //  Results the application sent before we were told to stop are
    //  recorded and answered, so that work done is not done again
    if (self->router)
        chorus__inbox_results (self);
    //  Say goodbye, so that peers move our work at once
    if (self->router) {
        chorus_msg_t *bye = chorus__engine_msg (self, CHORUS_MSG_BYE);
        //  Over a copy of the ids: a send may greet first, and the HELLO
        //  walks the peer table itself
        zlistx_t *instances = zhashx_keys (self->peers);
        for (const char *instance = (const char *) zlistx_first (instances); instance;
             instance = (const char *) zlistx_next (instances)) {
            chorus__peer_t *peer = chorus__engine_peer (self, instance);
            if (peer && peer->dealer) {
                //  What is queued to a connected peer (acknowledgements,
                //  replies, a TRUNCATED, this BYE) gets up to a second to
                //  leave; nothing waits for a peer that is not connected
                zsock_set_linger (peer->dealer, 1000);
                chorus__engine_send (self, peer, bye);
            }
        }
        zlistx_destroy (&instances);
        chorus_msg_destroy (&bye);
    }
    if (self->beacon) {
        chorus__peers_beacon (self, 0);
        zactor_destroy (&self->beacon);
    }
    chorus__observer_destroy (&self->observer);
    chorus__commands_destroy (&self->commands);
    chorus__delivery_destroy (&self->delivery);
    for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (self->peers); peer;
         peer = (chorus__peer_t *) zhashx_next (self->peers))
        chorus__peer_destroy (&peer);
    zhashx_destroy (&self->peers);
    chorus__peers_close_all (self);
    zhashx_destroy (&self->pending);
    zhashx_destroy (&self->seeds);
    zhashx_destroy (&self->admission);
    zhashx_destroy (&self->commands_handled);
    zhashx_destroy (&self->events_in_hand);
    chorus__subs_free (&self->subs, &self->subs_size);
    chorus__monitor_destroy (&self->monitor);   //  its sockets are closed
    zpoller_destroy (&self->poller);
    chorus__gate_destroy (&self->inbox_gate);
    chorus__gate_destroy (&self->pub_gate);
    chorus__socket_destroy (&self->router);
    chorus__socket_destroy (&self->pub);
    if (self->config->keys)
        chorus__keys_stop (self->config->keys);     //  our sockets are closed
    //  Work that will never run now: results the application sent that we
    //  did not read, and a batch we did not send
    chorus__batch_discard_queued (self->work);
    zsock_destroy (&self->work);
    chorus_msg_destroy (&self->msg);
    chorus_msg_destroy (&self->ack);
    chorus__batch_discard (&self->handover);
    free (self->results);
    free (self->published);
    free (self->published_bodies);
    free (self->instance);
    free (self->endpoint);
    free (self->pub_endpoint);
    free (self);
    *self_p = NULL;
}

void
chorus__engine_actor (zsock_t *pipe, void *args)
{
    chorus__engine_t *self = s_engine_new (pipe, (chorus__config_t *) args);
    zsock_signal (pipe, 0);
    uint64_t next_tick = chorus__mono () + S_TICK_MS;
    while (!self->terminated) {
        uint64_t now = chorus__mono ();
        int timeout = now >= next_tick? 0: (int) (next_tick - now);
        void *which = zpoller_wait (self->poller, timeout);
        if (which == pipe)
            s_recv_pipe (self);
        else
        if (which == self->work)
            chorus__inbox_results (self);
        else
        if (which && which == self->router)     //  no inbox before START
            s_recv_router (self);
        else
        if (which && which == self->pub)
            s_recv_subscriptions (self);
        else
        if (which && self->inbox_gate && which == chorus__gate_socket (self->inbox_gate))
            s_gate (self, self->inbox_gate, "inbox");
        else
        if (which && self->pub_gate && which == chorus__gate_socket (self->pub_gate))
            s_gate (self, self->pub_gate, "PUB");
        else
        if (self->beacon && which == (void *) self->beacon)
            chorus__peers_recv_beacon (self);
        else
        if (which && self->observer && chorus__observer_recv (self->observer, which))
            ;
        else
        if (which && self->monitor && chorus__monitor_recv (self->monitor, which))
            ;
        else
        if (zpoller_terminated (self->poller))
            break;
        if (self->connecting && next_tick > chorus__mono () + S_CONNECTING_TICK_MS)
            next_tick = chorus__mono () + S_CONNECTING_TICK_MS;
        if (self->router && chorus__mono () >= next_tick) {
            s_tick (self);
            //  A HELLO waiting for its connection, and what waits behind it,
            //  should not wait a whole tick more: meeting is the slow part
            //  of a short-lived node's life
            next_tick = chorus__mono () + (self->connecting? S_CONNECTING_TICK_MS: S_TICK_MS);
        }
        chorus__engine_flush (self);
    }
    chorus__engine_flush (self);    //  the wrapper frees what it holds
    s_engine_destroy (&self);
}
