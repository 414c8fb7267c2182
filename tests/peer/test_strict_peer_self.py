#!/usr/bin/python3
"""Self-test of the strict peer: codec rules, Appendix A bytes, and two or three
peers meeting over loopback. Needs no part of the C project."""

import os
import sys
import uuid

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from chorus_peer import (BODY_LIMIT, SIGNATURE, CommandError, Ext, Malformed,  # noqa: E402
                         Peer, Raw, Str, decode, decode_beacon, encode, encode_beacon, make,
                         now_ms, pack, pairs)
from tap import diag, done_testing, is_, ok  # noqa: E402

ID = '3F2504E04F8911D39A0C0305E82C3301'
INST = 'A1B2C3D4E5F60718293A4B5C6D7E8F90'


# ---------------------------------------------------------------- codec

def samples():
    """One well-formed message of every type."""
    return [
        make('HELLO', ID, service='payments', instance=INST, endpoint='tcp://127.0.0.1:41000',
             pub_endpoint='tcp://127.0.0.1:41001', generation=3, head=70000,
             peers=['tcp://127.0.0.1:42000'], subscriptions=[('orders.', 0, 1), ('', 123, 0)],
             topics=['payment.'], headers={'chorus.started': '1700000000000',
                                           'chorus.mesh': 'default'}),
        make('PING', ID, head=1234,
             members=['alive 0 %s tcp://127.0.0.1:5670' % ('AB' * 16)]),
        make('PONG', ID, head=0, members=['suspect 3 %s tcp://10.0.0.2:5670' % ('CD' * 16)]),
        make('EVENT', ID, service='orders', instance=INST, seq=2 ** 64 - 1,
             topic='order.placed', key='o-1', correlation=ID, causation=None,
             timestamp=1700000000123, group='payments', attempt=1, headers={'a': ''},
             payload=b'\x81\xa2id\x01'),
        make('EVENT-ACK', ID, group='payments', seq=5, status=2, seqs=[6, 2 ** 40]),
        make('FETCH', ID, from_=1, to=0, limit=0, prefix=''),
        make('REPLAY', ID, request='R', from_=1, to=0, head=0),
        make('TRUNCATED', ID, request=None, group='payments', from_=1, to=9,
             message='retention'),
        make('COMMAND', ID, service='payments', name='charge', idempotency='flow/1',
             correlation='c' * 128, causation='x', timestamp=1, deadline=0, attempt=1,
             headers=None, payload=b'', try_=2),
        make('REPLY', ID, request='R', correlation='', timestamp=2, status=1,
             code='unknown-command', message='no handler', retryable=False, payload=None),
        make('ERROR', ID, request=None, code='bad-request', message=None),
        make('BYE', ID),
        make('PING-REQ', ID, target='EF' * 16, head=7, members=['dead 1 %s tcp://a:1' % ('AB' * 16)]),
        make('PING-ACK', ID, request='r', target='EF' * 16, head=7,
             members=['alive 2 %s tcp://a:2' % ('CD' * 16)]),
    ]


def as_list(msg):
    return [SIGNATURE, 1, msg.type, msg.id] + [
        [list(s) for s in v] if k == 'subscriptions' else v for k, v in msg.fields.items()]


def test_command_try_is_trailing():
    # try 1 is left out (14 elements), and absent it reads as 1
    msg = make('COMMAND', ID, service='payments', name='charge', correlation='c')
    body = encode(msg)
    is_(body[0], 0x9e, 'a COMMAND of try 1 leaves try out: 14 elements')
    is_(decode(body)['try'], 1, 'a COMMAND without try reads as try 1')
    is_(encode(msg.replace(try_=3))[0], 0x9f, 'a COMMAND of try 3 carries it: 15 elements')


def test_ack_seqs_are_trailing():
    # no seqs: left out (7 elements); some: carried (8); more than 1024: malformed
    msg = make('EVENT-ACK', ID, group='payments', seq=5, status=0)
    body = encode(msg)
    is_(body[0], 0x97, 'an EVENT-ACK without seqs leaves them out: 7 elements')
    is_(decode(body)['seqs'], [], 'an EVENT-ACK without seqs reads as none')
    is_(encode(msg.replace(seqs=[6, 7]))[0], 0x98, 'an EVENT-ACK with seqs carries them: 8')
    too_many = msgpack.packb([SIGNATURE, 1, 5, ID, 'payments', 5, 0, list(range(1025))])
    try:
        decode(too_many)
        ok(False, '1025 seqs are malformed')
    except Malformed:
        ok(True, '1025 seqs are malformed')


