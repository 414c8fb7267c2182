"""The coordinator's console API (coordinator/HTTP.md) on a real mesh: the
list filters and searches the flows, one flow shows its steps and its
definition's graph, a failed flow is retried, a bulk retry of 20 failed
flows answers 20 results, the live tail gets a new event within 2 s and
resumes after a reconnect, a trace comes as a tree; bad input is refused
with 4xx and a JSON error, and 1,000 connections at once leave it
answering.
"""

import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import console  # noqa: E402
import tools  # noqa: E402
from tap import diag, done_testing, is_, ok  # noqa: E402

mesh = console.Mesh()
ok(mesh.url.startswith('http://127.0.0.1:'), 'the console serves on loopback: ' + mesh.url)

#   --- flows: 3 completed, 21 failed --------------------------------------
good = [{'order': 'G%d' % i, 'parcels': [1, 2]} for i in range(3)]
bad = [{'order': 'B%02d' % i, 'fail': True, 'parcels': [1]} for i in range(21)]
ok(tools.until(lambda: mesh.publish('order.placed', good + bad) == 0, 30),
   'the mesh takes 24 order.placed events')
failed = mesh.wait_flows('?state=failed', 21)
ok(failed, 'the list finds the 21 failed flows by state')
done = mesh.wait_flows('?state=completed', 3)
ok(done, 'and the 3 completed ones')
if not failed or not done:
    diag(tools.text('coordinator.err'))
    done_testing()

everything = mesh.flows()
is_(everything['total'], 24, 'the list without a filter has all 24 flows')
starts = [flow['started'] for flow in everything['flows']]
ok(starts == sorted(starts, reverse=True), 'newest first')
found = mesh.flows('?q=B07')
ok(found['total'] == 1 and found['flows'][0]['key'] == 'B07',
   'search by business key finds the one flow')
one = found['flows'][0]
ok(mesh.flows('?q=' + one['id'])['total'] == 1, 'search by id too')
page = mesh.flows('?state=failed&limit=5&offset=20')
ok(page['total'] == 21 and len(page['flows']) == 1 and page['offset'] == 20,
   'pages: the last of 21 failed flows at offset 20')
is_(mesh.flows('?flow=order&version=1')['total'], 24, 'by flow and version')
is_(mesh.flows('?version=2')['total'], 0, 'no flow of version 2')
future = int(time.time() * 1000) + 3600000
is_(mesh.flows('?since=%d' % future)['total'], 0, 'none started after an hour from now')
is_(mesh.flows('?until=%d' % future)['total'], 24, 'all started before it')

#   --- one flow -------------------------------------------------------------
status, flow = mesh.request('/api/flows/' + one['id'])
ok(status == 200 and flow['state'] == 'failed' and flow['key'] == 'B07',
   'one flow: its state and key')
steps = {step['id']: step for step in flow.get('steps', [])}
ok(steps.get('charge', {}).get('state') == 'failed'
   and steps['charge']['error']['message'] == 'card declined'
   and steps['reserve']['state'] == 'undone', 'its steps: charge failed and why, reserve undone')
graph = {step['id']: step for step in flow.get('definition', {}).get('steps', [])}
ok(graph.get('charge', {}).get('depends_on') == ['reserve']
   and graph['ship']['for_each'] == '$.input.parcels' and graph['reserve']['compensate'],
   'and its definition as a graph')
ok(flow['input'] == bad[7], 'its input')

#   --- retry of a failed flow ---------------------------------------------
open(mesh.fixed, 'w').close()
status, answer = mesh.request('/api/flows/%s/retry' % one['id'], {})
ok(status == 200 and answer['state'] == 'running', 'retry of a failed flow: it runs again')
ok(tools.until(lambda: mesh.request('/api/flows/' + one['id'])[1]['state'] == 'completed', 20),
   'and completes')
