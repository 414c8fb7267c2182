#!/usr/bin/python3
"""EVENT-ACKs that list more seqs (protocol sections 7.2 and 11.5), both ways
between a real node and the strict peer, on real sockets.

As a publisher, a node takes one EVENT-ACK listing 1000 events as 1000
acknowledgements: the credit they held comes back at once, a rejection
listed is redelivered for each event, and seqs not in flight are ignored.
As a subscriber, it acknowledges every event exactly once, listing them
only to a publisher whose HELLO says it reads lists; a publisher without
that header gets one EVENT-ACK per event, as before the field."""

import chorus_peer as cp
import tools
from tap import diag, done_testing, is_, ok

HEADER = {'chorus.acks': 'lists'}
WINDOW = 1000       # the node's default credit window

# ------------------------------------------------ the node publishes
acker = cp.Peer('acker', headers=HEADER, subscriptions=[('job.', 0, 1)],
                on_event=lambda msg: cp.DEFER)
jobs = tools.node_helper('--service', 'jobs', '--store', tools.path('jobs'),
                         '--seed', acker.endpoint, log='jobs', control=True)
ENDPOINT, INSTANCE = tools.started(jobs, 'a node that publishes starts')
ok(acker.run_until(lambda: INSTANCE in acker.peers, 15),
   'it meets a strict peer that reads lists')
hello = next((r.msg for r in acker.received if r.msg.kind == 'HELLO' and r.instance == INSTANCE),
             None)
is_(hello and hello['headers'].get('chorus.acks'), 'lists',
    'the node says in its HELLO that it reads lists')
#   Its group is known once the node has the peer's subscriptions: the
#   first publish after that goes to it
published = tools.tell(jobs, 'publish job.run %d' % (WINDOW + 5), 'PUBLISHED')
ok(published, 'the node publishes %d events' % (WINDOW + 5))
ok(acker.run_until(lambda: len(acker.events) >= WINDOW, 30),
   'a full credit window reaches the peer, unacknowledged')
acker.run_until(lambda: False, 0.3)
is_(len(acker.events), WINDOW, 'and no more, while they are unacknowledged')

first = [m['seq'] for m in acker.events]
errors = len(acker.received_of('ERROR'))
#   One EVENT-ACK for the whole window, with a seq not in flight and one twice
acker.ack_events(acker.events, 0, extra=[max(first) + 10 ** 6, first[5]])
ok(acker.run_until(lambda: len(acker.events) >= WINDOW + 5, 15),
   'one EVENT-ACK listing the window frees its credit: the last 5 events come')
rest = acker.events[WINDOW:]
is_(sorted(m['seq'] for m in rest), sorted(set(range(max(first) + 1, max(first) + 6))),
    'they are the 5 events that waited, each once')
is_([m['attempt'] for m in rest], [1] * 5, 'each a first delivery')

#   Two rejected in one EVENT-ACK: each comes again; the other three handled
seqs = [m['seq'] for m in rest]
acker.ack_events(rest[:2], 2)
acker.ack_events(rest[2:], 0)
ok(acker.run_until(lambda: len(acker.events) >= WINDOW + 7, 15),
   'both events rejected in one EVENT-ACK come again')
again = acker.events[WINDOW + 5:]
is_(sorted((m['seq'], m['attempt']) for m in again), [(seqs[0], 2), (seqs[1], 2)],
    'the two, each with attempt 2, and none of the three handled')
acker.ack_events(again, 0)
pongs = len(acker.received_of('PONG'))
acker.send(INSTANCE, cp.make('PING', head=0))
acker.run_until(lambda: len(acker.received_of('PONG')) > pongs, 5)
is_(len(acker.received_of('ERROR')), errors,
    'no ERROR for a list with a seq not in flight or one twice')
tools.stop(jobs)