def test_round_trips():
    for msg in samples():
        body = encode(msg)
        is_(decode(body), msg, '%s round-trips' % msg.kind)
        is_(body, msgpack.packb(as_list(msg), use_bin_type=True),
            '%s uses the shortest forms (same bytes as msgpack)' % msg.kind)


def test_appendix_a():
    expected = bytes.fromhex(
        '95CDC405010 2D920 33463235303445303446383931314433394130433033303545383243333330 31CD04D2'
        .replace(' ', ''))
    body = encode(make('PING', ID, head=1234))
    is_(body, expected, 'Appendix A: PING body bytes')
    is_(len(body), 43, 'Appendix A: PING body is 43 bytes')
    pong = encode(make('PONG', ID, head=0))
    is_(pong[:6] + pong[-1:], b'\x95\xcd\xc4\x05\x01\x03\x00', 'Appendix A: PONG shape, head 00')
    beacon = bytes.fromhex('43484F013F2504E04F8911D39A0C0305E82C3301A028')
    is_(encode_beacon(ID, 41000), beacon, 'Appendix A: beacon bytes')
    is_(decode_beacon(beacon), (ID, 41000), 'beacon decodes')
    for bad in (beacon[:21], beacon + b'\x00', b'CHO\x02' + beacon[4:]):
        try:
            decode_beacon(bad)
            ok(False, 'bad beacon refused')
        except Malformed as err:
            is_(err.rule, 'beacon', 'bad beacon refused (%d bytes)' % len(bad))


def hdr(type_, id_=ID):
    return [SIGNATURE, 1, type_, id_]


def event_values(**over):
    fields = dict(service='o', instance=INST, seq=1, topic='t', key=None, correlation='c',
                  causation=None, timestamp=0, group=None, attempt=0, headers=None, payload=None)
    fields.update(over)
    return hdr(4) + list(fields.values())


def hello_values(**over):
    fields = dict(service='s', instance=INST, endpoint='tcp://h:1', pub_endpoint='tcp://h:2',
                  generation=1, head=0, peers=[], subscriptions=[], topics=[], headers=None)
    fields.update(over)
    return hdr(1) + list(fields.values())


def reply_values(**over):
    fields = dict(request='r', correlation='c', timestamp=0, status=0, code=None, message=None,
                  retryable=False, payload=None)
    fields.update(over)
    return hdr(10) + list(fields.values())


