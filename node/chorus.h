/*  chorus.h — the one public header of libchorus, the Chorus node agent.

    Services link libchorus to publish durable events, subscribe to them as
    a service group, and send and handle commands over a broker-less ZeroMQ
    mesh. Everything a program may call is declared here; nothing else is
    exported from the library.
*/
#ifndef CHORUS_H_INCLUDED
#define CHORUS_H_INCLUDED

#include <stdbool.h>
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

//  Errors, the libuv way. Every function that returns int (or int64_t)
//  returns 0 on success, or the non-negative value its comment names (a
//  count, a file descriptor, the version), and a negative CHORUS_E* code
//  on failure; never a bare -1. Each function's comment lists the codes it
//  can return ("Fails with"). A failed call also records its code for this
//  thread, which chorus_errno () returns, and the reason in words, which
//  chorus_node_error () returns:
//
//      int rc = chorus_node_start (node);
//      if (rc < 0)
//          fprintf (stderr, "cannot start: %s (%s)\n", chorus_strerror (rc),
//                   chorus_node_error (node));
//
//  Test for failure with `rc < 0` (or `rc != 0` where success is 0 only).
//  A function that returns a pointer returns NULL on failure, with
//  chorus_errno () and chorus_node_error (NULL) set. Codes are negative
//  and far from -1 so that they never collide with a count, a size or a
//  system errno.
typedef enum {
    CHORUS_OK = 0,
    CHORUS_EINVAL = -1001,       //  an argument was invalid (NULL, too long, bad name)
    CHORUS_ENOMEM = -1002,       //  out of memory
    CHORUS_ESTORE = -1003,       //  the durable store failed (disk full, locked, permission)
    CHORUS_ETIMEDOUT = -1004,    //  a deadline passed
    CHORUS_EMALFORMED = -1005,   //  a message broke the protocol and was dropped
    CHORUS_ETOOBIG = -1006,      //  a payload or field exceeded its protocol limit
    CHORUS_ESTATE = -1007,       //  the call is not allowed in the object's current state
    CHORUS_EFULL = -1008,        //  retention is full and the policy refuses new events
    CHORUS_EUNKNOWN = -1009,     //  unknown command, service or flow
    CHORUS_EREMOTE = -1010,      //  the remote handler replied with an error
    CHORUS_EINTERRUPTED = -1011, //  interrupted by a signal or by shutdown
    CHORUS_ECORRUPT = -1012,     //  the durable store is damaged: see `chorus store check`
    CHORUS_EFORBIDDEN = -1013,   //  a certificate does not allow it (protocol section 14)
    CHORUS_ENETWORK = -1014,     //  a socket could not be bound or made (endpoint in use or
                                 //  not local, no interface for the beacon, no sockets left)
} chorus_error_t;

//  Returns the library version as CHORUS_MAKE_VERSION (major, minor, patch),
//  and fills the parts that are not NULL.
CHORUS_EXPORT int
    chorus_version (int *major, int *minor, int *patch);

//  Returns a static, human-readable description of an error code, a
//  distinct one for each CHORUS_E* code. Given -1, which is no code, it
//  describes this thread's chorus_errno (), for callers that still pass
//  -1 along.
CHORUS_EXPORT const char *
    chorus_strerror (int code);

//  Returns the error code of the last failed call made by this thread
//  (the code that call returned), or 0 if none failed yet.
CHORUS_EXPORT int
    chorus_errno (void);

//  Where the library's messages go. By default each is a line on stderr
//  ("E: 24-05-01 12:00:00 chorus: ..."; W for a warning, D for debug); a
//  handler gets each message with its level instead, and the library then
//  writes nothing of its own to stderr or stdout. Messages come from any
//  thread (each node's engine runs in its own), so the handler must be
//  thread-safe; nor may it call a node's functions (it may be called in
//  the middle of one: a node run inline logs from the application's
//  thread, inside chorus_node_run or a publish). NULL restores the
//  default. The setting is for the whole
//  process.
//  An error message is the reason a call failed for a cause outside the
//  program (the store, the network, a certificate, damage), the same text
//  chorus_node_error gives once the call returns: a program that reports
//  its failures itself, as the chorus tools do, may drop errors and show
//  the rest. A refused argument is not logged; chorus_node_error says why.
typedef enum {
    CHORUS_LOG_ERROR = 1,       //  a call failed, and why
    CHORUS_LOG_WARNING = 2,     //  something went wrong and the node goes on
    CHORUS_LOG_DEBUG = 3,       //  what a verbose node does
} chorus_log_level_t;
typedef void (chorus_log_fn) (chorus_log_level_t level, const char *message, void *arg);
CHORUS_EXPORT void
    chorus_set_log (chorus_log_fn *handler, void *arg);

//  --------------------------------------------------------------------------
//  The node agent. A node is one instance of a service: it publishes events,
//  receives the events its service group subscribes to, handles commands,
//  and sends commands to other services. A node object is used from one
//  thread, the one that calls dispatch or run; all handlers run there.

typedef struct _chorus_node_t chorus_node_t;
typedef struct _chorus_event_t chorus_event_t;        //  an event being handled
typedef struct _chorus_command_t chorus_command_t;    //  a command being handled
typedef struct _chorus_reply_t chorus_reply_t;        //  a reply, built or received

//  An event handler returns 0 when it has handled the event (it is then
//  acknowledged and never run again on this node), or non-zero to reject it
//  (it is redelivered later, after a backoff).
typedef int (chorus_event_fn) (chorus_node_t *node, chorus_event_t *event, void *arg);

//  A command handler fills the reply: a payload, or an error. A reply left
//  untouched is a success with no payload.
typedef void (chorus_command_fn) (chorus_node_t *node, chorus_command_t *command,
                                  chorus_reply_t *reply, void *arg);

//  Called with the reply to a command this node sent, or with a timeout or
//  other local failure (chorus_reply_status () tells which). Every command
//  sent gets exactly one call: when the node is destroyed first, it is
//  CHORUS_EINTERRUPTED, made during chorus_node_destroy, so that the
//  handler can free its argument; it must not use the node then.
typedef void (chorus_reply_fn) (chorus_node_t *node, chorus_reply_t *reply, void *arg);

//  Peer states, as reported to a peer handler
typedef enum {
    CHORUS_PEER_JOINED = 1,     //  a new peer is known: met, or heard of in
                                //  membership news (protocol section 5)
    CHORUS_PEER_EVASIVE = 2,    //  silent for longer than the evasive time
    CHORUS_PEER_ALIVE = 3,      //  heard from again after being evasive
    CHORUS_PEER_EXPIRED = 4,    //  silent for longer than the expiry time, forgotten
    CHORUS_PEER_LEFT = 5,       //  said goodbye, forgotten
} chorus_peer_state_t;

