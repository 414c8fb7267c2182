#!/bin/sh
#   The alert rules shipped in contrib/prometheus load (promtool check
#   rules), fire on the figures they are for after their `for` and stay
#   quiet on healthy ones (promtool test rules), and read only series that
#   Chorus serves.
. "$srcdir/tests/tap.sh"
rules="$srcdir/contrib/prometheus/chorus-alerts.yml"
if ! command -v promtool >/dev/null 2>&1; then
    skip "promtool is not installed (Debian package prometheus)"
    done_testing; exit
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
promtool check rules "$rules" >"$tmp/check.out" 2>&1
ok $? "promtool check rules: $(grep -o '[0-9]* rules found' "$tmp/check.out")"
for alert in ChorusFlowsStuck ChorusGroupLagGrowing ChorusOutboxOld ChorusPeerSuspect ChorusNodeStalled \
             ChorusRetryStorm; do
    grep -q "alert: $alert$" "$rules"; ok $? "the rules have $alert"
done
(cd "$srcdir/contrib/prometheus" && promtool test rules chorus-alerts.test.yml) >"$tmp/test.out" 2>&1
ok $? "promtool test rules: each fires when it should and only then $(grep -v '^ *$' "$tmp/test.out" | tail -5 | tr '\n' ' ')"
#   A copy whose stuck rule waits an hour must fail the same tests: they
#   can tell a rule that fires from one that does not
sed 's/^        for: 5m$/        for: 60m/' "$rules" > "$tmp/chorus-alerts.yml"
sed "s|^  - chorus-alerts.yml|  - $tmp/chorus-alerts.yml|" \
    "$srcdir/contrib/prometheus/chorus-alerts.test.yml" > "$tmp/chorus-alerts.test.yml"
(cd "$tmp" && promtool test rules chorus-alerts.test.yml) >"$tmp/broken.out" 2>&1
[ $? -ne 0 ]; ok $? "the tests fail rules that do not fire"
#   Every chorus_ series the rules read is one a node or the coordinator serves
missing=""
for series in $(grep -o 'chorus_[a-z_]*' "$rules" | sort -u); do
    base=$(echo "$series" | sed 's/_\(bucket\|count\|sum\)$//')
    grep -q "\"$base\"" "$srcdir/node/chorus_stats.c" "$srcdir/coordinator/chorus_coordinator_stats.c" \
        || missing="$missing $series"
done
[ -z "$missing" ]; ok $? "the rules read only series Chorus serves${missing:+ (not served:$missing)}"
done_testing
