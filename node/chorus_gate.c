/*  chorus_gate.c — a bound on the connections a listening socket accepts.
    ZeroMQ accepts every TCP connection and keeps buffers for each, and a
    ROUTER cannot close one; so the gate watches the socket's connections
    through a ZeroMQ monitor and shuts down each one accepted beyond its
    bound (protocol section 4.5). The peer that was shut out may come back
    later, when there is room.
*/
#include "chorus_gate.h"

#include <sys/socket.h>
#include <netinet/in.h>

struct _chorus__gate_t {
    void *socket;               //  the socket watched
    void *monitor;              //  events from it (PAIR)
    zhashx_t *open;             //  "fd" of each connection we let in -> s_conn_t
    zhashx_t *early;            //  "fd" -> instance: named before we read that it
                                //  was accepted (its messages came first)
    size_t max;                 //  connections let in at most
    chorus__monitor_t *told;    //  told of every event, or NULL
    char name [16];             //  the socket's name for it
    uint64_t broken_off_at;     //  monotonic ms of the last broken-off handshake, or 0
};

//  A peer that goes away in the middle of its handshake (a short-lived
//  chorus command that got what it came for, or one that was killed)
//  breaks it off once; a peer that cannot speak to us (security or keys
//  that do not match) reconnects, and breaks it off again within this
#define S_REPEAT_MS 5000

//  A connection let in, and the key that authenticated on it, once known
typedef struct {
    int fd;                     //  its descriptor, owned by ZeroMQ
    char key [41];              //  Z85 key, or ""
    char instance [33];         //  the peer that speaks on it, once known, or ""
    struct sockaddr_storage peer;   //  its remote address when tagged
    socklen_t peer_size;
} s_conn_t;

static void
s_conn_destroy (void **item)
{
    free (*item);
    *item = NULL;
}

chorus__gate_t *
chorus__gate_new (void *socket, size_t max, chorus__monitor_t *monitor, const char *name)
{
    char endpoint [64];
    snprintf (endpoint, sizeof (endpoint), "inproc://chorus-gate-%p", socket);
    int events = ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH
               | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
    if (zmq_socket_monitor (socket, endpoint, monitor? ZMQ_EVENT_ALL: events))
        return NULL;
    chorus__gate_t *self = (chorus__gate_t *) zmalloc (sizeof (chorus__gate_t));
    self->socket = socket;
    self->max = max;
    self->told = monitor;
    snprintf (self->name, sizeof (self->name), "%s", name);
    self->open = zhashx_new ();
    zhashx_set_destructor (self->open, s_conn_destroy);
    self->early = zhashx_new ();
    zhashx_set_destructor (self->early, (zhashx_destructor_fn *) zstr_free);
    self->monitor = chorus__socket_new (ZMQ_PAIR);
    //  The monitor's sender blocks ZeroMQ's I/O thread when we do not read:
    //  no bound on what may wait here
    if (self->monitor) {
        zsock_set_rcvhwm (self->monitor, 0);
        zsock_set_rcvtimeo (self->monitor, 0);
    }
    if (!self->monitor || zmq_connect (self->monitor, endpoint))
        chorus__gate_destroy (&self);
    return self;
}

void
chorus__gate_destroy (chorus__gate_t **self_p)
{
    chorus__gate_t *self = *self_p;
    if (self) {
        //  Stop the events first: with no reader, the monitor's sender
        //  would wait for one
        zmq_socket_monitor (self->socket, NULL, 0);
        chorus__socket_destroy (&self->monitor);
        zhashx_destroy (&self->open);
        zhashx_destroy (&self->early);
        free (self);
        *self_p = NULL;
    }
}

void *
chorus__gate_socket (chorus__gate_t *self)
{
    return self->monitor;
}

size_t
chorus__gate_open (chorus__gate_t *self)
{
    return zhashx_size (self->open);
}

//  One monitor event: a frame of event (2 bytes) and value (4 bytes, the
//  connection's file descriptor for ours), then one of the endpoint
static bool
s_event (chorus__gate_t *self, uint16_t *event, int *fd, char *endpoint, size_t size)
{
    *endpoint = 0;
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    if (zmq_msg_recv (&frame, self->monitor, ZMQ_DONTWAIT) == -1) {
        zmq_msg_close (&frame);
        return false;
    }
    bool valid = zmq_msg_size (&frame) == 6;
    if (valid) {
        uint32_t value;
        memcpy (event, zmq_msg_data (&frame), 2);
        memcpy (&value, (uint8_t *) zmq_msg_data (&frame) + 2, 4);
        *fd = (int) value;
    }
    bool more = zmq_msg_more (&frame);
    zmq_msg_close (&frame);
    while (more) {      //  the endpoint
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, self->monitor, 0) == -1)
            more = false;
        else {
            more = zmq_msg_more (&frame);
            snprintf (endpoint, size, "%.*s", (int) zmq_msg_size (&frame),
                      (char *) zmq_msg_data (&frame));
        }
        zmq_msg_close (&frame);
    }
    if (!valid)
        *event = 0;
    return true;
}

