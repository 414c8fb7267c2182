#!/usr/bin/python3
"""A secure node (protocol section 14) gives nothing to, and takes nothing from, whoever
its trust directory does not name: a peer with an unknown key and a plaintext peer each
try to observe its PUB, join a group, call a command and publish to its group, and get no
message in or out while trusted peers do all of it. And the key binds the identity
(14.4): a HELLO claiming a service the key's certificate does not allow, or a chorus.key
other than the key of the connection, is refused, and a known instance that comes back
with another key is refused until it has expired.

The node is tests/node_helper with --cert and --trust; the peers are the strict peer of
tests/peer/chorus_peer.py, written from the spec alone."""

import os
import time

import zmq

import chorus_peer as cp
import tools
from tap import diag, done_testing, is_, ok

TRUST, KEYS, ELSEWHERE = tools.path('trust'), tools.path('keys'), tools.path('untrusted')
for directory in (TRUST, KEYS, ELSEWHERE):
    os.mkdir(directory)


def cert(name, service, **limits):
    return cp.write_certificate(TRUST, name, KEYS, service=service, **limits)


node_cert = cert('payments', 'payments', publish='payment.')
for name, service in (('shop', 'shop'), ('watch', 'watch'), ('payer', 'payments'),
                      ('first', 'shop'), ('second', 'shop')):
    cert(name, service)
stranger_cert = cp.write_certificate(ELSEWHERE, 'stranger', ELSEWHERE, service='audit')
NODE_KEY = node_cert.public
EXPIRY = 3.0

NODE_SECRET = os.path.join(KEYS, 'payments.cert_secret')
node = tools.node_helper('--service', 'payments', '--cert', NODE_SECRET, '--trust', TRUST,
                         '--subscribe', 'order.', '--handle', 'charge',
                         '--topic', 'payment.done', '--publish', 10, '--wait-peers', 2,
                         '--heartbeat', '500,1500,%d' % (EXPIRY * 1000),
                         '--log', tools.path('node.log'), log='node')
ENDPOINT, INSTANCE = tools.started(node, 'the secure node_helper starts')
SEED = ENDPOINT + '@payments'
everyone = []       # the peers run together, so that each answers the node's PINGs


def peer(*args, **kwargs):
    made = cp.Peer(*args, **kwargs)
    everyone.append(made)
    return made


def run_until(predicate, timeout=10):
    return cp.run_until(predicate, timeout, everyone)


def secure(name, service, **kwargs):
    return peer(service, curve=os.path.join(KEYS, name + '.cert_secret'), trust=TRUST, **kwargs)


def log_lines(kind):
    return [l.split() for l in tools.lines('node.log') if l.startswith(kind + ' ')]


def node_said(text):
    """The lines of the node's stderr (where the library's messages go) that hold text."""
    return [line for line in tools.lines(node.err) if text in line]


# ---------------------------------------------------------------- strangers get nothing

#   A trusted observer first: it learns the node's PUB endpoint, and later shows
#   that the node did publish while the strangers were subscribed
watch = secure('watch', 'watch', seeds=[SEED], observe='')
ok(run_until(lambda: INSTANCE in watch.peers), 'a trusted observer meets the secure node')
PUB = watch.peers[INSTANCE].pub_endpoint if INSTANCE in watch.peers else ''


