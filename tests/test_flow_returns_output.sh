#!/bin/sh
#   A flow's output: on a real mesh, `chorus flow start --wait` prints it on
#   the line after the outcome, `flow status` shows it (and --json holds it),
#   the completed event carries it as its payload, and it survives kill -9
#   of the coordinator, both when the flow was mid-way (the output is made
#   when it completes after the restart) and after it completed (read back
#   from the journal). A failed flow has none. A file whose output reads an
#   unknown step is refused with its place.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"
coord_pid=""

mkdir "$tmp/flows"
cat > "$tmp/flows/order.yaml" <<'EOF'
flow: order
version: 1
steps:
  - id: price
    service: shop
    command: price
    input: { n: $.input.n }
  - id: pack
    service: shop
    command: pack
    depends_on: [price]
    for_each: $.input.items
    input: { sku: $.item }
  - id: hold
    service: shop
    command: hold
    depends_on: [pack]
    input: { hold: $.input.hold }
emit: { completed: order.done }
output:
  order: $.input.n
  total: $.steps.price.output.total
  packed: $.steps.pack.output
  fixed: "yes"
EOF

#   hold waits for the release file when asked to, and says it started
cat > "$tmp/hold.sh" <<EOF
#!/bin/sh
if grep -q '"hold": *true'; then
    echo "\$CHORUS_IDEMPOTENCY_KEY" >> "$tmp/held"
    while [ ! -f "$tmp/release" ]; do sleep 0.05; done
fi
echo '{"held": true}'
EOF
chmod +x "$tmp/hold.sh"
cat > "$tmp/pack.sh" <<'EOF'
#!/bin/sh
sed 's/.*"sku": *"\([^"]*\)".*/{"packed": "\1"}/'
EOF
chmod +x "$tmp/pack.sh"
cat > "$tmp/price.sh" <<'EOF'
#!/bin/sh
n=$(sed 's/.*"n": *\([0-9]*\).*/\1/')
if [ "$n" = 666 ]; then echo "no price" >&2; exit 1; fi
echo "{\"total\": $((n * 10))}"
EOF
chmod +x "$tmp/price.sh"

start_hub
"$chorus" serve shop --store "$tmp/shop" --handle "price=$tmp/price.sh" \
    --handle "pack=$tmp/pack.sh" --handle "hold=$tmp/hold.sh" 2>"$tmp/shop.err" &
pids="$pids $!"
#   The consumer of order.done: one line per event, its payload
"$chorus" on order.done --group audit --store "$tmp/audit" \
    --exec "cat >> $tmp/done" 2>"$tmp/audit.err" &
pids="$pids $!"
start_coordinator
await 100 have_peers coordinator shop audit
ok $? "the coordinator, the service and the consumer have joined"

want='{"order":7,"total":70,"packed":[{"packed":"a"},{"packed":"b"}],"fixed":"yes"}'

#   --- start --wait prints the output --------------------------------------
out=$("$chorus" flow start order '{"n": 7, "items": ["a", "b"]}' --wait --timeout 20 --id o1)
rc=$?
[ $rc -eq 0 ]; ok $? "flow start --wait exits 0 ($rc)"
echo "$out" | head -1 | grep -q "^order-o1 completed in [0-9]* ms$"
ok $? "the first line is the outcome: $(echo "$out" | head -1)"
[ "$(echo "$out" | sed -n 2p)" = "$want" ] && [ "$(echo "$out" | wc -l)" -eq 2 ]
ok $? "the second line is the output as JSON: $(echo "$out" | sed -n 2p)"

out=$("$chorus" flow status order-o1)
echo "$out" | grep -qxF "  output: $want"; ok $? "flow status shows the output"
"$chorus" flow status order-o1 --json | grep -qF "\"output\":$want"
ok $? "flow status --json holds it"

#   --- the completed event carries it ---------------------------------------
event_for () { grep -q "\"flow\":\"$1\"" "$tmp/done" 2>/dev/null; }
await 100 event_for order-o1; ok $? "order.done reached the consumer"
grep "\"flow\":\"order-o1\"" "$tmp/done" | head -1 \
    | grep -qF "\"payload\":{\"flow\":\"order-o1\",\"name\":\"order\",\"output\":$want}"
ok $? "its payload is the flow, its name and the output: $(grep order-o1 "$tmp/done" | head -1)"

#   --- a failed flow has none ------------------------------------------------
out=$("$chorus" flow start order '{"n": 666, "items": []}' --wait --timeout 20 --id o2)
rc=$?
[ $rc -eq 1 ] && [ "$(echo "$out" | wc -l)" -eq 1 ]
ok $? "a failed flow: exit 1 and no output line ($rc): $out"
"$chorus" flow status order-o2 --json | grep -q '"output":null'
ok $? "its status's output is null"

#   --- kill -9 mid-flow: the output is made after the restart ---------------
"$chorus" flow start order '{"n": 3, "items": ["c"], "hold": true}' --id o3 >/dev/null
ok $? "a flow that holds at its last step started"
await 200 has_lines "$tmp/held" 1; ok $? "its last step is running"
kill -9 "$coord_pid"; wait "$coord_pid" 2>/dev/null
start_coordinator
read_back () { "$chorus" flow status "$1" --json --timeout 2 > "$tmp/status" 2>/dev/null; }
await_s 20 read_back order-o3; ok $? "the restarted coordinator answers"
grep -q '"state":"running"' "$tmp/status"; ok $? "order-o3 is still running"
touch "$tmp/release"
out=$("$chorus" flow start order '{"n": 3, "items": ["c"], "hold": true}' --id o3 --wait \
      --timeout 30)
rc=$?
want3='{"order":3,"total":30,"packed":[{"packed":"c"}],"fixed":"yes"}'
[ $rc -eq 0 ] && [ "$(echo "$out" | sed -n 2p)" = "$want3" ]
ok $? "after kill -9 and a restart the flow completes with its output ($rc): $out"

#   --- kill -9 after completion: the journal keeps the output ---------------
kill -9 "$coord_pid"; wait "$coord_pid" 2>/dev/null
start_coordinator
await_s 20 read_back order-o1; ok $? "the coordinator restarted again answers"
grep -qF "\"output\":$want" "$tmp/status"; ok $? "order-o1's output was read back from the journal"
read_back order-o3 && grep -qF "\"output\":$want3" "$tmp/status"
ok $? "and order-o3's"
await 100 event_for order-o3
grep "\"flow\":\"order-o3\"" "$tmp/done" | head -1 | grep -qF "\"output\":$want3"
ok $? "order-o3's completed event carries its output"

#   --- a bad output is refused at load ---------------------------------------
mkdir "$tmp/bad"
cat > "$tmp/bad/bad.yaml" <<'EOF'
flow: bad
version: 1
steps:
  - id: a
    service: shop
    command: price
output: { x: $.steps.b.output }
EOF
err=$("$coordinator" --check "$tmp/bad" 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$err" | grep -q "bad.yaml:7:14: unknown step 'b' in path"
ok $? "an output reading an unknown step is refused with its place ($rc): $err"
done_testing
