/*  chorus_metrics.c — the Prometheus text format, histograms, and the
    /metrics server (see the header).
*/
#include "chorus_metrics.h"
#include "chorus_http_address.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  The text format

struct _chorus_exposition_t {
    char *data;                 //  the text, NUL-terminated
    size_t size;                //  its length
    size_t max;                 //  allocated
    char error [160];           //  the first bad name, empty while none
};

chorus_exposition_t *
chorus_exposition_new (void)
{
    return (chorus_exposition_t *) calloc (1, sizeof (chorus_exposition_t));
}

void
chorus_exposition_destroy (chorus_exposition_t **self_p)
{
    if (*self_p) {
        free ((*self_p)->data);
        free (*self_p);
        *self_p = NULL;
    }
}

void
chorus_exposition_reset (chorus_exposition_t *self)
{
    self->size = 0;
    if (self->data)
        self->data [0] = 0;
    self->error [0] = 0;
}

static void
s_append (chorus_exposition_t *self, const char *text, size_t length)
{
    if (self->size + length + 1 > self->max) {
        size_t max = self->max? self->max: 4096;
        while (self->size + length + 1 > max)
            max *= 2;
        char *data = (char *) realloc (self->data, max);
        if (!data)
            return;             //  the scrape comes out short, not wrong
        self->data = data;
        self->max = max;
    }
    memcpy (self->data + self->size, text, length);
    self->size += length;
    self->data [self->size] = 0;
}

static void
s_appends (chorus_exposition_t *self, const char *text)
{
    s_append (self, text, strlen (text));
}

static bool
s_valid_name (const char *name, bool label)
{
    if (!name || !*name)
        return false;
    for (const char *at = name; *at; at++) {
        char c = *at;
        bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'
                   || (!label && c == ':');
        if (!letter && !(at > name && c >= '0' && c <= '9'))
            return false;
    }
    return !label || strncmp (name, "__", 2) != 0;
}

static bool
s_check (chorus_exposition_t *self, const char *name, bool label)
{
    if (s_valid_name (name, label))
        return true;
    if (!self->error [0])
        snprintf (self->error, sizeof (self->error), "not a valid %s name: '%.100s'",
                  label? "label": "metric", name? name: "(null)");
    return false;
}

//  HELP text escapes \ and newline; label values also "
static void
s_escaped (chorus_exposition_t *self, const char *text, bool quotes)
{
    for (const char *at = text; *at; at++)
        if (*at == '\\')
            s_appends (self, "\\\\");
        else
        if (*at == '\n')
            s_appends (self, "\\n");
        else
        if (*at == '"' && quotes)
            s_appends (self, "\\\"");
        else
            s_append (self, at, 1);
}

void
chorus_exposition_family (chorus_exposition_t *self, const char *name, const char *type,
                          const char *help)
{
    if (!s_check (self, name, false))
        return;
    s_appends (self, "# HELP ");
    s_appends (self, name);
    s_appends (self, " ");
    s_escaped (self, help? help: "", false);
    s_appends (self, "\n# TYPE ");
    s_appends (self, name);
    s_appends (self, " ");
    s_appends (self, type);
    s_appends (self, "\n");
}

//  A finite number, as short as reads back the same
static void
s_number (char *text, size_t size, double value)
{
    if (value == floor (value) && fabs (value) < 9007199254740992.0)
        snprintf (text, size, "%.0f", value);
    else {
        snprintf (text, size, "%.15g", value);
        if (strtod (text, NULL) != value)
            snprintf (text, size, "%.17g", value);
    }
}

static void
s_value (chorus_exposition_t *self, double value)
{
    char text [64];
    if (isnan (value))
        snprintf (text, sizeof (text), "NaN");
    else
    if (isinf (value))
        snprintf (text, sizeof (text), value > 0? "+Inf": "-Inf");
    else
        s_number (text, sizeof (text), value);
    s_appends (self, text);
}

void
chorus_exposition_sample (chorus_exposition_t *self, const char *name,
                          const char *const *labels, double value)
{
    if (!s_check (self, name, false))
        return;
    for (size_t i = 0; labels && labels [i]; i += 2)
        if (!s_check (self, labels [i], true) || !labels [i + 1])
            return;
    s_appends (self, name);
    for (size_t i = 0; labels && labels [i]; i += 2) {
        s_appends (self, i? ",": "{");
        s_appends (self, labels [i]);
        s_appends (self, "=\"");
        s_escaped (self, labels [i + 1], true);
        s_appends (self, "\"");
    }
    if (labels && labels [0])
        s_appends (self, "}");
    s_appends (self, " ");
    s_value (self, value);
    s_appends (self, "\n");
}

const char *
chorus_exposition_text (chorus_exposition_t *self, size_t *size)
{
    if (size)
        *size = self->size;
    return self->data? self->data: "";
}

const char *
chorus_exposition_error (chorus_exposition_t *self)
{
    return self->error [0]? self->error: NULL;
}

//  --------------------------------------------------------------------------
//  Histograms

void
chorus_histogram_init (chorus_histogram_t *self, const double *bounds, size_t size)
{
    self->bounds = bounds;
    self->size = size < CHORUS_HISTOGRAM_BUCKETS_MAX? size: CHORUS_HISTOGRAM_BUCKETS_MAX;
    for (size_t i = 0; i <= CHORUS_HISTOGRAM_BUCKETS_MAX; i++)
        atomic_init (&self->buckets [i], 0);
    atomic_init (&self->sum_micro, 0);
}

