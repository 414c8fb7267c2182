/*  test_instance_killed_midstream.c — one of three instances of a service
    group is killed with SIGKILL while events stream to the group: every
    event is still handled at least once, the only duplicates are events
    that were in flight on the killed instance, and per-key order holds.
*/
#include "testutil.h"

#define INSTANCES 3
#define KILLED 1            //  which instance is killed
#define EVENTS 3000         //  events published
#define KEYS 100            //  over this many keys
#define KILL_AT 1000        //  events handled, over all logs, before the kill
#define AHEAD 500           //  events published beyond those handled, at most
#define BATCH 100           //  events published at once

//  One line of an instance's log: "E publisher seq key attempt"
typedef struct {
    uint64_t seq;               //  the event's seq, 0 for a line we cannot read
    int key;                    //  its key number
    uint64_t attempt;           //  its delivery attempt
} s_entry_t;

//  An instance's log, read as it grows
typedef struct {
    char *path;                 //  the file
    long offset;                //  bytes read so far
    s_entry_t *entries;         //  lines read so far
    size_t count;               //  how many
    size_t size;                //  room for how many
} s_log_t;

typedef struct {
    chorus_node_t *publisher;   //  the in-process publisher
    const char *instance;       //  its instance id
    s_log_t logs [INSTANCES];   //  one per instance
    int copies [EVENTS + 1];    //  handled copies of each seq, over all logs
    int distinct;               //  seqs handled at least once
    int foreign;                //  lines not from our publisher, or unreadable
    size_t mark;                //  lines seen when we started waiting
} s_state_t;

//  The children and the directory, removed however the test ends
static test_child_t *s_children [INSTANCES];
static char *s_dir;

static void
s_cleanup (void)
{
    for (int i = 0; i < INSTANCES; i++)
        test_child_stop (&s_children [i], SIGKILL);
    test_tempdir_remove (&s_dir);
}

static void
s_log_add (s_state_t *state, s_log_t *log, s_entry_t entry)
{
    if (log->count == log->size) {
        log->size = log->size? log->size * 2: 1024;
        log->entries = (s_entry_t *) realloc (log->entries, log->size * sizeof (s_entry_t));
    }
    log->entries [log->count++] = entry;
    if (entry.seq == 0)
        state->foreign++;
    else
    if (state->copies [entry.seq]++ == 0)
        state->distinct++;
}

//  Reads the lines added to the log since the last call
static void
s_log_read (s_state_t *state, s_log_t *log)
{
    FILE *file = fopen (log->path, "r");
    if (!file)
        return;     //  not created yet
    fseek (file, log->offset, SEEK_SET);
    char line [256];
    while (fgets (line, sizeof (line), file)) {
        size_t length = strlen (line);
        if (line [length - 1] != '\n')
            break;  //  a line still being written: read it next time
        log->offset += (long) length;
        char instance [64];
        s_entry_t entry = {0, 0, 0};
        if (sscanf (line, "E %63s %" SCNu64 " key-%d %" SCNu64, instance, &entry.seq,
                    &entry.key, &entry.attempt) != 4
        ||  !streq (instance, state->instance) || entry.seq > EVENTS || entry.key < 0
        ||  entry.key >= KEYS)
            entry.seq = 0;
        s_log_add (state, log, entry);
    }
    fclose (file);
}

static size_t
s_lines (s_state_t *state)
{
    size_t lines = 0;
    for (int i = 0; i < INSTANCES; i++) {
        s_log_read (state, &state->logs [i]);
        lines += state->logs [i].count;
    }
    return lines;
}

//  Done when the instances have handled more since we started waiting
static bool
s_progress (void *arg)
{
    s_state_t *state = (s_state_t *) arg;
    return s_lines (state) > state->mark;
}

//  Done when every event is handled and the publisher has every ack
static bool
s_complete (void *arg)
{
    s_state_t *state = (s_state_t *) arg;
    s_lines (state);
    return state->distinct == EVENTS && chorus_node_unacked (state->publisher) == 0;
}

static bool
s_met_group (void *arg)
{
    return test_peers ((chorus_node_t *) arg, "billing") == INSTANCES;
}

//  Seqs of each key only increase along the log
static bool
s_key_order (s_log_t *log)
{
    uint64_t last [KEYS] = {0};
    for (size_t i = 0; i < log->count; i++) {
        s_entry_t *entry = &log->entries [i];
        if (entry->seq == 0)
            continue;
        if (entry->seq <= last [entry->key]) {
            diag ("%s: key-%d seq %" PRIu64 " after %" PRIu64, log->path, entry->key,
                  entry->seq, last [entry->key]);
            return false;
        }
        last [entry->key] = entry->seq;
    }
    return true;
}

