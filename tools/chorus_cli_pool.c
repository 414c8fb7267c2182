/*  chorus_cli_pool.c — the handler processes of `chorus serve` and `chorus
    on`: a job per message, at most N children at once, jobs with the same
    key one at a time and in order, all polled with the node's socket so
    that the node's thread never waits for a child.
*/
#include "chorus_cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

//  How long a long-lived child that died young waits to be started again
#define S_RESTART_MS 1000
//  A long-lived child younger than this when it died is restarted after S_RESTART_MS
#define S_YOUNG_MS 1000

//  One message to handle
typedef struct {
    char *input;                //  its stdin (one job) or its request line (long-lived)
    size_t input_size;          //  bytes in input
    zlist_t *env;               //  NAME=VALUE for its environment (one job)
    const char *shell;          //  what runs it (one job)
    char *key;                  //  jobs with the same key run in order; NULL: any order
    uint64_t deadline;          //  not started after this (ms since the epoch); 0: none
    void *arg;                  //  the caller's
} s_job_t;

//  One place a child runs in
typedef struct {
    chorus_cli_child_t *child;  //  the running child, or NULL
    s_job_t *job;               //  the job it runs, or NULL while idle
    int64_t started;            //  when the child started (zclock_mono)
    int64_t restart_at;         //  a long-lived child starts again no sooner (zclock_mono)
} s_worker_t;

struct _chorus_cli_pool_t {
    int size;                   //  workers
    const char *persistent;     //  the long-lived children's command; NULL: one per job
    bool capture;               //  one per job: collect stdout and stderr
    chorus_cli_pool_fn *done;   //  called as each job ends
    void *arg;                  //  its argument
    s_worker_t *workers;        //  size of them
    zlistx_t *queue;            //  s_job_t not started, oldest first
    zhashx_t *keys;             //  keys of the running jobs
};

static void
s_job_destroy (s_job_t **job_p)
{
    s_job_t *job = *job_p;
    if (!job)
        return;
    free (job->input);
    zlist_destroy (&job->env);
    free (job->key);
    free (job);
    *job_p = NULL;
}

chorus_cli_pool_t *
chorus_cli_pool_new (int size, const char *persistent, bool capture, chorus_cli_pool_fn *done,
                     void *arg)
{
    chorus_cli_pool_t *self = calloc (1, sizeof (chorus_cli_pool_t));
    if (!self)
        return NULL;
    self->size = size > 0? size: 1;
    self->persistent = persistent;
    self->capture = capture;
    self->done = done;
    self->arg = arg;
    self->workers = calloc ((size_t) self->size, sizeof (s_worker_t));
    self->queue = zlistx_new ();
    self->keys = zhashx_new ();
    if (!self->workers || !self->queue || !self->keys)
        chorus_cli_pool_destroy (&self);
    return self;
}

void
chorus_cli_pool_destroy (chorus_cli_pool_t **self_p)
{
    chorus_cli_pool_t *self = *self_p;
    if (!self)
        return;
    for (int index = 0; self->workers && index < self->size; index++) {
        chorus_cli_child_destroy (&self->workers [index].child);
        s_job_destroy (&self->workers [index].job);
    }
    for (s_job_t *job = self->queue? zlistx_first (self->queue): NULL; job;
         job = zlistx_next (self->queue))
        s_job_destroy (&job);
    zlistx_destroy (&self->queue);
    zhashx_destroy (&self->keys);
    free (self->workers);
    free (self);
    *self_p = NULL;
}

int
chorus_cli_pool_add (chorus_cli_pool_t *self, const char *shell, zlist_t **env_p, char **input_p,
                     const char *key, uint64_t deadline, void *arg)
{
    s_job_t *job = calloc (1, sizeof (s_job_t));
    char *key_copy = key? strdup (key): NULL;
    if (!job || (key && !key_copy)) {
        free (job);
        free (key_copy);
        return -1;
    }
    job->input = *input_p;
    job->input_size = strlen (job->input);
    *input_p = NULL;
    job->env = env_p? *env_p: NULL;
    if (env_p)
        *env_p = NULL;
    job->shell = shell;
    job->key = key_copy;
    job->deadline = deadline;
    job->arg = arg;
    zlistx_add_end (self->queue, job);
    return 0;
}

