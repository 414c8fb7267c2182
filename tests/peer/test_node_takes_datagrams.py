#!/usr/bin/python3
"""Probes by datagram (protocol section 6.1.1), on real sockets.

Two real nodes meet, and their probes go by UDP: each counts the datagrams it
sent, and neither ever suspects the other. A third node starts on a port whose
UDP side the test holds, so it takes no datagrams: the PINGs sent to it arrive
at the test's socket instead, a node that sent it two such probes unanswered
probes it over its connection, and nobody ever suspects it.

Then a hostile sender throws at the first node's UDP port what is not a probe:
garbage, a datagram too large, a header naming no instance, a message that is
not PING or PONG, a PING for another instance, a PING from an instance the node
never met, and a PING in a member's name from another address. The node drops
and counts each one, says why in its log, sends the hostile sender nothing,
keeps its peers, and goes on probing by datagram."""

import os
import socket
import time
import urllib.request

import chorus_peer as cp
import tools
from tap import diag, done_testing, is_, ok

HEADER = b'CHD\x01'


def start(name, port, seed=None):
    """A node_helper node on 127.0.0.1:port serving /metrics; (proc, metrics port, instance)."""
    metrics = tools.free_port()
    os.environ['CHORUS_METRICS'] = '127.0.0.1:%d' % metrics
    args = ['--service=' + name, '--store=' + tools.path(name), '--verbose',
            '--listen=tcp://127.0.0.1:%d' % port]
    if seed:
        args.append('--seed=tcp://127.0.0.1:%d' % seed)
    proc = tools.node_helper(*args, log=name)
    del os.environ['CHORUS_METRICS']
    _, instance = tools.started(proc, '%s starts' % name)
    return proc, metrics, instance


def figures(metrics):
    """The node's /metrics as {name{labels}: value}; {} while it does not answer."""
    try:
        with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % metrics, timeout=2) as reply:
            text = reply.read().decode()
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        if line and not line.startswith('#'):
            name, value = line.rsplit(' ', 1)
            found[name] = float(value)
    return found


def figure(metrics, name):
    return figures(metrics).get(name, 0)


DATAGRAMS = 'chorus_probe_datagrams_total'
ALIVE = 'chorus_peers{state="alive"}'
EVASIVE = 'chorus_peers{state="evasive"}'
MALFORMED = 'chorus_messages_dropped_total{reason="malformed"}'
UNKNOWN = 'chorus_messages_dropped_total{reason="unknown_peer"}'

port_a, port_b = tools.free_port(), tools.free_port()
a, metrics_a, instance_a = start('alpha', port_a)
b, metrics_b, instance_b = start('bravo', port_b, seed=port_a)
ok(tools.until(lambda: figure(metrics_a, ALIVE) == 1 and figure(metrics_b, ALIVE) == 1, 15),
   'the two nodes meet')
ok(tools.until(lambda: figure(metrics_a, DATAGRAMS) >= 3 and figure(metrics_b, DATAGRAMS) >= 3,
               15),
   'their probes and answers go by datagram: %d and %d sent'
   % (figure(metrics_a, DATAGRAMS), figure(metrics_b, DATAGRAMS)))

#   A third node whose UDP port the test holds: it takes no datagrams
port_c = tools.free_port()
held = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
held.bind(('127.0.0.1', port_c))
held.settimeout(0.2)
c, metrics_c, instance_c = start('charlie', port_c, seed=port_a)
ok(tools.until(lambda: 'no UDP socket at tcp://127.0.0.1:%d' % port_c in tools.text(c.err), 10),
   'the node whose UDP port is taken says it takes no datagrams')
ok(tools.until(lambda: figure(metrics_a, ALIVE) == 2 and figure(metrics_c, ALIVE) == 2, 15),
   'it meets the other two')

#   The PINGs meant for it come to the test's socket. A node that sent it
#   two unanswered falls back to its connection. Which of the two others
#   probe it, and how often, depends on who speaks first: any message from
#   it, its own probes included, spares them a probe (section 6.1). So the
#   test watches until one has fallen back and every node that sent it two
#   has, for 30 s at most; nobody is ever suspect meanwhile
FELL_BACK = 'charlie/%s left 2 probes by datagram without a datagram answer' % instance_c[:8]
by_name = {instance_a: a, instance_b: b}
caught, suspected = [], 0


