/*  chorus_http_address.h — the HOST:PORT of an HTTP server the project
    runs with libmicrohttpd (a node's /metrics, the coordinator's console):
    parsed into an IPv4 socket address, and the address it was bound to,
    its port as the system picked it for port 0. Private to the project;
    header-only, in common/, the floor every layer may stand on.
*/
#ifndef CHORUS_HTTP_ADDRESS_H_INCLUDED
#define CHORUS_HTTP_ADDRESS_H_INCLUDED

#include <arpa/inet.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Parses "HOST:PORT" (an IPv4 address or localhost, a port from 0 to
//  65535) into addr; false if it is not one
static inline bool
chorus__http_address_parse (const char *address, struct sockaddr_in *addr)
{
    const char *colon = address? strrchr (address, ':'): NULL;
    if (!colon || colon == address || colon - address >= 64)
        return false;
    char host [64];
    memcpy (host, address, (size_t) (colon - address));
    host [colon - address] = 0;
    char *end;
    long port = strtol (colon + 1, &end, 10);
    if (colon [1] < '0' || colon [1] > '9' || *end || port > 65535)
        return false;
    memset (addr, 0, sizeof (*addr));
    addr->sin_family = AF_INET;
    addr->sin_port = htons ((uint16_t) port);
    if (strcmp (host, "localhost") == 0)
        strcpy (host, "127.0.0.1");
    return inet_pton (AF_INET, host, &addr->sin_addr) == 1;
}

//  Writes "HOST:PORT" of a daemon started on addr into out, with the port
//  it was bound to
static inline void
chorus__http_address_bound (struct MHD_Daemon *daemon, const struct sockaddr_in *addr,
                            char *out, size_t out_size)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (daemon,
                                                            MHD_DAEMON_INFO_BIND_PORT);
    char host [INET_ADDRSTRLEN];
    inet_ntop (AF_INET, &addr->sin_addr, host, sizeof (host));
    snprintf (out, out_size, "%s:%u", host,
              info? (unsigned) info->port: (unsigned) ntohs (addr->sin_port));
}

#endif
