/*  chorus_coordinator_stats.c — the coordinator's series at /metrics (see
    the header). Labels are bounded: `flow` is a definition's name and
    `step` a step id of it, never a flow id or a business key.
*/
#include "chorus_coordinator_stats.h"

#include <czmq.h>
#include <pthread.h>

#define S_COPY_MS 1000          //  the figures are copied this often

static const double s_flow_bounds [] = {
    0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600
};
static const double s_step_bounds [] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300
};
#define S_BOUNDS(b) (sizeof (b) / sizeof ((b) [0]))
#define S_BUCKETS 17            //  the most bounds, plus +Inf

//  A histogram of the coordinator's thread: plain counts
typedef struct {
    uint64_t counts [S_BUCKETS];    //  per bucket, not cumulative; the last is +Inf
    uint64_t sum_ms;                //  the observations added up, in ms
} s_hist_t;

//  The series of one flow definition (by name)
typedef struct {
    char *name;                 //  the definition's name, owned by the live figures
    uint64_t running;           //  live flows running or compensating
    uint64_t stuck;             //  stuck flows (see the header)
    uint64_t started;           //  flows started
    uint64_t finished [3];      //  flows ended: completed, failed, cancelled
    uint64_t compensations;     //  compensations started
    s_hist_t duration;          //  from start to end of the flows that ended
} s_flow_t;

//  The series of one step of a definition
typedef struct {
    size_t flow;                //  its flow's index
    char *step;                 //  the step's id, owned by the live figures
    uint64_t retries;           //  tries after the first
    s_hist_t duration;          //  from first try to end of its tasks that ended
} s_step_t;

//  Figures: the live ones, or a snapshot of them
typedef struct {
    s_flow_t *flows;            //  by first sight
    size_t flows_size;          //  how many
    size_t flows_max;           //  allocated
    s_step_t *steps;            //  by first sight
    size_t steps_size;          //  how many
    size_t steps_max;           //  allocated
    uint64_t journal [CHORUS_JOURNAL_COMMIT_BOUNDS + 1];   //  commits by time
    uint64_t journal_sum_us;    //  their times added up
    bool journal_known;         //  a journal was read
} s_figures_t;

struct _chorus_coordinator_stats_t {
    s_figures_t live;           //  the coordinator thread's, no lock
    zhashx_t *flow_index;       //  flow name -> index + 1 in live.flows
    zhashx_t *step_index;       //  "flow step" -> index + 1 in live.steps
    uint64_t stuck_after_ms;    //  no change for this long: stuck
    uint64_t due;               //  when the figures are next copied
    pthread_mutex_t lock;       //  guards the snapshot
    s_figures_t snapshot;       //  what the scrape reads; names borrowed from live
};

chorus_coordinator_stats_t *
chorus_coordinator_stats_new (uint64_t stuck_after_ms)
{
    chorus_coordinator_stats_t *self =
        (chorus_coordinator_stats_t *) zmalloc (sizeof (chorus_coordinator_stats_t));
    self->flow_index = zhashx_new ();
    self->step_index = zhashx_new ();
    self->stuck_after_ms = stuck_after_ms;
    pthread_mutex_init (&self->lock, NULL);
    return self;
}

void
chorus_coordinator_stats_destroy (chorus_coordinator_stats_t **self_p)
{
    if (*self_p) {
        chorus_coordinator_stats_t *self = *self_p;
        for (size_t i = 0; i < self->live.flows_size; i++)
            free (self->live.flows [i].name);
        for (size_t i = 0; i < self->live.steps_size; i++)
            free (self->live.steps [i].step);
        free (self->live.flows);
        free (self->live.steps);
        free (self->snapshot.flows);
        free (self->snapshot.steps);
        zhashx_destroy (&self->flow_index);
        zhashx_destroy (&self->step_index);
        pthread_mutex_destroy (&self->lock);
        free (self);
        *self_p = NULL;
    }
}

static void
s_observe (s_hist_t *hist, const double *bounds, size_t size, uint64_t ms)
{
    size_t bucket = 0;
    while (bucket < size && (double) ms > bounds [bucket] * 1000)
        bucket++;
    hist->counts [bucket]++;
    hist->sum_ms += ms;
}

