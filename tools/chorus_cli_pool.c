/*  chorus_cli_pool.c — the handler processes of `chorus serve` and `chorus
    on`: a job per message, at most N at once, jobs with the same key one at
    a time and in order, all polled with the node's socket so that the
    node's thread never waits for a child. Either a child per job, or N
    long-lived children that take one request line at a time and answer it
    with one line (--persistent).
*/
#include "chorus_cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

//  A long-lived child that ends is replaced after this delay, which
//  doubles while its replacements end too, up to S_RESTART_MAX_MS
#define S_RESTART_MIN_MS 100
#define S_RESTART_MAX_MS 10000
//  A child that answered a request or ran this long starts the delay afresh
#define S_SETTLED_MS 10000
//  Most bytes of a stray line quoted in a warning
#define S_QUOTE_MAX 200

//  One message to handle
typedef struct {
    char *input;                //  its stdin (a child per job) or its request line
    size_t input_size;          //  bytes in input
    zlist_t *env;               //  NAME=VALUE for its environment (a child per job)
    const char *shell;          //  what runs it (a child per job)
    char *id;                   //  the id its reply line carries (long-lived children)
    char *key;                  //  jobs with the same key run in order; NULL: any order
    uint64_t deadline;          //  not started after this (ms since the epoch); 0: none
    void *arg;                  //  the caller's
} s_job_t;

//  One place a child runs in
typedef struct {
    chorus_cli_child_t *child;  //  the running child, or NULL
    s_job_t *job;               //  the job it runs, or NULL while idle
    int64_t started;            //  when the child started (zclock_mono)
    bool answered;              //  the child has answered a request
    bool killed;                //  we killed the child: what it writes now is no answer
    int64_t restart_at;         //  no long-lived child starts here before (zclock_mono)
    int restart_delay;          //  ms between this child's end and the next start
} s_worker_t;

struct _chorus_cli_pool_t {
    chorus_cli_t *cli;          //  names the subcommand in warnings
    int size;                   //  workers
    const char *persistent;     //  the long-lived children's command; NULL: one per job
    bool capture;               //  one per job: collect stdout and stderr
    chorus_cli_pool_fn *done;   //  called as each job ends
    void *arg;                  //  its argument
    s_worker_t *workers;        //  size of them
    zlistx_t *queue;            //  s_job_t not started, oldest first
    zhashx_t *keys;             //  keys of the running jobs
    bool stopping;              //  no job starts, no long-lived child is replaced
};

static void
s_job_destroy (s_job_t **job_p)
{
    s_job_t *job = *job_p;
    if (!job)
        return;
    free (job->input);
    zlist_destroy (&job->env);
    free (job->id);
    free (job->key);
    free (job);
    *job_p = NULL;
}

chorus_cli_pool_t *
chorus_cli_pool_new (chorus_cli_t *cli, int size, const char *persistent, bool capture,
                     chorus_cli_pool_fn *done, void *arg)
{
    chorus_cli_pool_t *self = calloc (1, sizeof (chorus_cli_pool_t));
    if (!self)
        return NULL;
    self->cli = cli;
    self->size = size > 0? size: 1;
    self->persistent = persistent;
    self->capture = capture;
    self->done = done;
    self->arg = arg;
    self->workers = calloc ((size_t) self->size, sizeof (s_worker_t));
    self->queue = zlistx_new ();
    self->keys = zhashx_new ();
    if (!self->workers || !self->queue || !self->keys) {
        chorus_cli_pool_destroy (&self);
        return NULL;
    }
    for (int index = 0; index < self->size; index++)
        self->workers [index].restart_delay = S_RESTART_MIN_MS;
    return self;
}

