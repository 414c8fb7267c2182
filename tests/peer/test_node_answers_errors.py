#!/usr/bin/python3
"""Every ERROR the spec makes a MUST (section 13) comes back from a real node,
naming the message it answers, and nothing else does: no ERROR to an ERROR,
nothing at all to a stranger or to a routing id of the wrong form. An ERROR
owed to a peer met a moment ago, before the node's connection to it is up,
is kept until it is, not lost (the peer would wait for its timeout)."""

import time

import zmq

import chorus_peer as cp
import tools
from tap import done_testing, is_, ok

strict = cp.Peer('probe')
serve = tools.chorus('serve', 'svc', '--seed', strict.endpoint, '--store', tools.path('svc'),
                     '--handle', 'ok=echo 1', log='serve')
ok(strict.run_until(lambda: strict.members('svc'), 15), 'chorus serve meets the strict peer')
node = strict.members('svc')[0].instance if strict.members('svc') else None


def answer_to(msg, timeout=5):
    """Sends msg to the node; the ERROR that names it, or None."""
    strict.send(node, msg, check=False)
    found = strict.wait_for('ERROR', lambda m: m['request'] == msg.id, timeout=timeout)
    return found.msg if found else None


def expect(code, msg, what):
    error = answer_to(msg)
    ok(error is not None and error['code'] == code,
       '%s: ERROR %s naming it (%s)' % (what, code, error['code'] if error else 'none'))


now = cp.now_ms()
expect('bad-request', cp.make('FETCH', from_=5, to=3, limit=0), 'FETCH with from > to')
expect('bad-request', cp.make('EVENT-ACK', group='svc', seq=1, status=3),
       'EVENT-ACK with status 3')
expect('bad-request', cp.make('REPLY', request=cp.new_id(), correlation='c', timestamp=now,
                              status=2), 'REPLY with status 2')
expect('bad-request', cp.make('TRUNCATED', request=cp.new_id(), group='svc', from_=1, to=2),
       'TRUNCATED with both request and group')
expect('bad-request', cp.make('TRUNCATED', from_=1, to=2), 'TRUNCATED with neither')
expect('bad-request', cp.make('TRUNCATED', group='svc', from_=5, to=2), 'TRUNCATED with from > to')
expect('wrong-group', cp.make('EVENT', service='probe', instance=strict.instance, seq=1,
                              topic='x.y', correlation='c', timestamp=now, group='other',
                              attempt=1), 'EVENT for another group')
expect('wrong-group', cp.make('COMMAND', service='other', name='ok', correlation='c',
                              timestamp=now, deadline=0, attempt=1), 'COMMAND for another service')

#   What must not be answered
errors = len(strict.received_of('ERROR'))
strict.send(node, cp.make('ERROR', request=cp.new_id(), code='internal'))
strict.send(node, cp.make('REPLY', request=cp.new_id(), correlation='c', timestamp=now, status=0))
strict.send(node, cp.make('EVENT-ACK', group='svc', seq=99, status=0))
#   A PING after them: its PONG, on the same pipe, comes after any answer to them
pongs = len(strict.received_of('PONG'))
strict.send(node, cp.make('PING', head=0))
ok(strict.run_until(lambda: len(strict.received_of('PONG')) > pongs, 5), 'the node answers a PING')
is_(len(strict.received_of('ERROR')), errors,
    'no ERROR to an ERROR, to an unmatched REPLY, or to an EVENT-ACK for nothing in flight')

context = zmq.Context.instance()


def early_answers():
    """A fresh peer says HELLO, PING and a COMMAND for another service at
    once, before the node can have dialled it back; what comes back over the
    connection the node opens to it (within 5 s)."""
    listener = context.socket(zmq.ROUTER)
    listener.setsockopt(zmq.LINGER, 0)
    port = listener.bind_to_random_port('tcp://127.0.0.1')
    instance = cp.new_id()
    dealer = context.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.setsockopt(zmq.ROUTING_ID, b'\x01' + bytes.fromhex(instance))
    dealer.connect(strict.peers[node].endpoint)
    now = cp.now_ms()
    hello = cp.make('HELLO', service='early', instance=instance,
                    endpoint='tcp://127.0.0.1:%d' % port,
                    pub_endpoint='tcp://127.0.0.1:%d' % port, generation=1, head=0, peers=[],
                    subscriptions=[], topics=[],
                    headers={'chorus.started': str(now), 'chorus.mesh': strict.mesh})
    command = cp.make('COMMAND', service='other', name='ok', correlation='c', timestamp=now,
                      deadline=0, attempt=1)
    for msg in (hello, cp.make('PING', head=0), command):
        dealer.send(cp.encode(msg))
    heard = []
    end = time.monotonic() + 5
    while time.monotonic() < end and not ('ERROR' in heard and 'PONG' in heard):
        strict.run_until(lambda: False, 0)
        if listener.poll(50):
            msg = cp.decode(listener.recv_multipart()[-1])
            if msg.kind in ('HELLO', 'PONG') or (msg.kind == 'ERROR'
                                                 and msg['request'] == command.id
                                                 and msg['code'] == 'wrong-group'):
                heard.append(msg.kind)
    listener.close()
    dealer.close()
    return heard


early = [early_answers() for _ in range(3)]
ok(all('ERROR' in heard for heard in early),
   'a COMMAND for another service sent with the HELLO: ERROR wrong-group reaches the peer once '
   'the node has dialled it, 3 times of 3 (%s)' % ' '.join(','.join(h) for h in early))
ok(all(heard[:1] == ['HELLO'] and 'PONG' in heard for heard in early),
   'the node\'s HELLO first, and the PONG to the PING sent with them too')

#   Strangers: a routing id the node does not know, and one of the wrong form
listener = context.socket(zmq.ROUTER)
listener.setsockopt(zmq.LINGER, 0)
port = listener.bind_to_random_port('tcp://127.0.0.1')
endpoint = strict.peers[node].endpoint if node else ''
stranger = cp.new_id()
wrong_form = context.socket(zmq.DEALER)
wrong_form.setsockopt(zmq.LINGER, 0)
wrong_form.setsockopt(zmq.ROUTING_ID, b'\x02' + bytes.fromhex(stranger))
wrong_form.connect(endpoint)
hello = cp.make('HELLO', service='stranger', instance=stranger,
                endpoint='tcp://127.0.0.1:%d' % port, pub_endpoint='tcp://127.0.0.1:%d' % port,
                generation=1, head=0, peers=[], subscriptions=[], topics=[],
                headers={'chorus.started': str(now), 'chorus.mesh': strict.mesh})
wrong_form.send(cp.encode(hello))
unknown = context.socket(zmq.DEALER)
unknown.setsockopt(zmq.LINGER, 0)
unknown.setsockopt(zmq.ROUTING_ID, b'\x01' + bytes.fromhex(cp.new_id()))
unknown.connect(endpoint)
unknown.send(cp.encode(cp.make('PING', head=0)))
poller = zmq.Poller()
poller.register(listener, zmq.POLLIN)
end = time.monotonic() + 1.5
heard = False
while time.monotonic() < end and not heard:
    strict.run_until(lambda: False, 0.1)
    heard = bool(poller.poll(0))
ok(not heard, 'a HELLO on routing id 0x02 is dropped: the node never dials back')
is_(serve.poll(), None, 'and the node is still running')
for sock in (listener, wrong_form, unknown):
    sock.close()

is_(tools.stop(serve), 0, 'chorus serve stops with exit 0')
strict.close()
done_testing()