status, answer = mesh.request('/api/flows/%s/retry' % one['id'], {})
ok(status == 409 and answer['error']['code'] == 'bad-state',
   'a second retry of the completed flow: 409 bad-state')
#   Its tries, both runs: charge failed in the first, then done in the second
status, flow = mesh.request('/api/flows/' + one['id'])
tried = [(t['task'], t['run'], t['undo'], t['outcome']) for t in flow.get('tries', [])]
is_(tried, [('reserve', 1, False, 'done'), ('charge', 1, False, 'error'),
            ('reserve', 1, True, 'done'), ('reserve:r2', 2, False, 'done'),
            ('charge:r2', 2, False, 'done'), ('ship/0:r2', 2, False, 'done')],
    'its tries: each command sent, the compensation, and the second run')
charged = [t for t in flow.get('tries', []) if t['step'] == 'charge']
ok(charged and charged[0]['error']['message'] == 'card declined' and charged[1]['error'] is None,
   'the failed try with its error')
ok([t['item'] for t in flow.get('tries', []) if t['step'] == 'ship'] == [0],
   'a fan-out item names its item')

#   --- bulk retry of 20 ------------------------------------------------------
status, answer = mesh.request('/api/bulk', {'action': 'retry', 'filter': {'state': 'failed'}})
ok(status == 200 and answer['selected'] == 20 and len(answer['results']) == 20,
   'a bulk retry of the 20 failed flows answers 20 results')
ok(all(r['ok'] and r['state'] == 'running' for r in answer.get('results', [])),
   'each one running again')
ok(mesh.wait_flows('?state=completed', 24), 'and all of them complete')
status, answer = mesh.request('/api/bulk', {'action': 'cancel', 'filter': {'q': 'G1'}})
ok(status == 200 and len(answer['results']) == 1 and not answer['results'][0]['ok']
   and answer['results'][0]['error']['code'] == 'bad-state',
   'a bulk cancel of a completed flow: its result says why not')


#   --- the live tail --------------------------------------------------------
class Tail(threading.Thread):
    """Reads /api/tail (HTTP/1.0, no chunks) into a list of (type, id, data)."""

    def __init__(self, query='', last=None):
        super().__init__(daemon=True)
        host, port = mesh.url[len('http://'):].split(':')
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        extra = 'Last-Event-ID: %s\r\n' % last if last else ''
        self.sock.sendall(('GET /api/tail%s HTTP/1.0\r\nHost: console\r\n%s\r\n'
                           % (query, extra)).encode())
        self.seen = []
        self.start()

    def run(self):
        buffer, head = b'', None
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                buffer += data
                if head is None:
                    if b'\r\n\r\n' not in buffer:
                        continue
                    head, buffer = buffer.split(b'\r\n\r\n', 1)
                while b'\n\n' in buffer:
                    block, buffer = buffer.split(b'\n\n', 1)
                    fields = {}
                    for line in block.decode().split('\n'):
                        name, _, value = line.partition(': ')
                        fields[name] = fields.get(name, '') + value
                    if fields.get('data'):
                        self.seen.append((fields.get('event', 'message'), fields.get('id'),
                                          json.loads(fields['data'])))
        except (OSError, ValueError):
            pass                # closed by the test, or the console stopping

    def events(self, topic=None):
        return [e for e in self.seen if e[0] == 'event' and (not topic or e[2]['topic'] == topic)]

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


tail = Tail('?topic=order.')
other = Tail('?topic=nothing.')
sent = time.monotonic()
mesh.publish('order.placed', [{'order': 'T1', 'parcels': []}], correlation='tail-t1')
ok(tools.until(lambda: tail.events('order.placed'), 10), 'the tail sees a new event')
arrived = time.monotonic() - sent
#   The publish itself waits for the mesh to settle (300 ms) before it sends
ok(arrived < 2.5, 'within 2 s of its publish (%.2f s, of which 0.3 s settling)' % arrived)
ok(tools.until(lambda: tail.events('order.done'), 10),
   'and the event the flow emits when it completes')
