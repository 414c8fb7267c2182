/*  chorus_msg.h — the Chorus wire codec: one class that encodes, decodes,
    sends and receives every message of protocol/chorus-protocol.md.

    It is the only code that touches MessagePack on the wire. Decoding checks
    every bound and type before it believes a byte, and reports a malformed
    message with a reason instead of crashing or allocating without limit.
*/
#ifndef CHORUS_MSG_H_INCLUDED
#define CHORUS_MSG_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

//  Protocol constants (see chorus-protocol.md, "Limits")
#define CHORUS_MSG_SIGNATURE 0xC405
#define CHORUS_MSG_VERSION 1
#define CHORUS_MSG_MAX_BODY (2 * 1024 * 1024)
#define CHORUS_MSG_MAX_PAYLOAD (1024 * 1024)
#define CHORUS_MSG_MAX_DEPTH 3
#define CHORUS_MSG_MAX_LIST 256
#define CHORUS_MSG_MAX_HEADERS 32
#define CHORUS_MSG_MAX_SEQS 1024      //  EVENT-ACK seqs

//  Message types; the numbers are the wire values
#define CHORUS_MSG_HELLO 1
#define CHORUS_MSG_PING 2
#define CHORUS_MSG_PONG 3
#define CHORUS_MSG_EVENT 4
#define CHORUS_MSG_EVENT_ACK 5
#define CHORUS_MSG_FETCH 6
#define CHORUS_MSG_REPLAY 7
#define CHORUS_MSG_TRUNCATED 8
#define CHORUS_MSG_COMMAND 9
#define CHORUS_MSG_REPLY 10
#define CHORUS_MSG_ERROR 11
#define CHORUS_MSG_BYE 12
#define CHORUS_MSG_PING_REQ 13
#define CHORUS_MSG_PING_ACK 14
#define CHORUS_MSG_TYPES 14

//  EVENT-ACK status
#define CHORUS_ACK_HANDLED 0
#define CHORUS_ACK_DUPLICATE 1
#define CHORUS_ACK_REJECTED 2
//  REPLY status
#define CHORUS_REPLY_OK 0
#define CHORUS_REPLY_ERROR 1
//  Subscription flags
#define CHORUS_SUB_DURABLE 1

//  Results of decode and recv besides 0
#define CHORUS_MSG_INTERRUPTED -1
#define CHORUS_MSG_MALFORMED -2

typedef struct _chorus_msg_t chorus_msg_t;

//  Create a message of the given type (CHORUS_MSG_*); NULL if the type is
//  not one of them.
chorus_msg_t *
    chorus_msg_new (int type);

//  Destroy a message; safe on NULL, nulls the caller's pointer.
void
    chorus_msg_destroy (chorus_msg_t **self_p);

//  Decode one body frame into self, replacing whatever self held. Returns 0,
//  or CHORUS_MSG_MALFORMED with chorus_msg_reason () saying why.
int
    chorus_msg_decode (chorus_msg_t *self, const void *data, size_t size);

//  Encode self into a new body frame. Returns NULL, with chorus_msg_reason ()
//  saying why, if a required field is missing or a field breaks its limit.
zframe_t *
    chorus_msg_encode (chorus_msg_t *self);

//  Receive one message from a socket (a zsock_t or a libzmq handle). On a
//  ROUTER the routing id frame comes first; on a SUB the topic frame does. Returns 0, CHORUS_MSG_INTERRUPTED,
//  or CHORUS_MSG_MALFORMED (the whole ZeroMQ message has been consumed).
int
    chorus_msg_recv (chorus_msg_t *self, void *input);

//  Send self on a socket (a zsock_t or a libzmq handle): the routing id
//  first on a ROUTER, the topic first on a PUB or XPUB (EVENT only). Returns 0 or -1. self is kept.
int
    chorus_msg_send (chorus_msg_t *self, void *output);

