/*  bench_fanout.c — one flow fanned out over many items, beside the same
    commands sent straight to the services. A chorus-coordinator process
    of its own runs a flow whose one step has `for_each` over N items,
    through K instances of a service whose handler waits a fixed time per
    item (work that does not take the CPU: the 2-core machine is shared
    with the coordinator) and answers an output of a fixed size.

    Baseline (the services' own time): the same N commands, with the same
    payloads, sent at once by a plain client to the same K instances, from
    the first send to the last reply. Measured: the flow's completion time
    (its finished - started, as the coordinator reports them), the
    coordinator's peak RSS (VmHWM of /proc/PID/status) and the latency of
    `flow.list`, sent every 200 ms throughout by another client (each poll
    on its own, not waiting for the one before; one still unanswered at
    the end counts with the time it waited).
    Usage: bench_fanout --coordinator PATH [--items N] [--max-parallel M]
                        [--instances K] [--work-ms W] [--output-bytes B]
                        [--deadline S] [--json FILE]
*/
#include "chorus.h"
#include "bench_json.h"

#include <czmq.h>
#include <jansson.h>

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#define POLL_EVERY_MS 200   //  flow.list polls
#define MAX_POLLS 20000

static int s_work_ms = 2;
static int s_output_bytes = 200;

static int
s_compare (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y? -1: x > y;
}

//  --------------------------------------------------------------------------
//  The service: K instances, each a node in a thread of its own, each
//  handling one command at a time

static void
s_on_work (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    zclock_sleep (s_work_ms);
    char *text = NULL;
    chorus_payload_to_json (chorus_command_payload (command), chorus_command_size (command), 0,
                            &text, NULL, 0);
    char *pad = (char *) malloc ((size_t) s_output_bytes + 1);
    memset (pad, 'x', (size_t) s_output_bytes);
    pad [s_output_bytes] = 0;
    char *json = zsys_sprintf ("{\"in\": %s, \"pad\": \"%s\"}", text? text: "null", pad);
    void *data;
    size_t size;
    char error [64];
    if (chorus_payload_from_json (json, strlen (json), 0, &data, &size, error, sizeof (error)) == 0) {
        chorus_reply_set_payload (reply, data, size);
        free (data);
    }
    zstr_free (&json);
    free (pad);
    free (text);
}

typedef struct {
    chorus_node_t *node;        //  this instance
    volatile bool stop;         //  set to end the thread
} instance_t;

static void *
s_instance (void *arg)
{
    instance_t *instance = (instance_t *) arg;
    zpoller_t *poller = zpoller_new (chorus_node_socket (instance->node), NULL);
    while (!instance->stop) {
        zpoller_wait (poller, 20);
        chorus_node_dispatch (instance->node);
    }
    zpoller_destroy (&poller);
    return NULL;
}

//  --------------------------------------------------------------------------
//  The baseline: N commands at once from a plain client

static int s_baseline_done;

static void
s_on_baseline_reply (chorus_node_t *node, chorus_reply_t *reply, void *arg)
{
    s_baseline_done++;
}

static double
s_run_baseline (chorus_node_t *client, int items, int deadline_s)
{
    s_baseline_done = 0;
    int64_t start = zclock_mono ();
    for (int i = 0; i < items; i++) {
        char json [32];
        snprintf (json, sizeof (json), "{\"item\": %d}", i);
        void *data;
        size_t size;
        chorus_payload_from_json (json, strlen (json), 0, &data, &size, NULL, 0);
        chorus_node_send (client, "work", "work", data, size, deadline_s * 1000,
                          s_on_baseline_reply, NULL);
        free (data);
    }
    zpoller_t *poller = zpoller_new (chorus_node_socket (client), NULL);
    while (s_baseline_done < items && zclock_mono () - start < deadline_s * 1000) {
        zpoller_wait (poller, 20);
        chorus_node_dispatch (client);
    }
    zpoller_destroy (&poller);
    return s_baseline_done == items? (zclock_mono () - start) / 1000.0: -1;
}

//  --------------------------------------------------------------------------
//  flow.list polls: each sent on its own, its latency kept

