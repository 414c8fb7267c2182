/*  test_journal_refuses_damage.c — the coordinator's journal holding 300
    flows (most as a snapshot and a delta, some as one record of the format
    before deltas) is damaged five ways (a truncated, flipped or emptied
    log, a missing CURRENT, a torn table); then one record is made
    undecodable, one delta goes missing, and a flow's first record is a
    delta.
    Each reopen is refused as damaged with a message that names the journal
    (never a journal opened with flows missing); `chorus store check` data
    says what is wrong, and repair keeps what is readable, says which flows
    were lost, and leaves a journal that opens. A locked journal and a new
    one are told apart from damage.
*/
#include "testutil.h"
#include "chorus_journal_private.h"

#include <dirent.h>

#define FLOWS 300

static char *
s_path (const char *dir, const char *name)
{
    return zsys_sprintf ("%s/%s", dir, name);
}

//  The largest file of the journal whose name ends in suffix (caller
//  frees), NULL if none
static char *
s_largest (const char *dir, const char *suffix)
{
    DIR *handle = opendir (dir);
    char *largest = NULL;
    off_t size = -1;
    struct dirent *entry;
    while (handle && (entry = readdir (handle))) {
        size_t length = strlen (entry->d_name);
        if (length <= strlen (suffix) || strcmp (entry->d_name + length - strlen (suffix), suffix))
            continue;
        char *path = s_path (dir, entry->d_name);
        struct stat info;
        if (stat (path, &info) == 0 && info.st_size > size) {
            free (largest);
            largest = path;
            size = info.st_size;
        }
        else
            free (path);
    }
    if (handle)
        closedir (handle);
    return largest;
}

static off_t
s_size (const char *path)
{
    struct stat info;
    return path && stat (path, &info) == 0? info.st_size: -1;
}

//  Counts the flows whose records it is called with
static int
s_count_flow (const char *id, uint64_t number, const void *data, size_t size, void *arg)
{
    static char last [256];
    int *count = (int *) arg;
    if (*count == 0 || strcmp (id, last) != 0)
        (*count)++;
    snprintf (last, sizeof (last), "%s", id);
    return 0;
}

//  A record of format 2: its envelope, with parts of the shape it checks
//  (the engine's begins with the state, the coordinator's lists the events
//  to publish) and nothing more the journal reads
static void
s_put_record (chorus_journal_t *journal, const char *id, uint64_t number, int kind,
              uint64_t unpublished, bool flipped)
{
    bool snapshot = kind == CHORUS_JOURNAL_SNAPSHOT;
    chorus_record_t record;
    chorus_record_init (&record);
    chorus_journal_envelope_write (&record, kind, 1, unpublished);
    chorus_record_array (&record, snapshot? 11: 10);
    chorus_record_uint (&record, 1);
    for (int field = 1; field < (snapshot? 11: 10); field++)
        chorus_record_nil (&record);
    size_t engine_end = record.size;
    chorus_record_array (&record, snapshot? 7: 3);
    for (int field = 0; field < (snapshot? 5: 1); field++)
        chorus_record_nil (&record);
    chorus_record_array (&record, unpublished);
    for (uint64_t event = 0; event < unpublished; event++)
        chorus_record_nil (&record);
    chorus_record_nil (&record);
    chorus_journal_envelope_seal (&record, id, number);
    //  Damage that still decodes: the engine's last nil becomes false
    if (flipped)
        record.data [engine_end - 1] = 0xc2;
    chorus_journal_put_record (journal, id, number, record.data, record.size, true);
    chorus_record_clear (&record);
}

//  A journal of FLOWS flows, committed ten at a time, with traces and a
//  definition: every fifth flow as a record of format 1, the others as a
//  snapshot and a delta; each running, with an event to publish. With
//  tables, reopened once so that the log becomes a table
static void
s_make (const char *dir, bool tables)
{
    char error [512];
    chorus_journal_t *journal = chorus_journal_new (dir, true, NULL, error, sizeof (error));
    if (!journal)
        bail_out (error);
    chorus_journal_set_sync (journal, false);
    chorus_journal_put_definition (journal, "hold", 1, "flow: hold\n");
    for (int i = 1; i <= FLOWS; i++) {
        char id [32], record [512];
        snprintf (id, sizeof (id), "hold-%04d", i);
        snprintf (record, sizeof (record), "{\"correlation\":\"c-%d\",\"state\":{\"flow\":"
                  "\"hold\",\"version\":1,\"state\":\"running\",\"steps\":[]},\"emits\":[{\"topic\":\"t\","
                  "\"n\":1}],\"padding\":\"%0100d\"}", i, i);
        if (i % 5 == 0)
            chorus__journal_put_legacy (journal, id, record);
        else {
            s_put_record (journal, id, 7, CHORUS_JOURNAL_SNAPSHOT, 0, false);
            s_put_record (journal, id, 8, CHORUS_JOURNAL_DELTA, 1, false);
        }
        chorus_journal_put_trace (journal, id, (uint64_t) i, "event", "T", 1);
        if (i % 10 == 0 && chorus_journal_commit (journal))
            bail_out (chorus_journal_error (journal));
    }
    chorus_journal_destroy (&journal);
    if (tables) {
        journal = chorus_journal_new (dir, false, NULL, error, sizeof (error));
        if (!journal)
            bail_out (error);
        chorus_journal_destroy (&journal);
    }
}

