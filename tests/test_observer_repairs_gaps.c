/*  test_observer_repairs_gaps.c — an observer with a tiny receive
    high-water mark that stops reading while a publisher (its own process)
    sends 50,000 events of 1 KiB ends with every sequence number, exactly
    once and in order: PUB/SUB drops what it cannot hold, and FETCH brings
    it back from the publisher's log. The publisher's memory stays bounded
    while the observer lags.
*/
#include "testutil.h"

#define EVENTS 50000

typedef struct {
    uint64_t next;              //  the seq expected next
    int in_order;               //  events that came as expected
    int wrong;                  //  events out of order or repeated
} seen_t;

static int
s_on_event (chorus_node_t *node, chorus_event_t *event, void *arg)
{
    seen_t *seen = (seen_t *) arg;
    if (chorus_event_seq (event) == seen->next) {
        seen->in_order++;
        seen->next++;
    }
    else
        seen->wrong++;
    return 0;
}

static bool
s_all_seen (void *arg)
{
    return ((seen_t *) arg)->next > EVENTS;
}

//  Resident memory of a process, in KiB
static long
s_rss_kib (pid_t pid)
{
    char path [64], line [256];
    snprintf (path, sizeof (path), "/proc/%d/status", (int) pid);
    FILE *file = fopen (path, "r");
    long rss = -1;
    while (file && fgets (line, sizeof (line), file))
        if (strncmp (line, "VmRSS:", 6) == 0)
            rss = atol (line + 6);
    if (file)
        fclose (file);
    return rss;
}

int
main (void)
{
    char *root = test_tempdir ("observer");
    seen_t seen = {1, 0, 0};
    chorus_node_t *observer = test_node ("watcher", NULL, NULL);
    chorus_node_set_observe_hwm (observer, 10);
    chorus_node_observe (observer, "", true, s_on_event, &seen);
    chorus_node_start (observer);

    char seed [300], store [300];
    snprintf (seed, sizeof (seed), "--seed=%s", chorus_node_endpoint (observer));
    snprintf (store, sizeof (store), "--store=%s/publisher", root);
    char *argv [] = {(char *) test_helper_path (), "--service=sensors", seed, store,
                     "--wait-peers=1", "--publish=50000", "--size=1024", "--topic=sensor.read",
                     "--heartbeat=1000,3000,5000", NULL};
    test_child_t *child = test_spawn (argv);
    ok (child && test_child_expect (child, "READY ", NULL, 0, 5000) == 0, "publisher started");

    //  The observer's application does not dispatch while the publisher
    //  publishes: it is as slow as it can be
    long peak = 0;
    bool published = false;
    int64_t end = zclock_mono () + 60000;
    while (!published && zclock_mono () < end) {
        published = test_child_expect (child, "PUBLISHED ", NULL, 0, 100) == 0;
        long rss = s_rss_kib (child->pid);
        peak = rss > peak? rss: peak;
    }
    ok (published, "50,000 events of 1 KiB (50 MiB) published while the observer lagged");
    //  Under AddressSanitizer memory holds shadow and quarantine: no figure
    if (getenv ("ASAN_OPTIONS"))
        tap_skip (1, "memory is not measured under AddressSanitizer");
    else
        ok (peak > 0 && peak < 160 * 1024, "publisher's memory stayed bounded: peak %ld MiB",
            peak / 1024);

    chorus_node_t *nodes [1] = {observer};
    bool all = test_run_until (nodes, 1, s_all_seen, &seen, 60000);
    ok (all, "the observer caught up (next seq %" PRIu64 ")", seen.next);
    is_int (seen.in_order, EVENTS, "every event once, in order");
    is_int (seen.wrong, 0, "no event out of order or twice");
    ok (chorus_node_counter (observer, "observed") == EVENTS, "counted as observed");
    uint64_t fetched = chorus_node_counter (observer, "fetched");
    ok (fetched > 0 && fetched < EVENTS, "PUB/SUB lost some and FETCH repaired them: %" PRIu64
        " of %d came by FETCH", fetched, EVENTS);

    test_child_stop (&child, SIGTERM);
    chorus_node_destroy (&observer);
    test_tempdir_remove (&root);
    return done_testing ();
}