static void *
s_grow (void *items, size_t size, size_t *max, size_t item_size)
{
    if (size < *max)
        return items;
    *max = *max? *max * 2: 16;
    void *grown = realloc (items, *max * item_size);
    if (!grown)
        abort ();
    return grown;
}

//  The series of a flow definition, made at first sight
static s_flow_t *
s_flow (chorus_coordinator_stats_t *self, const char *name)
{
    size_t index = (size_t) zhashx_lookup (self->flow_index, name);
    if (index)
        return &self->live.flows [index - 1];
    s_figures_t *live = &self->live;
    live->flows = (s_flow_t *) s_grow (live->flows, live->flows_size, &live->flows_max,
                                       sizeof (s_flow_t));
    s_flow_t *flow = &live->flows [live->flows_size++];
    memset (flow, 0, sizeof (*flow));
    flow->name = strdup (name);
    zhashx_insert (self->flow_index, name, (void *) live->flows_size);
    return flow;
}

//  The series of a step of a flow definition, made at first sight
static s_step_t *
s_step (chorus_coordinator_stats_t *self, const char *flow, const char *step)
{
    char key [160];
    snprintf (key, sizeof (key), "%s %s", flow, step);
    size_t index = (size_t) zhashx_lookup (self->step_index, key);
    if (index)
        return &self->live.steps [index - 1];
    size_t flow_index = (size_t) (s_flow (self, flow) - self->live.flows);
    s_figures_t *live = &self->live;
    live->steps = (s_step_t *) s_grow (live->steps, live->steps_size, &live->steps_max,
                                       sizeof (s_step_t));
    s_step_t *series = &live->steps [live->steps_size++];
    memset (series, 0, sizeof (*series));
    series->flow = flow_index;
    series->step = strdup (step);
    zhashx_insert (self->step_index, key, (void *) live->steps_size);
    return series;
}

typedef struct {
    chorus_coordinator_stats_t *self;
    const char *flow;           //  the definition's name
} s_ended_t;

static void
s_task_ended (const char *step, uint64_t duration_ms, bool done, void *arg)
{
    s_ended_t *ended = (s_ended_t *) arg;
    s_step_t *series = s_step (ended->self, ended->flow, step);
    s_observe (&series->duration, s_step_bounds, S_BOUNDS (s_step_bounds), duration_ms);
    (void) done;
}

//  The step id in a task key, "FLOW/STEP[/ITEM][:rN][/undo]", into step;
//  false when it is not a step of the definition
static bool
s_key_step (chorus_flowdef_t *def, const char *key, char *step, size_t step_size)
{
    const char *from = strchr (key, '/');
    if (!from)
        return false;
    from++;
    size_t length = strcspn (from, "/:");
    if (!length || length >= step_size)
        return false;
    memcpy (step, from, length);
    step [length] = 0;
    return chorus_flowdef_step_index (def, step) >= 0;
}

static bool
s_undo_key (const char *key)
{
    size_t length = strlen (key);
    return length > 5 && streq (key + length - 5, "/undo");
}

void
chorus_coordinator_stats_moved (chorus_coordinator_stats_t *self, chorus_flow_t *flow,
                                const chorus_actions_t *actions, bool started)
{
    chorus_flowdef_t *def = chorus_flow_def (flow);
    const char *name = chorus_flowdef_name (def);
    if (started)
        s_flow (self, name)->started++;
    for (size_t i = 0; i < actions->size; i++) {
        const chorus_action_t *action = &actions->items [i];
        char step [80];
        if (action->kind == CHORUS_ACTION_SEND && s_undo_key (action->key)) {
            if (action->attempt <= 1)
                s_flow (self, name)->compensations++;
        }
        else
        if (action->kind == CHORUS_ACTION_SEND && action->attempt > 1
        &&  s_key_step (def, action->key, step, sizeof (step)))
            s_step (self, name, step)->retries++;
        else
        if (action->kind == CHORUS_ACTION_UNDO_FLOW)
            s_flow (self, name)->compensations++;
    }
    s_ended_t ended = {self, name};
    chorus_flow_ended_tasks (flow, s_task_ended, &ended);
    if (chorus_flow_finished (flow)) {
        chorus_flow_state_t state = chorus_flow_state (flow);
        s_flow_t *series = s_flow (self, name);
        series->finished [state == CHORUS_FLOW_COMPLETED? 0:
                          state == CHORUS_FLOW_FAILED? 1: 2]++;
        uint64_t from = chorus_flow_started_at (flow), to = chorus_flow_finished_at (flow);
        s_observe (&series->duration, s_flow_bounds, S_BOUNDS (s_flow_bounds),
                   to > from? to - from: 0);
    }
}

