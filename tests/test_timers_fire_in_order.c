/*  test_timers_fire_in_order.c — the coordinator's timer heap gives timers
    back soonest first (ties in the order they were set), never before
    they are due, and forgets a timer that is cancelled, superseded or
    whose flow is cancelled; checked by hand, then by many random
    operations against a plain reference.
*/
#include "tap.h"
#include "chorus_timers.h"

#include <czmq.h>

//  Pops one due timer and checks its flow and key
static bool
s_pops (chorus_timers_t *timers, uint64_t now, const char *flow, const char *key)
{
    char *got_flow = NULL, *got_key = NULL;
    bool same = chorus_timers_pop (timers, now, &got_flow, &got_key) == 0
             && streq (got_flow, flow) && streq (got_key, key);
    if (!same)
        diag ("popped %s %s, expected %s %s", got_flow? got_flow: "(none)",
              got_key? got_key: "(none)", flow, key);
    free (got_flow);
    free (got_key);
    return same;
}

static void
test_by_hand (void)
{
    chorus_timers_t *timers = chorus_timers_new ();
    char *flow, *key;
    ok (chorus_timers_due (timers) == UINT64_MAX, "empty: nothing is due");
    ok (chorus_timers_pop (timers, UINT64_MAX - 1, &flow, &key) == -1, "empty: nothing pops");

    chorus_timers_set (timers, "f1", "retry:a", 300);
    chorus_timers_set (timers, "f2", "flow-timeout", 100);
    chorus_timers_set (timers, "f3", "flow-timeout", 200);
    chorus_timers_set (timers, "f1", "flow-timeout", 500);
    chorus_timers_set (timers, "f4", "flow-timeout", 200);
    chorus_timers_set (timers, "f5", "flow-timeout", 400);
    is_int ((int64_t) chorus_timers_size (timers), 6, "six timers armed");
    is_int ((int64_t) chorus_timers_due (timers), 100, "the soonest is due at 100");
    ok (chorus_timers_pop (timers, 99, &flow, &key) == -1, "nothing pops before it is due");

    ok (chorus_timers_cancel (timers, "f5", "flow-timeout") == 0, "a timer in the middle is cancelled");
    ok (chorus_timers_cancel (timers, "f5", "flow-timeout") == -1, "not twice");
    ok (chorus_timers_cancel (timers, "f", "5flow-timeout") == -1,
        "flow and key are not confused with another pair");
    chorus_timers_set (timers, "f2", "flow-timeout", 250);
    is_int ((int64_t) chorus_timers_size (timers), 5, "setting a timer again supersedes it");
    is_int ((int64_t) chorus_timers_due (timers), 200, "and moves it");

    ok (s_pops (timers, 1000, "f3", "flow-timeout"), "200 first, set first");
    ok (s_pops (timers, 1000, "f4", "flow-timeout"), "then 200 set later");
    ok (s_pops (timers, 1000, "f2", "flow-timeout"), "then the moved one at 250");
    is_int ((int64_t) chorus_timers_cancel_flow (timers, "f1"), 2,
            "cancelling a flow cancels both its timers");
    is_int ((int64_t) chorus_timers_size (timers), 0, "none left");
    ok (chorus_timers_pop (timers, 1000, &flow, &key) == -1, "nothing pops");
    is_int ((int64_t) chorus_timers_cancel_flow (timers, "f1"), 0, "a flow without timers");
    chorus_timers_destroy (&timers);
    chorus_timers_destroy (&timers);
    ok (timers == NULL, "destroy is safe twice");

    //  Destroyed while holding timers: no leak under LeakSanitizer
    timers = chorus_timers_new ();
    chorus_timers_set (timers, "f1", "a", 1);
    chorus_timers_set (timers, "f1", "b", 2);
    chorus_timers_destroy (&timers);
}

//  --------------------------------------------------------------------------
//  Random operations against a reference: a table of every (flow, key),
//  searched whole for the soonest

#define FLOWS 20
#define KEYS 8

