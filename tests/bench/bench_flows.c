/*  bench_flows.c — 3-step flows through echo services, with the journal
    durable (fsync per group commit): flows/s at saturation and p50/p99
    flow latency at half that load, beside a baseline measured in the same
    run — a plain client sending the same 3 commands in sequence per
    "flow" through the same services, without a coordinator. The same flows
    with a flow `timeout:` run after those, then the flows without one once
    more: a coordinator slows a little as its journal grows, so flows with
    a timeout are compared with the mean of the runs either side of them.
    Usage: bench_flows [--flows N] [--no-sync] [--json FILE] [--http HOST:PORT]
    (--http: with the web console served, to measure what it costs)
*/
#include "chorus.h"
#include "bench_json.h"

#include <czmq.h>
#include "chorus_coordinator.h"

#include <getopt.h>
#include <pthread.h>

#define WINDOW 500          //  flows (or baseline chains) in flight at once

static int64_t
s_now_us (void)
{
    return zclock_usecs ();
}

static int
s_compare (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y? -1: x > y;
}

//  --------------------------------------------------------------------------
//  Echo services, in a thread of their own

static void
s_on_echo (chorus_node_t *node, chorus_command_t *command, chorus_reply_t *reply, void *arg)
{
    chorus_reply_set_payload (reply, chorus_command_payload (command), chorus_command_size (command));
}

typedef struct {
    chorus_node_t *nodes [3];   //  step1, step2, step3 services
    bool stop;                  //  set to end the thread
} services_t;

static void *
s_services (void *arg)
{
    services_t *services = (services_t *) arg;
    zpoller_t *poller = zpoller_new (NULL);
    for (int i = 0; i < 3; i++)
        zpoller_add (poller, chorus_node_socket (services->nodes [i]));
    while (!services->stop) {
        zpoller_wait (poller, 20);
        for (int i = 0; i < 3; i++)
            chorus_node_dispatch (services->nodes [i]);
    }
    zpoller_destroy (&poller);
    return NULL;
}

//  --------------------------------------------------------------------------
//  The coordinator, in a thread of its own

typedef struct {
    chorus_coordinator_t *coordinator;  //  the coordinator
    bool stop;                          //  set to end the thread
} coordinator_t;

static void *
s_coordinator (void *arg)
{
    coordinator_t *coordinator = (coordinator_t *) arg;
    while (!coordinator->stop)
        chorus_coordinator_run (coordinator->coordinator, 20);
    return NULL;
}

//  --------------------------------------------------------------------------
//  The driver: triggers flows and hears their completion

typedef struct {
    int64_t *latency;           //  per finished flow, us
    int capacity;               //  entries in latency
    int finished;               //  how many finished
} driver_t;

static int
s_on_done (chorus_node_t *node, chorus_event_t *event, void *arg)
{
    driver_t *driver = (driver_t *) arg;
    //  The completion event carries the flow's input, which holds the time
    //  the flow was triggered
    char *text = NULL;
    chorus_payload_to_json (chorus_event_payload (event), chorus_event_size (event), 0, &text,
                            NULL, 0);
    const char *at = text? strstr (text, "\"t\":"): NULL;
    if (at && driver->finished < driver->capacity)
        driver->latency [driver->finished] = s_now_us () - strtoll (at + 4, NULL, 10);
    driver->finished++;
    free (text);
    return 0;
}

static void
s_trigger (chorus_node_t *node, const char *topic, int n)
{
    char json [128];
    snprintf (json, sizeof (json), "{\"n\": %d, \"t\": %" PRId64 "}", n, s_now_us ());
    void *data;
    size_t size;
    char error [64];
    chorus_payload_from_json (json, strlen (json), 1024, &data, &size, error, sizeof (error));
    char key [32];
    snprintf (key, sizeof (key), "k%d", n);
    chorus_node_publish (node, topic, key, data, size);
    free (data);
}

//  Runs `count` flows triggered by `topic`, at most WINDOW in flight, or
//  paced at `rate` flows/s when rate > 0; returns flows/s
static double
s_run_flows (chorus_node_t *driver_node, driver_t *driver, const char *topic, int count,
             double rate)
{
    driver->finished = 0;
    int64_t start = s_now_us ();
    int started = 0;
    zpoller_t *poller = zpoller_new (chorus_node_socket (driver_node), NULL);
    while (driver->finished < count) {
        int64_t now = s_now_us ();
        while (started < count && started - driver->finished < WINDOW
           &&  (rate <= 0 || started < (now - start) * rate / 1e6)) {
            s_trigger (driver_node, topic, started);
            started++;
        }
        zpoller_wait (poller, 1);
        chorus_node_dispatch (driver_node);
        if (s_now_us () - start > 300 * 1000000ll) {
            fprintf (stderr, "bench: only %d of %d flows finished\n", driver->finished, count);
            break;
        }
    }
    zpoller_destroy (&poller);
    return driver->finished * 1e6 / (double) (s_now_us () - start);
}

//  --------------------------------------------------------------------------
//  Baseline: the same three commands in sequence, from a plain client

