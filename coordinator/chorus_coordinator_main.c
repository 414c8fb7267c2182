/*  chorus_coordinator_main.c — the chorus-coordinator daemon's main: reads
    its arguments, starts the coordinator, runs until a signal.
*/
#include "chorus_coordinator.h"
#include "chorus_program.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: chorus-coordinator --flows DIR --store DIR [options]\n"
        "       chorus-coordinator --check DIR\n"
        "\n"
        "Runs YAML-defined flows (sagas) over a Chorus mesh, as a node of the\n"
        "service 'coordinator': it starts a flow for each trigger event and for\n"
        "each flow.start command, sends the steps' commands, retries, times out,\n"
        "fans out and compensates, and journals every transition so that after a\n"
        "crash every flow resumes where it was. Flow format: coordinator/FLOWS.md.\n"
        "\n"
        "  --flows DIR        directory of *.yaml flow definitions, loaded again on\n"
        "                     SIGHUP or within a second of a change to its files:\n"
        "                     all of them, or none if one does not load (the error\n"
        "                     is logged, and the definitions in force stay). New\n"
        "                     flows start on the new versions, running flows keep\n"
        "                     theirs; 'chorus flow defs' shows what is loaded\n"
        "  --store DIR        where the node store and the journal live\n"
        "  --check DIR        validate every definition in DIR and exit\n"
        "  --mesh NAME        the mesh to join (default: $CHORUS_MESH, else 'default');\n"
        "                     nodes of other meshes are ignored\n"
        "  --listen ENDPOINT  this node's inbox (default: an ephemeral loopback port);\n"
        "                     on a wildcard (tcp://0.0.0.0:PORT) it announces the address\n"
        "                     of its interface that routes to the first seed\n"
        "  --advertise HOST[:PORT]  announce HOST (and PORT for the inbox) to peers\n"
        "                     instead (default: $CHORUS_ADVERTISE, else as above)\n"
        "  --metrics HOST:PORT  serve this node's figures for Prometheus at\n"
        "                     http://HOST:PORT/metrics (default: $CHORUS_METRICS, else\n"
        "                     none)\n"
        "  --http HOST:PORT   serve the web console and its JSON API (coordinator/\n"
        "                     HTTP.md) at http://HOST:PORT/ (default: $CHORUS_HTTP,\n"
        "                     else none); port 0 picks a free port, and the address\n"
        "                     is printed. Bind it to loopback unless told otherwise\n"
        "  --http-token FILE  the console's API asks for the token in FILE (a bearer\n"
        "                     token; default: $CHORUS_HTTP_TOKEN); use it on a secure\n"
        "                     mesh\n"
        "  --stuck-after SECONDS  at /metrics, chorus_flows_stuck counts a running flow\n"
        "                     nothing happened to for this long (no reply, timer, event\n"
        "                     or signal; 1 to 31536000, default 3600), beside the flows\n"
        "                     in state stuck\n"
        "  --seed ENDPOINT    a peer to meet first (repeatable; also CHORUS_SEEDS); on a\n"
        "                     secure mesh ENDPOINT@KEY, KEY being the seed's public key\n"
        "                     (40 Z85 characters) or the NAME of its certificate in the\n"
        "                     trust directory\n"
        "  --cert FILE        join a secure mesh (CURVE) with this secret certificate\n"
        "                     (from 'chorus keygen'; default: $CHORUS_CERT); needs --trust\n"
        "  --trust DIR        the public certificates (*.cert) of the nodes to accept\n"
        "                     (default: $CHORUS_TRUST); needs --cert. SIGHUP makes the\n"
        "                     coordinator read it again at once\n"
        "  --beacon PORT      UDP beacon discovery on PORT\n"
        "  --keep N           finished flows kept for status queries (default 10000)\n"
        "  --no-sync          do not fsync journal commits nor the events the flows\n"
        "                     publish (faster; survives a crash of the process but not of\n"
        "                     the machine: after one, the journal may miss its last\n"
        "                     commits and is refused until repaired). By default a\n"
        "                     commit is fsync'd before the flow moves on, and an event\n"
        "                     stays in the journal until the node store that published\n"
        "                     it is fsync'd (by a thread of its own).\n"
        "  --verbose          log what happens\n"
        "  --help             show this help and exit\n"
        "  --version          show the version and exit\n"
        "\n"
        "A damaged store (its journal or its node store corrupt, torn, or missing\n"
        "commits that were made) is refused, never taken for an empty one: the\n"
        "coordinator says what is damaged and exits 5. `chorus store check DIR`\n"
        "shows what the store holds; `chorus store repair DIR` keeps what is\n"
        "readable and reports what was lost.\n"
        "\n"
        "Exit status: 0 stopped by a signal (or --check passed), 1 failure (flows\n"
        "that do not load, a store locked or unwritable), 2 bad usage, 5 damaged store.\n");
}

