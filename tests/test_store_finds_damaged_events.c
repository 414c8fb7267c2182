/*  test_store_finds_damaged_events.c — an event whose stored bytes were
    damaged but still decode (as LevelDB's repair can leave them) is found
    by its checksum: a node refuses the store, `chorus store check` names
    the event, and `chorus store repair` drops it as lost (its consumers
    are told) and keeps every other event as it was. An event stored
    before the checksum existed still reads.
*/
#define _GNU_SOURCE
#include "chorus.h"
#include "chorus_store.h"
#include "chorus_msg.h"
#include "chorus_be64.h"
#include "tap.h"

#include <czmq.h>
#include <leveldb/c.h>
#include <ftw.h>
#include <unistd.h>

#define EVENTS 10
#define DAMAGED 5           //  its payload's bytes are changed
#define UNSEALED 7          //  rewritten as stored before the checksum

//  The EVENT a publisher stores as seq
static zframe_t *
s_event (uint64_t seq)
{
    chorus_msg_t *event = chorus_msg_new (CHORUS_MSG_EVENT);
    char id [32], payload [32];
    snprintf (id, sizeof (id), "e-%" PRIu64, seq);
    //  A msgpack map {"n": seq}: a changed digit still decodes
    snprintf (payload, sizeof (payload), "\x81\xa1n\xa4%04" PRIu64, seq);
    chorus_msg_set_id (event, id);
    chorus_msg_set_service (event, "orders");
    chorus_msg_set_instance (event, "0123456789ABCDEF0123456789ABCDEF");
    chorus_msg_set_correlation (event, id);
    chorus_msg_set_timestamp (event, 1000 + seq);
    chorus_msg_set_topic (event, "order.placed");
    chorus_msg_set_seq (event, seq);
    chorus_msg_set_payload (event, payload, strlen (payload));
    zframe_t *frame = chorus_msg_encode (event);
    if (!frame)
        bail_out (chorus_msg_reason (event));
    chorus_msg_destroy (&event);
    return frame;
}

typedef struct {
    int count;                  //  events visited
    bool seen [EVENTS + 1];     //  which
    bool bodies_ok;             //  each as stored
} s_scan_t;

static int
s_collect (uint64_t seq, uint64_t timestamp, const void *body, size_t size, void *arg)
{
    s_scan_t *scan = (s_scan_t *) arg;
    zframe_t *expected = s_event (seq);
    if (timestamp != 1000 + seq || size != zframe_size (expected)
    ||  memcmp (body, zframe_data (expected), size) != 0)
        scan->bodies_ok = false;
    zframe_destroy (&expected);
    if (seq <= EVENTS)
        scan->seen [seq] = true;
    scan->count++;
    return 0;
}

//  Opens the store's LevelDB directly, as the damage would reach it
static leveldb_t *
s_raw_open (const char *dir)
{
    leveldb_options_t *options = leveldb_options_create ();
    char *error = NULL;
    leveldb_t *db = leveldb_open (options, dir, &error);
    leveldb_options_destroy (options);
    if (error)
        bail_out (error);
    return db;
}

static int
s_remove_entry (const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove (path);
}

