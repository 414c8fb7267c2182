#!/bin/sh
#   The bench programs, run tiny with --json FILE, write well-formed JSON
#   with every measure's name, value, unit, baseline and ratio and the
#   machine's cores; scripts/bench's merge keeps them all in one document.
#   Figures are not judged: timings are never asserted in a test.
. "$srcdir/tests/tap.sh"
bench="$top_builddir/tests/bench"
python=/usr/bin/python3
figures="$srcdir/scripts/lib/figures.py"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

#   check_doc FILE PROGRAM NAME... — FILE is JSON (json.tool reads it), is
#   PROGRAM's, states the cores, and holds a measure NAME with a number
#   value for each NAME, every measure with the keys a reader relies on
check_doc () {
    file=$1 program=$2
    shift 2
    "$python" -m json.tool "$file" >/dev/null
    ok $? "$program: json.tool reads its --json file"
    "$python" - "$file" "$program" "$@" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
problems = []
if doc.get("program") != sys.argv[2]:
    problems.append("program is %r" % doc.get("program"))
if not isinstance(doc.get("cores"), int) or doc["cores"] < 1:
    problems.append("cores is %r" % doc.get("cores"))
keys = {"name", "value", "unit", "baseline", "baseline_value", "ratio"}
names = {}
for m in doc.get("measures", []):
    if set(m) != keys:
        problems.append("measure %r has keys %s" % (m.get("name"), sorted(m)))
    names[m.get("name")] = m
    if m.get("baseline") is None and (m.get("baseline_value") is not None or m.get("ratio") is not None):
        problems.append("%s has a ratio but no baseline" % m.get("name"))
for name in sys.argv[3:]:
    if name not in names:
        problems.append("no measure %s" % name)
    elif not isinstance(names[name]["value"], (int, float)):
        problems.append("%s has no number" % name)
for t in doc.get("targets", []):
    if set(t) != {"target", "met"}:
        problems.append("target %r" % t)
if problems:
    print("\n".join("# " + p for p in problems))
sys.exit(1 if problems else 0)
EOF
    ok $? "$program: its measures are there, with their keys, and the cores"
}

"$bench/bench_node" --events 200 --messages 2000 --commands 50 --json "$tmp/node.json" \
    >"$tmp/node.out" 2>&1
ok $? "bench_node runs tiny" || diag "$(tail -5 "$tmp/node.out")"
check_doc "$tmp/node.json" bench_node \
    node.events_per_second.plaintext node.events_per_second.curve \
    node.cpu_us_per_event.plaintext \
    node.command_rtt_p50_us.in_flight_1.plaintext node.command_rtt_p99_us.in_flight_100.curve
"$python" -c '
import json, sys
doc = json.load(open(sys.argv[1]))
m = {x["name"]: x for x in doc["measures"]}["node.events_per_second.plaintext"]
sys.exit(0 if m["baseline"] and isinstance(m["baseline_value"], (int, float)) else 1)' "$tmp/node.json"
ok $? "bench_node: Chorus events/s stand beside raw PUB/SUB's"

"$bench/bench_flows" --flows 50 --json "$tmp/flows.json" >"$tmp/flows.out" 2>&1
ok $? "bench_flows runs tiny" || diag "$(tail -5 "$tmp/flows.out")"
check_doc "$tmp/flows.json" bench_flows flows.per_second.fsync flows.latency_p99_ms.half_load.fsync

"$bench/bench_durable" --durability process --batch 10 --events 200 --dir "$tmp" \
    --json "$tmp/durable.json" >"$tmp/durable.out" 2>&1
ok $? "bench_durable runs tiny" || diag "$(tail -5 "$tmp/durable.out")"
check_doc "$tmp/durable.json" bench_durable durable_publish.events_per_second.process.batch_10

"$bench/bench_fanout" --coordinator "$top_builddir/coordinator/chorus-coordinator" --items 50 \
    --max-parallel 5 --deadline 60 --json "$tmp/fanout.json" >"$tmp/fanout.out" 2>&1
ok $? "bench_fanout runs tiny" || diag "$(tail -5 "$tmp/fanout.out")"
check_doc "$tmp/fanout.json" bench_fanout fanout.free.completion_s fanout.free.peak_rss_mb \
    fanout.free.flow_list_max_ms fanout.max_parallel.flow_list_p99_ms

