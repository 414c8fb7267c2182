/*  chorus_flow_figures.c — what the coordinator's figures (/metrics) read
    of a flow: the tasks a transition ended, and when anything last
    happened to it. Part of the pure engine: it only reads a flow.
*/
#include "chorus_flow_private.h"

void
chorus_flow_ended_tasks (chorus_flow_t *self, chorus_flow_ended_fn *fn, void *arg)
{
    for (size_t i = 0; i < self->touched_size; i++) {
        chorus__touched_t *touched = &self->touched [i];
        if (touched->step >= self->steps_size
        ||  touched->task >= self->steps [touched->step].tasks_size)
            continue;
        chorus__task_t *task = &self->steps [touched->step].tasks [touched->task];
        if ((task->state != CHORUS_TASK_DONE && task->state != CHORUS_TASK_FAILED)
        ||  !task->started || task->finished < task->started)
            continue;
        const chorus_stepdef_t *step = chorus_flowdef_step (self->def, touched->step);
        if (step)
            fn (step->id, task->finished - task->started, task->state == CHORUS_TASK_DONE,
                arg);
    }
}

uint64_t
chorus_flow_last_change (chorus_flow_t *self)
{
    uint64_t last = self->started > self->finished? self->started: self->finished;
    for (size_t i = 0; i < self->steps_size; i++)
        for (size_t j = 0; j < self->steps [i].tasks_size; j++) {
            chorus__task_t *task = &self->steps [i].tasks [j];
            if (task->started > last)
                last = task->started;
            if (task->finished > last)
                last = task->finished;
        }
    for (size_t i = 0; i < self->mail_size; i++)
        if (self->mail [i].at > last)
            last = self->mail [i].at;
    return last;
}
