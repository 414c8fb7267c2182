/*  chorus_task_state.h — the states of a flow's tasks, which the flow
    engine (chorus_flow) and its tasks (chorus_flow_task) share, and their
    names (defined with the tasks).
*/
#ifndef CHORUS_TASK_STATE_H_INCLUDED
#define CHORUS_TASK_STATE_H_INCLUDED

//  Task states
typedef enum {
    CHORUS_TASK_PENDING = 1,        //  not started
    CHORUS_TASK_RUNNING = 2,        //  command sent, awaiting its reply
    CHORUS_TASK_WAITING = 3,        //  failed a try, waiting for the backoff timer
    CHORUS_TASK_DONE = 4,           //  completed
    CHORUS_TASK_FAILED = 5,         //  failed for good
    CHORUS_TASK_UNDOING = 6,        //  its compensation is running
    CHORUS_TASK_UNDONE = 7,         //  compensated
    CHORUS_TASK_STUCK = 8,          //  its compensation failed for good
    CHORUS_TASK_SKIPPED = 9,        //  its step's `when` was false: done, with no output
} chorus_task_state_t;

//  The last state, for tables indexed by state
#define CHORUS_TASK_LAST CHORUS_TASK_SKIPPED

//  The state's name for operators: "pending", "running", ...
const char *
    chorus_task_state_name (chorus_task_state_t state);

#endif
