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
#include <unistd.h>

//  One thing waited on; its descriptor is in fds, at the same index
typedef struct {
    void *reader;               //  as added: zsock_t, zactor_t or libzmq socket, or
                                //  the caller's handle of a plain descriptor
    void *socket;               //  its libzmq socket (NULL: a plain descriptor)
    bool quiet;                 //  only its handler touches it
    bool unread;                //  quiet, handed out, and no look since has found it
                                //  empty
} s_item_t;

struct _chorus__poller_t {
    s_item_t *items;            //  what we wait on
    struct pollfd *fds;         //  their descriptors, for poll(2)
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
    free (self->items);
    free (self->fds);
    free (self);
    *self_p = NULL;
}

static int
s_add (chorus__poller_t *self, void *reader, void *socket, int fd, bool quiet)
{
    if (self->size == self->max) {
        size_t max = self->max? self->max * 2: 8;
        s_item_t *items = (s_item_t *) realloc (self->items, max * sizeof (s_item_t));
        if (items)
            self->items = items;
        struct pollfd *fds = (struct pollfd *) realloc (self->fds, max * sizeof (struct pollfd));
        if (fds)
            self->fds = fds;
        assert (items && fds);
        self->max = max;
    }
    //  A quiet reader is looked at before the first wait: until a look has
    //  found its pipes empty, their writers take them for read and signal
    //  nothing (a reader that connected, as to a socket monitor, was never
    //  told of its pipe by a command either)
    self->items [self->size] = (s_item_t) { reader, socket, quiet, quiet };
    self->fds [self->size] = (struct pollfd) { fd, POLLIN, 0 };
    self->size++;
    return 0;
}

static int
s_add_socket (chorus__poller_t *self, void *reader, bool quiet)
{
    void *socket = zsock_resolve (reader);
    int fd = -1;
    size_t size = sizeof (fd);
    if (!socket || zmq_getsockopt (socket, ZMQ_FD, &fd, &size) == -1)
        return -1;
    return s_add (self, reader, socket, fd, quiet);
}

int
chorus__poller_add (chorus__poller_t *self, void *reader)
{
    return s_add_socket (self, reader, false);
}

int
chorus__poller_add_quiet (chorus__poller_t *self, void *reader)
{
    return s_add_socket (self, reader, true);
}

int
chorus__poller_add_fd (chorus__poller_t *self, int fd, void *reader)
{
    return fd < 0 || !reader? -1: s_add (self, reader, NULL, fd, false);
}

