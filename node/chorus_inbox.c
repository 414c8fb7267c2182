/*  chorus_inbox.c — the receiving side of delivery (protocol section 7.4):
    an EVENT for our group is checked against the inbox and handed to the
    application; the application's results are recorded in the store, all
    of a turn in one write, and only then acknowledged or answered.
*/
#include "chorus_engine.h"

static void
s_ack (chorus__engine_t *self, chorus__peer_t *peer, chorus_msg_t *event, int status)
{
    //  One EVENT-ACK, refilled for each: no malloc per acknowledgement
    chorus_msg_t *ack = self->ack;
    char id [33];
    chorus__new_id (id);
    chorus_msg_set_group (ack, NULL);   //  so that the message's arena takes both back
    chorus_msg_set_id (ack, id);
    chorus_msg_set_group (ack, chorus_msg_group (event));
    chorus_msg_set_seq (ack, chorus_msg_seq (event));
    chorus_msg_set_status (ack, status);
    chorus__engine_answer (self, peer, ack);
}

//  "instance/seq": the key of an event the application holds; the instance
//  is the peer that sent it (the engine has checked)
static void
s_in_hand_key (chorus_msg_t *event, char key [128])
{
    size_t size = strlen (chorus_msg_instance (event));    //  at most 64
    memcpy (key, chorus_msg_instance (event), size);
    key [size] = '/';
    chorus__decimal (chorus_msg_seq (event), key + size + 1);
}

void
chorus__inbox_event (chorus__engine_t *self, chorus__peer_t *peer, chorus_msg_t **event_p)
{
    chorus_msg_t *event = *event_p;
    if (!streq (chorus_msg_group (event), self->config->service)) {
        chorus__engine_error (self, peer, event, "wrong-group", "this node is not in that group");
        return;
    }
    char key [128];
    s_in_hand_key (event, key);
    if (zhashx_lookup (self->events_in_hand, key))
        return;     //  a copy of an event the application is handling now
    int seen = chorus_store_inbox_has (self->store, chorus_msg_instance (event),
                                       chorus_msg_seq (event));
    if (seen == 1) {
        self->counters [C_DUPLICATES]++;
        s_ack (self, peer, event, CHORUS_ACK_DUPLICATE);
        return;
    }
    if (seen < 0) {
        chorus__engine_warn (self, W_STORE, "inbox: %s", chorus_store_error (self->store));
        return;     //  not acked: the publisher will try again
    }
    zhashx_insert (self->events_in_hand, key, (void *) 1);
    *event_p = NULL;
    chorus__engine_hand (self, 'E', event, NULL);
}

//  The application has run the handlers of an event: records it (into the
//  store batch begun by chorus__inbox_results)
static void
s_on_handled (chorus__engine_t *self, chorus_msg_t *event, int status)
{
    char key [128];
    s_in_hand_key (event, key);
    zhashx_delete (self->events_in_hand, key);
    if (status == CHORUS_ACK_HANDLED) {
        self->counters [C_HANDLED]++;
        if (chorus_store_inbox_add (self->store, chorus_msg_instance (event),
                                    chorus_msg_seq (event), chorus__now ()))
            chorus__engine_warn (self, W_STORE, "inbox: %s", chorus_store_error (self->store));
    }
}

//  After the commit: acknowledges, unless the record could not be written
static void
s_on_recorded (chorus__engine_t *self, chorus_msg_t *event, int status, bool recorded)
{
    if (recorded || status != CHORUS_ACK_HANDLED)
        s_ack (self, chorus__engine_peer (self, chorus_msg_instance (event)), event, status);
    //  else unrecorded, so unacknowledged: it comes again
    chorus_msg_destroy (&event);
}

#define S_WORK_BATCHES 64      //  result batches read from the application per turn

//  Reads the application's result batches into records; returns how many
static size_t
s_read_results (chorus__engine_t *self, chorus__work_t **records_p, size_t *max_p)
{
    size_t count = 0;
    zmsg_t *msg;
    for (int batches = 0; batches < S_WORK_BATCHES
                       && (msg = chorus__recv_ready (self->work)); batches++) {
        zframe_t *kind = zmsg_first (msg);
        zframe_t *frame = zmsg_next (msg);
        if (kind && frame && zframe_streq (kind, "B")) {
            size_t pos = 0;
            chorus__work_t record;
            const char *text;
            while (chorus__batch_next (zframe_data (frame), zframe_size (frame), &pos, &record,
                                       &text)) {
                if (count == *max_p) {
                    *max_p = *max_p? *max_p * 2: 256;
                    *records_p = (chorus__work_t *) realloc (*records_p,
                                                             *max_p * sizeof (chorus__work_t));
                    assert (*records_p);
                }
                (*records_p) [count++] = record;
            }
        }
        zmsg_destroy (&msg);
    }
    return count;
}

//  Results from the application: every inbox record and reply of the
//  turn goes to the store in one write, and only then are the EVENT-ACKs
//  and REPLYs sent (recorded before answered, one disk write per turn)
void
chorus__inbox_results (chorus__engine_t *self)
{
    size_t count = s_read_results (self, &self->results, &self->results_max);
    chorus__work_t *records = self->results;
    chorus_store_begin (self->store);
    for (size_t i = 0; i < count; i++) {
        chorus__work_t *record = &records [i];
        if (record->kind == 'A')
            s_on_handled (self, (chorus_msg_t *) record->first, (int) record->status);
        else
        if (record->kind == 'Y')
            chorus__commands_record (self->commands, (chorus_msg_t *) record->first,
                                     (chorus_msg_t *) record->second);
        else
        if (record->kind == 'o' && self->observer)
            chorus__observer_done (self->observer, (size_t) record->status);
    }
    bool recorded = chorus_store_commit (self->store) == 0;
    if (!recorded)
        chorus__engine_warn (self, W_STORE, "inbox: %s", chorus_store_error (self->store));
    for (size_t i = 0; i < count; i++) {
        chorus__work_t *record = &records [i];
        if (record->kind == 'A')
            s_on_recorded (self, (chorus_msg_t *) record->first, (int) record->status, recorded);
        else
        if (record->kind == 'Y') {
            self->counters [C_COMMANDS_HANDLED]++;
            chorus__commands_replied (self->commands, (chorus_msg_t *) record->first,
                                      (chorus_msg_t *) record->second);
        }
    }
}

