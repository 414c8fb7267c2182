"""A console started with --http-token FILE answers its API only to the
bearer of that token (the pages themselves, which hold no data, load
without it); a token file that is missing or too short, and an --http
address that is not one, stop the coordinator at start with why.
"""

import os
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import console  # noqa: E402
import tools  # noqa: E402
from tap import diag, done_testing, is_, ok  # noqa: E402

TOKEN = 'a-console-token-of-32-characters'
mesh = console.Mesh(token=TOKEN)

status, answer = mesh.request('/api/flows', headers={'Authorization': ''})
ok(status == 401 and answer['error']['code'] == 'unauthorized', 'no token: 401 with a JSON error')
status, answer = mesh.request('/api/flows', headers={'Authorization': 'Bearer ' + TOKEN[:-1]})
is_(status, 401, 'a token one character short: 401')
status, answer = mesh.request('/api/flows', headers={'Authorization': 'Bearer ' + TOKEN + 'x'})
is_(status, 401, 'a token one character long: 401')
status, answer = mesh.request('/api/flows/x/retry', {},
                              headers={'X-Chorus-Console': '1', 'Authorization': ''})
is_(status, 401, 'a state change without the token: 401')
status, answer = mesh.request('/api/flows')
ok(status == 200 and answer['total'] == 0, 'the right token: 200')
with urllib.request.urlopen(mesh.url + '/', timeout=10) as response:
    page = response.read().decode()
ok(response.status == 200 and 'console.js' in page, 'the page loads without it (it asks for it)')
is_(tools.stop(mesh.coordinator), 0, 'the coordinator stops cleanly')


def refused(args, why):
    """Whether the coordinator exits 2 at start with args, saying why."""
    proc = subprocess.run([console.COORDINATOR, '--flows', tools.path('flows'), '--store',
                           tools.path('store2'), '--no-sync'] + args,
                          capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
    err = proc.stderr.decode()
    good = proc.returncode in (1, 2) and why in err
    if not good:
        diag('exit %d: %s' % (proc.returncode, err))
    return good


with open(tools.path('short'), 'w') as file:
    file.write('too-short\n')
ok(refused(['--http', '127.0.0.1:0', '--http-token', tools.path('short')],
           'must be its first line, 16 to 200 printable characters'),
   'a token file with a short token: refused, saying what a token must be')
ok(refused(['--http', '127.0.0.1:0', '--http-token', tools.path('none')],
           "cannot read the console's token from"),
   'a token file that does not exist: refused, naming it')
ok(refused(['--http', 'localhost'], "console address 'localhost' is not HOST:PORT"),
   'an --http address without a port: refused, saying so')
done_testing()
