/*  test_errors_and_version.c — the public error codes and version calls.
*/
#include "config.h"      //  PACKAGE_VERSION: what configure took from chorus.h
#include "chorus_private.h"
#include "tap.h"

int
main (void)
{
    int major = -1, minor = -1, patch = -1;
    is_int (chorus_version (&major, &minor, &patch), CHORUS_VERSION, "version number returned");
    ok (major == CHORUS_VERSION_MAJOR && minor == CHORUS_VERSION_MINOR
        && patch == CHORUS_VERSION_PATCH, "version parts filled");
    is_int (chorus_version (NULL, NULL, NULL), CHORUS_VERSION, "NULL parts are allowed");
    char text [32];
    snprintf (text, sizeof (text), "%d.%d.%d", major, minor, patch);
    is_str (text, PACKAGE_VERSION, "the package's version is the header's");

    int codes [] = {CHORUS_EINVAL, CHORUS_ENOMEM, CHORUS_ESTORE, CHORUS_ETIMEDOUT,
                    CHORUS_EMALFORMED, CHORUS_ETOOBIG, CHORUS_ESTATE, CHORUS_EFULL,
                    CHORUS_EUNKNOWN, CHORUS_EREMOTE, CHORUS_EINTERRUPTED, CHORUS_ECORRUPT,
                    CHORUS_EFORBIDDEN};
    int distinct = 0;
    const char *unknown = chorus_strerror (12345);
    for (size_t i = 0; i < sizeof (codes) / sizeof (codes [0]); i++) {
        const char *text = chorus_strerror (codes [i]);
        bool unique = text && strcmp (text, unknown) != 0;
        for (size_t j = 0; j < i; j++)
            unique = unique && strcmp (text, chorus_strerror (codes [j])) != 0;
        distinct += unique;
    }
    is_int (distinct, (int) (sizeof (codes) / sizeof (codes [0])),
            "every error code has its own description");
    is_str (chorus_strerror (CHORUS_OK), "success", "0 is success");

    is_int (chorus__fail (CHORUS_ETOOBIG), -1, "a failure returns -1");
    is_int (chorus_errno (), CHORUS_ETOOBIG, "and records its code for this thread");
    return done_testing ();
}
