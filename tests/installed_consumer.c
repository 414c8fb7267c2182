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
    printf ("libchorus %d.%d.%d\n", major, minor, patch);
    return 0;
}
