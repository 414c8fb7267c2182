#!/bin/sh
#   A big fan-out on a real mesh: a flow whose step runs for_each over 2000
#   items, through a service (`chorus serve` with four long-lived
#   handlers), completes with every item's output in its status
#   and gathered whole into the next step's input, while flow list and
#   flow status are answered throughout, each within 10 s (the items are
#   held back until they have been, three times, while it ran; speed itself
#   is measured by scripts/bench --fanout, not asserted here). Then a second
#   such flow, with the coordinator SIGKILLed when part of its items have
#   run and restarted on the same store: it completes, and each item ran
#   once (one instance: an instance knows the keys it ran, and a command
#   sent again after the restart could go to another).
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"
coord_pid=""
ITEMS=2000
python=/usr/bin/python3
[ -x "$python" ] || python=python3

mkdir "$tmp/flows"
cat > "$tmp/flows/fan.yaml" <<'EOF'
flow: fan
version: 1
steps:
  - id: each
    service: work
    command: double
    for_each: $.input.items
    input: { i: $.item }
    timeout: 5s
    retry: { attempts: 20, backoff: 100ms, factor: 2, max_backoff: 1s }
  - id: total
    service: work
    command: total
    depends_on: [each]
    input: { outputs: $.steps.each.output }
    timeout: 10s
    retry: { attempts: 20, backoff: 100ms, factor: 2, max_backoff: 1s }
EOF
#   The same with a longer timeout, for items held back a while
sed -e 's/^flow: fan$/flow: held/' -e 's/timeout: 5s/timeout: 60s/' "$tmp/flows/fan.yaml" \
    > "$tmp/flows/held.yaml"

#   A long-lived handler: each run logged by its idempotency key, as a
#   service with a database would see it; double answers {"twice": 2i}
#   after a few ms of work, or once the file named second is gone; total
#   the count and sum of what it was given
cat > "$tmp/work.py" <<'EOF'
import json, os, sys, time
runs = open(sys.argv[1], "a")
for line in sys.stdin:
    request = json.loads(line)
    runs.write(request["idempotency"] + "\n")
    runs.flush()
    payload = request["payload"]
    if request["command"] == "total":
        outputs = payload["outputs"]
        reply = {"n": len(outputs), "sum": sum(o["twice"] for o in outputs)}
    else:
        time.sleep(0.003)
        held = time.time()
        while os.path.exists(sys.argv[2]) and time.time() < held + 60:
            time.sleep(0.005)
        reply = {"twice": 2 * payload["i"]}
    sys.stdout.write(json.dumps({"id": request["id"], "payload": reply}) + "\n")
    sys.stdout.flush()
EOF

start_hub
"$chorus" serve work --store "$tmp/work" --persistent "exec $python $tmp/work.py $tmp/runs $tmp/hold" \
    --handle double --handle total --workers 4 2>"$tmp/work.err" &
pids="$pids $!"
start_coordinator
await 100 have_peers coordinator work
ok $? "the coordinator and the service have joined"

input=$("$python" -c "import json; print(json.dumps({'items': list(range($ITEMS))}))")
runs () { grep -c "^$1/each/" "$tmp/runs" 2>/dev/null || echo 0; }
state () {
    "$chorus" send coordinator flow.status "{\"id\": \"$1\"}" --timeout 10 2>/dev/null \
        | grep -o '"state":"[a-z]*"' | head -1
}

