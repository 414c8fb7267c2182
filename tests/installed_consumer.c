/*  installed_consumer.c — a program outside the tree, built only with what
    `pkg-config --cflags --libs libchorus` gives, against an installed copy.
*/
#include <chorus.h>
#include <stdio.h>
#include <string.h>

int
main (void)
{
    int major, minor, patch;
    int version = chorus_version (&major, &minor, &patch);
    if (version != CHORUS_VERSION || strcmp (chorus_strerror (CHORUS_ETIMEDOUT),
                                             "deadline passed") != 0)
        return 1;
    //  A payload from JSON and back, with nothing but chorus.h
    void *data = NULL;
    size_t size = 0;
    char error [128];
    if (chorus_payload_from_json ("{\"n\":1}", 7, 0, &data, &size, error, sizeof (error))
        || size != 4)
        return 1;
    char *json = NULL;
    int rc = chorus_payload_to_json (data, size, 0, &json, error, sizeof (error));
    chorus_payload_free (data);
    if (rc || strcmp (json, "{\"n\":1}") != 0)
        return 1;
    chorus_payload_free (json);
    if (chorus_payload_from_json ("{", 1, 0, &data, &size, error, sizeof (error))
        != CHORUS_EINVAL)
        return 1;
    printf ("libchorus %d.%d.%d, payloads as JSON\n", major, minor, patch);
    return 0;
}
