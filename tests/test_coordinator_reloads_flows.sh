#!/bin/sh
#   Hot deploy: a running coordinator loads its flows directory again on
#   SIGHUP and when its files change. A new file's flow starts and
#   completes, by command and by its trigger; a new version applies to
#   flows started after it while a flow of the old version finishes on the
#   old one (also across a restart); a removed file's flow can no longer be
#   started. (Reloads that are refused: test_coordinator_refuses_bad_flows.)
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"
coord_pid=""

count () { grep -cxF "$1" "$2" 2>/dev/null || true; }
#   "STATE VERSION" of a flow (the first "state" is the flow's)
state () {
    out=$("$chorus" flow status "$1" --json --timeout 2 2>/dev/null)
    echo "$(echo "$out" | grep -o '"state":"[a-z]*"' | head -1 | cut -d'"' -f4)" \
         "$(echo "$out" | grep -o '"version":[0-9]*' | head -1 | cut -d: -f2)"
}
in_state () { [ "$(state "$1")" = "$2" ]; }
defs () { "$chorus" flow defs --json --timeout 2 2>/dev/null; }
#   has_def FLOW VERSION: flow defs lists it
has_def () { defs | grep -q "{\"flow\":\"$1\",\"version\":$2,"; }
no_def () { out=$(defs) && ! echo "$out" | grep -q "{\"flow\":\"$1\","; }
alive () { kill -0 "$coord_pid" 2>/dev/null; }

start_hub

#   alpha: version 1 finishes with finish_v1, version 2 with finish_v2.
#   A file is written beside the directory and renamed into it, as a
#   deploy should: the coordinator never sees half of it.
mkdir "$tmp/flows"
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
    retry: { attempts: 1000, backoff: 100ms, factor: 1, max_backoff: 100ms }
    timeout: 5s
EOF
}
write_alpha 1

#   The service records "KEY COMMAND" per try and once per key done;
#   finish_v1 fails (retryably) until the release file exists
cat > "$tmp/svc.sh" <<EOF
#!/bin/sh
cat > /dev/null
echo "\$CHORUS_IDEMPOTENCY_KEY \$CHORUS_COMMAND" >> "$tmp/tries"
if [ "\$CHORUS_COMMAND" = finish_v1 ] && [ ! -f "$tmp/release" ]; then
    echo "held" >&2
    exit 1
fi
grep -q "^\$CHORUS_IDEMPOTENCY_KEY " "$tmp/effects" 2>/dev/null ||
    echo "\$CHORUS_IDEMPOTENCY_KEY \$CHORUS_COMMAND" >> "$tmp/effects"
echo '{}'
EOF
chmod +x "$tmp/svc.sh"
"$chorus" serve svc --store "$tmp/svc" --handle "prepare=$tmp/svc.sh" \
    --handle "finish_v1=$tmp/svc.sh" --handle "finish_v2=$tmp/svc.sh" 2>"$tmp/svc.err" &
pids="$pids $!"
start_coordinator
await 100 has_def alpha 1
ok $? "flow defs lists alpha version 1: $(defs)"
"$chorus" flow defs --timeout 5 > "$tmp/defs.txt"
grep -qE "^alpha +1 +yes +- +alpha.yaml +20[0-9-]+T" "$tmp/defs.txt"
ok $? "and shows it as FLOW VERSION NEWEST TRIGGER FILE LOADED: $(cat "$tmp/defs.txt")"

#   --- a flow of version 1, held at its second step ---------------------
"$chorus" flow start alpha --id old --timeout 5 >/dev/null
ok $? "flow alpha-old is started"
await 100 grep -qxF "alpha-old/finish finish_v1" "$tmp/tries"
ok $? "its second step is tried, and held"

#   --- a new file, and SIGHUP --------------------------------------------
deploy beta.yaml <<EOF
flow: beta
version: 1
trigger: beta.go
steps:
  - id: prepare
    service: svc
    command: prepare
EOF
kill -HUP "$coord_pid"
await 100 has_def beta 1
ok $? "after SIGHUP, flow defs lists the new flow beta: $(defs)"
await 50 grep -q "flows reloaded (SIGHUP): .*beta v1 (beta.yaml)" "$tmp/coordinator.err"
ok $? "the log says SIGHUP reloaded it"
out=$("$chorus" flow start beta --id b1 --wait --timeout 20 2>&1)
ok $? "a flow of beta starts and completes: $out"
"$chorus" publish beta.go '{}' --store "$tmp/pub" --timeout 10 2>"$tmp/publish.err"
two_betas () { [ "$(grep -c "^beta-.*/prepare prepare$" "$tmp/effects")" -eq 2 ]; }
await 100 two_betas
ok $? "and its trigger, new too, starts one: $(grep beta "$tmp/effects" | tr '\n' ' ')"

#   --- a new version, seen with no signal ---------------------------------
write_alpha 2
await 100 has_def alpha 2
ok $? "without a signal, flow defs lists alpha version 2 once its file changed"
await 50 grep -q "flows reloaded (the directory changed): alpha v2" "$tmp/coordinator.err"
ok $? "the log says the directory changed"
out=$("$chorus" flow start alpha --id new --wait --timeout 20 2>&1)
ok $? "the next start completes: $out"
[ "$(state alpha-new)" = "completed 2" ]; ok $? "on version 2: $(state alpha-new)"
[ "$(count "alpha-new/finish finish_v2" "$tmp/effects")" -eq 1 ]; ok $? "with version 2's command"
[ "$(state alpha-old)" = "running 1" ]; ok $? "alpha-old still runs on version 1: $(state alpha-old)"

#   --- a removed file ----------------------------------------------------
rm "$tmp/flows/beta.yaml"
await 100 no_def beta
ok $? "beta's file removed, flow defs no longer lists it"
err=$("$chorus" flow start beta --id b2 --timeout 5 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$err" | grep -q "unknown-flow"
ok $? "and beta can no longer be started: $err"
betas () { "$chorus" flow list --json --timeout 5 2>/dev/null | grep -c '"flow":"beta"'; }
before=$(betas)
"$chorus" publish beta.go '{}' --store "$tmp/pub" --timeout 10 2>"$tmp/publish.err"
ok $? "an event of its trigger is still taken: $(cat "$tmp/publish.err")"
[ "$(betas)" -eq "$before" ]; ok $? "and starts nothing ($before beta flows before, $(betas) after)"

#   --- a restart: the version a running flow used comes from the journal -
kill "$coord_pid" && wait "$coord_pid"; ok $? "the coordinator stops"
start_coordinator
await 100 in_state alpha-old "running 1"
ok $? "restarted, alpha-old runs on version 1 (no file holds it)"
touch "$tmp/release"
await 150 in_state alpha-old "completed 1"
ok $? "released, alpha-old completes on version 1: $(state alpha-old)"
[ "$(count "alpha-old/finish finish_v1" "$tmp/effects")" -eq 1 ]; ok $? "with version 1's command"
! grep -q "^alpha-old/finish finish_v[23]" "$tmp/tries"; ok $? "and never a later version's"
alive; ok $? "the coordinator is alive"
done_testing
