/*  chorus_datagram.h — probes by datagram (protocol section 6.1.1). On a
    plaintext mesh a node also listens for UDP on its inbox's address and
    port, and a probe's first PING and its PONG go that way: a datagram
    is one system call each way on the engine's own thread, where a
    message over the inbox connection wakes ZeroMQ's I/O thread at both
    ends, and these probes are most of an idle mesh's traffic. Anything
    a datagram does not answer goes over the connection as before.
    Private to the library.
*/
#ifndef CHORUS_DATAGRAM_H_INCLUDED
#define CHORUS_DATAGRAM_H_INCLUDED

#include "chorus_private.h"

//  The largest datagram we send or take: what fits in a packet on any
//  IPv6 path (1280 bytes less the IPv6 and UDP headers)
#define CHORUS__DATAGRAM_MAX 1232
//  What comes before the message: "CHD", the version 1, the sender's
//  instance and the recipient's (32 hex each)
#define CHORUS__DATAGRAM_HEADER 68

//  A datagram received: views into the caller's buffer
typedef struct {
    char sender [33];           //  its sender's instance
    char recipient [33];        //  the instance it is for
    const uint8_t *body;        //  the message, encoded as over a connection
    size_t body_size;
    struct sockaddr_storage from;   //  where it came from (where an answer goes)
    socklen_t from_size;
} chorus__datagram_t;

//  A UDP socket on the host and port of the tcp endpoint our inbox is
//  bound to (non-blocking); -1 when there is none to be had (the endpoint
//  is not tcp with a numeric host, or the port is taken for UDP)
int
    chorus__datagram_open (const char *bound);
//  Sends one; 0, or -1 when it does not fit or the system refused it
int
    chorus__datagram_send (int fd, const struct sockaddr_storage *to, socklen_t to_size,
                           const char *sender, const char *recipient, const void *body,
                           size_t body_size);
//  Takes the next datagram waiting: 1 (in *datagram, whose views point
//  into buffer), 0 when none waits, -1 when it was not one of ours
//  (*reason says why)
int
    chorus__datagram_recv (int fd, uint8_t *buffer, size_t buffer_size,
                           chorus__datagram_t *datagram, const char **reason);
//  Self-test
void
    chorus__datagram_test (bool verbose);

#endif