typedef struct {
    int64_t sent [MAX_POLLS];   //  when, ms
    int64_t latency [MAX_POLLS];//  ms, -1: not answered yet
    int count;                  //  sent
    int answered;               //  answered, with success
    char state [32];            //  the flow's state in the last answer
    int64_t started;            //  and its times, 0: none
    int64_t finished;
} polls_t;

static polls_t *s_polls;

static void
s_on_poll (chorus_node_t *node, chorus_reply_t *reply, void *arg)
{
    int index = (int) (intptr_t) arg;
    if (chorus_reply_status (reply) != 0)
        return;         //  a poll that timed out keeps the time it waited
    s_polls->latency [index] = zclock_mono () - s_polls->sent [index];
    s_polls->answered++;
    char *text = NULL;
    chorus_payload_to_json (chorus_reply_payload (reply), chorus_reply_size (reply), 0, &text,
                            NULL, 0);
    json_t *list = text? json_loads (text, 0, NULL): NULL;
    json_t *flow = json_array_get (list, 0);
    if (flow) {
        snprintf (s_polls->state, sizeof (s_polls->state), "%s",
                  json_string_value (json_object_get (flow, "state")));
        s_polls->started = json_integer_value (json_object_get (flow, "started"));
        s_polls->finished = json_integer_value (json_object_get (flow, "finished"));
    }
    json_decref (list);
    free (text);
}

//  --------------------------------------------------------------------------
//  The coordinator, a process of its own

static long
s_status_kb (pid_t pid, const char *field)
{
    char path [64], line [256];
    snprintf (path, sizeof (path), "/proc/%d/status", (int) pid);
    FILE *file = fopen (path, "r");
    long kb = -1;
    size_t length = strlen (field);
    while (file && fgets (line, sizeof (line), file))
        if (strncmp (line, field, length) == 0 && line [length] == ':')
            kb = atol (line + length + 1);
    if (file)
        fclose (file);
    return kb;
}

typedef struct {
    double seconds;             //  flow completion, -1: it did not complete
    double peak_rss_mb;         //  VmHWM
    int64_t list_max_ms;        //  flow.list latency
    int64_t list_p99_ms;
    int polls;                  //  sent
    int answered;               //  answered
} result_t;

