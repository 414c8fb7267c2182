#!/bin/sh
#   payments.sh — the payments service: `chorus serve payments --persistent
#   payments.sh --handle charge --handle refund`, one long-lived process
#   answering a request a line.
#   Failures are injected, deterministically: every order whose number ends
#   in 7 is declined on every try (the coordinator's 5 tries run out, the
#   flow fails), and the first try of orders ending in 3 hits a flaky
#   gateway (the coordinator's retry succeeds).
. "$(dirname "$0")/lib.sh"

serve_lines '
function handle() {
    if (command == "charge") {
        if (number % 10 == 7) {
            note("declined")
            fail("declined", "card declined for " order)
        }
        else if (number % 10 == 3 && first_try()) {
            note("gateway timeout, try again")
            fail("gateway-timeout", "payment gateway timed out")
        }
        else {
            record_effect()
            reply("{\"charge_id\":\"ch-" order "\",\"amount\":" num("amount") "}")
        }
    }
    else if (command == "refund") {
        record_effect()
        note("refunded " str("charge_id"))
        reply("{\"refunded\":\"" str("charge_id") "\"}")
    }
    else fail("unknown-command", "payments.sh: unknown command " command, 1)
}'