void
chorus_histogram_observe (chorus_histogram_t *self, double value)
{
    size_t bucket = 0;
    while (bucket < self->size && value > self->bounds [bucket])
        bucket++;
    atomic_fetch_add_explicit (&self->buckets [bucket], 1, memory_order_relaxed);
    if (value > 0)
        atomic_fetch_add_explicit (&self->sum_micro, (uint_fast64_t) (value * 1e6 + 0.5),
                                   memory_order_relaxed);
}

void
chorus_histogram_write (chorus_histogram_t *self, chorus_exposition_t *out, const char *name,
                        const char *const *labels)
{
    char bucket_name [128], le [32];
    snprintf (bucket_name, sizeof (bucket_name), "%s_bucket", name);
    //  The labels given, then le
    const char *with [12] = {NULL};
    size_t count = 0;
    while (labels && labels [count] && count < 8) {
        with [count] = labels [count];
        with [count + 1] = labels [count + 1];
        count += 2;
    }
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= self->size; i++) {
        cumulative += atomic_load_explicit (&self->buckets [i], memory_order_relaxed);
        if (i < self->size)
            s_number (le, sizeof (le), self->bounds [i]);
        else
            snprintf (le, sizeof (le), "+Inf");
        with [count] = "le";
        with [count + 1] = le;
        with [count + 2] = NULL;
        chorus_exposition_sample (out, bucket_name, with, (double) cumulative);
    }
    char sum_name [128], count_name [128];
    snprintf (sum_name, sizeof (sum_name), "%s_sum", name);
    snprintf (count_name, sizeof (count_name), "%s_count", name);
    double sum = (double) atomic_load_explicit (&self->sum_micro, memory_order_relaxed) / 1e6;
    chorus_exposition_sample (out, sum_name, labels, sum);
    chorus_exposition_sample (out, count_name, labels, (double) cumulative);
}

//  --------------------------------------------------------------------------
//  The server

struct _chorus_metrics_server_t {
    struct MHD_Daemon *daemon;          //  serves on its own thread
    chorus_metrics_render_fn *render;   //  the figures
    void *arg;                          //  render's argument
    chorus_exposition_t *out;           //  reused by each scrape
    char address [64];                  //  where it listens
};

static enum MHD_Result
s_reply (struct MHD_Connection *connection, unsigned int status, const char *type,
         const char *body, size_t size)
{
    struct MHD_Response *response = MHD_create_response_from_buffer (size, (void *) body,
                                                                     MHD_RESPMEM_MUST_COPY);
    if (!response)
        return MHD_NO;
    MHD_add_response_header (response, "Content-Type", type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header (response, "Allow", "GET, HEAD");
    enum MHD_Result result = MHD_queue_response (connection, status, response);
    MHD_destroy_response (response);
    return result;
}

static enum MHD_Result
s_handle (void *cls, struct MHD_Connection *connection, const char *url, const char *method,
          const char *version, const char *upload_data, size_t *upload_data_size,
          void **state)
{
    chorus_metrics_server_t *self = (chorus_metrics_server_t *) cls;
    static const char text [] = "text/plain; charset=utf-8";
    if (strcmp (method, "GET") != 0 && strcmp (method, "HEAD") != 0)
        return s_reply (connection, MHD_HTTP_METHOD_NOT_ALLOWED, text,
                        "only GET is served here\n", 24);
    if (strcmp (url, "/metrics") != 0)
        return s_reply (connection, MHD_HTTP_NOT_FOUND, text,
                        "not found: the figures are at /metrics\n", 39);
    chorus_exposition_reset (self->out);
    self->render (self->out, self->arg);
    size_t size;
    const char *body = chorus_exposition_text (self->out, &size);
    return s_reply (connection, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body,
                    size);
}

chorus_metrics_server_t *
chorus_metrics_server_new (const char *address, chorus_metrics_render_fn *render, void *arg,
                           char *error, size_t error_size)
{
    struct sockaddr_in addr;
    if (!chorus__http_address_parse (address, &addr)) {
        snprintf (error, error_size, "metrics address '%s' is not HOST:PORT (an IPv4 address "
                  "or localhost, and a port from 0 to 65535)", address? address: "");
        return NULL;
    }
    chorus_metrics_server_t *self = (chorus_metrics_server_t *) calloc (1, sizeof (*self));
    if (!self || !(self->out = chorus_exposition_new ())) {
        free (self);
        snprintf (error, error_size, "out of memory");
        return NULL;
    }
    self->render = render;
    self->arg = arg;
    self->daemon = MHD_start_daemon (MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL,
                                     NULL, s_handle, self,
                                     MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &addr,
                                     MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 64,
                                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 10,
                                     MHD_OPTION_END);
    if (!self->daemon) {
        snprintf (error, error_size, "cannot serve metrics on %s: the address cannot be bound "
                  "(in use, or not an address of this host?)", address);
        chorus_exposition_destroy (&self->out);
        free (self);
        return NULL;
    }
    chorus__http_address_bound (self->daemon, &addr, self->address, sizeof (self->address));
    return self;
}

void
chorus_metrics_server_destroy (chorus_metrics_server_t **self_p)
{
    if (*self_p) {
        chorus_metrics_server_t *self = *self_p;
        MHD_stop_daemon (self->daemon);
        chorus_exposition_destroy (&self->out);
        free (self);
        *self_p = NULL;
    }
}

const char *
chorus_metrics_server_address (chorus_metrics_server_t *self)
{
    return self->address;
}