typedef struct {
    chorus_node_t *node;        //  the client
    int done;                   //  chains finished
    int sent;                   //  chains started
} chain_t;

static void s_on_step (chorus_node_t *node, chorus_reply_t *reply, void *arg);

static void
s_step (chain_t *chain, intptr_t step)
{
    static const char *services [3] = {"step1", "step2", "step3"};
    chorus_node_send (chain->node, services [step], "echo", "x", 1, 10000, s_on_step,
                      (void *) (step + 1));
}

static chain_t *s_chain;

static void
s_on_step (chorus_node_t *node, chorus_reply_t *reply, void *arg)
{
    intptr_t next = (intptr_t) arg;
    if (next < 3)
        s_step (s_chain, next);
    else
        s_chain->done++;
}

static double
s_run_baseline (chain_t *chain, int count)
{
    s_chain = chain;
    chain->done = chain->sent = 0;
    int64_t start = s_now_us ();
    zpoller_t *poller = zpoller_new (chorus_node_socket (chain->node), NULL);
    while (chain->done < count) {
        while (chain->sent < count && chain->sent - chain->done < WINDOW) {
            s_step (chain, 0);
            chain->sent++;
        }
        zpoller_wait (poller, 1);
        chorus_node_dispatch (chain->node);
    }
    zpoller_destroy (&poller);
    return count * 1e6 / (double) (s_now_us () - start);
}

static void
s_wait_peers (chorus_node_t *node, int count)
{
    while (chorus_node_peers (node, NULL, NULL) < count)
        chorus_node_run (node, 20);
}

