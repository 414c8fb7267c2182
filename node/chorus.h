/*  chorus.h — the one public header of libchorus, the Chorus node agent.

    Services link libchorus to publish durable events, subscribe to them as
    a service group, and send and handle commands over a broker-less ZeroMQ
    mesh. Everything a program may call is declared here; nothing else is
    exported from the library.
*/
#ifndef CHORUS_H_INCLUDED
#define CHORUS_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#define CHORUS_VERSION_MAJOR 0
#define CHORUS_VERSION_MINOR 1
#define CHORUS_VERSION_PATCH 0
#define CHORUS_MAKE_VERSION(major, minor, patch) ((major) * 10000 + (minor) * 100 + (patch))
#define CHORUS_VERSION \
    CHORUS_MAKE_VERSION (CHORUS_VERSION_MAJOR, CHORUS_VERSION_MINOR, CHORUS_VERSION_PATCH)

//  Version of the wire protocol this library speaks (protocol/chorus-protocol.md)
#define CHORUS_PROTOCOL_VERSION 1

#if defined(CHORUS_BUILDING)
#    define CHORUS_EXPORT __attribute__ ((visibility ("default")))
#else
#    define CHORUS_EXPORT
#endif

#ifdef __cplusplus
extern "C" {
#endif

//  Error codes. Functions that can fail return 0 on success and -1 on
//  failure; chorus_errno () then tells which of these it was. Codes are
//  negative so that they never collide with a count or a size.
typedef enum {
    CHORUS_OK = 0,
    CHORUS_EINVAL = -1001,       //  an argument was invalid (NULL, too long, bad name)
    CHORUS_ENOMEM = -1002,       //  out of memory
    CHORUS_ESTORE = -1003,       //  the durable store failed (disk full, corrupt, locked)
    CHORUS_ETIMEDOUT = -1004,    //  a deadline passed
    CHORUS_EMALFORMED = -1005,   //  a message broke the protocol and was dropped
    CHORUS_ETOOBIG = -1006,      //  a payload or field exceeded its protocol limit
    CHORUS_ESTATE = -1007,       //  the call is not allowed in the object's current state
    CHORUS_EFULL = -1008,        //  retention is full and the policy refuses new events
    CHORUS_EUNKNOWN = -1009,     //  unknown command, service or flow
    CHORUS_EREMOTE = -1010,      //  the remote handler replied with an error
    CHORUS_EINTERRUPTED = -1011, //  interrupted by a signal or by shutdown
} chorus_error_t;

//  Returns the library version as CHORUS_MAKE_VERSION (major, minor, patch),
//  and fills the parts that are not NULL.
CHORUS_EXPORT int
    chorus_version (int *major, int *minor, int *patch);

//  Returns a static, human-readable description of an error code.
CHORUS_EXPORT const char *
    chorus_strerror (int code);

//  Returns the error code of the last failed call made by this thread.
CHORUS_EXPORT int
    chorus_errno (void);

#ifdef __cplusplus
}
#endif

#endif