int
chorus__poller_remove (chorus__poller_t *self, void *reader)
{
    for (size_t i = 0; i < self->size; i++)
        if (self->items [i].reader == reader) {
            size_t after = self->size - i - 1;
            memmove (self->items + i, self->items + i + 1, after * sizeof (s_item_t));
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
    if (zmq_getsockopt (self->items [i].socket, ZMQ_EVENTS, &events, &size) == -1) {
        if (zmq_errno () == ETERM)
            self->terminated = true;
        return self->terminated? -1: 0;
    }
    return (events & ZMQ_POLLIN)? 1: 0;
}

//  Hands a reader out: a quiet one is looked at before each wait from now
//  on, until a look finds it empty (its handler may leave messages behind,
//  and a look at it, or an earlier one, has read their signal)
static void *
s_ready (chorus__poller_t *self, size_t i)
{
    self->items [i].unread = true;
    return self->items [i].reader;
}

//  A message whose signal an earlier look or a send has read (a plain
//  descriptor says so itself; a quiet reader is read by its handler
//  alone, which may have left messages behind): its index, or -1 when
//  none, or -2 when the context is gone
static int
s_look (chorus__poller_t *self)
{
    for (size_t i = 0; i < self->size; i++) {
        s_item_t *item = &self->items [i];
        if (!item->socket || (item->quiet && !item->unread))
            continue;
        int readable = s_readable (self, i);
        if (readable)
            return readable > 0? (int) i: -2;
        item->unread = false;
    }
    return -1;
}

int
chorus__poller_prepare (chorus__poller_t *self, int *fds, size_t max)
{
    self->terminated = false;
    if (s_look (self) != -1)
        return -1;
    for (size_t i = 0; i < self->size && i < max; i++)
        fds [i] = self->fds [i].fd;
    return (int) self->size;
}

void *
chorus__poller_wait (chorus__poller_t *self, int timeout)
{
    self->terminated = false;
    int ready = s_look (self);
    if (ready != -1)
        return ready >= 0? s_ready (self, (size_t) ready): NULL;
    //  Then the descriptors, once without waiting when the time is 0 (a
    //  plain descriptor is seen only here)
    int64_t end = timeout < 0? -1: zclock_mono () + timeout;
    while (true) {
        int wait = -1;
        if (end >= 0) {
            int64_t left = end - zclock_mono ();
            wait = left <= 0? 0: left > INT_MAX? INT_MAX: (int) left;
        }
        int rc = poll (self->fds, (nfds_t) self->size, wait);
        if (rc <= 0)
            return NULL;    //  time ran out, or a signal (EINTR)
        for (size_t i = 0; i < self->size; i++)
            if (self->fds [i].revents && !self->items [i].socket)
                return self->items [i].reader;
            else
            //  A quiet reader's handler reads without waiting until it
            //  finds nothing, and a receive that finds nothing reads the
            //  socket's commands itself: a look first would cost two
            //  system calls more per wake
            if (self->fds [i].revents && self->items [i].quiet)
                return s_ready (self, i);
            else
            if (self->fds [i].revents) {
                int readable = s_readable (self, i);
                if (readable)
                    return readable > 0? s_ready (self, i): NULL;
            }
        //  Commands only (a pipe attached, a connection up): wait on
        if (wait == 0)
            return NULL;
    }
}

void
chorus__poller_drained (chorus__poller_t *self, void *reader)
{
    for (size_t i = 0; i < self->size; i++)
        if (self->items [i].reader == reader)
            self->items [i].unread = false;
}

void
chorus__poller_touched (chorus__poller_t *self, void *reader)
{
    for (size_t i = 0; i < self->size; i++)
        if (self->items [i].reader == reader)
            self->items [i].unread = true;
}

bool
chorus__poller_terminated (chorus__poller_t *self)
{
    return self->terminated;
}

//  --------------------------------------------------------------------------
//  Self-test

//  Receives one string from socket and checks it is expected
static void
s_test_recv_is (void *socket, const char *expected)
{
    char *text = zstr_recv (socket);
    CHORUS__CHECK (text && streq (text, expected));
    zstr_free (&text);
}

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
    s_test_recv_is (a_in, "a1");
    CHORUS__CHECK (chorus__poller_wait (self, 1000) == b_in);

    //  Two messages, one read: the other is still seen, though its signal
    //  was read with the first
    zstr_send (b_out, "b2");
    s_test_recv_is (b_in, "b1");
    CHORUS__CHECK (chorus__poller_wait (self, 1000) == b_in);
    s_test_recv_is (b_in, "b2");
    CHORUS__CHECK (chorus__poller_wait (self, 20) == NULL);

    //  A message whose signal a send on the same socket read (the socket
    //  took its commands then): seen without its descriptor firing
    zstr_send (b_out, "b3");
    zclock_sleep (10);
    zstr_send (b_in, "back");   //  reads b_in's commands, the signal of b3 with them
    CHORUS__CHECK (chorus__poller_wait (self, 1000) == b_in);
    s_test_recv_is (b_in, "b3");
    s_test_recv_is (b_out, "back");

    //  Removed: no longer waited on
    CHORUS__CHECK (chorus__poller_remove (self, a_in) == 0);
    CHORUS__CHECK (chorus__poller_remove (self, a_in) == -1);
    zstr_send (a_out, "a2");
    CHORUS__CHECK (chorus__poller_wait (self, 20) == NULL);
    CHORUS__CHECK (chorus__poller_add (self, a_in) == 0);
    CHORUS__CHECK (chorus__poller_wait (self, 1000) == a_in);

    //  A plain descriptor: readable, then read
    int fds [2];
    CHORUS__CHECK (pipe (fds) == 0);
    int handle = 0;
    CHORUS__CHECK (chorus__poller_add_fd (self, fds [0], &handle) == 0);
    CHORUS__CHECK (chorus__poller_add_fd (self, -1, &handle) == -1);
    s_test_recv_is (a_in, "a2");
    CHORUS__CHECK (chorus__poller_wait (self, 20) == NULL);
    CHORUS__CHECK (write (fds [1], "x", 1) == 1);
    CHORUS__CHECK (chorus__poller_wait (self, 0) == &handle);      //  a look without waiting
    CHORUS__CHECK (chorus__poller_wait (self, 1000) == &handle);   //  until it is read
    char byte;
    CHORUS__CHECK (read (fds [0], &byte, 1) == 1);
    CHORUS__CHECK (chorus__poller_wait (self, 20) == NULL);
    CHORUS__CHECK (chorus__poller_remove (self, &handle) == 0);
    close (fds [0]);
    close (fds [1]);

    //  A quiet reader of a socket monitor, as the gate's: it connected to
    //  the monitor's writer, which takes the pipe for read and signals
    //  nothing until a look has found it empty once
    void *router = chorus__socket_new (ZMQ_ROUTER);
    void *reader = chorus__socket_new (ZMQ_PAIR);
    CHORUS__CHECK (router && reader);
    CHORUS__CHECK (zmq_bind (router, "tcp://127.0.0.1:*") == 0);
    char endpoint [64];
    size_t endpoint_size = sizeof (endpoint);
    CHORUS__CHECK (zmq_getsockopt (router, ZMQ_LAST_ENDPOINT, endpoint, &endpoint_size) == 0);
    CHORUS__CHECK (zmq_socket_monitor (router, "inproc://chorus-poller-test-m",
                                       ZMQ_EVENT_ACCEPTED) == 0);
    CHORUS__CHECK (zmq_connect (reader, "inproc://chorus-poller-test-m") == 0);
    CHORUS__CHECK (chorus__poller_add_quiet (self, reader) == 0);
    CHORUS__CHECK (chorus__poller_wait (self, 20) == NULL);
    void *dealer = chorus__socket_new (ZMQ_DEALER);
    CHORUS__CHECK (dealer && zmq_connect (dealer, endpoint) == 0);
    CHORUS__CHECK (chorus__poller_wait (self, 5000) == reader);
    zmsg_t *event = zmsg_recv (reader);
    CHORUS__CHECK (event && zmsg_size (event) == 2);
    zmsg_destroy (&event);
    CHORUS__CHECK (chorus__poller_remove (self, reader) == 0);
    zmq_socket_monitor (router, NULL, 0);
    chorus__socket_destroy (&dealer);
    chorus__socket_destroy (&reader);
    chorus__socket_destroy (&router);
    zstr_send (a_out, "a3");

    //  A quiet reader: looked at again after its handler read one of two
    void *quiet_in = chorus__socket_new (ZMQ_PAIR);
    void *quiet_out = chorus__socket_new (ZMQ_PAIR);
    CHORUS__CHECK (quiet_in && quiet_out);
    CHORUS__CHECK (zmq_bind (quiet_in, "inproc://chorus-poller-test-q") == 0);
    CHORUS__CHECK (zmq_connect (quiet_out, "inproc://chorus-poller-test-q") == 0);
    CHORUS__CHECK (chorus__poller_add_quiet (self, quiet_in) == 0);
    s_test_recv_is (a_in, "a3");
    zstr_send (quiet_out, "q1");
    zstr_send (quiet_out, "q2");
    CHORUS__CHECK (chorus__poller_wait (self, 1000) == quiet_in);
    s_test_recv_is (quiet_in, "q1");
    CHORUS__CHECK (chorus__poller_wait (self, 1000) == quiet_in);
    s_test_recv_is (quiet_in, "q2");
    CHORUS__CHECK (chorus__poller_wait (self, 20) == NULL);
    //  Left with messages while others, ahead of it, are handed out: it is
    //  not forgotten, though its descriptor does not fire again
    zstr_send (quiet_out, "q3");
    zstr_send (quiet_out, "q4");
    CHORUS__CHECK (chorus__poller_wait (self, 1000) == quiet_in);
    s_test_recv_is (quiet_in, "q3");
    for (int round = 0; round < 3; round++) {
        zstr_send (a_out, "ahead");
        CHORUS__CHECK (chorus__poller_wait (self, 1000) == a_in);
        s_test_recv_is (a_in, "ahead");
    }
    CHORUS__CHECK (chorus__poller_wait (self, 1000) == quiet_in);
    s_test_recv_is (quiet_in, "q4");
    CHORUS__CHECK (chorus__poller_wait (self, 20) == NULL);
    //  Read outside its handler, one of two: told, the poller looks again
    zstr_send (quiet_out, "q5");
    zstr_send (quiet_out, "q6");
    s_test_recv_is (quiet_in, "q5");
    chorus__poller_touched (self, quiet_in);
    CHORUS__CHECK (chorus__poller_wait (self, 1000) == quiet_in);
    s_test_recv_is (quiet_in, "q6");
    CHORUS__CHECK (chorus__poller_wait (self, 20) == NULL);
    //  For a wait elsewhere (an engine run inline): what a wait would look
    //  at first, prepare looks at too. A quiet reader its handler left with
    //  a message, or one touched (a send took the signal of a message that
    //  came), says a message waits, since its descriptor will not fire for
    //  it; found empty, it gives the descriptors to wait on
    int given [32];
    zstr_send (quiet_out, "q7");
    zstr_send (quiet_out, "q8");
    CHORUS__CHECK (chorus__poller_wait (self, 1000) == quiet_in);
    s_test_recv_is (quiet_in, "q7");
    CHORUS__CHECK (chorus__poller_prepare (self, given, 32) == -1);
    s_test_recv_is (quiet_in, "q8");
    CHORUS__CHECK (chorus__poller_prepare (self, given, 32) == (int) self->size);
    CHORUS__CHECK (given [self->size - 1] == self->fds [self->size - 1].fd);
    zstr_send (quiet_out, "q9");
    uint32_t events = 0;
    size_t events_size = sizeof (events);
    CHORUS__CHECK (zmq_getsockopt (quiet_in, ZMQ_EVENTS, &events, &events_size) == 0
                   && (events & ZMQ_POLLIN));      //  as a send on it would, takes the signal
    chorus__poller_touched (self, quiet_in);
    CHORUS__CHECK (chorus__poller_prepare (self, given, 32) == -1);
    s_test_recv_is (quiet_in, "q9");
    CHORUS__CHECK (chorus__poller_prepare (self, given, 32) == (int) self->size);
    CHORUS__CHECK (chorus__poller_remove (self, quiet_in) == 0);
    chorus__socket_destroy (&quiet_in);
    chorus__socket_destroy (&quiet_out);
    zstr_send (a_out, "a4");

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
