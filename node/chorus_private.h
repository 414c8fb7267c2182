/*  chorus_private.h — declarations shared by the library's own classes,
    never installed. Private symbols carry the chorus__ prefix.
*/
#ifndef CHORUS_PRIVATE_H_INCLUDED
#define CHORUS_PRIVATE_H_INCLUDED

#include "chorus.h"
#include "chorus_msg.h"
#include "chorus_store.h"
#include "chorus_metrics.h"

#include <pthread.h>
#include <sys/socket.h>

//  Records the error of the last failed call in this thread and returns
//  the code, so that callers can write `return chorus__fail (CHORUS_EINVAL);`.
//  Its detail is the error logged just before, if any, else "".
int
    chorus__fail (int code);
//  The same, with the detail given (not logged: for refused arguments)
int
    chorus__failf (int code, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));
//  The detail of this thread's last failure, "" if it had none
const char *
    chorus__detail (void);
//  A message of the library, to the log handler or stderr; an error's text
//  is also the detail chorus_node_error gives for the failure that follows
void
    chorus__log (chorus_log_level_t level, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

//  A self-test's check: on failure, says which and where, and aborts the
//  test program (the classes' self-tests, in the czmq manner; unlike
//  assert, never compiled out)
#define CHORUS__CHECK(condition) \
    do { \
        if (!(condition)) { \
            fprintf (stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #condition); \
            abort (); \
        } \
    } while (0)

//  Milliseconds since the Unix epoch: for the wire (timestamps, deadlines)
//  and for records that outlive the process, never for local timers
uint64_t
    chorus__now (void);

//  Milliseconds on a monotonic clock, for every local timer (heartbeats,
//  expiry, ack and retry timeouts): a step of the wall clock neither fires
//  nor stops them
uint64_t
    chorus__mono (void);

//  A new ZeroMQ socket, or NULL when the system cannot make one (the
//  context's socket limit or the process's file descriptors are used up).
//  czmq's zsock_new aborts instead, and a peer can cause both, so every
//  socket made for a peer comes from here. czmq's zsock_set_*, zpoller and
//  zframe calls take the handle as it is.
void *
    chorus__socket_new (int type);
//  Closes a socket from chorus__socket_new; safe on NULL, nulls the pointer
void
    chorus__socket_destroy (void **socket_p);

//  Writes a fresh message id (32 hex characters and a NUL) into id: a
//  random per-process prefix and a counter, unique without coordination.
void
    chorus__new_id (char id [33]);

//  Writes size bytes as uppercase hex and a NUL (2 * size + 1 bytes);
//  without printf, which costs more than the rest of a hot path
void
    chorus__hex (const uint8_t *bytes, size_t size, char *text);

//  Writes value in decimal and a NUL into text (at least 21 bytes);
//  returns the number of digits
size_t
    chorus__decimal (uint64_t value, char *text);

//  True if the name is 1..max printable ASCII characters without spaces
bool
    chorus__valid_name (const char *name, size_t max);

//  Addresses we announce (chorus_address.c). Parses "HOST" or "HOST:PORT"
//  (an IPv6 HOST in brackets) into host (brackets kept) and *port (0 when
//  none); false with the reason in error when it is not one
bool
    chorus__advertise_parse (const char *text, char *host, size_t host_size, int *port,
                             char *error, size_t error_size);
//  The address of this host's interface that routes to an endpoint's host
//  ("tcp://HOST:PORT", an "@KEY" after it ignored), as an endpoint host
//  (IPv6 in brackets); false when there is none (no route, a name that does
//  not resolve, not tcp)
bool
    chorus__route_host (const char *endpoint, char *host, size_t host_size);
//  True if a tcp endpoint's host is a loopback address (127.0.0.0/8, ::1,
//  localhost); false for other hosts and other transports
bool
    chorus__endpoint_loopback (const char *endpoint);
//  True if a tcp endpoint's host is on no particular interface (0.0.0.0, ::, *)
bool
    chorus__endpoint_wildcard (const char *endpoint);
//  The socket address of a tcp endpoint whose host is a number (IPv4, or
//  IPv6 in brackets; "*" is 0.0.0.0); false for a name, which would need a
//  lookup that can block, and for other transports
bool
    chorus__endpoint_sockaddr (const char *endpoint, struct sockaddr_storage *address,
                               socklen_t *size);

//  A subscription as announced in HELLO
typedef struct {
    char *prefix;               //  topic prefix
    uint64_t since;             //  group creation time (0 = earliest)
    uint64_t flags;             //  CHORUS_SUB_*
} chorus__sub_t;

//  A list of subscriptions: freed, and one more added (prefix copied)
void
    chorus__subs_free (chorus__sub_t **subs_p, size_t *size_p);
void
    chorus__subs_add (chorus__sub_t **subs_p, size_t *size_p, const char *prefix, uint64_t since,
                      uint64_t flags);

//  True if topic starts with prefix
static inline bool
chorus__prefix_match (const char *prefix, const char *topic)
{
    return strncmp (topic, prefix, strlen (prefix)) == 0;
}

//  Published events on their way from the application's thread to the
//  engine. The publisher queues each event (and its encoded body) and
//  wakes the engine only when the queue was empty, so that a burst of
//  publishes costs one message on the pipe, not one each. The queue is
//  bounded: a publisher that runs ahead of the engine waits for room.
typedef struct {
    pthread_mutex_t lock;       //  guards the rest
    pthread_cond_t room;        //  signalled when the engine empties the queue
    chorus_msg_t **events;      //  queued events, in seq order
    zframe_t **bodies;          //  their encoded bodies
    size_t size;                //  how many are queued
    size_t max;                 //  how many fit (the bound)
    bool waking;                //  the engine has been woken and not yet taken them
} chorus__handoff_t;

void
    chorus__handoff_init (chorus__handoff_t *self, size_t max);
//  Frees the queue and whatever it still holds
void
    chorus__handoff_destroy (chorus__handoff_t *self);
//  True if events are queued
bool
    chorus__handoff_pending (chorus__handoff_t *self);
//  True if the queue has no room: a push now would wait for the engine
bool
    chorus__handoff_full (chorus__handoff_t *self);
//  Queues an event (takes both); true if the caller must wake the engine
bool
    chorus__handoff_push (chorus__handoff_t *self, chorus_msg_t *event, zframe_t *body);
//  Takes every queued event into events and bodies (arrays of max);
//  returns how many
size_t
    chorus__handoff_take (chorus__handoff_t *self, chorus_msg_t **events, zframe_t **bodies);

//  What a node shows at /metrics: the engine copies its figures here about
//  once a second, and the metrics server's thread reads them, under lock
#define CHORUS_STATS_COUNTERS 32
#define CHORUS_STATS_GROUPS 64    //  groups shown at /metrics, at most
#define CHORUS_STATS_TOPICS 64    //  topics counted apart at /metrics, at most
//  Events published on one topic (the first CHORUS_STATS_TOPICS topics a
//  node publishes on; the rest are counted together as "_other")
typedef struct {
    char name [257];            //  the topic
    uint64_t published;         //  events published on it
} chorus__stats_topic_t;
//  A group that takes our events, and how many of them it has not
//  acknowledged yet (due, in flight or waiting to be sent again)
typedef struct {
    char name [65];             //  the group (service) name
    uint64_t lag;               //  its events not yet acknowledged
} chorus__stats_group_t;
typedef struct {
    pthread_mutex_t lock;       //  guards what follows
    uint64_t counters [CHORUS_STATS_COUNTERS];  //  the engine's, by chorus__counter_t
    size_t peers_alive;         //  peers heard from lately
    size_t peers_evasive;       //  peers silent for longer than the evasive time
    int local_health;           //  0 (well) to 8: our own stalls (protocol section 6.1)
    bool copied;                //  the engine has copied its figures once
    chorus__stats_group_t groups [CHORUS_STATS_GROUPS];
    size_t groups_size;         //  how many
    bool groups_cut;            //  more groups than the table holds
    uint64_t oldest_pending;    //  publish time (ms) of the oldest event a group has not
                                //  acknowledged, 0: none
    chorus__stats_topic_t topics [CHORUS_STATS_TOPICS];    //  events published, by topic
    size_t topics_size;         //  how many
    uint64_t topics_other;      //  events published on the topics past those
    //  Observed by the engine as they happen, without the lock
    chorus_histogram_t ack_duration;        //  an event's delivery to its acknowledgement
    chorus_histogram_t command_duration;    //  a command's sending to its reply
} chorus__stats_t;

//  Sets up the figures (their lock and histograms)
void
    chorus__stats_init (chorus__stats_t *stats);

struct _chorus_exposition_t;
//  Writes a node's figures for /metrics (chorus_stats.c)
void
    chorus__stats_render (chorus__stats_t *stats, chorus_store_t *store, const char *service,
                          struct _chorus_exposition_t *out);

//  Everything the node wrapper configures, handed to the engine at start
typedef struct {
    char *service;              //  our service (group) name
    char *mesh;                 //  our mesh: HELLOs from other meshes are ignored
    char *listen;               //  inbox endpoint to bind
    char *advertise;            //  HOST[:PORT] announced instead of the bound host, or NULL
    bool advertise_from_env;    //  advertise came from CHORUS_ADVERTISE, unchecked
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
    int max_peers;              //  peers kept at most; more are refused
    int max_pending;            //  connections awaiting a HELLO at most
    int peer_rate;              //  new peers admitted per second per remote address
    int idle_close_ms;          //  a connection to a peer we need no more closes after
                                //  this long unused (protocol section 5.2), 0 = never
    bool verbose;               //  log to stderr
    char *work_endpoint;        //  inproc endpoint of the work pipe
    chorus_store_t *store;      //  the open store, shared with the caller's thread
    chorus__handoff_t *handoff; //  published events for the engine
    zlist_t *inline_work;       //  run inline: work for the application, in order
                                //  (zmsg_t, as the work pipe would carry it), else NULL
    zsock_t *inline_app;        //  run inline: the application's end of the work pipe
    struct _chorus__keys_t *keys;   //  our key and trusted keys, or NULL: plaintext
    bool monitor;               //  report socket-monitor events to the application
    chorus__stats_t *stats;     //  where the engine copies its figures, or NULL
} chorus__config_t;

//  The work pipe carries batches of records between the engine and the
//  application's thread, so that one ZeroMQ message (and one wake-up)
//  moves many events, commands or results. A batch is a message of two
//  frames, "B" and the records back to back; other work is a message
//  whose first frame names its kind. Engine to application: E (event for
//  our group), O (observed event), C (command; text is the sender's
//  service), R (reply). Application to engine: A (event handled, status
//  is the ack status), o (observed events run, status is how many), Y
//  (command answered; second is the reply).
typedef struct {
    char kind;                  //  what the record is, as above
    uint32_t status;            //  A: ack status; o: count
    uint32_t text_size;         //  bytes of text after the record
    void *first;                //  the message, owned by the receiver
    void *second;               //  Y: the reply
} chorus__work_t;

//  Records collected for one batch
typedef struct {
    uint8_t *data;              //  records back to back
    size_t size;                //  bytes used
    size_t max;                 //  bytes allocated
    size_t count;               //  records held
} chorus__batch_t;

//  Adds a record; text (may be NULL) is copied after it
void
    chorus__batch_add (chorus__batch_t *self, char kind, uint32_t status, void *first,
                       void *second, const char *text);
//  Sends the records as one batch message and empties the batch; 0 or -1
int
    chorus__batch_send (chorus__batch_t *self, zsock_t *socket);
//  The records as one batch message, as chorus__batch_send sends it, and
//  empties the batch; NULL when it holds none
zmsg_t *
    chorus__batch_take (chorus__batch_t *self);
//  Frees the batch's buffer
void
    chorus__batch_free (chorus__batch_t *self);
//  Work that will never run (the node is going away): frees the messages
//  held by the batch's records, then the batch itself
void
    chorus__batch_discard (chorus__batch_t *self);
//  The same for every batch waiting to be read on a socket
void
    chorus__batch_discard_queued (zsock_t *socket);
//  And in a list (zmsg_t, as a socket would carry them), which stays
void
    chorus__batch_discard_list (zlist_t *list);
//  Reads the record at *pos of a batch frame and moves *pos past it;
//  false at the end. text points into the frame (text_size bytes).
bool
    chorus__batch_next (const uint8_t *data, size_t size, size_t *pos, chorus__work_t *record,
                        const char **text);
//  Receives one message without waiting; NULL when none is ready
zmsg_t *
    chorus__recv_ready (zsock_t *socket);

//  The engine: owns the sockets and all mesh state. It runs as a czmq
//  actor in a thread of its own, or, for a node run inline
//  (chorus_node_set_inline), in turns the application's thread takes
typedef struct _chorus__engine_t chorus__engine_t;
//  An engine that takes requests on pipe, configured by config (owned by
//  the caller, which keeps it until the engine is destroyed)
chorus__engine_t *
    chorus__engine_new (zsock_t *pipe, chorus__config_t *config);
//  Records and answers what the application sent, says goodbye to peers,
//  and frees the engine
void
    chorus__engine_destroy (chorus__engine_t **self_p);
//  One turn: waits for the next thing ready, up to the next timer or
//  max_wait ms (-1: no cap), handles it and does what is due. Returns 1
//  if something was ready, 0 if not, -1 once the engine is told to end
//  ($TERM) or its context is terminated
int
    chorus__engine_turn (chorus__engine_t *self, int max_wait);
//  Handles every request waiting on the pipe now, without waiting: so the
//  application's thread gets its answer from an inline engine
void
    chorus__engine_serve (chorus__engine_t *self);
//  For a wait in the application's loop (an inline engine's): the
//  descriptors to wait on for reading, the first max of them in fds, and
//  the longest wait in *timeout_ms (0: take a turn at once; -1: none due);
//  returns how many there are, or -1 once the ZeroMQ context is terminated
//  (the engine can do nothing more)
int
    chorus__engine_fds (chorus__engine_t *self, int *fds, size_t max, int *timeout_ms);
//  Records and answers the application's results at once (an inline
//  engine's, instead of a batch on the work pipe); empties the batch,
//  whose records' messages it takes
void
    chorus__engine_results (chorus__engine_t *self, chorus__batch_t *batch);
//  Sends a command at once (an inline engine's, instead of SEND on the
//  pipe); takes msg
void
    chorus__engine_send (chorus__engine_t *self, chorus_msg_t *msg);
//  The actor: an engine's turns in a thread of its own until $TERM
void
    chorus__engine_actor (zsock_t *pipe, void *config);

//  Views handed to handlers; they wrap a decoded message
struct _chorus_event_t {
    chorus_msg_t *msg;          //  the EVENT
    chorus_deferred_t *deferred;    //  set by chorus_event_defer
};

struct _chorus_command_t {
    chorus_msg_t *msg;          //  the COMMAND
    const char *sender;         //  the sender's service
    chorus_reply_t *reply;      //  the reply being built
    chorus_deferred_t *deferred;    //  set by chorus_command_defer
};

struct _chorus_reply_t {
    chorus_msg_t *msg;          //  the REPLY (may be NULL for a local failure)
    int status;                 //  0, CHORUS_EREMOTE, CHORUS_ETIMEDOUT, CHORUS_EUNKNOWN
    const char *command_id;     //  id of the command answered
    const char *local_code;     //  code of a local failure
    const char *local_message;  //  message of a local failure
};

//  A result that a handler gives later (chorus_event_defer, chorus_command_defer)
struct _chorus_deferred_t {
    char kind;                  //  'A' an event's acknowledgement, 'Y' a command's reply
    chorus_event_t event;       //  'A': the EVENT, its msg owned
    chorus_command_t command;   //  'Y': the COMMAND, its msg owned
    char sender [128];          //  'Y': the sender's service, for command.sender
    chorus_reply_t reply;       //  'Y': the REPLY being built, its msg owned
};

#endif
