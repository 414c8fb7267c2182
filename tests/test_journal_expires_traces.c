/*  test_journal_expires_traces.c — the trace's entries expire through one
    index key a transaction (correlation id), not one an entry. The key is
    timed by the clock when it is written: a sweep takes the keys older
    than its limit and forgets their transactions' entries older than the
    limit, by the entries' own times; a transaction with entries left is
    indexed again by the oldest of them, which a later sweep forgets in
    turn, leaving no key behind. A journal's index keys of one entry each
    (as journals were written before) expire as they did, a key without
    entries goes, and a reopened journal indexes a transaction once more,
    which the sweep counts once.
*/
#include "testutil.h"
#include "chorus_journal_private.h"
#include "chorus_be64.h"

#define HOUR (3600 * 1000ull)

static int
s_count_entry (const char *entry, size_t size, void *arg)
{
    (*(int *) arg)++;
    return 0;
}

//  How many entries a transaction has
static int
s_entries (chorus_journal_t *journal, const char *correlation)
{
    int count = 0;
    if (chorus_journal_each_trace (journal, correlation, s_count_entry, &count) < 0)
        bail_out (chorus_journal_error (journal));
    return count;
}

static int
s_count_key (const char *key, size_t key_size, const char *value, size_t size, void *arg)
{
    return 0;
}

//  How many index keys the journal holds
static int
s_index_keys (chorus_journal_t *journal)
{
    int count = chorus__journal_scan (journal, "x", 1, s_count_key, NULL);
    if (count < 0)
        bail_out (chorus_journal_error (journal));
    return count;
}

static void
s_put (chorus_journal_t *journal, const char *correlation, uint64_t time, const char *id)
{
    chorus_journal_put_trace (journal, correlation, time, id, id, strlen (id));
}

static void
s_commit (chorus_journal_t *journal)
{
    if (chorus_journal_commit (journal))
        bail_out (chorus_journal_error (journal));
}

static int
s_expire (chorus_journal_t *journal, uint64_t before)
{
    int forgotten = chorus_journal_expire_traces (journal, before, 1000);
    s_commit (journal);
    return forgotten;
}

int
main (void)
{
    char *root = test_tempdir ("journal-traces");
    char *dir = zsys_sprintf ("%s/journal", root);
    char error [512];
    chorus_journal_t *journal = chorus_journal_new (dir, true, NULL, error, sizeof (error));
    if (!journal)
        bail_out (error);
    uint64_t now = (uint64_t) zclock_time ();

    //  A transaction of five entries and two from a clock ahead, another
    //  of one
    for (int i = 0; i < 7; i++) {
        char id [16];
        snprintf (id, sizeof (id), "a%d", i);
        s_put (journal, "tx-a", i < 5? now - 3 * HOUR + (uint64_t) i: now + 30 * HOUR, id);
    }
    s_put (journal, "tx-b", now - HOUR, "b0");
    s_commit (journal);
    is_int (s_entries (journal, "tx-a"), 7, "a transaction's seven entries are written");
    is_int (s_index_keys (journal), 2, "with one index key, and the other's with one");
    is_int (s_expire (journal, now - HOUR), 0,
            "a sweep forgets none of them: their keys are timed by the clock");
    is_int (s_entries (journal, "tx-a") + s_entries (journal, "tx-b"), 8, "all eight are kept");

    //  An entry with its own index key, as journals were written before,
    //  and an index key whose entries are gone
    char key [128], index [128];
    size_t length = (size_t) snprintf (key, sizeof (key), "ttx-old%c", 0);
    chorus__put_be64 (key + length, now - 5 * HOUR);
    length += 8;
    length += (size_t) snprintf (key + length, 16, "old0");
    leveldb_writebatch_put (journal->batch, key, length, "old0", 4);
    index [0] = 'x';
    chorus__put_be64 (index + 1, now - 5 * HOUR);
    memcpy (index + 9, key + 1, length - 1);
    leveldb_writebatch_put (journal->batch, index, length + 8, "", 0);
    length = (size_t) snprintf (index, sizeof (index), "x12345678tx-gone");
    chorus__put_be64 (index + 1, now - 6 * HOUR);
    leveldb_writebatch_put (journal->batch, index, length + 1, "", 0);
    journal->pending += 3;
    s_commit (journal);
    is_int (s_index_keys (journal), 4, "an older entry's index key and a stray one join them");
    is_int (s_expire (journal, now - HOUR), 1, "a sweep forgets the older entry");
    is_int (s_entries (journal, "tx-old"), 0, "which is gone");
    is_int (s_index_keys (journal), 2, "with its index key, and the stray key too");

    //  Reopened, the journal indexes a transaction it writes to once more
    chorus_journal_destroy (&journal);
    journal = chorus_journal_new (dir, false, NULL, error, sizeof (error));
    if (!journal)
        bail_out (error);
    s_put (journal, "tx-a", now - 2 * HOUR, "a7");
    s_put (journal, "tx-a", now - 2 * HOUR, "a8");
    s_commit (journal);
    is_int (s_index_keys (journal), 3, "a reopened journal writing to a transaction indexes it "
            "once more, once");

    //  A day later: every key is due, and entries go by their own times
    uint64_t day = now + 25 * HOUR;
    is_int (s_expire (journal, day), 8, "a sweep a day later forgets the 8 entries older than "
            "its limit, each once");
    is_int (s_entries (journal, "tx-a"), 2, "the transaction keeps its two newer entries");
    is_int (s_entries (journal, "tx-b"), 0, "the other transaction is gone");
    is_int (s_index_keys (journal), 1, "one index key is left, for what is kept");
    is_int (s_expire (journal, day), 0, "the same sweep again forgets nothing");
    is_int (s_expire (journal, now + 30 * HOUR), 0, "nor one up to the newer entries' time");
    is_int (s_expire (journal, now + 31 * HOUR), 2, "one past it forgets them");
    is_int (s_entries (journal, "tx-a"), 0, "the transaction is gone");
    is_int (s_index_keys (journal), 0, "and no index key is left");

    chorus_journal_destroy (&journal);
    test_tempdir_remove (&root);
    free (dir);
    return done_testing ();
}
