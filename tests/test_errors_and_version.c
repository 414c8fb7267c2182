/*  test_errors_and_version.c — the public error codes and version calls,
    the detail behind a failure (chorus_node_error), and the log handler.
*/
#include "chorus_private.h"
#include "tap.h"

//  Messages the library logged, while the handler is set
static int s_logged = 0;
static chorus_log_level_t s_level = 0;
static char s_message [512];

static void
s_on_log (chorus_log_level_t level, const char *message, void *arg)
{
    s_logged++;
    s_level = level;
    snprintf (s_message, sizeof (s_message), "%s", message);
    (*(int *) arg)++;
}

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
    //  CHORUS_PACKAGE_VERSION: what configure took from chorus.h (tests/local.mk)
    is_str (text, CHORUS_PACKAGE_VERSION, "the package's version is the header's");

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
    is_str (chorus_strerror (-1), chorus_strerror (CHORUS_ETOOBIG),
            "chorus_strerror (-1) describes that code, not 'unknown'");

    //  The detail behind a failure, and where the library's messages go
    int calls = 0;
    chorus_set_log (s_on_log, &calls);
    chorus_node_t *node = chorus_node_new ("orders");
    is_int (chorus_node_set_security (node, "orders.cert_secret", NULL), -1,
            "a certificate without a trust directory is refused");
    ok (s_logged == 1 && calls == 1 && s_level == CHORUS_LOG_ERROR
        && strstr (s_message, "trust directory is missing"),
        "the log handler got the reason, as an error: %s", s_message);
    ok (strstr (chorus_node_error (node), "trust directory is missing")
        && strncmp (chorus_node_error (node), "chorus: ", 8) != 0,
        "chorus_node_error gives the detail: %s", chorus_node_error (node));
    is_int (chorus_node_set_mesh (node, "two words"), -1, "a mesh name with a space is refused");
    is_int (chorus_errno (), CHORUS_EINVAL, "as CHORUS_EINVAL");
    is_str (chorus_node_error (node), "", "a failure with nothing more to say has no detail");
    chorus_set_log (NULL, NULL);
    s_logged = 0;
    chorus_node_set_security (node, NULL, "trust");
    is_int (s_logged, 0, "without a handler, messages go to stderr again");
    ok (strstr (chorus_node_error (node), "certificate is missing") != NULL,
        "and the detail is kept all the same");
    chorus_node_destroy (&node);
    return done_testing ();
}
