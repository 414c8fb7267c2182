/*  chorus_keys.c — a secure node's keys (protocol section 14).

    A node's own key pair comes from its secret certificate (czmq zcert
    format). The trust directory holds the public certificates of the keys
    the node accepts; each certificate's metadata says what its key may do:
    the service it may act as, the topic prefixes it may publish, the
    commands it may call. The directory is read again when it changes, so
    removing a certificate revokes its key.

    ZeroMQ asks one ZAP handler per process (RFC 27, at the fixed endpoint
    inproc://zeromq.zap.01) whether a client key may connect. Several nodes
    may share a process, each with its own trust directory: each sets its
    own ZAP domain on its sockets, and one handler, started with the first
    secure node and stopped with the last, answers for all of them.
*/
#include "chorus_keys.h"

#include <dirent.h>
#include <stdatomic.h>
#include <sys/stat.h>

#define S_RELOAD_CHECK_MS 1000      //  how often the directory is looked at

//  The trusted keys, read from the directory at one time; replaced whole
typedef struct {
    zhashx_t *keys;             //  Z85 key -> chorus__grant_t
    zhashx_t *names;            //  certificate name -> chorus__grant_t (not owned)
} s_trust_t;

struct _chorus__keys_t {
    zcert_t *cert;              //  our own key pair
    chorus__grant_t own;        //  what our own certificate allows us
    char *trust_dir;            //  where the trusted certificates are
    s_trust_t *trust;           //  what it held when last read
    uint64_t signature;         //  of the directory's entries then
    uint64_t checked;           //  when we last looked (monotonic)
    unsigned reloads_seen;      //  chorus_reload_trust calls acted on
    char domain [32];           //  our ZAP domain, when started
    size_t refused;             //  connections refused since last asked
    char refused_address [64];  //  the last one's
    char refused_key [41];
};

//  The process's ZAP handler, and the nodes it answers for. s_zap_lock
//  guards the table and every node's trust pointer and refusals; s_life
//  serialises starting and stopping the handler, which must not wait for
//  its thread while holding s_zap_lock
static pthread_mutex_t s_zap_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t s_life = PTHREAD_MUTEX_INITIALIZER;
static zactor_t *s_zap = NULL;
static zhashx_t *s_domains = NULL;      //  ZAP domain -> chorus__keys_t
static unsigned s_domain_next = 0;
static atomic_uint s_reloads_asked = 0;

//  --------------------------------------------------------------------------
//  Grants

static void
s_grant_free (chorus__grant_t *grant)
{
    free (grant->key);
    free (grant->name);
    free (grant->service);
    for (size_t i = 0; i < grant->publish_size; i++)
        free (grant->publish [i]);
    free (grant->publish);
    for (size_t i = 0; i < grant->call_size; i++)
        free (grant->call [i]);
    free (grant->call);
    memset (grant, 0, sizeof (*grant));
}

static void
s_grant_destroy (void **item)
{
    chorus__grant_t *grant = (chorus__grant_t *) *item;
    if (grant) {
        s_grant_free (grant);
        free (grant);
        *item = NULL;
    }
}

//  A metadata list: words separated by spaces; NULL (everything) if absent
static char **
s_words (const char *text, size_t *size)
{
    *size = 0;
    if (!text)
        return NULL;
    char **words = (char **) zmalloc ((strlen (text) / 2 + 2) * sizeof (char *));
    const char *cursor = text;
    while (*cursor) {
        while (*cursor == ' ')
            cursor++;
        size_t length = strcspn (cursor, " ");
        if (length)
            words [(*size)++] = strndup (cursor, length);
        cursor += length;
    }
    return words;
}

//  Fills a grant from a certificate's metadata
static void
s_grant_fill (chorus__grant_t *grant, const char *key, const char *name, const char *service,
              const char *publish, const char *call)
{
    grant->key = strdup (key);
    grant->name = strdup (name);
    grant->service = service? strdup (service): NULL;
    grant->publish = s_words (publish, &grant->publish_size);
    grant->call = s_words (call, &grant->call_size);
}

bool
chorus__grant_service (const chorus__grant_t *grant, const char *service)
{
    return !grant->service || streq (grant->service, "*") || streq (grant->service, service);
}

bool
chorus__grant_publish (const chorus__grant_t *grant, const char *topic)
{
    if (!grant->publish)
        return true;
    for (size_t i = 0; i < grant->publish_size; i++)
        if (strncmp (topic, grant->publish [i], strlen (grant->publish [i])) == 0)
            return true;
    return false;
}