//  What a node knows of a peer
typedef struct {
    const char *service;        //  the peer's service (group)
    const char *instance;       //  its instance id
    const char *endpoint;       //  its inbox (ROUTER) endpoint
    const char *pub_endpoint;   //  its PUB endpoint ("" until it is met)
    const char *subscriptions;  //  its topic prefixes, comma-separated ("" until met)
    chorus_peer_state_t state;  //  JOINED/ALIVE, EVASIVE, EXPIRED or LEFT
    uint64_t last_seen;         //  ms since epoch when last heard from
    uint64_t head;              //  its latest published sequence number
    const char *key;            //  its CURVE public key (Z85), NULL on a plaintext mesh
    bool authenticated;         //  its key was checked against our trust directory
} chorus_peer_t;

typedef void (chorus_peer_fn) (chorus_node_t *node, const chorus_peer_t *peer, void *arg);

//  Called when a publisher reports that events this node was due are gone
//  (retention dropped them): publisher instance, first and last lost seq.
typedef void (chorus_truncated_fn) (chorus_node_t *node, const char *publisher, uint64_t from,
                                    uint64_t to, const char *reason, void *arg);

//  Retention policies when the outbox is full and some group has not
//  acknowledged the oldest events
typedef enum {
    CHORUS_RETAIN_REFUSE = 0,       //  publish fails with CHORUS_EFULL (default)
    CHORUS_RETAIN_DROP_OLDEST = 1,  //  drop the oldest, tell the groups with TRUNCATED
} chorus_retention_policy_t;

//  Create a node for a service (its group). The name is 1-64 printable
//  ASCII characters without spaces. Returns NULL on an invalid name
//  (chorus_errno () CHORUS_EINVAL, chorus_node_error (NULL) says why).
CHORUS_EXPORT chorus_node_t *
    chorus_node_new (const char *service);

//  Stop the node (saying goodbye to its peers) and free it; safe on NULL,
//  nulls the caller's pointer. Unhandled work is left for redelivery.
CHORUS_EXPORT void
    chorus_node_destroy (chorus_node_t **self_p);

//  Configuration, before start. Each returns 0, or fails with
//    CHORUS_EINVAL  a value out of its range (the comment gives it)
//    CHORUS_ESTATE  the node has started already
//  The store directory keeps the node's identity, outbox and inbox; without
//  one the node uses a temporary store that is deleted with it (its
//  subscriptions are then not durable).
CHORUS_EXPORT int
    chorus_node_set_store (chorus_node_t *self, const char *dir);
//  The mesh this node belongs to (default: $CHORUS_MESH, else "default").
//  Nodes of different meshes ignore each other even when they reach each
//  other's endpoints, e.g. through a port reused on the same host.
CHORUS_EXPORT int
    chorus_node_set_mesh (chorus_node_t *self, const char *mesh);
//  The inbox endpoint to bind, e.g. "tcp://127.0.0.1:5670" (default
//  "tcp://127.0.0.1:0", a random free port). It is also announced to peers,
//  so it must be an address they can connect to; on a wildcard address
//  ("tcp://0.0.0.0:5670") the node announces the address of its interface
//  that routes to its first seed (or the beacon's interface, or
//  127.0.0.1 when it has neither), unless told what to advertise.
CHORUS_EXPORT int
    chorus_node_set_listen (chorus_node_t *self, const char *endpoint);
//  The address to announce to peers instead, "HOST" or "HOST:PORT" (an IPv6
//  HOST in brackets), for a node behind NAT or port forwarding, or on a
//  host whose routes do not tell: HOST replaces the host of the inbox and
//  PUB endpoints, PORT the inbox's port (the PUB keeps its own). NULL or ""
//  for the default: $CHORUS_ADVERTISE, else found as above. Returns 0, or
//  CHORUS_EINVAL naming what is wrong (chorus_node_start fails the same way
//  on a bad $CHORUS_ADVERTISE).
CHORUS_EXPORT int
    chorus_node_set_advertise (chorus_node_t *self, const char *address);
//  Serves the node's figures for Prometheus at http://ADDRESS/metrics, in
//  the text format, from a thread of its own: address is "HOST:PORT" (an
//  IPv4 address or localhost; PORT 0 takes a free one, which
//  chorus_node_metrics_address then gives). NULL or "" for the default:
//  $CHORUS_METRICS, else no server. Serve on loopback unless the figures
//  are meant for other hosts. chorus_node_start fails with CHORUS_EINVAL on
//  an address that is not HOST:PORT, and CHORUS_ENETWORK when it cannot be
//  bound. The series are listed in the README ("Watch it").
CHORUS_EXPORT int
    chorus_node_set_metrics (chorus_node_t *self, const char *address);
//  Where the figures are served, "HOST:PORT", after start; NULL if not
CHORUS_EXPORT const char *
    chorus_node_metrics_address (chorus_node_t *self);
//  Series of the application's own on the node's /metrics: at each
//  scrape, on the server's thread, after the node's series, render writes
//  them with chorus_exposition_family and chorus_exposition_sample (it
//  must not touch what another thread changes without a lock: copy the
//  figures for it, as the node does, about once a second). NULL: none.
//  Before start.
typedef struct _chorus_exposition_t chorus_exposition_t;
typedef void (chorus_metrics_render_fn) (chorus_exposition_t *out, void *arg);
CHORUS_EXPORT int
    chorus_node_set_metrics_render (chorus_node_t *self, chorus_metrics_render_fn *render,
                                    void *arg);
//  Starts a family of series: its # HELP and # TYPE lines; type is
//  "counter", "gauge" or "histogram". The name follows Prometheus's rules
//  ([a-zA-Z_:][a-zA-Z0-9_:]*); a bad one is left out of the scrape
CHORUS_EXPORT void
    chorus_exposition_family (chorus_exposition_t *self, const char *name, const char *type,
                              const char *help);
//  One sample of the family: its name (a histogram's NAME_bucket with an
//  "le" label, NAME_sum, NAME_count), up to 4 label pairs (name, value) in
//  labels, NULL-terminated (labels may be NULL; values are escaped), and
//  the value
CHORUS_EXPORT void
    chorus_exposition_sample (chorus_exposition_t *self, const char *name,
                              const char *const *labels, double value);
//  A peer's inbox endpoint to meet first (repeatable): 1 to 256
//  characters; on a secure node "ENDPOINT@KEY" (see below), checked by
//  chorus_node_start
CHORUS_EXPORT int
    chorus_node_add_seed (chorus_node_t *self, const char *endpoint);

