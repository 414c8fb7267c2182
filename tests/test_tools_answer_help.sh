#!/bin/sh
#   The installed programs answer --help and --version, say what exists,
#   and refuse an unknown subcommand or option with a clear error.
. "$srcdir/tests/tap.sh"
chorus="$top_builddir/tools/chorus"
coord="$top_builddir/coordinator/chorus-coordinator"
for prog in "$chorus" "$coord"; do
    name=$(basename "$prog")
    out=$("$prog" --help); ok $? "$name --help exits 0"
    echo "$out" | grep -qi usage; ok $? "$name --help prints usage"
    out=$("$prog" --version); ok $? "$name --version exits 0"
    echo "$out" | grep -q "0\.1\.0"; ok $? "$name --version prints the version ($out)"
    err=$("$prog" --no-such-option 2>&1 >/dev/null); rc=$?
    [ $rc -eq 2 ]; ok $? "$name refuses an unknown option with exit 2"
    echo "$err" | grep -q -- "--no-such-option"; ok $? "$name names the unknown option"
done
#   chorus-coordinator --check validates a flows directory
out=$("$coord" --check "$srcdir/examples/order-saga/flows"); rc=$?
[ $rc -eq 0 ]; ok $? "--check accepts the example flows: $out"
tmp=$(mktemp -d)
cp "$srcdir/tests/flows/bad/cycle.yaml" "$tmp/"
err=$("$coord" --check "$tmp" 2>&1 >/dev/null); rc=$?
rm -rf "$tmp"
[ $rc -eq 1 ]; ok $? "--check refuses a bad flow with exit 1"
echo "$err" | grep -qE "cycle.yaml:[0-9]+:[0-9]+: cycle in depends_on"
ok $? "and says file:line:column: what is wrong ($err)"
#   chorus top reads endpoints, and says how to name them
out=$("$chorus" top --help); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "^usage: chorus top --metrics HOST:PORT" \
    && echo "$out" | grep -q -- "--once"
ok $? "chorus top --help shows its usage"
err=$("$chorus" top 2>&1 >/dev/null); rc=$?
[ $rc -eq 2 ] && echo "$err" | grep -q "name the endpoints to read with --metrics HOST:PORT"
ok $? "chorus top with no endpoint exits 2 and says what to give ($err)"
err=$("$chorus" top --metrics nowhere 2>&1 >/dev/null); rc=$?
[ $rc -eq 2 ] && echo "$err" | grep -q "'nowhere' is not HOST:PORT"
ok $? "chorus top refuses a bad endpoint ($err)"
out=$("$chorus" --help); echo "$out" | grep -q "^  top "
ok $? "chorus --help lists top"
#   Every program that joins a mesh says how to name it
for sub in publish send serve on tail peers flow; do
    out=$("$chorus" $sub --help)
    echo "$out" | grep -q -- "--mesh NAME" && echo "$out" | grep -q CHORUS_MESH
    ok $? "chorus $sub --help names --mesh and CHORUS_MESH"
done
out=$("$coord" --help)
echo "$out" | grep -q -- "--mesh NAME" && echo "$out" | grep -q CHORUS_MESH
ok $? "chorus-coordinator --help names --mesh and CHORUS_MESH"
#   ... and its web console
echo "$out" | grep -q -- "--http HOST:PORT" && echo "$out" | grep -q CHORUS_HTTP \
    && echo "$out" | grep -q -- "--http-token FILE" && echo "$out" | grep -q HTTP.md
ok $? "chorus-coordinator --help names --http, --http-token, CHORUS_HTTP and HTTP.md"
#   ... and how to make it secure
for sub in publish send serve on tail peers "flow list" "flow defs"; do
    out=$("$chorus" $sub --help)
    echo "$out" | grep -q -- "--cert FILE" && echo "$out" | grep -q -- "--trust DIR" \
        && echo "$out" | grep -q CHORUS_CERT && echo "$out" | grep -q CHORUS_TRUST \
        && echo "$out" | grep -q "ENDPOINT@KEY"
    ok $? "chorus $sub --help names --cert, --trust, their variables and ENDPOINT@KEY"
done
out=$("$coord" --help)
echo "$out" | grep -q -- "--cert FILE" && echo "$out" | grep -q -- "--trust DIR" \
    && echo "$out" | grep -q CHORUS_CERT && echo "$out" | grep -q CHORUS_TRUST \
    && echo "$out" | grep -q "ENDPOINT@KEY"
ok $? "chorus-coordinator --help names --cert, --trust, their variables and ENDPOINT@KEY"
#   Hot deploy: flow defs, and how the coordinator reloads its flows
out=$("$chorus" flow defs --help); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "^usage: chorus flow defs" && echo "$out" | grep -q SIGHUP \
    && echo "$out" | grep -q -- "--json" && echo "$out" | grep -q "file:line:column"
ok $? "chorus flow defs --help says what it lists, --json, SIGHUP and file:line:column"
"$chorus" flow --help | grep -q '^  defs '; ok $? "chorus flow --help lists defs"
err=$("$chorus" flow defs extra 2>&1 >/dev/null); rc=$?
[ $rc -eq 2 ] && echo "$err" | grep -q "unexpected argument 'extra'"
ok $? "chorus flow defs refuses an argument with exit 2: $err"
out=$("$coord" --help)
echo "$out" | grep -q "loaded again on" && echo "$out" | grep -q "SIGHUP or within a second" \
    && echo "$out" | grep -q "chorus flow defs"
ok $? "chorus-coordinator --help says when --flows is loaded again"
"$chorus" --help | grep -q CHORUS_MESH; ok $? "chorus --help names CHORUS_MESH"
"$chorus" --help | grep -q '^  keygen '; ok $? "chorus --help lists keygen"
"$chorus" help keygen | grep -q -- "--show FILE"; ok $? "chorus help keygen shows its help"
err=$(CHORUS_MESH='two words' "$chorus" peers --wait 0 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && echo "$err" | grep -q "bad CHORUS_MESH: invalid argument: 'two words' is not a mesh name"
ok $? "a bad CHORUS_MESH is refused, named, with the library's code and reason: $err"
err=$("$chorus" send svc cmd --mesh 'a b' 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && echo "$err" | grep -q -- "bad --mesh: invalid argument: 'a b' is not a mesh name"
ok $? "a bad --mesh is refused, named: $err"
err=$("$chorus" frobnicate 2>&1 >/dev/null); rc=$?
[ $rc -eq 2 ]; ok $? "chorus refuses an unknown subcommand with exit 2"
echo "$err" | grep -q frobnicate; ok $? "and names it: $err"
done_testing