MALFORMED = [
    ('signature', pack([0xC406, 1, 2, ID, 0])),
    ('signature', pack([])),
    ('version', pack([SIGNATURE, 2, 2, ID, 0])),
    ('version', pack([SIGNATURE, 0, 2, ID, 0])),
    ('type', pack([SIGNATURE, 1, 0, ID])),
    ('type', pack([SIGNATURE, 1, 15, ID])),
    ('element-count', pack(hdr(2) + [0, [], 0])),
    ('element-count', pack([SIGNATURE, 1, 2])),
    ('element-count', pack(hdr(12) + [None])),
    ('trailing', pack(hdr(2) + [0]) + b'\xc0'),
    ('truncated', pack(hdr(2) + [1234])[:-1]),
    ('truncated', b''),
    ('not-array', pack({'a': 'b'})),
    ('not-array', pack(5)),
    ('nil', pack(hdr(2) + [None])),
    ('nil', pack([SIGNATURE, 1, 12, None])),
    ('negative', pack(hdr(2) + [-1])),
    ('negative', pack(hdr(2) + [Raw.int(-1, 64)])),
    ('family', pack(hdr(2) + [1.0])),
    ('family', pack(hdr(2) + [True])),
    ('family', pack(hdr(2) + [Ext(1, b'\x00')])),
    ('family', pack(hdr(2) + ['0'])),
    ('family', pack([SIGNATURE, 1, 2, ID.encode(), 0])),
    ('length', pack([SIGNATURE, 1, 12, ''])),
    ('length', pack([SIGNATURE, 1, 12, 'x' * 65])),
    ('reserved', pack(hdr(2) + [Raw(b'\xc1')])),
    ('family', pack(event_values(payload='text'))),
    ('family', pack(event_values(key=b'bin'))),
    ('family', pack(event_values(headers=[]))),
    ('length', pack(event_values(payload=b'x' * (1024 * 1024 + 1)))),
    ('length', pack(event_values(topic=''))),
    ('length', pack(event_values(topic='t' * 257))),
    ('charset', pack(event_values(topic='a b'))),
    ('charset', pack(event_values(topic='caf\u00e9'))),
    ('charset', pack(event_values(group='g\x7f'))),
    ('length', pack(event_values(correlation='c' * 129))),
    ('nil', pack(event_values(correlation=None))),
    ('nil', pack(event_values(attempt=None))),
    ('length', pack(event_values(headers={'k' * 65: 'v'}))),
    ('length', pack(event_values(headers={'': 'v'}))),
    ('length', pack(event_values(headers={'k': 'v' * 1025}))),
    ('length', pack(event_values(headers={'k%d' % i: '' for i in range(33)}))),
    ('family', pack(event_values(headers={1: 'v'}))),
    ('nil', pack(event_values(headers={'k': None}))),
    ('size', pack(event_values(payload=b'x' * BODY_LIMIT))),
    ('charset', pack(hello_values(service='a b'))),
    ('length', pack(hello_values(service='s' * 65))),
    ('nil', pack(hello_values(peers=None))),
    ('nil', pack(hello_values(peers=[None]))),
    ('length', pack(hello_values(peers=['']))),
    ('length', pack(hello_values(peers=['e'] * 257))),
    ('family', pack(hello_values(topics=[1]))),
    ('nesting', pack(hello_values(subscriptions=[['a', 0, [0]]]))),
    ('family', pack(hello_values(headers={'k': {'x': 'y'}}))),
    ('nesting', pack(hello_values(headers={'k': {'x': ['y']}}))),
    ('element-count', pack(hello_values(subscriptions=[['a', 0]]))),
    ('charset', pack(hello_values(subscriptions=[['a b', 0, 0]]))),
    ('negative', pack(hello_values(subscriptions=[['a', -1, 0]]))),
    ('count-exceeds-bytes', b'\xdd\xff\xff\xff\xff'),
    ('count-exceeds-bytes', pack(hello_values(peers=Raw(b'\xdd\x00\x10\x00\x00')))),
    ('count-exceeds-bytes', pack(event_values(headers=Raw(b'\xdf\x00\x10\x00\x00')))),
    ('nil', pack(hdr(5) + [None, 1, 0])),
    ('charset', pack(hdr(6) + [1, 0, 0, 'a b'])),
    ('nil', pack(hdr(7) + [None, 1, 0, 0])),
    ('nil', pack(reply_values(request=None))),
    ('nil', pack(reply_values(retryable=None))),
    ('family', pack(reply_values(retryable=0))),
    ('length', pack(reply_values(code='c' * 65))),
    ('nil', pack(hdr(11) + [None, None, None])),
    ('nil', pack(hdr(9) + ['s', 'n', None, 'c', None, 0, None, 1, None, None])),
]


def test_malformed():
    for rule, body in MALFORMED:
        try:
            msg = decode(body)
            ok(False, 'rejects (%s): decoded %r' % (rule, msg))
        except Malformed as err:
            is_(err.rule, rule, 'rejects %s (%s)' % (rule, err.detail[:60]))
    try:
        decode(pack(event_values(headers=pairs(('k', 'a'), ('k', 'b')))), strict_maps=True)
        ok(False, 'strict_maps rejects duplicate keys')
    except Malformed as err:
        is_(err.rule, 'duplicate-key', 'strict_maps rejects duplicate keys')


