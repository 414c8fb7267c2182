"""What the console's tests share: a mesh of a chorus-coordinator serving its
web console (--http 127.0.0.1:0) and a `chorus serve` shop, with the flow
`order` (reserve, charge, ship; charge refuses an order marked "fail" until
the file `fixed` exists), and a small client of the console's JSON API.
Run as a script, it starts that mesh and prints the console's address, for
the browser tests (tests/web/), until it is stopped.
"""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'peer'))
import tools  # noqa: E402

COORDINATOR = os.path.join(tools.TOP, 'coordinator', 'chorus-coordinator')

FLOW = """flow: order
version: 1
trigger: order.placed
key: $.input.order
emit: { completed: order.done, failed: order.failed }
steps:
  - id: reserve
    service: shop
    command: reserve
    input: { order: $.input.order }
    compensate: { command: unreserve }
  - id: charge
    service: shop
    command: charge
    depends_on: [reserve]
    input: { order: $.input.order, fail: $.input.fail }
    retry: { attempts: 1 }
  - id: ship
    service: shop
    command: ship
    depends_on: [charge]
    for_each: $.input.parcels
"""

#   A flow that waits for a person's approval (a signal)
HOLD = """flow: hold
version: 1
trigger: hold.requested
steps:
  - id: approve
    await: { signal: approved }
"""

#   Flows that only wait: events that start them cost the mesh no commands
NOISE = """flow: noise
version: 1
trigger: noise.happened
steps:
  - id: wait
    await: { signal: never }
"""

CHARGE = """#!/bin/sh
if grep -q '"fail": *true' && [ ! -f "%s" ]; then echo "card declined" >&2; exit 1; fi
echo '{"charged": true}'
"""


class Mesh:
    """A coordinator with its console, and the shop service, on loopback."""

    def __init__(self, token=None, extra=()):
        os.makedirs(tools.path('flows'), exist_ok=True)
        with open(tools.path('flows/order.yaml'), 'w') as file:
            file.write(FLOW)
        with open(tools.path('flows/hold.yaml'), 'w') as file:
            file.write(HOLD)
        with open(tools.path('flows/noise.yaml'), 'w') as file:
            file.write(NOISE)
        self.fixed = tools.path('fixed')
        charge = tools.path('charge.sh')
        with open(charge, 'w') as file:
            file.write(CHARGE % self.fixed)
        os.chmod(charge, 0o755)
        args = [COORDINATOR, '--flows', tools.path('flows'), '--store', tools.path('store'),
                '--no-sync', '--http', '127.0.0.1:0'] + list(extra)
        self.token = token
        if token:
            with open(tools.path('token'), 'w') as file:
                file.write(token + '\n')
            args += ['--http-token', tools.path('token')]
        out, err = tools.path('coordinator.out'), tools.path('coordinator.err')
        self.coordinator = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                            stdout=open(out, 'wb'), stderr=open(err, 'wb'))
        tools._children.append(self.coordinator)
        ready = tools.until(lambda: [l.split()[-1] for l in tools.lines(out)
                                     if 'ready at' in l], 15)
        if not ready:
            raise RuntimeError('the coordinator did not start: ' + tools.text(err))
        os.environ['CHORUS_SEEDS'] = ready[0]
        served = [l.split('console at ')[1] for l in tools.lines(err) if 'console at ' in l]
        self.url = served[0].rstrip('/')
        self.shop = tools.chorus('serve', 'shop', '--store', tools.path('shop'),
                                 '--handle', 'reserve=echo {}', '--handle', 'unreserve=echo {}',
                                 '--handle', 'charge=' + charge,
                                 '--handle', 'ship=echo \'{"shipped": true}\'', log='shop')

    def publish(self, topic, lines, correlation=None):
        """Publishes events (JSON values, one per line) and waits until they are taken."""
        args = ['publish', topic, '--lines', '--store', tools.path('pub-%f' % time.time()),
                '--settle', '300']
        if correlation:
            args += ['--correlation', correlation]
        proc = tools.chorus(*args, stdin=''.join(json.dumps(l) + '\n' for l in lines),
                            log='publish')
        proc.wait(timeout=30)
        return proc.returncode

    def request(self, path, body=None, method=None, headers=None, raw=None):
        """(HTTP status, JSON answer) of the API; body is sent as JSON with the
        console's header unless headers says otherwise."""
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        sent = {} if headers is not None else ({'X-Chorus-Console': '1'} if data is not None
                                               or method == 'POST' else {})
        sent.update(headers or {})
        if self.token and 'Authorization' not in sent:
            sent['Authorization'] = 'Bearer ' + self.token
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return response.status, json.loads(response.read() or b'null')
        except urllib.error.HTTPError as error:
            text = error.read()
            try:
                return error.code, json.loads(text)
            except ValueError:
                return error.code, text.decode(errors='replace')

    def flows(self, query=''):
        return self.request('/api/flows' + query)[1]

    def wait_flows(self, query, count, timeout=20):
        """Waits until the list with this query holds count flows; its answer."""
        return tools.until(lambda: self.flows(query)['total'] == count and self.flows(query),
                           timeout)


if __name__ == '__main__':
    mesh = Mesh(token=os.environ.get('CONSOLE_TOKEN'))
    print(json.dumps({'url': mesh.url, 'seeds': os.environ['CHORUS_SEEDS'],
                      'mesh': os.environ['CHORUS_MESH'], 'fixed': mesh.fixed,
                      'tmp': tools.TMP}), flush=True)
    try:
        sys.stdin.read()            # until the test closes our stdin
    finally:
        tools.stop(mesh.coordinator)
