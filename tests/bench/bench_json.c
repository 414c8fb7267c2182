/*  bench_json.c — collects a bench program's figures and writes them as
    one JSON object with jansson (see bench_json.h for the shape).
*/
#include "bench_json.h"

#include <jansson.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct _bench_json_t {
    json_t *root;               //  the program's object
    char *path;                 //  where it goes, or NULL for nowhere
};

bench_json_t *
bench_json_new (const char *program, const char *path)
{
    bench_json_t *self = (bench_json_t *) calloc (1, sizeof (bench_json_t));
    if (!self)
        return NULL;
    long cores = sysconf (_SC_NPROCESSORS_ONLN);
    self->root = json_pack ("{s:s, s:i, s:[], s:[]}", "program", program, "cores",
                            (int) (cores > 0? cores: 0), "measures", "targets");
    self->path = path? strdup (path): NULL;
    if (!self->root || (path && !self->path)) {
        json_decref (self->root);
        free (self->path);
        free (self);
        return NULL;
    }
    return self;
}

int
bench_json_destroy (bench_json_t **self_p)
{
    if (!self_p || !*self_p)
        return 0;
    bench_json_t *self = *self_p;
    int rc = 0;
    size_t flags = JSON_INDENT (2) | JSON_REAL_PRECISION (10);
    if (self->path && json_dump_file (self->root, self->path, flags)) {
        fprintf (stderr, "bench: cannot write %s\n", self->path);
        rc = -1;
    }
    json_decref (self->root);
    free (self->path);
    free (self);
    *self_p = NULL;
    return rc;
}

//  A number, or null where there is none: JSON has no NaN or infinity
static json_t *
s_number (double value)
{
    return isfinite (value)? json_real (value): json_null ();
}

void
bench_json_measure (bench_json_t *self, const char *name, double value, const char *unit,
                    const char *baseline, double baseline_value)
{
    if (!self)
        return;
    bool compared = baseline && isfinite (baseline_value);
    double ratio = compared && baseline_value != 0? value / baseline_value: NAN;
    json_t *measure = json_pack ("{s:s, s:o, s:s, s:o, s:o, s:o}", "name", name,
                                 "value", s_number (value), "unit", unit,
                                 "baseline", baseline? json_string (baseline): json_null (),
                                 "baseline_value", compared? s_number (baseline_value): json_null (),
                                 "ratio", s_number (ratio));
    if (measure)
        json_array_append_new (json_object_get (self->root, "measures"), measure);
}

void
bench_json_target (bench_json_t *self, const char *text, bool met)
{
    if (!self)
        return;
    json_t *target = json_pack ("{s:s, s:b}", "target", text, "met", met);
    if (target)
        json_array_append_new (json_object_get (self->root, "targets"), target);
}
