/*  test_journal_writer_holds_failed_batches.c — the journal's writer
    thread (pipelined group commit): batches submitted one after another
    without waiting are all committed, in order, and numbered by tickets;
    a batch whose write fails (the log may not grow: RLIMIT_FSIZE, as a
    full disk does, without needing root) is not durable, and neither is
    any batch submitted after it, while the failure is reported with a
    message that names the journal; once the log may grow again the writer
    tries again on its own and commits both, and the journal reopens sound
    with every record in it.
*/
#include "testutil.h"
#include "chorus_journal_private.h"

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

static int
s_count (const char *id, uint64_t number, const void *data, size_t size, void *arg)
{
    (*(int *) arg)++;
    return 0;
}

static void
s_put (chorus_journal_t *journal, int n)
{
    char id [32], value [64];
    snprintf (id, sizeof (id), "flow-%04d", n);
    snprintf (value, sizeof (value), "record of flow %d", n);
    chorus_journal_put_record (journal, id, 0, value, strlen (value), true);
}

//  The size of the journal's log file(s), in bytes
static off_t
s_log_size (const char *dir)
{
    off_t size = 0;
    DIR *handle = opendir (dir);
    struct dirent *entry;
    while (handle && (entry = readdir (handle))) {
        size_t length = strlen (entry->d_name);
        if (length > 4 && strcmp (entry->d_name + length - 4, ".log") == 0) {
            char path [1024];
            struct stat info;
            snprintf (path, sizeof (path), "%s/%s", dir, entry->d_name);
            if (stat (path, &info) == 0 && info.st_size > size)
                size = info.st_size;
        }
    }
    if (handle)
        closedir (handle);
    return size;
}

//  Waits up to timeout ms for the writer to make ticket durable
static bool
s_await_durable (chorus_journal_t *journal, uint64_t ticket, int timeout)
{
    int64_t end = zclock_mono () + timeout;
    while (chorus_journal_durable (journal) < ticket && zclock_mono () < end) {
        struct pollfd item = {chorus_journal_fd (journal), POLLIN, 0};
        poll (&item, 1, 100);
        chorus_journal_writer_status (journal);
    }
    return chorus_journal_durable (journal) >= ticket;
}

int
main (void)
{
    char *root = test_tempdir ("journal-writer");
    char *dir = zsys_sprintf ("%s/journal", root);
    char error [512];
    chorus_journal_t *journal = chorus_journal_new (dir, true, NULL, error, sizeof (error));
    if (!journal)
        bail_out (error);
    ok (chorus_journal_start_writer (journal) == 0, "the writer starts");
    ok (chorus_journal_fd (journal) >= 0, "with a descriptor to poll");

    //  100 batches, submitted without waiting for any
    uint64_t last = 0;
    bool increasing = true;
    for (int n = 0; n < 100; n++) {
        s_put (journal, n);
        uint64_t ticket = chorus_journal_submit (journal);
        increasing = increasing && ticket == last + 1;
        last = ticket;
    }
    ok (increasing, "each batch has the next ticket (the last: %" PRIu64 ")", last);
    is_int (chorus_journal_wait (journal, last), 0, "waiting for the last commits them all");
    is_int ((int64_t) chorus_journal_durable (journal), (int64_t) last, "durable up to it");
    is_int ((int64_t) chorus_journal_ticket (journal), (int64_t) last,
            "with nothing pending, the ticket is the last batch's");

    //  The log may not grow: the next write fails, as on a full disk
    signal (SIGXFSZ, SIG_IGN);
    struct rlimit limit, tight;
    getrlimit (RLIMIT_FSIZE, &limit);
    tight = limit;
    //  Below the size of the log, and of any file a reopen would make
    tight.rlim_cur = 16;
    ok (s_log_size (dir) > 16, "the journal has a log to grow (%lld bytes)",
        (long long) s_log_size (dir));
    setrlimit (RLIMIT_FSIZE, &tight);
    s_put (journal, 100);
    uint64_t failed = chorus_journal_submit (journal);
    is_int (chorus_journal_wait (journal, failed), -1, "a batch whose write fails is not waited "
            "for in vain");
    ok (strstr (chorus_journal_error (journal), dir) != NULL,
        "the failure names the journal: %s", chorus_journal_error (journal));
    is_int (chorus_journal_writer_status (journal), -1, "the writer reports it");
    s_put (journal, 101);
    uint64_t after = chorus_journal_submit (journal);
    ok (after == failed + 1, "a batch submitted after it is queued behind it");
    //  Long enough for the writer to try again (once a second)
    bool durable = s_await_durable (journal, failed, 2500);
    ok (!durable, "neither is durable while writes fail, tried again or not (durable %" PRIu64
        ", failed %" PRIu64 "): %s", chorus_journal_durable (journal), failed,
        chorus_journal_error (journal));

    //  Room again: the writer tries again on its own
    setrlimit (RLIMIT_FSIZE, &limit);
    ok (s_await_durable (journal, after, 10000), "once writes succeed both are committed");
    is_int (chorus_journal_writer_status (journal), 0, "and the writer says all is well");
    is_int (chorus_journal_wait (journal, after), 0, "a wait for the later one succeeds");
    chorus_journal_destroy (&journal);

    chorus_journal_failure_t failure;
    journal = chorus_journal_new (dir, false, &failure, error, sizeof (error));
    ok (journal != NULL, "the journal reopens sound: %s", journal? "": error);
    int records = 0;
    if (journal)
        chorus_journal_each_record (journal, s_count, &records);
    is_int (records, 102, "with every record in it");
    chorus_journal_destroy (&journal);
    free (dir);
    test_tempdir_remove (&root);
    return done_testing ();
}
