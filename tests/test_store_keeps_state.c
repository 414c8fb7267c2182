/*  test_store_keeps_state.c — the node store keeps its identity, outbox,
    group cursors, inbox and subscriptions across reopens and crashes, and
    reports every failure with a message instead of crashing.
*/
#define _GNU_SOURCE
#include "chorus_store.h"
#include "tap.h"

#include <czmq.h>
#include <ctype.h>
#include <ftw.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#define EVENTS      50      //  events appended in the outbox tests
#define CRASH_EVENTS 200    //  events the crashing child appends

//  What a scan saw
typedef struct {
    int count;                  //  events visited
    int stop_after;             //  stop after this many (0: never)
    uint64_t seqs [EVENTS + 1];  //  their sequence numbers
    bool bodies_ok;             //  every body and timestamp as appended
} scan_t;

//  The saved reply, or NULL
static void *
s_reply (chorus_store_t *store, const char *key, size_t *size)
{
    void *reply = NULL;
    return chorus_store_reply_load (store, key, &reply, size) == 1? reply: NULL;
}

static void
s_body (uint64_t seq, char *body, size_t size)
{
    //  Bodies of different lengths, so that byte counts mean something
    snprintf (body, size, "body-%" PRIu64 "-%.*s", seq, (int) (seq % 7),
              "xxxxxxx");
}

static int
s_collect (uint64_t seq, uint64_t timestamp, const void *body, size_t size, void *arg)
{
    scan_t *scan = (scan_t *) arg;
    char expected [64];
    s_body (seq, expected, sizeof (expected));
    if (timestamp != 1000 + seq || size != strlen (expected)
        || memcmp (body, expected, size) != 0)
        scan->bodies_ok = false;
    if (scan->count <= EVENTS)
        scan->seqs [scan->count] = seq;
    scan->count++;
    return scan->stop_after && scan->count >= scan->stop_after;
}

static int
s_scan (chorus_store_t *store, uint64_t from, uint64_t to, int stop_after, scan_t *scan)
{
    memset (scan, 0, sizeof (*scan));
    scan->bodies_ok = true;
    scan->stop_after = stop_after;
    return chorus_store_scan (store, from, to, s_collect, scan);
}

static uint64_t
s_expected_bytes (uint64_t from, uint64_t to)
{
    uint64_t bytes = 0;
    char body [64];
    for (uint64_t seq = from; seq <= to; seq++) {
        s_body (seq, body, sizeof (body));
        bytes += strlen (body);
    }
    return bytes;
}

static int
s_append_range (chorus_store_t *store, uint64_t from, uint64_t to)
{
    char body [64];
    for (uint64_t seq = from; seq <= to; seq++) {
        s_body (seq, body, sizeof (body));
        if (chorus_store_append (store, seq, 1000 + seq, body, strlen (body)))
            return -1;
    }
    return 0;
}

//  Group names seen by group_each, joined with commas
static int
s_join_group (const char *group, const chorus_store_group_t *record, void *arg)
{
    char *names = (char *) arg;
    if (*names)
        strcat (names, ",");
    strcat (names, group);
    return 0;
}

//  The subscriptions text of the group "orders", as group_each gives it
static int
s_orders_subs (const char *group, const chorus_store_group_t *record, void *arg)
{
    if (streq (group, "orders"))
        snprintf ((char *) arg, 256, "%s", record->subs? record->subs: "(none)");
    return 0;
}

static int
s_remove_entry (const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove (path);
}