//  Ends a job: the caller hears of it, and the next job of its key may start
static void
s_finish (chorus_cli_pool_t *self, s_job_t **job_p, chorus_cli_result_t *result)
{
    s_job_t *job = *job_p;
    if (job->key)
        zhashx_delete (self->keys, job->key);
    self->done (job->arg, result, self->arg);
    chorus_cli_shell_release (&result->shell);
    zstr_free (&result->line);
    s_job_destroy (job_p);
}

//  The oldest queued job that may start now: none of its key runs, and no
//  older one of its key waits
static s_job_t *
s_next_job (chorus_cli_pool_t *self)
{
    zhashx_t *passed = NULL;
    s_job_t *found = NULL;
    for (s_job_t *job = zlistx_first (self->queue); job; job = zlistx_next (self->queue)) {
        if (!job->key
            || (!zhashx_lookup (self->keys, job->key)
                && !(passed && zhashx_lookup (passed, job->key)))) {
            found = job;
            break;      //  the list's cursor stays on it, for zlistx_detach_cur
        }
        else {
            if (!passed)
                passed = zhashx_new ();
            zhashx_insert (passed, job->key, job);
        }
    }
    zhashx_destroy (&passed);
    if (found) {
        zlistx_detach_cur (self->queue);
        if (found->key)
            zhashx_insert (self->keys, found->key, found);
    }
    return found;
}

//  Starts a long-lived child where there is none
static void
s_start_persistent (chorus_cli_pool_t *self, s_worker_t *worker)
{
    if (worker->child || zclock_mono () < worker->restart_at)
        return;
    worker->child = chorus_cli_child_new (self->persistent, NULL, "", 0, CHORUS_CLI_CHILD_LINES);
    worker->started = zclock_mono ();
    worker->restart_at = 0;
    if (!worker->child) {
        zsys_error ("chorus: cannot start --persistent: %s", strerror (errno));
        worker->restart_at = zclock_mono () + S_RESTART_MS;
    }
}

//  Gives idle workers the jobs that may start
static void
s_start_jobs (chorus_cli_pool_t *self)
{
    for (int index = 0; index < self->size; index++) {
        s_worker_t *worker = &self->workers [index];
        if (self->persistent)
            s_start_persistent (self, worker);
        if (worker->job || (self->persistent && !worker->child))
            continue;
        s_job_t *job = s_next_job (self);
        if (!job)
            break;
        if (job->deadline && (uint64_t) zclock_time () > job->deadline) {
            //  Its sender has given up on it: running it now would only
            //  have effects nobody waits for
            chorus_cli_result_t result = { .started = false, .error = ETIMEDOUT };
            s_finish (self, &job, &result);
            index--;
            continue;
        }
        int rc;
        if (self->persistent)
            rc = chorus_cli_child_write (worker->child, job->input, job->input_size);
        else {
            worker->child = chorus_cli_child_new (job->shell, job->env, job->input,
                                                  job->input_size,
                                                  self->capture? CHORUS_CLI_CHILD_CAPTURE: 0);
            rc = worker->child? 0: -1;
        }
        if (rc) {
            chorus_cli_result_t result = { .started = false, .error = errno };
            s_finish (self, &job, &result);
        }
        else
            worker->job = job;
    }
}

//  A long-lived child died: its job, if any, fails; another takes its place
static void
s_persistent_died (chorus_cli_pool_t *self, s_worker_t *worker)
{
    chorus_cli_result_t result = { .started = true };
    chorus_cli_child_result (worker->child, &result.shell);
    chorus_cli_shell_release (&result.shell);
    zsys_warning ("chorus: the --persistent handler (pid %d) ended with status %d; starting "
                  "another", (int) chorus_cli_child_pid (worker->child), result.shell.status);
    if (zclock_mono () - worker->started < S_YOUNG_MS)
        worker->restart_at = zclock_mono () + S_RESTART_MS;
    chorus_cli_child_destroy (&worker->child);
    if (worker->job)
        s_finish (self, &worker->job, &result);
}