int
main (int argc, char **argv)
{
    int flows = 20000;
    bool sync = true;
    const char *json_path = NULL;
    const char *http = NULL;
    static struct option options [] = {{"flows", required_argument, 0, 'f'},
                                       {"no-sync", no_argument, 0, 'n'},
                                       {"json", required_argument, 0, 'j'},
                                       {"http", required_argument, 0, 'h'}, {0, 0, 0, 0}};
    int option;
    while ((option = getopt_long (argc, argv, "", options, NULL)) != -1)
        if (option == 'f')
            flows = atoi (optarg);
        else
        if (option == 'n')
            sync = false;
        else
        if (option == 'j')
            json_path = optarg;
        else
        if (option == 'h')
            http = optarg;
        else
            return 2;
    char root [] = "/tmp/chorus-bench-flows-XXXXXX";
    if (!mkdtemp (root))
        return 1;
    char path [600];
    snprintf (path, sizeof (path), "%s/flows", root);
    zsys_dir_create ("%s", path);
    snprintf (path, sizeof (path), "%s/flows/bench.yaml", root);
    FILE *file = fopen (path, "w");
    fputs ("flow: bench\nversion: 1\ntrigger: bench.flow\nsteps:\n"
           "  - { id: a, service: step1, command: echo, input: $.input }\n"
           "  - { id: b, service: step2, command: echo, input: $.steps.a.output, depends_on: [a] }\n"
           "  - { id: c, service: step3, command: echo, input: $.steps.b.output, depends_on: [b] }\n"
           "emit: { completed: bench.done }\n", file);
    fclose (file);
    //  The same flow with a deadline: a timer per flow, never reached
    snprintf (path, sizeof (path), "%s/flows/bench-timeout.yaml", root);
    file = fopen (path, "w");
    fputs ("flow: bench-timeout\nversion: 1\ntrigger: bench.flow.timeout\ntimeout: 10m\nsteps:\n"
           "  - { id: a, service: step1, command: echo, input: $.input }\n"
           "  - { id: b, service: step2, command: echo, input: $.steps.a.output, depends_on: [a] }\n"
           "  - { id: c, service: step3, command: echo, input: $.steps.b.output, depends_on: [b] }\n"
           "emit: { completed: bench.done }\n", file);
    fclose (file);

    char flows_dir [600], store [600];
    snprintf (flows_dir, sizeof (flows_dir), "%s/flows", root);
    snprintf (store, sizeof (store), "%s/coordinator", root);
    char error [512];
    chorus_coordinator_config_t config = {.flows_dir = flows_dir, .store_dir = store,
                                          .keep_finished = 1000, .journal_sync = sync,
                                          .http = http};
    coordinator_t coordinator = {chorus_coordinator_new (&config, error, sizeof (error)), false};
    if (!coordinator.coordinator || chorus_coordinator_start (coordinator.coordinator)) {
        fprintf (stderr, "bench: %s\n", error);
        return 1;
    }
    const char *seed = chorus_node_endpoint (chorus_coordinator_node (coordinator.coordinator));
    services_t services = {{NULL}, false};
    for (int i = 0; i < 3; i++) {
        char name [16];
        snprintf (name, sizeof (name), "step%d", i + 1);
        services.nodes [i] = chorus_node_new (name);
        chorus_node_add_seed (services.nodes [i], seed);
        chorus_node_handle (services.nodes [i], "echo", s_on_echo, NULL);
        chorus_node_start (services.nodes [i]);
    }
    //  The latency run may be longer than the others: at least 100 flows
    int capacity = flows > 100? flows: 100;
    driver_t driver = {(int64_t *) calloc ((size_t) capacity, sizeof (int64_t)), capacity, 0};
    chorus_node_t *driver_node = chorus_node_new ("bench-driver");
    chorus_node_add_seed (driver_node, seed);
    chorus_node_subscribe (driver_node, "bench.done", s_on_done, &driver);
    chorus_node_start (driver_node);
    chain_t chain = {chorus_node_new ("bench-client"), 0, 0};
    chorus_node_add_seed (chain.node, seed);
    chorus_node_start (chain.node);
    s_wait_peers (driver_node, 5);
    s_wait_peers (chain.node, 5);

    pthread_t service_thread, coordinator_thread;
    pthread_create (&service_thread, NULL, s_services, &services);
    double baseline = s_run_baseline (&chain, flows);
    pthread_create (&coordinator_thread, NULL, s_coordinator, &coordinator);
    //  Let the coordinator's trigger subscription reach the driver
    chorus_node_run (driver_node, 500);
    double saturation = s_run_flows (driver_node, &driver, "bench.flow", flows, 0);
    int half = flows / 2 > 100? flows / 2: 100;
    s_run_flows (driver_node, &driver, "bench.flow", half, saturation / 2);
    int timed_flows = driver.finished < capacity? driver.finished: capacity;
    qsort (driver.latency, (size_t) timed_flows, sizeof (int64_t), s_compare);
    int64_t p50 = timed_flows? driver.latency [timed_flows / 2]: 0;
    int64_t p99 = timed_flows? driver.latency [(timed_flows * 99) / 100]: 0;
    //  After the latency run, so that timers they leave cannot slow it;
    //  flows without a timeout set no timer, so the run after is fair
    double timed = s_run_flows (driver_node, &driver, "bench.flow.timeout", flows, 0);
    double again = s_run_flows (driver_node, &driver, "bench.flow", flows, 0);

    printf ("%-52s %12s %12s %8s\n", "measure", "coordinator", "baseline", "ratio");
    printf ("%-52s %12.0f %12.0f %7.1f%%\n", sync? "3-step flows/s at saturation (journal fsync'd)":
            "3-step flows/s at saturation (journal not fsync'd)",
            saturation, baseline, 100 * saturation / baseline);
    printf ("%-52s %12.0f %12.0f %7.1f%%\n", "the same with a flow timeout", timed, baseline,
            100 * timed / baseline);
    printf ("%-52s %12.0f %12.0f %7.1f%%\n", "the same without a timeout, once more", again,
            baseline, 100 * again / baseline);
    printf ("%-52s %12.1f%%\n", "flows/s with a timeout / the mean of those without",
            200 * timed / (saturation + again));
    printf ("%-52s %12.1f\n", "flow latency p50 ms at half that load", p50 / 1000.0);
    printf ("%-52s %12.1f\n", "flow latency p99 ms at half that load", p99 / 1000.0);
    printf ("(baseline: the same 3 commands in sequence from a client, no coordinator)\n");
    bench_json_t *json = bench_json_new ("bench_flows", json_path);
    const char *journal = sync? "fsync": "no_sync";
    const char *chains = "3 commands in sequence from a client, chains/s";
    char name [96];
    snprintf (name, sizeof (name), "flows.per_second.%s", journal);
    bench_json_measure (json, name, saturation, "flows/s", chains, baseline);
    snprintf (name, sizeof (name), "flows.per_second.with_timeout.%s", journal);
    bench_json_measure (json, name, timed, "flows/s", chains, baseline);
    snprintf (name, sizeof (name), "flows.per_second.once_more.%s", journal);
    bench_json_measure (json, name, again, "flows/s", chains, baseline);
    snprintf (name, sizeof (name), "flows.per_second.with_timeout_vs_without.%s", journal);
    bench_json_measure (json, name, timed, "flows/s", "mean flows/s of the runs without a timeout",
                        (saturation + again) / 2);
    snprintf (name, sizeof (name), "flows.latency_p50_ms.half_load.%s", journal);
    bench_json_measure (json, name, p50 / 1000.0, "ms", NULL, 0);
    snprintf (name, sizeof (name), "flows.latency_p99_ms.half_load.%s", journal);
    bench_json_measure (json, name, p99 / 1000.0, "ms", NULL, 0);
    int json_rc = bench_json_destroy (&json);

    services.stop = coordinator.stop = true;
    pthread_join (service_thread, NULL);
    pthread_join (coordinator_thread, NULL);
    chorus_node_destroy (&chain.node);
    chorus_node_destroy (&driver_node);
    for (int i = 0; i < 3; i++)
        chorus_node_destroy (&services.nodes [i]);
    chorus_coordinator_destroy (&coordinator.coordinator);
    free (driver.latency);
    char command [700];
    snprintf (command, sizeof (command), "rm -rf %s", root);
    return system (command) == 0 && json_rc == 0? 0: 1;
}
