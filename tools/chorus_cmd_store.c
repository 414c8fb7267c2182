/*  chorus_cmd_store.c — `chorus store check|repair DIR`: what a node's or
    a coordinator's store holds, and recovery from damage.
*/
#include "chorus_cli.h"
#include "chorus_journal.h"

#include <inttypes.h>
#include <sys/stat.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: chorus store check DIR\n"
        "       chorus store repair DIR\n"
        "\n"
        "Check or repair a Chorus store that no process has open: a node's --store\n"
        "directory, or a coordinator's --store directory (its node/ and journal/).\n"
        "\n"
        "  check    read every record with its checksum verified and report what the\n"
        "           store holds: identity, epoch, outbox range, group cursors, inbox\n"
        "           and reply records; for a coordinator, also its journal's flows\n"
        "  repair   run LevelDB's repair, keep what can be read and report what was\n"
        "           lost (sequence ranges, flows): records whose bytes were damaged\n"
        "           (each event and flow record carries a CRC-32 of its bytes and key)\n"
        "           are dropped and reported too; at its next start the node numbers\n"
        "           its events in a new epoch and tells its consumers of the lost\n"
        "           ranges (TRUNCATED)\n"
        "\n"
        "  -h, --help   show this help and exit\n"
        "\n"
        "Exit status: 0 sound (check) or repaired (repair), 1 failure (in use by\n"
        "another process, permission denied, no store there), 2 bad usage,\n"
        "5 damaged (check) or not recoverable (repair).\n");
}

static bool
s_is_dir (const char *path)
{
    struct stat info;
    return stat (path, &info) == 0 && S_ISDIR (info.st_mode);
}

static int
s_journal_status (chorus_journal_failure_t failure)
{
    return failure == CHORUS_JOURNAL_DAMAGED? CHORUS_CLI_DAMAGED: 1;
}

static int
s_check_journal (const char *dir)
{
    chorus_journal_report_t report;
    int rc = chorus_journal_check (dir, &report);
    printf ("journal: %s\n", dir);
    printf ("flows: %zu (running %zu, compensating %zu, completed %zu, failed %zu, "
            "cancelled %zu, stuck %zu)\n", report.flows, report.running, report.compensating,
            report.completed, report.failed, report.cancelled, report.stuck);
    printf ("events journaled, not yet published: %zu\n", report.unpublished);
    printf ("definitions: %zu; trace entries: %zu\n", report.definitions, report.traces);
    if (rc == 0) {
        printf ("result: sound\n");
        return 0;
    }
    printf ("%s\n", report.problem);
    if (report.failure == CHORUS_JOURNAL_DAMAGED)
        printf ("result: damaged\n");
    return s_journal_status (report.failure);
}

static void
s_print_ids (const char *what, char **ids)
{
    size_t count = 0;
    while (ids && ids [count])
        count++;
    printf ("%s: %zu", what, count);
    for (size_t i = 0; i < count && i < 50; i++)
        printf ("%s%s", i? ", ": " (", ids [i]);
    printf ("%s\n", count > 50? ", ...)": count? ")": "");
}

static int
s_repair_journal (const char *dir)
{
    chorus_journal_repair_t report;
    int rc = chorus_journal_repair (dir, &report);
    printf ("journal: %s\n", dir);
    if (report.before_problem)
        printf ("before: %s\n", report.before_problem);
    if (report.before)
        s_print_ids ("flows readable before", report.before);
    if (report.after)
        s_print_ids ("flows kept", report.after);
    if (report.lost)
        s_print_ids ("flows lost", report.lost);
    if (report.commits < report.commits_made)
        printf ("lost: the last %" PRIu64 " commits (their flows cannot be named)\n",
                report.commits_made - report.commits);
    if (report.dropped_bytes)
        printf ("lost: %" PRIu64 " bytes of damaged log (their flows cannot be named)\n",
                report.dropped_bytes);
    if (rc == 0)
        printf ("result: repaired\n");
    else
        printf ("%s\n", report.problem);
    int status = rc == 0? 0: s_journal_status (report.failure);
    chorus_journal_repair_clear (&report);
    return status;
}

static int
s_node_store (const char *dir, bool repair)
{
    char *report = NULL;
    int rc = repair? chorus_store_repair_dir (dir, &report): chorus_store_check_dir (dir, &report);
    fputs (report? report: "", stdout);
    free (report);
    return rc == 0? 0: chorus_cli_failure (rc);
}

int
chorus_cmd_store (int argc, char **argv)
{
    if (argc >= 2 && (streq (argv [1], "-h") || streq (argv [1], "--help"))) {
        s_usage (stdout);
        return 0;
    }
    if (argc != 3 || (!streq (argv [1], "check") && !streq (argv [1], "repair"))) {
        fprintf (stderr, "chorus store: %s\n", argc < 3? "expected 'check DIR' or 'repair DIR'":
                 argc > 3? "too many arguments": "the action is 'check' or 'repair'");
        s_usage (stderr);
        return 2;
    }
    bool repair = streq (argv [1], "repair");
    const char *dir = argv [2];
    if (!s_is_dir (dir)) {
        fprintf (stderr, "chorus store: %s: no such directory\n", dir);
        return 1;
    }
    //  A coordinator's store: its node store and its journal
    char *node_dir = zsys_sprintf ("%s/node", dir);
    char *journal_dir = zsys_sprintf ("%s/journal", dir);
    int status;
    if (s_is_dir (journal_dir)) {
        int journal = repair? s_repair_journal (journal_dir): s_check_journal (journal_dir);
        int node = 0;
        if (s_is_dir (node_dir)) {
            printf ("\n");
            node = s_node_store (node_dir, repair);
        }
        status = journal == CHORUS_CLI_DAMAGED || node == CHORUS_CLI_DAMAGED?
                 CHORUS_CLI_DAMAGED: journal? journal: node;
    }
    else
        status = s_node_store (dir, repair);
    free (node_dir);
    free (journal_dir);
    return status;
}
