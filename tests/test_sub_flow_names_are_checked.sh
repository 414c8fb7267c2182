#!/bin/sh
#   The flows a step runs (`flow:`) are checked when the flows directory
#   loads, by chorus-coordinator --check and at a hot deploy alike: a name
#   no file defines is refused, and so is a flow that runs itself, directly
#   or through another, each with the file, line and column of the name; a
#   refused deploy leaves the definitions loaded before in force.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"
coord_pid=""

#   flow NAME CALLS: a flow whose one step runs CALLS (or a command)
flow () {
    if [ -n "$2" ]; then step="    flow: $2"; else step="    service: s
    command: c"; fi
    printf 'flow: %s\nversion: 1\nsteps:\n  - id: run\n%s\n' "$1" "$step"
}

mkdir "$tmp/good" "$tmp/unknown" "$tmp/self" "$tmp/loop"
flow parent child > "$tmp/good/parent.yaml"
flow child "" > "$tmp/good/child.yaml"
out=$("$coordinator" --check "$tmp/good" 2>&1); rc=$?
[ $rc -eq 0 ]; ok $? "a parent and the child it runs load ($rc): $out"

flow parent nobody > "$tmp/unknown/parent.yaml"
out=$("$coordinator" --check "$tmp/unknown" 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -qF "$tmp/unknown/parent.yaml:5:11: step 'run' runs the flow 'nobody', which no file of $tmp/unknown defines"
ok $? "a flow no file defines is refused, with its place ($rc): $out"

flow me me > "$tmp/self/me.yaml"
out=$("$coordinator" --check "$tmp/self" 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -qF "me.yaml:5:11: step 'run' runs the flow 'me', which runs it again: me -> me"
ok $? "a flow that runs itself is refused ($rc): $out"

flow a b > "$tmp/loop/a.yaml"
flow b c > "$tmp/loop/b.yaml"
flow c a > "$tmp/loop/c.yaml"
out=$("$coordinator" --check "$tmp/loop" 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$out" | grep -qF "c.yaml:5:11: step 'run' runs the flow 'a', which runs it again: a -> b -> c -> a"
ok $? "a flow that runs itself through others is refused, naming the loop ($rc): $out"

#   --- at a hot deploy ---------------------------------------------------------
start_hub
"$coordinator" --flows "$tmp/good" --store "$tmp/coordinator" --no-sync \
    >"$tmp/coordinator.out" 2>"$tmp/coordinator.err" &
coord_pid=$!
defs () { "$chorus" flow defs --json --timeout 2 2>/dev/null; }
loaded () { defs | grep -q '"flow":"parent"'; }
await 150 loaded; ok $? "the coordinator loaded the good directory"
flow child orphan > "$tmp/child2.yaml"
sed -i 's/^version: 1/version: 2/' "$tmp/child2.yaml"
mv "$tmp/child2.yaml" "$tmp/good/child2.yaml"
kill -HUP "$coord_pid"
refused () { defs | grep -q "runs the flow 'orphan', which no file of"; }
await 100 refused; ok $? "a deploy whose child runs an unknown flow is refused: $(defs | grep -o '"error".*')"
defs | grep -q '"flow":"child","version":1,' && ! defs | grep -q '"version":2'
ok $? "and the definitions loaded before stay in force"
done_testing