bool
chorus_coordinator_stats_due (chorus_coordinator_stats_t *self, uint64_t now)
{
    if (now < self->due)
        return false;
    //  Counted afresh
    for (size_t i = 0; i < self->live.flows_size; i++)
        self->live.flows [i].running = self->live.flows [i].stuck = 0;
    return true;
}

void
chorus_coordinator_stats_live (chorus_coordinator_stats_t *self, chorus_flow_t *flow,
                               uint64_t changed, uint64_t now)
{
    s_flow_t *series = s_flow (self, chorus_flowdef_name (chorus_flow_def (flow)));
    if (chorus_flow_state (flow) == CHORUS_FLOW_STUCK)
        series->stuck++;
    else {
        series->running++;
        if (now > changed && now - changed >= self->stuck_after_ms)
            series->stuck++;
    }
}

void
chorus_coordinator_stats_copy (chorus_coordinator_stats_t *self, chorus_journal_t *journal,
                               uint64_t now)
{
    self->due = now + S_COPY_MS;
    if (journal) {
        chorus_journal_commit_times (journal, self->live.journal, &self->live.journal_sum_us);
        self->live.journal_known = true;
    }
    s_figures_t *live = &self->live, *copy = &self->snapshot;
    pthread_mutex_lock (&self->lock);
    if (copy->flows_max < live->flows_size) {
        copy->flows = (s_flow_t *) realloc (copy->flows, live->flows_max * sizeof (s_flow_t));
        copy->flows_max = live->flows_max;
    }
    if (copy->steps_max < live->steps_size) {
        copy->steps = (s_step_t *) realloc (copy->steps, live->steps_max * sizeof (s_step_t));
        copy->steps_max = live->steps_max;
    }
    if ((live->flows_size && !copy->flows) || (live->steps_size && !copy->steps))
        abort ();
    if (live->flows_size)
        memcpy (copy->flows, live->flows, live->flows_size * sizeof (s_flow_t));
    if (live->steps_size)
        memcpy (copy->steps, live->steps, live->steps_size * sizeof (s_step_t));
    copy->flows_size = live->flows_size;
    copy->steps_size = live->steps_size;
    memcpy (copy->journal, live->journal, sizeof (copy->journal));
    copy->journal_sum_us = live->journal_sum_us;
    copy->journal_known = live->journal_known;
    pthread_mutex_unlock (&self->lock);
}

//  Writes a histogram's samples; scale turns its sum into seconds
static void
s_write_hist (chorus_exposition_t *out, const char *name, const char **labels, size_t labelled,
              const uint64_t *counts, const double *bounds, size_t size, double sum)
{
    char series [96], le [32];
    const char *with [8];
    for (size_t i = 0; i < labelled * 2; i++)
        with [i] = labels [i];
    with [labelled * 2] = "le";
    with [labelled * 2 + 1] = le;
    with [labelled * 2 + 2] = NULL;
    snprintf (series, sizeof (series), "%s_bucket", name);
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= size; i++) {
        cumulative += counts [i];
        if (i < size)
            snprintf (le, sizeof (le), "%g", bounds [i]);
        else
            snprintf (le, sizeof (le), "+Inf");
        chorus_exposition_sample (out, series, with, (double) cumulative);
    }
    with [labelled * 2] = NULL;
    snprintf (series, sizeof (series), "%s_sum", name);
    chorus_exposition_sample (out, series, with, sum);
    snprintf (series, sizeof (series), "%s_count", name);
    chorus_exposition_sample (out, series, with, (double) cumulative);
}

