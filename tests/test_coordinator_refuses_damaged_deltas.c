/*  test_coordinator_refuses_damaged_deltas.c — a coordinator journals a
    flow as a snapshot and deltas, and rebuilds it from them. Flows run
    through an in-process service until they hold a snapshot and a delta
    (or, once completed and their event published, two deltas); then copies
    of the journal are damaged one way each: a delta torn in two, a delta
    that decodes but does not load, a delta missing between two others, a
    snapshot missing before its deltas, an envelope that disagrees with its
    record, a record of a later format, a delta holding a malformed try of
    a command (the tries a flow holds until they go to its trace). Each
    start is refused as damaged, with a message that names the flow, the
    record and the problem, and the repair command; repair drops the flow
    and the coordinator starts. The undamaged journal restarts with every
    flow as it was; a log cut anywhere in its commits (a crash in the
    middle of a batch, before the commit mark moved) restarts with every
    flow whole, as of a commit; and a journal of the format before deltas
    is migrated, its trace's entries of one try each (as coordinators
    wrote them before a flow's records held its tries) read beside the
    tries its flows' records now hold.
*/
#include "testutil.h"
#include "chorus_coordinator.h"
#include "chorus_flow.h"
#include "chorus_journal_private.h"
#include "chorus_be64.h"

#include <dirent.h>
#include <jansson.h>

#define PAIRS 3
#define PAIR "flow: pair\nversion: 1\nsteps:\n" \
             "  - id: a\n    service: echo\n    command: a\n" \
             "  - id: b\n    service: nobody\n    command: b\n    depends_on: [a]\n"
#define DONE "flow: done\nversion: 1\nsteps:\n" \
             "  - id: a\n    service: echo\n    command: a\n" \
             "emit: { completed: done.event }\n"

static void
s_on_command (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    void *data;
    size_t size;
    chorus_payload_from_json ("{\"ok\": true}", 12, 0, &data, &size, NULL, 0);
    chorus_reply_set_payload (reply, data, size);
    chorus_payload_free (data);
}

typedef struct {
    chorus_coordinator_t *coordinator;  //  the coordinator
    chorus_node_t *nodes [2];           //  echo, a client
} mesh_t;

typedef bool (s_until_fn) (void *arg);

static bool
s_run (mesh_t *mesh, s_until_fn *until, void *arg, int timeout_ms)
{
    int64_t end = zclock_mono () + timeout_ms;
    while (!(until && until (arg)) && zclock_mono () < end) {
        chorus_coordinator_run (mesh->coordinator, 5);
        for (int i = 0; i < 2; i++)
            chorus_node_dispatch (mesh->nodes [i]);
    }
    return until && until (arg);
}

typedef struct {
    bool done;                  //  replied
    json_t *value;              //  reply payload
} call_t;

static void
s_on_reply (chorus_node_t *node, chorus_reply_t *reply, void *arg)
{
    call_t *call = (call_t *) arg;
    char *text = NULL;
    if (chorus_reply_payload (reply))
        chorus_payload_to_json (chorus_reply_payload (reply), chorus_reply_size (reply), 0,
                                &text, NULL, 0);
    call->value = text? json_loads (text, JSON_DECODE_ANY, NULL): NULL;
    chorus_payload_free (text);
    call->done = true;
}

static bool
s_replied (void *arg)
{
    return ((call_t *) arg)->done;
}

static json_t *
s_call (mesh_t *mesh, const char *command, const char *json, const char *idempotency)
{
    call_t call = {false, NULL};
    void *data;
    size_t size;
    chorus_payload_from_json (json, strlen (json), 0, &data, &size, NULL, 0);
    chorus_node_send_traced (mesh->nodes [1], "coordinator", command, data, size, 5000,
                             idempotency, NULL, s_on_reply, &call);
    chorus_payload_free (data);
    s_run (mesh, s_replied, &call, 6000);
    return call.value? call.value: json_null ();
}

static json_t *
s_status (mesh_t *mesh, const char *id)
{
    char request [256];
    snprintf (request, sizeof (request), "{\"id\": \"%s\"}", id);
    return s_call (mesh, "flow.status", request, NULL);
}

