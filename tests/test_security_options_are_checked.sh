#!/bin/sh
#   A secure node needs both its certificate and a trust directory: every
#   program that runs a node stops with a usage error (exit 2) that names
#   the missing one when it is given only one of --cert and --trust, or
#   of CHORUS_CERT and CHORUS_TRUST, before it starts anything.
. "$srcdir/tests/tap.sh"
chorus="$top_builddir/tools/chorus"
coordinator="$top_builddir/coordinator/chorus-coordinator"
flows="$srcdir/examples/order-saga/flows"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
unset CHORUS_CERT CHORUS_TRUST CHORUS_SEEDS

#   refused WHAT MISSING-MESSAGE CMD...: CMD exits 2 at once, saying
#   MISSING-MESSAGE, and creates no store (each CMD is given $tmp/store)
refused () {
    what=$1 message=$2; shift 2
    rm -rf "$tmp/store"
    timeout 20 "$@" >/dev/null 2>"$tmp/err"; rc=$?
    [ $rc -eq 2 ] && grep -qF -- "$message" "$tmp/err" && [ ! -e "$tmp/store" ]
    ok $? "$what: exit $rc, no store: $(head -1 "$tmp/err")"
}

#   Each subcommand as it would run a node, with a store where it takes one
set -- \
    "tail|--store $tmp/store" \
    "peers|--wait 100 --store $tmp/store" \
    "send|svc cmd --timeout 1 --store $tmp/store" \
    "publish|order.placed {} --timeout 1 --store $tmp/store" \
    "on|order. --group billing --exec true --store $tmp/store" \
    "serve|billing --handle charge=true --store $tmp/store" \
    "flow list|--store $tmp/store"
for entry in "$@"; do
    sub=${entry%%|*}
    args=${entry#*|}
    # shellcheck disable=SC2086
    refused "chorus $sub --cert" "--cert needs --trust (or CHORUS_TRUST)" \
        "$chorus" $sub $args --cert "$tmp/none.cert_secret"
    # shellcheck disable=SC2086
    refused "chorus $sub --trust" "--trust needs --cert (or CHORUS_CERT)" \
        "$chorus" $sub $args --trust "$tmp"
    # shellcheck disable=SC2086
    refused "chorus $sub with CHORUS_CERT" "CHORUS_CERT needs --trust (or CHORUS_TRUST)" \
        env CHORUS_CERT="$tmp/none.cert_secret" "$chorus" $sub $args
    # shellcheck disable=SC2086
    refused "chorus $sub with CHORUS_TRUST" "CHORUS_TRUST needs --cert (or CHORUS_CERT)" \
        env CHORUS_TRUST="$tmp" "$chorus" $sub $args
done
refused "an empty CHORUS_TRUST is no trust directory" "CHORUS_CERT needs --trust" \
    env CHORUS_CERT="$tmp/none.cert_secret" CHORUS_TRUST= "$chorus" tail --store "$tmp/store"
grep -q "a secure node must know which keys to accept" "$tmp/err"; ok $? "and says why"
refused "the message points at --help" "(see chorus tail --help)" \
    "$chorus" tail --store "$tmp/store" --cert "$tmp/none.cert_secret"

refused "chorus-coordinator --cert" "--cert needs --trust (or CHORUS_TRUST)" \
    "$coordinator" --flows "$flows" --store "$tmp/store" --cert "$tmp/none.cert_secret"
refused "chorus-coordinator --trust" "--trust needs --cert (or CHORUS_CERT)" \
    "$coordinator" --flows "$flows" --store "$tmp/store" --trust "$tmp"
refused "chorus-coordinator with CHORUS_CERT" "CHORUS_CERT needs --trust (or CHORUS_TRUST)" \
    env CHORUS_CERT="$tmp/none.cert_secret" "$coordinator" --flows "$flows" --store "$tmp/store"
refused "chorus-coordinator with CHORUS_TRUST" "CHORUS_TRUST needs --cert (or CHORUS_CERT)" \
    env CHORUS_TRUST="$tmp" "$coordinator" --flows "$flows" --store "$tmp/store"
env CHORUS_CERT="$tmp/none.cert_secret" "$coordinator" --check "$flows" >/dev/null
ok $? "chorus-coordinator --check runs no node, so it needs neither"
done_testing
