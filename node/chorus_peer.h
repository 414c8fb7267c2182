/*  chorus_peer.h — a peer: another node we have met, and our one
    connection into its inbox. The peer owns its DEALER and sends on it:
    our HELLO first (through the greeter its owner sets), then messages,
    and answers it could not send at once from a bounded backlog. Others
    read its fields; only its owner (the peers class) changes them.
    Private to the library.
*/
#ifndef CHORUS_PEER_H_INCLUDED
#define CHORUS_PEER_H_INCLUDED

#include "chorus_private.h"
#include "chorus_keys.h"
#include "chorus_timer_heap.h"

typedef struct _chorus__peer_t chorus__peer_t;

//  Sends our first HELLO on the peer's connection: 0 once sent, -1 if the
//  connection is not up yet. Set by the peer's owner.
typedef int (chorus__peer_greeter_fn) (chorus__peer_t *peer, void *arg);
//  Told that the peer holds answers it could not send yet, so that its
//  owner tries again later (and only then). Set by the peer's owner.
typedef void (chorus__peer_waiter_fn) (chorus__peer_t *peer, void *arg);

struct _chorus__peer_t {
    char *instance;             //  its instance id (32 hex)
    char *service;              //  its service (group)
    char *endpoint;             //  its inbox endpoint
    char *pub_endpoint;         //  its PUB endpoint
    char *address;              //  remote address its first HELLO came from, or ""
    void *dealer;               //  our connection into its inbox (libzmq handle), or
                                //  NULL while we have had no reason to open one
    bool met;                   //  its HELLO came: we know all it announces. A member
                                //  known from membership news alone is not met yet:
                                //  we know its service and endpoint, not its PUB nor
                                //  subscriptions, and take no message but HELLO from it
    bool subscriber;            //  it has subscriptions (news flag "s", or its HELLO)
    bool entries;               //  it reads member entries in a HELLO's list
                                //  (header chorus.members: yes)
    bool ack_lists;             //  it reads EVENT-ACKs that list more seqs
                                //  (header chorus.acks: lists)
    bool hello_sent;            //  our HELLO has gone out first on dealer
    uint64_t greeted;           //  when our HELLO went to it, a member we had not
                                //  met, unanswered so far (monotonic ms), or 0
    int greetings;              //  how many such HELLOs went unanswered
    char answers [33];          //  id of its HELLO our first HELLO answers, or ""
    bool listless;              //  it knows the membership (chorus.lists: no): our
                                //  HELLOs to it leave out our list of peers
    uint64_t generation;        //  last HELLO generation seen
    uint64_t started;           //  its start time (HELLO header chorus.started)
    uint64_t head;              //  its latest published seq
    uint64_t last_seen;         //  when we last heard from it (monotonic ms)
    uint64_t last_sent;         //  when we last sent to it (monotonic ms)
    uint64_t last_work;         //  when we last sent it work: an event, a command, a
                                //  FETCH or an answer to one (monotonic ms), or 0
    chorus__timer_t idle;       //  when our connection may have gone unused long
                                //  enough to close (its owner's heap; section 5.2)
    bool closed_idle;           //  we closed that connection unused: the HELLO that
                                //  opens it again says so, and lists nothing
    uint64_t incarnation;       //  its incarnation, as last heard (protocol section 6)
    uint64_t probed;            //  when our probe of it that is not answered yet
                                //  began (monotonic ms), 0 if none
    char asked [3][33];         //  ids of the PING-REQs that asked others to probe it
                                //  for that probe, "" if not sent
    bool stepped;               //  that probe went unanswered long enough to take a step
    chorus__timer_t liveness;   //  the next step of that probe (its owner's heap)
    bool evasive;               //  suspect: our probe has gone unanswered for the
                                //  evasive time
    bool probed_by_datagram;    //  that probe's first PING went by datagram
    int datagram_misses;        //  probes by datagram in a row it left unanswered
    uint64_t datagrams_off;     //  until when probes of it go over the connection
                                //  only (monotonic ms), after such misses
    struct sockaddr_storage inbox;  //  its endpoint's socket address, where its
    socklen_t inbox_size;       //  datagrams go, once worked out (0: not yet)
    bool inbox_unusable;        //  its endpoint has no numeric address
    chorus__sub_t *subs;        //  its subscriptions
    size_t subs_size;           //  how many
    size_t commands;            //  commands we have outstanding on it
    char *key;                  //  its CURVE key (Z85), or NULL on a plaintext mesh
    const chorus__grant_t *grant;   //  what its certificate allows it, or NULL
    char *sample;               //  its entry as news samples it ("alive ..."), or NULL:
    uint64_t sample_incarnation;    //  kept while its incarnation and flag stay these
    bool sample_subscriber;     //  (set and read by the peers class)
    //  Private to the class
    zlistx_t *backlog;          //  answers that could not go yet (zframe_t), oldest first
    size_t backlog_bytes;       //  their size
    chorus__peer_greeter_fn *greeter;   //  sends our first HELLO
    chorus__peer_waiter_fn *waiter;     //  told of answers that wait
    void *greeter_arg;          //  the argument of both
};

