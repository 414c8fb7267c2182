#!/usr/bin/python3
"""scale.py - what membership costs as a mesh grows (scripts/bench --scale).

For each N: starts N node processes (tests/node_helper, a node with no
subscriptions, handlers or traffic: the membership alone) on loopback, each
seeded to the first, and measures
  - convergence: from the last node ready (bound, its "READY" line; the seed
    is started first, the others once it is ready) to every node having met
    all N-1 others (the "met" lines of their --verbose logs); starting N
    processes at once on a loaded machine takes seconds of its own, reported
    apart as start_s;
  - idle CPU of the whole mesh over IDLE seconds (utime + stime of every
    process from /proc/PID/stat), as a percentage of one core;
  - sockets (entries of /proc/PID/fd that are sockets) and RSS (VmRSS) per
    node, mean and max, at the end of the idle run: 40 s by default, so
    that the connections the nodes no longer use (to the seed they joined
    through, above all) have been closed (after 30 s unused: protocol
    section 5.2);
  - false deaths: peers declared expired (dead) during the idle run;
  - detection: after a kill -9 of one node (not the seed), the time until
    every other node has declared it expired (dead).
Every node comes from one address, 127.0.0.1, which the seed's bound on new
peers per remote address (a first 50, then 20 a second: protocol section 4.5,
against a flood from one host) would pace; the seed is started with
--peer-rate N, so that convergence measures membership, not that bound, which
a mesh of N hosts never meets. With the default rate a start of 300 at once
converges once the refused nodes have tried the seed again (3-7 s here).
The nodes run at nice 5, so that this script keeps measuring on a machine
that they overload. Prints one line per N, and with --json FILE writes the
figures there.
"""
import argparse, json, os, re, select, signal, socket, subprocess, sys, tempfile, time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cpu_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])    # utime, stime
    except OSError:
        return 0


def sockets(pid):
    count = 0
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)).startswith("socket:"):
                    count += 1
            except OSError:
                pass
    except OSError:
        pass
    return count


def rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Log:
    """A node's stderr, read as it grows."""
    MET = re.compile(r": (?:met|member) (\S+)/")
    EXPIRED = re.compile(r": peer (\S+)/\S+ expired")

    def __init__(self, path):
        self.path, self.offset, self.rest = path, 0, ""
        self.met, self.expired = set(), []

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return
        self.offset += len(data)
        lines = (self.rest + data.decode("utf-8", "replace")).split("\n")
        self.rest = lines.pop()
        for line in lines:
            m = self.MET.search(line)
            if m:
                self.met.add(m.group(1))
            m = self.EXPIRED.search(line)
            if m:
                self.expired.append((time.monotonic(), m.group(1)))


