#!/usr/bin/python3
"""A connection broken off in the middle of its handshake is counted, and
warned of only when it comes again. A peer that goes away once (a chorus
command that got its answer and exited while another node was still
connecting to it, a port scanner, a killed process) is no misconfiguration,
and a short-lived command's stderr is no place for it; a peer that cannot
speak to the node (security or keys that do not match) reconnects and breaks
off again, and that is warned of. Driven over real TCP against `chorus on`."""

import socket
import urllib.request

import tools
from tap import diag, done_testing, ok

endpoint_port = tools.free_port()
metrics_port = tools.free_port()
node = tools.chorus('on', 'order.', '--group', 'billing', '--listen', 'tcp://127.0.0.1:%d' % endpoint_port,
                    '--store', tools.path('store'), '--metrics', '127.0.0.1:%d' % metrics_port,
                    '--exec', 'cat', log='on')


def refused():
    """The node's count of handshakes that failed, from /metrics; None before it answers."""
    try:
        with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % metrics_port,
                                    timeout=2) as reply:
            text = reply.read().decode()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith('chorus_connections_refused_total{reason="handshake"}'):
            return int(float(line.split()[-1]))
    return 0


def connect():
    """A TCP connection to the node's inbox, or None while it is not listening (a
    refused connection is none the node sees)."""
    try:
        return socket.create_connection(('127.0.0.1', endpoint_port), timeout=5)
    except ConnectionRefusedError:
        return None


def break_off():
    """Connects to the node's inbox, sends half a ZMTP greeting, and hangs up."""
    conn = tools.until(connect, 15)
    with conn:
        conn.sendall(b'\xff\x00\x00\x00\x00\x00\x00\x00\x01\x7f')


ok(tools.until(lambda: refused() == 0, 15), 'the node serves its counters')
break_off()
ok(tools.until(lambda: refused() == 1, 10), 'a handshake broken off is counted: %s' % refused())
#   The node has reported the event (the count came from the same turn)
ok('broke off' not in tools.text(node.err),
   'and not warned of, once: %r' % tools.text(node.err)[-300:])
break_off()
ok(tools.until(lambda: refused() == 2, 10), 'the second is counted too: %s' % refused())
ok(tools.until(lambda: 'broke off the handshake' in tools.text(node.err), 10),
   'and a second one soon after is warned of, with the likely causes')
diag(tools.text(node.err).strip().splitlines()[-1] if tools.text(node.err).strip() else '')
ok(tools.stop(node) == 0, 'the node stops cleanly')
done_testing()