//  Send self, already encoded into *body_p by chorus_msg_encode, as
//  chorus_msg_send would; takes the body (a message encoded once is sent
//  once more without encoding it again). Returns 0 or -1.
int
    chorus_msg_send_encoded (chorus_msg_t *self, zframe_t **body_p, void *output);

//  The encoding of the EVENT encoded in body (by chorus_msg_encode) with
//  its group and attempt replaced, as chorus_msg_encode would make it;
//  NULL if body is not such an EVENT or group breaks its limits.
zframe_t *
    chorus_msg_event_redirect (const void *body, size_t size, const char *group,
                               uint64_t attempt);

//  What a publisher's delivery needs of one of its own stored EVENT
//  encodings, read without decoding it whole: its seq and timestamp, and
//  its topic and key (pointers into body, not NUL-terminated; key NULL
//  when nil)
typedef struct {
    uint64_t seq;
    uint64_t timestamp;
    const char *topic;
    size_t topic_size;
    const char *key;
    size_t key_size;
} chorus_msg_peek_t;

//  Fills peek from an EVENT encoding in the layout chorus_msg_encode
//  writes; 0, or -1 if body is not one (then decode it whole)
int
    chorus_msg_event_peek (const void *body, size_t size, chorus_msg_peek_t *peek);

//  Why the last decode, recv or encode failed
const char *
    chorus_msg_reason (chorus_msg_t *self);

//  The message type, and its protocol name ("EVENT-ACK")
int
    chorus_msg_type (chorus_msg_t *self);
const char *
    chorus_msg_command (chorus_msg_t *self);

//  Name of a message type number; NULL if there is none
const char *
    chorus_msg_type_name (int type);

//  Names of the fields a message type carries after its id, in wire order,
//  NULL-terminated in fields; returns their count or -1 for an unknown type.
int
    chorus_msg_type_fields (int type, const char **fields, size_t max);
//  How many of those, the last, a message may leave out (fields added to
//  version 1 later); -1 for an unknown type
int
    chorus_msg_type_tail (int type);

//  Routing id of the peer (ROUTER sockets); the message owns it
zframe_t *
    chorus_msg_routing_id (chorus_msg_t *self);
void
    chorus_msg_set_routing_id (chorus_msg_t *self, zframe_t *routing_id);
//  Remote IP address of the connection a HELLO came in on, from a ROUTER
//  ("" for other messages, sockets and transports without one)
const char *
    chorus_msg_peer_address (chorus_msg_t *self);
//  Makes chorus_msg_recv on a ROUTER record the sender's authenticated key
//  (the ZAP user id, a Z85 CURVE key on a secure node); it costs a lookup
//  per message, so it is off by default
void
    chorus_msg_want_user_id (chorus_msg_t *self, bool want);
//  The sender's key of the message last received, or "" if none
const char *
    chorus_msg_user_id (chorus_msg_t *self);
//  The file descriptor of the connection a HELLO or a membership message
//  (PING, PONG, PING-REQ, PING-ACK) came over, or -1
int
    chorus_msg_source_fd (chorus_msg_t *self);

//  The message in one line of text, for debugging: its type, then each
//  field as name=value. The caller frees it, and logs it where it logs
//  (the codec prints nothing itself).
char *
    chorus_msg_describe (chorus_msg_t *self);

//  String fields. Getters return NULL when the field is absent; setters
//  copy, and NULL makes an optional field absent.
#define CHORUS_MSG_STR_FIELD(name) \
    const char *chorus_msg_##name (chorus_msg_t *self); \
    void chorus_msg_set_##name (chorus_msg_t *self, const char *value);