typedef struct {
    bool armed;                 //  set and not yet popped or cancelled
    uint64_t at;                //  when due
    uint64_t seq;               //  order set in
} s_ref_t;

static void
test_random (void)
{
    chorus_timers_t *timers = chorus_timers_new ();
    s_ref_t ref [FLOWS][KEYS];
    memset (ref, 0, sizeof (ref));
    uint64_t seq = 0, now = 0;
    size_t armed = 0;
    int mismatches = 0, pops = 0, ops = 100000;
    srandom (42);
    for (int op = 0; op < ops && mismatches < 5; op++) {
        int choice = (int) (random () % 100);
        int f = (int) (random () % FLOWS), k = (int) (random () % KEYS);
        char flow [16], key [16];
        snprintf (flow, sizeof (flow), "flow-%d", f);
        snprintf (key, sizeof (key), "key-%d", k);
        if (choice < 50) {
            //  Few distinct times, so that ties are common
            uint64_t at = now + (uint64_t) (random () % 50);
            chorus_timers_set (timers, flow, key, at);
            armed += !ref [f][k].armed;
            ref [f][k] = (s_ref_t) {true, at, seq++};
        }
        else
        if (choice < 65) {
            int rc = chorus_timers_cancel (timers, flow, key);
            if (rc != (ref [f][k].armed? 0: -1))
                mismatches++;
            armed -= ref [f][k].armed;
            ref [f][k].armed = false;
        }
        else
        if (choice < 70) {
            size_t count = 0;
            for (int i = 0; i < KEYS; i++) {
                count += ref [f][i].armed;
                ref [f][i].armed = false;
            }
            if (chorus_timers_cancel_flow (timers, flow) != count)
                mismatches++;
            armed -= count;
        }
        else {
            now += (uint64_t) (random () % 10);
            //  Pop everything due, checking each against the reference
            while (true) {
                int best_f = -1, best_k = -1;
                for (int i = 0; i < FLOWS; i++)
                    for (int j = 0; j < KEYS; j++) {
                        s_ref_t *r = &ref [i][j];
                        if (r->armed && r->at <= now
                        &&  (best_f < 0 || r->at < ref [best_f][best_k].at
                         ||  (r->at == ref [best_f][best_k].at
                          &&  r->seq < ref [best_f][best_k].seq))) {
                            best_f = i;
                            best_k = j;
                        }
                    }
                char *got_flow, *got_key;
                int rc = chorus_timers_pop (timers, now, &got_flow, &got_key);
                if (best_f < 0) {
                    if (rc == 0) {
                        mismatches++;
                        diag ("popped %s %s, expected nothing", got_flow, got_key);
                        free (got_flow);
                        free (got_key);
                    }
                    break;
                }
                char expected_flow [16], expected_key [16];
                snprintf (expected_flow, sizeof (expected_flow), "flow-%d", best_f);
                snprintf (expected_key, sizeof (expected_key), "key-%d", best_k);
                if (rc || !streq (got_flow, expected_flow) || !streq (got_key, expected_key)) {
                    mismatches++;
                    diag ("popped %s %s, expected %s %s", rc? "(none)": got_flow,
                          rc? "(none)": got_key, expected_flow, expected_key);
                }
                if (rc == 0) {
                    free (got_flow);
                    free (got_key);
                }
                ref [best_f][best_k].armed = false;
                armed--;
                pops++;
                if (rc)
                    break;
            }
        }
        if (chorus_timers_size (timers) != armed) {
            mismatches++;
            diag ("after operation %d: %zu timers, expected %zu", op,
                  chorus_timers_size (timers), armed);
        }
    }
    diag ("%d operations, %d timers popped", ops, pops);
    ok (pops > 1000, "random operations pop timers");
    is_int (mismatches, 0, "every pop, cancel and size matches the reference");
    chorus_timers_destroy (&timers);
}

int
main (void)
{
    test_by_hand ();
    test_random ();
    return done_testing ();
}
