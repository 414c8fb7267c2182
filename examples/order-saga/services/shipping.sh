#!/bin/sh
#   shipping.sh create_label — the shipping service, run by
#   `chorus serve shipping ...`. No carrier delivers to Atlantis: those
#   orders fail on every try, after the card was charged and the items
#   reserved, so the saga compensates: release every item, then refund.
. "$(dirname "$0")/lib.sh"

case "$1" in
create_label)
    if printf '%s\n' "$payload" | grep -q "Atlantis"; then
        note "no carrier delivers to Atlantis"
        echo "no carrier delivers to Atlantis" >&2
        exit 3
    fi
    record_effect
    echo "{\"label\": \"lbl-$order\", \"carrier\": \"chorus-post\"}"
    ;;
*)
    echo "shipping.sh: unknown command '$1'" >&2
    exit 64
    ;;
esac
