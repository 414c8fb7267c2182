#!/bin/sh
#   A flow status of any size: a fan-out of 1,000 items with 600-byte
#   outputs is shown as a summary (counts per state per step) and items by
#   range (--items FROM..TO), each output once; flow start --wait works
#   for it; and a reply over the payload limit is a clear error, never a
#   blank status.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

mkdir "$tmp/flows"
cat > "$tmp/flows/fan.yaml" <<EOF2
flow: fan
version: 1
steps:
  - id: each
    service: worker
    command: work
    for_each: \$.input.items
    input: { n: \$.item }
  - id: last
    service: worker
    command: work
    depends_on: [each]
    input: { n: -1 }
EOF2
cat > "$tmp/flows/fat.yaml" <<EOF2
flow: fat
version: 1
steps:
  - id: each
    service: worker
    command: work
    for_each: \$.input.items
    input: { n: \$.item, size: \$.input.size }
EOF2

#   A long-lived handler: each reply carries 600 bytes of padding, or
#   as many as the payload's size says
cat > "$tmp/worker.py" <<'EOF2'
import json, sys
pad = "x" * 600
for line in sys.stdin:
    request = json.loads(line)
    n = request["payload"]["n"]
    size = request["payload"].get("size")
    reply = {"id": request["id"], "payload": {"n": n, "pad": "x" * size if size else pad}}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
EOF2

start_hub
"$coordinator" --flows "$tmp/flows" --store "$tmp/coordinator" --no-sync --seed "$hub" \
    >"$tmp/coordinator.out" 2>"$tmp/coordinator.err" &
pids="$pids $!"
"$chorus" serve worker --store "$tmp/worker" --persistent "exec /usr/bin/python3 $tmp/worker.py" \
    --workers 2 --handle work 2>"$tmp/serve.err" &
pids="$pids $!"

