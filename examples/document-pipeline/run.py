#!/usr/bin/python3
"""Runs the generator's bundles through the pipeline and judges the results.

A client of the mesh, in Python through the binding: it starts the flow
process_bundle for each bundle of truth.json (WINDOW bundles in flight at a
time) by the coordinator's flow.start, follows each by flow.status until it
ends, and prints each bundle's result as it comes. Then a summary:
documents and pages per second; how the pages spread over the OCR
instances (from their logs in STATE); bundle latency (p50, p99: the
flow's start to its end, as the coordinator timed it); the extracted
fields against the generator's truth; and whether any page's OCR effect
was applied more than once, after the run has sent every page's command
again with its idempotency key, as a redelivery would. With --kill PID it SIGKILLs that OCR instance
once a third of the pages are read. Exit 0 when every bundle completed,
the fields are at least 95% right, no effect was applied twice and, with
more than one OCR instance, the pages went to more than one.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import os
import signal
import sys
import time
from collections import Counter
from typing import Dict, List, Optional, Tuple

import chorus

ENDED = ("completed", "failed", "cancelled", "stuck")


def percentile(values: List[int], p: int) -> int:
    ordered = sorted(values)
    return ordered[max(0, (len(ordered) * p + 99) // 100 - 1)] if ordered else 0


class OcrLogs:
    """What the OCR instances did, from STATE/ocr-NAME.log."""

    def __init__(self, state: str) -> None:
        self.lines: Dict[str, List[List[str]]] = {}
        for path in sorted(glob.glob(os.path.join(state, "ocr-*.log"))):
            name = os.path.basename(path)[len("ocr-"):-len(".log")]
            with open(path) as f:
                self.lines[name] = [line.split(" ", 2) for line in f if line.endswith("\n")]

    def count(self, what: str) -> Dict[str, int]:
        return {name: sum(1 for line in lines if line[0] == what)
                for name, lines in self.lines.items()}

    def applied(self) -> Counter:
        """How many times each idempotency key's effect was applied."""
        return Counter(line[1] for lines in self.lines.values() for line in lines
                       if line[0] == "applied")

    def took(self) -> Tuple[float, float]:
        """Mean wall and CPU milliseconds of tesseract per page read."""
        runs = [(float(line[2].split()[0]), float(line[2].split()[1]))
                for lines in self.lines.values() for line in lines if line[0] == "took"]
        if not runs:
            return 0.0, 0.0
        return (sum(w for w, _ in runs) / len(runs), sum(c for _, c in runs) / len(runs))

    def keys(self, name: str, what: str = "start") -> set:
        """The keys of an instance's lines of one kind."""
        return set(line[1] for line in self.lines.get(name, []) if line[0] == what)

    def moved(self, name: str) -> Dict[str, int]:
        """What became of the pages an instance had started that then went
        to another instance (it was killed before it answered): how many
        the others read again, how many they answered from the effect the
        first one had applied."""
        mine = self.keys(name)
        others = [other for other in self.lines if other != name]
        again = set().union(*(self.keys(o, "applied") for o in others)) & mine
        answered = set().union(*(self.keys(o, "repeat") for o in others)) & mine
        return {"read_again": len(again), "answered_from_effect": len(answered)}


def replay_pages(node: chorus.Node, state: str) -> Dict:
    """Sends every page's read_page again with the idempotency key the
    coordinator gave it, as a redelivery would: each goes to a live OCR
    instance, whose inbox answers it from its record (it read the page) or
    whose handler finds the effect applied (another one did). None may
    apply an effect again, and each answer must be the text recorded."""
    before = OcrLogs(state)
    applied_before = sum(before.count("applied").values())
    repeats_before = sum(before.count("repeat").values())
    effects = os.path.join(state, "ocr")
    pages = [(line[1], line[2].rstrip("\n")) for lines in before.lines.values()
             for line in lines if line[0] == "applied"]
    answered, differ = 0, []
    for key, page in pages:
        reply = node.send("ocr", "read_page", {"page": page}, idempotency=key, timeout=60)
        answered += 1
        digest = hashlib.sha1(key.encode()).hexdigest()
        with open(os.path.join(effects, digest + ".txt")) as f:
            if reply.get("text") != f.read():
                differ.append(key)
    after = OcrLogs(state)
    return {"sent": len(pages), "answered": answered, "differ": differ,
            "applied_again": sum(after.count("applied").values()) - applied_before,
            "from_effect": sum(after.count("repeat").values()) - repeats_before}


