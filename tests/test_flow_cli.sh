#!/bin/sh
#   `chorus flow` drives a chorus-coordinator over the mesh: start --wait
#   ends with the flow's outcome and exit status, status shows each step,
#   list finds the flows, a failed flow is compensated and retried, control
#   errors come back as error replies, and trace shows a transaction's
#   events and the commands sent for its flows.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

#   A flow of two steps; hello is undone by undo when bye fails for good
mkdir "$tmp/flows"
cat > "$tmp/flows/greet.yaml" <<EOF
flow: greet
version: 1
trigger: greet.requested
steps:
  - id: hello
    service: greeter
    command: hello
    input: { name: \$.input.name }
    compensate: { command: undo }
  - id: bye
    service: greeter
    command: bye
    depends_on: [hello]
    input: { name: \$.input.name, fail: \$.input.fail }
EOF

#   A flow whose step no service answers: it keeps running
cat > "$tmp/flows/stall.yaml" <<EOF
flow: stall
version: 1
steps:
  - id: wait
    service: nobody
    command: never
EOF

#   bye refuses {"fail": true} until the marker file exists
cat > "$tmp/bye.sh" <<EOF
#!/bin/sh
if grep -q '"fail": *true' && [ ! -f "$tmp/fixed" ]; then
    echo "bye refused" >&2; exit 1
fi
echo '{"farewell": "bye"}'
EOF
chmod +x "$tmp/bye.sh"

start_hub

"$coordinator" --flows "$tmp/flows" --store "$tmp/coordinator" --no-sync --seed "$hub" \
    >"$tmp/coordinator.out" 2>"$tmp/coordinator.err" &
pids="$pids $!"
"$chorus" serve greeter --store "$tmp/greeter" --handle 'hello=echo "{\"greeting\": \"hello\"}"' \
    --handle "bye=$tmp/bye.sh" \
    --handle "undo=echo \"\$CHORUS_IDEMPOTENCY_KEY\" >> $tmp/undone; echo '{}'" \
    2>"$tmp/serve.err" &
pids="$pids $!"