bool
chorus__grant_call (const chorus__grant_t *grant, const char *service, const char *command)
{
    if (!grant->call)
        return true;
    size_t length = strlen (service);
    for (size_t i = 0; i < grant->call_size; i++) {
        const char *entry = grant->call [i];
        if (streq (entry, service))
            return true;
        if (strncmp (entry, service, length) == 0 && entry [length] == '.'
        &&  streq (entry + length + 1, command))
            return true;
    }
    return false;
}

bool
chorus__key_valid (const char *text)
{
    if (!text || strlen (text) != 40)
        return false;
    uint8_t key [32];
    return zmq_z85_decode (key, text) != NULL;
}

const char *
chorus__key_part (const char *text)
{
    size_t length = strlen (text);
    if (length > 41 && text [length - 41] == '@' && chorus__key_valid (text + length - 40))
        return text + length - 40;
    const char *at = strrchr (text, '@');
    return at? at + 1: NULL;
}

//  --------------------------------------------------------------------------
//  The trust directory

static void
s_trust_destroy (s_trust_t **trust_p)
{
    s_trust_t *trust = *trust_p;
    if (trust) {
        zhashx_destroy (&trust->names);
        zhashx_destroy (&trust->keys);
        free (trust);
        *trust_p = NULL;
    }
}

static bool
s_ends_with (const char *text, const char *end)
{
    size_t length = strlen (text), end_length = strlen (end);
    return length >= end_length && streq (text + length - end_length, end);
}

//  The directory's entries as a number that changes when any of them
//  does (name, size, time, inode), in whatever order they are listed
static uint64_t
s_signature (const char *dir)
{
    DIR *handle = opendir (dir);
    if (!handle)
        return 1;   //  not 0, the value before the first reading
    uint64_t signature = 0;
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        if (entry->d_name [0] == '.')
            continue;   //  as s_trust_read; ".." changes with its own directory
        char *path = zsys_sprintf ("%s/%s", dir, entry->d_name);
        struct stat info;
        uint64_t hash = 14695981039346656037ULL;    //  FNV-1a
        for (const char *c = entry->d_name; *c; c++)
            hash = (hash ^ (uint8_t) *c) * 1099511628211ULL;
        if (stat (path, &info) == 0) {
            uint64_t facts [4] = {(uint64_t) info.st_size, (uint64_t) info.st_mtim.tv_sec,
                                  (uint64_t) info.st_mtim.tv_nsec, (uint64_t) info.st_ino};
            for (int i = 0; i < 4; i++)
                hash = (hash ^ facts [i]) * 1099511628211ULL;
        }
        free (path);
        signature += hash;
    }
    closedir (handle);
    return signature? signature: 2;
}

//  One public certificate, or NULL (after a warning)
static chorus__grant_t *
s_load_public (const char *dir, const char *file)
{
    char *path = zsys_sprintf ("%s/%s", dir, file);
    zconfig_t *root = zconfig_load (path);
    chorus__grant_t *grant = NULL;
    const char *key = root? zconfig_get (root, "/curve/public-key", NULL): NULL;
    if (!root)
        chorus__log (CHORUS_LOG_WARNING,
                     "chorus: trust directory: cannot read %s as a certificate; ignored", path);
    else
    if (zconfig_get (root, "/curve/secret-key", NULL))
        chorus__log (CHORUS_LOG_WARNING,
                     "chorus: trust directory: %s holds a secret key; ignored (a trust "
                     "directory holds public certificates only)", path);
    else
    if (!chorus__key_valid (key))
        chorus__log (CHORUS_LOG_WARNING,
                     "chorus: trust directory: %s has no valid public key; ignored", path);
    else {
        char *name = strndup (file, strlen (file) - strlen (".cert"));
        grant = (chorus__grant_t *) zmalloc (sizeof (chorus__grant_t));
        s_grant_fill (grant, key, name, zconfig_get (root, "/metadata/service", NULL),
                      zconfig_get (root, "/metadata/publish", NULL),
                      zconfig_get (root, "/metadata/call", NULL));
        free (name);
    }
    zconfig_destroy (&root);
    free (path);
    return grant;
}

