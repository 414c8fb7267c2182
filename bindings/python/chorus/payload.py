"""Payloads as Python values, through the library's payload API.

A payload is one MessagePack value of the JSON data model (protocol section
9.1). encode() turns a Python value into one with json.dumps and
chorus_payload_from_json; decode() turns one back with
chorus_payload_to_json and json.loads:

    None                 no payload at all (and a payload that is nil decodes to None)
    bool, int, float, str, list, tuple, dict with str keys
                         the JSON value (ints within int64; NaN and infinities refused)
    bytes, bytearray, memoryview
                         a MessagePack bin; it decodes to bytes
    {"$bin": BASE64}     the same bin, as the convention writes it in JSON

A value outside those (a set, an object, a NaN, a dict key that is not a
str, an int beyond int64) raises chorus.InvalidArgument saying what and
where; bytes that are not one well-formed value raise chorus.Malformed.
An ext value decodes to {"$ext": TYPE, "$bin": BASE64}, untouched.
"""

from __future__ import annotations

import base64
import ctypes
import json
import math
from typing import Any, Optional

from . import _lib
from .errors import EINVAL, EMALFORMED, error

_INT64 = (-(2**63), 2**63 - 1)


def _a(noun: str) -> str:
    return ("an " if noun[:1] in "aeiou" else "a ") + noun


def _check(value: Any, path: str) -> None:
    """Refuses what json.dumps would change silently or not at all."""
    if value is None or isinstance(value, (bool, str, bytes, bytearray, memoryview)):
        return
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise error(EINVAL, f"payload{path}: the integer {value} is beyond int64")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise error(EINVAL, f"payload{path}: {value} is not a number JSON can hold")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise error(EINVAL, f"payload{path}: the key {key!r} is "
                                    f"{_a(type(key).__name__)}, not a str")
            _check(item, f"{path}[{key!r}]")
    else:
        raise error(EINVAL, f"payload{path}: {_a(type(value).__name__)} is not a payload value "
                            f"(None, bool, int, float, str, bytes, list or dict)")


def _bin(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$bin": base64.b64encode(bytes(value)).decode("ascii")}
    raise TypeError(type(value).__name__)


def encode(value: Any) -> Optional[bytes]:
    """The payload bytes for a Python value; None for None (no payload)."""
    if value is None:
        return None
    _check(value, "")
    text = json.dumps(value, default=_bin, allow_nan=False, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")
    data = ctypes.c_void_p()
    size = ctypes.c_size_t()
    reason = ctypes.create_string_buffer(256)
    rc = _lib.lib.chorus_payload_from_json(text, len(text), 0, ctypes.byref(data),
                                           ctypes.byref(size), reason, len(reason))
    if rc < 0:
        raise error(rc, "payload: " + reason.value.decode("utf-8", "replace"))
    try:
        return ctypes.string_at(data, size.value)
    finally:
        _lib.lib.chorus_payload_free(data)


def _object(pairs: list) -> Any:
    if len(pairs) == 1 and pairs[0][0] == "$bin" and isinstance(pairs[0][1], str):
        return base64.b64decode(pairs[0][1])
    return dict(pairs)


def decode_at(address: Optional[int], size: int) -> Any:
    """The Python value of the payload of size bytes at address (None for none)."""
    if not address or size == 0:
        return None
    text = ctypes.c_void_p()
    reason = ctypes.create_string_buffer(256)
    rc = _lib.lib.chorus_payload_to_json(address, size, 0, ctypes.byref(text), reason,
                                         len(reason))
    if rc < 0:
        raise error(rc, "payload: " + reason.value.decode("utf-8", "replace"))
    try:
        return json.loads(ctypes.string_at(text).decode("utf-8"), object_pairs_hook=_object)
    finally:
        _lib.lib.chorus_payload_free(text)


def decode(data: Optional[bytes]) -> Any:
    """The Python value of payload bytes (None for None or b"")."""
    if not data:
        return None
    buffer = ctypes.create_string_buffer(bytes(data), len(data))
    return decode_at(ctypes.addressof(buffer), len(data))


__all__ = ["encode", "decode", "EMALFORMED"]
