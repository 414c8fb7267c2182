#   lib.sh — what the order-saga services share, sourced by each handler:
#   the command's payload, and the effects file where every handler records
#   what it did, once per idempotency key (the file is the services' "database").
#   ORDER_SAGA_STATE names the directory that holds it; scripts/demo sets it.

: "${ORDER_SAGA_STATE:?ORDER_SAGA_STATE must name the demo's state directory}"
effects="$ORDER_SAGA_STATE/effects"
key="${CHORUS_IDEMPOTENCY_KEY:-none}"
payload=$(cat)

#   field NAME: a string or number field of the payload (our payloads are flat)
field () {
    printf '%s\n' "$payload" | sed -n "s/.*\"$1\": *\"\{0,1\}\([^\",}]*\).*/\1/p"
}

#   locked CMD...: runs CMD under the state directory's lock, so that two
#   handlers running at once cannot both miss a key and both append it
locked () {
    ( flock 9 && "$@" ) 9>>"$ORDER_SAGA_STATE/lock"
}

#   The effect happens once per key: a command run again with the same key
#   (a retry whose first reply was lost) finds its key and does nothing twice
s_record () {
    if grep -qxF "$key" "$effects" 2>/dev/null; then
        echo "$key again" >> "$ORDER_SAGA_STATE/duplicates"
    else
        echo "$key" >> "$effects"
    fi
}
record_effect () { locked s_record; }

#   first_try: true the first time this key is seen by the caller (flaky
#   dependencies below fail a first try to show the coordinator retrying)
s_first_try () {
    grep -qxF "$key" "$ORDER_SAGA_STATE/tried" 2>/dev/null && return 1
    echo "$key" >> "$ORDER_SAGA_STATE/tried"
}
first_try () { locked s_first_try; }

#   note TEXT: one line in the services' log, shown by scripts/demo at the end
note () {
    echo "$CHORUS_COMMAND $key: $*" >> "$ORDER_SAGA_STATE/services.log"
}

#   The number of an order id "o-N", 0 for any other id
order=$(field order_id)
number=${order#o-}
case "$number" in ''|*[!0-9]*) number=0 ;; esac
