"""What the Python tests that drive the real Chorus programs share: where the
programs are, a mesh of their own, processes that are always stopped, and the
memory a process uses.

Each test gets a mesh name of its own (CHORUS_MESH), so that tests running at
the same time never meet through a reused port, and a temporary directory that
is removed at exit with every process the test started.
"""

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import msgpack

TOP = os.environ.get('top_builddir', '.')
CHORUS = os.path.join(TOP, 'tools', 'chorus')
NODE_HELPER = os.path.join(TOP, 'tests', 'node_helper')

os.environ['CHORUS_MESH'] = 'pytest-%d' % os.getpid()
os.environ.pop('CHORUS_SEEDS', None)
TMP = tempfile.mkdtemp(prefix='chorus-pytest-')
#   A node started without a store makes a temporary one under TMPDIR and
#   removes it when it stops; one killed (SIGKILL, or the kill at exit
#   below) cannot, so the programs a test starts make theirs in its
#   directory, which goes with the test
os.environ['TMPDIR'] = TMP
_children = []


def _cleanup():
    for proc in _children:
        if proc.poll() is None:
            proc.kill()
    for proc in _children:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
    shutil.rmtree(TMP, ignore_errors=True)


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, lambda *_: exit(1))


def path(name):
    """A path in the test's temporary directory."""
    return os.path.join(TMP, name)


def chorus(*args, stdin=None, log=None):
    """Starts `chorus ARGS...`; stdout and stderr go to files named after log.

    Returns the Popen; proc.out and proc.err are the file names.
    """
    log = log or args[0]
    out, err = path(log + '.out'), path(log + '.err')
    proc = subprocess.Popen([CHORUS] + [str(a) for a in args],
                            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                            stdout=open(out, 'wb'), stderr=open(err, 'wb'))
    proc.out, proc.err = out, err
    _children.append(proc)
    if stdin is not None:
        proc.stdin.write(stdin.encode() if isinstance(stdin, str) else stdin)
        proc.stdin.close()
    return proc


def node_helper(*args, log, control=False):
    """Starts `tests/node_helper ARGS...` (a node in a process of its own); stdout and
    stderr go to files named after log. Returns the Popen, with proc.out and proc.err.
    With control, the node takes commands on stdin (--control): see tell()."""
    out, err = path(log + '.out'), path(log + '.err')
    args = [str(a) for a in args] + (['--control'] if control else [])
    proc = subprocess.Popen([NODE_HELPER] + args,
                            stdin=subprocess.PIPE if control else subprocess.DEVNULL,
                            stdout=open(out, 'wb'), stderr=open(err, 'wb'))
    proc.out, proc.err = out, err
    _children.append(proc)
    return proc


def tell(proc, line, answer, timeout=15):
    """Sends a command to a node_helper started with control ("publish TOPIC N", "call
    SERVICE.COMMAND", "subscribe PREFIX", "counter NAME") and waits for a new line of its
    stdout that starts with answer; that line's words, or None."""
    before = len(lines(proc.out))
    proc.stdin.write((line + '\n').encode())
    proc.stdin.flush()
    def answered():
        found = [l.split() for l in lines(proc.out)[before:] if l.startswith(answer)]
        return found[0] if found else None
    return until(answered, timeout)


def ready(proc, timeout=15):
    """Waits for node_helper's "READY endpoint instance" line: (endpoint, instance), or
    None if the process exits or the time runs out first."""
    def line():
        found = [l.split() for l in lines(proc.out) if l.startswith('READY ')]
        return found[0][1:3] if found else (proc.poll() is not None and 'exited')
    found = until(line, timeout)
    return tuple(found) if found and found != 'exited' else None


def started(proc, what):
    """Records whether node_helper came up as the assertion `what`; ends the test
    (with its stderr) if it did not. Returns (endpoint, instance)."""
    from tap import diag, done_testing, ok
    found = ready(proc)
    ok(found, what)
    if not found:
        diag(text(proc.err))
        done_testing()
    return found


def text(name):
    """The content of a file in the temporary directory ('' if none)."""
    try:
        with open(name if os.path.isabs(name) else path(name), 'rb') as file:
            return file.read().decode(errors='replace')
    except FileNotFoundError:
        return ''


def lines(name):
    """The lines of a file in the temporary directory."""
    return [line for line in text(name).splitlines() if line]


def json_lines(name):
    """The JSON objects, one per line, of a file another process appends to; a
    last line still being written (no newline yet) is left for the next read."""
    content = text(name)
    content = content[:content.rfind('\n') + 1]
    return [json.loads(line) for line in content.splitlines() if line]


def memory(pid):
    """(resident KiB now, peak resident KiB) of a process, from /proc."""
    now = peak = 0
    with open('/proc/%d/status' % pid) as status:
        for line in status:
            if line.startswith('VmRSS:'):
                now = int(line.split()[1])
            elif line.startswith('VmHWM:'):
                peak = int(line.split()[1])
    return now, peak


def stop(proc, timeout=10):
    """SIGTERM, then wait; returns the exit status (None if it did not stop)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def until(predicate, timeout, step=0.05):
    """Polls predicate until it is true or timeout seconds pass; its last value."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() >= end:
            return value
        time.sleep(step)


def free_port():
    """A TCP port on loopback that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def delivered(publisher, label, others=(), handled='handled', count=100):
    """The strict peer ``publisher`` publishes ``count`` events on order.placed
    (keys k0..k9); how many of them the node under test handled, as its
    ``--exec`` wrote them (JSON lines) to the file ``handled``."""
    first = publisher.head + 1
    for i in range(count):
        publisher.publish('order.placed', msgpack.packb('%s-%d' % (label, i)),
                          key='k%d' % (i % 10))
    wanted = set(range(first, first + count))

    def seen():
        return len(wanted & {e['seq'] for e in json_lines(handled)
                             if e['instance'] == publisher.instance})
    publisher.run_until(lambda: seen() >= count, 60, others)
    return seen()