//  Secures the node (protocol section 14): every socket is CURVE, and the
//  node talks only to keys in the trust directory, each within what its
//  certificate allows. cert_file is the node's own secret certificate
//  (czmq zcert format, as `chorus keygen` writes it: FILE.cert_secret, or
//  FILE.cert with FILE.cert_secret beside it); trust_dir is a directory of
//  public certificates (*.cert). Both or neither (NULL, NULL: plaintext,
//  the default). Checked at once: fails with CHORUS_EINVAL, the reason in
//  chorus_node_error and logged as an error, if either cannot be used or
//  only one is given (and CHORUS_ESTATE after start). A seed of a
//  secure node is given with its key: "ENDPOINT@KEY", KEY being the seed's
//  Z85 public key (40 characters) or the name of a certificate in the trust
//  directory.
CHORUS_EXPORT int
    chorus_node_set_security (chorus_node_t *self, const char *cert_file, const char *trust_dir);

//  Asks every secure node of this process to read its trust directory
//  again now (they also notice a change by themselves within a second).
//  Async-signal-safe: a SIGHUP handler may call it.
CHORUS_EXPORT void
    chorus_reload_trust (void);

//  Socket-monitor events (zmq_socket_monitor) of every socket of the node,
//  for operators: event is one of "listening", "bind-failed", "accepted",
//  "accept-failed", "connected", "retried", "disconnected", "closed",
//  "handshake-succeeded" and "handshake-failed"; socket names the node's socket ("inbox", "pub",
//  "dealer", "sub"); peer is the endpoint or the peer the socket leads to;
//  detail says why a handshake failed (unknown key, plaintext peer, ...),
//  or is "". Set before start (else CHORUS_ESTATE).
typedef void (chorus_monitor_fn) (chorus_node_t *node, const char *event, const char *socket,
                                  const char *peer, const char *detail, void *arg);
CHORUS_EXPORT int
    chorus_node_on_monitor (chorus_node_t *self, chorus_monitor_fn *handler, void *arg);
//  UDP beacon discovery on this port, 0 to 65535 (0, the default,
//  disables it)
CHORUS_EXPORT int
    chorus_node_set_beacon (chorus_node_t *self, int port);
//  Liveness (SWIM-style probes, protocol section 6): each member we watch
//  (up to 6, or every member of a mesh of up to 8) must be heard from
//  every interval_ms times their number, and at most one is probed every
//  interval_ms; a peer that answers neither our probe nor the
//  probes we ask others to make is evasive (suspect) evasive_ms after the
//  probe began, and expired expired_ms after (defaults 1000, 1000, 2000);
//  each positive and at least the one before. A node that finds itself
//  stalled (its timers handled 200 ms or more late) stretches these times,
//  up to 9 times, until it keeps up again (local health, section 6.1)
CHORUS_EXPORT int
    chorus_node_set_heartbeat (chorus_node_t *self, int interval_ms, int evasive_ms,
                               int expired_ms);
//  Events in flight per group (default 1000), and the time without an
//  acknowledgement after which an event is sent again (default 30000 ms);
//  both positive
CHORUS_EXPORT int
    chorus_node_set_credit (chorus_node_t *self, int window, int ack_timeout_ms);
//  Outbox retention: at most max_bytes of event bodies and max_age_ms of
//  age (0: no limit), and the policy when a limit is hit (default: 1 GiB,
//  7 days, refuse); the policy one of chorus_retention_policy_t
//  (Beside the outbox on disk, a publisher keeps the encodings of up to
//  32 MiB of its recent events in memory, until the groups with live
//  instances have acknowledged them, so that a burst a group is behind on
//  is not read back from disk.)
CHORUS_EXPORT int
    chorus_node_set_retention (chorus_node_t *self, uint64_t max_bytes, uint64_t max_age_ms,
                               chorus_retention_policy_t policy);
//  When a publish, an inbox record or a group cursor is durable
//  (ARCHITECTURE.md, "Durability"):
typedef enum {
    CHORUS_DURABLE_PROCESS = 0,     //  written to the operating system before the call
                                    //  returns: survives a crash or kill -9 of the
                                    //  process, not a power loss or kernel crash (default)
    CHORUS_DURABLE_FSYNC = 1        //  flushed to disk (fsync) before the call returns:
                                    //  survives a crash of the machine
} chorus_durability_t;
CHORUS_EXPORT int
    chorus_node_set_durability (chorus_node_t *self, chorus_durability_t durability);
//  The same as chorus_node_set_durability: sync true is CHORUS_DURABLE_FSYNC
CHORUS_EXPORT int
    chorus_node_set_sync (chorus_node_t *self, bool sync);
//  Run the node's engine in the application's thread instead of a thread
//  of its own (default false; before start). The engine then works only
//  while the thread is inside chorus_node_run or chorus_node_dispatch (and
//  the calls that wait for its answer): it answers peers, keeps
//  heartbeats and delivers events in the turns it takes there, between
//  the handlers. So no message crosses between threads to reach a
//  handler, and a command's round trip is shorter, but a handler that
//  runs long, or a thread that does not run the node, holds the engine:
//  peers see a stall (protocol section 6.1) and a command waits. For
//  services whose thread runs the node and whose handlers are quick. A
//  node run inline has no single descriptor to poll (chorus_node_fd fails
//  with CHORUS_ESTATE and chorus_node_socket returns NULL): a loop of the
//  application's own waits on those chorus_node_pollfds gives.
CHORUS_EXPORT int
    chorus_node_set_inline (chorus_node_t *self, bool run_inline);
//  A new group (one that never subscribed before on this store) starts at
//  the earliest retained event instead of the latest (default latest)
CHORUS_EXPORT int
    chorus_node_set_start_earliest (chorus_node_t *self, bool earliest);
//  Interval after which an unanswered command is sent again (default
//  10000 ms, positive)
CHORUS_EXPORT int
    chorus_node_set_command_retry (chorus_node_t *self, int retry_ms);
//  Events an observer queues per publisher before ZeroMQ drops them
//  (default 1000, positive); what is dropped is fetched again from the
//  publisher
CHORUS_EXPORT int
    chorus_node_set_observe_hwm (chorus_node_t *self, int hwm);
//  Bounds against whoever can reach this node (protocol section 4.5): at
//  most max_peers peers (default 400) and max_pending connections awaiting
//  a HELLO (default 64), and at most new_per_second new peers admitted per
//  second from one remote IP address, after a first 50 (default 20). A
//  HELLO beyond them is refused and counted ("refused"). Each peer met
//  costs a socket (two for an observer), within ZeroMQ's limit of 1023 per
//  process unless ZSYS_MAX_SOCKETS raises it; a member known only from news
//  costs memory. Each bound positive.
CHORUS_EXPORT int
    chorus_node_set_peer_limits (chorus_node_t *self, int max_peers, int max_pending,
                                 int new_per_second);
