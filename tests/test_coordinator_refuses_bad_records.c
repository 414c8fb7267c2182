/*  test_coordinator_refuses_bad_records.c — a journaled flow of the
    format before deltas (one JSON record per flow, which a coordinator
    migrates) that cannot be rebuilt stops the coordinator instead of being
    skipped: a record that is not JSON, one without a flow state, one whose definition is neither
    in the flows directory nor in the journal, and one whose state does not
    load. Each start fails as damaged, with a message that names the flow,
    what is wrong and the repair command; a sound journal next to them
    starts.
*/
#include "testutil.h"
#include "chorus_coordinator.h"
#include "chorus_flow.h"
#include "chorus_journal_private.h"

#define HOLD "flow: hold\nversion: 1\nsteps:\n" \
             "  - id: wait\n    service: nobody\n    command: wait\n"

//  A store whose journal holds a sound flow and, if record is not NULL, a
//  flow "bad" with that record
static char *
s_store (const char *root, const char *name, const char *record)
{
    char *store = zsys_sprintf ("%s/%s", root, name);
    char *dir = zsys_sprintf ("%s/journal", store);
    zsys_dir_create ("%s", store);
    char error [512];
    chorus_journal_t *journal = chorus_journal_new (dir, true, NULL, error, sizeof (error));
    if (!journal)
        bail_out (error);
    chorus_journal_put_definition (journal, "hold", 1, HOLD);
    //  The sound flow, as the engine saves it
    chorus_flowdef_t *def = chorus_flowdef_parse (HOLD, strlen (HOLD), "hold", error,
                                                  sizeof (error));
    chorus_actions_t actions;
    chorus_actions_init (&actions);
    chorus_flow_t *flow = chorus_flow_start (def, "hold-good", NULL, 1, &actions);
    json_t *state = chorus_flow_save (flow);
    json_t *saved = json_pack ("{s:s, s:o}", "correlation", "c", "state", state);
    char *text = json_dumps (saved, JSON_COMPACT);
    chorus__journal_put_legacy (journal, "hold-good", text);
    free (text);
    json_decref (saved);
    chorus_flow_destroy (&flow);
    chorus_actions_clear (&actions);
    chorus_flowdef_destroy (&def);
    if (record)
        chorus__journal_put_legacy (journal, "bad", record);
    if (chorus_journal_commit (journal))
        bail_out (chorus_journal_error (journal));
    chorus_journal_destroy (&journal);
    free (dir);
    return store;
}

int
main (void)
{
    char *root = test_tempdir ("bad-records");
    char *flows = zsys_sprintf ("%s/flows", root);
    zsys_dir_create ("%s", flows);
    char *file = zsys_sprintf ("%s/hold.yaml", flows);
    FILE *handle = fopen (file, "w");
    fputs (HOLD, handle);
    fclose (handle);

    struct {
        const char *name;           //  the case
        const char *record;         //  the bad flow's record, NULL for none
        const char *says;           //  what the message must say
        bool repairable;            //  `chorus store repair` drops the record
    } cases [] = {
        {"sound", NULL, NULL, false},
        {"not JSON", "{\"state\": tr", "flow bad: its record does not decode", true},
        {"no state", "{\"correlation\": \"c\"}", "flow bad: its record does not decode",
         true},
        {"unknown definition", "{\"state\": {\"flow\": \"gone\", \"version\": 3, "
         "\"state\": \"running\", \"steps\": []}}", "flow bad: its definition 'gone' "
         "version 3 is neither in the flows directory nor in the journal (put it back in the "
         "flows directory)", false},
        {"state that does not load", "{\"state\": {\"flow\": \"hold\", \"version\": 1, "
         "\"state\": \"sideways\"}}", "flow bad: its state does not load", true},
    };
    for (size_t i = 0; i < sizeof (cases) / sizeof (cases [0]); i++) {
        char name [32];
        snprintf (name, sizeof (name), "store-%zu", i);
        char *store = s_store (root, name, cases [i].record);
        char error [512];
        chorus_coordinator_config_t config = {.flows_dir = flows, .store_dir = store};
        chorus_coordinator_t *coordinator = chorus_coordinator_new (&config, error,
                                                                    sizeof (error));
        if (!coordinator)
            bail_out (error);
        int rc = chorus_coordinator_start (coordinator);
        const char *message = chorus_coordinator_error (coordinator);
        if (!cases [i].says)
            ok (rc == 0 && !chorus_coordinator_damaged (coordinator), "%s: the coordinator "
                "starts %s", cases [i].name, message);
        else {
            ok (rc == -1 && chorus_coordinator_damaged (coordinator), "%s: refused as damaged",
                cases [i].name);
            char *repair = zsys_sprintf ("chorus store repair %s", store);
            ok (strstr (message, cases [i].says) && strstr (message, repair)
                && strstr (message, "is damaged"), "%s: %s", cases [i].name, message);
            free (repair);
            //  What repair makes of it: a record that cannot be used goes,
            //  one that needs its definition back stays
            chorus_coordinator_destroy (&coordinator);
            char *journal = zsys_sprintf ("%s/journal", store);
            chorus_journal_repair_t report;
            is_int (chorus_journal_repair (journal, &report), 0, "%s: repair succeeds %s",
                    cases [i].name, report.problem);
            ok ((report.dropped == 1) == cases [i].repairable, "%s: repair %s the record",
                cases [i].name, cases [i].repairable? "drops": "keeps");
            chorus_journal_repair_clear (&report);
            free (journal);
            coordinator = chorus_coordinator_new (&config, error, sizeof (error));
            rc = chorus_coordinator_start (coordinator);
            ok ((rc == 0) == cases [i].repairable, "%s: after the repair the coordinator %s %s",
                cases [i].name, cases [i].repairable? "starts": "still refuses",
                chorus_coordinator_error (coordinator));
        }
        chorus_coordinator_destroy (&coordinator);
        free (store);
    }
    free (file);
    free (flows);
    test_tempdir_remove (&root);
    return done_testing ();
}
