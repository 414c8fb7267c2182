#!/bin/sh
#   inventory.sh reserve|release — the inventory service, run by
#   `chorus serve inventory ...`. The coordinator fans out one reserve per
#   item of the order (for_each), and one release per reserved item when the
#   saga compensates.
. "$(dirname "$0")/lib.sh"

sku=$(field sku)
case "$1" in
reserve)
    record_effect
    echo "{\"reservation\": \"$key\", \"sku\": \"$sku\", \"qty\": $(field qty)}"
    ;;
release)
    record_effect
    note "released $sku of $order"
    echo "{\"released\": \"$sku\"}"
    ;;
*)
    echo "inventory.sh: unknown command '$1'" >&2
    exit 64
    ;;
esac
