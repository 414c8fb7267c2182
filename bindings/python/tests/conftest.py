"""What the binding's tests share: where the build is, a mesh of processes
on loopback for each test (its own mesh name, a hub to seed from, a
temporary directory, every process stopped at the end), waiting for a
condition with a deadline, and TAP lines for automake's harness.

The build comes from the environment tests/test_python_binding.sh sets:
CHORUS_LIBRARY (libchorus.so of the build), CHORUS_TOOL (the chorus
command) and CHORUS_HELPER (tests/node_helper).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Callable, List, Optional

import pytest

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent
TOOL = os.environ.get("CHORUS_TOOL", "chorus")
HELPER = os.environ.get("CHORUS_HELPER", "")


def await_(condition: Callable[[], object], timeout: float = 10.0, step: float = 0.05) -> bool:
    """Polls condition until it is true, at most timeout seconds."""
    end = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(step)


class Mesh:
    """A test's mesh: its name, a hub to seed from, its processes and files."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.name = "test-py-" + uuid.uuid4().hex[:12]
        self.procs: List[subprocess.Popen] = []
        self.env = dict(os.environ, CHORUS_MESH=self.name)
        #   Default stores (a command without --store) stay in the test's
        #   directory, not in the user's data directory across runs
        self.env["XDG_DATA_HOME"] = str(tmp / "data")
        self.env["PYTHONPATH"] = os.pathsep.join(
            [str(PACKAGE), str(HERE)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
        self.env.pop("CHORUS_SEEDS", None)
        self.hub = ""
        if HELPER:
            out = open(tmp / "hub.out", "w+")
            self.spawn([HELPER, "--service=hub"], stdout=out)
            assert await_(lambda: "READY" in (tmp / "hub.out").read_text()), "the hub started"
            self.hub = (tmp / "hub.out").read_text().split()[1]
            self.env["CHORUS_SEEDS"] = self.hub

    def spawn(self, argv: List[str], **kw) -> subprocess.Popen:
        """Starts a process of the mesh (stopped at the end of the test)."""
        kw.setdefault("env", self.env)
        proc = subprocess.Popen(argv, **kw)
        self.procs.append(proc)
        return proc

    def python(self, script: str, *args: str, name: str = "svc") -> subprocess.Popen:
        """Starts tests/SCRIPT under this Python, stdout and stderr to
        tmp/NAME.out and tmp/NAME.err."""
        out = open(self.tmp / f"{name}.out", "w")
        err = open(self.tmp / f"{name}.err", "a")
        return self.spawn([sys.executable, str(HERE / script), *args], stdout=out, stderr=err)

    def ready(self, name: str = "svc", timeout: float = 20.0) -> str:
        """Waits for 'READY ENDPOINT' in tmp/NAME.out; returns the endpoint."""
        path = self.tmp / f"{name}.out"
        assert await_(lambda: "READY" in path.read_text(), timeout), \
            f"{name} is ready: {self.text(name + '.err')}"
        return path.read_text().split("READY", 1)[1].split()[0]

    def text(self, name: str) -> str:
        path = self.tmp / name
        return path.read_text() if path.exists() else ""

    def chorus(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        """Runs the chorus command on this mesh; returns its result."""
        return subprocess.run([TOOL, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def c_group(self, prefix: str, group: str, out: Path) -> None:
        """Starts a C group (`chorus on`) that takes prefix* events and
        appends each, as JSON and a blank line, to out; waits until it has
        joined."""
        self.spawn([TOOL, "on", prefix, "--group", group, "--store", str(self.tmp / group),
                    "--exec", f"cat >> {out}; echo >> {out}"],
                   stderr=open(self.tmp / f"{group}.err", "w"))
        assert self.joined(group), f"the C group {group} has joined"

    def joined(self, service: str, timeout: float = 20.0) -> bool:
        """Waits until `chorus peers` lists a live instance of service."""
        def listed() -> bool:
            out = self.chorus("peers", "--wait", "300").stdout
            return any(line.split()[:1] == [service] for line in out.splitlines())
        return await_(listed, timeout, 0.1)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture
def mesh(tmp_path: Path):
    """A mesh of processes on loopback for one test."""
    os.environ.pop("CHORUS_SEEDS", None)
    the_mesh = Mesh(tmp_path)
    os.environ["CHORUS_MESH"] = the_mesh.name
    os.environ["CHORUS_SEEDS"] = the_mesh.hub
    try:
        yield the_mesh
    finally:
        the_mesh.stop()
        os.environ.pop("CHORUS_SEEDS", None)


#   TAP: one line per test in $CHORUS_TAP (the plan is the wrapper's), for
#   tests/test_python_binding.sh
_tap: dict = {"n": 0, "file": None}


def pytest_configure(config) -> None:
    path = os.environ.get("CHORUS_TAP")
    if path:
        _tap["file"] = open(path, "w", buffering=1)


def pytest_runtest_logreport(report) -> None:
    out = _tap["file"]
    if out is None:
        return
    name = report.nodeid.split("/")[-1]
    if report.when == "call" or (report.when == "setup" and not report.passed):
        _tap["n"] += 1
        if report.skipped:
            out.write(f"ok {_tap['n']} - {name} # SKIP\n")
        elif report.passed:
            out.write(f"ok {_tap['n']} - {name}\n")
        else:
            out.write(f"not ok {_tap['n']} - {name} ({report.when})\n")
    elif report.when == "teardown" and report.failed:
        _tap["n"] += 1
        out.write(f"not ok {_tap['n']} - {name} (teardown)\n")


def pytest_collectreport(report) -> None:
    if _tap["file"] is not None and report.failed:
        _tap["n"] += 1
        _tap["file"].write(f"not ok {_tap['n']} - {report.nodeid} (collection)\n")


def pytest_unconfigure(config) -> None:
    out: Optional[object] = _tap["file"]
    if out is not None:
        out.close()
