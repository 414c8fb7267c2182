/*  chorus_common.c — library version, error codes and their
    descriptions, and the small helpers every class uses: the clock, fresh
    message ids and name checks.
*/
#include "chorus_private.h"

#include <stdatomic.h>
#include <sys/time.h>
#include <time.h>

static _Thread_local int s_errno = CHORUS_OK;

int
chorus_version (int *major, int *minor, int *patch)
{
    if (major)
        *major = CHORUS_VERSION_MAJOR;
    if (minor)
        *minor = CHORUS_VERSION_MINOR;
    if (patch)
        *patch = CHORUS_VERSION_PATCH;
    return CHORUS_VERSION;
}

const char *
chorus_strerror (int code)
{
    //  -1 is no code: a caller that passes -1 along means this thread's last
    if (code == -1)
        code = s_errno;
    switch (code) {
        case CHORUS_OK:           return "success";
        case CHORUS_EINVAL:       return "invalid argument";
        case CHORUS_ENOMEM:       return "out of memory";
        case CHORUS_ESTORE:       return "durable store failed";
        case CHORUS_ETIMEDOUT:    return "deadline passed";
        case CHORUS_EMALFORMED:   return "malformed message";
        case CHORUS_ETOOBIG:      return "payload or field exceeds protocol limit";
        case CHORUS_ESTATE:       return "not allowed in the current state";
        case CHORUS_EFULL:        return "retention full: publish refused";
        case CHORUS_EUNKNOWN:     return "unknown command, service or flow";
        case CHORUS_EREMOTE:      return "remote handler replied with an error";
        case CHORUS_EINTERRUPTED: return "interrupted";
        case CHORUS_ECORRUPT:     return "durable store damaged";
        case CHORUS_EFORBIDDEN:   return "not allowed by the certificate";
        case CHORUS_ENETWORK:     return "endpoint cannot be bound or socket made";
        default:                  return "unknown error code";
    }
}

int
chorus_errno (void)
{
    return s_errno;
}

//  The text of the last error logged by this thread, and whether the next
//  failure is the one it explains
static _Thread_local char s_detail [1024];
static _Thread_local bool s_detail_pending;

int
chorus__fail (int code)
{
    assert (code < 0);
    s_errno = code;
    if (!s_detail_pending)
        s_detail [0] = 0;   //  a failure that said nothing more
    s_detail_pending = false;
    return code;
}

int
chorus__failf (int code, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    vsnprintf (s_detail, sizeof (s_detail), format, args);
    va_end (args);
    s_detail_pending = true;
    return chorus__fail (code);
}

const char *
chorus__detail (void)
{
    return s_detail;
}

static pthread_mutex_t s_log_lock = PTHREAD_MUTEX_INITIALIZER;
static chorus_log_fn *s_log_fn = NULL;
static void *s_log_arg = NULL;

void
chorus_set_log (chorus_log_fn *handler, void *arg)
{
    pthread_mutex_lock (&s_log_lock);
    s_log_fn = handler;
    s_log_arg = arg;
    pthread_mutex_unlock (&s_log_lock);
}

//  Without a handler: a line on stderr, as czmq's log lines look. Not
//  czmq's log itself, whose default is stdout, where a program's data goes.
static void
s_log_stderr (chorus_log_level_t level, const char *text)
{
    time_t now = time (NULL);
    struct tm local;
    char when [32] = "";
    if (localtime_r (&now, &local))
        strftime (when, sizeof (when), "%y-%m-%d %H:%M:%S", &local);
    char mark = level == CHORUS_LOG_ERROR? 'E': level == CHORUS_LOG_WARNING? 'W': 'D';
    fprintf (stderr, "%c: %s %s\n", mark, when, text);
}

void
chorus__log (chorus_log_level_t level, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *text = zsys_vprintf (format, args);
    va_end (args);
    if (!text)
        return;
    if (level == CHORUS_LOG_ERROR) {
        //  Without the "chorus: " every library message starts with
        const char *detail = strncmp (text, "chorus: ", 8) == 0? text + 8: text;
        snprintf (s_detail, sizeof (s_detail), "%s", detail);
        s_detail_pending = true;
    }
    pthread_mutex_lock (&s_log_lock);
    chorus_log_fn *handler = s_log_fn;
    void *arg = s_log_arg;
    pthread_mutex_unlock (&s_log_lock);
    if (handler)
        handler (level, text, arg);
    else
        s_log_stderr (level, text);
    zstr_free (&text);
}

uint64_t
chorus__now (void)
{
    struct timeval now;
    gettimeofday (&now, NULL);
    return (uint64_t) now.tv_sec * 1000 + now.tv_usec / 1000;
}

uint64_t
chorus__mono (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (uint64_t) now.tv_sec * 1000 + (uint64_t) now.tv_nsec / 1000000;
}

void *
chorus__socket_new (int type)
{
    //  No file name: czmq's leak report would otherwise hold an entry for
    //  each; these sockets are closed through chorus__socket_destroy
    return zsys_socket (type, NULL, 0);
}

