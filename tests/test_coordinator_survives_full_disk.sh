#!/bin/sh
#   The coordinator's journal on a disk that fills up (a small tmpfs on its
#   journal directory): while no commit succeeds, trigger events are not
#   acknowledged, the commands of the flows they start are not sent (the
#   journal's writer thread failed their batch: nothing it caused leaves),
#   and the coordinator says once, not once per try, that the disk is full,
#   naming the journal. Once there is room again the events are
#   acknowledged and the commands sent, and after a kill -9 the coordinator
#   starts with every flow it acknowledged: the failed writes did not leave
#   a journal it must refuse. Skipped where a tmpfs cannot be mounted.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"
coord_pid=""

journal="$tmp/coordinator/journal"
mkdir -p "$journal"
if ! mount -t tmpfs -o size=2m tmpfs "$journal" 2>/dev/null; then
    skip "mounting a tmpfs is not allowed here (needs root)"
    done_testing
    exit 0
fi
#   The processes stop before the disk goes, and the disk before the rest
unmount () {
    for pid in $coord_pid $pids; do kill "$pid" 2>/dev/null; done
    for pid in $coord_pid $pids; do wait "$pid" 2>/dev/null; done
    umount "$journal"
    cleanup
}
trap unmount EXIT

mkdir "$tmp/flows"
cat > "$tmp/flows/hold.yaml" <<'EOF'
flow: hold
version: 1
trigger: hold.requested
steps:
  - id: wait
    service: nobody
    command: wait
    timeout: 1h
EOF

cat > "$tmp/flows/note.yaml" <<'EOF'
flow: note
version: 1
trigger: note.requested
steps:
  - id: note
    service: notes
    command: note
    input: $.input
    timeout: 1h
EOF

start_hub
#   A service that records every command it is sent
cat > "$tmp/note.sh" <<'EOF'
#!/bin/sh
cat >> "$1"
echo >> "$1"
echo '{}'
EOF
chmod +x "$tmp/note.sh"
"$chorus" serve notes --store "$tmp/notes" --handle "note=$tmp/note.sh $tmp/notes.log" \
    2>"$tmp/notes.err" &
pids="$pids $!"
start_coordinator () {
    "$coordinator" --flows "$tmp/flows" --store "$tmp/coordinator" \
        >>"$tmp/coordinator.out" 2>>"$tmp/coordinator.err" &
    coord_pid=$!
}
#   publish N FIRST TIMEOUT: N trigger events from one producer store
publish () {
    i=$2
    while [ $i -lt $(($2 + $1)) ]; do echo "{\"n\": $i}"; i=$((i + 1)); done \
        | "$chorus" publish hold.requested --lines --store "$tmp/producer" --timeout "$3" \
            2>>"$tmp/publish.err"
}
listed () {
    "$chorus" send coordinator flow.list '{}' --timeout 5 2>/dev/null \
        | grep -o '"id":"hold-[^"]*"' | sort -u | wc -l | tr -d ' '
}

#   note N TIMEOUT: a note.requested event
note () {
    "$chorus" publish note.requested "{\"note\": $1}" --store "$tmp/producer" --timeout "$2" \
        2>>"$tmp/publish.err"
}
notes () {
    grep -c '"note"' "$tmp/notes.log" 2>/dev/null || echo 0
}

start_coordinator
await 100 sh -c "\"$chorus\" peers --wait 300 2>/dev/null | grep -q '^coordinator '"
await_s 30 sh -c "\"$chorus\" peers --wait 300 2>/dev/null | grep -q '^notes '"
publish 20 1 30
ok $? "20 flows started while there is room"
note 1 30
ok $? "a note flow started while there is room"
await_s 30 sh -c "grep -q '\"note\": *1' \"$tmp/notes.log\""
ok $? "and its command reached the notes service"

#   The disk fills up
dd if=/dev/zero of="$journal/filler" bs=4096 2>/dev/null
publish 20 21 4
[ $? -eq 3 ]; ok $? "20 more trigger events are not acknowledged while the journal cannot commit"
note 2 4
[ $? -eq 3 ]; ok $? "a note event is not acknowledged while the journal cannot commit"
#   The flow ran in memory, its command made, its batch failed: the
#   command must not have left (the coordinator has had 4 s to send it)
n=$(notes)
[ "$n" -eq 1 ]; ok $? "and the command of its flow was not sent ($n notes)"
full=$(grep -c "journal $journal: .*no space left on the device" "$tmp/coordinator.err")
[ "$full" -eq 1 ]; ok $? "the coordinator said once that the disk is full: $(grep -m1 'no space' "$tmp/coordinator.err")"

#   Room again: the waiting events are delivered and acknowledged
rm -f "$journal/filler"
publish 0 0 30 < /dev/null
ok $? "once there is room the 20 waiting events are acknowledged"
grep -q "the journal commits again" "$tmp/coordinator.err"; ok $? "and the coordinator says so"
await_s 30 sh -c "grep -q '\"note\": *2' \"$tmp/notes.log\""
ok $? "the note flow's command is sent once its batch is committed"
n=$(listed)
[ "$n" -eq 40 ]; ok $? "it runs all 40 flows ($n)"

#   The journal that went through a full disk opens as it was
kill -9 "$coord_pid"; wait "$coord_pid" 2>/dev/null
start_coordinator
await 100 grep -q "ready" "$tmp/coordinator.out"
ok $? "after a kill -9 the coordinator starts: $(grep -m1 'damaged' "$tmp/coordinator.err")"
n=$(listed)
[ "$n" -eq 40 ]; ok $? "with all 40 flows ($n)"
done_testing
