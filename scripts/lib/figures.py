"""figures.py — the JSON side of scripts/bench: reads a figure that a bench
program wrote with --json, records what the script itself compares, and
merges every file of a run into the one document --json FILE asks for.

    figures.py get FILE NAME [FIELD]         the measure's value (or FIELD), or "-"
    figures.py measure FILE NAME VALUE UNIT [BASELINE BASELINE_VALUE]
    figures.py target FILE TEXT met|not-met|not-measured
    figures.py skip FILE BASELINE REASON
    figures.py merge OUT CORES VERSION QUICK PEERS FILE...   (OUT "-": stdout)

VALUE and BASELINE_VALUE are numbers, or "-" for a figure the run could not
take (then null in JSON). A file the script writes has the shape of a bench
program's (tests/bench/bench_json.h), so merging is one rule for all.
"""
import json
import math
import os
import sys


def load(path, program="scripts/bench"):
    if os.path.exists(path):
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    return {"program": program, "measures": [], "targets": [], "skipped": []}


def save(path, doc):
    with open(path + ".new", "w", encoding="utf-8") as file:
        json.dump(doc, file, indent=2)
        file.write("\n")
    os.replace(path + ".new", path)


def number(text):
    """A figure as a number, or None for "-" or anything not finite."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def get(path, name, field="value"):
    try:
        doc = load(path)
    except (OSError, ValueError):
        return "-"
    for measure in doc.get("measures", []):
        if measure.get("name") == name and isinstance(measure.get(field), (int, float)):
            return "%.10g" % measure[field]
    return "-"


def measure(path, name, value, unit, baseline=None, baseline_value="-"):
    doc = load(path)
    value = number(value)
    base = number(baseline_value) if baseline else None
    ratio = value / base if value is not None and base else None
    doc["measures"].append({"name": name, "value": value, "unit": unit,
                            "baseline": baseline, "baseline_value": base, "ratio": ratio})
    save(path, doc)


def target(path, text, met):
    doc = load(path)
    doc["targets"].append({"target": text,
                           "met": {"met": True, "not-met": False}.get(met)})
    save(path, doc)


def skip(path, baseline, reason):
    doc = load(path)
    doc.setdefault("skipped", []).append({"baseline": baseline, "reason": reason})
    save(path, doc)


def merge(out, cores, version, quick, peers, paths):
    doc = {"chorus_version": version, "machine": {"cores": int(cores)},
           "options": {"quick": quick == "yes", "peers": peers == "yes"},
           "measures": [], "targets": [], "skipped": []}
    for path in paths:
        part = load(path)
        program = part.get("program", os.path.basename(path))
        for key in ("measures", "targets", "skipped"):
            for item in part.get(key, []):
                item = dict(item)
                item["program"] = program
                doc[key].append(item)
    text = json.dumps(doc, indent=2) + "\n"
    if out == "-":
        sys.stdout.write(text)
    else:
        with open(out, "w", encoding="utf-8") as file:
            file.write(text)


def main(argv):
    commands = {"get": (get, 2, 3), "measure": (measure, 4, 6), "target": (target, 3, 3),
                "skip": (skip, 3, 3), "merge": (merge, 5, None)}
    if len(argv) < 2 or argv[1] not in commands:
        sys.stderr.write(__doc__)
        return 2
    function, least, most = commands[argv[1]]
    args = argv[2:]
    if len(args) < least or (most is not None and len(args) > most):
        sys.stderr.write(__doc__)
        return 2
    if function is merge:
        merge(*args[:5], args[5:])
    elif function is get:
        print(get(*args))
    else:
        function(*args)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
