/*  chorus_stats.c — what a node shows at /metrics: the engine's counters as
    it last copied them (about once a second), its peers by state, and its
    outbox, read from the store at the scrape. Names follow Prometheus's
    rules: the chorus_ prefix, _total on counters, bounded labels.
*/
#include "chorus_context.h"
#include "chorus_metrics.h"

//  One counter of the engine's, as a sample
static void
s_counter (chorus_exposition_t *out, chorus__stats_t *stats, const char *name,
           chorus__counter_t counter, const char *label, const char *value)
{
    const char *labels [] = {label, value, NULL};
    chorus_exposition_sample (out, name, label? labels: NULL,
                              (double) stats->counters [counter]);
}

void
chorus__stats_render (chorus__stats_t *stats, chorus_store_t *store, const char *service,
                      chorus_exposition_t *out)
{
    chorus_exposition_family (out, "chorus_build_info", "gauge",
                              "The version of Chorus this node runs (always 1)");
    char version [32];
    snprintf (version, sizeof (version), "%d.%d.%d", CHORUS_VERSION_MAJOR,
              CHORUS_VERSION_MINOR, CHORUS_VERSION_PATCH);
    const char *build [] = {"version", version, "service", service, NULL};
    chorus_exposition_sample (out, "chorus_build_info", build, 1);
    pthread_mutex_lock (&stats->lock);
    chorus_exposition_family (out, "chorus_events_published_total", "counter",
                              "Events this node published");
    s_counter (out, stats, "chorus_events_published_total", C_PUBLISHED, NULL, NULL);
    chorus_exposition_family (out, "chorus_events_delivered_total", "counter",
                              "Events this node delivered to the groups that take them "
                              "(first tries)");
    s_counter (out, stats, "chorus_events_delivered_total", C_DELIVERED, NULL, NULL);
    chorus_exposition_family (out, "chorus_events_redelivered_total", "counter",
                              "Events this node delivered to a group again, unacknowledged");
    s_counter (out, stats, "chorus_events_redelivered_total", C_REDELIVERED, NULL, NULL);
    chorus_exposition_family (out, "chorus_events_handled_total", "counter",
                              "Events of other nodes this node's handlers took");
    s_counter (out, stats, "chorus_events_handled_total", C_HANDLED, NULL, NULL);
    chorus_exposition_family (out, "chorus_events_duplicate_total", "counter",
                              "Events and commands this node received again and did not "
                              "run twice");
    s_counter (out, stats, "chorus_events_duplicate_total", C_DUPLICATES, NULL, NULL);
    chorus_exposition_family (out, "chorus_commands_sent_total", "counter",
                              "Commands this node sent");
    s_counter (out, stats, "chorus_commands_sent_total", C_COMMANDS_SENT, NULL, NULL);
    chorus_exposition_family (out, "chorus_commands_handled_total", "counter",
                              "Commands this node's handlers ran");
    s_counter (out, stats, "chorus_commands_handled_total", C_COMMANDS_HANDLED, NULL, NULL);
    chorus_exposition_family (out, "chorus_commands_failed_total", "counter",
                              "Commands this node sent that failed, by reason");
    s_counter (out, stats, "chorus_commands_failed_total", C_TIMEOUTS, "reason", "timeout");
    s_counter (out, stats, "chorus_commands_failed_total", C_EXPIRED_COMMANDS, "reason",
               "expired");
    chorus_exposition_family (out, "chorus_messages_dropped_total", "counter",
                              "Messages this node received and dropped, by reason");
    s_counter (out, stats, "chorus_messages_dropped_total", C_MALFORMED, "reason", "malformed");
    s_counter (out, stats, "chorus_messages_dropped_total", C_FORGED, "reason", "forged");
    s_counter (out, stats, "chorus_messages_dropped_total", C_UNKNOWN_PEER, "reason",
               "unknown_peer");
    s_counter (out, stats, "chorus_messages_dropped_total", C_FORBIDDEN, "reason", "forbidden");
    chorus_exposition_family (out, "chorus_connections_refused_total", "counter",
                              "Peers and connections refused, by reason");
    s_counter (out, stats, "chorus_connections_refused_total", C_REFUSED, "reason",
               "peer_limit");
    s_counter (out, stats, "chorus_connections_refused_total", C_CONNECTIONS_REFUSED, "reason",
               "connection_limit");
    s_counter (out, stats, "chorus_connections_refused_total", C_UNAUTHORISED, "reason",
               "unauthorised");
    s_counter (out, stats, "chorus_connections_refused_total", C_HANDSHAKES_FAILED, "reason",
               "handshake");
    chorus_exposition_family (out, "chorus_events_truncated_total", "counter",
                              "Ranges of events this node was told it will never get");
    s_counter (out, stats, "chorus_events_truncated_total", C_TRUNCATED, NULL, NULL);
    chorus_exposition_family (out, "chorus_peers", "gauge", "Peers this node knows, by state");
    const char *alive [] = {"state", "alive", NULL};
    const char *evasive [] = {"state", "evasive", NULL};
    chorus_exposition_sample (out, "chorus_peers", alive, (double) stats->peers_alive);
    chorus_exposition_sample (out, "chorus_peers", evasive, (double) stats->peers_evasive);
    pthread_mutex_unlock (&stats->lock);
    chorus_exposition_family (out, "chorus_outbox_messages", "gauge",
                              "Events this node keeps for groups that have not all "
                              "acknowledged them");
    chorus_exposition_sample (out, "chorus_outbox_messages", NULL,
                              (double) chorus_store_events (store));
    chorus_exposition_family (out, "chorus_outbox_bytes", "gauge",
                              "Bytes of the events in the outbox");
    chorus_exposition_sample (out, "chorus_outbox_bytes", NULL,
                              (double) chorus_store_bytes (store));
}