//  Closes the connection to a peer once it has carried nothing either way
//  for idle_ms (default 30000; 0: never) and the node needs it no more:
//  the peer is not one it watches (section 6.1), and no command waits on
//  it. The peer stays met, and the connection opens again, HELLO first,
//  when the node has something to send there (protocol section 5.2). A
//  mesh of up to 8 members keeps every connection
CHORUS_EXPORT int
    chorus_node_set_idle_close (chorus_node_t *self, int idle_ms);
//  Log what the node does (at CHORUS_LOG_DEBUG: to stderr, or the log
//  handler); never fails, also after start
CHORUS_EXPORT int
    chorus_node_set_verbose (chorus_node_t *self, bool verbose);

//  Why the last failed call on this node failed, in words (the store is in
//  use by another process, the inbox endpoint cannot be bound, the
//  certificate does not allow the service, ...): the detail behind the
//  code it returned, or "" when the code says it all; never NULL. The text
//  stays until the next failure on the node. With NULL: the detail of the
//  last failed call of this thread, for calls without a node
//  (chorus_node_new, chorus_store_check_dir, chorus_payload_*, ...).
CHORUS_EXPORT const char *
    chorus_node_error (chorus_node_t *self);

//  Start the node: open the store, bind, meet the seeds. Returns 0, or
//  fails with (chorus_node_error gives the reason of each, logged as an
//  error too)
//    CHORUS_ESTATE    started already
//    CHORUS_ESTORE    the store cannot be used: in use by another node or
//                     process, permission, disk full, no temporary directory
//    CHORUS_ECORRUPT  the store is damaged (see chorus_store_check_dir)
//    CHORUS_EFORBIDDEN  the node's certificate does not allow its service
//    CHORUS_EINVAL    a seed unfit for the node's security (no key on a
//                     secure node, an unknown key, a key on a plaintext one)
//    CHORUS_ENETWORK  an endpoint cannot be bound (in use, not a local
//                     address), no interface for the beacon, no sockets left,
//                     or another ZAP handler in the process
//  A node that failed to start may be configured and started again.
CHORUS_EXPORT int
    chorus_node_start (chorus_node_t *self);

//  Identity, after start
CHORUS_EXPORT const char *
    chorus_node_service (chorus_node_t *self);
CHORUS_EXPORT const char *
    chorus_node_instance (chorus_node_t *self);
CHORUS_EXPORT const char *
    chorus_node_endpoint (chorus_node_t *self);

//  Subscribe this node's group to every topic starting with prefix ("" for
//  all). May be called before or after start. Returns 0, or fails with
//  CHORUS_EINVAL (no handler, or a prefix that is not 0 to 256 printable
//  characters without spaces) or, after start, CHORUS_ESTORE (the group's
//  record cannot be written).
CHORUS_EXPORT int
    chorus_node_subscribe (chorus_node_t *self, const char *prefix, chorus_event_fn *handler,
                           void *arg);

//  Observe every event whose topic starts with prefix, from every
//  publisher, live and in per-publisher order, with gaps repaired from the
//  publishers' logs; observing does not take events away from any group.
//  from_earliest starts with each publisher's retained history. Returns 0,
//  or fails with CHORUS_EINVAL (as chorus_node_subscribe); the handler's
//  return value is ignored.
CHORUS_EXPORT int
    chorus_node_observe (chorus_node_t *self, const char *prefix, bool from_earliest,
                         chorus_event_fn *handler, void *arg);

//  Handle a named command. Returns 0, or fails with CHORUS_EINVAL (no
//  handler, or a name that is not 1 to 128 printable characters without
//  spaces).
CHORUS_EXPORT int
    chorus_node_handle (chorus_node_t *self, const char *command, chorus_command_fn *handler,
                        void *arg);

//  Called in the dispatching thread after a round of handlers and before
//  their acknowledgements and replies leave, so that a handler that keeps
//  state can make a whole round durable with one write (group commit)
//  instead of one per event. Returning non-zero means that write failed:
//  the round's handled events are then rejected (redelivered later) and
//  its command replies become retryable "internal" errors.
typedef int (chorus_flush_fn) (chorus_node_t *node, void *arg);
CHORUS_EXPORT void
    chorus_node_on_flush (chorus_node_t *self, chorus_flush_fn *handler, void *arg);

//  Peer changes and retention losses
CHORUS_EXPORT void
    chorus_node_on_peer (chorus_node_t *self, chorus_peer_fn *handler, void *arg);
CHORUS_EXPORT void
    chorus_node_on_truncated (chorus_node_t *self, chorus_truncated_fn *handler, void *arg);

//  Publish an event. It is durable in this node's store when this returns
//  0; otherwise nothing is stored, and it fails with
//    CHORUS_ESTATE      the node has not started
//    CHORUS_EINVAL      a topic that is not 1 to 256 printable characters
//                       without spaces, a key over 256, a payload size
//                       without a payload, a bad correlation, causation or id
//    CHORUS_ETOOBIG     a payload over CHORUS_PAYLOAD_MAX
//    CHORUS_EFORBIDDEN  the node's certificate may not publish the topic
//    CHORUS_EFULL       retention is full and its policy refuses new events
//    CHORUS_ESTORE      the store cannot write it (disk full, ...)
//    CHORUS_ECORRUPT    the store is damaged
//    CHORUS_ENOMEM      out of memory
//  key (may be NULL) keeps order among events with the same key.
//  Published from inside a handler, the event carries the handled
//  message's correlation id, and that message's id as causation.
CHORUS_EXPORT int
    chorus_node_publish (chorus_node_t *self, const char *topic, const char *key,
                         const void *payload, size_t size);

//  Publish with an explicit correlation id (NULL: as chorus_node_publish);
//  the new event's id is written to id_out (33 bytes) when it is not NULL.
//  Fails as chorus_node_publish.
CHORUS_EXPORT int
    chorus_node_publish_traced (chorus_node_t *self, const char *topic, const char *key,
                                const void *payload, size_t size, const char *correlation,
                                char *id_out);

//  Publish with an explicit correlation and causation (NULL: as
//  chorus_node_publish_traced), for work done outside a handler on behalf
//  of an earlier message, e.g. a flow's completion event. Fails as
//  chorus_node_publish.
CHORUS_EXPORT int
    chorus_node_publish_caused (chorus_node_t *self, const char *topic, const char *key,
                                const void *payload, size_t size, const char *correlation,
                                const char *causation, char *id_out);

