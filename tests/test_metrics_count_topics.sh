#!/bin/sh
#   A node counts the events it publishes per topic at /metrics
#   (chorus_topic_events_published_total{topic}), with a bounded label set:
#   a node publishing on 70 topics shows the first 64 apart and the other
#   6 together as topic="_other", every event counted once; promtool
#   accepts it, and chorus top shows the topics with their rates.
. "$srcdir/tests/tap.sh"
. "$srcdir/tests/mesh.sh"

#   scrape ADDRESS: the body of /metrics
scrape () {
    "$PYTHON" - "$1" <<'PY'
import sys, urllib.request
with urllib.request.urlopen("http://" + sys.argv[1] + "/metrics", timeout=5) as reply:
    sys.stdout.write(reply.read().decode())
PY
}
#   value SERIES: its value in the last scrape ("name" or "name{labels}")
value () { awk -v series="$1" '$1 == series {print $2}' "$tmp/scrape.txt"; }
#   counted N: /metrics shows N events published (the figures are copied
#   about once a second)
counted () {
    scrape "$metrics" >"$tmp/scrape.txt" 2>/dev/null && [ "$(value chorus_events_published_total)" = "$1" ]
}

#   The publisher: 140 events round 70 topics (2 each), published once it
#   has met a peer, so that chorus top reads it before and after
CHORUS_METRICS=127.0.0.1:0 "$helper" --service=many --topic=shop --topics 70 --publish 140 \
    --wait-peers 1 >"$tmp/many.out" 2>"$tmp/many.err" &
pids="$pids $!"
await 100 grep -q "^METRICS " "$tmp/many.out"
metrics=$(awk '/^METRICS/ {print $2}' "$tmp/many.out")
endpoint=$(awk '/^READY/ {print $2}' "$tmp/many.out")
[ -n "$metrics" ] && [ -n "$endpoint" ]; ok $? "the publisher serves /metrics at $metrics"
counted 0; ok $? "nothing published yet: no topic series ($(grep -c topic_events "$tmp/scrape.txt") lines)"

#   chorus top, on a pipe, prints every refresh: it sees the events come
"$chorus" top --interval 0.5 --metrics "$metrics" >"$tmp/top.out" 2>"$tmp/top.err" &
top_pid=$!
pids="$pids $top_pid"
await 50 grep -q "^ENDPOINT" "$tmp/top.out"
ok $? "chorus top reads it"

"$helper" --service=peer --seed="$endpoint" >"$tmp/peer.out" &
pids="$pids $!"
await 100 grep -q "^PUBLISHED 140" "$tmp/many.out"
ok $? "140 events published on 70 topics once it met a peer"
await 50 counted 140
ok $? "chorus_events_published_total counts them: $(value chorus_events_published_total)"

apart=$(grep -c '^chorus_topic_events_published_total{topic="shop\.[0-9]*"} 2$' "$tmp/scrape.txt")
[ "$apart" -eq 64 ]; ok $? "64 topics counted apart, 2 events each ($apart)"
first=yes
i=0
while [ $i -lt 64 ]; do
    [ "$(value "chorus_topic_events_published_total{topic=\"shop.$i\"}")" = 2 ] || first=no
    i=$((i + 1))
done
[ $first = yes ]; ok $? "they are the first 64 the node published on (shop.0 to shop.63)"
[ "$(value 'chorus_topic_events_published_total{topic="shop.64"}')" = "" ]
ok $? "the 65th has no series of its own"
[ "$(value 'chorus_topic_events_published_total{topic="_other"}')" = 12 ]
ok $? "the other 6 topics' 12 events are counted as _other: $(value 'chorus_topic_events_published_total{topic="_other"}')"
sum=$(awk '/^chorus_topic_events_published_total\{/ {s += $2} END {print s}' "$tmp/scrape.txt")
[ "$sum" = 140 ]; ok $? "every event counted once over the topic series ($sum)"

if command -v promtool >/dev/null 2>&1; then
    promtool check metrics <"$tmp/scrape.txt" >"$tmp/promtool.out" 2>&1
    ok $? "promtool check metrics accepts it $(head -c 300 "$tmp/promtool.out")"
else
    skip "promtool check metrics: promtool is not installed (Debian package prometheus)"
fi

#   chorus top: the topics, their counts, and a rate while they came
topic_row () { grep -q "^$1  *$metrics  *$2 " "$tmp/top.out"; }
await 50 topic_row shop.0 2 && await 50 topic_row _other 12
ok $? "chorus top lists the topics with their events: $(grep -m1 '^shop.0 ' "$tmp/top.out")"
awk -v at="$metrics" '$1 == "shop.5" && $2 == at && $4 + 0 > 0 { found = 1 } END { exit !found }' \
    "$tmp/top.out"
ok $? "and their rate per second as they were published: $(awk '$1 == "shop.5" && $4 + 0 > 0' "$tmp/top.out" | head -1)"
grep -q "^TOPIC  *PUBLISHED BY  *EVENTS  *PUB/s" "$tmp/top.out"
ok $? "under a TOPIC header"
kill "$top_pid" 2>/dev/null
done_testing
