/*  chorus_fake.c — a context for the self-tests of the engine's classes.
*/
#include "chorus_fake.h"


struct _chorus__fake_t {
    chorus__context_t context;  //  what the classes under test get
    chorus__config_t config;    //  the node's defaults
    char dir [256];             //  the store's temporary directory
    zsock_t *app;               //  the application's end of the work pipe
    zhashx_t *peers;            //  the peer table
    zhashx_t *routers;          //  endpoint -> zsock_t, what peers' connections reach
    zmsg_t *batch;              //  the batch of work being read
    size_t pos;                 //  where in it
};

chorus__fake_t *
chorus__fake_new (const char *service)
{
    chorus__fake_t *self = (chorus__fake_t *) zmalloc (sizeof (chorus__fake_t));
    chorus__config_t *config = &self->config;
    config->service = strdup (service);
    config->mesh = strdup ("default");
    config->listen = strdup ("inproc://chorus-fake-inbox");
    config->seeds = zlist_new ();
    zlist_autofree (config->seeds);
    config->heartbeat_ms = 1000;
    config->evasive_ms = 3000;
    config->expired_ms = 5000;
    config->credit_window = 1000;
    config->ack_timeout_ms = 30000;
    config->retention_policy = CHORUS_RETAIN_REFUSE;
    config->durable = true;
    config->command_retry_ms = 10000;
    config->observe_hwm = 1000;
    config->max_peers = 400;
    config->max_pending = 64;
    config->peer_rate = 20;
    config->idle_close_ms = 30000;
    config->work_endpoint = zsys_sprintf ("inproc://chorus-fake-work-%p", (void *) self);

    const char *tmp = getenv ("TMPDIR");
    snprintf (self->dir, sizeof (self->dir), "%s/chorus-fake-XXXXXX", tmp && *tmp? tmp: "/tmp");
    CHORUS__CHECK (mkdtemp (self->dir));
    char error [512];
    config->store = chorus_store_new (self->dir, error, sizeof (error), NULL);
    CHORUS__CHECK (config->store);

    chorus__context_init (&self->context, config, config->store);
    snprintf (self->context.instance, sizeof (self->context.instance), "%s",
              chorus_store_instance (config->store));
    self->app = zsock_new (ZMQ_PAIR);
    CHORUS__CHECK (self->app && zsock_bind (self->app, "%s", config->work_endpoint) == 0);
    self->context.work = zsock_new (ZMQ_PAIR);
    CHORUS__CHECK (zsock_connect (self->context.work, "%s", config->work_endpoint) == 0);
    self->context.poller = chorus__poller_new ();
    self->peers = zhashx_new ();
    self->context.peers = self->peers;
    self->routers = zhashx_new ();
    return self;
}

void
chorus__fake_destroy (chorus__fake_t **self_p)
{
    chorus__fake_t *self = *self_p;
    if (!self)
        return;
    for (chorus__peer_t *peer = (chorus__peer_t *) zhashx_first (self->peers); peer;
         peer = (chorus__peer_t *) zhashx_next (self->peers))
        chorus__peer_destroy (&peer);
    zhashx_destroy (&self->peers);
    for (zsock_t *router = (zsock_t *) zhashx_first (self->routers); router;
         router = (zsock_t *) zhashx_next (self->routers))
        zsock_destroy (&router);
    zhashx_destroy (&self->routers);
    zmsg_destroy (&self->batch);     //  the test destroyed what it read
    chorus__batch_discard_queued (self->app);
    chorus__context_fini (&self->context);
    chorus__poller_destroy (&self->context.poller);
    zsock_destroy (&self->context.work);
    zsock_destroy (&self->app);
    chorus__config_t *config = &self->config;
    chorus_store_destroy (&config->store);
    zdir_t *dir = zdir_new (self->dir, NULL);
    if (dir)
        zdir_remove (dir, true);
    zdir_destroy (&dir);
    free (config->service);
    free (config->mesh);
    free (config->listen);
    zlist_destroy (&config->seeds);
    free (config->work_endpoint);
    free (self);
    *self_p = NULL;
}

chorus__context_t *
chorus__fake_context (chorus__fake_t *self)
{
    return &self->context;
}

const char *
chorus__fake_endpoint (chorus__fake_t *self, const char *name)
{
    char endpoint [128];
    snprintf (endpoint, sizeof (endpoint), "inproc://chorus-fake-%p-%s", (void *) self, name);
    if (!zhashx_lookup (self->routers, endpoint)) {
        zsock_t *router = zsock_new (ZMQ_ROUTER);
        CHORUS__CHECK (router);
        //  As a node's inbox: a connection opened again takes its routing
        //  id over (protocol section 5)
        zsock_set_router_handover (router, 1);
        CHORUS__CHECK (zsock_bind (router, "%s", endpoint) == 0);
        zhashx_insert (self->routers, endpoint, router);
    }
    //  The table's own copy of the name lives as long as the fake
    for (zsock_t *router = (zsock_t *) zhashx_first (self->routers); router;
         router = (zsock_t *) zhashx_next (self->routers))
        if (streq ((const char *) zhashx_cursor (self->routers), endpoint))
            return (const char *) zhashx_cursor (self->routers);
    return NULL;
}

