/*  chorus_poller.c — the engine's wait: each socket looked at once before
    poll(2), and after it only those whose descriptor fired.

    A ZeroMQ socket's descriptor (ZMQ_FD) signals commands to the socket,
    not messages, and only on an edge: once a look at the socket
    (ZMQ_EVENTS, a send, a receive) has read the signal, a message may wait
    with the descriptor quiet. So a wait first asks every socket whether a
    message is there; then, with nothing touching the sockets meanwhile
    (they belong to this thread), a socket whose descriptor stays quiet
    gets no message, and only those that fire need a look.
*/
#include "chorus_poller.h"

#include <poll.h>

struct _chorus__poller_t {
    void **readers;             //  as added: zsock_t, zactor_t or libzmq socket
    void **sockets;             //  their libzmq sockets
    struct pollfd *fds;         //  their descriptors
    size_t size;                //  how many
    size_t max;                 //  room for
    bool terminated;            //  the last wait saw the context terminated
};

chorus__poller_t *
chorus__poller_new (void)
{
    return (chorus__poller_t *) zmalloc (sizeof (chorus__poller_t));
}

void
chorus__poller_destroy (chorus__poller_t **self_p)
{
    chorus__poller_t *self = *self_p;
    if (!self)
        return;
    free (self->readers);
    free (self->sockets);
    free (self->fds);
    free (self);
    *self_p = NULL;
}

int
chorus__poller_add (chorus__poller_t *self, void *reader)
{
    void *socket = zsock_resolve (reader);
    int fd = -1;
    size_t size = sizeof (fd);
    if (!socket || zmq_getsockopt (socket, ZMQ_FD, &fd, &size) == -1)
        return -1;
    if (self->size == self->max) {
        size_t max = self->max? self->max * 2: 8;
        void **readers = (void **) realloc (self->readers, max * sizeof (void *));
        if (readers)
            self->readers = readers;
        void **sockets = (void **) realloc (self->sockets, max * sizeof (void *));
        if (sockets)
            self->sockets = sockets;
        struct pollfd *fds = (struct pollfd *) realloc (self->fds, max * sizeof (struct pollfd));
        if (fds)
            self->fds = fds;
        assert (readers && sockets && fds);
        self->max = max;
    }
    self->readers [self->size] = reader;
    self->sockets [self->size] = socket;
    self->fds [self->size].fd = fd;
    self->fds [self->size].events = POLLIN;
    self->fds [self->size].revents = 0;
    self->size++;
    return 0;
}

int
chorus__poller_remove (chorus__poller_t *self, void *reader)
{
    for (size_t i = 0; i < self->size; i++)
        if (self->readers [i] == reader) {
            size_t after = self->size - i - 1;
            memmove (self->readers + i, self->readers + i + 1, after * sizeof (void *));
            memmove (self->sockets + i, self->sockets + i + 1, after * sizeof (void *));
            memmove (self->fds + i, self->fds + i + 1, after * sizeof (struct pollfd));
            self->size--;
            return 0;
        }
    return -1;
}

//  Whether a message waits on the socket; -1 when the context is gone
static int
s_readable (chorus__poller_t *self, size_t i)
{
    uint32_t events = 0;
    size_t size = sizeof (events);
    if (zmq_getsockopt (self->sockets [i], ZMQ_EVENTS, &events, &size) == -1) {
        if (zmq_errno () == ETERM)
            self->terminated = true;
        return self->terminated? -1: 0;
    }
    return (events & ZMQ_POLLIN)? 1: 0;
}

void *
chorus__poller_wait (chorus__poller_t *self, int timeout)
{
    self->terminated = false;
    //  A message whose signal an earlier look or a send has read
    for (size_t i = 0; i < self->size; i++) {
        int readable = s_readable (self, i);
        if (readable)
            return readable > 0? self->readers [i]: NULL;
    }
    if (timeout == 0)
        return NULL;
    int64_t end = timeout < 0? -1: zclock_mono () + timeout;
    while (true) {
        int wait = -1;
        if (end >= 0) {
            int64_t left = end - zclock_mono ();
            if (left <= 0)
                return NULL;
            wait = left > INT_MAX? INT_MAX: (int) left;
        }
        int rc = poll (self->fds, (nfds_t) self->size, wait);
        if (rc <= 0)
            return NULL;    //  time ran out, or a signal (EINTR)
        for (size_t i = 0; i < self->size; i++)
            if (self->fds [i].revents) {
                int readable = s_readable (self, i);
                if (readable)
                    return readable > 0? self->readers [i]: NULL;
            }
        //  Commands only (a pipe attached, a connection up): wait on
    }
}

