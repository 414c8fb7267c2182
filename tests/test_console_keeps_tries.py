"""The console lists every try of a task, and keeps them through a crash: a
step that fails twice, then succeeds, shows its three tries (number, times,
outcome, error) after the coordinator was killed with SIGKILL between the
second and the third and started again on its store; the trace of the
transaction holds the commands sent, with their service and outcome, and
nests them under the event that started the flow. A task tried more often
than the console lists shows its last 20 tries and how many were left out;
a fan-out's page lists the tries of the items it shows. A flow's records
hold its latest tries until they go to the trace, 8 at a time or when the
flow ends: a coordinator killed after a task's 10th try, with 8 of them in
the trace and 2 in the flow's records, lists all of them once after its
restart.
"""

import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import console  # noqa: E402
import tools  # noqa: E402
from tap import diag, done_testing, is_, ok  # noqa: E402

#   Each flow's step fails on its first tries: a bank down twice, a
#   processor down for good (25 tries, no wait between them)
PAY = """flow: pay
version: 1
trigger: pay.requested
key: $.input.order
steps:
  - id: charge
    service: bank
    command: charge
    input: { order: $.input.order }
    retry: { attempts: 3, backoff: 2s, factor: 1 }
"""
#   A fan-out over more items than a page of a status shows
FAN = """flow: fan
version: 1
steps:
  - id: each
    service: bank
    command: echo
    for_each: $.input.items
"""
STORM = """flow: storm
version: 1
steps:
  - id: hammer
    service: bank
    command: refuse
    retry: { attempts: 25, backoff: 0ms }
"""
#   A step whose 11th try waits for a file
SLOW = """flow: slow
version: 1
steps:
  - id: crawl
    service: bank
    command: crawl
    timeout: 60s
    retry: { attempts: 12, backoff: 0ms }
"""
#   Fails its first ten tries, then waits (at most 60 s) for `release`
CRAWL = """#!/bin/sh
n=$(cat "%s" 2>/dev/null | wc -l)
echo try >> "%s"
if [ "$n" -lt 10 ]; then echo "slow down ($((n + 1)))" >&2; exit 1; fi
i=0
while [ ! -e "%s" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
echo '{"crawled": true}'
"""
#   Fails its first two tries, counting them in a file
CHARGE = """#!/bin/sh
n=$(cat "%s" 2>/dev/null | wc -l)
echo try >> "%s"
if [ "$n" -lt 2 ]; then echo "bank down ($((n + 1)))" >&2; exit 1; fi
echo '{"charged": true}'
"""

hub = tools.node_helper('--service=hub', log='hub')
seed = tools.started(hub, 'a hub node to seed from')[0]
os.environ['CHORUS_SEEDS'] = seed
os.makedirs(tools.path('flows'))
for name, text in (('pay', PAY), ('storm', STORM), ('fan', FAN), ('slow', SLOW)):
    with open(tools.path('flows/%s.yaml' % name), 'w') as file:
        file.write(text)
tries_file = tools.path('tries')
charge = tools.path('charge.sh')
with open(charge, 'w') as file:
    file.write(CHARGE % (tries_file, tries_file))
os.chmod(charge, 0o755)
crawls_file, release = tools.path('crawls'), tools.path('release')
crawl = tools.path('crawl.sh')
with open(crawl, 'w') as file:
    file.write(CRAWL % (crawls_file, crawls_file, release))
os.chmod(crawl, 0o755)
bank = tools.chorus('serve', 'bank', '--store', tools.path('bank'), '--handle',
                    'charge=' + charge, '--handle', 'refuse=echo refused >&2; exit 1',
                    '--handle', 'echo=cat', '--handle', 'crawl=' + crawl,
                    log='bank')