class Stranger:
    """A strict peer the node does not trust, trying everything: its seed HELLO (joining
    group audit, subscribed to payment.), and, at each attempt(), a DEALER of its own with
    HELLO, an EVENT order.placed to payments and a COMMAND charge queued, and a SUB on the
    node's PUB, all watched from before they connect."""

    def __init__(self, label, **security):
        self.label, self.secure = label, bool(security)
        self.peer = peer('audit', seeds=[ENDPOINT + ('@' + NODE_KEY if security else '')],
                         subscriptions=[('payment.', 0, 1)], **security)
        self.router = self.peer.watch(self.peer.router)
        self.key = 'attack-%s' % label.replace(' ', '-')
        self.subs, self.watches = [], []
        self.attempt()

    def attempt(self):
        server_key, curve = (NODE_KEY, None) if self.secure else (None, False)
        dealer, dealer_watch = self.peer.open_dealer(ENDPOINT, server_key=server_key,
                                                     curve=curve, watch=True)
        sub, sub_watch = self.peer.open_sub(PUB, '', server_key=server_key, curve=curve,
                                            watch=True)
        self.subs.append(sub)
        self.watches.append((dealer_watch, sub_watch))
        now = cp.now_ms()
        for msg in (self.peer.hello_message(),
                    cp.make('EVENT', service='audit', instance=self.peer.instance, seq=1,
                            topic='order.placed', correlation='c', timestamp=now,
                            group='payments', attempt=1, payload=b'attack'),
                    cp.make('COMMAND', service='payments', name='charge', idempotency=self.key,
                            correlation='c', timestamp=now, deadline=0, attempt=1)):
            dealer.send(cp.encode(msg), zmq.NOBLOCK)

    def refused(self):
        """True when the DEALER and the SUB of the latest attempt have failed a handshake."""
        return all(w.failures() >= 1 for w in self.watches[-1])

    def handshakes(self):
        return sum(w.handshakes() for pair in self.watches for w in pair)

    def sub_received(self):
        count = 0
        for sub in self.subs:
            while True:
                try:
                    sub.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                count += 1
        return count


unknown_pair = (stranger_cert.public, stranger_cert.secret)
unknown = Stranger('unknown key', curve=unknown_pair, trust={NODE_KEY: {}})
ok(run_until(unknown.refused),
   'unknown key: the node refuses the handshakes of its DEALER and of its SUB')
ok(run_until(lambda: node_said(stranger_cert.public)),
   'the node logs the refused key (section 14.2)')
ok(any('127.0.0.1' in line for line in node_said(stranger_cert.public)),
   'with the address it came from')
plain = Stranger('plaintext')
ok(run_until(plain.refused),
   'plaintext: the node refuses the handshakes of its DEALER and of its SUB')
strangers = (unknown, plain)

#   The second trusted peer makes the node publish: group payments' events to group
#   shop, and on PUB; it publishes and calls too
buyer = secure('shop', 'shop', seeds=[SEED], subscriptions=[('payment.', 0, 1)])
ok(run_until(lambda: INSTANCE in buyer.peers), 'a trusted peer meets the secure node')
buyer.publish('order.placed', b'order')
charge = buyer.send_command('payments', 'charge', b'1', idempotency='buyer-charge')


def node_published():
    return (len([m for m in watch.observed if m['instance'] == INSTANCE]) >= 10
            and len([m for m in buyer.events if m['instance'] == INSTANCE]) >= 10)


ok(run_until(node_published, 15),
   'the node publishes 10 events: the trusted observer sees them, the trusted group gets them')
ok(run_until(lambda: buyer.command_results.get(charge) == 'reply'
             and any(l[1] == buyer.instance for l in log_lines('E'))),
   'the trusted peer\'s event is handled and its command answered')
ok(any(l[1] == 'buyer-charge' for l in log_lines('C')), 'the node\'s log shows that command')
#   Still refused after all that: each stranger tries again, and fails again
for s in strangers:
    s.attempt()
ok(run_until(lambda: all(s.refused() for s in strangers)),
   'the strangers are still refused after the node has published')

for s in strangers:
    is_(s.handshakes(), 0, '%s: no handshake of its DEALER or SUB succeeded' % s.label)
    is_(s.sub_received(), 0, '%s: its SUB got no event while the node published' % s.label)
    is_(s.peer.peers, {}, '%s: it never met the node' % s.label)
    is_(len(s.peer.received), 0, '%s: its inbox got no message (0 in)' % s.label)
    ok('ACCEPTED' not in s.router.poll().names,
       '%s: the node never connected to it' % s.label)
    is_(len(s.peer.events), 0, '%s: no EVENT of group audit delivered to it' % s.label)
    is_([l for l in log_lines('C') if l[1] == s.key], [],
        '%s: the node\'s log shows no command of it' % s.label)
    is_([l for l in log_lines('E') if l[1] == s.peer.instance], [],
        '%s: the node\'s group handler ran for none of its events' % s.label)