def test_accepted_forms():
    msg = decode(pack(hdr(2) + [Raw.uint(5, 64)]))
    is_(msg['head'], 5, 'uint 64 holding 5 is accepted')
    ok(msg.notes, 'and noted as not the shortest form')
    is_(decode(pack(hdr(2) + [Raw.int(5, 8)]))['head'], 5, 'int 8 holding 5 is accepted')
    is_(decode(pack(hdr(2) + [2 ** 64 - 1]))['head'], 2 ** 64 - 1, 'uint 64 maximum accepted')
    long_id = Raw(b'\xdb\x00\x00\x00\x20' + ID.encode())
    is_(decode(pack([SIGNATURE, 1, 12, long_id])).id, ID, 'str 32 id accepted')
    body = b'\xdd\x00\x00\x00\x05' + b''.join(pack(v) for v in hdr(2) + [7])
    is_(decode(body)['head'], 7, 'array 32 body accepted')
    is_(decode(pack(event_values(payload=Raw(b'\xc5\x00\x01x'))))['payload'], b'x',
        'bin 16 payload accepted')
    is_(decode(pack(event_values(headers=Raw(b'\xde\x00\x01\xa1k\xa1v'))))['headers'],
        {'k': 'v'}, 'map 16 headers accepted')
    msg = decode(pack(event_values(key='', correlation=Str(b'\xff\xfe'))))
    ok(msg['key'] == '' and msg['key'] is not None, 'empty str is a value, not nil')
    is_(encode(msg), pack(event_values(key='', correlation=Str(b'\xff\xfe'))),
        'non-UTF-8 str bytes survive decode and encode')
    is_(decode(pack(event_values(headers=pairs(('k', 'a'), ('k', 'b')))))['headers'],
        {'k': 'b'}, 'duplicate header key keeps the last value by default')
    is_(decode(pack(hdr(6) + [1, 0, 0, '']))['prefix'], '', 'empty FETCH prefix accepted')
    ok(decode(pack(hdr(6) + [1, 0, 0, None]))['prefix'] is None, 'nil FETCH prefix accepted')


def test_encode_checks():
    for name, msg in (('NAME with a space', make('EVENT-ACK', group='a b')),
                      ('empty id', make('BYE', '')),
                      ('bin where str expected', make('ERROR', code=b'x')),
                      ('negative uint', make('PING', head=-1))):
        try:
            encode(msg)
            ok(False, 'encode refuses ' + name)
        except Malformed:
            ok(True, 'encode refuses ' + name)
    raw = encode(make('PING', head=-1), check=False)
    is_(raw[-2:], b'\xff\x90', 'encode(check=False) packs a bad value as given')


# ---------------------------------------------------------------- live peers

def test_live():
    mesh = 'selftest-' + uuid.uuid4().hex[:8]
    alpha = Peer('alpha', mesh=mesh, topics=['orders.'])
    beta = Peer('beta', mesh=mesh, seeds=[alpha.endpoint], subscriptions=[('orders.', 0, 1)])
    both = [beta]
    try:
        meet(alpha, beta, both)
        group_events(alpha, beta, both)
        commands(alpha, beta, both)
        fetches(alpha, beta, both)
        drops(alpha, beta, both, mesh)
        observer(alpha, beta, mesh)
        liveness_and_bye(alpha, beta, both)
    finally:
        alpha.close()
        beta.close()


def meet(alpha, beta, both):
    ok(alpha.run_until(lambda: beta.instance in alpha.peers and alpha.instance in beta.peers,
                       5, both), 'two peers meet through a seed')
    first = next(r for r in alpha.received if r.msg.kind == 'HELLO')
    is_(first.rid, b'\x01' + bytes.fromhex(beta.instance), 'DEALER routing id is 01 + instance')
    headers = first.msg['headers']
    ok('chorus.started' in headers and headers['chorus.mesh'] == alpha.mesh,
       'HELLO carries chorus.started and chorus.mesh')
    answer = beta.received_of('HELLO', alpha.instance)[0]
    is_(answer['headers'].get('chorus.answers'), first.msg.id,
        'the answering HELLO names the seed HELLO in chorus.answers')
    ok(beta._seeds[alpha.endpoint]['met'] == alpha.instance, 'the seed is marked answered')
    ok(alpha.run_until(lambda: alpha.peers[beta.instance].peers == [alpha.endpoint], 3, both),
       'HELLO.peers lists the other side once met')


