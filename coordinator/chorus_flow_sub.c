/*  chorus_flow_sub.c — the engine's side of sub-flows: a step with `flow:`
    runs a child flow (the coordinator starts it on the engine's
    CHORUS_ACTION_START_FLOW), whose end is told to its parent's task here;
    a completed child is undone when its parent compensates; the child
    knows its parent, and the journal keeps the link (chorus_flow_record.c).
*/
#include "chorus_flow_private.h"

#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  A child's end, told to its parent

int
chorus_flow_child_ended (chorus_flow_t *self, const char *key, chorus_flow_state_t child_state,
                         const void *output, size_t output_size, const json_t *output_json,
                         const char *error_message, uint64_t now, chorus_actions_t *out)
{
    bool undo = false;
    chorus__task_t *task = key? chorus__flow_find (self, key, &undo): NULL;
    if (!task || undo || !chorus_flowdef_step (self->def, task->step)->flow)
        return -1;
    bool compensated = child_state == CHORUS_FLOW_FAILED || child_state == CHORUS_FLOW_CANCELLED;
    if (task->state == CHORUS_TASK_RUNNING) {
        chorus_result_t result = { .ok = child_state == CHORUS_FLOW_COMPLETED };
        if (result.ok) {
            result.encoded = output;
            result.encoded_size = output_size;
            result.output = output? NULL: output_json? output_json: json_null ();
        }
        else
        if (compensated) {
            result.code = child_state == CHORUS_FLOW_FAILED? "flow-failed": "flow-cancelled";
            result.message = error_message;
        }
        else
            return -1;      //  still running, or stuck undoing: it ends later
        return chorus_flow_reply (self, key, task->attempt, &result, now, out);
    }
    if (task->state == CHORUS_TASK_UNDOING && !task->undo_waiting
    &&  (compensated || child_state == CHORUS_FLOW_STUCK)) {
        chorus_result_t result = { .ok = compensated, .code = "flow-stuck",
                                   .message = compensated? NULL: error_message };
        char *undo_key = chorus__format ("%s/undo", key);
        int rc = chorus_flow_reply (self, undo_key, task->undo_attempt, &result, now, out);
        free (undo_key);
        return rc;
    }
    return -1;
}

int
chorus_flow_undo (chorus_flow_t *self, uint64_t now, chorus_actions_t *out)
{
    if (self->state != CHORUS_FLOW_COMPLETED)
        return -1;
    self->state = CHORUS_FLOW_COMPENSATING;
    self->cancelled = true;
    self->finished = 0;
    chorus__set (&self->error_code, "compensated");
    chorus__set (&self->error_message, "its parent flow is undone");
    chorus__set (&self->error_step, NULL);
    chorus__value_clear (&self->output);
    self->output_dirty = true;
    chorus__flow_advance (self, now, out);
    return 0;
}

json_t *
chorus_flow_error_json (chorus_flow_t *self)
{
    return chorus__error_json (self->error_code, self->error_message, self->error_step);
}

void
chorus_flow_set_parent (chorus_flow_t *self, const char *parent, const char *key)
{
    chorus__set (&self->parent, parent);
    chorus__set (&self->parent_key, key);
}

const char *
chorus_flow_parent (chorus_flow_t *self)
{
    return self->parent;
}

const char *
chorus_flow_parent_key (chorus_flow_t *self)
{
    return self->parent_key;
}

const void *
chorus_flow_output (chorus_flow_t *self, size_t *size, json_t **json)
{
    const void *bytes = chorus__value_bytes (&self->output, size);
    *json = bytes? NULL: chorus__value_held (&self->output)? chorus__value_json (&self->output)
                                                           : NULL;
    return bytes;
}