def senders():
    """How many probes by datagram for charlie each node sent, by its instance."""
    count = {}
    for d in caught:
        if d[:4] == HEADER and d[36:68].decode() == instance_c:
            count[d[4:36].decode()] = count.get(d[4:36].decode(), 0) + 1
    return count


def fell_back(instance):
    return instance in by_name and FELL_BACK in tools.text(by_name[instance].err)


def settled():
    sent = senders()
    return (any(fell_back(i) for i in by_name)
            and all(fell_back(i) for i, n in sent.items() if n >= 2))


end = time.monotonic() + 30
while time.monotonic() < end and not settled():
    try:
        data, sender = held.recvfrom(2048)
        caught.append(data)
    except socket.timeout:
        pass
    suspected = max(suspected, figure(metrics_a, EVASIVE), figure(metrics_b, EVASIVE),
                    figure(metrics_c, EVASIVE))
sent = senders()
ok(sent, 'the others sent it probes by datagram (%d caught)' % sum(sent.values()))
ok(all(i in by_name for i in sent), 'from the two other nodes')
ok(settled(), 'after two got no datagram back, a node probes it over its connection (%s)'
   % ', '.join('%s sent %d, fell back: %s' % (by_name[i].err.rsplit('/', 1)[-1], n,
                                                 'yes' if fell_back(i) else 'no')
               for i, n in sent.items() if i in by_name))
is_(suspected, 0, 'no node was ever suspect meanwhile')
ok(all(p.poll() is None for p in (a, b, c)), 'all three run')
expired = [n for n in ('alpha', 'bravo', 'charlie') if ' expired' in tools.text(n + '.err')]
is_(expired, [], 'no peer expired')
held.close()

#   The hostile sender, against alpha's UDP port
ping = cp.encode(cp.make('PING', head=0))
bye = cp.encode(cp.make('BYE'))
stranger = cp.new_id()
attacks = [
    (b'garbage', 'without the Chorus header'),
    (HEADER + instance_b.encode() + instance_a.encode() + b'x' * 1300, 'larger than 1232'),
    (HEADER + instance_b.lower().encode() + instance_a.encode() + ping, 'names no instance'),
    (HEADER + instance_b.encode() + instance_a.encode() + bye, 'only PING or PONG'),
    (HEADER + instance_b.encode() + instance_a.encode() + b'\xc1' * 20, 'dropped malformed'),
]
unknown = [
    HEADER + instance_b.encode() + stranger.encode() + ping,     # for another instance
    HEADER + stranger.encode() + instance_a.encode() + ping,     # from one never met
]
forged = HEADER + instance_b.encode() + instance_a.encode() + ping    # bravo's name, our address
hostile = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
hostile.bind(('127.0.0.1', 0))
hostile.settimeout(0.2)
before = figures(metrics_a)
log_before = len(tools.text(a.err))
for data, _ in attacks:
    hostile.sendto(data, ('127.0.0.1', port_a))
for data in unknown + [forged]:
    hostile.sendto(data, ('127.0.0.1', port_a))
ok(tools.until(lambda: figure(metrics_a, MALFORMED) - before.get(MALFORMED, 0) == len(attacks),
               10),
   'each datagram that is not a probe is counted as malformed (%d of %d)'
   % (figure(metrics_a, MALFORMED) - before.get(MALFORMED, 0), len(attacks)))
log = tools.text(a.err)[log_before:]
missing = [why for _, why in attacks if why not in log]
ok(not missing, 'and the log says why for each: missing %r' % missing)
ok(tools.until(lambda: figure(metrics_a, UNKNOWN) - before.get(UNKNOWN, 0) >= len(unknown), 10),
   'one for another instance, or from one never met, is counted as from an unknown peer')
answers = []
end = time.monotonic() + 2
while time.monotonic() < end:
    try:
        answers.append(hostile.recvfrom(2048))
    except socket.timeout:
        pass
is_(len(answers), 0, 'the hostile sender gets nothing back, not even for a PING in a '
    "member's name")
hostile.close()

sent = figure(metrics_a, DATAGRAMS)
ok(tools.until(lambda: figure(metrics_a, DATAGRAMS) >= sent + 2, 10),
   'the node goes on probing by datagram')
ok(a.poll() is None and figure(metrics_a, ALIVE) == 2 and figure(metrics_a, EVASIVE) == 0,
   'and keeps both its peers, neither suspect')
for proc in (a, b, c):
    tools.stop(proc)
done_testing()