size_t
chorus__gate_recv (chorus__gate_t *self, chorus__gate_report_t *report)
{
    memset (report, 0, sizeof (*report));
    size_t refused = 0;
    uint16_t event = 0;
    int fd = -1;
    char endpoint [257];
    for (int count = 0; count < 10000
                    && s_event (self, &event, &fd, endpoint, sizeof (endpoint)); count++) {
        if (self->told)         //  before a refused connection is shut down
            chorus__monitor_event (self->told, self->name, event, (uint32_t) fd, endpoint);
        char key [16];
        snprintf (key, sizeof (key), "%d", fd);
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
            report->unauthorised++;     //  the value is the ZAP status code
        else
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) {
            uint64_t now = chorus__mono ();
            bool repeated = self->broken_off_at && now - self->broken_off_at < S_REPEAT_MS;
            self->broken_off_at = now;
            if (!repeated) {
                report->lone++;
                report->lone_failure = fd;      //  errno
            }
            else {
                report->failed++;
                report->failure = fd;   //  errno
                report->broken_off = true;
            }
        }
        else
        if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
            report->failed++;
            report->failure = fd;       //  the value is the protocol error
            report->broken_off = false;
        }
        else
        if (event == ZMQ_EVENT_ACCEPTED) {
            if (zhashx_size (self->open) < self->max) {
                s_conn_t *conn = (s_conn_t *) zmalloc (sizeof (s_conn_t));
                conn->fd = fd;
                const char *early = (const char *) zhashx_lookup (self->early, key);
                if (early) {
                    snprintf (conn->instance, sizeof (conn->instance), "%s", early);
                    zhashx_delete (self->early, key);
                }
                zhashx_update (self->open, key, conn);
            }
            else {
                //  Not close: ZeroMQ owns the descriptor; it sees the end of
                //  the connection and closes it itself
                shutdown (fd, SHUT_RDWR);
                refused++;
            }
        }
        else
        if (event == ZMQ_EVENT_DISCONNECTED) {
            s_conn_t *conn = (s_conn_t *) zhashx_lookup (self->open, key);
            if (conn && conn->instance [0] && report->closed_size < CHORUS__GATE_CLOSED)
                memcpy (report->closed [report->closed_size++], conn->instance, 33);
            zhashx_delete (self->open, key);
        }
    }
    report->refused = refused;
    return refused;
}

void
chorus__gate_tag (chorus__gate_t *self, int fd, const char *key)
{
    //  Only a connection we know is open: a descriptor whose closing we
    //  have not read yet may be another file's by now
    char name [16];
    snprintf (name, sizeof (name), "%d", fd);
    s_conn_t *conn = (s_conn_t *) zhashx_lookup (self->open, name);
    if (!conn || streq (conn->key, key))
        return;
    snprintf (conn->key, sizeof (conn->key), "%s", key);
    conn->peer_size = sizeof (conn->peer);
    if (getpeername (fd, (struct sockaddr *) &conn->peer, &conn->peer_size))
        conn->peer_size = 0;
}

void
chorus__gate_name (chorus__gate_t *self, int fd, const char *instance)
{
    char name [16];
    snprintf (name, sizeof (name), "%d", fd);
    s_conn_t *conn = (s_conn_t *) zhashx_lookup (self->open, name);
    if (conn)
        snprintf (conn->instance, sizeof (conn->instance), "%s", instance);
    else {
        //  The peer's messages came before the event that its connection
        //  was accepted, which we have not read yet: the name waits for it.
        //  Kept within the bound on connections, none of them stale for
        //  long (each is taken at the next read of the events)
        if (zhashx_size (self->early) >= self->max + 1)
            zhashx_purge (self->early);
        zhashx_update (self->early, name, strdup (instance));
    }
}

size_t
chorus__gate_cut (chorus__gate_t *self, chorus__gate_keep_fn *keep, void *arg)
{
    chorus__gate_report_t report;
    chorus__gate_recv (self, &report);      //  what closed is forgotten first
    size_t cut = 0;
    for (s_conn_t *conn = (s_conn_t *) zhashx_first (self->open); conn;
         conn = (s_conn_t *) zhashx_next (self->open)) {
        if (!conn->key [0] || keep (conn->key, arg))
            continue;
        //  Still the same connection: the same remote address as when it
        //  was tagged
        struct sockaddr_storage peer;
        socklen_t peer_size = sizeof (peer);
        if (conn->peer_size && getpeername (conn->fd, (struct sockaddr *) &peer, &peer_size) == 0
        &&  peer_size == conn->peer_size && memcmp (&peer, &conn->peer, peer_size) == 0) {
            shutdown (conn->fd, SHUT_RDWR);     //  ZeroMQ sees it end and closes it
            cut++;
        }
        conn->key [0] = 0;
    }
    return cut;
}

//  --------------------------------------------------------------------------
//  Self-test