#   Short-lived nodes take a port of the system's choosing: the lowest free
#   one ("*") may still be known to peers as the node that just exited
peers () { "$chorus" peers --wait 300 --listen tcp://127.0.0.1:0; }
joined () { peers > "$tmp/peers" && grep -q "^coordinator .* greet.requested" "$tmp/peers" \
    && grep -q "^greeter " "$tmp/peers"; }
await 100 joined
ok $? "the coordinator and the greeter service have joined"

#   --- a flow that completes ------------------------------------------------
out=$("$chorus" flow start greet '{"name": "ann"}' --wait --timeout 20 --id ann); rc=$?
[ $rc -eq 0 ]; ok $? "flow start --wait exits 0 for a completed flow"
echo "$out" | grep -q "^greet-ann completed in [0-9]* ms$"; ok $? "and says so: $out"

out=$("$chorus" flow status greet-ann); rc=$?
[ $rc -eq 0 ] && echo "$out" | head -1 | grep -q "greet-ann  greet v1  completed"
ok $? "flow status: the header names the flow, its version and state"
echo "$out" | grep "^  hello " | grep " done " | grep -q '{"greeting":"hello"}' \
    && echo "$out" | grep "^  bye " | grep " done " | grep -q '{"farewell":"bye"}'
ok $? "both steps done, with their outputs"
"$chorus" flow status greet-ann --json | grep -q '^{"id":"greet-ann".*"state":"completed"'
ok $? "flow status --json prints the status JSON"

out=$("$chorus" flow list)
echo "$out" | head -1 | grep -q "^ID  *FLOW  *VERSION  *STATE  *STARTED$" \
    && echo "$out" | grep -q "^greet-ann  *greet  *1  *completed "
ok $? "flow list shows it"
out=$("$chorus" flow list --state completed --json)
echo "$out" | grep -q '"id":"greet-ann"'; ok $? "flow list --state completed --json too"

#   --- a flow that fails, is compensated, then retried -----------------------
out=$("$chorus" flow start greet '{"name": "bob", "fail": true}' --wait --timeout 20 --id bob)
rc=$?
[ $rc -eq 1 ]; ok $? "flow start --wait exits 1 for a failed flow ($rc)"
echo "$out" | grep -q "^greet-bob failed in [0-9]* ms: bye: exit-1: bye refused"
ok $? "and says which step failed and why: $out"
out=$("$chorus" flow status greet-bob)
echo "$out" | head -1 | grep -q " failed " && echo "$out" | grep "^  hello " | grep -q " undone " \
    && echo "$out" | grep "^  bye " | grep -q " failed .*exit-1"
ok $? "flow status: failed, hello undone, bye failed"
grep -q "^greet-bob/hello/undo$" "$tmp/undone"; ok $? "the undo handler ran for hello"

touch "$tmp/fixed"
out=$("$chorus" flow retry greet-bob); rc=$?
[ $rc -eq 0 ] && [ "$out" = "running" ]; ok $? "flow retry prints the new state: $out"
flow_done () { "$chorus" flow status "$1" | head -1 | grep -q " completed "; }
await 100 flow_done greet-bob; ok $? "the retried flow completes"

#   --- a flow that does not end in time, cancelled ------------------------
out=$("$chorus" flow start stall --wait --timeout 1 --id s1 2>"$tmp/stall.err"); rc=$?
[ $rc -eq 3 ] && [ "$out" = "stall-s1" ]; ok $? "flow start --wait exits 3 at --timeout ($rc)"
grep -q "stall-s1 still running after 1 s" "$tmp/stall.err"
ok $? "and says so: $(cat "$tmp/stall.err")"
out=$("$chorus" flow cancel stall-s1); rc=$?
[ $rc -eq 0 ] && { [ "$out" = "compensating" ] || [ "$out" = "cancelled" ]; }
ok $? "flow cancel on a running flow prints its new state: $out"

#   --- errors ------------------------------------------------------------
err=$("$chorus" flow cancel greet-ann 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && echo "$err" | grep -q "^chorus flow cancel: bad-state: "
ok $? "cancelling a completed flow: exit $rc, $err"
err=$("$chorus" flow status greet-nobody 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && echo "$err" | grep -q "not-found"; ok $? "an unknown flow: exit $rc, $err"
err=$("$chorus" flow start nosuch 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && echo "$err" | grep -q "unknown-flow"; ok $? "an unknown definition: $err"
err=$("$chorus" flow frobnicate 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$err" | grep -q frobnicate; ok $? "an unknown subcommand: exit $rc"

#   --- a flow started by an event, traced ---------------------------------
"$chorus" publish greet.requested '{"name": "cy"}' --correlation trace-cy --store "$tmp/pub" \
    --listen tcp://127.0.0.1:0 --settle 300 --timeout 10 >/dev/null
ok $? "a trigger event is published with a correlation id"
traced () { "$chorus" flow trace trace-cy --json | grep -q '"topic":"greet.requested"'; }
await 100 traced; ok $? "flow trace --json lists the trigger event"
out=$("$chorus" flow trace trace-cy)
clock="[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9][0-9][0-9]"
echo "$out" | grep -q "^$clock chorus-publish greet.requested #1 [0-9A-F]*$"
ok $? "flow trace prints it as a root: $out"
event=$(echo "$out" | awk '/greet.requested/ {print $NF}')
await 100 flow_done "greet-$event"; ok $? "the event started flow greet-$event, which completed"
#   The commands the coordinator sent for it, under the event
out=$("$chorus" flow trace trace-cy)
echo "$out" | grep -q "^  $clock > greeter hello try 1 done in [0-9]* ms, flow greet-$event$" \
    && echo "$out" | grep -q "^  $clock > greeter bye try 1 done in [0-9]* ms, flow greet-$event$"
ok $? "and the commands sent for its flow, under it: $out"
"$chorus" flow trace trace-cy --json | grep -q '"commands": *\[{.*"kind": *"command"'
ok $? "flow trace --json lists them as commands"
done_testing
