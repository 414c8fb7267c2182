/*  bench_json.h — the figures a bench program writes with --json FILE, for
    scripts/bench to merge into one document. One object per program:
    {"program", "cores", "measures": [...], "targets": [...]}; a measure has
    its name, value and unit, and its baseline's name and value and the
    ratio value / baseline value (all three null when it has no baseline).
*/
#ifndef BENCH_JSON_H_INCLUDED
#define BENCH_JSON_H_INCLUDED

#include <stdbool.h>

typedef struct _bench_json_t bench_json_t;

//  Figures of PROGRAM, to be written to PATH; a NULL path makes an object
//  that takes figures and writes nothing, so callers need not ask
bench_json_t *
    bench_json_new (const char *program, const char *path);
//  Writes what was added (when there is a path), then destroys; 0 or -1
//  after a message. Safe to call twice
int
    bench_json_destroy (bench_json_t **self_p);
//  A measure beside its baseline; BASELINE NULL for one that has none
void
    bench_json_measure (bench_json_t *self, const char *name, double value, const char *unit,
                        const char *baseline, double baseline_value);
//  An acceptance target and whether this run met it
void
    bench_json_target (bench_json_t *self, const char *text, bool met);

#endif
