#!/bin/sh
#   `chorus serve --workers 4` and `chorus on --workers 4` run handlers at
#   the same time: commands in any order, events of one key one at a time
#   and in publish order while different keys overlap. Each handler writes
#   a "start" and an "end" line (appends of one line each, which do not
#   interleave), and the lines show how many ran at once.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

start_hub

#   Most handlers running at once in a log of "start ..." and "end ..." lines
most_at_once () {
    awk '$1 == "start" { n++; if (n > most) most = n } $1 == "end" { n-- }
         END { print most + 0 }' "$1"
}

#   --- serve ------------------------------------------------------------
"$chorus" serve slow --store "$tmp/slow" --workers 4 \
    --handle "nap=echo start \$CHORUS_COMMAND_ID >> $tmp/serve.log; sleep 1; \
echo end \$CHORUS_COMMAND_ID >> $tmp/serve.log; echo '{\"napped\": true}'" \
    2>"$tmp/serve.err" &
pids="$pids $!"
await 100 sh -c "\"$chorus\" peers --wait 300 | grep -q '^slow '"
ok $? "the slow service has joined"

senders=""
i=1
while [ $i -le 8 ]; do
    "$chorus" send slow nap '{}' --timeout 20 >"$tmp/reply-$i" 2>&1 &
    senders="$senders $!"
    i=$((i + 1))
done
failed=0
for pid in $senders; do wait "$pid" || failed=$((failed + 1)); done
[ $failed -eq 0 ]; ok $? "8 commands answered ($failed failed)"
[ "$(cat "$tmp"/reply-* | grep -c napped)" -eq 8 ]; ok $? "each with its handler's reply"
most=$(most_at_once "$tmp/serve.log")
[ "$most" -ge 2 ]; ok $? "handlers ran at the same time: up to $most at once"
[ "$most" -le 4 ]; ok $? "and never more than --workers ($most)"

#   --- on ---------------------------------------------------------------
"$chorus" on work. --group workers --store "$tmp/workers" --workers 4 \
    --exec "echo start \$CHORUS_KEY \$CHORUS_SEQ >> $tmp/on.log; sleep 0.3; \
echo end \$CHORUS_KEY \$CHORUS_SEQ >> $tmp/on.log" 2>"$tmp/on.err" &
pids="$pids $!"
await 100 sh -c "\"$chorus\" peers --wait 300 | grep -q '^workers '"
ok $? "the workers group has joined"
i=0
while [ $i -lt 16 ]; do echo "{\"key\": \"k$((i % 4))\", \"n\": $i}"; i=$((i + 1)); done \
    > "$tmp/items.jsonl"
"$chorus" publish work.item --lines --key-field key --store "$tmp/producer" --timeout 30 \
    < "$tmp/items.jsonl" 2>"$tmp/publish.err"
ok $? "16 events handled and acknowledged: $(cat "$tmp/publish.err")"
[ "$(grep -c '^start' "$tmp/on.log")" -eq 16 ]; ok $? "each ran once"
most=$(most_at_once "$tmp/on.log")
[ "$most" -ge 2 ]; ok $? "different keys ran at the same time: up to $most at once"
#   Per key: start and end alternate, and the seqs rise
bad=$(awk '{ if ($1 == "start") { if (open[$2] || $3 <= last[$2]) bad++; open[$2] = 1; last[$2] = $3 }
             else open[$2] = 0 }
           END { print bad + 0 }' "$tmp/on.log")
[ "$bad" -eq 0 ]; ok $? "events of one key one at a time, in publish order ($bad out of turn)"
done_testing
