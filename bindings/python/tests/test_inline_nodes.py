"""Nodes run inline (Node(inline=True)): the engine runs in the Python
thread, inside run() and send(), and waits on the descriptors
chorus_node_pollfds gives. An inline service answers an inline caller, each
command once, errors included; the caller's events reach a C group; and
the node reports that it has no single descriptor."""

import json

import pytest

import chorus
from conftest import await_


def test_an_inline_caller_and_an_inline_service(mesh):
    mesh.env["PYSERVE_INLINE"] = "1"
    mesh.python("svc.py", "serve")
    mesh.ready()
    with chorus.Node("pyinline", inline=True) as node:
        answers = [node.send("pyserve", "echo", {"n": n}, timeout=20) for n in range(50)]
        assert [answer["got"] for answer in answers] == [{"n": n} for n in range(50)]
        assert all(answer["attempt"] == 1 for answer in answers)
        with pytest.raises(chorus.RemoteError) as caught:
            node.send("pyserve", "declined", {}, timeout=20)
        assert caught.value.remote_code == "card-declined"
        assert caught.value.retryable is False


def test_an_inline_node_publishes_to_a_c_group(mesh):
    out = mesh.tmp / "taken"
    mesh.c_group("job.", "jobs", out)
    with chorus.Node("pyjobs", store=str(mesh.tmp / "pyjobs"), inline=True) as node:
        ids = [node.publish("job.queued", {"job": n}, key=f"j{n}") for n in range(20)]
        #   Run, so that the engine in this thread sends them and hears the acks

        def taken():
            node.run(timeout=0.1)
            return out.exists() and len(out.read_text().split("\n\n")) > 20
        assert await_(taken, 20, 0), "the group took the 20 events"
    events = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    assert [event["id"] for event in events] == ids


def test_an_inline_node_has_no_single_descriptor(mesh):
    with chorus.Node("pyfd", inline=True) as node:
        with pytest.raises(chorus.Error) as caught:
            node._check(chorus._lib.lib.chorus_node_fd(node._handle()))
        assert caught.value.name == "CHORUS_ESTATE"
        assert "inline" in caught.value.reason
