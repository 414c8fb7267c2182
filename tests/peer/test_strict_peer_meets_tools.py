#!/usr/bin/python3
"""A peer written from the spec alone, dropping everything the spec says to
drop, works with `chorus publish`, `send`, `serve` and `on`: it is met when
it is their seed and when they are its seed (a node's first HELLO answers the
strict peer's, even when its connection was not up yet), gets every event and command,
and its own events and commands are handled; a REPLY with a status the spec
does not define is answered with ERROR bad-request and leaves the command
outstanding."""

import json

import msgpack

import chorus_peer as cp
import tools
from tap import diag, done_testing, is_, ok

#   Every drop reason that would mean our side broke the spec
BAD_DROPS = ('bad-routing-id', 'unknown-peer', 'hello-instance-mismatch', 'other-mesh',
             'forged-event', 'ack-forged', 'reply-forged', 'hello-empty-endpoint')


def spec_clean(peer, what):
    """Asserts the strict peer dropped nothing the tools should not have sent."""
    bad = {reason: count for reason, count in peer.drops.items()
           if reason in BAD_DROPS or reason.startswith('malformed')}
    ok(not bad, '%s: the strict peer dropped nothing of ours (%s)' % (what, bad or 'none'))
    for rejected in peer.rejected[:5]:
        diag('rejected: %s %s' % (rejected.reason, rejected.detail))


def finished(peer, proc, timeout):
    """Runs the peer until the process exits; its exit status, or None."""
    peer.run_until(lambda: proc.poll() is not None, timeout)
    return proc.poll()


def publish_to_strict_group():
    """`chorus publish` dials the strict group member as its seed."""
    ledger = cp.Peer('ledger', subscriptions=[('order.', 0, 1)], on_event=lambda msg: 0)
    lines = ''.join('{"order_id": "O-%d"}\n' % i for i in range(100))
    proc = tools.chorus('publish', 'order.placed', '--lines', '--key-field', 'order_id',
                        '--seed', ledger.endpoint, '--store', tools.path('shop'),
                        '--timeout', 20, '--settle', 300, stdin=lines, log='publish')
    status = finished(ledger, proc, 40)
    is_(status, 0, 'chorus publish to a strict group member exits 0')
    err = tools.text(proc.err)
    ok('delivered 100 events to ledger' in err, 'and says it delivered to ledger: %s' % err.strip())
    handled = {(g, i, s) for (g, i, s) in ledger.handled}
    is_(len(handled), 100, 'the strict member handled 100 distinct events')
    payloads = sorted(msgpack.unpackb(m['payload'])['order_id'] for m in ledger.events)
    is_(len(set(payloads)), 100, 'with the 100 orders as payloads')
    spec_clean(ledger, 'publish')
    ledger.close()


def send_to_strict_service():
    """`chorus send` meets a strict service through its seed and gets the reply;
    a REPLY with status 7 is refused and the command stays outstanding."""
    payments = cp.Peer('payments')
    payments.handle('charge', lambda cmd: msgpack.packb({'charged': msgpack.unpackb(
        cmd['payload'])['amount']}))
    proc = tools.chorus('send', 'payments', 'charge', '{"amount": 42}', '--seed',
                        payments.endpoint, '--timeout', 10, log='send')
    is_(finished(payments, proc, 30), 0, 'chorus send to a strict service exits 0')
    out = tools.text(proc.out)
    ok(json.loads(out or 'null') == {'charged': 42}, 'and prints its reply: %s' % out.strip())
    spec_clean(payments, 'send')

    held = []
    payments.handle('slow', lambda cmd: held.append(cmd) or cp.DEFER)
    proc = tools.chorus('send', 'payments', 'slow', '{}', '--seed', payments.endpoint,
                        '--timeout', 20, log='send-slow')
    ok(payments.run_until(lambda: held, 15), 'a second command reaches the strict service')
    if held:
        command = held[0]
        sender = next(iter(r.instance for r in payments.received if r.msg.id == command.id))
        bad = cp.make('REPLY', request=command.id, correlation=command['correlation'],
                      timestamp=cp.now_ms(), status=7)
        errors = len(payments.received_of('ERROR'))
        payments.send(sender, bad, check=False)
        error = payments.wait_for('ERROR', lambda m: m['request'] == bad.id, timeout=5)
        ok(error is not None and error.msg['code'] == 'bad-request',
           'a REPLY with status 7 is answered with ERROR bad-request')
        payments.run_for(0.5)
        ok(proc.poll() is None, 'and chorus send still waits for its reply')
        payments.reply_command(command, payload=msgpack.packb('done'))
        is_(finished(payments, proc, 20), 0, 'the real REPLY then ends it with exit 0')
        is_(tools.text(proc.out).strip(), '"done"', 'printing that reply')
        is_(len(payments.received_of('ERROR')), errors + 1,
            'and that ERROR is the only one the strict peer received')
    payments.close()


