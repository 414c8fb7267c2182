/*  test_publish_batch_is_atomic.c — chorus_node_publish_batch: a batch far
    larger than the node's hand-off to its engine (4096 events) is stored
    and delivered, each event once; a batch with one bad event stores none;
    an event given its own id is stored once, whether repeated in the same
    batch, in a later one or after a restart, and keeps that id on the
    wire; fsync'd durability is accepted and an unknown one refused.
*/
#include "testutil.h"

#define BIG CHORUS_PUBLISH_BATCH_MAX

typedef struct {
    test_record_t *record;
    int want;
} want_t;

static bool
s_has (void *arg)
{
    want_t *want = (want_t *) arg;
    return want->record->total >= want->want;
}

static bool
s_met (void *arg)
{
    return test_peers ((chorus_node_t *) arg, NULL) > 0;
}

static chorus_node_t *
s_publisher (const char *store, const char *seed)
{
    chorus_node_t *node = test_node ("shop", store, seed);
    is_int (chorus_node_set_durability (node, (chorus_durability_t) 7), CHORUS_EINVAL,
            "an unknown durability is refused");
    is_int (chorus_node_set_durability (node, CHORUS_DURABLE_FSYNC), 0, "fsync'd durability");
    chorus_node_start (node);
    return node;
}

int
main (void)
{
    char *root = test_tempdir ("batch");
    char *pub_store = zsys_sprintf ("%s/shop", root);
    char *sub_store = zsys_sprintf ("%s/audit", root);
    test_record_t record = {zhashx_new (), 0, 0};
    chorus_node_t *publisher = s_publisher (pub_store, NULL);
    chorus_node_t *audit = test_node ("audit", sub_store, chorus_node_endpoint (publisher));
    chorus_node_subscribe (audit, "shop.", test_record_event, &record);
    chorus_node_start (audit);
    chorus_node_t *nodes [2] = {publisher, audit};
    ok (test_run_until (nodes, 2, s_met, publisher, 5000), "the publisher met the group");

    //  Four times the hand-off: the engine must be woken while it fills
    chorus_publication_t *events = (chorus_publication_t *) calloc (BIG + 1, sizeof (*events));
    char keys [16][16];
    for (int i = 0; i < 16; i++)
        snprintf (keys [i], sizeof (keys [i]), "k%d", i);
    for (int i = 0; i < BIG; i++) {
        events [i].topic = "shop.sold";
        events [i].key = keys [i % 16];
        events [i].payload = "x";
        events [i].size = 1;
    }
    int64_t start = zclock_mono ();
    is_int (chorus_node_publish_batch (publisher, events, BIG), 0,
            "a batch of %d events is stored", BIG);
    diag ("in %" PRId64 " ms", zclock_mono () - start);
    ok (strlen (events [0].id) == 32 && strlen (events [BIG - 1].id) == 32
        && strcmp (events [0].id, events [1].id), "each got a fresh id");
    is_int (chorus_node_publish_batch (publisher, events, BIG + 1), CHORUS_EINVAL,
            "one more is refused");
    is_int (chorus_errno (), CHORUS_EINVAL, "as an invalid argument");

    //  All or nothing: a bad id in the middle stores none of the batch
    chorus_publication_t bad [3];
    memset (bad, 0, sizeof (bad));
    for (int i = 0; i < 3; i++)
        bad [i].topic = "shop.sold";
    strcpy (bad [1].id, "a/b");
    is_int (chorus_node_publish_batch (publisher, bad, 3), CHORUS_EINVAL,
            "a batch with a bad id fails");
    is_int (chorus_errno (), CHORUS_EINVAL, "as an invalid argument");
    ok (strstr (chorus_node_error (publisher), "event 1 of the batch") != NULL,
        "naming the event: %s", chorus_node_error (publisher));

    //  Own ids: stored once, even twice in one batch
    chorus_publication_t own [3];
    memset (own, 0, sizeof (own));
    for (int i = 0; i < 3; i++)
        own [i].topic = "shop.refund";
    strcpy (own [0].id, "refund-1");
    strcpy (own [1].id, "refund-2");
    strcpy (own [2].id, "refund-1");
    is_int (chorus_node_publish_batch (publisher, own, 3), 0, "a batch with own ids");
    ok (!own [0].duplicate && !own [1].duplicate && own [2].duplicate,
        "the id repeated in the batch is a duplicate");
    chorus_publication_t again;
    memset (&again, 0, sizeof (again));
    again.topic = "shop.refund";
    strcpy (again.id, "refund-2");
    is_int (chorus_node_publish_batch (publisher, &again, 1), 0, "published again");
    ok (again.duplicate, "and found to be a duplicate");

    want_t want = {&record, BIG + 2};
    ok (test_run_until (nodes, 2, s_has, &want, 30000), "the group handled %d events",
        BIG + 2);
    is_int (record.total, BIG + 2, "no more");
    is_int (record.twice, 0, "none twice");
    ok (zhashx_lookup (record.ids, "refund-1") && zhashx_lookup (record.ids, "refund-2"),
        "the events keep their own ids on the wire");

    //  After a restart the ids are still known
    chorus_node_destroy (&publisher);
    publisher = s_publisher (pub_store, chorus_node_endpoint (audit));
    nodes [0] = publisher;
    memset (&again, 0, sizeof (again));
    again.topic = "shop.refund";
    strcpy (again.id, "refund-1");
    is_int (chorus_node_publish_batch (publisher, &again, 1), 0, "published after a restart");
    ok (again.duplicate, "and still a duplicate");
    strcpy (again.id, "refund-3");
    again.duplicate = false;
    is_int (chorus_node_publish_batch (publisher, &again, 1), 0, "a new id");
    ok (!again.duplicate, "is not");
    want.want = BIG + 3;
    ok (test_run_until (nodes, 2, s_has, &want, 10000), "the new one arrives");
    is_int (record.total, BIG + 3, "and nothing else");
    is_int (record.twice, 0, "none twice");

    free (events);
    chorus_node_destroy (&audit);
    chorus_node_destroy (&publisher);
    zhashx_destroy (&record.ids);
    free (pub_store);
    free (sub_store);
    test_tempdir_remove (&root);
    return done_testing ();
}
