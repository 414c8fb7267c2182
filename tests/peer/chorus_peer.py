"""A strict, independent Chorus protocol (version 1) peer for tests.

It follows protocol/chorus-protocol.md only, so that tests built on it catch
every place where another implementation and the specification disagree.

Two layers:

* the codec: ``make``, ``encode``, ``decode``, ``pack`` and the beacon helpers;
  ``decode`` applies every encoding rule of Sections 9, 12 and 13 and raises
  ``Malformed`` naming the rule broken;
* ``Peer``: a node over real ZeroMQ sockets on loopback, with the roles a test
  needs (group member, command handler, publisher, command sender, observer)
  and hooks to inspect what arrived and to send anything at all;
* the secure mesh of Section 14: certificates (``write_certificate``,
  ``read_certificate``, ``Trust``), and ``Peer(..., curve=, trust=)``, a node
  whose sockets are all CURVE, with a ZAP handler of its own.
"""

import collections
import glob
import os
import re
import socket
import struct
import threading
import time
import uuid

import zmq
import zmq.utils.monitor
import zmq.utils.z85

# ---------------------------------------------------------------- constants

SIGNATURE = 0xC405
VERSION = 1
BODY_LIMIT = 2 * 1024 * 1024
BIN_LIMIT = 1024 * 1024
FRAME_LIMIT = BODY_LIMIT + 1024          # Section 12, "largest frame a socket accepts"
MAX_DEPTH = 3
UINT_MAX = 2 ** 64 - 1

TYPE_NAMES = ('HELLO', 'PING', 'PONG', 'EVENT', 'EVENT-ACK', 'FETCH', 'REPLAY',
              'TRUNCATED', 'COMMAND', 'REPLY', 'ERROR', 'BYE', 'PING-REQ', 'PING-ACK')
TYPES = len(TYPE_NAMES)
TYPE_OF = {name: i + 1 for i, name in enumerate(TYPE_NAMES)}

HEX32 = re.compile(r'[0-9A-F]{32}\Z')

#: Handlers return this to answer later (``Peer.ack_event`` / ``Peer.reply_command``).
DEFER = object()


class F(collections.namedtuple('F', 'name kind limit nil')):
    """One field of a message: kind is uint, bool, str, name, prefix, bin, strs, uints, subs or map."""


def _f(name, kind, limit=0, nil=False):
    return F(name, kind, limit, nil)


SCHEMAS = {
    'HELLO': (_f('service', 'name', 64), _f('instance', 'name', 64),
              _f('endpoint', 'str', 256), _f('pub_endpoint', 'str', 256),
              _f('generation', 'uint'), _f('head', 'uint'), _f('peers', 'strs'),
              _f('subscriptions', 'subs'), _f('topics', 'strs'),
              _f('headers', 'map', nil=True)),
    'PING': (_f('head', 'uint'), _f('members', 'strs')),
    'PONG': (_f('head', 'uint'), _f('members', 'strs')),
    'EVENT': (_f('service', 'name', 64), _f('instance', 'name', 64), _f('seq', 'uint'),
              _f('topic', 'name', 256), _f('key', 'str', 256, True),
              _f('correlation', 'str', 128), _f('causation', 'str', 128, True),
              _f('timestamp', 'uint'), _f('group', 'name', 64, True), _f('attempt', 'uint'),
              _f('headers', 'map', nil=True), _f('payload', 'bin', nil=True)),
    'EVENT-ACK': (_f('group', 'name', 64), _f('seq', 'uint'), _f('status', 'uint'),
                  _f('seqs', 'uints', 1024)),
    'FETCH': (_f('from', 'uint'), _f('to', 'uint'), _f('limit', 'uint'),
              _f('prefix', 'prefix', 256, True)),
    'REPLAY': (_f('request', 'str', 64), _f('from', 'uint'), _f('to', 'uint'),
               _f('head', 'uint')),
    'TRUNCATED': (_f('request', 'str', 64, True), _f('group', 'name', 64, True),
                  _f('from', 'uint'), _f('to', 'uint'), _f('message', 'str', 4096, True)),
    'COMMAND': (_f('service', 'name', 64), _f('name', 'name', 128),
                _f('idempotency', 'str', 256, True), _f('correlation', 'str', 128),
                _f('causation', 'str', 128, True), _f('timestamp', 'uint'),
                _f('deadline', 'uint'), _f('attempt', 'uint'),
                _f('headers', 'map', nil=True), _f('payload', 'bin', nil=True),
                _f('try', 'uint')),
    'REPLY': (_f('request', 'str', 64), _f('correlation', 'str', 128), _f('timestamp', 'uint'),
              _f('status', 'uint'), _f('code', 'str', 64, True),
              _f('message', 'str', 4096, True), _f('retryable', 'bool'),
              _f('payload', 'bin', nil=True)),
    'ERROR': (_f('request', 'str', 64, True), _f('code', 'str', 64),
              _f('message', 'str', 4096, True)),
    'BYE': (),
    'PING-REQ': (_f('target', 'name', 64), _f('head', 'uint'), _f('members', 'strs')),
    'PING-ACK': (_f('request', 'str', 64), _f('target', 'name', 64), _f('head', 'uint'),
                 _f('members', 'strs')),
}

#: Trailing fields (the last of a schema) a message may leave out: absent, a
#: uint reads as 1 and a list as empty; ``encode`` leaves it out when it
#: holds that default (Section 9).
TAILS = {'COMMAND': 1, 'PING': 1, 'PONG': 1, 'PING-REQ': 1, 'PING-ACK': 1, 'EVENT-ACK': 1}


def _tail_default(field):
    return [] if field.kind in ('strs', 'uints') else 1


def _at_tail_default(field, value):
    return value == [] if field.kind in ('strs', 'uints') else value <= 1

TIMERS = dict(ping=1.0, evasive=3.0, expire=5.0, pending=5.0, ack=30.0, retry=10.0,
              backoff=1.0, backoff_max=60.0, fetch_wait=0.1, fetch_timeout=5.0)
BOUNDS = dict(peers=400, pending=64, bucket=50, refill=20.0, window=1000,
              fetch_default=1000, fetch_cap=1000, sndhwm=1000)


def new_id():
    """A fresh message or instance id: 32 uppercase hex characters (Section 3)."""
    return uuid.uuid4().hex.upper()


def now_ms():
    """Wall-clock milliseconds since the epoch, for the wire only."""
    return int(time.time() * 1000)


def _utf8(text):
    # surrogateescape keeps non-UTF-8 str bytes intact: receivers treat str as bytes.
    return text.encode('utf-8', 'surrogateescape')


# ---------------------------------------------------------------- messages

class Malformed(ValueError):
    """A body or frame set breaks an encoding rule; ``rule`` names which one."""

    def __init__(self, rule, detail=''):
        super().__init__('%s: %s' % (rule, detail) if detail else rule)
        self.rule = rule
        self.detail = detail


class Message:
    """A decoded or to-be-sent message: ``type`` number, ``kind`` name, ``id``, ``fields``.

    Fields read as ``msg['from']`` or ``msg.from_`` (a trailing underscore is dropped).
    ``notes`` lists the non-shortest MessagePack forms the decoder accepted.
    """

    def __init__(self, type, id, fields, notes=()):
        self.type = type
        self.id = id
        self.fields = fields
        self.notes = list(notes)

    @property
    def kind(self):
        return TYPE_NAMES[self.type - 1] if 1 <= self.type <= TYPES else 'TYPE-%d' % self.type

    def __getitem__(self, key):
        return self.fields[key]

    def __getattr__(self, attr):
        fields = self.__dict__.get('fields') or {}
        key = attr[:-1] if attr.endswith('_') else attr
        if key in fields:
            return fields[key]
        raise AttributeError(attr)

    def replace(self, **changes):
        """A copy with some fields (or ``id``) changed; ``from_`` means ``from``."""
        fields = dict(self.fields)
        new_id_ = changes.pop('id', self.id)
        for key, value in changes.items():
            fields[key[:-1] if key.endswith('_') else key] = value
        return Message(self.type, new_id_, fields)

    def __eq__(self, other):
        return (isinstance(other, Message) and (self.type, self.id, self.fields)
                == (other.type, other.id, other.fields))

    def __repr__(self):
        return '<%s %s %r>' % (self.kind, self.id, self.fields)


def _default(field):
    if field.nil:
        return None
    return {'uint': 0, 'bool': False, 'strs': [], 'uints': [], 'subs': []}.get(field.kind, '')


def make(kind, id=None, **values):
    """Build a message of ``kind`` ('PING', 'EVENT-ACK', ...); unnamed fields get defaults.

    Defaults are nil for optional fields, 0, False, [] or ''. Nothing is checked
    here: ``encode`` checks.
    """
    kind = kind.upper().replace('_', '-')
    schema = SCHEMAS[kind]
    names = [f.name for f in schema]
    given = {}
    for key, value in values.items():
        name = key[:-1] if key.endswith('_') and key[:-1] in names else key
        if name not in names:
            raise TypeError('%s has no field %r' % (kind, key))
        given[name] = value
    fields = {f.name: given[f.name] if f.name in given else _default(f) for f in schema}
    for f in schema[len(schema) - TAILS.get(kind, 0):]:
        if f.name not in given:
            fields[f.name] = _tail_default(f)
    return Message(TYPE_OF[kind], new_id() if id is None else id, fields)


# ---------------------------------------------------------------- MessagePack reader

class Ext(collections.namedtuple('Ext', 'code data')):
    """A MessagePack extension value (always malformed in a body; encodable for tests)."""


class _Pairs(list):
    """A decoded map, as (key, value) pairs, so duplicates and key families stay visible."""


