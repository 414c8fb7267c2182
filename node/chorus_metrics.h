/*  chorus_metrics.h — figures for Prometheus: the text exposition format
    (version 0.0.4) written into a buffer, fixed-bucket histograms that any
    thread may observe into, and a small HTTP server (libmicrohttpd) that
    serves the text at /metrics.

    Names follow Prometheus's rules: [a-zA-Z_:][a-zA-Z0-9_:]* for metrics,
    [a-zA-Z_][a-zA-Z0-9_]* for labels; label values are escaped (\\, \" and
    \n). A bad name is a programming error and is refused (the sample is
    left out and the exposition remembers the first such error).
*/
#ifndef CHORUS_METRICS_H_INCLUDED
#define CHORUS_METRICS_H_INCLUDED

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

//  --------------------------------------------------------------------------
//  The text format

//  The type, chorus_exposition_family and chorus_exposition_sample are in
//  the public header, for the series an application adds
#include "chorus.h"

chorus_exposition_t *
    chorus_exposition_new (void);
void
    chorus_exposition_destroy (chorus_exposition_t **self_p);
//  Empties it, for the next scrape
void
    chorus_exposition_reset (chorus_exposition_t *self);
//  The text so far, and its size
const char *
    chorus_exposition_text (chorus_exposition_t *self, size_t *size);
//  The first bad name or label met, or NULL
const char *
    chorus_exposition_error (chorus_exposition_t *self);

//  --------------------------------------------------------------------------
//  Histograms of fixed buckets: observed from any thread without a lock

#define CHORUS_HISTOGRAM_BUCKETS_MAX 16

typedef struct {
    const double *bounds;               //  upper bounds, ascending (+Inf implied)
    size_t size;                        //  how many bounds
    atomic_uint_fast64_t buckets [CHORUS_HISTOGRAM_BUCKETS_MAX + 1];  //  not cumulative
    atomic_uint_fast64_t sum_micro;     //  sum of the observations, in millionths
} chorus_histogram_t;

//  Sets it up with its bounds (which it keeps a pointer to; at most
//  CHORUS_HISTOGRAM_BUCKETS_MAX); all counts 0
void
    chorus_histogram_init (chorus_histogram_t *self, const double *bounds, size_t size);
void
    chorus_histogram_observe (chorus_histogram_t *self, double value);
//  Writes its _bucket, _sum and _count samples (the family must be started)
void
    chorus_histogram_write (chorus_histogram_t *self, chorus_exposition_t *out,
                            const char *name, const char *const *labels);

//  --------------------------------------------------------------------------
//  The server

typedef struct _chorus_metrics_server_t chorus_metrics_server_t;

//  The server calls a chorus_metrics_render_fn (chorus.h) to write the
//  current figures into out (emptied first), on its thread, one scrape at
//  a time

//  Serves GET /metrics on address, "HOST:PORT" (HOST an IPv4 address or
//  "localhost"; PORT 0 takes a free one). NULL, with the reason in error,
//  when the address is bad or cannot be bound
chorus_metrics_server_t *
    chorus_metrics_server_new (const char *address, chorus_metrics_render_fn *render,
                               void *arg, char *error, size_t error_size);
void
    chorus_metrics_server_destroy (chorus_metrics_server_t **self_p);
//  Where it listens, "HOST:PORT" with the port it took
const char *
    chorus_metrics_server_address (chorus_metrics_server_t *self);

#endif