void
chorus_cli_pool_destroy (chorus_cli_pool_t **self_p)
{
    chorus_cli_pool_t *self = *self_p;
    if (!self)
        return;
    //  Every long-lived child is asked to end before we wait for any
    for (int index = 0; self->workers && index < self->size; index++)
        if (self->workers [index].child)
            chorus_cli_child_close (self->workers [index].child);
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
                     const char *id, const char *key, uint64_t deadline, void *arg)
{
    s_job_t *job = calloc (1, sizeof (s_job_t));
    char *key_copy = key? strdup (key): NULL;
    char *id_copy = strdup (id? id: "");
    if (!job || (key && !key_copy) || !id_copy) {
        free (job);
        free (key_copy);
        free (id_copy);
        return -1;
    }
    job->input = *input_p;
    job->input_size = strlen (job->input);
    *input_p = NULL;
    job->env = env_p? *env_p: NULL;
    if (env_p)
        *env_p = NULL;
    job->shell = shell;
    job->id = id_copy;
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
    json_decref (result->reply);
    result->reply = NULL;
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

//  A job no child has seen goes back to the head of the queue
static void
s_requeue (chorus_cli_pool_t *self, s_job_t *job)
{
    if (job->key)
        zhashx_delete (self->keys, job->key);
    zlistx_add_start (self->queue, job);
}

//  The next start waits twice as long, within bounds
static void
s_back_off (s_worker_t *worker)
{
    worker->restart_delay *= 2;
    if (worker->restart_delay > S_RESTART_MAX_MS)
        worker->restart_delay = S_RESTART_MAX_MS;
}

//  Starts the long-lived children that are due
static void
s_start_children (chorus_cli_pool_t *self)
{
    if (!self->persistent || self->stopping)
        return;
    int64_t now = zclock_mono ();
    for (int index = 0; index < self->size; index++) {
        s_worker_t *worker = &self->workers [index];
        if (worker->child || now < worker->restart_at)
            continue;
        worker->child = chorus_cli_child_new (self->persistent, NULL, "", 0,
                                              CHORUS_CLI_CHILD_LINES);
        worker->started = now;
        worker->answered = false;
        worker->killed = false;
        if (!worker->child) {
            chorus_cli_error (self->cli, "cannot start --persistent: %s; trying again in %d ms",
                              strerror (errno), worker->restart_delay);
            worker->restart_at = now + worker->restart_delay;
            s_back_off (worker);
        }
    }
}

//  Gives idle workers the jobs that may start
static void
s_start_jobs (chorus_cli_pool_t *self)
{
    for (int index = 0; index < self->size && !self->stopping; index++) {
        s_worker_t *worker = &self->workers [index];
        while (!worker->job && (self->persistent? worker->child && !worker->killed: true)) {
            s_job_t *job = s_next_job (self);
            if (!job)
                return;
            if (job->deadline && (uint64_t) zclock_time () > job->deadline) {
                //  Its sender has given up on it: running it now would only
                //  have effects nobody waits for
                chorus_cli_result_t result = { .started = false, .error = ETIMEDOUT };
                s_finish (self, &job, &result);
                continue;
            }
            if (self->persistent) {
                if (chorus_cli_child_write (worker->child, job->input, job->input_size)) {
                    //  Out of memory, or the child is ending: another takes it
                    s_requeue (self, job);
                    break;
                }
                worker->job = job;
                continue;
            }
            worker->child = chorus_cli_child_new (job->shell, job->env, job->input,
                                                  job->input_size,
                                                  self->capture? CHORUS_CLI_CHILD_CAPTURE: 0);
            if (worker->child)
                worker->job = job;
            else {
                chorus_cli_result_t result = { .started = false, .error = errno };
                s_finish (self, &job, &result);
            }
        }
    }
}

//  A long-lived child has ended: its job, if any, fails; another takes
//  its place after a delay
static void
s_persistent_ended (chorus_cli_pool_t *self, s_worker_t *worker)
{
    chorus_cli_result_t result = { .started = true, .pid = chorus_cli_child_pid (worker->child) };
    chorus_cli_child_result (worker->child, &result.shell);
    //  A Ctrl-C reaches the children with us: they end as we stop
    bool stopping = self->stopping || zsys_interrupted;
    int64_t now = zclock_mono ();
    if (worker->answered || now - worker->started >= S_SETTLED_MS)
        worker->restart_delay = S_RESTART_MIN_MS;
    if (!worker->killed && (worker->job || !stopping)) {
        char how [48];
        chorus_cli_status_text (result.shell.status, how, sizeof (how));
        if (stopping)
            chorus_cli_error (self->cli, "the --persistent handler (pid %d) %s before it answered",
                              (int) result.pid, how);
        else
            chorus_cli_error (self->cli, "the --persistent handler (pid %d) %s%s; another starts "
                              "in %d ms", (int) result.pid, how,
                              worker->job? " before it answered": "", worker->restart_delay);
    }
    worker->restart_at = now + worker->restart_delay;
    s_back_off (worker);
    chorus_cli_child_destroy (&worker->child);
    if (worker->job)
        s_finish (self, &worker->job, &result);
    else
        chorus_cli_shell_release (&result.shell);
}

//  A line from a long-lived child: the answer to its request, or a stray
static void
s_take_line (chorus_cli_pool_t *self, s_worker_t *worker, char *line)
{
    if (worker->killed) {
        free (line);
        return;
    }
    int pid = (int) chorus_cli_child_pid (worker->child);
    json_error_t error;
    json_t *reply = json_loads (line, JSON_REJECT_DUPLICATES, &error);
    const char *id = json_string_value (json_object_get (reply, "id"));
    if (!worker->job || (id && strcmp (id, worker->job->id) != 0)) {
        if (worker->job)
            chorus_cli_error (self->cli, "the --persistent handler (pid %d) answered a request it "
                              "does not have (id '%.*s'), while handling '%s'; line dropped",
                              pid, S_QUOTE_MAX, id, worker->job->id);
        else
            chorus_cli_error (self->cli, "the --persistent handler (pid %d) wrote a line while it "
                              "had no request; dropped: %.*s", pid, S_QUOTE_MAX, line);
        json_decref (reply);
        free (line);
        return;
    }
    worker->answered = true;
    chorus_cli_result_t result = { .started = true, .pid = pid, .line = line, .reply = reply,
                                   .json_error = error };
    s_finish (self, &worker->job, &result);
}

//  Takes what a child did since the last poll
static void
s_service (chorus_cli_pool_t *self, s_worker_t *worker, zmq_pollitem_t *items, int count)
{
    bool done = chorus_cli_child_service (worker->child, items, count);
    if (!self->persistent) {
        if (done) {
            chorus_cli_result_t result = { .started = true,
                                           .pid = chorus_cli_child_pid (worker->child) };
            chorus_cli_child_result (worker->child, &result.shell);
            chorus_cli_child_destroy (&worker->child);
            s_finish (self, &worker->job, &result);
        }
        return;
    }
    char *line;
    while (worker->child && (line = chorus_cli_child_line (worker->child)))
        s_take_line (self, worker, line);
    if (!done && !worker->killed && chorus_cli_child_overflow (worker->child)) {
        //  No line end in sight: the child is lost to the protocol
        int pid = (int) chorus_cli_child_pid (worker->child);
        chorus_cli_error (self->cli, "the --persistent handler (pid %d) wrote a line longer than "
                          "any reply (8 MiB); killed, another starts in %d ms", pid,
                          worker->restart_delay);
        chorus_cli_child_kill (worker->child);
        worker->killed = true;
        if (worker->job) {
            chorus_cli_result_t result = { .started = true, .pid = pid, .overflow = true };
            s_finish (self, &worker->job, &result);
        }
    }
    if (done)
        s_persistent_ended (self, worker);
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

//  How long the next poll may wait: children whose exit cannot be polled,
//  and long-lived children due to start, shorten it
static int
s_poll_timeout (chorus_cli_pool_t *self)
{
    int timeout = 100;
    int64_t now = zclock_mono ();
    for (int index = 0; index < self->size; index++) {
        s_worker_t *worker = &self->workers [index];
        int64_t wait = timeout;
        if (worker->child && !chorus_cli_child_polled (worker->child))
            wait = 5;
        else
        if (!worker->child && self->persistent && !self->stopping)
            wait = worker->restart_at > now? worker->restart_at - now: 0;
        if (wait < timeout)
            timeout = (int) wait;
    }
    return timeout;
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
    while (true) {
        if (!self->stopping && zsys_interrupted) {
            //  As chorus_node_run: the handlers running finish, the rest waits
            self->stopping = true;
            rc = -1;
            s_drop_queue (self);
        }
        if (self->stopping && s_running (self) == 0)
            break;
        s_start_children (self);
        s_start_jobs (self);
        int count = 0;
        items [count++] = (zmq_pollitem_t) { zsock_resolve (chorus_node_socket (node)), 0,
                                             self->stopping? 0: ZMQ_POLLIN, 0 };
        for (int index = 0; index < self->size; index++) {
            s_worker_t *worker = &self->workers [index];
            first [index] = count;
            if (worker->child)
                count += chorus_cli_child_items (worker->child, items + count);
        }
        first [self->size] = count;
        //  A signal ends the wait; the loop's top sees it
        zmq_poll (items, count, s_poll_timeout (self));
        for (int index = 0; index < self->size; index++) {
            s_worker_t *worker = &self->workers [index];
            if (worker->child)
                s_service (self, worker, items + first [index], first [index + 1] - first [index]);
        }
        if (!self->stopping && chorus_node_dispatch (node) == CHORUS_ECORRUPT) {
            self->stopping = true;
            rc = -2;
            s_drop_queue (self);
        }
    }
    free (items);
    free (first);
    return rc;
}