CHORUS_MSG_STR_FIELD (id)
CHORUS_MSG_STR_FIELD (service)
CHORUS_MSG_STR_FIELD (instance)
CHORUS_MSG_STR_FIELD (endpoint)
CHORUS_MSG_STR_FIELD (pub_endpoint)
CHORUS_MSG_STR_FIELD (topic)
CHORUS_MSG_STR_FIELD (key)
CHORUS_MSG_STR_FIELD (correlation)
CHORUS_MSG_STR_FIELD (causation)
CHORUS_MSG_STR_FIELD (group)
CHORUS_MSG_STR_FIELD (prefix)
CHORUS_MSG_STR_FIELD (request)
CHORUS_MSG_STR_FIELD (message)
CHORUS_MSG_STR_FIELD (name)
CHORUS_MSG_STR_FIELD (idempotency)
CHORUS_MSG_STR_FIELD (target)  //  PING-REQ, PING-ACK: the instance probed
CHORUS_MSG_STR_FIELD (code)

//  Number fields (always present on the wire; 0 by default)
#define CHORUS_MSG_NUM_FIELD(name) \
    uint64_t chorus_msg_##name (chorus_msg_t *self); \
    void chorus_msg_set_##name (chorus_msg_t *self, uint64_t value);
CHORUS_MSG_NUM_FIELD (generation)
CHORUS_MSG_NUM_FIELD (head)
CHORUS_MSG_NUM_FIELD (seq)
CHORUS_MSG_NUM_FIELD (timestamp)
CHORUS_MSG_NUM_FIELD (attempt)
CHORUS_MSG_NUM_FIELD (try)      //  COMMAND: the sender's try, from 1; 0 when left out
CHORUS_MSG_NUM_FIELD (status)
CHORUS_MSG_NUM_FIELD (from)
CHORUS_MSG_NUM_FIELD (to)
CHORUS_MSG_NUM_FIELD (limit)
CHORUS_MSG_NUM_FIELD (deadline)

//  REPLY: whether an error is worth retrying
bool
    chorus_msg_retryable (chorus_msg_t *self);
void
    chorus_msg_set_retryable (chorus_msg_t *self, bool retryable);

//  Payload (EVENT, COMMAND, REPLY): opaque bytes, by convention one
//  MessagePack value. chorus_msg_payload is NULL when absent.
const void *
    chorus_msg_payload (chorus_msg_t *self);
size_t
    chorus_msg_payload_size (chorus_msg_t *self);
void
    chorus_msg_set_payload (chorus_msg_t *self, const void *data, size_t size);

//  String lists (HELLO peers and topics; PING, PONG, PING-REQ and PING-ACK
//  members): the message owns the list
#define CHORUS_MSG_LIST_FIELD(name) \
    zlist_t *chorus_msg_##name (chorus_msg_t *self); \
    void chorus_msg_add_##name (chorus_msg_t *self, const char *value);
CHORUS_MSG_LIST_FIELD (peers)
CHORUS_MSG_LIST_FIELD (members)
CHORUS_MSG_LIST_FIELD (topics)

//  HELLO subscriptions: [prefix, since, flags] entries
size_t
    chorus_msg_subscriptions (chorus_msg_t *self);
const char *
    chorus_msg_subscription (chorus_msg_t *self, size_t index, uint64_t *since, uint64_t *flags);
void
    chorus_msg_add_subscription (chorus_msg_t *self, const char *prefix, uint64_t since,
                                 uint64_t flags);

//  EVENT-ACK seqs: further events of the same group acknowledged with the
//  same status (a trailing field, left out when empty; at most
//  CHORUS_MSG_MAX_SEQS). chorus_msg_seqs gives how many, and the message's
//  array in *seqs when seqs is not NULL
size_t
    chorus_msg_seqs (chorus_msg_t *self, const uint64_t **seqs);
void
    chorus_msg_add_seq (chorus_msg_t *self, uint64_t seq);
void
    chorus_msg_clear_seqs (chorus_msg_t *self);

//  Headers (HELLO, EVENT, COMMAND): string to string, NULL when absent
const char *
    chorus_msg_header (chorus_msg_t *self, const char *name);
void
    chorus_msg_set_header (chorus_msg_t *self, const char *name, const char *value);
zhash_t *
    chorus_msg_headers (chorus_msg_t *self);

#endif