//  The status of a flow as JSON text, without what changes across restarts
static char *
s_status_text (mesh_t *mesh, const char *id)
{
    json_t *status = s_status (mesh, id);
    char *text = json_dumps (status, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref (status);
    return text;
}

typedef struct {
    mesh_t *mesh;               //  where to ask
    const char *id;             //  which flow
    const char *want;           //  text its status must hold
} wait_t;

static bool
s_status_holds (void *arg)
{
    wait_t *wait = (wait_t *) arg;
    char *text = s_status_text (wait->mesh, wait->id);
    bool holds = text && strstr (text, wait->want);
    free (text);
    return holds;
}

//  Waits for a correlation's trace to list `want` commands
typedef struct {
    mesh_t *mesh;               //  where to ask
    size_t want;                //  commands it must list
    json_t *trace;              //  the last answer
} traced_t;

static bool
s_traced (void *arg)
{
    traced_t *traced = (traced_t *) arg;
    json_decref (traced->trace);
    traced->trace = s_call (traced->mesh, "flow.trace", "{\"correlation\": \"c\"}", NULL);
    json_t *commands = json_object_get (traced->trace, "commands");
    size_t done = 0, index;
    json_t *command;
    json_array_foreach (commands, index, command)
        done += streq (json_string_value (json_object_get (command, "outcome")), "done");
    return json_array_size (commands) == traced->want && done == traced->want - 1;
}

static bool
s_met (void *arg)
{
    mesh_t *mesh = (mesh_t *) arg;
    return test_peers (chorus_coordinator_node (mesh->coordinator), NULL) >= 2;
}

static chorus_coordinator_t *
s_coordinator (const char *flows, const char *store)
{
    char error [512];
    chorus_coordinator_config_t config = {.flows_dir = flows, .store_dir = store,
                                          .journal_sync = false,
                                          .heartbeat_ms = TEST_HEARTBEAT_MS,
                                          .evasive_ms = TEST_EVASIVE_MS,
                                          .expired_ms = TEST_EXPIRED_MS};
    chorus_coordinator_t *coordinator = chorus_coordinator_new (&config, error, sizeof (error));
    if (!coordinator)
        bail_out (error);
    return coordinator;
}

//  A mesh of a coordinator on store, the echo service and a client
static void
s_mesh_up (mesh_t *mesh, const char *flows, const char *store)
{
    mesh->coordinator = s_coordinator (flows, store);
    if (chorus_coordinator_start (mesh->coordinator))
        bail_out (chorus_coordinator_error (mesh->coordinator));
    const char *seed = chorus_node_endpoint (chorus_coordinator_node (mesh->coordinator));
    mesh->nodes [0] = test_node ("echo", NULL, seed);
    chorus_node_handle (mesh->nodes [0], "a", s_on_command, NULL);
    mesh->nodes [1] = test_node ("client", NULL, seed);
    for (int i = 0; i < 2; i++)
        chorus_node_start (mesh->nodes [i]);
    if (!s_run (mesh, s_met, mesh, 10000))
        bail_out ("the coordinator did not meet its service and client");
}

static void
s_mesh_down (mesh_t *mesh)
{
    for (int i = 0; i < 2; i++)
        chorus_node_destroy (&mesh->nodes [i]);
    chorus_coordinator_destroy (&mesh->coordinator);
}

//  Copies the regular files of a directory into a new one
static void
s_copy_dir (const char *from, const char *to)
{
    zsys_dir_create ("%s", to);
    DIR *handle = opendir (from);
    struct dirent *entry;
    while (handle && (entry = readdir (handle))) {
        char *source = zsys_sprintf ("%s/%s", from, entry->d_name);
        char *target = zsys_sprintf ("%s/%s", to, entry->d_name);
        struct stat info;
        if (stat (source, &info) == 0 && S_ISREG (info.st_mode)
        &&  !streq (entry->d_name, "LOCK")) {
            FILE *in = fopen (source, "rb");
            FILE *out = fopen (target, "wb");
            char buffer [65536];
            size_t size;
            while (in && out && (size = fread (buffer, 1, sizeof (buffer), in)) > 0)
                if (fwrite (buffer, 1, size, out) != size)
                    bail_out ("cannot copy a journal");
            if (!in || !out)
                bail_out ("cannot copy a journal");
            fclose (in);
            fclose (out);
        }
        free (source);
        free (target);
    }
    if (handle)
        closedir (handle);
}

//  A fresh store holding a copy of the journal; the store's path
static char *
s_store_copy (const char *root, const char *name, const char *journal)
{
    char *store = zsys_sprintf ("%s/%s", root, name);
    zsys_dir_create ("%s", store);
    char *dir = zsys_sprintf ("%s/journal", store);
    s_copy_dir (journal, dir);
    free (dir);
    return store;
}

//  A flow's record, from the journal (caller frees), NULL if none
typedef struct {
    const char *id;             //  the flow
    uint64_t number;            //  the record
    void *data;                 //  its bytes
    size_t size;                //  how many
    int records;                //  records of the flow
} s_find_t;

static int
s_find (const char *id, uint64_t number, const void *data, size_t size, void *arg)
{
    s_find_t *find = (s_find_t *) arg;
    if (streq (id, find->id)) {
        find->records++;
        if (number == find->number) {
            find->data = malloc (size);
            memcpy (find->data, data, size);
            find->size = size;
        }
    }
    return 0;
}

static chorus_journal_t *
s_open (const char *store)
{
    char *dir = zsys_sprintf ("%s/journal", store);
    char error [512];
    chorus_journal_t *journal = chorus_journal_new (dir, false, NULL, error, sizeof (error));
    free (dir);
    if (!journal)
        bail_out (error);
    return journal;
}

static s_find_t
s_record (const char *store, const char *id, uint64_t number)
{
    chorus_journal_t *journal = s_open (store);
    s_find_t find = {id, number, NULL, 0, 0};
    chorus_journal_each_record (journal, s_find, &find);
    chorus_journal_destroy (&journal);
    return find;
}

//  The damage done to a copy
typedef enum { TORN, MISSHAPEN, UNLOADABLE, GAP, HEADLESS, DISAGREES, LATER, BAD_TRY } s_damage_t;

static void
s_damage (const char *store, s_damage_t damage, const char *pair, const char *done)
{
    s_find_t find = s_record (store, pair, 1);
    chorus_journal_t *journal = s_open (store);
    chorus_record_t record;
    chorus_record_init (&record);
    if (damage == TORN)
        chorus_journal_put_record (journal, pair, 1, find.data, find.size / 2, true);
    else
    if (damage == UNLOADABLE || damage == MISSHAPEN) {
        //  A sound envelope around a delta of run 0, or around no delta
        chorus_journal_envelope_write (&record, CHORUS_JOURNAL_DELTA, 1, 0);
        chorus_record_array (&record, damage == UNLOADABLE? 10: 2);
        chorus_record_uint (&record, 1);
        chorus_record_bool (&record, false);
        if (damage == UNLOADABLE) {
            for (int field = 0; field < 5; field++)
                chorus_record_uint (&record, 0);
            chorus_record_nil (&record);
            chorus_record_array (&record, 0);
            chorus_record_array (&record, 0);
        }
        chorus_record_array (&record, 3);
        chorus_record_uint (&record, 0);
        chorus_record_array (&record, 0);
        chorus_record_array (&record, 0);
        chorus_journal_envelope_seal (&record, pair, 1);
        chorus_journal_put_record (journal, pair, 1, record.data, record.size, true);
    }
    else
    if (damage == GAP)
        chorus_journal_delete_records (journal, done, 1, 2);
    else
    if (damage == HEADLESS)
        chorus_journal_delete_records (journal, pair, 0, 1);
    else {
        //  The same parts in another envelope
        chorus_journal_envelope_t envelope;
        const char *why;
        if (chorus_journal_envelope_read (pair, 1, find.data, find.size, &envelope, &why))
            bail_out (why);
        chorus_journal_envelope_write (&record, CHORUS_JOURNAL_DELTA, damage == DISAGREES? 3: 1,
                                       0);
        if (damage == LATER)
            record.data [1] = 3;        //  the format, a positive fixint
        chorus_record_raw (&record, envelope.engine.at,
                           (size_t) (envelope.engine.end - envelope.engine.at));
        if (damage == BAD_TRY) {
            //  The coordinator's part of a delta, holding a try of 2 values
            chorus_record_array (&record, 4);
            chorus_record_uint (&record, 0);
            chorus_record_array (&record, 0);
            chorus_record_array (&record, 0);
            chorus_record_array (&record, 1);
            chorus_record_array (&record, 2);
            chorus_record_uint (&record, 1);
            chorus_record_uint (&record, 2);
        }
        else
            chorus_record_raw (&record, envelope.coordinator.at,
                               (size_t) (envelope.coordinator.end - envelope.coordinator.at));
        chorus_journal_envelope_seal (&record, pair, 1);
        chorus_journal_put_record (journal, pair, 1, record.data, record.size, true);
    }
    if (chorus_journal_commit (journal))
        bail_out (chorus_journal_error (journal));
    chorus_journal_destroy (&journal);
    chorus_record_clear (&record);
    free (find.data);
}

//  The newest LevelDB log of a journal (caller frees)
static char *
s_log_file (const char *dir)
{
    DIR *handle = opendir (dir);
    char *newest = NULL;
    struct dirent *entry;
    while (handle && (entry = readdir (handle))) {
        size_t length = strlen (entry->d_name);
        if (length > 4 && streq (entry->d_name + length - 4, ".log")
        &&  (!newest || strcmp (entry->d_name, strrchr (newest, '/') + 1) > 0)) {
            free (newest);
            newest = zsys_sprintf ("%s/%s", dir, entry->d_name);
        }
    }
    if (handle)
        closedir (handle);
    return newest;
}

//  Counts the flows of a journal whose records are a snapshot and a delta
typedef struct {
    char last [256];            //  the flow of the last record
    int flows;                  //  flows
    int records;                //  records
} s_count_t;

static int
s_count (const char *id, uint64_t number, const void *data, size_t size, void *arg)
{
    s_count_t *count = (s_count_t *) arg;
    if (!streq (id, count->last))
        count->flows++;
    snprintf (count->last, sizeof (count->last), "%s", id);
    count->records += number != CHORUS_JOURNAL_LEGACY;
    return 0;
}

int
main (void)
{
    char *root = test_tempdir ("damaged-deltas");
    char *flows = zsys_sprintf ("%s/flows", root);
    zsys_dir_create ("%s", flows);
    const char *files [2][2] = {{"pair.yaml", PAIR}, {"done.yaml", DONE}};
    for (int i = 0; i < 2; i++) {
        char *path = zsys_sprintf ("%s/%s", flows, files [i][0]);
        FILE *handle = fopen (path, "w");
        fputs (files [i][1], handle);
        fclose (handle);
        free (path);
    }

    //  The journal: flows with a snapshot and a delta, and one completed
    //  whose event was published
    char *store = zsys_sprintf ("%s/original", root);
    mesh_t mesh;
    s_mesh_up (&mesh, flows, store);
    char *pairs [PAIRS];
    for (int i = 0; i < PAIRS; i++) {
        char key [16];
        snprintf (key, sizeof (key), "p%d", i);
        json_t *started = s_call (&mesh, "flow.start", "{\"flow\": \"pair\"}", key);
        pairs [i] = strdup (json_string_value (json_object_get (started, "id"))?: "");
        json_decref (started);
        wait_t wait = {&mesh, pairs [i], "{\"attempts\":1,\"error\":null,\"finished\":null,"
                       "\"id\":\"b\""};
        if (!s_run (&mesh, s_status_holds, &wait, 10000))
            bail_out ("a pair flow did not reach its second step");
    }
    json_t *started = s_call (&mesh, "flow.start", "{\"flow\": \"done\"}", "d");
    char *done = strdup (json_string_value (json_object_get (started, "id"))?: "");
    json_decref (started);
    wait_t wait = {&mesh, done, "\"state\":\"completed\""};
    ok (s_run (&mesh, s_status_holds, &wait, 10000), "flows ran until each holds deltas");
    char *before [PAIRS];
    for (int i = 0; i < PAIRS; i++)
        before [i] = s_status_text (&mesh, pairs [i]);
    s_mesh_down (&mesh);
    char *journal = zsys_sprintf ("%s/journal", store);
    //  As the coordinator left it: opening it turns its log into a table
    char *crashed = zsys_sprintf ("%s/crashed", root);
    s_copy_dir (journal, crashed);

    s_find_t find = s_record (store, pairs [0], 1);
    ok (find.records == 2 && find.data, "a pair flow is journaled as a snapshot and a delta");
    free (find.data);
    find = s_record (store, done, 2);
    ok (find.records == 3 && find.data, "the completed flow as a snapshot and two deltas (the "
        "last: its event was published)");
    free (find.data);

    //  Each damage is refused, named, and repaired by dropping the flow
    struct {
        s_damage_t damage;      //  what is done
        const char *name;       //  the case
        const char *says;       //  what the message must say after the flow's id
        bool repairable;        //  `chorus store check` finds it, repair drops it
    } cases [] = {
        {TORN, "a delta torn in two", ": its record 1 does not decode: truncated", true},
        {MISSHAPEN, "a delta of the wrong shape", ": its record 1 does not decode: the "
         "engine's part is not a delta", true},
        {UNLOADABLE, "a delta that does not load", ": its record 1 (a delta) does not load: "
         "the flow's run is not a positive number", false},
        {GAP, "a delta missing", ": its record 2 (a delta) follows record 0: the records in "
         "between are missing", true},
        {HEADLESS, "a snapshot missing", ": its first record, 1, is not a snapshot: the "
         "records before it are missing", true},
        {DISAGREES, "an envelope that disagrees", ": its record 1 does not decode: the "
         "envelope and the engine's part name different flow states", true},
        {LATER, "a record of a later format", ": its record 1 does not decode: it is of a "
         "format this coordinator does not know", true},
        {BAD_TRY, "a delta holding a malformed try", ": its record 1 (a delta) does not load: "
         "a try of a command that it holds is malformed", false},
    };
    for (size_t c = 0; c < sizeof (cases) / sizeof (cases [0]); c++) {
        char name [32];
        snprintf (name, sizeof (name), "case-%zu", c);
        char *copy = s_store_copy (root, name, journal);
        const char *flow = cases [c].damage == GAP? done: pairs [0];
        s_damage (copy, cases [c].damage, pairs [0], done);
        chorus_coordinator_t *coordinator = s_coordinator (flows, copy);
        int rc = chorus_coordinator_start (coordinator);
        const char *message = chorus_coordinator_error (coordinator);
        ok (rc == -1 && chorus_coordinator_damaged (coordinator), "%s: refused as damaged",
            cases [c].name);
        char *says = zsys_sprintf ("is damaged: flow %s%s", flow, cases [c].says);
        char *repair = zsys_sprintf ("chorus store repair %s", copy);
        ok (strstr (message, says) && strstr (message, repair), "%s: %s", cases [c].name,
            message);
        free (says);
        free (repair);
        chorus_coordinator_destroy (&coordinator);
        char *dir = zsys_sprintf ("%s/journal", copy);
        chorus_journal_repair_t report;
        is_int (chorus_journal_repair (dir, &report), 0, "%s: repair succeeds %s",
                cases [c].name, report.problem);
        bool named = report.lost && report.lost [0] && streq (report.lost [0], flow)
                     && !report.lost [1];
        //  Damage inside a record of sound shape is found by the coordinator
        //  alone, which names the flow; repair keeps what it cannot judge
        if (cases [c].repairable)
            ok (report.dropped == 1 && named, "%s: and drops that flow", cases [c].name);
        else
            ok (report.dropped == 0, "%s: and keeps the flow, whose records are of sound "
                "shape", cases [c].name);
        chorus_journal_repair_clear (&report);
        coordinator = s_coordinator (flows, copy);
        rc = chorus_coordinator_start (coordinator);
        ok ((rc == 0) == cases [c].repairable, "%s: then the coordinator %s %s",
            cases [c].name, cases [c].repairable? "starts": "still refuses",
            chorus_coordinator_error (coordinator));
        chorus_coordinator_destroy (&coordinator);
        free (dir);
        free (copy);
    }

    //  The undamaged journal restarts with every flow as it was
    char *copy = s_store_copy (root, "restart", journal);
    s_mesh_up (&mesh, flows, copy);
    int same = 0;
    for (int i = 0; i < PAIRS; i++) {
        char *after = s_status_text (&mesh, pairs [i]);
        same += after && streq (after, before [i]);
        if (!after || !streq (after, before [i]))
            diag ("before: %s\nafter:  %s", before [i], after);
        free (after);
    }
    is_int (same, PAIRS, "a restart rebuilds every flow as it was");
    s_mesh_down (&mesh);
    free (copy);

    //  A crash in the middle of a batch: the log cut at points through its
    //  commits, the commit mark as it was before the batch (it follows a
    //  commit). Every cut restarts, with every flow it holds whole.
    char *log = s_log_file (crashed);
    struct stat info;
    if (!log || stat (log, &info))
        bail_out ("the journal has no log");
    int cuts = 0, started_ok = 0, whole = 0;
    for (off_t at = info.st_size / 8; at < info.st_size; at += info.st_size / 12 + 1, cuts++) {
        char name [32];
        snprintf (name, sizeof (name), "cut-%d", cuts);
        copy = s_store_copy (root, name, crashed);
        char *cut = zsys_sprintf ("%s/journal/%s", copy, strrchr (log, '/') + 1);
        if (truncate (cut, at))
            bail_out ("cannot cut the log");
        free (cut);
        char *dir = zsys_sprintf ("%s/journal", copy);
        char error [512];
        chorus_journal_t *opened = chorus__journal_open (dir, false, false, NULL, NULL, error,
                                                         sizeof (error));
        if (!opened)
            bail_out (error);
        chorus__journal_mark_write (opened->mark, opened->commits);
        s_count_t count;
        memset (&count, 0, sizeof (count));
        chorus_journal_each_record (opened, s_count, &count);
        chorus_journal_destroy (&opened);
        chorus_coordinator_t *coordinator = s_coordinator (flows, copy);
        if (chorus_coordinator_start (coordinator) == 0)
            started_ok++;
        else
            diag ("cut at %jd: %s", (intmax_t) at, chorus_coordinator_error (coordinator));
        chorus_coordinator_destroy (&coordinator);
        chorus_journal_report_t report;
        whole += chorus_journal_check (dir, &report) == 0 && report.undecodable == 0;
        free (dir);
        free (copy);
    }
    ok (cuts >= 8 && started_ok == cuts, "a log cut at any of %d points restarts (%jd bytes)",
        cuts, (intmax_t) info.st_size);
    is_int (whole, cuts, "with every flow in it whole");
    free (log);

    //  A journal of the format before deltas is rewritten as snapshots
    char *old = zsys_sprintf ("%s/old", root);
    char *old_dir = zsys_sprintf ("%s/journal", old);
    zsys_dir_create ("%s", old);
    char error [512];
    chorus_journal_t *legacy = chorus_journal_new (old_dir, true, NULL, error, sizeof (error));
    chorus_journal_put_definition (legacy, "pair", 1, PAIR);
    chorus_flowdef_t *def = chorus_flowdef_parse (PAIR, strlen (PAIR), "pair", error,
                                                  sizeof (error));
    chorus_actions_t actions;
    chorus_actions_init (&actions);
    for (int i = 0; i < 5; i++) {
        char id [16];
        snprintf (id, sizeof (id), "old-%d", i);
        chorus_flow_t *flow = chorus_flow_start (def, id, NULL, 1, &actions);
        json_t *saved = json_pack ("{s:s, s:o}", "correlation", "c", "state",
                                   chorus_flow_save (flow));
        char *text = json_dumps (saved, JSON_COMPACT);
        chorus__journal_put_legacy (legacy, id, text);
        free (text);
        json_decref (saved);
        chorus_flow_destroy (&flow);
    }
    chorus_actions_clear (&actions);
    chorus_flowdef_destroy (&def);
    if (chorus_journal_commit (legacy))
        bail_out (chorus_journal_error (legacy));
    chorus_journal_destroy (&legacy);
    for (int run = 0; run < 2; run++) {
        chorus_coordinator_t *coordinator = s_coordinator (flows, old);
        ok (chorus_coordinator_start (coordinator) == 0, "%s %s",
            run? "and after its migration, it starts again": "a journal of format 1 starts",
            chorus_coordinator_error (coordinator));
        chorus_coordinator_destroy (&coordinator);
        chorus_journal_t *migrated = s_open (old);
        s_count_t count;
        memset (&count, 0, sizeof (count));
        chorus_journal_each_record (migrated, s_count, &count);
        chorus_journal_destroy (&migrated);
        ok (count.flows == 5 && count.records == 5, "its 5 flows are %s one snapshot each "
            "(%d flows, %d records of format 2)", run? "still": "now", count.flows,
            count.records);
    }

    //  A try traced as older coordinators did, one entry each: 'C', when
    //  it was sent, when it ended, its number, then the command's id, flow,
    //  key, service, command, outcome, causation, error code and message
    legacy = chorus_journal_new (old_dir, false, NULL, error, sizeof (error));
    if (!legacy)
        bail_out (error);
    const char *fields [] = {"C0FFEE", "old-0", "old-0/a", "echo", "a", "error", "cause-1",
                             "exit-1", "echo down"};
    uint8_t entry [256] = {'C'};
    uint64_t sent = (uint64_t) zclock_time () - 3600 * 1000;    //  traces are kept 24 h
    chorus__put_be64 (entry + 1, sent);
    chorus__put_be64 (entry + 9, sent + 40);
    chorus__put_be64 (entry + 17, 1);
    size_t size = 25;
    for (size_t i = 0; i < sizeof (fields) / sizeof (fields [0]); i++) {
        memcpy (entry + size, fields [i], strlen (fields [i]) + 1);
        size += strlen (fields [i]) + 1;
    }
    chorus_journal_put_trace (legacy, "c", sent, "C0FFEE", (const char *) entry, size);
    if (chorus_journal_commit (legacy))
        bail_out (chorus_journal_error (legacy));
    chorus_journal_destroy (&legacy);
    //  Its flows run their first step, whose tries their records hold
    s_mesh_up (&mesh, flows, old);
    traced_t traced = {&mesh, 6, NULL};
    ok (s_run (&mesh, s_traced, &traced, 10000), "the trace of a migrated journal lists the "
        "try an older coordinator traced and the 5 tries its flows hold");
    json_t *first = json_array_get (json_object_get (traced.trace, "commands"), 0);
    char *text = json_dumps (first, JSON_COMPACT | JSON_SORT_KEYS);
    ok (json_is_object (first)
        && streq (json_string_value (json_object_get (first, "id")), "C0FFEE")
        && streq (json_string_value (json_object_get (first, "flow")), "old-0")
        && streq (json_string_value (json_object_get (first, "task")), "a")
        && streq (json_string_value (json_object_get (first, "service")), "echo")
        && streq (json_string_value (json_object_get (first, "outcome")), "error")
        && streq (json_string_value (json_object_get (first, "causation")), "cause-1")
        && json_integer_value (json_object_get (first, "attempt")) == 1
        && json_integer_value (json_object_get (first, "sent")) == (json_int_t) sent
        && json_integer_value (json_object_get (first, "duration_ms")) == 40
        && streq (json_string_value (json_object_get (json_object_get (first, "error"),
                                                      "message")), "echo down"),
        "the older one first, as it was written: %s", text);
    free (text);
    json_decref (traced.trace);
    s_mesh_down (&mesh);
    free (old_dir);
    free (old);

    for (int i = 0; i < PAIRS; i++) {
        free (pairs [i]);
        free (before [i]);
    }
    free (done);
    free (journal);
    free (crashed);
    free (store);
    free (flows);
    test_tempdir_remove (&root);
    return done_testing ();
}