static void
s_damage (const char *kind, const char *dir)
{
    char *log = s_largest (dir, ".log");
    char *table = s_largest (dir, ".ldb");
    if (streq (kind, "truncated log"))
        assert (truncate (log, s_size (log) / 2) == 0);
    else
    if (streq (kind, "flipped log")) {
        int fd = open (log, O_WRONLY);
        assert (fd >= 0);
        assert (pwrite (fd, "\xff\xff\xff\xff\xff\xff\xff\xff", 8, s_size (log) / 2) == 8);
        close (fd);
    }
    else
    if (streq (kind, "emptied log"))
        assert (truncate (log, 0) == 0);
    else
    if (streq (kind, "missing CURRENT")) {
        char *current = s_path (dir, "CURRENT");
        assert (unlink (current) == 0);
        free (current);
    }
    else
    if (streq (kind, "torn table"))
        assert (truncate (table, s_size (table) / 2) == 0);
    free (log);
    free (table);
}

static int
s_count_ids (char **ids)
{
    int count = 0;
    while (ids && ids [count])
        count++;
    return count;
}

int
main (void)
{
    char *root = test_tempdir ("journal-damage");
    const char *kinds [] = {"truncated log", "flipped log", "emptied log", "missing CURRENT",
                            "torn table"};
    for (size_t k = 0; k < sizeof (kinds) / sizeof (kinds [0]); k++) {
        const char *kind = kinds [k];
        char *dir = zsys_sprintf ("%s/journal-%zu", root, k);
        bool tables = streq (kind, "torn table");
        s_make (dir, tables);
        char *file = s_largest (dir, tables? ".ldb": ".log");
        ok (s_size (file) > 0, "%s: the journal has a %s to damage (%jd bytes)", kind,
            tables? "table": "log", (intmax_t) s_size (file));
        free (file);
        s_damage (kind, dir);

        //  Refused, and said so; never opened with flows missing
        char error [512] = "";
        chorus_journal_failure_t failure = CHORUS_JOURNAL_OK;
        chorus_journal_t *journal = chorus_journal_new (dir, true, &failure, error,
                                                        sizeof (error));
        int flows = 0;
        if (journal && chorus_journal_each_record (journal, s_count_flow, &flows) < 0) {
            failure = chorus_journal_failure (journal);
            snprintf (error, sizeof (error), "%s", chorus_journal_error (journal));
        }
        chorus_journal_destroy (&journal);
        if (!ok (failure == CHORUS_JOURNAL_DAMAGED, "%s: refused as damaged: %s", kind, error))
            diag ("opened with %d of %d flows", flows, FLOWS);
        char *named = zsys_sprintf ("journal %s is damaged: ", dir);
        ok (strstr (error, named) != NULL, "%s: the message names the journal", kind);
        free (named);

        //  check says what is wrong
        chorus_journal_report_t report;
        int rc = chorus_journal_check (dir, &report);
        ok (rc == -1 && report.failure == CHORUS_JOURNAL_DAMAGED,
            "%s: check says damaged: %s", kind, report.problem);

        //  repair keeps what it can and names what it lost
        chorus_journal_repair_t repair;
        rc = chorus_journal_repair (dir, &repair);
        is_int (rc, 0, "%s: repair succeeds %s", kind, repair.problem);
        int before = s_count_ids (repair.before), after = s_count_ids (repair.after),
            lost = s_count_ids (repair.lost);
        diag ("%s: before %d%s, after %d, lost %d, commits %" PRIu64 " of %" PRIu64 " made, %"
              PRIu64 " bytes of log dropped", kind, before, repair.before_known? "": " (unknown)",
              after, lost, repair.commits, repair.commits_made, repair.dropped_bytes);
        //  Lost: readable before and not after, or dropped as undecodable
        bool right = true;
        for (int i = 0; i < before + lost; i++) {
            const char *id = i < before? repair.before [i]: repair.lost [i - before];
            bool kept = false, named = false;
            for (int j = 0; j < after; j++)
                kept = kept || streq (id, repair.after [j]);
            for (int j = 0; j < lost; j++)
                named = named || streq (id, repair.lost [j]);
            right = right && kept != named;
        }
        ok (right, "%s: the lost flows are those readable before and not after (%zu dropped "
            "as undecodable)", kind, repair.dropped);
        ok (after == FLOWS || lost > 0 || repair.commits < repair.commits_made
            || !repair.before_known || repair.before_problem || repair.dropped_bytes > 0,
            "%s: a loss shows in the report%s%s", kind, repair.before_problem? ": ": "",
            repair.before_problem? repair.before_problem: "");
        chorus_journal_repair_clear (&repair);

        //  and the repaired journal opens, with what repair kept
        journal = chorus_journal_new (dir, true, &failure, error, sizeof (error));
        flows = 0;
        ok (journal && chorus_journal_each_record (journal, s_count_flow, &flows) >= 0,
            "%s: the repaired journal opens %s", kind, journal? "": error);
        is_int (flows, after, "%s: with the %d flows repair kept", kind, after);
        chorus_journal_destroy (&journal);
        ok (chorus_journal_check (dir, &report) == 0, "%s: and checks sound %s", kind,
            report.problem);
        free (dir);
    }

    //  Records that do not add up: a delta that does not decode (torn in
    //  its middle), a record of format 1 that does not, a flow whose
    //  first record is a delta, one whose deltas skip a number, and a
    //  delta with a damaged byte that still decodes (its checksum tells).
    //  Check finds them, repair drops them.
    char *dir = zsys_sprintf ("%s/undecodable", root);
    s_make (dir, false);
    char error [512];
    chorus_journal_t *journal = chorus_journal_new (dir, false, NULL, error, sizeof (error));
    chorus_record_t torn;
    chorus_record_init (&torn);
    chorus_journal_envelope_write (&torn, CHORUS_JOURNAL_DELTA, 1, 1);
    chorus_record_array (&torn, 3);
    chorus_journal_put_record (journal, "hold-0007", 8, torn.data, torn.size, true);
    chorus_record_clear (&torn);
    chorus__journal_put_legacy (journal, "hold-0010", "{\"state\": tr");
    chorus_journal_delete_records (journal, "hold-0012", 7, 8);
    s_put_record (journal, "hold-0013", 10, CHORUS_JOURNAL_DELTA, 1, false);
    s_put_record (journal, "hold-0014", 8, CHORUS_JOURNAL_DELTA, 1, true);
    is_int (chorus_journal_commit (journal), 0, "records are damaged");
    chorus_journal_destroy (&journal);
    chorus_journal_report_t report;
    ok (chorus_journal_check (dir, &report) == -1 && report.undecodable == 5
        && report.failure == CHORUS_JOURNAL_DAMAGED, "check finds them: %s", report.problem);
    ok (strstr (report.problem, "the records of 5 flows do not decode (the first: flow "
                "hold-0007: truncated)") != NULL, "and names the first, and why");
    is_int (report.flows, FLOWS, "and counts every flow");
    is_int (report.running, FLOWS - 5, "by state");
    is_int (report.unpublished, FLOWS - 5, "with the events they have to publish");
    is_int (report.definitions, 1, "and the definition");
    is_int (report.traces, FLOWS, "and the trace entries");
    ok (report.commits == report.commits_made && report.commits > 0,
        "its commit mark agrees (%" PRIu64 " commits)", report.commits);
    chorus_journal_repair_t repair;
    is_int (chorus_journal_repair (dir, &repair), 0, "repair succeeds");
    is_int (repair.dropped, 5, "dropping their records");
    ok (s_count_ids (repair.lost) == 5 && streq (repair.lost [0], "hold-0007")
        && streq (repair.lost [1], "hold-0010") && streq (repair.lost [2], "hold-0012")
        && streq (repair.lost [3], "hold-0013") && streq (repair.lost [4], "hold-0014"),
        "and naming them as lost");
    chorus_journal_repair_clear (&repair);
    ok (chorus_journal_check (dir, &report) == 0 && report.flows == FLOWS - 5,
        "then the journal checks sound with %zu flows %s", report.flows, report.problem);

    //  A record written before the checksum, of six values, still reads;
    //  a sealed one whose checksum differs does not
    {
        chorus_record_t record;
        chorus_record_init (&record);
        chorus_journal_envelope_write (&record, CHORUS_JOURNAL_DELTA, 1, 0);
        chorus_record_nil (&record);
        chorus_record_array (&record, 3);
        chorus_record_nil (&record);
        chorus_record_array (&record, 0);
        chorus_record_nil (&record);
        size_t unsealed = record.size;
        chorus_journal_envelope_seal (&record, "hold-0001", 3);
        chorus_journal_envelope_t envelope;
        const char *why;
        ok (chorus_journal_envelope_read ("hold-0001", 3, record.data, record.size, &envelope,
                                          &why) == 0, "a sealed record reads %s", why? why: "");
        ok (chorus_journal_envelope_read ("hold-0002", 3, record.data, record.size, &envelope,
                                          &why) == -1 && why && strstr (why, "checksum"),
            "not under another flow's id: %s", why? why: "");
        ok (chorus_journal_envelope_read ("hold-0001", 4, record.data, record.size, &envelope,
                                          &why) == -1 && why && strstr (why, "checksum"),
            "nor under another number: %s", why? why: "");
        record.data [record.size - 1] ^= 1;
        ok (chorus_journal_envelope_read ("hold-0001", 3, record.data, record.size, &envelope,
                                          &why) == -1 && why && strstr (why, "checksum"),
            "one whose checksum differs does not: %s", why? why: "");
        record.data [0] = 0x96;         //  a fixarray of six
        ok (chorus_journal_envelope_read ("hold-0001", 3, record.data, unsealed, &envelope,
                                          &why) == 0
            && envelope.kind == CHORUS_JOURNAL_DELTA && envelope.state == 1,
            "one of six values, without the checksum, reads %s", why? why: "");
        chorus_record_clear (&record);
    }

    //  A locked journal is not a damaged one
    journal = chorus_journal_new (dir, false, NULL, error, sizeof (error));
    chorus_journal_failure_t failure;
    chorus_journal_t *second = chorus_journal_new (dir, false, &failure, error, sizeof (error));
    ok (!second && failure == CHORUS_JOURNAL_LOCKED && strstr (error, "is locked by another"),
        "a journal in use is locked: %s", error);
    ok (chorus_journal_repair (dir, &repair) == -1 && repair.failure == CHORUS_JOURNAL_LOCKED,
        "and repair will not touch it: %s", repair.problem);
    chorus_journal_repair_clear (&repair);
    chorus_journal_destroy (&journal);
    free (dir);

    //  Only an absent or an empty directory is a new journal
    dir = zsys_sprintf ("%s/new", root);
    journal = chorus_journal_new (dir, false, &failure, error, sizeof (error));
    ok (!journal && failure == CHORUS_JOURNAL_MISSING, "no journal is not created without "
        "asking: %s", error);
    journal = chorus_journal_new (dir, true, &failure, error, sizeof (error));
    ok (journal != NULL, "an absent directory is a new journal");
    chorus_journal_destroy (&journal);
    free (dir);
    dir = zsys_sprintf ("%s/empty", root);
    zsys_dir_create ("%s", dir);
    journal = chorus_journal_new (dir, true, &failure, error, sizeof (error));
    ok (journal != NULL, "so is an empty one");
    chorus_journal_destroy (&journal);
    free (dir);

    //  The kinds of failure each have their own message
    struct {
        const char *leveldb;
        chorus_journal_failure_t kind;
        const char *says;
    } texts [] = {
        {"IO error: lock /j/LOCK: Resource temporarily unavailable", CHORUS_JOURNAL_LOCKED,
         "journal /j is locked by another process"},
        {"IO error: /j/000005.log: No space left on device", CHORUS_JOURNAL_FULL,
         "journal /j: commit failed: no space left on the device"},
        {"IO error: /j/000005.log: Permission denied", CHORUS_JOURNAL_DENIED,
         "journal /j: commit failed: permission denied"},
        {"Corruption: checksum mismatch", CHORUS_JOURNAL_DAMAGED,
         "journal /j is damaged: commit: Corruption: checksum mismatch"},
        {"IO error: /j/000005.ldb: Invalid argument", CHORUS_JOURNAL_DAMAGED,
         "journal /j is damaged: commit: IO error"},
    };
    for (size_t i = 0; i < sizeof (texts) / sizeof (texts [0]); i++) {
        chorus_journal_failure_t kind = chorus__journal_classify (texts [i].leveldb);
        chorus__journal_describe (error, sizeof (error), "/j", kind, "commit", texts [i].leveldb);
        ok (kind == texts [i].kind && strncmp (error, texts [i].says, strlen (texts [i].says)) == 0,
            "%s", error);
    }
    test_tempdir_remove (&root);
    return done_testing ();
}
