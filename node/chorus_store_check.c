/*  chorus_store_check.c — `chorus store check` and `chorus store repair`
    for a node store: what it holds, what is damaged, what a repair lost.
*/
#include "chorus_private.h"

#include <inttypes.h>

//  Appends a line to the report
static void
s_say (char **report, const char *format, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_say (char **report, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *line = zsys_vprintf (format, args);
    va_end (args);
    char *joined = zsys_sprintf ("%s%s\n", *report? *report: "", line? line: "");
    free (line);
    free (*report);
    *report = joined;
}

static int
s_kind_errno (chorus_store_kind_t kind)
{
    return kind == CHORUS_STORE_DAMAGED? CHORUS_ECORRUPT: CHORUS_ESTORE;
}

//  Events that do not decode as the EVENT they should be
typedef struct {
    chorus_msg_t *msg;          //  scratch
    uint64_t bad [CHORUS_STORE_HOLES_MAX];
    size_t bad_size;            //  how many in bad
    uint64_t bad_count;         //  how many in all
} s_decode_t;

static int
s_decode_one (uint64_t seq, uint64_t timestamp, const void *body, size_t size, void *arg)
{
    s_decode_t *decode = (s_decode_t *) arg;
    if (chorus_msg_decode (decode->msg, body, size) || chorus_msg_type (decode->msg) != CHORUS_MSG_EVENT
    ||  chorus_msg_seq (decode->msg) != seq) {
        if (decode->bad_size < CHORUS_STORE_HOLES_MAX)
            decode->bad [decode->bad_size++] = seq;
        decode->bad_count++;
    }
    return 0;
}

//  Decodes every event; -1 on a read error
static int
s_decode_all (chorus_store_t *store, s_decode_t *decode)
{
    memset (decode, 0, sizeof (*decode));
    decode->msg = chorus_msg_new (CHORUS_MSG_EVENT);
    int rc = chorus_store_scan (store, 1, 0, s_decode_one, decode);
    chorus_msg_destroy (&decode->msg);
    return rc == -1? -1: 0;
}

//  What an open store holds; returns the damage found (0 or -1)
static int
s_describe (chorus_store_t *store, char **report)
{
    uint64_t missing_from, missing_to;
    bool clean = chorus_store_clean (store, &missing_from, &missing_to);
    s_say (report, "instance: %s", chorus_store_instance (store));
    s_say (report, "last stop: %s", clean? "clean": "not clean (a crash, a kill, or a repair): "
           "the next start begins a new epoch");
    s_say (report, "epoch: %" PRIu64, chorus_store_epoch (store));
    uint64_t first = chorus_store_first (store), head = chorus_store_head (store);
    if (chorus_store_events (store))
        s_say (report, "outbox: %" PRIu64 " events from seq %" PRIu64 ", %" PRIu64
               " bytes; head %" PRIu64, chorus_store_events (store), first,
               chorus_store_bytes (store), head);
    else
        s_say (report, "outbox: empty; head %" PRIu64, head);
    uint64_t from, to;
    size_t count = chorus_store_ranges (store, false, 0, &from, &to);
    for (size_t i = 0; i < count; i++) {
        chorus_store_ranges (store, false, i, &from, &to);
        s_say (report, "gap between epochs: %" PRIu64 " to %" PRIu64 " (never used)", from, to);
    }
    count = chorus_store_ranges (store, true, 0, &from, &to);
    for (size_t i = 0; i < count; i++) {
        chorus_store_ranges (store, true, i, &from, &to);
        s_say (report, "lost in a repair: %" PRIu64 " to %" PRIu64 " (consumers are told)",
               from, to);
    }
    chorus_store_census_t census;
    int rc = chorus_store_census (store, &census);
    s_say (report, "records: %" PRIu64 " (inbox %" PRIu64 ", replies %" PRIu64 ", producer ids %"
           PRIu64 ", groups %" PRIu64 ", subscriptions %" PRIu64 ")", census.records,
           census.inbox, census.replies, census.producer_ids, census.groups,
           census.subscriptions);
    if (rc == -1) {
        s_say (report, "DAMAGED: %s", chorus_store_error (store));
        return -1;
    }
    if (census.unknown)
        s_say (report, "note: %" PRIu64 " records of an unknown kind", census.unknown);
    if (missing_to) {
        s_say (report, "DAMAGED: stopped cleanly at event %" PRIu64 ", but the log lost %"
               PRIu64 " to %" PRIu64, missing_to, missing_from, missing_to);
        rc = -1;
    }
    for (size_t i = 0; i < census.holes; i++) {
        s_say (report, "DAMAGED: events %" PRIu64 " to %" PRIu64 " are missing from the outbox",
               census.hole [i].from, census.hole [i].to);
        rc = -1;
    }
    for (size_t i = 0; i < census.damaged && i < CHORUS_STORE_HOLES_MAX; i++)
        if (census.damaged_seq [i] > head)
            s_say (report, "DAMAGED: a record numbered %" PRIu64 " lies beyond the last event "
                   "%" PRIu64 " (its key was damaged)", census.damaged_seq [i], head);
        else
            s_say (report, "DAMAGED: event %" PRIu64 " does not match its checksum (its bytes "
                   "were damaged)", census.damaged_seq [i]);
    if (census.damaged > CHORUS_STORE_HOLES_MAX)
        s_say (report, "DAMAGED: and %" PRIu64 " more damaged events",
               census.damaged - CHORUS_STORE_HOLES_MAX);
    if (census.damaged)
        rc = -1;
    s_decode_t decode;
    if (s_decode_all (store, &decode) == -1) {
        s_say (report, "DAMAGED: %s", chorus_store_error (store));
        rc = -1;
    }
    for (size_t i = 0; i < decode.bad_size; i++)
        s_say (report, "DAMAGED: event %" PRIu64 " does not decode", decode.bad [i]);
    if (decode.bad_count > decode.bad_size)
        s_say (report, "DAMAGED: and %" PRIu64 " more events do not decode",
               decode.bad_count - decode.bad_size);
    if (decode.bad_count)
        rc = -1;
    return rc;
}

//  Lists the groups and their cursors
static int
s_group_line (const char *group, const chorus_store_group_t *record, void *arg)
{
    s_say ((char **) arg, "group %s: delivered below seq %" PRIu64 "%s", group, record->cursor,
           record->flags & CHORUS_SUB_DURABLE? " (durable)": "");
    return 0;
}

//  A failure of check or repair: the reason is the report's line, and the
//  detail of the failure too
static int
s_fail (char **report, int code, const char *reason)
{
    s_say (report, "%s", reason);
    return chorus__failf (code, "%s", reason);
}

int
chorus_store_check_dir (const char *dir, char **report)
{
    if (report)
        *report = NULL;
    if (!dir || !report)
        return chorus__failf (CHORUS_EINVAL, "store check: %s", dir? "no place for the report":
                              "no directory given");
    char error [1536];
    chorus_store_kind_t kind;
    chorus_store_t *store = chorus_store_inspect (dir, false, error, sizeof (error), &kind);
    if (!store)
        return s_fail (report, s_kind_errno (kind), error);
    s_say (report, "store: %s", dir);
    int rc = s_describe (store, report);
    if (chorus_store_group_each (store, s_group_line, report) == -1) {
        s_say (report, "DAMAGED: %s", chorus_store_error (store));
        rc = -1;
    }
    s_say (report, rc? "result: damaged; 'chorus store repair %s' recovers what can be":
           "result: sound", dir);
    chorus_store_destroy (&store);
    return rc? chorus__failf (CHORUS_ECORRUPT, "store %s is damaged; 'chorus store repair %s' "
                              "recovers what can be", dir, dir): 0;
}

int
chorus_store_repair_dir (const char *dir, char **report)
{
    if (report)
        *report = NULL;
    if (!dir || !report)
        return chorus__failf (CHORUS_EINVAL, "store repair: %s", dir? "no place for the report":
                              "no directory given");
    char error [1536];
    chorus_store_kind_t kind;
    //  What it held before, as far as it can be read
    uint64_t head_before = 0, events_before = 0;
    bool known_before = false;
    chorus_store_t *store = chorus_store_inspect (dir, false, error, sizeof (error), &kind);
    if (!store && kind != CHORUS_STORE_DAMAGED)
        return s_fail (report, CHORUS_ESTORE, error);
    if (store) {
        uint64_t missing_from, missing_to;
        chorus_store_clean (store, &missing_from, &missing_to);
        head_before = missing_to? missing_to: chorus_store_head (store);
        events_before = chorus_store_events (store);
        known_before = true;
        chorus_store_destroy (&store);
    }
    s_say (report, "store: %s", dir);
    s_say (report, "before: %s", known_before? "readable": error);
    kind = chorus_store_repair_db (dir, error, sizeof (error));
    if (kind != CHORUS_STORE_OK)
        return s_fail (report, s_kind_errno (kind), error);
    store = chorus_store_inspect (dir, true, error, sizeof (error), &kind);
    if (!store) {
        char reason [1600];
        snprintf (reason, sizeof (reason), "after LevelDB's repair the store still cannot be "
                  "used: %s", error);
        return s_fail (report, s_kind_errno (kind), reason);
    }
    //  What is missing now is lost: the tail a clean stop had, and holes
    uint64_t missing_from, missing_to;
    bool clean = chorus_store_clean (store, &missing_from, &missing_to);
    int rc = 0;
    uint64_t lost = 0;
    if (missing_to) {
        rc = chorus_store_accept_loss (store, missing_from, missing_to);
        s_say (report, "lost: events %" PRIu64 " to %" PRIu64 " (the log's tail)", missing_from,
               missing_to);
        lost += missing_to - missing_from + 1;
    }
    chorus_store_census_t census;
    if (rc == 0 && chorus_store_census (store, &census) == -1) {
        char reason [1600];
        snprintf (reason, sizeof (reason), "after LevelDB's repair the store still reads "
                  "damaged: %s", chorus_store_error (store));
        chorus_store_destroy (&store);
        return s_fail (report, CHORUS_ECORRUPT, reason);
    }
    for (size_t i = 0; rc == 0 && i < census.holes; i++) {
        rc = chorus_store_accept_loss (store, census.hole [i].from, census.hole [i].to);
        s_say (report, "lost: events %" PRIu64 " to %" PRIu64, census.hole [i].from,
               census.hole [i].to);
        lost += census.hole [i].to - census.hole [i].from + 1;
    }
    //  Events whose bytes were damaged go, and are reported lost, until
    //  none is left (the census names the first of them each time)
    while (rc == 0 && census.damaged) {
        for (size_t i = 0; rc == 0 && i < census.damaged && i < CHORUS_STORE_HOLES_MAX; i++) {
            uint64_t seq = census.damaged_seq [i];
            if (chorus_store_drop_event (store, seq) == -1)
                rc = -1;
            else
            if (seq > chorus_store_head (store))
                //  Beyond every number handed out: its key was damaged
                s_say (report, "dropped: a record numbered %" PRIu64 ", beyond the last "
                       "event %" PRIu64 " (its key was damaged)", seq,
                       chorus_store_head (store));
            else {
                rc = chorus_store_accept_loss (store, seq, seq);
                s_say (report, "lost: event %" PRIu64 " (its bytes were damaged: it did not "
                       "match its checksum)", seq);
                lost++;
            }
        }
        if (rc == 0 && chorus_store_census (store, &census) == -1)
            rc = -1;
    }
    //  Events that do not decode go, and are reported lost, until all do
    s_decode_t decode;
    while (rc == 0 && s_decode_all (store, &decode) == 0 && decode.bad_count) {
        for (size_t i = 0; rc == 0 && i < decode.bad_size; i++) {
            if (chorus_store_drop_event (store, decode.bad [i]) == -1
            ||  chorus_store_accept_loss (store, decode.bad [i], decode.bad [i]))
                rc = -1;
            s_say (report, "lost: event %" PRIu64 " (it did not decode)", decode.bad [i]);
            lost++;
        }
    }
    if (rc == 0 && head_before > chorus_store_head (store) && !missing_to) {
        rc = chorus_store_accept_loss (store, chorus_store_head (store) + 1, head_before);
        s_say (report, "lost: events %" PRIu64 " to %" PRIu64 " (the log's tail)",
               chorus_store_head (store) + 1, head_before);
        lost += head_before - chorus_store_head (store);
    }
    if (rc == 0)
        rc = chorus_store_finish_repair (store);
    if (rc) {
        char reason [1600];
        snprintf (reason, sizeof (reason), "cannot record the repair: %s",
                  chorus_store_error (store));
        chorus_store_destroy (&store);
        return s_fail (report, CHORUS_ESTORE, reason);
    }
    if (!clean && !missing_to)
        s_say (report, "note: the store was not stopped cleanly before; events at the tail of "
               "its log may have been lost without a trace");
    if (known_before && events_before > chorus_store_events (store) + lost)
        s_say (report, "note: %" PRIu64 " retained events before, %" PRIu64 " now",
               events_before, chorus_store_events (store));
    s_say (report, "after:");
    s_describe (store, report);
    chorus_store_destroy (&store);
    s_say (report, "result: repaired, %" PRIu64 " events lost; the next start numbers events "
           "in a new epoch and tells the consumers of the lost ranges (TRUNCATED)", lost);
    return 0;
}