bool
chorus__poller_terminated (chorus__poller_t *self)
{
    return self->terminated;
}

//  --------------------------------------------------------------------------
//  Self-test

void
chorus__poller_test (bool verbose)
{
    if (verbose)
        printf (" * chorus__poller: ");
    zsock_t *a_in = zsock_new_pair ("@inproc://chorus-poller-test-a");
    zsock_t *a_out = zsock_new_pair (">inproc://chorus-poller-test-a");
    void *b_in = chorus__socket_new (ZMQ_PAIR);
    void *b_out = chorus__socket_new (ZMQ_PAIR);
    CHORUS__CHECK (a_in && a_out && b_in && b_out);
    CHORUS__CHECK (zmq_bind (b_in, "inproc://chorus-poller-test-b") == 0);
    CHORUS__CHECK (zmq_connect (b_out, "inproc://chorus-poller-test-b") == 0);
    chorus__poller_t *self = chorus__poller_new ();
    CHORUS__CHECK (chorus__poller_add (self, a_in) == 0);
    CHORUS__CHECK (chorus__poller_add (self, b_in) == 0);
    int not_a_socket = 42;
    CHORUS__CHECK (chorus__poller_add (self, &not_a_socket) == -1);

    //  Nothing there: the time runs out, and the wait did wait
    int64_t start = zclock_mono ();
    CHORUS__CHECK (chorus__poller_wait (self, 50) == NULL);
    CHORUS__CHECK (zclock_mono () - start >= 50);
    CHORUS__CHECK (!chorus__poller_terminated (self));
    CHORUS__CHECK (chorus__poller_wait (self, 0) == NULL);

    //  A message wakes a wait for ever; the first added of those ready
    zstr_send (b_out, "b1");
    CHORUS__CHECK (chorus__poller_wait (self, -1) == b_in);
    zstr_send (a_out, "a1");
    CHORUS__CHECK (chorus__poller_wait (self, 1000) == a_in);
    char *text = zstr_recv (a_in);
    CHORUS__CHECK (text && streq (text, "a1"));
    zstr_free (&text);
    CHORUS__CHECK (chorus__poller_wait (self, 1000) == b_in);

    //  Two messages, one read: the other is still seen, though its signal
    //  was read with the first
    zstr_send (b_out, "b2");
    text = zstr_recv (b_in);
    CHORUS__CHECK (text && streq (text, "b1"));
    zstr_free (&text);
    CHORUS__CHECK (chorus__poller_wait (self, 1000) == b_in);
    text = zstr_recv (b_in);
    CHORUS__CHECK (text && streq (text, "b2"));
    zstr_free (&text);
    CHORUS__CHECK (chorus__poller_wait (self, 20) == NULL);

    //  A message whose signal a send on the same socket read (the socket
    //  took its commands then): seen without its descriptor firing
    zstr_send (b_out, "b3");
    zclock_sleep (10);
    zstr_send (b_in, "back");   //  reads b_in's commands, the signal of b3 with them
    CHORUS__CHECK (chorus__poller_wait (self, 1000) == b_in);
    text = zstr_recv (b_in);
    CHORUS__CHECK (text && streq (text, "b3"));
    zstr_free (&text);
    text = zstr_recv (b_out);
    CHORUS__CHECK (text && streq (text, "back"));
    zstr_free (&text);

    //  Removed: no longer waited on
    CHORUS__CHECK (chorus__poller_remove (self, a_in) == 0);
    CHORUS__CHECK (chorus__poller_remove (self, a_in) == -1);
    zstr_send (a_out, "a2");
    CHORUS__CHECK (chorus__poller_wait (self, 20) == NULL);
    CHORUS__CHECK (chorus__poller_add (self, a_in) == 0);
    CHORUS__CHECK (chorus__poller_wait (self, 1000) == a_in);

    //  Many readers: room grows
    void *more [20];
    for (int i = 0; i < 20; i++) {
        more [i] = chorus__socket_new (ZMQ_PAIR);
        CHORUS__CHECK (more [i] && chorus__poller_add (self, more [i]) == 0);
    }
    CHORUS__CHECK (chorus__poller_wait (self, 1000) == a_in);
    for (int i = 0; i < 20; i++) {
        CHORUS__CHECK (chorus__poller_remove (self, more [i]) == 0);
        chorus__socket_destroy (&more [i]);
    }
    chorus__poller_destroy (&self);
    chorus__poller_destroy (&self);     //  safe twice
    zsock_destroy (&a_in);
    zsock_destroy (&a_out);
    chorus__socket_destroy (&b_in);
    chorus__socket_destroy (&b_out);
    if (verbose)
        printf ("OK\n");
}