def judge(truth: Dict, output: Optional[Dict]) -> Dict:
    """Compares a bundle's output with its truth: documents split right,
    types and fields right."""
    result = {"documents": len(truth["documents"]), "split": 0, "types": 0, "fields": 0,
              "fields_total": sum(len(d["fields"]) for d in truth["documents"]), "wrong": []}
    got = (output or {}).get("documents") or []
    for n, want in enumerate(truth["documents"]):
        have = got[n] if n < len(got) else {}
        pages = [os.path.basename(p) for p in have.get("pages") or []]
        result["split"] += pages == want["pages"]
        result["types"] += have.get("type") == want["type"]
        fields = have.get("fields") or {}
        for field, value in want["fields"].items():
            if fields.get(field) == value:
                result["fields"] += 1
            else:
                result["wrong"].append(f"document {n + 1} {field}: {fields.get(field)!r}, "
                                       f"want {value!r}")
    return result


def describe(output: Dict) -> str:
    parts = []
    for document in output.get("documents") or []:
        fields = " ".join(f"{k}={v}" for k, v in sorted((document.get("fields") or {}).items()))
        parts.append(f"[{document.get('type')}: {len(document.get('pages') or [])}p {fields}]")
    return " ".join(parts)


def main(argv: List[str]) -> int:
    try:
        return run(argv)
    except chorus.Error as exc:     # the mesh failed us: say how, not with a traceback
        print(f"run.py: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def run(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--truth", required=True, help="truth.json of generate.py")
    parser.add_argument("--state", required=True, help="the services' shared state directory")
    parser.add_argument("--store", required=True, help="this client's node store")
    parser.add_argument("--label", default="run", help="prefix of the flow ids (default run)")
    parser.add_argument("--window", type=int, default=4, help="bundles in flight (default 4)")
    parser.add_argument("--deadline", type=float, default=600,
                        help="seconds the bundles have to end (default 600)")
    parser.add_argument("--kill", type=int, help="pid of an OCR instance to SIGKILL mid-run")
    parser.add_argument("--kill-name", default="", help="that instance's name, for the report")
    parser.add_argument("--summary", help="write the summary as JSON to this file")
    parser.add_argument("--quiet", action="store_true", help="no line per bundle")
    args = parser.parse_args(argv)
    if args.window < 1:
        parser.error(f"--window {args.window}: give at least 1")
    with open(args.truth) as f:
        bundles = json.load(f)["bundles"]
    pages_total = sum(b["pages"] for b in bundles)
    documents_total = sum(len(b["documents"]) for b in bundles)

    waiting = list(bundles)
    running: Dict[str, Dict] = {}
    ended: Dict[str, Dict] = {}
    killed_at: Optional[float] = None
    with chorus.Node("pipeline-client", store=args.store) as node:
        began = time.monotonic()
        last = began
        while waiting or running:
            while waiting and len(running) < args.window:
                bundle = waiting.pop(0)
                reply = node.send("coordinator", "flow.start", {
                    "flow": "process_bundle", "id": f"{args.label}-{bundle['bundle']}",
                    "input": {"bundle": bundle["dir"], "bundle_id": bundle["bundle"]}},
                    timeout=30)
                running[reply["id"]] = bundle
            for flow in list(running):
                status = node.send("coordinator", "flow.status", {"id": flow, "from": 0, "to": 0},
                                   timeout=30)
                if status["state"] not in ENDED:
                    continue
                bundle = running.pop(flow)
                last = time.monotonic()
                verdict = judge(bundle, status.get("output"))
                ended[bundle["bundle"]] = {"state": status["state"], "verdict": verdict,
                                           "latency": (status.get("finished") or 0)
                                           - (status.get("started") or 0),
                                           "error": status.get("error")}
                if not args.quiet:
                    mark = "" if not verdict["wrong"] else f"  ({len(verdict['wrong'])} wrong)"
                    what = (describe(status.get("output") or {})
                            if status["state"] == "completed" else status.get("error"))
                    print(f"{bundle['bundle']} {status['state']} in "
                          f"{ended[bundle['bundle']]['latency']} ms: {what}{mark}", flush=True)
            if args.kill and killed_at is None:
                read = sum(OcrLogs(args.state).count("applied").values())
                if read >= pages_total / 3:
                    os.kill(args.kill, signal.SIGKILL)
                    killed_at = time.monotonic() - began
                    print(f"-- killed {args.kill_name or 'ocr'} (pid {args.kill}) with SIGKILL "
                          f"after {read} of {pages_total} pages", flush=True)
            if time.monotonic() - began > args.deadline:
                break
            if running:
                time.sleep(0.05)
        elapsed = max(last - began, 1e-3)
        during = OcrLogs(args.state)
        moved = during.moved(args.kill_name) if args.kill_name else {}
        repeats = during.count("repeat")
        took = during.took()
        replay = replay_pages(node, args.state)

    logs = OcrLogs(args.state)
    applied = logs.applied()
    twice = sorted(key for key, n in applied.items() if n > 1)
    per_instance = logs.count("applied")
    completed = [b for b in ended.values() if b["state"] == "completed"]
    latencies = [b["latency"] for b in completed]
    fields = sum(b["verdict"]["fields"] for b in ended.values())
    fields_total = sum(sum(len(d["fields"]) for d in b["documents"]) for b in bundles)
    types = sum(b["verdict"]["types"] for b in ended.values())
    splits = sum(b["verdict"]["split"] for b in ended.values())
    accuracy = fields / fields_total if fields_total else 0.0
    summary = {
        "bundles": len(bundles), "completed": len(completed),
        "not_completed": sorted(set(b["bundle"] for b in bundles) -
                                set(k for k, v in ended.items() if v["state"] == "completed")),
        "documents": documents_total, "pages": pages_total, "seconds": round(elapsed, 2),
        "documents_per_s": round(documents_total / elapsed, 2),
        "pages_per_s": round(pages_total / elapsed, 2),
        "ocr_ms_per_page": {"wall": round(took[0]), "cpu": round(took[1])},
        "ocr_applied": per_instance, "ocr_repeats": repeats, "pages_read": sum(applied.values()),
        "page_keys": len(applied), "applied_twice": twice, "killed": args.kill_name or None,
        "killed_at_s": None if killed_at is None else round(killed_at, 2),
        "moved_after_kill": moved,
        "latency_p50_ms": percentile(latencies, 50), "latency_p99_ms": percentile(latencies, 99),
        "fields_right": fields, "fields_total": fields_total, "accuracy": round(accuracy, 4),
        "types_right": types, "splits_right": splits, "replay": replay,
    }
    if args.summary:
        with open(args.summary, "w") as f:
            json.dump(summary, f, indent=1)

    def row(name: str, text: str) -> None:
        print(f"{name:<15} {text}")
    print("== summary")
    row("bundles", f"{len(completed)} of {len(bundles)} completed" +
        (f"; not: {' '.join(summary['not_completed'])}" if summary["not_completed"] else ""))
    row("throughput", f"{documents_total} documents, {pages_total} pages in {elapsed:.1f} s: "
                      f"{summary['documents_per_s']} documents/s, {summary['pages_per_s']} pages/s")
    spread = ", ".join(f"{name} {n}" + (" (killed)" if name == args.kill_name else "")
                       for name, n in per_instance.items())
    row("ocr spread", f"pages read per instance: {spread}")
    row("ocr time", f"tesseract per page: {took[0]:.0f} ms wall, {took[1]:.0f} ms CPU "
                    f"(mean; one thread each)")
    row("latency", f"p50 {summary['latency_p50_ms']} ms, p99 {summary['latency_p99_ms']} ms "
                   f"(bundle flow start to end)")
    row("accuracy", f"fields {fields}/{fields_total} right ({100 * accuracy:.1f}%); "
                    f"types {types}/{documents_total}; splits {splits}/{documents_total}")
    row("effects", f"{len(applied)} page keys, {sum(applied.values())} applied, "
                   f"{len(twice)} applied twice; {sum(repeats.values())} sent again and "
                   f"answered from the effect already there")
    row("replay", f"every page's read_page sent again with its key: {replay['answered']} of "
                  f"{replay['sent']} answered, {replay['sent'] - len(replay['differ'])} with the "
                  f"text recorded, {replay['from_effect']} from the effect found applied; "
                  f"{replay['applied_again']} applied again")
    if args.kill_name:
        row("kill", f"{args.kill_name} SIGKILLed at {summary['killed_at_s']} s; of the pages it "
                    f"had taken, {moved['read_again']} were read again by another instance "
                    f"and {moved['answered_from_effect']} answered from the effect it had "
                    f"applied (same idempotency keys)"
            if killed_at is not None else "no kill: the run ended first")
    for b, v in sorted(ended.items()):
        for wrong in v["verdict"]["wrong"][:3]:
            print(f"  {b} {wrong}")

    reasons = []
    if summary["not_completed"]:
        reasons.append(f"{len(summary['not_completed'])} bundles did not complete")
    if accuracy < 0.95:
        reasons.append(f"field accuracy {100 * accuracy:.1f}% is below 95%")
    if twice:
        reasons.append(f"{len(twice)} pages' effects applied twice: {' '.join(twice[:5])}")
    if replay["applied_again"] or replay["differ"] or replay["answered"] < replay["sent"]:
        reasons.append(f"pages sent again: {replay['applied_again']} applied again, "
                       f"{len(replay['differ'])} answered with another text")
    if len(applied) < pages_total and not summary["not_completed"]:
        reasons.append(f"{pages_total - len(applied)} pages have no OCR effect recorded")
    if len(per_instance) > 1 and sum(1 for n in per_instance.values() if n) < 2:
        reasons.append("the pages all went to one OCR instance")
    if args.kill and killed_at is None:
        reasons.append("the run ended before the kill")
    if reasons:
        print("FAILED: " + "; ".join(reasons))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
