/*  chorus_keys.h — a secure node's keys: its own certificate, the trust
    directory of the keys it accepts with what each may do, and the ZAP
    handler that lets only those keys connect (protocol section 14).
    Private to the library.
*/
#ifndef CHORUS_KEYS_H_INCLUDED
#define CHORUS_KEYS_H_INCLUDED

#include "chorus_private.h"

typedef struct _chorus__keys_t chorus__keys_t;

//  What a trusted key may do, as its certificate's metadata says; a list
//  that is NULL allows everything
typedef struct {
    char *key;                  //  the public key, Z85 (40 characters)
    char *name;                 //  the certificate's name (its file name)
    char *service;              //  the service it may act as; NULL or "*": any
    char **publish;             //  topic prefixes it may publish, or NULL
    size_t publish_size;
    char **call;                //  SERVICE or SERVICE.COMMAND it may call, or NULL
    size_t call_size;
} chorus__grant_t;

//  Loads the node's own secret certificate and reads the trust directory;
//  NULL with the reason in error when either cannot be used
chorus__keys_t *
    chorus__keys_new (const char *cert_file, const char *trust_dir, char *error, size_t size);
void
    chorus__keys_destroy (chorus__keys_t **self_p);
//  Our own public key (Z85), and what our own certificate allows us
const char *
    chorus__keys_public (chorus__keys_t *self);
const chorus__grant_t *
    chorus__keys_own (chorus__keys_t *self);
const char *
    chorus__keys_trust_dir (chorus__keys_t *self);

//  Makes a listening socket (ROUTER, PUB) a CURVE server with our key, its
//  clients checked by our ZAP handler against the trust directory
void
    chorus__keys_server (chorus__keys_t *self, void *socket);
//  Makes a connecting socket (DEALER, SUB) a CURVE client with our key, to
//  the server with that public key (Z85)
void
    chorus__keys_client (chorus__keys_t *self, void *socket, const char *server_key);

//  Starts answering ZAP requests for this node's sockets; -1 with the
//  reason in error when the process's ZAP endpoint is taken by another
//  handler. Stop before the node's sockets are closed.
int
    chorus__keys_start (chorus__keys_t *self, char *error, size_t size);
void
    chorus__keys_stop (chorus__keys_t *self);

//  The grant of a trusted key, or NULL; valid until the next reload
const chorus__grant_t *
    chorus__keys_lookup (chorus__keys_t *self, const char *key);
//  Reads the trust directory again if it changed, or if a reload was asked
//  for (chorus_reload_trust); true if the trusted keys may have changed
bool
    chorus__keys_reload (chorus__keys_t *self);
//  A key as given with a seed: a Z85 key, or the name of a trusted
//  certificate; writes the Z85 key into key (41 bytes), or returns false
bool
    chorus__keys_resolve (chorus__keys_t *self, const char *text, char *key);
//  Connections our ZAP handler refused since the last call, with the last
//  one's address and key (for a log line); returns how many
size_t
    chorus__keys_refusals (chorus__keys_t *self, char *address, size_t address_size,
                           char *key, size_t key_size);
//  Warnings about the trust directory (a secret key in it, an unreadable
//  certificate) since the last call, one per line; NULL if none. The
//  caller frees it.
char *
    chorus__keys_warnings (chorus__keys_t *self);

//  What a grant allows
bool
    chorus__grant_service (const chorus__grant_t *grant, const char *service);
bool
    chorus__grant_publish (const chorus__grant_t *grant, const char *topic);
bool
    chorus__grant_call (const chorus__grant_t *grant, const char *service, const char *command);

//  True if text is a Z85 public key (40 characters of the Z85 alphabet)
bool
    chorus__key_valid (const char *text);
//  Where the key starts in "ENDPOINT@KEY": KEY is the last 40 characters
//  when they are a Z85 key (whose alphabet holds '@'), or else what follows
//  the last '@' (a certificate name); NULL without an '@'
const char *
    chorus__key_part (const char *text);

#endif
