#!/usr/bin/python3
"""Forged membership news cannot shut a node's table against real nodes
(protocol section 4.5).

A node keeps at most 20 peers. A hostile peer meets it and, every 100 ms,
tells it of members that do not exist, new ones each time, so that the
node's table stays full of members it knows from news alone. Two real nodes
then greet it, one after the other. Each takes the place of a member known
from news alone: the node meets both, refuses neither, and says which member
it forgot for each. It declares none of the forged members dead for that
(it only heard of them), and the hostile peer, met first hand, stays."""

import itertools
import time

import chorus_peer as cp
import tools
from tap import diag, done_testing, ok

BOUND = 20

hub = tools.node_helper('--service=hub', '--store=' + tools.path('hub'), '--verbose',
                        '--max-peers=%d' % BOUND, log='hub')
endpoint, hub_instance = tools.started(hub, 'the node starts, at most %d peers' % BOUND)
mallory = cp.Peer('mallory', seeds=[endpoint])
ok(mallory.run_until(lambda: hub_instance in mallory.peers, 15), 'the hostile peer meets the node')

serial = itertools.count(1)
NOBODY = tools.free_port()      # a port nobody listens on, on any loopback address


def forged(count):
    """Entries for members that do not exist: new instances, each at its own loopback
    address, where nobody listens."""
    entries = []
    for _ in range(count):
        n = next(serial)
        entries.append('alive 1 %032X tcp://127.1.%d.%d:%d ghost%d -'
                       % (0xF000 + n, n // 250, 1 + n % 250, NOBODY, n))
    return entries


def flood(seconds, until=None):
    """Forged news on a PING every 100 ms for seconds, or until `until` holds."""
    target = mallory.peers[hub_instance]
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (until and until()):
        mallory._send(target, cp.make('PING', head=0, members=forged(8)))
        mallory.run_for(0.1)


def hub_says(text):
    return tools.text(hub.err).count(text)


flood(2)
ghosts = hub_says(': member ghost')
ok(ghosts >= BOUND - 1, 'the node took forged members until full: %d heard of' % ghosts)


def greet(name):
    """A real node seeded to the hub, while the flood goes on; True once the hub met it."""
    node = tools.node_helper('--service=' + name, '--store=' + tools.path(name),
                             '--seed=' + endpoint, '--verbose', log=name)
    tools.started(node, '%s starts' % name)
    flood(15, lambda: hub_says(': met %s/' % name) > 0)
    return node


for name in ('late', 'later'):
    greet(name)
    ok(hub_says(': met %s/' % name) == 1, 'the full node meets %s, which greets it' % name)
    ok(hub_says('refused peer %s/' % name) == 0, 'and never refused it')
    ok(hub_says('forgotten to make room for %s/' % name) == 1,
       'it forgot one member known from news alone to make room for %s' % name)
#   "member ghostN/ABCD1234, known from news alone, forgotten to make room for ..."
made_room = [line.split('member ', 1)[1].split(',', 1)[0]
             for line in tools.lines(hub.err) if 'forgotten to make room' in line]
diag('forgotten to make room: %s' % ', '.join(made_room))
ok(made_room and not any(hub_says('peer %s expired' % ghost) or hub_says('peer %s left' % ghost)
                         for ghost in made_room),
   'the members forgotten to make room were not declared dead nor gone')
ok(hub_instance in mallory.peers and hub.poll() is None, 'the hostile peer is still met, the node runs')
mallory.close()
done_testing()
