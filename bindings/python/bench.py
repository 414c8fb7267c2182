#!/usr/bin/env python3
"""bench.py — what the Python binding costs per command, beside a C handler.

    CHORUS_LIBRARY=_b/.libs/libchorus.so PYTHONPATH=bindings/python \\
        /usr/bin/python3 bindings/python/bench.py --build _b [--count N]

One Python caller sends N commands, one at a time and then 100 in flight,
on loopback, to each of three handlers in processes of their own: the C
handler of tests/node_helper (libchorus, no Python), a Python handler that
takes and returns bytes (raw=True: the binding's own cost), and a Python
handler that takes and returns Python values (payload conversion too);
then the raw handler again with both ends run inline (Node(inline=True)).
Prints round-trip p50/p99 in microseconds and commands per second; the
difference between a Python row and the C row is what Python costs the
handler's side, since the caller is the same.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid

import chorus

SERVE = r'''
import sys, chorus
raw = sys.argv[1] in ("raw", "inline")
with chorus.Node("bench-" + sys.argv[1], inline=sys.argv[1] == "inline") as node:
    @node.command("echo", raw=raw)
    def echo(payload, ctx):
        return payload if raw else {"ok": payload["n"]}
    print("READY", node.endpoint, flush=True)
    node.run()
'''


def start(argv, env):
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "READY" not in line:
        raise SystemExit(f"{argv[0]} did not start: {line!r}")
    return proc, line.split()[1]


def measure(node, service, count, raw):
    payload = chorus.encode({"n": 1}) if raw else {"n": 1}
    for _ in range(50):       # warm up: the peer is met, the path is hot
        node.send(service, "echo", payload, raw=raw, timeout=10)
    times = []
    for _ in range(count):
        start_ns = time.perf_counter_ns()
        node.send(service, "echo", payload, raw=raw, timeout=10)
        times.append((time.perf_counter_ns() - start_ns) / 1000)
    times.sort()
    p50, p99 = times[len(times) // 2], times[int(len(times) * 0.99)]
    done = []
    began = time.perf_counter()
    sent = 0
    while len(done) < count:
        while sent < count and sent - len(done) < 100:
            node.send_async(service, "echo", payload, lambda v, e: done.append(e), raw=raw,
                            timeout=30)
            sent += 1
        node._dispatch_and_wait(0.1, lambda: len(done) >= count or sent < count)
    rate = count / (time.perf_counter() - began)
    failures = sum(1 for e in done if e is not None)
    return p50, p99, rate, failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", default="_build")
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    env = dict(os.environ, CHORUS_MESH="bench-py-" + uuid.uuid4().hex[:8])
    os.environ["CHORUS_MESH"] = env["CHORUS_MESH"]
    helper = os.path.join(args.build, "tests", "node_helper")
    procs = []
    try:
        proc, hub = start([helper, "--service=bench-c", "--handle=echo"], env)
        procs.append(proc)
        env["CHORUS_SEEDS"] = hub
        script = os.path.join(tempfile.mkdtemp(), "serve.py")
        with open(script, "w") as out:
            out.write(SERVE)
        for kind in ("raw", "values", "inline"):
            procs.append(start([sys.executable, script, kind], env)[0])
        rows = [("C handler (node_helper)", "bench-c", True),
                ("Python handler, raw=True", "bench-raw", True),
                ("Python handler, Python values", "bench-values", False)]
        print(f"{args.count} commands from a Python caller; round trip 1 in flight, "
              f"rate 100 in flight")
        print(f"{'handler':32} {'p50 us':>9} {'p99 us':>9} {'cmds/s':>9}")
        with chorus.Node("bench-caller", seeds=[hub]) as node:
            for name, service, raw in rows:
                p50, p99, rate, failures = measure(node, service, args.count, raw)
                note = f"  ({failures} failed)" if failures else ""
                print(f"{name:32} {p50:9.0f} {p99:9.0f} {rate:9.0f}{note}", flush=True)
        #   Both ends run inline (Node(inline=True)): the raw Python handler
        #   again, with no engine thread on either side
        with chorus.Node("bench-caller-inline", seeds=[hub], inline=True) as node:
            p50, p99, rate, failures = measure(node, "bench-inline", args.count, True)
            note = f"  ({failures} failed)" if failures else ""
            print(f"{'the same, both ends run inline':32} {p50:9.0f} {p99:9.0f} {rate:9.0f}"
                  f"{note}", flush=True)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