#   The NATS baseline needs its client at build time and its server here
if [ ! -x "$bench/bench_nats" ]; then
    skip "bench_nats is not built (libnats-dev was not there at configure)"
elif ! command -v nats-server >/dev/null; then
    skip "nats-server is not installed"
else
    "$bench/bench_nats" --events 200 --requests 50 --dir "$tmp" --json "$tmp/nats.json" \
        >"$tmp/nats.out" 2>&1
    ok $? "bench_nats starts its server and runs tiny" || diag "$(tail -5 "$tmp/nats.out")"
    check_doc "$tmp/nats.json" bench_nats jetstream.events_per_second \
        nats.request_reply_p50_us.in_flight_1 nats.request_reply_p99_us.in_flight_100
    left=$(ls "$tmp" | grep -c chorus-bench-nats)
    [ "$left" -eq 0 ]; ok $? "bench_nats removes its directory"
fi

#   What scripts/bench adds, and the document it merges
"$python" "$figures" measure "$tmp/bench.json" peers.events_per_second.vs_jetstream 90000 \
    events/s "NATS JetStream end to end events/s" 60000 \
    && "$python" "$figures" measure "$tmp/bench.json" durable_publish.process.batch_1 - events/s \
    && "$python" "$figures" target "$tmp/bench.json" "durable events >= 1.5x JetStream" met \
    && "$python" "$figures" target "$tmp/bench.json" "not taken" not-measured \
    && "$python" "$figures" skip "$tmp/bench.json" RabbitMQ 'no "broker" here'
ok $? "figures.py records the script's measures, targets and skips"
"$python" "$figures" merge "$tmp/all.json" 2 0.0.0 yes yes "$tmp"/node.json "$tmp/flows.json" \
    "$tmp/bench.json"
ok $? "figures.py merges a run's files"
"$python" -m json.tool "$tmp/all.json" >/dev/null
ok $? "json.tool reads the merged document"
"$python" - "$tmp/all.json" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
names = {m["name"]: m for m in doc["measures"]}
problems = []
if doc["machine"] != {"cores": 2} or doc["options"] != {"quick": True, "peers": True}:
    problems.append("machine or options: %r %r" % (doc["machine"], doc["options"]))
for name in ("node.events_per_second.plaintext", "flows.per_second.fsync",
             "peers.events_per_second.vs_jetstream", "durable_publish.process.batch_1"):
    if name not in names:
        problems.append("no " + name)
if names.get("peers.events_per_second.vs_jetstream", {}).get("ratio") != 1.5:
    problems.append("the ratio is not value / baseline value")
if names.get("durable_publish.process.batch_1", {}).get("value", 0) is not None:
    problems.append("a figure not taken is not null")
if [t["met"] for t in doc["targets"] if t["program"] == "scripts/bench"] != [True, None]:
    problems.append("targets: %r" % doc["targets"])
if doc["skipped"] != [{"baseline": "RabbitMQ", "reason": 'no "broker" here',
                       "program": "scripts/bench"}]:
    problems.append("skipped: %r" % doc["skipped"])
if problems:
    print("\n".join("# " + p for p in problems))
sys.exit(1 if problems else 0)
EOF
ok $? "the document holds every program's measures, the script's, targets, skips, cores"

#   scripts/bench --scale: a mesh of 3 node_helper processes, its figures
#   present and a killed node found dead by both others
"$python" "$srcdir/scripts/lib/scale.py" --helper "$top_builddir/tests/node_helper" --idle 1 \
    --heartbeat 200,600,1000 --label test --json "$tmp/scale.json" 3 >"$tmp/scale.out"
ok $? "scale.py measures a mesh of 3: $(tail -1 "$tmp/scale.out")"
"$python" - "$tmp/scale.json" <<'EOF'
import json, sys
(row,) = json.load(open(sys.argv[1]))
problems = ["no %s" % key for key in ("convergence_s", "idle_cpu_pct", "sockets_mean",
                                       "rss_mb_mean", "false_deaths", "dead_known_by_all_s")
            if not isinstance(row.get(key), (int, float))]
if row.get("n") != 3 or row.get("sockets_mean", 0) < 2:
    problems.append("n or sockets: %r" % row)
print("\n".join("# " + p for p in problems))
sys.exit(1 if problems else 0)
EOF
ok $? "its JSON holds convergence, idle CPU, sockets, RSS, false deaths and the time to know a death"

done_testing