def group_events(alpha, beta, both):
    tries = {}

    def handler(event):
        tries[event['seq']] = tries.get(event['seq'], 0) + 1
        return 2 if event['topic'] == 'orders.flaky' and tries[event['seq']] == 1 else 0
    beta.on_event = handler
    event = alpha.publish('orders.placed', b'\x81\xa2id\x01', key='o-1')
    ok(alpha.run_until(lambda: 'beta' in alpha.cursors and 1 in alpha.cursors['beta'].acked,
                       5, both), 'event delivered and acknowledged')
    got = beta.received_of('EVENT', alpha.instance)[0]
    is_((got['group'], got['attempt'], got.id), ('beta', 1, event.id), 'group delivery fields')
    ack = alpha.received_of('EVENT-ACK', beta.instance)[0]
    is_((ack['group'], ack['seq'], ack['status']), ('beta', 1, 0), 'EVENT-ACK status 0')
    start = len(alpha.received)
    alpha.send(beta.instance, event.replace(group='beta', attempt=2))
    rec = alpha.wait_for('EVENT-ACK', lambda m: m['seq'] == 1, 5, both, start)
    is_(rec and rec.msg['status'], 1, 'a redelivered handled event is acknowledged as duplicate')
    is_(len(beta.events), 1, 'and its handler is not run again')
    alpha.publish('stock.moved')
    flaky = alpha.publish('orders.flaky')
    ok(alpha.run_until(lambda: flaky['seq'] in alpha.cursors['beta'].acked, 5, both),
       'a rejected event is redelivered after the backoff and then handled')
    attempts = [m['attempt'] for m in beta.received_of('EVENT') if m['seq'] == flaky['seq']]
    is_(attempts, [1, 2], 'the redelivery carries attempt + 1')
    ok(all(m['topic'] != 'stock.moved' for m in beta.received_of('EVENT')),
       'an event not due to the group is not delivered')


def commands(alpha, beta, both):
    count = []
    alpha.handle('echo', lambda c: c['payload'])
    alpha.handle('count', lambda c: count.append(1) or str(len(count)).encode())

    def fail(command):
        raise CommandError('boom', 'it failed', False)
    alpha.handle('fail', fail)
    ids = [beta.send_command('alpha', 'echo', b'hi'), beta.send_command('alpha', 'nope'),
           beta.send_command('alpha', 'fail'), beta.send_command('alpha', 'count', idempotency='k'),
           beta.send_command('alpha', 'count', idempotency='k')]
    ok(beta.run_until(lambda: all(i in beta.replies for i in ids), 5, [alpha]), 'replies arrive')
    echo, nope, failed, first, second = (beta.replies[i] for i in ids)
    is_((echo['status'], echo['payload'], echo['correlation'], echo['code']),
        (0, b'hi', ids[0], None), 'REPLY status 0 with the result and the correlation')
    is_((nope['status'], nope['code'], nope['retryable']), (1, 'unknown-command', False),
        'unknown command: REPLY status 1 unknown-command, not retryable')
    is_((failed['status'], failed['code'], failed['message']), (1, 'boom', 'it failed'),
        'handler error: REPLY status 1 with its code')
    is_((len(count), first['payload'], second['payload']), (1, b'1', b'1'),
        'same idempotency key: handler runs once, recorded reply sent again')
    is_(second['request'], ids[4], 'the recorded reply answers the new command id')
    wrong = make('COMMAND', service='gamma', name='echo', correlation='c', timestamp=now_ms(),
                 attempt=1)
    beta.send(alpha.instance, wrong)
    rec = beta.wait_for('ERROR', lambda m: m['request'] == wrong.id, 5, [alpha])
    is_(rec and rec.msg['code'], 'wrong-group', 'COMMAND to another service: ERROR wrong-group')
    late = make('COMMAND', service='alpha', name='echo', correlation='c', timestamp=1,
                deadline=1, attempt=1)
    beta.send(alpha.instance, late)
    ok(alpha.run_until(lambda: alpha.drops['command-past-deadline'] == 1, 3, both),
       'COMMAND past its deadline is dropped and counted')


