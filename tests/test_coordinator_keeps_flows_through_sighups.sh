#!/bin/sh
#   SIGHUP reloads the coordinator's flows; it must never end it, nor
#   reach a thread of its node (whose poll would take it for the end, and
#   the coordinator would go silent on the mesh). A stream of flows, started
#   by trigger events, runs through a SIGHUP every 10 ms or so: every flow
#   completes, each step done once, and the coordinator still answers.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"
coord_pid=""
FLOWS=60

start_hub
mkdir "$tmp/flows"
cat > "$tmp/flows/gamma.yaml" <<EOF
flow: gamma
version: 1
trigger: gamma.go
steps:
  - id: one
    service: svc
    command: step
  - id: two
    service: svc
    command: step
    depends_on: [one]
EOF
cat > "$tmp/svc.sh" <<EOF
#!/bin/sh
cat > /dev/null
echo "\$CHORUS_IDEMPOTENCY_KEY" >> "$tmp/effects"
echo '{}'
EOF
chmod +x "$tmp/svc.sh"
"$chorus" serve svc --store "$tmp/svc" --handle "step=$tmp/svc.sh" 2>"$tmp/svc.err" &
pids="$pids $!"
"$coordinator" --flows "$tmp/flows" --store "$tmp/coordinator" --no-sync \
    >"$tmp/coordinator.out" 2>"$tmp/coordinator.err" &
coord_pid=$!
has_gamma () { "$chorus" flow defs --json --timeout 2 2>/dev/null | grep -q '"flow":"gamma"'; }
await 100 has_gamma; ok $? "the coordinator has loaded gamma"

#   A SIGHUP every 10 ms or so until told to stop; counts them
(
    hups=0
    while [ ! -f "$tmp/stop" ]; do
        kill -HUP "$coord_pid" 2>/dev/null && hups=$((hups + 1))
        sleep 0.01
    done
    echo "$hups" > "$tmp/hups"
) &
hup_pid=$!
pids="$pids $hup_pid"

#   The stream: one trigger event every 20 ms, each a flow
i=0
while [ $i -lt $FLOWS ]; do
    echo "{\"n\": $i}"; i=$((i + 1)); sleep 0.02
done | "$chorus" publish gamma.go --lines --store "$tmp/shop" --timeout 30 2>"$tmp/publish.err"
ok $? "$FLOWS trigger events published and acknowledged: $(cat "$tmp/publish.err")"
completed () {
    n=$("$chorus" flow list --state completed --json --timeout 2 2>/dev/null |
        grep -c '"flow":"gamma"')
    [ "$n" -ge $FLOWS ]
}
await 300 completed
ok $? "all $FLOWS flows completed"
touch "$tmp/stop"
wait "$hup_pid"
hups=$(cat "$tmp/hups")
[ "$hups" -ge 100 ]; ok $? "through $hups SIGHUPs"
kill -0 "$coord_pid"; ok $? "the coordinator is alive"
[ "$(sort "$tmp/effects" | uniq | wc -l)" -eq $((FLOWS * 2)) ] &&
    [ "$(sort "$tmp/effects" | uniq -d | wc -l)" -eq 0 ]
ok $? "each of the $((FLOWS * 2)) steps was done once ($(wc -l < "$tmp/effects") runs)"
n=$("$chorus" flow list --json --timeout 5 2>/dev/null | grep -c '"flow":"gamma"')
[ "$n" -eq $FLOWS ]; ok $? "no flow lost nor doubled: $n flows"
grep -q "flows reloaded (SIGHUP): gamma v1" "$tmp/coordinator.err"
ok $? "each SIGHUP reloaded the flows ($(grep -c 'reloaded (SIGHUP)' "$tmp/coordinator.err") reloads)"
kill "$coord_pid" && wait "$coord_pid"; rc=$?
coord_pid=""
[ $rc -eq 0 ]; ok $? "and it still stops at once on SIGTERM, exit 0"
done_testing
