"""Payloads are Python values, converted by the library's payload API;
what is not a payload is refused with a clear error and its code."""

import math

import pytest

import chorus


@pytest.mark.parametrize("value", [
    0, -1, 2**63 - 1, -(2**63), 1.5, "text", "é ☃", True, False, [], {},
    [1, [2, [3]]], {"a": {"b": [None, 1.25, "x"]}}, b"", b"\x00\xff", {"raw": b"\x01\x02"},
])
def test_values_round_trip(value):
    assert chorus.decode(chorus.encode(value)) == value


def test_tuples_become_lists_and_none_is_no_payload():
    assert chorus.decode(chorus.encode((1, 2))) == [1, 2]
    assert chorus.encode(None) is None
    assert chorus.decode(None) is None


@pytest.mark.parametrize("value, words", [
    ({1, 2}, "payload: a set is not a payload value"),
    ({"x": [object()]}, "payload['x'][0]: an object is not a payload value"),
    (math.nan, "payload: nan is not a number JSON can hold"),
    ({"n": 2**64}, "payload['n']: the integer 18446744073709551616 is beyond int64"),
    ({1: "one"}, "payload: the key 1 is an int, not a str"),
    ({"$bin": "not base64!"}, '"$bin" must be a base64 string'),
])
def test_what_is_no_payload_is_refused_saying_why(value, words):
    with pytest.raises(chorus.InvalidArgument) as caught:
        chorus.encode(value)
    assert words in caught.value.reason
    assert caught.value.code == chorus.errors.EINVAL == -1001
    assert caught.value.name == "CHORUS_EINVAL"


def test_too_big_is_refused():
    with pytest.raises(chorus.TooBig) as caught:
        chorus.encode("x" * (1 << 20))
    assert caught.value.code == chorus.errors.ETOOBIG


def test_bytes_that_are_no_value_are_malformed():
    with pytest.raises(chorus.Malformed) as caught:
        chorus.decode(b"\xc1")
    assert "byte 0xc1" in caught.value.reason
    assert caught.value.code == chorus.errors.EMALFORMED


def test_bad_arguments_say_which():
    with pytest.raises(chorus.InvalidArgument) as caught:
        chorus.Node("two words")
    assert "'two words' is not a service name" in str(caught.value)
    with pytest.raises(chorus.InvalidArgument) as caught:
        chorus.Node("ok", seeds="tcp://127.0.0.1:1")
    assert "a list of endpoints" in str(caught.value)
    with pytest.raises(chorus.InvalidArgument) as caught:
        chorus.Node("ok", seeds=[], durability="always")
    assert "durability 'always'" in str(caught.value)
    with pytest.raises(chorus.InvalidArgument) as caught:
        chorus.Node("ok", seeds=[], advertise="no such:host:1")
    assert "advertise 'no such:host:1'" in str(caught.value)
    node = chorus.Node("ok", seeds=[])
    with pytest.raises(chorus.InvalidArgument) as caught:
        node.on("work.", group="other")
    assert "make a Node('other')" in str(caught.value)
    with pytest.raises(chorus.InvalidArgument):
        node.publish("two words", {})
    node.close()
    with pytest.raises(chorus.StateError) as caught:
        node.publish("work.x", {})
    assert "the node is closed" in str(caught.value)
    assert caught.value.code == chorus.errors.ESTATE