int
main (void)
{
    tap_plan (14);
    atexit (s_cleanup);
    s_dir = test_tempdir_home ("killed-midstream");
    static s_state_t state;

    char *store = zsys_sprintf ("%s/orders", s_dir);
    chorus_node_t *publisher = test_node ("orders", store, NULL);
    zstr_free (&store);
    ok (chorus_node_start (publisher) == 0, "publisher started");
    state.publisher = publisher;
    state.instance = chorus_node_instance (publisher);
    if (!state.instance)
        bail_out ("the publisher did not start");

    int ready = 0;
    for (int i = 0; i < INSTANCES; i++) {
        char *dir = zsys_sprintf ("%s/billing-%d", s_dir, i);
        state.logs [i].path = zsys_sprintf ("%s/billing-%d.log", s_dir, i);
        char *argv [] = {(char *) test_helper_path (), "--service", "billing", "--subscribe",
                         "order.", "--store", dir, "--log", state.logs [i].path, "--seed",
                         (char *) chorus_node_endpoint (publisher), "--heartbeat",
                         "200,600,1000", NULL};
        s_children [i] = test_spawn (argv);
        if (s_children [i]
        &&  test_child_expect (s_children [i], "READY ", NULL, 0, 5000) == 0)
            ready++;
        zstr_free (&dir);
    }
    is_int (ready, INSTANCES, "three billing instances are ready");
    ok (test_run_until (&publisher, 1, s_met_group, publisher, 5000),
        "the publisher met the three instances");

    //  Publish in batches while the group handles them, so the kill lands
    //  in the middle of the stream and later events reach only survivors
    int published = 0;
    int published_at_kill = 0;
    size_t handled_by_killed = 0;
    int status = -1;
    bool killed = false, stalled = false;
    while (!stalled && (published < EVENTS || !killed)) {
        size_t lines = s_lines (&state);
        if (!killed && lines >= KILL_AT) {
            status = test_child_stop (&s_children [KILLED], SIGKILL);
            killed = true;
            published_at_kill = published;
            s_log_read (&state, &state.logs [KILLED]);
            handled_by_killed = state.logs [KILLED].count;
            diag ("killed instance %d after %zu events (%zu by it), %d published", KILLED,
                  lines, handled_by_killed, published);
        }
        else
        if (published < EVENTS && lines + AHEAD >= (size_t) published) {
            for (int i = 0; i < BATCH; i++, published++) {
                char key [16], payload [32];
                snprintf (key, sizeof (key), "key-%d", published % KEYS);
                snprintf (payload, sizeof (payload), "order %d", published + 1);
                if (chorus_node_publish (publisher, "order.placed", key, payload,
                                         strlen (payload)))
                    break;
            }
        }
        else {
            state.mark = lines;
            stalled = !test_run_until (&publisher, 1, s_progress, &state, 10000);
        }
    }
    ok (killed && WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL
        && published_at_kill < EVENTS,
        "an instance was killed by SIGKILL mid-stream (%d of %d published)", published_at_kill,
        EVENTS);
    ok (handled_by_killed > 0, "the killed instance handled events before the kill (%zu)",
        handled_by_killed);
    ok (!stalled && published == EVENTS && test_run_until (&publisher, 1, s_complete, &state,
                                                           20000),
        "the survivors handled the rest and the publisher has every acknowledgement");

    int missing = 0;
    for (int seq = 1; seq <= EVENTS; seq++)
        if (state.copies [seq] == 0)
            missing++;
    is_int (missing, 0, "every event was handled at least once");
    is_int (state.foreign, 0, "every logged event is one of the publisher's");

    //  A duplicate is an event the killed instance handled but did not get
    //  to acknowledge: one copy there, one redelivered to a survivor
    int killed_copies [EVENTS + 1] = {0};
    for (size_t i = 0; i < state.logs [KILLED].count; i++)
        killed_copies [state.logs [KILLED].entries [i].seq]++;
    int duplicates = 0, unexplained = 0, first_attempts = 0, redelivered = 0;
    for (int seq = 1; seq <= EVENTS; seq++)
        if (state.copies [seq] > 1) {
            duplicates++;
            if (state.copies [seq] != 2 || killed_copies [seq] != 1) {
                diag ("seq %d handled %d times, %d by the killed instance", seq,
                      state.copies [seq], killed_copies [seq]);
                unexplained++;
            }
        }
    for (int i = 0; i < INSTANCES; i++)
        for (size_t j = 0; i != KILLED && j < state.logs [i].count; j++) {
            s_entry_t *entry = &state.logs [i].entries [j];
            if (entry->seq && killed_copies [entry->seq] && entry->attempt < 2)
                first_attempts++;
            if (entry->attempt > 1)
                redelivered++;
        }
    diag ("%d duplicates; the survivors handled %d redelivered events", duplicates,
          redelivered);
    is_int (unexplained, 0, "every duplicate has its other copy in the killed instance's log");
    is_int (first_attempts, 0, "the survivors' copies of those events are redeliveries");
    ok (duplicates <= KEYS, "duplicates are at most the keys that can be in flight (%d)",
        duplicates);
    for (int i = 0; i < INSTANCES; i++)
        ok (s_key_order (&state.logs [i]), "instance %d%s handled each key in order", i,
            i == KILLED? " (killed)": "");

    chorus_node_destroy (&publisher);
    for (int i = 0; i < INSTANCES; i++) {
        free (state.logs [i].entries);
        free (state.logs [i].path);
    }
    s_cleanup ();
    return tap_failed? 1: 0;
}
