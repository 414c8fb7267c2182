/*  chorus_monitor.c — what a node's sockets do, for operators: connected,
    disconnected, retried, handshakes that failed and why. Each watched
    socket has a ZeroMQ monitor (a PAIR over inproc); when the socket is
    closed, its monitor says so and is closed too, so the owners of the
    sockets need not tell us.
*/
#include "chorus_monitor.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

struct _chorus__monitor_t {
    chorus__poller_t *poller;   //  the engine's, where our readers are polled
    zhashx_t *readers;          //  reader (PAIR) -> s_watch_t
    chorus__monitor_fn *fn;     //  told of each event
    void *arg;
};

//  One watched socket
typedef struct {
    void *reader;               //  its monitor's events (PAIR)
    char name [16];             //  "dealer", "sub"
} s_watch_t;

static void
s_key (void *reader, char *key)
{
    snprintf (key, 32, "%p", reader);
}

chorus__monitor_t *
chorus__monitor_new (chorus__poller_t *poller, chorus__monitor_fn *fn, void *arg)
{
    chorus__monitor_t *self = (chorus__monitor_t *) zmalloc (sizeof (chorus__monitor_t));
    self->poller = poller;
    self->readers = zhashx_new ();
    self->fn = fn;
    self->arg = arg;
    return self;
}

static void
s_unwatch (chorus__monitor_t *self, s_watch_t *watch)
{
    char key [32];
    s_key (watch->reader, key);
    chorus__poller_remove (self->poller, watch->reader);
    chorus__socket_destroy (&watch->reader);
    zhashx_delete (self->readers, key);
    free (watch);
}

void
chorus__monitor_destroy (chorus__monitor_t **self_p)
{
    chorus__monitor_t *self = *self_p;
    if (self) {
        zlistx_t *watches = zhashx_values (self->readers);
        for (s_watch_t *watch = (s_watch_t *) zlistx_first (watches); watch;
             watch = (s_watch_t *) zlistx_next (watches))
            s_unwatch (self, watch);
        zlistx_destroy (&watches);
        zhashx_destroy (&self->readers);
        free (self);
        *self_p = NULL;
    }
}

void
chorus__monitor_watch (chorus__monitor_t *self, void *socket, const char *name)
{
    char endpoint [64];
    snprintf (endpoint, sizeof (endpoint), "inproc://chorus-monitor-%p", socket);
    if (zmq_socket_monitor (socket, endpoint, ZMQ_EVENT_ALL))
        return;     //  watching is for operators: a socket goes on without it
    s_watch_t *watch = (s_watch_t *) zmalloc (sizeof (s_watch_t));
    snprintf (watch->name, sizeof (watch->name), "%s", name);
    watch->reader = chorus__socket_new (ZMQ_PAIR);
    if (watch->reader) {
        zsock_set_rcvhwm (watch->reader, 0);    //  the I/O thread must not wait for us
        zsock_set_rcvtimeo (watch->reader, 0);
    }
    if (!watch->reader || zmq_connect (watch->reader, endpoint)) {
        zmq_socket_monitor (socket, NULL, 0);
        chorus__socket_destroy (&watch->reader);
        free (watch);
        return;
    }
    char key [32];
    s_key (watch->reader, key);
    zhashx_insert (self->readers, key, watch);
    chorus__poller_add_quiet (self->poller, watch->reader);
}

//  The remote end of an accepted connection, "" if it is gone
static void
s_remote (int fd, char *text, size_t size)
{
    struct sockaddr_storage address;
    socklen_t length = sizeof (address);
    char host [INET6_ADDRSTRLEN] = "";
    text [0] = 0;
    if (getpeername (fd, (struct sockaddr *) &address, &length))
        return;
    if (address.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *) &address;
        inet_ntop (AF_INET, &in->sin_addr, host, sizeof (host));
        snprintf (text, size, "tcp://%s:%d", host, ntohs (in->sin_port));
    }
    else
    if (address.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &address;
        inet_ntop (AF_INET6, &in6->sin6_addr, host, sizeof (host));
        snprintf (text, size, "tcp://[%s]:%d", host, ntohs (in6->sin6_port));
    }
}