ok(not other.events(), 'a tail of another topic gets neither')
last = tail.events('order.placed')[-1][1]
tail.close()
other.close()
mesh.publish('order.placed', [{'order': 'T2', 'parcels': []}])
resumed = Tail('?topic=order.placed', last=last)
ok(tools.until(lambda: [e for e in resumed.events() if e[2]['payload']['order'] == 'T2'], 10),
   'a tail that reconnects with Last-Event-ID gets what came while it was away')
ok(not [e for e in resumed.events() if e[2]['payload']['order'] == 'T1'],
   'and not what it had')
resumed.close()
stale = Tail('', last='12345-1')
ok(tools.until(lambda: [e for e in stale.seen if e[0] == 'missed'], 5),
   'a Last-Event-ID of another run: told it missed events')
stale.close()
#   A tail away while more events came than the console keeps (4,096)
behind = Tail('?topic=order.placed', last=last)
ok(tools.until(lambda: behind.events(), 10), 'a tail resumes')
last = behind.events()[-1][1]
behind.close()
mesh.publish('noise.happened', [{'n': i} for i in range(4200)])
ok(mesh.wait_flows('?flow=noise', 4200, 30), '4,200 events more came while it was away')
behind = Tail('?topic=order.placed', last=last)
missed = tools.until(lambda: [e for e in behind.seen if e[0] == 'missed'], 10)
ok(missed and missed[0][2]['missed'] >= 4200 - 4096,
   'reconnected, it is told how many it missed (%s)' % (missed and missed[0][2]))
behind.close()

#   --- the trace tree ---------------------------------------------------------
status, trace = mesh.request('/api/trace/tail-t1')
tree = trace.get('tree', []) if status == 200 else []
ok(len(tree) == 1 and tree[0]['topic'] == 'order.placed',
   'the trace of a transaction: the trigger event is the root')
ok(tree and [c['topic'] for c in tree[0]['children'] if c.get('kind') != 'command']
   == ['order.done'], 'with the event of the flow it started under it')
sent = [c for c in (tree[0]['children'] if tree else []) if c.get('kind') == 'command']
is_([(c['service'], c['command'], c['outcome']) for c in sent],
    [('shop', 'reserve', 'done'), ('shop', 'charge', 'done')],
    'and the commands the coordinator sent for it (no parcel: no ship), with their outcome')
ok(all(c['sent'] <= c['finished'] and c['time'] == c['sent'] for c in sent)
   and [c['sent'] for c in sent] == sorted(c['sent'] for c in sent),
   'in the order they were sent, each with its times')
is_(len(trace.get('commands', [])), 2, 'the answer lists them apart too')
status, trace = mesh.request('/api/trace/nothing-here')
ok(status == 200 and trace['events'] == [] and trace['tree'] == [],
   'an unknown correlation id: an empty trace')

#   --- signal and cancel of running flows --------------------------------------
mesh.publish('hold.requested', [{'n': 1}, {'n': 2}])
holding = mesh.wait_flows('?flow=hold&state=running', 2)
ok(holding, 'two flows wait for their approval')
first, second = [flow['id'] for flow in holding['flows']] if holding else ('-', '-')
status, answer = mesh.request('/api/flows/%s/signal' % first,
                              {'name': 'approved', 'payload': {'by': 'ann'}})
ok(status == 200 and answer.get('step') == 'approve' and not answer['existing'],
   'a signal: taken by the await step')
ok(tools.until(lambda: mesh.request('/api/flows/' + first)[1]['state'] == 'completed', 10)
   and mesh.request('/api/flows/' + first)[1]['steps'][0]['output'] == {'by': 'ann'},
   "the flow completes, the signal's payload its step's output")
status, answer = mesh.request('/api/flows/%s/cancel' % second, {})
ok(status == 200 and answer['state'] in ('compensating', 'cancelled'), 'a cancel: 200')
ok(tools.until(lambda: mesh.request('/api/flows/' + second)[1]['state'] == 'cancelled', 10),
   'the flow ends cancelled')