# ------------------------------------------------ the node subscribes
COUNT = 300
lister = cp.Peer('lister', headers=HEADER, topics=['task.'])
plain = cp.Peer('plain', topics=['task.'])
peers = [lister, plain]
workers = tools.node_helper('--service', 'workers', '--store', tools.path('workers'),
                            '--subscribe', 'task.', '--seed', lister.endpoint,
                            '--seed', plain.endpoint, '--log', tools.path('workers.log'),
                            log='workers')
ENDPOINT, WORKER = tools.started(workers, 'a node that subscribes starts')
ok(cp.run_until(lambda: all(p.members('workers') for p in peers), 15, peers),
   'it meets a publisher that reads lists and one that does not')
for peer in peers:
    for i in range(COUNT):
        peer.publish('task.run', b'\x90', key='k%d' % (i % 50))


def acked(peer):
    """Every seq the node acknowledged to peer, in the order of its EVENT-ACKs."""
    seqs = []
    for msg in peer.received_of('EVENT-ACK', WORKER):
        seqs += [msg['seq']] + list(msg['seqs'])
    return seqs


ok(cp.run_until(lambda: all(len(set(acked(p))) >= COUNT for p in peers), 60, peers),
   'the node acknowledges all %d events of each publisher' % COUNT)
for peer in peers:
    acks = peer.received_of('EVENT-ACK', WORKER)
    seqs = acked(peer)
    is_(sorted(seqs), list(range(1, COUNT + 1)), '%s: each event acknowledged once' % peer.service)
    is_({(m['group'], m['status']) for m in acks}, {('workers', 0)},
        '%s: all as handled, for the group' % peer.service)
    diag('%s: %d events acknowledged in %d EVENT-ACKs' % (peer.service, len(seqs), len(acks)))
plain_acks = plain.received_of('EVENT-ACK', WORKER)
is_([m for m in plain_acks if m['seqs']], [],
    'to the publisher without the header, no EVENT-ACK lists seqs')
is_(len(plain_acks), COUNT, 'it gets one EVENT-ACK per event')
tools.stop(workers)

# ------------------------------------------------ acknowledgements owed at a stop
#   A node told to stop while a handler runs records what it handled and
#   acknowledges it before its BYE, lists or not: the publisher would
#   otherwise move the event to another instance, which handles it again.
#   Whether the engine reads the handler's results in a turn of their own
#   or only as it stops is a race between its thread and the one that
#   stops it; the second way lost the acknowledgement in about half the
#   runs, so the stop is made ROUNDS times, each with a node of its own
ROUNDS = 6
stopper = cp.Peer('stopper', headers=HEADER, topics=['task.'])
orders = []
for round_ in range(ROUNDS):
    slow = tools.node_helper('--service', 'slowpoke', '--store',
                             tools.path('slowpoke-%d' % round_), '--subscribe', 'task.',
                             '--slow-events', 300, '--seed', stopper.endpoint,
                             log='slowpoke-%d' % round_)
    ENDPOINT, SLOW = tools.started(slow, 'round %d: a node with a slow handler starts' % round_)
    ok(stopper.run_until(lambda: any(p.instance == SLOW for p in stopper.members('slowpoke')),
                         15), 'round %d: it meets the publisher' % round_)
    stopper.publish('task.run', b'\x90', key='once-%d' % round_)
    ok(stopper.run_until(lambda: any(l.startswith('HANDLING ') for l in tools.lines(slow.out)),
                         15), 'round %d: its handler is running' % round_)
    slow.send_signal(tools.signal.SIGTERM)
    ok(stopper.run_until(lambda: stopper.received_of('BYE', SLOW), 15),
       'round %d: the node says BYE' % round_)
    orders.append([r.msg.kind for r in stopper.received
                   if r.instance == SLOW and r.msg.kind in ('EVENT-ACK', 'BYE')])
    tools.stop(slow)
is_(orders, [['EVENT-ACK', 'BYE']] * ROUNDS,
    'in each round the event it handled is acknowledged before its BYE')
done_testing()
