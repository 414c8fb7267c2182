/*  chorus_private.h — declarations shared by the library's own classes,
    never installed. Private symbols carry the chorus__ prefix.
*/
#ifndef CHORUS_PRIVATE_H_INCLUDED
#define CHORUS_PRIVATE_H_INCLUDED

#include "chorus.h"
#include "chorus_msg.h"
#include "chorus_store.h"

//  Records the error of the last failed call in this thread; returns -1
//  so that callers can write `return chorus__fail (CHORUS_EINVAL);`.
int
    chorus__fail (int code);

//  Milliseconds since the Unix epoch
uint64_t
    chorus__now (void);

//  Writes a fresh message id (32 hex characters and a NUL) into id: a
//  random per-process prefix and a counter, unique without coordination.
void
    chorus__new_id (char id [33]);

//  True if the name is 1..max printable ASCII characters without spaces
bool
    chorus__valid_name (const char *name, size_t max);

//  True if topic starts with prefix
static inline bool
chorus__prefix_match (const char *prefix, const char *topic)
{
    return strncmp (topic, prefix, strlen (prefix)) == 0;
}

//  Everything the node wrapper configures, handed to the engine at start
typedef struct {
    char *service;              //  our service (group) name
    char *listen;               //  inbox endpoint to bind
    zlist_t *seeds;             //  seed inbox endpoints
    int beacon_port;            //  UDP beacon port, 0 = off
    int heartbeat_ms;           //  PING after this much silence
    int evasive_ms;             //  evasive after this much silence
    int expired_ms;             //  expired after this much silence
    int credit_window;          //  events in flight per group
    int ack_timeout_ms;         //  redeliver after this long without ack
    uint64_t retention_bytes;   //  outbox size limit, 0 = none
    uint64_t retention_age_ms;  //  outbox age limit, 0 = none
    int retention_policy;       //  chorus_retention_policy_t
    bool durable;               //  our subscriptions survive our absence
    bool start_earliest;        //  a new group starts at the earliest event
    int command_retry_ms;       //  re-send an unanswered command after this
    int observe_hwm;            //  receive high-water mark of the observer's SUB
    bool verbose;               //  log to stderr
    char *work_endpoint;        //  inproc endpoint of the work pipe
    chorus_store_t *store;      //  the open store, shared with the caller's thread
} chorus__config_t;

//  The engine: a czmq actor that owns the sockets and all mesh state
void
    chorus__engine_actor (zsock_t *pipe, void *config);

//  Views handed to handlers; they wrap a decoded message
struct _chorus_event_t {
    chorus_msg_t *msg;          //  the EVENT
};

struct _chorus_command_t {
    chorus_msg_t *msg;          //  the COMMAND
    const char *sender;         //  the sender's service
};

struct _chorus_reply_t {
    chorus_msg_t *msg;          //  the REPLY (may be NULL for a local failure)
    int status;                 //  0, CHORUS_EREMOTE, CHORUS_ETIMEDOUT, CHORUS_EUNKNOWN
    const char *command_id;     //  id of the command answered
    const char *local_code;     //  code of a local failure
    const char *local_message;  //  message of a local failure
};

#endif