static result_t
s_run_flow (const char *coordinator, const char *root, const char *seed, chorus_node_t *driver,
            int items, int max_parallel, int deadline_s)
{
    result_t result = {-1, 0, 0, 0, 0, 0};
    char dir [600], path [700];
    snprintf (dir, sizeof (dir), "%s/run-%d", root, max_parallel);
    zsys_dir_create ("%s/flows", dir);
    snprintf (path, sizeof (path), "%s/flows/fanout.yaml", dir);
    FILE *file = fopen (path, "w");
    fprintf (file, "flow: fanout\nversion: 1\ntrigger: fanout.start\nsteps:\n"
             "  - id: each\n    service: work\n    command: work\n"
             "    for_each: $.input.items\n    input: { item: $.item }\n    timeout: 10m\n");
    if (max_parallel > 0)
        fprintf (file, "    max_parallel: %d\n", max_parallel);
    fclose (file);
    char flows [700], store [700];
    snprintf (flows, sizeof (flows), "%s/flows", dir);
    snprintf (store, sizeof (store), "%s/store", dir);
    pid_t pid = fork ();
    if (pid == 0) {
        execl (coordinator, coordinator, "--flows", flows, "--store", store, "--seed", seed,
               (char *) NULL);
        _exit (127);
    }
    //  The coordinator has joined when it answers
    polls_t *polls = (polls_t *) calloc (1, sizeof (polls_t));
    free (s_polls);     //  the last run's sink for late answers
    s_polls = polls;
    zpoller_t *poller = zpoller_new (chorus_node_socket (driver), NULL);
    int64_t joined_by = zclock_mono () + 20000;
    while (polls->answered == 0 && zclock_mono () < joined_by) {
        if (polls->count < MAX_POLLS) {
            polls->sent [polls->count] = zclock_mono ();
            polls->latency [polls->count] = -1;
            chorus_node_send (driver, "coordinator", "flow.list", NULL, 0, 1000, s_on_poll,
                              (void *) (intptr_t) polls->count);
            polls->count++;
        }
        chorus_node_run (driver, 200);
    }
    //  Wait for its trigger subscription to reach us, then trigger the flow
    chorus_node_run (driver, 1000);
    memset (polls, 0, sizeof (polls_t));
    json_t *list = json_array ();
    for (int i = 0; i < items; i++)
        json_array_append_new (list, json_integer (i));
    json_t *request = json_pack ("{s:o}", "items", list);
    char *input = json_dumps (request, JSON_COMPACT);
    json_decref (request);
    void *data;
    size_t size;
    char error [128];
    if (chorus_payload_from_json (input, strlen (input), 0, &data, &size, error, sizeof (error))) {
        fprintf (stderr, "bench_fanout: %s\n", error);
        exit (1);
    }
    free (input);
    chorus_node_publish (driver, "fanout.start", "fanout", data, size);
    free (data);
    int64_t start = zclock_mono (), next_poll = start;
    while (zclock_mono () - start < deadline_s * 1000) {
        int64_t now = zclock_mono ();
        if (now >= next_poll && polls->count < MAX_POLLS) {
            polls->sent [polls->count] = now;
            polls->latency [polls->count] = -1;
            chorus_node_send (driver, "coordinator", "flow.list", NULL, 0, deadline_s * 1000,
                              s_on_poll, (void *) (intptr_t) polls->count);
            polls->count++;
            next_poll += POLL_EVERY_MS;
        }
        zpoller_wait (poller, (int) (next_poll > now? next_poll - now: 0));
        chorus_node_dispatch (driver);
        if (strcmp (polls->state, "completed") == 0)
            break;
    }
    int64_t end = zclock_mono ();
    long hwm = s_status_kb (pid, "VmHWM");
    kill (pid, SIGTERM);
    waitpid (pid, NULL, 0);
    zpoller_destroy (&poller);
    if (strcmp (polls->state, "completed") == 0)
        result.seconds = (polls->finished - polls->started) / 1000.0;
    result.peak_rss_mb = hwm / 1024.0;
    for (int i = 0; i < polls->count; i++)
        if (polls->latency [i] < 0)
            polls->latency [i] = end - polls->sent [i];
    qsort (polls->latency, (size_t) polls->count, sizeof (int64_t), s_compare);
    result.polls = polls->count;
    result.answered = polls->answered;
    if (polls->count) {
        result.list_max_ms = polls->latency [polls->count - 1];
        result.list_p99_ms = polls->latency [(polls->count * 99) / 100];
    }
    //  Polls still in flight are answered by a timeout later: not counted
    s_polls = (polls_t *) calloc (1, sizeof (polls_t));
    free (polls);
    return result;
}