void
chorus__socket_destroy (void **socket_p)
{
    if (socket_p && *socket_p) {
        //  A socket-monitor left running would block ZeroMQ's threads on
        //  its reader; stopping one that is not running costs nothing
        zmq_socket_monitor (*socket_p, NULL, 0);
        zsys_close (*socket_p, NULL, 0);
        *socket_p = NULL;
    }
}

//  A random prefix per process and a counter make ids unique without a
//  round trip to anyone, and cheap enough for every message
static uint64_t s_id_prefix = 0;
static atomic_uint_fast64_t s_id_counter = 0;
static pthread_once_t s_id_once = PTHREAD_ONCE_INIT;

static void
s_id_init (void)
{
    zuuid_t *uuid = zuuid_new ();
    memcpy (&s_id_prefix, zuuid_data (uuid), sizeof (s_id_prefix));
    zuuid_destroy (&uuid);
}

void
chorus__new_id (char id [33])
{
    pthread_once (&s_id_once, s_id_init);
    uint64_t count = atomic_fetch_add (&s_id_counter, 1);
    uint8_t bytes [16];
    for (int i = 0; i < 8; i++) {
        bytes [i] = (uint8_t) (s_id_prefix >> (56 - 8 * i));
        bytes [8 + i] = (uint8_t) (count >> (56 - 8 * i));
    }
    chorus__hex (bytes, sizeof (bytes), id);
}

void
chorus__hex (const uint8_t *bytes, size_t size, char *text)
{
    static const char digits [] = "0123456789ABCDEF";
    for (size_t i = 0; i < size; i++) {
        text [2 * i] = digits [bytes [i] >> 4];
        text [2 * i + 1] = digits [bytes [i] & 15];
    }
    text [2 * size] = 0;
}

size_t
chorus__decimal (uint64_t value, char *text)
{
    char reversed [20];
    size_t size = 0;
    do {
        reversed [size++] = (char) ('0' + value % 10);
        value /= 10;
    } while (value);
    for (size_t i = 0; i < size; i++)
        text [i] = reversed [size - 1 - i];
    text [size] = 0;
    return size;
}

void
chorus__subs_free (chorus__sub_t **subs_p, size_t *size_p)
{
    for (size_t i = 0; i < *size_p; i++)
        free ((*subs_p) [i].prefix);
    free (*subs_p);
    *subs_p = NULL;
    *size_p = 0;
}

void
chorus__subs_add (chorus__sub_t **subs_p, size_t *size_p, const char *prefix, uint64_t since,
            uint64_t flags)
{
    *subs_p = (chorus__sub_t *) realloc (*subs_p, (*size_p + 1) * sizeof (chorus__sub_t));
    assert (*subs_p);
    chorus__sub_t *sub = &(*subs_p) [(*size_p)++];
    sub->prefix = strdup (prefix);
    sub->since = since;
    sub->flags = flags;
}

bool
chorus__valid_name (const char *name, size_t max)
{
    if (!name)
        return false;
    size_t size = strlen (name);
    if (size == 0 || size > max)
        return false;
    for (size_t i = 0; i < size; i++)
        if ((uint8_t) name [i] < 0x21 || (uint8_t) name [i] > 0x7e)
            return false;
    return true;
}

//  --------------------------------------------------------------------------
//  Batches on the work pipe

void
chorus__batch_add (chorus__batch_t *self, char kind, uint32_t status, void *first,
                   void *second, const char *text)
{
    chorus__work_t record = {kind, status, text? (uint32_t) strlen (text): 0, first, second};
    size_t needed = sizeof (record) + record.text_size;
    if (self->size + needed > self->max) {
        size_t max = self->max? self->max * 2: 4096;
        while (max < self->size + needed)
            max *= 2;
        self->data = (uint8_t *) realloc (self->data, max);
        assert (self->data);
        self->max = max;
    }
    memcpy (self->data + self->size, &record, sizeof (record));
    if (record.text_size)
        memcpy (self->data + self->size + sizeof (record), text, record.text_size);
    self->size += needed;
    self->count++;
}

//  One frame of a batch. A signal that comes meanwhile (the application's
//  SIGHUP, or a Ctrl-C it has yet to act on) must not lose the batch, whose
//  events would then stay in hand for ever, nor leave half a message
static int
s_send_frame (void *handle, const void *data, size_t size, int flags)
{
    int rc;
    do
        rc = zmq_send (handle, data, size, flags);
    while (rc == -1 && zmq_errno () == EINTR);
    return rc;
}

int
chorus__batch_send (chorus__batch_t *self, zsock_t *socket)
{
    if (self->count == 0)
        return 0;
    void *handle = zsock_resolve (socket);
    int rc = s_send_frame (handle, "B", 1, ZMQ_SNDMORE) == 1
          && s_send_frame (handle, self->data, self->size, 0) == (int) self->size? 0: -1;
    self->size = self->count = 0;
    return rc;
}

zmsg_t *
chorus__batch_take (chorus__batch_t *self)
{
    if (self->count == 0)
        return NULL;
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, "B");
    zmsg_addmem (msg, self->data, self->size);
    self->size = self->count = 0;
    return msg;
}

void
chorus__batch_free (chorus__batch_t *self)
{
    free (self->data);
    memset (self, 0, sizeof (*self));
}