peers () { "$chorus" peers --wait 300 --listen tcp://127.0.0.1:0; }
joined () { peers > "$tmp/peers" && grep -q "^coordinator " "$tmp/peers" \
    && grep -q "^worker " "$tmp/peers"; }
await 100 joined
ok $? "the coordinator and the worker service have joined"

items=$(/usr/bin/python3 -c 'import json; print(json.dumps({"items": list(range(1000))}))')
out=$("$chorus" flow start fan "$items" --wait --timeout 25 --id big 2>"$tmp/start.err"); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "^fan-big completed in [0-9]* ms$"
ok $? "flow start --wait succeeds for 1,000 items of 600-byte outputs: $rc $out $(cat "$tmp/start.err")"

#   --- the summary, and the first page by default ---------------------------
out=$("$chorus" flow status fan-big); rc=$?
echo "$out" > "$tmp/status.txt"
[ $rc -eq 0 ] && head -1 "$tmp/status.txt" | grep -q "^fan-big  fan v1  completed  started "
ok $? "flow status fan-big: the header names the flow and its state: $(head -1 "$tmp/status.txt")"
grep -q "^    1000 items: done 1000; items 0\.\.99 below (--items FROM\.\.TO for others)$" \
    "$tmp/status.txt"
ok $? "a summary of the fan-out: $(sed -n 3p "$tmp/status.txt")"
[ "$(grep -c '^    \[[0-9]*\]  done ' "$tmp/status.txt")" -eq 100 ] \
    && grep -q '^    \[0\]  done ' "$tmp/status.txt" && grep -q '^    \[99\]  done ' "$tmp/status.txt"
ok $? "then the first 100 items: $(grep -c '^    \[' "$tmp/status.txt") lines"
grep -q '^  last  *done  *attempts 1  *{"n":-1,"pad":"xxx' "$tmp/status.txt"
ok $? "and the step after it"
[ "$(grep -c '"n":7,' "$tmp/status.txt")" -eq 1 ]
ok $? "each output is shown once (in its item)"

#   --- a page by range ------------------------------------------------------
out=$("$chorus" flow status fan-big --items 990..999); rc=$?
echo "$out" > "$tmp/page.txt"
[ $rc -eq 0 ] && [ "$(grep -c '^    \[[0-9]*\]  done ' "$tmp/page.txt")" -eq 10 ] \
    && grep -q '^    \[990\]  done  *attempts 1  *{"n":990,' "$tmp/page.txt" \
    && grep -q '^    \[999\]  done  *attempts 1  *{"n":999,' "$tmp/page.txt" \
    && grep -q "^    1000 items: done 1000; items 990\.\.999 below" "$tmp/page.txt"
ok $? "--items 990..999 shows those ten items: $(grep -c '^    \[' "$tmp/page.txt") lines"
out=$("$chorus" flow status fan-big --items 990..999 --json); rc=$?
echo "$out" > "$tmp/page.json"
/usr/bin/python3 - "$tmp/page.json" <<'EOF2'
import json, sys
status = json.load(open(sys.argv[1]))
each = status["steps"][0]
assert status["state"] == "completed", status["state"]
assert each["items_total"] == 1000 and each["counts"] == {"done": 1000}, each["counts"]
assert each["items_from"] == 990 and [i["item"] for i in each["items"]] == list(range(990, 1000))
assert [i["output"]["n"] for i in each["items"]] == list(range(990, 1000))
assert "output" not in each
assert len(open(sys.argv[1]).read()) < 20000
EOF2
ok $? "and with --json: counts, items_total, items_from, the ten items, no step output"
out=$("$chorus" flow status fan-big --items 998..2000 --json | grep -o '"item":[0-9]*' | tr '\n' ' ')
[ "$out" = '"item":998 "item":999 ' ]; ok $? "a range past the end stops at the last item: $out"
for bad in 5..3 abc 1..x -1..3 3; do
    err=$("$chorus" flow status fan-big --items "$bad" 2>&1 >/dev/null); rc=$?
    [ $rc -eq 2 ] && echo "$err" | grep -q "\-\-items: '$bad' is not FROM..TO" || break
done
ok $? "a bad --items is refused naming it: exit $rc, $err"
err=$("$chorus" send coordinator flow.status '{"id": "fan-big", "from": 5, "to": 1}' 2>&1 >/dev/null)
rc=$?
[ $rc -eq 1 ] && echo "$err" | grep -q 'bad-request: "to" must not be below "from"'
ok $? "so does the coordinator: exit $rc, $err"

#   --- over the limit: a clear error, never a blank ------------------------
#   Two items of 700 kB: the first page is over the limit, so its values
#   are left out saying why, one item at a time fits
items='{"items": [0, 1], "size": 700000}'
out=$("$chorus" flow start fat "$items" --wait --timeout 20 --id two); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "^fat-two completed in"
ok $? "flow start --wait for two items of 700 kB outputs: $out"
out=$("$chorus" flow status fat-two); rc=$?
echo "$out" > "$tmp/fat.txt"
[ $rc -eq 0 ] && head -1 "$tmp/fat.txt" | grep -q "^fat-two  fat v1  completed " \
    && grep -q '^    \[1\]  done  *attempts 1  *{"omitted":"payload of 14[0-9]* bytes exceeds the limit of 1048576"}$' "$tmp/fat.txt"
ok $? "a status over the limit shows each value left out, naming the size and the limit: $(sed -n 4p "$tmp/fat.txt")"
out=$("$chorus" flow status fat-two --items 1..1 --json); rc=$?
[ $rc -eq 0 ] && [ "$(echo "$out" | grep -o '"pad":"x*"' | wc -c)" -eq 700009 ]
ok $? "--items 1..1 fits, with the item's whole output"
"$chorus" serve bloat --store "$tmp/bloat" --handle "huge=/usr/bin/python3 -c 'print(\"\\\"\" + \"z\" * 1100000 + \"\\\"\")'" \
    2>"$tmp/bloat.err" &
pids="$pids $!"
has_bloat () { peers | grep -q "^bloat "; }
await 100 has_bloat
err=$("$chorus" send bloat huge '{}' --timeout 10 2>&1 >/dev/null); rc=$?
[ $rc -eq 1 ] && echo "$err" | grep -q "1048576"
ok $? "a handler's reply over the limit is an error reply naming the limit: exit $rc, $err"

#   A coordinator whose status is no status (here a stand-in on a mesh of
#   its own): the CLI says so and fails, it never prints a blank status
CHORUS_MESH=$CHORUS_MESH-fake "$helper" --service=hub >"$tmp/hub-fake.out" &
pids="$pids $!"
await 50 grep -q READY "$tmp/hub-fake.out"
fake_hub=$(awk '/READY/ {print $2}' "$tmp/hub-fake.out")
fake () { env CHORUS_MESH="$CHORUS_MESH-fake" CHORUS_SEEDS="$fake_hub" "$@"; }
env CHORUS_MESH="$CHORUS_MESH-fake" CHORUS_SEEDS="$fake_hub" "$chorus" serve coordinator \
    --store "$tmp/fake" --handle 'flow.status=echo "{}"' \
    --handle 'flow.start=echo "{\"id\": \"fan-x\"}"' 2>"$tmp/fake.err" &
pids="$pids $!"
has_fake () { fake "$chorus" peers --wait 300 | grep -q "^coordinator "; }
await 100 has_fake; ok $? "a stand-in coordinator has joined its mesh"
out=$(fake "$chorus" flow status fan-x 2>"$tmp/blank.err"); rc=$?
[ $rc -eq 1 ] && [ -z "$out" ] && grep -q 'unexpected reply from the coordinator: {}' "$tmp/blank.err"
ok $? "flow status of a reply without id and state: exit $rc, $(cat "$tmp/blank.err")"
out=$(fake "$chorus" flow start fan --wait --timeout 5 2>"$tmp/blank.err"); rc=$?
[ $rc -eq 1 ] && grep -q 'unexpected reply from the coordinator: {}' "$tmp/blank.err"
ok $? "flow start --wait on such a status: exit $rc, $(cat "$tmp/blank.err")"
done_testing
