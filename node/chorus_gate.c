/*  chorus_gate.c — a bound on the connections a listening socket accepts.
    ZeroMQ accepts every TCP connection and keeps buffers for each, and a
    ROUTER cannot close one; so the gate watches the socket's connections
    through a ZeroMQ monitor and shuts down each one accepted beyond its
    bound (protocol section 4.5). The peer that was shut out may come back
    later, when there is room.
*/
#include "chorus_gate.h"

#include <sys/socket.h>

struct _chorus__gate_t {
    void *socket;               //  the socket watched
    void *monitor;              //  events from it (PAIR)
    zhashx_t *open;             //  "fd" of each connection we let in
    size_t max;                 //  connections let in at most
};

chorus__gate_t *
chorus__gate_new (void *socket, size_t max)
{
    char endpoint [64];
    snprintf (endpoint, sizeof (endpoint), "inproc://chorus-gate-%p", socket);
    if (zmq_socket_monitor (socket, endpoint, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED))
        return NULL;
    chorus__gate_t *self = (chorus__gate_t *) zmalloc (sizeof (chorus__gate_t));
    self->socket = socket;
    self->max = max;
    self->open = zhashx_new ();
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
s_event (chorus__gate_t *self, uint16_t *event, int *fd)
{
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
    while (more) {      //  the endpoint, which we do not need
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, self->monitor, 0) == -1)
            more = false;
        else
            more = zmq_msg_more (&frame);
        zmq_msg_close (&frame);
    }
    if (!valid)
        *event = 0;
    return true;
}

size_t
chorus__gate_recv (chorus__gate_t *self)
{
    size_t refused = 0;
    uint16_t event = 0;
    int fd = -1;
    for (int count = 0; count < 10000 && s_event (self, &event, &fd); count++) {
        char key [16];
        snprintf (key, sizeof (key), "%d", fd);
        if (event == ZMQ_EVENT_ACCEPTED) {
            if (zhashx_size (self->open) < self->max)
                zhashx_update (self->open, key, (void *) 1);
            else {
                //  Not close: ZeroMQ owns the descriptor; it sees the end of
                //  the connection and closes it itself
                shutdown (fd, SHUT_RDWR);
                refused++;
            }
        }
        else
        if (event == ZMQ_EVENT_DISCONNECTED)
            zhashx_delete (self->open, key);
    }
    return refused;
}
