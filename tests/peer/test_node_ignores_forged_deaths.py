#!/usr/bin/python3
"""Membership news cannot make a node drop a live peer (protocol section 6).

A real `chorus on` node meets a real publisher (a strict peer) and a hostile
one. For twice the node's expiry time the hostile peer tells the node, on
every PING, that the publisher is dead and suspect at a high incarnation.
The node probes the publisher itself, hears it answer, and keeps it: it never
forgets it nor meets it anew, and it still handles 100 of 100 of its events.
Told that it is itself suspect, the node refutes with a higher incarnation,
and the news of it comes back on its answers."""

import time

import chorus_peer as cp
import tools
from tap import diag, done_testing, is_, ok

EXPIRED_S = 2.0             # the node's default expiry after an unanswered probe

node_endpoint = 'tcp://127.0.0.1:%d' % tools.free_port()
shop = cp.Peer('shop', seeds=[node_endpoint])
handled = tools.path('handled')
node = tools.chorus('on', 'order.', '--group', 'billing', '--listen', node_endpoint, '--seed',
                    shop.endpoint, '--store', tools.path('billing'), '--verbose', '--exec',
                    'cat >> %s' % handled, log='on')
ok(shop.run_until(lambda: shop.members('billing'), 15), 'the node meets the real publisher')
node_instance = shop.members('billing')[0].instance if shop.members('billing') else None
mallory = cp.Peer('mallory', seeds=[node_endpoint])
ok(mallory.run_until(lambda: node_instance in mallory.peers, 15, [shop]),
   'the hostile peer meets the node')


def delivered(label):
    """The publisher publishes 100 events; how many of them the node handled."""
    return tools.delivered(shop, label, [mallory])


def forge(entries, seconds):
    """Mallory sends the node a PING carrying entries every 100 ms for a while;
    the publisher and mallory run meanwhile (they answer the node's probes)."""
    target = mallory.peers[node_instance]
    end = time.monotonic() + seconds
    sent = 0
    while time.monotonic() < end:
        mallory._send(target, cp.make('PING', head=0, members=entries))
        sent += 1
        mallory.run_for(0.1, [shop])
    return sent


def log_count(pattern):
    return tools.text('on.err').count(pattern)


is_(delivered('before'), 100, 'before the attack, 100 of 100 events handled')
shop_entry = '%s %s' % (shop.instance, shop.endpoint)
sent = forge(['dead 1000 ' + shop_entry, 'suspect 1000 ' + shop_entry], 2 * EXPIRED_S)
diag('%d forged PINGs sent' % sent)
ok(node.poll() is None, 'the node is alive')
met = log_count('met shop/')
expired = log_count('peer shop/%s expired' % shop.instance[:8])
ok(met == 1 and expired == 0,
   'told for %.0f s that the publisher is dead, the node kept it (met %d times, expired %d)'
   % (2 * EXPIRED_S, met, expired))
ok(not any(instance == shop.instance for instance, _ in mallory.expired),
   'the publisher did not lose the node either')
is_(delivered('after'), 100, 'after the attack, 100 of 100 events handled')

#   Told it is itself suspect, the node refutes: a new incarnation, sent back.
#   A node's incarnation starts at its start time in ms (section 6.2), so the
#   suspicion names one above any start time
node_entry = '%s %s' % (node_instance, node_endpoint)
start = len(mallory.received)
SUSPECTED = 9000000000000
forge(['suspect %d %s' % (SUSPECTED, node_entry)], 1.0)


def refuted():
    # the entry goes on with the node's service and flags (section 6.2)
    ours = 'alive %d %s' % (SUSPECTED + 1, node_entry)
    for record in mallory.received[start:]:
        if record.instance == node_instance and record.msg.kind in ('PING', 'PONG'):
            if any(entry == ours or entry.startswith(ours + ' ')
                   for entry in record.msg['members'] or []):
                return True
    return False


ok(mallory.run_until(refuted, 5, [shop]),
   'suspected at incarnation %d, the node refutes: "alive %d" about itself comes back'
   % (SUSPECTED, SUSPECTED + 1))
ok(log_count('we refute with %d' % (SUSPECTED + 1)) == 1, 'and says so in its log')

shop.close()
mallory.close()
tools.stop(node)
done_testing()