//  One event of chorus_node_publish_batch
typedef struct {
    const char *topic;          //  required
    const char *key;            //  NULL: none
    const void *payload;        //  NULL with size 0: none
    size_t size;
    const char *correlation;    //  NULL: as chorus_node_publish
    const char *causation;      //  NULL: as chorus_node_publish
    char id [65];               //  in: "" for a fresh id, or the event's own id (1 to 64
                                //  characters of A-Z a-z 0-9 . _ : -); out: the id
    bool duplicate;             //  out: an event with this id was published before (within
                                //  the inbox retention, 24 h) and nothing new was stored
} chorus_publication_t;

#define CHORUS_PUBLISH_BATCH_MAX 4096

//  Publish up to CHORUS_PUBLISH_BATCH_MAX events in one store write: all
//  of them are durable when this returns 0, none when it fails, and
//  under CHORUS_DURABLE_FSYNC they share one fsync. An event given its own
//  id is published at most once: a second publish with the same id stores
//  nothing and sets `duplicate`, so that a producer that re-publishes after
//  a crash does not double the event. Fails as chorus_node_publish, and
//  with CHORUS_EINVAL for more than CHORUS_PUBLISH_BATCH_MAX events;
//  chorus_node_error names the event that was refused.
CHORUS_EXPORT int
    chorus_node_publish_batch (chorus_node_t *self, chorus_publication_t *events,
                               size_t count);

//  As chorus_node_publish_batch, but the events are written to the
//  operating system only (as under CHORUS_DURABLE_PROCESS), whatever the
//  node's durability: they survive a kill of the process when this
//  returns 0, and a crash of the machine once a chorus_node_flush begun
//  after it has returned 0. For a publisher that keeps its own record of
//  what it publishes until then (as the coordinator keeps a flow's events
//  in its journal), so that it need not wait for the disk in its thread.
CHORUS_EXPORT int
    chorus_node_publish_batch_lazy (chorus_node_t *self, chorus_publication_t *events,
                                    size_t count);
//  Flushes the node's store to disk (fsync): everything published before
//  the call survives a crash of the machine once it returns 0. Unlike
//  every other call on a node, it may be made from another thread while
//  the node is in use (not while chorus_node_destroy runs), so that the
//  flush does not stop the node's own thread; it does not set
//  chorus_node_error, which belongs to that thread (the reason of a
//  failure goes to the log). Fails with CHORUS_ESTATE (the node has not
//  started), CHORUS_ESTORE (the flush failed) or CHORUS_ECORRUPT (the
//  store is damaged).
CHORUS_EXPORT int
    chorus_node_flush (chorus_node_t *self);

//  Store maintenance, on a node store no process has open (what `chorus
//  store check` and `chorus store repair` run). check reads every record
//  with its checksum verified and reports what the store holds; repair
//  runs LevelDB's repair, then reports what was lost and records it, so
//  that the node, at its next start, tells its consumers of the lost
//  ranges (TRUNCATED) and numbers its events in a new epoch. Both return 0
//  (sound; repaired and usable), or fail with CHORUS_ECORRUPT for damage
//  (check) or a store repair could not make usable, CHORUS_ESTORE for
//  anything else (in use, permission, no store there), CHORUS_EINVAL for a
//  NULL argument. *report gets a malloc'ed text, one fact per line, in both
//  cases (NULL for CHORUS_EINVAL); chorus_node_error (NULL) gives the
//  reason of a failure in one line.
CHORUS_EXPORT int
    chorus_store_check_dir (const char *dir, char **report);
CHORUS_EXPORT int
    chorus_store_repair_dir (const char *dir, char **report);

//  Send a command to one live instance of a service; handler is called with
//  the reply, or with a timeout after timeout_ms (0: 30000). While no
//  instance is alive, the command waits until one appears. Returns 0 (the
//  handler will be called exactly once), or fails with
//    CHORUS_ESTATE   the node has not started
//    CHORUS_EINVAL   no handler, a negative timeout, a service or command
//                    name that is not valid (as for chorus_node_new and
//                    chorus_node_handle), an idempotency key over 256 or a
//                    bad correlation id
//    CHORUS_ETOOBIG  a payload over CHORUS_PAYLOAD_MAX
//  and the handler is not called.
CHORUS_EXPORT int
    chorus_node_send (chorus_node_t *self, const char *service, const char *command,
                      const void *payload, size_t size, int timeout_ms,
                      chorus_reply_fn *handler, void *arg);

//  As chorus_node_send, with an idempotency key (NULL: the command id) and
//  a correlation id (NULL: from the handled message, or a new one). Fails
//  as chorus_node_send.
CHORUS_EXPORT int
    chorus_node_send_traced (chorus_node_t *self, const char *service, const char *command,
                             const void *payload, size_t size, int timeout_ms,
                             const char *idempotency, const char *correlation,
                             chorus_reply_fn *handler, void *arg);

//  As chorus_node_send_traced, as the caller's try `attempt` (from 1) of
//  the same work: the handler sees it with chorus_command_attempt. A retry
//  keeps the idempotency key of the first try, so that the service answers
//  it with what it did. Fails as chorus_node_send, and with CHORUS_EINVAL
//  for an attempt of 0.
CHORUS_EXPORT int
    chorus_node_send_attempt (chorus_node_t *self, const char *service, const char *command,
                              const void *payload, size_t size, int timeout_ms,
                              const char *idempotency, const char *correlation,
                              uint64_t attempt, chorus_reply_fn *handler, void *arg);

//  The socket that becomes readable when work is ready for this thread (a
//  czmq zsock_t); poll it (zpoller, zloop) and call chorus_node_dispatch.
//  NULL for a node run inline (chorus_node_set_inline).
CHORUS_EXPORT void *
    chorus_node_socket (chorus_node_t *self);

//  A file descriptor for applications with a loop of their own (poll,
//  epoll, libuv), after start: when it is readable, call
//  chorus_node_dispatch, which takes all the work that is ready. Like
//  ZeroMQ's ZMQ_FD it is edge-triggered: it says that work came, not how
//  much, so dispatch once before the first wait and after every wake-up.
//  Fails with CHORUS_ESTATE before start, and for a node run inline.
CHORUS_EXPORT int
    chorus_node_fd (chorus_node_t *self);

