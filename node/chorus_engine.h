/*  chorus_engine.h — the node engine's state, shared by the classes that
    make up the actor: the engine itself (sockets, peers, discovery,
    liveness), delivery (events to groups), commands, and the observer.
    Private to the library.
*/
#ifndef CHORUS_ENGINE_H_INCLUDED
#define CHORUS_ENGINE_H_INCLUDED

#include "chorus_private.h"
#include "chorus_gate.h"
#include "chorus_keys.h"
#include "chorus_monitor.h"

typedef struct _chorus__delivery_t chorus__delivery_t;
typedef struct _chorus__commands_t chorus__commands_t;
typedef struct _chorus__observer_t chorus__observer_t;
typedef struct _chorus__engine_t chorus__engine_t;

//  Engine counters, named for chorus_node_counter
typedef enum {
    C_MALFORMED, C_UNKNOWN_PEER, C_PUBLISHED, C_DELIVERED, C_HANDLED, C_DUPLICATES,
    C_REDELIVERED, C_COMMANDS_SENT, C_COMMANDS_HANDLED, C_REPLIES, C_TIMEOUTS, C_FETCHES,
    C_TRUNCATED, C_OBSERVED, C_EXPIRED_COMMANDS, C_FETCHED, C_FORGED, C_REFUSED,
    C_ERRORS_SENT, C_ERRORS_RECEIVED, C_CONNECTIONS_REFUSED, C_FORBIDDEN, C_UNAUTHORISED,
    C_HANDSHAKES_FAILED, C_REVOKED, C_HELLOS, C_COUNTERS
} chorus__counter_t;

//  Kinds of warning, each printed at a bounded rate
typedef enum {
    W_FORGED, W_REFUSED, W_SHUT_OUT, W_SOCKET, W_ERROR, W_STORE, W_FORBIDDEN, W_HANDSHAKE,
    W_REVOKED, W_UNTRUSTED, W_KINDS
} chorus__warning_t;

extern const char *chorus__counter_names [C_COUNTERS];

//  A peer: another node we have met
typedef struct {
    char *instance;             //  its instance id (32 hex)
    char *service;              //  its service (group)
    char *endpoint;             //  its inbox endpoint
    char *pub_endpoint;         //  its PUB endpoint
    char *address;              //  remote address its first HELLO came from, or ""
    void *dealer;               //  our connection into its inbox (libzmq handle)
    bool hello_sent;            //  our HELLO has gone out first on dealer
    char answers [33];          //  id of its HELLO our first HELLO answers, or 
    uint64_t generation;        //  last HELLO generation seen
    uint64_t started;           //  its start time (HELLO header chorus.started)
    uint64_t head;              //  its latest published seq
    uint64_t last_seen;         //  when we last heard from it (monotonic ms)
    uint64_t last_ping;         //  when we last pinged it (monotonic ms)
    bool evasive;               //  silent for longer than the evasive time
    zlistx_t *backlog;          //  answers that could not go yet (zframe_t), oldest first
    size_t backlog_bytes;       //  their size
    chorus__sub_t *subs;        //  its subscriptions
    size_t subs_size;           //  how many
    size_t commands;            //  commands we have outstanding on it
    char *key;                  //  its CURVE key (Z85), or NULL on a plaintext mesh
    const chorus__grant_t *grant;   //  what its certificate allows it, or NULL
} chorus__peer_t;