for s in strangers:
    everyone.remove(s.peer)
    s.peer.close()

# ---------------------------------------------------------------- identity bound to the key

#   The key of payer may act only as payments. On one connection, in order: a HELLO as
#   shipping, a HELLO with another trusted key in chorus.key, each giving as its endpoint
#   a trap of its own, then a sound HELLO with payer's real endpoint. The node handles
#   them in order: had it accepted one of the first two, it would have dialled that
#   trap, and then dropped the sound HELLO (a known instance, another service or key).
payer = secure('payer', 'payments')
claims = payer.open_dealer(ENDPOINT, server_key=NODE_KEY)
_, trap_shipping, shipping_watch = payer.open_listener(watch=True)
_, trap_header, header_watch = payer.open_listener(watch=True)
as_shipping = payer.hello_message(service='shipping', endpoint=trap_shipping)
wrong_header = payer.hello_message(headers={'chorus.key': buyer.public_key},
                                   endpoint=trap_header)
sound = payer.hello_message()
for msg in (as_shipping, wrong_header, sound):
    claims.send(cp.encode(msg))
ok(run_until(lambda: INSTANCE in payer.peers),
   'a sound HELLO with the key of payer, service payments, is met (control)')
#   A dial to a trap would have been started before the node answered the sound
#   HELLO; a second lets a connection so started show
run_until(lambda: False, 1.0)
ok('ACCEPTED' not in shipping_watch.poll().names,
   'a HELLO as shipping from a key that may only be payments is refused: never answered')
ok('ACCEPTED' not in header_watch.poll().names,
   'a HELLO whose chorus.key is not the key of its connection is refused: never answered')

#   A known instance that comes back with another trusted key is refused while the
#   node still knows it; once it has expired, the new key is met like any other. The
#   control: one that comes back with its own key is met at once (a restart, 4.4).


def crash_and_return(name, key_name):
    """Instance I meets the node with key `name`, crashes, and comes back at once with
    key `key_name`; returns (the new peer, seconds from the crash to meeting again)."""
    before = secure(name, 'shop', seeds=[SEED])
    run_until(lambda: INSTANCE in before.peers)
    #   the node's probe of it, or its answer to one of ours (section 6.1)
    def probes():
        return len(before.received_of('PING', INSTANCE)) + len(before.received_of('PONG', INSTANCE))
    heard = probes()
    run_until(lambda: probes() > heard, 5)  # answered at once
    gone = time.monotonic()
    everyone.remove(before)
    before.close(bye=False)         # a crash: the node knows I until it expires
    after = secure(key_name, 'shop', instance=before.instance, seeds=[SEED],
                   timers={'pending': 0.25})
    run_until(lambda: INSTANCE in after.peers, EXPIRY + 10)
    met = next((r.at for r in after.received if r.msg.kind == 'HELLO'
                and r.instance == INSTANCE), None)
    return after, met and met - gone


_, delay = crash_and_return('first', 'first')
ok(delay is not None and delay < EXPIRY - 1.0,
   'instance I back with its own key is met at once, as a restart (%s s; control)' % (
       delay and '%.2f' % delay))
second, delay = crash_and_return('first', 'second')
ok(delay is not None, 'instance I back with key second is met once the node has expired it')
diag('met again %s s after it went silent (expiry %.1f s)' % (delay and '%.2f' % delay, EXPIRY))
ok(delay is not None and delay >= EXPIRY - 1.0,
   'not before: the node refused the new key while it still knew instance I')
tries = len([1 for target, msg in second.sent
             if isinstance(msg, cp.Message) and msg.kind == 'HELLO' and target == ENDPOINT])
ok(tries >= 3, 'though instance I said HELLO with it %d times meanwhile' % tries)

for each in list(everyone):
    each.close()
is_(tools.stop(node), 0, 'the node stops with exit 0')
done_testing()
