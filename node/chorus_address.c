/*  chorus_address.c — the addresses a node announces. A node bound to a
    wildcard address announces the address of the interface that routes to
    its first seed (how a host with several interfaces picks the one its
    peers can reach), unless it is told what to advertise, as NATS's
    client_advertise and Consul's advertise are; and we warn when we would
    announce loopback to a peer on another host.
*/
#include "chorus_private.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

bool
chorus__advertise_parse (const char *text, char *host, size_t host_size, int *port,
                         char *error, size_t error_size)
{
    *port = 0;
    if (!text || !*text || strlen (text) >= host_size || strlen (text) > 260) {
        snprintf (error, error_size, "an address to advertise is HOST or HOST:PORT, 1 to 260 "
                  "characters");
        return false;
    }
    const char *port_text = NULL;
    size_t host_length;
    if (text [0] == '[') {
        const char *close = strchr (text, ']');
        if (!close || close == text + 1) {
            snprintf (error, error_size, "'%s': an IPv6 address needs its closing ']'", text);
            return false;
        }
        host_length = (size_t) (close - text) + 1;
        if (close [1] == ':')
            port_text = close + 2;
        else
        if (close [1]) {
            snprintf (error, error_size, "'%s': only ':PORT' may follow ']'", text);
            return false;
        }
        //  What is inside the brackets must be an IPv6 address
        char inside [64];
        struct in6_addr address;
        size_t inside_length = host_length - 2;
        if (inside_length >= sizeof (inside)) {
            snprintf (error, error_size, "'%s' is not an IPv6 address", text);
            return false;
        }
        memcpy (inside, text + 1, inside_length);
        inside [inside_length] = 0;
        if (inet_pton (AF_INET6, inside, &address) != 1) {
            snprintf (error, error_size, "'%s' is not an IPv6 address", inside);
            return false;
        }
    }
    else {
        const char *colon = strchr (text, ':');
        host_length = colon? (size_t) (colon - text): strlen (text);
        if (colon)
            port_text = colon + 1;
        //  A name or an IPv4 address: letters, digits, dots and dashes
        for (size_t index = 0; index < host_length; index++) {
            char c = text [index];
            if (!(isalnum ((unsigned char) c) || c == '.' || c == '-')) {
                snprintf (error, error_size, "'%s': a host is a name or an address (letters, "
                          "digits, '.' and '-'; an IPv6 address in brackets)", text);
                return false;
            }
        }
        if (host_length == 0) {
            snprintf (error, error_size, "'%s': the host is missing", text);
            return false;
        }
    }
    if (port_text) {
        char *end = NULL;
        errno = 0;
        long value = strtol (port_text, &end, 10);
        if (!*port_text || *end || errno || value < 1 || value > 65535
        ||  !isdigit ((unsigned char) *port_text)) {
            snprintf (error, error_size, "'%s': the port is a number from 1 to 65535", text);
            return false;
        }
        *port = (int) value;
    }
    memcpy (host, text, host_length);
    host [host_length] = 0;
    return true;
}

//  The host of a tcp endpoint, without brackets, into host; false if none
static bool
s_endpoint_host (const char *endpoint, char *host, size_t host_size, char *port,
                 size_t port_size)
{
    if (!endpoint || strncmp (endpoint, "tcp://", 6) != 0)
        return false;
    const char *start = endpoint + 6;
    const char *at = strchr (start, '@');
    size_t length = at? (size_t) (at - start): strlen (start);
    const char *colon = NULL;
    for (const char *scan = start; scan < start + length; scan++)
        if (*scan == ':')
            colon = scan;
    if (!colon || colon == start)
        return false;
    const char *host_start = start;
    size_t host_length = (size_t) (colon - start);
    if (*host_start == '[' && host_length >= 2 && host_start [host_length - 1] == ']') {
        host_start++;
        host_length -= 2;
    }
    size_t port_length = length - (size_t) (colon + 1 - start);
    if (host_length == 0 || host_length >= host_size || port_length >= port_size)
        return false;
    memcpy (host, host_start, host_length);
    host [host_length] = 0;
    memcpy (port, colon + 1, port_length);
    port [port_length] = 0;
    return true;
}

bool
chorus__route_host (const char *endpoint, char *host, size_t host_size)
{
    char name [272], port [16];
    if (!s_endpoint_host (endpoint, name, sizeof (name), port, sizeof (port)))
        return false;
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM };
    struct addrinfo *found = NULL;
    if (getaddrinfo (name, port, &hints, &found) || !found)
        return false;
    bool routed = false;
    //  Connecting a UDP socket sends nothing; it asks the kernel which
    //  interface, and so which address of ours, the route goes through
    int fd = socket (found->ai_family, SOCK_DGRAM, 0);
    struct sockaddr_storage local;
    socklen_t local_size = sizeof (local);
    if (fd >= 0 && connect (fd, found->ai_addr, found->ai_addrlen) == 0
    &&  getsockname (fd, (struct sockaddr *) &local, &local_size) == 0) {
        char text [INET6_ADDRSTRLEN];
        if (local.ss_family == AF_INET
        &&  inet_ntop (AF_INET, &((struct sockaddr_in *) &local)->sin_addr, text, sizeof (text)))
            routed = snprintf (host, host_size, "%s", text) < (int) host_size;
        else
        if (local.ss_family == AF_INET6
        &&  inet_ntop (AF_INET6, &((struct sockaddr_in6 *) &local)->sin6_addr, text,
                       sizeof (text)))
            routed = snprintf (host, host_size, "[%s]", text) < (int) host_size;
    }
    if (fd >= 0)
        close (fd);
    freeaddrinfo (found);
    return routed;
}

bool
chorus__endpoint_loopback (const char *endpoint)
{
    char host [272], port [16];
    if (!s_endpoint_host (endpoint, host, sizeof (host), port, sizeof (port)))
        return false;
    return strncmp (host, "127.", 4) == 0 || streq (host, "::1") || streq (host, "localhost");
}

bool
chorus__endpoint_sockaddr (const char *endpoint, struct sockaddr_storage *address,
                           socklen_t *size)
{
    char host [272], port [16];
    if (strncmp (endpoint, "tcp://", 6) || !s_endpoint_host (endpoint, host, sizeof (host), port,
                                                             sizeof (port)))
        return false;
    //  Numbers only: a name would need a lookup that can block
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM,
                              .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
    struct addrinfo *found = NULL;
    if (getaddrinfo (streq (host, "*")? "0.0.0.0": host, port, &hints, &found) || !found)
        return false;
    bool fits = found->ai_addrlen <= sizeof (*address);
    if (fits) {
        memcpy (address, found->ai_addr, found->ai_addrlen);
        *size = (socklen_t) found->ai_addrlen;
    }
    freeaddrinfo (found);
    return fits;
}

bool
chorus__endpoint_wildcard (const char *endpoint)
{
    char host [272], port [16];
    if (!s_endpoint_host (endpoint, host, sizeof (host), port, sizeof (port)))
        return false;
    return streq (host, "0.0.0.0") || streq (host, "::") || streq (host, "*");
}