struct _chorus__engine_t {
    zsock_t *pipe;              //  control pipe to the node wrapper
    zsock_t *work;              //  work pipe to the application's thread
    chorus__config_t *config;   //  configuration, owned by the wrapper
    chorus_store_t *store;      //  the node's store (shared with the wrapper)
    void *router;               //  our inbox (libzmq handle)
    void *pub;                  //  events to observers: an XPUB (libzmq handle)
    chorus__gate_t *inbox_gate; //  bounds the connections into router
    chorus__gate_t *pub_gate;   //  and into pub
    chorus__monitor_t *monitor; //  socket events for the application, or NULL
    zactor_t *beacon;           //  UDP discovery, or NULL
    zpoller_t *poller;          //  everything we wait on
    char *instance;             //  our instance id (32 hex)
    char *endpoint;             //  our inbox endpoint, as announced
    char *pub_endpoint;         //  our PUB endpoint, as announced
    uint64_t started;           //  when we started (ms since the epoch)
    uint64_t generation;        //  HELLO generation, +1 per announced change
    zhashx_t *peers;            //  instance -> chorus__peer_t
    zhashx_t *pending;          //  endpoint -> connection awaiting the peer's HELLO
    zhashx_t *seeds;            //  seed endpoint -> what we know of the seed
    zhashx_t *admission;        //  remote address -> its bucket of new peers
    uint64_t last_announce;     //  when our HELLO last went to every peer (monotonic)
    chorus__sub_t *subs;        //  our own subscriptions
    size_t subs_size;           //  how many
    zhashx_t *commands_handled; //  command names we handle
    zhashx_t *events_in_hand;   //  "instance/seq" of events the application holds
    chorus__delivery_t *delivery;   //  our events to groups
    chorus__commands_t *commands;   //  commands sent and received
    chorus__observer_t *observer;   //  observing, or NULL
    size_t observed_out;        //  observed events handed over and not yet run
    chorus_msg_t *msg;          //  reusable message for receiving
    chorus_msg_t *ack;          //  reusable EVENT-ACK
    chorus__batch_t handover;   //  work for the application, sent at the end of a turn
    chorus__work_t *results;    //  results read from the application in one turn
    size_t results_max;         //  how many fit
    chorus_msg_t **published;   //  events taken from the hand-off in one turn
    zframe_t **published_bodies;    //  and their bodies
    bool announce;              //  send HELLO to every peer at the next tick
    bool connecting;            //  a HELLO waits for its connection: tick soon
    bool terminated;            //  $TERM received
    uint64_t counters [C_COUNTERS];     //  what happened, for chorus_node_counter
    uint64_t warned [W_KINDS];  //  when each kind of warning was last printed
    uint64_t unwarned [W_KINDS];    //  and how many were held back since
};

//  Engine services used by the other classes
//  Sends a message to a peer over our DEALER, our HELLO first if it has not
//  gone yet; 0, or -1 if it would block or the connection is not up
int
    chorus__engine_send (chorus__engine_t *self, chorus__peer_t *peer, chorus_msg_t *msg);
//  As chorus__engine_send, for a message already encoded into *frame_p
//  (taken, sent or not)
int
    chorus__engine_send_encoded (chorus__engine_t *self, chorus__peer_t *peer, chorus_msg_t *msg,
                                 zframe_t **frame_p);
//  Sends an answer the peer waits for (EVENT-ACK, REPLY); what cannot go
//  now is kept, within a bound, and sent when the connection is up
void
    chorus__engine_answer (chorus__engine_t *self, chorus__peer_t *peer, chorus_msg_t *msg);
//  Sends what the peer's backlog holds, as far as the connection takes it
void
    chorus__engine_flush_backlog (chorus__engine_t *self, chorus__peer_t *peer);
//  Answers a peer's message with ERROR code (protocol section 13)
void
    chorus__engine_error (chorus__engine_t *self, chorus__peer_t *peer, chorus_msg_t *request,
                          const char *code, const char *message);
//  Counts a message dropped because it speaks for another node than the
//  peer it came from (protocol section 5.1), with a warning at a bounded rate
void
    chorus__engine_forged (chorus__engine_t *self, chorus__peer_t *peer, chorus_msg_t *msg,
                           const char *why);
//  Refuses a message the sender's certificate does not allow (what: "may
//  not publish", "may not call"): counted, logged, answered ERROR forbidden
void
    chorus__engine_forbidden (chorus__engine_t *self, chorus__peer_t *peer, chorus_msg_t *msg,
                              const char *what);
