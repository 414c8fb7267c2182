"""What an event handler's failure does, on a mesh: Retryable and any other
exception reject the event, and it comes again and is handled; Permanent
acknowledges it with a warning and it does not come again; an event whose
payload is not one MessagePack value (sent by a raw publisher) is
acknowledged with a warning, without running the handler, and the member
goes on. The publisher sees every delivery acknowledged."""

import chorus
from conftest import await_


def test_event_handler_failures_reject_or_acknowledge(mesh):
    log = mesh.tmp / "runs"
    mesh.python("svc.py", "failing", str(log))
    mesh.ready()
    assert mesh.joined("pyfail"), "the group has joined"
    with chorus.Node("pyproducer", store=str(mesh.tmp / "producer")) as node:
        for n in (1, 2, 3, 4):
            node.publish("fail.item", {"n": n}, key=f"k{n}")
        node.publish("fail.raw", b"\xc1\xc1", raw=True, key="raw")
        node.publish("fail.item", {"n": 5}, key="k5")

        def runs():
            return [tuple(line.split()) for line in log.read_text().splitlines()] \
                if log.exists() else []
        assert await_(lambda: ("2", "2", "handled") in runs() and ("3", "2", "handled") in runs()
                      and ("5", "1", "handled") in runs(), 30), f"runs: {runs()}"
        assert await_(lambda: node.unacked() == 0, 30), \
            f"every delivery acknowledged, {node.unacked()} left"
    done = runs()
    assert ("2", "1", "retryable") in done, "Retryable rejected it, and it came again"
    assert ("3", "1", "exception") in done, "an exception rejected it, and it came again"
    assert [run for run in done if run[0] == "4"] == [("4", "1", "permanent")], \
        "Permanent acknowledged it: it ran once"
    assert [run for run in done if run[0] == "1"] == [("1", "1", "handled")]
    err = mesh.text("svc.err")
    assert "RuntimeError: the disk is on fire" in err, "the exception is logged"
    assert "acknowledged after a permanent error: poison: cannot read it" in err
    assert "fail.raw" in err and "acknowledged unhandled" in err and "0xc1" in err
