#!/bin/sh
#   when: on a real mesh: FLOWS.md's diamond (tests/flows/good/branch.yaml)
#   run by a coordinator with `chorus serve` services takes the courier
#   branch for a light express parcel and the post for the others, the
#   branch not taken is `skipped` and never runs, the join runs after
#   either with null for the skipped branch's output, a failure after the
#   branch undoes only the branch that ran, and a bad condition is refused
#   at load with its file:line:column.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

mkdir "$tmp/flows"
cp "$srcdir/tests/flows/good/branch.yaml" "$tmp/flows/"

#   log.sh FILE REPLY: logs the command's key and payload, answers REPLY;
#   fails when the payload asks it to
cat > "$tmp/log.sh" <<EOF
#!/bin/sh
payload=\$(cat)
echo "\$CHORUS_IDEMPOTENCY_KEY \$payload" >> "$tmp/\$1"
case "\$payload" in *fail@*) echo "mail refused" >&2; exit 1;; esac
echo "\$2"
EOF
chmod +x "$tmp/log.sh"
#   The quote: a parcel of "heavy" items weighs 50 kg, others 2 kg
cat > "$tmp/quote.sh" <<'EOF'
#!/bin/sh
if grep -q heavy; then echo '{"weight_kg": 50}'; else echo '{"weight_kg": 2}'; fi
EOF
chmod +x "$tmp/quote.sh"

start_hub
"$coordinator" --flows "$tmp/flows" --store "$tmp/coordinator" --no-sync \
    >"$tmp/coordinator.out" 2>"$tmp/coordinator.err" &
pids="$pids $!"
"$chorus" serve pricing --store "$tmp/pricing" --handle "quote=$tmp/quote.sh" \
    2>"$tmp/pricing.err" &
pids="$pids $!"
"$chorus" serve shipping --store "$tmp/shipping" \
    --handle "book_courier=$tmp/log.sh courier '{\"tracking\":\"C-1\"}'" \
    --handle "book_post=$tmp/log.sh post '{\"tracking\":\"P-1\"}'" \
    --handle "cancel_courier=$tmp/log.sh cancelled {}" \
    --handle "cancel_post=$tmp/log.sh cancelled {}" 2>"$tmp/shipping.err" &
pids="$pids $!"
"$chorus" serve mail --store "$tmp/mail" --handle "send_tracking=$tmp/log.sh mailed {}" \
    2>"$tmp/mail.err" &
pids="$pids $!"
await 100 have_peers coordinator pricing shipping mail
ok $? "the coordinator and the three services have joined"

#   step FLOW-ID STEP: the step's line of flow status
step () { "$chorus" flow status "$1" | grep "^  $2 "; }
#   logged FILE KEY: what the handler logged for the key
logged () { grep "^$2 " "$tmp/$1" 2>/dev/null; }

#   --- a light express parcel: the courier --------------------------------
out=$("$chorus" flow start ship_order '{"express": true, "email": "a@b", "items": ["book"]}' \
      --id light --wait --timeout 20); rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q "^ship_order-light completed"
ok $? "a light express parcel: the flow completes: $out"
step ship_order-light courier | grep -q " done "; ok $? "the courier branch is done"
out=$(step ship_order-light post)
echo "$out" | grep -q "^  post  *skipped  *attempts 0  *null$"
ok $? "the post branch is skipped, never tried, no output: $out"
"$chorus" flow status ship_order-light --json | grep -q '"id":"post","state":"skipped"'
ok $? "flow status --json says skipped"
[ -n "$(logged courier ship_order-light/courier)" ] && [ -z "$(logged post ship_order-light/post)" ]
ok $? "the courier was booked, the post never asked"
logged mailed ship_order-light/notify | grep -q '"courier":"C-1"' \
    && logged mailed ship_order-light/notify | grep -q '"post":null'
ok $? "the join ran with the courier's tracking and null for the post: $(logged mailed ship_order-light/notify)"

#   --- heavy, or not express: the post ----------------------------------------
"$chorus" flow start ship_order '{"express": true, "email": "a@b", "items": ["heavy"]}' \
    --id heavy --wait --timeout 20 >/dev/null
ok $? "a heavy express parcel completes"
"$chorus" flow start ship_order '{"email": "a@b", "items": ["book"]}' \
    --id slow --wait --timeout 20 >/dev/null
ok $? "a light parcel without express completes"
for id in heavy slow; do
    step "ship_order-$id" courier | grep -q " skipped " \
        && step "ship_order-$id" post | grep -q " done "
    ok $? "$id: the post branch, the courier skipped"
    [ -z "$(logged courier "ship_order-$id/courier")" ] && [ -n "$(logged post "ship_order-$id/post")" ]
    ok $? "$id: only the post was booked"
    logged mailed "ship_order-$id/notify" | grep -q '"courier":null' \
        && logged mailed "ship_order-$id/notify" | grep -q '"post":"P-1"'
    ok $? "$id: the join got the post's tracking: $(logged mailed "ship_order-$id/notify")"
done

#   --- a failure after the branch: only the branch that ran is undone -----
out=$("$chorus" flow start ship_order '{"express": true, "email": "fail@x", "items": []}' \
      --id undo --wait --timeout 20); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "^ship_order-undo failed in [0-9]* ms: notify: exit-1: mail refused"
ok $? "the join fails, and so the flow: $out"
step ship_order-undo courier | grep -q " undone "; ok $? "the courier branch is undone"
step ship_order-undo post | grep -q " skipped "; ok $? "the skipped post stays skipped"
[ -n "$(logged cancelled ship_order-undo/courier/undo)" ]; ok $? "cancel_courier ran"
[ -z "$(logged cancelled ship_order-undo/post/undo)" ] && [ -z "$(logged post ship_order-undo/post)" ]
ok $? "nothing ran for the skipped post, not even its compensation"

#   --- a bad condition is refused at load, at its place -----------------------
mkdir "$tmp/bad"
sed 's/weight_kg < 30$/weight_kg =< 30/' "$srcdir/tests/flows/good/branch.yaml" \
    > "$tmp/bad/branch.yaml"
err=$("$coordinator" --check "$tmp/bad" 2>&1); rc=$?
[ $rc -ne 0 ] && echo "$err" | grep -qF "$tmp/bad/branch.yaml:12:62: bad when: expected 'and', 'or' or the end at '=<'"
ok $? "chorus-coordinator --check refuses it (exit $rc): $err"
done_testing
