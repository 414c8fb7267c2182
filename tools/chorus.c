/*  chorus.c — the `chorus` command: one tool with subcommands to watch and
    drive a Chorus mesh from a shell. This file only finds the subcommand;
    each lives in its own chorus_cmd_*.c.
*/
#include "chorus_cli.h"
#include "chorus_program.h"

#include <signal.h>
#include <string.h>

//  A subcommand, as --help lists it
typedef struct {
    const char *name;                   //  as typed after "chorus"
    int (*run) (int argc, char **argv); //  takes argv from the subcommand's name on
    const char *summary;                //  one line for chorus --help
} s_subcommand_t;

static const s_subcommand_t s_subcommands [] = {
    { "publish", chorus_cmd_publish, "publish events and wait until every group has them" },
    { "send", chorus_cmd_send, "send a command to a service and print its reply" },
    { "serve", chorus_cmd_serve, "answer a service's commands with shell commands" },
    { "on", chorus_cmd_on, "run a shell command for each event a group receives" },
    { "tail", chorus_cmd_tail, "print events as they are published, and peer changes" },
    { "peers", chorus_cmd_peers, "list the nodes met on the mesh" },
    { "flow", chorus_cmd_flow, "start, inspect, cancel and retry the coordinator's flows" },
    { "store", chorus_cmd_store, "check or repair a node's or coordinator's store" },
    { "keygen", chorus_cmd_keygen, "make a node's certificate for a secure mesh, or show one" },
    { "top", chorus_cmd_top, "watch rates, group lag, latency and flows from /metrics" },
};
#define S_SUBCOMMANDS (sizeof (s_subcommands) / sizeof (s_subcommands [0]))

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: chorus [--help] [--version] SUBCOMMAND [ARGS...]\n"
        "\n"
        "Watch and drive a Chorus mesh from the shell. Payloads are typed and\n"
        "printed as JSON; on the wire they are MessagePack.\n"
        "\n"
        "Subcommands:\n");
    for (size_t index = 0; index < S_SUBCOMMANDS; index++)
        fprintf (out, "  %-9s %s\n", s_subcommands [index].name, s_subcommands [index].summary);
    fprintf (out,
        "\n"
        "Run 'chorus SUBCOMMAND --help' for its options.\n"
        "\n"
        "  -h, --help      show this help and exit\n"
        "  -V, --version   show the version of chorus and of its protocol\n"
        "\n"
        "Environment: CHORUS_MESH, the mesh to join (as --mesh; default 'default');\n"
        "CHORUS_SEEDS, comma-separated peer endpoints to meet first (as --seed);\n"
        "CHORUS_CERT and CHORUS_TRUST, a secure node's certificate and trust\n"
        "directory (as --cert and --trust). SIGHUP makes secure nodes read their\n"
        "trust directory again.\n"
        "Exit status: 0 success, 1 failure, 2 bad usage, 5 the node's store is\n"
        "damaged (see 'chorus store'); some subcommands add more.\n");
}

static int
s_version (void)
{
    int major, minor, patch;
    chorus_version (&major, &minor, &patch);
    printf ("chorus %d.%d.%d (protocol %d)\n", major, minor, patch, CHORUS_PROTOCOL_VERSION);
    return 0;
}

//  SIGHUP: secure nodes read their trust directory again (the operator
//  added or removed a key), instead of the process ending
static void
s_on_hangup (int signal_number)
{
    (void) signal_number;
    chorus_reload_trust ();
}

static const s_subcommand_t *
s_lookup (const char *name)
{
    for (size_t index = 0; index < S_SUBCOMMANDS; index++)
        if (strcmp (s_subcommands [index].name, name) == 0)
            return &s_subcommands [index];
    return NULL;
}

//  "chorus help [SUBCOMMAND]", as people try it
static int
s_help (int argc, char **argv)
{
    if (argc < 2) {
        s_usage (stdout);
        return 0;
    }
    const s_subcommand_t *subcommand = s_lookup (argv [1]);
    if (!subcommand) {
        fprintf (stderr, "chorus: unknown subcommand '%s' (see chorus --help)\n", argv [1]);
        return 2;
    }
    char *help_argv [] = { argv [1], "--help", NULL };
    return subcommand->run (2, help_argv);
}

int
main (int argc, char **argv)
{
    static const struct option options [] = {
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 }
    };
    //  '+' stops at the subcommand, so its options are left to it
    opterr = 0;
    int opt = getopt_long (argc, argv, "+hV", options, NULL);
    if (opt == 'h') {
        s_usage (stdout);
        return 0;
    }
    if (opt == 'V')
        return s_version ();
    if (opt == '?') {
        const char *arg = argv [optind - 1];
        if (optopt > 0)
            fprintf (stderr, "chorus: unknown option '-%c' (see chorus --help)\n", optopt);
        else
            fprintf (stderr, "chorus: unknown option '%.*s' (see chorus --help)\n",
                     (int) strcspn (arg, "="), arg);
        return 2;
    }
    if (optind >= argc) {
        s_usage (stderr);
        return 2;
    }
    //  Writing to a shell command that has exited must fail, not kill us:
    //  that would leave a temporary store behind
    signal (SIGPIPE, SIG_IGN);
    chorus_program_catch_hangup (s_on_hangup);
    //  stdout carries data (JSON lines, replies); czmq's log goes elsewhere
    zsys_set_logstream (stderr);
    chorus_set_log (chorus_program_library_log, NULL);
    const char *name = argv [optind];
    if (strcmp (name, "help") == 0)
        return s_help (argc - optind, argv + optind);
    const s_subcommand_t *subcommand = s_lookup (name);
    if (!subcommand) {
        fprintf (stderr, "chorus: unknown subcommand '%s' (see chorus --help)\n", name);
        return 2;
    }
    return subcommand->run (argc - optind, argv + optind);
}
