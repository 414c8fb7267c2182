"""Exceptions of the binding: one class per CHORUS_E* code of chorus.h, and
the two a handler raises to answer with an error reply."""

from __future__ import annotations

from typing import Dict, Optional, Type

from . import _lib

OK = 0
EINVAL = -1001
ENOMEM = -1002
ESTORE = -1003
ETIMEDOUT = -1004
EMALFORMED = -1005
ETOOBIG = -1006
ESTATE = -1007
EFULL = -1008
EUNKNOWN = -1009
EREMOTE = -1010
EINTERRUPTED = -1011
ECORRUPT = -1012
EFORBIDDEN = -1013
ENETWORK = -1014

_NAMES = {
    EINVAL: "CHORUS_EINVAL", ENOMEM: "CHORUS_ENOMEM", ESTORE: "CHORUS_ESTORE",
    ETIMEDOUT: "CHORUS_ETIMEDOUT", EMALFORMED: "CHORUS_EMALFORMED", ETOOBIG: "CHORUS_ETOOBIG",
    ESTATE: "CHORUS_ESTATE", EFULL: "CHORUS_EFULL", EUNKNOWN: "CHORUS_EUNKNOWN",
    EREMOTE: "CHORUS_EREMOTE", EINTERRUPTED: "CHORUS_EINTERRUPTED",
    ECORRUPT: "CHORUS_ECORRUPT", EFORBIDDEN: "CHORUS_EFORBIDDEN", ENETWORK: "CHORUS_ENETWORK",
}


class Error(Exception):
    """A libchorus call failed.

    code is the negative CHORUS_E* code, name its symbol ("CHORUS_ETIMEDOUT"),
    reason the words of chorus_node_error (or the code's description when
    the library gave none). str() of the exception is "reason (NAME)".
    """

    code: int = 0

    def __init__(self, code: int, reason: str = "") -> None:
        self.code = code
        self.name = _NAMES.get(code, f"CHORUS_E{-code}")
        self.reason = reason or strerror(code)
        super().__init__(f"{self.reason} ({self.name})")


class InvalidArgument(Error, ValueError):
    """CHORUS_EINVAL: an argument was invalid (a name, a range, a payload)."""


class NoMemory(Error, MemoryError):
    """CHORUS_ENOMEM: out of memory."""


class StoreError(Error):
    """CHORUS_ESTORE: the durable store cannot be used (in use, permission, disk full)."""


class Timeout(Error, TimeoutError):
    """CHORUS_ETIMEDOUT: no reply came before the deadline."""


class Malformed(Error, ValueError):
    """CHORUS_EMALFORMED: bytes that are not a well-formed message or payload."""


class TooBig(Error, ValueError):
    """CHORUS_ETOOBIG: a payload or field over its protocol limit."""


class StateError(Error):
    """CHORUS_ESTATE: the call is not allowed now (e.g. configuring after start)."""


class Full(Error):
    """CHORUS_EFULL: retention is full and its policy refuses new events."""


class Unknown(Error, LookupError):
    """CHORUS_EUNKNOWN: no instance of the service handles the command."""


class RemoteError(Error):
    """CHORUS_EREMOTE: the remote handler answered with an error reply.

    remote_code is the application's code ("card-declined"), message its
    words, retryable whether a later attempt could succeed.
    """

    def __init__(self, remote_code: str, message: str, retryable: bool) -> None:
        self.remote_code = remote_code
        self.message = message
        self.retryable = retryable
        kind = "retryable" if retryable else "permanent"
        super().__init__(EREMOTE, f"{remote_code}: {message} ({kind})")


class Interrupted(Error):
    """CHORUS_EINTERRUPTED: the node was closed before the reply came."""


class Corrupt(Error):
    """CHORUS_ECORRUPT: the store is damaged; see `chorus store check`."""


class Forbidden(Error, PermissionError):
    """CHORUS_EFORBIDDEN: a certificate does not allow it."""


class NetworkError(Error, OSError):
    """CHORUS_ENETWORK: an endpoint cannot be bound, or no socket made."""


_CLASSES: Dict[int, Type[Error]] = {
    EINVAL: InvalidArgument, ENOMEM: NoMemory, ESTORE: StoreError, ETIMEDOUT: Timeout,
    EMALFORMED: Malformed, ETOOBIG: TooBig, ESTATE: StateError, EFULL: Full,
    EUNKNOWN: Unknown, EINTERRUPTED: Interrupted, ECORRUPT: Corrupt,
    EFORBIDDEN: Forbidden, ENETWORK: NetworkError,
}


def strerror(code: int) -> str:
    """The library's description of a CHORUS_E* code (chorus_strerror)."""
    return _lib.text(_lib.lib.chorus_strerror(code)) or ""


def error(code: int, reason: str = "") -> Error:
    """The exception for a code, of the class that names it."""
    return _CLASSES.get(code, Error)(code, reason)


def check(rc: int, node: Optional[int] = None, what: str = "") -> int:
    """Returns rc when it is not a failure; raises its Error otherwise, with
    the reason chorus_node_error gives for node (or for the thread)."""
    if rc >= 0:
        return rc
    reason = _lib.text(_lib.lib.chorus_node_error(node)) or ""
    if what:
        reason = f"{what}: {reason}" if reason else f"{what}: {strerror(rc)}"
    raise error(rc, reason)


class HandlerError(Exception):
    """Raised by a handler to answer with an error: code is the application's
    error code (a short word, "card-declined"), message its words. Raise
    Retryable or Permanent, not this class."""

    retryable = True

    def __init__(self, code: str, message: str = "") -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}" if message else code)


class Retryable(HandlerError):
    """A command handler's error reply that a later attempt could cure
    (retryable true); from an event handler, the event is rejected and
    delivered again after a backoff."""

    retryable = True


class Permanent(HandlerError):
    """A command handler's error reply that no retry can cure (retryable
    false); from an event handler, the event is acknowledged all the same
    (it would fail every time) and a warning names it."""

    retryable = False