#   --- control commands while it runs ----------------------------------------
#   The items are held back until flow list and flow status have been
#   answered three times while the flow runs, then let go
touch "$tmp/hold"
"$chorus" flow start held "$input" --id big >"$tmp/start.out" 2>&1
ok $? "a flow of $ITEMS items starts: $(cat "$tmp/start.out")"
#   Each poll is timed; one not answered within 10 s fails it
polls=0 slow=0 running=0 worst=0
end=$(($(date +%s) + 120))
while [ "$(date +%s)" -lt "$end" ]; do
    for command in list status; do
        before=$(date +%s%N)
        if [ $command = list ]; then
            out=$("$chorus" send coordinator flow.list '{}' --timeout 10 2>&1)
        else
            out=$("$chorus" send coordinator flow.status '{"id": "held-big"}' --timeout 10 2>&1)
        fi
        rc=$?
        took=$((($(date +%s%N) - before) / 1000000))
        [ $took -gt $worst ] && worst=$took
        polls=$((polls + 1))
        if [ $rc -ne 0 ]; then
            slow=$((slow + 1))
            diag "flow $command not answered within 10 s: $out"
        fi
    done
    echo "$out" | grep -q '"state":"completed"' && break
    echo "$out" | grep -q '"state":"running"' && running=$((running + 1))
    [ $running -ge 3 ] && rm -f "$tmp/hold"
    sleep 0.2
done
[ $slow -eq 0 ]; ok $? "flow list and flow status answered every time: $polls polls, $slow unanswered, the slowest in $worst ms"
[ $running -ge 3 ]; ok $? "of them while the fan-out ran: $running"
[ "$(state held-big)" = '"state":"completed"' ]; ok $? "the flow completed"

#   all_outputs FLOW: every item done with its own output, and all of them
#   gathered into the next step; prints done, items and the total
all_outputs () {
    "$chorus" flow status "$1" --json --items 0..$((ITEMS - 1)) > "$tmp/status-$1.json"
    "$python" - "$tmp/status-$1.json" $ITEMS 2>&1 <<'EOF'
import json, sys
status = json.load(open(sys.argv[1]))
items = int(sys.argv[2])
each, total = status["steps"]
good = [i for i in each["items"]
        if i["state"] == "done" and i["output"] == {"twice": 2 * i["item"]}]
print(len(good), len(each["items"]), json.dumps(total["output"]))
sys.exit(0 if len(good) == items and total["output"] == {"n": items, "sum": items * (items - 1)}
         else 1)
EOF
}

#   Every item's output, and all of them gathered into the next step
all_outputs held-big >"$tmp/check"
ok $? "each of the $ITEMS items is done with its own output, and the next step got them all in order (done, items, total): $(cat "$tmp/check")"
n=$(runs held-big)
[ "$n" -eq $ITEMS ]; ok $? "the service ran each item once: $n runs"

#   --- kill -9 in the middle of a big fan-out --------------------------------
"$chorus" flow start fan "$input" --id half >"$tmp/start-half.out" 2>&1
ok $? "a second flow of $ITEMS items starts: $(cat "$tmp/start-half.out")"
half_done () { [ "$(runs fan-half)" -ge $((ITEMS / 4)) ]; }
await_s 60 half_done
kill -9 "$coord_pid"
wait "$coord_pid" 2>/dev/null
at_kill=$(runs fan-half)
[ "$at_kill" -lt $ITEMS ]; ok $? "the coordinator was SIGKILLed with $at_kill of $ITEMS items run"
start_coordinator
await_s 120 sh -c "\"$chorus\" send coordinator flow.status '{\"id\": \"fan-half\"}' --timeout 10 2>/dev/null | grep -q '\"state\":\"completed\"'"
ok $? "restarted on the same store, it completed the flow"
all_outputs fan-half >"$tmp/check-half"
ok $? "each item done with its output, all gathered (done, items, total): $(cat "$tmp/check-half")"
grep "^fan-half/each/" "$tmp/runs" | sort > "$tmp/ran"
ran=$(lines "$tmp/ran")
twice=$(uniq -d "$tmp/ran" | wc -l | tr -d ' ')
distinct=$(uniq "$tmp/ran" | wc -l | tr -d ' ')
[ "$distinct" -eq $ITEMS ] && [ "$twice" -eq 0 ]
ok $? "each item ran once across the kill: $distinct distinct of $ITEMS, $twice twice ($ran runs)"
done_testing