//  Reads every public certificate of the directory; NULL if the directory
//  cannot be read
static s_trust_t *
s_trust_read (const char *dir)
{
    DIR *handle = opendir (dir);
    if (!handle)
        return NULL;
    s_trust_t *trust = (s_trust_t *) zmalloc (sizeof (s_trust_t));
    trust->keys = zhashx_new ();
    zhashx_set_destructor (trust->keys, s_grant_destroy);
    trust->names = zhashx_new ();
    //  In name order, so that which of two certificates of one key wins
    //  does not depend on the file system
    zlistx_t *files = zlistx_new ();
    zlistx_set_destructor (files, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_comparator (files, (zlistx_comparator_fn *) strcmp);
    struct dirent *entry;
    while ((entry = readdir (handle)))
        if (entry->d_name [0] != '.')
            zlistx_add_end (files, strdup (entry->d_name));
    closedir (handle);
    zlistx_sort (files);
    for (const char *file = (const char *) zlistx_first (files); file;
         file = (const char *) zlistx_next (files)) {
        if (s_ends_with (file, "_secret")) {
            chorus__log (CHORUS_LOG_WARNING,
                         "chorus: trust directory: %s/%s is a secret certificate; ignored "
                         "(keep secret keys out of trust directories)", dir, file);
            continue;
        }
        if (!s_ends_with (file, ".cert") || streq (file, ".cert"))
            continue;
        chorus__grant_t *grant = s_load_public (dir, file);
        if (!grant)
            continue;
        if (zhashx_lookup (trust->keys, grant->key)) {
            chorus__log (CHORUS_LOG_WARNING,
                         "chorus: trust directory: %s/%s repeats the key of another "
                         "certificate; ignored", dir, file);
            s_grant_destroy ((void **) &grant);
            continue;
        }
        zhashx_insert (trust->keys, grant->key, grant);
        zhashx_insert (trust->names, grant->name, grant);
    }
    zlistx_destroy (&files);
    return trust;
}

//  --------------------------------------------------------------------------
//  The node's keys

chorus__keys_t *
chorus__keys_new (const char *cert_file, const char *trust_dir, char *error, size_t size)
{
    struct stat info;
    if (stat (trust_dir, &info)) {
        snprintf (error, size, "trust directory %s: %s", trust_dir, strerror (errno));
        return NULL;
    }
    if (!S_ISDIR (info.st_mode)) {
        snprintf (error, size, "trust directory %s: not a directory", trust_dir);
        return NULL;
    }
    if (access (cert_file, R_OK) || stat (cert_file, &info)) {
        snprintf (error, size, "certificate %s: %s", cert_file, strerror (errno));
        return NULL;
    }
    if (info.st_mode & (S_IRWXG | S_IRWXO))
        chorus__log (CHORUS_LOG_WARNING,
                     "chorus: certificate %s may be read by others (mode %03o): a secret "
                     "key should be the owner's alone (chmod 600)", cert_file,
                     (unsigned) (info.st_mode & 0777));
    zcert_t *cert = zcert_load (cert_file);
    if (!cert || !chorus__key_valid (zcert_public_txt (cert))) {
        snprintf (error, size, "certificate %s: not a ZeroMQ certificate with a public key "
                  "(write one with 'chorus keygen')", cert_file);
        zcert_destroy (&cert);
        return NULL;
    }
    //  The secret key must be there and be the public key's own
    char derived_text [41];
    if (strspn (zcert_secret_txt (cert), "0") == 40
    ||  zmq_curve_public (derived_text, zcert_secret_txt (cert)) != 0
    ||  !streq (derived_text, zcert_public_txt (cert))) {
        snprintf (error, size, "certificate %s holds no secret key matching its public key: "
                  "give the .cert_secret file 'chorus keygen' wrote", cert_file);
        zcert_destroy (&cert);
        return NULL;
    }
    s_trust_t *trust = s_trust_read (trust_dir);
    if (!trust) {
        snprintf (error, size, "trust directory %s: %s", trust_dir, strerror (errno));
        zcert_destroy (&cert);
        return NULL;
    }
    if (zhashx_size (trust->keys) == 0)
        chorus__log (CHORUS_LOG_WARNING,
                     "chorus: trust directory %s holds no public certificate: this node "
                     "will accept no peer", trust_dir);
    chorus__keys_t *self = (chorus__keys_t *) zmalloc (sizeof (chorus__keys_t));
    self->cert = cert;
    const char *name = zcert_meta (cert, "name");
    s_grant_fill (&self->own, zcert_public_txt (cert), name? name: cert_file,
                  zcert_meta (cert, "service"), zcert_meta (cert, "publish"),
                  zcert_meta (cert, "call"));
    self->trust_dir = strdup (trust_dir);
    self->trust = trust;
    self->signature = s_signature (trust_dir);
    self->checked = chorus__mono ();
    self->reloads_seen = atomic_load (&s_reloads_asked);
    return self;
}

void
chorus__keys_destroy (chorus__keys_t **self_p)
{
    chorus__keys_t *self = *self_p;
    if (self) {
        chorus__keys_stop (self);
        zcert_destroy (&self->cert);
        s_grant_free (&self->own);
        s_trust_destroy (&self->trust);
        free (self->trust_dir);
        free (self);
        *self_p = NULL;
    }
}

const char *
chorus__keys_public (chorus__keys_t *self)
{
    return zcert_public_txt (self->cert);
}

const chorus__grant_t *
chorus__keys_own (chorus__keys_t *self)
{
    return &self->own;
}

const char *
chorus__keys_trust_dir (chorus__keys_t *self)
{
    return self->trust_dir;
}

void
chorus__keys_server (chorus__keys_t *self, void *socket)
{
    int on = 1;
    zmq_setsockopt (socket, ZMQ_CURVE_SERVER, &on, sizeof (on));
    zmq_setsockopt (socket, ZMQ_CURVE_SECRETKEY, zcert_secret_key (self->cert), 32);
    zmq_setsockopt (socket, ZMQ_CURVE_PUBLICKEY, zcert_public_key (self->cert), 32);
    zmq_setsockopt (socket, ZMQ_ZAP_DOMAIN, self->domain, strlen (self->domain));
}

void
chorus__keys_client (chorus__keys_t *self, void *socket, const char *server_key)
{
    zmq_setsockopt (socket, ZMQ_CURVE_SERVERKEY, server_key, 40);
    zmq_setsockopt (socket, ZMQ_CURVE_SECRETKEY, zcert_secret_key (self->cert), 32);
    zmq_setsockopt (socket, ZMQ_CURVE_PUBLICKEY, zcert_public_key (self->cert), 32);
}

const chorus__grant_t *
chorus__keys_lookup (chorus__keys_t *self, const char *key)
{
    return key && *key? (const chorus__grant_t *) zhashx_lookup (self->trust->keys, key): NULL;
}

bool
chorus__keys_reload (chorus__keys_t *self)
{
    unsigned asked = atomic_load (&s_reloads_asked);
    uint64_t now = chorus__mono ();
    if (asked == self->reloads_seen && now - self->checked < S_RELOAD_CHECK_MS)
        return false;
    bool forced = asked != self->reloads_seen;
    self->reloads_seen = asked;
    self->checked = now;
    uint64_t signature = s_signature (self->trust_dir);
    if (!forced && signature == self->signature)
        return false;
    self->signature = signature;
    s_trust_t *trust = s_trust_read (self->trust_dir);
    if (!trust) {
        //  Gone or unreadable: trust nobody rather than the old list
        chorus__log (CHORUS_LOG_WARNING,
                     "chorus: trust directory %s: %s; no key is trusted until it is back",
                     self->trust_dir, strerror (errno));
        trust = (s_trust_t *) zmalloc (sizeof (s_trust_t));
        trust->keys = zhashx_new ();
        trust->names = zhashx_new ();
    }
    pthread_mutex_lock (&s_zap_lock);
    s_trust_t *old = self->trust;
    self->trust = trust;
    pthread_mutex_unlock (&s_zap_lock);
    s_trust_destroy (&old);
    return true;
}

bool
chorus__keys_resolve (chorus__keys_t *self, const char *text, char *key)
{
    if (chorus__key_valid (text)) {
        snprintf (key, 41, "%s", text);
        return true;
    }
    chorus__grant_t *grant = (chorus__grant_t *) zhashx_lookup (self->trust->names, text);
    if (!grant)
        return false;
    snprintf (key, 41, "%s", grant->key);
    return true;
}

size_t
chorus__keys_refusals (chorus__keys_t *self, char *address, size_t address_size, char *key,
                       size_t key_size)
{
    pthread_mutex_lock (&s_zap_lock);
    size_t refused = self->refused;
    self->refused = 0;
    snprintf (address, address_size, "%s", self->refused_address);
    snprintf (key, key_size, "%s", self->refused_key);
    pthread_mutex_unlock (&s_zap_lock);
    return refused;
}

void
chorus_reload_trust (void)
{
    atomic_fetch_add (&s_reloads_asked, 1);
}

//  --------------------------------------------------------------------------
//  The ZAP handler (RFC 27)

//  Answers one request: 200 for a CURVE key the domain's node trusts,
//  400 for anything else
static void
s_zap_answer (void *handler)
{
    zmsg_t *request = zmsg_recv (handler);
    if (!request)
        return;
    char *version = zmsg_popstr (request);
    zframe_t *request_id = zmsg_pop (request);
    char *domain = zmsg_popstr (request);
    char *address = zmsg_popstr (request);
    zframe_t *identity = zmsg_pop (request);
    char *mechanism = zmsg_popstr (request);
    zframe_t *credentials = zmsg_pop (request);
    char key [41] = "";
    if (credentials && zframe_size (credentials) == 32)
        zmq_z85_encode (key, zframe_data (credentials), 32);

    bool allowed = false;
    if (version && streq (version, "1.0") && mechanism && streq (mechanism, "CURVE") && *key) {
        pthread_mutex_lock (&s_zap_lock);
        chorus__keys_t *keys = s_domains && domain?
                               (chorus__keys_t *) zhashx_lookup (s_domains, domain): NULL;
        if (keys) {
            allowed = zhashx_lookup (keys->trust->keys, key) != NULL;
            if (!allowed) {
                keys->refused++;
                snprintf (keys->refused_address, sizeof (keys->refused_address), "%s",
                          address? address: "?");
                snprintf (keys->refused_key, sizeof (keys->refused_key), "%s", key);
            }
        }
        pthread_mutex_unlock (&s_zap_lock);
    }
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    if (request_id)
        zmsg_append (reply, &request_id);
    else
        zmsg_addstr (reply, "");
    zmsg_addstr (reply, allowed? "200": "400");
    zmsg_addstr (reply, allowed? "OK": "key not trusted");
    zmsg_addstr (reply, allowed? key: "");     //  the user id: the key itself
    zmsg_addmem (reply, NULL, 0);               //  no metadata
    zmsg_send (&reply, handler);

    zstr_free (&version);
    zstr_free (&domain);
    zstr_free (&address);
    zstr_free (&mechanism);
    zframe_destroy (&request_id);
    zframe_destroy (&identity);
    zframe_destroy (&credentials);
    zmsg_destroy (&request);
}

//  Runs the handler bound by chorus__keys_start, which hands it over
static void
s_zap_actor (zsock_t *pipe, void *args)
{
    void *handler = args;
    zsock_signal (pipe, 0);
    zpoller_t *poller = zpoller_new (pipe, handler, NULL);
    while (true) {
        void *which = zpoller_wait (poller, -1);
        if (which == handler)
            s_zap_answer (handler);
        else
            break;      //  $TERM, or interrupted
    }
    zpoller_destroy (&poller);
    chorus__socket_destroy (&handler);
}

int
chorus__keys_start (chorus__keys_t *self, char *error, size_t size)
{
    pthread_mutex_lock (&s_life);
    int rc = 0;
    if (!s_zap) {
        //  Bound here, so that a failure is ours to report; the actor's
        //  thread owns the socket from then on
        void *handler = chorus__socket_new (ZMQ_REP);
        if (!handler || zmq_bind (handler, "inproc://zeromq.zap.01")) {
            chorus__socket_destroy (&handler);
            rc = -1;
        }
        else
            s_zap = zactor_new (s_zap_actor, handler);
    }
    if (rc == 0) {
        pthread_mutex_lock (&s_zap_lock);
        if (!s_domains)
            s_domains = zhashx_new ();
        snprintf (self->domain, sizeof (self->domain), "chorus-%u", ++s_domain_next);
        zhashx_insert (s_domains, self->domain, self);
        pthread_mutex_unlock (&s_zap_lock);
    }
    else
        snprintf (error, size, "cannot answer ZAP requests: another ZAP handler (zauth?) "
                  "is bound in this process");
    pthread_mutex_unlock (&s_life);
    return rc;
}

void
chorus__keys_stop (chorus__keys_t *self)
{
    if (!self->domain [0])
        return;
    pthread_mutex_lock (&s_life);
    pthread_mutex_lock (&s_zap_lock);
    zhashx_delete (s_domains, self->domain);
    self->domain [0] = 0;
    zactor_t *zap = NULL;
    if (zhashx_size (s_domains) == 0) {
        zhashx_destroy (&s_domains);
        zap = s_zap;
        s_zap = NULL;
    }
    pthread_mutex_unlock (&s_zap_lock);
    zactor_destroy (&zap);      //  outside s_zap_lock: its thread may wait for it
    pthread_mutex_unlock (&s_life);
}