//  SIGHUP: load the flows directory and read the trust directory again,
//  instead of ending
static void
s_on_hangup (int signal_number)
{
    (void) signal_number;
    chorus_coordinator_hangup ();
    chorus_reload_trust ();
}

//  An option's value, else its environment variable's (empty is unset)
static const char *
s_option_or_env (const char *option, const char *name)
{
    const char *env = getenv (name);
    return option? option: env && *env? env: NULL;
}

//  The console's token: the first line of the file, 16 to 200 printable
//  characters; 0, or -1 having said why
static int
s_read_token (const char *file, char *token, size_t size)
{
    FILE *input = fopen (file, "r");
    if (!input) {
        fprintf (stderr, "chorus-coordinator: cannot read the console's token from '%s': %s\n",
                 file, strerror (errno));
        return -1;
    }
    if (!fgets (token, (int) size, input))
        token [0] = 0;
    fclose (input);
    token [strcspn (token, "\r\n")] = 0;
    size_t length = strlen (token);
    bool printable = true;
    for (size_t i = 0; i < length; i++)
        printable = printable && token [i] > ' ' && token [i] < 0x7f;
    if (length < 16 || length > 200 || !printable) {
        fprintf (stderr, "chorus-coordinator: the console's token in '%s' must be its first "
                 "line, 16 to 200 printable characters without spaces\n", file);
        return -1;
    }
    return 0;
}

