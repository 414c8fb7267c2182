#!/bin/sh
#   notify.sh — the notifications service, run by
#   `chorus on order. --group notifications --exec notify.sh`: choreography,
#   no one tells it what to do. It reacts to the events the coordinator
#   emits when a flow ends, and logs "TOPIC FLOW ORDER" once per event
#   (an event delivered again is acknowledged without a second notice).
: "${ORDER_SAGA_STATE:?ORDER_SAGA_STATE must name the demo's state directory}"

case "$CHORUS_TOPIC" in
order.fulfilled|order.cancelled) ;;
*) exit 0 ;;                     # order.placed and others: not ours to notify
esac
event=$(cat)
flow=$(printf '%s\n' "$event" | sed -n 's/.*"flow": *"\([^"]*\)".*/\1/p')
order=$(printf '%s\n' "$event" | sed -n 's/.*"order_id": *"\([^"]*\)".*/\1/p')
(
    flock 9
    grep -q " $CHORUS_EVENT_ID\$" "$ORDER_SAGA_STATE/notifications" 2>/dev/null && exit 0
    echo "$CHORUS_TOPIC $flow $order $CHORUS_EVENT_ID" >> "$ORDER_SAGA_STATE/notifications"
) 9>>"$ORDER_SAGA_STATE/lock"
