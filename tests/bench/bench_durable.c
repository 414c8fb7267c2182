/*  bench_durable.c — Chorus's side of scripts/bench's durable publish
    figures: events per second from a producer whose every publish call
    returns when what it published is in the node's store, flushed to disk
    under --durability fsync. One node, no peers: what is timed is the way
    to durability, not delivery. --batch 1 publishes with
    chorus_node_publish, more with chorus_node_publish_batch.
    Usage: bench_durable [--durability fsync|process] [--batch B] [--events N]
                         [--size B] [--dir DIR] [--json FILE]
    Prints "events_per_second R" on stdout.
*/
#include "chorus.h"
#include "bench_json.h"

#include <czmq.h>

#include <getopt.h>

static int64_t
s_now_us (void)
{
    return zclock_usecs ();
}

//  How a measure publishes
typedef struct {
    const char *name;               //  its durability, for the store and messages
    chorus_durability_t durability; //  of the node
    int batch;                      //  events per call; 1: chorus_node_publish
} s_measure_t;

//  Publish count events of size bytes on a fresh store; events per second,
//  or -1 after a message
static double
s_measure (const s_measure_t *measure, int count, int size, const char *root)
{
    char store [600];
    snprintf (store, sizeof (store), "%s/%s", root, measure->name);
    chorus_node_t *node = chorus_node_new ("bench-durable");
    chorus_node_set_store (node, store);
    chorus_node_set_retention (node, 0, 0, CHORUS_RETAIN_REFUSE);
    chorus_node_set_durability (node, measure->durability);
    int rc = chorus_node_start (node);
    if (rc < 0) {
        fprintf (stderr, "bench_durable: cannot start a node on %s: %s: %s\n", store,
                 chorus_strerror (rc), chorus_node_error (node));
        chorus_node_destroy (&node);
        return -1;
    }
    char *payload = (char *) calloc (1, (size_t) (size? size: 1));
    chorus_publication_t *events = (chorus_publication_t *)
                                   calloc ((size_t) measure->batch, sizeof (chorus_publication_t));
    int published = 0;
    int64_t start = s_now_us ();
    while (rc == 0 && published < count) {
        if (measure->batch == 1) {
            rc = chorus_node_publish (node, "bench.event", NULL, payload, (size_t) size);
            published++;
            continue;
        }
        int take = count - published < measure->batch? count - published: measure->batch;
        for (int i = 0; i < take; i++) {
            //  Every call sets the ids it hands out; "" asks for fresh ones
            memset (&events [i], 0, sizeof (events [i]));
            events [i].topic = "bench.event";
            events [i].payload = payload;
            events [i].size = (size_t) size;
        }
        rc = chorus_node_publish_batch (node, events, (size_t) take);
        published += take;
    }
    int64_t elapsed = s_now_us () - start;
    if (rc < 0)
        fprintf (stderr, "bench_durable: %s: publish failed: %s: %s\n", measure->name,
                 chorus_strerror (rc), chorus_node_error (node));
    free (events);
    free (payload);
    chorus_node_destroy (&node);
    return rc? -1: count * 1e6 / (double) elapsed;
}

int
main (int argc, char **argv)
{
    int events = 100000, batch = 1000, size = 100;
    s_measure_t measure = { "fsync", CHORUS_DURABLE_FSYNC, 1 };
    const char *dir = "/tmp", *json_path = NULL;
    bool valid = true;
    static struct option options [] = {
        {"events", required_argument, 0, 'e'}, {"batch", required_argument, 0, 'b'},
        {"durability", required_argument, 0, 'u'}, {"size", required_argument, 0, 's'},
        {"dir", required_argument, 0, 'd'}, {"json", required_argument, 0, 'j'},
        {0, 0, 0, 0}};
    int option;
    while ((option = getopt_long (argc, argv, "", options, NULL)) != -1) {
        switch (option) {
            case 'e': events = atoi (optarg); break;
            case 'b': batch = atoi (optarg); break;
            case 'u':
                measure.name = optarg;
                measure.durability = streq (optarg, "process")? CHORUS_DURABLE_PROCESS
                                                              : CHORUS_DURABLE_FSYNC;
                valid = streq (optarg, "process") || streq (optarg, "fsync");
                break;
            case 's': size = atoi (optarg); break;
            case 'd': dir = optarg; break;
            case 'j': json_path = optarg; break;
            default: return 2;
        }
    }
    measure.batch = batch;
    if (events <= 0 || batch < 1 || batch > CHORUS_PUBLISH_BATCH_MAX || size < 0
        || !valid) {
        fprintf (stderr, "usage: bench_durable [--durability fsync|process] [--batch 1-%d] "
                 "[--events N] [--size B] [--dir DIR] [--json FILE]\n",
                 CHORUS_PUBLISH_BATCH_MAX);
        return 2;
    }
    //  The store goes under DIR, so that the caller can put it on the disk
    //  its baseline writes to
    char root [512];
    snprintf (root, sizeof (root), "%s/chorus-durable-XXXXXX", dir);
    if (!mkdtemp (root)) {
        fprintf (stderr, "bench_durable: cannot make a directory in %s\n", dir);
        return 1;
    }
    double rate = s_measure (&measure, events, size, root);
    if (rate >= 0) {
        printf ("events_per_second %.0f\n", rate);
        bench_json_t *json = bench_json_new ("bench_durable", json_path);
        char name [96];
        snprintf (name, sizeof (name), "durable_publish.events_per_second.%s.batch_%d",
                  measure.name, measure.batch);
        bench_json_measure (json, name, rate, "events/s", NULL, 0);
        if (bench_json_destroy (&json))
            rate = -1;
    }
    char command [600];
    snprintf (command, sizeof (command), "rm -rf '%s'", root);
    if (system (command) != 0 || rate < 0)
        return 1;
    return 0;
}
