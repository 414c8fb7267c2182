#!/usr/bin/python3
"""A hostile peer cannot crash a node, exhaust it, or erase another node's
events. Against a real `chorus on` node, over real sockets: a flood of 5,000
HELLOs from distinct ids, frames of 200 MB to its inbox and to its PUB, and a
peer that sends events in a real publisher's name, to the group and to an
observer. After each attack the node is alive, its peak resident memory is
under 200 MB, and it still delivers 100 of 100 real events."""

import json
import os
import resource
import time

import msgpack
import zmq

import chorus_peer as cp
import tools
from tap import diag, done_testing, is_, ok, skip

RSS_BOUND_KIB = 200 * 1024
SANITIZED = 'ASAN_OPTIONS' in os.environ     # memory figures are the sanitizer's then
FLOOD = 5000
BIG = 200 * 1024 * 1024

#   Each flooding connection costs the test and the node a descriptor or two
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
wanted = 3 * FLOOD + 1024
if soft < wanted:
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    soft = min(wanted, hard)
if soft < wanted:
    FLOOD = max(100, (soft - 1024) // 3)
    diag('only %d file descriptors: the flood uses %d ids' % (soft, FLOOD))

context = zmq.Context()
context.max_sockets = 2 * FLOOD + 100

#   The node and the real publisher each have the other as a seed
node_endpoint = 'tcp://127.0.0.1:%d' % tools.free_port()
shop = cp.Peer('shop', seeds=[node_endpoint], context=context)
handled = tools.path('handled')
node = tools.chorus('on', 'order.', '--group', 'billing', '--listen', node_endpoint, '--seed',
                    shop.endpoint, '--store', tools.path('billing'), '--exec',
                    'cat >> %s' % handled, log='on')
ok(shop.run_until(lambda: shop.members('billing'), 15), 'the node joins the real publisher')
member = shop.members('billing')[0] if shop.members('billing') else None


def delivered(label):
    """The publisher publishes 100 events; how many of them the node handled."""
    return tools.delivered(shop, label)


def peak():
    return tools.memory(node.pid)[1] if node.poll() is None else 0


def survived(attack, before):
    """The node is alive, within its memory bound, and delivers 100 of 100."""
    alive = node.poll() is None
    ok(alive, '%s: the node is alive' % attack)
    high = peak()
    if SANITIZED:
        skip('%s: peak RSS under 200 MB' % attack,
             'AddressSanitizer\'s shadow memory and quarantine make it %.0f MB' % (high / 1024))
    else:
        ok(alive and high < RSS_BOUND_KIB, '%s: peak RSS %.0f MB (%.0f MB before), under 200 MB'
           % (attack, high / 1024, before / 1024))
    count = delivered(attack.split()[0]) if alive else 0
    is_(count, 100, '%s: then 100 of 100 real events delivered' % attack)
    diag('%s: peak RSS %.0f MB, delivered %d/100' % (attack, high / 1024, count))


is_(delivered('baseline'), 100, 'before any attack, 100 of 100 events delivered')
baseline = peak()
diag('baseline peak RSS %.0f MB' % (baseline / 1024))


def hello_flood():
    """FLOOD distinct ids say HELLO at once and stay connected, each listing 256
    endpoints to gossip; the real publisher goes on publishing meanwhile."""
    sink = context.socket(zmq.ROUTER)     # where the fakes say they listen; never read
    sink.setsockopt(zmq.LINGER, 0)
    sink_port = sink.bind_to_random_port('tcp://127.0.0.1')
    gossip = ['tcp://127.0.0.1:%d' % port for port in range(1, 257)]
    fakes = []
    #   The member's inbox, taken once: busy with the flood, it may fall
    #   silent long enough for our own peer table to let it go
    inbox = shop.peers[member.instance].endpoint
    started = time.monotonic()
    for i in range(FLOOD):
        fake = cp.new_id()
        dealer = context.socket(zmq.DEALER)
        dealer.setsockopt(zmq.LINGER, 0)
        dealer.setsockopt(zmq.ROUTING_ID, b'\x01' + bytes.fromhex(fake))
        dealer.connect(inbox)
        hello = cp.make('HELLO', service='flood%d' % (i % 50), instance=fake,
                        endpoint='tcp://127.0.0.1:%d' % sink_port,
                        pub_endpoint='tcp://127.0.0.1:%d' % sink_port, generation=1, head=0,
                        peers=gossip, subscriptions=[['order.', 0, 1]], topics=[],
                        headers={'chorus.started': str(cp.now_ms()), 'chorus.mesh': shop.mesh})
        dealer.send(cp.encode(hello))
        fakes.append(dealer)
        if i % 250 == 0:
            shop.run_for(0.01)
    diag('%d HELLOs sent in %.1f s' % (FLOOD, time.monotonic() - started))
    during = delivered('flood-during')
    is_(during, 100, 'during the flood, 100 of 100 real events delivered')
    shop.run_for(3)
    for dealer in fakes:
        dealer.close()
    sink.close()
    survived('HELLO flood of %d ids' % FLOOD, baseline)


def big_frames():
    """Five frames of 200 MB to the inbox, five to the PUB."""
    before = peak()
    #   Not a subscription (first byte 2): the attacker's own XSUB would keep one
    blob = b'\x02' + os.urandom(1024) * (BIG // 1024)
    inbox = context.socket(zmq.DEALER)
    inbox.setsockopt(zmq.ROUTING_ID, b'\x01' + bytes.fromhex(cp.new_id()))
    pub = context.socket(zmq.XSUB)
    for sock, endpoint in ((inbox, shop.peers[member.instance].endpoint),
                           (pub, shop.peers[member.instance].pub_endpoint)):
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        for _ in range(5):
            sock.send(blob)
        #   ZeroMQ writes them in the background, and again after each refusal
        shop.run_for(3)
        sock.close()
    del blob
    survived('200 MB frames to inbox and PUB', before)


def forged_publisher():
    """A peer sends the group events in the real publisher's name, with the
    sequence numbers it will use next, and shows an observer the same on its
    own PUB; every real event is still delivered, no forged one is."""
    before = peak()
    forger = cp.Peer('forger', seeds=[shop.peers[member.instance].endpoint], context=context)
    ok(forger.run_until(lambda: forger.members('billing'), 15, [shop]),
       'the forger meets the node')
    observer = tools.chorus('tail', '--seed', shop.endpoint, '--json', '--count', 13,
                            '--topic', 'order.', log='tail')
    first = shop.head + 1

    def forge():
        for seq in range(first, first + 10):
            event = cp.make('EVENT', service='shop', instance=shop.instance, seq=seq,
                            topic='order.placed', key='k%d' % seq, correlation='forged',
                            timestamp=cp.now_ms(), group=None, attempt=0,
                            payload=msgpack.packb('forged-%d' % seq))
            forger.pub.send_multipart([b'order.placed', cp.encode(event)])
            if forger.members('billing'):
                group = event.replace(group='billing', attempt=1)
                forger.send(forger.members('billing')[0].instance, group)

    #   Until the observer has met the forger, then once more
    shop.run_until(lambda: any(p.service == 'chorus-tail' or p.service.startswith('chorus')
                               for p in forger.peers.values()), 15, [forger])
    forger.run_for(1, [shop])
    forge()
    forger.run_for(0.5, [shop])
    for i in range(13):
        shop.publish('order.placed', msgpack.packb('real-%d' % i), key='r%d' % i)
        forge()
        forger.run_for(0.02, [shop])

    def real_handled():
        return {event['payload'] for event in tools.json_lines('handled')} \
            & {'real-%d' % i for i in range(13)}
    shop.run_until(lambda: len(real_handled()) >= 13, 30, [forger])
    is_(len(real_handled()), 13, 'the group handled all 13 real events')
    forged = [line for line in tools.lines('handled') if 'forged' in line]
    is_(len(forged), 0, 'and none of the forged ones')
    is_(len(forger.received_of('EVENT-ACK')), 0, 'the forger got no acknowledgement')
    shop.run_until(lambda: observer.poll() is not None, 20, [forger])
    shown = [json.loads(line) for line in tools.lines(observer.out)]
    payloads = sorted(event.get('payload') for event in shown)
    is_(payloads, sorted('real-%d' % i for i in range(13)),
        'the observer shows the 13 real events and no forged one')
    forger.close()
    survived('forged publisher', before)


#   The flood last: each attack's peak is its own
big_frames()
forged_publisher()
hello_flood()
err = tools.text(node.err)
ok('refused peer' in err and 'shut out' in err,
   'the node said it refused peers and shut out connections')
if 'shut out' not in err or 'refused peer' not in err:
    for line in err.splitlines()[:20]:
        diag(line)
is_(tools.stop(node), 0, 'the node stops on SIGTERM with exit 0')
done_testing()