//  Prints a warning of a kind, at most one every few seconds per kind
void
    chorus__engine_warn (chorus__engine_t *self, chorus__warning_t kind, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));
//  A new message with a fresh id; the caller owns it
chorus_msg_t *
    chorus__engine_msg (chorus__engine_t *self, int type);
//  Finds a live peer by instance id
chorus__peer_t *
    chorus__engine_peer (chorus__engine_t *self, const char *instance);
//  Hands work to the application's thread: picture and arguments as
//  zsock_send; what chorus__engine_hand collected goes first
int
    chorus__engine_work (chorus__engine_t *self, const char *picture, ...);
//  Hands a message to the application's thread in the next batch (kinds
//  E, O, C, R of chorus__work_t); the application owns it from here
void
    chorus__engine_hand (chorus__engine_t *self, char kind, chorus_msg_t *msg, const char *text);
//  Sends the batch collected by chorus__engine_hand
void
    chorus__engine_flush (chorus__engine_t *self);
void
    chorus__engine_log (chorus__engine_t *self, const char *format, ...);

//  The inbox: events for our group, results from the application
//  (chorus_inbox.c). An EVENT for our group; takes it when handed over
void
    chorus__inbox_event (chorus__engine_t *self, chorus__peer_t *peer, chorus_msg_t **event_p);
//  Reads the application's results: records them, then acks and replies
void
    chorus__inbox_results (chorus__engine_t *self);

//  Peers and discovery (chorus_peers.c)
//  A HELLO from the peer with this instance id: meet it, or update it
void
    chorus__peers_hello (chorus__engine_t *self, const char *instance, chorus_msg_t *hello);
//  Sends our HELLO on a DEALER (answering the HELLO with that id, or NULL);
//  0, or -1 if the connection is not up yet
int
    chorus__peers_send_hello (chorus__engine_t *self, void *dealer, const char *answers);
//  Sends our HELLO first on a peer's DEALER if it has not gone yet; 0 or -1
int
    chorus__peers_greet (chorus__engine_t *self, chorus__peer_t *peer);
//  The peer's last_seen as wall-clock time, for the application
uint64_t
    chorus__peer_seen_at (chorus__peer_t *peer);
//  Tells the application of a peer's new state
void
    chorus__peers_report (chorus__engine_t *self, chorus__peer_t *peer, chorus_peer_state_t state);
//  Forgets a peer (expired or left): its work moves to others
void
    chorus__peers_remove (chorus__engine_t *self, chorus__peer_t *peer, chorus_peer_state_t state);
void
    chorus__peer_destroy (chorus__peer_t **peer_p);
//  A peer's subscription prefixes, comma-separated; the caller frees it
char *
    chorus__peer_subs_text (chorus__peer_t *peer);
//  Closes the connections awaiting a HELLO from a key no longer trusted
void
    chorus__peers_revoke_pending (chorus__engine_t *self);
//  Closes every connection that awaits a HELLO, and the seed records
void
    chorus__peers_close_all (chorus__engine_t *self);
//  A seed endpoint to meet (from the configuration)
void
    chorus__peers_add_seed (chorus__engine_t *self, const char *endpoint);
void
    chorus__peers_recv_beacon (chorus__engine_t *self);
//  Broadcasts our beacon for the inbox port (0: we are leaving)
void
    chorus__peers_beacon (chorus__engine_t *self, int port);
//  Heartbeats, seed probes, stale connections, and our HELLO to every peer
//  when what we announce has changed
void
    chorus__peers_tick (chorus__engine_t *self, uint64_t now);

//  Delivery of our events to groups (chorus_delivery.c)
chorus__delivery_t *
    chorus__delivery_new (chorus__engine_t *engine);
void
    chorus__delivery_destroy (chorus__delivery_t **self_p);
//  A published event and its body as stored; takes both
void
    chorus__delivery_published (chorus__delivery_t *self, chorus_msg_t *event, zframe_t *body);