//  Why a handshake failed, from the event's value
static void
s_handshake_detail (uint16_t event, uint32_t value, char *detail, size_t size)
{
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        snprintf (detail, size, "authentication refused (ZAP status %u): key not trusted",
                  value);
    else
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)
        snprintf (detail, size, "the peer broke off the handshake (%s): a plaintext peer and "
                  "a secure one, a peer that expected another key, or one that went away",
                  value? strerror ((int) value): "no detail");
    else
    if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
        snprintf (detail, size, "security mechanism mismatch: a plaintext peer and a "
                  "secure (CURVE) one");
    else
    if (value >= ZMQ_PROTOCOL_ERROR_ZAP_UNSPECIFIED && value <= ZMQ_PROTOCOL_ERROR_ZAP_INVALID_METADATA)
        snprintf (detail, size, "ZAP protocol error 0x%x", value);
    else
        snprintf (detail, size, "protocol error 0x%x (a peer with another key than "
                  "expected, or not a Chorus node)", value);
}

void
chorus__monitor_event (chorus__monitor_t *self, const char *name, uint16_t event,
                       uint32_t value, const char *endpoint)
{
    const char *what = NULL;
    char detail [160] = "";
    char peer [320];
    snprintf (peer, sizeof (peer), "%s", endpoint);
    switch (event) {
        case ZMQ_EVENT_LISTENING: what = "listening"; break;
        case ZMQ_EVENT_BIND_FAILED:
            what = "bind-failed";
            snprintf (detail, sizeof (detail), "%s", strerror ((int) value));
            break;
        case ZMQ_EVENT_ACCEPTED: {
            what = "accepted";
            char remote [128];
            s_remote ((int) value, remote, sizeof (remote));
            if (*remote)
                snprintf (peer, sizeof (peer), "%s (on %s)", remote, endpoint);
            break;
        }
        case ZMQ_EVENT_ACCEPT_FAILED:
            what = "accept-failed";
            snprintf (detail, sizeof (detail), "%s", strerror ((int) value));
            break;
        case ZMQ_EVENT_CONNECTED: what = "connected"; break;
        case ZMQ_EVENT_CONNECT_RETRIED:
            what = "retried";
            snprintf (detail, sizeof (detail), "again in %u ms", value);
            break;
        case ZMQ_EVENT_DISCONNECTED: what = "disconnected"; break;
        case ZMQ_EVENT_CLOSED: what = "closed"; break;
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: what = "handshake-succeeded"; break;
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
            what = "handshake-failed";
            s_handshake_detail (event, value, detail, sizeof (detail));
            break;
        default: break;     //  connect delayed, close failed: nothing to say
    }
    if (what)
        self->fn (what, name, peer, detail, self->arg);
}

bool
chorus__monitor_recv (chorus__monitor_t *self, void *which)
{
    char key [32];
    s_key (which, key);
    s_watch_t *watch = (s_watch_t *) zhashx_lookup (self->readers, key);
    if (!watch)
        return false;
    for (int count = 0; count < 1000; count++) {
        zmq_msg_t frame;
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, watch->reader, ZMQ_DONTWAIT) == -1) {
            zmq_msg_close (&frame);
            break;
        }
        uint16_t event = 0;
        uint32_t value = 0;
        if (zmq_msg_size (&frame) == 6) {
            memcpy (&event, zmq_msg_data (&frame), 2);
            memcpy (&value, (uint8_t *) zmq_msg_data (&frame) + 2, 4);
        }
        bool more = zmq_msg_more (&frame);
        zmq_msg_close (&frame);
        char endpoint [257] = "";
        if (more) {
            zmq_msg_init (&frame);
            if (zmq_msg_recv (&frame, watch->reader, 0) != -1)
                snprintf (endpoint, sizeof (endpoint), "%.*s", (int) zmq_msg_size (&frame),
                          (char *) zmq_msg_data (&frame));
            zmq_msg_close (&frame);
        }
        if (event == ZMQ_EVENT_MONITOR_STOPPED) {
            s_unwatch (self, watch);    //  its socket is closed
            return true;
        }
        chorus__monitor_event (self, watch->name, event, value, endpoint);
    }
    return true;
}
