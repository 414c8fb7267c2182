/*  chorus_datagram.c — a probe's PING and PONG as UDP datagrams: the
    framing, the socket, nothing of what they mean (the peers class).
*/
#include "chorus_datagram.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

static const char s_magic [4] = { 'C', 'H', 'D', 1 };

static bool
s_instance (const uint8_t *data, char *instance)
{
    for (int i = 0; i < 32; i++)
        if (!isdigit (data [i]) && (data [i] < 'A' || data [i] > 'F'))
            return false;
    memcpy (instance, data, 32);
    instance [32] = 0;
    return true;
}

int
chorus__datagram_open (const char *bound)
{
    struct sockaddr_storage address;
    socklen_t size = 0;
    if (!bound || !chorus__endpoint_sockaddr (bound, &address, &size))
        return -1;
    int fd = socket (address.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -1;
    if (address.ss_family == AF_INET6) {
        int only = 1;       //  as the inbox: one family per socket
        setsockopt (fd, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof (only));
    }
    if (bind (fd, (struct sockaddr *) &address, size) == -1) {
        close (fd);
        return -1;
    }
    return fd;
}

int
chorus__datagram_send (int fd, const struct sockaddr_storage *to, socklen_t to_size,
                       const char *sender, const char *recipient, const void *body,
                       size_t body_size)
{
    if (fd < 0 || strlen (sender) != 32 || strlen (recipient) != 32
    ||  body_size > CHORUS__DATAGRAM_MAX - CHORUS__DATAGRAM_HEADER)
        return -1;
    uint8_t packet [CHORUS__DATAGRAM_MAX];
    memcpy (packet, s_magic, 4);
    memcpy (packet + 4, sender, 32);
    memcpy (packet + 36, recipient, 32);
    memcpy (packet + CHORUS__DATAGRAM_HEADER, body, body_size);
    size_t size = CHORUS__DATAGRAM_HEADER + body_size;
    ssize_t sent = sendto (fd, packet, size, MSG_DONTWAIT, (const struct sockaddr *) to, to_size);
    return sent == (ssize_t) size? 0: -1;
}

int
chorus__datagram_recv (int fd, uint8_t *buffer, size_t buffer_size,
                       chorus__datagram_t *datagram, const char **reason)
{
    datagram->from_size = sizeof (datagram->from);
    ssize_t size = recvfrom (fd, buffer, buffer_size, MSG_DONTWAIT | MSG_TRUNC,
                             (struct sockaddr *) &datagram->from, &datagram->from_size);
    if (size < 0)
        return 0;   //  none waits (or an error the socket reported: nothing to read)
    if ((size_t) size > buffer_size || (size_t) size > CHORUS__DATAGRAM_MAX) {
        *reason = "datagram larger than 1232 bytes";
        return -1;
    }
    if ((size_t) size <= CHORUS__DATAGRAM_HEADER || memcmp (buffer, s_magic, 4)) {
        *reason = "datagram without the Chorus header";
        return -1;
    }
    if (!s_instance (buffer + 4, datagram->sender) || !s_instance (buffer + 36, datagram->recipient)) {
        *reason = "datagram header names no instance";
        return -1;
    }
    datagram->body = buffer + CHORUS__DATAGRAM_HEADER;
    datagram->body_size = (size_t) size - CHORUS__DATAGRAM_HEADER;
    return 1;
}

//  --------------------------------------------------------------------------
//  Self-test

void
chorus__datagram_test (bool verbose)
{
    if (verbose)
        printf (" * chorus__datagram: ");
    //  Not to be had: no tcp, a name, no port
    CHORUS__CHECK (chorus__datagram_open ("ipc:///tmp/x") == -1);
    CHORUS__CHECK (chorus__datagram_open ("tcp://localhost:5670") == -1);
    CHORUS__CHECK (chorus__datagram_open (NULL) == -1);

    int a = chorus__datagram_open ("tcp://127.0.0.1:0");
    CHORUS__CHECK (a >= 0);
    struct sockaddr_storage address;
    socklen_t size = sizeof (address);
    CHORUS__CHECK (getsockname (a, (struct sockaddr *) &address, &size) == 0);
    int port = ntohs (((struct sockaddr_in *) &address)->sin_port);
    char endpoint [64];
    snprintf (endpoint, sizeof (endpoint), "tcp://127.0.0.1:%d", port);
    //  The port is taken: none
    CHORUS__CHECK (chorus__datagram_open (endpoint) == -1);
    int b = chorus__datagram_open ("tcp://*:0");
    CHORUS__CHECK (b >= 0);

    const char *one = "0123456789ABCDEF0123456789ABCDEF";
    const char *two = "FEDCBA9876543210FEDCBA9876543210";
    uint8_t buffer [2048];
    chorus__datagram_t datagram;
    const char *reason = NULL;
    CHORUS__CHECK (chorus__datagram_recv (a, buffer, sizeof (buffer), &datagram, &reason) == 0);
    CHORUS__CHECK (chorus__datagram_send (b, &address, size, one, two, "body", 4) == 0);
    struct pollfd ready = { a, POLLIN, 0 };
    CHORUS__CHECK (poll (&ready, 1, 5000) == 1);
    CHORUS__CHECK (chorus__datagram_recv (a, buffer, sizeof (buffer), &datagram, &reason) == 1);
    CHORUS__CHECK (streq (datagram.sender, one) && streq (datagram.recipient, two));
    CHORUS__CHECK (datagram.body_size == 4 && memcmp (datagram.body, "body", 4) == 0);
    //  The answer goes back where it came from
    CHORUS__CHECK (chorus__datagram_send (a, &datagram.from, datagram.from_size, two, one,
                                          "back", 4) == 0);
    ready.fd = b;
    CHORUS__CHECK (poll (&ready, 1, 5000) == 1);
    CHORUS__CHECK (chorus__datagram_recv (b, buffer, sizeof (buffer), &datagram, &reason) == 1);
    CHORUS__CHECK (streq (datagram.sender, two) && memcmp (datagram.body, "back", 4) == 0);

    //  Too big to send; refused on the way in, each saying why
    uint8_t big [CHORUS__DATAGRAM_MAX + 100];
    memset (big, 'x', sizeof (big));
    CHORUS__CHECK (chorus__datagram_send (b, &address, size, one, two, big,
                                          CHORUS__DATAGRAM_MAX) == -1);
    int raw = socket (AF_INET, SOCK_DGRAM, 0);
    const struct {
        size_t size;
        const char *data;
        const char *reason;
    } bad [] = {
        { sizeof (big), NULL, "larger" },
        { 3, "CHD", "without" },
        { 72, "XXXX0123456789ABCDEF0123456789ABCDEFFEDCBA9876543210FEDCBA9876543210body",
          "without" },
        { 72, "CHD\x01" "0123456789ABCDEF0123456789ABCDEZFEDCBA9876543210FEDCBA9876543210body",
          "no instance" },
        { 68, "CHD\x01" "0123456789ABCDEF0123456789ABCDEFFEDCBA9876543210FEDCBA9876543210",
          "without" },
    };
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad [0]); i++) {
        CHORUS__CHECK (sendto (raw, bad [i].data? (const void *) bad [i].data: big, bad [i].size,
                               0, (struct sockaddr *) &address, size) == (ssize_t) bad [i].size);
        ready.fd = a;
        CHORUS__CHECK (poll (&ready, 1, 5000) == 1);
        reason = NULL;
        CHORUS__CHECK (chorus__datagram_recv (a, buffer, sizeof (buffer), &datagram, &reason) == -1);
        CHORUS__CHECK (reason && strstr (reason, bad [i].reason));
    }
    close (raw);
    close (a);
    close (b);
    if (verbose)
        printf ("OK\n");
}
