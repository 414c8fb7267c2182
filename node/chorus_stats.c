/*  chorus_stats.c — what a node shows at /metrics: the engine's counters as
    it last copied them (about once a second), its peers by state, and its
    outbox, read from the store at the scrape. Names follow Prometheus's
    rules: the chorus_ prefix, _total on counters, bounded labels.
*/
#include "chorus_context.h"
#include "chorus_metrics.h"

//  The engine's counters, a sample each: rows of one series follow each
//  other, and the first of them carries its help
typedef struct {
    const char *name;           //  the series
    const char *help;           //  on its first row, NULL on the others
    chorus__counter_t counter;  //  the engine's counter
    const char *reason;         //  the reason label's value, NULL: no label
} s_counter_t;

static const s_counter_t s_counters [] = {
    {"chorus_events_published_total", "Events this node published", C_PUBLISHED, NULL},
    {"chorus_events_delivered_total", "Events this node delivered to the groups that take "
     "them (first tries)", C_DELIVERED, NULL},
    {"chorus_events_redelivered_total", "Events this node delivered to a group again, "
     "unacknowledged", C_REDELIVERED, NULL},
    {"chorus_events_handled_total", "Events of other nodes this node's handlers took",
     C_HANDLED, NULL},
    {"chorus_events_duplicate_total", "Events and commands this node received again and did "
     "not run twice", C_DUPLICATES, NULL},
    {"chorus_commands_sent_total", "Commands this node sent", C_COMMANDS_SENT, NULL},
    {"chorus_commands_handled_total", "Commands this node's handlers ran", C_COMMANDS_HANDLED,
     NULL},
    {"chorus_commands_failed_total", "Commands this node sent that failed, by reason",
     C_TIMEOUTS, "timeout"},
    {"chorus_commands_failed_total", NULL, C_EXPIRED_COMMANDS, "expired"},
    {"chorus_messages_dropped_total", "Messages this node received and dropped, by reason",
     C_MALFORMED, "malformed"},
    {"chorus_messages_dropped_total", NULL, C_FORGED, "forged"},
    {"chorus_messages_dropped_total", NULL, C_UNKNOWN_PEER, "unknown_peer"},
    {"chorus_messages_dropped_total", NULL, C_FORBIDDEN, "forbidden"},
    {"chorus_connections_refused_total", "Peers and connections refused, by reason",
     C_REFUSED, "peer_limit"},
    {"chorus_connections_refused_total", NULL, C_CONNECTIONS_REFUSED, "connection_limit"},
    {"chorus_connections_refused_total", NULL, C_UNAUTHORISED, "unauthorised"},
    {"chorus_connections_refused_total", NULL, C_HANDSHAKES_FAILED, "handshake"},
    {"chorus_events_truncated_total", "Ranges of events this node was told it will never get",
     C_TRUNCATED, NULL},
    {"chorus_stalls_total", "Times this node found it had handled its timers 200 ms or more "
     "late (stopped, or starved of CPU)", C_STALLS, NULL},
    {"chorus_probe_datagrams_total", "Probes (PING) and their answers (PONG) this node sent "
     "by datagram (UDP) rather than over a connection", C_DATAGRAMS, NULL},
    {"chorus_connections_closed_idle_total", "Connections to peers this node closed because "
     "they went unused (it opens them again when it needs them)", C_IDLE_CLOSES, NULL},
};

//  Buckets of the latencies, in seconds
static const double s_ack_bounds [] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60
};
static const double s_command_bounds [] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60
};

