/*  chorus_common.c — library version, error codes and their
    descriptions, and the small helpers every class uses: the clock, fresh
    message ids and name checks.
*/
#include "chorus_private.h"

#include <stdatomic.h>
#include <sys/time.h>

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
        default:                  return "unknown error code";
    }
}

int
chorus_errno (void)
{
    return s_errno;
}

int
chorus__fail (int code)
{
    s_errno = code;
    return -1;
}

uint64_t
chorus__now (void)
{
    struct timeval now;
    gettimeofday (&now, NULL);
    return (uint64_t) now.tv_sec * 1000 + now.tv_usec / 1000;
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
    snprintf (id, 33, "%016" PRIX64 "%016" PRIX64, s_id_prefix, count);
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