//  For a node run inline (chorus_node_set_inline) in a loop of the
//  application's own (poll, epoll, libuv), after start: the descriptors to
//  wait on for reading before the next chorus_node_dispatch, the first max
//  of them written to fds, and in *timeout_ms the longest wait (0:
//  dispatch again at once). Returns how many descriptors there are (more
//  than max: call again with room for them all). Call it after every
//  dispatch, and after any other call on the node (a publish, a send, a
//  deferred result finished), and wait at once: the descriptors are
//  ZeroMQ's, edge-triggered, and a publish or a send leaves work for the
//  engine that no descriptor announces; when any is readable or the time
//  is up, dispatch. Fails with CHORUS_ESTATE before start and for
//  a node with an engine thread (wait on chorus_node_fd), with
//  CHORUS_EINVAL for a negative max or a NULL timeout_ms, and with
//  CHORUS_EINTERRUPTED once the ZeroMQ context is terminated (the process
//  shuts ZeroMQ down; this call or the dispatch after it says so): the
//  node can do nothing more; destroy it.
CHORUS_EXPORT int
    chorus_node_pollfds (chorus_node_t *self, int *fds, int max, int *timeout_ms);

//  Run the handlers of the work that is ready, without waiting (a node run
//  inline first lets its engine take what the network brought). Returns
//  the number of handlers run, or fails with CHORUS_ESTATE (before start),
//  CHORUS_ECORRUPT (the store is damaged: the node stops; the reason,
//  naming the repair, is logged once) or, for a node run inline,
//  CHORUS_EINTERRUPTED once the ZeroMQ context is terminated (as
//  chorus_node_pollfds; the work handed over before then has run).
CHORUS_EXPORT int
    chorus_node_dispatch (chorus_node_t *self);

//  Dispatch work as it comes for up to timeout_ms (-1: until interrupted
//  or chorus_node_stop). Returns 0, or fails with CHORUS_EINTERRUPTED (a
//  signal, SIGINT or SIGTERM), CHORUS_ESTATE (before start) or
//  CHORUS_ECORRUPT (as chorus_node_dispatch).
CHORUS_EXPORT int
    chorus_node_run (chorus_node_t *self, int timeout_ms);

//  Make chorus_node_run return (callable from a handler)
CHORUS_EXPORT void
    chorus_node_stop (chorus_node_t *self);

//  The live peers, met or known from membership news, one call of fn each;
//  returns how many, or fails with CHORUS_ESTATE before start
CHORUS_EXPORT int
    chorus_node_peers (chorus_node_t *self, chorus_peer_fn *fn, void *arg);

//  Deliveries of this node's events to known groups not yet acknowledged
//  (one per event and group), or CHORUS_ESTATE before start
CHORUS_EXPORT int64_t
    chorus_node_unacked (chorus_node_t *self);

//  Called for each group that has not acknowledged every event due to it:
//  the group, how many deliveries are pending, and how many live
//  instances it has (0: it is known from an earlier run, and absent)
typedef void (chorus_pending_fn) (chorus_node_t *node, const char *group, uint64_t pending,
                                  size_t instances, void *arg);
//  One call of fn per such group; returns how many groups, or fails with
//  CHORUS_ESTATE before start
CHORUS_EXPORT int
    chorus_node_pending (chorus_node_t *self, chorus_pending_fn *fn, void *arg);

//  A counter of the node: "malformed", "unknown_peer", "published",
//  "delivered", "handled", "duplicates", "redelivered", "commands_sent",
//  "commands_handled", "replies", "timeouts", "fetches", "truncated",
//  "observed", "expired_commands", "fetched" (events an observer got by
//  FETCH), "forged" (messages that spoke for another node than the peer
//  they came from, dropped), "refused" (peers refused by the bounds of
//  chorus_node_set_peer_limits), "errors_sent", "errors_received" (ERROR
//  messages), "connections_refused" (beyond the connection bounds); on a
//  secure mesh "forbidden" (HELLOs, events and commands a certificate does
//  not allow), "unauthorised" (handshakes refused: key not trusted),
//  "handshakes_failed" (handshakes broken off or of a plaintext peer) and
//  "revoked" (peers cut off when their key left the trust directory);
//  "hellos" (HELLO messages received); "stalls" (times the node found it
//  had handled its timers 200 ms or more late: protocol section 6.1);
//  "datagrams" (probes and their answers sent by UDP: section 6.1.1);
//  "idle_closes" (connections to peers closed unused: section 5.2).
//  Returns 0 for an unknown name.
CHORUS_EXPORT uint64_t
    chorus_node_counter (chorus_node_t *self, const char *name);

//  --------------------------------------------------------------------------
//  An event being handled (valid until the handler returns)

CHORUS_EXPORT const char *chorus_event_topic (chorus_event_t *self);
CHORUS_EXPORT const char *chorus_event_key (chorus_event_t *self);          //  NULL if none
CHORUS_EXPORT const void *chorus_event_payload (chorus_event_t *self);      //  NULL if none
CHORUS_EXPORT size_t chorus_event_size (chorus_event_t *self);
CHORUS_EXPORT const char *chorus_event_id (chorus_event_t *self);
CHORUS_EXPORT const char *chorus_event_correlation (chorus_event_t *self);
CHORUS_EXPORT const char *chorus_event_causation (chorus_event_t *self);    //  NULL if none
CHORUS_EXPORT const char *chorus_event_service (chorus_event_t *self);      //  publisher's
CHORUS_EXPORT const char *chorus_event_instance (chorus_event_t *self);     //  publisher's
CHORUS_EXPORT uint64_t chorus_event_seq (chorus_event_t *self);
CHORUS_EXPORT uint64_t chorus_event_timestamp (chorus_event_t *self);
CHORUS_EXPORT uint64_t chorus_event_attempt (chorus_event_t *self);
CHORUS_EXPORT const char *chorus_event_header (chorus_event_t *self, const char *name);

//  --------------------------------------------------------------------------
//  A command being handled (valid until the handler returns)

CHORUS_EXPORT const char *chorus_command_name (chorus_command_t *self);
CHORUS_EXPORT const void *chorus_command_payload (chorus_command_t *self);
CHORUS_EXPORT size_t chorus_command_size (chorus_command_t *self);
CHORUS_EXPORT const char *chorus_command_id (chorus_command_t *self);
CHORUS_EXPORT const char *chorus_command_idempotency (chorus_command_t *self);  //  or the id
CHORUS_EXPORT const char *chorus_command_correlation (chorus_command_t *self);
CHORUS_EXPORT const char *chorus_command_causation (chorus_command_t *self);
CHORUS_EXPORT const char *chorus_command_sender (chorus_command_t *self);   //  sender's service
CHORUS_EXPORT uint64_t chorus_command_deadline (chorus_command_t *self);
//  The sender's try of this command, from 1: a retry the sender makes of
//  the same work (chorus_node_send_attempt; the coordinator's retries of a
//  task) comes with a higher one and the same idempotency key. Not the
//  transport's own re-sends, which the inbox never runs twice.
CHORUS_EXPORT uint64_t chorus_command_attempt (chorus_command_t *self);

//  --------------------------------------------------------------------------
//  A reply: filled by a command handler, or received by a reply handler

