/*  chorus_await.h — what a flow receives for its await steps, its "mail":
    events matched to a step, and signals, kept (and journaled) until a
    step takes them, so that the order of an event and its step does not
    matter. The engine (chorus_flow.c) decides when a step starts, waits,
    completes or fails; this part keeps the mail, matches events, and
    writes and reads the mail in the flow's records. Private to the
    coordinator's engine.
*/
#ifndef CHORUS_AWAIT_H_INCLUDED
#define CHORUS_AWAIT_H_INCLUDED

#include "chorus_flow_private.h"

//  Adds a received event or signal (name and id copied), for step (-1: no
//  step yet), dirty; its payload is the caller's to set
chorus__mail_t *
    chorus__mail_add (chorus_flow_t *self, bool signal, const char *name, const char *id,
                      int step, uint64_t now);
//  The event kept for step `index` and not yet taken, or NULL
chorus__mail_t *
    chorus__mail_kept_for (chorus_flow_t *self, size_t index);
//  The first signal of this name that no step took, or NULL
chorus__mail_t *
    chorus__mail_signal_for (chorus_flow_t *self, const char *name);
//  Hands the mail's payload to the task as its output; the mail keeps that
//  the task's step took it
void
    chorus__mail_take (chorus_flow_t *self, chorus__task_t *task, chorus__mail_t *mail);
//  Whether the event (decoded) meets the step's match
bool
    chorus__await_matches (chorus_flow_t *self, const chorus_stepdef_t *def,
                           const json_t *event);
//  Frees the mail
void
    chorus__mail_clear (chorus_flow_t *self);
//  Whether a snapshot (all) or delta (changed) needs the mail field, and
//  writes it: [[index, signal, name, id, payload, step + 1, at], ...]
bool
    chorus__mail_pending (chorus_flow_t *self, bool all);
void
    chorus__mail_write (chorus_flow_t *self, chorus_record_t *record, bool all);
//  Reads it back (the caller bounds how much a flow holds); 0, or -1 with
//  the problem in the reader
int
    chorus__mail_read (chorus_flow_t *self, chorus_reader_t *reader);
//  The kept events and signals for a status or a save (new reference), or
//  NULL when there are none
json_t *
    chorus__mail_json (chorus_flow_t *self);

#endif
