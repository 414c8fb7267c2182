#!/usr/bin/python3
"""A node that cannot get a socket does not abort: with ZeroMQ's socket limit
set low (ZSYS_MAX_SOCKETS), a node met by more peers than it has sockets for
refuses the rest, says so, and goes on delivering to the peers it has; one
that cannot even start says why and exits 1."""

import os

import msgpack

import chorus_peer as cp
import tools
from tap import done_testing, is_, ok

os.environ['ZSYS_MAX_SOCKETS'] = '5'
proc = tools.chorus('on', 'order.', '--group', 'billing', '--store', tools.path('none'),
                    '--exec', 'true', log='too-few')
status = proc.wait(timeout=20)
err = tools.text(proc.err)
is_(status, 1, 'with 5 sockets a node cannot start: exit 1, not an abort')
ok('no sockets left' in err, 'and it says why: %s' % err.strip().splitlines()[0] if err else '')

os.environ['ZSYS_MAX_SOCKETS'] = '30'
endpoint = 'tcp://127.0.0.1:%d' % tools.free_port()
shop = cp.Peer('shop', seeds=[endpoint])
node = tools.chorus('on', 'order.', '--group', 'billing', '--listen', endpoint, '--store',
                    tools.path('billing'), '--exec', 'cat >> %s' % tools.path('handled'),
                    log='on')
del os.environ['ZSYS_MAX_SOCKETS']
ok(shop.run_until(lambda: shop.members('billing'), 15), 'the node meets the real publisher')

crowd = [cp.Peer('crowd%d' % i, seeds=[endpoint], context=shop.ctx) for i in range(40)]
met = lambda: sum(1 for peer in crowd if peer.members('billing'))
shop.run_until(lambda: 'cannot open a connection' in tools.text(node.err), 20, crowd)
ok('cannot open a connection' in tools.text(node.err),
   'met by 40 more peers, the node runs out of sockets and says so')
ok(node.poll() is None, 'and is still running, with %d of the 40 met' % met())

for i in range(100):
    shop.publish('order.placed', msgpack.packb(i), key='k%d' % (i % 10))


def handled():
    return len({event['seq'] for event in tools.json_lines('handled')})


shop.run_until(lambda: handled() >= 100, 60, crowd)
is_(handled(), 100, 'it delivers 100 of 100 events from the peer it has')
is_(tools.stop(node), 0, 'and stops on SIGTERM with exit 0')
for peer in crowd:
    peer.close()
shop.close()
done_testing()
