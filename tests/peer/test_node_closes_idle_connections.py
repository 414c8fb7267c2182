#!/usr/bin/python3
"""A node closes a connection it has not used for the idle time, and opens it
again when it has something to send there (protocol section 5.2).

Ten nodes, each closing idle connections after 1.5 s: a hub every node
joins through, eight services that each take order.* events and handle
"ping", and "orders", which publishes one event (it then meets every
subscriber). Past 8 members a node watches at most 6 others, so orders has
at least two subscribers it does not watch, and every node met the hub when
it joined. Then:

* the hub and orders close the connections they do not need, and the
  subscribers theirs to orders; the hub ends with fewer connections;
* no node doubts (probes) a peer for closing an unused connection, and no
  node is suspected or expires;
* over a connection orders closed, its events reach the subscriber's group,
  each once, and a command is answered;
* once it is closed again, the subscriber subscribes to refund.*: the HELLO
  that says so opens the connection again, and the events orders publishes
  on refund.* reach it and no other node."""

import os

import tools
from tap import diag, done_testing, ok

IDLE_MS = 1500
SUBS = ['sub%d' % i for i in range(8)]
NAMES = ['hub'] + SUBS + ['orders']


def start(name, *args):
    return tools.node_helper('--service=' + name, '--store=' + tools.path(name), '--verbose',
                             '--idle-close=%d' % IDLE_MS, *args, log=name, control=True)


def established(pid):
    """How many established TCP connections the process holds."""
    inodes = set()
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            target = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError:
            continue
        if target.startswith('socket:['):
            inodes.add(target[8:-1])
    count = 0
    for table in ('tcp', 'tcp6'):
        try:
            with open('/proc/%d/net/%s' % (pid, table)) as rows:
                for row in list(rows)[1:]:
                    fields = row.split()
                    count += fields[3] == '01' and fields[9] in inodes
        except FileNotFoundError:
            pass
    return count


def err(name):
    return tools.text(name + '.err')


def known(name):
    """How many of the other nine the node knows, met or from news."""
    return sum(1 for other in NAMES if other != name
               and (': met %s/' % other in err(name) or ': member %s/' % other in err(name)))


def closed(name, other):
    """How many times name closed its connection to other, unused."""
    return err(name).count('closing our connection to %s/' % other)


def handled(name, kind='E'):
    """What the node's handlers ran, as it logged them: events (E), commands (C), or
    replies to its own calls (R)."""
    return [line for line in tools.lines(name + '.log') if line.startswith(kind + ' ')]


nodes = {'hub': start('hub')}
endpoint, _ = tools.started(nodes['hub'], 'the hub starts')
for name in SUBS:
    nodes[name] = start(name, '--seed=' + endpoint, '--subscribe=order.', '--handle=ping',
                        '--log=' + tools.path(name + '.log'))
nodes['orders'] = start('orders', '--seed=' + endpoint, '--log=' + tools.path('orders.log'))
for name in NAMES[1:]:
    tools.started(nodes[name], '%s starts' % name)
ok(tools.until(lambda: all(known(name) >= 9 for name in NAMES), 30),
   'each of the ten nodes knows the nine others')
hub_before = established(nodes['hub'].pid)

first = tools.tell(nodes['orders'], 'publish order.placed 1', 'PUBLISHED')
ok(first and tools.until(lambda: all(len(handled(name)) == 1 for name in SUBS), 30),
   'orders publishes one event: each of the eight groups handles it')

#   The subscribers orders does not watch: it closes its connections to
#   them, and they theirs to it
def pairs_closed():
    return [name for name in SUBS if closed('orders', name) and closed(name, 'orders')]
quiet = tools.until(pairs_closed, 30)
ok(quiet, 'orders and %s closed their connections to each other, unused'
   % ', '.join(quiet or ['none']))
ok(tools.until(lambda: sum(closed('hub', name) for name in NAMES) >= 3, 30),
   'the hub closed %d connections it does not need'
   % sum(closed('hub', name) for name in NAMES))
hub_after = tools.until(lambda: established(nodes['hub'].pid) < hub_before
                        and established(nodes['hub'].pid), 30)
ok(hub_after, 'the hub holds fewer TCP connections: %s, from %d' % (hub_after, hub_before))
counted = tools.tell(nodes['hub'], 'counter idle_closes', 'COUNTER')
ok(counted and int(counted[2]) >= 3, 'its idle_closes counter says so: %s'
   % (counted and counted[2]))

if not quiet:
    done_testing()
target = quiet[0]
diag('orders closed its connection to %s' % target)


def no_doubt(what):
    doubts = {name: err(name).count('closed its connection to us: probing it') for name in NAMES}
    lost = {name: err(name).count('did not answer our probe') + err(name).count(' expired')
            for name in NAMES}
    ok(sum(doubts.values()) == 0, '%s: no node probed a peer for closing its connection (%s)'
       % (what, ', '.join('%s %d' % item for item in doubts.items() if item[1]) or 'none'))
    ok(sum(lost.values()) == 0, '%s: no peer went unanswered or expired (%s)'
       % (what, ', '.join('%s %d' % item for item in lost.items() if item[1]) or 'none'))
    calm = sum(err(name).count('unused: no doubt') for name in NAMES)
    ok(calm > 0, '%s: closings of unused connections were seen, and not doubted: %d'
       % (what, calm))


no_doubt('after the closings')

#   Over the closed connection: events, each once, and a command
tools.tell(nodes['orders'], 'publish order.placed 5', 'PUBLISHED')
ok(tools.until(lambda: all(len(handled(name)) >= 6 for name in SUBS), 30),
   'orders publishes five more: every group handles all six')
seqs = [line.split()[2] for line in handled(target)]
ok(len(seqs) == 6 and len(set(seqs)) == 6, '%s, reached again over a connection opened on '
   'demand, handled each once: %s' % (target, ' '.join(seqs)))
ok(any(': connecting to %s/' % target in line and line.endswith(' again')
       for line in tools.lines('orders.err')),
   'orders opened its connection to %s again' % target)
tools.tell(nodes['orders'], 'call %s.ping' % target, 'CALLED')
ok(tools.until(lambda: any(line.startswith('R call-1 0') for line in handled('orders', 'R')),
              30),
   'a command to %s is answered' % target)
ok(sum(line.startswith('C call-1 1 done') for line in handled(target, 'C')) == 1,
   '%s ran it once' % target)

#   A subscription that changes while the connection is closed
ok(tools.until(lambda: closed('orders', target) >= 2 and closed(target, 'orders') >= 2, 30),
   'orders and %s closed their connections again' % target)
ok(tools.tell(nodes[target], 'subscribe refund.', 'SUBSCRIBED'), '%s subscribes to refund.*'
   % target)
tools.tell(nodes['orders'], 'publish refund.issued 3', 'PUBLISHED')
ok(tools.until(lambda: len(handled(target)) >= 9, 30) and len(handled(target)) == 9,
   'the three refund events orders publishes reach %s, once each (%d events handled)'
   % (target, len(handled(target))))
others = {name: len(handled(name)) for name in SUBS if name != target}
ok(all(count == 6 for count in others.values()), 'and no other group (%s)'
   % ', '.join('%s %d' % item for item in others.items()))
no_doubt('at the end')

for name in reversed(NAMES):
    ok(tools.stop(nodes[name]) == 0, '%s stops cleanly' % name)
done_testing()
