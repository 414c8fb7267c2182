"""Python calls C services and C calls Python, over the mesh: a Python
node sends commands to `chorus serve` (the C shell bridge) and gets its
replies and error replies; publishes events a `chorus on` group (C) takes;
and its failures raise the exception of their CHORUS_E* code."""

import json
import re
import time

import pytest

import chorus
from conftest import TOOL, await_


def test_python_sends_to_a_c_service(mesh):
    mesh.spawn([TOOL, "serve", "payments", "--store", str(mesh.tmp / "payments"),
                "--handle", 'charge=sed "s/amount/charged/"',
                "--handle", 'refund=echo "card expired" >&2; exit 3'],
               stderr=open(mesh.tmp / "serve.err", "w"))
    with chorus.Node("pyclient") as node:
        assert node.send("payments", "charge", {"amount": 42}, timeout=20) == {"charged": 42}
        with pytest.raises(chorus.RemoteError) as caught:
            node.send("payments", "refund", {"amount": 1}, timeout=20)
    failure = caught.value
    assert failure.code == chorus.errors.EREMOTE and failure.name == "CHORUS_EREMOTE"
    assert failure.remote_code == "exit-3"
    assert "card expired" in failure.message
    assert failure.retryable is True


def test_python_publishes_to_a_c_group(mesh):
    out = mesh.tmp / "shipped"
    mesh.c_group("order.", "shipping", out)
    with chorus.Node("pyorders", store=str(mesh.tmp / "orders")) as node:
        ids = [node.publish("order.placed", {"order": n, "blob": b"\x00\x01"}, key=f"o{n}")
               for n in range(3)]
        assert await_(lambda: out.exists() and len(out.read_text().split("\n\n")) > 3, 20)
    events = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    assert [event["id"] for event in events] == ids
    assert events[0]["payload"] == {"order": 0, "blob": {"$bin": "AAE="}}
    assert events[0]["key"] == "o0" and events[0]["service"] == "pyorders"


def test_send_to_a_service_nobody_runs_times_out(mesh):
    with chorus.Node("pyclient") as node:
        with pytest.raises(chorus.Timeout) as caught:
            node.send("nobody", "hello", {}, timeout=0.5)
    assert caught.value.code == chorus.errors.ETIMEDOUT == -1004
    assert "nobody.hello" in caught.value.reason


def test_a_raw_peer_sending_malformed_bytes_gets_a_clear_error(mesh):
    mesh.python("svc.py", "serve")
    mesh.ready()
    with chorus.Node("pyraw") as node:
        with pytest.raises(chorus.RemoteError) as caught:
            node.send("pyserve", "echo", b"\xc1\x00", raw=True, timeout=20)
        assert caught.value.remote_code == "bad-payload"
        assert "byte 0xc1" in caught.value.message
        assert caught.value.retryable is False
        #   A handler that waits would block the thread its node runs in
        @node.command("nested")
        def nested(payload, ctx):
            return node.send("pyserve", "echo", "x")
    with pytest.raises(chorus.InvalidArgument) as refused:
        chorus.Node("pyraw2").send("pyserve", "echo", {1, 2})
    assert "a set is not a payload value" in refused.value.reason


def test_a_retry_behind_a_try_that_expired_in_the_queue_runs(mesh):
    """A service with one handler at a time: while a blocker holds it, try 1
    of key K (deadline 2 s) waits in its queue past its deadline, and a
    retry of K under a new id (deadline 30 s) arrives meanwhile. When the
    handler is free, try 1 is answered 'expired' unrun; the retry is not
    answered with that failure of another try, it runs, once."""
    gate, holding, runs = mesh.tmp / "gate", mesh.tmp / "holding", mesh.tmp / "runs"
    mesh.spawn([TOOL, "serve", "stock", "--store", str(mesh.tmp / "stock"), "--workers", "1",
                "--verbose",
                "--handle", f"hold=touch {holding}; while [ ! -f {gate} ]; do sleep 0.05; done; "
                            "echo null",
                "--handle", f'reserve=echo "$CHORUS_IDEMPOTENCY_KEY" >> {runs}; '
                            "echo '{\"reserved\": true}'"],
               stderr=open(mesh.tmp / "serve.err", "w"))
    results = {}

    def keep(name):
        return lambda payload, error: results.__setitem__(name, (payload, error))

    def pump_until(done, timeout):
        end = time.monotonic() + timeout
        while not done() and time.monotonic() < end:
            node.run(0.05)
        return done()

    with chorus.Node("pyclient") as node:
        node.send_async("stock", "hold", None, callback=keep("hold"), timeout=60)
        assert await_(holding.exists, 20), "the blocker holds the only handler"
        #   In this order on one connection: try 1, then its retry
        node.send_async("stock", "reserve", {"sku": "x"}, callback=keep("try 1"), timeout=2,
                        idempotency="K")
        node.send_async("stock", "reserve", {"sku": "x"}, callback=keep("retry"), timeout=30,
                        idempotency="K")
        assert pump_until(lambda: "try 1" in results, 20), "try 1 reached its deadline"
        assert isinstance(results["try 1"][1], chorus.Timeout), results["try 1"]
        gate.touch()
        assert pump_until(lambda: "retry" in results and "hold" in results, 30), results
    assert results["retry"] == ({"reserved": True}, None), results["retry"]
    assert runs.read_text().split() == ["K"], "the handler ran once, for the retry"
    log = mesh.text("serve.err")
    assert len(re.findall(r"reserve \S+ attempt 1: expired", log)) == 1, log
