#!/bin/sh
#   notify.sh — the notifications service: `chorus on order. --group
#   notifications --persistent notify.sh`, choreography: no one tells it
#   what to do. It reacts to the events the coordinator emits when a flow
#   ends, and logs "TOPIC FLOW ORDER EVENT-ID" once per event (an event
#   delivered again is acknowledged without a second notice).
. "$(dirname "$0")/lib.sh"

serve_lines '
BEGIN {
    notifications = state "/notifications"
    while ((getline line < notifications) > 0) { split(line, f, " "); notified[f[4]] = 1 }
    close(notifications)
}
function handle(    topic) {
    topic = str("topic")
    if ((topic == "order.fulfilled" || topic == "order.cancelled") && !(id in notified)) {
        notified[id] = 1
        append(notifications, topic " " str("flow") " " order " " id)
    }
    #   order.placed and others: not ours to notify, acknowledged all the same
    printf "{\"id\":\"%s\"}\n", id
}'
