"""Ctrl-C (SIGINT) stops node.run(): KeyboardInterrupt comes out of run()
with the node closed and its store free (the program opens it again), and
uncaught it ends the program with the status of SIGINT. SIGTERM makes
run() return, and the program ends with 0."""

import signal




def test_sigint_closes_the_node_and_ends_the_program(mesh):
    store = mesh.tmp / "sig.store"
    proc = mesh.python("svc.py", "signals", str(store))
    mesh.ready()
    assert mesh.chorus("send", "pysig", "ping", "--timeout", "20").stdout.strip() == '"pong"'
    proc.send_signal(signal.SIGINT)
    assert proc.wait(20) == -signal.SIGINT, mesh.text("svc.err")
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
    assert proc.wait(20) == 0, mesh.text("svc.err")
    assert "RETURNED" in mesh.text("svc.out")
