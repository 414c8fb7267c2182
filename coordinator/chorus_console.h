/*  chorus_console.h — the coordinator's web console: an HTTP server (on
    libmicrohttpd's threads) that serves the console's pages and a JSON API
    under /api/. Its threads never touch the coordinator's state: each API
    request becomes a call, queued for the coordinator's thread, which polls
    chorus_console_fd, takes the calls (chorus_console_next) and answers
    them. The live tail is served from a ring of recent events the
    coordinator hands over (chorus_console_event). The API: HTTP.md.
*/
#ifndef CHORUS_CONSOLE_H_INCLUDED
#define CHORUS_CONSOLE_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _chorus_console_t chorus_console_t;
typedef struct _chorus_console_call_t chorus_console_call_t;

//  Serves on address ("HOST:PORT", an IPv4 address or localhost; port 0
//  picks a free one). token, when not NULL, is the bearer token every API
//  request must carry. NULL with why in error on failure.
chorus_console_t *
    chorus_console_new (const char *address, const char *token, char *error, size_t error_size);
//  Stops serving: requests still waiting are answered 503
void
    chorus_console_destroy (chorus_console_t **self_p);

//  "HOST:PORT" it serves on, the port found when it was 0
const char *
    chorus_console_address (chorus_console_t *self);

//  Readable when calls wait for the coordinator's thread
int
    chorus_console_fd (chorus_console_t *self);

//  The next call waiting, or NULL; the call stays the console's. Its
//  request is an object: {"op": "list" | "status" | "cancel" | "retry" |
//  "signal" | "bulk" | "trace", ...} (see chorus_console.c)
chorus_console_call_t *
    chorus_console_next (chorus_console_t *self);
const json_t *
    chorus_console_call_request (chorus_console_call_t *call);
//  Answers a call with value (taken), or fails it with an error code of
//  the control commands (not-found, bad-request, bad-state, ...) and why;
//  either ends the call (do not use it after)
void
    chorus_console_answer (chorus_console_t *self, chorus_console_call_t *call, json_t *value);
void
    chorus_console_fail (chorus_console_t *self, chorus_console_call_t *call, const char *code,
                         const char *message);

//  An event seen on the mesh or published, for the live tail: fields are
//  its id, topic, service, instance, correlation and causation (NULL:
//  none; the topic is needed), then its sequence number, its time (ms)
//  and its payload (MessagePack), all copied. Cheap: the event becomes
//  JSON on a tail's thread, when it is sent.
void
    chorus_console_event (chorus_console_t *self, const char *fields [6], uint64_t seq,
                          uint64_t time, const void *payload, size_t size);

#endif