//  A connection from a DEALER: its first message read on the inbox, and
//  the descriptor it came over
static void *
s_test_connect (void *inbox, const char *endpoint, int *fd)
{
    void *dealer = chorus__socket_new (ZMQ_DEALER);
    CHORUS__CHECK (dealer && zmq_connect (dealer, endpoint) == 0);
    CHORUS__CHECK (zmq_send (dealer, "hi", 2, 0) == 2);
    zmq_msg_t frame;
    zmq_msg_init (&frame);
    CHORUS__CHECK (zmq_msg_recv (&frame, inbox, 0) >= 0);     //  the routing id
    CHORUS__CHECK (zmq_msg_more (&frame));
    CHORUS__CHECK (zmq_msg_recv (&frame, inbox, 0) == 2);
    *fd = zmq_msg_get (&frame, ZMQ_SRCFD);
    CHORUS__CHECK (*fd >= 0);
    zmq_msg_close (&frame);
    return dealer;
}

//  Counts the connections whose end the gate has read
static void
s_test_event (const char *event, const char *socket, const char *peer, const char *detail,
              void *arg)
{
    (void) socket, (void) peer, (void) detail;
    if (streq (event, "disconnected"))
        (*(size_t *) arg)++;
}

//  Closes a connection and reads the events until its end is read;
//  returns what the gate reported closed on the way
static chorus__gate_report_t
s_test_close (chorus__gate_t *self, void **dealer_p, size_t *ended)
{
    size_t ended_before = *ended;
    chorus__socket_destroy (dealer_p);
    chorus__gate_report_t report, seen;
    memset (&seen, 0, sizeof (seen));
    zpoller_t *poller = zpoller_new (chorus__gate_socket (self), NULL);
    while (*ended == ended_before) {
        CHORUS__CHECK (zpoller_wait (poller, 5000) == chorus__gate_socket (self));
        chorus__gate_recv (self, &report);
        for (size_t i = 0; i < report.closed_size; i++)
            memcpy (seen.closed [seen.closed_size++], report.closed [i], 33);
    }
    zpoller_destroy (&poller);
    return seen;
}

void
chorus__gate_test (bool verbose)
{
    if (verbose)
        printf (" * chorus__gate: ");
    void *inbox = chorus__socket_new (ZMQ_ROUTER);
    CHORUS__CHECK (inbox && zmq_bind (inbox, "tcp://127.0.0.1:*") == 0);
    int timeout = 5000;
    CHORUS__CHECK (zmq_setsockopt (inbox, ZMQ_RCVTIMEO, &timeout, sizeof (timeout)) == 0);
    char endpoint [64];
    size_t size = sizeof (endpoint);
    CHORUS__CHECK (zmq_getsockopt (inbox, ZMQ_LAST_ENDPOINT, endpoint, &size) == 0);
    //  The monitor tells us when the gate has read a connection's end
    size_t ended = 0;
    chorus__poller_t *unused = chorus__poller_new ();
    chorus__monitor_t *monitor = chorus__monitor_new (unused, s_test_event, &ended);
    chorus__gate_t *self = chorus__gate_new (inbox, 8, monitor, "inbox");
    CHORUS__CHECK (monitor && self);
    const char *first = "0123456789ABCDEF0123456789ABCDEF";
    const char *second = "FEDCBA9876543210FEDCBA9876543210";

    //  Named once its acceptance is read: its closing names the peer
    int fd;
    void *dealer = s_test_connect (inbox, endpoint, &fd);
    chorus__gate_report_t report;
    zpoller_t *poller = zpoller_new (chorus__gate_socket (self), NULL);
    while (chorus__gate_open (self) == 0) {
        CHORUS__CHECK (zpoller_wait (poller, 5000) == chorus__gate_socket (self));
        chorus__gate_recv (self, &report);
    }
    zpoller_destroy (&poller);
    chorus__gate_name (self, fd, first);
    report = s_test_close (self, &dealer, &ended);
    CHORUS__CHECK (report.closed_size == 1 && streq (report.closed [0], first));

    //  Named before its acceptance is read (the engine reads the inbox
    //  before the gate's events): the name waits, and the closing still
    //  names the peer
    dealer = s_test_connect (inbox, endpoint, &fd);
    CHORUS__CHECK (chorus__gate_open (self) == 0);
    chorus__gate_name (self, fd, second);
    report = s_test_close (self, &dealer, &ended);
    CHORUS__CHECK (report.closed_size == 1 && streq (report.closed [0], second));

    //  Never named: its closing names no one
    dealer = s_test_connect (inbox, endpoint, &fd);
    report = s_test_close (self, &dealer, &ended);
    CHORUS__CHECK (report.closed_size == 0);

    chorus__gate_destroy (&self);
    chorus__monitor_destroy (&monitor);
    chorus__poller_destroy (&unused);
    chorus__socket_destroy (&inbox);
    if (verbose)
        printf ("OK\n");
}