def start_coordinator():
    """A coordinator on the test's store with its console; (process, console URL)."""
    err = tools.path('coordinator.err')
    before = len([l for l in tools.lines(err) if 'console at ' in l])
    proc = subprocess.Popen([console.COORDINATOR, '--flows', tools.path('flows'), '--store',
                             tools.path('store'), '--no-sync', '--http', '127.0.0.1:0'],
                            stdin=subprocess.DEVNULL,
                            stdout=open(tools.path('coordinator.out'), 'ab'),
                            stderr=open(err, 'ab'))
    tools._children.append(proc)
    served = tools.until(lambda: [l.split('console at ')[1] for l in tools.lines(err)
                                  if 'console at ' in l][before:], 15)
    if not served:
        diag(tools.text(err))
        raise RuntimeError('the coordinator did not start')
    return proc, served[0].rstrip('/')


coordinator, url = start_coordinator()
api = console.Mesh.__new__(console.Mesh)    # only its API client
api.token, api.url = None, url

proc = tools.chorus('publish', 'pay.requested', '{"order": "P1"}', '--store',
                    tools.path('payer'), '--settle', '300', '--correlation', 'pay-p1',
                    log='publish')
ok(proc.wait(timeout=30) == 0, 'an event asks for a payment')
flows = tools.until(lambda: api.flows('?flow=pay')['flows'], 20)
ok(flows, 'it started a flow')
if not flows:
    diag(tools.text('coordinator.err'))
    done_testing()
flow_id = flows[0]['id']


def tries(which=None):
    status, flow = api.request('/api/flows/' + (which or flow_id))
    return flow.get('tries', []) if status == 200 else []


two = tools.until(lambda: len(tries()) == 2 and tries(), 20)
ok(two, 'the console lists the first two tries as they fail')
#   Killed while the task waits 2 s for its third try
coordinator.send_signal(signal.SIGKILL)
coordinator.wait(timeout=10)
is_(len(tools.lines('tries')), 2, 'the coordinator is killed (SIGKILL) before the third try')
killed_at = int(time.time() * 1000)

coordinator, url = start_coordinator()
api.url = url
ok(tools.until(lambda: api.request('/api/flows/' + flow_id)[1].get('state') == 'completed', 20),
   'started again on its store, the flow completes')
listed = tries()
is_([t['attempt'] for t in listed], [1, 2, 3], 'the console lists all three tries, in order')
is_([t['outcome'] for t in listed], ['error', 'error', 'done'],
    'two failed, the third succeeded')
ok([t['error'] and t['error']['message'] for t in listed[:2]] == ['bank down (1)',
                                                                  'bank down (2)']
   and listed[2]['error'] is None, 'each failed try with its own error')
ok(all(t['task'] == 'charge' and t['step'] == 'charge' and t['item'] is None and t['run'] == 1
       and not t['undo'] and t['service'] == 'bank' and t['command'] == 'charge'
       for t in listed), 'each of task charge, sent to bank charge')
ok(all(t['sent'] <= t['finished'] and t['duration_ms'] == t['finished'] - t['sent']
       for t in listed), 'each with when it was sent, when it ended and how long it took')
ok(listed[0]['finished'] <= listed[1]['sent'] and listed[1]['finished'] + 1500 <= listed[2]['sent'],
   'one after the other, the backoff between them')
ok(listed[1]['finished'] <= killed_at <= listed[2]['sent'],
   'the first two before the kill, the third after the restart')
status, flow = api.request('/api/flows/' + flow_id)
is_(flow.get('tries_omitted'), {}, 'none left out')
is_(flow.get('correlation'), 'pay-p1', 'the flow names its correlation id')

#   --- the trace: the commands, under the event that started the flow -------
status, trace = api.request('/api/trace/pay-p1')
commands = trace.get('commands', []) if status == 200 else []
is_([(c['service'], c['command'], c['attempt'], c['outcome']) for c in commands],
    [('bank', 'charge', 1, 'error'), ('bank', 'charge', 2, 'error'), ('bank', 'charge', 3, 'done')],
    'the trace holds the three commands the coordinator sent, with their outcome')
