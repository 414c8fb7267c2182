/*  chorus_version.c — library version, error codes and their descriptions.
*/
#include "chorus_private.h"

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
