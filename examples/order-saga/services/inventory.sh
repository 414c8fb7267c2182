#!/bin/sh
#   inventory.sh — the inventory service: `chorus serve inventory
#   --persistent inventory.sh --handle reserve --handle release`. The
#   coordinator fans out one reserve per item of the order (for_each), and
#   one release per reserved item when the saga compensates.
. "$(dirname "$0")/lib.sh"

serve_lines '
function handle() {
    if (command == "reserve") {
        record_effect()
        reply("{\"reservation\":\"" key "\",\"sku\":\"" str("sku") "\",\"qty\":" num("qty") "}")
    }
    else if (command == "release") {
        record_effect()
        note("released " str("sku") " of " order)
        reply("{\"released\":\"" str("sku") "\"}")
    }
    else fail("unknown-command", "inventory.sh: unknown command " command, 1)
}'