class _Reader:
    """Bounds-checked MessagePack reader that keeps families apart (str vs bin, int vs bool)."""

    def __init__(self, data):
        self.data = bytes(data)
        self.pos = 0
        self.notes = []

    def take(self, n):
        end = self.pos + n
        if end > len(self.data):
            raise Malformed('truncated', 'need %d bytes at offset %d' % (n, self.pos))
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    def unsigned(self, size):
        return int.from_bytes(self.take(size), 'big')

    def note(self, what, value, shortest_max):
        if value <= shortest_max:
            self.notes.append('%s holding %d at offset %d' % (what, value, self.pos))

    def value(self, depth):
        """Read one value; ``depth`` is the nesting level an array or map here would have."""
        t = self.take(1)[0]
        if t <= 0x7F:
            return t
        if t >= 0xE0:
            return t - 0x100
        if 0xA0 <= t <= 0xBF:
            return self.string(t & 0x1F)
        if 0x90 <= t <= 0x9F:
            return self.array(t & 0x0F, depth)
        if 0x80 <= t <= 0x8F:
            return self.map(t & 0x0F, depth)
        handler = self.HANDLERS.get(t)
        if handler is None:
            raise Malformed('reserved', 'byte 0xC1 at offset %d' % (self.pos - 1))
        return handler(self, t, depth)

    def nil(self, t, depth):
        return None

    def boolean(self, t, depth):
        return t == 0xC3

    def uint(self, t, depth):
        size = 1 << (t - 0xCC)
        value = self.unsigned(size)
        self.note('uint %d' % (8 * size), value, (0x7F, 0xFF, 0xFFFF, 0xFFFFFFFF)[t - 0xCC])
        return value

    def sint(self, t, depth):
        size = 1 << (t - 0xD0)
        value = int.from_bytes(self.take(size), 'big', signed=True)
        if value >= 0:
            self.notes.append('int %d holding %d at offset %d' % (8 * size, value, self.pos))
        return value

    def floating(self, t, depth):
        return struct.unpack('>f' if t == 0xCA else '>d', self.take(4 if t == 0xCA else 8))[0]

    # format byte -> (family, width of the length, largest length a shorter form holds)
    SIZED = {0xC4: ('bin', 1, -1), 0xC5: ('bin', 2, 0xFF), 0xC6: ('bin', 4, 0xFFFF),
             0xD9: ('str', 1, 0x1F), 0xDA: ('str', 2, 0xFF), 0xDB: ('str', 4, 0xFFFF),
             0xDC: ('array', 2, 0x0F), 0xDD: ('array', 4, 0xFFFF),
             0xDE: ('map', 2, 0x0F), 0xDF: ('map', 4, 0xFFFF)}

    def sized(self, t, depth):
        family, width, shorter = self.SIZED[t]
        n = self.unsigned(width)
        self.note('%s %d' % (family, 8 * width), n, shorter)
        if family == 'bin':
            return self.take(n)
        if family == 'str':
            return self.string(n)
        return self.array(n, depth) if family == 'array' else self.map(n, depth)

    def ext(self, t, depth):
        n = 1 << (t - 0xD4) if t >= 0xD4 else self.unsigned(1 << (t - 0xC7))
        code = int.from_bytes(self.take(1), 'big', signed=True)
        return Ext(code, self.take(n))

    def string(self, n):
        return self.take(n).decode('utf-8', 'surrogateescape')

    def check_count(self, n, what, depth):
        if depth > MAX_DEPTH:
            raise Malformed('nesting', '%s at depth %d' % (what, depth))
        if n > len(self.data) - self.pos:
            raise Malformed('count-exceeds-bytes',
                            '%s of %d with %d bytes left' % (what, n, len(self.data) - self.pos))

    def array(self, n, depth):
        self.check_count(n, 'array', depth)
        return [self.value(depth + 1) for _ in range(n)]

    def map(self, n, depth):
        self.check_count(n, 'map', depth)
        pairs = _Pairs()
        for _ in range(n):
            key = self.value(depth + 1)
            pairs.append((key, self.value(depth + 1)))
        return pairs

    HANDLERS = {0xC0: nil, 0xC2: boolean, 0xC3: boolean, 0xCA: floating, 0xCB: floating,
                **dict.fromkeys(SIZED, sized),
                **dict.fromkeys((0xC7, 0xC8, 0xC9, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8), ext),
                **dict.fromkeys(range(0xCC, 0xD0), uint),
                **dict.fromkeys(range(0xD0, 0xD4), sint)}


# ---------------------------------------------------------------- field checks

# Order matters: bool is an int, Ext a tuple, _Pairs a list.
_FAMILIES = ((type(None), 'nil'), (bool, 'bool'), (int, 'int'), (float, 'float'), (str, 'str'),
             ((bytes, bytearray), 'bin'), (Ext, 'ext'), ((dict, _Pairs), 'map'),
             ((list, tuple), 'array'))


def _family(value):
    return next((name for kinds, name in _FAMILIES if isinstance(value, kinds)),
                type(value).__name__)


def _want(value, family, where):
    got = _family(value)
    if got != family:
        raise Malformed('family', '%s: %s where %s expected' % (where, got, family))


def _check_str(value, where, low, high, charset=False):
    _want(value, 'str', where)
    raw = _utf8(value)
    if not low <= len(raw) <= high:
        raise Malformed('length', '%s: %d bytes, allowed %d..%d' % (where, len(raw), low, high))
    if charset and any(b < 0x21 or b > 0x7E for b in raw):
        raise Malformed('charset', '%s: %r has a byte outside 0x21..0x7E' % (where, value))
    return value


def _check_uint(value, where):
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        raise Malformed('negative', '%s: %d' % (where, value))
    _want(value, 'int', where)
    if value > UINT_MAX:
        raise Malformed('length', '%s: %d above 2^64-1' % (where, value))
    return value


def _check_array(value, where, most):
    _want(value, 'array', where)
    if len(value) > most:
        raise Malformed('length', '%s: %d elements, at most %d' % (where, len(value), most))
    return value


def _check_subscription(value, where):
    _want(value, 'array', where)
    if len(value) != 3:
        raise Malformed('element-count', '%s: %d elements, want 3' % (where, len(value)))
    for part, name in zip(value, ('prefix', 'since', 'flags')):
        if part is None:
            raise Malformed('nil', '%s.%s' % (where, name))
    return (_check_str(value[0], where + '.prefix', 0, 256, True),
            _check_uint(value[1], where + '.since'), _check_uint(value[2], where + '.flags'))


def _check_map(value, where, strict_maps):
    pairs = value.items() if isinstance(value, dict) else value
    _want(value, 'map', where)
    if len(pairs) > 32:
        raise Malformed('length', '%s: %d entries, at most 32' % (where, len(pairs)))
    out = {}
    for key, val in pairs:
        _check_str(key, where + ' key', 1, 64)
        if val is None:
            raise Malformed('nil', '%s[%r]' % (where, key))
        _check_str(val, '%s[%r]' % (where, key), 0, 1024)
        if key in out and strict_maps:
            raise Malformed('duplicate-key', '%s: %r' % (where, key))
        out[key] = val
    return out


def check_field(field, value, strict_maps=False):
    """Check one field value against its schema entry; return it normalised or raise Malformed."""
    where = field.name
    if value is None:
        if field.nil:
            return None
        raise Malformed('nil', '%s may not be nil' % where)
    kind = field.kind
    if kind == 'uint':
        return _check_uint(value, where)
    if kind == 'bool':
        _want(value, 'bool', where)
        return value
    if kind == 'str':
        return _check_str(value, where, 0, field.limit)
    if kind == 'name':
        return _check_str(value, where, 1, field.limit, True)
    if kind == 'prefix':
        return _check_str(value, where, 0, field.limit, True)
    if kind == 'bin':
        _want(value, 'bin', where)
        if len(value) > BIN_LIMIT:
            raise Malformed('length', '%s: %d bytes, at most %d' % (where, len(value), BIN_LIMIT))
        return bytes(value)
    if kind == 'strs':
        items = _check_array(value, where, 256)
        for i, item in enumerate(items):
            if item is None:
                raise Malformed('nil', '%s[%d]' % (where, i))
            _check_str(item, '%s[%d]' % (where, i), 1, 256)
        return list(items)
    if kind == 'uints':
        items = _check_array(value, where, field.limit)
        return [_check_uint(item, '%s[%d]' % (where, i)) for i, item in enumerate(items)]
    if kind == 'subs':
        items = _check_array(value, where, 256)
        return [_check_subscription(item, '%s[%d]' % (where, i)) for i, item in enumerate(items)]
    return _check_map(value, where, strict_maps)


# ---------------------------------------------------------------- decode

def decode(body, strict_maps=False):
    """Decode one body strictly (Sections 9, 12, 13); raise Malformed(rule) on any breach.

    ``strict_maps`` makes a map with duplicate keys malformed (the spec allows either).
    """
    body = bytes(body)
    if len(body) > BODY_LIMIT:
        raise Malformed('size', 'body of %d bytes, at most %d' % (len(body), BODY_LIMIT))
    if not body:
        raise Malformed('truncated', 'empty body')
    if not (0x90 <= body[0] <= 0x9F or body[0] in (0xDC, 0xDD)):
        raise Malformed('not-array', 'body starts with 0x%02X' % body[0])
    reader = _Reader(body)
    items = reader.value(1)
    if reader.pos != len(body):
        raise Malformed('trailing', '%d bytes after the body array' % (len(body) - reader.pos))
    return _message(items, reader.notes, strict_maps)


def _message(items, notes, strict_maps):
    if not items or _family(items[0]) != 'int' or items[0] != SIGNATURE:
        raise Malformed('signature', repr(items[0]) if items else 'empty array')
    if len(items) < 4:
        raise Malformed('element-count', '%d elements, fewer than 4' % len(items))
    _want(items[1], 'int', 'version')
    if items[1] != VERSION:
        raise Malformed('version', 'version %d' % items[1])
    _want(items[2], 'int', 'type')
    if not 1 <= items[2] <= TYPES:
        raise Malformed('type', 'type %d' % items[2])
    kind = TYPE_NAMES[items[2] - 1]
    schema = SCHEMAS[kind]
    tail = TAILS.get(kind, 0)
    if not 4 + len(schema) - tail <= len(items) <= 4 + len(schema):
        raise Malformed('element-count', '%s with %d elements, want %d'
                        % (kind, len(items), 4 + len(schema)))
    msg_id = _check_str(items[3], 'id', 1, 64) if items[3] is not None else None
    if msg_id is None:
        raise Malformed('nil', 'id may not be nil')
    fields = {f.name: check_field(f, v, strict_maps) for f, v in zip(schema, items[4:])}
    for f in schema[len(items) - 4:]:
        fields[f.name] = _tail_default(f)   # a trailing field left out
    return Message(items[2], msg_id, fields, notes)


def decode_pub(frames, strict_maps=False):
    """Decode a PUB/SUB message (topic frame, body frame) per Section 9."""
    if len(frames) != 2:
        raise Malformed('frames', '%d frames on SUB, want 2' % len(frames))
    msg = decode(frames[1], strict_maps)
    if msg.kind != 'EVENT':
        raise Malformed('not-event', '%s on SUB' % msg.kind)
    if bytes(frames[0]) != _utf8(msg['topic']):
        raise Malformed('topic-frame',
                        '%r differs from topic %r' % (bytes(frames[0]), msg['topic']))
    return msg


# ---------------------------------------------------------------- encode

class Str:
    """Force the MessagePack str family around arbitrary bytes (for deliberately bad bodies)."""

    def __init__(self, data):
        self.data = bytes(data)