static void
s_remove_tree (const char *path)
{
    nftw (path, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static chorus_store_t *
s_open (const char *dir)
{
    char error [256] = "";
    chorus_store_t *store = chorus_store_new (dir, error, sizeof (error), NULL);
    if (!store)
        diag ("cannot open %s: %s", dir, error);
    return store;
}

//  A child appends and is killed at once; the parent must read everything
static void
s_test_crash (const char *top)
{
    char dir [600];
    snprintf (dir, sizeof (dir), "%s/crash", top);
    int done [2];
    if (pipe (done))
        bail_out ("cannot make a pipe");
    pid_t child = fork ();
    if (child == 0) {
        //  Tells the parent when the last append has returned, then waits
        //  for its SIGKILL with the store still open
        close (done [0]);
        chorus_store_t *store = chorus_store_new (dir, NULL, 0, NULL);
        if (!store || s_append_range (store, 1, CRASH_EVENTS))
            _exit (2);
        if (write (done [1], "x", 1) != 1)
            _exit (3);
        while (true)
            pause ();
    }
    close (done [1]);
    char byte = 0;
    bool appended = child > 0 && read (done [0], &byte, 1) == 1;
    close (done [0]);
    ok (appended, "child appended every event");
    int status = 0;
    if (child > 0)
        kill (child, SIGKILL);
    ok (child > 0 && waitpid (child, &status, 0) == child && WIFSIGNALED (status)
        && WTERMSIG (status) == SIGKILL, "child was killed with SIGKILL");

    chorus_store_t *store = s_open (dir);
    ok (store != NULL, "store reopens after the crash");
    if (!store) {
        tap_skip (6, "no store");
        return;
    }
    //  Not closed: the store cannot know what a machine crash took from
    //  its log's tail, so it starts a new epoch above all of it
    is_int (chorus_store_head (store), (uint64_t) 1 << 32,
            "after the crash, head is the start of a new epoch");
    is_int (chorus_store_epoch (store), 1, "the epoch is 1");
    is_int (chorus_store_count (store, 1, chorus_store_head (store)), CRASH_EVENTS,
            "the numbers between epochs hold no events");
    is_int (chorus_store_next (store, CRASH_EVENTS + 1, NULL, NULL), ((uint64_t) 1 << 32) + 1,
            "the next event after the old ones is the new epoch's first");
    is_int (chorus_store_events (store), CRASH_EVENTS, "every event survives the crash");
    int visited = 0;
    bool all_ok = true;
    for (uint64_t from = 1; from <= CRASH_EVENTS; from += EVENTS) {
        scan_t scan;
        visited += s_scan (store, from, from + EVENTS - 1, 0, &scan);
        all_ok = all_ok && scan.bodies_ok && scan.seqs [0] == from;
    }
    ok (visited == CRASH_EVENTS && all_ok, "every event readable as appended");
    chorus_store_destroy (&store);
}

static void
s_test_outbox (const char *dir)
{
    chorus_store_t *store = s_open (dir);
    if (!store)
        bail_out ("cannot open a new store");
    const char *instance = chorus_store_instance (store);
    bool hex = strlen (instance) == 32;
    for (const char *c = instance; *c; c++)
        hex = hex && (isdigit ((unsigned char) *c) || (*c >= 'A' && *c <= 'F'));
    ok (hex, "instance id is 32 uppercase hex characters (%s)", instance);
    char saved_instance [33];
    snprintf (saved_instance, sizeof (saved_instance), "%s", instance);
    is_int (chorus_store_head (store), 0, "new store has head 0");
    is_int (chorus_store_first (store), 0, "new store has no first event");
    is_int (chorus_store_events (store), 0, "new store has no events");

    is_int (s_append_range (store, 1, EVENTS), 0, "append 1..%d", EVENTS);
    is_int (chorus_store_head (store), EVENTS, "head follows appends");
    is_int (chorus_store_first (store), 1, "first is 1");
    is_int (chorus_store_events (store), EVENTS, "events counted");
    is_int (chorus_store_bytes (store), s_expected_bytes (1, EVENTS), "bytes counted");

    scan_t scan;
    is_int (s_scan (store, 0, 0, 0, &scan), EVENTS, "scan visits every event");
    bool in_order = scan.count == EVENTS;
    for (int i = 0; i < EVENTS && in_order; i++)
        in_order = scan.seqs [i] == (uint64_t) i + 1;
    ok (in_order, "scan is in seq order");
    ok (scan.bodies_ok, "scan gives timestamps and bodies as appended");

    is_int (chorus_store_append (store, EVENTS + 2, 1, "x", 1), -1, "append skipping a seq fails");
    ok (strstr (chorus_store_error (store), "head"), "error says why: %s",
        chorus_store_error (store));
    is_int (chorus_store_append (store, EVENTS, 1, "x", 1), -1, "append repeating a seq fails");
    is_int (chorus_store_head (store), EVENTS, "failed appends leave head alone");
    is_int (chorus_store_events (store), EVENTS, "failed appends store nothing");
    is_int (s_scan (store, EVENTS, EVENTS + 2, 0, &scan), 1, "only the real last event is there");
    ok (scan.bodies_ok, "the last event was not overwritten");

    char error [256] = "";
    chorus_store_t *second = chorus_store_new (dir, error, sizeof (error), NULL);
    ok (second == NULL, "second open of an open store fails");
    ok (strstr (error, "in use by another process") != NULL, "and says it is in use: %s", error);
    chorus_store_destroy (&second);

    uint64_t bytes = chorus_store_bytes (store);
    chorus_store_destroy (&store);
    ok (store == NULL, "destroy nulls the pointer");
    chorus_store_destroy (&store);

    store = s_open (dir);
    if (!store)
        bail_out ("cannot reopen the store");
    is_str (chorus_store_instance (store), saved_instance, "instance id survives reopen");
    is_int (chorus_store_head (store), EVENTS, "head survives reopen");
    is_int (chorus_store_first (store), 1, "first survives reopen");
    is_int (chorus_store_events (store), EVENTS, "event count survives reopen");
    is_int (chorus_store_bytes (store), bytes, "byte count survives reopen");
    is_int (chorus_store_append (store, EVENTS + 1, 1000 + EVENTS + 1, "", 0), 0,
            "append continues after reopen");
    is_int (chorus_store_events (store), EVENTS + 1, "an empty body counts as an event");
    is_int (chorus_store_bytes (store), bytes, "and adds no bytes");

    is_int (s_scan (store, 10, 20, 0, &scan), 11, "scan 10..20 visits 11 events");
    ok (scan.seqs [0] == 10 && scan.seqs [10] == 20 && scan.bodies_ok, "from 10 to 20");
    is_int (s_scan (store, 5, 0, 3, &scan), 3, "scan stops when the callback says so");
    ok (scan.seqs [0] == 5 && scan.seqs [2] == 7, "stopped after 5, 6, 7");
    is_int (s_scan (store, 30, 20, 0, &scan), 0, "scan with from > to visits nothing");

    is_int (chorus_store_trim (store, 11), 10, "trim below 11 deletes 10 events");
    is_int (chorus_store_first (store), 11, "first moves to 11");
    is_int (chorus_store_events (store), EVENTS + 1 - 10, "event count drops by 10");
    is_int (chorus_store_bytes (store), bytes - s_expected_bytes (1, 10), "bytes drop");
    is_int (s_scan (store, 0, 0, 0, &scan), EVENTS + 1 - 10, "scan sees the rest");
    is_int (scan.seqs [0], 11, "scan starts at 11");
    is_int (chorus_store_trim (store, 11), 0, "trim again below 11 is a no-op");
    is_int (chorus_store_trim (store, 3), 0, "trim below first is a no-op");

    chorus_store_destroy (&store);
    store = s_open (dir);
    if (!store)
        bail_out ("cannot reopen the store");
    is_int (chorus_store_first (store), 11, "trim survives reopen (first)");
    is_int (chorus_store_events (store), EVENTS + 1 - 10, "trim survives reopen (events)");
    is_int (chorus_store_bytes (store), bytes - s_expected_bytes (1, 10),
            "trim survives reopen (bytes)");

    is_int (chorus_store_trim (store, 1000), EVENTS + 1 - 10, "trim past head empties");
    ok (chorus_store_first (store) == 0 && chorus_store_events (store) == 0
        && chorus_store_bytes (store) == 0, "empty outbox: first, events, bytes are 0");
    is_int (chorus_store_head (store), EVENTS + 1, "trim never moves head");
    is_int (s_append_range (store, EVENTS + 2, EVENTS + 2), 0, "append after emptying");
    is_int (chorus_store_first (store), EVENTS + 2, "first is the new event");
    chorus_store_destroy (&store);
}

static void
s_test_groups (const char *dir)
{
    chorus_store_t *store = s_open (dir);
    if (!store)
        bail_out ("cannot open the store");
    chorus_store_group_t orders = {1500, 1, 42, "1500 1 orders.\n0 1 \n"};
    chorus_store_group_t other = {0, 0, 7, NULL};
    ok (chorus_store_group_save (store, "orders", &orders) == 0
        && chorus_store_group_save (store, "billing", &other) == 0
        && chorus_store_group_save (store, "audit", &other) == 0
        && chorus_store_group_save (store, "audit.eu", &other) == 0, "groups saved");
    chorus_store_group_t loaded = {0, 0, 0, NULL};
    is_int (chorus_store_group_load (store, "orders", &loaded), 0, "group loads");
    ok (loaded.since == 1500 && loaded.flags == 1 && loaded.cursor == 42, "as saved");
    orders.cursor = 43;
    chorus_store_group_save (store, "orders", &orders);
    chorus_store_group_load (store, "orders", &loaded);
    is_int (loaded.cursor, 43, "saving again updates the cursor");

    char names [256] = "";
    is_int (chorus_store_group_each (store, s_join_group, names), 4, "each visits 4 groups");
    is_str (names, "audit,audit.eu,billing,orders", "in name order");
    is_int (chorus_store_group_delete (store, "billing"), 0, "group deleted");
    is_int (chorus_store_group_load (store, "billing", &loaded), -1, "deleted group is unknown");
    ok (strstr (chorus_store_error (store), "billing"), "error names it: %s",
        chorus_store_error (store));

    chorus_store_destroy (&store);
    store = s_open (dir);
    if (!store)
        bail_out ("cannot reopen the store");
    names [0] = 0;
    is_int (chorus_store_group_each (store, s_join_group, names), 3, "groups survive reopen");
    is_str (names, "audit,audit.eu,orders", "the deleted one stays deleted");
    chorus_store_group_load (store, "orders", &loaded);
    ok (loaded.since == 1500 && loaded.flags == 1 && loaded.cursor == 43, "cursor survives");
    char subs [256] = "";
    chorus_store_group_each (store, s_orders_subs, subs);
    is_str (subs, "1500 1 orders.\n0 1 \n", "and so do its subscriptions");

    //  Own subscriptions
    uint64_t since = 99;
    ok (chorus_store_subscription (store, "orders.", 1000, false, &since) == 0 && since == 1000,
        "first subscription records now");
    ok (chorus_store_subscription (store, "orders.", 2000, false, &since) == 0 && since == 1000,
        "later calls return the first since");
    ok (chorus_store_subscription (store, "", 3000, true, &since) == 0 && since == 0,
        "an earliest subscription records 0");
    ok (chorus_store_subscription (store, "", 4000, false, &since) == 0 && since == 0,
        "and keeps it");
    chorus_store_destroy (&store);
    store = s_open (dir);
    if (!store)
        bail_out ("cannot reopen the store");
    ok (chorus_store_subscription (store, "orders.", 5000, true, &since) == 0 && since == 1000,
        "subscription since survives reopen");
    chorus_store_destroy (&store);
}

static void
s_test_inbox (const char *dir)
{
    chorus_store_t *store = s_open (dir);
    if (!store)
        bail_out ("cannot open the store");
    is_int (chorus_store_inbox_add (store, "AAAA", 1, 100), 0, "inbox record added");
    is_int (chorus_store_inbox_has (store, "AAAA", 1), 1, "and found");
    is_int (chorus_store_inbox_has (store, "AAAA", 2), 0, "another seq is not");
    is_int (chorus_store_inbox_has (store, "AAA", 1), 0, "nor a shorter publisher name");

    const char reply [] = {'o', 'k', 0, 1, (char) 0xFF, 'z'};
    is_int (chorus_store_reply_save (store, "cmd-1", 100, reply, sizeof (reply)), 0,
            "reply saved");
    size_t size = 0;
    char *loaded = (char *) s_reply (store, "cmd-1", &size);
    ok (loaded && size == sizeof (reply) && memcmp (loaded, reply, size) == 0,
        "reply loads with the same bytes");
    free (loaded);
    ok (s_reply (store, "cmd-2", &size) == NULL, "unknown reply is NULL");
    is_int (chorus_store_reply_save (store, "cmd-empty", 100, NULL, 0), 0, "empty reply saved");
    size = 99;
    loaded = (char *) s_reply (store, "cmd-empty", &size);
    ok (loaded != NULL && size == 0, "empty reply loads as 0 bytes");
    free (loaded);

    //  Expiry: publisher "A" is recent and sorts first, so the sweep must
    //  resume past it to reach the old records of "B"
    for (uint64_t seq = 1; seq <= 10; seq++) {
        chorus_store_inbox_add (store, "A", seq, 200);
        chorus_store_inbox_add (store, "B", seq, 100);
        char key [16];
        snprintf (key, sizeof (key), "r-%02d", (int) seq);
        chorus_store_reply_save (store, key, seq % 2? 100: 200, "r", 1);
    }
    //  Old: the 3 records above, B 1..10 and the 5 odd replies
    int expected = 3 + 10 + 5;
    int first_call = chorus_store_inbox_expire (store, 150, 7);
    ok (first_call >= 0 && first_call <= 7, "one call forgets at most max records (%d)",
        first_call);
    int total = first_call, calls = 1, most = first_call;
    while (calls < 8) {
        int deleted = chorus_store_inbox_expire (store, 150, 7);
        if (deleted < 0)
            break;
        most = deleted > most? deleted: most;
        total += deleted;
        calls++;
    }
    is_int (calls, 8, "every expire call succeeds");
    ok (most <= 7, "no call goes past max");
    is_int (total, expected, "repeated calls forget every old record");
    is_int (chorus_store_inbox_expire (store, 150, 100), 0, "a full sweep finds nothing more");
    int kept = 0, gone = 0;
    for (uint64_t seq = 1; seq <= 10; seq++) {
        kept += chorus_store_inbox_has (store, "A", seq);
        gone += chorus_store_inbox_has (store, "B", seq) == 0;
    }
    is_int (kept, 10, "recent inbox records are kept");
    is_int (gone, 10, "old inbox records are forgotten");
    loaded = (char *) s_reply (store, "r-02", &size);
    ok (loaded != NULL, "recent reply kept");
    free (loaded);
    ok (s_reply (store, "r-01", &size) == NULL, "old reply forgotten");
    ok (chorus_store_inbox_has (store, "AAAA", 1) == 0, "old first record forgotten");
    chorus_store_destroy (&store);
}

static void
s_test_batch (const char *dir)
{
    chorus_store_t *store = s_open (dir);
    if (!store)
        bail_out ("cannot open the store");
    s_append_range (store, 1, 20);
    uint64_t bytes = chorus_store_bytes (store);
    chorus_store_group_t group = {0, 1, 5, NULL};
    chorus_store_group_t loaded;
    uint64_t since = 0;

    chorus_store_begin (store);
    chorus_store_group_save (store, "late", &group);
    chorus_store_inbox_add (store, "P", 9, 100);
    chorus_store_reply_save (store, "cmd-9", 100, "done", 4);
    chorus_store_subscription (store, "late.", 700, false, &since);
    is_int (chorus_store_trim (store, 6), 5, "batched trim counts 5 events");
    is_int (chorus_store_trim (store, 9), 3, "a second batched trim counts only the new ones");
    is_int (chorus_store_group_load (store, "late", &loaded), -1, "group not visible before commit");
    is_int (chorus_store_inbox_has (store, "P", 9), 0, "inbox not visible before commit");
    is_int (chorus_store_first (store), 1, "trim not applied before commit");
    is_int (chorus_store_append (store, 21, 1021, "x", 1), 0, "append goes straight through");
    is_int (chorus_store_head (store), 21, "and is seen at once");
    is_int (chorus_store_commit (store), 0, "commit");
    is_int (chorus_store_group_load (store, "late", &loaded), 0, "group visible after commit");
    is_int (chorus_store_inbox_has (store, "P", 9), 1, "inbox visible after commit");
    size_t size = 0;
    char *reply = (char *) s_reply (store, "cmd-9", &size);
    ok (reply && size == 4 && memcmp (reply, "done", 4) == 0, "reply visible after commit");
    free (reply);
    ok (chorus_store_subscription (store, "late.", 800, false, &since) == 0 && since == 700,
        "subscription visible after commit");
    is_int (chorus_store_first (store), 9, "trim applied at commit");
    is_int (chorus_store_events (store), 13, "event count after commit");
    is_int (chorus_store_bytes (store), bytes - s_expected_bytes (1, 8) + 1,
            "byte count after commit");
    is_int (chorus_store_commit (store), 0, "commit without begin does nothing");
    chorus_store_destroy (&store);

    store = s_open (dir);
    if (!store)
        bail_out ("cannot reopen the store");
    ok (chorus_store_first (store) == 9 && chorus_store_events (store) == 13,
        "batched trim survives reopen");
    chorus_store_begin (store);
    chorus_store_group_save (store, "lost", &group);
    chorus_store_destroy (&store);
    store = s_open (dir);
    if (!store)
        bail_out ("cannot reopen the store");
    is_int (chorus_store_group_load (store, "lost", &loaded), -1,
            "writes of an uncommitted batch are discarded");
    chorus_store_destroy (&store);
}

int
main (void)
{
    const char *tmp = getenv ("TMPDIR");
    char top [512];
    snprintf (top, sizeof (top), "%s/chorus-store-XXXXXX", tmp && *tmp? tmp: "/tmp");
    if (!mkdtemp (top))
        bail_out ("cannot make a temporary directory");

    //  First, before this process has any LevelDB thread to lose in a fork
    s_test_crash (top);

    char dir [600];
    snprintf (dir, sizeof (dir), "%s/outbox", top);
    s_test_outbox (dir);
    snprintf (dir, sizeof (dir), "%s/groups", top);
    s_test_groups (dir);
    snprintf (dir, sizeof (dir), "%s/inbox", top);
    s_test_inbox (dir);
    snprintf (dir, sizeof (dir), "%s/batch", top);
    s_test_batch (dir);

    //  A file where the directory should be
    snprintf (dir, sizeof (dir), "%s/file", top);
    FILE *file = fopen (dir, "w");
    if (file)
        fclose (file);
    char error [256] = "";
    chorus_store_t *store = chorus_store_new (dir, error, sizeof (error), NULL);
    ok (store == NULL, "a store on a plain file fails");
    ok (strstr (error, "store") && strlen (error) > 10, "with a message: %s", error);
    chorus_store_destroy (&store);

    s_remove_tree (top);
    ok (access (top, F_OK) != 0, "temporary directory removed");
    return done_testing ();
}
