#!/bin/sh
#   shipping.sh — the shipping service: `chorus serve shipping --persistent
#   shipping.sh --handle create_label`. No carrier delivers to Atlantis:
#   those orders fail on every try, after the card was charged and the
#   items reserved, so the saga compensates: release every item, then refund.
. "$(dirname "$0")/lib.sh"

serve_lines '
function handle() {
    if (command == "create_label") {
        if (index($0, "Atlantis")) {
            note("no carrier delivers to Atlantis")
            fail("no-carrier", "no carrier delivers to Atlantis")
        }
        else {
            record_effect()
            reply("{\"label\":\"lbl-" order "\",\"carrier\":\"chorus-post\"}")
        }
    }
    else fail("unknown-command", "shipping.sh: unknown command " command, 1)
}'