class Raw:
    """Bytes inserted verbatim into a packed value (any format, e.g. a long uint form)."""

    def __init__(self, data):
        self.data = bytes(data)

    @classmethod
    def uint(cls, value, bits):
        """``value`` as uint 8/16/32/64 whatever its size."""
        return cls(bytes([{8: 0xCC, 16: 0xCD, 32: 0xCE, 64: 0xCF}[bits]])
                   + value.to_bytes(bits // 8, 'big'))

    @classmethod
    def int(cls, value, bits):
        """``value`` as signed int 8/16/32/64."""
        return cls(bytes([{8: 0xD0, 16: 0xD1, 32: 0xD2, 64: 0xD3}[bits]])
                   + value.to_bytes(bits // 8, 'big', signed=True))


def _pack_len(out, n, small_base, small_max, codes):
    if n <= small_max:
        out.append(small_base | n)
    elif n <= 0xFF and codes[0] is not None:
        out += bytes([codes[0], n])
    elif n <= 0xFFFF:
        out += bytes([codes[1]]) + n.to_bytes(2, 'big')
    else:
        out += bytes([codes[2]]) + n.to_bytes(4, 'big')


def _pack_int(out, v):
    if 0 <= v <= 0x7F or -32 <= v < 0:
        out += (v & 0xFF).to_bytes(1, 'big')
        return
    for bits, ucode, scode in ((8, 0xCC, 0xD0), (16, 0xCD, 0xD1), (32, 0xCE, 0xD2),
                               (64, 0xCF, 0xD3)):
        if 0 <= v < 1 << bits:
            out += bytes([ucode]) + v.to_bytes(bits // 8, 'big')
            return
        if -(1 << (bits - 1)) <= v < 0:
            out += bytes([scode]) + v.to_bytes(bits // 8, 'big', signed=True)
            return
    raise ValueError('integer %d does not fit MessagePack' % v)


def _pack(out, v):
    if v is None:
        out.append(0xC0)
    elif v is True or v is False:
        out.append(0xC3 if v else 0xC2)
    elif isinstance(v, int):
        _pack_int(out, v)
    elif isinstance(v, float):
        out += b'\xcb' + struct.pack('>d', v)
    elif isinstance(v, (str, Str)):
        raw = v.data if isinstance(v, Str) else _utf8(v)
        _pack_len(out, len(raw), 0xA0, 0x1F, (0xD9, 0xDA, 0xDB))
        out += raw
    elif isinstance(v, (bytes, bytearray)):
        _pack_len(out, len(v), 0, -1, (0xC4, 0xC5, 0xC6))
        out += v
    elif isinstance(v, Raw):
        out += v.data
    elif isinstance(v, Ext):
        _pack_ext(out, v)
    elif isinstance(v, (dict, _Pairs)):
        pairs = list(v.items()) if isinstance(v, dict) else v
        _pack_len(out, len(pairs), 0x80, 0x0F, (None, 0xDE, 0xDF))
        for key, val in pairs:
            _pack(out, key)
            _pack(out, val)
    elif isinstance(v, (list, tuple)):
        _pack_len(out, len(v), 0x90, 0x0F, (None, 0xDC, 0xDD))
        for item in v:
            _pack(out, item)
    else:
        raise TypeError('cannot pack %r' % (v,))


def _pack_ext(out, v):
    fixed = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}
    n = len(v.data)
    if n in fixed:
        out.append(fixed[n])
    else:
        _pack_len(out, n, 0, -1, (0xC7, 0xC8, 0xC9))
    out += (v.code & 0xFF).to_bytes(1, 'big') + v.data


def pack(value):
    """Pack any value with the shortest forms; no Chorus rule is checked.

    str -> str, bytes -> bin, dict -> map, list/tuple -> array, plus ``Str``,
    ``Raw``, ``Ext``, ``pairs(...)`` (a map that may repeat keys) and float.
    """
    out = bytearray()
    _pack(out, value)
    return bytes(out)


def pairs(*items):
    """A map given as (key, value) pairs, which may repeat keys, for ``pack``."""
    return _Pairs(items)


def encode(msg, check=True):
    """Encode ``msg`` as a body with the shortest forms.

    With ``check`` (the default) every field is checked as ``decode`` would and
    Malformed is raised for a bad one; ``check=False`` packs whatever the fields hold.
    """
    schema = SCHEMAS[msg.kind] if 1 <= msg.type <= TYPES else ()
    values = [msg.fields[f.name] for f in schema] if check else list(msg.fields.values())
    if check:
        _check_str(msg.id, 'id', 1, 64)
        values = [check_field(f, v) for f, v in zip(schema, values)]
        tail = TAILS.get(msg.kind, 0)
        while tail and values and _at_tail_default(schema[len(values) - 1], values[-1]):
            values.pop()
            tail -= 1
    body = pack([SIGNATURE, VERSION, msg.type, msg.id] + values)
    if check and len(body) > BODY_LIMIT:
        raise Malformed('size', 'body of %d bytes' % len(body))
    return body


def encode_beacon(instance, port, key=None):
    """The UDP beacon for a 32-hex ``instance`` and inbox ``port``: 22 bytes of version 1
    (Section 4.1), or, with the node's Z85 ``key``, 54 bytes of version 2 (Section 14.3)."""
    if key is None:
        return b'CHO\x01' + bytes.fromhex(instance) + port.to_bytes(2, 'big')
    return b'CHO\x02' + bytes.fromhex(instance) + port.to_bytes(2, 'big') + z85_decode(key)


def decode_beacon(data, secure=False):
    """(instance hex, port) of a version 1 beacon, or (instance hex, port, Z85 key) of a
    version 2 beacon when ``secure``: a secure node accepts only version 2, a plaintext
    node only version 1 (Section 14.3). Raises Malformed('beacon') otherwise."""
    size, version = (54, b'CHO\x02') if secure else (22, b'CHO\x01')
    if len(data) != size or data[:4] != version:
        raise Malformed('beacon', '%d bytes starting %r' % (len(data), bytes(data[:4])))
    found = bytes(data[4:20]).hex().upper(), int.from_bytes(data[20:22], 'big')
    return found + (zmq.utils.z85.encode(bytes(data[22:54])).decode(),) if secure else found


def fnv1a64(data):
    """64-bit FNV-1a, the hash Section 7.2 recommends for rendezvous choice."""
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def rendezvous(hash_key, instances):
    """The instance Section 7.2 picks for ``hash_key`` (bytes): highest score, ties lowest id."""
    best = None
    for inst in sorted(instances):
        score = fnv1a64(hash_key + b'\x00' + inst.encode())
        if best is None or score > best[0]:
            best = (score, inst)
    return best and best[1]


# ---------------------------------------------------------------- keys and certificates

Z85_KEY = re.compile(r'[0-9a-zA-Z.\-:+=^!/*?&<>()\[\]{}@%$#]{40}\Z')


def z85_valid(key):
    """True for a CURVE public key in Z85: 40 characters of the Z85 alphabet (RFC 32)."""
    return isinstance(key, str) and bool(Z85_KEY.match(key))


def split_keyed(entry):
    """(endpoint, KEY) of ``ENDPOINT@KEY`` (Section 14.3), KEY None when there is no ``@``.

    A Z85 key may itself hold ``@``: when the entry ends with ``@`` and 40 Z85 characters,
    those are the key; otherwise KEY is what follows the last ``@`` (a certificate's name).
    """
    if len(entry) > 41 and entry[-41] == '@' and z85_valid(entry[-40:]):
        return entry[:-41], entry[-40:]
    endpoint, at, key = entry.rpartition('@')
    return (endpoint, key) if at else (entry, None)


def z85_decode(key):
    """The 32 bytes of a Z85 key; ValueError if it is not one."""
    if not z85_valid(key):
        raise ValueError('not a Z85 key: %r' % (key,))
    return zmq.utils.z85.decode(key.encode())


class Certificate:
    """A zcert certificate (Section 14.1): ``name``, ``public`` and ``secret`` keys (Z85;
    secret None in a public certificate) and ``meta``, its metadata, which says what the key
    may do."""

    def __init__(self, name, public, secret=None, meta=None, path=None):
        self.name, self.public, self.secret = name, public, secret
        self.meta, self.path = dict(meta or {}), path

    def _entries(self, field):
        value = self.meta.get(field)
        return None if value is None else [e for e in value.split(' ') if e]

    def may_act_as(self, service):
        """The ``service`` metadata: the one service the key may act as, or ``*``; absent, any."""
        allowed = self.meta.get('service')
        return allowed is None or allowed in ('*', service)

    def may_publish(self, topic):
        """The ``publish`` metadata: topic prefixes; absent, any topic."""
        prefixes = self._entries('publish')
        return prefixes is None or any(topic.startswith(p) for p in prefixes)

    def may_call(self, service, name):
        """The ``call`` metadata: ``SERVICE`` or ``SERVICE.COMMAND`` entries; absent, any."""
        entries = self._entries('call')
        return entries is None or service in entries or '%s.%s' % (service, name) in entries

    def __repr__(self):
        return '<Certificate %s %s %r>' % (self.name, self.public, self.meta)


def _zpl_value(text):
    text = text.strip()
    if text[:1] in ('"', "'"):
        end = text.find(text[0], 1)
        return text[1:end] if end > 0 else text[1:]
    return text.split('#', 1)[0].strip()


def read_certificate(path):
    """Read a zcert file (ZPL text, Section 14.1); ValueError if it holds no valid public key.

    For ``NAME.cert`` with ``NAME.cert_secret`` beside it, the secret key is read from there.
    """
    sections, section = {}, None
    with open(path, encoding='utf-8', errors='replace') as file:
        for line in file:
            body = line.rstrip('\n')
            if not body.strip() or body.lstrip().startswith('#'):
                continue
            indent = len(body) - len(body.lstrip(' '))
            name, eq, value = body.strip().partition('=')
            if indent == 0:
                section = sections.setdefault(name.strip(), {})
            elif section is not None and eq:
                section[name.strip()] = _zpl_value(value)
    curve = sections.get('curve', {})
    public = curve.get('public-key')
    if not z85_valid(public):
        raise ValueError('%s: no valid public key' % path)
    secret = curve.get('secret-key')
    if secret is None and path.endswith('.cert') and os.path.exists(path + '_secret'):
        secret = read_certificate(path + '_secret').secret
    base = os.path.basename(path)
    base = base[:-len('.cert')] if base.endswith('.cert') else base.split('.cert')[0]
    meta = sections.get('metadata', {})
    return Certificate(meta.get('name', base), public, secret if z85_valid(secret) else None,
                       meta, path)


def _zpl_quote(value):
    if '"' in value or '\n' in value:
        raise ValueError('a ZPL value cannot hold %r' % value)
    return '"%s"' % value


def write_certificate(directory, name, secret_dir=None, keys=None, **meta):
    """Write ``NAME.cert`` (public, with the metadata) into ``directory`` and
    ``NAME.cert_secret`` into ``secret_dir`` (default: the same directory), in czmq's zcert
    format, values quoted as czmq writes them. ``meta`` are ``service``, ``publish`` (a
    string of space-separated prefixes, or a list) and ``call``; ``name`` defaults to
    NAME. ``keys`` is a (public, secret) pair to reuse. Returns the Certificate (with
    its secret key)."""
    public, secret = keys or (k.decode() for k in zmq.curve_keypair())
    meta = {k: ' '.join(v) if isinstance(v, (list, tuple)) else str(v)
            for k, v in meta.items() if v is not None}
    meta.setdefault('name', name)
    lines = ['metadata'] + ['    %s = %s' % (k, _zpl_quote(v)) for k, v in meta.items()]
    stamp = time.strftime('%Y-%m-%d %H:%M:%S')
    paths = (os.path.join(directory, name + '.cert'),
             os.path.join(secret_dir or directory, name + '.cert_secret'))
    for path, secret_part in zip(paths, (False, True)):
        text = ['#   ****  Generated on %s by the Chorus strict peer  ****' % stamp,
                '#   ZeroMQ CURVE %s Certificate' % ('**Secret**' if secret_part else 'Public'),
                ''] + lines + ['curve', '    public-key = %s' % _zpl_quote(public)]
        if secret_part:
            text.append('    secret-key = %s' % _zpl_quote(secret))
        with open(path, 'w', encoding='utf-8') as file:
            file.write('\n'.join(text) + '\n')
        if secret_part:
            os.chmod(path, 0o600)
    return Certificate(meta['name'], public, secret, meta, paths[0])


class Trust:
    """The keys a secure node accepts (Section 14.1), each with its Certificate.

    Built from a trust directory (every ``*.cert``; a file holding a secret key, a file
    named ``*_secret`` and a file without a valid public key are ignored with a warning;
    of two certificates of one key the first in name order counts), from a mapping
    {Z85 key: metadata dict}, or from an iterable of Z85 keys (no limits).
    """

    def __init__(self, source):
        self.source, self.by_key, self.by_name, self.warnings = source, {}, {}, []
        if isinstance(source, str):
            self._read_dir(source)
        else:
            items = source.items() if isinstance(source, dict) else ((k, {}) for k in source)
            for key, meta in items:
                cert = key if isinstance(key, Certificate) else \
                    Certificate((meta or {}).get('name', key), key, None, meta)
                self._add(cert)

    def _read_dir(self, directory):
        for path in sorted(glob.glob(os.path.join(directory, '*'))):
            base = os.path.basename(path)
            if base.endswith('_secret'):
                self.warnings.append('%s: a secret file, ignored' % base)
                continue
            if not base.endswith('.cert'):
                continue
            try:
                cert = read_certificate(path)
            except (OSError, ValueError) as err:
                self.warnings.append('%s: %s, ignored' % (base, err))
                continue
            with open(path, encoding='utf-8', errors='replace') as file:
                holds_secret = 'secret-key' in file.read()
            if holds_secret:
                self.warnings.append('%s: holds a secret key, ignored' % base)
                continue
            self._add(cert, base[:-len('.cert')])

    def _add(self, cert, file_name=None):
        if cert.public in self.by_key:
            self.warnings.append('%s: key of %s again, ignored' % (cert.name,
                                                                   self.by_key[cert.public].name))
            return
        self.by_key[cert.public] = cert
        #   Known by its file name without .cert (Section 14.1), and by its metadata name
        for name in (file_name, cert.name):
            if name is not None:
                self.by_name.setdefault(name, cert)

    def get(self, key):
        """The Certificate of a trusted key, or None."""
        return self.by_key.get(key)

    def __contains__(self, key):
        return key in self.by_key

    def resolve(self, key_or_name):
        """A seed's KEY: a Z85 key (40 characters) or a certificate's name; None if neither."""
        if z85_valid(key_or_name):
            return key_or_name
        cert = self.by_name.get(key_or_name)
        return cert.public if cert else None

    def signature(self):
        """What changes when the trust directory changes (names, sizes, times)."""
        if not isinstance(self.source, str):
            return None
        found = []
        for path in sorted(glob.glob(os.path.join(self.source, '*'))):
            try:
                info = os.stat(path)
            except OSError:
                continue
            found.append((path, info.st_size, info.st_mtime_ns))
        return tuple(found)


class _Zap(threading.Thread):
    """A ZAP handler (RFC 27) for one context: a CURVE client key is accepted if and only
    if it is trusted at the time of the handshake (Section 14.2), with user id its Z85 key.

    ``trusted`` is a callable(key) read at each request; refusals are kept in ``refused``
    as (Z85 key or None, remote address, mechanism)."""

    def __init__(self, context, trusted):
        super().__init__(daemon=True)
        self.trusted, self.refused, self.accepted = trusted, [], []
        self._stop_flag = False
        self._socket = context.socket(zmq.REP)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.bind('inproc://zeromq.zap.01')

    def run(self):
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        try:
            while not self._stop_flag:
                if poller.poll(50):
                    self._answer(self._socket.recv_multipart())
        finally:
            self._socket.close()

    def _answer(self, request):
        if len(request) < 6:
            self._socket.send_multipart([b'1.0', b'', b'500', b'bad ZAP request', b'', b''])
            return
        version, request_id, _, address, _, mechanism = request[:6]
        key = None
        if mechanism == b'CURVE' and len(request) >= 7 and len(request[6]) == 32:
            key = zmq.utils.z85.encode(request[6]).decode()
        if version == b'1.0' and key is not None and self.trusted(key):
            self.accepted.append((key, address.decode(errors='replace')))
            reply = [b'200', b'OK', key.encode()]
        else:
            self.refused.append((key, address.decode(errors='replace'), mechanism.decode()))
            reply = [b'400', b'key not trusted', b'']
        self._socket.send_multipart([b'1.0', request_id] + reply + [b''])

    def stop(self):
        self._stop_flag = True
        self.join()


class Watch:
    """The socket-monitor events of one socket, for tests: ``handshakes()`` (succeeded),
    ``failures()`` (failed handshakes), ``names`` (every event seen, in order, named as
    zmq.Event names them: 'ACCEPTED', 'HANDSHAKE_FAILED_AUTH', ...)."""

    FAILED = ('HANDSHAKE_FAILED_NO_DETAIL', 'HANDSHAKE_FAILED_PROTOCOL',
              'HANDSHAKE_FAILED_AUTH')

    def __init__(self, sock):
        self.sock, self.names = sock, []
        self._monitor = sock.get_monitor_socket()

    def poll(self):
        """Read the events that came; returns self."""
        while self._monitor is not None:
            try:
                event = zmq.utils.monitor.recv_monitor_message(self._monitor, zmq.NOBLOCK)
            except zmq.Again:
                break
            try:
                self.names.append(zmq.Event(event['event']).name)
            except ValueError:
                self.names.append('EVENT_%d' % event['event'])
        return self

    def handshakes(self):
        return self.poll().names.count('HANDSHAKE_SUCCEEDED')

    def failures(self):
        return sum(self.poll().names.count(name) for name in self.FAILED)

    def close(self):
        if self._monitor is not None:
            if not self.sock.closed:
                self.sock.disable_monitor()
            self._monitor.close()
            self._monitor = None


# ---------------------------------------------------------------- peer state

class CommandError(Exception):
    """Raised by a command handler to answer REPLY status 1."""

    def __init__(self, code, message=None, retryable=False, payload=None):
        super().__init__(code)
        self.code, self.message, self.retryable, self.payload = code, message, retryable, payload


Received = collections.namedtuple('Received', 'msg instance rid via address at known key',
                                  defaults=(None,))
Received.kind = property(lambda self: self.msg.kind)
Rejected = collections.namedtuple('Rejected', 'via rid frames reason detail')


def listless(msg):
    """True if a HELLO says its sender knows the membership: no list to it (Section 4.3)."""
    return (msg['headers'] or {}).get('chorus.lists') == 'no'


class PeerState:
    """What this node knows of a met peer (Section 4.4 step 3)."""

    def __init__(self, msg, rid, address, now, key=None, cert=None):
        self.key, self.cert = key, cert     # secure mesh: the key it met us with (14.4)
        self.fd = None                      # secure mesh: its connection into our ROUTER
        self.instance = msg['instance']
        self.rid = rid
        self.service = msg['service']
        self.endpoint = msg['endpoint']
        self.pub_endpoint = msg['pub_endpoint']
        self.address = address
        self.started = (msg['headers'] or {}).get('chorus.started')
        self.listless = listless(msg)       # it knows the membership (Section 4.3)
        self.dealer = None
        self.sub = None
        self.last_heard = self.last_ping = self.met_at = now
        self.update(msg)

    def update(self, msg):
        """Take the announced state of a HELLO with a new generation."""
        self.generation = msg['generation']
        self.head = msg['head']
        self.peers = list(msg['peers'])
        self.subscriptions = list(msg['subscriptions'])
        self.topics = list(msg['topics'])
        self.headers = dict(msg['headers'] or {})

    def matches(self, topic):
        return any(topic.startswith(prefix) for prefix, _, _ in self.subscriptions)


class _Pending:
    """A DEALER opened to an endpoint, waiting for the HELLO that identifies it."""

    def __init__(self, endpoint, dealer, hello_id, now, seed, key=None):
        self.endpoint, self.dealer, self.hello_id = endpoint, dealer, hello_id
        self.opened, self.seed, self.key = now, seed, key


class _Cursor:
    """A publisher's view of one group (Section 7.2)."""

    def __init__(self, name):
        self.name = name
        self.subs = {}            # prefix -> smallest since
        self.durable = False
        self.acked = set()        # done for the group (or lost to retention)
        self.inflight = {}        # seq -> [instance, attempt, sent_at]
        self.retry_at = {}        # seq -> monotonic time a rejected event may go again
        self.attempts = {}        # seq -> last attempt number sent
        self.floor = 1            # every seq below is acked or not due
        self.truncated = []       # (from, to, message) waiting for a live instance

    def due(self, event):
        return any(event['topic'].startswith(prefix) and (since == 0 or since <= event['timestamp'])
                   for prefix, since in self.subs.items())


class _Outgoing:
    """A command in the sender's outbox (Section 7.6)."""

    def __init__(self, msg):
        self.msg, self.target, self.sent_at, self.exclude = msg, None, None, set()


class Fetch:
    """One FETCH sent and what came back: ``events``, ``truncated``, ``replay``, ``error``."""

    def __init__(self, msg, instance, now, auto):
        self.msg, self.instance, self.sent_at, self.auto = msg, instance, now, auto
        self.events, self.truncated, self.replay, self.error = [], [], None, None

    @property
    def done(self):
        return self.replay is not None or self.error is not None


# ---------------------------------------------------------------- the peer

class Peer:
    """A Chorus node on loopback for tests: roles, strict drops, records and sending hooks.

    Secure mesh (Section 14): ``curve`` is the node's key pair, a (public, secret) Z85
    pair or the path of its secret certificate (whose metadata then limits what this node
    itself does), and ``trust`` the keys it accepts: a trust directory, a mapping {key:
    metadata} or an iterable of keys. Seeds are then ``ENDPOINT@KEY``, KEY a Z85 key or a
    certificate's name. A secure peer makes a ZeroMQ context of its own, for its ZAP handler.

    ``via``, a function of an endpoint, gives the endpoint this node's DEALERs and SUBs
    connect to instead (a recording proxy's, say); the announced ``endpoint`` may be set to
    a proxy's before the node first runs.
    """

    def __init__(self, service, *, mesh=None, instance=None, seeds=(), subscriptions=(),
                 topics=(), keeps_log=True, observe=None, observe_history=True, headers=None,
                 on_event=None, strict_maps=False, context=None, host='127.0.0.1',
                 timers=None, bounds=None, curve=None, trust=None, via=None):
        self.service, self.mesh = service, mesh or os.environ.get('CHORUS_MESH') or 'default'
        self.instance = instance or new_id()
        self.rid = b'\x01' + bytes.fromhex(self.instance)
        self.started, self.generation = now_ms(), 1
        self.subscriptions = [tuple(s) for s in subscriptions]
        self.topics, self.extra_headers = list(topics), dict(headers or {})
        self.keeps_log, self.on_event, self.strict_maps = keeps_log, on_event, strict_maps
        self.observe, self.observe_history = observe, observe_history
        self.timers = dict(TIMERS, **(timers or {}))
        self.bounds = dict(BOUNDS, **(bounds or {}))
        # test-visible records
        self.received, self.rejected, self.sent = [], [], []
        self.drops, self.anomalies = collections.Counter(), collections.Counter()
        self.relays = []            # probes made for others: (target, asker, request id, until)
        self.expired = []           # (instance, reason)
        self.errors = []            # ERROR messages received (Received records)
        self.losses = []            # (publisher instance, from, to, message, request, group)
        self.events = []            # group deliveries handed to on_event
        self.observed = []          # events seen by the observer role (deduplicated)
        self.replies = {}           # command id -> REPLY message
        self.command_results = {}   # command id -> 'reply' or 'timeout'
        self.fetches = {}           # FETCH id -> Fetch
        # protocol state
        self.peers, self._pending, self._buckets, self._raw = {}, [], {}, []
        self._watches = []
        self.log, self.head, self.earliest, self._removed_newest_ts = {}, 0, 1, None
        self.cursors, self._dirty = {}, True
        self.handled = set()        # (group, publisher, seq) recorded
        self._handling = {}         # (group, publisher, seq) -> event being handled
        self.command_handlers, self.outbox = {}, {}
        self._cmd_records = {}      # (sender service, key) -> REPLY fields, or 'running'
        self._cmd_running = {}      # command id -> (record key, sender instance, command)
        self.seen, self._got, self._wants = {}, {}, {}
        self._secure_setup(curve, trust, context)
        self.via = via or (lambda endpoint: endpoint)
        self._seeds = {}
        for seed in seeds:
            endpoint, key = self._seed_key(seed)
            self._seeds[endpoint] = {'met': None, 'next': 0.0, 'key': key}
        self._own_ctx = context is None
        self.ctx = context or zmq.Context()
        self.zap = None
        if self.secure:
            self.zap = _Zap(self.ctx, lambda key: key in self.trust)
            self.zap.start()
        self._bind(host)

    # ---- security (Section 14)

    def _secure_setup(self, curve, trust, context):
        self.secure = curve is not None
        self.certificate = None     # our own, when read from a file: it limits us too
        self.public_key = self.secret_key = None
        self.trust = None
        self.refused = []           # HELLOs refused by Section 14.4: (reason, key, instance)
        self._trust_seen, self._trust_checked = None, 0.0
        if (curve is None) != (trust is None):
            raise ValueError('a secure node needs both a key pair and trusted keys')
        if not self.secure:
            return
        if context is not None:
            raise ValueError('a secure peer needs a context of its own (one ZAP handler each)')
        if isinstance(curve, str):
            self.certificate = read_certificate(curve)
            if self.certificate.secret is None:
                raise ValueError('%s holds no secret key' % curve)
            curve = (self.certificate.public, self.certificate.secret)
        self.public_key, self.secret_key = curve
        z85_decode(self.public_key)
        z85_decode(self.secret_key)
        self.trust = Trust(trust)
        self._trust_seen = self.trust.signature()
        if self.certificate is not None and not self.certificate.may_act_as(self.service):
            raise PermissionError('certificate %s may not act as %s'
                                  % (self.certificate.name, self.service))

    def _seed_key(self, seed):
        endpoint, key = split_keyed(seed)
        if not self.secure:
            if key is not None:
                raise ValueError('a plaintext node refuses a seed with a key: %s' % seed)
            return endpoint, None
        resolved = self.trust.resolve(key) if key else None
        if resolved is None:
            raise ValueError('a secure node needs a seed with a key it can resolve: %s' % seed)
        return endpoint, resolved

    def _server(self, sock):
        """A bound socket as a CURVE server that asks ZAP (Section 14.2)."""
        if self.secure:
            sock.setsockopt(zmq.CURVE_SERVER, 1)
            sock.setsockopt(zmq.CURVE_SECRETKEY, self.secret_key.encode())
            sock.setsockopt(zmq.CURVE_PUBLICKEY, self.public_key.encode())
            sock.setsockopt(zmq.ZAP_DOMAIN, b'chorus')
        return sock

    def _client(self, sock, server_key, curve=None):
        """A connecting socket as a CURVE client of ``server_key`` with our key pair
        (or ``curve``, another one, for tests)."""
        public, secret = curve or (self.public_key, self.secret_key)
        if server_key is not None:
            sock.setsockopt(zmq.CURVE_SERVERKEY, server_key.encode())
            sock.setsockopt(zmq.CURVE_PUBLICKEY, public.encode())
            sock.setsockopt(zmq.CURVE_SECRETKEY, secret.encode())
        elif self.secure and curve is None:
            raise ValueError('a secure node connects only with the server\'s key')
        return sock

    def hello_refused(self, msg, key):
        """Why Section 14.4 refuses this HELLO arriving with ``key``, or None."""
        cert = self.trust.get(key) if key else None
        if cert is None:
            return 'key-not-trusted'
        if not cert.may_act_as(msg['service']):
            return 'service-not-allowed'
        if (msg['headers'] or {}).get('chorus.key') != key:
            return 'key-header-differs'
        peer = self.peers.get(msg['instance'])
        if peer is not None and peer.key != key:
            return 'instance-key-changed'
        return None

    def _forbid(self, peer, msg, what):
        cert = peer.cert.name if peer.cert else peer.key
        self.drops['forbidden'] += 1
        self._error(peer, msg, 'forbidden', 'certificate %s may not %s' % (cert, what))

    def reload_trust(self):
        """Read the trust directory again and revoke what it no longer allows (Section 14.5):
        forget each peer whose key left or whose certificate no longer allows its service,
        close its DEALER and SUB, its pending connections, and the TCP connection its
        messages came over into the ROUTER. Returns the instances revoked."""
        self.trust = Trust(self.trust.source)
        self._trust_seen = self.trust.signature()
        revoked = []
        for peer in list(self.peers.values()):
            cert = self.trust.get(peer.key)
            if cert is None or not cert.may_act_as(peer.service):
                revoked.append(peer.instance)
                self.drops['revoked'] += 1
                self._expire(peer, 'revoked')
                if peer.fd is not None:
                    self._shut_down_fd(peer.fd)
        for pending in [p for p in self._pending if p.key not in self.trust]:
            pending.dealer.close()
            self._pending.remove(pending)
        return revoked

    @staticmethod
    def _shut_down_fd(fd):
        try:
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            return
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            sock.close()

    def _trust_tick(self, now):
        if not self.secure or now - self._trust_checked < 1.0:
            return
        self._trust_checked = now
        if self.trust.signature() != self._trust_seen:
            self.reload_trust()

    # ---- sockets

    def _socket(self, kind):
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.MAXMSGSIZE, FRAME_LIMIT)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, self.bounds['sndhwm'])
        return sock

    def _bind(self, host):
        self.router = self._server(self._socket(zmq.ROUTER))
        self.router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self.router.bind('tcp://%s:*' % host)
        self.endpoint = self.router.getsockopt(zmq.LAST_ENDPOINT).decode()
        self.pub = self._server(self._socket(zmq.PUB))
        self.pub.bind('tcp://%s:*' % host)
        self.pub_endpoint = self.pub.getsockopt(zmq.LAST_ENDPOINT).decode()

    def _dealer(self, endpoint, rid=None, server_key=None, curve=None):
        sock = self._client(self._socket(zmq.DEALER), server_key, curve)
        sock.setsockopt(zmq.ROUTING_ID, self.rid if rid is None else rid)
        sock.connect(self.via(endpoint))
        return sock

    def watch(self, sock):
        """A Watch of the socket-monitor events of ``sock``, closed by close()."""
        watch = Watch(sock)
        self._watches.append(watch)
        return watch

    def _open_raw(self, kind, endpoint, server_key, curve, watch, setup):
        sock = self._socket(kind)
        if curve is not False:
            self._client(sock, server_key, curve)
        setup(sock)
        found = self.watch(sock) if watch else None
        sock.connect(endpoint)
        self._raw.append(sock)
        return (sock, found) if watch else sock

    def open_dealer(self, endpoint, routing_id=None, server_key=None, curve=None, watch=False):
        """A test DEALER to ``endpoint`` with any routing id (default: this node's).

        On a secure mesh it is a CURVE client of ``server_key`` with this node's key pair,
        or with ``curve`` (another (public, secret) pair); ``curve=False`` makes it
        plaintext. With ``watch`` it returns (socket, Watch), the Watch made before the
        socket connects. It is not polled and is closed by close().
        """
        def setup(sock):
            sock.setsockopt(zmq.ROUTING_ID, self.rid if routing_id is None else routing_id)
            sock.setsockopt(zmq.LINGER, 1000)
        return self._open_raw(zmq.DEALER, endpoint, server_key, curve, watch, setup)

    def open_listener(self, host='127.0.0.1', watch=False):
        """A test ROUTER bound to a fresh port of ``host``, a CURVE server with this node's
        key on a secure mesh: somewhere a HELLO can claim to be, to see who connects there.
        Returns (socket, endpoint), or (socket, endpoint, Watch) with ``watch``. It is not
        polled and is closed by close()."""
        sock = self._server(self._socket(zmq.ROUTER))
        found = self.watch(sock) if watch else None
        sock.bind('tcp://%s:*' % host)
        self._raw.append(sock)
        endpoint = sock.getsockopt(zmq.LAST_ENDPOINT).decode()
        return (sock, endpoint, found) if watch else (sock, endpoint)

    def open_sub(self, endpoint, prefix='', server_key=None, curve=None, watch=False):
        """A test SUB to a PUB ``endpoint`` subscribed to ``prefix``, a CURVE client (or
        not, or watched) as open_dealer's DEALER; not polled, closed by close()."""
        def setup(sock):
            sock.setsockopt(zmq.SUBSCRIBE, _utf8(prefix))
        return self._open_raw(zmq.SUB, endpoint, server_key, curve, watch, setup)

    def sockets(self):
        """The sockets this node receives on (ROUTER and observer SUBs)."""
        return [self.router] + [p.sub for p in self.peers.values() if p.sub is not None]

    def close(self, bye=True):
        """Leave: BYE to every peer (Section 6), then close every socket."""
        for peer in list(self.peers.values()):
            if bye:
                self._send(peer, make('BYE'))
            peer.dealer.setsockopt(zmq.LINGER, 500)
            peer.dealer.close()
            if peer.sub is not None:
                peer.sub.close()
        for pending in self._pending:
            pending.dealer.close()
        for watch in self._watches:
            watch.close()
        for sock in self._raw + [self.router, self.pub]:
            sock.close()
        self.peers, self._pending, self._raw, self._watches = {}, [], [], []
        if self.zap is not None:
            self.zap.stop()
            self.zap = None
        if self._own_ctx:
            self.ctx.term()

    # ---- sending

    def _hello(self, answers=None, to=None):
        """Our HELLO; to a peer that knows the membership, without our list (Section 4.3)."""
        headers = dict(self.extra_headers)
        headers.update({'chorus.started': str(self.started), 'chorus.mesh': self.mesh})
        if self.secure:
            headers['chorus.key'] = self.public_key
        if answers is not None:
            headers['chorus.answers'] = answers
        now = time.monotonic()
        alive = [p.endpoint for p in self.peers.values()
                 if now - p.last_heard < self.timers['evasive']]
        if self.secure:     # ENDPOINT@KEY, and none over 256 bytes (Section 14.3)
            alive = [e for e in ('%s@%s' % (p.endpoint, p.key) for p in self.peers.values()
                                 if now - p.last_heard < self.timers['evasive'])
                     if len(_utf8(e)) <= 256]
        if to is not None and to.listless:
            headers['chorus.lists'] = 'no'
            alive = []
        return make('HELLO', service=self.service, instance=self.instance,
                    endpoint=self.endpoint, pub_endpoint=self.pub_endpoint,
                    generation=self.generation, head=self.head, peers=alive,
                    subscriptions=[list(s) for s in self.subscriptions],
                    topics=self.topics, headers=headers)

    def hello_message(self, answers=None, headers=None, **fields):
        """The HELLO this node would send now, with ``fields`` and ``headers`` changed (a
        header set to None is removed): for tests that claim what they should not."""
        msg = self._hello(answers)
        for key, value in (headers or {}).items():
            if value is None:
                msg.fields['headers'].pop(key, None)
            else:
                msg.fields['headers'][key] = value
        return msg.replace(**fields)

    def _send_on(self, sock, target, frames, msg=None):
        try:
            sock.send_multipart(frames, zmq.NOBLOCK)
        except zmq.Again:
            self.anomalies['send-would-block'] += 1
            return False
        self.sent.append((target, msg if msg is not None else frames))
        return True

    def _send(self, peer, msg):
        return self._send_on(peer.dealer, peer.instance, [encode(msg)], msg)

    def _peer(self, instance):
        peer = self.peers.get(instance)
        if peer is None:
            raise KeyError('no live peer %s' % instance)
        return peer

    def send(self, instance, msg, check=True):
        """Send ``msg`` on the DEALER to a met peer; ``check=False`` skips the field checks."""
        peer = self._peer(instance)
        return self._send_on(peer.dealer, instance, [encode(msg, check)], msg)

    def send_raw(self, instance, body):
        """Send an arbitrary body (bytes) as one frame on the DEALER to a met peer."""
        return self.send_frames(instance, [body])

    def send_frames(self, instance, frames):
        """Send arbitrary frames as one multipart message on the DEALER to a met peer."""
        return self._send_on(self._peer(instance).dealer, instance, list(frames))

    def _error(self, peer, request, code, message=None):
        self._send(peer, make('ERROR', request=request.id, code=code, message=message))

    def _drop(self, reason):
        self.drops[reason] += 1

    # ---- running

    def drain(self):
        """Handle every message already waiting on this node's sockets."""
        while True:
            try:
                frames = self.router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            self._on_router(frames)
        for peer in list(self.peers.values()):
            while peer.sub is not None:
                try:
                    frames = peer.sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._on_sub(peer, frames)

    def run_until(self, predicate, timeout=5.0, others=()):
        """Run this node (and ``others``) until ``predicate()`` is true; False on timeout."""
        return run_until(predicate, timeout, [self] + list(others))

    def run_for(self, seconds, others=()):
        """Run this node (and ``others``) for ``seconds``."""
        run_until(lambda: False, seconds, [self] + list(others))

    def wait_for(self, kind, match=None, timeout=5.0, others=(), start=0):
        """The first Received of ``kind`` (from index ``start``) satisfying ``match``, or None."""
        def find():
            for rec in self.received[start:]:
                if rec.msg.kind == kind and (match is None or match(rec.msg)):
                    return rec
            return None
        self.run_until(lambda: find() is not None, timeout, others)
        return find()

    def received_of(self, kind, instance=None):
        """Messages of ``kind`` received so far, optionally only from ``instance``."""
        return [r.msg for r in self.received
                if r.msg.kind == kind and (instance is None or r.instance == instance)]

    def tick(self):
        """Run every timer: liveness, pending and seeds, delivery, commands, observer."""
        now = time.monotonic()
        self._trust_tick(now)
        self._liveness(now)
        self._pending_timeouts(now)
        self._try_seeds(now)
        self._refresh_groups()
        self._pump(now)
        self._dispatch_commands(now)
        self._observer_tick(now)

    # ---- discovery (Section 4)

    def _open_pending(self, endpoint, seed=None, key=None):
        if len(self._pending) >= self.bounds['pending']:
            self._drop('pending-bound')
            return
        dealer = self._dealer(endpoint, server_key=key)
        hello = self._hello()
        self._send_on(dealer, endpoint, [encode(hello)], hello)
        self._pending.append(_Pending(endpoint, dealer, hello.id, time.monotonic(), seed, key))

    def _pending_timeouts(self, now):
        for pending in list(self._pending):
            if now - pending.opened >= self.timers['pending']:
                pending.dealer.close()
                self._pending.remove(pending)

    def _try_seeds(self, now):
        for endpoint, state in self._seeds.items():
            if state['met'] in self.peers:
                continue
            state['met'] = None
            if any(p.endpoint == endpoint for p in self.peers.values()) \
                    or any(p.endpoint == endpoint for p in self._pending) or now < state['next']:
                continue
            state['next'] = now + self.timers['pending']
            self._open_pending(endpoint, seed=endpoint, key=state['key'])

    def _gossip(self, entries):
        """(endpoint, key) of each usable gossip entry: on a secure mesh ENDPOINT@KEY with a
        valid, trusted key (Section 14.3), others dropped and counted."""
        if not self.secure:
            return [(entry, None) for entry in entries]
        found = []
        for entry in entries:
            endpoint, key = split_keyed(entry)
            if not z85_valid(key):
                self._drop('gossip-without-key')
            elif key not in self.trust:
                self._drop('gossip-key-not-trusted')
            else:
                found.append((endpoint, key))
        return found

    def _follow(self, entries):
        known = {p.endpoint for p in self.peers.values()} | {p.endpoint for p in self._pending}
        for endpoint, key in self._gossip(entries):
            if endpoint != self.endpoint and endpoint not in known:
                known.add(endpoint)
                self._open_pending(endpoint, key=key)

    def _admit(self, address):
        if len(self.peers) >= self.bounds['peers']:
            return 'refused-peers'
        now = time.monotonic()
        tokens, last = self._buckets.get(address, (self.bounds['bucket'], now))
        tokens = min(self.bounds['bucket'], tokens + (now - last) * self.bounds['refill'])
        if tokens < 1:
            self._buckets[address] = (tokens, now)
            return 'refused-rate'
        self._buckets[address] = (tokens - 1, now)
        return None

    def _on_hello(self, msg, rid, inst, address, key=None, fd=None):
        headers = msg['headers'] or {}
        if not HEX32.match(msg['instance']) or msg['instance'] != inst:
            return self._drop('hello-instance-mismatch')
        if headers.get('chorus.mesh', 'default') != self.mesh:
            return self._drop('other-mesh')
        if self.secure:
            refused = self.hello_refused(msg, key)
            if refused:         # not answered, gossip not followed (Section 14.4)
                self.refused.append((refused, key, inst))
                self._drop('forbidden')
                return self._drop('hello-' + refused)
        if inst == self.instance:
            if msg['endpoint'] != self.endpoint:
                self.anomalies['own-instance-elsewhere'] += 1
            return self._drop('own-instance')
        if not msg['endpoint'] or not msg['pub_endpoint']:
            return self._drop('hello-empty-endpoint')
        if 'chorus.started' not in headers:
            self.anomalies['hello-without-started'] += 1
        peer = self.peers.get(inst)
        if peer is not None and msg['service'] != peer.service:
            return self._drop('hello-service-changed')
        if peer is not None and headers.get('chorus.started') != peer.started:
            self._expire(peer, 'restarted')
            peer = None
        if peer is None:
            refused = self._admit(address)
            if refused:
                return self._drop(refused)
            peer = self._meet(msg, rid, address, key)
        else:
            self._hello_known(peer, msg)
        if fd is not None:
            peer.fd = fd
        self._follow(msg['peers'])
        self._observer_head(peer, msg['head'])

    def _meet(self, msg, rid, address, key=None):
        now = time.monotonic()
        peer = PeerState(msg, rid, address, now, key, self.trust.get(key) if self.secure else None)
        answers = (msg['headers'] or {}).get('chorus.answers')
        #   A pending connection becomes the peer's DEALER only if opened to its key (14.3)
        usable = [p for p in self._pending if p.key == key]
        match = next((p for p in usable if p.endpoint == msg['endpoint']), None) \
            or next((p for p in usable if p.hello_id == answers), None)
        self.peers[peer.instance] = peer
        self.generation += 1
        fresh = None
        for other in [p for p in self._pending if p is not match and p.hello_id == answers]:
            other.dealer.close()        # it leads to this same peer (Section 5)
            self._pending.remove(other)
        if match is not None:
            self._pending.remove(match)
            peer.dealer = match.dealer
        else:
            peer.dealer = self._dealer(msg['endpoint'], server_key=key)
            fresh = self._hello(answers=msg.id, to=peer)
            self._send(peer, fresh)
        for endpoint, state in self._seeds.items():
            if endpoint == msg['endpoint'] or (match is not None and match.seed == endpoint):
                state['met'] = peer.instance
        for other in self.peers.values():
            if fresh is None or other is not peer:
                self._send(other, self._hello(to=other))
        if self.observe is not None:
            peer.sub = self._client(self._socket(zmq.SUB), key)
            peer.sub.setsockopt(zmq.SUBSCRIBE, _utf8(self.observe))
            peer.sub.connect(self.via(peer.pub_endpoint))
            self.seen[peer.instance] = 0 if self.observe_history else peer.head
            self._got[peer.instance] = set()
        self._dirty = True
        return peer

    def _hello_known(self, peer, msg):
        peer.last_heard, peer.head = time.monotonic(), msg['head']
        if msg['generation'] != peer.generation:
            peer.update(msg)
            self._dirty = True
        peer.listless = listless(msg)
        listed = [split_keyed(e)[0] if self.secure else e for e in msg['peers']]
        if not peer.listless and self.endpoint not in listed:
            self._send(peer, self._hello())     # it forgot us: with our list (Section 4.4)

    def _expire(self, peer, reason):
        """Forget a peer (Section 6): close its sockets, move its work, re-announce."""
        del self.peers[peer.instance]
        peer.dealer.close()
        if peer.sub is not None:
            peer.sub.close()
            peer.sub = None
        self.expired.append((peer.instance, reason))
        for cursor in self.cursors.values():
            for seq, flight in list(cursor.inflight.items()):
                if flight[0] == peer.instance:
                    del cursor.inflight[seq]
        for out in self.outbox.values():
            if out.target == peer.instance:
                out.target = None
        for fetch in self.fetches.values():
            if fetch.instance == peer.instance and not fetch.done:
                fetch.error = 'expired'
        self.generation += 1
        for other in self.peers.values():
            self._send(other, self._hello(to=other))
        self._dirty = True

    def _liveness(self, now):
        for peer in list(self.peers.values()):
            silent = now - peer.last_heard
            if silent >= self.timers['expire']:
                self._expire(peer, 'silent')
            elif silent >= self.timers['ping'] and now - peer.last_ping >= self.timers['ping']:
                peer.last_ping = now
                self._send(peer, make('PING', head=self.head))

    def evasive(self, instance):
        """True when a live peer has been silent for the evasive time (Section 6)."""
        return time.monotonic() - self._peer(instance).last_heard >= self.timers['evasive']

    # ---- receiving (Sections 5, 5.1, 13)

    def _reject(self, via, rid, frames, reason, detail=''):
        self.drops[reason] += 1
        self.rejected.append(Rejected(via, rid, frames, reason, detail))

    def _on_router(self, frames):
        rid = frames[0].bytes
        try:
            address = frames[-1].get('Peer-Address')
        except zmq.ZMQError:
            address = None
        key = fd = None
        if self.secure:
            try:
                key = frames[-1].get('User-Id')
                fd = frames[-1].get(zmq.SRCFD)
            except (zmq.ZMQError, AttributeError, ValueError):
                pass
        parts = [f.bytes for f in frames[1:]]
        if len(rid) != 17 or rid[0] != 0x01:
            return self._reject('router', rid, parts, 'bad-routing-id')
        if len(parts) != 1:
            return self._reject('router', rid, parts, 'malformed:frames', '%d frames' % len(parts))
        try:
            msg = decode(parts[0], self.strict_maps)
        except Malformed as err:
            reason = 'version' if err.rule == 'version' else 'malformed:' + err.rule
            return self._reject('router', rid, parts, reason, err.detail)
        inst = rid[1:].hex().upper()
        peer = self.peers.get(inst)
        self.received.append(Received(msg, inst, rid, 'router', address, time.monotonic(),
                                      peer is not None, key))
        if msg.notes:
            self.anomalies['non-shortest'] += 1
        if msg.kind == 'HELLO':
            return self._on_hello(msg, rid, inst, address, key, fd)
        if peer is None:
            return self._drop('unknown-peer')
        if self.secure and key != peer.key:     # Section 14.4: bound to the key it met with
            return self._drop('forged')
        peer.last_heard = time.monotonic()
        if self.relays:
            self._relay_heard(peer)
        getattr(self, '_on_' + msg.kind.lower().replace('-', '_'))(peer, msg)

    def _on_ping(self, peer, msg):
        self._send(peer, make('PONG', head=self.head))
        self._on_pong(peer, msg)

    def _on_ping_req(self, peer, msg):
        """Probe the target for the asker; PING-ACK once it speaks (Section 6.1)."""
        target = self.peers.get(msg['target'])
        self._on_pong(peer, msg)
        if target is None or target is peer:
            return
        self.relays.append((target.instance, peer.instance, msg.id,
                            time.monotonic() + self.timers['evasive']))
        self._send(target, make('PING', head=self.head))

    def _on_ping_ack(self, peer, msg):
        self._on_pong(peer, msg)    # this peer never asks others to probe

    def _relay_heard(self, peer):
        now = time.monotonic()
        keep = []
        for target, asker, request, until in self.relays:
            if target == peer.instance and asker in self.peers:
                self._send(self.peers[asker], make('PING-ACK', request=request, target=target,
                                                   head=self.head))
            elif until > now:
                keep.append((target, asker, request, until))
        self.relays = keep

    def _on_pong(self, peer, msg):
        peer.head = msg['head']
        self._observer_head(peer, msg['head'])

    def _on_bye(self, peer, msg):
        self._expire(peer, 'bye')

    def _on_error(self, peer, msg):
        self.errors.append(self.received[-1])
        if not msg['code']:
            self.anomalies['error-empty-code'] += 1
        request = msg['request']
        out = self.outbox.get(request)
        if out is not None and out.target == peer.instance and msg['code'] == 'forbidden':
            del self.outbox[request]        # every instance would refuse it (Section 14.4)
            self.command_results[request] = 'forbidden'
            out = None
        if out is not None and out.target == peer.instance:
            out.sent_at = time.monotonic()
            if msg['code'] == 'wrong-group':
                out.exclude.add(peer.instance)
                out.target = None
        fetch = self.fetches.get(request)
        if fetch is not None and fetch.instance == peer.instance and not fetch.done:
            fetch.error = msg
        for cursor in self.cursors.values():
            for seq, flight in list(cursor.inflight.items()):
                if flight[0] == peer.instance and self.log.get(seq) and self.log[seq].id == request:
                    self._rejected(cursor, seq)

    # ---- group member (Sections 7.2, 7.4, 11.4)

    def _on_event(self, peer, msg):
        if msg['instance'] != peer.instance:
            return self._drop('forged-event')
        if msg['service'] != peer.service:
            self.anomalies['event-service-differs'] += 1
        if (msg['group'] is None) != (msg['attempt'] == 0):
            self.anomalies['event-attempt-vs-group'] += 1
        if msg['group'] is None:
            return self._fetch_event(peer, msg)
        if self.secure and not (peer.cert and peer.cert.may_publish(msg['topic'])):
            return self._forbid(peer, msg, 'publish %s' % msg['topic'])
        if msg['group'] != self.service:
            return self._error(peer, msg, 'wrong-group')
        key = (msg['group'], msg['instance'], msg['seq'])
        if key in self.handled:
            return self._send(peer, make('EVENT-ACK', group=msg['group'], seq=msg['seq'], status=1))
        if key in self._handling:
            return self._drop('event-being-handled')
        self._handling[key] = msg
        self.events.append(msg)
        status = self._run_event_handler(msg)
        if status is not DEFER:
            self.ack_event(msg, status)

    def _run_event_handler(self, msg):
        if not any(msg['topic'].startswith(s[0]) for s in self.subscriptions):
            return 2
        if self.on_event is None:
            return 0
        try:
            return self.on_event(msg)
        except Exception:   # a failing handler is a rejection, never a crash
            return 2

    def ack_event(self, event, status):
        """Acknowledge a group delivery (used for DEFERred handlers); records it on status 0."""
        self.ack_events([event], status)

    def ack_events(self, events, status, extra=()):
        """Acknowledge DEFERred group deliveries of one publisher in one EVENT-ACK whose
        ``seqs`` lists all but the first, and the ``extra`` seqs after them (for a
        publisher whose HELLO says ``chorus.acks: lists``, Section 11.5)."""
        for event in events:
            key = (event['group'], event['instance'], event['seq'])
            self._handling.pop(key, None)
            if status == 0:
                self.handled.add(key)
        first = events[0]
        peer = self.peers.get(first['instance'])
        if peer is not None:
            self._send(peer, make('EVENT-ACK', group=first['group'], seq=first['seq'],
                                  status=status,
                                  seqs=[e['seq'] for e in events[1:]] + list(extra)))

    def _on_truncated(self, peer, msg):
        if (msg['request'] is None) == (msg['group'] is None) or msg['from'] > msg['to']:
            return self._error(peer, msg, 'bad-request')
        loss = (peer.instance, msg['from'], msg['to'], msg['message'], msg['request'], msg['group'])
        if msg['group'] is not None:
            if msg['group'] != self.service:
                return self._drop('truncated-other-group')
            self.losses.append(loss)
            return None
        fetch = self.fetches.get(msg['request'])
        if fetch is None or fetch.instance != peer.instance or fetch.done:
            return self._drop('truncated-unmatched')
        fetch.truncated.append(msg)
        self.losses.append(loss)
        if peer.instance in self.seen and msg['from'] <= self.seen[peer.instance] + 1:
            self._advance(peer.instance, msg['to'])
        return None

    # ---- command handler (Sections 7.4, 7.6)

    def handle(self, name, fn):
        """Register ``fn(command) -> payload bytes|None`` for command ``name``.

        Raise CommandError for REPLY status 1; return DEFER to answer later with reply_command.
        """
        self.command_handlers[name] = fn

    def _on_command(self, peer, msg):
        if msg['service'] != self.service:
            return self._error(peer, msg, 'wrong-group')
        if self.secure and not (peer.cert and peer.cert.may_call(msg['service'], msg['name'])):
            return self._forbid(peer, msg, 'call %s.%s' % (msg['service'], msg['name']))
        if msg['deadline'] and msg['deadline'] < now_ms():
            return self._drop('command-past-deadline')
        key = (peer.service, msg['idempotency'] if msg['idempotency'] is not None else msg.id)
        record = self._cmd_records.get(key)
        if record == 'running':
            return self._drop('command-being-handled')
        if record is not None:
            reply = make('REPLY', **dict(record, request=msg.id, correlation=msg['correlation']))
            return self._send(peer, reply)
        if msg['name'] not in self.command_handlers:
            return self._finish(key, peer.instance, msg, 1, None, 'unknown-command', None, False)
        self._cmd_records[key] = 'running'
        self._cmd_running[msg.id] = (key, peer.instance, msg)
        try:
            result = self.command_handlers[msg['name']](msg)
        except CommandError as err:
            return self.reply_command(msg, error=err)
        except Exception as err:     # an application failure is a REPLY, never a crash
            return self.reply_command(msg, error=CommandError('exception', str(err)[:4096], True))
        if result is not DEFER:
            self.reply_command(msg, payload=result)
        return None

    def reply_command(self, command, payload=None, error=None):
        """Answer a command (used for DEFERred handlers): success ``payload`` or CommandError."""
        key, instance, _ = self._cmd_running.pop(command.id)
        if error is None:
            return self._finish(key, instance, command, 0, payload, None, None, False)
        return self._finish(key, instance, command, 1, error.payload, error.code, error.message,
                            error.retryable)

    def _finish(self, key, instance, command, status, payload, code, message, retryable):
        fields = dict(timestamp=now_ms(), status=status, code=code, message=message,
                      retryable=retryable, payload=payload)
        if status == 1 and (retryable or code == 'unknown-command'):
            self._cmd_records.pop(key, None)
        else:
            self._cmd_records[key] = fields
        peer = self.peers.get(instance)
        if peer is not None:
            self._send(peer, make('REPLY', request=command.id,
                                  correlation=command['correlation'], **fields))

    # ---- command sender (Section 7.6)

    def send_command(self, service, name, payload=None, *, idempotency=None, deadline=0,
                     headers=None, correlation=None, causation=None, id=None):
        """Queue a COMMAND to ``service``; returns its id. Results land in ``replies``."""
        msg = make('COMMAND', id, service=service, name=name, idempotency=idempotency,
                   causation=causation, timestamp=now_ms(), deadline=deadline, attempt=0,
                   headers=headers, payload=payload)
        msg.fields['correlation'] = correlation if correlation is not None else msg.id
        encode(msg)
        self.outbox[msg.id] = _Outgoing(msg)
        self._dispatch_commands(time.monotonic())
        return msg.id

    def _choose_for_command(self, out, now):
        members = [p for p in self.peers.values() if p.service == out.msg['service']]
        allowed = [p for p in members if p.instance not in out.exclude]
        if not allowed and out.sent_at is not None and now - out.sent_at >= self.timers['retry']:
            out.exclude.clear()
            allowed = members
        if not allowed:
            return None
        load = collections.Counter(o.target for o in self.outbox.values())
        return min(allowed, key=lambda p: (now - p.last_heard >= self.timers['evasive'],
                                           load[p.instance], p.instance))

    def _dispatch_commands(self, now):
        for cid, out in list(self.outbox.items()):
            deadline = out.msg['deadline']
            if deadline and now_ms() > deadline:
                del self.outbox[cid]
                self.command_results[cid] = 'timeout'
                continue
            if out.target is None:
                peer = self._choose_for_command(out, now)
                if peer is None:
                    continue
                out.target = peer.instance
            elif now - out.sent_at < self.timers['retry']:
                continue
            out.msg.fields['attempt'] += 1
            out.sent_at = now
            self._send(self.peers[out.target], out.msg)

    def _on_reply(self, peer, msg):
        if msg['status'] not in (0, 1):
            return self._error(peer, msg, 'bad-request')
        if msg['status'] == 0 and (msg['code'] is not None or msg['message'] is not None
                                   or msg['retryable']):
            self.anomalies['reply-ok-with-error-fields'] += 1
        out = self.outbox.get(msg['request'])
        if out is None:
            return self._drop('reply-unmatched')
        if out.msg['service'] != peer.service:
            return self._drop('reply-forged')
        del self.outbox[msg['request']]
        self.replies[msg['request']] = msg
        self.command_results[msg['request']] = 'reply'
        return None

    # ---- publisher (Sections 7.1, 7.2, 7.3, 11.6)

    def publish(self, topic, payload=None, *, key=None, headers=None, correlation=None,
                causation=None, id=None, timestamp=None):
        """Append an event to the log, send it on PUB and schedule group deliveries."""
        if not self.keeps_log:
            raise RuntimeError('a node without a log must not publish')
        if self.certificate is not None and not self.certificate.may_publish(topic):
            raise PermissionError('certificate %s may not publish %s'
                                  % (self.certificate.name, topic))
        event = make('EVENT', id, service=self.service, instance=self.instance,
                     seq=self.head + 1, topic=topic, key=key, causation=causation,
                     timestamp=now_ms() if timestamp is None else timestamp, group=None,
                     attempt=0, headers=headers, payload=payload)
        event.fields['correlation'] = correlation if correlation is not None else event.id
        body = encode(event)
        self.head += 1
        self.log[self.head] = event
        self._send_on(self.pub, 'pub', [_utf8(topic), body], event)
        self._dirty = True
        self._pump(time.monotonic())
        return event

    def truncate_log(self, upto, message='retention: drop-oldest'):
        """Drop events up to seq ``upto`` as drop-oldest retention would, with TRUNCATED (7.3)."""
        removed = [s for s in sorted(self.log) if s <= upto]
        if not removed:
            return
        for cursor in self.cursors.values():
            lost = [s for s in removed if s not in cursor.acked and cursor.due(self.log[s])]
            for seq in lost:
                cursor.inflight.pop(seq, None)
                cursor.retry_at.pop(seq, None)
                cursor.acked.add(seq)
            if lost:
                cursor.truncated.append((lost[0], lost[-1], message))
        newest = max(self.log[s]['timestamp'] for s in removed)
        self._removed_newest_ts = max(newest, self._removed_newest_ts or 0)
        for seq in removed:
            del self.log[seq]
        self.earliest = max(self.earliest, upto + 1)
        self._dirty = True

    def members(self, group):
        """Live peers whose service is ``group``, sorted by instance id."""
        return sorted((p for p in self.peers.values() if p.service == group),
                      key=lambda p: p.instance)

    def _refresh_groups(self):
        if not self._dirty:
            return
        groups = {}
        for peer in self.peers.values():
            if peer.subscriptions:
                groups.setdefault(peer.service, []).append(peer)
        for name, instances in groups.items():
            subs, durable = {}, False
            for prefix, since, flags in (s for p in instances for s in p.subscriptions):
                subs[prefix] = min(subs.get(prefix, since), since)
                durable = durable or bool(flags & 1)
            cursor = self.cursors.get(name)
            if cursor is None:
                cursor = self.cursors[name] = _Cursor(name)
                self._truncated_at_meet(cursor, subs)
            if subs != cursor.subs:
                cursor.floor = 1
            cursor.subs, cursor.durable = subs, durable
        for name in list(self.cursors):
            if name not in groups and not self.cursors[name].durable:
                del self.cursors[name]

    def _truncated_at_meet(self, cursor, subs):
        newest = self._removed_newest_ts
        if newest is not None and any(since and newest >= since for since in subs.values()):
            cursor.truncated.append((1, self.earliest - 1, 'retention: removed before meeting'))

    def _pump(self, now):
        """Send what is due to every group with a live instance (Section 7.2)."""
        self._refresh_groups()
        self._dirty = False
        for cursor in self.cursors.values():
            members = self.members(cursor.name)
            if not members:
                continue
            for first, last, message in cursor.truncated:
                for peer in members:
                    self._send(peer, make('TRUNCATED', group=cursor.name, from_=first, to=last,
                                          message=message))
            cursor.truncated = []
            self._pump_group(cursor, members, now)

    def _pump_group(self, cursor, members, now):
        blocked, contiguous = set(), True
        credit = self.bounds['window'] - len(cursor.inflight)
        for seq in range(max(cursor.floor, self.earliest), self.head + 1):
            event = self.log.get(seq)
            if seq in cursor.acked or event is None or not cursor.due(event):
                if contiguous:
                    cursor.floor = seq + 1
                continue
            contiguous = False
            key = event['key']
            flight = cursor.inflight.get(seq)
            waiting = seq in cursor.retry_at and now < cursor.retry_at[seq]
            if flight is not None or waiting or (key is not None and key in blocked):
                if key is not None:
                    blocked.add(key)
                if flight is not None and now - flight[2] >= self.timers['ack']:
                    self._deliver(cursor, event, members)
                continue
            if credit > 0 and self._deliver(cursor, event, members):
                credit -= 1
            if key is not None:
                blocked.add(key)

    def _deliver(self, cursor, event, members):
        candidates = [p.instance for p in members if p.matches(event['topic'])]
        hash_key = _utf8(event['key']) if event['key'] is not None \
            else (self.instance + str(event['seq'])).encode()
        target = rendezvous(hash_key, candidates)
        if target is None:
            return False
        attempt = cursor.attempts.get(event['seq'], 0) + 1
        copy = event.replace(group=cursor.name, attempt=attempt)
        if not self._send(self.peers[target], copy):
            return False
        cursor.attempts[event['seq']] = attempt
        cursor.retry_at.pop(event['seq'], None)
        cursor.inflight[event['seq']] = [target, attempt, time.monotonic()]
        return True

    def _rejected(self, cursor, seq):
        attempt = cursor.inflight.pop(seq)[1]
        delay = min(self.timers['backoff'] * 2 ** (attempt - 1), self.timers['backoff_max'])
        cursor.retry_at[seq] = time.monotonic() + delay

    def _on_event_ack(self, peer, msg):
        if msg['status'] not in (0, 1, 2):
            return self._error(peer, msg, 'bad-request')
        cursor = self.cursors.get(msg['group'])
        # seq, then each of seqs, as if each came alone (Section 11.5)
        for seq in [msg['seq']] + list(msg.fields.get('seqs') or []):
            if cursor is None or seq not in cursor.inflight:
                self._drop('ack-not-in-flight')
            elif peer.service != msg['group']:
                self._drop('ack-forged')
            elif msg['status'] == 2:
                self._rejected(cursor, seq)
                self._dirty = True
            else:
                del cursor.inflight[seq]
                cursor.acked.add(seq)
                self._dirty = True
        return None

    def _on_fetch(self, peer, msg):
        if not self.keeps_log:
            return self._error(peer, msg, 'not-found')
        if msg['to'] != 0 and msg['from'] > msg['to']:
            return self._error(peer, msg, 'bad-request')
        first = max(msg['from'], 1)
        last = self.head if msg['to'] == 0 or msg['to'] > self.head else msg['to']
        limit = min(msg['limit'] or self.bounds['fetch_default'], self.bounds['fetch_cap'])
        prefix = msg['prefix'] or ''
        if first <= last and first < self.earliest:
            self._send(peer, make('TRUNCATED', request=msg.id, from_=first,
                                  to=min(last, self.earliest - 1), message='retention'))
        covered = last if first <= last else first - 1
        matching = [s for s in range(max(first, self.earliest), last + 1)
                    if s in self.log and self.log[s]['topic'].startswith(prefix)]
        for seq in matching[:limit]:
            self._send(peer, self.log[seq])
        if len(matching) > limit:
            covered = matching[limit - 1]
        self._send(peer, make('REPLAY', request=msg.id, from_=first, to=covered, head=self.head))
        return None

    # ---- observer (Sections 5, 7.5)

    def fetch(self, instance, from_=1, to=0, limit=0, prefix=None, _auto=False):
        """Send FETCH to a met publisher; returns the Fetch record kept in ``fetches``."""
        msg = make('FETCH', from_=from_, to=to, limit=limit, prefix=prefix)
        record = self.fetches[msg.id] = Fetch(msg, instance, time.monotonic(), _auto)
        self._send(self._peer(instance), msg)
        return record

    def _outstanding_fetch(self, instance):
        return next((f for f in self.fetches.values()
                     if f.instance == instance and not f.done), None)

    def _fetch_event(self, peer, msg):
        fetch = self._outstanding_fetch(peer.instance)
        if fetch is None:
            return self._drop('event-no-fetch')
        if self._passed_over(peer, msg):
            return None
        fetch.events.append(msg)
        if self.observe is not None:
            self._observe_event(peer, msg)
        return None

    def _on_replay(self, peer, msg):
        fetch = self.fetches.get(msg['request'])
        if fetch is None or fetch.instance != peer.instance or fetch.done:
            return self._drop('replay-unmatched')
        fetch.replay = msg
        if peer.instance in self.seen:
            self._advance(peer.instance, msg['to'])
        return None

    def _on_sub(self, peer, frames):
        try:
            msg = decode_pub(frames, self.strict_maps)
        except Malformed as err:
            reason = 'version' if err.rule == 'version' else 'malformed:' + err.rule
            return self._reject('sub', peer.instance, frames, reason, err.detail)
        self.received.append(Received(msg, peer.instance, None, 'sub', peer.pub_endpoint,
                                      time.monotonic(), True))
        if msg['group'] is not None:
            return self._drop('sub-event-with-group')
        if msg['instance'] != peer.instance:
            return self._drop('forged-event')
        self._observe_event(peer, msg)
        return None

    def _passed_over(self, peer, msg):
        """Section 14.4: an event its publisher's certificate does not allow counts as one
        of a topic not observed: its seq is seen, the event is not delivered."""
        if not self.secure or (peer.cert and peer.cert.may_publish(msg['topic'])):
            return False
        self._drop('forbidden-observed')
        if peer.instance in self.seen:
            self._got.setdefault(peer.instance, set()).add(msg['seq'])
            self._advance(peer.instance, self.seen[peer.instance])
        return True

    def _observe_event(self, peer, msg):
        inst, seq = peer.instance, msg['seq']
        got = self._got.setdefault(inst, set())
        seen = self.seen.setdefault(inst, 0)
        if seq <= seen or seq in got:
            self.drops['observer-duplicate'] += 1
            return
        if self._passed_over(peer, msg):
            if seq > seen + 1:
                self._want_range(inst, seq - 1)
            return
        self.observed.append(msg)
        got.add(seq)
        if seq > seen + 1:
            self._want_range(inst, seq - 1)
        self._advance(inst, seen)

    def _advance(self, inst, upto):
        seen = max(self.seen.get(inst, 0), upto)
        got = self._got.setdefault(inst, set())
        while seen + 1 in got:
            seen += 1
        self.seen[inst] = seen
        got.difference_update([s for s in got if s <= seen])

    def _want_range(self, inst, upto):
        current = self._wants.get(inst)
        self._wants[inst] = (max(upto, current[0]) if current else upto,
                             current[1] if current else time.monotonic())

    def _observer_head(self, peer, head):
        if self.observe is not None and head > self.seen.get(peer.instance, head):
            self._want_range(peer.instance, head)

    def _observer_tick(self, now):
        for fetch in self.fetches.values():
            late = now - fetch.sent_at >= self.timers['fetch_timeout']
            if fetch.auto and not fetch.done and late:
                fetch.error = 'timeout'
        for inst, (upto, since) in list(self._wants.items()):
            if inst not in self.peers or upto <= self.seen.get(inst, 0):
                del self._wants[inst]
            elif now - since >= self.timers['fetch_wait'] and not self._outstanding_fetch(inst):
                prefix = self.observe or None
                self.fetch(inst, self.seen[inst] + 1, upto, 0, prefix, _auto=True)


def run_until(predicate, timeout, peers):
    """Run several nodes in this thread until ``predicate()`` is true or ``timeout`` passes.

    Never sleeps blindly: it polls every node's receiving sockets, handles what
    arrived, and runs timers. Returns the final value of ``predicate()``.
    """
    end = time.monotonic() + timeout
    while True:
        for peer in peers:
            peer.drain()
            peer.tick()
        if predicate():
            return True
        left = end - time.monotonic()
        if left <= 0:
            return bool(predicate())
        poller = zmq.Poller()
        for peer in peers:
            for sock in peer.sockets():
                poller.register(sock, zmq.POLLIN)
        poller.poll(min(left, 0.02) * 1000)