void
    chorus__delivery_peer_joined (chorus__delivery_t *self, chorus__peer_t *peer);
void
    chorus__delivery_peer_gone (chorus__delivery_t *self, chorus__peer_t *peer);
void
    chorus__delivery_ack (chorus__delivery_t *self, chorus__peer_t *peer, chorus_msg_t *ack);
void
    chorus__delivery_fetch (chorus__delivery_t *self, chorus__peer_t *peer, chorus_msg_t *fetch);
void
    chorus__delivery_tick (chorus__delivery_t *self, uint64_t now);
//  Calls fn with each group that has deliveries not yet acknowledged: its
//  name, how many, and how many live instances it has
typedef void (chorus__pending_fn) (const char *group, uint64_t pending, size_t instances,
                                   void *arg);
void
    chorus__delivery_pending (chorus__delivery_t *self, chorus__pending_fn *fn, void *arg);
//  Applies retention now; returns true if the outbox is still over its size
//  limit with held events (a publish is then refused)
bool
    chorus__delivery_retain (chorus__delivery_t *self, uint64_t now);
int64_t
    chorus__delivery_unacked (chorus__delivery_t *self);

//  Commands (chorus_commands.c)
chorus__commands_t *
    chorus__commands_new (chorus__engine_t *engine);
void
    chorus__commands_destroy (chorus__commands_t **self_p);
void
    chorus__commands_send (chorus__commands_t *self, chorus_msg_t *command);
void
    chorus__commands_received (chorus__commands_t *self, chorus__peer_t *peer,
                               chorus_msg_t **command_p);
//  The application answered a command: records the reply (into the store
//  batch the caller has begun), then, after the commit, sends it
void
    chorus__commands_record (chorus__commands_t *self, chorus_msg_t *command, chorus_msg_t *reply);
void
    chorus__commands_replied (chorus__commands_t *self, chorus_msg_t *command, chorus_msg_t *reply);
void
    chorus__commands_reply (chorus__commands_t *self, chorus__peer_t *peer, chorus_msg_t **reply_p);
void
    chorus__commands_error (chorus__commands_t *self, chorus__peer_t *peer, chorus_msg_t *error);
void
    chorus__commands_peer_joined (chorus__commands_t *self, chorus__peer_t *peer);
void
    chorus__commands_peer_gone (chorus__commands_t *self, chorus__peer_t *peer);
void
    chorus__commands_tick (chorus__commands_t *self, uint64_t now);

//  Observing every event (chorus_observer.c)
chorus__observer_t *
    chorus__observer_new (chorus__engine_t *engine);
void
    chorus__observer_destroy (chorus__observer_t **self_p);
void
    chorus__observer_add (chorus__observer_t *self, const char *prefix, bool from_earliest);
void
    chorus__observer_peer_joined (chorus__observer_t *self, chorus__peer_t *peer);
void
    chorus__observer_peer_gone (chorus__observer_t *self, chorus__peer_t *peer);
void
    chorus__observer_head (chorus__observer_t *self, chorus__peer_t *peer, uint64_t head);
//  An EVENT sent by the peer in answer to our FETCH; takes the message when
//  it is accepted
void
    chorus__observer_fetched (chorus__observer_t *self, chorus__peer_t *peer,
                              chorus_msg_t **event_p);
void
    chorus__observer_replay (chorus__observer_t *self, chorus__peer_t *peer, chorus_msg_t *replay);
void
    chorus__observer_truncated (chorus__observer_t *self, chorus__peer_t *peer,
                                chorus_msg_t *truncated);
//  Reads what came on socket if it is one of the observer's; false if not
bool
    chorus__observer_recv (chorus__observer_t *self, void *socket);
void
    chorus__observer_tick (chorus__observer_t *self, uint64_t now);
//  The application has run n observed events
void
    chorus__observer_done (chorus__observer_t *self, size_t count);

#endif
