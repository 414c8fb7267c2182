/*  chorus_cmd_top.c — `chorus top`: a terminal view of a mesh, refreshed
    each second, made of the same figures Prometheus scrapes: it reads the
    /metrics of the nodes and coordinators it is given and shows rates per
    service and per topic, group lag, command latency and flows by state.
*/
#include "chorus_cli.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S_ENDPOINTS_MAX 64
#define S_BODY_MAX (16 * 1024 * 1024)   //  a scrape larger than this is refused
#define S_TIMEOUT_MS 2000               //  one scrape, at most

//  One sample of the text format: "name{labels} value"
typedef struct {
    char *name;                 //  the series' name
    char *labels;               //  what is between the braces, "" for none
    double value;               //  its value
} s_sample_t;

//  One scrape of one endpoint
typedef struct {
    s_sample_t *samples;        //  in the order served
    size_t size;                //  how many
    size_t max;                 //  allocated
    char error [256];           //  why it failed, "" when it did not
} s_scrape_t;

static void
s_scrape_clear (s_scrape_t *scrape)
{
    for (size_t i = 0; i < scrape->size; i++) {
        free (scrape->samples [i].name);
        free (scrape->samples [i].labels);
    }
    free (scrape->samples);
    memset (scrape, 0, sizeof (*scrape));
}

//  Reads the text format (see chorus_metrics.h): comments and blank lines
//  are skipped, a line that is not a sample is ignored
static void
s_parse_text (s_scrape_t *scrape, char *text)
{
    for (char *line = strtok (text, "\n"); line; line = strtok (NULL, "\n")) {
        if (*line == '#' || *line == 0)
            continue;
        char *name = line, *labels = "", *rest;
        size_t length = strcspn (line, "{ ");
        if (line [length] == '{') {
            line [length] = 0;
            labels = line + length + 1;
            //  A value may hold '}': the braces end at the last '}' before the value
            char *close = strrchr (labels, '}');
            if (!close)
                continue;
            *close = 0;
            rest = close + 1;
        }
        else
        if (line [length] == ' ') {
            line [length] = 0;
            rest = line + length + 1;
        }
        else
            continue;
        char *end;
        double value = strtod (rest, &end);
        if (end == rest)
            continue;
        if (scrape->size == scrape->max) {
            scrape->max = scrape->max? scrape->max * 2: 256;
            scrape->samples = (s_sample_t *) realloc (scrape->samples,
                                                      scrape->max * sizeof (s_sample_t));
            if (!scrape->samples)
                abort ();
        }
        s_sample_t sample = {strdup (name), strdup (labels), value};
        scrape->samples [scrape->size++] = sample;
    }
}

