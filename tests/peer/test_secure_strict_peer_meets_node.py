#!/usr/bin/python3
"""Section 14 is enough to build a secure peer: the strict peer of tests/peer, written
from the spec alone, with its own CURVE sockets and ZAP handler, meets a secure C node
(tests/node_helper --cert --trust) and they exchange everything both ways: HELLO with
chorus.key, gossip as ENDPOINT@KEY (a second strict peer meets the first through it),
events to each other's groups, events observed on the node's PUB and fetched from its
log, commands each way with their replies."""

import os

import chorus_peer as cp
import tools
from tap import diag, done_testing, is_, ok

TRUST, KEYS = tools.path('trust'), tools.path('keys')
for directory in (TRUST, KEYS):
    os.mkdir(directory)
node_cert = cp.write_certificate(TRUST, 'payments', KEYS, service='payments',
                                 publish='payment.', call='shop.quote')
shop_cert = cp.write_certificate(TRUST, 'shop', KEYS, service='shop', publish='order.',
                                 call='payments.charge')
cp.write_certificate(TRUST, 'audit', KEYS, service='audit')
NODE_KEY = node_cert.public

NODE_SECRET = os.path.join(KEYS, 'payments.cert_secret')
node = tools.node_helper('--service', 'payments', '--cert', NODE_SECRET, '--trust', TRUST,
                         '--subscribe', 'order.', '--handle', 'charge',
                         '--topic', 'payment.done', '--publish', 3, '--wait-peers', 2,
                         '--call', 'shop.quote', '--log', tools.path('node.log'), log='node')
ENDPOINT, INSTANCE = tools.started(node, 'the secure node_helper starts')

quotes = []
shop = cp.Peer('shop', curve=os.path.join(KEYS, 'shop.cert_secret'), trust=TRUST,
               seeds=[ENDPOINT + '@payments'], subscriptions=[('payment.', 0, 1)], observe='')
shop.handle('quote', lambda command: quotes.append(command) or b'42')
peers = [shop]


def run_until(predicate, timeout=10):
    return cp.run_until(predicate, timeout, peers)


def log_lines(kind):
    return [l.split() for l in tools.lines('node.log') if l.startswith(kind + ' ')]


# ---------------------------------------------------------------- meeting
ok(run_until(lambda: INSTANCE in shop.peers), 'the strict secure peer and the C node meet')
hello = next((r for r in shop.received if r.msg.kind == 'HELLO' and r.instance == INSTANCE), None)
is_(hello and hello.msg['headers'].get('chorus.key'), NODE_KEY,
    'the node\'s HELLO carries chorus.key, its own public key')
is_(hello and hello.key, NODE_KEY, 'the key its connection was authenticated with (User-Id)')
listed = '%s@%s' % (shop.endpoint, shop.public_key)
ok(run_until(lambda: any(listed in m['peers'] for m in shop.received_of('HELLO', INSTANCE))),
   'the node\'s gossip lists the peer as ENDPOINT@KEY')

audit = cp.Peer('audit', curve=os.path.join(KEYS, 'audit.cert_secret'), trust=TRUST,
                seeds=[ENDPOINT + '@' + NODE_KEY])
peers.append(audit)
ok(run_until(lambda: INSTANCE in audit.peers and shop.instance in audit.peers),
   'a second strict peer, seeded with the node\'s Z85 key only, meets the first through '
   'the node\'s gossip')
ok(shop.instance in audit.peers and audit.peers[shop.instance].key == shop.public_key,
   'and knows it by its key')

# ---------------------------------------------------------------- events
from_node = lambda events: [m for m in events if m['instance'] == INSTANCE]
ok(run_until(lambda: len(from_node(shop.events)) >= 3),
   'the node\'s 3 events reach the peer\'s group over CURVE')
is_(sorted(m['seq'] for m in from_node(shop.events)), [1, 2, 3], 'each once, seq 1 to 3')
ok(run_until(lambda: len(from_node(shop.observed)) >= 3),
   'the peer observes them too')
is_([m['payload'] for m in from_node(shop.observed)], [b'x' * 16] * 3,
    'with their payloads intact')
ok([r for r in shop.received if r.via == 'sub' and r.instance == INSTANCE],
   'live on the node\'s PUB, through a CURVE SUB (the node published once both peers had met it)')
history = shop.fetch(INSTANCE, 1, 0)
ok(run_until(lambda: history.done), 'a FETCH of the node\'s log is answered')
is_([(m['seq'], m['payload']) for m in history.events], [(1, b'x' * 16), (2, b'x' * 16),
                                                          (3, b'x' * 16)],
    'with the 3 events, then REPLAY to %s' % (history.replay and history.replay['to']))
first = shop.publish('order.placed', b'one', key='k')
second = shop.publish('order.placed', b'two', key='k')
cursor = lambda: shop.cursors.get('payments')
ok(run_until(lambda: cursor() is not None and {first['seq'], second['seq']} <= cursor().acked),
   'the peer\'s 2 events reach the node\'s group and are acknowledged')
is_(sorted(int(l[2]) for l in log_lines('E') if l[1] == shop.instance),
    [first['seq'], second['seq']], 'the node\'s handler ran for each once')

# ---------------------------------------------------------------- commands
charge = shop.send_command('payments', 'charge', b'10', idempotency='shop-charge')
ok(run_until(lambda: shop.command_results.get(charge) == 'reply'),
   'the peer\'s COMMAND charge is answered')
reply = shop.replies.get(charge)
is_(reply and (reply['status'], reply['payload']), (0, INSTANCE.encode()),
    'REPLY status 0 with the handler\'s result')
ok(run_until(lambda: any(l[1] == 'call-1' for l in log_lines('R'))),
   'the node\'s COMMAND shop.quote is answered')
is_(len(quotes), 1, 'the peer\'s handler ran once')
is_([l[2] for l in log_lines('R') if l[1] == 'call-1'], ['0'], 'the node got REPLY status 0')

# ---------------------------------------------------------------- nothing amiss
for each in peers:
    suspect = {k: v for k, v in each.drops.items()
               if k.startswith(('malformed', 'forged', 'forbidden', 'hello-', 'gossip-',
                                'unknown-peer', 'version'))}
    is_(suspect, {}, '%s dropped nothing the node sent as forged, forbidden or malformed'
        % each.service)
    if each.anomalies:
        diag('%s anomalies: %r' % (each.service, dict(each.anomalies)))

for each in peers:
    each.close()
is_(tools.stop(node), 0, 'the node stops with exit 0')
done_testing()