#   --- hostile input --------------------------------------------------------
def refused(status_wanted, code, path, body=None, **options):
    status, answer = mesh.request(path, body, **options)
    good = status == status_wanted and isinstance(answer, dict) \
        and answer.get('error', {}).get('code') == code and answer['error'].get('message')
    if not good:
        diag('%s: %r %r' % (path, status, answer))
    return good


ok(refused(404, 'not-found', '/api/flows/order-nobody'), 'an unknown flow: 404')
ok(refused(404, 'not-found', '/api/flows/order-nobody/retry', {}), 'retry of one: 404')
ok(refused(404, 'not-found', '/api/nothing'), 'an unknown route: 404')
ok(refused(400, 'bad-filter', '/api/flows?state=lost'), 'a state that does not exist: 400')
ok(refused(400, 'bad-filter', '/api/flows?version=two'), 'a version that is not a number: 400')
ok(refused(400, 'bad-filter', '/api/flows?limit=100000'), 'a page too big: 400')
ok(refused(400, 'bad-filter', '/api/flows?colour=red'), 'an unknown parameter: 400')
ok(refused(400, 'bad-request', '/api/flows/x?from=-1'), 'a negative item index: 400')
ok(refused(403, 'missing-header', '/api/flows/%s/cancel' % one['id'], {}, headers={}),
   'a state change without the console header: 403')
ok(refused(413, 'too-big', '/api/bulk', raw=b' ' * 100000), 'an oversized body: 413')
ok(refused(400, 'bad-request', '/api/bulk', raw=b'{"action": '), 'a body that is not JSON: 400')
ok(refused(400, 'bad-request', '/api/bulk', {'action': 'delete', 'filter': {}}),
   'a bulk action that does not exist: 400')
ok(refused(400, 'bad-request', '/api/bulk', {'action': 'retry', 'filter': {'state': 'gone'}}),
   'a bulk filter with a bad state: 400')
ok(refused(400, 'bad-request', '/api/flows/%s/signal' % one['id'], {'name': 'no spaces'}),
   'a signal with a bad name: 400')
ok(refused(409, 'ended', '/api/flows/%s/signal' % one['id'], {'name': 'go'}),
   'a signal to an ended flow: 409')
ok(refused(405, 'method-not-allowed', '/api/flows', method='DELETE'), 'DELETE: 405')
ok(refused(405, 'method-not-allowed', '/api/flows/%s/retry' % one['id']), 'GET of an action: 405')

#   --- 1,000 connections at once ---------------------------------------------
host, port = mesh.url[len('http://'):].split(':')
sockets = []
for i in range(1000):
    try:
        s = socket.create_connection((host, int(port)), timeout=10)
        #   Half of them send the start of a request and stop there
        if i % 2:
            s.sendall(b'GET /api/flows HTTP/1.1\r\nHost: x\r\n')
        sockets.append(s)
    except OSError as error:
        diag('connection %d: %s' % (i, error))
        break
ok(len(sockets) == 1000, '1,000 connections open at once (%d)' % len(sockets))
answered = [0]


def ask():
    status, answer = mesh.request('/api/flows?limit=1')
    if status == 200 and answer['total'] >= 24:
        answered[0] += 1


askers = [threading.Thread(target=ask) for _ in range(20)]
for asker in askers:
    asker.start()
for asker in askers:
    asker.join(30)
is_(answered[0], 20, 'with them open, 20 requests at once are answered')
for s in sockets:
    s.close()
ok(tools.until(lambda: mesh.request('/api/flows?limit=1')[0] == 200, 10),
   'the console answers after they are gone')
ok(mesh.coordinator.poll() is None, 'the coordinator still runs')
is_(tools.stop(mesh.coordinator), 0, 'and stops cleanly on SIGTERM')
done_testing()
