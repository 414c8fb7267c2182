#!/bin/sh
#   payments.sh charge|refund — the payments service, run by
#   `chorus serve payments --handle charge='payments.sh charge' ...`.
#   Failures are injected, deterministically: every order whose number ends
#   in 7 is declined on every try (the coordinator's 5 tries run out, the
#   flow fails), and the first try of orders ending in 3 hits a flaky
#   gateway (the coordinator's retry succeeds).
. "$(dirname "$0")/lib.sh"

case "$1" in
charge)
    if [ $((number % 10)) -eq 7 ]; then
        note "declined"
        echo "card declined for $order" >&2
        exit 2
    fi
    if [ $((number % 10)) -eq 3 ] && first_try; then
        note "gateway timeout, try again"
        echo "payment gateway timed out" >&2
        exit 75
    fi
    record_effect
    echo "{\"charge_id\": \"ch-$order\", \"amount\": $(field amount)}"
    ;;
refund)
    record_effect
    note "refunded $(field charge_id)"
    echo "{\"refunded\": \"$(field charge_id)\"}"
    ;;
*)
    echo "payments.sh: unknown command '$1'" >&2
    exit 64
    ;;
esac
