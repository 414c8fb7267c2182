#!/bin/sh
#   Hot deploy refused: a reload of the flows directory is whole or
#   nothing. A file that does not load, a version whose text changed under
#   the same number, a version in two files: the reload is refused, the log
#   and `flow defs` name the file (with line:column when the loader has
#   them), and the definitions loaded before go on starting flows, until a
#   reload succeeds. A rollback to a lower version is a deploy like another.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"
coord_pid=""

#   "STATE VERSION" of a flow (the first "state" is the flow's)
state () {
    out=$("$chorus" flow status "$1" --json --timeout 2 2>/dev/null)
    echo "$(echo "$out" | grep -o '"state":"[a-z]*"' | head -1 | cut -d'"' -f4)" \
         "$(echo "$out" | grep -o '"version":[0-9]*' | head -1 | cut -d: -f2)"
}
defs () { "$chorus" flow defs --json --timeout 2 2>/dev/null; }
#   has_def FLOW VERSION: flow defs lists it
has_def () { defs | grep -q "{\"flow\":\"$1\",\"version\":$2,"; }
no_def () { out=$(defs) && ! echo "$out" | grep -q "{\"flow\":\"$1\","; }
has_error () { defs | grep -q "\"error\":{\"message\":\"[^\"]*$1"; }
no_error () { out=$(defs) && ! echo "$out" | grep -q '"error"'; }

start_hub
mkdir "$tmp/flows"
#   A file is written beside the directory and renamed into it
deploy () {     # deploy FILE, the text on stdin
    cat > "$tmp/$1.new" && mv "$tmp/$1.new" "$tmp/flows/$1"
}
write_alpha () {
    deploy alpha.yaml <<EOF
flow: alpha
version: $1
steps:
  - id: prepare
    service: svc
    command: prepare
  - id: finish
    service: svc
    command: finish_v$1
    depends_on: [prepare]
EOF
}
write_alpha 2
cat > "$tmp/svc.sh" <<EOF
#!/bin/sh
cat > /dev/null
echo '{}'
EOF
chmod +x "$tmp/svc.sh"
"$chorus" serve svc --store "$tmp/svc" --handle "prepare=$tmp/svc.sh" \
    --handle "finish_v2=$tmp/svc.sh" --handle "finish_v3=$tmp/svc.sh" 2>"$tmp/svc.err" &
pids="$pids $!"
"$coordinator" --flows "$tmp/flows" --store "$tmp/coordinator" --no-sync \
    >"$tmp/coordinator.out" 2>"$tmp/coordinator.err" &
coord_pid=$!
await 100 has_def alpha 2
ok $? "flow defs lists alpha version 2"

#   --- a bad file: refused whole ------------------------------------------
deploy broken.yaml <<EOF
flow: broken
version: 1
steps:
  - id: one
    service: svc
    command: [prepare
EOF
write_alpha 3
kill -HUP "$coord_pid"
await 100 has_error "broken.yaml:[0-9]*:[0-9]*: YAML syntax error"
ok $? "flow defs shows the error with file:line:column: $(defs | grep -o '"error".*')"
await 50 grep -qE "flows not reloaded \(SIGHUP\), the definitions loaded before stay in force: .*broken.yaml:[0-9]+:[0-9]+: YAML syntax error" "$tmp/coordinator.err"
ok $? "the log names file:line:column: $(grep 'not reloaded' "$tmp/coordinator.err" | head -1)"
has_def alpha 2 && ! has_def alpha 3 && no_def broken
ok $? "nothing of that reload is in force: alpha 2 still, no alpha 3, no broken"
"$chorus" flow defs --timeout 5 > "$tmp/defs.txt"
grep -qE "^the last reload, 20[0-9-]+T.*, failed: .*broken.yaml:[0-9]+:[0-9]+: " "$tmp/defs.txt"
ok $? "flow defs says the last reload failed, and why: $(tail -1 "$tmp/defs.txt")"
out=$("$chorus" flow start alpha --id during --wait --timeout 20 2>&1)
ok $? "the old definitions still start flows: $out"
[ "$(state alpha-during)" = "completed 2" ]; ok $? "on version 2: $(state alpha-during)"
rm "$tmp/flows/broken.yaml"
await 100 has_def alpha 3
ok $? "the bad file removed, the directory loads: alpha 3"
no_error; ok $? "and flow defs shows no error any more"

#   --- a version is one text ----------------------------------------------
sed 's/command: prepare/command:  prepare/' "$tmp/flows/alpha.yaml" | deploy alpha.yaml
await 100 has_error "alpha.yaml: flow 'alpha' version 3 changed, .*needs a higher version"
ok $? "a loaded version changed under the same number is refused: $(defs | grep -o '"error".*')"
write_alpha 3
await 100 no_error; ok $? "its text back, the directory loads again"
cp "$tmp/flows/alpha.yaml" "$tmp/flows/alpha-copy.yaml"
await 100 has_error "alpha.yaml: flow 'alpha' version 3 is defined twice (also in alpha-copy.yaml)"
ok $? "a version in two files is refused: $(defs | grep -o '"error".*')"
rm "$tmp/flows/alpha-copy.yaml"
await 100 no_error; ok $? "the copy removed, the directory loads again"

#   --- a rollback: the highest version the directory holds ----------------
write_alpha 2
rolled_back () { out=$(defs) && echo "$out" | grep -q '{"flow":"alpha","version":2,' &&
                 ! echo "$out" | grep -q '{"flow":"alpha","version":3,'; }
await 100 rolled_back; ok $? "alpha's file back at version 2, flow defs lists version 2 only"
out=$("$chorus" flow start alpha --id back --wait --timeout 20 2>&1)
[ "$(state alpha-back)" = "completed 2" ]
ok $? "and the next start runs on version 2: $out, $(state alpha-back)"

kill -0 "$coord_pid"; ok $? "the coordinator is alive"
done_testing