void
chorus_coordinator_stats_render (chorus_exposition_t *out, void *arg)
{
    chorus_coordinator_stats_t *self = (chorus_coordinator_stats_t *) arg;
    pthread_mutex_lock (&self->lock);
    s_figures_t *copy = &self->snapshot;
    chorus_exposition_family (out, "chorus_flows_started_total", "counter",
                              "Flows this coordinator started, by definition");
    for (size_t i = 0; i < copy->flows_size; i++) {
        const char *labels [] = {"flow", copy->flows [i].name, NULL};
        chorus_exposition_sample (out, "chorus_flows_started_total", labels,
                                  (double) copy->flows [i].started);
    }
    chorus_exposition_family (out, "chorus_flows_finished_total", "counter",
                              "Flows that ended, by definition and outcome (a retried flow "
                              "ends again)");
    static const char *outcomes [] = {"completed", "failed", "cancelled"};
    for (size_t i = 0; i < copy->flows_size; i++)
        for (size_t o = 0; o < 3; o++) {
            const char *labels [] = {"flow", copy->flows [i].name, "outcome", outcomes [o],
                                     NULL};
            chorus_exposition_sample (out, "chorus_flows_finished_total", labels,
                                      (double) copy->flows [i].finished [o]);
        }
    chorus_exposition_family (out, "chorus_flows_running", "gauge",
                              "Flows running or compensating, by definition");
    for (size_t i = 0; i < copy->flows_size; i++) {
        const char *labels [] = {"flow", copy->flows [i].name, NULL};
        chorus_exposition_sample (out, "chorus_flows_running", labels,
                                  (double) copy->flows [i].running);
    }
    chorus_exposition_family (out, "chorus_flows_stuck", "gauge",
                              "Flows in state stuck (a compensation failed for good), and "
                              "running flows nothing happened to for --stuck-after seconds, "
                              "by definition");
    for (size_t i = 0; i < copy->flows_size; i++) {
        const char *labels [] = {"flow", copy->flows [i].name, NULL};
        chorus_exposition_sample (out, "chorus_flows_stuck", labels,
                                  (double) copy->flows [i].stuck);
    }
    chorus_exposition_family (out, "chorus_compensations_total", "counter",
                              "Compensations started (of a step's task or a child flow), by "
                              "definition");
    for (size_t i = 0; i < copy->flows_size; i++) {
        const char *labels [] = {"flow", copy->flows [i].name, NULL};
        chorus_exposition_sample (out, "chorus_compensations_total", labels,
                                  (double) copy->flows [i].compensations);
    }
    chorus_exposition_family (out, "chorus_flow_duration_seconds", "histogram",
                              "Time from a flow's start to its end, of the flows that ended");
    for (size_t i = 0; i < copy->flows_size; i++) {
        const char *labels [] = {"flow", copy->flows [i].name, NULL};
        s_write_hist (out, "chorus_flow_duration_seconds", labels, 1,
                      copy->flows [i].duration.counts, s_flow_bounds,
                      S_BOUNDS (s_flow_bounds), (double) copy->flows [i].duration.sum_ms / 1000);
    }
    chorus_exposition_family (out, "chorus_step_retries_total", "counter",
                              "Tries of a step's command after the first, by definition and "
                              "step");
    for (size_t i = 0; i < copy->steps_size; i++) {
        const char *labels [] = {"flow", copy->flows [copy->steps [i].flow].name, "step",
                                 copy->steps [i].step, NULL};
        chorus_exposition_sample (out, "chorus_step_retries_total", labels,
                                  (double) copy->steps [i].retries);
    }
    chorus_exposition_family (out, "chorus_step_duration_seconds", "histogram",
                              "Time from a task's first try to its end (done or failed), by "
                              "definition and step");
    for (size_t i = 0; i < copy->steps_size; i++) {
        const char *labels [] = {"flow", copy->flows [copy->steps [i].flow].name, "step",
                                 copy->steps [i].step, NULL};
        s_write_hist (out, "chorus_step_duration_seconds", labels, 2,
                      copy->steps [i].duration.counts, s_step_bounds,
                      S_BOUNDS (s_step_bounds), (double) copy->steps [i].duration.sum_ms / 1000);
    }
    if (copy->journal_known) {
        chorus_exposition_family (out, "chorus_journal_commit_duration_seconds", "histogram",
                                  "Time the journal's writer took to commit a batch (and "
                                  "flush it, for flow state)");
        s_write_hist (out, "chorus_journal_commit_duration_seconds", NULL, 0, copy->journal,
                      chorus_journal_commit_bounds, CHORUS_JOURNAL_COMMIT_BOUNDS,
                      (double) copy->journal_sum_us / 1e6);
    }
    pthread_mutex_unlock (&self->lock);
}