def run(helper, n, idle, heartbeat, work):
    port = free_port()
    seed = "tcp://127.0.0.1:%d" % port
    procs, logs = [], []
    env = dict(os.environ)
    env.pop("CHORUS_METRICS", None)
    try:
        for i in range(n):
            name = "n%d" % i
            err = os.path.join(work, name + ".err")
            args = [helper, "--service=" + name, "--store=" + os.path.join(work, name),
                    "--verbose",
                    "--listen=" + (seed if i == 0 else "tcp://127.0.0.1:0")]
            if i:
                args.append("--seed=" + seed)
            else:
                # all N come from 127.0.0.1: the seed admits them at once
                args.append("--peer-rate=%d" % max(n, 20))
            if heartbeat:
                args.append("--heartbeat=" + heartbeat)
            with open(err, "wb") as stderr:
                # niced, so that this script, which measures them, keeps up
                # with hundreds of them on a machine they overload
                procs.append(subprocess.Popen(args, stderr=stderr, env=env,
                                              stdout=subprocess.PIPE,
                                              preexec_fn=lambda: os.nice(5)))
            logs.append(Log(err))
            if i == 0:
                # the others start once the seed listens
                ready = select.select([procs[0].stdout], [], [], 30)[0]
                if not ready or not procs[0].stdout.readline().startswith(b"READY"):
                    raise RuntimeError("the seed node did not start: see " + err)
        spawned = time.monotonic()
        waiting = {p.stdout: p for p in procs[1:]}
        ready_at = spawned
        converged = None
        deadline = spawned + 60 + n / 5
        while time.monotonic() < deadline:
            if waiting:
                for out in select.select(list(waiting), [], [], 0.02)[0]:
                    if out.readline().startswith(b"READY"):
                        ready_at = time.monotonic()
                    del waiting[out]
            else:
                time.sleep(0.02)
            for log in logs:
                log.poll()
            if not waiting and all(len(log.met) >= n - 1 for log in logs):
                converged = time.monotonic() - ready_at
                break
        result = {"n": n, "convergence_s": converged, "start_s": ready_at - spawned}
        if converged is None:
            result["met_min"] = min(len(log.met) for log in logs)
        time.sleep(2)
        for log in logs:
            log.poll()
        expired_before = sum(len(log.expired) for log in logs)
        before = [cpu_ticks(p.pid) for p in procs]
        t0 = time.monotonic()
        time.sleep(idle)
        after = [cpu_ticks(p.pid) for p in procs]
        elapsed = time.monotonic() - t0
        for log in logs:
            log.poll()
        result["idle_cpu_pct"] = 100.0 * (sum(after) - sum(before)) / CLK_TCK / elapsed
        result["false_deaths"] = sum(len(log.expired) for log in logs) - expired_before
        socks = [sockets(p.pid) for p in procs]
        rss = [rss_kb(p.pid) for p in procs]
        result["sockets_mean"] = sum(socks) / n
        result["sockets_max"] = max(socks)
        result["rss_mb_mean"] = sum(rss) / n / 1024
        result["rss_mb_max"] = max(rss) / 1024
        # kill -9 one node, not the seed
        victim = n // 2
        for log in logs:
            log.poll()
            log.expired = []
        procs[victim].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        others = [log for i, log in enumerate(logs) if i != victim]
        detected = None
        name = "n%d" % victim
        while time.monotonic() < killed + 30:
            for log in others:
                log.poll()
            if all(any(who == name for _, who in log.expired) for log in others):
                detected = max(min(t for t, who in log.expired if who == name)
                               for log in others) - killed
                break
            time.sleep(0.01)
        result["dead_known_by_all_s"] = detected
        if detected is None:
            result["dead_known_by"] = sum(1 for log in others
                                          if any(who == name for _, who in log.expired))
        return result
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGKILL)
        for p in procs:
            p.wait()


def main():
    # killed, the nodes started are killed too (the finally of run)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser()
    parser.add_argument("--helper", required=True)
    parser.add_argument("--idle", type=float, default=40)
    parser.add_argument("--heartbeat", default="")
    parser.add_argument("--json", default="")
    parser.add_argument("--label", default="")
    parser.add_argument("sizes", type=int, nargs="+")
    opts = parser.parse_args()
    results = []
    fmt = lambda v, f: "-" if v is None else f % v
    print("%-10s %5s %12s %10s %12s %11s %11s %13s" % (
        "build", "N", "converge s", "idle CPU", "sockets/node", "RSS MB/node",
        "false dead", "dead known s"))
    for n in opts.sizes:
        with tempfile.TemporaryDirectory(prefix="chorus-scale-") as work:
            r = run(opts.helper, n, opts.idle, opts.heartbeat, work)
        r["label"] = opts.label
        results.append(r)
        print("%-10s %5d %12s %9.1f%% %12s %11s %11d %13s" % (
            opts.label, n, fmt(r["convergence_s"], "%.2f"), r["idle_cpu_pct"],
            "%.0f (max %d)" % (r["sockets_mean"], r["sockets_max"]),
            "%.1f" % r["rss_mb_mean"], r["false_deaths"],
            fmt(r["dead_known_by_all_s"], "%.2f")), flush=True)
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
