/*  chorus.c — the `chorus` command: one tool with subcommands to watch and
    drive a Chorus mesh from a shell.
*/
#include "chorus.h"

#include <stdio.h>
#include <string.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: chorus [--help] [--version] SUBCOMMAND [ARGS...]\n"
        "\n"
        "Watch and drive a Chorus mesh from the shell.\n"
        "\n"
        "This build has no subcommands yet: the node agent they stand on is\n"
        "not built. Planned: tail, peers, publish, send, serve, on, flow, bench.\n"
        "\n"
        "  --help       show this help and exit\n"
        "  --version    show the version of chorus and of its protocol\n");
}

int
main (int argc, char **argv)
{
    if (argc < 2) {
        s_usage (stderr);
        return 2;
    }
    const char *arg = argv [1];
    if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0) {
        s_usage (stdout);
        return 0;
    }
    if (strcmp (arg, "--version") == 0) {
        int major, minor, patch;
        chorus_version (&major, &minor, &patch);
        printf ("chorus %d.%d.%d (protocol %d)\n", major, minor, patch, CHORUS_PROTOCOL_VERSION);
        return 0;
    }
    if (arg [0] == '-')
        fprintf (stderr, "chorus: unknown option '%s' (see chorus --help)\n", arg);
    else
        fprintf (stderr, "chorus: unknown subcommand '%s' (see chorus --help)\n", arg);
    return 2;
}