static int64_t
s_mono_ms (void)
{
    struct timespec now;
    clock_gettime (CLOCK_MONOTONIC, &now);
    return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

//  GET http://ENDPOINT/metrics into scrape (its error set on failure)
static void
s_scrape (const char *endpoint, s_scrape_t *scrape)
{
    char host [256];
    const char *colon = strrchr (endpoint, ':');
    snprintf (host, sizeof (host), "%.*s", (int) (colon - endpoint), endpoint);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *found;
    int rc = getaddrinfo (host, colon + 1, &hints, &found);
    if (rc) {
        snprintf (scrape->error, sizeof (scrape->error), "cannot resolve %.100s: %s", host,
                  gai_strerror (rc));
        return;
    }
    int fd = socket (found->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
    int64_t deadline = s_mono_ms () + S_TIMEOUT_MS;
    if (fd < 0 || (connect (fd, found->ai_addr, found->ai_addrlen) && errno != EINPROGRESS)) {
        snprintf (scrape->error, sizeof (scrape->error), "cannot connect: %s", strerror (errno));
        freeaddrinfo (found);
        if (fd >= 0)
            close (fd);
        return;
    }
    freeaddrinfo (found);
    struct pollfd item = {fd, POLLOUT, 0};
    if (poll (&item, 1, S_TIMEOUT_MS) != 1) {
        snprintf (scrape->error, sizeof (scrape->error), "cannot connect: timed out");
        close (fd);
        return;
    }
    int failure = 0;
    socklen_t size = sizeof (failure);
    getsockopt (fd, SOL_SOCKET, SO_ERROR, &failure, &size);
    char request [512];
    int length = snprintf (request, sizeof (request),
                           "GET /metrics HTTP/1.0\r\nHost: %s\r\nAccept: text/plain\r\n\r\n",
                           endpoint);
    if (failure || send (fd, request, (size_t) length, MSG_NOSIGNAL) != length) {
        snprintf (scrape->error, sizeof (scrape->error), "cannot connect: %s",
                  strerror (failure? failure: errno));
        close (fd);
        return;
    }
    //  HTTP/1.0: the reply ends when the server closes
    size_t max = 65536, got = 0;
    char *reply = (char *) malloc (max);
    while (reply) {
        int64_t left = deadline - s_mono_ms ();
        item.events = POLLIN;
        if (left <= 0 || poll (&item, 1, (int) left) != 1) {
            snprintf (scrape->error, sizeof (scrape->error), "no whole reply within %d ms",
                      S_TIMEOUT_MS);
            break;
        }
        if (got + 1 == max) {
            if (max >= S_BODY_MAX) {
                snprintf (scrape->error, sizeof (scrape->error), "reply over %d bytes",
                          S_BODY_MAX);
                break;
            }
            max *= 2;
            char *grown = (char *) realloc (reply, max);
            if (!grown)
                break;
            reply = grown;
        }
        ssize_t read = recv (fd, reply + got, max - got - 1, 0);
        if (read < 0 && errno != EAGAIN && errno != EINTR) {
            snprintf (scrape->error, sizeof (scrape->error), "%s", strerror (errno));
            break;
        }
        if (read == 0) {
            reply [got] = 0;
            char *body = strstr (reply, "\r\n\r\n");
            int status = 0;
            sscanf (reply, "HTTP/%*s %d", &status);
            if (status != 200 || !body)
                snprintf (scrape->error, sizeof (scrape->error), "HTTP status %d, not 200",
                          status);
            else
                s_parse_text (scrape, body + 4);
            break;
        }
        if (read > 0)
            got += (size_t) read;
    }
    free (reply);
    close (fd);
}

//  --------------------------------------------------------------------------
//  Reading the figures

//  The value of a label in a labels text ("a=\"x\",b=\"y\""), into value;
//  false when absent
static bool
s_label (const char *labels, const char *name, char *value, size_t size)
{
    size_t length = strlen (name);
    for (const char *at = labels; at && *at; ) {
        if (strncmp (at, name, length) == 0 && at [length] == '=' && at [length + 1] == '"') {
            const char *from = at + length + 2;
            size_t i = 0;
            for (; *from && *from != '"' && i + 1 < size; from++)
                value [i++] = *from == '\\' && from [1]? *++from: *from;
            value [i] = 0;
            return true;
        }
        //  To the next pair
        const char *quote = strchr (at, '"');
        if (!quote)
            break;
        quote++;
        while (*quote && *quote != '"')
            quote += *quote == '\\' && quote [1]? 2: 1;
        at = *quote? quote + 1: quote;
        if (*at == ',')
            at++;
    }
    return false;
}

//  Sum of the samples named `name` whose label `label` is `value` (label
//  NULL: every sample of the name); NAN when there is none
static double
s_sum (const s_scrape_t *scrape, const char *name, const char *label, const char *value)
{
    double sum = NAN;
    char found [300];
    for (size_t i = 0; i < scrape->size; i++)
        if (streq (scrape->samples [i].name, name)
        &&  (!label || (s_label (scrape->samples [i].labels, label, found, sizeof (found))
                        && streq (found, value))))
            sum = isnan (sum)? scrape->samples [i].value: sum + scrape->samples [i].value;
    return sum;
}

//  The distinct values of a label among the samples of a name, into a list
static zlistx_t *
s_values (const s_scrape_t *scrape, const char *name, const char *label)
{
    zlistx_t *values = zlistx_new ();
    zlistx_set_duplicator (values, (zlistx_duplicator_fn *) strdup);
    zlistx_set_destructor (values, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_comparator (values, (zlistx_comparator_fn *) strcmp);
    char found [300];
    for (size_t i = 0; i < scrape->size; i++)
        if (streq (scrape->samples [i].name, name)
        &&  s_label (scrape->samples [i].labels, label, found, sizeof (found))
        &&  !zlistx_find (values, found))
            zlistx_add_end (values, found);
    zlistx_sort (values);
    return values;
}

//  A quantile of a histogram's buckets (NAME_bucket, cumulative, with le)
//  over what changed between two scrapes (before may be NULL: since the
//  start); NAN when nothing was observed
static double
s_quantile (const s_scrape_t *now, const s_scrape_t *before, const char *name, double q)
{
    char bucket [128], le [64];
    snprintf (bucket, sizeof (bucket), "%s_bucket", name);
    double total = s_sum (now, bucket, "le", "+Inf") -
                   (before && !isnan (s_sum (before, bucket, "le", "+Inf"))?
                    s_sum (before, bucket, "le", "+Inf"): 0);
    if (isnan (total) || total <= 0)
        return NAN;
    for (size_t i = 0; i < now->size; i++)
        if (streq (now->samples [i].name, bucket)
        &&  s_label (now->samples [i].labels, "le", le, sizeof (le))) {
            double count = s_sum (now, bucket, "le", le)
                         - (before && !isnan (s_sum (before, bucket, "le", le))?
                            s_sum (before, bucket, "le", le): 0);
            if (count >= q * total)
                return streq (le, "+Inf")? INFINITY: strtod (le, NULL);
        }
    return NAN;
}

//  --------------------------------------------------------------------------
//  The view

typedef struct {
    const char *endpoints [S_ENDPOINTS_MAX];    //  --metrics, in order
    size_t size;                //  how many
    s_scrape_t before [S_ENDPOINTS_MAX];        //  the last scrape of each
    s_scrape_t now [S_ENDPOINTS_MAX];           //  this one
    double seconds;             //  between them
} s_top_t;

//  A rate per second of a counter between the scrapes, NAN when unknown
static double
s_rate (s_top_t *self, size_t i, const char *name, const char *label, const char *value)
{
    double now = s_sum (&self->now [i], name, label, value);
    double before = s_sum (&self->before [i], name, label, value);
    if (isnan (now) || isnan (before) || self->seconds <= 0 || now < before)
        return NAN;
    return (now - before) / self->seconds;
}

//  The same for a labelled counter that appears when it first counts (a
//  topic's events): absent from a good earlier scrape, it was 0
static double
s_rate_from_zero (s_top_t *self, size_t i, const char *name, const char *label,
                  const char *value)
{
    const s_scrape_t *before = &self->before [i];
    if (before->size && !before->error [0] && isnan (s_sum (before, name, label, value))) {
        double now = s_sum (&self->now [i], name, label, value);
        return isnan (now) || self->seconds <= 0? NAN: now / self->seconds;
    }
    return s_rate (self, i, name, label, value);
}

//  A number in a column: "-" when unknown
static void
s_cell (FILE *out, double value, int width, int decimals)
{
    if (isnan (value))
        fprintf (out, " %*s", width, "-");
    else
    if (isinf (value))
        fprintf (out, " %*s", width, ">max");
    else
        fprintf (out, " %*.*f", width, decimals, value);
}

static void
s_show (s_top_t *self, FILE *out)
{
    time_t clock = time (NULL);
    char stamp [32];
    strftime (stamp, sizeof (stamp), "%H:%M:%S", localtime (&clock));
    fprintf (out, "chorus top  %zu endpoint%s  rates over %.1f s  %s\n", self->size,
             self->size == 1? "": "s", self->seconds, stamp);

    fprintf (out, "\n%-22s %-16s %9s %9s %9s %9s %9s %6s %6s %6s %7s %8s\n", "ENDPOINT",
             "SERVICE", "PUB/s", "DELIV/s", "HANDLED/s", "CMDS/s", "FAILED/s", "PEERS", "SUSPECT",
             "HEALTH", "OUTBOX", "OLDEST_s");
    for (size_t i = 0; i < self->size; i++) {
        s_scrape_t *now = &self->now [i];
        if (now->error [0]) {
            fprintf (out, "%-22s unreachable: %s\n", self->endpoints [i], now->error);
            continue;
        }
        char service [65] = "?";
        for (size_t j = 0; j < now->size; j++)
            if (streq (now->samples [j].name, "chorus_build_info"))
                s_label (now->samples [j].labels, "service", service, sizeof (service));
        fprintf (out, "%-22s %-16s", self->endpoints [i], service);
        s_cell (out, s_rate (self, i, "chorus_events_published_total", NULL, NULL), 9, 1);
        s_cell (out, s_rate (self, i, "chorus_events_delivered_total", NULL, NULL), 9, 1);
        s_cell (out, s_rate (self, i, "chorus_events_handled_total", NULL, NULL), 9, 1);
        s_cell (out, s_rate (self, i, "chorus_commands_sent_total", NULL, NULL), 9, 1);
        s_cell (out, s_rate (self, i, "chorus_commands_failed_total", NULL, NULL), 9, 1);
        s_cell (out, s_sum (now, "chorus_peers", "state", "alive"), 6, 0);
        s_cell (out, s_sum (now, "chorus_peers", "state", "evasive"), 6, 0);
        s_cell (out, s_sum (now, "chorus_local_health", NULL, NULL), 6, 0);
        s_cell (out, s_sum (now, "chorus_outbox_messages", NULL, NULL), 7, 0);
        s_cell (out, s_sum (now, "chorus_outbox_oldest_age_seconds", NULL, NULL), 8, 1);
        fprintf (out, "\n");
    }

    bool header = false;
    for (size_t i = 0; i < self->size; i++) {
        zlistx_t *groups = s_values (&self->now [i], "chorus_group_lag_messages", "group");
        for (const char *group = (const char *) zlistx_first (groups); group;
             group = (const char *) zlistx_next (groups)) {
            if (!header)
                fprintf (out, "\n%-22s %-22s %9s %9s\n", "GROUP", "OF", "LAG", "LAG/s");
            header = true;
            fprintf (out, "%-22s %-22s", group, self->endpoints [i]);
            s_cell (out, s_sum (&self->now [i], "chorus_group_lag_messages", "group", group),
                    9, 0);
            double now = s_sum (&self->now [i], "chorus_group_lag_messages", "group", group);
            double before = s_sum (&self->before [i], "chorus_group_lag_messages", "group",
                                   group);
            s_cell (out, self->seconds > 0? (now - before) / self->seconds: NAN, 9, 1);
            fprintf (out, "\n");
        }
        zlistx_destroy (&groups);
    }

    //  Per topic: a node counts its first 64 topics apart, the rest as _other
    header = false;
    for (size_t i = 0; i < self->size; i++) {
        zlistx_t *topics = s_values (&self->now [i], "chorus_topic_events_published_total",
                                     "topic");
        for (const char *topic = (const char *) zlistx_first (topics); topic;
             topic = (const char *) zlistx_next (topics)) {
            if (!header)
                fprintf (out, "\n%-30s %-22s %9s %9s\n", "TOPIC", "PUBLISHED BY", "EVENTS",
                         "PUB/s");
            header = true;
            fprintf (out, "%-30s %-22s", topic, self->endpoints [i]);
            s_cell (out, s_sum (&self->now [i], "chorus_topic_events_published_total", "topic",
                                topic), 9, 0);
            s_cell (out, s_rate_from_zero (self, i, "chorus_topic_events_published_total",
                                           "topic", topic), 9, 1);
            fprintf (out, "\n");
        }
        zlistx_destroy (&topics);
    }

    header = false;
    for (size_t i = 0; i < self->size; i++) {
        double count = s_sum (&self->now [i], "chorus_command_duration_seconds_count", NULL,
                              NULL);
        if (isnan (count) || count == 0)
            continue;
        if (!header)
            fprintf (out, "\n%-22s %9s %9s %9s %9s\n", "COMMANDS OF", "REPLIES", "REPLIES/s",
                     "p50_ms", "p99_ms");
        header = true;
        //  Latency over the last interval when replies came in it, else
        //  since the start
        bool moved = s_rate (self, i, "chorus_command_duration_seconds_count", NULL, NULL) > 0;
        s_scrape_t *before = moved? &self->before [i]: NULL;
        fprintf (out, "%-22s", self->endpoints [i]);
        s_cell (out, count, 9, 0);
        s_cell (out, s_rate (self, i, "chorus_command_duration_seconds_count", NULL, NULL), 9,
                1);
        s_cell (out, s_quantile (&self->now [i], before, "chorus_command_duration_seconds",
                                 0.5) * 1000, 9, 1);
        s_cell (out, s_quantile (&self->now [i], before, "chorus_command_duration_seconds",
                                 0.99) * 1000, 9, 1);
        fprintf (out, "\n");
    }

    header = false;
    for (size_t i = 0; i < self->size; i++) {
        zlistx_t *flows = s_values (&self->now [i], "chorus_flows_started_total", "flow");
        for (const char *flow = (const char *) zlistx_first (flows); flow;
             flow = (const char *) zlistx_next (flows)) {
            if (!header)
                fprintf (out, "\n%-22s %-22s %8s %8s %9s %9s %8s %9s %8s\n", "FLOW", "AT",
                         "RUNNING", "STUCK", "STARTED/s", "COMPLETED", "FAILED", "CANCELLED",
                         "RETRY/s");
            header = true;
            s_scrape_t *now = &self->now [i];
            fprintf (out, "%-22s %-22s", flow, self->endpoints [i]);
            s_cell (out, s_sum (now, "chorus_flows_running", "flow", flow), 8, 0);
            s_cell (out, s_sum (now, "chorus_flows_stuck", "flow", flow), 8, 0);
            s_cell (out, s_rate (self, i, "chorus_flows_started_total", "flow", flow), 9, 1);
            char labels [300];
            double ended [3];
            const char *outcomes [] = {"completed", "failed", "cancelled"};
            for (int o = 0; o < 3; o++) {
                ended [o] = NAN;
                snprintf (labels, sizeof (labels), "flow=\"%s\",outcome=\"%s\"", flow,
                          outcomes [o]);
                for (size_t j = 0; j < now->size; j++)
                    if (streq (now->samples [j].name, "chorus_flows_finished_total")
                    &&  streq (now->samples [j].labels, labels))
                        ended [o] = now->samples [j].value;
            }
            s_cell (out, ended [0], 9, 0);
            s_cell (out, ended [1], 8, 0);
            s_cell (out, ended [2], 9, 0);
            s_cell (out, s_rate (self, i, "chorus_step_retries_total", "flow", flow), 8, 1);
            fprintf (out, "\n");
        }
        zlistx_destroy (&flows);
    }
    fflush (out);
}

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: chorus top --metrics HOST:PORT... [--once] [--interval SECONDS]\n"
        "\n"
        "A terminal view of a mesh, refreshed each second: it reads /metrics of\n"
        "the nodes and coordinators named (the figures Prometheus scrapes; start\n"
        "them with --metrics HOST:PORT or CHORUS_METRICS) and shows, per\n"
        "endpoint, its service and the rates of events published, delivered and\n"
        "handled and of commands sent and failed, its peers (alive, suspect),\n"
        "its local health (HEALTH: 0 well, up to 8 while it finds itself\n"
        "stalled: protocol section 6.1) and its outbox; the events it\n"
        "published and their rate per topic (a node counts its first 64\n"
        "topics apart, the others together as _other); the lag of each group\n"
        "that takes its events; its command latency (p50 and p99 of the last\n"
        "interval); and a coordinator's flows by state, with flows started and\n"
        "retries per second. Rates are per second between two reads; '-' is a\n"
        "figure not known yet or not served.\n"
        "\n"
        "  --metrics HOST:PORT  an endpoint to read (repeatable, up to 64;\n"
        "                       default: $CHORUS_METRICS)\n"
        "  --interval SECONDS   between refreshes (default 1; 0.1 to 3600)\n"
        "  --once               read twice, --interval apart, print one view\n"
        "                       and exit (what a script or a test wants)\n"
        "  -h, --help           show this help and exit\n"
        "\n"
        "On a terminal the view is redrawn in place until interrupted; on a\n"
        "pipe each refresh is printed after the last. An endpoint that cannot\n"
        "be read is shown as unreachable, with the reason.\n"
        "\n"
        "Exit status: 0 success, 1 with --once when an endpoint could not be\n"
        "read, 2 bad usage.\n");
}

int
chorus_cmd_top (int argc, char **argv)
{
    static struct option options [] = {
        {"metrics", required_argument, NULL, 'm'}, {"interval", required_argument, NULL, 'i'},
        {"once", no_argument, NULL, 'o'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    s_top_t *self = (s_top_t *) zmalloc (sizeof (s_top_t));
    double interval = 1;
    bool once = false;
    int status = 0;
    optind = 0;
    opterr = 0;
    int option;
    while ((option = getopt_long (argc, argv, ":h", options, NULL)) != -1) {
        char *end;
        switch (option) {
            case 'm':
                if (self->size == S_ENDPOINTS_MAX) {
                    fprintf (stderr, "chorus top: more than %d --metrics\n", S_ENDPOINTS_MAX);
                    status = 2;
                }
                else
                    self->endpoints [self->size++] = optarg;
                break;
            case 'i':
                interval = strtod (optarg, &end);
                if (*end || end == optarg || !(interval >= 0.1 && interval <= 3600)) {
                    fprintf (stderr, "chorus top: --interval '%s' is not a number of seconds "
                             "from 0.1 to 3600\n", optarg);
                    status = 2;
                }
                break;
            case 'o': once = true; break;
            case 'h': s_usage (stdout); free (self); return 0;
            case ':':
                fprintf (stderr, "chorus top: %s needs a value (see --help)\n",
                         argv [optind - 1]);
                status = 2;
                break;
            default:
                fprintf (stderr, "chorus top: unknown option '%s' (see --help)\n",
                         argv [optind - 1]);
                status = 2;
        }
        if (status)
            break;
    }
    if (!status && optind < argc) {
        fprintf (stderr, "chorus top: unexpected argument '%s' (see --help)\n", argv [optind]);
        status = 2;
    }
    const char *env = getenv ("CHORUS_METRICS");
    if (!status && !self->size && env && *env)
        self->endpoints [self->size++] = env;
    if (!status && !self->size) {
        fprintf (stderr, "chorus top: name the endpoints to read with --metrics HOST:PORT "
                 "(or CHORUS_METRICS)\n");
        status = 2;
    }
    for (size_t i = 0; !status && i < self->size; i++) {
        const char *colon = strrchr (self->endpoints [i], ':');
        char *end = NULL;
        long port = colon? strtol (colon + 1, &end, 10): -1;
        if (!colon || colon == self->endpoints [i] || *end || end == colon + 1
        ||  port < 1 || port > 65535) {
            fprintf (stderr, "chorus top: '%s' is not HOST:PORT (a host, and a port from 1 "
                     "to 65535)\n", self->endpoints [i]);
            status = 2;
        }
    }
    if (status) {
        free (self);
        return status;
    }
    bool terminal = isatty (STDOUT_FILENO) && !once;
    for (size_t i = 0; i < self->size; i++)
        s_scrape (self->endpoints [i], &self->now [i]);
    int64_t last = s_mono_ms ();
    while (!zsys_interrupted) {
        zclock_sleep ((int) (interval * 1000));
        if (zsys_interrupted)
            break;
        for (size_t i = 0; i < self->size; i++) {
            s_scrape_clear (&self->before [i]);
            self->before [i] = self->now [i];
            memset (&self->now [i], 0, sizeof (self->now [i]));
            s_scrape (self->endpoints [i], &self->now [i]);
        }
        int64_t at = s_mono_ms ();
        self->seconds = (double) (at - last) / 1000;
        last = at;
        if (terminal)
            fputs ("\033[H\033[2J", stdout);
        else
        if (!once)
            fputs ("\n", stdout);
        s_show (self, stdout);
        if (once) {
            for (size_t i = 0; i < self->size; i++)
                if (self->now [i].error [0]) {
                    fprintf (stderr, "chorus top: cannot read %s: %s\n", self->endpoints [i],
                             self->now [i].error);
                    status = 1;
                }
            break;
        }
    }
    for (size_t i = 0; i < self->size; i++) {
        s_scrape_clear (&self->before [i]);
        s_scrape_clear (&self->now [i]);
    }
    free (self);
    return status;
}