def fetches(alpha, beta, both):
    whole = beta.fetch(alpha.instance, 1)
    ok(beta.run_until(lambda: whole.done, 5, [alpha]), 'FETCH answered')
    is_([e['seq'] for e in whole.events], list(range(1, alpha.head + 1)), 'all events replayed')
    ok(all(e['group'] is None and e['attempt'] == 0 for e in whole.events),
       'FETCH answers carry group nil and attempt 0')
    is_((whole.replay['from'], whole.replay['to'], whole.replay['head']),
        (1, alpha.head, alpha.head), 'REPLAY covers the range')
    bad = beta.fetch(alpha.instance, 5, 3)
    beta.run_until(lambda: bad.done, 5, [alpha])
    is_(bad.error and bad.error['code'], 'bad-request', 'FETCH from > to: ERROR bad-request')
    cut = beta.fetch(alpha.instance, 1, 0, 1, 'orders.')
    beta.run_until(lambda: cut.done, 5, [alpha])
    is_(([e['seq'] for e in cut.events], cut.replay['to']), ([1], 1),
        'limit cuts the answer short and REPLAY.to is the last event sent')
    alpha.truncate_log(1)
    lost = beta.fetch(alpha.instance, 0)
    beta.run_until(lambda: lost.done, 5, [alpha])
    tr = lost.truncated and lost.truncated[0]
    is_(tr and (tr['request'], tr['group'], tr['from'], tr['to']), (lost.msg.id, None, 1, 1),
        'FETCH below the retained log: TRUNCATED first')
    is_(([e['seq'] for e in lost.events], lost.replay['from'], lost.replay['to']),
        (list(range(2, alpha.head + 1)), 1, alpha.head), 'then the retained events and REPLAY')
    empty = beta.fetch(alpha.instance, alpha.head + 5)
    beta.run_until(lambda: empty.done, 5, [alpha])
    is_((empty.events, empty.replay['to']), ([], alpha.head + 4), 'from > head: REPLAY to from - 1')


def raw_hello(peer, instance, mesh, **over):
    fields = dict(service='intruder', instance=instance, endpoint='tcp://127.0.0.1:1',
                  pub_endpoint='tcp://127.0.0.1:2', generation=1,
                  headers={'chorus.started': '1', 'chorus.mesh': mesh})
    fields.update(over)
    return encode(make('HELLO', **fields))


def drops(alpha, beta, both, mesh):
    before = alpha.drops.copy()
    beta.send_raw(alpha.instance, pack([0xC406, 1, 2, ID, 0]))
    beta.send_raw(alpha.instance, pack([SIGNATURE, 2, 2, ID, 0]))
    beta.send_frames(alpha.instance, [encode(make('PING')), b''])
    stranger = uuid.uuid4().hex.upper()
    beta.open_dealer(alpha.endpoint, b'\x02' + bytes(16)).send(encode(make('PING')))
    beta.open_dealer(alpha.endpoint, b'\x01abc').send(encode(make('PING')))
    beta.open_dealer(alpha.endpoint, b'\x01' + bytes.fromhex(stranger)).send(encode(make('PING')))
    other = uuid.uuid4().hex.upper()
    beta.open_dealer(alpha.endpoint, b'\x01' + bytes.fromhex(other)).send(
        raw_hello(alpha, other, 'another-mesh'))
    third = uuid.uuid4().hex.upper()
    beta.open_dealer(alpha.endpoint, b'\x01' + bytes.fromhex(third)).send_multipart(
        [raw_hello(alpha, other, mesh)])
    fourth = uuid.uuid4().hex.upper()
    beta.open_dealer(alpha.endpoint, b'\x01' + bytes.fromhex(fourth)).send(
        raw_hello(alpha, fourth.lower(), mesh))
    beta.send(alpha.instance, make('EVENT', service='beta', instance=alpha.instance, seq=1,
                                   topic='t', correlation='c', group='alpha', attempt=1))
    expect = {'malformed:signature': 1, 'version': 1, 'malformed:frames': 1, 'bad-routing-id': 2,
              'unknown-peer': 1, 'other-mesh': 1, 'hello-instance-mismatch': 2, 'forged-event': 1}
    alpha.run_until(lambda: all(alpha.drops[k] - before[k] >= n for k, n in expect.items()),
                    5, both)
    for reason, n in sorted(expect.items()):
        is_(alpha.drops[reason] - before[reason], n, 'dropped and counted: ' + reason)
    ok(len(alpha.peers) == 1, 'no stranger became a peer')
    for name, msg in (('EVENT-ACK status 7', make('EVENT-ACK', group='beta', seq=1, status=7)),
                      ('REPLY status 2', make('REPLY', request='r', correlation='c', status=2)),
                      ('TRUNCATED with request and group',
                       make('TRUNCATED', request='r', group='alpha', from_=1, to=1)),
                      ('TRUNCATED with from > to',
                       make('TRUNCATED', group='alpha', from_=2, to=1))):
        beta.send(alpha.instance, msg)
        rec = beta.wait_for('ERROR', lambda m, i=msg.id: m['request'] == i, 5, [alpha])
        is_(rec and rec.msg['code'], 'bad-request', name + ': ERROR bad-request')
    errors_before = len(beta.received_of('ERROR'))
    beta.send(alpha.instance, make('ERROR', request='x', code='bad-request'))
    alpha.run_for(0.2, both)
    is_(len(beta.received_of('ERROR')), errors_before, 'an ERROR is never answered')


