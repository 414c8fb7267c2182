"""chorus — Python services on a Chorus mesh, through libchorus.

A thin binding over the C library (ctypes): the durable outbox, the inbox
dedupe, group delivery and commands are the library's own. See the README
section "Write a service in Python".
"""

import ctypes as _ctypes

from . import errors
from ._lib import lib as _libchorus
from .errors import (Corrupt, Error, Forbidden, Full, HandlerError, Interrupted,
                     InvalidArgument, Malformed, NetworkError, NoMemory, Permanent, RemoteError,
                     Retryable, StateError, StoreError, Timeout, TooBig, Unknown, strerror)
from .node import Context, Event, Node
from .payload import decode, encode

__version__ = "0.1.0"


def library_version() -> str:
    """The version of the libchorus loaded, "MAJOR.MINOR.PATCH"."""
    parts = [_ctypes.c_int() for _ in range(3)]
    _libchorus.chorus_version(*(_ctypes.byref(part) for part in parts))
    return ".".join(str(part.value) for part in parts)


__all__ = ["Node", "Context", "Event", "Error", "InvalidArgument", "NoMemory", "StoreError",
           "Timeout", "Malformed", "TooBig", "StateError", "Full", "Unknown", "RemoteError",
           "Interrupted", "Corrupt", "Forbidden", "NetworkError", "HandlerError", "Retryable",
           "Permanent", "encode", "decode", "strerror", "errors", "library_version"]