//  Takes what a child did since the last poll
static void
s_service (chorus_cli_pool_t *self, s_worker_t *worker, zmq_pollitem_t *items, int count)
{
    bool done = chorus_cli_child_service (worker->child, items, count);
    if (!self->persistent) {
        if (done) {
            chorus_cli_result_t result = { .started = true };
            chorus_cli_child_result (worker->child, &result.shell);
            chorus_cli_child_destroy (&worker->child);
            s_finish (self, &worker->job, &result);
        }
        return;
    }
    char *line;
    while ((line = chorus_cli_child_line (worker->child))) {
        if (worker->job) {
            chorus_cli_result_t result = { .started = true, .line = line };
            s_finish (self, &worker->job, &result);
        }
        else {
            zsys_warning ("chorus: the --persistent handler wrote a line no request asked for: "
                          "%.200s", line);
            free (line);
        }
    }
    if (!done && chorus_cli_child_overflow (worker->child)) {
        //  No line end in sight: the child is lost to the protocol
        zsys_warning ("chorus: the --persistent handler wrote a line longer than any reply");
        chorus_cli_child_kill (worker->child);
        done = true;
        while (!chorus_cli_child_service (worker->child, NULL, 0))
            zclock_sleep (1);
    }
    if (done)
        s_persistent_died (self, worker);
}

//  Jobs not started when we stop are not run: the caller answers them
static void
s_drop_queue (chorus_cli_pool_t *self)
{
    s_job_t *job;
    while ((job = zlistx_detach (self->queue, NULL))) {
        chorus_cli_result_t result = { .started = false };
        s_finish (self, &job, &result);
    }
}

static int
s_running (chorus_cli_pool_t *self)
{
    int running = 0;
    for (int index = 0; index < self->size; index++)
        running += self->workers [index].job != NULL;
    return running;
}

int
chorus_cli_pool_run (chorus_cli_pool_t *self, chorus_node_t *node)
{
    size_t room = 1 + (size_t) self->size * CHORUS_CLI_CHILD_ITEMS;
    zmq_pollitem_t *items = calloc (room, sizeof (zmq_pollitem_t));
    int *first = calloc ((size_t) self->size + 1, sizeof (int));
    if (!items || !first) {
        free (items);
        free (first);
        return -1;
    }
    int rc = 0;
    bool stopping = false;
    while (true) {
        if (!stopping && zsys_interrupted) {
            //  As chorus_node_run: the handlers running finish, the rest waits
            stopping = true;
            rc = -1;
            s_drop_queue (self);
        }
        if (stopping && s_running (self) == 0)
            break;
        s_start_jobs (self);
        int count = 0;
        items [count++] = (zmq_pollitem_t) { zsock_resolve (chorus_node_socket (node)), 0,
                                             stopping? 0: ZMQ_POLLIN, 0 };
        int timeout = 100;
        for (int index = 0; index < self->size; index++) {
            s_worker_t *worker = &self->workers [index];
            first [index] = count;
            if (worker->child) {
                count += chorus_cli_child_items (worker->child, items + count);
                if (!chorus_cli_child_polled (worker->child))
                    timeout = 5;
            }
            else
            if (self->persistent && worker->restart_at)
                timeout = 5;
        }
        first [self->size] = count;
        //  A signal ends the wait; the loop's top sees it
        zmq_poll (items, count, timeout);
        for (int index = 0; index < self->size; index++) {
            s_worker_t *worker = &self->workers [index];
            if (worker->child)
                s_service (self, worker, items + first [index], first [index + 1] - first [index]);
        }
        if (!stopping && chorus_node_dispatch (node) == -1
            && chorus_errno () == CHORUS_ECORRUPT) {
            stopping = true;
            rc = -2;
            s_drop_queue (self);
        }
    }
    free (items);
    free (first);
    return rc;
}