//  Set the reply's payload (copied); returns 0, or fails with
//  CHORUS_ETOOBIG (over CHORUS_PAYLOAD_MAX: the reply becomes an error
//  reply, code too-big, whose message names the size and the limit, so
//  that it never goes out as an empty success) or CHORUS_ESTATE (a reply
//  that reports a local failure, which has no payload)
CHORUS_EXPORT int chorus_reply_set_payload (chorus_reply_t *self, const void *data, size_t size);
//  Make the reply an error with an application code, a message and
//  whether a later attempt could succeed
CHORUS_EXPORT void chorus_reply_set_error (chorus_reply_t *self, const char *code,
                                           const char *message, bool retryable);
//  0 for a success; CHORUS_EREMOTE for an error reply; CHORUS_ETIMEDOUT
//  when no reply came before the deadline; CHORUS_EUNKNOWN for a command the
//  service does not handle; CHORUS_EFORBIDDEN for a command the node's
//  certificate may not call; CHORUS_EINTERRUPTED when the node was
//  destroyed first (a status, not a failure of this call)
CHORUS_EXPORT int chorus_reply_status (chorus_reply_t *self);
CHORUS_EXPORT const void *chorus_reply_payload (chorus_reply_t *self);
CHORUS_EXPORT size_t chorus_reply_size (chorus_reply_t *self);
CHORUS_EXPORT const char *chorus_reply_code (chorus_reply_t *self);        //  NULL on success
CHORUS_EXPORT const char *chorus_reply_message (chorus_reply_t *self);     //  NULL on success
CHORUS_EXPORT bool chorus_reply_retryable (chorus_reply_t *self);
CHORUS_EXPORT const char *chorus_reply_command_id (chorus_reply_t *self);   //  the command's id

//  --------------------------------------------------------------------------
//  Results given later, so that a handler can hand its work to another
//  process or thread and the node's thread goes on with the next message.
//  Inside a handler, chorus_event_defer (its return value is then ignored)
//  or chorus_command_defer (the handler's reply is not sent) keep the
//  message; the result leaves when the program, in the node's thread,
//  calls chorus_deferred_finish. An event handler that defers is the last
//  handler the event runs. Finish or destroy every deferred result before
//  the node is destroyed; one destroyed unfinished sends nothing (the
//  event comes again after the acknowledgement timeout; the command's
//  sender times out).

typedef struct _chorus_deferred_t chorus_deferred_t;

CHORUS_EXPORT chorus_deferred_t *chorus_event_defer (chorus_event_t *event);
CHORUS_EXPORT chorus_deferred_t *chorus_command_defer (chorus_command_t *command);
//  The message kept: an event for chorus_event_defer, else NULL
CHORUS_EXPORT chorus_event_t *chorus_deferred_event (chorus_deferred_t *self);
//  The command kept and the reply to fill: for chorus_command_defer, else NULL
CHORUS_EXPORT chorus_command_t *chorus_deferred_command (chorus_deferred_t *self);
CHORUS_EXPORT chorus_reply_t *chorus_deferred_reply (chorus_deferred_t *self);
//  Send the result: for an event, status 0 acknowledges it and non-zero
//  rejects it (as an event handler's return value); for a command, the
//  reply as filled (status is ignored). Destroys the deferred result.
CHORUS_EXPORT void chorus_deferred_finish (chorus_node_t *node, chorus_deferred_t **self_p,
                                           int status);
CHORUS_EXPORT void chorus_deferred_destroy (chorus_deferred_t **self_p);

//  --------------------------------------------------------------------------
//  Payloads as JSON. The mesh carries a payload as opaque bytes; by the
//  convention of protocol section 9.1 it holds one MessagePack value of the
//  JSON data model, raw bytes being a bin, written in JSON as
//  {"$bin": "<base64>"}. These calls convert between such a payload and
//  JSON text, so that a service need not speak MessagePack itself.

//  Deepest nesting of arrays and objects, either way (msgpack-c's limit)
#define CHORUS_PAYLOAD_MAX_DEPTH 32
//  The protocol's limit on a payload (section 9, BIN)
#define CHORUS_PAYLOAD_MAX 1048576

//  Flags of chorus_payload_to_json
#define CHORUS_PAYLOAD_PRETTY 1         //  indented text, not compact
#define CHORUS_PAYLOAD_SORT 2           //  object keys sorted, not in the payload's order
#define CHORUS_PAYLOAD_RAW_AS_BIN 4     //  bytes that are not one MessagePack value become
                                        //  {"$bin": "<base64 of them all>"}, not an error

//  Encode the JSON document of `length` bytes at json (any value, scalars
//  too; trailing text and duplicate keys are errors) as a payload: objects
//  become maps with str keys, integers int64, reals float64, and an object
//  whose one member is "$bin" with a base64 string (RFC 4648, padded) a bin.
//  max_size bounds the encoding: 0 for CHORUS_PAYLOAD_MAX, SIZE_MAX for no
//  bound. Returns 0 with *data, *size: bytes the caller owns and releases
//  with chorus_payload_free (or free). Otherwise *data is NULL, the reason
//  is in error when it is not NULL (at most error_size bytes, e.g. "line 1
//  column 7: ..."), and the code (also chorus_errno ()) is
//    CHORUS_EINVAL   not JSON, a bad "$bin", nesting deeper than
//                    CHORUS_PAYLOAD_MAX_DEPTH, or data or size NULL
//    CHORUS_ETOOBIG  the encoding is larger than max_size
//    CHORUS_ENOMEM   out of memory
CHORUS_EXPORT int
    chorus_payload_from_json (const char *json, size_t length, size_t max_size, void **data,
                              size_t *size, char *error, size_t error_size);

//  Render a payload (untrusted bytes) as JSON text: bin as {"$bin":
//  "<base64>"}, ext as {"$ext": type, "$bin": "<base64>"}, non-string map
//  keys as their JSON text ("1"), a uint64 above INT64_MAX as a real, NaN
//  and infinities as null, invalid UTF-8 in a str as U+FFFD. Returns 0 with
//  *json, a NUL-terminated text the caller owns and releases with
//  chorus_payload_free (or free). Otherwise *json is NULL, the reason is in
//  error as above, and the code (also chorus_errno ()) is
//    CHORUS_EMALFORMED  the bytes are not exactly one well-formed value
//                       within CHORUS_PAYLOAD_MAX_DEPTH (no bytes included),
//                       unless flags hold CHORUS_PAYLOAD_RAW_AS_BIN
//    CHORUS_EINVAL      json is NULL
//    CHORUS_ENOMEM      out of memory
CHORUS_EXPORT int
    chorus_payload_to_json (const void *data, size_t size, int flags, char **json, char *error,
                            size_t error_size);