tree = trace.get('tree', [])
ok(len(tree) == 1 and tree[0].get('topic') == 'pay.requested', 'its root is the event')
under = [c for c in (tree[0]['children'] if tree else []) if c.get('kind') == 'command']
is_([c['attempt'] for c in under], [1, 2, 3], 'with the three tries under it, in time order')
ok(all(c['flow'] == flow_id and c['time'] == c['sent'] and c['id'] for c in under),
   'each naming its flow, sent time and command id')

#   --- a task tried 25 times: the last 20 listed, 5 counted ---------------
proc = tools.chorus('flow', 'start', 'storm', '{}', '--id', 's1', log='storm')
proc.wait(timeout=30)
ok(tools.until(lambda: api.request('/api/flows/storm-s1')[1].get('state') == 'failed', 30),
   'a flow whose step fails 25 tries fails')
status, storm = api.request('/api/flows/storm-s1')
listed = storm.get('tries', [])
is_([t['attempt'] for t in listed], list(range(6, 26)), 'its page lists the last 20 tries')
is_(storm.get('tries_omitted'), {'hammer': 5}, 'and says 5 older ones were left out')
ok(all(t['outcome'] == 'error' and t['error']['message'] == 'refused' for t in listed),
   'each with its error')
is_(api.request('/api/trace/' + storm['correlation'])[1].get('commands', []).__len__(), 25,
    'the trace keeps all 25')

#   --- a fan-out of 150 items: the tries of the items on the page ---------
proc = tools.chorus('flow', 'start', 'fan', json.dumps({'items': list(range(150))}), '--id', 'f1',
                    log='fan')
proc.wait(timeout=30)
ok(tools.until(lambda: api.request('/api/flows/fan-f1')[1].get('state') == 'completed', 30),
   'a flow fanned out over 150 items completes')
status, fan = api.request('/api/flows/fan-f1')
ok(sorted(t['item'] for t in fan.get('tries', [])) == list(range(100)),
   'its page lists the tries of the items it shows (the first 100)')
is_(fan.get('tries_off_page'), 50, 'and counts those of the other 50')
status, fan = api.request('/api/flows/fan-f1?from=100&to=149')
ok(sorted(t['item'] for t in fan.get('tries', [])) == list(range(100, 150))
   and fan.get('tries_off_page') == 100, 'the next page, the tries of items 100 to 149')

#   --- killed with 8 tries in the trace and 2 held in the flow's records --
proc = tools.chorus('flow', 'start', 'slow', '{}', '--id', 'w1', log='slow')
proc.wait(timeout=30)
ok(tools.until(lambda: len(tools.lines('crawls')) == 11 and len(tries('slow-w1')) == 10, 30),
   'a step failed 10 tries and its 11th runs')
coordinator.send_signal(signal.SIGKILL)
coordinator.wait(timeout=10)
with open(release, 'w'):
    pass
coordinator, url = start_coordinator()
api.url = url
ok(tools.until(lambda: api.request('/api/flows/slow-w1')[1].get('state') == 'completed', 30),
   'killed (SIGKILL) and started again, the flow completes')
listed = tries('slow-w1')
is_([t['attempt'] for t in listed], list(range(1, 12)), 'the console lists each of its 11 tries once')
is_([t['outcome'] for t in listed], ['error'] * 10 + ['done'], 'ten failed, the last succeeded')
is_([t['error'] and t['error']['message'] for t in listed[:10]],
    ['slow down (%d)' % n for n in range(1, 11)], 'each failed try with its own error')
status, slow = api.request('/api/flows/slow-w1')
commands = api.request('/api/trace/' + slow['correlation'])[1].get('commands', [])
is_([c['attempt'] for c in commands], list(range(1, 12)), 'and so does the trace, in order')
is_(tools.stop(coordinator), 0, 'the coordinator stops cleanly on SIGTERM')
done_testing()