static void
s_discard_records (const uint8_t *data, size_t size)
{
    size_t pos = 0;
    chorus__work_t record;
    const char *text;
    while (chorus__batch_next (data, size, &pos, &record, &text)) {
        chorus_msg_t *first = (chorus_msg_t *) record.first;
        chorus_msg_t *second = (chorus_msg_t *) record.second;
        chorus_msg_destroy (&first);
        chorus_msg_destroy (&second);
    }
}

void
chorus__batch_discard (chorus__batch_t *self)
{
    s_discard_records (self->data, self->size);
    chorus__batch_free (self);
}

static void
s_discard_msg (zmsg_t **msg_p)
{
    zframe_t *kind = zmsg_first (*msg_p);
    zframe_t *frame = zmsg_next (*msg_p);
    if (kind && frame && zframe_streq (kind, "B"))
        s_discard_records (zframe_data (frame), zframe_size (frame));
    zmsg_destroy (msg_p);
}

void
chorus__batch_discard_queued (zsock_t *socket)
{
    zmsg_t *msg;
    while ((msg = chorus__recv_ready (socket)))
        s_discard_msg (&msg);
}

void
chorus__batch_discard_list (zlist_t *list)
{
    zmsg_t *msg;
    while ((msg = (zmsg_t *) zlist_pop (list)))
        s_discard_msg (&msg);
}

bool
chorus__batch_next (const uint8_t *data, size_t size, size_t *pos, chorus__work_t *record,
                    const char **text)
{
    if (*pos + sizeof (*record) > size)
        return false;
    memcpy (record, data + *pos, sizeof (*record));
    *pos += sizeof (*record);
    if (record->text_size > size - *pos)
        return false;   //  our own frames are never cut; be safe all the same
    *text = (const char *) data + *pos;
    *pos += record->text_size;
    return true;
}

zmsg_t *
chorus__recv_ready (zsock_t *socket)
{
    //  A receive that does not wait costs no poll while messages are
    //  queued; zsock_events would ask the kernel every time
    zmsg_t *msg = zmsg_new ();
    void *handle = zsock_resolve (socket);
    while (true) {
        zmq_msg_t part;
        zmq_msg_init (&part);
        if (zmq_msg_recv (&part, handle, zmsg_size (msg)? 0: ZMQ_DONTWAIT) == -1) {
            zmq_msg_close (&part);
            zmsg_destroy (&msg);
            return NULL;
        }
        zframe_t *frame = zframe_new (zmq_msg_data (&part), zmq_msg_size (&part));
        bool more = zmq_msg_more (&part);
        zmq_msg_close (&part);
        zmsg_append (msg, &frame);
        if (!more)
            return msg;
    }
}

//  --------------------------------------------------------------------------
//  Hand-off of published events

void
chorus__handoff_init (chorus__handoff_t *self, size_t max)
{
    memset (self, 0, sizeof (*self));
    pthread_mutex_init (&self->lock, NULL);
    pthread_cond_init (&self->room, NULL);
    self->events = (chorus_msg_t **) calloc (max, sizeof (chorus_msg_t *));
    self->bodies = (zframe_t **) calloc (max, sizeof (zframe_t *));
    assert (self->events && self->bodies);
    self->max = max;
}

void
chorus__handoff_destroy (chorus__handoff_t *self)
{
    for (size_t i = 0; i < self->size; i++) {
        chorus_msg_destroy (&self->events [i]);
        zframe_destroy (&self->bodies [i]);
    }
    free (self->events);
    free (self->bodies);
    pthread_cond_destroy (&self->room);
    pthread_mutex_destroy (&self->lock);
    memset (self, 0, sizeof (*self));
}

bool
chorus__handoff_pending (chorus__handoff_t *self)
{
    pthread_mutex_lock (&self->lock);
    bool pending = self->size > 0;
    pthread_mutex_unlock (&self->lock);
    return pending;
}

bool
chorus__handoff_full (chorus__handoff_t *self)
{
    pthread_mutex_lock (&self->lock);
    bool full = self->size == self->max;
    pthread_mutex_unlock (&self->lock);
    return full;
}

bool
chorus__handoff_push (chorus__handoff_t *self, chorus_msg_t *event, zframe_t *body)
{
    pthread_mutex_lock (&self->lock);
    while (self->size == self->max)
        pthread_cond_wait (&self->room, &self->lock);
    self->events [self->size] = event;
    self->bodies [self->size] = body;
    self->size++;
    bool wake = !self->waking;
    self->waking = true;
    pthread_mutex_unlock (&self->lock);
    return wake;
}

size_t
chorus__handoff_take (chorus__handoff_t *self, chorus_msg_t **events, zframe_t **bodies)
{
    pthread_mutex_lock (&self->lock);
    size_t size = self->size;
    memcpy (events, self->events, size * sizeof (chorus_msg_t *));
    memcpy (bodies, self->bodies, size * sizeof (zframe_t *));
    self->size = 0;
    self->waking = false;
    pthread_cond_signal (&self->room);
    pthread_mutex_unlock (&self->lock);
    return size;
}