//  Release what the two calls above return; safe on NULL
CHORUS_EXPORT void
    chorus_payload_free (void *data);

//  --------------------------------------------------------------------------
//  Payloads built and read in C. A builder writes one value of the
//  convention above, in order: a container takes the next `count` values,
//  a map as key, value, key, value... with str keys.
//
//      chorus_builder_t *builder = chorus_builder_new ();
//      chorus_builder_map (builder, 2);
//      chorus_builder_str (builder, "order_id");
//      chorus_builder_str (builder, "A-17");
//      chorus_builder_str (builder, "total");
//      chorus_builder_real (builder, 42.5);
//      const void *data;
//      size_t size;
//      if (chorus_builder_payload (builder, &data, &size) == 0)
//          chorus_node_publish (node, "order.created", "A-17", data, size);
//      chorus_builder_destroy (&builder);
//
//  The first failure sticks: later calls do nothing and return it again,
//  and chorus_builder_payload returns it, so a sequence of calls needs one
//  check at its end. Codes: CHORUS_EINVAL (a key that is not a str, NULL
//  text, nesting deeper than CHORUS_PAYLOAD_MAX_DEPTH, a value beyond the
//  last one, a payload asked for before its containers are full),
//  CHORUS_ETOOBIG (over CHORUS_PAYLOAD_MAX), CHORUS_ENOMEM.
typedef struct _chorus_builder_t chorus_builder_t;

CHORUS_EXPORT chorus_builder_t *chorus_builder_new (void);
CHORUS_EXPORT void chorus_builder_destroy (chorus_builder_t **self_p);
//  Empties the builder, and clears its failure, to build another payload
CHORUS_EXPORT void chorus_builder_reset (chorus_builder_t *self);
//  A map of `count` pairs, an array of `count` values
CHORUS_EXPORT int chorus_builder_map (chorus_builder_t *self, size_t count);
CHORUS_EXPORT int chorus_builder_array (chorus_builder_t *self, size_t count);
//  A str of the NUL-terminated text, or of `size` bytes (UTF-8, not checked)
CHORUS_EXPORT int chorus_builder_str (chorus_builder_t *self, const char *text);
CHORUS_EXPORT int chorus_builder_strn (chorus_builder_t *self, const char *data, size_t size);
//  A bin: raw bytes
CHORUS_EXPORT int chorus_builder_bin (chorus_builder_t *self, const void *data, size_t size);
CHORUS_EXPORT int chorus_builder_int (chorus_builder_t *self, int64_t value);
CHORUS_EXPORT int chorus_builder_real (chorus_builder_t *self, double value);
CHORUS_EXPORT int chorus_builder_bool (chorus_builder_t *self, bool value);
CHORUS_EXPORT int chorus_builder_null (chorus_builder_t *self);
//  The payload built, once its one value is complete: 0 with *data and
//  *size, valid until the builder changes; otherwise the failure
CHORUS_EXPORT int chorus_builder_payload (chorus_builder_t *self, const void **data,
                                          size_t *size);

//  The reading side: a payload (untrusted bytes, checked whole) opened for
//  lookups by path. A path is keys and indexes joined by dots, as in a
//  flow's paths: "items.0.sku" is the sku of the first item; each segment
//  is a key of a map, or on an array an index from 0; "" is the whole
//  value. (A key holding a dot cannot be named.)
//
//      chorus_fields_t *fields = chorus_fields_new (chorus_event_payload (event),
//                                                   chorus_event_size (event));
//      char order [64];
//      double total;
//      if (fields && chorus_fields_text (fields, "order_id", order, sizeof order) == 0
//                 && chorus_fields_real (fields, "total", &total) == 0)
//          ...
//      chorus_fields_destroy (&fields);
typedef struct _chorus_fields_t chorus_fields_t;

typedef enum {
    CHORUS_VALUE_MISSING = 0,   //  nothing at that path
    CHORUS_VALUE_NULL = 1,
    CHORUS_VALUE_BOOL = 2,
    CHORUS_VALUE_INT = 3,       //  an integer within int64
    CHORUS_VALUE_REAL = 4,      //  a float, or an integer above INT64_MAX
    CHORUS_VALUE_STR = 5,
    CHORUS_VALUE_BIN = 6,
    CHORUS_VALUE_ARRAY = 7,
    CHORUS_VALUE_MAP = 8,
    CHORUS_VALUE_EXT = 9,
} chorus_value_type_t;

//  One value found in a payload
typedef struct {
    chorus_value_type_t type;
    bool boolean;               //  BOOL
    int64_t integer;            //  INT
    double real;                //  REAL, and INT as a double
    const char *data;           //  STR, BIN, EXT: its bytes, inside the payload (a str is
                                //  not NUL-terminated)
    size_t size;                //  STR, BIN, EXT: bytes; ARRAY, MAP: values, pairs
} chorus_value_t;

//  Opens the payload of `size` bytes at data, which must outlive the
//  reader. NULL when it is not exactly one well-formed value within
//  CHORUS_PAYLOAD_MAX_DEPTH (CHORUS_EMALFORMED, the reason in
//  chorus_node_error (NULL)), or out of memory
CHORUS_EXPORT chorus_fields_t *chorus_fields_new (const void *data, size_t size);
CHORUS_EXPORT void chorus_fields_destroy (chorus_fields_t **self_p);
//  The value at path: 0, with type CHORUS_VALUE_MISSING when there is none;
//  CHORUS_EINVAL for a NULL argument
CHORUS_EXPORT int chorus_fields_get (chorus_fields_t *self, const char *path,
                                     chorus_value_t *value);
//  The value at path, of one type: 0, or CHORUS_EINVAL when it is missing
//  or of another type, the reason (which, and what was found) in
//  chorus_node_error (NULL). A real takes an integer too. A str is given
//  as bytes inside the payload, or copied and NUL-terminated into buffer
//  (CHORUS_ETOOBIG when it does not fit with its NUL, CHORUS_EINVAL when
//  it holds a NUL)
CHORUS_EXPORT int chorus_fields_int (chorus_fields_t *self, const char *path, int64_t *value);
CHORUS_EXPORT int chorus_fields_real (chorus_fields_t *self, const char *path, double *value);
CHORUS_EXPORT int chorus_fields_bool (chorus_fields_t *self, const char *path, bool *value);
CHORUS_EXPORT int chorus_fields_str (chorus_fields_t *self, const char *path, const char **data,
                                     size_t *size);
CHORUS_EXPORT int chorus_fields_text (chorus_fields_t *self, const char *path, char *buffer,
                                      size_t buffer_size);

#ifdef __cplusplus
}
#endif

#endif