void
chorus__stats_init (chorus__stats_t *stats)
{
    pthread_mutex_init (&stats->lock, NULL);
    chorus_histogram_init (&stats->ack_duration, s_ack_bounds,
                           sizeof (s_ack_bounds) / sizeof (s_ack_bounds [0]));
    chorus_histogram_init (&stats->command_duration, s_command_bounds,
                           sizeof (s_command_bounds) / sizeof (s_command_bounds [0]));
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
    for (size_t i = 0; i < sizeof (s_counters) / sizeof (s_counters [0]); i++) {
        const s_counter_t *row = &s_counters [i];
        if (row->help)
            chorus_exposition_family (out, row->name, "counter", row->help);
        const char *labels [] = {"reason", row->reason, NULL};
        chorus_exposition_sample (out, row->name, row->reason? labels: NULL,
                                  (double) stats->counters [row->counter]);
    }
    chorus_exposition_family (out, "chorus_peers", "gauge", "Peers this node knows, by state");
    const char *alive [] = {"state", "alive", NULL};
    const char *evasive [] = {"state", "evasive", NULL};
    chorus_exposition_sample (out, "chorus_peers", alive, (double) stats->peers_alive);
    chorus_exposition_sample (out, "chorus_peers", evasive, (double) stats->peers_evasive);
    chorus_exposition_family (out, "chorus_local_health", "gauge",
                              "How slow this node finds itself, 0 (well) to 8: its probe times "
                              "are stretched by 1 + this");
    chorus_exposition_sample (out, "chorus_local_health", NULL, (double) stats->local_health);
    chorus_exposition_family (out, "chorus_group_lag_messages", "gauge",
                              "Events of this node a group that takes them has not "
                              "acknowledged yet, by group");
    for (size_t i = 0; i < stats->groups_size; i++) {
        const char *labels [] = {"group", stats->groups [i].name, NULL};
        chorus_exposition_sample (out, "chorus_group_lag_messages", labels,
                                  (double) stats->groups [i].lag);
    }
    //  Bounded: the first CHORUS_STATS_TOPICS topics apart, the rest as
    //  topic="_other" (added to a topic of that name, if one was counted
    //  apart: a series appears once)
    chorus_exposition_family (out, "chorus_topic_events_published_total", "counter",
                              "Events this node published, by topic (the first 64 topics it "
                              "published on; the others as topic=\"_other\")");
    bool other_named = false;
    for (size_t i = 0; i < stats->topics_size; i++) {
        bool other = streq (stats->topics [i].name, "_other");
        const char *labels [] = {"topic", stats->topics [i].name, NULL};
        chorus_exposition_sample (out, "chorus_topic_events_published_total", labels,
                                  (double) (stats->topics [i].published
                                            + (other? stats->topics_other: 0)));
        other_named |= other;
    }
    if (!other_named && stats->topics_size == CHORUS_STATS_TOPICS) {
        const char *labels [] = {"topic", "_other", NULL};
        chorus_exposition_sample (out, "chorus_topic_events_published_total", labels,
                                  (double) stats->topics_other);
    }
    pthread_mutex_unlock (&stats->lock);
    chorus_exposition_family (out, "chorus_event_ack_duration_seconds", "histogram",
                              "Time from delivering an event to a group's instance to its "
                              "acknowledgement");
    chorus_histogram_write (&stats->ack_duration, out, "chorus_event_ack_duration_seconds", NULL);
    chorus_exposition_family (out, "chorus_command_duration_seconds", "histogram",
                              "Time from sending a command to its reply");
    chorus_histogram_write (&stats->command_duration, out, "chorus_command_duration_seconds",
                            NULL);
    chorus_exposition_family (out, "chorus_outbox_messages", "gauge",
                              "Events this node keeps for groups that have not all "
                              "acknowledged them");
    chorus_exposition_sample (out, "chorus_outbox_messages", NULL,
                              (double) chorus_store_events (store));
    chorus_exposition_family (out, "chorus_outbox_bytes", "gauge",
                              "Bytes of the events in the outbox");
    chorus_exposition_sample (out, "chorus_outbox_bytes", NULL,
                              (double) chorus_store_bytes (store));
    pthread_mutex_lock (&stats->lock);
    uint64_t published = stats->oldest_pending;
    pthread_mutex_unlock (&stats->lock);
    uint64_t now = chorus__now ();
    chorus_exposition_family (out, "chorus_outbox_oldest_age_seconds", "gauge",
                              "Age of the oldest event in the outbox that a group has not "
                              "acknowledged yet (0: none)");
    chorus_exposition_sample (out, "chorus_outbox_oldest_age_seconds", NULL,
                              published && now > published?
                              (double) (now - published) / 1000: 0);
}