int
main (void)
{
    zsys_init ();
    zsys_set_logstream (NULL);
    const char *tmp = getenv ("TMPDIR");
    char dir [512];
    snprintf (dir, sizeof (dir), "%s/chorus-checksum-XXXXXX", tmp && *tmp? tmp: "/tmp");
    if (!mkdtemp (dir))
        bail_out ("cannot make a temporary directory");

    //  Ten events, stored and closed cleanly
    char error [1024] = "";
    chorus_store_t *store = chorus_store_new (dir, error, sizeof (error), NULL);
    if (!store)
        bail_out (error);
    for (uint64_t seq = 1; seq <= EVENTS; seq++) {
        zframe_t *frame = s_event (seq);
        if (chorus_store_append (store, seq, 1000 + seq, zframe_data (frame),
                                 zframe_size (frame)))
            bail_out (chorus_store_error (store));
        zframe_destroy (&frame);
    }
    chorus_store_destroy (&store);

    //  One event's payload changed (a digit: it still decodes as the EVENT
    //  of the same seq), another rewritten without its checksum
    leveldb_t *db = s_raw_open (dir);
    leveldb_readoptions_t *read = leveldb_readoptions_create ();
    leveldb_writeoptions_t *write = leveldb_writeoptions_create ();
    leveldb_writeoptions_set_sync (write, 1);
    char key [9] = {'e'};
    char *leveldb_error = NULL;
    size_t size;
    chorus__put_be64 (key + 1, DAMAGED);
    char *value = leveldb_get (db, read, key, sizeof (key), &size, &leveldb_error);
    ok (value && size > 12 && (uint8_t) value [0] & 0x80,
        "an event is stored with its checksum (%zu bytes)", size);
    char *digit = value? memmem (value, size, "0005", 4): NULL;
    ok (digit != NULL, "its payload is in its stored bytes");
    if (digit)
        digit [3] = '6';
    leveldb_put (db, write, key, sizeof (key), value, size, &leveldb_error);
    leveldb_free (value);
    chorus__put_be64 (key + 1, UNSEALED);
    value = leveldb_get (db, read, key, sizeof (key), &size, &leveldb_error);
    if (value && size > 12) {
        value [0] &= 0x7f;          //  no checksum flag, and no checksum
        leveldb_put (db, write, key, sizeof (key), value, size - 4, &leveldb_error);
    }
    leveldb_free (value);
    ok (leveldb_error == NULL, "the damage is written %s", leveldb_error? leveldb_error: "");
    leveldb_readoptions_destroy (read);
    leveldb_writeoptions_destroy (write);
    leveldb_close (db);

    {
        //  The changed event still decodes as the EVENT it was
        zframe_t *frame = s_event (DAMAGED);
        char *changed = memmem (zframe_data (frame), zframe_size (frame), "0005", 4);
        if (changed)
            changed [3] = '6';
        chorus_msg_t *msg = chorus_msg_new (CHORUS_MSG_EVENT);
        ok (changed && chorus_msg_decode (msg, zframe_data (frame), zframe_size (frame)) == 0
            && chorus_msg_seq (msg) == DAMAGED, "the damaged event still decodes");
        chorus_msg_destroy (&msg);
        zframe_destroy (&frame);
    }

    //  A node refuses the store, naming the event
    store = chorus_store_new (dir, error, sizeof (error), NULL);
    ok (store == NULL && strstr (error, "event 5 does not match its checksum")
        && strstr (error, "chorus store repair"), "the store is refused: %s", error);
    chorus_store_destroy (&store);

    //  Check names it; repair drops it, reports it lost, keeps the others
    char *report = NULL;
    int rc = chorus_store_check_dir (dir, &report);
    ok (rc != 0 && chorus_errno () == CHORUS_ECORRUPT && report
        && strstr (report, "DAMAGED: event 5 does not match its checksum"),
        "store check names the damaged event");
    ok (report && !strstr (report, "event 7"), "and not the event stored without one");
    if (rc == 0 || !report || !strstr (report, "event 5"))
        diag ("%s", report? report: "(no report)");
    free (report);
    report = NULL;
    rc = chorus_store_repair_dir (dir, &report);
    ok (rc == 0 && report && strstr (report, "lost: event 5 (its bytes were damaged")
        && strstr (report, "repaired, 1 events lost"), "store repair drops it as lost");
    if (rc || !report || !strstr (report, "repaired, 1 events lost"))
        diag ("%s", report? report: "(no report)");
    free (report);
    report = NULL;
    ok (chorus_store_check_dir (dir, &report) == 0, "then the store checks sound");
    free (report);

    store = chorus_store_new (dir, error, sizeof (error), NULL);
    ok (store != NULL, "and opens %s", store? "": error);
    if (store) {
        s_scan_t scan = {0, {false}, true};
        int visited = chorus_store_scan (store, 1, 0, s_collect, &scan);
        ok (visited == EVENTS - 1 && !scan.seen [DAMAGED] && scan.seen [UNSEALED] && scan.bodies_ok,
            "with every other event as it was, the one without a checksum too (%d)",
            visited);
        uint64_t from = 0, to = 0;
        size_t ranges = chorus_store_ranges (store, true, 0, &from, &to);
        ok (ranges == 1 && from == DAMAGED && to == DAMAGED,
            "and event 5 recorded as lost, for its consumers to be told");
        //  New events are sealed again
        zframe_t *frame = s_event (EVENTS + 1);
        ok (chorus_store_append (store, chorus_store_head (store) + 1, 2000,
                                 zframe_data (frame), zframe_size (frame)) == 0,
            "a new event is stored");
        zframe_destroy (&frame);
        chorus_store_destroy (&store);
    }
    nftw (dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return done_testing ();
}
