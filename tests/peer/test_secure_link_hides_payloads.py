#!/usr/bin/python3
"""On a secure mesh the links are encrypted (protocol section 14.6): a recording TCP proxy
on every connection between a C node and a peer sees none of the payloads that crossed it,
though it carried all of them; between two plaintext nodes, the same proxies see them in
clear, so the test can fail.

Node B is tests/node_helper (it publishes events with a marker payload, handles events
and commands). Node A is the strict peer of tests/peer, whose every connection to B goes
through a proxy of its own (DEALER to B's inbox, SUB to B's PUB), and which announces a
proxy in front of its own inbox, so that B's DEALER to A goes through one too. (Two C
nodes cannot be put on either side of a proxy: a node answering a HELLO announces its own
inbox, and the C node omits chorus.answers, so a seed reached through a proxy is never
recognised, and the traffic goes around it.)"""

import os
import socket
import threading

import chorus_peer as cp
import tools
from tap import diag, done_testing, is_, ok

B_MARKER = 'B-PAYLOAD-MARKER-'
A_MARKER = b'A-PAYLOAD-MARKER-'
B_EVENTS, B_SIZE = 20, 2048
A_EVENTS = 5
A_PAYLOAD = A_MARKER * 100


class Proxy:
    """A TCP proxy on 127.0.0.1, an ephemeral port, to one target endpoint: it forwards
    both ways and records every byte of every connection ((upstream, downstream) pairs,
    upstream being what the connecting side sent)."""

    def __init__(self, target):
        host, port = target[len('tcp://'):].rsplit(':', 1)
        self.target = (host, int(port))
        self.listener = socket.socket()
        self.listener.bind(('127.0.0.1', 0))
        self.listener.listen(16)
        self.endpoint = 'tcp://127.0.0.1:%d' % self.listener.getsockname()[1]
        self.connections, self.sockets = [], []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
                server = socket.create_connection(self.target)
            except OSError:
                return
            up, down = bytearray(), bytearray()
            with self.lock:
                self.connections.append((up, down))
                self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, up), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, down), daemon=True).start()

    def _pump(self, source, sink, record):
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b''
            if not data:
                try:
                    sink.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            with self.lock:
                record.extend(data)
            try:
                sink.sendall(data)
            except OSError:
                return

    def bytes(self, direction=None):
        """Everything recorded (one direction: 0 upstream, 1 downstream), joined."""
        with self.lock:
            return b''.join(bytes(c[i]) for c in self.connections
                            for i in ((0, 1) if direction is None else (direction,)))

    def close(self):
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()


def run(mode):
    """Nodes A and B in `mode` ('secure' or 'plaintext') with every connection between
    them proxied; returns what the proxies saw, after checking everything got through."""
    secure = mode == 'secure'
    trust, keys = tools.path(mode + '-trust'), tools.path(mode + '-keys')
    security, b_args = {}, []
    if secure:
        os.mkdir(trust)
        os.mkdir(keys)
        cp.write_certificate(trust, 'a', keys, service='orders', publish='order.',
                             call='billing.charge')
        cp.write_certificate(trust, 'b', keys, service='billing', publish='billing.')
        security = dict(curve=os.path.join(keys, 'a.cert_secret'), trust=trust)
        b_args = ['--cert', os.path.join(keys, 'b.cert_secret'), '--trust', trust]
    node = tools.node_helper('--service', 'billing', *b_args, '--subscribe', 'order.',
                             '--handle', 'charge', '--topic', 'billing.done',
                             '--publish', B_EVENTS, '--size', B_SIZE, '--payload', B_MARKER,
                             '--wait-peers', 1, '--log', tools.path(mode + '.log'),
                             log='b-' + mode)
    started = tools.ready(node)
    ok(started, '%s: node B starts' % mode)
    if not started:
        diag(tools.text(node.err))
        return None
    endpoint, instance = started
    proxies = {}

    def via(target):
        if target not in proxies:
            proxies[target] = Proxy(target)
        return proxies[target].endpoint

    a = cp.Peer('orders', seeds=[endpoint + ('@b' if secure else '')], observe='billing.',
                via=via, **security)
    inbox = Proxy(a.endpoint)
    a.endpoint = inbox.endpoint      # B's DEALER to A goes through a proxy too
    everything = lambda: list(proxies.values()) + [inbox]
    ok(a.run_until(lambda: instance in a.peers, 15), '%s: A meets B through the proxies' % mode)

    for i in range(A_EVENTS):
        a.publish('order.placed', A_PAYLOAD, key='k%d' % i)
    charge = a.send_command('billing', 'charge', A_PAYLOAD, idempotency='a-charge')
    a_lines = lambda: [l for l in tools.lines(mode + '.log')
                       if l.startswith('E ' + a.instance + ' ')]
    from_b = lambda: [m for m in a.observed if m['instance'] == instance]
    ok(a.run_until(lambda: len(from_b()) >= B_EVENTS and len(a_lines()) >= A_EVENTS
                   and a.command_results.get(charge) == 'reply', 20),
       '%s: B\'s %d events reach A, A\'s %d events and its command reach B' %
       (mode, B_EVENTS, A_EVENTS))
    is_(sorted(set(m['payload'] for m in from_b())),
        [(B_MARKER * (B_SIZE // len(B_MARKER) + 1)).encode()[:B_SIZE]],
        '%s: A got B\'s marker payloads intact' % mode)

    #   What crossed: B's events went to A (by SUB, or by FETCH answers on B's DEALER),
    #   A's events and command to B (on A's DEALER); each of those connections was proxied
    towards_a = sum(len(p.bytes(1)) for p in proxies.values()) + len(inbox.bytes(0))
    towards_b = sum(len(p.bytes(0)) for p in proxies.values())
    diag('%s: %d connections proxied; %d bytes towards A, %d towards B' % (
        mode, sum(len(p.connections) for p in everything()), towards_a, towards_b))
    ok(towards_a >= B_EVENTS * B_SIZE, '%s: the proxies carried B\'s events (%d bytes towards '
       'A, at least %d)' % (mode, towards_a, B_EVENTS * B_SIZE))
    ok(towards_b >= (A_EVENTS + 1) * len(A_PAYLOAD), '%s: the proxies carried A\'s events and '
       'command (%d bytes towards B, at least %d)' % (mode, towards_b,
                                                      (A_EVENTS + 1) * len(A_PAYLOAD)))
    a.close()
    is_(tools.stop(node), 0, '%s: node B stops with exit 0' % mode)
    seen = b''.join(p.bytes() for p in everything())
    for proxy in everything():
        proxy.close()
    return seen


plain = run('plaintext')
ok(plain is not None and B_MARKER.encode() in plain,
   'plaintext: the proxies see B\'s payloads in clear (the test can fail)')
ok(plain is not None and A_MARKER in plain, 'plaintext: and A\'s')
ok(plain is not None and b'order.placed' in plain, 'plaintext: and the topics')
hidden = run('secure')
ok(hidden is not None and B_MARKER.encode() not in hidden,
   'secure: the proxies never see B\'s payloads')
ok(hidden is not None and A_MARKER not in hidden, 'secure: nor A\'s')
ok(hidden is not None and b'order.placed' not in hidden and b'billing.done' not in hidden,
   'secure: nor a topic')
ok(hidden is not None and b'billing' not in hidden, 'secure: nor a service name')
done_testing()
