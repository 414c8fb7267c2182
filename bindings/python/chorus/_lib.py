"""Loads libchorus and declares the C functions the binding calls.

The library is found through $CHORUS_LIBRARY (a path, for a build tree),
else ctypes.util.find_library ("chorus"), else the soname libchorus.so.0.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from ctypes import (CFUNCTYPE, POINTER, c_bool, c_char, c_char_p, c_int, c_int64, c_size_t,
                    c_uint64, c_void_p)

#   czmq installs its own SIGINT and SIGTERM handlers the first time a node
#   makes a socket, which would hide Ctrl-C from Python; the binding runs
#   its own loop (Node.run) and lets Python's handlers see every signal.
os.environ.setdefault("ZSYS_SIGHANDLER", "false")


def _load() -> ctypes.CDLL:
    path = os.environ.get("CHORUS_LIBRARY")
    if path:
        try:
            return ctypes.CDLL(path)
        except OSError as exc:
            raise ImportError(f"CHORUS_LIBRARY={path}: cannot load it: {exc}") from exc
    for name in (ctypes.util.find_library("chorus"), "libchorus.so.0"):
        if name:
            try:
                return ctypes.CDLL(name)
            except OSError:
                pass
    raise ImportError("libchorus not found: install Chorus (make install, then ldconfig), "
                      "or set CHORUS_LIBRARY to the path of libchorus.so")


lib = _load()

node_p = c_void_p
EVENT_FN = CFUNCTYPE(c_int, c_void_p, c_void_p, c_void_p)
COMMAND_FN = CFUNCTYPE(None, c_void_p, c_void_p, c_void_p, c_void_p)
REPLY_FN = CFUNCTYPE(None, c_void_p, c_void_p, c_void_p)


def _fn(name: str, restype, *argtypes) -> None:
    function = getattr(lib, name)
    function.restype = restype
    function.argtypes = list(argtypes)


_fn("chorus_version", c_int, POINTER(c_int), POINTER(c_int), POINTER(c_int))
_fn("chorus_strerror", c_char_p, c_int)
_fn("chorus_errno", c_int)
_fn("chorus_node_new", node_p, c_char_p)
_fn("chorus_node_destroy", None, POINTER(node_p))
_fn("chorus_node_set_store", c_int, node_p, c_char_p)
_fn("chorus_node_set_mesh", c_int, node_p, c_char_p)
_fn("chorus_node_set_listen", c_int, node_p, c_char_p)
_fn("chorus_node_add_seed", c_int, node_p, c_char_p)
_fn("chorus_node_set_advertise", c_int, node_p, c_char_p)
_fn("chorus_node_set_security", c_int, node_p, c_char_p, c_char_p)
_fn("chorus_node_set_beacon", c_int, node_p, c_int)
_fn("chorus_node_set_durability", c_int, node_p, c_int)
_fn("chorus_node_set_start_earliest", c_int, node_p, c_bool)
_fn("chorus_node_set_command_retry", c_int, node_p, c_int)
_fn("chorus_node_set_verbose", c_int, node_p, c_bool)
_fn("chorus_node_error", c_char_p, node_p)
_fn("chorus_node_start", c_int, node_p)
_fn("chorus_node_service", c_char_p, node_p)
_fn("chorus_node_instance", c_char_p, node_p)
_fn("chorus_node_endpoint", c_char_p, node_p)
_fn("chorus_node_subscribe", c_int, node_p, c_char_p, EVENT_FN, c_void_p)
_fn("chorus_node_handle", c_int, node_p, c_char_p, COMMAND_FN, c_void_p)
_fn("chorus_node_publish_traced", c_int, node_p, c_char_p, c_char_p, c_void_p, c_size_t,
    c_char_p, POINTER(c_char))
_fn("chorus_node_send_traced", c_int, node_p, c_char_p, c_char_p, c_void_p, c_size_t, c_int,
    c_char_p, c_char_p, REPLY_FN, c_void_p)
_fn("chorus_node_fd", c_int, node_p)
_fn("chorus_node_set_inline", c_int, node_p, c_bool)
_fn("chorus_node_pollfds", c_int, node_p, POINTER(c_int), c_int, POINTER(c_int))
_fn("chorus_node_dispatch", c_int, node_p)
_fn("chorus_node_counter", c_uint64, node_p, c_char_p)
_fn("chorus_node_unacked", c_int64, node_p)

for _what in ("topic", "key", "id", "correlation", "causation", "service", "instance"):
    _fn(f"chorus_event_{_what}", c_char_p, c_void_p)
for _what in ("seq", "timestamp", "attempt"):
    _fn(f"chorus_event_{_what}", c_uint64, c_void_p)
_fn("chorus_event_payload", c_void_p, c_void_p)
_fn("chorus_event_size", c_size_t, c_void_p)
_fn("chorus_event_header", c_char_p, c_void_p, c_char_p)

for _what in ("name", "id", "idempotency", "correlation", "causation", "sender"):
    _fn(f"chorus_command_{_what}", c_char_p, c_void_p)
for _what in ("deadline", "attempt"):
    _fn(f"chorus_command_{_what}", c_uint64, c_void_p)
_fn("chorus_command_payload", c_void_p, c_void_p)
_fn("chorus_command_size", c_size_t, c_void_p)

_fn("chorus_reply_set_payload", c_int, c_void_p, c_void_p, c_size_t)
_fn("chorus_reply_set_error", None, c_void_p, c_char_p, c_char_p, c_bool)
_fn("chorus_reply_status", c_int, c_void_p)
_fn("chorus_reply_payload", c_void_p, c_void_p)
_fn("chorus_reply_size", c_size_t, c_void_p)
_fn("chorus_reply_code", c_char_p, c_void_p)
_fn("chorus_reply_message", c_char_p, c_void_p)
_fn("chorus_reply_retryable", c_bool, c_void_p)
_fn("chorus_reply_command_id", c_char_p, c_void_p)

_fn("chorus_payload_from_json", c_int, c_char_p, c_size_t, c_size_t, POINTER(c_void_p),
    POINTER(c_size_t), POINTER(c_char), c_size_t)
_fn("chorus_payload_to_json", c_int, c_void_p, c_size_t, c_int, POINTER(c_void_p),
    POINTER(c_char), c_size_t)
_fn("chorus_payload_free", None, c_void_p)


def text(value: bytes | None) -> str | None:
    """A C string from the library as str (None stays None)."""
    return None if value is None else value.decode("utf-8", "replace")


def cstr(value: str | None) -> bytes | None:
    """A str argument as a C string (None stays NULL)."""
    return None if value is None else value.encode("utf-8")