//  A peer met at endpoint, over dealer (taken). key is its CURVE key, or
//  NULL on a plaintext mesh.
chorus__peer_t *
    chorus__peer_new (const char *instance, const char *service, const char *endpoint,
                      const char *pub_endpoint, void *dealer, const char *key);
void
    chorus__peer_destroy (chorus__peer_t **self_p);
//  Sets who sends our first HELLO on the connection
void
    chorus__peer_set_greeter (chorus__peer_t *self, chorus__peer_greeter_fn *greeter, void *arg);
//  Sets who is told when answers wait in the backlog (same argument as
//  the greeter)
void
    chorus__peer_set_waiter (chorus__peer_t *self, chorus__peer_waiter_fn *waiter);
//  Sends our first HELLO if it has not gone yet; 0 once it has, or -1
int
    chorus__peer_greet (chorus__peer_t *self);
//  Sends a message, our HELLO first; 0, or -1 if it would block or the
//  connection is not up
int
    chorus__peer_send (chorus__peer_t *self, chorus_msg_t *msg);
//  As chorus__peer_send, for a message already encoded into *frame_p
//  (taken, sent or not)
int
    chorus__peer_send_encoded (chorus__peer_t *self, chorus_msg_t *msg, zframe_t **frame_p);
//  As chorus__peer_send_encoded, for an encoded message of type whose
//  decoded form is not at hand
int
    chorus__peer_send_body (chorus__peer_t *self, int type, zframe_t **frame_p);
//  Sends an answer the peer waits for (EVENT-ACK, REPLY, ERROR, the PONG
//  to its PING); what cannot go now is kept, within a bound, and sent
//  after our HELLO once the connection is up
void
    chorus__peer_answer (chorus__peer_t *self, chorus_msg_t *msg);
//  Sends what the backlog holds, as far as the connection takes it
void
    chorus__peer_flush_backlog (chorus__peer_t *self);
//  Answers kept in the backlog
size_t
    chorus__peer_backlog (chorus__peer_t *self);
//  Sets its subscriptions from a HELLO
void
    chorus__peer_set_subs (chorus__peer_t *self, chorus_msg_t *hello);
//  When anything last went either way between us (monotonic ms)
uint64_t
    chorus__peer_last_used (chorus__peer_t *self);
//  Its last_seen as wall-clock time, for the application
uint64_t
    chorus__peer_seen_at (chorus__peer_t *self);
//  Its subscription prefixes, comma-separated; the caller frees it
char *
    chorus__peer_subs_text (chorus__peer_t *self);
//  Self-test
void
    chorus__peer_test (bool verbose);

#endif
