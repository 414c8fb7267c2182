"""A Python service (svc.py serve) answers `chorus send`, the C command:
replies carry the handler's value and the command's context; errors a
handler raises reach the sender with their code and retryable flag; an
unexpected exception is a retryable error naming its type, and the service
goes on answering."""

import json


def send(mesh, command, payload=None, *extra):
    args = ["send", "pyserve", command] + ([payload] if payload is not None else [])
    return mesh.chorus(*args, "--timeout", "20", *extra)


def test_a_python_handler_answers_chorus_send(mesh):
    mesh.python("svc.py", "serve")
    mesh.ready()
    result = send(mesh, "echo", '{"amount": 42, "items": [1, 2.5, null, true]}',
                  "--idempotency", "order-17")
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert reply["got"] == {"amount": 42, "items": [1, 2.5, None, True]}
    assert reply["idempotency"] == "order-17"
    assert reply["attempt"] == 1
    assert reply["sender"] == "chorus-send"
    assert reply["correlation"]


def test_bytes_cross_as_bin(mesh):
    mesh.python("svc.py", "serve")
    mesh.ready()
    result = send(mesh, "reverse", '{"$bin": "AAEC"}')     # bytes 00 01 02
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"$bin": "AgEA"}    # bytes 02 01 00


def test_handler_errors_reach_the_sender_with_code_and_retryable(mesh):
    mesh.python("svc.py", "serve")
    mesh.ready()
    declined = send(mesh, "declined", "{}")
    assert declined.returncode == 1
    assert "card-declined: the card expired (permanent)" in declined.stderr
    busy = send(mesh, "busy")
    assert busy.returncode == 1
    assert "busy: try again later (retryable)" in busy.stderr


def test_an_unexpected_exception_is_retryable_and_the_service_goes_on(mesh):
    mesh.python("svc.py", "serve")
    mesh.ready()
    crash = send(mesh, "crash")
    assert crash.returncode == 1
    assert "exception: ZeroDivisionError: division by zero (retryable)" in crash.stderr
    assert "ZeroDivisionError" in mesh.text("svc.err"), "the traceback is logged"
    unsendable = send(mesh, "unsendable")
    assert unsendable.returncode == 1
    assert "bad-reply: payload['a set']: a set is not a payload value" in unsendable.stderr
    assert "(permanent)" in unsendable.stderr
    again = send(mesh, "echo", '"still here"')
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["got"] == "still here"


def test_a_command_the_service_does_not_handle_is_unknown(mesh):
    mesh.python("svc.py", "serve")
    mesh.ready()
    result = send(mesh, "nonesuch")
    assert result.returncode == 1
    assert "nonesuch" in result.stderr and "unknown" in result.stderr.lower(), result.stderr
