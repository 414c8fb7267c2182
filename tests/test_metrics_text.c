/*  test_metrics_text.c — the Prometheus text format as the metrics module
    writes it: HELP and TYPE lines, labels escaped, values as Prometheus
    reads them, bad names refused, and histograms cumulative with _sum and
    _count; and the server: it binds, says where, and refuses a bad address.
*/
#include "chorus_metrics.h"
#include "tap.h"

#include <math.h>
#include <string.h>

static void
s_render (chorus_exposition_t *out, void *arg)
{
    chorus_exposition_family (out, "chorus_test", "gauge", "A test");
    chorus_exposition_sample (out, "chorus_test", NULL, *(double *) arg);
}

int
main (void)
{
    chorus_exposition_t *out = chorus_exposition_new ();
    chorus_exposition_family (out, "chorus_things_total", "counter", "Things\\done\nwell");
    const char *labels [] = {"reason", "a \"quoted\"\\back\nline", "state", "ok", NULL};
    chorus_exposition_sample (out, "chorus_things_total", labels, 3);
    chorus_exposition_sample (out, "chorus_things_total", NULL, 0.25);
    chorus_exposition_sample (out, "chorus_things_total", NULL, INFINITY);
    chorus_exposition_sample (out, "chorus_things_total", NULL, NAN);
    chorus_exposition_sample (out, "chorus_things_total", NULL, 12345678901.0);
    is_str (chorus_exposition_text (out, NULL),
            "# HELP chorus_things_total Things\\\\done\\nwell\n"
            "# TYPE chorus_things_total counter\n"
            "chorus_things_total{reason=\"a \\\"quoted\\\"\\\\back\\nline\",state=\"ok\"} 3\n"
            "chorus_things_total 0.25\n"
            "chorus_things_total +Inf\n"
            "chorus_things_total NaN\n"
            "chorus_things_total 12345678901\n",
            "families, samples, escapes and values as the text format has them");
    ok (chorus_exposition_error (out) == NULL, "and no error");

    size_t before;
    chorus_exposition_text (out, &before);
    chorus_exposition_sample (out, "9starts_with_a_digit", NULL, 1);
    const char *bad_label [] = {"__reserved", "x", NULL};
    chorus_exposition_sample (out, "chorus_ok", bad_label, 1);
    chorus_exposition_family (out, "has-dash", "gauge", "x");
    size_t after;
    chorus_exposition_text (out, &after);
    ok (after == before, "bad names write nothing");
    ok (chorus_exposition_error (out)
        && strstr (chorus_exposition_error (out), "'9starts_with_a_digit'"),
        "and the first is named: %s", chorus_exposition_error (out));
    chorus_exposition_reset (out);
    ok (chorus_exposition_text (out, &after) && after == 0 && !chorus_exposition_error (out),
        "reset empties it");

    static const double bounds [] = {0.001, 0.01, 0.1};
    chorus_histogram_t histogram;
    chorus_histogram_init (&histogram, bounds, 3);
    chorus_histogram_observe (&histogram, 0.0005);
    chorus_histogram_observe (&histogram, 0.001);
    chorus_histogram_observe (&histogram, 0.05);
    chorus_histogram_observe (&histogram, 2);
    chorus_exposition_family (out, "chorus_wait_seconds", "histogram", "Waits");
    const char *group [] = {"group", "billing", NULL};
    chorus_histogram_write (&histogram, out, "chorus_wait_seconds", group);
    is_str (chorus_exposition_text (out, NULL),
            "# HELP chorus_wait_seconds Waits\n"
            "# TYPE chorus_wait_seconds histogram\n"
            "chorus_wait_seconds_bucket{group=\"billing\",le=\"0.001\"} 2\n"
            "chorus_wait_seconds_bucket{group=\"billing\",le=\"0.01\"} 2\n"
            "chorus_wait_seconds_bucket{group=\"billing\",le=\"0.1\"} 3\n"
            "chorus_wait_seconds_bucket{group=\"billing\",le=\"+Inf\"} 4\n"
            "chorus_wait_seconds_sum{group=\"billing\"} 2.0515\n"
            "chorus_wait_seconds_count{group=\"billing\"} 4\n",
            "a histogram: cumulative buckets (le inclusive), then _sum and _count");
    chorus_exposition_destroy (&out);
    ok (out == NULL, "destroy nulls the pointer");

    char error [256] = "";
    double figure = 7;
    chorus_metrics_server_t *server = chorus_metrics_server_new ("127.0.0.1:0", s_render,
                                                                 &figure, error, sizeof (error));
    ok (server && strncmp (chorus_metrics_server_address (server), "127.0.0.1:", 10) == 0
        && strcmp (chorus_metrics_server_address (server), "127.0.0.1:0") != 0,
        "a server on port 0 says the port it took: %s",
        server? chorus_metrics_server_address (server): error);
    chorus_metrics_server_t *second = server?
        chorus_metrics_server_new (chorus_metrics_server_address (server), s_render, &figure,
                                   error, sizeof (error)): NULL;
    ok (!second && strstr (error, "cannot be bound"), "a second on its address fails: %s",
        error);
    chorus_metrics_server_destroy (&server);
    const char *bad [] = {"", "localhost", ":80", "127.0.0.1:", "127.0.0.1:65536",
                          "127.0.0.1:80x", "999.1.1.1:80", "example.com:80"};
    for (size_t i = 0; i < sizeof (bad) / sizeof (bad [0]); i++) {
        server = chorus_metrics_server_new (bad [i], s_render, &figure, error, sizeof (error));
        ok (!server && strstr (error, "is not HOST:PORT"), "'%s' is refused: %s", bad [i],
            error);
        chorus_metrics_server_destroy (&server);
    }
    return done_testing ();
}