int
main (int argc, char **argv)
{
    static struct option options [] = {
        {"flows", required_argument, 0, 'f'}, {"store", required_argument, 0, 's'},
        {"check", required_argument, 0, 'c'}, {"listen", required_argument, 0, 'l'},
        {"seed", required_argument, 0, 'e'}, {"beacon", required_argument, 0, 'b'},
        {"keep", required_argument, 0, 'k'}, {"no-sync", no_argument, 0, 'n'},
        {"verbose", no_argument, 0, 'v'}, {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'}, {"mesh", required_argument, 0, 'm'},
        {"cert", required_argument, 0, 'C'}, {"trust", required_argument, 0, 'T'},
        {"advertise", required_argument, 0, 'a'}, {"metrics", required_argument, 0, 'M'},
        {"http", required_argument, 0, 'H'}, {"http-token", required_argument, 0, 't'},
        {"stuck-after", required_argument, 0, 'S'},
        {0, 0, 0, 0}};
    const char *token_file = NULL;
    chorus_coordinator_config_t config;
    memset (&config, 0, sizeof (config));
    config.journal_sync = true;
    const char *check = NULL;
    const char *seeds [65] = {NULL};
    int seed_count = 0;
    opterr = 0;
    int option;
    while ((option = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (option) {
            case 'f': config.flows_dir = optarg; break;
            case 's': config.store_dir = optarg; break;
            case 'c': check = optarg; break;
            case 'l': config.listen = optarg; break;
            case 'a': config.advertise = optarg; break;
            case 'M': config.metrics = optarg; break;
            case 'H': config.http = optarg; break;
            case 't': token_file = optarg; break;
            case 'S': {
                char *end;
                long seconds = strtol (optarg, &end, 10);
                if (*end || end == optarg || seconds < 1 || seconds > 31536000) {
                    fprintf (stderr, "chorus-coordinator: --stuck-after '%s' is not a number "
                             "of seconds from 1 to 31536000\n", optarg);
                    return 2;
                }
                config.stuck_after_s = (unsigned) seconds;
                break;
            }
            case 'm': config.mesh = optarg; break;
            case 'e':
                if (seed_count < 64)
                    seeds [seed_count++] = optarg;
                break;
            case 'b': config.beacon_port = atoi (optarg); break;
            case 'k': config.keep_finished = (size_t) atol (optarg); break;
            case 'n': config.journal_sync = false; break;
            case 'v': config.verbose = true; break;
            case 'C': config.cert_file = optarg; break;
            case 'T': config.trust_dir = optarg; break;
            case 'h': s_usage (stdout); return 0;
            case 'V': {
                int major, minor, patch;
                chorus_version (&major, &minor, &patch);
                printf ("chorus-coordinator %d.%d.%d (protocol %d)\n", major, minor, patch,
                        CHORUS_PROTOCOL_VERSION);
                return 0;
            }
            default:
                fprintf (stderr, "chorus-coordinator: unknown option '%s' (see --help)\n",
                         argv [optind - 1]);
                return 2;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "chorus-coordinator: unexpected argument '%s' (see --help)\n",
                 argv [optind]);
        return 2;
    }
    char error [1024];
    if (check) {
        if (chorus_coordinator_check (check, error, sizeof (error))) {
            fprintf (stderr, "%s\n", error);
            return 1;
        }
        printf ("%s: all flow definitions are valid\n", check);
        return 0;
    }
    if (!config.flows_dir || !config.store_dir) {
        s_usage (stderr);
        return 2;
    }
    //  Half a secure node would be a plaintext one by mistake, or none
    bool cert_option = config.cert_file != NULL, trust_option = config.trust_dir != NULL;
    config.cert_file = s_option_or_env (config.cert_file, "CHORUS_CERT");
    config.trust_dir = s_option_or_env (config.trust_dir, "CHORUS_TRUST");
    if (!config.cert_file != !config.trust_dir) {
        if (config.cert_file)
            fprintf (stderr, "chorus-coordinator: %s needs --trust (or CHORUS_TRUST): a "
                     "secure node must know which keys to accept (see --help)\n",
                     cert_option? "--cert": "CHORUS_CERT");
        else
            fprintf (stderr, "chorus-coordinator: %s needs --cert (or CHORUS_CERT): a "
                     "secure node must have a key of its own (see --help)\n",
                     trust_option? "--trust": "CHORUS_TRUST");
        return 2;
    }
    config.http = s_option_or_env (config.http, "CHORUS_HTTP");
    token_file = s_option_or_env (token_file, "CHORUS_HTTP_TOKEN");
    char token [256];
    if (token_file) {
        if (s_read_token (token_file, token, sizeof (token)))
            return 2;
        config.http_token = token;
    }
    chorus_program_catch_hangup (s_on_hangup);
    //  CHORUS_SEEDS adds comma-separated seeds
    char *env = getenv ("CHORUS_SEEDS")? strdup (getenv ("CHORUS_SEEDS")): NULL;
    for (char *seed = env? strtok (env, ","): NULL; seed && seed_count < 64;
         seed = strtok (NULL, ","))
        if (*seed)
            seeds [seed_count++] = seed;
    config.seeds = seeds;
    zsys_set_logstream (stderr);
    chorus_set_log (chorus_program_library_log, NULL);
    //  Signals are for our thread: the threads of the node and of the
    //  journal, made now, start with them blocked. One that went to a
    //  node's thread would end its poll as though the node were stopping.
    sigset_t all, ours;
    sigfillset (&all);
    pthread_sigmask (SIG_BLOCK, &all, &ours);
    chorus_coordinator_t *coordinator = chorus_coordinator_new (&config, error, sizeof (error));
    int rc = coordinator? chorus_coordinator_start (coordinator): -1;
    pthread_sigmask (SIG_SETMASK, &ours, NULL);
    if (!coordinator) {
        fprintf (stderr, "chorus-coordinator: %s\n", error);
        free (env);
        return 1;
    }
    if (rc) {
        fprintf (stderr, "chorus-coordinator: %s\n", chorus_coordinator_error (coordinator));
        int status = chorus_coordinator_damaged (coordinator)? 5: 1;
        chorus_coordinator_destroy (&coordinator);
        free (env);
        return status;
    }
    chorus_node_t *node = chorus_coordinator_node (coordinator);
    if (chorus_node_metrics_address (node))
        fprintf (stderr, "chorus-coordinator: serving metrics at http://%s/metrics\n",
                 chorus_node_metrics_address (node));
    if (chorus_coordinator_console_address (coordinator))
        fprintf (stderr, "chorus-coordinator: serving the console at http://%s/\n",
                 chorus_coordinator_console_address (coordinator));
    printf ("chorus-coordinator ready at %s\n", chorus_node_endpoint (node));
    fflush (stdout);
    chorus_coordinator_run (coordinator, -1);
    int status = 0;
    if (chorus_coordinator_damaged (coordinator)) {
        fprintf (stderr, "chorus-coordinator: %s\n", chorus_coordinator_error (coordinator));
        status = 5;
    }
    chorus_coordinator_destroy (&coordinator);
    free (env);
    return status;
}
