/*  test_errors_and_version.c — the public error codes and version calls,
    the detail behind a failure (chorus_node_error), and the log handler:
    with one set, every message of the library reaches it, from the
    caller's thread and from a node's engine, and none reaches stderr.
*/
#include "chorus_private.h"
#include "tap.h"

#include <fcntl.h>
#include <unistd.h>

//  Messages the library logged while the handler was set, by level
static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static int s_logged [4];
static char s_message [4][512];
static pthread_t s_main;            //  the test's own thread
static int s_elsewhere;             //  messages from other threads

static void
s_on_log (chorus_log_level_t level, const char *message, void *arg)
{
    pthread_mutex_lock (&s_lock);
    if (level >= CHORUS_LOG_ERROR && level <= CHORUS_LOG_DEBUG) {
        s_logged [level]++;
        s_elsewhere += !pthread_equal (pthread_self (), s_main);
        snprintf (s_message [level], sizeof (s_message [level]), "%s", message);
    }
    (*(int *) arg)++;
    pthread_mutex_unlock (&s_lock);
}

static int
s_count (chorus_log_level_t level)
{
    pthread_mutex_lock (&s_lock);
    int count = s_logged [level];
    pthread_mutex_unlock (&s_lock);
    return count;
}

//  stderr goes to a file until s_stderr_back returns what was written
static int s_saved_stderr = -1;

static void
s_stderr_to (const char *path)
{
    fflush (stderr);
    s_saved_stderr = dup (2);
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2 (fd, 2);
    close (fd);
}

static char *
s_stderr_back (const char *path)
{
    fflush (stderr);
    dup2 (s_saved_stderr, 2);
    close (s_saved_stderr);
    FILE *file = fopen (path, "r");
    char *text = (char *) calloc (1, 4096);
    if (file) {
        size_t size = fread (text, 1, 4095, file);
        text [size] = 0;
        fclose (file);
    }
    unlink (path);
    return text;
}

int
main (void)
{
    s_main = pthread_self ();
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
                    CHORUS_EFORBIDDEN, CHORUS_ENETWORK};
    size_t count = sizeof (codes) / sizeof (codes [0]);
    int distinct = 0;
    const char *unknown = chorus_strerror (12345);
    for (size_t i = 0; i < count; i++) {
        const char *text = chorus_strerror (codes [i]);
        bool unique = text && *text && strcmp (text, unknown) != 0
                   && strcmp (text, chorus_strerror (CHORUS_OK)) != 0;
        for (size_t j = 0; j < i; j++)
            unique = unique && strcmp (text, chorus_strerror (codes [j])) != 0;
        distinct += unique;
        if (!unique)
            diag ("code %d: '%s'", codes [i], text);
    }
    is_int (distinct, (int) count, "every error code has its own description, none 'unknown'");
    bool negative = true;
    for (size_t i = 0; i < count; i++)
        negative = negative && codes [i] < -1;
    ok (negative, "every code is negative and none is -1");
    is_str (chorus_strerror (CHORUS_OK), "success", "0 is success");

    is_int (chorus__fail (CHORUS_ETOOBIG), CHORUS_ETOOBIG, "a failure returns its code");
    is_int (chorus_errno (), CHORUS_ETOOBIG, "and records it for this thread");
    is_str (chorus_strerror (-1), chorus_strerror (CHORUS_ETOOBIG),
            "chorus_strerror (-1), which is no code, describes that code, not 'unknown'");

    //  With a handler: every message reaches it, nothing reaches stderr
    char *path = zsys_sprintf ("%s/chorus-stderr-%d", getenv ("TMPDIR") && *getenv ("TMPDIR")?
                               getenv ("TMPDIR"): "/tmp", (int) getpid ());
    int calls = 0;
    chorus_set_log (s_on_log, &calls);
    s_stderr_to (path);
    chorus_node_t *node = chorus_node_new ("orders");
    int rc = chorus_node_set_security (node, "orders.cert_secret", NULL);
    int errno_then = chorus_errno ();
    char *trust = zsys_sprintf ("%s.trust", path);
    zsys_dir_create ("%s", trust);
    zcert_t *cert = zcert_new ();
    char *cert_file = zsys_sprintf ("%s.cert", path);
    zcert_save (cert, cert_file);
    zcert_destroy (&cert);
    char *secret_file = zsys_sprintf ("%s_secret", cert_file);
    chmod (secret_file, 0600);
    int secured = chorus_node_set_security (node, secret_file, trust);
    chorus_node_set_verbose (node, true);
    int started = chorus_node_start (node);
    chorus_node_destroy (&node);
    char *written = s_stderr_back (path);

    is_int (rc, CHORUS_EINVAL, "a certificate without a trust directory is refused");
    is_int (errno_then, CHORUS_EINVAL, "chorus_errno agrees");
    ok (s_count (CHORUS_LOG_ERROR) == 1 && strstr (s_message [CHORUS_LOG_ERROR],
                                                   "trust directory is missing"),
        "the log handler got the reason, as an error: %s", s_message [CHORUS_LOG_ERROR]);
    ok (secured == 0 && s_count (CHORUS_LOG_WARNING) >= 1
        && strstr (s_message [CHORUS_LOG_WARNING], "no public certificate"),
        "a warning reaches it: %s", s_message [CHORUS_LOG_WARNING]);
    pthread_mutex_lock (&s_lock);
    int elsewhere = s_elsewhere;
    pthread_mutex_unlock (&s_lock);
    ok (started == 0 && s_count (CHORUS_LOG_DEBUG) >= 1 && elsewhere >= 1,
        "so do a verbose node's messages, from its engine's thread (%d): %s", elsewhere,
        s_message [CHORUS_LOG_DEBUG]);
    is_str (written, "", "and nothing of the library's reached stderr");
    free (written);

    //  The detail behind a failure
    node = chorus_node_new ("orders");
    chorus_node_set_security (node, "orders.cert_secret", NULL);
    ok (strstr (chorus_node_error (node), "trust directory is missing")
        && strncmp (chorus_node_error (node), "chorus: ", 8) != 0,
        "chorus_node_error gives the detail: %s", chorus_node_error (node));
    int before = calls;
    is_int (chorus_node_set_mesh (node, "two words"), CHORUS_EINVAL,
            "a mesh name with a space is refused");
    is_int (chorus_errno (), CHORUS_EINVAL, "as CHORUS_EINVAL");
    ok (strstr (chorus_node_error (node), "not a mesh name") != NULL,
        "a refused argument has its detail too: %s", chorus_node_error (node));
    ok (calls == before, "and is not logged");

    //  Without a handler, messages go to stderr again, as lines of their own
    chorus_set_log (NULL, NULL);
    s_stderr_to (path);
    chorus_node_set_security (node, NULL, "trust");
    written = s_stderr_back (path);
    ok (strncmp (written, "E: ", 3) == 0 && strstr (written, "certificate is missing"),
        "without a handler, an error is a line on stderr: %.*s", (int) strcspn (written, "\n"),
        written);
    free (written);
    ok (strstr (chorus_node_error (node), "certificate is missing") != NULL,
        "and the detail is kept all the same");
    chorus_node_destroy (&node);

    unlink (cert_file);
    unlink (secret_file);
    zsys_dir_delete ("%s", trust);
    free (cert_file);
    free (secret_file);
    free (trust);
    free (path);
    return done_testing ();
}