def strict_caller_to_serve():
    """The strict peer calls `chorus serve`, which dials it as its seed; a
    repeated idempotency key gets the recorded reply, the handler runs once."""
    caller = cp.Peer('shop')
    runs = tools.path('billed')
    serve = tools.chorus('serve', 'billing', '--seed', caller.endpoint, '--store',
                         tools.path('billing'), '--handle',
                         'bill=echo "$CHORUS_IDEMPOTENCY_KEY" >> %s; echo \'{"billed": true}\'' % runs,
                         log='serve')
    ok(caller.run_until(lambda: caller.members('billing'), 15), 'chorus serve meets the strict peer')
    first = caller.send_command('billing', 'bill', msgpack.packb({'order': 1}), idempotency='o-1')
    ok(caller.run_until(lambda: first in caller.replies, 10), 'the strict peer gets a reply')
    reply = caller.replies.get(first)
    ok(reply is not None and reply['status'] == 0
       and msgpack.unpackb(reply['payload']) == {'billed': True},
       'status 0 with the handler\'s JSON as MessagePack')
    second = caller.send_command('billing', 'bill', msgpack.packb({'order': 1}), idempotency='o-1')
    ok(caller.run_until(lambda: second in caller.replies, 10), 'a repeated key is answered too')
    is_(tools.lines('billed'), ['o-1'], 'and the handler ran once')
    spec_clean(caller, 'serve')
    is_(tools.stop(serve), 0, 'chorus serve stops on SIGTERM with exit 0')
    caller.close()


def strict_publisher_to_on():
    """`chorus on` dials the strict publisher as its seed, handles its events and
    acknowledges each one."""
    shop = cp.Peer('shop')
    handled = tools.path('shipped')
    on = tools.chorus('on', 'order.', '--group', 'shipping', '--seed', shop.endpoint, '--store',
                      tools.path('shipping'), '--exec', 'cat >> %s' % handled, log='on')
    ok(shop.run_until(lambda: shop.members('shipping'), 15), 'chorus on meets the strict publisher')
    for i in range(100):
        shop.publish('order.placed', msgpack.packb({'n': i}), key='k%d' % (i % 7))
    cursor = lambda: shop.cursors.get('shipping')
    ok(shop.run_until(lambda: cursor() and len(cursor().acked) >= 100, 30),
       'all 100 events acknowledged by the group')
    events = [json.loads(line) for line in tools.lines('shipped')]
    is_(sorted(e['payload']['n'] for e in events), list(range(100)), 'each handled once')
    ok(all(e['instance'] == shop.instance for e in events), 'named as the strict publisher\'s')
    spec_clean(shop, 'on')
    is_(tools.stop(on), 0, 'chorus on stops on SIGTERM with exit 0')
    shop.close()


def node_answers_hello():
    """Section 4.4 step 3: the HELLO a node sends on the DEALER it opens to
    answer a HELLO carries chorus.answers, even when the connection came up
    after the HELLO it answers, so that a node that dialled it under another
    name (a proxy, a host name) knows its seed answered."""
    node = tools.node_helper('--service', 'svc', log='answers')
    endpoint, instance = tools.ready(node)
    probe = cp.Peer('probe')
    dealer = probe.open_dealer(endpoint)
    hello = probe.hello_message()
    dealer.send(cp.encode(hello))
    ok(probe.run_until(lambda: instance in probe.peers, 10), 'the node answers a HELLO')
    answers = [(m['headers'] or {}).get('chorus.answers') for m in probe.received_of('HELLO', instance)]
    is_(answers[:1], [hello.id], "its first HELLO names the one it answers")
    probe.close()
    tools.stop(node)


node_answers_hello()
publish_to_strict_group()
send_to_strict_service()
strict_caller_to_serve()
strict_publisher_to_on()
done_testing()
