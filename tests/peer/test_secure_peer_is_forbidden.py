#!/usr/bin/python3
"""On a secure mesh a certificate says what its key may do (protocol sections 14.1,
14.4): a trusted peer whose certificate lacks `publish order.` gets ERROR forbidden for
an EVENT order.placed to the node's group, and the node's handler does not run; one
lacking `call payments.refund` gets ERROR forbidden for COMMAND refund, ends the command
at once, and the handler does not run. With the prefix or the command allowed, the same
messages are handled (the controls). And a node checks its own certificate: it does not
start as a service, nor publish a topic, that its certificate does not allow.

The node is tests/node_helper with --cert and --trust; the peers are the strict peer of
tests/peer/chorus_peer.py."""

import os

import chorus_peer as cp
import tools
from tap import diag, done_testing, is_, ok

TRUST, KEYS = tools.path('trust'), tools.path('keys')
for directory in (TRUST, KEYS):
    os.mkdir(directory)
node_cert = cp.write_certificate(TRUST, 'payments', KEYS, service='payments',
                                 publish='payment.')
till_cert = cp.write_certificate(TRUST, 'till', KEYS, service='shop', publish='invoice. shop.',
                                 call='payments.charge')
cp.write_certificate(TRUST, 'shop', KEYS, service='shop', publish='order. invoice.',
                     call='payments')
NODE_SECRET = os.path.join(KEYS, 'payments.cert_secret')

node = tools.node_helper('--service', 'payments', '--cert', NODE_SECRET, '--trust', TRUST,
                         '--subscribe', 'order.', '--handle', 'charge', '--handle', 'refund',
                         '--log', tools.path('node.log'), log='node')
ENDPOINT, INSTANCE = tools.started(node, 'the secure node_helper starts')
SEED = ENDPOINT + '@payments'

#   till's key is given as a bare pair, so that the strict peer does not hold it to its
#   own certificate (it would refuse to publish order.placed itself): the node must
till = cp.Peer('shop', curve=(till_cert.public, till_cert.secret), trust=TRUST, seeds=[SEED])
shop = cp.Peer('shop', curve=os.path.join(KEYS, 'shop.cert_secret'), trust=TRUST,
               seeds=[SEED])
peers = [till, shop]


def run_until(predicate, timeout=10):
    return cp.run_until(predicate, timeout, peers)


def log_lines(kind):
    return [l.split() for l in tools.lines('node.log') if l.startswith(kind + ' ')]


def error_for(who, request):
    return next((r.msg for r in who.errors if r.msg['request'] == request), None)


ok(run_until(lambda: INSTANCE in till.peers and INSTANCE in shop.peers),
   'both trusted peers meet the node')

# ---------------------------------------------------------------- publish

barred = till.publish('order.placed', b'not allowed', key='o-1')
ok(run_until(lambda: error_for(till, barred.id) is not None),
   'an EVENT order.placed from a key without publish order. is answered')
error = error_for(till, barred.id)
is_(error and error['code'], 'forbidden', 'with ERROR forbidden naming the event')
ok(error and 'till' in (error['message'] or ''),
   'whose message names the certificate (%r)' % (error and error['message']))
allowed = shop.publish('order.placed', b'allowed', key='o-2')
cursor = lambda: shop.cursors.get('payments')
ok(run_until(lambda: cursor() is not None and allowed['seq'] in cursor().acked),
   'the same EVENT from a key with publish order. is acknowledged (control)')
ok(any(l[1] == shop.instance for l in log_lines('E')), 'and the node\'s handler ran for it')
is_([l for l in log_lines('E') if l[1] == till.instance], [],
    'the node\'s handler never ran for the forbidden event')
ok('payments' in till.cursors and barred['seq'] not in till.cursors['payments'].acked,
   'the forbidden event was never acknowledged')

# ---------------------------------------------------------------- call

refund = till.send_command('payments', 'refund', b'1', idempotency='till-refund')
ok(run_until(lambda: refund in till.command_results),
   'a COMMAND refund from a key without call payments.refund is answered')
error = error_for(till, refund)
is_(error and error['code'], 'forbidden', 'with ERROR forbidden naming the command')
ok(error and 'till' in (error['message'] or ''),
   'whose message names the certificate (%r)' % (error and error['message']))
is_(till.command_results.get(refund), 'forbidden', 'the sender ends the command at once')
charge = till.send_command('payments', 'charge', b'1', idempotency='till-charge')
ok(run_until(lambda: till.command_results.get(charge) == 'reply'),
   'a COMMAND charge from the same key, with call payments.charge, is answered (control)')
reply = till.replies.get(charge)
is_(reply and reply['status'], 0, 'with REPLY status 0')
shop_refund = shop.send_command('payments', 'refund', b'1', idempotency='shop-refund')
ok(run_until(lambda: shop.command_results.get(shop_refund) == 'reply'),
   'a COMMAND refund from a key with call payments (every command) is answered (control)')
keys = [l[1] for l in log_lines('C')]
ok('till-charge' in keys and 'shop-refund' in keys, 'the node\'s log shows both allowed commands')
ok('till-refund' not in keys, 'and not the forbidden one: its handler never ran')

for each in peers:
    each.close()
is_(tools.stop(node), 0, 'the node stops with exit 0')

# ---------------------------------------------------------------- the node's own certificate

other = tools.node_helper('--service', 'shipping', '--cert', NODE_SECRET, '--trust', TRUST,
                          log='shipping')
is_(other.wait(timeout=15), 1,
    'a node does not start as shipping with a certificate for payments (exit 1)')
ok(not tools.ready(other, 0), 'it never says READY')
publisher = tools.node_helper('--service', 'payments', '--cert', NODE_SECRET, '--trust', TRUST,
                              '--topic', 'order.placed', '--publish', 1, log='publisher')
code = publisher.wait(timeout=15)
is_(code, 1, 'a node does not publish order.placed when its certificate allows payment. only')
ok('PUBLISHED' not in tools.text(publisher.out), 'nothing is published')
diag(tools.text(other.err).strip())
diag(tools.text(publisher.err).strip())
done_testing()