int
main (int argc, char **argv)
{
    int items = 5000, max_parallel = 0, instances = 4, deadline_s = 300;
    const char *json_path = NULL, *coordinator = NULL;
    static struct option options [] = {{"items", required_argument, 0, 'i'},
                                       {"max-parallel", required_argument, 0, 'm'},
                                       {"instances", required_argument, 0, 'k'},
                                       {"work-ms", required_argument, 0, 'w'},
                                       {"output-bytes", required_argument, 0, 'o'},
                                       {"deadline", required_argument, 0, 'd'},
                                       {"coordinator", required_argument, 0, 'c'},
                                       {"json", required_argument, 0, 'j'}, {0, 0, 0, 0}};
    int option;
    while ((option = getopt_long (argc, argv, "", options, NULL)) != -1)
        switch (option) {
            case 'i': items = atoi (optarg); break;
            case 'm': max_parallel = atoi (optarg); break;
            case 'k': instances = atoi (optarg); break;
            case 'w': s_work_ms = atoi (optarg); break;
            case 'o': s_output_bytes = atoi (optarg); break;
            case 'd': deadline_s = atoi (optarg); break;
            case 'c': coordinator = optarg; break;
            case 'j': json_path = optarg; break;
            default: return 2;
        }
    if (!coordinator || items < 1 || instances < 1 || instances > 64) {
        fprintf (stderr, "usage: bench_fanout --coordinator PATH [--items N] [--max-parallel M] "
                 "[--instances K] [--work-ms W] [--output-bytes B] [--deadline S] "
                 "[--json FILE]\n");
        return 2;
    }
    char root [] = "/tmp/chorus-bench-fanout-XXXXXX";
    if (!mkdtemp (root))
        return 1;
    chorus_node_t *driver = chorus_node_new ("bench-driver");
    chorus_node_start (driver);
    const char *seed = chorus_node_endpoint (driver);
    instance_t *instance = (instance_t *) calloc ((size_t) instances, sizeof (instance_t));
    pthread_t *threads = (pthread_t *) calloc ((size_t) instances, sizeof (pthread_t));
    for (int i = 0; i < instances; i++) {
        instance [i].node = chorus_node_new ("work");
        chorus_node_add_seed (instance [i].node, seed);
        chorus_node_handle (instance [i].node, "work", s_on_work, NULL);
        chorus_node_start (instance [i].node);
    }
    chorus_node_t *client = chorus_node_new ("bench-client");
    chorus_node_add_seed (client, seed);
    chorus_node_start (client);
    while (chorus_node_peers (client, NULL, NULL) < instances + 1)
        chorus_node_run (client, 20);
    for (int i = 0; i < instances; i++)
        pthread_create (&threads [i], NULL, s_instance, &instance [i]);

    double baseline = s_run_baseline (client, items, deadline_s);
    s_polls = (polls_t *) calloc (1, sizeof (polls_t));
    result_t free_run = s_run_flow (coordinator, root, seed, driver, items, 0, deadline_s);
    result_t bounded = {-1, 0, 0, 0, 0, 0};
    if (max_parallel > 0)
        bounded = s_run_flow (coordinator, root, seed, driver, items, max_parallel, deadline_s);

    printf ("%d items, %d instances, %d ms of work and a %d-byte output per item\n", items,
            instances, s_work_ms, s_output_bytes);
    printf ("baseline: the same %d commands sent at once by a client, first send to last reply: "
            "%.2f s\n", items, baseline);
    printf ("%-28s %10s %8s %12s %14s %14s %8s\n", "run", "flow s", "ratio", "peak RSS MB",
            "list max ms", "list p99 ms", "answered");
    result_t *runs [2] = {&free_run, &bounded};
    const char *names [2] = {"no max_parallel", "max_parallel"};
    bench_json_t *json = bench_json_new ("bench_fanout", json_path);
    const char *base = "the same commands sent at once by a client, s";
    for (int r = 0; r < 2; r++) {
        result_t *run = runs [r];
        if (r == 1 && max_parallel <= 0)
            break;
        char label [64], name [128];
        if (r == 1)
            snprintf (label, sizeof (label), "max_parallel: %d", max_parallel);
        else
            snprintf (label, sizeof (label), "%s", names [r]);
        printf ("%-28s %10.2f %7.2fx %12.1f %14" PRId64 " %14" PRId64 " %4d/%-4d\n", label,
                run->seconds, baseline > 0? run->seconds / baseline: 0, run->peak_rss_mb,
                run->list_max_ms, run->list_p99_ms, run->answered, run->polls);
        const char *tag = r? "max_parallel": "free";
        snprintf (name, sizeof (name), "fanout.%s.completion_s", tag);
        bench_json_measure (json, name, run->seconds, "s", base, baseline);
        snprintf (name, sizeof (name), "fanout.%s.peak_rss_mb", tag);
        bench_json_measure (json, name, run->peak_rss_mb, "MB", NULL, 0);
        snprintf (name, sizeof (name), "fanout.%s.flow_list_max_ms", tag);
        bench_json_measure (json, name, (double) run->list_max_ms, "ms", NULL, 0);
        snprintf (name, sizeof (name), "fanout.%s.flow_list_p99_ms", tag);
        bench_json_measure (json, name, (double) run->list_p99_ms, "ms", NULL, 0);
    }
    int json_rc = bench_json_destroy (&json);

    for (int i = 0; i < instances; i++)
        instance [i].stop = true;
    for (int i = 0; i < instances; i++)
        pthread_join (threads [i], NULL);
    for (int i = 0; i < instances; i++)
        chorus_node_destroy (&instance [i].node);
    chorus_node_destroy (&client);
    chorus_node_destroy (&driver);
    free (s_polls);     //  where answers that came too late went
    free (instance);
    free (threads);
    char command [700];
    snprintf (command, sizeof (command), "rm -rf %s", root);
    return system (command) == 0 && json_rc == 0 && free_run.seconds > 0? 0: 1;
}
