"""Ctrl-C (SIGINT) stops node.run(): KeyboardInterrupt comes out of run()
with the node closed and its store free (the program opens it again), and
uncaught it ends the program with the status of SIGINT. SIGTERM makes
run() return, and the program ends with 0."""

import signal
import subprocess
import time


def wait_or_say_where(mesh, proc, timeout=20):
    """The program's exit status; if it has not ended within timeout
    seconds, fails with its output and where its threads are (svc.py
    prints them on SIGUSR1)."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)
        time.sleep(1)       # the dump is written; the test has failed already
        raise AssertionError(f"still running after {timeout} s\nstdout: {mesh.text('svc.out')}"
                             f"\nstderr: {mesh.text('svc.err')}")


def test_sigint_closes_the_node_and_ends_the_program(mesh):
    store = mesh.tmp / "sig.store"
    proc = mesh.python("svc.py", "signals", str(store))
    mesh.ready()
    assert mesh.chorus("send", "pysig", "ping", "--timeout", "20").stdout.strip() == '"pong"'
    proc.send_signal(signal.SIGINT)
    assert wait_or_say_where(mesh, proc) == -signal.SIGINT, mesh.text("svc.err")
    out = mesh.text("svc.out")
    assert "INTERRUPTED closed" in out
    assert "REOPENED" in out, "the store was closed: " + mesh.text("svc.err")
    assert "KeyboardInterrupt" in mesh.text("svc.err")
    #   A new process starts on the store
    mesh.python("svc.py", "signals", str(store), name="again")
    mesh.ready("again")
    assert mesh.chorus("send", "pysig", "ping", "--timeout", "20").returncode == 0


def test_sigterm_makes_run_return(mesh):
    proc = mesh.python("svc.py", "signals", str(mesh.tmp / "sig.store"))
    mesh.ready()
    proc.send_signal(signal.SIGTERM)
    assert wait_or_say_where(mesh, proc) == 0, mesh.text("svc.err")
    assert "RETURNED" in mesh.text("svc.out")
