/*  chorus_coordinator_main.c — the chorus-coordinator daemon's main: reads
    its arguments, starts the coordinator, waits for a signal.
*/
#include "chorus.h"

#include <stdio.h>
#include <string.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: chorus-coordinator [--help] [--version]\n"
        "\n"
        "Runs YAML-defined flows (sagas) over a Chorus mesh.\n"
        "\n"
        "This build does not run flows yet: the flow loader, engine and\n"
        "journal are not built. Planned options: --flows DIR, --store DIR,\n"
        "--listen ENDPOINT, --seed ENDPOINT, --check DIR.\n"
        "\n"
        "  --help       show this help and exit\n"
        "  --version    show the version and exit\n");
}

int
main (int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp (argv [i], "--help") == 0 || strcmp (argv [i], "-h") == 0) {
            s_usage (stdout);
            return 0;
        }
        if (strcmp (argv [i], "--version") == 0) {
            int major, minor, patch;
            chorus_version (&major, &minor, &patch);
            printf ("chorus-coordinator %d.%d.%d (protocol %d)\n", major, minor, patch,
                    CHORUS_PROTOCOL_VERSION);
            return 0;
        }
        fprintf (stderr, "chorus-coordinator: unknown option '%s' (see --help)\n", argv [i]);
        return 2;
    }
    s_usage (stderr);
    return 2;
}