static int
s_greeted (chorus__peer_t *peer, void *arg)
{
    return 0;       //  as if our HELLO had gone
}

chorus__peer_t *
chorus__fake_peer (chorus__fake_t *self, const char *instance, const char *service)
{
    const char *endpoint = chorus__fake_endpoint (self, instance);
    void *dealer = chorus__socket_new (ZMQ_DEALER);
    CHORUS__CHECK (dealer && zmq_connect (dealer, endpoint) == 0);
    char pub [160];
    snprintf (pub, sizeof (pub), "%s-pub", endpoint);
    chorus__peer_t *peer = chorus__peer_new (instance, service, endpoint, pub, dealer, NULL);
    chorus__peer_set_greeter (peer, s_greeted, NULL);
    zhashx_insert (self->peers, peer->instance, peer);
    return peer;
}

void
chorus__fake_forget (chorus__fake_t *self, chorus__peer_t *peer)
{
    zhashx_delete (self->peers, peer->instance);
    chorus__peer_destroy (&peer);
}

chorus_msg_t *
chorus__fake_sent (chorus__fake_t *self, const char *endpoint, int timeout)
{
    zsock_t *router = (zsock_t *) zhashx_lookup (self->routers, endpoint);
    CHORUS__CHECK (router);
    zsock_set_rcvtimeo (router, timeout);
    zmsg_t *msg = zmsg_recv (router);
    if (!msg)
        return NULL;
    zframe_t *body = zmsg_last (msg);
    chorus_msg_t *decoded = chorus_msg_new (CHORUS_MSG_PING);
    int rc = chorus_msg_decode (decoded, zframe_data (body), zframe_size (body));
    zmsg_destroy (&msg);
    CHORUS__CHECK (rc == 0);
    return decoded;
}

char
chorus__fake_handed (chorus__fake_t *self, chorus_msg_t **msg_p, char *text, size_t size)
{
    chorus__context_flush (&self->context);
    *msg_p = NULL;
    if (text && size)
        *text = 0;
    //  One batch at a time: the records of a batch are read in turn
    while (true) {
        if (self->batch) {
            zframe_t *frame = zmsg_last (self->batch);
            chorus__work_t record;
            const char *record_text;
            if (chorus__batch_next (zframe_data (frame), zframe_size (frame), &self->pos, &record,
                                    &record_text)) {
                *msg_p = (chorus_msg_t *) record.first;
                if (text && size)
                    snprintf (text, size, "%.*s", (int) record.text_size, record_text);
                return record.kind;
            }
            zmsg_destroy (&self->batch);
            self->pos = 0;
        }
        zmsg_t *msg = chorus__recv_ready (self->app);
        if (!msg)
            return 0;
        zframe_t *kind = zmsg_first (msg);
        if (zframe_streq (kind, "B")) {
            self->batch = msg;
            continue;
        }
        char result = (char) *zframe_data (kind);
        if (text && size) {
            size_t used = 0;
            for (zframe_t *frame = zmsg_next (msg); frame && used + 1 < size;
                 frame = zmsg_next (msg))
                used += (size_t) snprintf (text + used, size - used, "%s%.*s", used? " ": "",
                                           (int) zframe_size (frame),
                                           (const char *) zframe_data (frame));
        }
        zmsg_destroy (&msg);
        return result;
    }
}

chorus_msg_t *
chorus__fake_event (chorus__fake_t *self, const char *instance, uint64_t seq,
                    const char *topic, const char *key, zframe_t **body_p)
{
    chorus_msg_t *event = chorus_msg_new (CHORUS_MSG_EVENT);
    char id [33];
    chorus__new_id (id);
    chorus_msg_set_id (event, id);
    chorus_msg_set_service (event, self->config.service);
    chorus_msg_set_instance (event, instance);
    chorus_msg_set_seq (event, seq);
    chorus_msg_set_topic (event, topic);
    if (key)
        chorus_msg_set_key (event, key);
    chorus_msg_set_correlation (event, id);
    chorus_msg_set_timestamp (event, chorus__now ());
    chorus_msg_set_payload (event, "{}", 2);
    zframe_t *body = chorus_msg_encode (event);
    CHORUS__CHECK (body);
    if (streq (instance, self->context.instance))
        CHORUS__CHECK (chorus_store_append (self->config.store, seq, chorus__now (),
                                            zframe_data (body), zframe_size (body)) == 0);
    if (body_p)
        *body_p = body;
    else
        zframe_destroy (&body);
    return event;
}

chorus_msg_t *
chorus__fake_dup (chorus_msg_t *msg)
{
    zframe_t *frame = chorus_msg_encode (msg);
    CHORUS__CHECK (frame);
    chorus_msg_t *copy = chorus_msg_new (chorus_msg_type (msg));
    CHORUS__CHECK (chorus_msg_decode (copy, zframe_data (frame), zframe_size (frame)) == 0);
    zframe_destroy (&frame);
    return copy;
}
