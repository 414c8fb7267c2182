/*  test_lazy_publish_is_flushed_apart.c — chorus_node_publish_batch_lazy
    and chorus_node_flush, what the coordinator's fsync'd publish of flow
    events rests on: a flush before the node starts is refused; events
    published lazily by a node whose durability is fsync are delivered to
    a group, each once, while another thread flushes the store again and
    again beside the node's own (every flush succeeds); an event published
    lazily survives a kill -9 of its publisher at once, before any flush
    (the restarted node takes a second publish of its id for a duplicate),
    and keeps its id once.
*/
#include "testutil.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>

#define EVENTS 2000

static bool
s_all (void *arg)
{
    return ((test_record_t *) arg)->total >= EVENTS;
}

static bool
s_met (void *arg)
{
    return test_peers ((chorus_node_t *) arg, NULL) > 0;
}

typedef struct {
    chorus_node_t *node;        //  whose store is flushed
    atomic_bool stop;           //  set to end the thread
    int flushes;                //  made
    int failed;                 //  of them, failed
} flusher_t;

static void *
s_flusher (void *arg)
{
    flusher_t *flusher = (flusher_t *) arg;
    while (!atomic_load (&flusher->stop)) {
        if (chorus_node_flush (flusher->node))
            flusher->failed++;
        flusher->flushes++;
    }
    return NULL;
}

static void
s_event (chorus_publication_t *event, const char *id)
{
    memset (event, 0, sizeof (*event));
    event->topic = "shop.sold";
    event->key = "k";
    event->payload = "x";
    event->size = 1;
    snprintf (event->id, sizeof (event->id), "%s", id? id: "");
}

int
main (void)
{
    char *root = test_tempdir ("lazy");
    char *pub_store = zsys_sprintf ("%s/shop", root);
    char *sub_store = zsys_sprintf ("%s/audit", root);

    chorus_node_t *publisher = test_node ("shop", pub_store, NULL);
    is_int (chorus_node_flush (publisher), CHORUS_ESTATE, "a flush before the node starts is "
            "refused");
    is_int (chorus_node_flush (NULL), CHORUS_ESTATE, "and one of no node");
    chorus_node_set_durability (publisher, CHORUS_DURABLE_FSYNC);
    chorus_node_start (publisher);
    test_record_t record = {zhashx_new (), 0, 0};
    chorus_node_t *audit = test_node ("audit", sub_store, chorus_node_endpoint (publisher));
    chorus_node_subscribe (audit, "shop.", test_record_event, &record);
    chorus_node_start (audit);
    chorus_node_t *nodes [2] = {publisher, audit};
    ok (test_run_until (nodes, 2, s_met, publisher, 5000), "the publisher met the group");

    //  Lazy batches from this thread, flushes from another meanwhile
    flusher_t flusher = {publisher, false, 0, 0};
    pthread_t thread;
    pthread_create (&thread, NULL, s_flusher, &flusher);
    bool published = true;
    chorus_publication_t events [100];
    for (int batch = 0; batch < EVENTS / 100; batch++) {
        for (int i = 0; i < 100; i++)
            s_event (&events [i], NULL);
        published = published && chorus_node_publish_batch_lazy (publisher, events, 100) == 0;
        chorus_node_run (publisher, 0);
    }
    ok (published, "%d events are published lazily in batches of 100", EVENTS);
    bool all = test_run_until (nodes, 2, s_all, &record, 20000);
    ok (all, "the group has them all (%d)", record.total);
    atomic_store (&flusher.stop, true);
    pthread_join (thread, NULL);
    is_int (record.total, EVENTS, "each once (%d handled twice)", record.twice);
    ok (flusher.flushes > 0 && flusher.failed == 0,
        "the store was flushed %d times from another thread meanwhile, %d failed",
        flusher.flushes, flusher.failed);
    chorus_node_destroy (&audit);
    chorus_node_destroy (&publisher);

    //  A child publishes an event of its own id lazily and is killed at
    //  once, no flush made: the event is in the operating system's hands
    fflush (stdout);
    pid_t child = fork ();
    if (child == 0) {
        chorus_node_t *node = test_node ("shop", pub_store, NULL);
        chorus_node_set_durability (node, CHORUS_DURABLE_FSYNC);
        chorus_node_start (node);
        chorus_publication_t event;
        s_event (&event, "order-1-sold");
        if (chorus_node_publish_batch_lazy (node, &event, 1) == 0)
            raise (SIGKILL);
        _exit (1);
    }
    int status = 0;
    waitpid (child, &status, 0);
    ok (WIFSIGNALED (status) && WTERMSIG (status) == SIGKILL,
        "the publisher was killed right after its lazy publish");
    publisher = test_node ("shop", pub_store, NULL);
    is_int (chorus_node_start (publisher), 0, "it starts again on its store");
    chorus_publication_t again;
    s_event (&again, "order-1-sold");
    is_int (chorus_node_publish_batch_lazy (publisher, &again, 1), 0, "the id is published "
            "again");
    ok (again.duplicate, "and taken for a duplicate: the event survived the kill");
    is_int (chorus_node_flush (publisher), 0, "a flush of the restarted node succeeds");
    chorus_node_destroy (&publisher);

    zhashx_destroy (&record.ids);
    free (pub_store);
    free (sub_store);
    test_tempdir_remove (&root);
    return done_testing ();
}