def observer(alpha, beta, mesh):
    watcher = Peer('watcher', mesh=mesh, seeds=[beta.endpoint], observe='')
    peers = [alpha, beta]
    try:
        ok(watcher.run_until(lambda: alpha.instance in watcher.peers and
                             beta.instance in watcher.peers, 5, peers),
           'a third peer meets both through one seed and gossip')
        ok(watcher.run_until(lambda: watcher.seen.get(alpha.instance) == alpha.head, 5, peers),
           'the observer reads the history by FETCH')
        is_([l[1:3] for l in watcher.losses if l[0] == alpha.instance], [(1, 1)],
            'and reports the truncated part as lost')
        live = alpha.publish('orders.live')
        ok(watcher.run_until(lambda: watcher.seen.get(alpha.instance) == live['seq'], 5, peers),
           'a new event arrives on SUB')
        via = [r.via for r in watcher.received if r.msg.kind == 'EVENT' and r.msg.id == live.id]
        ok('sub' in via, 'it came over the SUB socket as two frames')
        is_(sorted(e['seq'] for e in watcher.observed if e['instance'] == alpha.instance),
            list(range(2, alpha.head + 1)), 'the observer saw each retained event once')
    finally:
        watcher.close()
    ok(alpha.run_until(lambda: watcher.instance not in alpha.peers and
                       watcher.instance not in beta.peers, 3, [beta]), 'BYE expires the sender')
    is_(alpha.expired[-1], (watcher.instance, 'bye'), 'expiry reason recorded')


def liveness_and_bye(alpha, beta, both):
    start = len(alpha.received)
    alpha.run_for(2.5, both)
    pings = [r for r in alpha.received[start:] if r.msg.kind in ('PING', 'PONG')]
    ok(pings, 'PING and PONG flow while nothing else does')
    ok(beta.instance in alpha.peers and alpha.instance in beta.peers, 'both stay alive')
    diag('drops at alpha: %s' % dict(alpha.drops))
    diag('anomalies at alpha: %s, beta: %s' % (dict(alpha.anomalies), dict(beta.anomalies)))


def test_restart_and_silence():
    mesh = 'selftest-' + uuid.uuid4().hex[:8]
    quick = dict(ping=0.2, evasive=0.6, expire=1.0, pending=1.0)
    one = Peer('one', mesh=mesh, timers=quick)
    two = Peer('two', mesh=mesh, seeds=[one.endpoint], timers=quick)
    try:
        ok(one.run_until(lambda: two.instance in one.peers, 5, [two]), 'short-timer pair meets')
        two.close(bye=False)
        one.run_for(0.05)
        again = Peer('two', mesh=mesh, instance=two.instance, seeds=[one.endpoint], timers=quick)
        try:
            ok(one.run_until(lambda: (two.instance, 'restarted') in one.expired and
                             one.instance in again.peers, 3, [again]),
               'a new chorus.started for a known instance is a restart')
            ok(two.instance in one.peers, 'and the restarted instance is met again')
        finally:
            again.close(bye=False)
        ok(one.run_until(lambda: (two.instance, 'silent') in one.expired, 3),
           'a silent peer expires after the expiry time')
    finally:
        one.close()


def main():
    test_round_trips()
    test_command_try_is_trailing()
    test_ack_seqs_are_trailing()
    test_appendix_a()
    test_malformed()
    test_accepted_forms()
    test_encode_checks()
    test_live()
    test_restart_and_silence()
    done_testing()


if __name__ == '__main__':
    main()
